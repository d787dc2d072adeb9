/* Transactions from Lua: rt:atomic(fn, ...) and the all-or-nothing batches
 * rt.tokens:create_many and rt.connections:create_many that ride on it. */
#include "binding.h"

#include <limits.h>
#include <string.h>

/* needs: a function and its nargs arguments on top of the stack; rt the
 * open runtime they write to (fetched after the caller's last allocation).
 * guarantees: the function has run in a transaction of rt, or in a
 * savepoint when this thread has one open already (a nested rt:atomic):
 * committed (released) if it returned, its results then on the stack
 * (their count returned); undone and its error re-raised unchanged if it
 * raised (a string error gets "create_many: entry N: " in front when
 * `entry`, the entry being created, is given and non-zero). rt is held
 * meanwhile, so rt:close() inside it frees nothing under us. Raises for a
 * transaction that cannot begin or commit (the commit of one that ran out
 * of memory: nothing is kept). */
static int run_atomic(lua_State *L, ng_runtime *rt, int nargs, int arg, const char *fn,
                      const lua_Integer *entry) {
  int base = lua_gettop(L) - nargs - 1;
  bool outer = !ng_txn_open(rt);
  ng_savepoint sp = 0;
  ng_status st = outer ? ng_txn_begin(rt) : ng_txn_savepoint(rt, &sp);
  if (st != NG_OK) return ngl_status_error(L, rt, st, arg, fn);
  ng_runtime_retain(rt);
  int rc = lua_pcall(L, nargs, LUA_MULTRET, 0);
  if (rc == LUA_OK)
    st = outer ? ng_txn_commit(rt) : ng_txn_release(rt, sp);
  else if (outer)
    (void)ng_txn_rollback(rt);
  else
    (void)ng_txn_rollback_to(rt, sp);
  /* Another reference outlives this one unless fn closed the runtime, and
   * then the message below needs only rt's address. */
  ng_runtime_release(rt);
  if (rc != LUA_OK) {
    if (entry && *entry && lua_type(L, -1) == LUA_TSTRING)
      lua_pushfstring(L, "%s: entry %I: %s", fn, (LUAI_UACINT)*entry, lua_tostring(L, -1));
    return lua_error(L);
  }
  if (st != NG_OK) return ngl_status_error(L, rt, st, arg, fn);
  return lua_gettop(L) - base;
}

/* rt:atomic(fn, ...) -> fn(...)'s results; every write fn makes is
 * committed together, or undone together when fn raises. */
static int rt_atomic(lua_State *L) {
  ngl_runtime *o = ngl_checkudata(L, 1, NGL_UV_RUNTIME_MT, "atomic");
  ngl_rt(L, o); /* a closed runtime first, whatever the function */
  if (lua_type(L, 2) != LUA_TFUNCTION)
    return ngl_argerror(L, 2, "atomic", "function expected, got %s", ngl_describe(L, 2));
  ng_runtime *rt = ngl_rt(L, o);
  return run_atomic(L, rt, lua_gettop(L) - 2, 2, "atomic", NULL);
}

/* Pushes a table of the fields of the connection entry at e (its keys but
 * 1, 2, from and to) and returns 1, or pushes nothing and returns 0 when it
 * has no other key. */
static int entry_fields(lua_State *L, int e) {
  int made = 0;
  lua_pushnil(L); /* stack: ..., [fields,] key, value */
  while (lua_next(L, e)) {
    int skip = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      skip = strcmp(k, "from") == 0 || strcmp(k, "to") == 0;
    } else if (lua_isinteger(L, -2)) {
      lua_Integer k = lua_tointeger(L, -2);
      skip = k == 1 || k == 2;
    }
    if (skip) {
      lua_pop(L, 1);
      continue;
    }
    if (!made) { /* stack: ..., fields, key, value */
      lua_newtable(L);
      lua_insert(L, -3);
      made = 1;
    }
    lua_pushvalue(L, -2); /* stack: ..., fields, key, value, key */
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  return made;
}

/* The create_many loop, run by run_atomic. Stack: self, list, create (the
 * object's create method), ids, conns (true: connection entries), entry (a
 * light userdata: the lua_Integer that tells run_atomic which entry
 * raised). Calls create for each entry in order, the ids going into `ids`,
 * which it returns. A connection entry gives from and to as [1], [2] or
 * from =, to =, and its fields as [3] or as its other keys. */
static int create_loop(lua_State *L) {
  int conns = lua_toboolean(L, 5);
  lua_Integer *entry = lua_touserdata(L, 6);
  lua_Integer n = luaL_len(L, 2);
  for (lua_Integer i = 1; i <= n; i++) {
    *entry = i;
    lua_pushvalue(L, 3); /* stack: ..., create, self, args... */
    lua_pushvalue(L, 1);
    int t = lua_geti(L, 2, i);
    int nargs = 1;
    if (conns) {
      int e = lua_gettop(L);
      if (t != LUA_TTABLE)
        return luaL_error(L, "{from, to [, fields]} expected, got %s", ngl_describe(L, e));
      /* stack: ..., entry, from, to, fields */
      if (lua_geti(L, e, 1) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_getfield(L, e, "from");
      }
      if (lua_geti(L, e, 2) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_getfield(L, e, "to");
      }
      if (lua_geti(L, e, 3) == LUA_TNIL && entry_fields(L, e)) lua_remove(L, -2);
      lua_remove(L, e);
      nargs = 3;
    }
    lua_call(L, 1 + nargs, 1);
    lua_rawseti(L, 4, i);
  }
  *entry = 0;
  lua_settop(L, 4);
  return 1;
}

/* rt.tokens:create_many(list) / rt.connections:create_many(list) -> ids:
 * one create per entry, all or nothing. */
static int create_many(lua_State *L, int uv, int conns) {
  ngl_handle *self = ngl_self(L, uv, "create_many");
  ngl_rt(L, self->owner);
  if (lua_type(L, 2) != LUA_TTABLE)
    return ngl_argerror(L, 2, "create_many", "table of %s expected, got %s",
                        conns ? "connection entries" : "token field tables", ngl_describe(L, 2));
  lua_settop(L, 2);
  lua_Integer n = luaL_len(L, 2), entry = 0;
  /* stack: self, list, loop, self, list, create, ids, conns, &entry */
  lua_pushcfunction(L, create_loop);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_getfield(L, 1, "create");
  lua_createtable(L, n > 0 && n < INT_MAX ? (int)n : 0, 0);
  lua_pushboolean(L, conns);
  lua_pushlightuserdata(L, &entry);
  ng_runtime *rt = ngl_rt(L, self->owner); /* after the allocations (see ngl_runtime) */
  return run_atomic(L, rt, 6, 2, "create_many", &entry);
}

static int tokens_create_many(lua_State *L) {
  return create_many(L, NGL_UV_TOKENS_MT, 0);
}

static int conns_create_many(lua_State *L) {
  return create_many(L, NGL_UV_CONNS_MT, 1);
}

void ngl_open_atomic(lua_State *L, int ctx) {
  static const luaL_Reg atomic_rt[] = {{"atomic", rt_atomic}, {NULL, NULL}};
  static const luaL_Reg atomic_tokens[] = {{"create_many", tokens_create_many}, {NULL, NULL}};
  static const luaL_Reg atomic_conns[] = {{"create_many", conns_create_many}, {NULL, NULL}};
  lua_rawgeti(L, ctx, NGL_UV_RUNTIME_INDEX);
  ngl_setfuncs(L, ctx, -1, atomic_rt);
  lua_pop(L, 1);
  lua_rawgeti(L, ctx, NGL_UV_TOKENS_MT); /* stack: ..., mt, mt.__index */
  lua_getfield(L, -1, "__index");
  ngl_setfuncs(L, ctx, -1, atomic_tokens);
  lua_pop(L, 2);
  lua_rawgeti(L, ctx, NGL_UV_CONNS_MT);
  lua_getfield(L, -1, "__index");
  ngl_setfuncs(L, ctx, -1, atomic_conns);
  lua_pop(L, 2);
}

/* rt.grid: radius, neighbour, nearest-k and box queries and grid figures, per space. */
#include "binding.h"

#include <float.h>
#include <stddef.h>
#include <string.h>

/* Options of a query: which keys are allowed, and what was given. */
typedef struct query_opts {
  int space;
  size_t limit;
  int into; /* stack index of the result table, 0 for a new one */
} query_opts;

/* Reads {space = ..., limit = ..., into = ...} at idx (argument arg); `allowed`
 * is a bit set over NGL_K_SPACE/LIMIT/INTO. */
static void read_opts(lua_State *L, int idx, const char *fn, uint64_t allowed, query_opts *o) {
  o->space = NG_L1;
  o->limit = 0;
  o->into = 0;
  if (lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) != LUA_TTABLE)
    ngl_argerror(L, idx, fn, "options table expected, got %s", ngl_describe(L, idx));
  lua_pushnil(L); /* stack: ..., opts, nil; in the loop ..., opts, key, value */
  while (lua_next(L, idx)) {
    int key = ngl_key(L, -2);
    if (key < 64 && (allowed & NGL_KEY(key))) {
      switch (key) {
      case NGL_K_SPACE:
        o->space = ngl_check_space(L, -1, idx, fn);
        break;
      case NGL_K_LIMIT:
        o->limit = (size_t)ngl_check_integer(L, -1, idx, fn, "limit", 0, INT32_MAX);
        break;
      case NGL_K_INTO:
        if (lua_type(L, -1) != LUA_TTABLE)
          ngl_argerror(L, idx, fn, "into must be a table, got %s", ngl_describe(L, -1));
        break;
      default:
        break;
      }
    } else {
      ngl_unknown_key(L, -2, idx, fn, "option", allowed);
    }
    lua_pop(L, 1);
  }
  /* `into` is looked up again so it has a stable stack slot: a table stays
   * on top (stack: ..., opts, into) for the query's push */
  lua_pushliteral(L, "into");
  if (lua_rawget(L, idx) == LUA_TTABLE)
    o->into = lua_gettop(L);
  else
    lua_pop(L, 1);
}

/* A query's own hits buffer (see acquire_hits) and the runtime that fills
 * it, retained until the buffer is freed. */
typedef struct hits_box {
  ng_runtime *rt;
  ng_hits hits;
} hits_box;

static void box_free(hits_box *b) {
  if (b->rt == NULL) return;
  ng_hits_free(b->rt, &b->hits);
  ng_runtime_release(b->rt);
  b->rt = NULL;
}

/* __gc of a box left behind by an error during its push. */
static int box_gc(lua_State *L) {
  box_free(lua_touserdata(L, 1)); /* only ever the __gc of boxes */
  return 0;
}

/*
 * The hits buffer for one query and the runtime to run it on (raises
 * "runtime is closed"). Pushing hits allocates tables, which may run a
 * finalizer that closes the runtime or runs another query: so the runtime's
 * own buffer is held (rt:close() then defers the release) until
 * release_hits, and a query that finds it held (one from such a finalizer)
 * gets a fresh buffer, in a userdata left on the stack so that an error
 * cannot leak it. Call it after the arguments are checked (they may run Lua
 * code); call release_hits before raising and after pushing.
 */
static ng_hits *acquire_hits(lua_State *L, ngl_runtime *owner, ng_runtime **rt) {
  if (!owner->hits_busy) {
    *rt = ngl_rt(L, owner);
    owner->hits_busy = 1;
    return &owner->hits;
  }
  hits_box *b = lua_newuserdatauv(L, sizeof *b, 0); /* stack: ..., box (left there) */
  memset(b, 0, sizeof *b);
  lua_pushvalue(L, NGL_UV(NGL_UV_HITS_MT));
  lua_setmetatable(L, -2);
  *rt = ngl_rt(L, owner); /* after the allocation, which may have closed it */
  b->rt = ng_runtime_retain(*rt);
  return &b->hits;
}

/* Ends a query's use of hits: frees its own buffer, or ends the hold on the
 * runtime's, releasing the runtime if it was closed meanwhile. */
static void release_hits(lua_State *L, ngl_runtime *owner, ng_hits *hits) {
  if (hits != &owner->hits) {
    box_free((hits_box *)(void *)((char *)hits - offsetof(hits_box, hits)));
    return;
  }
  owner->hits_busy = 0;
  ng_runtime *rt = owner->pending;
  owner->pending = NULL;
  if (rt != NULL) ngl_runtime_free(L, owner, rt);
}

/* Pushes the runtime's pool of spare pair tables (created on first use) and
 * returns its index. */
static int push_pool(lua_State *L) {
  lua_getiuservalue(L, 1, 1); /* self (rt.grid) -> the Runtime userdata */
  if (lua_getiuservalue(L, -1, NGL_RT_PAIRS) != LUA_TTABLE) { /* stack: ..., rt, pool */
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, -3, NGL_RT_PAIRS);
  }
  lua_remove(L, -2); /* stack: ..., pool */
  return lua_gettop(L);
}

/* Pushes hits as { {id, distance}, ... }. With `into`, the table and the pair
 * tables in it are reused; pairs past the hit count are removed from `into`
 * and kept in the runtime's pool for later queries, so a loop allocates
 * nothing once the pool has grown to its largest answer. */
static void push_hits(lua_State *L, const ng_hits *hits, int into) {
  size_t n = hits->count;
  int pool = 0;
  lua_Integer npool = 0;
  if (into) {
    pool = push_pool(L);
    npool = (lua_Integer)lua_rawlen(L, pool);
    lua_pushvalue(L, into);
  } else {
    lua_createtable(L, n > INT32_MAX ? INT32_MAX : (int)n, 0);
  }
  /* stack: ..., [pool,] result; each turn pushes the pair for hit i, fills
   * it and pops it: ..., result, pair */
  for (size_t i = 0; i < n; i++) {
    lua_Integer k = (lua_Integer)i + 1;
    if (!into || lua_rawgeti(L, -1, k) != LUA_TTABLE) {
      if (into) lua_pop(L, 1);
      if (npool > 0) { /* a recycled pair */
        lua_rawgeti(L, pool, npool);
        lua_pushnil(L);
        lua_rawseti(L, pool, npool--);
      } else {
        lua_createtable(L, 2, 0);
      }
      lua_pushvalue(L, -1);
      lua_rawseti(L, -3, k);
    }
    lua_pushinteger(L, hits->items[i].id);
    lua_rawseti(L, -2, 1);
    lua_pushnumber(L, (lua_Number)hits->items[i].distance);
    lua_rawseti(L, -2, 2);
    lua_pop(L, 1);
  }
  if (into) {
    ngl_clear_from(L, (lua_Integer)n, pool);
    lua_remove(L, pool); /* stack: ..., result */
  }
}

/* A radius: finite and >= 0; huge values are clamped (they mean "all"). */
static float check_radius(lua_State *L, int idx, const char *fn) {
  double r = ngl_check_number(L, idx, idx, fn, "radius");
  if (r < 0) ngl_argerror(L, idx, fn, "radius must be >= 0, got %s", ngl_describe(L, idx));
  return r > FLT_MAX ? FLT_MAX : (float)r;
}

/* Pushes the hits of a query that returned st (raising for a failure), then
 * ends the query's use of hits. */
static int finish(lua_State *L, ngl_runtime *owner, ng_hits *hits, ng_status st, int arg,
                  const char *fn, int into) {
  if (st != NG_OK) {
    release_hits(L, owner, hits);
    return ngl_status_error(L, NULL, st, arg, fn);
  }
  push_hits(L, hits, into);
  release_hits(L, owner, hits);
  return 1;
}

/* rt.grid:find_neighbors(id, radius [, {space, limit, into}]) -> hits. The
 * token itself is excluded; a missing token raises (an existing record is
 * required). */
static int grid_neighbors(lua_State *L) {
  const char *fn = "find_neighbors";
  ngl_handle *self = ngl_self(L, NGL_UV_GRID_MT, fn);
  ngl_rt(L, self->owner);
  ng_id id = ngl_check_token_id(L, 2, 2, fn, self->owner);
  float r = check_radius(L, 3, fn);
  query_opts o;
  read_opts(L, 4, fn, NGL_KEY(NGL_K_SPACE) | NGL_KEY(NGL_K_LIMIT) | NGL_KEY(NGL_K_INTO), &o);
  ng_runtime *rt;
  ng_hits *hits = acquire_hits(L, self->owner, &rt);
  ng_status st = ng_grid_neighbors(rt, id, o.space, r, o.limit, NULL, hits);
  if (st == NG_ENOTFOUND) {
    release_hits(L, self->owner, hits);
    return ngl_argerror(L, 2, fn, "token %I does not exist", (LUAI_UACINT)id);
  }
  return finish(L, self->owner, hits, st, 2, fn, o.into);
}

/* rt.grid:range_query({x, y, z}, radius [, {space, limit, into}]) -> hits. */
static int grid_range(lua_State *L) {
  const char *fn = "range_query";
  ngl_handle *self = ngl_self(L, NGL_UV_GRID_MT, fn);
  ngl_rt(L, self->owner);
  float c[3];
  ngl_check_point(L, 2, 2, fn, "center", c);
  float r = check_radius(L, 3, fn);
  query_opts o;
  read_opts(L, 4, fn, NGL_KEY(NGL_K_SPACE) | NGL_KEY(NGL_K_LIMIT) | NGL_KEY(NGL_K_INTO), &o);
  ng_runtime *rt;
  ng_hits *hits = acquire_hits(L, self->owner, &rt);
  return finish(L, self->owner, hits, ng_grid_range(rt, o.space, c, r, o.limit, NULL, hits), 2, fn,
                o.into);
}

/* rt.grid:nearest({x, y, z}, k [, {space, into}]) -> the k nearest hits. */
static int grid_nearest(lua_State *L) {
  const char *fn = "nearest";
  ngl_handle *self = ngl_self(L, NGL_UV_GRID_MT, fn);
  ngl_rt(L, self->owner);
  float c[3];
  ngl_check_point(L, 2, 2, fn, "center", c);
  size_t k = (size_t)ngl_check_integer(L, 3, 3, fn, "k", 0, INT32_MAX);
  query_opts o;
  read_opts(L, 4, fn, NGL_KEY(NGL_K_SPACE) | NGL_KEY(NGL_K_INTO), &o);
  ng_runtime *rt;
  ng_hits *hits = acquire_hits(L, self->owner, &rt);
  return finish(L, self->owner, hits, ng_grid_nearest(rt, o.space, c, k, NULL, hits), 2, fn, o.into);
}

/* rt.grid:box({x0, y0, z0}, {x1, y1, z1} [, {space, limit, into}]) -> hits
 * inside the closed box, by distance from its centre. */
static int grid_box(lua_State *L) {
  const char *fn = "box";
  ngl_handle *self = ngl_self(L, NGL_UV_GRID_MT, fn);
  ngl_rt(L, self->owner);
  float lo[3], hi[3];
  ngl_check_point(L, 2, 2, fn, "min", lo);
  ngl_check_point(L, 3, 3, fn, "max", hi);
  for (int a = 0; a < 3; a++)
    if (lo[a] > hi[a])
      return ngl_argerror(L, 3, fn, "max must not be below min on any axis (axis %d)", a + 1);
  query_opts o;
  read_opts(L, 4, fn, NGL_KEY(NGL_K_SPACE) | NGL_KEY(NGL_K_LIMIT) | NGL_KEY(NGL_K_INTO), &o);
  ng_runtime *rt;
  ng_hits *hits = acquire_hits(L, self->owner, &rt);
  return finish(L, self->owner, hits, ng_grid_box(rt, o.space, lo, hi, o.limit, NULL, hits), 2, fn,
                o.into);
}

/* Pushes {x, y, z}. */
static void push_vec(lua_State *L, const float v[3]) {
  lua_createtable(L, 3, 0);
  for (int a = 0; a < 3; a++) {
    ngl_push_float(L, v[a]);
    lua_rawseti(L, -2, a + 1);
  }
}

/* rt.grid:info([{space}]) -> {space, count, cells, cell_size, min = {..}, max = {..}}. */
static int grid_info(lua_State *L) {
  const char *fn = "info";
  ngl_handle *self = ngl_self(L, NGL_UV_GRID_MT, fn);
  ngl_rt(L, self->owner);
  query_opts o;
  read_opts(L, 2, fn, NGL_KEY(NGL_K_SPACE), &o);
  ng_runtime *rt = ngl_rt(L, self->owner); /* again: read_opts may run a finalizer */
  ng_space_info gi;
  ng_status st = ng_grid_info(rt, o.space, &gi); /* copied out before the tables below */
  if (st != NG_OK) return ngl_status_error(L, rt, st, 2, fn);
  lua_createtable(L, 0, 6); /* stack: self, [opts,] info; each value goes info[name] */
  lua_pushstring(L, ng_space_name(o.space));
  lua_setfield(L, -2, "space");
  lua_pushinteger(L, (lua_Integer)gi.count);
  lua_setfield(L, -2, "count");
  lua_pushinteger(L, (lua_Integer)gi.cells);
  lua_setfield(L, -2, "cells");
  ngl_push_float(L, gi.cell_size);
  lua_setfield(L, -2, "cell_size");
  push_vec(L, gi.lo);
  lua_setfield(L, -2, "min");
  push_vec(L, gi.hi);
  lua_setfield(L, -2, "max");
  return 1;
}

static int grid_tostring(lua_State *L) {
  ngl_self(L, NGL_UV_GRID_MT, "__tostring");
  lua_pushliteral(L, "neurograph.Grid");
  return 1;
}

static const luaL_Reg grid_methods[] = {
    {"find_neighbors", grid_neighbors},
    {"range_query", grid_range},
    {"nearest", grid_nearest},
    {"box", grid_box},
    {"info", grid_info},
    {NULL, NULL},
};
static const luaL_Reg grid_meta[] = {{"__tostring", grid_tostring}, {NULL, NULL}};

void ngl_open_grid(lua_State *L, int ctx) {
  lua_rawgeti(L, ctx, NGL_UV_HITS_MT); /* stack: ..., box mt, box_gc */
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_rawgeti(L, ctx, NGL_UV_GRID_MT);
  lua_newtable(L); /* stack: ..., mt, methods; methods becomes mt.__index */
  ngl_setfuncs(L, ctx, -1, grid_methods);
  lua_setfield(L, -2, "__index");
  ngl_setfuncs(L, ctx, -1, grid_meta);
  lua_pop(L, 1);
}

/* neurograph.Token handles and the rt.tokens store object (create/get/update/delete/list/iter). */
#include "binding.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* A token write being assembled: the record, the NG_TF_* mask, and the entity
 * (applied after `flags`, whatever the table order). */
typedef struct tok_write {
  ng_token t;
  uint32_t mask;
  int entity;                 /* -1: not given */
  double xyz[NG_SPACES][3];   /* the coordinates given (mask's NG_TF_COORDS bits), decoded */
} tok_write;

/*
 * Reads coords = { L1 = {x, y, z}, [2] = {x, y, z}, ... } at the top of the
 * stack, absolute index idx, into w; names is the NGL_UV_NAMES table. This is
 * the hot part of create{}: the common case (a space name, a table of three
 * in-range numbers) costs the fewest API calls we can manage, at fixed stack
 * slots; anything else goes to the checks that raise, so the messages are the
 * same either way.
 */
static void read_coords(lua_State *L, int idx, const ngl_names *names, int arg, const char *fn,
                        tok_write *w) {
  if (lua_type(L, idx) != LUA_TTABLE)
    ngl_argerror(L, arg, fn, "coords must be a table of spaces, got %s", ngl_describe(L, idx));
  uint32_t given = 0;
  int k = idx + 1, v = k + 1; /* lua_next's key and value slots */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int s = ngl_name_of(names, lua_topointer(L, k), NGL_NAME_SPACE);
    /* numbers 1..8 take the checked path, which raises for anything else */
    if (s < 0) s = ngl_check_space(L, k, arg, fn);
    if (given & NG_TF_COORDS(s)) /* "L1" and "physical" in one table */
      ngl_argerror(L, arg, fn, "coords of %s given twice", ng_space_name(s));
    given |= NG_TF_COORDS(s);
    if (lua_type(L, v) != LUA_TTABLE || lua_rawlen(L, v) != 3) {
      char what[16];
      snprintf(what, sizeof what, "coords of %s", ng_space_name(s));
      ngl_check_triple(L, v, arg, fn, what); /* raises saying what is wrong */
    }
    int types[3];
    for (int a = 0; a < 3; a++)
      types[a] = lua_rawgeti(L, v, a + 1);
    for (int a = 0; a < 3; a++) {
      /* ngl_check_coord builds its message only for what fails here; the
       * range is the runtime's, checked when encoding (encode_write) */
      double x = types[a] == LUA_TNUMBER ? lua_tonumberx(L, v + 1 + a, NULL) : NAN;
      if (!isfinite(x)) ngl_check_coord(L, v + 1 + a, arg, fn, s, a);
      w->xyz[s][a] = x;
    }
    lua_settop(L, k); /* the three numbers and the value */
    w->mask |= NG_TF_COORDS(s);
  }
}

/* The fields a token write takes (token_field's). */
#define TOKEN_WRITABLE                                                                             \
  (NGL_KEY(NGL_K_WEIGHT) | NGL_KEY(NGL_K_FLAGS) | NGL_KEY(NGL_K_ENTITY) |                          \
   NGL_KEY(NGL_K_FIELD_RADIUS) | NGL_KEY(NGL_K_FIELD_STRENGTH) | NGL_KEY(NGL_K_TIMESTAMP) |        \
   NGL_KEY(NGL_K_DOMAIN) | NGL_KEY(NGL_K_COORDS))

/* Applies field `key` with the value at vidx to w; raises naming arg/fn.
 * Returns 0 if the key is not a writable token field. */
static int token_field(lua_State *L, int key, int vidx, int arg, const char *fn, tok_write *w) {
  switch (key) {
  case NGL_K_WEIGHT: {
    w->t.weight = ngl_check_float(L, vidx, arg, fn, "weight");
    ngl_check_token_rule(L, &w->t, NG_TF_WEIGHT, arg, fn);
    w->mask |= NG_TF_WEIGHT;
    return 1;
  }
  case NGL_K_FLAGS:
    w->t.flags = (uint16_t)ngl_check_integer(L, vidx, arg, fn, "flags", 0, 0xFFFF);
    w->mask |= NG_TF_FLAGS;
    return 1;
  case NGL_K_ENTITY:
    w->entity = (int)ngl_check_entity(L, vidx, arg, fn);
    w->mask |= NG_TF_ENTITY;
    return 1;
  case NGL_K_FIELD_RADIUS: {
    double v = ngl_check_number(L, vidx, arg, fn, "field_radius");
    if (!(v >= 0.0 && (float)v * 100.0f < 256.0f))
      ngl_argerror(L, arg, fn, "field_radius must be within 0..2.55, got %s",
                   ngl_describe(L, vidx));
    ng_token_set_field_radius(&w->t, (float)v);
    w->mask |= NG_TF_FIELD_RADIUS;
    return 1;
  }
  case NGL_K_FIELD_STRENGTH: {
    double v = ngl_check_number(L, vidx, arg, fn, "field_strength");
    if (!(v >= 0.0 && v <= 1.0))
      ngl_argerror(L, arg, fn, "field_strength must be within 0..1, got %s", ngl_describe(L, vidx));
    ng_token_set_field_strength(&w->t, (float)v);
    w->mask |= NG_TF_FIELD_STRENGTH;
    return 1;
  }
  case NGL_K_TIMESTAMP:
    w->t.timestamp = (uint32_t)ngl_check_integer(L, vidx, arg, fn, "timestamp", 0, UINT32_MAX);
    w->mask |= NG_TF_TIMESTAMP;
    return 1;
  case NGL_K_DOMAIN: {
    uint32_t d = (uint32_t)ngl_check_integer(L, vidx, arg, fn, "domain", 0, 15);
    w->t.id = (w->t.id & 0x0FFFFFFFu) | (d << 28);
    w->mask |= NG_TF_DOMAIN;
    return 1;
  }
  case NGL_K_COORDS:
    lua_pushvalue(L, vidx); /* read_coords wants it on top */
    read_coords(L, lua_gettop(L), lua_touserdata(L, NGL_UV(NGL_UV_NAMES)), arg, fn, w);
    lua_pop(L, 1);
    return 1;
  default:
    return 0;
  }
}

/*
 * Reads the fields table at absolute index idx (argument arg of fn) into w.
 * One lua_next walk (it also finds unknown keys); the names table is fetched
 * once, and the fields create{} mostly carries (weight, entity, coords) are
 * decoded inline when their values are well-formed. Everything else,
 * including every error, goes through token_field: the messages are the same.
 */
static void read_table(lua_State *L, const ngl_names *names, int idx, int top, int arg,
                       const char *fn, tok_write *w) {
  int k = top + 1, v = k + 1; /* lua_next's key and value slots; top is lua_gettop */
  lua_pushnil(L);             /* stack: ..., nil; each turn ..., key (k), value (v), reset to k */
  while (lua_next(L, idx)) {
    int key = ngl_name_of(names, lua_topointer(L, k), NGL_NAME_KEY);
    if (key == NGL_K_COORDS) {
      read_coords(L, v, names, arg, fn, w);
      lua_settop(L, k);
      continue;
    }
    if (key == NGL_K_ENTITY) {
      int e = ngl_name_of(names, lua_topointer(L, v), NGL_NAME_ENTITY);
      if (e >= 0) {
        w->entity = e;
        w->mask |= NG_TF_ENTITY;
        lua_settop(L, k);
        continue;
      }
    } else if (key == NGL_K_WEIGHT && lua_type(L, v) == LUA_TNUMBER) {
      double x = lua_tonumberx(L, v, NULL);
      if (x >= 0.0 && x <= 100.0 && ((float)x != 0.0f || x == 0.0)) { /* else token_field raises */
        w->t.weight = (float)x;
        w->mask |= NG_TF_WEIGHT;
        lua_settop(L, k);
        continue;
      }
    }
    if (!token_field(L, key < 0 ? NGL_K_NONE : key, v, arg, fn, w))
      ngl_unknown_key(L, k, arg, fn, "token field", TOKEN_WRITABLE);
    lua_settop(L, k);
  }
}

/* Reads a fields table at idx (argument arg of fn) into w. */
static void read_fields(lua_State *L, int idx, int arg, const char *fn, tok_write *w) {
  if (lua_type(L, idx) != LUA_TTABLE)
    ngl_argerror(L, arg, fn, "table of token fields expected, got %s", ngl_describe(L, idx));
  read_table(L, lua_touserdata(L, NGL_UV(NGL_UV_NAMES)), lua_absindex(L, idx), lua_gettop(L), arg,
             fn, w);
}

/* xyz is left as it is: only the spaces in mask are read, and zeroing its
 * 192 bytes was a memset call per create. */
static void tok_write_init(tok_write *w) {
  ng_token_init(&w->t);
  w->mask = 0;
  w->entity = -1;
}

/* Encodes the coordinates w carries in rt's units (raises as a bad argument
 * `arg` of fn when one does not fit). After the checks: runs no Lua code
 * unless it raises. */
static void encode_write(lua_State *L, ng_runtime *rt, tok_write *w, int arg, const char *fn) {
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(w->mask & NG_TF_COORDS(s))) continue;
    int16_t raw[3];
    ngl_encode_coords(L, rt, s, w->xyz[s], 1, raw, arg, fn);
    memcpy(w->t.coords[s], raw, sizeof raw);
  }
}

/* Puts a given entity into the flags being written (after `flags`, whatever
 * the table order). Given without flags, NG_TF_ENTITY writes the entity bits
 * alone in the update's one locked write: no read first, so a concurrent
 * write of the other flags is never undone. */
static void apply_entity(tok_write *w) {
  if (w->entity >= 0) ng_token_set_entity(&w->t, (unsigned)w->entity);
}

/* ---- rt.tokens ---------------------------------------------------------- */

/* rt.tokens:create([fields]) -> id. Defaults: weight 1.0 (the original Python
 * wrapper's), ACTIVE, placed in the spaces of `coords` only, timestamp now. */
static int tokens_create(lua_State *L) {
  /* ngl_self's test in fewer calls (create is the hot path): the metatable
   * by its address, left on the stack above the fields (slot 3); ngl_self
   * raises if it fails, on the stack as given ("got no value") */
  int top = lua_gettop(L);
  lua_settop(L, 2); /* stack: self, fields (or nil); then self, fields, mt */
  const ngl_names *names = lua_touserdata(L, NGL_UV(NGL_UV_NAMES));
  ngl_handle *self = NULL;
  if (lua_getmetatable(L, 1) && lua_topointer(L, -1) == names->mt[NGL_UV_TOKENS_MT] &&
      lua_type(L, 1) == LUA_TUSERDATA) {
    self = lua_touserdata(L, 1);
  } else {
    lua_settop(L, top < 2 ? top : 2);
    self = ngl_self(L, NGL_UV_TOKENS_MT, "create");
  }
  ngl_rt(L, self->owner); /* a closed runtime first, whatever the fields */
  tok_write w;
  tok_write_init(&w);
  w.t.weight = 1.0f;
  int t = lua_type(L, 2);
  if (t == LUA_TTABLE)
    read_table(L, names, 2, 3, 2, "create", &w); /* 3: the metatable */
  else if (t != LUA_TNIL)
    read_fields(L, 2, 2, "create", &w); /* raises */
  apply_entity(&w);
  ng_place at[NG_SPACES]; /* encoded by the core under its lock, in the units of the moment */
  size_t n_at = 0;
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(w.mask & NG_TF_COORDS(s))) continue;
    at[n_at].space = s;
    memcpy(at[n_at++].xyz, w.xyz[s], sizeof w.xyz[s]);
  }
  ng_runtime *rt = ngl_rt(L, self->owner); /* after the checks (see ngl_runtime) */
  ng_id id;
  ng_status st = ng_token_create_at(rt, &w.t, at, n_at, &id);
  if (st != NG_OK) return ngl_status_error(L, rt, st, 2, "create");
  lua_pushinteger(L, id);
  return 1;
}

/* rt.tokens:get(id) -> Token handle, or nil when there is no such token. */
static int tokens_get(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_TOKENS_MT, "get");
  ng_runtime *rt = ngl_rt(L, self->owner);
  ng_id id = ngl_check_token_id(L, 2, 2, "get", self->owner);
  ng_token t;
  if (ng_token_get(rt, id, &t) != NG_OK) {
    lua_pushnil(L);
    return 1;
  }
  ngl_push_handle(L, 1, NGL_UV_TOKEN_MT, id);
  return 1;
}

/* Shared by rt.tokens:update and Token:update: true, or false if missing. */
static int do_update(lua_State *L, ngl_runtime *owner, ng_id id, int fidx, const char *fn) {
  ngl_rt(L, owner);
  tok_write w;
  tok_write_init(&w);
  read_fields(L, fidx, fidx, fn, &w);
  apply_entity(&w);
  ng_runtime *rt = ngl_rt(L, owner);
  encode_write(L, rt, &w, fidx, fn);
  ng_status st = ng_token_update(rt, id, &w.t, w.mask);
  if (st == NG_ENOTFOUND) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (st != NG_OK) return ngl_status_error(L, rt, st, fidx, fn);
  lua_pushboolean(L, 1);
  return 1;
}

/* rt.tokens:update(id, fields) -> true, or false when there is no such token. */
static int tokens_update(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_TOKENS_MT, "update");
  ng_id id = ngl_check_token_id(L, 2, 2, "update", self->owner);
  return do_update(L, self->owner, id, 3, "update");
}

/* rt.tokens:move(space, ids, xyz) -> n: token ids[i] moves to (xyz[3i-2],
 * xyz[3i-1], xyz[3i]) in `space`, for every i, in one call (one lock, the
 * grid's batch path; all or nothing: a bad entry or a missing token raises
 * and moves none). For a game loop's frame: no table per token, and the
 * buffers are the runtime's own, reused, so a frame makes no garbage. */
static int tokens_move(lua_State *L) {
  static const char fn[] = "move";
  ngl_handle *self = ngl_self(L, NGL_UV_TOKENS_MT, fn);
  ngl_rt(L, self->owner);
  int space = ngl_check_space(L, 2, 2, fn);
  if (lua_type(L, 3) != LUA_TTABLE)
    return ngl_argerror(L, 3, fn, "array of token ids expected, got %s", ngl_describe(L, 3));
  if (lua_type(L, 4) != LUA_TTABLE)
    return ngl_argerror(L, 4, fn, "array of coordinates (x, y, z for each id) expected, got %s",
                        ngl_describe(L, 4));
  size_t n = lua_rawlen(L, 3), nc = lua_rawlen(L, 4);
  if (n > NG_TOKEN_SLOT_MAX)
    return ngl_argerror(L, 3, fn, "at most %I ids expected, got %I", (lua_Integer)NG_TOKEN_SLOT_MAX,
                        (lua_Integer)n);
  if (nc != 3 * n)
    return ngl_argerror(L, 4, fn, "%I numbers expected (x, y, z for each of %I ids), got %I",
                        (lua_Integer)(3 * n), (lua_Integer)n, (lua_Integer)nc);
  ng_id *ids = ngl_ids(L, self->owner, n ? n : 1);
  ng_token *vals = ngl_moves(L, self->owner, n ? n : 1);
  double *xyz = ngl_xyz(L, self->owner, n ? 3 * n : 1);
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 3, (lua_Integer)i + 1);
    ids[i] = ngl_check_token_id(L, -1, 3, fn, self->owner);
    lua_pop(L, 1);
    for (int a = 0; a < 3; a++) {
      lua_rawgeti(L, 4, (lua_Integer)(3 * i) + a + 1);
      xyz[3 * i + (size_t)a] = ngl_check_coord(L, -1, 4, fn, space, a);
      lua_pop(L, 1);
    }
  }
  /* the buffers are filled by steps that run no Lua code on success */
  ng_runtime *rt = ngl_rt(L, self->owner);
  {
    int16_t raw[3 * 64];
    for (size_t i = 0; i < n; i += 64) { /* encoded in the runtime's units, 64 points a call */
      size_t m = n - i < 64 ? n - i : 64;
      ng_status est = ng_coords_encode(rt, space, xyz + 3 * i, m, raw);
      if (est != NG_OK) /* name the entry, counted from 1 */
        for (size_t k = 0; k < m; k++)
          if (ng_coords_encode(rt, space, xyz + 3 * (i + k), 1, raw) != NG_OK) {
            lua_pushstring(L, ng_last_error_detail(rt)); /* before raising allocates */
            return ngl_argerror(L, 4, fn, "entry %I: %s", (LUAI_UACINT)(i + k) + 1,
                                lua_tostring(L, -1));
          }
      for (size_t k = 0; k < m; k++)
        memcpy(vals[i + k].coords[space], raw + 3 * k, sizeof vals[i + k].coords[space]);
    }
  }
  ng_status st = ng_token_update_batch(rt, ids, vals, n, NG_TF_COORDS(space));
  if (st == NG_ENOTFOUND) { /* name the first missing entry, counted from 1 */
    ng_token tmp;
    for (size_t i = 0; i < n; i++)
      if (ng_token_get(rt, ids[i], &tmp) != NG_OK)
        return ngl_argerror(L, 3, fn, "entry %I: no token %I", (lua_Integer)i + 1,
                            (lua_Integer)ids[i]);
  }
  if (st != NG_OK) return ngl_status_error(L, rt, st, 3, fn);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* rt.tokens:delete(id) -> true (with its connections), or false. */
static int tokens_delete(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_TOKENS_MT, "delete");
  ng_runtime *rt = ngl_rt(L, self->owner);
  ng_id id = ngl_check_token_id(L, 2, 2, "delete", self->owner);
  ng_status st = ng_token_delete(rt, id, NULL);
  if (st != NG_OK && st != NG_ENOTFOUND) return ngl_status_error(L, rt, st, 2, "delete");
  lua_pushboolean(L, st == NG_OK);
  return 1;
}

/* rt.tokens:list([limit [, offset [, into]]]) -> {ids...} ascending. */
static int tokens_list(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_TOKENS_MT, "list");
  ngl_list_args a;
  ngl_check_list_args(L, "list", ng_token_count(ngl_rt(L, self->owner)), &a);
  size_t n = 0;
  ngl_push_list(L, a.into, a.limit);
  /* from here to the end no step runs Lua code: the buffer and rt stay valid */
  ng_runtime *rt = ngl_rt(L, self->owner);
  ng_id *ids = ngl_ids(L, self->owner, a.limit ? a.limit : 1);
  ng_status st = a.limit ? ng_token_list(rt, a.offset, a.limit, ids, &n) : NG_OK;
  if (st != NG_OK) return ngl_status_error(L, rt, st, 2, "list");
  ngl_fill_ids(L, ids, n);
  return 1;
}

static int tokens_count(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_TOKENS_MT, "count");
  lua_pushinteger(L, (lua_Integer)ng_token_count(ngl_rt(L, self->owner)));
  return 1;
}

/* rt.tokens:clear() -> tokens removed, connections removed. */
static int tokens_clear(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_TOKENS_MT, "clear");
  ng_runtime *rt = ngl_rt(L, self->owner);
  size_t nt = 0, nc = 0;
  ng_status st = ng_token_clear(rt, &nt, &nc);
  if (st != NG_OK) return ngl_status_error(L, rt, st, 1, "clear");
  lua_pushinteger(L, (lua_Integer)nt);
  lua_pushinteger(L, (lua_Integer)nc);
  return 2;
}

/* The iterator of rt.tokens:iter(): state = rt.tokens, control = last id. */
static int tokens_iter_next(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_TOKENS_MT, "iter");
  ng_id after = (ng_id)ngl_check_integer(L, 2, 2, "iter", "control value (last id)", 0,
                                         (lua_Integer)NG_ID_MAX);
  ng_runtime *rt = ngl_rt(L, self->owner);
  ng_id next;
  if (ng_token_next(rt, after, &next) != NG_OK) return 0;
  lua_pushinteger(L, next);
  ngl_push_handle(L, 1, NGL_UV_TOKEN_MT, next);
  return 2;
}

/*
 * for id, tok in rt.tokens:iter() do ... end -- ascending id order.
 * Each step asks for the smallest live id above the last one, so during the
 * loop: deleting the current or any token is safe (deleted tokens not yet
 * reached are skipped); tokens created during the loop are visited (their
 * ids are higher); after clear() the loop visits only tokens created later.
 */
static int tokens_iter(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_TOKENS_MT, "iter");
  ngl_rt(L, self->owner);
  for (int i = 1; i <= NGL_NUP; i++)
    lua_pushvalue(L, NGL_UV(i));
  lua_pushcclosure(L, tokens_iter_next, NGL_NUP);
  lua_pushvalue(L, 1);
  lua_pushinteger(L, 0); /* stack: self, next, self (state), 0 (control) */
  return 3;
}

/* rt.tokens:exists(id) -> boolean. */
static int tokens_exists(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_TOKENS_MT, "exists");
  ng_runtime *rt = ngl_rt(L, self->owner);
  ng_id id = ngl_check_token_id(L, 2, 2, "exists", self->owner);
  ng_token t;
  lua_pushboolean(L, ng_token_get(rt, id, &t) == NG_OK);
  return 1;
}

static int tokens_tostring(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_TOKENS_MT, "__tostring");
  if (self->owner->rt == NULL)
    lua_pushliteral(L, "neurograph.Tokens (closed)");
  else
    lua_pushfstring(L, "neurograph.Tokens (%I)", (LUAI_UACINT)ng_token_count(self->owner->rt));
  return 1;
}

/* ---- Token handles ------------------------------------------------------ */

/* The live record of handle h (self at index 1), or raises. */
static ngl_handle *token_get(lua_State *L, const char *fn, ng_token *out) {
  ngl_handle *h = ngl_self(L, NGL_UV_TOKEN_MT, fn);
  if (ng_token_get(ngl_rt(L, h->owner), h->id, out) != NG_OK)
    luaL_error(L, "token %I no longer exists", (LUAI_UACINT)h->id);
  return h;
}

/* Pushes the value of field key of t. */
static void push_token_field(lua_State *L, const ng_token *t, ng_id id, int key) {
  switch (key) {
  case NGL_K_ID:
    lua_pushinteger(L, id);
    break;
  case NGL_K_WEIGHT:
    ngl_push_float(L, t->weight);
    break;
  case NGL_K_FLAGS:
    lua_pushinteger(L, t->flags);
    break;
  case NGL_K_ENTITY:
    lua_pushstring(L, ng_entity_name(ng_token_get_entity(t)));
    break;
  case NGL_K_FIELD_RADIUS:
    lua_pushnumber(L, t->field_radius / 100.0);
    break;
  case NGL_K_FIELD_STRENGTH:
    lua_pushnumber(L, t->field_strength / 255.0);
    break;
  case NGL_K_TIMESTAMP:
    lua_pushinteger(L, t->timestamp);
    break;
  case NGL_K_DOMAIN:
    lua_pushinteger(L, NG_ID_DOMAIN(t->id));
    break;
  default:
    lua_pushnil(L);
    break;
  }
}

/* tok.field reads through to the store; tok:method() finds the method. */
static int token_index(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_TOKEN_MT, "__index");
  lua_pushvalue(L, 2); /* stack: tok, key, key; then tok, key, method or NGL_K_* */
  int t = lua_rawget(L, NGL_UV(NGL_UV_TOKEN_INDEX));
  if (t == LUA_TFUNCTION) return 1;
  if (t != LUA_TNUMBER)
    return luaL_error(L, "neurograph.Token has no field %s", ngl_describe(L, 2));
  int key = (int)lua_tointeger(L, -1);
  if (key == NGL_K_ID) {
    lua_pushinteger(L, h->id); /* readable even when stale, for messages */
    return 1;
  }
  ng_token rec;
  token_get(L, "__index", &rec);
  push_token_field(L, &rec, h->id, key);
  return 1;
}

/* tok.field = value: one atomic ng_token_update of that field. */
static int token_newindex(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_TOKEN_MT, "__newindex");
  ngl_rt(L, h->owner);
  int key = ngl_key(L, 2);
  lua_pushvalue(L, 2); /* stack: tok, key, value, key; then ..., method or NGL_K_* */
  int kind = lua_rawget(L, NGL_UV(NGL_UV_TOKEN_INDEX));
  lua_pop(L, 1); /* stack: tok, key, value */
  tok_write w;
  tok_write_init(&w);
  if (kind == LUA_TFUNCTION)
    return luaL_error(L, "cannot assign to method %s of neurograph.Token", ngl_describe(L, 2));
  if (kind != LUA_TNUMBER)
    return luaL_error(L, "neurograph.Token has no field %s", ngl_describe(L, 2));
  if (!token_field(L, key, 3, 3, "__newindex", &w))
    return luaL_error(L, "field '%s' of neurograph.Token is read-only", ngl_key_names[key]);
  apply_entity(&w);
  ng_runtime *rt = ngl_rt(L, h->owner);
  encode_write(L, rt, &w, 3, "__newindex");
  ng_status st = ng_token_update(rt, h->id, &w.t, w.mask);
  if (st == NG_ENOTFOUND) return luaL_error(L, "token %I no longer exists", (LUAI_UACINT)h->id);
  if (st != NG_OK) return ngl_status_error(L, rt, st, 3, "__newindex");
  return 0;
}

/* tok:coords([space]) -> x, y, z in the space's units (space defaults to
 * L1), or nil when the token is not placed there. */
static int token_coords(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_TOKEN_MT, "coords");
  ngl_rt(L, h->owner);
  int s = lua_isnoneornil(L, 2) ? NG_L1 : ngl_check_space(L, 2, 2, "coords");
  ng_runtime *rt = ngl_rt(L, h->owner);
  unsigned spaces;
  if (ng_token_spaces(rt, h->id, &spaces) != NG_OK)
    return luaL_error(L, "token %I no longer exists", (LUAI_UACINT)h->id);
  int n = ngl_push_position(L, rt, h->id, s);
  if (n == 0) lua_pushnil(L);
  return n ? n : 1;
}

/* tok:set_coords(space, x, y, z): places the token in that space at (x, y,
 * z), or moves it there; one atomic write. */
static int token_set_coords(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_TOKEN_MT, "set_coords");
  ngl_rt(L, h->owner);
  int s = ngl_check_space(L, 2, 2, "set_coords");
  double xyz[3];
  for (int a = 0; a < 3; a++)
    xyz[a] = ngl_check_coord(L, 3 + a, 3 + a, "set_coords", s, a);
  ng_runtime *rt = ngl_rt(L, h->owner);
  ng_status st = ng_token_place(rt, h->id, s, xyz);
  if (st == NG_ENOTFOUND) return luaL_error(L, "token %I no longer exists", (LUAI_UACINT)h->id);
  /* the core names the axis ("y of L3 must be within ..."): blame its argument */
  char axis = ng_last_error_detail(rt)[0];
  int arg = axis >= 'x' && axis <= 'z' ? 3 + (axis - 'x') : 3;
  if (st != NG_OK) return ngl_status_error(L, rt, st, arg, "set_coords");
  return 0;
}

/* tok:unplace(space): takes the token out of that space (queries there no
 * longer see it); nothing happens if it is not placed there. */
static int token_unplace(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_TOKEN_MT, "unplace");
  ngl_rt(L, h->owner);
  int s = ngl_check_space(L, 2, 2, "unplace");
  ng_runtime *rt = ngl_rt(L, h->owner);
  ng_status st = ng_token_unplace(rt, h->id, s);
  if (st == NG_ENOTFOUND) return luaL_error(L, "token %I no longer exists", (LUAI_UACINT)h->id);
  if (st != NG_OK) return ngl_status_error(L, rt, st, 2, "unplace");
  return 0;
}

/* tok:spaces() -> {"L1", ...}: the spaces the token is placed in, in order. */
static int token_spaces(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_TOKEN_MT, "spaces");
  ngl_rt(L, h->owner);
  lua_createtable(L, NG_SPACES, 0);
  ng_runtime *rt = ngl_rt(L, h->owner); /* after the allocation */
  unsigned spaces;
  if (ng_token_spaces(rt, h->id, &spaces) != NG_OK)
    return luaL_error(L, "token %I no longer exists", (LUAI_UACINT)h->id);
  lua_Integer n = 0;
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(spaces >> s & 1u)) continue;
    lua_pushstring(L, ng_space_name(s));
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

/* tok:update(fields) -> true (raises if the token no longer exists). */
static int token_update(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_TOKEN_MT, "update");
  do_update(L, h->owner, h->id, 2, "update");
  if (!lua_toboolean(L, -1)) return luaL_error(L, "token %I no longer exists", (LUAI_UACINT)h->id);
  return 1;
}

/* tok:to_table() -> plain table of every field, coords = {L1 = {x, y, z}, ...}. */
static int token_to_table(lua_State *L) {
  ng_token t;
  ngl_handle *h = token_get(L, "to_table", &t);
  static const int keys[] = {NGL_K_ID,        NGL_K_WEIGHT,       NGL_K_FLAGS,
                             NGL_K_ENTITY,    NGL_K_FIELD_RADIUS, NGL_K_FIELD_STRENGTH,
                             NGL_K_TIMESTAMP, NGL_K_DOMAIN};
  lua_createtable(L, 0, 9); /* stack: tok, t; each field goes t[name] */
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    push_token_field(L, &t, h->id, keys[i]);
    lua_setfield(L, -2, ngl_key_names[keys[i]]);
  }
  /* coords: only the spaces the token is placed in, in their units */
  lua_createtable(L, 0, 2); /* stack: tok, t, coords, then coords[space] = xyz */
  for (int s = 0; s < NG_SPACES; s++) {
    lua_createtable(L, 3, 0); /* allocated before rt is fetched for the read */
    int n = ngl_push_position(L, ngl_rt(L, h->owner), h->id, s);
    if (n == 0) {
      lua_pop(L, 1);
      continue;
    }
    for (int a = 3; a >= 1; a--)
      lua_rawseti(L, -1 - a, a); /* stack: ..., xyz, x, y, z: z first */
    lua_setfield(L, -2, ng_space_name(s));
  }
  lua_setfield(L, -2, "coords");
  return 1;
}

/* tok:delete() -> true, or false if it was already gone. */
static int token_delete(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_TOKEN_MT, "delete");
  ng_runtime *rt = ngl_rt(L, h->owner);
  ng_status st = ng_token_delete(rt, h->id, NULL);
  if (st != NG_OK && st != NG_ENOTFOUND) return ngl_status_error(L, rt, st, 1, "delete");
  lua_pushboolean(L, st == NG_OK);
  return 1;
}

/* tok:exists() -> boolean (never raises for a stale handle). */
static int token_exists(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_TOKEN_MT, "exists");
  ng_token t;
  lua_pushboolean(L, ng_token_get(ngl_rt(L, h->owner), h->id, &t) == NG_OK);
  return 1;
}

static int token_tostring(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_TOKEN_MT, "__tostring");
  lua_pushfstring(L, "neurograph.Token(%I)", (LUAI_UACINT)h->id);
  return 1;
}

/* Equal when both name the same id in the same C runtime. */
static int token_eq(lua_State *L) {
  ngl_handle *a = ngl_toudata(L, 1, NGL_UV_TOKEN_MT);
  ngl_handle *b = ngl_toudata(L, 2, NGL_UV_TOKEN_MT);
  lua_pushboolean(
      L, a != NULL && b != NULL && a->id == b->id &&
             (a->owner == b->owner || (a->owner->rt != NULL && a->owner->rt == b->owner->rt)));
  return 1;
}

static const luaL_Reg tokens_methods[] = {
    {"create", tokens_create}, {"get", tokens_get},   {"update", tokens_update},
    {"delete", tokens_delete}, {"list", tokens_list}, {"count", tokens_count},
    {"clear", tokens_clear},   {"iter", tokens_iter}, {"exists", tokens_exists},
    {"move", tokens_move},     {"positions", ngl_tokens_positions},
    {NULL, NULL},
};
static const luaL_Reg token_meta[] = {
    {"__index", token_index},
    {"__newindex", token_newindex},
    {"__tostring", token_tostring},
    {"__eq", token_eq},
    {NULL, NULL},
};
static const luaL_Reg token_methods[] = {
    {"coords", token_coords},           {"set_coords", token_set_coords},
    {"unplace", token_unplace},         {"spaces", token_spaces},
    {"update", token_update},           {"to_table", token_to_table},
    {"connections", ngl_token_connections}, {"neighbours", ngl_token_neighbours},
    {"degree", ngl_token_degree},           {"delete", token_delete},
    {"exists", token_exists},           {NULL, NULL},
};

void ngl_open_token(lua_State *L, int ctx) {
  lua_rawgeti(L, ctx, NGL_UV_TOKENS_MT);
  lua_newtable(L); /* stack: ..., mt, methods; methods becomes mt.__index */
  ngl_setfuncs(L, ctx, -1, tokens_methods);
  lua_setfield(L, -2, "__index");
  static const luaL_Reg tokens_meta[] = {{"__tostring", tokens_tostring}, {NULL, NULL}};
  ngl_setfuncs(L, ctx, -1, tokens_meta);
  lua_pop(L, 1);

  lua_rawgeti(L, ctx, NGL_UV_TOKEN_MT);
  ngl_setfuncs(L, ctx, -1, token_meta);
  lua_pop(L, 1);
  /* stack: ..., index; token_index looks names up there: method or NGL_K_* */
  lua_rawgeti(L, ctx, NGL_UV_TOKEN_INDEX);
  ngl_setfuncs(L, ctx, -1, token_methods);
  static const int fields[] = {NGL_K_ID,        NGL_K_WEIGHT,       NGL_K_FLAGS,
                               NGL_K_ENTITY,    NGL_K_FIELD_RADIUS, NGL_K_FIELD_STRENGTH,
                               NGL_K_TIMESTAMP, NGL_K_DOMAIN};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    lua_pushinteger(L, fields[i]);
    lua_setfield(L, -2, ngl_key_names[fields[i]]);
  }
  lua_pop(L, 1);
}

/* neurograph.Connection handles and the rt.connections store object, with the learning rules. */
#include "binding.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* A connection write being assembled. `type` is applied first (it derives
 * mutability and, for Immutable types, confidence), then every other field,
 * so explicit values win whatever the table order. */
typedef struct conn_write {
  ng_connection c;
  uint32_t mask;
  int type;          /* -1: not given */
  int bidirectional; /* -1: not given */
} conn_write;

static void conn_write_init(conn_write *w) {
  memset(w, 0, sizeof *w);
  ng_connection_init(&w->c);
  w->type = -1;
  w->bidirectional = -1;
}

/* active_levels: a bitmask 0..255 or a list of spaces {"L1", "L3"}. */
static uint8_t check_levels(lua_State *L, int idx, int arg, const char *fn) {
  if (lua_type(L, idx) != LUA_TTABLE)
    return (uint8_t)ngl_check_integer(L, idx, arg, fn, "active_levels", 0, 255);
  idx = lua_absindex(L, idx);
  unsigned bits = 0;
  size_t n = lua_rawlen(L, idx);
  for (size_t i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i);
    bits |= 1u << ngl_check_space(L, -1, arg, fn);
    lua_pop(L, 1);
  }
  return (uint8_t)bits;
}

/* target_vector: 8 raw int16 values. */
static void check_target(lua_State *L, int idx, int arg, const char *fn, int16_t out[NG_SPACES]) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    ngl_argerror(L, arg, fn, "target_vector must be a table of 8 integers, got %s",
                 ngl_describe(L, idx));
  if (lua_rawlen(L, idx) != NG_SPACES)
    ngl_argerror(L, arg, fn, "target_vector must be a table of 8 integers, got %I values",
                 (LUAI_UACINT)lua_rawlen(L, idx));
  for (int i = 0; i < NG_SPACES; i++) {
    lua_rawgeti(L, idx, i + 1);
    out[i] = (int16_t)ngl_check_integer(L, -1, arg, fn, "target_vector entry", -32768, 32767);
    lua_pop(L, 1);
  }
}

/* Applies field key with the value at vidx to w; 0 if not a writable field. */
static int conn_field(lua_State *L, int key, int vidx, int arg, const char *fn, conn_write *w) {
  ng_connection *c = &w->c;
  switch (key) {
  case NGL_K_TYPE:
    w->type = (int)ngl_check_conn_type(L, vidx, arg, fn);
    return 1;
  case NGL_K_MUTABILITY: {
    int t = lua_type(L, vidx);
    int m = -1;
    ngl_near near;
    ngl_near_init(&near, L, vidx);
    if (t == LUA_TSTRING) {
      for (unsigned i = 0; i <= NG_HYPOTHESIS; i++) {
        const char *name = ng_mutability_name(i);
        if (strlen(name) == near.len && memcmp(lua_tostring(L, vidx), name, near.len) == 0)
          m = (int)i;
        ngl_near_try(&near, name);
      }
    } else if (t == LUA_TNUMBER) {
      int ok;
      lua_Integer n = lua_tointegerx(L, vidx, &ok);
      if (ok && n >= 0 && n <= NG_HYPOTHESIS) m = (int)n;
    }
    if (m < 0)
      ngl_argerror(L, arg, fn,
                   "mutability must be 'Immutable', 'Learnable', 'Hypothesis' or 0..2, got %s",
                   ngl_describe_near(L, vidx, &near));
    c->mutability = (uint8_t)m;
    w->mask |= NG_CF_MUTABILITY;
    return 1;
  }
  case NGL_K_RIGIDITY:
    c->rigidity = ngl_check_fraction(L, vidx, arg, fn, "rigidity");
    w->mask |= NG_CF_RIGIDITY;
    return 1;
  case NGL_K_CONFIDENCE:
    c->confidence = ngl_check_fraction(L, vidx, arg, fn, "confidence");
    w->mask |= NG_CF_CONFIDENCE;
    return 1;
  case NGL_K_LEARNING_RATE:
    c->learning_rate = ngl_check_fraction(L, vidx, arg, fn, "learning_rate");
    w->mask |= NG_CF_LEARNING_RATE;
    return 1;
  case NGL_K_DECAY_RATE:
    c->decay_rate = ngl_check_fraction(L, vidx, arg, fn, "decay_rate");
    w->mask |= NG_CF_DECAY_RATE;
    return 1;
  case NGL_K_PULL_STRENGTH: {
    c->pull_strength = ngl_check_float(L, vidx, arg, fn, "pull_strength");
    ngl_check_connection_rule(L, c, NG_CF_PULL_STRENGTH, arg, fn);
    w->mask |= NG_CF_PULL_STRENGTH;
    return 1;
  }
  case NGL_K_PREFERRED_DISTANCE: {
    c->preferred_distance = ngl_check_float(L, vidx, arg, fn, "preferred_distance");
    ngl_check_connection_rule(L, c, NG_CF_PREFERRED_DISTANCE, arg, fn);
    w->mask |= NG_CF_PREFERRED_DISTANCE;
    return 1;
  }
  case NGL_K_EVIDENCE_COUNT:
    c->evidence_count = (uint16_t)ngl_check_integer(L, vidx, arg, fn, "evidence_count", 0, 65535);
    w->mask |= NG_CF_EVIDENCE_COUNT;
    return 1;
  case NGL_K_ACTIVATION_COUNT:
    c->activation_count =
        (uint32_t)ngl_check_integer(L, vidx, arg, fn, "activation_count", 0, UINT32_MAX);
    w->mask |= NG_CF_ACTIVATION_COUNT;
    return 1;
  case NGL_K_FLAGS:
    c->flags = (uint8_t)ngl_check_integer(L, vidx, arg, fn, "flags", 0, 255);
    w->mask |= NG_CF_FLAGS;
    return 1;
  case NGL_K_BIDIRECTIONAL:
    w->bidirectional = ngl_check_boolean(L, vidx, arg, fn, "bidirectional");
    return 1;
  case NGL_K_ACTIVE_LEVELS:
    c->active_levels = check_levels(L, vidx, arg, fn);
    w->mask |= NG_CF_ACTIVE_LEVELS;
    return 1;
  case NGL_K_CREATED_AT:
    c->created_at = (uint32_t)ngl_check_integer(L, vidx, arg, fn, "created_at", 0, UINT32_MAX);
    w->mask |= NG_CF_CREATED_AT;
    return 1;
  case NGL_K_LAST_ACTIVATION:
    c->last_activation =
        (uint32_t)ngl_check_integer(L, vidx, arg, fn, "last_activation", 0, UINT32_MAX);
    w->mask |= NG_CF_LAST_ACTIVATION;
    return 1;
  case NGL_K_LAST_UPDATE:
    c->last_update = (uint32_t)ngl_check_integer(L, vidx, arg, fn, "last_update", 0, UINT32_MAX);
    w->mask |= NG_CF_LAST_UPDATE;
    return 1;
  case NGL_K_SOURCE_ID:
    c->source_id = (uint32_t)ngl_check_integer(L, vidx, arg, fn, "source_id", 0, UINT32_MAX);
    w->mask |= NG_CF_SOURCE_ID;
    return 1;
  case NGL_K_TARGET_VECTOR:
    check_target(L, vidx, arg, fn, c->target_vector);
    w->mask |= NG_CF_TARGET_VECTOR;
    return 1;
  default:
    return 0;
  }
}

/* The fields a connection write takes (conn_field's). */
#define CONN_WRITABLE                                                                              \
  (NGL_KEY(NGL_K_TYPE) | NGL_KEY(NGL_K_MUTABILITY) | NGL_KEY(NGL_K_RIGIDITY) |                     \
   NGL_KEY(NGL_K_CONFIDENCE) | NGL_KEY(NGL_K_LEARNING_RATE) | NGL_KEY(NGL_K_DECAY_RATE) |          \
   NGL_KEY(NGL_K_PULL_STRENGTH) | NGL_KEY(NGL_K_PREFERRED_DISTANCE) |                              \
   NGL_KEY(NGL_K_EVIDENCE_COUNT) | NGL_KEY(NGL_K_ACTIVATION_COUNT) | NGL_KEY(NGL_K_FLAGS) |        \
   NGL_KEY(NGL_K_BIDIRECTIONAL) | NGL_KEY(NGL_K_ACTIVE_LEVELS) | NGL_KEY(NGL_K_CREATED_AT) |       \
   NGL_KEY(NGL_K_LAST_ACTIVATION) | NGL_KEY(NGL_K_LAST_UPDATE) | NGL_KEY(NGL_K_SOURCE_ID) |        \
   NGL_KEY(NGL_K_TARGET_VECTOR))

static void read_fields(lua_State *L, int idx, int arg, const char *fn, conn_write *w) {
  if (lua_type(L, idx) != LUA_TTABLE)
    ngl_argerror(L, arg, fn, "table of connection fields expected, got %s", ngl_describe(L, idx));
  lua_pushnil(L); /* stack: ..., nil; in the loop ..., key, value */
  while (lua_next(L, idx)) {
    if (!conn_field(L, ngl_key(L, -2), -1, arg, fn, w))
      ngl_unknown_key(L, -2, arg, fn, "connection field", CONN_WRITABLE);
    lua_pop(L, 1);
  }
}

/* Folds the derived parts into w->c/mask: the type's mutability and forced
 * confidence (unless given explicitly) and the bidirectional bit: into the
 * flags when they were given, else written alone (NG_CF_FLAG_BITS) by the
 * update's one locked write, with no read first, so a concurrent write of the
 * other flag bits is never undone. */
static void finish_write(conn_write *w) {
  ng_connection tmp = w->c;
  if (w->type >= 0) {
    ng_connection_set_type(&tmp, (unsigned)w->type);
    w->c.connection_type = tmp.connection_type;
    w->mask |= NG_CF_TYPE;
    if (!(w->mask & NG_CF_MUTABILITY)) {
      w->c.mutability = tmp.mutability;
      w->mask |= NG_CF_MUTABILITY;
    }
    if (!(w->mask & NG_CF_CONFIDENCE) && tmp.mutability == NG_IMMUTABLE) {
      w->c.confidence = tmp.confidence;
      w->mask |= NG_CF_CONFIDENCE;
    }
  }
  if (w->bidirectional >= 0) {
    if (w->bidirectional)
      w->c.flags = (uint8_t)(w->c.flags | NG_CONN_BIDIRECTIONAL);
    else
      w->c.flags = (uint8_t)(w->c.flags & ~NG_CONN_BIDIRECTIONAL);
    if (!(w->mask & NG_CF_FLAGS)) w->mask |= NG_CF_FLAG_BITS(NG_CONN_BIDIRECTIONAL);
  }
}

/* ---- rt.connections ----------------------------------------------------- */

/* rt.connections:create(from, to [, fields]) -> id. from/to are token ids or
 * Token handles; fields take every settable field. Defaults as ng_connection_init
 * (AssociatedWith, Learnable, rigidity/confidence 128/255, ...). */
static int conns_create(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_CONNS_MT, "create");
  ngl_rt(L, self->owner);
  ng_id a = ngl_check_token_id(L, 2, 2, "create", self->owner);
  ng_id b = ngl_check_token_id(L, 3, 3, "create", self->owner);
  conn_write w;
  conn_write_init(&w);
  if (!lua_isnoneornil(L, 4)) read_fields(L, 4, 4, "create", &w);
  finish_write(&w);
  ng_connection *r = &w.c;
  ng_runtime *rt = ngl_rt(L, self->owner); /* after the checks (see ngl_runtime) */
  /* Missing endpoints are the caller's mistake: name the argument. */
  ng_token t;
  if (ng_token_get(rt, a, &t) != NG_OK)
    return ngl_argerror(L, 2, "create", "token %I does not exist", (LUAI_UACINT)a);
  if (ng_token_get(rt, b, &t) != NG_OK)
    return ngl_argerror(L, 3, "create", "token %I does not exist", (LUAI_UACINT)b);
  ng_id id;
  ng_status st = ng_connection_create(rt, a, b, r, &id);
  if (st == NG_EEXIST) {
    /* a -> b itself, or b -> a where one of the two is bidirectional */
    ng_id old = 0, from = a, to = b;
    if (ng_connection_find(rt, a, b, r->connection_type, &old) != NG_OK)
      ng_connection_find(rt, b, a, r->connection_type, &old);
    ng_connection_ends(rt, old, &from, &to);
    if (from == a && to == b)
      return ngl_argerror(L, 4, "create", "a %s connection %I -> %I already exists (connection %I)",
                          ng_conn_type_name(r->connection_type), (LUAI_UACINT)a, (LUAI_UACINT)b,
                          (LUAI_UACINT)old);
    return ngl_argerror(L, 4, "create",
                        "a %s connection %I -> %I already exists (connection %I) and one of the "
                        "two is bidirectional",
                        ng_conn_type_name(r->connection_type), (LUAI_UACINT)from,
                        (LUAI_UACINT)to, (LUAI_UACINT)old);
  }
  if (st != NG_OK) return ngl_status_error(L, rt, st, 4, "create");
  lua_pushinteger(L, id);
  return 1;
}

static int conns_get(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_CONNS_MT, "get");
  ng_runtime *rt = ngl_rt(L, self->owner);
  ng_id id = ngl_check_conn_id(L, 2, 2, "get", self->owner);
  ng_connection c;
  if (ng_connection_get(rt, id, &c) != NG_OK) {
    lua_pushnil(L);
    return 1;
  }
  ngl_push_handle(L, 1, NGL_UV_CONN_MT, id);
  return 1;
}

/* Writes fields at fidx into connection id: NG_OK, NG_ENOTFOUND or raises. */
static ng_status do_update(lua_State *L, ngl_runtime *owner, ng_id id, int fidx, const char *fn) {
  ngl_rt(L, owner);
  conn_write w;
  conn_write_init(&w);
  read_fields(L, fidx, fidx, fn, &w);
  finish_write(&w);
  ng_runtime *rt = ngl_rt(L, owner);
  ng_status st = ng_connection_update(rt, id, &w.c, w.mask);
  if (st == NG_EEXIST && (w.mask & NG_CF_TYPE))
    return ngl_argerror(L, fidx, fn, "a %s connection with the same endpoints already exists",
                        ng_conn_type_name(w.c.connection_type));
  if (st != NG_OK && st != NG_ENOTFOUND) return ngl_status_error(L, rt, st, fidx, fn);
  return st;
}

/* rt.connections:update(id, fields) -> true, or false if there is none. */
static int conns_update(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_CONNS_MT, "update");
  ng_id id = ngl_check_conn_id(L, 2, 2, "update", self->owner);
  lua_pushboolean(L, do_update(L, self->owner, id, 3, "update") == NG_OK);
  return 1;
}

static int conns_delete(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_CONNS_MT, "delete");
  ng_runtime *rt = ngl_rt(L, self->owner);
  ng_id id = ngl_check_conn_id(L, 2, 2, "delete", self->owner);
  ng_status st = ng_connection_delete(rt, id);
  if (st != NG_OK && st != NG_ENOTFOUND) return ngl_status_error(L, rt, st, 2, "delete");
  lua_pushboolean(L, st == NG_OK);
  return 1;
}

/* rt.connections:list([limit [, offset [, into]]]) -> {ids...} ascending. */
static int conns_list(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_CONNS_MT, "list");
  ngl_list_args a;
  ngl_check_list_args(L, "list", ng_connection_count(ngl_rt(L, self->owner)), &a);
  size_t n = 0;
  ngl_push_list(L, a.into, a.limit);
  /* from here to the end no step runs Lua code: the buffer and rt stay valid */
  ng_runtime *rt = ngl_rt(L, self->owner);
  ng_id *ids = ngl_ids(L, self->owner, a.limit ? a.limit : 1);
  ng_status st = a.limit ? ng_connection_list(rt, a.offset, a.limit, ids, &n) : NG_OK;
  if (st != NG_OK) return ngl_status_error(L, rt, st, 2, "list");
  ngl_fill_ids(L, ids, n);
  return 1;
}

static int conns_count(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_CONNS_MT, "count");
  lua_pushinteger(L, (lua_Integer)ng_connection_count(ngl_rt(L, self->owner)));
  return 1;
}

/* rt.connections:find(from, to [, type]) -> id or nil (type defaults to
 * AssociatedWith). */
static int conns_find(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_CONNS_MT, "find");
  ng_runtime *rt = ngl_rt(L, self->owner);
  ng_id a = ngl_check_token_id(L, 2, 2, "find", self->owner);
  ng_id b = ngl_check_token_id(L, 3, 3, "find", self->owner);
  unsigned type =
      lua_isnoneornil(L, 4) ? NG_CONN_ASSOCIATED_WITH : ngl_check_conn_type(L, 4, 4, "find");
  ng_id id;
  if (ng_connection_find(rt, a, b, type, &id) != NG_OK) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, id);
  return 1;
}

static int conns_iter_next(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_CONNS_MT, "iter");
  ng_id after = (ng_id)ngl_check_integer(L, 2, 2, "iter", "control value (last id)", 0,
                                         (lua_Integer)NG_ID_MAX);
  ng_runtime *rt = ngl_rt(L, self->owner);
  ng_id next;
  if (ng_connection_next(rt, after, &next) != NG_OK) return 0;
  lua_pushinteger(L, next);
  ngl_push_handle(L, 1, NGL_UV_CONN_MT, next);
  return 2;
}

/* for id, c in rt.connections:iter() do ... end: ascending ids, with the
 * same rule as rt.tokens:iter() for changes made during the loop. */
static int conns_iter(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_CONNS_MT, "iter");
  ngl_rt(L, self->owner);
  for (int i = 1; i <= NGL_NUP; i++)
    lua_pushvalue(L, NGL_UV(i));
  lua_pushcclosure(L, conns_iter_next, NGL_NUP);
  lua_pushvalue(L, 1);
  lua_pushinteger(L, 0); /* stack: self, next, self (state), 0 (control) */
  return 3;
}

static int conns_exists(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_CONNS_MT, "exists");
  ng_runtime *rt = ngl_rt(L, self->owner);
  ng_id id = ngl_check_conn_id(L, 2, 2, "exists", self->owner);
  ng_connection c;
  lua_pushboolean(L, ng_connection_get(rt, id, &c) == NG_OK);
  return 1;
}

static int conns_tostring(lua_State *L) {
  ngl_handle *self = ngl_self(L, NGL_UV_CONNS_MT, "__tostring");
  if (self->owner->rt == NULL)
    lua_pushliteral(L, "neurograph.Connections (closed)");
  else
    lua_pushfstring(L, "neurograph.Connections (%I)",
                    (LUAI_UACINT)ng_connection_count(self->owner->rt));
  return 1;
}

/* ---- Connection handles ------------------------------------------------- */

/* A connection's record and its endpoints' full ids (the record holds their
 * slots). Two reads, but consistent: a connection's endpoints never change,
 * and a deleted connection's id never comes back. */
typedef struct conn_view {
  ng_connection c;
  ng_id from, to;
} conn_view;

static bool conn_read(ng_runtime *rt, ng_id id, conn_view *out) {
  return ng_connection_get(rt, id, &out->c) == NG_OK &&
         ng_connection_ends(rt, id, &out->from, &out->to) == NG_OK;
}

static ngl_handle *conn_get(lua_State *L, const char *fn, conn_view *out) {
  ngl_handle *h = ngl_self(L, NGL_UV_CONN_MT, fn);
  if (!conn_read(ngl_rt(L, h->owner), h->id, out))
    luaL_error(L, "connection %I no longer exists", (LUAI_UACINT)h->id);
  return h;
}

static void push_fraction(lua_State *L, uint8_t v) {
  lua_pushnumber(L, v / 255.0);
}

static void push_conn_field(lua_State *L, const conn_view *v, ng_id id, int key) {
  const ng_connection *c = &v->c;
  switch (key) {
  case NGL_K_ID:
    lua_pushinteger(L, id);
    break;
  case NGL_K_FROM:
    lua_pushinteger(L, (lua_Integer)v->from);
    break;
  case NGL_K_TO:
    lua_pushinteger(L, (lua_Integer)v->to);
    break;
  case NGL_K_TYPE:
    lua_pushstring(L, ng_conn_type_name(c->connection_type));
    break;
  case NGL_K_CATEGORY: {
    int cat = ng_conn_type_category(c->connection_type);
    lua_pushstring(L, cat >= 0 ? ng_conn_category_name((unsigned)cat) : NULL);
    break;
  }
  case NGL_K_MUTABILITY:
    lua_pushstring(L, ng_mutability_name(c->mutability));
    break;
  case NGL_K_RIGIDITY:
    push_fraction(L, c->rigidity);
    break;
  case NGL_K_PULL_STRENGTH:
    ngl_push_float(L, c->pull_strength);
    break;
  case NGL_K_PREFERRED_DISTANCE:
    ngl_push_float(L, c->preferred_distance);
    break;
  case NGL_K_CONFIDENCE:
    push_fraction(L, c->confidence);
    break;
  case NGL_K_EVIDENCE_COUNT:
    lua_pushinteger(L, c->evidence_count);
    break;
  case NGL_K_ACTIVATION_COUNT:
    lua_pushinteger(L, c->activation_count);
    break;
  case NGL_K_FLAGS:
    lua_pushinteger(L, c->flags);
    break;
  case NGL_K_BIDIRECTIONAL:
    lua_pushboolean(L, (c->flags & NG_CONN_BIDIRECTIONAL) != 0);
    break;
  case NGL_K_LEARNING_RATE:
    push_fraction(L, c->learning_rate);
    break;
  case NGL_K_DECAY_RATE:
    push_fraction(L, c->decay_rate);
    break;
  case NGL_K_ACTIVE_LEVELS:
    lua_pushinteger(L, c->active_levels);
    break;
  case NGL_K_CREATED_AT:
    lua_pushinteger(L, c->created_at);
    break;
  case NGL_K_LAST_ACTIVATION:
    lua_pushinteger(L, c->last_activation);
    break;
  case NGL_K_LAST_UPDATE:
    lua_pushinteger(L, c->last_update);
    break;
  case NGL_K_SOURCE_ID:
    lua_pushinteger(L, c->source_id);
    break;
  case NGL_K_TARGET_VECTOR:
    lua_createtable(L, NG_SPACES, 0);
    for (int i = 0; i < NG_SPACES; i++) {
      lua_pushinteger(L, c->target_vector[i]);
      lua_rawseti(L, -2, i + 1);
    }
    break;
  default:
    lua_pushnil(L);
    break;
  }
}

static const int conn_fields[] = {
    NGL_K_ID,
    NGL_K_FROM,
    NGL_K_TO,
    NGL_K_TYPE,
    NGL_K_CATEGORY,
    NGL_K_MUTABILITY,
    NGL_K_RIGIDITY,
    NGL_K_PULL_STRENGTH,
    NGL_K_PREFERRED_DISTANCE,
    NGL_K_CONFIDENCE,
    NGL_K_EVIDENCE_COUNT,
    NGL_K_ACTIVATION_COUNT,
    NGL_K_FLAGS,
    NGL_K_BIDIRECTIONAL,
    NGL_K_LEARNING_RATE,
    NGL_K_DECAY_RATE,
    NGL_K_ACTIVE_LEVELS,
    NGL_K_CREATED_AT,
    NGL_K_LAST_ACTIVATION,
    NGL_K_LAST_UPDATE,
    NGL_K_SOURCE_ID,
    NGL_K_TARGET_VECTOR,
};

static int conn_index(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_CONN_MT, "__index");
  lua_pushvalue(L, 2); /* stack: c, key, key; then c, key, method or NGL_K_* */
  int t = lua_rawget(L, NGL_UV(NGL_UV_CONN_INDEX));
  if (t == LUA_TFUNCTION) return 1;
  if (t != LUA_TNUMBER)
    return luaL_error(L, "neurograph.Connection has no field %s", ngl_describe(L, 2));
  int key = (int)lua_tointeger(L, -1);
  if (key == NGL_K_ID) {
    lua_pushinteger(L, h->id);
    return 1;
  }
  conn_view c;
  conn_get(L, "__index", &c);
  push_conn_field(L, &c, h->id, key);
  return 1;
}

/* c.field = value: one update of that field (bidirectional writes its flag
 * bit alone). from, to, id and category are read-only. */
static int conn_newindex(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_CONN_MT, "__newindex");
  ngl_rt(L, h->owner);
  int key = ngl_key(L, 2);
  lua_pushvalue(L, 2); /* stack: c, key, value, key; then ..., method or NGL_K_* */
  int kind = lua_rawget(L, NGL_UV(NGL_UV_CONN_INDEX));
  lua_pop(L, 1); /* stack: c, key, value */
  if (kind == LUA_TFUNCTION)
    return luaL_error(L, "cannot assign to method %s of neurograph.Connection", ngl_describe(L, 2));
  if (kind != LUA_TNUMBER)
    return luaL_error(L, "neurograph.Connection has no field %s", ngl_describe(L, 2));
  conn_write w;
  conn_write_init(&w);
  if (!conn_field(L, key, 3, 3, "__newindex", &w))
    return luaL_error(L, "field '%s' of neurograph.Connection is read-only", ngl_key_names[key]);
  finish_write(&w);
  ng_runtime *rt = ngl_rt(L, h->owner);
  ng_status st = ng_connection_update(rt, h->id, &w.c, w.mask);
  if (st == NG_ENOTFOUND)
    return luaL_error(L, "connection %I no longer exists", (LUAI_UACINT)h->id);
  if (st != NG_OK) return ngl_status_error(L, rt, st, 3, "__newindex");
  return 0;
}

/* Applies a learning rule atomically; raises for a stale handle. */
static void learn(lua_State *L, const char *fn, ng_learn_op op, ng_connection *out) {
  ngl_handle *h = ngl_self(L, NGL_UV_CONN_MT, fn);
  ng_runtime *rt = ngl_rt(L, h->owner);
  ng_status st = ng_connection_learn(rt, h->id, op, out);
  if (st == NG_ENOTFOUND) luaL_error(L, "connection %I no longer exists", (LUAI_UACINT)h->id);
  if (st != NG_OK) ngl_status_error(L, rt, st, 1, fn);
}

/* c:activate() -> the new activation_count (ng_connection_activate's rule). */
static int conn_activate(lua_State *L) {
  ng_connection c;
  learn(L, "activate", NG_LEARN_ACTIVATE, &c);
  lua_pushinteger(L, c.activation_count);
  return 1;
}

/* c:update_confidence(success) -> the new confidence (0..1). */
static int conn_update_confidence(lua_State *L) {
  int ok = ngl_check_boolean(L, 2, 2, "update_confidence", "success");
  ng_connection c;
  learn(L, "update_confidence", ok ? NG_LEARN_SUCCESS : NG_LEARN_FAILURE, &c);
  lua_pushnumber(L, c.confidence / 255.0);
  return 1;
}

/* c:decay() -> true if the rule applied (a Hypothesis not updated for over an
 * hour), and the confidence afterwards. */
static int conn_decay(lua_State *L) {
  ng_connection c;
  learn(L, "decay", NG_LEARN_DECAY, &c);
  ngl_handle *h = lua_touserdata(L, 1);
  uint64_t now = ng_runtime_now(h->owner->rt);
  /* decay never refreshes last_update, so the condition can be re-read */
  lua_pushboolean(L, c.mutability == NG_HYPOTHESIS && now > c.last_update &&
                         now - c.last_update > 3600);
  lua_pushnumber(L, c.confidence / 255.0);
  return 2;
}

/* c:force(distance) -> the spring force at that distance. */
static int conn_force(lua_State *L) {
  conn_view v;
  conn_get(L, "force", &v);
  double d = ngl_check_number(L, 2, 2, "force", "distance");
  if (!(d >= -FLT_MAX && d <= FLT_MAX))
    return ngl_argerror(L, 2, "force", "distance out of range, got %s", ngl_describe(L, 2));
  ngl_push_float(L, ng_connection_force(&v.c, (float)d));
  return 1;
}

/* c:update(fields) -> true (raises if the connection no longer exists). */
static int conn_update(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_CONN_MT, "update");
  if (do_update(L, h->owner, h->id, 2, "update") == NG_ENOTFOUND)
    return luaL_error(L, "connection %I no longer exists", (LUAI_UACINT)h->id);
  lua_pushboolean(L, 1);
  return 1;
}

static int conn_to_table(lua_State *L) {
  conn_view c;
  ngl_handle *h = conn_get(L, "to_table", &c);
  /* stack: c, t; each field goes t[name] */
  lua_createtable(L, 0, (int)(sizeof conn_fields / sizeof conn_fields[0]));
  for (size_t i = 0; i < sizeof conn_fields / sizeof conn_fields[0]; i++) {
    push_conn_field(L, &c, h->id, conn_fields[i]);
    lua_setfield(L, -2, ngl_key_names[conn_fields[i]]);
  }
  return 1;
}

static int conn_delete(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_CONN_MT, "delete");
  ng_runtime *rt = ngl_rt(L, h->owner);
  ng_status st = ng_connection_delete(rt, h->id);
  if (st != NG_OK && st != NG_ENOTFOUND) return ngl_status_error(L, rt, st, 1, "delete");
  lua_pushboolean(L, st == NG_OK);
  return 1;
}

static int conn_exists(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_CONN_MT, "exists");
  ng_connection c;
  lua_pushboolean(L, ng_connection_get(ngl_rt(L, h->owner), h->id, &c) == NG_OK);
  return 1;
}

static int conn_tostring(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_CONN_MT, "__tostring");
  lua_pushfstring(L, "neurograph.Connection(%I)", (LUAI_UACINT)h->id);
  return 1;
}

static int conn_eq(lua_State *L) {
  ngl_handle *a = ngl_toudata(L, 1, NGL_UV_CONN_MT);
  ngl_handle *b = ngl_toudata(L, 2, NGL_UV_CONN_MT);
  lua_pushboolean(
      L, a != NULL && b != NULL && a->id == b->id &&
             (a->owner == b->owner || (a->owner->rt != NULL && a->owner->rt == b->owner->rt)));
  return 1;
}

/* ---- a token's links (Token methods, registered by token.c) ------------- */

/* The link filter at idx of a Token method: nothing (every link), a
 * direction "out" | "in" | "both" (the older form of tok:connections), or
 * {dir = ..., type = ..., category = ...}. */
static void read_link_filter(lua_State *L, int idx, const char *fn, ng_link_filter *f) {
  static const char *const dirs[] = {"out", "in", "both", NULL};
  static const ng_direction dvals[] = {NG_OUT, NG_IN, NG_BOTH};
  static const char dir_expected[] = "'out', 'in' or 'both'";
  f->dir = NG_BOTH;
  f->type = NG_ANY;
  f->category = NG_ANY;
  int t = lua_type(L, idx);
  if (t == LUA_TNONE || t == LUA_TNIL) return;
  if (t == LUA_TSTRING) {
    f->dir = dvals[ngl_check_option(L, idx, idx, fn, "direction", dir_expected, dirs)];
    return;
  }
  if (t != LUA_TTABLE)
    ngl_argerror(L, idx, fn, "options table {dir, type, category} expected, got %s",
                 ngl_describe(L, idx));
  const uint64_t allowed = NGL_KEY(NGL_K_DIR) | NGL_KEY(NGL_K_TYPE) | NGL_KEY(NGL_K_CATEGORY);
  lua_pushnil(L); /* stack: ..., opts, nil; in the loop ..., opts, key, value */
  while (lua_next(L, idx)) {
    switch (ngl_key(L, -2)) {
    case NGL_K_DIR:
      f->dir = dvals[ngl_check_option(L, -1, idx, fn, "dir", dir_expected, dirs)];
      break;
    case NGL_K_TYPE:
      f->type = (int)ngl_check_conn_type(L, -1, idx, fn);
      break;
    case NGL_K_CATEGORY:
      f->category = ngl_check_category(L, -1, idx, fn, "category");
      break;
    default:
      ngl_unknown_key(L, -2, idx, fn, "option", allowed);
    }
    lua_pop(L, 1);
  }
}

/* The links of the token at 1 that match the filter at 2, their ids
 * (others = 0) or the tokens at their other ends (others = 1), into the
 * runtime's id buffer; returns how many. Raises for a token that no longer
 * exists. Runs no Lua code after its first allocation, so the buffer stays
 * valid until the caller's next allocation. */
static size_t token_links(lua_State *L, const char *fn, int others) {
  ngl_handle *h = ngl_self(L, NGL_UV_TOKEN_MT, fn);
  ngl_rt(L, h->owner);
  ng_link_filter f;
  read_link_filter(L, 2, fn, &f);
  ngl_push_list(L, 0, 0); /* stack: ..., result */
  ng_runtime *rt = ngl_rt(L, h->owner);
  size_t cap = h->owner->ids_cap ? h->owner->ids_cap : 64, n = 0;
  for (;;) {
    ng_id *ids = ngl_ids(L, h->owner, cap);
    ng_status st = ng_token_links(rt, h->id, &f, others ? NULL : ids, others ? ids : NULL, cap, &n);
    if (st == NG_ENOTFOUND) luaL_error(L, "token %I no longer exists", (LUAI_UACINT)h->id);
    if (st != NG_OK) ngl_status_error(L, rt, st, 2, fn);
    if (n <= cap) break;
    cap = n; /* it grew between calls: retry with room for all */
  }
  return n;
}

/* tok:connections([dir | {dir, type, category}]) -> {connection ids...},
 * ascending; a bidirectional link is outgoing and incoming at both ends. */
int ngl_token_connections(lua_State *L) {
  size_t n = token_links(L, "connections", 0);
  ngl_runtime *owner = ((ngl_handle *)lua_touserdata(L, 1))->owner;
  ngl_fill_ids(L, owner->ids, n);
  return 1;
}

static int cmp_id(const void *a, const void *b) {
  ng_id x = *(const ng_id *)a, y = *(const ng_id *)b;
  return (x > y) - (x < y);
}

/* tok:neighbours([dir | {dir, type, category}]) -> {token ids...}: the
 * tokens at the other ends of those links, each once, ascending (the token
 * itself for a self-link). */
int ngl_token_neighbours(lua_State *L) {
  size_t n = token_links(L, "neighbours", 1);
  ngl_runtime *owner = ((ngl_handle *)lua_touserdata(L, 1))->owner;
  ng_id *ids = owner->ids;
  qsort(ids, n, sizeof *ids, cmp_id);
  size_t u = 0;
  for (size_t i = 0; i < n; i++)
    if (u == 0 || ids[u - 1] != ids[i]) ids[u++] = ids[i];
  ngl_fill_ids(L, ids, u);
  return 1;
}

/* tok:degree([dir | {dir, type, category}]) -> how many links match,
 * counted without building a list. */
int ngl_token_degree(lua_State *L) {
  const char *fn = "degree";
  ngl_handle *h = ngl_self(L, NGL_UV_TOKEN_MT, fn);
  ngl_rt(L, h->owner);
  ng_link_filter f;
  read_link_filter(L, 2, fn, &f);
  ng_runtime *rt = ngl_rt(L, h->owner);
  size_t n = 0;
  ng_status st = ng_token_links(rt, h->id, &f, NULL, NULL, 0, &n);
  if (st == NG_ENOTFOUND) return luaL_error(L, "token %I no longer exists", (LUAI_UACINT)h->id);
  if (st != NG_OK) return ngl_status_error(L, rt, st, 2, fn);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static const luaL_Reg conns_methods[] = {
    {"create", conns_create}, {"get", conns_get},
    {"update", conns_update}, {"delete", conns_delete},
    {"list", conns_list},     {"count", conns_count},
    {"find", conns_find},     {"iter", conns_iter},
    {"exists", conns_exists}, {NULL, NULL},
};
static const luaL_Reg conns_meta[] = {{"__tostring", conns_tostring}, {NULL, NULL}};
static const luaL_Reg conn_meta[] = {
    {"__index", conn_index},
    {"__newindex", conn_newindex},
    {"__tostring", conn_tostring},
    {"__eq", conn_eq},
    {NULL, NULL},
};
static const luaL_Reg conn_methods[] = {
    {"activate", conn_activate},
    {"update_confidence", conn_update_confidence},
    {"decay", conn_decay},
    {"force", conn_force},
    {"update", conn_update},
    {"to_table", conn_to_table},
    {"delete", conn_delete},
    {"exists", conn_exists},
    {NULL, NULL},
};

void ngl_open_connection(lua_State *L, int ctx) {
  lua_rawgeti(L, ctx, NGL_UV_CONNS_MT);
  lua_newtable(L); /* stack: ..., mt, methods; methods becomes mt.__index */
  ngl_setfuncs(L, ctx, -1, conns_methods);
  lua_setfield(L, -2, "__index");
  ngl_setfuncs(L, ctx, -1, conns_meta);
  lua_pop(L, 1);

  lua_rawgeti(L, ctx, NGL_UV_CONN_MT);
  ngl_setfuncs(L, ctx, -1, conn_meta);
  lua_pop(L, 1);
  /* stack: ..., index; conn_index looks names up there: method or NGL_K_* */
  lua_rawgeti(L, ctx, NGL_UV_CONN_INDEX);
  ngl_setfuncs(L, ctx, -1, conn_methods);
  for (size_t i = 0; i < sizeof conn_fields / sizeof conn_fields[0]; i++) {
    lua_pushinteger(L, conn_fields[i]);
    lua_setfield(L, -2, ngl_key_names[conn_fields[i]]);
  }
  lua_pop(L, 1);
}

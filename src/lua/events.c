/* rt.events (subscriptions, handlers and their dispatch) and rt.grid:watch
 * (trigger zones): the Lua side of the change feed (src/core/events.h). */
#include "binding.h"

#include <string.h>

/* Raises "unknown option 'x'" for the key at index `key` of an options table (argument `arg`
 * of fn), suggesting the closest of keys (NULL-ended). */
static void unknown_option(lua_State *L, int key, int arg, const char *fn,
                           const char *const *keys) {
  ngl_near n;
  ngl_near_init(&n, L, key);
  for (int i = 0; keys[i]; i++)
    ngl_near_try(&n, keys[i]);
  ngl_unknown_name(L, key, arg, fn, "option", &n);
}

#define SUB_MT "neurograph.Subscription"
#define ZONE_MT "neurograph.Zone"

/* A Subscription: the C subscription and the runtime whose units decode its
 * positions. User value 1 holds the Runtime userdata (keeps `owner` alive). */
typedef struct lsub {
  ng_sub *sub; /* NULL once closed */
  ngl_runtime *owner;
} lsub;

/* Events state (user value 2 of rt.events): {handlers = {kind = {fn, ...}}, sub = Subscription}. */

/* ---- events as tables ------------------------------------------------------ */

static const char *const token_field_names[] = {
    "weight", "flags", "field_radius", "field_strength", "timestamp", "domain", "entity"};
static const char *const conn_field_names[] = {
    "type",           "rigidity",   "active_levels",  "flags",         "activation_count",
    "pull_strength",  "preferred_distance", "created_at", "last_activation", "mutability",
    "confidence",     "evidence_count",     "last_update", "learning_rate", "decay_rate",
    "source_id",      "target_vector"};

/* Pushes {"name", ..., name = true, ...} for the bits of `fields`: bit `first`
 * of fields is names[0], and so on. */
static void push_fields(lua_State *L, uint32_t fields, unsigned first, const char *const *names,
                        size_t n) {
  lua_createtable(L, 4, 4);
  lua_Integer k = 0;
  for (size_t i = 0; i < n; i++) {
    if (!(fields >> (first + i) & 1u)) continue;
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, ++k);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, names[i]);
  }
}

static void push_xyz(lua_State *L, const double xyz[3]) {
  lua_createtable(L, 3, 0);
  for (int a = 0; a < 3; a++) {
    lua_pushnumber(L, xyz[a]);
    lua_rawseti(L, -2, a + 1);
  }
}

/* Pushes event ev as a table; rt (open) decodes its positions before any
 * Lua allocation (which could close it). */
static void push_event(lua_State *L, ng_runtime *rt, const ng_event *ev) {
  double from[3] = {0, 0, 0}, to[3] = {0, 0, 0};
  bool has_from = false, has_to = false;
  if (ev->kind == NG_EV_MOVE || ev->kind == NG_EV_UNPLACE) {
    has_from = !(ev->flags & NG_EVF_PLACED);
    has_to = ev->kind == NG_EV_MOVE;
    if (has_from) (void)ng_coords_decode(rt, ev->space, ev->from_xyz, 1, from);
    if (has_to) (void)ng_coords_decode(rt, ev->space, ev->to_xyz, 1, to);
  }
  lua_createtable(L, 0, 8);
  lua_pushstring(L, ng_event_kind_name(ev->kind));
  lua_setfield(L, -2, "kind");
  lua_pushinteger(L, (lua_Integer)ev->id);
  lua_setfield(L, -2, "id");
  lua_pushinteger(L, (lua_Integer)ev->seq);
  lua_setfield(L, -2, "seq");
  lua_pushinteger(L, (lua_Integer)ev->commit);
  lua_setfield(L, -2, "commit");
  lua_pushboolean(L, ev->flags & NG_EVF_LAST);
  lua_setfield(L, -2, "last");
  if (ev->space >= 0) {
    lua_pushstring(L, ng_space_name(ev->space));
    lua_setfield(L, -2, "space");
  }
  switch (ev->kind) {
  case NG_EV_UPDATE:
    push_fields(L, ev->fields, 8, token_field_names,
                sizeof token_field_names / sizeof *token_field_names);
    lua_setfield(L, -2, "fields");
    break;
  case NG_EV_MOVE:
  case NG_EV_UNPLACE:
    if (has_from) {
      push_xyz(L, from);
      lua_setfield(L, -2, "from");
    }
    if (has_to) {
      push_xyz(L, to);
      lua_setfield(L, -2, "to");
    }
    break;
  case NG_EV_LINK:
  case NG_EV_LINK_UPDATE:
  case NG_EV_UNLINK:
    lua_pushinteger(L, (lua_Integer)ev->from);
    lua_setfield(L, -2, "from");
    lua_pushinteger(L, (lua_Integer)ev->to);
    lua_setfield(L, -2, "to");
    lua_pushstring(L, ng_conn_type_name(ev->conn_type));
    lua_setfield(L, -2, "type");
    if (ev->kind == NG_EV_LINK_UPDATE) {
      push_fields(L, ev->fields, 0, conn_field_names,
                  sizeof conn_field_names / sizeof *conn_field_names);
      lua_setfield(L, -2, "fields");
    }
    break;
  case NG_EV_ENTER:
  case NG_EV_LEAVE:
    lua_pushinteger(L, (lua_Integer)ev->zone);
    lua_setfield(L, -2, "zone");
    break;
  default:
    break;
  }
  if (ev->kind <= NG_EV_DELETE || ev->kind >= NG_EV_ENTER) {
    lua_pushstring(L, ng_entity_name((ev->token_flags & NG_TOKEN_ENTITY_MASK) >> 8));
    lua_setfield(L, -2, "entity");
  }
}

/* ---- Subscription ------------------------------------------------------------ */

static lsub *check_sub(lua_State *L, const char *fn) {
  lsub *s = luaL_testudata(L, 1, SUB_MT);
  if (s == NULL) ngl_argerror(L, 1, fn, "Subscription expected, got %s", ngl_describe(L, 1));
  if (s->sub == NULL) luaL_error(L, "%s: the subscription is closed", fn);
  return s;
}

/* Takes the oldest event of s and pushes it as a table; pushes nothing and
 * returns 0 when the queue is empty. */
static int take_one(lua_State *L, lsub *s) {
  ng_runtime *rt = ngl_rt(L, s->owner); /* raises once the runtime is closed */
  ng_event ev;
  size_t n = 0;
  (void)ng_sub_poll(s->sub, &ev, 1, &n, NULL);
  if (n == 0) return 0;
  push_event(L, rt, &ev);
  return 1;
}

static int sub_iter(lua_State *L) {
  lsub *s = luaL_checkudata(L, lua_upvalueindex(1), SUB_MT);
  if (s->sub == NULL || !take_one(L, s)) lua_pushnil(L);
  return 1;
}

/* sub:poll() -> an iterator over the queued events, oldest first (each taken
 * from the queue as the loop reaches it; events queued meanwhile follow). */
static int sub_poll(lua_State *L) {
  check_sub(L, "poll");
  lua_settop(L, 1);
  lua_pushcclosure(L, sub_iter, 1);
  return 1;
}

/* sub:lost() -> the count of events dropped since the last call (the queue
 * was full); resets it. */
static int sub_lost(lua_State *L) {
  lsub *s = check_sub(L, "lost");
  lua_pushinteger(L, (lua_Integer)ng_sub_lost(s->sub));
  return 1;
}

/* sub:pending() -> events waiting. */
static int sub_pending(lua_State *L) {
  lsub *s = check_sub(L, "pending");
  lua_pushinteger(L, (lua_Integer)ng_sub_pending(s->sub));
  return 1;
}

/* sub:close() (also __gc, __close): no more events. Safe to call twice. */
static int sub_close(lua_State *L) {
  lsub *s = luaL_testudata(L, 1, SUB_MT);
  if (s == NULL) return ngl_argerror(L, 1, "close", "Subscription expected, got %s", ngl_describe(L, 1));
  ng_sub_close(s->sub);
  s->sub = NULL;
  return 0;
}

static int sub_tostring(lua_State *L) {
  lsub *s = luaL_checkudata(L, 1, SUB_MT);
  if (s->sub == NULL)
    lua_pushliteral(L, "neurograph.Subscription (closed)");
  else
    lua_pushfstring(L, "neurograph.Subscription (pending=%I)",
                    (LUAI_UACINT)ng_sub_pending(s->sub));
  return 1;
}

/* Reads a kind name at idx into a kind bit. */
static uint32_t check_kind(lua_State *L, int idx, int arg, const char *fn) {
  const char *name = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : NULL;
  int k = ng_event_kind_from_name(name);
  if (k > 0) return 1u << k;
  ngl_near n;
  ngl_near_init(&n, L, idx);
  for (int i = 1; i < NG_EV_KINDS; i++)
    ngl_near_try(&n, ng_event_kind_name((unsigned)i));
  return (uint32_t)ngl_unknown_name(L, idx, arg, fn, "event kind", &n);
}

/* A list at idx read through `one` into a mask. */
static uint32_t check_list(lua_State *L, int idx, int arg, const char *fn, const char *what,
                           uint32_t (*one)(lua_State *, int, int, const char *)) {
  if (lua_type(L, idx) != LUA_TTABLE)
    return (uint32_t)ngl_argerror(L, arg, fn, "%s must be a list, got %s", what,
                                  ngl_describe(L, idx));
  uint32_t mask = 0;
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    mask |= one(L, lua_gettop(L), arg, fn);
    lua_pop(L, 1);
  }
  return mask;
}

static uint32_t space_bit(lua_State *L, int idx, int arg, const char *fn) {
  return 1u << ngl_check_space(L, idx, arg, fn);
}
static uint32_t entity_bit(lua_State *L, int idx, int arg, const char *fn) {
  return 1u << ngl_check_entity(L, idx, arg, fn);
}

/* Reads the subscribe options at idx into f. */
static void read_filter(lua_State *L, int idx, const char *fn, ng_sub_filter *f) {
  memset(f, 0, sizeof *f);
  if (lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) != LUA_TTABLE)
    ngl_argerror(L, idx, fn, "options table expected, got %s", ngl_describe(L, idx));
  static const char *const keys[] = {"kinds", "space", "spaces", "entity", "entities", "cap", NULL};
  lua_pushnil(L); /* stack: ..., key, value in the loop */
  while (lua_next(L, idx)) {
    int top = lua_gettop(L);
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    int k = 0;
    while (keys[k] && strcmp(keys[k], key) != 0)
      k++;
    switch (k) {
    case 0:
      f->kinds = check_list(L, top, idx, fn, "kinds", check_kind);
      break;
    case 1:
      f->spaces |= space_bit(L, top, idx, fn);
      break;
    case 2:
      f->spaces |= check_list(L, top, idx, fn, "spaces", space_bit);
      break;
    case 3:
      f->entities |= entity_bit(L, top, idx, fn);
      break;
    case 4:
      f->entities |= check_list(L, top, idx, fn, "entities", entity_bit);
      break;
    case 5:
      f->cap = (size_t)ngl_check_integer(L, top, idx, fn, "cap", 1, INT32_MAX);
      break;
    default:
      unknown_option(L, top - 1, idx, fn, keys);
    }
    lua_settop(L, top - 1);
  }
}

/* Opens a subscription with filter f for the events object at 1 and pushes it. */
static lsub *push_sub(lua_State *L, const ng_sub_filter *f, const char *fn) {
  ngl_handle *h = ngl_self(L, NGL_UV_EVENTS_MT, fn);
  lsub *s = lua_newuserdatauv(L, sizeof *s, 1); /* first: nothing to leak if it fails */
  s->sub = NULL;
  s->owner = h->owner;
  luaL_getmetatable(L, SUB_MT);
  lua_setmetatable(L, -2);
  lua_getiuservalue(L, 1, 1); /* the Runtime */
  lua_setiuservalue(L, -2, 1);
  ng_runtime *rt = ngl_rt(L, h->owner);
  ng_status st = ng_sub_open(rt, f, &s->sub);
  if (st != NG_OK) ngl_status_error(L, rt, st, 2, fn);
  return s;
}

/* rt.events:subscribe{kinds = {...}, space = "L1", spaces = {...}, entity =
 * "Object", entities = {...}, cap = n} -> a Subscription (no options: every
 * event, the default cap). */
static int ev_subscribe(lua_State *L) {
  ngl_self(L, NGL_UV_EVENTS_MT, "subscribe");
  ng_sub_filter f;
  read_filter(L, 2, "subscribe", &f);
  lua_settop(L, 1);
  push_sub(L, &f, "subscribe");
  return 1;
}

/* The events object's state table (user value 2), made on first use. */
static void push_state(lua_State *L) {
  if (lua_getiuservalue(L, 1, 2) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 2);
  lua_newtable(L);
  lua_setfield(L, -2, "handlers");
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, 2);
}

/* rt.events:on(kind, fn): fn(ev) runs for each event of that kind at the
 * next rt.events:dispatch(), after the handlers registered before it. The
 * events are collected from this call on. */
static int ev_on(lua_State *L) {
  ngl_self(L, NGL_UV_EVENTS_MT, "on");
  check_kind(L, 2, 2, "on");
  if (lua_type(L, 3) != LUA_TFUNCTION)
    return ngl_argerror(L, 3, "on", "function expected, got %s", ngl_describe(L, 3));
  lua_settop(L, 3);
  push_state(L); /* stack: events, kind, fn, state */
  if (lua_getfield(L, 4, "sub") != LUA_TUSERDATA) {
    lua_pop(L, 1);
    ng_sub_filter f;
    memset(&f, 0, sizeof f);
    push_sub(L, &f, "on");
    lua_setfield(L, 4, "sub");
  } else {
    lua_pop(L, 1);
  }
  lua_getfield(L, 4, "handlers"); /* stack: ..., state, handlers */
  if (lua_getfield(L, 5, lua_tostring(L, 2)) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, 5, lua_tostring(L, 2));
  }
  lua_pushvalue(L, 3);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

/* rt.events:dispatch() -> the number of events handled: runs the handlers of
 * the events queued when it is called, in feed order, outside any lock. A
 * handler may write; the events of its writes are queued after, for the
 * next dispatch. A handler's error propagates; the events after it stay
 * queued. */
static int ev_dispatch(lua_State *L) {
  ngl_self(L, NGL_UV_EVENTS_MT, "dispatch");
  lua_settop(L, 1);
  push_state(L); /* stack: events, state */
  if (lua_getfield(L, 2, "sub") != LUA_TUSERDATA) {
    lua_pushinteger(L, 0);
    return 1;
  }
  lsub *s = luaL_checkudata(L, 3, SUB_MT);
  lua_getfield(L, 2, "handlers"); /* stack: events, state, sub, handlers */
  size_t n = ng_sub_pending(s->sub), done = 0;
  for (; done < n; done++) {
    if (!take_one(L, s)) break;
    int ev = lua_gettop(L);
    lua_getfield(L, ev, "kind");
    if (lua_rawget(L, 4) == LUA_TTABLE) {
      int list = lua_gettop(L);
      lua_Integer m = (lua_Integer)lua_rawlen(L, list);
      for (lua_Integer i = 1; i <= m; i++) {
        lua_rawgeti(L, list, i);
        lua_pushvalue(L, ev);
        lua_call(L, 1, 0);
      }
    }
    lua_settop(L, 4);
  }
  lua_pushinteger(L, (lua_Integer)done);
  return 1;
}

static int ev_tostring(lua_State *L) {
  ngl_self(L, NGL_UV_EVENTS_MT, "__tostring");
  lua_pushliteral(L, "neurograph.Events");
  return 1;
}

/* ---- zones ----------------------------------------------------------------------- */

static void read_xyz(lua_State *L, int idx, int arg, const char *fn, const char *what,
                     double out[3]) {
  idx = lua_absindex(L, idx);
  ngl_check_triple(L, idx, arg, fn, what);
  for (int a = 0; a < 3; a++) {
    lua_rawgeti(L, idx, a + 1);
    out[a] = ngl_check_number(L, -1, arg, fn, what);
    lua_pop(L, 1);
  }
}

/* Reads the zone options at idx over *z (whose values are the defaults or
 * the zone's current ones): space, center and radius (a sphere) or box =
 * {lo, hi}, entity, tags. */
static void read_zone(lua_State *L, int idx, const char *fn, ng_zone_spec *z) {
  if (lua_type(L, idx) != LUA_TTABLE)
    ngl_argerror(L, idx, fn, "options table expected, got %s", ngl_describe(L, idx));
  static const char *const keys[] = {"space", "center", "radius", "box", "entity", "tags", NULL};
  bool sphere = false, box = false;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int top = lua_gettop(L);
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    int k = 0;
    while (keys[k] && strcmp(keys[k], key) != 0)
      k++;
    switch (k) {
    case 0:
      z->space = ngl_check_space(L, top, idx, fn);
      break;
    case 1:
      read_xyz(L, top, idx, fn, "center", z->center);
      sphere = true;
      break;
    case 2:
      z->radius = ngl_check_number(L, top, idx, fn, "radius");
      if (z->radius < 0) ngl_argerror(L, idx, fn, "radius must be >= 0, got %s", ngl_describe(L, top));
      sphere = true;
      break;
    case 3:
      if (lua_type(L, top) != LUA_TTABLE || lua_rawlen(L, top) != 2)
        ngl_argerror(L, idx, fn, "box must be {lo, hi}, got %s", ngl_describe(L, top));
      lua_rawgeti(L, top, 1);
      read_xyz(L, -1, idx, fn, "box lo", z->lo);
      lua_rawgeti(L, top, 2);
      read_xyz(L, -1, idx, fn, "box hi", z->hi);
      for (int a = 0; a < 3; a++)
        if (z->lo[a] > z->hi[a])
          ngl_argerror(L, idx, fn, "box lo must not exceed hi (axis %c)", "xyz"[a]);
      box = true;
      break;
    case 4:
      z->entity = (int)ngl_check_entity(L, top, idx, fn);
      break;
    case 5:
      z->tags = (uint16_t)ngl_check_integer(L, top, idx, fn, "tags", 0, 0xFFFF);
      break;
    default:
      unknown_option(L, top - 1, idx, fn, keys);
    }
    lua_settop(L, top - 1);
  }
  if (sphere && box) ngl_argerror(L, idx, fn, "give center/radius or box, not both");
  if (box) z->shape = NG_ZONE_BOX;
  if (sphere) z->shape = NG_ZONE_SPHERE;
}

/* Pushes a Zone for id, owned like the handle at obj (rt.grid). */
static void push_zone(lua_State *L, int obj, ngl_runtime *owner, uint64_t id) {
  ngl_handle *z = lua_newuserdatauv(L, sizeof *z, 1);
  z->owner = owner;
  z->id = id;
  luaL_getmetatable(L, ZONE_MT);
  lua_setmetatable(L, -2);
  lua_getiuservalue(L, obj, 1);
  lua_setiuservalue(L, -2, 1);
}

/* rt.grid:watch{space = "L1", center = {x, y, z}, radius = r} or {box = {lo,
 * hi}}, optional entity and tags (flag bits a token must all have) -> a Zone.
 * Tokens inside it now get an enter event. */
static int grid_watch(lua_State *L) {
  ngl_handle *h = ngl_self(L, NGL_UV_GRID_MT, "watch");
  ng_zone_spec z;
  memset(&z, 0, sizeof z);
  z.entity = -1;
  z.shape = -1;
  read_zone(L, 2, "watch", &z);
  if (z.shape < 0) return ngl_argerror(L, 2, "watch", "center and radius, or box, expected");
  lua_settop(L, 1);
  push_zone(L, 1, h->owner, 0); /* before the C call: nothing to undo if it fails */
  ngl_handle *zh = lua_touserdata(L, -1);
  ng_runtime *rt = ngl_rt(L, h->owner);
  uint64_t id = 0;
  ng_status st = ng_zone_add(rt, &z, &id);
  if (st != NG_OK) return ngl_status_error(L, rt, st, 2, "watch");
  zh->id = id;
  return 1;
}

static ngl_handle *check_zone(lua_State *L, const char *fn) {
  ngl_handle *z = luaL_testudata(L, 1, ZONE_MT);
  if (z == NULL) ngl_argerror(L, 1, fn, "Zone expected, got %s", ngl_describe(L, 1));
  return z;
}

/* zone:set{center =, radius =, box =, space =, entity =, tags =}: what is
 * given replaces what the zone had; tokens it takes out leave, those it
 * takes in enter. */
static int zone_set(lua_State *L) {
  ngl_handle *h = check_zone(L, "set");
  ng_runtime *rt = ngl_rt(L, h->owner);
  ng_zone_spec z;
  ng_status st = ng_zone_get(rt, h->id, &z);
  if (st != NG_OK) return ngl_status_error(L, rt, st, 1, "set");
  read_zone(L, 2, "set", &z);
  rt = ngl_rt(L, h->owner);
  st = ng_zone_set(rt, h->id, &z);
  if (st != NG_OK) return ngl_status_error(L, rt, st, 2, "set");
  return 0;
}

/* zone:remove(): no more events from it. */
static int zone_remove(lua_State *L) {
  ngl_handle *h = check_zone(L, "remove");
  ng_runtime *rt = ngl_rt(L, h->owner);
  ng_status st = ng_zone_remove(rt, h->id);
  if (st != NG_OK) return ngl_status_error(L, rt, st, 1, "remove");
  return 0;
}

/* zone.id, and the methods (upvalue 1). */
static int zone_index(lua_State *L) {
  ngl_handle *h = check_zone(L, "__index");
  if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "id") == 0) {
    lua_pushinteger(L, (lua_Integer)h->id);
    return 1;
  }
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TNIL)
    return luaL_error(L, "neurograph.Zone has no field %s", ngl_describe(L, 2));
  return 1;
}

static int zone_tostring(lua_State *L) {
  ngl_handle *h = check_zone(L, "__tostring");
  lua_pushfstring(L, "neurograph.Zone (%I)", (LUAI_UACINT)h->id);
  return 1;
}

static int zone_eq(lua_State *L) {
  ngl_handle *a = luaL_testudata(L, 1, ZONE_MT), *b = luaL_testudata(L, 2, ZONE_MT);
  lua_pushboolean(L, a && b && a->id == b->id && a->owner == b->owner);
  return 1;
}

/* ---- registration ------------------------------------------------------------------ */

static const luaL_Reg events_methods[] = {
    {"subscribe", ev_subscribe}, {"on", ev_on}, {"dispatch", ev_dispatch}, {NULL, NULL}};
static const luaL_Reg events_meta[] = {{"__tostring", ev_tostring}, {NULL, NULL}};
static const luaL_Reg sub_methods[] = {{"poll", sub_poll},       {"lost", sub_lost},
                                       {"pending", sub_pending}, {"close", sub_close},
                                       {NULL, NULL}};
static const luaL_Reg sub_meta[] = {
    {"__gc", sub_close}, {"__close", sub_close}, {"__tostring", sub_tostring}, {NULL, NULL}};
static const luaL_Reg zone_methods[] = {{"set", zone_set}, {"remove", zone_remove}, {NULL, NULL}};
static const luaL_Reg zone_meta[] = {{"__tostring", zone_tostring}, {"__eq", zone_eq}, {NULL, NULL}};
static const luaL_Reg grid_watch_methods[] = {{"watch", grid_watch}, {NULL, NULL}};

void ngl_open_events(lua_State *L, int ctx) {
  lua_rawgeti(L, ctx, NGL_UV_EVENTS_MT); /* stack: ..., mt, methods */
  lua_newtable(L);
  ngl_setfuncs(L, ctx, -1, events_methods);
  lua_setfield(L, -2, "__index");
  ngl_setfuncs(L, ctx, -1, events_meta);
  lua_pop(L, 1);

  luaL_newmetatable(L, SUB_MT);
  lua_newtable(L);
  ngl_setfuncs(L, ctx, -1, sub_methods);
  lua_setfield(L, -2, "__index");
  ngl_setfuncs(L, ctx, -1, sub_meta);
  lua_pop(L, 1);

  luaL_newmetatable(L, ZONE_MT);
  lua_newtable(L);
  ngl_setfuncs(L, ctx, -1, zone_methods); /* stack: ..., mt, methods */
  lua_pushcclosure(L, zone_index, 1);
  lua_setfield(L, -2, "__index");
  ngl_setfuncs(L, ctx, -1, zone_meta);
  lua_pop(L, 1);

  lua_rawgeti(L, ctx, NGL_UV_GRID_MT); /* after ngl_open_grid: its methods table */
  lua_getfield(L, -1, "__index");
  ngl_setfuncs(L, ctx, -1, grid_watch_methods);
  lua_pop(L, 2);
}

/* rt.graph: breadth-first walks, neighbourhoods, cheapest paths and spreading activation. */
#include "binding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The options every walk takes (dir, types, categories) and the others each
 * one adds. */
#define WALK_KEYS (NGL_KEY(NGL_K_DIR) | NGL_KEY(NGL_K_TYPES) | NGL_KEY(NGL_K_CATEGORIES))
#define PATH_KEYS (WALK_KEYS | NGL_KEY(NGL_K_COST) | NGL_KEY(NGL_K_FIELD) | NGL_KEY(NGL_K_MAX_COST))
#define SPREAD_KEYS                                                                                \
  (WALK_KEYS | NGL_KEY(NGL_K_MAX_DEPTH) | NGL_KEY(NGL_K_FIELD) | NGL_KEY(NGL_K_MODE) |             \
   NGL_KEY(NGL_K_ENERGY) | NGL_KEY(NGL_K_MIN_ENERGY) | NGL_KEY(NGL_K_DECAY) |                      \
   NGL_KEY(NGL_K_THRESHOLD))

/* Everything the options of any walk may set; zero: the defaults. */
typedef struct graph_opts {
  ng_walk walk;
  ng_path_opts path;     /* path: cost, field, space, max_cost (walk copied in) */
  ng_spread_opts spread; /* spread: the rest (walk copied in) */
  int cost_fn;           /* stack index of a cost function, 0 for none */
  int energy;            /* stack index of the energy option, 0 for none */
} graph_opts;

/* A list option (types, categories): one value or a table of them; calls
 * `one` for each value (pushed at the top). */
static size_t list_len(lua_State *L, int vidx, bool *is_list) {
  *is_list = lua_type(L, vidx) == LUA_TTABLE;
  return *is_list ? lua_rawlen(L, vidx) : 1;
}

static void read_types(lua_State *L, int vidx, int arg, const char *fn, ng_walk *w) {
  bool list;
  size_t n = list_len(L, vidx, &list);
  if (list && n == 0) ngl_argerror(L, arg, fn, "types must be a type or a non-empty list of them");
  for (size_t i = 1; i <= n; i++) {
    if (list) lua_rawgeti(L, vidx, (lua_Integer)i); /* stack: ..., type (popped below) */
    unsigned t = ngl_check_conn_type_as(L, list ? -1 : vidx, arg, fn, "type in types");
    w->types[t / 64] |= 1ull << (t % 64);
    if (list) lua_pop(L, 1);
  }
}

static void read_categories(lua_State *L, int vidx, int arg, const char *fn, ng_walk *w) {
  bool list;
  size_t n = list_len(L, vidx, &list);
  if (list && n == 0)
    ngl_argerror(L, arg, fn, "categories must be a category or a non-empty list of them");
  for (size_t i = 1; i <= n; i++) {
    if (list) lua_rawgeti(L, vidx, (lua_Integer)i); /* stack: ..., category (popped below) */
    int c = ngl_check_category(L, list ? -1 : vidx, arg, fn, "categories");
    w->categories = (uint16_t)(w->categories | 1u << c);
    if (list) lua_pop(L, 1);
  }
}

/* cost = "hops" | "weight" | "distance:L1".."distance:L8" (or an alias) | a function. */
static void read_cost(lua_State *L, int vidx, int arg, const char *fn, graph_opts *o) {
  static const char expected[] = "'hops', 'weight', 'distance:<space>' or a function";
  vidx = lua_absindex(L, vidx);
  if (lua_type(L, vidx) == LUA_TFUNCTION) {
    o->path.cost = NG_COST_FN;
    o->cost_fn = vidx;
    return;
  }
  const char *s = lua_type(L, vidx) == LUA_TSTRING ? lua_tostring(L, vidx) : NULL;
  if (s && strncmp(s, "distance:", 9) == 0) {
    lua_pushstring(L, s + 9); /* stack: ..., space name */
    int space = ngl_name(L, -1, NGL_NAME_SPACE);
    if (space < 0)
      ngl_argerror(L, arg, fn,
                   "cost names an unknown space in %s (expected 'distance:L1' .. "
                   "'distance:L8' or an alias)",
                   ngl_describe(L, vidx));
    lua_pop(L, 1);
    o->path.cost = NG_COST_DISTANCE;
    o->path.space = space;
    return;
  }
  static const char *const names[] = {"hops", "weight", "distance:L1", NULL};
  int k = ngl_check_option(L, vidx, arg, fn, "cost", expected, names);
  o->path.cost = k == 0 ? NG_COST_HOPS : k == 1 ? NG_COST_WEIGHT : NG_COST_DISTANCE;
}

/* A number option >= 0 (finite), for `what`. */
static double check_nonneg(lua_State *L, int vidx, int arg, const char *fn, const char *what) {
  double v = ngl_check_number(L, vidx, arg, fn, what);
  if (v < 0) ngl_argerror(L, arg, fn, "%s must be >= 0, got %s", what, ngl_describe(L, vidx));
  return v;
}

/* Reads the options table at arg (absent or nil: defaults) taking the keys
 * in `allowed` into *o (ng_spread_init's defaults for spread's fields). */
static void read_opts(lua_State *L, int arg, const char *fn, uint64_t allowed, graph_opts *o) {
  static const char *const dirs[] = {"out", "in", "both", NULL};
  static const ng_direction dvals[] = {NG_OUT, NG_IN, NG_BOTH};
  static const char *const fields[] = {"confidence", "pull_strength", NULL};
  static const char *const modes[] = {"first", "sum", "max", NULL};
  memset(o, 0, sizeof *o);
  ng_spread_init(&o->spread);
  o->walk.dir = NG_OUT;
  int t = lua_type(L, arg);
  if (t == LUA_TNONE || t == LUA_TNIL) goto done;
  if (t != LUA_TTABLE)
    ngl_argerror(L, arg, fn, "options table expected, got %s", ngl_describe(L, arg));
  lua_pushnil(L); /* stack: ..., nil; in the loop ..., key, value */
  while (lua_next(L, arg)) {
    int k = ngl_key(L, -2);
    if (!(allowed & NGL_KEY(k))) ngl_unknown_key(L, -2, arg, fn, "option", allowed);
    switch (k) {
    case NGL_K_DIR:
      o->walk.dir = dvals[ngl_check_option(L, -1, arg, fn, "dir", "'out', 'in' or 'both'", dirs)];
      break;
    case NGL_K_TYPES:
      read_types(L, lua_absindex(L, -1), arg, fn, &o->walk);
      break;
    case NGL_K_CATEGORIES:
      read_categories(L, lua_absindex(L, -1), arg, fn, &o->walk);
      break;
    case NGL_K_MAX_DEPTH:
      o->walk.max_depth = (uint32_t)ngl_check_integer(L, -1, arg, fn, "max_depth", 1, UINT32_MAX);
      break;
    case NGL_K_COST:
      read_cost(L, -1, arg, fn, o);
      break;
    case NGL_K_FIELD: {
      ng_weight_field f =
          ngl_check_option(L, -1, arg, fn, "field", "'confidence' or 'pull_strength'", fields) == 0
              ? NG_WEIGHT_CONFIDENCE
              : NG_WEIGHT_PULL;
      o->path.field = o->spread.field = f;
      break;
    }
    case NGL_K_MAX_COST:
      o->path.max_cost = ngl_check_number(L, -1, arg, fn, "max_cost");
      if (!(o->path.max_cost > 0))
        ngl_argerror(L, arg, fn, "max_cost must be > 0, got %s", ngl_describe(L, -1));
      break;
    case NGL_K_MODE:
      o->spread.mode = (ng_spread_mode)ngl_check_option(L, -1, arg, fn, "mode",
                                                        "'first', 'sum' or 'max'", modes);
      break;
    case NGL_K_ENERGY:
      o->energy = lua_absindex(L, -1);
      break;
    case NGL_K_MIN_ENERGY:
      o->spread.min_energy = check_nonneg(L, -1, arg, fn, "min_energy");
      break;
    case NGL_K_DECAY:
      o->spread.decay = check_nonneg(L, -1, arg, fn, "decay");
      if (o->spread.decay > 1)
        ngl_argerror(L, arg, fn, "decay must be within 0..1, got %s", ngl_describe(L, -1));
      break;
    case NGL_K_THRESHOLD:
      o->spread.threshold = check_nonneg(L, -1, arg, fn, "threshold");
      break;
    }
    /* the energy and cost values stay referenced by index: keep them on
     * the stack (moved below the key so lua_next goes on) */
    if (k == NGL_K_ENERGY || (k == NGL_K_COST && o->cost_fn)) {
      lua_pushvalue(L, -1);
      lua_rotate(L, -3, 1); /* stack: ..., value, key, value */
      int at = lua_absindex(L, -3);
      if (k == NGL_K_ENERGY)
        o->energy = at;
      else
        o->cost_fn = at;
    }
    lua_pop(L, 1);
  }
done:
  o->spread.walk.dir = o->walk.dir;
  memcpy(o->spread.walk.types, o->walk.types, sizeof o->walk.types);
  o->spread.walk.categories = o->walk.categories;
  if (o->walk.max_depth) o->spread.walk.max_depth = o->walk.max_depth;
  o->path.walk = o->walk;
  o->path.walk.max_depth = 0;
}

/* nil and the runtime's last error detail (a missing token): the answer
 * for a normal miss. */
static int push_miss(lua_State *L, ng_runtime *rt) {
  lua_pushnil(L);
  lua_pushstring(L, ng_last_error_detail(rt));
  return 2;
}

/* A buffer of n elements of `size` as a userdata pushed on the stack (it
 * lives as long as the call: a finalizer run by an allocation cannot take it). */
static void *scratch(lua_State *L, size_t n, size_t size) {
  if (n > ((size_t)-1) / size) luaL_error(L, "not enough memory");
  return lua_newuserdatauv(L, n > 0 ? n * size : 1, 0);
}

/* Runs the walk of rt.graph:bfs / neighbourhood into userdata buffers (left
 * on the stack); returns the count, or SIZE_MAX for a missing start (the
 * message is the runtime's last error). */
static size_t run_bfs(lua_State *L, ngl_handle *self, const char *fn, ng_id start, const ng_walk *w,
                      ng_id **ids, uint32_t **depths) {
  size_t cap = 256, n = 0;
  for (;;) {
    *ids = scratch(L, cap, sizeof **ids);
    *depths = scratch(L, cap, sizeof **depths);
    ng_runtime *rt = ngl_rt(L, self->owner);
    ng_status st = ng_graph_bfs(rt, start, w, *ids, *depths, cap, &n);
    if (st == NG_ENOTFOUND) return SIZE_MAX;
    if (st != NG_OK) ngl_status_error(L, rt, st, 3, fn);
    if (n <= cap) return n;
    lua_pop(L, 2);
    cap = n; /* it may grow again before the next call: the loop retries */
  }
}

/* rt.graph:bfs(start [, {max_depth, dir, types, categories}]) -> {{id, depth}, ...}
 * in BFS order, start first at depth 0; nil and a message when start does
 * not exist. */
static int graph_bfs(lua_State *L) {
  const char *fn = "bfs";
  ngl_handle *self = ngl_self(L, NGL_UV_GRAPH_MT, fn);
  ngl_rt(L, self->owner);
  ng_id start = ngl_check_token_id(L, 2, 2, fn, self->owner);
  graph_opts o;
  read_opts(L, 3, fn, WALK_KEYS | NGL_KEY(NGL_K_MAX_DEPTH), &o);
  ng_id *ids;
  uint32_t *depths;
  size_t n = run_bfs(L, self, fn, start, &o.walk, &ids, &depths);
  if (n == SIZE_MAX) return push_miss(L, ngl_rt(L, self->owner));
  lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0); /* stack: ..., ids, depths, result */
  for (size_t i = 0; i < n; i++) {
    lua_createtable(L, 2, 0);
    lua_pushinteger(L, (lua_Integer)ids[i]);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, (lua_Integer)depths[i]);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int cmp_id(const void *a, const void *b) {
  ng_id x = *(const ng_id *)a, y = *(const ng_id *)b;
  return (x > y) - (x < y);
}

/* rt.graph:neighbourhood(start, hops [, {dir, types, categories}]) -> {ids...}:
 * the tokens within `hops` links of start (itself excluded), ascending. */
static int graph_neighbourhood(lua_State *L) {
  const char *fn = "neighbourhood";
  ngl_handle *self = ngl_self(L, NGL_UV_GRAPH_MT, fn);
  ngl_rt(L, self->owner);
  ng_id start = ngl_check_token_id(L, 2, 2, fn, self->owner);
  uint32_t hops = (uint32_t)ngl_check_integer(L, 3, 3, fn, "hops", 1, UINT32_MAX);
  graph_opts o;
  read_opts(L, 4, fn, WALK_KEYS, &o);
  o.walk.max_depth = hops;
  ng_id *ids;
  uint32_t *depths;
  size_t n = run_bfs(L, self, fn, start, &o.walk, &ids, &depths);
  if (n == SIZE_MAX) return push_miss(L, ngl_rt(L, self->owner));
  qsort(ids + 1, n - 1, sizeof *ids, cmp_id); /* ids[0] is start */
  lua_createtable(L, (int)(n - 1), 0);
  ngl_fill_ids(L, ids + 1, n - 1);
  return 1;
}

/* ---- path ---------------------------------------------------------------------- */

/* What the cost callback needs: the state, where the Lua function and the
 * trampoline are on the stack, and where a caught error goes. */
typedef struct cost_call {
  lua_State *L;
  int trampoline; /* stack index: cost_trampoline closed over the upvalues */
  int self;       /* stack index of rt.graph (owner of the handles) */
  int fn;         /* stack index of the cost function */
  int err;        /* stack index of the slot for a caught error */
  bool failed;
} cost_call;

/* cost_trampoline(fn, graph, conn) -> fn(Connection handle), checked to be
 * a number >= 0 (or math.huge: the link is refused); raises otherwise. */
static int cost_trampoline(lua_State *L) {
  ng_id conn = (ng_id)lua_tointeger(L, 3);
  lua_pushvalue(L, 1);
  ngl_push_handle(L, 2, NGL_UV_CONN_MT, conn); /* stack: fn, graph, conn, fn, handle */
  lua_call(L, 1, 1);
  int isnum = 0;
  double c = lua_tonumberx(L, -1, &isnum);
  if (!isnum)
    return ngl_argerror(L, 4, "path",
                        "cost function must return a number, got %s for "
                        "connection %I",
                        ngl_describe(L, -1), (LUAI_UACINT)conn);
  if (!(c >= 0))
    return ngl_argerror(L, 4, "path",
                        "cost function returned %s for connection %I (costs must "
                        "be >= 0)",
                        ngl_describe(L, -1), (LUAI_UACINT)conn);
  return 1;
}

/* ng_cost_fn calling the Lua function in a protected call: no Lua error
 * crosses the core's search (it holds no lock then, but it holds memory).
 * An error is kept for the binding to raise, and NaN stops the search. */
static double lua_cost(const ng_connection *c, ng_id conn, ng_id from, ng_id to, void *ud) {
  (void)c;
  (void)from;
  (void)to;
  cost_call *k = ud;
  lua_State *L = k->L;
  lua_pushvalue(L, k->trampoline); /* room checked by the caller */
  lua_pushvalue(L, k->fn);
  lua_pushvalue(L, k->self);
  lua_pushinteger(L, (lua_Integer)conn);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
    lua_replace(L, k->err);
    k->failed = true;
    return NAN;
  }
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

/* rt.graph:path(a, b [, {cost, field, dir, types, categories, max_cost}])
 * -> {ids from a to b}, cost; or nil and a message (a missing token, or no
 * path). */
static int graph_path(lua_State *L) {
  const char *fn = "path";
  ngl_handle *self = ngl_self(L, NGL_UV_GRAPH_MT, fn);
  ngl_rt(L, self->owner);
  ng_id a = ngl_check_token_id(L, 2, 2, fn, self->owner);
  ng_id b = ngl_check_token_id(L, 3, 3, fn, self->owner);
  graph_opts o;
  read_opts(L, 4, fn, PATH_KEYS, &o);
  cost_call k = {L, 0, 1, o.cost_fn, 0, false};
  size_t cap = 64, n = 0;
  double cost = 0;
  if (o.cost_fn) {
    /* the function may write: one run, with room for any path (a path
     * visits each live token at most once) */
    luaL_checkstack(L, NGL_NUP + 8, fn);
    for (int i = 1; i <= NGL_NUP; i++)
      lua_pushvalue(L, NGL_UV(i));
    lua_pushcclosure(L, cost_trampoline, NGL_NUP);
    k.trampoline = lua_gettop(L);
    lua_pushnil(L);
    k.err = lua_gettop(L);
    cap = ng_token_count(ngl_rt(L, self->owner)) + 1;
    o.path.fn = lua_cost;
    o.path.ud = &k;
  }
  for (;;) {
    ng_id *ids = scratch(L, cap, sizeof *ids); /* stack: ..., ids */
    ng_runtime *rt = ngl_rt(L, self->owner);
    /* the runtime stays alive even if the cost function closes rt */
    ng_runtime_retain(rt);
    ng_status st = ng_graph_path(rt, a, b, &o.path, ids, cap, &n, &cost);
    if (k.failed) {
      ng_runtime_release(rt);
      lua_pushvalue(L, k.err);
      return lua_error(L);
    }
    if (st == NG_ENOTFOUND) {
      lua_pushnil(L);
      lua_pushstring(L, ng_last_error_detail(rt));
      ng_runtime_release(rt);
      return 2;
    }
    if (st != NG_OK) {
      lua_pushstring(L, ng_last_error_detail(rt)); /* copied before the release */
      ng_runtime_release(rt);
      return ngl_argerror(L, 4, fn, "%s", lua_tostring(L, -1));
    }
    ng_runtime_release(rt);
    if (n <= cap) {
      lua_createtable(L, (int)n, 0);
      ngl_fill_ids(L, ids, n);
      lua_pushnumber(L, cost);
      return 2;
    }
    lua_pop(L, 1);
    cap = n;
  }
}

/* ---- spread -------------------------------------------------------------------- */

/* rt.graph:spread(sources [, opts]) -> {{id =, energy =, depth =, source =,
 * path = {...}}, ...} by energy (descending) then id; nil and a message when
 * a source does not exist. sources: one id or a list; opts.energy: one
 * number for all (1 by default) or a list beside the sources. */
static int graph_spread(lua_State *L) {
  const char *fn = "spread";
  ngl_handle *self = ngl_self(L, NGL_UV_GRAPH_MT, fn);
  ngl_rt(L, self->owner);
  graph_opts o;
  read_opts(L, 3, fn, SPREAD_KEYS, &o);
  bool list;
  size_t n = list_len(L, 2, &list);
  if (list && n == 0) return ngl_argerror(L, 2, fn, "sources must be an id or a non-empty list");
  ng_id *src = scratch(L, n, sizeof *src);
  double *e = scratch(L, n, sizeof *e);
  bool elist = o.energy && lua_type(L, o.energy) == LUA_TTABLE;
  if (elist && lua_rawlen(L, o.energy) != n)
    return ngl_argerror(L, 3, fn,
                        "energy must be a number or a list of %d numbers (one per "
                        "source), got %d",
                        (int)n, (int)lua_rawlen(L, o.energy));
  for (size_t i = 0; i < n; i++) {
    if (list) lua_rawgeti(L, 2, (lua_Integer)i + 1); /* stack: ..., id (popped below) */
    src[i] = ngl_check_token_id(L, list ? -1 : 2, 2, fn, self->owner);
    if (list) lua_pop(L, 1);
    e[i] = 1;
    if (elist) {
      lua_rawgeti(L, o.energy, (lua_Integer)i + 1); /* stack: ..., energy */
      e[i] = check_nonneg(L, -1, 3, fn, "energy");
      lua_pop(L, 1);
    } else if (o.energy) {
      e[i] = check_nonneg(L, o.energy, 3, fn, "energy");
    }
  }
  size_t cap = 64, pcap = 256, m = 0, pn = 0;
  for (;;) {
    ng_activation *out = scratch(L, cap, sizeof *out); /* stack: ..., out, path */
    ng_id *path = scratch(L, pcap, sizeof *path);
    ng_runtime *rt = ngl_rt(L, self->owner);
    ng_status st = ng_graph_spread(rt, src, e, n, &o.spread, out, cap, &m, path, pcap, &pn);
    if (st == NG_ENOTFOUND) return push_miss(L, rt);
    if (st != NG_OK) return ngl_status_error(L, rt, st, 2, fn); /* options were checked */
    if (m <= cap && pn <= pcap) {
      lua_createtable(L, (int)m, 0); /* stack: ..., out, path, result */
      for (size_t i = 0; i < m; i++) {
        const ng_activation *x = &out[i];
        lua_createtable(L, 0, 5);
        lua_pushinteger(L, (lua_Integer)x->id);
        lua_setfield(L, -2, "id");
        lua_pushnumber(L, x->energy);
        lua_setfield(L, -2, "energy");
        lua_pushinteger(L, (lua_Integer)x->depth);
        lua_setfield(L, -2, "depth");
        lua_pushinteger(L, (lua_Integer)x->source);
        lua_setfield(L, -2, "source");
        lua_createtable(L, (int)x->depth + 1, 0);
        ngl_fill_ids(L, path + x->path_off, x->depth + 1);
        lua_setfield(L, -2, "path");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      return 1;
    }
    lua_pop(L, 2);
    cap = m > cap ? m : cap;
    pcap = pn > pcap ? pn : pcap;
  }
}

static int graph_tostring(lua_State *L) {
  ngl_self(L, NGL_UV_GRAPH_MT, "__tostring");
  lua_pushfstring(L, "neurograph.Graph (%p)", lua_topointer(L, 1));
  return 1;
}

static const luaL_Reg graph_methods[] = {
    {"bfs", graph_bfs},   {"neighbourhood", graph_neighbourhood},
    {"path", graph_path}, {"spread", graph_spread},
    {NULL, NULL},
};
static const luaL_Reg graph_meta[] = {{"__tostring", graph_tostring}, {NULL, NULL}};

void ngl_open_graph(lua_State *L, int ctx) {
  lua_rawgeti(L, ctx, NGL_UV_GRAPH_MT);
  lua_newtable(L); /* stack: ..., mt, methods; methods becomes mt.__index */
  ngl_setfuncs(L, ctx, -1, graph_methods);
  lua_setfield(L, -2, "__index");
  ngl_setfuncs(L, ctx, -1, graph_meta);
  lua_pop(L, 1);
}

/* rt.grid: radius, neighbour, nearest-k and box queries and grid figures, per space. */
#include "binding.h"

#include <float.h>
#include <stddef.h>
#include <string.h>

/* Options of a query: which keys are allowed, and what was given. */
#define EXCL_STACK 32 /* excluded ids kept in the options; more go to a userdata */
typedef struct query_opts {
  int space;
  size_t limit;
  int into;  /* stack index of the result table, 0 for a new one */
  int where; /* stack index of the `where` function, 0 for none */
  int positions;
  ng_filter filter; /* zero: the defaults */
  ng_id excl[EXCL_STACK];
} query_opts;

/* The filter keys every query takes besides its own. */
#define FILTER_KEYS                                                                        \
  (NGL_KEY(NGL_K_ENTITY) | NGL_KEY(NGL_K_TAGS) | NGL_KEY(NGL_K_WITHOUT) |                  \
   NGL_KEY(NGL_K_WEIGHT) | NGL_KEY(NGL_K_EXCLUDE) | NGL_KEY(NGL_K_INACTIVE) |              \
   NGL_KEY(NGL_K_WHERE) | NGL_KEY(NGL_K_POSITIONS))

/* The value at vidx (option `what` of the options at arg) as a list: a
 * table, or one value, which is left as is; returns its length, and whether
 * it is a table in *is_list. */
static size_t option_list(lua_State *L, int vidx, bool *is_list) {
  *is_list = lua_type(L, vidx) == LUA_TTABLE;
  return *is_list ? lua_rawlen(L, vidx) : 1;
}

/* The flag bits named by the value at vidx (a flag name or a list of them),
 * for option `what`. */
static uint16_t check_flags(lua_State *L, int vidx, int arg, const char *fn, const char *what) {
  vidx = lua_absindex(L, vidx);
  bool list;
  size_t n = option_list(L, vidx, &list);
  uint16_t bits = 0;
  for (size_t i = 1; i <= n; i++) {
    if (list) lua_rawgeti(L, vidx, (lua_Integer)i); /* stack: ..., name (popped below) */
    int f = ngl_check_option(L, list ? -1 : vidx, arg, fn, what,
                             "a token flag name ('ACTIVE' .. 'USER_4', as in ng.token_flags) or "
                             "a list of them",
                             ngl_token_flag_names);
    bits |= ngl_token_flag_bits[f];
    if (list) lua_pop(L, 1);
  }
  return bits;
}

/* The entity bits named by the value at vidx (one entity or a list). */
static uint16_t check_entities(lua_State *L, int vidx, int arg, const char *fn) {
  vidx = lua_absindex(L, vidx);
  bool list;
  size_t n = option_list(L, vidx, &list);
  uint16_t bits = 0;
  if (list && n == 0)
    ngl_argerror(L, arg, fn, "entity must be an entity or a non-empty list of them, got {}");
  for (size_t i = 1; i <= n; i++) {
    if (list) lua_rawgeti(L, vidx, (lua_Integer)i); /* stack: ..., entity (popped below) */
    bits |= (uint16_t)(1u << ngl_check_entity(L, list ? -1 : vidx, arg, fn));
    if (list) lua_pop(L, 1);
  }
  return bits;
}

/* weight = {min, max}: an inclusive range of finite numbers, min <= max. */
static void check_weight_range(lua_State *L, int vidx, int arg, const char *fn, ng_filter *f) {
  vidx = lua_absindex(L, vidx);
  if (lua_type(L, vidx) != LUA_TTABLE || lua_rawlen(L, vidx) != 2)
    ngl_argerror(L, arg, fn, "weight must be a range {min, max}, got %s", ngl_describe(L, vidx));
  lua_rawgeti(L, vidx, 1); /* stack: ..., min, max (popped below) */
  lua_rawgeti(L, vidx, 2);
  int lo = lua_absindex(L, -2), hi = lua_absindex(L, -1);
  f->min_weight = ngl_check_float(L, lo, arg, fn, "weight[1]");
  f->max_weight = ngl_check_float(L, hi, arg, fn, "weight[2]");
  if (f->min_weight > f->max_weight)
    ngl_argerror(L, arg, fn, "weight must be a range {min, max} with min <= max, got {%s, %s}",
                 ngl_describe(L, lo), ngl_describe(L, hi));
  lua_pop(L, 2);
  f->weight_range = true;
}

/* exclude = {id or Token, ...} (or one of them) at vidx into o's ids: the
 * first EXCL_STACK in o, more in a userdata left on the stack. */
static void check_exclude(lua_State *L, int vidx, int arg, const char *fn, const ngl_runtime *owner,
                          query_opts *o) {
  vidx = lua_absindex(L, vidx);
  bool list;
  size_t n = option_list(L, vidx, &list);
  ng_id *ids = o->excl;
  if (n > EXCL_STACK) /* stack: ..., ids (kept for the query) */
    ids = lua_newuserdatauv(L, n * sizeof *ids, 0);
  for (size_t i = 1; i <= n; i++) {
    if (list) lua_rawgeti(L, vidx, (lua_Integer)i); /* stack: ..., id (popped below) */
    int at = list ? -1 : vidx;
    if (lua_type(L, at) == LUA_TNUMBER)
      ids[i - 1] = (ng_id)ngl_check_integer(L, at, arg, fn, "exclude", 1, (lua_Integer)NG_ID_MAX);
    else if (ngl_toudata(L, at, NGL_UV_TOKEN_MT))
      ids[i - 1] = ngl_check_token_id(L, at, arg, fn, owner);
    else
      ngl_argerror(L, arg, fn, "exclude must be a token id, a Token or a list of them, got %s",
                   ngl_describe(L, at));
    if (list) lua_pop(L, 1);
  }
  o->filter.exclude = ids;
  o->filter.nexclude = n;
}

/* Reads {space = ..., limit = ..., into = ..., and the filter keys} at idx
 * (argument arg); `allowed` is a bit set over NGL_K_*. Leaves `into`, then
 * `where`, then a userdata of excluded ids on the stack as it finds them. */
static void read_opts(lua_State *L, int idx, const char *fn, uint64_t allowed,
                      const ngl_runtime *owner, query_opts *o) {
  memset(o, 0, sizeof *o);
  o->space = NG_L1;
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
      case NGL_K_ENTITY:
        o->filter.entities = check_entities(L, -1, idx, fn);
        break;
      case NGL_K_TAGS:
        o->filter.tags = check_flags(L, -1, idx, fn, "tags");
        break;
      case NGL_K_WITHOUT:
        o->filter.without = check_flags(L, -1, idx, fn, "without");
        break;
      case NGL_K_WEIGHT:
        check_weight_range(L, -1, idx, fn, &o->filter);
        break;
      case NGL_K_INACTIVE:
        o->filter.inactive = ngl_check_boolean(L, -1, idx, fn, "inactive");
        break;
      case NGL_K_POSITIONS:
        o->positions = ngl_check_boolean(L, -1, idx, fn, "positions");
        break;
      case NGL_K_WHERE:
        if (lua_type(L, -1) != LUA_TFUNCTION)
          ngl_argerror(L, idx, fn, "where must be a function(id, distance), got %s",
                       ngl_describe(L, -1));
        break;
      default: /* exclude: read below, where its ids can be kept */
        break;
      }
    } else {
      ngl_unknown_key(L, -2, idx, fn, "option", allowed);
    }
    lua_pop(L, 1);
  }
  /* `into` and `where` are looked up again so they have stable stack slots
   * (stack: ..., opts[, into][, where][, excluded ids]) for the query */
  lua_pushliteral(L, "into");
  if (lua_rawget(L, idx) == LUA_TTABLE)
    o->into = lua_gettop(L);
  else
    lua_pop(L, 1);
  lua_pushliteral(L, "where");
  if (lua_rawget(L, idx) == LUA_TFUNCTION)
    o->where = lua_gettop(L);
  else
    lua_pop(L, 1);
  lua_pushliteral(L, "exclude");
  lua_rawget(L, idx); /* stack: ..., exclude (removed below, after the ids' userdata) */
  int ex = lua_gettop(L);
  if (!lua_isnil(L, ex) && (allowed & NGL_KEY(NGL_K_EXCLUDE)))
    check_exclude(L, ex, idx, fn, owner, o);
  lua_remove(L, ex);
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

/* Pushes hits as { {id, distance}, ... } ({id, distance, x, y, z} with
 * positions). With `into`, the table and the pair tables in it are reused;
 * pairs past the hit count are removed from `into` and kept in the
 * runtime's pool for later queries, so a loop allocates nothing once the
 * pool has grown to its largest answer. */
static void push_hits(lua_State *L, const ng_hits *hits, int into, int positions) {
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
    bool fresh = false;
    if (!into || lua_rawgeti(L, -1, k) != LUA_TTABLE) {
      if (into) lua_pop(L, 1);
      if (npool > 0) { /* a recycled pair */
        lua_rawgeti(L, pool, npool);
        lua_pushnil(L);
        lua_rawseti(L, pool, npool--);
      } else {
        lua_createtable(L, positions ? 5 : 2, 0);
        fresh = true;
      }
      lua_pushvalue(L, -1);
      lua_rawseti(L, -3, k);
    }
    lua_pushinteger(L, hits->items[i].id);
    lua_rawseti(L, -2, 1);
    lua_pushnumber(L, (lua_Number)hits->items[i].distance);
    lua_rawseti(L, -2, 2);
    if (positions) {
      for (int a = 0; a < 3; a++) {
        lua_pushnumber(L, hits->xyz[3 * i + (size_t)a]);
        lua_rawseti(L, -2, 3 + a);
      }
    } else if (!fresh && lua_rawlen(L, -1) > 2) { /* a pair that held a position */
      for (int a = 3; a <= 5; a++) {
        lua_pushnil(L);
        lua_rawseti(L, -2, a);
      }
    }
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

/* What one Lua query asks of the C API. */
enum { Q_RANGE, Q_NEIGHBORS, Q_NEAREST, Q_NEAREST_TO, Q_BOX };
typedef struct qargs {
  int kind;
  float c[3], radius;
  float lo[3], hi[3];
  ng_id id; /* Q_NEIGHBORS, Q_NEAREST_TO */
  size_t k; /* Q_NEAREST, Q_NEAREST_TO */
} qargs;

/* The C query of a with o's space and filter, keeping n hits (a limit; k
 * for the nearest queries). */
static ng_status run_c(ng_runtime *rt, const qargs *a, const query_opts *o, size_t n,
                       ng_hits *h) {
  switch (a->kind) {
  case Q_RANGE:
    return ng_grid_range(rt, o->space, a->c, a->radius, n, &o->filter, h);
  case Q_NEIGHBORS:
    return ng_grid_neighbors(rt, a->id, o->space, a->radius, n, &o->filter, h);
  case Q_NEAREST:
    return ng_grid_nearest(rt, o->space, a->c, n, &o->filter, h);
  case Q_NEAREST_TO:
    return ng_grid_nearest_to(rt, a->id, o->space, n, &o->filter, h);
  default:
    return ng_grid_box(rt, o->space, a->lo, a->hi, n, &o->filter, h);
  }
}

/* Keeps at the front of hits, in order, the hits that `where` (at stack
 * index where) accepts, at most `want` (0: all); verdicts (a table at that
 * index) remembers each id's answer, so a query asked again for more hits
 * calls it once per token. The predicate runs in protected mode: its error
 * is raised again after the hits are released. Returns how many were kept. */
static size_t apply_where(lua_State *L, ngl_runtime *owner, ng_hits *hits, int where, int verdicts,
                          size_t want) {
  size_t n = 0;
  for (size_t i = 0; i < hits->count && (want == 0 || n < want); i++) {
    lua_Integer id = (lua_Integer)hits->items[i].id;
    if (lua_rawgeti(L, verdicts, id) == LUA_TNIL) { /* stack: ..., verdict */
      lua_pop(L, 1);
      lua_pushvalue(L, where); /* stack: ..., where, id, distance -> ..., result */
      lua_pushinteger(L, id);
      lua_pushnumber(L, (lua_Number)hits->items[i].distance);
      if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        release_hits(L, owner, hits);
        lua_error(L);
      }
      lua_pushboolean(L, lua_toboolean(L, -1)); /* stack: ..., result, verdict */
      lua_rawseti(L, verdicts, id);
    }
    int pass = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!pass) continue;
    hits->items[n] = hits->items[i];
    if (hits->positions)
      memmove(&hits->xyz[3 * n], &hits->xyz[3 * i], 3 * sizeof *hits->xyz);
    n++;
  }
  return n;
}

/* Runs query a with options o and pushes its hits (raising for a failure).
 * With `where`, the C query is asked for `limit` (or k) hits, then twice as
 * many, ... until that many pass `where` or the query has no more. */
static int run_query(lua_State *L, ngl_handle *self, const qargs *a, const query_opts *o,
                     const char *fn) {
  ngl_runtime *owner = self->owner;
  int verdicts = 0;
  if (o->where) {
    lua_newtable(L); /* stack: ..., verdicts (before the hits are held: it allocates) */
    verdicts = lua_gettop(L);
  }
  ng_runtime *rt;
  ng_hits *hits = acquire_hits(L, owner, &rt);
  hits->positions = o->positions != 0;
  bool nearest = a->kind == Q_NEAREST || a->kind == Q_NEAREST_TO;
  size_t want = nearest ? a->k : o->limit, ask = want;
  ng_status st;
  for (;;) {
    st = run_c(rt, a, o, ask, hits);
    if (st != NG_OK || !o->where) break;
    size_t got = hits->count;
    hits->count = apply_where(L, owner, hits, o->where, verdicts, want);
    if (want == 0 || hits->count >= want || got < ask) break; /* enough, or no more */
    if (owner->rt == NULL) { /* closed by the predicate */
      release_hits(L, owner, hits);
      return luaL_error(L, "runtime is closed");
    }
    ask = ask > ((size_t)-1) / 2 ? (size_t)-1 : ask * 2;
  }
  if (st == NG_ENOTFOUND) { /* the token of a query around a token */
    unsigned spaces = 0;
    st = ng_token_spaces(rt, a->id, &spaces);
    release_hits(L, owner, hits);
    if (st != NG_OK) return ngl_argerror(L, 2, fn, "token %I does not exist", (LUAI_UACINT)a->id);
    return ngl_argerror(L, 2, fn, "token %I is not placed in %s", (LUAI_UACINT)a->id,
                        ng_space_name(o->space));
  }
  if (st != NG_OK) {
    release_hits(L, owner, hits);
    return ngl_status_error(L, NULL, st, 2, fn);
  }
  push_hits(L, hits, o->into, o->positions);
  release_hits(L, owner, hits);
  return 1;
}

/* The options every query takes. */
#define QUERY_KEYS (NGL_KEY(NGL_K_SPACE) | NGL_KEY(NGL_K_INTO) | FILTER_KEYS)

/* rt.grid:find_neighbors(id, radius [, opts]) -> hits. The token itself is
 * excluded; a missing token raises (an existing record is required). */
static int grid_neighbors(lua_State *L) {
  const char *fn = "find_neighbors";
  ngl_handle *self = ngl_self(L, NGL_UV_GRID_MT, fn);
  ngl_rt(L, self->owner);
  qargs a = {.kind = Q_NEIGHBORS};
  a.id = ngl_check_token_id(L, 2, 2, fn, self->owner);
  a.radius = check_radius(L, 3, fn);
  query_opts o;
  read_opts(L, 4, fn, QUERY_KEYS | NGL_KEY(NGL_K_LIMIT), self->owner, &o);
  return run_query(L, self, &a, &o, fn);
}

/* rt.grid:range_query({x, y, z}, radius [, opts]) -> hits. */
static int grid_range(lua_State *L) {
  const char *fn = "range_query";
  ngl_handle *self = ngl_self(L, NGL_UV_GRID_MT, fn);
  ngl_rt(L, self->owner);
  qargs a = {.kind = Q_RANGE};
  ngl_check_point(L, 2, 2, fn, "center", a.c);
  a.radius = check_radius(L, 3, fn);
  query_opts o;
  read_opts(L, 4, fn, QUERY_KEYS | NGL_KEY(NGL_K_LIMIT), self->owner, &o);
  return run_query(L, self, &a, &o, fn);
}

/* rt.grid:nearest({x, y, z}, k [, opts]) -> the k nearest hits that pass. */
static int grid_nearest(lua_State *L) {
  const char *fn = "nearest";
  ngl_handle *self = ngl_self(L, NGL_UV_GRID_MT, fn);
  ngl_rt(L, self->owner);
  qargs a = {.kind = Q_NEAREST};
  ngl_check_point(L, 2, 2, fn, "center", a.c);
  a.k = (size_t)ngl_check_integer(L, 3, 3, fn, "k", 0, INT32_MAX);
  query_opts o;
  read_opts(L, 4, fn, QUERY_KEYS, self->owner, &o);
  return run_query(L, self, &a, &o, fn);
}

/* rt.grid:nearest_to(id, k [, opts]) -> the k nearest hits to token id that
 * pass, the token itself excluded. */
static int grid_nearest_to(lua_State *L) {
  const char *fn = "nearest_to";
  ngl_handle *self = ngl_self(L, NGL_UV_GRID_MT, fn);
  ngl_rt(L, self->owner);
  qargs a = {.kind = Q_NEAREST_TO};
  a.id = ngl_check_token_id(L, 2, 2, fn, self->owner);
  a.k = (size_t)ngl_check_integer(L, 3, 3, fn, "k", 0, INT32_MAX);
  query_opts o;
  read_opts(L, 4, fn, QUERY_KEYS, self->owner, &o);
  return run_query(L, self, &a, &o, fn);
}

/* rt.grid:box({x0, y0, z0}, {x1, y1, z1} [, opts]) -> hits inside the
 * closed box, by distance from its centre. */
static int grid_box(lua_State *L) {
  const char *fn = "box";
  ngl_handle *self = ngl_self(L, NGL_UV_GRID_MT, fn);
  ngl_rt(L, self->owner);
  qargs a = {.kind = Q_BOX};
  ngl_check_point(L, 2, 2, fn, "min", a.lo);
  ngl_check_point(L, 3, 3, fn, "max", a.hi);
  for (int i = 0; i < 3; i++)
    if (a.lo[i] > a.hi[i])
      return ngl_argerror(L, 3, fn, "max must not be below min on any axis (axis %d)", i + 1);
  query_opts o;
  read_opts(L, 4, fn, QUERY_KEYS | NGL_KEY(NGL_K_LIMIT), self->owner, &o);
  return run_query(L, self, &a, &o, fn);
}

#define POS_CHUNK 256 /* ids read per call of ng_token_positions */

/* rt.tokens:positions(space, ids [, out]) -> out, found: the positions of
 * the tokens ids (ids or Tokens) in `space` as one flat array x1, y1, z1,
 * x2, ... (3 per id; NaN, NaN, NaN for a token that does not exist or is not
 * placed there), in out (reused: entries past 3 * #ids are removed) or a
 * new table, and how many were found. Read POS_CHUNK ids at a time, each
 * batch under one read lock, through C stack buffers: filling `out` may run
 * Lua code (a finalizer), which may use any shared buffer. */
int ngl_tokens_positions(lua_State *L) {
  const char *fn = "positions";
  ngl_handle *self = ngl_self(L, NGL_UV_TOKENS_MT, fn);
  ngl_rt(L, self->owner);
  int space = ngl_check_space(L, 2, 2, fn);
  if (lua_type(L, 3) != LUA_TTABLE)
    return ngl_argerror(L, 3, fn, "ids must be a list of token ids or Tokens, got %s",
                        ngl_describe(L, 3));
  size_t n = lua_rawlen(L, 3);
  int into = 0;
  if (!lua_isnoneornil(L, 4)) {
    if (lua_type(L, 4) != LUA_TTABLE)
      return ngl_argerror(L, 4, fn, "out must be a table, got %s", ngl_describe(L, 4));
    into = 4;
  }
  lua_settop(L, 4);
  if (into)
    lua_pushvalue(L, into); /* stack: self, space, ids, out?, result */
  else
    lua_createtable(L, n > INT32_MAX / 3 ? INT32_MAX : (int)(3 * n), 0);
  size_t found = 0;
  for (size_t at = 0; at < n; at += POS_CHUNK) {
    ng_id ids[POS_CHUNK];
    double xyz[3 * POS_CHUNK];
    size_t m = n - at < POS_CHUNK ? n - at : POS_CHUNK, got = 0;
    for (size_t i = 0; i < m; i++) {
      lua_rawgeti(L, 3, (lua_Integer)(at + i + 1)); /* stack: ..., result, id (popped below) */
      int ok = 0;
      lua_Integer v = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &ok) : 0;
      if (ok && v >= 1 && v <= (lua_Integer)NG_ID_MAX)
        ids[i] = (ng_id)v;
      else if (ngl_toudata(L, -1, NGL_UV_TOKEN_MT))
        ids[i] = ngl_check_token_id(L, -1, 3, fn, self->owner);
      else
        ngl_argerror(L, 3, fn, "ids[%I] must be a token id or a Token, got %s",
                     (LUAI_UACINT)(at + i + 1), ngl_describe(L, -1));
      lua_pop(L, 1);
    }
    ng_runtime *rt = ngl_rt(L, self->owner); /* again: filling may have closed it */
    ng_status st = ng_token_positions(rt, space, ids, m, xyz, &got);
    if (st != NG_OK) return ngl_status_error(L, rt, st, 2, fn);
    found += got;
    for (size_t i = 0; i < 3 * m; i++) {
      lua_pushnumber(L, xyz[i]);
      lua_rawseti(L, -2, (lua_Integer)(3 * at + i + 1));
    }
  }
  if (into) ngl_clear_from(L, (lua_Integer)(3 * n), 0);
  lua_pushinteger(L, (lua_Integer)found);
  return 2;
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
  read_opts(L, 2, fn, NGL_KEY(NGL_K_SPACE), self->owner, &o);
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
    {"nearest_to", grid_nearest_to},
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

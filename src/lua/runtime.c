/* neurograph.Runtime: construction, lifetime, sub-objects, snapshots, embedding helpers. */
#include "binding.h"

#include <math.h>
#include <string.h>

#define RUNTIME_MT "neurograph.Runtime"

/* Runtime fields other than methods; the sub-objects use NGL_RT_* slots. */
enum { RT_F_GRID_SIZE = 100, RT_F_DIMENSIONS };

void ngl_runtime_free(lua_State *L, ngl_runtime *o, ng_runtime *rt) {
  ng_hits_free(rt, &o->hits);
  void *ud = NULL;
  lua_Alloc f = lua_getallocf(L, &ud);
  if (o->ids != NULL) f(ud, o->ids, o->ids_cap * sizeof(ng_id), 0);
  if (o->moves != NULL) f(ud, o->moves, o->moves_cap * sizeof(ng_token), 0);
  if (o->xyz != NULL) f(ud, o->xyz, o->xyz_cap * sizeof(double), 0);
  o->ids = NULL;
  o->ids_cap = 0;
  o->moves = NULL;
  o->moves_cap = 0;
  o->xyz = NULL;
  o->xyz_cap = 0;
  ng_runtime_release(rt);
}

/* Closes o: later calls raise "runtime is closed". The C runtime and the
 * buffers go now, or, while a push from the hits buffer is in progress (this
 * close came from a finalizer), when it ends. Idempotent. */
static void runtime_close(lua_State *L, ngl_runtime *o) {
  ng_runtime *rt = o->rt;
  if (rt == NULL) return;
  o->rt = NULL;
  if (o->hits_busy)
    o->pending = rt;
  else
    ngl_runtime_free(L, o, rt);
}

/* Pushes a closed, empty Runtime userdata with the given metatable at mt. */
static ngl_runtime *new_runtime_ud(lua_State *L, int mt) {
  mt = lua_absindex(L, mt);
  ngl_runtime *o = lua_newuserdatauv(L, sizeof *o, NGL_RT_NUV);
  memset(o, 0, sizeof *o);
  o->grid_size = 1000; /* the original Config's defaults */
  o->dimensions = 50;
  lua_pushvalue(L, mt);
  lua_setmetatable(L, -2);
  return o;
}

/* A bucket size: > 0 (after conversion to float: 1e-50 is refused, not
 * taken as 0, which would mean "not given") and at most 1e9. */
static float check_cell_size(lua_State *L, int idx, const char *what) {
  float v = ngl_check_float(L, idx, 1, "Runtime", what);
  if (!(v > 0 && v <= 1e9f))
    ngl_argerror(L, 1, "Runtime",
                 v > 0 ? "%s must be at most 1e9, got %s" : "%s must be > 0, got %s", what,
                 ngl_describe(L, idx));
  return v;
}

/* Bucket sizes from cell_sizes: an array of 8 or a table keyed by space. */
static void read_cell_sizes(lua_State *L, int idx, float cells[NG_SPACES]) {
  if (lua_type(L, idx) != LUA_TTABLE)
    ngl_argerror(L, 1, "Runtime", "cell_sizes must be a table, got %s", ngl_describe(L, idx));
  lua_pushnil(L); /* stack: ..., nil; in the loop ..., space, size */
  while (lua_next(L, idx)) {
    int s = ngl_check_space(L, -2, 1, "Runtime");
    cells[s] = check_cell_size(L, -1, "cell size");
    lua_pop(L, 1);
  }
}

/* The registry key of the host's allocator (ng_lua_set_allocator). */
static const char alloc_key = 0;

/* The allocator a host set for the runtimes of this state. */
typedef struct host_alloc {
  ng_alloc_fn fn;
  void *ud;
} host_alloc;

void ng_lua_set_allocator(lua_State *L, ng_alloc_fn f, void *ud) {
  if (f == NULL) {
    lua_pushnil(L);
  } else {
    host_alloc *a = lua_newuserdatauv(L, sizeof *a, 0);
    a->fn = f;
    a->ud = ud;
  }
  /* stack: ..., nil or the host_alloc box; popped into the registry */
  lua_rawsetp(L, LUA_REGISTRYINDEX, &alloc_key);
}

/* Puts the host's allocator, if any, and the progress bar (ng_lua_progress)
 * into cfg (the stack is unchanged). */
static void host_config(lua_State *L, ng_config *cfg) {
  cfg->progress = ng_lua_progress;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &alloc_key) == LUA_TUSERDATA) {
    const host_alloc *a = lua_touserdata(L, -1);
    cfg->alloc = a->fn;
    cfg->alloc_ud = a->ud;
  }
  lua_pop(L, 1);
}

/* The config keys ng.Runtime and ng.open share, key and value at -2, -1 of
 * the table argument `arg`: sets cfg and returns true, or false for another
 * key. Raises on a bad value. */
static bool config_key(lua_State *L, int arg, const char *fn, ng_config *cfg) {
  switch (ngl_key(L, -2)) {
  case NGL_K_INITIAL_TOKENS:
    cfg->initial_tokens =
        (size_t)ngl_check_integer(L, -1, arg, fn, "initial_tokens", 0, NG_TOKEN_SLOT_MAX);
    return true;
  case NGL_K_INITIAL_CONNECTIONS:
    cfg->initial_connections =
        (size_t)ngl_check_integer(L, -1, arg, fn, "initial_connections", 0, INT32_MAX);
    return true;
  case NGL_K_PROFILE:
    cfg->profile = ngl_check_profile(L, -1, arg, fn);
    return true;
  case NGL_K_SCALES:
    ngl_read_scales(L, -1, arg, fn, cfg->scales);
    return true;
  default:
    return false;
  }
}

/*
 * ng.Runtime([config]) -> Runtime.
 * config: grid_size, dimensions (the original's, validated positive integers),
 * initial_tokens, initial_connections (capacity hints), profile (number or
 * name), cell_size (every space), cell_sizes ({L1 = 5, ...} or 8 numbers) and
 * scales (dimension scales, {L1 = 10, ...} or 8 numbers).
 * Fails: unknown keys and bad values raise; ng_runtime_new failures raise.
 */
#define CONFIG_KEYS                                                                                \
  (NGL_KEY(NGL_K_GRID_SIZE) | NGL_KEY(NGL_K_DIMENSIONS) | NGL_KEY(NGL_K_INITIAL_TOKENS) |          \
   NGL_KEY(NGL_K_INITIAL_CONNECTIONS) | NGL_KEY(NGL_K_PROFILE) | NGL_KEY(NGL_K_CELL_SIZE) |        \
   NGL_KEY(NGL_K_CELL_SIZES) | NGL_KEY(NGL_K_SCALES))

int ngl_runtime_new(lua_State *L) {
  ng_config cfg;
  memset(&cfg, 0, sizeof cfg);
  float cells[NG_SPACES] = {0};
  int have_cells = 0;
  lua_Integer grid_size = 1000, dimensions = 50;
  if (!lua_isnoneornil(L, 1)) {
    if (lua_type(L, 1) != LUA_TTABLE)
      ngl_argerror(L, 1, "Runtime", "config table expected, got %s", ngl_describe(L, 1));
    lua_pushnil(L); /* stack: config, nil; in the loop config, key, value */
    while (lua_next(L, 1)) {
      const char *fn = "Runtime";
      switch (ngl_key(L, -2)) {
      case NGL_K_GRID_SIZE:
        grid_size = ngl_check_integer(L, -1, 1, fn, "grid_size", 1, INT32_MAX);
        break;
      case NGL_K_DIMENSIONS:
        dimensions = ngl_check_integer(L, -1, 1, fn, "dimensions", 1, INT32_MAX);
        break;
      case NGL_K_CELL_SIZE: {
        float v = check_cell_size(L, -1, "cell_size");
        for (int s = 0; s < NG_SPACES; s++)
          cells[s] = v;
        have_cells = 1;
        break;
      }
      case NGL_K_CELL_SIZES:
        read_cell_sizes(L, lua_gettop(L), cells);
        have_cells = 1;
        break;
      default:
        if (!config_key(L, 1, fn, &cfg)) ngl_unknown_key(L, -2, 1, fn, "config key", CONFIG_KEYS);
      }
      lua_pop(L, 1);
    }
  }
  /* The userdata first: if Lua runs out of memory no runtime leaks.
   * stack: config?, rt; rt is the result */
  ngl_runtime *o = new_runtime_ud(L, NGL_UV(NGL_UV_RUNTIME_MT));
  o->grid_size = grid_size;
  o->dimensions = dimensions;
  host_config(L, &cfg);
  ng_status st = ng_runtime_new(&cfg, &o->rt);
  if (st != NG_OK) {
    o->rt = NULL;
    return ngl_status_error(L, NULL, st, 1, "Runtime");
  }
  if (have_cells) {
    ng_cdna c;
    ng_cdna_get(o->rt, &c);
    for (int s = 0; s < NG_SPACES; s++)
      if (cells[s] > 0) c.bucket_sizes[s] = cells[s];
    st = ng_cdna_set(o->rt, &c);
    if (st != NG_OK) {
      lua_pushstring(L, ng_last_error_detail(o->rt));
      runtime_close(L, o);
      return ngl_argerror(L, 1, "Runtime", "%s", lua_tostring(L, -1));
    }
  }
  return 1;
}

static ngl_runtime *check_rt(lua_State *L, const char *fn) {
  return (ngl_runtime *)ngl_checkudata(L, 1, NGL_UV_RUNTIME_MT, fn);
}

/* rt.tokens, rt.connections, rt.grid, rt.cdna, rt.events, rt.graph (created on first use, then
 * kept in a user value), rt.grid_size, rt.dimensions and the methods. */
static int rt_index(lua_State *L) {
  ngl_runtime *o = check_rt(L, "__index");
  lua_pushvalue(L, 2); /* stack: rt, key, key; then rt, key, method or slot */
  int t = lua_rawget(L, NGL_UV(NGL_UV_RUNTIME_INDEX));
  if (t == LUA_TFUNCTION) return 1;
  if (t != LUA_TNUMBER) {
    return luaL_error(L, "neurograph.Runtime has no field %s", ngl_describe(L, 2));
  }
  int slot = (int)lua_tointeger(L, -1);
  if (slot == RT_F_GRID_SIZE) {
    lua_pushinteger(L, o->grid_size);
    return 1;
  }
  if (slot == RT_F_DIMENSIONS) {
    lua_pushinteger(L, o->dimensions);
    return 1;
  }
  if (lua_getiuservalue(L, 1, slot) == LUA_TUSERDATA) return 1; /* made before */
  lua_pop(L, 1);
  /* stack: rt, key, slot, h; h keeps rt (its user value 1), rt keeps h (user
   * value `slot`) */
  ngl_handle *h = lua_newuserdatauv(L, sizeof *h, 2);
  h->owner = o;
  h->id = 0;
  lua_pushvalue(L, NGL_UV(NGL_UV_TOKENS_MT + slot - NGL_RT_TOKENS));
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, slot);
  return 1;
}

static int rt_newindex(lua_State *L) {
  check_rt(L, "__newindex");
  return luaL_error(L, "neurograph.Runtime fields are read-only (assigning %s)",
                    ngl_describe(L, 2));
}

/* rt:close() (also __close): releases the runtime now (see runtime_close);
 * later use of rt, its sub-objects and its handles raises "runtime is
 * closed". Safe to call twice. */
static int rt_close(lua_State *L) {
  runtime_close(L, check_rt(L, "close"));
  return 0;
}

/* __gc. Collected, o is in no call's use, so a release still deferred (a
 * push that ended by an error left the hold) happens now. */
static int rt_gc(lua_State *L) {
  ngl_runtime *o = ngl_toudata(L, 1, NGL_UV_RUNTIME_MT);
  if (o == NULL) return 0;
  o->hits_busy = 0;
  runtime_close(L, o);
  if (o->pending != NULL) ngl_runtime_free(L, o, o->pending);
  o->pending = NULL;
  return 0;
}

static int rt_is_closed(lua_State *L) {
  lua_pushboolean(L, check_rt(L, "is_closed")->rt == NULL);
  return 1;
}

/* rt:stats() -> {tokens, connections, bytes_in_use, bytes_peak, next_token_id,
 * next_connection_id, token_slots_free, token_slots_retired,
 * connection_slots_free, connection_slots_retired, placed = {L1 = n, ...},
 * memory = {token_records, token_slot_maps, connections, journal, spaces =
 * {L1 = bytes, ...}}, metrics, writes, queries = {range = {count, total,
 * mean, p50, p99}, neighbours, nearest, box}}: ng_stats, field for field
 * (tokens and connections are the live slots; times in seconds). */
static int rt_stats(lua_State *L) {
  ngl_runtime *o = check_rt(L, "stats");
  ng_stats s;
  ng_status st = ng_runtime_stats(ngl_rt(L, o), &s);
  if (st != NG_OK) return ngl_status_error(L, o->rt, st, 1, "stats");
  const struct {
    const char *name;
    uint64_t value;
  } f[] = {{"tokens", s.tokens},
           {"connections", s.connections},
           {"bytes_in_use", s.bytes_in_use},
           {"bytes_peak", s.bytes_peak},
           {"next_token_id", s.next_token_id},
           {"next_connection_id", s.next_connection_id},
           {"token_slots_free", s.token_slots_free},
           {"token_slots_retired", s.token_slots_retired},
           {"connection_slots_free", s.connection_slots_free},
           {"connection_slots_retired", s.connection_slots_retired}};
  lua_createtable(L, 0, (int)(sizeof f / sizeof f[0]) + 1);
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    lua_pushinteger(L, (lua_Integer)f[i].value);
    lua_setfield(L, -2, f[i].name);
  }
  lua_createtable(L, 0, NG_SPACES); /* stack: stats, placed */
  for (int sp = 0; sp < NG_SPACES; sp++) {
    lua_pushinteger(L, (lua_Integer)s.placed[sp]);
    lua_setfield(L, -2, ng_space_name(sp));
  }
  lua_setfield(L, -2, "placed");
  const struct {
    const char *name;
    size_t value;
  } m[] = {{"token_records", s.memory.token_records},
           {"token_slot_maps", s.memory.token_slot_maps},
           {"connections", s.memory.connections},
           {"journal", s.memory.journal}};
  lua_createtable(L, 0, (int)(sizeof m / sizeof m[0]) + 1); /* stack: stats, memory */
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
    lua_pushinteger(L, (lua_Integer)m[i].value);
    lua_setfield(L, -2, m[i].name);
  }
  lua_createtable(L, 0, NG_SPACES);
  for (int sp = 0; sp < NG_SPACES; sp++) {
    lua_pushinteger(L, (lua_Integer)s.memory.space_index[sp]);
    lua_setfield(L, -2, ng_space_name(sp));
  }
  lua_setfield(L, -2, "spaces");
  lua_setfield(L, -2, "memory");
  lua_pushboolean(L, s.metrics);
  lua_setfield(L, -2, "metrics");
  lua_pushinteger(L, (lua_Integer)s.writes);
  lua_setfield(L, -2, "writes");
  lua_createtable(L, 0, NG_QUERY_KINDS); /* stack: stats, queries */
  for (int k = 0; k < NG_QUERY_KINDS; k++) {
    const ng_query_stats *q = &s.queries[k];
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, (lua_Integer)q->count);
    lua_setfield(L, -2, "count");
    lua_pushnumber(L, q->total_seconds);
    lua_setfield(L, -2, "total");
    lua_pushnumber(L, q->mean_seconds);
    lua_setfield(L, -2, "mean");
    lua_pushnumber(L, q->p50_seconds);
    lua_setfield(L, -2, "p50");
    lua_pushnumber(L, q->p99_seconds);
    lua_setfield(L, -2, "p99");
    lua_setfield(L, -2, ng_query_name(k));
  }
  lua_setfield(L, -2, "queries");
  return 1;
}

static int rt_now(lua_State *L) {
  ngl_runtime *o = check_rt(L, "now");
  lua_pushinteger(L, (lua_Integer)ng_runtime_now(ngl_rt(L, o)));
  return 1;
}

/* A snapshot path argument: a non-empty string without zero bytes (C would
 * open the part before the first: "a.ngs\0.evil" would write a.ngs). */
static const char *check_path(lua_State *L, int idx, const char *fn) {
  const char *path = ngl_check_string(L, idx, idx, fn, "path");
  if (path[0] == '\0') ngl_argerror(L, idx, fn, "path must not be empty");
  return path;
}

/* Answers a failed file operation like io.open: nil, message. Raises for
 * what is not about the file (memory). */
static int io_failure(lua_State *L, const ng_runtime *rt, ng_status st, int arg, const char *fn) {
  ng_lua_progress_end(); /* a bar the failed operation left */
  if (st == NG_ENOMEM || st == NG_EINVAL || st == NG_EBUSY)
    return ngl_status_error(L, (ng_runtime *)rt, st, arg, fn);
  const char *detail = ng_last_error_detail(rt);
  lua_pushnil(L);
  lua_pushstring(L, detail != NULL && detail[0] != '\0' ? detail : ng_strerror(st));
  return 2;
}

/* The registry key of the "file access forbidden" flag (its address is unique). */
static const char file_access_key = 0;

void ng_lua_set_file_access(lua_State *L, int allowed) {
  lua_pushboolean(L, !allowed);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &file_access_key);
}

/* Raises when the host forbade file access in this state (a sandboxing host). */
static void check_file_access(lua_State *L, const char *fn) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &file_access_key);
  int forbidden = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (forbidden) luaL_error(L, "%s: file access is disabled in this Lua state", fn);
}

/* The options of save and checkpoint: {background = true|false} (nil: none). Returns whether
 * in the background. */
static bool check_background_option(lua_State *L, int idx, const char *fn) {
  if (lua_isnoneornil(L, idx)) return false;
  if (!lua_istable(L, idx))
    ngl_argerror(L, idx, fn, "options must be a table such as {background = true}");
  bool background = false;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) { /* stack: ..., key, value */
    if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "background") != 0) {
      ngl_near n;
      int key = lua_gettop(L) - 1;
      ngl_near_init(&n, L, key);
      ngl_near_try(&n, "background");
      ngl_unknown_name(L, key, idx, fn, "option", &n);
    }
    if (!lua_isboolean(L, -1))
      ngl_argerror(L, idx, fn, "background must be a boolean, got %s", ngl_describe(L, -1));
    background = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  return background;
}

/* A background save or checkpoint's start: the Save object below the top, or nil plus a
 * message (NG_EBUSY: another one runs, or inside rt:atomic, said in the message; otherwise
 * io_failure's). */
static int background_started(lua_State *L, ng_runtime *rt, ng_status st, int arg,
                              const char *fn) {
  if (st == NG_OK) return 1;
  if (st == NG_EBUSY) {
    lua_pushnil(L);
    lua_pushstring(L, ng_last_error_detail(rt));
    return 2;
  }
  return io_failure(L, rt, st, arg, fn);
}

/* rt:save(path [, {background = true}]) -> true, or nil plus a message (like io.open). The
 * file is replaced atomically: on failure an existing file is untouched. In the background:
 * a Save (save.c) of the state at the call, or nil plus a message (one is running already, or
 * it could not start). */
static int rt_save(lua_State *L) {
  ngl_runtime *o = check_rt(L, "save");
  ngl_rt(L, o);
  const char *path = check_path(L, 2, "save");
  bool background = check_background_option(L, 3, "save");
  check_file_access(L, "save");
  ng_runtime *rt = ngl_rt(L, o); /* after the checks (see ngl_runtime) */
  if (background) {
    ng_save **job = ngl_save_new(L); /* first: no leak on OOM */
    return background_started(L, rt, ng_snapshot_save_background(rt, path, job), 2, "save");
  }
  ng_status st = ng_snapshot_save(rt, path);
  if (st != NG_OK) return io_failure(L, rt, st, 2, "save");
  lua_pushboolean(L, 1);
  return 1;
}

/* ng.load(path) -> a new Runtime holding the snapshot, or nil plus a message
 * (missing, unreadable, corrupt or newer-format file). Ids are kept. */
int ngl_runtime_load(lua_State *L) {
  const char *path = check_path(L, 1, "load");
  check_file_access(L, "load");
  ngl_runtime *o = new_runtime_ud(L, NGL_UV(NGL_UV_RUNTIME_MT)); /* first: no leak on OOM */
  ng_runtime *rt = NULL;
  ng_config cfg;
  memset(&cfg, 0, sizeof cfg);
  host_config(L, &cfg);
  ng_status st = ng_snapshot_load(path, &cfg, &rt);
  if (st != NG_OK) return io_failure(L, NULL, st, 1, "load");
  o->rt = rt;
  return 1;
}

/* ng.open(path [, options]) -> a Runtime on the durable world in directory
 * `path` (created if missing; else its snapshot loaded and journal
 * replayed), or nil plus a message (unreadable, corrupt). options: sync
 * ("batch", "always" or "off"), interval_ms, checkpoint_bytes, and for a new
 * world profile, scales, initial_tokens, initial_connections. */
#define OPEN_KEYS                                                                                  \
  (NGL_KEY(NGL_K_SYNC) | NGL_KEY(NGL_K_INTERVAL_MS) | NGL_KEY(NGL_K_CHECKPOINT_BYTES) |          \
   NGL_KEY(NGL_K_INITIAL_TOKENS) | NGL_KEY(NGL_K_INITIAL_CONNECTIONS) | NGL_KEY(NGL_K_PROFILE) |  \
   NGL_KEY(NGL_K_SCALES))

int ngl_runtime_open(lua_State *L) {
  static const char fn[] = "open";
  static const char *const modes[] = {"batch", "always", "off", NULL};
  const char *path = check_path(L, 1, fn);
  ng_config cfg;
  memset(&cfg, 0, sizeof cfg);
  ng_open_options opt;
  memset(&opt, 0, sizeof opt);
  if (!lua_isnoneornil(L, 2)) {
    if (lua_type(L, 2) != LUA_TTABLE)
      ngl_argerror(L, 2, fn, "options table expected, got %s", ngl_describe(L, 2));
    lua_pushnil(L); /* stack: path, options, nil; in the loop path, options, key, value */
    while (lua_next(L, 2)) {
      switch (ngl_key(L, -2)) {
      case NGL_K_SYNC:
        opt.sync = (ng_sync_mode)ngl_check_option(L, -1, 2, fn, "sync",
                                                  "\"batch\", \"always\" or \"off\"", modes);
        break;
      case NGL_K_INTERVAL_MS:
        opt.interval_ms = (unsigned)ngl_check_integer(L, -1, 2, fn, "interval_ms", 1, 3600000);
        break;
      case NGL_K_CHECKPOINT_BYTES:
        opt.checkpoint_bytes =
            (uint64_t)ngl_check_integer(L, -1, 2, fn, "checkpoint_bytes", 1, INT64_MAX);
        break;
      default:
        if (!config_key(L, 2, fn, &cfg)) ngl_unknown_key(L, -2, 2, fn, "option", OPEN_KEYS);
      }
      lua_pop(L, 1);
    }
  }
  check_file_access(L, fn);
  ngl_runtime *o = new_runtime_ud(L, NGL_UV(NGL_UV_RUNTIME_MT)); /* first: no leak on OOM */
  host_config(L, &cfg);
  opt.config = &cfg;
  ng_runtime *rt = NULL;
  ng_status st = ng_runtime_open(path, &opt, &rt);
  if (st != NG_OK) return io_failure(L, NULL, st, 1, fn);
  o->rt = rt;
  return 1;
}

/* rt:checkpoint([{background = true}]) -> true, or nil plus a message: a new snapshot and
 * journal for a durable world (ng_checkpoint). In the background: a Save (save.c) of the
 * snapshot being written (ng_checkpoint_background), or nil plus a message (one is running
 * already, or it could not start). Raises for a runtime without a journal and inside a
 * transaction or callback. */
static int rt_checkpoint(lua_State *L) {
  ngl_runtime *o = check_rt(L, "checkpoint");
  ngl_rt(L, o);
  bool background = check_background_option(L, 2, "checkpoint");
  ng_runtime *rt = ngl_rt(L, o); /* after the checks (see ngl_runtime) */
  if (background) {
    ng_save **job = ngl_save_new(L); /* first: no leak on OOM */
    ng_status st = ng_checkpoint_background(rt, job);
    if (st == NG_EINVAL) return io_failure(L, rt, st, 1, "checkpoint");
    return background_started(L, rt, st, 1, "checkpoint");
  }
  ng_status st = ng_checkpoint(rt);
  if (st != NG_OK) return io_failure(L, rt, st, 1, "checkpoint");
  lua_pushboolean(L, 1);
  return 1;
}

/* The export/import format option: {format = "json"} (the only one; nil means it). */
static void check_format(lua_State *L, int idx, const char *fn) {
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx)) ngl_argerror(L, idx, fn, "options must be a table such as {format = \"json\"}");
  lua_getfield(L, idx, "format");
  const char *f = lua_tostring(L, -1);
  if (!lua_isnil(L, -1) && (!lua_isstring(L, -1) || strcmp(f, "json") != 0))
    ngl_argerror(L, idx, fn, "format must be \"json\"");
  lua_pop(L, 1);
}

/* rt:export(path [, {format = "json"}]) -> true, or nil plus a message: every
 * token and connection as JSON (ng_export_json), the file replaced atomically. */
static int rt_export(lua_State *L) {
  ngl_runtime *o = check_rt(L, "export");
  ngl_rt(L, o);
  const char *path = check_path(L, 2, "export");
  check_format(L, 3, "export");
  check_file_access(L, "export");
  ng_runtime *rt = ngl_rt(L, o);
  ng_status st = ng_export_json(rt, path);
  if (st != NG_OK) return io_failure(L, rt, st, 2, "export");
  lua_pushboolean(L, 1);
  return 1;
}

/* ng.import(path [, {format = "json"}]) -> a new Runtime holding the export,
 * or nil plus a message (the line of a JSON syntax error; the token or
 * connection and field of a bad value). Ids are kept. */
int ngl_runtime_import(lua_State *L) {
  const char *path = check_path(L, 1, "import");
  check_format(L, 2, "import");
  check_file_access(L, "import");
  ngl_runtime *o = new_runtime_ud(L, NGL_UV(NGL_UV_RUNTIME_MT)); /* first: no leak on OOM */
  ng_runtime *rt = NULL;
  ng_config cfg;
  memset(&cfg, 0, sizeof cfg);
  host_config(L, &cfg);
  ng_status st = ng_import_json(path, &cfg, &rt);
  if (st != NG_OK) return io_failure(L, NULL, st, 1, "import");
  o->rt = rt;
  return 1;
}

static int rt_tostring(lua_State *L) {
  ngl_runtime *o = check_rt(L, "__tostring");
  if (o->rt == NULL)
    lua_pushliteral(L, "neurograph.Runtime (closed)");
  else
    lua_pushfstring(L, "neurograph.Runtime (tokens=%I, connections=%I)",
                    (LUAI_UACINT)ng_token_count(o->rt), (LUAI_UACINT)ng_connection_count(o->rt));
  return 1;
}

/* Two Runtime objects are equal when they hold the same open C runtime
 * (several Lua objects may share one). */
static int rt_eq(lua_State *L) {
  ngl_runtime *a = ngl_toudata(L, 1, NGL_UV_RUNTIME_MT);
  ngl_runtime *b = ngl_toudata(L, 2, NGL_UV_RUNTIME_MT);
  lua_pushboolean(L, a != NULL && b != NULL && (a == b || (a->rt != NULL && a->rt == b->rt)));
  return 1;
}

static const luaL_Reg rt_meta[] = {
    {"__index", rt_index}, {"__newindex", rt_newindex}, {"__gc", rt_gc},
    {"__close", rt_close}, {"__tostring", rt_tostring}, {"__eq", rt_eq},
    {NULL, NULL},
};
static const luaL_Reg rt_methods[] = {
    {"close", rt_close}, {"is_closed", rt_is_closed}, {"stats", rt_stats},
    {"now", rt_now},     {"save", rt_save},           {"export", rt_export},
    {"checkpoint", rt_checkpoint},
    {NULL, NULL},
};

void ngl_open_runtime(lua_State *L, int ctx) {
  lua_rawgeti(L, ctx, NGL_UV_RUNTIME_MT);
  ngl_setfuncs(L, ctx, -1, rt_meta);
  lua_pop(L, 1);
  lua_rawgeti(L, ctx, NGL_UV_RUNTIME_INDEX); /* stack: ..., index; name -> method or slot */
  ngl_setfuncs(L, ctx, -1, rt_methods);
  static const struct {
    const char *name;
    int slot;
  } fields[] = {{"tokens", NGL_RT_TOKENS},     {"connections", NGL_RT_CONNS},
                {"grid", NGL_RT_GRID},         {"cdna", NGL_RT_CDNA},
                {"events", NGL_RT_EVENTS},     {"graph", NGL_RT_GRAPH},
                {"grid_size", RT_F_GRID_SIZE}, {"dimensions", RT_F_DIMENSIONS}};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    lua_pushinteger(L, fields[i].slot);
    lua_setfield(L, -2, fields[i].name);
  }
  lua_pop(L, 1);
}

/* ---- embedding helpers (neurograph_lua.h) -------------------------------- */

void ng_lua_push_runtime(lua_State *L, ng_runtime *rt) {
  if (luaL_getmetatable(L, RUNTIME_MT) != LUA_TTABLE) {
    lua_pop(L, 1);
    luaL_requiref(L, "neurograph", luaopen_neurograph, 0);
    lua_pop(L, 1);
    luaL_getmetatable(L, RUNTIME_MT);
  }
  ngl_runtime *o = new_runtime_ud(L, -1); /* stack: ..., mt, rt; then ..., rt */
  lua_remove(L, -2);
  o->rt = ng_runtime_retain(rt); /* only now: a failed push above takes no reference */
}

ng_runtime *ng_lua_to_runtime(lua_State *L, int idx) {
  ngl_runtime *o = luaL_testudata(L, idx, RUNTIME_MT);
  return o != NULL ? o->rt : NULL;
}

ng_runtime *ng_lua_check_runtime(lua_State *L, int idx) {
  ngl_runtime *o = luaL_testudata(L, idx, RUNTIME_MT);
  if (o == NULL) luaL_typeerror(L, idx, RUNTIME_MT);
  if (o->rt == NULL) luaL_argerror(L, idx, "runtime is closed");
  return o->rt;
}

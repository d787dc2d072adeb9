/* A small simulation host embedding neurograph: C moves agents, Lua thinks, threads query. */
#define _POSIX_C_SOURCE 200809L

#include <neurograph.h>
#include <neurograph_lua.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef EMBED_SCRIPT_DIR
#define EMBED_SCRIPT_DIR "."
#endif

#define WORLD_HALF 100.0f /* agents live in [-100, 100]^2 of space L1 (metres) */
#define MAX_SPEED 2.0f    /* m per tick; well inside L3's +-32.767 range */
#define ERR_SIZE 1024

/* ---- one allocator for neurograph and every Lua state ------------------- */

/* Byte accounting for one user of the allocator. Atomic because the
 * runtime's allocator is called from whichever thread runs a query. */
typedef struct mem_account {
  atomic_size_t in_use;
  atomic_size_t peak;
} mem_account;

/* lua_Alloc-shaped allocator, handed to ng_config and lua_newstate alike.
 * For Lua, osize is a type tag when ptr is NULL, so it only counts with ptr. */
static void *sim_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  mem_account *m = ud;
  size_t old = ptr != NULL ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    atomic_fetch_sub(&m->in_use, old);
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p == NULL) return NULL; /* ptr untouched, as both contracts require */
  size_t now = atomic_fetch_add(&m->in_use, nsize) + nsize;
  atomic_fetch_sub(&m->in_use, old);
  size_t peak = atomic_load(&m->peak);
  while (now > peak && !atomic_compare_exchange_weak(&m->peak, &peak, now)) {
  }
  return p;
}

/* ---- the simulated clock ------------------------------------------------ */

/* Simulated Unix time: a fixed epoch plus one second per tick, so every
 * timestamp the store writes is the same on every run (replays). */
static uint64_t sim_clock(void *ud) {
  return atomic_load((atomic_uint_fast64_t *)ud);
}

/* ---- deterministic PRNG (splitmix64) ------------------------------------ */

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

/* Uniform float in [lo, hi) from the top 24 bits (exact in a float). */
static float rng_range(uint64_t *s, float lo, float hi) {
  float u = (float)(rng_next(s) >> 40) / 16777216.0f;
  return lo + (hi - lo) * u;
}

/* ---- the simulation ----------------------------------------------------- */

typedef struct agent {
  ng_id id;
  float x, y, vx, vy;
} agent;

typedef struct sim sim;

/* A query thread: its own Lua state, used by no other thread once started. */
typedef struct worker {
  sim *s;
  int index;
  pthread_t thread;
  lua_State *L;
  mem_account mem;
  lua_Integer tick_queries, tick_hits; /* written by the worker, read after the barrier */
  long long queries, hits;
  int failed;
  char err[ERR_SIZE];
} worker;

struct sim {
  ng_runtime *rt;
  mem_account core_mem;
  atomic_uint_fast64_t now;
  agent *agents;
  size_t n_agents;
  uint64_t rng;
  lua_State *brain;
  mem_account brain_mem;
  worker *workers;
  int n_workers;
  int started; /* threads running */
  /* Tick hand-off: the main thread bumps `generation`, every worker runs one
   * batch and counts itself in `done`. */
  pthread_mutex_t mu;
  pthread_cond_t go, all_done;
  unsigned generation;
  int done;
  int quit;
  lua_Integer tick;
  char err[ERR_SIZE];
};

/* Records "what: status (detail)" for a failed neurograph call; returns -1. */
static int ng_fail(sim *s, const char *what, ng_status st) {
  snprintf(s->err, sizeof s->err, "%s: %s (%s)", what, ng_strerror(st), ng_last_error(s->rt));
  return -1;
}

/* ---- Lua states --------------------------------------------------------- */

/* Message handler: appends a traceback, like the stock lua host. */
static int msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

typedef struct script_args {
  const char *path;
  ng_runtime *rt;
  lua_Integer worker; /* 0 for the brain */
  lua_Integer agents;
  lua_Integer queries;
} script_args;

/* Protected: opens the libraries and the statically linked module, runs the
 * script with (runtime, params) and leaves the per-tick function it returns. */
static int setup_state(lua_State *L) {
  const script_args *a = lua_touserdata(L, 1);
  luaL_openlibs(L);
  luaL_requiref(L, "neurograph", luaopen_neurograph, 0); /* so scripts can require it */
  lua_pop(L, 1);
  if (luaL_loadfilex(L, a->path, "t") != LUA_OK) return lua_error(L);
  ng_lua_push_runtime(L, a->rt); /* the Lua value holds its own reference */
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, a->worker);
  lua_setfield(L, -2, "worker");
  lua_pushinteger(L, a->agents);
  lua_setfield(L, -2, "agents");
  lua_pushinteger(L, a->queries);
  lua_setfield(L, -2, "queries");
  lua_pushnumber(L, (lua_Number)WORLD_HALF);
  lua_setfield(L, -2, "half");
  lua_call(L, 2, 1);
  if (!lua_isfunction(L, -1))
    return luaL_error(L, "%s must return a function, got %s", a->path, luaL_typename(L, -1));
  return 1;
}

/* Creates a Lua state on `mem` running script `path`.
 * Guarantees on success: stack is [msgh, tick function]. Fails: NULL, err set. */
static lua_State *open_script(mem_account *mem, const script_args *a, char *err, size_t errsz) {
  lua_State *L = lua_newstate(sim_alloc, mem);
  if (L == NULL) {
    snprintf(err, errsz, "%s: cannot create a Lua state (out of memory)", a->path);
    return NULL;
  }
  lua_pushcfunction(L, msgh);
  lua_pushcfunction(L, setup_state);
  lua_pushlightuserdata(L, (void *)a);
  if (lua_pcall(L, 1, 1, 1) != LUA_OK) {
    snprintf(err, errsz, "%s", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  return L;
}

/* Calls the script's tick function with `tick`; it must return two integers.
 * Fails: -1 with err set (message and traceback); the state stays usable. */
static int run_tick(lua_State *L, lua_Integer tick, lua_Integer out[2], char *err, size_t errsz) {
  lua_pushvalue(L, 2);
  lua_pushinteger(L, tick);
  if (lua_pcall(L, 1, 2, 1) != LUA_OK) {
    snprintf(err, errsz, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  int ok0, ok1;
  out[0] = lua_tointegerx(L, -2, &ok0);
  out[1] = lua_tointegerx(L, -1, &ok1);
  lua_pop(L, 2);
  if (!ok0 || !ok1) {
    snprintf(err, errsz, "tick function must return two integers");
    return -1;
  }
  return 0;
}

/* ---- worker threads ----------------------------------------------------- */

/* A worker thread: one batch of worker.lua per tick until told to quit.
 * Never exits early: a failed batch is recorded (w->failed, w->err) and the
 * worker keeps counting itself done, so the main thread never waits forever. */
static void *worker_main(void *arg) {
  worker *w = arg;
  sim *s = w->s;
  unsigned seen = 0;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    while (s->generation == seen && !s->quit)
      pthread_cond_wait(&s->go, &s->mu);
    if (s->quit) {
      pthread_mutex_unlock(&s->mu);
      break;
    }
    seen = s->generation;
    lua_Integer tick = s->tick;
    pthread_mutex_unlock(&s->mu);

    /* Runs while the main thread writes: readers and the writer share the
     * runtime through its lock, each Lua state stays on its own thread. */
    lua_Integer r[2] = {0, 0};
    if (!w->failed && run_tick(w->L, tick, r, w->err, sizeof w->err) != 0) w->failed = 1;
    w->tick_queries = r[0];
    w->tick_hits = r[1];

    pthread_mutex_lock(&s->mu);
    if (++s->done == s->n_workers) pthread_cond_signal(&s->all_done);
    pthread_mutex_unlock(&s->mu);
  }
  return NULL;
}

/* Releases every worker into tick `tick` (they then run concurrently with us). */
static void start_tick(sim *s, lua_Integer tick) {
  pthread_mutex_lock(&s->mu);
  s->tick = tick;
  s->done = 0;
  s->generation++;
  pthread_cond_broadcast(&s->go);
  pthread_mutex_unlock(&s->mu);
}

/* Returns once every worker has finished the current tick's batch. */
static void wait_tick(sim *s) {
  pthread_mutex_lock(&s->mu);
  while (s->done < s->n_workers)
    pthread_cond_wait(&s->all_done, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

static void stop_workers(sim *s) {
  pthread_mutex_lock(&s->mu);
  s->quit = 1;
  pthread_cond_broadcast(&s->go);
  pthread_mutex_unlock(&s->mu);
  for (int i = 0; i < s->started; i++)
    pthread_join(s->workers[i].thread, NULL);
  s->started = 0;
}

/* ---- the world ---------------------------------------------------------- */

/* Creates the agents as tokens: position in L1, velocity in L3. */
static int populate(sim *s) {
  for (size_t i = 0; i < s->n_agents; i++) {
    agent *a = &s->agents[i];
    a->x = rng_range(&s->rng, -WORLD_HALF, WORLD_HALF);
    a->y = rng_range(&s->rng, -WORLD_HALF, WORLD_HALF);
    a->vx = rng_range(&s->rng, -1.0f, 1.0f);
    a->vy = rng_range(&s->rng, -1.0f, 1.0f);
    ng_token t;
    ng_token_init(&t);
    ng_token_set_entity(&t, NG_ENTITY_OBJECT);
    ng_token_set_coords(&t, NG_L1, a->x, a->y, 0.0f);
    ng_token_set_coords(&t, NG_L3, a->vx, a->vy, 0.0f);
    ng_token_set_field_radius(&t, 0.5f);
    t.weight = 1.0f;
    ng_status st = ng_token_create(s->rt, &t, NG_TF_COORDS(NG_L1) | NG_TF_COORDS(NG_L3), &a->id);
    if (st != NG_OK) return ng_fail(s, "ng_token_create", st);
  }
  return 0;
}

/* Reflects a coordinate into [-WORLD_HALF, WORLD_HALF], flipping the velocity. */
static void bounce(float *p, float *v) {
  if (*p > WORLD_HALF) {
    *p = 2.0f * WORLD_HALF - *p;
    *v = -*v;
  } else if (*p < -WORLD_HALF) {
    *p = -2.0f * WORLD_HALF - *p;
    *v = -*v;
  }
}

static float clamp_speed(float v) {
  return v > MAX_SPEED ? MAX_SPEED : v < -MAX_SPEED ? -MAX_SPEED : v;
}

/* One step of motion. Only the coordinates of L1 and L3 are written (the
 * field mask), so weights the brain changed are never overwritten. */
static int move_agents(sim *s) {
  const uint32_t mask = NG_TF_COORDS(NG_L1) | NG_TF_COORDS(NG_L3);
  ng_token t;
  ng_token_init(&t);
  for (size_t i = 0; i < s->n_agents; i++) {
    agent *a = &s->agents[i];
    a->vx = clamp_speed(a->vx + rng_range(&s->rng, -0.1f, 0.1f));
    a->vy = clamp_speed(a->vy + rng_range(&s->rng, -0.1f, 0.1f));
    a->x += a->vx;
    a->y += a->vy;
    bounce(&a->x, &a->vx);
    bounce(&a->y, &a->vy);
    ng_token_set_coords(&t, NG_L1, a->x, a->y, 0.0f);
    ng_token_set_coords(&t, NG_L3, a->vx, a->vy, 0.0f);
    ng_status st = ng_token_update(s->rt, a->id, &t, mask);
    if (st != NG_OK) return ng_fail(s, "ng_token_update", st);
  }
  return 0;
}

/* State of the end-of-run walk over the store (ng_token_each callback). */
typedef struct walk {
  sim *s;
  ng_runtime *rt; /* the runtime walked: the live one or a reloaded snapshot */
  uint64_t hash;
  size_t seen;
  ng_status busy; /* what a write from inside the callback returned */
  int mismatch;
  ng_id bad_id;
} walk;

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211u;
  return h;
}

/* Hashes every token (the replay fingerprint) and checks the store agrees
 * with the C-side agents. Runs under the runtime's read lock. */
static bool walk_token(const ng_token *tok, ng_id id, void *ud) {
  walk *w = ud;
  if (w->seen == 0) {
    /* The threading rule in action: a write from inside a callback must
     * fail with NG_EBUSY rather than deadlock on the lock we are under. */
    w->busy = ng_token_update(w->rt, id, tok, NG_TF_WEIGHT);
  }
  size_t i = w->seen++;
  const agent *a = i < w->s->n_agents ? &w->s->agents[i] : NULL;
  if (a == NULL || a->id != id || tok->coords[NG_L1][0] != ng_coord_encode(NG_L1, a->x) ||
      tok->coords[NG_L1][1] != ng_coord_encode(NG_L1, a->y) ||
      tok->coords[NG_L3][0] != ng_coord_encode(NG_L3, a->vx)) {
    w->mismatch = 1;
    w->bad_id = id;
    return false;
  }
  w->hash = fnv1a(w->hash, tok, sizeof *tok);
  return true;
}

/* End-of-run check of `rt`: every agent is in it exactly as C last wrote it,
 * and a write inside a callback was refused with NG_EBUSY.
 * Guarantees on success: *hash is the world fingerprint. Fails: -1, s->err set. */
static int verify_world(sim *s, ng_runtime *rt, uint64_t *hash) {
  walk w = {s, rt, 14695981039346656037u, 0, NG_OK, 0, 0};
  ng_status st = ng_token_each(rt, walk_token, &w);
  if (st != NG_OK) return ng_fail(s, "ng_token_each", st);
  if (w.mismatch) {
    snprintf(s->err, sizeof s->err, "token %llu does not match its agent",
             (unsigned long long)w.bad_id);
    return -1;
  }
  if (w.seen != s->n_agents) {
    snprintf(s->err, sizeof s->err, "store has %zu tokens, expected %zu", w.seen, s->n_agents);
    return -1;
  }
  if (w.busy != NG_EBUSY) {
    snprintf(s->err, sizeof s->err, "a write inside ng_token_each returned '%s', expected '%s'",
             ng_strerror(w.busy), ng_strerror(NG_EBUSY));
    return -1;
  }
  *hash = w.hash;
  return 0;
}

/* Saves the world to `path`, loads it back into a second runtime (same
 * allocator and clock) and checks that it is the same world: same tokens,
 * hash, connections and next ids. Fails: -1, s->err set; nothing leaks. */
static int snapshot_roundtrip(sim *s, const char *path, uint64_t hash) {
  ng_status st = ng_snapshot_save(s->rt, path);
  if (st != NG_OK) return ng_fail(s, "ng_snapshot_save", st);
  ng_config cfg = {0};
  cfg.alloc = sim_alloc;
  cfg.alloc_ud = &s->core_mem;
  cfg.clock = sim_clock;
  cfg.clock_ud = &s->now;
  ng_runtime *copy = NULL;
  st = ng_snapshot_load(path, &cfg, &copy);
  if (st != NG_OK) {
    /* no runtime came back, so the detail is the thread's, not a runtime's */
    snprintf(s->err, sizeof s->err, "ng_snapshot_load: %s (%s)", ng_strerror(st),
             ng_last_error(NULL));
    return -1;
  }
  uint64_t h2 = 0;
  ng_stats a, b;
  int rc = verify_world(s, copy, &h2);
  if (rc == 0 && (st = ng_runtime_stats(s->rt, &a)) == NG_OK) st = ng_runtime_stats(copy, &b);
  if (rc == 0 && st != NG_OK) rc = ng_fail(s, "ng_runtime_stats", st);
  if (rc == 0 &&
      (h2 != hash || a.connections != b.connections || a.next_token_id != b.next_token_id ||
       a.next_connection_id != b.next_connection_id)) {
    snprintf(s->err, sizeof s->err, "the snapshot %s reloaded as a different world", path);
    rc = -1;
  }
  if (rc == 0)
    printf("snapshot %s: saved and reloaded, same world (%zu tokens, %zu connections)\n", path,
           b.tokens, b.connections);
  ng_runtime_release(copy);
  return rc;
}

/* ---- command line ------------------------------------------------------- */

typedef struct options {
  long ticks, workers, agents, queries;
  const char *scripts;
  const char *snapshot; /* NULL: none */
} options;

static int parse_long(const char *arg, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(arg, &end, 10);
  if (errno != 0 || end == arg || *end != '\0' || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: sim [-w workers] [-a agents] [-q queries] [-s scriptdir] [-o snapshot] [ticks]\n"
          "  ticks     ticks to simulate, 1..100000 (default 10)\n"
          "  -w N      query threads, each with its own Lua state, 0..64 (default 3)\n"
          "  -a N      agents, 1..100000 (default 2000)\n"
          "  -q N      queries per worker per tick, 0..10000 (default 20)\n"
          "  -s DIR    directory of brain.lua and worker.lua (default %s)\n"
          "  -o FILE   at the end, save the world to FILE and check it reloads identically\n",
          EMBED_SCRIPT_DIR);
}

/* Returns 0, 1 (help shown) or -1 (bad usage, message printed). */
static int parse_args(int argc, char **argv, options *o) {
  *o = (options){10, 3, 2000, 20, EMBED_SCRIPT_DIR, NULL};
  int positional = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    long *target = NULL, lo = 0, hi = 0;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 1;
    } else if (strcmp(a, "-s") == 0 || strcmp(a, "-o") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "sim: %s needs a %s\n", a, a[1] == 's' ? "directory" : "file name");
        return -1;
      }
      *(a[1] == 's' ? &o->scripts : &o->snapshot) = argv[++i];
      continue;
    } else if (strcmp(a, "-w") == 0) {
      target = &o->workers, lo = 0, hi = 64;
    } else if (strcmp(a, "-a") == 0) {
      target = &o->agents, lo = 1, hi = 100000;
    } else if (strcmp(a, "-q") == 0) {
      target = &o->queries, lo = 0, hi = 10000;
    } else if (a[0] != '-' && !positional) {
      positional = 1;
      if (parse_long(a, 1, 100000, &o->ticks) != 0) {
        fprintf(stderr, "sim: ticks must be an integer in 1..100000, got '%s'\n", a);
        return -1;
      }
      continue;
    } else {
      fprintf(stderr, "sim: unexpected argument '%s'\n", a);
      usage(stderr);
      return -1;
    }
    if (i + 1 >= argc || parse_long(argv[i + 1], lo, hi, target) != 0) {
      fprintf(stderr, "sim: %s needs an integer in %ld..%ld\n", a, lo, hi);
      return -1;
    }
    i++;
  }
  return 0;
}

/* ---- main --------------------------------------------------------------- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double kib(const mem_account *m) {
  return (double)atomic_load(&m->in_use) / 1024.0;
}

/* Creates the runtime, the world, the brain and the workers. */
static int setup(sim *s, const options *o) {
  ng_config cfg = {0};
  cfg.alloc = sim_alloc; /* the same function every Lua state gets */
  cfg.alloc_ud = &s->core_mem;
  cfg.clock = sim_clock;
  cfg.clock_ud = &s->now;
  cfg.initial_tokens = (size_t)o->agents;
  ng_status st = ng_runtime_new(&cfg, &s->rt);
  if (st != NG_OK) {
    snprintf(s->err, sizeof s->err, "ng_runtime_new: %s (%s)", ng_strerror(st),
             ng_last_error(NULL));
    return -1;
  }
  s->n_agents = (size_t)o->agents;
  s->agents = calloc(s->n_agents, sizeof *s->agents);
  if (s->agents == NULL) {
    snprintf(s->err, sizeof s->err, "out of memory for %zu agents", s->n_agents);
    return -1;
  }
  if (populate(s) != 0) return -1;

  char path[4096];
  snprintf(path, sizeof path, "%s/brain.lua", o->scripts);
  script_args a = {path, s->rt, 0, o->agents, o->queries};
  s->brain = open_script(&s->brain_mem, &a, s->err, sizeof s->err);
  if (s->brain == NULL) return -1;

  s->n_workers = (int)o->workers;
  s->workers = calloc((size_t)(s->n_workers > 0 ? s->n_workers : 1), sizeof *s->workers);
  if (s->workers == NULL) {
    snprintf(s->err, sizeof s->err, "out of memory for %d workers", s->n_workers);
    return -1;
  }
  snprintf(path, sizeof path, "%s/worker.lua", o->scripts);
  for (int i = 0; i < s->n_workers; i++) {
    worker *w = &s->workers[i];
    w->s = s;
    w->index = i + 1;
    a.worker = i + 1;
    /* Created here, then used only by its thread: a Lua state may change
     * threads, it must just never be used by two at once. */
    w->L = open_script(&w->mem, &a, s->err, sizeof s->err);
    if (w->L == NULL) return -1;
  }
  for (int i = 0; i < s->n_workers; i++) {
    int rc = pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
    if (rc != 0) {
      snprintf(s->err, sizeof s->err, "pthread_create: %s", strerror(rc));
      return -1;
    }
    s->started++;
  }
  return 0;
}

/* One tick: workers query while C moves the agents and the brain thinks. */
static int tick(sim *s, lua_Integer t, long ticks) {
  double t0 = now_ms();
  atomic_fetch_add(&s->now, 1);
  start_tick(s, t);
  int rc = move_agents(s);
  lua_Integer brain[2] = {0, 0};
  char msg[ERR_SIZE];
  if (rc == 0 && run_tick(s->brain, t, brain, msg, sizeof msg) != 0) {
    snprintf(s->err, sizeof s->err, "brain.lua: %.900s", msg);
    rc = -1;
  }
  wait_tick(s); /* always: the workers must be idle before we return */
  if (rc != 0) return rc;

  lua_Integer queries = 0, hits = 0;
  double lua_kib = kib(&s->brain_mem);
  for (int i = 0; i < s->n_workers; i++) {
    worker *w = &s->workers[i];
    if (w->failed) {
      snprintf(s->err, sizeof s->err, "worker %d (worker.lua): %.900s", w->index, w->err);
      return -1;
    }
    queries += w->tick_queries;
    hits += w->tick_hits;
    w->queries += w->tick_queries;
    w->hits += w->tick_hits;
    lua_kib += kib(&w->mem);
  }
  ng_stats st;
  ng_status status = ng_runtime_stats(s->rt, &st);
  if (status != NG_OK) return ng_fail(s, "ng_runtime_stats", status);
  printf("tick %3lld/%ld  tokens %zu  connections %4zu (+%lld -%lld)  queries %4lld  hits %6lld"
         "  core %7.1f KiB  lua %7.1f KiB  %7.2f ms\n",
         (long long)t, ticks, st.tokens, st.connections, (long long)brain[0], (long long)brain[1],
         (long long)queries, (long long)hits, (double)st.bytes_in_use / 1024.0, lua_kib,
         now_ms() - t0);
  fflush(stdout);
  return 0;
}

/* Tears everything down in the documented order: Lua states first (each
 * drops its runtime reference), then the host's own reference. Returns -1
 * if any allocator account did not return to zero (a leak). */
static int teardown(sim *s) {
  stop_workers(s);
  int leak = 0;
  for (int i = 0; s->workers != NULL && i < s->n_workers; i++) {
    if (s->workers[i].L != NULL) lua_close(s->workers[i].L);
    if (atomic_load(&s->workers[i].mem.in_use) != 0) leak = 1;
  }
  if (s->brain != NULL) lua_close(s->brain);
  if (atomic_load(&s->brain_mem.in_use) != 0) leak = 1;
  ng_runtime_release(s->rt); /* the last reference: frees the store */
  if (atomic_load(&s->core_mem.in_use) != 0) leak = 1;
  free(s->workers);
  free(s->agents);
  return leak ? -1 : 0;
}

int main(int argc, char **argv) {
  options o;
  int pa = parse_args(argc, argv, &o);
  if (pa != 0) return pa > 0 ? 0 : 2;

  static sim s;                /* static: zeroed, and too large to want on the stack */
  s.rng = 0x6E6575726F677261u; /* fixed seed: the motion is the same on every run */
  atomic_init(&s.now, 1700000000u);
  pthread_mutex_init(&s.mu, NULL);
  pthread_cond_init(&s.go, NULL);
  pthread_cond_init(&s.all_done, NULL);

  printf("neurograph %s embed example: %ld agents, %ld workers x %ld queries, %ld ticks\n",
         NG_VERSION_STRING, o.agents, o.workers, o.queries, o.ticks);
  int rc = setup(&s, &o);
  for (long t = 1; rc == 0 && t <= o.ticks; t++)
    rc = tick(&s, (lua_Integer)t, o.ticks);

  uint64_t hash = 0;
  if (rc == 0) rc = verify_world(&s, s.rt, &hash);
  if (rc == 0) {
    long long q = 0, h = 0;
    for (int i = 0; i < s.n_workers; i++)
      q += s.workers[i].queries, h += s.workers[i].hits;
    printf("total: %lld queries, %lld hits; peak core %.1f KiB\n", q, h,
           (double)atomic_load(&s.core_mem.peak) / 1024.0);
    printf("world hash %016llx\n", (unsigned long long)hash);
  }
  if (rc == 0 && o.snapshot != NULL) rc = snapshot_roundtrip(&s, o.snapshot, hash);
  if (teardown(&s) != 0 && rc == 0) {
    snprintf(s.err, sizeof s.err, "memory was not returned to the allocator (leak)");
    rc = -1;
  }
  pthread_cond_destroy(&s.all_done);
  pthread_cond_destroy(&s.go);
  pthread_mutex_destroy(&s.mu);
  if (rc != 0) {
    fprintf(stderr, "sim: %s\n", s.err);
    return 1;
  }
  printf("ok: every reference released, all memory returned\n");
  return 0;
}

/* What the files of the Lua binding share, in dependency order: the layouts and upvalue slots,
 * then args.c's checks and converters, then the types (one file each), then module.c. */
#ifndef NG_LUA_BINDING_H
#define NG_LUA_BINDING_H

#include "neurograph.h"
#include "neurograph_lua.h"

#include <lauxlib.h>
#include <lua.h>

#include "compat.h" /* the 5.4 API on 5.3, 5.1 and LuaJIT */

/*
 * Every C function of the module is a closure over the same upvalues, so hot
 * paths find metatables and name maps without a registry lookup by name.
 */
enum {
  NGL_UV_RUNTIME_MT = 1,
  NGL_UV_TOKEN_MT,
  NGL_UV_CONN_MT,
  NGL_UV_TOKENS_MT,     /* rt.tokens; the next five follow in this order */
  NGL_UV_CONNS_MT,      /* rt.connections */
  NGL_UV_GRID_MT,       /* rt.grid */
  NGL_UV_CDNA_MT,       /* rt.cdna */
  NGL_UV_EVENTS_MT,     /* rt.events */
  NGL_UV_GRAPH_MT,      /* rt.graph */
  NGL_UV_KEYS,          /* name -> NGL_K_*; keeps the ngl_names strings alive */
  NGL_UV_SPACES,        /* "L1".."L8" and aliases -> 0..7 */
  NGL_UV_ENTITIES,      /* entity name -> 0..15 */
  NGL_UV_CTYPES,        /* connection type name -> 0..175 */
  NGL_UV_PROFILES,      /* profile name -> number */
  NGL_UV_TOKEN_INDEX,   /* Token: method name -> function, field name -> NGL_K_* */
  NGL_UV_CONN_INDEX,    /* Connection: the same */
  NGL_UV_RUNTIME_INDEX, /* Runtime: method name -> function, field name -> slot */
  NGL_UV_NAMES,         /* ngl_names: the hot name lookups without hashing strings */
  NGL_UV_HITS_MT,       /* a query's own hits buffer while the runtime's is in use */
  NGL_NUP = NGL_UV_HITS_MT
};

/*
 * Short Lua strings are interned: while the names below are kept alive (they
 * are keys of the KEYS, SPACES and ENTITIES tables), every equal string in the
 * state is the same object, so a name is found by the object's address, which
 * lua_topointer gives in one call without the type test and conversion of
 * lua_tolstring (it gives NULL or another object's address for anything that
 * is not a string, so those are never found). One table per Lua state (a
 * userdata upvalue); open addressing over the addresses.
 */
enum { NGL_NAME_KEY = 1, NGL_NAME_SPACE, NGL_NAME_ENTITY };
#define NGL_NAME_SLOTS 256
typedef struct ngl_names {
  const void *ptr[NGL_NAME_SLOTS]; /* lua_topointer of each name string */
  int16_t kind[NGL_NAME_SLOTS];
  int16_t value[NGL_NAME_SLOTS];
  /* lua_topointer of the metatables at upvalues NGL_UV_RUNTIME_MT..NGL_UV_GRAPH_MT
   * (kept alive by the upvalues): a type test by address, as for names */
  const void *mt[NGL_UV_GRAPH_MT + 1];
} ngl_names;
/* Home slot of the string object at address p. */
static inline size_t ngl_name_slot(const void *p) {
  return (size_t)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15u) >> 56) & (NGL_NAME_SLOTS - 1);
}
/* ngl_name for p = lua_topointer of the value, with the table already fetched
 * (the upvalue NGL_UV_NAMES): hot loops look several names up per call.
 * Callers pass only values whose type they checked or that a miss sends to a
 * checking slow path (a light userdata could carry any address). */
static inline int ngl_name_of(const ngl_names *n, const void *p, int kind) {
  for (size_t i = ngl_name_slot(p); n->ptr[i] != NULL; i = (i + 1) & (NGL_NAME_SLOTS - 1))
    if (n->ptr[i] == p && n->kind[i] == kind) return n->value[i];
  return -1;
}
#define NGL_UV(i) lua_upvalueindex(i)

/* Names of every field and option any table of the API accepts. */
enum ngl_key {
  NGL_K_NONE = 0,
  NGL_K_ID,
  NGL_K_WEIGHT,
  NGL_K_FLAGS,
  NGL_K_ENTITY,
  NGL_K_FIELD_RADIUS,
  NGL_K_FIELD_STRENGTH,
  NGL_K_TIMESTAMP,
  NGL_K_COORDS,
  NGL_K_DOMAIN,
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
  NGL_K_BIDIRECTIONAL,
  NGL_K_LEARNING_RATE,
  NGL_K_DECAY_RATE,
  NGL_K_ACTIVE_LEVELS,
  NGL_K_CREATED_AT,
  NGL_K_LAST_ACTIVATION,
  NGL_K_LAST_UPDATE,
  NGL_K_SOURCE_ID,
  NGL_K_TARGET_VECTOR,
  NGL_K_SPACE,
  NGL_K_LIMIT,
  NGL_K_INTO,
  NGL_K_GRID_SIZE,
  NGL_K_DIMENSIONS,
  NGL_K_INITIAL_TOKENS,
  NGL_K_INITIAL_CONNECTIONS,
  NGL_K_PROFILE,
  NGL_K_CELL_SIZE,
  NGL_K_CELL_SIZES,
  NGL_K_TAGS,
  NGL_K_WITHOUT,
  NGL_K_EXCLUDE,
  NGL_K_INACTIVE,
  NGL_K_WHERE,
  NGL_K_POSITIONS,
  NGL_K_DIR,
  NGL_K_SCALES,
  NGL_K_MAX_DEPTH,
  NGL_K_TYPES,
  NGL_K_CATEGORIES,
  NGL_K_COST,
  NGL_K_MAX_COST,
  NGL_K_FIELD,
  NGL_K_MIN_ENERGY,
  NGL_K_DECAY,
  NGL_K_THRESHOLD,
  NGL_K_MODE,
  NGL_K_ENERGY,
  NGL_K_SYNC,
  NGL_K_INTERVAL_MS,
  NGL_K_CHECKPOINT_BYTES,
  NGL_K_COUNT
};
/* Bit of NGL_K_* key k in a set of keys. */
#define NGL_KEY(k) ((uint64_t)1 << (k))

/*
 * The Lua side of a runtime. Several Lua states may share one ng_runtime; each
 * has its own object, so the scratch buffers here are never shared.
 *
 * Any Lua allocation may run a finalizer, and a finalizer may call rt:close()
 * or query the same runtime. So a binding call holds what it uses: it fetches
 * `rt` (ngl_rt) after its last Lua allocation before the C calls, reads `ids`
 * and `moves` only between steps that cannot run Lua code, and pushes grid
 * hits (which allocates tables) from a held buffer (grid.c). A
 * close during such a push marks the object closed at once and releases the C
 * runtime and the buffers when the push ends (or at collection).
 */
typedef struct ngl_runtime {
  ng_runtime *rt;      /* NULL once closed */
  ng_runtime *pending; /* closed during a push from `hits`: released after it */
  int hits_busy;       /* a push from `hits` is in progress */
  ng_hits hits;        /* reused by every grid query */
  ng_id *ids;          /* reused by list / connections / move (Lua allocator) */
  size_t ids_cap;
  ng_token *moves; /* reused by tokens:move (Lua allocator) */
  size_t moves_cap;
  double *xyz; /* reused by tokens:move for the decoded coordinates (Lua allocator) */
  size_t xyz_cap;
  lua_Integer grid_size;
  lua_Integer dimensions;
} ngl_runtime;

/* Runtime user values: the lazily created sub-objects, then the pool of
 * {id, distance} pair tables that queries into a caller's table recycle. */
enum {
  NGL_RT_TOKENS = 1,
  NGL_RT_CONNS,
  NGL_RT_GRID,
  NGL_RT_CDNA,
  NGL_RT_EVENTS,
  NGL_RT_GRAPH,
  NGL_RT_PAIRS,
  NGL_RT_NUV = NGL_RT_PAIRS
};

/* Token and Connection handles and the rt.tokens/... objects: the owner plus
 * an id (0 for the sub-objects). User value 1 holds the Runtime userdata, which
 * keeps `owner` alive and in place (userdata never move); a sub-object's user
 * value 2 is its own state (rt.events: its handlers). */
typedef struct ngl_handle {
  ngl_runtime *owner;
  ng_id id;
} ngl_handle;

/* ==== args.c: checks and converters every file uses ==================== */

/* ---- errors (all raise; the int return lets callers write `return ...`) -- */

/* "bad argument #arg to 'fn' (<formatted>)". Arguments are numbered by stack
 * position, self included (rt.tokens:create{...}: the table is #2). */
int ngl_argerror(lua_State *L, int arg, const char *fn, const char *fmt, ...);
/* Pushes and returns a short description of the value at idx for messages:
 * numbers and strings by value (nan, inf, 'L9'), other values by type name. */
const char *ngl_describe(lua_State *L, int idx);
/* Raises for a failed C call: caller mistakes (EINVAL, EEXIST, ELIMIT) as an
 * argument error carrying ng_last_error's detail; others as plain errors. */
int ngl_status_error(lua_State *L, ng_runtime *rt, ng_status st, int arg, const char *fn);
/* The known name nearest to a misspelt one, for "did you mean" (one helper
 * for every kind of name: fields, options, entities, types, spaces...). */
typedef struct ngl_near {
  const char *name; /* the unknown name; NULL if not a string (no suggestion) */
  size_t len;
  const char *best; /* the one closest candidate within typo distance, or NULL */
  size_t dist;
} ngl_near;
/* Starts a search for the value at idx (kept on the stack meanwhile). */
void ngl_near_init(ngl_near *n, lua_State *L, int idx);
/* Offers one candidate name. */
void ngl_near_try(ngl_near *n, const char *cand);
/* Offers every string key of the table at t. */
void ngl_near_table(ngl_near *n, lua_State *L, int t);
/* ngl_describe of the value at idx, then " (did you mean 'best'?)" if n has a
 * candidate: the "got ..." part of a message. */
const char *ngl_describe_near(lua_State *L, int idx, const ngl_near *n);
/* Raises "unknown <what> '<value at idx>'" with n's suggestion. */
int ngl_unknown_name(lua_State *L, int idx, int arg, const char *fn, const char *what,
                     const ngl_near *n);
/* The unknown-key error for key at kidx of a table given as argument arg;
 * `known` (NGL_KEY bits) are the keys that table takes, for the suggestion. */
int ngl_unknown_key(lua_State *L, int kidx, int arg, const char *fn, const char *what,
                    uint64_t known);

/* ---- checks ------------------------------------------------------------- */

/* The userdata at idx if its metatable is upvalue `uv`, else NULL. */
void *ngl_toudata(lua_State *L, int idx, int uv);
/* Like ngl_toudata, raising an argument error naming the expected type. */
void *ngl_checkudata(lua_State *L, int idx, int uv, const char *fn);
/* The open ng_runtime of owner, or raises "runtime is closed". */
ng_runtime *ngl_rt(lua_State *L, const ngl_runtime *owner);
/* Self check for methods of the rt.tokens/... objects and handles. */
ngl_handle *ngl_self(lua_State *L, int uv, const char *fn);

/* Value of the name at idx of the given kind, or -1 (not a string, or unknown). */
int ngl_name(lua_State *L, int idx, int kind);
/* NGL_K_* of the key at kidx (0 if not a known name or not a string). */
int ngl_key(lua_State *L, int kidx);
/* Finite number; `what` names it in the message ("weight"). */
double ngl_check_number(lua_State *L, int idx, int arg, const char *fn, const char *what);
/* A finite number that a C float holds: neither overflows nor, unless 0,
 * underflows to 0 (1e-50 would silently become 0). */
float ngl_check_float(lua_State *L, int idx, int arg, const char *fn, const char *what);
/* A string without zero bytes (C would see only the part before the first). */
const char *ngl_check_string(lua_State *L, int idx, int arg, const char *fn, const char *what);
/* A table holding exactly 3 values {x, y, z}: raises saying what is wrong
 * (not a table, or how many values). The elements are checked by the caller. */
void ngl_check_triple(lua_State *L, int idx, int arg, const char *fn, const char *what);
/* Integer (or integral float) within lo..hi. */
lua_Integer ngl_check_integer(lua_State *L, int idx, int arg, const char *fn, const char *what,
                              lua_Integer lo, lua_Integer hi);
/* A u8 fraction 0..1 encoded as the reference does: (v * 255) truncated. */
uint8_t ngl_check_fraction(lua_State *L, int idx, int arg, const char *fn, const char *what);
/* A boolean (true/false only). */
int ngl_check_boolean(lua_State *L, int idx, int arg, const char *fn, const char *what);
/* Space 0..7 from "L1".."L8", an alias or 1..8. */
int ngl_check_space(lua_State *L, int idx, int arg, const char *fn);
/* A coordinate value for `space` that fits the int16 after scaling. */
/* A coordinate's value: a finite number (raises naming the axis and space
 * otherwise). Whether it fits the space is the runtime's rule, checked when
 * it is encoded (ngl_encode_coords). */
double ngl_check_coord(lua_State *L, int idx, int arg, const char *fn, int space, int axis);
/* Reads dimension scales at idx ({L1 = 10, ...}, spaces by name, alias or
 * number 1..8; or an array of 8) into scales[], leaving the spaces not given
 * at 0; each a number > 0 (the range is the CDNA's rule). Raises as a bad
 * argument `arg` of fn. */
void ngl_read_scales(lua_State *L, int idx, int arg, const char *fn, float scales[NG_SPACES]);
/* Encode n points xyz[0 .. 3n) of `space` into raw with rt's units; raises as
 * a bad argument `arg` of fn naming the point, axis, space and value when one
 * does not fit. Runs no Lua code before it raises. */
void ngl_encode_coords(lua_State *L, ng_runtime *rt, int space, const double *xyz, size_t n,
                       int16_t *raw, int arg, const char *fn);
/* The core's record rules (ng_token_validate, ng_connection_validate without a
 * CDNA: the store applies its own) for the fields of *t / *c selected by
 * `fields`: raises the core's reason as the bad-argument message. */
void ngl_check_token_rule(lua_State *L, const ng_token *t, uint32_t fields, int arg,
                          const char *fn);
void ngl_check_connection_rule(lua_State *L, const ng_connection *c, uint32_t fields, int arg,
                               const char *fn);
/* Three finite numbers {x, y, z} (query centres; no int16 range applies). */
void ngl_check_point(lua_State *L, int idx, int arg, const char *fn, const char *what,
                     float out[3]);
/* A token id (1..2^53-1) or a Token handle of the same runtime. */
ng_id ngl_check_token_id(lua_State *L, int idx, int arg, const char *fn, const ngl_runtime *owner);
/* A connection id or a Connection handle of the same runtime. */
ng_id ngl_check_conn_id(lua_State *L, int idx, int arg, const char *fn, const ngl_runtime *owner);
/* Entity 0..15 from its name or number. */
unsigned ngl_check_entity(lua_State *L, int idx, int arg, const char *fn);
/* Connection type 0..175 from its name or number. */
unsigned ngl_check_conn_type(lua_State *L, int idx, int arg, const char *fn);
/* The same, the value named `what` in messages (an option: "types"). */
unsigned ngl_check_conn_type_as(lua_State *L, int idx, int arg, const char *fn, const char *what);
/* Index in the NULL-terminated `names` of the string at idx (like
 * luaL_checkoption, with a suggestion for a misspelt name); `expected` lists
 * the names for the message. */
int ngl_check_option(lua_State *L, int idx, int arg, const char *fn, const char *what,
                     const char *expected, const char *const names[]);
/* A connection category 0..10 from its name or number; `what` names it. */
int ngl_check_category(lua_State *L, int idx, int arg, const char *fn, const char *what);
/* A profile (ng_profile_name knows it) from its name or number. */
uint32_t ngl_check_profile(lua_State *L, int idx, int arg, const char *fn);
/* The optional arguments of rt.tokens:list and rt.connections:list at stack
 * slots 2..4: limit (default and cap: count), offset (default 0) and a result
 * table `into` (its index 4, or 0 when not given: the list makes a new one). */
typedef struct ngl_list_args {
  size_t limit;
  size_t offset;
  int into;
} ngl_list_args;
void ngl_check_list_args(lua_State *L, const char *fn, size_t count, ngl_list_args *a);

/* ---- results ------------------------------------------------------------ */

/* Pushes a Token/Connection handle (uv = its metatable slot) for `id`, owned
 * like the object at obj_idx (a sub-object or another handle). */
void ngl_push_handle(lua_State *L, int obj_idx, int uv, ng_id id);
/* Grows owner's id buffer to at least n entries; raises on memory failure. */
ng_id *ngl_ids(lua_State *L, ngl_runtime *owner, size_t n);
/* The same for owner's record buffer (tokens:move). */
ng_token *ngl_moves(lua_State *L, ngl_runtime *owner, size_t n);
/* The same for owner's coordinate buffer (tokens:move), n doubles. */
double *ngl_xyz(lua_State *L, ngl_runtime *owner, size_t n);
/* Pushes the table a list fills: the one at `into`, or (into == 0) a new one
 * sized for n. Called before the ids are gathered: it may run a finalizer. */
void ngl_push_list(lua_State *L, int into, size_t n);
/* Stores ids[0..n) as the array in the table at the top (ngl_push_list's) and
 * removes every other entry, holes included. Runs no Lua code, so `ids` may
 * be the runtime's buffer. */
void ngl_fill_ids(lua_State *L, const ng_id *ids, size_t n);
/* Removes every entry of the table at the top other than 1..n (just set),
 * holes included; with pool != 0 (an absolute index), tables found at integer
 * keys go to the end of that array for reuse. Runs no Lua code. */
void ngl_clear_from(lua_State *L, lua_Integer n, int pool);
/* Pushes a stored float as the shortest decimal (up to 9 digits) that
 * converts back to the same float, so a weight set to 0.9 reads as 0.9. */
void ngl_push_float(lua_State *L, float f);
/* Decoded coordinate, in double so 10.5 reads back as 10.5. */
/* Pushes token id's position in `space` as three numbers (rt's units, as
 * doubles), or nothing when it is not placed there; returns how many. */
int ngl_push_position(lua_State *L, ng_runtime *rt, ng_id id, int space);
/* Registers the functions of `l` into the table at `target`, each a closure
 * over the NGL_NUP upvalues stored at ctx[1..NGL_NUP]. */
void ngl_setfuncs(lua_State *L, int ctx, int target, const luaL_Reg *l);

/* ==== the types: one file each, registered by luaopen_neurograph ======= */

/* runtime.c: ng.Runtime, ng.load and the Runtime methods. */
void ngl_open_runtime(lua_State *L, int ctx);
int ngl_runtime_new(lua_State *L);
int ngl_runtime_load(lua_State *L);
/* ng.open(path [, options]): a durable world (runtime.c). */
int ngl_runtime_open(lua_State *L);
/* ng.import(path [, {format = "json"}]) (runtime.c). */
int ngl_runtime_import(lua_State *L);
/* Frees what the Lua side owns for the C runtime rt (buffers, reference). */
void ngl_runtime_free(lua_State *L, ngl_runtime *o, ng_runtime *rt);
/* token.c: rt.tokens and Token handles. */
void ngl_open_token(lua_State *L, int ctx);
/* connection.c: rt.connections and Connection handles, and a token's links
 * (tok:connections, tok:neighbours, tok:degree; registered by token.c). */
void ngl_open_connection(lua_State *L, int ctx);
int ngl_token_connections(lua_State *L);
int ngl_token_neighbours(lua_State *L);
int ngl_token_degree(lua_State *L);
/* grid.c: rt.grid queries, and rt.tokens:positions (registered by token.c). */
void ngl_open_grid(lua_State *L, int ctx);
int ngl_tokens_positions(lua_State *L);
/* cdna.c: rt.cdna. */
void ngl_open_cdna(lua_State *L, int ctx);
/* events.c: rt.events, Subscription, rt.grid:watch and Zone (after grid.c:
 * it adds to rt.grid's methods). */
void ngl_open_events(lua_State *L, int ctx);
/* graph.c */
void ngl_open_graph(lua_State *L, int ctx);
/* save.c: the Save objects of rt:save(path, {background = true}). ngl_save_new pushes a
 * Save not yet started and returns where its handle goes (ng_snapshot_save_background's out). */
void ngl_open_save(lua_State *L, int ctx);
ng_save **ngl_save_new(lua_State *L);
/* txn.c: rt:atomic and the create_many batches (after token.c and
 * connection.c: it adds to their method tables). */
void ngl_open_atomic(lua_State *L, int ctx);
/* Copies observe.runtime_methods of module table `mod` (lua/neurograph/observe.lua: metrics,
 * plot) into the Runtime method table; after the embedded modules have run (observe.c). */
void ngl_open_observe(lua_State *L, int ctx, int mod);

/* ==== module.c: the entry point and its name tables ===================== */

/* The name of each NGL_K_* key (the KEYS upvalue maps them back). */
extern const char *const ngl_key_names[NGL_K_COUNT];
/* The token flags by name (ng.token_flags without ENTITY_MASK), NULL-terminated, and their bits. */
extern const char *const ngl_token_flag_names[];
extern const uint16_t ngl_token_flag_bits[];

#endif

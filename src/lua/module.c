/* The module entry: luaopen_neurograph, the name tables it registers and the upvalues every
 * function of the binding closes over. */
#include "binding.h"
#include "lua_embedded.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const ngl_key_names[NGL_K_COUNT] = {
    [NGL_K_NONE] = "",
    [NGL_K_ID] = "id",
    [NGL_K_WEIGHT] = "weight",
    [NGL_K_FLAGS] = "flags",
    [NGL_K_ENTITY] = "entity",
    [NGL_K_FIELD_RADIUS] = "field_radius",
    [NGL_K_FIELD_STRENGTH] = "field_strength",
    [NGL_K_TIMESTAMP] = "timestamp",
    [NGL_K_COORDS] = "coords",
    [NGL_K_DOMAIN] = "domain",
    [NGL_K_FROM] = "from",
    [NGL_K_TO] = "to",
    [NGL_K_TYPE] = "type",
    [NGL_K_CATEGORY] = "category",
    [NGL_K_MUTABILITY] = "mutability",
    [NGL_K_RIGIDITY] = "rigidity",
    [NGL_K_PULL_STRENGTH] = "pull_strength",
    [NGL_K_PREFERRED_DISTANCE] = "preferred_distance",
    [NGL_K_CONFIDENCE] = "confidence",
    [NGL_K_EVIDENCE_COUNT] = "evidence_count",
    [NGL_K_ACTIVATION_COUNT] = "activation_count",
    [NGL_K_BIDIRECTIONAL] = "bidirectional",
    [NGL_K_LEARNING_RATE] = "learning_rate",
    [NGL_K_DECAY_RATE] = "decay_rate",
    [NGL_K_ACTIVE_LEVELS] = "active_levels",
    [NGL_K_CREATED_AT] = "created_at",
    [NGL_K_LAST_ACTIVATION] = "last_activation",
    [NGL_K_LAST_UPDATE] = "last_update",
    [NGL_K_SOURCE_ID] = "source_id",
    [NGL_K_TARGET_VECTOR] = "target_vector",
    [NGL_K_SPACE] = "space",
    [NGL_K_LIMIT] = "limit",
    [NGL_K_INTO] = "into",
    [NGL_K_GRID_SIZE] = "grid_size",
    [NGL_K_DIMENSIONS] = "dimensions",
    [NGL_K_INITIAL_TOKENS] = "initial_tokens",
    [NGL_K_INITIAL_CONNECTIONS] = "initial_connections",
    [NGL_K_PROFILE] = "profile",
    [NGL_K_CELL_SIZE] = "cell_size",
    [NGL_K_CELL_SIZES] = "cell_sizes",
    [NGL_K_TAGS] = "tags",
    [NGL_K_WITHOUT] = "without",
    [NGL_K_EXCLUDE] = "exclude",
    [NGL_K_INACTIVE] = "inactive",
    [NGL_K_WHERE] = "where",
    [NGL_K_POSITIONS] = "positions",
    [NGL_K_DIR] = "dir",
    [NGL_K_SCALES] = "scales",
    [NGL_K_MAX_DEPTH] = "max_depth",
    [NGL_K_TYPES] = "types",
    [NGL_K_CATEGORIES] = "categories",
    [NGL_K_COST] = "cost",
    [NGL_K_MAX_COST] = "max_cost",
    [NGL_K_FIELD] = "field",
    [NGL_K_MIN_ENERGY] = "min_energy",
    [NGL_K_DECAY] = "decay",
    [NGL_K_THRESHOLD] = "threshold",
    [NGL_K_MODE] = "mode",
    [NGL_K_ENERGY] = "energy",
    [NGL_K_SYNC] = "sync",
    [NGL_K_INTERVAL_MS] = "interval_ms",
    [NGL_K_CHECKPOINT_BYTES] = "checkpoint_bytes",
};

const char *const ngl_token_flag_names[] = {
    "ACTIVE", "PERSISTENT", "MUTABLE", "SYNCHRONIZED", "COMPRESSED", "ENCRYPTED", "DIRTY",
    "LOCKED", "USER_1",     "USER_2",  "USER_3",       "USER_4",     NULL};
const uint16_t ngl_token_flag_bits[] = {
    NG_TOKEN_ACTIVE,    NG_TOKEN_PERSISTENT, NG_TOKEN_MUTABLE, NG_TOKEN_SYNCHRONIZED,
    NG_TOKEN_COMPRESSED, NG_TOKEN_ENCRYPTED, NG_TOKEN_DIRTY,   NG_TOKEN_LOCKED,
    NG_TOKEN_USER_1,    NG_TOKEN_USER_2,     NG_TOKEN_USER_3,  NG_TOKEN_USER_4};

/* ---- the module --------------------------------------------------------- */

/* Records the interned name string at address p (kept alive by the caller) as
 * name `value` of `kind`. */
static void name_add(ngl_names *n, const void *p, int kind, int value) {
  size_t i = ngl_name_slot(p);
  while (n->ptr[i] != NULL)
    i = (i + 1) & (NGL_NAME_SLOTS - 1);
  n->ptr[i] = p;
  n->kind[i] = (int16_t)kind;
  n->value[i] = (int16_t)value;
}

/* Sets t[name] = value and t[value] = name for the table at the top. */
static void both_ways(lua_State *L, const char *name, lua_Integer value) {
  lua_pushinteger(L, value);
  lua_setfield(L, -2, name);
  lua_pushstring(L, name);
  lua_rawseti(L, -2, value);
}

/* t[name] = v for the table at the top; returns the interned key's address
 * (lua_topointer, as ngl_names records it). */
static const void *set_int(lua_State *L, const char *name, lua_Integer v) {
  lua_pushstring(L, name);
  const void *key = lua_topointer(L, -1);
  lua_pushinteger(L, v);
  lua_rawset(L, -3);
  return key;
}

/* Runs every embedded lua/neurograph/NAME.lua with (name, module table), stores
 * its result in package.loaded[name] and in module[short name]. */
static void load_embedded(lua_State *L, int mod) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* stack: ..., loaded */
  for (const ng_lua_source *s = ng_lua_embedded; s->module != NULL; s++) {
    if (luaL_loadbufferx(L, s->source, s->size, s->chunkname, "t") != LUA_OK) lua_error(L);
    lua_pushstring(L, s->module);
    lua_pushvalue(L, mod);
    lua_call(L, 2, 1); /* stack: ..., loaded, result (true for nil); then ..., loaded */
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, s->module);
    const char *dot = strrchr(s->module, '.');
    lua_setfield(L, mod, dot ? dot + 1 : s->module);
  }
  lua_pop(L, 1);
}

static const char *const mt_names[] = {
    "neurograph.Runtime",     "neurograph.Token", "neurograph.Connection", "neurograph.Tokens",
    "neurograph.Connections", "neurograph.Grid",  "neurograph.CDNA",       "neurograph.Events",
    "neurograph.Graph",
};

static const luaL_Reg module_funcs[] = {
    {"Runtime", ngl_runtime_new},
    {"load", ngl_runtime_load},
    {"open", ngl_runtime_open},
    {"import", ngl_runtime_import},
    {NULL, NULL}};

int luaopen_neurograph(lua_State *L) {
  luaL_checkversion(L);
  /* stack: ..., ctx: the NGL_NUP upvalues as an array (ngl_setfuncs copies them
   * into every closure); each value below is built on top, then moved in */
  lua_createtable(L, NGL_NUP, 0);
  int ctx = lua_gettop(L);

  for (int i = 0; i < (int)(sizeof mt_names / sizeof mt_names[0]); i++) {
    luaL_newmetatable(L, mt_names[i]); /* registered by name only for ng_lua_check_runtime */
    lua_rawseti(L, ctx, NGL_UV_RUNTIME_MT + i);
  }
  ngl_names *names = lua_newuserdatauv(L, sizeof *names, 0);
  memset(names, 0, sizeof *names);
  lua_rawseti(L, ctx, NGL_UV_NAMES);
  for (int i = NGL_UV_RUNTIME_MT; i <= NGL_UV_GRAPH_MT; i++) {
    lua_rawgeti(L, ctx, i);
    names->mt[i] = lua_topointer(L, -1);
    lua_pop(L, 1);
  }
  for (int s = 0; s < NG_SPACES; s++)
  /* These tables keep the name strings alive, and so their addresses valid. */
  lua_createtable(L, 0, NGL_K_COUNT);
  for (int k = 1; k < NGL_K_COUNT; k++)
    name_add(names, set_int(L, ngl_key_names[k], k), NGL_NAME_KEY, k);
  lua_rawseti(L, ctx, NGL_UV_KEYS);
  lua_createtable(L, 0, 2 * NG_SPACES);
  for (int s = 0; s < NG_SPACES; s++) {
    name_add(names, set_int(L, ng_space_name(s), s), NGL_NAME_SPACE, s);
    name_add(names, set_int(L, ng_space_alias(s), s), NGL_NAME_SPACE, s);
  }
  lua_rawseti(L, ctx, NGL_UV_SPACES);
  lua_createtable(L, 0, NG_ENTITY_COUNT);
  for (unsigned e = 0; e < NG_ENTITY_COUNT; e++)
    name_add(names, set_int(L, ng_entity_name(e), e), NGL_NAME_ENTITY, (int)e);
  lua_rawseti(L, ctx, NGL_UV_ENTITIES);
  lua_createtable(L, 0, NG_CONN_TYPES);
  for (unsigned t = 0; t < NG_CONN_TYPES; t++)
    set_int(L, ng_conn_type_name(t), t);
  lua_rawseti(L, ctx, NGL_UV_CTYPES);
  lua_createtable(L, 0, 5);
  for (uint32_t p = 0; p < 256; p++)
    if (ng_profile_name(p) != NULL) set_int(L, ng_profile_name(p), p);
  lua_rawseti(L, ctx, NGL_UV_PROFILES);
  for (int i = NGL_UV_TOKEN_INDEX; i <= NGL_UV_RUNTIME_INDEX; i++) {
    lua_newtable(L);
    lua_rawseti(L, ctx, i);
  }
  lua_newtable(L); /* ngl_open_grid fills it */
  lua_rawseti(L, ctx, NGL_UV_HITS_MT);

  ngl_open_runtime(L, ctx);
  ngl_open_token(L, ctx);
  ngl_open_connection(L, ctx);
  ngl_open_grid(L, ctx);
  ngl_open_cdna(L, ctx);
  ngl_open_events(L, ctx);
  ngl_open_graph(L, ctx);
  ngl_open_atomic(L, ctx);
  ngl_open_save(L, ctx);

  luaL_newlibtable(L, module_funcs); /* stack: ..., ctx, mod; tables below go mod[name] */
  int mod = lua_gettop(L);
  ngl_setfuncs(L, ctx, mod, module_funcs);
  lua_pushliteral(L, NG_VERSION_STRING);
  lua_setfield(L, mod, "_VERSION");

  /* spaces: {"L1".."L8", L1 = 1, physical = 1, ...} (Lua numbers spaces 1..8) */
  lua_createtable(L, NG_SPACES, 2 * NG_SPACES);
  for (int s = 0; s < NG_SPACES; s++) {
    both_ways(L, ng_space_name(s), s + 1);
    set_int(L, ng_space_alias(s), s + 1);
  }
  lua_setfield(L, mod, "spaces");
  lua_createtable(L, NG_ENTITY_COUNT, NG_ENTITY_COUNT);
  for (unsigned e = 0; e < NG_ENTITY_COUNT; e++)
    both_ways(L, ng_entity_name(e), e);
  lua_setfield(L, mod, "entities");
  lua_createtable(L, NG_CONN_TYPES, NG_CONN_TYPES);
  for (unsigned t = 0; t < NG_CONN_TYPES; t++)
    both_ways(L, ng_conn_type_name(t), t);
  lua_setfield(L, mod, "connection_types");
  lua_createtable(L, NG_CONN_CATEGORIES, NG_CONN_CATEGORIES);
  for (unsigned c = 0; c < NG_CONN_CATEGORIES; c++)
    both_ways(L, ng_conn_category_name(c), c);
  lua_setfield(L, mod, "categories");
  lua_createtable(L, 4, 5);
  for (uint32_t p = 0; p < 256; p++)
    if (ng_profile_name(p) != NULL) both_ways(L, ng_profile_name(p), p);
  lua_setfield(L, mod, "profiles");
  lua_createtable(L, 3, 3);
  for (unsigned m = 0; m <= NG_HYPOTHESIS; m++)
    both_ways(L, ng_mutability_name(m), m);
  lua_setfield(L, mod, "mutability");

  lua_createtable(L, 0, 13);
  for (int i = 0; ngl_token_flag_names[i] != NULL; i++)
    set_int(L, ngl_token_flag_names[i], ngl_token_flag_bits[i]);
  set_int(L, "ENTITY_MASK", NG_TOKEN_ENTITY_MASK);
  lua_setfield(L, mod, "token_flags");
  lua_createtable(L, 0, 8);
  set_int(L, "ACTIVE", NG_CONN_ACTIVE);
  set_int(L, "PERSISTENT", NG_CONN_PERSISTENT);
  set_int(L, "BIDIRECTIONAL", NG_CONN_BIDIRECTIONAL);
  set_int(L, "INHIBITORY", NG_CONN_INHIBITORY);
  set_int(L, "MODIFIED", NG_CONN_MODIFIED);
  set_int(L, "REINFORCED", NG_CONN_REINFORCED);
  set_int(L, "DECAYING", NG_CONN_DECAYING);
  set_int(L, "USER_FLAG", NG_CONN_USER_FLAG);
  lua_setfield(L, mod, "connection_flags");
  lua_createtable(L, 0, 4);
  set_int(L, "ENABLE_VALIDATION", NG_CDNA_ENABLE_VALIDATION);
  set_int(L, "ENABLE_EVENTS", NG_CDNA_ENABLE_EVENTS);
  set_int(L, "ENABLE_MUTATION", NG_CDNA_ENABLE_MUTATION);
  set_int(L, "STRICT_MODE", NG_CDNA_STRICT_MODE);
  set_int(L, "ENABLE_METRICS", NG_CDNA_ENABLE_METRICS);
  lua_setfield(L, mod, "cdna_flags");

  load_embedded(L, mod);
  ngl_open_observe(L, ctx, mod);
  return 1; /* mod (ctx stays below it, unreachable once the call returns) */
}

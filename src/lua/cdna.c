/* rt.cdna: read and change the runtime's CDNA block; every change goes through ng_cdna_set. */
#include "binding.h"

#include <stddef.h>
#include <string.h>

typedef enum { F_U8, F_U16, F_U32, F_U64, F_F32 } ftype;

/* The CDNA fields as Lua sees them. Arrays (n > 1) are Lua arrays of n.
 * `set` marks fields rt.cdna:set may change; lo/hi bound integer fields. */
typedef struct cfield {
  const char *name;
  ftype type;
  size_t off;
  int n;
  int set;
  lua_Integer lo, hi;
} cfield;

#define FLD(name, ty, member, n, set, lo, hi)                                                      \
  { name, ty, offsetof(ng_cdna, member), n, set, lo, hi }
static const cfield fields[] = {
    FLD("magic", F_U32, magic, 1, 0, 0, 0),
    FLD("version_major", F_U16, version_major, 1, 0, 0, 0),
    FLD("version_minor", F_U16, version_minor, 1, 0, 0, 0),
    FLD("created_at", F_U64, created_at, 1, 0, 0, 0),
    FLD("modified_at", F_U64, modified_at, 1, 0, 0, 0),
    FLD("profile_id", F_U32, profile_id, 1, 0, 0, 0),
    FLD("profile_state", F_U32, profile_state, 1, 1, 0, UINT32_MAX),
    FLD("flags", F_U32, flags, 1, 1, 0, UINT32_MAX),
    FLD("checksum", F_U64, checksum, 1, 0, 0, 0),
    FLD("dimension_ids", F_U8, dimension_ids, NG_SPACES, 1, 0, 255),
    FLD("dimension_flags", F_U8, dimension_flags, NG_SPACES, 1, 0, 255),
    FLD("scales", F_F32, dimension_scales, NG_SPACES, 1, 0, 0),
    FLD("bucket_sizes", F_F32, bucket_sizes, NG_SPACES, 1, 0, 0),
    FLD("field_strength_limits", F_F32, field_strength_limits, NG_SPACES, 1, 0, 0),
    FLD("allowed_connection_types", F_U64, allowed_connection_types, 1, 1, LUA_MININTEGER,
        LUA_MAXINTEGER),
    FLD("max_out_degree", F_U32, max_out_degree, 1, 1, 0, UINT32_MAX),
    FLD("max_in_degree", F_U32, max_in_degree, 1, 1, 0, UINT32_MAX),
    FLD("max_total_degree", F_U32, max_total_degree, 1, 1, 0, UINT32_MAX),
    FLD("min_weight_threshold", F_F32, min_weight_threshold, 1, 1, 0, 0),
    FLD("max_weight_threshold", F_F32, max_weight_threshold, 1, 1, 0, 0),
    FLD("min_token_weight", F_F32, min_token_weight, 1, 1, 0, 0),
    FLD("max_token_weight", F_F32, max_token_weight, 1, 1, 0, 0),
    FLD("min_field_radius", F_U16, min_field_radius, 1, 1, 0, 255),
    FLD("max_field_radius", F_U16, max_field_radius, 1, 1, 0, 255),
    FLD("min_field_strength", F_U16, min_field_strength, 1, 1, 0, 255),
    FLD("max_field_strength", F_U16, max_field_strength, 1, 1, 0, 255),
    FLD("min_connection_weight", F_F32, min_connection_weight, 1, 1, 0, 0),
    FLD("max_connection_weight", F_F32, max_connection_weight, 1, 1, 0, 0),
    FLD("min_rigidity", F_F32, min_rigidity, 1, 1, 0, 0),
    FLD("max_rigidity", F_F32, max_rigidity, 1, 1, 0, 0),
    FLD("default_pull_strength", F_F32, default_pull_strength, 1, 1, 0, 0),
    FLD("decay_rate", F_F32, decay_rate, 1, 1, 0, 0),
    FLD("mutation_rate", F_F32, mutation_rate, 1, 1, 0, 0),
    FLD("crossover_rate", F_F32, crossover_rate, 1, 1, 0, 0),
    FLD("selection_pressure", F_F32, selection_pressure, 1, 1, 0, 0),
    FLD("evolution_flags", F_U32, evolution_flags, 1, 1, 0, UINT32_MAX),
    FLD("trace_sample_rate", F_F32, trace_sample_rate, 1, 1, 0, 0),
};
#undef FLD
#define NFIELDS (sizeof fields / sizeof fields[0])

static const size_t type_size[] = {1, 2, 4, 8, 4};

/* Pushes element i of field f of c (one value). */
static void push_elem(lua_State *L, const ng_cdna *c, const cfield *f, int i) {
  const unsigned char *p = (const unsigned char *)c + f->off + (size_t)i * type_size[f->type];
  switch (f->type) {
  case F_U8:
    lua_pushinteger(L, *p);
    break;
  case F_U16: {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    lua_pushinteger(L, v);
    break;
  }
  case F_U32: {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    lua_pushinteger(L, v);
    break;
  }
  case F_U64: {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    lua_pushinteger(L, (lua_Integer)v); /* two's complement for values above 2^63 */
    break;
  }
  case F_F32: {
    float v;
    memcpy(&v, p, sizeof v);
    ngl_push_float(L, v);
    break;
  }
  }
}

/* Pushes field f of c: its value, or an array of its f->n elements. */
static void push_field(lua_State *L, const ng_cdna *c, const cfield *f) {
  if (f->n == 1) {
    push_elem(L, c, f, 0);
    return;
  }
  lua_createtable(L, f->n, 0);
  for (int i = 0; i < f->n; i++) {
    push_elem(L, c, f, i);
    lua_rawseti(L, -2, i + 1);
  }
}

/* Writes the value at idx into element i of field f of c; raises if it is
 * not of the field's type and range (finite numbers for floats). */
static void set_elem(lua_State *L, ng_cdna *c, const cfield *f, int i, int idx, int arg,
                     const char *fn) {
  unsigned char *p = (unsigned char *)c + f->off + (size_t)i * type_size[f->type];
  if (f->type == F_F32) {
    float x = ngl_check_float(L, idx, arg, fn, f->name);
    memcpy(p, &x, sizeof x);
    return;
  }
  lua_Integer v = ngl_check_integer(L, idx, arg, fn, f->name, f->lo, f->hi);
  switch (f->type) {
  case F_U8:
    *p = (uint8_t)v;
    break;
  case F_U16: {
    uint16_t x = (uint16_t)v;
    memcpy(p, &x, sizeof x);
    break;
  }
  case F_U32: {
    uint32_t x = (uint32_t)v;
    memcpy(p, &x, sizeof x);
    break;
  }
  default: {
    uint64_t x = (uint64_t)v;
    memcpy(p, &x, sizeof x);
    break;
  }
  }
}

static ng_runtime *self_rt(lua_State *L, const char *fn) {
  return ngl_rt(L, ngl_self(L, NGL_UV_CDNA_MT, fn)->owner);
}

/* Validates and installs c; raises with the reason on failure. */
static void install(lua_State *L, ng_runtime *rt, const ng_cdna *c, int arg, const char *fn) {
  ng_status st = ng_cdna_set(rt, c);
  if (st != NG_OK) ngl_status_error(L, rt, st, arg, fn);
}

/* rt.cdna:get_config() -> every field; scales etc. as arrays of 8, profile as
 * both profile_id and its name (profile). */
static int cdna_get_config(lua_State *L) {
  ng_runtime *rt = self_rt(L, "get_config");
  ng_cdna c;
  ng_cdna_get(rt, &c);
  lua_createtable(L, 0, (int)NFIELDS + 1); /* stack: self, t; each field goes t[name] */
  for (size_t i = 0; i < NFIELDS; i++) {
    push_field(L, &c, &fields[i]);
    lua_setfield(L, -2, fields[i].name);
  }
  const char *pn = ng_profile_name(c.profile_id);
  lua_pushstring(L, pn ? pn : "Unknown");
  lua_setfield(L, -2, "profile");
  return 1;
}

/* rt.cdna:update_scales{L1 = 10, ...} (or 8 numbers) -> true: the spaces
 * given get the new scale, every token placed there is re-encoded; all or
 * nothing (a coordinate that does not fit raises naming the token and space). */
static int cdna_update_scales(lua_State *L) {
  const char *fn = "update_scales";
  self_rt(L, fn);
  float scales[NG_SPACES];
  ngl_read_scales(L, 2, 2, fn, scales);
  ng_runtime *rt = self_rt(L, fn); /* after the messages above, which may run a finalizer */
  ng_cdna c;
  ng_cdna_get(rt, &c);
  for (int s = 0; s < NG_SPACES; s++)
    if (scales[s] != 0.0f) c.dimension_scales[s] = scales[s];
  install(L, rt, &c, 2, fn);
  lua_pushboolean(L, 1);
  return 1;
}

/* rt.cdna:get_profile() -> number, name. */
static int cdna_get_profile(lua_State *L) {
  ng_runtime *rt = self_rt(L, "get_profile");
  ng_cdna c;
  ng_cdna_get(rt, &c);
  lua_pushinteger(L, c.profile_id);
  const char *pn = ng_profile_name(c.profile_id);
  lua_pushstring(L, pn ? pn : "Unknown");
  return 2;
}

/* rt.cdna:set_profile(number | name) -> true; applies the profile's preset. */
static int cdna_set_profile(lua_State *L) {
  const char *fn = "set_profile";
  ng_runtime *rt = self_rt(L, fn);
  uint32_t p = ngl_check_profile(L, 2, 2, fn);
  ng_status st = ng_cdna_set_profile(rt, p);
  if (st != NG_OK) return ngl_status_error(L, rt, st, 2, fn);
  lua_pushboolean(L, 1);
  return 1;
}

static int cdna_get_flags(lua_State *L) {
  ng_runtime *rt = self_rt(L, "get_flags");
  ng_cdna c;
  ng_cdna_get(rt, &c);
  lua_pushinteger(L, c.flags);
  return 1;
}

/* rt.cdna:set_flags(0..0xFFFFFFFF) -> true. */
static int cdna_set_flags(lua_State *L) {
  ng_runtime *rt = self_rt(L, "set_flags");
  uint32_t v = (uint32_t)ngl_check_integer(L, 2, 2, "set_flags", "flags", 0, UINT32_MAX);
  ng_cdna c;
  ng_cdna_get(rt, &c);
  c.flags = v;
  install(L, rt, &c, 2, "set_flags");
  lua_pushboolean(L, 1);
  return 1;
}

/* rt.cdna:validate() -> true, or false plus the reason. */
static int cdna_validate(lua_State *L) {
  ng_runtime *rt = self_rt(L, "validate");
  ng_cdna c;
  ng_cdna_get(rt, &c);
  char why[256];
  if (ng_cdna_validate(&c, why, sizeof why) == NG_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_pushstring(L, why);
  return 2;
}

/* rt.cdna:reset() -> true: the Default profile's CDNA. */
static int cdna_reset(lua_State *L) {
  ng_runtime *rt = self_rt(L, "reset");
  ng_cdna c;
  ng_cdna_init(&c, NG_PROFILE_DEFAULT, ng_runtime_now(rt));
  ng_status st = ng_cdna_set(rt, &c); /* keeps created_at */
  if (st != NG_OK) return ngl_status_error(L, rt, st, 1, "reset");
  lua_pushboolean(L, 1);
  return 1;
}

/* The field named by argument 2; NULL for "profile" (read-only, by name). */
static const cfield *find_field(lua_State *L, const char *fn) {
  size_t len = 0;
  const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
  if (name != NULL && strlen(name) == len) { /* a zero byte inside matches nothing */
    for (size_t i = 0; i < NFIELDS; i++)
      if (strcmp(fields[i].name, name) == 0) return &fields[i];
    if (strcmp(name, "profile") == 0) return NULL;
  }
  ngl_near n;
  ngl_near_init(&n, L, 2);
  for (size_t i = 0; i < NFIELDS; i++)
    ngl_near_try(&n, fields[i].name);
  ngl_near_try(&n, "profile");
  return ngl_unknown_name(L, 2, 2, fn, "CDNA field", &n), NULL;
}

/* rt.cdna:get(field) -> the value of one field (arrays as tables). */
static int cdna_get(lua_State *L) {
  ng_runtime *rt = self_rt(L, "get");
  const cfield *f = find_field(L, "get");
  ng_cdna c;
  ng_cdna_get(rt, &c);
  if (f == NULL) {
    const char *pn = ng_profile_name(c.profile_id);
    lua_pushstring(L, pn ? pn : "Unknown");
  } else {
    push_field(L, &c, f);
  }
  return 1;
}

/* rt.cdna:set(field, value) -> true. The whole block is validated; on failure
 * nothing changes and the reason is raised. Identity fields (magic, versions,
 * timestamps, checksum, profile) are not settable (use set_profile). */
static int cdna_set(lua_State *L) {
  const char *fn = "set";
  ng_runtime *rt = self_rt(L, fn);
  const cfield *f = find_field(L, fn);
  if (f == NULL || !f->set)
    return ngl_argerror(L, 2, fn, "CDNA field %s is not settable%s", ngl_describe(L, 2),
                        f == NULL || strcmp(f->name, "profile_id") == 0 ? " (use set_profile)"
                                                                        : "");
  ng_cdna c;
  ng_cdna_get(rt, &c);
  if (f->n == 1) {
    set_elem(L, &c, f, 0, 3, 3, fn);
  } else {
    if (lua_type(L, 3) != LUA_TTABLE || lua_rawlen(L, 3) != (size_t)f->n)
      return ngl_argerror(L, 3, fn, "%s must be a table of %d numbers, got %s", f->name, f->n,
                          ngl_describe(L, 3));
    for (int i = 0; i < f->n; i++) {
      lua_rawgeti(L, 3, i + 1); /* stack: self, field, values, values[i + 1] */
      set_elem(L, &c, f, i, -1, 3, fn);
      lua_pop(L, 1);
    }
  }
  install(L, rt, &c, 3, fn);
  lua_pushboolean(L, 1);
  return 1;
}

static int cdna_tostring(lua_State *L) {
  ngl_self(L, NGL_UV_CDNA_MT, "__tostring");
  lua_pushliteral(L, "neurograph.CDNA");
  return 1;
}

static const luaL_Reg cdna_methods[] = {
    {"get_config", cdna_get_config},
    {"update_scales", cdna_update_scales},
    {"get_profile", cdna_get_profile},
    {"set_profile", cdna_set_profile},
    {"get_flags", cdna_get_flags},
    {"set_flags", cdna_set_flags},
    {"validate", cdna_validate},
    {"reset", cdna_reset},
    {"get", cdna_get},
    {"set", cdna_set},
    {NULL, NULL},
};
static const luaL_Reg cdna_meta[] = {{"__tostring", cdna_tostring}, {NULL, NULL}};

void ngl_open_cdna(lua_State *L, int ctx) {
  lua_rawgeti(L, ctx, NGL_UV_CDNA_MT);
  lua_newtable(L); /* stack: ..., mt, methods; methods becomes mt.__index */
  ngl_setfuncs(L, ctx, -1, cdna_methods);
  lua_setfield(L, -2, "__index");
  ngl_setfuncs(L, ctx, -1, cdna_meta);
  lua_pop(L, 1);
}

/* The binding's shared helpers: argument checks and converters, error messages with
 * suggestions, name lookups, list arguments, result tables and scratch buffers. */
#include "binding.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------- */

int ngl_argerror(lua_State *L, int arg, const char *fn, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *msg = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fn, msg);
}

/* Appends s[0..len) to buf (room for `room` more bytes) escaped for a message:
 * printable ASCII as is, anything else (zero bytes, control characters,
 * non-UTF-8) as \ddd, so what the message shows is the value given. */
static size_t escape(char *buf, const char *s, size_t len) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7F && c != '\\')
      buf[o++] = (char)c;
    else if (c == '\\')
      o += (size_t)snprintf(buf + o, 3, "\\\\");
    else
      o += (size_t)snprintf(buf + o, 5, "\\%u", (unsigned)c);
  }
  return o;
}

const char *ngl_describe(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER: {
    if (lua_isinteger(L, idx)) return lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
    double v = lua_tonumber(L, idx);
    char buf[64];
    if (isnan(v)) return lua_pushliteral(L, "nan");
    if (isinf(v)) return v > 0 ? lua_pushliteral(L, "inf") : lua_pushliteral(L, "-inf");
    snprintf(buf, sizeof buf, "%.14g", v);
    return lua_pushstring(L, buf);
  }
  case LUA_TSTRING: {
    enum { SHOWN = 40 }; /* keep messages short */
    char buf[2 + 4 * SHOWN + 4];
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    size_t o = 0;
    buf[o++] = '\'';
    o += escape(buf + o, s, len > SHOWN ? SHOWN : len);
    buf[o++] = '\'';
    if (len > SHOWN) {
      memcpy(buf + o - 1, "...'", 4);
      o += 3;
    }
    return lua_pushlstring(L, buf, o);
  }
  case LUA_TBOOLEAN:
    return lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
  case LUA_TNONE:
    return lua_pushliteral(L, "no value");
  default:
    if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) return lua_tostring(L, -1);
    return lua_pushstring(L, luaL_typename(L, idx));
  }
}

int ngl_status_error(lua_State *L, ng_runtime *rt, ng_status st, int arg, const char *fn) {
  const char *detail = ng_last_error_detail(rt);
  /* stack: ..., message (what the errors below format). Copied into Lua first: raising allocates,
   * which may run a finalizer that fails a call and so overwrites the thread's last error */
  lua_pushstring(L, detail[0] != '\0' ? detail : ng_strerror(st));
  switch (st) {
  case NG_EINVAL:
  case NG_EEXIST:
    return ngl_argerror(L, arg, fn, "%s", lua_tostring(L, -1));
  case NG_ENOMEM:
    return luaL_error(L, "%s: not enough memory", fn);
  default: /* a limit is reported as a limit, not as the argument's fault */
    return luaL_error(L, "%s: %s", fn, lua_tostring(L, -1));
  }
}

/* Edit distance of a[0..na) and b[0..nb), both at most NEAR_MAX long:
 * insertions, deletions, substitutions and swaps of neighbours ('spcae')
 * each count one (optimal string alignment). */
#define NEAR_MAX 64
static size_t edit_distance(const char *a, size_t na, const char *b, size_t nb) {
  size_t rows[3][NEAR_MAX + 1]; /* rows i-2, i-1 and i, used in rotation */
  for (size_t j = 0; j <= nb; j++)
    rows[0][j] = j;
  for (size_t i = 1; i <= na; i++) {
    size_t *cur = rows[i % 3], *prev = rows[(i - 1) % 3], *prev2 = rows[(i + 1) % 3];
    cur[0] = i;
    for (size_t j = 1; j <= nb; j++) {
      size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
      if (prev[j] + 1 < best) best = prev[j] + 1;
      if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < best)
        best = prev2[j - 2] + 1;
      cur[j] = best;
    }
  }
  return rows[na % 3][nb];
}

void ngl_near_init(ngl_near *n, lua_State *L, int idx) {
  n->best = NULL;
  n->dist = (size_t)-1;
  n->name = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &n->len) : NULL;
  if (n->name != NULL && n->len > NEAR_MAX) n->name = NULL;
}

void ngl_near_try(ngl_near *n, const char *cand) {
  size_t nc = strlen(cand);
  if (n->name == NULL || nc > NEAR_MAX) return;
  size_t d = edit_distance(n->name, n->len, cand, nc);
  /* close enough to be a typo: at most a third of the name, at least one edit */
  size_t most = (nc < n->len ? nc : n->len) / 3;
  if (d == 0 || d > (most > 1 ? most : 1) || d > n->dist) return;
  /* two names as close ('L0': L1..L8) suggest neither */
  n->best = d < n->dist ? cand : NULL;
  n->dist = d;
}

void ngl_near_table(ngl_near *n, lua_State *L, int t) {
  t = lua_absindex(L, t);
  lua_pushnil(L); /* stack: ..., nil; in the loop ..., key, value */
  while (lua_next(L, t)) {
    if (lua_type(L, -2) == LUA_TSTRING) ngl_near_try(n, lua_tostring(L, -2));
    lua_pop(L, 1);
  }
}

const char *ngl_describe_near(lua_State *L, int idx, const ngl_near *n) {
  const char *got = ngl_describe(L, idx);
  if (n->best == NULL) return got;
  return lua_pushfstring(L, "%s (did you mean '%s'?)", got, n->best);
}

int ngl_unknown_name(lua_State *L, int idx, int arg, const char *fn, const char *what,
                     const ngl_near *n) {
  return ngl_argerror(L, arg, fn, "unknown %s %s", what, ngl_describe_near(L, idx, n));
}

int ngl_unknown_key(lua_State *L, int kidx, int arg, const char *fn, const char *what,
                    uint64_t known) {
  kidx = lua_absindex(L, kidx);
  if (lua_type(L, kidx) != LUA_TSTRING)
    return ngl_argerror(L, arg, fn, "%s names must be strings, got %s", what,
                        ngl_describe(L, kidx));
  ngl_near n;
  ngl_near_init(&n, L, kidx);
  for (int k = 1; k < NGL_K_COUNT; k++)
    if (known & NGL_KEY(k)) ngl_near_try(&n, ngl_key_names[k]);
  return ngl_unknown_name(L, kidx, arg, fn, what, &n);
}

/* ---- checks ------------------------------------------------------------- */

void *ngl_toudata(lua_State *L, int idx, int uv) {
  void *p = lua_touserdata(L, idx);
  if (p == NULL || !lua_getmetatable(L, idx)) return NULL;
  /* stack: ..., mt (popped below) */
  int same = lua_rawequal(L, -1, NGL_UV(uv));
  lua_pop(L, 1);
  return same ? p : NULL;
}

void *ngl_checkudata(lua_State *L, int idx, int uv, const char *fn) {
  void *p = ngl_toudata(L, idx, uv);
  if (p == NULL) {
    /* described first: with no arguments, the pushed name would be #1 */
    const char *got = ngl_describe(L, idx);
    lua_getfield(L, NGL_UV(uv), "__name"); /* stack: ..., got, type name */
    ngl_argerror(L, idx, fn, "%s expected, got %s", lua_tostring(L, -1), got);
  }
  return p;
}

ng_runtime *ngl_rt(lua_State *L, const ngl_runtime *owner) {
  if (owner->rt == NULL) luaL_error(L, "runtime is closed");
  return owner->rt;
}

ngl_handle *ngl_self(lua_State *L, int uv, const char *fn) {
  return (ngl_handle *)ngl_checkudata(L, 1, uv, fn);
}

int ngl_name(lua_State *L, int idx, int kind) {
  if (lua_type(L, idx) != LUA_TSTRING) return -1;
  return ngl_name_of(lua_touserdata(L, NGL_UV(NGL_UV_NAMES)), lua_topointer(L, idx), kind);
}

int ngl_key(lua_State *L, int kidx) {
  int code = ngl_name(L, kidx, NGL_NAME_KEY);
  return code < 0 ? NGL_K_NONE : code;
}

double ngl_check_number(lua_State *L, int idx, int arg, const char *fn, const char *what) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    double v = lua_tonumber(L, idx);
    if (isfinite(v)) return v;
  }
  ngl_argerror(L, arg, fn, "%s must be a finite number, got %s", what, ngl_describe(L, idx));
  return 0;
}

float ngl_check_float(lua_State *L, int idx, int arg, const char *fn, const char *what) {
  double v = ngl_check_number(L, idx, arg, fn, what);
  if (fabs(v) > FLT_MAX || (v != 0.0 && (float)v == 0.0f))
    ngl_argerror(L, arg, fn, "%s is out of the range of a float (about 1e-45..3.4e38), got %s",
                 what, ngl_describe(L, idx));
  return (float)v;
}

const char *ngl_check_string(lua_State *L, int idx, int arg, const char *fn, const char *what) {
  size_t len = 0;
  const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
  if (s == NULL)
    ngl_argerror(L, arg, fn, "%s must be a string, got %s", what, ngl_describe(L, idx));
  if (strlen(s) != len)
    ngl_argerror(L, arg, fn, "%s must not contain a zero byte, got %s", what, ngl_describe(L, idx));
  return s;
}

void ngl_check_triple(lua_State *L, int idx, int arg, const char *fn, const char *what) {
  if (lua_type(L, idx) != LUA_TTABLE)
    ngl_argerror(L, arg, fn, "%s must be a table {x, y, z}, got %s", what, ngl_describe(L, idx));
  size_t n = lua_rawlen(L, idx);
  if (n != 3)
    ngl_argerror(L, arg, fn, "%s must be a table {x, y, z} of 3 numbers, got %I value%s", what,
                 (LUAI_UACINT)n, n == 1 ? "" : "s");
}

lua_Integer ngl_check_integer(lua_State *L, int idx, int arg, const char *fn, const char *what,
                              lua_Integer lo, lua_Integer hi) {
  int ok = 0;
  lua_Integer v = 0;
  if (lua_type(L, idx) == LUA_TNUMBER) v = lua_tointegerx(L, idx, &ok);
  if (!ok || v < lo || v > hi)
    ngl_argerror(L, arg, fn, "%s must be an integer %I..%I, got %s", what, (LUAI_UACINT)lo,
                 (LUAI_UACINT)hi, ngl_describe(L, idx));
  return v;
}

uint8_t ngl_check_fraction(lua_State *L, int idx, int arg, const char *fn, const char *what) {
  double v = lua_type(L, idx) == LUA_TNUMBER ? lua_tonumber(L, idx) : NAN;
  if (!(v >= 0.0 && v <= 1.0))
    ngl_argerror(L, arg, fn, "%s must be a number 0..1, got %s", what, ngl_describe(L, idx));
  return (uint8_t)((float)v * 255.0f); /* the reference's (x * 255) as u8 */
}

int ngl_check_boolean(lua_State *L, int idx, int arg, const char *fn, const char *what) {
  if (lua_type(L, idx) != LUA_TBOOLEAN)
    ngl_argerror(L, arg, fn, "%s must be a boolean, got %s", what, ngl_describe(L, idx));
  return lua_toboolean(L, idx);
}

int ngl_check_space(lua_State *L, int idx, int arg, const char *fn) {
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING) {
    int s = ngl_name(L, idx, NGL_NAME_SPACE);
    if (s >= 0) return s;
  } else if (t == LUA_TNUMBER) {
    int ok;
    lua_Integer n = lua_tointegerx(L, idx, &ok);
    if (ok && n >= 1 && n <= NG_SPACES) return (int)n - 1;
  }
  ngl_near n;
  ngl_near_init(&n, L, idx);
  ngl_near_table(&n, L, NGL_UV(NGL_UV_SPACES));
  if (n.best != NULL) ngl_unknown_name(L, idx, arg, fn, "space", &n);
  ngl_argerror(L, arg, fn, "space must be 'L1'..'L8', a space alias or 1..8, got %s",
               ngl_describe(L, idx));
  return 0;
}

/* A coordinate: the core's rule (ng_coord_check), the binding's message. */
double ngl_check_coord(lua_State *L, int idx, int arg, const char *fn, int space, int axis) {
  static const char axes[] = "xyz";
  double v = lua_type(L, idx) == LUA_TNUMBER ? lua_tonumber(L, idx) : NAN;
  if (!isfinite(v)) {
    char what[16];
    snprintf(what, sizeof what, "%c of %s", axes[axis], ng_space_name(space));
    ngl_check_number(L, idx, arg, fn, what); /* not a number at all: say what it is */
    ngl_argerror(L, arg, fn, "%s must be a finite number, got %s", what, ngl_describe(L, idx));
  }
  return v;
}

void ngl_read_scales(lua_State *L, int idx, int arg, const char *fn, float scales[NG_SPACES]) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    ngl_argerror(L, arg, fn, "scales must be a table {L1 = scale, ...}, got %s",
                 ngl_describe(L, idx));
  memset(scales, 0, NG_SPACES * sizeof *scales);
  lua_pushnil(L); /* stack: ..., nil; in the loop ..., space, scale */
  while (lua_next(L, idx)) {
    int s = ngl_check_space(L, -2, arg, fn);
    char what[16];
    snprintf(what, sizeof what, "scale of %s", ng_space_name(s));
    float v = ngl_check_float(L, -1, arg, fn, what);
    if (!(v > 0.0f)) ngl_argerror(L, arg, fn, "%s must be > 0, got %s", what, ngl_describe(L, -1));
    scales[s] = v;
    lua_pop(L, 1);
  }
}

void ngl_encode_coords(lua_State *L, ng_runtime *rt, int space, const double *xyz, size_t n,
                       int16_t *raw, int arg, const char *fn) {
  ng_status st = ng_coords_encode(rt, space, xyz, n, raw);
  if (st != NG_OK) ngl_status_error(L, rt, st, arg, fn); /* the core's rule and message */
}

void ngl_check_token_rule(lua_State *L, const ng_token *t, uint32_t fields, int arg,
                          const char *fn) {
  char why[192];
  if (ng_token_validate(t, fields, NULL, why, sizeof why) != NG_OK)
    ngl_argerror(L, arg, fn, "%s", why);
}

void ngl_check_connection_rule(lua_State *L, const ng_connection *c, uint32_t fields, int arg,
                               const char *fn) {
  char why[192];
  if (ng_connection_validate(c, fields, NULL, why, sizeof why) != NG_OK)
    ngl_argerror(L, arg, fn, "%s", why);
}

void ngl_check_point(lua_State *L, int idx, int arg, const char *fn, const char *what,
                     float out[3]) {
  idx = lua_absindex(L, idx);
  ngl_check_triple(L, idx, arg, fn, what);
  for (int a = 0; a < 3; a++) {
    lua_rawgeti(L, idx, a + 1); /* stack: ..., point[a + 1] (popped below) */
    double v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : NAN;
    if (!(fabs(v) <= FLT_MAX))
      ngl_argerror(L, arg, fn, "%s[%d] must be a finite number, got %s", what, a + 1,
                   ngl_describe(L, -1));
    out[a] = (float)v;
    lua_pop(L, 1);
  }
}

/* An id argument: an integer within 1..max or a handle (metatable uv) of the
 * same store. */
static ng_id check_id(lua_State *L, int idx, int arg, const char *fn, const ngl_runtime *owner,
                      int uv, const char *what, const char *id_what, lua_Integer max) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TUSERDATA) {
    ngl_handle *h = ngl_toudata(L, idx, uv);
    if (h != NULL) {
      if (h->owner->rt == NULL) ngl_argerror(L, arg, fn, "%s: runtime is closed", what);
      if (h->owner != owner && h->owner->rt != owner->rt)
        ngl_argerror(L, arg, fn, "%s belongs to another runtime", what);
      return h->id;
    }
  }
  return (ng_id)ngl_check_integer(L, idx, arg, fn, id_what, 1, max);
}

ng_id ngl_check_token_id(lua_State *L, int idx, int arg, const char *fn, const ngl_runtime *owner) {
  return check_id(L, idx, arg, fn, owner, NGL_UV_TOKEN_MT, "token", "token id",
                  (lua_Integer)NG_ID_MAX);
}

ng_id ngl_check_conn_id(lua_State *L, int idx, int arg, const char *fn, const ngl_runtime *owner) {
  return check_id(L, idx, arg, fn, owner, NGL_UV_CONN_MT, "connection", "connection id",
                  (lua_Integer)NG_ID_MAX);
}

/* A name looked up in the map at upvalue uv, or an integer 0..max. */
static unsigned check_enum(lua_State *L, int idx, int arg, const char *fn, int uv, lua_Integer max,
                           const char *what, const char *expected) {
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING) {
    lua_pushvalue(L, idx); /* stack: ..., name; then ..., value or nil */
    if (lua_rawget(L, NGL_UV(uv)) == LUA_TNUMBER) {
      unsigned v = (unsigned)lua_tointeger(L, -1);
      lua_pop(L, 1);
      return v;
    }
    lua_pop(L, 1);
  } else if (t == LUA_TNUMBER) {
    int ok;
    lua_Integer n = lua_tointegerx(L, idx, &ok);
    if (ok && n >= 0 && n <= max) return (unsigned)n;
  }
  ngl_near n;
  ngl_near_init(&n, L, idx);
  ngl_near_table(&n, L, NGL_UV(uv));
  if (n.best != NULL) ngl_unknown_name(L, idx, arg, fn, what, &n);
  ngl_argerror(L, arg, fn, "%s must be %s or 0..%I, got %s", what, expected, (LUAI_UACINT)max,
               ngl_describe(L, idx));
  return 0;
}

unsigned ngl_check_entity(lua_State *L, int idx, int arg, const char *fn) {
  int e = ngl_name(L, idx, NGL_NAME_ENTITY);
  if (e >= 0) return (unsigned)e;
  return check_enum(L, idx, arg, fn, NGL_UV_ENTITIES, NG_ENTITY_COUNT - 1, "entity",
                    "an entity name");
}

unsigned ngl_check_conn_type_as(lua_State *L, int idx, int arg, const char *fn, const char *what) {
  return check_enum(L, idx, arg, fn, NGL_UV_CTYPES, NG_CONN_TYPES - 1, what,
                    "a connection type name");
}

unsigned ngl_check_conn_type(lua_State *L, int idx, int arg, const char *fn) {
  return ngl_check_conn_type_as(L, idx, arg, fn, "type");
}

int ngl_check_option(lua_State *L, int idx, int arg, const char *fn, const char *what,
                     const char *expected, const char *const names[]) {
  size_t len = 0;
  const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : "";
  for (int i = 0; names[i] != NULL; i++)
    if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) return i;
  ngl_near n;
  ngl_near_init(&n, L, idx);
  for (int i = 0; names[i] != NULL; i++)
    ngl_near_try(&n, names[i]);
  return ngl_argerror(L, arg, fn, "%s must be %s, got %s", what, expected,
                      ngl_describe_near(L, idx, &n));
}

int ngl_check_category(lua_State *L, int idx, int arg, const char *fn, const char *what) {
  int ok = 0;
  lua_Integer n = lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, &ok) : -1;
  if (ok && n >= 0 && n < NG_CONN_CATEGORIES) return (int)n;
  const char *names[NG_CONN_CATEGORIES + 1];
  for (unsigned c = 0; c < NG_CONN_CATEGORIES; c++)
    names[c] = ng_conn_category_name(c);
  names[NG_CONN_CATEGORIES] = NULL;
  return ngl_check_option(L, idx, arg, fn, what,
                          "a category name ('Semantic' .. 'Dynamic', as in ng.categories) or 0..10",
                          names);
}

uint32_t ngl_check_profile(lua_State *L, int idx, int arg, const char *fn) {
  idx = lua_absindex(L, idx);
  lua_Integer p = -1;
  if (lua_type(L, idx) == LUA_TSTRING) {
    lua_pushvalue(L, idx); /* stack: ..., name; then ..., number or nil */
    if (lua_rawget(L, NGL_UV(NGL_UV_PROFILES)) == LUA_TNUMBER) p = lua_tointeger(L, -1);
    lua_pop(L, 1);
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    int ok;
    p = lua_tointegerx(L, idx, &ok);
    if (!ok || p < 0 || p > UINT32_MAX || ng_profile_name((uint32_t)p) == NULL) p = -1;
  }
  if (p < 0) {
    ngl_near n;
    ngl_near_init(&n, L, idx);
    ngl_near_table(&n, L, NGL_UV(NGL_UV_PROFILES));
    ngl_argerror(L, arg, fn,
                 "profile must be 0..3, 255 or 'Default', 'Explorer', 'Analyst', "
                 "'Creative', 'Custom', got %s",
                 ngl_describe_near(L, idx, &n));
  }
  return (uint32_t)p;
}

void ngl_check_list_args(lua_State *L, const char *fn, size_t count, ngl_list_args *a) {
  a->limit =
      lua_isnoneornil(L, 2) ? count : (size_t)ngl_check_integer(L, 2, 2, fn, "limit", 0, INT32_MAX);
  a->offset =
      lua_isnoneornil(L, 3) ? 0 : (size_t)ngl_check_integer(L, 3, 3, fn, "offset", 0, INT32_MAX);
  if (lua_isnoneornil(L, 4))
    a->into = 0;
  else if (lua_type(L, 4) == LUA_TTABLE)
    a->into = 4;
  else
    ngl_argerror(L, 4, fn, "result table expected, got %s", ngl_describe(L, 4));
  if (a->limit > count) a->limit = count;
}

/* ---- results ------------------------------------------------------------ */

void ngl_push_handle(lua_State *L, int obj_idx, int uv, ng_id id) {
  ngl_handle *o = lua_touserdata(L, obj_idx);
  lua_getiuservalue(L, obj_idx, 1);                   /* the Runtime userdata */
  ngl_handle *h = lua_newuserdatauv(L, sizeof *h, 1); /* stack: ..., rt, h */
  h->owner = o->owner;
  h->id = id;
  lua_pushvalue(L, NGL_UV(uv));
  lua_setmetatable(L, -2);
  lua_rotate(L, -2, 1);        /* stack: ..., h, rt */
  lua_setiuservalue(L, -2, 1); /* stack: ..., h */
}

/* Grows a buffer of *cap elements of `size` bytes to at least n; raises on
 * memory failure (the buffer is then as it was). */
static void *grow_buffer(lua_State *L, void *p, size_t *cap, size_t n, size_t size) {
  if (n <= *cap) return p;
  size_t ncap = *cap ? *cap : 64;
  while (ncap < n) {
    if (ncap > ((size_t)-1) / 2 / size) luaL_error(L, "not enough memory");
    ncap *= 2;
  }
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  void *np = f(ud, p, *cap * size, ncap * size);
  if (np == NULL) luaL_error(L, "not enough memory");
  *cap = ncap;
  return np;
}

ng_id *ngl_ids(lua_State *L, ngl_runtime *owner, size_t n) {
  owner->ids = grow_buffer(L, owner->ids, &owner->ids_cap, n, sizeof(ng_id));
  return owner->ids;
}

ng_token *ngl_moves(lua_State *L, ngl_runtime *owner, size_t n) {
  owner->moves = grow_buffer(L, owner->moves, &owner->moves_cap, n, sizeof(ng_token));
  return owner->moves;
}

double *ngl_xyz(lua_State *L, ngl_runtime *owner, size_t n) {
  owner->xyz = grow_buffer(L, owner->xyz, &owner->xyz_cap, n, sizeof(double));
  return owner->xyz;
}

void ngl_push_list(lua_State *L, int into, size_t n) {
  if (into)
    lua_pushvalue(L, into);
  else
    lua_createtable(L, n > INT32_MAX ? INT32_MAX : (int)n, 0);
}

void ngl_clear_from(lua_State *L, lua_Integer n, int pool) {
  /* Past every key up to n (the last set), then through the hash part: each
   * old entry, holes or not. Clearing a field during lua_next is allowed.
   * stack: ..., t, key; in the loop ..., t, key, value: the value goes to the
   * pool or is popped, then t[key] = nil through a copy of key */
  lua_Integer npool = pool ? (lua_Integer)lua_rawlen(L, pool) : 0;
  if (n > 0)
    lua_pushinteger(L, n);
  else
    lua_pushnil(L);
  while (lua_next(L, -2)) {
    int is_int = lua_isinteger(L, -2);
    lua_Integer k = is_int ? lua_tointeger(L, -2) : 0;
    if (is_int && k >= 1 && k <= n) {
      lua_pop(L, 1);
      continue;
    }
    if (pool && is_int && lua_type(L, -1) == LUA_TTABLE)
      lua_rawseti(L, pool, ++npool);
    else
      lua_pop(L, 1);
    lua_pushvalue(L, -1); /* the key */
    lua_pushnil(L);
    lua_rawset(L, -4);
  }
}

void ngl_fill_ids(lua_State *L, const ng_id *ids, size_t n) {
  /* stack: ..., t throughout */
  for (size_t i = 0; i < n; i++) {
    lua_pushinteger(L, ids[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  ngl_clear_from(L, (lua_Integer)n, 0);
}

void ngl_push_float(lua_State *L, float f) {
  static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  double d = (double)f;
  if (f != 0.0f && isfinite(f)) {
    int e = (int)floor(log10(fabs(d)));
    /* the shortest decimal of 6..9 digits that reads back as the same float */
    for (int p = 6; p <= 9; p++) {
      int k = p - 1 - e;
      if (k < -22 || k > 22) break;
      double r = k >= 0 ? nearbyint(d * pow10[k]) / pow10[k] : nearbyint(d / pow10[-k]) * pow10[-k];
      if ((float)r == f) {
        d = r;
        break;
      }
    }
  }
  lua_pushnumber(L, d);
}

int ngl_push_position(lua_State *L, ng_runtime *rt, ng_id id, int space) {
  double xyz[3];
  if (ng_token_position(rt, id, space, xyz) != NG_OK) return 0;
  for (int a = 0; a < 3; a++)
    lua_pushnumber(L, xyz[a]);
  return 3;
}

void ngl_setfuncs(lua_State *L, int ctx, int target, const luaL_Reg *l) {
  target = lua_absindex(L, target);
  /* Lua promises a C function only LUA_MINSTACK (20) free slots, fewer than
   * the upvalues plus what the caller holds on the stack */
  luaL_checkstack(L, NGL_NUP + 1, "ngl_setfuncs");
  /* each turn pushes the NGL_NUP upvalues, closes over them (stack: ...,
   * closure) and pops that into target[name] */
  for (; l->name != NULL; l++) {
    for (int i = 1; i <= NGL_NUP; i++)
      lua_rawgeti(L, ctx, i);
    lua_pushcclosure(L, l->func, NGL_NUP);
    lua_setfield(L, target, l->name);
  }
}

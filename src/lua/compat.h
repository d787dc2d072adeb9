/* The Lua 5.4 C API the binding uses, on Lua 5.3, 5.1 and LuaJIT 2.1: one source for every
 * Lua an engine embeds. Included by binding.h after lua.h and lauxlib.h; on 5.4 it adds
 * nothing. Each shim below gives the 5.4 behaviour the binding relies on (return types,
 * user value slots, "%I" in messages, integer conversion), not a general port of the API.
 * Why our own header rather than lua-compat-5.3: that covers 5.1/5.2 only (not 5.4's user
 * value slots or "%I", and not 5.3 at all), and Debian installs it beside lua5.1's lua.h, not
 * LuaJIT's, so an engine with its own Lua would need a second dependency for a few lines. */
#ifndef NG_LUA_COMPAT_H
#define NG_LUA_COMPAT_H

#include <lauxlib.h>
#include <lua.h>

#if LUA_VERSION_NUM < 504

/* ---- 5.3, 5.1 and LuaJIT: user value slots and luaL_typeerror ------------ */

/* The 5.4 user values 1..nuv live in a table: the one user value of 5.3, the environment
 * table of a 5.1 userdata (which must be a table there). */
#if LUA_VERSION_NUM >= 503
#define ngl_compat_getuvtable(L, idx) lua_getuservalue(L, idx)
#define ngl_compat_setuvtable(L, idx) lua_setuservalue(L, idx)
#else
#define ngl_compat_getuvtable(L, idx) lua_getfenv(L, idx)
#define ngl_compat_setuvtable(L, idx) lua_setfenv(L, idx)
#endif

static inline void *lua_newuserdatauv(lua_State *L, size_t size, int nuv) {
  void *p = lua_newuserdata(L, size); /* stack: ..., ud */
  if (nuv > 0) {
    lua_createtable(L, nuv, 0);
    ngl_compat_setuvtable(L, -2);
  }
  return p;
}

/* Pushes user value n of the userdata at idx (nil when it has no slots); returns its type. */
static inline int lua_getiuservalue(lua_State *L, int idx, int n) {
  ngl_compat_getuvtable(L, idx); /* stack: ..., slots */
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_pushnil(L);
    return LUA_TNONE;
  }
  lua_rawgeti(L, -1, n);
  lua_remove(L, -2);
  return lua_type(L, -1);
}

/* Pops a value into user value n of the userdata at idx; 0 when it has no slots. */
static inline int lua_setiuservalue(lua_State *L, int idx, int n) {
  if (idx < 0 && idx > LUA_REGISTRYINDEX) idx = lua_gettop(L) + idx + 1;
  ngl_compat_getuvtable(L, idx); /* stack: ..., v, slots */
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pop(L, 2);
    return 0;
  }
  lua_insert(L, -2);
  lua_rawseti(L, -2, n);
  lua_pop(L, 1);
  return 1;
}

/* "<tname> expected, got <type or __name>", as 5.4 words it. */
static inline int luaL_typeerror(lua_State *L, int arg, const char *tname) {
  const char *got = luaL_typename(L, arg);
  if (lua_getmetatable(L, arg)) { /* stack: ..., mt; then ..., mt, __name */
    lua_getfield(L, -1, "__name");
    if (lua_type(L, -1) == LUA_TSTRING) got = lua_tostring(L, -1);
  }
  return luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", tname, got));
}

/* 5.3's and 5.1's lua_topointer give NULL for a string. A string's characters are as unique
 * and as stable as the object while it lives (short strings are interned), so ngl_names keys
 * on them. */
static inline const void *ngl_compat_topointer(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TSTRING ? (const void *)lua_tostring(L, idx) : lua_topointer(L, idx);
}

#define lua_topointer ngl_compat_topointer

#endif /* < 504 */

#if LUA_VERSION_NUM < 503

/* ---- 5.1 and LuaJIT: the 5.3 API ------------------------------------------ */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#ifndef LUA_OK
#define LUA_OK 0
#endif
#define LUA_LOADED_TABLE "_LOADED"
/* lua_Integer is ptrdiff_t there; numbers are doubles, exact up to 2^53. */
#define LUA_MAXINTEGER PTRDIFF_MAX
#define LUA_MININTEGER PTRDIFF_MIN
/* What "%I" takes (5.3's LUAI_UACINT for a 64-bit lua_Integer). */
#define LUAI_UACINT long long

/* 2^63: the first double past every int64_t. */
#define NGL_COMPAT_2P63 9223372036854775808.0

/* 5.3's lua_isinteger and lua_tointegerx for doubles: an integral value in range is an
 * integer (3.0 is, 3.5 is not); LuaJIT's own lua_tointegerx would truncate 3.5 to 3. */
static inline int ngl_compat_integral(lua_State *L, int idx, lua_Number *out) {
  if (lua_type(L, idx) != LUA_TNUMBER && !lua_isnumber(L, idx)) return 0;
  lua_Number n = lua_tonumber(L, idx);
  *out = n;
  return n >= -NGL_COMPAT_2P63 && n < NGL_COMPAT_2P63 && (lua_Number)(long long)n == n;
}
static inline int ngl_compat_isinteger(lua_State *L, int idx) {
  lua_Number n;
  return lua_type(L, idx) == LUA_TNUMBER && ngl_compat_integral(L, idx, &n);
}
static inline lua_Integer ngl_compat_tointegerx(lua_State *L, int idx, int *ok) {
  lua_Number n = 0;
  int is = ngl_compat_integral(L, idx, &n);
  if (ok != NULL) *ok = is;
  return is ? (lua_Integer)n : 0;
}
static inline lua_Number ngl_compat_tonumberx(lua_State *L, int idx, int *ok) {
  if (ok != NULL) *ok = lua_isnumber(L, idx);
  return lua_tonumber(L, idx);
}
#undef lua_tointegerx
#undef lua_tonumberx
#define lua_isinteger ngl_compat_isinteger
#define lua_tointegerx ngl_compat_tointegerx
#define lua_tonumberx ngl_compat_tonumberx

static inline int lua_absindex(lua_State *L, int idx) {
  return idx > 0 || idx <= LUA_REGISTRYINDEX ? idx : lua_gettop(L) + idx + 1;
}
#define lua_rawlen(L, idx) lua_objlen(L, idx)

/* lua_rotate for 5.1, one step at a time (the binding rotates by one). */
static inline void lua_rotate(lua_State *L, int idx, int n) {
  idx = lua_absindex(L, idx);
  for (; n > 0; n--)
    lua_insert(L, idx);
  for (; n < 0; n++) {
    lua_pushvalue(L, idx);
    lua_remove(L, idx);
  }
}

/* The getters return the type of what they pushed, the pushers the string, as in 5.3. */
static inline int ngl_compat_rawget(lua_State *L, int idx) {
  lua_rawget(L, idx);
  return lua_type(L, -1);
}
static inline int ngl_compat_rawgeti(lua_State *L, int idx, lua_Integer n) {
  lua_rawgeti(L, idx, (int)n);
  return lua_type(L, -1);
}
static inline void ngl_compat_rawseti(lua_State *L, int idx, lua_Integer n) {
  lua_rawseti(L, idx, (int)n); /* 5.1 takes an int */
}
static inline const char *ngl_compat_pushlstring(lua_State *L, const char *s, size_t len) {
  lua_pushlstring(L, s, len);
  return lua_tostring(L, -1);
}
static inline const char *ngl_compat_pushstring(lua_State *L, const char *s) {
  lua_pushstring(L, s);
  return lua_tostring(L, -1);
}
static inline int ngl_compat_getfield(lua_State *L, int idx, const char *k) {
  lua_getfield(L, idx, k);
  return lua_type(L, -1);
}
static inline int ngl_compat_gettable(lua_State *L, int idx) {
  lua_gettable(L, idx);
  return lua_type(L, -1);
}
static inline int ngl_compat_getmetafield(lua_State *L, int idx, const char *k) {
  return luaL_getmetafield(L, idx, k) ? lua_type(L, -1) : LUA_TNIL;
}
static inline int lua_rawgetp(lua_State *L, int idx, const void *p) {
  idx = lua_absindex(L, idx);
  lua_pushlightuserdata(L, (void *)(uintptr_t)p);
  lua_rawget(L, idx);
  return lua_type(L, -1);
}
static inline void lua_rawsetp(lua_State *L, int idx, const void *p) {
  idx = lua_absindex(L, idx); /* stack: ..., v; then ..., v, key; then ..., key, v */
  lua_pushlightuserdata(L, (void *)(uintptr_t)p);
  lua_insert(L, -2);
  lua_rawset(L, idx);
}

/* 5.3 names every metatable it makes (__name), which messages show for userdata. */
static inline int ngl_compat_newmetatable(lua_State *L, const char *tname) {
  if (!luaL_newmetatable(L, tname)) return 0;
  lua_pushstring(L, tname);
  lua_setfield(L, -2, "__name");
  return 1;
}

#define lua_rawget ngl_compat_rawget
#define lua_rawgeti ngl_compat_rawgeti
#define lua_rawseti ngl_compat_rawseti
#define lua_pushlstring ngl_compat_pushlstring
#define lua_pushstring ngl_compat_pushstring
#define lua_getfield ngl_compat_getfield
#define lua_gettable ngl_compat_gettable
#define luaL_getmetafield ngl_compat_getmetafield
#define luaL_newmetatable ngl_compat_newmetatable

/* 5.3's lua_geti (the type of the value pushed) and 5.2's luaL_len (the raw
 * length here: the binding takes plain arrays). */
static inline int lua_geti(lua_State *L, int idx, lua_Integer i) {
  idx = lua_absindex(L, idx);
  lua_pushinteger(L, i);
  return lua_gettable(L, idx);
}
static inline lua_Integer luaL_len(lua_State *L, int idx) {
  return (lua_Integer)lua_objlen(L, idx);
}

/* lua_pushvfstring with 5.3's "%I" (LUAI_UACINT) beside 5.1's %s %d %c %f %p %%. */
static inline const char *ngl_compat_pushvfstring(lua_State *L, const char *fmt, va_list ap) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const char *p = fmt; *p != '\0'; p++) {
    char tmp[64];
    if (*p != '%' || p[1] == '\0') {
      luaL_addchar(&b, *p);
      continue;
    }
    switch (*++p) {
    case 's': {
      const char *s = va_arg(ap, const char *);
      luaL_addstring(&b, s != NULL ? s : "(null)");
      continue;
    }
    case 'd': snprintf(tmp, sizeof tmp, "%d", va_arg(ap, int)); break;
    case 'I': snprintf(tmp, sizeof tmp, "%lld", va_arg(ap, LUAI_UACINT)); break;
    case 'c': snprintf(tmp, sizeof tmp, "%c", (char)va_arg(ap, int)); break;
    case 'f': snprintf(tmp, sizeof tmp, "%.14g", (double)va_arg(ap, lua_Number)); break;
    case 'p': snprintf(tmp, sizeof tmp, "%p", va_arg(ap, void *)); break;
    default: snprintf(tmp, sizeof tmp, "%c", *p); break; /* "%%" and anything else */
    }
    luaL_addstring(&b, tmp);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}
static inline const char *ngl_compat_pushfstring(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *s = ngl_compat_pushvfstring(L, fmt, ap);
  va_end(ap);
  return s;
}
static inline int ngl_compat_error(lua_State *L, const char *fmt, ...) {
  va_list ap;
  luaL_where(L, 1);
  va_start(ap, fmt);
  ngl_compat_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 2);
  return lua_error(L);
}
#define lua_pushvfstring ngl_compat_pushvfstring
#define lua_pushfstring ngl_compat_pushfstring
#define luaL_error ngl_compat_error

/* 5.2's auxiliary functions (LuaJIT 2.1 has some: ours take precedence). */
static inline int ngl_compat_getsubtable(lua_State *L, int idx, const char *fname) {
  idx = lua_absindex(L, idx);
  if (lua_getfield(L, idx, fname) == LUA_TTABLE) return 1;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, idx, fname);
  return 0;
}
static inline void ngl_compat_requiref(lua_State *L, const char *modname, lua_CFunction openf,
                                       int glb) {
  ngl_compat_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* stack: ..., loaded */
  lua_getfield(L, -1, modname);
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    lua_pushcfunction(L, openf);
    lua_pushstring(L, modname);
    lua_call(L, 1, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, modname);
  }
  lua_remove(L, -2); /* stack: ..., module */
  if (glb) {
    lua_pushvalue(L, -1);
    lua_setglobal(L, modname);
  }
}
static inline void *ngl_compat_testudata(lua_State *L, int idx, const char *tname) {
  void *p = lua_touserdata(L, idx);
  if (p == NULL || !lua_getmetatable(L, idx)) return NULL;
  luaL_getmetatable(L, tname);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same ? p : NULL;
}
static inline int ngl_compat_loadbufferx(lua_State *L, const char *buf, size_t size,
                                         const char *name, const char *mode) {
  (void)mode; /* the binding loads only its own sources, in text */
  return luaL_loadbuffer(L, buf, size, name);
}
#define luaL_getsubtable ngl_compat_getsubtable
#define luaL_requiref ngl_compat_requiref
#define luaL_testudata ngl_compat_testudata
#define luaL_loadbufferx ngl_compat_loadbufferx
#define luaL_checkversion(L) ((void)(L))
#ifndef luaL_newlibtable
#define luaL_newlibtable(L, l) lua_createtable(L, 0, (int)(sizeof(l) / sizeof((l)[0]) - 1))
#endif

#endif /* < 503 */

#endif

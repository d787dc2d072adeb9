/* The standard libraries of ngrun's Lua state (with a hook-safe xpcall) and the --sandbox. */
#include "ngrun.h"

#include <lauxlib.h>
#include <lualib.h>

#include <string.h>

/* load() that only accepts text: the 3rd argument (mode) is forced to "t",
 * so a binary chunk (which can crash the VM) fails with Lua's own message.
 * An explicit 4th argument (env, even nil) is passed on as given. */
static int sandbox_load(lua_State *L) {
  int nargs = lua_gettop(L) >= 4 ? 4 : 3; /* chunk, chunkname, mode[, env] */
  lua_settop(L, nargs);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, nargs, LUA_MULTRET);
  return lua_gettop(L);
}

/* setmetatable() that refuses __gc: Lua runs finalizers with hooks off, so a
 * finalizer could loop past --timeout. */
static int sandbox_setmetatable(lua_State *L) {
  /* raw, as the collector reads it: a __index on the metatable cannot hide it */
  if (lua_istable(L, 2) && (lua_pushliteral(L, "__gc"), lua_rawget(L, 2)) != LUA_TNIL)
    return luaL_argerror(L, 2, "__gc metamethods are not allowed in the sandbox");
  lua_settop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 2, 1);
  return 1;
}

/* The message handler given to xpcall, wrapping the caller's (upvalue 1):
 * skipped for the errors of the timeout and Ctrl-C hooks, which Lua handles
 * with hooks disabled, where a handler in Lua could run forever. */
static int guarded_handler(lua_State *L) {
  if (ngi_run_hook_raised(L)) return 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int finish_xpcall(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return lua_gettop(L) - (int)ctx;
}

/* xpcall (upvalue 1) with the handler wrapped; a continuation keeps it yieldable. */
static int guarded_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, guarded_handler, 1);
  lua_replace(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_callk(L, n, LUA_MULTRET, 0, finish_xpcall);
  return finish_xpcall(L, LUA_OK, 0);
}

/* Replaces the global `name` by fn, which gets the original as upvalue 1. */
static void wrap_global(lua_State *L, const char *name, lua_CFunction fn) {
  lua_getglobal(L, name);
  lua_pushcclosure(L, fn, 1);
  lua_setglobal(L, name);
}

/* Keeps only `keep` (NULL-terminated) in the table at the top of the stack. */
static void keep_only(lua_State *L, const char *const *keep) {
  int t = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    int kept = 0;
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -1);
      const char *const *p;
      for (p = keep; *p != NULL && !kept; p++)
        kept = strcmp(*p, k) == 0;
    }
    if (!kept) { /* clearing a field during lua_next is allowed */
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, t);
    }
  }
}

/* Needs the libraries opened. Guarantees the allow-list of --sandbox:
 * require finds only preloaded modules (the searcher of package.preload),
 * nothing reaches the file system, the process or the debug library. */
static void restrict_environment(lua_State *L) {
  static const char *const os_keep[] = {"time", "clock", "date", NULL};
  static const char *const package_keep[] = {"config", "loaded", "preload", "searchers", NULL};

  lua_pushnil(L);
  lua_setglobal(L, "dofile");
  lua_pushnil(L);
  lua_setglobal(L, "loadfile");
  wrap_global(L, "load", sandbox_load);
  wrap_global(L, "setmetatable", sandbox_setmetatable);

  lua_getglobal(L, "os"); /* the same table as package.loaded.os */
  keep_only(L, os_keep);
  lua_pop(L, 1);

  lua_getglobal(L, "package");
  keep_only(L, package_keep);
  lua_createtable(L, 1, 0); /* searchers: only the first, package.preload's */
  lua_getfield(L, -2, "searchers");
  lua_rawgeti(L, -1, 1);
  lua_rawseti(L, -3, 1);
  lua_pop(L, 1);
  lua_setfield(L, -2, "searchers");
  lua_pop(L, 1);
}

void ngi_run_open_libs(lua_State *L, int sandbox) {
  static const luaL_Reg allowed[] = {{LUA_GNAME, luaopen_base},
                                     {LUA_LOADLIBNAME, luaopen_package},
                                     {LUA_COLIBNAME, luaopen_coroutine},
                                     {LUA_TABLIBNAME, luaopen_table},
                                     {LUA_OSLIBNAME, luaopen_os},
                                     {LUA_STRLIBNAME, luaopen_string},
                                     {LUA_MATHLIBNAME, luaopen_math},
                                     {LUA_UTF8LIBNAME, luaopen_utf8},
                                     {NULL, NULL}};
  const luaL_Reg *lib;
  if (!sandbox) {
    luaL_openlibs(L);
  } else {
    for (lib = allowed; lib->func != NULL; lib++) {
      luaL_requiref(L, lib->name, lib->func, 1);
      lua_pop(L, 1);
    }
    restrict_environment(L);
  }
  wrap_global(L, "xpcall", guarded_xpcall);
}

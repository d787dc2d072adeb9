/* Installs the Runtime methods written in Lua (lua/neurograph/observe.lua: rt:metrics(),
 * rt:plot{}) into the Runtime method table, after the embedded modules have run. */
#include "binding.h"

void ngl_open_observe(lua_State *L, int ctx, int mod) {
  lua_getfield(L, mod, "observe");                    /* stack: ..., observe */
  lua_getfield(L, -1, "runtime_methods");             /* stack: ..., observe, methods */
  lua_rawgeti(L, ctx, NGL_UV_RUNTIME_INDEX);          /* stack: ..., observe, methods, index */
  lua_pushnil(L);
  while (lua_next(L, -3) != 0) { /* stack: ..., methods, index, name, fn */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_pop(L, 3);
}

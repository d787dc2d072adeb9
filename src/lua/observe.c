/* Seeing a world from Lua: rt:metrics(), and the Runtime methods written in Lua
 * (lua/neurograph/observe.lua: rt:plot{}) installed into the Runtime method table. */
#include "binding.h"

static int rt_metrics(lua_State *L);

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
  static const luaL_Reg methods[] = {{"metrics", rt_metrics}, {NULL, NULL}};
  ngl_setfuncs(L, ctx, lua_gettop(L), methods);
  lua_pop(L, 3);
}

/* rt:metrics() -> the Prometheus text of ng_metrics_format. */
static int rt_metrics(lua_State *L) {
  ngl_runtime *o = (ngl_runtime *)ngl_checkudata(L, 1, NGL_UV_RUNTIME_MT, "metrics");
  ngl_rt(L, o); /* a closed runtime raises before anything is allocated */
  size_t cap = 4096;
  for (;;) { /* the text may grow between the two calls: retry until it fits */
    char *p = lua_newuserdatauv(L, cap, 0);
    ng_runtime *rt = ngl_rt(L, o); /* after the allocation (see ngl_runtime) */
    size_t n = ng_metrics_format(rt, p, cap);
    if (n < cap) {
      lua_pushlstring(L, p, n);
      return 1;
    }
    lua_pop(L, 1); /* the buffer */
    cap = n + 1;
  }
}

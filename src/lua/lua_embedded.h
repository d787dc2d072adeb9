/* The pure-Lua part of the module, compiled in by cmake/embed_lua.cmake. */
#ifndef NG_LUA_EMBEDDED_H
#define NG_LUA_EMBEDDED_H
#include <stddef.h>

typedef struct ng_lua_source {
  const char *module; /* "neurograph.foo"; NULL ends the table */
  const char *chunkname;
  const char *source;
  size_t size;
} ng_lua_source;

extern const ng_lua_source ng_lua_embedded[];
#endif

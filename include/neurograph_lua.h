/**
 * @file neurograph_lua.h
 * @brief The Lua 5.4 binding of neurograph, for hosts that embed Lua.
 *
 * A stock `lua5.4` loads the module with `require "neurograph"` (neurograph.so).
 * A host that links the static binding (neurograph::lua) calls
 * luaL_requiref(L, "neurograph", luaopen_neurograph, 0) or preloads it, and can
 * hand a runtime it owns to any number of Lua states with ng_lua_push_runtime.
 */
#ifndef NEUROGRAPH_LUA_H
#define NEUROGRAPH_LUA_H

#include "neurograph.h"

#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Opens the module: returns 1 (the module table). Sets no global. */
NG_API int luaopen_neurograph(lua_State *L);

/**
 * Pushes a `neurograph.Runtime` userdata for `rt`. The userdata takes its own
 * reference (ng_runtime_retain) and releases it when it is collected or
 * closed, so the host keeps ownership of its reference. Raises a Lua error
 * (memory) like any push; on that path no reference is taken.
 */
NG_API void ng_lua_push_runtime(lua_State *L, ng_runtime *rt);

/**
 * The runtime of the `neurograph.Runtime` at index idx, or a raised argument
 * error if the value is not one or has been closed. The pointer is borrowed:
 * valid while the Lua value is alive and open; retain it to keep it longer.
 */
NG_API ng_runtime *ng_lua_check_runtime(lua_State *L, int idx);

/** Like ng_lua_check_runtime but returns NULL instead of raising. */
NG_API ng_runtime *ng_lua_to_runtime(lua_State *L, int idx);

/**
 * Allows or forbids file access from Lua state L: rt:save(path) and
 * ng.load(path). Allowed by default. A host that runs untrusted scripts
 * (ngrun --sandbox) forbids it before running them; the flag lives in the
 * registry, which such scripts cannot reach. When forbidden, both calls raise
 * "file access is disabled in this Lua state".
 */
NG_API void ng_lua_set_file_access(lua_State *L, int allowed);

/**
 * Sets the allocator of every runtime that `ng.Runtime{}` and `ng.load` create
 * in Lua state L from now on (f NULL: back to realloc/free). A host passes the
 * function and ud it gave lua_newstate to put the script's runtimes and its
 * Lua heap on one budget (ngrun --mem-limit does). Runtimes created before the
 * call, and runtimes pushed with ng_lua_push_runtime, keep their own. The
 * setting lives in the registry, out of scripts' reach. ud must stay valid
 * until every runtime created through it is released (at the latest when L is
 * closed, unless the host retained one). Raises a Lua error (memory) like any
 * push; the previous setting then stays.
 */
NG_API void ng_lua_set_allocator(lua_State *L, ng_alloc_fn f, void *ud);

/**
 * An ng_progress_fn (ud unused) that draws a progress bar on stderr, one line
 * redrawn with '\r' and erased at the end, when stderr is a terminal and the
 * operation has run for NG_PROGRESS_AFTER seconds (environment; default 1).
 * Never writes when stderr is not a terminal. Runtimes that `ng.Runtime{}`,
 * `ng.load` and `ng.import` create use it; a host sets it in its own
 * ng_config (ngrun does). State is per thread: one operation at a time each.
 */
NG_API void ng_lua_progress(void *ud, const char *what, uint64_t done, uint64_t total);

/**
 * Erases the bar a failed operation left on this thread (a failure never
 * reports its end), before its error is printed. Nothing when none is drawn.
 */
NG_API void ng_lua_progress_end(void);

#ifdef __cplusplus
}
#endif
#endif /* NEUROGRAPH_LUA_H */

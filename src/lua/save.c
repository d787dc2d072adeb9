/* Save objects: a background rt:save (ng_snapshot_save_background) seen from Lua. */
#include "binding.h"

#define SAVE_MT "neurograph.Save"

/* A Save: the C handle. It needs no runtime (the save runs in its own process), so a Save
 * may outlive its Runtime, and dropping it (gc) lets the save finish on its own. */
typedef struct lsave {
  ng_save *job; /* NULL until started, and once collected */
} lsave;

ng_save **ngl_save_new(lua_State *L) {
  lsave *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->job = NULL;
  luaL_getmetatable(L, SAVE_MT); /* stack: ..., s, mt */
  lua_setmetatable(L, -2);
  return &s->job;
}

static lsave *check_save(lua_State *L, const char *fn) {
  lsave *s = luaL_testudata(L, 1, SAVE_MT);
  if (s == NULL) ngl_argerror(L, 1, fn, "Save expected, got %s", ngl_describe(L, 1));
  return s;
}

/* Pushes how the save ended: true, or nil plus the message; false while it runs. */
static int push_outcome(lua_State *L, ng_save *job, bool wait) {
  const char *msg = NULL;
  ng_status st = ng_save_status(job, wait, &msg);
  if (st == NG_EBUSY) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (st == NG_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, msg ? msg : ng_strerror(st));
  return 2;
}

/* save:done() -> false while running; true when written; nil, message when it failed. */
static int save_done(lua_State *L) {
  return push_outcome(L, check_save(L, "done")->job, false);
}

/* save:wait() -> true, or nil plus the message: blocks until the save ends. */
static int save_wait(lua_State *L) {
  return push_outcome(L, check_save(L, "wait")->job, true);
}

/* __gc: frees the handle; a running save goes on and finishes. */
static int save_gc(lua_State *L) {
  lsave *s = luaL_checkudata(L, 1, SAVE_MT);
  ng_save_free(s->job);
  s->job = NULL;
  return 0;
}

static int save_tostring(lua_State *L) {
  lsave *s = luaL_checkudata(L, 1, SAVE_MT);
  ng_status st = ng_save_status(s->job, false, NULL);
  lua_pushfstring(L, "neurograph.Save (%s)",
                  st == NG_EBUSY ? "running"
                  : st == NG_OK  ? "done"
                                 : "failed");
  return 1;
}

static const luaL_Reg save_methods[] = {{"done", save_done}, {"wait", save_wait}, {NULL, NULL}};
static const luaL_Reg save_meta[] = {
    {"__gc", save_gc}, {"__tostring", save_tostring}, {NULL, NULL}};

void ngl_open_save(lua_State *L, int ctx) {
  luaL_newmetatable(L, SAVE_MT); /* stack: ..., mt */
  lua_newtable(L);
  ngl_setfuncs(L, ctx, -1, save_methods);
  lua_setfield(L, -2, "__index");
  ngl_setfuncs(L, ctx, -1, save_meta);
  lua_pop(L, 1);
}

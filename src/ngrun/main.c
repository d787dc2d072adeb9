/* ngrun: the neurograph host, a lua.c-shaped driver that runs scripts against a runtime. */
#include "ngrun.h"

#include "neurograph.h"
#include "neurograph_lua.h"

#include <lauxlib.h>
#include <lualib.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NGI_RUN_INIT_VAR "LUA_INIT"
#define NGI_RUN_INIT_VAR_VERSION NGI_RUN_INIT_VAR "_" LUA_VERSION_MAJOR "_" LUA_VERSION_MINOR

/* What pmain needs from main, passed as a light userdata. */
typedef struct host {
  int argc;
  char **argv;
  const ngi_run_options *opts;
  ng_runtime *rt;
  int warnings_on; /* state of the warning function (-W, "@on", "@off") */
  int warn_cont;   /* inside a multi-part warning */
} host;

static void print_message(const char *progname, const char *msg) {
  if (progname != NULL) fprintf(stderr, "%s: ", progname);
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

/* A snapshot failure from ng_last_error, without the C function's name:
 * "ngrun: world.ngs: truncated: ...". */
static void print_snapshot_error(const char *detail) {
  const char *colon = strstr(detail, ": ");
  if (strncmp(detail, "ng_snapshot_", 12) == 0 && colon != NULL) detail = colon + 2;
  print_message(NGI_RUN_NAME, detail);
}

int ngi_run_report(lua_State *L, int status, const char *progname) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    print_message(progname, msg != NULL ? msg : "(error object is not a string)");
    lua_pop(L, 1);
  }
  return status;
}

/* Message handler: the error message (or __tostring of an error object) with a traceback. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int ngi_run_docall(lua_State *L, int narg, int nres) {
  int status;
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  ngi_run_guard_begin(L);
  status = lua_pcall(L, narg, nres, base);
  ngi_run_guard_end(L);
  lua_remove(L, base);
  return status;
}

static const char *chunk_mode(const host *h) {
  return (h->opts->flags & NGI_RUN_SANDBOX) ? "t" : NULL;
}

/* Runs a chunk just loaded (status is the load's) and reports any error. */
static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = ngi_run_docall(L, 0, 0);
  return ngi_run_report(L, status, NGI_RUN_NAME);
}

static int dofile(lua_State *L, const host *h, const char *name) {
  return dochunk(L, luaL_loadfilex(L, name, chunk_mode(h)));
}

static int dostring(lua_State *L, const host *h, const char *s, const char *name) {
  return dochunk(L, luaL_loadbufferx(L, s, strlen(s), name, chunk_mode(h)));
}

/* -l mod / -l g=mod: global g (default: mod up to a '-') = require(mod). */
static int dolibrary(lua_State *L, const char *spec) {
  int status;
  const char *eq = strchr(spec, '=');
  const char *modname = eq != NULL ? eq + 1 : spec;
  size_t globlen = eq != NULL ? (size_t)(eq - spec) : strcspn(spec, "-");
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  status = ngi_run_docall(L, 1, 1);
  if (status == LUA_OK) {
    lua_pushlstring(L, spec, globlen);
    lua_insert(L, -2);
    lua_setglobal(L, lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  return ngi_run_report(L, status, NGI_RUN_NAME);
}

/* The global `arg`: the script at 0, what precedes it at negative indices,
 * its arguments at 1..n (without a script, argv[0] is at 0). */
static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  int i;
  lua_createtable(L, argc - script - 1 > 0 ? argc - script - 1 : 0, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* Pushes arg[1..n] for the script's `...`; returns n. */
static int push_args(lua_State *L) {
  int i, n;
  if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
  n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = 1; i <= n; i++)
    lua_rawgeti(L, -i, i);
  lua_remove(L, -i);
  return n;
}

/* Loads the script (stdin for '-'; text only in the sandbox) and calls it with arg[1..n]. */
static int handle_script(lua_State *L, const host *h) {
  int status;
  const char *fname = h->argv[h->opts->script];
  if (h->opts->flags & NGI_RUN_STDIN_SCRIPT) fname = NULL;
  status = luaL_loadfilex(L, fname, chunk_mode(h));
  if (status == LUA_OK) {
    int n = push_args(L);
    status = ngi_run_docall(L, n, LUA_MULTRET);
  }
  return ngi_run_report(L, status, NGI_RUN_NAME);
}

/* LUA_INIT_5_4, else LUA_INIT: "@file" runs the file, anything else is a chunk. */
static int handle_luainit(lua_State *L, const host *h) {
  const char *name = "=" NGI_RUN_INIT_VAR_VERSION;
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=" NGI_RUN_INIT_VAR;
    init = getenv(name + 1);
  }
  if (init == NULL) return LUA_OK;
  if (init[0] == '@') return dofile(L, h, init + 1);
  return dostring(L, h, init, name);
}

/* Runs -e, -l and -W in command-line order; 0 at the first failure. */
static int run_steps(lua_State *L, host *h) {
  int i;
  for (i = 0; i < h->opts->nsteps; i++) {
    const ngi_run_step *s = &h->opts->steps[i];
    int status = LUA_OK;
    if (s->kind == 'e')
      status = dostring(L, h, s->value, "=(command line)");
    else if (s->kind == 'l')
      status = dolibrary(L, s->value);
    else
      lua_warning(L, "@on", 0);
    if (status != LUA_OK) return 0;
  }
  return 1;
}

static void print_version(void) {
  fputs(NGI_RUN_NAME " " NG_VERSION_STRING " (neurograph)  " LUA_COPYRIGHT "\n", stdout);
  fflush(stdout);
}

/* The warning function of lauxlib (which is static there): off until -W or
 * warn("@on"); pieces of one message are joined. */
static void warnf(void *ud, const char *msg, int tocont) {
  host *h = ud;
  if (!h->warn_cont && !tocont && msg[0] == '@') {
    if (strcmp(msg, "@off") == 0)
      h->warnings_on = 0;
    else if (strcmp(msg, "@on") == 0)
      h->warnings_on = 1;
    return;
  }
  if (h->warnings_on) {
    if (!h->warn_cont) fputs("Lua warning: ", stderr);
    fputs(msg, stderr);
    if (!tocont) fputs("\n", stderr);
    fflush(stderr);
  }
  h->warn_cont = tocont;
}

static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, NGI_RUN_NAME ": unprotected error in call to Lua API (%s)\n",
          msg != NULL ? msg : "error object is not a string");
  return 0; /* Lua aborts */
}

/* Everything that touches Lua runs here, inside one protected call, so even
 * memory errors while opening the libraries are reported. Returns true on
 * success. */
static int pmain(lua_State *L) {
  host *h = lua_touserdata(L, 1);
  const ngi_run_options *o = h->opts;
  int sandbox = (o->flags & NGI_RUN_SANDBOX) != 0;
  luaL_checkversion(L);
  if (o->flags & NGI_RUN_HAS_V) print_version();
  if (o->flags & NGI_RUN_NO_ENV) { /* also tells the package library to ignore LUA_PATH */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  ngi_run_open_libs(L, sandbox);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_neurograph);
  lua_setfield(L, -2, "neurograph");
  lua_pop(L, 1);
  if (sandbox) ng_lua_set_file_access(L, 0); /* rt:save and ng.load touch the file system */
  ng_lua_push_runtime(L, h->rt);
  lua_setglobal(L, "runtime");
  create_arg_table(L, h->argv, h->argc, o->script);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  if (!(o->flags & NGI_RUN_NO_ENV) && handle_luainit(L, h) != LUA_OK) return 0;
  if (!run_steps(L, h)) return 0;
  if (o->script > 0 && handle_script(L, h) != LUA_OK) return 0;
  if (o->flags & NGI_RUN_HAS_I) {
    ngi_run_repl(L, chunk_mode(h));
  } else if (o->script == 0 && !(o->flags & (NGI_RUN_HAS_E | NGI_RUN_HAS_V))) {
    if (isatty(STDIN_FILENO)) {
      print_version();
      ngi_run_repl(L, chunk_mode(h));
    } else if (dofile(L, h, NULL) != LUA_OK) {
      return 0;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv) {
  ngi_run_options opts;
  ngi_run_limits limits;
  ng_config cfg;
  host h;
  lua_State *L;
  ng_status st;
  char err[256];
  int status, ok;

  if (ngi_run_parse_options(argc, argv, &opts, err, sizeof err) != 0) {
    print_message(NGI_RUN_NAME, err);
    ngi_run_usage(stderr);
    return EXIT_FAILURE;
  }
  if (opts.flags & NGI_RUN_HELP) {
    ngi_run_usage(stdout);
    ngi_run_options_free(&opts);
    return EXIT_SUCCESS;
  }

  memset(&limits, 0, sizeof limits);
  limits.mem_limit = opts.mem_limit;
  limits.timeout = opts.timeout;
  memset(&h, 0, sizeof h);
  h.argc = argc;
  h.argv = argv;
  h.opts = &opts;

  /* The runtime shares the allocator, so --mem-limit caps the store too. */
  memset(&cfg, 0, sizeof cfg);
  cfg.alloc = ngi_run_alloc;
  cfg.alloc_ud = &limits;
  if (opts.load_path && !(opts.load_optional && access(opts.load_path, F_OK) != 0)) {
    /* A snapshot that does not load stops everything before any script runs,
     * and the file is only ever read. */
    st = ng_snapshot_load(opts.load_path, &cfg, &h.rt);
    if (st != NG_OK) {
      print_snapshot_error(ng_last_error(NULL));
      ngi_run_options_free(&opts);
      return EXIT_FAILURE;
    }
  } else if ((st = ng_runtime_new(&cfg, &h.rt)) != NG_OK) {
    snprintf(err, sizeof err, "cannot create the runtime: %s", ng_strerror(st));
    print_message(NGI_RUN_NAME, err);
    ngi_run_options_free(&opts);
    return EXIT_FAILURE;
  }
  L = lua_newstate(ngi_run_alloc, &limits);
  if (L == NULL) {
    print_message(NGI_RUN_NAME, "cannot create state: not enough memory");
    ng_runtime_release(h.rt);
    ngi_run_options_free(&opts);
    return EXIT_FAILURE;
  }
  lua_atpanic(L, panic);
  lua_setwarnf(L, warnf, &h);
  ngi_run_limits_attach(L, &limits);
  lua_gc(L, LUA_GCSTOP); /* no collection while building the state */
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &h);
  status = lua_pcall(L, 1, 1, 0);
  ok = lua_toboolean(L, -1);
  ngi_run_report(L, status, NGI_RUN_NAME);
  lua_close(L);
  /* Saved after lua_close, so finalizers have run; only when everything
   * succeeded, so a failed or stopped script never replaces a good file. */
  if (ok && status == LUA_OK && opts.save_path && ng_snapshot_save(h.rt, opts.save_path) != NG_OK) {
    print_snapshot_error(ng_last_error(h.rt));
    ok = 0;
  }
  ng_runtime_release(h.rt); /* after lua_close: the Lua side held its own reference */
  ngi_run_options_free(&opts);
  return (ok && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* ngrun: the neurograph host, a lua.c-shaped driver that runs scripts against a runtime. */
/* realpath is XSI, not POSIX.1 base: ask for it before any header. */
#define _DEFAULT_SOURCE
#include "ngrun.h"

#include "neurograph.h"
#include "neurograph_lua.h"

#include <lauxlib.h>
#include <lualib.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NGI_RUN_INIT_VAR "LUA_INIT"
#define NGI_RUN_INIT_VAR_VERSION NGI_RUN_INIT_VAR "_" LUA_VERSION_MAJOR "_" LUA_VERSION_MINOR

/* What pmain needs from main, passed as a light userdata. */
typedef struct host {
  int argc;
  char **argv;
  const ngi_run_options *opts;
  ngi_run_limits *limits;
  ng_runtime *rt;      /* the runtime ngrun made or loaded; host's reference */
  ng_runtime *save_rt; /* the global 'runtime' at the end, to save; retained */
  int repl_failures;   /* REPL lines that failed */
  int closing;         /* lua_close is running the finalizers */
  int warnings_on; /* state of the warning function (-W, "@on", "@off") */
  int warn_cont;   /* inside a multi-part warning */
  ngi_run_metrics *metrics; /* --metrics: the textfile writer, until finish */
} host;

static void print_message(const char *progname, const char *msg) {
  if (progname != NULL) fprintf(stderr, "%s: ", progname);
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

/* A snapshot failure from ng_last_error without the C function's name,
 * after `prefix` (may be ""): "ngrun: world.ngs: truncated: ...". */
static void print_snapshot_error(const char *prefix, const char *detail) {
  const char *colon = strstr(detail, ": ");
  if ((strncmp(detail, "ng_snapshot_", 12) == 0 || strncmp(detail, "ng_runtime_open", 15) == 0 ||
       strncmp(detail, "ng_checkpoint", 13) == 0) &&
      colon != NULL)
    detail = colon + 2;
  ng_lua_progress_end(); /* a bar the failed load or save left */
  fprintf(stderr, NGI_RUN_NAME ": %s%s\n", prefix, detail);
  fflush(stderr);
}

/* Whether a save to `path` can work, checked before any script runs so a
 * session is not lost at its end: the path must be a regular file (or a
 * link to one) or missing, in a directory we may write. A dangling link is
 * checked in the link's own directory. Returns 0, or -1 with err set. */
static int check_save_path(const char *path, char *err, size_t errsize) {
  struct stat sb;
  char dir[PATH_MAX];
  const char *slash;
  if (stat(path, &sb) == 0) {
    if (!S_ISREG(sb.st_mode)) {
      snprintf(err, errsize, "cannot save to %s: not a regular file", path);
      return -1;
    }
    if (realpath(path, dir) == NULL) { /* the target's directory, through links */
      snprintf(err, errsize, "cannot save to %s: %s", path, strerror(errno));
      return -1;
    }
  } else if (errno != ENOENT) {
    snprintf(err, errsize, "cannot save to %s: %s", path, strerror(errno));
    return -1;
  } else if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
    snprintf(err, errsize, "cannot save to %s: %s", path, strerror(ENAMETOOLONG));
    return -1;
  }
  slash = strrchr(dir, '/');
  if (slash == NULL)
    strcpy(dir, ".");
  else if (slash == dir)
    dir[1] = '\0';
  else
    dir[slash - dir] = '\0';
  if (access(dir, W_OK | X_OK) != 0) {
    snprintf(err, errsize, "cannot save to %s: %s (the directory %s)", path, strerror(errno), dir);
    return -1;
  }
  return 0;
}

/* Called in protected mode when the script has ended well and a save is due:
 * the runtime to save is the one in the global 'runtime' then (a script may
 * have replaced it). Returns 1 with h->save_rt retained, or 0 after printing
 * why nothing will be saved. Reads the global raw: no script code runs. */
static int pick_saved_runtime(lua_State *L, host *h) {
  ng_runtime *rt;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  lua_pushliteral(L, "runtime");
  lua_rawget(L, -2);
  rt = ng_lua_to_runtime(L, -1);
  if (rt == NULL) {
    int closed = luaL_testudata(L, -1, "neurograph.Runtime") != NULL;
    fprintf(stderr,
            NGI_RUN_NAME ": %s was not saved: the global 'runtime' is not an open "
                         "neurograph.Runtime (it is a %s%s)\n",
            h->opts->save_path, closed ? "closed Runtime" : luaL_typename(L, -1),
            closed ? "" : " value");
    fflush(stderr);
    lua_pop(L, 2);
    return 0;
  }
  h->save_rt = ng_runtime_retain(rt);
  lua_pop(L, 2);
  return 1;
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

/* False, after saying so, when a REPL line failed: the session is not saved. */
static int session_ok(const host *h) {
  if (h->repl_failures == 0) return 1;
  fprintf(stderr, NGI_RUN_NAME ": %s was not saved: a line of the session failed\n",
          h->opts->save_path);
  fflush(stderr);
  return 0;
}

/* The end of every run: closes L (its finalizers under the timeout), then,
 * when ok and a runtime was picked, saves it outside the memory limit (the
 * script's budget is spent; the session must not be lost to it). Releases
 * the runtimes. Returns the exit status. */
static int finish(lua_State *L, host *h, int ok) {
  h->closing = 1;
  ngi_run_close(L);
  /* rt:atomic always ends its transaction, even when its function fails;
   * one still open here was left by C code the script ran: it is rolled
   * back (a world is never saved half-changed) and the run fails. */
  ng_runtime *open = ng_txn_open(h->rt) ? h->rt : ng_txn_open(h->save_rt) ? h->save_rt : NULL;
  if (open != NULL) {
    (void)ng_txn_rollback(open);
    print_message(NGI_RUN_NAME, "a transaction was left open; it was rolled back");
    ok = 0;
  }
  if (h->opts->checkpoint_on_exit) { /* whatever happened: what was committed is kept */
    h->limits->mem_limit = 0;
    if (ng_checkpoint(h->rt) != NG_OK) {
      print_snapshot_error("the world's checkpoint at exit failed: ", ng_last_error(h->rt));
      ok = 0;
    }
  }
  if (ok && h->save_rt != NULL) {
    h->limits->mem_limit = 0;
    if (ng_snapshot_save(h->save_rt, h->opts->save_path) != NG_OK) {
      char prefix[PATH_MAX + 64];
      snprintf(prefix, sizeof prefix, "the world was not saved to %s: ", h->opts->save_path);
      print_snapshot_error(prefix, ng_last_error(h->save_rt));
      ok = 0;
    }
  }
  if (h->metrics != NULL) { /* the final figures, after the script and its finalizers */
    char err[512];
    if (ngi_run_metrics_stop(h->metrics, err, sizeof err) != 0) {
      print_message(NGI_RUN_NAME, err);
      ok = 0;
    }
    h->metrics = NULL;
  }
  if (h->save_rt != NULL) ng_runtime_release(h->save_rt);
  ng_runtime_release(h->rt); /* after lua_close: the Lua side held its own reference */
  h->save_rt = h->rt = NULL;
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* os.exit([code [, close]]): as in the os library, but a successful exit
 * (true, 0 or none) ends like the end of the script: finalizers run and the
 * world is saved (--save), unless a REPL line failed before. Any
 * other code exits with it, unsaved. */
static int host_exit(lua_State *L) {
  host *h = lua_touserdata(L, lua_upvalueindex(1));
  int code = lua_isboolean(L, 1) ? (lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE)
                                 : (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
  int ok = code == EXIT_SUCCESS;
  if (h->closing) { /* from a finalizer run by finish: the state cannot be closed twice */
    if (ok && h->opts->save_path != NULL) {
      fprintf(stderr, NGI_RUN_NAME ": %s was not saved: os.exit called by a finalizer at exit\n",
              h->opts->save_path);
      code = EXIT_FAILURE;
    }
    exit(code);
  }
  if (ok && h->opts->save_path != NULL && !session_ok(h)) ok = 0, code = EXIT_FAILURE;
  if (ok && h->opts->save_path != NULL && !pick_saved_runtime(L, h)) ok = 0, code = EXIT_FAILURE;
  ngi_run_guard_end(L); /* the timer of the current call; finish arms its own */
  if (finish(L, h, ok) != EXIT_SUCCESS && ok) code = EXIT_FAILURE;
  exit(code);
}

/* The REPL; 0 when a line failed and a save is due (the session is then
 * not saved, as for a failed script). */
static int repl(lua_State *L, host *h) {
  ngi_run_repl(L, chunk_mode(h), &h->repl_failures);
  return h->opts->save_path == NULL || session_ok(h);
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
  if (lua_getglobal(L, "os") == LUA_TTABLE && lua_getfield(L, -1, "exit") != LUA_TNIL) {
    lua_pushlightuserdata(L, h);
    lua_pushcclosure(L, host_exit, 1);
    lua_setfield(L, -3, "exit");
  }
  lua_settop(L, 1);
  /* One budget: the runtimes the script creates or loads share the Lua heap's. */
  ng_lua_set_allocator(L, ngi_run_alloc, h->limits);
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
    if (!repl(L, h)) return 0;
  } else if (o->script == 0 && !(o->flags & (NGI_RUN_HAS_E | NGI_RUN_HAS_V))) {
    if (isatty(STDIN_FILENO)) {
      print_version();
      if (!repl(L, h)) return 0;
    } else if (dofile(L, h, NULL) != LUA_OK) {
      return 0;
    }
  }
  if (o->plot_path != NULL) {
    ng_lua_push_runtime(L, h->rt);
    if (ngi_run_report(L, ngi_run_plot(L, o->plot_path), NGI_RUN_NAME) != LUA_OK) return 0;
  }
  if (o->save_path != NULL && !pick_saved_runtime(L, h)) return 0;
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

  if (opts.save_path && check_save_path(opts.save_path, err, sizeof err) != 0) {
    print_message(NGI_RUN_NAME, err);
    ngi_run_options_free(&opts);
    return EXIT_FAILURE;
  }
  /* Past a file-size limit (ulimit -f) writes fail with EFBIG, so a save
   * reports it and removes its temporary file instead of dying mid-write. */
  signal(SIGXFSZ, SIG_IGN);

  memset(&limits, 0, sizeof limits);
  limits.mem_limit = opts.mem_limit;
  limits.timeout = opts.timeout;
  memset(&h, 0, sizeof h);
  h.argc = argc;
  h.argv = argv;
  h.opts = &opts;
  h.limits = &limits;

  /* The runtime shares the allocator, so --mem-limit caps the store too. */
  memset(&cfg, 0, sizeof cfg);
  cfg.alloc = ngi_run_alloc;
  cfg.alloc_ud = &limits;
  cfg.progress = ng_lua_progress; /* a bar for long loads and saves on a terminal */
  if ((opts.sync >= 0 || opts.checkpoint_on_exit) && !opts.world_path) {
    print_message(NGI_RUN_NAME, "'--sync' and '--checkpoint-on-exit' need '--world'");
    ngi_run_usage(stderr);
    ngi_run_options_free(&opts);
    return EXIT_FAILURE;
  }
  if (opts.world_path) {
    /* A world that does not open (corrupt, unreadable) stops everything
     * before any script runs. */
    ng_open_options wo = {.config = &cfg, .sync = opts.sync >= 0 ? (ng_sync_mode)opts.sync
                                                                  : NG_SYNC_BATCH};
    if (ng_runtime_open(opts.world_path, &wo, &h.rt) != NG_OK) {
      print_snapshot_error("", ng_last_error(NULL));
      ngi_run_options_free(&opts);
      return EXIT_FAILURE;
    }
  } else if (opts.load_path) {
    /* A snapshot that does not load stops everything before any script runs,
     * and the file is only ever read. */
    st = ng_snapshot_load(opts.load_path, &cfg, &h.rt);
    if (st != NG_OK) {
      print_snapshot_error("", ng_last_error(NULL));
      ngi_run_options_free(&opts);
      return EXIT_FAILURE;
    }
  } else if ((st = ng_runtime_new(&cfg, &h.rt)) != NG_OK) {
    snprintf(err, sizeof err, "cannot create the runtime: %s", ng_strerror(st));
    print_message(NGI_RUN_NAME, err);
    ngi_run_options_free(&opts);
    return EXIT_FAILURE;
  }
  if (opts.metrics_path != NULL) {
    h.metrics = ngi_run_metrics_start(h.rt, opts.metrics_path, opts.metrics_interval, err,
                                      sizeof err);
    if (h.metrics == NULL) {
      print_message(NGI_RUN_NAME, err);
      ng_runtime_release(h.rt);
      ngi_run_options_free(&opts);
      return EXIT_FAILURE;
    }
  }
  L = lua_newstate(ngi_run_alloc, &limits);
  if (L == NULL) {
    print_message(NGI_RUN_NAME, "cannot create state: not enough memory");
    if (h.metrics != NULL) ngi_run_metrics_stop(h.metrics, NULL, 0);
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
  ok = lua_toboolean(L, -1) && status == LUA_OK;
  ngi_run_report(L, status, NGI_RUN_NAME);
  /* Saved after lua_close, so finalizers have run; only when everything
   * succeeded, so a failed or stopped script never replaces a good file. */
  status = finish(L, &h, ok);
  ngi_run_options_free(&opts);
  return status;
}

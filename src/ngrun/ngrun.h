/* Interfaces between the files of ngrun, the neurograph host executable (never installed). */
#ifndef NGRUN_H
#define NGRUN_H

#include "neurograph.h"

#include <lua.h>

#include <stddef.h>
#include <stdio.h>

#define NGI_RUN_NAME "ngrun"

/* ---- options.c: the command line ----------------------------------------- */

/* Option flags collected from the command line. */
enum {
  NGI_RUN_HAS_E = 1 << 0,       /* -e: some statement to run */
  NGI_RUN_HAS_I = 1 << 1,       /* -i: REPL after the script */
  NGI_RUN_HAS_V = 1 << 2,       /* -v (and -i): print the version */
  NGI_RUN_NO_ENV = 1 << 3,      /* -E (and --sandbox): ignore LUA_INIT, LUA_PATH, LUA_CPATH */
  NGI_RUN_SANDBOX = 1 << 4,     /* --sandbox */
  NGI_RUN_HELP = 1 << 5,        /* --help */
  NGI_RUN_STDIN_SCRIPT = 1 << 6 /* the script is '-' (read from stdin) */
};

/* One -e, -l or -W, in command-line order. */
typedef struct ngi_run_step {
  char kind;         /* 'e', 'l' or 'W' */
  const char *value; /* the statement or module spec; NULL for 'W' */
} ngi_run_step;

typedef struct ngi_run_options {
  unsigned flags;
  int script;          /* argv index of the script; 0 when there is none */
  size_t mem_limit;    /* bytes; 0 = no cap */
  double timeout;      /* seconds per top-level chunk; 0 = no limit */
  ngi_run_step *steps; /* owned; free with ngi_run_options_free */
  int nsteps;
  const char *load_path; /* --load: the snapshot to start from; NULL = empty */
  const char *save_path; /* --save: where to save after success; NULL = nowhere */
  const char *world_path; /* --world: the durable world (a directory) to open; NULL = none */
  int sync;               /* --sync: an ng_sync_mode; -1 = not given (batch) */
  int checkpoint_on_exit; /* --checkpoint-on-exit */
  const char *metrics_path; /* --metrics=FILE[:SECONDS]: the textfile to keep; NULL = none */
  char *metrics_owned;      /* the FILE part when SECONDS was given (owned) */
  double metrics_interval;  /* SECONDS; 0 = write once, at the end */
  const char *plot_path;    /* --plot=FILE: the SVG of the host runtime after the script */
} ngi_run_options;

/* Parses argv. Needs argv[argc] == NULL. Guarantees on 0: *o filled (free it
 * with ngi_run_options_free). Fails with -1 and a one-line message in err (an
 * unknown option, a missing or bad value, no memory); *o then owns nothing. */
int ngi_run_parse_options(int argc, char **argv, ngi_run_options *o, char *err, size_t errsize);
void ngi_run_options_free(ngi_run_options *o);
void ngi_run_usage(FILE *out);
/* Parses "64M", "512k", "1.5G", "4096" into bytes (powers of 1024); the
 * number is decimal. -1 if invalid ("0x10M", "inf"). */
int ngi_run_parse_size(const char *s, size_t *out);
/* Parses a positive, finite decimal number of seconds ("0.25", "3", "1e-3").
 * -1 if invalid ("0x10", "inf", "nan"). */
int ngi_run_parse_seconds(const char *s, double *out);

/* ---- limits.c: what stops a script (memory cap, timeout, Ctrl-C) ---------- */

typedef struct ngi_run_limits {
  size_t mem_limit; /* bytes; 0 = no cap */
  size_t mem_used;  /* bytes currently allocated through ngi_run_alloc */
  double timeout;   /* seconds per guarded call; 0 = none */
  double deadline;  /* monotonic seconds at which the current guarded call expires */
  int expired;      /* the current guarded call ran out of time */
  int raising;      /* the hook is raising an error (Lua runs handlers with hooks off) */
} ngi_run_limits;

/* lua_Alloc (and ng_alloc_fn) that refuses to grow past ud->mem_limit. Frees
 * and shrinks always succeed. */
void *ngi_run_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* Ties lim to L (and every coroutine of L) for the hooks; lim must outlive L. */
void ngi_run_limits_attach(lua_State *L, ngi_run_limits *lim);
/* Around every top-level call: arms Ctrl-C, the deadline and its hooks;
 * ngi_run_guard_end disarms them and restores the signal dispositions. */
void ngi_run_guard_begin(lua_State *L);
void ngi_run_guard_end(lua_State *L);
/* lua_close(L) under the timeout: finalizers run with hooks off, so one that
 * does not end within the timeout ends the process with a message (exit 1). */
void ngi_run_close(lua_State *L);
/* True when the error being handled was raised by the timeout or Ctrl-C
 * hook: Lua then runs message handlers with hooks disabled, so a handler in
 * Lua must be skipped or it could loop forever. Consumes the Ctrl-C mark. */
int ngi_run_hook_raised(lua_State *L);

/* ---- sandbox.c: the standard libraries ------------------------------------ */

/* Opens the standard libraries: all of them, or with sandbox only the
 * allow-listed environment of --sandbox. Raises on memory errors. */
void ngi_run_open_libs(lua_State *L, int sandbox);

/* ---- main.c: the driver ---------------------------------------------------- */

/* Calls the function below narg arguments with a traceback handler, under the
 * guards. Returns the lua_pcall status; on error the message is on the stack. */
int ngi_run_docall(lua_State *L, int narg, int nres);
/* Prints the error on top of the stack (prefixed by progname when not NULL)
 * and pops it, when status is an error. Returns status. */
int ngi_run_report(lua_State *L, int status, const char *progname);

/* ---- observe.c: --metrics and --plot ------------------------------------------ */

typedef struct ngi_run_metrics ngi_run_metrics;
/* Writes rt's Prometheus text (ng_metrics_format) to path now and, with an
 * interval > 0, again every interval seconds from a thread, each time
 * atomically (a temporary file renamed over path: node_exporter's textfile
 * collector never reads half a file). Returns NULL with err set when the
 * first write fails or the thread cannot start. */
ngi_run_metrics *ngi_run_metrics_start(ng_runtime *rt, const char *path, double interval,
                                       char *err, size_t errsize);
/* Stops the thread, writes the final figures; returns 0, or -1 with err set
 * when that write fails. Frees m. */
int ngi_run_metrics_stop(ngi_run_metrics *m, char *err, size_t errsize);
/* runtime:plot{path = path, connections = true} on the runtime at the top of
 * the stack, under ngi_run_docall; pops it. Returns the lua_pcall status. */
int ngi_run_plot(lua_State *L, const char *path);

/* ---- repl.c: the interactive loop ------------------------------------------ */

/* Reads, evaluates and prints lines from stdin until end of input. Lines are
 * compiled with the load mode `mode` (NULL: text or binary, "t": text only).
 * Adds 1 to *failures for each line that fails to compile, run or print, as
 * it happens (an os.exit in a later line sees it): a session that is saved
 * (--world) must not hide a failed line. */
void ngi_run_repl(lua_State *L, const char *mode, int *failures);

#endif /* NGRUN_H */

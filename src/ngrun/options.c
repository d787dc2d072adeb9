/* ngrun's command line: the options of the stock lua host plus neurograph's long options. */
#include "ngrun.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The longest accepted --timeout: far beyond any script, far below timer overflow. */
#define NGI_RUN_MAX_SECONDS 1e7

void ngi_run_usage(FILE *out) {
  fputs("usage: " NGI_RUN_NAME " [options] [script [args]]\n"
        "Runs Lua 5.4 scripts against a neurograph runtime, found in the global 'runtime';\n"
        "require \"neurograph\" is built in.\n"
        "Available options are:\n"
        "  -e stat            execute string 'stat'\n"
        "  -i                 enter interactive mode after executing 'script'\n"
        "  -l mod             require library 'mod' into global 'mod'\n"
        "  -l g=mod           require library 'mod' into global 'g'\n"
        "  -v                 show version information\n"
        "  -E                 ignore environment variables (LUA_INIT, LUA_PATH, LUA_CPATH)\n"
        "  -W                 turn warnings on\n"
        "  --mem-limit=SIZE   cap the memory of the Lua state and of every runtime in it\n"
        "                     (the global one, and those the script creates or loads) at\n"
        "                     SIZE bytes in all (decimal; suffixes K, M, G); past it the\n"
        "                     script gets \"not enough memory\"\n"
        "  --timeout=SECONDS  stop each chunk (the script, each -e and -l, each REPL line)\n"
        "                     after SECONDS of wall time (decimal, fractions allowed); the\n"
        "                     finalizers run at exit get SECONDS too, then ngrun is killed\n"
        "  --sandbox          run untrusted code: only the base library (without dofile,\n"
        "                     loadfile and binary chunks), string, table, math, utf8,\n"
        "                     coroutine, os.time/clock/date and require of built-in modules\n"
        "                     (neurograph, without rt:save and ng.load); implies -E\n"
        "  --world=DIR        open the durable world in directory DIR (created if\n"
        "                     missing) as the runtime: every commit is journaled before it\n"
        "                     returns, so a script killed at any point keeps everything it\n"
        "                     committed\n"
        "  --sync=MODE        with --world: when the journal is fsynced: batch (every\n"
        "                     100 ms, the default), always (every commit) or off\n"
        "  --checkpoint-on-exit\n"
        "                     with --world: write a new snapshot of the world at exit (the\n"
        "                     next open replays nothing)\n"
        "  --load=FILE        start from the snapshot FILE (it must exist)\n"
        "  --save=FILE        save the runtime to FILE, atomically, if everything ran without\n"
        "                     error\n"
        "  --metrics=FILE[:SECONDS]\n"
        "                     write the host runtime's metrics (Prometheus text format) to\n"
        "                     FILE at the start, every SECONDS if given, and at the end,\n"
        "                     each time atomically (node_exporter's textfile collector)\n"
        "  --plot=FILE        after the script, draw the host runtime's L1 space (x, y) as\n"
        "                     an SVG picture in FILE\n"
        "  --help             show this help and exit\n"
        "  --                 stop handling options\n"
        "  -                  stop handling options and execute stdin\n"
        "With no script, ngrun starts the REPL when stdin is a terminal and otherwise runs\n"
        "stdin as a script; -i with no script reads a REPL from stdin even when it is not a\n"
        "terminal.\n"
        "A snapshot or world that cannot be loaded (missing for --load, corrupt, newer\n"
        "format) stops ngrun before anything runs and leaves the files untouched; so does a\n"
        "--save FILE that cannot be written (a missing or read-only directory, a directory\n"
        "or FIFO at FILE). What is saved is the Runtime in the global 'runtime' at the end\n"
        "(a script may replace it; anything else there is an error and nothing is saved).\n"
        "\"Everything ran without error\" includes every REPL line (-i): one that fails or\n"
        "times out means no save and exit status 1. os.exit(0), os.exit(true) and\n"
        "os.exit() end like the end of the script (finalizers, then the save); os.exit\n"
        "with another code exits with it and saves nothing. A save that fails (e.g. a\n"
        "file-size limit) says that the world was not saved and why, and leaves no\n"
        "temporary file.\n",
        out);
}

/* The length of the decimal number at the start of s (digits with an
 * optional fraction and exponent: "12", "1.5", ".5", "2e3"), 0 if there is
 * none. strtod alone would also take "0x10", "inf" and "nan". */
static size_t decimal_len(const char *s) {
  size_t n = strspn(s, "0123456789"), digits = n;
  if (s[n] == '.') {
    size_t frac = strspn(s + n + 1, "0123456789");
    digits += frac;
    n += 1 + frac;
  }
  if (digits == 0) return 0;
  if (s[n] == 'e' || s[n] == 'E') {
    size_t sign = s[n + 1] == '+' || s[n + 1] == '-';
    size_t exp = strspn(s + n + 1 + sign, "0123456789");
    if (exp > 0) n += 1 + sign + exp;
  }
  return n;
}

int ngi_run_parse_size(const char *s, size_t *out) {
  char *end;
  double v, mul = 1;
  size_t len = decimal_len(s);
  if (len == 0) return -1;
  errno = 0;
  v = strtod(s, &end);
  if (errno != 0 || end != s + len || !isfinite(v)) return -1;
  switch (*end) {
  case 'k':
  case 'K':
    mul = 1024.0;
    end++;
    break;
  case 'm':
  case 'M':
    mul = 1024.0 * 1024.0;
    end++;
    break;
  case 'g':
  case 'G':
    mul = 1024.0 * 1024.0 * 1024.0;
    end++;
    break;
  default:
    break;
  }
  if (mul > 1 && end[0] == 'i' && end[1] == 'B')
    end += 2;
  else if (end[0] == 'B')
    end++;
  if (*end != '\0') return -1;
  v *= mul;
  /* Below 1 byte is no cap at all; at or past SIZE_MAX cannot be represented. */
  if (v < 1 || v >= (double)SIZE_MAX) return -1;
  *out = (size_t)v;
  return 0;
}

int ngi_run_parse_seconds(const char *s, double *out) {
  char *end;
  double v;
  size_t len = decimal_len(s);
  if (len == 0 || s[len] != '\0') return -1;
  errno = 0;
  v = strtod(s, &end);
  if (errno != 0 || end != s + len || !isfinite(v)) return -1;
  if (v <= 0 || v > NGI_RUN_MAX_SECONDS) return -1;
  *out = v;
  return 0;
}

/* A long option: its name, whether it takes a value, and how to apply it.
 * Adding one (e.g. a snapshot file) is one row and, if needed, one function. */
typedef struct long_option {
  const char *name;
  int takes_value;
  int (*apply)(ngi_run_options *o, const char *value, char *err, size_t errsize);
} long_option;

static int apply_help(ngi_run_options *o, const char *value, char *err, size_t errsize) {
  (void)value, (void)err, (void)errsize;
  o->flags |= NGI_RUN_HELP;
  return 0;
}

static int apply_sandbox(ngi_run_options *o, const char *value, char *err, size_t errsize) {
  (void)value, (void)err, (void)errsize;
  o->flags |= NGI_RUN_SANDBOX | NGI_RUN_NO_ENV;
  return 0;
}

static int apply_mem_limit(ngi_run_options *o, const char *value, char *err, size_t errsize) {
  if (ngi_run_parse_size(value, &o->mem_limit) == 0) return 0;
  snprintf(err, errsize, "bad value '%s' for --mem-limit (expected a size such as 64M)", value);
  return -1;
}

static int apply_timeout(ngi_run_options *o, const char *value, char *err, size_t errsize) {
  if (ngi_run_parse_seconds(value, &o->timeout) == 0) return 0;
  snprintf(err, errsize, "bad value '%s' for --timeout (expected a number of seconds such as 2.5)",
           value);
  return -1;
}

/* --world/--load: one source at most; --save: one destination at most. */
static int apply_world(ngi_run_options *o, const char *value, char *err, size_t errsize) {
  if (o->load_path || o->world_path || value[0] == '\0') {
    snprintf(err, errsize, "'--world' needs one DIR and cannot be combined with '--load'");
    return -1;
  }
  o->world_path = value;
  return 0;
}

static int apply_sync(ngi_run_options *o, const char *value, char *err, size_t errsize) {
  static const char *const modes[] = {"batch", "always", "off"}; /* ng_sync_mode order */
  for (int m = 0; m < 3; m++)
    if (strcmp(value, modes[m]) == 0) {
      o->sync = m;
      return 0;
    }
  snprintf(err, errsize, "bad value '%s' for --sync (expected batch, always or off)", value);
  return -1;
}

static int apply_checkpoint_on_exit(ngi_run_options *o, const char *value, char *err,
                                    size_t errsize) {
  (void)value, (void)err, (void)errsize;
  o->checkpoint_on_exit = 1;
  return 0;
}

static int apply_load(ngi_run_options *o, const char *value, char *err, size_t errsize) {
  if (o->load_path || o->world_path) {
    snprintf(err, errsize, "'--load' cannot be combined with '--world' or another '--load'");
    return -1;
  }
  o->load_path = value;
  return 0;
}

static int apply_save(ngi_run_options *o, const char *value, char *err, size_t errsize) {
  if (o->save_path) {
    snprintf(err, errsize, "'--save' cannot be combined with another '--save'");
    return -1;
  }
  o->save_path = value;
  return 0;
}

/* --metrics=FILE[:SECONDS]: a suffix ":SECONDS" that parses as seconds is the
 * interval; otherwise the whole value is the file. */
static int apply_metrics(ngi_run_options *o, const char *value, char *err, size_t errsize) {
  const char *colon = strrchr(value, ':');
  if (value[0] == '\0' || o->metrics_path) {
    snprintf(err, errsize, "'--metrics' needs one FILE[:SECONDS]");
    return -1;
  }
  o->metrics_path = value;
  if (colon && colon != value && ngi_run_parse_seconds(colon + 1, &o->metrics_interval) == 0) {
    size_t n = (size_t)(colon - value);
    o->metrics_owned = malloc(n + 1);
    if (!o->metrics_owned) {
      snprintf(err, errsize, "not enough memory");
      return -1;
    }
    memcpy(o->metrics_owned, value, n);
    o->metrics_owned[n] = '\0';
    o->metrics_path = o->metrics_owned;
  }
  return 0;
}

static int apply_plot(ngi_run_options *o, const char *value, char *err, size_t errsize) {
  if (value[0] == '\0') {
    snprintf(err, errsize, "'--plot' needs a FILE");
    return -1;
  }
  o->plot_path = value;
  return 0;
}

static const long_option long_options[] = {
    {"help", 0, apply_help},
    {"sandbox", 0, apply_sandbox},
    {"mem-limit", 1, apply_mem_limit},
    {"timeout", 1, apply_timeout},
    {"world", 1, apply_world},
    {"sync", 1, apply_sync},
    {"checkpoint-on-exit", 0, apply_checkpoint_on_exit},
    {"load", 1, apply_load},
    {"save", 1, apply_save},
    {"metrics", 1, apply_metrics},
    {"plot", 1, apply_plot},
};

/* Handles argv[*i] == "--name[=value]"; a value may also be the next argument.
 * Advances *i past a separate value. Returns 0, or -1 with err set. */
static int parse_long(char **argv, int *i, ngi_run_options *o, char *err, size_t errsize) {
  const char *arg = argv[*i] + 2;
  const char *eq = strchr(arg, '=');
  size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
  size_t k;
  for (k = 0; k < sizeof long_options / sizeof long_options[0]; k++) {
    const long_option *lo = &long_options[k];
    const char *value = NULL;
    if (strlen(lo->name) != len || strncmp(lo->name, arg, len) != 0) continue;
    if (lo->takes_value) {
      if (eq)
        value = eq + 1;
      else if (argv[*i + 1] != NULL)
        value = argv[++*i];
      else {
        snprintf(err, errsize, "'--%s' needs a value", lo->name);
        return -1;
      }
    } else if (eq) {
      snprintf(err, errsize, "'--%s' takes no value", lo->name);
      return -1;
    }
    return lo->apply(o, value, err, errsize);
  }
  snprintf(err, errsize, "unrecognized option '%s'", argv[*i]);
  return -1;
}

/* Mirrors collectargs of lua.c: options stop at the first non-option (the
 * script), at "--" and at "-". Short options may not be bundled. */
int ngi_run_parse_options(int argc, char **argv, ngi_run_options *o, char *err, size_t errsize) {
  int i;
  memset(o, 0, sizeof *o);
  o->sync = -1;
  if (argc < 1 || argv[0] == NULL) return 0;
  o->steps = malloc((size_t)argc * sizeof *o->steps);
  if (o->steps == NULL) {
    snprintf(err, errsize, "not enough memory");
    return -1;
  }
  for (i = 1; argv[i] != NULL; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {
      o->script = i;
      return 0;
    }
    switch (a[1]) {
    case '\0': /* "-": the script is stdin */
      o->script = i;
      o->flags |= NGI_RUN_STDIN_SCRIPT;
      return 0;
    case '-':
      if (a[2] == '\0') { /* "--": what follows is the script */
        o->script = argv[i + 1] != NULL ? i + 1 : 0;
        return 0;
      }
      if (parse_long(argv, &i, o, err, errsize) != 0) goto fail;
      break;
    case 'E':
    case 'W':
    case 'i':
    case 'v':
      if (a[2] != '\0') goto unknown;
      if (a[1] == 'E')
        o->flags |= NGI_RUN_NO_ENV;
      else if (a[1] == 'i')
        o->flags |= NGI_RUN_HAS_I | NGI_RUN_HAS_V;
      else if (a[1] == 'v')
        o->flags |= NGI_RUN_HAS_V;
      else
        o->steps[o->nsteps++] = (ngi_run_step){'W', NULL};
      break;
    case 'e':
    case 'l': {
      const char *value = a + 2;
      if (*value == '\0') {
        value = argv[i + 1];
        if (value == NULL || value[0] == '-') {
          snprintf(err, errsize, "'%s' needs argument", a);
          goto fail;
        }
        i++;
      }
      if (a[1] == 'e') o->flags |= NGI_RUN_HAS_E;
      o->steps[o->nsteps++] = (ngi_run_step){a[1], value};
      break;
    }
    default:
      goto unknown;
    }
  }
  return 0;
unknown:
  snprintf(err, errsize, "unrecognized option '%s'", argv[i]);
fail:
  ngi_run_options_free(o);
  return -1;
}

void ngi_run_options_free(ngi_run_options *o) {
  free(o->metrics_owned);
  o->metrics_owned = NULL;
  free(o->steps);
  o->steps = NULL;
  o->nsteps = 0;
}

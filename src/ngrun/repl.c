/* ngrun's interactive loop (read, evaluate, print), as in lua.c, with readline on terminals. */
#include "ngrun.h"

#include <lauxlib.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef NG_USE_READLINE
#include <readline/history.h>
#include <readline/readline.h>
#endif

#define NGI_RUN_PROMPT "> "
#define NGI_RUN_PROMPT2 ">> "
#define NGI_RUN_MAXINPUT 512 /* longest line read without readline */
#define NGI_RUN_EOFMARK "<eof>"

/* Whether readline edits the input: only on a terminal, so that a REPL fed
 * through a pipe reads plain lines (readline would echo them). */
static int use_readline(void) {
#ifdef NG_USE_READLINE
  return isatty(STDIN_FILENO);
#else
  return 0;
#endif
}

/* Pushes the next input line (without its newline). Returns 0 at end of input. */
static int read_line(lua_State *L, const char *prompt) {
#ifdef NG_USE_READLINE
  if (use_readline()) {
    char *line = readline(prompt);
    if (line == NULL) return 0;
    lua_pushstring(L, line);
    free(line);
    return 1;
  }
#endif
  {
    char buffer[NGI_RUN_MAXINPUT];
    luaL_Buffer b;
    size_t l;
    fputs(prompt, stdout);
    fflush(stdout);
    if (fgets(buffer, sizeof buffer, stdin) == NULL) return 0;
    luaL_buffinit(L, &b);
    /* a line longer than the buffer arrives in pieces */
    for (;;) {
      l = strlen(buffer);
      if (l > 0 && buffer[l - 1] == '\n') {
        luaL_addlstring(&b, buffer, l - 1);
        break;
      }
      luaL_addlstring(&b, buffer, l);
      if (fgets(buffer, sizeof buffer, stdin) == NULL) break;
    }
    luaL_pushresult(&b);
    return 1;
  }
}

#ifdef NG_USE_READLINE
/* The history file: $NGRUN_HISTORY, else ~/.ngrun_history; NULL without HOME. */
static const char *history_file(void) {
  static char path[4096];
  const char *env = getenv("NGRUN_HISTORY"), *home = getenv("HOME");
  if (env != NULL && env[0] != '\0') return env;
  if (home == NULL || home[0] == '\0') return NULL;
  snprintf(path, sizeof path, "%s/.ngrun_history", home);
  return path;
}
#endif

static void save_line(const char *line) {
#ifdef NG_USE_READLINE
  if (use_readline() && line[0] != '\0') {
    add_history(line);
    const char *file = history_file();
    /* Appended line by line, so a session that ends abruptly keeps its history. */
    if (file != NULL && append_history(1, file) != 0) {
      FILE *f = fopen(file, "a"); /* append_history needs the file to exist */
      if (f != NULL) fclose(f);
      (void)append_history(1, file);
    }
  }
#else
  (void)line;
#endif
}

#ifdef NG_USE_READLINE
/* ---- tab completion: globals, and fields of tables (and of values whose
 * metatable's __index is a table) along a dotted path such as ng.util.pr ---- */

static lua_State *completion_state; /* the REPL's state while readline runs */

/* readline's generator: the next name that extends `text`. Each call walks
 * the candidates again from the start (state 0 resets), skipping `state`
 * matches: simple, and completion lists are short. */
static char *complete_name(const char *text, int state) {
  lua_State *L = completion_state;
  int top = lua_gettop(L);
  const char *sep = NULL;
  for (const char *p = text; *p; p++)
    if (*p == '.' || *p == ':') sep = p;
  const char *word = sep ? sep + 1 : text;
  size_t wlen = strlen(word), plen = sep ? (size_t)(sep - text) + 1 : 0;
  lua_pushglobaltable(L);
  if (sep != NULL) { /* walk the path before the last separator */
    const char *p = text;
    while (p < sep) {
      size_t n = strcspn(p, ".:");
      if (n > (size_t)(sep - p)) n = (size_t)(sep - p);
      if (!lua_istable(L, -1)) {
        lua_settop(L, top);
        return NULL;
      }
      lua_pushlstring(L, p, n);
      lua_rawget(L, -2);
      lua_remove(L, -2);
      p += n + 1;
    }
  }
  if (!lua_istable(L, -1)) { /* a userdata: its methods, when __index is a table */
    if (!lua_getmetatable(L, -1) || lua_getfield(L, -1, "__index") != LUA_TTABLE) {
      lua_settop(L, top);
      return NULL;
    }
  }
  int seen = 0;
  char *match = NULL;
  lua_pushnil(L);
  while (match == NULL && lua_next(L, -2) != 0) {
    size_t klen;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tolstring(L, -2, &klen);
      if (klen >= wlen && strncmp(k, word, wlen) == 0 && seen++ == state) {
        match = malloc(plen + klen + 1);
        if (match != NULL) {
          memcpy(match, text, plen);
          memcpy(match + plen, k, klen + 1);
        }
      }
    }
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  return match;
}

static char **complete(const char *text, int start, int end) {
  (void)start, (void)end;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  return rl_completion_matches(text, complete_name);
}
#endif

/* The prompt: the globals _PROMPT / _PROMPT2 when set, as in lua.c. Leaves it on the stack. */
static const char *get_prompt(lua_State *L, int firstline) {
  if (lua_getglobal(L, firstline ? "_PROMPT" : "_PROMPT2") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushstring(L, firstline ? NGI_RUN_PROMPT : NGI_RUN_PROMPT2);
    return lua_tostring(L, -1);
  }
  {
    const char *p = luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);
    return p;
  }
}

/* A syntax error at <eof> means the statement continues on the next line. */
static int incomplete(lua_State *L, int status) {
  if (status == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    size_t marklen = sizeof NGI_RUN_EOFMARK - 1;
    if (lmsg >= marklen && strcmp(msg + lmsg - marklen, NGI_RUN_EOFMARK) == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

/* Pushes a line; "=expr" on the first line is the old "return expr". */
static int push_line(lua_State *L, int firstline) {
  const char *prompt = get_prompt(L, firstline);
  int ok = read_line(L, prompt);
  if (!ok) {
    lua_pop(L, 1);
    return 0;
  }
  lua_remove(L, -2); /* the prompt */
  if (firstline && lua_tostring(L, -1)[0] == '=') {
    lua_pushfstring(L, "return %s", lua_tostring(L, -1) + 1);
    lua_remove(L, -2);
  }
  return 1;
}

/* Tries the line as an expression ("return line;") so the REPL prints values. */
static int add_return(lua_State *L, const char *mode) {
  const char *line = lua_tostring(L, -1);
  const char *retline = lua_pushfstring(L, "return %s;", line);
  int status = luaL_loadbufferx(L, retline, strlen(retline), "=stdin", mode);
  if (status == LUA_OK) {
    lua_remove(L, -2);
    save_line(line);
  } else {
    lua_pop(L, 2);
  }
  return status;
}

/* Reads more lines while the statement is incomplete. */
static int multi_line(lua_State *L, const char *mode) {
  for (;;) {
    size_t len;
    const char *line = lua_tolstring(L, 1, &len);
    int status = luaL_loadbufferx(L, line, len, "=stdin", mode);
    if (!incomplete(L, status) || !push_line(L, 0)) {
      save_line(line);
      return status;
    }
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);
  }
}

/* Leaves one compiled chunk (or an error message) on an empty stack.
 * Returns its load status, or -1 at end of input. */
static int load_line(lua_State *L, const char *mode) {
  int status;
  lua_settop(L, 0);
  if (!push_line(L, 1)) return -1;
  if ((status = add_return(L, mode)) != LUA_OK) status = multi_line(L, mode);
  lua_remove(L, 1);
  return status;
}

/* Renders every value on the stack readably in place: ng.observe.show (tokens
 * as "Token 12 {L1 = (1, 2, 3), weight = 0.5}", tables through
 * ng.util.pretty). Runs as Lua: a value's __tostring is script code. */
static int show_all(lua_State *L) {
  int n = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "neurograph");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "observe");
  lua_getfield(L, -1, "show"); /* stack: values..., ng, observe, show */
  for (int i = 1; i <= n; i++) {
    lua_pushvalue(L, -1);
    lua_pushvalue(L, i);
    lua_call(L, 1, 1);
    lua_replace(L, i);
  }
  lua_pop(L, 3);
  return n;
}

/* Prints the values left on the stack, readably (show_all), with the global
 * print, under the guards. Returns the call's status. */
static int print_results(lua_State *L) {
  int n = lua_gettop(L);
  if (n == 0) return LUA_OK;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  lua_pushcfunction(L, show_all);
  lua_insert(L, 1);
  if (ngi_run_docall(L, n, LUA_MULTRET) != LUA_OK) {
    lua_pushfstring(L, "error showing the results (%s)", lua_tostring(L, -1));
    lua_remove(L, -2);
    return ngi_run_report(L, LUA_ERRRUN, NULL);
  }
  n = lua_gettop(L);
  lua_getglobal(L, "print");
  lua_insert(L, 1);
  if (ngi_run_docall(L, n, 0) != LUA_OK) {
    lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1));
    lua_remove(L, -2);
    return ngi_run_report(L, LUA_ERRRUN, NULL);
  }
  return LUA_OK;
}

/* `ng` is the neurograph module in the REPL (unless the script set it). */
static int define_ng(lua_State *L) {
  if (lua_getglobal(L, "ng") == LUA_TNIL) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "neurograph");
    lua_call(L, 1, 1);
    lua_setglobal(L, "ng");
  }
  return 0;
}

void ngi_run_repl(lua_State *L, const char *mode, int *failures) {
  int status;
  lua_pushcfunction(L, define_ng);
  if (ngi_run_docall(L, 0, 0) != LUA_OK) ngi_run_report(L, LUA_ERRRUN, NULL);
#ifdef NG_USE_READLINE
  rl_readline_name = NGI_RUN_NAME;
  completion_state = L;
  rl_attempted_completion_function = complete;
  rl_completer_word_break_characters = " \t\n\"'()[]{},;=+-*/%^#<>~|&";
  if (use_readline() && history_file() != NULL) (void)read_history(history_file());
#endif
  while ((status = load_line(L, mode)) != -1) {
    if (status == LUA_OK) status = ngi_run_docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK)
      status = print_results(L);
    else
      ngi_run_report(L, status, NULL);
    if (status != LUA_OK) ++*failures;
  }
  lua_settop(L, 0);
  fputs("\n", stdout);
  fflush(stdout);
}

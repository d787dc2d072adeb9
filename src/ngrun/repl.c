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

static void save_line(const char *line) {
#ifdef NG_USE_READLINE
  if (use_readline() && line[0] != '\0') add_history(line);
#else
  (void)line;
#endif
}

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

/* Prints the values left on the stack with the global print, under the
 * guards: a __tostring in Lua is script code too. Returns the call's status. */
static int print_results(lua_State *L) {
  int n = lua_gettop(L);
  if (n == 0) return LUA_OK;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  lua_getglobal(L, "print");
  lua_insert(L, 1);
  if (ngi_run_docall(L, n, 0) != LUA_OK) {
    lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1));
    lua_remove(L, -2);
    return ngi_run_report(L, LUA_ERRRUN, NULL);
  }
  return LUA_OK;
}

void ngi_run_repl(lua_State *L, const char *mode, int *failures) {
  int status;
#ifdef NG_USE_READLINE
  rl_readline_name = NGI_RUN_NAME;
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

/* What stops a script: the memory cap allocator, the timeout hooks and Ctrl-C. */
#include "ngrun.h"

#include <lauxlib.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Instructions between two clock reads while the deadline is still ahead. */
#define NGI_RUN_CHECK_EVERY 1000

/* Signal handlers can reach the state only through globals (as lua.c's
 * globalL): the state of the current guarded call, and the two shots of the
 * watchdog timer. */
static lua_State *volatile guard_L = NULL;
static volatile sig_atomic_t interrupted = 0;
static volatile sig_atomic_t alarm_shots = 0;
static char stuck_message[128];
static size_t stuck_len = 0;
static struct sigaction old_alarm;

void *ngi_run_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  ngi_run_limits *lim = ud;
  size_t old = ptr != NULL ? osize : 0; /* with ptr == NULL, osize is a type tag */
  void *p;
  if (nsize == 0) {
    free(ptr);
    lim->mem_used = old < lim->mem_used ? lim->mem_used - old : 0;
    return NULL;
  }
  /* mem_used never exceeds mem_limit, so the subtraction cannot wrap. */
  if (lim->mem_limit != 0 && nsize > old && nsize - old > lim->mem_limit - lim->mem_used)
    return NULL;
  p = realloc(ptr, nsize);
  if (p == NULL) return NULL;
  lim->mem_used = (old < lim->mem_used ? lim->mem_used - old : 0) + nsize;
  return p;
}

void ngi_run_limits_attach(lua_State *L, ngi_run_limits *lim) {
  /* New coroutines copy the main thread's extra space, so every thread finds it. */
  memcpy(lua_getextraspace(L), &lim, sizeof lim);
}

static ngi_run_limits *limits_of(lua_State *L) {
  ngi_run_limits *lim;
  memcpy(&lim, lua_getextraspace(L), sizeof lim);
  return lim;
}

static double monotonic_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void guard_hook(lua_State *L, lua_Debug *ar);

/* The hook of a call that still has time: cheap, a clock read every N instructions. */
static void arm_normal_hook(lua_State *L, const ngi_run_limits *lim) {
  if (lim != NULL && lim->timeout > 0)
    lua_sethook(L, guard_hook, LUA_MASKCOUNT, NGI_RUN_CHECK_EVERY);
  else
    lua_sethook(L, NULL, 0, 0);
}

/* Raises "interrupted!" after Ctrl-C, and the timeout once the deadline has
 * passed. After expiry the hook fires on every instruction and every line and
 * raises each time, so a pcall that catches the error fails again at its next
 * instruction; an error handler in Lua fails the same way, which Lua bounds
 * ("error in error handling"), so it cannot loop either. */
static void guard_hook(lua_State *L, lua_Debug *ar) {
  ngi_run_limits *lim = limits_of(L);
  (void)ar;
  if (interrupted) {
    interrupted = 0;
    arm_normal_hook(L, lim);
    if (lim != NULL) lim->raising = 1;
    luaL_error(L, "interrupted!");
    return;
  }
  if (lim == NULL || lim->timeout <= 0) {
    lua_sethook(L, NULL, 0, 0);
    return;
  }
  if (!lim->expired) {
    if (monotonic_now() < lim->deadline) {
      /* a coroutine left in the eager mode by an earlier call: calm it down */
      if (lua_gethookmask(L) != LUA_MASKCOUNT) arm_normal_hook(L, lim);
      return;
    }
    lim->expired = 1;
  }
  lim->raising = 1;
  lua_sethook(L, guard_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
  lua_pushfstring(L, "script timed out after %f s", (lua_Number)lim->timeout);
  lua_error(L);
}

/* Ctrl-C: like lua.c, hook the next instruction, call or return; a second
 * Ctrl-C before that (e.g. stuck in a C function) kills the process. */
static void on_sigint(int sig) {
  signal(sig, SIG_DFL);
  interrupted = 1;
  if (guard_L != NULL)
    lua_sethook(guard_L, guard_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

/* The watchdog. First shot, at the deadline: hook the next instruction at
 * once instead of waiting for the next count. Second shot, half the budget
 * later: the script is stuck where hooks do not run (a C function such as a
 * pathological string.find, or a __gc finalizer), so end the process. */
static void on_sigalrm(int sig) {
  (void)sig;
  if (alarm_shots++ == 0) {
    if (guard_L != NULL) lua_sethook(guard_L, guard_hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
    return;
  }
  if (write(STDERR_FILENO, stuck_message, stuck_len) < 0) { /* nothing more to do */
  }
  _exit(EXIT_FAILURE);
}

/* A timer value of at least one microsecond (zero would disarm the timer). */
static struct timeval to_timeval(double seconds) {
  struct timeval tv;
  tv.tv_sec = (time_t)seconds;
  tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
  if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1;
  return tv;
}

/* The watchdog's last words, formatted now: a signal handler may not format. */
static void prepare_stuck_message(const char *what, double timeout, const char *why) {
  int n = snprintf(stuck_message, sizeof stuck_message, NGI_RUN_NAME ": %s after %g s (%s)\n",
                   what, timeout, why);
  if (n < 0) n = 0;
  stuck_len = (size_t)n < sizeof stuck_message ? (size_t)n : sizeof stuck_message - 1;
}

int ngi_run_hook_raised(lua_State *L) {
  ngi_run_limits *lim = limits_of(L);
  if (lim == NULL) return 0;
  if (lim->expired) return 1;
  if (lim->raising) {
    lim->raising = 0;
    return 1;
  }
  return 0;
}

void ngi_run_guard_begin(lua_State *L) {
  ngi_run_limits *lim = limits_of(L);
  struct sigaction sa;
  guard_L = L;
  interrupted = 0;
  if (lim != NULL) lim->raising = 0;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  if (lim == NULL || lim->timeout <= 0) return;
  lim->expired = 0;
  lim->deadline = monotonic_now() + lim->timeout;
  arm_normal_hook(L, lim);
  prepare_stuck_message("script timed out", lim->timeout, "stuck outside Lua code; killed");
  alarm_shots = 0;
  sa.sa_handler = on_sigalrm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, &old_alarm);
  /* The second shot comes from it_interval: half the budget after the first. */
  {
    struct itimerval it;
    it.it_value = to_timeval(lim->timeout);
    it.it_interval = to_timeval(lim->timeout / 2);
    setitimer(ITIMER_REAL, &it, NULL);
  }
}

void ngi_run_guard_end(lua_State *L) {
  ngi_run_limits *lim = limits_of(L);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  interrupted = 0;
  if (lim != NULL && lim->timeout > 0) {
    struct itimerval off;
    memset(&off, 0, sizeof off);
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old_alarm, NULL);
    lua_sethook(L, NULL, 0, 0);
  }
  guard_L = NULL;
}

void ngi_run_close(lua_State *L) {
  ngi_run_limits *lim = limits_of(L);
  int armed = lim != NULL && lim->timeout > 0;
  if (armed) {
    struct sigaction sa;
    struct itimerval it;
    prepare_stuck_message("finalizers at exit timed out", lim->timeout, "killed");
    alarm_shots = 1; /* no hook can stop a finalizer: the first shot kills */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigalrm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, &old_alarm);
    memset(&it, 0, sizeof it);
    it.it_value = to_timeval(lim->timeout);
    setitimer(ITIMER_REAL, &it, NULL);
  }
  lua_close(L);
  if (armed) {
    struct itimerval off;
    memset(&off, 0, sizeof off);
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old_alarm, NULL);
  }
}

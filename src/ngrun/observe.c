/* ngrun --metrics (a thread that keeps a Prometheus textfile up to date) and --plot. */
#include "ngrun.h"

#include "neurograph.h"

#include <lauxlib.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ngi_run_metrics {
  ng_runtime *rt; /* retained */
  const char *path;
  double interval;
  pthread_t thread;
  int running; /* the thread was started */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop; /* under mu */
};

/* Writes the metrics text to a temporary file beside path and renames it
 * over path. Returns 0, or -1 with err set (no temporary file left). */
static int write_metrics(ng_runtime *rt, const char *path, char *err, size_t errsize) {
  size_t cap = 8192;
  char *text = NULL;
  size_t n;
  for (;;) {
    char *p = realloc(text, cap);
    if (!p) {
      free(text);
      snprintf(err, errsize, "%s: not enough memory", path);
      return -1;
    }
    text = p;
    n = ng_metrics_format(rt, text, cap);
    if (n < cap) break;
    cap = n + 1;
  }
  size_t tlen = strlen(path) + 32;
  char *tmp = malloc(tlen);
  int rc = -1;
  if (tmp) {
    snprintf(tmp, tlen, "%s.tmp-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int ok = f && fwrite(text, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    if (ok && rename(tmp, path) == 0) {
      rc = 0;
    } else {
      snprintf(err, errsize, "cannot write metrics to %s: %s", path, strerror(errno));
      remove(tmp);
    }
  } else {
    snprintf(err, errsize, "%s: not enough memory", path);
  }
  free(tmp);
  free(text);
  return rc;
}

static void *metrics_thread(void *arg) {
  ngi_run_metrics *m = arg;
  pthread_mutex_lock(&m->mu);
  while (!m->stop) {
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    double next = (double)at.tv_nsec / 1e9 + m->interval;
    at.tv_sec += (time_t)next;
    at.tv_nsec = (long)((next - (double)(time_t)next) * 1e9);
    if (pthread_cond_timedwait(&m->cv, &m->mu, &at) == ETIMEDOUT && !m->stop) {
      char err[256];
      pthread_mutex_unlock(&m->mu);
      /* A failed periodic write is said once per failure; the next may work. */
      if (write_metrics(m->rt, m->path, err, sizeof err) != 0)
        fprintf(stderr, NGI_RUN_NAME ": %s\n", err);
      pthread_mutex_lock(&m->mu);
    }
  }
  pthread_mutex_unlock(&m->mu);
  return NULL;
}

ngi_run_metrics *ngi_run_metrics_start(ng_runtime *rt, const char *path, double interval,
                                       char *err, size_t errsize) {
  if (write_metrics(rt, path, err, errsize) != 0) return NULL;
  ngi_run_metrics *m = calloc(1, sizeof *m);
  if (!m) {
    snprintf(err, errsize, "not enough memory");
    return NULL;
  }
  m->rt = ng_runtime_retain(rt);
  m->path = path;
  m->interval = interval;
  pthread_mutex_init(&m->mu, NULL);
  pthread_cond_init(&m->cv, NULL);
  if (interval > 0) {
    if (pthread_create(&m->thread, NULL, metrics_thread, m) != 0) {
      snprintf(err, errsize, "cannot start the metrics thread");
      ngi_run_metrics_stop(m, NULL, 0);
      return NULL;
    }
    m->running = 1;
  }
  return m;
}

int ngi_run_metrics_stop(ngi_run_metrics *m, char *err, size_t errsize) {
  if (m->running) {
    pthread_mutex_lock(&m->mu);
    m->stop = 1;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
  }
  int rc = err ? write_metrics(m->rt, m->path, err, errsize) : 0;
  pthread_cond_destroy(&m->cv);
  pthread_mutex_destroy(&m->mu);
  ng_runtime_release(m->rt);
  free(m);
  return rc;
}

int ngi_run_plot(lua_State *L, const char *path) {
  /* stack: ..., rt; then ..., plot, rt, options */
  lua_getfield(L, -1, "plot");
  lua_insert(L, -2);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, path);
  lua_setfield(L, -2, "path");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "connections");
  int status = ngi_run_docall(L, 2, 2);
  if (status != LUA_OK) return status;
  if (lua_isnil(L, -2)) { /* nil, message: the file could not be written */
    lua_pushfstring(L, "cannot plot to %s: %s", path, lua_tostring(L, -1));
    lua_replace(L, -3);
    lua_pop(L, 1);
    return LUA_ERRRUN;
  }
  lua_pop(L, 2);
  return LUA_OK;
}

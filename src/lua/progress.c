/* The progress bar of long saves, loads, exports and imports: one line on stderr, only when
 * stderr is a terminal and the operation has run longer than NG_PROGRESS_AFTER seconds. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, isatty */
#include "neurograph_lua.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Cells of the bar itself; the whole line stays well under 80 columns. */
enum { BAR_CELLS = 30 };

/* One thread's operation in progress. An operation never nests within
 * another on one thread (the callback must not call the runtime), so one
 * per thread is enough, and no lock is needed. */
typedef struct bar {
  double start, after; /* monotonic seconds; the threshold before drawing */
  int shown;           /* the operation may draw: stderr is a terminal */
  int width;           /* characters of the line drawn, 0 when none is */
  int percent;         /* of the line drawn */
} bar;

static _Thread_local bar current;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* NG_PROGRESS_AFTER: seconds (a number >= 0); unset or not such a number: 1. */
static double threshold(void) {
  const char *s = getenv("NG_PROGRESS_AFTER");
  char *end = NULL;
  double v = s ? strtod(s, &end) : -1;
  return s && end != s && *end == '\0' && v >= 0 ? v : 1.0;
}

void ng_lua_progress_end(void) {
  if (current.width > 0) fprintf(stderr, "\r%*s\r", current.width, "");
  current.width = 0;
  current.shown = 0;
}

/* "save [#########.....]  47%  1.5 of 3.2 MB": bytes for save and load,
 * records for export and import. */
static void draw(const char *what, uint64_t done, uint64_t total, int percent) {
  char cells[BAR_CELLS + 1];
  int full = percent * BAR_CELLS / 100;
  memset(cells, '#', (size_t)full);
  memset(cells + full, '.', (size_t)(BAR_CELLS - full));
  cells[BAR_CELLS] = '\0';
  char amount[64];
  if (strcmp(what, "save") == 0 || strcmp(what, "load") == 0)
    snprintf(amount, sizeof amount, "%.1f of %.1f MB", (double)done / 1e6, (double)total / 1e6);
  else
    snprintf(amount, sizeof amount, "%llu of %llu records", (unsigned long long)done,
             (unsigned long long)total);
  int n = fprintf(stderr, "\r%-6s [%s] %3d%%  %s", what, cells, percent, amount);
  if (n > 1 && n - 1 < current.width) /* a shorter line: clear what is left of the last */
    fprintf(stderr, "%*s", current.width - (n - 1), "");
  if (n - 1 > current.width) current.width = n - 1;
  current.percent = percent;
}

void ng_lua_progress(void *ud, const char *what, uint64_t done, uint64_t total) {
  (void)ud;
  if (done == total) { /* the end (an operation of 0 units also starts so: nothing to show) */
    ng_lua_progress_end();
    return;
  }
  if (done == 0) { /* a new operation (a bar left by a failed one goes first) */
    ng_lua_progress_end();
    current.start = now_s();
    current.after = threshold();
    current.shown = isatty(2);
    current.percent = -1;
  }
  if (!current.shown) return;
  if (now_s() - current.start < current.after) return;
  int percent = total ? (int)(done * 100 / total) : 0;
  if (percent != current.percent) draw(what, done, total, percent);
}

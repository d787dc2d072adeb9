/* Benchmark: the cost of the change feed on a frame of batch moves (issue 17).
 *
 * Usage: bench_events [--quick] [--n N] [--frames F]
 *
 * N tokens (default 100,000; 10,000 with --quick) placed in L1 move every frame by one
 * ng_token_update_batch (a game's tick), measured three ways in one run, each against the same
 * frames with ENABLE_EVENTS cleared:
 *   - one subscription on moves (drained after each frame; the drain is reported apart);
 *   - 1,000 trigger zones (spheres) and one subscription on enter/leave;
 * The frames with events on and off alternate, so that a change in the machine's load falls on
 * both alike. Each row prints the median frame time of both and their ratio; the bar is 1.5x. The
 * exit status is 2 when a bar fails (not with --quick: small sizes are noise), 1 on an error.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_time.h"
#include "neurograph.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BAR 1.5
#define ZONES 1000
#define MAX_FRAMES 64

static uint64_t seed = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
  seed ^= seed << 13;
  seed ^= seed >> 7;
  seed ^= seed << 17;
  return (uint32_t)(seed >> 32);
}

static void check(ng_status st, const char *what) {
  if (st == NG_OK) return;
  fprintf(stderr, "bench_events: %s: %s\n", what, ng_strerror(st));
  exit(1);
}

typedef struct world {
  ng_runtime *rt;
  size_t n;
  ng_id *ids;
  ng_token *vals; /* the positions of the next frame */
  ng_event *buf;  /* a subscriber's drain buffer */
} world;

static void set_events(world *w, bool on) {
  ng_cdna c;
  check(ng_cdna_get(w->rt, &c), "ng_cdna_get");
  if (on)
    c.flags |= NG_CDNA_ENABLE_EVENTS;
  else
    c.flags &= ~(uint32_t)NG_CDNA_ENABLE_EVENTS;
  check(ng_cdna_set(w->rt, &c), "ng_cdna_set");
}

/* Every token takes a step of up to 0.5 m per axis, staying within +-300 m (L1). */
static void next_positions(world *w) {
  for (size_t i = 0; i < w->n; i++) {
    int16_t p[3]; /* the record is packed */
    memcpy(p, w->vals[i].coords[NG_L1], sizeof p);
    for (int a = 0; a < 3; a++) {
      int v = p[a] + (int)(rnd() % 101) - 50;
      if (v > 30000 || v < -30000) v = -v / 2;
      p[a] = (int16_t)v;
    }
    memcpy(w->vals[i].coords[NG_L1], p, sizeof p);
  }
}

static size_t drain(world *w, ng_sub *sub) {
  size_t total = 0, n;
  do {
    check(ng_sub_poll(sub, w->buf, 4096, &n, NULL), "ng_sub_poll");
    total += n;
  } while (n > 0);
  return total;
}

/* One frame: the batch's time; *drain_s the drain's, *events how many it drained. */
static double frame(world *w, ng_sub *sub, double *drain_s, size_t *events) {
  next_positions(w);
  double t0 = now();
  check(ng_token_update_batch(w->rt, w->ids, w->vals, w->n, NG_TF_COORDS(NG_L1)), "batch");
  double t1 = now();
  *events = sub ? drain(w, sub) : 0;
  *drain_s = now() - t1;
  return t1 - t0;
}

/* count frames with events off and count with them on, alternating (so that
 * a change in the machine's load falls on both alike): the median frame time
 * of each (the batch alone), and the median drain and mean events of the
 * frames with events on. */
static void frames(world *w, int count, ng_sub *sub, double *off, double *on, double *drain_s,
                   double *events) {
  double t_off[MAX_FRAMES], t_on[MAX_FRAMES], d[MAX_FRAMES], ev = 0, unused;
  for (int f = 0; f < count; f++) {
    size_t n;
    set_events(w, false);
    t_off[f] = frame(w, NULL, &unused, &n);
    set_events(w, true);
    t_on[f] = frame(w, sub, &d[f], &n);
    ev += (double)n;
  }
  *off = median(t_off, count);
  *on = median(t_on, count);
  *drain_s = median(d, count);
  *events = ev / count;
}

static int row(const char *name, double on, double off, double drain_s, double events, bool judge) {
  double ratio = on / off;
  printf("%-44s %9.3f ms  off %9.3f ms  ratio %5.2fx  (drain %.3f ms, %.0f events/frame)\n", name,
         on * 1e3, off * 1e3, ratio, drain_s * 1e3, events);
  bool ok = ratio <= BAR;
  printf("bar: %s at most %.1fx events off: %s\n", name, BAR, ok ? "met" : "MISSED");
  return judge && !ok ? 2 : 0;
}

int main(int argc, char **argv) {
  bool quick = false;
  size_t n = 100000;
  int count = 21;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) {
      quick = true;
      n = 10000;
      count = 9;
    } else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
      n = (size_t)strtoull(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc) {
      count = atoi(argv[++i]);
    } else {
      fprintf(stderr, "usage: bench_events [--quick] [--n N] [--frames F]\n");
      return 1;
    }
  }
  if (count < 1 || count > MAX_FRAMES || n == 0) {
    fprintf(stderr, "bench_events: frames must be 1..%d and n > 0\n", MAX_FRAMES);
    return 1;
  }
  world w = {0};
  w.n = n;
  check(ng_runtime_new(NULL, &w.rt), "ng_runtime_new");
  w.ids = malloc(n * sizeof *w.ids);
  w.vals = malloc(n * sizeof *w.vals);
  w.buf = malloc(4096 * sizeof *w.buf);
  if (!w.ids || !w.vals || !w.buf) return 1;
  for (size_t i = 0; i < n; i++) {
    ng_token_init(&w.vals[i]);
    for (int a = 0; a < 3; a++)
      w.vals[i].coords[NG_L1][a] = (int16_t)((int)(rnd() % 60001) - 30000);
    check(ng_token_create(w.rt, &w.vals[i], NG_TF_COORDS(NG_L1), &w.ids[i]), "ng_token_create");
  }
  printf("== bench_events: %zu tokens in L1, a frame moves them all in one batch, median of %d\n",
         n, count);
  int status = 0;

  /* one subscriber on moves */
  ng_sub_filter f = {.kinds = 1u << NG_EV_MOVE, .cap = 2 * n};
  ng_sub *sub = NULL;
  check(ng_sub_open(w.rt, &f, &sub), "ng_sub_open");
  double off, on, drain_s, events;
  frames(&w, 2, sub, &off, &on, &drain_s, &events); /* warm: the queue and buffers grow */
  frames(&w, count, sub, &off, &on, &drain_s, &events);
  status |= row("frame, one subscriber on moves", on, off, drain_s, events, !quick);
  ng_sub_close(sub);

  /* 1,000 zones (spheres of 10 m over the +-300 m cube) and a subscriber on their events */
  for (int z = 0; z < ZONES; z++) {
    ng_zone_spec s = {.space = NG_L1, .shape = NG_ZONE_SPHERE, .radius = 10, .entity = -1};
    for (int a = 0; a < 3; a++)
      s.center[a] = (double)((int)(rnd() % 601) - 300);
    check(ng_zone_add(w.rt, &s, NULL), "ng_zone_add");
  }
  ng_sub_filter fz = {.kinds = 1u << NG_EV_ENTER | 1u << NG_EV_LEAVE, .cap = 2 * n};
  check(ng_sub_open(w.rt, &fz, &sub), "ng_sub_open");
  frames(&w, 2, sub, &off, &on, &drain_s, &events);
  frames(&w, count, sub, &off, &on, &drain_s, &events);
  status |= row("frame, 1,000 trigger zones", on, off, drain_s, events, !quick);
  ng_sub_close(sub);

  ng_runtime_release(w.rt);
  free(w.ids);
  free(w.vals);
  free(w.buf);
  return status;
}

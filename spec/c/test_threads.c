/* Stress: 4 threads mixing writes and reads on one runtime, then the invariants (TSan in CI). */
#include "internal.h"
#include "test.h"

#include <pthread.h>
#include <time.h>

enum { THREADS = 4, MAX_OPS = 400000, SOFT_LIVE = 1500 };

typedef struct worker {
  ng_runtime *rt;
  int index;
  double deadline;
  unsigned long ops;
  unsigned long errors; /* unexpected outcomes; CHECK is not thread-safe */
  char first_error[200];
} worker;

static void fail(worker *w, const char *what, int status) {
  if (w->errors++ == 0)
    snprintf(w->first_error, sizeof w->first_error, "thread %d: %s: status %d (%s)", w->index, what,
             status, ng_last_error(w->rt));
}

static float coord(uint64_t *s, float span) {
  return ((float)(ngt_rnd(s) % 20001u) / 10000.0f - 1.0f) * span;
}

typedef struct each_ctx {
  worker *w;
  size_t n;
} each_ctx;

/* Under the read lock nothing changes: every visited token is readable. */
static bool each_cb(const ng_token *tok, ng_id id, void *ud) {
  each_ctx *c = ud;
  ng_token t;
  ng_status st = ng_token_get(c->w->rt, id, &t);
  if (st != NG_OK || memcmp(&t, tok, sizeof t) != 0) fail(c->w, "get inside each", st);
  c->n++;
  return c->n < 200;
}

/* Hits are well-formed ids, nearest first, ties by ascending id. (Other threads create while
 * the query runs, and slot reuse moves ids a generation up, so no tighter bound holds.) */
static int sorted_hits(const ng_hits *h) {
  for (size_t i = 0; i < h->count; i++) {
    if (h->items[i].id == 0 || h->items[i].id > NG_ID_MAX) return 0;
    if (i > 0) {
      const ng_hit *a = &h->items[i - 1], *b = &h->items[i];
      if (a->distance > b->distance || (a->distance == b->distance && a->id >= b->id)) return 0;
    }
  }
  return 1;
}

static void *work(void *arg) {
  worker *w = arg;
  ng_runtime *rt = w->rt;
  uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(w->index + 1);
  ng_hits hits = {0};
  while (w->ops < MAX_OPS && (w->ops % 64 != 0 || ngt_now_s() < w->deadline)) {
    w->ops++;
    ng_stats stats;
    ng_runtime_stats(rt, &stats);
    ng_id top = stats.next_token_id;
    ng_id pick = 1 + ngt_rnd(&s) % top;
    /* Updates, links and (when the store is full) deletes aim at a live token
     * chosen uniformly (it may still go before we use it). */
    ng_id live = pick, to = pick;
    size_t got = 0;
    if (stats.tokens > 0) {
      ng_token_list(rt, ngt_rnd(&s) % stats.tokens, 1, &live, &got);
      ng_token_list(rt, ngt_rnd(&s) % stats.tokens, 1, &to, &got);
    }
    unsigned op = ngt_rnd(&s) % 100;
    if (stats.tokens > SOFT_LIVE && op < 40) op += 40; /* drift towards deletes */
    ng_status st;
    if (op < 30) {
      ng_token t;
      ng_token_init(&t);
      ng_token_set_coords(&t, NG_L1, coord(&s, 300), coord(&s, 300), coord(&s, 300));
      ng_token_set_coords(&t, NG_L4, coord(&s, 3), coord(&s, 3), coord(&s, 3));
      t.weight = (float)(ngt_rnd(&s) % 100);
      ng_id id;
      st = ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id);
      if (st != NG_OK) fail(w, "create", st);
    } else if (op < 45) {
      ng_token v;
      ng_token_init(&v);
      ng_token_set_coords(&v, NG_L1, coord(&s, 300), coord(&s, 300), coord(&s, 300));
      ng_token_set_coords(&v, NG_L4, coord(&s, 3), 0, 0);
      v.weight = 2.0f;
      st = ng_token_update(rt, live, &v, NG_TF_COORDS(NG_L1) | NG_TF_COORDS(NG_L4) | NG_TF_WEIGHT);
      if (st != NG_OK && st != NG_ENOTFOUND) fail(w, "update", st);
    } else if (op < 60) {
      st = ng_token_delete(rt, stats.tokens > SOFT_LIVE ? live : pick, NULL);
      if (st != NG_OK && st != NG_ENOTFOUND) fail(w, "delete", st);
    } else if (op < 72) {
      ng_connection c;
      ng_connection_init(&c);
      ng_connection_set_type(&c, ngt_rnd(&s) % 4);
      ng_id cid;
      st = ng_connection_create(rt, live, to, &c, &cid);
      /* EINVAL: an endpoint is missing (or from == to); EEXIST: duplicate */
      if (st != NG_OK && st != NG_EINVAL && st != NG_EEXIST && st != NG_ELIMIT)
        fail(w, "connection_create", st);
    } else if (op < 77) {
      ng_id cid = 1 + ngt_rnd(&s) % (stats.next_connection_id ? stats.next_connection_id : 1);
      st = ng_connection_delete(rt, cid);
      if (st != NG_OK && st != NG_ENOTFOUND) fail(w, "connection_delete", st);
    } else if (op < 87) {
      float ctr[3] = {coord(&s, 300), coord(&s, 300), coord(&s, 300)};
      if (op % 2)
        st = ng_grid_range(rt, NG_L1, ctr, 60.0f, 0, NULL, &hits);
      else
        st = ng_grid_nearest(rt, NG_L1, ctr, 8, NULL, &hits);
      if (st != NG_OK)
        fail(w, "query", st);
      else if (!sorted_hits(&hits))
        fail(w, "query order", 0);
    } else if (op < 92) {
      st = ng_grid_neighbors(rt, pick, NG_L4, 0.5f, 16, NULL, &hits);
      if (st != NG_OK && st != NG_ENOTFOUND) fail(w, "neighbors", st);
    } else if (op < 96) {
      each_ctx c = {w, 0};
      st = ng_token_each(rt, each_cb, &c);
      if (st != NG_OK) fail(w, "each", st);
    } else {
      ng_id ids[32], cur = 0;
      size_t n;
      st = ng_token_list(rt, ngt_rnd(&s) % 100, 32, ids, &n);
      if (st != NG_OK) fail(w, "list", st);
      for (size_t i = 1; i < n; i++)
        if (ids[i - 1] >= ids[i]) fail(w, "list order", 0);
      for (int i = 0; i < 16 && ng_token_next(rt, cur, &cur) == NG_OK; i++) {
      }
    }
  }
  ng_hits_free(rt, &hits);
  return NULL;
}

/* Every connection's endpoints are live tokens, and the record holds their slots. */
static bool conn_cb(const ng_connection *c, ng_id id, void *ud) {
  ng_runtime *rt = ud;
  ng_token t;
  ng_id from = 0, to = 0;
  CHECK_STATUS(ng_connection_ends(rt, id, &from, &to), NG_OK);
  CHECK_STATUS(ng_token_get(rt, from, &t), NG_OK);
  CHECK_STATUS(ng_token_get(rt, to, &t), NG_OK);
  CHECK_EQ_INT(c->token_a_id, NG_TOKEN_SLOT(from));
  CHECK_EQ_INT(c->token_b_id, NG_TOKEN_SLOT(to));
  return true;
}

static void check_invariants(ng_runtime *rt) {
  size_t count = ng_token_count(rt);
  ng_id *ids = malloc((count + 1) * sizeof *ids);
  size_t n = 0;
  CHECK_STATUS(ng_token_list(rt, 0, count + 1, ids, &n), NG_OK);
  CHECK_EQ_INT(n, count);
  ng_id cur = 0;
  size_t walked = 0;
  while (ng_token_next(rt, cur, &cur) == NG_OK) {
    if (walked < n) CHECK_EQ_INT(cur, ids[walked]);
    walked++;
  }
  CHECK_EQ_INT(walked, count);
  CHECK_STATUS(ng_connection_each(rt, conn_cb, rt), NG_OK);
  const float lo[3] = {-1e6f, -1e6f, -1e6f}, hi[3] = {1e6f, 1e6f, 1e6f};
  for (int s = 0; s < NG_SPACES; s++) {
    ng_space_info gi;
    CHECK_STATUS(ng_grid_info(rt, s, &gi), NG_OK);
    CHECK_EQ_INT(gi.count, count);
    ng_hits h = {0};
    CHECK_STATUS(ng_grid_box(rt, s, lo, hi, 0, NULL, &h), NG_OK);
    CHECK_EQ_INT(h.count, count);
    size_t dead = 0;
    for (size_t i = 0; i < h.count; i++) {
      ng_token t;
      if (ng_token_get(rt, h.items[i].id, &t) != NG_OK) dead++;
    }
    CHECK_EQ_INT(dead, 0);
    ng_hits_free(rt, &h);
  }
  free(ids);
}

static void test_stress(void) {
  double seconds = 2.0;
  const char *env = getenv("NG_STRESS_SECONDS");
  if (env && atof(env) > 0) seconds = atof(env);
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(NULL, &rt), NG_OK);
  worker w[THREADS];
  pthread_t th[THREADS];
  double deadline = ngt_now_s() + seconds;
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker){.rt = rt, .index = i, .deadline = deadline};
    CHECK(pthread_create(&th[i], NULL, work, &w[i]) == 0);
  }
  unsigned long ops = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    ops += w[i].ops;
    CHECK_EQ_INT(w[i].errors, 0);
    if (w[i].errors) fprintf(stderr, "  %s\n", w[i].first_error);
  }
  printf("  %lu operations, %zu tokens, %zu connections at the end\n", ops, ng_token_count(rt),
         ng_connection_count(rt));
  CHECK(ng_token_count(rt) > 0);
  check_invariants(rt);
  ng_runtime_release(rt);
}

int main(void) {
  RUN(test_stress);
  return ngt_done("test_threads");
}

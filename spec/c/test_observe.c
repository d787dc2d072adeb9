/* Observability (issue 20): metrics behind NG_CDNA_ENABLE_METRICS, memory by component,
 * the Prometheus text, JSON export and import. */
#include "internal.h"
#include "test.h"
#include "test_alloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static ng_runtime *new_rt(bool metrics) {
  ng_config cfg = {0};
  cfg.clock = ngt_clock;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  if (metrics) {
    ng_cdna c;
    ng_cdna_get(rt, &c);
    c.flags |= NG_CDNA_ENABLE_METRICS;
    CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);
  }
  return rt;
}

/* n tokens on a grid in L1 (and every third also in L2), a chain of connections. */
static void fill(ng_runtime *rt, int n) {
  ng_id prev = 0;
  for (int i = 0; i < n; i++) {
    ng_token t;
    ng_token_init(&t);
    t.weight = (float)(i % 100);
    ng_token_set_entity(&t, (unsigned)(i % 4));
    ng_token_set_field_radius(&t, 0.5f);
    ng_token_set_field_strength(&t, 0.25f);
    ng_id id;
    CHECK_STATUS(ng_token_create(rt, &t, 0, &id), NG_OK);
    double xyz[3] = {i % 10, (i / 10) % 10, 0.25};
    CHECK_STATUS(ng_token_place(rt, id, 0, xyz), NG_OK);
    double origin[3] = {0, 0, 0};
    if (i % 3 == 0) CHECK_STATUS(ng_token_place(rt, id, 1, origin), NG_OK);
    if (prev) {
      ng_connection c;
      ng_connection_init(&c);
      c.pull_strength = 0.5f;
      ng_id cid;
      CHECK_STATUS(ng_connection_create(rt, prev, id, &c, &cid), NG_OK);
    }
    prev = id;
  }
}

/* n rounds of one query of each kind; returns how many did not return NG_OK (no CHECK here:
 * the threads run it, and the harness's counters are not atomic). */
static int run_queries(ng_runtime *rt, int n) {
  ng_hits h = {0};
  float c[3] = {1, 1, 0}, lo[3] = {0, 0, 0}, hi[3] = {3, 3, 1};
  int bad = 0;
  for (int i = 0; i < n; i++) {
    bad += ng_grid_range(rt, 0, c, 2.0f, 0, NULL, &h) != NG_OK;
    bad += ng_grid_nearest(rt, 0, c, 3, NULL, &h) != NG_OK;
    bad += ng_grid_box(rt, 0, lo, hi, 0, NULL, &h) != NG_OK;
    bad += ng_grid_neighbors(rt, 1, 0, 2.0f, 0, NULL, &h) != NG_OK;
  }
  ng_hits_free(rt, &h);
  return bad;
}

static void test_flag_validates(void) {
  ng_cdna c;
  ng_cdna_init(&c, NG_PROFILE_DEFAULT, 5);
  c.flags |= NG_CDNA_ENABLE_METRICS;
  c.checksum = ng_cdna_checksum(&c);
  CHECK_STATUS(ng_cdna_validate(&c, NULL, 0), NG_OK);
  CHECK_STR(ng_query_name(NG_QUERY_NEIGHBORS), "neighbours");
  CHECK(ng_query_name(NG_QUERY_KINDS) == NULL);
}

/* Off (the default): nothing is counted. */
static void test_metrics_off(void) {
  ng_runtime *rt = new_rt(false);
  fill(rt, 50);
  CHECK_EQ_INT(run_queries(rt, 10), 0);
  ng_stats s;
  CHECK_STATUS(ng_runtime_stats(rt, &s), NG_OK);
  CHECK(!s.metrics);
  CHECK_EQ_INT(s.writes, 0);
  for (int k = 0; k < NG_QUERY_KINDS; k++)
    CHECK_EQ_INT(s.queries[k].count, 0);
  ng_runtime_release(rt);
}

static void test_metrics_on(void) {
  ng_runtime *rt = new_rt(true);
  fill(rt, 50);
  CHECK_EQ_INT(run_queries(rt, 25), 0);
  ng_stats s;
  CHECK_STATUS(ng_runtime_stats(rt, &s), NG_OK);
  CHECK(s.metrics);
  CHECK(s.writes >= 50 + 49 + 17); /* creates, connections, places */
  for (int k = 0; k < NG_QUERY_KINDS; k++) {
    const ng_query_stats *q = &s.queries[k];
    CHECK_EQ_INT(q->count, 25);
    CHECK(q->total_seconds > 0 && q->mean_seconds > 0);
    CHECK(q->p50_seconds > 0 && q->p50_seconds <= q->p99_seconds);
    CHECK(q->mean_seconds * 25 <= q->total_seconds * 1.0001);
  }
  /* turned off, the figures stay and stop growing */
  ng_cdna c;
  ng_cdna_get(rt, &c);
  c.flags &= ~(uint32_t)NG_CDNA_ENABLE_METRICS;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);
  CHECK_EQ_INT(run_queries(rt, 5), 0);
  CHECK_STATUS(ng_runtime_stats(rt, &s), NG_OK);
  CHECK(!s.metrics);
  CHECK_EQ_INT(s.queries[NG_QUERY_RANGE].count, 25);
  ng_runtime_release(rt);
}

/* A rolled-back ng_cdna_set takes the metrics flag back with it. */
static void test_metrics_rollback(void) {
  ng_runtime *rt = new_rt(false);
  fill(rt, 5);
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  ng_cdna c;
  ng_cdna_get(rt, &c);
  c.flags |= NG_CDNA_ENABLE_METRICS;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);
  CHECK_STATUS(ng_txn_rollback(rt), NG_OK);
  CHECK_EQ_INT(run_queries(rt, 3), 0);
  ng_stats s;
  CHECK_STATUS(ng_runtime_stats(rt, &s), NG_OK);
  CHECK(!s.metrics);
  CHECK_EQ_INT(s.queries[NG_QUERY_BOX].count, 0);
  ng_runtime_release(rt);
}

static void *query_thread(void *arg) {
  return run_queries(arg, 200) ? arg : NULL; /* non-NULL: a query failed */
}

/* Queries in parallel (under the read lock) lose no count. */
static void test_metrics_threads(void) {
  ng_runtime *rt = new_rt(true);
  fill(rt, 200);
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    pthread_create(&th[i], NULL, query_thread, rt);
  for (int i = 0; i < 4; i++) {
    void *failed = NULL;
    pthread_join(th[i], &failed);
    CHECK(failed == NULL);
  }
  ng_stats s;
  CHECK_STATUS(ng_runtime_stats(rt, &s), NG_OK);
  for (int k = 0; k < NG_QUERY_KINDS; k++)
    CHECK_EQ_INT(s.queries[k].count, 800);
  ng_runtime_release(rt);
}

static void test_memory(void) {
  ng_runtime *rt = new_rt(false);
  ng_stats s;
  fill(rt, 300);
  CHECK_EQ_INT(run_queries(rt, 1), 0); /* builds L1's index */
  CHECK_STATUS(ng_runtime_stats(rt, &s), NG_OK);
  CHECK(s.memory.token_records >= 300 * sizeof(ng_token));
  CHECK(s.memory.token_slot_maps >= 300 * sizeof(uint64_t));
  CHECK(s.memory.connections >= 299 * sizeof(ng_connection));
  CHECK(s.memory.space_index[0] > 0);
  CHECK_EQ_INT(s.memory.space_index[5], 0);
  CHECK_EQ_INT(s.memory.journal, 0);
  size_t sum = s.memory.token_records + s.memory.token_slot_maps + s.memory.connections +
               s.memory.journal;
  for (int sp = 0; sp < NG_SPACES; sp++)
    sum += s.memory.space_index[sp];
  CHECK(sum <= s.bytes_in_use);
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  CHECK_STATUS(ng_token_delete(rt, 5, NULL), NG_OK);
  CHECK_STATUS(ng_runtime_stats(rt, &s), NG_OK);
  CHECK(s.memory.journal > 0);
  CHECK_STATUS(ng_txn_rollback(rt), NG_OK);
  ng_runtime_release(rt);
}

/* ng_metrics_format: the snprintf contract, and the families and labels. */
static void test_metrics_text(void) {
  ng_runtime *rt = new_rt(true);
  fill(rt, 20);
  CHECK_EQ_INT(run_queries(rt, 2), 0);
  size_t n = ng_metrics_format(rt, NULL, 0);
  CHECK(n > 500);
  char small[16];
  CHECK_EQ_INT(ng_metrics_format(rt, small, sizeof small), n);
  CHECK_EQ_INT(strlen(small), sizeof small - 1);
  char *buf = malloc(n + 1);
  CHECK_EQ_INT(ng_metrics_format(rt, buf, n + 1), n);
  CHECK_EQ_INT(strlen(buf), n);
  CHECK_CONTAINS(buf, "# TYPE neurograph_tokens gauge\nneurograph_tokens 20\n");
  CHECK_CONTAINS(buf, "neurograph_tokens_placed{space=\"L2\"} 7\n");
  CHECK_CONTAINS(buf, "neurograph_query_duration_seconds_count{query=\"nearest\"} 2\n");
  CHECK_CONTAINS(buf, "# HELP neurograph_query_duration_seconds ");
  free(buf);
  CHECK_EQ_INT(ng_metrics_format(NULL, NULL, 0), 0);
  ng_runtime_release(rt);
}

static char *tmp_path(const char *name) {
  static char buf[256];
  snprintf(buf, sizeof buf, "/tmp/ng_observe_%ld_%s", (long)getpid(), name);
  return buf;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

/* Export then import: the same records, ids, placement and allocators. */
static void test_json_round_trip(void) {
  ng_runtime *rt = new_rt(false);
  fill(rt, 40);
  CHECK_STATUS(ng_token_delete(rt, 7, NULL), NG_OK); /* a gap, and a free slot */
  char path[256];
  snprintf(path, sizeof path, "%s", tmp_path("rt.json"));
  CHECK_STATUS(ng_export_json(rt, path), NG_OK);
  ng_runtime *back = NULL;
  CHECK_STATUS(ng_import_json(path, NULL, &back), NG_OK);
  ng_stats a, b;
  ng_runtime_stats(rt, &a);
  ng_runtime_stats(back, &b);
  CHECK_EQ_INT(b.tokens, a.tokens);
  CHECK_EQ_INT(b.connections, a.connections);
  CHECK_EQ_INT(b.next_token_id, a.next_token_id);
  CHECK_EQ_INT(b.next_connection_id, a.next_connection_id);
  CHECK_EQ_INT(b.token_slots_free, a.token_slots_free);
  for (int sp = 0; sp < NG_SPACES; sp++)
    CHECK_EQ_INT(b.placed[sp], a.placed[sp]);
  for (ng_id id = 1; id <= 40; id++) {
    ng_token x, y;
    ng_status sx = ng_token_get(rt, id, &x), sy = ng_token_get(back, id, &y);
    CHECK_EQ_INT(sy, sx);
    if (sx == NG_OK) CHECK(memcmp(&x, &y, sizeof x) == 0);
  }
  ng_id cid = 0;
  while (ng_connection_next(rt, cid, &cid) == NG_OK && cid) {
    ng_connection x, y;
    CHECK_STATUS(ng_connection_get(back, cid, &y), NG_OK);
    ng_connection_get(rt, cid, &x);
    CHECK(memcmp(&x, &y, sizeof x) == 0);
  }
  ng_cdna ca, cb;
  ng_cdna_get(rt, &ca);
  ng_cdna_get(back, &cb);
  CHECK(memcmp(&ca, &cb, sizeof ca) == 0);
  /* new ids continue as in the original */
  ng_token t;
  ng_token_init(&t);
  ng_id ia, ib;
  CHECK_STATUS(ng_token_create(rt, &t, 0, &ia), NG_OK);
  CHECK_STATUS(ng_token_create(back, &t, 0, &ib), NG_OK);
  CHECK_EQ_INT(ib, ia);
  ng_runtime_release(back);
  ng_runtime_release(rt);
  remove(path);
}

static void test_json_errors(void) {
  ng_runtime *out = (ng_runtime *)1;
  char path[256];
  snprintf(path, sizeof path, "%s", tmp_path("bad.json"));
  write_text(path, "{\n  \"format\": \"neurograph\",\n  \"version\": 1,\n  \"tokens\": [1, }\n");
  CHECK_STATUS(ng_import_json(path, NULL, &out), NG_ECORRUPT);
  CHECK(out == NULL);
  CHECK_CONTAINS(ng_last_error(NULL), "line 4");

  ng_runtime *rt = new_rt(false);
  fill(rt, 3);
  CHECK_STATUS(ng_export_json(rt, path), NG_OK);
  /* a bad value names the token and the field */
  FILE *f = fopen(path, "r");
  char text[65536];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  char *w = strstr(text, "\"weight\":");
  CHECK(w != NULL);
  memcpy(w, "\"weighs\":", 9);
  write_text(path, text);
  CHECK_STATUS(ng_import_json(path, NULL, &out), NG_ECORRUPT);
  CHECK(out == NULL);
  CHECK_CONTAINS(ng_last_error(NULL), "token 1: weight must be a finite number");
  /* a connection to a token that is not in the file: the loader's checks */
  memcpy(w, "\"weight\":", 9);
  char *id3 = strstr(text, "\"id\":\t3");
  CHECK(id3 != NULL);
  memcpy(id3, "\"id\":\t9", 7);
  write_text(path, text);
  CHECK_STATUS(ng_import_json(path, NULL, &out), NG_ECORRUPT);
  CHECK(out == NULL);

  CHECK_STATUS(ng_import_json("/nonexistent/x.json", NULL, &out), NG_EIO);
  CHECK_STATUS(ng_import_json(path, NULL, NULL), NG_EINVAL);
  CHECK_STATUS(ng_export_json(rt, ""), NG_EINVAL);
  CHECK_STATUS(ng_export_json(rt, "/nonexistent/dir/x.json"), NG_EIO);
  ng_runtime_release(rt);
  remove(path);
}

int main(void) {
  ngt_now = 1000;
  RUN(test_flag_validates);
  RUN(test_metrics_off);
  RUN(test_metrics_on);
  RUN(test_metrics_rollback);
  RUN(test_metrics_threads);
  RUN(test_memory);
  RUN(test_metrics_text);
  RUN(test_json_round_trip);
  RUN(test_json_errors);
  return ngt_done("test_observe");
}

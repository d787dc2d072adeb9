/* Tests of the bulk load path: restored adjacency equals appended adjacency, block rules, OOM. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"
#include "test.h"
#include "test_alloc.h"

#include <unistd.h>

static uint64_t rng_state = 12345;
static uint32_t rnd(uint32_t n) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(rng_state >> 33) % n;
}

static char path_buf[256];
static const char *tpath(const char *name) {
  const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(path_buf, sizeof path_buf, "%s/ng_bulk_%ld_%s", dir, (long)getpid(), name);
  return path_buf;
}

/* A runtime with holes in both id sequences, self-links, several types per
 * pair and a few high-degree hubs, so lists are long and interleaved. */
static ng_runtime *make_world(size_t ntok, size_t nconn) {
  ng_runtime *rt = NULL;
  if (ng_runtime_new(NULL, &rt) != NG_OK) return NULL;
  ng_token t;
  ng_token_init(&t);
  for (size_t i = 0; i < ntok; i++) {
    for (int s = 0; s < NG_SPACES; s++)
      for (int a = 0; a < 3; a++)
        t.coords[s][a] = (int16_t)(rnd(2000) - 1000);
    ng_id id;
    ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id);
  }
  for (ng_id id = 5; id <= ntok; id += 17)
    ng_token_delete(rt, id, NULL);
  size_t made = 0;
  for (size_t i = 0; made < nconn && i < nconn * 4; i++) {
    ng_id a = i % 7 == 0 ? 2 : rnd((uint32_t)ntok) + 1, b = rnd((uint32_t)ntok) + 1;
    if (i % 29 == 0) b = a;
    ng_connection c;
    ng_connection_init(&c);
    ng_connection_set_type(&c, rnd(4));
    ng_id id;
    if (ng_connection_create(rt, a, b, &c, &id) == NG_OK) {
      made++;
      if (id % 11 == 0) ng_connection_delete(rt, id);
    }
  }
  return rt;
}

/* Every connection record and every token's out, in and both lists (in
 * order) are the same in a and b. */
static int same_links(ng_runtime *a, ng_runtime *b, uint32_t max_token) {
  static ng_id la[4096], lb[4096];
  size_t na = 0, nb = 0;
  if (ng_connection_count(a) != ng_connection_count(b)) return 0;
  ng_id id = 0, idb = 0;
  for (;;) {
    ng_status sa = ng_connection_next(a, id, &id), sb = ng_connection_next(b, idb, &idb);
    if (sa != sb) return 0;
    if (sa != NG_OK) break;
    if (id != idb) return 0;
    ng_connection ca, cb;
    if (ng_connection_get(a, id, &ca) != NG_OK || ng_connection_get(b, id, &cb) != NG_OK) return 0;
    if (memcmp(&ca, &cb, sizeof ca) != 0) return 0;
  }
  for (uint32_t t = 1; t <= max_token; t++) {
    for (int d = 0; d < 3; d++) {
      ng_direction dir = d == 0 ? NG_OUT : d == 1 ? NG_IN : NG_BOTH;
      ng_status sa = ng_token_connections(a, t, dir, la, 4096, &na);
      ng_status sb = ng_token_connections(b, t, dir, lb, 4096, &nb);
      if (sa != sb || na != nb) return 0;
      size_t k = na < 4096 ? na : 4096; /* n is the total, which may exceed the buffer */
      if (sa == NG_OK && memcmp(la, lb, k * sizeof *la) != 0) return 0;
    }
  }
  return 1;
}

/* A loaded store's lists are built in two bulk passes, not by appends: they
 * must come out exactly as the original's, and keep working as linked lists
 * (deletes unlink from the middle, cascades, new appends). */
static void test_restored_lists_equal_appended(void) {
  ng_runtime *rt = make_world(400, 3000);
  CHECK(rt != NULL);
  if (!rt) return;
  const char *p = tpath("lists.ngs");
  CHECK_STATUS(ng_snapshot_save(rt, p), NG_OK);
  ng_runtime *back = NULL;
  CHECK_STATUS(ng_snapshot_load(p, NULL, &back), NG_OK);
  unlink(p);
  if (!back) {
    ng_runtime_release(rt);
    return;
  }
  CHECK(ng_connection_count(back) > 2000);
  CHECK(same_links(rt, back, 401));
  /* the same edits on both sides keep them equal */
  for (uint32_t t = 3; t <= 400; t += 23) {
    size_t ra = 0, rb = 0;
    CHECK_STATUS(ng_token_delete(rt, t, &ra), ng_token_delete(back, t, &rb));
    CHECK_EQ_INT(ra, rb);
  }
  for (ng_id id = 1; id < 3000; id += 13) {
    CHECK_STATUS(ng_connection_delete(back, id), ng_connection_delete(rt, id));
  }
  for (int i = 0; i < 200; i++) {
    ng_connection c;
    ng_connection_init(&c);
    ng_connection_set_type(&c, 5);
    ng_id ia = 0, ib = 0;
    CHECK_STATUS(ng_connection_create(back, 2, (uint32_t)(i % 50) + 1, &c, &ib),
                 ng_connection_create(rt, 2, (uint32_t)(i % 50) + 1, &c, &ia));
    CHECK_EQ_INT(ia, ib);
  }
  CHECK(same_links(rt, back, 401));
  ng_runtime_release(back);
  ng_runtime_release(rt);
}

/* The owned restore takes its record array in every case and refuses one too
 * small for its records (or no slots) without touching the table (ASan/LSan see a leak or
 * a bad access otherwise; the byte count must return to where it was). */
static void test_owned_block_rules(void) {
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(NULL, &rt), NG_OK);
  if (!rt) return;
  ng_token t;
  ng_token_init(&t);
  for (int i = 0; i < 3; i++) {
    ng_id tid;
    CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &tid), NG_OK);
  }
  ngi_conns_skip_slots(rt, 10); /* slots 1..9 were issued before, as in a loaded file */
  ng_stats s0, s1;
  ng_runtime_stats(rt, &s0);

  /* room for 2 records is too small for 3; a missing slots array is refused too */
  uint32_t slots[3] = {1, 3, 5};
  ng_connection *b = ngi_alloc_array(rt, 2, sizeof *b);
  CHECK_STATUS(ngi_conns_restore_owned(rt, rt->conns, b, 2, 3, slots, NULL), NG_EINVAL);
  b = ngi_alloc_array(rt, 3, sizeof *b);
  CHECK_STATUS(ngi_conns_restore_owned(rt, rt->conns, b, 3, 3, NULL, NULL), NG_EINVAL);
  ng_runtime_stats(rt, &s1);
  CHECK_EQ_INT(s1.bytes_in_use, s0.bytes_in_use);
  CHECK_EQ_INT(ng_connection_count(rt), 0);

  /* room for 4: the three records become the record array in place, the spare capacity
   * takes one more connection without growing */
  ng_connection *e = ngi_alloc_array(rt, 4, sizeof *e);
  CHECK(e != NULL);
  if (!e) {
    ng_runtime_release(rt);
    return;
  }
  for (uint32_t k = 0; k < 3; k++) {
    ng_connection_init(&e[k]);
    e[k].token_a_id = k + 1;
    e[k].token_b_id = 3 - k;
    e[k].created_at = 1000 + k;
  }
  CHECK_STATUS(ngi_conns_restore_owned(rt, rt->conns, e, 4, 3, slots, NULL), NG_OK);
  CHECK_EQ_INT(ng_connection_count(rt), 3);
  for (uint32_t k = 0; k < 3; k++) {
    ng_connection got;
    CHECK_STATUS(ng_connection_get(rt, 2 * k + 1, &got), NG_OK);
    CHECK(got.token_a_id == k + 1 && got.token_b_id == 3 - k && got.created_at == 1000 + k);
  }
  ng_connection c;
  ng_connection_init(&c);
  ng_id id = 0;
  CHECK_STATUS(ng_connection_create(rt, 1, 1, &c, &id), NG_OK);
  CHECK_EQ_INT(id, 10);
  ng_id ids[4];
  size_t n = 0;
  CHECK_STATUS(ng_token_connections(rt, 1, NG_OUT, ids, 4, &n), NG_OK);
  CHECK_EQ_INT(n, 2); /* the restored 1 -> 3, then the new self-link */
  CHECK(ids[0] == 1 && ids[1] == 10);
  CHECK_STATUS(ng_token_connections(rt, 1, NG_IN, ids, 4, &n), NG_OK);
  CHECK_EQ_INT(n, 2); /* the restored 3 -> 1, then the self-link */
  CHECK(ids[0] == 5 && ids[1] == 10);
  ng_runtime_release(rt);
}

/* Every allocation of a load may fail: each failure is NG_ENOMEM with no
 * runtime and no byte left allocated; with enough budget it succeeds. */
static void test_load_out_of_memory(void) {
  ng_runtime *rt = make_world(120, 600);
  CHECK(rt != NULL);
  if (!rt) return;
  const char *p = tpath("oom.ngs");
  CHECK_STATUS(ng_snapshot_save(rt, p), NG_OK);
  ngt_alloc ba = NGT_ALLOC_NEVER;
  ng_config cfg = {0};
  cfg.alloc = ngt_alloc_fn;
  cfg.alloc_ud = &ba;
  int failures = 0, loaded = 0;
  for (long budget = 0; budget < 200 && !loaded; budget++) {
    ngt_alloc_arm(&ba, budget, 0); /* refuse every request after `budget` */
    ng_runtime *back = NULL;
    ng_status st = ng_snapshot_load(p, &cfg, &back);
    if (st == NG_OK) {
      loaded = 1;
      CHECK(same_links(rt, back, 121));
      ng_runtime_release(back);
    } else {
      CHECK_STATUS(st, NG_ENOMEM);
      CHECK(back == NULL);
      failures++;
    }
    CHECK_EQ_INT(ba.live_bytes, 0);
  }
  CHECK(loaded);
  CHECK(failures >= 8); /* the runtime, both section blocks, bitmaps, maps, lists */
  unlink(p);
  ng_runtime_release(rt);
}

int main(void) {
  RUN(test_restored_lists_equal_appended);
  RUN(test_owned_block_rules);
  RUN(test_load_out_of_memory);
  return ngt_done("test_snapshot_bulk");
}

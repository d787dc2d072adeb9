/* Runtime tests: lifecycle, references, stats, errors, callback locking, the runtime CDNA. */
#include "internal.h"
#include "test.h"
#include "test_alloc.h"

#include <pthread.h>

static ng_runtime *new_rt(void) {
  ng_config cfg = {0};
  cfg.clock = ngt_clock;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  return rt;
}

static void test_lifecycle(void) {
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(NULL, &rt), NG_OK);
  CHECK(rt != NULL);
  ng_cdna c;
  CHECK_STATUS(ng_cdna_get(rt, &c), NG_OK);
  CHECK_EQ_INT(c.profile_id, NG_PROFILE_DEFAULT);
  CHECK_STATUS(ng_cdna_validate(&c, NULL, 0), NG_OK);
  ng_runtime_release(rt);
  ng_runtime_release(NULL); /* ignored */
  CHECK(ng_runtime_retain(NULL) == NULL);

  CHECK_STATUS(ng_runtime_new(NULL, NULL), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(NULL), "ng_runtime_new");

  ng_config cfg = {0};
  cfg.profile = 7;
  rt = (ng_runtime *)&cfg; /* must be reset to NULL on failure */
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_EINVAL);
  CHECK(rt == NULL);
  CHECK_CONTAINS(ng_last_error(NULL), "unknown profile 7");

  /* a starting CDNA is validated and copied */
  ng_cdna bad;
  ng_cdna_init(&bad, NG_PROFILE_DEFAULT, 5);
  bad.magic = 0;
  cfg.profile = 0;
  cfg.cdna = &bad;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(NULL), "invalid cdna");
  ng_cdna good;
  ng_cdna_init(&good, NG_PROFILE_EXPLORER, 5);
  good.bucket_sizes[NG_L3] = 2.5f;
  good.checksum = ng_cdna_checksum(&good);
  cfg.cdna = &good;
  cfg.profile = 99; /* ignored when a CDNA is given */
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  CHECK_STATUS(ng_cdna_get(rt, &c), NG_OK);
  CHECK(memcmp(&c, &good, sizeof c) == 0);
  ng_space_info gi;
  CHECK_STATUS(ng_grid_info(rt, NG_L3, &gi), NG_OK);
  CHECK(gi.cell_size == 2.5f);
  ng_runtime_release(rt);

  /* a profile sets the starting preset */
  cfg.cdna = NULL;
  cfg.profile = NG_PROFILE_ANALYST;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  ng_cdna_get(rt, &c);
  CHECK_EQ_INT(c.profile_id, NG_PROFILE_ANALYST);
  CHECK(c.flags & NG_CDNA_STRICT_MODE);
  ng_runtime_release(rt);
}

static void test_retain_release(void) {
  ngt_alloc cnt = NGT_ALLOC_NEVER; /* only counts */
  ng_config cfg = {0};
  cfg.alloc = ngt_alloc_fn;
  cfg.alloc_ud = &cnt;
  cfg.initial_tokens = 100;
  cfg.initial_connections = 100;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  CHECK(cnt.live_blocks > 0);
  ng_stats st;
  CHECK_STATUS(ng_runtime_stats(rt, &st), NG_OK);
  CHECK_EQ_INT(st.bytes_in_use, cnt.live_bytes); /* the runtime counts what the allocator sees */
  CHECK(ng_runtime_retain(rt) == rt);
  ng_runtime_retain(rt);
  ng_runtime_release(rt);
  ng_runtime_release(rt);
  /* still alive: one reference left */
  ng_id id;
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id), NG_OK);
  CHECK_EQ_INT(ng_token_count(rt), 1);
  ng_runtime_release(rt);
  CHECK_EQ_INT(cnt.live_blocks, 0);
  CHECK_EQ_INT(cnt.live_bytes, 0);
}

static void test_stats(void) {
  ng_runtime *rt = new_rt();
  ng_stats st;
  CHECK_STATUS(ng_runtime_stats(rt, &st), NG_OK);
  CHECK_EQ_INT(st.tokens, 0);
  CHECK_EQ_INT(st.connections, 0);
  CHECK_EQ_INT(st.next_token_id, 1);
  CHECK_EQ_INT(st.next_connection_id, 1);
  CHECK(st.bytes_in_use >= sizeof(ng_runtime));
  CHECK(st.bytes_peak >= st.bytes_in_use);
  size_t start = st.bytes_in_use;
  ng_id ids[300];
  for (int i = 0; i < 300; i++)
    ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &ids[i]);
  ng_connection c;
  ng_id cid;
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, ids[0], ids[1], &c, &cid), NG_OK);
  CHECK_STATUS(ng_runtime_stats(rt, &st), NG_OK);
  CHECK_EQ_INT(st.tokens, 300);
  CHECK_EQ_INT(st.connections, 1);
  CHECK_EQ_INT(st.next_token_id, 301);
  CHECK_EQ_INT(st.next_connection_id, 2);
  CHECK(st.bytes_in_use > start);
  size_t peak = st.bytes_peak;
  CHECK(peak >= st.bytes_in_use);
  ng_token_clear(rt, NULL, NULL);
  CHECK_STATUS(ng_runtime_stats(rt, &st), NG_OK);
  CHECK_EQ_INT(st.tokens, 0);
  CHECK_EQ_INT(st.next_token_id, 301);
  CHECK(st.bytes_peak >= peak);
  CHECK_STATUS(ng_runtime_stats(rt, NULL), NG_EINVAL);
  CHECK_STATUS(ng_runtime_stats(NULL, &st), NG_EINVAL);
  CHECK_EQ_INT(ng_runtime_now(rt), 1000);
  ngt_now = 2000;
  CHECK_EQ_INT(ng_runtime_now(rt), 2000);
  ngt_now = 1000;
  CHECK_EQ_INT(ng_runtime_now(NULL), 0);
  ng_runtime_release(rt);
}

static void test_strerror(void) {
  const ng_status all[] = {NG_OK,     NG_ENOTFOUND, NG_EINVAL,   NG_EEXIST,   NG_ELIMIT,
                           NG_ENOMEM, NG_EIO,       NG_ECORRUPT, NG_EVERSION, NG_EBUSY};
  const size_t n = sizeof all / sizeof all[0];
  for (size_t i = 0; i < n; i++) {
    const char *m = ng_strerror(all[i]);
    CHECK(m != NULL && m[0] != '\0');
    for (size_t j = 0; j < i; j++)
      CHECK(strcmp(m, ng_strerror(all[j])) != 0);
  }
  CHECK_STR(ng_strerror(NG_ENOTFOUND), "not found");
  CHECK_STR(ng_strerror(NG_ENOMEM), "out of memory");
  CHECK_STR(ng_strerror((ng_status)12345), "unknown status");
}

typedef struct err_probe {
  ng_runtime *a;
  const char *on_a;
  const char *any;
} err_probe;

static void *probe_thread(void *arg) {
  err_probe *p = arg;
  p->on_a = ng_last_error(p->a); /* this thread never failed */
  p->any = ng_last_error(NULL);
  return NULL;
}

static void test_last_error(void) {
  ng_runtime *a = new_rt(), *b = new_rt();
  ng_token t;
  CHECK_STATUS(ng_token_get(a, 42, &t), NG_ENOTFOUND);
  CHECK_STR(ng_last_error(a), "ng_token_get: no token 42");
  CHECK_STR(ng_last_error(b), "");
  CHECK_STR(ng_last_error(NULL), "ng_token_get: no token 42");
  /* a success does not clear it; a failure elsewhere replaces it */
  ng_id id;
  CHECK_STATUS(ng_token_create(a, NULL, NG_TF_COORDS_ALL, &id), NG_OK);
  CHECK_STR(ng_last_error(a), "ng_token_get: no token 42");
  CHECK_STATUS(ng_token_get(b, 7, &t), NG_ENOTFOUND);
  CHECK_STR(ng_last_error(a), "");
  CHECK_STR(ng_last_error(b), "ng_token_get: no token 7");
  CHECK_STATUS(ng_runtime_new(NULL, NULL), NG_EINVAL);
  CHECK_STR(ng_last_error(b), "");
  CHECK_CONTAINS(ng_last_error(NULL), "ng_runtime_new");
  /* per thread */
  CHECK_STATUS(ng_token_get(a, 42, &t), NG_ENOTFOUND);
  err_probe p = {a, NULL, NULL};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, probe_thread, &p) == 0);
  pthread_join(th, NULL);
  CHECK_STR(p.on_a, "");
  CHECK_STR(p.any, "");
  CHECK_STR(ng_last_error(a), "ng_token_get: no token 42");
  /* a message may quote the previous one */
  CHECK_STATUS(ngi_fail(a, NG_EIO, "outer: %s", ng_last_error(a)), NG_EIO);
  CHECK_STR(ng_last_error(a), "outer: ng_token_get: no token 42");
  ng_runtime_release(a);
  ng_runtime_release(b);
}

static void test_alloc_wrappers(void) {
  ngt_alloc cnt = NGT_ALLOC_NEVER; /* only counts */
  ng_config cfg = {0};
  cfg.alloc = ngt_alloc_fn;
  cfg.alloc_ud = &cnt;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  long blocks = cnt.live_blocks;
  size_t base = atomic_load(&rt->bytes_in_use);
  CHECK(ngi_alloc_array(rt, SIZE_MAX / 2, 4) == NULL); /* overflow: no call, no change */
  CHECK_EQ_INT(cnt.live_blocks, blocks);
  char *p = ngi_alloc(rt, 100);
  CHECK(p != NULL);
  CHECK_EQ_INT(atomic_load(&rt->bytes_in_use), base + 100);
  p = ngi_realloc(rt, p, 100, 300);
  CHECK(p != NULL);
  CHECK_EQ_INT(atomic_load(&rt->bytes_in_use), base + 300);
  CHECK(atomic_load(&rt->bytes_peak) >= base + 300);
  CHECK(ngi_realloc_array(rt, p, 300, SIZE_MAX / 2, 8) == NULL); /* p still owned */
  p = ngi_realloc(rt, p, 300, 10);
  CHECK_EQ_INT(atomic_load(&rt->bytes_in_use), base + 10);
  ngi_free(rt, p, 10);
  void *z = ngi_alloc(rt, 0); /* served as one byte, never NULL */
  CHECK(z != NULL);
  ngi_free(rt, z, 0);
  ngi_free(rt, NULL, 5);
  CHECK_EQ_INT(atomic_load(&rt->bytes_in_use), base);
  CHECK_EQ_INT(cnt.live_blocks, blocks);
  CHECK_EQ_INT(cnt.live_bytes, (long)base);
  ng_runtime_release(rt);
  CHECK_EQ_INT(cnt.live_blocks, 0);
}

typedef struct cb_ctx {
  ng_runtime *rt;
  int calls;
  int nested;
} cb_ctx;

static bool count_cb(const ng_token *tok, ng_id id, void *ud) {
  (void)tok;
  (void)id;
  ((cb_ctx *)ud)->nested++;
  return true;
}

static bool writer_cb(const ng_token *tok, ng_id id, void *ud) {
  cb_ctx *c = ud;
  c->calls++;
  ng_id nid = 0;
  CHECK_STATUS(ng_token_create(c->rt, NULL, NG_TF_COORDS_ALL, &nid), NG_EBUSY);
  CHECK_CONTAINS(ng_last_error(c->rt), "ng_token_create");
  CHECK_STATUS(ng_token_delete(c->rt, id, NULL), NG_EBUSY);
  ng_token v = *tok;
  CHECK_STATUS(ng_token_update(c->rt, id, &v, NG_TF_WEIGHT), NG_EBUSY);
  CHECK_STATUS(ng_token_clear(c->rt, NULL, NULL), NG_EBUSY);
  CHECK_STATUS(ng_cdna_set_profile(c->rt, NG_PROFILE_EXPLORER), NG_EBUSY);
  ng_connection cn;
  ng_connection_init(&cn);
  ng_id cid;
  CHECK_STATUS(ng_connection_create(c->rt, 1, 2, &cn, &cid), NG_EBUSY);
  /* reads are fine, nested iteration too */
  ng_token got;
  CHECK_STATUS(ng_token_get(c->rt, id, &got), NG_OK);
  CHECK_EQ_INT(ng_token_count(c->rt), 3);
  ng_cdna cd;
  CHECK_STATUS(ng_cdna_get(c->rt, &cd), NG_OK);
  ng_hits h = {0};
  float ctr[3] = {0, 0, 0};
  CHECK_STATUS(ng_grid_range(c->rt, NG_L1, ctr, 10.0f, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 3);
  ng_hits_free(c->rt, &h);
  CHECK_STATUS(ng_token_each(c->rt, count_cb, c), NG_OK);
  return true;
}

static void test_busy_inside_each(void) {
  ng_runtime *rt = new_rt();
  ng_id id;
  for (int i = 0; i < 3; i++)
    ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id);
  cb_ctx c = {rt, 0, 0};
  CHECK_STATUS(ng_token_each(rt, writer_cb, &c), NG_OK);
  CHECK_EQ_INT(c.calls, 3);
  CHECK_EQ_INT(c.nested, 9);
  CHECK_EQ_INT(ng_token_count(rt), 3);
  /* after the loop, writes work again */
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id), NG_OK);
  ng_cdna cd;
  ng_cdna_get(rt, &cd);
  CHECK_EQ_INT(cd.profile_id, NG_PROFILE_DEFAULT);
  ng_runtime_release(rt);
}

static void test_cdna_set(void) {
  ng_runtime *rt = new_rt();
  ng_cdna c;
  CHECK_STATUS(ng_cdna_get(rt, &c), NG_OK);
  CHECK_EQ_INT(c.created_at, 1000);
  ngt_now = 5000;
  c.flags = 0xFF;
  c.created_at = 1; /* ignored: kept */
  c.modified_at = 2;
  c.checksum = 0; /* recomputed */
  c.max_out_degree = 77;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);
  ng_cdna got;
  ng_cdna_get(rt, &got);
  CHECK_EQ_INT(got.created_at, 1000);
  CHECK_EQ_INT(got.modified_at, 5000);
  CHECK_EQ_INT(got.flags, 0xFF);
  CHECK_EQ_INT(got.max_out_degree, 77);
  CHECK(got.checksum == ng_cdna_checksum(&got));
  CHECK_STATUS(ng_cdna_validate(&got, NULL, 0), NG_OK);

  /* a clock that went backwards never makes modified_at < created_at */
  ngt_now = 10;
  CHECK_STATUS(ng_cdna_set(rt, &got), NG_OK);
  ng_cdna_get(rt, &got);
  CHECK_EQ_INT(got.modified_at, 1000);

  /* invalid: rejected with the reason, nothing changes */
  ng_cdna before;
  ng_cdna_get(rt, &before);
  c = before;
  c.min_token_weight = 5.0f;
  c.max_token_weight = 1.0f;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "ng_cdna_set");
  c = before;
  c.magic = 0x1234;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_EINVAL);
  c = before;
  c.bucket_sizes[2] = -1.0f;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_EINVAL);
  ng_cdna_get(rt, &got);
  CHECK(memcmp(&got, &before, sizeof got) == 0);
  ng_space_info gi;
  ng_grid_info(rt, 2, &gi);
  CHECK(gi.cell_size == 10.0f);
  CHECK_STATUS(ng_cdna_set(rt, NULL), NG_EINVAL);
  CHECK_STATUS(ng_cdna_set(NULL, &c), NG_EINVAL);
  CHECK_STATUS(ng_cdna_get(rt, NULL), NG_EINVAL);
  CHECK_STATUS(ng_cdna_get(NULL, &c), NG_EINVAL);
  ngt_now = 1000;
  ng_runtime_release(rt);
}

static void test_cdna_set_profile(void) {
  ng_runtime *rt = new_rt();
  ng_cdna c, want;
  ngt_now = 3000;
  CHECK_STATUS(ng_cdna_set_profile(rt, NG_PROFILE_ANALYST), NG_OK);
  ng_cdna_get(rt, &c);
  CHECK_EQ_INT(c.profile_id, NG_PROFILE_ANALYST);
  CHECK_EQ_INT(c.flags, 0xB);
  CHECK_EQ_INT(c.max_out_degree, 500);
  CHECK_EQ_INT(c.max_total_degree, 1000);
  CHECK_EQ_INT(c.created_at, 1000);
  CHECK_EQ_INT(c.modified_at, 3000);
  /* exactly the preset, apart from the timestamps and the checksum */
  ng_cdna_init(&want, NG_PROFILE_ANALYST, 0);
  want.created_at = 1000;
  want.modified_at = 3000;
  want.checksum = ng_cdna_checksum(&want);
  CHECK(memcmp(&c, &want, sizeof c) == 0);
  CHECK_STATUS(ng_cdna_set_profile(rt, NG_PROFILE_CREATIVE), NG_OK);
  ng_cdna_get(rt, &c);
  /* Creative's preset over Analyst's: only what Creative defines changes */
  CHECK_EQ_INT(c.flags, 0xF);
  CHECK(c.mutation_rate == 0.1f);
  CHECK_EQ_INT(c.max_out_degree, 500);
  CHECK_STATUS(ng_cdna_set_profile(rt, NG_PROFILE_CUSTOM), NG_OK);
  ng_cdna before;
  ng_cdna_get(rt, &before);
  CHECK_STATUS(ng_cdna_set_profile(rt, 4), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "unknown profile 4");
  CHECK_STATUS(ng_cdna_set_profile(rt, 254), NG_EINVAL);
  ng_cdna_get(rt, &c);
  CHECK(memcmp(&c, &before, sizeof c) == 0);
  CHECK_STATUS(ng_cdna_set_profile(NULL, 0), NG_EINVAL);
  ngt_now = 1000;
  ng_runtime_release(rt);
}

/* Sorted ids of a range query. */
static size_t range_ids(ng_runtime *rt, int space, float x, float y, float z, float r, ng_id *out,
                        size_t cap) {
  ng_hits h = {0};
  float c[3] = {x, y, z};
  CHECK_STATUS(ng_grid_range(rt, space, c, r, 0, NULL, &h), NG_OK);
  size_t n = h.count < cap ? h.count : cap;
  for (size_t i = 0; i < n; i++)
    out[i] = h.items[i].id;
  ng_hits_free(rt, &h);
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
      ng_id tmp = out[j];
      out[j] = out[j - 1];
      out[j - 1] = tmp;
    }
  return n;
}

static void test_cdna_rebucket(void) {
  ng_runtime *rt = new_rt();
  for (int i = 0; i < 200; i++) {
    ng_token t;
    ng_token_init(&t);
    float x = (float)((i * 37) % 100) - 50.0f, y = (float)((i * 11) % 60) - 30.0f;
    ng_token_set_coords(&t, NG_L1, x, y, 0.5f * (float)(i % 7));
    ng_token_set_coords(&t, NG_L4, x / 20.0f, y / 20.0f, 0.0f);
    ng_id id;
    CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);
  }
  ng_token_delete(rt, 5, NULL);
  ng_id a[256], b[256], a4[256], b4[256];
  size_t na = range_ids(rt, NG_L1, 3, -4, 1, 17.5f, a, 256);
  size_t na4 = range_ids(rt, NG_L4, 0.1f, -0.2f, 0, 0.9f, a4, 256);
  CHECK(na > 5 && na < 199);
  CHECK(na4 > 5 && na4 < 199);
  ng_cdna c;
  ng_cdna_get(rt, &c);
  c.bucket_sizes[NG_L1] = 0.75f;
  c.bucket_sizes[NG_L4] = 0.05f;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);
  ng_space_info gi;
  CHECK_STATUS(ng_grid_info(rt, NG_L1, &gi), NG_OK);
  CHECK(gi.cell_size == 0.75f);
  CHECK_EQ_INT(gi.count, 199);
  CHECK_STATUS(ng_grid_info(rt, NG_L4, &gi), NG_OK);
  CHECK(gi.cell_size == 0.05f);
  CHECK_STATUS(ng_grid_info(rt, NG_L2, &gi), NG_OK);
  CHECK(gi.cell_size == 10.0f);
  size_t nb = range_ids(rt, NG_L1, 3, -4, 1, 17.5f, b, 256);
  size_t nb4 = range_ids(rt, NG_L4, 0.1f, -0.2f, 0, 0.9f, b4, 256);
  CHECK_EQ_INT(nb, na);
  CHECK(memcmp(a, b, na * sizeof a[0]) == 0);
  CHECK_EQ_INT(nb4, na4);
  CHECK(memcmp(a4, b4, na4 * sizeof a4[0]) == 0);
  /* the rebuilt grid keeps following writes */
  ng_id id;
  ng_token t;
  ng_token_init(&t);
  ng_token_set_coords(&t, NG_L1, 3, -4, 1);
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);
  CHECK_EQ_INT(range_ids(rt, NG_L1, 3, -4, 1, 17.5f, b, 256), na + 1);
  ng_runtime_release(rt);
}

/* Internal locking: a read under this thread's write lock nests; a second
 * write fails with NG_EBUSY instead of deadlocking; public readers work from
 * inside a write section. */
static void test_lock_nesting(void) {
  ng_runtime *rt = new_rt();
  ng_id id;
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id), NG_OK);
  CHECK_STATUS(ngi_write_lock(rt, "outer"), NG_OK);
  CHECK_EQ_INT(ng_token_count(rt), 1); /* takes the read lock under the write lock */
  ng_token t;
  CHECK_STATUS(ng_token_get(rt, id, &t), NG_OK);
  CHECK_STATUS(ngi_write_lock(rt, "inner"), NG_EBUSY);
  CHECK_STR(ng_last_error(rt), "inner: cannot modify the store from inside another write");
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id), NG_EBUSY);
  ngi_write_unlock(rt);
  /* the write lock is really released */
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id), NG_OK);
  ngi_read_lock(rt);
  ngi_read_lock(rt);
  CHECK_STATUS(ngi_write_lock(rt, "w"), NG_EBUSY);
  CHECK_CONTAINS(ng_last_error(rt), "iteration callback");
  ngi_read_unlock(rt);
  CHECK_STATUS(ngi_write_lock(rt, "w"), NG_EBUSY); /* still one read held */
  ngi_read_unlock(rt);
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id), NG_OK);
  CHECK_EQ_INT(ng_token_count(rt), 3);
  ng_runtime_release(rt);
}

int main(void) {
  ngt_now = 1000; /* the tests' fake time, to which they return */
  RUN(test_lifecycle);
  RUN(test_retain_release);
  RUN(test_stats);
  RUN(test_strerror);
  RUN(test_last_error);
  RUN(test_alloc_wrappers);
  RUN(test_busy_inside_each);
  RUN(test_lock_nesting);
  RUN(test_cdna_set);
  RUN(test_cdna_set_profile);
  RUN(test_cdna_rebucket);
  return ngt_done("test_runtime");
}

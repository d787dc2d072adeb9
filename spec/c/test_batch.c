/* ng_token_update_batch: results, all-or-nothing failures, duplicates, allocation failure at
 * every point, equivalence with single updates, and concurrent queries; ng_token_get_batch
 * against single gets. */
#include "internal.h"
#include "test.h"
#include "test_alloc.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

static int16_t rcoord(uint64_t *s, int span) {
  return (int16_t)((int)(ngt_rnd(s) % (uint32_t)(2 * span + 1)) - span);
}

/* A store of n tokens spread in L1 and L2 (raw coordinates within +-2000) whose grids are
 * built, with every `hole`-th token deleted when hole > 0 (tombstones: the slot_of path). */
static ng_runtime *make_store(ngt_alloc *a, size_t n, uint64_t seed, size_t hole) {
  ng_config cfg = {0};
  cfg.alloc = ngt_alloc_fn;
  cfg.alloc_ud = a;
  cfg.clock = ngt_clock;
  ng_runtime *rt = NULL;
  if (ng_runtime_new(&cfg, &rt) != NG_OK) return NULL;
  for (size_t i = 0; i < n; i++) {
    ng_token t;
    ng_token_init(&t);
    for (int s = 0; s < 2; s++)
      for (int k = 0; k < 3; k++)
        t.coords[s][k] = rcoord(&seed, 2000);
    t.weight = (float)(ngt_rnd(&seed) % 100);
    ng_id id;
    if (ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id) != NG_OK) {
      ng_runtime_release(rt);
      return NULL;
    }
  }
  if (hole)
    for (ng_id id = 1; id <= n; id += (uint32_t)hole)
      ng_token_delete(rt, id, NULL);
  ng_hits h = {0};
  float c[3] = {0, 0, 0};
  for (int s = 0; s < NG_SPACES; s++)
    ng_grid_range(rt, s, c, 1.0f, 0, NULL, &h);
  ng_hits_free(rt, &h);
  return rt;
}

/* Everything observable: the count, every record's bytes, and the answers of every query
 * type in L1 and L2. */
typedef struct state {
  size_t count;
  ng_token *recs;
  size_t nrec;
  ng_id *q;
  size_t qn, qcap;
} state;

static bool collect(const ng_token *tok, ng_id id, void *ud) {
  (void)id;
  state *st = ud;
  st->recs = realloc(st->recs, (st->nrec + 1) * sizeof *st->recs);
  st->recs[st->nrec++] = *tok;
  return true;
}

static void push(state *st, ng_id v) {
  if (st->qn == st->qcap) {
    st->qcap = st->qcap ? st->qcap * 2 : 256;
    st->q = realloc(st->q, st->qcap * sizeof *st->q);
  }
  st->q[st->qn++] = v;
}

static void push_hits(state *st, ng_status s, const ng_hits *h) {
  push(st, (uint32_t)s);
  push(st, (uint32_t)h->count);
  for (size_t i = 0; i < h->count; i++) {
    ng_id d;
    memcpy(&d, &h->items[i].distance, sizeof d);
    push(st, h->items[i].id);
    push(st, d);
  }
}

static state capture(ng_runtime *rt, ngt_alloc *a) {
  int was = a ? a->paused : 0;
  if (a) a->paused = 1;
  state st = {0};
  st.count = ng_token_count(rt);
  ng_token_each(rt, collect, &st);
  ng_hits h = {0};
  for (int s = 0; s < 2; s++) {
    float scale = ng_space_scale(s);
    for (int k = 0; k < 4; k++) {
      float c[3] = {(float)(k * 500 - 800) / scale, (float)(300 - k * 200) / scale,
                    (float)(k * 100) / scale};
      push_hits(&st, ng_grid_range(rt, s, c, 600.0f / scale, 0, NULL, &h), &h);
      push_hits(&st, ng_grid_nearest(rt, s, c, 7, NULL, &h), &h);
      float lo[3] = {c[0] - 700 / scale, c[1] - 400 / scale, c[2] - 900 / scale};
      float hi[3] = {c[0] + 500 / scale, c[1] + 800 / scale, c[2] + 300 / scale};
      push_hits(&st, ng_grid_box(rt, s, lo, hi, 0, NULL, &h), &h);
    }
    for (ng_id id = 2; id < 40; id += 9)
      push_hits(&st, ng_grid_neighbors(rt, id, s, 700.0f / scale, 0, NULL, &h), &h);
    ng_space_info info;
    push(&st, (uint32_t)ng_grid_info(rt, s, &info));
    push(&st, (uint32_t)info.count);
    uint32_t cs;
    memcpy(&cs, &info.cell_size, sizeof cs);
    push(&st, cs);
  }
  ng_hits_free(rt, &h);
  if (a) a->paused = was;
  return st;
}

static bool same(const state *x, const state *y) {
  return x->count == y->count && x->nrec == y->nrec && x->qn == y->qn &&
         memcmp(x->recs, y->recs, x->nrec * sizeof *x->recs) == 0 &&
         memcmp(x->q, y->q, x->qn * sizeof *x->q) == 0;
}

static void drop(state *st) {
  free(st->recs);
  free(st->q);
  memset(st, 0, sizeof *st);
}

/* A batch of m moves of live tokens (ids from rt), far enough to leave their cells, in L1 and
 * L2, plus new weights. */
static void make_moves(ng_runtime *rt, uint64_t *seed, size_t m, ng_id *ids, ng_token *vals) {
  size_t live = ng_token_count(rt);
  ng_id *all = malloc(live * sizeof *all);
  size_t got = 0;
  ng_token_list(rt, 0, live, all, &got);
  for (size_t i = 0; i < m; i++) {
    ids[i] = all[ngt_rnd(seed) % got];
    ng_token_init(&vals[i]);
    for (int s = 0; s < 2; s++)
      for (int k = 0; k < 3; k++)
        vals[i].coords[s][k] = rcoord(seed, 2000);
    vals[i].weight = (float)(ngt_rnd(seed) % 1000) / 10.0f;
  }
  free(all);
}

#define MOVE_FIELDS (NG_TF_COORDS(0) | NG_TF_COORDS(1) | NG_TF_WEIGHT)

static void test_success(void) {
  ngt_alloc a = NGT_ALLOC_NEVER;
  ng_runtime *rt = make_store(&a, 500, 1, 0);
  CHECK(rt != NULL);
  ng_id ids[3] = {10, 20, 30};
  ng_token v[3];
  for (int i = 0; i < 3; i++) {
    ng_token_init(&v[i]);
    ng_token_set_coords(&v[i], NG_L1, 100.0f + (float)i, -50.0f, 25.5f);
    v[i].weight = 42.0f + (float)i;
    v[i].flags = 0x0300; /* not selected: must not be written */
  }
  ng_token before20;
  CHECK_STATUS(ng_token_get(rt, 20, &before20), NG_OK);
  CHECK_STATUS(ng_token_update_batch(rt, ids, v, 3, NG_TF_COORDS(NG_L1) | NG_TF_WEIGHT), NG_OK);
  CHECK_EQ_INT(ng_token_count(rt), 500);
  for (int i = 0; i < 3; i++) {
    ng_token t;
    CHECK_STATUS(ng_token_get(rt, ids[i], &t), NG_OK);
    float xyz[3];
    ng_token_get_coords(&t, NG_L1, xyz);
    CHECK(fabsf(xyz[0] - (100.0f + (float)i)) < 0.006f);
    CHECK(fabsf(xyz[1] + 50.0f) < 0.006f && fabsf(xyz[2] - 25.5f) < 0.006f);
    CHECK(t.weight == 42.0f + (float)i);
  }
  ng_token t20;
  ng_token_get(rt, 20, &t20);
  CHECK_EQ_INT(t20.flags, before20.flags);
  CHECK(memcmp(t20.coords[1], before20.coords[1], sizeof t20.coords[1]) == 0);
  /* The grid follows: the three moved tokens are around (101, -50, 25.5), in id order. */
  ng_hits h = {0};
  float c[3] = {101.0f, -50.0f, 25.5f};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 1.5f, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 3);
  if (h.count == 3) {
    CHECK_EQ_INT(h.items[0].id, 20);
    CHECK(h.items[1].id == 10 || h.items[1].id == 30);
  }
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
  CHECK_EQ_INT(a.live_blocks, 0);
}

static void test_empty_and_args(void) {
  ngt_alloc a = NGT_ALLOC_NEVER;
  ng_runtime *rt = make_store(&a, 200, 2, 7);
  state s0 = capture(rt, &a);
  ng_id ids[2] = {2, 3};
  ng_token v[2];
  ng_token_init(&v[0]);
  ng_token_init(&v[1]);
  CHECK_STATUS(ng_token_update_batch(rt, NULL, NULL, 0, NG_TF_ALL), NG_OK);
  CHECK_STATUS(ng_token_update_batch(rt, ids, v, 0, 0xFFFFFFFFu), NG_OK);
  CHECK_STATUS(ng_token_update_batch(NULL, ids, v, 2, NG_TF_WEIGHT), NG_EINVAL);
  CHECK_STATUS(ng_token_update_batch(rt, NULL, v, 2, NG_TF_WEIGHT), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "ids must not be NULL");
  CHECK_STATUS(ng_token_update_batch(rt, ids, NULL, 2, NG_TF_WEIGHT), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "values must not be NULL");
  CHECK_STATUS(ng_token_update_batch(rt, ids, v, 2, NG_TF_WEIGHT | 0x1000000u), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "unknown field bits 0x1000000");
  state s1 = capture(rt, &a);
  CHECK(same(&s0, &s1));
  drop(&s0);
  drop(&s1);
  ng_runtime_release(rt);
  CHECK_EQ_INT(a.live_blocks, 0);
}

typedef struct busy_ctx {
  ng_runtime *rt;
  ng_status st;
} busy_ctx;

static bool try_batch(const ng_token *tok, ng_id id, void *ud) {
  busy_ctx *c = ud;
  c->st = ng_token_update_batch(c->rt, &id, tok, 1, NG_TF_WEIGHT);
  return false;
}

/* A write from inside an iteration callback is refused, not deadlocked; a batch without
 * coordinates (no log needed) works like the others. */
static void test_busy_and_no_moves(void) {
  ngt_alloc a = NGT_ALLOC_NEVER;
  ng_runtime *rt = make_store(&a, 50, 8, 0);
  busy_ctx c = {rt, NG_OK};
  ng_token_each(rt, try_batch, &c);
  CHECK_STATUS(c.st, NG_EBUSY);
  ng_id ids[2] = {5, 6};
  ng_token v[2];
  ng_token_init(&v[0]);
  ng_token_init(&v[1]);
  v[0].weight = 7.0f;
  v[1].weight = 8.0f;
  ngt_alloc_arm(&a, 0, 0); /* no allocation at all is needed */
  CHECK_STATUS(ng_token_update_batch(rt, ids, v, 2, NG_TF_WEIGHT), NG_OK);
  CHECK_EQ_INT(a.failures, 0);
  ngt_alloc_arm(&a, -1, 0);
  ng_token t;
  ng_token_get(rt, 6, &t);
  CHECK(t.weight == 8.0f);
  ng_runtime_release(rt);
  CHECK_EQ_INT(a.live_blocks, 0);
}

/* A failing entry late in the batch: nothing before it may have been written. */
static void test_all_or_nothing(void) {
  ngt_alloc a = NGT_ALLOC_NEVER;
  ng_runtime *rt = make_store(&a, 1000, 3, 11);
  uint64_t seed = 33;
  enum { M = 300 };
  ng_id ids[M];
  ng_token v[M];
  make_moves(rt, &seed, M, ids, v);
  state s0 = capture(rt, &a);

  ng_id keep = ids[250];
  ids[250] = 12; /* deleted (every 11th from 1) */
  CHECK_STATUS(ng_token_update_batch(rt, ids, v, M, MOVE_FIELDS), NG_ENOTFOUND);
  CHECK_CONTAINS(ng_last_error(rt), "entry 250");
  CHECK_CONTAINS(ng_last_error(rt), "no token 12");
  ids[250] = 99999;
  CHECK_STATUS(ng_token_update_batch(rt, ids, v, M, MOVE_FIELDS), NG_ENOTFOUND);
  CHECK_CONTAINS(ng_last_error(rt), "no token 99999");
  ids[250] = 0; /* no id at all */
  CHECK_STATUS(ng_token_update_batch(rt, ids, v, M, MOVE_FIELDS), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "entry 250");
  ids[250] = NG_ID_MAX + 1u;
  CHECK_STATUS(ng_token_update_batch(rt, ids, v, M, MOVE_FIELDS), NG_EINVAL);
  ids[250] = keep;

  v[199].weight = NAN;
  CHECK_STATUS(ng_token_update_batch(rt, ids, v, M, MOVE_FIELDS), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "entry 199");
  CHECK_CONTAINS(ng_last_error(rt), "weight");
  v[199].weight = 250.0f;
  CHECK_STATUS(ng_token_update_batch(rt, ids, v, M, MOVE_FIELDS), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "got 250");
  /* Not selected: an out-of-range weight is not read. */
  CHECK_STATUS(ng_token_update_batch(rt, ids, v, 0, NG_TF_COORDS(0)), NG_OK);
  v[199].weight = 1.0f;

  /* Strict mode: the CDNA field limits apply per entry. */
  ng_cdna c;
  ng_cdna_get(rt, &c);
  c.flags |= NG_CDNA_STRICT_MODE;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);
  state s0s = capture(rt, &a);
  v[42].field_radius = (uint8_t)(c.max_field_radius < 255 ? c.max_field_radius + 1 : 0);
  if (c.max_field_radius < 255 || c.min_field_radius > 0) {
    CHECK_STATUS(ng_token_update_batch(rt, ids, v, M, MOVE_FIELDS | NG_TF_FIELD_RADIUS), NG_EINVAL);
    CHECK_CONTAINS(ng_last_error(rt), "entry 42");
    CHECK_CONTAINS(ng_last_error(rt), "field_radius");
  }
  state s1s = capture(rt, &a);
  CHECK(same(&s0s, &s1s));
  c.flags &= (uint8_t)~NG_CDNA_STRICT_MODE;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);
  drop(&s0s);
  drop(&s1s);

  state s1 = capture(rt, &a);
  CHECK(same(&s0, &s1));
  drop(&s0);
  drop(&s1);
  ng_runtime_release(rt);
  CHECK_EQ_INT(a.live_blocks, 0);
}

/* Apply the batch one entry at a time. */
static void apply_singly(ng_runtime *rt, const ng_id *ids, const ng_token *v, size_t n,
                         uint32_t fields) {
  for (size_t i = 0; i < n; i++)
    CHECK_STATUS(ng_token_update(rt, ids[i], &v[i], fields), NG_OK);
}

static void test_duplicates(void) {
  ngt_alloc a = NGT_ALLOC_NEVER, b = NGT_ALLOC_NEVER;
  ng_runtime *x = make_store(&a, 300, 4, 0), *y = make_store(&b, 300, 4, 0);
  ng_id ids[5] = {7, 8, 7, 9, 7};
  ng_token v[5];
  for (int i = 0; i < 5; i++) {
    ng_token_init(&v[i]);
    ng_token_set_coords(&v[i], NG_L1, (float)(10 * i), 1.0f, -2.0f);
    v[i].weight = (float)i;
  }
  CHECK_STATUS(ng_token_update_batch(x, ids, v, 5, MOVE_FIELDS), NG_OK);
  apply_singly(y, ids, v, 5, MOVE_FIELDS);
  ng_token t;
  ng_token_get(x, 7, &t);
  CHECK(t.weight == 4.0f); /* the last entry for 7 wins */
  float xyz[3];
  ng_token_get_coords(&t, NG_L1, xyz);
  CHECK(fabsf(xyz[0] - 40.0f) < 0.006f);
  state sx = capture(x, &a), sy = capture(y, &b);
  CHECK(same(&sx, &sy));
  drop(&sx);
  drop(&sy);
  ng_runtime_release(x);
  ng_runtime_release(y);
}

/* Refuse allocation request k (once, then from k on) for k = 0, 1, ... until the batch
 * succeeds: every failure is NG_ENOMEM with the store unchanged, and the final success equals
 * the single updates. */
static void test_alloc_failure(void) {
  for (int variant = 0; variant < 4; variant++) {
    int once = variant & 1;
    /* Moves alone keep a coordinates-only log; with the weight, whole records. */
    uint32_t fields = variant < 2 ? MOVE_FIELDS : NG_TF_COORDS(0) | NG_TF_COORDS(1);
    ngt_alloc a = NGT_ALLOC_NEVER, b = NGT_ALLOC_NEVER;
    ng_runtime *rt = make_store(&a, 1500, 5, 13), *twin = make_store(&b, 1500, 5, 13);
    uint64_t seed = 55;
    enum { M = 400 };
    ng_id ids[M];
    ng_token v[M];
    make_moves(rt, &seed, M, ids, v);
    apply_singly(twin, ids, v, M, fields);
    state want = capture(twin, &b);
    state s0 = capture(rt, &a);
    long k = 0, enomem = 0, in_grid = 0;
    for (; k < 500; k++) {
      ngt_alloc_arm(&a, k, once);
      ng_status st = ng_token_update_batch(rt, ids, v, M, fields);
      long refused = a.failures;
      ngt_alloc_arm(&a, -1, 0);
      if (st == NG_OK) {
        CHECK_EQ_INT(refused, 0);
        break;
      }
      CHECK_STATUS(st, NG_ENOMEM);
      enomem++;
      if (strstr(ng_last_error(rt), "moving it in the grid")) in_grid++;
      state s1 = capture(rt, &a);
      CHECK(same(&s0, &s1));
      drop(&s1);
    }
    CHECK(k < 500);
    CHECK(enomem >= 4);  /* the log, two spare indexes, grid growth */
    CHECK(in_grid >= 1); /* failures half-way through, after writes */
    state got = capture(rt, &a);
    CHECK(same(&got, &want));
    drop(&got);
    drop(&want);
    drop(&s0);
    ng_runtime_release(rt);
    ng_runtime_release(twin);
    CHECK_EQ_INT(a.live_blocks, 0);
    CHECK_EQ_INT(a.live_bytes, 0);
    CHECK_EQ_INT(b.live_blocks, 0);
  }
}

/* Random batches (duplicates, tombstones, every field) against the same updates one by one. */
static void test_property(void) {
  ngt_alloc a = NGT_ALLOC_NEVER, b = NGT_ALLOC_NEVER;
  ng_runtime *x = make_store(&a, 2000, 6, 9), *y = make_store(&b, 2000, 6, 9);
  uint64_t seed = 66;
  enum { M = 250 };
  static ng_id ids[M];
  static ng_token v[M];
  static const uint32_t field_sets[] = {MOVE_FIELDS, NG_TF_ALL, NG_TF_COORDS(0),
                                        NG_TF_COORDS(1) | NG_TF_FLAGS | NG_TF_DOMAIN,
                                        NG_TF_TIMESTAMP | NG_TF_FIELD_STRENGTH};
  for (int round = 0; round < 25; round++) {
    size_t m = 1 + ngt_rnd(&seed) % M;
    make_moves(x, &seed, m, ids, v);
    for (size_t i = 0; i < m; i++) {
      if (ngt_rnd(&seed) % 8 == 0 && i > 0) ids[i] = ids[ngt_rnd(&seed) % i]; /* duplicates */
      if (ngt_rnd(&seed) % 2) { /* a small step instead: stays in its cell */
        ng_token cur;
        ng_token_get(x, ids[i], &cur);
        for (int k = 0; k < 3; k++)
          v[i].coords[0][k] = (int16_t)(cur.coords[0][k] + rcoord(&seed, 3));
      }
      v[i].flags = (uint16_t)(ngt_rnd(&seed) & 0x0F00);
      v[i].id = ngt_rnd(&seed);
      v[i].timestamp = ngt_rnd(&seed);
      v[i].field_radius = (uint8_t)ngt_rnd(&seed);
      v[i].field_strength = (uint8_t)ngt_rnd(&seed);
    }
    uint32_t fields = field_sets[round % 5];
    CHECK_STATUS(ng_token_update_batch(x, ids, v, m, fields), NG_OK);
    apply_singly(y, ids, v, m, fields);
    if (round % 5 == 4) {
      state sx = capture(x, &a), sy = capture(y, &b);
      CHECK(same(&sx, &sy));
      drop(&sx);
      drop(&sy);
    }
  }
  state sx = capture(x, &a), sy = capture(y, &b);
  CHECK(same(&sx, &sy));
  drop(&sx);
  drop(&sy);
  ng_runtime_release(x);
  ng_runtime_release(y);
}

/* ---- two threads: batches of moves against concurrent queries ---------------------------- */

typedef struct shared {
  ng_runtime *rt;
  atomic_int stop;
  unsigned long bad;
  atomic_ulong queries;
} shared;

static void *reader(void *p) {
  shared *sh = p;
  ng_hits h = {0};
  uint64_t seed = 77;
  while (!atomic_load(&sh->stop)) {
    float c[3] = {(float)rcoord(&seed, 15), (float)rcoord(&seed, 15), (float)rcoord(&seed, 15)};
    if (ng_grid_range(sh->rt, NG_L1, c, 5.0f, 0, NULL, &h) != NG_OK) sh->bad++;
    for (size_t i = 1; i < h.count; i++)
      if (h.items[i].distance < h.items[i - 1].distance || h.items[i].distance > 5.0f) sh->bad++;
    atomic_fetch_add(&sh->queries, 1);
  }
  ng_hits_free(sh->rt, &h);
  return NULL;
}

static void test_threads(void) {
  ngt_alloc a = NGT_ALLOC_NEVER; /* only this thread and the reader allocate; no checks */
  (void)a;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(NULL, &rt), NG_OK);
  uint64_t seed = 88;
  for (int i = 0; i < 2000; i++) {
    ng_token t;
    ng_token_init(&t);
    ng_token_set_coords(&t, NG_L1, (float)rcoord(&seed, 20), (float)rcoord(&seed, 20),
                        (float)rcoord(&seed, 20));
    ng_id id;
    ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id);
  }
  shared sh = {.rt = rt};
  atomic_init(&sh.stop, 0);
  atomic_init(&sh.queries, 0);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, reader, &sh) == 0);
  enum { M = 200 };
  ng_id ids[M];
  ng_token v[M];
  int failures = 0;
  /* At least 150 rounds, and on until the reader has overlapped some of them. */
  for (int round = 0; round < 150 || (atomic_load(&sh.queries) < 100 && round < 100000); round++) {
    for (int i = 0; i < M; i++) {
      ids[i] = 1 + ngt_rnd(&seed) % 2000;
      ng_token_get(rt, ids[i], &v[i]);
      for (int k = 0; k < 3; k++)
        v[i].coords[0][k] = (int16_t)(v[i].coords[0][k] + rcoord(&seed, 64));
    }
    if (ng_token_update_batch(rt, ids, v, M, NG_TF_COORDS(NG_L1)) != NG_OK) failures++;
  }
  atomic_store(&sh.stop, 1);
  pthread_join(th, NULL);
  CHECK_EQ_INT(failures, 0);
  CHECK_EQ_INT(sh.bad, 0);
  CHECK(atomic_load(&sh.queries) >= 100);
  CHECK_EQ_INT(ng_token_count(rt), 2000);
  ng_runtime_release(rt);
}

/* ng_token_get_batch gives exactly what single gets give, zeros where they find nothing, on
 * the dense path and off it (tombstones), for batches far longer than its prefetch distance. */
static void test_get_batch(void) {
  ngt_alloc a = NGT_ALLOC_NEVER;
  for (size_t hole = 0; hole <= 7; hole += 7) {
    ng_runtime *rt = make_store(&a, 3000, 5 + hole, hole);
    if (!rt) {
      CHECK(rt != NULL);
      return;
    }
    enum { M = 1500 };
    static ng_id ids[M];
    static ng_token out[M];
    uint64_t seed = 99;
    for (size_t i = 0; i < M; i++) {
      uint32_t r = ngt_rnd(&seed) % 10;
      ids[i] = r == 0   ? 0
               : r == 1 ? 3000 + ngt_rnd(&seed) % 5000
               : r == 2 ? NG_ID_MAX + 1u
                        : 1 + ngt_rnd(&seed) % 3000;
    }
    size_t found = 12345, want = 0;
    CHECK_STATUS(ng_token_get_batch(rt, ids, M, out, &found), NG_OK);
    for (size_t i = 0; i < M; i++) {
      ng_token one, zero;
      memset(&zero, 0, sizeof zero);
      if (ng_token_get(rt, ids[i], &one) == NG_OK) {
        want++;
        CHECK(memcmp(&one, &out[i], sizeof one) == 0);
      } else {
        CHECK(memcmp(&zero, &out[i], sizeof zero) == 0);
      }
    }
    CHECK_EQ_INT(found, want);
    CHECK(want > M / 2 && want < M);
    CHECK_STATUS(ng_token_get_batch(rt, ids, 40, out, NULL), NG_OK); /* found is optional */
    /* Bad arguments: named, out untouched; n == 0 needs no arrays. */
    memset(out, 0xAB, sizeof out[0]);
    CHECK_STATUS(ng_token_get_batch(NULL, ids, 1, out, &found), NG_EINVAL);
    CHECK_STATUS(ng_token_get_batch(rt, NULL, 1, out, &found), NG_EINVAL);
    CHECK(strstr(ng_last_error(rt), "ids must not be NULL") != NULL);
    CHECK_STATUS(ng_token_get_batch(rt, ids, 1, NULL, &found), NG_EINVAL);
    CHECK(strstr(ng_last_error(rt), "out must not be NULL") != NULL);
    CHECK_EQ_INT(out[0].weight != out[0].weight || out[0].id == 0xABABABABu, 1);
    found = 7;
    CHECK_STATUS(ng_token_get_batch(rt, NULL, 0, NULL, &found), NG_OK);
    CHECK_EQ_INT(found, 0);
    ng_runtime_release(rt);
  }
  CHECK_EQ_INT(a.live_blocks, 0);
}

int main(void) {
  RUN(test_success);
  RUN(test_empty_and_args);
  RUN(test_all_or_nothing);
  RUN(test_busy_and_no_moves);
  RUN(test_duplicates);
  RUN(test_alloc_failure);
  RUN(test_property);
  RUN(test_threads);
  RUN(test_get_batch);
  return ngt_done("test_batch");
}

/* Allocation failure: refuse the Nth allocation of a workload for every N; no change, no leak. */
#include "internal.h"
#include "test.h"
#include "test_alloc.h"

/* ---- a fingerprint of everything observable ------------------------------- */

enum { MAXREC = 48 }; /* the workload never holds more than 40 of each */

/* What a step may change. The grids are left out on purpose: asking them
 * (info, queries) makes a lazy index build itself, which would take those
 * allocations away from the steps under test; they are checked separately
 * against the token table (grid_matches_table). */
typedef struct state {
  ng_stats stats;
  ng_cdna cdna;
  size_t ntok, ncon;
  ng_token toks[MAXREC];
  ng_id tok_ids[MAXREC];
  ng_connection cons[MAXREC];
  ng_id con_ids[MAXREC];
} state;

static bool tok_cb(const ng_token *t, ng_id id, void *ud) {
  state *s = ud;
  if (s->ntok < MAXREC) {
    s->toks[s->ntok] = *t;
    s->tok_ids[s->ntok] = id;
  }
  s->ntok++;
  return true;
}

static bool con_cb(const ng_connection *c, ng_id id, void *ud) {
  state *s = ud;
  if (s->ncon < MAXREC) {
    s->cons[s->ncon] = *c;
    s->con_ids[s->ncon] = id;
  }
  s->ncon++;
  return true;
}

static void take(ng_runtime *rt, ngt_alloc *fa, state *s) {
  int paused = fa->paused;
  fa->paused = 1;
  memset(s, 0, sizeof *s);
  CHECK_STATUS(ng_runtime_stats(rt, &s->stats), NG_OK);
  s->stats.bytes_in_use = s->stats.bytes_peak = 0; /* capacity is not state */
  memset(&s->stats.memory, 0, sizeof s->stats.memory);
  CHECK_STATUS(ng_cdna_get(rt, &s->cdna), NG_OK);
  CHECK_STATUS(ng_token_each(rt, tok_cb, s), NG_OK);
  CHECK_STATUS(ng_connection_each(rt, con_cb, s), NG_OK);
  fa->paused = paused;
}

static int same_state(const state *a, const state *b) {
  return memcmp(a, b, sizeof *a) == 0;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Every space's index holds exactly the live tokens, at their positions, with
 * the CDNA's cell size. Runs with the allocator paused. Returns 1 if so. */
static int grid_matches_table(ng_runtime *rt, ngt_alloc *fa) {
  int paused = fa->paused, ok = 1;
  fa->paused = 1;
  state s;
  take(rt, fa, &s);
  for (int sp = 0; sp < NG_SPACES; sp++) {
    ng_space_info gi;
    CHECK_STATUS(ng_grid_info(rt, sp, &gi), NG_OK);
    ok &= gi.count == s.ntok && gi.cell_size == s.cdna.bucket_sizes[sp];
    for (size_t i = 0; i < s.ntok && i < MAXREC; i++) {
      /* a zero-radius query at the token's own position finds it */
      float xyz[3];
      ng_token_get_coords(&s.toks[i], sp, xyz);
      ng_hits h = {0};
      CHECK_STATUS(ng_grid_range(rt, sp, xyz, 0.0f, 0, NULL, &h), NG_OK);
      int found = 0;
      for (size_t k = 0; k < h.count; k++)
        found |= h.items[k].id == s.tok_ids[i];
      ok &= found;
      ng_hits_free(rt, &h);
    }
    const float lo[3] = {-1e6f, -1e6f, -1e6f}, hi[3] = {1e6f, 1e6f, 1e6f};
    ng_hits h = {0};
    CHECK_STATUS(ng_grid_box(rt, sp, lo, hi, 0, NULL, &h), NG_OK);
    ok &= h.count == s.ntok;
    ng_id ids[MAXREC];
    size_t n = h.count < MAXREC ? h.count : MAXREC;
    for (size_t k = 0; k < n; k++)
      ids[k] = h.items[k].id;
    qsort(ids, n, sizeof ids[0], cmp_u32);
    ok &= n == s.ntok && memcmp(ids, s.tok_ids, n * sizeof ids[0]) == 0;
    ng_hits_free(rt, &h);
  }
  fa->paused = paused;
  return ok;
}

/* ---- the workload --------------------------------------------------------- */

typedef struct ctx {
  ng_runtime *rt;
  ngt_alloc *fa;
  ng_id ids[40];
  ng_hits hits;
  int step;
} ctx;

static ng_status step_create(ctx *c, int i) {
  ng_token t;
  ng_token_init(&t);
  float f = (float)i;
  ng_token_set_coords(&t, NG_L1, f * 7.5f - 100.0f, f * 3.0f, -f);
  ng_token_set_coords(&t, NG_L3, f * 0.5f, -f * 0.25f, 1.0f);
  ng_token_set_coords(&t, NG_L8, f / 20.0f, 0.1f, -f / 40.0f);
  ng_token_set_entity(&t, (unsigned)(i % 16));
  t.weight = f / 4.0f;
  return ng_token_create(c->rt, &t, NG_TF_COORDS_ALL, &c->ids[i]);
}

static ng_status step_connect(ctx *c, int i) {
  ng_connection cn;
  ng_connection_init(&cn);
  ng_connection_set_type(&cn, (unsigned)(i % 3));
  ng_id cid;
  return ng_connection_create(c->rt, c->ids[i], c->ids[(i * 7 + 3) % 40], &cn, &cid);
}

static ng_status step_move(ctx *c, int i) {
  ng_token v;
  ng_token_init(&v);
  float f = (float)i;
  ng_token_set_coords(&v, NG_L1, 200.0f - f * 9.0f, f, f * 2.0f);
  ng_token_set_coords(&v, NG_L2, 0.01f * f, 0.2f, 0.3f);
  ng_token_set_coords(&v, NG_L8, -f / 20.0f, 0.5f, 0.0f);
  v.weight = 1.0f;
  return ng_token_update(c->rt, c->ids[i], &v,
                         NG_TF_COORDS(NG_L1) | NG_TF_COORDS(NG_L2) | NG_TF_COORDS(NG_L8) |
                             NG_TF_WEIGHT);
}

/* Queries change nothing; on failure the hits are empty. */
static ng_status step_query(ctx *c, int i) {
  const float ctr[3] = {0.0f, 10.0f, -5.0f};
  const float lo[3] = {-150.0f, -10.0f, -40.0f}, hi[3] = {150.0f, 100.0f, 40.0f};
  ng_hits fresh = {0};
  ng_hits *h = (i % 2) ? &c->hits : &fresh; /* a reused buffer and a new one */
  ng_status st;
  switch (i % 4) {
  case 0:
    st = ng_grid_range(c->rt, NG_L1, ctr, 120.0f, 0, NULL, h);
    break;
  case 1:
    st = ng_grid_neighbors(c->rt, c->ids[3], NG_L3, 30.0f, 10, NULL, h);
    break;
  case 2:
    st = ng_grid_nearest(c->rt, NG_L8, ctr, 12, NULL, h);
    break;
  default:
    st = ng_grid_box(c->rt, NG_L1, lo, hi, 0, NULL, h);
    break;
  }
  if (st != NG_OK)
    CHECK_EQ_INT(h->count, 0);
  else
    CHECK(h->count > 0);
  ng_hits_free(c->rt, &fresh);
  return st;
}

/* Queries with positions and a filter whose excluded ids need an
 * allocation (more than fit inline): on failure the hits are empty. */
static ng_status step_filtered_query(ctx *c, int i) {
  const float ctr[3] = {0.0f, 10.0f, -5.0f};
  ng_id excl[30];
  for (int k = 0; k < 30; k++)
    excl[k] = c->ids[(k * 7) % 40];
  const ng_filter f = {.exclude = excl, .nexclude = 30, .inactive = true};
  ng_hits fresh = {.positions = true};
  ng_status st = i % 2 ? ng_grid_range(c->rt, NG_L1, ctr, 1e6f, 0, &f, &fresh)
                       : ng_grid_nearest(c->rt, NG_L8, ctr, 40, &f, &fresh);
  if (st != NG_OK)
    CHECK_EQ_INT(fresh.count, 0);
  else
    CHECK(fresh.count > 0 && fresh.xyz != NULL);
  ng_hits_free(c->rt, &fresh);
  return st;
}

/* A box over the whole of space i: builds that space's lazy index. */
static ng_status step_box_all(ctx *c, int i) {
  const float lo[3] = {-1e6f, -1e6f, -1e6f}, hi[3] = {1e6f, 1e6f, 1e6f};
  ng_status st = ng_grid_box(c->rt, i, lo, hi, 0, NULL, &c->hits);
  if (st != NG_OK)
    CHECK_EQ_INT(c->hits.count, 0);
  else
    CHECK_EQ_INT(c->hits.count, 40);
  return st;
}

static ng_status step_delete(ctx *c, int i) {
  size_t n = 0;
  ng_status st = ng_token_delete(c->rt, c->ids[i], &n);
  if (st == NG_OK) CHECK(n > 0);
  return st;
}

static ng_status step_buckets(ctx *c, int i) {
  ng_cdna cd;
  CHECK_STATUS(ng_cdna_get(c->rt, &cd), NG_OK);
  cd.bucket_sizes[NG_L1] = i ? 3.0f : 25.0f;
  cd.bucket_sizes[NG_L3] = i ? 0.5f : 2.0f;
  cd.bucket_sizes[NG_L8] = i ? 0.01f : 0.2f;
  return ng_cdna_set(c->rt, &cd);
}

static ng_status step_profile(ctx *c, int i) {
  (void)i;
  return ng_cdna_set_profile(c->rt, NG_PROFILE_EXPLORER);
}

static ng_status step_clear(ctx *c, int i) {
  (void)i;
  size_t nt = 0, nc = 0;
  ng_status st = ng_token_clear(c->rt, &nt, &nc);
  CHECK(nt > 0);
  return st;
}

/* Run one step; if its allocation was refused, the store must be exactly as
 * before and the status NG_ENOMEM; then the step is retried (the allocator
 * fails only once per run) so the workload goes on. The one exception is a
 * freed slot's place on the reuse list: a delete never fails for it, the slot
 * is retired instead (never reused). */
static void run(ctx *c, ng_status (*fn)(ctx *, int), int i) {
  state before, after;
  if (c->fa->failures) { /* the one failure of this run is behind us */
    CHECK_STATUS(fn(c, i), NG_OK);
    c->step++;
    return;
  }
  take(c->rt, c->fa, &before);
  long failed = c->fa->failures;
  ng_status st = fn(c, i);
  if (c->fa->failures != failed && st == NG_OK) {
    take(c->rt, c->fa, &after);
    CHECK(after.stats.token_slots_retired + after.stats.connection_slots_retired >
          before.stats.token_slots_retired + before.stats.connection_slots_retired);
    CHECK(fn == step_delete || fn == step_clear);
    c->step++;
    return;
  }
  if (c->fa->failures != failed) {
    CHECK_STATUS(st, NG_ENOMEM);
    take(c->rt, c->fa, &after);
    int ok = same_state(&before, &after);
    CHECK(ok);
    if (!ok) fprintf(stderr, "  state changed by failed step %d (i=%d)\n", c->step, i);
    ok = grid_matches_table(c->rt, c->fa);
    CHECK(ok);
    if (!ok) fprintf(stderr, "  grid out of step after failed step %d (i=%d)\n", c->step, i);
    st = fn(c, i);
  }
  CHECK_STATUS(st, NG_OK);
  c->step++;
}

/* One whole workload with the fail_at-th allocation refused. Returns whether
 * a failure was injected (false: the run completed without reaching it). */
static int workload(long fail_at) {
  ngt_alloc fa = NGT_ALLOC_NEVER;
  ngt_alloc_arm(&fa, fail_at - 1, 1);
  ng_config cfg = {0};
  cfg.alloc = ngt_alloc_fn;
  cfg.alloc_ud = &fa;
  ctx c = {0};
  c.fa = &fa;
  ng_status st = ng_runtime_new(&cfg, &c.rt);
  if (st != NG_OK) {
    CHECK_STATUS(st, NG_ENOMEM);
    CHECK(c.rt == NULL);
    CHECK_EQ_INT(fa.live_blocks, 0);
    CHECK_EQ_INT(fa.live_bytes, 0);
    return 1;
  }
  for (int i = 0; i < 40; i++)
    run(&c, step_create, i);
  for (int i = 0; i < 40; i++)
    run(&c, step_connect, i);
  for (int i = 0; i < NG_SPACES; i++)
    run(&c, step_box_all, i);
  for (int i = 0; i < 40; i += 3)
    run(&c, step_move, i);
  for (int i = 0; i < 8; i++)
    run(&c, step_query, i);
  for (int i = 0; i < 2; i++)
    run(&c, step_filtered_query, i);
  run(&c, step_delete, 3 + 1);
  run(&c, step_delete, 10);
  run(&c, step_buckets, 1);
  for (int i = 0; i < 8; i++)
    run(&c, step_query, i);
  run(&c, step_buckets, 0);
  run(&c, step_profile, 0);
  run(&c, step_clear, 0);
  for (int i = 0; i < 20; i++)
    run(&c, step_create, i);
  CHECK(grid_matches_table(c.rt, &fa));
  ng_hits_free(c.rt, &c.hits);
  CHECK_EQ_INT(c.hits.count, 0);
  ng_stats s;
  ng_runtime_stats(c.rt, &s);
  CHECK_EQ_INT((long long)s.bytes_in_use, fa.live_bytes);
  ng_runtime_release(c.rt);
  CHECK_EQ_INT(fa.live_blocks, 0);
  CHECK_EQ_INT(fa.live_bytes, 0);
  return fa.failures > 0;
}

static void test_every_allocation_fails_once(void) {
  long n = 1;
  while (workload(n) && n < 100000)
    n++;
  printf("  %ld allocation points tried\n", n - 1);
  CHECK(n > 20);     /* the workload does allocate */
  CHECK(n < 100000); /* and reaches an end */
}

/* ---- one update that moves a token in every space ------------------------ */

/* A fresh store of 40 tokens in one small cluster in every space (crowded,
 * sorted cells), every space's index built; *mover is one of them. */
static ng_runtime *move_store(ngt_alloc *fa, ng_id *mover) {
  ng_config cfg = {0};
  cfg.alloc = ngt_alloc_fn;
  cfg.alloc_ud = fa;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  if (!rt) return NULL;
  for (int i = 0; i < 40; i++) {
    ng_token t;
    ng_token_init(&t);
    for (int s = 0; s < NG_SPACES; s++)
      for (int a = 0; a < 3; a++)
        t.coords[s][a] = (int16_t)((i * (7 + a) + s) % 13);
    ng_id id = 0;
    CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);
    if (i == 20) *mover = id;
  }
  CHECK(grid_matches_table(rt, fa)); /* builds every index */
  return rt;
}

/* One ng_token_update moves a token in all eight spaces: a raw unit in the
 * even ones (inside its cell: the entry is rewritten in place, shifting its
 * sorted neighbours) and far in the odd ones (out of its cell: a side entry,
 * which allocates). Failing each allocation in turn, the update must move
 * the spaces it already moved back: the store and every query as before,
 * the token found where it was and not where it was going, each index
 * consistent. */
static void test_update_moves_back_on_failure(void) {
  int failures = 0;
  for (long fail_at = 0; fail_at < 1000; fail_at++) {
    ngt_alloc fa = NGT_ALLOC_NEVER;
    ng_id id = 0;
    ng_runtime *rt = move_store(&fa, &id);
    if (!rt) return;
    ng_token cur, next;
    CHECK_STATUS(ng_token_get(rt, id, &cur), NG_OK);
    next = cur;
    for (int s = 0; s < NG_SPACES; s++)
      for (int a = 0; a < 3; a++)
        next.coords[s][a] = (int16_t)(cur.coords[s][a] + (s % 2 ? 20000 : 1));
    state before, after;
    take(rt, &fa, &before);
    ngt_alloc_arm(&fa, fail_at, 1);
    ng_status st = ng_token_update(rt, id, &next, NG_TF_COORDS_ALL);
    ngt_alloc_arm(&fa, -1, 0);
    take(rt, &fa, &after);
    CHECK(grid_matches_table(rt, &fa));
    ngi_read_lock(rt);
    for (int s = 0; s < NG_SPACES; s++)
      CHECK(ngi_grid_consistent(rt->grids[s]));
    ngi_read_unlock(rt);
    if (st != NG_OK) {
      CHECK_STATUS(st, NG_ENOMEM);
      failures++;
      CHECK(same_state(&before, &after));
      for (int s = 0; s < NG_SPACES; s++) {
        float xyz[3];
        ng_token_get_coords(&next, s, xyz);
        ng_hits h = {0};
        CHECK_STATUS(ng_grid_range(rt, s, xyz, 0.0f, 0, NULL, &h), NG_OK);
        for (size_t k = 0; k < h.count; k++)
          CHECK(h.items[k].id != id);
        ng_hits_free(rt, &h);
      }
    } else {
      ng_token got;
      CHECK_STATUS(ng_token_get(rt, id, &got), NG_OK);
      CHECK(memcmp(got.coords, next.coords, sizeof got.coords) == 0);
    }
    ng_runtime_release(rt);
    CHECK_EQ_INT(fa.live_blocks, 0);
    if (st == NG_OK) break;
  }
  printf("  %d allocation points of the update failed and were undone\n", failures);
  CHECK(failures >= 4); /* at least one in each odd space */
}

int main(void) {
  RUN(test_every_allocation_fails_once);
  RUN(test_update_moves_back_on_failure);
  return ngt_done("test_alloc_fail");
}

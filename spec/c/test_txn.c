/* Transactions: random mixed writes rolled back at a random point leave the
 * store byte-identical (records, slot map, placement, connections and their
 * lists, CDNA, id allocators and free lists); the same writes committed match
 * them done without a transaction; savepoints; misuse; out of memory;
 * readers never see a partial transaction (run under TSan in CI). */
#include "conn_table.h"
#include "internal.h"
#include "test.h"
#include "test_alloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

/* ---- hashing the store ------------------------------------------------------ */

static void mix(uint64_t *h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    *h ^= b[i];
    *h *= 0x100000001b3ull;
  }
}
#define MIXV(h, v)                                                                                 \
  do {                                                                                             \
    uint64_t mix_v = (uint64_t)(v);                                                                \
    mix((h), &mix_v, sizeof mix_v);                                                                \
  } while (0)

static void mix_ids(uint64_t *h, const ngi_idgen *g) {
  MIXV(h, g->epoch);
  MIXV(h, g->fresh);
  MIXV(h, g->last);
  MIXV(h, g->retired);
  if (g->ready_n > g->ready_at)
    mix(h, g->ready + g->ready_at, (g->ready_n - g->ready_at) * sizeof *g->ready);
  if (g->pending_n) mix(h, g->pending, g->pending_n * sizeof *g->pending);
  if (g->pending_n) MIXV(h, g->pending_min);
}

/* The whole store as the table holds it: every position (tombstones too),
 * every slot-map entry and placement byte of a slot ever issued, every
 * connection slot with its links, what the maps answer, the CDNA and both
 * allocators with their free lists. (The hash maps' bucket order and the
 * grids are indexes: the queries compare those.) */
static uint64_t store_hash(ng_runtime *rt) {
  uint64_t h = 0xcbf29ce484222325ull;
  const ngi_token_table *t = &rt->tokens;
  MIXV(&h, t->len);
  MIXV(&h, t->live);
  mix(&h, t->nplaced, sizeof t->nplaced);
  MIXV(&h, atomic_load(&t->dense));
  for (size_t i = 0; i < t->len; i++)
    mix(&h, ngi_tok_at(t, i), sizeof(ng_token));
  for (uint32_t local = 1; local < t->ids.fresh; local++) {
    MIXV(&h, ngi_slot_entry(t, local));
    MIXV(&h, ngi_placed(t, local));
  }
  mix_ids(&h, &t->ids);
  ngi_conns *c = rt->conns;
  MIXV(&h, c->len);
  MIXV(&h, c->live);
  MIXV(&h, c->adj_n);
  for (size_t i = 0; i < c->len; i++) {
    mix(&h, &c->recs[i], sizeof c->recs[i]);
    mix(&h, &c->meta[i], sizeof c->meta[i]);
    MIXV(&h, ngi_conns_find_slot(c, c->meta[i].id));
  }
  for (uint32_t local = 1; local < t->ids.fresh; local++) {
    const adj_entry *e = ngi_conns_find_adj(c, local);
    if (e) mix(&h, e, sizeof *e);
  }
  mix_ids(&h, &c->ids);
  mix(&h, &rt->cdna, sizeof rt->cdna);
  return h;
}

/* The store as the API shows it: tokens and connections by id, each
 * token's placement and connection lists in order, the CDNA, the next ids
 * and free slots. Equal for the same writes whatever the tables' layout
 * (a transaction compacts only when it commits). */
static uint64_t api_hash(ng_runtime *rt) {
  uint64_t h = 0xcbf29ce484222325ull;
  ng_id id = 0, list[256];
  while (ng_token_next(rt, id, &id) == NG_OK) {
    ng_token tok;
    unsigned spaces = 0;
    CHECK_STATUS(ng_token_get(rt, id, &tok), NG_OK);
    CHECK_STATUS(ng_token_spaces(rt, id, &spaces), NG_OK);
    MIXV(&h, id);
    mix(&h, &tok, sizeof tok);
    MIXV(&h, spaces);
    for (int dir = 0; dir < 2; dir++) {
      size_t n = 0;
      CHECK_STATUS(ng_token_connections(rt, id, dir ? NG_IN : NG_OUT, list, 256, &n), NG_OK);
      mix(&h, list, (n < 256 ? n : 256) * sizeof *list);
    }
  }
  id = 0;
  while (ng_connection_next(rt, id, &id) == NG_OK) {
    ng_connection rec;
    CHECK_STATUS(ng_connection_get(rt, id, &rec), NG_OK);
    MIXV(&h, id);
    mix(&h, &rec, sizeof rec);
  }
  ng_cdna cd;
  ng_cdna_get(rt, &cd);
  mix(&h, &cd, sizeof cd);
  ng_stats st;
  ng_runtime_stats(rt, &st);
  MIXV(&h, st.next_token_id);
  MIXV(&h, st.next_connection_id);
  MIXV(&h, st.token_slots_free);
  MIXV(&h, st.connection_slots_free);
  MIXV(&h, st.token_slots_retired);
  mix(&h, st.placed, sizeof st.placed);
  mix_ids(&h, &rt->tokens.ids);
  mix_ids(&h, &rt->conns->ids);
  return h;
}

/* What range queries in L1 and L2 answer, hashed. */
static uint64_t query_hash(ng_runtime *rt) {
  uint64_t h = 0xcbf29ce484222325ull;
  ng_hits hits = {0};
  const float centers[3][3] = {{0, 0, 0}, {5, -5, 2}, {-10, 10, -3}};
  for (int s = 0; s < 2; s++)
    for (int k = 0; k < 3; k++) {
      CHECK_STATUS(ng_grid_range(rt, s, centers[k], 8.0f, 0, NULL, &hits), NG_OK);
      MIXV(&h, hits.count);
      for (size_t i = 0; i < hits.count; i++)
        MIXV(&h, hits.items[i].id);
    }
  ng_hits_free(rt, &hits);
  return h;
}

/* The bytes of a snapshot of rt (malloc'd, *n long), or NULL. */
static unsigned char *snapshot_bytes(ng_runtime *rt, size_t *n) {
  char path[] = "/tmp/ngt_txn_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return NULL;
  close(fd);
  unsigned char *buf = NULL;
  if (ng_snapshot_save(rt, path) == NG_OK) {
    FILE *f = fopen(path, "rb");
    if (f) {
      fseek(f, 0, SEEK_END);
      long len = ftell(f);
      fseek(f, 0, SEEK_SET);
      buf = malloc(len > 0 ? (size_t)len : 1);
      *n = buf ? fread(buf, 1, (size_t)len, f) : 0;
      fclose(f);
    }
  }
  remove(path);
  return buf;
}

/* ---- random writes ------------------------------------------------------------ */

static uint32_t fixed_clock_now = 1700000000u;
static uint64_t fixed_clock(void *ud) {
  (void)ud;
  return fixed_clock_now;
}

static ng_runtime *new_rt(ngt_alloc *a) {
  ng_config cfg = {0};
  cfg.clock = fixed_clock;
  if (a) {
    cfg.alloc = ngt_alloc_fn;
    cfg.alloc_ud = a;
  }
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  return rt;
}

static float rnd_coord(uint64_t *s) {
  return (float)((int)(ngt_rnd(s) % 4001) - 2000) / 100.0f; /* -20 .. 20 */
}

/* A live token id (or 0 when there is none), at random. */
static ng_id any_token(ng_runtime *rt, uint64_t *s) {
  ng_stats st;
  ng_runtime_stats(rt, &st);
  if (st.tokens == 0) return 0;
  ng_id top = st.next_token_id ? st.next_token_id : NG_ID_MAX;
  ng_id id = 0;
  if (ng_token_next(rt, ngt_rnd(s) % top, &id) != NG_OK && ng_token_next(rt, 0, &id) != NG_OK)
    return 0;
  return id;
}

static ng_id any_connection(ng_runtime *rt, uint64_t *s) {
  ng_stats st;
  ng_runtime_stats(rt, &st);
  if (st.connections == 0) return 0;
  ng_id top = st.next_connection_id ? st.next_connection_id : NG_ID_MAX;
  ng_id id = 0;
  if (ng_connection_next(rt, ngt_rnd(s) % top, &id) != NG_OK &&
      ng_connection_next(rt, 0, &id) != NG_OK)
    return 0;
  return id;
}

/* One random write (failures such as a duplicate connection are writes too:
 * they must change nothing). */
static void random_write(ng_runtime *rt, uint64_t *s) {
  unsigned op = ngt_rnd(s) % 100;
  if (ngt_rnd(s) % 20000 == 0) { /* now and then everything goes */
    (void)ng_token_clear(rt, NULL, NULL);
    return;
  }
  ng_token v;
  ng_token_init(&v);
  if (op < 22) { /* create, placed in a random subset of L1, L2 */
    unsigned spaces = ngt_rnd(s) % 4;
    ng_token_set_coords(&v, NG_L1, rnd_coord(s), rnd_coord(s), rnd_coord(s));
    ng_token_set_coords(&v, NG_L2, rnd_coord(s), rnd_coord(s), rnd_coord(s));
    v.weight = (float)(ngt_rnd(s) % 100);
    (void)ng_token_create(rt, &v, spaces, NULL);
  } else if (op < 34) { /* update weight and flags */
    v.weight = (float)(ngt_rnd(s) % 100);
    v.flags = (uint16_t)ngt_rnd(s);
    (void)ng_token_update(rt, any_token(rt, s), &v, NG_TF_WEIGHT | NG_TF_FLAGS);
  } else if (op < 50) { /* move or place */
    double xyz[3] = {rnd_coord(s), rnd_coord(s), rnd_coord(s)};
    (void)ng_token_place(rt, any_token(rt, s), (int)(ngt_rnd(s) % 2), xyz);
  } else if (op < 55) {
    (void)ng_token_unplace(rt, any_token(rt, s), (int)(ngt_rnd(s) % 2));
  } else if (op < 70) {
    (void)ng_token_delete(rt, any_token(rt, s), NULL);
  } else if (op < 83) {
    ng_connection c;
    ng_connection_init(&c);
    (void)ng_connection_set_type(&c, ngt_rnd(s) % 4);
    (void)ng_connection_create(rt, any_token(rt, s), any_token(rt, s), &c, NULL);
  } else if (op < 88) {
    ng_connection c;
    ng_connection_init(&c);
    c.rigidity = (uint8_t)ngt_rnd(s);
    (void)ng_connection_update(rt, any_connection(rt, s), &c, NG_CF_RIGIDITY);
  } else if (op < 90) {
    (void)ng_connection_learn(rt, any_connection(rt, s), NG_LEARN_ACTIVATE, NULL);
  } else if (op < 97) {
    (void)ng_connection_delete(rt, any_connection(rt, s));
  } else if (op < 99) { /* a small batch of moves */
    ng_id ids[4];
    ng_token vals[4];
    for (int i = 0; i < 4; i++) {
      ids[i] = any_token(rt, s);
      ng_token_init(&vals[i]);
      ng_token_set_coords(&vals[i], NG_L1, rnd_coord(s), rnd_coord(s), rnd_coord(s));
    }
    (void)ng_token_update_batch(rt, ids, vals, 4, NG_TF_COORDS(NG_L1));
  } else { /* the CDNA: a bucket size, and now and then L2's scale (re-encodes) */
    ng_cdna cd;
    ng_cdna_get(rt, &cd);
    cd.bucket_sizes[NG_L1] = cd.bucket_sizes[NG_L1] == 10.0f ? 20.0f : 10.0f;
    if (ngt_rnd(s) % 4 == 0)
      cd.dimension_scales[NG_L2] = cd.dimension_scales[NG_L2] == 1.0f ? 2.0f : 1.0f;
    (void)ng_cdna_set(rt, &cd);
  }
}

/* A store of n tokens, a few hundred links and ~1000 freed slots waiting
 * for reuse (so transactions form reuse batches). */
static void fill(ng_runtime *rt, uint64_t *s, int n) {
  for (int i = 0; i < n; i++) {
    ng_token v;
    ng_token_init(&v);
    ng_token_set_coords(&v, NG_L1, rnd_coord(s), rnd_coord(s), rnd_coord(s));
    ng_token_set_coords(&v, NG_L2, rnd_coord(s), rnd_coord(s), rnd_coord(s));
    CHECK_STATUS(ng_token_create(rt, &v, ngt_rnd(s) % 4, NULL), NG_OK);
  }
  for (int i = 0; i < n / 2; i++) {
    ng_connection c;
    ng_connection_init(&c);
    (void)ng_connection_create(rt, any_token(rt, s), any_token(rt, s), &c, NULL);
  }
  for (int i = 0; i < n / 2; i++)
    (void)ng_token_delete(rt, any_token(rt, s), NULL);
}

/* ---- the tests --------------------------------------------------------------- */

/* 1,000 transactions of up to 10,000 mixed writes, each rolled back at a
 * random point: the store, the queries and the next ids are as before. */
static void test_rollback_random(void) {
  uint64_t s = 0x9E3779B97F4A7C15ull;
  ng_runtime *rt = new_rt(NULL);
  fill(rt, &s, 2000);
  uint64_t before = store_hash(rt), api_before = api_hash(rt), q_before = query_hash(rt);
  ng_stats st0;
  ng_runtime_stats(rt, &st0);
  size_t snap_n = 0;
  unsigned char *snap = snapshot_bytes(rt, &snap_n);
  CHECK(snap != NULL);
  int rounds = getenv("NGT_TXN_ROUNDS") ? atoi(getenv("NGT_TXN_ROUNDS")) : 1000;
  int bad = 0;
  for (int round = 0; round < rounds && bad < 3; round++) {
    int fail_at = (int)(ngt_rnd(&s) % 10000);
    CHECK_STATUS(ng_txn_begin(rt), NG_OK);
    for (int i = 0; i < fail_at; i++)
      random_write(rt, &s);
    CHECK_STATUS(ng_txn_rollback(rt), NG_OK);
    if (store_hash(rt) != before) {
      fprintf(stderr, "round %d: store differs after rolling back %d writes\n", round, fail_at);
      bad++;
    }
    if (round % 50 == 0) {
      CHECK(api_hash(rt) == api_before);
      CHECK(query_hash(rt) == q_before);
      size_t n = 0;
      unsigned char *again = snapshot_bytes(rt, &n); /* the saved file, byte for byte */
      CHECK(again && snap && n == snap_n && memcmp(again, snap, n) == 0);
      free(again);
    }
  }
  CHECK_EQ_INT(bad, 0);
  CHECK(query_hash(rt) == q_before);
  ng_stats st;
  ng_runtime_stats(rt, &st);
  CHECK_EQ_INT(st.next_token_id, st0.next_token_id);
  CHECK_EQ_INT(st.next_connection_id, st0.next_connection_id);
  free(snap);
  ng_runtime_release(rt);
}

/* The same writes committed in transactions (of random length) and done
 * one by one without: the same store, as the API shows it, and queries. */
static void test_commit_matches_plain(void) {
  for (uint64_t seed = 1; seed <= 4; seed++) {
    uint64_t s1 = seed * 0x2545F4914F6CDD1Dull, s2 = s1, split = seed;
    ng_runtime *a = new_rt(NULL), *b = new_rt(NULL);
    fill(a, &s1, 2000);
    fill(b, &s2, 2000);
    for (int done = 0; done < 20000;) {
      int n = (int)(ngt_rnd(&split) % 3000) + 1;
      CHECK_STATUS(ng_txn_begin(a), NG_OK);
      for (int i = 0; i < n; i++) {
        random_write(a, &s1);
        random_write(b, &s2);
      }
      CHECK_STATUS(ng_txn_commit(a), NG_OK);
      done += n;
    }
    CHECK(api_hash(a) == api_hash(b));
    CHECK(query_hash(a) == query_hash(b));
    ng_runtime_release(a);
    ng_runtime_release(b);
  }
}

/* Savepoints undo only their own writes; release keeps them. */
static void test_savepoints(void) {
  ng_runtime *rt = new_rt(NULL);
  ng_id a = ngt_token_at(rt, 1, 1, 1);
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  ng_id b = ngt_token_at(rt, 2, 2, 2);
  uint64_t mid = store_hash(rt);
  ng_savepoint sp = 0, sp2 = 0;
  CHECK_STATUS(ng_txn_savepoint(rt, &sp), NG_OK);
  CHECK_EQ_INT(sp, 1);
  ngt_token_at(rt, 3, 3, 3);
  ngt_link(rt, a, b, 0);
  CHECK_STATUS(ng_token_delete(rt, a, NULL), NG_OK);
  CHECK_STATUS(ng_txn_savepoint(rt, &sp2), NG_OK);
  CHECK_EQ_INT(sp2, 2);
  CHECK_STATUS(ng_txn_rollback_to(rt, sp), NG_OK);
  CHECK(store_hash(rt) == mid);
  CHECK_STATUS(ng_txn_release(rt, sp2), NG_EINVAL); /* ended with sp */
  CHECK_STATUS(ng_txn_savepoint(rt, &sp), NG_OK);
  ng_id c = ngt_token_at(rt, 4, 4, 4);
  CHECK_STATUS(ng_txn_release(rt, sp), NG_OK);
  CHECK_STATUS(ng_txn_commit(rt), NG_OK);
  ng_token tok;
  CHECK_STATUS(ng_token_get(rt, a, &tok), NG_OK);
  CHECK_STATUS(ng_token_get(rt, b, &tok), NG_OK);
  CHECK_STATUS(ng_token_get(rt, c, &tok), NG_OK);
  CHECK_EQ_INT(ng_token_count(rt), 3);
  ng_runtime_release(rt);
}

static bool write_in_callback(const ng_token *tok, ng_id id, void *ud) {
  (void)tok;
  ng_runtime *rt = ud;
  CHECK_STATUS(ng_token_delete(rt, id, NULL), NG_EBUSY);
  CHECK_STATUS(ng_txn_begin(rt), NG_EBUSY);
  return false;
}

/* Misuse is reported: no transaction, a second begin, writes from an
 * iteration callback, a runtime released with one open. */
static void test_misuse(void) {
  ng_runtime *rt = new_rt(NULL);
  CHECK_STATUS(ng_txn_commit(rt), NG_EINVAL);
  CHECK_STATUS(ng_txn_rollback(rt), NG_EINVAL);
  ng_savepoint sp;
  CHECK_STATUS(ng_txn_savepoint(rt, &sp), NG_EINVAL);
  CHECK_STATUS(ng_txn_begin(NULL), NG_EINVAL);
  CHECK(!ng_txn_open(rt));
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  CHECK(ng_txn_open(rt));
  CHECK_STATUS(ng_txn_begin(rt), NG_EBUSY);
  CHECK_CONTAINS(ng_last_error(rt), "already has a transaction open");
  ngt_token_at(rt, 0, 0, 0);
  CHECK_STATUS(ng_token_each(rt, write_in_callback, rt), NG_OK);
  CHECK_STATUS(ng_txn_rollback_to(rt, 1), NG_EINVAL);
  CHECK_STATUS(ng_txn_rollback(rt), NG_OK);
  CHECK_EQ_INT(ng_token_count(rt), 0);
  /* The next create gets the id it would have had. */
  CHECK_EQ_INT(ngt_token_at(rt, 0, 0, 0), 1);

  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  ngt_token_at(rt, 0, 0, 0);
  ng_runtime_release(rt); /* the last reference, with the transaction open */
  CHECK_CONTAINS(ng_last_error(NULL), "transaction was still open");
  CHECK(!ng_txn_open(rt) || 1); /* rt is gone: only the message is left to check */
}

/* One thread may keep transactions open on many runtimes at once. They end in the reverse order
 * of their begins: each runtime's lock is then taken after the ones still held, always in one
 * order (ending them in another order is a lock-order inversion that ThreadSanitizer reports, as
 * it would be between two threads doing the same). */
static void test_many_runtimes(void) {
  enum { N = 40 };
  ng_runtime *rts[N];
  for (int i = 0; i < N; i++) {
    rts[i] = new_rt(NULL);
    CHECK_STATUS(ng_txn_begin(rts[i]), NG_OK);
    CHECK_STATUS(ng_token_create(rts[i], NULL, 0, NULL), NG_OK);
  }
  for (int i = N - 1; i >= 0; i--) {
    CHECK_STATUS(ng_token_create(rts[i], NULL, 0, NULL), NG_OK);
    CHECK_STATUS(i % 2 ? ng_txn_commit(rts[i]) : ng_txn_rollback(rts[i]), NG_OK);
    CHECK_EQ_INT(ng_token_count(rts[i]), i % 2 ? 2 : 0);
    ng_runtime_release(rts[i]);
  }
}

/* An allocation failure inside a transaction rolls all of it back and
 * reports NG_ENOMEM; the transaction then refuses writes until it ends. */
static void test_out_of_memory(void) {
  for (long after = 0; after < 24; after++) {
    ngt_alloc al = NGT_ALLOC_NEVER;
    ng_runtime *rt = new_rt(&al);
    uint64_t s = 77;
    fill(rt, &s, 200);
    uint64_t before = store_hash(rt);
    CHECK_STATUS(ng_txn_begin(rt), NG_OK);
    ngt_alloc_arm(&al, after, 0);
    ng_status st = NG_OK;
    /* Creates and links until the allocator's refusal: a few dozen requests. */
    ng_id prev = 0;
    for (int i = 0; i < 100000 && st == NG_OK; i++) {
      ng_id id = 0;
      st = ng_token_create(rt, NULL, 1, &id);
      if (st == NG_OK && prev) st = ng_connection_create(rt, prev, id, NULL, NULL);
      prev = id;
    }
    CHECK_STATUS(st, NG_ENOMEM);
    ngt_alloc_arm(&al, -1, 0);
    CHECK(store_hash(rt) == before);
    CHECK_STATUS(ng_token_create(rt, NULL, 1, NULL), NG_ENOMEM);
    CHECK_CONTAINS(ng_last_error(rt), "rolled back");
    CHECK_STATUS(ng_txn_commit(rt), NG_ENOMEM);
    CHECK(!ng_txn_open(rt));
    CHECK(store_hash(rt) == before);
    CHECK_STATUS(ng_token_create(rt, NULL, 1, NULL), NG_OK);
    ng_runtime_release(rt);
    CHECK_EQ_INT(al.live_blocks, 0);
  }
}

/* ---- threads: readers never see a partial transaction ----------------------- */

typedef struct shared {
  ng_runtime *rt;
  ng_id a, b;
  atomic_int stop;
  atomic_long partial, reads;
} shared;

/* Each transaction moves weight from a to b (the sum stays 100 at every
 * commit) after writing a marker weight 77 to a that no commit keeps. */
static void *writer(void *p) {
  shared *sh = p;
  uint64_t s = 5;
  for (int i = 0; i < 3000; i++) {
    ng_token v;
    ng_token_init(&v);
    CHECK_STATUS(ng_txn_begin(sh->rt), NG_OK);
    v.weight = 77;
    CHECK_STATUS(ng_token_update(sh->rt, sh->a, &v, NG_TF_WEIGHT), NG_OK);
    float x = (float)(ngt_rnd(&s) % 50);
    v.weight = x;
    CHECK_STATUS(ng_token_update(sh->rt, sh->a, &v, NG_TF_WEIGHT), NG_OK);
    v.weight = 100 - x;
    CHECK_STATUS(ng_token_update(sh->rt, sh->b, &v, NG_TF_WEIGHT), NG_OK);
    if (i % 3 == 0) {
      v.weight = 77;
      CHECK_STATUS(ng_token_update(sh->rt, sh->b, &v, NG_TF_WEIGHT), NG_OK);
      CHECK_STATUS(ng_txn_rollback(sh->rt), NG_OK);
    } else {
      CHECK_STATUS(ng_txn_commit(sh->rt), NG_OK);
    }
  }
  atomic_store(&sh->stop, 1);
  return NULL;
}

static void *reader(void *p) {
  shared *sh = p;
  ng_id ids[2] = {sh->a, sh->b};
  ng_token out[2];
  while (!atomic_load(&sh->stop)) {
    ng_token t;
    if (ng_token_get(sh->rt, sh->a, &t) == NG_OK && t.weight == 77)
      atomic_fetch_add(&sh->partial, 1);
    if (ng_token_get_batch(sh->rt, ids, 2, out, NULL) == NG_OK &&
        out[0].weight + out[1].weight != 100.0f)
      atomic_fetch_add(&sh->partial, 1);
    atomic_fetch_add(&sh->reads, 1);
  }
  return NULL;
}

static void test_threads_see_whole_transactions(void) {
  shared sh;
  memset(&sh, 0, sizeof sh);
  sh.rt = new_rt(NULL);
  ng_token v;
  ng_token_init(&v);
  v.weight = 50;
  CHECK_STATUS(ng_token_create(sh.rt, &v, 0, &sh.a), NG_OK);
  CHECK_STATUS(ng_token_create(sh.rt, &v, 0, &sh.b), NG_OK);
  pthread_t w, r[2];
  pthread_create(&r[0], NULL, reader, &sh);
  pthread_create(&r[1], NULL, reader, &sh);
  pthread_create(&w, NULL, writer, &sh);
  pthread_join(w, NULL);
  pthread_join(r[0], NULL);
  pthread_join(r[1], NULL);
  CHECK_EQ_INT(atomic_load(&sh.partial), 0);
  CHECK(atomic_load(&sh.reads) > 0);
  ng_runtime_release(sh.rt);
}

int main(void) {
  RUN(test_savepoints);
  RUN(test_misuse);
  RUN(test_many_runtimes);
  RUN(test_out_of_memory);
  RUN(test_threads_see_whole_transactions);
  RUN(test_commit_matches_plain);
  RUN(test_rollback_random);
  return ngt_done("test_txn");
}

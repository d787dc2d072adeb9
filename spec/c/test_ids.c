/* 64-bit ids over reused slots: long churn, stale ids after reuse, snapshots, determinism, the
 * live limit. */
#include "internal.h"
#include "test.h"

#include <unistd.h>

/* Sanitizer builds run the churn 25 times shorter. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NGT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define NGT_SANITIZED 1
#endif
#endif
#ifdef NGT_SANITIZED
#define CHURN 2000000L
#else
#define CHURN 50000000L
#endif

enum { ALIVE = 5, REUSE = 1024 /* NGI_REUSE_AFTER: more free slots than this come back */ };

static char tmpdir[] = "/tmp/ng_ids_XXXXXX";

static ng_runtime *new_rt(void) {
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(NULL, &rt), NG_OK);
  return rt;
}

/* Save rt to a file and load it back (NULL on failure, after a failed CHECK). */
static ng_runtime *reload(ng_runtime *rt, const char *name) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  CHECK_STATUS(ng_snapshot_save(rt, path), NG_OK);
  ng_runtime *back = NULL;
  CHECK_STATUS(ng_snapshot_load(path, NULL, &back), NG_OK);
  unlink(path);
  return back;
}

/* CHURN tokens created and deleted with at most ALIVE alive: every create succeeds, ids always
 * grow, the freed slots come back (memory stays small, the slot in use stays low). */
static void test_token_churn(void) {
  ng_runtime *rt = new_rt();
  ng_id ring[ALIVE] = {0}, prev = 0;
  long failed = 0, not_growing = 0;
  uint32_t top_slot = 0;
  for (long i = 0; i < CHURN; i++) {
    ng_id *slot = &ring[i % ALIVE];
    if (*slot && ng_token_delete(rt, *slot, NULL) != NG_OK) failed++;
    ng_id id = 0;
    if (ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id) != NG_OK) {
      failed++;
      *slot = 0;
      continue;
    }
    not_growing += id <= prev;
    prev = id;
    *slot = id;
    if (NG_TOKEN_SLOT(id) > top_slot) top_slot = NG_TOKEN_SLOT(id);
  }
  CHECK_EQ_INT(failed, 0);
  CHECK_EQ_INT(not_growing, 0);
  CHECK(NG_TOKEN_GEN(prev) > 0);
  CHECK(prev <= NG_ID_MAX);
  CHECK(top_slot <= 2 * (REUSE + 1) + ALIVE); /* slots are reused, not used up */
  CHECK_EQ_INT(ng_token_count(rt), ALIVE);
  ng_stats st;
  CHECK_STATUS(ng_runtime_stats(rt, &st), NG_OK);
  CHECK(st.bytes_in_use < 4u << 20);
  CHECK(st.token_slots_free <= 2 * (REUSE + 1));
  CHECK_EQ_INT(st.token_slots_retired, 0);
  CHECK(st.next_token_id > prev);
  /* the last ALIVE are live, everything before is gone */
  ng_token t;
  for (int k = 0; k < ALIVE; k++)
    CHECK_STATUS(ng_token_get(rt, ring[k], &t), NG_OK);
  printf("  %ld tokens, last id %llu (generation %llu)\n", CHURN, (unsigned long long)prev,
         (unsigned long long)NG_TOKEN_GEN(prev));
  ng_runtime_release(rt);
}

/* The same for connections between three tokens: (from, to, type) never repeats among the
 * ALIVE live ones, so every create succeeds. */
static void test_connection_churn(void) {
  ng_runtime *rt = new_rt();
  ng_id tok[3] = {ngt_token_at(rt, 0, 0, 0), ngt_token_at(rt, 1, 0, 0), ngt_token_at(rt, 0, 1, 0)};
  ng_id ring[ALIVE] = {0}, prev = 0;
  long failed = 0, not_growing = 0;
  uint32_t top_slot = 0;
  ng_connection c;
  ng_connection_init(&c);
  for (long i = 0; i < CHURN; i++) {
    ng_id *slot = &ring[i % ALIVE];
    if (*slot && ng_connection_delete(rt, *slot) != NG_OK) failed++;
    long combo = i % 18; /* 9 (from, to) pairs x 2 types */
    c.connection_type = combo < 9 ? NG_CONN_ASSOCIATED_WITH : 0x10;
    ng_id id = 0;
    if (ng_connection_create(rt, tok[combo % 3], tok[combo / 3 % 3], &c, &id) != NG_OK) {
      failed++;
      *slot = 0;
      continue;
    }
    not_growing += id <= prev;
    prev = id;
    *slot = id;
    uint32_t s = (uint32_t)(id & NG_CONNECTION_SLOT_MAX);
    if (s > top_slot) top_slot = s;
  }
  CHECK_EQ_INT(failed, 0);
  CHECK_EQ_INT(not_growing, 0);
  CHECK((prev >> NG_CONNECTION_SLOT_BITS) > 0);
  CHECK(prev <= NG_ID_MAX);
  CHECK(top_slot <= 2 * (REUSE + 1) + ALIVE);
  CHECK_EQ_INT(ng_connection_count(rt), ALIVE);
  ng_stats st;
  CHECK_STATUS(ng_runtime_stats(rt, &st), NG_OK);
  CHECK(st.bytes_in_use < 4u << 20);
  CHECK_EQ_INT(st.connection_slots_retired, 0);
  for (int k = 0; k < ALIVE; k++) {
    ng_id from = 0, to = 0;
    CHECK_STATUS(ng_connection_ends(rt, ring[k], &from, &to), NG_OK);
    CHECK(from == tok[0] || from == tok[1] || from == tok[2]);
  }
  size_t n = 0;
  CHECK_STATUS(ng_token_connections(rt, tok[0], NG_BOTH, NULL, 0, &n), NG_OK);
  CHECK(n <= ALIVE);
  printf("  %ld connections, last id %llu\n", CHURN, (unsigned long long)prev);
  ng_runtime_release(rt);
}

/* ---- stale ids after their slots are reused ------------------------------- */

enum { MADE = 3000, GONE = 1100 /* > REUSE, so the next creates reuse slots */ };

typedef struct world {
  ng_runtime *rt;
  ng_id tok[MADE], stale[GONE], fresh[GONE];
  ng_id conn[MADE], stale_conn[GONE];
  size_t nconn;
} world;

/* MADE tokens on a line 0.1 apart, a connection from each to the next; then the first GONE
 * tokens go (taking their connections along), GONE new tokens reuse their slots and the new
 * ones are linked in a chain (reusing connection slots). */
static void build_world(world *w) {
  w->rt = new_rt();
  for (int i = 0; i < MADE; i++)
    w->tok[i] = ngt_token_at(w->rt, (float)i * 0.1f, 0, 0);
  w->nconn = 0;
  for (int i = 0; i + 1 < MADE; i++)
    w->conn[w->nconn++] = ngt_link(w->rt, w->tok[i], w->tok[i + 1], NG_CONN_ASSOCIATED_WITH);
  for (int i = 0; i < GONE; i++) {
    w->stale[i] = w->tok[i];
    CHECK_STATUS(ng_token_delete(w->rt, w->tok[i], NULL), NG_OK);
    w->stale_conn[i] = w->conn[i];
  }
  ng_id prev = w->tok[MADE - 1];
  for (int i = 0; i < GONE; i++) {
    w->fresh[i] = ngt_token_at(w->rt, (float)i * 0.1f, 0, 0); /* where the deleted ones were */
    CHECK(w->fresh[i] > prev);
    prev = w->fresh[i];
  }
  ng_id last = w->conn[w->nconn - 1];
  for (int i = 0; i + 1 < GONE; i++) {
    ng_id id = ngt_link(w->rt, w->fresh[i], w->fresh[i + 1], NG_CONN_ASSOCIATED_WITH);
    CHECK(id > last);
    last = id;
    if (i == 0) CHECK(id == ((ng_id)1 << NG_CONNECTION_SLOT_BITS | w->stale_conn[0]));
  }
}

/* Everything a caller can do with a stale id is refused; queries answer current ids only. */
static void check_stale(world *w) {
  ng_runtime *rt = w->rt;
  /* the slots did come back, smallest first, one generation up */
  CHECK_EQ_INT(NG_TOKEN_GEN(w->fresh[0]), 1);
  CHECK_EQ_INT(NG_TOKEN_SLOT(w->fresh[0]), NG_TOKEN_SLOT(w->stale[0]));
  ng_token t, v;
  ng_token_init(&v);
  v.weight = 3.0f;
  ng_connection c;
  for (int i = 0; i < GONE; i++) {
    ng_id s = w->stale[i];
    CHECK_STATUS(ng_token_get(rt, s, &t), NG_ENOTFOUND);
    CHECK_STATUS(ng_token_update(rt, s, &v, NG_TF_WEIGHT), NG_ENOTFOUND);
    CHECK_STATUS(ng_token_delete(rt, s, NULL), NG_ENOTFOUND);
    CHECK_STATUS(ng_grid_neighbors(rt, s, NG_L1, 2.0f, 0, NULL, &(ng_hits){0}), NG_ENOTFOUND);
    size_t n = 0;
    CHECK_STATUS(ng_token_connections(rt, s, NG_BOTH, NULL, 0, &n), NG_ENOTFOUND);
    ng_connection_init(&c);
    CHECK_STATUS(ng_connection_create(rt, s, w->tok[MADE - 1], &c, NULL), NG_EINVAL);
    CHECK_STATUS(ng_connection_create(rt, w->tok[MADE - 1], s, &c, NULL), NG_EINVAL);
    ng_id found = 0;
    if (i + 1 < GONE) /* the new chain runs between the reused slots */
      CHECK_STATUS(ng_connection_find(rt, s, w->stale[i + 1], NG_CONN_ASSOCIATED_WITH, &found),
                   NG_ENOTFOUND);
    /* and the record now in the slot is the new one */
    CHECK_STATUS(ng_token_get(rt, w->fresh[i], &t), NG_OK);
    CHECK_EQ_INT(NG_ID_LOCAL(t.id), NG_TOKEN_SLOT(w->fresh[i]));
  }
  for (int i = 0; i < GONE; i++) {
    CHECK_STATUS(ng_connection_get(rt, w->stale_conn[i], &c), NG_ENOTFOUND);
    CHECK_STATUS(ng_connection_delete(rt, w->stale_conn[i]), NG_ENOTFOUND);
  }
  /* a range over everything answers exactly the live ids */
  size_t live = ng_token_count(rt);
  CHECK_EQ_INT(live, MADE);
  ng_id *ids = malloc(live * sizeof *ids);
  size_t n = 0;
  CHECK_STATUS(ng_token_list(rt, 0, live, ids, &n), NG_OK);
  CHECK_EQ_INT(n, live);
  ng_hits h = {0};
  const float centre[3] = {MADE * 0.05f, 0, 0};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, centre, MADE * 0.1f, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, live);
  size_t unknown = 0;
  for (size_t i = 0; i < h.count; i++) {
    size_t lo = 0, hi = n; /* ids[] is ascending */
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (ids[mid] < h.items[i].id)
        lo = mid + 1;
      else
        hi = mid;
    }
    unknown += lo == n || ids[lo] != h.items[i].id;
  }
  CHECK_EQ_INT(unknown, 0);
  /* the neighbours of a reused slot's token are current ids: the new tokens beside it */
  CHECK_STATUS(ng_grid_neighbors(rt, w->fresh[5], NG_L1, 0.15f, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 2);
  for (size_t i = 0; i < h.count; i++)
    CHECK(h.items[i].id == w->fresh[4] || h.items[i].id == w->fresh[6]);
  ng_hits_free(rt, &h);
  free(ids);
}

static void test_stale_ids(void) {
  world *w = malloc(sizeof *w);
  build_world(w);
  check_stale(w);
  ng_runtime_release(w->rt);
  free(w);
}

/* ---- snapshots keep the allocator ------------------------------------------ */

/* A deterministic mix of creates and deletes of tokens and connections; ids[] gets every id
 * created (n of them). */
static size_t script(ng_runtime *rt, uint64_t seed, int steps, ng_id *ids) {
  ng_id live[4096], links[4096];
  size_t nlive = 0, nlinks = 0, n = 0;
  ng_token_list(rt, 0, 4096, live, &nlive);
  ng_connection_list(rt, 0, 4096, links, &nlinks);
  for (int i = 0; i < steps; i++) {
    uint32_t r = ngt_rnd(&seed) % 10;
    ng_id id = 0;
    if (r < 5 || nlive < 3) {
      if (nlive < 4096 && ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id) == NG_OK) live[nlive++] = ids[n++] = id;
    } else if (r < 8) {
      size_t k = ngt_rnd(&seed) % nlive;
      CHECK_STATUS(ng_token_delete(rt, live[k], NULL), NG_OK);
      live[k] = live[--nlive];
      nlinks = 0; /* some went along: ask again */
      ng_connection_list(rt, 0, 4096, links, &nlinks);
    } else if (r < 9) {
      ng_connection c;
      ng_connection_init(&c);
      ng_id a = live[ngt_rnd(&seed) % nlive], b = live[ngt_rnd(&seed) % nlive];
      if (nlinks < 4096 && ng_connection_create(rt, a, b, &c, &id) == NG_OK)
        links[nlinks++] = ids[n++] = id;
    } else if (nlinks > 0) {
      size_t k = ngt_rnd(&seed) % nlinks;
      CHECK_STATUS(ng_connection_delete(rt, links[k]), NG_OK);
      links[k] = links[--nlinks];
    }
  }
  return n;
}

static int same_ids(const ng_id *a, size_t na, const ng_id *b, size_t nb) {
  return na == nb && memcmp(a, b, na * sizeof *a) == 0;
}

static void test_snapshot_keeps_ids(void) {
  /* stale ids stay stale across a save and load */
  world *w = malloc(sizeof *w);
  build_world(w);
  ng_runtime *orig = w->rt;
  w->rt = reload(orig, "world.ngs");
  CHECK(w->rt != NULL);
  if (w->rt) check_stale(w);

  /* and the next ids are exactly those the original would have issued, mid-epoch too */
  static ng_id a[20000], b[20000];
  if (w->rt) {
    size_t na = script(orig, 7, 6000, a), nb = script(w->rt, 7, 6000, b);
    CHECK(na > 1000);
    CHECK(same_ids(a, na, b, nb));
    ng_runtime_release(w->rt);
  }
  /* a state with pending and ready slots both: save, load, go on */
  ng_runtime *again = reload(orig, "again.ngs");
  CHECK(again != NULL);
  if (again) {
    ng_stats s1, s2;
    CHECK_STATUS(ng_runtime_stats(orig, &s1), NG_OK);
    CHECK_STATUS(ng_runtime_stats(again, &s2), NG_OK);
    CHECK(s1.next_token_id == s2.next_token_id);
    CHECK(s1.next_connection_id == s2.next_connection_id);
    CHECK_EQ_INT(s1.token_slots_free, s2.token_slots_free);
    CHECK_EQ_INT(s1.token_slots_retired, s2.token_slots_retired);
    CHECK_EQ_INT(s1.connection_slots_free, s2.connection_slots_free);
    CHECK_EQ_INT(s1.connection_slots_retired, s2.connection_slots_retired);
    size_t na = script(orig, 99, 6000, a), nb = script(again, 99, 6000, b);
    CHECK(same_ids(a, na, b, nb));
    ng_runtime_release(again);
  }
  ng_runtime_release(orig);
  free(w);
}

/* Two runtimes given the same calls issue the same ids. */
static void test_determinism(void) {
  ng_runtime *x = new_rt(), *y = new_rt();
  static ng_id a[40000], b[40000];
  size_t na = script(x, 3, 30000, a), nb = script(y, 3, 30000, b);
  CHECK(na > 10000);
  CHECK(same_ids(a, na, b, nb));
  ng_stats s;
  CHECK_STATUS(ng_runtime_stats(x, &s), NG_OK);
  CHECK(NG_TOKEN_GEN(s.next_token_id) > 0); /* slots were reused on the way */
  ng_runtime_release(x);
  ng_runtime_release(y);
}

/* ---- when a freed slot comes back ------------------------------------------ */

static void test_reuse_threshold(void) {
  ng_runtime *rt = new_rt();
  ng_id ids[3000];
  for (int i = 0; i < 3000; i++)
    ids[i] = ngt_token_at(rt, 0, 0, 0);
  /* REUSE free slots wait: new ids take fresh slots */
  for (int i = 0; i < REUSE; i++)
    CHECK_STATUS(ng_token_delete(rt, ids[2 * i], NULL), NG_OK);
  CHECK_EQ_INT(ngt_token_at(rt, 0, 0, 0), 3001);
  /* one more: they come back, smallest first, one generation up */
  CHECK_STATUS(ng_token_delete(rt, ids[2 * REUSE], NULL), NG_OK);
  ng_id first = ngt_token_at(rt, 0, 0, 0);
  CHECK(first == ((ng_id)1 << NG_TOKEN_SLOT_BITS | NG_TOKEN_SLOT(ids[0])));
  CHECK(ngt_token_at(rt, 0, 0, 0) == ((ng_id)1 << NG_TOKEN_SLOT_BITS | NG_TOKEN_SLOT(ids[2])));
  ng_token t;
  CHECK_STATUS(ng_token_get(rt, ids[0], &t), NG_ENOTFOUND);
  ng_runtime_release(rt);
}

/* The live limit: with every slot used, NG_ELIMIT; a slot freed then comes back at once (no
 * fresh slot is left), under a new generation, while its old id stays refused. */
static void test_live_limit(void) {
  ng_runtime *rt = new_rt();
  ngi_tokens_skip_slots(rt, NG_TOKEN_SLOT_MAX - 99);
  ng_id last = 0, id = 0, some = 0;
  int made = 0;
  ng_status st;
  while ((st = ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id)) == NG_OK) {
    CHECK(id > last);
    last = id;
    if (made++ == 40) some = id;
  }
  CHECK_STATUS(st, NG_ELIMIT);
  CHECK_EQ_INT(made, 100);
  CHECK_EQ_INT(last, NG_TOKEN_SLOT_MAX);
  ng_stats s;
  CHECK_STATUS(ng_runtime_stats(rt, &s), NG_OK);
  CHECK_EQ_INT(s.token_slots_retired, NG_TOKEN_SLOT_MAX - 100);
  CHECK(s.next_token_id == 0); /* none left */
  CHECK_STATUS(ng_token_delete(rt, some, NULL), NG_OK);
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id), NG_OK);
  CHECK(id == ((ng_id)1 << NG_TOKEN_SLOT_BITS | NG_TOKEN_SLOT(some)));
  CHECK(id > last);
  ng_token t;
  CHECK_STATUS(ng_token_get(rt, some, &t), NG_ENOTFOUND);
  CHECK_STATUS(ng_token_get(rt, id, &t), NG_OK);
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id), NG_ELIMIT);
  CHECK_EQ_INT(ng_token_count(rt), 100);
  ng_runtime_release(rt);
}

int main(void) {
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_reuse_threshold);
  RUN(test_live_limit);
  RUN(test_stale_ids);
  RUN(test_snapshot_keeps_ids);
  RUN(test_determinism);
  RUN(test_token_churn);
  RUN(test_connection_churn);
  rmdir(tmpdir);
  return ngt_done("test_ids");
}

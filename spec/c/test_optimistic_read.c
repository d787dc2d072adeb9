/* ng_token_get without the lock: segmented storage that never moves, the write sequence, and
 * readers racing a writer that creates, updates, deletes, compacts and clears (TSan in CI). */
#include "internal.h"
#include "test.h"

#include <pthread.h>
#include <time.h>

enum {
  READERS = 2,
  MAX_IDS = 1 << 20, /* the writer stops creating after this many tokens */
  ROUND_CREATE = 600,
  ROUND_UPDATE = 400,
  ROUND_DELETE = 340,
  CLEAR_EVERY = 7 /* rounds; in between the table grows through many segments */
};

/* Every record the writer stores is a function of its timestamp, so a torn
 * read (words of two versions) shows as a mismatch. */
static void stamp(ng_token *t, uint32_t ts) {
  ng_token_init(t);
  for (int s = 0; s < NG_SPACES; s++)
    for (int a = 0; a < 3; a++)
      t->coords[s][a] = (int16_t)(ts % 30011u);
  t->weight = (float)(ts % 100u);
  t->field_radius = (uint8_t)(ts % 251u);
  t->field_strength = (uint8_t)(ts % 241u);
  t->timestamp = ts;
}

static int consistent(const ng_token *t, ng_id id) {
  uint32_t ts = t->timestamp;
  if (NG_ID_LOCAL(t->id) != NG_TOKEN_SLOT(id) || ts == 0) return 0;
  for (int s = 0; s < NG_SPACES; s++)
    for (int a = 0; a < 3; a++)
      if (t->coords[s][a] != (int16_t)(ts % 30011u)) return 0;
  return t->weight == (float)(ts % 100u) && t->field_radius == ts % 251u &&
         t->field_strength == ts % 241u;
}

/* What the writer publishes for the readers' checks, by creation number
 * (seq, from 1; ids ascend with it, and reach far beyond MAX_IDS once slots
 * are reused after a clear): id[seq] is the seq-th token's id. A seq's state
 * goes 0 (live or never created) -> 1 (being deleted) -> 2 (deleted). Clears:
 * seqs below lo_pending may be gone, seqs below lo_done are gone. created_hi:
 * every seq up to it has been created (and its id published). */
typedef struct shared {
  ng_runtime *rt;
  _Atomic unsigned char state[MAX_IDS + 1];
  _Atomic ng_id id[MAX_IDS + 1];
  _Atomic uint32_t created_hi, lo_pending, lo_done;
  atomic_int stop;
} shared;

typedef struct reader {
  shared *sh;
  int index;
  unsigned long gets, found, torn, wrong_found, wrong_missing, other;
  char first_error[160];
} reader;

static void note(reader *r, unsigned long *counter, const char *what, ng_id id) {
  if ((*counter)++ == 0 && !r->first_error[0])
    snprintf(r->first_error, sizeof r->first_error, "reader %d: %s (id %llu)", r->index, what,
             (unsigned long long)id);
}

static void *reader_main(void *arg) {
  reader *r = arg;
  shared *sh = r->sh;
  uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(r->index + 1);
  while (!atomic_load(&sh->stop)) {
    uint32_t lo = atomic_load(&sh->lo_pending), hi = atomic_load(&sh->created_hi);
    /* Mostly tokens since the last clear; some older, some not created yet, and id 0. */
    uint32_t k =
        ngt_rnd(&seed) % 8u ? lo + ngt_rnd(&seed) % (hi - lo + 64u) : ngt_rnd(&seed) % (hi + 64u);
    /* past hi: an id above every one issued so far (ids only grow) */
    ng_id id = k == 0 ? 0 : k <= hi ? atomic_load(&sh->id[k]) : atomic_load(&sh->id[hi]) + (k - hi);
    unsigned char st0 = k <= MAX_IDS ? atomic_load(&sh->state[k]) : 0;
    uint32_t lo_done0 = atomic_load(&sh->lo_done);
    ng_token tok;
    memset(&tok, 0xA5, sizeof tok);
    ng_status st = ng_token_get(sh->rt, id, &tok);
    unsigned char st1 = k <= MAX_IDS ? atomic_load(&sh->state[k]) : 0;
    uint32_t lo_pending1 = atomic_load(&sh->lo_pending);
    r->gets++;
    if (st == NG_OK) {
      r->found++;
      if (!consistent(&tok, id)) note(r, &r->torn, "torn or wrong record", id);
      if (k > hi) {
        /* created since the loads above: nothing to say about it */
      } else if (st0 == 2 || k < lo_done0)
        note(r, &r->wrong_found, "found a token deleted before the get started", id);
    } else if (st == NG_ENOTFOUND) {
      int may_miss = k > hi || st1 != 0 || k < lo_pending1;
      if (!may_miss) note(r, &r->wrong_missing, "NG_ENOTFOUND for a live token", id);
    } else if (!(st == NG_EINVAL && id == 0)) { /* 0 is no id at all */
      note(r, &r->other, "unexpected status", id);
    }
  }
  return NULL;
}

/* The writer: rounds of creates (segment growth), updates (new stamps),
 * deletes (tombstones, the slot-map path, compaction) and, every few rounds,
 * a clear. Returns the number of failed calls. */
static unsigned long writer_run(shared *sh, double seconds) {
  ng_runtime *rt = sh->rt;
  uint64_t seed = 12345;
  uint32_t ts = 1;
  uint32_t *live = malloc(MAX_IDS * sizeof *live); /* seqs */
  size_t nlive = 0;
  unsigned long bad = 0;
  double deadline = ngt_now_s() + seconds;
  /* At least one clear, however slow the build (sanitizers). */
  for (int round = 1; round <= CLEAR_EVERY || ngt_now_s() < deadline; round++) {
    for (int i = 0; i < ROUND_CREATE; i++) {
      ng_token t;
      stamp(&t, ts++);
      ng_id id;
      uint32_t seq = atomic_load(&sh->created_hi) + 1;
      if (seq >= MAX_IDS) goto done;
      if (ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id) != NG_OK) {
        bad++;
        continue;
      }
      live[nlive++] = seq;
      atomic_store(&sh->id[seq], id);
      atomic_store(&sh->created_hi, seq);
    }
    for (int i = 0; i < ROUND_UPDATE && nlive; i++) {
      ng_token t;
      stamp(&t, ts++);
      if (ng_token_update(rt, atomic_load(&sh->id[live[ngt_rnd(&seed) % nlive]]), &t,
                          NG_TF_ALL & ~(uint32_t)NG_TF_DOMAIN) != NG_OK)
        bad++;
    }
    for (int i = 0; i < ROUND_DELETE && nlive; i++) {
      size_t k = ngt_rnd(&seed) % nlive;
      uint32_t seq = live[k];
      live[k] = live[--nlive];
      atomic_store(&sh->state[seq], 1);
      if (ng_token_delete(rt, atomic_load(&sh->id[seq]), NULL) != NG_OK) bad++;
      atomic_store(&sh->state[seq], 2);
    }
    if (round % CLEAR_EVERY == 0) {
      uint32_t next = atomic_load(&sh->created_hi) + 1;
      atomic_store(&sh->lo_pending, next);
      if (ng_token_clear(rt, NULL, NULL) != NG_OK) bad++;
      atomic_store(&sh->lo_done, next);
      nlive = 0;
    }
  }
done:
  free(live);
  return bad;
}

static void test_racing_readers(void) {
  static shared sh; /* 1 MiB of states: not on the stack */
  CHECK_STATUS(ng_runtime_new(NULL, &sh.rt), NG_OK);
  reader rd[READERS];
  pthread_t th[READERS];
  memset(rd, 0, sizeof rd);
  for (int i = 0; i < READERS; i++) {
    rd[i].sh = &sh;
    rd[i].index = i;
    CHECK(pthread_create(&th[i], NULL, reader_main, &rd[i]) == 0);
  }
  unsigned long bad = writer_run(&sh, 1.2);
  atomic_store(&sh.stop, 1);
  unsigned long gets = 0, found = 0;
  for (int i = 0; i < READERS; i++) {
    pthread_join(th[i], NULL);
    if (rd[i].first_error[0]) fprintf(stderr, "%s\n", rd[i].first_error);
    CHECK_EQ_INT(rd[i].torn, 0);
    CHECK_EQ_INT(rd[i].wrong_found, 0);
    CHECK_EQ_INT(rd[i].wrong_missing, 0);
    CHECK_EQ_INT(rd[i].other, 0);
    gets += rd[i].gets;
    found += rd[i].found;
  }
  CHECK_EQ_INT(bad, 0);
  /* The readers did meet both answers (the test exercised something). */
  CHECK(found > 0);
  CHECK(gets > found);
  printf("  %lu gets, %lu found, last id %u\n", gets, found, (unsigned)atomic_load(&sh.created_hi));
  ng_runtime_release(sh.rt);
}

/* Segment arithmetic: every index lands in exactly one segment, segments are
 * contiguous and each later one doubles. */
static void test_segment_math(void) {
  for (unsigned lb = NGI_REC_LB; lb <= NGI_SLOT_LB; lb += NGI_SLOT_LB - NGI_REC_LB) {
    CHECK_EQ_INT(ngi_seg_len(0, lb), (size_t)1 << lb);
    CHECK_EQ_INT(ngi_seg_len(1, lb), (size_t)1 << lb);
    for (unsigned k = 1; k < NGI_SEGS; k++)
      CHECK_EQ_INT(ngi_seg_base(k, lb), ngi_seg_base(k - 1, lb) + ngi_seg_len(k - 1, lb));
    int bad = 0;
    for (size_t i = 0; i < ((size_t)1 << 22); i += 1 + i / 64) {
      unsigned k = ngi_seg_of(i, lb);
      bad += !(ngi_seg_base(k, lb) <= i && i < ngi_seg_base(k, lb) + ngi_seg_len(k, lb));
    }
    CHECK_EQ_INT(bad, 0);
  }
  /* The directories cover every slot. */
  CHECK(ngi_seg_base(NGI_SEGS - 1, NGI_REC_LB) + ngi_seg_len(NGI_SEGS - 1, NGI_REC_LB) >=
        NG_TOKEN_SLOT_MAX);
  CHECK(ngi_seg_base(NGI_SEGS - 1, NGI_SLOT_LB) + ngi_seg_len(NGI_SEGS - 1, NGI_SLOT_LB) >=
        NG_TOKEN_SLOT_MAX);
}

/* Growth allocates new segments and never moves a record; a capacity hint
 * allocates exactly a doubling array's capacity (no more). */
static void test_records_never_move(void) {
  ng_runtime *rt;
  CHECK_STATUS(ng_runtime_new(NULL, &rt), NG_OK);
  ng_id id;
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id), NG_OK);
  const ng_token *first = ngi_tok_at(&rt->tokens, 0);
  for (int i = 0; i < 5000; i++)
    CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id), NG_OK);
  CHECK(ngi_tok_at(&rt->tokens, 0) == first);
  CHECK(NG_ID_LOCAL(first->id) == 1);
  CHECK_EQ_INT(rt->tokens.cap, 8192);
  size_t removed;
  CHECK_STATUS(ng_token_clear(rt, &removed, NULL), NG_OK);
  CHECK_EQ_INT(removed, 5001);
  CHECK_EQ_INT(rt->tokens.cap, 8192); /* clear keeps the segments */
  ng_runtime_release(rt);

  ng_config cfg = {0};
  cfg.initial_tokens = 1u << 16;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  CHECK_EQ_INT(rt->tokens.cap, 1u << 16);
  CHECK(rt->tokens.slot_cap >= (1u << 16) && rt->tokens.slot_cap < (1u << 17));
  ng_runtime_release(rt);
}

/* The thread that holds the write lock sees the sequence odd, so its gets
 * take the (nested) locked path and read its own writes; outside, the
 * sequence is even again. Both lookup paths (dense and slot map) answer. */
static void test_writer_reads_its_writes(void) {
  ng_runtime *rt;
  CHECK_STATUS(ng_runtime_new(NULL, &rt), NG_OK);
  ng_id id;
  for (int i = 0; i < 40; i++)
    CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id), NG_OK);
  CHECK_EQ_INT(atomic_load(&rt->wseq) & 1u, 0);
  CHECK_STATUS(ngi_write_lock(rt, "test"), NG_OK);
  CHECK_EQ_INT(atomic_load(&rt->wseq) & 1u, 1);
  ng_token t;
  stamp(&t, 777);
  t.id = 20;
  ngi_tok_store(&rt->tokens, ngi_token_slot(&rt->tokens, 20), &t);
  ng_token got;
  CHECK_STATUS(ng_token_get(rt, 20, &got), NG_OK);
  CHECK(consistent(&got, 20) && got.timestamp == 777);
  ngi_write_unlock(rt);
  CHECK_EQ_INT(atomic_load(&rt->wseq) & 1u, 0);
  CHECK_STATUS(ng_token_get(rt, 20, &got), NG_OK);
  CHECK(got.timestamp == 777);

  /* Off the dense path: a deleted token is reported, its neighbours found. */
  CHECK_STATUS(ng_token_delete(rt, 10, NULL), NG_OK);
  CHECK_EQ_INT(atomic_load(&rt->tokens.dense), 0);
  memset(&got, 0x5A, sizeof got);
  ng_token before = got;
  CHECK_STATUS(ng_token_get(rt, 10, &got), NG_ENOTFOUND);
  CHECK(memcmp(&got, &before, sizeof got) == 0); /* *out untouched */
  CHECK_CONTAINS(ng_last_error(rt), "no token 10");
  CHECK_STATUS(ng_token_get(rt, 20, &got), NG_OK);
  CHECK(got.timestamp == 777);
  CHECK_STATUS(ng_token_get(rt, 41, &got), NG_ENOTFOUND);
  CHECK_STATUS(ng_token_get(rt, 0, &got), NG_EINVAL); /* no id at all */
  CHECK_STATUS(ng_token_get(rt, NG_TOKEN_SLOT_MAX, &got), NG_ENOTFOUND);
  CHECK_STATUS(ng_token_get(rt, NG_ID_MAX, &got), NG_ENOTFOUND);
  CHECK_STATUS(ng_token_get(rt, NG_ID_MAX + 1u, &got), NG_EINVAL);
  CHECK_STATUS(ng_token_get(rt, UINT32_MAX, &got), NG_ENOTFOUND);
  ng_runtime_release(rt);
}

int main(void) {
  RUN(test_segment_math);
  RUN(test_records_never_move);
  RUN(test_writer_reads_its_writes);
  RUN(test_racing_readers);
  return ngt_done("test_optimistic_read");
}

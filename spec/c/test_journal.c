/* Durable worlds: the journal replays to the model's state (ids included), checkpoints,
 * rolled-back work is never journaled, every truncation of a small journal is cut or refused,
 * bit flips are refused (or cut in the torn tail), and a failed journal refuses writes. */
#include "internal.h"
#include "test_world.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

static char base[] = "/tmp/ng_journal_XXXXXX";

static void world_path(char *out, size_t size, const char *name) {
  snprintf(out, size, "%s/%s", base, name);
}

static ng_runtime *open_world(const char *dir, ng_sync_mode sync, uint64_t checkpoint_bytes) {
  ng_open_options o = {.config = &ngw_cfg, .sync = sync, .checkpoint_bytes = checkpoint_bytes};
  ng_runtime *rt = NULL;
  ng_status st = ng_runtime_open(dir, &o, &rt);
  if (st != NG_OK) fprintf(stderr, "open %s: %s\n", dir, ng_last_error(NULL));
  CHECK_STATUS(st, NG_OK);
  return rt;
}

static void write_all(const char *path, const unsigned char *p, size_t n) {
  FILE *f = fopen(path, "wb");
  fwrite(p, 1, n, f);
  fclose(f);
}

/* A world and its in-memory model take the same steps; reopening (and
 * checkpoints along the way, automatic ones too) keeps them equal. */
static void test_replay_matches_model(void) {
  char dir[256];
  world_path(dir, sizeof dir, "model");
  ng_runtime *model = NULL;
  CHECK_STATUS(ng_runtime_new(&ngw_cfg, &model), NG_OK);
  uint64_t rw = 42, rm = 42;
  for (int round = 0; round < 4; round++) {
    ng_runtime *rt =
        open_world(dir, round % 2 ? NG_SYNC_OFF : NG_SYNC_BATCH, round == 3 ? 8192 : 0);
    if (!rt) break;
    CHECK(ngw_same(rt, model));
    for (int i = 0; i < 400; i++) {
      ngw_step(rt, &rw, 1);
      ngw_step(model, &rm, 0);
    }
    if (round == 1) { /* a rescale re-encodes the tokens it does not touch */
      ng_cdna c;
      ng_cdna_get(model, &c);
      c.dimension_scales[0] = 2.0f;
      c.bucket_sizes[1] = 7.0f;
      CHECK_STATUS(ng_cdna_set(model, &c), NG_OK);
      CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);
    }
    CHECK(ngw_same(rt, model));
    if (round == 3) CHECK(rt->journal->number > 1); /* automatic checkpoints ran */
    ng_runtime_release(rt);
  }
  ng_runtime *rt = open_world(dir, NG_SYNC_ALWAYS, 0);
  CHECK(ngw_same(rt, model));
  /* The grids were rebuilt from the replayed records. */
  ng_hits ha = {0}, hb = {0};
  float c0[3] = {0, 0, 0};
  CHECK_STATUS(ng_grid_range(rt, 1, c0, 1e5f, 0, NULL, &ha), NG_OK);
  CHECK_STATUS(ng_grid_range(model, 1, c0, 1e5f, 0, NULL, &hb), NG_OK);
  CHECK(ha.count > 10);
  CHECK_EQ_INT(ha.count, hb.count);
  ng_hits_free(rt, &ha);
  ng_hits_free(model, &hb);
  ng_runtime_release(rt);
  ng_runtime_release(model);
  ngw_remove(dir);
}

/* A checkpoint leaves exactly the new snapshot and journal; a rolled-back
 * transaction writes nothing; misuse is refused. */
static void test_checkpoint_and_rollback(void) {
  char dir[256], p[300];
  world_path(dir, sizeof dir, "ck");
  ng_runtime *rt = open_world(dir, NG_SYNC_ALWAYS, 0);
  ng_id a = ngt_token_at(rt, 1, 0, 0);
  size_t end = rt->journal->end;
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  ngt_token_at(rt, 2, 0, 0);
  CHECK_STATUS(ng_checkpoint(rt), NG_EBUSY);
  CHECK_STATUS(ng_txn_rollback(rt), NG_OK);
  CHECK_EQ_INT(rt->journal->end, end);
  CHECK_STATUS(ng_checkpoint(rt), NG_OK);
  CHECK_STATUS(ng_checkpoint(rt), NG_OK);
  snprintf(p, sizeof p, "%s/snapshot-%020d.ngs", dir, 2);
  CHECK(access(p, F_OK) == 0);
  snprintf(p, sizeof p, "%s/journal-%020d.ngj", dir, 2);
  CHECK(access(p, F_OK) == 0);
  snprintf(p, sizeof p, "%s/snapshot-%020d.ngs", dir, 1);
  CHECK(access(p, F_OK) != 0);
  snprintf(p, sizeof p, "%s/journal-%020d.ngj", dir, 1);
  CHECK(access(p, F_OK) != 0);
  ng_id b = ngt_token_at(rt, 3, 0, 0);
  ng_runtime_release(rt);
  rt = open_world(dir, NG_SYNC_BATCH, 0);
  ng_token t;
  CHECK_STATUS(ng_token_get(rt, a, &t), NG_OK);
  CHECK_STATUS(ng_token_get(rt, b, &t), NG_OK);
  CHECK_EQ_INT(ng_token_count(rt), 2);

  /* A failed journal refuses writes until a checkpoint succeeds. */
  rt->journal->failed = NG_EIO;
  snprintf(rt->journal->why, sizeof rt->journal->why, "test");
  ng_id id = 0;
  CHECK_STATUS(ng_token_create(rt, NULL, 0, &id), NG_EIO);
  CHECK(strstr(ng_last_error(rt), "journal failed") != NULL);
  CHECK_STATUS(ng_checkpoint(rt), NG_OK);
  CHECK_STATUS(ng_token_create(rt, NULL, 0, &id), NG_OK);
  ng_runtime_release(rt);

  /* One runtime per world at a time. */
  ng_runtime *second = NULL;
  rt = open_world(dir, NG_SYNC_OFF, 0);
  CHECK_STATUS(ng_runtime_open(dir, NULL, &second), NG_EIO);
  CHECK(second == NULL && strstr(ng_last_error(NULL), "open in another runtime") != NULL);
  ng_runtime_release(rt);

  ng_runtime *mem = NULL;
  CHECK_STATUS(ng_runtime_new(NULL, &mem), NG_OK);
  CHECK_STATUS(ng_checkpoint(mem), NG_EINVAL);
  ng_runtime_release(mem);
  ng_open_options bad = {.sync = (ng_sync_mode)7};
  CHECK_STATUS(ng_runtime_open(dir, &bad, &rt), NG_EINVAL);
  CHECK(rt == NULL);
  CHECK_STATUS(ng_runtime_open("", NULL, &rt), NG_EINVAL);
  /* A journal missing after its snapshot is corruption, not an empty world. */
  snprintf(p, sizeof p, "%s/journal-%020d.ngj", dir, 3);
  CHECK(unlink(p) == 0);
  CHECK_STATUS(ng_runtime_open(dir, NULL, &rt), NG_ECORRUPT);
  ngw_remove(dir);
}

/* A crash while a world is created leaves journal 0 with its header and no
 * snapshot: that opens as a new world. Journal records without their
 * snapshot are corruption. */
/* A background checkpoint: writes go on while its save runs (the save's
 * process stopped here to hold it running: the world is large enough that
 * its save cannot end before the stop, even under a sanitizer); one at a
 * time; the old snapshot and journal stay until it has succeeded, then go at
 * the next checkpoint or at the runtime's end; the world opens to every
 * commit, those made during the save included. */
#define BG_BULK 200000
static void test_background_checkpoint(void) {
  char dir[256], p[300];
  world_path(dir, sizeof dir, "bg");
  ng_runtime *rt = open_world(dir, NG_SYNC_ALWAYS, 0);
  CHECK_STATUS(ng_txn_begin(rt), NG_OK); /* one commit */
  for (int i = 0; i < BG_BULK; i++)
    CHECK_STATUS(ng_token_create(rt, NULL, 0, NULL), NG_OK);
  CHECK_STATUS(ng_txn_commit(rt), NG_OK);
  ng_id a = ngt_token_at(rt, 1, 0, 0);
  ng_save *job = NULL, *other = NULL;
  CHECK_STATUS(ng_checkpoint_background(rt, NULL), NG_EINVAL);
  CHECK_STATUS(ng_checkpoint_background(rt, &job), NG_OK);
  pid_t child = ngi_save_child(job);
  CHECK(child > 0 && kill(child, SIGSTOP) == 0);
  ng_id b = ngt_token_at(rt, 2, 0, 0); /* into journal 1, beside the save of snapshot 1 */
  CHECK_STATUS(ng_save_status(job, false, NULL), NG_EBUSY);
  CHECK_STATUS(ng_checkpoint_background(rt, &other), NG_EBUSY);
  CHECK(other == NULL);
  CHECK(strstr(ng_last_error(rt), "still running") != NULL);
  snprintf(p, sizeof p, "%s/snapshot-%020d.ngs", dir, 1);
  CHECK(access(p, F_OK) != 0);
  kill(child, SIGCONT);
  CHECK_STATUS(ng_save_status(job, true, NULL), NG_OK);
  ng_save_free(job);
  CHECK(access(p, F_OK) == 0);
  snprintf(p, sizeof p, "%s/snapshot-%020d.ngs", dir, 0);
  CHECK(access(p, F_OK) == 0); /* until the next checkpoint or the end */
  ng_id c = ngt_token_at(rt, 3, 0, 0);
  ng_runtime_release(rt); /* finishes the checkpoint: snapshot 0 and journal 0 go */
  CHECK(access(p, F_OK) != 0);
  snprintf(p, sizeof p, "%s/journal-%020d.ngj", dir, 0);
  CHECK(access(p, F_OK) != 0);
  rt = open_world(dir, NG_SYNC_BATCH, 0);
  ng_token t;
  CHECK_STATUS(ng_token_get(rt, a, &t), NG_OK);
  CHECK_STATUS(ng_token_get(rt, b, &t), NG_OK);
  CHECK_STATUS(ng_token_get(rt, c, &t), NG_OK);
  CHECK_EQ_INT(ng_token_count(rt), BG_BULK + 3);
  /* a synchronous checkpoint waits for a background one; a failed save leaves the world as it
   * was (killed here), opening to every commit */
  CHECK_STATUS(ng_checkpoint_background(rt, &job), NG_OK);
  kill(ngi_save_child(job), SIGKILL); /* still running: the world is large */
  CHECK_STATUS(ng_save_status(job, true, NULL), NG_EIO);
  ng_save_free(job);
  ng_id d = ngt_token_at(rt, 4, 0, 0);
  ng_runtime_release(rt);
  rt = open_world(dir, NG_SYNC_BATCH, 0);
  CHECK_STATUS(ng_token_get(rt, d, &t), NG_OK);
  CHECK_EQ_INT(ng_token_count(rt), BG_BULK + 4);
  CHECK_STATUS(ng_checkpoint_background(rt, &job), NG_OK);
  CHECK_STATUS(ng_checkpoint(rt), NG_OK);
  CHECK_STATUS(ng_save_status(job, false, NULL), NG_OK);
  ng_save_free(job);
  ng_runtime_release(rt);

  ng_runtime *plain = NULL;
  CHECK_STATUS(ng_runtime_new(NULL, &plain), NG_OK);
  CHECK_STATUS(ng_checkpoint_background(plain, &job), NG_EINVAL);
  ng_runtime_release(plain);
  ngw_remove(dir);
}

static void test_half_created(void) {
  char dir[256], snap[300];
  world_path(dir, sizeof dir, "half");
  ng_runtime *rt = open_world(dir, NG_SYNC_OFF, 0);
  ng_runtime_release(rt);
  snprintf(snap, sizeof snap, "%s/snapshot-%020d.ngs", dir, 0);
  CHECK(unlink(snap) == 0);
  rt = open_world(dir, NG_SYNC_OFF, 0); /* header-only journal 0: created afresh */
  CHECK(rt && ng_token_count(rt) == 0);
  ngt_token_at(rt, 1, 2, 3);
  ng_runtime_release(rt);
  CHECK(unlink(snap) == 0);
  ng_runtime *out = NULL;
  CHECK_STATUS(ng_runtime_open(dir, NULL, &out), NG_ECORRUPT);
  CHECK(strstr(ng_last_error(NULL), "no snapshot") != NULL);
  ngw_remove(dir);
}

/* The threads count their own failures (the CHECK counters are not shared safely). */
static void *writer(void *arg) {
  intptr_t failed = 0;
  for (int i = 0; i < 500; i++)
    failed += ng_token_create(arg, NULL, 0, NULL) != NG_OK;
  return (void *)failed;
}

static void *checkpointer(void *arg) {
  intptr_t failed = 0;
  for (int i = 0; i < 5; i++)
    failed += ng_checkpoint(arg) != NG_OK;
  return (void *)failed;
}

/* Writers in parallel with the batch thread's syncs, automatic checkpoints
 * and explicit ones from another thread (TSan runs this in CI). */
static void test_threads(void) {
  char dir[256];
  world_path(dir, sizeof dir, "threads");
  ng_open_options o = {.sync = NG_SYNC_BATCH, .interval_ms = 1, .checkpoint_bytes = 4096};
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_open(dir, &o, &rt), NG_OK);
  pthread_t t[3];
  pthread_create(&t[0], NULL, writer, rt);
  pthread_create(&t[1], NULL, writer, rt);
  pthread_create(&t[2], NULL, checkpointer, rt);
  for (int i = 0; i < 3; i++) {
    void *failed = NULL;
    pthread_join(t[i], &failed);
    CHECK(failed == NULL);
  }
  CHECK_EQ_INT(ng_token_count(rt), 1000);
  ng_runtime_release(rt);
  rt = open_world(dir, NG_SYNC_OFF, 0);
  CHECK_EQ_INT(ng_token_count(rt), 1000);
  ng_runtime_release(rt);
  ngw_remove(dir);
}

/* Wait (up to 10 s) until the journal's thread has prepared every window
 * it keeps ahead of the writer's and unmapped what lies behind; returns the
 * end of the prepared part (0: it never settled). */
static size_t ahead_settled(ngi_journal *j) {
  for (int i = 0; i < 10000; i++) {
    pthread_mutex_lock(&j->ahead_lock);
    size_t to = j->ready_to;
    bool idle = !j->busy && j->mapped_from == j->map_off &&
                to == j->map_off + j->map_len + NGI_JOURNAL_AHEAD * NGI_JOURNAL_WINDOW;
    pthread_mutex_unlock(&j->ahead_lock);
    if (idle) return to;
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  return 0;
}

/* The journal's thread maps the windows ahead of the writer, in every sync
 * mode: a commit that crosses into the next window finds it prepared (the
 * writer maps nothing itself), and what lies behind is unmapped. Records
 * larger than a window and records crossing from window to window replay
 * exactly. */
static void test_windows_ahead(void) {
  static const ng_sync_mode modes[] = {NG_SYNC_BATCH, NG_SYNC_ALWAYS, NG_SYNC_OFF};
  enum { N = 5000, FRAME = 1000 };
  static ng_id ids[FRAME];
  static ng_token vals[FRAME];
  for (int m = 0; m < 3; m++) {
    char dir[256];
    world_path(dir, sizeof dir, "ahead");
    ng_runtime *rt = open_world(dir, modes[m], 0), *model = NULL;
    CHECK_STATUS(ng_runtime_new(&ngw_cfg, &model), NG_OK);
    ngi_journal *j = rt->journal;
    ng_runtime *both[2] = {rt, model};
    for (int r = 0; r < 2; r++) { /* one record larger than a window */
      CHECK_STATUS(ng_txn_begin(both[r]), NG_OK);
      for (int i = 0; i < N; i++)
        ngt_token_at(both[r], (float)(i % 300), 0, 0);
      CHECK_STATUS(ng_txn_commit(both[r]), NG_OK);
    }
    CHECK(j->end > NGI_JOURNAL_WINDOW);
    uint64_t rng = 7;
    for (int w = 0; w < 4; w++) {
      size_t ready = ahead_settled(j), hi = j->map_off + j->map_len;
      CHECK(ready > hi);
      while (j->map_off + j->map_len == hi) { /* frames of updates until a window is crossed */
        for (int i = 0; i < FRAME; i++) {
          ids[i] = 1 + (ngt_rnd(&rng) % N + (uint32_t)i * 7919u) % N;
          ng_token_init(&vals[i]);
          vals[i].weight = (float)(ngt_rnd(&rng) % 100);
        }
        for (int r = 0; r < 2; r++)
          CHECK_STATUS(ng_token_update_batch(both[r], ids, vals, FRAME, NG_TF_WEIGHT), NG_OK);
      }
      CHECK(j->map_off + j->map_len <= ready);
    }
    ng_runtime_release(rt);
    rt = open_world(dir, NG_SYNC_OFF, 0);
    CHECK(ngw_same(rt, model));
    ng_runtime_release(rt);
    ng_runtime_release(model);
    ngw_remove(dir);
  }
}

enum { COMMITS = 6 };

/* The journal of COMMITS single-write commits after snapshot 0, the record
 * offsets (rec[k] .. rec[k+1]) and the model after each prefix. */
typedef struct small_world {
  char dir[256], snap[300], journal[300];
  unsigned char *bytes;
  size_t len;
  size_t rec[COMMITS + 1];
  ng_runtime *model[COMMITS + 1];
} small_world;

static void small_make(small_world *w) {
  world_path(w->dir, sizeof w->dir, "small");
  snprintf(w->snap, sizeof w->snap, "%s/snapshot-%020d.ngs", w->dir, 0);
  snprintf(w->journal, sizeof w->journal, "%s/journal-%020d.ngj", w->dir, 0);
  ng_runtime *rt = open_world(w->dir, NG_SYNC_OFF, 0);
  for (int k = 0; k <= COMMITS; k++) {
    if (k > 0) {
      ng_token t; /* one commit: a token, and from the third on a link to it */
      ng_token_init(&t);
      t.weight = (float)k;
      CHECK_STATUS(ng_txn_begin(rt), NG_OK);
      CHECK_STATUS(ng_token_create(rt, &t, 1, NULL), NG_OK);
      if (k > 2) CHECK_STATUS(ng_connection_create(rt, (ng_id)k - 1, (ng_id)k, NULL, NULL), NG_OK);
      CHECK_STATUS(ng_txn_commit(rt), NG_OK);
    }
    ng_runtime *copy = NULL; /* the model at this prefix: a fresh runtime taking the same steps */
    ng_runtime_new(&ngw_cfg, &copy);
    for (int i = 1; i <= k; i++) {
      ng_token t;
      ng_token_init(&t);
      t.weight = (float)i;
      ng_token_create(copy, &t, 1, NULL);
      if (i > 2) ng_connection_create(copy, (ng_id)i - 1, (ng_id)i, NULL, NULL);
    }
    w->model[k] = copy;
  }
  ng_runtime_release(rt);
  w->bytes = ngt_read_file(w->journal, &w->len);
  size_t off = 64;
  for (int k = 0; k < COMMITS; k++) {
    w->rec[k] = off;
    uint32_t n;
    memcpy(&n, w->bytes + off, 4);
    off = (off + n + 7) & ~(size_t)7;
  }
  w->rec[COMMITS] = off;
  CHECK(off == w->len);
}

/* Open the world with the journal replaced by bytes[0 .. n): NG_OK and the
 * number of commits it holds in *k, or the failure. */
static ng_status small_open(small_world *w, const unsigned char *bytes, size_t n, int *k) {
  write_all(w->journal, bytes, n);
  ng_runtime *rt = NULL;
  ng_status st = ng_runtime_open(w->dir, NULL, &rt);
  *k = -1;
  if (st != NG_OK) return st;
  for (int i = 0; i <= COMMITS; i++)
    if (ngw_same(rt, w->model[i])) *k = i;
  ng_runtime_release(rt);
  return st;
}

static void test_truncations(small_world *w) {
  for (size_t n = 0; n <= w->len; n++) {
    int k;
    ng_status st = small_open(w, w->bytes, n, &k);
    if (n < 64) {
      CHECK_STATUS(st, NG_ECORRUPT);
      continue;
    }
    int whole = 0; /* records complete within n bytes */
    while (whole < COMMITS && w->rec[whole + 1] <= n + 7 && w->rec[whole] + 16 <= n) {
      uint32_t len;
      memcpy(&len, w->bytes + w->rec[whole], 4);
      if (w->rec[whole] + len > n) break;
      whole++;
    }
    CHECK_STATUS(st, NG_OK);
    if (k != whole)
      fprintf(stderr, "truncated at %zu: state of %d commits, wanted %d\n", n, k, whole);
    CHECK_EQ_INT(k, whole);
  }
}

static void test_bit_flips(small_world *w) {
  uint64_t rng = 99;
  unsigned char *b = malloc(w->len);
  for (int i = 0; i < 400; i++) {
    memcpy(b, w->bytes, w->len);
    size_t off = ngt_rnd(&rng) % w->len;
    b[off] ^= (unsigned char)(1u << (ngt_rnd(&rng) % 8));
    int k;
    ng_status st = small_open(w, b, w->len, &k);
    int rec = -1; /* the record holding the flipped byte (in its checked bytes) */
    for (int r = 0; r < COMMITS; r++) {
      uint32_t len;
      memcpy(&len, w->bytes + w->rec[r], 4);
      if (off >= w->rec[r] && off < w->rec[r] + len) rec = r;
    }
    if (off < 64) { /* the header: a flipped version reads as a newer format */
      CHECK(st == NG_ECORRUPT || st == NG_EVERSION);
    } else if (rec >= 0 && rec < COMMITS - 1) {
      if (st != NG_ECORRUPT) fprintf(stderr, "flip at %zu (record %d) was not refused\n", off, rec);
      CHECK_STATUS(st, NG_ECORRUPT);
    } else if (rec == COMMITS - 1) {
      CHECK(st == NG_ECORRUPT || (st == NG_OK && k == COMMITS - 1));
    } else { /* padding between records: not part of any record */
      CHECK(st == NG_OK && k == COMMITS);
    }
  }
  free(b);
}

/* Garbage after the last record (a torn append) is cut, and appending
 * continues after the cut. */
static void test_torn_tail(small_world *w) {
  size_t n = w->len + 100;
  unsigned char *b = calloc(1, n);
  memcpy(b, w->bytes, w->len);
  for (size_t i = w->len; i < n; i++)
    b[i] = (unsigned char)(i * 37 + 1);
  write_all(w->journal, b, n);
  ng_runtime *rt = open_world(w->dir, NG_SYNC_ALWAYS, 0);
  CHECK(ngw_same(rt, w->model[COMMITS]));
  ng_id id = ngt_token_at(rt, 50, 0, 0);
  ng_runtime_release(rt);
  rt = open_world(w->dir, NG_SYNC_ALWAYS, 0);
  ng_token t;
  CHECK_STATUS(ng_token_get(rt, id, &t), NG_OK);
  CHECK_EQ_INT(ng_token_count(rt), COMMITS + 1);
  ng_runtime_release(rt);
  free(b);
}

int main(void) {
  if (!mkdtemp(base)) return 1;
  test_replay_matches_model();
  test_checkpoint_and_rollback();
  test_background_checkpoint();
  test_half_created();
  test_threads();
  test_windows_ahead();
  small_world w;
  memset(&w, 0, sizeof w);
  small_make(&w);
  test_truncations(&w);
  test_bit_flips(&w);
  test_torn_tail(&w);
  for (int k = 0; k <= COMMITS; k++)
    ng_runtime_release(w.model[k]);
  free(w.bytes);
  ngw_remove(w.dir);
  rmdir(base);
  return ngt_done("test_journal");
}

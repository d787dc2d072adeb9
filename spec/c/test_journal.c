/* Durable worlds: the journal replays to the model's state (ids included), updates of every
 * field as token deltas too, checkpoints, rolled-back work is never journaled, a journal of the
 * older format (no deltas) still opens, every truncation of a small journal is cut or refused,
 * bit flips are refused (or cut in the torn tail), bad deltas are refused, and a failed journal
 * refuses writes. */
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

/* A random field selection of ng_token_update: every NG_TF_* field, and per
 * space a write of its coordinates (placing the token) or an unplace. */
static uint32_t rnd_fields(uint64_t *rng) {
  static const uint32_t pool[] = {NG_TF_WEIGHT,        NG_TF_FLAGS,     NG_TF_ENTITY,
                                  NG_TF_FIELD_RADIUS,  NG_TF_TIMESTAMP, NG_TF_DOMAIN,
                                  NG_TF_FIELD_STRENGTH};
  uint32_t f = 0;
  for (size_t k = 0; k < sizeof pool / sizeof pool[0]; k++)
    if (ngt_rnd(rng) % 4 == 0) f |= pool[k];
  for (int s = 0; s < NG_SPACES; s++) {
    uint32_t r = ngt_rnd(rng) % 8;
    if (r < 2) f |= NG_TF_COORDS(s);
    if (r == 2) f |= NG_TF_UNPLACE(s);
  }
  return f;
}

static void rnd_values(ng_token *v, uint64_t *rng) {
  ng_token_init(v);
  for (int s = 0; s < NG_SPACES; s++)
    for (int a = 0; a < 3; a++)
      v->coords[s][a] = (int16_t)(ngt_rnd(rng) % 2001) - 1000;
  v->id = ngt_rnd(rng);
  v->flags = (uint16_t)ngt_rnd(rng);
  v->weight = (float)(ngt_rnd(rng) % 1001) / 10.0f;
  v->field_radius = (uint8_t)ngt_rnd(rng);
  v->field_strength = (uint8_t)ngt_rnd(rng);
  v->timestamp = ngt_rnd(rng);
}

/* One commit of updates to existing tokens (and sometimes creates), the
 * same on a world and its model: single updates of random fields, places
 * and unplaces, batches naming a token several times, transactions that
 * touch tokens several times around other writes, create one and update it,
 * and roll back to a savepoint. */
static void delta_step(ng_runtime *rt, uint64_t *rng) {
  ng_token v;
  rnd_values(&v, rng);
  ng_id id = ngw_pick(rt, rng, 0);
  switch (ngt_rnd(rng) % 6) {
  case 0:
  case 1:
    (void)ng_token_update(rt, id, &v, rnd_fields(rng));
    break;
  case 2: {
    double xyz[3] = {(double)(ngt_rnd(rng) % 100), 1, -2};
    int s = (int)(ngt_rnd(rng) % NG_SPACES);
    if (ngt_rnd(rng) & 1)
      (void)ng_token_place(rt, id, s, xyz);
    else
      (void)ng_token_unplace(rt, id, s);
    break;
  }
  case 3: {
    ng_id ids[6];
    ng_token vs[6];
    for (int i = 0; i < 6; i++) {
      ids[i] = i % 2 ? id : ngw_pick(rt, rng, 0);
      rnd_values(&vs[i], rng);
    }
    uint32_t f = NG_TF_WEIGHT | NG_TF_COORDS(ngt_rnd(rng) % 3);
    (void)ng_token_update_batch(rt, ids, vs, 6, ngt_rnd(rng) & 1 ? f : rnd_fields(rng));
    break;
  }
  default: {
    if (ng_txn_begin(rt) != NG_OK) return;
    int n = 2 + (int)(ngt_rnd(rng) % 6);
    for (int i = 0; i < n; i++) {
      rnd_values(&v, rng);
      uint32_t r = ngt_rnd(rng) % 8;
      ng_id other = ngw_pick(rt, rng, 0), fresh = 0;
      if (r == 0) {
        (void)ng_connection_create(rt, id, other, NULL, NULL);
      } else if (r == 1 && ng_token_create(rt, &v, ngt_rnd(rng) % 16, &fresh) == NG_OK) {
        rnd_values(&v, rng);
        (void)ng_token_update(rt, fresh, &v, rnd_fields(rng));
      } else if (r == 2) {
        ng_savepoint sp = 0;
        (void)ng_txn_savepoint(rt, &sp);
        (void)ng_token_update(rt, id, &v, rnd_fields(rng));
        (void)ng_txn_rollback_to(rt, sp);
      } else {
        (void)ng_token_update(rt, r & 1 ? id : other, &v, rnd_fields(rng));
      }
    }
    if (ngt_rnd(rng) % 4)
      (void)ng_txn_commit(rt);
    else
      (void)ng_txn_rollback(rt);
    break;
  }
  }
}

/* Updates are journaled as deltas (a single weight and position update is a
 * 40-byte record), and replay reproduces every record, placement and
 * connection byte for byte, through several reopenings. */
static void test_delta_replay(void) {
  char dir[256];
  world_path(dir, sizeof dir, "delta");
  ng_runtime *model = NULL;
  CHECK_STATUS(ng_runtime_new(&ngw_cfg, &model), NG_OK);
  ng_runtime *rt = open_world(dir, NG_SYNC_OFF, 0);
  uint64_t rw = 7, rm = 7;
  for (int i = 0; i < 60; i++) {
    ng_token v;
    rnd_values(&v, &rw);
    rnd_values(&v, &rm);
    v.flags = NG_TOKEN_ACTIVE;
    v.id = 0;
    unsigned places = (unsigned)i % 256;
    CHECK_STATUS(ng_token_create(rt, &v, places, NULL), NG_OK);
    CHECK_STATUS(ng_token_create(model, &v, places, NULL), NG_OK);
  }
  ng_token v;
  ng_token_init(&v);
  v.weight = 3.5f;
  v.coords[0][0] = 12;
  size_t before = rt->journal->end;
  CHECK_STATUS(ng_token_update(rt, 5, &v, NG_TF_WEIGHT | NG_TF_COORDS(0)), NG_OK);
  CHECK_STATUS(ng_token_update(model, 5, &v, NG_TF_WEIGHT | NG_TF_COORDS(0)), NG_OK);
  CHECK_EQ_INT(rt->journal->end - before, 40);
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 500; i++) {
      delta_step(rt, &rw);
      delta_step(model, &rm);
    }
    if (round == 1) { /* a rescale in the commit of a move */
      ng_cdna c;
      ng_cdna_get(model, &c);
      c.dimension_scales[1] = 0.5f;
      for (int k = 0; k < 2; k++) {
        ng_runtime *x = k ? model : rt;
        CHECK_STATUS(ng_txn_begin(x), NG_OK);
        ng_token m;
        ng_token_init(&m);
        m.coords[1][0] = 9;
        (void)ng_token_update(x, 7, &m, NG_TF_COORDS(1));
        (void)ng_cdna_set(x, &c);
        (void)ng_token_update(x, 8, &m, NG_TF_COORDS(1));
        CHECK_STATUS(ng_txn_commit(x), NG_OK);
      }
    }
    CHECK(ngw_same(rt, model));
    ng_runtime_release(rt);
    rt = open_world(dir, round % 2 ? NG_SYNC_BATCH : NG_SYNC_OFF, 0);
    CHECK(ngw_same(rt, model));
  }
  ng_stats st;
  ng_runtime_stats(rt, &st);
  CHECK(st.tokens > 60 && st.connections > 0);
  ng_runtime_release(rt);
  ng_runtime_release(model);
  ngw_remove(dir);
}

/* The steps that wrote spec/c/journal-1.0 (a world of journal format 1.0,
 * whose updates are token puts), by the build before token deltas. */
static void old_steps(ng_runtime *rt) {
  ng_id ids[4];
  for (int i = 0; i < 4; i++) {
    ng_token t;
    ng_token_init(&t);
    t.weight = (float)(i + 1);
    t.coords[0][0] = (int16_t)(i * 100), t.coords[0][1] = (int16_t)i, t.coords[0][2] = (int16_t)-i;
    t.coords[1][0] = 5;
    CHECK_STATUS(ng_token_create(rt, &t, i == 2 ? 3u : 1u, &ids[i]), NG_OK);
  }
  ng_token v;
  ng_token_init(&v);
  v.weight = 50, v.coords[0][0] = 7, v.coords[0][1] = 8, v.coords[0][2] = 9;
  CHECK_STATUS(ng_token_update(rt, ids[0], &v, NG_TF_WEIGHT | NG_TF_COORDS(0)), NG_OK);
  double xyz[3] = {1, 2, 3};
  CHECK_STATUS(ng_token_place(rt, ids[1], 2, xyz), NG_OK);
  CHECK_STATUS(ng_connection_create(rt, ids[0], ids[1], NULL, NULL), NG_OK);
  CHECK_STATUS(ng_token_delete(rt, ids[3], NULL), NG_OK);
}

static void copy_file(const char *from, const char *to) {
  size_t n = 0;
  unsigned char *b = ngt_read_file(from, &n);
  CHECK(b != NULL);
  if (b) write_all(to, b, n);
  free(b);
}

/* A world whose journal is of format 1.0 (no deltas) opens to the state its
 * writes made; this build does not append deltas to that file but starts
 * journal 1 (format 1.1) after it, and both replay at the next open. */
static void test_old_format(void) {
  char src[1024], dir[256], from[1200], to[1200];
  snprintf(src, sizeof src, "%s", __FILE__);
  char *slash = strrchr(src, '/');
  if (slash) snprintf(slash + 1, sizeof src - (size_t)(slash + 1 - src), "journal-1.0");
  world_path(dir, sizeof dir, "old");
  CHECK(mkdir(dir, 0777) == 0);
  static const char *const names[] = {"snapshot-00000000000000000000.ngs",
                                      "journal-00000000000000000000.ngj"};
  for (int k = 0; k < 2; k++) {
    snprintf(from, sizeof from, "%s/%s", src, names[k]);
    snprintf(to, sizeof to, "%s/%s", dir, names[k]);
    copy_file(from, to);
  }
  ng_runtime *model = NULL;
  CHECK_STATUS(ng_runtime_new(&ngw_cfg, &model), NG_OK);
  old_steps(model);
  ng_runtime *rt = open_world(dir, NG_SYNC_OFF, 0);
  CHECK(ngw_same(rt, model));
  CHECK_EQ_INT(rt->journal->number, 1);
  ng_token v;
  ng_token_init(&v);
  v.weight = 9;
  for (int k = 0; k < 2; k++) {
    ng_runtime *x = k ? model : rt;
    CHECK_STATUS(ng_token_update(x, 2, &v, NG_TF_WEIGHT | NG_TF_UNPLACE(2)), NG_OK);
  }
  ng_runtime_release(rt);
  rt = open_world(dir, NG_SYNC_OFF, 0);
  CHECK(ngw_same(rt, model));
  ng_runtime_release(rt);
  size_t n0 = 0, n1 = 0;
  unsigned char *j0 = ngt_read_file(to, &n0); /* journal 0: untouched */
  snprintf(to, sizeof to, "%s/journal-%020d.ngj", dir, 1);
  unsigned char *j1 = ngt_read_file(to, &n1);
  CHECK(j0 && j1 && n0 == 768 && n1 == 64 + 40);
  if (j0 && j1) CHECK(j0[10] == 0 && j1[10] == 1 && j1[64 + 16] == 6);
  free(j0);
  free(j1);
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

/* Commit k of the small world's journal: a token, from the second on an
 * update of the one before (a delta: weight and position, and every other
 * time its flags, entity included), from the third on a link to it. */
static void small_commit(ng_runtime *rt, int k) {
  ng_token t;
  ng_token_init(&t);
  t.weight = (float)k;
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  CHECK_STATUS(ng_token_create(rt, &t, 1, NULL), NG_OK);
  if (k > 1) {
    t.weight = (float)(10 * k);
    t.flags = (uint16_t)(NG_TOKEN_ACTIVE | k << 8);
    CHECK_STATUS(ng_token_set_coords(&t, 0, (float)k, (float)-k, 0.5f), NG_OK);
    CHECK_STATUS(ng_token_update(rt, (ng_id)k - 1, &t,
                                 NG_TF_WEIGHT | NG_TF_COORDS(0) | (k % 2 ? 0 : NG_TF_FLAGS)),
                 NG_OK);
  }
  if (k > 2) CHECK_STATUS(ng_connection_create(rt, (ng_id)k - 1, (ng_id)k, NULL, NULL), NG_OK);
  CHECK_STATUS(ng_txn_commit(rt), NG_OK);
}

static void small_make(small_world *w) {
  world_path(w->dir, sizeof w->dir, "small");
  snprintf(w->snap, sizeof w->snap, "%s/snapshot-%020d.ngs", w->dir, 0);
  snprintf(w->journal, sizeof w->journal, "%s/journal-%020d.ngj", w->dir, 0);
  ng_runtime *rt = open_world(w->dir, NG_SYNC_OFF, 0);
  for (int k = 0; k <= COMMITS; k++) {
    if (k > 0) small_commit(rt, k);
    ng_runtime *copy = NULL; /* the model at this prefix: a fresh runtime taking the same steps */
    ng_runtime_new(&ngw_cfg, &copy);
    for (int i = 1; i <= k; i++)
      small_commit(copy, i);
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
  for (int k = 1; k < COMMITS; k++) /* after the create's put (74 bytes): the delta */
    CHECK_EQ_INT(w->bytes[w->rec[k] + 16 + 74], 6);
}

/* The small world's journal with one more record (commit COMMITS + 1) of
 * entry bytes e[0 .. n), opened: the status, and the message in msg. */
static ng_status small_append(small_world *w, const unsigned char *e, size_t n, char *msg,
                              size_t msg_size) {
  size_t len = w->len + 16 + n, total = (len + 7) & ~(size_t)7;
  unsigned char *b = calloc(1, total);
  memcpy(b, w->bytes, w->len);
  unsigned char *r = b + w->len;
  uint32_t rlen = (uint32_t)(16 + n);
  uint64_t commit = COMMITS + 1;
  memcpy(r, &rlen, 4);
  memcpy(r + 8, &commit, 8);
  memcpy(r + 16, e, n);
  uint32_t crc = ngi_crc32c(ngi_crc32c(0, r + 8, rlen - 8), r, 4);
  memcpy(r + 4, &crc, 4);
  write_all(w->journal, b, total);
  free(b);
  ng_runtime *rt = NULL;
  ng_status st = ng_runtime_open(w->dir, NULL, &rt);
  snprintf(msg, msg_size, "%s", st == NG_OK ? "" : ng_last_error(NULL));
  if (st == NG_OK) ng_runtime_release(rt);
  return st;
}

/* A delta entry: kind 6, u64 id, u32 mask, then the fields (docs/format.md). */
static size_t delta_entry(unsigned char *e, uint64_t id, uint32_t mask, const void *f, size_t n) {
  e[0] = 6;
  memcpy(e + 1, &id, 8);
  memcpy(e + 9, &mask, 4);
  memcpy(e + 13, f, n);
  return 13 + n;
}

/* Delta entries are read as documented; a bad one is NG_ECORRUPT naming the
 * record's offset and the reason, whatever its checksum. */
static void test_delta_corrupt(small_world *w) {
  unsigned char e[128], f[32];
  char msg[512], off[64];
  snprintf(off, sizeof off, "offset %zu", w->len);
  /* Token 1: L3 at (1, 2, 3), weight 42 (the coordinates come first). */
  int16_t xyz[3] = {1, 2, 3};
  float weight = 42.0f;
  memcpy(f, xyz, 6);
  memcpy(f + 6, &weight, 4);
  size_t n = delta_entry(e, 1, NG_TF_COORDS(2) | NG_TF_WEIGHT, f, 10);
  CHECK_STATUS(small_append(w, e, n, msg, sizeof msg), NG_OK);
  ng_runtime *rt = open_world(w->dir, NG_SYNC_OFF, 0);
  ng_token t;
  unsigned spaces = 0;
  CHECK_STATUS(ng_token_get(rt, 1, &t), NG_OK);
  CHECK_STATUS(ng_token_spaces(rt, 1, &spaces), NG_OK);
  CHECK(t.weight == 42.0f && t.coords[2][0] == 1 && t.coords[2][1] == 2 && t.coords[2][2] == 3);
  CHECK_EQ_INT(spaces, 5);
  ng_runtime_release(rt);
  static const struct {
    uint64_t id;
    uint32_t mask;
    size_t n; /* field bytes given */
    const char *why;
  } bad[] = {
      {999, NG_TF_WEIGHT, 4, "no token 999 to update"},
      {1, NG_TF_WEIGHT | NG_TF_ENTITY, 4, "unknown delta field bits 0x4000"},
      {1, 0x01000000u, 0, "unknown delta field bits"},
      {1, 0, 0, "a delta of no fields"},
      {1, NG_TF_COORDS(1) | NG_TF_UNPLACE(1), 6, "both places and unplaces it in L2"},
      {1, NG_TF_COORDS(0) | NG_TF_WEIGHT, 9, "cut short"},
      {1, NG_TF_WEIGHT, 4, "weight"},                                  /* 200: out of range */
      {1, NG_TF_FLAGS, 2, "entity 2 in the id differs from entity 5"}, /* no id field */
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    memset(f, 0, sizeof f);
    float big = 200.0f;
    uint16_t flags = NG_TOKEN_ACTIVE | 5u << 8;
    if (k == 6) memcpy(f, &big, 4);
    if (k == 7) memcpy(f, &flags, 2);
    n = delta_entry(e, bad[k].id, bad[k].mask, f, bad[k].n);
    ng_status st = small_append(w, e, n, msg, sizeof msg);
    if (st != NG_ECORRUPT || !strstr(msg, bad[k].why) || !strstr(msg, off))
      fprintf(stderr, "bad delta %zu: %s\n", k, msg);
    CHECK_STATUS(st, NG_ECORRUPT);
    CHECK(strstr(msg, bad[k].why) != NULL);
    CHECK(strstr(msg, off) != NULL);
  }
  write_all(w->journal, w->bytes, w->len);
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
  test_delta_replay();
  test_old_format();
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
  test_delta_corrupt(&w);
  for (int k = 0; k <= COMMITS; k++)
    ng_runtime_release(w.model[k]);
  free(w.bytes);
  ngw_remove(w.dir);
  rmdir(base);
  return ngt_done("test_journal");
}

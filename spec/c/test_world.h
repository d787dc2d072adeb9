/* Shared by the journal tests: a deterministic random workload (one step =
 * one commit: a single write, a batch, a transaction that commits or rolls
 * back, or a checkpoint) and a comparison of two runtimes' whole state. */
#ifndef NG_TEST_WORLD_H
#define NG_TEST_WORLD_H

#include "test.h"

#include <dirent.h>
#include <unistd.h>

/* A fixed clock: records stamped "now" are the same in a world and its model. */
static uint64_t ngw_clock(void *ud) {
  (void)ud;
  return 1700000000u;
}

static const ng_config ngw_cfg = {.clock = ngw_clock};

static ng_id ngw_pick(ng_runtime *rt, uint64_t *rng, int conns) {
  ng_stats s;
  ng_runtime_stats(rt, &s);
  ng_id next = conns ? s.next_connection_id : s.next_token_id;
  if (next <= 1) return 1;
  /* Mostly ids near the top (recent ones live), sometimes any. */
  uint32_t r = ngt_rnd(rng);
  ng_id lo = next > 64 && (r & 3) ? next - 64 : 1;
  return lo + ngt_rnd(rng) % (next - lo);
}

/* One write call of a random kind; its status does not matter (a failure
 * is deterministic too). */
static void ngw_write(ng_runtime *rt, uint64_t *rng) {
  ng_token t;
  ng_token_init(&t);
  t.weight = (float)(ngt_rnd(rng) % 101);
  for (int s = 0; s < 3; s++)
    t.coords[s][0] = (int16_t)(ngt_rnd(rng) % 2000), t.coords[s][1] = (int16_t)(ngt_rnd(rng) % 50);
  switch (ngt_rnd(rng) % 10) {
  case 0:
  case 1:
    (void)ng_token_create(rt, &t, ngt_rnd(rng) % 8, NULL);
    break;
  case 2:
    (void)ng_token_update(rt, ngw_pick(rt, rng, 0), &t,
                          NG_TF_WEIGHT | NG_TF_COORDS(ngt_rnd(rng) % 3));
    break;
  case 3:
    (void)ng_token_delete(rt, ngw_pick(rt, rng, 0), NULL);
    break;
  case 4: {
    ng_connection c;
    ng_connection_init(&c);
    c.pull_strength = (float)(ngt_rnd(rng) % 100) / 100.0f;
    (void)ng_connection_create(rt, ngw_pick(rt, rng, 0), ngw_pick(rt, rng, 0), &c, NULL);
    break;
  }
  case 5: {
    ng_connection c;
    ng_connection_init(&c);
    c.pull_strength = (float)(ngt_rnd(rng) % 100) / 100.0f;
    (void)ng_connection_update(rt, ngw_pick(rt, rng, 1), &c, NG_CF_PULL_STRENGTH);
    break;
  }
  case 6:
    (void)ng_connection_delete(rt, ngw_pick(rt, rng, 1));
    break;
  case 7: {
    double xyz[3] = {(double)(ngt_rnd(rng) % 100), 1, 2};
    (void)ng_token_place(rt, ngw_pick(rt, rng, 0), (int)(ngt_rnd(rng) % 4), xyz);
    break;
  }
  case 8: { /* random fields: flags, entity and domain, places and unplaces */
    uint32_t f = ngt_rnd(rng) & (NG_TF_ALL | NG_TF_UNPLACE_ALL);
    f &= ~((f & NG_TF_UNPLACE_ALL) >> 16);
    t.flags = (uint16_t)(NG_TOKEN_ACTIVE | (ngt_rnd(rng) % 16) << 8);
    t.id = ngt_rnd(rng);
    t.field_radius = (uint8_t)ngt_rnd(rng);
    t.timestamp = ngt_rnd(rng);
    (void)ng_token_update(rt, ngw_pick(rt, rng, 0), &t, f);
    break;
  }
  default: {
    ng_id ids[4];
    ng_token v[4];
    for (int i = 0; i < 4; i++) {
      ids[i] = ngw_pick(rt, rng, 0);
      v[i] = t;
      v[i].weight = (float)(ngt_rnd(rng) % 101);
    }
    (void)ng_token_update_batch(rt, ids, v, 4, NG_TF_WEIGHT | NG_TF_COORDS(0));
    break;
  }
  }
}

/* One step: a commit (or a rolled-back transaction), or, in a durable
 * world, sometimes a checkpoint, half of them in the background (a forked
 * save running while the next steps commit). The same rng sequence gives the
 * same state whether `durable` or not. */
static void ngw_step(ng_runtime *rt, uint64_t *rng, int durable) {
  uint32_t r = ngt_rnd(rng) % 40;
  if (r == 0) {
    bool background = ngt_rnd(rng) & 1;
    ng_save *job = NULL;
    if (durable && !background) (void)ng_checkpoint(rt);
    if (durable && background && ng_checkpoint_background(rt, &job) == NG_OK) ng_save_free(job);
  } else if (r < 8) {
    int n = 1 + (int)(ngt_rnd(rng) % 6), commit = ngt_rnd(rng) % 3 != 0;
    if (ng_txn_begin(rt) != NG_OK) return;
    for (int i = 0; i < n; i++)
      ngw_write(rt, rng);
    if (commit)
      (void)ng_txn_commit(rt);
    else
      (void)ng_txn_rollback(rt);
  } else {
    ngw_write(rt, rng);
  }
}

/* Whether a and b hold the same store: records, placements, connections,
 * CDNA and id allocators (as far as the stats show them). */
static int ngw_same(ng_runtime *a, ng_runtime *b) {
  ng_stats sa, sb;
  ng_runtime_stats(a, &sa);
  ng_runtime_stats(b, &sb);
  if (sa.tokens != sb.tokens || sa.connections != sb.connections ||
      sa.next_token_id != sb.next_token_id || sa.next_connection_id != sb.next_connection_id ||
      sa.token_slots_free != sb.token_slots_free ||
      sa.connection_slots_free != sb.connection_slots_free)
    return 0;
  ng_cdna ca, cb;
  ng_cdna_get(a, &ca);
  ng_cdna_get(b, &cb);
  if (memcmp(&ca, &cb, sizeof ca) != 0) return 0;
  for (ng_id id = 0; ng_token_next(a, id, &id) == NG_OK;) {
    ng_token ta, tb;
    unsigned pa = 0, pb = 0;
    if (ng_token_get(b, id, &tb) != NG_OK) return 0;
    ng_token_get(a, id, &ta);
    ng_token_spaces(a, id, &pa);
    ng_token_spaces(b, id, &pb);
    if (memcmp(&ta, &tb, sizeof ta) != 0 || pa != pb) return 0;
  }
  for (ng_id id = 0; ng_connection_next(a, id, &id) == NG_OK;) {
    ng_connection x, y;
    if (ng_connection_get(b, id, &y) != NG_OK) return 0;
    ng_connection_get(a, id, &x);
    if (memcmp(&x, &y, sizeof x) != 0) return 0;
  }
  return 1;
}

/* rm -r of a world directory (files only, one level). */
static void ngw_remove(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[512];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

#endif

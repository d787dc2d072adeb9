/* The change feed: exact event sequences for every kind of write, batches,
 * committed and rolled-back transactions and savepoints; filters; overflow;
 * ENABLE_EVENTS; trigger zones against a brute-force model over random
 * moves; many subscribers on several threads while a writer commits (run
 * under TSan in CI). */
#include "internal.h"
#include "test.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

static ng_runtime *new_rt(void) {
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(NULL, &rt), NG_OK);
  return rt;
}

static ng_sub *open_sub(ng_runtime *rt, uint32_t kinds, size_t cap) {
  ng_sub_filter f = {.kinds = kinds, .cap = cap};
  ng_sub *sub = NULL;
  CHECK_STATUS(ng_sub_open(rt, &f, &sub), NG_OK);
  return sub;
}

#define MAXEV 4096
static ng_event evs[MAXEV];

/* Drain sub into evs; returns how many. */
static size_t drain(ng_sub *sub) {
  size_t n = 0, got;
  do {
    CHECK_STATUS(ng_sub_poll(sub, evs + n, MAXEV - n, &got, NULL), NG_OK);
    n += got;
  } while (got > 0 && n < MAXEV);
  return n;
}

/* The kinds of evs[0..n) as "create,move,..." */
static const char *kinds_of(size_t n) {
  static char buf[4096];
  buf[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    if (i) strcat(buf, ",");
    strcat(buf, ng_event_kind_name(evs[i].kind));
  }
  return buf;
}

static ng_id token_at(ng_runtime *rt, int space, float x, float y, float z) {
  ng_token t;
  ng_token_init(&t);
  ng_token_set_coords(&t, space, x, y, z);
  ng_id id = 0;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS(space), &id), NG_OK);
  return id;
}

static void move_to(ng_runtime *rt, ng_id id, int space, float x, float y, float z) {
  ng_token v;
  ng_token_init(&v);
  ng_token_set_coords(&v, space, x, y, z);
  CHECK_STATUS(ng_token_update(rt, id, &v, NG_TF_COORDS(space)), NG_OK);
}

static void test_every_kind_of_write(void) {
  ng_runtime *rt = new_rt();
  ng_sub *sub = open_sub(rt, 0, 0);
  ng_id a = token_at(rt, NG_L1, 1, 2, 3);
  ng_id b = token_at(rt, NG_L1, 4, 5, 6);
  ng_token v;
  ng_token_init(&v);
  v.weight = 7;
  CHECK_STATUS(ng_token_update(rt, a, &v, NG_TF_WEIGHT), NG_OK);
  move_to(rt, a, NG_L1, 10, 20, 30);
  move_to(rt, a, NG_L1, 10, 20, 30); /* same place: no move */
  double xyz[3] = {0.5, 0.25, 0};
  CHECK_STATUS(ng_token_place(rt, a, NG_L2, xyz), NG_OK);
  CHECK_STATUS(ng_token_unplace(rt, a, NG_L2), NG_OK);
  ng_id c = ngt_link(rt, a, b, 0);
  ng_connection cv;
  ng_connection_init(&cv);
  cv.pull_strength = 2;
  CHECK_STATUS(ng_connection_update(rt, c, &cv, NG_CF_PULL_STRENGTH), NG_OK);
  CHECK_STATUS(ng_connection_learn(rt, c, NG_LEARN_ACTIVATE, NULL), NG_OK);
  ng_id c2 = ngt_link(rt, b, a, 0);
  CHECK_STATUS(ng_connection_delete(rt, c), NG_OK);
  size_t removed = 0;
  CHECK_STATUS(ng_token_delete(rt, b, &removed), NG_OK);
  CHECK_EQ_INT(removed, 1);
  CHECK_STATUS(ng_cdna_set_profile(rt, NG_PROFILE_EXPLORER), NG_OK);
  /* failed writes add nothing */
  CHECK_STATUS(ng_token_update(rt, b, &v, NG_TF_WEIGHT), NG_ENOTFOUND);
  v.weight = 1000;
  CHECK_STATUS(ng_token_update(rt, a, &v, NG_TF_WEIGHT), NG_EINVAL);

  size_t n = drain(sub);
  CHECK_STR(kinds_of(n), "create,create,update,move,move,unplace,link,link_update,link_update,"
                         "link,unlink,unlink,delete,cdna");
  for (size_t i = 0; i < n; i++) {
    CHECK_EQ_INT(evs[i].seq, i + 1);
    CHECK_EQ_INT(evs[i].commit, i + 1 - (i >= 12 ? 1 : 0)); /* the delete's unlink shares it */
    CHECK(evs[i].flags & NG_EVF_LAST || i == 11);
  }
  CHECK_EQ_INT(evs[0].id, a);
  CHECK_EQ_INT(evs[0].placed, 1);
  CHECK_EQ_INT(evs[2].fields, NG_TF_WEIGHT);
  CHECK_EQ_INT(evs[3].space, NG_L1);
  CHECK_EQ_INT(evs[3].from_xyz[0], 100);
  CHECK_EQ_INT(evs[3].to_xyz[2], 3000);
  CHECK(!(evs[3].flags & NG_EVF_PLACED));
  CHECK_EQ_INT(evs[4].space, NG_L2);
  CHECK(evs[4].flags & NG_EVF_PLACED);
  CHECK_EQ_INT(evs[4].to_xyz[0], 5000);
  CHECK_EQ_INT(evs[5].space, NG_L2);
  CHECK_EQ_INT(evs[5].from_xyz[1], 2500);
  CHECK_EQ_INT(evs[6].id, c);
  CHECK_EQ_INT(evs[6].from, a);
  CHECK_EQ_INT(evs[6].to, b);
  CHECK_EQ_INT(evs[7].fields, NG_CF_PULL_STRENGTH);
  CHECK_EQ_INT(evs[10].id, c);
  CHECK_EQ_INT(evs[11].id, c2);
  CHECK_EQ_INT(evs[11].from, b);
  CHECK_EQ_INT(evs[12].id, b);
  CHECK_EQ_INT(evs[12].placed, 1);
  CHECK_EQ_INT(ng_sub_lost(sub), 0);

  /* clear: every connection, then every token */
  ng_id d = token_at(rt, NG_L1, 0, 0, 0);
  ngt_link(rt, a, d, 0);
  drain(sub);
  CHECK_STATUS(ng_token_clear(rt, NULL, NULL), NG_OK);
  n = drain(sub);
  CHECK_STR(kinds_of(n), "unlink,delete,delete");
  CHECK(evs[0].commit == evs[2].commit);
  ng_sub_close(sub);
  ng_runtime_release(rt);
}

static void test_batches_and_transactions(void) {
  ng_runtime *rt = new_rt();
  ng_id ids[3];
  for (int i = 0; i < 3; i++)
    ids[i] = token_at(rt, NG_L1, (float)i, 0, 0);
  ng_sub *sub = open_sub(rt, 0, 0);
  ng_token vals[3];
  for (int i = 0; i < 3; i++) {
    ng_token_init(&vals[i]);
    ng_token_set_coords(&vals[i], NG_L1, (float)i, 1, 0);
  }
  CHECK_STATUS(ng_token_update_batch(rt, ids, vals, 3, NG_TF_COORDS(NG_L1)), NG_OK);
  size_t n = drain(sub);
  CHECK_STR(kinds_of(n), "move,move,move");
  for (size_t i = 0; i < n; i++) {
    CHECK_EQ_INT(evs[i].commit, 1);
    CHECK_EQ_INT(evs[i].id, ids[i]);
    CHECK_EQ_INT(evs[i].to_xyz[1], 100);
    CHECK_EQ_INT(!!(evs[i].flags & NG_EVF_LAST), i == 2);
  }

  /* a committed transaction is one commit, in write order */
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  ng_id t1 = token_at(rt, NG_L1, 5, 5, 5);
  move_to(rt, t1, NG_L1, 6, 6, 6);
  ng_savepoint sp;
  CHECK_STATUS(ng_txn_savepoint(rt, &sp), NG_OK);
  ng_id gone = token_at(rt, NG_L1, 7, 7, 7);
  CHECK_STATUS(ng_token_delete(rt, ids[0], NULL), NG_OK);
  CHECK_STATUS(ng_txn_rollback_to(rt, sp), NG_OK);
  CHECK_EQ_INT(ng_sub_pending(sub), 0); /* nothing before the commit */
  ngt_link(rt, t1, ids[1], 0);
  CHECK_STATUS(ng_txn_commit(rt), NG_OK);
  n = drain(sub);
  CHECK_STR(kinds_of(n), "create,move,link");
  CHECK_EQ_INT(evs[0].id, t1);
  CHECK(evs[0].id != gone || evs[0].id == t1);
  for (size_t i = 0; i < n; i++)
    CHECK_EQ_INT(evs[i].commit, 2);
  CHECK(evs[2].flags & NG_EVF_LAST);

  /* a rolled-back transaction leaves nothing */
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  token_at(rt, NG_L1, 1, 1, 1);
  CHECK_STATUS(ng_token_delete(rt, ids[2], NULL), NG_OK);
  CHECK_STATUS(ng_txn_rollback(rt), NG_OK);
  CHECK_EQ_INT(drain(sub), 0);
  /* the next commit's numbers follow on */
  token_at(rt, NG_L1, 1, 1, 1);
  CHECK_EQ_INT(drain(sub), 1);
  CHECK_EQ_INT(evs[0].commit, 3);
  CHECK_EQ_INT(evs[0].seq, 7);
  ng_sub_close(sub);
  ng_runtime_release(rt);
}

static void test_filters_overflow_and_off(void) {
  ng_runtime *rt = new_rt();
  ng_sub_filter f = {.kinds = 1u << NG_EV_MOVE | 1u << NG_EV_DELETE, .spaces = 1u << NG_L2};
  ng_sub *moves = NULL, *small = open_sub(rt, 0, 4), *objects = NULL;
  CHECK_STATUS(ng_sub_open(rt, &f, &moves), NG_OK);
  ng_sub_filter fo = {.entities = 1u << NG_ENTITY_OBJECT};
  CHECK_STATUS(ng_sub_open(rt, &fo, &objects), NG_OK);
  ng_sub_filter bad = {.kinds = 1u << 31};
  ng_sub *none = NULL;
  CHECK_STATUS(ng_sub_open(rt, &bad, &none), NG_EINVAL);
  CHECK(none == NULL);
  ng_id a = token_at(rt, NG_L1, 1, 1, 1);
  ng_id b = token_at(rt, NG_L2, 0.1f, 0.1f, 0.1f);
  move_to(rt, a, NG_L1, 2, 2, 2);
  move_to(rt, b, NG_L2, 0.2f, 0.2f, 0.2f);
  ng_token o;
  ng_token_init(&o);
  ng_token_set_entity(&o, NG_ENTITY_OBJECT);
  ng_id obj = 0;
  CHECK_STATUS(ng_token_create(rt, &o, 0, &obj), NG_OK);
  CHECK_STATUS(ng_token_delete(rt, a, NULL), NG_OK);
  CHECK_STATUS(ng_token_delete(rt, b, NULL), NG_OK);
  size_t n = drain(moves);
  CHECK_STR(kinds_of(n), "move,delete");
  CHECK_EQ_INT(evs[0].id, b);
  CHECK_EQ_INT(evs[1].id, b);
  n = drain(objects);
  CHECK_STR(kinds_of(n), "create");
  CHECK_EQ_INT(evs[0].id, obj);
  /* 7 events, room for 4: the first 4 kept, 3 lost, reported once */
  size_t got;
  uint64_t lost = 99;
  CHECK_STATUS(ng_sub_poll(small, evs, MAXEV, &got, &lost), NG_OK);
  CHECK_EQ_INT(got, 4);
  CHECK_EQ_INT(lost, 3);
  CHECK_EQ_INT(evs[3].seq, 4);
  CHECK_EQ_INT(ng_sub_lost(small), 0);
  token_at(rt, NG_L1, 0, 0, 0);
  CHECK_STATUS(ng_sub_poll(small, evs, MAXEV, &got, &lost), NG_OK);
  CHECK_EQ_INT(got, 1);
  CHECK_EQ_INT(lost, 0);
  CHECK_EQ_INT(evs[0].seq, 8); /* numbering is the feed's, not the queue's */

  /* ENABLE_EVENTS cleared: nothing recorded (the CDNA change itself is the last) */
  ng_cdna c;
  CHECK_STATUS(ng_cdna_get(rt, &c), NG_OK);
  c.flags &= ~(uint32_t)NG_CDNA_ENABLE_EVENTS;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);
  drain(small);
  CHECK_STR(kinds_of(1), "cdna");
  token_at(rt, NG_L1, 0, 0, 0);
  CHECK_EQ_INT(ng_sub_pending(small), 0);
  ng_zone_spec z = {.space = NG_L1, .shape = NG_ZONE_SPHERE, .radius = 100, .entity = -1};
  uint64_t zid = 0;
  CHECK_STATUS(ng_zone_add(rt, &z, &zid), NG_OK);
  CHECK_EQ_INT(ng_sub_pending(small), 0);
  c.flags |= NG_CDNA_ENABLE_EVENTS;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);
  CHECK_EQ_INT(ng_sub_pending(small), 0); /* the hold began with events off */
  /* bad arguments */
  CHECK_STATUS(ng_sub_poll(NULL, evs, 1, &got, NULL), NG_EINVAL);
  CHECK_STATUS(ng_sub_poll(small, NULL, 1, &got, NULL), NG_EINVAL);
  CHECK_STATUS(ng_sub_open(rt, NULL, NULL), NG_EINVAL);
  ng_sub_close(moves);
  ng_sub_close(small);
  ng_sub_close(objects);
  ng_sub_close(NULL);
  ng_runtime_release(rt);
}

/* ---- zones against a brute-force model -------------------------------------- */

#define NTOK 40
#define NZONE 12

static bool model_inside(const ng_zone_spec *z, const double p[3]) {
  if (z->shape == NG_ZONE_BOX)
    return p[0] >= z->lo[0] && p[0] <= z->hi[0] && p[1] >= z->lo[1] && p[1] <= z->hi[1] &&
           p[2] >= z->lo[2] && p[2] <= z->hi[2];
  double d = 0;
  for (int a = 0; a < 3; a++)
    d += (p[a] - z->center[a]) * (p[a] - z->center[a]);
  return d <= z->radius * z->radius;
}

static void test_zones_match_brute_force(void) {
  ng_runtime *rt = new_rt();
  ng_sub *sub = open_sub(rt, 1u << NG_EV_ENTER | 1u << NG_EV_LEAVE, 1u << 20);
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  ng_zone_spec zs[NZONE];
  uint64_t zid[NZONE];
  ng_id tok[NTOK];
  bool live[NTOK];
  static bool in[NZONE][NTOK]; /* the model: which token each zone holds, from the events */
  memset(in, 0, sizeof in);
  for (int k = 0; k < NTOK; k++) {
    tok[k] = token_at(rt, NG_L1, (float)(ngt_rnd(&seed) % 200) - 100, (float)(ngt_rnd(&seed) % 200) - 100, 0);
    live[k] = true;
  }
  for (int i = 0; i < NZONE; i++) {
    memset(&zs[i], 0, sizeof zs[i]);
    zs[i].space = NG_L1;
    zs[i].entity = -1;
    double cx = (double)(ngt_rnd(&seed) % 160) - 80, cy = (double)(ngt_rnd(&seed) % 160) - 80;
    double r = 5 + ngt_rnd(&seed) % (i == 0 ? 150 : 30);
    if (i % 2) {
      zs[i].shape = NG_ZONE_BOX;
      zs[i].lo[0] = cx - r, zs[i].lo[1] = cy - r, zs[i].lo[2] = -1;
      zs[i].hi[0] = cx + r, zs[i].hi[1] = cy + r / 2, zs[i].hi[2] = 1;
    } else {
      zs[i].shape = NG_ZONE_SPHERE;
      zs[i].center[0] = cx, zs[i].center[1] = cy;
      zs[i].radius = r;
    }
    CHECK_STATUS(ng_zone_add(rt, &zs[i], &zid[i]), NG_OK);
  }
  CHECK_EQ_INT(ng_zone_count(rt), NZONE);
  int errors = 0;
  size_t crossings = 0;
  for (int step = 0; step < 3000; step++) {
    int k = (int)(ngt_rnd(&seed) % NTOK);
    unsigned what = ngt_rnd(&seed) % 20;
    if (!live[k]) {
      tok[k] = token_at(rt, NG_L1, (float)(ngt_rnd(&seed) % 200) - 100, (float)(ngt_rnd(&seed) % 200) - 100, 0);
      live[k] = true;
    } else if (what == 0) {
      CHECK_STATUS(ng_token_delete(rt, tok[k], NULL), NG_OK);
      live[k] = false;
    } else if (what == 1) {
      CHECK_STATUS(ng_token_unplace(rt, tok[k], NG_L1), NG_OK);
    } else if (what == 2) {
      int i = (int)(ngt_rnd(&seed) % NZONE);
      zs[i].center[0] += 10, zs[i].lo[0] += 10, zs[i].hi[0] += 10;
      CHECK_STATUS(ng_zone_set(rt, zid[i], &zs[i]), NG_OK);
    } else {
      move_to(rt, tok[k], NG_L1, (float)(ngt_rnd(&seed) % 200) - 100, (float)(ngt_rnd(&seed) % 200) - 100, 0);
    }
    size_t n = drain(sub);
    crossings += n;
    for (size_t e = 0; e < n; e++) {
      int zi = -1, ti = -1;
      for (int i = 0; i < NZONE; i++)
        if (zid[i] == evs[e].zone) zi = i;
      for (int t = 0; t < NTOK; t++)
        if (tok[t] == evs[e].id) ti = t;
      if (zi < 0 || ti < 0) {
        errors++;
        continue;
      }
      bool enter = evs[e].kind == NG_EV_ENTER;
      if (in[zi][ti] == enter) errors++; /* an enter while inside, or a leave while outside */
      in[zi][ti] = enter;
    }
    /* the events' view equals the brute-force view */
    for (int t = 0; t < NTOK; t++) {
      double p[3];
      unsigned spaces = 0;
      bool placed = live[t] && ng_token_spaces(rt, tok[t], &spaces) == NG_OK && (spaces & 1u);
      if (placed) CHECK_STATUS(ng_token_position(rt, tok[t], NG_L1, p), NG_OK);
      for (int i = 0; i < NZONE; i++)
        if (in[i][t] != (placed && model_inside(&zs[i], p))) errors++;
    }
    if (errors) break;
  }
  CHECK_EQ_INT(errors, 0);
  CHECK(crossings > 1000); /* the model was exercised */
  CHECK_EQ_INT(ng_sub_lost(sub), 0);
  /* removed zones say nothing more; transactions refuse zone changes */
  CHECK_STATUS(ng_zone_remove(rt, zid[0]), NG_OK);
  CHECK_STATUS(ng_zone_remove(rt, zid[0]), NG_ENOTFOUND);
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  CHECK_STATUS(ng_zone_add(rt, &zs[1], NULL), NG_EBUSY);
  CHECK_STATUS(ng_txn_rollback(rt), NG_OK);
  ng_zone_spec bad = zs[1];
  bad.lo[0] = bad.hi[0] + 1;
  CHECK_STATUS(ng_zone_add(rt, &bad, NULL), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "spec.lo");
  ng_sub_close(sub);
  ng_runtime_release(rt);
}

static void test_zone_filter_and_added_inside(void) {
  ng_runtime *rt = new_rt();
  ng_sub *sub = open_sub(rt, 0, 0);
  ng_token o;
  ng_token_init(&o);
  ng_token_set_entity(&o, NG_ENTITY_OBJECT);
  ng_token_set_coords(&o, NG_L1, 1, 1, 1);
  ng_id obj = 0;
  CHECK_STATUS(ng_token_create(rt, &o, NG_TF_COORDS(NG_L1), &obj), NG_OK);
  ng_id plain = token_at(rt, NG_L1, 1, 1, 1);
  drain(sub);
  ng_zone_spec z = {.space = NG_L1, .shape = NG_ZONE_SPHERE, .radius = 5, .entity = NG_ENTITY_OBJECT};
  uint64_t zid = 0;
  CHECK_STATUS(ng_zone_add(rt, &z, &zid), NG_OK);
  size_t n = drain(sub);
  CHECK_STR(kinds_of(n), "enter");
  CHECK_EQ_INT(evs[0].id, obj);
  CHECK_EQ_INT(evs[0].zone, zid);
  CHECK_EQ_INT(evs[0].space, NG_L1);
  move_to(rt, plain, NG_L1, 50, 0, 0);
  move_to(rt, obj, NG_L1, 50, 0, 0);
  n = drain(sub);
  CHECK_STR(kinds_of(n), "move,move,leave");
  z.center[0] = 50;
  CHECK_STATUS(ng_zone_set(rt, zid, &z), NG_OK);
  n = drain(sub);
  CHECK_STR(kinds_of(n), "enter");
  ng_zone_spec back;
  CHECK_STATUS(ng_zone_get(rt, zid, &back), NG_OK);
  CHECK(back.center[0] == 50);
  /* crossings inside a transaction go with it */
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  move_to(rt, obj, NG_L1, 0, 0, 0);
  CHECK_STATUS(ng_txn_rollback(rt), NG_OK);
  CHECK_EQ_INT(ng_sub_pending(sub), 0);
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  move_to(rt, obj, NG_L1, 0, 0, 0);
  move_to(rt, obj, NG_L1, 50, 1, 0);
  CHECK_STATUS(ng_txn_commit(rt), NG_OK);
  n = drain(sub);
  CHECK_STR(kinds_of(n), "move,leave,move,enter");
  /* a batch that moves nothing wanted still crosses */
  ng_token far;
  ng_token_init(&far);
  ng_token_set_coords(&far, NG_L1, 200, 0, 0);
  CHECK_STATUS(ng_token_update_batch(rt, &obj, &far, 1, NG_TF_COORDS(NG_L1)), NG_OK);
  CHECK_STATUS(ng_token_update_batch(rt, &obj, &o, 1, NG_TF_COORDS(NG_L1)), NG_OK);
  n = drain(sub);
  CHECK_STR(kinds_of(n), "move,leave,move");
  CHECK_STATUS(ng_token_update_batch(rt, &obj, &far, 1, NG_TF_COORDS(NG_L1)), NG_OK);
  drain(sub);
  ng_token back_in;
  ng_token_init(&back_in);
  ng_token_set_coords(&back_in, NG_L1, 50, 0, 0);
  CHECK_STATUS(ng_token_update_batch(rt, &obj, &back_in, 1, NG_TF_COORDS(NG_L1)), NG_OK);
  n = drain(sub);
  CHECK_STR(kinds_of(n), "move,enter");
  CHECK_STATUS(ng_token_delete(rt, obj, NULL), NG_OK);
  n = drain(sub);
  CHECK_STR(kinds_of(n), "delete,leave");
  CHECK(evs[1].flags & NG_EVF_LAST);
  CHECK_EQ_INT(evs[0].commit, evs[1].commit);
  ng_sub_close(sub);
  ng_runtime_release(rt);
}

/* A new dimension scale re-encodes every position: the zones' index follows. */
/* A frame's small steps (a batch, as a game moves its world) at a scale that
 * is not a power of ten, through zones with fractional centres, radii and
 * faces, some of them on step boundaries: after every frame the enter/leave
 * events seen so far must say exactly which tokens each zone holds by the
 * decoded test. This is the path of the finer cells the inline gate reads
 * (most steps stay within one) and of the raw-step tests of the index. */
#define STEP_TOK 300
#define STEP_ZONE 40
static void test_zones_small_steps_match_brute_force(void) {
  ng_config cfg = {0};
  cfg.scales[NG_L1] = 0.37f;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  ng_sub *sub = open_sub(rt, 1u << NG_EV_ENTER | 1u << NG_EV_LEAVE, 1u << 20);
  uint64_t seed = 0x51ed270b27e5a3c9ull;
  static ng_id ids[STEP_TOK];
  static ng_token vals[STEP_TOK];
  static bool in[STEP_ZONE][STEP_TOK];
  memset(in, 0, sizeof in);
  ng_zone_spec zs[STEP_ZONE];
  uint64_t zid[STEP_ZONE];
  for (int k = 0; k < STEP_TOK; k++) {
    double p[3];
    for (int a = 0; a < 3; a++)
      p[a] = (double)(ngt_rnd(&seed) % 1600) / 100.0 - 8.0;
    ng_place pl = {.space = NG_L1, .xyz = {p[0], p[1], p[2]}};
    ng_token t;
    ng_token_init(&t);
    CHECK_STATUS(ng_token_create_at(rt, &t, &pl, 1, &ids[k]), NG_OK);
  }
  for (int i = 0; i < STEP_ZONE; i++) {
    memset(&zs[i], 0, sizeof zs[i]);
    zs[i].space = NG_L1;
    zs[i].entity = -1;
    /* small enough that each is listed in its cells (none "big"): the gate is on */
    double c[3], r = 0.5 + (double)(ngt_rnd(&seed) % 200) / 100.0;
    for (int a = 0; a < 3; a++)
      c[a] = (double)(ngt_rnd(&seed) % 1400) / 100.0 - 7.0;
    if (i % 3 == 0) { /* faces on whole steps of the scale: points exactly on them */
      zs[i].shape = NG_ZONE_BOX;
      for (int a = 0; a < 3; a++) {
        zs[i].lo[a] = floor(c[a] / 0.37f) * (double)0.37f;
        zs[i].hi[a] = zs[i].lo[a] + floor(r / 0.37f) * (double)0.37f;
      }
    } else if (i % 3 == 1) {
      zs[i].shape = NG_ZONE_BOX;
      for (int a = 0; a < 3; a++) {
        zs[i].lo[a] = c[a] - r;
        zs[i].hi[a] = c[a] + r * 0.7;
      }
    } else {
      zs[i].shape = NG_ZONE_SPHERE;
      memcpy(zs[i].center, c, sizeof c);
      zs[i].radius = r;
    }
    CHECK_STATUS(ng_zone_add(rt, &zs[i], &zid[i]), NG_OK);
  }
  int errors = 0;
  size_t crossings = 0;
  for (int frame = 0; frame <= 250 && errors < 5; frame++) {
    if (frame > 0) { /* steps of up to 0.2 m per axis */
      for (int k = 0; k < STEP_TOK; k++) {
        double p[3];
        CHECK_STATUS(ng_token_position(rt, ids[k], NG_L1, p), NG_OK);
        for (int a = 0; a < 3; a++)
          p[a] += (double)((int)(ngt_rnd(&seed) % 41) - 20) / 100.0;
        int16_t raw[3];
        CHECK_STATUS(ng_coords_encode(rt, NG_L1, p, 1, raw), NG_OK);
        ng_token_init(&vals[k]);
        memcpy(vals[k].coords[NG_L1], raw, sizeof raw);
      }
      CHECK_STATUS(ng_token_update_batch(rt, ids, vals, STEP_TOK, NG_TF_COORDS(NG_L1)), NG_OK);
      CHECK(rt->ev.gate[NG_L1].bits != NULL); /* the finer cells decide most moves */
    }
    size_t n = drain(sub);
    crossings += n;
    for (size_t e = 0; e < n; e++) {
      int zi = -1, ti = -1;
      for (int i = 0; i < STEP_ZONE; i++)
        if (zid[i] == evs[e].zone) zi = i;
      for (int t = 0; t < STEP_TOK; t++)
        if (ids[t] == evs[e].id) ti = t;
      bool enter = evs[e].kind == NG_EV_ENTER;
      if (zi < 0 || ti < 0 || in[zi][ti] == enter) { /* unknown, or not a crossing */
        errors++;
        continue;
      }
      in[zi][ti] = enter;
    }
    static double pos[STEP_TOK][3];
    for (int k = 0; k < STEP_TOK; k++)
      CHECK_STATUS(ng_token_position(rt, ids[k], NG_L1, pos[k]), NG_OK);
    for (int i = 0; i < STEP_ZONE; i++)
      for (int k = 0; k < STEP_TOK; k++) {
        const double *p = pos[k];
        if (model_inside(&zs[i], p) != in[i][k]) {
          if (errors < 5)
            fprintf(stderr, "frame %d: zone %d token %d at (%.17g, %.17g, %.17g): events say %s\n",
                    frame, i, k, p[0], p[1], p[2], in[i][k] ? "inside" : "outside");
          errors++;
        }
      }
  }
  CHECK_EQ_INT(errors, 0);
  CHECK(crossings > 1000); /* the walk crossed boundaries often */
  ng_sub_close(sub);
  ng_runtime_release(rt);
}

/* The rescale tests' zone: radius 5 around (100, 0, 0) in L1. */
static void add_zone_at_100(ng_runtime *rt) {
  ng_zone_spec z = {.space = NG_L1, .shape = NG_ZONE_SPHERE, .center = {100, 0, 0}, .radius = 5,
                    .entity = -1};
  CHECK_STATUS(ng_zone_add(rt, &z, NULL), NG_OK);
}

static void set_scale(ng_runtime *rt, int space, float scale) {
  ng_cdna c;
  CHECK_STATUS(ng_cdna_get(rt, &c), NG_OK);
  c.dimension_scales[space] = scale;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);
}

/* Move token id to (x, 0, 0) in L1, in the runtime's current units, by a
 * batch of one (the inline zone gate's path). */
static void batch_move_x(ng_runtime *rt, ng_id id, double x) {
  ng_token v;
  ng_token_init(&v);
  int16_t raw[3];
  CHECK_STATUS(ng_coords_encode(rt, NG_L1, (double[3]){x, 0, 0}, 1, raw), NG_OK);
  memcpy(v.coords[NG_L1], raw, sizeof raw);
  CHECK_STATUS(ng_token_update_batch(rt, &id, &v, 1, NG_TF_COORDS(NG_L1)), NG_OK);
}

static void test_zones_after_a_rescale(void) {
  ng_runtime *rt = new_rt();
  ng_sub *sub = open_sub(rt, 1u << NG_EV_ENTER | 1u << NG_EV_LEAVE, 0);
  ng_id a = token_at(rt, NG_L1, 100, 0, 0);
  add_zone_at_100(rt);
  move_to(rt, a, NG_L1, 120, 0, 0);
  CHECK_STR(kinds_of(drain(sub)), "enter,leave");
  set_scale(rt, NG_L1, 2); /* raw steps twice as long: the same places, new raw values */
  double p[3] = {101, 0, 0};
  CHECK_STATUS(ng_token_place(rt, a, NG_L1, p), NG_OK);
  CHECK_STR(kinds_of(drain(sub)), "enter");
  batch_move_x(rt, a, 200);
  CHECK_STR(kinds_of(drain(sub)), "leave");
  ng_sub_close(sub);
  ng_runtime_release(rt);
}

/* A rescale rolled back with its transaction: the zones follow the units
 * back (their index, rebuilt inside the transaction for the new units, is
 * rebuilt again), and the moves after it cross them where they are. */
static void test_zones_after_a_rolled_back_rescale(void) {
  ng_runtime *rt = new_rt();
  ng_sub *sub = open_sub(rt, 1u << NG_EV_ENTER | 1u << NG_EV_LEAVE, 0);
  ng_id a = token_at(rt, NG_L1, 120, 0, 0);
  add_zone_at_100(rt);
  batch_move_x(rt, a, 101);
  batch_move_x(rt, a, 120);
  CHECK_STR(kinds_of(drain(sub)), "enter,leave");
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  set_scale(rt, NG_L1, 2);
  batch_move_x(rt, a, 100);
  CHECK_STATUS(ng_txn_rollback(rt), NG_OK);
  CHECK_EQ_INT(drain(sub), 0); /* nothing of the rolled-back transaction */
  batch_move_x(rt, a, 101); /* in the old units again */
  batch_move_x(rt, a, 120);
  CHECK_STR(kinds_of(drain(sub)), "enter,leave");
  ng_sub_close(sub);
  ng_runtime_release(rt);
}

/* ---- threads ------------------------------------------------------------------ */

#define WRITES 3000
typedef struct reader {
  ng_runtime *rt;
  ng_sub *sub;
  size_t cap;
  uint64_t seen, lost, last_seq;
  int errors;
  atomic_int *done;
} reader;

static void *read_feed(void *arg) {
  reader *r = arg;
  ng_event buf[64];
  for (;;) {
    int finished = atomic_load(r->done);
    size_t n;
    uint64_t lost;
    if (ng_sub_poll(r->sub, buf, 64, &n, &lost) != NG_OK) r->errors++;
    r->lost += lost;
    for (size_t i = 0; i < n; i++) {
      /* in order, and gap-free but for what was dropped */
      if (buf[i].seq <= r->last_seq) r->errors++;
      if (r->lost == 0 && buf[i].seq != r->last_seq + 1) r->errors++;
      r->last_seq = buf[i].seq;
      r->seen++;
    }
    if (finished && n == 0) break;
  }
  return NULL;
}

static void test_threads(void) {
  ng_runtime *rt = new_rt();
  atomic_int done = 0;
  reader rs[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    rs[i] = (reader){.rt = rt, .done = &done};
    rs[i].sub = open_sub(rt, 0, i == 3 ? 16 : 4 * WRITES);
    pthread_create(&th[i], NULL, read_feed, &rs[i]);
  }
  ng_id id = token_at(rt, NG_L1, 0, 0, 0);
  for (int w = 1; w < WRITES; w++)
    move_to(rt, id, NG_L1, (float)(w % 100), 0, 0);
  atomic_store(&done, 1);
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK_EQ_INT(rs[i].errors, 0);
    CHECK_EQ_INT(rs[i].seen + rs[i].lost + ng_sub_lost(rs[i].sub), WRITES);
    if (i < 3) CHECK_EQ_INT(rs[i].seen, WRITES);
    ng_sub_close(rs[i].sub);
  }
  ng_runtime_release(rt);
}

int main(void) {
  RUN(test_every_kind_of_write);
  RUN(test_batches_and_transactions);
  RUN(test_filters_overflow_and_off);
  RUN(test_zones_match_brute_force);
  RUN(test_zone_filter_and_added_inside);
  RUN(test_zones_small_steps_match_brute_force);
  RUN(test_zones_after_a_rescale);
  RUN(test_zones_after_a_rolled_back_rescale);
  RUN(test_threads);
  return ngt_done("test_events");
}

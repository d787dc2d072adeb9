/* Token store tests: every ng_token_* function, success and error paths, state kept on error. */
#include "internal.h"
#include "test.h"
#include "test_alloc.h"

#include <math.h>

static ng_runtime *new_rt(uint32_t profile) {
  ng_config cfg = {0};
  cfg.clock = ngt_clock;
  cfg.profile = profile;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  return rt;
}

/* A fingerprint of the whole store: count, next id, and every record's bytes. */
typedef struct snap {
  size_t count;
  ng_id next_id;
  size_t n;
  ng_token recs[64];
} snap;

static void take(ng_runtime *rt, snap *s) {
  ng_stats st;
  CHECK_STATUS(ng_runtime_stats(rt, &st), NG_OK);
  s->count = st.tokens;
  s->next_id = st.next_token_id;
  s->n = 0;
  ng_id id = 0;
  while (s->n < 64 && ng_token_next(rt, id, &id) == NG_OK)
    ng_token_get(rt, id, &s->recs[s->n++]);
}

static int same(ng_runtime *rt, const snap *before) {
  snap now;
  take(rt, &now);
  return now.count == before->count && now.next_id == before->next_id && now.n == before->n &&
         memcmp(now.recs, before->recs, now.n * sizeof(ng_token)) == 0;
}

static void test_create_defaults(void) {
  ng_runtime *rt = new_rt(NG_PROFILE_DEFAULT);
  ng_id id = 0;
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id), NG_OK);
  CHECK_EQ_INT(id, 1);
  ng_token t;
  CHECK_STATUS(ng_token_get(rt, id, &t), NG_OK);
  CHECK_EQ_INT(t.id, 1);
  CHECK_EQ_INT(t.flags, NG_TOKEN_ACTIVE);
  CHECK(t.weight == 0.0f);
  CHECK_EQ_INT(t.timestamp, 1700000000u);
  CHECK_EQ_INT(t.field_radius, 0);
  for (int s = 0; s < NG_SPACES; s++)
    for (int a = 0; a < 3; a++)
      CHECK_EQ_INT(t.coords[s][a], 0);
  CHECK_EQ_INT(ng_token_count(rt), 1);
  ng_runtime_release(rt);
}

static void test_create_honours_fields(void) {
  ng_runtime *rt = new_rt(NG_PROFILE_DEFAULT);
  ng_token in;
  ng_token_init(&in);
  for (int s = 0; s < NG_SPACES; s++)
    ng_token_set_coords(&in, s, 0.5f, -0.25f, 1.0f);
  ng_token_set_coords(&in, NG_L1, 1, 2, 3);
  in.id = ng_make_id(0x123456, 9, 3); /* local id ignored, entity resynced, domain kept */
  in.flags = (uint16_t)(NG_TOKEN_ACTIVE | NG_TOKEN_USER_2);
  ng_token_set_entity(&in, NG_ENTITY_CONCEPT);
  in.weight = 42.5f;
  ng_token_set_field_radius(&in, 1.5f);
  ng_token_set_field_strength(&in, 0.8f);
  in.timestamp = 1234;
  ng_id id = 0;
  CHECK_STATUS(ng_token_create(rt, &in, NG_TF_COORDS_ALL, &id), NG_OK);
  ng_token out;
  CHECK_STATUS(ng_token_get(rt, id, &out), NG_OK);
  CHECK_EQ_INT(out.id, ng_make_id(NG_TOKEN_SLOT(id), NG_ENTITY_CONCEPT, 3));
  CHECK_EQ_INT(NG_ID_DOMAIN(out.id), 3);
  CHECK_EQ_INT(NG_ID_ENTITY(out.id), NG_ENTITY_CONCEPT);
  CHECK_EQ_INT(out.flags, in.flags);
  CHECK(out.weight == 42.5f);
  CHECK_EQ_INT(out.field_radius, 150);
  CHECK_EQ_INT(out.field_strength, 204);
  CHECK_EQ_INT(out.timestamp, 1234);
  CHECK(memcmp(out.coords, in.coords, sizeof in.coords) == 0);
  ng_runtime_release(rt);
}

static void test_create_errors(void) {
  ng_runtime *rt = new_rt(NG_PROFILE_DEFAULT);
  ngt_token_at(rt, 1, 1, 1);
  snap before;
  take(rt, &before);
  ng_id id = 77;
  CHECK_STATUS(ng_token_create(NULL, NULL, NG_TF_COORDS_ALL, &id), NG_EINVAL);
  ng_token t;
  ng_token_init(&t);
  const float bad[] = {NAN, INFINITY, -INFINITY, -0.5f, 100.5f, 250.0f};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    t.weight = bad[i];
    CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_EINVAL);
    CHECK_CONTAINS(ng_last_error(rt), "ng_token_create: weight must be within 0..100");
  }
  t.weight = 250.0f;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_EINVAL);
  CHECK_STR(ng_last_error(rt), "ng_token_create: weight must be within 0..100, got 250");
  t.weight = NAN;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "got nan");
  CHECK_EQ_INT(id, 77); /* out untouched on failure */
  CHECK(same(rt, &before));
  /* the boundaries are allowed */
  t.weight = 0.0f;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);
  t.weight = 100.0f;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);
  CHECK_EQ_INT(ng_token_count(rt), 3);
  /* out_id is optional (may be NULL), as in ng_connection_create */
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, NULL), NG_OK);
  CHECK_EQ_INT(ng_token_count(rt), 4);
  ng_runtime_release(rt);
}

static void test_strict_mode(void) {
  ng_runtime *rt = new_rt(NG_PROFILE_DEFAULT);
  ng_token t;
  ng_token_init(&t);
  t.weight = 5.0f; /* above the default CDNA max_token_weight 1.0: fine without STRICT */
  ng_token_set_field_radius(&t, 2.0f);
  ng_id id = 0;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);

  ng_cdna c;
  CHECK_STATUS(ng_cdna_get(rt, &c), NG_OK);
  c.flags |= NG_CDNA_STRICT_MODE;
  c.max_token_weight = 10.0f;
  c.min_field_radius = 50;
  c.max_field_radius = 150;
  c.min_field_strength = 10;
  c.max_field_strength = 200;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);

  snap before;
  take(rt, &before);
  t.weight = 11.0f;
  ng_token_set_field_radius(&t, 1.0f);
  ng_token_set_field_strength(&t, 0.5f);
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "weight");
  CHECK_CONTAINS(ng_last_error(rt), "got 11");
  t.weight = 10.0f;
  ng_token_set_field_radius(&t, 2.0f);
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "field_radius");
  ng_token_set_field_radius(&t, 0.4f);
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "got 0.4");
  ng_token_set_field_radius(&t, 1.0f);
  t.field_strength = 201;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "field_strength");
  t.field_strength = 9;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_EINVAL);
  CHECK(same(rt, &before));
  t.field_strength = 200;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);

  /* Update checks only the fields it writes: the old token (weight 5, radius
   * 2.0) may still change its flags, but not take an out-of-limit weight. */
  ng_token v;
  ng_token_init(&v);
  v.flags = NG_TOKEN_ACTIVE | NG_TOKEN_DIRTY;
  CHECK_STATUS(ng_token_update(rt, 1, &v, NG_TF_FLAGS), NG_OK);
  v.weight = 10.5f;
  take(rt, &before);
  CHECK_STATUS(ng_token_update(rt, 1, &v, NG_TF_WEIGHT), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "ng_token_update: weight");
  CHECK(same(rt, &before));

  /* STRICT off again: the limits no longer apply, the 0..100 rule still does. */
  c.flags &= ~(uint32_t)NG_CDNA_STRICT_MODE;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);
  t.weight = 99.0f;
  t.field_strength = 255;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);
  t.weight = 101.0f;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_EINVAL);
  ng_runtime_release(rt);
}

static void test_id_exhaustion(void) {
  ng_runtime *rt = new_rt(NG_PROFILE_DEFAULT);
  ngt_token_at(rt, 0, 0, 0);
  /* No fresh slot left and none freed: refused without allocating anything. */
  ngi_tokens_skip_slots(rt, NG_TOKEN_SLOT_MAX + 1u);
  snap before;
  take(rt, &before);
  ng_id id = 0;
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id), NG_ELIMIT);
  CHECK_CONTAINS(ng_last_error(rt), "token limit reached");
  CHECK(same(rt, &before));
  ng_runtime_release(rt);

  /* The last slot is usable, the one after is not; the slot never spills into the
   * entity/domain bits. */
  rt = new_rt(NG_PROFILE_DEFAULT);
  ngi_tokens_skip_slots(rt, NG_TOKEN_SLOT_MAX);
  ngi_tokens_skip_slots(rt, 5); /* going back is ignored: skipped slots stay retired */
  ng_token t;
  ng_token_init(&t);
  ng_token_set_entity(&t, NG_ENTITY_GOAL);
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);
  CHECK_EQ_INT(id, NG_TOKEN_SLOT_MAX);
  ng_token out;
  CHECK_STATUS(ng_token_get(rt, id, &out), NG_OK);
  CHECK_EQ_INT(out.id, ng_make_id(NG_TOKEN_SLOT_MAX, NG_ENTITY_GOAL, 0));
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_ELIMIT);
  CHECK_EQ_INT(ng_token_count(rt), 1);
  CHECK_STATUS(ng_token_delete(rt, NG_TOKEN_SLOT_MAX, NULL), NG_OK);
  /* with no fresh slot left, the freed one comes back at once, under generation 1 */
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);
  CHECK(id == ((ng_id)1 << NG_TOKEN_SLOT_BITS | NG_TOKEN_SLOT_MAX));
  CHECK_STATUS(ng_token_get(rt, NG_TOKEN_SLOT_MAX, &out), NG_ENOTFOUND); /* the stale id */
  CHECK_STATUS(ng_token_get(rt, id, &out), NG_OK);
  CHECK_EQ_INT(out.id, ng_make_id(NG_TOKEN_SLOT_MAX, NG_ENTITY_GOAL, 0));
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_ELIMIT);
  ng_runtime_release(rt);
}

static void test_get(void) {
  ng_runtime *rt = new_rt(NG_PROFILE_DEFAULT);
  ng_id a = ngt_token_at(rt, 1, 2, 3);
  ng_token t;
  memset(&t, 0xAB, sizeof t);
  ng_token keep = t;
  CHECK_STATUS(ng_token_get(rt, 0, &t), NG_EINVAL); /* no id at all */
  CHECK_STATUS(ng_token_get(rt, NG_ID_MAX + 1u, &t), NG_EINVAL);
  CHECK_STATUS(ng_token_get(rt, a + 1, &t), NG_ENOTFOUND);
  CHECK_CONTAINS(ng_last_error(rt), "no token 2");
  CHECK_STATUS(ng_token_get(rt, 0xFFFFFFFFu, &t), NG_ENOTFOUND);
  CHECK_STATUS(ng_token_get(rt, ng_make_id(NG_TOKEN_SLOT(a), 1, 1), &t),
               NG_ENOTFOUND); /* local ids only */
  CHECK(memcmp(&t, &keep, sizeof t) == 0);
  CHECK_STATUS(ng_token_get(rt, a, NULL), NG_EINVAL);
  CHECK_STATUS(ng_token_get(NULL, a, &t), NG_EINVAL);
  CHECK_STATUS(ng_token_get(rt, a, &t), NG_OK);
  float xyz[3];
  ng_token_get_coords(&t, NG_L1, xyz);
  CHECK(xyz[0] == 1.0f && xyz[1] == 2.0f && xyz[2] == 3.0f);
  ng_runtime_release(rt);
}

static size_t range_count(ng_runtime *rt, int space, float x, float y, float z, float r,
                          ng_id want) {
  ng_hits h = {0};
  float c[3] = {x, y, z};
  CHECK_STATUS(ng_grid_range(rt, space, c, r, 0, NULL, &h), NG_OK);
  size_t found = 0;
  for (size_t i = 0; i < h.count; i++)
    if (h.items[i].id == want) found++;
  ng_hits_free(rt, &h);
  return found;
}

static void test_update(void) {
  ng_runtime *rt = new_rt(NG_PROFILE_DEFAULT);
  ng_id a = ngt_token_at(rt, 1, 2, 3);
  ng_id b = ngt_token_at(rt, 50, 50, 50);
  ng_token v;
  ng_token_init(&v);
  v.weight = 7.5f;
  CHECK_STATUS(ng_token_update(rt, a, &v, NG_TF_WEIGHT), NG_OK);
  ng_token t;
  ng_token_get(rt, a, &t);
  CHECK(t.weight == 7.5f);
  float xyz[3];
  ng_token_get_coords(&t, NG_L1, xyz);
  CHECK(xyz[0] == 1.0f); /* unselected fields kept */
  CHECK_EQ_INT(t.timestamp, 1700000000u);

  /* flags carry the entity into the id; the domain only with NG_TF_DOMAIN */
  v.flags = NG_TOKEN_ACTIVE;
  ng_token_set_entity(&v, NG_ENTITY_EVENT);
  v.id = ng_make_id(999, 0, 7);
  CHECK_STATUS(ng_token_update(rt, a, &v, NG_TF_FLAGS), NG_OK);
  ng_token_get(rt, a, &t);
  CHECK_EQ_INT(t.id, ng_make_id(NG_TOKEN_SLOT(a), NG_ENTITY_EVENT, 0));
  CHECK_STATUS(ng_token_update(rt, a, &v, NG_TF_DOMAIN), NG_OK);
  ng_token_get(rt, a, &t);
  CHECK_EQ_INT(t.id, ng_make_id(NG_TOKEN_SLOT(a), NG_ENTITY_EVENT, 7));
  v.timestamp = 99;
  ng_token_set_field_radius(&v, 0.5f);
  ng_token_set_field_strength(&v, 1.0f);
  CHECK_STATUS(
      ng_token_update(rt, a, &v, NG_TF_TIMESTAMP | NG_TF_FIELD_RADIUS | NG_TF_FIELD_STRENGTH),
      NG_OK);
  ng_token_get(rt, a, &t);
  CHECK_EQ_INT(t.timestamp, 99);
  CHECK_EQ_INT(t.field_radius, 50);
  CHECK_EQ_INT(t.field_strength, 255);

  /* coordinates move in the grid of the changed space only */
  CHECK_EQ_INT(range_count(rt, NG_L1, 1, 2, 3, 0.1f, a), 1);
  ng_token_set_coords(&v, NG_L1, -100, 20, 30);
  ng_token_set_coords(&v, NG_L2, 0.5f, 0.5f, 0.5f);
  CHECK_STATUS(ng_token_update(rt, a, &v, NG_TF_COORDS(NG_L1)), NG_OK);
  CHECK_EQ_INT(range_count(rt, NG_L1, 1, 2, 3, 0.1f, a), 0);
  CHECK_EQ_INT(range_count(rt, NG_L1, -100, 20, 30, 0.1f, a), 1);
  CHECK_EQ_INT(range_count(rt, NG_L2, 0, 0, 0, 0.01f, a), 1);
  CHECK_EQ_INT(range_count(rt, NG_L2, 0.5f, 0.5f, 0.5f, 0.01f, a), 0);
  CHECK_STATUS(ng_token_update(rt, a, &v, NG_TF_COORDS_ALL), NG_OK);
  CHECK_EQ_INT(range_count(rt, NG_L2, 0.5f, 0.5f, 0.5f, 0.01f, a), 1);
  CHECK_EQ_INT(range_count(rt, NG_L1, -100, 20, 30, 0.1f, a), 1);
  ng_space_info gi;
  for (int s = 0; s < NG_SPACES; s++) {
    CHECK_STATUS(ng_grid_info(rt, s, &gi), NG_OK);
    CHECK_EQ_INT(gi.count, 2);
  }
  CHECK_STATUS(ng_token_update(rt, a, &v, 0), NG_OK); /* no fields: a no-op */

  /* errors leave everything as it was */
  snap before;
  take(rt, &before);
  CHECK_STATUS(ng_token_update(rt, a, &v, 0x8000), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "unknown field bits 0x8000");
  CHECK_STATUS(ng_token_update(rt, a, NULL, NG_TF_WEIGHT), NG_EINVAL);
  CHECK_STATUS(ng_token_update(NULL, a, &v, NG_TF_WEIGHT), NG_EINVAL);
  CHECK_STATUS(ng_token_update(rt, 999, &v, NG_TF_WEIGHT), NG_ENOTFOUND);
  CHECK_CONTAINS(ng_last_error(rt), "no token 999");
  CHECK_STATUS(ng_token_update(rt, 0, &v, NG_TF_WEIGHT), NG_EINVAL);
  v.weight = NAN;
  ng_token_set_coords(&v, NG_L1, 5, 5, 5);
  CHECK_STATUS(ng_token_update(rt, a, &v, NG_TF_WEIGHT | NG_TF_COORDS(NG_L1)), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "ng_token_update: weight must be within 0..100, got nan");
  v.weight = -1.0f;
  CHECK_STATUS(ng_token_update(rt, b, &v, NG_TF_ALL), NG_EINVAL);
  CHECK(same(rt, &before));
  CHECK_EQ_INT(range_count(rt, NG_L1, 5, 5, 5, 0.1f, a), 0);
  ng_runtime_release(rt);
}

static void test_delete(void) {
  ng_runtime *rt = new_rt(NG_PROFILE_DEFAULT);
  ng_id a = ngt_token_at(rt, 1, 1, 1), b = ngt_token_at(rt, 2, 2, 2), c = ngt_token_at(rt, 3, 3, 3);
  ng_connection cn;
  ng_id cid;
  ng_connection_init(&cn);
  CHECK_STATUS(ng_connection_create(rt, a, b, &cn, &cid), NG_OK);
  ng_connection_init(&cn);
  CHECK_STATUS(ng_connection_create(rt, c, a, &cn, &cid), NG_OK);
  ng_connection_init(&cn);
  CHECK_STATUS(ng_connection_create(rt, b, c, &cn, &cid), NG_OK);

  size_t removed = 99;
  CHECK_STATUS(ng_token_delete(rt, a, &removed), NG_OK);
  CHECK_EQ_INT(removed, 2);
  CHECK_EQ_INT(ng_connection_count(rt), 1);
  CHECK_EQ_INT(ng_token_count(rt), 2);
  ng_token t;
  CHECK_STATUS(ng_token_get(rt, a, &t), NG_ENOTFOUND);
  CHECK_EQ_INT(range_count(rt, NG_L1, 1, 1, 1, 0.5f, a), 0);
  ng_space_info gi;
  for (int s = 0; s < NG_SPACES; s++) {
    ng_grid_info(rt, s, &gi);
    CHECK_EQ_INT(gi.count, 2);
  }
  snap before;
  take(rt, &before);
  removed = 99;
  CHECK_STATUS(ng_token_delete(rt, a, &removed), NG_ENOTFOUND);
  CHECK_EQ_INT(removed, 99);
  CHECK_CONTAINS(ng_last_error(rt), "ng_token_delete: no token 1");
  CHECK_STATUS(ng_token_delete(rt, 0, NULL), NG_EINVAL);
  CHECK_STATUS(ng_token_delete(NULL, b, NULL), NG_EINVAL);
  CHECK(same(rt, &before));
  CHECK_STATUS(ng_token_delete(rt, b, NULL), NG_OK); /* NULL count is fine */
  CHECK_EQ_INT(ng_connection_count(rt), 0);
  /* ids are never reused */
  ng_id d = ngt_token_at(rt, 0, 0, 0);
  CHECK_EQ_INT(d, 4);
  ng_runtime_release(rt);
}

static void test_count_and_list(void) {
  ng_runtime *rt = new_rt(NG_PROFILE_DEFAULT);
  CHECK_EQ_INT(ng_token_count(NULL), 0);
  for (int i = 0; i < 10; i++)
    ngt_token_at(rt, (float)i, 0, 0);
  ng_token_delete(rt, 3, NULL);
  ng_token_delete(rt, 4, NULL);
  ng_token_delete(rt, 8, NULL);
  CHECK_EQ_INT(ng_token_count(rt), 7);
  ng_id ids[16];
  size_t n = 0;
  CHECK_STATUS(ng_token_list(rt, 0, 16, ids, &n), NG_OK);
  const ng_id all[] = {1, 2, 5, 6, 7, 9, 10};
  CHECK_EQ_INT(n, 7);
  CHECK(memcmp(ids, all, sizeof all) == 0);
  CHECK_STATUS(ng_token_list(rt, 2, 3, ids, &n), NG_OK);
  CHECK_EQ_INT(n, 3);
  CHECK(ids[0] == 5 && ids[1] == 6 && ids[2] == 7);
  CHECK_STATUS(ng_token_list(rt, 6, 3, ids, &n), NG_OK);
  CHECK_EQ_INT(n, 1);
  CHECK_EQ_INT(ids[0], 10);
  CHECK_STATUS(ng_token_list(rt, 7, 3, ids, &n), NG_OK);
  CHECK_EQ_INT(n, 0);
  CHECK_STATUS(ng_token_list(rt, (size_t)-1, 3, ids, &n), NG_OK);
  CHECK_EQ_INT(n, 0);
  CHECK_STATUS(ng_token_list(rt, 0, 0, NULL, &n), NG_OK);
  CHECK_EQ_INT(n, 0);
  n = 5;
  CHECK_STATUS(ng_token_list(rt, 0, 1, NULL, &n), NG_EINVAL);
  CHECK_EQ_INT(n, 5);
  CHECK_STATUS(ng_token_list(rt, 0, 1, ids, NULL), NG_EINVAL);
  CHECK_STATUS(ng_token_list(NULL, 0, 1, ids, &n), NG_EINVAL);
  /* pages of 2 cover everything exactly once */
  size_t seen = 0;
  for (size_t off = 0;; off += 2) {
    CHECK_STATUS(ng_token_list(rt, off, 2, ids, &n), NG_OK);
    if (n == 0) break;
    for (size_t i = 0; i < n; i++)
      CHECK_EQ_INT(ids[i], all[seen + i]);
    seen += n;
  }
  CHECK_EQ_INT(seen, 7);
  ng_runtime_release(rt);
}

static void test_cursor(void) {
  ng_runtime *rt = new_rt(NG_PROFILE_DEFAULT);
  ng_id id = 0;
  CHECK_STATUS(ng_token_next(rt, 0, &id), NG_ENOTFOUND);
  CHECK_STATUS(ng_token_next(rt, 0, NULL), NG_EINVAL);
  CHECK_STATUS(ng_token_next(NULL, 0, &id), NG_EINVAL);
  for (int i = 0; i < 6; i++)
    ngt_token_at(rt, 0, 0, 0); /* 1..6 */
  /* Loop: at 2 delete 3 (skipped) and 2 itself (the cursor carries on), at 4
   * create one (7, visited), at 7 stop creating. */
  ng_id visited[16];
  size_t nv = 0;
  ng_id cur = 0;
  while (ng_token_next(rt, cur, &cur) == NG_OK && nv < 16) {
    visited[nv++] = cur;
    if (cur == 2) {
      CHECK_STATUS(ng_token_delete(rt, 3, NULL), NG_OK);
      CHECK_STATUS(ng_token_delete(rt, 2, NULL), NG_OK);
    }
    if (cur == 4) ngt_token_at(rt, 0, 0, 0);
  }
  const ng_id want[] = {1, 2, 4, 5, 6, 7};
  CHECK_EQ_INT(nv, 6);
  CHECK(memcmp(visited, want, sizeof want) == 0);
  CHECK_STATUS(ng_token_next(rt, 7, &id), NG_ENOTFOUND);
  CHECK_CONTAINS(ng_last_error(rt), "no token after 7");
  CHECK_STATUS(ng_token_next(rt, 2, &id), NG_OK);
  CHECK_EQ_INT(id, 4);
  CHECK_STATUS(ng_token_next(rt, 0xFFFFFFFFu, &id), NG_ENOTFOUND);
  ng_runtime_release(rt);
}

static void test_compaction(void) {
  ng_runtime *rt = new_rt(NG_PROFILE_DEFAULT);
  enum { N = 2000 };
  for (int i = 0; i < N; i++)
    ngt_token_at(rt, (float)(i % 300), (float)(i / 300), 0);
  /* delete everything except multiples of 7, in a scattered order */
  for (uint32_t k = 0; k < N; k++) {
    ng_id id = (k * 769u) % N + 1;
    if (id % 7 != 0) CHECK_STATUS(ng_token_delete(rt, id, NULL), NG_OK);
  }
  size_t live = N / 7;
  CHECK_EQ_INT(ng_token_count(rt), live);
  const ngi_token_table *t = &rt->tokens;
  CHECK(t->len - t->live <= t->live); /* tombstones never outnumber live tokens */
  ng_id cur = 0, expect = 7;
  size_t n = 0;
  while (ng_token_next(rt, cur, &cur) == NG_OK) {
    CHECK_EQ_INT(cur, expect);
    ng_token tok;
    CHECK_STATUS(ng_token_get(rt, cur, &tok), NG_OK);
    CHECK_EQ_INT(NG_ID_LOCAL(tok.id), cur);
    float xyz[3];
    ng_token_get_coords(&tok, NG_L1, xyz);
    CHECK(xyz[0] == (float)((cur - 1) % 300) && xyz[1] == (float)((cur - 1) / 300));
    expect += 7;
    n++;
  }
  CHECK_EQ_INT(n, live);
  ng_id ids[4];
  size_t got;
  CHECK_STATUS(ng_token_list(rt, 100, 4, ids, &got), NG_OK);
  CHECK_EQ_INT(got, 4);
  CHECK_EQ_INT(ids[0], 707);
  CHECK_EQ_INT(ids[3], 728);
  ng_space_info gi;
  CHECK_STATUS(ng_grid_info(rt, NG_L1, &gi), NG_OK);
  CHECK_EQ_INT(gi.count, live);
  /* deleting the rest empties the table */
  for (ng_id id = 7; id <= N; id += 7)
    CHECK_STATUS(ng_token_delete(rt, id, NULL), NG_OK);
  CHECK_EQ_INT(ng_token_count(rt), 0);
  CHECK_EQ_INT(t->len, 0);
  /* more than 1024 slots are free: the next id reuses the smallest, one generation up */
  CHECK(ngt_token_at(rt, 0, 0, 0) == ((ng_id)1 << NG_TOKEN_SLOT_BITS | 1u));
  ng_runtime_release(rt);
}

static void test_timestamps(void) {
  ng_runtime *rt = new_rt(NG_PROFILE_DEFAULT);
  ngt_now = 1111;
  ng_id a = ngt_token_at(rt, 0, 0, 0);
  ngt_now = 2222;
  ng_id b = ngt_token_at(rt, 0, 0, 0);
  ngt_now = (uint64_t)UINT32_MAX + 10; /* saturates in the 32-bit field */
  ng_id c = ngt_token_at(rt, 0, 0, 0);
  ng_token t;
  ng_token_get(rt, a, &t);
  CHECK_EQ_INT(t.timestamp, 1111);
  ng_token_get(rt, b, &t);
  CHECK_EQ_INT(t.timestamp, 2222);
  ng_token_get(rt, c, &t);
  CHECK_EQ_INT(t.timestamp, UINT32_MAX);
  CHECK_EQ_INT(ng_runtime_now(rt), (uint64_t)UINT32_MAX + 10);
  ngt_now = NGT_NOW_DEFAULT;
  ng_runtime_release(rt);
}

typedef struct each_ctx {
  ng_id ids[16];
  size_t n;
  size_t stop_after;
} each_ctx;

static bool collect(const ng_token *tok, ng_id id, void *ud) {
  each_ctx *c = ud;
  CHECK_EQ_INT(NG_ID_LOCAL(tok->id), id);
  c->ids[c->n++] = id;
  return c->n < c->stop_after;
}

static void test_each(void) {
  ng_runtime *rt = new_rt(NG_PROFILE_DEFAULT);
  for (int i = 0; i < 5; i++)
    ngt_token_at(rt, 0, 0, 0);
  ng_token_delete(rt, 2, NULL);
  each_ctx c = {.n = 0, .stop_after = 100};
  CHECK_STATUS(ng_token_each(rt, collect, &c), NG_OK);
  const ng_id want[] = {1, 3, 4, 5};
  CHECK_EQ_INT(c.n, 4);
  CHECK(memcmp(c.ids, want, sizeof want) == 0);
  each_ctx s = {.n = 0, .stop_after = 2};
  CHECK_STATUS(ng_token_each(rt, collect, &s), NG_OK);
  CHECK_EQ_INT(s.n, 2);
  CHECK_STATUS(ng_token_each(rt, NULL, &s), NG_EINVAL);
  CHECK_STATUS(ng_token_each(NULL, collect, &s), NG_EINVAL);
  ng_runtime_release(rt);
}

static void test_clear(void) {
  ng_runtime *rt = new_rt(NG_PROFILE_DEFAULT);
  ng_id a = ngt_token_at(rt, 1, 1, 1), b = ngt_token_at(rt, 2, 2, 2);
  ngt_token_at(rt, 3, 3, 3);
  ng_connection cn;
  ng_id cid;
  ng_connection_init(&cn);
  CHECK_STATUS(ng_connection_create(rt, a, b, &cn, &cid), NG_OK);
  size_t nt = 0, nc = 0;
  CHECK_STATUS(ng_token_clear(rt, &nt, &nc), NG_OK);
  CHECK_EQ_INT(nt, 3);
  CHECK_EQ_INT(nc, 1);
  CHECK_EQ_INT(ng_token_count(rt), 0);
  CHECK_EQ_INT(ng_connection_count(rt), 0);
  ng_token t;
  CHECK_STATUS(ng_token_get(rt, a, &t), NG_ENOTFOUND);
  ng_id id;
  CHECK_STATUS(ng_token_next(rt, 0, &id), NG_ENOTFOUND);
  ng_space_info gi;
  for (int s = 0; s < NG_SPACES; s++) {
    ng_grid_info(rt, s, &gi);
    CHECK_EQ_INT(gi.count, 0);
  }
  CHECK_EQ_INT(ngt_token_at(rt, 1, 1, 1), 4); /* not reused after clear */
  CHECK_EQ_INT(range_count(rt, NG_L1, 1, 1, 1, 0.5f, 4), 1);
  CHECK_STATUS(ng_token_clear(rt, NULL, NULL), NG_OK);
  CHECK_STATUS(ng_token_clear(NULL, &nt, &nc), NG_EINVAL);
  ng_runtime_release(rt);
}

int main(void) {
  RUN(test_create_defaults);
  RUN(test_create_honours_fields);
  RUN(test_create_errors);
  RUN(test_strict_mode);
  RUN(test_id_exhaustion);
  RUN(test_get);
  RUN(test_update);
  RUN(test_delete);
  RUN(test_count_and_list);
  RUN(test_cursor);
  RUN(test_compaction);
  RUN(test_timestamps);
  RUN(test_each);
  RUN(test_clear);
  return ngt_done("test_tokens");
}

/* Tests of the spatial index: every query's success and error paths, edges, and a randomized
 * comparison against a brute-force scan over the token store. */
#include "test.h"
#include "test_alloc.h"
#include "grid_index.h"
#include "internal.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>

/* ---- helpers ------------------------------------------------------------ */

/* A deterministic PRNG (xorshift64*), so every run replays the same sequence. */
typedef struct prng {
  uint64_t s;
} prng;

static uint64_t prng_next(prng *p) {
  p->s ^= p->s >> 12;
  p->s ^= p->s << 25;
  p->s ^= p->s >> 27;
  return p->s * 0x2545F4914F6CDD1Dull;
}

static uint32_t prng_below(prng *p, uint32_t n) {
  return (uint32_t)(prng_next(p) % n);
}

static ng_runtime *new_rt(void) {
  ng_runtime *rt = NULL;
  ng_status st = ng_runtime_new(NULL, &rt);
  CHECK_STATUS(st, NG_OK);
  return rt;
}

/* Create a token at raw coordinates (x, y, z) in `space`, 0 elsewhere. */
static ng_id mk_raw(ng_runtime *rt, int space, int16_t x, int16_t y, int16_t z) {
  ng_token t;
  ng_token_init(&t);
  t.coords[space][0] = x;
  t.coords[space][1] = y;
  t.coords[space][2] = z;
  ng_id id = 0;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);
  return id;
}

/* Create a token at decoded coordinates in `space`. */
static ng_id mk(ng_runtime *rt, int space, float x, float y, float z) {
  ng_token t;
  ng_token_init(&t);
  ng_token_set_coords(&t, space, x, y, z);
  ng_id id = 0;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);
  return id;
}

static void move_raw(ng_runtime *rt, ng_id id, int space, int16_t x, int16_t y, int16_t z) {
  ng_token t;
  ng_token_init(&t);
  t.coords[space][0] = x;
  t.coords[space][1] = y;
  t.coords[space][2] = z;
  CHECK_STATUS(ng_token_update(rt, id, &t, NG_TF_COORDS(space)), NG_OK);
}

/* ---- the brute-force reference ------------------------------------------ */

enum { REF_RANGE, REF_NEIGHBORS, REF_NEAREST, REF_BOX };

typedef struct ref_query {
  int kind, space;
  double c[3];
  double radius;
  float lo[3], hi[3];
  ng_id exclude;
  const ng_filter *filter; /* NULL: the defaults */
  ng_hit *items;
  size_t count, cap;
  int oom;
} ref_query;

/* The filter's rules, from the record, one by one (the header's reading of
 * ng_filter, not the index's folded masks). */
static bool ref_pass(const ng_filter *f, const ng_token *tok, ng_id id, float d) {
  static const ng_filter defaults = {0};
  if (!f) f = &defaults;
  uint16_t fl = tok->flags;
  if (!f->inactive && !(fl & NG_TOKEN_ACTIVE)) return false;
  if ((fl & f->tags) != f->tags || (fl & f->without) != 0) return false;
  if (f->entities && !((f->entities >> ng_token_get_entity(tok)) & 1u)) return false;
  if (f->weight_range && !(tok->weight >= f->min_weight && tok->weight <= f->max_weight))
    return false;
  for (size_t i = 0; i < f->nexclude; i++)
    if (f->exclude[i] == id) return false;
  return !f->accept || f->accept(id, d, f->ud);
}

/* Decoded coordinates are what ng_token_get_coords reports; distances are
 * double precision over them, rounded to float, and a radius includes a point
 * iff that float is <= it, as the header promises. */
static bool ref_visit(const ng_token *tok, ng_id id, void *ud) {
  ref_query *q = ud;
  if (id == q->exclude) return true;
  float v[3];
  ng_token_get_coords(tok, q->space, v);
  if (q->kind == REF_BOX)
    for (int a = 0; a < 3; a++)
      if (v[a] < q->lo[a] || v[a] > q->hi[a]) return true;
  double d2 = 0;
  for (int a = 0; a < 3; a++)
    d2 += ((double)v[a] - q->c[a]) * ((double)v[a] - q->c[a]);
  double d = sqrt(d2);
  float reported = d > (double)FLT_MAX ? INFINITY : (float)d;
  if ((q->kind == REF_RANGE || q->kind == REF_NEIGHBORS) && (double)reported > q->radius)
    return true;
  if (!ref_pass(q->filter, tok, id, reported)) return true;
  if (q->count == q->cap) {
    size_t ncap = q->cap ? q->cap * 2 : 64;
    ng_hit *p = realloc(q->items, ncap * sizeof *p);
    if (!p) {
      q->oom = 1;
      return false;
    }
    q->items = p;
    q->cap = ncap;
  }
  q->items[q->count].id = id;
  q->items[q->count].distance = reported;
  q->count++;
  return true;
}

static int ref_cmp(const void *pa, const void *pb) {
  const ng_hit *a = pa, *b = pb;
  if (a->distance != b->distance) return a->distance < b->distance ? -1 : 1;
  return a->id < b->id ? -1 : a->id > b->id;
}

static void ref_run(ng_runtime *rt, ref_query *q, size_t limit) {
  q->count = 0;
  CHECK_STATUS(ng_token_each(rt, ref_visit, q), NG_OK);
  CHECK(!q->oom);
  if (q->count > 1) qsort(q->items, q->count, sizeof(ng_hit), ref_cmp);
  if (limit && q->count > limit) q->count = limit;
}

/* Same ids in the same order with bit-identical distances. */
static int same_hits(const ng_hits *h, const ref_query *q) {
  if (h->count != q->count) return 0;
  for (size_t i = 0; i < h->count; i++)
    if (h->items[i].id != q->items[i].id ||
        memcmp(&h->items[i].distance, &q->items[i].distance, sizeof(float)) != 0)
      return 0;
  return 1;
}

static void report_diff(const char *what, int space, const ng_hits *h, const ref_query *q) {
  fprintf(stderr, "  mismatch in %s, space %d: grid %zu hits, reference %zu\n", what, space,
          h->count, q->count);
  for (size_t i = 0; i < h->count && i < 5; i++)
    fprintf(stderr, "    grid %llu %.9g\n", (unsigned long long)h->items[i].id,
            (double)h->items[i].distance);
  for (size_t i = 0; i < q->count && i < 5; i++)
    fprintf(stderr, "    ref  %llu %.9g\n", (unsigned long long)q->items[i].id,
            (double)q->items[i].distance);
}

/* Compare every query type at one centre against the reference. */
static int compare_all(ng_runtime *rt, int space, const float c[3], ng_id some_id,
                       const double *radii, size_t nradii, ref_query *q, ng_hits *h) {
  int ok = 1;
  const ng_filter *f = q->filter;
  for (size_t r = 0; r < nradii; r++) {
    float radius = (float)radii[r];
    size_t limit = r % 3 == 1 ? 5 : 0;
    q->kind = REF_RANGE;
    q->space = space;
    q->exclude = 0;
    for (int a = 0; a < 3; a++)
      q->c[a] = c[a];
    q->radius = radius;
    ref_run(rt, q, limit);
    ng_status st = ng_grid_range(rt, space, c, radius, limit, f, h);
    if (st != NG_OK || !same_hits(h, q)) {
      report_diff("range", space, h, q);
      ok = 0;
    }
    if (some_id) {
      ng_token t;
      CHECK_STATUS(ng_token_get(rt, some_id, &t), NG_OK);
      float v[3];
      ng_token_get_coords(&t, space, v);
      q->kind = REF_NEIGHBORS;
      q->exclude = some_id;
      for (int a = 0; a < 3; a++)
        q->c[a] = v[a];
      ref_run(rt, q, limit);
      st = ng_grid_neighbors(rt, some_id, space, radius, limit, f, h);
      if (st != NG_OK || !same_hits(h, q)) {
        report_diff("neighbors", space, h, q);
        ok = 0;
      }
    }
  }
  static const size_t ks[] = {1, 2, 7, 40, 100000};
  for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
    q->kind = REF_NEAREST;
    q->space = space;
    q->exclude = 0;
    for (int a = 0; a < 3; a++)
      q->c[a] = c[a];
    ref_run(rt, q, ks[i]);
    ng_status st = ng_grid_nearest(rt, space, c, ks[i], f, h);
    if (st != NG_OK || !same_hits(h, q)) {
      report_diff("nearest", space, h, q);
      ok = 0;
    }
    if (some_id) {
      ng_token t;
      CHECK_STATUS(ng_token_get(rt, some_id, &t), NG_OK);
      float v[3];
      ng_token_get_coords(&t, space, v);
      q->kind = REF_NEAREST;
      q->exclude = some_id;
      for (int a = 0; a < 3; a++)
        q->c[a] = v[a];
      ref_run(rt, q, ks[i]);
      st = ng_grid_nearest_to(rt, some_id, space, ks[i], f, h);
      if (st != NG_OK || !same_hits(h, q)) {
        report_diff("nearest_to", space, h, q);
        ok = 0;
      }
    }
  }
  for (size_t r = 0; r < nradii; r++) {
    double half = radii[r] > 1e6 ? 1e6 : radii[r];
    q->kind = REF_BOX;
    q->space = space;
    q->exclude = 0;
    for (int a = 0; a < 3; a++) {
      q->lo[a] = (float)(c[a] - half * (a + 1) / 2);
      q->hi[a] = (float)(c[a] + half);
    }
    /* The centre from the stored floats, as ng_grid_box computes it (in a
     * loop of its own: GCC's -O3 SLP vectoriser otherwise folds the unrounded
     * doubles into it). */
    for (int a = 0; a < 3; a++) {
      volatile float l = q->lo[a], u = q->hi[a];
      q->c[a] = ((double)l + (double)u) / 2;
    }
    ref_run(rt, q, 0);
    ng_status st = ng_grid_box(rt, space, q->lo, q->hi, 0, f, h);
    if (st != NG_OK || !same_hits(h, q)) {
      report_diff("box", space, h, q);
      ok = 0;
    }
  }
  return ok;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_errors(void) {
  ng_runtime *rt = new_rt();
  ng_hits h = {0};
  float c[3] = {0, 0, 0}, lo[3] = {0, 0, 0}, hi[3] = {1, 1, 1};
  ng_id id = mk(rt, NG_L1, 1, 1, 1);
  mk(rt, NG_L1, 2, 2, 2);

  /* A successful query first, so a failure visibly resets the count. */
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 100, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 2);

  CHECK_STATUS(ng_grid_range(NULL, NG_L1, c, 1, 0, NULL, &h), NG_EINVAL);
  CHECK_EQ_INT(h.count, 0);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 1, 0, NULL, NULL), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "out");
  CHECK_STATUS(ng_grid_range(rt, NG_L1, NULL, 1, 0, NULL, &h), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "center");
  CHECK_STATUS(ng_grid_range(rt, -1, c, 1, 0, NULL, &h), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "space");
  CHECK_STATUS(ng_grid_range(rt, NG_SPACES, c, 1, 0, NULL, &h), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "space");

  const float bad_radii[] = {NAN, -1.0f, -0.0001f, INFINITY, -INFINITY};
  for (size_t i = 0; i < sizeof bad_radii / sizeof bad_radii[0]; i++) {
    CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 100, 0, NULL, &h), NG_OK);
    CHECK_STATUS(ng_grid_range(rt, NG_L1, c, bad_radii[i], 0, NULL, &h), NG_EINVAL);
    CHECK_CONTAINS(ng_last_error(rt), "radius");
    CHECK_EQ_INT(h.count, 0);
    CHECK_STATUS(ng_grid_neighbors(rt, id, NG_L1, bad_radii[i], 0, NULL, &h), NG_EINVAL);
    CHECK_CONTAINS(ng_last_error(rt), "radius");
  }
  float nan_c[3] = {0, NAN, 0}, inf_c[3] = {INFINITY, 0, 0};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, nan_c, 1, 0, NULL, &h), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "center[1]");
  CHECK_STATUS(ng_grid_range(rt, NG_L1, inf_c, 1, 0, NULL, &h), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "center[0]");
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, nan_c, 3, NULL, &h), NG_EINVAL);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, NULL, 3, NULL, &h), NG_EINVAL);
  CHECK_STATUS(ng_grid_nearest(rt, 9, c, 3, NULL, &h), NG_EINVAL);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, c, 3, NULL, NULL), NG_EINVAL);
  CHECK_STATUS(ng_grid_nearest(NULL, NG_L1, c, 3, NULL, &h), NG_EINVAL);

  CHECK_STATUS(ng_grid_neighbors(rt, 999, NG_L1, 1, 0, NULL, &h), NG_ENOTFOUND);
  CHECK_CONTAINS(ng_last_error(rt), "999");
  CHECK_STATUS(ng_grid_neighbors(rt, 0, NG_L1, 1, 0, NULL, &h), NG_EINVAL); /* no id at all */
  CHECK_STATUS(ng_grid_neighbors(rt, NG_ID_MAX + 1u, NG_L1, 1, 0, NULL, &h), NG_EINVAL);
  CHECK_STATUS(ng_grid_neighbors(rt, id, -3, 1, 0, NULL, &h), NG_EINVAL);
  CHECK_STATUS(ng_grid_neighbors(rt, id, NG_L1, 1, 0, NULL, NULL), NG_EINVAL);
  CHECK_STATUS(ng_grid_neighbors(NULL, id, NG_L1, 1, 0, NULL, &h), NG_EINVAL);
  CHECK_STATUS(ng_token_delete(rt, id, NULL), NG_OK);
  CHECK_STATUS(ng_grid_neighbors(rt, id, NG_L1, 1, 0, NULL, &h), NG_ENOTFOUND);

  float lo_bad[3] = {0, 2, 0};
  CHECK_STATUS(ng_grid_box(rt, NG_L1, lo_bad, hi, 0, NULL, &h), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "lo[1]");
  float lo_nan[3] = {NAN, 0, 0}, hi_nan[3] = {1, 1, NAN};
  CHECK_STATUS(ng_grid_box(rt, NG_L1, lo_nan, hi, 0, NULL, &h), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "lo[0]");
  CHECK_STATUS(ng_grid_box(rt, NG_L1, lo, hi_nan, 0, NULL, &h), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "hi[2]");
  CHECK_STATUS(ng_grid_box(rt, NG_L1, NULL, hi, 0, NULL, &h), NG_EINVAL);
  CHECK_STATUS(ng_grid_box(rt, NG_L1, lo, NULL, 0, NULL, &h), NG_EINVAL);
  CHECK_STATUS(ng_grid_box(rt, 8, lo, hi, 0, NULL, &h), NG_EINVAL);
  CHECK_STATUS(ng_grid_box(rt, NG_L1, lo, hi, 0, NULL, NULL), NG_EINVAL);

  ng_space_info info;
  CHECK_STATUS(ng_grid_info(NULL, NG_L1, &info), NG_EINVAL);
  CHECK_STATUS(ng_grid_info(rt, NG_L1, NULL), NG_EINVAL);
  CHECK_STATUS(ng_grid_info(rt, 8, &info), NG_EINVAL);
  CHECK_STATUS(ng_grid_info(rt, -1, &info), NG_EINVAL);

  ng_hits_free(rt, NULL); /* ignored */
  ng_hits_free(rt, &h);
  CHECK(h.items == NULL && h.count == 0 && h.capacity == 0);
  ng_runtime_release(rt);
}

static void test_range_sorted_ties_limit(void) {
  ng_runtime *rt = new_rt();
  ng_hits h = {0};
  /* Four points at distance 5 from the origin (ties), one at 0, one at 3, one at 20. */
  ng_id a = mk(rt, NG_L1, 3, 4, 0);
  ng_id b = mk(rt, NG_L1, 0, 0, 0);
  ng_id c = mk(rt, NG_L1, -5, 0, 0);
  ng_id d = mk(rt, NG_L1, 0, 0, 5);
  ng_id e = mk(rt, NG_L1, 0, 3, 0);
  ng_id f = mk(rt, NG_L1, 0, -4, 3);
  ng_id g = mk(rt, NG_L1, 20, 0, 0);
  float o[3] = {0, 0, 0};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, 5, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 6);
  ng_id want[] = {b, e, a, c, d, f};
  float wd[] = {0, 3, 5, 5, 5, 5};
  for (size_t i = 0; i < 6 && i < h.count; i++) {
    CHECK_EQ_INT(h.items[i].id, want[i]);
    CHECK(h.items[i].distance == wd[i]);
  }
  /* Radius just below 5 drops the four ties; radius 0 keeps the exact point only. */
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, 4.999f, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 2);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, 0, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 1);
  CHECK_EQ_INT(h.items[0].id, b);
  CHECK(h.items[0].distance == 0.0f);
  /* limit keeps the first results of the full order. */
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, 100, 3, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 3);
  CHECK_EQ_INT(h.items[2].id, a);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, 100, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 7);
  CHECK_EQ_INT(h.items[6].id, g);
  CHECK(h.items[6].distance == 20.0f);
  /* A centre given as the decoded coordinates of a token is at distance 0 from it. */
  float p[3] = {1.27f, -0.01f, 3.33f};
  ng_id q = mk(rt, NG_L1, p[0], p[1], p[2]);
  ng_token t;
  CHECK_STATUS(ng_token_get(rt, q, &t), NG_OK);
  float v[3];
  ng_token_get_coords(&t, NG_L1, v);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, v, 0, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 1);
  if (h.count) CHECK_EQ_INT(h.items[0].id, q);
  /* Other spaces are separate indexes: every token sits at the origin of L3. */
  CHECK_STATUS(ng_grid_range(rt, NG_L3, o, 0, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 8);
  for (size_t i = 1; i < h.count; i++)
    CHECK(h.items[i - 1].id < h.items[i].id);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

/* Results of every size the sorts handle (introsort below 24 hits and from
 * 513 to 1023, the bucket sort between, the radix sort from 1024), in
 * (distance, id) order with the reference's distances: spread points, and
 * runs of equal distances (eight points at distance 5 from the origin, 100
 * tokens each, created in turn, so that one bucket holds hundreds of keys out
 * of id order: the bucket sort's fall-back). */
static void test_result_order_all_sizes(void) {
  ng_runtime *rt = new_rt();
  ng_hits h = {0};
  ref_query q = {0};
  prng p = {0x50127ull};
  static const float ring[8][3] = {{3, 4, 0},  {-3, 4, 0}, {3, -4, 0}, {0, -4, 3},
                                   {0, 3, -4}, {-4, 0, 3}, {5, 0, 0},  {0, 0, -5}};
  for (int i = 0; i < 800; i++)
    mk(rt, NG_L1, ring[i % 8][0], ring[i % 8][1], ring[i % 8][2]);
  for (int i = 0; i < 1200; i++)
    mk(rt, NG_L1, (float)prng_below(&p, 4001) / 100.0f - 20.0f,
       (float)prng_below(&p, 4001) / 100.0f - 20.0f, (float)prng_below(&p, 4001) / 100.0f - 20.0f);
  static const float centres[3][3] = {{0, 0, 0}, {3, 4, 0}, {-7.5f, 2.25f, 9}};
  int ok = 1;
  for (int c = 0; c < 3 && ok; c++)
    for (float r = 0.0f; r <= 40.0f && ok; r += 0.75f) {
      q.kind = REF_RANGE;
      q.space = NG_L1;
      q.exclude = 0;
      for (int a = 0; a < 3; a++)
        q.c[a] = centres[c][a];
      q.radius = r;
      ref_run(rt, &q, 0);
      CHECK_STATUS(ng_grid_range(rt, NG_L1, centres[c], r, 0, NULL, &h), NG_OK);
      if (!same_hits(&h, &q)) {
        report_diff("range (result order)", NG_L1, &h, &q);
        ok = 0;
      }
    }
  CHECK(ok);
  free(q.items);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

/* A hit exactly at the radius (issue 12 item 10): raw (3k, 4k, 0) decodes to
 * (0.3, 0.4, 0) in every space, whose double distance from the origin,
 * sqrt(0.3f^2 + 0.4f^2), lies just above 0.5 but is reported as 0.5f. Range,
 * neighbours, nearest and box queries all keep it at radius 0.5 and report
 * 0.5, and a radius one float below 0.5 drops it, in every space. */
static void test_exact_radius(void) {
  for (int space = 0; space < NG_SPACES; space++) {
    ng_runtime *rt = new_rt();
    int16_t k = (int16_t)(ng_space_scale(space) / 10.0f); /* raw 3k = 0.3 decoded */
    ng_id origin = mk_raw(rt, space, 0, 0, 0);
    ng_id diag = mk_raw(rt, space, (int16_t)(3 * k), (int16_t)(4 * k), 0);
    ng_id axis = mk_raw(rt, space, (int16_t)(5 * k), 0, 0); /* exactly 0.5 away */
    mk_raw(rt, space, (int16_t)(5 * k + 1), 0, 0);          /* just beyond 0.5 */
    float v[3] = {ng_coord_decode(space, (int16_t)(3 * k)),
                  ng_coord_decode(space, (int16_t)(4 * k)), 0.0f};
    double exact = sqrt((double)v[0] * v[0] + (double)v[1] * v[1]);
    CHECK(exact > 0.5);          /* the float rounding matters here */
    CHECK((float)exact == 0.5f); /* and is reported as 0.5 */

    const float c[3] = {0, 0, 0};
    ng_hits h = {0};
    CHECK_STATUS(ng_grid_range(rt, space, c, 0.5f, 0, NULL, &h), NG_OK);
    CHECK_EQ_INT(h.count, 3);
    if (h.count == 3) {
      CHECK_EQ_INT(h.items[0].id, origin);
      CHECK_EQ_INT(h.items[1].id, diag); /* ties at 0.5 by ascending id */
      CHECK(h.items[1].distance == 0.5f);
      CHECK_EQ_INT(h.items[2].id, axis);
      CHECK(h.items[2].distance == 0.5f);
    }
    /* Every hit of a larger radius at distance <= 0.5 is in the 0.5 query. */
    CHECK_STATUS(ng_grid_range(rt, space, c, 1.0f, 0, NULL, &h), NG_OK);
    size_t within = 0;
    for (size_t i = 0; i < h.count; i++)
      within += h.items[i].distance <= 0.5f;
    CHECK_EQ_INT(within, 3);

    CHECK_STATUS(ng_grid_range(rt, space, c, nextafterf(0.5f, 0.0f), 0, NULL, &h), NG_OK);
    CHECK_EQ_INT(h.count, 1);

    CHECK_STATUS(ng_grid_neighbors(rt, origin, space, 0.5f, 0, NULL, &h), NG_OK);
    CHECK_EQ_INT(h.count, 2);
    if (h.count == 2) {
      CHECK_EQ_INT(h.items[0].id, diag);
      CHECK(h.items[0].distance == 0.5f);
      CHECK_EQ_INT(h.items[1].id, axis);
    }
    CHECK_STATUS(ng_grid_neighbors(rt, diag, space, 0.5f, 0, NULL, &h), NG_OK);
    CHECK_EQ_INT(h.count, 3); /* axis and far (about 0.45), then the origin, 0.5 back */
    if (h.count == 3) {
      CHECK_EQ_INT(h.items[2].id, origin);
      CHECK(h.items[2].distance == 0.5f);
    }

    /* Nearest: the same float distances, so the lower id wins the tie. */
    CHECK_STATUS(ng_grid_nearest(rt, space, c, 2, NULL, &h), NG_OK);
    CHECK_EQ_INT(h.count, 2);
    if (h.count == 2) {
      CHECK_EQ_INT(h.items[1].id, diag);
      CHECK(h.items[1].distance == 0.5f);
    }

    /* Box: a point on the closed box's faces is inside; its distance is from the centre. */
    const float lo[3] = {0, 0, 0}, hi[3] = {v[0], v[1], 0};
    CHECK_STATUS(ng_grid_box(rt, space, lo, hi, 0, NULL, &h), NG_OK);
    CHECK_EQ_INT(h.count, 2);
    if (h.count == 2) {
      CHECK_EQ_INT(h.items[0].id, origin);
      CHECK_EQ_INT(h.items[1].id, diag);
      CHECK(h.items[0].distance == h.items[1].distance); /* both corners, 0.25 from the centre */
    }
    ng_hits_free(rt, &h);
    ng_runtime_release(rt);
  }
}

static void test_neighbors(void) {
  ng_runtime *rt = new_rt();
  ng_hits h = {0};
  ng_id a = mk(rt, NG_L1, 10, 10, 10);
  ng_id b = mk(rt, NG_L1, 10, 10, 10); /* same place: distance 0, kept */
  ng_id c = mk(rt, NG_L1, 11, 10, 10);
  ng_id d = mk(rt, NG_L1, 10, 12, 10);
  mk(rt, NG_L1, 50, 10, 10);
  CHECK_STATUS(ng_grid_neighbors(rt, a, NG_L1, 2, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 3);
  if (h.count == 3) {
    CHECK_EQ_INT(h.items[0].id, b);
    CHECK(h.items[0].distance == 0.0f);
    CHECK_EQ_INT(h.items[1].id, c);
    CHECK(h.items[1].distance == 1.0f);
    CHECK_EQ_INT(h.items[2].id, d);
    CHECK(h.items[2].distance == 2.0f);
  }
  for (size_t i = 0; i < h.count; i++)
    CHECK(h.items[i].id != a);
  CHECK_STATUS(ng_grid_neighbors(rt, a, NG_L1, 0, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 1);
  CHECK_STATUS(ng_grid_neighbors(rt, a, NG_L1, 1000, 2, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 2);
  /* More than the original's hard cap of 100. */
  for (int i = 0; i < 150; i++)
    mk(rt, NG_L1, 10.0f + (float)(i % 10) * 0.01f, 10, 10);
  CHECK_STATUS(ng_grid_neighbors(rt, a, NG_L1, 1, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 152);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

static void test_nearest(void) {
  ng_runtime *rt = new_rt();
  ng_hits h = {0};
  float o[3] = {0, 0, 0};
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, o, 3, NULL, &h), NG_OK); /* empty store */
  CHECK_EQ_INT(h.count, 0);
  ng_id far = mk(rt, NG_L1, 300, 300, 300);
  ng_id t1 = mk(rt, NG_L1, 0, 0, 2);
  ng_id t2 = mk(rt, NG_L1, 0, 2, 0); /* tie with t1 */
  ng_id t3 = mk(rt, NG_L1, 1, 0, 0);
  ng_id t4 = mk(rt, NG_L1, -40, 0, 0);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, o, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 0);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, o, 1, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 1);
  CHECK_EQ_INT(h.items[0].id, t3);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, o, 2, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 2);
  CHECK_EQ_INT(h.items[1].id, t1);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, o, 3, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 3);
  CHECK_EQ_INT(h.items[2].id, t2);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, o, 4, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.items[3].id, t4);
  CHECK(h.items[3].distance == 40.0f);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, o, 50, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 5);
  CHECK_EQ_INT(h.items[4].id, far);
  /* Far outside the representable range: still the right order, finite distances. */
  float away[3] = {1e30f, 0, 0};
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, away, 1, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 1);
  CHECK_EQ_INT(h.items[0].id, far);
  float fmax[3] = {FLT_MAX, FLT_MAX, -FLT_MAX};
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, fmax, 2, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 2);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

static void test_box(void) {
  ng_runtime *rt = new_rt();
  ng_hits h = {0};
  ng_id in1 = mk(rt, NG_L1, 0, 0, 0);    /* on the lo corner */
  ng_id in2 = mk(rt, NG_L1, 10, 10, 10); /* on the hi corner */
  ng_id in3 = mk(rt, NG_L1, 5, 5, 5);    /* the centre */
  ng_id in4 = mk(rt, NG_L1, 10, 0, 5);   /* on faces */
  mk(rt, NG_L1, 10.01f, 5, 5);
  mk(rt, NG_L1, -0.01f, 5, 5);
  mk(rt, NG_L1, 5, 5, 10.01f);
  float lo[3] = {0, 0, 0}, hi[3] = {10, 10, 10};
  CHECK_STATUS(ng_grid_box(rt, NG_L1, lo, hi, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 4);
  if (h.count == 4) {
    CHECK_EQ_INT(h.items[0].id, in3);
    CHECK(h.items[0].distance == 0.0f);
    CHECK_EQ_INT(h.items[1].id, in4); /* sqrt(50) */
    CHECK(h.items[1].distance == (float)sqrt(50.0));
    CHECK_EQ_INT(h.items[2].id, in1); /* sqrt(75), tie: ascending id */
    CHECK_EQ_INT(h.items[3].id, in2);
    CHECK(h.items[2].distance == h.items[3].distance);
  }
  CHECK_STATUS(ng_grid_box(rt, NG_L1, lo, hi, 1, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 1);
  /* A degenerate box (lo == hi) is a point query. */
  CHECK_STATUS(ng_grid_box(rt, NG_L1, hi, hi, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 1);
  if (h.count) CHECK_EQ_INT(h.items[0].id, in2);
  /* Decimal bounds include a point set with the same decimal value (L2, scale 10000). */
  ng_id s2 = mk(rt, NG_L2, 0.1f, 0.2f, -0.3f);
  float lo2[3] = {0.1f, 0.2f, -0.3f}, hi2[3] = {0.1f, 0.2f, -0.3f};
  CHECK_STATUS(ng_grid_box(rt, NG_L2, lo2, hi2, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 1);
  if (h.count) CHECK_EQ_INT(h.items[0].id, s2);
  /* A huge box holds everything; one entirely outside the range holds nothing. */
  float hlo[3] = {-1e30f, -1e30f, -1e30f}, hhi[3] = {1e30f, 1e30f, 1e30f};
  CHECK_STATUS(ng_grid_box(rt, NG_L1, hlo, hhi, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 8);
  float olo[3] = {400, 0, 0}, ohi[3] = {1e30f, 1, 1};
  CHECK_STATUS(ng_grid_box(rt, NG_L1, olo, ohi, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 0);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

/* Equal distances on both sides of a cell boundary: the smaller id must win
 * even when its cell is reached later, and a radius equal to the distance to
 * the cell edge keeps the point on the edge. */
static void test_ties_across_cell_edges(void) {
  ng_runtime *rt = new_rt();
  ng_hits h = {0};
  /* L1 cells are 1000 raw wide; the centre sits on the boundary x = 10. */
  ng_id b = mk_raw(rt, NG_L1, 999, 50, 50);  /* cell 0, on its edge */
  ng_id a = mk_raw(rt, NG_L1, 1001, 50, 50); /* cell 1, same distance, larger id */
  for (int i = 0; i < 60; i++) /* populated cells elsewhere, so the ring search runs */
    mk_raw(rt, NG_L1, (int16_t)(-30000 + i * 1000), 20000, (int16_t)(i * 500));
  float c[3] = {10.0f, 0.5f, 0.5f};
  float d = 10.0f - ng_coord_decode(NG_L1, 999);
  CHECK(d == ng_coord_decode(NG_L1, 1001) - 10.0f);
  CHECK(a > b);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, c, 1, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 1);
  if (h.count) CHECK_EQ_INT(h.items[0].id, b);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, c, 2, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 2);
  if (h.count == 2) {
    CHECK_EQ_INT(h.items[0].id, b);
    CHECK_EQ_INT(h.items[1].id, a);
    CHECK(h.items[0].distance == d && h.items[1].distance == d);
  }
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, d, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 2);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, d, 1, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 1);
  if (h.count) CHECK_EQ_INT(h.items[0].id, b);
  float below = nextafterf(d, 0.0f);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, below, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 0);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

/* Points exactly on cell boundaries (default bucket 10 in L1 = 1000 raw) and
 * at both ends of the raw range. */
static void test_cell_boundaries_and_extremes(void) {
  ng_runtime *rt = new_rt();
  ng_hits h = {0};
  const int16_t raws[] = {-32768, -32767, -1001, -1000, -999,  -1,   0,
                          1,      999,    1000,  1001,  32766, 32767};
  enum { N = sizeof raws / sizeof raws[0] };
  ng_id ids[N];
  for (int s = 0; s < NG_SPACES; s++) {
    ng_token_clear(rt, NULL, NULL);
    for (int i = 0; i < N; i++)
      ids[i] = mk_raw(rt, s, raws[i], raws[i], raws[i]);
    for (int i = 0; i < N; i++) {
      float v[3];
      for (int a = 0; a < 3; a++)
        v[a] = ng_coord_decode(s, raws[i]);
      CHECK_STATUS(ng_grid_range(rt, s, v, 0, 0, NULL, &h), NG_OK);
      CHECK_EQ_INT(h.count, 1);
      if (h.count) CHECK_EQ_INT(h.items[0].id, ids[i]);
      /* One raw unit along x reaches exactly the raw neighbours on that axis only. */
      float step = 1.0f / ng_space_scale(s);
      CHECK_STATUS(ng_grid_box(rt, s, v, v, 0, NULL, &h), NG_OK);
      CHECK_EQ_INT(h.count, 1);
      CHECK_STATUS(ng_grid_nearest(rt, s, v, 1, NULL, &h), NG_OK);
      CHECK_EQ_INT(h.count, 1);
      if (h.count) CHECK_EQ_INT(h.items[0].id, ids[i]);
      CHECK_STATUS(ng_grid_neighbors(rt, ids[i], s, step * 1.8f, 0, NULL, &h), NG_OK);
      size_t want = 0;
      for (int j = 0; j < N; j++)
        if (j != i && abs(raws[j] - raws[i]) == 1) want++;
      CHECK_EQ_INT(h.count, want);
    }
    ng_space_info info;
    CHECK_STATUS(ng_grid_info(rt, s, &info), NG_OK);
    CHECK_EQ_INT(info.count, N);
    for (int a = 0; a < 3; a++) {
      CHECK(info.lo[a] == ng_coord_decode(s, -32768));
      CHECK(info.hi[a] == ng_coord_decode(s, 32767));
    }
  }
  /* Cell counts in L1: raw 999 and 1000 differ in cell, -1 and 0 too. */
  ng_token_clear(rt, NULL, NULL);
  mk_raw(rt, NG_L1, 999, 0, 0);
  mk_raw(rt, NG_L1, 1000, 0, 0);
  mk_raw(rt, NG_L1, -1, 0, 0);
  mk_raw(rt, NG_L1, 0, 0, 0);
  mk_raw(rt, NG_L1, -1000, 0, 0);
  mk_raw(rt, NG_L1, -1001, 0, 0);
  ng_space_info info;
  CHECK_STATUS(ng_grid_info(rt, NG_L1, &info), NG_OK);
  CHECK_EQ_INT(info.cells, 4); /* cells 0, 1, -1 and -2 */
  CHECK(info.cell_size == 10.0f);
  /* L2 (scale 10000, bucket 10): everything falls into at most 2 cells per axis. */
  for (int i = 0; i < 50; i++)
    mk_raw(rt, NG_L2, (int16_t)(i * 1300 - 32768), 5, (int16_t)-i);
  CHECK_STATUS(ng_grid_info(rt, NG_L2, &info), NG_OK);
  CHECK(info.cells <= 8);
  CHECK_EQ_INT(info.count, 56);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

static void test_huge_radius_and_far_centres(void) {
  ng_runtime *rt = new_rt();
  ng_hits h = {0};
  for (int i = 0; i < 200; i++)
    mk_raw(rt, NG_L1, (int16_t)(i * 300 - 30000), (int16_t)(i * 7), (int16_t)(-i * 11));
  float o[3] = {0, 0, 0};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, 1e30f, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 200);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, FLT_MAX, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 200);
  for (size_t i = 1; i < h.count; i++)
    CHECK(h.items[i - 1].distance <= h.items[i].distance);
  ng_id one = 0;
  CHECK_STATUS(ng_token_next(rt, 0, &one), NG_OK);
  CHECK_STATUS(ng_grid_neighbors(rt, one, NG_L1, 1e30f, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 199);
  float fmax[3] = {FLT_MAX, -FLT_MAX, FLT_MAX};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, fmax, 1e30f, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 0);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, fmax, FLT_MAX, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 0); /* distances beyond FLT_MAX */
  float away[3] = {1e6f, 0, 0};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, away, 10, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 0);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, away, 1e6f, 0, NULL, &h), NG_OK);
  CHECK(h.count > 0);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

static void test_many_in_one_cell(void) {
  ng_runtime *rt = new_rt();
  ng_hits h = {0};
  enum { N = 3000 };
  for (int i = 0; i < N; i++)
    mk_raw(rt, NG_L1, (int16_t)(i % 100), (int16_t)(i / 100), 7);
  ng_space_info info;
  CHECK_STATUS(ng_grid_info(rt, NG_L1, &info), NG_OK);
  CHECK_EQ_INT(info.cells, 1);
  CHECK_EQ_INT(info.count, N);
  float c[3] = {0.5f, 0.1f, 0.07f};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 0.1f, 0, NULL, &h), NG_OK);
  /* raw (x, y) with (x - 50)^2 + (y - 10)^2 <= 100, y < 30. */
  size_t want = 0;
  for (int i = 0; i < N; i++) {
    double dx = (double)(float)((float)(i % 100) / 100.0f) - (double)0.5f;
    double dy = (double)(float)((float)(i / 100) / 100.0f) - (double)0.1f;
    if ((float)sqrt(dx * dx + dy * dy) <= 0.1f) want++; /* the reported distance decides */
  }
  CHECK_EQ_INT(h.count, want);
  CHECK(want > 250);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, c, 10, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 10);
  CHECK(h.items[0].distance == 0.0f);
  /* Delete every other token; the cell shrinks and the answers follow. */
  for (ng_id id = 1; id <= N; id += 2)
    CHECK_STATUS(ng_token_delete(rt, id, NULL), NG_OK);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 1e3f, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, N / 2);
  for (size_t i = 0; i < h.count; i++)
    CHECK(h.items[i].id % 2 == 0);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

/* Nearest k at c in space, against the reference; prints the first difference. */
static int nearest_matches(ng_runtime *rt, int space, const float c[3], size_t k, ref_query *q,
                           ng_hits *h) {
  q->kind = REF_NEAREST;
  q->space = space;
  q->exclude = 0;
  for (int a = 0; a < 3; a++)
    q->c[a] = c[a];
  ref_run(rt, q, k);
  ng_status st = ng_grid_nearest(rt, space, c, k, NULL, h);
  if (st == NG_OK && same_hits(h, q)) return 1;
  report_diff("nearest", space, h, q);
  return 0;
}

/* Nearest-k from far outside the points (every point nearly equidistant: the
 * search must stop early, not walk the whole box), with the side table both
 * small and large, and k large enough that the search sweeps the rest of the
 * box after its rings; ties (duplicate positions) included. */
static void test_far_and_swept_nearest(void) {
  ng_runtime *rt = new_rt();
  ng_hits h = {0};
  ref_query q = {0};
  prng p = {77};
  enum { N = 3000 };
  ng_id ids[N];
  for (int i = 0; i < N; i++) {
    int16_t x = (int16_t)prng_below(&p, 1000), y = (int16_t)prng_below(&p, 1000),
            z = (int16_t)prng_below(&p, 1000);
    if (i % 7 == 0) x = y = z = 500;          /* a pile of duplicates */
    if (i % 97 == 0) x = (int16_t)(x + 9000); /* a few far from the pile */
    ids[i] = mk_raw(rt, NG_L1, x, y, z);
  }
  static const size_t ks[] = {1, 10, 37, 500, 2999};
  const float corner = 327.67f, centre[3] = {5.0f, 5.0f, 5.0f};
  int ok = 1;
  for (int round = 0; round < 3 && ok; round++) {
    for (int c8 = 0; c8 < 8 && ok; c8++) {
      float c[3] = {c8 & 1 ? corner : -corner, c8 & 2 ? corner : -corner,
                    c8 & 4 ? corner : -corner};
      for (size_t i = 0; i < sizeof ks / sizeof ks[0] && ok; i++)
        ok = nearest_matches(rt, NG_L1, c, ks[i], &q, &h);
    }
    float between[3] = {50.0f, 5.0f, 5.0f}; /* between the pile and the far few */
    for (size_t i = 0; i < sizeof ks / sizeof ks[0] && ok; i++) {
      ok = nearest_matches(rt, NG_L1, centre, ks[i], &q, &h);
      ok = ok && nearest_matches(rt, NG_L1, between, ks[i], &q, &h);
    }
    /* Then move tokens to other cells: first a few side entries, then more
     * than the queries read all at once. */
    int moves = round == 0 ? 40 : 400;
    for (int j = 0; j < moves; j++) {
      ng_id id = ids[prng_below(&p, N)];
      move_raw(rt, id, NG_L1, (int16_t)prng_below(&p, 1200), (int16_t)prng_below(&p, 1000),
               (int16_t)((int32_t)prng_below(&p, 1400) - 200));
    }
  }
  CHECK(ok);
  free(q.items);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

static void test_info_bounds(void) {
  ng_runtime *rt = new_rt();
  ng_space_info info;
  CHECK_STATUS(ng_grid_info(rt, NG_L3, &info), NG_OK);
  CHECK_EQ_INT(info.count, 0);
  CHECK_EQ_INT(info.cells, 0);
  CHECK(info.cell_size == 10.0f);
  for (int a = 0; a < 3; a++)
    CHECK(info.lo[a] == 0 && info.hi[a] == 0);
  ng_id a = mk(rt, NG_L3, -5, 1, 2);
  ng_id b = mk(rt, NG_L3, 7, -3, 2.5f);
  ng_id c = mk(rt, NG_L3, 1, 1, 1);
  CHECK_STATUS(ng_grid_info(rt, NG_L3, &info), NG_OK);
  CHECK_EQ_INT(info.count, 3);
  CHECK(info.lo[0] == -5 && info.lo[1] == -3 && info.lo[2] == 1);
  CHECK(info.hi[0] == 7 && info.hi[1] == 1 && info.hi[2] == 2.5f);
  /* The boundary points leave: the bounds shrink to the true ones. */
  CHECK_STATUS(ng_token_delete(rt, a, NULL), NG_OK);
  CHECK_STATUS(ng_grid_info(rt, NG_L3, &info), NG_OK);
  CHECK(info.lo[0] == 1 && info.lo[1] == -3 && info.lo[2] == 1);
  CHECK(info.hi[0] == 7 && info.hi[1] == 1 && info.hi[2] == 2.5f);
  move_raw(rt, b, NG_L3, 2000, 2000, 2000);
  CHECK_STATUS(ng_grid_info(rt, NG_L3, &info), NG_OK);
  CHECK(info.lo[0] == 1 && info.lo[1] == 1 && info.lo[2] == 1);
  CHECK(info.hi[0] == 2 && info.hi[1] == 2 && info.hi[2] == 2);
  CHECK_EQ_INT(info.count, 2);
  CHECK_STATUS(ng_token_delete(rt, b, NULL), NG_OK);
  CHECK_STATUS(ng_grid_info(rt, NG_L3, &info), NG_OK);
  CHECK(info.lo[0] == 1 && info.hi[0] == 1);
  CHECK_STATUS(ng_token_delete(rt, c, NULL), NG_OK);
  CHECK_STATUS(ng_grid_info(rt, NG_L3, &info), NG_OK);
  CHECK_EQ_INT(info.count, 0);
  CHECK_EQ_INT(info.cells, 0);
  for (int k = 0; k < 3; k++)
    CHECK(info.lo[k] == 0 && info.hi[k] == 0);
  /* After an empty spell, fresh bounds (not the old ones). */
  mk(rt, NG_L3, 3, 3, 3);
  CHECK_STATUS(ng_grid_info(rt, NG_L3, &info), NG_OK);
  CHECK(info.lo[0] == 3 && info.hi[0] == 3);
  /* Every live token is in every space's index. */
  CHECK_STATUS(ng_grid_info(rt, NG_L8, &info), NG_OK);
  CHECK_EQ_INT(info.count, 1);
  ng_runtime_release(rt);
}

static void test_determinism(void) {
  ng_runtime *r1 = new_rt(), *r2 = new_rt();
  prng p = {0x1234567ull};
  for (int i = 0; i < 500; i++) {
    int16_t x = (int16_t)prng_below(&p, 4000), y = (int16_t)prng_below(&p, 4000);
    mk_raw(r1, NG_L1, x, y, 0);
    mk_raw(r2, NG_L1, x, y, 0);
  }
  ng_hits h1 = {0}, h2 = {0};
  float c[3] = {20, 20, 0};
  CHECK_STATUS(ng_grid_range(r1, NG_L1, c, 15, 0, NULL, &h1), NG_OK);
  CHECK_STATUS(ng_grid_range(r2, NG_L1, c, 15, 0, NULL, &h2), NG_OK);
  CHECK(h1.count > 10 && h1.count == h2.count);
  CHECK(memcmp(h1.items, h2.items, h1.count * sizeof(ng_hit)) == 0);
  CHECK_STATUS(ng_grid_nearest(r1, NG_L1, c, 25, NULL, &h1), NG_OK);
  CHECK_STATUS(ng_grid_nearest(r2, NG_L1, c, 25, NULL, &h2), NG_OK);
  CHECK(h1.count == 25 && h2.count == 25);
  CHECK(memcmp(h1.items, h2.items, h1.count * sizeof(ng_hit)) == 0);
  ng_hits_free(r1, &h1);
  ng_hits_free(r2, &h2);
  ng_runtime_release(r1);
  ng_runtime_release(r2);
}

/* Random raw coordinate: clustered, uniform, on cell boundaries or at the extremes. */
static int16_t rnd_raw(prng *p, int16_t cluster) {
  switch (prng_below(p, 8)) {
  case 0:
    return (int16_t)((int32_t)prng_below(p, 65536) - 32768);
  case 1:
    return prng_below(p, 2) ? 32767 : -32768;
  case 2:
    return (int16_t)(((int32_t)prng_below(p, 60) - 30) * 1000);
  default: {
    int32_t v = cluster + (int32_t)prng_below(p, 2001) - 1000;
    return (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
  }
  }
}

static void rnd_token(prng *p, ng_token *t, const int16_t *clusters) {
  ng_token_init(t);
  for (int s = 0; s < NG_SPACES; s++)
    for (int a = 0; a < 3; a++)
      t->coords[s][a] = rnd_raw(p, clusters[(s + a) % 4]);
}

/* Random flags (a quarter of the tokens inactive), entity and weight, for
 * the filters to choose from. */
static void rnd_fields(prng *p, ng_token *t) {
  t->flags = (uint16_t)prng_below(p, 65536);
  if (prng_below(p, 4)) t->flags |= NG_TOKEN_ACTIVE;
  t->weight = (float)prng_below(p, 401) / 4.0f;
}

/* A predicate for the filters: keeps about two ids in three, and everything
 * nearer than 0.01 (a function of what it is given only). */
static bool accept_some(ng_id id, float distance, void *ud) {
  (void)ud;
  return (id * 2654435761u >> 7) % 3 != 0 || distance < 0.01f;
}

enum { NFILTERS = 12 };

/* Filter number i of the property test: every field alone, then combined;
 * `excl` (24 ids: live ones and a deleted one) for the exclusion fields. */
static ng_filter filter_of(int i, const ng_id *excl) {
  ng_filter f = {0};
  switch (i) {
  case 1:
    f.inactive = true;
    break;
  case 2:
    f.entities = 1u << 1 | 1u << 3 | 1u << 15;
    break;
  case 3:
    f.tags = NG_TOKEN_USER_1;
    break;
  case 4:
    f.without = NG_TOKEN_LOCKED | NG_TOKEN_USER_2;
    break;
  case 5:
    f.weight_range = true, f.min_weight = 20, f.max_weight = 60.25f;
    break;
  case 6:
    f.exclude = excl, f.nexclude = 3;
    break;
  case 7:
    f.exclude = excl, f.nexclude = 24;
    break;
  case 8:
    f.accept = accept_some;
    break;
  case 9:
    f.inactive = true, f.without = NG_TOKEN_ACTIVE;
    break; /* inactive ones only */
  case 10:
    f.entities = 0x00FF, f.tags = NG_TOKEN_USER_3, f.without = NG_TOKEN_DIRTY;
    f.weight_range = true, f.min_weight = 10, f.max_weight = 90;
    f.exclude = excl, f.nexclude = 24, f.accept = accept_some;
    break;
  case 11:
    f.inactive = true, f.entities = 0xF0F0, f.tags = NG_TOKEN_USER_4 | NG_TOKEN_PERSISTENT;
    f.weight_range = true, f.min_weight = 50, f.max_weight = 50;
    break;
  default:
    break;
  }
  return f;
}

/* Compare all query types in all spaces at a few centres, with every filter
 * (a different one for each centre, in turn, besides the defaults). */
static int compare_everything(ng_runtime *rt, prng *p, const ng_id *live, size_t nlive,
                              ref_query *q, ng_hits *h) {
  static int turn;
  ng_id excl[24];
  for (int i = 0; i < 24; i++)
    excl[i] = nlive ? live[prng_below(p, (uint32_t)nlive)] : 0;
  excl[0] = 1; /* deleted early in every seed (or live: either way the rule holds) */
  int ok = 1;
  for (int s = 0; s < NG_SPACES && ok; s++) {
    double sc = ng_space_scale(s);
    const double radii[] = {0, 1 / sc, 150 / sc, 999.5 / sc, 1000 / sc, 7000 / sc, 1e30};
    for (int k = 0; k < 4 && ok; k++) {
      float c[3];
      ng_id id = nlive ? live[prng_below(p, (uint32_t)nlive)] : 0;
      if (k == 0 && id) {
        ng_token t;
        CHECK_STATUS(ng_token_get(rt, id, &t), NG_OK);
        ng_token_get_coords(&t, s, c);
      } else if (k == 3) {
        c[0] = (float)(40000 / sc);
        c[1] = (float)(-33000 / sc);
        c[2] = 0;
      } else {
        for (int a = 0; a < 3; a++)
          c[a] = (float)((double)rnd_raw(p, 0) / sc + 0.3 / sc);
      }
      q->filter = NULL;
      ok = compare_all(rt, s, c, id, radii, sizeof radii / sizeof radii[0], q, h);
      ng_filter f = filter_of(1 + turn++ % (NFILTERS - 1), excl);
      q->filter = &f;
      ok = ok && compare_all(rt, s, c, id, radii, sizeof radii / sizeof radii[0], q, h);
      q->filter = NULL;
    }
    ng_space_info info;
    CHECK_STATUS(ng_grid_info(rt, s, &info), NG_OK);
    CHECK_EQ_INT(info.count, nlive);
    if (nlive) {
      float lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
      for (size_t i = 0; i < nlive; i++) {
        ng_token t;
        float v[3];
        CHECK_STATUS(ng_token_get(rt, live[i], &t), NG_OK);
        ng_token_get_coords(&t, s, v);
        for (int a = 0; a < 3; a++) {
          lo[a] = v[a] < lo[a] ? v[a] : lo[a];
          hi[a] = v[a] > hi[a] ? v[a] : hi[a];
        }
      }
      for (int a = 0; a < 3; a++) {
        if (info.lo[a] != lo[a] || info.hi[a] != hi[a]) ok = 0;
      }
    }
  }
  return ok;
}

static void test_property(void) {
  static const uint64_t seeds[] = {1, 0xDEADBEEFull, 0x9E3779B97F4A7C15ull};
  ref_query q = {0};
  for (size_t si = 0; si < sizeof seeds / sizeof seeds[0]; si++) {
    ng_runtime *rt = new_rt();
    ng_hits h = {0};
    prng p = {seeds[si]};
    int16_t clusters[4];
    for (int i = 0; i < 4; i++)
      clusters[i] = (int16_t)((int32_t)prng_below(&p, 60000) - 30000);
    ng_id *live = malloc(4000 * sizeof *live);
    size_t nlive = 0;
    int ok = 1;
    for (int op = 0; op < 1600 && ok; op++) {
      uint32_t r = prng_below(&p, 10);
      if (r < 5 || nlive == 0) {
        ng_token t;
        rnd_token(&p, &t, clusters);
        rnd_fields(&p, &t);
        ng_id id;
        CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);
        live[nlive++] = id;
      } else if (r < 8) {
        ng_token t;
        rnd_token(&p, &t, clusters);
        rnd_fields(&p, &t);
        uint32_t fields = prng_below(&p, 256) | (prng_below(&p, 2) ? NG_TF_FLAGS : 0) |
                          (prng_below(&p, 2) ? NG_TF_WEIGHT : 0);
        CHECK_STATUS(ng_token_update(rt, live[prng_below(&p, (uint32_t)nlive)], &t, fields), NG_OK);
      } else {
        size_t k = prng_below(&p, (uint32_t)nlive);
        CHECK_STATUS(ng_token_delete(rt, live[k], NULL), NG_OK);
        live[k] = live[--nlive];
      }
      if (op % 400 == 399) ok = compare_everything(rt, &p, live, nlive, &q, &h);
    }
    CHECK(ok);
    /* Re-bucketing: new cell sizes, the same answers. */
    ng_hits before = {0};
    float c[3] = {0.5f, -0.25f, 1.0f};
    const float buckets[][NG_SPACES] = {
        {0.01f, 1e-6f, 0.5f, 0.001f, 3.7f, 1e6f, 0.37f, 0.0125f},
        {1e6f, 0.0003f, 100, 0.25f, 0.0001f, 2.5f, 1e-6f, 1},
    };
    for (size_t b = 0; b < 2 && ok; b++) {
      ng_cdna cd;
      CHECK_STATUS(ng_cdna_get(rt, &cd), NG_OK);
      for (int s = 0; s < NG_SPACES; s++) {
        CHECK_STATUS(ng_grid_nearest(rt, s, c, 30, NULL, &before), NG_OK);
        cd.bucket_sizes[s] = buckets[b][s];
      }
      CHECK_STATUS(ng_cdna_set(rt, &cd), NG_OK);
      for (int s = 0; s < NG_SPACES; s++) {
        ng_space_info info;
        CHECK_STATUS(ng_grid_info(rt, s, &info), NG_OK);
        CHECK(info.cell_size == buckets[b][s]);
        CHECK_EQ_INT(info.count, nlive);
      }
      CHECK_STATUS(ng_grid_nearest(rt, NG_L8, c, 30, NULL, &h), NG_OK);
      CHECK(h.count == before.count &&
            memcmp(h.items, before.items, h.count * sizeof(ng_hit)) == 0);
      ok = compare_everything(rt, &p, live, nlive, &q, &h);
      CHECK(ok);
      /* Keep mutating on the new cells. */
      for (int op = 0; op < 300; op++) {
        ng_token t;
        rnd_token(&p, &t, clusters);
        ng_id id = live[prng_below(&p, (uint32_t)nlive)];
        CHECK_STATUS(ng_token_update(rt, id, &t, NG_TF_COORDS_ALL), NG_OK);
      }
      ok = compare_everything(rt, &p, live, nlive, &q, &h);
      CHECK(ok);
    }
    ng_hits_free(rt, &before);
    ng_hits_free(rt, &h);
    free(live);
    ng_runtime_release(rt);
  }
  free(q.items);
}

/* ---- filters, nearest_to, positions -------------------------------------- */

/* The ACTIVE default in every query type, then nearest-k with a filter: the
 * k nearest that pass, however many nearer ones fail. */
static void test_filter_defaults_and_nearest(void) {
  ng_runtime *rt = new_rt();
  ng_id ids[20];
  for (int i = 0; i < 20; i++)
    ids[i] = mk(rt, NG_L1, (float)i, 0, 0);
  ng_token t;
  ng_token_init(&t);
  t.flags = 0; /* inactive */
  CHECK_STATUS(ng_token_update(rt, ids[1], &t, NG_TF_FLAGS), NG_OK);
  ng_hits h = {0};
  const float c[3] = {0, 0, 0}, lo[3] = {-1, -1, -1}, hi[3] = {2.5f, 1, 1};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 2.5f, 0, NULL, &h), NG_OK);
  CHECK(h.count == 2 && h.items[0].id == ids[0] && h.items[1].id == ids[2]);
  CHECK_STATUS(ng_grid_box(rt, NG_L1, lo, hi, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 2);
  CHECK_STATUS(ng_grid_neighbors(rt, ids[0], NG_L1, 2.5f, 0, NULL, &h), NG_OK);
  CHECK(h.count == 1 && h.items[0].id == ids[2]);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, c, 2, NULL, &h), NG_OK);
  CHECK(h.count == 2 && h.items[1].id == ids[2]);
  /* The inactive token itself still has neighbours. */
  CHECK_STATUS(ng_grid_nearest_to(rt, ids[1], NG_L1, 2, NULL, &h), NG_OK);
  CHECK(h.count == 2 && h.items[0].id == ids[0] && h.items[1].id == ids[2]);
  const ng_filter all = {.inactive = true};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 2.5f, 0, &all, &h), NG_OK);
  CHECK_EQ_INT(h.count, 3);

  /* Tag every fifth token; the 3 nearest tagged ones are 5, 10, 15 away. */
  for (int i = 0; i < 20; i += 5) {
    ng_token_init(&t);
    t.flags = NG_TOKEN_ACTIVE | NG_TOKEN_USER_1;
    CHECK_STATUS(ng_token_update(rt, ids[i], &t, NG_TF_FLAGS), NG_OK);
  }
  const ng_filter tagged = {.tags = NG_TOKEN_USER_1};
  const float c1[3] = {1, 0, 0};
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, c1, 3, &tagged, &h), NG_OK);
  CHECK(h.count == 3 && h.items[0].id == ids[0] && h.items[1].id == ids[5] &&
        h.items[2].id == ids[10]);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, c1, 10, &tagged, &h), NG_OK);
  CHECK_EQ_INT(h.count, 4); /* fewer pass than asked for */
  CHECK_STATUS(ng_grid_nearest_to(rt, ids[5], NG_L1, 2, &tagged, &h), NG_OK);
  CHECK(h.count == 2 && h.items[0].id == ids[0] && h.items[1].id == ids[10]);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

/* The filters after a rolled-back transaction: the ACTIVE default and the
 * flag copies the scan reads come back with the records (a clear rolled back
 * restores records it never overwrote; an update rolled back stores the old
 * record again). */
static void test_filters_after_rollback(void) {
  ng_runtime *rt = new_rt();
  ng_id a = mk(rt, NG_L1, 0, 0, 0), b = mk(rt, NG_L1, 1, 0, 0);
  ng_token t;
  ng_token_init(&t);
  t.flags = NG_TOKEN_USER_2; /* inactive */
  CHECK_STATUS(ng_token_update(rt, b, &t, NG_TF_FLAGS), NG_OK);
  ng_hits h = {0};
  const float c[3] = {0, 0, 0};
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  CHECK_STATUS(ng_token_clear(rt, NULL, NULL), NG_OK);
  CHECK_STATUS(ng_txn_rollback(rt), NG_OK);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 5, 0, NULL, &h), NG_OK);
  CHECK(h.count == 1 && h.items[0].id == a);
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  t.flags = NG_TOKEN_ACTIVE;
  CHECK_STATUS(ng_token_update(rt, b, &t, NG_TF_FLAGS), NG_OK);
  CHECK_STATUS(ng_token_update(rt, a, &t, NG_TF_FLAGS), NG_OK);
  CHECK_STATUS(ng_txn_rollback(rt), NG_OK);
  const ng_filter tagged = {.tags = NG_TOKEN_USER_2, .inactive = true};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 5, 0, &tagged, &h), NG_OK);
  CHECK(h.count == 1 && h.items[0].id == b);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 5, 0, NULL, &h), NG_OK);
  CHECK(h.count == 1 && h.items[0].id == a);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

static void test_filter_errors(void) {
  ng_runtime *rt = new_rt();
  ng_id a = mk(rt, NG_L1, 0, 0, 0);
  ng_hits h = {0};
  const float c[3] = {0, 0, 0};
  ng_filter f = {.weight_range = true, .min_weight = 5, .max_weight = 1};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 1, 0, &f, &h), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "weight range");
  f.min_weight = NAN;
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, c, 1, &f, &h), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "weight range");
  ng_filter g = {.nexclude = 2};
  CHECK_STATUS(ng_grid_box(rt, NG_L1, c, c, 0, &g, &h), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "exclude");
  CHECK_STATUS(ng_grid_neighbors(rt, a, NG_L1, 1, 0, &g, &h), NG_EINVAL);
  CHECK_STATUS(ng_grid_nearest_to(rt, a, NG_L1, 1, &g, &h), NG_EINVAL);
  CHECK_EQ_INT(h.count, 0);
  /* nearest_to: the token must exist and be placed in the space. */
  CHECK_STATUS(ng_grid_nearest_to(rt, a + 1, NG_L1, 1, NULL, &h), NG_ENOTFOUND);
  ng_id nowhere = 0;
  CHECK_STATUS(ng_token_create(rt, NULL, 0, &nowhere), NG_OK);
  CHECK_STATUS(ng_grid_nearest_to(rt, nowhere, NG_L1, 1, NULL, &h), NG_ENOTFOUND);
  CHECK_CONTAINS(ng_last_error(rt), "is not placed in L1");
  CHECK_STATUS(ng_grid_nearest_to(rt, a, NG_L1, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 0);
  CHECK_STATUS(ng_grid_nearest_to(rt, a, NG_L1, 5, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 0); /* only itself is placed in L1 */
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

static void test_positions(void) {
  ng_runtime *rt = new_rt();
  ng_id a = mk(rt, NG_L1, 1.5f, -2.25f, 3), b = 0;
  CHECK_STATUS(ng_token_create(rt, NULL, 1u << NG_L2, &b), NG_OK);
  ng_id ids[4] = {b, a, a + 100, 0};
  double xyz[12];
  size_t found = 99;
  CHECK_STATUS(ng_token_positions(rt, NG_L1, ids, 4, xyz, &found), NG_OK);
  CHECK_EQ_INT(found, 1);
  CHECK(isnan(xyz[0]) && isnan(xyz[1]) && isnan(xyz[2])); /* not placed in L1 */
  CHECK(xyz[3] == 1.5 && xyz[4] == -2.25 && xyz[5] == 3);
  CHECK(isnan(xyz[6]) && isnan(xyz[9]));
  CHECK_STATUS(ng_token_positions(rt, NG_L2, ids, 1, xyz, NULL), NG_OK);
  CHECK(xyz[0] == 0 && xyz[1] == 0 && xyz[2] == 0);
  CHECK_STATUS(ng_token_positions(rt, 8, ids, 1, xyz, &found), NG_EINVAL);
  CHECK_STATUS(ng_token_positions(rt, NG_L1, NULL, 1, xyz, &found), NG_EINVAL);
  CHECK_STATUS(ng_token_positions(rt, NG_L1, ids, 1, NULL, &found), NG_EINVAL);
  CHECK_STATUS(ng_token_positions(rt, NG_L1, NULL, 0, NULL, &found), NG_OK);
  CHECK_EQ_INT(found, 0);
  /* With the hits: filled under the query's lock, grown as needed. */
  for (int i = 0; i < 40; i++)
    mk(rt, NG_L1, (float)i, 0.5f, -1);
  ng_hits h = {.positions = true};
  const float c[3] = {0, 0, 0};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 100, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 41);
  CHECK(h.xyz_capacity >= 3 * h.count);
  for (size_t i = 0; i < h.count; i++) {
    double p[3];
    CHECK_STATUS(ng_token_position(rt, h.items[i].id, NG_L1, p), NG_OK);
    CHECK(h.xyz[3 * i] == p[0] && h.xyz[3 * i + 1] == p[1] && h.xyz[3 * i + 2] == p[2]);
  }
  CHECK_STATUS(ng_grid_nearest_to(rt, a, NG_L1, 1, NULL, &h), NG_OK);
  CHECK(h.count == 1 && h.xyz[0] == 1 && h.xyz[1] == 0.5 && h.xyz[2] == -1);
  ng_hits_free(rt, &h);
  CHECK(h.xyz == NULL && h.items == NULL && !h.positions);
  ng_runtime_release(rt);
}

/* ---- allocation failures -------------------------------------------------- */

static void test_alloc_failures(void) {
  ngt_alloc f = NGT_ALLOC_NEVER;
  ng_config cfg = {0};
  cfg.alloc = ngt_alloc_fn;
  cfg.alloc_ud = &f;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  if (!rt) return;
  ng_hits h = {0};
  float o[3] = {0, 0, 0};
  for (int i = 0; i < 40; i++)
    mk_raw(rt, NG_L1, (int16_t)(i * 10), 0, 0);
  /* A result buffer that cannot grow: ENOMEM, count 0, buffer still freeable. */
  ngt_alloc_arm(&f, 0, 0);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, 1000, 0, NULL, &h), NG_ENOMEM);
  CHECK_EQ_INT(h.count, 0);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, o, 30, NULL, &h), NG_ENOMEM);
  CHECK_EQ_INT(h.count, 0);
  ngt_alloc_arm(&f, -1, 0);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, 0.5f, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 6);
  ngt_alloc_arm(&f, 0, 0);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, 1000, 0, NULL, &h), NG_ENOMEM);
  CHECK_EQ_INT(h.count, 0);
  CHECK(h.items != NULL);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, 0.5f, 0, NULL, &h), NG_OK); /* fits: no allocation */
  CHECK_EQ_INT(h.count, 6);
  ngt_alloc_arm(&f, -1, 0);

  /* Creates and moves that fail part-way leave the index exactly as it was. */
  prng p = {77};
  int failures = 0;
  for (long i = 0; i < 160; i++) {
    long budget = i % 3;
    ng_token t;
    ng_token_init(&t);
    for (int s = 0; s < NG_SPACES; s++)
      for (int a = 0; a < 3; a++)
        t.coords[s][a] = (int16_t)((int32_t)prng_below(&p, 65536) - 32768);
    ng_id id = 0;
    ngt_alloc_arm(&f, budget, 0);
    ng_status st = ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id);
    ngt_alloc_arm(&f, budget, 0);
    ng_status st2 = ng_token_update(rt, 1 + (uint32_t)(i % 40), &t, NG_TF_COORDS_ALL);
    ngt_alloc_arm(&f, -1, 0);
    if (st != NG_OK) CHECK_STATUS(st, NG_ENOMEM);
    if (st2 != NG_OK) CHECK_STATUS(st2, NG_ENOMEM);
    failures += (st != NG_OK) + (st2 != NG_OK);
  }
  CHECK(failures > 0);
  size_t n = ng_token_count(rt);
  ng_id *live = malloc(n * sizeof *live);
  size_t got = 0;
  CHECK_STATUS(ng_token_list(rt, 0, n, live, &got), NG_OK);
  ref_query q = {0};
  const double radii[] = {0, 0.5, 30, 1e30};
  int ok = 1;
  for (int s = 0; s < NG_SPACES && ok; s++) {
    ng_space_info info;
    CHECK_STATUS(ng_grid_info(rt, s, &info), NG_OK);
    CHECK_EQ_INT(info.count, n);
    ok = compare_all(rt, s, o, live[0], radii, 4, &q, &h);
  }
  CHECK(ok);

  /* A re-bucketing that cannot allocate keeps the old cells. (A new index is
   * only a header until its first query builds it, so the very first
   * allocation is the one that fails.) */
  ng_cdna cd;
  CHECK_STATUS(ng_cdna_get(rt, &cd), NG_OK);
  cd.bucket_sizes[NG_L1] = 0.5f;
  ngt_alloc_arm(&f, 0, 0);
  CHECK_STATUS(ng_cdna_set(rt, &cd), NG_ENOMEM);
  ngt_alloc_arm(&f, -1, 0);
  ng_space_info info;
  CHECK_STATUS(ng_grid_info(rt, NG_L1, &info), NG_OK);
  CHECK(info.cell_size == 10.0f);
  CHECK_EQ_INT(info.count, n);
  ok = compare_all(rt, NG_L1, o, live[0], radii, 4, &q, &h);
  CHECK(ok);
  free(q.items);
  free(live);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
  CHECK_EQ_INT(f.live_blocks, 0);
}

/* The internal contract used by the token store and the CDNA: a move and
 * its move back, removal of absent ids, clear, and rebuild with a new cell
 * size. */
static void test_internal_contract(void) {
  ngt_alloc f = NGT_ALLOC_NEVER;
  ng_config cfg = {0};
  cfg.alloc = ngt_alloc_fn;
  cfg.alloc_ud = &f;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  if (!rt) return;
  ng_hits h = {0};
  for (int i = 0; i < 300; i++)
    mk_raw(rt, NG_L1, (int16_t)(i * 37 % 2000 - 1000), (int16_t)(i * 91 % 3000), (int16_t)i);
  ng_space_info info;
  CHECK_STATUS(ng_grid_info(rt, NG_L1, &info), NG_OK);
  size_t cells = info.cells;
  CHECK_EQ_INT(info.count, 300);

  /* A move puts the id where the caller says (the caller writes the table
   * after it), and a move back restores what queries see. (Moves only matter
   * to a built index: a query builds it.) */
  float o3[3] = {0, 0, 0};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o3, 1, 0, NULL, &h), NG_OK);
  ng_token t7;
  CHECK_STATUS(ng_token_get(rt, 7, &t7), NG_OK);
  int16_t at7[3]; /* (the record is packed: copy, not point into it) */
  memcpy(at7, t7.coords[NG_L1], sizeof at7);
  const int16_t far[3] = {32000, 32000, 32000};
  CHECK_STATUS(ngi_write_lock(rt, "test"), NG_OK);
  CHECK_STATUS(ngi_grid_move(rt, rt->grids[NG_L1], 7, at7, far), NG_OK);
  ngi_write_unlock(rt);
  CHECK_STATUS(ng_grid_info(rt, NG_L1, &info), NG_OK);
  CHECK_EQ_INT(info.count, 300);
  CHECK(info.hi[0] == 320.0f);
  CHECK_STATUS(ngi_write_lock(rt, "test"), NG_OK);
  CHECK_STATUS(ngi_grid_move(rt, rt->grids[NG_L1], 7, far, at7), NG_OK);
  ngi_grid_remove(rt, rt->grids[NG_L1], 9999, far); /* never there: ignored */
  const int16_t zero[3] = {0, 0, 0};
  ngi_grid_remove(rt, rt->grids[NG_L1], 9999, zero);
  ngi_write_unlock(rt);
  CHECK_STATUS(ng_grid_info(rt, NG_L1, &info), NG_OK);
  CHECK_EQ_INT(info.count, 300);
  CHECK_EQ_INT(info.cells, cells);
  CHECK(info.hi[0] < 320.0f);

  /* A new bucket size (through the CDNA) gives a new index: same answers; a
   * failed change changes nothing. */
  float c[3] = {1, 10, 1};
  ng_hits before = {0};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 6, 0, NULL, &before), NG_OK);
  CHECK(before.count > 5);
  ng_cdna cd;
  CHECK_STATUS(ng_cdna_get(rt, &cd), NG_OK);
  cd.bucket_sizes[NG_L1] = 0.3f;
  ngt_alloc_arm(
      &f, 0, 0); /* the new index is built at its first query: only its header is allocated here */
  CHECK_STATUS(ng_cdna_set(rt, &cd), NG_ENOMEM);
  ngt_alloc_arm(&f, -1, 0);
  ngi_grid *old = rt->grids[NG_L1];
  cd.bucket_sizes[NG_L1] = 0.0f;
  CHECK_STATUS(ng_cdna_set(rt, &cd), NG_EINVAL);
  CHECK(rt->grids[NG_L1] == old);
  CHECK_STATUS(ng_grid_info(rt, NG_L1, &info), NG_OK);
  CHECK(info.cell_size == 10.0f);
  CHECK_EQ_INT(info.cells, cells);
  cd.bucket_sizes[NG_L1] = 0.3f;
  CHECK_STATUS(ng_cdna_set(rt, &cd), NG_OK);
  CHECK(rt->grids[NG_L1] != old);
  CHECK_STATUS(ng_grid_info(rt, NG_L1, &info), NG_OK);
  CHECK(info.cell_size == 0.3f);
  CHECK_EQ_INT(info.count, 300);
  CHECK(info.cells > cells);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 6, 0, NULL, &h), NG_OK);
  CHECK(h.count == before.count && memcmp(h.items, before.items, h.count * sizeof(ng_hit)) == 0);

  /* Clear keeps the cell size and leaves an empty, usable index. */
  CHECK_STATUS(ngi_write_lock(rt, "test"), NG_OK);
  ngi_grid_clear(rt, rt->grids[NG_L1]);
  ngi_write_unlock(rt);
  CHECK_STATUS(ng_grid_info(rt, NG_L1, &info), NG_OK);
  CHECK_EQ_INT(info.count, 0);
  CHECK_EQ_INT(info.cells, 0);
  CHECK(info.cell_size == 0.3f);
  cd.bucket_sizes[NG_L1] = 10.0f;
  CHECK_STATUS(ng_cdna_set(rt, &cd), NG_OK);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c, 6, 0, NULL, &h), NG_OK);
  CHECK(h.count == before.count && memcmp(h.items, before.items, h.count * sizeof(ng_hit)) == 0);

  ngi_grid *g = NULL;
  CHECK_STATUS(ngi_grid_new(rt, 8, 1.0f, &rt->units[NG_L1], &g), NG_EINVAL);
  CHECK_STATUS(ngi_grid_new(rt, NG_L1, NAN, &rt->units[NG_L1], &g), NG_EINVAL);
  CHECK_STATUS(ngi_grid_new(rt, NG_L1, -1.0f, &rt->units[NG_L1], &g), NG_EINVAL);
  ngt_alloc_arm(&f, 0, 0);
  CHECK_STATUS(ngi_grid_new(rt, NG_L1, 1.0f, &rt->units[NG_L1], &g), NG_ENOMEM);
  ngt_alloc_arm(&f, -1, 0);
  CHECK(g == NULL);
  ngi_grid_destroy(rt, NULL);
  ng_hits_free(rt, &before);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
  CHECK_EQ_INT(f.live_blocks, 0);
}

/* ---- lazy maintenance: build, absorb, side table, rebuilds ----------------- */

/* Compare all queries in `space` at a few centres (one on a live token). */
static int compare_some(ng_runtime *rt, int space, prng *p, const ng_id *live, size_t nlive,
                        ref_query *q, ng_hits *h) {
  double sc = ng_space_scale(space);
  const double radii[] = {0, 40 / sc, 700 / sc, 5000 / sc, 1e30};
  int ok = 1;
  for (int k = 0; k < 3 && ok; k++) {
    float c[3];
    ng_id id = nlive ? live[prng_below(p, (uint32_t)nlive)] : 0;
    if (k == 0 && id) {
      ng_token t;
      CHECK_STATUS(ng_token_get(rt, id, &t), NG_OK);
      ng_token_get_coords(&t, space, c);
    } else {
      for (int a = 0; a < 3; a++)
        c[a] = (float)(((double)prng_below(p, 70000) - 35000.0) / sc);
    }
    ok = compare_all(rt, space, c, id, radii, sizeof radii / sizeof radii[0], q, h);
  }
  ng_space_info info;
  CHECK_STATUS(ng_grid_info(rt, space, &info), NG_OK);
  if (info.count != nlive) ok = 0;
  return ok;
}

/* Clustered points: enough of them (12,000) that the build narrows its cells
 * for the clusters, and still crowded cells (sorted, with sub-directories).
 * Small steps move entries inside those cells, shifting their neighbours and
 * the sub-directory counts; longer ones leave for the side table or jump past
 * a whole cluster along the Z curve (too long a shift: the side table too).
 * Moves come in batches and one by one (some moved back by a failing
 * allocation), all through ngi_grid_move, and every query must still be the
 * brute-force answer. */
static void test_crowded_cell_moves(void) {
  ngt_alloc f = NGT_ALLOC_NEVER;
  ng_config cfg = {0};
  cfg.alloc = ngt_alloc_fn;
  cfg.alloc_ud = &f;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  if (!rt) return;
  enum { N = 12000, M = 600 };
  static ng_id live[N], ids[M];
  static ng_token v[M];
  prng p = {4242};
  const int16_t centre[3][3] = {{-9000, 300, 2000}, {12000, -15000, 40}, {200, 200, 200}};
  for (size_t i = 0; i < N; i++) {
    const int16_t *c = centre[i % 3];
    int spread = i % 3 == 2 ? 4 : 400; /* the third cluster is nearly one point */
    live[i] =
        mk_raw(rt, NG_L1, (int16_t)(c[0] + (int)prng_below(&p, (uint32_t)(2 * spread)) - spread),
               (int16_t)(c[1] + (int)prng_below(&p, (uint32_t)(2 * spread)) - spread),
               (int16_t)(c[2] + (int)prng_below(&p, (uint32_t)(2 * spread)) - spread));
  }
  ng_hits h = {0};
  ref_query q = {0};
  CHECK(compare_some(rt, NG_L1, &p, live, N, &q, &h)); /* builds the index */
  for (int round = 0; round < 6; round++) {
    for (size_t j = 0; j < M; j++) {
      ids[j] = live[prng_below(&p, N)];
      ng_token cur;
      CHECK_STATUS(ng_token_get(rt, ids[j], &cur), NG_OK);
      uint32_t kind = prng_below(&p, 10);
      int step = kind < 7 ? 24 : kind < 9 ? 900 : 6000;
      v[j] = cur;
      for (int a = 0; a < 3; a++) {
        int x = cur.coords[NG_L1][a] + (int)prng_below(&p, (uint32_t)(2 * step + 1)) - step;
        v[j].coords[NG_L1][a] = (int16_t)(x < -32767 ? -32767 : x > 32767 ? 32767 : x);
      }
    }
    if (round % 2 == 0) {
      CHECK_STATUS(ng_token_update_batch(rt, ids, v, M, NG_TF_COORDS(NG_L1)), NG_OK);
    } else {
      for (size_t j = 0; j < M; j++) {
        ngt_alloc_arm(&f, j % 5 == 0 ? 0 : -1, 0); /* some fail and roll back */
        ng_status st = ng_token_update(rt, ids[j], &v[j], NG_TF_COORDS(NG_L1));
        ngt_alloc_arm(&f, -1, 0);
        if (st != NG_OK) CHECK_STATUS(st, NG_ENOMEM);
      }
    }
    CHECK(compare_some(rt, NG_L1, &p, live, N, &q, &h));
    CHECK(ngi_grid_consistent(rt->grids[NG_L1]));
    /* Around the clusters themselves, where the cells are crowded. */
    for (int c = 0; c < 3; c++) {
      float at[3];
      for (int a = 0; a < 3; a++)
        at[a] = (float)ng_coord_decode(NG_L1, centre[c][a]);
      const double radii[] = {0.5, 3, 9};
      CHECK(compare_all(rt, NG_L1, at, 0, radii, 3, &q, &h));
    }
  }
  ng_hits_free(rt, &h);
  free(q.items);
  ng_runtime_release(rt);
  CHECK_EQ_INT(f.live_blocks, 0);
}

/* The fullest sub-cell of any crowded cell of g (built), or 0 if none is crowded. */
static size_t fullest_sub_cell(const ngi_grid *g) {
  const mainix *m = &g->m;
  size_t most = 0;
  for (size_t c = 0; m->sub && c < m->ncell; c++) {
    size_t cnt = m->starts[c + 1] - m->starts[c];
    if (cnt <= NGI_LEAF) continue;
    const uint32_t *sub = ngi_sub_dir(m, c);
    for (uint32_t i = 0; i < (uint32_t)1 << (3 * ngi_sub_depth(m, cnt)); i++)
      most = sub[i + 1] - sub[i] > most ? sub[i + 1] - sub[i] : most;
  }
  return most;
}

/* Crowded cells are walked as grids of their sub-cells (grid_walk.c): a
 * sphere or box visits the sub-cells its bound overlaps, nearest-k grows
 * cubes of sub-cells around the centre (which may lie outside the cell) until
 * its heap is full, and a sub-cell far fuller than its depth expects (a knot
 * of points, one position repeated) is descended instead. Blobs of two
 * densities, a knot and a repeated position inside one, a sparse background;
 * every query kind, with and without filters, centred in the blobs, near
 * them and far away, against the brute-force answer. */
static void test_crowded_sub_cells(void) {
  ng_runtime *rt = new_rt();
  enum { N = 16000 };
  static ng_id live[N];
  prng p = {777};
  const int16_t centre[2][3] = {{-5000, 2000, 300}, {9000, -7000, -12000}};
  for (size_t i = 0; i < N; i++) {
    ng_token t;
    ng_token_init(&t);
    rnd_fields(&p, &t);
    int kind = (int)(i % 8);
    for (int a = 0; a < 3; a++) {
      int v;
      if (kind < 4) /* a bell: the sum of three uniforms */
        v = centre[0][a] + (int)prng_below(&p, 601) + (int)prng_below(&p, 601) +
            (int)prng_below(&p, 601) - 900;
      else if (kind < 6)
        v = centre[1][a] + (int)prng_below(&p, 3001) - 1500;
      else if (kind == 6) /* a knot in the bell, every fourth point on one spot */
        v = centre[0][a] + 100 + (i % 32 == 6 ? 0 : (int)prng_below(&p, 7) - 3);
      else
        v = (int)prng_below(&p, 60001) - 30000;
      t.coords[NG_L1][a] = (int16_t)v;
    }
    CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS(NG_L1), &live[i]), NG_OK);
  }
  ng_hits h = {0};
  ref_query q = {0};
  float origin[3] = {0, 0, 0};
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, origin, 1, NULL, &h), NG_OK); /* builds the index */
  CHECK(fullest_sub_cell(rt->grids[NG_L1]) > 4 * NGI_LEAF);             /* the knot is descended */
  ng_id excl[24];
  for (int i = 0; i < 24; i++)
    excl[i] = live[prng_below(&p, N)];
  double sc = ng_space_scale(NG_L1);
  const double radii[] = {0, 3 / sc, 40 / sc, 250 / sc, 1200 / sc};
  int ok = 1;
  for (int i = 0; i < 48 && ok; i++) {
    float c[3];
    ng_id id = live[prng_below(&p, N)];
    ng_token t;
    CHECK_STATUS(ng_token_get(rt, id, &t), NG_OK);
    ng_token_get_coords(&t, NG_L1, c);
    if (i % 3 == 1) { /* near a blob, often just outside its crowded cells */
      const int16_t *b = centre[i % 2];
      for (int a = 0; a < 3; a++)
        c[a] = (float)(((double)b[a] + (double)prng_below(&p, 8001) - 4000.0) / sc);
    } else if (i % 3 == 2) { /* a little off a point (the knot's included) */
      for (int a = 0; a < 3; a++)
        c[a] += (float)(((double)prng_below(&p, 21) - 10.0) / sc);
    }
    q.filter = NULL;
    ok = compare_all(rt, NG_L1, c, id, radii, sizeof radii / sizeof radii[0], &q, &h);
    ng_filter f = filter_of(1 + i % (NFILTERS - 1), excl);
    q.filter = &f;
    ok = ok && compare_all(rt, NG_L1, c, id, radii, sizeof radii / sizeof radii[0], &q, &h);
  }
  CHECK(ok);
  ng_hits_free(rt, &h);
  free(q.items);
  ng_runtime_release(rt);
}

/* Long runs of each kind of write between queries push the index through
 * every path: the lazy first build, absorbing new tokens, moves into the side
 * table (also far outside the built box, into its edge cells), hidden entries,
 * and the rebuilds when the side part or the hidden part grows too big. */
/* The first pass of a scan in a node of few levels (a sub-cell, a cell of
 * clustered points) computes distances in floats against a widened bound:
 * points at exactly the radius, or tied at the k-th distance, from centres
 * off the raw grid, must be kept as the brute force keeps them. */
static void test_crowded_exact_radius(void) {
  ng_runtime *rt = new_rt();
  enum { N = 6000 };
  static ng_id live[N];
  prng p = {4242};
  for (size_t i = 0; i < N; i++) {
    ng_token t;
    ng_token_init(&t);
    for (int a = 0; a < 3; a++) /* a dense cube of 600 raw units, a few points on each spot */
      t.coords[NG_L1][a] = (int16_t)(1000 + (int)prng_below(&p, 600));
    CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS(NG_L1), &live[i]), NG_OK);
  }
  ng_hits h = {0};
  ref_query q = {0};
  float origin[3] = {0, 0, 0};
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, origin, 1, NULL, &h), NG_OK); /* builds the index */
  CHECK(fullest_sub_cell(rt->grids[NG_L1]) > 0);                       /* crowded cells */
  double sc = ng_space_scale(NG_L1);
  int ok = 1;
  for (int i = 0; i < 40 && ok; i++) {
    float c[3];
    for (int a = 0; a < 3; a++) /* inside the cube, off the raw grid */
      c[a] = (float)((1000.0 + (double)prng_below(&p, 6000) / 10.0 + 0.37) / sc);
    double radii[4];
    for (int r = 0; r < 4; r++) { /* the distances of points, as queries report them */
      ng_token t;
      CHECK_STATUS(ng_token_get(rt, live[prng_below(&p, N)], &t), NG_OK);
      float v[3];
      ng_token_get_coords(&t, NG_L1, v);
      double d2 = 0.0;
      for (int a = 0; a < 3; a++)
        d2 += ((double)v[a] - c[a]) * ((double)v[a] - c[a]);
      radii[r] = (double)(float)sqrt(d2);
    }
    ok = compare_all(rt, NG_L1, c, live[i], radii, 4, &q, &h);
  }
  CHECK(ok);
  ng_hits_free(rt, &h);
  free(q.items);
  ng_runtime_release(rt);
}

static void test_lazy_maintenance(void) {
  ng_runtime *rt = new_rt();
  ng_hits h = {0};
  ref_query q = {0};
  prng p = {0xC0FFEEull};
  enum { MAXN = 12000 };
  ng_id *live = malloc(MAXN * sizeof *live);
  size_t nlive = 0;
  int ok = 1;
  /* Points in a small cube first, so later moves land outside the built box. */
  for (int i = 0; i < 4000; i++) {
    int16_t v[3];
    for (int a = 0; a < 3; a++)
      v[a] = (int16_t)((int32_t)prng_below(&p, 4001) - 2000);
    live[nlive++] = mk_raw(rt, NG_L2, v[0], v[1], v[2]);
  }
  ok = ok && compare_some(rt, NG_L2, &p, live, nlive, &q, &h); /* the first build */
  const int batches[] = {1, 40, 300, 2500, 3000};
  for (size_t b = 0; b < sizeof batches / sizeof batches[0] && ok; b++) {
    /* creates: absorbed by the next query, or a rebuild when there are many */
    for (int i = 0; i < batches[b] && nlive < MAXN; i++) {
      int16_t v[3];
      for (int a = 0; a < 3; a++)
        v[a] = (int16_t)((int32_t)prng_below(&p, 65536) - 32768);
      live[nlive++] = mk_raw(rt, NG_L2, v[0], v[1], v[2]);
    }
    ok = ok && compare_some(rt, NG_L2, &p, live, nlive, &q, &h);
    /* moves: some tokens several times, some to the extremes */
    for (int i = 0; i < batches[b]; i++) {
      ng_id id = live[prng_below(&p, (uint32_t)nlive)];
      int16_t v[3];
      for (int a = 0; a < 3; a++)
        v[a] = prng_below(&p, 5) == 0 ? (prng_below(&p, 2) ? 32767 : -32768)
                                      : (int16_t)((int32_t)prng_below(&p, 65536) - 32768);
      move_raw(rt, id, NG_L2, v[0], v[1], v[2]);
    }
    ok = ok && compare_some(rt, NG_L2, &p, live, nlive, &q, &h);
    /* small steps, mostly inside one cell: moved in place */
    for (int i = 0; i < batches[b]; i++) {
      ng_id id = live[prng_below(&p, (uint32_t)nlive)];
      ng_token t;
      CHECK_STATUS(ng_token_get(rt, id, &t), NG_OK);
      int16_t v[3];
      for (int a = 0; a < 3; a++) {
        int32_t x = t.coords[NG_L2][a] + (int32_t)prng_below(&p, 7) - 3;
        v[a] = (int16_t)(x < -32768 ? -32768 : x > 32767 ? 32767 : x);
      }
      move_raw(rt, id, NG_L2, v[0], v[1], v[2]);
    }
    ok = ok && compare_some(rt, NG_L2, &p, live, nlive, &q, &h);
    /* deletes */
    for (int i = 0; i < batches[b] / 2 && nlive > 1; i++) {
      size_t k = prng_below(&p, (uint32_t)nlive);
      CHECK_STATUS(ng_token_delete(rt, live[k], NULL), NG_OK);
      live[k] = live[--nlive];
    }
    ok = ok && compare_some(rt, NG_L2, &p, live, nlive, &q, &h);
  }
  CHECK(ok);
  /* Everything at one point: a one-cell box; then a second point far away. */
  ng_runtime *one = new_rt();
  ng_id same[300];
  for (int i = 0; i < 300; i++)
    same[i] = mk_raw(one, NG_L5, 123, -77, 5);
  ok = compare_some(one, NG_L5, &p, same, 300, &q, &h);
  move_raw(one, same[7], NG_L5, -32768, 32767, -32768);
  ok = ok && compare_some(one, NG_L5, &p, same, 300, &q, &h);
  CHECK(ok);
  ng_runtime_release(one);
  /* A tight blob in a sparse space: crowded cells are searched as octrees. */
  ng_runtime *blob = new_rt();
  ng_id bl[4000];
  for (int i = 0; i < 4000; i++) {
    int16_t v[3];
    for (int a = 0; a < 3; a++)
      v[a] = i < 3500 ? (int16_t)(5000 + (int32_t)prng_below(&p, 41) - 20)
                      : (int16_t)((int32_t)prng_below(&p, 65536) - 32768);
    bl[i] = mk_raw(blob, NG_L1, v[0], v[1], v[2]);
  }
  for (int k = 0; k < 6 && ok; k++)
    ok = compare_some(blob, NG_L1, &p, bl, 4000, &q, &h);
  /* small moves inside the blob keep the crowded cells sorted (or go aside) */
  for (int i = 0; i < 2000; i++) {
    ng_id id = bl[prng_below(&p, 3500)];
    move_raw(blob, id, NG_L1, (int16_t)(5000 + (int32_t)prng_below(&p, 41) - 20),
             (int16_t)(5000 + (int32_t)prng_below(&p, 41) - 20),
             (int16_t)(5000 + (int32_t)prng_below(&p, 41) - 20));
  }
  for (int k = 0; k < 6 && ok; k++)
    ok = compare_some(blob, NG_L1, &p, bl, 4000, &q, &h);
  CHECK(ok);
  ng_runtime_release(blob);
  free(live);
  free(q.items);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

/* The lazy work inside a query can fail to allocate: the query reports
 * NG_ENOMEM with no hits and the index stays exact for the next one. */
static void test_lazy_alloc_failures(void) {
  ngt_alloc f = NGT_ALLOC_NEVER;
  ng_config cfg = {0};
  cfg.alloc = ngt_alloc_fn;
  cfg.alloc_ud = &f;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  if (!rt) return;
  ng_hits h = {0};
  ref_query q = {0};
  prng p = {99};
  ng_id live[700];
  size_t nlive = 0;
  for (int i = 0; i < 400; i++)
    live[nlive++] = mk_raw(rt, NG_L1, (int16_t)(i * 37), (int16_t)(i * 11 - 2000), (int16_t)i);
  float o[3] = {1, 2, 3};
  ngt_alloc_arm(&f, 0, 0); /* the first build cannot allocate */
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, 50, 0, NULL, &h), NG_ENOMEM);
  CHECK_EQ_INT(h.count, 0);
  ng_space_info info;
  CHECK_STATUS(ng_grid_info(rt, NG_L1, &info), NG_ENOMEM); /* 400 points: a heap cell set */
  ngt_alloc_arm(&f, -1, 0);
  CHECK_STATUS(ng_grid_info(rt, NG_L1, &info), NG_OK); /* from the table: still unbuilt */
  CHECK_EQ_INT(info.count, 400);
  ngt_alloc_arm(&f, 0, 0);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, 50, 0, NULL, &h), NG_ENOMEM);
  ngt_alloc_arm(&f, -1, 0);
  CHECK(compare_some(rt, NG_L1, &p, live, nlive, &q, &h));
  /* New tokens: absorbing them needs the side table, which cannot grow. */
  for (int i = 0; i < 20; i++)
    live[nlive++] = mk_raw(rt, NG_L1, (int16_t)(-i * 90), 5, 5);
  ngt_alloc_arm(&f, 0, 0);
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, o, 5, NULL, &h), NG_ENOMEM);
  CHECK_EQ_INT(h.count, 0);
  ngt_alloc_arm(&f, -1, 0);
  CHECK(compare_some(rt, NG_L1, &p, live, nlive, &q, &h));
  /* A move whose side entry cannot be stored fails and changes nothing. */
  int failures = 0;
  for (int i = 0; i < 200; i++) {
    ngt_alloc_arm(&f, i % 2, 0);
    ng_token t;
    CHECK_STATUS(ng_token_get(rt, live[i], &t), NG_OK);
    t.coords[NG_L1][0] = (int16_t)(t.coords[NG_L1][0] - 20000); /* leaves its cell */
    ng_status st = ng_token_update(rt, live[i], &t, NG_TF_COORDS(NG_L1));
    ngt_alloc_arm(&f, -1, 0);
    if (st != NG_OK) {
      CHECK_STATUS(st, NG_ENOMEM);
      failures++;
    }
  }
  CHECK(failures > 0);
  /* Many side entries and no memory to group them by cell: queries read them
   * all instead, and still answer exactly. */
  ng_hits all = {0};
  ngt_alloc_arm(&f, 0, 0);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, 1e30f, 0, NULL, &h), NG_OK);
  ngt_alloc_arm(&f, -1, 0);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, o, 1e30f, 0, NULL, &all), NG_OK);
  CHECK(h.count == all.count && memcmp(h.items, all.items, h.count * sizeof(ng_hit)) == 0);
  ng_hits_free(rt, &all);
  CHECK(compare_some(rt, NG_L1, &p, live, nlive, &q, &h));
  /* An update that moves a token a little in L1 (in place) and far in L2,
   * where the side table cannot grow: the L1 move is undone. */
  CHECK(compare_some(rt, NG_L2, &p, live, nlive, &q, &h)); /* builds L2, side empty */
  for (int i = 0; i < 40; i++) {
    ng_token t;
    CHECK_STATUS(ng_token_get(rt, live[i], &t), NG_OK);
    t.coords[NG_L1][0] = (int16_t)(t.coords[NG_L1][0] + 1);
    t.coords[NG_L2][0] = (int16_t)(t.coords[NG_L2][0] > 0 ? -30000 : 30000);
    ngt_alloc_arm(&f, 0, 0);
    CHECK_STATUS(ng_token_update(rt, live[i], &t, NG_TF_COORDS(NG_L1) | NG_TF_COORDS(NG_L2)),
                 NG_ENOMEM);
    ngt_alloc_arm(&f, -1, 0);
  }
  CHECK(compare_some(rt, NG_L1, &p, live, nlive, &q, &h));
  CHECK(compare_some(rt, NG_L2, &p, live, nlive, &q, &h));
  free(q.items);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
  CHECK_EQ_INT(f.live_blocks, 0);
}

/* Several threads query spaces that have not been built yet, all at once:
 * exactly one builds each index, every thread gets the same answers (run
 * under ThreadSanitizer in CI). */
typedef struct lazy_worker {
  ng_runtime *rt;
  ng_hit first[NG_SPACES][8];
  size_t count[NG_SPACES];
  int status;
} lazy_worker;

static void *lazy_query(void *ud) {
  lazy_worker *w = ud;
  ng_hits h = {0};
  const float c[3] = {0.01f, 0.02f, -0.01f};
  for (int s = 0; s < NG_SPACES; s++) {
    ng_status st = ng_grid_nearest(w->rt, s, c, 8, NULL, &h);
    if (st != NG_OK) w->status = (int)st;
    w->count[s] = h.count;
    memcpy(w->first[s], h.items, h.count * sizeof(ng_hit));
  }
  ng_hits_free(w->rt, &h);
  return NULL;
}

static void test_concurrent_lazy_build(void) {
  ng_runtime *rt = new_rt();
  prng p = {4242};
  for (int i = 0; i < 5000; i++) {
    ng_token t;
    ng_token_init(&t);
    for (int s = 0; s < NG_SPACES; s++)
      for (int a = 0; a < 3; a++)
        t.coords[s][a] = (int16_t)((int32_t)prng_below(&p, 65536) - 32768);
    ng_id id;
    CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);
  }
  enum { T = 4 };
  lazy_worker w[T];
  pthread_t th[T];
  memset(w, 0, sizeof w);
  for (int i = 0; i < T; i++) {
    w[i].rt = rt;
    CHECK(pthread_create(&th[i], NULL, lazy_query, &w[i]) == 0);
  }
  for (int i = 0; i < T; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < T; i++) {
    CHECK_EQ_INT(w[i].status, 0);
    for (int s = 0; s < NG_SPACES; s++) {
      CHECK_EQ_INT(w[i].count[s], 8);
      CHECK(memcmp(w[i].first[s], w[0].first[s], sizeof w[0].first[s]) == 0);
    }
  }
  ng_runtime_release(rt);
}

int main(void) {
  RUN(test_errors);
  RUN(test_range_sorted_ties_limit);
  RUN(test_result_order_all_sizes);
  RUN(test_exact_radius);
  RUN(test_neighbors);
  RUN(test_nearest);
  RUN(test_box);
  RUN(test_ties_across_cell_edges);
  RUN(test_cell_boundaries_and_extremes);
  RUN(test_huge_radius_and_far_centres);
  RUN(test_many_in_one_cell);
  RUN(test_far_and_swept_nearest);
  RUN(test_info_bounds);
  RUN(test_determinism);
  RUN(test_property);
  RUN(test_filter_defaults_and_nearest);
  RUN(test_filter_errors);
  RUN(test_filters_after_rollback);
  RUN(test_positions);
  RUN(test_alloc_failures);
  RUN(test_internal_contract);
  RUN(test_lazy_maintenance);
  RUN(test_lazy_alloc_failures);
  RUN(test_crowded_cell_moves);
  RUN(test_crowded_sub_cells);
  RUN(test_crowded_exact_radius);
  RUN(test_concurrent_lazy_build);
  return ngt_done("test_grid");
}

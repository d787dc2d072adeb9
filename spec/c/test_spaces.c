/* Spaces: the codec's exact steps (every raw value of every space), dimension scales (units,
 * ranges, re-encoding all or nothing), placement (queries see only placed tokens, through every
 * path the grid has), C refusing out-of-range coordinates, snapshots keeping both. */
#include "internal.h"
#include "test.h"

#include <math.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/ng_spaces_XXXXXX";

static ng_runtime *new_rt_scaled(float l1, float l8) {
  ng_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.scales[NG_L1] = l1;
  cfg.scales[NG_L8] = l8;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  return rt;
}

/* The original's encoder: the product in single precision, truncated, saturated. */
static int32_t original_encode(float v, float scale) {
  float x = v * scale;
  if (x > 32767.0f) return 32767;
  if (x < -32768.0f) return -32768;
  return (int32_t)x;
}

/* Every raw value of every space reads back as itself through the raw codec (float) and the
 * runtime's (double), at scale 1 and at other scales; a whole number of steps written as the
 * caller writes it (k / scale, a double, or its float) encodes as k. */
static void test_every_raw_value_round_trips(void) {
  static const float scales[] = {1.0f, 10.0f, 100.0f, 0.5f, 2.5f, 0.1f, 1000.0f};
  for (size_t k = 0; k < sizeof scales / sizeof scales[0]; k++) {
    ng_config cfg;
    memset(&cfg, 0, sizeof cfg);
    for (int s = 0; s < NG_SPACES; s++)
      cfg.scales[s] = scales[k];
    ng_runtime *rt = NULL;
    CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
    if (!rt) return;
    static int16_t raw[65536 * 3], back[65536 * 3];
    static double xyz[65536 * 3];
    for (int32_t r = -32768; r <= 32767; r++)
      for (int a = 0; a < 3; a++)
        raw[3 * (r + 32768) + a] = (int16_t)r;
    for (int s = 0; s < NG_SPACES; s++) {
      CHECK_STATUS(ng_coords_decode(rt, s, raw, 65536, xyz), NG_OK);
      CHECK_STATUS(ng_coords_encode(rt, s, xyz, 65536, back), NG_OK);
      size_t bad = 0;
      for (size_t i = 0; i < 65536 * 3; i++)
        if (back[i] != raw[i]) bad++;
      CHECK_EQ_INT(bad, 0);
      /* the decimal a caller writes: k * scale / fixed-point scale, one rounding */
      double base = ng_space_scale(s);
      for (int32_t r = -32767; r <= 32767; r += 7) {
        double v = (double)r * (double)scales[k] / base;
        double one[3] = {v, -v, 0};
        int16_t got[3];
        CHECK_STATUS(ng_coords_encode(rt, s, one, 1, got), NG_OK);
        if (got[0] != r || got[1] != -r) {
          CHECK_EQ_INT(got[0], r);
          break;
        }
      }
    }
    ng_runtime_release(rt);
  }
  /* the raw codec: every raw value of every space, and the float a C caller writes */
  for (int s = 0; s < NG_SPACES; s++) {
    size_t bad = 0;
    for (int32_t r = -32768; r <= 32767; r++) {
      if (ng_coord_encode(s, ng_coord_decode(s, (int16_t)r)) != r) bad++;
      if (ng_coord_encode(s, (float)r / ng_space_scale(s)) != r) bad++;
    }
    CHECK_EQ_INT(bad, 0);
  }
}

/* The values whose byte image differs from the original encoder's: exactly the whole steps it
 * stored one step low (docs/format.md names the counts), and nothing else. */
static void test_images_that_differ_from_the_original(void) {
  size_t l1 = 0;
  for (int32_t r = -32768; r <= 32767; r++) {
    float v = (float)r / 100.0f;
    int32_t mine = ng_coord_encode(NG_L1, v), orig = original_encode(v, 100.0f);
    CHECK(mine == r);
    if (mine != orig) {
      l1++;
      CHECK_EQ_INT(orig, r > 0 ? r - 1 : r + 1); /* one step toward zero, never more */
    }
  }
  CHECK_EQ_INT(l1, 4582);
  CHECK_EQ_INT(ng_coord_encode(NG_L1, 0.53f), 53);
  CHECK_EQ_INT(original_encode(0.53f, 100.0f), 52);
  /* values off the steps still truncate toward zero, as the original */
  CHECK_EQ_INT(ng_coord_encode(NG_L1, 0.539f), 53);
  CHECK_EQ_INT(ng_coord_encode(NG_L1, -0.539f), -53);
  CHECK_EQ_INT(ng_coord_encode(NG_L1, 1.999f), 199);
  /* the raw codec keeps the original's clamping */
  CHECK_EQ_INT(ng_coord_encode(NG_L1, 400.0f), 32767);
  CHECK_EQ_INT(ng_coord_encode(NG_L1, -400.0f), -32768);
  size_t radius = 0;
  ng_token t;
  ng_token_init(&t);
  for (unsigned k = 0; k <= 255; k++) {
    float v = (float)k / 100.0f;
    ng_token_set_field_radius(&t, v);
    CHECK_EQ_INT(t.field_radius, k);
    if ((uint32_t)original_encode(v, 100.0f) != k) radius++;
    ng_token_set_field_strength(&t, (float)k / 255.0f);
    CHECK_EQ_INT(t.field_strength, k);
    CHECK_EQ_INT(ng_u8_encode((double)k / 255.0, 255), k);
  }
  CHECK_EQ_INT(radius, 14);
  ng_token_set_field_radius(&t, 1.05f);
  CHECK_EQ_INT(t.field_radius, 105);
}

/* A scale multiplies the unit: L1 at 100 holds +-32.7 km in 1 m steps; positions, queries,
 * distances and bounds are in those units; C refuses what does not fit, naming the value. */
static void test_scaled_units(void) {
  ng_runtime *rt = new_rt_scaled(100.0f, 0.0f);
  if (!rt) return;
  ng_id a = 0, b = 0, c = 0;
  CHECK_STATUS(ng_token_create(rt, NULL, 0, &a), NG_OK);
  CHECK_STATUS(ng_token_create(rt, NULL, 0, &b), NG_OK);
  CHECK_STATUS(ng_token_create(rt, NULL, 0, &c), NG_OK);
  const double pa[3] = {30000, -30000, 5}, pb[3] = {29990, -30000, 5}, pc[3] = {-32768, 32767, 0};
  CHECK_STATUS(ng_token_place(rt, a, NG_L1, pa), NG_OK);
  CHECK_STATUS(ng_token_place(rt, b, NG_L1, pb), NG_OK);
  CHECK_STATUS(ng_token_place(rt, c, NG_L1, pc), NG_OK);
  double got[3];
  CHECK_STATUS(ng_token_position(rt, a, NG_L1, got), NG_OK);
  CHECK(got[0] == 30000 && got[1] == -30000 && got[2] == 5);
  ng_token rec;
  CHECK_STATUS(ng_token_get(rt, a, &rec), NG_OK);
  CHECK_EQ_INT(rec.coords[NG_L1][0], 30000); /* raw = v / (100 / 100) */
  ng_hits h = {0};
  const float center[3] = {30000, -30000, 5};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, center, 15.0f, 0, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 2);
  if (h.count == 2) {
    CHECK(h.items[0].id == a && h.items[0].distance == 0.0f);
    CHECK(h.items[1].id == b && h.items[1].distance == 10.0f);
  }
  CHECK_STATUS(ng_grid_nearest(rt, NG_L1, center, 3, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 3);
  ng_space_info info;
  CHECK_STATUS(ng_grid_info(rt, NG_L1, &info), NG_OK);
  CHECK(info.step == 1.0 && info.min == -32768.0 && info.max == 32767.0);
  CHECK(fabsf(info.lo[0] + 32768.0f) < 0.01f && fabsf(info.hi[1] - 32767.0f) < 0.01f);
  CHECK_EQ_INT(info.count, 3);
  /* out of range: refused, naming the space and the value; nothing changes */
  const double far[3] = {1, 40000, 2};
  CHECK_STATUS(ng_token_place(rt, a, NG_L1, far), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "ng_token_place: y of L1 must be within -32768..32767, got 40000");
  CHECK_STATUS(ng_token_position(rt, a, NG_L1, got), NG_OK);
  CHECK(got[1] == -30000);
  int16_t raw[6];
  const double two[6] = {1, 2, 3, 4, NAN, 6};
  CHECK_STATUS(ng_coords_encode(rt, NG_L1, two, 2, raw), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "point 2: y of L1 must be a finite number");
  /* a create at positions: encoded in the scaled units, refused when one does not fit */
  ng_place at[2] = {{NG_L1, {-30000, 12, 0}}, {NG_L8, {0.5, 0, 0}}};
  ng_id d = 0;
  CHECK_STATUS(ng_token_create_at(rt, NULL, at, 2, &d), NG_OK);
  CHECK_STATUS(ng_token_position(rt, d, NG_L1, got), NG_OK);
  CHECK(got[0] == -30000 && got[1] == 12);
  unsigned sp = 0;
  CHECK_STATUS(ng_token_spaces(rt, d, &sp), NG_OK);
  CHECK_EQ_INT(sp, (1u << NG_L1) | (1u << NG_L8));
  ng_stats before, after;
  CHECK_STATUS(ng_runtime_stats(rt, &before), NG_OK);
  at[1].xyz[2] = 4.0; /* L8 at scale 1: +-3.2767 */
  CHECK_STATUS(ng_token_create_at(rt, NULL, at, 2, &d), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "ng_token_create_at: z of L8 must be within -3.2768..3.2767, got 4");
  at[1].space = NG_L1;
  CHECK_STATUS(ng_token_create_at(rt, NULL, at, 2, &d), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "L1 is placed twice (places[1])");
  CHECK_STATUS(ng_runtime_stats(rt, &after), NG_OK);
  CHECK(after.tokens == before.tokens && after.next_token_id == before.next_token_id);
  /* an unscaled space keeps the original's units */
  const double small[3] = {0.53, 327.67, -327.68};
  CHECK_STATUS(ng_token_place(rt, a, NG_L2 - 1 + 1, small), NG_EINVAL); /* L2: +-3.2767 */
  CHECK_STATUS(ng_token_place(rt, a, NG_L7, small), NG_OK);
  CHECK_STATUS(ng_token_position(rt, a, NG_L7, got), NG_OK);
  CHECK(got[0] == 0.53 && got[1] == 327.67 && got[2] == -327.68);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

/* rt's records and placement, for "nothing changed". */
static uint64_t store_hash(ng_runtime *rt) {
  uint64_t hsh = 1469598103934665603ull;
  ng_id id = 0;
  while (ng_token_next(rt, id, &id) == NG_OK) {
    ng_token t;
    unsigned sp = 0;
    ng_token_get(rt, id, &t);
    ng_token_spaces(rt, id, &sp);
    const unsigned char *p = (const unsigned char *)&t;
    for (size_t i = 0; i < sizeof t; i++)
      hsh = (hsh ^ p[i]) * 1099511628211ull;
    hsh = (hsh ^ sp ^ id) * 1099511628211ull;
  }
  return hsh;
}

/* Changing a scale re-encodes every placed coordinate of that space, all or nothing. */
static void test_rescale_all_or_nothing(void) {
  ng_runtime *rt = new_rt_scaled(0.0f, 0.0f);
  if (!rt) return;
  ng_id ids[50];
  for (int i = 0; i < 50; i++) {
    CHECK_STATUS(ng_token_create(rt, NULL, 0, &ids[i]), NG_OK);
    const double p[3] = {i * 2.5, -i * 1.25, 100.0 + i};
    CHECK_STATUS(ng_token_place(rt, ids[i], NG_L1, p), NG_OK);
  }
  const double big[3] = {0, 300, 0};
  CHECK_STATUS(ng_token_place(rt, ids[17], NG_L1, big), NG_OK);
  ng_hits h = {0};
  const float c0[3] = {0, 0, 100};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c0, 1.0f, 0, NULL, &h), NG_OK); /* builds the index */
  uint64_t before = store_hash(rt);
  ng_cdna cd;
  CHECK_STATUS(ng_cdna_get(rt, &cd), NG_OK);
  cd.dimension_scales[NG_L1] = 0.5f; /* +-163.8: token 18's 300 does not fit */
  CHECK_STATUS(ng_cdna_set(rt, &cd), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "token 18 does not fit the new scale of L1: y 300 must be within");
  CHECK(store_hash(rt) == before);
  ng_cdna now;
  CHECK_STATUS(ng_cdna_get(rt, &now), NG_OK);
  CHECK(now.dimension_scales[NG_L1] == 1.0f);
  /* a scale that fits: positions kept to the new step (whole steps exact, the rest truncated) */
  cd.dimension_scales[NG_L1] = 10.0f;
  CHECK_STATUS(ng_cdna_set(rt, &cd), NG_OK);
  double got[3];
  CHECK_STATUS(ng_token_position(rt, ids[3], NG_L1, got), NG_OK);
  CHECK(got[0] == 7.5 && got[1] == -3.7 && got[2] == 103);
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c0, 1.0f, 0, NULL, &h), NG_OK);
  CHECK(h.count == 1 && h.items[0].id == ids[0]);
  const float c3[3] = {7.5f, -3.7f, 103};
  CHECK_STATUS(ng_grid_range(rt, NG_L1, c3, 0.01f, 0, NULL, &h), NG_OK);
  CHECK(h.count == 1 && h.items[0].id == ids[3]);
  /* a space nobody is placed in rescales freely */
  cd.dimension_scales[NG_L5] = 1000.0f;
  CHECK_STATUS(ng_cdna_set(rt, &cd), NG_OK);
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

/* Brute force: the ids placed in `space` within radius r of c (decoded floats, as the grid). */
static size_t brute(ng_runtime *rt, int space, const float c[3], float r, ng_id *out) {
  size_t n = 0;
  ng_id id = 0;
  while (ng_token_next(rt, id, &id) == NG_OK) {
    double p[3];
    if (ng_token_position(rt, id, space, p) != NG_OK) continue;
    double dx = (float)p[0] - c[0], dy = (float)p[1] - c[1], dz = (float)p[2] - c[2];
    if ((float)sqrt(dx * dx + dy * dy + dz * dz) <= r) out[n++] = id;
  }
  return n;
}

static int cmp_id(const void *a, const void *b) {
  ng_id x = *(const ng_id *)a, y = *(const ng_id *)b;
  return x < y ? -1 : x > y;
}

/* Placement through every path the index has: tokens placed, moved, unplaced and re-placed
 * before and after the index is built, absorbed later, deleted; batches that place; queries
 * always equal brute force over the placed tokens. */
static void test_placement_matches_brute_force(void) {
  ng_runtime *rt = new_rt_scaled(0.0f, 0.0f);
  if (!rt) return;
  uint64_t seed = 0x5eed5eedull;
  enum { N = 3000 };
  static ng_id live[N], want[N];
  size_t nlive = 0;
  ng_hits h = {0};
  for (int round = 0; round < 40; round++) {
    for (int k = 0; k < 150; k++) {
      uint32_t op = ngt_rnd(&seed) % 10;
      if (op < 3 || nlive < 20) { /* create, placed in a random subset of L1/L2 */
        ng_token t;
        ng_token_init(&t);
        unsigned mask = ngt_rnd(&seed) % 4;
        for (int s = 0; s < 2; s++)
          for (int a = 0; a < 3; a++)
            t.coords[s][a] = (int16_t)(ngt_rnd(&seed) % 2001 - 1000);
        ng_id id = 0;
        CHECK_STATUS(ng_token_create(rt, &t, mask, &id), NG_OK);
        unsigned sp = 99;
        CHECK_STATUS(ng_token_spaces(rt, id, &sp), NG_OK);
        CHECK_EQ_INT(sp, mask);
        if (nlive < N) live[nlive++] = id;
      } else if (op < 6) { /* place or move */
        ng_id id = live[ngt_rnd(&seed) % nlive];
        int s = (int)(ngt_rnd(&seed) % 2);
        double unit = s ? 0.01 : 1.0; /* L2 holds +-3.2767, L1 +-327.67 */
        const double p[3] = {((int)(ngt_rnd(&seed) % 2001) / 100.0 - 10) * unit,
                             ((int)(ngt_rnd(&seed) % 2001) / 100.0 - 10) * unit, 0.25 * unit};
        CHECK_STATUS(ng_token_place(rt, id, s, p), NG_OK);
      } else if (op < 8) { /* unplace */
        ng_id id = live[ngt_rnd(&seed) % nlive];
        CHECK_STATUS(ng_token_unplace(rt, id, (int)(ngt_rnd(&seed) % 2)), NG_OK);
      } else if (op < 9) { /* delete */
        size_t i = ngt_rnd(&seed) % nlive;
        CHECK_STATUS(ng_token_delete(rt, live[i], NULL), NG_OK);
        live[i] = live[--nlive];
      } else { /* a batch that moves some placed tokens and places unplaced ones in L2 */
        ng_id ids[16];
        ng_token vals[16];
        for (int i = 0; i < 16; i++) {
          ids[i] = live[ngt_rnd(&seed) % nlive];
          ng_token_init(&vals[i]);
          for (int a = 0; a < 3; a++)
            vals[i].coords[NG_L2][a] = (int16_t)(ngt_rnd(&seed) % 2001 - 1000);
        }
        CHECK_STATUS(ng_token_update_batch(rt, ids, vals, 16, NG_TF_COORDS(NG_L2)), NG_OK);
        for (int i = 0; i < 16; i++) {
          unsigned sp = 0;
          CHECK_STATUS(ng_token_spaces(rt, ids[i], &sp), NG_OK);
          CHECK(sp & 2u);
        }
      }
    }
    for (int s = 0; s < 2; s++) {
      float unit = s ? 0.01f : 1.0f;
      const float c[3] = {((float)(ngt_rnd(&seed) % 21) - 10.0f) * unit,
                          ((float)(ngt_rnd(&seed) % 21) - 10.0f) * unit, 0};
      float r = 4.0f * unit;
      CHECK_STATUS(ng_grid_range(rt, s, c, r, 0, NULL, &h), NG_OK);
      size_t n = brute(rt, s, c, r, want);
      static ng_id got[N];
      for (size_t i = 0; i < h.count; i++)
        got[i] = h.items[i].id;
      qsort(got, h.count, sizeof *got, cmp_id);
      CHECK_EQ_INT(h.count, n);
      if (h.count == n) CHECK(memcmp(got, want, n * sizeof *got) == 0);
      ng_stats st;
      CHECK_STATUS(ng_runtime_stats(rt, &st), NG_OK);
      ng_space_info info;
      CHECK_STATUS(ng_grid_info(rt, s, &info), NG_OK);
      CHECK_EQ_INT(info.count, st.placed[s]);
    }
    ngi_read_lock(rt);
    CHECK(ngi_grid_consistent(rt->grids[0]) && ngi_grid_consistent(rt->grids[1]));
    ngi_read_unlock(rt);
  }
  /* a space nobody is placed in costs nothing and answers nothing */
  const float o[3] = {0, 0, 0};
  CHECK_STATUS(ng_grid_nearest(rt, NG_L5, o, 10, NULL, &h), NG_OK);
  CHECK_EQ_INT(h.count, 0);
  /* neighbours of a token not placed in the space: not found, saying why */
  ng_id lone = 0;
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS(NG_L2), &lone), NG_OK);
  CHECK_STATUS(ng_grid_neighbors(rt, lone, NG_L1, 1.0f, 0, NULL, &h), NG_ENOTFOUND);
  CHECK_CONTAINS(ng_last_error(rt), "is not placed in L1");
  double p[3];
  CHECK_STATUS(ng_token_position(rt, lone, NG_L1, p), NG_ENOTFOUND);
  CHECK_CONTAINS(ng_last_error(rt), "is not placed in L1");
  ng_hits_free(rt, &h);
  ng_runtime_release(rt);
}

/* Placement through ng_token_update: coordinates place, NG_TF_UNPLACE takes out (the raw
 * coordinates become 0), both for one space is refused; the create mask is checked. */
static void test_update_places_and_unplaces(void) {
  ng_runtime *rt = new_rt_scaled(0.0f, 0.0f);
  if (!rt) return;
  ng_token t;
  ng_token_init(&t);
  ng_token_set_coords(&t, NG_L3, 1, 2, 3);
  ng_token_set_coords(&t, NG_L4, 0.1f, 0.2f, 0.3f);
  ng_id id = 0;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS(NG_L3), &id), NG_OK);
  ng_token got;
  CHECK_STATUS(ng_token_get(rt, id, &got), NG_OK);
  CHECK(got.coords[NG_L3][2] == 3000 && got.coords[NG_L4][0] == 0); /* not placed: stored as 0 */
  CHECK_STATUS(ng_token_create(rt, &t, 0x100u, NULL), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "spaces must be a mask of bits 0..7");
  CHECK_STATUS(ng_token_update(rt, id, &t, NG_TF_COORDS(NG_L4) | NG_TF_UNPLACE(NG_L3)), NG_OK);
  unsigned sp = 0;
  CHECK_STATUS(ng_token_spaces(rt, id, &sp), NG_OK);
  CHECK_EQ_INT(sp, 1u << NG_L4);
  CHECK_STATUS(ng_token_get(rt, id, &got), NG_OK);
  CHECK(got.coords[NG_L3][2] == 0 && got.coords[NG_L4][0] == 1000);
  CHECK_STATUS(ng_token_update(rt, id, &t, NG_TF_COORDS(NG_L4) | NG_TF_UNPLACE(NG_L4)), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "both write and unplace L4");
  CHECK_STATUS(ng_token_unplace(rt, id, NG_L6), NG_OK); /* not placed there: nothing to do */
  CHECK_STATUS(ng_token_unplace(rt, id, 8), NG_EINVAL);
  ng_stats st;
  CHECK_STATUS(ng_runtime_stats(rt, &st), NG_OK);
  CHECK(st.placed[NG_L4] == 1 && st.placed[NG_L3] == 0);
  CHECK_STATUS(ng_token_delete(rt, id, NULL), NG_OK);
  CHECK_STATUS(ng_runtime_stats(rt, &st), NG_OK);
  CHECK_EQ_INT(st.placed[NG_L4], 0);
  ng_runtime_release(rt);
}

/* Placement and scales survive a save and a load; ids, records and answers the same. */
static void test_snapshot_keeps_placement_and_scales(void) {
  ng_runtime *rt = new_rt_scaled(100.0f, 0.5f);
  if (!rt) return;
  for (int i = 0; i < 300; i++) {
    ng_id id = 0;
    CHECK_STATUS(ng_token_create(rt, NULL, 0, &id), NG_OK);
    const double p[3] = {i * 100.0 - 15000, i, -i};
    if (i % 3) CHECK_STATUS(ng_token_place(rt, id, NG_L1, p), NG_OK);
    const double q[3] = {i * 0.005, 0, 0};
    if (i % 2) CHECK_STATUS(ng_token_place(rt, id, NG_L8, q), NG_OK);
  }
  char path[256];
  snprintf(path, sizeof path, "%s/w.ngs", tmpdir);
  CHECK_STATUS(ng_snapshot_save(rt, path), NG_OK);
  ng_runtime *back = NULL;
  CHECK_STATUS(ng_snapshot_load(path, NULL, &back), NG_OK);
  unlink(path);
  if (!back) {
    ng_runtime_release(rt);
    return;
  }
  CHECK(store_hash(rt) == store_hash(back));
  ng_hits a = {0}, b = {0};
  const float c[3] = {0, 0, 0};
  for (int s = 0; s < NG_SPACES; s++) {
    CHECK_STATUS(ng_grid_nearest(rt, s, c, 50, NULL, &a), NG_OK);
    CHECK_STATUS(ng_grid_nearest(back, s, c, 50, NULL, &b), NG_OK);
    CHECK(a.count == b.count && memcmp(a.items, b.items, a.count * sizeof *a.items) == 0);
  }
  ng_cdna cd;
  CHECK_STATUS(ng_cdna_get(back, &cd), NG_OK);
  CHECK(cd.dimension_scales[NG_L1] == 100.0f && cd.dimension_scales[NG_L8] == 0.5f);
  ng_stats st;
  CHECK_STATUS(ng_runtime_stats(back, &st), NG_OK);
  CHECK(st.placed[NG_L1] == 200 && st.placed[NG_L8] == 150 && st.placed[NG_L2] == 0);
  ng_hits_free(rt, &a);
  ng_hits_free(back, &b);
  ng_runtime_release(back);
  ng_runtime_release(rt);
}

int main(void) {
  if (!mkdtemp(tmpdir)) return EXIT_FAILURE;
  RUN(test_every_raw_value_round_trips);
  RUN(test_images_that_differ_from_the_original);
  RUN(test_scaled_units);
  RUN(test_rescale_all_or_nothing);
  RUN(test_placement_matches_brute_force);
  RUN(test_update_places_and_unplaces);
  RUN(test_snapshot_keeps_placement_and_scales);
  rmdir(tmpdir);
  return ngt_done("test_spaces");
}

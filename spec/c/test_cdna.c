/* Unit tests of the CDNA pure functions (cdna.c): layout, presets, checksum vectors, validation. */
#include "internal.h"
#include "test.h"

#include <math.h>
#include <stddef.h>

static void test_cdna_layout(void) {
  CHECK_EQ_INT(sizeof(ng_cdna), 384);
  CHECK_EQ_INT(offsetof(ng_cdna, magic), 0);
  CHECK_EQ_INT(offsetof(ng_cdna, version_major), 4);
  CHECK_EQ_INT(offsetof(ng_cdna, version_minor), 6);
  CHECK_EQ_INT(offsetof(ng_cdna, created_at), 8);
  CHECK_EQ_INT(offsetof(ng_cdna, modified_at), 16);
  CHECK_EQ_INT(offsetof(ng_cdna, profile_id), 24);
  CHECK_EQ_INT(offsetof(ng_cdna, profile_state), 28);
  CHECK_EQ_INT(offsetof(ng_cdna, flags), 32);
  CHECK_EQ_INT(offsetof(ng_cdna, reserved1), 36);
  CHECK_EQ_INT(offsetof(ng_cdna, checksum), 40);
  CHECK_EQ_INT(offsetof(ng_cdna, reserved2), 48);
  CHECK_EQ_INT(offsetof(ng_cdna, dimension_ids), 64);
  CHECK_EQ_INT(offsetof(ng_cdna, dimension_flags), 72);
  CHECK_EQ_INT(offsetof(ng_cdna, dimension_scales), 80);
  CHECK_EQ_INT(offsetof(ng_cdna, bucket_sizes), 112);
  CHECK_EQ_INT(offsetof(ng_cdna, field_strength_limits), 144);
  CHECK_EQ_INT(offsetof(ng_cdna, reserved3), 176);
  CHECK_EQ_INT(offsetof(ng_cdna, allowed_connection_types), 192);
  CHECK_EQ_INT(offsetof(ng_cdna, max_out_degree), 200);
  CHECK_EQ_INT(offsetof(ng_cdna, max_in_degree), 204);
  CHECK_EQ_INT(offsetof(ng_cdna, max_total_degree), 208);
  CHECK_EQ_INT(offsetof(ng_cdna, min_weight_threshold), 212);
  CHECK_EQ_INT(offsetof(ng_cdna, max_weight_threshold), 216);
  CHECK_EQ_INT(offsetof(ng_cdna, reserved4), 220);
  CHECK_EQ_INT(offsetof(ng_cdna, min_token_weight), 256);
  CHECK_EQ_INT(offsetof(ng_cdna, max_token_weight), 260);
  CHECK_EQ_INT(offsetof(ng_cdna, min_field_radius), 264);
  CHECK_EQ_INT(offsetof(ng_cdna, max_field_radius), 266);
  CHECK_EQ_INT(offsetof(ng_cdna, min_field_strength), 268);
  CHECK_EQ_INT(offsetof(ng_cdna, max_field_strength), 270);
  CHECK_EQ_INT(offsetof(ng_cdna, reserved5), 272);
  CHECK_EQ_INT(offsetof(ng_cdna, min_connection_weight), 288);
  CHECK_EQ_INT(offsetof(ng_cdna, max_connection_weight), 292);
  CHECK_EQ_INT(offsetof(ng_cdna, min_rigidity), 296);
  CHECK_EQ_INT(offsetof(ng_cdna, max_rigidity), 300);
  CHECK_EQ_INT(offsetof(ng_cdna, default_pull_strength), 304);
  CHECK_EQ_INT(offsetof(ng_cdna, decay_rate), 308);
  CHECK_EQ_INT(offsetof(ng_cdna, reserved6), 312);
  CHECK_EQ_INT(offsetof(ng_cdna, mutation_rate), 352);
  CHECK_EQ_INT(offsetof(ng_cdna, crossover_rate), 356);
  CHECK_EQ_INT(offsetof(ng_cdna, selection_pressure), 360);
  CHECK_EQ_INT(offsetof(ng_cdna, evolution_flags), 364);
  CHECK_EQ_INT(offsetof(ng_cdna, trace_sample_rate), 368);
  CHECK_EQ_INT(offsetof(ng_cdna, reserved7), 372);
  CHECK_EQ_INT(sizeof(((ng_cdna *)0)->reserved7), 12);
}

static void test_profile_names(void) {
  static const struct {
    uint32_t id;
    const char *name;
  } p[] = {{0, "Default"}, {1, "Explorer"}, {2, "Analyst"}, {3, "Creative"}, {255, "Custom"}};
  for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
    CHECK_STR(ng_profile_name(p[i].id), p[i].name);
    CHECK_EQ_INT(ng_profile_from_name(p[i].name), p[i].id);
  }
  const uint32_t bad_ids[] = {4, 5, 254, 256, UINT32_MAX};
  for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++)
    CHECK(ng_profile_name(bad_ids[i]) == NULL);
  CHECK_EQ_INT(ng_profile_from_name("default"), -1);
  CHECK_EQ_INT(ng_profile_from_name(""), -1);
  CHECK_EQ_INT(ng_profile_from_name("Strict"), -1);
  CHECK_EQ_INT(ng_profile_from_name(NULL), -1);
}

/* Every field of CDNA::new() except the profile-dependent ones checked by the callers. */
static void check_common_defaults(const ng_cdna *c, uint64_t now) {
  CHECK_EQ_INT(c->magic, 0x434E4441u);
  CHECK_EQ_INT(c->version_major, 2);
  CHECK_EQ_INT(c->version_minor, 1);
  CHECK_EQ_INT(c->created_at, now);
  CHECK_EQ_INT(c->modified_at, now);
  CHECK_EQ_INT(c->profile_state, 0x5);
  CHECK_EQ_INT(c->reserved1, 0);
  for (int s = 0; s < NG_SPACES; s++) {
    CHECK_EQ_INT(c->dimension_ids[s], s);
    CHECK_EQ_INT(c->dimension_flags[s], 0xFF);
    CHECK(c->dimension_scales[s] == 1.0f);
    CHECK(c->bucket_sizes[s] == 10.0f);
    CHECK(c->field_strength_limits[s] == 1.0f);
  }
  CHECK(c->allowed_connection_types == UINT64_MAX);
  CHECK_EQ_INT(c->max_in_degree, 1000);
  CHECK(c->min_weight_threshold == 0.0f);
  CHECK(c->max_weight_threshold == 1.0f);
  CHECK(c->min_token_weight == 0.0f);
  CHECK(c->max_token_weight == 1.0f);
  CHECK_EQ_INT(c->min_field_radius, 0);
  CHECK_EQ_INT(c->max_field_radius, 255);
  CHECK_EQ_INT(c->min_field_strength, 0);
  CHECK_EQ_INT(c->max_field_strength, 255);
  CHECK(c->min_connection_weight == 0.0f);
  CHECK(c->max_connection_weight == 1.0f);
  CHECK(c->min_rigidity == 0.0f);
  CHECK(c->max_rigidity == 1.0f);
  CHECK(c->default_pull_strength == 0.5f);
  CHECK(c->decay_rate == 0.01f);
  CHECK(c->selection_pressure == 0.5f);
  CHECK_EQ_INT(c->evolution_flags, 0);
  CHECK(c->trace_sample_rate == 0.01f);
  /* Every reserved byte is 0. */
  int dirty = 0;
  for (size_t i = 0; i < sizeof c->reserved2; i++)
    dirty += c->reserved2[i] != 0;
  for (size_t i = 0; i < sizeof c->reserved3; i++)
    dirty += c->reserved3[i] != 0;
  for (size_t i = 0; i < sizeof c->reserved4; i++)
    dirty += c->reserved4[i] != 0;
  for (size_t i = 0; i < sizeof c->reserved5; i++)
    dirty += c->reserved5[i] != 0;
  for (size_t i = 0; i < sizeof c->reserved6; i++)
    dirty += c->reserved6[i] != 0;
  for (size_t i = 0; i < sizeof c->reserved7; i++)
    dirty += c->reserved7[i] != 0;
  CHECK_EQ_INT(dirty, 0);
  CHECK(c->checksum == ng_cdna_checksum(c));
}

static void test_default_profile(void) {
  ng_cdna c;
  memset(&c, 0xEE, sizeof c);
  CHECK_STATUS(ng_cdna_init(&c, NG_PROFILE_DEFAULT, 1700000000u), NG_OK);
  check_common_defaults(&c, 1700000000u);
  CHECK_EQ_INT(c.profile_id, 0);
  CHECK_EQ_INT(c.flags, 0x3);
  CHECK_EQ_INT(c.max_out_degree, 1000);
  CHECK_EQ_INT(c.max_total_degree, 2000);
  CHECK(c.mutation_rate == 0.01f);
  CHECK(c.crossover_rate == 0.1f);
}

static void test_explorer_profile(void) {
  ng_cdna c;
  CHECK_STATUS(ng_cdna_init(&c, NG_PROFILE_EXPLORER, 42), NG_OK);
  check_common_defaults(&c, 42);
  CHECK_EQ_INT(c.profile_id, 1);
  CHECK_EQ_INT(c.flags, 0x3);
  CHECK_EQ_INT(c.max_out_degree, 2000);
  CHECK_EQ_INT(c.max_total_degree, 4000);
  CHECK(c.mutation_rate == 0.05f);
  CHECK(c.crossover_rate == 0.1f);
}

static void test_analyst_profile(void) {
  ng_cdna c;
  CHECK_STATUS(ng_cdna_init(&c, NG_PROFILE_ANALYST, 42), NG_OK);
  check_common_defaults(&c, 42);
  CHECK_EQ_INT(c.profile_id, 2);
  CHECK_EQ_INT(c.flags, 0xB);
  CHECK_EQ_INT(c.max_out_degree, 500);
  CHECK_EQ_INT(c.max_total_degree, 1000);
  CHECK(c.mutation_rate == 0.01f);
  CHECK(c.crossover_rate == 0.1f);
}

static void test_creative_profile(void) {
  ng_cdna c;
  CHECK_STATUS(ng_cdna_init(&c, NG_PROFILE_CREATIVE, 42), NG_OK);
  check_common_defaults(&c, 42);
  CHECK_EQ_INT(c.profile_id, 3);
  CHECK_EQ_INT(c.flags, 0x7);
  CHECK_EQ_INT(c.max_out_degree, 1000);
  CHECK_EQ_INT(c.max_total_degree, 2000);
  CHECK(c.mutation_rate == 0.1f);
  CHECK(c.crossover_rate == 0.2f);
}

static void test_custom_profile(void) {
  ng_cdna c, d;
  CHECK_STATUS(ng_cdna_init(&c, NG_PROFILE_CUSTOM, 42), NG_OK);
  check_common_defaults(&c, 42);
  CHECK_EQ_INT(c.profile_id, 255);
  CHECK_EQ_INT(c.flags, 0x3);
  /* Custom is Default with another profile id. */
  CHECK_STATUS(ng_cdna_init(&d, NG_PROFILE_DEFAULT, 42), NG_OK);
  d.profile_id = 255;
  d.checksum = ng_cdna_checksum(&d);
  CHECK(memcmp(&c, &d, sizeof c) == 0);
}

/* ng_cdna_set_profile changes only what the profile defines (issue 12 item 12): scales, bucket
 * sizes, limits and flags the caller set survive; the preset's own fields are applied. */
static void expect_block(ng_runtime *rt, ng_cdna want) {
  ng_cdna got;
  CHECK_STATUS(ng_cdna_get(rt, &got), NG_OK);
  CHECK_STATUS(ng_cdna_validate(&got, NULL, 0), NG_OK);
  want.modified_at = got.modified_at;
  want.checksum = got.checksum;
  CHECK(memcmp(&got, &want, sizeof got) == 0);
}

static void test_set_profile_keeps_other_fields(void) {
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(NULL, &rt), NG_OK);
  ng_cdna c;
  CHECK_STATUS(ng_cdna_get(rt, &c), NG_OK);
  const float scales[NG_SPACES] = {1.0f, 1.5f, 2.0f, 2.5f, 3.0f, 3.5f, 4.0f, 4.5f};
  memcpy(c.dimension_scales, scales, sizeof scales);
  c.bucket_sizes[2] = 5.0f;
  c.max_in_degree = 700;
  c.crossover_rate = 0.3f;
  c.flags |= 0x80;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);
  CHECK_STATUS(ng_cdna_get(rt, &c), NG_OK);

  CHECK_STATUS(ng_cdna_set_profile(rt, NG_PROFILE_EXPLORER), NG_OK);
  c.profile_id = NG_PROFILE_EXPLORER;
  c.max_out_degree = 2000;
  c.max_total_degree = 4000;
  c.mutation_rate = 0.05f;
  expect_block(rt, c);

  CHECK_STATUS(ng_cdna_set_profile(rt, NG_PROFILE_ANALYST), NG_OK);
  c.profile_id = NG_PROFILE_ANALYST;
  c.max_out_degree = 500;
  c.max_total_degree = 1000;
  c.flags |= NG_CDNA_STRICT_MODE; /* mutation_rate: Analyst does not define it, 0.05 stays */
  expect_block(rt, c);

  CHECK_STATUS(ng_cdna_set_profile(rt, NG_PROFILE_CREATIVE), NG_OK);
  c.profile_id = NG_PROFILE_CREATIVE;
  c.mutation_rate = 0.1f;
  c.crossover_rate = 0.2f;
  c.flags |= NG_CDNA_ENABLE_MUTATION;
  expect_block(rt, c);

  CHECK_STATUS(ng_cdna_set_profile(rt, NG_PROFILE_DEFAULT), NG_OK); /* only the id */
  c.profile_id = NG_PROFILE_DEFAULT;
  expect_block(rt, c);
  CHECK_STATUS(ng_cdna_set_profile(rt, NG_PROFILE_CUSTOM), NG_OK);
  c.profile_id = NG_PROFILE_CUSTOM;
  expect_block(rt, c);

  CHECK_STATUS(ng_cdna_set_profile(rt, 7), NG_EINVAL); /* unknown: nothing changes */
  CHECK_CONTAINS(ng_last_error(rt), "unknown profile 7");
  expect_block(rt, c);

  /* The way back to every default: ng_cdna_init + ng_cdna_set (Lua: rt.cdna:reset()). */
  ng_cdna d;
  CHECK_STATUS(ng_cdna_init(&d, NG_PROFILE_DEFAULT, 0), NG_OK);
  CHECK_STATUS(ng_cdna_set(rt, &d), NG_OK);
  d.created_at = c.created_at;
  expect_block(rt, d);
  ng_runtime_release(rt);
}

static void test_init_rejects_unknown_profiles(void) {
  ng_cdna c, before;
  memset(&c, 0x5A, sizeof c);
  before = c;
  const uint32_t bad[] = {4, 100, 254, 256, UINT32_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_STATUS(ng_cdna_init(&c, bad[i], 0), NG_EINVAL);
  CHECK(memcmp(&c, &before, sizeof c) == 0);
  CHECK_STATUS(ng_cdna_init(NULL, NG_PROFILE_DEFAULT, 0), NG_EINVAL);
}

static void test_checksum_vectors(void) {
  static const struct {
    uint32_t profile;
    uint64_t sum;
  } v[] = {{NG_PROFILE_DEFAULT, 0x07783c0ebc11a325u},
           {NG_PROFILE_EXPLORER, 0xcc08117c92160f4eu},
           {NG_PROFILE_ANALYST, 0xf0d60b81325cdb39u},
           {NG_PROFILE_CREATIVE, 0x2b040539a7284ce1u}};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    ng_cdna c;
    CHECK_STATUS(ng_cdna_init(&c, v[i].profile, 0), NG_OK);
    if (c.checksum != v[i].sum)
      fprintf(stderr, "profile %u: checksum 0x%016llx\n", (unsigned)v[i].profile,
              (unsigned long long)c.checksum);
    CHECK(c.checksum == v[i].sum);
    CHECK(ng_cdna_checksum(&c) == v[i].sum);
  }
  CHECK(ng_cdna_checksum(NULL) == 0);
}

static void test_checksum_coverage(void) {
  ng_cdna c;
  CHECK_STATUS(ng_cdna_init(&c, NG_PROFILE_DEFAULT, 0), NG_OK);
  uint64_t base = ng_cdna_checksum(&c);
  /* Bytes 40..47 (the checksum itself) are skipped... */
  c.checksum = 0x0123456789abcdefu;
  CHECK(ng_cdna_checksum(&c) == base);
  /* ...but every other byte counts, reserved ones included. */
  unsigned char bytes[sizeof c];
  int uncovered = 0;
  for (size_t i = 0; i < sizeof c; i++) {
    if (i >= 40 && i < 48) continue;
    memcpy(bytes, &c, sizeof c);
    bytes[i] ^= 0x01;
    ng_cdna d;
    memcpy(&d, bytes, sizeof d);
    uncovered += ng_cdna_checksum(&d) == base;
  }
  CHECK_EQ_INT(uncovered, 0);
}

static void test_valid_blocks(void) {
  const uint32_t profiles[] = {0, 1, 2, 3, 255};
  char why[128];
  for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++) {
    ng_cdna c;
    CHECK_STATUS(ng_cdna_init(&c, profiles[i], 1000), NG_OK);
    strcpy(why, "stale");
    CHECK_STATUS(ng_cdna_validate(&c, why, sizeof why), NG_OK);
    CHECK_STR(why, "");
  }
  /* modified_at after created_at, a new minor version, zero limits: all fine. */
  ng_cdna c;
  CHECK_STATUS(ng_cdna_init(&c, NG_PROFILE_DEFAULT, 1000), NG_OK);
  c.modified_at = 2000;
  c.version_minor = 9;
  c.min_token_weight = c.max_token_weight = 0.5f;
  c.field_strength_limits[3] = 0.0f;
  c.min_rigidity = c.max_rigidity = 1.0f;
  c.decay_rate = 0.0f;
  c.mutation_rate = 1.0f;
  c.default_pull_strength = -10.0f;
  c.checksum = ng_cdna_checksum(&c);
  CHECK_STATUS(ng_cdna_validate(&c, NULL, 0), NG_OK);
}

/* Start from a valid Default block, change it, re-checksum, and expect `want`
 * with a reason naming `field`. */
#define EXPECT_INVALID(want, field, change)                                                        \
  do {                                                                                             \
    ng_cdna c_;                                                                                    \
    char why_[160];                                                                                \
    CHECK_STATUS(ng_cdna_init(&c_, NG_PROFILE_DEFAULT, 1000), NG_OK);                              \
    {                                                                                              \
      ng_cdna *c = &c_;                                                                            \
      change;                                                                                      \
    }                                                                                              \
    if ((want) != NG_ECORRUPT || strcmp(field, "checksum") != 0)                                   \
      c_.checksum = ng_cdna_checksum(&c_);                                                         \
    CHECK_STATUS(ng_cdna_validate(&c_, why_, sizeof why_), want);                                  \
    CHECK_CONTAINS(why_, field);                                                                   \
  } while (0)

static void test_validate_header_failures(void) {
  EXPECT_INVALID(NG_ECORRUPT, "magic", c->magic = 0x41444E43u);
  EXPECT_INVALID(NG_ECORRUPT, "version_major", c->version_major = 1);
  EXPECT_INVALID(NG_ECORRUPT, "version_major", c->version_major = 3);
  EXPECT_INVALID(NG_ECORRUPT, "checksum", c->checksum ^= 1u);
  EXPECT_INVALID(NG_ECORRUPT, "checksum", c->checksum = ng_cdna_checksum(c); c->flags = 0xFF);
  EXPECT_INVALID(NG_EINVAL, "modified_at", c->modified_at = 999);
  EXPECT_INVALID(NG_EINVAL, "profile_id", c->profile_id = 4);
  EXPECT_INVALID(NG_EINVAL, "profile_id", c->profile_id = 254);
}

static void test_validate_per_space_failures(void) {
  EXPECT_INVALID(NG_EINVAL, "dimension_scales[0]", c->dimension_scales[0] = 0.0f);
  EXPECT_INVALID(NG_EINVAL, "dimension_scales[1]", c->dimension_scales[1] = -1.0f);
  EXPECT_INVALID(NG_EINVAL, "dimension_scales[7]", c->dimension_scales[7] = NAN);
  EXPECT_INVALID(NG_EINVAL, "dimension_scales[4]", c->dimension_scales[4] = INFINITY);
  EXPECT_INVALID(NG_EINVAL, "dimension_scales[3] (scale of L4) must be within", c->dimension_scales[3] = 1e-7f);
  EXPECT_INVALID(NG_EINVAL, "dimension_scales[5] (scale of L6) must be within", c->dimension_scales[5] = 2e6f);
  EXPECT_INVALID(NG_EINVAL, "bucket_sizes[0]", c->bucket_sizes[0] = 0.0f);
  EXPECT_INVALID(NG_EINVAL, "bucket_sizes[3]", c->bucket_sizes[3] = -10.0f);
  EXPECT_INVALID(NG_EINVAL, "bucket_sizes[6]", c->bucket_sizes[6] = NAN);
  EXPECT_INVALID(NG_EINVAL, "bucket_sizes[2]", c->bucket_sizes[2] = INFINITY);
  EXPECT_INVALID(NG_EINVAL, "field_strength_limits[5]", c->field_strength_limits[5] = -0.5f);
  EXPECT_INVALID(NG_EINVAL, "field_strength_limits[0]", c->field_strength_limits[0] = NAN);
  EXPECT_INVALID(NG_EINVAL, "field_strength_limits[1]", c->field_strength_limits[1] = INFINITY);
}

static void test_validate_degree_failures(void) {
  EXPECT_INVALID(NG_EINVAL, "max_out_degree", c->max_out_degree = 0);
  EXPECT_INVALID(NG_EINVAL, "max_in_degree", c->max_in_degree = 0);
  EXPECT_INVALID(NG_EINVAL, "max_total_degree", c->max_total_degree = 0);
}

static void test_validate_weight_failures(void) {
  EXPECT_INVALID(NG_EINVAL, "min_weight_threshold", c->min_weight_threshold = NAN);
  EXPECT_INVALID(NG_EINVAL, "max_weight_threshold", c->max_weight_threshold = INFINITY);
  EXPECT_INVALID(NG_EINVAL, "min_weight_threshold", c->min_weight_threshold = 2.0f);
  EXPECT_INVALID(NG_EINVAL, "min_token_weight", c->min_token_weight = NAN);
  EXPECT_INVALID(NG_EINVAL, "max_token_weight", c->max_token_weight = -INFINITY);
  EXPECT_INVALID(NG_EINVAL, "min_token_weight", c->min_token_weight = 2.0f);
  EXPECT_INVALID(NG_EINVAL, "min_connection_weight", c->min_connection_weight = NAN);
  EXPECT_INVALID(NG_EINVAL, "max_connection_weight", c->max_connection_weight = NAN);
  EXPECT_INVALID(NG_EINVAL, "min_connection_weight", c->max_connection_weight = -1.0f);
  EXPECT_INVALID(NG_EINVAL, "default_pull_strength", c->default_pull_strength = NAN);
  EXPECT_INVALID(NG_EINVAL, "default_pull_strength", c->default_pull_strength = INFINITY);
}

static void test_validate_field_failures(void) {
  EXPECT_INVALID(NG_EINVAL, "max_field_radius", c->max_field_radius = 256);
  EXPECT_INVALID(NG_EINVAL, "min_field_radius", c->min_field_radius = 200;
                 c->max_field_radius = 100);
  EXPECT_INVALID(NG_EINVAL, "min_field_radius", c->min_field_radius = 300);
  EXPECT_INVALID(NG_EINVAL, "max_field_strength", c->max_field_strength = 0xFFFF);
  EXPECT_INVALID(NG_EINVAL, "min_field_strength", c->min_field_strength = 10;
                 c->max_field_strength = 9);
  EXPECT_INVALID(NG_EINVAL, "min_field_strength", c->min_field_strength = 256);
}

static void test_validate_rate_failures(void) {
  EXPECT_INVALID(NG_EINVAL, "min_rigidity", c->min_rigidity = -0.1f);
  EXPECT_INVALID(NG_EINVAL, "min_rigidity", c->min_rigidity = NAN);
  EXPECT_INVALID(NG_EINVAL, "max_rigidity", c->max_rigidity = 1.5f);
  EXPECT_INVALID(NG_EINVAL, "min_rigidity", c->min_rigidity = 0.8f; c->max_rigidity = 0.2f);
  EXPECT_INVALID(NG_EINVAL, "decay_rate", c->decay_rate = 2.0f);
  EXPECT_INVALID(NG_EINVAL, "decay_rate", c->decay_rate = -0.01f);
  EXPECT_INVALID(NG_EINVAL, "mutation_rate", c->mutation_rate = 1.5f);
  EXPECT_INVALID(NG_EINVAL, "mutation_rate", c->mutation_rate = -0.5f);
  EXPECT_INVALID(NG_EINVAL, "mutation_rate", c->mutation_rate = NAN);
  EXPECT_INVALID(NG_EINVAL, "crossover_rate", c->crossover_rate = 1.01f);
  EXPECT_INVALID(NG_EINVAL, "crossover_rate", c->crossover_rate = INFINITY);
  EXPECT_INVALID(NG_EINVAL, "selection_pressure", c->selection_pressure = -1.0f);
  EXPECT_INVALID(NG_EINVAL, "trace_sample_rate", c->trace_sample_rate = 3.0f);
  EXPECT_INVALID(NG_EINVAL, "trace_sample_rate", c->trace_sample_rate = NAN);
}

static void test_validate_message_text(void) {
  ng_cdna c;
  char why[128];
  CHECK_STATUS(ng_cdna_init(&c, NG_PROFILE_DEFAULT, 0), NG_OK);
  c.min_token_weight = 2.0f;
  c.checksum = ng_cdna_checksum(&c);
  CHECK_STATUS(ng_cdna_validate(&c, why, sizeof why), NG_EINVAL);
  CHECK_STR(why, "min_token_weight (2) is greater than max_token_weight (1)");
  /* The first failure wins. */
  c.mutation_rate = 5.0f;
  c.dimension_scales[2] = -1.0f;
  c.checksum = ng_cdna_checksum(&c);
  CHECK_STATUS(ng_cdna_validate(&c, why, sizeof why), NG_EINVAL);
  CHECK_STR(why, "dimension_scales[2] (scale of L3) must be within 0.000001..1000000, got -1");
}

static void test_validate_why_buffers(void) {
  ng_cdna c;
  CHECK_STATUS(ng_cdna_init(&c, NG_PROFILE_DEFAULT, 0), NG_OK);
  c.magic = 0;
  /* No buffer: still the status. */
  CHECK_STATUS(ng_cdna_validate(&c, NULL, 0), NG_ECORRUPT);
  CHECK_STATUS(ng_cdna_validate(&c, NULL, 100), NG_ECORRUPT);
  char why[8];
  memset(why, 'x', sizeof why);
  CHECK_STATUS(ng_cdna_validate(&c, why, 0), NG_ECORRUPT);
  CHECK_EQ_INT(why[0], 'x'); /* size 0: nothing written */
  CHECK_STATUS(ng_cdna_validate(&c, why, 1), NG_ECORRUPT);
  CHECK_EQ_INT(why[0], '\0');
  CHECK_EQ_INT(why[1], 'x');
  CHECK_STATUS(ng_cdna_validate(&c, why, sizeof why), NG_ECORRUPT);
  CHECK_EQ_INT(strlen(why), sizeof why - 1); /* truncated, terminated */
  CHECK(strncmp(why, "magic", 5) == 0);
  char big[64];
  CHECK_STATUS(ng_cdna_validate(NULL, big, sizeof big), NG_EINVAL);
  CHECK_CONTAINS(big, "NULL");
}

static void test_validate_exact_allocation(void) {
  /* A heap block of exactly 384 bytes: the sanitizer build catches any read past it. */
  ng_cdna *c = malloc(sizeof *c);
  CHECK(c != NULL);
  if (!c) return;
  CHECK_STATUS(ng_cdna_init(c, NG_PROFILE_ANALYST, 5), NG_OK);
  CHECK_STATUS(ng_cdna_validate(c, NULL, 0), NG_OK);
  CHECK(ng_cdna_checksum(c) == c->checksum);
  free(c);
}

int main(void) {
  RUN(test_cdna_layout);
  RUN(test_profile_names);
  RUN(test_default_profile);
  RUN(test_explorer_profile);
  RUN(test_analyst_profile);
  RUN(test_creative_profile);
  RUN(test_custom_profile);
  RUN(test_init_rejects_unknown_profiles);
  RUN(test_set_profile_keeps_other_fields);
  RUN(test_checksum_vectors);
  RUN(test_checksum_coverage);
  RUN(test_valid_blocks);
  RUN(test_validate_header_failures);
  RUN(test_validate_per_space_failures);
  RUN(test_validate_degree_failures);
  RUN(test_validate_weight_failures);
  RUN(test_validate_field_failures);
  RUN(test_validate_rate_failures);
  RUN(test_validate_message_text);
  RUN(test_validate_why_buffers);
  RUN(test_validate_exact_allocation);
  return ngt_done("test_cdna");
}

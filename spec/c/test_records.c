/* Unit tests of the pure record functions (records.c) against the reference layouts and vectors. */
#include "internal.h"
#include "test.h"

#include <float.h>
#include <math.h>
#include <stddef.h>

/* Parse a hex string (spaces ignored) into out; returns the byte count. */
static size_t hex_bytes(const char *hex, unsigned char *out, size_t cap) {
  size_t n = 0;
  int hi = -1;
  for (const char *p = hex; *p; p++) {
    int v;
    if (*p >= '0' && *p <= '9')
      v = *p - '0';
    else if (*p >= 'a' && *p <= 'f')
      v = *p - 'a' + 10;
    else if (*p >= 'A' && *p <= 'F')
      v = *p - 'A' + 10;
    else
      continue;
    if (hi < 0) {
      hi = v;
    } else {
      if (n < cap) out[n] = (unsigned char)(hi << 4 | v);
      n++;
      hi = -1;
    }
  }
  return n;
}

/* Compare a record's bytes with a hex image, printing the first difference. */
static int same_image(const void *rec, size_t size, const char *hex) {
  unsigned char want[64];
  if (hex_bytes(hex, want, sizeof want) != size) {
    fprintf(stderr, "hex image has the wrong length\n");
    return 0;
  }
  const unsigned char *got = rec;
  for (size_t i = 0; i < size; i++) {
    if (got[i] != want[i]) {
      fprintf(stderr, "byte %zu: got %02x, wanted %02x\n", i, got[i], want[i]);
      return 0;
    }
  }
  return 1;
}

/* ---- spaces ------------------------------------------------------------- */

static void test_space_scales_and_names(void) {
  static const float scales[NG_SPACES] = {100, 10000, 1000, 10000, 10000, 10000, 100, 10000};
  static const char *const aliases[NG_SPACES] = {"physical",  "sensory", "motor",    "emotional",
                                                 "cognitive", "social",  "temporal", "abstract"};
  char name[3] = "L1";
  for (int s = 0; s < NG_SPACES; s++) {
    name[1] = (char)('1' + s);
    CHECK(ng_space_scale(s) == scales[s]);
    CHECK_STR(ng_space_name(s), name);
    CHECK_STR(ng_space_alias(s), aliases[s]);
    CHECK_EQ_INT(ng_space_from_name(name), s);
    CHECK_EQ_INT(ng_space_from_name(aliases[s]), s);
  }
}

static void test_space_unknown_names(void) {
  const char *bad[] = {"L0", "L9", "l1", "", "L", "L10", "L1 ", "Physical", "physicalx", "phys"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_EQ_INT(ng_space_from_name(bad[i]), -1);
  CHECK_EQ_INT(ng_space_from_name(NULL), -1);
}

static void test_bad_space_everywhere(void) {
  const int bad[] = {-1, 8, NG_SPACES + 100, -1000};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int s = bad[i];
    CHECK(ng_space_scale(s) == 0.0f);
    CHECK(ng_space_name(s) == NULL);
    CHECK(ng_space_alias(s) == NULL);
    CHECK_EQ_INT(ng_coord_encode(s, 1.0f), 0);
    CHECK(ng_coord_decode(s, 1000) == 0.0f);

    ng_token t, before;
    ng_token_init(&t);
    CHECK_STATUS(ng_token_set_coords(&t, 0, 1, 2, 3), NG_OK);
    before = t;
    CHECK_STATUS(ng_token_set_coords(&t, s, 4, 5, 6), NG_EINVAL);
    CHECK(memcmp(&t, &before, sizeof t) == 0);
    float xyz[3] = {7, 8, 9};
    CHECK_STATUS(ng_token_get_coords(&t, s, xyz), NG_EINVAL);
    CHECK(xyz[0] == 7 && xyz[1] == 8 && xyz[2] == 9);
  }
}

/* ---- the coordinate codec ----------------------------------------------- */

static void test_coord_reference_examples(void) {
  CHECK_EQ_INT(ng_coord_encode(NG_L1, 10.5f), 1050);
  CHECK_EQ_INT(ng_coord_encode(NG_L2, 0.1f), 1000);
  CHECK_EQ_INT(ng_coord_encode(NG_L4, 0.7f), 7000);
  CHECK_EQ_INT(ng_coord_encode(NG_L8, 5.0f), 32767);
  CHECK_EQ_INT(ng_coord_encode(NG_L8, -5.0f), -32768);
  /* Truncation toward zero, never rounding. */
  CHECK_EQ_INT(ng_coord_encode(NG_L1, -1.555f), -155);
  CHECK_EQ_INT(ng_coord_encode(NG_L1, 1.999f), 199);
  CHECK_EQ_INT(ng_coord_encode(NG_L1, 0.009f), 0);
  CHECK_EQ_INT(ng_coord_encode(NG_L1, -0.009f), 0);
  CHECK_EQ_INT(ng_coord_encode(NG_L3, 1.5f), 1500);
  CHECK_EQ_INT(ng_coord_encode(NG_L7, 2.5f), 250);
}

static void test_coord_nonfinite_and_huge(void) {
  for (int s = 0; s < NG_SPACES; s++) {
    CHECK_EQ_INT(ng_coord_encode(s, NAN), 0);
    CHECK_EQ_INT(ng_coord_encode(s, -NAN), 0);
    CHECK_EQ_INT(ng_coord_encode(s, INFINITY), 32767);
    CHECK_EQ_INT(ng_coord_encode(s, -INFINITY), -32768);
    CHECK_EQ_INT(ng_coord_encode(s, FLT_MAX), 32767);
    CHECK_EQ_INT(ng_coord_encode(s, -FLT_MAX), -32768);
    CHECK_EQ_INT(ng_coord_encode(s, 1e30f), 32767);
    CHECK_EQ_INT(ng_coord_encode(s, -1e30f), -32768);
    CHECK_EQ_INT(ng_coord_encode(s, 0.0f), 0);
    CHECK_EQ_INT(ng_coord_encode(s, -0.0f), 0);
  }
  /* The edges of L1's range: 327.67 fits, 327.68 clamps, -327.68 is exact. */
  CHECK_EQ_INT(ng_coord_encode(NG_L1, 327.67f), 32767);
  CHECK_EQ_INT(ng_coord_encode(NG_L1, 400.0f), 32767);
  CHECK_EQ_INT(ng_coord_encode(NG_L1, -327.68f), -32768);
  CHECK_EQ_INT(ng_coord_encode(NG_L1, -400.0f), -32768);
}

static void test_coord_decode(void) {
  CHECK(ng_coord_decode(NG_L1, 1050) == 10.5f);
  CHECK(ng_coord_decode(NG_L2, 1000) == 1000.0f / 10000.0f);
  CHECK(ng_coord_decode(NG_L8, 32767) == 32767.0f / 10000.0f);
  CHECK(ng_coord_decode(NG_L8, -32768) == -3.2768f);
  CHECK(ng_coord_decode(NG_L3, -1500) == -1.5f);
  CHECK(ng_coord_decode(NG_L7, 0) == 0.0f);
  /* decode is exactly raw / scale, for every raw value of every space. */
  int mismatches = 0;
  for (int s = 0; s < NG_SPACES; s++)
    for (int raw = -32768; raw <= 32767; raw++)
      mismatches += ng_coord_decode(s, (int16_t)raw) != (float)raw / ng_space_scale(s);
  CHECK_EQ_INT(mismatches, 0);
}

static void test_token_set_get_coords(void) {
  ng_token t;
  ng_token_init(&t);
  CHECK_STATUS(ng_token_set_coords(&t, NG_L1, 1.0f, 2.0f, 3.0f), NG_OK);
  CHECK_EQ_INT(t.coords[0][0], 100);
  CHECK_EQ_INT(t.coords[0][1], 200);
  CHECK_EQ_INT(t.coords[0][2], 300);
  CHECK_STATUS(ng_token_set_coords(&t, NG_L8, 0.5f, NAN, -INFINITY), NG_OK);
  CHECK_EQ_INT(t.coords[7][0], 5000);
  CHECK_EQ_INT(t.coords[7][1], 0);
  CHECK_EQ_INT(t.coords[7][2], -32768);
  /* Other spaces are untouched. */
  for (int s = 1; s < 7; s++)
    for (int a = 0; a < 3; a++)
      CHECK_EQ_INT(t.coords[s][a], 0);
  float xyz[3];
  CHECK_STATUS(ng_token_get_coords(&t, NG_L1, xyz), NG_OK);
  CHECK(xyz[0] == 1.0f && xyz[1] == 2.0f && xyz[2] == 3.0f);
  CHECK_STATUS(ng_token_get_coords(&t, NG_L8, xyz), NG_OK);
  CHECK(xyz[0] == 0.5f && xyz[1] == 0.0f && xyz[2] == -3.2768f);
  CHECK_STATUS(ng_token_set_coords(NULL, NG_L1, 1, 2, 3), NG_EINVAL);
  CHECK_STATUS(ng_token_get_coords(NULL, NG_L1, xyz), NG_EINVAL);
  CHECK_STATUS(ng_token_get_coords(&t, NG_L1, NULL), NG_EINVAL);
}

/* ---- tokens ------------------------------------------------------------- */

static void test_token_layout(void) {
  CHECK_EQ_INT(sizeof(ng_token), 64);
  CHECK_EQ_INT(offsetof(ng_token, coords), 0);
  CHECK_EQ_INT(offsetof(ng_token, id), 48);
  CHECK_EQ_INT(offsetof(ng_token, flags), 52);
  CHECK_EQ_INT(offsetof(ng_token, weight), 54);
  CHECK_EQ_INT(offsetof(ng_token, field_radius), 58);
  CHECK_EQ_INT(offsetof(ng_token, field_strength), 59);
  CHECK_EQ_INT(offsetof(ng_token, timestamp), 60);
  /* coords[s][a] sits at 6*s + 2*a. */
  ng_token t;
  memset(&t, 0, sizeof t);
  t.coords[5][2] = 0x0102;
  const unsigned char *b = (const unsigned char *)&t;
  CHECK_EQ_INT(b[6 * 5 + 2 * 2], 0x02);
  CHECK_EQ_INT(b[6 * 5 + 2 * 2 + 1], 0x01);
}

static void test_token_init(void) {
  ng_token t;
  memset(&t, 0xAB, sizeof t);
  ng_token_init(&t);
  CHECK_EQ_INT(t.flags, NG_TOKEN_ACTIVE);
  CHECK_EQ_INT(t.id, 0);
  CHECK(t.weight == 0.0f);
  CHECK_EQ_INT(t.field_radius, 0);
  CHECK_EQ_INT(t.field_strength, 0);
  CHECK_EQ_INT(t.timestamp, 0);
  int nonzero = 0;
  for (int s = 0; s < NG_SPACES; s++)
    for (int a = 0; a < 3; a++)
      nonzero += t.coords[s][a] != 0;
  CHECK_EQ_INT(nonzero, 0);
  ng_token_init(NULL); /* ignored, must not crash */
}

static void test_token_reference_image(void) {
  ng_token t;
  ng_token_init(&t);
  t.id = 0x12345678u;
  CHECK_STATUS(ng_token_set_coords(&t, NG_L1, 1.0f, 2.0f, 3.0f), NG_OK);
  ng_token_set_entity(&t, NG_ENTITY_CONCEPT);
  t.weight = 0.5f;
  ng_token_set_field_radius(&t, 1.5f);
  ng_token_set_field_strength(&t, 0.8f);
  t.timestamp = 0x01020304u;
  CHECK(same_image(
      &t, sizeof t,
      "6400 c800 2c01"
      "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
      "78563412 0105 0000003f 96 cc 04030201"));
}

static void test_field_radius_strength(void) {
  ng_token t;
  ng_token_init(&t);
  ng_token_set_field_radius(&t, 3.0f);
  CHECK_EQ_INT(t.field_radius, 255);
  ng_token_set_field_radius(&t, 1.5f);
  CHECK_EQ_INT(t.field_radius, 150);
  CHECK(ng_token_get_field_radius(&t) == 1.5f);
  ng_token_set_field_radius(&t, 0.999f);
  CHECK_EQ_INT(t.field_radius, 99);
  ng_token_set_field_radius(&t, -1.0f);
  CHECK_EQ_INT(t.field_radius, 0);
  ng_token_set_field_radius(&t, 1.0f);
  ng_token_set_field_radius(&t, NAN);
  CHECK_EQ_INT(t.field_radius, 0);
  ng_token_set_field_radius(&t, INFINITY);
  CHECK_EQ_INT(t.field_radius, 255);
  ng_token_set_field_radius(&t, -INFINITY);
  CHECK_EQ_INT(t.field_radius, 0);
  CHECK(ng_token_get_field_radius(&t) == 0.0f);

  ng_token_set_field_strength(&t, 0.5f);
  CHECK_EQ_INT(t.field_strength, 127);
  ng_token_set_field_strength(&t, 0.8f);
  CHECK_EQ_INT(t.field_strength, 204);
  CHECK(ng_token_get_field_strength(&t) == 204.0f / 255.0f);
  ng_token_set_field_strength(&t, 1.0f);
  CHECK_EQ_INT(t.field_strength, 255);
  ng_token_set_field_strength(&t, 7.0f);
  CHECK_EQ_INT(t.field_strength, 255);
  ng_token_set_field_strength(&t, -0.5f);
  CHECK_EQ_INT(t.field_strength, 0);
  ng_token_set_field_strength(&t, 0.5f);
  ng_token_set_field_strength(&t, NAN);
  CHECK_EQ_INT(t.field_strength, 0);
  /* Nothing else moved. */
  CHECK_EQ_INT(t.flags, NG_TOKEN_ACTIVE);
  CHECK(ng_token_get_field_radius(NULL) == 0.0f);
  CHECK(ng_token_get_field_strength(NULL) == 0.0f);
}

static void test_token_entity(void) {
  ng_token t;
  ng_token_init(&t);
  t.flags = 0xF0FF; /* every non-entity bit set */
  for (unsigned e = 0; e < NG_ENTITY_COUNT; e++) {
    ng_token_set_entity(&t, e);
    CHECK_EQ_INT(ng_token_get_entity(&t), e);
    CHECK_EQ_INT(t.flags & ~NG_TOKEN_ENTITY_MASK, 0xF0FF);
    CHECK_EQ_INT(t.flags & NG_TOKEN_ENTITY_MASK, e << 8);
  }
  ng_token_set_entity(&t, 0x15u); /* higher bits ignored */
  CHECK_EQ_INT(ng_token_get_entity(&t), 5);
  CHECK_EQ_INT(t.flags, 0xF5FF);
  CHECK_EQ_INT(ng_token_get_entity(NULL), 0);
}

static void test_entity_names(void) {
  static const char *const names[NG_ENTITY_COUNT] = {
      "Undefined", "Object", "Event",  "State",  "Process",  "Concept",    "Relation", "Pattern",
      "Rule",      "Goal",   "Memory", "Sensor", "Actuator", "Controller", "Buffer",   "Reserved"};
  for (unsigned e = 0; e < NG_ENTITY_COUNT; e++) {
    CHECK_STR(ng_entity_name(e), names[e]);
    CHECK_EQ_INT(ng_entity_from_name(names[e]), e);
  }
  CHECK(ng_entity_name(16) == NULL);
  CHECK(ng_entity_name(~0u) == NULL);
  CHECK_EQ_INT(ng_entity_from_name("concept"), -1);
  CHECK_EQ_INT(ng_entity_from_name(""), -1);
  CHECK_EQ_INT(ng_entity_from_name("Thing"), -1);
  CHECK_EQ_INT(ng_entity_from_name(NULL), -1);
}

static void test_make_id(void) {
  CHECK_EQ_INT(ng_make_id(12345, 5, 3), 0x35003039u);
  CHECK_EQ_INT(NG_ID_LOCAL(0x35003039u), 12345);
  CHECK_EQ_INT(NG_ID_ENTITY(0x35003039u), 5);
  CHECK_EQ_INT(NG_ID_DOMAIN(0x35003039u), 3);
  /* Out-of-range parts are masked, never spilled into neighbouring fields. */
  CHECK_EQ_INT(ng_make_id(0x01FFFFFFu, 0x1Fu, 0x1Fu), 0xFFFFFFFFu);
  CHECK_EQ_INT(ng_make_id(0x01000000u, 0, 0), 0);
  CHECK_EQ_INT(ng_make_id(1, 16, 0), 1);
  CHECK_EQ_INT(ng_make_id(0, 0, 16), 0);
}

/* ---- connection types --------------------------------------------------- */

static void test_conn_type_names_roundtrip(void) {
  int bad = 0;
  for (unsigned t = 0; t < NG_CONN_TYPES; t++) {
    const char *n = ng_conn_type_name(t);
    if (!n || ng_conn_type_from_name(n) != (int)t) {
      fprintf(stderr, "type 0x%02X (%s) does not round-trip\n", t, n ? n : "NULL");
      bad++;
    }
    for (unsigned u = 0; u < t && n; u++)
      if (strcmp(n, ng_conn_type_name(u)) == 0) bad++; /* names are unique */
  }
  CHECK_EQ_INT(bad, 0);
  CHECK(ng_conn_type_name(NG_CONN_TYPES) == NULL);
  CHECK(ng_conn_type_name(0xFF) == NULL);
  CHECK(ng_conn_type_name(~0u) == NULL);
}

static void test_conn_type_names_in_value_order(void) {
  /* First and last of every category, plus the aliased semantic names. */
  static const struct {
    unsigned type;
    const char *name;
  } want[] = {{0x00, "Synonym"},
              {0x01, "Antonym"},
              {0x02, "Hypernym"},
              {0x03, "Hyponym"},
              {0x04, "Meronym"},
              {0x05, "Holonym"},
              {0x06, "Troponym"},
              {0x0F, "Region"},
              {0x10, "Cause"},
              {0x1F, "Destroys"},
              {0x20, "Before"},
              {0x2F, "Extended"},
              {0x30, "Near"},
              {0x3F, "Between"},
              {0x40, "And"},
              {0x4F, "Impossible"},
              {0x50, "AssociatedWith"},
              {0x5F, "ManifestationOf"},
              {0x60, "PartOf"},
              {0x61, "HasPart"},
              {0x6F, "Whole"},
              {0x70, "UsedFor"},
              {0x7F, "OptimizedFor"},
              {0x80, "Likes"},
              {0x8F, "Grateful"},
              {0x90, "Rule"},
              {0x9F, "References"},
              {0xA0, "Becomes"},
              {0xAF, "Alternates"},
              {0x28, "Simultaneous"},
              {0x21, "After"},
              {0x3B, "Containing"},
              {0x66, "Contains"},
              {0x7A, "SupportsFunction"}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    CHECK_STR(ng_conn_type_name(want[i].type), want[i].name);
    CHECK_EQ_INT(ng_conn_type_from_name(want[i].name), want[i].type);
  }
  CHECK_EQ_INT(ng_conn_type_from_name("AssociatedWith"), NG_CONN_ASSOCIATED_WITH);
}

static void test_conn_type_unknown_names(void) {
  const char *bad[] = {"",         "Hypernym (IsA)", "IsA", "synonym", "SYNONYM",       "Synonym ",
                       " Synonym", "Synonyms",       "A",   "Zzz",     "Rule/Metaphor", "Semantic",
                       "AAAAA"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_EQ_INT(ng_conn_type_from_name(bad[i]), -1);
  CHECK_EQ_INT(ng_conn_type_from_name(NULL), -1);
}

static void test_conn_categories(void) {
  static const char *const cats[NG_CONN_CATEGORIES] = {
      "Semantic",   "Causal",     "Temporal",  "Spatial", "Logical", "Associative",
      "Structural", "Functional", "Emotional", "Rule",    "Dynamic"};
  for (unsigned c = 0; c < NG_CONN_CATEGORIES; c++)
    CHECK_STR(ng_conn_category_name(c), cats[c]);
  CHECK(ng_conn_category_name(NG_CONN_CATEGORIES) == NULL);
  CHECK(ng_conn_category_name(~0u) == NULL);
  int wrong = 0;
  for (unsigned t = 0; t < NG_CONN_TYPES; t++)
    wrong += ng_conn_type_category(t) != (int)(t / 16);
  CHECK_EQ_INT(wrong, 0);
  CHECK_EQ_INT(ng_conn_type_category(0xB0), -1);
  CHECK_EQ_INT(ng_conn_type_category(0xFF), -1);
  CHECK_EQ_INT(ng_conn_type_category(0x1000), -1);
}

static void test_conn_type_mutability(void) {
  /* Reference 2.2 class column: I L L I I L I L L I L. */
  static const ng_mutability cls[NG_CONN_CATEGORIES] = {
      NG_IMMUTABLE, NG_LEARNABLE, NG_LEARNABLE, NG_IMMUTABLE, NG_IMMUTABLE, NG_LEARNABLE,
      NG_IMMUTABLE, NG_LEARNABLE, NG_LEARNABLE, NG_IMMUTABLE, NG_LEARNABLE};
  int wrong = 0;
  for (unsigned t = 0; t < NG_CONN_TYPES; t++)
    wrong += ng_conn_type_mutability(t) != cls[t / 16];
  CHECK_EQ_INT(wrong, 0);
  CHECK_EQ_INT(ng_conn_type_mutability(0xB0), NG_LEARNABLE);
  CHECK_EQ_INT(ng_conn_type_mutability(0xFF), NG_LEARNABLE);
  CHECK_EQ_INT(ng_conn_type_mutability(~0u), NG_LEARNABLE);
  CHECK_STR(ng_mutability_name(NG_IMMUTABLE), "Immutable");
  CHECK_STR(ng_mutability_name(NG_LEARNABLE), "Learnable");
  CHECK_STR(ng_mutability_name(NG_HYPOTHESIS), "Hypothesis");
  CHECK(ng_mutability_name(3) == NULL);
  CHECK(ng_mutability_name(~0u) == NULL);
}

/* ---- connections -------------------------------------------------------- */

static void test_connection_layout(void) {
  CHECK_EQ_INT(sizeof(ng_connection), 64);
  CHECK_EQ_INT(offsetof(ng_connection, token_a_id), 0);
  CHECK_EQ_INT(offsetof(ng_connection, token_b_id), 4);
  CHECK_EQ_INT(offsetof(ng_connection, connection_type), 8);
  CHECK_EQ_INT(offsetof(ng_connection, rigidity), 9);
  CHECK_EQ_INT(offsetof(ng_connection, active_levels), 10);
  CHECK_EQ_INT(offsetof(ng_connection, flags), 11);
  CHECK_EQ_INT(offsetof(ng_connection, activation_count), 12);
  CHECK_EQ_INT(offsetof(ng_connection, pull_strength), 16);
  CHECK_EQ_INT(offsetof(ng_connection, preferred_distance), 20);
  CHECK_EQ_INT(offsetof(ng_connection, created_at), 24);
  CHECK_EQ_INT(offsetof(ng_connection, last_activation), 28);
  CHECK_EQ_INT(offsetof(ng_connection, mutability), 32);
  CHECK_EQ_INT(offsetof(ng_connection, confidence), 33);
  CHECK_EQ_INT(offsetof(ng_connection, evidence_count), 34);
  CHECK_EQ_INT(offsetof(ng_connection, last_update), 36);
  CHECK_EQ_INT(offsetof(ng_connection, learning_rate), 40);
  CHECK_EQ_INT(offsetof(ng_connection, decay_rate), 41);
  CHECK_EQ_INT(offsetof(ng_connection, padding1), 42);
  CHECK_EQ_INT(offsetof(ng_connection, source_id), 44);
  CHECK_EQ_INT(offsetof(ng_connection, target_vector), 48);
}

static void test_connection_reference_image(void) {
  ng_connection c;
  memset(&c, 0xAB, sizeof c);
  ng_connection_init(&c);
  c.created_at = 0x11111111u;
  c.last_update = 0x22222222u;
  CHECK(same_image(&c, sizeof c,
                   "00000000 00000000 50 80 00 00 00000000 00000000 0000803f 11111111 00000000"
                   "01 80 0000 22222222 20 10 0000 00000000 00000000000000000000000000000000"));
}

/* The endpoints are ng_connection_create's arguments: init leaves the record's endpoint
 * fields 0 (create stores the endpoints' slots there, from first). */
static void test_connection_init_no_endpoints(void) {
  ng_connection c;
  memset(&c, 0xAB, sizeof c);
  ng_connection_init(&c);
  CHECK_EQ_INT(c.token_a_id, 0);
  CHECK_EQ_INT(c.token_b_id, 0);
  CHECK_EQ_INT(c.created_at, 0);
  CHECK_EQ_INT(c.last_update, 0);
  CHECK_EQ_INT(c.flags, 0);
  CHECK_EQ_INT(c.connection_type, NG_CONN_ASSOCIATED_WITH);
  ng_connection_init(NULL);
}

static void test_connection_set_type(void) {
  ng_connection c, before;
  ng_connection_init(&c);
  CHECK_EQ_INT(c.confidence, 128);
  CHECK_STATUS(ng_connection_set_type(&c, 0x00), NG_OK); /* Synonym: Immutable */
  CHECK_EQ_INT(c.connection_type, 0x00);
  CHECK_EQ_INT(c.mutability, NG_IMMUTABLE);
  CHECK_EQ_INT(c.confidence, 255);
  CHECK_STATUS(ng_connection_set_type(&c, 0x10), NG_OK); /* Cause: Learnable */
  CHECK_EQ_INT(c.connection_type, 0x10);
  CHECK_EQ_INT(c.mutability, NG_LEARNABLE);
  CHECK_EQ_INT(c.confidence, 255); /* not restored */
  CHECK_STATUS(ng_connection_set_type(&c, 0xAF), NG_OK);
  CHECK_EQ_INT(c.mutability, NG_LEARNABLE);
  c.confidence = 40;
  CHECK_STATUS(ng_connection_set_type(&c, 0x9F), NG_OK); /* References: Immutable */
  CHECK_EQ_INT(c.confidence, 255);
  before = c;
  CHECK_STATUS(ng_connection_set_type(&c, 0xB0), NG_EINVAL);
  CHECK_STATUS(ng_connection_set_type(&c, 0xFF), NG_EINVAL);
  CHECK_STATUS(ng_connection_set_type(&c, 0x150), NG_EINVAL); /* would alias 0x50 as a byte */
  CHECK(memcmp(&c, &before, sizeof c) == 0);
  CHECK_STATUS(ng_connection_set_type(NULL, 0), NG_EINVAL);
}

static void test_connection_activate(void) {
  ng_connection c;
  ng_connection_init(&c);
  ng_connection_activate(&c, 1234);
  CHECK_EQ_INT(c.flags, 0x21);
  CHECK_EQ_INT(c.rigidity, 129);
  CHECK_EQ_INT(c.activation_count, 1);
  CHECK_EQ_INT(c.last_activation, 1234);

  c.rigidity = 255;
  c.activation_count = UINT32_MAX;
  ng_connection_activate(&c, 1235);
  CHECK_EQ_INT(c.rigidity, 255);
  CHECK_EQ_INT(c.activation_count, UINT32_MAX);

  /* Immutable and Hypothesis links are activated but not reinforced. */
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_set_type(&c, 0x30), NG_OK);
  ng_connection_activate(&c, 9);
  CHECK_EQ_INT(c.flags, NG_CONN_ACTIVE);
  CHECK_EQ_INT(c.rigidity, 128);
  ng_connection_init(&c);
  c.mutability = NG_HYPOTHESIS;
  ng_connection_activate(&c, 9);
  CHECK_EQ_INT(c.flags, NG_CONN_ACTIVE);
  CHECK_EQ_INT(c.rigidity, 128);
  CHECK_EQ_INT(c.activation_count, 1);
  ng_connection_activate(NULL, 1);
}

static void test_connection_update_confidence(void) {
  ng_connection c;
  ng_connection_init(&c);
  ng_connection_update_confidence(&c, true, 100);
  CHECK_EQ_INT(c.confidence, 160);
  CHECK_EQ_INT(c.evidence_count, 1);
  CHECK_EQ_INT(c.last_update, 100);
  CHECK_EQ_INT(c.flags, NG_CONN_MODIFIED);
  ng_connection_update_confidence(&c, false, 200);
  CHECK_EQ_INT(c.confidence, 144);
  CHECK_EQ_INT(c.evidence_count, 1);
  CHECK_EQ_INT(c.last_update, 200);

  /* Saturation at both ends. */
  c.confidence = 250;
  c.evidence_count = UINT16_MAX;
  ng_connection_update_confidence(&c, true, 300);
  CHECK_EQ_INT(c.confidence, 255);
  CHECK_EQ_INT(c.evidence_count, UINT16_MAX);
  c.confidence = 5;
  c.learning_rate = 255;
  ng_connection_update_confidence(&c, false, 300);
  CHECK_EQ_INT(c.confidence, 0);

  /* Immutable: a no-op. */
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_set_type(&c, 0x40), NG_OK);
  ng_connection before = c;
  ng_connection_update_confidence(&c, false, 999);
  ng_connection_update_confidence(&c, true, 999);
  CHECK(memcmp(&c, &before, sizeof c) == 0);

  /* Hypotheses learn with the same rule. */
  ng_connection_init(&c);
  c.mutability = NG_HYPOTHESIS;
  c.learning_rate = 128;
  ng_connection_update_confidence(&c, true, 5);
  CHECK_EQ_INT(c.confidence, 255);
  ng_connection_update_confidence(NULL, true, 5);
}

static void test_connection_decay(void) {
  ng_connection c;
  /* Only Hypothesis decays. */
  ng_connection_init(&c);
  c.last_update = 1000;
  ng_connection before = c;
  CHECK(!ng_connection_apply_decay(&c, 100000));
  CHECK(memcmp(&c, &before, sizeof c) == 0);
  CHECK_STATUS(ng_connection_set_type(&c, 0x00), NG_OK);
  before = c;
  CHECK(!ng_connection_apply_decay(&c, 100000));
  CHECK(memcmp(&c, &before, sizeof c) == 0);

  /* The threshold is strictly more than 3600 s since last_update. */
  ng_connection_init(&c);
  c.mutability = NG_HYPOTHESIS;
  c.flags = NG_CONN_ACTIVE;
  c.last_update = 1000;
  CHECK(!ng_connection_apply_decay(&c, 4600));
  CHECK_EQ_INT(c.confidence, 128);
  CHECK_EQ_INT(c.flags, NG_CONN_ACTIVE);
  CHECK(ng_connection_apply_decay(&c, 4601));
  CHECK_EQ_INT(c.confidence, 119); /* trunc(128/255 * (1 - 16/255) * 255) */
  CHECK_EQ_INT(c.flags, NG_CONN_ACTIVE | NG_CONN_DECAYING);
  CHECK_EQ_INT(c.last_update, 1000); /* not refreshed: decays again */
  CHECK(ng_connection_apply_decay(&c, 4601));
  CHECK_EQ_INT(c.confidence, 111);

  /* ACTIVE is cleared once confidence drops below 25. */
  c.confidence = 30;
  CHECK(ng_connection_apply_decay(&c, 5000));
  CHECK_EQ_INT(c.confidence, 28);
  CHECK(c.flags & NG_CONN_ACTIVE);
  c.confidence = 26;
  c.decay_rate = 32;
  CHECK(ng_connection_apply_decay(&c, 5000));
  CHECK_EQ_INT(c.confidence, 22);
  CHECK(!(c.flags & NG_CONN_ACTIVE));
  CHECK(c.flags & NG_CONN_DECAYING);

  /* A clock that went backwards never decays (no unsigned wrap-around). */
  ng_connection_init(&c);
  c.mutability = NG_HYPOTHESIS;
  c.last_update = 100000;
  CHECK(!ng_connection_apply_decay(&c, 10));
  CHECK_EQ_INT(c.confidence, 128);
  CHECK(!ng_connection_apply_decay(NULL, 10));
}

static void test_connection_force(void) {
  ng_connection c;
  ng_connection_init(&c);
  CHECK(ng_connection_force(&c, 0.5f) == 0.0f); /* default pull 0 */
  c.pull_strength = 0.5f;
  c.preferred_distance = 2.0f;
  c.rigidity = 255;
  c.confidence = 255;
  CHECK(ng_connection_force(&c, 1.0f) == 0.5f);
  CHECK(ng_connection_force(&c, 3.0f) == -0.5f); /* past the rest length: pushes */
  CHECK(ng_connection_force(&c, 2.0f) == 0.0f);
  c.confidence = 0; /* modifiable: scaled by confidence */
  CHECK(ng_connection_force(&c, 1.0f) == 0.0f);
  CHECK_STATUS(ng_connection_set_type(&c, 0x00), NG_OK);
  c.confidence = 0; /* Immutable: confidence is ignored */
  CHECK(ng_connection_force(&c, 1.0f) == 0.5f);
  /* The reference formula with arbitrary values. */
  ng_connection_init(&c);
  c.pull_strength = -3.0f;
  c.preferred_distance = 1.5f;
  c.rigidity = 100;
  c.confidence = 200;
  float want = (1.5f - 0.25f) * (100.0f / 255.0f) * -3.0f * (200.0f / 255.0f);
  CHECK(fabsf(ng_connection_force(&c, 0.25f) - want) < 1e-6f);
  CHECK(ng_connection_force(NULL, 1.0f) == 0.0f);
}

/* The record rules: one verdict and reason for every writer (core, loader, binding). */
static void test_token_validate(void) {
  ng_token t;
  ng_token_init(&t);
  char why[160];
  t.weight = 250.0f;
  CHECK_STATUS(ng_token_validate(&t, NG_TF_ALL, NULL, why, sizeof why), NG_EINVAL);
  CHECK_STR(why, "weight must be within 0..100, got 250");
  CHECK_STATUS(ng_token_validate(&t, NG_TF_FLAGS, NULL, why, sizeof why), NG_OK); /* not selected */
  CHECK_STR(why, "");
  t.weight = NAN;
  CHECK_STATUS(ng_token_validate(&t, NG_TF_WEIGHT, NULL, NULL, 0), NG_EINVAL);
  /* the CDNA's limits apply only in strict mode */
  ng_cdna cd;
  CHECK_STATUS(ng_cdna_init(&cd, NG_PROFILE_DEFAULT, 0), NG_OK);
  cd.max_token_weight = 10.0f;
  t.weight = 50.0f;
  CHECK_STATUS(ng_token_validate(&t, NG_TF_ALL, &cd, why, sizeof why), NG_OK);
  cd.flags |= NG_CDNA_STRICT_MODE;
  CHECK_STATUS(ng_token_validate(&t, NG_TF_ALL, &cd, why, sizeof why), NG_EINVAL);
  CHECK_CONTAINS(why, "weight must be within the CDNA limits");
  CHECK_STATUS(ng_token_validate(&t, NG_TF_ALL, NULL, why, sizeof why), NG_OK);
  CHECK_STATUS(ng_token_validate(NULL, NG_TF_ALL, NULL, why, sizeof why), NG_EINVAL);
}

static void test_connection_validate(void) {
  ng_connection c;
  ng_connection_init(&c);
  char why[200];
  CHECK_STATUS(ng_connection_validate(&c, NG_CF_ALL, NULL, why, sizeof why), NG_OK);
  c.connection_type = 0xB0;
  CHECK_STATUS(ng_connection_validate(&c, NG_CF_ALL, NULL, why, sizeof why), NG_EINVAL);
  CHECK_CONTAINS(why, "unknown connection type 0xB0");
  ng_connection_init(&c);
  c.pull_strength = 10.5f;
  CHECK_STATUS(ng_connection_validate(&c, NG_CF_ALL, NULL, why, sizeof why), NG_EINVAL);
  CHECK_STR(why, "pull_strength must be within -10..10, got 10.5");
  ng_connection_init(&c);
  c.preferred_distance = 0.001f;
  CHECK_STATUS(ng_connection_validate(&c, NG_CF_ALL, NULL, why, sizeof why), NG_EINVAL);
  CHECK_STR(why, "preferred_distance must be within 0.01..100, got 0.001");
  CHECK_STATUS(ng_connection_validate(&c, NG_CF_TYPE, NULL, why, sizeof why), NG_OK);
  ng_connection_init(&c);
  c.mutability = 3;
  CHECK_STATUS(ng_connection_validate(&c, NG_CF_MUTABILITY, NULL, why, sizeof why), NG_EINVAL);
  CHECK_STR(why, "mutability must be 0..2, got 3");
  /* a cdna adds the allowed-types mask, its strict mode the rigidity limits */
  ng_connection_init(&c);
  ng_cdna cd;
  CHECK_STATUS(ng_cdna_init(&cd, NG_PROFILE_DEFAULT, 0), NG_OK);
  cd.allowed_connection_types &= ~(1u << (NG_CONN_ASSOCIATED_WITH >> 4));
  CHECK_STATUS(ng_connection_validate(&c, NG_CF_ALL, NULL, why, sizeof why), NG_OK);
  CHECK_STATUS(ng_connection_validate(&c, NG_CF_ALL, &cd, why, sizeof why), NG_EINVAL);
  CHECK_CONTAINS(why, "is not allowed");
  CHECK_STATUS(ng_cdna_init(&cd, NG_PROFILE_DEFAULT, 0), NG_OK);
  cd.max_rigidity = 0.1f;
  CHECK_STATUS(ng_connection_validate(&c, NG_CF_ALL, &cd, why, sizeof why), NG_OK);
  cd.flags |= NG_CDNA_STRICT_MODE;
  CHECK_STATUS(ng_connection_validate(&c, NG_CF_ALL, &cd, why, sizeof why), NG_EINVAL);
  CHECK_CONTAINS(why, "rigidity 128");
}

static void test_coord_check(void) {
  char why[160];
  CHECK_STATUS(ng_coord_check(0, 327.67, why, sizeof why), NG_OK); /* L1: scale 100 */
  CHECK_STATUS(ng_coord_check(0, -327.68, why, sizeof why), NG_OK);
  CHECK_STATUS(ng_coord_check(0, 327.69, why, sizeof why), NG_EINVAL);
  CHECK_STR(why, "coordinate of L1 must be within -327.68..327.67, got 327.69");
  CHECK_STATUS(ng_coord_check(0, NAN, why, sizeof why), NG_EINVAL);
  CHECK_CONTAINS(why, "finite");
  CHECK_STATUS(ng_coord_check(1, INFINITY, NULL, 0), NG_EINVAL);
  CHECK_STATUS(ng_coord_check(1, 1e300, NULL, 0), NG_EINVAL);
  CHECK_STATUS(ng_coord_check(8, 0.0, why, sizeof why), NG_EINVAL);
  CHECK_CONTAINS(why, "space");
  /* what passes is stored as given: the encoder does not saturate it */
  CHECK_EQ_INT(ng_coord_encode(0, 327.67f), 32767);
}

int main(void) {
  RUN(test_space_scales_and_names);
  RUN(test_space_unknown_names);
  RUN(test_bad_space_everywhere);
  RUN(test_coord_reference_examples);
  RUN(test_coord_nonfinite_and_huge);
  RUN(test_coord_decode);
  RUN(test_token_set_get_coords);
  RUN(test_token_layout);
  RUN(test_token_init);
  RUN(test_token_reference_image);
  RUN(test_field_radius_strength);
  RUN(test_token_entity);
  RUN(test_entity_names);
  RUN(test_make_id);
  RUN(test_conn_type_names_roundtrip);
  RUN(test_conn_type_names_in_value_order);
  RUN(test_conn_type_unknown_names);
  RUN(test_conn_categories);
  RUN(test_conn_type_mutability);
  RUN(test_connection_layout);
  RUN(test_connection_reference_image);
  RUN(test_connection_init_no_endpoints);
  RUN(test_connection_set_type);
  RUN(test_connection_activate);
  RUN(test_connection_update_confidence);
  RUN(test_connection_decay);
  RUN(test_connection_force);
  RUN(test_token_validate);
  RUN(test_connection_validate);
  RUN(test_coord_check);
  return ngt_done("test_records");
}

/* Tests of snapshots: round trips of every field, ids, hostile and damaged files, I/O errors. */
#include "internal.h"
#include "test.h"
#include "test_alloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

/* Header offsets (docs/format.md): 1.x keeps the next ids at 40 and 44, 2.x the ids
 * section's length at 40. */
/* clang-format off */
enum {
  H_MAJOR = 8, H_MINOR = 10, H_HSIZE = 12, H_ENDIAN = 16, H_FLAGS = 20, H_NTOK = 24,
  H_NCONN = 32, H_NEXT_TOK = 40, H_NEXT_CONN = 44, H_IDS_LEN = 40, H_CDNA_LEN = 48,
  H_TOK_LEN = 56, H_CONN_LEN = 64, H_CRC = 76, H_SIZE = 80
};
/* clang-format on */

static char tmpdir[] = "/tmp/ng_snapshot_XXXXXX";

static char *tpath(const char *name) {
  static char buf[4][512];
  static int i;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, name);
  return buf[i];
}

static void write_file(const char *path, const unsigned char *b, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(b, 1, len, f);
  fclose(f);
}

static uint16_t get16(const unsigned char *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}
static uint32_t get32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint64_t get64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
static void put16(unsigned char *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

/* Recompute every checksum of an image whose header is intact enough to
 * locate the sections, so record-level validation can be tested. Format 2
 * has a fourth section, the ids. */
static void fix_crcs(unsigned char *b, size_t len) {
  uint32_t hs = get32(b + H_HSIZE);
  put32(b + hs - 4, ngi_crc32c(0, b, hs - 4));
  uint64_t off = hs;
  uint64_t lens[4] = {get64(b + H_CDNA_LEN), get64(b + H_TOK_LEN), get64(b + H_CONN_LEN),
                      get64(b + H_IDS_LEN)};
  int sections = b[H_MAJOR] >= 2 ? 4 : 3;
  for (int s = 0; s < sections; s++) {
    if (off + lens[s] + 4 > len) return;
    put32(b + off + lens[s], ngi_crc32c(0, b + off, (size_t)lens[s]));
    off += lens[s] + 4;
  }
}

/* The format-1.0 image of the same store, from the 2.0 image b of rt, whose ids must all be
 * of generation 0 (no slot reused yet): the next ids go into the header, the ids section
 * goes. *len is updated; b keeps its size. */
static void to_v1(ng_runtime *rt, unsigned char *b, size_t *len) {
  ng_stats st;
  ng_runtime_stats(rt, &st);
  CHECK(NG_TOKEN_GEN(st.next_token_id) == 0 && (st.next_connection_id >> 32) == 0);
  uint64_t ids = get64(b + H_IDS_LEN);
  put16(b + H_MAJOR, 1);
  put32(b + H_NEXT_TOK, (uint32_t)st.next_token_id);
  put32(b + H_NEXT_CONN, (uint32_t)st.next_connection_id);
  *len -= (size_t)ids + 4;
  fix_crcs(b, *len);
}

/* Snapshot rt into memory (through a real file). */
/* A 3.0 image as 2.0 wrote it: the ids section without the tokens' spaces
 * (its last token-count bytes), major 2. */
static void to_v2(unsigned char *b, size_t *len) {
  uint64_t ntok = get64(b + H_NTOK), ids = get64(b + H_IDS_LEN);
  put16(b + H_MAJOR, 2);
  put64(b + H_IDS_LEN, ids - ntok);
  memmove(b + *len - 4 - ntok, b + *len - 4, 4);
  *len -= (size_t)ntok;
  fix_crcs(b, *len);
}

static unsigned char *snapshot_bytes(ng_runtime *rt, size_t *len) {
  const char *p = tpath("mem.ngs");
  if (ng_snapshot_save(rt, p) != NG_OK) return NULL;
  unsigned char *b = ngt_read_file(p, len);
  unlink(p);
  return b;
}

/* ---- runtime comparison ------------------------------------------------------ */

/* Everything observable is equal: stats, CDNA bytes, every token and
 * connection record under the same ids, adjacency and grid answers. */
static int same_runtime(ng_runtime *a, ng_runtime *b) {
  ng_stats sa, sb;
  ng_runtime_stats(a, &sa);
  ng_runtime_stats(b, &sb);
  if (sa.tokens != sb.tokens || sa.connections != sb.connections ||
      sa.next_token_id != sb.next_token_id || sa.next_connection_id != sb.next_connection_id)
    return 0;
  ng_cdna ca, cb;
  ng_cdna_get(a, &ca);
  ng_cdna_get(b, &cb);
  if (memcmp(&ca, &cb, sizeof ca) != 0) return 0;
  ng_id ia = 0, ib = 0;
  for (;;) {
    ng_status x = ng_token_next(a, ia, &ia), y = ng_token_next(b, ib, &ib);
    if (x != y) return 0;
    if (x != NG_OK) break;
    if (ia != ib) return 0;
    ng_token ta, tb;
    ng_token_get(a, ia, &ta);
    ng_token_get(b, ib, &tb);
    if (memcmp(&ta, &tb, sizeof ta) != 0) return 0;
    size_t na = 0, nb = 0;
    ng_id la[64], lb[64];
    ng_token_connections(a, ia, NG_BOTH, la, 64, &na);
    ng_token_connections(b, ib, NG_BOTH, lb, 64, &nb);
    if (na != nb || memcmp(la, lb, (na < 64 ? na : 64) * sizeof *la) != 0) return 0;
  }
  ia = ib = 0;
  for (;;) {
    ng_status x = ng_connection_next(a, ia, &ia), y = ng_connection_next(b, ib, &ib);
    if (x != y) return 0;
    if (x != NG_OK) break;
    if (ia != ib) return 0;
    ng_connection xa, xb;
    ng_connection_get(a, ia, &xa);
    ng_connection_get(b, ib, &xb);
    if (memcmp(&xa, &xb, sizeof xa) != 0) return 0;
  }
  for (int s = 0; s < NG_SPACES; s++) {
    ng_space_info ga, gb;
    ng_grid_info(a, s, &ga);
    ng_grid_info(b, s, &gb);
    if (ga.count != gb.count || ga.cells != gb.cells || memcmp(ga.lo, gb.lo, sizeof ga.lo) ||
        memcmp(ga.hi, gb.hi, sizeof ga.hi))
      return 0;
  }
  return 1;
}

/* A small runtime with every kind of content: tokens in all 8 spaces with
 * every field set, holes in both id sequences, connections with every field. */
static ng_runtime *make_small(void) {
  ng_runtime *rt = NULL;
  if (ng_runtime_new(NULL, &rt) != NG_OK) return NULL;
  ng_id ids[6];
  for (int i = 0; i < 6; i++) {
    ng_token t;
    ng_token_init(&t);
    for (int s = 0; s < NG_SPACES; s++)
      for (int a = 0; a < 3; a++) t.coords[s][a] = (int16_t)((i + 1) * 1000 - s * 300 + a * 7 - 2500);
    t.id = ng_make_id(0, 0, (unsigned)(i % 16));
    t.flags = (uint16_t)(NG_TOKEN_ACTIVE | NG_TOKEN_USER_3 | NG_TOKEN_DIRTY);
    ng_token_set_entity(&t, (unsigned)(i + 3));
    t.weight = 0.25f + (float)i * 13.5f;
    t.field_radius = (uint8_t)(10 + i);
    t.field_strength = (uint8_t)(200 + i);
    t.timestamp = 0x01020304u + (uint32_t)i;
    CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &ids[i]), NG_OK);
  }
  ng_token_delete(rt, ids[2], NULL); /* a hole */
  for (int i = 0; i < 5; i++) {
    ng_connection c;
    ng_id from = ids[i == 2 ? 0 : i], to = ids[(i + 1) % 6 == 2 ? 3 : (i + 1) % 6];
    ng_connection_init(&c);
    ng_connection_set_type(&c, (unsigned)(0x10 * i + 3));
    c.rigidity = (uint8_t)(90 + i);
    c.active_levels = (uint8_t)(0x81 + i);
    c.flags = NG_CONN_BIDIRECTIONAL | NG_CONN_USER_FLAG;
    c.activation_count = 1000u + (uint32_t)i;
    c.pull_strength = -2.5f + (float)i;
    c.preferred_distance = 0.5f + (float)i;
    c.created_at = 111u + (uint32_t)i;
    c.last_activation = 222u + (uint32_t)i;
    c.mutability = (uint8_t)(i % 3);
    c.confidence = (uint8_t)(40 + i);
    c.evidence_count = (uint16_t)(7 + i);
    c.last_update = 333u + (uint32_t)i;
    c.learning_rate = (uint8_t)(50 + i);
    c.decay_rate = (uint8_t)(60 + i);
    c.source_id = 9u + (uint32_t)i;
    for (int s = 0; s < NG_SPACES; s++) c.target_vector[s] = (int16_t)(i * 100 - s * 1000);
    ng_id cid;
    CHECK_STATUS(ng_connection_create(rt, from, to, &c, &cid), NG_OK);
    if (i == 1) ng_connection_delete(rt, cid); /* a hole */
  }
  return rt;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_crc32c(void) {
  CHECK_EQ_INT(ngi_crc32c(0, "123456789", 9), 0xE3069283u);
  CHECK_EQ_INT(ngi_crc32c(0, NULL, 0), 0);
  unsigned char buf[1000];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 31 + 7);
  uint32_t whole = ngi_crc32c(0, buf, sizeof buf);
  for (size_t cut = 0; cut <= 40; cut++) /* pieces and unaligned starts agree */
    CHECK_EQ_INT(ngi_crc32c(ngi_crc32c(0, buf, cut), buf + cut, sizeof buf - cut), whole);
  /* the CPU's instruction (when used) and the portable tables agree */
  CHECK_EQ_INT(ngi_crc32c_portable(0, "123456789", 9), 0xE3069283u);
  int differ = 0;
  for (size_t off = 0; off < 8; off++)
    for (size_t len = 0; off + len <= 300; len++)
      if (ngi_crc32c(7, buf + off, len) != ngi_crc32c_portable(7, buf + off, len)) differ++;
  CHECK_EQ_INT(differ, 0);
  CHECK_EQ_INT(ngi_crc32c_portable(0, buf, sizeof buf), whole);
}

static void test_round_trip_every_field(void) {
  ng_runtime *rt = make_small();
  /* Every CDNA field changed from its default (ng_cdna_set validates them). */
  ng_cdna c;
  ng_cdna_get(rt, &c);
  c.profile_id = NG_PROFILE_CUSTOM;
  c.profile_state = NG_PSTATE_ACTIVE | NG_PSTATE_READONLY;
  c.flags = NG_CDNA_ENABLE_VALIDATION | NG_CDNA_ENABLE_MUTATION;
  for (int s = 0; s < NG_SPACES; s++) {
    c.dimension_ids[s] = (uint8_t)(7 - s);
    c.dimension_flags[s] = (uint8_t)(0xF0 | s);
    c.dimension_scales[s] = 1.5f + (float)s;
    c.bucket_sizes[s] = 2.0f + (float)s;
    c.field_strength_limits[s] = 0.5f + (float)s * 0.0625f;
  }
  c.allowed_connection_types = 0x7FF;
  c.max_out_degree = 123;
  c.max_in_degree = 321;
  c.max_total_degree = 444;
  c.min_weight_threshold = 0.125f;
  c.max_weight_threshold = 0.75f;
  c.min_token_weight = 0.0625f;
  c.max_token_weight = 90.0f;
  c.min_field_radius = 3;
  c.max_field_radius = 250;
  c.min_field_strength = 4;
  c.max_field_strength = 251;
  c.min_connection_weight = 0.03125f;
  c.max_connection_weight = 9.0f;
  c.min_rigidity = 0.0625f;
  c.max_rigidity = 0.9375f;
  c.default_pull_strength = 0.375f;
  c.decay_rate = 0.25f;
  c.mutation_rate = 0.5f;
  c.crossover_rate = 0.625f;
  c.selection_pressure = 0.875f;
  c.evolution_flags = 0xABCD;
  c.trace_sample_rate = 0.3125f;
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);

  const char *p = tpath("every_field.ngs");
  CHECK_STATUS(ng_snapshot_save(rt, p), NG_OK);
  ng_runtime *back = NULL;
  CHECK_STATUS(ng_snapshot_load(p, NULL, &back), NG_OK);
  CHECK(back != NULL);
  if (back) {
    CHECK(same_runtime(rt, back));
    ng_cdna got;
    ng_cdna_get(back, &got);
    ng_cdna want;
    ng_cdna_get(rt, &want);
    CHECK(memcmp(&got, &want, sizeof got) == 0);
    CHECK_EQ_INT(got.max_in_degree, 321);
    CHECK_EQ_INT(got.evolution_flags, 0xABCD);
    CHECK_EQ_INT(ng_token_count(back), 5);
    CHECK_EQ_INT(ng_connection_count(back), 4);
    ng_token t;
    CHECK_STATUS(ng_token_get(back, 3, &t), NG_ENOTFOUND); /* the hole stays a hole */
    CHECK_STATUS(ng_token_get(back, 6, &t), NG_OK);
    CHECK_EQ_INT(NG_ID_DOMAIN(t.id), 5);
    CHECK_EQ_INT(ng_token_get_entity(&t), 8);
    CHECK_EQ_INT(t.timestamp, 0x01020304u + 5);
    CHECK_EQ_INT(t.field_strength, 205);
    CHECK(t.weight == 0.25f + 5 * 13.5f);
    ng_connection x;
    CHECK_STATUS(ng_connection_get(back, 2, &x), NG_ENOTFOUND);
    CHECK_STATUS(ng_connection_get(back, 5, &x), NG_OK);
    CHECK_EQ_INT(x.source_id, 13);
    CHECK_EQ_INT(x.target_vector[7], 400 - 7000);
    CHECK_EQ_INT(x.evidence_count, 11);
    /* the grids follow the file's bucket sizes */
    ng_space_info gi;
    ng_grid_info(back, NG_L3, &gi);
    CHECK(gi.cell_size == 4.0f);
    CHECK_EQ_INT(gi.count, 5);
    ng_runtime_release(back);
  }
  ng_runtime_release(rt);
}

static void test_ids_continue(void) {
  ng_runtime *rt = NULL;
  ng_runtime_new(NULL, &rt);
  ng_id id = 0;
  for (int i = 0; i < 10; i++) ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id);
  ng_token_delete(rt, 10, NULL); /* the highest id is gone: the next id must still be 11 */
  ng_token_delete(rt, 4, NULL);
  ng_connection c;
  ng_connection_init(&c);
  ng_id cid;
  ng_connection_create(rt, 1, 2, &c, &cid);
  ng_connection_init(&c);
  ng_connection_create(rt, 2, 3, &c, &cid);
  ng_connection_delete(rt, cid);
  const char *p = tpath("ids.ngs");
  CHECK_STATUS(ng_snapshot_save(rt, p), NG_OK);
  ng_runtime *back = NULL;
  CHECK_STATUS(ng_snapshot_load(p, NULL, &back), NG_OK);
  if (back) {
    CHECK(same_runtime(rt, back));
    CHECK_STATUS(ng_token_create(back, NULL, NG_TF_COORDS_ALL, &id), NG_OK);
    CHECK_EQ_INT(id, 11);
    ng_connection_init(&c);
    CHECK_STATUS(ng_connection_create(back, 5, 6, &c, &cid), NG_OK);
    CHECK_EQ_INT(cid, 3);
    /* restored adjacency: duplicates are still refused, deletes cascade */
    ng_connection_init(&c);
    CHECK_STATUS(ng_connection_create(back, 1, 2, &c, &cid), NG_EEXIST);
    size_t removed = 0;
    CHECK_STATUS(ng_token_delete(back, 2, &removed), NG_OK);
    CHECK_EQ_INT(removed, 1);
    ng_runtime_release(back);
  }
  ng_runtime_release(rt);
}

static void test_empty(void) {
  ng_runtime *rt = NULL;
  ng_runtime_new(NULL, &rt);
  const char *p = tpath("empty.ngs");
  CHECK_STATUS(ng_snapshot_save(rt, p), NG_OK);
  size_t len = 0;
  unsigned char *b = ngt_read_file(p, &len);
  /* header, CDNA + CRC, two empty sections' CRCs, the ids section (two allocators' states,
   * no slots) + CRC */
  CHECK_EQ_INT(len, 80 + 388 + 4 + 4 + 2 * 48 + 4);
  free(b);
  ng_runtime *back = NULL;
  CHECK_STATUS(ng_snapshot_load(p, NULL, &back), NG_OK);
  if (back) {
    CHECK(same_runtime(rt, back));
    ng_id id = 0;
    CHECK_STATUS(ng_token_create(back, NULL, NG_TF_COORDS_ALL, &id), NG_OK);
    CHECK_EQ_INT(id, 1);
    ng_runtime_release(back);
  }
  ng_runtime_release(rt);
}

/* Deterministic PRNG for the large test. */
static uint32_t rng(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(*s >> 33);
}

/* Sanitizers slow this test ~10x: it then defaults to 25k so the suite stays
 * quick; NG_SNAPSHOT_TEST_TOKENS overrides (the benchmark runs 1M). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LARGE_DEFAULT 25000
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define LARGE_DEFAULT 25000
#endif
#endif
#ifndef LARGE_DEFAULT
#define LARGE_DEFAULT 100000
#endif

static void test_large(void) {
  const char *env = getenv("NG_SNAPSHOT_TEST_TOKENS");
  size_t n = env ? (size_t)strtoul(env, NULL, 10) : LARGE_DEFAULT;
  if (n < 2) n = 2;
  ng_config cfg = {.initial_tokens = n, .initial_connections = n};
  ng_runtime *rt = NULL;
  ng_runtime_new(&cfg, &rt);
  uint64_t seed = 42;
  ng_token t;
  ng_token_init(&t);
  for (size_t i = 0; i < n; i++) {
    for (int s = 0; s < NG_SPACES; s++)
      for (int a = 0; a < 3; a++) t.coords[s][a] = (int16_t)(rng(&seed) & 0xFFFF);
    t.weight = (float)(rng(&seed) % 100);
    ng_id id;
    if (ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id) != NG_OK) break;
  }
  size_t nconn = 0;
  for (size_t i = 1; i <= n; i++) {
    ng_connection c;
    ng_connection_init(&c);
    ng_connection_set_type(&c, rng(&seed) % NG_CONN_TYPES);
    ng_id cid;
    if (ng_connection_create(rt, (uint32_t)i, (uint32_t)(rng(&seed) % n + 1), &c, &cid) == NG_OK)
      nconn++;
  }
  for (uint32_t i = 1; i <= n; i += 7) ng_token_delete(rt, i, NULL);
  const char *p = tpath("large.ngs");
  CHECK_STATUS(ng_snapshot_save(rt, p), NG_OK);
  ng_runtime *back = NULL;
  CHECK_STATUS(ng_snapshot_load(p, NULL, &back), NG_OK);
  if (back) {
    CHECK(same_runtime(rt, back));
    float c[3] = {0, 0, 0};
    ng_hits ha = {0}, hb = {0};
    for (int s = 0; s < NG_SPACES; s += 3) {
      CHECK_STATUS(ng_grid_nearest(rt, s, c, 50, NULL, &ha), NG_OK);
      CHECK_STATUS(ng_grid_nearest(back, s, c, 50, NULL, &hb), NG_OK);
      CHECK_EQ_INT(ha.count, hb.count);
      CHECK(ha.count == hb.count && memcmp(ha.items, hb.items, ha.count * sizeof *ha.items) == 0);
    }
    ng_hits_free(rt, &ha);
    ng_hits_free(back, &hb);
    ng_runtime_release(back);
  }
  unlink(p);
  printf("     large: %zu tokens, %zu connections\n", n, nconn);
  ng_runtime_release(rt);
}

static void test_truncated_every_length(void) {
  ng_runtime *rt = make_small();
  size_t len = 0;
  unsigned char *b = snapshot_bytes(rt, &len);
  CHECK(b != NULL);
  int bad = 0;
  for (size_t cut = 0; b && cut < len; cut++) {
    ng_runtime *x = NULL;
    ng_status st = ngi_snapshot_load_mem(b, cut, NULL, "cut", &x);
    if (st != NG_ECORRUPT || x != NULL) bad++;
    if (x) ng_runtime_release(x);
  }
  CHECK_EQ_INT(bad, 0);
  /* the same through the file loader, at a few lengths, with the message */
  size_t cuts[] = {0, 7, 19, 79, 80, 300, len - 1};
  for (size_t i = 0; b && i < sizeof cuts / sizeof *cuts; i++) {
    const char *p = tpath("cut.ngs");
    write_file(p, b, cuts[i]);
    ng_runtime *x = NULL;
    CHECK_STATUS(ng_snapshot_load(p, NULL, &x), NG_ECORRUPT);
    CHECK(x == NULL);
    if (cuts[i] >= 8) CHECK_CONTAINS(ng_last_error(NULL), "truncated");
    CHECK_CONTAINS(ng_last_error(NULL), p);
  }
  /* one byte too many */
  if (b) {
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, b, len);
    longer[len] = 0;
    ng_runtime *x = NULL;
    CHECK_STATUS(ngi_snapshot_load_mem(longer, len + 1, NULL, NULL, &x), NG_ECORRUPT);
    CHECK_CONTAINS(ng_last_error(NULL), "unexpected bytes");
    free(longer);
  }
  free(b);
  ng_runtime_release(rt);
}

static void test_every_bit_flip(void) {
  ng_runtime *rt = make_small();
  size_t len = 0;
  unsigned char *b = snapshot_bytes(rt, &len);
  CHECK(b != NULL);
  int bad = 0;
  size_t flips = 0;
  for (size_t i = 0; b && i < len; i++) {
    for (int bit = 0; bit < 8; bit++) {
      b[i] ^= (unsigned char)(1u << bit);
      ng_runtime *x = NULL;
      ng_status st = ngi_snapshot_load_mem(b, len, NULL, "flip", &x);
      if (st != NG_ECORRUPT || x != NULL) {
        bad++;
        if (bad < 5) fprintf(stderr, "flip byte %zu bit %d: status %d\n", i, bit, (int)st);
      }
      if (x) ng_runtime_release(x);
      b[i] ^= (unsigned char)(1u << bit);
      flips++;
    }
  }
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(flips, len * 8);
  ng_runtime *x = NULL; /* and the unflipped image still loads */
  CHECK_STATUS(ngi_snapshot_load_mem(b, len, NULL, NULL, &x), NG_OK);
  if (x) {
    CHECK(same_runtime(rt, x));
    ng_runtime_release(x);
  }
  free(b);
  ng_runtime_release(rt);
}

/* Load an edited image and check the status and a message fragment. */
static void expect_load(const unsigned char *b, size_t len, ng_status want, const char *msg) {
  ng_runtime *x = NULL;
  ng_status st = ngi_snapshot_load_mem(b, len, NULL, "edited", &x);
  CHECK_STATUS(st, want);
  if (st != want) fprintf(stderr, "   (expected \"%s\", got \"%s\")\n", msg, ng_last_error(NULL));
  if (want != NG_OK) {
    CHECK(x == NULL);
    CHECK_CONTAINS(ng_last_error(NULL), msg);
  }
  if (x) ng_runtime_release(x);
}

static void test_versions(void) {
  ng_runtime *rt = make_small();
  size_t len = 0;
  unsigned char *b = snapshot_bytes(rt, &len);
  if (!b) return;
  CHECK_EQ_INT(get16(b + H_MAJOR), 3);
  CHECK_EQ_INT(get16(b + H_MINOR), 0);
  /* a newer major version: refused as such */
  put16(b + H_MAJOR, 4);
  fix_crcs(b, len);
  expect_load(b, len, NG_EVERSION, "newer");
  const char *p = tpath("v4.ngs");
  write_file(p, b, len);
  ng_runtime *x = NULL;
  CHECK_STATUS(ng_snapshot_load(p, NULL, &x), NG_EVERSION);
  CHECK_CONTAINS(ng_last_error(NULL), "format version 4.0 is newer");
  put16(b + H_MAJOR, 0);
  fix_crcs(b, len);
  expect_load(b, len, NG_ECORRUPT, "unknown format version");
  put16(b + H_MAJOR, 3);
  fix_crcs(b, len);

  /* a 2.0 file (every token in all eight spaces, scales not read) still
   * loads: make_small places every token in all eight, so as the same store */
  size_t v2len = len;
  unsigned char *v2 = malloc(len);
  memcpy(v2, b, len);
  to_v2(v2, &v2len);
  CHECK_STATUS(ngi_snapshot_load_mem(v2, v2len, NULL, "v2", &x), NG_OK);
  if (x) {
    CHECK(same_runtime(rt, x));
    ng_runtime_release(x);
  }
  free(v2);

  /* a 1.0 file (written before ids had generations) still loads, as the same store */
  size_t v1len = len;
  unsigned char *v1 = malloc(len);
  memcpy(v1, b, len);
  to_v2(v1, &v1len);
  to_v1(rt, v1, &v1len);
  CHECK_STATUS(ngi_snapshot_load_mem(v1, v1len, NULL, "v1", &x), NG_OK);
  if (x) {
    CHECK(same_runtime(rt, x));
    ng_id a = 0, c = 0;
    CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &a), NG_OK);
    CHECK_STATUS(ng_token_create(x, NULL, NG_TF_COORDS_ALL, &c), NG_OK);
    CHECK(a == c);
    ng_runtime_release(x);
  }
  free(v1);

  /* a newer minor version with a longer header: read, extra fields ignored */
  unsigned char *v11 = malloc(len + 8);
  memcpy(v11, b, H_CRC);
  memset(v11 + H_CRC, 0xAB, 8); /* two new header fields */
  memcpy(v11 + H_CRC + 8, b + H_CRC, len - H_CRC);
  put16(v11 + H_MINOR, 1);
  put32(v11 + H_HSIZE, H_SIZE + 8);
  fix_crcs(v11, len + 8);
  expect_load(v11, len + 8, NG_OK, "");
  free(v11);

  /* big-endian writers and foreign files */
  unsigned char save[8];
  memcpy(save, b + H_ENDIAN, 4);
  put32(b + H_ENDIAN, 0x04030201u);
  expect_load(b, len, NG_ECORRUPT, "big-endian");
  memcpy(b + H_ENDIAN, save, 4);
  memcpy(save, b, 8);
  memcpy(b, "SQLite f", 8);
  expect_load(b, len, NG_ECORRUPT, "not a neurograph snapshot");
  memcpy(b, save, 8);
  fix_crcs(b, len);
  expect_load(b, len, NG_OK, "");
  free(b);
  ng_runtime_release(rt);
}

static void test_hostile_headers(void) {
  ng_runtime *rt = make_small();
  size_t len = 0;
  unsigned char *b = snapshot_bytes(rt, &len);
  if (!b) return;
  unsigned char *h = malloc(len), *v1 = malloc(len);
  size_t v1len = len;
  memcpy(v1, b, len);
  to_v1(rt, v1, &v1len);
  const char *p = tpath("hostile.ngs");
  ngt_alloc cnt = NGT_ALLOC_NEVER;
  ng_config cfg = {.alloc = ngt_alloc_fn, .alloc_ud = &cnt};
  struct {
    int major; /* edit the 1.0 or the 2.0 image */
    int field;
    uint64_t value;
    int fix_len;   /* also make the section length agree with the count */
    uint32_t next; /* and, if not 0, the next id too (1.0) */
    const char *msg;
  } cases[] = {
      {1, H_NCONN, (uint64_t)1 << 32, 1, 0, "exceeds the connection slots"},
      {1, H_NCONN, 0xFFFFFFFEull, 1, 0xFFFFFFFFu, "truncated"},
      {1, H_NCONN, 0xFFFFFFFEull, 0, 0, "does not match"},
      {1, H_NTOK, (uint64_t)1 << 32, 1, 0, "exceeds the token slots"},
      {1, H_NTOK, 0xFFFFFFull, 1, 0, "cannot all have ids below"},
      {1, H_NTOK, 0xFFFFFFull, 1, 0x1000000u, "truncated"},
      {1, H_NTOK, 0xFFFFFFull, 0, 0, "does not match"},
      {1, H_NEXT_TOK, 0, 0, 0, "bad next token id"},
      {1, H_NEXT_TOK, 0x1000001ull + 1, 0, 0, "bad next token id"},
      {1, H_NEXT_CONN, 0, 0, 0, "bad next connection id"},
      {1, H_NEXT_CONN, 2, 0, 0, "cannot all have ids below"},
      {1, H_CDNA_LEN, 1ull << 40, 0, 0, "CDNA section length"},
      {1, H_HSIZE, 1u << 31, 0, 0, "bad header size"},
      {1, H_HSIZE, 4000, 0, 0, "truncated"},
      {1, H_FLAGS, 1, 0, 0, "flags"},
      {2, H_NCONN, (uint64_t)1 << 32, 1, 0, "exceeds the connection slots"},
      {2, H_NCONN, 0xFFFFFFFEull, 1, 0, "ids section length"},
      {2, H_NTOK, (uint64_t)1 << 32, 1, 0, "exceeds the token slots"},
      {2, H_NTOK, 0xFFFFFFull, 1, 0, "ids section length"},
      {2, H_IDS_LEN, 0, 0, 0, "ids section length"},
      {2, H_IDS_LEN, 2 * 48 + 4 * 8 - 1, 0, 0, "ids section length"}, /* 5 + 4 records */
      {2, H_IDS_LEN, 1ull << 40, 0, 0, "truncated"},
      {2, H_IDS_LEN, UINT64_MAX, 0, 0, "truncated"},
      {2, H_CDNA_LEN, 1ull << 40, 0, 0, "CDNA section length"},
      {2, H_HSIZE, 4000, 0, 0, "truncated"},
      {2, H_FLAGS, 1, 0, 0, "flags"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    size_t n = cases[i].major == 1 ? v1len : len;
    memcpy(h, cases[i].major == 1 ? v1 : b, n);
    if (cases[i].field == H_HSIZE || cases[i].field == H_FLAGS ||
        (cases[i].major == 1 && (cases[i].field == H_NEXT_TOK || cases[i].field == H_NEXT_CONN)))
      put32(h + cases[i].field, (uint32_t)cases[i].value);
    else
      put64(h + cases[i].field, cases[i].value);
    if (cases[i].fix_len) {
      int len_field = cases[i].field == H_NCONN ? H_CONN_LEN : H_TOK_LEN;
      put64(h + len_field, cases[i].value * (cases[i].field == H_NCONN ? 68u : 64u));
    }
    if (cases[i].next)
      put32(h + (cases[i].field == H_NCONN ? H_NEXT_CONN : H_NEXT_TOK), cases[i].next);
    if (cases[i].field != H_HSIZE) put32(h + H_CRC, ngi_crc32c(0, h, H_CRC));
    write_file(p, h, n);
    cnt.largest = 0;
    ng_runtime *x = NULL;
    ng_status st = ng_snapshot_load(p, &cfg, &x);
    CHECK_STATUS(st, NG_ECORRUPT);
    CHECK_CONTAINS(ng_last_error(NULL), cases[i].msg);
    CHECK(x == NULL);
    CHECK(cnt.largest < 4096); /* nothing sized by the lie */
    CHECK_EQ_INT(cnt.live_bytes, 0);
  }
  free(v1);
  free(h);
  free(b);
  ng_runtime_release(rt);
}

/* Records that pass the checksums but break the store's rules. */
static void test_bad_records(void) {
  ng_runtime *rt = make_small();
  size_t len = 0;
  unsigned char *b = snapshot_bytes(rt, &len);
  if (!b) return;
  unsigned char *e = malloc(len);
  const size_t tok = H_SIZE + 388, conn = tok + 5 * 64 + 4; /* 5 tokens, then 4 connections */
  CHECK_EQ_INT(get64(b + H_NTOK), 5);
  CHECK_EQ_INT(get64(b + H_NCONN), 4);
  float nan = NAN, big = 1000.0f, inf = INFINITY;
  struct {
    size_t off;
    const void *bytes;
    size_t n;
    const char *msg;
  } cases[] = {
      {tok + 54, &nan, 4, "weight"},
      {tok + 64 + 54, &big, 4, "weight"},
      {tok + 48, "\0\0\0", 3, "id 0"},
      {tok + 64 + 48, "\1\0\0", 3, "ascend"},
      {tok + 4 * 64 + 48, "\xFF\x00\x00", 3, "token 255 is beyond the id state"},
      {tok + 52, "\x01\x0C", 2, "entity"},
      {conn + 4 + 8, "\xB0", 1, "unknown connection type"},
      {conn + 4 + 32, "\x03", 1, "mutability"},
      {conn + 4 + 16, &inf, 4, "pull_strength"},
      {conn + 4 + 20, &big, 4, "preferred_distance"},
      {conn + 4 + 42, "\x01", 1, "padding"},
      {conn + 4, "\x03\x00\x00\x00", 4, "from token 3 does not exist"},
      {conn + 4 + 4, "\x63\x00\x00\x00", 4, "to token 99 does not exist"},
      {conn + 68, "\x01\x00\x00\x00", 4, "ascend"},
      {conn + 3 * 68, "\x09\x00\x00\x00", 4, "connection 9 is beyond the id state"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    memcpy(e, b, len);
    memcpy(e + cases[i].off, cases[i].bytes, cases[i].n);
    fix_crcs(e, len);
    expect_load(e, len, NG_ECORRUPT, cases[i].msg);
  }
  /* a duplicate (from, to, type): copy connection 1's endpoints and type into 2 */
  memcpy(e, b, len);
  memcpy(e + conn + 68 + 4, e + conn + 4, 9);
  fix_crcs(e, len);
  expect_load(e, len, NG_ECORRUPT, "duplicates");
  /* a CDNA that fails validation */
  memcpy(e, b, len);
  memset(e + H_SIZE, 0, 4);
  fix_crcs(e, len);
  expect_load(e, len, NG_ECORRUPT, "invalid CDNA");
  free(e);
  free(b);
  ng_runtime_release(rt);
}

static int count_temp_files(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strstr(de->d_name, ".tmp-")) n++;
  closedir(d);
  return n;
}

static void test_io_errors(void) {
  ng_runtime *rt = make_small();
  CHECK_STATUS(ng_snapshot_save(rt, "/nonexistent-dir-ng/x.ngs"), NG_EIO);
  CHECK_CONTAINS(ng_last_error(rt), "/nonexistent-dir-ng/x.ngs");
  CHECK_CONTAINS(ng_last_error(rt), "No such file or directory");
  /* the parent is a regular file */
  write_file(tpath("plain"), (const unsigned char *)"x", 1);
  char under[600];
  snprintf(under, sizeof under, "%s/x.ngs", tpath("plain"));
  CHECK_STATUS(ng_snapshot_save(rt, under), NG_EIO);
  CHECK_CONTAINS(ng_last_error(rt), "Not a directory");
  /* the target is a directory: refused before any temp file is made */
  mkdir(tpath("adir"), 0700);
  write_file(tpath("adir/keep"), (const unsigned char *)"x", 1);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("adir")), NG_EIO);
  CHECK_CONTAINS(ng_last_error(rt), "not a regular file");
  CHECK_EQ_INT(count_temp_files(tmpdir), 0);
  /* a read-only directory (only meaningful when not root) */
  if (geteuid() != 0) {
    mkdir(tpath("ro"), 0500);
    CHECK_STATUS(ng_snapshot_save(rt, tpath("ro/x.ngs")), NG_EIO);
    CHECK_CONTAINS(ng_last_error(rt), "Permission denied");
    CHECK_EQ_INT(count_temp_files(tpath("ro")), 0);
  }
  const char *p = tpath("args.ngs");
  /* bad arguments and unreadable inputs */
  ng_runtime *x = NULL;
  CHECK_STATUS(ng_snapshot_save(NULL, p), NG_EINVAL);
  CHECK_STATUS(ng_snapshot_save(rt, NULL), NG_EINVAL);
  CHECK_STATUS(ng_snapshot_save(rt, ""), NG_EINVAL);
  CHECK_STATUS(ng_snapshot_load(p, NULL, NULL), NG_EINVAL);
  CHECK_STATUS(ng_snapshot_load(NULL, NULL, &x), NG_EINVAL);
  CHECK_STATUS(ng_snapshot_load(tpath("missing.ngs"), NULL, &x), NG_EIO);
  CHECK_CONTAINS(ng_last_error(NULL), "missing.ngs");
  CHECK_CONTAINS(ng_last_error(NULL), "No such file");
  CHECK_STATUS(ng_snapshot_load(tmpdir, NULL, &x), NG_EIO);
  CHECK_CONTAINS(ng_last_error(NULL), "not a regular file");
  CHECK(x == NULL);
  CHECK_EQ_INT(count_temp_files(tmpdir), 0);
  ng_runtime_release(rt);
}

/* Every allocation of a save and of a load fails in turn: each failure is
 * NG_ENOMEM with nothing leaked, and the file on disk stays valid. */
static void test_alloc_failures(void) {
  ng_runtime *src = make_small();
  const char *p = tpath("alloc.ngs");
  CHECK_STATUS(ng_snapshot_save(src, p), NG_OK);
  int loads_ok = 0;
  for (long n = 1; n < 5000 && !loads_ok; n++) {
    ngt_alloc cnt = NGT_ALLOC_NEVER;
    ngt_alloc_arm(&cnt, n - 1, 1); /* refuse the nth request only */
    ng_config cfg = {.alloc = ngt_alloc_fn, .alloc_ud = &cnt};
    ng_runtime *x = NULL;
    ng_status st = ng_snapshot_load(p, &cfg, &x);
    if (st == NG_OK) {
      loads_ok = 1;
      cnt.fail_after = -1; /* queries may allocate (lazily built indexes) */
      CHECK(same_runtime(src, x));
      ng_runtime_release(x);
    } else {
      CHECK_STATUS(st, NG_ENOMEM);
      CHECK(x == NULL);
    }
    CHECK_EQ_INT(cnt.live_bytes, 0);
    CHECK_EQ_INT(cnt.live_blocks, 0);
  }
  CHECK(loads_ok);
  /* saving with an allocator that fails after the runtime exists */
  ngt_alloc cnt = NGT_ALLOC_NEVER;
  ng_config cfg = {.alloc = ngt_alloc_fn, .alloc_ud = &cnt};
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_snapshot_load(p, &cfg, &rt), NG_OK);
  /* a failed save leaves the previous snapshot untouched */
  const char *p2 = tpath("alloc2.ngs");
  CHECK_STATUS(ng_snapshot_save(rt, p2), NG_OK);
  size_t l1 = 0;
  unsigned char *before = ngt_read_file(p2, &l1);
  ng_id extra_id = 0;
  ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &extra_id);
  int saves_ok = 0;
  for (long n = 1; n < 50 && rt && !saves_ok; n++) {
    ngt_alloc_arm(&cnt, n - 1, 1); /* the nth request from here */
    long long live = cnt.live_bytes;
    ng_status st = ng_snapshot_save(rt, p2);
    if (st == NG_OK) {
      saves_ok = 1;
    } else {
      CHECK_STATUS(st, NG_ENOMEM);
      size_t l2 = 0;
      unsigned char *after = ngt_read_file(p2, &l2);
      CHECK(before && after && l1 == l2 && memcmp(before, after, l1) == 0);
      free(after);
    }
    CHECK_EQ_INT(cnt.live_bytes, live);
    CHECK_EQ_INT(count_temp_files(tmpdir), 0);
  }
  CHECK(saves_ok);
  free(before);
  ng_runtime_release(rt);
  CHECK_EQ_INT(cnt.live_bytes, 0);
  ng_runtime_release(src);
}

/* Saving while another thread writes: every snapshot is one consistent
 * point in time (the loader checks endpoints, counts and ids). */
typedef struct writer_ctx {
  ng_runtime *rt;
  atomic_int stop;
} writer_ctx;

static void *writer_main(void *ud) {
  writer_ctx *w = ud;
  ng_id prev = 0, id = 0;
  /* bounded, so a fast writer cannot grow the store without limit while the
   * saves run (each save also fsyncs) */
  for (int n = 0; n < 20000 && !atomic_load(&w->stop); n++) {
    if (ng_token_create(w->rt, NULL, NG_TF_COORDS_ALL, &id) != NG_OK) break;
    if (prev) {
      ng_connection c;
      ng_connection_init(&c);
      ng_connection_create(w->rt, prev, id, &c, NULL);
    }
    if (id % 5 == 0) ng_token_delete(w->rt, prev, NULL);
    prev = id;
  }
  return NULL;
}

static void test_save_while_writing(void) {
  ng_runtime *rt = NULL;
  ng_runtime_new(NULL, &rt);
  writer_ctx w = {.rt = rt};
  pthread_t th;
  pthread_create(&th, NULL, writer_main, &w);
  const char *p = tpath("busy.ngs");
  for (int i = 0; i < 10; i++) {
    CHECK_STATUS(ng_snapshot_save(rt, p), NG_OK);
    ng_runtime *x = NULL;
    CHECK_STATUS(ng_snapshot_load(p, NULL, &x), NG_OK);
    if (!x) continue;
    ng_stats s;
    ng_runtime_stats(x, &s);
    CHECK(s.next_token_id >= s.tokens + 1);
    ng_runtime_release(x);
  }
  atomic_store(&w.stop, 1);
  pthread_join(th, NULL);
  ng_runtime_release(rt);
}

/* A save from inside an iteration callback (the read lock is recursive). */
static bool save_inside(const ng_token *t, ng_id id, void *ud) {
  (void)t;
  (void)id;
  ng_runtime *rt = ud;
  CHECK_STATUS(ng_snapshot_save(rt, tpath("inside.ngs")), NG_OK);
  return false;
}

static void test_save_inside_callback(void) {
  ng_runtime *rt = make_small();
  CHECK_STATUS(ng_token_each(rt, save_inside, rt), NG_OK);
  ng_runtime *x = NULL;
  CHECK_STATUS(ng_snapshot_load(tpath("inside.ngs"), NULL, &x), NG_OK);
  if (x) {
    CHECK(same_runtime(rt, x));
    ng_runtime_release(x);
  }
  ng_runtime_release(rt);
}

/* Inputs the fuzzer found or that were written by hand: none may crash; a
 * load either fails cleanly or gives a runtime that saves and reloads. */
static void test_corpus(void) {
  char dir[1024];
  const char *env = getenv("NG_SNAPSHOT_CORPUS");
  if (env) {
    snprintf(dir, sizeof dir, "%s", env);
  } else {
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    if (slash) snprintf(slash + 1, sizeof dir - (size_t)(slash + 1 - dir), "corpus");
  }
  DIR *d = opendir(dir);
  CHECK(d != NULL);
  if (!d) return;
  int files = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    char p[1400];
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    ng_runtime *x = NULL;
    ng_status st = ng_snapshot_load(p, NULL, &x);
    files++;
    CHECK(st == NG_OK || st == NG_ECORRUPT || st == NG_EVERSION);
    if (st != NG_OK) {
      CHECK(x == NULL);
      CHECK(strlen(ng_last_error(NULL)) > 0);
    } else if (x) {
      ng_runtime *y = NULL;
      CHECK_STATUS(ng_snapshot_save(x, tpath("corpus.ngs")), NG_OK);
      CHECK_STATUS(ng_snapshot_load(tpath("corpus.ngs"), NULL, &y), NG_OK);
      if (y) CHECK(same_runtime(x, y));
      ng_runtime_release(y);
      ng_runtime_release(x);
    }
  }
  closedir(d);
  printf("     corpus: %d files\n", files);
  CHECK(files > 0);
}

static void cleanup(void) {
  DIR *d = opendir(tmpdir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char p[600];
    snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
    if (unlink(p) != 0) {
      char q[700];
      snprintf(q, sizeof q, "%s/keep", p);
      unlink(q);
      rmdir(p);
    }
  }
  closedir(d);
  rmdir(tmpdir);
}

int main(void) {
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_crc32c);
  RUN(test_round_trip_every_field);
  RUN(test_ids_continue);
  RUN(test_empty);
  RUN(test_large);
  RUN(test_truncated_every_length);
  RUN(test_every_bit_flip);
  RUN(test_versions);
  RUN(test_hostile_headers);
  RUN(test_bad_records);
  RUN(test_io_errors);
  RUN(test_alloc_failures);
  RUN(test_save_while_writing);
  RUN(test_save_inside_callback);
  RUN(test_corpus);
  cleanup();
  return ngt_done("test_snapshot");
}

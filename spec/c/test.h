/* A minimal test harness for the C tests: CHECK macros that report the
 * failing expression with file and line, and a summary line per program. */
#ifndef NG_TEST_H
#define NG_TEST_H

#include "neurograph.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int ngt_failures = 0;
static int ngt_checks = 0;

/* xorshift64: deterministic test data from a seed (never 0); the top 32 bits. */
static inline uint32_t ngt_rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return (uint32_t)(*s >> 32);
}

/* The whole file at path in a malloc'd buffer (one byte more than *len, so
 * never NULL for an empty file), or NULL when it cannot be opened. */
static inline unsigned char *ngt_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(n > 0 ? (size_t)n + 1 : 1);
  *len = b ? fread(b, 1, n > 0 ? (size_t)n : 0, f) : 0;
  fclose(f);
  return b;
}

/* Monotonic seconds, for tests that run a workload for a set time. */
static inline double ngt_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define CHECK(cond)                                                              \
  do {                                                                           \
    ngt_checks++;                                                                \
    if (!(cond)) {                                                               \
      ngt_failures++;                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
    }                                                                            \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                       \
  do {                                                                           \
    long long ngt_a = (long long)(a), ngt_b = (long long)(b);                    \
    ngt_checks++;                                                                \
    if (ngt_a != ngt_b) {                                                        \
      ngt_failures++;                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, \
              __LINE__, #a, #b, ngt_a, ngt_b);                                   \
    }                                                                            \
  } while (0)

#define CHECK_STATUS(expr, want)                                                 \
  do {                                                                           \
    int ngt_s = (int)(expr);                                                     \
    ngt_checks++;                                                                \
    if (ngt_s != (int)(want)) {                                                  \
      ngt_failures++;                                                            \
      fprintf(stderr, "%s:%d: %s returned %d, wanted %s\n", __FILE__, __LINE__,   \
              #expr, ngt_s, #want);                                              \
    }                                                                            \
  } while (0)

#define CHECK_STR(a, b)                                                          \
  do {                                                                           \
    const char *ngt_x = (a), *ngt_y = (b);                                       \
    ngt_checks++;                                                                \
    if (!ngt_x || !ngt_y || strcmp(ngt_x, ngt_y) != 0) {                         \
      ngt_failures++;                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s == \"%s\" (got \"%s\")\n",         \
              __FILE__, __LINE__, #a, ngt_y ? ngt_y : "(null)",                  \
              ngt_x ? ngt_x : "(null)");                                         \
    }                                                                            \
  } while (0)

/* Substring check, for error messages. */
#define CHECK_CONTAINS(hay, needle)                                              \
  do {                                                                           \
    const char *ngt_h = (hay), *ngt_n = (needle);                                \
    ngt_checks++;                                                                \
    if (!ngt_h || !strstr(ngt_h, ngt_n)) {                                       \
      ngt_failures++;                                                            \
      fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,        \
              __LINE__, ngt_h ? ngt_h : "(null)", ngt_n);                        \
    }                                                                            \
  } while (0)

/* Run one test function, naming it in the output. */
#define RUN(fn)                                                                  \
  do {                                                                           \
    int ngt_before = ngt_failures;                                               \
    fn();                                                                        \
    printf("%s %s\n", ngt_failures == ngt_before ? "ok  " : "FAIL", #fn);        \
  } while (0)

/* Print the summary and return the exit status for main. */
/* A token at (x, y, z) in L1 (the rest default), created or the test fails. */
static inline ng_id ngt_token_at(ng_runtime *rt, float x, float y, float z) {
  ng_token t;
  ng_token_init(&t);
  ng_token_set_coords(&t, NG_L1, x, y, z);
  ng_id id = 0;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);
  return id;
}

/* A connection from -> to of `type` (the rest default), created or the test fails. */
static inline ng_id ngt_link(ng_runtime *rt, ng_id from, ng_id to, unsigned type) {
  ng_connection c;
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_set_type(&c, type), NG_OK);
  ng_id id = 0;
  CHECK_STATUS(ng_connection_create(rt, from, to, &c, &id), NG_OK);
  return id;
}

static inline int ngt_done(const char *prog) {
  printf("%s: %d checks, %d failed\n", prog, ngt_checks, ngt_failures);
  return ngt_failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif

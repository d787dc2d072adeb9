/* Shared test doubles for the C tests: one configurable allocator (refuse after N requests,
 * once or for good, cap a single block, count what is live) and one settable fake clock. */
#ifndef NG_TEST_ALLOC_H
#define NG_TEST_ALLOC_H

#include <stdint.h>
#include <stdlib.h>

/* ---- the allocator (ng_alloc_fn / lua_Alloc signature) --------------------- */

/* A request is any call with nsize > 0: a malloc, a growth or a shrink. Frees (nsize 0) are
 * never refused or counted as requests; they only update the live counters. */
typedef struct ngt_alloc {
  long fail_after;  /* requests that succeed before refusals start; < 0: never refuse */
  int fail_once;    /* 1: refuse only request fail_after + 1; 0: refuse every one from there */
  int paused;       /* 1: requests are neither counted nor refused (the checks themselves
                     * allocate, and must not move the failure point) */
  size_t cap_bytes; /* refuse any single request above this size; 0: no cap */
  long calls;       /* requests counted since ngt_alloc_arm (or since creation) */
  long failures;    /* requests refused since ngt_alloc_arm (or since creation) */
  long live_blocks; /* from the sizes the runtime reports, so a wrong osize shows up */
  long long live_bytes;
  size_t largest; /* the largest request that succeeded */
} ngt_alloc;

/* An allocator that never refuses and has counted nothing. (A zeroed struct would refuse the
 * first request: fail_after 0.) */
#define NGT_ALLOC_NEVER                                                                            \
  { .fail_after = -1 }

/* guarantees: from now on, `fail_after` requests succeed and then the next one (fail_once) or
 * every later one fails; the request and failure counters restart at 0. fail_after < 0 never
 * fails. The live counters and `paused` are kept. */
static inline void ngt_alloc_arm(ngt_alloc *a, long fail_after, int fail_once) {
  a->fail_after = fail_after;
  a->fail_once = fail_once;
  a->calls = 0;
  a->failures = 0;
}

/* needs: ud an ngt_alloc. guarantees: realloc/free semantics, except that a refused request
 * returns NULL and leaves ptr untouched; the counters follow every block that changes hands. */
static inline void *ngt_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize) {
  ngt_alloc *a = ud;
  if (nsize == 0) {
    if (ptr) {
      a->live_blocks--;
      a->live_bytes -= (long long)osize;
    }
    free(ptr);
    return NULL;
  }
  if (!a->paused) {
    long n = ++a->calls; /* this request's number, 1-based */
    if (a->fail_after >= 0 && (a->fail_once ? n == a->fail_after + 1 : n > a->fail_after)) {
      a->failures++;
      return NULL;
    }
  }
  if (a->cap_bytes && nsize > a->cap_bytes) {
    a->failures++;
    return NULL;
  }
  void *q = realloc(ptr, nsize);
  if (!q) return NULL;
  if (ptr)
    a->live_bytes -= (long long)osize;
  else
    a->live_blocks++;
  a->live_bytes += (long long)nsize;
  if (nsize > a->largest) a->largest = nsize;
  return q;
}

/* ---- the clock (ng_clock_fn signature) ------------------------------------- */

/* The default fake time, in Unix seconds (November 2023). */
#define NGT_NOW_DEFAULT UINT64_C(1700000000)

/* Unix seconds the fake clock returns; tests move it and put it back. */
static uint64_t ngt_now = NGT_NOW_DEFAULT;

/* guarantees: ngt_now; ud is ignored. */
static inline uint64_t ngt_clock(void *ud) {
  (void)ud;
  return ngt_now;
}

#endif

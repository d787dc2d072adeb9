/* The runtime's operation counters and query latency histograms (metrics.c reads them out). */
#ifndef NG_CORE_METRICS_H
#define NG_CORE_METRICS_H

#include "neurograph.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Latency buckets: 4 per power of two of nanoseconds (bucket b holds
 * durations below 2^((b + 1) / 4) ns, about 19% wide), up to 2^40 ns (18
 * minutes); the last bucket takes everything longer. Fixed size: a query
 * never allocates to be counted. */
#define NGI_LAT_SUB 4
#define NGI_LAT_BUCKETS (40 * NGI_LAT_SUB)

typedef struct ngi_qcounters {
  atomic_uint_least64_t count, total_ns;
  atomic_uint_least64_t bucket[NGI_LAT_BUCKETS];
} ngi_qcounters;

/* Every counter is a relaxed atomic: queries run in parallel under the read
 * lock, and a reader (ng_runtime_stats) needs each figure whole, not a
 * consistent set. `on` mirrors NG_CDNA_ENABLE_METRICS of the runtime's CDNA
 * (ngi_metrics_sync after every change of it), so a query tests one flag it
 * can read without the lock and, when off, does nothing else. */
typedef struct ngi_metrics {
  atomic_bool on;
  atomic_uint_least64_t writes; /* write-lock holds (a transaction's writes count one each) */
  ngi_qcounters query[NG_QUERY_KINDS];
} ngi_metrics;

/* After rt->cdna changed (creation, ng_cdna_set, a rollback): follow its flag. */
static inline void ngi_metrics_sync(ngi_metrics *m, const ng_cdna *c) {
  atomic_store_explicit(&m->on, (c->flags & NG_CDNA_ENABLE_METRICS) != 0, memory_order_relaxed);
}

static inline uint64_t ngi_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* At a query's entry: its start time, or 0 when metrics are off (no clock read). */
static inline uint64_t ngi_query_begin(ngi_metrics *m) {
  if (!atomic_load_explicit(&m->on, memory_order_relaxed)) return 0;
  return ngi_mono_ns();
}

/* At a query's exit (t0 from ngi_query_begin): count it. metrics.c. */
void ngi_query_record(ngi_metrics *m, int kind, uint64_t t0);
static inline void ngi_query_end(ngi_metrics *m, int kind, uint64_t t0) {
  if (t0 != 0) ngi_query_record(m, kind, t0);
}

/* A write-lock hold, counted when metrics are on. */
static inline void ngi_count_write(ngi_metrics *m) {
  if (atomic_load_explicit(&m->on, memory_order_relaxed))
    atomic_fetch_add_explicit(&m->writes, 1, memory_order_relaxed);
}

#endif /* NG_CORE_METRICS_H */

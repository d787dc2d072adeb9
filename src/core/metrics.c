/* Metrics: the query latency histograms, and the extended figures of ng_runtime_stats
 * (memory by component, operation counters, latency summaries). */
#include "internal.h"
#include "conn_table.h"
#include "grid_index.h"

#include <stdarg.h>
#include <stdio.h>

const char *ng_query_name(int kind) {
  static const char *const names[NG_QUERY_KINDS] = {"range", "neighbours", "nearest", "box"};
  return kind >= 0 && kind < NG_QUERY_KINDS ? names[kind] : NULL;
}

/* The bucket of a duration: 4 per power of two (the top two bits below the
 * leading one pick the quarter). */
static unsigned lat_bucket(uint64_t ns) {
  if (ns < 2) return 0;
  unsigned lg = 63u - (unsigned)__builtin_clzll(ns);
  unsigned quarter = lg >= 2 ? (unsigned)(ns >> (lg - 2)) & 3u : (unsigned)(ns << (2 - lg)) & 3u;
  unsigned b = lg * NGI_LAT_SUB + quarter;
  return b < NGI_LAT_BUCKETS ? b : NGI_LAT_BUCKETS - 1;
}

/* The upper edge of bucket b, in nanoseconds. */
static double lat_edge(unsigned b) {
  unsigned lg = b / NGI_LAT_SUB, quarter = b % NGI_LAT_SUB;
  return (double)((uint64_t)1 << lg) * (1.0 + (quarter + 1) / 4.0);
}

void ngi_query_record(ngi_metrics *m, int kind, uint64_t t0) {
  uint64_t ns = ngi_mono_ns() - t0;
  ngi_qcounters *q = &m->query[kind];
  atomic_fetch_add_explicit(&q->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&q->total_ns, ns, memory_order_relaxed);
  atomic_fetch_add_explicit(&q->bucket[lat_bucket(ns)], 1, memory_order_relaxed);
}

/* The duration below which a fraction `f` of the counted queries fall. */
static double lat_quantile(const uint64_t *buckets, uint64_t n, double f) {
  uint64_t rank = (uint64_t)(f * (double)n + 0.999999), seen = 0;
  if (rank == 0) rank = 1;
  for (unsigned b = 0; b < NGI_LAT_BUCKETS; b++) {
    seen += buckets[b];
    if (seen >= rank) return lat_edge(b);
  }
  return lat_edge(NGI_LAT_BUCKETS - 1);
}

static void query_summary(ngi_qcounters *q, ng_query_stats *out) {
  uint64_t b[NGI_LAT_BUCKETS], n = 0;
  /* Each figure is read once; the buckets' own sum is the count the
   * quantiles use, so they agree with each other even while queries run. */
  for (unsigned i = 0; i < NGI_LAT_BUCKETS; i++) {
    b[i] = atomic_load_explicit(&q->bucket[i], memory_order_relaxed);
    n += b[i];
  }
  memset(out, 0, sizeof *out);
  out->count = atomic_load_explicit(&q->count, memory_order_relaxed);
  out->total_seconds = (double)atomic_load_explicit(&q->total_ns, memory_order_relaxed) / 1e9;
  if (out->count == 0 || n == 0) return;
  out->mean_seconds = out->total_seconds / (double)out->count;
  out->p50_seconds = lat_quantile(b, n, 0.50) / 1e9;
  out->p99_seconds = lat_quantile(b, n, 0.99) / 1e9;
}

static size_t idgen_memory(const ngi_idgen *g) {
  return (g->ready_cap + g->pending_cap) * sizeof(uint32_t);
}

/* The bytes of g's index (what its arrays hold room for). Takes the grid's
 * query lock: a query may be building it under the runtime's read lock. */
static size_t grid_memory(ngi_grid *g) {
  if (!g) return 0;
  ngi_grid_hold(g);
  const mainix *m = &g->m;
  size_t n = 0;
  if (m->starts) n += (m->ncell + 1) * sizeof(uint32_t);
  n += m->n * sizeof(uint64_t);
  n += m->nsub * sizeof(uint32_t) + m->stale_words * sizeof(uint64_t);
  n += g->side_slab * sizeof(side_ent) + g->side_cap * sizeof(uint32_t) +
       g->side_heads_n * sizeof(uint32_t);
  ngi_grid_release(g);
  return n;
}

void ngi_stats_extend(ng_runtime *rt, ng_stats *out) {
  const ngi_token_table *t = &rt->tokens;
  out->memory.token_records = t->cap * sizeof(ng_token);
  out->memory.token_slot_maps = t->slot_cap * (sizeof(uint64_t) + 1) + idgen_memory(&t->ids);
  for (int s = 0; s < NG_SPACES; s++)
    out->memory.space_index[s] = grid_memory(rt->grids[s]);
  const ngi_conns *c = rt->conns;
  out->memory.connections = c->rec_cap * sizeof(ng_connection) + c->meta_cap * sizeof(conn_meta) +
                            c->idmap_cap * sizeof(idmap_entry) + c->adj_cap * sizeof(adj_entry) +
                            idgen_memory(&c->ids);
  out->memory.journal = rt->txn.log_cap + rt->txn.frames_cap * sizeof(ngi_txn_frame);
  out->metrics = atomic_load_explicit(&rt->metrics.on, memory_order_relaxed);
  out->writes = atomic_load_explicit(&rt->metrics.writes, memory_order_relaxed);
  for (int k = 0; k < NG_QUERY_KINDS; k++)
    query_summary(&rt->metrics.query[k], &out->queries[k]);
}

/* ---- the Prometheus text format ----------------------------------------------- */

/* An snprintf that appends to buf[0..size) at *len, counting what did not fit. */
typedef struct text {
  char *buf;
  size_t size, len;
} text;

static void emit(text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void emit(text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = t->len < t->size ? t->size - t->len : 0;
  int n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0) t->len += (size_t)n;
}

static void head(text *t, const char *name, const char *type, const char *help) {
  emit(t, "# HELP neurograph_%s %s\n# TYPE neurograph_%s %s\n", name, help, name, type);
}

size_t ng_metrics_format(ng_runtime *rt, char *buf, size_t size) {
  text t = {buf, size, 0};
  if (buf && size) buf[0] = '\0';
  ng_stats s;
  if (ng_runtime_stats(rt, &s) != NG_OK) return 0;
  head(&t, "tokens", "gauge", "Live tokens.");
  emit(&t, "neurograph_tokens %zu\n", s.tokens);
  head(&t, "connections", "gauge", "Live connections.");
  emit(&t, "neurograph_connections %zu\n", s.connections);
  head(&t, "tokens_placed", "gauge", "Tokens placed in each space.");
  for (int sp = 0; sp < NG_SPACES; sp++)
    emit(&t, "neurograph_tokens_placed{space=\"%s\"} %zu\n", ng_space_name(sp), s.placed[sp]);
  head(&t, "memory_bytes", "gauge", "Bytes allocated by the runtime now.");
  emit(&t, "neurograph_memory_bytes %zu\n", s.bytes_in_use);
  head(&t, "memory_peak_bytes", "gauge", "Most bytes allocated at once.");
  emit(&t, "neurograph_memory_peak_bytes %zu\n", s.bytes_peak);
  head(&t, "memory_component_bytes", "gauge", "Bytes held by each part of the store.");
  const struct {
    const char *name;
    size_t v;
  } comp[] = {{"token_records", s.memory.token_records},
              {"token_slot_maps", s.memory.token_slot_maps},
              {"connections", s.memory.connections},
              {"journal", s.memory.journal}};
  for (size_t i = 0; i < sizeof comp / sizeof comp[0]; i++)
    emit(&t, "neurograph_memory_component_bytes{component=\"%s\"} %zu\n", comp[i].name, comp[i].v);
  head(&t, "space_index_bytes", "gauge", "Bytes held by each space's grid index.");
  for (int sp = 0; sp < NG_SPACES; sp++)
    emit(&t, "neurograph_space_index_bytes{space=\"%s\"} %zu\n", ng_space_name(sp),
         s.memory.space_index[sp]);
  head(&t, "metrics_enabled", "gauge", "1 when the CDNA flag NG_CDNA_ENABLE_METRICS is set.");
  emit(&t, "neurograph_metrics_enabled %d\n", s.metrics ? 1 : 0);
  head(&t, "writes_total", "counter", "Write calls (each write inside a transaction counts).");
  emit(&t, "neurograph_writes_total %llu\n", (unsigned long long)s.writes);
  head(&t, "query_duration_seconds", "summary", "Spatial query latency by query type.");
  for (int k = 0; k < NG_QUERY_KINDS; k++) {
    const ng_query_stats *q = &s.queries[k];
    const char *n = ng_query_name(k);
    emit(&t, "neurograph_query_duration_seconds{query=\"%s\",quantile=\"0.5\"} %.9g\n", n,
         q->p50_seconds);
    emit(&t, "neurograph_query_duration_seconds{query=\"%s\",quantile=\"0.99\"} %.9g\n", n,
         q->p99_seconds);
    emit(&t, "neurograph_query_duration_seconds_sum{query=\"%s\"} %.9g\n", n, q->total_seconds);
    emit(&t, "neurograph_query_duration_seconds_count{query=\"%s\"} %llu\n", n,
         (unsigned long long)q->count);
  }
  return t.len;
}

/* Metrics: the query latency histograms, and the extended figures of ng_runtime_stats
 * (memory by component, operation counters, latency summaries). */
#include "internal.h"
#include "conn_table.h"
#include "grid_index.h"

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
  if (m->sub_at) n += m->ncell * sizeof(uint32_t);
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

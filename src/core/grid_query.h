/* The grid queries' shared part: the query, its result keys and the cell
 * geometry, used by the cell walk (grid_walk.c), nearest-k (grid_nearest.c),
 * the results (grid_results.c) and the entry points (grid_query.c). */
#ifndef NG_CORE_GRID_QUERY_H
#define NG_CORE_GRID_QUERY_H

#include "grid_filter.h"
#include "grid_index.h"

#include <string.h>

enum { Q_SPHERE, Q_BOX, Q_ALL };

typedef struct query {
  ng_runtime *rt;
  const ngi_grid *g;
  int kind;
  double c[3];   /* centre, decoded units */
  double radius; /* Q_SPHERE */
  /* The same query in biased raw units, with a margin of one raw unit (far
   * more than decoding can round), so most misses are rejected before any
   * coordinate is decoded: */
  double cu[3];          /* centre */
  double rawlim2;        /* Q_SPHERE: squared radius plus margin */
  double rawedge2;       /* Q_SPHERE: squared radius less the margin (-1: none) */
  double blo[3], bhi[3]; /* Q_BOX: the box */
  float lo[3], hi[3];    /* Q_BOX, closed */
  uint32_t exclude;      /* slot (local id) left out (neighbors), 0 = none */
  const ngi_filter *filter;
  bool filtered;       /* the filter tests anything: consider() asks it */
  size_t k;            /* keep only the best k (a max-heap in out); 0 = keep all */
  bool side_each_cell; /* probe the side table per visited cell (else all scanned once) */
  ng_hits *out;
} query;

/* While a query runs, each kept hit's id field holds one integer key, its
 * (distance, slot): distances are never negative or NaN, so their bit patterns
 * order like their values, and the key orders like the result. One integer
 * compare then replaces a float compare with an id tie-break (several
 * unpredictable branches) in the nearest-k heap and the final sort; the hits
 * are decoded once at the end. */
static inline uint64_t make_key(uint32_t id, float d) {
  uint32_t bits;
  memcpy(&bits, &d, sizeof bits);
  return (uint64_t)bits << 32 | id;
}

static inline uint64_t key_of(const ng_hit *h) {
  return h->id;
}

static inline bool key_less(const ng_hit *a, const ng_hit *b) {
  return key_of(a) < key_of(b);
}

/* The distance of a kept hit (the nearest-k heap's top: its worst). */
static inline float key_distance(const ng_hit *h) {
  uint32_t bits = (uint32_t)(key_of(h) >> 32);
  float d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

/* The one inclusion rule of radius queries: a point is within the radius iff
 * the distance reported for it (the double distance rounded to float, as
 * ng_hit keeps it) is <= the radius, so a hit at exactly the radius is kept
 * whatever the rounding of its decoded coordinates. Given a lower bound on a
 * distance instead, it prunes only sure misses: rounding is monotonic. */
static inline bool beyond_radius(const query *q, double d) {
  return (double)ngi_to_float(d) > q->radius;
}
/* The squared distance threshold of consider()'s raw pre-test against a full
 * nearest-k heap (INFINITY while the heap is filling or without k). */
static inline double raw_top2(const query *q) {
  if (!q->k || q->out->count < q->k) return INFINITY;
  double top = (double)key_distance(&q->out->items[0]) * q->g->rpu + 1.0;
  return top * top;
}
/* Decoded extent of box cell k on axis a. Main entries lie inside their cell;
 * side entries beyond the box belong to its edge cells, so when they are read
 * per cell the edge cells reach to infinity. */
static inline void cell_extent(const query *q, int a, uint32_t k, double *lo, double *hi) {
  const ngi_grid *g = q->g;
  const mainix *m = &g->m;
  uint32_t u0 = (m->c0[a] + k) << m->shift[a];
  uint32_t u1 = u0 + (1u << m->shift[a]) - 1u;
  bool open = q->side_each_cell;
  *lo = open && k == 0 ? -INFINITY : (double)ngi_decode_u(g, u0);
  *hi = open && k + 1 >= m->nc[a] ? INFINITY : (double)ngi_decode_u(g, u1 > 65535 ? 65535 : u1);
}

/* Gap along axis a between the centre and cell k (0 inside). Uses the
 * rounding of consider(), so it never exceeds the gap of a point of the cell. */
static inline double axis_gap(const query *q, int a, uint32_t k) {
  double lo, hi;
  cell_extent(q, a, k, &lo, &hi);
  return q->c[a] < lo ? lo - q->c[a] : q->c[a] > hi ? q->c[a] - hi : 0.0;
}

/* True if no point of a cell with these axis gaps can be kept: all beyond the
 * radius, or, once a nearest-k heap is full, all strictly worse than its top. */
static inline bool cell_out(const query *q, double gx, double gy, double gz) {
  double d = sqrt(gx * gx + gy * gy + gz * gz);
  if (q->kind == Q_SPHERE) return beyond_radius(q, d);
  if (q->kind == Q_ALL && q->k && q->out->count >= q->k)
    return ngi_to_float(d) > key_distance(&q->out->items[0]);
  return false;
}
#define PREFETCH_LINES 16 /* cache lines of entries requested per run of cells (the first) */
#define PREFETCH_SUB_LINES 8 /* cache lines of a crowded cell's sub-directory requested */

/* Request the entries of the cells idx0..idx1 (a run along z: contiguous),
 * to overlap their cache misses with other work; reads their directory
 * entries, which should have been requested earlier (prefetch_dir): the
 * first PREFETCH_LINES lines of them. A run holding more has a crowded cell
 * (clustered points), visited by sub-cells through its sub-directory: its
 * first entries would be the wrong ones, and the sub-directory, then its
 * sub-cells' entries, were two misses one after the other in each such cell
 * (most of a clustered query's time). So a crowded cell's sub-directory is
 * requested instead, and a cell too big for its entries to be requested
 * whole ends the run's requests (visit_subcell_range requests its
 * sub-cells' entries). */
static inline void prefetch_entries(const mainix *m, size_t idx0, size_t idx1) {
  if (!m->n) return;
  size_t b = m->starts[idx0], e = m->starts[idx1 + 1];
  if (e - b > PREFETCH_LINES * 8) {
    e = b + PREFETCH_LINES * 8;
    for (size_t idx = idx0; m->sub && idx <= idx1; idx++) {
      size_t cb = m->starts[idx], ce = m->starts[idx + 1];
      if (ce - cb <= NGI_LEAF) continue;
      const uint32_t *sub = ngi_sub_dir(m, idx);
      size_t nsub = ((size_t)1 << (3 * ngi_sub_depth(m, ce - cb))) + 1;
      if (nsub > 16 * PREFETCH_SUB_LINES) nsub = 16 * PREFETCH_SUB_LINES;
      for (size_t k = 0; k < nsub; k += 16)
        NGI_PREFETCH_READ(sub + k);
      NGI_PREFETCH_READ(sub + nsub - 1);
      if (ce - cb > 2 * NGI_LEAF && cb < e) e = cb;
    }
  }
  for (size_t k = b; k < e; k += 8)
    NGI_PREFETCH_READ(&m->ent[k]);
  if (e > b) NGI_PREFETCH_READ(&m->ent[e - 1]);
}

/* Request the directory entries of the cells idx0..idx1 (a run along z). */
static inline void prefetch_dir(const mainix *m, size_t idx0, size_t idx1) {
  if (!m->n) return;
  NGI_PREFETCH_READ(&m->starts[idx0]);
  NGI_PREFETCH_READ(&m->starts[idx1 + 1]);
}

/* ngi_query_push_key when the result is full: grow it, then push.
 * fails: NG_ENOMEM (the result as it was). */
ng_status ngi_query_grow(query *q, uint64_t key);

/* Keep the hit of `key` in q's result: appended, or, for a nearest-k query
 * (q->k > 0), in a max-heap of keys over items[0..k) (the worst kept hit on
 * top, so a candidate costs O(log k) and the query O(k) memory), which
 * swaps its top for a better key once full. Inline, as every hit passes
 * here (a call each was a tenth of a far nearest-10). fails: NG_ENOMEM
 * (the result as it was). */
static inline ng_status ngi_query_push_key(query *q, uint64_t key) {
  ng_hits *h = q->out;
  ng_hit *a = h->items;
  if (q->k && h->count >= q->k) {
    if (key >= key_of(&a[0])) return NG_OK;
    size_t i = 0, n = h->count; /* sift the hole at the top down */
    for (;;) {
      size_t c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && key_of(&a[c + 1]) > key_of(&a[c])) c++;
      if (key_of(&a[c]) <= key) break;
      a[i] = a[c];
      i = c;
    }
    a[i].id = key;
    return NG_OK;
  }
  if (h->count == h->capacity) return ngi_query_grow(q, key);
  size_t i = h->count++;
  for (; q->k && i > 0 && key_of(&a[(i - 1) / 2]) < key; i = (i - 1) / 2) /* sift up */
    a[i] = a[(i - 1) / 2];
  a[i].id = key;
  return NG_OK;
}

/* Keep hit (slot id, distance d): ngi_query_push_key of its key. */
static inline ng_status ngi_query_push(query *q, uint32_t id, float d) {
  return ngi_query_push_key(q, make_key(id, d));
}

/* Sort h's keys into the order every query returns, keep the first `limit`
 * (0 = all) and decode them into hits (ids, distances). Never fails. */
void ngi_query_sort(ng_runtime *rt, ng_hits *h, size_t limit);

/* The points of box cell (x, y, z) (grid_walk.c). */
ng_status ngi_visit_cell(query *q, uint32_t x, uint32_t y, uint32_t z);

/* Choose how side entries are read for a query visiting `cells` cells (grid_walk.c). */
ng_status ngi_plan_side(query *q, uint64_t cells);

ng_status ngi_run_sphere(query *q);  /* grid_walk.c */
ng_status ngi_run_box(query *q);     /* grid_walk.c */
ng_status ngi_run_nearest(query *q); /* grid_nearest.c */

#endif

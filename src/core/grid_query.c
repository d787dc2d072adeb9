/* The grid's queries (range, neighbours, nearest-k, box) and ng_hits_free. */
#include "grid_filter.h"
#include "grid_index.h"
#include "introsort.h"

#include <stdlib.h>
#include <string.h>

/* ---- queries ------------------------------------------------------------ */

/* Few side entries are simply all read by every query; more are read per
 * cell from the cell lists. */
#define SIDE_SCAN 32

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
  bool filtered; /* the filter tests anything: consider() asks it */
  size_t k;              /* keep only the best k (a max-heap in out); 0 = keep all */
  bool side_each_cell;   /* probe the side table per visited cell (else all scanned once) */
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

/* Keys by value, the order every query returns; its sift also keeps the
 * nearest-k heap (a max-heap: the worst kept hit on top). */
NGI_DEFINE_INTROSORT(sort_keys, ng_hit, key_less)

#define RADIX_MIN 1024 /* fewer keys: introsort measured as fast or faster (8 passes' tables) */

/* LSD radix sort of the keys in a[0..n) by their bytes, tmp holding n more;
 * passes whose byte is the same in every key (the id's top byte, usually the
 * distance's exponent byte) are skipped. Keys often share a byte with their
 * predecessor (near distances), and a counter bumped twice in a row waits for
 * its own store; so the array is taken as four quarters, interleaved, each
 * with its own counters (quarter w's share of a bucket follows w-1's: stable). */
static void radix_keys(ng_hit *a, ng_hit *tmp, size_t n) {
  size_t q4 = n / 4;
  const size_t lo[4] = {0, q4, 2 * q4, 3 * q4};
  ng_hit *src = a, *dst = tmp;
  for (unsigned b = 0; b < 64; b += 8) {
    uint32_t cnt[4][256];
    memset(cnt, 0, sizeof cnt);
    for (size_t i = 0; i < q4; i++)
      for (unsigned w = 0; w < 4; w++)
        cnt[w][(key_of(&src[lo[w] + i]) >> b) & 255u]++;
    for (size_t i = 4 * q4; i < n; i++)
      cnt[3][(key_of(&src[i]) >> b) & 255u]++;
    size_t first = (key_of(&src[0]) >> b) & 255u;
    if ((size_t)cnt[0][first] + cnt[1][first] + cnt[2][first] + cnt[3][first] == n) continue;
    uint32_t sum = 0;
    for (unsigned v = 0; v < 256; v++)
      for (unsigned w = 0; w < 4; w++) {
        uint32_t t = cnt[w][v];
        cnt[w][v] = sum;
        sum += t;
      }
    for (size_t i = 0; i < q4; i++)
      for (unsigned w = 0; w < 4; w++) {
        const ng_hit *e = &src[lo[w] + i];
        dst[cnt[w][(key_of(e) >> b) & 255u]++] = *e;
      }
    for (size_t i = 4 * q4; i < n; i++)
      dst[cnt[3][(key_of(&src[i]) >> b) & 255u]++] = src[i];
    ng_hit *t = src;
    src = dst;
    dst = t;
  }
  if (src != a) memcpy(a, src, n * sizeof *a);
}

static ng_status hits_reserve(ng_runtime *rt, ng_hits *h, size_t n);

/* Sort the keys, keep the first `limit` (0 = all), decode them into hits.
 * Many keys are radix sorted (linear, no mispredicted compares), with the
 * caller's buffer's second half as the scratch: it grows once to twice the
 * largest result and is reused, so a game loop's queries allocate nothing.
 * When it cannot grow, introsort does the same work in place, so the sort
 * never fails. */
static void sort_truncate(ng_runtime *rt, ng_hits *h, size_t limit) {
  size_t n = h->count;
  if (n >= RADIX_MIN && n <= UINT32_MAX && hits_reserve(rt, h, 2 * n) == NG_OK) {
    radix_keys(h->items, h->items + n, n);
  } else if (n > 1) {
    sort_keys(h->items, n);
  }
  if (limit && h->count > limit) h->count = limit;
  const ngi_token_table *t = &rt->tokens;
  for (size_t i = 0; i < h->count; i++) {
    float d = key_distance(&h->items[i]);
    uint32_t local = (uint32_t)key_of(&h->items[i]);
    h->items[i].id = ngi_token_id_of(t, local);
    h->items[i].distance = d;
    h->items[i].reserved = 0;
  }
  if (t->ids.epoch == 0) return; /* no slot reused: slot order is id order */
  /* Keys order equal distances by slot; a reused slot's id is larger than
   * its slot says, so runs of equal distances are put back in id order
   * (insertion sort: such runs are short). */
  for (size_t i = 1; i < h->count; i++) {
    ng_hit x = h->items[i];
    size_t k = i;
    for (; k > 0 && h->items[k - 1].distance == x.distance && h->items[k - 1].id > x.id; k--)
      h->items[k] = h->items[k - 1];
    h->items[k] = x;
  }
}

/* Make room for n hits. fails: NG_ENOMEM with the buffer as it was. */
static ng_status hits_reserve(ng_runtime *rt, ng_hits *h, size_t n) {
  if (n <= h->capacity) return NG_OK;
  size_t ncap = h->capacity ? h->capacity : 16;
  while (ncap < n) {
    if (ncap > SIZE_MAX / 2) return NG_ENOMEM;
    ncap *= 2;
  }
  ng_hit *p = ngi_realloc_array(rt, h->items, h->capacity, ncap, sizeof(ng_hit));
  if (!p) return NG_ENOMEM;
  h->items = p;
  h->capacity = ncap;
  return NG_OK;
}

/* Max-heap of keys over items[0..n): the worst kept hit on top, so a bounded
 * query costs O(log k) per candidate and O(k) memory. */
static void heap_up(ng_hit *a, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!key_less(&a[p], &a[i])) break;
    ng_hit t = a[p];
    a[p] = a[i];
    a[i] = t;
    i = p;
  }
}

static ng_status push_hit(query *q, uint32_t id, float d) {
  ng_hits *h = q->out;
  uint64_t key = make_key(id, d);
  if (q->k && h->count >= q->k) {
    if (key < key_of(&h->items[0])) {
      memcpy(&h->items[0], &key, sizeof key);
      sort_keys_sift(h->items, h->count, 0);
    }
    return NG_OK;
  }
  if (h->count == h->capacity && hits_reserve(q->rt, h, h->count + 1) != NG_OK) return NG_ENOMEM;
  memcpy(&h->items[h->count++], &key, sizeof key);
  if (q->k) heap_up(h->items, h->count - 1);
  return NG_OK;
}

/* The one inclusion rule of radius queries: a point is within the radius iff
 * the distance reported for it (the double distance rounded to float, as
 * ng_hit keeps it) is <= the radius, so a hit at exactly the radius is kept
 * whatever the rounding of its decoded coordinates. Given a lower bound on a
 * distance instead, it prunes only sure misses: rounding is monotonic. */
static inline bool beyond_radius(const query *q, double d) {
  return (double)ngi_to_float(d) > q->radius;
}

/* Test one point (biased coordinates) against the query and keep it if it
 * qualifies. Distances are those of the header: decoded floats, double
 * arithmetic, rounded to float; the squared-distance pre-checks only skip
 * sure misses. */
static inline ng_status consider(query *q, uint32_t id, uint32_t ux, uint32_t uy, uint32_t uz) {
  const ngi_grid *g = q->g;
  if (id == q->exclude) return NG_OK;
  double rx = (double)ux - q->cu[0], ry = (double)uy - q->cu[1], rz = (double)uz - q->cu[2];
  double r2 = rx * rx + ry * ry + rz * rz;
  if (r2 > q->rawlim2) return NG_OK;
  if (q->kind == Q_BOX &&
      ((double)ux < q->blo[0] || (double)ux > q->bhi[0] || (double)uy < q->blo[1] ||
       (double)uy > q->bhi[1] || (double)uz < q->blo[2] || (double)uz > q->bhi[2]))
    return NG_OK;
  if (q->k && q->out->count >= q->k) {
    double top = (double)key_distance(&q->out->items[0]) * g->rpu + 1.0;
    if (r2 > top * top) return NG_OK;
  }
  float v[3] = {ngi_decode_u(g, ux), ngi_decode_u(g, uy), ngi_decode_u(g, uz)};
  if (q->kind == Q_BOX) {
    for (int a = 0; a < 3; a++)
      if (v[a] < q->lo[a] || v[a] > q->hi[a]) return NG_OK;
  }
  double ex = (double)v[0] - q->c[0], ey = (double)v[1] - q->c[1], ez = (double)v[2] - q->c[2];
  double d2 = ex * ex + ey * ey + ez * ez;
  double d = sqrt(d2);
  if (q->kind == Q_SPHERE && beyond_radius(q, d)) return NG_OK;
  /* Last, since it may read the record: every test above is arithmetic. */
  if (q->filtered && !ngi_filter_pass(q->filter, &q->rt->tokens, id, ngi_to_float(d)))
    return NG_OK;
  return push_hit(q, id, ngi_to_float(d));
}

/* Every side entry, once (used when the side table is small or the region big). */
static ng_status visit_side_all(query *q) {
  const ngi_grid *g = q->g;
  for (size_t i = 0; i < g->side_used; i++) {
    const side_ent *e = &g->side[i];
    if (e->id == 0) continue;
    ng_status st = consider(q, e->id, e->u[0], e->u[1], e->u[2]);
    if (st != NG_OK) return st;
  }
  return NG_OK;
}

/* Main entries [b, e) of the cell whose lowest biased coordinates are base. */
static ng_status scan_entries(query *q, const uint32_t base[3], size_t b, size_t e) {
  const mainix *m = &q->g->m;
  for (size_t i = b; i < e; i++) {
    uint64_t v = m->ent[i];
    uint32_t id = (uint32_t)(v & NGI_ID_MASK);
    if (m->nstale && ngi_stale_get(m, id)) continue;
    uint32_t off[3];
    ngi_unpack(v, off);
    ng_status st = consider(q, id, base[0] + off[0], base[1] + off[1], base[2] + off[2]);
    if (st != NG_OK) return st;
  }
  return NG_OK;
}

/* The squared distance threshold of consider()'s raw pre-test against a full
 * nearest-k heap (INFINITY while the heap is filling or without k). */
static inline double raw_top2(const query *q) {
  if (!q->k || q->out->count < q->k) return INFINITY;
  double top = (double)key_distance(&q->out->items[0]) * q->g->rpu + 1.0;
  return top * top;
}

/* True if consider() would reject every point of the biased box [ulo, uhi].
 * First its raw pre-tests (no decoding, no sqrt) on the box's nearest point,
 * which settle most boxes. A box they keep that reaches within a few raw
 * units of the query's edge is tested again in decoded units, exactly as
 * consider() tests points: the pre-tests' margin of a raw unit is a whole node
 * at the deepest levels, and with duplicates such a node holds many entries.
 * *gap2 gets the squared raw distance from the centre to the box (decoded
 * for nearest-k, which is tested in decoded units only), *dist the decoded
 * distance when it was computed (else 0), and *inside whether every point of the box lies within
 * the sphere (or box) by more than that margin, so that splitting it further cannot prune. */
static bool node_out(const query *q, const uint32_t ulo[3], const uint32_t uhi[3], double *gap2,
                     double *dist, bool *inside) {
  const ngi_grid *g = q->g;
  *inside = false;
  if (q->kind == Q_ALL) { /* its bound is in decoded units: test in them directly */
    double d2 = 0.0;
    for (int a = 0; a < 3; a++) {
      double lo = (double)ngi_decode_u(g, ulo[a]), hi = (double)ngi_decode_u(g, uhi[a]);
      double gap = q->c[a] < lo ? lo - q->c[a] : q->c[a] > hi ? q->c[a] - hi : 0.0;
      d2 += gap * gap;
    }
    *dist = sqrt(d2);
    *gap2 = d2;
    return q->out->count >= q->k && ngi_to_float(*dist) > key_distance(&q->out->items[0]);
  }
  double near2 = 0.0, far2 = 0.0;
  bool in = true, edge = false;
  for (int a = 0; a < 3; a++) {
    double lo = (double)ulo[a], hi = (double)uhi[a], c = q->cu[a];
    if (q->kind == Q_BOX) {
      if (hi < q->blo[a] || lo > q->bhi[a]) return true;
      in = in && lo > q->blo[a] + 2.0 && hi < q->bhi[a] - 2.0;
      edge = edge || hi < q->blo[a] + 3.0 || lo > q->bhi[a] - 3.0;
    }
    double gap = c < lo ? lo - c : c > hi ? c - hi : 0.0;
    double far = c - lo > hi - c ? c - lo : hi - c;
    near2 += gap * gap;
    far2 += far * far;
  }
  *gap2 = near2;
  double top2 = raw_top2(q);
  if (near2 > q->rawlim2 || near2 > top2) return true;
  if (q->kind == Q_SPHERE) edge = near2 > q->rawedge2;
  if (top2 < INFINITY) {
    double t = sqrt(top2) - 3.0;
    edge = edge || t <= 0.0 || near2 > t * t;
  }
  *dist = 0.0;
  if (edge) {
    double d2 = 0.0;
    for (int a = 0; a < 3; a++) {
      double lo = (double)ngi_decode_u(g, ulo[a]), hi = (double)ngi_decode_u(g, uhi[a]);
      if (q->kind == Q_BOX && (hi < (double)q->lo[a] || lo > (double)q->hi[a])) return true;
      double gap = q->c[a] < lo ? lo - q->c[a] : q->c[a] > hi ? q->c[a] - hi : 0.0;
      d2 += gap * gap;
    }
    double d = sqrt(d2);
    *dist = d;
    if (q->kind == Q_SPHERE && beyond_radius(q, d)) return true;
    if (q->k && q->out->count >= q->k && ngi_to_float(d) > key_distance(&q->out->items[0]))
      return true;
  }
  if (q->kind == Q_SPHERE) in = q->rawedge2 > 0.0 && far2 < q->rawedge2;
  *inside = in;
  return false;
}

/* First index in [lo, hi) of ent whose entry is >= key (hi if none); a
 * branch-free binary search (the hot part of descending a crowded cell: its
 * branches would be mispredicted half of the time). */
static inline size_t lower_bound_bf(const uint64_t *ent, size_t lo, size_t hi, uint64_t key) {
  size_t n = hi - lo;
  /* All of the range on one side: deep in a pile of duplicates, a node's
   * entries often all share one child. */
  if (n == 0 || ent[lo] >= key) return lo;
  if (ent[hi - 1] < key) return hi;
  const uint64_t *p = ent + lo;
  while (n > 1) {
    size_t half = n / 2;
    p = p[half] < key ? p + half : p;
    n -= half;
  }
  return (size_t)(p - ent) + (*p < key);
}

/* A node of a crowded cell's implicit octree: the entries [b, e) whose Morton
 * codes share their top 3*d bits; olo its lowest offsets. Children are pruned
 * by their distance first, visited nearest first, and only then located by
 * binary search between the child boundaries already found (a pruned child
 * costs no memory access). A child wholly inside the query is scanned without
 * descending further: splitting it could not prune anything. */
static ng_status visit_node(query *q, const uint32_t base[3], unsigned d, uint64_t prefix,
                            const uint32_t olo[3], size_t b, size_t e) {
  const mainix *m = &q->g->m;
  if (e - b <= NGI_LEAF || d >= 13) return scan_entries(q, base, b, e);
  unsigned rest = 12 - d; /* levels below a child */
  struct {
    double d2, dist;
    unsigned c;
    bool inside;
  } kid[8];
  unsigned nk = 0;
  uint32_t w = 1u << rest;
  for (unsigned c = 0; c < 8; c++) {
    uint32_t ulo[3], uhi[3];
    bool empty = false;
    for (int a = 0; a < 3; a++) {
      uint32_t o = olo[a] + (((c >> (2 - a)) & 1u) ? w : 0u);
      uint32_t top = (1u << m->shift[a]) - 1u;
      if (o > top) empty = true; /* beyond the cell on this axis */
      uint32_t o1 = o + w - 1u > top ? top : o + w - 1u;
      ulo[a] = base[a] + o;
      uhi[a] = base[a] + o1;
    }
    double gap2, dist;
    bool inside;
    if (empty || node_out(q, ulo, uhi, &gap2, &dist, &inside)) continue;
    unsigned k = nk++;
    for (; k > 0 && kid[k - 1].d2 > gap2; k--) /* nearest first */
      kid[k] = kid[k - 1];
    kid[k].d2 = gap2;
    kid[k].dist = dist;
    kid[k].c = c;
    kid[k].inside = inside;
  }
  /* Child c holds [bnd[c], bnd[c + 1]); SIZE_MAX = not located yet. */
  size_t bnd[9];
  for (int i = 1; i < 8; i++)
    bnd[i] = SIZE_MAX;
  bnd[0] = b;
  bnd[8] = e;
  unsigned shift = 3 * rest + 24;
  for (unsigned i = 0; i < nk; i++) {
    unsigned c = kid[i].c;
    /* The rest are no nearer (kids are ordered by the measure node_out used:
     * decoded for nearest-k, whose heap may have filled meanwhile, else raw). */
    if (i > 0 && (q->kind == Q_ALL ? q->out->count >= q->k &&
                                         ngi_to_float(kid[i].dist) > key_distance(&q->out->items[0])
                                   : kid[i].d2 > raw_top2(q)))
      break;
    for (unsigned j = c; j <= c + 1; j++) {
      if (bnd[j] != SIZE_MAX) continue;
      unsigned below = j, above = j;
      while (bnd[below] == SIZE_MAX)
        below--;
      while (bnd[above] == SIZE_MAX)
        above++;
      bnd[j] = lower_bound_bf(m->ent, bnd[below], bnd[above], (prefix << 3 | j) << shift);
    }
    size_t cb = bnd[c], ce = bnd[c + 1];
    if (cb == ce) continue;
    ng_status st;
    if (kid[i].inside) {
      st = scan_entries(q, base, cb, ce);
    } else {
      uint32_t clo[3];
      for (int a = 0; a < 3; a++)
        clo[a] = olo[a] + (((c >> (2 - a)) & 1u) ? w : 0u);
      st = visit_node(q, base, d + 1, prefix << 3 | c, clo, cb, ce);
    }
    if (st != NG_OK) return st;
  }
  return NG_OK;
}

/* The points of box cell (x, y, z): its main entries that are not hidden, and
 * its side entries when they are probed per cell. */
static ng_status visit_cell(query *q, uint32_t x, uint32_t y, uint32_t z) {
  const ngi_grid *g = q->g;
  const mainix *m = &g->m;
  uint32_t idx = (x * m->nc[1] + y) * m->nc[2] + z;
  if (m->n) {
    const uint32_t base[3] = {(m->c0[0] + x) << m->shift[0], (m->c0[1] + y) << m->shift[1],
                              (m->c0[2] + z) << m->shift[2]};
    size_t b = m->starts[idx], e = m->starts[idx + 1];
    static const uint32_t zero[3] = {0, 0, 0};
    ng_status st = e - b <= NGI_LEAF ? scan_entries(q, base, b, e)
                                     : visit_node(q, base, 13 - m->levels, 0, zero, b, e);
    if (st != NG_OK) return st;
  }
  if (q->side_each_cell) {
    for (uint32_t j = g->side_heads[idx]; j != NGI_SIDE_NONE; j = g->side[j].next) {
      const side_ent *e = &g->side[j];
      ng_status st = consider(q, e->id, e->u[0], e->u[1], e->u[2]);
      if (st != NG_OK) return st;
    }
  }
  return NG_OK;
}

/* Decoded extent of box cell k on axis a. Main entries lie inside their cell;
 * side entries beyond the box belong to its edge cells, so when they are read
 * per cell the edge cells reach to infinity. */
static void cell_extent(const query *q, int a, uint32_t k, double *lo, double *hi) {
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
static double axis_gap(const query *q, int a, uint32_t k) {
  double lo, hi;
  cell_extent(q, a, k, &lo, &hi);
  return q->c[a] < lo ? lo - q->c[a] : q->c[a] > hi ? q->c[a] - hi : 0.0;
}

/* True if no point of a cell with these axis gaps can be kept: all beyond the
 * radius, or, once a nearest-k heap is full, all strictly worse than its top. */
static bool cell_out(const query *q, double gx, double gy, double gz) {
  double d = sqrt(gx * gx + gy * gy + gz * gz);
  if (q->kind == Q_SPHERE) return beyond_radius(q, d);
  if (q->kind == Q_ALL && q->k && q->out->count >= q->k)
    return ngi_to_float(d) > key_distance(&q->out->items[0]);
  return false;
}

/* Choose how side entries are read: all at once when few (or when the region
 * has more cells than there are side entries), else per visited cell. */
static ng_status plan_side(query *q, uint64_t cells) {
  const ngi_grid *g = q->g;
  q->side_each_cell = g->side_count > SIDE_SCAN && cells < g->side_count;
  if (g->side_count && !q->side_each_cell) return visit_side_all(q);
  return NG_OK;
}

/* Visit the box cells clo..chi (inclusive, within the box), skipping cells
 * that cannot hold a hit. The box never has more than max(n/2, 512) cells, so
 * even the whole of it costs no more than a scan. */
static ng_status visit_region(query *q, const uint32_t clo[3], const uint32_t chi[3]) {
  const ngi_grid *g = q->g;
  const mainix *m = &g->m;
  uint64_t cells = 1;
  bool whole = true;
  for (int a = 0; a < 3; a++) {
    cells *= (uint64_t)(chi[a] - clo[a] + 1);
    whole = whole && clo[a] == 0 && chi[a] + 1 == m->nc[a];
  }
  ng_status st = plan_side(q, cells);
  if (st != NG_OK) return st;
  if (m->n == 0 && !q->side_each_cell) return NG_OK;
  if (whole && q->kind != Q_ALL && !q->side_each_cell) {
    /* Everything: read the entries in order, no per-cell pruning. */
    for (uint32_t x = 0; x < m->nc[0]; x++)
      for (uint32_t y = 0; y < m->nc[1]; y++)
        for (uint32_t z = 0; z < m->nc[2]; z++) {
          st = visit_cell(q, x, y, z);
          if (st != NG_OK) return st;
        }
    return NG_OK;
  }
  for (uint32_t x = clo[0]; x <= chi[0]; x++) {
    double gx = axis_gap(q, 0, x);
    for (uint32_t y = clo[1]; y <= chi[1]; y++) {
      double gy = axis_gap(q, 1, y);
      for (uint32_t z = clo[2]; z <= chi[2]; z++) {
        if (cell_out(q, gx, gy, axis_gap(q, 2, z))) continue;
        st = visit_cell(q, x, y, z);
        if (st != NG_OK) return st;
      }
    }
  }
  return NG_OK;
}

/* Clamp a biased interval [a, b] (doubles, any magnitude) to the box cells
 * it touches. guarantees: false when it misses the representable range. */
static bool to_cells(const ngi_grid *g, int axis, double a, double b, uint32_t *clo,
                     uint32_t *chi) {
  if (!(a <= 65535.0) || !(b >= 0.0) || a > b) return false;
  uint32_t ua = a < 0.0 ? 0u : (uint32_t)floor(a);
  uint32_t ub = b > 65535.0 ? 65535u : (uint32_t)ceil(b);
  *clo = ngi_axis_cell(&g->m, axis, ua);
  *chi = ngi_axis_cell(&g->m, axis, ub);
  return true;
}

/* Cells within the query's radius (plus a one-raw-unit margin that covers
 * decoding rounding; the exact test is in consider). */
static ng_status run_sphere(query *q) {
  const ngi_grid *g = q->g;
  double s = g->rpu;
  uint32_t clo[3], chi[3];
  for (int a = 0; a < 3; a++) {
    double cr = q->c[a] * s + NGI_BIAS, rr = q->radius * s;
    if (!to_cells(g, a, cr - rr - 1.0, cr + rr + 1.0, &clo[a], &chi[a])) return NG_OK;
  }
  return visit_region(q, clo, chi);
}

static ng_status run_box(query *q) {
  const ngi_grid *g = q->g;
  double s = g->rpu;
  uint32_t clo[3], chi[3];
  for (int a = 0; a < 3; a++)
    if (!to_cells(g, a, (double)q->lo[a] * s + NGI_BIAS - 1.0,
                  (double)q->hi[a] * s + NGI_BIAS + 1.0, &clo[a], &chi[a]))
      return NG_OK;
  return visit_region(q, clo, chi);
}

/* A lower bound on the distance from the centre to any point in a cell
 * outside cc-r..cc+r on some axis; INFINITY when those cells are the whole
 * box. Such a cell lies beyond one face of the cube, and on the other axes
 * within the box, so its gap on each of those (hull2: the squared gap to the
 * whole box, per axis) counts too: from a centre far outside the box every
 * axis adds up, not only the nearest face's. */
static double outside_bound(const query *q, const uint32_t cc[3], uint32_t r,
                            const double hull2[3]) {
  const mainix *m = &q->g->m;
  double best = INFINITY;
  for (int a = 0; a < 3; a++) {
    double lo, hi;
    for (int side = 0; side < 2; side++) {
      double gap;
      if (side == 0) { /* the cells below: a point there is at most at hi of cell cc-r-1 */
        if (cc[a] <= r) continue;
        cell_extent(q, a, cc[a] - r - 1, &lo, &hi);
        gap = q->c[a] > hi ? q->c[a] - hi : 0.0;
      } else {
        if (cc[a] + r + 1 >= m->nc[a]) continue;
        cell_extent(q, a, cc[a] + r + 1, &lo, &hi);
        gap = lo > q->c[a] ? lo - q->c[a] : 0.0;
      }
      /* Summed in consider()'s order (x, y, z), so that rounding keeps the
       * bound at or below every such point's distance. */
      double t[3] = {hull2[0], hull2[1], hull2[2]};
      t[a] = gap * gap;
      double d = sqrt(t[0] + t[1] + t[2]);
      best = d < best ? d : best;
    }
  }
  return best;
}

/* Squared gaps beyond this put a cell strictly behind the k-th best so far
 * (INFINITY while the heap fills): a margin of 2^-22 covers the rounding of
 * sqrt and of the float the distance is kept in, so the test only skips sure
 * misses. */
static double sweep_limit2(const query *q) {
  if (q->out->count < q->k) return INFINITY;
  double t = (double)key_distance(&q->out->items[0]) * (1.0 + 0x1p-22);
  return t * t;
}

#define SWEEP_GAPS 1024 /* z gaps kept on the stack; longer axes compute them per cell */

/* The nearest-k search's other half: every cell outside the cube cc-r..cc+r
 * (r < 0: none searched), each axis walked from cc outward in both
 * directions, so the cells near the centre come first and the walk along an
 * axis stops at the first slab, row or cell whose gap alone is behind the
 * k-th best (gaps only grow away from cc; cc itself, whose gap can round
 * above its neighbour's, never stops it). Its cost per cell is a few adds
 * and compares, against a ring's ordering and bookkeeping. */
static ng_status sweep_rest(query *q, const uint32_t cc[3], int64_t r) {
  const mainix *m = &q->g->m;
  double zg2[SWEEP_GAPS];
  bool zpre = m->nc[2] <= SWEEP_GAPS;
  for (uint32_t z = 0; zpre && z < m->nc[2]; z++) {
    double g = axis_gap(q, 2, z);
    zg2[z] = g * g;
  }
  double lim2 = sweep_limit2(q);
  for (int dxs = 0; dxs < 2; dxs++) {
    for (int64_t x = dxs ? (int64_t)cc[0] - 1 : cc[0]; x >= 0 && x < m->nc[0]; x += dxs ? -1 : 1) {
      double gx = axis_gap(q, 0, (uint32_t)x), gx2 = gx * gx;
      if (gx2 > lim2) {
        if (x == cc[0]) continue;
        break;
      }
      bool xin = llabs(x - (int64_t)cc[0]) <= r;
      for (int dys = 0; dys < 2; dys++) {
        for (int64_t y = dys ? (int64_t)cc[1] - 1 : cc[1]; y >= 0 && y < m->nc[1];
             y += dys ? -1 : 1) {
          double gy = axis_gap(q, 1, (uint32_t)y), gxy2 = gx2 + gy * gy;
          if (gxy2 > lim2) {
            if (y == cc[1]) continue;
            break;
          }
          bool xyin = xin && llabs(y - (int64_t)cc[1]) <= r;
          for (int dzs = 0; dzs < 2; dzs++) {
            for (int64_t z = dzs ? (int64_t)cc[2] - 1 : cc[2]; z >= 0 && z < m->nc[2];
                 z += dzs ? -1 : 1) {
              if (xyin && llabs(z - (int64_t)cc[2]) <= r) continue; /* searched by the rings */
              double gz2 = zg2[0];
              if (zpre) {
                gz2 = zg2[z];
              } else {
                double gz = axis_gap(q, 2, (uint32_t)z);
                gz2 = gz * gz;
              }
              if (gxy2 + gz2 > lim2) {
                if (z == cc[2]) continue;
                break;
              }
              ng_status st = visit_cell(q, (uint32_t)x, (uint32_t)y, (uint32_t)z);
              if (st != NG_OK) return st;
              lim2 = sweep_limit2(q);
            }
          }
        }
      }
    }
  }
  return NG_OK;
}

/* Cells of the cube cc-r..cc+r inside the box (0 for r < 0). */
static uint64_t cube_cells(const mainix *m, const uint32_t cc[3], int64_t r) {
  if (r < 0) return 0;
  uint64_t n = 1;
  for (int a = 0; a < 3; a++) {
    int64_t lo = (int64_t)cc[a] - r, hi = (int64_t)cc[a] + r;
    if (lo < 0) lo = 0;
    if (hi > (int64_t)m->nc[a] - 1) hi = (int64_t)m->nc[a] - 1;
    n *= (uint64_t)(hi - lo + 1);
  }
  return n;
}

/* A cell of a ring and its distance from the centre (a lower bound for its points). */
typedef struct ring_cell {
  double d;
  uint32_t x, y, z;
} ring_cell;

#define RING_BUF 512

/* Nearest k (q->k > 0): search rings of cells outward from the centre's
 * cell, keeping the best k in a heap; within a ring the cells go nearest
 * first, and a cell farther than the k-th best so far is skipped (with the
 * rest of the ring). Stops when the k-th best is strictly closer than
 * anything outside the searched cube (strictly, so an equal distance with a
 * smaller id cannot be missed) or the cube is the whole box. */
static ng_status run_nearest(query *q) {
  const ngi_grid *g = q->g;
  const mainix *m = &g->m;
  ng_hits *h = q->out;
  uint32_t cc[3];
  bool out[3], outside = false;
  for (int a = 0; a < 3; a++) {
    double cr = floor(q->c[a] * g->rpu) + NGI_BIAS;
    uint32_t u = cr < 0.0 ? 0u : cr > 65535.0 ? 65535u : (uint32_t)cr;
    cc[a] = ngi_axis_cell(m, a, u);
    out[a] = (u >> m->shift[a]) < m->c0[a] || (u >> m->shift[a]) - m->c0[a] >= m->nc[a];
    outside = outside || out[a];
  }
  /* Rings reach every cell of the box at most once, so probing side entries
   * per cell is never worse than scanning them when there are many. But from
   * a centre outside the box, cells must have their true extents (see
   * cell_extent), or the search would not stop before the far side. */
  ng_status st = plan_side(q, g->side_count > 64 && !outside ? 0 : UINT64_MAX);
  if (st != NG_OK) return st;
  if (m->n == 0 && !q->side_each_cell) return NG_OK;
  /* Rings cost some tens of ns a cell; past an eighth of the box the sweep,
   * a few ns a cell, finishes the rest for less. */
  uint64_t budget = m->ncell / 8 + 27;
  double hull2[3] = {0.0, 0.0, 0.0}; /* 0 is a lower bound; exact only where it matters */
  for (int a = 0; a < 3; a++) {
    if (!out[a]) continue;
    double lo, hi, lo1, hi1;
    cell_extent(q, a, 0, &lo, &hi);
    cell_extent(q, a, m->nc[a] - 1, &lo1, &hi1);
    double gap = q->c[a] < lo ? lo - q->c[a] : q->c[a] > hi1 ? q->c[a] - hi1 : 0.0;
    hull2[a] = gap * gap;
  }
  ring_cell buf[RING_BUF];
  for (uint32_t r = 0;; r++) {
    if (r > 1 && h->count == q->k && cube_cells(m, cc, r) > budget)
      return sweep_rest(q, cc, (int64_t)r - 1);
    size_t nb = 0;
    for (int64_t dx = -(int64_t)r; dx <= (int64_t)r; dx++) {
      int64_t x = (int64_t)cc[0] + dx;
      if (x < 0 || x >= m->nc[0]) continue;
      double gx = axis_gap(q, 0, (uint32_t)x);
      for (int64_t dy = -(int64_t)r; dy <= (int64_t)r; dy++) {
        int64_t y = (int64_t)cc[1] + dy;
        if (y < 0 || y >= m->nc[1]) continue;
        double gy = axis_gap(q, 1, (uint32_t)y);
        bool face = dx == -(int64_t)r || dx == (int64_t)r || dy == -(int64_t)r || dy == (int64_t)r;
        int64_t step = face || r == 0 ? 1 : 2 * (int64_t)r;
        for (int64_t dz = -(int64_t)r; dz <= (int64_t)r; dz += step) {
          int64_t z = (int64_t)cc[2] + dz;
          if (z < 0 || z >= m->nc[2]) continue;
          double gz = axis_gap(q, 2, (uint32_t)z);
          if (cell_out(q, gx, gy, gz)) continue;
          if (nb < RING_BUF) {
            ring_cell *c = &buf[nb++];
            c->d = sqrt(gx * gx + gy * gy + gz * gz);
            c->x = (uint32_t)x;
            c->y = (uint32_t)y;
            c->z = (uint32_t)z;
          } else {
            /* A huge ring (a sparse box): visit the overflow unordered. */
            st = visit_cell(q, (uint32_t)x, (uint32_t)y, (uint32_t)z);
            if (st != NG_OK) return st;
          }
        }
      }
    }
    for (size_t i = 1; i < nb; i++) { /* insertion sort: rings are short */
      ring_cell x = buf[i];
      size_t k = i;
      for (; k > 0 && x.d < buf[k - 1].d; k--)
        buf[k] = buf[k - 1];
      buf[k] = x;
    }
    for (size_t i = 0; i < nb; i++) {
      if (h->count >= q->k && ngi_to_float(buf[i].d) > key_distance(&h->items[0])) break;
      st = visit_cell(q, buf[i].x, buf[i].y, buf[i].z);
      if (st != NG_OK) return st;
    }
    double bound = outside_bound(q, cc, r, hull2);
    if (isinf(bound)) return NG_OK; /* every cell searched */
    if (h->count == q->k && key_distance(&h->items[0]) < ngi_to_float(bound)) return NG_OK;
  }
}

/* ---- public entry points ------------------------------------------------ */

/* Common argument checks; out->count is zeroed first so failures leave it 0. */
static ng_status check_common(ng_runtime *rt, const char *fn, int space, const ng_filter *filter,
                              ng_hits *out) {
  if (out) out->count = 0;
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!out) return ngi_fail(rt, NG_EINVAL, "%s: out must not be NULL", fn);
  if (space < 0 || space >= NG_SPACES)
    return ngi_fail(rt, NG_EINVAL, "%s: space must be 0..7, got %d", fn, space);
  return ngi_filter_check(rt, fn, filter);
}

static ng_status check_radius(ng_runtime *rt, const char *fn, float radius) {
  if (!ngi_finite(radius) || radius < 0.0f)
    return ngi_fail(rt, NG_EINVAL, "%s: radius must be a finite number >= 0, got %g", fn,
                    (double)radius);
  return NG_OK;
}

static ng_status check_point(ng_runtime *rt, const char *fn, const char *what, const float *p) {
  if (!p) return ngi_fail(rt, NG_EINVAL, "%s: %s must not be NULL", fn, what);
  for (int a = 0; a < 3; a++)
    if (!ngi_finite(p[a]))
      return ngi_fail(rt, NG_EINVAL, "%s: %s[%d] must be a finite number, got %g", fn, what, a,
                      (double)p[a]);
  return NG_OK;
}

/* Run q on q->g with `filter` (checked; NULL: the defaults; caller holds
 * the runtime's read lock): complete the index, run, sort; failures leave no
 * hits. */
static ng_status run_sorted(query *q, const ng_filter *filter, ng_status (*run)(query *)) {
  ngi_grid *g = q->rt->grids[q->g->space];
  double sc = g->rpu;
  q->rawlim2 = INFINITY;
  q->rawedge2 = INFINITY;
  if (q->kind == Q_SPHERE) {
    double rr = q->radius * sc + 1.0;
    q->rawlim2 = rr * rr;
    q->rawedge2 = rr > 3.0 ? (rr - 3.0) * (rr - 3.0) : -1.0;
  }
  for (int a = 0; a < 3; a++) {
    q->cu[a] = q->c[a] * sc + NGI_BIAS;
    q->blo[a] = (double)q->lo[a] * sc + NGI_BIAS - 1.0;
    q->bhi[a] = (double)q->hi[a] * sc + NGI_BIAS + 1.0;
  }
  ngi_filter f;
  ng_status st = ngi_filter_prepare(q->rt, filter, &f);
  q->filter = &f;
  q->filtered = f.fields || f.nexcl || f.accept;
  if (st == NG_OK) st = ngi_grid_acquire(q->rt, g);
  if (st == NG_OK) {
    st = run(q);
    ngi_grid_release(g);
  }
  ngi_filter_free(q->rt, &f);
  if (st == NG_OK) {
    sort_truncate(q->rt, q->out, q->k);
    st = ngi_fill_positions(q->rt, g->space, q->out);
  }
  if (st != NG_OK) q->out->count = 0;
  return st;
}

/* The exit of every public query: counts it (metrics.h) and reports NG_ENOMEM. */
static ng_status finish(ng_runtime *rt, const char *fn, ng_status st, int kind, uint64_t t0) {
  ngi_query_end(&rt->metrics, kind, t0);
  if (st == NG_ENOMEM) return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  return st;
}

ng_status ng_grid_range(ng_runtime *rt, int space, const float center[3], float radius,
                        size_t limit, const ng_filter *filter, ng_hits *out) {
  static const char fn[] = "ng_grid_range";
  ng_status st = check_common(rt, fn, space, filter, out);
  if (st == NG_OK) st = check_point(rt, fn, "center", center);
  if (st == NG_OK) st = check_radius(rt, fn, radius);
  if (st != NG_OK) return st;
  uint64_t t0 = ngi_query_begin(&rt->metrics);
  query q = {.rt = rt, .kind = Q_SPHERE, .radius = (double)radius, .k = limit, .out = out};
  for (int a = 0; a < 3; a++)
    q.c[a] = (double)center[a];
  ngi_read_lock(rt);
  q.g = rt->grids[space];
  if (q.g) st = run_sorted(&q, filter, run_sphere);
  ngi_read_unlock(rt);
  return finish(rt, fn, st, NG_QUERY_RANGE, t0);
}

/* k == 0 asks for nothing (q->k 0 would mean "keep all"); the token is
 * still checked. */
static ng_status run_none(query *q) {
  (void)q;
  return NG_OK;
}

/* Queries around token `id` (neighbours, nearest_to): q's centre becomes the
 * token's position and the token is left out; then run. NG_ENOTFOUND if it
 * does not exist or is not placed in the space. */
static ng_status run_around(query *q, const char *fn, ng_id id, int space, const ng_filter *filter,
                            ng_status (*run)(query *)) {
  ng_runtime *rt = q->rt;
  ng_status st = NG_OK;
  q->exclude = NG_TOKEN_SLOT(id);
  ngi_read_lock(rt);
  const ng_token *t = ngi_token_lookup(&rt->tokens, id);
  if (!t) {
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: no token with id %llu", fn, (unsigned long long)id);
  } else if (!(ngi_placed(&rt->tokens, NG_TOKEN_SLOT(id)) & (1u << space))) {
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: token %llu is not placed in %s", fn,
                  (unsigned long long)id, ng_space_name(space));
  } else if ((q->g = rt->grids[space]) != NULL) {
    for (int a = 0; a < 3; a++)
      q->c[a] = (double)ngi_unit_decode_f(&q->g->unit, t->coords[space][a]);
    st = run_sorted(q, filter, run);
  }
  ngi_read_unlock(rt);
  return st;
}

ng_status ng_grid_neighbors(ng_runtime *rt, ng_id id, int space, float radius, size_t limit,
                            const ng_filter *filter, ng_hits *out) {
  static const char fn[] = "ng_grid_neighbors";
  ng_status st = check_common(rt, fn, space, filter, out);
  if (st == NG_OK) st = check_radius(rt, fn, radius);
  if (st == NG_OK) st = ngi_check_id(rt, fn, id);
  if (st != NG_OK) return st;
  uint64_t t0 = ngi_query_begin(&rt->metrics);
  query q = {.rt = rt, .kind = Q_SPHERE, .radius = (double)radius, .k = limit, .out = out};
  return finish(rt, fn, run_around(&q, fn, id, space, filter, run_sphere), NG_QUERY_NEIGHBORS,
                t0);
}

ng_status ng_grid_nearest(ng_runtime *rt, int space, const float center[3], size_t k,
                          const ng_filter *filter, ng_hits *out) {
  static const char fn[] = "ng_grid_nearest";
  ng_status st = check_common(rt, fn, space, filter, out);
  if (st == NG_OK) st = check_point(rt, fn, "center", center);
  if (st != NG_OK) return st;
  uint64_t t0 = ngi_query_begin(&rt->metrics);
  query q = {.rt = rt, .kind = Q_ALL, .k = k, .out = out};
  for (int a = 0; a < 3; a++)
    q.c[a] = (double)center[a];
  ngi_read_lock(rt);
  q.g = rt->grids[space];
  if (q.g && k > 0) st = run_sorted(&q, filter, run_nearest);
  ngi_read_unlock(rt);
  return finish(rt, fn, st, NG_QUERY_NEAREST, t0);
}

ng_status ng_grid_nearest_to(ng_runtime *rt, ng_id id, int space, size_t k,
                             const ng_filter *filter, ng_hits *out) {
  static const char fn[] = "ng_grid_nearest_to";
  ng_status st = check_common(rt, fn, space, filter, out);
  if (st == NG_OK) st = ngi_check_id(rt, fn, id);
  if (st != NG_OK) return st;
  uint64_t t0 = ngi_query_begin(&rt->metrics);
  query q = {.rt = rt, .kind = Q_ALL, .k = k, .out = out};
  return finish(rt, fn, run_around(&q, fn, id, space, filter, k ? run_nearest : run_none),
                NG_QUERY_NEAREST, t0);
}

ng_status ng_grid_box(ng_runtime *rt, int space, const float lo[3], const float hi[3], size_t limit,
                      const ng_filter *filter, ng_hits *out) {
  static const char fn[] = "ng_grid_box";
  ng_status st = check_common(rt, fn, space, filter, out);
  if (st == NG_OK) st = check_point(rt, fn, "lo", lo);
  if (st == NG_OK) st = check_point(rt, fn, "hi", hi);
  if (st != NG_OK) return st;
  for (int a = 0; a < 3; a++)
    if (lo[a] > hi[a])
      return ngi_fail(rt, NG_EINVAL, "%s: lo[%d] must be <= hi[%d], got %g > %g", fn, a, a,
                      (double)lo[a], (double)hi[a]);
  uint64_t t0 = ngi_query_begin(&rt->metrics);
  query q = {.rt = rt, .kind = Q_BOX, .k = limit, .out = out};
  for (int a = 0; a < 3; a++) {
    q.lo[a] = lo[a];
    q.hi[a] = hi[a];
    q.c[a] = ((double)lo[a] + (double)hi[a]) / 2.0;
  }
  ngi_read_lock(rt);
  q.g = rt->grids[space];
  if (q.g) st = run_sorted(&q, filter, run_box);
  ngi_read_unlock(rt);
  return finish(rt, fn, st, NG_QUERY_BOX, t0);
}

void ng_hits_free(ng_runtime *rt, ng_hits *hits) {
  if (!rt || !hits) return;
  ngi_free(rt, hits->items, hits->capacity * sizeof(ng_hit));
  if (hits->xyz) ngi_free(rt, hits->xyz, hits->xyz_capacity * sizeof(double));
  memset(hits, 0, sizeof *hits);
}

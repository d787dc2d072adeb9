/* The grid queries' cell walk: the cells of a sphere or box, the implicit
 * octree of a crowded cell, and the test of each point. */
#include "grid_query.h"

/* Few side entries are simply all read by every query; more are read per
 * cell from the cell lists. */
#define SIDE_SCAN 32

/* Test one point (biased coordinates) against the query and keep it if it
 * qualifies. Distances are those of the header: decoded floats, double
 * arithmetic, rounded to float; the squared-distance pre-checks only skip
 * sure misses. */
static NGI_ALWAYS_INLINE ng_status consider(query *q, uint32_t id, uint32_t ux, uint32_t uy,
                                            uint32_t uz) {
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
  if (q->filtered && !ngi_filter_pass(q->filter, &q->rt->tokens, id, ngi_to_float(d))) return NG_OK;
  return ngi_query_push(q, id, ngi_to_float(d));
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

#define SCAN_BLOCK 32 /* entries a scan's first pass filters at a time */
#define NARROW_LEVELS 10 /* nodes of up to this many levels: the narrow first pass */

/* The entries ent[0..n) (n <= SCAN_BLOCK) of the cell at base within lim2
 * (raw squared distance, consider()'s arithmetic exactly): their indexes
 * into kept, their count returned. */
static size_t first_pass(const query *q, const uint32_t base[3], const uint64_t *ent, size_t n,
                         double lim2, uint8_t *kept) {
  double r2[SCAN_BLOCK];
  for (size_t i = 0; i < n; i++) {
    uint64_t code = ent[i] >> 24;
    double rx = (double)(int32_t)(base[0] + ngi_compact3(code >> 2)) - q->cu[0];
    double ry = (double)(int32_t)(base[1] + ngi_compact3(code >> 1)) - q->cu[1];
    double rz = (double)(int32_t)(base[2] + ngi_compact3(code)) - q->cu[2];
    r2[i] = rx * rx + ry * ry + rz * rz;
  }
  size_t nk = 0;
  for (size_t i = 0; i < n; i++) {
    kept[nk] = (uint8_t)i;
    nk += r2[i] <= lim2;
  }
  return nk;
}

/* ngi_compact3 of a code of at most 10 levels, in 32 bits. */
static inline uint32_t compact3_narrow(uint32_t x) {
  x &= 0x09249249u;
  x = (x ^ (x >> 2)) & 0x030C30C3u;
  x = (x ^ (x >> 4)) & 0x0300F00Fu;
  x = (x ^ (x >> 8)) & 0xFF0000FFu;
  x = (x ^ (x >> 16)) & 0x3FFu;
  return x;
}

/* first_pass for the entries of a node of lv <= NARROW_LEVELS levels whose
 * lowest biased coordinates are nlo (a sub-cell, or a cell of clustered
 * points): the entries differ only in the code's low 3 * lv bits, so their
 * offsets in the node are unpacked in 32-bit lanes and the distances taken
 * in floats, four entries at a time instead of two. Floats round: the bound
 * is widened by far more than they can (an offset is exact, the centre
 * within 2^-8 of its double, so a squared distance near lim2 within
 * 0.03 * sqrt(lim2) plus a few parts in 2^24); consider() then applies the
 * exact test to the few more it keeps. */
static size_t first_pass_narrow(const query *q, const uint32_t nlo[3], unsigned lv,
                                const uint64_t *ent, size_t n, double lim2, uint8_t *kept) {
  float c[3];
  for (int a = 0; a < 3; a++)
    c[a] = (float)(q->cu[a] - (double)nlo[a]);
  uint32_t mask = (1u << (3 * lv)) - 1u;
  float limf = ngi_to_float(lim2 * (1.0 + 0x1p-16) + 0.1 * sqrt(lim2) + 1.0);
  float r2[SCAN_BLOCK];
  for (size_t i = 0; i < n; i++) {
    uint32_t code = (uint32_t)(ent[i] >> 24) & mask;
    float rx = (float)compact3_narrow(code >> 2) - c[0];
    float ry = (float)compact3_narrow(code >> 1) - c[1];
    float rz = (float)compact3_narrow(code) - c[2];
    r2[i] = rx * rx + ry * ry + rz * rz;
  }
  size_t nk = 0;
  for (size_t i = 0; i < n; i++) {
    kept[nk] = (uint8_t)i;
    nk += r2[i] <= limf;
  }
  return nk;
}

/* Main entries [b, e) of the cell whose lowest biased coordinates are base,
 * all in its node of lv levels whose lowest are nlo (the cell itself, a
 * sub-cell or a deeper node). Most entries of a sphere's or nearest-k's
 * cells fail consider()'s first test, the raw squared distance against the
 * sphere's bound or a full heap's. So it is done first for a block of
 * entries, in a loop without branches that the compiler vectorises (the
 * Morton unpack, most of an entry's instructions, then runs on two entries
 * at once, four in a node of few levels), against the heap's bound at the
 * block's start (it only shrinks); consider() tests the few kept in full,
 * the same first test included. A node that passes it whole (within a
 * sphere) skips that pass. */
static ng_status scan_entries(query *q, const uint32_t base[3], const uint32_t nlo[3],
                              unsigned lv, size_t b, size_t e) {
  const mainix *m = &q->g->m;
  bool stale = m->nstale != 0;
  /* A box's cells are mostly inside it: its first test is left to consider() */
  bool all = q->kind == Q_BOX;
  double far2 = 0.0;
  for (int a = 0; a < 3; a++) {
    unsigned w = lv < m->shift[a] ? lv : m->shift[a];
    double lo = (double)nlo[a], hi = lo + (double)((1u << w) - 1u);
    double far = q->cu[a] - lo > hi - q->cu[a] ? q->cu[a] - lo : hi - q->cu[a];
    far2 += far * far;
  }
  for (; b < e; b += SCAN_BLOCK) {
    size_t n = e - b < SCAN_BLOCK ? e - b : SCAN_BLOCK;
    double lim2 = raw_top2(q);
    if (q->rawlim2 < lim2) lim2 = q->rawlim2;
    const uint64_t *ent = m->ent + b;
    uint8_t kept[SCAN_BLOCK];
    size_t nk = 0;
    if (all || far2 <= lim2) {
      for (size_t i = 0; i < n; i++)
        kept[i] = (uint8_t)i;
      nk = n;
    } else if (lv <= NARROW_LEVELS) {
      nk = first_pass_narrow(q, nlo, lv, ent, n, lim2, kept);
    } else {
      nk = first_pass(q, base, ent, n, lim2, kept);
    }
    for (size_t j = 0; j < nk; j++) {
      uint64_t v = ent[kept[j]];
      uint32_t id = (uint32_t)(v & NGI_ID_MASK);
      if (stale && ngi_stale_get(m, id)) continue;
      uint32_t off[3];
      ngi_unpack(v, off);
      ng_status st = consider(q, id, base[0] + off[0], base[1] + off[1], base[2] + off[2]);
      if (st != NG_OK) return st;
    }
  }
  return NG_OK;
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

/* A crowded cell being descended: its lowest biased coordinates, its first
 * entry, and its sub-directory (sub: 8^sd + 1 offsets from b, by the top sd
 * levels of the code), which locates the nodes of those levels without a
 * search (binary searches, a cache miss each, were most of a clustered
 * sphere's time). */
typedef struct crowded {
  uint32_t base[3];
  size_t b;
  const uint32_t *sub;
  unsigned sd;
  unsigned top; /* the node depth of the cell itself (13 - levels) */
} crowded;

/* A node of a crowded cell's implicit octree: the entries [b, e) whose Morton
 * codes share their top 3*d bits; olo its lowest offsets. Children are pruned
 * by their distance first, visited nearest first, and only then located by
 * binary search between the child boundaries already found (a pruned child
 * costs no memory access). A child wholly inside the query is scanned without
 * descending further: splitting it could not prune anything. */
static ng_status visit_node(query *q, const crowded *cw, unsigned d, uint64_t prefix,
                            const uint32_t olo[3], size_t b, size_t e) {
  const mainix *m = &q->g->m;
  const uint32_t *base = cw->base;
  if (e - b <= NGI_LEAF || d >= 13) {
    const uint32_t nlo[3] = {base[0] + olo[0], base[1] + olo[1], base[2] + olo[2]};
    return scan_entries(q, base, nlo, 13 - d, b, e);
  }
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
      unsigned kd = d + 1 - cw->top; /* the children's depth inside the cell */
      if (kd <= cw->sd) {
        bnd[j] = cw->b + cw->sub[(prefix << 3 | j) << (3 * (cw->sd - kd))];
        continue;
      }
      unsigned below = j, above = j;
      while (bnd[below] == SIZE_MAX)
        below--;
      while (bnd[above] == SIZE_MAX)
        above++;
      bnd[j] = lower_bound_bf(m->ent, bnd[below], bnd[above], (prefix << 3 | j) << shift);
    }
    size_t cb = bnd[c], ce = bnd[c + 1];
    if (cb == ce) continue;
    uint32_t clo[3];
    for (int a = 0; a < 3; a++)
      clo[a] = olo[a] + (((c >> (2 - a)) & 1u) ? w : 0u);
    ng_status st;
    if (kid[i].inside) {
      const uint32_t nlo[3] = {base[0] + clo[0], base[1] + clo[1], base[2] + clo[2]};
      st = scan_entries(q, base, nlo, rest, cb, ce);
    } else {
      st = visit_node(q, cw, d + 1, prefix << 3 | c, clo, cb, ce);
    }
    if (st != NG_OK) return st;
  }
  return NG_OK;
}

#define SUB_BATCH 16 /* sub-cells whose entries are requested before the first is scanned */

/* A sub-cell of a crowded cell about to be visited: its entries, its index
 * and its lowest offsets in the cell. */
typedef struct sub_run {
  size_t b, e;
  uint32_t p;
  uint32_t olo[3];
  double dist; /* nearest-k: the decoded distance from the centre to it */
} sub_run;

/* Scan the sub-cells run[0..n), or descend those far fuller than the
 * sub-directory's depth expects (a dense knot inside the cell), where a scan
 * would read thousands of entries for a few hits. */
static ng_status visit_sub_runs(query *q, const crowded *cw, sub_run *run, unsigned n) {
  if (q->kind == Q_ALL) /* nearest first, so that the heap's bound shrinks soonest */
    for (unsigned i = 1; i < n; i++) {
      sub_run r = run[i];
      unsigned j = i;
      for (; j > 0 && run[j - 1].dist > r.dist; j--)
        run[j] = run[j - 1];
      run[j] = r;
    }
  for (unsigned i = 0; i < n; i++) {
    if (q->kind == Q_ALL && q->out->count >= q->k &&
        ngi_to_float(run[i].dist) > key_distance(&q->out->items[0]))
      break; /* the rest are no nearer */
    ng_status st;
    if (run[i].e - run[i].b > 4 * NGI_LEAF) {
      st = visit_node(q, cw, cw->top + cw->sd, run[i].p, run[i].olo, run[i].b, run[i].e);
    } else {
      const uint32_t *o = run[i].olo, *base = cw->base;
      const uint32_t nlo[3] = {base[0] + o[0], base[1] + o[1], base[2] + o[2]};
      st = scan_entries(q, base, nlo, 13 - cw->top - cw->sd, run[i].b, run[i].e);
    }
    if (st != NG_OK) return st;
  }
  return NG_OK;
}

/* Visit the sub-cells slo..shi (per axis) of crowded cell cw but those in
 * klo..khi (none when klo > khi on an axis): pruned by node_out, their entries requested
 * SUB_BATCH sub-cells at a time so that the misses overlap, then scanned. */
static ng_status visit_subcell_range(query *q, const crowded *cw, const uint32_t slo[3],
                                     const uint32_t shi[3], const uint32_t klo[3],
                                     const uint32_t khi[3]) {
  const mainix *m = &q->g->m;
  unsigned span = m->levels - cw->sd; /* a sub-cell is 2^span offsets wide */
  sub_run run[SUB_BATCH];
  unsigned nrun = 0;
  uint32_t s[3];
  for (s[0] = slo[0]; s[0] <= shi[0]; s[0]++)
    for (s[1] = slo[1]; s[1] <= shi[1]; s[1]++)
      for (s[2] = slo[2]; s[2] <= shi[2]; s[2]++) {
        if (s[0] >= klo[0] && s[0] <= khi[0] && s[1] >= klo[1] && s[1] <= khi[1] &&
            s[2] >= klo[2] && s[2] <= khi[2]) {
          s[2] = khi[2]; /* the rest of the skipped run along z */
          continue;
        }
        uint32_t p = ngi_sub_index(s);
        size_t sb = cw->b + cw->sub[p], se = cw->b + cw->sub[p + 1];
        if (sb == se) continue;
        uint32_t ulo[3], uhi[3];
        for (int a = 0; a < 3; a++) {
          uint32_t top = (1u << m->shift[a]) - 1u, o = s[a] << span, o1 = o + (1u << span) - 1u;
          ulo[a] = cw->base[a] + o;
          uhi[a] = cw->base[a] + (o1 > top ? top : o1);
        }
        double gap2, dist;
        bool inside;
        if (node_out(q, ulo, uhi, &gap2, &dist, &inside)) continue;
        for (size_t k = sb; k < se && k < sb + 8 * PREFETCH_LINES; k += 8)
          NGI_PREFETCH_READ(&m->ent[k]);
        NGI_PREFETCH_READ(&m->ent[se - 1]);
        run[nrun] = (sub_run){sb, se, p, {s[0] << span, s[1] << span, s[2] << span}, dist};
        if (++nrun < SUB_BATCH) continue;
        ng_status st = visit_sub_runs(q, cw, run, nrun);
        if (st != NG_OK) return st;
        nrun = 0;
      }
  return visit_sub_runs(q, cw, run, nrun);
}

/* The sub-cells of crowded cell cw along axis a that biased raw lo..hi
 * overlaps, in *slo..*shi; false when it misses the cell. */
static bool sub_span(const mainix *m, const crowded *cw, int a, double lo, double hi, uint32_t *slo,
                     uint32_t *shi) {
  unsigned span = m->levels - cw->sd;
  double top = (double)((1u << m->shift[a]) - 1u);
  lo -= (double)cw->base[a];
  hi -= (double)cw->base[a];
  if (hi < 0.0 || lo > top) return false;
  *slo = lo <= 0.0 ? 0u : (uint32_t)lo >> span;
  *shi = (hi >= top ? (uint32_t)top : (uint32_t)hi) >> span;
  return true;
}

/* A query in crowded cell cw: its sub-cells are a grid of their own, 2^sd on
 * a side, each found by the sub-directory with no search, so they are walked
 * like the cells of a region rather than descended level by level (whose
 * per-node tests were a third of a clustered sphere). A sphere or box visits
 * the sub-cells its bound overlaps. Nearest-k visits growing cubes of
 * sub-cells around the one nearest the centre until its heap is full (the
 * first, ~32 points, usually fills a nearest-10), then the rest of those
 * within the heap's bound. */
static ng_status visit_crowded(query *q, const crowded *cw) {
  const mainix *m = &q->g->m;
  static const uint32_t none_lo[3] = {1, 1, 1}, none_hi[3] = {0, 0, 0};
  uint32_t slo[3], shi[3];
  if (q->kind != Q_ALL || !q->k) {
    for (int a = 0; a < 3; a++) {
      double r = q->kind == Q_SPHERE ? sqrt(q->rawlim2) : INFINITY;
      double lo = q->kind == Q_BOX ? q->blo[a] : q->cu[a] - r;
      double hi = q->kind == Q_BOX ? q->bhi[a] : q->cu[a] + r;
      if (!sub_span(m, cw, a, lo, hi, &slo[a], &shi[a])) return NG_OK;
    }
    return visit_subcell_range(q, cw, slo, shi, none_lo, none_hi);
  }
  uint32_t klo[3], khi[3], last[3]; /* the cube visited so far; the cell's last sub-cells */
  for (int a = 0; a < 3; a++) {
    (void)sub_span(m, cw, a, -INFINITY, INFINITY, &slo[a], &last[a]);
    /* the sub-cell nearest the centre, which may lie outside the cell */
    double lo = (double)cw->base[a], hi = lo + (double)((1u << m->shift[a]) - 1u);
    double c = q->cu[a] < lo ? lo : q->cu[a] > hi ? hi : q->cu[a];
    (void)sub_span(m, cw, a, c, c, &klo[a], &khi[a]);
  }
  ng_status st = visit_subcell_range(q, cw, klo, khi, none_lo, none_hi);
  while (st == NG_OK && raw_top2(q) == INFINITY) {
    bool grown = false;
    for (int a = 0; a < 3; a++) {
      slo[a] = klo[a] > 0 ? klo[a] - 1 : 0;
      shi[a] = khi[a] < last[a] ? khi[a] + 1 : last[a];
      grown = grown || slo[a] < klo[a] || shi[a] > khi[a];
    }
    if (!grown) return st; /* the whole cell is visited */
    st = visit_subcell_range(q, cw, slo, shi, klo, khi);
    memcpy(klo, slo, sizeof klo);
    memcpy(khi, shi, sizeof khi);
  }
  if (st != NG_OK) return st;
  double r = sqrt(raw_top2(q));
  for (int a = 0; a < 3; a++)
    if (!sub_span(m, cw, a, q->cu[a] - r, q->cu[a] + r, &slo[a], &shi[a])) return NG_OK;
  return visit_subcell_range(q, cw, slo, shi, klo, khi);
}

/* The points of box cell (x, y, z): its main entries that are not hidden, and
 * its side entries when they are probed per cell. */
ng_status ngi_visit_cell(query *q, uint32_t x, uint32_t y, uint32_t z) {
  const ngi_grid *g = q->g;
  const mainix *m = &g->m;
  uint32_t idx = (x * m->nc[1] + y) * m->nc[2] + z;
  if (m->n) {
    const uint32_t base[3] = {(m->c0[0] + x) << m->shift[0], (m->c0[1] + y) << m->shift[1],
                              (m->c0[2] + z) << m->shift[2]};
    size_t b = m->starts[idx], e = m->starts[idx + 1];
    ng_status st;
    if (e - b <= NGI_LEAF) {
      st = scan_entries(q, base, base, m->levels, b, e);
    } else {
      crowded cw = {.base = {base[0], base[1], base[2]},
                    .b = b,
                    .sub = ngi_sub_dir(m, idx),
                    .sd = ngi_sub_depth(m, e - b),
                    .top = 13 - m->levels};
      st = visit_crowded(q, &cw);
    }
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
/* Choose how side entries are read: all at once when few (or when the region
 * has more cells than there are side entries), else per visited cell. */
ng_status ngi_plan_side(query *q, uint64_t cells) {
  const ngi_grid *g = q->g;
  q->side_each_cell = g->side_count > SIDE_SCAN && cells < g->side_count;
  if (g->side_count && !q->side_each_cell) return visit_side_all(q);
  return NG_OK;
}

/* A run of cells along z, clo..chi, in one (x, y) row: contiguous in the
 * directory and in the entries. */
typedef struct zrun {
  uint32_t x, y, z0, z1;
} zrun;

#define RUNS_AHEAD 32 /* runs whose memory is requested before they are walked */
#define Z_GAPS 64     /* z gaps computed once per query; longer ranges compute them per row */

/* Walk runs[0..n): first request the entries of every run (the directory's
 * lines were requested as the runs were found), then visit them. A sphere's
 * cells are a few dozen runs of about 100 bytes each, far apart in memory:
 * requested together, their cache misses overlap instead of queuing one
 * after the other (they were most of a ~100-hit sphere's time). */
static ng_status walk_runs(query *q, const zrun *runs, size_t n) {
  const mainix *m = &q->g->m;
  for (size_t i = 0; i < n; i++) {
    size_t at = ((size_t)runs[i].x * m->nc[1] + runs[i].y) * m->nc[2];
    prefetch_entries(m, at + runs[i].z0, at + runs[i].z1);
  }
  for (size_t i = 0; i < n; i++)
    for (uint32_t z = runs[i].z0; z <= runs[i].z1; z++) {
      ng_status st = ngi_visit_cell(q, runs[i].x, runs[i].y, z);
      if (st != NG_OK) return st;
    }
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
  ng_status st = ngi_plan_side(q, cells);
  if (st != NG_OK) return st;
  if (m->n == 0 && !q->side_each_cell) return NG_OK;
  if (whole && q->kind != Q_ALL && !q->side_each_cell) {
    /* Everything: read the entries in order, no per-cell pruning. */
    for (uint32_t x = 0; x < m->nc[0]; x++)
      for (uint32_t y = 0; y < m->nc[1]; y++)
        for (uint32_t z = 0; z < m->nc[2]; z++) {
          st = ngi_visit_cell(q, x, y, z);
          if (st != NG_OK) return st;
        }
    return NG_OK;
  }
  double zg[Z_GAPS];
  uint32_t nz = chi[2] - clo[2] + 1;
  for (uint32_t z = 0; nz <= Z_GAPS && z < nz; z++)
    zg[z] = axis_gap(q, 2, clo[2] + z);
  zrun runs[RUNS_AHEAD];
  size_t nr = 0;
  for (uint32_t x = clo[0]; x <= chi[0]; x++) {
    double gx = axis_gap(q, 0, x);
    for (uint32_t y = clo[1]; y <= chi[1]; y++) {
      double gy = axis_gap(q, 1, y);
      /* The cells of the row that can hold a hit are one run: the gap along
       * z falls to the centre's cell and grows past it. */
      uint32_t z0 = clo[2], z1 = chi[2];
      while (z0 <= z1 && cell_out(q, gx, gy, nz <= Z_GAPS ? zg[z0 - clo[2]] : axis_gap(q, 2, z0)))
        z0++;
      while (z1 > z0 && cell_out(q, gx, gy, nz <= Z_GAPS ? zg[z1 - clo[2]] : axis_gap(q, 2, z1)))
        z1--;
      if (z0 > z1) continue;
      size_t at = ((size_t)x * m->nc[1] + y) * m->nc[2];
      prefetch_dir(m, at + z0, at + z1);
      runs[nr++] = (zrun){x, y, z0, z1};
      if (nr == RUNS_AHEAD) {
        st = walk_runs(q, runs, nr);
        if (st != NG_OK) return st;
        nr = 0;
      }
    }
  }
  return walk_runs(q, runs, nr);
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
ng_status ngi_run_sphere(query *q) {
  const ngi_grid *g = q->g;
  double s = g->rpu;
  uint32_t clo[3], chi[3];
  for (int a = 0; a < 3; a++) {
    double cr = q->c[a] * s + NGI_BIAS, rr = q->radius * s;
    if (!to_cells(g, a, cr - rr - 1.0, cr + rr + 1.0, &clo[a], &chi[a])) return NG_OK;
  }
  return visit_region(q, clo, chi);
}

ng_status ngi_run_box(query *q) {
  const ngi_grid *g = q->g;
  double s = g->rpu;
  uint32_t clo[3], chi[3];
  for (int a = 0; a < 3; a++)
    if (!to_cells(g, a, (double)q->lo[a] * s + NGI_BIAS - 1.0,
                  (double)q->hi[a] * s + NGI_BIAS + 1.0, &clo[a], &chi[a]))
      return NG_OK;
  return visit_region(q, clo, chi);
}

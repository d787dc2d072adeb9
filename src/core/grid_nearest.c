/* The grid's nearest-k search: rings of cells outward from the centre,
 * then a sweep of the rest with per-slab cut-offs. */
#include "grid_query.h"

#include <stdlib.h>

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
              ng_status st = ngi_visit_cell(q, (uint32_t)x, (uint32_t)y, (uint32_t)z);
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
#define RING_GAPS 65     /* rings up to r = 32 compute their gaps along y and z once */
#define PREFETCH_RINGS 2 /* the directory of the cubes up to this r is requested ahead */

/* Request the directory entries of the cube cc-r..cc+r (its rows along z)
 * once the search goes on to its ring, while the ring's cells are listed:
 * they are then located without waiting, and their entries requested
 * together (their cache misses, one after the other, were most of a
 * clustered nearest-10's time). */
static void prefetch_cube_dir(const mainix *m, const uint32_t cc[3], uint32_t r) {
  uint32_t lo[3], hi[3];
  for (int a = 0; a < 3; a++) {
    lo[a] = cc[a] > r ? cc[a] - r : 0;
    hi[a] = cc[a] + r < m->nc[a] ? cc[a] + r : m->nc[a] - 1;
  }
  for (uint32_t x = lo[0]; x <= hi[0]; x++)
    for (uint32_t y = lo[1]; y <= hi[1]; y++) {
      size_t at = ((size_t)x * m->nc[1] + y) * m->nc[2];
      prefetch_dir(m, at + lo[2], at + hi[2]);
    }
}

/* Nearest k (q->k > 0): search rings of cells outward from the centre's
 * cell, keeping the best k in a heap; within a ring the cells go nearest
 * first, and a cell farther than the k-th best so far is skipped (with the
 * rest of the ring). Stops when the k-th best is strictly closer than
 * anything outside the searched cube (strictly, so an equal distance with a
 * smaller id cannot be missed) or the cube is the whole box. */
ng_status ngi_run_nearest(query *q) {
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
  ng_status st = ngi_plan_side(q, g->side_count > 64 && !outside ? 0 : UINT64_MAX);
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
    /* The ring's gaps along y and z, computed once (each decodes two
     * coordinates) rather than per row and per cell. */
    double gys[RING_GAPS], gzs[RING_GAPS];
    bool pre = 2 * (uint64_t)r + 1 <= RING_GAPS;
    for (int64_t d = -(int64_t)r; pre && d <= (int64_t)r; d++) {
      int64_t y = (int64_t)cc[1] + d, z = (int64_t)cc[2] + d;
      if (y >= 0 && y < m->nc[1]) gys[d + r] = axis_gap(q, 1, (uint32_t)y);
      if (z >= 0 && z < m->nc[2]) gzs[d + r] = axis_gap(q, 2, (uint32_t)z);
    }
    for (int64_t dx = -(int64_t)r; dx <= (int64_t)r; dx++) {
      int64_t x = (int64_t)cc[0] + dx;
      if (x < 0 || x >= m->nc[0]) continue;
      double gx = axis_gap(q, 0, (uint32_t)x);
      for (int64_t dy = -(int64_t)r; dy <= (int64_t)r; dy++) {
        int64_t y = (int64_t)cc[1] + dy;
        if (y < 0 || y >= m->nc[1]) continue;
        double gy = pre ? gys[dy + r] : axis_gap(q, 1, (uint32_t)y);
        bool face = dx == -(int64_t)r || dx == (int64_t)r || dy == -(int64_t)r || dy == (int64_t)r;
        int64_t step = face || r == 0 ? 1 : 2 * (int64_t)r;
        for (int64_t dz = -(int64_t)r; dz <= (int64_t)r; dz += step) {
          int64_t z = (int64_t)cc[2] + dz;
          if (z < 0 || z >= m->nc[2]) continue;
          double gz = pre ? gzs[dz + r] : axis_gap(q, 2, (uint32_t)z);
          /* cell_out() for nearest-k, its distance kept for the order */
          double d = sqrt(gx * gx + gy * gy + gz * gz);
          if (h->count >= q->k && ngi_to_float(d) > key_distance(&h->items[0])) continue;
          if (nb < RING_BUF) {
            ring_cell *c = &buf[nb++];
            c->d = d;
            c->x = (uint32_t)x;
            c->y = (uint32_t)y;
            c->z = (uint32_t)z;
          } else {
            /* A huge ring (a sparse box): visit the overflow unordered. */
            st = ngi_visit_cell(q, (uint32_t)x, (uint32_t)y, (uint32_t)z);
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
    for (size_t i = 0; i < nb; i++) { /* the cells the heap does not rule out yet */
      if (h->count >= q->k && ngi_to_float(buf[i].d) > key_distance(&h->items[0])) break;
      size_t idx = ((size_t)buf[i].x * m->nc[1] + buf[i].y) * m->nc[2] + buf[i].z;
      prefetch_entries(m, idx, idx);
    }
    for (size_t i = 0; i < nb; i++) {
      if (h->count >= q->k && ngi_to_float(buf[i].d) > key_distance(&h->items[0])) break;
      st = ngi_visit_cell(q, buf[i].x, buf[i].y, buf[i].z);
      if (st != NG_OK) return st;
    }
    double bound = outside_bound(q, cc, r, hull2);
    if (isinf(bound)) return NG_OK; /* every cell searched */
    if (h->count == q->k && key_distance(&h->items[0]) < ngi_to_float(bound)) return NG_OK;
    if (r < PREFETCH_RINGS) prefetch_cube_dir(m, cc, r + 1);
  }
}

/* Trigger zones: spheres and boxes per space, found through a uniform grid
 * of their bounding boxes, and the enter/leave events of the token events
 * that cross them (events.h). Zones live under the write lock. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct zone {
  uint64_t id;
  ng_zone_spec spec;
  double lo[3], hi[3]; /* bounding box, decoded units */
} zone;

/* What a lookup reads of a zone, in raw steps and packed apart from the
 * specs, so that a frame's lookups stay in cache. lo..hi: the raw bounding
 * box; for a box exactly the raw values its decoded test accepts. A sphere:
 * its centre and squared radius in raw steps, and the margin around the
 * radius within which rounding could make the decoded test disagree (there
 * the spec decides). */
typedef struct zone_hot {
  double c[3], r2, margin;
  int32_t lo[3], hi[3];
  uint64_t id;
  uint32_t z; /* index in zones.z */
  int8_t entity;
  bool sphere;
  uint16_t tags;
} zone_hot;

/* The index of a space works in raw coordinates, so a move that meets no
 * zone costs two shifts and two loads: cells are 2^shift raw steps on a
 * side (at least 2^MIN_SHIFT, so the cell array stays small), and a zone is
 * listed in every cell its bounding box touches, unless that is more than
 * CELLS_PER_ZONE cells: then it is in the space's `big` list, visited at
 * every lookup. */
#define MIN_SHIFT 10
#define CELLS_PER_ZONE 64

typedef struct cell_entry {
  uint32_t cell; /* the cell's index */
  uint32_t zone; /* index in `hot` */
} cell_entry;

typedef struct space_index {
  bool dirty;    /* zones or the space's unit changed since the index was built */
  bool scan;     /* the index could not be built: scan every zone */
  ngi_unit unit; /* the unit it was built in */
  int shift;     /* cell edge: 2^shift raw steps */
  uint32_t axis; /* cells per axis: 65536 >> shift */
  zone_hot *hot; /* the space's zones, in zone order (ids ascending) */
  size_t nhot, hot_cap;
  cell_entry *cells; /* sorted by cell: each occupied cell's zones are a run */
  size_t ncells, cells_cap;
  /* Which cells are occupied, small enough to stay in cache: a bit per cell
   * (axis^3 bits in `words` words), and per word the occupied cells before
   * it, which rank a cell among the occupied ones. */
  uint64_t *bits;
  uint32_t *rank;
  size_t words;
  ngi_zone_cell *occ; /* per occupied cell, in cell order: its run and finer cells */
  size_t occ_cap;
  uint32_t *big; /* indices in `hot` */
  size_t nbig, big_cap;
  uint32_t map[3 * 256]; /* the gate's (events.h) */
} space_index;

struct ngi_zones {
  zone *z; /* ids ascending */
  size_t n, cap;
  uint64_t last_id;
  space_index idx[NG_SPACES];
};

void ngi_zones_free(ng_runtime *rt) {
  ngi_zones *zs = rt->ev.zones;
  if (!zs) return;
  for (int s = 0; s < NG_SPACES; s++) {
    space_index *ix = &zs->idx[s];
    ngi_free(rt, ix->hot, ix->hot_cap * sizeof *ix->hot);
    ngi_free(rt, ix->cells, ix->cells_cap * sizeof *ix->cells);
    ngi_free(rt, ix->bits, ix->words * sizeof *ix->bits);
    ngi_free(rt, ix->rank, ix->words * sizeof *ix->rank);
    ngi_free(rt, ix->occ, ix->occ_cap * sizeof *ix->occ);
    ngi_free(rt, ix->big, ix->big_cap * sizeof *ix->big);
  }
  ngi_free(rt, zs->z, zs->cap * sizeof(zone));
  ngi_free(rt, zs, sizeof *zs);
  rt->ev.zones = NULL;
  memset(rt->ev.gate, 0, sizeof rt->ev.gate);
}

/* The number of bits set in x, inline (without -mpopcnt, __builtin_popcountll
 * is a call into libgcc, and the gate asks for it on every move near a zone). */
static inline uint32_t rank_bits(uint64_t x) {
  x -= (x >> 1) & 0x5555555555555555ull;
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return (uint32_t)((x * 0x0101010101010101ull) >> 56);
}

/* ---- geometry ------------------------------------------------------------- */

static void bbox_of(zone *z) {
  const ng_zone_spec *p = &z->spec;
  for (int a = 0; a < 3; a++) {
    z->lo[a] = p->shape == NG_ZONE_SPHERE ? p->center[a] - p->radius : p->lo[a];
    z->hi[a] = p->shape == NG_ZONE_SPHERE ? p->center[a] + p->radius : p->hi[a];
  }
}

/* The decoded test: the definition every faster one must agree with. */
static bool inside(const ng_zone_spec *p, const double q[3]) {
  if (p->shape == NG_ZONE_BOX)
    return q[0] >= p->lo[0] && q[0] <= p->hi[0] && q[1] >= p->lo[1] && q[1] <= p->hi[1] &&
           q[2] >= p->lo[2] && q[2] <= p->hi[2];
  double dx = q[0] - p->center[0], dy = q[1] - p->center[1], dz = q[2] - p->center[2];
  return dx * dx + dy * dy + dz * dz <= p->radius * p->radius;
}

static bool passes_flags(const ng_zone_spec *p, uint16_t flags) {
  if (p->entity >= 0 && (unsigned)((flags & NG_TOKEN_ENTITY_MASK) >> 8) != (unsigned)p->entity)
    return false;
  return (flags & p->tags) == p->tags;
}

static void decode(const ng_runtime *rt, int s, const int16_t raw[3], double out[3]) {
  for (int a = 0; a < 3; a++)
    out[a] = ngi_unit_decode(&rt->units[s], raw[a]);
}

/* The raw coordinate nearest decoded v, one step wide of the codec's
 * rounding, clamped to int16: bounding boxes in raw steps. */
static int32_t raw_bound(const ngi_unit *u, double v, int dir) {
  double r = v / u->scale * u->base;
  r = dir < 0 ? floor(r) - 1 : ceil(r) + 1;
  if (!(r > INT16_MIN)) return INT16_MIN; /* NaN cannot happen: spec is finite */
  if (r > INT16_MAX) return INT16_MAX;
  return (int32_t)r;
}

/* The least raw value (from raw_bound's estimate) whose decoded value is
 * >= v, or the greatest whose decoded value is <= v (dir > 0): a box's exact
 * raw interval, since decoding is monotonic. May leave -32768..32767 by one
 * when no value qualifies. */
static int32_t raw_edge(const ngi_unit *u, double v, int dir) {
  int32_t r = raw_bound(u, v, dir > 0 ? -1 : 1);
  if (dir < 0) {
    while (r <= INT16_MAX && ngi_unit_decode(u, r) < v)
      r++;
    while (r > INT16_MIN && ngi_unit_decode(u, r - 1) >= v)
      r--;
  } else {
    while (r >= INT16_MIN && ngi_unit_decode(u, r) > v)
      r--;
    while (r < INT16_MAX && ngi_unit_decode(u, r + 1) <= v)
      r++;
  }
  return r;
}

/* The hot form of zone z (index zi) in unit u; false when no raw point can
 * be inside it (a box between two steps on some axis). */
static bool hot_of(const zone *z, uint32_t zi, const ngi_unit *u, zone_hot *h) {
  const ng_zone_spec *p = &z->spec;
  memset(h, 0, sizeof *h);
  h->id = z->id;
  h->z = zi;
  h->entity = (int8_t)p->entity;
  h->tags = p->tags;
  h->sphere = p->shape == NG_ZONE_SPHERE;
  for (int a = 0; a < 3; a++) {
    if (h->sphere) {
      h->lo[a] = raw_bound(u, z->lo[a], -1);
      h->hi[a] = raw_bound(u, z->hi[a], 1);
      h->c[a] = p->center[a] / u->scale * u->base;
    } else {
      h->lo[a] = raw_edge(u, p->lo[a], -1);
      h->hi[a] = raw_edge(u, p->hi[a], 1);
      if (h->lo[a] > h->hi[a] || h->lo[a] > INT16_MAX || h->hi[a] < INT16_MIN) return false;
    }
  }
  double r = p->radius / u->scale * u->base;
  h->r2 = r * r;
  /* Both tests round each of a few operations on terms below (2^16 +
   * |c|)^2 raw steps squared: a millionth of a millionth of that, and 1e-9
   * of r2, is far more than their rounding and far less than a step. */
  double span = 65536.0 + fabs(h->c[0]) + fabs(h->c[1]) + fabs(h->c[2]);
  h->margin = 1e-9 * (h->r2 + span * span);
  return true;
}

/* Whether raw point p (NULL: none) is inside zone h of space s. */
static bool hot_inside(const ng_runtime *rt, int s, const zone_hot *h, const int16_t *p) {
  if (!p || p[0] < h->lo[0] || p[0] > h->hi[0] || p[1] < h->lo[1] || p[1] > h->hi[1] ||
      p[2] < h->lo[2] || p[2] > h->hi[2])
    return false;
  if (!h->sphere) return true;
  double d2 = 0;
  for (int a = 0; a < 3; a++) {
    double d = (double)p[a] - h->c[a];
    d2 += d * d;
  }
  if (d2 < h->r2 - h->margin) return true;
  if (d2 > h->r2 + h->margin) return false;
  double q[3];
  decode(rt, s, p, q);
  return inside(&rt->ev.zones->z[h->z].spec, q);
}

/* The occupied cell holding raw p (NULL: none, or p NULL). */
static inline ngi_zone_cell *cell_of(const space_index *ix, const int16_t *p) {
  if (!p) return NULL;
  uint32_t x = (uint32_t)(p[0] + 32768) >> ix->shift, y = (uint32_t)(p[1] + 32768) >> ix->shift,
           z = (uint32_t)(p[2] + 32768) >> ix->shift;
  uint32_t cell = (x * ix->axis + y) * ix->axis + z;
  uint64_t w = ix->bits[cell / 64], bit = (uint64_t)1 << (cell % 64);
  if (!(w & bit)) return NULL;
  return &ix->occ[ix->rank[cell / 64] + rank_bits(w & (bit - 1))];
}

static int cmp_cell(const void *a, const void *b) {
  const cell_entry *x = a, *y = b;
  if (x->cell != y->cell) return x->cell < y->cell ? -1 : 1;
  return x->zone < y->zone ? -1 : x->zone > y->zone;
}

/* ---- the finer cells of the gate -------------------------------------------- */

/* The finer cells of gate g's cell `cell` (NULL: it meets no zone). */
static const ngi_zone_cell *gate_cell(const ngi_zone_gate *g, uint32_t cell) {
  uint64_t w = g->bits[cell / 64], b = (uint64_t)1 << (cell % 64);
  return w & b ? &g->cells[g->rank[cell / 64] + rank_bits(w & (b - 1))] : NULL;
}

/* The finer cell of gate code `code` (ngi_gate_code), as a bit. */
static uint64_t gate_bit(uint32_t code) {
  return (uint64_t)1 << (code >> NGI_GATE_CELL_BITS);
}

/* Fill ix's gate map (events.h) for its cells of 2^shift raw steps: the
 * high byte h of a raw coordinate is the biased value's h ^ 0x80, whose
 * cell is (h ^ 0x80) >> (shift - 8) and finer cell the next two bits. */
static void build_map(space_index *ix) {
  unsigned k = 16 - (unsigned)ix->shift;
  for (unsigned h = 0; h < 256; h++) {
    uint32_t b = h ^ 0x80u, c = b >> (ix->shift - 8), f = (b >> (ix->shift - 10)) & 3u;
    ix->map[h] = c << 2 * k | f << 4 << NGI_GATE_CELL_BITS;
    ix->map[256 + h] = c << k | f << 2 << NGI_GATE_CELL_BITS;
    ix->map[512 + h] = c | f << NGI_GATE_CELL_BITS;
  }
}

void ngi_zones_gate_prefetch(const ngi_zone_gate *g, uint32_t cell) {
  NGI_PREFETCH(gate_cell(g, cell));
}

/* Where the raw steps lo..hi of one axis lie against zone z's shape on that
 * axis, in decoded units widened by a step each side (so that rounding in
 * inside() cannot put a point of the cell where this says it is not): for a
 * sphere, the least and greatest squared distance to the centre's
 * coordinate; for a box, 0 outside, 1 across a face, 2 inside. */
typedef struct axis_span {
  double near2, far2;
  int box;
} axis_span;

static axis_span span_of(const zone *z, const ngi_unit *u, int a, int32_t lo, int32_t hi) {
  double step = u->scale / u->base;
  double l = ngi_unit_decode(u, lo) - step, h = ngi_unit_decode(u, hi) + step;
  const ng_zone_spec *p = &z->spec;
  axis_span sp = {0, 0, 0};
  if (p->shape == NG_ZONE_SPHERE) {
    double c = p->center[a], near = fmax(0, fmax(l - c, c - h)),
           far = fmax(fabs(l - c), fabs(h - c));
    sp.near2 = near * near;
    sp.far2 = far * far;
  } else if (h >= p->lo[a] && l <= p->hi[a]) {
    sp.box = l >= p->lo[a] && h <= p->hi[a] ? 2 : 1;
  }
  return sp;
}

/* Mark the finer cells of index cell `cell` (whose first raw steps are
 * origin[]) that zone z meets or whose boundary crosses. */
static void mark_fine(const zone *z, const ngi_unit *u, int shift, const int32_t origin[3],
                      ngi_zone_cell *cell) {
  int32_t w = (int32_t)1 << (shift - 2);
  axis_span sp[3][4];
  for (int a = 0; a < 3; a++)
    for (int k = 0; k < 4; k++)
      sp[a][k] = span_of(z, u, a, origin[a] + k * w, origin[a] + (k + 1) * w - 1);
  double r2 = z->spec.radius * z->spec.radius;
  bool sphere = z->spec.shape == NG_ZONE_SPHERE;
  for (int i = 0; i < 64; i++) {
    const axis_span *x = &sp[0][i >> 4], *y = &sp[1][(i >> 2) & 3], *v = &sp[2][i & 3];
    bool meets, within;
    if (sphere) {
      meets = x->near2 + y->near2 + v->near2 <= r2;
      within = x->far2 + y->far2 + v->far2 < r2;
    } else {
      meets = x->box && y->box && v->box;
      within = x->box == 2 && y->box == 2 && v->box == 2;
    }
    if (!meets) continue;
    cell->occupied |= (uint64_t)1 << i;
    if (!within) cell->edge |= (uint64_t)1 << i;
  }
}

/* The cells of index ix zone h's bounding box covers, lo..hi per axis, and
 * how many. */
static double cell_range(const space_index *ix, const zone_hot *h, uint32_t lo[3], uint32_t hi[3]) {
  double cells = 1;
  for (int a = 0; a < 3; a++) {
    int32_t l = h->lo[a] < INT16_MIN ? INT16_MIN : h->lo[a];
    int32_t r = h->hi[a] > INT16_MAX ? INT16_MAX : h->hi[a];
    lo[a] = (uint32_t)(l + 32768) >> ix->shift;
    hi[a] = (uint32_t)(r + 32768) >> ix->shift;
    cells *= (double)(hi[a] - lo[a] + 1);
  }
  return cells;
}

/* ---- the index of one space ------------------------------------------------ */

static bool push_cell(ng_runtime *rt, space_index *ix, uint32_t cell, uint32_t k) {
  if (ix->ncells == ix->cells_cap) {
    size_t cap = ix->cells_cap ? 2 * ix->cells_cap : 64;
    cell_entry *c = ngi_realloc_array(rt, ix->cells, ix->cells_cap, cap, sizeof *c);
    if (!c) return false;
    ix->cells = c;
    ix->cells_cap = cap;
  }
  ix->cells[ix->ncells++] = (cell_entry){cell, k};
  return true;
}

static bool push_big(ng_runtime *rt, space_index *ix, uint32_t k) {
  if (ix->nbig == ix->big_cap) {
    size_t cap = ix->big_cap ? 2 * ix->big_cap : 8;
    uint32_t *b = ngi_realloc_array(rt, ix->big, ix->big_cap, cap, sizeof *b);
    if (!b) return false;
    ix->big = b;
    ix->big_cap = cap;
  }
  ix->big[ix->nbig++] = k;
  return true;
}

/* The hot forms of space s's zones in unit u, and their mean extent in raw
 * steps. False without memory. */
static bool build_hot(ng_runtime *rt, ngi_zones *zs, int s, const ngi_unit *u, double *extent) {
  space_index *ix = &zs->idx[s];
  size_t n = 0;
  for (size_t i = 0; i < zs->n; i++)
    n += zs->z[i].spec.space == s;
  if (n > ix->hot_cap) {
    zone_hot *h = ngi_realloc_array(rt, ix->hot, ix->hot_cap, n, sizeof *h);
    if (!h) return false;
    ix->hot = h;
    ix->hot_cap = n;
  }
  double sum = 0;
  ix->nhot = 0;
  for (size_t i = 0; i < zs->n; i++) {
    if (zs->z[i].spec.space != s) continue;
    zone_hot *h = &ix->hot[ix->nhot];
    if (!hot_of(&zs->z[i], (uint32_t)i, u, h)) continue; /* holds no raw point */
    double ext = 0;
    for (int a = 0; a < 3; a++)
      ext = fmax(ext, (double)h->hi[a] - h->lo[a]);
    sum += ext;
    ix->nhot++;
  }
  *extent = ix->nhot ? sum / (double)ix->nhot : 0;
  return true;
}

/* The bitmap and ranks of the index's cells at its shift. False without memory. */
static bool build_bits(ng_runtime *rt, space_index *ix) {
  size_t words = ((size_t)ix->axis * ix->axis * ix->axis + 63) / 64;
  if (words != ix->words) {
    uint64_t *b = ngi_alloc_array(rt, words, sizeof *b);
    uint32_t *r = ngi_alloc_array(rt, words, sizeof *r);
    if (!b || !r) {
      ngi_free(rt, b, b ? words * sizeof *b : 0);
      ngi_free(rt, r, r ? words * sizeof *r : 0);
      return false;
    }
    ngi_free(rt, ix->bits, ix->words * sizeof *b);
    ngi_free(rt, ix->rank, ix->words * sizeof *r);
    ix->bits = b;
    ix->rank = r;
    ix->words = words;
  }
  memset(ix->bits, 0, words * sizeof *ix->bits);
  return true;
}

/* The cell lists of the zones (or the big list), sorted, and the occupied
 * cells' runs, bits and ranks. False without memory. */
static bool build_cells(ng_runtime *rt, space_index *ix) {
  ix->ncells = ix->nbig = 0;
  for (size_t k = 0; k < ix->nhot; k++) {
    uint32_t lo[3], hi[3];
    bool ok = true;
    if (cell_range(ix, &ix->hot[k], lo, hi) > CELLS_PER_ZONE) {
      ok = push_big(rt, ix, (uint32_t)k);
    } else {
      for (uint32_t x = lo[0]; ok && x <= hi[0]; x++)
        for (uint32_t y = lo[1]; ok && y <= hi[1]; y++)
          for (uint32_t w = lo[2]; ok && w <= hi[2]; w++)
            ok = push_cell(rt, ix, (x * ix->axis + y) * ix->axis + w, (uint32_t)k);
    }
    if (!ok) return false;
  }
  qsort(ix->cells, ix->ncells, sizeof *ix->cells, cmp_cell);
  size_t nruns = 0;
  for (size_t i = 0; i < ix->ncells; i++)
    nruns += i == 0 || ix->cells[i].cell != ix->cells[i - 1].cell;
  if (nruns > ix->occ_cap) {
    ngi_zone_cell *o = ngi_realloc_array(rt, ix->occ, ix->occ_cap, nruns, sizeof *o);
    if (!o) return false;
    ix->occ = o;
    ix->occ_cap = nruns;
  }
  size_t run = 0; /* in cell order, so a cell's rank is its run's index */
  for (size_t i = 0; i < ix->ncells;) {
    size_t j = i;
    while (j < ix->ncells && ix->cells[j].cell == ix->cells[i].cell)
      j++;
    uint32_t cell = ix->cells[i].cell;
    uint32_t start = j - i == 1 ? ix->cells[i].zone : (uint32_t)i;
    ix->occ[run++] = (ngi_zone_cell){0, 0, start, (uint32_t)(j - i)};
    ix->bits[cell / 64] |= (uint64_t)1 << (cell % 64);
    i = j;
  }
  uint32_t before = 0;
  for (size_t w = 0; w < ix->words; w++) {
    ix->rank[w] = before;
    before += rank_bits(ix->bits[w]);
  }
  return true;
}

/* The finer cells of every occupied cell (what the inline gate reads). */
static void build_fine(ngi_zones *zs, space_index *ix) {
  for (size_t k = 0; k < ix->nhot; k++) {
    uint32_t lo[3], hi[3];
    cell_range(ix, &ix->hot[k], lo, hi);
    for (uint32_t x = lo[0]; x <= hi[0]; x++)
      for (uint32_t y = lo[1]; y <= hi[1]; y++)
        for (uint32_t w = lo[2]; w <= hi[2]; w++) {
          int32_t origin[3] = {(int32_t)(x << ix->shift) - 32768, (int32_t)(y << ix->shift) - 32768,
                               (int32_t)(w << ix->shift) - 32768};
          const int16_t at[3] = {(int16_t)origin[0], (int16_t)origin[1], (int16_t)origin[2]};
          mark_fine(&zs->z[ix->hot[k].z], &ix->unit, ix->shift, origin, cell_of(ix, at));
        }
  }
}

/* Rebuild space s's index in its current unit. The cell edge is the zones'
 * mean extent in raw steps, rounded up to a power of two. Without memory,
 * every lookup scans the space's zones until the next rebuild. */
static void rebuild(ng_runtime *rt, ngi_zones *zs, int s) {
  space_index *ix = &zs->idx[s];
  const ngi_unit *u = &rt->units[s];
  rt->ev.gate[s] = (ngi_zone_gate){.any = true}; /* open (the bits may move) until the end */
  ix->dirty = false;
  ix->unit = *u;
  double extent;
  ix->scan = !build_hot(rt, zs, s, u, &extent);
  if (ix->scan) return;
  int shift = MIN_SHIFT; /* cells of about half a zone: few cells to list, few false hits */
  while (shift < 16 && (double)(2u << shift) < extent)
    shift++;
  ix->shift = shift;
  ix->axis = 65536u >> shift;
  ix->scan = !build_bits(rt, ix) || !build_cells(rt, ix);
  if (ix->scan) return;
  if (ix->nhot == 0) { /* the inline gate rejects every move, or those that cross no boundary */
    rt->ev.gate[s].any = false;
  } else if (ix->nbig == 0) {
    build_fine(zs, ix);
    build_map(ix);
    rt->ev.gate[s] = (ngi_zone_gate){ix->bits, ix->rank, ix->occ, ix->map, true};
  }
}

/* ---- crossings ------------------------------------------------------------- */

typedef struct crossing {
  ng_event ev; /* the enter/leave being made: kind and zone vary */
  const int16_t *from, *to;
} crossing;

/* An event if the token, inside (was) and then (is), crossed zone `id`'s
 * boundary in the direction of c->ev.kind. */
static void judge(ng_runtime *rt, crossing *c, bool was, bool is, uint64_t id) {
  if (was == is || (c->ev.kind == NG_EV_LEAVE) != was) return;
  c->ev.zone = id;
  ngi_ev_push(rt, &c->ev);
}

static void visit(ng_runtime *rt, crossing *c, const zone_hot *h) {
  uint16_t f = c->ev.token_flags;
  if (h->entity >= 0 && (unsigned)((f & NG_TOKEN_ENTITY_MASK) >> 8) != (unsigned)h->entity) return;
  if ((f & h->tags) != h->tags) return;
  int s = c->ev.space;
  judge(rt, c, hot_inside(rt, s, h, c->from), hot_inside(rt, s, h, c->to), h->id);
}

/* Visit the zones of space s listed in occupied cell `cell` (NULL: none)
 * and the big ones, or every zone of s when the index could not be built. */
static void visit_cell(ng_runtime *rt, crossing *c, const ngi_zone_cell *cell) {
  ngi_zones *zs = rt->ev.zones;
  const space_index *ix = &zs->idx[c->ev.space];
  if (ix->scan) { /* the decoded test on every zone */
    double from[3], to[3];
    if (c->from) decode(rt, c->ev.space, c->from, from);
    if (c->to) decode(rt, c->ev.space, c->to, to);
    for (size_t i = 0; i < zs->n; i++) {
      const ng_zone_spec *p = &zs->z[i].spec;
      if (p->space != c->ev.space || !passes_flags(p, c->ev.token_flags)) continue;
      judge(rt, c, c->from && inside(p, from), c->to && inside(p, to), zs->z[i].id);
    }
    return;
  }
  for (size_t i = 0; i < ix->nbig; i++)
    visit(rt, c, &ix->hot[ix->big[i]]);
  if (!cell) return;
  if (cell->count == 1) {
    visit(rt, c, &ix->hot[cell->start]);
    return;
  }
  for (uint32_t i = 0; i < cell->count; i++)
    visit(rt, c, &ix->hot[ix->cells[cell->start + i].zone]);
}

/* The leave and enter events (leaves first) of token id going in `space`
 * from raw `from` (in occupied cell cf, NULL: none) to raw `to` (cell ct). */
static void cross_cells(ng_runtime *rt, ng_id id, int space, const int16_t *from,
                        const int16_t *to, uint16_t token_flags, uint8_t placed,
                        const ngi_zone_cell *cf, const ngi_zone_cell *ct) {
  crossing c;
  memset(&c, 0, sizeof c);
  c.ev.id = id;
  c.ev.space = (int8_t)space;
  c.ev.placed = placed;
  c.ev.token_flags = token_flags;
  c.from = from;
  c.to = to;
  if (from) memcpy(c.ev.from_xyz, from, sizeof c.ev.from_xyz);
  if (to) memcpy(c.ev.to_xyz, to, sizeof c.ev.to_xyz);
  if (from) {
    c.ev.kind = NG_EV_LEAVE;
    visit_cell(rt, &c, cf);
  }
  if (to) {
    c.ev.kind = NG_EV_ENTER;
    visit_cell(rt, &c, ct);
  }
}

void ngi_zones_cross(ng_runtime *rt, ng_id id, int space, const int16_t *from, const int16_t *to,
                     uint16_t token_flags, uint8_t placed) {
  ngi_zones *zs = rt->ev.zones;
  space_index *ix = &zs->idx[space];
  if (!ix->dirty &&
      (ix->unit.base != rt->units[space].base || ix->unit.scale != rt->units[space].scale))
    ix->dirty = true; /* a rescale: the raw cells moved */
  if (ix->dirty) rebuild(rt, zs, space);
  const ngi_zone_cell *cf = NULL, *ct = NULL;
  if (!ix->scan) {
    if (ix->nhot == 0) return;
    cf = cell_of(ix, from);
    ct = cell_of(ix, to);
    if (ix->nbig == 0 && !cf && !ct) return;
  }
  cross_cells(rt, id, space, from, to, token_flags, placed, cf, ct);
}

void ngi_zones_move(ng_runtime *rt, ng_id id, int space, const int16_t *from, const int16_t *to,
                    uint16_t token_flags, uint8_t placed) {
  const ngi_zone_gate *g = &rt->ev.gate[space];
  uint32_t kf = from ? ngi_gate_code(g, from) : 0, kt = to ? ngi_gate_code(g, to) : 0;
  uint32_t cf = ngi_gate_code_cell(kf), ct = ngi_gate_code_cell(kt);
  const ngi_zone_cell *f = from ? gate_cell(g, cf) : NULL;
  const ngi_zone_cell *t = !to ? NULL : from && ct == cf ? f : gate_cell(g, ct);
  uint64_t bf = from ? gate_bit(kf) : 0, bt = to ? gate_bit(kt) : 0;
  bool may = from && to && cf == ct && bf == bt
                 ? f && (f->edge & bf)
                 : (f && (f->occupied & bf)) || (t && (t->occupied & bt));
  if (may) cross_cells(rt, id, space, from, to, token_flags, placed, f, t);
}

/* ---- the public calls ------------------------------------------------------ */

static ng_status check_spec(ng_runtime *rt, const char *fn, const ng_zone_spec *p) {
  if (!p) return ngi_fail(rt, NG_EINVAL, "%s: spec must not be NULL", fn);
  if (p->space < 0 || p->space >= NG_SPACES)
    return ngi_fail(rt, NG_EINVAL, "%s: spec.space must be 0..7, got %d", fn, p->space);
  if (p->entity < -1 || p->entity >= NG_ENTITY_COUNT)
    return ngi_fail(rt, NG_EINVAL, "%s: spec.entity must be -1..15, got %d", fn, p->entity);
  if (p->shape == NG_ZONE_SPHERE) {
    for (int a = 0; a < 3; a++)
      if (!isfinite(p->center[a]))
        return ngi_fail(rt, NG_EINVAL, "%s: spec.center must be finite", fn);
    if (!isfinite(p->radius) || p->radius < 0)
      return ngi_fail(rt, NG_EINVAL, "%s: spec.radius must be a finite number >= 0, got %g", fn,
                      p->radius);
    return NG_OK;
  }
  if (p->shape != NG_ZONE_BOX)
    return ngi_fail(rt, NG_EINVAL, "%s: spec.shape must be NG_ZONE_SPHERE or NG_ZONE_BOX, got %d",
                    fn, p->shape);
  for (int a = 0; a < 3; a++) {
    if (!isfinite(p->lo[a]) || !isfinite(p->hi[a]))
      return ngi_fail(rt, NG_EINVAL, "%s: spec.lo and spec.hi must be finite", fn);
    if (p->lo[a] > p->hi[a])
      return ngi_fail(rt, NG_EINVAL, "%s: spec.lo must not exceed spec.hi (axis %c: %g > %g)", fn,
                      "xyz"[a], p -> lo[a], p -> hi[a]);
  }
  return NG_OK;
}

/* The write lock for a zone change: refused inside a transaction (zones are
 * not undone, and the events they cause must not be). */
static ng_status zone_lock(ng_runtime *rt, const char *fn) {
  if (ngi_txn_holds(rt))
    return ngi_fail(rt, NG_EBUSY, "%s: zones cannot change inside a transaction", fn);
  return ngi_write_lock(rt, fn);
}

static zone *find_zone(ngi_zones *zs, uint64_t id) {
  size_t lo = 0, hi = zs ? zs->n : 0;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (zs->z[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return zs && lo < zs->n && zs->z[lo].id == id ? &zs->z[lo] : NULL;
}

/* Whether token tok (placed in `placed`) is in zone spec p (NULL: none). */
static bool holds(const ng_runtime *rt, const ng_zone_spec *p, const ng_token *tok, uint8_t placed,
                  double q[3]) {
  if (!p || !(placed >> p->space & 1u) || !passes_flags(p, tok->flags)) return false;
  int16_t xyz[3]; /* the record is packed */
  memcpy(xyz, tok->coords[p->space], sizeof xyz);
  decode(rt, p->space, xyz, q);
  return inside(p, q);
}

/* Events for zone `id` going from spec `old` to `next` (either NULL): a
 * leave for each live token only old holds, an enter for each only next holds. */
static void rezone(ng_runtime *rt, uint64_t id, const ng_zone_spec *old, const ng_zone_spec *next) {
  const ngi_token_table *t = &rt->tokens;
  for (size_t pos = 0; pos < t->len; pos++) {
    const ng_token *tok = ngi_tok_at(t, pos);
    if (ngi_tok_is_tomb(tok)) continue;
    uint32_t local = NG_ID_LOCAL(tok->id);
    uint8_t placed = ngi_placed(t, local);
    double q[3];
    bool was = holds(rt, old, tok, placed, q), is = holds(rt, next, tok, placed, q);
    if (was == is) continue;
    const ng_zone_spec *p = was ? old : next;
    ng_event e;
    memset(&e, 0, sizeof e);
    e.kind = was ? NG_EV_LEAVE : NG_EV_ENTER;
    e.id = ngi_token_id_of(t, local);
    e.zone = id;
    e.space = (int8_t)p->space;
    e.placed = placed;
    e.token_flags = tok->flags;
    memcpy(was ? e.from_xyz : e.to_xyz, tok->coords[p->space], sizeof e.from_xyz);
    ngi_ev_push(rt, &e);
  }
}

/* Every space's index is rebuilt at its next lookup; until then every move
 * of a space with zones looks them up (the inline gate is open). */
static void mark_dirty(ng_runtime *rt, ngi_zones *zs) {
  bool any[NG_SPACES] = {false};
  for (size_t i = 0; i < zs->n; i++)
    any[zs->z[i].spec.space] = true;
  for (int s = 0; s < NG_SPACES; s++) {
    zs->idx[s].dirty = true;
    rt->ev.gate[s] = (ngi_zone_gate){.any = any[s]};
  }
}

void ngi_zones_rescaled(ng_runtime *rt) {
  if (rt->ev.zones) mark_dirty(rt, rt->ev.zones);
}

ng_status ng_zone_add(ng_runtime *rt, const ng_zone_spec *spec, uint64_t *out) {
  static const char fn[] = "ng_zone_add";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  ng_status st = check_spec(rt, fn, spec);
  if (st != NG_OK) return st;
  st = zone_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_zones *zs = rt->ev.zones;
  if (!zs) {
    zs = ngi_alloc(rt, sizeof *zs);
    if (!zs) {
      st = ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
      goto out;
    }
    memset(zs, 0, sizeof *zs);
    rt->ev.zones = zs;
  }
  if (zs->n == zs->cap) {
    size_t cap = zs->cap ? 2 * zs->cap : 16;
    zone *z = ngi_realloc_array(rt, zs->z, zs->cap, cap, sizeof *z);
    if (!z) {
      st = ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
      goto out;
    }
    zs->z = z;
    zs->cap = cap;
  }
  zone *z = &zs->z[zs->n++];
  z->id = ++zs->last_id;
  z->spec = *spec;
  bbox_of(z);
  mark_dirty(rt, zs);
  if (NGI_EV_ON(rt)) rezone(rt, z->id, NULL, &z->spec);
  if (out) *out = z->id;
out:
  ngi_write_unlock(rt);
  return st;
}

ng_status ng_zone_set(ng_runtime *rt, uint64_t id, const ng_zone_spec *spec) {
  static const char fn[] = "ng_zone_set";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  ng_status st = check_spec(rt, fn, spec);
  if (st != NG_OK) return st;
  st = zone_lock(rt, fn);
  if (st != NG_OK) return st;
  zone *z = find_zone(rt->ev.zones, id);
  if (!z) {
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: no zone %llu", fn, (unsigned long long)id);
  } else {
    ng_zone_spec old = z->spec;
    z->spec = *spec;
    bbox_of(z);
    mark_dirty(rt, rt->ev.zones);
    if (NGI_EV_ON(rt)) rezone(rt, id, &old, &z->spec);
  }
  ngi_write_unlock(rt);
  return st;
}

ng_status ng_zone_get(ng_runtime *rt, uint64_t id, ng_zone_spec *out) {
  static const char fn[] = "ng_zone_get";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!out) return ngi_fail(rt, NG_EINVAL, "%s: out must not be NULL", fn);
  ngi_read_lock(rt);
  const zone *z = find_zone(rt->ev.zones, id);
  if (z) *out = z->spec;
  ngi_read_unlock(rt);
  return z ? NG_OK : ngi_fail(rt, NG_ENOTFOUND, "%s: no zone %llu", fn, (unsigned long long)id);
}

ng_status ng_zone_remove(ng_runtime *rt, uint64_t id) {
  static const char fn[] = "ng_zone_remove";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  ng_status st = zone_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_zones *zs = rt->ev.zones;
  zone *z = find_zone(zs, id);
  if (!z) {
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: no zone %llu", fn, (unsigned long long)id);
  } else {
    size_t i = (size_t)(z - zs->z);
    memmove(z, z + 1, (zs->n - i - 1) * sizeof *z);
    zs->n--;
    mark_dirty(rt, zs);
  }
  ngi_write_unlock(rt);
  return st;
}

size_t ng_zone_count(ng_runtime *rt) {
  if (!rt) return 0;
  ngi_read_lock(rt);
  size_t n = rt->ev.zones ? rt->ev.zones->n : 0;
  ngi_read_unlock(rt);
  return n;
}

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
  double lo[3], hi[3];   /* bounding box, decoded units */
  int32_t rlo[3], rhi[3]; /* the same in raw steps, one step wide (set by the index) */
} zone;

/* The index of a space works in raw coordinates, so a move that meets no
 * zone costs two shifts and two loads: cells are 2^shift raw steps on a
 * side (at least 2^MIN_SHIFT, so the cell array stays small), and a zone is
 * listed in every cell its bounding box touches, unless that is more than
 * CELLS_PER_ZONE cells: then it is in the space's `big` list, visited at
 * every lookup. A zone found is checked against its raw bounding box before
 * the positions are decoded for the exact test. */
#define MIN_SHIFT 10
#define CELLS_PER_ZONE 64

typedef struct cell_entry {
  uint32_t cell;          /* the cell's index */
  uint32_t z;             /* index in zones.z */
  int16_t rlo[3], rhi[3]; /* the zone's raw bounding box, here so a miss reads no zone */
} cell_entry;

typedef struct space_index {
  bool dirty;        /* zones or the space's unit changed since the index was built */
  bool scan;         /* the index could not be built: scan every zone */
  ngi_unit unit;     /* the unit it was built in */
  int shift;         /* cell edge: 2^shift raw steps */
  uint32_t axis;     /* cells per axis: 65536 >> shift */
  cell_entry *cells; /* sorted by cell: each occupied cell's zones are a run */
  size_t ncells, cells_cap;
  /* Which cells are occupied, small enough to stay in cache: a bit per cell
   * (axis^3 bits in `words` words), and per word the occupied cells before
   * it, which rank a cell among the occupied ones. */
  uint64_t *bits;
  uint32_t *rank;
  size_t words;
  uint64_t *runs; /* per occupied cell, in cell order: start << 32 | count into `cells` */
  size_t runs_cap;
  uint32_t *big;
  size_t nbig, big_cap;
  size_t zones; /* zones in this space */
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
    ngi_free(rt, zs->idx[s].cells, zs->idx[s].cells_cap * sizeof(cell_entry));
    ngi_free(rt, zs->idx[s].bits, zs->idx[s].words * sizeof(uint64_t));
    ngi_free(rt, zs->idx[s].rank, zs->idx[s].words * sizeof(uint32_t));
    ngi_free(rt, zs->idx[s].runs, zs->idx[s].runs_cap * sizeof(uint64_t));
    ngi_free(rt, zs->idx[s].big, zs->idx[s].big_cap * sizeof(uint32_t));
  }
  ngi_free(rt, zs->z, zs->cap * sizeof(zone));
  ngi_free(rt, zs, sizeof *zs);
  rt->ev.zones = NULL;
  memset(rt->ev.gate, 0, sizeof rt->ev.gate);
}

/* ---- geometry ------------------------------------------------------------- */

static void bbox_of(zone *z) {
  const ng_zone_spec *p = &z->spec;
  for (int a = 0; a < 3; a++) {
    z->lo[a] = p->shape == NG_ZONE_SPHERE ? p->center[a] - p->radius : p->lo[a];
    z->hi[a] = p->shape == NG_ZONE_SPHERE ? p->center[a] + p->radius : p->hi[a];
  }
}

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

/* The cell holding raw (UINT32_MAX for NULL). */
static inline uint32_t cell_at(const space_index *ix, const int16_t *raw) {
  if (!raw) return UINT32_MAX;
  uint32_t x = (uint32_t)(raw[0] + 32768) >> ix->shift, y = (uint32_t)(raw[1] + 32768) >> ix->shift,
           z = (uint32_t)(raw[2] + 32768) >> ix->shift;
  return (x * ix->axis + y) * ix->axis + z;
}

/* The run of cell entries of `cell` (0: none, or UINT32_MAX). */
static inline uint64_t run_of(const space_index *ix, uint32_t cell) {
  if (cell == UINT32_MAX) return 0;
  uint64_t w = ix->bits[cell / 64], bit = (uint64_t)1 << (cell % 64);
  if (!(w & bit)) return 0;
  return ix->runs[ix->rank[cell / 64] + (uint32_t)__builtin_popcountll(w & (bit - 1))];
}

static int cmp_cell(const void *a, const void *b) {
  const cell_entry *x = a, *y = b;
  if (x->cell != y->cell) return x->cell < y->cell ? -1 : 1;
  return x->z < y->z ? -1 : x->z > y->z;
}

/* ---- the index of one space ------------------------------------------------ */

static bool push_cell(ng_runtime *rt, space_index *ix, uint32_t cell, const zone *zn,
                      uint32_t z) {
  if (ix->ncells == ix->cells_cap) {
    size_t cap = ix->cells_cap ? 2 * ix->cells_cap : 64;
    cell_entry *c = ngi_realloc_array(rt, ix->cells, ix->cells_cap, cap, sizeof *c);
    if (!c) return false;
    ix->cells = c;
    ix->cells_cap = cap;
  }
  cell_entry *e = &ix->cells[ix->ncells++];
  e->cell = cell;
  e->z = z;
  for (int a = 0; a < 3; a++) {
    e->rlo[a] = (int16_t)zn->rlo[a];
    e->rhi[a] = (int16_t)zn->rhi[a];
  }
  return true;
}

static bool push_big(ng_runtime *rt, space_index *ix, uint32_t z) {
  if (ix->nbig == ix->big_cap) {
    size_t cap = ix->big_cap ? 2 * ix->big_cap : 8;
    uint32_t *b = ngi_realloc_array(rt, ix->big, ix->big_cap, cap, sizeof *b);
    if (!b) return false;
    ix->big = b;
    ix->big_cap = cap;
  }
  ix->big[ix->nbig++] = z;
  return true;
}

/* Rebuild space s's index in its current unit. The cell edge is the zones'
 * mean extent in raw steps, rounded up to a power of two. Without memory,
 * every lookup scans the space's zones until the next rebuild. */
static void rebuild(ng_runtime *rt, ngi_zones *zs, int s) {
  space_index *ix = &zs->idx[s];
  const ngi_unit *u = &rt->units[s];
  rt->ev.gate[s] = (ngi_zone_gate){.any = true}; /* open (the bits may move) until the end */
  ix->dirty = false;
  ix->scan = false;
  ix->unit = *u;
  ix->ncells = ix->nbig = ix->zones = 0;
  double sum = 0;
  for (size_t i = 0; i < zs->n; i++) {
    const zone *z = &zs->z[i];
    if (z->spec.space != s) continue;
    double ext = 0;
    for (int a = 0; a < 3; a++)
      ext = fmax(ext, (double)raw_bound(u, z->hi[a], 1) - raw_bound(u, z->lo[a], -1));
    sum += ext;
    ix->zones++;
  }
  int shift = MIN_SHIFT; /* cells of about half a zone: few cells to list, few false hits */
  while (shift < 16 && ix->zones && (double)(2u << shift) < sum / (double)ix->zones)
    shift++;
  uint32_t axis = 65536u >> shift;
  size_t words = ((size_t)axis * axis * axis + 63) / 64;
  if (words != ix->words) {
    uint64_t *b = ngi_alloc_array(rt, words, sizeof *b);
    uint32_t *r = ngi_alloc_array(rt, words, sizeof *r);
    if (!b || !r) {
      ngi_free(rt, b, b ? words * sizeof *b : 0);
      ngi_free(rt, r, r ? words * sizeof *r : 0);
      ix->scan = true;
      return;
    }
    ngi_free(rt, ix->bits, ix->words * sizeof *b);
    ngi_free(rt, ix->rank, ix->words * sizeof *r);
    ix->bits = b;
    ix->rank = r;
    ix->words = words;
  }
  ix->shift = shift;
  ix->axis = axis;
  memset(ix->bits, 0, words * sizeof *ix->bits);
  for (size_t i = 0; i < zs->n; i++) {
    zone *z = &zs->z[i];
    if (z->spec.space != s) continue;
    uint32_t lo[3], hi[3];
    double cells = 1;
    for (int a = 0; a < 3; a++) {
      z->rlo[a] = raw_bound(u, z->lo[a], -1);
      z->rhi[a] = raw_bound(u, z->hi[a], 1);
      lo[a] = (uint32_t)(z->rlo[a] + 32768) >> shift;
      hi[a] = (uint32_t)(z->rhi[a] + 32768) >> shift;
      cells *= (double)(hi[a] - lo[a] + 1);
    }
    bool ok = true;
    if (cells > CELLS_PER_ZONE) {
      ok = push_big(rt, ix, (uint32_t)i);
    } else {
      for (uint32_t x = lo[0]; ok && x <= hi[0]; x++)
        for (uint32_t y = lo[1]; ok && y <= hi[1]; y++)
          for (uint32_t w = lo[2]; ok && w <= hi[2]; w++)
            ok = push_cell(rt, ix, (x * axis + y) * axis + w, z, (uint32_t)i);
    }
    if (!ok) {
      ix->scan = true;
      return;
    }
  }
  qsort(ix->cells, ix->ncells, sizeof *ix->cells, cmp_cell);
  if (ix->ncells > ix->runs_cap) {
    uint64_t *r = ngi_realloc_array(rt, ix->runs, ix->runs_cap, ix->ncells, sizeof *r);
    if (!r) {
      ix->scan = true;
      return;
    }
    ix->runs = r;
    ix->runs_cap = ix->ncells;
  }
  size_t nruns = 0; /* in cell order, so a cell's rank is its run's index */
  for (size_t i = 0; i < ix->ncells;) {
    size_t j = i;
    while (j < ix->ncells && ix->cells[j].cell == ix->cells[i].cell)
      j++;
    uint32_t cell = ix->cells[i].cell;
    ix->runs[nruns++] = (uint64_t)i << 32 | (uint64_t)(j - i);
    ix->bits[cell / 64] |= (uint64_t)1 << (cell % 64);
    i = j;
  }
  uint32_t before = 0;
  for (size_t w = 0; w < words; w++) {
    ix->rank[w] = before;
    before += (uint32_t)__builtin_popcountll(ix->bits[w]);
  }
  if (ix->zones == 0) /* the inline gate rejects every move, or only those far from a zone */
    rt->ev.gate[s].any = false;
  else if (ix->nbig == 0)
    rt->ev.gate[s] = (ngi_zone_gate){ix->bits, (unsigned)shift, axis, u->fscale, true};
}

/* ---- crossings ------------------------------------------------------------- */

typedef struct crossing {
  ng_event ev; /* the enter/leave being made: kind and zone vary */
  const int16_t *from_raw, *to_raw;
  bool decoded; /* from and to hold the decoded positions */
  double from[3], to[3];
} crossing;

static bool in_raw_box(const zone *z, const int16_t *p) {
  return p && p[0] >= z->rlo[0] && p[0] <= z->rhi[0] && p[1] >= z->rlo[1] &&
         p[1] <= z->rhi[1] && p[2] >= z->rlo[2] && p[2] <= z->rhi[2];
}

/* Zone z, if the token passes its filter and crosses its boundary in the
 * direction of c->ev.kind: an event. */
static void visit(ng_runtime *rt, crossing *c, const zone *z) {
  bool near_from = in_raw_box(z, c->from_raw), near_to = in_raw_box(z, c->to_raw);
  if (!near_from && !near_to) return; /* inside neither: the common case, no decoding */
  if (!passes_flags(&z->spec, c->ev.token_flags)) return;
  if (!c->decoded) {
    if (c->from_raw) decode(rt, c->ev.space, c->from_raw, c->from);
    if (c->to_raw) decode(rt, c->ev.space, c->to_raw, c->to);
    c->decoded = true;
  }
  bool was = near_from && inside(&z->spec, c->from);
  bool is = near_to && inside(&z->spec, c->to);
  if (was == is || (c->ev.kind == NG_EV_LEAVE) != was) return;
  c->ev.zone = z->id;
  ngi_ev_push(rt, &c->ev);
}

/* Visit the zones of space s listed in cell run `run`, and the big ones (or
 * every zone of s when the index could not be built). */
static void visit_run(ng_runtime *rt, crossing *c, int s, uint64_t run) {
  ngi_zones *zs = rt->ev.zones;
  const space_index *ix = &zs->idx[s];
  if (ix->scan) {
    for (size_t i = 0; i < zs->n; i++)
      if (zs->z[i].spec.space == s) visit(rt, c, &zs->z[i]);
    return;
  }
  for (size_t i = 0; i < ix->nbig; i++)
    visit(rt, c, &zs->z[ix->big[i]]);
  uint32_t start = (uint32_t)(run >> 32), count = (uint32_t)run;
  for (uint32_t i = 0; i < count; i++) {
    const cell_entry *e = &ix->cells[start + i];
    const int16_t *p = c->ev.kind == NG_EV_LEAVE ? c->from_raw : c->to_raw;
    /* the point this pass looks from must be in the box (a leave starts
     * inside, an enter ends inside) */
    if (p[0] < e->rlo[0] || p[0] > e->rhi[0] || p[1] < e->rlo[1] || p[1] > e->rhi[1] ||
        p[2] < e->rlo[2] || p[2] > e->rhi[2])
      continue;
    visit(rt, c, &zs->z[e->z]);
  }
}

void ngi_zones_cross(ng_runtime *rt, ng_id id, int space, const int16_t *from, const int16_t *to,
                     uint16_t token_flags, uint8_t placed) {
  ngi_zones *zs = rt->ev.zones;
  space_index *ix = &zs->idx[space];
  if (!ix->dirty && (ix->unit.base != rt->units[space].base ||
                     ix->unit.scale != rt->units[space].scale))
    ix->dirty = true; /* a rescale: the raw cells moved */
  if (ix->dirty) rebuild(rt, zs, space);
  if (ix->zones == 0) return;
  uint64_t run_from = 0, run_to = 0;
  if (!ix->scan) {
    /* a frame's small step stays in its cell: one lookup */
    uint32_t cf = cell_at(ix, from), ct = cell_at(ix, to);
    run_from = run_of(ix, cf);
    run_to = ct == cf ? run_from : run_of(ix, ct);
    if (ix->nbig == 0 && run_from == 0 && run_to == 0) return;
  }
  crossing c;
  memset(&c, 0, sizeof c);
  c.ev.id = id;
  c.ev.space = (int8_t)space;
  c.ev.placed = placed;
  c.ev.token_flags = token_flags;
  c.from_raw = from;
  c.to_raw = to;
  if (from) memcpy(c.ev.from_xyz, from, sizeof c.ev.from_xyz);
  if (to) memcpy(c.ev.to_xyz, to, sizeof c.ev.to_xyz);
  if (from) {
    c.ev.kind = NG_EV_LEAVE;
    visit_run(rt, &c, space, run_from);
  }
  if (to) {
    c.ev.kind = NG_EV_ENTER;
    visit_run(rt, &c, space, run_to);
  }
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
                      "xyz"[a], p->lo[a], p->hi[a]);
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
static bool holds(const ng_runtime *rt, const ng_zone_spec *p, const ng_token *tok,
                  uint8_t placed, double q[3]) {
  if (!p || !(placed >> p->space & 1u) || !passes_flags(p, tok->flags)) return false;
  int16_t xyz[3]; /* the record is packed */
  memcpy(xyz, tok->coords[p->space], sizeof xyz);
  decode(rt, p->space, xyz, q);
  return inside(p, q);
}

/* Events for zone `id` going from spec `old` to `next` (either NULL): a
 * leave for each live token only old holds, an enter for each only next holds. */
static void rezone(ng_runtime *rt, uint64_t id, const ng_zone_spec *old,
                   const ng_zone_spec *next) {
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

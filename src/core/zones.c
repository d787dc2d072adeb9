/* Trigger zones: spheres and boxes per space, found through a uniform grid
 * of their bounding boxes, and the enter/leave events the feed derives from
 * token events at publication (events.h). Zones live under the write lock. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct zone {
  uint64_t id;
  ng_zone_spec spec;
  double lo[3], hi[3]; /* bounding box, decoded units */
} zone;

typedef struct cell_entry {
  uint64_t key; /* the cell */
  uint32_t z;   /* index in zones.z */
} cell_entry;

/* A zone covering more cells than this goes to the space's `big` list,
 * checked at every lookup, instead of the cell map. */
#define CELLS_PER_ZONE 64
/* Cell coordinates are offset by 2^20 and packed 21 bits each. */
#define CELL_BIAS (1 << 20)

typedef struct space_index {
  bool dirty;       /* zones changed since the index was built */
  bool scan;        /* the index could not be built: scan every zone */
  double cell;      /* cell edge, decoded units */
  cell_entry *cells; /* sorted by key */
  size_t ncells, cells_cap;
  uint32_t *big;
  size_t nbig, big_cap;
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
    ngi_free(rt, zs->idx[s].big, zs->idx[s].big_cap * sizeof(uint32_t));
  }
  ngi_free(rt, zs->z, zs->cap * sizeof(zone));
  ngi_free(rt, zs, sizeof *zs);
  rt->ev.zones = NULL;
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

static bool passes(const ng_zone_spec *p, const ng_token *tok) {
  if (p->entity >= 0 && (unsigned)((tok->flags & NG_TOKEN_ENTITY_MASK) >> 8) != (unsigned)p->entity)
    return false;
  return (tok->flags & p->tags) == p->tags;
}

static void decode(const ng_runtime *rt, int s, const int16_t raw[3], double out[3]) {
  for (int a = 0; a < 3; a++)
    out[a] = ngi_unit_decode(&rt->units[s], raw[a]);
}

static int64_t cell_coord(double v, double cell) {
  double c = floor(v / cell);
  if (c < -CELL_BIAS) return -CELL_BIAS;
  if (c > CELL_BIAS - 1) return CELL_BIAS - 1;
  return (int64_t)c;
}

static uint64_t cell_key(int64_t x, int64_t y, int64_t z) {
  return (uint64_t)(x + CELL_BIAS) << 42 | (uint64_t)(y + CELL_BIAS) << 21 |
         (uint64_t)(z + CELL_BIAS);
}

static int cmp_cell(const void *a, const void *b) {
  const cell_entry *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return x->z < y->z ? -1 : x->z > y->z;
}

/* ---- the index of one space ------------------------------------------------ */

static bool push_cell(ng_runtime *rt, space_index *ix, uint64_t key, uint32_t z) {
  if (ix->ncells == ix->cells_cap) {
    size_t cap = ix->cells_cap ? 2 * ix->cells_cap : 64;
    cell_entry *c = ngi_realloc_array(rt, ix->cells, ix->cells_cap, cap, sizeof *c);
    if (!c) return false;
    ix->cells = c;
    ix->cells_cap = cap;
  }
  ix->cells[ix->ncells++] = (cell_entry){key, z};
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

/* Rebuild space s's index: the cell edge is the zones' mean extent (never
 * so small that a coordinate's cell overflows the key). */
static void rebuild(ng_runtime *rt, ngi_zones *zs, int s) {
  space_index *ix = &zs->idx[s];
  ix->dirty = false;
  ix->scan = false;
  ix->ncells = ix->nbig = 0;
  double sum = 0;
  size_t count = 0;
  for (size_t i = 0; i < zs->n; i++) {
    if (zs->z[i].spec.space != s) continue;
    double ext = 0;
    for (int a = 0; a < 3; a++)
      ext = fmax(ext, zs->z[i].hi[a] - zs->z[i].lo[a]);
    sum += ext;
    count++;
  }
  double span = 2.0 * fabs(ngi_unit_decode(&rt->units[s], INT16_MAX)) + 1.0;
  double min_cell = span / (CELL_BIAS / 2);
  ix->cell = count && sum / (double)count > min_cell ? sum / (double)count : min_cell;
  for (size_t i = 0; i < zs->n; i++) {
    const zone *z = &zs->z[i];
    if (z->spec.space != s) continue;
    int64_t lo[3], hi[3];
    double cells = 1;
    for (int a = 0; a < 3; a++) {
      lo[a] = cell_coord(z->lo[a], ix->cell);
      hi[a] = cell_coord(z->hi[a], ix->cell);
      cells *= (double)(hi[a] - lo[a] + 1);
    }
    bool ok = true;
    if (cells > CELLS_PER_ZONE) {
      ok = push_big(rt, ix, (uint32_t)i);
    } else {
      for (int64_t x = lo[0]; ok && x <= hi[0]; x++)
        for (int64_t y = lo[1]; ok && y <= hi[1]; y++)
          for (int64_t w = lo[2]; ok && w <= hi[2]; w++)
            ok = push_cell(rt, ix, cell_key(x, y, w), (uint32_t)i);
    }
    if (!ok) { /* no memory: every lookup scans the space's zones until the next change */
      ix->scan = true;
      return;
    }
  }
  qsort(ix->cells, ix->ncells, sizeof *ix->cells, cmp_cell);
}

/* Call visit(z) for every zone of space s whose bounding box may hold q. */
typedef void (*visit_fn)(void *ctx, const zone *z);
static void zones_near(ng_runtime *rt, int s, const double q[3], visit_fn visit, void *ctx) {
  ngi_zones *zs = rt->ev.zones;
  space_index *ix = &zs->idx[s];
  if (ix->dirty) rebuild(rt, zs, s);
  if (ix->scan) {
    for (size_t i = 0; i < zs->n; i++)
      if (zs->z[i].spec.space == s) visit(ctx, &zs->z[i]);
    return;
  }
  for (size_t i = 0; i < ix->nbig; i++)
    visit(ctx, &zs->z[ix->big[i]]);
  uint64_t key =
      cell_key(cell_coord(q[0], ix->cell), cell_coord(q[1], ix->cell), cell_coord(q[2], ix->cell));
  size_t lo = 0, hi = ix->ncells;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ix->cells[mid].key < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  for (; lo < ix->ncells && ix->cells[lo].key == key; lo++)
    visit(ctx, &zs->z[ix->cells[lo].z]);
}

/* ---- crossings ------------------------------------------------------------- */

typedef struct crossing {
  const ng_event *ev;
  int space;
  bool has_from, has_to;
  double from[3], to[3];
  const int16_t *from_raw, *to_raw;
  int kind; /* NG_EV_LEAVE while visiting from, NG_EV_ENTER while visiting to */
  void (*emit)(void *, const ng_event *);
  void *ctx;
} crossing;

static void visit_cross(void *ctx, const zone *z) {
  crossing *c = ctx;
  if (!passes(&z->spec, &c->ev->token)) return;
  bool was = c->has_from && inside(&z->spec, c->from);
  bool is = c->has_to && inside(&z->spec, c->to);
  if (was == is || (c->kind == NG_EV_LEAVE) != was) return;
  ng_event e;
  memset(&e, 0, sizeof e);
  e.kind = (uint8_t)c->kind;
  e.id = c->ev->id;
  e.zone = z->id;
  e.space = (int8_t)c->space;
  e.placed = c->ev->placed;
  e.token = c->ev->token;
  if (c->has_from) memcpy(e.from_xyz, c->from_raw, sizeof e.from_xyz);
  if (c->has_to) memcpy(e.to_xyz, c->to_raw, sizeof e.to_xyz);
  c->emit(c->ctx, &e);
}

static void cross_space(ng_runtime *rt, crossing *c, int s, const int16_t *from,
                        const int16_t *to) {
  c->space = s;
  c->has_from = from != NULL;
  c->has_to = to != NULL;
  c->from_raw = from;
  c->to_raw = to;
  if (from) decode(rt, s, from, c->from);
  if (to) decode(rt, s, to, c->to);
  if (from) {
    c->kind = NG_EV_LEAVE;
    zones_near(rt, s, c->from, visit_cross, c);
  }
  if (to) {
    c->kind = NG_EV_ENTER;
    zones_near(rt, s, c->to, visit_cross, c);
  }
}

void ngi_zones_cross(ng_runtime *rt, const ng_event *ev, void (*emit)(void *, const ng_event *),
                     void *ctx) {
  if (rt->ev.zones->n == 0) return;
  crossing c = {.ev = ev, .emit = emit, .ctx = ctx};
  switch (ev->kind) {
  case NG_EV_MOVE:
    cross_space(rt, &c, ev->space, (ev->flags & NG_EVF_PLACED) ? NULL : ev->from_xyz, ev->to_xyz);
    break;
  case NG_EV_UNPLACE:
    cross_space(rt, &c, ev->space, ev->from_xyz, NULL);
    break;
  case NG_EV_CREATE:
  case NG_EV_DELETE:
    for (int s = 0; s < NG_SPACES; s++) {
      if (!(ev->placed >> s & 1u)) continue;
      int16_t xyz[3]; /* the record is packed */
      memcpy(xyz, ev->token.coords[s], sizeof xyz);
      cross_space(rt, &c, s, ev->kind == NG_EV_DELETE ? xyz : NULL,
                  ev->kind == NG_EV_CREATE ? xyz : NULL);
    }
    break;
  default:
    break;
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
  if (!p || !(placed >> p->space & 1u) || !passes(p, tok)) return false;
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
    e.token = *tok;
    memcpy(was ? e.from_xyz : e.to_xyz, tok->coords[p->space], sizeof e.from_xyz);
    ngi_ev_push(rt, &e);
  }
}

static void mark_dirty(ngi_zones *zs) {
  for (int s = 0; s < NG_SPACES; s++)
    zs->idx[s].dirty = true;
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
  mark_dirty(zs);
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
    mark_dirty(rt->ev.zones);
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
    mark_dirty(zs);
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

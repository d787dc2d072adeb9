/* The spatial index: one hashed uniform grid of token ids per coordinate space, and its queries. */
#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * Layout. A grid works in raw int16 coordinates: a cell is `cs` raw units wide
 * (the CDNA bucket size times the space's scale, rounded, clamped to 1..65536),
 * and a point's cell is the floor division of its raw value, so bucketing is
 * exact integer arithmetic. Non-empty cells live in a dense array (iterating
 * them is O(cells), whatever the history of inserts and removes); an
 * open-addressing table with linear probing and backward-shift deletion maps a
 * packed cell key to its index in that array. A cell holds token ids only
 * (coordinates are read from the token table); up to two ids sit inline in the
 * cell, so the common sparse case allocates nothing per cell.
 */

#define INLINE_IDS 2u
#define RAW_MIN (-32768)
#define RAW_MAX 32767

typedef struct cell {
  uint64_t key; /* packed cell coordinates, see cell_key */
  union {
    uint32_t *heap;           /* cap > INLINE_IDS */
    uint32_t inl[INLINE_IDS]; /* cap == INLINE_IDS */
  } u;
  uint32_t count;
  uint32_t cap;
} cell;

struct ngi_grid {
  int space;
  float cell_size;    /* decoded units, as configured */
  float scale;        /* the space's fixed-point scale */
  int32_t cs;         /* cell size in raw units */
  int32_t cmin, cmax; /* cell coordinates that raw values can reach */
  cell *cells;        /* dense, ncells used */
  size_t ncells, cells_cap;
  uint32_t *slots; /* cell index + 1; 0 = empty; slots_cap is 0 or a power of two */
  size_t slots_cap;
  size_t count;         /* ids stored (a moving token counts twice transiently) */
  int16_t lo[3], hi[3]; /* a superset of the true bounds; exact unless bounds_dirty */
  bool bounds_dirty;
};

/* ---- small helpers ------------------------------------------------------ */

static int32_t floor_div(int32_t a, int32_t b) {
  int32_t q = a / b;
  if (a % b != 0 && a < 0) q--;
  return q;
}

static uint64_t cell_key(int32_t cx, int32_t cy, int32_t cz) {
  return ((uint64_t)(uint16_t)(int16_t)cx << 32) | ((uint64_t)(uint16_t)(int16_t)cy << 16) |
         (uint64_t)(uint16_t)(int16_t)cz;
}

static int32_t key_axis(uint64_t key, int axis) {
  return (int16_t)(uint16_t)(key >> (32 - 16 * axis));
}

static size_t key_hash(uint64_t key) {
  key ^= key >> 31;
  key *= 0x7fb5d329728ea185ull;
  key ^= key >> 27;
  key *= 0x81dadef4bc2dd44dull;
  key ^= key >> 33;
  return (size_t)key;
}

static uint32_t *cell_ids(cell *c) {
  return c->cap > INLINE_IDS ? c->u.heap : c->u.inl;
}
static const uint32_t *cell_ids_c(const cell *c) {
  return c->cap > INLINE_IDS ? c->u.heap : c->u.inl;
}

/* The decoded value of a raw coordinate, exactly as ng_coord_decode computes it. */
static float decode(const ngi_grid *g, int32_t raw) {
  return (float)raw / g->scale;
}

/* A double as a float without undefined behaviour for values beyond FLT_MAX. */
static float to_float(double d) {
  if (d > (double)FLT_MAX) return INFINITY;
  if (d < -(double)FLT_MAX) return -INFINITY;
  return (float)d;
}

/* The slot holding cell `key`, or the empty slot where it would go. */
static size_t slot_find(const ngi_grid *g, uint64_t key) {
  size_t mask = g->slots_cap - 1;
  size_t i = key_hash(key) & mask;
  while (g->slots[i] != 0 && g->cells[g->slots[i] - 1].key != key)
    i = (i + 1) & mask;
  return i;
}

static cell *cell_get(const ngi_grid *g, uint64_t key) {
  if (g->ncells == 0) return NULL;
  size_t i = slot_find(g, key);
  return g->slots[i] ? &g->cells[g->slots[i] - 1] : NULL;
}

static void free_cell_ids(ng_runtime *rt, cell *c) {
  if (c->cap > INLINE_IDS) ngi_free(rt, c->u.heap, (size_t)c->cap * sizeof(uint32_t));
  c->cap = INLINE_IDS;
  c->count = 0;
}

/* ---- construction ------------------------------------------------------- */

/* needs: cell_size finite and > 0, space 0..7.
 * guarantees: an empty grid in *out. fails: NG_EINVAL, NG_ENOMEM. */
ng_status ngi_grid_new(ng_runtime *rt, int space, float cell_size, ngi_grid **out) {
  if (!out) return ngi_fail(rt, NG_EINVAL, "grid: out must not be NULL");
  float scale = ng_space_scale(space);
  if (scale <= 0.0f) return ngi_fail(rt, NG_EINVAL, "grid: bad space %d", space);
  if (!ngi_finite(cell_size) || cell_size <= 0.0f)
    return ngi_fail(rt, NG_EINVAL, "grid: cell size must be finite and > 0, got %g",
                    (double)cell_size);
  ngi_grid *g = ngi_alloc(rt, sizeof *g);
  if (!g) return ngi_fail(rt, NG_ENOMEM, "grid: out of memory");
  memset(g, 0, sizeof *g);
  g->space = space;
  g->cell_size = cell_size;
  g->scale = scale;
  /* Rounded to whole raw units; one cell of 65536 already spans the whole raw range. */
  double cs = floor((double)cell_size * (double)scale + 0.5);
  g->cs = cs < 1.0 ? 1 : cs > 65536.0 ? 65536 : (int32_t)cs;
  g->cmin = floor_div(RAW_MIN, g->cs);
  g->cmax = floor_div(RAW_MAX, g->cs);
  *out = g;
  return NG_OK;
}

void ngi_grid_clear(ng_runtime *rt, ngi_grid *g) {
  if (!g) return;
  for (size_t i = 0; i < g->ncells; i++)
    free_cell_ids(rt, &g->cells[i]);
  ngi_free(rt, g->cells, g->cells_cap * sizeof(cell));
  ngi_free(rt, g->slots, g->slots_cap * sizeof(uint32_t));
  g->cells = NULL;
  g->slots = NULL;
  g->ncells = g->cells_cap = g->slots_cap = 0;
  g->count = 0;
  g->bounds_dirty = false;
  memset(g->lo, 0, sizeof g->lo);
  memset(g->hi, 0, sizeof g->hi);
}

void ngi_grid_destroy(ng_runtime *rt, ngi_grid *g) {
  if (!g) return;
  ngi_grid_clear(rt, g);
  ngi_free(rt, g, sizeof *g);
}

/* ---- insert / remove ---------------------------------------------------- */

/* Make room for one more id in c. fails: NG_ENOMEM with c unchanged. */
static ng_status cell_reserve(ng_runtime *rt, cell *c) {
  if (c->count < c->cap) return NG_OK;
  if (c->cap >= UINT32_MAX / 2) return NG_ENOMEM;
  uint32_t ncap = c->cap * 2;
  uint32_t *p;
  if (c->cap <= INLINE_IDS) {
    p = ngi_alloc_array(rt, ncap, sizeof(uint32_t));
    if (!p) return NG_ENOMEM;
    memcpy(p, c->u.inl, c->count * sizeof(uint32_t));
  } else {
    p = ngi_realloc_array(rt, c->u.heap, c->cap, ncap, sizeof(uint32_t));
    if (!p) return NG_ENOMEM;
  }
  c->u.heap = p;
  c->cap = ncap;
  return NG_OK;
}

/* Grow the slot table so one more cell keeps the load under 70%.
 * fails: NG_ENOMEM with the table unchanged. */
static ng_status slots_reserve(ng_runtime *rt, ngi_grid *g) {
  if ((g->ncells + 1) * 10 <= g->slots_cap * 7) return NG_OK;
  size_t ncap = g->slots_cap ? g->slots_cap * 2 : 16;
  uint32_t *ns = ngi_alloc_array(rt, ncap, sizeof(uint32_t));
  if (!ns) return NG_ENOMEM;
  memset(ns, 0, ncap * sizeof(uint32_t));
  for (size_t c = 0; c < g->ncells; c++) {
    size_t i = key_hash(g->cells[c].key) & (ncap - 1);
    while (ns[i] != 0)
      i = (i + 1) & (ncap - 1);
    ns[i] = (uint32_t)(c + 1);
  }
  ngi_free(rt, g->slots, g->slots_cap * sizeof(uint32_t));
  g->slots = ns;
  g->slots_cap = ncap;
  return NG_OK;
}

static void bounds_add(ngi_grid *g, const int16_t xyz[3]) {
  for (int a = 0; a < 3; a++) {
    if (g->count == 0 || xyz[a] < g->lo[a]) g->lo[a] = xyz[a];
    if (g->count == 0 || xyz[a] > g->hi[a]) g->hi[a] = xyz[a];
  }
}

/* needs: the write lock. guarantees: id indexed at xyz (duplicates allowed).
 * fails: NG_ENOMEM with the grid logically unchanged (capacities may have grown). */
ng_status ngi_grid_insert(ng_runtime *rt, ngi_grid *g, uint32_t id, const int16_t xyz[3]) {
  if (!g || !xyz) return NG_EINVAL;
  uint64_t key =
      cell_key(floor_div(xyz[0], g->cs), floor_div(xyz[1], g->cs), floor_div(xyz[2], g->cs));
  cell *c = cell_get(g, key);
  if (c) {
    if (cell_reserve(rt, c) != NG_OK) return ngi_fail(rt, NG_ENOMEM, "grid: out of memory");
    cell_ids(c)[c->count++] = id;
  } else {
    if (g->ncells >= UINT32_MAX - 1) return ngi_fail(rt, NG_ELIMIT, "grid: too many cells");
    if (g->ncells == g->cells_cap) {
      size_t ncap = g->cells_cap ? g->cells_cap * 2 : 16;
      cell *nc = ngi_realloc_array(rt, g->cells, g->cells_cap, ncap, sizeof(cell));
      if (!nc) return ngi_fail(rt, NG_ENOMEM, "grid: out of memory");
      g->cells = nc;
      g->cells_cap = ncap;
    }
    if (slots_reserve(rt, g) != NG_OK) return ngi_fail(rt, NG_ENOMEM, "grid: out of memory");
    c = &g->cells[g->ncells];
    c->key = key;
    c->cap = INLINE_IDS;
    c->count = 1;
    c->u.inl[0] = id;
    c->u.inl[1] = 0;
    g->slots[slot_find(g, key)] = (uint32_t)(g->ncells + 1);
    g->ncells++;
  }
  bounds_add(g, xyz);
  g->count++;
  return NG_OK;
}

/* Delete the slot at i, shifting later members of its probe run back so that
 * lookups never need tombstones. */
static void slot_delete(ngi_grid *g, size_t i) {
  size_t mask = g->slots_cap - 1;
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (g->slots[j] == 0) break;
    size_t home = key_hash(g->cells[g->slots[j] - 1].key) & mask;
    /* Move j into the hole unless its home lies cyclically in (i, j]. */
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      g->slots[i] = g->slots[j];
      i = j;
    }
  }
  g->slots[i] = 0;
}

/* needs: the write lock. guarantees: one occurrence of id at xyz gone; an
 * emptied cell is freed. Never fails or allocates; absent ids are ignored. */
void ngi_grid_remove(ng_runtime *rt, ngi_grid *g, uint32_t id, const int16_t xyz[3]) {
  if (!g || !xyz || g->ncells == 0) return;
  uint64_t key =
      cell_key(floor_div(xyz[0], g->cs), floor_div(xyz[1], g->cs), floor_div(xyz[2], g->cs));
  size_t s = slot_find(g, key);
  if (g->slots[s] == 0) return;
  size_t ci = g->slots[s] - 1;
  cell *c = &g->cells[ci];
  uint32_t *ids = cell_ids(c);
  uint32_t k = 0;
  while (k < c->count && ids[k] != id)
    k++;
  if (k == c->count) return;
  ids[k] = ids[--c->count];
  g->count--;
  for (int a = 0; a < 3; a++)
    if (xyz[a] == g->lo[a] || xyz[a] == g->hi[a]) g->bounds_dirty = true;
  if (g->count == 0) g->bounds_dirty = false;
  if (c->count > 0) {
    if (c->cap > INLINE_IDS && c->count <= INLINE_IDS) {
      /* Back to inline storage: frees memory, never allocates. */
      uint32_t tmp[INLINE_IDS] = {0, 0};
      memcpy(tmp, c->u.heap, c->count * sizeof(uint32_t));
      ngi_free(rt, c->u.heap, (size_t)c->cap * sizeof(uint32_t));
      memcpy(c->u.inl, tmp, sizeof tmp);
      c->cap = INLINE_IDS;
    }
    return;
  }
  free_cell_ids(rt, c);
  slot_delete(g, s);
  size_t last = g->ncells - 1;
  if (ci != last) {
    g->cells[ci] = g->cells[last];
    size_t ms = slot_find(g, g->cells[ci].key);
    g->slots[ms] = (uint32_t)(ci + 1);
  }
  g->ncells--;
}

/* needs: the write lock (or exclusive access to tokens). guarantees: *g
 * replaced by an index of every live token of `tokens` with `cell_size`.
 * fails: NG_EINVAL, NG_ENOMEM with *g unchanged. */
ng_status ngi_grid_rebuild(ng_runtime *rt, ngi_grid **g, float cell_size,
                           const ngi_token_table *tokens) {
  if (!g || !*g || !tokens) return ngi_fail(rt, NG_EINVAL, "grid: bad rebuild arguments");
  ngi_grid *ng = NULL;
  ng_status st = ngi_grid_new(rt, (*g)->space, cell_size, &ng);
  if (st != NG_OK) return st;
  for (size_t s = 0; s < tokens->len; s++) {
    const ng_token *t = &tokens->recs[s];
    uint32_t id = NG_ID_LOCAL(t->id);
    if (id == 0) continue; /* tombstone */
    int16_t xyz[3] = {t->coords[ng->space][0], t->coords[ng->space][1], t->coords[ng->space][2]};
    st = ngi_grid_insert(rt, ng, id, xyz);
    if (st != NG_OK) {
      ngi_grid_destroy(rt, ng);
      return st;
    }
  }
  ngi_grid_destroy(rt, *g);
  *g = ng;
  return NG_OK;
}

/* ---- queries ------------------------------------------------------------ */

enum { Q_SPHERE, Q_BOX, Q_ALL };

typedef struct query {
  ng_runtime *rt;
  const ngi_grid *g;
  int kind;
  double c[3];        /* centre, decoded units */
  double radius;      /* Q_SPHERE */
  float lo[3], hi[3]; /* Q_BOX, closed */
  uint32_t exclude;   /* id left out (neighbors), 0 = none */
  size_t k;           /* keep only the best k (a max-heap in out); 0 = keep all */
  ng_hits *out;
} query;

static int hit_cmp(const void *pa, const void *pb) {
  const ng_hit *a = pa, *b = pb;
  if (a->distance < b->distance) return -1;
  if (a->distance > b->distance) return 1;
  return (a->id > b->id) - (a->id < b->id);
}

static void sort_truncate(ng_hits *h, size_t limit) {
  if (h->count > 1) qsort(h->items, h->count, sizeof(ng_hit), hit_cmp);
  if (limit && h->count > limit) h->count = limit;
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

/* Max-heap on (distance, id) over items[0..n): the worst kept hit on top, so
 * a bounded query costs O(log k) per candidate and O(k) memory. */
static void heap_up(ng_hit *a, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (hit_cmp(&a[p], &a[i]) >= 0) break;
    ng_hit t = a[p];
    a[p] = a[i];
    a[i] = t;
    i = p;
  }
}

static void heap_down(ng_hit *a, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && hit_cmp(&a[l], &a[m]) > 0) m = l;
    if (r < n && hit_cmp(&a[r], &a[m]) > 0) m = r;
    if (m == i) return;
    ng_hit t = a[m];
    a[m] = a[i];
    a[i] = t;
    i = m;
  }
}

static ng_status push_hit(query *q, uint32_t id, float d) {
  ng_hits *h = q->out;
  ng_hit hit = {id, d};
  if (q->k && h->count >= q->k) {
    if (hit_cmp(&hit, &h->items[0]) < 0) {
      h->items[0] = hit;
      heap_down(h->items, h->count, 0);
    }
    return NG_OK;
  }
  if (h->count == h->capacity && hits_reserve(q->rt, h, h->count + 1) != NG_OK) return NG_ENOMEM;
  h->items[h->count++] = hit;
  if (q->k) heap_up(h->items, h->count - 1);
  return NG_OK;
}

/* Test one token against the query and keep it if it qualifies. */
static ng_status consider(query *q, uint32_t id, const ng_token *t) {
  const ngi_grid *g = q->g;
  if (id == q->exclude) return NG_OK;
  float v[3];
  for (int a = 0; a < 3; a++)
    v[a] = decode(g, t->coords[g->space][a]);
  if (q->kind == Q_BOX) {
    for (int a = 0; a < 3; a++)
      if (v[a] < q->lo[a] || v[a] > q->hi[a]) return NG_OK;
  }
  double d2 = 0.0;
  for (int a = 0; a < 3; a++) {
    double e = (double)v[a] - q->c[a];
    d2 += e * e;
  }
  double d = sqrt(d2);
  if (q->kind == Q_SPHERE && !(d <= q->radius)) return NG_OK;
  return push_hit(q, id, to_float(d));
}

static ng_status visit_cell(query *q, const cell *c) {
  const uint32_t *ids = cell_ids_c(c);
  for (uint32_t i = 0; i < c->count; i++) {
    const ng_token *t = ngi_token_lookup(&q->rt->tokens, ids[i]);
    if (!t) continue;
    ng_status st = consider(q, ids[i], t);
    if (st != NG_OK) return st;
  }
  return NG_OK;
}

/* Every live token, read in table order: the sequential pass is what a scan
 * of the whole index costs at best (every live token is in every grid). */
static ng_status visit_table(query *q) {
  const ngi_token_table *t = &q->rt->tokens;
  for (size_t s = 0; s < t->len; s++) {
    const ng_token *tok = &t->recs[s];
    uint32_t id = NG_ID_LOCAL(tok->id);
    if (id == 0) continue; /* tombstone */
    ng_status st = consider(q, id, tok);
    if (st != NG_OK) return st;
  }
  return NG_OK;
}

/* Clamp a raw interval [a, b] (doubles, any magnitude) to the cells it
 * touches. guarantees: false when it misses the representable range. */
static bool raw_to_cells(const ngi_grid *g, double a, double b, int32_t *clo, int32_t *chi) {
  if (!(a <= (double)RAW_MAX) || !(b >= (double)RAW_MIN) || a > b) return false;
  int32_t ra = a < (double)RAW_MIN ? RAW_MIN : (int32_t)floor(a);
  int32_t rb = b > (double)RAW_MAX ? RAW_MAX : (int32_t)ceil(b);
  *clo = floor_div(ra, g->cs);
  *chi = floor_div(rb, g->cs);
  return true;
}

/* Gap along axis a between the centre and the decoded extent of cell k (0
 * inside). Uses the rounding of consider(), so it never exceeds the gap of a
 * point of that cell. */
static double axis_gap(const query *q, int a, int32_t k) {
  const ngi_grid *g = q->g;
  int64_t r0 = (int64_t)k * g->cs, r1 = r0 + g->cs - 1;
  double lo = (double)decode(g, (int32_t)(r0 < RAW_MIN ? RAW_MIN : r0));
  double hi = (double)decode(g, (int32_t)(r1 > RAW_MAX ? RAW_MAX : r1));
  return q->c[a] < lo ? lo - q->c[a] : q->c[a] > hi ? q->c[a] - hi : 0.0;
}

/* True if no point of a cell with these axis gaps can be kept: all beyond the
 * radius, or, once a nearest-k heap is full, all strictly worse than its top. */
static bool cell_out(const query *q, double gx, double gy, double gz) {
  double d = sqrt(gx * gx + gy * gy + gz * gz);
  if (q->kind == Q_SPHERE) return !(d <= q->radius);
  if (q->kind == Q_ALL && q->k && q->out->count >= q->k)
    return to_float(d) > q->out->items[0].distance;
  return false;
}

/* Visit the cells of the box clo..chi: probe each, or, when the box holds
 * more cells than are populated, walk the populated cells (or the whole token
 * table when the box covers everything) -- never slower than a linear scan,
 * whatever the radius. */
static ng_status visit_region(query *q, const int32_t clo[3], const int32_t chi[3]) {
  const ngi_grid *g = q->g;
  if (g->ncells == 0) return NG_OK;
  uint64_t n = 1;
  bool all = true;
  for (int a = 0; a < 3; a++) {
    n *= (uint64_t)(chi[a] - clo[a] + 1);
    all = all && clo[a] <= g->cmin && chi[a] >= g->cmax;
  }
  if (all && n > g->ncells) return visit_table(q);
  if (n > g->ncells) {
    for (size_t i = 0; i < g->ncells; i++) {
      const cell *c = &g->cells[i];
      bool in = true;
      for (int a = 0; a < 3; a++) {
        int32_t k = key_axis(c->key, a);
        in = in && k >= clo[a] && k <= chi[a];
      }
      if (in) {
        ng_status st = visit_cell(q, c);
        if (st != NG_OK) return st;
      }
    }
    return NG_OK;
  }
  for (int32_t x = clo[0]; x <= chi[0]; x++) {
    double gx = axis_gap(q, 0, x);
    for (int32_t y = clo[1]; y <= chi[1]; y++) {
      double gy = axis_gap(q, 1, y);
      for (int32_t z = clo[2]; z <= chi[2]; z++) {
        if (cell_out(q, gx, gy, axis_gap(q, 2, z))) continue;
        const cell *c = cell_get(g, cell_key(x, y, z));
        if (c) {
          ng_status st = visit_cell(q, c);
          if (st != NG_OK) return st;
        }
      }
    }
  }
  return NG_OK;
}

/* Cells within the query's radius (plus a one-raw-unit margin that covers
 * decoding rounding; the exact test is in consider). */
static ng_status run_sphere(query *q) {
  const ngi_grid *g = q->g;
  double s = (double)g->scale;
  int32_t clo[3], chi[3];
  for (int a = 0; a < 3; a++) {
    double cr = q->c[a] * s, rr = q->radius * s;
    if (!raw_to_cells(g, cr - rr - 1.0, cr + rr + 1.0, &clo[a], &chi[a])) return NG_OK;
  }
  return visit_region(q, clo, chi);
}

static ng_status run_box(query *q) {
  const ngi_grid *g = q->g;
  double s = (double)g->scale;
  int32_t clo[3], chi[3];
  for (int a = 0; a < 3; a++)
    if (!raw_to_cells(g, (double)q->lo[a] * s - 1.0, (double)q->hi[a] * s + 1.0, &clo[a], &chi[a]))
      return NG_OK;
  return visit_region(q, clo, chi);
}

/* The smallest distance from the centre to any raw point outside the cells
 * cc-r..cc+r on every axis; INFINITY when those cells cover the whole range. */
static double outside_bound(const query *q, const int32_t cc[3], int32_t r) {
  const ngi_grid *g = q->g;
  double best = INFINITY;
  for (int a = 0; a < 3; a++) {
    int64_t below = ((int64_t)cc[a] - r) * g->cs - 1; /* largest raw left of the cube */
    int64_t above = ((int64_t)cc[a] + r + 1) * g->cs; /* smallest raw right of it */
    if (below >= RAW_MIN) {
      double gap = q->c[a] - (double)decode(g, (int32_t)below);
      best = gap < best ? gap : best;
    }
    if (above <= RAW_MAX) {
      double gap = (double)decode(g, (int32_t)above) - q->c[a];
      best = gap < best ? gap : best;
    }
  }
  return best < 0.0 ? 0.0 : best;
}

/* Nearest k (q->k > 0): search rings of cells outward from the centre's
 * cell, keeping the best k in a heap, until the k-th best is strictly closer
 * than anything outside the searched cube (strictly, so an equal distance
 * with a smaller id cannot be missed); fall back to one sequential pass over
 * the tokens once the rings would probe more cells than are populated. */
static ng_status run_nearest(query *q) {
  const ngi_grid *g = q->g;
  ng_hits *h = q->out;
  size_t k = q->k;
  if (g->ncells == 0) return NG_OK;
  if (k < g->count) {
    int32_t cc[3];
    for (int a = 0; a < 3; a++) {
      double cr = floor(q->c[a] * (double)g->scale);
      int32_t raw = cr < (double)RAW_MIN ? RAW_MIN : cr > (double)RAW_MAX ? RAW_MAX : (int32_t)cr;
      cc[a] = floor_div(raw, g->cs);
    }
    uint64_t probed = 0;
    for (int32_t r = 0; r <= 65536; r++) {
      uint64_t side = 2 * (uint64_t)r + 1, inner = r ? side - 2 : 0;
      uint64_t ring = side * side * side - inner * inner * inner;
      if (probed + ring > g->ncells) break; /* scanning is cheaper from here on */
      probed += ring;
      for (int32_t dx = -r; dx <= r; dx++) {
        int32_t x = cc[0] + dx;
        if (x < g->cmin || x > g->cmax) continue;
        double gx = axis_gap(q, 0, x);
        for (int32_t dy = -r; dy <= r; dy++) {
          int32_t y = cc[1] + dy;
          if (y < g->cmin || y > g->cmax) continue;
          double gy = axis_gap(q, 1, y);
          bool face = dx == -r || dx == r || dy == -r || dy == r;
          int32_t step = face ? 1 : (r ? 2 * r : 1);
          for (int32_t dz = -r; dz <= r; dz += step) {
            int32_t z = cc[2] + dz;
            if (z < g->cmin || z > g->cmax) continue;
            if (cell_out(q, gx, gy, axis_gap(q, 2, z))) continue;
            const cell *c = cell_get(g, cell_key(x, y, z));
            if (c) {
              ng_status st = visit_cell(q, c);
              if (st != NG_OK) return st;
            }
          }
        }
      }
      double bound = outside_bound(q, cc, r);
      if (isinf(bound)) return NG_OK; /* every cell searched */
      if (h->count == k && h->items[0].distance < to_float(bound)) return NG_OK;
    }
    h->count = 0;
  }
  return visit_table(q);
}

/* ---- public entry points ------------------------------------------------ */

/* Common argument checks; out->count is zeroed first so failures leave it 0. */
static ng_status check_common(ng_runtime *rt, const char *fn, int space, ng_hits *out) {
  if (out) out->count = 0;
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!out) return ngi_fail(rt, NG_EINVAL, "%s: out must not be NULL", fn);
  if (space < 0 || space >= NG_SPACES)
    return ngi_fail(rt, NG_EINVAL, "%s: space must be 0..7, got %d", fn, space);
  return NG_OK;
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

/* Run q (caller holds the read lock), then sort; failures leave no hits. */
static ng_status run_sorted(query *q, ng_status (*run)(query *)) {
  ng_status st = run(q);
  if (st == NG_OK)
    sort_truncate(q->out, q->k);
  else
    q->out->count = 0;
  return st;
}

static ng_status finish(ng_runtime *rt, const char *fn, ng_status st) {
  if (st == NG_ENOMEM) return ngi_fail(rt, NG_ENOMEM, "%s: out of memory for the results", fn);
  return st;
}

ng_status ng_grid_range(ng_runtime *rt, int space, const float center[3], float radius,
                        size_t limit, ng_hits *out) {
  static const char fn[] = "ng_grid_range";
  ng_status st = check_common(rt, fn, space, out);
  if (st == NG_OK) st = check_point(rt, fn, "center", center);
  if (st == NG_OK) st = check_radius(rt, fn, radius);
  if (st != NG_OK) return st;
  query q = {.rt = rt, .kind = Q_SPHERE, .radius = (double)radius, .k = limit, .out = out};
  for (int a = 0; a < 3; a++)
    q.c[a] = (double)center[a];
  ngi_read_lock(rt);
  q.g = rt->grids[space];
  if (q.g) st = run_sorted(&q, run_sphere);
  ngi_read_unlock(rt);
  return finish(rt, fn, st);
}

ng_status ng_grid_neighbors(ng_runtime *rt, uint32_t id, int space, float radius, size_t limit,
                            ng_hits *out) {
  static const char fn[] = "ng_grid_neighbors";
  ng_status st = check_common(rt, fn, space, out);
  if (st == NG_OK) st = check_radius(rt, fn, radius);
  if (st != NG_OK) return st;
  query q = {
      .rt = rt, .kind = Q_SPHERE, .radius = (double)radius, .exclude = id, .k = limit, .out = out};
  ngi_read_lock(rt);
  const ng_token *t = ngi_token_lookup(&rt->tokens, id);
  if (!t) {
    ngi_read_unlock(rt);
    return ngi_fail(rt, NG_ENOTFOUND, "%s: no token with id %u", fn, (unsigned)id);
  }
  q.g = rt->grids[space];
  if (q.g) {
    for (int a = 0; a < 3; a++)
      q.c[a] = (double)decode(q.g, t->coords[space][a]);
    st = run_sorted(&q, run_sphere);
  }
  ngi_read_unlock(rt);
  return finish(rt, fn, st);
}

ng_status ng_grid_nearest(ng_runtime *rt, int space, const float center[3], size_t k,
                          ng_hits *out) {
  static const char fn[] = "ng_grid_nearest";
  ng_status st = check_common(rt, fn, space, out);
  if (st == NG_OK) st = check_point(rt, fn, "center", center);
  if (st != NG_OK) return st;
  query q = {.rt = rt, .kind = Q_ALL, .k = k, .out = out};
  for (int a = 0; a < 3; a++)
    q.c[a] = (double)center[a];
  ngi_read_lock(rt);
  q.g = rt->grids[space];
  if (q.g && k > 0) st = run_sorted(&q, run_nearest);
  ngi_read_unlock(rt);
  return finish(rt, fn, st);
}

ng_status ng_grid_box(ng_runtime *rt, int space, const float lo[3], const float hi[3], size_t limit,
                      ng_hits *out) {
  static const char fn[] = "ng_grid_box";
  ng_status st = check_common(rt, fn, space, out);
  if (st == NG_OK) st = check_point(rt, fn, "lo", lo);
  if (st == NG_OK) st = check_point(rt, fn, "hi", hi);
  if (st != NG_OK) return st;
  for (int a = 0; a < 3; a++)
    if (lo[a] > hi[a])
      return ngi_fail(rt, NG_EINVAL, "%s: lo[%d] must be <= hi[%d], got %g > %g", fn, a, a,
                      (double)lo[a], (double)hi[a]);
  query q = {.rt = rt, .kind = Q_BOX, .k = limit, .out = out};
  for (int a = 0; a < 3; a++) {
    q.lo[a] = lo[a];
    q.hi[a] = hi[a];
    q.c[a] = ((double)lo[a] + (double)hi[a]) / 2.0;
  }
  ngi_read_lock(rt);
  q.g = rt->grids[space];
  if (q.g) st = run_sorted(&q, run_box);
  ngi_read_unlock(rt);
  return finish(rt, fn, st);
}

/* Exact bounds when removals may have left the cached ones too wide: the
 * extreme values lie in the cells with extreme cell coordinates, so only those
 * cells' points are read. */
static void exact_bounds(const ng_runtime *rt, const ngi_grid *g, int32_t lo[3], int32_t hi[3]) {
  int32_t cl[3], ch[3];
  for (int a = 0; a < 3; a++) {
    cl[a] = INT32_MAX;
    ch[a] = INT32_MIN;
    lo[a] = INT32_MAX;
    hi[a] = INT32_MIN;
  }
  for (size_t i = 0; i < g->ncells; i++)
    for (int a = 0; a < 3; a++) {
      int32_t k = key_axis(g->cells[i].key, a);
      if (k < cl[a]) cl[a] = k;
      if (k > ch[a]) ch[a] = k;
    }
  for (size_t i = 0; i < g->ncells; i++) {
    const cell *c = &g->cells[i];
    bool edge = false;
    for (int a = 0; a < 3; a++) {
      int32_t k = key_axis(c->key, a);
      edge = edge || k == cl[a] || k == ch[a];
    }
    if (!edge) continue;
    const uint32_t *ids = cell_ids_c(c);
    for (uint32_t j = 0; j < c->count; j++) {
      const ng_token *t = ngi_token_lookup(&rt->tokens, ids[j]);
      if (!t) continue;
      for (int a = 0; a < 3; a++) {
        int32_t v = t->coords[g->space][a];
        if (v < lo[a]) lo[a] = v;
        if (v > hi[a]) hi[a] = v;
      }
    }
  }
}

ng_status ng_grid_info_get(ng_runtime *rt, int space, ng_grid_info *out) {
  static const char fn[] = "ng_grid_info_get";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!out) return ngi_fail(rt, NG_EINVAL, "%s: out must not be NULL", fn);
  if (space < 0 || space >= NG_SPACES)
    return ngi_fail(rt, NG_EINVAL, "%s: space must be 0..7, got %d", fn, space);
  memset(out, 0, sizeof *out);
  ngi_read_lock(rt);
  const ngi_grid *g = rt->grids[space];
  if (g) {
    out->count = g->count;
    out->cells = g->ncells;
    out->cell_size = g->cell_size;
    if (g->count > 0) {
      int32_t lo[3], hi[3];
      if (g->bounds_dirty) {
        exact_bounds(rt, g, lo, hi);
      } else {
        for (int a = 0; a < 3; a++) {
          lo[a] = g->lo[a];
          hi[a] = g->hi[a];
        }
      }
      for (int a = 0; a < 3; a++) {
        out->lo[a] = decode(g, lo[a]);
        out->hi[a] = decode(g, hi[a]);
      }
    }
  }
  ngi_read_unlock(rt);
  return NG_OK;
}

void ng_hits_free(ng_runtime *rt, ng_hits *hits) {
  if (!rt || !hits) return;
  ngi_free(rt, hits->items, hits->capacity * sizeof(ng_hit));
  hits->items = NULL;
  hits->count = 0;
  hits->capacity = 0;
}

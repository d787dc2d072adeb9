/* The spatial index: per space, a lazily built array of points sorted by cell, and its queries. */
#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * Layout. Coordinates are handled "biased": u = raw + 32768, 0..65535, so
 * cells are plain right shifts. A space's index is built lazily, in bulk, the
 * first time it is queried (pay for what you use), from the token table:
 *
 * - the main index: every live token as one 64-bit entry (the 24-bit id under
 *   the Morton code of its offsets inside its cell, 3 x 13 bits), grouped by
 *   cell with a counting sort, and a dense directory `starts` over the
 *   bounding box of the points. Cells are powers of two per axis, coarsened
 *   until the box has at most max(n/CELL_FILL, 512) cells: about CELL_FILL
 *   points a cell when points are spread, a directory of well under a byte a
 *   token. The configured bucket size is only reported (info); the index's
 *   own resolution follows the data, so a space with scale 10000 is as fast
 *   as L1. A crowded cell (more than LEAF entries: clustered points) is kept
 *   sorted, which makes it an implicit octree along the Z curve: queries
 *   descend into it by binary search, nearest children first. Cells at the
 *   edge of the box also hold side entries beyond it (cell coordinates are
 *   clamped to the box), so a point leaving the box needs no rebuild.
 * - `stale`: one bit per id up to the build's watermark; a set bit hides the
 *   main entry of a token that moved to another cell or died since the build
 *   (remove never allocates: the bitmap exists from the build on).
 * - the side table: an open-addressing table of (cell, id, position) for
 *   positions inserted since the build (moves to another cell, and tokens
 *   created since the build, absorbed by the next query). Linear probing
 *   keyed by cell, so the side entries of one cell form one probe run.
 *
 * Writes. A create costs no grid work: ids only grow, so the tokens created
 * since the index last looked are the table's tail (ids above `w_abs`), and
 * the next query absorbs them. A move within one cell (a game loop's small
 * step) rewrites the main entry in place; a longer one hides the main entry
 * and adds a side entry. When the side part or the hidden part grows past a
 * fraction of n, the next query rebuilds the main index (amortised O(1) a
 * write).
 *
 * Locking: writers (insert, remove, clear) run under the runtime's write lock,
 * so no query is running. Queries run under the runtime's read lock, many at
 * once; the lazy work they do (build, absorb, rebuild) takes the grid's own
 * rwlock for writing, and the query itself holds it for reading.
 *
 * Memory at 1M uniform points (measured): 8.5 bytes a token per built space
 * (entries 8, directory ~0.25, stale bits 0.125) on top of the 68 of the
 * token table; a build briefly needs nothing beyond its result.
 */

#define BIAS 32768
#define MAX_SHIFT 13
#define CELL_FILL 12 /* target points per cell */
#define LEAF 32      /* cells (and Morton nodes) up to this size are scanned, not split */
#define ID_MASK 0xFFFFFFu

typedef struct side_ent {
  uint32_t cell;       /* clamped box cell index */
  uint32_t id;         /* 0 = a free slot */
  uint32_t next, prev; /* the cell's list (SIDE_NONE ends); next links free slots */
  uint16_t u[3];       /* biased coordinates */
  uint16_t pad;
} side_ent;

#define SIDE_NONE UINT32_MAX

typedef struct mainix {
  unsigned shift[3]; /* cell width 2^shift[a] on axis a */
  unsigned levels;   /* max(shift): depth of the Morton order inside a cell */
  uint32_t c0[3];    /* box origin, in cells of the biased range */
  uint32_t nc[3];    /* box size in cells (>= 1) */
  size_t ncell;      /* nc[0] * nc[1] * nc[2] */
  uint32_t *starts;  /* ncell + 1 entries (NULL when n == 0) */
  uint64_t *ent;     /* n packed entries */
  size_t n;
  uint64_t *stale; /* bits for ids 0 .. w_main */
  size_t stale_words;
  size_t nstale; /* main entries hidden */
  uint32_t w_main;
} mainix;

struct ngi_grid {
  int space;
  float cell_size; /* decoded units, as configured (reported by info) */
  float scale;
  int32_t cs; /* the configured cell size in raw units, for info's cell count */
  pthread_rwlock_t qlock;
  bool built;
  uint32_t w_abs; /* ids <= w_abs are in main or side; larger ones are read from the table */
  mainix m;
  /* The side part: entries in a slab (side[0..side_used), free slots on a
   * list), a hash by id for removes (side_hash: slab index + 1, 0 = empty;
   * side_cap slots, 0 or a power of two) and a doubly linked list per cell
   * for queries (side_heads, m.ncell entries): every write is O(1), however
   * crowded the cell. */
  side_ent *side;
  size_t side_slab, side_used;
  uint32_t side_free_at;
  uint32_t *side_hash;
  size_t side_cap;
  unsigned side_bits;
  uint32_t *side_heads;
  size_t side_heads_n; /* the m.ncell it was made for */
  size_t side_count;
  /* A move done in place (see ngi_grid_insert): the main entry at ent[pend_at]
   * went from pend_old to pend_new; the caller's remove of pend_old completes
   * it, a remove of pend_new undoes it. pend_id 0 = none. */
  uint32_t pend_id;
  uint16_t pend_old[3], pend_new[3];
  size_t pend_at;
};

/* ---- small helpers ------------------------------------------------------ */

static int32_t floor_div(int32_t a, int32_t b) {
  int32_t q = a / b;
  if (a % b != 0 && a < 0) q--;
  return q;
}

/* The decoded value of a biased coordinate, exactly as ng_coord_decode computes it. */
static float decode_u(const ngi_grid *g, uint32_t u) {
  return (float)((int32_t)u - BIAS) / g->scale;
}

/* A double as a float without undefined behaviour for values beyond FLT_MAX. */
static float to_float(double d) {
  if (d > (double)FLT_MAX) return INFINITY;
  if (d < -(double)FLT_MAX) return -INFINITY;
  return (float)d;
}

static uint32_t axis_cell(const mainix *m, int a, uint32_t u) {
  uint32_t c = u >> m->shift[a];
  if (c <= m->c0[a]) return 0;
  c -= m->c0[a];
  return c >= m->nc[a] ? m->nc[a] - 1 : c;
}

static uint32_t cell_index(const mainix *m, const uint16_t u[3]) {
  return (axis_cell(m, 0, u[0]) * m->nc[1] + axis_cell(m, 1, u[1])) * m->nc[2] +
         axis_cell(m, 2, u[2]);
}

static void bias(const int16_t xyz[3], uint16_t u[3]) {
  for (int a = 0; a < 3; a++)
    u[a] = (uint16_t)((int32_t)xyz[a] + BIAS);
}

/* A token's biased coordinates in a space (the record is packed: read by value). */
static void tok_u(const ng_token *t, int sp, uint16_t u[3]) {
  for (int a = 0; a < 3; a++)
    u[a] = (uint16_t)((int32_t)t->coords[sp][a] + BIAS);
}

/* Spread the low 13 bits of x to every third bit (Morton interleaving). */
static uint64_t split3(uint32_t v) {
  uint64_t x = v & 0x1FFFu;
  x = (x | x << 16) & 0x1F0000FFull;
  x = (x | x << 8) & 0x100F00F00Full;
  x = (x | x << 4) & 0x10C30C30C3ull;
  x = (x | x << 2) & 0x1249249249ull;
  return x;
}

static inline uint32_t compact3(uint64_t x) {
  x &= 0x1249249249ull;
  x = (x ^ (x >> 2)) & 0x10C30C30C3ull;
  x = (x ^ (x >> 4)) & 0x100F00F00Full;
  x = (x ^ (x >> 8)) & 0x1F0000FFull;
  x = (x ^ (x >> 16)) & 0x1FFFull;
  return (uint32_t)x;
}

/* A main entry: the Morton code of the point's offsets inside its cell (3 x
 * 13 bits, x highest) above the 24-bit id. Sorting a cell's entries sorts
 * them along the Z curve, so a crowded cell is an implicit octree. */
static uint64_t pack(const mainix *m, uint32_t id, const uint16_t u[3]) {
  uint64_t code = split3(u[0] & ((1u << m->shift[0]) - 1u)) << 2 |
                  split3(u[1] & ((1u << m->shift[1]) - 1u)) << 1 |
                  split3(u[2] & ((1u << m->shift[2]) - 1u));
  return code << 24 | id;
}

static inline void unpack(uint64_t e, uint32_t off[3]) {
  uint64_t code = e >> 24;
  off[0] = compact3(code >> 2);
  off[1] = compact3(code >> 1);
  off[2] = compact3(code);
}

static bool stale_get(const mainix *m, uint32_t id) {
  return (m->stale[id >> 6] >> (id & 63)) & 1u;
}

/* Side entries are hashed by id (a crowded cell must not make one long probe
 * run); queries read them per cell from the cell lists. */
static size_t side_home(const ngi_grid *g, uint32_t id) {
  return (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull >> (64 - g->side_bits));
}

static void main_free(ng_runtime *rt, mainix *m) {
  if (m->starts) ngi_free(rt, m->starts, (m->ncell + 1) * sizeof(uint32_t));
  if (m->ent) ngi_free(rt, m->ent, m->n * sizeof(uint64_t));
  if (m->stale) ngi_free(rt, m->stale, m->stale_words * sizeof(uint64_t));
  memset(m, 0, sizeof *m);
}

/* An empty main index: one cell covering everything, no storage. */
static void main_empty(mainix *m, uint32_t w_main) {
  memset(m, 0, sizeof *m);
  m->shift[0] = m->shift[1] = m->shift[2] = 16;
  m->nc[0] = m->nc[1] = m->nc[2] = 1;
  m->ncell = 1;
  m->w_main = w_main;
}

static void side_free(ng_runtime *rt, ngi_grid *g) {
  if (g->side) ngi_free(rt, g->side, g->side_slab * sizeof(side_ent));
  if (g->side_hash) ngi_free(rt, g->side_hash, g->side_cap * sizeof(uint32_t));
  if (g->side_heads) ngi_free(rt, g->side_heads, g->side_heads_n * sizeof(uint32_t));
  g->side = NULL;
  g->side_hash = NULL;
  g->side_heads = NULL;
  g->side_slab = g->side_used = g->side_cap = g->side_count = g->side_heads_n = 0;
  g->side_free_at = SIDE_NONE;
  g->side_bits = 0;
}

/* ---- construction ------------------------------------------------------- */

/* needs: cell_size finite and > 0, space 0..7.
 * guarantees: an index in *out that will be built from the token table at the
 * first query. fails: NG_EINVAL, NG_ENOMEM. */
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
  g->side_free_at = SIDE_NONE;
  if (pthread_rwlock_init(&g->qlock, NULL) != 0) {
    ngi_free(rt, g, sizeof *g);
    return ngi_fail(rt, NG_ENOMEM, "grid: cannot create the lock");
  }
  g->space = space;
  g->cell_size = cell_size;
  g->scale = scale;
  /* Rounded to whole raw units; one cell of 65536 already spans the whole raw range. */
  double cs = floor((double)cell_size * (double)scale + 0.5);
  g->cs = cs < 1.0 ? 1 : cs > 65536.0 ? 65536 : (int32_t)cs;
  main_empty(&g->m, 0);
  *out = g;
  return NG_OK;
}

/* Forget everything: the index is "built" and empty, and ids up to the
 * table's current next id are considered absorbed, so the grid stays empty
 * until new tokens are created or a rebuild happens. Never fails. */
void ngi_grid_clear(ng_runtime *rt, ngi_grid *g) {
  if (!g) return;
  main_free(rt, &g->m);
  side_free(rt, g);
  uint32_t w = rt->tokens.next_id ? rt->tokens.next_id - 1 : 0;
  main_empty(&g->m, w);
  g->w_abs = w;
  g->built = true;
  g->pend_id = 0;
}

void ngi_grid_destroy(ng_runtime *rt, ngi_grid *g) {
  if (!g) return;
  main_free(rt, &g->m);
  side_free(rt, g);
  pthread_rwlock_destroy(&g->qlock);
  ngi_free(rt, g, sizeof *g);
}

/* Sort keys ascending: quicksort with a median-of-three pivot, insertion sort
 * for short runs, heapsort when the recursion gets too deep. */
static void u64_sift(uint64_t *a, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, mx = i;
    if (l < n && a[l] > a[mx]) mx = l;
    if (r < n && a[r] > a[mx]) mx = r;
    if (mx == i) return;
    uint64_t t = a[i];
    a[i] = a[mx];
    a[mx] = t;
    i = mx;
  }
}

static void sort_u64(uint64_t *a, size_t n, unsigned depth) {
  while (n > 16) {
    if (depth-- == 0) {
      for (size_t i = n / 2; i-- > 0;)
        u64_sift(a, n, i);
      for (size_t e = n; e-- > 1;) {
        uint64_t t = a[0];
        a[0] = a[e];
        a[e] = t;
        u64_sift(a, e, 0);
      }
      return;
    }
    size_t mid = n / 2;
    uint64_t t;
    if (a[mid] < a[0]) t = a[mid], a[mid] = a[0], a[0] = t;
    if (a[n - 1] < a[mid]) {
      t = a[n - 1], a[n - 1] = a[mid], a[mid] = t;
      if (a[mid] < a[0]) t = a[mid], a[mid] = a[0], a[0] = t;
    }
    uint64_t p = a[mid];
    size_t i = 0, j = n - 1;
    for (;;) {
      do
        i++;
      while (a[i] < p);
      do
        j--;
      while (p < a[j]);
      if (i >= j) break;
      t = a[i], a[i] = a[j], a[j] = t;
    }
    if (j + 1 < n - j - 1) {
      sort_u64(a, j + 1, depth);
      a += j + 1;
      n -= j + 1;
    } else {
      sort_u64(a + j + 1, n - j - 1, depth);
      n = j + 1;
    }
  }
  for (size_t i = 1; i < n; i++) {
    uint64_t x = a[i];
    size_t k = i;
    for (; k > 0 && x < a[k - 1]; k--)
      a[k] = a[k - 1];
    a[k] = x;
  }
}

/* needs: a lock that keeps `t` stable (the write lock, or the read lock plus
 * the grid's qlock for writing). guarantees: *out is a main index of every
 * live token of t. fails: NG_ENOMEM with *out untouched and nothing leaked. */
static ng_status main_build(ng_runtime *rt, const ngi_grid *g, const ngi_token_table *t,
                            mainix *out) {
  const int sp = g->space;
  size_t n = t->live;
  uint32_t w = t->next_id ? t->next_id - 1 : 0;
  mainix m;
  main_empty(&m, w);
  if (n == 0) {
    *out = m;
    return NG_OK;
  }
  /* Three strided passes over the records (bounds, count, scatter) and no
   * temporary: a temporary copy would be faster to sort from, but it would
   * double the peak memory of a build. */
  uint32_t lo[3] = {65535, 65535, 65535}, hi[3] = {0, 0, 0};
  for (size_t i = 0; i < t->len; i++) {
    const ng_token *tok = &t->recs[i];
    if (NG_ID_LOCAL(tok->id) == 0) continue;
    uint16_t u[3];
    tok_u(tok, sp, u);
    for (int a = 0; a < 3; a++) {
      lo[a] = u[a] < lo[a] ? u[a] : lo[a];
      hi[a] = u[a] > hi[a] ? u[a] : hi[a];
    }
  }
  /* Power-of-two cells, per axis, coarsened (always on the axis with the most
   * cells) until the box holds at most max(n/CELL_FILL, 512) cells: about
   * CELL_FILL points a cell when they are spread evenly. Few, fuller cells
   * cost fewer cache misses per query than many sparse ones. */
  size_t limit = n / CELL_FILL > 512 ? n / CELL_FILL : 512;
  unsigned sh[3] = {0, 0, 0};
  for (;;) {
    size_t cells = 1;
    int widest = 0;
    uint32_t most = 0;
    for (int a = 0; a < 3; a++) {
      uint32_t na = (hi[a] >> sh[a]) - (lo[a] >> sh[a]) + 1;
      cells *= na;
      if (na > most && sh[a] < MAX_SHIFT) {
        most = na;
        widest = a;
      }
    }
    if (cells <= limit || most <= 1) break;
    sh[widest]++;
  }
  m.ncell = 1;
  m.levels = 0;
  for (int a = 0; a < 3; a++) {
    m.levels = sh[a] > m.levels ? sh[a] : m.levels;
    m.shift[a] = sh[a];
    m.c0[a] = lo[a] >> sh[a];
    m.nc[a] = (hi[a] >> sh[a]) - m.c0[a] + 1;
    m.ncell *= m.nc[a];
  }
  m.n = n;
  m.stale_words = (size_t)(w >> 6) + 1;
  m.starts = ngi_alloc_array(rt, m.ncell + 1, sizeof(uint32_t));
  m.ent = ngi_alloc_array(rt, n, sizeof(uint64_t));
  m.stale = ngi_alloc_array(rt, m.stale_words, sizeof(uint64_t));
  if (!m.starts || !m.ent || !m.stale) {
    if (m.starts) ngi_free(rt, m.starts, (m.ncell + 1) * sizeof(uint32_t));
    if (m.ent) ngi_free(rt, m.ent, n * sizeof(uint64_t));
    if (m.stale) ngi_free(rt, m.stale, m.stale_words * sizeof(uint64_t));
    return NG_ENOMEM;
  }
  memset(m.starts, 0, (m.ncell + 1) * sizeof(uint32_t));
  memset(m.stale, 0, m.stale_words * sizeof(uint64_t));
  /* Counting sort by cell; the table is in ascending id order, so each cell
   * lists its ids in ascending order (deterministic answers). */
  for (size_t i = 0; i < t->len; i++) {
    const ng_token *tok = &t->recs[i];
    if (NG_ID_LOCAL(tok->id) == 0) continue;
    uint16_t u[3];
    tok_u(tok, sp, u);
    m.starts[cell_index(&m, u) + 1]++;
  }
  for (size_t c = 1; c <= m.ncell; c++)
    m.starts[c] += m.starts[c - 1];
  for (size_t i = 0; i < t->len; i++) {
    const ng_token *tok = &t->recs[i];
    uint32_t id = NG_ID_LOCAL(tok->id);
    if (id == 0) continue;
    uint16_t u[3];
    tok_u(tok, sp, u);
    m.ent[m.starts[cell_index(&m, u)]++] = pack(&m, id, u);
  }
  for (size_t c = m.ncell; c > 0; c--)
    m.starts[c] = m.starts[c - 1];
  m.starts[0] = 0;
  for (size_t c = 0; c < m.ncell; c++)
    if (m.starts[c + 1] - m.starts[c] > LEAF)
      sort_u64(m.ent + m.starts[c], m.starts[c + 1] - m.starts[c], 64);
  *out = m;
  return NG_OK;
}

/* ---- the side table ----------------------------------------------------- */

/* Room for one more side entry: a slab slot, a hash slot at a load of at
 * most 1/2, and the cell lists. fails: NG_ENOMEM with the side part
 * logically unchanged (capacities may have grown). */
static ng_status side_reserve(ng_runtime *rt, ngi_grid *g) {
  if (!g->side_heads) {
    uint32_t *h = ngi_alloc_array(rt, g->m.ncell, sizeof(uint32_t));
    if (!h) return NG_ENOMEM;
    for (size_t c = 0; c < g->m.ncell; c++)
      h[c] = SIDE_NONE;
    g->side_heads = h;
    g->side_heads_n = g->m.ncell;
  }
  if (g->side_free_at == SIDE_NONE && g->side_used == g->side_slab) {
    size_t cap = g->side_slab ? g->side_slab * 2 : 64;
    if (cap >= SIDE_NONE) return NG_ENOMEM;
    side_ent *p = ngi_realloc_array(rt, g->side, g->side_slab, cap, sizeof(side_ent));
    if (!p) return NG_ENOMEM;
    g->side = p;
    g->side_slab = cap;
  }
  if ((g->side_count + 1) * 2 > g->side_cap) {
    size_t ncap = g->side_cap ? g->side_cap * 2 : 128;
    unsigned bits = 0;
    while (((size_t)1 << bits) < ncap)
      bits++;
    uint32_t *nh = ngi_alloc_array(rt, ncap, sizeof(uint32_t));
    if (!nh) return NG_ENOMEM;
    memset(nh, 0, ncap * sizeof(uint32_t));
    if (g->side_hash) ngi_free(rt, g->side_hash, g->side_cap * sizeof(uint32_t));
    g->side_hash = nh;
    g->side_cap = ncap;
    g->side_bits = bits;
    for (size_t i = 0; i < g->side_used; i++) {
      if (g->side[i].id == 0) continue;
      size_t j = side_home(g, g->side[i].id);
      while (nh[j] != 0)
        j = (j + 1) & (ncap - 1);
      nh[j] = (uint32_t)i + 1;
    }
  }
  return NG_OK;
}

/* needs: side_reserve succeeded. */
static void side_put(ngi_grid *g, uint32_t id, const uint16_t u[3]) {
  uint32_t cell = cell_index(&g->m, u);
  uint32_t at;
  if (g->side_free_at != SIDE_NONE) {
    at = g->side_free_at;
    g->side_free_at = g->side[at].next;
  } else {
    at = (uint32_t)g->side_used++;
  }
  side_ent *e = &g->side[at];
  e->cell = cell;
  e->id = id;
  memcpy(e->u, u, sizeof e->u);
  e->pad = 0;
  e->prev = SIDE_NONE;
  e->next = g->side_heads[cell];
  if (e->next != SIDE_NONE) g->side[e->next].prev = at;
  g->side_heads[cell] = at;
  size_t mask = g->side_cap - 1, j = side_home(g, id);
  while (g->side_hash[j] != 0)
    j = (j + 1) & mask;
  g->side_hash[j] = at + 1;
  g->side_count++;
}

/* Delete one side entry (id at u); false if there is none. Backward-shift
 * deletion keeps every probe run of the hash intact without tombstones. */
static bool side_del(ngi_grid *g, uint32_t id, const uint16_t u[3]) {
  if (g->side_count == 0) return false;
  size_t mask = g->side_cap - 1, i = side_home(g, id);
  for (;; i = (i + 1) & mask) {
    if (g->side_hash[i] == 0) return false;
    const side_ent *e = &g->side[g->side_hash[i] - 1];
    if (e->id == id && memcmp(e->u, u, sizeof e->u) == 0) break;
  }
  uint32_t at = g->side_hash[i] - 1;
  side_ent *e = &g->side[at];
  if (e->prev != SIDE_NONE)
    g->side[e->prev].next = e->next;
  else
    g->side_heads[e->cell] = e->next;
  if (e->next != SIDE_NONE) g->side[e->next].prev = e->prev;
  e->id = 0;
  e->next = g->side_free_at;
  g->side_free_at = at;
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (g->side_hash[j] == 0) break;
    size_t home = side_home(g, g->side[g->side_hash[j] - 1].id);
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      g->side_hash[i] = g->side_hash[j];
      i = j;
    }
  }
  g->side_hash[i] = 0;
  g->side_count--;
  return true;
}

/* ---- insert / remove ---------------------------------------------------- */

/* First index in [lo, hi) of ent whose entry is >= key. */
static size_t lower_bound(const uint64_t *ent, size_t lo, size_t hi, uint64_t key) {
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ent[mid] < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Index in m->ent of id's entry in the cell of u, or SIZE_MAX. */
static size_t main_find(const mainix *m, uint32_t id, const uint16_t u[3]) {
  uint32_t idx = cell_index(m, u);
  size_t lo = m->starts[idx], hi = m->starts[idx + 1];
  uint64_t want = pack(m, id, u);
  if (hi - lo > LEAF) { /* sorted: binary search */
    lo = lower_bound(m->ent, lo, hi, want);
    return lo < hi && m->ent[lo] == want ? lo : SIZE_MAX;
  }
  for (size_t i = lo; i < hi; i++)
    if (m->ent[i] == want) return i;
  return SIZE_MAX;
}

/* A move that stays inside one cell of the main index (the common small step
 * of a game loop) rewrites the token's main entry in place: no side entry, so
 * no rebuild and no extra work for queries. Needs: id's main entry visible,
 * so it is where the table says. */
static bool move_in_place(ng_runtime *rt, ngi_grid *g, uint32_t id, const uint16_t un[3]) {
  const mainix *m = &g->m;
  if (g->pend_id != 0 || id > m->w_main || !m->stale || (m->nstale && stale_get(m, id)))
    return false;
  const ng_token *t = ngi_token_lookup(&rt->tokens, id);
  if (!t) return false;
  uint16_t uo[3];
  tok_u(t, g->space, uo);
  for (int a = 0; a < 3; a++)
    if ((uo[a] >> m->shift[a]) != (un[a] >> m->shift[a])) return false;
  size_t at = main_find(m, id, uo);
  if (at == SIZE_MAX) return false;
  uint64_t e = pack(m, id, un);
  uint32_t idx = cell_index(m, uo);
  size_t lo = m->starts[idx], hi = m->starts[idx + 1];
  /* A crowded cell stays sorted: in place only if the order is kept. */
  if (hi - lo > LEAF && ((at > lo && m->ent[at - 1] > e) || (at + 1 < hi && m->ent[at + 1] < e)))
    return false;
  m->ent[at] = e;
  g->pend_id = id;
  g->pend_at = at;
  memcpy(g->pend_old, uo, sizeof uo);
  memcpy(g->pend_new, un, sizeof g->pend_new);
  return true;
}

/* needs: the write lock. guarantees: the grid holds id at xyz -- for an id the
 * index has not absorbed yet (above w_abs, or an index not built yet) that
 * means nothing to do, since such ids are read from the token table; the
 * caller keeps the table's record in step (tokens.c does). Duplicates allowed.
 * When xyz is in the same main cell as the table's position of id, the main
 * entry is moved in place and the caller's following remove of the table's
 * position completes the move (tokens.c's update does exactly this).
 * fails: NG_EINVAL (bad arguments), NG_ENOMEM; the grid is then unchanged. */
ng_status ngi_grid_insert(ng_runtime *rt, ngi_grid *g, uint32_t id, const int16_t xyz[3]) {
  if (!g || !xyz || id == 0 || id > NG_TOKEN_ID_MAX) return NG_EINVAL;
  if (!g->built || id > g->w_abs) return NG_OK;
  uint16_t u[3];
  bias(xyz, u);
  if (move_in_place(rt, g, id, u)) return NG_OK;
  if (side_reserve(rt, g) != NG_OK) return ngi_fail(rt, NG_ENOMEM, "grid: out of memory");
  side_put(g, id, u);
  return NG_OK;
}

/* needs: the write lock, and -- as tokens.c guarantees -- the token table
 * still holding id's position before the change being made.
 * guarantees: one occurrence of id at xyz gone. A pending in-place move of id
 * is completed (xyz its old position) or undone (xyz its new one). A main
 * entry that is not hidden is where the table says the token is (every move
 * hides it or moves it in place), so it is hidden when xyz is the table's
 * position; otherwise a side entry (id, xyz) is deleted. Absent occurrences
 * are ignored. Never fails or allocates. */
void ngi_grid_remove(ng_runtime *rt, ngi_grid *g, uint32_t id, const int16_t xyz[3]) {
  if (!g || !xyz || id == 0 || !g->built || id > g->w_abs) return;
  mainix *m = &g->m;
  uint16_t u[3];
  bias(xyz, u);
  if (g->pend_id == id) {
    if (memcmp(u, g->pend_old, sizeof u) == 0) {
      g->pend_id = 0;
      return;
    }
    if (memcmp(u, g->pend_new, sizeof u) == 0) {
      m->ent[g->pend_at] = pack(m, id, g->pend_old);
      g->pend_id = 0;
      return;
    }
  }
  if (id <= m->w_main && m->stale && !(m->nstale && stale_get(m, id))) {
    const ng_token *t = ngi_token_lookup(&rt->tokens, id);
    if (t && memcmp(t->coords[g->space], xyz, sizeof t->coords[g->space]) == 0) {
      m->stale[id >> 6] |= (uint64_t)1 << (id & 63);
      m->nstale++;
      return;
    }
  }
  side_del(g, id, u);
}

/* needs: the write lock (or exclusive access); `tokens` is the runtime's
 * table. guarantees: *g replaced by an index with `cell_size`, built in bulk
 * from the table at its first query (a snapshot load calls this for every
 * space: it pays nothing for spaces it never queries).
 * fails: NG_EINVAL, NG_ENOMEM with *g unchanged. */
ng_status ngi_grid_rebuild(ng_runtime *rt, ngi_grid **g, float cell_size,
                           const ngi_token_table *tokens) {
  if (!g || !*g || !tokens) return ngi_fail(rt, NG_EINVAL, "grid: bad rebuild arguments");
  ngi_grid *ng = NULL;
  ng_status st = ngi_grid_new(rt, (*g)->space, cell_size, &ng);
  if (st != NG_OK) return st;
  ngi_grid_destroy(rt, *g);
  *g = ng;
  return NG_OK;
}

/* ---- lazy maintenance --------------------------------------------------- */

/* Slot of the smallest live id greater than `after`, or t->len if none. */
static size_t first_after(const ngi_token_table *t, uint32_t after) {
  size_t lo = 0, hi = t->len, best = t->len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2, k = mid;
    while (k < hi && NG_ID_LOCAL(t->recs[k].id) == 0)
      k++;
    if (k == hi) {
      hi = mid;
    } else if (NG_ID_LOCAL(t->recs[k].id) > after) {
      best = k;
      hi = mid;
    } else {
      lo = k + 1;
    }
  }
  return best;
}

static bool has_tail(const ngi_grid *g, const ngi_token_table *t) {
  /* The last slot is never a tombstone (tokens.c trims them). */
  return t->len > 0 && NG_ID_LOCAL(t->recs[t->len - 1].id) > g->w_abs;
}

static bool too_fragmented(const ngi_grid *g, size_t tail) {
  size_t n = g->m.n;
  return g->side_count + tail > n / 4 + 1024 || g->m.nstale > n / 2 + 1024;
}

/* Few side entries are simply all read by every query; more are read per
 * cell from the cell lists. */
#define SIDE_SCAN 32

static bool needs_work(const ngi_grid *g, const ngi_token_table *t) {
  return !g->built || has_tail(g, t) || too_fragmented(g, 0);
}

/* needs: the runtime's read lock and g's qlock for writing.
 * guarantees: every live token is in the index (no tail). The main index is
 * rebuilt when the side part is too big; if that rebuild cannot allocate, the
 * old (still exact) index is kept. fails: NG_ENOMEM when the index cannot be
 * built or the tail not absorbed; what was absorbed stays absorbed. */
static ng_status maintain(ng_runtime *rt, ngi_grid *g) {
  const ngi_token_table *t = &rt->tokens;
  if (!needs_work(g, t)) return NG_OK; /* another reader did it */
  size_t from = has_tail(g, t) ? first_after(t, g->w_abs) : t->len;
  if (!g->built || too_fragmented(g, t->len - from)) {
    mainix m;
    ng_status st = main_build(rt, g, t, &m);
    if (st == NG_OK) {
      main_free(rt, &g->m);
      side_free(rt, g);
      g->pend_id = 0;
      g->m = m;
      g->w_abs = m.w_main;
      g->built = true;
      return NG_OK;
    }
    if (!g->built) return st;
  }
  for (size_t i = from; i < t->len; i++) {
    const ng_token *tok = &t->recs[i];
    uint32_t id = NG_ID_LOCAL(tok->id);
    if (id == 0) continue;
    if (side_reserve(rt, g) != NG_OK) return NG_ENOMEM;
    uint16_t u[3];
    tok_u(tok, g->space, u);
    side_put(g, id, u);
    g->w_abs = id;
  }
  g->w_abs = t->next_id ? t->next_id - 1 : 0;
  return NG_OK;
}

/* needs: the runtime's read lock. guarantees: on NG_OK g is complete and its
 * qlock is held for reading (release with pthread_rwlock_unlock).
 * fails: NG_ENOMEM (no lock held). */
static ng_status acquire(ng_runtime *rt, ngi_grid *g) {
  pthread_rwlock_rdlock(&g->qlock);
  if (!needs_work(g, &rt->tokens)) return NG_OK;
  pthread_rwlock_unlock(&g->qlock);
  pthread_rwlock_wrlock(&g->qlock);
  ng_status st = maintain(rt, g);
  pthread_rwlock_unlock(&g->qlock);
  if (st != NG_OK) return st;
  /* No writer can run while we hold the runtime's read lock, and other
   * readers only ever complete the index further: it is still complete. */
  pthread_rwlock_rdlock(&g->qlock);
  return NG_OK;
}

/* ---- queries ------------------------------------------------------------ */

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
  double blo[3], bhi[3]; /* Q_BOX: the box */
  float lo[3], hi[3];    /* Q_BOX, closed */
  uint32_t exclude;      /* id left out (neighbors), 0 = none */
  size_t k;              /* keep only the best k (a max-heap in out); 0 = keep all */
  bool side_each_cell;   /* probe the side table per visited cell (else all scanned once) */
  ng_hits *out;
} query;

static int hit_cmp(const void *pa, const void *pb) {
  const ng_hit *a = pa, *b = pb;
  if (a->distance < b->distance) return -1;
  if (a->distance > b->distance) return 1;
  return (a->id > b->id) - (a->id < b->id);
}

static inline bool hit_less(const ng_hit *a, const ng_hit *b) {
  return a->distance < b->distance || (a->distance == b->distance && a->id < b->id);
}

static inline void hit_swap(ng_hit *a, ng_hit *b) {
  ng_hit t = *a;
  *a = *b;
  *b = t;
}

static void heap_down(ng_hit *a, size_t n, size_t i);

/* Sort hits by (distance, id) with the comparison inlined: quicksort with a
 * median-of-three pivot, insertion sort for short runs, heapsort once the
 * recursion gets suspiciously deep (so never quadratic). */
static void sort_hits(ng_hit *a, size_t n, unsigned depth) {
  while (n > 16) {
    if (depth-- == 0) {
      for (size_t i = n / 2; i-- > 0;)
        heap_down(a, n, i);
      for (size_t e = n; e-- > 1;) {
        hit_swap(&a[0], &a[e]);
        heap_down(a, e, 0);
      }
      return;
    }
    size_t mid = n / 2;
    if (hit_less(&a[mid], &a[0])) hit_swap(&a[mid], &a[0]);
    if (hit_less(&a[n - 1], &a[mid])) {
      hit_swap(&a[n - 1], &a[mid]);
      if (hit_less(&a[mid], &a[0])) hit_swap(&a[mid], &a[0]);
    }
    ng_hit p = a[mid];
    size_t i = 0, j = n - 1;
    for (;;) {
      do
        i++;
      while (hit_less(&a[i], &p));
      do
        j--;
      while (hit_less(&p, &a[j]));
      if (i >= j) break;
      hit_swap(&a[i], &a[j]);
    }
    /* a[0..j] <= p <= a[j+1..n): recurse into the smaller part. */
    if (j + 1 < n - j - 1) {
      sort_hits(a, j + 1, depth);
      a += j + 1;
      n -= j + 1;
    } else {
      sort_hits(a + j + 1, n - j - 1, depth);
      n = j + 1;
    }
  }
  for (size_t i = 1; i < n; i++) {
    ng_hit x = a[i];
    size_t k = i;
    for (; k > 0 && hit_less(&x, &a[k - 1]); k--)
      a[k] = a[k - 1];
    a[k] = x;
  }
}

static void sort_truncate(ng_hits *h, size_t limit) {
  if (h->count > 1) sort_hits(h->items, h->count, 64);
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

/* Test one point (biased coordinates) against the query and keep it if it
 * qualifies. Distances are those of the reference: decoded floats, double
 * arithmetic; the squared-distance pre-checks only skip sure misses. */
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
    double top = (double)q->out->items[0].distance * (double)g->scale + 1.0;
    if (r2 > top * top) return NG_OK;
  }
  float v[3] = {decode_u(g, ux), decode_u(g, uy), decode_u(g, uz)};
  if (q->kind == Q_BOX) {
    for (int a = 0; a < 3; a++)
      if (v[a] < q->lo[a] || v[a] > q->hi[a]) return NG_OK;
  }
  double ex = (double)v[0] - q->c[0], ey = (double)v[1] - q->c[1], ez = (double)v[2] - q->c[2];
  double d2 = ex * ex + ey * ey + ez * ez;
  double d = sqrt(d2);
  if (q->kind == Q_SPHERE && !(d <= q->radius)) return NG_OK;
  return push_hit(q, id, to_float(d));
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
    uint32_t id = (uint32_t)(v & ID_MASK);
    if (m->nstale && stale_get(m, id)) continue;
    uint32_t off[3];
    unpack(v, off);
    ng_status st = consider(q, id, base[0] + off[0], base[1] + off[1], base[2] + off[2]);
    if (st != NG_OK) return st;
  }
  return NG_OK;
}

/* True if no point of the biased box [ulo, uhi] can be kept by q. */
static bool box_out(const query *q, const uint32_t ulo[3], const uint32_t uhi[3], double *dist) {
  const ngi_grid *g = q->g;
  double d2 = 0.0;
  for (int a = 0; a < 3; a++) {
    double lo = (double)decode_u(g, ulo[a]), hi = (double)decode_u(g, uhi[a]);
    if (q->kind == Q_BOX && (hi < (double)q->lo[a] || lo > (double)q->hi[a])) return true;
    double gap = q->c[a] < lo ? lo - q->c[a] : q->c[a] > hi ? q->c[a] - hi : 0.0;
    d2 += gap * gap;
  }
  double d = sqrt(d2);
  *dist = d;
  if (q->kind == Q_SPHERE) return !(d <= q->radius);
  if (q->kind == Q_ALL && q->k && q->out->count >= q->k)
    return to_float(d) > q->out->items[0].distance;
  return false;
}

/* A node of a crowded cell's implicit octree: the entries [b, e) whose Morton
 * codes share their top 3*d bits; olo its lowest offsets. Children are pruned
 * by their distance first, visited nearest first, and only then located by
 * binary search (a pruned child costs no memory access). */
static ng_status visit_node(query *q, const uint32_t base[3], unsigned d, uint64_t prefix,
                            const uint32_t olo[3], size_t b, size_t e) {
  const mainix *m = &q->g->m;
  if (e - b <= LEAF || d >= 13) return scan_entries(q, base, b, e);
  unsigned rest = 12 - d; /* levels below a child */
  struct {
    double d;
    unsigned c;
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
    double dist;
    if (empty || box_out(q, ulo, uhi, &dist)) continue;
    unsigned k = nk++;
    for (; k > 0 && kid[k - 1].d > dist; k--) /* nearest first */
      kid[k] = kid[k - 1];
    kid[k].d = dist;
    kid[k].c = c;
  }
  for (unsigned i = 0; i < nk; i++) {
    unsigned c = kid[i].c;
    if (i > 0 && q->kind == Q_ALL && q->k && q->out->count >= q->k &&
        to_float(kid[i].d) > q->out->items[0].distance)
      break; /* the rest are no nearer */
    uint64_t key = ((prefix << 3 | c) << (3 * rest)) << 24;
    size_t cb = lower_bound(m->ent, b, e, key);
    size_t ce = c == 7 ? e : lower_bound(m->ent, cb, e, key + ((uint64_t)1 << (3 * rest + 24)));
    if (cb == ce) continue;
    uint32_t clo[3];
    for (int a = 0; a < 3; a++)
      clo[a] = olo[a] + (((c >> (2 - a)) & 1u) ? w : 0u);
    ng_status st = visit_node(q, base, d + 1, prefix << 3 | c, clo, cb, ce);
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
    ng_status st = e - b <= LEAF ? scan_entries(q, base, b, e)
                                 : visit_node(q, base, 13 - m->levels, 0, zero, b, e);
    if (st != NG_OK) return st;
  }
  if (q->side_each_cell) {
    for (uint32_t j = g->side_heads[idx]; j != SIDE_NONE; j = g->side[j].next) {
      const side_ent *e = &g->side[j];
      ng_status st = consider(q, e->id, e->u[0], e->u[1], e->u[2]);
      if (st != NG_OK) return st;
    }
  }
  return NG_OK;
}

/* Decoded extent of box cell k on axis a; the edge cells reach to infinity
 * (they hold everything beyond the box). */
static void cell_extent(const ngi_grid *g, int a, uint32_t k, double *lo, double *hi) {
  const mainix *m = &g->m;
  uint32_t u0 = (m->c0[a] + k) << m->shift[a];
  uint32_t u1 = u0 + (1u << m->shift[a]) - 1u;
  *lo = k == 0 ? -INFINITY : (double)decode_u(g, u0);
  *hi = k + 1 >= m->nc[a] ? INFINITY : (double)decode_u(g, u1 > 65535 ? 65535 : u1);
}

/* Gap along axis a between the centre and cell k (0 inside). Uses the
 * rounding of consider(), so it never exceeds the gap of a point of the cell. */
static double axis_gap(const query *q, int a, uint32_t k) {
  double lo, hi;
  cell_extent(q->g, a, k, &lo, &hi);
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
  *clo = axis_cell(&g->m, axis, ua);
  *chi = axis_cell(&g->m, axis, ub);
  return true;
}

/* Cells within the query's radius (plus a one-raw-unit margin that covers
 * decoding rounding; the exact test is in consider). */
static ng_status run_sphere(query *q) {
  const ngi_grid *g = q->g;
  double s = (double)g->scale;
  uint32_t clo[3], chi[3];
  for (int a = 0; a < 3; a++) {
    double cr = q->c[a] * s + BIAS, rr = q->radius * s;
    if (!to_cells(g, a, cr - rr - 1.0, cr + rr + 1.0, &clo[a], &chi[a])) return NG_OK;
  }
  return visit_region(q, clo, chi);
}

static ng_status run_box(query *q) {
  const ngi_grid *g = q->g;
  double s = (double)g->scale;
  uint32_t clo[3], chi[3];
  for (int a = 0; a < 3; a++)
    if (!to_cells(g, a, (double)q->lo[a] * s + BIAS - 1.0, (double)q->hi[a] * s + BIAS + 1.0,
                  &clo[a], &chi[a]))
      return NG_OK;
  return visit_region(q, clo, chi);
}

/* The smallest distance from the centre to any point in a cell outside
 * cc-r..cc+r on some axis; INFINITY when those cells are the whole box. */
static double outside_bound(const query *q, const uint32_t cc[3], uint32_t r) {
  const mainix *m = &q->g->m;
  double best = INFINITY;
  for (int a = 0; a < 3; a++) {
    double lo, hi;
    if (cc[a] > r) {
      cell_extent(q->g, a, cc[a] - r, &lo, &hi);
      double gap = q->c[a] - lo; /* a point left of the cube is at most at lo */
      best = gap < best ? gap : best;
    }
    if (cc[a] + r + 1 < m->nc[a]) {
      cell_extent(q->g, a, cc[a] + r, &lo, &hi);
      double gap = hi - q->c[a];
      best = gap < best ? gap : best;
    }
  }
  return best < 0.0 ? 0.0 : best;
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
  /* Rings reach every cell of the box at most once, so probing side entries
   * per cell is never worse than scanning them when there are many. */
  ng_status st = plan_side(q, g->side_count > 64 ? 0 : UINT64_MAX);
  if (st != NG_OK) return st;
  if (m->n == 0 && !q->side_each_cell) return NG_OK;
  uint32_t cc[3];
  for (int a = 0; a < 3; a++) {
    double cr = floor(q->c[a] * (double)g->scale) + BIAS;
    uint32_t u = cr < 0.0 ? 0u : cr > 65535.0 ? 65535u : (uint32_t)cr;
    cc[a] = axis_cell(m, a, u);
  }
  ring_cell buf[RING_BUF];
  for (uint32_t r = 0;; r++) {
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
      if (h->count >= q->k && to_float(buf[i].d) > h->items[0].distance) break;
      st = visit_cell(q, buf[i].x, buf[i].y, buf[i].z);
      if (st != NG_OK) return st;
    }
    double bound = outside_bound(q, cc, r);
    if (isinf(bound)) return NG_OK; /* every cell searched */
    if (h->count == q->k && h->items[0].distance < to_float(bound)) return NG_OK;
  }
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

/* Run q on q->g (caller holds the runtime's read lock): complete the index,
 * run, sort; failures leave no hits. */
static ng_status run_sorted(query *q, ng_status (*run)(query *)) {
  ngi_grid *g = q->rt->grids[q->g->space];
  double sc = (double)g->scale;
  q->rawlim2 = INFINITY;
  if (q->kind == Q_SPHERE) {
    double rr = q->radius * sc + 1.0;
    q->rawlim2 = rr * rr;
  }
  for (int a = 0; a < 3; a++) {
    q->cu[a] = q->c[a] * sc + BIAS;
    q->blo[a] = (double)q->lo[a] * sc + BIAS - 1.0;
    q->bhi[a] = (double)q->hi[a] * sc + BIAS + 1.0;
  }
  ng_status st = acquire(q->rt, g);
  if (st == NG_OK) {
    st = run(q);
    pthread_rwlock_unlock(&g->qlock);
  }
  if (st == NG_OK)
    sort_truncate(q->out, q->k);
  else
    q->out->count = 0;
  return st;
}

static ng_status finish(ng_runtime *rt, const char *fn, ng_status st) {
  if (st == NG_ENOMEM) return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
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
      q.c[a] = (double)ng_coord_decode(space, t->coords[space][a]);
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

/* ---- info --------------------------------------------------------------- */

typedef struct info_acc {
  const ngi_grid *g;
  uint64_t *keys; /* open-addressing set of configured-cell keys + 1; 0 = empty */
  size_t cap, cells, count;
  int32_t lo[3], hi[3];
} info_acc;

static void info_add(info_acc *acc, uint32_t ux, uint32_t uy, uint32_t uz) {
  const int32_t cs = acc->g->cs;
  int32_t r[3] = {(int32_t)ux - BIAS, (int32_t)uy - BIAS, (int32_t)uz - BIAS};
  uint64_t key = 1;
  for (int a = 0; a < 3; a++) {
    acc->lo[a] = r[a] < acc->lo[a] ? r[a] : acc->lo[a];
    acc->hi[a] = r[a] > acc->hi[a] ? r[a] : acc->hi[a];
    key += (uint64_t)(uint16_t)(int16_t)floor_div(r[a], cs) << (16 * a + 1);
  }
  acc->count++;
  size_t mask = acc->cap - 1;
  size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
  while (acc->keys[i] != 0 && acc->keys[i] != key)
    i = (i + 1) & mask;
  if (acc->keys[i] == 0) {
    acc->keys[i] = key;
    acc->cells++;
  }
}

/* needs: g complete, its qlock held. guarantees: the count, the exact bounds
 * and the number of non-empty cells of the configured size, from one pass over
 * the index. fails: NG_ENOMEM (the temporary cell set). */
static ng_status info_collect(ng_runtime *rt, const ngi_grid *g, ng_space_info *out) {
  const mainix *m = &g->m;
  const ngi_token_table *t = &rt->tokens;
  /* An index not built yet answers from the token table (and stays unbuilt). */
  size_t total = g->built ? m->n - m->nstale + g->side_count : t->live;
  out->count = total;
  if (total == 0) return NG_OK;
  /* Small indexes count their cells in a buffer on the stack (no allocation). */
  uint64_t local[512];
  info_acc acc = {.g = g, .cap = 16};
  while (acc.cap < total * 2)
    acc.cap *= 2;
  acc.keys = acc.cap <= 512 ? local : ngi_alloc_array(rt, acc.cap, sizeof(uint64_t));
  if (!acc.keys) return NG_ENOMEM;
  memset(acc.keys, 0, acc.cap * sizeof(uint64_t));
  for (int a = 0; a < 3; a++) {
    acc.lo[a] = INT32_MAX;
    acc.hi[a] = INT32_MIN;
  }
  if (!g->built) {
    for (size_t i = 0; i < t->len; i++) {
      const ng_token *tok = &t->recs[i];
      if (NG_ID_LOCAL(tok->id) == 0) continue;
      uint16_t u[3];
      tok_u(tok, g->space, u);
      info_add(&acc, u[0], u[1], u[2]);
    }
  } else if (m->n) {
    for (uint32_t x = 0; x < m->nc[0]; x++)
      for (uint32_t y = 0; y < m->nc[1]; y++)
        for (uint32_t z = 0; z < m->nc[2]; z++) {
          uint32_t idx = (x * m->nc[1] + y) * m->nc[2] + z;
          uint32_t bx = (m->c0[0] + x) << m->shift[0], by = (m->c0[1] + y) << m->shift[1],
                   bz = (m->c0[2] + z) << m->shift[2];
          for (uint32_t i = m->starts[idx]; i < m->starts[idx + 1]; i++) {
            uint64_t e = m->ent[i];
            if (m->nstale && stale_get(m, (uint32_t)(e & ID_MASK))) continue;
            uint32_t off[3];
            unpack(e, off);
            info_add(&acc, bx + off[0], by + off[1], bz + off[2]);
          }
        }
  }
  for (size_t i = 0; g->built && i < g->side_used; i++)
    if (g->side[i].id) info_add(&acc, g->side[i].u[0], g->side[i].u[1], g->side[i].u[2]);
  if (acc.keys != local) ngi_free(rt, acc.keys, acc.cap * sizeof(uint64_t));
  out->cells = acc.cells;
  for (int a = 0; a < 3; a++) {
    out->lo[a] = decode_u(g, (uint32_t)(acc.lo[a] + BIAS));
    out->hi[a] = decode_u(g, (uint32_t)(acc.hi[a] + BIAS));
  }
  return NG_OK;
}

ng_status ng_grid_info(ng_runtime *rt, int space, ng_space_info *out) {
  static const char fn[] = "ng_grid_info";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!out) return ngi_fail(rt, NG_EINVAL, "%s: out must not be NULL", fn);
  if (space < 0 || space >= NG_SPACES)
    return ngi_fail(rt, NG_EINVAL, "%s: space must be 0..7, got %d", fn, space);
  memset(out, 0, sizeof *out);
  ng_status st = NG_OK;
  ngi_read_lock(rt);
  ngi_grid *g = rt->grids[space];
  if (g) {
    out->cell_size = g->cell_size;
    /* An unbuilt index is not built for this: info reads the table. */
    pthread_rwlock_rdlock(&g->qlock);
    if (g->built) {
      pthread_rwlock_unlock(&g->qlock);
      st = acquire(rt, g); /* absorbs new tokens first */
      if (st == NG_OK) {
        st = info_collect(rt, g, out);
        pthread_rwlock_unlock(&g->qlock);
      }
    } else {
      st = info_collect(rt, g, out);
      pthread_rwlock_unlock(&g->qlock);
    }
  }
  ngi_read_unlock(rt);
  if (st != NG_OK) {
    float cs = out->cell_size;
    memset(out, 0, sizeof *out);
    out->cell_size = cs;
  }
  return finish(rt, fn, st);
}

void ng_hits_free(ng_runtime *rt, ng_hits *hits) {
  if (!rt || !hits) return;
  ngi_free(rt, hits->items, hits->capacity * sizeof(ng_hit));
  hits->items = NULL;
  hits->count = 0;
  hits->capacity = 0;
}

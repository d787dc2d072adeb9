/* The spatial index of one space: its bulk build, side table, writes and lazy maintenance. */
#include "grid_index.h"
#include "introsort.h"

#include <assert.h>
#include <string.h>

#define MAX_SHIFT 13
#define CELL_FILL 12 /* target points per cell */

/* ---- small helpers ------------------------------------------------------ */

static uint32_t cell_index(const mainix *m, const uint16_t u[3]) {
  return (ngi_axis_cell(m, 0, u[0]) * m->nc[1] + ngi_axis_cell(m, 1, u[1])) * m->nc[2] +
         ngi_axis_cell(m, 2, u[2]);
}

static void bias(const int16_t xyz[3], uint16_t u[3]) {
  for (int a = 0; a < 3; a++)
    u[a] = (uint16_t)((int32_t)xyz[a] + NGI_BIAS);
}

/* ngi_spread3 (grid_index.h), generated bit by bit: each level adds bit k's
 * spread value to the second half of the level below. */
#define SP1(n) (n), (n) + 1u
#define SP2(n) SP1(n), SP1((n) + 8u)
#define SP3(n) SP2(n), SP2((n) + 64u)
#define SP4(n) SP3(n), SP3((n) + 512u)
#define SP5(n) SP4(n), SP4((n) + 4096u)
#define SP6(n) SP5(n), SP5((n) + 32768u)
#define SP7(n) SP6(n), SP6((n) + 262144u)
#define SP8(n) SP7(n), SP7((n) + 2097152u)
const uint32_t ngi_spread3[256] = {SP8(0u)};

/* Spread the low 13 bits of v to every third bit (Morton interleaving). */
static uint64_t split3(uint32_t v) {
  return ngi_spread3[v & 0xFFu] | (uint64_t)ngi_spread3[(v >> 8) & 0x1Fu] << 24;
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

/* Side entries are hashed by id (a crowded cell must not make one long probe
 * run); queries read them per cell from the cell lists. */
static size_t side_home(const ngi_grid *g, uint32_t id) {
  return (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull >> (64 - g->side_bits));
}

static void main_free(ng_runtime *rt, mainix *m) {
  if (m->starts) ngi_free(rt, m->starts, (m->ncell + 1) * sizeof(uint32_t));
  if (m->ent) ngi_free(rt, m->ent, m->n * sizeof(uint64_t));
  if (m->stale) ngi_free(rt, m->stale, m->stale_words * sizeof(uint64_t));
  if (m->sub) ngi_free(rt, m->sub, m->nsub * sizeof(uint32_t));
  memset(m, 0, sizeof *m);
}

/* An empty main index: one cell covering everything, no storage. */
static void main_empty(mainix *m, ng_id w_main) {
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
  g->side_free_at = NGI_SIDE_NONE;
  g->side_bits = 0;
}

/* Whether the record at some position is a live token placed in space sp. */
static inline bool placed_in(const ngi_token_table *t, const ng_token *tok, int sp) {
  uint32_t local = NG_ID_LOCAL(tok->id);
  return local != 0 && (ngi_placed(t, local) >> sp & 1u);
}

/* ---- construction ------------------------------------------------------- */

/* needs: cell_size finite and > 0, space 0..7.
 * guarantees: an index in *out that will be built from the token table at the
 * first query. fails: NG_EINVAL, NG_ENOMEM. */
ng_status ngi_grid_new(ng_runtime *rt, int space, float cell_size, const ngi_unit *unit,
                       ngi_grid **out) {
  if (!out) return ngi_fail(rt, NG_EINVAL, "grid: out must not be NULL");
  if (ng_space_scale(space) <= 0.0f) return ngi_fail(rt, NG_EINVAL, "grid: bad space %d", space);
  if (!ngi_finite(cell_size) || cell_size <= 0.0f)
    return ngi_fail(rt, NG_EINVAL, "grid: cell size must be finite and > 0, got %g",
                    (double)cell_size);
  ngi_grid *g = ngi_alloc(rt, sizeof *g);
  if (!g) return ngi_fail(rt, NG_ENOMEM, "grid: out of memory");
  memset(g, 0, sizeof *g);
  g->side_free_at = NGI_SIDE_NONE;
  if (pthread_rwlock_init(&g->qlock, NULL) != 0) {
    ngi_free(rt, g, sizeof *g);
    return ngi_fail(rt, NG_ENOMEM, "grid: cannot create the lock");
  }
  g->space = space;
  g->cell_size = cell_size;
  g->unit = *unit;
  g->rpu = unit->base / unit->scale;
  /* Rounded to whole raw units; one cell of 65536 already spans the whole raw range. */
  double cs = floor((double)cell_size * g->rpu + 0.5);
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
  ng_id w = rt->tokens.ids.last;
  main_empty(&g->m, w);
  g->w_abs = w;
  g->built = true;
}

void ngi_grid_reset(ng_runtime *rt, ngi_grid *g) {
  if (!g) return;
  main_free(rt, &g->m);
  side_free(rt, g);
  main_empty(&g->m, 0);
  g->w_abs = 0;
  g->built = false;
}

void ngi_grid_destroy(ng_runtime *rt, ngi_grid *g) {
  if (!g) return;
  main_free(rt, &g->m);
  side_free(rt, g);
  pthread_rwlock_destroy(&g->qlock);
  ngi_free(rt, g, sizeof *g);
}

/* Cell entries ascending (the Morton order of a crowded cell). */
#define U64_LESS(x, y) (*(x) < *(y))
NGI_DEFINE_INTROSORT(sort_u64, uint64_t, U64_LESS)

#define FILL_SAMPLE 1024 /* points sampled to estimate how full cells are */

/* Cells along each axis for cell widths 2^sh over the box lo..hi. */
static size_t box_cells(const uint32_t lo[3], const uint32_t hi[3], const unsigned sh[3]) {
  size_t cells = 1;
  for (int a = 0; a < 3; a++)
    cells *= (hi[a] >> sh[a]) - (lo[a] >> sh[a]) + 1;
  return cells;
}

/* How many points the cell of a typical point holds with cell widths 2^sh,
 * estimated from k sampled points: n times the chance that two sampled
 * points share a cell. sample[0..k) is scratch. */
static double typical_fill(const ngi_token_table *t, int sp, const uint32_t lo[3],
                           const uint32_t hi[3], const unsigned sh[3], size_t n, uint64_t *sample,
                           size_t k) {
  uint32_t nc1 = (hi[1] >> sh[1]) - (lo[1] >> sh[1]) + 1;
  uint32_t nc2 = (hi[2] >> sh[2]) - (lo[2] >> sh[2]) + 1;
  size_t got = 0;
  for (size_t j = 0; j < k; j++) {
    size_t i = j * t->len / k;
    while (i < t->len && !placed_in(t, ngi_tok_at(t, i), sp))
      i++;
    if (i == t->len) break;
    uint16_t u[3];
    ngi_tok_u(ngi_tok_at(t, i), sp, u);
    uint64_t c[3];
    for (int a = 0; a < 3; a++)
      c[a] = (uint64_t)((u[a] >> sh[a]) - (lo[a] >> sh[a]));
    sample[got++] = (c[0] * nc1 + c[1]) * nc2 + c[2];
  }
  if (got < 2) return 1.0;
  sort_u64(sample, got);
  double pairs = 0;
  for (size_t i = 0, j; i < got; i = j) {
    for (j = i + 1; j < got && sample[j] == sample[i]; j++) {
    }
    pairs += (double)(j - i) * (double)(j - i - 1);
  }
  return 1.0 + (double)(n - 1) * pairs / ((double)got * (double)(got - 1));
}

/* Cells sized for the average density hold far more than CELL_FILL points
 * where clustered points are (a Gaussian blob puts thousands into a few
 * cells, and every query and move in it then searches them). Narrow the
 * widest cells while a typical point's cell holds more than 2 x CELL_FILL,
 * keeping the directory within n/4 cells (a byte a token). */
static void refine_for_clusters(const ngi_token_table *t, int sp, const uint32_t lo[3],
                                const uint32_t hi[3], unsigned sh[3], size_t n) {
  if (n < 8 * FILL_SAMPLE) return; /* small sets: the estimate costs more than it saves */
  uint64_t sample[FILL_SAMPLE];
  while (typical_fill(t, sp, lo, hi, sh, n, sample, FILL_SAMPLE) > 2.0 * CELL_FILL) {
    int a = 0;
    for (int b = 1; b < 3; b++)
      if (sh[b] > sh[a]) a = b;
    if (sh[a] == 0) return;
    sh[a]--;
    if (box_cells(lo, hi, sh) > n / 4) {
      sh[a]++;
      return;
    }
  }
}

/* needs: m's cells grouped and crowded cells sorted, at least one of them.
 * guarantees: m->sub filled (ngi_sub_dir). fails: NG_ENOMEM with m unchanged. */
static ng_status build_subdirs(ng_runtime *rt, mainix *m) {
  size_t nsub = ngi_sub_len(m);
  m->sub = ngi_alloc_array(rt, nsub, sizeof(uint32_t));
  if (!m->sub) return NG_ENOMEM;
  m->nsub = nsub;
  for (size_t c = 0; c < m->ncell; c++) {
    size_t lo = m->starts[c], cnt = m->starts[c + 1] - lo;
    if (cnt <= NGI_LEAF) continue;
    unsigned d = ngi_sub_depth(m, cnt);
    uint32_t parts = (uint32_t)1 << (3 * d), *sub = ngi_sub_dir(m, c);
    assert(sub + parts < ngi_sub_dir(m, c + 1)); /* the next cell's place (ngi_sub_dir) */
    size_t i = 0;
    for (uint32_t p = 0; p <= parts; p++) {
      while (i < cnt && ngi_sub_cell(m, m->ent[lo + i], d) < p)
        i++;
      sub[p] = (uint32_t)i;
    }
  }
  return NG_OK;
}

/* needs: a lock that keeps `t` stable (the write lock, or the read lock plus
 * the grid's qlock for writing). guarantees: *out is a main index of every
 * live token of t placed in g's space; the other live ones have their stale
 * bit set (nabsent). fails: NG_ENOMEM with *out untouched and nothing leaked. */
static ng_status main_build(ng_runtime *rt, const ngi_grid *g, const ngi_token_table *t,
                            mainix *out) {
  const int sp = g->space;
  size_t n = t->nplaced[sp];
  mainix m;
  main_empty(&m, t->ids.last);
  if (n == 0) {
    *out = m;
    return NG_OK;
  }
  /* Three strided passes over the records (bounds, count, scatter) and no
   * temporary: a temporary copy would be faster to sort from, but it would
   * double the peak memory of a build. */
  uint32_t lo[3] = {65535, 65535, 65535}, hi[3] = {0, 0, 0};
  for (size_t i = 0, run_n; i < t->len; i += run_n) {
    const ng_token *run = ngi_tok_span(t, i, &run_n);
    for (size_t j = 0; j < run_n; j++) {
      const ng_token *tok = &run[j];
      if (!placed_in(t, tok, sp)) continue;
      uint16_t u[3];
      ngi_tok_u(tok, sp, u);
      for (int a = 0; a < 3; a++) {
        lo[a] = u[a] < lo[a] ? u[a] : lo[a];
        hi[a] = u[a] > hi[a] ? u[a] : hi[a];
      }
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
  refine_for_clusters(t, sp, lo, hi, sh, n);
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
  m.stale_words = (size_t)(t->ids.fresh >> 6) + 1; /* every slot in use */
  m.starts = ngi_alloc_array(rt, m.ncell + 1, sizeof(uint32_t));
  m.ent = ngi_alloc_array(rt, n, sizeof(uint64_t));
  m.stale = ngi_alloc_array(rt, m.stale_words, sizeof(uint64_t));
  if (!m.starts || !m.ent || !m.stale) {
    if (m.starts) ngi_free(rt, m.starts, (m.ncell + 1) * sizeof(uint32_t));
    if (m.ent) ngi_free(rt, m.ent, n * sizeof(uint64_t));
    if (m.stale) ngi_free(rt, m.stale, m.stale_words * sizeof(uint64_t));
    return NG_ENOMEM;
  }
  /* Filled in bulk below: huge pages (fewer page faults, and fewer page-table entries for a
   * background save's fork to copy). */
  ngi_advise_bulk(m.starts, (m.ncell + 1) * sizeof(uint32_t));
  ngi_advise_bulk(m.ent, n * sizeof(uint64_t));
  memset(m.starts, 0, (m.ncell + 1) * sizeof(uint32_t));
  memset(m.stale, 0, m.stale_words * sizeof(uint64_t));
  /* Counting sort by cell; the table is in ascending id order, so each cell
   * lists its ids in ascending order (deterministic answers). */
  for (size_t i = 0, run_n; i < t->len; i += run_n) {
    const ng_token *run = ngi_tok_span(t, i, &run_n);
    for (size_t j = 0; j < run_n; j++) {
      const ng_token *tok = &run[j];
      if (!placed_in(t, tok, sp)) continue;
      uint16_t u[3];
      ngi_tok_u(tok, sp, u);
      m.starts[cell_index(&m, u) + 1]++;
    }
  }
  for (size_t c = 1; c <= m.ncell; c++)
    m.starts[c] += m.starts[c - 1];
  for (size_t i = 0, run_n; i < t->len; i += run_n) {
    const ng_token *run = ngi_tok_span(t, i, &run_n);
    for (size_t j = 0; j < run_n; j++) {
      const ng_token *tok = &run[j];
      uint32_t id = NG_ID_LOCAL(tok->id);
      if (id == 0) continue;
      if (!(ngi_placed(t, id) >> sp & 1u)) { /* live, no entry: never "visible" */
        m.stale[id >> 6] |= (uint64_t)1 << (id & 63);
        m.nabsent++;
        continue;
      }
      uint16_t u[3];
      ngi_tok_u(tok, sp, u);
      m.ent[m.starts[cell_index(&m, u)]++] = pack(&m, id, u);
    }
  }
  for (size_t c = m.ncell; c > 0; c--)
    m.starts[c] = m.starts[c - 1];
  m.starts[0] = 0;
  bool crowded = false;
  for (size_t c = 0; c < m.ncell; c++) {
    size_t cnt = m.starts[c + 1] - m.starts[c];
    if (cnt <= NGI_LEAF) continue;
    sort_u64(m.ent + m.starts[c], cnt);
    crowded = true;
  }
  if (crowded && build_subdirs(rt, &m) != NG_OK) {
    main_free(rt, &m);
    return NG_ENOMEM;
  }
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
      h[c] = NGI_SIDE_NONE;
    g->side_heads = h;
    g->side_heads_n = g->m.ncell;
  }
  if (g->side_free_at == NGI_SIDE_NONE && g->side_used == g->side_slab) {
    size_t cap = g->side_slab ? g->side_slab * 2 : 64;
    if (cap >= NGI_SIDE_NONE) return NG_ENOMEM;
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
  if (g->side_free_at != NGI_SIDE_NONE) {
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
  e->prev = NGI_SIDE_NONE;
  e->next = g->side_heads[cell];
  if (e->next != NGI_SIDE_NONE) g->side[e->next].prev = at;
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
  if (e->prev != NGI_SIDE_NONE)
    g->side[e->prev].next = e->next;
  else
    g->side_heads[e->cell] = e->next;
  if (e->next != NGI_SIDE_NONE) g->side[e->next].prev = e->prev;
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

/* Index in m->ent of id's entry at u, in cell idx (u's), or SIZE_MAX. */
static size_t main_find(const mainix *m, uint32_t idx, uint32_t id, const uint16_t u[3]) {
  size_t lo = m->starts[idx], hi = m->starts[idx + 1];
  if (hi - lo > NGI_LEAF) { /* sorted: its sub-cell, then binary search */
    uint64_t want = pack(m, id, u);
    ngi_sub_range(m, idx, want, &lo, &hi);
    lo = ngi_lower_bound(m->ent, lo, hi, want);
    return lo < hi && m->ent[lo] == want ? lo : SIZE_MAX;
  }
  /* The main index holds one entry per token: the id alone finds it. */
  for (size_t i = lo; i < hi; i++)
    if ((uint32_t)(m->ent[i] & NGI_ID_MASK) == id) return i;
  return SIZE_MAX;
}

/* A move inside one cell of a crowded (sorted) cell shifts at most this many
 * other entries to keep the order (a 2 KB memmove); a longer shift -- a point
 * leaving a tight cluster jumps over all of it along the Z curve -- takes the
 * side table instead, so no write ever costs more than that. */
#define SHIFT_MAX 256

/* Rewrite main entry ent[at], in cell idx, to e. A crowded cell is kept
 * sorted by moving the entries between the old and the new place over by
 * one, if there are at most `cap` of them. Returns the entry's new index, or
 * SIZE_MAX (nothing changed) when the shift would be longer. */
static size_t place_in_cell(mainix *m, uint32_t idx, size_t at, uint64_t e, size_t cap) {
  size_t lo = m->starts[idx], hi = m->starts[idx + 1];
  uint64_t *ent = m->ent;
  if (hi - lo <= NGI_LEAF) {
    ent[at] = e;
    return at;
  }
  /* The new place: searched in e's sub-cell (the old entry is outside it,
   * or it is the entry's own sub-cell and the search skips over it). */
  size_t slo = lo, shi = hi;
  ngi_sub_range(m, idx, e, &slo, &shi);
  size_t to = at;
  if (at > lo && ent[at - 1] > e) {
    size_t b = slo < at ? slo : at;
    to = ngi_lower_bound(ent, b, at, e);
  } else if (at + 1 < hi && ent[at + 1] < e) {
    size_t b = slo > at + 1 ? slo : at + 1, t = shi > b ? shi : b;
    to = ngi_lower_bound(ent, b, t, e) - 1;
  }
  if ((to < at ? at - to : to - at) > cap) return SIZE_MAX;
  unsigned d = ngi_sub_depth(m, hi - lo);
  uint32_t pa = ngi_sub_cell(m, ent[at], d), pe = ngi_sub_cell(m, e, d);
  if (to < at)
    memmove(&ent[to + 1], &ent[to], (at - to) * sizeof *ent);
  else if (to > at)
    memmove(&ent[at], &ent[at + 1], (to - at) * sizeof *ent);
  ent[to] = e;
  /* sub[q] counts the cell's entries in sub-cells below q. */
  uint32_t *sub = ngi_sub_dir(m, idx);
  for (uint32_t q = pa + 1; q <= pe; q++)
    sub[q]--;
  for (uint32_t q = pe + 1; q <= pa; q++)
    sub[q]++;
  return to;
}

static bool same_cell(const mainix *m, const uint16_t a[3], const uint16_t b[3]) {
  for (int k = 0; k < 3; k++)
    if ((a[k] >> m->shift[k]) != (b[k] >> m->shift[k])) return false;
  return true;
}

/* Whether token id's main entry is visible (so it sits where the table says):
 * it was live at the build and has not been hidden since. */
static bool main_visible(const mainix *m, ng_id id) {
  uint32_t local = NG_TOKEN_SLOT(id);
  return id <= m->w_main && m->stale && !((m->nstale | m->nabsent) && ngi_stale_get(m, local));
}

static void main_hide(mainix *m, ng_id id) {
  uint32_t local = NG_TOKEN_SLOT(id);
  m->stale[local >> 6] |= (uint64_t)1 << (local & 63);
  m->nstale++;
}

/* A move that stays inside one cell of the main index (the common small step
 * of a game loop) rewrites the token's main entry in place: no side entry, so
 * no rebuild and no extra work for queries. Needs: id's main entry visible,
 * so it is at uo (where the table says). Returns the entry's new index, or
 * SIZE_MAX (nothing changed) when un is in another cell or the shift would
 * be too long. */
static size_t move_within_cell(mainix *m, uint32_t id, const uint16_t uo[3], const uint16_t un[3]) {
  if (!same_cell(m, uo, un)) return SIZE_MAX;
  uint32_t idx = cell_index(m, uo);
  size_t at = main_find(m, idx, id, uo);
  return at == SIZE_MAX ? SIZE_MAX : place_in_cell(m, idx, at, pack(m, id, un), SHIFT_MAX);
}

/* needs: the write lock, and -- as tokens.c guarantees -- the token table
 * still holding id's position before the change being made.
 * guarantees: one occurrence of id at xyz gone. A main
 * entry that is not hidden is where the table says the token is (every move
 * hides it or moves it in place), so it is hidden when xyz is the table's
 * position; otherwise a side entry (id, xyz) is deleted. Absent occurrences
 * are ignored. Never fails or allocates. */
void ngi_grid_remove(ng_runtime *rt, ngi_grid *g, ng_id id, const int16_t xyz[3]) {
  if (!g || !xyz || id == 0 || !g->built || id > g->w_abs) return;
  mainix *m = &g->m;
  uint32_t local = NG_TOKEN_SLOT(id);
  uint16_t u[3];
  bias(xyz, u);
  if (main_visible(m, id)) {
    const ng_token *t = ngi_token_lookup(&rt->tokens, id);
    if (t && memcmp(t->coords[g->space], xyz, sizeof t->coords[g->space]) == 0) {
      main_hide(m, id);
      return;
    }
  }
  side_del(g, local, u);
}

/* needs: the write lock; `from` where g holds id: the position the token
 * table holds (the caller writes `to` into the table afterwards), or the
 * position an earlier move of this write gave it (a move back).
 * guarantees: the grid holds id at `to` instead of `from`, in one step:
 * within a cell the main entry is rewritten in place, otherwise the main
 * entry is hidden and a side entry added, or the side entry moved (which
 * reuses its slot: never allocates).
 * fails: NG_ENOMEM (only when a main entry leaves its cell); nothing changed.
 * So moving back what a successful move did never allocates: an in-place
 * rewrite is undone by the same shift in reverse (the other entries of the
 * sorted cell have not moved, so the entry's old rank is the same distance
 * away, within SHIFT_MAX), and every other move left id in a side entry,
 * which the move back moves again. */
ng_status ngi_grid_move(ng_runtime *rt, ngi_grid *g, ng_id id, const int16_t from[3],
                        const int16_t to[3]) {
  if (!g->built || id > g->w_abs) return NG_OK;
  mainix *m = &g->m;
  uint32_t local = NG_TOKEN_SLOT(id);
  uint16_t uo[3], un[3];
  bias(from, uo);
  bias(to, un);
  if (main_visible(m, id)) {
    if (move_within_cell(m, local, uo, un) != SIZE_MAX) return NG_OK;
    if (side_reserve(rt, g) != NG_OK) return ngi_fail(rt, NG_ENOMEM, "grid: out of memory");
    main_hide(m, id);
    side_put(g, local, un);
    return NG_OK;
  }
  if (side_del(g, local, uo)) {
    side_put(g, local, un);
    return NG_OK;
  }
  /* Not indexed at `from` (cannot happen while the table and the grid agree):
   * index it at `to` all the same, so queries see the table's truth. */
  if (side_reserve(rt, g) != NG_OK) return ngi_fail(rt, NG_ENOMEM, "grid: out of memory");
  side_put(g, local, un);
  return NG_OK;
}

/* needs: the write lock; id live and not placed in g's space until now.
 * guarantees: a token the index has absorbed gets a side entry at xyz (its
 * main entry, if it had one, was hidden when it left the space); one not
 * absorbed yet is read from the table, placement included, at the next
 * query. fails: NG_ENOMEM, nothing changed. */
ng_status ngi_grid_insert(ng_runtime *rt, ngi_grid *g, ng_id id, const int16_t xyz[3]) {
  if (!g->built || id > g->w_abs) return NG_OK;
  if (side_reserve(rt, g) != NG_OK) return ngi_fail(rt, NG_ENOMEM, "grid: out of memory");
  uint16_t u[3];
  bias(xyz, u);
  side_put(g, NG_TOKEN_SLOT(id), u);
  return NG_OK;
}

/* Test hook: whether g's main index keeps its invariants -- every crowded
 * cell strictly sorted (an implicit octree) and its sub-directory counting
 * exactly the entries below each sub-cell. Caller holds a lock. */
bool ngi_grid_consistent(const ngi_grid *g) {
  const mainix *m = &g->m;
  if (!g->built || !m->starts) return true;
  for (size_t c = 0; c < m->ncell; c++) {
    size_t lo = m->starts[c], cnt = m->starts[c + 1] - lo;
    if (cnt <= NGI_LEAF) continue;
    if (!m->sub) return false;
    for (size_t i = 1; i < cnt; i++)
      if (m->ent[lo + i - 1] >= m->ent[lo + i]) return false;
    unsigned d = ngi_sub_depth(m, cnt);
    const uint32_t *sub = ngi_sub_dir(m, c);
    size_t i = 0;
    for (uint32_t p = 0; p <= (uint32_t)1 << (3 * d); p++) {
      while (i < cnt && ngi_sub_cell(m, m->ent[lo + i], d) < p)
        i++;
      if (sub[p] != i) return false;
    }
  }
  return true;
}

/* ---- lazy maintenance --------------------------------------------------- */

static bool has_tail(const ngi_grid *g, const ngi_token_table *t) {
  /* The last slot is never a tombstone (ngi_tokens_tombstone trims them). */
  return t->len > 0 && ngi_tokens_id_at(t, t->len - 1) > g->w_abs;
}

static bool too_fragmented(const ngi_grid *g, size_t tail) {
  size_t n = g->m.n;
  return g->side_count + tail > n / 4 + 1024 || g->m.nstale > n / 2 + 1024;
}

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
  size_t from = has_tail(g, t) ? ngi_tokens_first_after(t, g->w_abs) : t->len;
  if (!g->built || too_fragmented(g, t->len - from)) {
    mainix m;
    ng_status st = main_build(rt, g, t, &m);
    if (st == NG_OK) {
      main_free(rt, &g->m);
      side_free(rt, g);
      g->m = m;
      g->w_abs = m.w_main;
      g->built = true;
      return NG_OK;
    }
    if (!g->built) return st;
  }
  for (size_t i = from; i < t->len; i++) {
    const ng_token *tok = ngi_tok_at(t, i);
    uint32_t local = NG_ID_LOCAL(tok->id);
    if (!placed_in(t, tok, g->space)) continue;
    if (side_reserve(rt, g) != NG_OK) return NG_ENOMEM;
    uint16_t u[3];
    ngi_tok_u(tok, g->space, u);
    side_put(g, local, u);
    g->w_abs = ngi_token_id_of(t, local);
  }
  g->w_abs = t->ids.last;
  return NG_OK;
}

/* needs: the runtime's read lock. guarantees: on NG_OK g is complete and its
 * qlock is held for reading (release with ngi_grid_release).
 * fails: NG_ENOMEM (no lock held). */
ng_status ngi_grid_acquire(ng_runtime *rt, ngi_grid *g) {
  ngi_grid_hold(g);
  if (!needs_work(g, &rt->tokens)) return NG_OK;
  ngi_grid_release(g);
  pthread_rwlock_wrlock(&g->qlock);
  ng_status st = maintain(rt, g);
  pthread_rwlock_unlock(&g->qlock);
  if (st != NG_OK) return st;
  /* No writer can run while we hold the runtime's read lock, and other
   * readers only ever complete the index further: it is still complete. */
  ngi_grid_hold(g);
  return NG_OK;
}

/* Start loading what a move of tok in g will read, one level a stage, each
 * stage called a few entries after the one before so that its loads have
 * arrived: the cell's directory entries (stage 0, which leaves the cell's
 * index in *cell for the later stages); the cell's entries, or for a crowded
 * cell the sub-directory entry (1); a crowded cell's entries of the sub-cell
 * (2). A small step stays in its cell and mostly in its sub-cell, so the new
 * position names what the move will search. A hint only: changes nothing. */
void ngi_grid_prefetch(const ngi_grid *g, const ng_token *tok, int stage, uint32_t *cell) {
  const mainix *m = &g->m;
  if (!g->built || !m->starts) return;
  if (stage == 0) {
    uint16_t u[3];
    ngi_tok_u(tok, g->space, u);
    uint32_t idx = cell_index(m, u);
    *cell = idx;
    NGI_PREFETCH(&m->starts[idx]);
    return;
  }
  uint32_t idx = *cell;
  size_t lo = m->starts[idx], hi = m->starts[idx + 1];
  if (hi - lo > NGI_LEAF) {
    uint16_t u[3];
    ngi_tok_u(tok, g->space, u);
    uint32_t p = ngi_sub_of(m, u, ngi_sub_depth(m, hi - lo));
    const uint32_t *sub = ngi_sub_dir(m, idx);
    if (stage == 1) {
      NGI_PREFETCH(&sub[p]);
      return;
    }
    hi = lo + sub[p + 1];
    lo += sub[p];
  } else if (stage == 2) {
    return;
  }
  /* About 30 entries (4 lines) at most, except in a sub-cell of a cell far
   * more crowded than the depth's estimate: no more than 6 lines of it. */
  if (hi - lo > 48) hi = lo + 48;
  for (size_t i = lo; i < hi; i += 8)
    NGI_PREFETCH(&m->ent[i]);
}

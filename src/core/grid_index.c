/* The spatial index of one space: its bulk build, side table, writes and lazy maintenance. */
#include "grid_index.h"
#include "introsort.h"

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

/* Spread the low 13 bits of x to every third bit (Morton interleaving). */
static uint64_t split3(uint32_t v) {
  uint64_t x = v & 0x1FFFu;
  x = (x | x << 16) & 0x1F0000FFull;
  x = (x | x << 8) & 0x100F00F00Full;
  x = (x | x << 4) & 0x10C30C30C3ull;
  x = (x | x << 2) & 0x1249249249ull;
  return x;
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
  g->side_free_at = NGI_SIDE_NONE;
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
  g->side_free_at = NGI_SIDE_NONE;
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

/* Cell entries ascending (the Morton order of a crowded cell). */
#define U64_LESS(x, y) (*(x) < *(y))
NGI_DEFINE_INTROSORT(sort_u64, uint64_t, U64_LESS)

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
  for (size_t i = 0, run_n; i < t->len; i += run_n) {
    const ng_token *run = ngi_tok_span(t, i, &run_n);
    for (size_t j = 0; j < run_n; j++) {
      const ng_token *tok = &run[j];
      if (NG_ID_LOCAL(tok->id) == 0) continue;
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
  for (size_t i = 0, run_n; i < t->len; i += run_n) {
    const ng_token *run = ngi_tok_span(t, i, &run_n);
    for (size_t j = 0; j < run_n; j++) {
      const ng_token *tok = &run[j];
      if (NG_ID_LOCAL(tok->id) == 0) continue;
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
      uint16_t u[3];
      ngi_tok_u(tok, sp, u);
      m.ent[m.starts[cell_index(&m, u)]++] = pack(&m, id, u);
    }
  }
  for (size_t c = m.ncell; c > 0; c--)
    m.starts[c] = m.starts[c - 1];
  m.starts[0] = 0;
  for (size_t c = 0; c < m.ncell; c++)
    if (m.starts[c + 1] - m.starts[c] > NGI_LEAF)
      sort_u64(m.ent + m.starts[c], m.starts[c + 1] - m.starts[c]);
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

/* Index in m->ent of id's entry in the cell of u, or SIZE_MAX. */
static size_t main_find(const mainix *m, uint32_t id, const uint16_t u[3]) {
  uint32_t idx = cell_index(m, u);
  size_t lo = m->starts[idx], hi = m->starts[idx + 1];
  uint64_t want = pack(m, id, u);
  if (hi - lo > NGI_LEAF) { /* sorted: binary search */
    lo = ngi_lower_bound(m->ent, lo, hi, want);
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
  if (g->pend_id != 0 || id > m->w_main || !m->stale || (m->nstale && ngi_stale_get(m, id)))
    return false;
  const ng_token *t = ngi_token_lookup(&rt->tokens, id);
  if (!t) return false;
  uint16_t uo[3];
  ngi_tok_u(t, g->space, uo);
  for (int a = 0; a < 3; a++)
    if ((uo[a] >> m->shift[a]) != (un[a] >> m->shift[a])) return false;
  size_t at = main_find(m, id, uo);
  if (at == SIZE_MAX) return false;
  uint64_t e = pack(m, id, un);
  uint32_t idx = cell_index(m, uo);
  size_t lo = m->starts[idx], hi = m->starts[idx + 1];
  /* A crowded cell stays sorted: in place only if the order is kept. */
  if (hi - lo > NGI_LEAF &&
      ((at > lo && m->ent[at - 1] > e) || (at + 1 < hi && m->ent[at + 1] < e)))
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
  if (id <= m->w_main && m->stale && !(m->nstale && ngi_stale_get(m, id))) {
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
    while (k < hi && NG_ID_LOCAL(ngi_tok_at(t, k)->id) == 0)
      k++;
    if (k == hi) {
      hi = mid;
    } else if (NG_ID_LOCAL(ngi_tok_at(t, k)->id) > after) {
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
  return t->len > 0 && NG_ID_LOCAL(ngi_tok_at(t, t->len - 1)->id) > g->w_abs;
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
    const ng_token *tok = ngi_tok_at(t, i);
    uint32_t id = NG_ID_LOCAL(tok->id);
    if (id == 0) continue;
    if (side_reserve(rt, g) != NG_OK) return NG_ENOMEM;
    uint16_t u[3];
    ngi_tok_u(tok, g->space, u);
    side_put(g, id, u);
    g->w_abs = id;
  }
  g->w_abs = t->next_id ? t->next_id - 1 : 0;
  return NG_OK;
}

/* needs: the runtime's read lock. guarantees: on NG_OK g is complete and its
 * qlock is held for reading (release with pthread_rwlock_unlock).
 * fails: NG_ENOMEM (no lock held). */
ng_status ngi_grid_acquire(ng_runtime *rt, ngi_grid *g) {
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

/* Start loading the directory entry of the main-index cell of tok's position
 * in g (stage 0) or, once that has arrived, the cell's entries (stage 1).
 * A small step stays in its cell, so the new position names the cell the
 * grid's in-place move will search. A hint only: it changes nothing. */
void ngi_grid_prefetch(const ngi_grid *g, const ng_token *tok, int stage) {
  const mainix *m = &g->m;
  if (!g->built || !m->starts) return;
  uint16_t u[3];
  ngi_tok_u(tok, g->space, u);
  uint32_t idx = (ngi_axis_cell(m, 0, u[0]) * m->nc[1] + ngi_axis_cell(m, 1, u[1])) * m->nc[2] +
                 ngi_axis_cell(m, 2, u[2]);
  if (stage == 0) {
    NGI_PREFETCH(&m->starts[idx]);
  } else {
    /* A cell holds about 30 entries at 1M uniform points (4 lines): load
     * them all, but no more than 6 lines of a crowded one. */
    uint32_t lo = m->starts[idx], hi = m->starts[idx + 1];
    if (hi - lo > 48) hi = lo + 48;
    for (uint32_t i = lo; i < hi; i += 8)
      NGI_PREFETCH(&m->ent[i]);
  }
}

/* The grid's private interface: the index layout built by grid_index.c, read by the queries. */
#ifndef NG_CORE_GRID_INDEX_H
#define NG_CORE_GRID_INDEX_H

#include "internal.h"

#include <float.h>
#include <math.h>

/*
 * Layout. Coordinates are handled "biased": u = raw + 32768, 0..65535, so
 * cells are plain right shifts. A space's index is built lazily, in bulk, the
 * first time it is queried (pay for what you use), from the token table:
 *
 * - the main index: every live token placed in the space as one 64-bit
 *   entry (its 24-bit slot,
 *   the record's local id, under
 *   the Morton code of its offsets inside its cell, 3 x 13 bits), grouped by
 *   cell with a counting sort, and a dense directory `starts` over the
 *   bounding box of the points. Cells are powers of two per axis, coarsened
 *   until the box has at most max(n/CELL_FILL, 512) cells: about CELL_FILL
 *   points a cell when points are spread, a directory of well under a byte a
 *   token; for clustered points (a sample shows a typical point's cell far
 *   fuller) they are narrowed again, up to n/4 cells. The configured bucket
 *   size is only reported (info); the index's own resolution follows the
 *   data, so a space with scale 10000 is as fast as L1. A crowded cell (more
 *   than NGI_LEAF entries: clustered points) is kept sorted, which makes it
 *   an implicit octree along the Z curve; its sub-directory (ngi_sub_dir)
 *   finds the run of one sub-cell (about 32 entries) in one step, for moves,
 *   and for queries, which walk a crowded cell as the grid of its sub-cells
 *   (grid_walk.c) and descend, nearest children first with binary searches,
 *   only a sub-cell far fuller than that. Cells at the edge of the
 *   box also hold side entries beyond it (cell coordinates are clamped to
 *   the box), so a point leaving the box needs no rebuild.
 * - `stale`: one bit per slot in use at the build; a set bit hides the
 *   main entry of a token that moved to another cell, left the space or died
 *   since the build (remove never allocates: the bitmap exists from the build
 *   on), and marks the tokens live at the build but not placed in the space
 *   (they have no main entry; counted in `nabsent`, not in `nstale`). A slot
 *   reused since the build belongs to a token with a larger id than the
 *   build's watermark (ids only grow), which lives in the side table; its
 *   slot's bit stays set for the dead token's main entry.
 * - the side table: an open-addressing table of (cell, id, position) for
 *   positions inserted since the build (moves to another cell, and tokens
 *   created since the build, absorbed by the next query). Linear probing
 *   keyed by cell, so the side entries of one cell form one probe run.
 *
 * Writes. A create costs no grid work: ids only grow, so the tokens created
 * since the index last looked are the table's tail (ids above `w_abs`), and
 * the next query absorbs them. A move within one cell (a game loop's small
 * step) rewrites the main entry in place -- in a crowded cell by shifting
 * the entries between its old and new place in the order, at most SHIFT_MAX
 * of them; a longer move hides the main entry and adds a side entry. A
 * batch update moves each token in one step (ngi_grid_move) and prefetches
 * the cells of the entries ahead. When the side part or the hidden part
 * grows past a fraction of n, the next query rebuilds the main index
 * (amortised O(1) a write).
 *
 * Locking: writers (insert, remove, clear) run under the runtime's write lock,
 * so no query is running. Queries run under the runtime's read lock, many at
 * once; the lazy work they do (build, absorb, rebuild) takes the grid's own
 * rwlock for writing, and the query itself holds it for reading.
 *
 * Memory at 1M uniform points: about 9.5 bytes a token per built space
 * (entries 8, directory 0.125, sub-directories 1.1 as soon as one cell is
 * crowded -- their places are computed, not looked up -- stale bits 0.125)
 * on top of the token table's 75 (the 64-byte record; the slot-map entry,
 * placement byte and flag copy of its slot); clustered points, with their
 * narrower cells, up to about 2 bytes more. A build briefly needs nothing
 * beyond its result.
 */

#define NGI_BIAS 32768
#define NGI_LEAF 32 /* cells (and Morton nodes) up to this size are scanned, not split */
#define NGI_ID_MASK 0xFFFFFFu

typedef struct side_ent {
  uint32_t cell;       /* clamped box cell index */
  uint32_t id;         /* 0 = a free slot */
  uint32_t next, prev; /* the cell's list (NGI_SIDE_NONE ends); next links free slots */
  uint16_t u[3];       /* biased coordinates */
  uint16_t pad;
} side_ent;

#define NGI_SIDE_NONE UINT32_MAX

typedef struct mainix {
  unsigned shift[3]; /* cell width 2^shift[a] on axis a */
  unsigned levels;   /* max(shift): depth of the Morton order inside a cell */
  uint32_t c0[3];    /* box origin, in cells of the biased range */
  uint32_t nc[3];    /* box size in cells (>= 1) */
  size_t ncell;      /* nc[0] * nc[1] * nc[2] */
  uint32_t *starts;  /* ncell + 1 entries (NULL when n == 0) */
  uint64_t *ent;     /* n packed entries */
  size_t n;
  /* Crowded cells (more than NGI_LEAF entries) get a sub-directory: the
   * cell's Morton order split into 8^d sub-cells by the top d levels of the
   * code, ngi_sub_dir(m, cell)[p] the first entry (relative to the cell) of
   * sub-cell p, 8^d + 1 offsets; d from the cell's size (ngi_sub_depth).
   * A cell's sub-directory sits in `sub` at a place computed from where its
   * entries start, so that reaching it costs no lookup of its own (one
   * cache miss fewer for every move and query in a crowded cell). sub is
   * NULL when no cell is crowded; nsub its length. */
  uint32_t *sub;
  size_t nsub;
  uint64_t *stale; /* bits for local ids (slots) 0 .. 64 * stale_words - 1 */
  size_t stale_words;
  size_t nstale;  /* main entries hidden */
  size_t nabsent; /* tokens live at the build without a main entry (not placed) */
  ng_id w_main;   /* the tokens live at the build (ids <= w_main) are the entries */
} mainix;

struct ngi_grid {
  int space;
  float cell_size; /* decoded units, as configured (reported by info) */
  ngi_unit unit;   /* the space's codec */
  double rpu;      /* raw units per decoded unit (den / num), for bounds */
  int32_t cs;      /* the configured cell size in raw units, for info's cell count */
  pthread_rwlock_t qlock;
  bool built;
  ng_id w_abs; /* ids <= w_abs are in main or side; larger ones are read from the table */
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
};

/* ---- helpers shared by the index and the queries (inline: the hot path) - */

/* The decoded value of a biased coordinate, as a float (ngi_unit_decode_f). */
static inline float ngi_decode_u(const ngi_grid *g, uint32_t u) {
  return ngi_unit_decode_f(&g->unit, (int32_t)u - NGI_BIAS);
}

/* A double as a float without undefined behaviour for values beyond FLT_MAX. */
static inline float ngi_to_float(double d) {
  if (d > (double)FLT_MAX) return INFINITY;
  if (d < -(double)FLT_MAX) return -INFINITY;
  return (float)d;
}

static inline uint32_t ngi_axis_cell(const mainix *m, int a, uint32_t u) {
  uint32_t c = u >> m->shift[a];
  if (c <= m->c0[a]) return 0;
  c -= m->c0[a];
  return c >= m->nc[a] ? m->nc[a] - 1 : c;
}

/* A token's biased coordinates in a space (the record is packed: read by value). */
static inline void ngi_tok_u(const ng_token *t, int sp, uint16_t u[3]) {
  for (int a = 0; a < 3; a++)
    u[a] = (uint16_t)((int32_t)t->coords[sp][a] + NGI_BIAS);
}

static inline uint32_t ngi_compact3(uint64_t x) {
  x &= 0x1249249249ull;
  x = (x ^ (x >> 2)) & 0x10C30C30C3ull;
  x = (x ^ (x >> 4)) & 0x100F00F00Full;
  x = (x ^ (x >> 8)) & 0x1F0000FFull;
  x = (x ^ (x >> 16)) & 0x1FFFull;
  return (uint32_t)x;
}

/* The offsets inside its cell of a main entry (the inverse of pack in grid_index.c). */
static inline void ngi_unpack(uint64_t e, uint32_t off[3]) {
  uint64_t code = e >> 24;
  off[0] = ngi_compact3(code >> 2);
  off[1] = ngi_compact3(code >> 1);
  off[2] = ngi_compact3(code);
}

static inline bool ngi_stale_get(const mainix *m, uint32_t id) {
  return (m->stale[id >> 6] >> (id & 63)) & 1u;
}

/* First index in [lo, hi) of ent whose entry is >= key. */
static inline size_t ngi_lower_bound(const uint64_t *ent, size_t lo, size_t hi, uint64_t key) {
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ent[mid] < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Depth of the sub-directory of a crowded cell of `count` entries: about
 * 32 entries a sub-cell, at most the cell's own Morton levels. */
static inline unsigned ngi_sub_depth(const mainix *m, size_t count) {
  if (count <= 32) return 0;
  /* the least d with 32 * 8^d >= count: 5 + 3d >= bits, count - 1 < 2^bits
   * (every move and query in a crowded cell asks, some of them twice) */
#if defined(__GNUC__) || defined(__clang__)
  unsigned bits = 64u - (unsigned)__builtin_clzll((unsigned long long)(count - 1));
#else
  unsigned bits = 0;
  while (bits < 64 && (count - 1) >> bits)
    bits++;
#endif
  unsigned d = (bits - 3) / 3; /* ceil((bits - 5) / 3), bits >= 6 */
  return d < m->levels ? d : m->levels;
}

/* The sub-directory of crowded cell idx: at sub[starts[idx] / 4 + idx].
 * Those of two cells never overlap: a cell of count > 32 entries has depth d
 * with 32 * 8^(d-1) < count (ngi_sub_depth), so its 8^d + 1 offsets fit in
 * the count / 4 + 1 places before the next cell's. So sub holds
 * n / 4 + ncell + 1 offsets (ngi_sub_len), some of them unused. */
static inline uint32_t *ngi_sub_dir(const mainix *m, size_t idx) {
  return m->sub + m->starts[idx] / 4 + idx;
}

static inline size_t ngi_sub_len(const mainix *m) {
  return m->n / 4 + m->ncell + 1;
}

/* The sub-cell of entry e at depth d. */
static inline uint32_t ngi_sub_cell(const mainix *m, uint64_t e, unsigned d) {
  return (uint32_t)((e >> 24) >> (3 * (m->levels - d)));
}

/* The 8 bits of v moved to every third bit (bit i to bit 3i). */
extern const uint32_t ngi_spread3[256];

/* The index along the Z curve (x the highest bit of each level, as the
 * entries' codes have it) of the sub-cell at (s[0], s[1], s[2]) of a
 * crowded cell, each below 2^depth (and so below 256: ngi_sub_depth stays
 * under 8 for any cell of fewer than 2^24 entries). */
static inline uint32_t ngi_sub_index(const uint32_t s[3]) {
  return ngi_spread3[s[0]] << 2 | ngi_spread3[s[1]] << 1 | ngi_spread3[s[2]];
}

/* The sub-cell at depth d of the point at biased u in its cell: the
 * ngi_sub_cell of its entry, without packing the whole entry. */
static inline uint32_t ngi_sub_of(const mainix *m, const uint16_t u[3], unsigned d) {
  uint32_t s[3];
  for (int a = 0; a < 3; a++)
    s[a] = (u[a] & ((1u << m->shift[a]) - 1u)) >> (m->levels - d);
  return ngi_sub_index(s);
}

/* Narrow [*lo, *hi) -- the entries of crowded cell idx -- to the sub-cell of e. */
static inline void ngi_sub_range(const mainix *m, uint32_t idx, uint64_t e, size_t *lo,
                                 size_t *hi) {
  unsigned d = ngi_sub_depth(m, *hi - *lo);
  uint32_t p = ngi_sub_cell(m, e, d);
  const uint32_t *sub = ngi_sub_dir(m, idx);
  size_t base = *lo;
  *lo = base + sub[p];
  *hi = base + sub[p + 1];
}

/* The grid's lock protocol, all of it (readers of the index use only these):
 * under the runtime's read lock, ngi_grid_acquire completes g (build it,
 * absorb new tokens, rebuild when fragmented; taking qlock for writing only
 * for that) and holds qlock for reading; ngi_grid_hold holds it for reading
 * as g is (complete or not, for a reader that must not build); either hold
 * ends with ngi_grid_release. Writers of the store need no qlock: they hold
 * the runtime's write lock, which excludes every reader. */
ng_status ngi_grid_acquire(ng_runtime *rt, ngi_grid *g);
static inline void ngi_grid_hold(ngi_grid *g) {
  pthread_rwlock_rdlock(&g->qlock);
}
static inline void ngi_grid_release(ngi_grid *g) {
  pthread_rwlock_unlock(&g->qlock);
}

#endif

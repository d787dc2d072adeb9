/* Internal interfaces shared by the files of the storage core (never installed). */
#ifndef NG_CORE_INTERNAL_H
#define NG_CORE_INTERNAL_H

#include "neurograph.h"

#include <pthread.h>
#include <stdatomic.h>

/* Compile-time checks that the records are the on-disk images. */
_Static_assert(sizeof(float) == 4, "float must be IEEE-754 binary32");
_Static_assert(sizeof(ng_token) == 64, "ng_token must be 64 bytes");
_Static_assert(sizeof(ng_connection) == 64, "ng_connection must be 64 bytes");
_Static_assert(sizeof(ng_cdna) == 384, "ng_cdna must be 384 bytes");

#define NGI_NONE UINT32_MAX /* "no slot" in slot maps */

/* ---- runtime.c: allocation, errors, locking, clock ---------------------- */

/* Allocation through the runtime's allocator, with byte accounting.
 * Callers pass the exact old size (lua_Alloc contract). All return NULL on
 * failure (and on size overflow for the _array forms) without side effects. */
void *ngi_alloc(ng_runtime *rt, size_t size);
void *ngi_realloc(ng_runtime *rt, void *p, size_t old_size, size_t new_size);
void ngi_free(ng_runtime *rt, void *p, size_t size);
void *ngi_alloc_array(ng_runtime *rt, size_t n, size_t elem);
void *ngi_realloc_array(ng_runtime *rt, void *p, size_t old_n, size_t new_n, size_t elem);

/* Record a failure for ng_last_error (per thread, tagged with rt; rt may be
 * NULL) and return `status`. printf-style detail. */
ng_status ngi_fail(const ng_runtime *rt, ng_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Locking. Read locks are recursive per thread (a callback under ng_*_each
 * may call readers); a write lock requested by a thread that holds a read
 * lock on the same runtime fails with NG_EBUSY (recorded via ngi_fail) instead
 * of deadlocking. ngi_write_lock returns NG_OK or NG_EBUSY. A read lock taken
 * by the thread that holds the write lock nests inside it (no deadlock); a
 * second write lock from that thread fails with NG_EBUSY. */
void ngi_read_lock(ng_runtime *rt);
void ngi_read_unlock(ng_runtime *rt);
ng_status ngi_write_lock(ng_runtime *rt, const char *func);
void ngi_write_unlock(ng_runtime *rt);

/* Clock: Unix seconds from the configured clock; the 32-bit form saturates. */
uint64_t ngi_now(const ng_runtime *rt);
uint32_t ngi_now32(const ng_runtime *rt);

/* A cache prefetch hint for writing (no-op where the compiler has none). */
#if defined(__GNUC__) || defined(__clang__)
#define NGI_PREFETCH(p) __builtin_prefetch((p), 1, 3)
#else
#define NGI_PREFETCH(p) ((void)(p))
#endif

/* True for a finite float (no NaN, no infinity). */
static inline int ngi_finite(float v) { return v - v == 0.0f; }

/* ---- tokens.c: the token table ------------------------------------------ */

/* Live tokens in a dense array in ascending id order (ids only grow, so
 * appending keeps the order). A deleted token leaves a tombstone (a record
 * whose local id is 0) until compaction; slot_of[id] maps an id to its slot
 * or NGI_NONE. */
typedef struct ngi_token_table {
  ng_token *recs;
  size_t len;      /* slots in use, tombstones included */
  size_t cap;
  size_t live;     /* live tokens */
  uint32_t *slot_of;
  size_t slot_cap; /* ids < slot_cap have an entry */
  uint32_t next_id;
} ngi_token_table;

/* The live token with this id, or NULL. Caller holds a lock. While the table
 * has no tombstones and no gaps in its ids (nothing deleted yet: the common
 * case), the slot is id - first id, which saves the slot_of read (a cache
 * miss on a large table). */
static inline const ng_token *ngi_token_lookup(const ngi_token_table *t, uint32_t id) {
  if (t->len > 0 && t->len == t->live) {
    uint32_t first = NG_ID_LOCAL(t->recs[0].id);
    if ((size_t)(NG_ID_LOCAL(t->recs[t->len - 1].id) - first) + 1 == t->len) {
      uint32_t s = id - first;
      return id >= first && s < t->len ? &t->recs[s] : NULL;
    }
  }
  if (id == 0 || id >= t->slot_cap) return NULL;
  uint32_t s = t->slot_of[id];
  return s == NGI_NONE ? NULL : &t->recs[s];
}

void ngi_tokens_destroy(ng_runtime *rt, ngi_token_table *t);
/* An empty table (next_id 1) with room for `initial` tokens (a hint, capped
 * at NG_TOKEN_ID_MAX). NG_ENOMEM leaves *t empty and owning nothing. */
ng_status ngi_tokens_init(ng_runtime *rt, ngi_token_table *t, size_t initial);
/* Test hook only (lets tests reach the id limit without creating 16M tokens):
 * set the next id to assign. Requires next >= the current next_id, so ids are
 * still never reused. Caller holds no lock; not for production code. */
void ngi_tokens_set_next_id(ng_runtime *rt, uint32_t next);

/* ---- conn_table.c: the connection table and adjacency ------------------- */

typedef struct ngi_conns ngi_conns; /* defined in conn_table.h */

ng_status ngi_conns_new(ng_runtime *rt, size_t initial, ngi_conns **out);
void ngi_conns_destroy(ng_runtime *rt, ngi_conns *c);
/* Remove every connection that starts or ends at token `id`; returns how
 * many. Never fails (frees only). Caller holds the write lock. */
size_t ngi_conns_remove_token(ng_runtime *rt, ngi_conns *c, uint32_t id);
/* Remove every connection; returns how many. Never fails. */
size_t ngi_conns_clear(ng_runtime *rt, ngi_conns *c);
size_t ngi_conns_count(const ngi_conns *c);
uint32_t ngi_conns_next_id(const ngi_conns *c);
/* Test hook only (reach the id limit without creating 4G connections): set
 * the next id to assign. Requires next >= the current next_id, so ids are
 * still never reused. Caller holds no lock; not for production code. */
void ngi_conns_set_next_id(ng_runtime *rt, uint32_t next);

/* ---- grid_index.c, grid_query.c: one spatial index per space ------------ */

typedef struct ngi_grid ngi_grid; /* defined in grid_index.h */

/* An index for `space` with cells of `cell_size` decoded units (reported by
 * ng_grid_info; the index picks its own resolution). It is built lazily:
 * at its first query it indexes every live token of rt->tokens, in bulk. */
ng_status ngi_grid_new(ng_runtime *rt, int space, float cell_size, ngi_grid **out);
void ngi_grid_destroy(ng_runtime *rt, ngi_grid *g);
/* Add token `id` at raw coordinates xyz. May allocate; on failure nothing
 * changed. The same id may be present twice transiently (a move inserts the
 * new position before removing the old one). Ids the index has not absorbed
 * yet (ids only grow: a token created since its last query) are read from
 * rt->tokens instead, so a create needs no insert at all, and inserting or
 * removing such an id does nothing; the caller keeps the table in step. A
 * move -- insert of the new position, then remove of the position rt->tokens
 * still holds -- may be done in place; a remove of the new position instead
 * undoes it (a rollback). */
ng_status ngi_grid_insert(ng_runtime *rt, ngi_grid *g, uint32_t id, const int16_t xyz[3]);
/* Remove one occurrence of `id` at raw xyz. Never fails, never allocates.
 * Call it while rt->tokens still holds the position before the change. */
void ngi_grid_remove(ng_runtime *rt, ngi_grid *g, uint32_t id, const int16_t xyz[3]);
/* Move `id` from raw `from` (the table's position) to `to` in one step: the
 * batch update's path (no insert/remove pair may be in progress). Allocates
 * only when a main entry leaves its cell; NG_ENOMEM then changes nothing. */
ng_status ngi_grid_move(ng_runtime *rt, ngi_grid *g, uint32_t id, const int16_t from[3],
                        const int16_t to[3]);
/* Test hook: whether g's index keeps its internal invariants (crowded cells
 * sorted, their sub-directories exact). Caller holds a lock. */
bool ngi_grid_consistent(const ngi_grid *g);
/* Start loading what a move of `tok` in g will touch, in three stages (0, 1,
 * 2), each a level deeper in the index; a batch calls each stage a few
 * entries after the one before, with the same *cell (stage 0 sets it). A
 * hint only: changes nothing else. */
void ngi_grid_prefetch(const ngi_grid *g, const ng_token *tok, int stage, uint32_t *cell);
/* Remove everything (keeps the cell size); tokens created afterwards are
 * indexed as usual. Never fails. */
void ngi_grid_clear(ng_runtime *rt, ngi_grid *g);
/* Replace *g with an index with `cell_size` that indexes every live token of
 * `tokens` (the runtime's table) in bulk at its first query; on failure *g is
 * unchanged. */
ng_status ngi_grid_rebuild(ng_runtime *rt, ngi_grid **g, float cell_size, const ngi_token_table *tokens);

/* ---- crc32c.c, snapshot.c: snapshots ------------------------------------ */

/* CRC-32C (Castagnoli) of n bytes, continuing `crc` (start with 0; the result
 * of one call continues in the next). */
uint32_t ngi_crc32c(uint32_t crc, const void *data, size_t n);
/* The same, always with the portable table code (ngi_crc32c uses the CPU's
 * crc32 instruction when it has one); for tests that compare the two. */
uint32_t ngi_crc32c_portable(uint32_t crc, const void *data, size_t n);
/* ng_snapshot_load from memory: data[0..len) is a whole snapshot file; `name`
 * (may be NULL) names it in messages. Same guarantees and failures. Lets the
 * fuzzer and tests load without the disk. */
ng_status ngi_snapshot_load_mem(const void *data, size_t len, const ng_config *cfg,
                                const char *name, ng_runtime **out);
/* conn_table.c: fill an empty connection table from n packed 68-byte
 * entries (u32 id, then a 64-byte record: a snapshot's connection section)
 * that snapshot.c has fully validated (ids ascending below next_id, endpoints
 * live, no duplicates). All or nothing: NG_ENOMEM (or NG_ECORRUPT if the
 * cheap invariants it re-checks fail) leaves c empty. */
ng_status ngi_conns_restore(ng_runtime *rt, ngi_conns *c, const void *entries, size_t n,
                            uint32_t next_id);
/* conn_table.c: the same, taking ownership of `block` (ngi_alloc'ed,
 * block_bytes long, a multiple of 64 and >= 68 * n, starting with the n
 * entries), which becomes the record array: no second copy of the records.
 * Frees block on every failure. */
ng_status ngi_conns_restore_owned(ng_runtime *rt, ngi_conns *c, void *block, size_t block_bytes,
                                  size_t n, uint32_t next_id);
/* snapshot.c: hint that the fresh, untouched block [p, p+size) (any
 * allocator) is about to be filled in bulk, so the kernel may back it with
 * huge pages (far fewer page faults). Never fails, never changes contents. */
void ngi_advise_bulk(void *p, size_t size);

/* ---- the runtime -------------------------------------------------------- */

struct ng_runtime {
  ng_alloc_fn alloc;
  void *alloc_ud;
  ng_clock_fn clock;
  void *clock_ud;
  atomic_int refs;
  atomic_size_t bytes_in_use;
  atomic_size_t bytes_peak;
  pthread_rwlock_t lock;
  ng_cdna cdna;
  ngi_token_table tokens;
  ngi_conns *conns;
  ngi_grid *grids[NG_SPACES];
};

#endif /* NG_CORE_INTERNAL_H */

/* The token table (token_table.c): live token records in ascending id
 * order in segmented arrays, the slot map from ids to positions, lookups
 * (also the lock-free ones ng_token_get relies on), append, tombstones and
 * compaction. Never installed; included through internal.h. */
#ifndef NG_CORE_TOKEN_TABLE_H
#define NG_CORE_TOKEN_TABLE_H

#include "neurograph.h"
#include "base.h"
#include "idgen.h"
#include "txn.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#define NGI_NONE UINT32_MAX /* "no slot" in slot maps */

/* Atomic access to plain objects, for the fields that ng_token_get reads
 * without the lock (a sequence lock, see ngi_token_table): writers store
 * them with these while holding the write lock, the optimistic reader loads
 * them with these, and everything else, under a lock, reads them plainly.
 * gcc's and clang's __atomic builtins work on plain objects (C11 atomics need
 * _Atomic-typed storage, which could not be read as an ng_token) and
 * ThreadSanitizer understands them; ngi_word is a 64-bit word that may alias
 * a record (records are 64 bytes into allocator blocks, which are aligned as
 * malloc's are, so every word is aligned for an atomic access). Elsewhere
 * there is no optimistic read: every read takes the lock. */
#if defined(__GNUC__) || defined(__clang__)
#define NGI_OPTIMISTIC 1
typedef uint64_t ngi_word __attribute__((__may_alias__));
#define NGI_LOAD(p, order) __atomic_load_n((p), __ATOMIC_##order)
#define NGI_STORE(p, v, order) __atomic_store_n((p), (v), __ATOMIC_##order)
#else
#define NGI_OPTIMISTIC 0
typedef uint64_t ngi_word;
#define NGI_LOAD(p, order) (*(p))
#define NGI_STORE(p, v, order) ((void)(*(p) = (v)))
#endif

/* Segmented arrays: segments 0 and 1 hold 1 << lb elements and each later
 * one twice its predecessor, so k segments hold (1 << lb) << (k - 1): a
 * doubling array's capacities, without the copy. Segments never move or
 * shrink while the table lives (an optimistic reader may still be reading
 * one); only ngi_tokens_destroy frees them. */
#define NGI_SEGS 21   /* (16 << 20) records >= NG_TOKEN_SLOT_MAX */
#define NGI_REC_LB 4  /* 16 records in segments 0 and 1 */
#define NGI_SLOT_LB 6 /* 64 slot-map entries in segments 0 and 1 */

/* The segment that holds element i: the bit width of i >> lb, computed as
 * floor(log2(2 * (i >> lb) + 1)), which needs no zero test. */
static inline unsigned ngi_seg_of(size_t i, unsigned lb) {
  unsigned long long q = (unsigned long long)(i >> lb) << 1 | 1u;
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
  /* bsr leaves its destination as it was for a zero source, so the CPU makes
   * it wait for that register's last value; compilers pick any register,
   * often one that a record load just wrote, which chained every
   * ng_token_get to the previous one's cache miss (150 ns instead of 40 for
   * random gets). A destination zeroed just before depends on nothing. */
  unsigned long long r = 0;
  __asm__("bsrq %1, %0" : "+r"(r) : "rm"(q) : "cc");
  return (unsigned)r;
#elif defined(__GNUC__) || defined(__clang__)
  return (unsigned)(8 * sizeof q - 1 - (size_t)__builtin_clzll(q));
#else
  q >>= 1;
  unsigned k = 0;
  while (q) {
    q >>= 1;
    k++;
  }
  return k;
#endif
}
/* The index of the first element of segment k, and its element count. */
static inline size_t ngi_seg_base(unsigned k, unsigned lb) {
  return k ? (size_t)1 << (lb + k - 1) : 0;
}
static inline size_t ngi_seg_len(unsigned k, unsigned lb) {
  return (size_t)1 << (lb + (k ? k - 1 : 0));
}

/* Live tokens in positions ("slot" below: a place in the record array) of
 * ascending id order (ids only grow, idgen.h, so appending keeps the order).
 * A deleted token leaves a tombstone (a record whose local id is 0) until
 * compaction; the slot map maps an id's slot (its low 24 bits, the record's
 * local id L, at index L - 1) to (generation << 32 | position), position
 * NGI_NONE when the slot holds no live token: one load finds the record and
 * checks the generation.
 *
 * ng_token_get reads without the lock: it reads the runtime's write
 * sequence (odd while a writer holds the lock), then `dense`, the segment
 * pointers, one slot-map entry and the record words, and trusts them only if
 * the sequence has not changed. So every write of those goes through
 * NGI_STORE (ngi_tok_store for records, slot_set in token_table.c), a new segment
 * is published with a release store after it is initialised, and `dense`
 * is kept in step by every change of len, live or the ids. */
typedef struct ngi_token_table {
  ng_token *seg[NGI_SEGS];      /* record segments (64-byte aligned); NULL past nseg */
  uint8_t seg_pad[NGI_SEGS];    /* where each segment's allocation starts, before seg[k] */
  uint64_t *slot_seg[NGI_SEGS]; /* slot-map segments; NULL past nslot_seg */
  /* Placement, per slot like the slot map (in the same allocations): bit s
   * set while the slot's live token is placed in space s. Read and written
   * under the lock only (ng_token_get does not read it). */
  uint8_t *place_seg[NGI_SEGS];
  /* A copy of each live token's flags, per slot (in the same allocations):
   * the grid's filters test them without reading the record, 2 bytes a
   * token instead of a 64-byte line. Kept by ngi_tok_store_words, the one
   * way records are written, and by ngi_tokens_adopt. */
  uint16_t *flag_seg[NGI_SEGS];
  /* While there are no tombstones and no gaps in the ids (nothing deleted
   * yet: the common case) and the first id is below 2^32, (first id << 32) |
   * len, so the position is id - first id without the slot-map read (a cache
   * miss on a large table); else 0. */
  _Atomic uint64_t dense;
  size_t len;      /* slots in use, tombstones included */
  size_t cap;      /* slots in the nseg segments */
  size_t live;     /* live tokens */
  size_t nplaced[NG_SPACES]; /* live tokens placed in each space */
  /* Set once a live record without NG_TOKEN_ACTIVE has been stored, and
   * never cleared (not even by a clear, which a transaction may roll back
   * without storing a record): until then the grid's default filter,
   * "active tokens only", passes every token without a test. */
  bool inactive_seen;
  size_t slot_cap; /* local ids 1 .. slot_cap have a slot-map entry */
  unsigned nseg, nslot_seg;
  unsigned nbulk, nslot_bulk; /* segments 0 .. nbulk-1 are one allocation (a capacity hint's) */
  ngi_idgen ids;
  /* The open transaction, which logs what the writes below overwrite (txn.h);
   * NULL outside one. */
  ngi_txn *undo;
} ngi_token_table;

/* The record in `slot` (< cap). Caller holds a lock; writes go through
 * ngi_tok_store. */
static inline const ng_token *ngi_tok_at(const ngi_token_table *t, size_t slot) {
  unsigned k = ngi_seg_of(slot, NGI_REC_LB);
  return &t->seg[k][slot - ngi_seg_base(k, NGI_REC_LB)];
}

/* How many slots from `slot` (< cap) on are contiguous in memory (to the end
 * of its segment): loops over all slots walk segment by segment. */
static inline size_t ngi_tok_run(size_t slot) {
  unsigned k = ngi_seg_of(slot, NGI_REC_LB);
  return ngi_seg_base(k, NGI_REC_LB) + ngi_seg_len(k, NGI_REC_LB) - slot;
}

/* The records from `slot` (< len) to the end of its segment or of the table,
 * whichever comes first: *n of them, contiguous. Loops over every slot walk
 * the table span by span, as fast as over one array:
 *   for (size_t i = 0, n; i < t->len; i += n) { run = ngi_tok_span(t, i, &n); ... }
 * Caller holds a lock. */
static inline const ng_token *ngi_tok_span(const ngi_token_table *t, size_t slot, size_t *n) {
  unsigned k = ngi_seg_of(slot, NGI_REC_LB);
  size_t base = ngi_seg_base(k, NGI_REC_LB), end = base + ngi_seg_len(k, NGI_REC_LB);
  *n = (end < t->len ? end : t->len) - slot;
  return &t->seg[k][slot - base];
}

/* Write *rec (or only its 8-byte words first..last, where a change is
 * confined to them) into `slot` (< cap). Caller holds the write lock. Word by word
 * with atomic stores, so an optimistic reader racing with it reads words
 * (maybe a torn mix, which its sequence check rejects), never a data race. */
static inline void ngi_set_flags(ngi_token_table *t, uint32_t local, uint16_t flags);
static inline void ngi_tok_store_words(ngi_token_table *t, size_t slot, const ng_token *rec,
                                       unsigned first, unsigned last) {
  if (t->undo) ngi_txn_log_tok_rec(t->undo, t, slot);
  /* The flag copy changes only with the word holding the flags (a move
   * writes the coordinates alone, and skips the copy's cache line). */
  const unsigned flags_word = offsetof(ng_token, flags) / sizeof(uint64_t);
  uint32_t local = NG_ID_LOCAL(rec->id);
  /* not a tombstone: a rollback's restore lands here too */
  if (local != 0 && first <= flags_word && flags_word <= last) {
    ngi_set_flags(t, local, rec->flags);
    if (!(rec->flags & NG_TOKEN_ACTIVE)) t->inactive_seen = true;
  }
  uint64_t w[sizeof *rec / sizeof(uint64_t)];
  memcpy(w, rec, sizeof w);
  unsigned k = ngi_seg_of(slot, NGI_REC_LB);
  ngi_word *d = (ngi_word *)(void *)&t->seg[k][slot - ngi_seg_base(k, NGI_REC_LB)];
  for (unsigned i = first; i <= last; i++)
    NGI_STORE(&d[i], w[i], RELAXED);
}
static inline void ngi_tok_store(ngi_token_table *t, size_t slot, const ng_token *rec) {
  ngi_tok_store_words(t, slot, rec, 0, sizeof *rec / sizeof(uint64_t) - 1);
}

/* The slot-map entry of local id `local` (1 .. slot_cap). Caller holds a lock. */
static inline uint64_t ngi_slot_entry(const ngi_token_table *t, uint32_t local) {
  unsigned k = ngi_seg_of(local - 1u, NGI_SLOT_LB);
  return t->slot_seg[k][local - 1u - ngi_seg_base(k, NGI_SLOT_LB)];
}

/* The position of token `id`, or NGI_NONE (also for ids without an entry and
 * for a stale generation). Caller holds a lock. */
static inline uint32_t ngi_slot_at(const ngi_token_table *t, ng_id id) {
  uint32_t local = NG_TOKEN_SLOT(id);
  if (local == 0 || local > t->slot_cap || id > NG_ID_MAX) return NGI_NONE;
  uint64_t e = ngi_slot_entry(t, local);
  return (e >> 32) == NG_TOKEN_GEN(id) ? (uint32_t)e : NGI_NONE;
}

/* The spaces (bit s: space s) the live token in slot `local` (1 ..
 * slot_cap) is placed in. Caller holds a lock. */
static inline uint8_t ngi_placed(const ngi_token_table *t, uint32_t local) {
  unsigned k = ngi_seg_of(local - 1u, NGI_SLOT_LB);
  return t->place_seg[k][local - 1u - ngi_seg_base(k, NGI_SLOT_LB)];
}
/* Where they are, for a prefetch (a batch loads them with the record). */
static inline const uint8_t *ngi_placed_at(const ngi_token_table *t, uint32_t local) {
  unsigned k = ngi_seg_of(local - 1u, NGI_SLOT_LB);
  return &t->place_seg[k][local - 1u - ngi_seg_base(k, NGI_SLOT_LB)];
}
/* Set them (keeping the per-space counts). Caller holds the write lock. */
static inline void ngi_set_placed(ngi_token_table *t, uint32_t local, uint8_t spaces) {
  if (t->undo) ngi_txn_log_tok_slot(t->undo, t, local);
  unsigned k = ngi_seg_of(local - 1u, NGI_SLOT_LB);
  uint8_t *p = &t->place_seg[k][local - 1u - ngi_seg_base(k, NGI_SLOT_LB)];
  for (unsigned d = (unsigned)(*p ^ spaces), s = 0; d; d >>= 1, s++)
    if (d & 1u) {
      if (spaces & (1u << s))
        t->nplaced[s]++;
      else
        t->nplaced[s]--;
    }
  *p = spaces;
}

/* The flags of the live token in slot `local` (its copy beside the slot
 * map). Caller holds a lock. */
static inline uint16_t ngi_flags_of(const ngi_token_table *t, uint32_t local) {
  unsigned k = ngi_seg_of(local - 1u, NGI_SLOT_LB);
  return t->flag_seg[k][local - 1u - ngi_seg_base(k, NGI_SLOT_LB)];
}
/* Set that copy. Caller holds the write lock (or has exclusive access). */
static inline void ngi_set_flags(ngi_token_table *t, uint32_t local, uint16_t flags) {
  unsigned k = ngi_seg_of(local - 1u, NGI_SLOT_LB);
  t->flag_seg[k][local - 1u - ngi_seg_base(k, NGI_SLOT_LB)] = flags;
}

/* The live record of local id `local` (a slot of a live token). Caller holds a lock. */
static inline const ng_token *ngi_tok_of_local(const ngi_token_table *t, uint32_t local) {
  return ngi_tok_at(t, (uint32_t)ngi_slot_entry(t, local));
}

/* The full id of the live token whose record says local id `local`. */
static inline ng_id ngi_token_id_of(const ngi_token_table *t, uint32_t local) {
  if (t->ids.epoch == 0) return local; /* no slot reused yet: generation 0 */
  return (ngi_slot_entry(t, local) >> 32) << NG_TOKEN_SLOT_BITS | local;
}

/* Whether local id `local` is the slot of a live token. Caller holds a lock. */
static inline bool ngi_token_live_local(const ngi_token_table *t, uint32_t local) {
  return local != 0 && local <= t->slot_cap && (uint32_t)ngi_slot_entry(t, local) != NGI_NONE;
}

/* The position of the live token with this id, or NGI_NONE. Caller holds a lock. */
static inline uint32_t ngi_token_slot(const ngi_token_table *t, ng_id id) {
  uint64_t d = atomic_load_explicit(&t->dense, memory_order_relaxed);
  if (d) {
    uint64_t first = d >> 32, s = id - first;
    return id >= first && s < (uint32_t)d ? (uint32_t)s : NGI_NONE;
  }
  return ngi_slot_at(t, id);
}

/* The live token with this id, or NULL. Caller holds a lock. */
static inline const ng_token *ngi_token_lookup(const ngi_token_table *t, ng_id id) {
  uint32_t s = ngi_token_slot(t, id);
  return s == NGI_NONE ? NULL : ngi_tok_at(t, s);
}

void ngi_tokens_destroy(ng_runtime *rt, ngi_token_table *t);
/* An empty table (next id 1) with room for `initial` tokens (a hint, capped
 * at NG_TOKEN_SLOT_MAX): its records are then one block of t->cap records at
 * t->seg[0]. NG_ENOMEM leaves *t empty and owning nothing. */
ng_status ngi_tokens_init(ng_runtime *rt, ngi_token_table *t, size_t initial);
/* snapshot_load.c: make the first n positions (room made by ngi_tokens_init(n),
 * filled by the caller with records in strictly ascending id order, none a
 * tombstone, local ids below the allocator's fresh slot) the whole table,
 * with gens[i] the generation of record i (NULL: all 0) and placed[i] its
 * spaces (bit s: space s), and build its slot map. The caller restores t->ids. Caller has exclusive access (a runtime not
 * yet shared). NG_ENOMEM leaves the table as it was. */
ng_status ngi_tokens_adopt(ng_runtime *rt, ngi_token_table *t, size_t n, const uint32_t *gens,
                           const uint8_t *placed);
/* Whether a record is a tombstone (a deleted token's slot, local id 0). */
static inline bool ngi_tok_is_tomb(const ng_token *t) {
  return NG_ID_LOCAL(t->id) == 0;
}
/* Room for one ngi_tokens_append of `id`: a record and a slot-map entry.
 * fails: NG_ENOMEM; the table is unchanged (capacity is not observable). */
ng_status ngi_tokens_reserve_append(ng_runtime *rt, ngi_token_table *t, ng_id id);
/* Append *rec (its id field set) as token `id`, the id allocator's next id
 * (ngi_idgen_peek), which it takes, placed in the spaces `placed`. Needs
 * ngi_tokens_reserve_append since the last change; cannot fail. Caller holds
 * the write lock. */
void ngi_tokens_append(ngi_token_table *t, ng_id id, const ng_token *rec, uint8_t placed);
/* Delete live token `id`: its record becomes a tombstone, its slot goes back
 * to the allocator; trailing tombstones are dropped and, once tombstones
 * outnumber live tokens, the table is compacted in place. Never allocates.
 * Caller holds the write lock. */
void ngi_tokens_tombstone(ng_runtime *rt, ngi_token_table *t, ng_id id);
/* Compact now if deletes inside a transaction left it due (they defer it:
 * it moves every record). Never allocates. Caller holds the write lock. */
void ngi_tokens_tidy(ngi_token_table *t);
/* Delete every token, each slot back to the allocator in ascending id order
 * (deterministic reuse). Never allocates. Caller holds the write lock. */
void ngi_tokens_release_all(ng_runtime *rt, ngi_token_table *t);
/* The position of the smallest live id greater than `after`, or t->len if
 * none. Caller holds a lock. */
size_t ngi_tokens_first_after(const ngi_token_table *t, ng_id after);
/* The full id of the live record at position `pos` (< len). Caller holds a lock. */
ng_id ngi_tokens_id_at(const ngi_token_table *t, size_t pos);
/* Test hook only (lets tests reach the slot limit without creating 16M
 * tokens): make slots below `fresh` count as used and retired. Requires
 * fresh >= the current fresh slot. Caller holds no lock; not for production. */
void ngi_tokens_skip_slots(ng_runtime *rt, uint32_t fresh);

#endif /* NG_CORE_TOKEN_TABLE_H */

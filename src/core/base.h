/* The core's services (base.c): memory, errors, locks, clock, bulk-fill
 * hints. Every file of the core may use them; they depend on nothing else of
 * the core but the runtime's fields (struct ng_runtime, internal.h). Never
 * installed. */
#ifndef NG_CORE_BASE_H
#define NG_CORE_BASE_H

#include "neurograph.h"

#include <pthread.h>

/* ---- allocation ----------------------------------------------------------- */

/* realloc/free behind the lua_Alloc signature, used when the host gives none. */
void *ngi_default_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
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

/* Whether `id` can name a record at all (1 .. NG_ID_MAX). 0 and ids of 2^53
 * and above are a caller's mistake, unlike a well-formed id of no live
 * record (a normal miss). */
static inline bool ngi_id_valid(ng_id id) {
  return id - 1 < NG_ID_MAX;
}
/* NG_OK for a valid id; else NG_EINVAL recorded under fn. */
ng_status ngi_check_id(const ng_runtime *rt, const char *fn, ng_id id);

/* Locking. Read locks are recursive per thread (a callback under ng_*_each
 * may call readers); a write lock requested by a thread that holds a read
 * lock on the same runtime fails with NG_EBUSY (recorded via ngi_fail) instead
 * of deadlocking. ngi_write_lock returns NG_OK or NG_EBUSY. A read lock taken
 * by the thread that holds the write lock nests inside it (no deadlock); a
 * second write lock from that thread fails with NG_EBUSY. */
void ngi_read_lock(ng_runtime *rt);
/* The read lock for a hold that runs callbacks (ng_*_each): the same as
 * ngi_read_lock, but it first makes room to track the holds the callbacks
 * may nest inside it, so nesting over any number of runtimes stays safe.
 * NG_OK, or NG_ENOMEM (recorded for `func`) with no lock taken. */
ng_status ngi_read_lock_cb(ng_runtime *rt, const char *func);
void ngi_read_unlock(ng_runtime *rt);
ng_status ngi_write_lock(ng_runtime *rt, const char *func);
/* ngi_write_lock without refusing while the journal is failed: for
 * ng_checkpoint, the way out of that state. */
ng_status ngi_write_lock_checkpoint(ng_runtime *rt, const char *func);
/* Release; the outermost hold publishes its commit to the feed (and the
 * journal, which may then fsync or checkpoint after the lock is released). */
void ngi_write_unlock(ng_runtime *rt);
/* Transactions (txn.c): mark this thread's write hold on rt as an open
 * transaction's (or no longer). While marked, a write call of this thread
 * that is not inside an iteration callback nests in the hold instead of
 * failing: ngi_txn_enter runs before it and ngi_txn_leave after it, told
 * whether it reported NG_ENOMEM. The write sequence stays odd throughout, so
 * no reader, not even ng_token_get's optimistic one, sees a partial
 * transaction. */
void ngi_txn_hold(const ng_runtime *rt, bool on);
/* Room in this thread's hold table for a transaction's hold (it lasts, so a
 * thread may keep any number open, one per runtime) and the one hold a
 * write inside it may add. NG_OK or NG_ENOMEM (recorded for func). */
ng_status ngi_txn_hold_room(const ng_runtime *rt, const char *func);
/* Whether this thread holds rt's open transaction. */
bool ngi_txn_holds(const ng_runtime *rt);

/* Clock: Unix seconds from the configured clock; the 32-bit form saturates. */
uint64_t ngi_now(const ng_runtime *rt);
uint32_t ngi_now32(const ng_runtime *rt);

/* Inline even where the compiler would not (a hot path's per-point test,
 * called from several loops); plain inline where it has no such attribute. */
#if defined(__GNUC__) || defined(__clang__)
#define NGI_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define NGI_ALWAYS_INLINE inline
#endif

/* A cache prefetch hint for writing (no-op where the compiler has none). */
#if defined(__GNUC__) || defined(__clang__)
#define NGI_PREFETCH(p) __builtin_prefetch((p), 1, 3)
#define NGI_PREFETCH_READ(p) __builtin_prefetch((p), 0, 3) /* for reading */
#else
#define NGI_PREFETCH(p) ((void)(p))
#define NGI_PREFETCH_READ(p) ((void)(p))
#endif

/* True for a finite float (no NaN, no infinity). */
static inline int ngi_finite(float v) {
  return v - v == 0.0f;
}

/* ---- what runtime.c needs to create and free a runtime --------------------- */

/* Initialise a runtime's lock: writer-preferring where the C library offers
 * it (a game loop's one writer must not starve behind a steady stream of
 * query threads). 0 or an error number. */
int ngi_lock_init(pthread_rwlock_t *lock);
/* Unix seconds from `clock` (NULL: time(NULL)), before a runtime exists. */
uint64_t ngi_clock_now(ng_clock_fn clock, void *ud);
/* Drop this thread's error tag for rt (a runtime being freed), so a later
 * runtime at the same address does not inherit its last error. */
void ngi_forget_errors(const ng_runtime *rt);

/* ---- bulk fills ------------------------------------------------------------ */

/* Hint that the fresh, untouched block [p, p+size) (any
 * allocator) is about to be filled in bulk, so the kernel may back it with
 * huge pages (far fewer page faults). Never fails, never changes contents. */
void ngi_advise_bulk(void *p, size_t size);

#endif /* NG_CORE_BASE_H */

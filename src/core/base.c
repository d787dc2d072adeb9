/* The services every file of the core uses: allocation through the
 * runtime's allocator with byte accounting, the last error, the runtime's
 * lock, the clock, and the bulk-fill hint. No lifecycle here (runtime.c). */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np, where glibc has it */
#include "internal.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* ---- allocation ----------------------------------------------------------- */

void *ngi_default_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

/* Raise the in-use figure and the peak with it; lock-free because readers
 * allocate query buffers in parallel under the read lock. */
static void account_add(ng_runtime *rt, size_t n) {
  size_t now = atomic_fetch_add(&rt->bytes_in_use, n) + n;
  size_t peak = atomic_load(&rt->bytes_peak);
  while (now > peak && !atomic_compare_exchange_weak(&rt->bytes_peak, &peak, now)) {
  }
}

static void account_sub(ng_runtime *rt, size_t n) {
  atomic_fetch_sub(&rt->bytes_in_use, n);
}

/* A request for 0 bytes is served as 1 byte everywhere (alloc, realloc and
 * free agree), so a successful call never returns NULL and the accounting
 * stays exact. */
static size_t real_size(size_t n) {
  return n ? n : 1;
}

void *ngi_alloc(ng_runtime *rt, size_t size) {
  size = real_size(size);
  void *p = rt->alloc(rt->alloc_ud, NULL, 0, size);
  if (p) account_add(rt, size);
  return p;
}

void *ngi_realloc(ng_runtime *rt, void *p, size_t old_size, size_t new_size) {
  if (!p) return ngi_alloc(rt, new_size);
  old_size = real_size(old_size);
  new_size = real_size(new_size);
  void *q = rt->alloc(rt->alloc_ud, p, old_size, new_size);
  if (!q) return NULL;
  if (new_size > old_size)
    account_add(rt, new_size - old_size);
  else
    account_sub(rt, old_size - new_size);
  return q;
}

void ngi_free(ng_runtime *rt, void *p, size_t size) {
  if (!p) return;
  size = real_size(size);
  rt->alloc(rt->alloc_ud, p, size, 0);
  account_sub(rt, size);
}

void *ngi_alloc_array(ng_runtime *rt, size_t n, size_t elem) {
  if (elem && n > SIZE_MAX / elem) return NULL;
  return ngi_alloc(rt, n * elem);
}

void *ngi_realloc_array(ng_runtime *rt, void *p, size_t old_n, size_t new_n, size_t elem) {
  if (elem && (new_n > SIZE_MAX / elem || old_n > SIZE_MAX / elem)) return NULL;
  return ngi_realloc(rt, p, old_n * elem, new_n * elem);
}

/* ---- errors --------------------------------------------------------------- */

/* The calling thread's last failure and the runtime it happened on (NULL for
 * calls without one). Thread-local, so no runtime needs a per-thread table. */
static _Thread_local struct {
  const ng_runtime *rt;
  int set;
  int enomem;    /* an NG_ENOMEM was reported since the last write nested in a transaction began */
  size_t detail; /* offset of the detail in msg, past the "function: " prefix */
  char msg[256];
} last_error;

ng_status ngi_fail(const ng_runtime *rt, ng_status status, const char *fmt, ...) {
  /* Format into a local buffer first: the arguments may point into
   * last_error.msg (a caller prefixing the previous message). */
  char buf[sizeof last_error.msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  memcpy(last_error.msg, buf, sizeof buf);
  last_error.rt = rt;
  last_error.set = 1;
  if (status == NG_ENOMEM) last_error.enomem = 1;
  /* Every message starts "function: " (a C identifier); the detail is the rest. */
  size_t n = strspn(buf, "abcdefghijklmnopqrstuvwxyz0123456789_");
  last_error.detail = n > 0 && buf[n] == ':' && buf[n + 1] == ' ' ? n + 2 : 0;
  return status;
}

ng_status ngi_check_id(const ng_runtime *rt, const char *fn, ng_id id) {
  if (ngi_id_valid(id)) return NG_OK;
  return ngi_fail(rt, NG_EINVAL, "%s: id must be within 1..2^53-1, got %llu", fn,
                  (unsigned long long)id);
}

const char *ng_last_error(const ng_runtime *rt) {
  if (!last_error.set) return "";
  if (rt && last_error.rt != rt) return "";
  return last_error.msg;
}

const char *ng_last_error_detail(const ng_runtime *rt) {
  const char *msg = ng_last_error(rt);
  return msg[0] != '\0' ? msg + last_error.detail : msg;
}

const char *ng_strerror(ng_status status) {
  switch (status) {
  case NG_OK:
    return "ok";
  case NG_ENOTFOUND:
    return "not found";
  case NG_EINVAL:
    return "invalid argument";
  case NG_EEXIST:
    return "already exists";
  case NG_ELIMIT:
    return "limit reached";
  case NG_ENOMEM:
    return "out of memory";
  case NG_EIO:
    return "I/O error";
  case NG_ECORRUPT:
    return "corrupt file";
  case NG_EVERSION:
    return "unsupported format version";
  case NG_EBUSY:
    return "busy: the runtime is held by this thread (an iteration callback, an open transaction)";
  }
  return "unknown status";
}

void ngi_forget_errors(const ng_runtime *rt) {
  if (last_error.rt == rt) last_error.rt = NULL;
}

/* ---- locking -------------------------------------------------------------- */

/* The runtimes this thread holds locks on, packed in held[0..held_n): the
 * nesting depth, and whether the outermost hold is the write lock. Only the
 * outermost lock call takes the pthread lock, so a callback that reads again
 * never queues behind a waiting writer (which would deadlock), and a read
 * made by the thread that holds the write lock is simply nested in it.
 *
 * Every hold is tracked, however many runtimes a thread nests: the table
 * lives in HELD_INLINE thread-local entries and moves to a malloc'd array
 * (thread state, not any one runtime's memory: it may outlive the runtime
 * that grew it) only while callbacks and open transactions hold more
 * runtimes than that. It grows only in ngi_read_lock_cb and
 * ngi_txn_hold_room, which can report NG_ENOMEM, and always keeps one spare
 * entry there: callbacks and transactions are the only ways holds stack up,
 * and the code inside them takes at most one more hold at a time, so
 * ngi_read_lock and ngi_write_lock always find a free entry. The array is
 * freed when the thread's last hold ends. */
#define HELD_INLINE 16
typedef struct held_entry {
  const ng_runtime *rt;
  unsigned depth;
  int writer;
  int txn; /* the write hold of an open transaction: this thread's writes nest in it */
} held_entry;
static _Thread_local held_entry held_inline[HELD_INLINE];
static _Thread_local held_entry *held_heap; /* NULL: the table is held_inline */
static _Thread_local size_t held_heap_cap;
static _Thread_local size_t held_n;

static held_entry *held_table(void) {
  return held_heap ? held_heap : held_inline;
}

static int held_find(const ng_runtime *rt) {
  const held_entry *h = held_table();
  for (size_t i = 0; i < held_n; i++)
    if (h[i].rt == rt) return (int)i;
  return -1;
}

static void held_push(const ng_runtime *rt, int writer) {
  assert(held_n < (held_heap ? held_heap_cap : HELD_INLINE));
  held_entry *h = held_table();
  h[held_n].rt = rt;
  h[held_n].depth = 1;
  h[held_n].writer = writer;
  h[held_n].txn = 0;
  held_n++;
}

static void held_remove(int i) {
  held_entry *h = held_table();
  h[i] = h[--held_n];
  if (held_n == 0 && held_heap) {
    free(held_heap);
    held_heap = NULL;
    held_heap_cap = 0;
  }
}

/* Room for a callback hold and the one hold its callback may add. */
static int held_reserve(void) {
  size_t need = held_n + 2;
  size_t cap = held_heap ? held_heap_cap : HELD_INLINE;
  if (need <= cap) return 0;
  size_t ncap = cap * 2 > need ? cap * 2 : need;
  held_entry *grown = malloc(ncap * sizeof *grown);
  if (!grown) return -1;
  memcpy(grown, held_table(), held_n * sizeof *grown);
  free(held_heap);
  held_heap = grown;
  held_heap_cap = ncap;
  return 0;
}

/* Writer preference (see base.h) is safe with the nesting above, which never
 * re-acquires a lock this thread holds (the case glibc's non-recursive writer
 * preference would deadlock on). */
int ngi_lock_init(pthread_rwlock_t *lock) {
  pthread_rwlockattr_t attr;
  if (pthread_rwlockattr_init(&attr) != 0) return -1;
#if defined(__GLIBC__) && defined(__USE_GNU)
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
  int rc = pthread_rwlock_init(lock, &attr);
  pthread_rwlockattr_destroy(&attr);
  return rc;
}

void ngi_read_lock(ng_runtime *rt) {
  int i = held_find(rt);
  if (i >= 0) {
    held_table()[i].depth++;
    return;
  }
  pthread_rwlock_rdlock(&rt->lock);
  held_push(rt, 0);
}

ng_status ngi_read_lock_cb(ng_runtime *rt, const char *func) {
  if (held_reserve() != 0)
    return ngi_fail(rt, NG_ENOMEM, "%s: out of memory tracking %zu nested runtimes", func,
                    held_n + 1);
  ngi_read_lock(rt);
  return NG_OK;
}

void ngi_read_unlock(ng_runtime *rt) {
  int i = held_find(rt);
  assert(i >= 0);
  if (--held_table()[i].depth > 0) return;
  held_remove(i);
  pthread_rwlock_unlock(&rt->lock);
}

/* ngi_write_lock; `journaled`: refuse while a journal is failed (every
 * write but the checkpoint that clears the failure). */
static ng_status write_lock(ng_runtime *rt, const char *func, bool journaled) {
  int i = held_find(rt);
  if (i >= 0) {
    held_entry *h = &held_table()[i];
    /* The owner's write inside its transaction, not inside a callback. */
    if (h->txn && h->depth == 1) {
      ng_status st = ngi_txn_enter(rt, func);
      if (st != NG_OK) return st;
      h->depth++;
      last_error.enomem = 0;
      ngi_count_write(&rt->metrics);
      return NG_OK;
    }
    return ngi_fail(rt, NG_EBUSY, "%s: cannot modify the store from inside %s", func,
                    h->writer && !h->txn ? "another write" : "an iteration callback");
  }
  pthread_rwlock_wrlock(&rt->lock);
  if (journaled && rt->journal) {
    ng_status st = ngi_journal_refuse(rt, func);
    if (st != NG_OK) {
      pthread_rwlock_unlock(&rt->lock);
      return st;
    }
  }
  /* Odd before any write of this hold: the fence orders the store before the
   * writes that follow, for an optimistic reader that reads them, fences and
   * then sees the sequence changed (the seqlock writer's side). This is
   * always the outermost hold: a nested write lock fails above. */
  unsigned seq = atomic_load_explicit(&rt->wseq, memory_order_relaxed);
  atomic_store_explicit(&rt->wseq, seq + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  held_push(rt, 1);
  ngi_ev_begin(rt);
  ngi_count_write(&rt->metrics);
  return NG_OK;
}

ng_status ngi_write_lock(ng_runtime *rt, const char *func) {
  return write_lock(rt, func, true);
}

ng_status ngi_write_lock_checkpoint(ng_runtime *rt, const char *func) {
  return write_lock(rt, func, false);
}

void ngi_write_unlock(ng_runtime *rt) {
  int i = held_find(rt);
  assert(i >= 0);
  if (held_table()[i].depth > 1) { /* a write nested in this thread's transaction */
    held_table()[i].depth--;
    ngi_txn_leave(rt, last_error.enomem != 0);
    return;
  }
  held_remove(i);
  /* The hold's commit goes to the feed, before any reader can see it. */
  if (rt->ev.rec) ngi_ev_publish(rt);
  /* Even again, after every write of this hold (release). */
  unsigned seq = atomic_load_explicit(&rt->wseq, memory_order_relaxed);
  atomic_store_explicit(&rt->wseq, seq + 1, memory_order_release);
  pthread_rwlock_unlock(&rt->lock);
  if (rt->journal) ngi_journal_after_commit(rt);
}

ng_status ngi_txn_hold_room(const ng_runtime *rt, const char *func) {
  if (held_reserve() != 0)
    return ngi_fail(rt, NG_ENOMEM, "%s: out of memory tracking %zu held runtimes", func,
                    held_n + 1);
  return NG_OK;
}

void ngi_txn_hold(const ng_runtime *rt, bool on) {
  int i = held_find(rt);
  assert(i >= 0 && held_table()[i].writer);
  held_table()[i].txn = on;
}

bool ngi_txn_holds(const ng_runtime *rt) {
  int i = held_find(rt);
  return i >= 0 && held_table()[i].txn;
}

/* ---- clock ---------------------------------------------------------------- */

uint64_t ngi_clock_now(ng_clock_fn clock, void *ud) {
  if (clock) return clock(ud);
  time_t t = time(NULL);
  return t > 0 ? (uint64_t)t : 0;
}

uint64_t ngi_now(const ng_runtime *rt) {
  return ngi_clock_now(rt->clock, rt->clock_ud);
}

uint32_t ngi_now32(const ng_runtime *rt) {
  uint64_t t = ngi_now(rt);
  return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

uint64_t ng_runtime_now(ng_runtime *rt) {
  return rt ? ngi_now(rt) : 0;
}

/* ---- bulk fills ------------------------------------------------------------ */

/* A load fills a few hundred fresh megabytes at once, and on Linux the page
 * faults of 4 KiB pages cost more than the copying itself. Asking for huge
 * pages on the 2 MiB-aligned interior of a block just allocated (and not yet
 * touched) makes a fault cover 2 MiB. Only a hint: the contents and the
 * block's owner are unaffected, memory outside the block is never named,
 * and where the kernel refuses (not anonymous memory, THP disabled) nothing
 * changes. */
void ngi_advise_bulk(void *p, size_t size) {
#if defined(MADV_HUGEPAGE)
  const uintptr_t huge = (uintptr_t)1 << 21;
  if (!p || size < 2 * huge) return;
  uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1);
  uintptr_t hi = ((uintptr_t)p + size) & ~(huge - 1);
  if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
  (void)p;
  (void)size;
#endif
}

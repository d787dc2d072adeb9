/* The runtime: allocation accounting, last errors, locking, clock, lifecycle and its CDNA. */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np, where glibc has it */
#include "internal.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- allocation ----------------------------------------------------------- */

/* realloc/free behind the lua_Alloc signature, used when the host gives none. */
static void *default_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
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
  /* Every message starts "function: " (a C identifier); the detail is the rest. */
  size_t n = strspn(buf, "abcdefghijklmnopqrstuvwxyz0123456789_");
  last_error.detail = n > 0 && buf[n] == ':' && buf[n + 1] == ' ' ? n + 2 : 0;
  return status;
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
    return "busy: write attempted inside an iteration callback";
  }
  return "unknown status";
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
 * that grew it) only while callbacks nest more runtimes than that. It grows
 * only in ngi_read_lock_cb, which can report NG_ENOMEM, and always keeps one
 * spare entry there: callbacks are the only way holds nest, and the code they
 * run takes at most one more hold at a time, so ngi_read_lock and
 * ngi_write_lock always find a free entry. The array is freed when the
 * thread's last hold ends. */
#define HELD_INLINE 16
typedef struct held_entry {
  const ng_runtime *rt;
  unsigned depth;
  int writer;
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

/* A writer-preferring lock where the C library offers one: a game loop's one
 * writer must not starve behind a steady stream of query threads. Safe with
 * the nesting above, which never re-acquires a lock this thread holds (the
 * case glibc's non-recursive writer preference would deadlock on). */
static int init_lock(pthread_rwlock_t *lock) {
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

ng_status ngi_write_lock(ng_runtime *rt, const char *func) {
  int i = held_find(rt);
  if (i >= 0)
    return ngi_fail(rt, NG_EBUSY, "%s: cannot modify the store from inside %s", func,
                    held_table()[i].writer ? "another write" : "an iteration callback");
  pthread_rwlock_wrlock(&rt->lock);
  /* Odd before any write of this hold: the fence orders the store before the
   * writes that follow, for an optimistic reader that reads them, fences and
   * then sees the sequence changed (the seqlock writer's side). This is
   * always the outermost hold: a nested write lock fails above. */
  unsigned seq = atomic_load_explicit(&rt->wseq, memory_order_relaxed);
  atomic_store_explicit(&rt->wseq, seq + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  held_push(rt, 1);
  return NG_OK;
}

void ngi_write_unlock(ng_runtime *rt) {
  int i = held_find(rt);
  assert(i >= 0);
  held_remove(i);
  /* Even again, after every write of this hold (release). */
  unsigned seq = atomic_load_explicit(&rt->wseq, memory_order_relaxed);
  atomic_store_explicit(&rt->wseq, seq + 1, memory_order_release);
  pthread_rwlock_unlock(&rt->lock);
}

/* ---- clock ---------------------------------------------------------------- */

static uint64_t clock_now(ng_clock_fn clock, void *ud) {
  if (clock) return clock(ud);
  time_t t = time(NULL);
  return t > 0 ? (uint64_t)t : 0;
}

uint64_t ngi_now(const ng_runtime *rt) {
  return clock_now(rt->clock, rt->clock_ud);
}

uint32_t ngi_now32(const ng_runtime *rt) {
  uint64_t t = ngi_now(rt);
  return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

uint64_t ng_runtime_now(ng_runtime *rt) {
  return rt ? ngi_now(rt) : 0;
}

/* ---- lifecycle ------------------------------------------------------------ */

/* Free every part of a runtime that exists (parts may be missing when
 * ng_runtime_new failed half way), then the lock and the runtime itself. */
static void runtime_destroy(ng_runtime *rt, int lock_ready) {
  for (int s = 0; s < NG_SPACES; s++)
    if (rt->grids[s]) ngi_grid_destroy(rt, rt->grids[s]);
  if (rt->conns) ngi_conns_destroy(rt, rt->conns);
  ngi_tokens_destroy(rt, &rt->tokens);
  if (lock_ready) pthread_rwlock_destroy(&rt->lock);
  /* Forget this thread's error tag so a later runtime at the same address
   * does not inherit it. */
  if (last_error.rt == rt) last_error.rt = NULL;
  ng_alloc_fn alloc = rt->alloc;
  void *ud = rt->alloc_ud;
  alloc(ud, rt, sizeof *rt, 0);
}

/* needs: out; cfg may be NULL (defaults).
 * guarantees: *out is a runtime with one reference, an empty store and the
 * configured (or profile's) CDNA.
 * fails: NG_EINVAL for an unknown profile or an invalid cfg->cdna (reason in
 * ng_last_error(NULL)), NG_ENOMEM; *out is then NULL and nothing is leaked. */
ng_status ng_runtime_new(const ng_config *cfg, ng_runtime **out) {
  static const ng_config defaults;
  if (!out) return ngi_fail(NULL, NG_EINVAL, "ng_runtime_new: out must not be NULL");
  *out = NULL;
  if (!cfg) cfg = &defaults;

  ng_cdna cdna;
  if (cfg->cdna) {
    char why[160];
    if (ng_cdna_validate(cfg->cdna, why, sizeof why) != NG_OK)
      return ngi_fail(NULL, NG_EINVAL, "ng_runtime_new: invalid cdna: %s", why);
    cdna = *cfg->cdna;
  } else if (ng_cdna_init(&cdna, cfg->profile, clock_now(cfg->clock, cfg->clock_ud)) != NG_OK) {
    return ngi_fail(NULL, NG_EINVAL, "ng_runtime_new: unknown profile %u", (unsigned)cfg->profile);
  }

  ng_alloc_fn alloc = cfg->alloc ? cfg->alloc : default_alloc;
  ng_runtime *rt = alloc(cfg->alloc_ud, NULL, 0, sizeof *rt);
  if (!rt) return ngi_fail(NULL, NG_ENOMEM, "ng_runtime_new: out of memory");
  memset(rt, 0, sizeof *rt);
  rt->alloc = alloc;
  rt->alloc_ud = cfg->alloc_ud;
  rt->clock = cfg->clock;
  rt->clock_ud = cfg->clock_ud;
  atomic_init(&rt->refs, 1);
  atomic_init(&rt->bytes_in_use, sizeof *rt);
  atomic_init(&rt->bytes_peak, sizeof *rt);
  atomic_init(&rt->wseq, 0u);
  rt->cdna = cdna;

  if (init_lock(&rt->lock) != 0) {
    runtime_destroy(rt, 0);
    return ngi_fail(NULL, NG_ENOMEM, "ng_runtime_new: cannot create the lock");
  }
  ng_status st = ngi_tokens_init(rt, &rt->tokens, cfg->initial_tokens);
  if (st == NG_OK) st = ngi_conns_new(rt, cfg->initial_connections, &rt->conns);
  for (int s = 0; s < NG_SPACES && st == NG_OK; s++)
    st = ngi_grid_new(rt, s, rt->cdna.bucket_sizes[s], &rt->grids[s]);
  if (st != NG_OK) {
    runtime_destroy(rt, 1);
    return ngi_fail(NULL, st, "ng_runtime_new: %s", ng_strerror(st));
  }
  *out = rt;
  return NG_OK;
}

ng_runtime *ng_runtime_retain(ng_runtime *rt) {
  if (rt) atomic_fetch_add(&rt->refs, 1);
  return rt;
}

void ng_runtime_release(ng_runtime *rt) {
  if (!rt) return;
  if (atomic_fetch_sub(&rt->refs, 1) == 1) runtime_destroy(rt, 1);
}

ng_status ng_runtime_stats(ng_runtime *rt, ng_stats *out) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "ng_runtime_stats: runtime must not be NULL");
  if (!out) return ngi_fail(rt, NG_EINVAL, "ng_runtime_stats: out must not be NULL");
  ngi_read_lock(rt);
  out->tokens = rt->tokens.live;
  out->connections = ngi_conns_count(rt->conns);
  out->bytes_in_use = atomic_load(&rt->bytes_in_use);
  out->bytes_peak = atomic_load(&rt->bytes_peak);
  const ngi_idgen *ti = &rt->tokens.ids, *ci = ngi_conns_ids(rt->conns);
  if (ngi_idgen_peek(ti, &out->next_token_id) != NG_OK) out->next_token_id = 0;
  if (ngi_idgen_peek(ci, &out->next_connection_id) != NG_OK) out->next_connection_id = 0;
  out->token_slots_free = ngi_idgen_free_count(ti);
  out->token_slots_retired = (size_t)ti->retired;
  out->connection_slots_free = ngi_idgen_free_count(ci);
  out->connection_slots_retired = (size_t)ci->retired;
  ngi_read_unlock(rt);
  return NG_OK;
}

/* ---- the runtime's CDNA --------------------------------------------------- */

ng_status ng_cdna_get(ng_runtime *rt, ng_cdna *out) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "ng_cdna_get: runtime must not be NULL");
  if (!out) return ngi_fail(rt, NG_EINVAL, "ng_cdna_get: out must not be NULL");
  ngi_read_lock(rt);
  *out = rt->cdna;
  ngi_read_unlock(rt);
  return NG_OK;
}

/* needs: the write lock; `next` the wanted CDNA.
 * guarantees: created_at kept, modified_at = now (never before created_at),
 * checksum recomputed; the grids of spaces whose bucket size changed are
 * rebuilt, all of them built before any is swapped in.
 * fails: NG_EINVAL (validation), NG_ENOMEM; the runtime is then unchanged. */
static ng_status cdna_apply(ng_runtime *rt, ng_cdna *next, const char *func) {
  next->created_at = rt->cdna.created_at;
  uint64_t now = ngi_now(rt);
  next->modified_at = now < next->created_at ? next->created_at : now;
  next->checksum = ng_cdna_checksum(next);
  char why[160];
  if (ng_cdna_validate(next, why, sizeof why) != NG_OK)
    return ngi_fail(rt, NG_EINVAL, "%s: %s", func, why);

  ngi_grid *fresh[NG_SPACES] = {0};
  for (int s = 0; s < NG_SPACES; s++) {
    if (memcmp(&next->bucket_sizes[s], &rt->cdna.bucket_sizes[s], sizeof(float)) == 0) continue;
    /* The fresh index indexes every live token itself, at its first query. */
    ng_status st = ngi_grid_new(rt, s, next->bucket_sizes[s], &fresh[s]);
    if (st != NG_OK) {
      for (int k = 0; k < s; k++)
        if (fresh[k]) ngi_grid_destroy(rt, fresh[k]);
      return ngi_fail(rt, st, "%s: rebuilding the grid of %s: %s", func, ng_space_name(s),
                      ng_strerror(st));
    }
  }
  for (int s = 0; s < NG_SPACES; s++) {
    if (!fresh[s]) continue;
    ngi_grid_destroy(rt, rt->grids[s]);
    rt->grids[s] = fresh[s];
  }
  rt->cdna = *next;
  return NG_OK;
}

ng_status ng_cdna_set(ng_runtime *rt, const ng_cdna *c) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "ng_cdna_set: runtime must not be NULL");
  if (!c) return ngi_fail(rt, NG_EINVAL, "ng_cdna_set: cdna must not be NULL");
  ng_cdna next = *c;
  ng_status st = ngi_write_lock(rt, "ng_cdna_set");
  if (st != NG_OK) return st;
  st = cdna_apply(rt, &next, "ng_cdna_set");
  ngi_write_unlock(rt);
  return st;
}

/* The preset over the current CDNA: what the profile does not define (scales,
 * bucket sizes, limits the caller set) stays; ng_cdna_init + ng_cdna_set is
 * the way back to every default. */
ng_status ng_cdna_set_profile(ng_runtime *rt, uint32_t profile) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "ng_cdna_set_profile: runtime must not be NULL");
  if (!ng_profile_name(profile))
    return ngi_fail(rt, NG_EINVAL, "ng_cdna_set_profile: unknown profile %u", (unsigned)profile);
  ng_status st = ngi_write_lock(rt, "ng_cdna_set_profile");
  if (st != NG_OK) return st;
  ng_cdna next = rt->cdna;
  ngi_cdna_apply_preset(&next, profile);
  st = cdna_apply(rt, &next, "ng_cdna_set_profile");
  ngi_write_unlock(rt);
  return st;
}

/* The write-ahead journal: appending records through a shared mapping, and
 * syncing (design in journal.h, bytes in journal_format.h and
 * docs/format.md; reading them back in journal_replay.c). */
#define _GNU_SOURCE /* fdatasync, posix_fallocate */
#include "conn_table.h"
#include "internal.h"
#include "journal_format.h"
#include "snapshot_format.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- failures ----------------------------------------------------------- */

/* Mark the journal failed (writes refused until a checkpoint) with a reason. */
static void journal_fail(ngi_journal *j, ng_status st, const char *what, int e) {
  char ebuf[128];
  j->failed = st;
  snprintf(j->why, sizeof j->why, "%s%s%s", what, e ? ": " : "",
           e ? errstr(e, ebuf, sizeof ebuf) : "");
}

ng_status ngi_journal_refuse(ng_runtime *rt, const char *fn) {
  ngi_journal *j = rt->journal;
  if (j->failed == NG_OK) return NG_OK;
  return ngi_fail(rt, NG_EIO,
                  "%s: the journal failed (%s); the store refuses writes until a checkpoint "
                  "succeeds",
                  fn, j->why);
}

/* ---- files ------------------------------------------------------------- */

static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int e = 0;
  if (fsync(fd) != 0 && errno != EINVAL) e = errno;
  close(fd);
  return e;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

ng_status ngi_journal_create_file(ng_runtime *rt, const char *fn, uint64_t number,
                                  uint64_t first_commit, int *fd_out) {
  ngi_journal *j = rt->journal;
  char path[4096], tmp[4096], ebuf[128];
  snprintf(path, sizeof path, "%s/journal-%020llu.ngj", j->dir, (unsigned long long)number);
  snprintf(tmp, sizeof tmp, "%s/.journal-%020llu.tmp", j->dir, (unsigned long long)number);
  unsigned char h[NGI_JOURNAL_HEADER];
  memset(h, 0, sizeof h);
  memcpy(h, journal_magic, sizeof journal_magic);
  wr16(h + JH_MAJOR, J_MAJOR);
  wr16(h + JH_MINOR, J_MINOR);
  wr32(h + JH_SIZE, NGI_JOURNAL_HEADER);
  wr32(h + JH_ENDIAN, SNAP_ENDIAN);
  wr64(h + JH_NUMBER, number);
  wr64(h + JH_FIRST, first_commit);
  wr32(h + JH_CRC, ngi_crc32c(0, h, JH_CRC));
  const char *what = "creating";
  int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666), e = fd < 0 ? errno : 0;
  if (!e && (e = write_all(fd, h, sizeof h)) != 0) what = "writing";
  if (!e && fsync(fd) != 0) e = errno, what = "syncing";
  if (!e && rename(tmp, path) != 0) e = errno, what = "renaming into place";
  if (!e && (e = sync_dir(j->dir)) != 0) what = "syncing the directory of";
  if (e) {
    if (fd >= 0) close(fd);
    unlink(tmp);
    return ngi_fail(rt, NG_EIO, "%s: %s %s: %s", fn, what, path, errstr(e, ebuf, sizeof ebuf));
  }
  *fd_out = fd;
  return NG_OK;
}

/* The file's growth: at least 1 MiB, doubling up to 64 MiB a step. */
static size_t grown_size(size_t cur, size_t need) {
  size_t step = cur < ((size_t)1 << 20) ? (size_t)1 << 20 : cur;
  if (step > (size_t)64 << 20) step = (size_t)64 << 20;
  size_t n = cur + step;
  if (n < need) n = align8(need) + step;
  return n;
}

/* The address space reserved for the windows (more for a record that needs
 * it). Pages the writer left behind are unmapped when it moves on: the
 * kernel then writes them back (fdatasync) without having to write-protect
 * them in this process first (a TLB flush on every CPU running it, for
 * every page). */
enum { WINDOW = NGI_JOURNAL_WINDOW, AHEAD = NGI_JOURNAL_AHEAD, RESERVE = 64 << 20 };

static size_t page_size(void) {
  return (size_t)sysconf(_SC_PAGESIZE);
}

/* n rounded up to whole windows. */
static size_t whole_windows(size_t n) {
  return (n + WINDOW - 1) / WINDOW * WINDOW;
}

/* Give [p, p + n) of the reservation back to inaccessible reserved space. */
static void unmap_span(unsigned char *p, size_t n) {
  if (n)
    (void)mmap(p, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

/* Map file bytes [off, off + len) of j->fd writable at their place in the
 * reservation. The file grows first when it is shorter (*file_len: its
 * size, updated), its new blocks allocated on disk (posix_fallocate), so
 * writing into the mapping can never meet a full disk (SIGBUS). The pages
 * are faulted in writable by one madvise(MADV_POPULATE_WRITE) rather than one
 * page fault each. Needs ahead_lock, or `busy`. Returns 0 or an error number. */
static int map_window(ngi_journal *j, size_t off, size_t len, size_t *file_len) {
  if (off + len > *file_len) {
    size_t grown = grown_size(*file_len, off + len);
    int e = posix_fallocate(j->fd, 0, (off_t)grown);
    if (e) return e;
    *file_len = grown;
  }
  unsigned char *at = j->va + (off - j->va_off);
  if (mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, j->fd, (off_t)off) ==
      MAP_FAILED) {
    int e = errno;
    /* A failed MAP_FIXED may have unmapped the span already: reserve it
     * again, so that no other mapping can take the hole that closing the
     * journal would unmap with the rest of the reservation. */
    unmap_span(at, len);
    return e;
  }
#if defined(MADV_POPULATE_WRITE)
  (void)madvise(at, len, MADV_POPULATE_WRITE); /* a hint: older kernels say EINVAL */
#endif
  return 0;
}

/* Start the mapping afresh at file offset off (page-aligned) with [off,
 * need) in it: the reservation is emptied, or replaced by a larger one when
 * it has no room for that and the windows after it; va[0] is then file
 * byte off. Needs ahead_lock and not `busy`. Returns 0 or an error number
 * (nothing mapped). */
static int remap_at(ngi_journal *j, size_t off, size_t need) {
  size_t page = page_size();
  size_t len = need - off > WINDOW ? (need - off + page - 1) & ~(page - 1) : WINDOW;
  j->map_off = j->mapped_from = j->ready_to = off;
  j->map_len = 0;
  if (j->va_len < len + AHEAD * WINDOW) {
    size_t n = len + AHEAD * WINDOW > RESERVE ? 2 * len + AHEAD * WINDOW : RESERVE;
    void *r = mmap(NULL, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) return errno;
    if (j->va) munmap(j->va, j->va_len);
    j->va = r;
    j->va_len = n;
  } else {
    unmap_span(j->va, j->va_len);
  }
  j->va_off = off;
  int e = map_window(j, off, len, &j->file_len);
  if (e) return e;
  j->map_len = len;
  j->ready_to = off + len;
  return 0;
}

/* Make the mapping cover file bytes [end, need): with the windows the
 * thread prepared (ahead_main) when they reach need, otherwise with windows
 * mapped here after them while the reservation has room, else afresh
 * (remap_at). The window then starts at end's page; the thread unmaps what
 * lies behind and prepares the next windows. Returns 0 or an error number. */
static int map_room(ngi_journal *j, size_t need) {
  size_t hi = j->map_off + j->map_len;
  if (j->map_len && need <= hi) return 0;
  size_t page = page_size(), off = j->end & ~(page - 1);
  int e = 0;
  pthread_mutex_lock(&j->ahead_lock);
  while (j->busy) /* the thread is preparing the next window: wait for it */
    pthread_cond_wait(&j->ahead_done, &j->ahead_lock);
  size_t to = j->ready_to;
  if (j->map_len && need <= to) {
    hi += whole_windows(need - hi); /* prepared windows */
  } else if (j->map_len && to + whole_windows(need - to) <= j->va_off + j->va_len) {
    size_t more = whole_windows(need - to);
    e = map_window(j, to, more, &j->file_len);
    if (!e) hi = j->ready_to = to + more;
  } else {
    e = remap_at(j, off, need);
    hi = j->map_off + j->map_len;
  }
  if (!e) {
    j->map_off = off;
    j->map_len = hi - off;
    j->stalled = false;
    pthread_cond_signal(&j->ahead_wake);
  }
  pthread_mutex_unlock(&j->ahead_lock);
  return e;
}

/* The thread that serves the writer's mapping, in every sync mode: it
 * unmaps the pages the writer left behind, and keeps AHEAD windows after
 * the writer's mapped in place (growing the file when needed), reading one
 * byte of each page through the new mapping. On the VM this project is
 * measured on, the first access to each newly mapped page costs ~10 us (the
 * hypervisor builds its own entry for it) whoever faulted the page in, and
 * MADV_POPULATE_WRITE alone does not pay it; paid here, the writer's stores
 * find the pages ready (docs/performance.md, "Journal"). A failure leaves
 * the next window to the writer, which maps it itself and reports the
 * error. */
static void *ahead_main(void *arg) {
  ngi_journal *j = arg;
  size_t page = page_size();
  pthread_mutex_lock(&j->ahead_lock);
  while (!j->ahead_stop) {
    size_t from = j->mapped_from, upto = j->map_off, to = j->ready_to, file_len = j->file_len;
    bool unmap = j->fd >= 0 && from < upto;
    bool prepare = !unmap && j->fd >= 0 && !j->stalled &&
                   to < j->map_off + j->map_len + AHEAD * WINDOW &&
                   to + WINDOW <= j->va_off + j->va_len;
    if (!unmap && !prepare) {
      pthread_cond_wait(&j->ahead_wake, &j->ahead_lock);
      continue;
    }
    j->busy = true;
    pthread_mutex_unlock(&j->ahead_lock);
    int e = 0;
    if (unmap) {
      unmap_span(j->va + (from - j->va_off), upto - from);
    } else {
      e = map_window(j, to, WINDOW, &file_len);
      for (size_t o = 0; !e && o < WINDOW; o += page)
        (void)((volatile unsigned char *)j->va)[to - j->va_off + o];
    }
    pthread_mutex_lock(&j->ahead_lock);
    j->busy = false;
    j->file_len = file_len;
    if (unmap)
      j->mapped_from = upto;
    else if (e)
      j->stalled = true;
    else
      j->ready_to = to + WINDOW;
    pthread_cond_broadcast(&j->ahead_done);
  }
  pthread_mutex_unlock(&j->ahead_lock);
  return NULL;
}

ng_status ngi_journal_attach_file(ng_runtime *rt, const char *fn, int fd, uint64_t number,
                                  size_t end, uint64_t next_commit) {
  ngi_journal *j = rt->journal;
  char ebuf[128];
  /* Cut what follows the valid part (a torn record, the zeros of a
   * pre-extended file): appends continue at `end`. */
  if (ftruncate(fd, (off_t)end) != 0) {
    int e = errno;
    close(fd);
    return ngi_fail(rt, NG_EIO, "%s: cutting journal %llu at %zu: %s", fn,
                    (unsigned long long)number, end, errstr(e, ebuf, sizeof ebuf));
  }
  pthread_mutex_lock(&j->sync_lock);
  pthread_mutex_lock(&j->ahead_lock);
  j->fd = fd;
  j->file_len = end;
  j->map_off = j->map_len = 0;
  pthread_mutex_unlock(&j->ahead_lock);
  j->end = end;
  int e = map_room(j, end + 1);
  if (e) {
    pthread_mutex_lock(&j->ahead_lock);
    close(fd);
    j->fd = -1;
    pthread_mutex_unlock(&j->ahead_lock);
    pthread_mutex_unlock(&j->sync_lock);
    return ngi_fail(rt, NG_EIO, "%s: mapping journal %llu: %s", fn, (unsigned long long)number,
                    errstr(e, ebuf, sizeof ebuf));
  }
  j->number = number;
  j->next_commit = next_commit;
  j->synced = end;
  atomic_store(&j->written, end);
  atomic_store(
      &j->auto_at,
      end + (j->checkpoint_bytes < SIZE_MAX - end ? (size_t)j->checkpoint_bytes : SIZE_MAX - end));
  pthread_mutex_unlock(&j->sync_lock);
  return NG_OK;
}

void ngi_journal_detach_file(ng_runtime *rt) {
  ngi_journal *j = rt->journal;
  pthread_mutex_lock(&j->sync_lock);
  pthread_mutex_lock(&j->ahead_lock);
  while (j->busy) /* the thread maps into va and grows the file: let it finish */
    pthread_cond_wait(&j->ahead_done, &j->ahead_lock);
  if (j->va) munmap(j->va, j->va_len); /* the window, and those the thread prepared */
  if (j->fd >= 0) {
    /* The pre-extended zeros go; then the file is made durable as it is. */
    (void)ftruncate(j->fd, (off_t)j->end);
    if (j->sync != NG_SYNC_OFF) (void)fdatasync(j->fd);
    close(j->fd);
  }
  j->fd = -1;
  j->va = NULL;
  j->va_len = j->va_off = j->map_off = j->map_len = j->file_len = 0;
  j->mapped_from = j->ready_to = 0;
  j->stalled = false;
  pthread_mutex_unlock(&j->ahead_lock);
  pthread_mutex_unlock(&j->sync_lock);
}

/* ---- syncing ----------------------------------------------------------- */

/* fdatasync what was written since the last sync; sync_lock held. */
static void sync_locked(ngi_journal *j) {
  size_t w = atomic_load(&j->written);
  if (j->fd >= 0 && w > j->synced && fdatasync(j->fd) == 0) j->synced = w;
}

/* The batch mode's group commit: one fdatasync every interval_ms covers
 * every commit appended since the last. */
static void *sync_main(void *arg) {
  ngi_journal *j = arg;
  pthread_mutex_lock(&j->sync_lock);
  while (!j->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)j->interval_ms * 1000000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    pthread_cond_timedwait(&j->wake, &j->sync_lock, &ts);
    if (!j->stop) sync_locked(j);
  }
  pthread_mutex_unlock(&j->sync_lock);
  return NULL;
}

ng_status ngi_journal_init_sync(ngi_journal *j) {
  if (pthread_mutex_init(&j->sync_lock, NULL) != 0) return NG_ENOMEM;
  if (pthread_cond_init(&j->wake, NULL) != 0) goto no_wake;
  if (pthread_mutex_init(&j->ahead_lock, NULL) != 0) goto no_ahead_lock;
  if (pthread_cond_init(&j->ahead_wake, NULL) != 0) goto no_ahead_wake;
  if (pthread_cond_init(&j->ahead_done, NULL) != 0) goto no_ahead_done;
  return NG_OK;
no_ahead_done:
  pthread_cond_destroy(&j->ahead_wake);
no_ahead_wake:
  pthread_mutex_destroy(&j->ahead_lock);
no_ahead_lock:
  pthread_cond_destroy(&j->wake);
no_wake:
  pthread_mutex_destroy(&j->sync_lock);
  return NG_ENOMEM;
}

ng_status ngi_journal_start_thread(ng_runtime *rt) {
  ngi_journal *j = rt->journal;
  if (pthread_create(&j->ahead_thread, NULL, ahead_main, j) != 0) return NG_ENOMEM;
  j->ahead_on = true;
  if (j->sync != NG_SYNC_BATCH) return NG_OK;
  if (pthread_create(&j->thread, NULL, sync_main, j) != 0) return NG_ENOMEM;
  j->thread_on = true;
  return NG_OK;
}

/* Tell a journal thread to stop (its *stop under its lock, then a signal
 * of its condition) and wait for it. */
static void stop_thread(pthread_t t, pthread_mutex_t *lock, pthread_cond_t *wake, bool *stop) {
  pthread_mutex_lock(lock);
  *stop = true;
  pthread_cond_signal(wake);
  pthread_mutex_unlock(lock);
  pthread_join(t, NULL);
}

void ngi_journal_free(ng_runtime *rt) {
  ngi_journal *j = rt->journal;
  if (!j) return;
  ngi_world_end(rt);
  if (j->thread_on) stop_thread(j->thread, &j->sync_lock, &j->wake, &j->stop);
  if (j->ahead_on) stop_thread(j->ahead_thread, &j->ahead_lock, &j->ahead_wake, &j->ahead_stop);
  ngi_journal_detach_file(rt);
  if (j->dir_fd >= 0) close(j->dir_fd); /* and with it the world's lock */
  pthread_cond_destroy(&j->ahead_done);
  pthread_cond_destroy(&j->ahead_wake);
  pthread_mutex_destroy(&j->ahead_lock);
  pthread_cond_destroy(&j->wake);
  pthread_mutex_destroy(&j->sync_lock);
  ngi_free(rt, j->dir, j->dir_size);
  ngi_free(rt, j, sizeof *j);
  rt->journal = NULL;
}

void ngi_journal_after_commit(ng_runtime *rt) {
  ngi_journal *j = rt->journal;
  if (j->sync == NG_SYNC_ALWAYS) {
    pthread_mutex_lock(&j->sync_lock);
    sync_locked(j);
    pthread_mutex_unlock(&j->sync_lock);
  }
  size_t at = atomic_load(&j->auto_at), w = atomic_load(&j->written);
  /* One thread claims the automatic checkpoint; a failed one waits for the
   * journal to grow by checkpoint_bytes again before it is retried. */
  if (w < at || !atomic_compare_exchange_strong(&j->auto_at, &at, SIZE_MAX)) return;
  if (ng_checkpoint(rt) != NG_OK) {
    size_t step = j->checkpoint_bytes < SIZE_MAX - w ? (size_t)j->checkpoint_bytes : SIZE_MAX - w;
    atomic_store(&j->auto_at, w + step);
  }
}

/* ---- appending a commit ------------------------------------------------- */

static unsigned char *put_id(unsigned char *p, int kind, ng_id id) {
  *p = (unsigned char)kind;
  wr64(p + 1, id);
  return p + DEL_BYTES;
}

static unsigned char *put_token(unsigned char *p, ng_id id, uint8_t placed, const ng_token *tok) {
  p = put_id(p, E_TOK_PUT, id);
  *p++ = placed;
  memcpy(p, tok, sizeof *tok);
  return p + sizeof *tok;
}

/* The delta mask of token id's run of events starting at evs[0] (to the
 * next token event of another token, or a delete: the events put_entries
 * writes as one entry), whose final placement is `placed`: the fields its
 * updates wrote, and for each space it moved in, was placed in or left,
 * where it ends (coordinates, or unplaced). The flags and the record's id
 * field go together (the id holds a copy of the flags' entity, and a token
 * may be touched again later in the commit: each entry must leave a valid
 * record) whenever the flags, the entity or the domain were written. */
static uint32_t run_mask(const ng_event *evs, size_t n, ng_id id, uint8_t placed) {
  uint32_t fields = 0, spaces = 0;
  for (size_t i = 0; i < n; i++) {
    const ng_event *ev = &evs[i];
    if (ev->kind == NG_EV_DELETE) break;
    if (ev->kind < NG_EV_CREATE || ev->kind > NG_EV_UNPLACE) continue;
    if (ev->id != id) break;
    if (ev->kind == NG_EV_UPDATE)
      fields |= ev->fields;
    else if (ev->kind != NG_EV_CREATE)
      spaces |= 1u << ev->space;
  }
  uint32_t m = fields & (D_WEIGHT | D_RADIUS | D_STRENGTH | D_TIMESTAMP);
  if (fields & (NG_TF_FLAGS | NG_TF_ENTITY | NG_TF_DOMAIN)) m |= D_FLAGS | D_ID;
  return m | (spaces & placed) | (spaces & ~(uint32_t)placed) << 16;
}

/* Token id's change as a delta of mask m (its record tok, placed in spaces
 * per m), or as a put when that is not shorter. */
static unsigned char *put_token_change(unsigned char *p, ng_id id, uint32_t m, uint8_t placed,
                                       const ng_token *tok) {
  if (delta_bytes(m) >= TOK_PUT_BYTES) return put_token(p, id, placed, tok);
  p = put_id(p, E_TOK_DELTA, id);
  wr32(p, m);
  p += 4;
  const unsigned char *rec = (const unsigned char *)tok;
  for (int s = 0; s < NG_SPACES; s++)
    if (m & D_COORDS(s)) {
      memcpy(p, rec + s * COORD_BYTES, COORD_BYTES);
      p += COORD_BYTES;
    }
  for (size_t k = 0; k < sizeof delta_fields / sizeof delta_fields[0]; k++)
    if (m & delta_fields[k].bit) {
      memcpy(p, rec + delta_fields[k].off, delta_fields[k].size);
      p += delta_fields[k].size;
    }
  return p;
}

static unsigned char *put_conn(unsigned char *p, ng_id id, const ng_connection *c) {
  p = put_id(p, E_CONN_PUT, id);
  memcpy(p, c, sizeof *c);
  return p + sizeof *c;
}

/* The most bytes the entries of evs[0 .. n) can take. */
static size_t entries_bound(const ng_event *evs, size_t n) {
  size_t b = 0;
  bool cdna = false;
  for (size_t i = 0; i < n; i++) {
    switch (evs[i].kind) {
    case NG_EV_CREATE:
    case NG_EV_UPDATE:
    case NG_EV_MOVE:
    case NG_EV_UNPLACE:
      b += TOK_PUT_BYTES;
      break;
    case NG_EV_LINK:
    case NG_EV_LINK_UPDATE:
      b += CONN_PUT_BYTES;
      break;
    case NG_EV_DELETE:
    case NG_EV_UNLINK:
      b += DEL_BYTES;
      break;
    case NG_EV_CDNA:
      cdna = true;
      break;
    default:
      break;
    }
  }
  return b + (cdna ? CDNA_PUT_BYTES : 0);
}

/* The entries of one commit at p, from its events in order: a CDNA change
 * first (the final block: replaying it re-encodes the coordinates of the
 * tokens the commit does not touch, as the change did); a created or touched
 * entity's final state at its first event (an entity created and deleted in
 * the same commit is created as a placeholder, so that its id is taken and
 * given back exactly as the commit did; a token the commit only updated or
 * moved, as a delta of the fields it changed); a delete where it happened (a
 * token's connections are unlinked before it). Returns the end. */
static unsigned char *put_entries(ng_runtime *rt, unsigned char *p, const ng_event *evs, size_t n) {
  const ngi_token_table *t = &rt->tokens;
  ngi_conns *cs = rt->conns;
  for (size_t i = 0; i < n; i++)
    if (evs[i].kind == NG_EV_CDNA) {
      *p = E_CDNA;
      memcpy(p + 1, &rt->cdna, sizeof rt->cdna);
      p += CDNA_PUT_BYTES;
      break;
    }
  ng_id last_tok = 0, last_conn = 0; /* an update's moves follow it: one entry */
  for (size_t i = 0; i < n; i++) {
    const ng_event *ev = &evs[i];
    switch (ev->kind) {
    case NG_EV_CREATE:
    case NG_EV_UPDATE:
    case NG_EV_MOVE:
    case NG_EV_UNPLACE: {
      if (ev->id == last_tok) break;
      last_tok = ev->id;
      const ng_token *tok = ngi_token_lookup(t, ev->id);
      if (tok && ev->kind == NG_EV_CREATE) {
        p = put_token(p, ev->id, ngi_placed(t, NG_TOKEN_SLOT(ev->id)), tok);
      } else if (tok) { /* updated, moved: the fields the run changed */
        uint8_t placed = ngi_placed(t, NG_TOKEN_SLOT(ev->id));
        p = put_token_change(p, ev->id, run_mask(ev, n - i, ev->id, placed), placed, tok);
      } else if (ev->kind == NG_EV_CREATE) {
        ng_token ph;
        ng_token_init(&ph);
        ph.id = ng_make_id(NG_TOKEN_SLOT(ev->id), 0, 0);
        p = put_token(p, ev->id, 0, &ph);
      }
      break;
    }
    case NG_EV_DELETE:
      p = put_id(p, E_TOK_DEL, ev->id);
      last_tok = 0;
      break;
    case NG_EV_LINK:
    case NG_EV_LINK_UPDATE: {
      if (ev->id == last_conn) break;
      last_conn = ev->id;
      uint32_t slot = ngi_conns_find_slot(cs, ev->id);
      if (slot != NGI_NONE) {
        p = put_conn(p, ev->id, &cs->recs[slot]);
      } else if (ev->kind == NG_EV_LINK) {
        ng_connection ph;
        ng_connection_init(&ph);
        ph.token_a_id = NG_TOKEN_SLOT(ev->from);
        ph.token_b_id = NG_TOKEN_SLOT(ev->to);
        ph.connection_type = ev->conn_type;
        p = put_conn(p, ev->id, &ph);
      }
      break;
    }
    case NG_EV_UNLINK:
      p = put_id(p, E_CONN_DEL, ev->id);
      last_conn = 0;
      break;
    default:
      break;
    }
  }
  return p;
}

void ngi_journal_commit(ng_runtime *rt, const ng_event *evs, size_t n, uint64_t dropped) {
  ngi_journal *j = rt->journal;
  if (j->failed != NG_OK) return;
  if (dropped) {
    journal_fail(j, NG_ENOMEM, "a commit's changes were lost for want of memory", 0);
    return;
  }
  size_t bound = REC_HEAD + entries_bound(evs, n);
  int e = map_room(j, j->end + align8(bound));
  if (e) {
    journal_fail(j, NG_EIO, "extending the journal file", e);
    return;
  }
  unsigned char *rec = j->va + (j->end - j->va_off);
  size_t len = (size_t)(put_entries(rt, rec + REC_HEAD, evs, n) - rec);
  wr64(rec + 8, j->next_commit);
  /* Length and CRC last: a process killed mid-copy leaves a record that
   * fails its check, cut away at the next open. */
  wr32(rec, (uint32_t)len);
  wr32(rec + 4, record_crc(rec, len));
  j->next_commit++;
  j->end += align8(len);
  atomic_store(&j->written, j->end);
}

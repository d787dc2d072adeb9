/* The write-ahead journal: records, appending through a shared mapping,
 * syncing, and replay (design in journal.h, bytes in docs/format.md). */
#define _GNU_SOURCE /* fdatasync, posix_fallocate */
#include "conn_table.h"
#include "internal.h"
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

/* ---- the format ------------------------------------------------------------ */

static const unsigned char journal_magic[8] = {'N', 'G', 'J', 'R', 'N', 'L', '\r', '\n'};

enum {
  J_MAJOR = 1,
  J_MINOR = 1, /* 1: token deltas (E_TOK_DELTA); minor 0 journals hold kinds 1-5 only */
  J_HDR_MAX = 4096,
  /* Header fields. */
  JH_MAJOR = 8,
  JH_MINOR = 10,
  JH_SIZE = 12,
  JH_ENDIAN = 16,
  JH_FLAGS = 20,
  JH_NUMBER = 24,
  JH_FIRST = 32,
  JH_CRC = NGI_JOURNAL_HEADER - 4,
  /* A record: u32 length, u32 CRC-32C, u64 commit number, entries. */
  REC_HEAD = 16,
  /* Entries: a kind byte, then its fields. */
  E_TOK_PUT = 1,   /* u64 id, u8 placement, the 64-byte record */
  E_TOK_DEL = 2,   /* u64 id */
  E_CONN_PUT = 3,  /* u64 id, the 64-byte record */
  E_CONN_DEL = 4,  /* u64 id */
  E_CDNA = 5,      /* the 384-byte block */
  E_TOK_DELTA = 6, /* u64 id, u32 field mask (D_* below), those fields in the record's order */
  TOK_PUT_BYTES = 1 + 8 + 1 + TOKEN_BYTES,
  DELTA_HEAD = 1 + 8 + 4,
  DEL_BYTES = 1 + 8,
  CONN_PUT_BYTES = 1 + 8 + 64,
  CDNA_PUT_BYTES = 1 + CDNA_BYTES
};

/* A token delta's field mask. A space's bit carries its 3 raw coordinates
 * and places the token there; an unplace bit carries nothing; the others
 * carry the record field of the same name (D_ID: the record's 32-bit id
 * field, which holds the domain and the entity copy). The bits of the
 * non-coordinate fields are those of NG_TF_*, D_ID that of NG_TF_DOMAIN. */
#define D_COORDS(s) (1u << (s))
#define D_UNPLACE(s) (1u << (16 + (s)))
enum {
  D_WEIGHT = NG_TF_WEIGHT,
  D_FLAGS = NG_TF_FLAGS,
  D_RADIUS = NG_TF_FIELD_RADIUS,
  D_STRENGTH = NG_TF_FIELD_STRENGTH,
  D_TIMESTAMP = NG_TF_TIMESTAMP,
  D_ID = NG_TF_DOMAIN
};
#define D_KNOWN                                                                                    \
  ((uint32_t)NG_TF_COORDS_ALL | D_WEIGHT | D_FLAGS | D_RADIUS | D_STRENGTH | D_TIMESTAMP | D_ID |  \
   NG_TF_UNPLACE_ALL)

/* A delta's fields after the coordinates, in the record's order. */
static const struct {
  uint32_t bit;
  uint8_t off, size;
} delta_fields[] = {{D_ID, offsetof(ng_token, id), 4},
                    {D_FLAGS, offsetof(ng_token, flags), 2},
                    {D_WEIGHT, offsetof(ng_token, weight), 4},
                    {D_RADIUS, offsetof(ng_token, field_radius), 1},
                    {D_STRENGTH, offsetof(ng_token, field_strength), 1},
                    {D_TIMESTAMP, offsetof(ng_token, timestamp), 4}};

enum { COORD_BYTES = sizeof(((ng_token *)0)->coords[0]) };

/* The bytes of a token delta entry with field mask m (known bits only). */
static size_t delta_bytes(uint32_t m) {
  size_t n = DELTA_HEAD;
  for (int s = 0; s < NG_SPACES; s++)
    if (m & D_COORDS(s)) n += COORD_BYTES;
  for (size_t k = 0; k < sizeof delta_fields / sizeof delta_fields[0]; k++)
    if (m & delta_fields[k].bit) n += delta_fields[k].size;
  return n;
}

static size_t align8(size_t n) {
  return (n + 7) & ~(size_t)7;
}

/* The CRC of a record at p of `len` bytes: everything after the CRC field,
 * then the length field. */
static uint32_t record_crc(const unsigned char *p, size_t len) {
  return ngi_crc32c(ngi_crc32c(0, p + 8, len - 8), p, 4);
}

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

/* ---- replay -------------------------------------------------------------- */

#define BAD(...) (snprintf(why, why_size, __VA_ARGS__), NG_ECORRUPT)

/* The snapshot loader's record rules for a token stored under id. */
static ng_status check_token(ng_id id, uint8_t placed, const ng_token *tok, char *why,
                             size_t why_size) {
  if (!ngi_id_valid(id)) return BAD("token id %llu is out of range", (unsigned long long)id);
  if (NG_ID_LOCAL(tok->id) != NG_TOKEN_SLOT(id))
    return BAD("token %llu: the record's local id %u is not the id's slot", (unsigned long long)id,
               NG_ID_LOCAL(tok->id));
  if (NG_ID_ENTITY(tok->id) != ng_token_get_entity(tok))
    return BAD("token %llu: entity %u in the id differs from entity %u in the flags",
               (unsigned long long)id, NG_ID_ENTITY(tok->id), ng_token_get_entity(tok));
  char r[192];
  if (ng_token_validate(tok, NG_TF_ALL, NULL, r, sizeof r) != NG_OK)
    return BAD("token %llu: %s", (unsigned long long)id, r);
  for (int s = 0; s < NG_SPACES; s++)
    if (!(placed >> s & 1u) && (tok->coords[s][0] | tok->coords[s][1] | tok->coords[s][2]))
      return BAD("token %llu has coordinates in %s, where it is not placed", (unsigned long long)id,
                 ng_space_name(s));
  return NG_OK;
}

static ng_status replay_token(ng_runtime *rt, ng_id id, uint8_t placed, const ng_token *tok,
                              char *why, size_t why_size) {
  ngi_token_table *t = &rt->tokens;
  ng_status st = check_token(id, placed, tok, why, why_size);
  if (st != NG_OK) return st;
  uint32_t pos = ngi_token_slot(t, id);
  if (pos != NGI_NONE) {
    ngi_tok_store(t, pos, tok);
    ngi_set_placed(t, NG_TOKEN_SLOT(id), placed);
    return NG_OK;
  }
  ng_id next = 0;
  if (ngi_idgen_peek(&t->ids, &next) != NG_OK || next != id)
    return BAD("token %llu is neither live nor the next id (%llu)", (unsigned long long)id,
               (unsigned long long)next);
  if (ngi_tokens_reserve_append(rt, t, id) != NG_OK) return NG_ENOMEM;
  ngi_tokens_append(t, id, tok, placed);
  return NG_OK;
}

/* A delta of mask m (known bits, its fields at f) applied to live token id:
 * the record that results passes the same rules as a put. */
static ng_status replay_token_delta(ng_runtime *rt, ng_id id, uint32_t m, const unsigned char *f,
                                    char *why, size_t why_size) {
  const ngi_token_table *t = &rt->tokens;
  const ng_token *cur = ngi_token_lookup(t, id);
  if (!cur) return BAD("no token %llu to update", (unsigned long long)id);
  if (m == 0) return BAD("token %llu: a delta of no fields", (unsigned long long)id);
  uint32_t both = m & m >> 16 & NG_TF_COORDS_ALL;
  for (int s = 0; s < NG_SPACES; s++)
    if (both >> s & 1u)
      return BAD("token %llu: a delta both places and unplaces it in %s", (unsigned long long)id,
                 ng_space_name(s));
  ng_token tok = *cur;
  unsigned char *rec = (unsigned char *)&tok;
  uint8_t placed = ngi_placed(t, NG_TOKEN_SLOT(id));
  for (int s = 0; s < NG_SPACES; s++) {
    if (m & D_COORDS(s)) {
      memcpy(rec + s * COORD_BYTES, f, COORD_BYTES);
      f += COORD_BYTES;
      placed |= (uint8_t)(1u << s);
    } else if (m & D_UNPLACE(s)) {
      memset(rec + s * COORD_BYTES, 0, COORD_BYTES);
      placed &= (uint8_t) ~(1u << s);
    }
  }
  for (size_t k = 0; k < sizeof delta_fields / sizeof delta_fields[0]; k++)
    if (m & delta_fields[k].bit) {
      memcpy(rec + delta_fields[k].off, f, delta_fields[k].size);
      f += delta_fields[k].size;
    }
  return replay_token(rt, id, placed, &tok, why, why_size);
}

static ng_status replay_token_delete(ng_runtime *rt, ng_id id, char *why, size_t why_size) {
  if (!ngi_token_lookup(&rt->tokens, id))
    return BAD("no token %llu to delete", (unsigned long long)id);
  ngi_conns_remove_token(rt, rt->conns, id); /* none: their unlinks came first */
  ngi_tokens_tombstone(rt, &rt->tokens, id);
  return NG_OK;
}

static ng_status replay_conn(ng_runtime *rt, ng_id id, const ng_connection *c, char *why,
                             size_t why_size) {
  ngi_conns *cs = rt->conns;
  const ngi_token_table *t = &rt->tokens;
  unsigned long long uid = id;
  char r[192];
  if (!ngi_id_valid(id)) return BAD("connection id %llu is out of range", uid);
  if (ng_connection_validate(c, NG_CF_ALL, NULL, r, sizeof r) != NG_OK)
    return BAD("connection %llu: %s", uid, r);
  if (c->padding1 != 0) return BAD("connection %llu: padding is not zero", uid);
  if (!ngi_token_live_local(t, c->token_a_id))
    return BAD("connection %llu: from token %u does not exist", uid, c->token_a_id);
  if (!ngi_token_live_local(t, c->token_b_id))
    return BAD("connection %llu: to token %u does not exist", uid, c->token_b_id);
  uint32_t slot = ngi_conns_find_slot(cs, id);
  if (ngi_conns_find_dup(cs, c->token_a_id, c->token_b_id, c->connection_type,
                         slot != NGI_NONE ? id : 0))
    return BAD("connection %llu duplicates a live one (same from, to and type)", uid);
  if (slot != NGI_NONE) {
    if (cs->recs[slot].token_a_id != c->token_a_id || cs->recs[slot].token_b_id != c->token_b_id)
      return BAD("connection %llu: its endpoints changed", uid);
    cs->recs[slot] = *c;
    return NG_OK;
  }
  ng_id next = 0;
  if (ngi_idgen_peek(&cs->ids, &next) != NG_OK || next != id)
    return BAD("connection %llu is neither live nor the next id (%llu)", uid,
               (unsigned long long)next);
  if (ngi_conns_reserve_append(rt, cs) != NG_OK) return NG_ENOMEM;
  ngi_idgen_take(&cs->ids);
  ngi_conns_append(cs, id, c);
  return NG_OK;
}

static ng_status replay_conn_delete(ng_runtime *rt, ng_id id, char *why, size_t why_size) {
  uint32_t slot = ngi_conns_find_slot(rt->conns, id);
  if (slot == NGI_NONE) return BAD("no connection %llu to delete", (unsigned long long)id);
  ngi_conns_remove_slot(rt, rt->conns, slot);
  return NG_OK;
}

/* Apply the entries p[0 .. n) of one record. */
static ng_status apply_entries(ng_runtime *rt, const unsigned char *p, size_t n, char *why,
                               size_t why_size) {
  const unsigned char *end = p + n;
  while (p < end) {
    size_t left = (size_t)(end - p);
    int kind = p[0];
    size_t need = kind == E_TOK_PUT                         ? TOK_PUT_BYTES
                  : kind == E_TOK_DELTA                     ? DELTA_HEAD
                  : kind == E_CONN_PUT                      ? CONN_PUT_BYTES
                  : kind == E_CDNA                          ? CDNA_PUT_BYTES
                  : kind == E_TOK_DEL || kind == E_CONN_DEL ? DEL_BYTES
                                                            : 0;
    if (need == 0) return BAD("unknown entry kind %d", kind);
    if (left < need) return BAD("entry of kind %d is cut short", kind);
    ng_id id = kind == E_CDNA ? 0 : rd64(p + 1);
    uint32_t mask = 0;
    if (kind == E_TOK_DELTA) {
      mask = rd32(p + 9);
      if (mask & ~D_KNOWN)
        return BAD("token %llu: unknown delta field bits 0x%x", (unsigned long long)id,
                   (unsigned)(mask & ~D_KNOWN));
      need = delta_bytes(mask);
      if (left < need) return BAD("entry of kind %d is cut short", kind);
    }
    ng_status st = NG_OK;
    if (kind == E_TOK_DELTA) {
      st = replay_token_delta(rt, id, mask, p + DELTA_HEAD, why, why_size);
    } else if (kind == E_TOK_PUT) {
      ng_token tok;
      memcpy(&tok, p + 10, sizeof tok);
      st = replay_token(rt, id, p[9], &tok, why, why_size);
    } else if (kind == E_CONN_PUT) {
      ng_connection c;
      memcpy(&c, p + 9, sizeof c);
      st = replay_conn(rt, id, &c, why, why_size);
    } else if (kind == E_TOK_DEL) {
      st = replay_token_delete(rt, id, why, why_size);
    } else if (kind == E_CONN_DEL) {
      st = replay_conn_delete(rt, id, why, why_size);
    } else {
      ng_cdna c;
      memcpy(&c, p + 1, sizeof c);
      char r[160];
      if (ng_cdna_validate(&c, r, sizeof r) != NG_OK) return BAD("invalid CDNA block: %s", r);
      st = ngi_cdna_restore(rt, &c);
    }
    if (st != NG_OK) return st;
    p += need;
  }
  return NG_OK;
}

bool ngi_journal_appendable(const unsigned char *data) {
  return rd16(data + JH_MINOR) >= J_MINOR;
}

/* Whether a well-formed record numbered `commit` starts at off. */
static bool record_at(const unsigned char *data, size_t len, size_t off, uint64_t commit,
                      size_t *rlen) {
  if (len - off < REC_HEAD) return false;
  size_t n = rd32(data + off);
  if (n < REC_HEAD || n > len - off || rd64(data + off + 8) != commit) return false;
  if (rd32(data + off + 4) != record_crc(data + off, n)) return false;
  *rlen = n;
  return true;
}

/* Whether any valid record numbered `commit` or later starts after off (a
 * bad record there is damage, not a torn tail). */
static bool valid_after(const unsigned char *data, size_t len, size_t off, uint64_t commit) {
  for (size_t o = off + 8; o + REC_HEAD <= len; o += 8) {
    uint64_t c = rd64(data + o + 8);
    size_t n;
    if (c >= commit && c - commit <= len / 8 && record_at(data, len, o, c, &n)) return true;
  }
  return false;
}

static bool all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

ng_status ngi_journal_replay(ng_runtime *rt, const unsigned char *data, size_t len,
                             const char *name, bool last, uint64_t *first_commit, size_t *end) {
  static const char fn[] = "ng_runtime_open";
  if (len < NGI_JOURNAL_HEADER)
    return ngi_fail(NULL, NG_ECORRUPT, "%s: %s: the header is cut short (%zu bytes)", fn, name,
                    len);
  if (memcmp(data, journal_magic, sizeof journal_magic) != 0)
    return ngi_fail(NULL, NG_ECORRUPT, "%s: %s: not a neurograph journal (bad magic)", fn, name);
  unsigned major = rd16(data + JH_MAJOR);
  if (major != J_MAJOR)
    return ngi_fail(NULL, major > J_MAJOR ? NG_EVERSION : NG_ECORRUPT,
                    "%s: %s: journal format %u, this build reads %u", fn, name, major, J_MAJOR);
  size_t hsize = rd32(data + JH_SIZE);
  if (hsize < NGI_JOURNAL_HEADER || hsize > J_HDR_MAX || hsize > len || hsize % 8 != 0)
    return ngi_fail(NULL, NG_ECORRUPT, "%s: %s: bad header size %zu", fn, name, hsize);
  if (rd32(data + hsize - 4) != ngi_crc32c(0, data, hsize - 4))
    return ngi_fail(NULL, NG_ECORRUPT, "%s: %s: header checksum mismatch", fn, name);
  if (rd32(data + JH_ENDIAN) != SNAP_ENDIAN)
    return ngi_fail(NULL, NG_ECORRUPT, "%s: %s: written by a big-endian host", fn, name);
  uint64_t commit = rd64(data + JH_FIRST);
  if (*first_commit && commit != *first_commit)
    return ngi_fail(NULL, NG_ECORRUPT,
                    "%s: %s: starts at commit %llu, but the journal before it ends at %llu", fn,
                    name, (unsigned long long)commit, (unsigned long long)(*first_commit - 1));
  size_t off = hsize, rlen = 0;
  while (off < len) {
    if (!record_at(data, len, off, commit, &rlen)) {
      if (all_zero(data + off, len - off)) break; /* the unwritten, pre-extended part */
      if (!last || valid_after(data, len, off, commit))
        return ngi_fail(NULL, NG_ECORRUPT, "%s: %s: bad record at offset %zu (commit %llu)%s", fn,
                        name, off, (unsigned long long)commit,
                        last ? ", followed by valid records"
                             : " in a journal that is not the newest");
      break; /* a torn tail: cut */
    }
    char why[256];
    ng_status st = apply_entries(rt, data + off + REC_HEAD, rlen - REC_HEAD, why, sizeof why);
    if (st == NG_ENOMEM)
      return ngi_fail(NULL, NG_ENOMEM, "%s: %s: out of memory replaying commit %llu", fn, name,
                      (unsigned long long)commit);
    if (st != NG_OK)
      return ngi_fail(NULL, st, "%s: %s: record at offset %zu (commit %llu): %s", fn, name, off,
                      (unsigned long long)commit, why);
    commit++;
    off = align8(off + rlen);
  }
  for (int s = 0; s < NG_SPACES; s++) /* records moved without them: rebuilt at the next query */
    ngi_grid_reset(rt, rt->grids[s]);
  *first_commit = commit;
  *end = off;
  return NG_OK;
}

/* Durable worlds: a directory holding snapshot-N.ngs and journal-N.ngj files
 * (ng_runtime_open, ng_checkpoint). The journal itself is journal.c. */
#define _GNU_SOURCE /* fdatasync */
#include "internal.h"
#include "snapshot_format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest directory name a world may have (its file names are appended). */
enum { WORLD_PATH_MAX = 4000, NAME_DIGITS = 20 };

static void file_path(char *out, size_t size, const char *dir, const char *kind, uint64_t n) {
  snprintf(out, size, "%s/%s-%0*llu.%s", dir, kind, NAME_DIGITS, (unsigned long long)n,
           kind[0] == 's' ? "ngs" : "ngj");
}

/* The number of a "<kind>-<20 digits>.<ext>" name, or false. */
static bool parse_name(const char *name, const char *kind, const char *ext, uint64_t *n) {
  size_t k = strlen(kind);
  if (strncmp(name, kind, k) != 0 || name[k] != '-') return false;
  const char *d = name + k + 1;
  uint64_t v = 0;
  for (int i = 0; i < NAME_DIGITS; i++) {
    if (d[i] < '0' || d[i] > '9') return false;
    v = v * 10 + (uint64_t)(d[i] - '0');
  }
  if (d[NAME_DIGITS] != '.' || strcmp(d + NAME_DIGITS + 1, ext) != 0) return false;
  *n = v;
  return true;
}

typedef struct world_scan {
  bool has_snap, has_journal;
  uint64_t snap;        /* the newest snapshot */
  uint64_t last;        /* the newest journal */
  uint64_t any_journal; /* journals seen at all */
} world_scan;

/* Find the newest snapshot and journal of dir. 0 or an error number. */
static int scan_world(const char *dir, world_scan *w) {
  memset(w, 0, sizeof *w);
  DIR *d = opendir(dir);
  if (!d) return errno;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    uint64_t n;
    if (parse_name(e->d_name, "snapshot", "ngs", &n)) {
      if (!w->has_snap || n > w->snap) w->snap = n;
      w->has_snap = true;
    } else if (parse_name(e->d_name, "journal", "ngj", &n)) {
      if (!w->has_journal || n > w->last) w->last = n;
      w->has_journal = true;
      w->any_journal++;
    }
  }
  closedir(d);
  return 0;
}

/* Remove snapshots and journals older than snapshot `keep` and, with
 * temps, temporary files (what a crash or an interrupted checkpoint left, at
 * open: no save is running then). Best effort. */
static void remove_stale(const char *dir, uint64_t keep, bool temps) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char path[WORLD_PATH_MAX + 300];
  while ((e = readdir(d)) != NULL) {
    uint64_t n;
    bool old = (parse_name(e->d_name, "snapshot", "ngs", &n) ||
                parse_name(e->d_name, "journal", "ngj", &n)) &&
               n < keep;
    bool tmp = temps && (strncmp(e->d_name, ".snapshot-", 10) == 0 ||
                         strncmp(e->d_name, ".journal-", 9) == 0);
    if (!old && !tmp) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
}

/* A new journal for rt (no file yet). */
static ng_status journal_new(ng_runtime *rt, const char *dir, const ng_open_options *opt) {
  ngi_journal *j = ngi_alloc(rt, sizeof *j);
  size_t dsize = strlen(dir) + 1;
  char *d = ngi_alloc(rt, dsize);
  if (!j || !d) {
    ngi_free(rt, j, sizeof *j);
    ngi_free(rt, d, dsize);
    return NG_ENOMEM;
  }
  memset(j, 0, sizeof *j);
  memcpy(d, dir, dsize);
  j->fd = j->dir_fd = -1;
  j->dir = d;
  j->dir_size = dsize;
  j->sync = opt->sync;
  j->interval_ms = opt->interval_ms ? opt->interval_ms : 100;
  j->checkpoint_bytes = opt->checkpoint_bytes ? opt->checkpoint_bytes : (uint64_t)64 << 20;
  atomic_init(&j->written, 0);
  atomic_init(&j->auto_at, SIZE_MAX);
  if (ngi_journal_init_sync(j) != NG_OK) {
    ngi_free(rt, d, dsize);
    ngi_free(rt, j, sizeof *j);
    return NG_ENOMEM;
  }
  rt->journal = j;
  return NG_OK;
}

/* Replay journal k of dir into rt; for the newest (`last`), keep it open
 * for appending (attached). *commit as ngi_journal_replay takes it. */
static ng_status replay_file(ng_runtime *rt, const char *dir, uint64_t k, bool last,
                             uint64_t *commit) {
  static const char fn[] = "ng_runtime_open";
  char path[WORLD_PATH_MAX + 64], ebuf[128];
  file_path(path, sizeof path, dir, "journal", k);
  int fd = open(path, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT)
      return ngi_fail(NULL, NG_ECORRUPT,
                      "%s: %s is missing (the journals after the newest "
                      "snapshot must all be there)",
                      fn, path);
    return ngi_fail(NULL, NG_EIO, "%s: opening %s: %s", fn, path, errstr(e, ebuf, sizeof ebuf));
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    return ngi_fail(NULL, NG_EIO, "%s: %s: %s", fn, path, errstr(e, ebuf, sizeof ebuf));
  }
  size_t len = (size_t)sb.st_size;
  unsigned char small[NGI_JOURNAL_HEADER];
  const unsigned char *data = small;
  void *m = NULL;
  if (len >= NGI_JOURNAL_HEADER) {
    m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      close(fd);
      return ngi_fail(NULL, NG_EIO, "%s: mapping %s: %s", fn, path, errstr(e, ebuf, sizeof ebuf));
    }
    data = m;
  }
  size_t end = 0;
  ng_status st = ngi_journal_replay(rt, data, len, path, last, commit, &end);
  bool appendable = st == NG_OK && ngi_journal_appendable(data);
  if (m) munmap(m, len);
  if (st != NG_OK || !last) {
    close(fd);
    return st;
  }
  if (appendable) return ngi_journal_attach_file(rt, fn, fd, k, end, *commit);
  /* An older format's journal: cut its torn tail and make it durable (only
   * the newest journal may have one), then continue in journal k + 1. */
  int e = ftruncate(fd, (off_t)end) != 0 || fdatasync(fd) != 0 ? errno : 0;
  close(fd);
  if (e)
    return ngi_fail(NULL, NG_EIO, "%s: closing %s: %s", fn, path, errstr(e, ebuf, sizeof ebuf));
  st = ngi_journal_create_file(rt, fn, k + 1, *commit, &fd);
  if (st != NG_OK) return st;
  return ngi_journal_attach_file(rt, fn, fd, k + 1, NGI_JOURNAL_HEADER, *commit);
}

/* A world that does not exist yet: journal 0 (its header only), then
 * snapshot 0 of the new runtime. A crash in between leaves a journal 0 of
 * nothing but its header and no snapshot, which opens as a new world; a
 * journal with records never exists without its snapshot. */
static ng_status create_world(ng_runtime *rt, const char *dir) {
  static const char fn[] = "ng_runtime_open";
  char path[WORLD_PATH_MAX + 64];
  int fd;
  ng_status st = ngi_journal_create_file(rt, fn, 0, 1, &fd);
  if (st != NG_OK) return st;
  file_path(path, sizeof path, dir, "snapshot", 0);
  st = ng_snapshot_save(rt, path);
  if (st != NG_OK) {
    close(fd);
    return st;
  }
  return ngi_journal_attach_file(rt, fn, fd, 0, NGI_JOURNAL_HEADER, 1);
}

/* Whether dir holds only what an interrupted create_world leaves: journal
 * 0 with its header and nothing else. */
static bool half_created(const char *dir, const world_scan *w) {
  char path[WORLD_PATH_MAX + 64];
  struct stat sb;
  file_path(path, sizeof path, dir, "journal", 0);
  return w->any_journal == 1 && w->last == 0 && stat(path, &sb) == 0 &&
         sb.st_size <= NGI_JOURNAL_HEADER;
}

ng_status ng_runtime_open(const char *path, const ng_open_options *opt, ng_runtime **out) {
  static const char fn[] = "ng_runtime_open";
  static const ng_open_options defaults;
  char ebuf[128];
  if (!out) return ngi_fail(NULL, NG_EINVAL, "%s: out must not be NULL", fn);
  *out = NULL;
  if (!path || !*path) return ngi_fail(NULL, NG_EINVAL, "%s: path must be a non-empty string", fn);
  if (strlen(path) > WORLD_PATH_MAX)
    return ngi_fail(NULL, NG_EINVAL, "%s: path must be at most %d bytes", fn, WORLD_PATH_MAX);
  if (!opt) opt = &defaults;
  if ((unsigned)opt->sync > NG_SYNC_OFF)
    return ngi_fail(NULL, NG_EINVAL,
                    "%s: sync must be NG_SYNC_BATCH, NG_SYNC_ALWAYS or "
                    "NG_SYNC_OFF, got %d",
                    fn, (int)opt->sync);
  if (mkdir(path, 0777) != 0 && errno != EEXIST) {
    int e = errno;
    return ngi_fail(NULL, NG_EIO, "%s: creating %s: %s", fn, path, errstr(e, ebuf, sizeof ebuf));
  }
  /* One runtime per world: two appending to one journal would corrupt it. */
  int dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0 || flock(dir_fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (dir_fd >= 0) close(dir_fd);
    return ngi_fail(NULL, NG_EIO, "%s: %s: %s", fn, path,
                    e == EWOULDBLOCK ? "the world is open in another runtime"
                                     : errstr(e, ebuf, sizeof ebuf));
  }
  world_scan w;
  int e = scan_world(path, &w);
  ng_runtime *rt = NULL;
  ng_status st = NG_OK;
  if (e)
    st = ngi_fail(NULL, NG_EIO, "%s: reading %s: %s", fn, path, errstr(e, ebuf, sizeof ebuf));
  else if (!w.has_snap && w.has_journal && !half_created(path, &w))
    st = ngi_fail(NULL, NG_ECORRUPT, "%s: %s holds journals but no snapshot", fn, path);
  else if (w.has_snap && (!w.has_journal || w.last < w.snap))
    st = ngi_fail(NULL, NG_ECORRUPT, "%s: %s: journal %llu is missing", fn, path,
                  (unsigned long long)w.snap);
  if (st == NG_OK && w.has_snap) {
    char snap[WORLD_PATH_MAX + 64];
    file_path(snap, sizeof snap, path, "snapshot", w.snap);
    st = ng_snapshot_load(snap, opt->config, &rt);
  } else if (st == NG_OK) {
    st = ng_runtime_new(opt->config, &rt);
  }
  if (st != NG_OK) {
    close(dir_fd);
    return st;
  }
  st = journal_new(rt, path, opt);
  if (st != NG_OK) {
    close(dir_fd);
    ng_runtime_release(rt);
    return ngi_fail(NULL, st, "%s: out of memory", fn);
  }
  rt->journal->dir_fd = dir_fd; /* the journal holds the lock from here on */
  if (!w.has_snap) {
    st = create_world(rt, path);
  } else {
    uint64_t commit = 0;
    for (uint64_t k = w.snap; k <= w.last && st == NG_OK; k++)
      st = replay_file(rt, path, k, k == w.last, &commit);
  }
  if (st == NG_OK && ngi_journal_start_thread(rt) != NG_OK)
    st = ngi_fail(NULL, NG_ENOMEM, "%s: cannot start the journal's threads", fn);
  if (st != NG_OK) {
    ng_runtime_release(rt);
    return st;
  }
  remove_stale(path, w.has_snap ? w.snap : 0, true);
  *out = rt;
  return NG_OK;
}

/* Needs: the write lock. Starts journal N+1 at this commit boundary: journal
 * N is made durable first (so only the newest journal can ever have a torn
 * tail), then N+1 is created (durably, with its header) and becomes the
 * active file. On failure the active journal is unchanged, or, if N+1
 * cannot be attached after N was closed, the journal is failed. */
static ng_status rotate(ng_runtime *rt, const char *fn) {
  ngi_journal *j = rt->journal;
  pthread_mutex_lock(&j->sync_lock);
  int e = fdatasync(j->fd) != 0 ? errno : 0;
  pthread_mutex_unlock(&j->sync_lock);
  char ebuf[128];
  if (e)
    return ngi_fail(rt, NG_EIO, "%s: syncing journal %llu: %s", fn, (unsigned long long)j->number,
                    errstr(e, ebuf, sizeof ebuf));
  int fd;
  ng_status st = ngi_journal_create_file(rt, fn, j->number + 1, j->next_commit, &fd);
  if (st != NG_OK) return st;
  uint64_t n1 = j->number + 1;
  ngi_journal_detach_file(rt);
  st = ngi_journal_attach_file(rt, fn, fd, n1, NGI_JOURNAL_HEADER, j->next_commit);
  if (st != NG_OK) {
    j->failed = st;
    snprintf(j->why, sizeof j->why, "%s", ng_last_error_detail(rt));
  }
  return st;
}

/* Step (3) of the protocol once snapshot n1 is written: the snapshots and
 * journals before it go (a crash first leaves them to the next open). */
static void drop_before(const ngi_journal *j, uint64_t n1) {
  remove_stale(j->dir, n1, false);
}

/* A background checkpoint's end, if it has ended (or, with wait, once it
 * has): when its snapshot was written, step (3) and a failed journal made
 * writable again. Caller holds the write lock, or is the runtime's last
 * user. */
static void finish_pending(ng_runtime *rt, bool wait) {
  ngi_journal *j = rt->journal;
  if (!j->pending) return;
  ng_status st = ng_save_status(j->pending, wait, NULL);
  if (st == NG_EBUSY) return;
  if (st == NG_OK) {
    drop_before(j, j->pending_number);
    j->failed = NG_OK;
  }
  ng_save_free(j->pending);
  j->pending = NULL;
}

void ngi_world_end(ng_runtime *rt) {
  finish_pending(rt, true);
}

void ngi_world_forked(ng_runtime *rt) {
  /* flock's lock lasts while any copy of the descriptor is open: closing
   * this one leaves it to the parent alone */
  if (rt->journal && rt->journal->dir_fd >= 0) close(rt->journal->dir_fd);
}

/* The checkpoint's checks and its write hold (NG_OK: held). */
static ng_status checkpoint_lock(ng_runtime *rt, const char *fn) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!rt->journal)
    return ngi_fail(rt, NG_EINVAL, "%s: the runtime has no journal (ng_runtime_open makes one)",
                    fn);
  if (ngi_txn_holds(rt))
    return ngi_fail(rt, NG_EBUSY, "%s: cannot checkpoint inside an open transaction", fn);
  return ngi_write_lock_checkpoint(rt, fn);
}

/* The checkpoint protocol (docs/format.md, "Durable worlds"): (1) rotate
 * under the write lock, (2) write snapshot N+1, the image of the store at
 * that boundary, (3) delete snapshot N and journal N. In the background
 * (ng_checkpoint_background), step (2) is a forked save started under the
 * lock, and step (3) and the clearing of a failed journal wait for its
 * success (finish_pending); until then, opening replays snapshot N, journal
 * N and journal N+1. */
ng_status ng_checkpoint(ng_runtime *rt) {
  static const char fn[] = "ng_checkpoint";
  ng_status st = checkpoint_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_journal *j = rt->journal;
  finish_pending(rt, true); /* one checkpoint at a time */
  st = rotate(rt, fn);
  uint64_t n1 = j->number;
  if (st == NG_OK) {
    char path[WORLD_PATH_MAX + 64];
    file_path(path, sizeof path, j->dir, "snapshot", n1);
    st = ng_snapshot_save(rt, path); /* its read lock nests in this hold */
    if (st == NG_OK) j->failed = NG_OK;
  }
  ngi_write_unlock(rt);
  if (st == NG_OK) drop_before(j, n1);
  return st;
}

ng_status ng_checkpoint_background(ng_runtime *rt, ng_save **out) {
  static const char fn[] = "ng_checkpoint_background";
  if (rt && !out) return ngi_fail(rt, NG_EINVAL, "%s: out must not be NULL", fn);
  if (out) *out = NULL;
  ng_status st = checkpoint_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_journal *j = rt->journal;
  finish_pending(rt, false);
  if (j->pending) {
    st = ngi_fail(rt, NG_EBUSY, "%s: a background checkpoint is still running", fn);
  } else if ((st = rotate(rt, fn)) == NG_OK) {
    char path[WORLD_PATH_MAX + 64];
    file_path(path, sizeof path, j->dir, "snapshot", j->number);
    st = ngi_snapshot_save_background(rt, fn, path, out);
    if (st == NG_OK) {
      ngi_save_ref(*out);
      j->pending = *out;
      j->pending_number = j->number;
    }
  }
  ngi_write_unlock(rt);
  return st;
}

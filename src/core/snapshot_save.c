/* Saving a snapshot: one checksummed file, written atomically over a regular file (links
 * followed, permissions kept). */
#include "snapshot_format.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- saving ---------------------------------------------------------------- */


static void w_write(ngi_writer *w, const unsigned char *p, size_t n) {
  size_t off = 0;
  while (!w->err && off < n) {
    ssize_t k = write(w->fd, p + off, n - off);
    if (k < 0) {
      if (errno == EINTR) continue;
      w->err = errno;
    } else if (k == 0) {
      w->err = EIO;
    } else {
      off += (size_t)k;
    }
  }
  w->written += n;
  if (w->progress && w->written - w->reported >= NGI_PROGRESS_BYTES && w->written < w->total) {
    w->reported = w->written;
    w->progress(w->progress_ud, "save", w->written, w->total);
  }
}

static void w_sum(ngi_writer *w) {
  w->crc = ngi_crc32c(w->crc, w->buf + w->pending, w->used - w->pending);
  w->pending = w->used;
}

static void w_flush(ngi_writer *w) {
  w_sum(w);
  w_write(w, w->buf, w->used);
  w->used = w->pending = 0;
}

/* Append section payload bytes. Large runs (whole token runs) bypass the
 * buffer: checksummed and written straight from the store's array, in
 * pieces of the progress step so that progress is reported within them. */
static void w_put(ngi_writer *w, const void *p, size_t n) {
  const unsigned char *s = p;
  if (n >= w->cap / 2) {
    w_flush(w);
    for (size_t off = 0, k; off < n; off += k) {
      k = n - off < NGI_PROGRESS_BYTES ? n - off : NGI_PROGRESS_BYTES;
      w->crc = ngi_crc32c(w->crc, s + off, k);
      w_write(w, s + off, k);
    }
    return;
  }
  if (w->cap - w->used < n) w_flush(w);
  memcpy(w->buf + w->used, s, n);
  w->used += n;
}

/* Append bytes that are not section payload (the header, section CRCs). */
static void w_raw(ngi_writer *w, const void *p, size_t n) {
  w_sum(w);
  if (w->cap - w->used < n) w_flush(w);
  memcpy(w->buf + w->used, p, n);
  w->used += n;
  w->pending = w->used;
}

/* Close a section: its CRC-32C follows the payload; the next section starts
 * a fresh checksum. */
static void w_end_section(ngi_writer *w) {
  unsigned char c[CRC_BYTES];
  w_sum(w);
  wr32(c, w->crc);
  w_raw(w, c, sizeof c);
  w->crc = 0;
}

static bool put_connection(const ng_connection *c, ng_id id, void *ud) {
  ngi_writer *w = ud;
  unsigned char e[CONN_BYTES];
  wr32(e, (uint32_t)id); /* the slot; the generation goes to the ids section */
  memcpy(e + 4, c, sizeof *c);
  w_put(w, e, sizeof e);
  return w->err == 0;
}

static bool put_conn_gen(const ng_connection *c, ng_id id, void *ud) {
  (void)c;
  unsigned char g[4];
  wr32(g, (uint32_t)(id >> NG_CONNECTION_SLOT_BITS));
  w_put(ud, g, sizeof g);
  return ((ngi_writer *)ud)->err == 0;
}

/* The bytes an id allocator's state takes in the ids section. */
static uint64_t idgen_bytes(const ngi_idgen *g) {
  return IDGEN_BYTES + 4 * (uint64_t)ngi_idgen_free_count(g);
}

/* An id allocator's state: epoch, fresh, last, retired, the counts of ready
 * and pending slots, then those slots (format.md, "ids section"). */
static void put_idgen(ngi_writer *w, const ngi_idgen *g) {
  unsigned char s[IDGEN_BYTES];
  wr64(s, g->epoch);
  wr64(s + 8, g->fresh);
  wr64(s + 16, g->last);
  wr64(s + 24, g->retired);
  wr64(s + 32, g->ready_n - g->ready_at);
  wr64(s + 40, g->pending_n);
  w_put(w, s, sizeof s);
  for (size_t i = g->ready_at; i < g->ready_n; i++) {
    wr32(s, g->ready[i]);
    w_put(w, s, 4);
  }
  for (size_t i = 0; i < g->pending_n; i++) {
    wr32(s, g->pending[i]);
    w_put(w, s, 4);
  }
}

/* Write the whole snapshot of rt to w. Needs: rt's read lock held, so the
 * counts, the records and the CDNA are one point in time. */
static void write_snapshot(ng_runtime *rt, ngi_writer *w) {
  const ngi_token_table *t = &rt->tokens;
  size_t nconn = ngi_conns_count(rt->conns);
  unsigned char h[HDR_SIZE];
  memset(h, 0, sizeof h);
  memcpy(h + OFF_MAGIC, snap_magic, sizeof snap_magic);
  wr16(h + OFF_MAJOR, SNAP_MAJOR);
  wr16(h + OFF_MINOR, SNAP_MINOR);
  wr32(h + OFF_HSIZE, HDR_SIZE);
  wr32(h + OFF_ENDIAN, SNAP_ENDIAN);
  const ngi_idgen *cids = ngi_conns_ids(rt->conns);
  wr64(h + OFF_NTOK, t->live);
  wr64(h + OFF_NCONN, nconn);
  uint64_t ids_len = idgen_bytes(&t->ids) + 4 * (uint64_t)t->live + idgen_bytes(cids) +
                     4 * (uint64_t)nconn + (uint64_t)t->live;
  wr64(h + OFF_IDS_LEN, ids_len);
  wr64(h + OFF_CDNA_LEN, CDNA_BYTES);
  wr64(h + OFF_TOK_LEN, (uint64_t)t->live * TOKEN_BYTES);
  wr64(h + OFF_CONN_LEN, (uint64_t)nconn * CONN_BYTES);
  wr32(h + OFF_HCRC, ngi_crc32c(0, h, OFF_HCRC));
  w->total = HDR_SIZE + CDNA_BYTES + (uint64_t)t->live * TOKEN_BYTES +
             (uint64_t)nconn * CONN_BYTES + ids_len + 4 * CRC_BYTES;
  if (w->progress) w->progress(w->progress_ud, "save", 0, w->total);
  w_raw(w, h, sizeof h);

  w_put(w, &rt->cdna, sizeof rt->cdna);
  w_end_section(w);

  /* Live records sit in ascending id order between tombstones: write them in
   * runs that are contiguous in memory (within one segment of the table). */
  size_t i = 0;
  while (i < t->len && !w->err) {
    while (i < t->len && NG_ID_LOCAL(ngi_tok_at(t, i)->id) == 0)
      i++;
    if (i == t->len) break;
    const ng_token *run = ngi_tok_at(t, i);
    size_t end = i + ngi_tok_run(i) < t->len ? i + ngi_tok_run(i) : t->len, j = i;
    while (j < end && NG_ID_LOCAL(run[j - i].id) != 0)
      j++;
    w_put(w, run, (j - i) * sizeof *run);
    i = j;
  }
  w_end_section(w);

  ng_connection_each(rt, put_connection, w);
  w_end_section(w);

  put_idgen(w, &t->ids);
  for (size_t k = 0; k < t->len; k++) {
    const ng_token *tok = ngi_tok_at(t, k);
    if (NG_ID_LOCAL(tok->id) == 0) continue;
    unsigned char g[4];
    wr32(g, (uint32_t)NG_TOKEN_GEN(ngi_tokens_id_at(t, k)));
    w_put(w, g, sizeof g);
  }
  put_idgen(w, cids);
  ng_connection_each(rt, put_conn_gen, w);
  for (size_t k = 0; k < t->len; k++) { /* 3.0: each token's spaces */
    uint32_t local = NG_ID_LOCAL(ngi_tok_at(t, k)->id);
    if (local == 0) continue;
    unsigned char p = ngi_placed(t, local);
    w_put(w, &p, 1);
  }
  w_end_section(w);
  w_flush(w);
}

/* Build "<dir>/.<base>.tmp-<pid>-<stamp>" for `path` into a fresh allocation
 * of *size bytes, and the directory part into *dir (same allocation). */
static char *temp_name(ng_runtime *rt, const char *path, unsigned attempt, size_t *size,
                       char **dir) {
  size_t plen = strlen(path);
  const char *slash = strrchr(path, '/');
  size_t dlen = slash ? (size_t)(slash - path) : 0;
  const char *base = slash ? slash + 1 : path;
  size_t need = plen + 64 + dlen + 3;
  char *s = ngi_alloc(rt, need);
  if (!s) return NULL;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  unsigned long stamp = (unsigned long)ts.tv_nsec ^ ((unsigned long)ts.tv_sec << 20) ^
                        ((unsigned long)(uintptr_t)&ts >> 4) ^ attempt * 0x9E3779B9ul;
  int n;
  if (slash)
    n = snprintf(s, need, "%.*s/.%s.tmp-%ld-%lx", (int)dlen, path, base, (long)getpid(), stamp);
  else
    n = snprintf(s, need, ".%s.tmp-%ld-%lx", base, (long)getpid(), stamp);
  char *d = s + n + 1;
  if (slash && dlen == 0)
    strcpy(d, "/");
  else if (slash)
    snprintf(d, need - (size_t)n - 1, "%.*s", (int)dlen, path);
  else
    strcpy(d, ".");
  *dir = d;
  *size = need;
  return s;
}

/* fsync a directory so a rename inside it is durable. Filesystems that
 * cannot sync directories (EINVAL) are accepted. */
static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int e = 0;
  if (fsync(fd) != 0 && errno != EINVAL) e = errno;
  close(fd);
  return e;
}

/* Links followed before a save gives up (Linux's own limit, MAXSYMLINKS). */
enum { SAVE_MAX_LINKS = 40 };

/* The file a save of `path` replaces: `path` with every symbolic link
 * followed (a relative target is relative to the link's directory), so that
 * the rename replaces the link's target and the link stays a link; a dangling
 * link resolves to the path it names. Needs: path non-empty.
 * Guarantees on NG_OK: *out is an ngi_alloc'ed string of *out_size bytes;
 * *exists says whether it names an existing regular file, whose permission
 * bits are then in *mode. Fails: NG_EIO when the path (or a link's target)
 * exists and is not a regular file, when a link cannot be read or the chain
 * is too long (ELOOP), or lstat fails other than with ENOENT; NG_ENOMEM. */
static ng_status resolve_target(ng_runtime *rt, const char *fn, const char *path, char **out,
                                size_t *out_size, bool *exists, mode_t *mode) {
  char ebuf[128];
  size_t size = strlen(path) + 1;
  char *cur = ngi_alloc(rt, size);
  if (!cur) return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  memcpy(cur, path, size);
  for (int links = 0;; links++) {
    struct stat sb;
    int e = 0;
    if (lstat(cur, &sb) != 0) {
      e = errno;
      if (e == ENOENT) { /* a new file (a missing directory fails at the temporary file) */
        *exists = false;
        break;
      }
    } else if (S_ISREG(sb.st_mode)) {
      *exists = true;
      *mode = sb.st_mode & 07777;
      break;
    } else if (!S_ISLNK(sb.st_mode)) {
      ngi_free(rt, cur, size);
      return ngi_fail(rt, NG_EIO, "%s: %s is not a regular file; nothing was written", fn, path);
    } else if (links == SAVE_MAX_LINKS) {
      e = ELOOP;
    }
    /* a symbolic link: read it (st_size is its length; 0 on some file systems) */
    size_t cap = !e && sb.st_size > 0 ? (size_t)sb.st_size + 1 : 4096, len = 0;
    char *link = e ? NULL : ngi_alloc(rt, cap);
    if (!e && !link) {
      ngi_free(rt, cur, size);
      return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
    }
    if (!e) {
      ssize_t n = readlink(cur, link, cap);
      if (n < 0)
        e = errno;
      else if ((size_t)n >= cap) /* changed under us, or longer than any path */
        e = ENAMETOOLONG;
      else
        len = (size_t)n;
    }
    if (e) {
      if (link) ngi_free(rt, link, cap);
      ngi_free(rt, cur, size);
      return ngi_fail(rt, NG_EIO, "%s: %s: %s", fn, path, errstr(e, ebuf, sizeof ebuf));
    }
    const char *slash = strrchr(cur, '/');
    size_t dlen = link[0] != '/' && slash ? (size_t)(slash - cur) + 1 : 0;
    size_t next_size = dlen + len + 1;
    char *next = ngi_alloc(rt, next_size);
    if (next) {
      memcpy(next, cur, dlen);
      memcpy(next + dlen, link, len);
      next[dlen + len] = '\0';
    }
    ngi_free(rt, link, cap);
    ngi_free(rt, cur, size);
    if (!next) return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
    cur = next;
    size = next_size;
  }
  *out = cur;
  *out_size = size;
  return NG_OK;
}

ng_status ngi_save_file_open(ng_runtime *rt, const char *fn, const char *path, ngi_save_file *s) {
  char ebuf[128];
  memset(s, 0, sizeof *s);
  s->w.fd = -1;
  ng_status st = resolve_target(rt, fn, path, &s->target, &s->target_size, &s->exists, &s->mode);
  if (st != NG_OK) return st;

  s->w.cap = (size_t)1 << 20;
  s->w.progress = rt->progress;
  s->w.progress_ud = rt->progress_ud;
  s->w.buf = ngi_alloc(rt, s->w.cap);
  if (!s->w.buf) {
    ngi_save_file_free(rt, s);
    return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  }
  for (unsigned attempt = 0; attempt < 32; attempt++) {
    s->tmp = temp_name(rt, s->target, attempt, &s->tmp_size, &s->dir);
    if (!s->tmp) {
      ngi_save_file_free(rt, s);
      return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
    }
    s->w.fd = open(s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (s->w.fd >= 0 || errno != EEXIST) break;
    ngi_free(rt, s->tmp, s->tmp_size);
    s->tmp = NULL;
  }
  if (s->w.fd < 0) {
    int e = errno;
    ngi_save_file_free(rt, s);
    return ngi_fail(rt, NG_EIO, "%s: cannot create a temporary file next to %s: %s", fn, path,
                    errstr(e, ebuf, sizeof ebuf));
  }
  return NG_OK;
}

void ngi_save_file_write(ng_runtime *rt, ngi_save_file *s) {
  write_snapshot(rt, &s->w);
}

int ngi_save_file_commit(ngi_save_file *s, const char **what) {
  int e = s->w.err;
  *what = "writing";
  if (!e && s->exists && fchmod(s->w.fd, s->mode) != 0)
    e = errno, *what = "setting the permissions of";
  if (!e && fsync(s->w.fd) != 0) e = errno, *what = "syncing";
  if (close(s->w.fd) != 0 && !e) e = errno, *what = "closing";
  s->w.fd = -1;
  if (!e && rename(s->tmp, s->target) != 0) e = errno, *what = "renaming the temporary file over";
  if (e) {
    unlink(s->tmp);
  } else if ((e = sync_dir(s->dir)) != 0) {
    *what = "syncing the directory of";
  }
  return e;
}

void ngi_save_file_free(ng_runtime *rt, ngi_save_file *s) {
  if (s->w.fd >= 0) close(s->w.fd);
  s->w.fd = -1;
  if (s->tmp) ngi_free(rt, s->tmp, s->tmp_size);
  if (s->w.buf) ngi_free(rt, s->w.buf, s->w.cap);
  if (s->target) ngi_free(rt, s->target, s->target_size);
  s->tmp = NULL;
  s->w.buf = NULL;
  s->target = NULL;
}

/* Needs: rt, path (a file name, or a symbolic link to one; the directory of
 * the file must be writable).
 * Guarantees: on NG_OK the file at `path` (the final target when `path` is a
 * symbolic link, the link itself staying as it is) holds a complete snapshot
 * of one point in time and is durable (file and directory fsynced); an
 * existing file keeps its permission bits, a new one gets 0666 & ~umask. A
 * crash at any moment leaves either the old file or the new one. The read
 * lock is held only while the bytes are written (not during fsync), so
 * writers wait as little as possible.
 * Fails: NG_EINVAL (NULL arguments), NG_ENOMEM, NG_EIO naming the path and
 * the system's reason, or saying the path exists and is not a regular file
 * (a directory, FIFO, device or socket: nothing is touched); no temporary
 * file is left behind and an existing snapshot at `path` is untouched. */
ng_status ng_snapshot_save(ng_runtime *rt, const char *path) {
  static const char fn[] = "ng_snapshot_save";
  char ebuf[128];
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!path || !*path) return ngi_fail(rt, NG_EINVAL, "%s: path must be a non-empty string", fn);

  ngi_save_file s;
  ng_status st = ngi_save_file_open(rt, fn, path, &s);
  if (st != NG_OK) return st;

  ngi_read_lock(rt);
  ngi_save_file_write(rt, &s);
  ngi_read_unlock(rt);

  const char *what;
  int e = ngi_save_file_commit(&s, &what);
  ngi_save_file_free(rt, &s);
  if (e) return ngi_fail(rt, NG_EIO, "%s: %s %s: %s", fn, what, path, errstr(e, ebuf, sizeof ebuf));
  if (s.w.progress) s.w.progress(s.w.progress_ud, "save", s.w.total, s.w.total);
  return NG_OK;
}

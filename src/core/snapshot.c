/* Snapshots: a runtime saved to one checksummed file atomically, and loaded back with every id. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- the format (docs/format.md is the byte-by-byte specification) -------- */

static const unsigned char snap_magic[8] = {'N', 'G', 'S', 'N', 'A', 'P', '\r', '\n'};

enum {
  SNAP_MAJOR = 1,
  SNAP_MINOR = 0,
  HDR_SIZE = 80,    /* the header this version writes */
  HDR_STABLE = 20,  /* magic, version, header size, endianness: fixed in every version */
  HDR_MIN_ANY = 24, /* smallest header size any version may declare (stable part + CRC) */
  HDR_MAX = 4096,   /* largest header a reader accepts (room for minor-version fields) */
  CDNA_BYTES = 384,
  TOKEN_BYTES = 64,
  CONN_BYTES = 68, /* u32 id + the 64-byte record */
  CRC_BYTES = 4
};

/* Header field offsets. */
enum {
  OFF_MAGIC = 0,
  OFF_MAJOR = 8,
  OFF_MINOR = 10,
  OFF_HSIZE = 12,
  OFF_ENDIAN = 16,
  OFF_FLAGS = 20,
  OFF_NTOK = 24,
  OFF_NCONN = 32,
  OFF_NEXT_TOK = 40,
  OFF_NEXT_CONN = 44,
  OFF_CDNA_LEN = 48,
  OFF_TOK_LEN = 56,
  OFF_CONN_LEN = 64,
  OFF_RESERVED = 72,
  OFF_HCRC = 76
};

#define SNAP_ENDIAN 0x01020304u
#define SNAP_ENDIAN_SWAPPED 0x04030201u

_Static_assert(OFF_HCRC + CRC_BYTES == HDR_SIZE, "the header CRC closes the header");
_Static_assert(sizeof(ng_token) == TOKEN_BYTES, "token image size");
_Static_assert(sizeof(ng_connection) + 4 == CONN_BYTES, "connection entry size");
_Static_assert(sizeof(ng_cdna) == CDNA_BYTES, "CDNA image size");

/* Little-endian field access (neurograph.h refuses big-endian hosts, so these
 * are plain unaligned copies). */
static uint16_t rd16(const unsigned char *p) {
  uint16_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static uint32_t rd32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static uint64_t rd64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static void wr16(unsigned char *p, uint16_t v) { memcpy(p, &v, sizeof v); }
static void wr32(unsigned char *p, uint32_t v) { memcpy(p, &v, sizeof v); }
static void wr64(unsigned char *p, uint64_t v) { memcpy(p, &v, sizeof v); }

/* strerror without the shared static buffer (the XSI strerror_r). */
static const char *errstr(int e, char *buf, size_t size) {
  if (strerror_r(e, buf, size) != 0) snprintf(buf, size, "error %d", e);
  return buf;
}

/* ---- saving ---------------------------------------------------------------- */

/* A buffered writer that checksums the current section as it goes and keeps
 * the first failure's errno so callers can check once at the end. Section
 * bytes are checksummed in whole runs (at a flush, or when raw bytes
 * follow), not per record, so the CRC runs at full speed. */
typedef struct writer {
  int fd;
  unsigned char *buf;
  size_t cap, used;
  size_t pending; /* buf[pending..used) are section bytes not yet checksummed */
  uint32_t crc;   /* CRC-32C of the current section so far */
  int err;        /* errno of the first failed write, 0 if none */
} writer;

static void w_write(writer *w, const unsigned char *p, size_t n) {
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
}

static void w_sum(writer *w) {
  w->crc = ngi_crc32c(w->crc, w->buf + w->pending, w->used - w->pending);
  w->pending = w->used;
}

static void w_flush(writer *w) {
  w_sum(w);
  w_write(w, w->buf, w->used);
  w->used = w->pending = 0;
}

/* Append section payload bytes. Large runs (whole token runs) bypass the
 * buffer: checksummed and written straight from the store's array. */
static void w_put(writer *w, const void *p, size_t n) {
  const unsigned char *s = p;
  if (n >= w->cap / 2) {
    w_flush(w);
    w->crc = ngi_crc32c(w->crc, s, n);
    w_write(w, s, n);
    return;
  }
  if (w->cap - w->used < n) w_flush(w);
  memcpy(w->buf + w->used, s, n);
  w->used += n;
}

/* Append bytes that are not section payload (the header, section CRCs). */
static void w_raw(writer *w, const void *p, size_t n) {
  w_sum(w);
  if (w->cap - w->used < n) w_flush(w);
  memcpy(w->buf + w->used, p, n);
  w->used += n;
  w->pending = w->used;
}

/* Close a section: its CRC-32C follows the payload; the next section starts
 * a fresh checksum. */
static void w_end_section(writer *w) {
  unsigned char c[CRC_BYTES];
  w_sum(w);
  wr32(c, w->crc);
  w_raw(w, c, sizeof c);
  w->crc = 0;
}

static bool put_connection(const ng_connection *c, uint32_t id, void *ud) {
  writer *w = ud;
  unsigned char e[CONN_BYTES];
  wr32(e, id);
  memcpy(e + 4, c, sizeof *c);
  w_put(w, e, sizeof e);
  return w->err == 0;
}

/* Write the whole snapshot of rt to w. Needs: rt's read lock held, so the
 * counts, the records and the CDNA are one point in time. */
static void write_snapshot(ng_runtime *rt, writer *w) {
  const ngi_token_table *t = &rt->tokens;
  size_t nconn = ngi_conns_count(rt->conns);
  unsigned char h[HDR_SIZE];
  memset(h, 0, sizeof h);
  memcpy(h + OFF_MAGIC, snap_magic, sizeof snap_magic);
  wr16(h + OFF_MAJOR, SNAP_MAJOR);
  wr16(h + OFF_MINOR, SNAP_MINOR);
  wr32(h + OFF_HSIZE, HDR_SIZE);
  wr32(h + OFF_ENDIAN, SNAP_ENDIAN);
  wr64(h + OFF_NTOK, t->live);
  wr64(h + OFF_NCONN, nconn);
  wr32(h + OFF_NEXT_TOK, t->next_id);
  wr32(h + OFF_NEXT_CONN, ngi_conns_next_id(rt->conns));
  wr64(h + OFF_CDNA_LEN, CDNA_BYTES);
  wr64(h + OFF_TOK_LEN, (uint64_t)t->live * TOKEN_BYTES);
  wr64(h + OFF_CONN_LEN, (uint64_t)nconn * CONN_BYTES);
  wr32(h + OFF_HCRC, ngi_crc32c(0, h, OFF_HCRC));
  w_raw(w, h, sizeof h);

  w_put(w, &rt->cdna, sizeof rt->cdna);
  w_end_section(w);

  /* Live records sit in ascending id order between tombstones: write them in
   * contiguous runs. */
  size_t i = 0;
  while (i < t->len && !w->err) {
    while (i < t->len && NG_ID_LOCAL(t->recs[i].id) == 0) i++;
    size_t j = i;
    while (j < t->len && NG_ID_LOCAL(t->recs[j].id) != 0) j++;
    if (j > i) w_put(w, &t->recs[i], (j - i) * sizeof *t->recs);
    i = j;
  }
  w_end_section(w);

  ng_connection_each(rt, put_connection, w);
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

/* Needs: rt, path (a file name; its directory must be writable).
 * Guarantees: on NG_OK `path` holds a complete snapshot of one point in time
 * and is durable (file and directory fsynced); a crash at any moment leaves
 * either the old file or the new one. The read lock is held only while the
 * bytes are written (not during fsync), so writers wait as little as possible.
 * Fails: NG_EINVAL (NULL arguments), NG_ENOMEM, NG_EIO naming the path and
 * the system's reason; no temporary file is left behind and an existing
 * snapshot at `path` is untouched. */
ng_status ng_snapshot_save(ng_runtime *rt, const char *path) {
  static const char fn[] = "ng_snapshot_save";
  char ebuf[128];
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!path || !*path) return ngi_fail(rt, NG_EINVAL, "%s: path must be a non-empty string", fn);

  writer w = {.fd = -1, .cap = (size_t)1 << 20};
  w.buf = ngi_alloc(rt, w.cap);
  if (!w.buf) return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);

  char *tmp = NULL, *dir = NULL;
  size_t tmp_size = 0;
  for (unsigned attempt = 0; attempt < 32; attempt++) {
    tmp = temp_name(rt, path, attempt, &tmp_size, &dir);
    if (!tmp) {
      ngi_free(rt, w.buf, w.cap);
      return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
    }
    w.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (w.fd >= 0 || errno != EEXIST) break;
    ngi_free(rt, tmp, tmp_size);
    tmp = NULL;
  }
  if (w.fd < 0) {
    int e = errno;
    if (tmp) ngi_free(rt, tmp, tmp_size);
    ngi_free(rt, w.buf, w.cap);
    return ngi_fail(rt, NG_EIO, "%s: cannot create a temporary file next to %s: %s", fn, path,
                    errstr(e, ebuf, sizeof ebuf));
  }

  ngi_read_lock(rt);
  write_snapshot(rt, &w);
  ngi_read_unlock(rt);

  const char *what = "writing";
  int e = w.err;
  if (!e && fsync(w.fd) != 0) e = errno, what = "syncing";
  if (close(w.fd) != 0 && !e) e = errno, what = "closing";
  if (!e && rename(tmp, path) != 0) e = errno, what = "renaming the temporary file over";
  if (e) {
    unlink(tmp);
  } else if ((e = sync_dir(dir)) != 0) {
    what = "syncing the directory of";
  }
  ngi_free(rt, tmp, tmp_size);
  ngi_free(rt, w.buf, w.cap);
  if (e) return ngi_fail(rt, NG_EIO, "%s: %s %s: %s", fn, what, path, errstr(e, ebuf, sizeof ebuf));
  return NG_OK;
}

/* ---- loading --------------------------------------------------------------- */

/* What a validated header says. Offsets are from the start of the file. */
typedef struct snap_header {
  uint32_t hsize;
  uint64_t ntok, nconn;
  uint32_t next_tok, next_conn;
  uint64_t cdna_off, tok_off, conn_off, total;
} snap_header;

#define CORRUPT(...) ngi_fail(NULL, NG_ECORRUPT, __VA_ARGS__)

/* Needs: p holds the first min(file_len, HDR_MAX) bytes of a file of
 * file_len bytes. Guarantees: on NG_OK *h describes sections that exactly
 * fill the file, with counts that fit the id spaces. Fails: NG_ECORRUPT or
 * NG_EVERSION with the reason (prefixed "ng_snapshot_load: <name>: "). */
static ng_status parse_header(const unsigned char *p, uint64_t file_len, const char *name,
                              snap_header *h) {
  static const char fn[] = "ng_snapshot_load";
  size_t have = file_len < HDR_MAX ? (size_t)file_len : HDR_MAX;
  size_t m = have < sizeof snap_magic ? have : sizeof snap_magic;
  if (memcmp(p, snap_magic, m) != 0)
    return CORRUPT("%s: %s: not a neurograph snapshot (bad magic)", fn, name);
  if (file_len < HDR_STABLE)
    return CORRUPT("%s: %s: truncated: %llu bytes, too short for a header", fn, name,
                   (unsigned long long)file_len);
  uint32_t endian = rd32(p + OFF_ENDIAN);
  if (endian == SNAP_ENDIAN_SWAPPED)
    return CORRUPT("%s: %s: written on a big-endian host, which is not supported", fn, name);
  if (endian != SNAP_ENDIAN)
    return CORRUPT("%s: %s: bad endianness marker 0x%08x", fn, name, endian);
  uint32_t hsize = rd32(p + OFF_HSIZE);
  if (hsize < HDR_MIN_ANY || hsize > HDR_MAX || hsize % 4 != 0)
    return CORRUPT("%s: %s: bad header size %u", fn, name, hsize);
  if (file_len < hsize)
    return CORRUPT("%s: %s: truncated: %llu bytes, the header alone needs %u", fn, name,
                   (unsigned long long)file_len, hsize);
  uint32_t stored = rd32(p + hsize - CRC_BYTES), crc = ngi_crc32c(0, p, hsize - CRC_BYTES);
  if (stored != crc)
    return CORRUPT("%s: %s: header checksum mismatch (stored 0x%08x, computed 0x%08x)", fn, name,
                   stored, crc);
  unsigned major = rd16(p + OFF_MAJOR), minor = rd16(p + OFF_MINOR);
  if (major > SNAP_MAJOR)
    return ngi_fail(NULL, NG_EVERSION,
                    "%s: %s: format version %u.%u is newer than this library reads (%d.x); "
                    "a newer neurograph is needed",
                    fn, name, major, minor, SNAP_MAJOR);
  if (major == 0) return CORRUPT("%s: %s: unknown format version %u.%u", fn, name, major, minor);
  if (hsize < HDR_SIZE)
    return CORRUPT("%s: %s: header size %u is too small for format 1.x", fn, name, hsize);
  if (rd32(p + OFF_FLAGS) != 0)
    return CORRUPT("%s: %s: unknown header flags 0x%08x", fn, name, rd32(p + OFF_FLAGS));
  if (rd32(p + OFF_RESERVED) != 0)
    return CORRUPT("%s: %s: reserved header field is not zero", fn, name);

  h->hsize = hsize;
  h->ntok = rd64(p + OFF_NTOK);
  h->nconn = rd64(p + OFF_NCONN);
  h->next_tok = rd32(p + OFF_NEXT_TOK);
  h->next_conn = rd32(p + OFF_NEXT_CONN);
  if (h->ntok > NG_TOKEN_ID_MAX)
    return CORRUPT("%s: %s: token count %llu exceeds the token id space", fn, name,
                   (unsigned long long)h->ntok);
  if (h->nconn > NG_CONNECTION_ID_MAX)
    return CORRUPT("%s: %s: connection count %llu exceeds the connection id space", fn, name,
                   (unsigned long long)h->nconn);
  if (rd64(p + OFF_CDNA_LEN) != CDNA_BYTES)
    return CORRUPT("%s: %s: CDNA section length %llu, expected %d", fn, name,
                   (unsigned long long)rd64(p + OFF_CDNA_LEN), CDNA_BYTES);
  if (rd64(p + OFF_TOK_LEN) != h->ntok * TOKEN_BYTES)
    return CORRUPT("%s: %s: token section length %llu does not match %llu tokens", fn, name,
                   (unsigned long long)rd64(p + OFF_TOK_LEN), (unsigned long long)h->ntok);
  if (rd64(p + OFF_CONN_LEN) != h->nconn * CONN_BYTES)
    return CORRUPT("%s: %s: connection section length %llu does not match %llu connections", fn,
                   name, (unsigned long long)rd64(p + OFF_CONN_LEN),
                   (unsigned long long)h->nconn);
  if (h->next_tok == 0 || h->next_tok > NG_TOKEN_ID_MAX + 1u)
    return CORRUPT("%s: %s: bad next token id %u", fn, name, h->next_tok);
  if (h->ntok > h->next_tok - 1u)
    return CORRUPT("%s: %s: %llu tokens cannot all have ids below the next id %u", fn, name,
                   (unsigned long long)h->ntok, h->next_tok);
  if (h->next_conn == 0)
    return CORRUPT("%s: %s: bad next connection id 0", fn, name);
  if (h->nconn > h->next_conn - 1u)
    return CORRUPT("%s: %s: %llu connections cannot all have ids below the next id %u", fn, name,
                   (unsigned long long)h->nconn, h->next_conn);

  h->cdna_off = hsize;
  h->tok_off = h->cdna_off + CDNA_BYTES + CRC_BYTES;
  h->conn_off = h->tok_off + h->ntok * TOKEN_BYTES + CRC_BYTES;
  h->total = h->conn_off + h->nconn * CONN_BYTES + CRC_BYTES;
  if (file_len < h->total)
    return CORRUPT("%s: %s: truncated: %llu bytes, the header describes %llu", fn, name,
                   (unsigned long long)file_len, (unsigned long long)h->total);
  if (file_len > h->total)
    return CORRUPT("%s: %s: %llu unexpected bytes after the last section", fn, name,
                   (unsigned long long)(file_len - h->total));
  return NG_OK;
}

/* Allocation before a runtime exists: the caller's allocator when given. */
static void *tmp_alloc(const ng_config *cfg, size_t n) {
  if (cfg && cfg->alloc) return cfg->alloc(cfg->alloc_ud, NULL, 0, n ? n : 1);
  return malloc(n ? n : 1);
}
static void tmp_free(const ng_config *cfg, void *p, size_t n) {
  if (!p) return;
  if (cfg && cfg->alloc)
    cfg->alloc(cfg->alloc_ud, p, n ? n : 1, 0);
  else
    free(p);
}

static ng_status check_section(const unsigned char *buf, uint64_t off, uint64_t len,
                               const char *what, const char *name) {
  uint32_t stored = rd32(buf + off + len), crc = ngi_crc32c(0, buf + off, (size_t)len);
  if (stored != crc)
    return CORRUPT("ng_snapshot_load: %s: %s section checksum mismatch (stored 0x%08x, computed "
                   "0x%08x)",
                   name, what, stored, crc);
  return NG_OK;
}

/* Every token record: ids ascending, unique and below the next id; the entity
 * copy in the id equal to the flags' entity; weight finite within 0..100.
 * Marks every id in `present` (a bitmap of next_tok bits). */
static ng_status check_tokens(const unsigned char *sec, const snap_header *h, uint64_t *present,
                              uint32_t *max_id, const char *name) {
  uint32_t prev = 0;
  for (uint64_t i = 0; i < h->ntok; i++) {
    ng_token t;
    memcpy(&t, sec + i * TOKEN_BYTES, sizeof t);
    uint32_t id = NG_ID_LOCAL(t.id);
    if (id == 0) return CORRUPT("ng_snapshot_load: %s: token record %llu has id 0", name,
                                (unsigned long long)i);
    if (id <= prev)
      return CORRUPT("ng_snapshot_load: %s: token record %llu: id %u is not above the previous id "
                     "%u (ids must ascend)",
                     name, (unsigned long long)i, id, prev);
    if (id >= h->next_tok)
      return CORRUPT("ng_snapshot_load: %s: token %u is not below the next token id %u", name, id,
                     h->next_tok);
    if (NG_ID_ENTITY(t.id) != ng_token_get_entity(&t))
      return CORRUPT("ng_snapshot_load: %s: token %u: entity %u in the id differs from entity %u "
                     "in the flags",
                     name, id, NG_ID_ENTITY(t.id), ng_token_get_entity(&t));
    if (!ngi_finite(t.weight) || t.weight < 0.0f || t.weight > 100.0f)
      return CORRUPT("ng_snapshot_load: %s: token %u: weight must be within 0..100, got %g", name,
                     id, (double)t.weight);
    present[id >> 6] |= (uint64_t)1 << (id & 63);
    prev = id;
  }
  *max_id = prev;
  return NG_OK;
}

static int has_token(const uint64_t *present, uint32_t next_tok, uint32_t id) {
  return id != 0 && id < next_tok && ((present[id >> 6] >> (id & 63)) & 1u);
}

/* The structural checks of ng_connection_create, plus id order. The CDNA's
 * policy limits (allowed types, degrees, strict-mode ranges) are not applied:
 * ng_cdna_set may tighten them after records exist, and a snapshot must
 * reproduce such a store exactly. */
static ng_status check_connection(const ng_connection *c, uint32_t id, uint32_t prev,
                                  const snap_header *h, const uint64_t *present,
                                  const char *name) {
  static const char fn[] = "ng_snapshot_load";
  if (id == 0 || id <= prev)
    return CORRUPT("%s: %s: connection id %u is not above the previous id %u (ids must ascend)", fn,
                   name, id, prev);
  if (id >= h->next_conn)
    return CORRUPT("%s: %s: connection %u is not below the next connection id %u", fn, name, id,
                   h->next_conn);
  if (!has_token(present, h->next_tok, c->token_a_id))
    return CORRUPT("%s: %s: connection %u: from token %u does not exist", fn, name, id,
                   c->token_a_id);
  if (!has_token(present, h->next_tok, c->token_b_id))
    return CORRUPT("%s: %s: connection %u: to token %u does not exist", fn, name, id,
                   c->token_b_id);
  if (c->connection_type >= NG_CONN_TYPES)
    return CORRUPT("%s: %s: connection %u: unknown connection type 0x%02X", fn, name, id,
                   (unsigned)c->connection_type);
  if (c->mutability > NG_HYPOTHESIS)
    return CORRUPT("%s: %s: connection %u: mutability must be 0..2, got %u", fn, name, id,
                   (unsigned)c->mutability);
  if (!ngi_finite(c->pull_strength) || c->pull_strength < -10.0f || c->pull_strength > 10.0f)
    return CORRUPT("%s: %s: connection %u: pull_strength must be finite within -10..10, got %g", fn,
                   name, id, (double)c->pull_strength);
  if (!ngi_finite(c->preferred_distance) || c->preferred_distance < 0.01f ||
      c->preferred_distance > 100.0f)
    return CORRUPT("%s: %s: connection %u: preferred_distance must be finite within 0.01..100, "
                   "got %g",
                   fn, name, id, (double)c->preferred_distance);
  if (c->padding1 != 0)
    return CORRUPT("%s: %s: connection %u: padding is not zero", fn, name, id);
  return NG_OK;
}

/* (from, to, type) packed into one non-zero u64; exact because validated
 * endpoints are token ids below 2^24 and types fit 8 bits. */
static uint64_t dup_key(const unsigned char *entry) {
  ng_connection c;
  memcpy(&c, entry + 4, sizeof c);
  return (uint64_t)c.token_a_id << 32 | (uint64_t)c.token_b_id << 8 | c.connection_type;
}

static size_t dup_slot(uint64_t k, size_t mask) {
  k *= 0x9E3779B97F4A7C15ull;
  return (size_t)(k ^ (k >> 29)) & mask;
}

/* No two connections with the same (from, to, type), found with an open-
 * addressing set of packed keys (one memory access per connection) sized
 * from the (already length-checked) count. Needs: endpoints validated.
 * Fails: NG_ECORRUPT naming both ids, NG_ENOMEM. */
static ng_status check_duplicates(const unsigned char *sec, const snap_header *h,
                                  const ng_config *cfg, const char *name) {
  if (h->nconn < 2) return NG_OK;
  size_t cap = 16;
  while (cap < h->nconn * 2) cap *= 2;
  uint64_t *set = tmp_alloc(cfg, cap * sizeof *set);
  if (!set)
    return ngi_fail(NULL, NG_ENOMEM, "ng_snapshot_load: %s: out of memory checking connections",
                    name);
  memset(set, 0, cap * sizeof *set);
  ng_status st = NG_OK;
  for (uint64_t i = 0; i < h->nconn; i++) {
    uint64_t k = dup_key(sec + i * CONN_BYTES);
    size_t b = dup_slot(k, cap - 1);
    while (set[b] && set[b] != k) b = (b + 1) & (cap - 1);
    if (set[b] == k) {
      uint64_t first = 0; /* the rare path: find the earlier twin for the message */
      while (dup_key(sec + first * CONN_BYTES) != k) first++;
      st = CORRUPT("ng_snapshot_load: %s: connections %u and %u are duplicates (same from, to "
                   "and type)",
                   name, rd32(sec + first * CONN_BYTES), rd32(sec + i * CONN_BYTES));
      break;
    }
    set[b] = k;
  }
  tmp_free(cfg, set, cap * sizeof *set);
  return st;
}

/* Validate everything in buf (header, checksums, CDNA, every record). Fills
 * *h, *cdna, the token presence bitmap (*present, next_tok bits, allocated
 * here and owned by the caller) and *max_id. Nothing else is allocated. */
static ng_status validate(const unsigned char *buf, size_t len, const ng_config *cfg,
                          const char *name, snap_header *h, ng_cdna *cdna, uint64_t **present,
                          size_t *present_size, uint32_t *max_id) {
  ng_status st = parse_header(buf, len, name, h);
  if (st != NG_OK) return st;
  if ((st = check_section(buf, h->cdna_off, CDNA_BYTES, "CDNA", name)) != NG_OK) return st;
  if ((st = check_section(buf, h->tok_off, h->ntok * TOKEN_BYTES, "token", name)) != NG_OK)
    return st;
  if ((st = check_section(buf, h->conn_off, h->nconn * CONN_BYTES, "connection", name)) != NG_OK)
    return st;

  memcpy(cdna, buf + h->cdna_off, sizeof *cdna);
  char why[160];
  if (ng_cdna_validate(cdna, why, sizeof why) != NG_OK)
    return CORRUPT("ng_snapshot_load: %s: invalid CDNA block: %s", name, why);

  /* next_tok <= 2^24, so the bitmap is at most 2 MiB whatever the header says. */
  *present_size = ((size_t)h->next_tok / 64 + 1) * sizeof **present;
  *present = tmp_alloc(cfg, *present_size);
  if (!*present)
    return ngi_fail(NULL, NG_ENOMEM, "ng_snapshot_load: %s: out of memory checking tokens", name);
  memset(*present, 0, *present_size);
  if ((st = check_tokens(buf + h->tok_off, h, *present, max_id, name)) != NG_OK) return st;

  const unsigned char *sec = buf + h->conn_off;
  uint32_t prev = 0;
  for (uint64_t i = 0; i < h->nconn; i++) {
    ng_connection c;
    uint32_t id = rd32(sec + i * CONN_BYTES);
    memcpy(&c, sec + i * CONN_BYTES + 4, sizeof c);
    if ((st = check_connection(&c, id, prev, h, *present, name)) != NG_OK) return st;
    prev = id;
  }
  return check_duplicates(sec, h, cfg, name);
}

/* Fill rt's (empty) token table from the validated token section, then index
 * every space in bulk. */
static ng_status build_tokens(ng_runtime *rt, const unsigned char *sec, const snap_header *h,
                              uint32_t max_id) {
  ngi_token_table *t = &rt->tokens;
  ngi_tokens_destroy(rt, t);
  t->next_id = h->next_tok;
  if (h->ntok > 0) {
    size_t n = (size_t)h->ntok;
    t->recs = ngi_alloc_array(rt, n, sizeof *t->recs);
    if (!t->recs) return NG_ENOMEM;
    t->cap = n;
    t->slot_of = ngi_alloc_array(rt, (size_t)max_id + 1, sizeof *t->slot_of);
    if (!t->slot_of) return NG_ENOMEM;
    t->slot_cap = (size_t)max_id + 1;
    memcpy(t->recs, sec, n * sizeof *t->recs);
    memset(t->slot_of, 0xFF, t->slot_cap * sizeof *t->slot_of); /* NGI_NONE everywhere */
    for (size_t i = 0; i < n; i++) t->slot_of[NG_ID_LOCAL(t->recs[i].id)] = (uint32_t)i;
    t->len = t->live = n;
  }
  for (int s = 0; s < NG_SPACES; s++) {
    ng_status st = ngi_grid_rebuild(rt, &rt->grids[s], rt->cdna.bucket_sizes[s], t);
    if (st != NG_OK) return st;
  }
  return NG_OK;
}

/* Needs: data[0..len) holds a whole snapshot file; name is used in messages.
 * Guarantees: on NG_OK *out is a new runtime (one reference) holding exactly
 * the file's CDNA, tokens and connections with their ids, indexes rebuilt.
 * Fails: NG_ECORRUPT / NG_EVERSION with the reason, NG_ENOMEM; *out NULL,
 * nothing leaked. Everything is validated before any runtime is built, and no
 * allocation is sized by a header field that the data length has not
 * confirmed. */
ng_status ngi_snapshot_load_mem(const void *data, size_t len, const ng_config *cfg,
                                const char *name, ng_runtime **out) {
  if (!out) return ngi_fail(NULL, NG_EINVAL, "ng_snapshot_load: out must not be NULL");
  *out = NULL;
  if (!data && len) return ngi_fail(NULL, NG_EINVAL, "ng_snapshot_load: data must not be NULL");
  if (!name) name = "(memory)";
  static const unsigned char empty[1];
  const unsigned char *buf = len ? data : empty;

  snap_header h;
  ng_cdna cdna;
  uint64_t *present = NULL;
  size_t present_size = 0;
  uint32_t max_id = 0;
  ng_status st = validate(buf, len, cfg, name, &h, &cdna, &present, &present_size, &max_id);
  tmp_free(cfg, present, present_size);
  if (st != NG_OK) return st;

  ng_config c = {0};
  if (cfg) c = *cfg;
  c.cdna = &cdna;
  c.initial_tokens = 0;
  c.initial_connections = 0;
  ng_runtime *rt = NULL;
  st = ng_runtime_new(&c, &rt);
  if (st != NG_OK) return st;
  st = build_tokens(rt, buf + h.tok_off, &h, max_id);
  if (st == NG_OK)
    st = ngi_conns_restore(rt, rt->conns, buf + h.conn_off, (size_t)h.nconn, h.next_conn);
  if (st != NG_OK) {
    ng_runtime_release(rt);
    return ngi_fail(NULL, st, "ng_snapshot_load: %s: %s while building the runtime", name,
                    ng_strerror(st));
  }
  *out = rt;
  return NG_OK;
}

/* Read exactly n bytes. Returns 0, or an errno value (EIO when the file ends
 * early, so a concurrently truncated file is reported rather than misread). */
static int read_full(int fd, unsigned char *p, size_t n, size_t *got) {
  *got = 0;
  while (*got < n) {
    size_t want = n - *got > ((size_t)1 << 30) ? (size_t)1 << 30 : n - *got;
    ssize_t r = read(fd, p + *got, want);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (r == 0) return 0;
    *got += (size_t)r;
  }
  return 0;
}

/* Needs: path, out; cfg may be NULL (its allocator, clock and hints are used;
 * its profile and cdna are replaced by the file's CDNA).
 * Guarantees: as ngi_snapshot_load_mem. The header is read and checked against
 * the file's real length before the file is read whole, so a lying header
 * never causes an allocation.
 * Fails: NG_EINVAL, NG_EIO (cannot open/read, naming the path and reason),
 * NG_ECORRUPT, NG_EVERSION, NG_ENOMEM. */
ng_status ng_snapshot_load(const char *path, const ng_config *cfg, ng_runtime **out) {
  static const char fn[] = "ng_snapshot_load";
  char ebuf[128];
  if (!out) return ngi_fail(NULL, NG_EINVAL, "%s: out must not be NULL", fn);
  *out = NULL;
  if (!path || !*path) return ngi_fail(NULL, NG_EINVAL, "%s: path must be a non-empty string", fn);

  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return ngi_fail(NULL, NG_EIO, "%s: cannot open %s: %s", fn, path, errstr(e, ebuf, sizeof ebuf));
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    return ngi_fail(NULL, NG_EIO, "%s: %s: %s", fn, path, errstr(e, ebuf, sizeof ebuf));
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    return ngi_fail(NULL, NG_EIO, "%s: %s is not a regular file", fn, path);
  }
  uint64_t size = (uint64_t)sb.st_size;
  if (size > SIZE_MAX / 2) {
    close(fd);
    return CORRUPT("%s: %s: file too large (%llu bytes)", fn, path, (unsigned long long)size);
  }

  unsigned char head[HDR_MAX];
  size_t nhead = size < HDR_MAX ? (size_t)size : HDR_MAX, got = 0;
  int e = read_full(fd, head, nhead, &got);
  ng_status st = NG_OK;
  if (e) {
    st = ngi_fail(NULL, NG_EIO, "%s: reading %s: %s", fn, path, errstr(e, ebuf, sizeof ebuf));
  } else if (got != nhead) {
    st = CORRUPT("%s: %s: the file changed size while being read", fn, path);
  } else {
    snap_header h;
    st = parse_header(head, size, path, &h);
  }
  if (st != NG_OK) {
    close(fd);
    return st;
  }

  unsigned char *buf = tmp_alloc(cfg, (size_t)size);
  if (!buf) {
    close(fd);
    return ngi_fail(NULL, NG_ENOMEM, "%s: %s: out of memory reading %llu bytes", fn, path,
                    (unsigned long long)size);
  }
  memcpy(buf, head, nhead);
  size_t rest = 0;
  unsigned char extra;
  size_t extra_got = 0;
  e = read_full(fd, buf + nhead, (size_t)size - nhead, &rest);
  if (!e) e = read_full(fd, &extra, 1, &extra_got);
  close(fd);
  if (e)
    st = ngi_fail(NULL, NG_EIO, "%s: reading %s: %s", fn, path, errstr(e, ebuf, sizeof ebuf));
  else if (rest != (size_t)size - nhead || extra_got)
    st = CORRUPT("%s: %s: the file changed size while being read", fn, path);
  else
    st = ngi_snapshot_load_mem(buf, (size_t)size, cfg, path, out);
  tmp_free(cfg, buf, (size_t)size);
  return st;
}

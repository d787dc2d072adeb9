/* The snapshot format shared by the saver and the loader: magic, versions, header offsets,
 * record sizes and little-endian field access (docs/format.md is the byte-by-byte
 * specification). */
#ifndef NG_CORE_SNAPSHOT_FORMAT_H
#define NG_CORE_SNAPSHOT_FORMAT_H

#include "internal.h"

#include <stdio.h>
#include <sys/types.h>
#include <string.h>

/* ---- the format (docs/format.md is the byte-by-byte specification) -------- */

static const unsigned char snap_magic[8] = {'N', 'G', 'S', 'N', 'A', 'P', '\r', '\n'};

enum {
  SNAP_MAJOR = 3,
  SNAP_MINOR = 0,
  HDR_SIZE = 80,    /* the header this version writes */
  HDR_STABLE = 20,  /* magic, version, header size, endianness: fixed in every version */
  HDR_MIN_ANY = 24, /* smallest header size any version may declare (stable part + CRC) */
  HDR_MAX = 4096,   /* largest header a reader accepts (room for minor-version fields) */
  CDNA_BYTES = 384,
  TOKEN_BYTES = 64,
  CONN_BYTES = 68, /* u32 slot + the 64-byte record */
  CRC_BYTES = 4,
  IDGEN_BYTES = 48 /* an id allocator's state in the ids section (2.0) */
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
  OFF_NEXT_TOK = 40,  /* 1.x: u32 next token id */
  OFF_NEXT_CONN = 44, /* 1.x: u32 next connection id */
  OFF_IDS_LEN = 40,   /* 2.x: u64 length of the ids section */
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
static inline uint16_t rd16(const unsigned char *p) {
  uint16_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline uint32_t rd32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline uint64_t rd64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void wr16(unsigned char *p, uint16_t v) {
  memcpy(p, &v, sizeof v);
}
static inline void wr32(unsigned char *p, uint32_t v) {
  memcpy(p, &v, sizeof v);
}
static inline void wr64(unsigned char *p, uint64_t v) {
  memcpy(p, &v, sizeof v);
}

/* strerror without the shared static buffer (the XSI strerror_r). */
static inline const char *errstr(int e, char *buf, size_t size) {
  if (strerror_r(e, buf, size) != 0) snprintf(buf, size, "error %d", e);
  return buf;
}

/* ---- snapshot_save.c: a save in steps (ng_snapshot_save, and the background
 * save of snapshot_bg.c, which runs the last steps in a child process) ------- */

/* A buffered writer that checksums the current section as it goes and keeps
 * the first failure's errno so callers can check once at the end. Section
 * bytes are checksummed in whole runs (at a flush, or when raw bytes
 * follow), not per record, so the CRC runs at full speed. */
typedef struct ngi_writer {
  int fd;
  unsigned char *buf;
  size_t cap, used;
  size_t pending; /* buf[pending..used) are section bytes not yet checksummed */
  uint32_t crc;   /* CRC-32C of the current section so far */
  int err;        /* errno of the first failed write, 0 if none */
  ng_progress_fn progress; /* NULL: no reports */
  void *progress_ud;
  uint64_t written, total, reported; /* bytes: written so far, the file's, at the last report */
} ngi_writer;

/* A save under way: the writer on the temporary file, and the file it replaces. */
typedef struct ngi_save_file {
  ngi_writer w;               /* w.fd: the temporary file (-1 once closed) */
  char *target;               /* the file replaced: the path with its links followed */
  size_t target_size;
  bool exists;                /* whether target exists (a regular file), */
  mode_t mode;                /* then its permission bits */
  char *tmp, *dir;            /* the temporary file's name; its directory (same allocation) */
  size_t tmp_size;
} ngi_save_file;

/* Step 1: resolve `path` (links followed), allocate the buffer, create the
 * temporary file beside the target. `fn` names the caller in messages.
 * Fails as ng_snapshot_save does before writing (recorded on rt), with
 * nothing left behind and *s needing no ngi_save_file_free. No lock needed. */
ng_status ngi_save_file_open(ng_runtime *rt, const char *fn, const char *path, ngi_save_file *s);
/* Step 2: write the whole snapshot into the temporary file (a write error
 * is kept in s->w.err). Needs: a lock on rt held, so it is one point in time. */
void ngi_save_file_write(ng_runtime *rt, ngi_save_file *s);
/* Step 3: make the temporary file the target: permission bits, fsync,
 * close, rename, directory fsync; on failure the temporary file is removed.
 * Returns 0 or the errno, with *what saying which step failed ("writing",
 * "syncing", ...). Touches no runtime, allocates nothing, takes no lock: the
 * background save's child runs it. */
int ngi_save_file_commit(ngi_save_file *s, const char **what);
/* Free what step 1 allocated and close the temporary file if still open
 * (the file itself stays: step 3 renames or removes it). */
void ngi_save_file_free(ng_runtime *rt, ngi_save_file *s);

#endif

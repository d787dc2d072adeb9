/* The snapshot format shared by the saver and the loader: magic, versions, header offsets,
 * record sizes and little-endian field access (docs/format.md is the byte-by-byte
 * specification). */
#ifndef NG_CORE_SNAPSHOT_FORMAT_H
#define NG_CORE_SNAPSHOT_FORMAT_H

#include "internal.h"

#include <stdio.h>
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

#endif

/* The journal file's bytes (docs/format.md, "Journal file"), shared by the
 * writer (journal.c) and the reader (journal_replay.c). */
#ifndef NG_CORE_JOURNAL_FORMAT_H
#define NG_CORE_JOURNAL_FORMAT_H

#include "internal.h"
#include "snapshot_format.h"

#include <stddef.h>

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
static inline size_t delta_bytes(uint32_t m) {
  size_t n = DELTA_HEAD;
  for (int s = 0; s < NG_SPACES; s++)
    if (m & D_COORDS(s)) n += COORD_BYTES;
  for (size_t k = 0; k < sizeof delta_fields / sizeof delta_fields[0]; k++)
    if (m & delta_fields[k].bit) n += delta_fields[k].size;
  return n;
}

static inline size_t align8(size_t n) {
  return (n + 7) & ~(size_t)7;
}

/* The CRC of a record at p of `len` bytes: everything after the CRC field,
 * then the length field. */
static inline uint32_t record_crc(const unsigned char *p, size_t len) {
  return ngi_crc32c(ngi_crc32c(0, p + 8, len - 8), p, 4);
}

#endif

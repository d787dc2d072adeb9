/* Loading a snapshot: everything validated before a runtime is built, every id kept. */
#include "snapshot_format.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- loading --------------------------------------------------------------- */

/* What a validated header says. Offsets are from the start of the file. */
typedef struct snap_header {
  unsigned major;
  uint32_t hsize;
  uint64_t ntok, nconn;
  uint32_t next_tok, next_conn; /* 1.x */
  uint64_t ids_len;             /* 2.x */
  uint64_t cdna_off, tok_off, conn_off, ids_off, total;
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

  h->major = major;
  h->hsize = hsize;
  h->ntok = rd64(p + OFF_NTOK);
  h->nconn = rd64(p + OFF_NCONN);
  h->next_tok = major == 1 ? rd32(p + OFF_NEXT_TOK) : 0;
  h->next_conn = major == 1 ? rd32(p + OFF_NEXT_CONN) : 0;
  h->ids_len = major == 1 ? 0 : rd64(p + OFF_IDS_LEN);
  if (h->ntok > NG_TOKEN_SLOT_MAX)
    return CORRUPT("%s: %s: token count %llu exceeds the token slots", fn, name,
                   (unsigned long long)h->ntok);
  if (h->nconn > NG_CONNECTION_SLOT_MAX)
    return CORRUPT("%s: %s: connection count %llu exceeds the connection slots", fn, name,
                   (unsigned long long)h->nconn);
  if (rd64(p + OFF_CDNA_LEN) != CDNA_BYTES)
    return CORRUPT("%s: %s: CDNA section length %llu, expected %d", fn, name,
                   (unsigned long long)rd64(p + OFF_CDNA_LEN), CDNA_BYTES);
  if (rd64(p + OFF_TOK_LEN) != h->ntok * TOKEN_BYTES)
    return CORRUPT("%s: %s: token section length %llu does not match %llu tokens", fn, name,
                   (unsigned long long)rd64(p + OFF_TOK_LEN), (unsigned long long)h->ntok);
  if (rd64(p + OFF_CONN_LEN) != h->nconn * CONN_BYTES)
    return CORRUPT("%s: %s: connection section length %llu does not match %llu connections", fn,
                   name, (unsigned long long)rd64(p + OFF_CONN_LEN), (unsigned long long)h->nconn);
  if (major == 1) {
    if (h->next_tok == 0 || h->next_tok > NG_TOKEN_SLOT_MAX + 1u)
      return CORRUPT("%s: %s: bad next token id %u", fn, name, h->next_tok);
    if (h->ntok > h->next_tok - 1u)
      return CORRUPT("%s: %s: %llu tokens cannot all have ids below the next id %u", fn, name,
                     (unsigned long long)h->ntok, h->next_tok);
    if (h->next_conn == 0) return CORRUPT("%s: %s: bad next connection id 0", fn, name);
    if (h->nconn > h->next_conn - 1u)
      return CORRUPT("%s: %s: %llu connections cannot all have ids below the next id %u", fn, name,
                     (unsigned long long)h->nconn, h->next_conn);
  } else if (h->ids_len > file_len) { /* also keeps the offsets below from overflowing */
    return CORRUPT("%s: %s: truncated: %llu bytes, the header describes an ids section of %llu", fn,
                   name, (unsigned long long)file_len, (unsigned long long)h->ids_len);
  } else if (h->ids_len < 2 * IDGEN_BYTES + 4 * (h->ntok + h->nconn) +
                              (major >= 3 ? h->ntok : 0)) {
    return CORRUPT("%s: %s: ids section length %llu does not fit %llu tokens and %llu "
                   "connections",
                   fn, name, (unsigned long long)h->ids_len, (unsigned long long)h->ntok,
                   (unsigned long long)h->nconn);
  }

  h->cdna_off = hsize;
  h->tok_off = h->cdna_off + CDNA_BYTES + CRC_BYTES;
  h->conn_off = h->tok_off + h->ntok * TOKEN_BYTES + CRC_BYTES;
  h->ids_off = h->conn_off + h->nconn * CONN_BYTES + CRC_BYTES;
  h->total = h->ids_off + (major == 1 ? 0 : h->ids_len + CRC_BYTES);
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

/* An id allocator's state as a snapshot gives it: from the ids section (2.x)
 * or derived from the next id (1.x: no slot was ever reused, and the holes
 * below the next id stay unused, so they count as retired). */
typedef struct ids_state {
  uint64_t epoch, fresh, last, retired;
  const uint32_t *ready, *pending, *gens; /* into the ids section; gens NULL: all 0 */
  size_t nready, npending;
} ids_state;

static ids_state ids_v1(uint32_t next, uint64_t live) {
  ids_state s = {0};
  s.fresh = next;
  s.last = next - 1u;
  s.retired = next - 1u - live;
  return s;
}

/* Take one allocator's state and `n` generations from the ids section at
 * *at (of len bytes; 4-byte aligned). Fails: NG_ECORRUPT when it runs past
 * the section. */
static ng_status take_ids(const unsigned char *sec, uint64_t len, uint64_t *at, uint64_t n,
                          const char *what, const char *name, ids_state *s) {
  if (len - *at < IDGEN_BYTES) goto short_;
  const unsigned char *p = sec + *at;
  s->epoch = rd64(p);
  s->fresh = rd64(p + 8);
  s->last = rd64(p + 16);
  s->retired = rd64(p + 24);
  uint64_t nr = rd64(p + 32), np = rd64(p + 40);
  *at += IDGEN_BYTES;
  if (nr > (len - *at) / 4 || np > (len - *at) / 4 - nr || n > (len - *at) / 4 - nr - np)
    goto short_;
  s->ready = (const uint32_t *)(const void *)(sec + *at);
  s->nready = (size_t)nr;
  s->pending = s->ready + nr;
  s->npending = (size_t)np;
  s->gens = s->pending + np;
  *at += 4 * (nr + np + n);
  return NG_OK;
short_:
  return CORRUPT("ng_snapshot_load: %s: the ids section is too short for the %s", name, what);
}

/* The allocator rules every snapshot keeps (slot_bits and slot_max of its
 * kind; `live` records, the largest of whose ids is max_id): a generation
 * within its bits, free slots below fresh, every slot accounted for once
 * (live, free or retired), and the last id issued no smaller than any live
 * one. Uniqueness of the free slots is checked by the caller. */
static ng_status check_ids(const ids_state *s, unsigned slot_bits, uint64_t slot_max, uint64_t live,
                           ng_id max_id, const char *what, const char *name) {
  static const char fn[] = "ng_snapshot_load";
  if (s->epoch > (NG_ID_MAX >> slot_bits) || s->fresh == 0 || s->fresh > slot_max + 1)
    return CORRUPT("%s: %s: bad %s id state (epoch %llu, fresh slot %llu)", fn, name, what,
                   (unsigned long long)s->epoch, (unsigned long long)s->fresh);
  if (live + s->nready + s->npending + s->retired != s->fresh - 1)
    return CORRUPT("%s: %s: %s slots do not add up: %llu live, %zu free, %llu retired, %llu used",
                   fn, name, what, (unsigned long long)live, s->nready + s->npending,
                   (unsigned long long)s->retired, (unsigned long long)(s->fresh - 1));
  if (s->last < max_id || s->last > NG_ID_MAX || (s->last >> slot_bits) > s->epoch)
    return CORRUPT("%s: %s: bad last %s id %llu", fn, name, what, (unsigned long long)s->last);
  for (size_t i = 0; i < s->nready + s->npending; i++) {
    uint32_t slot = s->ready[i]; /* ready and pending are contiguous */
    if (slot == 0 || slot >= s->fresh)
      return CORRUPT("%s: %s: free %s slot %u is not below the fresh slot %llu", fn, name, what,
                     slot, (unsigned long long)s->fresh);
    if (i > 0 && i < s->nready && slot <= s->ready[i - 1])
      return CORRUPT("%s: %s: the ready %s slots must ascend", fn, name, what);
  }
  return NG_OK;
}

/* Every token record (the first ntok slots of tab): ids (slot and
 * generation) ascending, slots unique and below the fresh slot, generations
 * within the epoch; the entity copy in the id equal to the flags' entity;
 * the structural record rules (ng_token_validate without a CDNA). Marks every slot in `present` (a
 * bitmap of fresh bits), then the free slots, each of which must be unmarked. */
static ng_status check_tokens(const ngi_token_table *tab, const snap_header *h,
                              const ids_state *ids, uint64_t *present, const uint8_t *placed,
                              const char *name) {
  ng_id prev = 0;
  const ng_token *run = NULL;
  for (uint64_t i = 0, run_end = 0; i < h->ntok; i++) {
    if (i == run_end) { /* the next span of records contiguous in memory */
      run = ngi_tok_at(tab, (size_t)i);
      run_end = i + ngi_tok_run((size_t)i);
    }
    ng_token t;
    memcpy(&t, run++, sizeof t);
    uint32_t local = NG_ID_LOCAL(t.id);
    uint64_t gen = ids->gens ? ids->gens[i] : 0;
    unsigned long long id = gen << NG_TOKEN_SLOT_BITS | local;
    if (local == 0)
      return CORRUPT("ng_snapshot_load: %s: token record %llu has id 0", name,
                     (unsigned long long)i);
    if (id <= prev)
      return CORRUPT("ng_snapshot_load: %s: token record %llu: id %llu is not above the previous "
                     "id %llu (ids must ascend)",
                     name, (unsigned long long)i, id, (unsigned long long)prev);
    if (local >= ids->fresh || gen > ids->epoch)
      return CORRUPT("ng_snapshot_load: %s: token %llu is beyond the id state (fresh slot %llu, "
                     "epoch %llu)",
                     name, id, (unsigned long long)ids->fresh, (unsigned long long)ids->epoch);
    if ((present[local >> 6] >> (local & 63)) & 1u)
      return CORRUPT("ng_snapshot_load: %s: token %llu: slot %u is used twice", name, id, local);
    if (NG_ID_ENTITY(t.id) != ng_token_get_entity(&t))
      return CORRUPT("ng_snapshot_load: %s: token %llu: entity %u in the id differs from entity "
                     "%u in the flags",
                     name, id, NG_ID_ENTITY(t.id), ng_token_get_entity(&t));
    char why[192];
    if (ng_token_validate(&t, NG_TF_ALL, NULL, why, sizeof why) != NG_OK)
      return CORRUPT("ng_snapshot_load: %s: token %llu: %s", name, id, why);
    for (int s = 0; placed && s < NG_SPACES; s++) /* 3.0: a space left holds 0 */
      if (!(placed[i] >> s & 1u) && (t.coords[s][0] | t.coords[s][1] | t.coords[s][2]))
        return CORRUPT("ng_snapshot_load: %s: token %llu has coordinates in %s, where it is not "
                       "placed",
                       name, id, ng_space_name(s));
    present[local >> 6] |= (uint64_t)1 << (local & 63);
    prev = id;
  }
  ng_status st =
      check_ids(ids, NG_TOKEN_SLOT_BITS, NG_TOKEN_SLOT_MAX, h->ntok, prev, "token", name);
  if (st != NG_OK) return st;
  for (size_t i = 0; i < ids->nready + ids->npending; i++) {
    uint32_t s = ids->ready[i];
    if ((present[s >> 6] >> (s & 63)) & 1u)
      return CORRUPT("ng_snapshot_load: %s: free token slot %u is also in use", name, s);
    present[s >> 6] |= (uint64_t)1 << (s & 63);
  }
  /* Free slots are marked too now; connections must not name them. */
  for (size_t i = 0; i < ids->nready + ids->npending; i++) {
    uint32_t s = ids->ready[i];
    present[s >> 6] &= ~((uint64_t)1 << (s & 63));
  }
  return NG_OK;
}

static int has_token(const uint64_t *present, uint64_t fresh, uint32_t local) {
  return local != 0 && local < fresh && ((present[local >> 6] >> (local & 63)) & 1u);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* The connection slots, live and free, are all different: sorted when they
 * do not already ascend (a connection slot space is too large for a
 * bitmap). Fails: NG_ECORRUPT, NG_ENOMEM. */
static ng_status check_conn_slots(const unsigned char *sec, const snap_header *h,
                                  const ids_state *ids, const ng_config *cfg, const char *name) {
  size_t nfree = ids->nready + ids->npending, n = (size_t)h->nconn + nfree;
  bool ascending = nfree == 0;
  for (size_t i = 1; ascending && i < h->nconn; i++)
    ascending = rd32(sec + i * CONN_BYTES) > rd32(sec + (i - 1) * CONN_BYTES);
  if (ascending || n < 2) return NG_OK;
  uint32_t *all = tmp_alloc(cfg, n * sizeof *all);
  if (!all)
    return ngi_fail(NULL, NG_ENOMEM, "ng_snapshot_load: %s: out of memory checking connections",
                    name);
  for (size_t i = 0; i < h->nconn; i++)
    all[i] = rd32(sec + i * CONN_BYTES);
  memcpy(all + h->nconn, ids->ready, nfree * sizeof *all);
  qsort(all, n, sizeof *all, cmp_u32);
  ng_status st = NG_OK;
  for (size_t i = 1; i < n && st == NG_OK; i++)
    if (all[i] == all[i - 1])
      st = CORRUPT("ng_snapshot_load: %s: connection slot %u is used twice", name, all[i]);
  tmp_free(cfg, all, n * sizeof *all);
  return st;
}

/* The structural record rules (ng_connection_validate without a CDNA), plus
 * id order. The CDNA's policy limits (allowed types, degrees, strict-mode
 * ranges) are not applied:
 * ng_cdna_set may tighten them after records exist, and a snapshot must
 * reproduce such a store exactly. */
static ng_status check_connection(const ng_connection *c, ng_id cid, ng_id prev,
                                  const ids_state *cids, const ids_state *tids,
                                  const uint64_t *present, const char *name) {
  static const char fn[] = "ng_snapshot_load";
  unsigned long long id = cid;
  if ((uint32_t)cid == 0 || cid <= prev)
    return CORRUPT("%s: %s: connection id %llu is not above the previous id %llu (ids must "
                   "ascend)",
                   fn, name, id, (unsigned long long)prev);
  if ((uint32_t)cid >= cids->fresh || (cid >> NG_CONNECTION_SLOT_BITS) > cids->epoch)
    return CORRUPT("%s: %s: connection %llu is beyond the id state (fresh slot %llu, epoch %llu)",
                   fn, name, id, (unsigned long long)cids->fresh, (unsigned long long)cids->epoch);
  if (!has_token(present, tids->fresh, c->token_a_id))
    return CORRUPT("%s: %s: connection %llu: from token %u does not exist", fn, name, id,
                   c->token_a_id);
  if (!has_token(present, tids->fresh, c->token_b_id))
    return CORRUPT("%s: %s: connection %llu: to token %u does not exist", fn, name, id,
                   c->token_b_id);
  char why[192];
  if (ng_connection_validate(c, NG_CF_ALL, NULL, why, sizeof why) != NG_OK)
    return CORRUPT("%s: %s: connection %llu: %s", fn, name, id, why);
  if (c->padding1 != 0)
    return CORRUPT("%s: %s: connection %llu: padding is not zero", fn, name, id);
  return NG_OK;
}

/* (from, to, type) packed into one non-zero u64; exact because validated
 * endpoints are token ids below 2^24 and types fit 8 bits. */
static uint64_t dup_key(const unsigned char *entry) {
  ng_connection c;
  memcpy(&c, entry + 4, sizeof c);
  return (uint64_t)c.token_a_id << 32 | (uint64_t)c.token_b_id << 8 | c.connection_type;
}

/* How many entries ahead check_connections prefetches its duplicate set's buckets. */
#define DUP_AHEAD 12

static size_t dup_slot(uint64_t k, size_t mask) {
  k *= 0x9E3779B97F4A7C15ull;
  return (size_t)(k ^ (k >> 29)) & mask;
}

/* Every connection entry of the (length-checked) section, in one pass:
 * check_connection's rules, then no two connections with the same (from,
 * to, type), found with an open-addressing set of packed keys (one memory
 * access per connection, prefetched a few entries ahead) sized from the
 * count. Fails: NG_ECORRUPT for the first bad entry (a duplicate names both
 * ids), NG_ENOMEM. */
static ng_status check_connections(const unsigned char *sec, const snap_header *h,
                                   const ids_state *cids, const ids_state *tids,
                                   const uint64_t *present, const ng_config *cfg,
                                   const char *name) {
  size_t cap = 0;
  uint64_t *set = NULL;
  if (h->nconn >= 2) {
    cap = 16;
    while (cap < h->nconn * 2)
      cap *= 2;
    set = tmp_alloc(cfg, cap * sizeof *set);
    if (!set)
      return ngi_fail(NULL, NG_ENOMEM, "ng_snapshot_load: %s: out of memory checking connections",
                      name);
    ngi_advise_bulk(set, cap * sizeof *set);
    memset(set, 0, cap * sizeof *set);
  }
  ng_status st = NG_OK;
  ng_id prev = 0;
  for (uint64_t i = 0; i < h->nconn; i++) {
    ng_connection c;
    uint64_t gen = cids->gens ? cids->gens[i] : 0;
    ng_id id = gen << NG_CONNECTION_SLOT_BITS | rd32(sec + i * CONN_BYTES);
    memcpy(&c, sec + i * CONN_BYTES + 4, sizeof c);
    if ((st = check_connection(&c, id, prev, cids, tids, present, name)) != NG_OK) break;
    prev = id;
    if (!set) continue;
    /* The duplicate set is far larger than the cache: start loading the bucket
     * of an entry a few ahead so the inserts do not wait for memory in turn.
     * Any bucket will do: that entry is not checked yet. */
    if (i + DUP_AHEAD < h->nconn)
      NGI_PREFETCH(&set[dup_slot(dup_key(sec + (i + DUP_AHEAD) * CONN_BYTES), cap - 1)]);
    uint64_t k = dup_key(sec + i * CONN_BYTES); /* exact: endpoints checked just above */
    size_t b = dup_slot(k, cap - 1);
    while (set[b] && set[b] != k)
      b = (b + 1) & (cap - 1);
    if (set[b] == k) {
      uint64_t first = 0; /* the rare path: find the earlier twin for the message */
      while (dup_key(sec + first * CONN_BYTES) != k)
        first++;
      st = CORRUPT("ng_snapshot_load: %s: connection records %llu and %llu are duplicates (same "
                   "from, to and type)",
                   name, (unsigned long long)first, (unsigned long long)i);
      break;
    }
    set[b] = k;
  }
  if (set) tmp_free(cfg, set, cap * sizeof *set);
  if (st == NG_OK)
    st = check_ids(cids, NG_CONNECTION_SLOT_BITS, NG_CONNECTION_SLOT_MAX, h->nconn, prev,
                   "connection", name);
  if (st == NG_OK) st = check_conn_slots(sec, h, cids, cfg, name);
  return st;
}

/* The CDNA section at buf (CDNA_BYTES, then its CRC): checksum, then the
 * block's own rules. Fills *cdna. */
static ng_status check_cdna(const unsigned char *buf, const char *name, ng_cdna *cdna) {
  ng_status st = check_section(buf, 0, CDNA_BYTES, "CDNA", name);
  if (st != NG_OK) return st;
  memcpy(cdna, buf, sizeof *cdna);
  char why[160];
  if (ng_cdna_validate(cdna, why, sizeof why) != NG_OK)
    return CORRUPT("ng_snapshot_load: %s: invalid CDNA block: %s", name, why);
  return NG_OK;
}

/* Where the record sections of a snapshot come from: a whole file image in
 * memory, or an open file read straight into their final arrays. */
typedef struct snap_source {
  const unsigned char *mem; /* the whole file, or NULL */
  int fd;                   /* when mem is NULL */
  const char *name;
  ng_progress_fn progress; /* a file's reads report "load" progress to it (NULL: none) */
  void *progress_ud;
} snap_source;

/* The size of the block that holds n connection entries and later becomes
 * the connection table's record array (ngi_conns_restore_owned): room for
 * the entries, rounded up to whole records. */
static size_t conn_block_bytes(size_t n) {
  size_t b = n * CONN_BYTES;
  return (b + sizeof(ng_connection) - 1) / sizeof(ng_connection) * sizeof(ng_connection);
}

/* The connection section's n entries (u32 slot, 64-byte record) at p become
 * n records from p on, as the connection table keeps them, and their slots
 * in slots[]: each record slides down over the slots, from 68k + 4 to 64k,
 * below every byte not yet read, so one ascending pass works in place and
 * the records are never copied twice. */
static void split_conn_entries(unsigned char *p, size_t n, uint32_t *slots) {
  for (size_t k = 0; k < n; k++) {
    slots[k] = rd32(p + k * CONN_BYTES);
    memmove(p + k * sizeof(ng_connection), p + k * CONN_BYTES + 4, sizeof(ng_connection));
  }
}

/* Needs: h validated against the source's length; tok has room for ntok
 * slots (its segments hold them, NGI_SEGS runs at most); conn holds
 * nconn * CONN_BYTES bytes. Guarantees: on NG_OK the first ntok slots of tok
 * and conn hold the token and connection sections and crcs[] their stored
 * CRCs. Fails: NG_EIO (read error), NG_ECORRUPT (the file changed size). */
static ng_status fill_sections(const snap_source *src, const snap_header *h, ngi_token_table *tok,
                               unsigned char *conn, unsigned char crcs[2][CRC_BYTES]) {
  size_t clen = (size_t)h->nconn * CONN_BYTES;
  /* The parts in file order: the token section in runs of whole segments. */
  struct {
    unsigned char *p;
    size_t n;
  } part[NGI_SEGS + 3];
  int np = 0;
  size_t left = (size_t)h->ntok;
  for (unsigned k = 0; left > 0; k++) {
    size_t m = ngi_seg_len(k, NGI_REC_LB) < left ? ngi_seg_len(k, NGI_REC_LB) : left;
    part[np].p = (unsigned char *)tok->seg[k];
    part[np++].n = m * TOKEN_BYTES;
    left -= m;
  }
  part[np].p = crcs[0];
  part[np++].n = CRC_BYTES;
  part[np].p = conn;
  part[np++].n = clen;
  part[np].p = crcs[1];
  part[np++].n = CRC_BYTES;
  if (src->mem) {
    const unsigned char *from = src->mem + h->tok_off;
    for (int i = 0; i < np; i++) {
      if (part[i].n) memcpy(part[i].p, from, part[i].n);
      from += part[i].n;
    }
    return NG_OK;
  }
  /* One pass over the file, each byte read once, straight to where it stays;
   * in pieces of the progress step when progress is reported. */
  off_t off = (off_t)h->tok_off;
  size_t piece = src->progress ? NGI_PROGRESS_BYTES : (size_t)1 << 30;
  for (int i = 0; i < np; i++) {
    size_t done = 0;
    while (done < part[i].n) {
      size_t want = part[i].n - done > piece ? piece : part[i].n - done;
      ssize_t r = pread(src->fd, part[i].p + done, want, off);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        char ebuf[128];
        int e = errno;
        return ngi_fail(NULL, NG_EIO, "ng_snapshot_load: reading %s: %s", src->name,
                        errstr(e, ebuf, sizeof ebuf));
      }
      if (r == 0)
        return CORRUPT("ng_snapshot_load: %s: the file changed size while being read", src->name);
      done += (size_t)r;
      off += (off_t)r;
      if (src->progress && (uint64_t)off < h->total) /* the end is reported on success */
        src->progress(src->progress_ud, "load", (uint64_t)off, h->total);
    }
  }
  unsigned char extra; /* the file must end exactly where the header says */
  ssize_t r = -1;
  while (r < 0) {
    r = pread(src->fd, &extra, 1, (off_t)h->total);
    if (r < 0 && errno != EINTR) {
      char ebuf[128];
      int e = errno;
      return ngi_fail(NULL, NG_EIO, "ng_snapshot_load: reading %s: %s", src->name,
                      errstr(e, ebuf, sizeof ebuf));
    }
  }
  if (r != 0)
    return CORRUPT("ng_snapshot_load: %s: the file changed size while being read", src->name);
  return NG_OK;
}

static int pread_full(int fd, unsigned char *p, size_t n, off_t off, size_t *got);

/* Read the ids section and its CRC (h->ids_len + 4 bytes) into buf. */
static ng_status read_ids(const snap_source *src, const snap_header *h, unsigned char *buf) {
  size_t n = (size_t)h->ids_len + CRC_BYTES, got = 0;
  if (src->mem) {
    memcpy(buf, src->mem + h->ids_off, n);
    return NG_OK;
  }
  int e = pread_full(src->fd, buf, n, (off_t)h->ids_off, &got);
  if (e) {
    char ebuf[128];
    return ngi_fail(NULL, NG_EIO, "ng_snapshot_load: reading %s: %s", src->name,
                    errstr(e, ebuf, sizeof ebuf));
  }
  if (got != n)
    return CORRUPT("ng_snapshot_load: %s: the file changed size while being read", src->name);
  return NG_OK;
}

/* Install a validated allocator state: the issue order continues exactly. */
static ng_status restore_ids(ng_runtime *rt, ngi_idgen *g, const ids_state *s, const char *name) {
  ng_status st = ngi_idgen_restore(rt, g, s->epoch, s->fresh, s->last, s->retired, s->ready,
                                   s->nready, s->pending, s->npending);
  if (st != NG_OK)
    return ngi_fail(NULL, st, "ng_snapshot_load: %s: out of memory restoring the id state", name);
  ng_id next;
  if (st == NG_OK && ngi_idgen_peek(g, &next) == NG_OK && next <= s->last)
    st = CORRUPT("ng_snapshot_load: %s: the next id %llu would not be above the last one %llu",
                 name, (unsigned long long)next, (unsigned long long)s->last);
  return st;
}

/* Needs: h validated against the source's length, cdna validated. Reads the
 * record sections into arrays of a new runtime (owned by nothing yet),
 * validates them completely (checksums, every record, duplicates), and only
 * then installs them: the tokens as the token table, the connection block
 * through ngi_conns_restore_owned. The spatial indexes are left as
 * ng_runtime_new made them (empty, cell sizes from this CDNA, not built):
 * the grid (grid_index.c) builds a space's index in bulk from the token table at its first
 * query, so a load pays nothing for spaces nobody queries.
 * Guarantees: on NG_OK *out holds the snapshot. Fails: NG_ECORRUPT, NG_EIO,
 * NG_ENOMEM with the reason recorded; *out untouched, nothing leaked. */
static ng_status load_body(const snap_source *src, const snap_header *h, const ng_cdna *cdna,
                           const ng_config *cfg, ng_runtime **out) {
  const char *name = src->name;
  ng_config c = {0};
  if (cfg) c = *cfg;
  memset(c.scales, 0, sizeof c.scales);
  /* Before 3.0 the dimension scales were not read: every coordinate meant
   * raw / space scale. Scale 1.0 keeps that meaning. */
  ng_cdna unscaled = *cdna;
  if (h->major < 3) {
    for (int s = 0; s < NG_SPACES; s++)
      unscaled.dimension_scales[s] = 1.0f;
    unscaled.checksum = ng_cdna_checksum(&unscaled);
  }
  c.cdna = &unscaled;
  c.initial_tokens = 0;
  c.initial_connections = 0;
  ng_runtime *rt = NULL;
  ng_status st = ng_runtime_new(&c, &rt);
  if (st != NG_OK) /* name the load and the file, keeping ng_runtime_new's reason */
    return ngi_fail(NULL, st, "ng_snapshot_load: %s: %s", name, ng_last_error(NULL));
  ngi_token_table *t = &rt->tokens;

  size_t ntok = (size_t)h->ntok, nconn = (size_t)h->nconn;
  size_t conn_size = conn_block_bytes(nconn);
  /* Token slots are below 2^24 + 1 (checked before the bitmap is used), so
   * the bitmap is at most 2 MiB whatever the file says. */
  size_t present_size = ((size_t)NG_TOKEN_SLOT_MAX / 64 + 1) * sizeof(uint64_t);
  size_t ids_size = (size_t)h->ids_len + CRC_BYTES; /* confirmed by the file's length */
  ids_state tids, cids;
  /* The token section is read straight into the table's segments. */
  ng_status tst = ngi_tokens_init(rt, t, ntok);
  unsigned char *conn = conn_size ? ngi_alloc(rt, conn_size) : NULL;
  uint32_t *slots = NULL; /* the connections' slots, split from their entries */
  uint64_t *present = ngi_alloc(rt, present_size);
  unsigned char *ids = h->major > 1 ? ngi_alloc(rt, ids_size) : NULL;
  const uint8_t *placed = NULL; /* each token's spaces: into ids (3.0), or all_spaces */
  uint8_t *all_spaces = NULL;
  if (tst != NG_OK || (conn_size && !conn) || !present || (h->major > 1 && !ids)) {
    st = ngi_fail(NULL, NG_ENOMEM, "ng_snapshot_load: %s: out of memory reading %llu bytes", name,
                  (unsigned long long)h->total);
    goto done;
  }
  if (ntok) ngi_advise_bulk(t->seg[0], t->cap * sizeof(ng_token)); /* one block */
  ngi_advise_bulk(conn, conn_size);
  memset(present, 0, present_size);

  unsigned char crcs[2][CRC_BYTES];
  if ((st = fill_sections(src, h, t, conn, crcs)) != NG_OK) goto done;
  if (h->major == 1) {
    tids = ids_v1(h->next_tok, h->ntok);
    cids = ids_v1(h->next_conn, h->nconn);
  } else {
    uint64_t at = 0;
    if ((st = read_ids(src, h, ids)) != NG_OK) goto done;
    if ((st = check_section(ids, 0, h->ids_len, "ids", name)) != NG_OK) goto done;
    if ((st = take_ids(ids, h->ids_len, &at, h->ntok, "tokens", name, &tids)) != NG_OK ||
        (st = take_ids(ids, h->ids_len, &at, h->nconn, "connections", name, &cids)) != NG_OK)
      goto done;
    if (h->major >= 3) { /* the tokens' spaces; the length check left room for them */
      placed = ids + at;
      at += h->ntok;
    }
    if (at != h->ids_len) {
      st = CORRUPT("ng_snapshot_load: %s: %llu unexpected bytes in the ids section", name,
                   (unsigned long long)(h->ids_len - at));
      goto done;
    }
  }
  uint32_t crc = 0;
  for (size_t i = 0; i < ntok;) {
    size_t m = ngi_tok_run(i) < ntok - i ? ngi_tok_run(i) : ntok - i;
    crc = ngi_crc32c(crc, ngi_tok_at(t, i), m * TOKEN_BYTES);
    i += m;
  }
  if (rd32(crcs[0]) != crc) {
    st = CORRUPT("ng_snapshot_load: %s: token section checksum mismatch (stored 0x%08x, computed "
                 "0x%08x)",
                 name, rd32(crcs[0]), crc);
    goto done;
  }
  crc = ngi_crc32c(0, conn, nconn * CONN_BYTES);
  if (rd32(crcs[1]) != crc) {
    st = CORRUPT("ng_snapshot_load: %s: connection section checksum mismatch (stored 0x%08x, "
                 "computed 0x%08x)",
                 name, rd32(crcs[1]), crc);
    goto done;
  }
  if ((st = check_tokens(t, h, &tids, present, placed, name)) != NG_OK) goto done;
  if ((st = check_connections(conn, h, &cids, &tids, present, cfg, name)) != NG_OK) goto done;

  /* Valid: install. Only allocation can fail from here on. */
  if ((st = restore_ids(rt, &t->ids, &tids, name)) != NG_OK ||
      (st = restore_ids(rt, ngi_conns_ids(rt->conns), &cids, name)) != NG_OK)
    goto done;
  if (!placed) { /* before 3.0 every token was in all eight spaces */
    if (ntok && !(all_spaces = ngi_alloc(rt, ntok))) {
      st = NG_ENOMEM;
      goto built;
    }
    if (ntok) memset(all_spaces, 0xFF, ntok);
    placed = all_spaces;
  }
  if ((st = ngi_tokens_adopt(rt, t, ntok, tids.gens, placed)) != NG_OK) goto built;
  if (nconn && !(slots = ngi_alloc_array(rt, nconn, sizeof *slots))) {
    st = NG_ENOMEM;
    goto built;
  }
  split_conn_entries(conn, nconn, slots);
  st = ngi_conns_restore_owned(rt, rt->conns, (ng_connection *)(void *)conn,
                               conn_size / sizeof(ng_connection), nconn, slots, cids.gens);
  conn = NULL; /* the restore owns it now, whatever it returned */
built:
  if (st != NG_OK)
    st = ngi_fail(NULL, st, "ng_snapshot_load: %s: %s while building the runtime", name,
                  ng_strerror(st));
done:
  if (conn) ngi_free(rt, conn, conn_size);
  if (slots) ngi_free(rt, slots, nconn * sizeof *slots);
  if (present) ngi_free(rt, present, present_size);
  if (ids) ngi_free(rt, ids, ids_size);
  if (all_spaces) ngi_free(rt, all_spaces, ntok);
  if (st != NG_OK) {
    ng_runtime_release(rt);
    return st;
  }
  *out = rt;
  return NG_OK;
}

/* Needs: data[0..len) holds a whole snapshot file; name is used in messages.
 * Guarantees: on NG_OK *out is a new runtime (one reference) holding exactly
 * the file's CDNA, tokens and connections with their ids (spatial indexes
 * built at first query). Fails: NG_ECORRUPT / NG_EVERSION with the reason,
 * NG_ENOMEM; *out NULL, nothing leaked. Everything is validated before any
 * state is built, and no allocation is sized by a header field that the data
 * length has not confirmed. */
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
  ng_status st = parse_header(buf, len, name, &h);
  if (st == NG_OK) st = check_cdna(buf + h.cdna_off, name, &cdna);
  if (st != NG_OK) return st;
  snap_source src = {buf, -1, name, NULL, NULL}; /* the import reports its own progress */
  return load_body(&src, &h, &cdna, cfg, out);
}

/* Read exactly n bytes at offset off. Returns 0, or an errno value; *got
 * says how many arrived (fewer when the file ends early). */
static int pread_full(int fd, unsigned char *p, size_t n, off_t off, size_t *got) {
  *got = 0;
  while (*got < n) {
    ssize_t r = pread(fd, p + *got, n - *got, off + (off_t)*got);
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
 * the file's real length before anything else is read, so a lying header
 * never causes an allocation; the record sections are then read once, each
 * straight into the array that keeps it (no whole-file buffer).
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
  unsigned char cd[CDNA_BYTES + CRC_BYTES];
  size_t nhead = size < HDR_MAX ? (size_t)size : HDR_MAX, got = 0;
  snap_header h;
  ng_cdna cdna;
  ng_status st = NG_OK;
  int e = pread_full(fd, head, nhead, 0, &got);
  if (!e && got == nhead) {
    st = parse_header(head, size, path, &h);
    if (st == NG_OK) e = pread_full(fd, cd, sizeof cd, (off_t)h.cdna_off, &got);
    if (st == NG_OK && !e && got != sizeof cd)
      st = CORRUPT("%s: %s: the file changed size while being read", fn, path);
  } else if (!e) {
    st = CORRUPT("%s: %s: the file changed size while being read", fn, path);
  }
  if (st == NG_OK && e)
    st = ngi_fail(NULL, NG_EIO, "%s: reading %s: %s", fn, path, errstr(e, ebuf, sizeof ebuf));
  if (st == NG_OK) st = check_cdna(cd, path, &cdna);
  if (st == NG_OK) {
    snap_source src = {NULL, fd, path, cfg ? cfg->progress : NULL, cfg ? cfg->progress_ud : NULL};
    if (src.progress) src.progress(src.progress_ud, "load", 0, h.total);
    st = load_body(&src, &h, &cdna, cfg, out);
    if (st == NG_OK && src.progress) src.progress(src.progress_ud, "load", h.total, h.total);
  }
  close(fd);
  return st;
}

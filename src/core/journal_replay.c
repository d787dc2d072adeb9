/* Reading a journal back: its header, its records (a torn tail cut, damage
 * refused) and their entries replayed through the store's own paths (design
 * in journal.h, bytes in journal_format.h and docs/format.md). */
#include "conn_table.h"
#include "internal.h"
#include "journal_format.h"

#include <stdio.h>
#include <string.h>

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

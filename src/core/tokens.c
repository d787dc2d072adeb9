/* The token table (dense, ascending ids, tombstones) and the public token store calls. */
#include "internal.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* ---- checks --------------------------------------------------------------- */

/* The record rules (ng_token_validate) with the runtime's CDNA; the failure
 * is recorded for `func`. Caller holds a lock (reads the CDNA). */
static ng_status check_fields(ng_runtime *rt, const char *func, const ng_token *tok,
                              uint32_t fields) {
  char why[192];
  if (ng_token_validate(tok, fields, &rt->cdna, why, sizeof why) != NG_OK)
    return ngi_fail(rt, NG_EINVAL, "%s: %s", func, why);
  return NG_OK;
}

/* The id field kept by the store: the slot of `id` as the local id, entity
 * copied from the flags, domain as given. */
static uint32_t store_id(ng_id id, uint16_t flags, uint32_t given) {
  return ng_make_id(NG_TOKEN_SLOT(id), (unsigned)(flags & NG_TOKEN_ENTITY_MASK) >> 8,
                    NG_ID_DOMAIN(given));
}

static void raw_coords(const ng_token *t, int space, int16_t xyz[3]) {
  memcpy(xyz, t->coords[space], 3 * sizeof(int16_t));
}

/* The spaces of live token `id` (its slot's placement). Caller holds a lock. */
static uint8_t placed_of(const ngi_token_table *t, ng_id id) {
  return ngi_placed(t, NG_TOKEN_SLOT(id));
}

/* ---- the store ------------------------------------------------------------ */

/* needs: rt; init and out_id may be NULL.
 * guarantees: a new token with the next id, placed in `spaces` (its other
 * coordinates 0), found by the grids of those spaces from their next query on.
 * fails: NG_EINVAL (checks), NG_ELIMIT (no slot left), NG_ENOMEM, NG_EBUSY;
 * the store is then unchanged. */
/* needs: the record to store (coordinates of the spaces not in `spaces`
 * zeroed); places[0 .. n) (checked: spaces 0..7, each once, all in
 * `spaces`) to encode into it under the lock, or none. The create itself,
 * for ng_token_create and ng_token_create_at. */
static ng_status create(ng_runtime *rt, const char *fn, ng_token tok, unsigned spaces,
                        const ng_place *places, size_t n_places, ng_id *out_id) {
  ng_status st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_token_table *t = &rt->tokens;
  for (size_t i = 0; i < n_places; i++) { /* in the units of the moment, under the lock */
    int16_t raw[3];
    st = ngi_encode_xyz(rt, fn, places[i].space, places[i].xyz, raw);
    if (st != NG_OK) goto out;
    memcpy(tok.coords[places[i].space], raw, sizeof raw);
  }
  st = check_fields(rt, fn, &tok, NG_TF_ALL);
  if (st != NG_OK) goto out;
  ng_id id;
  if (ngi_idgen_peek(&t->ids, &id) != NG_OK) {
    st = ngi_fail(rt, NG_ELIMIT,
                  "%s: token limit reached: %zu live tokens and %llu retired slots use all "
                  "%u slots",
                  fn, t->live, (unsigned long long)t->ids.retired, (unsigned)NG_TOKEN_SLOT_MAX);
    goto out;
  }
  if (ngi_tokens_reserve_append(rt, t, id) != NG_OK) {
    st = ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
    goto out;
  }
  tok.id = store_id(id, tok.flags, tok.id);
  if (tok.timestamp == 0) tok.timestamp = ngi_now32(rt);
  /* No grid work: a new id is above every id the grids have absorbed, so
   * they read it from this table at their next query (internal.h). */
  ngi_tokens_append(t, id, &tok, (uint8_t)spaces);
  if (NGI_EV_ON(rt)) ngi_ev_token(rt, NG_EV_CREATE, id, &tok, (uint8_t)spaces);
  if (out_id) *out_id = id;
out:
  ngi_write_unlock(rt);
  return st;
}

ng_status ng_token_create(ng_runtime *rt, const ng_token *init, unsigned spaces, ng_id *out_id) {
  static const char fn[] = "ng_token_create";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (spaces & ~(unsigned)NG_TF_COORDS_ALL)
    return ngi_fail(rt, NG_EINVAL, "%s: spaces must be a mask of bits 0..7, got 0x%x", fn,
                    spaces);
  ng_token tok;
  if (init)
    tok = *init;
  else
    ng_token_init(&tok);
  for (int s = 0; s < NG_SPACES; s++)
    if (!(spaces >> s & 1u)) memset(tok.coords[s], 0, sizeof tok.coords[s]);
  return create(rt, fn, tok, spaces, NULL, 0, out_id);
}

ng_status ng_token_create_at(ng_runtime *rt, const ng_token *init, const ng_place *places,
                             size_t n_places, ng_id *out_id) {
  static const char fn[] = "ng_token_create_at";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (n_places && !places)
    return ngi_fail(rt, NG_EINVAL, "%s: places must not be NULL (n_places is %zu)", fn, n_places);
  unsigned spaces = 0;
  for (size_t i = 0; i < n_places; i++) {
    int s = places[i].space;
    if (s < 0 || s >= NG_SPACES)
      return ngi_fail(rt, NG_EINVAL, "%s: places[%zu].space must be 0..7, got %d", fn, i, s);
    if (spaces >> s & 1u)
      return ngi_fail(rt, NG_EINVAL, "%s: %s is placed twice (places[%zu])", fn, ng_space_name(s),
                      i);
    spaces |= 1u << s;
  }
  ng_token tok;
  if (init)
    tok = *init;
  else
    ng_token_init(&tok);
  memset(tok.coords, 0, sizeof tok.coords);
  return create(rt, fn, tok, spaces, places, n_places, out_id);
}

#if NGI_OPTIMISTIC
_Static_assert(sizeof(ng_token) == 8 * sizeof(uint64_t), "a token is 8 words");
_Static_assert(offsetof(ng_token, id) == 6 * sizeof(uint64_t), "the id starts word 6");

/* Where the record of token `id` is, read without the lock, or NULL for "no
 * such token". Every load is atomic; what it reads may be stale or mixed (a
 * writer may be running), so the caller trusts the answer only if the write
 * sequence did not move, and checks the record's id. Never follows a pointer
 * it has not checked: a NULL segment or an entry out of range is an answer
 * ("not found") for the caller to validate. */
static inline const ngi_word *peek_record(const ngi_token_table *t, ng_id id) {
  uint64_t d = atomic_load_explicit(&t->dense, memory_order_relaxed);
  uint32_t s;
  if (d) {
    uint64_t first = d >> 32;
    if (id < first || id - first >= (uint32_t)d) return NULL;
    s = (uint32_t)(id - first);
  } else {
    uint32_t local = NG_TOKEN_SLOT(id);
    if (local == 0) return NULL;
    unsigned k = ngi_seg_of(local - 1u, NGI_SLOT_LB);
    const uint64_t *seg = NGI_LOAD(&t->slot_seg[k], ACQUIRE);
    if (!seg) return NULL;
    uint64_t e = NGI_LOAD(&seg[local - 1u - ngi_seg_base(k, NGI_SLOT_LB)], RELAXED);
    s = (uint32_t)e;
    if (s == NGI_NONE || (e >> 32) != NG_TOKEN_GEN(id)) return NULL;
  }
  unsigned k = ngi_seg_of(s, NGI_REC_LB);
  if (k >= NGI_SEGS) return NULL;
  const ng_token *seg = NGI_LOAD(&t->seg[k], ACQUIRE);
  if (!seg) return NULL;
  return (const ngi_word *)(const void *)&seg[s - ngi_seg_base(k, NGI_REC_LB)];
}

/* One optimistic get (a sequence lock's read side: read the write sequence,
 * read, check the sequence did not move). Returns 1 (*out filled), 0 (no
 * such token), or -1: a writer ran or runs, nothing is known, *out is
 * untouched. The words travel in registers (a 16-byte copy through the
 * stack would wait for the 8-byte stores before it), and the path is short:
 * the fewer instructions a get takes, the more gets' cache misses the CPU
 * has in flight at once. */
static inline int try_get(ng_runtime *rt, ng_id id, ng_token *out) {
  unsigned s1 = atomic_load_explicit(&rt->wseq, memory_order_acquire);
  if (s1 & 1u) return -1;
  const ngi_word *src = peek_record(&rt->tokens, id);
  uint64_t w0 = 0, w1 = 0, w2 = 0, w3 = 0, w4 = 0, w5 = 0, w6 = 0, w7 = 0;
  if (src) {
    w0 = NGI_LOAD(&src[0], RELAXED);
    w1 = NGI_LOAD(&src[1], RELAXED);
    w2 = NGI_LOAD(&src[2], RELAXED);
    w3 = NGI_LOAD(&src[3], RELAXED);
    w4 = NGI_LOAD(&src[4], RELAXED);
    w5 = NGI_LOAD(&src[5], RELAXED);
    w6 = NGI_LOAD(&src[6], RELAXED);
    w7 = NGI_LOAD(&src[7], RELAXED);
  }
  atomic_thread_fence(memory_order_acquire);
  if (atomic_load_explicit(&rt->wseq, memory_order_relaxed) != s1) return -1;
  uint32_t got; /* the id field: the first bytes of word 6 */
  memcpy(&got, &w6, sizeof got);
  if (!src || NG_ID_LOCAL(got) != NG_TOKEN_SLOT(id)) return 0;
  unsigned char *o = (unsigned char *)out;
  memcpy(o, &w0, 8);
  memcpy(o + 8, &w1, 8);
  memcpy(o + 16, &w2, 8);
  memcpy(o + 24, &w3, 8);
  memcpy(o + 32, &w4, 8);
  memcpy(o + 40, &w5, 8);
  memcpy(o + 48, &w6, 8);
  memcpy(o + 56, &w7, 8);
  return 1;
}
#endif

/* Optimistic reads that meet a writer this many times in a row take the lock. */
#define GET_TRIES 3

/* ng_token_get after a first optimistic read met a writer (or bad
 * arguments): a few more tries, then the read lock. Out of line, so the
 * first try stays short. */
#if NGI_OPTIMISTIC
__attribute__((noinline, cold))
#endif
static ng_status
get_slow(ng_runtime *rt, ng_id id, ng_token *out) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "ng_token_get: runtime must not be NULL");
  if (!out) return ngi_fail(rt, NG_EINVAL, "ng_token_get: out must not be NULL");
  ng_status st = ngi_check_id(rt, "ng_token_get", id);
  if (st != NG_OK) return st;
  int found = -1;
#if NGI_OPTIMISTIC
  for (int try = 1; try < GET_TRIES && found < 0; try++)
    found = try_get(rt, id, out);
#endif
  if (found < 0) {
    ngi_read_lock(rt);
    const ng_token *tok = ngi_token_lookup(&rt->tokens, id);
    if (tok) *out = *tok;
    ngi_read_unlock(rt);
    found = tok != NULL;
  }
  if (!found)
    return ngi_fail(rt, NG_ENOTFOUND, "ng_token_get: no token %llu", (unsigned long long)id);
  return NG_OK;
}

/* Without the lock while no writer runs, so concurrent gets share no written
 * cache line and their cache misses overlap; with the read lock while a
 * writer runs (after GET_TRIES torn reads), and in the thread that holds the
 * write lock (it sees the sequence odd), which so reads its own writes. */
ng_status ng_token_get(ng_runtime *rt, ng_id id, ng_token *out) {
#if NGI_OPTIMISTIC
  if (rt && out) {
    /* An id that is no id (0, 2^53 and above) finds nothing here, and is told
     * apart only on that path: every instruction on the hit path costs
     * overlap between the cache misses of successive gets. */
    int found = try_get(rt, id, out);
    if (found > 0) return NG_OK;
    if (found == 0 && ngi_id_valid(id))
      return ngi_fail(rt, NG_ENOTFOUND, "ng_token_get: no token %llu", (unsigned long long)id);
  }
#endif
  return get_slow(rt, id, out);
}

/* The record `values` makes of `cur` (placed in `placed`) under `fields`
 * (as ng_token_update writes it) in *next, its spaces in *next_placed, and
 * in *moved the spaces it stays in whose coordinates change. */
static void merge_update(const ng_token *cur, uint8_t placed, ng_id id, const ng_token *values,
                         uint32_t fields, ng_token *next, uint8_t *next_placed, unsigned *moved) {
  *next = *cur;
  unsigned m = 0, p = placed;
  for (int s = 0; s < NG_SPACES; s++) {
    if (fields & NG_TF_UNPLACE(s)) {
      memset(next->coords[s], 0, sizeof next->coords[s]);
      p &= ~(1u << s);
    }
    if (!(fields & NG_TF_COORDS(s))) continue;
    if ((placed >> s & 1u) && memcmp(next->coords[s], values->coords[s], sizeof next->coords[s]))
      m |= 1u << s;
    memcpy(next->coords[s], values->coords[s], sizeof next->coords[s]);
    p |= 1u << s;
  }
  *next_placed = (uint8_t)p;
  if (fields & NG_TF_WEIGHT) next->weight = values->weight;
  if (fields & NG_TF_FLAGS)
    next->flags = values->flags;
  else if (fields & NG_TF_ENTITY)
    next->flags =
        (uint16_t)((cur->flags & ~NG_TOKEN_ENTITY_MASK) | (values->flags & NG_TOKEN_ENTITY_MASK));
  if (fields & NG_TF_FIELD_RADIUS) next->field_radius = values->field_radius;
  if (fields & NG_TF_FIELD_STRENGTH) next->field_strength = values->field_strength;
  if (fields & NG_TF_TIMESTAMP) next->timestamp = values->timestamp;
  next->id = store_id(id, next->flags, (fields & NG_TF_DOMAIN) ? values->id : cur->id);
  *moved = m;
}

/* needs: the write lock; `slot` the slot of live token `id` in rt->tokens,
 * next its checked new value, placed in next_placed, moved the spaces it
 * stays in whose coordinates differ. guarantees: the token moved in the grid
 * of every space in `moved` (one ngi_grid_move each), indexed in the spaces
 * it enters, removed from those it leaves; its record and placement replaced.
 * fails: NG_ENOMEM (reported under `fn`) with nothing changed: the spaces
 * moved or entered before the failing one are moved back or removed, which
 * never allocates (see ngi_grid_move), so the undo itself cannot fail. */
static ng_status apply_update(ng_runtime *rt, const char *fn, ng_id id, uint32_t slot,
                              const ng_token *next, uint8_t next_placed, unsigned moved,
                              uint32_t fields) {
  ngi_token_table *t = &rt->tokens;
  const ng_token *cur = ngi_tok_at(t, slot);
  unsigned placed = placed_of(t, id);
  unsigned enter = next_placed & ~placed, leave = placed & ~(unsigned)next_placed;
  int16_t from[3], to[3];
  for (int s = 0; s < NG_SPACES; s++) {
    if (!((moved | enter) & (1u << s))) continue;
    raw_coords(cur, s, from);
    raw_coords(next, s, to);
    ng_status st = (moved >> s & 1u) ? ngi_grid_move(rt, rt->grids[s], id, from, to)
                                     : ngi_grid_insert(rt, rt->grids[s], id, to);
    if (st != NG_OK) {
      while (s-- > 0) {
        raw_coords(cur, s, from);
        raw_coords(next, s, to);
        if (moved >> s & 1u)
          (void)ngi_grid_move(rt, rt->grids[s], id, to, from); /* NG_OK: allocates nothing */
        else if (enter >> s & 1u)
          ngi_grid_remove(rt, rt->grids[s], id, to);
      }
      return ngi_fail(rt, st, "%s: moving token %llu in the grid: %s", fn, (unsigned long long)id,
                      ng_strerror(st));
    }
  }
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(leave >> s & 1u)) continue;
    raw_coords(cur, s, from);
    ngi_grid_remove(rt, rt->grids[s], id, from);
  }
  if (NGI_EV_ON(rt)) ngi_ev_update(rt, id, cur, (uint8_t)placed, next, next_placed, fields);
  ngi_tok_store(t, slot, next);
  if (next_placed != placed) ngi_set_placed(t, NG_TOKEN_SLOT(id), next_placed);
  return NG_OK;
}

#define FIELD_BITS ((uint32_t)NG_TF_ALL | NG_TF_UNPLACE_ALL)

/* The unknown bits of `fields`, and a space both written and left, checked
 * before any lock is taken. */
static ng_status check_field_bits(ng_runtime *rt, const char *fn, uint32_t fields) {
  if (fields & ~FIELD_BITS)
    return ngi_fail(rt, NG_EINVAL, "%s: unknown field bits 0x%x", fn,
                    (unsigned)(fields & ~FIELD_BITS));
  uint32_t both = fields & (fields >> 16) & NG_TF_COORDS_ALL;
  if (both) {
    int s = 0;
    while (!(both >> s & 1u))
      s++;
    return ngi_fail(rt, NG_EINVAL, "%s: fields both write and unplace %s", fn, ng_space_name(s));
  }
  return NG_OK;
}

/* needs: the write lock; `slot` the slot of live token `id`; fields checked
 * by check_field_bits. guarantees: ng_token_update's write. fails: NG_EINVAL
 * (the record rules), NG_ENOMEM; nothing changed. */
static ng_status update_locked(ng_runtime *rt, const char *fn, ng_id id, uint32_t slot,
                               const ng_token *values, uint32_t fields) {
  ng_token next;
  uint8_t next_placed;
  unsigned moved;
  merge_update(ngi_tok_at(&rt->tokens, slot), placed_of(&rt->tokens, id), id, values, fields,
               &next, &next_placed, &moved);
  ng_status st = check_fields(rt, fn, &next, fields);
  if (st != NG_OK) return st;
  return apply_update(rt, fn, id, slot, &next, next_placed, moved, fields);
}

/* needs: rt, values; fields a subset of NG_TF_ALL | NG_TF_UNPLACE_ALL.
 * guarantees: the selected fields written at once; the token moved in the
 * grid of every space whose coordinates changed.
 * fails: NG_EINVAL, NG_ENOTFOUND, NG_ENOMEM, NG_EBUSY; nothing changed. */
ng_status ng_token_update(ng_runtime *rt, ng_id id, const ng_token *values, uint32_t fields) {
  static const char fn[] = "ng_token_update";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!values) return ngi_fail(rt, NG_EINVAL, "%s: values must not be NULL", fn);
  ng_status st = ngi_check_id(rt, fn, id);
  if (st == NG_OK) st = check_field_bits(rt, fn, fields);
  if (st != NG_OK) return st;

  st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_token_table *t = &rt->tokens;
  uint32_t slot = ngi_token_slot(t, id);
  if (slot == NGI_NONE) {
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: no token %llu", fn, (unsigned long long)id);
    goto out;
  }
  st = update_locked(rt, fn, id, slot, values, fields);
out:
  ngi_write_unlock(rt);
  return st;
}

ng_status ng_token_place(ng_runtime *rt, ng_id id, int space, const double xyz[3]) {
  static const char fn[] = "ng_token_place";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!xyz) return ngi_fail(rt, NG_EINVAL, "%s: xyz must not be NULL", fn);
  ng_status st = ngi_check_id(rt, fn, id);
  if (st == NG_OK) st = ngi_check_space(rt, fn, space);
  if (st != NG_OK) return st;
  st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  uint32_t slot = ngi_token_slot(&rt->tokens, id);
  ng_token v;
  int16_t raw[3];
  if (slot == NGI_NONE)
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: no token %llu", fn, (unsigned long long)id);
  else
    st = ngi_encode_xyz(rt, fn, space, xyz, raw);
  memcpy(v.coords[space], raw, sizeof raw);
  if (st == NG_OK) st = update_locked(rt, fn, id, slot, &v, NG_TF_COORDS(space));
  ngi_write_unlock(rt);
  return st;
}

ng_status ng_token_unplace(ng_runtime *rt, ng_id id, int space) {
  static const char fn[] = "ng_token_unplace";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  ng_status st = ngi_check_id(rt, fn, id);
  if (st == NG_OK) st = ngi_check_space(rt, fn, space);
  if (st != NG_OK) return st;
  st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  uint32_t slot = ngi_token_slot(&rt->tokens, id);
  ng_token v;
  memset(&v, 0, sizeof v);
  if (slot == NGI_NONE)
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: no token %llu", fn, (unsigned long long)id);
  else if (placed_of(&rt->tokens, id) >> space & 1u)
    st = update_locked(rt, fn, id, slot, &v, NG_TF_UNPLACE(space));
  ngi_write_unlock(rt);
  return st;
}

ng_status ng_token_position(ng_runtime *rt, ng_id id, int space, double xyz[3]) {
  static const char fn[] = "ng_token_position";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!xyz) return ngi_fail(rt, NG_EINVAL, "%s: xyz must not be NULL", fn);
  ng_status st = ngi_check_id(rt, fn, id);
  if (st == NG_OK) st = ngi_check_space(rt, fn, space);
  if (st != NG_OK) return st;
  ngi_read_lock(rt);
  const ng_token *tok = ngi_token_lookup(&rt->tokens, id);
  if (!tok) {
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: no token %llu", fn, (unsigned long long)id);
  } else if (!(placed_of(&rt->tokens, id) >> space & 1u)) {
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: token %llu is not placed in %s", fn,
                  (unsigned long long)id, ng_space_name(space));
  } else {
    for (int a = 0; a < 3; a++)
      xyz[a] = ngi_unit_decode(&rt->units[space], tok->coords[space][a]);
  }
  ngi_read_unlock(rt);
  return st;
}

ng_status ng_token_spaces(ng_runtime *rt, ng_id id, unsigned *spaces) {
  static const char fn[] = "ng_token_spaces";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!spaces) return ngi_fail(rt, NG_EINVAL, "%s: spaces must not be NULL", fn);
  ng_status st = ngi_check_id(rt, fn, id);
  if (st != NG_OK) return st;
  ngi_read_lock(rt);
  if (ngi_token_slot(&rt->tokens, id) == NGI_NONE)
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: no token %llu", fn, (unsigned long long)id);
  else
    *spaces = placed_of(&rt->tokens, id);
  ngi_read_unlock(rt);
  return st;
}


/* How many entries ahead a batch starts loading what an entry will touch:
 * far enough that the misses of several entries are in flight at once. */
#define BATCH_AHEAD 8
#define BATCH_RING (4 * BATCH_AHEAD) /* > the 3 x BATCH_AHEAD entries in flight */

/* Start loading the record of `id` (and, off the dense path, its slot-map
 * entry) so that its miss overlaps the work on earlier entries. Never reads
 * the record itself. */
static void prefetch_token(const ngi_token_table *t, ng_id id) {
  const ng_token *tok = ngi_token_lookup(t, id);
  if (!tok) return;
  NGI_PREFETCH(tok);
  NGI_PREFETCH(ngi_placed_at(t, NG_TOKEN_SLOT(id))); /* a batch move reads the placement too */
}

/* needs: rt; ids n entries, out room for n records (either may be NULL only
 * when n == 0). guarantees: out[i] is token ids[i]'s record, or all zero
 * (local id 0: no such token) where there is none; *found (may be NULL) how
 * many were found. One read lock for the whole batch, so the copies are one
 * consistent point in time, and the records of the entries ahead are loaded
 * while earlier ones are copied: random ids cost a fraction of single gets.
 * fails: NG_EINVAL with out untouched. */
ng_status ng_token_get_batch(ng_runtime *rt, const ng_id *ids, size_t n, ng_token *out,
                             size_t *found) {
  static const char fn[] = "ng_token_get_batch";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (n && !ids) return ngi_fail(rt, NG_EINVAL, "%s: ids must not be NULL (n is %zu)", fn, n);
  if (n && !out) return ngi_fail(rt, NG_EINVAL, "%s: out must not be NULL (n is %zu)", fn, n);
  size_t k = 0;
  ngi_read_lock(rt);
  const ngi_token_table *t = &rt->tokens;
  for (size_t i = 0; i < n && i < 2 * BATCH_AHEAD; i++)
    prefetch_token(t, ids[i]);
  for (size_t i = 0; i < n; i++) {
    if (i + 2 * BATCH_AHEAD < n) prefetch_token(t, ids[i + 2 * BATCH_AHEAD]);
    const ng_token *tok = ngi_token_lookup(t, ids[i]);
    if (tok) {
      out[i] = *tok;
      k++;
    } else {
      memset(&out[i], 0, sizeof out[i]);
    }
  }
  ngi_read_unlock(rt);
  if (found) *found = k;
  return NG_OK;
}

#define PLACEMENT_FIELDS ((uint32_t)NG_TF_COORDS_ALL | NG_TF_UNPLACE_ALL)

/* Bytes of undo log a batch entry needs: 0 when nothing can move, the old
 * coordinates of the selected spaces and the old placement when only
 * coordinates change, else the whole record and the placement. */
static size_t log_stride(uint32_t fields) {
  if (!(fields & PLACEMENT_FIELDS)) return 0;
  if (fields & ~(uint32_t)NG_TF_COORDS_ALL) return sizeof(ng_token) + 1;
  size_t k = 0;
  for (int s = 0; s < NG_SPACES; s++)
    if (fields & NG_TF_COORDS(s)) k++;
  return k * sizeof(((ng_token *)0)->coords[0]) + 1;
}

/* Save in `at` (log_stride(fields) bytes) what an update with `fields` may
 * change in tok and its placement. */
static void log_save(unsigned char *at, const ng_token *tok, uint8_t placed, uint32_t fields) {
  if (fields & ~(uint32_t)NG_TF_COORDS_ALL) {
    memcpy(at, tok, sizeof *tok);
    at[sizeof *tok] = placed;
    return;
  }
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(fields & NG_TF_COORDS(s))) continue;
    memcpy(at, tok->coords[s], sizeof tok->coords[s]);
    at += sizeof tok->coords[s];
  }
  *at = placed;
}

/* The inverse of log_save. */
static void log_restore(const unsigned char *at, ng_token *tok, uint8_t *placed,
                        uint32_t fields) {
  if (fields & ~(uint32_t)NG_TF_COORDS_ALL) {
    memcpy(tok, at, sizeof *tok);
    *placed = at[sizeof *tok];
    return;
  }
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(fields & NG_TF_COORDS(s))) continue;
    memcpy(tok->coords[s], at, sizeof tok->coords[s]);
    at += sizeof tok->coords[s];
  }
  *placed = *at;
}

/* A batch entry that changes coordinates only, of a token placed in every
 * selected space: log the old ones (as log_save; moving[0..nmoving) the
 * selected spaces in ascending order), move the token in the grid of each
 * selected space whose position changes (one step each, ngi_grid_move), then
 * write the record (cur: the record in `slot`).
 * fails: NG_ENOMEM with the record unchanged but the grids of the spaces
 * moved so far changed (the batch then swaps in its fresh grids). */
static ng_status batch_move(ng_runtime *rt, ng_id id, uint32_t slot, const ng_token *cur,
                            const ng_token *v, const int *moving, int nmoving, unsigned char *log) {
  ng_token next = *cur;
  uint8_t placed = placed_of(&rt->tokens, id);
  unsigned first = 8, last = 0; /* the 8-byte words the moved coordinates lie in */
  for (int k = 0; k < nmoving; k++) {
    int s = moving[k];
    memcpy(log, cur->coords[s], sizeof cur->coords[s]);
    log += sizeof cur->coords[s];
    if (memcmp(cur->coords[s], v->coords[s], sizeof cur->coords[s]) == 0) continue;
    int16_t from[3], to[3];
    raw_coords(cur, s, from);
    raw_coords(v, s, to);
    ng_status st = ngi_grid_move(rt, rt->grids[s], id, from, to);
    if (st != NG_OK) return st;
    if (NGI_EV_ON(rt)) ngi_ev_move(rt, id, s, from, to, cur->flags, placed);
    memcpy(next.coords[s], v->coords[s], sizeof next.coords[s]);
    size_t at = offsetof(ng_token, coords) + (size_t)s * sizeof next.coords[s];
    unsigned w0 = (unsigned)(at / 8), w1 = (unsigned)((at + sizeof next.coords[s] - 1) / 8);
    first = w0 < first ? w0 : first;
    last = w1 > last ? w1 : last;
  }
  *log = placed;
  if (first <= last) ngi_tok_store_words(&rt->tokens, slot, &next, first, last);
  return NG_OK;
}

/* needs: rt; ids and values n entries each (either may be NULL when n == 0).
 * guarantees: the same result as ng_token_update(rt, ids[i], &values[i],
 * fields) for i = 0 .. n-1 in order (so a later entry for the same id wins),
 * under one write lock, all or nothing: every entry is checked before any is
 * written, and the memory a failure could need (a log of what may change and
 * a fresh index per selected space) is taken before the first write.
 * fails: NG_EINVAL (bad arguments, naming the entry), NG_ENOTFOUND (naming
 * the entry), NG_ENOMEM, NG_EBUSY; the store is then unchanged. A grid that
 * runs out of memory half-way is replaced by its fresh twin, which indexes
 * the restored table in bulk at its next query: the answers are the same. */
ng_status ng_token_update_batch(ng_runtime *rt, const ng_id *ids, const ng_token *values, size_t n,
                                uint32_t fields) {
  static const char fn[] = "ng_token_update_batch";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (n == 0) return NG_OK;
  if (!ids) return ngi_fail(rt, NG_EINVAL, "%s: ids must not be NULL (n is %zu)", fn, n);
  if (!values) return ngi_fail(rt, NG_EINVAL, "%s: values must not be NULL (n is %zu)", fn, n);
  ng_status st = check_field_bits(rt, fn, fields);
  if (st != NG_OK) return st;

  st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_token_table *t = &rt->tokens;
  unsigned char *log = NULL;
  ngi_grid *spare[NG_SPACES] = {0};
  size_t ev_mark = ngi_ev_mark(rt); /* a batch that undoes itself takes its events back */

  /* Check everything first. The checks read only the selected fields of
   * values[i], so they do not depend on earlier entries of the batch. */
  for (size_t i = 0; i < n; i++) {
    if (!ngi_token_lookup(t, ids[i])) {
      st = !ngi_id_valid(ids[i])
               ? ngi_fail(rt, NG_EINVAL, "%s: entry %zu: id must be within 1..2^53-1, got %llu", fn,
                          i, (unsigned long long)ids[i])
               : ngi_fail(rt, NG_ENOTFOUND, "%s: entry %zu: no token %llu", fn, i,
                          (unsigned long long)ids[i]);
      goto out;
    }
    if ((fields & (NG_TF_WEIGHT | NG_TF_FIELD_RADIUS | NG_TF_FIELD_STRENGTH)) &&
        check_fields(rt, fn, &values[i], fields) != NG_OK) {
      /* Checked again only to name the entry: no formatting on the good path. */
      char where[64];
      snprintf(where, sizeof where, "%s: entry %zu (token %llu)", fn, i,
               (unsigned long long)ids[i]);
      st = check_fields(rt, where, &values[i], fields);
      goto out;
    }
  }

  /* A transaction logs each entry's record and placement (twice if the
   * batch undoes itself). */
  st = ngi_txn_reserve(rt, fn, n * 2 * (ngi_txn_size_tok_rec() + ngi_txn_size_tok_slot()));
  if (st != NG_OK) goto out;
  /* Reserve the way back. Only grid moves can fail once the checks passed,
   * so a batch that moves nothing needs no log; one that only moves logs the
   * old coordinates alone (6 bytes a space instead of a 64-byte record: a
   * tenth of the memory traffic for the common per-frame move). */
  size_t stride = log_stride(fields);
  if (stride) log = ngi_alloc_array(rt, n, stride);
  if (stride && !log) {
    st = ngi_fail(rt, NG_ENOMEM, "%s: out of memory (%zu entries)", fn, n);
    goto out;
  }
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(fields & (NG_TF_COORDS(s) | NG_TF_UNPLACE(s)))) continue;
    st = ngi_grid_new(rt, s, rt->cdna.bucket_sizes[s], &rt->units[s], &spare[s]);
    if (st != NG_OK) {
      st = ngi_fail(rt, st, "%s: out of memory", fn);
      goto out;
    }
  }

  int moving[NG_SPACES], nmoving = 0;    /* the spaces whose coordinates are selected */
  unsigned moving_mask = fields & NG_TF_COORDS_ALL;
  uint32_t cells[BATCH_RING][NG_SPACES]; /* what the prefetch found, per entry ahead */
  for (int s = 0; s < NG_SPACES; s++)
    if (fields & NG_TF_COORDS(s)) moving[nmoving++] = s;
  /* A frame's moves (coordinates only) take the grid's one-step move. */
  bool coords_only = log && !(fields & ~(uint32_t)NG_TF_COORDS_ALL);
  /* Prime the pipeline below: the first entries skip the early stages. */
  for (size_t e = 0; e < n && e < 3 * BATCH_AHEAD; e++)
    for (int stage = 0; stage < (e < 2 * BATCH_AHEAD ? 2 : 1); stage++)
      for (int k = 0; k < nmoving; k++)
        ngi_grid_prefetch(rt->grids[moving[k]], &values[e], stage, &cells[e % BATCH_RING][k]);
  size_t done = 0;
  for (; done < n; done++) {
    /* Three levels of the grid and the record, each loaded a few entries ahead. */
    for (int stage = 0; stage < 3; stage++) {
      size_t ahead = done + (size_t)(3 - stage) * BATCH_AHEAD;
      if (ahead >= n) continue;
      if (stage == 1) prefetch_token(t, ids[ahead]);
      for (int k = 0; k < nmoving; k++) {
        ngi_grid_prefetch(rt->grids[moving[k]], &values[ahead], stage,
                          &cells[ahead % BATCH_RING][k]);
        const ngi_zone_gate *g = &rt->ev.gate[moving[k]];
        if (stage == 1 && NGI_EV_ON(rt) && g->bits) { /* what the zones' gate will read */
          int16_t to[3]; /* the record is packed */
          memcpy(to, values[ahead].coords[moving[k]], sizeof to);
          uint32_t cell = ngi_gate_cell(g, to);
          if (ngi_gate_occupied(g, cell)) ngi_zones_gate_prefetch(g, cell);
        }
      }
    }
    ng_id id = ids[done];
    uint32_t slot = ngi_token_slot(t, id);
    const ng_token *cur = ngi_tok_at(t, slot);
    uint8_t placed = placed_of(t, id);
    if (coords_only && (placed & moving_mask) == moving_mask) {
      st = batch_move(rt, id, slot, cur, &values[done], moving, nmoving, log + done * stride);
    } else {
      ng_token next;
      uint8_t next_placed;
      unsigned moved;
      merge_update(cur, placed, id, &values[done], fields, &next, &next_placed, &moved);
      if (log) log_save(log + done * stride, cur, placed, fields);
      st = apply_update(rt, fn, id, slot, &next, next_placed, moved, fields);
    }
    if (st != NG_OK) break;
  }
  if (st != NG_OK && log) { /* only grid moves fail here, and moves have a log */
    size_t failed = done;
    /* Undo newest first, so a token updated twice ends at its first old value. */
    while (done-- > 0) {
      uint32_t slot = ngi_token_slot(t, ids[done]);
      ng_token old = *ngi_tok_at(t, slot);
      uint8_t placed;
      log_restore(log + done * stride, &old, &placed, fields);
      ngi_tok_store(t, slot, &old);
      ngi_set_placed(t, NG_TOKEN_SLOT(ids[done]), placed);
    }
    for (int s = 0; s < NG_SPACES; s++) {
      if (!spare[s]) continue;
      ngi_grid_destroy(rt, rt->grids[s]);
      rt->grids[s] = spare[s];
      spare[s] = NULL;
    }
    ngi_ev_cut(rt, ev_mark);
    st = ngi_fail(rt, st, "%s: entry %zu (token %llu): out of memory moving it in the grid", fn,
                  failed, (unsigned long long)ids[failed]);
  }
out:
  for (int s = 0; s < NG_SPACES; s++)
    ngi_grid_destroy(rt, spare[s]);
  ngi_free(rt, log, log ? n * stride : 0);
  ngi_write_unlock(rt);
  return st;
}

ng_status ng_token_delete(ng_runtime *rt, ng_id id, size_t *removed_connections) {
  static const char fn[] = "ng_token_delete";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  ng_status st = ngi_check_id(rt, fn, id);
  if (st != NG_OK) return st;
  st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_token_table *t = &rt->tokens;
  const ng_token *cur = ngi_token_lookup(t, id);
  if (!cur) {
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: no token %llu", fn, (unsigned long long)id);
    goto out;
  }
  st = ngi_txn_reserve_delete(rt, fn, id);
  if (st != NG_OK) goto out;
  unsigned placed = placed_of(t, id);
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(placed >> s & 1u)) continue;
    int16_t xyz[3];
    raw_coords(cur, s, xyz);
    ngi_grid_remove(rt, rt->grids[s], id, xyz);
  }
  size_t n = ngi_conns_remove_token(rt, rt->conns, id); /* their unlinks first */
  if (NGI_EV_ON(rt)) ngi_ev_token(rt, NG_EV_DELETE, id, cur, (uint8_t)placed);
  if (removed_connections) *removed_connections = n;
  ngi_tokens_tombstone(rt, t, id);
out:
  ngi_write_unlock(rt);
  return st;
}

size_t ng_token_count(ng_runtime *rt) {
  if (!rt) return 0;
  ngi_read_lock(rt);
  size_t n = rt->tokens.live;
  ngi_read_unlock(rt);
  return n;
}

/* needs: rt, n_out; ids may be NULL only when limit is 0.
 * guarantees: the live ids ranked offset .. offset+limit-1 in ascending order;
 * an offset beyond the end gives 0 ids. */
ng_status ng_token_list(ng_runtime *rt, size_t offset, size_t limit, ng_id *ids, size_t *n_out) {
  static const char fn[] = "ng_token_list";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!n_out) return ngi_fail(rt, NG_EINVAL, "%s: n_out must not be NULL", fn);
  if (!ids && limit > 0) return ngi_fail(rt, NG_EINVAL, "%s: ids must not be NULL", fn);
  ngi_read_lock(rt);
  const ngi_token_table *t = &rt->tokens;
  size_t n = 0;
  if (offset < t->live) {
    size_t i = 0;
    if (t->len == t->live) {
      i = offset; /* no tombstones: rank == slot */
    } else {
      for (size_t skipped = 0; skipped < offset; i++)
        if (!ngi_tok_is_tomb(ngi_tok_at(t, i))) skipped++;
    }
    for (; i < t->len && n < limit; i++) {
      const ng_token *tok = ngi_tok_at(t, i);
      if (!ngi_tok_is_tomb(tok)) ids[n++] = ngi_token_id_of(t, NG_ID_LOCAL(tok->id));
    }
  }
  ngi_read_unlock(rt);
  *n_out = n;
  return NG_OK;
}

ng_status ng_token_clear(ng_runtime *rt, size_t *removed_tokens, size_t *removed_connections) {
  static const char fn[] = "ng_token_clear";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  ng_status st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_token_table *t = &rt->tokens;
  st = ngi_txn_reserve(rt, fn,
                       t->live * 2 * ngi_txn_size_tok_slot() +
                           ngi_conns_count(rt->conns) * ngi_txn_size_conn());
  if (st != NG_OK) {
    ngi_write_unlock(rt);
    return st;
  }
  size_t nc = ngi_conns_clear(rt, rt->conns);
  for (int s = 0; s < NG_SPACES; s++)
    ngi_grid_clear(rt, rt->grids[s]);
  size_t nt = t->live;
  if (NGI_EV_ON(rt))
    for (size_t pos = 0; pos < t->len; pos++) {
      const ng_token *tok = ngi_tok_at(t, pos);
      if (ngi_tok_is_tomb(tok)) continue;
      uint32_t local = NG_ID_LOCAL(tok->id);
      ngi_ev_token(rt, NG_EV_DELETE, ngi_token_id_of(t, local), tok, ngi_placed(t, local));
    }
  ngi_tokens_release_all(rt, t);
  ngi_write_unlock(rt);
  if (removed_tokens) *removed_tokens = nt;
  if (removed_connections) *removed_connections = nc;
  return NG_OK;
}

ng_status ng_token_next(ng_runtime *rt, ng_id after, ng_id *next_id) {
  static const char fn[] = "ng_token_next";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!next_id) return ngi_fail(rt, NG_EINVAL, "%s: next_id must not be NULL", fn);
  ngi_read_lock(rt);
  const ngi_token_table *t = &rt->tokens;
  size_t slot = ngi_tokens_first_after(t, after);
  ng_id id = slot < t->len ? ngi_tokens_id_at(t, slot) : 0;
  ngi_read_unlock(rt);
  if (id == 0)
    return ngi_fail(rt, NG_ENOTFOUND, "%s: no token after %llu", fn, (unsigned long long)after);
  *next_id = id;
  return NG_OK;
}

/* The callback runs under the read lock: it may read the same runtime (read
 * locks nest per thread) and its writes fail with NG_EBUSY, so the table
 * cannot change under this loop. */
ng_status ng_token_each(ng_runtime *rt, ng_token_fn fn, void *ud) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "ng_token_each: runtime must not be NULL");
  if (!fn) return ngi_fail(rt, NG_EINVAL, "ng_token_each: fn must not be NULL");
  ng_status st = ngi_read_lock_cb(rt, "ng_token_each");
  if (st != NG_OK) return st;
  const ngi_token_table *t = &rt->tokens;
  for (size_t i = 0; i < t->len; i++) {
    const ng_token *tok = ngi_tok_at(t, i);
    if (ngi_tok_is_tomb(tok)) continue;
    if (!fn(tok, ngi_token_id_of(t, NG_ID_LOCAL(tok->id)), ud)) break;
  }
  ngi_read_unlock(rt);
  return NG_OK;
}

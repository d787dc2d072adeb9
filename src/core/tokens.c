/* The token table (dense, ascending ids, tombstones) and the public token store calls. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* ---- the table ------------------------------------------------------------ */

static int is_tomb(const ng_token *t) {
  return NG_ID_LOCAL(t->id) == 0;
}

ng_status ngi_tokens_init(ng_runtime *rt, ngi_token_table *t, size_t initial) {
  memset(t, 0, sizeof *t);
  t->next_id = 1;
  if (initial > NG_TOKEN_ID_MAX) initial = NG_TOKEN_ID_MAX;
  if (initial == 0) return NG_OK;
  ng_token *recs = ngi_alloc_array(rt, initial, sizeof *recs);
  uint32_t *slots = ngi_alloc_array(rt, initial + 1, sizeof *slots);
  if (!recs || !slots) {
    ngi_free(rt, recs, recs ? initial * sizeof *recs : 0);
    ngi_free(rt, slots, slots ? (initial + 1) * sizeof *slots : 0);
    return NG_ENOMEM;
  }
  for (size_t i = 0; i <= initial; i++)
    slots[i] = NGI_NONE;
  t->recs = recs;
  t->cap = initial;
  t->slot_of = slots;
  t->slot_cap = initial + 1;
  return NG_OK;
}

void ngi_tokens_destroy(ng_runtime *rt, ngi_token_table *t) {
  ngi_free(rt, t->recs, t->cap * sizeof *t->recs);
  ngi_free(rt, t->slot_of, t->slot_cap * sizeof *t->slot_of);
  t->recs = NULL;
  t->slot_of = NULL;
  t->len = t->cap = t->live = t->slot_cap = 0;
}

void ngi_tokens_set_next_id(ng_runtime *rt, uint32_t next) {
  if (ngi_write_lock(rt, "ngi_tokens_set_next_id") != NG_OK) return;
  if (next > rt->tokens.next_id) rt->tokens.next_id = next;
  ngi_write_unlock(rt);
}

/* Room for one more record and a slot_of entry for `id`.
 * fails: NG_ENOMEM; the table is unchanged (capacity is not observable). */
static ng_status reserve_one(ng_runtime *rt, ngi_token_table *t, uint32_t id) {
  if (t->len == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    ng_token *recs = ngi_realloc_array(rt, t->recs, t->cap, cap, sizeof *recs);
    if (!recs) return NG_ENOMEM;
    t->recs = recs;
    t->cap = cap;
  }
  if (id >= t->slot_cap) {
    size_t cap = t->slot_cap ? t->slot_cap * 2 : 64;
    if (cap <= id) cap = (size_t)id + 1;
    if (cap > (size_t)NG_TOKEN_ID_MAX + 1) cap = (size_t)NG_TOKEN_ID_MAX + 1;
    uint32_t *slots = ngi_realloc_array(rt, t->slot_of, t->slot_cap, cap, sizeof *slots);
    if (!slots) return NG_ENOMEM;
    for (size_t i = t->slot_cap; i < cap; i++)
      slots[i] = NGI_NONE;
    t->slot_of = slots;
    t->slot_cap = cap;
  }
  return NG_OK;
}

/* Squeeze the tombstones out, in place and without allocating, keeping the
 * ascending order and rewriting slot_of. */
static void compact(ngi_token_table *t) {
  size_t w = 0;
  for (size_t i = 0; i < t->len; i++) {
    if (is_tomb(&t->recs[i])) continue;
    if (w != i) {
      t->recs[w] = t->recs[i];
      t->slot_of[NG_ID_LOCAL(t->recs[w].id)] = (uint32_t)w;
    }
    w++;
  }
  t->len = w;
}

/* Slot of the smallest live id greater than `after`, or t->len if none.
 * Binary search over slots; a probe landing on a tombstone walks right to the
 * next live slot, which costs at most the tombstones (fewer than live tokens). */
static size_t first_after(const ngi_token_table *t, uint32_t after) {
  size_t lo = 0, hi = t->len, best = t->len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2, m = mid;
    while (m < hi && is_tomb(&t->recs[m]))
      m++;
    if (m == hi) {
      hi = mid;
    } else if (NG_ID_LOCAL(t->recs[m].id) > after) {
      best = m;
      hi = mid;
    } else {
      lo = m + 1;
    }
  }
  return best;
}

/* ---- checks --------------------------------------------------------------- */

/* Check the fields of `tok` selected by `fields` (NG_TF_WEIGHT,
 * NG_TF_FIELD_RADIUS, NG_TF_FIELD_STRENGTH) against the structural rules and,
 * with STRICT_MODE, the CDNA limits. Caller holds a lock (reads the CDNA). */
static ng_status check_fields(ng_runtime *rt, const char *func, const ng_token *tok,
                              uint32_t fields) {
  const ng_cdna *c = &rt->cdna;
  int strict = (c->flags & NG_CDNA_STRICT_MODE) != 0;
  if (fields & NG_TF_WEIGHT) {
    float w = tok->weight;
    if (!ngi_finite(w) || w < 0.0f || w > 100.0f)
      return ngi_fail(rt, NG_EINVAL, "%s: weight must be within 0..100, got %g", func, (double)w);
    if (strict && (w < c->min_token_weight || w > c->max_token_weight))
      return ngi_fail(rt, NG_EINVAL,
                      "%s: weight must be within the CDNA limits %g..%g (strict mode), got %g",
                      func, (double)c->min_token_weight, (double)c->max_token_weight, (double)w);
  }
  if (strict && (fields & NG_TF_FIELD_RADIUS)) {
    unsigned r = tok->field_radius;
    if (r < c->min_field_radius || r > c->max_field_radius)
      return ngi_fail(
          rt, NG_EINVAL,
          "%s: field_radius must be within the CDNA limits %g..%g (strict mode), got %g", func,
          c->min_field_radius / 100.0, c->max_field_radius / 100.0, r / 100.0);
  }
  if (strict && (fields & NG_TF_FIELD_STRENGTH)) {
    unsigned s = tok->field_strength;
    if (s < c->min_field_strength || s > c->max_field_strength)
      return ngi_fail(
          rt, NG_EINVAL,
          "%s: field_strength must be within the CDNA limits %g..%g (strict mode), got %g", func,
          c->min_field_strength / 255.0, c->max_field_strength / 255.0, s / 255.0);
  }
  return NG_OK;
}

/* The id field kept by the store: local id, entity copied from the flags,
 * domain as given. */
static uint32_t store_id(uint32_t local, uint16_t flags, uint32_t given) {
  return ng_make_id(local, (unsigned)(flags & NG_TOKEN_ENTITY_MASK) >> 8, NG_ID_DOMAIN(given));
}

static void raw_coords(const ng_token *t, int space, int16_t xyz[3]) {
  memcpy(xyz, t->coords[space], 3 * sizeof(int16_t));
}

/* ---- the store ------------------------------------------------------------ */

/* needs: rt, out_id; init may be NULL.
 * guarantees: a new token with the next id, found by the grids of all 8
 * spaces from their next query on.
 * fails: NG_EINVAL (checks), NG_ELIMIT (ids exhausted), NG_ENOMEM, NG_EBUSY;
 * the store is then unchanged. */
ng_status ng_token_create(ng_runtime *rt, const ng_token *init, uint32_t *out_id) {
  static const char fn[] = "ng_token_create";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!out_id) return ngi_fail(rt, NG_EINVAL, "%s: out_id must not be NULL", fn);
  ng_token tok;
  if (init)
    tok = *init;
  else
    ng_token_init(&tok);

  ng_status st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_token_table *t = &rt->tokens;
  st = check_fields(rt, fn, &tok, NG_TF_ALL);
  if (st != NG_OK) goto out;
  if (t->next_id > NG_TOKEN_ID_MAX) {
    st = ngi_fail(rt, NG_ELIMIT, "%s: token ids exhausted (the limit is %u)", fn,
                  (unsigned)NG_TOKEN_ID_MAX);
    goto out;
  }
  uint32_t id = t->next_id;
  if (reserve_one(rt, t, id) != NG_OK) {
    st = ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
    goto out;
  }
  tok.id = store_id(id, tok.flags, tok.id);
  if (tok.timestamp == 0) tok.timestamp = ngi_now32(rt);
  /* No grid work: a new id is above every id the grids have absorbed, so
   * they read it from this table at their next query (internal.h). */
  t->recs[t->len] = tok;
  t->slot_of[id] = (uint32_t)t->len;
  t->len++;
  t->live++;
  t->next_id++;
  *out_id = id;
out:
  ngi_write_unlock(rt);
  return st;
}

ng_status ng_token_get(ng_runtime *rt, uint32_t id, ng_token *out) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "ng_token_get: runtime must not be NULL");
  if (!out) return ngi_fail(rt, NG_EINVAL, "ng_token_get: out must not be NULL");
  ngi_read_lock(rt);
  const ng_token *tok = ngi_token_lookup(&rt->tokens, id);
  if (tok) *out = *tok;
  ngi_read_unlock(rt);
  if (!tok) return ngi_fail(rt, NG_ENOTFOUND, "ng_token_get: no token %u", (unsigned)id);
  return NG_OK;
}

/* The record `values` makes of `cur` under `fields` (as ng_token_update
 * writes it) in *next, and in *moved the spaces whose coordinates change. */
static void merge_update(const ng_token *cur, uint32_t id, const ng_token *values, uint32_t fields,
                         ng_token *next, unsigned *moved) {
  *next = *cur;
  unsigned m = 0;
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(fields & NG_TF_COORDS(s))) continue;
    if (memcmp(next->coords[s], values->coords[s], sizeof next->coords[s]) != 0) m |= 1u << s;
    memcpy(next->coords[s], values->coords[s], sizeof next->coords[s]);
  }
  if (fields & NG_TF_WEIGHT) next->weight = values->weight;
  if (fields & NG_TF_FLAGS) next->flags = values->flags;
  if (fields & NG_TF_FIELD_RADIUS) next->field_radius = values->field_radius;
  if (fields & NG_TF_FIELD_STRENGTH) next->field_strength = values->field_strength;
  if (fields & NG_TF_TIMESTAMP) next->timestamp = values->timestamp;
  next->id = store_id(id, next->flags, (fields & NG_TF_DOMAIN) ? values->id : cur->id);
  *moved = m;
}

/* needs: the write lock; cur the live record of `id` in rt->tokens, next its
 * checked new value, moved the spaces whose coordinates differ.
 * guarantees: the token moved in the grid of every space in `moved` (new
 * position inserted in all of them before any old one is removed, so a
 * failure rolls back by removals only) and its record replaced by next.
 * fails: NG_ENOMEM (reported under `fn`) with nothing changed. */
static ng_status apply_update(ng_runtime *rt, const char *fn, uint32_t id, ng_token *cur,
                              const ng_token *next, unsigned moved) {
  int16_t xyz[3];
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(moved & (1u << s))) continue;
    raw_coords(next, s, xyz);
    ng_status st = ngi_grid_insert(rt, rt->grids[s], id, xyz);
    if (st != NG_OK) {
      while (s-- > 0) {
        if (!(moved & (1u << s))) continue;
        raw_coords(next, s, xyz);
        ngi_grid_remove(rt, rt->grids[s], id, xyz);
      }
      return ngi_fail(rt, st, "%s: moving token %u in the grid: %s", fn, (unsigned)id,
                      ng_strerror(st));
    }
  }
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(moved & (1u << s))) continue;
    raw_coords(cur, s, xyz);
    ngi_grid_remove(rt, rt->grids[s], id, xyz);
  }
  *cur = *next;
  return NG_OK;
}

/* The unknown bits of `fields`, checked before any lock is taken. */
static ng_status check_field_bits(ng_runtime *rt, const char *fn, uint32_t fields) {
  if (fields & ~(uint32_t)NG_TF_ALL)
    return ngi_fail(rt, NG_EINVAL, "%s: unknown field bits 0x%x", fn,
                    (unsigned)(fields & ~(uint32_t)NG_TF_ALL));
  return NG_OK;
}

/* needs: rt, values; fields a subset of NG_TF_ALL.
 * guarantees: the selected fields written at once; the token moved in the
 * grid of every space whose coordinates changed.
 * fails: NG_EINVAL, NG_ENOTFOUND, NG_ENOMEM, NG_EBUSY; nothing changed. */
ng_status ng_token_update(ng_runtime *rt, uint32_t id, const ng_token *values, uint32_t fields) {
  static const char fn[] = "ng_token_update";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!values) return ngi_fail(rt, NG_EINVAL, "%s: values must not be NULL", fn);
  ng_status st = check_field_bits(rt, fn, fields);
  if (st != NG_OK) return st;

  st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_token_table *t = &rt->tokens;
  const ng_token *cur = ngi_token_lookup(t, id);
  if (!cur) {
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: no token %u", fn, (unsigned)id);
    goto out;
  }
  ng_token next;
  unsigned moved;
  merge_update(cur, id, values, fields, &next, &moved);
  st = check_fields(rt, fn, &next, fields);
  if (st != NG_OK) goto out;
  st = apply_update(rt, fn, id, &t->recs[cur - t->recs], &next, moved);
out:
  ngi_write_unlock(rt);
  return st;
}

/* How many entries ahead a batch starts loading what an entry will touch:
 * far enough that the misses of several entries are in flight at once. */
#define BATCH_AHEAD 8
#define BATCH_RING (4 * BATCH_AHEAD) /* > the 3 x BATCH_AHEAD entries in flight */

/* Start loading the record of `id` (and, off the dense path, its slot_of
 * entry) so that its miss overlaps the work on earlier entries. Never reads
 * the record itself. */
static void prefetch_token(const ngi_token_table *t, uint32_t id) {
  const ng_token *tok = ngi_token_lookup(t, id);
  if (tok) NGI_PREFETCH(tok);
}

/* Bytes of undo log a batch entry needs: 0 when nothing can move, the old
 * coordinates of the selected spaces when only they change, else the whole
 * record. */
static size_t log_stride(uint32_t fields) {
  if (!(fields & NG_TF_COORDS_ALL)) return 0;
  if (fields & ~(uint32_t)NG_TF_COORDS_ALL) return sizeof(ng_token);
  size_t k = 0;
  for (int s = 0; s < NG_SPACES; s++)
    if (fields & NG_TF_COORDS(s)) k++;
  return k * sizeof(((ng_token *)0)->coords[0]);
}

/* Save in `at` (log_stride(fields) bytes) what an update with `fields` may change in tok. */
static void log_save(unsigned char *at, const ng_token *tok, uint32_t fields) {
  if (fields & ~(uint32_t)NG_TF_COORDS_ALL) {
    memcpy(at, tok, sizeof *tok);
    return;
  }
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(fields & NG_TF_COORDS(s))) continue;
    memcpy(at, tok->coords[s], sizeof tok->coords[s]);
    at += sizeof tok->coords[s];
  }
}

/* The inverse of log_save. */
static void log_restore(const unsigned char *at, ng_token *tok, uint32_t fields) {
  if (fields & ~(uint32_t)NG_TF_COORDS_ALL) {
    memcpy(tok, at, sizeof *tok);
    return;
  }
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(fields & NG_TF_COORDS(s))) continue;
    memcpy(tok->coords[s], at, sizeof tok->coords[s]);
    at += sizeof tok->coords[s];
  }
}

/* A batch entry that changes coordinates only: log the old ones (as
 * log_save), move the token in the grid of each selected space whose
 * position changes (one step each, ngi_grid_move), then write the record.
 * fails: NG_ENOMEM with the record unchanged but the grids of the spaces
 * moved so far changed (the batch then swaps in its fresh grids). */
static ng_status batch_move(ng_runtime *rt, uint32_t id, ng_token *cur, const ng_token *v,
                            uint32_t fields, unsigned char *log) {
  ng_token next = *cur;
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(fields & NG_TF_COORDS(s))) continue;
    memcpy(log, cur->coords[s], sizeof cur->coords[s]);
    log += sizeof cur->coords[s];
    if (memcmp(cur->coords[s], v->coords[s], sizeof cur->coords[s]) == 0) continue;
    int16_t from[3], to[3];
    raw_coords(cur, s, from);
    raw_coords(v, s, to);
    ng_status st = ngi_grid_move(rt, rt->grids[s], id, from, to);
    if (st != NG_OK) return st;
    memcpy(next.coords[s], v->coords[s], sizeof next.coords[s]);
  }
  *cur = next;
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
ng_status ng_token_update_batch(ng_runtime *rt, const uint32_t *ids, const ng_token *values,
                                size_t n, uint32_t fields) {
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

  /* Check everything first. The checks read only the selected fields of
   * values[i], so they do not depend on earlier entries of the batch. */
  for (size_t i = 0; i < n; i++) {
    if (!ngi_token_lookup(t, ids[i])) {
      st = ngi_fail(rt, NG_ENOTFOUND, "%s: entry %zu: no token %u", fn, i, (unsigned)ids[i]);
      goto out;
    }
    if ((fields & (NG_TF_WEIGHT | NG_TF_FIELD_RADIUS | NG_TF_FIELD_STRENGTH)) &&
        check_fields(rt, fn, &values[i], fields) != NG_OK) {
      /* Checked again only to name the entry: no formatting on the good path. */
      char where[64];
      snprintf(where, sizeof where, "%s: entry %zu (token %u)", fn, i, (unsigned)ids[i]);
      st = check_fields(rt, where, &values[i], fields);
      goto out;
    }
  }

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
    if (!(fields & NG_TF_COORDS(s))) continue;
    st = ngi_grid_new(rt, s, rt->cdna.bucket_sizes[s], &spare[s]);
    if (st != NG_OK) {
      st = ngi_fail(rt, st, "%s: out of memory", fn);
      goto out;
    }
  }

  int moving[NG_SPACES], nmoving = 0; /* the spaces whose coordinates are selected */
  uint32_t cells[BATCH_RING][NG_SPACES];  /* what the prefetch found, per entry ahead */
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
      for (int k = 0; k < nmoving; k++)
        ngi_grid_prefetch(rt->grids[moving[k]], &values[ahead], stage,
                          &cells[ahead % BATCH_RING][k]);
    }
    uint32_t id = ids[done];
    ng_token *cur = &t->recs[ngi_token_lookup(t, id) - t->recs];
    if (coords_only) {
      st = batch_move(rt, id, cur, &values[done], fields, log + done * stride);
    } else {
      ng_token next;
      unsigned moved;
      merge_update(cur, id, &values[done], fields, &next, &moved);
      if (log) log_save(log + done * stride, cur, fields);
      st = apply_update(rt, fn, id, cur, &next, moved);
    }
    if (st != NG_OK) break;
  }
  if (st != NG_OK && log) { /* only grid moves fail here, and moves have a log */
    size_t failed = done;
    /* Undo newest first, so a token updated twice ends at its first old value. */
    while (done-- > 0) {
      ng_token *cur = &t->recs[ngi_token_lookup(t, ids[done]) - t->recs];
      log_restore(log + done * stride, cur, fields);
    }
    for (int s = 0; s < NG_SPACES; s++) {
      if (!spare[s]) continue;
      ngi_grid_destroy(rt, rt->grids[s]);
      rt->grids[s] = spare[s];
      spare[s] = NULL;
    }
    st = ngi_fail(rt, st, "%s: entry %zu (token %u): out of memory moving it in the grid", fn,
                  failed, (unsigned)ids[failed]);
  }
out:
  for (int s = 0; s < NG_SPACES; s++)
    ngi_grid_destroy(rt, spare[s]);
  ngi_free(rt, log, log ? n * stride : 0);
  ngi_write_unlock(rt);
  return st;
}

ng_status ng_token_delete(ng_runtime *rt, uint32_t id, size_t *removed_connections) {
  static const char fn[] = "ng_token_delete";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  ng_status st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_token_table *t = &rt->tokens;
  const ng_token *cur = ngi_token_lookup(t, id);
  if (!cur) {
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: no token %u", fn, (unsigned)id);
    goto out;
  }
  for (int s = 0; s < NG_SPACES; s++) {
    int16_t xyz[3];
    raw_coords(cur, s, xyz);
    ngi_grid_remove(rt, rt->grids[s], id, xyz);
  }
  size_t n = ngi_conns_remove_token(rt, rt->conns, id);
  if (removed_connections) *removed_connections = n;
  uint32_t slot = t->slot_of[id];
  t->recs[slot].id = 0;
  t->slot_of[id] = NGI_NONE;
  t->live--;
  while (t->len > 0 && is_tomb(&t->recs[t->len - 1]))
    t->len--;
  if (t->len - t->live > t->live) compact(t);
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
ng_status ng_token_list(ng_runtime *rt, size_t offset, size_t limit, uint32_t *ids, size_t *n_out) {
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
        if (!is_tomb(&t->recs[i])) skipped++;
    }
    for (; i < t->len && n < limit; i++)
      if (!is_tomb(&t->recs[i])) ids[n++] = NG_ID_LOCAL(t->recs[i].id);
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
  size_t nc = ngi_conns_clear(rt, rt->conns);
  for (int s = 0; s < NG_SPACES; s++)
    ngi_grid_clear(rt, rt->grids[s]);
  size_t nt = t->live;
  for (size_t i = 0; i < t->slot_cap; i++)
    t->slot_of[i] = NGI_NONE;
  t->len = 0;
  t->live = 0;
  ngi_write_unlock(rt);
  if (removed_tokens) *removed_tokens = nt;
  if (removed_connections) *removed_connections = nc;
  return NG_OK;
}

ng_status ng_token_next(ng_runtime *rt, uint32_t after, uint32_t *next_id) {
  static const char fn[] = "ng_token_next";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!next_id) return ngi_fail(rt, NG_EINVAL, "%s: next_id must not be NULL", fn);
  ngi_read_lock(rt);
  const ngi_token_table *t = &rt->tokens;
  size_t slot = first_after(t, after);
  uint32_t id = slot < t->len ? NG_ID_LOCAL(t->recs[slot].id) : 0;
  ngi_read_unlock(rt);
  if (id == 0) return ngi_fail(rt, NG_ENOTFOUND, "%s: no token after %u", fn, (unsigned)after);
  *next_id = id;
  return NG_OK;
}

/* The callback runs under the read lock: it may read the same runtime (read
 * locks nest per thread) and its writes fail with NG_EBUSY, so the table
 * cannot change under this loop. */
ng_status ng_token_each(ng_runtime *rt, ng_token_fn fn, void *ud) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "ng_token_each: runtime must not be NULL");
  if (!fn) return ngi_fail(rt, NG_EINVAL, "ng_token_each: fn must not be NULL");
  ngi_read_lock(rt);
  const ngi_token_table *t = &rt->tokens;
  for (size_t i = 0; i < t->len; i++) {
    const ng_token *tok = &t->recs[i];
    if (is_tomb(tok)) continue;
    if (!fn(tok, NG_ID_LOCAL(tok->id), ud)) break;
  }
  ngi_read_unlock(rt);
  return NG_OK;
}

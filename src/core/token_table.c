/* The token table (token_table.h): segmented record arrays, the slot map,
 * lookups, append, tombstones and compaction. The ng_token_* calls are in
 * tokens.c. */
#include "internal.h"

#include <string.h>

/* ---- the table ------------------------------------------------------------ */

/* Set the slot-map entry of token `id` (its slot 1 .. slot_cap) to position
 * `pos` (NGI_NONE: free). Caller holds the write lock (or exclusive access);
 * atomic for the optimistic reader. */
static void slot_set(ngi_token_table *t, ng_id id, uint32_t pos) {
  uint32_t local = NG_TOKEN_SLOT(id);
  if (t->undo) ngi_txn_log_tok_slot(t->undo, t, local);
  unsigned k = ngi_seg_of(local - 1u, NGI_SLOT_LB);
  NGI_STORE(&t->slot_seg[k][local - 1u - ngi_seg_base(k, NGI_SLOT_LB)],
            NG_TOKEN_GEN(id) << 32 | pos, RELAXED);
}

ng_id ngi_tokens_id_at(const ngi_token_table *t, size_t pos) {
  return ngi_token_id_of(t, NG_ID_LOCAL(ngi_tok_at(t, pos)->id));
}

/* The dense form of a table whose ids run first, first + 1, ... over len
 * positions, or 0 where it has none (a first id past 32 bits). */
static uint64_t dense_of(ng_id first, size_t len) {
  return first < ((uint64_t)1 << 32) ? first << 32 | (uint64_t)len : 0;
}

/* Recompute t->dense after a change of len, live or the ids. */
static void dense_update(ngi_token_table *t) {
  uint64_t d = 0;
  if (t->len > 0 && t->len == t->live) {
    ng_id first = ngi_tokens_id_at(t, 0), last = ngi_tokens_id_at(t, t->len - 1);
    if (last - first + 1 == t->len) d = dense_of(first, t->len);
  }
  atomic_store_explicit(&t->dense, d, memory_order_relaxed);
}

/* t->dense after appending token `id` (t->len already counts it): one more
 * position while the ids stay gapless; a first token starts a dense table;
 * appending never removes a gap or a tombstone. Cheaper than dense_update,
 * for the create path. */
static void dense_append(ngi_token_table *t, ng_id id) {
  uint64_t d = atomic_load_explicit(&t->dense, memory_order_relaxed);
  if (t->len == 1)
    d = dense_of(id, 1);
  else if (d && (d >> 32) + (uint32_t)d == id)
    d++;
  else
    d = 0;
  atomic_store_explicit(&t->dense, d, memory_order_relaxed);
}

/* Records are read whole and at random, so a record that straddles two cache
 * lines costs two misses where one would do; allocator blocks are only
 * malloc-aligned (16 bytes: records started 16 bytes into a line and every
 * one of them straddled). So record arrays are allocated one line larger and
 * start at the first 64-byte boundary; the offset is kept for the free. */
#define REC_ALIGN 64
_Static_assert(sizeof(ng_token) == REC_ALIGN, "a record is one cache line");

static ng_token *alloc_recs(ng_runtime *rt, size_t n, uint8_t *pad) {
  if (n > (SIZE_MAX - REC_ALIGN) / sizeof(ng_token)) return NULL;
  unsigned char *raw = ngi_alloc(rt, n * sizeof(ng_token) + REC_ALIGN);
  if (!raw) return NULL;
  /* No huge-page advice here (unlike the connections and the indexes): at 1M tokens it made
   * random ng_token_get 2.3x slower on the benchmark machine (docs/performance.md). */
  *pad = (uint8_t)((REC_ALIGN - (uintptr_t)raw % REC_ALIGN) % REC_ALIGN);
  return (ng_token *)(void *)(raw + *pad);
}

static void free_recs(ng_runtime *rt, ng_token *recs, size_t n, uint8_t pad) {
  ngi_free(rt, (unsigned char *)recs - pad, n * sizeof(ng_token) + REC_ALIGN);
}

/* Add record segments until there are `want` positions (<= NG_TOKEN_SLOT_MAX).
 * Each new segment is published with a release store: a reader that sees the
 * pointer (acquire) sees the allocation. fails: NG_ENOMEM, with the segments
 * added before the failure kept (capacity is not observable). */
static ng_status grow_recs(ng_runtime *rt, ngi_token_table *t, size_t want) {
  while (t->cap < want) {
    size_t n = ngi_seg_len(t->nseg, NGI_REC_LB);
    ng_token *seg = alloc_recs(rt, n, &t->seg_pad[t->nseg]);
    if (!seg) return NG_ENOMEM;
    NGI_STORE(&t->seg[t->nseg], seg, RELEASE);
    t->nseg++;
    t->cap += n;
  }
  return NG_OK;
}

/* A slot-map block of n entries is followed by the n placement bytes of the
 * same slots, then their n flag copies (one allocation; n is a multiple of
 * 64, so the copies are aligned). */
#define SLOT_BYTES (sizeof(uint64_t) + 1 + sizeof(uint16_t))

/* Add slot-map segments (every entry NGI_NONE, placed nowhere) until ids
 * 1 .. want have an entry. All or nothing: the segments are allocated first
 * and published (release) only once all exist, so a failure frees what no
 * reader can have seen. fails: NG_ENOMEM; the table is unchanged. */
static ng_status grow_slots(ng_runtime *rt, ngi_token_table *t, size_t want) {
  uint64_t *fresh[NGI_SEGS];
  unsigned k = t->nslot_seg, nk = k;
  size_t cap = t->slot_cap;
  for (; cap < want; nk++) {
    size_t n = ngi_seg_len(nk, NGI_SLOT_LB);
    fresh[nk] = ngi_alloc_array(rt, n, SLOT_BYTES);
    if (!fresh[nk]) {
      while (nk-- > k)
        ngi_free(rt, fresh[nk], ngi_seg_len(nk, NGI_SLOT_LB) * SLOT_BYTES);
      return NG_ENOMEM;
    }
    ngi_advise_bulk(fresh[nk], n * SLOT_BYTES);
    memset(fresh[nk], 0xFF, n * sizeof(uint64_t)); /* position NGI_NONE everywhere */
    memset(fresh[nk] + n, 0, n * (1 + sizeof(uint16_t))); /* placed nowhere, no flags */
    cap += n;
  }
  for (; k < nk; k++) {
    size_t n = ngi_seg_len(k, NGI_SLOT_LB);
    t->place_seg[k] = (uint8_t *)(fresh[k] + n);
    t->flag_seg[k] = (uint16_t *)(void *)(t->place_seg[k] + n);
    NGI_STORE(&t->slot_seg[k], fresh[k], RELEASE);
  }
  t->nslot_seg = nk;
  t->slot_cap = cap;
  return NG_OK;
}

/* needs: a table with no segments; initial >= 1.
 * guarantees: segments covering `initial` elements, as one block (a
 * capacity hint's case: one allocation instead of ~20 and, for a large
 * table, one mapping that ngi_advise_bulk can back with huge pages).
 * fails: NG_ENOMEM, the table unchanged. */
static ng_status init_bulk(ng_runtime *rt, ngi_token_table *t, size_t initial) {
  unsigned kr = ngi_seg_of(initial - 1, NGI_REC_LB) + 1;
  unsigned ks = ngi_seg_of(initial - 1, NGI_SLOT_LB) + 1;
  size_t nr = ngi_seg_base(kr, NGI_REC_LB), ns = ngi_seg_base(ks, NGI_SLOT_LB);
  uint8_t pad = 0;
  ng_token *recs = alloc_recs(rt, nr, &pad);
  uint64_t *slots = recs ? ngi_alloc_array(rt, ns, SLOT_BYTES) : NULL;
  if (!slots) {
    if (recs) free_recs(rt, recs, nr, pad);
    return NG_ENOMEM;
  }
  t->seg_pad[0] = pad;
  ngi_advise_bulk(slots, ns * SLOT_BYTES);
  memset(slots, 0xFF, ns * sizeof *slots); /* NGI_NONE everywhere */
  uint8_t *place = (uint8_t *)(slots + ns);
  uint16_t *flags = (uint16_t *)(void *)(place + ns);
  memset(place, 0, ns * (1 + sizeof(uint16_t))); /* placed nowhere, no flags */
  for (unsigned k = 0; k < kr; k++)
    NGI_STORE(&t->seg[k], recs + ngi_seg_base(k, NGI_REC_LB), RELEASE);
  for (unsigned k = 0; k < ks; k++) {
    t->place_seg[k] = place + ngi_seg_base(k, NGI_SLOT_LB);
    t->flag_seg[k] = flags + ngi_seg_base(k, NGI_SLOT_LB);
    NGI_STORE(&t->slot_seg[k], slots + ngi_seg_base(k, NGI_SLOT_LB), RELEASE);
  }
  t->nseg = t->nbulk = kr;
  t->cap = nr;
  t->nslot_seg = t->nslot_bulk = ks;
  t->slot_cap = ns;
  return NG_OK;
}

ng_status ngi_tokens_init(ng_runtime *rt, ngi_token_table *t, size_t initial) {
  memset(t, 0, sizeof *t);
  atomic_store_explicit(&t->dense, 0, memory_order_relaxed);
  ngi_idgen_init(&t->ids, NG_TOKEN_SLOT_BITS, NG_TOKEN_SLOT_MAX);
  if (initial > NG_TOKEN_SLOT_MAX) initial = NG_TOKEN_SLOT_MAX;
  if (initial == 0) return NG_OK;
  return init_bulk(rt, t, initial);
}

void ngi_tokens_destroy(ng_runtime *rt, ngi_token_table *t) {
  if (t->nbulk) free_recs(rt, t->seg[0], ngi_seg_base(t->nbulk, NGI_REC_LB), t->seg_pad[0]);
  for (unsigned k = t->nbulk; k < t->nseg; k++)
    free_recs(rt, t->seg[k], ngi_seg_len(k, NGI_REC_LB), t->seg_pad[k]);
  if (t->nslot_bulk)
    ngi_free(rt, t->slot_seg[0], ngi_seg_base(t->nslot_bulk, NGI_SLOT_LB) * SLOT_BYTES);
  for (unsigned k = t->nslot_bulk; k < t->nslot_seg; k++)
    ngi_free(rt, t->slot_seg[k], ngi_seg_len(k, NGI_SLOT_LB) * SLOT_BYTES);
  ngi_idgen_free(rt, &t->ids);
  memset(t->seg, 0, sizeof t->seg);
  memset(t->slot_seg, 0, sizeof t->slot_seg);
  memset(t->place_seg, 0, sizeof t->place_seg);
  memset(t->flag_seg, 0, sizeof t->flag_seg);
  atomic_store_explicit(&t->dense, 0, memory_order_relaxed);
  t->len = t->cap = t->live = t->slot_cap = 0;
  memset(t->nplaced, 0, sizeof t->nplaced);
  t->nseg = t->nslot_seg = t->nbulk = t->nslot_bulk = 0;
}

/* needs: exclusive access; slots 0 .. n-1 filled as internal.h says.
 * guarantees: those n records are the table (len = live = n), every id
 * mapped, next id `next_id`. fails: NG_ENOMEM, the table unchanged. */
ng_status ngi_tokens_adopt(ng_runtime *rt, ngi_token_table *t, size_t n, const uint32_t *gens,
                           const uint8_t *placed) {
  if (n > 0) {
    uint32_t max_local = 0;
    t->len = n; /* for ngi_tok_span */
    for (size_t i = 0, run_n; i < n; i += run_n) {
      const ng_token *run = ngi_tok_span(t, i, &run_n);
      for (size_t j = 0; j < run_n; j++) {
        if (NG_ID_LOCAL(run[j].id) > max_local) max_local = NG_ID_LOCAL(run[j].id);
        if (!(run[j].flags & NG_TOKEN_ACTIVE)) t->inactive_seen = true;
      }
    }
    t->len = 0;
    if (grow_slots(rt, t, max_local) != NG_OK) return NG_ENOMEM;
    /* Slots mostly ascend with the ids: keep the current slot-map segment
     * instead of locating every entry afresh. */
    uint64_t *seg = NULL;
    size_t lo = 0, hi = 0;
    t->len = n; /* for ngi_tok_span */
    for (size_t i = 0, run_n; i < n; i += run_n) {
      const ng_token *run = ngi_tok_span(t, i, &run_n);
      for (size_t j = 0; j < run_n; j++) {
        size_t at = NG_ID_LOCAL(run[j].id) - 1u;
        if (at >= hi || at < lo) {
          unsigned k = ngi_seg_of(at, NGI_SLOT_LB);
          seg = t->slot_seg[k];
          lo = ngi_seg_base(k, NGI_SLOT_LB);
          hi = lo + ngi_seg_len(k, NGI_SLOT_LB);
        }
        uint64_t gen = gens ? gens[i + j] : 0;
        NGI_STORE(&seg[at - lo], gen << 32 | (uint64_t)(i + j), RELAXED);
        ngi_set_placed(t, (uint32_t)at + 1u, placed[i + j]);
        ngi_set_flags(t, (uint32_t)at + 1u, run[j].flags);
      }
    }
  }
  t->len = t->live = n;
  dense_update(t);
  return NG_OK;
}

void ngi_tokens_skip_slots(ng_runtime *rt, uint32_t fresh) {
  if (ngi_write_lock(rt, "ngi_tokens_skip_slots") != NG_OK) return;
  ngi_idgen *g = &rt->tokens.ids;
  if (fresh > g->fresh) {
    g->retired += fresh - g->fresh;
    g->fresh = fresh;
  }
  ngi_write_unlock(rt);
}

ng_status ngi_tokens_reserve_append(ng_runtime *rt, ngi_token_table *t, ng_id id) {
  if (ngi_txn_before_take(rt, &t->ids) != NG_OK) return NG_ENOMEM;
  if (t->len == t->cap && grow_recs(rt, t, t->cap + 1) != NG_OK) return NG_ENOMEM;
  if (NG_TOKEN_SLOT(id) > t->slot_cap && grow_slots(rt, t, NG_TOKEN_SLOT(id)) != NG_OK)
    return NG_ENOMEM;
  return NG_OK;
}

/* Squeeze the tombstones out, in place and without allocating, keeping the
 * ascending order and rewriting the slot map. The slots past the new len
 * keep stale copies; no lookup reaches them (the slot map and `dense` only
 * name slots below len). The one compaction: ngi_tokens_tombstone calls it
 * when tombstones outnumber live tokens. */
static void compact(ngi_token_table *t) {
  size_t w = 0;
  for (size_t i = 0; i < t->len; i++) {
    const ng_token *tok = ngi_tok_at(t, i);
    if (ngi_tok_is_tomb(tok)) continue;
    if (w != i) {
      ng_id id = ngi_token_id_of(t, NG_ID_LOCAL(tok->id));
      ngi_tok_store(t, w, tok);
      slot_set(t, id, (uint32_t)w);
    }
    w++;
  }
  t->len = w;
  dense_update(t);
}

/* Binary search over positions; a probe landing on a tombstone walks right to
 * the next live one, which costs at most the tombstones (fewer than live
 * tokens). */
size_t ngi_tokens_first_after(const ngi_token_table *t, ng_id after) {
  size_t lo = 0, hi = t->len, best = t->len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2, m = mid;
    while (m < hi && ngi_tok_is_tomb(ngi_tok_at(t, m)))
      m++;
    if (m == hi) {
      hi = mid;
    } else if (ngi_tokens_id_at(t, m) > after) {
      best = m;
      hi = mid;
    } else {
      lo = m + 1;
    }
  }
  return best;
}

void ngi_tokens_append(ngi_token_table *t, ng_id id, const ng_token *rec, uint8_t placed) {
  ngi_tok_store(t, t->len, rec);
  slot_set(t, id, (uint32_t)t->len);
  ngi_set_placed(t, NG_TOKEN_SLOT(id), placed);
  t->len++;
  t->live++;
  ngi_idgen_take(&t->ids);
  dense_append(t, id);
}

void ngi_tokens_tombstone(ng_runtime *rt, ngi_token_table *t, ng_id id) {
  uint32_t slot = ngi_slot_at(t, id);
  ng_token tomb = *ngi_tok_at(t, slot);
  tomb.id = 0;
  ngi_tok_store(t, slot, &tomb);
  slot_set(t, id, NGI_NONE);
  ngi_set_placed(t, NG_TOKEN_SLOT(id), 0);
  ngi_idgen_release(rt, &t->ids, id);
  t->live--;
  while (t->len > 0 && ngi_tok_is_tomb(ngi_tok_at(t, t->len - 1)))
    t->len--;
  if (!t->undo && t->len - t->live > t->live)
    compact(t);
  else
    dense_update(t);
}

void ngi_tokens_tidy(ngi_token_table *t) {
  if (t->len - t->live > t->live) compact(t);
}

void ngi_tokens_release_all(ng_runtime *rt, ngi_token_table *t) {
  /* Every slot goes back, in ascending id order (deterministic reuse). */
  for (size_t i = 0; i < t->len; i++) {
    const ng_token *tok = ngi_tok_at(t, i);
    if (ngi_tok_is_tomb(tok)) continue;
    ng_id id = ngi_tokens_id_at(t, i);
    slot_set(t, id, NGI_NONE);
    ngi_set_placed(t, NG_TOKEN_SLOT(id), 0);
    ngi_idgen_release(rt, &t->ids, id);
  }
  t->len = 0;
  t->live = 0;
  dense_update(t);
}

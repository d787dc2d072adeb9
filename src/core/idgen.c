/* The id allocator: slot reuse in epochs (the policy is described in idgen.h). */
#include "idgen.h"

#include "internal.h"

#include <string.h>

void ngi_idgen_init(ngi_idgen *g, unsigned slot_bits, uint32_t slot_max) {
  memset(g, 0, sizeof *g);
  g->fresh = 1;
  g->slot_bits = slot_bits;
  g->slot_max = slot_max;
  g->gen_max = (NG_ID_MAX >> slot_bits);
}

void ngi_idgen_free(ng_runtime *rt, ngi_idgen *g) {
  ngi_free(rt, g->ready, g->ready_cap * sizeof(uint32_t));
  ngi_free(rt, g->pending, g->pending_cap * sizeof(uint32_t));
  g->ready = g->pending = NULL;
  g->ready_cap = g->pending_cap = g->ready_at = g->ready_n = g->pending_n = 0;
}

/* Whether the pending slots come back as a new epoch's batch now. */
static bool batch_due(const ngi_idgen *g) {
  if (g->pending_n == 0 || g->epoch >= g->gen_max) return false;
  return g->pending_n > NGI_REUSE_AFTER || g->fresh > g->slot_max;
}

static ng_id make(const ngi_idgen *g, uint64_t gen, uint64_t slot) {
  return gen << g->slot_bits | slot;
}

ng_status ngi_idgen_peek(const ngi_idgen *g, ng_id *id) {
  if (g->ready_at < g->ready_n)
    *id = make(g, g->epoch, g->ready[g->ready_at]);
  else if (batch_due(g))
    *id = make(g, g->epoch + 1, g->pending_min);
  else if (g->fresh <= g->slot_max)
    *id = make(g, g->epoch, g->fresh);
  else
    return NG_ELIMIT;
  return NG_OK;
}

/* Sort a[0..n) ascending by LSD radix (four 8-bit passes, so the result ends
 * in `a`), with tmp (room for n) as scratch: a batch forms in a few
 * microseconds per thousand slots, where a comparison sort through qsort's
 * callback cost as much as the creates it serves. */
static void radix_u32(uint32_t *a, uint32_t *tmp, size_t n) {
  uint32_t *src = a, *dst = tmp;
  for (unsigned shift = 0; shift < 32; shift += 8) {
    size_t count[257] = {0};
    for (size_t i = 0; i < n; i++)
      count[((src[i] >> shift) & 255u) + 1]++;
    for (unsigned v = 0; v < 256; v++)
      count[v + 1] += count[v];
    for (size_t i = 0; i < n; i++)
      dst[count[(src[i] >> shift) & 255u]++] = src[i];
    uint32_t *t = src;
    src = dst;
    dst = t;
  }
}

void ngi_idgen_take(ngi_idgen *g) {
  ng_id id = 0;
  if (g->ready_at < g->ready_n) {
    id = make(g, g->epoch, g->ready[g->ready_at++]);
  } else if (batch_due(g)) {
    /* The pending list becomes the ready list (the arrays swap: no
     * allocation), sorted so that the epoch's ids ascend; the spent ready
     * array, which release and restore keep at least as large as the
     * pending list, is the sort's scratch. */
    uint32_t *a = g->ready;
    size_t cap = g->ready_cap;
    radix_u32(g->pending, a, g->pending_n);
    g->ready = g->pending;
    g->ready_cap = g->pending_cap;
    g->ready_n = g->pending_n;
    g->pending = a;
    g->pending_cap = cap;
    g->pending_n = 0;
    g->epoch++;
    g->ready_at = 0;
    id = make(g, g->epoch, g->ready[g->ready_at++]);
  } else {
    id = make(g, g->epoch, g->fresh++);
  }
  g->last = id;
}

/* Grow the array *a (capacity *cap) to hold at least n, doubling. */
static bool room_for(ng_runtime *rt, uint32_t **a, size_t *cap, size_t n) {
  if (*cap >= n) return true;
  size_t ncap = *cap ? 2 * *cap : 64;
  while (ncap < n)
    ncap *= 2;
  uint32_t *p = ngi_realloc_array(rt, *a, *cap, ncap, sizeof *p);
  if (!p) return false;
  *a = p;
  *cap = ncap;
  return true;
}

void ngi_idgen_release(ng_runtime *rt, ngi_idgen *g, ng_id id) {
  uint32_t slot = ngi_id_slot(g, id);
  if (g->epoch >= g->gen_max) { /* no batch can form again */
    g->retired++;
    return;
  }
  /* Room for one more pending slot, in the pending list and in the ready
   * list, which is the scratch of the sort that turns the pending list into
   * the next ready one (take, which must not allocate). */
  if (!room_for(rt, &g->pending, &g->pending_cap, g->pending_n + 1) ||
      !room_for(rt, &g->ready, &g->ready_cap, g->pending_n + 1)) {
    g->retired++;
    return;
  }
  if (g->pending_n == 0 || slot < g->pending_min) g->pending_min = slot;
  g->pending[g->pending_n++] = slot;
}

size_t ngi_idgen_free_count(const ngi_idgen *g) {
  return (g->ready_n - g->ready_at) + g->pending_n;
}

ng_status ngi_idgen_restore(ng_runtime *rt, ngi_idgen *g, uint64_t epoch, uint64_t fresh,
                            uint64_t last, uint64_t retired, const uint32_t *ready, size_t nready,
                            const uint32_t *pending, size_t npending) {
  /* The ready list is also the scratch of the pending list's sort (take). */
  size_t rcap = nready > npending ? nready : npending;
  uint32_t *r = rcap ? ngi_alloc_array(rt, rcap, sizeof *r) : NULL;
  uint32_t *p = npending ? ngi_alloc_array(rt, npending, sizeof *p) : NULL;
  if ((rcap && !r) || (npending && !p)) {
    ngi_free(rt, r, r ? rcap * sizeof *r : 0);
    ngi_free(rt, p, p ? npending * sizeof *p : 0);
    return NG_ENOMEM;
  }
  if (nready) memcpy(r, ready, nready * sizeof *r);
  if (npending) memcpy(p, pending, npending * sizeof *p);
  ngi_idgen_free(rt, g);
  g->epoch = epoch;
  g->fresh = fresh;
  g->last = last;
  g->retired = retired;
  g->ready = r;
  g->ready_cap = rcap;
  g->ready_n = nready;
  g->ready_at = 0;
  g->pending = p;
  g->pending_cap = g->pending_n = npending;
  g->pending_min = UINT32_MAX;
  for (size_t i = 0; i < npending; i++)
    if (p[i] < g->pending_min) g->pending_min = p[i];
  return NG_OK;
}

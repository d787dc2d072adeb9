/* The id allocator: slot reuse in epochs (the policy is described in idgen.h). */
#include "idgen.h"

#include "internal.h"

#include <stdlib.h>
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

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

void ngi_idgen_take(ngi_idgen *g) {
  ng_id id = 0;
  if (g->ready_at < g->ready_n) {
    id = make(g, g->epoch, g->ready[g->ready_at++]);
  } else if (batch_due(g)) {
    /* The pending list becomes the ready list (the arrays swap: no
     * allocation), sorted so that the epoch's ids ascend. */
    uint32_t *a = g->ready;
    size_t cap = g->ready_cap;
    g->ready = g->pending;
    g->ready_cap = g->pending_cap;
    g->ready_n = g->pending_n;
    g->pending = a;
    g->pending_cap = cap;
    g->pending_n = 0;
    qsort(g->ready, g->ready_n, sizeof *g->ready, cmp_u32);
    g->epoch++;
    g->ready_at = 0;
    id = make(g, g->epoch, g->ready[g->ready_at++]);
  } else {
    id = make(g, g->epoch, g->fresh++);
  }
  g->last = id;
}

void ngi_idgen_release(ng_runtime *rt, ngi_idgen *g, ng_id id) {
  uint32_t slot = ngi_id_slot(g, id);
  if (g->epoch >= g->gen_max) { /* no batch can form again */
    g->retired++;
    return;
  }
  if (g->pending_n == g->pending_cap) {
    size_t ncap = g->pending_cap ? 2 * g->pending_cap : 64;
    uint32_t *p = ngi_realloc_array(rt, g->pending, g->pending_cap, ncap, sizeof *p);
    if (!p) {
      g->retired++;
      return;
    }
    g->pending = p;
    g->pending_cap = ncap;
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
  uint32_t *r = nready ? ngi_alloc_array(rt, nready, sizeof *r) : NULL;
  uint32_t *p = npending ? ngi_alloc_array(rt, npending, sizeof *p) : NULL;
  if ((nready && !r) || (npending && !p)) {
    ngi_free(rt, r, r ? nready * sizeof *r : 0);
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
  g->ready_cap = g->ready_n = nready;
  g->ready_at = 0;
  g->pending = p;
  g->pending_cap = g->pending_n = npending;
  g->pending_min = UINT32_MAX;
  for (size_t i = 0; i < npending; i++)
    if (p[i] < g->pending_min) g->pending_min = p[i];
  return NG_OK;
}

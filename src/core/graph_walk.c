/* What the graph walks share: the scratch, the options' checks, and the
 * compact copy of the adjacency (graph_walk.h). */
#include "graph_walk.h"

#include <stdlib.h>

/* ---- scratch ---------------------------------------------------------------- */

#define FREE_ARRAY(rt, p, n) ngi_free(rt, (p), (n) * sizeof *(p))

void ngi_graph_free(ng_runtime *rt, ngi_graph_scratch *s) {
  if (!s) return;
  FREE_ARRAY(rt, s->mark, s->slots);
  FREE_ARRAY(rt, s->parent, s->slots);
  FREE_ARRAY(rt, s->depth, s->slots);
  FREE_ARRAY(rt, s->val, s->slots);
  FREE_ARRAY(rt, s->queue, s->slots);
  FREE_ARRAY(rt, s->at, s->slots);
  FREE_ARRAY(rt, s->heap, s->heap_cap);
  FREE_ARRAY(rt, s->links, s->links_cap);
  FREE_ARRAY(rt, s->arr, s->arr_cap);
  for (int d = 0; d < 3; d++) {
    FREE_ARRAY(rt, s->csr[d].off, s->csr[d].off_n);
    FREE_ARRAY(rt, s->csr[d].ent, s->csr[d].ent_n);
  }
  ngi_free(rt, s, sizeof *s);
}

ngi_graph_scratch *ngi_scratch_take(ng_runtime *rt) {
  ngi_graph_scratch *s = atomic_exchange(&rt->graph, NULL);
  if (s) return s;
  s = ngi_alloc(rt, sizeof *s);
  if (s) memset(s, 0, sizeof *s);
  return s;
}

void ngi_scratch_give(ng_runtime *rt, ngi_graph_scratch *s) {
  ngi_graph_scratch *none = NULL;
  if (!atomic_compare_exchange_strong(&rt->graph, &none, s)) ngi_graph_free(rt, s);
}

bool ngi_graph_grow(ng_runtime *rt, void **p, size_t old, size_t n, size_t elem) {
  void *q = ngi_realloc_array(rt, *p, old, n, elem);
  if (!q) return false;
  *p = q;
  return true;
}

bool ngi_scratch_begin(ng_runtime *rt, ngi_graph_scratch *s) {
  size_t need = rt->tokens.slot_cap + 1;
  if (need > s->slots) {
    /* fresh arrays (the old contents are of no use), swapped in when all exist */
    size_t n = need + need / 4;
    void **old[] = {(void **)&s->mark, (void **)&s->parent, (void **)&s->depth,
                    (void **)&s->val,  (void **)&s->queue,  (void **)&s->at};
    const size_t elem[] = {sizeof *s->mark, sizeof *s->parent, sizeof *s->depth,
                           sizeof *s->val,  sizeof *s->queue,  sizeof *s->at};
    enum { K = sizeof old / sizeof old[0] };
    void *fresh[K];
    for (size_t i = 0; i < K; i++) {
      fresh[i] = ngi_alloc_array(rt, n, elem[i]);
      if (!fresh[i]) {
        while (i--)
          ngi_free(rt, fresh[i], n * elem[i]);
        return false;
      }
    }
    for (size_t i = 0; i < K; i++) {
      ngi_free(rt, *old[i], s->slots * elem[i]);
      *old[i] = fresh[i];
    }
    memset(s->mark, 0, n * sizeof *s->mark);
    s->slots = n;
    s->epoch = 0;
  }
  if (++s->epoch == 0) { /* wrapped: marks of 4G walks ago would look current */
    memset(s->mark, 0, s->slots * sizeof *s->mark);
    s->epoch = 1;
  }
  return true;
}

ng_status ngi_walk_open(ng_runtime *rt, const char *fn, const ng_id *ends, size_t n,
                        const char *const *names, size_t nnames, ngi_graph_scratch **out) {
  ngi_graph_scratch *s = ngi_scratch_take(rt);
  if (!s) return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  ngi_read_lock(rt);
  ng_status st = NG_OK;
  for (size_t i = 0; i < n && st == NG_OK; i++)
    if (!ngi_token_lookup(&rt->tokens, ends[i]))
      st = ngi_graph_missing(rt, fn, names[i < nnames ? i : nnames - 1], ends[i]);
  if (st == NG_OK && !ngi_scratch_begin(rt, s))
    st = ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  if (st != NG_OK) {
    ngi_walk_close(rt, s);
    return st;
  }
  *out = s;
  return NG_OK;
}

void ngi_walk_close(ng_runtime *rt, ngi_graph_scratch *s) {
  ngi_read_unlock(rt);
  ngi_scratch_give(rt, s);
}

/* ---- options -------------------------------------------------------------------- */

ng_status ngi_walk_check(const ng_runtime *rt, const char *fn, const ng_walk *w, unsigned *dir) {
  *dir = w->dir == 0 ? NG_OUT : (unsigned)w->dir;
  if (*dir != NG_OUT && *dir != NG_IN && *dir != NG_BOTH)
    return ngi_fail(rt, NG_EINVAL, "%s: dir must be NG_OUT, NG_IN or NG_BOTH, got %d", fn,
                    (int)w->dir);
  if (w->types[2] >> (NG_CONN_TYPES - 128))
    return ngi_fail(rt, NG_EINVAL, "%s: types has bits for types above %d", fn, NG_CONN_TYPES - 1);
  if (w->categories >> NG_CONN_CATEGORIES)
    return ngi_fail(rt, NG_EINVAL, "%s: categories has bits above category %d", fn,
                    NG_CONN_CATEGORIES - 1);
  return NG_OK;
}

ng_status ngi_graph_missing(const ng_runtime *rt, const char *fn, const char *what, ng_id id) {
  if (!ngi_id_valid(id))
    return ngi_fail(rt, NG_EINVAL, "%s: %s must be a token id within 1..2^53-1, got %llu", fn, what,
                    (unsigned long long)id);
  return ngi_fail(rt, NG_ENOTFOUND, "%s: %s token %llu not found", fn, what,
                  (unsigned long long)id);
}

/* ---- the compact copy of the adjacency ------------------------------------------ */

/* Whether link r acts in direction dir at end x (ngi_links_next's rule, for
 * a whole-table pass). */
static inline bool acts_at(const ng_connection *r, unsigned dir, uint32_t x) {
  bool bidir = r->flags & NG_CONN_BIDIRECTIONAL;
  return ((dir & NG_OUT) && (r->token_a_id == x || bidir)) ||
         ((dir & NG_IN) && (r->token_b_id == x || bidir));
}

/* Build c for direction dir from the whole table in two sequential passes.
 * False (c left invalid) when out of memory or too large for 32-bit
 * offsets: the walk then uses the linked lists. Caller holds the read lock. */
static bool csr_build(ng_runtime *rt, csr *c, unsigned dir) {
  ngi_conns *cs = rt->conns;
  size_t n = rt->tokens.slot_cap + 2, m = 2 * cs->live;
  c->valid = false;
  if (m >= UINT32_MAX) return false;
  if (c->off_n < n) {
    uint32_t *p = ngi_alloc_array(rt, n, sizeof *p);
    if (!p) return false;
    ngi_free(rt, c->off, c->off_n * sizeof *c->off);
    c->off = p;
    c->off_n = n;
  }
  if (c->ent_n < 2 * m + 2) {
    uint32_t *p = ngi_alloc_array(rt, 2 * m + 2, sizeof *p);
    if (!p) return false;
    ngi_free(rt, c->ent, c->ent_n * sizeof *c->ent);
    c->ent = p;
    c->ent_n = 2 * m + 2;
  }
  uint32_t *off = c->off, *ent = c->ent;
  memset(off, 0, n * sizeof *off);
  for (size_t i = 0; i < cs->len; i++) { /* off[x + 1]: the count of x */
    const ng_connection *r = &cs->recs[i];
    uint32_t a = r->token_a_id, b = r->token_b_id;
    if (a == 0) continue; /* a tombstone */
    if (acts_at(r, dir, a)) off[a + 1]++;
    if (b != a && acts_at(r, dir, b)) off[b + 1]++;
  }
  for (size_t x = 1; x < n; x++)
    off[x] += off[x - 1];
  /* fill in slot order (id order), advancing off[x] to x's end, then shift back */
  for (size_t i = 0; i < cs->len; i++) {
    const ng_connection *r = &cs->recs[i];
    uint32_t a = r->token_a_id, b = r->token_b_id;
    if (a == 0) continue;
    if (acts_at(r, dir, a)) {
      uint32_t k = off[a]++;
      ent[2 * (size_t)k] = b;
      ent[2 * (size_t)k + 1] = (uint32_t)i;
    }
    if (b != a && acts_at(r, dir, b)) {
      uint32_t k = off[b]++;
      ent[2 * (size_t)k] = a;
      ent[2 * (size_t)k + 1] = (uint32_t)i;
    }
  }
  for (size_t x = n - 1; x > 0; x--)
    off[x] = off[x - 1];
  off[0] = 0;
  c->valid = true;
  return true;
}

void ngi_walker_copy(walker *w) {
  ng_runtime *rt = w->rt;
  csr *c = &w->s->csr[w->dir - 1];
  const ngi_conns *cs = rt->conns;
  unsigned seq = atomic_load_explicit(&rt->wseq, memory_order_acquire);
  w->switch_at = SIZE_MAX;
  c->want = true; /* after a write, the next walk this way rebuilds it at once */
  if (!(c->valid && c->seq == seq && c->len == cs->len && c->live == cs->live &&
        c->slot_cap == rt->tokens.slot_cap)) {
    if (!csr_build(rt, c, w->dir)) return;
    c->seq = seq;
    c->len = cs->len;
    c->live = cs->live;
    c->slot_cap = rt->tokens.slot_cap;
  }
  w->off = c->off;
  w->ent = c->ent;
}

void ngi_walker_begin(ng_runtime *rt, ngi_graph_scratch *s, unsigned dir, bool may_copy,
                      walker *w) {
  w->rt = rt;
  w->s = s;
  w->cs = rt->conns;
  w->dir = dir;
  w->off = w->ent = NULL;
  w->visits = 0;
  w->switch_at = SIZE_MAX;
  unsigned seq = atomic_load_explicit(&rt->wseq, memory_order_acquire);
  if (!may_copy || (seq & 1u)) return;
  size_t eighth = rt->conns->live / 8;
  w->switch_at = eighth > 1024 ? eighth : 1024;
  const csr *c = &s->csr[dir - 1];
  bool current = c->valid && c->seq == seq && c->len == rt->conns->len &&
                 c->live == rt->conns->live && c->slot_cap == rt->tokens.slot_cap;
  if (current || c->want) ngi_walker_copy(w);
}

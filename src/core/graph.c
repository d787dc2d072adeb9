/* Graph walks over the connections: breadth-first walks, cheapest paths and spreading activation.
 */
#include "conn_table.h"
#include "introsort.h"

#include <math.h>
#include <stdlib.h>

/* ---- scratch ---------------------------------------------------------------- */

/* A heap entry of a path search. */
typedef struct heap_item {
  double key;    /* cost so far (+ heuristic) */
  uint32_t slot; /* token slot; ties are taken by slot, so the order is fixed */
  uint32_t pad;
} heap_item;

/* A link copied for a cost function, called outside the lock. */
typedef struct fn_link {
  ng_connection rec;
  ng_id conn, to; /* its id, and the id of the token it leads to */
  double cost;
  uint32_t other; /* that token's slot */
} fn_link;

/* A spread arrival (SUM / MAX modes): `energy` reaching `slot` at `depth`,
 * its strongest part from entry `parent` (NGI_NONE at a source). */
typedef struct arrival {
  double energy, best;
  uint32_t slot, parent, depth, pad;
} arrival;

/* A compact copy of the adjacency in one direction (CSR): the links acting
 * that way from token slot u are ent[2k] (the other end's slot) and
 * ent[2k + 1] (the connection's slot) for k in off[u] .. off[u + 1], in
 * ascending connection id order, as ngi_links_next gives them. Valid while
 * the runtime's write sequence is `seq` (any write makes it stale; the table's
 * sizes are kept beside it so that a 32-bit sequence come round to the same
 * value after 2^31 writes is still caught by any change of size). Walks
 * that cross many links build it (walker_copy) and read it sequentially
 * instead of following the linked lists from record to record. */
typedef struct csr {
  uint32_t *off, *ent;
  size_t off_n, ent_n; /* allocated elements */
  unsigned seq;
  size_t len, live, slot_cap; /* the tables' sizes when it was built */
  bool valid;
  bool want; /* a walk in this direction crossed many links: build before the next */
} csr;

/* Per-token-slot state of a walk, valid for a slot when mark[slot] == epoch
 * (a new walk bumps the epoch instead of clearing the arrays: 28 bytes a
 * slot), the growable heap and lists, and the adjacency copies. The runtime
 * keeps one (rt->graph) for the next walk; a walk running while another
 * holds it makes its own. */
struct ngi_graph_scratch {
  csr csr[3];   /* per direction: NG_OUT, NG_IN, NG_BOTH */
  size_t slots; /* the arrays below hold slots 0 .. slots - 1 */
  uint32_t epoch;
  uint32_t *mark;
  uint32_t *parent; /* predecessor slot (or arrival index) */
  uint32_t *depth;
  double *val;     /* cost so far / energy */
  uint32_t *queue; /* a BFS queue: each slot at most once, so `slots` long */
  heap_item *heap;
  size_t heap_cap;
  fn_link *links;
  size_t links_cap;
  arrival *arr;
  size_t arr_cap;
  uint32_t *at; /* FIRST: a slot's source; SUM / MAX: its arrival at the current depth */
};

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

/* The runtime's scratch, or a new empty one when another walk holds it (or
 * NULL: out of memory). */
static ngi_graph_scratch *scratch_take(ng_runtime *rt) {
  ngi_graph_scratch *s = atomic_exchange(&rt->graph, NULL);
  if (s) return s;
  s = ngi_alloc(rt, sizeof *s);
  if (s) memset(s, 0, sizeof *s);
  return s;
}

/* Give the scratch back for the next walk (freed if the runtime has one). */
static void scratch_give(ng_runtime *rt, ngi_graph_scratch *s) {
  ngi_graph_scratch *none = NULL;
  if (!atomic_compare_exchange_strong(&rt->graph, &none, s)) ngi_graph_free(rt, s);
}

/* Grow *p from old to n elements of size elem (contents kept). */
static bool grow(ng_runtime *rt, void **p, size_t old, size_t n, size_t elem) {
  void *q = ngi_realloc_array(rt, *p, old, n, elem);
  if (!q) return false;
  *p = q;
  return true;
}

/* Make the per-slot arrays cover every token slot and start a new epoch.
 * Caller holds the read lock (reads slot_cap). False: out of memory, the
 * scratch unchanged. */
static bool scratch_begin(ng_runtime *rt, ngi_graph_scratch *s) {
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

/* ---- options -------------------------------------------------------------------- */

/* NG_OK if w is a usable walk (dir 0 read as NG_OUT into *dir); else
 * NG_EINVAL recorded for fn. */
static ng_status check_walk(const ng_runtime *rt, const char *fn, const ng_walk *w, unsigned *dir) {
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

/* Whether w filters links by type at all (else no record need be read). */
static inline bool filtered(const ng_walk *w) {
  return (w->types[0] | w->types[1] | w->types[2]) != 0 || w->categories != 0;
}

/* Whether the walk may cross a link of `type`. */
static inline bool type_ok(const ng_walk *w, unsigned type) {
  bool any_type = (w->types[0] | w->types[1] | w->types[2]) == 0;
  return (any_type || (w->types[type / 64] >> (type % 64) & 1u)) &&
         (w->categories == 0 || (w->categories >> (type >> 4) & 1u));
}

/* The strength w (0..1) of link r under field f: the one mapping every
 * weighted walk uses. */
static inline double link_weight(const ng_connection *r, ng_weight_field f) {
  if (f == NG_WEIGHT_PULL) {
    double p = r->pull_strength / 10.0;
    return p <= 0 ? 0 : p >= 1 ? 1 : p;
  }
  return r->confidence / 255.0;
}

/* A missing token named `what` for fn (NG_EINVAL for an id that is none). */
static ng_status missing_token(const ng_runtime *rt, const char *fn, const char *what, ng_id id) {
  if (!ngi_id_valid(id))
    return ngi_fail(rt, NG_EINVAL, "%s: %s must be a token id within 1..2^53-1, got %llu", fn, what,
                    (unsigned long long)id);
  return ngi_fail(rt, NG_ENOTFOUND, "%s: %s token %llu not found", fn, what,
                  (unsigned long long)id);
}

/* ---- reading the adjacency ------------------------------------------------------ */

/* How a walk reads the links of a token in direction dir: from the scratch's
 * CSR copy when it is current, else by ngi_link_cursor, counting the links it
 * follows: past `switch_at` of them the walk builds the copy and goes on in
 * it (a token's links come in the same order either way), so that a first
 * walk across most of a large graph does not follow the lists to its end. */
typedef struct walker {
  ng_runtime *rt;
  ngi_graph_scratch *s;
  ngi_conns *cs;
  unsigned dir;
  const uint32_t *off, *ent; /* the CSR, or NULL */
  size_t visits;
  size_t switch_at; /* SIZE_MAX: never (no copy may be made) */
} walker;

static void walker_copy(walker *w);

typedef struct nbrs {
  ngi_link_cursor k;
  const uint32_t *p, *end;
} nbrs;

static inline void nbrs_begin(walker *w, uint32_t u, nbrs *it) {
  if (!w->off && w->visits >= w->switch_at) walker_copy(w);
  if (w->off) {
    it->p = w->ent + 2 * (size_t)w->off[u];
    it->end = w->ent + 2 * (size_t)w->off[u + 1];
    it->k.o = it->k.i = NGI_NONE;
  } else {
    it->p = it->end = NULL;
    ngi_links_begin(w->cs, u, &it->k);
  }
}

/* The slot of the next link, or NGI_NONE; *other: the token slot at its other end. */
static inline uint32_t nbrs_next(walker *w, nbrs *it, uint32_t *other) {
  if (w->off) {
    if (it->p == it->end) return NGI_NONE;
    *other = it->p[0];
    uint32_t slot = it->p[1];
    it->p += 2;
    return slot;
  }
  w->visits++;
  return ngi_links_next(w->cs, &it->k, w->dir, other);
}

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

/* Read the CSR copy from now on, building it if it is stale (without memory
 * w stays on the linked lists). Only where walker_begin allowed a copy. */
static void walker_copy(walker *w) {
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

/* Set w up for a walk in direction dir: the CSR copy when it is current or
 * wanted (then built now), else the linked lists until the walk has followed
 * an eighth of the table's links (always the lists when !may_copy). Never a
 * copy inside a write hold (a transaction's writes between two walks keep the
 * write sequence). */
static void walker_begin(ng_runtime *rt, ngi_graph_scratch *s, unsigned dir, bool may_copy,
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
  if (current || c->want) walker_copy(w);
}

/* ---- breadth-first walk ----------------------------------------------------- */

ng_status ng_graph_bfs(ng_runtime *rt, ng_id start, const ng_walk *w, ng_id *ids, uint32_t *depths,
                       size_t cap, size_t *n_out) {
  static const char fn[] = "ng_graph_bfs";
  static const ng_walk all = {0};
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!w) w = &all;
  unsigned dir;
  ng_status st = check_walk(rt, fn, w, &dir);
  if (st != NG_OK) return st;
  if (!n_out) return ngi_fail(rt, NG_EINVAL, "%s: n_out must not be NULL", fn);
  if (!ids && cap > 0) return ngi_fail(rt, NG_EINVAL, "%s: ids must not be NULL", fn);
  ngi_graph_scratch *s = scratch_take(rt);
  if (!s) return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  ngi_read_lock(rt);
  const ngi_token_table *t = &rt->tokens;
  if (!ngi_token_lookup(t, start)) {
    ngi_read_unlock(rt);
    scratch_give(rt, s);
    return missing_token(rt, fn, "start", start);
  }
  if (!scratch_begin(rt, s)) {
    ngi_read_unlock(rt);
    scratch_give(rt, s);
    return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  }
  ngi_conns *cs = rt->conns;
  walker wk;
  walker_begin(rt, s, dir, true, &wk);
  const bool filter = filtered(w);
  const uint32_t epoch = s->epoch, max_depth = w->max_depth ? w->max_depth : UINT32_MAX;
  uint32_t *mark = s->mark, *depth = s->depth, *queue = s->queue;
  size_t head = 0, tail = 0;
  uint32_t first = NG_TOKEN_SLOT(start);
  mark[first] = epoch;
  depth[first] = 0;
  queue[tail++] = first;
  while (head < tail) {
    uint32_t u = queue[head], d = depth[u];
    if (head < cap) {
      ids[head] = ngi_token_id_of(t, u);
      if (depths) depths[head] = d;
    }
    head++;
    if (d >= max_depth) continue;
    nbrs it;
    nbrs_begin(&wk, u, &it);
    uint32_t slot, v;
    while ((slot = nbrs_next(&wk, &it, &v)) != NGI_NONE) {
      if (mark[v] == epoch || (filter && !type_ok(w, cs->recs[slot].connection_type))) continue;
      mark[v] = epoch;
      depth[v] = d + 1;
      queue[tail++] = v;
    }
  }
  ngi_read_unlock(rt);
  scratch_give(rt, s);
  *n_out = head;
  return NG_OK;
}

/* ---- cheapest paths ---------------------------------------------------------- */

/* Heap order: smaller key, then smaller slot. */
static inline bool heap_before(const heap_item *a, const heap_item *b) {
  return a->key < b->key || (a->key == b->key && a->slot < b->slot);
}

static bool heap_push(ng_runtime *rt, ngi_graph_scratch *s, size_t *n, double key, uint32_t slot) {
  if (*n == s->heap_cap) {
    size_t cap = s->heap_cap ? 2 * s->heap_cap : 1024;
    if (!grow(rt, (void **)&s->heap, s->heap_cap, cap, sizeof *s->heap)) return false;
    s->heap_cap = cap;
  }
  heap_item it = {key, slot, 0}, *h = s->heap;
  size_t i = (*n)++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!heap_before(&it, &h[p])) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = it;
  return true;
}

static heap_item heap_pop(ngi_graph_scratch *s, size_t *n) {
  heap_item *h = s->heap, top = h[0], last = h[--*n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && heap_before(&h[c + 1], &h[c])) c++;
    if (!heap_before(&h[c], &last)) break;
    h[i] = h[c];
    i = c;
  }
  if (*n) h[i] = last;
  return top;
}

/* The position of the token in `slot` in `space` (placed there), decoded. */
static inline void point_of(const ng_runtime *rt, int space, uint32_t slot, double p[3]) {
  const ng_token *tk = ngi_tok_of_local(&rt->tokens, slot);
  for (int i = 0; i < 3; i++)
    p[i] = ngi_unit_decode(&rt->units[space], tk->coords[space][i]);
}

static inline double distance(const double a[3], const double b[3]) {
  double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
  return sqrt(dx * dx + dy * dy + dz * dz);
}

/* A search in progress: what relax() needs besides the scratch. */
typedef struct search {
  ng_runtime *rt;
  ngi_graph_scratch *s;
  size_t heap_n;
  double max_cost;
  uint32_t target;
  int space; /* A*: the space of the heuristic, else -1 */
  double goal[3];
} search;

/* Offer the way to v through u at total cost c. False: out of memory. */
static bool relax(search *q, uint32_t u, uint32_t v, double c) {
  ngi_graph_scratch *s = q->s;
  if (c > q->max_cost) return true;
  if (s->mark[v] == s->epoch) {
    /* settled tokens have depth bit 31 set: never reopened */
    if (s->depth[v] >> 31) return true;
    if (c > s->val[v]) return true;
    if (c == s->val[v]) {
      const ngi_token_table *t = &q->rt->tokens;
      if (ngi_token_id_of(t, u) < ngi_token_id_of(t, s->parent[v])) s->parent[v] = u;
      return true;
    }
  }
  s->mark[v] = s->epoch;
  s->val[v] = c;
  s->parent[v] = u;
  s->depth[v] = 0;
  double h = 0;
  if (q->space >= 0) {
    double p[3];
    point_of(q->rt, q->space, v, p);
    h = distance(p, q->goal);
  }
  return heap_push(q->rt, s, &q->heap_n, c + h, v);
}

/* The cost of crossing link r under o (fn mode is handled by the caller):
 * +infinity when the link cannot be crossed. */
static double link_cost(const ng_runtime *rt, const ng_path_opts *o, const ng_connection *r,
                        uint32_t u, uint32_t v) {
  switch (o->cost) {
  case NG_COST_WEIGHT: {
    double w = link_weight(r, o->field);
    return w > 0 ? -log(w) : INFINITY;
  }
  case NG_COST_DISTANCE: {
    const ngi_token_table *t = &rt->tokens;
    uint8_t bit = (uint8_t)(1u << o->space);
    if (!(ngi_placed(t, u) & bit) || !(ngi_placed(t, v) & bit)) return INFINITY;
    double pu[3], pv[3];
    point_of(rt, o->space, u, pu);
    point_of(rt, o->space, v, pv);
    return distance(pu, pv);
  }
  default:
    return 1;
  }
}

static ng_status check_path_opts(const ng_runtime *rt, const char *fn, const ng_path_opts *o,
                                 unsigned *dir) {
  ng_status st = check_walk(rt, fn, &o->walk, dir);
  if (st != NG_OK) return st;
  if (o->cost < NG_COST_HOPS || o->cost > NG_COST_FN)
    return ngi_fail(rt, NG_EINVAL, "%s: cost must be NG_COST_HOPS..NG_COST_FN, got %d", fn,
                    (int)o->cost);
  if (o->field != NG_WEIGHT_CONFIDENCE && o->field != NG_WEIGHT_PULL)
    return ngi_fail(rt, NG_EINVAL,
                    "%s: field must be NG_WEIGHT_CONFIDENCE or NG_WEIGHT_PULL, "
                    "got %d",
                    fn, (int)o->field);
  if (o->cost == NG_COST_DISTANCE && (o->space < 0 || o->space >= NG_SPACES))
    return ngi_fail(rt, NG_EINVAL, "%s: space must be 0..7, got %d", fn, o->space);
  if (o->cost == NG_COST_FN && !o->fn)
    return ngi_fail(rt, NG_EINVAL, "%s: fn must not be NULL with NG_COST_FN", fn);
  if (!(o->max_cost >= 0) || isinf(o->max_cost))
    return ngi_fail(rt, NG_EINVAL, "%s: max_cost must be a finite number >= 0, got %g", fn,
                    o->max_cost);
  return NG_OK;
}

/* Expand u (at cost du) under NG_COST_FN: copy its links under the lock,
 * cost them with the lock released, relax them with it taken again. Needs
 * the read lock held; returns with it held. Writes made meanwhile (by fn or
 * another thread) are seen only by later expansions; tokens created since
 * the walk began are not reached. NG_EINVAL: fn refused a cost. */
static ng_status expand_fn(search *q, const ng_path_opts *o, unsigned dir, uint32_t u, double du) {
  ng_runtime *rt = q->rt;
  ngi_graph_scratch *s = q->s;
  ngi_conns *cs = rt->conns;
  size_t n = 0;
  ngi_link_cursor k;
  ngi_links_begin(cs, u, &k);
  uint32_t slot, v;
  while ((slot = ngi_links_next(cs, &k, dir, &v)) != NGI_NONE) {
    if (v >= s->slots || !type_ok(&o->walk, cs->recs[slot].connection_type)) continue;
    if (n == s->links_cap) {
      size_t c = s->links_cap ? 2 * s->links_cap : 64;
      if (!grow(rt, (void **)&s->links, s->links_cap, c, sizeof *s->links)) return NG_ENOMEM;
      s->links_cap = c;
    }
    s->links[n++] =
        (fn_link){cs->recs[slot], cs->meta[slot].id, ngi_token_id_of(&rt->tokens, v), 0, v};
  }
  ng_id from = ngi_token_id_of(&rt->tokens, u);
  ngi_read_unlock(rt);
  size_t bad = n;
  for (size_t i = 0; i < n && bad == n; i++) {
    fn_link *l = &s->links[i];
    l->cost = o->fn(&l->rec, l->conn, from, l->to, o->ud);
    if (!(l->cost >= 0)) bad = i;
  }
  ngi_read_lock(rt);
  if (bad < n)
    return ngi_fail(rt, NG_EINVAL,
                    "ng_graph_path: fn returned %g for connection %llu (costs "
                    "must be numbers >= 0)",
                    s->links[bad].cost, (unsigned long long)s->links[bad].conn);
  for (size_t i = 0; i < n; i++)
    if (s->links[i].cost != INFINITY && !relax(q, u, s->links[i].other, du + s->links[i].cost))
      return NG_ENOMEM;
  return NG_OK;
}

ng_status ng_graph_path(ng_runtime *rt, ng_id from, ng_id to, const ng_path_opts *o, ng_id *ids,
                        size_t cap, size_t *n_out, double *cost) {
  static const char fn[] = "ng_graph_path";
  static const ng_path_opts hops = {0};
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!o) o = &hops;
  unsigned dir;
  ng_status st = check_path_opts(rt, fn, o, &dir);
  if (st != NG_OK) return st;
  if (!n_out) return ngi_fail(rt, NG_EINVAL, "%s: n_out must not be NULL", fn);
  if (!ids && cap > 0) return ngi_fail(rt, NG_EINVAL, "%s: ids must not be NULL", fn);
  ngi_graph_scratch *s = scratch_take(rt);
  if (!s) return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  ngi_read_lock(rt);
  ngi_token_table *t = &rt->tokens;
  if (!ngi_token_lookup(t, from) || !ngi_token_lookup(t, to)) {
    ngi_read_unlock(rt);
    scratch_give(rt, s);
    return ngi_token_lookup(t, from) == NULL ? missing_token(rt, fn, "from", from)
                                             : missing_token(rt, fn, "to", to);
  }
  if (!scratch_begin(rt, s)) {
    ngi_read_unlock(rt);
    scratch_give(rt, s);
    return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  }
  search q = {rt, s, 0, o->max_cost > 0 ? o->max_cost : INFINITY, NG_TOKEN_SLOT(to), -1, {0}};
  uint32_t a = NG_TOKEN_SLOT(from);
  st = NG_OK;
  if (o->cost == NG_COST_DISTANCE) {
    uint8_t bit = (uint8_t)(1u << o->space);
    if (!(ngi_placed(t, a) & bit) || !(ngi_placed(t, q.target) & bit)) goto done; /* no path */
    q.space = o->space;
    point_of(rt, o->space, q.target, q.goal);
  }
  /* a cost function runs unlocked: the table may change under a CSR copy */
  walker wk;
  walker_begin(rt, s, dir, o->cost != NG_COST_FN, &wk);
  const bool filter = filtered(&o->walk);
  s->parent[a] = NGI_NONE;
  if (!relax(&q, NGI_NONE, a, 0)) goto oom;
  s->parent[a] = NGI_NONE;
  while (q.heap_n) {
    heap_item top = heap_pop(s, &q.heap_n);
    uint32_t u = top.slot;
    if (s->depth[u] >> 31) continue; /* a stale entry */
    s->depth[u] = 1u << 31;
    if (u == q.target) break;
    double du = s->val[u];
    ngi_conns *cs = rt->conns;
    if (o->cost == NG_COST_FN) {
      st = expand_fn(&q, o, dir, u, du);
      if (st == NG_ENOMEM) goto oom;
      if (st != NG_OK) break;
      continue;
    }
    nbrs it;
    nbrs_begin(&wk, u, &it);
    uint32_t slot, v;
    while ((slot = nbrs_next(&wk, &it, &v)) != NGI_NONE) {
      if (s->mark[v] == s->epoch && (s->depth[v] >> 31)) continue; /* settled */
      const ng_connection *r = &cs->recs[slot];
      if (filter && !type_ok(&o->walk, r->connection_type)) continue;
      double c = link_cost(rt, o, r, u, v);
      if (c == INFINITY) continue;
      if (!relax(&q, u, v, du + c)) goto oom;
    }
  }
done:;
  size_t n = 0;
  double total = 0;
  uint32_t b = q.target;
  if (st == NG_OK && s->mark[b] == s->epoch && (s->depth[b] >> 31)) {
    total = s->val[b];
    for (uint32_t v = b; v != NGI_NONE; v = s->parent[v])
      n++;
    if (n <= cap) {
      size_t i = n;
      for (uint32_t v = b; v != NGI_NONE; v = s->parent[v])
        ids[--i] = ngi_token_id_of(t, v);
    }
  }
  ngi_read_unlock(rt);
  scratch_give(rt, s);
  if (st != NG_OK) return st;
  if (n == 0)
    return ngi_fail(rt, NG_ENOTFOUND, "%s: no path from %llu to %llu", fn, (unsigned long long)from,
                    (unsigned long long)to);
  *n_out = n;
  if (cost) *cost = total;
  return NG_OK;
oom:
  ngi_read_unlock(rt);
  ngi_graph_free(rt, s);
  return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
}

/* ---- spreading activation ---------------------------------------------------- */

void ng_spread_init(ng_spread_opts *o) {
  memset(o, 0, sizeof *o);
  o->walk.dir = NG_OUT;
  o->walk.max_depth = 5;
  o->field = NG_WEIGHT_CONFIDENCE;
  o->mode = NG_SPREAD_FIRST;
  o->min_energy = 0.01;
  o->decay = 0.2;
  o->threshold = 0.1;
}

static ng_status check_spread_opts(const ng_runtime *rt, const char *fn, const ng_spread_opts *o,
                                   unsigned *dir) {
  ng_status st = check_walk(rt, fn, &o->walk, dir);
  if (st != NG_OK) return st;
  if (o->walk.max_depth == 0)
    return ngi_fail(rt, NG_EINVAL, "%s: max_depth must be at least 1, got 0", fn);
  if (o->field != NG_WEIGHT_CONFIDENCE && o->field != NG_WEIGHT_PULL)
    return ngi_fail(rt, NG_EINVAL,
                    "%s: field must be NG_WEIGHT_CONFIDENCE or NG_WEIGHT_PULL, "
                    "got %d",
                    fn, (int)o->field);
  if (o->mode < NG_SPREAD_FIRST || o->mode > NG_SPREAD_MAX)
    return ngi_fail(rt, NG_EINVAL, "%s: mode must be NG_SPREAD_FIRST, _SUM or _MAX, got %d", fn,
                    (int)o->mode);
  if (!(o->min_energy >= 0) || isinf(o->min_energy))
    return ngi_fail(rt, NG_EINVAL, "%s: min_energy must be a finite number >= 0, got %g", fn,
                    o->min_energy);
  if (!(o->decay >= 0 && o->decay <= 1))
    return ngi_fail(rt, NG_EINVAL, "%s: decay must be within 0..1, got %g", fn, o->decay);
  if (!(o->threshold >= 0) || isinf(o->threshold))
    return ngi_fail(rt, NG_EINVAL, "%s: threshold must be a finite number >= 0, got %g", fn,
                    o->threshold);
  return NG_OK;
}

/* Spread energies the original's way: breadth first, a token keeping its
 * first arrival (val, depth, parent slot; source slot in `at`), the queue
 * holding every token reached, in order; returns how many. */
static size_t spread_first(ng_runtime *rt, ngi_graph_scratch *s, const ng_spread_opts *o,
                           unsigned dir, const uint32_t *src, const double *e, size_t n_src) {
  ngi_conns *cs = rt->conns;
  walker wk;
  walker_begin(rt, s, dir, true, &wk);
  const bool filter = filtered(&o->walk);
  const uint32_t epoch = s->epoch;
  const double pass = 1 - o->decay;
  size_t head = 0, tail = 0;
  for (size_t i = 0; i < n_src; i++) {
    uint32_t v = src[i];
    s->mark[v] = epoch;
    s->val[v] = e[i];
    s->depth[v] = 0;
    s->parent[v] = NGI_NONE;
    s->at[v] = v;
    s->queue[tail++] = v;
  }
  while (head < tail) {
    uint32_t u = s->queue[head++];
    if (s->depth[u] >= o->walk.max_depth) continue;
    nbrs it;
    nbrs_begin(&wk, u, &it);
    uint32_t slot, v;
    while ((slot = nbrs_next(&wk, &it, &v)) != NGI_NONE) {
      if (s->mark[v] == epoch) continue;
      const ng_connection *r = &cs->recs[slot];
      if (filter && !type_ok(&o->walk, r->connection_type)) continue;
      double t = s->val[u] * link_weight(r, o->field) * pass;
      if (t < o->min_energy) continue;
      s->mark[v] = epoch;
      s->val[v] = t;
      s->depth[v] = s->depth[u] + 1;
      s->parent[v] = u;
      s->at[v] = s->at[u];
      s->queue[tail++] = v;
    }
  }
  return tail;
}

/* Spread level by level (SUM or MAX): arrivals of depth d are s->arr entries
 * [lo, hi); each token's total in val, its strongest arrival's index in
 * parent, its first reach in the queue. Returns how many tokens were
 * reached, or SIZE_MAX when out of memory. */
static size_t spread_levels(ng_runtime *rt, ngi_graph_scratch *s, const ng_spread_opts *o,
                            unsigned dir, const uint32_t *src, const double *e, size_t n_src) {
  ngi_conns *cs = rt->conns;
  walker wk;
  walker_begin(rt, s, dir, true, &wk);
  const bool filter = filtered(&o->walk);
  const uint32_t epoch = s->epoch;
  const double pass = 1 - o->decay;
  const bool sum = o->mode == NG_SPREAD_SUM;
  size_t reached = 0, n = 0;
  if (s->arr_cap < n_src) {
    if (!grow(rt, (void **)&s->arr, s->arr_cap, n_src, sizeof *s->arr)) return SIZE_MAX;
    s->arr_cap = n_src;
  }
  for (size_t i = 0; i < n_src; i++) {
    uint32_t v = src[i];
    s->arr[n] = (arrival){e[i], e[i], v, NGI_NONE, 0, 0};
    s->mark[v] = epoch;
    s->val[v] = e[i];
    s->at[v] = (uint32_t)n;
    s->parent[v] = (uint32_t)n++;
    s->queue[reached++] = v;
  }
  size_t lo = 0, hi = n;
  for (uint32_t d = 0; d < o->walk.max_depth && lo < hi; d++) {
    for (size_t a = lo; a < hi; a++) {
      uint32_t u = s->arr[a].slot;
      double eu = s->arr[a].energy;
      nbrs it;
      nbrs_begin(&wk, u, &it);
      uint32_t slot, v;
      while ((slot = nbrs_next(&wk, &it, &v)) != NGI_NONE) {
        const ng_connection *r = &cs->recs[slot];
        if (filter && !type_ok(&o->walk, r->connection_type)) continue;
        double t = eu * link_weight(r, o->field) * pass;
        if (t < o->min_energy) continue;
        if (s->mark[v] != epoch) { /* first reach */
          s->mark[v] = epoch;
          s->val[v] = 0;
          s->parent[v] = NGI_NONE;
          s->at[v] = NGI_NONE;
          s->queue[reached++] = v;
        }
        /* s->at[v] is v's arrival at depth d + 1 when it lies in [hi, n) */
        size_t b = s->at[v];
        if (b < hi || b >= n) {
          if (n == s->arr_cap) {
            size_t c = 2 * s->arr_cap + 64;
            if (!grow(rt, (void **)&s->arr, s->arr_cap, c, sizeof *s->arr)) return SIZE_MAX;
            s->arr_cap = c;
          }
          s->arr[n] = (arrival){0, -1, v, 0, d + 1, 0};
          s->at[v] = (uint32_t)(b = n++);
        }
        arrival *x = &s->arr[b];
        x->energy = sum ? x->energy + t : (t > x->energy ? t : x->energy);
        if (t > x->best) {
          x->best = t;
          x->parent = (uint32_t)a;
        }
      }
    }
    /* fold depth d + 1 into the totals */
    for (size_t b = hi; b < n; b++) {
      uint32_t v = s->arr[b].slot;
      double ev = s->arr[b].energy;
      uint32_t p = s->parent[v];
      bool stronger = p == NGI_NONE || ev > s->arr[p].energy;
      s->val[v] = sum ? s->val[v] + ev : (ev > s->val[v] ? ev : s->val[v]);
      if (stronger) s->parent[v] = (uint32_t)b;
    }
    lo = hi;
    hi = n;
  }
  return reached;
}

/* A reported token, for the sort by energy (descending) then id. */
typedef struct hit {
  double energy;
  ng_id id;
  uint32_t slot, pad;
} hit;
#define HIT_LESS(a, b)                                                                             \
  ((a)->energy > (b)->energy || ((a)->energy == (b)->energy && (a)->id < (b)->id))
NGI_DEFINE_INTROSORT(sort_hits, hit, HIT_LESS)

/* Write v's path (source first) into path[off .. off + depth] where it fits:
 * FIRST follows parent slots, the level modes parent arrivals from v's
 * strongest arrival. Sets the activation's source and depth. */
static void write_path(const ng_runtime *rt, const ngi_graph_scratch *s, bool first, uint32_t v,
                       ng_activation *a, ng_id *path, size_t path_cap) {
  const ngi_token_table *t = &rt->tokens;
  uint32_t depth = first ? s->depth[v] : s->arr[s->parent[v]].depth;
  size_t i = a->path_off + depth + 1;
  uint32_t at = first ? v : s->parent[v], tok = v;
  for (;;) {
    tok = first ? at : s->arr[at].slot;
    i--;
    if (i < path_cap) path[i] = ngi_token_id_of(t, tok);
    uint32_t up = first ? s->parent[at] : s->arr[at].parent;
    if (up == NGI_NONE) break;
    at = up;
  }
  a->source = ngi_token_id_of(t, tok);
  a->depth = depth;
}

ng_status ng_graph_spread(ng_runtime *rt, const ng_id *sources, const double *energies, size_t n,
                          const ng_spread_opts *o, ng_activation *out, size_t cap, size_t *n_out,
                          ng_id *path, size_t path_cap, size_t *path_n) {
  static const char fn[] = "ng_graph_spread";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  ng_spread_opts defaults;
  if (!o) {
    ng_spread_init(&defaults);
    o = &defaults;
  }
  unsigned dir;
  ng_status st = check_spread_opts(rt, fn, o, &dir);
  if (st != NG_OK) return st;
  if (!n_out || !path_n)
    return ngi_fail(rt, NG_EINVAL, "%s: n_out and path_n must not be NULL", fn);
  if ((!out && cap > 0) || (!path && path_cap > 0))
    return ngi_fail(rt, NG_EINVAL, "%s: out and path must not be NULL when given room", fn);
  if (n == 0 || !sources) return ngi_fail(rt, NG_EINVAL, "%s: no sources given", fn);
  for (size_t i = 0; energies && i < n; i++)
    if (!(energies[i] >= 0) || isinf(energies[i]))
      return ngi_fail(rt, NG_EINVAL,
                      "%s: energy of source %llu must be a finite number >= 0, "
                      "got %g",
                      fn, (unsigned long long)sources[i], energies[i]);
  uint32_t *src = ngi_alloc_array(rt, n, sizeof *src);
  double *e = ngi_alloc_array(rt, n, sizeof *e);
  ngi_graph_scratch *s = scratch_take(rt);
  hit *hits = NULL;
  size_t m = 0, reached = 0;
  if (!src || !e || !s) goto oom;
  for (size_t i = 0; i < n; i++)
    e[i] = energies ? energies[i] : 1.0;
  ngi_read_lock(rt);
  const ngi_token_table *t = &rt->tokens;
  for (size_t i = 0; i < n && st == NG_OK; i++) {
    if (!ngi_token_lookup(t, sources[i])) st = missing_token(rt, fn, "source", sources[i]);
    src[i] = NG_TOKEN_SLOT(sources[i]);
  }
  if (st == NG_OK && !scratch_begin(rt, s)) goto oom_locked;
  for (size_t i = 0; i < n && st == NG_OK; i++) {
    if (s->mark[src[i]] == s->epoch)
      st = ngi_fail(rt, NG_EINVAL, "%s: source %llu is given twice", fn,
                    (unsigned long long)sources[i]);
    s->mark[src[i]] = s->epoch;
  }
  if (st != NG_OK) {
    ngi_read_unlock(rt);
    goto out;
  }
  bool first = o->mode == NG_SPREAD_FIRST;
  reached =
      first ? spread_first(rt, s, o, dir, src, e, n) : spread_levels(rt, s, o, dir, src, e, n);
  if (reached == SIZE_MAX) goto oom_locked;
  for (size_t i = 0; i < reached; i++)
    if (s->val[s->queue[i]] >= o->threshold) s->queue[m++] = s->queue[i];
  hits = ngi_alloc_array(rt, m ? m : 1, sizeof *hits);
  if (!hits) goto oom_locked;
  for (size_t i = 0; i < m; i++) {
    uint32_t v = s->queue[i];
    hits[i] = (hit){s->val[v], ngi_token_id_of(t, v), v, 0};
  }
  sort_hits(hits, m);
  size_t off = 0;
  for (size_t i = 0; i < m; i++) {
    ng_activation a = {hits[i].id, 0, hits[i].energy, 0, off};
    write_path(rt, s, first, hits[i].slot, &a, path, path_cap);
    if (i < cap) out[i] = a;
    off += a.depth + 1;
  }
  ngi_read_unlock(rt);
  *n_out = m;
  *path_n = off;
out:
  if (hits) ngi_free(rt, hits, (m ? m : 1) * sizeof *hits);
  ngi_free(rt, src, n * sizeof *src);
  ngi_free(rt, e, n * sizeof *e);
  if (s) scratch_give(rt, s);
  return st;
oom_locked:
  ngi_read_unlock(rt);
oom:
  st = ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  if (src) ngi_free(rt, src, n * sizeof *src);
  if (e) ngi_free(rt, e, n * sizeof *e);
  if (s) ngi_graph_free(rt, s);
  return st;
}

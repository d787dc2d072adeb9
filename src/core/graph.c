/* Graph walks over the connections: breadth-first walks and cheapest paths
 * (spreading activation: graph_spread.c; the shared machinery: graph_walk.c). */
#include "graph_walk.h"

#include <math.h>

/* ---- breadth-first walk ----------------------------------------------------- */

ng_status ng_graph_bfs(ng_runtime *rt, ng_id start, const ng_walk *w, ng_id *ids, uint32_t *depths,
                       size_t cap, size_t *n_out) {
  static const char fn[] = "ng_graph_bfs";
  static const ng_walk all = {0};
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!w) w = &all;
  unsigned dir;
  ng_status st = ngi_walk_check(rt, fn, w, &dir);
  if (st != NG_OK) return st;
  if (!n_out) return ngi_fail(rt, NG_EINVAL, "%s: n_out must not be NULL", fn);
  if (!ids && cap > 0) return ngi_fail(rt, NG_EINVAL, "%s: ids must not be NULL", fn);
  static const char *const names[] = {"start"};
  ngi_graph_scratch *s;
  st = ngi_walk_open(rt, fn, &start, 1, names, 1, &s);
  if (st != NG_OK) return st;
  const ngi_token_table *t = &rt->tokens;
  ngi_conns *cs = rt->conns;
  walker wk;
  ngi_walker_begin(rt, s, dir, true, &wk);
  const bool filter = ngi_walk_filtered(w);
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
    ngi_nbrs_begin(&wk, u, &it);
    uint32_t slot, v;
    while ((slot = ngi_nbrs_next(&wk, &it, &v)) != NGI_NONE) {
      if (mark[v] == epoch || (filter && !ngi_walk_type_ok(w, cs->recs[slot].connection_type)))
        continue;
      mark[v] = epoch;
      depth[v] = d + 1;
      queue[tail++] = v;
    }
  }
  ngi_walk_close(rt, s);
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
    if (!ngi_graph_grow(rt, (void **)&s->heap, s->heap_cap, cap, sizeof *s->heap)) return false;
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
    double w = ngi_link_weight(r, o->field);
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
  ng_status st = ngi_walk_check(rt, fn, &o->walk, dir);
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
    if (v >= s->slots || !ngi_walk_type_ok(&o->walk, cs->recs[slot].connection_type)) continue;
    if (n == s->links_cap) {
      size_t c = s->links_cap ? 2 * s->links_cap : 64;
      if (!ngi_graph_grow(rt, (void **)&s->links, s->links_cap, c, sizeof *s->links))
        return NG_ENOMEM;
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
  static const char *const names[] = {"from", "to"};
  const ng_id ends[] = {from, to};
  ngi_graph_scratch *s;
  st = ngi_walk_open(rt, fn, ends, 2, names, 2, &s);
  if (st != NG_OK) return st;
  ngi_token_table *t = &rt->tokens;
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
  ngi_walker_begin(rt, s, dir, o->cost != NG_COST_FN, &wk);
  const bool filter = ngi_walk_filtered(&o->walk);
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
    ngi_nbrs_begin(&wk, u, &it);
    uint32_t slot, v;
    while ((slot = ngi_nbrs_next(&wk, &it, &v)) != NGI_NONE) {
      if (s->mark[v] == s->epoch && (s->depth[v] >> 31)) continue; /* settled */
      const ng_connection *r = &cs->recs[slot];
      if (filter && !ngi_walk_type_ok(&o->walk, r->connection_type)) continue;
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
  ngi_walk_close(rt, s);
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

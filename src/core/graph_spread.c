/* Spreading activation over the connections (the other walks: graph.c). */
#include "graph_walk.h"
#include "introsort.h"

#include <math.h>

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
  ng_status st = ngi_walk_check(rt, fn, &o->walk, dir);
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
  ngi_walker_begin(rt, s, dir, true, &wk);
  const bool filter = ngi_walk_filtered(&o->walk);
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
    ngi_nbrs_begin(&wk, u, &it);
    uint32_t slot, v;
    while ((slot = ngi_nbrs_next(&wk, &it, &v)) != NGI_NONE) {
      if (s->mark[v] == epoch) continue;
      const ng_connection *r = &cs->recs[slot];
      if (filter && !ngi_walk_type_ok(&o->walk, r->connection_type)) continue;
      double t = s->val[u] * ngi_link_weight(r, o->field) * pass;
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
  ngi_walker_begin(rt, s, dir, true, &wk);
  const bool filter = ngi_walk_filtered(&o->walk);
  const uint32_t epoch = s->epoch;
  const double pass = 1 - o->decay;
  const bool sum = o->mode == NG_SPREAD_SUM;
  size_t reached = 0, n = 0;
  if (s->arr_cap < n_src) {
    if (!ngi_graph_grow(rt, (void **)&s->arr, s->arr_cap, n_src, sizeof *s->arr)) return SIZE_MAX;
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
      ngi_nbrs_begin(&wk, u, &it);
      uint32_t slot, v;
      while ((slot = ngi_nbrs_next(&wk, &it, &v)) != NGI_NONE) {
        const ng_connection *r = &cs->recs[slot];
        if (filter && !ngi_walk_type_ok(&o->walk, r->connection_type)) continue;
        double t = eu * ngi_link_weight(r, o->field) * pass;
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
            if (!ngi_graph_grow(rt, (void **)&s->arr, s->arr_cap, c, sizeof *s->arr))
              return SIZE_MAX;
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
  ngi_graph_scratch *s = NULL;
  hit *hits = NULL;
  size_t m = 0, reached = 0;
  if (!src || !e) {
    st = ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
    goto out;
  }
  static const char *const names[] = {"source"};
  st = ngi_walk_open(rt, fn, sources, n, names, 1, &s);
  if (st != NG_OK) goto out;
  const ngi_token_table *t = &rt->tokens;
  for (size_t i = 0; i < n && st == NG_OK; i++) {
    src[i] = NG_TOKEN_SLOT(sources[i]);
    e[i] = energies ? energies[i] : 1.0;
    if (s->mark[src[i]] == s->epoch)
      st = ngi_fail(rt, NG_EINVAL, "%s: source %llu is given twice", fn,
                    (unsigned long long)sources[i]);
    s->mark[src[i]] = s->epoch;
  }
  if (st != NG_OK) goto out;
  bool first = o->mode == NG_SPREAD_FIRST;
  reached =
      first ? spread_first(rt, s, o, dir, src, e, n) : spread_levels(rt, s, o, dir, src, e, n);
  if (reached == SIZE_MAX) goto oom;
  for (size_t i = 0; i < reached; i++)
    if (s->val[s->queue[i]] >= o->threshold) s->queue[m++] = s->queue[i];
  hits = ngi_alloc_array(rt, m ? m : 1, sizeof *hits);
  if (!hits) goto oom;
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
  *n_out = m;
  *path_n = off;
  goto out;
oom:
  st = ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
out:
  if (s) ngi_walk_close(rt, s);
  if (hits) ngi_free(rt, hits, (m ? m : 1) * sizeof *hits);
  if (src) ngi_free(rt, src, n * sizeof *src);
  if (e) ngi_free(rt, e, n * sizeof *e);
  return st;
}

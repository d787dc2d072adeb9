/* The grid's public queries (range, neighbours, nearest-k, box): argument
 * checks, locking, and the run of one query. */
#include "grid_query.h"

/* ---- public entry points ------------------------------------------------ */

/* Common argument checks; out->count is zeroed first so failures leave it 0. */
static ng_status check_common(ng_runtime *rt, const char *fn, int space, const ng_filter *filter,
                              ng_hits *out) {
  if (out) out->count = 0;
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!out) return ngi_fail(rt, NG_EINVAL, "%s: out must not be NULL", fn);
  if (space < 0 || space >= NG_SPACES)
    return ngi_fail(rt, NG_EINVAL, "%s: space must be 0..7, got %d", fn, space);
  return ngi_filter_check(rt, fn, filter);
}

static ng_status check_radius(ng_runtime *rt, const char *fn, float radius) {
  if (!ngi_finite(radius) || radius < 0.0f)
    return ngi_fail(rt, NG_EINVAL, "%s: radius must be a finite number >= 0, got %g", fn,
                    (double)radius);
  return NG_OK;
}

static ng_status check_point(ng_runtime *rt, const char *fn, const char *what, const float *p) {
  if (!p) return ngi_fail(rt, NG_EINVAL, "%s: %s must not be NULL", fn, what);
  for (int a = 0; a < 3; a++)
    if (!ngi_finite(p[a]))
      return ngi_fail(rt, NG_EINVAL, "%s: %s[%d] must be a finite number, got %g", fn, what, a,
                      (double)p[a]);
  return NG_OK;
}

/* Run q on q->g with `filter` (checked; NULL: the defaults; caller holds
 * the runtime's read lock): complete the index, run, sort; failures leave no
 * hits. */
static ng_status run_sorted(query *q, const ng_filter *filter, ng_status (*run)(query *)) {
  ngi_grid *g = q->rt->grids[q->g->space];
  double sc = g->rpu;
  q->rawlim2 = INFINITY;
  q->rawedge2 = INFINITY;
  if (q->kind == Q_SPHERE) {
    double rr = q->radius * sc + 1.0;
    q->rawlim2 = rr * rr;
    q->rawedge2 = rr > 3.0 ? (rr - 3.0) * (rr - 3.0) : -1.0;
  }
  for (int a = 0; a < 3; a++) {
    q->cu[a] = q->c[a] * sc + NGI_BIAS;
    q->blo[a] = (double)q->lo[a] * sc + NGI_BIAS - 1.0;
    q->bhi[a] = (double)q->hi[a] * sc + NGI_BIAS + 1.0;
  }
  ngi_filter f;
  ng_status st = ngi_filter_prepare(q->rt, filter, &f);
  q->filter = &f;
  q->filtered = f.fields || f.nexcl || f.accept;
  if (st == NG_OK) st = ngi_grid_acquire(q->rt, g);
  if (st == NG_OK) {
    st = run(q);
    ngi_grid_release(g);
  }
  ngi_filter_free(q->rt, &f);
  if (st == NG_OK) {
    ngi_query_sort(q->rt, q->out, q->k);
    st = ngi_fill_positions(q->rt, g->space, q->out);
  }
  if (st != NG_OK) q->out->count = 0;
  return st;
}

/* The exit of every public query: counts it (metrics.h) and reports NG_ENOMEM. */
static ng_status finish(ng_runtime *rt, const char *fn, ng_status st, int kind, uint64_t t0) {
  ngi_query_end(&rt->metrics, kind, t0);
  if (st == NG_ENOMEM) return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  return st;
}

ng_status ng_grid_range(ng_runtime *rt, int space, const float center[3], float radius,
                        size_t limit, const ng_filter *filter, ng_hits *out) {
  static const char fn[] = "ng_grid_range";
  ng_status st = check_common(rt, fn, space, filter, out);
  if (st == NG_OK) st = check_point(rt, fn, "center", center);
  if (st == NG_OK) st = check_radius(rt, fn, radius);
  if (st != NG_OK) return st;
  uint64_t t0 = ngi_query_begin(&rt->metrics);
  query q = {.rt = rt, .kind = Q_SPHERE, .radius = (double)radius, .k = limit, .out = out};
  for (int a = 0; a < 3; a++)
    q.c[a] = (double)center[a];
  ngi_read_lock(rt);
  q.g = rt->grids[space];
  if (q.g) st = run_sorted(&q, filter, ngi_run_sphere);
  ngi_read_unlock(rt);
  return finish(rt, fn, st, NG_QUERY_RANGE, t0);
}

/* k == 0 asks for nothing (q->k 0 would mean "keep all"); the token is
 * still checked. */
static ng_status run_none(query *q) {
  (void)q;
  return NG_OK;
}

/* Queries around token `id` (neighbours, nearest_to): q's centre becomes the
 * token's position and the token is left out; then run. NG_ENOTFOUND if it
 * does not exist or is not placed in the space. */
static ng_status run_around(query *q, const char *fn, ng_id id, int space, const ng_filter *filter,
                            ng_status (*run)(query *)) {
  ng_runtime *rt = q->rt;
  ng_status st = NG_OK;
  q->exclude = NG_TOKEN_SLOT(id);
  ngi_read_lock(rt);
  const ng_token *t = ngi_token_lookup(&rt->tokens, id);
  if (!t) {
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: no token with id %llu", fn, (unsigned long long)id);
  } else if (!(ngi_placed(&rt->tokens, NG_TOKEN_SLOT(id)) & (1u << space))) {
    st = ngi_fail(rt, NG_ENOTFOUND, "%s: token %llu is not placed in %s", fn,
                  (unsigned long long)id, ng_space_name(space));
  } else if ((q->g = rt->grids[space]) != NULL) {
    for (int a = 0; a < 3; a++)
      q->c[a] = (double)ngi_unit_decode_f(&q->g->unit, t->coords[space][a]);
    st = run_sorted(q, filter, run);
  }
  ngi_read_unlock(rt);
  return st;
}

ng_status ng_grid_neighbors(ng_runtime *rt, ng_id id, int space, float radius, size_t limit,
                            const ng_filter *filter, ng_hits *out) {
  static const char fn[] = "ng_grid_neighbors";
  ng_status st = check_common(rt, fn, space, filter, out);
  if (st == NG_OK) st = check_radius(rt, fn, radius);
  if (st == NG_OK) st = ngi_check_id(rt, fn, id);
  if (st != NG_OK) return st;
  uint64_t t0 = ngi_query_begin(&rt->metrics);
  query q = {.rt = rt, .kind = Q_SPHERE, .radius = (double)radius, .k = limit, .out = out};
  return finish(rt, fn, run_around(&q, fn, id, space, filter, ngi_run_sphere), NG_QUERY_NEIGHBORS,
                t0);
}

ng_status ng_grid_nearest(ng_runtime *rt, int space, const float center[3], size_t k,
                          const ng_filter *filter, ng_hits *out) {
  static const char fn[] = "ng_grid_nearest";
  ng_status st = check_common(rt, fn, space, filter, out);
  if (st == NG_OK) st = check_point(rt, fn, "center", center);
  if (st != NG_OK) return st;
  uint64_t t0 = ngi_query_begin(&rt->metrics);
  query q = {.rt = rt, .kind = Q_ALL, .k = k, .out = out};
  for (int a = 0; a < 3; a++)
    q.c[a] = (double)center[a];
  ngi_read_lock(rt);
  q.g = rt->grids[space];
  if (q.g && k > 0) st = run_sorted(&q, filter, ngi_run_nearest);
  ngi_read_unlock(rt);
  return finish(rt, fn, st, NG_QUERY_NEAREST, t0);
}

ng_status ng_grid_nearest_to(ng_runtime *rt, ng_id id, int space, size_t k, const ng_filter *filter,
                             ng_hits *out) {
  static const char fn[] = "ng_grid_nearest_to";
  ng_status st = check_common(rt, fn, space, filter, out);
  if (st == NG_OK) st = ngi_check_id(rt, fn, id);
  if (st != NG_OK) return st;
  uint64_t t0 = ngi_query_begin(&rt->metrics);
  query q = {.rt = rt, .kind = Q_ALL, .k = k, .out = out};
  return finish(rt, fn, run_around(&q, fn, id, space, filter, k ? ngi_run_nearest : run_none),
                NG_QUERY_NEAREST, t0);
}

ng_status ng_grid_box(ng_runtime *rt, int space, const float lo[3], const float hi[3], size_t limit,
                      const ng_filter *filter, ng_hits *out) {
  static const char fn[] = "ng_grid_box";
  ng_status st = check_common(rt, fn, space, filter, out);
  if (st == NG_OK) st = check_point(rt, fn, "lo", lo);
  if (st == NG_OK) st = check_point(rt, fn, "hi", hi);
  if (st != NG_OK) return st;
  for (int a = 0; a < 3; a++)
    if (lo[a] > hi[a])
      return ngi_fail(rt, NG_EINVAL, "%s: lo[%d] must be <= hi[%d], got %g > %g", fn, a, a,
                      (double)lo[a], (double)hi[a]);
  uint64_t t0 = ngi_query_begin(&rt->metrics);
  query q = {.rt = rt, .kind = Q_BOX, .k = limit, .out = out};
  for (int a = 0; a < 3; a++) {
    q.lo[a] = lo[a];
    q.hi[a] = hi[a];
    q.c[a] = ((double)lo[a] + (double)hi[a]) / 2.0;
  }
  ngi_read_lock(rt);
  q.g = rt->grids[space];
  if (q.g) st = run_sorted(&q, filter, ngi_run_box);
  ngi_read_unlock(rt);
  return finish(rt, fn, st, NG_QUERY_BOX, t0);
}

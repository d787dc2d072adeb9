/* What a grid query keeps and gives besides ids: the filters (checking the caller's ng_filter,
 * preparing it for the scan) and the positions of hits (ng_hits.positions, ng_token_positions). */
#include "grid_filter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ng_status ngi_filter_check(ng_runtime *rt, const char *fn, const ng_filter *f) {
  if (!f) return NG_OK;
  if (f->weight_range) {
    if (!ngi_finite(f->min_weight) || !ngi_finite(f->max_weight))
      return ngi_fail(rt, NG_EINVAL, "%s: filter weight range must be finite, got %g..%g", fn,
                      (double)f->min_weight, (double)f->max_weight);
    if (f->min_weight > f->max_weight)
      return ngi_fail(rt, NG_EINVAL, "%s: filter weight range must have min <= max, got %g..%g", fn,
                      (double)f->min_weight, (double)f->max_weight);
  }
  if (f->nexclude && !f->exclude)
    return ngi_fail(rt, NG_EINVAL, "%s: filter exclude must not be NULL when nexclude is %zu", fn,
                    f->nexclude);
  return NG_OK;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

ng_status ngi_filter_prepare(ng_runtime *rt, const ng_filter *f, ngi_filter *out) {
  static const ng_filter defaults = {0};
  if (!f) f = &defaults;
  memset(out, 0, sizeof *out);
  out->excl = out->excl_inline;
  out->excl_cap = NGI_EXCL_INLINE;
  /* ACTIVE is tested only once some live token may lack it. */
  bool active = !f->inactive && rt->tokens.inactive_seen;
  out->must_set = (uint16_t)(f->tags | (active ? NG_TOKEN_ACTIVE : 0));
  out->must_clear = f->without;
  out->entities = f->entities;
  out->weight = f->weight_range;
  out->wlo = f->min_weight;
  out->whi = f->max_weight;
  out->fields = out->must_set || out->must_clear || out->entities || out->weight;
  out->accept = f->accept;
  out->ud = f->ud;
  if (f->nexclude > NGI_EXCL_INLINE) {
    out->excl = ngi_alloc_array(rt, f->nexclude, sizeof *out->excl);
    if (!out->excl) {
      out->excl = out->excl_inline;
      return NG_ENOMEM;
    }
    out->excl_cap = f->nexclude;
  }
  for (size_t i = 0; i < f->nexclude; i++)
    if (ngi_token_lookup(&rt->tokens, f->exclude[i]))
      out->excl[out->nexcl++] = NG_TOKEN_SLOT(f->exclude[i]);
  qsort(out->excl, out->nexcl, sizeof *out->excl, cmp_u32);
  return NG_OK;
}

void ngi_filter_free(ng_runtime *rt, ngi_filter *f) {
  if (f->excl != f->excl_inline) ngi_free(rt, f->excl, f->excl_cap * sizeof *f->excl);
  f->excl = f->excl_inline;
  f->excl_cap = NGI_EXCL_INLINE;
  f->nexcl = 0;
}

/* With h->positions, each hit's decoded position into h->xyz (grown as
 * needed), under the caller's read lock. fails: NG_ENOMEM. */
ng_status ngi_fill_positions(ng_runtime *rt, int space, ng_hits *h) {
  if (!h->positions) return NG_OK;
  size_t need = 3 * h->count;
  if (need > h->xyz_capacity) {
    size_t cap = h->xyz_capacity ? h->xyz_capacity : 48;
    while (cap < need)
      cap *= 2;
    double *p = ngi_realloc_array(rt, h->xyz, h->xyz_capacity, cap, sizeof *p);
    if (!p) return NG_ENOMEM;
    h->xyz = p;
    h->xyz_capacity = cap;
  }
  const ngi_token_table *t = &rt->tokens;
  const ngi_unit *u = &rt->units[space];
  for (size_t i = 0; i < h->count; i++) {
    const ng_token *tok = ngi_tok_of_local(t, NG_TOKEN_SLOT(h->items[i].id));
    for (int a = 0; a < 3; a++)
      h->xyz[3 * i + (size_t)a] = ngi_unit_decode(u, tok->coords[space][a]);
  }
  return NG_OK;
}

/* The positions of many tokens under one read lock: what a frame reads
 * after its queries (NaN for a token not found or not placed there). */
ng_status ng_token_positions(ng_runtime *rt, int space, const ng_id *ids, size_t n, double *xyz,
                             size_t *found) {
  static const char fn[] = "ng_token_positions";
  if (found) *found = 0;
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (space < 0 || space >= NG_SPACES)
    return ngi_fail(rt, NG_EINVAL, "%s: space must be 0..7, got %d", fn, space);
  if (n && (!ids || !xyz))
    return ngi_fail(rt, NG_EINVAL, "%s: %s must not be NULL", fn, ids ? "xyz" : "ids");
  size_t k = 0;
  ngi_read_lock(rt);
  const ngi_token_table *t = &rt->tokens;
  for (size_t i = 0; i < n; i++) {
    uint32_t slot = ngi_token_slot(t, ids[i]);
    if (slot != NGI_NONE && (ngi_placed(t, NG_TOKEN_SLOT(ids[i])) >> space & 1u)) {
      const ng_token *tok = ngi_tok_at(t, slot);
      for (int a = 0; a < 3; a++)
        xyz[3 * i + (size_t)a] = ngi_unit_decode(&rt->units[space], tok->coords[space][a]);
      k++;
    } else {
      xyz[3 * i] = xyz[3 * i + 1] = xyz[3 * i + 2] = NAN;
    }
  }
  ngi_read_unlock(rt);
  if (found) *found = k;
  return NG_OK;
}

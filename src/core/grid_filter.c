/* The filters of grid queries: checking the caller's ng_filter and preparing it for the scan. */
#include "grid_filter.h"

#include <stdlib.h>
#include <string.h>

ng_status ngi_filter_check(ng_runtime *rt, const char *fn, const ng_filter *f) {
  if (!f) return NG_OK;
  if (f->weight_range) {
    if (!ngi_finite(f->min_weight) || !ngi_finite(f->max_weight))
      return ngi_fail(rt, NG_EINVAL, "%s: filter weight range must be finite, got %g..%g", fn,
                      (double)f->min_weight, (double)f->max_weight);
    if (f->min_weight > f->max_weight)
      return ngi_fail(rt, NG_EINVAL, "%s: filter weight range must have min <= max, got %g..%g",
                      fn, (double)f->min_weight, (double)f->max_weight);
  }
  if (f->nexclude && !f->exclude)
    return ngi_fail(rt, NG_EINVAL, "%s: filter exclude must not be NULL when nexclude is %zu",
                    fn, f->nexclude);
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

/* The filters of grid queries (ng_filter), prepared once per query and tested inside the scan,
 * and the positions of hits. */
#ifndef NG_CORE_GRID_FILTER_H
#define NG_CORE_GRID_FILTER_H

#include "internal.h"

#define NGI_EXCL_INLINE 16 /* excluded slots kept in the struct; more are allocated */

/* A query's filter in the form the scan tests: the flag tests folded into
 * two masks, read from the token table's flag copies (2 bytes a token, so a
 * filter costs far less than a record read: a cache line a candidate), the
 * weight from the record; the excluded ids as the sorted slots of the live
 * ones (a stale id must not exclude the token now in its slot). `fields` is
 * false when no field is tested, so the default filter costs nothing until a
 * token has been made inactive. */
typedef struct ngi_filter {
  bool fields;
  uint16_t must_set, must_clear, entities;
  bool weight;
  float wlo, whi;
  uint32_t *excl; /* excl_inline or an allocation of excl_cap */
  size_t nexcl, excl_cap;
  uint32_t excl_inline[NGI_EXCL_INLINE];
  ng_accept_fn accept;
  void *ud;
} ngi_filter;

/* Check the caller's filter f (NULL: the defaults) for `fn`. No lock needed.
 * fails: NG_EINVAL naming the field. */
ng_status ngi_filter_check(ng_runtime *rt, const char *fn, const ng_filter *f);
/* Make *out from a checked f. Caller holds the read lock (the excluded ids
 * are resolved to live slots). fails: NG_ENOMEM, *out then owning nothing. */
ng_status ngi_filter_prepare(ng_runtime *rt, const ng_filter *f, ngi_filter *out);
/* Free what ngi_filter_prepare allocated. */
void ngi_filter_free(ng_runtime *rt, ngi_filter *f);
/* With h->positions, each hit's decoded position in `space` into h->xyz
 * (grown as needed). Caller holds the read lock. fails: NG_ENOMEM. */
ng_status ngi_fill_positions(ng_runtime *rt, int space, ng_hits *h);

static inline bool ngi_filter_excluded(const ngi_filter *f, uint32_t local) {
  size_t lo = 0, hi = f->nexcl;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (f->excl[mid] < local)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < f->nexcl && f->excl[lo] == local;
}

/* Whether the live token in slot `local`, at distance d, passes f. Caller
 * holds the read lock. */
static inline bool ngi_filter_pass(const ngi_filter *f, const ngi_token_table *t, uint32_t local,
                                   float d) {
  if (f->nexcl && ngi_filter_excluded(f, local)) return false;
  if (f->fields) {
    uint16_t fl = ngi_flags_of(t, local); /* the copy: no record read */
    if ((fl & f->must_set) != f->must_set || (fl & f->must_clear)) return false;
    if (f->entities && !((f->entities >> ((fl & NG_TOKEN_ENTITY_MASK) >> 8)) & 1u)) return false;
    if (f->weight) {
      float w = ngi_tok_of_local(t, local)->weight;
      if (!(w >= f->wlo && w <= f->whi)) return false;
    }
  }
  return !f->accept || f->accept(ngi_token_id_of(t, local), d, f->ud);
}

#endif

/* The connection API: field and degree validation, the public ng_connection_* calls. */
#include "conn_table.h"

#include <string.h>

/* ---- validation ----------------------------------------------------------- */

/* The record rules (ng_connection_validate) with the runtime's CDNA, shared
 * by create and update; the failure is recorded for `fn`. */
static ng_status check_fields(const ng_runtime *rt, const char *fn, const ng_connection *v,
                              uint32_t fields) {
  char why[192];
  if (ng_connection_validate(v, fields, &rt->cdna, why, sizeof why) != NG_OK)
    return ngi_fail(rt, NG_EINVAL, "%s: %s", fn, why);
  return NG_OK;
}

/* Degree limits for adding from -> to (a self-link adds one out and one in). */
static ng_status check_degrees(const ng_runtime *rt, ngi_conns *c, ng_id from, ng_id to) {
  const ng_cdna *cd = &rt->cdna;
  const adj_entry *ef = ngi_conns_find_adj(c, NG_TOKEN_SLOT(from));
  const adj_entry *et = ngi_conns_find_adj(c, NG_TOKEN_SLOT(to));
  uint64_t f_out = ef ? ef->out_n : 0, f_in = ef ? ef->in_n : 0;
  uint64_t t_out = et ? et->out_n : 0, t_in = et ? et->in_n : 0;
  uint64_t f_total = f_out + f_in + 1, t_total = t_out + t_in + 1;
  if (from == to) f_total = t_total = f_out + f_in + 2;
  if (f_out + 1 > cd->max_out_degree)
    return ngi_fail(rt, NG_ELIMIT,
                    "ng_connection_create: degree limit reached: token %llu has %llu outgoing "
                    "connections (max_out_degree %u)",
                    (unsigned long long)from, (unsigned long long)f_out, cd->max_out_degree);
  if (t_in + 1 > cd->max_in_degree)
    return ngi_fail(rt, NG_ELIMIT,
                    "ng_connection_create: degree limit reached: token %llu has %llu incoming "
                    "connections (max_in_degree %u)",
                    (unsigned long long)to, (unsigned long long)t_in, cd->max_in_degree);
  if (f_total > cd->max_total_degree)
    return ngi_fail(rt, NG_ELIMIT,
                    "ng_connection_create: degree limit reached: token %llu has %llu connections "
                    "(max_total_degree %u)",
                    (unsigned long long)from, (unsigned long long)(f_out + f_in),
                    cd->max_total_degree);
  if (t_total > cd->max_total_degree)
    return ngi_fail(rt, NG_ELIMIT,
                    "ng_connection_create: degree limit reached: token %llu has %llu connections "
                    "(max_total_degree %u)",
                    (unsigned long long)to, (unsigned long long)(t_out + t_in),
                    cd->max_total_degree);
  return NG_OK;
}

/* ---- public API ----------------------------------------------------------- */

/* Report an endpoint that is not a live token: 0 or an id of 2^53 and above
 * is no id at all, a well-formed one names a token that does not exist (or
 * no longer does: its generation is stale). Both are the caller's mistake. */
static ng_status missing_endpoint(const ng_runtime *rt, const char *fn, const char *field,
                                  ng_id id) {
  if (!ngi_id_valid(id))
    return ngi_fail(rt, NG_EINVAL, "%s: %s must be a token id within 1..2^53-1, got %llu", fn,
                    field, (unsigned long long)id);
  return ngi_fail(rt, NG_EINVAL, "%s: %s token %llu does not exist", fn, field,
                  (unsigned long long)id);
}

/* The connection other than `except` that a link from -> to of `type` with
 * flags `flags` would duplicate (from and to are token slots), or 0: one
 * stored from -> to of that type, or one stored to -> from of that type
 * when either is bidirectional (a bidirectional link is also the link the
 * other way, so the pair would be found twice). */
static ng_id conflicting_link(ngi_conns *cs, uint32_t from, uint32_t to, unsigned type,
                              uint8_t flags, ng_id except) {
  ng_id id = ngi_conns_find_dup(cs, from, to, type, except);
  if (id || from == to) return id;
  id = ngi_conns_find_dup(cs, to, from, type, except);
  if (id && !(flags & NG_CONN_BIDIRECTIONAL) &&
      !(cs->recs[ngi_conns_find_slot(cs, id)].flags & NG_CONN_BIDIRECTIONAL))
    id = 0;
  return id;
}

/* Records the NG_EEXIST of `dup` (an existing link) against a new or
 * changed from -> to of `type`, for fn. */
static ng_status link_exists(const ng_runtime *rt, const char *fn, ng_id dup, uint32_t from,
                             uint32_t to, unsigned type) {
  const ngi_conns *cs = rt->conns;
  const ng_connection *d = &cs->recs[ngi_conns_find_slot(cs, dup)];
  const ngi_token_table *t = &rt->tokens;
  unsigned long long a = ngi_token_id_of(t, from), b = ngi_token_id_of(t, to);
  if (d->token_a_id == from)
    return ngi_fail(rt, NG_EEXIST, "%s: a connection %llu -> %llu of type 0x%02X (%s) already "
                    "exists (connection %llu)", fn, a, b, type, ng_conn_type_name(type),
                    (unsigned long long)dup);
  return ngi_fail(rt, NG_EEXIST,
                  "%s: connection %llu (%llu -> %llu) of type 0x%02X (%s) already links these "
                  "tokens and one of the two is bidirectional",
                  fn, (unsigned long long)dup, b, a, type, ng_conn_type_name(type));
}

/* Needs: a valid record from ng_connection_init or equivalent.
 * Guarantees: on NG_OK the record is stored under a fresh id (*out_id, may be
 * NULL) and linked into both endpoints' adjacency. Fails: NG_EINVAL (bad
 * field, missing endpoint), NG_EEXIST, NG_ELIMIT, NG_ENOMEM, NG_EBUSY; the
 * store is then unchanged. */
ng_status ng_connection_create(ng_runtime *rt, ng_id from, ng_id to, const ng_connection *c,
                               ng_id *out_id) {
  static const char fn[] = "ng_connection_create";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  ng_connection rec;
  if (c)
    rec = *c;
  else
    ng_connection_init(&rec);
  rec.token_a_id = NG_TOKEN_SLOT(from);
  rec.token_b_id = NG_TOKEN_SLOT(to);
  ng_status st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_conns *cs = rt->conns;
  ng_id id = 0, dup;
  if (!ngi_token_lookup(&rt->tokens, from)) {
    st = missing_endpoint(rt, fn, "from", from);
  } else if (!ngi_token_lookup(&rt->tokens, to)) {
    st = missing_endpoint(rt, fn, "to", to);
  } else if (rec.padding1 != 0) {
    st = ngi_fail(rt, NG_EINVAL, "%s: padding1 must be 0, got %u", fn, (unsigned)rec.padding1);
  } else if ((st = check_fields(rt, fn, &rec, NG_CF_ALL)) != NG_OK) {
    /* reported */
  } else if ((dup = conflicting_link(cs, rec.token_a_id, rec.token_b_id, rec.connection_type,
                                      rec.flags, 0)) != 0) {
    st = link_exists(rt, fn, dup, rec.token_a_id, rec.token_b_id, rec.connection_type);
  } else if ((st = check_degrees(rt, cs, from, to)) != NG_OK) {
    /* reported */
  } else if (ngi_idgen_peek(&cs->ids, &id) != NG_OK) {
    st = ngi_fail(rt, NG_ELIMIT,
                  "%s: connection limit reached: %zu live connections and %llu retired slots use "
                  "all %u slots",
                  fn, cs->live, (unsigned long long)cs->ids.retired,
                  (unsigned)NG_CONNECTION_SLOT_MAX);
  } else if (ngi_conns_reserve_append(rt, cs) != NG_OK) {
    st = ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  }
  if (st != NG_OK) {
    ngi_write_unlock(rt);
    return st;
  }

  /* Everything is reserved: nothing below can fail. */
  uint32_t now = ngi_now32(rt);
  if (rec.created_at == 0) rec.created_at = now;
  if (rec.last_update == 0) rec.last_update = now;
  ngi_idgen_take(&cs->ids);
  ngi_txn_log_conn_append(rt);
  ngi_conns_append(cs, id, &rec);
  if (NGI_EV_ON(rt)) ngi_ev_conn(rt, NG_EV_LINK, id, &rec, 0);

  ngi_write_unlock(rt);
  if (out_id) *out_id = id;
  return NG_OK;
}

/* Not-found for connection `id`, recorded under fn. */
static ng_status conn_not_found(const ng_runtime *rt, const char *fn, ng_id id) {
  return ngi_fail(rt, NG_ENOTFOUND, "%s: connection %llu not found", fn, (unsigned long long)id);
}

ng_status ng_connection_get(ng_runtime *rt, ng_id id, ng_connection *out) {
  static const char fn[] = "ng_connection_get";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!out) return ngi_fail(rt, NG_EINVAL, "%s: out must not be NULL", fn);
  ng_status st = ngi_check_id(rt, fn, id);
  if (st != NG_OK) return st;
  ngi_read_lock(rt);
  uint32_t s = ngi_conns_find_slot(rt->conns, id);
  if (s != NGI_NONE) *out = rt->conns->recs[s];
  ngi_read_unlock(rt);
  if (s == NGI_NONE) return conn_not_found(rt, fn, id);
  return NG_OK;
}

ng_status ng_connection_ends(ng_runtime *rt, ng_id id, ng_id *from, ng_id *to) {
  static const char fn[] = "ng_connection_ends";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  ng_status st = ngi_check_id(rt, fn, id);
  if (st != NG_OK) return st;
  ngi_read_lock(rt);
  uint32_t s = ngi_conns_find_slot(rt->conns, id);
  if (s != NGI_NONE) {
    const ng_connection *r = &rt->conns->recs[s];
    if (from) *from = ngi_token_id_of(&rt->tokens, r->token_a_id);
    if (to) *to = ngi_token_id_of(&rt->tokens, r->token_b_id);
  }
  ngi_read_unlock(rt);
  if (s == NGI_NONE) return conn_not_found(rt, fn, id);
  return NG_OK;
}

/* Needs: `fields` a subset of NG_CF_ALL | NG_CF_FLAG_BITS(0xFF). Guarantees:
 * the selected fields (and flag bits) are written together or not at all;
 * endpoints never change. Fails: NG_ENOTFOUND,
 * NG_EINVAL (unknown bits, bad value, type not allowed), NG_EEXIST (the new
 * type duplicates another connection between the same endpoints), NG_EBUSY. */
ng_status ng_connection_update(ng_runtime *rt, ng_id id, const ng_connection *values,
                               uint32_t fields) {
  static const char fn[] = "ng_connection_update";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (ngi_check_id(rt, fn, id) != NG_OK) return NG_EINVAL;
  const uint32_t known = NG_CF_ALL | NG_CF_FLAG_BITS(0xFF);
  if (fields & ~known)
    return ngi_fail(rt, NG_EINVAL, "%s: unknown field bits 0x%X", fn, fields & ~known);
  if (!values && fields) return ngi_fail(rt, NG_EINVAL, "%s: values must not be NULL", fn);
  ng_status st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_conns *cs = rt->conns;
  uint32_t s = ngi_conns_find_slot(cs, id);
  if (s == NGI_NONE) {
    ngi_write_unlock(rt);
    return conn_not_found(rt, fn, id);
  }
  const ng_connection *old = &cs->recs[s];
  ng_connection n = *old;
  if (fields & NG_CF_TYPE) n.connection_type = values->connection_type;
  if (fields & NG_CF_RIGIDITY) n.rigidity = values->rigidity;
  if (fields & NG_CF_ACTIVE_LEVELS) n.active_levels = values->active_levels;
  uint8_t flag_bits = (fields & NG_CF_FLAGS) ? 0xFF : (uint8_t)(fields >> 24);
  if (flag_bits) n.flags = (uint8_t)((n.flags & ~flag_bits) | (values->flags & flag_bits));
  if (fields & NG_CF_ACTIVATION_COUNT) n.activation_count = values->activation_count;
  if (fields & NG_CF_PULL_STRENGTH) n.pull_strength = values->pull_strength;
  if (fields & NG_CF_PREFERRED_DISTANCE) n.preferred_distance = values->preferred_distance;
  if (fields & NG_CF_CREATED_AT) n.created_at = values->created_at;
  if (fields & NG_CF_LAST_ACTIVATION) n.last_activation = values->last_activation;
  if (fields & NG_CF_MUTABILITY) n.mutability = values->mutability;
  if (fields & NG_CF_CONFIDENCE) n.confidence = values->confidence;
  if (fields & NG_CF_EVIDENCE_COUNT) n.evidence_count = values->evidence_count;
  if (fields & NG_CF_LAST_UPDATE) n.last_update = values->last_update;
  if (fields & NG_CF_LEARNING_RATE) n.learning_rate = values->learning_rate;
  if (fields & NG_CF_DECAY_RATE) n.decay_rate = values->decay_rate;
  if (fields & NG_CF_SOURCE_ID) n.source_id = values->source_id;
  if (fields & NG_CF_TARGET_VECTOR)
    memcpy(n.target_vector, values->target_vector, sizeof n.target_vector);

  /* An unchanged type needs no mask or duplicate check: tightened CDNA
   * limits apply to later writes, not to what a record already holds. A
   * link made bidirectional may now duplicate the link the other way. */
  uint32_t check = fields;
  if (n.connection_type == old->connection_type) check &= ~(uint32_t)NG_CF_TYPE;
  bool made_bidir = (n.flags & ~old->flags) & NG_CONN_BIDIRECTIONAL;
  st = check_fields(rt, fn, &n, check);
  if (st == NG_OK && ((check & NG_CF_TYPE) || made_bidir)) {
    ng_id dup =
        conflicting_link(cs, n.token_a_id, n.token_b_id, n.connection_type, n.flags, id);
    if (dup) st = link_exists(rt, fn, dup, n.token_a_id, n.token_b_id, n.connection_type);
  }
  if (st == NG_OK) {
    ngi_txn_log_conn_rec(rt, s);
    cs->recs[s] = n;
    if (NGI_EV_ON(rt)) ngi_ev_conn(rt, NG_EV_LINK_UPDATE, id, &n, fields);
  }
  ngi_write_unlock(rt);
  return st;
}

/* Guarantees: the learning rule (see ng_connection_activate and friends) applied with the runtime's
 * clock under the write lock, *out (may be NULL) the record afterwards. Fails: NG_EINVAL (unknown
 * op), NG_ENOTFOUND, NG_EBUSY; nothing changed. */
ng_status ng_connection_learn(ng_runtime *rt, ng_id id, ng_learn_op op, ng_connection *out) {
  static const char fn[] = "ng_connection_learn";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (ngi_check_id(rt, fn, id) != NG_OK) return NG_EINVAL;
  if (op < NG_LEARN_ACTIVATE || op > NG_LEARN_DECAY)
    return ngi_fail(rt, NG_EINVAL,
                    "%s: op must be NG_LEARN_ACTIVATE..NG_LEARN_DECAY (1..4), got %d", fn, (int)op);
  ng_status st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  uint32_t s = ngi_conns_find_slot(rt->conns, id);
  if (s == NGI_NONE) {
    ngi_write_unlock(rt);
    return conn_not_found(rt, fn, id);
  }
  ngi_txn_log_conn_rec(rt, s);
  ng_connection *r = &rt->conns->recs[s];
  uint32_t now = ngi_now32(rt);
  switch (op) {
  case NG_LEARN_ACTIVATE:
    ng_connection_activate(r, now);
    break;
  case NG_LEARN_SUCCESS:
    ng_connection_update_confidence(r, true, now);
    break;
  case NG_LEARN_FAILURE:
    ng_connection_update_confidence(r, false, now);
    break;
  case NG_LEARN_DECAY:
    (void)ng_connection_apply_decay(r, now);
    break;
  }
  if (NGI_EV_ON(rt)) ngi_ev_conn(rt, NG_EV_LINK_UPDATE, id, r, 0);
  if (out) *out = *r;
  ngi_write_unlock(rt);
  return NG_OK;
}

/* Removes the record and its two adjacency links; never allocates.
 * Fails: NG_ENOTFOUND, NG_EBUSY. */
ng_status ng_connection_delete(ng_runtime *rt, ng_id id) {
  static const char fn[] = "ng_connection_delete";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  ng_status st = ngi_check_id(rt, fn, id);
  if (st != NG_OK) return st;
  st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  uint32_t s = ngi_conns_find_slot(rt->conns, id);
  if (s != NGI_NONE) ngi_conns_remove_slot(rt, rt->conns, s);
  ngi_write_unlock(rt);
  if (s == NGI_NONE) return conn_not_found(rt, fn, id);
  return NG_OK;
}

size_t ng_connection_count(ng_runtime *rt) {
  if (!rt) return 0;
  ngi_read_lock(rt);
  size_t n = rt->conns->live;
  ngi_read_unlock(rt);
  return n;
}

/* Live ids in ascending order, skipping `offset` of them: stable pages,
 * since new ids are always larger. ids may be NULL only when limit is 0. */
ng_status ng_connection_list(ng_runtime *rt, size_t offset, size_t limit, ng_id *ids,
                             size_t *n_out) {
  static const char fn[] = "ng_connection_list";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!n_out) return ngi_fail(rt, NG_EINVAL, "%s: n_out must not be NULL", fn);
  if (!ids && limit > 0) return ngi_fail(rt, NG_EINVAL, "%s: ids must not be NULL", fn);
  ngi_read_lock(rt);
  const ngi_conns *cs = rt->conns;
  size_t n = 0, seen = 0;
  for (size_t i = 0; i < cs->len && n < limit; i++) {
    if (cs->recs[i].token_a_id == 0) continue;
    if (seen++ < offset) continue;
    ids[n++] = cs->meta[i].id;
  }
  ngi_read_unlock(rt);
  *n_out = n;
  return NG_OK;
}

/* Cursor step: the smallest live id > after, found by binary search over
 * the sorted slot ids. NG_ENOTFOUND marks the end; it is recorded like every
 * other failure (as ng_token_next does), so ng_last_error never shows an
 * older, unrelated message after it. */
ng_status ng_connection_next(ng_runtime *rt, ng_id after, ng_id *next_id) {
  static const char fn[] = "ng_connection_next";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!next_id) return ngi_fail(rt, NG_EINVAL, "%s: next_id must not be NULL", fn);
  ngi_read_lock(rt);
  const ngi_conns *cs = rt->conns;
  /* first slot whose id > after (meta ids are sorted, tombstones included) */
  size_t lo = 0, hi = cs->len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cs->meta[mid].id <= after)
      lo = mid + 1;
    else
      hi = mid;
  }
  while (lo < cs->len && cs->recs[lo].token_a_id == 0)
    lo++;
  ng_id id = lo < cs->len ? cs->meta[lo].id : 0;
  ngi_read_unlock(rt);
  if (id == 0)
    return ngi_fail(rt, NG_ENOTFOUND, "%s: no connection after %llu", fn,
                    (unsigned long long)after);
  *next_id = id;
  return NG_OK;
}

/* Calls fn on a copy of each live record in ascending id order, under the
 * read lock (so a write from fn fails with NG_EBUSY and cannot disturb the
 * walk). Stops early when fn returns false. */
ng_status ng_connection_each(ng_runtime *rt, ng_connection_fn fn, void *ud) {
  static const char name[] = "ng_connection_each";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", name);
  if (!fn) return ngi_fail(rt, NG_EINVAL, "%s: fn must not be NULL", name);
  ng_status st = ngi_read_lock_cb(rt, name);
  if (st != NG_OK) return st;
  const ngi_conns *cs = rt->conns;
  for (size_t i = 0; i < cs->len; i++) {
    if (cs->recs[i].token_a_id == 0) continue;
    ng_connection copy = cs->recs[i];
    if (!fn(&copy, cs->meta[i].id, ud)) break;
  }
  ngi_read_unlock(rt);
  return NG_OK;
}

/* The id of (from, to, type) by a walk of from's out-list, then of to's for
 * a bidirectional link stored the other way (conflicting_link with no flags
 * of its own). NG_ENOTFOUND for no such link (including an undefined type or
 * unknown token). */
ng_status ng_connection_find(ng_runtime *rt, ng_id from, ng_id to, unsigned type, ng_id *out_id) {
  static const char fn[] = "ng_connection_find";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!out_id) return ngi_fail(rt, NG_EINVAL, "%s: out_id must not be NULL", fn);
  ng_id id = 0;
  if (type <= 0xAF) {
    ngi_read_lock(rt);
    /* Endpoints must be the live tokens named (a stale id finds nothing). */
    if (ngi_token_lookup(&rt->tokens, from) && ngi_token_lookup(&rt->tokens, to))
      id = conflicting_link(rt->conns, NG_TOKEN_SLOT(from), NG_TOKEN_SLOT(to), type, 0, 0);
    ngi_read_unlock(rt);
  }
  if (id == 0)
    return ngi_fail(rt, NG_ENOTFOUND, "%s: no connection %llu -> %llu of type 0x%X", fn,
                    (unsigned long long)from, (unsigned long long)to, type);
  *out_id = id;
  return NG_OK;
}

/* The links of token slot `tok` in direction dir of `type` and `category`
 * (NG_ANY: any), in ascending id order (ngi_link_cursor): the first cap of
 * them into conns and others (each may be NULL), the count returned. Caller
 * holds the read lock. */
static size_t walk_links(ng_runtime *rt, uint32_t tok, ng_direction dir, int type, int category,
                         ng_id *conns, ng_id *others, size_t cap) {
  ngi_conns *cs = rt->conns;
  ngi_link_cursor k;
  ngi_links_begin(cs, tok, &k);
  size_t n = 0;
  uint32_t take, other;
  while ((take = ngi_links_next(cs, &k, dir, &other)) != NGI_NONE) {
    const ng_connection *r = &cs->recs[take];
    if (type != NG_ANY && r->connection_type != type) continue;
    if (category != NG_ANY && (r->connection_type >> 4) != category) continue;
    if (n < cap) {
      if (conns) conns[n] = cs->meta[take].id;
      if (others) others[n] = ngi_token_id_of(&rt->tokens, other);
    }
    n++;
  }
  return n;
}

/* Checks shared by ng_token_connections and ng_token_links, then the walk
 * under the read lock. Fails: NG_EINVAL, NG_ENOTFOUND (no such token). */
static ng_status token_links(ng_runtime *rt, const char *fn, ng_id id, ng_direction dir, int type,
                             int category, ng_id *conns, ng_id *others, size_t cap,
                             size_t *n_out) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (dir != NG_OUT && dir != NG_IN && dir != NG_BOTH)
    return ngi_fail(rt, NG_EINVAL, "%s: direction must be NG_OUT, NG_IN or NG_BOTH, got %d", fn,
                    (int)dir);
  if (type != NG_ANY && (type < 0 || type >= NG_CONN_TYPES))
    return ngi_fail(rt, NG_EINVAL, "%s: type must be 0..%d or NG_ANY, got %d", fn,
                    NG_CONN_TYPES - 1, type);
  if (category != NG_ANY && (category < 0 || category >= NG_CONN_CATEGORIES))
    return ngi_fail(rt, NG_EINVAL, "%s: category must be 0..%d or NG_ANY, got %d", fn,
                    NG_CONN_CATEGORIES - 1, category);
  if (!n_out) return ngi_fail(rt, NG_EINVAL, "%s: n_out must not be NULL", fn);
  if (!conns && !others && cap > 0)
    return ngi_fail(rt, NG_EINVAL, "%s: ids must not be NULL", fn);
  ng_status st = ngi_check_id(rt, fn, id);
  if (st != NG_OK) return st;
  ngi_read_lock(rt);
  if (!ngi_token_lookup(&rt->tokens, id)) {
    ngi_read_unlock(rt);
    return ngi_fail(rt, NG_ENOTFOUND, "%s: token %llu not found", fn, (unsigned long long)id);
  }
  size_t n = walk_links(rt, NG_TOKEN_SLOT(id), dir, type, category, conns, others, cap);
  ngi_read_unlock(rt);
  *n_out = n;
  return NG_OK;
}

ng_status ng_token_connections(ng_runtime *rt, ng_id id, ng_direction dir, ng_id *ids, size_t cap,
                               size_t *n_out) {
  return token_links(rt, "ng_token_connections", id, dir, NG_ANY, NG_ANY, ids, NULL, cap, n_out);
}

ng_status ng_token_links(ng_runtime *rt, ng_id id, const ng_link_filter *f, ng_id *conns,
                         ng_id *others, size_t cap, size_t *n_out) {
  static const ng_link_filter all = {NG_BOTH, NG_ANY, NG_ANY};
  if (!f) f = &all;
  return token_links(rt, "ng_token_links", id, f->dir, f->type, f->category, conns, others, cap,
                     n_out);
}

/* The runtime: creation, release and its CDNA (the services it uses are in base.c). */
#include "internal.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- lifecycle ------------------------------------------------------------ */

/* Free every part of a runtime that exists (parts may be missing when
 * ng_runtime_new failed half way), then the lock and the runtime itself. */
static void runtime_destroy(ng_runtime *rt, int lock_ready) {
  ngi_journal_free(rt); /* synced and closed before the store goes */
  for (int s = 0; s < NG_SPACES; s++)
    if (rt->grids[s]) ngi_grid_destroy(rt, rt->grids[s]);
  if (rt->conns) ngi_conns_destroy(rt, rt->conns);
  ngi_graph_free(rt, atomic_load(&rt->graph));
  ngi_tokens_destroy(rt, &rt->tokens);
  ngi_txn_free(rt);
  if (lock_ready) {
    ngi_bgsave_end(rt);
    pthread_mutex_destroy(&rt->bg_lock);
    ngi_events_free(rt);
    pthread_rwlock_destroy(&rt->lock);
  }
  /* Forget this thread's error tag so a later runtime at the same address
   * does not inherit it. */
  ngi_forget_errors(rt);
  ng_alloc_fn alloc = rt->alloc;
  void *ud = rt->alloc_ud;
  alloc(ud, rt, sizeof *rt, 0);
}

/* needs: out; cfg may be NULL (defaults).
 * guarantees: *out is a runtime with one reference, an empty store and the
 * configured (or profile's) CDNA.
 * fails: NG_EINVAL for an unknown profile or an invalid cfg->cdna (reason in
 * ng_last_error(NULL)), NG_ENOMEM; *out is then NULL and nothing is leaked. */
ng_status ng_runtime_new(const ng_config *cfg, ng_runtime **out) {
  static const ng_config defaults;
  if (!out) return ngi_fail(NULL, NG_EINVAL, "ng_runtime_new: out must not be NULL");
  *out = NULL;
  if (!cfg) cfg = &defaults;

  ng_cdna cdna;
  if (cfg->cdna) {
    cdna = *cfg->cdna;
  } else if (ng_cdna_init(&cdna, cfg->profile, ngi_clock_now(cfg->clock, cfg->clock_ud)) != NG_OK) {
    return ngi_fail(NULL, NG_EINVAL, "ng_runtime_new: unknown profile %u", (unsigned)cfg->profile);
  }
  bool scaled = false;
  for (int s = 0; s < NG_SPACES; s++)
    if (cfg->scales[s] != 0.0f) {
      cdna.dimension_scales[s] = cfg->scales[s];
      scaled = true;
    }
  if (scaled) cdna.checksum = ng_cdna_checksum(&cdna);
  char why[160];
  if (ng_cdna_validate(&cdna, why, sizeof why) != NG_OK)
    return ngi_fail(NULL, NG_EINVAL, "ng_runtime_new: invalid %s: %s",
                    scaled ? "scales" : "cdna", why);

  ng_alloc_fn alloc = cfg->alloc ? cfg->alloc : ngi_default_alloc;
  ng_runtime *rt = alloc(cfg->alloc_ud, NULL, 0, sizeof *rt);
  if (!rt) return ngi_fail(NULL, NG_ENOMEM, "ng_runtime_new: out of memory");
  memset(rt, 0, sizeof *rt);
  rt->alloc = alloc;
  rt->alloc_ud = cfg->alloc_ud;
  rt->clock = cfg->clock;
  rt->clock_ud = cfg->clock_ud;
  rt->progress = cfg->progress;
  rt->progress_ud = cfg->progress_ud;
  atomic_init(&rt->refs, 1);
  atomic_init(&rt->bytes_in_use, sizeof *rt);
  atomic_init(&rt->bytes_peak, sizeof *rt);
  atomic_init(&rt->wseq, 0u);
  rt->cdna = cdna;
  ngi_units_of(&cdna, rt->units);
  ngi_metrics_sync(&rt->metrics, &cdna);

  if (ngi_lock_init(&rt->lock) != 0) {
    runtime_destroy(rt, 0);
    return ngi_fail(NULL, NG_ENOMEM, "ng_runtime_new: cannot create the lock");
  }
  if (ngi_events_init(rt) != 0) {
    pthread_rwlock_destroy(&rt->lock);
    runtime_destroy(rt, 0);
    return ngi_fail(NULL, NG_ENOMEM, "ng_runtime_new: cannot create the feed's lock");
  }
  if (pthread_mutex_init(&rt->bg_lock, NULL) != 0) {
    ngi_events_free(rt);
    pthread_rwlock_destroy(&rt->lock);
    runtime_destroy(rt, 0);
    return ngi_fail(NULL, NG_ENOMEM, "ng_runtime_new: cannot create the saves' lock");
  }
  ng_status st = ngi_tokens_init(rt, &rt->tokens, cfg->initial_tokens);
  if (st == NG_OK) st = ngi_conns_new(rt, cfg->initial_connections, &rt->conns);
  for (int s = 0; s < NG_SPACES && st == NG_OK; s++)
    st = ngi_grid_new(rt, s, rt->cdna.bucket_sizes[s], &rt->units[s], &rt->grids[s]);
  if (st != NG_OK) {
    runtime_destroy(rt, 1);
    return ngi_fail(NULL, st, "ng_runtime_new: %s", ng_strerror(st));
  }
  *out = rt;
  return NG_OK;
}

ng_runtime *ng_runtime_retain(ng_runtime *rt) {
  if (rt) atomic_fetch_add(&rt->refs, 1);
  return rt;
}

void ng_runtime_release(ng_runtime *rt) {
  if (!rt) return;
  if (atomic_fetch_sub(&rt->refs, 1) != 1) return;
  /* A transaction this thread left open is rolled back, and said so. */
  ngi_txn_abandon(rt, "ng_runtime_release");
  runtime_destroy(rt, 1);
}

ng_status ng_runtime_stats(ng_runtime *rt, ng_stats *out) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "ng_runtime_stats: runtime must not be NULL");
  if (!out) return ngi_fail(rt, NG_EINVAL, "ng_runtime_stats: out must not be NULL");
  ngi_read_lock(rt);
  out->tokens = rt->tokens.live;
  out->connections = ngi_conns_count(rt->conns);
  out->bytes_in_use = atomic_load(&rt->bytes_in_use);
  out->bytes_peak = atomic_load(&rt->bytes_peak);
  const ngi_idgen *ti = &rt->tokens.ids, *ci = ngi_conns_ids(rt->conns);
  if (ngi_idgen_peek(ti, &out->next_token_id) != NG_OK) out->next_token_id = 0;
  if (ngi_idgen_peek(ci, &out->next_connection_id) != NG_OK) out->next_connection_id = 0;
  out->token_slots_free = ngi_idgen_free_count(ti);
  out->token_slots_retired = (size_t)ti->retired;
  out->connection_slots_free = ngi_idgen_free_count(ci);
  out->connection_slots_retired = (size_t)ci->retired;
  for (int s = 0; s < NG_SPACES; s++)
    out->placed[s] = rt->tokens.nplaced[s];
  ngi_stats_extend(rt, out);
  ngi_read_unlock(rt);
  return NG_OK;
}

/* ---- the runtime's CDNA --------------------------------------------------- */

ng_status ng_cdna_get(ng_runtime *rt, ng_cdna *out) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "ng_cdna_get: runtime must not be NULL");
  if (!out) return ngi_fail(rt, NG_EINVAL, "ng_cdna_get: out must not be NULL");
  ngi_read_lock(rt);
  *out = rt->cdna;
  ngi_read_unlock(rt);
  return NG_OK;
}

void ngi_units_of(const ng_cdna *c, ngi_unit units[NG_SPACES]) {
  for (int s = 0; s < NG_SPACES; s++)
    ngi_unit_make(&units[s], ng_space_scale(s), c->dimension_scales[s]);
}

void ngi_units_sync(ng_runtime *rt) {
  ngi_unit units[NG_SPACES];
  ngi_units_of(&rt->cdna, units);
  bool changed = false;
  for (int s = 0; s < NG_SPACES; s++)
    changed |= units[s].base != rt->units[s].base || units[s].scale != rt->units[s].scale;
  memcpy(rt->units, units, sizeof units);
  if (changed) ngi_zones_rescaled(rt);
}

/* needs: the write lock; rescaled the spaces whose unit changes from
 * rt->units to units. guarantees: NG_OK when every coordinate of every token
 * placed in those spaces, decoded in the old unit, fits the new one; else
 * NG_EINVAL naming the first such token (ascending ids) and space. Reads only. */
static ng_status rescale_check(ng_runtime *rt, unsigned rescaled, const ngi_unit *units,
                               const char *func) {
  static const char axes[] = "xyz";
  const ngi_token_table *t = &rt->tokens;
  for (size_t i = 0; i < t->len; i++) {
    const ng_token *tok = ngi_tok_at(t, i);
    uint32_t local = NG_ID_LOCAL(tok->id);
    if (local == 0) continue;
    unsigned sp = ngi_placed(t, local) & rescaled;
    for (int s = 0; sp; s++, sp >>= 1) {
      if (!(sp & 1u)) continue;
      for (int a = 0; a < 3; a++) {
        double v = ngi_unit_decode(&rt->units[s], tok->coords[s][a]);
        int32_t raw;
        if (ngi_unit_encode(&units[s], v, -32768, 32767, &raw) != NGI_ENC_OK)
          return ngi_fail(rt, NG_EINVAL,
                          "%s: token %llu does not fit the new scale of %s: %c %.10g must be "
                          "within %.10g..%.10g",
                          func, (unsigned long long)ngi_tokens_id_at(t, i), ng_space_name(s),
                          axes[a], v, ngi_unit_decode(&units[s], -32768),
                          ngi_unit_decode(&units[s], 32767));
      }
    }
  }
  return NG_OK;
}

/* needs: the write lock; rescale_check passed. guarantees: every coordinate
 * of every token placed in a rescaled space re-encoded in the new unit. */
static void rescale_apply(ng_runtime *rt, unsigned rescaled, const ngi_unit *units) {
  ngi_token_table *t = &rt->tokens;
  for (size_t i = 0; i < t->len; i++) {
    const ng_token *tok = ngi_tok_at(t, i);
    uint32_t local = NG_ID_LOCAL(tok->id);
    if (local == 0 || !(ngi_placed(t, local) & rescaled)) continue;
    ng_token next = *tok;
    for (int s = 0; s < NG_SPACES; s++) {
      if (!((ngi_placed(t, local) & rescaled) >> s & 1u)) continue;
      for (int a = 0; a < 3; a++) {
        int32_t raw;
        (void)ngi_unit_encode(&units[s], ngi_unit_decode(&rt->units[s], tok->coords[s][a]),
                              -32768, 32767, &raw);
        next.coords[s][a] = (int16_t)raw;
      }
    }
    ngi_tok_store(t, i, &next);
  }
}

/* needs: the write lock; `next` the wanted CDNA.
 * guarantees: created_at kept, modified_at = now (never before created_at),
 * checksum recomputed; the coordinates of the spaces whose dimension scale
 * changed re-encoded; the grids of spaces whose bucket size or scale changed
 * are rebuilt, all of them built before any is swapped in.
 * fails: NG_EINVAL (validation, a coordinate that does not fit a new scale),
 * NG_ENOMEM; the runtime is then unchanged. */
static ng_status cdna_apply(ng_runtime *rt, ng_cdna *next, const char *func) {
  next->created_at = rt->cdna.created_at;
  uint64_t now = ngi_now(rt);
  next->modified_at = now < next->created_at ? next->created_at : now;
  next->checksum = ng_cdna_checksum(next);
  char why[160];
  if (ng_cdna_validate(next, why, sizeof why) != NG_OK)
    return ngi_fail(rt, NG_EINVAL, "%s: %s", func, why);
  ngi_unit units[NG_SPACES];
  ngi_units_of(next, units);
  unsigned rescaled = 0;
  for (int s = 0; s < NG_SPACES; s++)
    if (memcmp(&next->dimension_scales[s], &rt->cdna.dimension_scales[s], sizeof(float)) != 0)
      rescaled |= 1u << s;
  if (rescaled) {
    ng_status st = rescale_check(rt, rescaled, units, func);
    if (st != NG_OK) return st;
  }

  /* A transaction logs the CDNA and every record the rescale rewrites. */
  ng_status rst = ngi_txn_reserve(
      rt, func, ngi_txn_size_cdna() + (rescaled ? rt->tokens.len * ngi_txn_size_tok_rec() : 0));
  if (rst != NG_OK) return rst;
  ngi_grid *fresh[NG_SPACES] = {0};
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(rescaled >> s & 1u) &&
        memcmp(&next->bucket_sizes[s], &rt->cdna.bucket_sizes[s], sizeof(float)) == 0)
      continue;
    /* The fresh index indexes every placed token itself, at its first query. */
    ng_status st = ngi_grid_new(rt, s, next->bucket_sizes[s], &units[s], &fresh[s]);
    if (st != NG_OK) {
      for (int k = 0; k < s; k++)
        if (fresh[k]) ngi_grid_destroy(rt, fresh[k]);
      return ngi_fail(rt, st, "%s: rebuilding the grid of %s: %s", func, ng_space_name(s),
                      ng_strerror(st));
    }
  }
  ngi_grid *replaced[NG_SPACES] = {0};
  for (int s = 0; s < NG_SPACES; s++)
    if (fresh[s]) replaced[s] = rt->grids[s];
  /* A transaction keeps the replaced grids, to put them back on rollback. */
  bool kept = ngi_txn_log_cdna(rt, replaced);
  if (rescaled) rescale_apply(rt, rescaled, units);
  for (int s = 0; s < NG_SPACES; s++) {
    if (!fresh[s]) continue;
    if (!kept) ngi_grid_destroy(rt, rt->grids[s]);
    rt->grids[s] = fresh[s];
  }
  rt->cdna = *next;
  ngi_units_sync(rt);
  if (NGI_EV_ON(rt)) ngi_ev_cdna(rt);
  ngi_metrics_sync(&rt->metrics, next);
  return NG_OK;
}

ng_status ngi_cdna_restore(ng_runtime *rt, const ng_cdna *c) {
  ngi_unit units[NG_SPACES];
  ngi_units_of(c, units);
  unsigned rescaled = 0;
  for (int s = 0; s < NG_SPACES; s++)
    if (memcmp(&c->dimension_scales[s], &rt->cdna.dimension_scales[s], sizeof(float)) != 0)
      rescaled |= 1u << s;
  ngi_grid *fresh[NG_SPACES] = {0};
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(rescaled >> s & 1u) &&
        memcmp(&c->bucket_sizes[s], &rt->cdna.bucket_sizes[s], sizeof(float)) == 0)
      continue;
    if (ngi_grid_new(rt, s, c->bucket_sizes[s], &units[s], &fresh[s]) != NG_OK) {
      for (int k = 0; k < s; k++)
        if (fresh[k]) ngi_grid_destroy(rt, fresh[k]);
      return NG_ENOMEM;
    }
  }
  if (rescaled) rescale_apply(rt, rescaled, units);
  for (int s = 0; s < NG_SPACES; s++) {
    if (!fresh[s]) continue;
    ngi_grid_destroy(rt, rt->grids[s]);
    rt->grids[s] = fresh[s];
  }
  rt->cdna = *c;
  ngi_units_sync(rt);
  ngi_metrics_sync(&rt->metrics, c);
  return NG_OK;
}

ng_status ng_cdna_set(ng_runtime *rt, const ng_cdna *c) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "ng_cdna_set: runtime must not be NULL");
  if (!c) return ngi_fail(rt, NG_EINVAL, "ng_cdna_set: cdna must not be NULL");
  ng_cdna next = *c;
  ng_status st = ngi_write_lock(rt, "ng_cdna_set");
  if (st != NG_OK) return st;
  st = cdna_apply(rt, &next, "ng_cdna_set");
  ngi_write_unlock(rt);
  return st;
}

/* The preset over the current CDNA: what the profile does not define (scales,
 * bucket sizes, limits the caller set) stays; ng_cdna_init + ng_cdna_set is
 * the way back to every default. */
ng_status ng_cdna_set_profile(ng_runtime *rt, uint32_t profile) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "ng_cdna_set_profile: runtime must not be NULL");
  if (!ng_profile_name(profile))
    return ngi_fail(rt, NG_EINVAL, "ng_cdna_set_profile: unknown profile %u", (unsigned)profile);
  ng_status st = ngi_write_lock(rt, "ng_cdna_set_profile");
  if (st != NG_OK) return st;
  ng_cdna next = rt->cdna;
  ngi_cdna_apply_preset(&next, profile);
  st = cdna_apply(rt, &next, "ng_cdna_set_profile");
  ngi_write_unlock(rt);
  return st;
}

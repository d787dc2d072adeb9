/* Shared by the fuzz targets: what a loaded or replayed runtime must satisfy. */
#ifndef NG_FUZZ_EXERCISE_H
#define NG_FUZZ_EXERCISE_H

#include "internal.h"

/* A loaded runtime must be internally consistent: exercise it the way a user
 * would and trap (a crash the fuzzer reports) on any broken invariant. */
static void exercise(ng_runtime *rt) {
  ng_stats st;
  if (ng_runtime_stats(rt, &st) != NG_OK) __builtin_trap();
  size_t tokens = 0;
  for (ng_id id = 0; ng_token_next(rt, id, &id) == NG_OK;) {
    ng_token t;
    if (ng_token_get(rt, id, &t) != NG_OK || NG_ID_LOCAL(t.id) != NG_TOKEN_SLOT(id))
      __builtin_trap();
    if (st.next_token_id != 0 && id >= st.next_token_id) __builtin_trap(); /* 0: none left */
    tokens++;
  }
  if (tokens != st.tokens) __builtin_trap();
  size_t conns = 0;
  for (ng_id id = 0; ng_connection_next(rt, id, &id) == NG_OK;) {
    ng_connection c;
    ng_id from = 0, to = 0, found = 0;
    if (ng_connection_get(rt, id, &c) != NG_OK || ng_connection_ends(rt, id, &from, &to) != NG_OK)
      __builtin_trap();
    if (c.token_a_id != NG_TOKEN_SLOT(from) || c.token_b_id != NG_TOKEN_SLOT(to)) __builtin_trap();
    if (ng_connection_find(rt, from, to, c.connection_type, &found) != NG_OK || found != id)
      __builtin_trap();
    size_t n = 0;
    if (ng_token_connections(rt, from, NG_OUT, NULL, 0, &n) != NG_OK || n == 0) __builtin_trap();
    conns++;
  }
  if (conns != st.connections) __builtin_trap();
  size_t placed[NG_SPACES] = {0};
  for (ng_id id = 0; ng_token_next(rt, id, &id) == NG_OK;) {
    unsigned sp = 0;
    if (ng_token_spaces(rt, id, &sp) != NG_OK || sp > 0xFFu) __builtin_trap();
    for (int s = 0; s < NG_SPACES; s++)
      placed[s] += sp >> s & 1u;
  }
  for (int s = 0; s < NG_SPACES; s++) {
    ng_space_info gi;
    if (ng_grid_info(rt, s, &gi) != NG_OK || gi.count != placed[s] || st.placed[s] != placed[s])
      __builtin_trap();
  }
  float c[3] = {0, 0, 0};
  ng_hits hits = {0};
  if (ng_grid_nearest(rt, NG_L1, c, 4, NULL, &hits) != NG_OK) __builtin_trap();
  ng_hits_free(rt, &hits);
  /* new ids continue after the stored ones; deleting cascades through the
   * restored adjacency */
  ng_id id = 0;
  ng_status s = ng_token_create(rt, NULL, NG_TF_COORDS(NG_L1), &id);
  if (s == NG_OK && id != st.next_token_id) __builtin_trap();
  ng_id first = 0;
  if (ng_token_next(rt, 0, &first) == NG_OK) {
    size_t removed = 0;
    if (ng_token_delete(rt, first, &removed) != NG_OK) __builtin_trap();
    if (ng_connection_count(rt) + removed != st.connections) __builtin_trap();
  }
}

#endif

/* The connection table: records in id order, an id -> slot map, per-token adjacency lists. */
#include "conn_table.h"

#include <stddef.h>
#include <string.h>

/* Compact when tombstones outnumber live records (and are worth the pass). */
#define COMPACT_MIN_DEAD 32

/* ---- hashing -------------------------------------------------------------- */

/* lowbias32 (Wellons): a cheap mixer with good avalanche, so sequential ids
 * spread over the whole table. */
static size_t mix32(uint32_t k) {
  k ^= k >> 16;
  k *= 0x7feb352du;
  k ^= k >> 15;
  k *= 0x846ca68bu;
  k ^= k >> 16;
  return (size_t)k;
}

/* Load factor limit 0.7: n entries fit a table of cap buckets. */
static int fits(size_t n, size_t cap) {
  return n <= cap / 10 * 7 + (cap % 10) * 7 / 10;
}

/* Smallest power-of-two capacity (>= 16) that holds n entries, or 0 on overflow. */
static size_t cap_for(size_t n) {
  size_t cap = 16;
  while (!fits(n, cap)) {
    if (cap > SIZE_MAX / 4) return 0;
    cap *= 2;
  }
  return cap;
}

/* The same for a 64-bit id: its two halves folded first. */
static size_t mix64(ng_id k) {
  return mix32((uint32_t)k ^ (uint32_t)(k >> 32) * 0x9E3779B1u);
}

/* ---- id -> slot map ------------------------------------------------------- */

uint32_t ngi_conns_find_slot(const ngi_conns *c, ng_id id) {
  if (c->idmap_cap == 0 || id == 0) return NGI_NONE;
  size_t mask = c->idmap_cap - 1;
  for (size_t i = mix64(id) & mask;; i = (i + 1) & mask) {
    if (c->idmap[i].id == id) return c->idmap[i].slot;
    if (c->idmap[i].id == 0) return NGI_NONE;
  }
}

/* Insert or overwrite. Needs room (idmap_reserve). */
static void idmap_put(ngi_conns *c, ng_id id, uint32_t slot) {
  size_t mask = c->idmap_cap - 1;
  size_t i = mix64(id) & mask;
  while (c->idmap[i].id != 0 && c->idmap[i].id != id)
    i = (i + 1) & mask;
  c->idmap[i].id = id;
  c->idmap[i].slot = slot;
}

/* Backward-shift deletion, the one for both maps: empty entry i of a
 * linear-probing table of cap (a power of two) entries of `size` bytes and
 * move later entries of its probe run back, so no tombstones are needed.
 * home(entry) is an entry's home slot (before masking), SIZE_MAX for an empty
 * entry. Never allocates. */
static void probe_del(void *table, size_t cap, size_t size, size_t i,
                      size_t (*home_of)(const void *entry)) {
  unsigned char *tab = table;
  size_t mask = cap - 1;
  for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
    size_t home = home_of(tab + j * size);
    if (home == SIZE_MAX) break;
    /* entry j may fill the hole at i unless its home lies cyclically in (i, j] */
    if (((j - (home & mask)) & mask) >= ((j - i) & mask)) {
      memcpy(tab + i * size, tab + j * size, size);
      i = j;
    }
  }
  memset(tab + i * size, 0, size);
}

static size_t idmap_home(const void *entry) {
  const idmap_entry *e = entry;
  return e->id ? mix64(e->id) : SIZE_MAX;
}

/* Remove `id` if present. Never allocates. */
static void idmap_del(ngi_conns *c, ng_id id) {
  if (c->idmap_cap == 0) return;
  size_t mask = c->idmap_cap - 1;
  size_t i = mix64(id) & mask;
  while (c->idmap[i].id != id) {
    if (c->idmap[i].id == 0) return;
    i = (i + 1) & mask;
  }
  probe_del(c->idmap, c->idmap_cap, sizeof *c->idmap, i, idmap_home);
}

/* Make room for n entries. Fails with NG_ENOMEM, map unchanged. */
static ng_status idmap_reserve(ng_runtime *rt, ngi_conns *c, size_t n) {
  if (c->idmap_cap && fits(n, c->idmap_cap)) return NG_OK;
  size_t cap = cap_for(n);
  if (cap == 0) return NG_ENOMEM;
  idmap_entry *t = ngi_alloc_array(rt, cap, sizeof *t);
  if (!t) return NG_ENOMEM;
  ngi_advise_bulk(t, cap * sizeof *t);
  memset(t, 0, cap * sizeof *t);
  idmap_entry *old = c->idmap;
  size_t old_cap = c->idmap_cap;
  c->idmap = t;
  c->idmap_cap = cap;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].id) idmap_put(c, old[i].id, old[i].slot);
  if (old) ngi_free(rt, old, old_cap * sizeof *old);
  return NG_OK;
}

/* ---- token -> adjacency map ----------------------------------------------- */

adj_entry *ngi_conns_find_adj(ngi_conns *c, uint32_t token) {
  if (c->adj_cap == 0 || token == 0) return NULL;
  size_t mask = c->adj_cap - 1;
  for (size_t i = mix32(token) & mask;; i = (i + 1) & mask) {
    if (c->adj[i].token == token) return &c->adj[i];
    if (c->adj[i].token == 0) return NULL;
  }
}

/* The entry of `token`, created empty if absent. Needs room (adj_reserve). */
static adj_entry *adj_get(ngi_conns *c, uint32_t token) {
  size_t mask = c->adj_cap - 1;
  size_t i = mix32(token) & mask;
  while (c->adj[i].token != 0 && c->adj[i].token != token)
    i = (i + 1) & mask;
  if (c->adj[i].token == 0) {
    adj_entry e = {token, 0, 0, NGI_NONE, NGI_NONE, NGI_NONE, NGI_NONE};
    c->adj[i] = e;
    c->adj_n++;
  }
  return &c->adj[i];
}

static size_t adj_home(const void *entry) {
  const adj_entry *e = entry;
  return e->token ? mix32(e->token) : SIZE_MAX;
}

/* Remove the entry of `token`. Invalidates every adj_entry pointer. Never
 * allocates. */
static void adj_del(ngi_conns *c, uint32_t token) {
  if (c->adj_cap == 0) return;
  size_t mask = c->adj_cap - 1;
  size_t i = mix32(token) & mask;
  while (c->adj[i].token != token) {
    if (c->adj[i].token == 0) return;
    i = (i + 1) & mask;
  }
  probe_del(c->adj, c->adj_cap, sizeof *c->adj, i, adj_home);
  c->adj_n--;
}

/* Make room for n entries. Fails with NG_ENOMEM, map unchanged. */
static ng_status adj_reserve(ng_runtime *rt, ngi_conns *c, size_t n) {
  if (c->adj_cap && fits(n, c->adj_cap)) return NG_OK;
  size_t cap = cap_for(n);
  if (cap == 0) return NG_ENOMEM;
  adj_entry *t = ngi_alloc_array(rt, cap, sizeof *t);
  if (!t) return NG_ENOMEM;
  ngi_advise_bulk(t, cap * sizeof *t);
  memset(t, 0, cap * sizeof *t);
  adj_entry *old = c->adj;
  size_t old_cap = c->adj_cap;
  c->adj = t;
  c->adj_cap = cap;
  c->adj_n = 0;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].token) *adj_get(c, old[i].token) = old[i];
  if (old) ngi_free(rt, old, old_cap * sizeof *old);
  return NG_OK;
}

/* ---- records -------------------------------------------------------------- */

/* Grow recs and meta so one more slot fits. NG_ENOMEM leaves contents as
 * they were (a grown block with the old contents is not a change). */
static ng_status slots_reserve(ng_runtime *rt, ngi_conns *c) {
  if (c->len == (size_t)NGI_NONE) return NG_ENOMEM; /* slots must fit uint32_t */
  if (c->len == c->rec_cap) {
    size_t cap = c->rec_cap ? c->rec_cap * 2 : 16;
    ng_connection *r = ngi_realloc_array(rt, c->recs, c->rec_cap, cap, sizeof *r);
    if (!r) return NG_ENOMEM;
    ngi_advise_bulk(r, cap * sizeof *r); /* huge pages: see ngi_conns_new */
    c->recs = r;
    c->rec_cap = cap;
  }
  if (c->len == c->meta_cap) {
    size_t cap = c->meta_cap ? c->meta_cap * 2 : 16;
    conn_meta *m = ngi_realloc_array(rt, c->meta, c->meta_cap, cap, sizeof *m);
    if (!m) return NG_ENOMEM;
    ngi_advise_bulk(m, cap * sizeof *m);
    c->meta = m;
    c->meta_cap = cap;
  }
  return NG_OK;
}

/* Translate a link from an old slot to its slot after compaction (the
 * id -> slot map already holds the new slots; old meta ids are intact). */
static uint32_t relink(const ngi_conns *c, uint32_t old) {
  return old == NGI_NONE ? NGI_NONE : ngi_conns_find_slot(c, c->meta[old].id);
}

/* Squeeze tombstones out of recs/meta, keeping the order: first map every
 * id to its new slot, then rewrite every link through that map while the
 * old slots still hold their ids, then move. Never allocates. */
static void compact(ngi_conns *c) {
  size_t w = 0;
  for (size_t r = 0; r < c->len; r++)
    if (c->recs[r].token_a_id != 0) idmap_put(c, c->meta[r].id, (uint32_t)w++);
  for (size_t r = 0; r < c->len; r++) {
    if (c->recs[r].token_a_id == 0) continue;
    conn_meta *m = &c->meta[r];
    m->out_prev = relink(c, m->out_prev);
    m->out_next = relink(c, m->out_next);
    m->in_prev = relink(c, m->in_prev);
    m->in_next = relink(c, m->in_next);
  }
  for (size_t k = 0; k < c->adj_cap; k++) {
    adj_entry *e = &c->adj[k];
    if (e->token == 0) continue;
    e->out_head = relink(c, e->out_head);
    e->out_tail = relink(c, e->out_tail);
    e->in_head = relink(c, e->in_head);
    e->in_tail = relink(c, e->in_tail);
  }
  w = 0;
  for (size_t r = 0; r < c->len; r++) {
    if (c->recs[r].token_a_id == 0) continue;
    if (w != r) {
      c->recs[w] = c->recs[r];
      c->meta[w] = c->meta[r];
    }
    w++;
  }
  c->len = w;
}

/* Unlink and tombstone the live connection at `slot`; drops the adjacency
 * entries that become empty. Never allocates. */
void ngi_conns_remove_slot(ng_runtime *rt, ngi_conns *c, uint32_t slot) {
  ngi_txn_log_conn_remove(rt, slot);
  if (NGI_EV_ON(rt)) ngi_ev_conn(rt, NG_EV_UNLINK, c->meta[slot].id, &c->recs[slot], 0);
  ng_id id = c->meta[slot].id;
  uint32_t from = c->recs[slot].token_a_id, to = c->recs[slot].token_b_id;
  conn_meta m = c->meta[slot];

  adj_entry *e = ngi_conns_find_adj(c, from);
  if (m.out_prev != NGI_NONE)
    c->meta[m.out_prev].out_next = m.out_next;
  else
    e->out_head = m.out_next;
  if (m.out_next != NGI_NONE)
    c->meta[m.out_next].out_prev = m.out_prev;
  else
    e->out_tail = m.out_prev;
  e->out_n--;

  e = ngi_conns_find_adj(c, to);
  if (m.in_prev != NGI_NONE)
    c->meta[m.in_prev].in_next = m.in_next;
  else
    e->in_head = m.in_next;
  if (m.in_next != NGI_NONE)
    c->meta[m.in_next].in_prev = m.in_prev;
  else
    e->in_tail = m.in_prev;
  e->in_n--;

  e = ngi_conns_find_adj(c, from);
  if (e && e->out_n == 0 && e->in_n == 0) adj_del(c, from);
  e = ngi_conns_find_adj(c, to);
  if (e && e->out_n == 0 && e->in_n == 0) adj_del(c, to);

  idmap_del(c, id);
  ngi_idgen_release(rt, &c->ids, id);
  memset(&c->recs[slot], 0, sizeof c->recs[slot]);
  /* tombstones keep their id: meta stays sorted */
  conn_meta dead = {id, NGI_NONE, NGI_NONE, NGI_NONE, NGI_NONE};
  c->meta[slot] = dead;
  c->live--;

  /* trailing tombstones can simply be dropped */
  while (c->len > 0 && c->recs[c->len - 1].token_a_id == 0)
    c->len--;
  /* A transaction's removals are undone slot by slot: compaction waits. */
  if (!ngi_txn_active(&rt->txn)) ngi_conns_tidy(c);
}

void ngi_conns_tidy(ngi_conns *c) {
  size_t ndead = c->len - c->live;
  if (ndead >= COMPACT_MIN_DEAD && ndead > c->live) compact(c);
}

/* Drop the adjacency entry of `token` if it lists nothing any more. */
static void adj_drop_empty(ngi_conns *c, uint32_t token) {
  adj_entry *e = ngi_conns_find_adj(c, token);
  if (e && e->out_n == 0 && e->in_n == 0) adj_del(c, token);
}

void ngi_conns_unappend(ngi_conns *c, uint32_t slot, const ng_connection *old,
                        const conn_meta *old_meta) {
  uint32_t from = c->recs[slot].token_a_id, to = c->recs[slot].token_b_id;
  conn_meta m = c->meta[slot];
  adj_entry *e = ngi_conns_find_adj(c, from);
  if (m.out_prev != NGI_NONE)
    c->meta[m.out_prev].out_next = NGI_NONE;
  else
    e->out_head = NGI_NONE;
  e->out_tail = m.out_prev;
  e->out_n--;
  e = ngi_conns_find_adj(c, to);
  if (m.in_prev != NGI_NONE)
    c->meta[m.in_prev].in_next = NGI_NONE;
  else
    e->in_head = NGI_NONE;
  e->in_tail = m.in_prev;
  e->in_n--;
  /* The reverse of the append's inserts, so the maps' layout comes back. */
  adj_drop_empty(c, to);
  adj_drop_empty(c, from);
  idmap_del(c, m.id);
  c->live--;
  c->len = slot;
  if (old) {
    c->recs[slot] = *old;
    c->meta[slot] = *old_meta;
  }
}

void ngi_conns_unremove(ngi_conns *c, uint32_t slot, uint32_t old_len, const ng_connection *rec,
                        const conn_meta *meta) {
  c->recs[slot] = *rec;
  c->meta[slot] = *meta;
  c->len = old_len;
  c->live++;
  idmap_put(c, meta->id, slot);
  /* adj_get writes only an empty bucket: e stays valid across the second. */
  adj_entry *e = adj_get(c, rec->token_a_id);
  if (meta->out_prev != NGI_NONE)
    c->meta[meta->out_prev].out_next = slot;
  else
    e->out_head = slot;
  if (meta->out_next != NGI_NONE)
    c->meta[meta->out_next].out_prev = slot;
  else
    e->out_tail = slot;
  e->out_n++;
  e = adj_get(c, rec->token_b_id);
  if (meta->in_prev != NGI_NONE)
    c->meta[meta->in_prev].in_next = slot;
  else
    e->in_head = slot;
  if (meta->in_next != NGI_NONE)
    c->meta[meta->in_next].in_prev = slot;
  else
    e->in_tail = slot;
  e->in_n++;
}

/* The connection (from, to, type) other than `except`, or 0. Walks from's
 * out-list only, so it costs at most the degree limit. */
ng_id ngi_conns_find_dup(ngi_conns *c, uint32_t from, uint32_t to, unsigned type, ng_id except) {
  adj_entry *e = ngi_conns_find_adj(c, from);
  if (!e) return 0;
  for (uint32_t s = e->out_head; s != NGI_NONE; s = c->meta[s].out_next) {
    const ng_connection *r = &c->recs[s];
    if (r->token_b_id == to && r->connection_type == type && c->meta[s].id != except)
      return c->meta[s].id;
  }
  return 0;
}

/* Thread the live record at `slot` (its meta id set, every later slot
 * empty) into the id map and at the tail of its endpoints' lists, which
 * keeps them in ascending id order. Needs room in both maps; cannot fail. */
static void link_slot(ngi_conns *c, uint32_t slot) {
  const ng_connection *rec = &c->recs[slot];
  idmap_put(c, c->meta[slot].id, slot);

  adj_entry *e = adj_get(c, rec->token_a_id);
  c->meta[slot].out_prev = e->out_tail;
  if (e->out_tail != NGI_NONE)
    c->meta[e->out_tail].out_next = slot;
  else
    e->out_head = slot;
  e->out_tail = slot;
  e->out_n++;

  e = adj_get(c, rec->token_b_id);
  c->meta[slot].in_prev = e->in_tail;
  if (e->in_tail != NGI_NONE)
    c->meta[e->in_tail].in_next = slot;
  else
    e->in_head = slot;
  e->in_tail = slot;
  e->in_n++;
}

/* Room for one append: a slot, an id and (at most) two new adjacency
 * entries. Fails with NG_ENOMEM; what was reserved before the failure stays
 * reserved, which changes no contents. */
ng_status ngi_conns_reserve_append(ng_runtime *rt, ngi_conns *c) {
  if (ngi_txn_before_take(rt, &c->ids) != NG_OK || slots_reserve(rt, c) != NG_OK ||
      idmap_reserve(rt, c, c->live + 1) != NG_OK || adj_reserve(rt, c, c->adj_n + 2) != NG_OK)
    return NG_ENOMEM;
  return NG_OK;
}

/* Store `rec` under `id` (greater than every id stored) in the next slot
 * and link it. Needs room in every array and map; cannot fail. */
void ngi_conns_append(ngi_conns *c, ng_id id, const ng_connection *rec) {
  uint32_t slot = (uint32_t)c->len++;
  c->recs[slot] = *rec;
  conn_meta m = {id, NGI_NONE, NGI_NONE, NGI_NONE, NGI_NONE};
  c->meta[slot] = m;
  c->live++;
  link_slot(c, slot);
}

/* ---- internal interface --------------------------------------------------- */

ng_status ngi_conns_new(ng_runtime *rt, size_t initial, ngi_conns **out) {
  ngi_conns *c = ngi_alloc(rt, sizeof *c);
  if (!c) return NG_ENOMEM;
  memset(c, 0, sizeof *c);
  ngi_idgen_init(&c->ids, NG_CONNECTION_SLOT_BITS, NG_CONNECTION_SLOT_MAX);
  if (initial > 0) {
    c->recs = ngi_alloc_array(rt, initial, sizeof *c->recs);
    c->meta = ngi_alloc_array(rt, initial, sizeof *c->meta);
    /* Huge pages where they are large: fewer TLB misses, and a background save's fork copies
     * one page-table entry per 2 MB instead of 512 (snapshot_bg.c). */
    if (c->recs) ngi_advise_bulk(c->recs, initial * sizeof *c->recs);
    if (c->meta) ngi_advise_bulk(c->meta, initial * sizeof *c->meta);
    if (c->recs) c->rec_cap = initial;
    if (c->meta) c->meta_cap = initial;
    if (!c->recs || !c->meta || idmap_reserve(rt, c, initial) != NG_OK) {
      ngi_conns_destroy(rt, c);
      return NG_ENOMEM;
    }
  }
  *out = c;
  return NG_OK;
}

/* Free every array; the struct keeps its id allocator. */
static void free_arrays(ng_runtime *rt, ngi_conns *c) {
  if (c->recs) ngi_free(rt, c->recs, c->rec_cap * sizeof *c->recs);
  if (c->meta) ngi_free(rt, c->meta, c->meta_cap * sizeof *c->meta);
  if (c->idmap) ngi_free(rt, c->idmap, c->idmap_cap * sizeof *c->idmap);
  if (c->adj) ngi_free(rt, c->adj, c->adj_cap * sizeof *c->adj);
  ngi_idgen ids = c->ids;
  memset(c, 0, sizeof *c);
  c->ids = ids;
}

void ngi_conns_destroy(ng_runtime *rt, ngi_conns *c) {
  if (!c) return;
  free_arrays(rt, c);
  ngi_idgen_free(rt, &c->ids);
  ngi_free(rt, c, sizeof *c);
}

/* Removes the token's out-list, then its in-list, one head at a time (a
 * self-link leaves both at once). Frees nothing, allocates nothing. */
size_t ngi_conns_remove_token(ng_runtime *rt, ngi_conns *c, ng_id id) {
  size_t removed = 0;
  for (;;) {
    /* re-find each time: removals shift adjacency entries and may drop this one */
    adj_entry *e = ngi_conns_find_adj(c, NG_TOKEN_SLOT(id));
    if (!e) break;
    uint32_t slot = e->out_head != NGI_NONE ? e->out_head : e->in_head;
    if (slot == NGI_NONE) break; /* cannot happen: empty entries are dropped */
    ngi_conns_remove_slot(rt, c, slot);
    removed++;
  }
  return removed;
}

/* Every slot goes back to the allocator in ascending id order (so reuse
 * stays deterministic), then every array is freed (the memory goes back to
 * the host). */
size_t ngi_conns_clear(ng_runtime *rt, ngi_conns *c) {
  size_t n = c->live;
  if (ngi_txn_active(&rt->txn)) { /* removals a rollback can undo, in the same order */
    for (size_t i = 0; i < c->len; i++)
      if (c->recs[i].token_a_id != 0) ngi_conns_remove_slot(rt, c, (uint32_t)i);
    return n;
  }
  for (size_t i = 0; i < c->len; i++) {
    if (c->recs[i].token_a_id == 0) continue;
    if (NGI_EV_ON(rt)) ngi_ev_conn(rt, NG_EV_UNLINK, c->meta[i].id, &c->recs[i], 0);
    ngi_idgen_release(rt, &c->ids, c->meta[i].id);
  }
  free_arrays(rt, c);
  return n;
}

size_t ngi_conns_count(const ngi_conns *c) {
  return c->live;
}

ngi_idgen *ngi_conns_ids(ngi_conns *c) {
  return &c->ids;
}

void ngi_conns_skip_slots(ng_runtime *rt, uint32_t fresh) {
  if (ngi_write_lock(rt, "ngi_conns_skip_slots") != NG_OK) return;
  ngi_idgen *g = &rt->conns->ids;
  if (fresh > g->fresh) {
    g->retired += fresh - g->fresh;
    g->fresh = fresh;
  }
  ngi_write_unlock(rt);
}

/* How far ahead (in entries) the restore prefetches the buckets it will
 * touch: enough misses in flight to cover memory latency. */
#define RESTORE_AHEAD 12

/* Needs: recs, slots and gens (may be NULL) as ngi_conns_restore takes them.
 * Guarantees: NG_OK when ids ascend, slots are below the allocator's fresh
 * slot and every endpoint is a live token, with
 * *distinct set to the number of different endpoint tokens (the exact size
 * the adjacency map needs, so the restore never rehashes). Fails:
 * NG_ECORRUPT, NG_ENOMEM (for the temporary bitmap over token ids). */
static ng_status restore_scan(ng_runtime *rt, const ngi_conns *c, const ng_connection *recs,
                              const uint32_t *slots, const uint32_t *gens, size_t n,
                              size_t *distinct) {
  const ngi_token_table *t = &rt->tokens;
  size_t words = (size_t)t->ids.fresh / 64 + 1; /* token slots are below fresh */
  uint64_t *seen = ngi_alloc_array(rt, words, sizeof *seen);
  if (!seen) return NG_ENOMEM;
  memset(seen, 0, words * sizeof *seen);
  ng_status st = NG_OK;
  size_t count = 0;
  ng_id prev = 0;
  for (size_t k = 0; k < n; k++) {
    uint32_t slot = slots[k], ends[2] = {recs[k].token_a_id, recs[k].token_b_id};
    ng_id id = (ng_id)(gens ? gens[k] : 0) << NG_CONNECTION_SLOT_BITS | slot;
    if (slot == 0 || id <= prev || slot >= c->ids.fresh || id > NG_ID_MAX ||
        !ngi_token_live_local(t, ends[0]) || !ngi_token_live_local(t, ends[1])) {
      st = NG_ECORRUPT;
      break;
    }
    prev = id;
    for (int i = 0; i < 2; i++) {
      uint64_t bit = (uint64_t)1 << (ends[i] & 63);
      count += !(seen[ends[i] >> 6] & bit);
      seen[ends[i] >> 6] |= bit;
    }
  }
  ngi_free(rt, seen, words * sizeof *seen);
  *distinct = count;
  return st;
}

/* Prefetch the cache lines an entry of `size` bytes at p may span: the
 * restore's inserts go to random buckets of tables far larger than the cache,
 * so without this each one waits for memory in turn. */
static inline void prefetch_entry(const void *p, size_t size) {
  NGI_PREFETCH(p);
  NGI_PREFETCH((const unsigned char *)p + size - 1);
}

/* Needs: recs[0..n) and meta[0..n) ids filled, everything else of the table
 * empty with room for n ids and every endpoint. Guarantees: the same links
 * as n appends, in two passes that each touch one random place per list
 * (the map buckets, then the predecessors' next links), with those places
 * prefetched a few records ahead. */
static void restore_link(ngi_conns *c, size_t n) {
  size_t imask = c->idmap_cap - 1, amask = c->adj_cap - 1;
  for (size_t k = 0; k < n; k++) {
    if (k + RESTORE_AHEAD < n) {
      const ng_connection *q = &c->recs[k + RESTORE_AHEAD];
      prefetch_entry(&c->idmap[mix64(c->meta[k + RESTORE_AHEAD].id) & imask], sizeof(idmap_entry));
      prefetch_entry(&c->adj[mix32(q->token_a_id) & amask], sizeof(adj_entry));
      prefetch_entry(&c->adj[mix32(q->token_b_id) & amask], sizeof(adj_entry));
    }
    const ng_connection *r = &c->recs[k];
    uint32_t slot = (uint32_t)k;
    idmap_put(c, c->meta[k].id, slot);
    adj_entry *e = adj_get(c, r->token_a_id);
    c->meta[k].out_prev = e->out_tail;
    if (e->out_head == NGI_NONE) e->out_head = slot;
    e->out_tail = slot;
    e->out_n++;
    e = adj_get(c, r->token_b_id);
    c->meta[k].in_prev = e->in_tail;
    if (e->in_head == NGI_NONE) e->in_head = slot;
    e->in_tail = slot;
    e->in_n++;
  }
  /* Each list's next links are its prev links reversed. */
  for (size_t k = 0; k < n; k++) {
    if (k + RESTORE_AHEAD < n) {
      const conn_meta *q = &c->meta[k + RESTORE_AHEAD];
      if (q->out_prev != NGI_NONE) prefetch_entry(&c->meta[q->out_prev], sizeof(conn_meta));
      if (q->in_prev != NGI_NONE) prefetch_entry(&c->meta[q->in_prev], sizeof(conn_meta));
    }
    const conn_meta *m = &c->meta[k];
    if (m->out_prev != NGI_NONE) c->meta[m->out_prev].out_next = (uint32_t)k;
    if (m->in_prev != NGI_NONE) c->meta[m->in_prev].in_next = (uint32_t)k;
  }
}

/* Needs: an empty table; recs (ngi_alloc'ed, room for rec_cap >= n records)
 * holds the n records, slots[k] and gens[k] (gens NULL: generation 0) the
 * id of record k. Takes ownership of recs in every case: it becomes the
 * record array, so a snapshot's records are never copied twice.
 * Guarantees: on NG_OK every record is stored under its id (gens[k] << 32 |
 * slots[k]) with both adjacency lists in ascending id order. The caller has
 * validated the records and restored the id allocator; the cheap invariants
 * this table relies on (ids ascending, slots non-zero and below the
 * allocator's fresh slot; live endpoints) are checked again, before anything
 * is stored, so a bad caller cannot corrupt it. Every array and map is sized
 * once for the whole input (the endpoint count comes from a first pass), so
 * nothing rehashes.
 * Fails: NG_ENOMEM or NG_ECORRUPT with the table left empty, NG_EINVAL if
 * the table was not empty or rec_cap < n (table unchanged). */
ng_status ngi_conns_restore_owned(ng_runtime *rt, ngi_conns *c, ng_connection *recs,
                                  size_t rec_cap, size_t n, const uint32_t *slots,
                                  const uint32_t *gens) {
  ng_status st = NG_OK;
  if (c->len != 0 || c->live != 0 || rec_cap < n || (n && !slots))
    st = NG_EINVAL;
  else if (n > (size_t)NGI_NONE - 1)
    st = NG_ECORRUPT;
  if (st != NG_OK || n == 0) {
    if (recs) ngi_free(rt, recs, rec_cap * sizeof *recs);
    return st;
  }
  size_t distinct = 0;
  st = restore_scan(rt, c, recs, slots, gens, n, &distinct);
  if (st == NG_OK && n > c->meta_cap) {
    conn_meta *m = ngi_alloc_array(rt, n, sizeof *m);
    if (!m)
      st = NG_ENOMEM;
    else {
      ngi_advise_bulk(m, n * sizeof *m);
      if (c->meta) ngi_free(rt, c->meta, c->meta_cap * sizeof *c->meta);
      c->meta = m;
      c->meta_cap = n;
    }
  }
  if (st == NG_OK) st = idmap_reserve(rt, c, n);
  if (st == NG_OK) st = adj_reserve(rt, c, distinct);
  if (st != NG_OK) {
    ngi_free(rt, recs, rec_cap * sizeof *recs);
    free_arrays(rt, c);
    return st;
  }
  for (size_t k = 0; k < n; k++) {
    ng_id id = (ng_id)(gens ? gens[k] : 0) << NG_CONNECTION_SLOT_BITS | slots[k];
    conn_meta m = {id, NGI_NONE, NGI_NONE, NGI_NONE, NGI_NONE};
    c->meta[k] = m;
  }
  if (c->recs) ngi_free(rt, c->recs, c->rec_cap * sizeof *c->recs);
  c->recs = recs;
  c->rec_cap = rec_cap;
  restore_link(c, n);
  c->len = c->live = n;
  return NG_OK;
}

/* The same from the caller's records (copied first). */
ng_status ngi_conns_restore(ng_runtime *rt, ngi_conns *c, const ng_connection *recs,
                            const uint32_t *slots, const uint32_t *gens, size_t n) {
  if (c->len != 0 || c->live != 0) return NG_EINVAL;
  if (n > (size_t)NGI_NONE - 1) return NG_ECORRUPT;
  ng_connection *copy = NULL;
  if (n) {
    copy = ngi_alloc_array(rt, n, sizeof *copy);
    if (!copy) return NG_ENOMEM;
    memcpy(copy, recs, n * sizeof *copy);
  }
  return ngi_conns_restore_owned(rt, c, copy, n, n, slots, gens);
}

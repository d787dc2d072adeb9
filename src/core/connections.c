/* The connection store: records in id order, an id -> slot map, per-token adjacency lists. */
#include "internal.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/*
 * Layout
 * - recs[0..len) holds the records in ascending id order (ids only grow, so
 *   appending keeps the order); a deleted record becomes a tombstone whose
 *   token_a_id is 0 (token ids start at 1) until compaction squeezes it out.
 * - meta[slot] keeps the slot's id (tombstones keep theirs, so meta ids stay
 *   sorted for binary search) and the links of two doubly linked lists that
 *   thread every connection through its from-token's out-list and its
 *   to-token's in-list. Links are slots (NGI_NONE = none), so a walk goes
 *   straight from record to record; compaction rewrites them.
 * - idmap: open addressing (linear probing, backward-shift deletion) from a
 *   connection id to its slot. A hash rather than a direct array because
 *   connection ids are 32-bit and never reused: a direct map would grow with
 *   every id ever issued.
 * - adj: open addressing from a token id to the heads, tails and lengths of
 *   its two lists. A token with no connection has no entry, so tokens pay
 *   nothing for an index they do not use.
 */

typedef struct conn_meta {
  uint32_t id;
  uint32_t out_prev, out_next; /* slots of the neighbours in the from-token's out-list */
  uint32_t in_prev, in_next;   /* slots of the neighbours in the to-token's in-list */
} conn_meta;

typedef struct idmap_entry {
  uint32_t id; /* 0 = empty bucket */
  uint32_t slot;
} idmap_entry;

typedef struct adj_entry {
  uint32_t token; /* 0 = empty bucket */
  uint32_t out_n, in_n;
  uint32_t out_head, out_tail; /* slots, NGI_NONE when the list is empty */
  uint32_t in_head, in_tail;
} adj_entry;

struct ngi_conns {
  ng_connection *recs;
  size_t rec_cap;
  conn_meta *meta;
  size_t meta_cap;
  size_t len;  /* slots in use, tombstones included */
  size_t live; /* live connections */
  idmap_entry *idmap;
  size_t idmap_cap; /* 0 or a power of two */
  adj_entry *adj;
  size_t adj_cap; /* 0 or a power of two */
  size_t adj_n;
  uint32_t next_id;
};

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

/* ---- id -> slot map ------------------------------------------------------- */

static uint32_t idmap_find(const ngi_conns *c, uint32_t id) {
  if (c->idmap_cap == 0 || id == 0) return NGI_NONE;
  size_t mask = c->idmap_cap - 1;
  for (size_t i = mix32(id) & mask;; i = (i + 1) & mask) {
    if (c->idmap[i].id == id) return c->idmap[i].slot;
    if (c->idmap[i].id == 0) return NGI_NONE;
  }
}

/* Insert or overwrite. Needs room (idmap_reserve). */
static void idmap_put(ngi_conns *c, uint32_t id, uint32_t slot) {
  size_t mask = c->idmap_cap - 1;
  size_t i = mix32(id) & mask;
  while (c->idmap[i].id != 0 && c->idmap[i].id != id)
    i = (i + 1) & mask;
  c->idmap[i].id = id;
  c->idmap[i].slot = slot;
}

/* Remove `id` if present, shifting later entries of its probe run back so no
 * tombstones are needed. Never allocates. */
static void idmap_del(ngi_conns *c, uint32_t id) {
  if (c->idmap_cap == 0) return;
  size_t mask = c->idmap_cap - 1;
  size_t i = mix32(id) & mask;
  while (c->idmap[i].id != id) {
    if (c->idmap[i].id == 0) return;
    i = (i + 1) & mask;
  }
  for (size_t j = (i + 1) & mask; c->idmap[j].id != 0; j = (j + 1) & mask) {
    size_t home = mix32(c->idmap[j].id) & mask;
    /* entry j may fill the hole at i unless its home lies cyclically in (i, j] */
    if (((j - home) & mask) >= ((j - i) & mask)) {
      c->idmap[i] = c->idmap[j];
      i = j;
    }
  }
  c->idmap[i].id = 0;
  c->idmap[i].slot = 0;
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

static adj_entry *adj_find(ngi_conns *c, uint32_t token) {
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

/* Remove the entry of `token` (backward shift, as idmap_del). Invalidates
 * every adj_entry pointer. Never allocates. */
static void adj_del(ngi_conns *c, uint32_t token) {
  if (c->adj_cap == 0) return;
  size_t mask = c->adj_cap - 1;
  size_t i = mix32(token) & mask;
  while (c->adj[i].token != token) {
    if (c->adj[i].token == 0) return;
    i = (i + 1) & mask;
  }
  for (size_t j = (i + 1) & mask; c->adj[j].token != 0; j = (j + 1) & mask) {
    size_t home = mix32(c->adj[j].token) & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      c->adj[i] = c->adj[j];
      i = j;
    }
  }
  memset(&c->adj[i], 0, sizeof c->adj[i]);
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
    c->recs = r;
    c->rec_cap = cap;
  }
  if (c->len == c->meta_cap) {
    size_t cap = c->meta_cap ? c->meta_cap * 2 : 16;
    conn_meta *m = ngi_realloc_array(rt, c->meta, c->meta_cap, cap, sizeof *m);
    if (!m) return NG_ENOMEM;
    c->meta = m;
    c->meta_cap = cap;
  }
  return NG_OK;
}

/* Translate a link from an old slot to its slot after compaction (the
 * id -> slot map already holds the new slots; old meta ids are intact). */
static uint32_t relink(const ngi_conns *c, uint32_t old) {
  return old == NGI_NONE ? NGI_NONE : idmap_find(c, c->meta[old].id);
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
static void remove_slot(ngi_conns *c, uint32_t slot) {
  uint32_t id = c->meta[slot].id;
  uint32_t from = c->recs[slot].token_a_id, to = c->recs[slot].token_b_id;
  conn_meta m = c->meta[slot];

  adj_entry *e = adj_find(c, from);
  if (m.out_prev != NGI_NONE)
    c->meta[m.out_prev].out_next = m.out_next;
  else
    e->out_head = m.out_next;
  if (m.out_next != NGI_NONE)
    c->meta[m.out_next].out_prev = m.out_prev;
  else
    e->out_tail = m.out_prev;
  e->out_n--;

  e = adj_find(c, to);
  if (m.in_prev != NGI_NONE)
    c->meta[m.in_prev].in_next = m.in_next;
  else
    e->in_head = m.in_next;
  if (m.in_next != NGI_NONE)
    c->meta[m.in_next].in_prev = m.in_prev;
  else
    e->in_tail = m.in_prev;
  e->in_n--;

  e = adj_find(c, from);
  if (e && e->out_n == 0 && e->in_n == 0) adj_del(c, from);
  e = adj_find(c, to);
  if (e && e->out_n == 0 && e->in_n == 0) adj_del(c, to);

  idmap_del(c, id);
  memset(&c->recs[slot], 0, sizeof c->recs[slot]);
  /* tombstones keep their id: meta stays sorted */
  conn_meta dead = {id, NGI_NONE, NGI_NONE, NGI_NONE, NGI_NONE};
  c->meta[slot] = dead;
  c->live--;

  /* trailing tombstones can simply be dropped */
  while (c->len > 0 && c->recs[c->len - 1].token_a_id == 0)
    c->len--;
  size_t ndead = c->len - c->live;
  if (ndead >= COMPACT_MIN_DEAD && ndead > c->live) compact(c);
}

/* The connection (from, to, type) other than `except`, or 0. Walks from's
 * out-list only, so it costs at most the degree limit. */
static uint32_t find_dup(ngi_conns *c, uint32_t from, uint32_t to, unsigned type, uint32_t except) {
  adj_entry *e = adj_find(c, from);
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

/* Store `rec` under `id` (greater than every id stored) in the next slot
 * and link it. Needs room in every array and map; cannot fail. */
static void append(ngi_conns *c, uint32_t id, const ng_connection *rec) {
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
  c->next_id = 1;
  if (initial > 0) {
    c->recs = ngi_alloc_array(rt, initial, sizeof *c->recs);
    c->meta = ngi_alloc_array(rt, initial, sizeof *c->meta);
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

/* Free every array; the struct keeps next_id. */
static void free_arrays(ng_runtime *rt, ngi_conns *c) {
  if (c->recs) ngi_free(rt, c->recs, c->rec_cap * sizeof *c->recs);
  if (c->meta) ngi_free(rt, c->meta, c->meta_cap * sizeof *c->meta);
  if (c->idmap) ngi_free(rt, c->idmap, c->idmap_cap * sizeof *c->idmap);
  if (c->adj) ngi_free(rt, c->adj, c->adj_cap * sizeof *c->adj);
  uint32_t next = c->next_id;
  memset(c, 0, sizeof *c);
  c->next_id = next;
}

void ngi_conns_destroy(ng_runtime *rt, ngi_conns *c) {
  if (!c) return;
  free_arrays(rt, c);
  ngi_free(rt, c, sizeof *c);
}

/* Removes the token's out-list, then its in-list, one head at a time (a
 * self-link leaves both at once). Frees nothing, allocates nothing. */
size_t ngi_conns_remove_token(ng_runtime *rt, ngi_conns *c, uint32_t id) {
  (void)rt;
  size_t removed = 0;
  for (;;) {
    /* re-find each time: removals shift adjacency entries and may drop this one */
    adj_entry *e = adj_find(c, id);
    if (!e) break;
    uint32_t slot = e->out_head != NGI_NONE ? e->out_head : e->in_head;
    if (slot == NGI_NONE) break; /* cannot happen: empty entries are dropped */
    remove_slot(c, slot);
    removed++;
  }
  return removed;
}

/* Frees every array (the memory goes back to the host); next_id stays so
 * ids are not reused after a clear. */
size_t ngi_conns_clear(ng_runtime *rt, ngi_conns *c) {
  size_t n = c->live;
  free_arrays(rt, c);
  return n;
}

size_t ngi_conns_count(const ngi_conns *c) {
  return c->live;
}

uint32_t ngi_conns_next_id(const ngi_conns *c) {
  return c->next_id;
}

void ngi_conns_set_next_id(ng_runtime *rt, uint32_t next) {
  if (next >= rt->conns->next_id) rt->conns->next_id = next;
}

/* Hint that *p is about to be written (a hash bucket the restore will probe):
 * the restore's inserts go to random buckets of tables far larger than the
 * cache, so without this each one waits for memory in turn. */
static inline void prefetch_w(const void *p) {
#if defined(__GNUC__)
  __builtin_prefetch(p, 1, 3);
#else
  (void)p;
#endif
}

/* Restore entries are packed: u32 id, then the 64-byte record. */
enum { ENTRY_BYTES = 4 + sizeof(ng_connection) };

static uint32_t entry_u32(const unsigned char *e, size_t off) {
  uint32_t v;
  memcpy(&v, e + off, sizeof v);
  return v;
}
#define ENTRY_ID(e) entry_u32((e), 0)
#define ENTRY_FROM(e) entry_u32((e), 4 + offsetof(ng_connection, token_a_id))
#define ENTRY_TO(e) entry_u32((e), 4 + offsetof(ng_connection, token_b_id))

/* How far ahead (in entries) the restore prefetches the buckets it will
 * touch: enough misses in flight to cover memory latency. */
#define RESTORE_AHEAD 12

/* Needs: entries[0..n) as ngi_conns_restore takes them. Guarantees: NG_OK
 * when ids ascend below next_id and every endpoint is a live token, with
 * *distinct set to the number of different endpoint tokens (the exact size
 * the adjacency map needs, so the restore never rehashes). Fails:
 * NG_ECORRUPT, NG_ENOMEM (for the temporary bitmap over token ids). */
static ng_status restore_scan(ng_runtime *rt, const unsigned char *entries, size_t n,
                              uint32_t next_id, size_t *distinct) {
  const ngi_token_table *t = &rt->tokens;
  size_t words = (size_t)t->next_id / 64 + 1; /* lookups succeed only below next_id */
  uint64_t *seen = ngi_alloc_array(rt, words, sizeof *seen);
  if (!seen) return NG_ENOMEM;
  memset(seen, 0, words * sizeof *seen);
  ng_status st = NG_OK;
  size_t count = 0;
  uint32_t prev = 0;
  const unsigned char *p = entries;
  for (size_t k = 0; k < n; k++, p += ENTRY_BYTES) {
    uint32_t id = ENTRY_ID(p), ends[2] = {ENTRY_FROM(p), ENTRY_TO(p)};
    if (id <= prev || id >= next_id || !ngi_token_lookup(t, ends[0]) ||
        !ngi_token_lookup(t, ends[1])) {
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

/* Prefetch the cache lines an entry of `size` bytes at p may span. */
static inline void prefetch_entry(const void *p, size_t size) {
  prefetch_w(p);
  prefetch_w((const unsigned char *)p + size - 1);
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
      prefetch_entry(&c->idmap[mix32(c->meta[k + RESTORE_AHEAD].id) & imask], sizeof(idmap_entry));
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

/* Needs: an empty table; block (ngi_alloc'ed, block_bytes long, a multiple
 * of the record size and at least n * 68) starts with n packed 68-byte
 * entries (u32 id, then the 64-byte record) as a snapshot stores them. Takes
 * ownership of block in every case: it becomes the record array (the
 * records are slid down over the ids in place, so nothing is copied twice).
 * Guarantees: on NG_OK every record is stored under its id with both
 * adjacency lists in ascending id order, and next_id is set. The caller has
 * validated the entries; the cheap invariants this table relies on (ids
 * ascending, non-zero, below next_id; live endpoints) are checked again,
 * before anything is stored, so a bad caller cannot corrupt it. Every array
 * and map is sized once for the whole input (the endpoint count comes from
 * a first pass), so nothing rehashes.
 * Fails: NG_ENOMEM or NG_ECORRUPT with the table left empty, NG_EINVAL if
 * the table was not empty or the block is too small (table unchanged). */
ng_status ngi_conns_restore_owned(ng_runtime *rt, ngi_conns *c, void *block, size_t block_bytes,
                                  size_t n, uint32_t next_id) {
  ng_status st = NG_OK;
  if (c->len != 0 || c->live != 0 || block_bytes % sizeof(ng_connection) != 0 ||
      block_bytes / ENTRY_BYTES < n)
    st = NG_EINVAL;
  else if (n > (size_t)NGI_NONE - 1 || next_id < c->next_id)
    st = NG_ECORRUPT;
  if (st != NG_OK || n == 0) {
    if (block) ngi_free(rt, block, block_bytes);
    if (st == NG_OK) c->next_id = next_id;
    return st;
  }
  unsigned char *p = block;
  size_t distinct = 0;
  st = restore_scan(rt, p, n, next_id, &distinct);
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
    ngi_free(rt, block, block_bytes);
    free_arrays(rt, c);
    return st;
  }
  /* Slide each record down over the ids: record k moves from 68k + 4 to 64k,
   * below every byte not yet read, so one ascending pass is safe. */
  for (size_t k = 0; k < n; k++) {
    conn_meta m = {ENTRY_ID(p + k * ENTRY_BYTES), NGI_NONE, NGI_NONE, NGI_NONE, NGI_NONE};
    c->meta[k] = m;
    memmove(p + k * sizeof(ng_connection), p + k * ENTRY_BYTES + 4, sizeof(ng_connection));
  }
  if (c->recs) ngi_free(rt, c->recs, c->rec_cap * sizeof *c->recs);
  c->recs = block;
  c->rec_cap = block_bytes / sizeof(ng_connection);
  restore_link(c, n);
  c->len = c->live = n;
  c->next_id = next_id;
  return NG_OK;
}

/* The same from a caller's buffer (copied into a block first). */
ng_status ngi_conns_restore(ng_runtime *rt, ngi_conns *c, const void *entries, size_t n,
                            uint32_t next_id) {
  if (c->len != 0 || c->live != 0) return NG_EINVAL;
  if (n > (size_t)NGI_NONE - 1 || next_id < c->next_id) return NG_ECORRUPT;
  size_t rec = sizeof(ng_connection), bytes = (n * ENTRY_BYTES + rec - 1) / rec * rec;
  void *block = NULL;
  if (bytes) {
    block = ngi_alloc(rt, bytes);
    if (!block) return NG_ENOMEM;
    memcpy(block, entries, n * ENTRY_BYTES);
  }
  return ngi_conns_restore_owned(rt, c, block, bytes, n, next_id);
}

/* ---- validation ----------------------------------------------------------- */

/* Field checks shared by create and update. `fields` selects which fields of
 * `v` to check (NG_CF_*); the structural ones always apply, the CDNA's weight
 * and rigidity limits only with STRICT_MODE. Fails with NG_EINVAL. */
static ng_status check_fields(const ng_runtime *rt, const char *fn, const ng_connection *v,
                              uint32_t fields) {
  const ng_cdna *cd = &rt->cdna;
  int strict = (cd->flags & NG_CDNA_STRICT_MODE) != 0;
  if (fields & NG_CF_TYPE) {
    if (v->connection_type > 0xAF)
      return ngi_fail(rt, NG_EINVAL, "%s: connection_type must be within 0x00..0xAF, got 0x%X", fn,
                      (unsigned)v->connection_type);
    unsigned cat = (unsigned)v->connection_type >> 4;
    if (!((cd->allowed_connection_types >> cat) & 1u))
      return ngi_fail(rt, NG_EINVAL,
                      "%s: connection_type 0x%02X (%s) is not allowed: category %u (%s) is off in "
                      "the CDNA's allowed_connection_types",
                      fn, (unsigned)v->connection_type, ng_conn_type_name(v->connection_type), cat,
                      ng_conn_category_name(cat));
  }
  if ((fields & NG_CF_MUTABILITY) && v->mutability > NG_HYPOTHESIS)
    return ngi_fail(rt, NG_EINVAL, "%s: mutability must be 0..2, got %u", fn,
                    (unsigned)v->mutability);
  if (fields & NG_CF_PULL_STRENGTH) {
    float p = v->pull_strength;
    if (!ngi_finite(p) || fabsf(p) > 10.0f)
      return ngi_fail(rt, NG_EINVAL,
                      "%s: pull_strength must be a finite number within -10..10, got %g", fn,
                      (double)p);
    if (strict && (fabsf(p) < cd->min_connection_weight || fabsf(p) > cd->max_connection_weight))
      return ngi_fail(rt, NG_EINVAL,
                      "%s: |pull_strength| must be within the CDNA connection weight limits %g..%g "
                      "(strict mode), got %g",
                      fn, (double)cd->min_connection_weight, (double)cd->max_connection_weight,
                      (double)p);
  }
  if (fields & NG_CF_PREFERRED_DISTANCE) {
    float d = v->preferred_distance;
    if (!ngi_finite(d) || d < 0.01f || d > 100.0f)
      return ngi_fail(rt, NG_EINVAL,
                      "%s: preferred_distance must be a finite number within 0.01..100, got %g", fn,
                      (double)d);
  }
  if ((fields & NG_CF_RIGIDITY) && strict) {
    float r = (float)v->rigidity / 255.0f;
    if (r < cd->min_rigidity || r > cd->max_rigidity)
      return ngi_fail(rt, NG_EINVAL,
                      "%s: rigidity %u (%g) must be within the CDNA rigidity limits %g..%g (strict "
                      "mode)",
                      fn, (unsigned)v->rigidity, (double)r, (double)cd->min_rigidity,
                      (double)cd->max_rigidity);
  }
  return NG_OK;
}

/* Degree limits for adding from -> to (a self-link adds one out and one in). */
static ng_status check_degrees(const ng_runtime *rt, ngi_conns *c, uint32_t from, uint32_t to) {
  const ng_cdna *cd = &rt->cdna;
  const adj_entry *ef = adj_find(c, from), *et = adj_find(c, to);
  uint64_t f_out = ef ? ef->out_n : 0, f_in = ef ? ef->in_n : 0;
  uint64_t t_out = et ? et->out_n : 0, t_in = et ? et->in_n : 0;
  uint64_t f_total = f_out + f_in + 1, t_total = t_out + t_in + 1;
  if (from == to) f_total = t_total = f_out + f_in + 2;
  if (f_out + 1 > cd->max_out_degree)
    return ngi_fail(rt, NG_ELIMIT,
                    "ng_connection_create: token %u already has %llu outgoing connections "
                    "(max_out_degree %u)",
                    from, (unsigned long long)f_out, cd->max_out_degree);
  if (t_in + 1 > cd->max_in_degree)
    return ngi_fail(rt, NG_ELIMIT,
                    "ng_connection_create: token %u already has %llu incoming connections "
                    "(max_in_degree %u)",
                    to, (unsigned long long)t_in, cd->max_in_degree);
  if (f_total > cd->max_total_degree)
    return ngi_fail(rt, NG_ELIMIT,
                    "ng_connection_create: token %u already has %llu connections "
                    "(max_total_degree %u)",
                    from, (unsigned long long)(f_out + f_in), cd->max_total_degree);
  if (t_total > cd->max_total_degree)
    return ngi_fail(rt, NG_ELIMIT,
                    "ng_connection_create: token %u already has %llu connections "
                    "(max_total_degree %u)",
                    to, (unsigned long long)(t_out + t_in), cd->max_total_degree);
  return NG_OK;
}

/* ---- public API ----------------------------------------------------------- */

/* Report an endpoint that is not a live token. Endpoints are token ids as
 * ng_token_create returns them; a composite id (entity or domain bits set)
 * gets a hint, since that is the likely mistake. */
static ng_status missing_endpoint(const ng_runtime *rt, const char *fn, const char *field,
                                  uint32_t id) {
  if (id > NG_TOKEN_ID_MAX)
    return ngi_fail(rt, NG_EINVAL,
                    "%s: %s 0x%08X is not a token id (1..0xFFFFFF); for a composite id pass "
                    "NG_ID_LOCAL(id)",
                    fn, field, id);
  return ngi_fail(rt, NG_EINVAL, "%s: %s %u does not exist", fn, field, id);
}

/* Needs: a valid record from ng_connection_init or equivalent.
 * Guarantees: on NG_OK the record is stored under a fresh id (*out_id, may be
 * NULL) and linked into both endpoints' adjacency. Fails: NG_EINVAL (bad
 * field, missing endpoint), NG_EEXIST, NG_ELIMIT, NG_ENOMEM, NG_EBUSY; the
 * store is then unchanged. */
ng_status ng_connection_create(ng_runtime *rt, const ng_connection *c, uint32_t *out_id) {
  static const char fn[] = "ng_connection_create";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!c) return ngi_fail(rt, NG_EINVAL, "%s: connection must not be NULL", fn);
  ng_status st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_conns *cs = rt->conns;
  ng_connection rec = *c;
  uint32_t from = rec.token_a_id, to = rec.token_b_id;

  if (!ngi_token_lookup(&rt->tokens, from)) {
    st = missing_endpoint(rt, fn, "token_a_id (from)", from);
  } else if (!ngi_token_lookup(&rt->tokens, to)) {
    st = missing_endpoint(rt, fn, "token_b_id (to)", to);
  } else if (rec.padding1 != 0) {
    st = ngi_fail(rt, NG_EINVAL, "%s: padding1 must be 0, got %u", fn, (unsigned)rec.padding1);
  } else if ((st = check_fields(rt, fn, &rec, NG_CF_ALL)) != NG_OK) {
    /* reported */
  } else if (find_dup(cs, from, to, rec.connection_type, 0) != 0) {
    st = ngi_fail(rt, NG_EEXIST, "%s: a connection %u -> %u of type 0x%02X (%s) already exists", fn,
                  from, to, (unsigned)rec.connection_type, ng_conn_type_name(rec.connection_type));
  } else if ((st = check_degrees(rt, cs, from, to)) != NG_OK) {
    /* reported */
  } else if (cs->next_id == 0 || cs->next_id > NG_CONNECTION_ID_MAX) {
    st = ngi_fail(rt, NG_ELIMIT, "%s: connection ids are exhausted (max %u)", fn,
                  (unsigned)NG_CONNECTION_ID_MAX);
  } else if (slots_reserve(rt, cs) != NG_OK || idmap_reserve(rt, cs, cs->live + 1) != NG_OK ||
             adj_reserve(rt, cs, cs->adj_n + 2) != NG_OK) {
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
  uint32_t id = cs->next_id++;
  append(cs, id, &rec);

  ngi_write_unlock(rt);
  if (out_id) *out_id = id;
  return NG_OK;
}

ng_status ng_connection_get(ng_runtime *rt, uint32_t id, ng_connection *out) {
  static const char fn[] = "ng_connection_get";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!out) return ngi_fail(rt, NG_EINVAL, "%s: out must not be NULL", fn);
  ngi_read_lock(rt);
  uint32_t s = idmap_find(rt->conns, id);
  if (s != NGI_NONE) *out = rt->conns->recs[s];
  ngi_read_unlock(rt);
  if (s == NGI_NONE) return ngi_fail(rt, NG_ENOTFOUND, "%s: connection %u not found", fn, id);
  return NG_OK;
}

/* Needs: `fields` a subset of NG_CF_ALL. Guarantees: the selected fields are
 * written together or not at all; endpoints never change. Fails: NG_ENOTFOUND,
 * NG_EINVAL (unknown bits, bad value, type not allowed), NG_EEXIST (the new
 * type duplicates another connection between the same endpoints), NG_EBUSY. */
ng_status ng_connection_update(ng_runtime *rt, uint32_t id, const ng_connection *values,
                               uint32_t fields) {
  static const char fn[] = "ng_connection_update";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (fields & ~(uint32_t)NG_CF_ALL)
    return ngi_fail(rt, NG_EINVAL, "%s: unknown field bits 0x%X", fn,
                    fields & ~(uint32_t)NG_CF_ALL);
  if (!values && fields) return ngi_fail(rt, NG_EINVAL, "%s: values must not be NULL", fn);
  ng_status st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  ngi_conns *cs = rt->conns;
  uint32_t s = idmap_find(cs, id);
  if (s == NGI_NONE) {
    ngi_write_unlock(rt);
    return ngi_fail(rt, NG_ENOTFOUND, "%s: connection %u not found", fn, id);
  }
  const ng_connection *old = &cs->recs[s];
  ng_connection n = *old;
  if (fields & NG_CF_TYPE) n.connection_type = values->connection_type;
  if (fields & NG_CF_RIGIDITY) n.rigidity = values->rigidity;
  if (fields & NG_CF_ACTIVE_LEVELS) n.active_levels = values->active_levels;
  if (fields & NG_CF_FLAGS) n.flags = values->flags;
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
   * limits apply to later writes, not to what a record already holds. */
  uint32_t check = fields;
  if (n.connection_type == old->connection_type) check &= ~(uint32_t)NG_CF_TYPE;
  st = check_fields(rt, fn, &n, check);
  if (st == NG_OK && (check & NG_CF_TYPE)) {
    uint32_t dup = find_dup(cs, n.token_a_id, n.token_b_id, n.connection_type, id);
    if (dup)
      st =
          ngi_fail(rt, NG_EEXIST, "%s: connection %u (%u -> %u) of type 0x%02X (%s) already exists",
                   fn, dup, n.token_a_id, n.token_b_id, (unsigned)n.connection_type,
                   ng_conn_type_name(n.connection_type));
  }
  if (st == NG_OK) cs->recs[s] = n;
  ngi_write_unlock(rt);
  return st;
}

/* Guarantees: the rule of reference 2.4 applied with the runtime's clock
 * under the write lock, *out (may be NULL) the record afterwards. Fails:
 * NG_EINVAL (unknown op), NG_ENOTFOUND, NG_EBUSY; nothing changed. */
ng_status ng_connection_learn(ng_runtime *rt, uint32_t id, ng_learn_op op, ng_connection *out) {
  static const char fn[] = "ng_connection_learn";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (op < NG_LEARN_ACTIVATE || op > NG_LEARN_DECAY)
    return ngi_fail(rt, NG_EINVAL,
                    "%s: op must be NG_LEARN_ACTIVATE..NG_LEARN_DECAY (1..4), got %d", fn, (int)op);
  ng_status st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  uint32_t s = idmap_find(rt->conns, id);
  if (s == NGI_NONE) {
    ngi_write_unlock(rt);
    return ngi_fail(rt, NG_ENOTFOUND, "%s: connection %u not found", fn, id);
  }
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
  if (out) *out = *r;
  ngi_write_unlock(rt);
  return NG_OK;
}

/* Removes the record and its two adjacency links; never allocates.
 * Fails: NG_ENOTFOUND, NG_EBUSY. */
ng_status ng_connection_delete(ng_runtime *rt, uint32_t id) {
  static const char fn[] = "ng_connection_delete";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  ng_status st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  uint32_t s = idmap_find(rt->conns, id);
  if (s != NGI_NONE) remove_slot(rt->conns, s);
  ngi_write_unlock(rt);
  if (s == NGI_NONE) return ngi_fail(rt, NG_ENOTFOUND, "%s: connection %u not found", fn, id);
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
 * since new ids are always larger. ids may be NULL only when limit is 0;
 * n_out may be NULL. */
ng_status ng_connection_list(ng_runtime *rt, size_t offset, size_t limit, uint32_t *ids,
                             size_t *n_out) {
  static const char fn[] = "ng_connection_list";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
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
  if (n_out) *n_out = n;
  return NG_OK;
}

/* Cursor step: the smallest live id > after, found by binary search over
 * the sorted slot ids. NG_ENOTFOUND marks the end; it is recorded like every
 * other failure (as ng_token_next does), so ng_last_error never shows an
 * older, unrelated message after it. */
ng_status ng_connection_next(ng_runtime *rt, uint32_t after, uint32_t *next_id) {
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
  uint32_t id = lo < cs->len ? cs->meta[lo].id : 0;
  ngi_read_unlock(rt);
  if (id == 0) return ngi_fail(rt, NG_ENOTFOUND, "%s: no connection after %u", fn, (unsigned)after);
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
  ngi_read_lock(rt);
  const ngi_conns *cs = rt->conns;
  for (size_t i = 0; i < cs->len; i++) {
    if (cs->recs[i].token_a_id == 0) continue;
    ng_connection copy = cs->recs[i];
    if (!fn(&copy, cs->meta[i].id, ud)) break;
  }
  ngi_read_unlock(rt);
  return NG_OK;
}

/* The id of (from, to, type) by a walk of from's out-list. NG_ENOTFOUND
 * for no such link (including an undefined type or unknown token). */
ng_status ng_connection_find(ng_runtime *rt, uint32_t from, uint32_t to, unsigned type,
                             uint32_t *out_id) {
  static const char fn[] = "ng_connection_find";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!out_id) return ngi_fail(rt, NG_EINVAL, "%s: out_id must not be NULL", fn);
  uint32_t id = 0;
  if (type <= 0xAF) {
    ngi_read_lock(rt);
    id = find_dup(rt->conns, from, to, type, 0);
    ngi_read_unlock(rt);
  }
  if (id == 0)
    return ngi_fail(rt, NG_ENOTFOUND, "%s: no connection %u -> %u of type 0x%X", fn, from, to,
                    type);
  *out_id = id;
  return NG_OK;
}

/* Needs: ids has room for cap entries (may be NULL when cap is 0).
 * Guarantees: the first min(cap, total) connection ids of token `id` in
 * direction dir, ascending, with a self-link listed once under NG_BOTH;
 * *n_out = total. Fails: NG_ENOTFOUND (no such token), NG_EINVAL. */
ng_status ng_token_connections(ng_runtime *rt, uint32_t id, ng_direction dir, uint32_t *ids,
                               size_t cap, size_t *n_out) {
  static const char fn[] = "ng_token_connections";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (dir != NG_OUT && dir != NG_IN && dir != NG_BOTH)
    return ngi_fail(rt, NG_EINVAL, "%s: direction must be NG_OUT, NG_IN or NG_BOTH, got %d", fn,
                    (int)dir);
  if (!ids && cap > 0) return ngi_fail(rt, NG_EINVAL, "%s: ids must not be NULL", fn);
  ngi_read_lock(rt);
  if (!ngi_token_lookup(&rt->tokens, id)) {
    ngi_read_unlock(rt);
    return ngi_fail(rt, NG_ENOTFOUND, "%s: token %u not found", fn, id);
  }
  ngi_conns *cs = rt->conns;
  const adj_entry *e = adj_find(cs, id);
  uint32_t o = (e && (dir & NG_OUT)) ? e->out_head : NGI_NONE;
  uint32_t i = (e && (dir & NG_IN)) ? e->in_head : NGI_NONE;
  size_t n = 0;
  /* Merge the two lists. Slot order is id order, so comparing slots sorts
   * by id (NGI_NONE, the largest, ends a list); a self-link sits in both
   * lists and counts once. */
  while (o != NGI_NONE || i != NGI_NONE) {
    uint32_t take = o <= i ? o : i;
    if (o == take) o = cs->meta[o].out_next;
    if (i == take) i = cs->meta[i].in_next;
    if (n < cap) ids[n] = cs->meta[take].id;
    n++;
  }
  ngi_read_unlock(rt);
  if (n_out) *n_out = n;
  return NG_OK;
}

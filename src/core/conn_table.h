/* Private interface between the connection table (conn_table.c) and the connection API. */
#ifndef NG_CORE_CONN_TABLE_H
#define NG_CORE_CONN_TABLE_H

#include "internal.h"

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
 *   connection slots are 32-bit and snapshots of version 1 may hold ids up to
 *   2^32 with holes that are never reused: a direct map would grow with them.
 * - Endpoints are token slots (the records' 32-bit fields); the full token
 *   ids come from the token table (ngi_token_id_of), since a token's
 *   connections die with it.
 * - adj: open addressing from a token id to the heads, tails and lengths of
 *   its two lists. A token with no connection has no entry, so tokens pay
 *   nothing for an index they do not use.
 */

typedef struct conn_meta {
  ng_id id;
  uint32_t out_prev, out_next; /* slots of the neighbours in the from-token's out-list */
  uint32_t in_prev, in_next;   /* slots of the neighbours in the to-token's in-list */
} conn_meta;

typedef struct idmap_entry {
  ng_id id; /* 0 = empty bucket */
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
  ngi_idgen ids;
};

/* The slot of live connection `id`, or NGI_NONE. */
uint32_t ngi_conns_find_slot(const ngi_conns *c, ng_id id);
/* The adjacency entry of `token`, or NULL when it has no connection. The
 * pointer is invalidated by any change to the table. */
adj_entry *ngi_conns_find_adj(ngi_conns *c, uint32_t token);
/* A cursor over the links of one token in ascending connection id order: its
 * out- and in-lists merged (slot order is id order, and NGI_NONE, the
 * largest, ends a list). The one home of the rule by which a link acts in a
 * direction: NG_OUT takes the links the token starts and NG_IN those it
 * ends, a bidirectional link acting both ways at both ends; a self-link sits
 * in both lists and comes once. Walking it never allocates. Caller holds a
 * lock; any change to the table invalidates the cursor. */
typedef struct ngi_link_cursor {
  uint32_t o, i; /* the next slots of the two lists */
} ngi_link_cursor;

static inline void ngi_links_begin(ngi_conns *c, uint32_t token, ngi_link_cursor *k) {
  const adj_entry *e = ngi_conns_find_adj(c, token);
  k->o = e ? e->out_head : NGI_NONE;
  k->i = e ? e->in_head : NGI_NONE;
}

/* The slot of the next link acting in direction dir, or NGI_NONE at the end;
 * *other gets the token slot at its other end. */
static inline uint32_t ngi_links_next(const ngi_conns *c, ngi_link_cursor *k, unsigned dir,
                                      uint32_t *other) {
  while (k->o != NGI_NONE || k->i != NGI_NONE) {
    uint32_t take = k->o <= k->i ? k->o : k->i;
    bool as_out = k->o == take, as_in = k->i == take;
    if (as_out) k->o = c->meta[take].out_next;
    if (as_in) k->i = c->meta[take].in_next;
    const ng_connection *r = &c->recs[take];
    bool bidir = r->flags & NG_CONN_BIDIRECTIONAL;
    if (((dir & NG_OUT) && (as_out || bidir)) || ((dir & NG_IN) && (as_in || bidir))) {
      *other = as_out ? r->token_b_id : r->token_a_id;
      return take;
    }
  }
  return NGI_NONE;
}

/* The id of the connection (from, to, type) other than `except`, or 0
 * (from and to are token slots). */
ng_id ngi_conns_find_dup(ngi_conns *c, uint32_t from, uint32_t to, unsigned type, ng_id except);
/* Make room for one ngi_conns_append (a slot, an id, two adjacency entries).
 * Fails with NG_ENOMEM, contents unchanged. */
ng_status ngi_conns_reserve_append(ng_runtime *rt, ngi_conns *c);
/* Store `rec` under `id` (greater than every id stored) and link it. Needs a
 * successful ngi_conns_reserve_append since the last change; cannot fail. */
void ngi_conns_append(ngi_conns *c, ng_id id, const ng_connection *rec);
/* Unlink and delete the live connection at `slot`; its id's slot goes back
 * to the allocator. Never fails. */
void ngi_conns_remove_slot(ng_runtime *rt, ngi_conns *c, uint32_t slot);

/* Transactions (txn.c) undo, newest first: the append into `slot` (the
 * last slot, at the tail of both its lists), putting back `old` (with meta
 * `old_meta`) where it overwrote a trimmed tombstone (old NULL: nothing to
 * put back); and the removal of `slot` when len was old_len, with its record
 * and links. Never allocate (the maps had room for the removed entries). */
void ngi_conns_unappend(ngi_conns *c, uint32_t slot, const ng_connection *old,
                        const conn_meta *old_meta);
void ngi_conns_unremove(ngi_conns *c, uint32_t slot, uint32_t old_len, const ng_connection *rec,
                        const conn_meta *meta);
/* Compact now if removals inside a transaction left it due. Never allocates. */
void ngi_conns_tidy(ngi_conns *c);

#endif

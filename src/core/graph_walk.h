/* The machinery the graph walks share (graph.c: BFS and paths; graph_spread.c:
 * spreading activation; graph_walk.c: this): the per-runtime scratch, the
 * walk options' rules, and the reading of a token's links, from the linked
 * lists or a compact copy of the adjacency. */
#ifndef NG_CORE_GRAPH_WALK_H
#define NG_CORE_GRAPH_WALK_H

#include "conn_table.h"

/* ---- scratch ---------------------------------------------------------------- */

/* A heap entry of a path search. */
typedef struct heap_item {
  double key;    /* cost so far (+ heuristic) */
  uint32_t slot; /* token slot; ties are taken by slot, so the order is fixed */
  uint32_t pad;
} heap_item;

/* A link copied for a cost function, called outside the lock. */
typedef struct fn_link {
  ng_connection rec;
  ng_id conn, to; /* its id, and the id of the token it leads to */
  double cost;
  uint32_t other; /* that token's slot */
} fn_link;

/* A spread arrival (SUM / MAX modes): `energy` reaching `slot` at `depth`,
 * its strongest part from entry `parent` (NGI_NONE at a source). */
typedef struct arrival {
  double energy, best;
  uint32_t slot, parent, depth, pad;
} arrival;

/* A compact copy of the adjacency in one direction (CSR): the links acting
 * that way from token slot u are ent[2k] (the other end's slot) and
 * ent[2k + 1] (the connection's slot) for k in off[u] .. off[u + 1], in
 * ascending connection id order, as ngi_links_next gives them. Valid while
 * the runtime's write sequence is `seq` (any write makes it stale; the table's
 * sizes are kept beside it so that a 32-bit sequence come round to the same
 * value after 2^31 writes is still caught by any change of size). Walks
 * that cross many links build it (walker_copy) and read it sequentially
 * instead of following the linked lists from record to record. */
typedef struct csr {
  uint32_t *off, *ent;
  size_t off_n, ent_n; /* allocated elements */
  unsigned seq;
  size_t len, live, slot_cap; /* the tables' sizes when it was built */
  bool valid;
  bool want; /* a walk in this direction crossed many links: build before the next */
} csr;

/* Per-token-slot state of a walk, valid for a slot when mark[slot] == epoch
 * (a new walk bumps the epoch instead of clearing the arrays: 28 bytes a
 * slot), the growable heap and lists, and the adjacency copies. The runtime
 * keeps one (rt->graph) for the next walk; a walk running while another
 * holds it makes its own. */
struct ngi_graph_scratch {
  csr csr[3];   /* per direction: NG_OUT, NG_IN, NG_BOTH */
  size_t slots; /* the arrays below hold slots 0 .. slots - 1 */
  uint32_t epoch;
  uint32_t *mark;
  uint32_t *parent; /* predecessor slot (or arrival index) */
  uint32_t *depth;
  double *val;     /* cost so far / energy */
  uint32_t *queue; /* a BFS queue: each slot at most once, so `slots` long */
  heap_item *heap;
  size_t heap_cap;
  fn_link *links;
  size_t links_cap;
  arrival *arr;
  size_t arr_cap;
  uint32_t *at; /* FIRST: a slot's source; SUM / MAX: its arrival at the current depth */
};

/* The runtime's scratch, or a new empty one when another walk holds it (or
 * NULL: out of memory). */
ngi_graph_scratch *ngi_scratch_take(ng_runtime *rt);
/* Give the scratch back for the next walk (freed if the runtime has one). */
void ngi_scratch_give(ng_runtime *rt, ngi_graph_scratch *s);
/* Make the per-slot arrays cover every token slot and start a new epoch.
 * Caller holds the read lock (reads slot_cap). False: out of memory, the
 * scratch unchanged. */
bool ngi_scratch_begin(ng_runtime *rt, ngi_graph_scratch *s);
/* A walk's start: the scratch taken, the read lock held, each token
 * ends[i] (for i < n; named names[i], or the last name past them, in fn's
 * error) found, the scratch begun. NG_OK: *out holds the scratch and the
 * read lock is held (ngi_walk_close ends both); else nothing is held, and
 * the error (NG_ENOTFOUND or NG_EINVAL naming the first missing token,
 * NG_ENOMEM) is recorded for fn. */
ng_status ngi_walk_open(ng_runtime *rt, const char *fn, const ng_id *ends, size_t n,
                        const char *const *names, size_t nnames, ngi_graph_scratch **out);
/* Release the read lock and give the scratch back. */
void ngi_walk_close(ng_runtime *rt, ngi_graph_scratch *s);
/* Grow *p from old to n elements of size elem (contents kept). */
bool ngi_graph_grow(ng_runtime *rt, void **p, size_t old, size_t n, size_t elem);

/* ---- options ------------------------------------------------------------------ */

/* NG_OK if w is a usable walk (dir 0 read as NG_OUT into *dir); else
 * NG_EINVAL recorded for fn. */
ng_status ngi_walk_check(const ng_runtime *rt, const char *fn, const ng_walk *w, unsigned *dir);
/* A missing token named `what` for fn (NG_EINVAL for an id that is none). */
ng_status ngi_graph_missing(const ng_runtime *rt, const char *fn, const char *what, ng_id id);

/* Whether w filters links by type at all (else no record need be read). */
static inline bool ngi_walk_filtered(const ng_walk *w) {
  return (w->types[0] | w->types[1] | w->types[2]) != 0 || w->categories != 0;
}

/* Whether the walk may cross a link of `type`. */
static inline bool ngi_walk_type_ok(const ng_walk *w, unsigned type) {
  bool any_type = (w->types[0] | w->types[1] | w->types[2]) == 0;
  return (any_type || (w->types[type / 64] >> (type % 64) & 1u)) &&
         (w->categories == 0 || (w->categories >> (type >> 4) & 1u));
}

/* The strength w (0..1) of link r under field f: the one mapping every
 * weighted walk uses. */
static inline double ngi_link_weight(const ng_connection *r, ng_weight_field f) {
  if (f == NG_WEIGHT_PULL) {
    double p = r->pull_strength / 10.0;
    return p <= 0 ? 0 : p >= 1 ? 1 : p;
  }
  return r->confidence / 255.0;
}

/* ---- reading the adjacency ------------------------------------------------------ */

/* How a walk reads the links of a token in direction dir: from the scratch's
 * CSR copy when it is current, else by ngi_link_cursor, counting the links it
 * follows: past `switch_at` of them the walk builds the copy and goes on in
 * it (a token's links come in the same order either way), so that a first
 * walk across most of a large graph does not follow the lists to its end. */
typedef struct walker {
  ng_runtime *rt;
  ngi_graph_scratch *s;
  ngi_conns *cs;
  unsigned dir;
  const uint32_t *off, *ent; /* the CSR, or NULL */
  size_t visits;
  size_t switch_at; /* SIZE_MAX: never (no copy may be made) */
} walker;

/* Read the CSR copy from now on, building it if it is stale (without memory
 * w stays on the linked lists). Only where ngi_walker_begin allowed a copy. */
void ngi_walker_copy(walker *w);
/* Set w up for a walk in direction dir: the CSR copy when it is current or
 * wanted (then built now), else the linked lists until the walk has followed
 * an eighth of the table's links (always the lists when !may_copy). Never a
 * copy inside a write hold (a transaction's writes between two walks keep the
 * write sequence). */
void ngi_walker_begin(ng_runtime *rt, ngi_graph_scratch *s, unsigned dir, bool may_copy, walker *w);

/* A walk's cursor over one token's links (ngi_nbrs_begin, ngi_nbrs_next). */
typedef struct nbrs {
  ngi_link_cursor k;
  const uint32_t *p, *end;
} nbrs;

static inline void ngi_nbrs_begin(walker *w, uint32_t u, nbrs *it) {
  if (!w->off && w->visits >= w->switch_at) ngi_walker_copy(w);
  if (w->off) {
    it->p = w->ent + 2 * (size_t)w->off[u];
    it->end = w->ent + 2 * (size_t)w->off[u + 1];
    it->k.o = it->k.i = NGI_NONE;
  } else {
    it->p = it->end = NULL;
    ngi_links_begin(w->cs, u, &it->k);
  }
}

/* The slot of the next link, or NGI_NONE; *other: the token slot at its other end. */
static inline uint32_t ngi_nbrs_next(walker *w, nbrs *it, uint32_t *other) {
  if (w->off) {
    if (it->p == it->end) return NGI_NONE;
    *other = it->p[0];
    uint32_t slot = it->p[1];
    it->p += 2;
    return slot;
  }
  w->visits++;
  return ngi_links_next(w->cs, &it->k, w->dir, other);
}

#endif /* NG_CORE_GRAPH_WALK_H */

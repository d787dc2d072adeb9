/* The change feed (events.c), subscriptions and trigger zones (zones.c).
 * Never installed; included through internal.h.
 *
 * One feed, filled at commit. A write hold (a single call, a batch, or a
 * transaction from ng_txn_begin to its end) decides when it begins whether it
 * records (ENABLE_EVENTS and an open subscription: ngi_ev_begin); while it
 * runs, each successful change appends its events to rt->ev.pending, with
 * the enter/leave of the zones it crosses right after (never failing: an
 * event that finds no memory is counted in `dropped` and reported as lost to
 * every subscriber). A savepoint remembers the pending length and a rollback
 * cuts back to it; a batch that undoes itself does the same. When the
 * outermost hold ends (ngi_write_unlock), ngi_ev_publish numbers the
 * commit's events and copies them into each subscription's bounded queue,
 * still under the write lock and without calling user code. The journal
 * (journal.h) reads the same commits at the same point, as one more
 * consumer, first: while one is attached every hold records, and `want`
 * holds every store kind besides what some subscription wants (without a
 * journal only the latter, so that a feed watched for zones does not copy a
 * frame's moves).
 *
 * Locks: rt->lock (write) -> ev.subs_lock -> each sub's lock. Opening and
 * closing a subscription takes only subs_lock, so it works from any thread at
 * any moment (inside a transaction or an iteration callback too). */
#ifndef NG_CORE_EVENTS_H
#define NG_CORE_EVENTS_H

#include "neurograph.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct ngi_zones ngi_zones;

/* The 4x4x4 finer cells of one occupied cell of a space's zone index, a bit
 * each: `occupied`, the cell meets some zone; `edge`, some zone's boundary
 * passes through it (the cell is neither wholly inside nor wholly outside
 * that zone). A token moving within one cell that is not an edge, or between
 * two cells that meet no zone, cannot enter or leave any zone. */
typedef struct ngi_zone_cell {
  uint64_t occupied, edge;
  /* zones.c's: the cell's `count` zones, at `start` in its index's list (or,
   * one zone, its index itself: a lookup then reads no list) */
  uint32_t start, count;
} ngi_zone_cell;

/* What a move must meet before it looks for zones in a space, kept by
 * zones.c from its index so that the common move (one that cannot cross a
 * zone's boundary) is rejected inline: the occupancy bitmap of the index's
 * cells (2^shift raw steps on a side, shift >= 10), the rank of each of its
 * words, and per occupied cell its finer cells. A raw point's cell and finer
 * cell depend only on the high bytes of its coordinates, so `map` gives them
 * by table: map[256 * a + (high byte of axis a)] ORed over the three axes is
 * the cell's index in the bitmap (the low NGI_GATE_CELL_BITS bits) and the
 * finer cell's (4x4x4, the bits above). bits NULL: every move of the space
 * goes to ngi_zones_cross (no zone, or the index is stale or must scan); a
 * change of the space's unit (ngi_zones_rescaled) or of its zones closes the
 * gate until the index is rebuilt. */
#define NGI_GATE_CELL_BITS 24
typedef struct ngi_zone_gate {
  const uint64_t *bits;
  const uint32_t *rank;       /* the occupied cells before each word of bits */
  const ngi_zone_cell *cells; /* per occupied cell, in cell order */
  const uint32_t *map;        /* 3 x 256 */
  bool any;                   /* the space has zones */
} ngi_zone_gate;

typedef struct ngi_events {
  /* Under the write lock: */
  bool rec;          /* the current write hold records events */
  bool to_subs;      /* ... for the subscriptions (else only for the journal) */
  uint32_t want;     /* the kinds it records (1 << NG_EV_*): what some subscriber wants */
  ng_event *pending; /* the open commit's events */
  size_t len, cap;
  uint64_t dropped; /* events of the open commit lost for want of memory */
  uint64_t seq;     /* the last sequence number given */
  uint64_t commits; /* the last commit number given */
  ngi_zones *zones; /* NULL until the first zone */
  ngi_zone_gate gate[NG_SPACES];
  /* Subscriptions, under subs_lock; nsubs read by writers without it. */
  pthread_mutex_t subs_lock;
  ng_sub **subs;
  size_t subs_n, subs_cap;
  atomic_size_t nsubs;
  _Atomic uint32_t want_all; /* the union of the subscriptions' kinds, set under subs_lock */
} ngi_events;

/* runtime.c: set up (0 or an error number) and free a runtime's feed. */
int ngi_events_init(ng_runtime *rt);
void ngi_events_free(ng_runtime *rt);

/* base.c: the outermost write hold begins (decides whether it records) and
 * ends (publishes what it recorded). */
void ngi_ev_begin(ng_runtime *rt);
void ngi_ev_publish(ng_runtime *rt);

/* ---- the write paths' hooks (caller holds the write lock) ---------------- */

/* Whether the current hold records; every hook below is a no-op otherwise,
 * but callers test this first so that nothing is computed for nothing.
 * Zones are fed by the same hooks; an event of a kind no subscription wants
 * is not stored (a frame's moves cost nothing to a feed watched for zones). */
#define NGI_EV_ON(rt) ((rt)->ev.rec)

/* The pending length, and cutting back to it (a rollback, a failed batch). */
size_t ngi_ev_mark(const ng_runtime *rt);
void ngi_ev_cut(ng_runtime *rt, size_t mark);

/* A token was created (tok: its record, placed its spaces) or is being
 * deleted (the same, before the delete). Token events are followed at once
 * by the enter and leave events of the zones they cross (zones.c). */
void ngi_ev_token(ng_runtime *rt, int kind, ng_id id, const ng_token *tok, uint8_t placed);
/* Token id went from `old` (placed in old_placed) to `next` (next_placed)
 * by an update of `fields`: an update event for the non-coordinate fields,
 * then a move for each space entered or moved in, an unplace for each left. */
void ngi_ev_update(ng_runtime *rt, ng_id id, const ng_token *old, uint8_t old_placed,
                   const ng_token *next, uint8_t next_placed, uint32_t fields);
/* Token id moved in `space` from raw `from` (NULL: it was not placed there)
 * to `to` (NULL: it left the space, an unplace); token_flags and placed are
 * the token's after the write. ngi_ev_move (internal.h) is its inline gate:
 * it calls this only for a kind some subscription wants or a zone near. */
void ngi_ev_move_slow(ng_runtime *rt, ng_id id, int space, const int16_t *from,
                      const int16_t *to, uint16_t token_flags, uint8_t placed);
/* A connection event: id, its endpoints (token slots of rec), type and,
 * for link_update, the NG_CF_* fields written (0 for a learning step). */
void ngi_ev_conn(ng_runtime *rt, int kind, ng_id id, const ng_connection *rec, uint32_t fields);
/* The CDNA changed. */
void ngi_ev_cdna(ng_runtime *rt);
/* Append a whole event (zones.c's enter and leave). */
void ngi_ev_push(ng_runtime *rt, const ng_event *ev);

/* ---- zones.c ----------------------------------------------------------------- */

void ngi_zones_free(ng_runtime *rt);
/* ngi_zones_cross for a move with an end in an occupied cell of its space's
 * gate, the gate current (built for the space's unit, no "big" zone): the
 * finer cells first (nothing when it stays within one that no zone's
 * boundary crosses, or goes between two that meet no zone). */
void ngi_zones_move(ng_runtime *rt, ng_id id, int space, const int16_t *from, const int16_t *to,
                    uint16_t token_flags, uint8_t placed);
/* A hint for a batch, a few entries ahead: load the finer cells of gate g's
 * occupied cell `cell`, which the gate will read. */
void ngi_zones_gate_prefetch(const ngi_zone_gate *g, uint32_t cell);
/* The units of some space changed (ngi_units_sync): every index is rebuilt
 * at its next lookup, and the gates stay open until then. */
void ngi_zones_rescaled(ng_runtime *rt);
/* Append the leave and enter events (leaves first) of token id going in
 * `space` from raw `from` to raw `to` (either NULL: not placed there before,
 * or after); token_flags and placed as ngi_ev_move takes them. Never fails
 * (without memory for its index, it scans every zone of the space). */
void ngi_zones_cross(ng_runtime *rt, ng_id id, int space, const int16_t *from, const int16_t *to,
                     uint16_t token_flags, uint8_t placed);

#endif /* NG_CORE_EVENTS_H */

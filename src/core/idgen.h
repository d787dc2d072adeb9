/* The id allocator behind token and connection ids: reused slots, generations, epochs. */
#ifndef NG_CORE_IDGEN_H
#define NG_CORE_IDGEN_H

#include "neurograph.h"

/*
 * An id is (generation << slot_bits) | slot: tokens have 24-bit slots (the
 * record's local-id field) and 29-bit generations, connections 32-bit slots
 * and 21-bit generations, so every id stays below 2^53.
 *
 * The generation an id gets is the allocator's epoch at the moment it is
 * issued, and ids only ever grow:
 * - a runtime that never deletes issues 1, 2, 3, ... in epoch 0;
 * - a freed slot goes to `pending`, in the order slots are freed;
 * - while `ready` holds slots, the next id takes its smallest one;
 * - when `ready` is empty and more than NGI_REUSE_AFTER slots are pending (or
 *   no fresh slot is left), the pending slots become the new `ready`, sorted
 *   ascending, and the epoch advances by one: every id of the new epoch is
 *   larger than every id issued before, and a reused slot's generation is
 *   larger than the one its previous token had;
 * - otherwise the next never-used slot (`fresh`) is issued in the current
 *   epoch.
 * So a slot comes back only after more than NGI_REUSE_AFTER others were freed
 * (a stale id does not name a new token a moment later), memory follows the
 * live count (at most NGI_REUSE_AFTER + 1 slots wait), the order is a pure
 * function of the calls (deterministic, and kept by snapshots), and tables
 * that keep records in ascending id order can keep appending.
 * When the epoch reaches the largest generation, no batch forms again: the
 * pending slots are retired (never reused) and only fresh slots remain.
 */

#define NGI_REUSE_AFTER 1024 /* pending slots before a batch comes back */

typedef struct ngi_idgen {
  uint64_t epoch;   /* generation of the ids issued now */
  uint64_t fresh;   /* the smallest never-used slot (1 ...) */
  uint64_t last;    /* the last id issued, 0 before the first */
  uint64_t retired; /* slots that will never be issued again */
  uint64_t gen_max; /* the largest generation */
  uint32_t slot_max;
  unsigned slot_bits;
  uint32_t *ready; /* ready[ready_at .. ready_n): sorted ascending */
  size_t ready_at, ready_n, ready_cap;
  uint32_t *pending; /* freed in this epoch, in the order they were freed */
  size_t pending_n, pending_cap;
  uint32_t pending_min; /* smallest pending slot (valid while pending_n > 0) */
} ngi_idgen;

/* An empty allocator for slots 1 .. slot_max (< UINT32_MAX) of slot_bits bits. */
void ngi_idgen_init(ngi_idgen *g, unsigned slot_bits, uint32_t slot_max);
void ngi_idgen_free(ng_runtime *rt, ngi_idgen *g);

/* The slot and generation of an id. */
static inline uint32_t ngi_id_slot(const ngi_idgen *g, ng_id id) {
  return (uint32_t)(id & ((UINT64_C(1) << g->slot_bits) - 1));
}
static inline uint64_t ngi_id_gen(const ngi_idgen *g, ng_id id) {
  return id >> g->slot_bits;
}

/* The id the next ngi_idgen_take will issue, without changing anything (so a
 * create that fails later leaves the allocator as it was). NG_ELIMIT when
 * every slot is live or retired. */
ng_status ngi_idgen_peek(const ngi_idgen *g, ng_id *id);
/* Issue the id ngi_idgen_peek gave. Never fails, never allocates. */
void ngi_idgen_take(ngi_idgen *g);
/* Give back the slot of a deleted record's id. Never fails: when the pending
 * list cannot grow, the slot is retired instead. */
void ngi_idgen_release(ng_runtime *rt, ngi_idgen *g, ng_id id);
/* Slots freed and waiting for reuse (ready and pending). */
size_t ngi_idgen_free_count(const ngi_idgen *g);

/* Snapshots: the allocator's state is (epoch, fresh, last, retired, the ready
 * slots still to issue, the pending slots in order). ngi_idgen_restore takes
 * them as the loader validated them (every slot below fresh, none live, none
 * twice; ready ascending). fails: NG_ENOMEM, g unchanged. */
ng_status ngi_idgen_restore(ng_runtime *rt, ngi_idgen *g, uint64_t epoch, uint64_t fresh,
                            uint64_t last, uint64_t retired, const uint32_t *ready, size_t nready,
                            const uint32_t *pending, size_t npending);

#endif

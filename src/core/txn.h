/* Transactions (txn.c): the undo log behind ng_txn_*, its savepoints, and
 * the hooks the write paths call. Never installed; included through
 * internal.h.
 *
 * A transaction is the write lock held from ng_txn_begin to its end by one
 * thread (base.c marks the hold; that thread's write calls nest in it). Each
 * write logs what it overwrites, before it overwrites it, as one entry of a
 * stack of entries; a rollback pops the entries newest first, then restores
 * the scalars its frame saved. So a commit costs nothing per write, and a
 * rollback costs what the transaction wrote. What is logged:
 * - token records: the 64-byte record at a position below the table's len
 *   (or below the largest len any open frame started with: a trimmed
 *   tombstone can be overwritten by an append), before a store;
 * - token slot-map entries with their placement byte, before a change,
 *   except for slots issued fresh in the transaction (reset wholesale);
 * - connections: an append, a removal (record, links, len) and a record's
 *   old value, each undone by its exact inverse (conn_table.c);
 * - the CDNA with the grids a change replaced (kept, not destroyed);
 * - an id allocator's free lists, once per frame, before a batch of reused
 *   slots forms (the only step that rewrites them).
 * Compaction of either table waits for the outermost commit (it would move
 * every record), and a rollback resets every grid so it reindexes the
 * restored table at its next query (the same answers).
 *
 * Room: every write that nests in a transaction first finds NGI_TXN_SPARE
 * free bytes in the log (ngi_txn_enter); a write that may log more reserves
 * it (ngi_txn_reserve) before its first change. A failed reservation or any
 * NG_ENOMEM reported during a nested write rolls the whole transaction back
 * and leaves it failed: later writes fail with NG_ENOMEM, ng_txn_commit
 * reports NG_ENOMEM and ends it.
 */
#ifndef NG_CORE_TXN_H
#define NG_CORE_TXN_H

#include "neurograph.h"
#include "idgen.h"

#include <stdbool.h>
#include <stddef.h>

/* Room for the entries of any write call that does not reserve its own. */
#define NGI_TXN_SPARE 1024

/* What a frame (the transaction, or a savepoint) restores after its entries. */
typedef struct ngi_txn_frame {
  size_t log_len; /* the log's length when the frame began */
  size_t ev_len;  /* the change feed's pending length then (events.h) */
  size_t tok_len, tok_live, tok_nplaced[NG_SPACES];
  uint64_t tok_dense;
  ngi_idgen tok_ids, conn_ids; /* scalar fields only are restored */
  bool ids_saved[2];           /* tokens', connections' free lists logged in this frame */
} ngi_txn_frame;

typedef struct ngi_txn {
  bool open;   /* a transaction is open (the owner is the thread whose hold says so) */
  bool failed; /* rolled back after running out of memory; waits for its end */
  unsigned char *log;
  size_t log_len, log_cap;
  ngi_txn_frame *frames; /* frames[0]: the transaction; then the savepoints */
  size_t depth, frames_cap;
  size_t tok_len_hw;     /* the largest token-table len a frame began with */
  uint64_t tok_fresh_hw; /* the largest fresh token slot a frame began with */
  size_t conn_len_hw;    /* the largest connection-table len a frame began with */
  size_t owning;         /* entries that own memory (freed when the log is dropped) */
} ngi_txn;

typedef struct ngi_token_table ngi_token_table;
typedef struct ngi_grid ngi_grid;

/* Whether a transaction is open on rt (the caller holds rt's write lock). */
static inline bool ngi_txn_active(const ngi_txn *x) {
  return x->open;
}

/* ---- base.c calls these around a write nested in a transaction ----------- */

/* Before the write: NG_ENOMEM (under func) when the transaction failed or
 * the log cannot find its spare room (the transaction is then rolled back). */
ng_status ngi_txn_enter(ng_runtime *rt, const char *func);
/* After it: `enomem` says an NG_ENOMEM was reported meanwhile; the
 * transaction is then rolled back and failed. */
void ngi_txn_leave(ng_runtime *rt, bool enomem);

/* ---- the write paths' hooks (caller holds the write lock) ---------------- */

/* Room for `bytes` more of log entries (beyond NGI_TXN_SPARE, which the
 * write's other entries may use); NG_ENOMEM recorded under func (and
 * noticed by ngi_txn_leave). NG_OK at once outside a transaction. */
ng_status ngi_txn_reserve(ng_runtime *rt, const char *func, size_t bytes);
/* ngi_txn_reserve for ng_token_delete of live token id: its record, slot
 * and every connection it takes along. */
ng_status ngi_txn_reserve_delete(ng_runtime *rt, const char *func, ng_id id);
/* The log bytes of one entry of each kind, for reservations. */
size_t ngi_txn_size_tok_rec(void);
size_t ngi_txn_size_tok_slot(void);
size_t ngi_txn_size_conn(void);
size_t ngi_txn_size_cdna(void);
/* Before ngi_idgen_take on g (rt's token or connection allocator): log its
 * free lists if the take will rewrite them. NG_ENOMEM, nothing changed. */
ng_status ngi_txn_before_take(ng_runtime *rt, ngi_idgen *g);
/* Token table (t->undo is the open transaction, NULL outside one): the
 * record at `pos` and the slot-map entry of `local` are about to change. */
void ngi_txn_log_tok_rec(ngi_txn *x, const ngi_token_table *t, size_t pos);
void ngi_txn_log_tok_slot(ngi_txn *x, const ngi_token_table *t, uint32_t local);
/* Connections: an append into slot c->len, a removal of `slot`, a change of
 * the record at `slot`. No-ops outside a transaction. */
void ngi_txn_log_conn_append(ng_runtime *rt);
void ngi_txn_log_conn_remove(ng_runtime *rt, uint32_t slot);
void ngi_txn_log_conn_rec(ng_runtime *rt, uint32_t slot);
/* The CDNA is about to change; the grids in replaced[] (by space, NULL
 * where none) leave the runtime. Returns true when the transaction took
 * them (to put back on rollback), false when the caller destroys them. */
bool ngi_txn_log_cdna(ng_runtime *rt, ngi_grid *const replaced[NG_SPACES]);

/* ---- runtime.c ------------------------------------------------------------ */

/* A runtime about to be destroyed by the thread that holds its transaction
 * open: roll it back and record that for ng_last_error. */
void ngi_txn_abandon(ng_runtime *rt, const char *func);
/* Free the log (a runtime being destroyed, no transaction open). */
void ngi_txn_free(ng_runtime *rt);

#endif /* NG_CORE_TXN_H */

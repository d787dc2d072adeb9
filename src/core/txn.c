/* Transactions: the undo log, savepoints and ng_txn_* (design in txn.h). */
#include "conn_table.h"
#include "internal.h"

#include <assert.h>
#include <stddef.h>
#include <string.h>

/* ---- the log -------------------------------------------------------------- */

/* An entry is its payload followed by a trailer {kind, payload size}, so the
 * log reads back newest first. Payloads are copied with memcpy (the log is
 * a byte stack: no alignment). */
enum {
  E_TOK_REC = 1, /* uint32 pos, ng_token */
  E_TOK_SLOT,    /* uint32 local, uint64 entry, uint8 placed */
  E_CONN_APPEND, /* uint32 slot, uint8 had_old, ng_connection, conn_meta */
  E_CONN_REMOVE, /* uint32 slot, uint32 old_len, ng_connection, conn_meta */
  E_CONN_REC,    /* uint32 slot, ng_connection */
  E_CDNA,        /* ng_cdna, ngi_grid *[NG_SPACES] (owned) */
  E_IDS          /* uint8 which (0 tokens, 1 connections), ngi_idgen (owns ready/pending) */
};

typedef struct trailer {
  uint32_t kind, size;
} trailer;

typedef struct conn_payload {
  uint32_t slot, extra; /* extra: had_old (append) or old_len (remove) */
  ng_connection rec;
  conn_meta meta;
} conn_payload;

typedef struct tok_rec_payload {
  uint32_t pos;
  ng_token rec;
} tok_rec_payload;

typedef struct tok_slot_payload {
  uint64_t entry;
  uint32_t local;
  uint8_t placed;
} tok_slot_payload;

typedef struct cdna_payload {
  ng_cdna cdna;
  ngi_grid *grids[NG_SPACES];
} cdna_payload;

typedef struct ids_payload {
  ngi_idgen g;
  uint32_t which;
} ids_payload;

size_t ngi_txn_size_tok_rec(void) {
  return sizeof(tok_rec_payload) + sizeof(trailer);
}
size_t ngi_txn_size_tok_slot(void) {
  return sizeof(tok_slot_payload) + sizeof(trailer);
}
size_t ngi_txn_size_conn(void) {
  return sizeof(conn_payload) + sizeof(trailer);
}
size_t ngi_txn_size_cdna(void) {
  return sizeof(cdna_payload) + sizeof(trailer);
}

/* Grow the log so `bytes` more fit. false on failure, the log unchanged. */
static bool log_room(ng_runtime *rt, ngi_txn *x, size_t bytes) {
  if (x->log_cap - x->log_len >= bytes) return true;
  if (bytes > SIZE_MAX / 2 - x->log_len) return false;
  size_t cap = x->log_cap ? x->log_cap : 4096;
  while (cap - x->log_len < bytes)
    cap *= 2;
  unsigned char *p = ngi_realloc(rt, x->log, x->log_cap, cap);
  if (!p) return false;
  x->log = p;
  x->log_cap = cap;
  return true;
}

/* Append an entry; its room was reserved (ngi_txn_enter, ngi_txn_reserve). */
static void log_push(ngi_txn *x, uint32_t kind, const void *payload, size_t size) {
  assert(x->log_cap - x->log_len >= size + sizeof(trailer));
  trailer tr = {kind, (uint32_t)size};
  memcpy(x->log + x->log_len, payload, size);
  memcpy(x->log + x->log_len + size, &tr, sizeof tr);
  x->log_len += size + sizeof tr;
}

/* The newest entry: its kind, and its payload copied into `out` (room for
 * the largest payload). Pops it. */
static uint32_t log_pop(ngi_txn *x, void *out) {
  trailer tr;
  memcpy(&tr, x->log + x->log_len - sizeof tr, sizeof tr);
  x->log_len -= sizeof tr + tr.size;
  memcpy(out, x->log + x->log_len, tr.size);
  return tr.kind;
}

typedef union any_payload {
  tok_rec_payload tr;
  tok_slot_payload ts;
  conn_payload c;
  cdna_payload cd;
  ids_payload ids;
} any_payload;

/* ---- undo ----------------------------------------------------------------- */

static ngi_idgen *ids_of(ng_runtime *rt, uint32_t which) {
  return which ? ngi_conns_ids(rt->conns) : &rt->tokens.ids;
}

/* The scalar state of an allocator (its arrays stay where they are). */
static void ids_scalars(ngi_idgen *g, const ngi_idgen *from) {
  g->epoch = from->epoch;
  g->fresh = from->fresh;
  g->last = from->last;
  g->retired = from->retired;
  g->ready_at = from->ready_at;
  g->ready_n = from->ready_n;
  g->pending_n = from->pending_n;
  g->pending_min = from->pending_min;
}

/* Free what an entry owns, when the log drops it without undoing it. */
static void drop_entry(ng_runtime *rt, uint32_t kind, any_payload *p) {
  if (kind == E_CDNA) {
    for (int s = 0; s < NG_SPACES; s++)
      ngi_grid_destroy(rt, p->cd.grids[s]);
  } else if (kind == E_IDS) {
    ngi_idgen_free(rt, &p->ids.g);
  }
}

/* Undo one entry. Never allocates, never fails. */
static void undo_entry(ng_runtime *rt, uint32_t kind, any_payload *p) {
  ngi_token_table *t = &rt->tokens;
  switch (kind) {
  case E_TOK_REC:
    ngi_tok_store(t, p->tr.pos, &p->tr.rec);
    break;
  case E_TOK_SLOT: {
    unsigned k = ngi_seg_of(p->ts.local - 1u, NGI_SLOT_LB);
    size_t at = p->ts.local - 1u - ngi_seg_base(k, NGI_SLOT_LB);
    NGI_STORE(&t->slot_seg[k][at], p->ts.entry, RELAXED);
    t->place_seg[k][at] = p->ts.placed; /* the counts come back with the frame */
    break;
  }
  case E_CONN_APPEND:
    ngi_conns_unappend(rt->conns, p->c.slot, p->c.extra ? &p->c.rec : NULL, &p->c.meta);
    break;
  case E_CONN_REMOVE:
    ngi_conns_unremove(rt->conns, p->c.slot, p->c.extra, &p->c.rec, &p->c.meta);
    break;
  case E_CONN_REC:
    rt->conns->recs[p->c.slot] = p->c.rec;
    break;
  case E_CDNA:
    rt->cdna = p->cd.cdna;
    ngi_units_sync(rt); /* the units may be changing back */
    ngi_metrics_sync(&rt->metrics, &rt->cdna);
    for (int s = 0; s < NG_SPACES; s++) {
      if (!p->cd.grids[s]) continue;
      ngi_grid_destroy(rt, rt->grids[s]);
      rt->grids[s] = p->cd.grids[s];
    }
    break;
  case E_IDS: {
    ngi_idgen *g = ids_of(rt, p->ids.which);
    ngi_idgen_free(rt, g);
    *g = p->ids.g; /* the saved free lists become the allocator's */
    break;
  }
  default:
    assert(0 && "unknown undo entry");
  }
}

/* Undo everything frame f logged and restore what it saved; the frames above
 * it and f itself end. Never allocates, never fails. */
static void rollback_to(ng_runtime *rt, size_t f) {
  ngi_txn *x = &rt->txn;
  ngi_token_table *t = &rt->tokens;
  const ngi_txn_frame *fr = &x->frames[f];
  t->undo = NULL; /* the restores below are not logged */
  ngi_ev_cut(rt, fr->ev_len); /* what was undone never happened for the feed */
  any_payload p;
  while (x->log_len > fr->log_len) {
    uint32_t kind = log_pop(x, &p);
    if (kind == E_CDNA || kind == E_IDS) x->owning--;
    undo_entry(rt, kind, &p);
  }
  /* Slots issued fresh since the frame began go back to never used. */
  for (uint64_t local = fr->tok_ids.fresh; local < t->ids.fresh; local++) {
    unsigned k = ngi_seg_of((size_t)local - 1u, NGI_SLOT_LB);
    size_t at = (size_t)local - 1u - ngi_seg_base(k, NGI_SLOT_LB);
    NGI_STORE(&t->slot_seg[k][at], UINT64_MAX, RELAXED);
    t->place_seg[k][at] = 0;
  }
  t->len = fr->tok_len;
  t->live = fr->tok_live;
  memcpy(t->nplaced, fr->tok_nplaced, sizeof t->nplaced);
  atomic_store_explicit(&t->dense, fr->tok_dense, memory_order_relaxed);
  ids_scalars(&t->ids, &fr->tok_ids);
  ids_scalars(ngi_conns_ids(rt->conns), &fr->conn_ids);
  /* Each index reindexes the restored table at its next query. */
  for (int s = 0; s < NG_SPACES; s++)
    ngi_grid_reset(rt, rt->grids[s]);
  x->depth = f;
  t->undo = x;
}

/* Drop every entry (a commit), freeing what they own. Walks the log only
 * when some entry owns memory (a CDNA change, a batch of reused ids). */
static void log_drop(ng_runtime *rt) {
  ngi_txn *x = &rt->txn;
  any_payload p;
  while (x->owning > 0 && x->log_len > 0) {
    uint32_t kind = log_pop(x, &p);
    if (kind == E_CDNA || kind == E_IDS) {
      x->owning--;
      drop_entry(rt, kind, &p);
    }
  }
  x->log_len = 0;
  /* A large log goes back to the host; a small one serves the next. */
  if (x->log_cap > (size_t)1 << 20) {
    ngi_free(rt, x->log, x->log_cap);
    x->log = NULL;
    x->log_cap = 0;
  }
}

/* Begin a frame: remember where the log is and the scalars it restores. */
static ng_status frame_push(ng_runtime *rt, const char *func) {
  ngi_txn *x = &rt->txn;
  if (x->depth == x->frames_cap) {
    size_t cap = x->frames_cap ? 2 * x->frames_cap : 4;
    ngi_txn_frame *f = ngi_realloc_array(rt, x->frames, x->frames_cap, cap, sizeof *f);
    if (!f) return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", func);
    x->frames = f;
    x->frames_cap = cap;
  }
  const ngi_token_table *t = &rt->tokens;
  ngi_txn_frame *fr = &x->frames[x->depth++];
  fr->log_len = x->log_len;
  fr->ev_len = ngi_ev_mark(rt);
  fr->tok_len = t->len;
  fr->tok_live = t->live;
  memcpy(fr->tok_nplaced, t->nplaced, sizeof fr->tok_nplaced);
  fr->tok_dense = atomic_load_explicit(&t->dense, memory_order_relaxed);
  fr->tok_ids = t->ids;
  fr->conn_ids = *ngi_conns_ids(rt->conns);
  fr->ids_saved[0] = fr->ids_saved[1] = false;
  if (t->len > x->tok_len_hw) x->tok_len_hw = t->len;
  if (t->ids.fresh > x->tok_fresh_hw) x->tok_fresh_hw = t->ids.fresh;
  if (rt->conns->len > x->conn_len_hw) x->conn_len_hw = rt->conns->len;
  return NG_OK;
}

/* Roll everything back and mark the transaction failed (out of memory). */
static void txn_fail(ng_runtime *rt) {
  ngi_txn *x = &rt->txn;
  size_t depth = x->depth;
  rollback_to(rt, 0);
  x->depth = depth; /* the frames still end one by one */
  x->failed = true;
}

/* End the transaction: drop the log, settle deferred work, unlock. The one
 * commit point of a transaction (commit true) and its one rollback point:
 * where a change feed or a journal takes the committed writes, and a
 * rolled-back transaction leaves nothing. */
static void txn_end(ng_runtime *rt, bool commit) {
  ngi_txn *x = &rt->txn;
  if (commit) {
    log_drop(rt);
    rt->tokens.undo = NULL; /* what follows is not undone */
    ngi_tokens_tidy(&rt->tokens);
    ngi_conns_tidy(rt->conns);
  } else {
    rollback_to(rt, 0);
  }
  x->log_len = 0;
  x->depth = 0;
  x->open = x->failed = false;
  x->tok_len_hw = x->conn_len_hw = 0;
  x->tok_fresh_hw = 0;
  rt->tokens.undo = NULL;
  ngi_txn_hold(rt, false);
  ngi_write_unlock(rt);
}

/* ---- hooks ---------------------------------------------------------------- */

ng_status ngi_txn_enter(ng_runtime *rt, const char *func) {
  ngi_txn *x = &rt->txn;
  if (x->failed)
    return ngi_fail(rt, NG_ENOMEM,
                    "%s: the transaction was rolled back when memory ran out; end it first", func);
  if (log_room(rt, x, NGI_TXN_SPARE)) return NG_OK;
  txn_fail(rt);
  return ngi_fail(rt, NG_ENOMEM, "%s: out of memory growing the transaction's log (rolled back)",
                  func);
}

void ngi_txn_leave(ng_runtime *rt, bool enomem) {
  if (enomem && !rt->txn.failed) txn_fail(rt);
}

ng_status ngi_txn_reserve(ng_runtime *rt, const char *func, size_t bytes) {
  ngi_txn *x = &rt->txn;
  /* On top of the spare room, which the write's other entries use. */
  if (!x->open || (bytes <= SIZE_MAX - NGI_TXN_SPARE && log_room(rt, x, bytes + NGI_TXN_SPARE)))
    return NG_OK;
  return ngi_fail(rt, NG_ENOMEM, "%s: out of memory growing the transaction's log", func);
}

ng_status ngi_txn_reserve_delete(ng_runtime *rt, const char *func, ng_id id) {
  if (!rt->txn.open) return NG_OK;
  const adj_entry *e = ngi_conns_find_adj(rt->conns, NG_TOKEN_SLOT(id));
  size_t links = e ? (size_t)e->out_n + e->in_n : 0;
  return ngi_txn_reserve(rt, func, links * ngi_txn_size_conn());
}

ng_status ngi_txn_before_take(ng_runtime *rt, ngi_idgen *g) {
  ngi_txn *x = &rt->txn;
  if (!x->open) return NG_OK;
  uint32_t which = g == &rt->tokens.ids ? 0 : 1;
  ngi_txn_frame *fr = &x->frames[x->depth - 1];
  ng_id next;
  /* Only a take that forms a new epoch's batch rewrites the free lists. */
  if (fr->ids_saved[which] || ngi_idgen_peek(g, &next) != NG_OK || ngi_id_gen(g, next) == g->epoch)
    return NG_OK;
  ids_payload p;
  memset(&p, 0, sizeof p);
  p.which = which;
  if (!log_room(rt, x, sizeof p + sizeof(trailer)) ||
      ngi_idgen_restore(rt, &p.g, g->epoch, g->fresh, g->last, g->retired, g->ready, g->ready_n,
                        g->pending, g->pending_n) != NG_OK)
    return NG_ENOMEM;
  p.g.slot_bits = g->slot_bits;
  p.g.slot_max = g->slot_max;
  p.g.gen_max = g->gen_max;
  ids_scalars(&p.g, g);
  log_push(x, E_IDS, &p, sizeof p);
  x->owning++;
  fr->ids_saved[which] = true;
  return NG_OK;
}

void ngi_txn_log_tok_rec(ngi_txn *x, const ngi_token_table *t, size_t pos) {
  if (pos >= t->len && pos >= x->tok_len_hw) return; /* above the frame: dropped with len */
  tok_rec_payload p;
  p.pos = (uint32_t)pos;
  p.rec = *ngi_tok_at(t, pos);
  log_push(x, E_TOK_REC, &p, sizeof p);
}

void ngi_txn_log_tok_slot(ngi_txn *x, const ngi_token_table *t, uint32_t local) {
  if (local >= x->tok_fresh_hw) return; /* issued fresh in the transaction: reset wholesale */
  tok_slot_payload p;
  memset(&p, 0, sizeof p);
  p.local = local;
  p.entry = ngi_slot_entry(t, local);
  p.placed = ngi_placed(t, local);
  log_push(x, E_TOK_SLOT, &p, sizeof p);
}

void ngi_txn_log_conn_append(ng_runtime *rt) {
  ngi_txn *x = &rt->txn;
  if (!x->open) return;
  const ngi_conns *c = rt->conns;
  conn_payload p;
  memset(&p, 0, sizeof p);
  p.slot = (uint32_t)c->len;
  if (c->len < x->conn_len_hw) { /* a trimmed tombstone is overwritten */
    p.extra = 1;
    p.rec = c->recs[c->len];
    p.meta = c->meta[c->len];
  }
  /* Only the slot when nothing was there: a batch of links logs 16 bytes each. */
  log_push(x, E_CONN_APPEND, &p, p.extra ? sizeof p : offsetof(conn_payload, rec));
}

void ngi_txn_log_conn_remove(ng_runtime *rt, uint32_t slot) {
  ngi_txn *x = &rt->txn;
  if (!x->open) return;
  const ngi_conns *c = rt->conns;
  conn_payload p;
  p.slot = slot;
  p.extra = (uint32_t)c->len;
  p.rec = c->recs[slot];
  p.meta = c->meta[slot];
  log_push(x, E_CONN_REMOVE, &p, sizeof p);
}

void ngi_txn_log_conn_rec(ng_runtime *rt, uint32_t slot) {
  ngi_txn *x = &rt->txn;
  if (!x->open) return;
  conn_payload p;
  memset(&p, 0, sizeof p);
  p.slot = slot;
  p.rec = rt->conns->recs[slot];
  log_push(x, E_CONN_REC, &p, sizeof p);
}

bool ngi_txn_log_cdna(ng_runtime *rt, ngi_grid *const replaced[NG_SPACES]) {
  ngi_txn *x = &rt->txn;
  if (!x->open) return false;
  cdna_payload p;
  p.cdna = rt->cdna;
  memcpy(p.grids, replaced, sizeof p.grids);
  log_push(x, E_CDNA, &p, sizeof p);
  x->owning++;
  return true;
}

void ngi_txn_abandon(ng_runtime *rt, const char *func) {
  if (!rt->txn.open || !ngi_txn_holds(rt)) return;
  txn_end(rt, false);
  ngi_fail(rt, NG_EBUSY, "%s: a transaction was still open; it was rolled back", func);
}

void ngi_txn_free(ng_runtime *rt) {
  ngi_txn *x = &rt->txn;
  ngi_free(rt, x->log, x->log_cap);
  ngi_free(rt, x->frames, x->frames_cap * sizeof *x->frames);
  memset(x, 0, sizeof *x);
}

/* ---- the public calls ----------------------------------------------------- */

/* NG_OK when the calling thread holds rt's transaction; else NG_EINVAL. */
static ng_status check_owner(ng_runtime *rt, const char *func) {
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", func);
  if (!ngi_txn_holds(rt))
    return ngi_fail(rt, NG_EINVAL, "%s: no transaction is open on this runtime in this thread",
                    func);
  return NG_OK;
}

ng_status ng_txn_begin(ng_runtime *rt) {
  static const char fn[] = "ng_txn_begin";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (ngi_txn_holds(rt))
    return ngi_fail(rt, NG_EBUSY,
                    "%s: this thread already has a transaction open on this runtime (at savepoint "
                    "depth %zu): commit or roll it back first, or take a savepoint",
                    fn, rt->txn.depth - 1);
  ng_status st = ngi_txn_hold_room(rt, fn);
  if (st == NG_OK) st = ngi_write_lock(rt, fn);
  if (st != NG_OK) return st;
  st = frame_push(rt, fn);
  if (st != NG_OK) {
    ngi_write_unlock(rt);
    return st;
  }
  rt->txn.open = true;
  rt->txn.failed = false;
  rt->txn.owning = 0;
  rt->tokens.undo = &rt->txn;
  ngi_txn_hold(rt, true);
  return NG_OK;
}

ng_status ng_txn_commit(ng_runtime *rt) {
  static const char fn[] = "ng_txn_commit";
  ng_status st = check_owner(rt, fn);
  if (st != NG_OK) return st;
  bool failed = rt->txn.failed;
  txn_end(rt, !failed);
  if (failed)
    return ngi_fail(rt, NG_ENOMEM,
                    "%s: the transaction ran out of memory and was rolled back; nothing committed",
                    fn);
  return NG_OK;
}

ng_status ng_txn_rollback(ng_runtime *rt) {
  ng_status st = check_owner(rt, "ng_txn_rollback");
  if (st != NG_OK) return st;
  txn_end(rt, false);
  return NG_OK;
}

ng_status ng_txn_savepoint(ng_runtime *rt, ng_savepoint *out) {
  static const char fn[] = "ng_txn_savepoint";
  ng_status st = check_owner(rt, fn);
  if (st != NG_OK) return st;
  if (!out) return ngi_fail(rt, NG_EINVAL, "%s: out must not be NULL", fn);
  st = frame_push(rt, fn);
  if (st != NG_OK) return st;
  *out = (ng_savepoint)rt->txn.depth - 1;
  return NG_OK;
}

/* The frame of savepoint sp, or NG_EINVAL. */
static ng_status check_savepoint(ng_runtime *rt, const char *fn, ng_savepoint sp) {
  ng_status st = check_owner(rt, fn);
  if (st != NG_OK) return st;
  if (sp == 0 || sp >= rt->txn.depth)
    return ngi_fail(rt, NG_EINVAL, "%s: savepoint %u is not open (open: 1..%zu)", fn, (unsigned)sp,
                    rt->txn.depth - 1);
  return NG_OK;
}

ng_status ng_txn_rollback_to(ng_runtime *rt, ng_savepoint sp) {
  ng_status st = check_savepoint(rt, "ng_txn_rollback_to", sp);
  if (st != NG_OK) return st;
  if (rt->txn.failed)
    rt->txn.depth = sp; /* everything is undone already */
  else
    rollback_to(rt, sp);
  return NG_OK;
}

ng_status ng_txn_release(ng_runtime *rt, ng_savepoint sp) {
  ng_status st = check_savepoint(rt, "ng_txn_release", sp);
  if (st != NG_OK) return st;
  rt->txn.depth = sp; /* its entries now belong to the frame below */
  return NG_OK;
}

bool ng_txn_open(ng_runtime *rt) {
  return rt && ngi_txn_holds(rt);
}

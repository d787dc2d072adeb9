/* Internal interfaces shared by the files of the storage core (never installed). */
#ifndef NG_CORE_INTERNAL_H
#define NG_CORE_INTERNAL_H

#include "neurograph.h"
#include "base.h"
#include "events.h"
#include "idgen.h"
#include "journal.h"
#include "metrics.h"
#include "token_table.h"
#include "txn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/types.h>

/* Compile-time checks that the records are the on-disk images. */
_Static_assert(sizeof(float) == 4, "float must be IEEE-754 binary32");
_Static_assert(sizeof(ng_token) == 64, "ng_token must be 64 bytes");
_Static_assert(sizeof(ng_connection) == 64, "ng_connection must be 64 bytes");
_Static_assert(sizeof(ng_cdna) == 384, "ng_cdna must be 384 bytes");

/* ---- records.c ---------------------------------------------------------- */

/* Write the reason into why[0..why_size) (if why is non-NULL) and return
 * `status`: the verdicts of the ng_*_validate and ng_coord_check calls. */
ng_status ngi_reject(ng_status status, char *why, size_t why_size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* The fixed-point codec of one space (or u8 field), as issue 14 defines it:
 * a raw integer k reads as decode(k) x scale, decode(k) = k / base being the
 * original's (base: the space's fixed-point scale, ng_space_scale; scale:
 * its dimension scale, 1.0 by default). In double for Lua (no float in
 * between), in float for the C API and the grid's distances (at scale 1.0
 * the original's float division exactly). records.c has the encoder. */
typedef struct ngi_unit {
  double base, scale;
  float fbase, fscale;
} ngi_unit;

static inline void ngi_unit_make(ngi_unit *u, float base, float scale) {
  u->base = base;
  u->scale = scale;
  u->fbase = base;
  u->fscale = scale;
}
static inline double ngi_unit_decode(const ngi_unit *u, int32_t raw) {
  return (double)raw / u->base * u->scale;
}
static inline float ngi_unit_decode_f(const ngi_unit *u, int32_t raw) {
  return (float)raw / u->fbase * u->fscale;
}
enum { NGI_ENC_OK = 0, NGI_ENC_RANGE, NGI_ENC_NAN };
/* Encode v into lo..hi: truncation toward zero, except that a whole number
 * of units (decode(k) == v as a double, or as a float) is k. NGI_ENC_OK;
 * NGI_ENC_RANGE (*raw saturated to lo or hi); NGI_ENC_NAN (*raw 0). */
int ngi_unit_encode(const ngi_unit *u, double v, int32_t lo, int32_t hi, int32_t *raw);
/* ng_coord_check in unit u (a runtime's space). */
ng_status ngi_coord_check(const ngi_unit *u, int space, double v, char *why, size_t why_size);

/* coords.c: encode xyz (space's units in rt) into raw, the rule of every store call: a value
 * that does not fit is NG_EINVAL, recorded for `fn` naming the axis, the space and the value,
 * with raw untouched. Caller holds a lock (reads the units). */
ng_status ngi_encode_xyz(ng_runtime *rt, const char *fn, int space, const double xyz[3],
                         int16_t raw[3]);
/* coords.c: NG_EINVAL (recorded for `fn`) unless space is 0..7. */
ng_status ngi_check_space(ng_runtime *rt, const char *fn, int space);

/* runtime.c: the units of the spaces of CDNA c (its dimension scales). */
void ngi_units_of(const ng_cdna *c, ngi_unit units[NG_SPACES]);
/* runtime.c: make rt->units those of rt->cdna, the one way they change once
 * the runtime exists; if any space's unit changed, the zones' indexes are
 * rebuilt before their next lookup (ngi_zones_rescaled). Caller holds the
 * write lock. */
void ngi_units_sync(ng_runtime *rt);
/* runtime.c: install the validated CDNA c exactly as given (journal replay):
 * the coordinates of the spaces whose scale changes re-encoded as
 * ng_cdna_set does it, the grids of changed spaces rebuilt. Caller is the
 * runtime's only user. NG_OK or NG_ENOMEM (nothing changed). */
ng_status ngi_cdna_restore(ng_runtime *rt, const ng_cdna *c);

/* ---- cdna.c ------------------------------------------------------------- */

/* Apply the preset of `profile` (a known NG_PROFILE_*) to `d`: profile_id and
 * the fields that profile defines (degree limits, rates, added flag bits);
 * every other field is left as it is. The checksum is not updated. */
void ngi_cdna_apply_preset(ng_cdna *d, uint32_t profile);

/* ---- conn_table.c: the connection table and adjacency ------------------- */

typedef struct ngi_conns ngi_conns; /* defined in conn_table.h */

ng_status ngi_conns_new(ng_runtime *rt, size_t initial, ngi_conns **out);
void ngi_conns_destroy(ng_runtime *rt, ngi_conns *c);
/* Remove every connection that starts or ends at token `id`; returns how
 * many. Never fails (frees only). Caller holds the write lock. */
size_t ngi_conns_remove_token(ng_runtime *rt, ngi_conns *c, ng_id id);
/* Remove every connection; returns how many. Never fails. */
size_t ngi_conns_clear(ng_runtime *rt, ngi_conns *c);
size_t ngi_conns_count(const ngi_conns *c);
/* The connection table's id allocator. */
ngi_idgen *ngi_conns_ids(ngi_conns *c);
/* Test hook only (reach the slot limit without creating 4G connections):
 * make slots below `fresh` count as used and retired. Caller holds no lock. */
void ngi_conns_skip_slots(ng_runtime *rt, uint32_t fresh);

/* ---- grid_index.c, grid_query.c, grid_info.c: one index per space ------ */

typedef struct ngi_grid ngi_grid; /* defined in grid_index.h */

/* An index for `space` in `unit` (copied) with cells of `cell_size` decoded
 * units (reported by ng_grid_info; the index picks its own resolution). It
 * is built lazily: at its first query it indexes every live token of
 * rt->tokens placed in the space, in bulk. */
ng_status ngi_grid_new(ng_runtime *rt, int space, float cell_size, const ngi_unit *unit,
                       ngi_grid **out);
void ngi_grid_destroy(ng_runtime *rt, ngi_grid *g);
/* Move `id` from raw `from` (where g holds it) to `to` in one step: every
 * change of a live token's coordinates goes through here (ng_token_update,
 * the batch). Ids the index has not absorbed yet (ids only grow: a token
 * created since its last query) are read from rt->tokens instead, so a
 * create needs no insert and their moves do nothing; the caller keeps the
 * table in step. Allocates only when a main entry leaves its cell; NG_ENOMEM
 * then changes nothing. Moving back (to -> from) what a successful move did
 * never allocates, so a write that moved several spaces undoes them safely. */
ng_status ngi_grid_move(ng_runtime *rt, ngi_grid *g, ng_id id, const int16_t from[3],
                        const int16_t to[3]);
/* Remove id at raw xyz (a delete, or the token leaving the space). Never
 * fails, never allocates. Call it while rt->tokens still holds the token's
 * position and placement. */
void ngi_grid_remove(ng_runtime *rt, ngi_grid *g, ng_id id, const int16_t xyz[3]);
/* Index live token `id`, not placed in g's space until now, at raw xyz (it
 * is being placed there); the caller then marks it placed in the table.
 * Allocates a side entry only for a token the index has absorbed already;
 * NG_ENOMEM then changes nothing. Undone by ngi_grid_remove. */
ng_status ngi_grid_insert(ng_runtime *rt, ngi_grid *g, ng_id id, const int16_t xyz[3]);
/* Test hook: whether g's index keeps its internal invariants (crowded cells
 * sorted, their sub-directories exact). Caller holds a lock. */
bool ngi_grid_consistent(const ngi_grid *g);
/* Start loading what a move of `tok` in g will touch, in three stages (0, 1,
 * 2), each a level deeper in the index; a batch calls each stage a few
 * entries after the one before, with the same *cell (stage 0 sets it). A
 * hint only: changes nothing else. */
void ngi_grid_prefetch(const ngi_grid *g, const ng_token *tok, int stage, uint32_t *cell);
/* Remove everything (keeps the cell size); tokens created afterwards are
 * indexed as usual. Never fails. */
void ngi_grid_clear(ng_runtime *rt, ngi_grid *g);
/* Forget everything, as a new index: the next query indexes rt->tokens
 * afresh (a rolled-back transaction's grids). g may be NULL. Never fails. */
void ngi_grid_reset(ng_runtime *rt, ngi_grid *g);

/* ---- graph.c: graph walks ------------------------------------------------ */

/* The buffers a walk reuses (graph.c); the runtime keeps one in rt->graph. */
typedef struct ngi_graph_scratch ngi_graph_scratch;
/* Free s (may be NULL). Never fails. */
void ngi_graph_free(ng_runtime *rt, ngi_graph_scratch *s);

/* ---- crc32c.c, snapshot_*.c: snapshots ----------------------------------- */

/* CRC-32C (Castagnoli) of n bytes, continuing `crc` (start with 0; the result
 * of one call continues in the next). */
uint32_t ngi_crc32c(uint32_t crc, const void *data, size_t n);
/* The same, always with the portable table code (ngi_crc32c uses the CPU's
 * crc32 instruction when it has one); for tests that compare the two. */
uint32_t ngi_crc32c_portable(uint32_t crc, const void *data, size_t n);
/* ng_snapshot_load from memory: data[0..len) is a whole snapshot file; `name`
 * (may be NULL) names it in messages. Same guarantees and failures. Lets the
 * fuzzer and tests load without the disk. */
ng_status ngi_snapshot_load_mem(const void *data, size_t len, const ng_config *cfg,
                                const char *name, ng_runtime **out);
/* conn_table.c: fill an empty connection table with n records, record k
 * under the id gens[k] << 32 | slots[k] (gens NULL: generation 0), as
 * snapshot_load.c has fully validated them (ids ascending, slots below the
 * allocator's fresh slot, endpoints live, no duplicates) and after it
 * restored the allocator. All or nothing: NG_ENOMEM (or NG_ECORRUPT if the
 * cheap invariants it re-checks fail) leaves c empty. */
ng_status ngi_conns_restore(ng_runtime *rt, ngi_conns *c, const ng_connection *recs,
                            const uint32_t *slots, const uint32_t *gens, size_t n);
/* conn_table.c: the same, taking ownership of `recs` (ngi_alloc'ed, room for
 * rec_cap >= n records), which becomes the record array: no second copy of
 * the records. Frees recs on every failure. */
ng_status ngi_conns_restore_owned(ng_runtime *rt, ngi_conns *c, ng_connection *recs,
                                  size_t rec_cap, size_t n, const uint32_t *slots,
                                  const uint32_t *gens);

/* snapshot_bg.c: start a background save of rt to `path` (ng_snapshot_save_background, whose
 * guarantees and failures it has; `fn` names the caller in messages). Needs: this thread
 * holds a lock on rt, read or write (the journal's checkpoint calls it under the write lock),
 * and is not inside a transaction (its uncommitted writes would be saved). Holds the lock no
 * longer than the fork. */
ng_status ngi_snapshot_save_background(ng_runtime *rt, const char *fn, const char *path,
                                       ng_save **out);
/* snapshot_bg.c: one more reference to job (ng_save_free drops one). */
void ngi_save_ref(ng_save *job);
/* snapshot_bg.c: at a runtime's end, wait for its background save still running, then drop
 * the runtime's reference to it. */
void ngi_bgsave_end(ng_runtime *rt);
/* Test hook: the child process of a background save (-1 if fork failed), for tests that stop
 * or kill it. */
pid_t ngi_save_child(ng_save *job);

/* ---- metrics.c ------------------------------------------------------------ */

/* Fill the memory, counter and latency figures of *out (ng_runtime_stats;
 * the caller holds the read lock). */
void ngi_stats_extend(ng_runtime *rt, ng_stats *out);

/* ---- the runtime -------------------------------------------------------- */

/* How often a long operation reports progress (ng_progress_fn): every this
 * many bytes (save, load) or records (export, import). */
enum { NGI_PROGRESS_BYTES = 1 << 20, NGI_PROGRESS_RECORDS = 4096 };

struct ng_runtime {
  ng_alloc_fn alloc;
  void *alloc_ud;
  ng_clock_fn clock;
  void *clock_ud;
  ng_progress_fn progress; /* saves and exports report to it (NULL: none) */
  void *progress_ud;
  atomic_int refs;
  atomic_size_t bytes_in_use;
  atomic_size_t bytes_peak;
  pthread_rwlock_t lock;
  ng_cdna cdna;
  /* The write sequence: odd while a thread holds the write lock (set right
   * after taking it, made even right before releasing it). Lets ng_token_get
   * read without the lock and check afterwards that no writer ran. Placed
   * after the CDNA, away from the lock's cache line, which readers write. */
  _Atomic unsigned wseq;
  ngi_token_table tokens;
  ngi_conns *conns;
  ngi_grid *grids[NG_SPACES];
  ngi_unit units[NG_SPACES]; /* the codec of each space, from cdna.dimension_scales */
  ngi_txn txn;               /* the open transaction, if any (txn.h); under the write lock */
  ngi_events ev;             /* the change feed, subscriptions and zones (events.h) */
  ngi_metrics metrics;       /* counters and latencies (metrics.h), when the CDNA enables them */
  /* The graph walks' scratch, taken by one walk at a time (graph.c); NULL
   * while one runs or before the first. */
  ngi_graph_scratch *_Atomic graph;
  pthread_mutex_t bg_lock;   /* guards bg */
  ng_save *bg;               /* the last background save (snapshot_bg.c), running or not */
  ngi_journal *journal;      /* a durable world's journal (journal.h); NULL: in memory only */
};

/* ---- events.h's inline gate for moves (needs the runtime's fields) ------- */

/* The cell of gate g holding raw point p and its finer cell, as `map`
 * gives them (events.h). */
static inline uint32_t ngi_gate_code(const ngi_zone_gate *g, const int16_t *p) {
  uint16_t q[3];
  memcpy(q, p, sizeof q);
  return g->map[q[0] >> 8] | g->map[256 + (q[1] >> 8)] | g->map[512 + (q[2] >> 8)];
}

/* The cell part of gate code `code`: its index in the gate's bitmap. */
static inline uint32_t ngi_gate_code_cell(uint32_t code) {
  return code & ((1u << NGI_GATE_CELL_BITS) - 1u);
}

/* The cell of gate g holding raw point p. */
static inline uint32_t ngi_gate_cell(const ngi_zone_gate *g, const int16_t *p) {
  return ngi_gate_code_cell(ngi_gate_code(g, p));
}

static inline bool ngi_gate_occupied(const ngi_zone_gate *g, uint32_t cell) {
  return g->bits[cell / 64] >> (cell % 64) & 1u;
}

/* Whether a token going from raw `from` to raw `to` (either NULL: not
 * placed there) has an end in a cell of gate g that meets a zone. Most moves
 * are far from every zone and stop here; the others ask the finer cells
 * (ngi_zones_move). */
static inline bool ngi_gate_near(const ngi_zone_gate *g, const int16_t *from, const int16_t *to) {
  if (from && to) {
    uint32_t cf = ngi_gate_cell(g, from), ct = ngi_gate_cell(g, to);
    return ngi_gate_occupied(g, cf) || (ct != cf && ngi_gate_occupied(g, ct));
  }
  const int16_t *p = from ? from : to;
  return p && ngi_gate_occupied(g, ngi_gate_cell(g, p));
}

static inline void ngi_ev_move(ng_runtime *rt, ng_id id, int space, const int16_t *from,
                               const int16_t *to, uint16_t token_flags, uint8_t placed) {
  const ngi_zone_gate *g = &rt->ev.gate[space];
  bool stale = g->any && !g->bits;
  if (stale || (rt->ev.want >> (to ? NG_EV_MOVE : NG_EV_UNPLACE) & 1u))
    ngi_ev_move_slow(rt, id, space, from, to, token_flags, placed); /* its event, its zones */
  else if (g->any && ngi_gate_near(g, from, to))
    ngi_zones_move(rt, id, space, from, to, token_flags, placed);
}

#endif /* NG_CORE_INTERNAL_H */

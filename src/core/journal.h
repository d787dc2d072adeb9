/* The write-ahead journal (journal.c, journal_replay.c; its bytes in
 * journal_format.h) and the durable world around it (world.c). Never installed; included through internal.h.
 *
 * A journal is one more consumer of the change feed (events.h): while one is
 * attached, every write hold records the store's kinds of events, and
 * ngi_ev_publish hands each commit's events to ngi_journal_commit, still
 * under the write lock. The journal turns them into one checksummed record
 * holding the commit's final state of every entity it touched, read from the
 * store at that moment (of a token it only updated or moved, just the fields
 * it changed: a delta; docs/format.md, "Journal"), and copies it into a
 * MAP_SHARED mapping of the pre-extended file (whose next pages a thread of
 * the journal maps ahead of the writer): the kernel owns the bytes when the
 * call returns, so killing the process loses nothing committed. The sync
 * mode decides when the file is fsynced (never, every interval_ms from a
 * background thread, or before the writing call returns).
 *
 * Replay applies a record's entries in order through the same table paths a
 * write uses (ids taken from and given back to the allocators in the order
 * the original writes did, so ids stay exactly as they were), with the
 * snapshot loader's record rules. */
#ifndef NG_CORE_JOURNAL_H
#define NG_CORE_JOURNAL_H

#include "neurograph.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* The kinds of events a journal needs: every store change, not zones'. */
#define NGI_JOURNAL_KINDS                                                                          \
  ((1u << NG_EV_CREATE) | (1u << NG_EV_UPDATE) | (1u << NG_EV_MOVE) | (1u << NG_EV_UNPLACE) |      \
   (1u << NG_EV_DELETE) | (1u << NG_EV_LINK) | (1u << NG_EV_LINK_UPDATE) | (1u << NG_EV_UNLINK) |  \
   (1u << NG_EV_CDNA))

/* The header's size; the bytes mapped at a time for appends (a window) and
 * how many windows the journal's thread keeps prepared ahead of them. */
enum { NGI_JOURNAL_HEADER = 64, NGI_JOURNAL_WINDOW = 256 << 10, NGI_JOURNAL_AHEAD = 2 };

typedef struct ngi_journal {
  /* Under the runtime's write lock: */
  int fd; /* the active journal file (changed under sync_lock and ahead_lock too) */
  /* Address space reserved for the file's windows (inaccessible where
   * nothing is mapped): file byte x is mapped at va + (x - va_off), so
   * consecutive windows are contiguous and a record may cross from one into
   * the next. The five fields below change under ahead_lock too. */
  unsigned char *va;
  size_t va_len, va_off;
  size_t map_off, map_len; /* the file bytes mapped for appends: the window at the end */
  size_t end;              /* where the next record goes */
  uint64_t number;         /* N of journal-N.ngj */
  uint64_t next_commit;    /* the number the next record gets */
  ng_status failed;        /* NG_OK, or why writes are refused until a checkpoint */
  char why[200];           /* the failure's message */
  ng_save *pending;        /* a background checkpoint's save of snapshot pending_number (world.c) */
  uint64_t pending_number;
  /* Settings (fixed after open). */
  ng_sync_mode sync;
  unsigned interval_ms;
  uint64_t checkpoint_bytes;
  char *dir;  /* the world's directory */
  int dir_fd; /* open on dir, holding its flock (one runtime per world) */
  size_t dir_size;
  /* Shared with the batch thread and with syncs after the lock is released. */
  _Atomic size_t written;    /* `end`, published for syncs and the automatic checkpoint */
  _Atomic size_t auto_at;    /* the size at which the next automatic checkpoint runs */
  pthread_mutex_t sync_lock; /* fd changes, fdatasync, `synced`, `stop` */
  pthread_cond_t wake;
  size_t synced; /* bytes of the active file known durable */
  bool stop, thread_on;
  pthread_t thread;
  /* The windows ahead (journal.c, ahead_main): a thread maps the windows
   * that follow the writer's and touches their pages, so that the writer's
   * first store into each page does not pay for the page, and unmaps what
   * the writer left behind. Under ahead_lock: */
  pthread_mutex_t ahead_lock;
  pthread_cond_t ahead_wake; /* to the thread: the writer moved on, or ahead_stop */
  pthread_cond_t ahead_done; /* to the writer: `busy` cleared */
  size_t file_len;           /* the file's size (pre-extended with posix_fallocate) */
  size_t mapped_from;        /* file bytes [mapped_from, map_off) are still mapped */
  size_t ready_to;           /* file bytes [map_off + map_len, ready_to) are prepared */
  bool busy;    /* the thread works without the lock: va and the file are its to change */
  bool stalled; /* preparing failed: the writer maps the next window itself */
  bool ahead_stop, ahead_on;
  pthread_t ahead_thread;
} ngi_journal;

/* ---- journal.c: the file format ------------------------------------------ */

/* Create journal `number` of rt->journal's directory (first record numbered
 * first_commit) durably: a temporary file with the header, fsynced, renamed
 * into place, the directory fsynced. Open it for appending into *fd (the
 * file holds the header only). NG_OK or NG_EIO (recorded for fn). */
ng_status ngi_journal_create_file(ng_runtime *rt, const char *fn, uint64_t number,
                                  uint64_t first_commit, int *fd);
/* Make fd (a journal file of `size` bytes whose valid part ends at `end`)
 * rt->journal's active file: cut it at end, map it with room to grow. Takes
 * fd (closed on failure). NG_OK, NG_EIO, NG_ENOMEM (recorded for fn). */
ng_status ngi_journal_attach_file(ng_runtime *rt, const char *fn, int fd, uint64_t number,
                                  size_t end, uint64_t next_commit);
/* Close the active file: sync it unless the mode is "off", unmap it, cut it
 * at its end. Caller holds the write lock (or is the only user). */
void ngi_journal_detach_file(ng_runtime *rt);
/* ---- journal_replay.c: reading a journal back ----------------------------- */

/* Replay the journal image data[0 .. len) into rt (a runtime nobody else
 * sees yet). `name` names it in messages. `last`: this is the newest journal,
 * whose torn tail (a crash mid-append) is cut away; in an older journal any
 * bad record is corruption. *first_commit: in, the number its first record
 * must have (0: whatever its header says); out, the number after its last.
 * *end: the end of its valid part. Fails: NG_ECORRUPT naming the offset of
 * the bad header, record or entry (also a bad record followed by a valid
 * one), NG_EVERSION, NG_ENOMEM; rt is then half replayed (discard it).
 * On NG_OK the grids are reset (rebuilt from the records at their next query). */
ng_status ngi_journal_replay(ng_runtime *rt, const unsigned char *data, size_t len,
                             const char *name, bool last, uint64_t *first_commit, size_t *end);
/* Whether journal image data (which ngi_journal_replay accepted) may take
 * this build's records: its minor version is not older. A newest journal
 * that may not is closed and followed by a new one (world.c), so that each
 * file's header names the newest kinds its records use. */
bool ngi_journal_appendable(const unsigned char *data);

/* ---- journal.c: syncing and its threads ----------------------------------- */

/* Initialize j's locks and condition variables (j zeroed). NG_OK, or
 * NG_ENOMEM with nothing left to destroy. */
ng_status ngi_journal_init_sync(ngi_journal *j);
/* Start the journal's threads: the one that prepares the windows ahead, and
 * the batch mode's sync thread. NG_OK or NG_ENOMEM (ngi_journal_free stops
 * the one that started). */
ng_status ngi_journal_start_thread(ng_runtime *rt);
/* Free rt->journal: end a background checkpoint (ngi_world_end), stop the
 * threads, close the file. */
void ngi_journal_free(ng_runtime *rt);

/* ---- world.c ------------------------------------------------------------------ */

/* At the runtime's end: wait for a background checkpoint still running and
 * finish it (its old snapshot and journal deleted once it succeeded). */
void ngi_world_end(ng_runtime *rt);
/* In the forked process of a background save: let go of the world's lock
 * (its copy of the directory's descriptor), so that a world whose process
 * has died opens again while the save still runs. */
void ngi_world_forked(ng_runtime *rt);

/* ---- the write path (events.c and base.c) --------------------------------- */

/* ngi_ev_publish: append the commit of evs[0 .. n) (dropped: events lost for
 * want of memory, which make the commit impossible to journal). Never fails:
 * a failure marks the journal failed (writes are then refused, ngi_journal_refuse). */
void ngi_journal_commit(ng_runtime *rt, const ng_event *evs, size_t n, uint64_t dropped);
/* ngi_write_lock, under the write lock: NG_OK, or NG_EIO (recorded for fn)
 * while the journal is failed. */
ng_status ngi_journal_refuse(ng_runtime *rt, const char *fn);
/* ngi_write_unlock, after the outermost hold is released: fsync for
 * sync = "always", and the automatic checkpoint when the journal passed its
 * size. The calling thread holds no lock on rt. */
void ngi_journal_after_commit(ng_runtime *rt);

#endif /* NG_CORE_JOURNAL_H */

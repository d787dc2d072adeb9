/* The change feed and subscriptions (design in events.h). */
#include "conn_table.h"
#include "internal.h"

#include <string.h>

struct ng_sub {
  ng_runtime *rt;
  ng_sub_filter filter; /* cap resolved */
  pthread_mutex_t lock; /* the queue; held by a publishing writer or a poll, briefly */
  ng_event *ring;       /* grows by doubling up to filter.cap */
  size_t ring_cap, head, n;
  uint64_t lost;
};

static const char *const kind_names[NG_EV_KINDS] = {
    NULL,     "create", "update", "move", "unplace", "delete", "link", "link_update",
    "unlink", "cdna",   "enter",  "leave"};

const char *ng_event_kind_name(unsigned kind) {
  return kind > 0 && kind < NG_EV_KINDS ? kind_names[kind] : NULL;
}

int ng_event_kind_from_name(const char *name) {
  if (!name) return -1;
  for (int k = 1; k < NG_EV_KINDS; k++)
    if (strcmp(name, kind_names[k]) == 0) return k;
  return -1;
}

/* ---- lifecycle ------------------------------------------------------------ */

int ngi_events_init(ng_runtime *rt) {
  atomic_init(&rt->ev.nsubs, 0);
  atomic_init(&rt->ev.want_all, 0u);
  return pthread_mutex_init(&rt->ev.subs_lock, NULL);
}

/* No subscription is open: each holds a reference to rt. */
void ngi_events_free(ng_runtime *rt) {
  ngi_events *e = &rt->ev;
  ngi_zones_free(rt);
  ngi_free(rt, e->pending, e->cap * sizeof *e->pending);
  ngi_free(rt, e->subs, e->subs_cap * sizeof *e->subs);
  pthread_mutex_destroy(&e->subs_lock);
}

/* ---- recording ------------------------------------------------------------ */

void ngi_ev_begin(ng_runtime *rt) {
  bool subs = (rt->cdna.flags & NG_CDNA_ENABLE_EVENTS) &&
              atomic_load_explicit(&rt->ev.nsubs, memory_order_relaxed) > 0;
  rt->ev.to_subs = subs;
  rt->ev.rec = subs || rt->journal;
  if (rt->ev.rec)
    rt->ev.want = (subs ? atomic_load_explicit(&rt->ev.want_all, memory_order_relaxed) : 0u) |
                  (rt->journal ? NGI_JOURNAL_KINDS : 0u);
}

size_t ngi_ev_mark(const ng_runtime *rt) {
  return rt->ev.len;
}

void ngi_ev_cut(ng_runtime *rt, size_t mark) {
  if (mark < rt->ev.len) rt->ev.len = mark;
}

/* Room for one more pending event of `kind`, zeroed but for kind and space
 * -1; NULL when no subscription wants the kind, or (counted as dropped)
 * without memory. */
static inline ng_event *pending_slot(ng_runtime *rt, int kind) {
  ngi_events *e = &rt->ev;
  if (!(e->want >> kind & 1u)) return NULL;
  if (e->len == e->cap) {
    size_t cap = e->cap ? 2 * e->cap : 256;
    ng_event *p = ngi_realloc_array(rt, e->pending, e->cap, cap, sizeof *p);
    if (!p) {
      e->dropped++;
      return NULL;
    }
    e->pending = p;
    e->cap = cap;
  }
  ng_event *ev = &e->pending[e->len++];
  memset(ev, 0, sizeof *ev);
  ev->kind = (uint8_t)kind;
  ev->space = -1;
  return ev;
}

void ngi_ev_push(ng_runtime *rt, const ng_event *src) {
  ng_event *ev = pending_slot(rt, src->kind);
  if (ev) *ev = *src;
}

void ngi_ev_token(ng_runtime *rt, int kind, ng_id id, const ng_token *tok, uint8_t placed) {
  ng_event *ev = pending_slot(rt, kind);
  if (ev) {
    ev->id = id;
    ev->placed = placed;
    ev->token_flags = tok->flags;
  }
  if (!rt->ev.zones) return;
  for (int s = 0; s < NG_SPACES; s++) {
    if (!(placed >> s & 1u)) continue;
    int16_t xyz[3]; /* the record is packed */
    memcpy(xyz, tok->coords[s], sizeof xyz);
    ngi_zones_cross(rt, id, s, kind == NG_EV_DELETE ? xyz : NULL,
                    kind == NG_EV_CREATE ? xyz : NULL, tok->flags, placed);
  }
}

void ngi_ev_move_slow(ng_runtime *rt, ng_id id, int space, const int16_t *from,
                      const int16_t *to, uint16_t token_flags, uint8_t placed) {
  ng_event *ev = pending_slot(rt, to ? NG_EV_MOVE : NG_EV_UNPLACE);
  ngi_zones *zones = rt->ev.zones;
  if (ev) {
    ev->id = id;
    ev->space = (int8_t)space;
    ev->placed = placed;
    ev->token_flags = token_flags;
    if (from)
      memcpy(ev->from_xyz, from, sizeof ev->from_xyz);
    else
      ev->flags = NG_EVF_PLACED;
    if (to) memcpy(ev->to_xyz, to, sizeof ev->to_xyz);
  }
  if (zones) ngi_zones_cross(rt, id, space, from, to, token_flags, placed);
}

/* Fields whose write is an update event (coordinates are moves). */
#define UPDATE_FIELDS ((uint32_t)NG_TF_ALL & ~(uint32_t)NG_TF_COORDS_ALL)

void ngi_ev_update(ng_runtime *rt, ng_id id, const ng_token *old, uint8_t old_placed,
                   const ng_token *next, uint8_t next_placed, uint32_t fields) {
  if (fields & UPDATE_FIELDS) {
    ng_event *ev = pending_slot(rt, NG_EV_UPDATE);
    if (ev) {
      ev->id = id;
      ev->fields = fields & UPDATE_FIELDS;
      ev->placed = next_placed;
      ev->token_flags = next->flags;
    }
  }
  for (int s = 0; s < NG_SPACES; s++) {
    bool was = old_placed >> s & 1u, is = next_placed >> s & 1u;
    if (!is && !was) continue;
    int16_t from[3], to[3]; /* the records are packed */
    memcpy(from, old->coords[s], sizeof from);
    memcpy(to, next->coords[s], sizeof to);
    if (is && was && memcmp(from, to, sizeof from) == 0) continue;
    ngi_ev_move(rt, id, s, was ? from : NULL, is ? to : NULL, is ? next->flags : old->flags,
                next_placed);
  }
}

void ngi_ev_conn(ng_runtime *rt, int kind, ng_id id, const ng_connection *rec, uint32_t fields) {
  ng_event *ev = pending_slot(rt, kind);
  if (!ev) return;
  ev->id = id;
  ev->fields = fields;
  ev->from = ngi_token_id_of(&rt->tokens, rec->token_a_id);
  ev->to = ngi_token_id_of(&rt->tokens, rec->token_b_id);
  ev->conn_type = rec->connection_type;
}

void ngi_ev_cdna(ng_runtime *rt) {
  (void)pending_slot(rt, NG_EV_CDNA);
}

/* ---- publication ---------------------------------------------------------- */

static bool wants(const ng_sub_filter *f, const ng_event *ev) {
  if (f->kinds && !(f->kinds >> ev->kind & 1u)) return false;
  bool token = ev->kind <= NG_EV_DELETE || ev->kind >= NG_EV_ENTER;
  if (f->spaces) {
    if (ev->space >= 0 ? !(f->spaces >> ev->space & 1u) : !token || !(f->spaces & ev->placed))
      return false;
  }
  if (f->entities) {
    if (!token) return false;
    unsigned entity = (ev->token_flags & NG_TOKEN_ENTITY_MASK) >> 8;
    if (!(f->entities >> entity & 1u)) return false;
  }
  return true;
}

/* Room in sub's queue (its lock held) for one more event, growing it up to
 * its cap; false when full or out of memory. */
static bool sub_room(ng_sub *sub) {
  if (sub->n < sub->ring_cap) return true;
  size_t cap = sub->ring_cap ? 2 * sub->ring_cap : 1024;
  if (cap > sub->filter.cap) cap = sub->filter.cap;
  ng_event *r = cap > sub->ring_cap ? ngi_alloc_array(sub->rt, cap, sizeof *r) : NULL;
  if (!r) return false;
  for (size_t i = 0; i < sub->n; i++) /* oldest first, from index 0 */
    r[i] = sub->ring[(sub->head + i) % sub->ring_cap];
  ngi_free(sub->rt, sub->ring, sub->ring_cap * sizeof *r);
  sub->ring = r;
  sub->ring_cap = cap;
  sub->head = 0;
  return true;
}

/* Queue the events of evs[0..n) that sub wants (its lock held), numbered
 * as they are copied: evs[i] is event seq0 + 1 + i of commit `commit`, the
 * last one its last. What finds no room is dropped and counted. */
static void deliver(ng_sub *sub, const ng_event *evs, size_t n, uint64_t seq0, uint64_t commit) {
  const ng_sub_filter *f = &sub->filter;
  bool all = !f->kinds && !f->spaces && !f->entities;
  for (size_t i = 0; i < n; i++) {
    if (!all && !wants(f, &evs[i])) continue;
    if (!sub_room(sub)) {
      sub->lost++;
      continue;
    }
    size_t at = sub->head + sub->n;
    if (at >= sub->ring_cap) at -= sub->ring_cap;
    ng_event *ev = &sub->ring[at];
    *ev = evs[i];
    ev->seq = seq0 + 1 + i;
    ev->commit = commit;
    if (i + 1 == n) ev->flags |= NG_EVF_LAST;
    sub->n++;
  }
}

static void deliver_all(ng_runtime *rt, size_t n, uint64_t dropped);

void ngi_ev_publish(ng_runtime *rt) {
  ngi_events *e = &rt->ev;
  size_t n = e->len;
  uint64_t dropped = e->dropped;
  e->len = 0;
  e->dropped = 0;
  e->rec = false;
  if (n == 0 && dropped == 0) return;
  if (rt->journal) ngi_journal_commit(rt, e->pending, n, dropped);
  if (e->to_subs) deliver_all(rt, n, dropped);
  /* A buffer much larger than this commit needed goes back to the host; one
   * near its size serves the next (a frame's batch is the same every frame). */
  if (e->cap > 4096 && n < e->cap / 4) {
    ngi_free(rt, e->pending, e->cap * sizeof *e->pending);
    e->pending = NULL;
    e->cap = 0;
  }
}

/* Number the commit's n pending events and copy them into each
 * subscription's queue (with the lost count). */
static void deliver_all(ng_runtime *rt, size_t n, uint64_t dropped) {
  ngi_events *e = &rt->ev;
  uint64_t commit = ++e->commits, seq0 = e->seq;
  e->seq += n;
  pthread_mutex_lock(&e->subs_lock);
  for (size_t i = 0; i < e->subs_n; i++) {
    ng_sub *sub = e->subs[i];
    pthread_mutex_lock(&sub->lock);
    sub->lost += dropped;
    deliver(sub, e->pending, n, seq0, commit);
    pthread_mutex_unlock(&sub->lock);
  }
  pthread_mutex_unlock(&e->subs_lock);
}

/* ---- subscriptions -------------------------------------------------------- */

#define KIND_BITS (((1u << NG_EV_KINDS) - 1u) & ~1u)

/* The kinds some subscription wants (subs_lock held). */
static void refresh_want(ngi_events *e) {
  uint32_t want = 0;
  for (size_t i = 0; i < e->subs_n; i++)
    want |= e->subs[i]->filter.kinds ? e->subs[i]->filter.kinds : KIND_BITS;
  atomic_store_explicit(&e->want_all, want, memory_order_relaxed);
}

ng_status ng_sub_open(ng_runtime *rt, const ng_sub_filter *filter, ng_sub **out) {
  static const char fn[] = "ng_sub_open";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!out) return ngi_fail(rt, NG_EINVAL, "%s: out must not be NULL", fn);
  *out = NULL;
  ng_sub_filter f;
  memset(&f, 0, sizeof f);
  if (filter) f = *filter;
  if (f.kinds & ~KIND_BITS)
    return ngi_fail(rt, NG_EINVAL, "%s: filter.kinds has unknown bits 0x%x", fn,
                    (unsigned)(f.kinds & ~KIND_BITS));
  if (f.spaces & ~0xFFu)
    return ngi_fail(rt, NG_EINVAL, "%s: filter.spaces must be a mask of bits 0..7, got 0x%x", fn,
                    (unsigned)f.spaces);
  if (f.entities & ~0xFFFFu)
    return ngi_fail(rt, NG_EINVAL, "%s: filter.entities must be a mask of bits 0..15, got 0x%x",
                    fn, (unsigned)f.entities);
  if (f.cap == 0) f.cap = NG_SUB_CAP_DEFAULT;
  ng_sub *sub = ngi_alloc(rt, sizeof *sub);
  if (!sub) return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  memset(sub, 0, sizeof *sub);
  sub->filter = f;
  if (pthread_mutex_init(&sub->lock, NULL) != 0) {
    ngi_free(rt, sub, sizeof *sub);
    return ngi_fail(rt, NG_ENOMEM, "%s: cannot create the queue's lock", fn);
  }
  ngi_events *e = &rt->ev;
  pthread_mutex_lock(&e->subs_lock);
  if (e->subs_n == e->subs_cap) {
    size_t cap = e->subs_cap ? 2 * e->subs_cap : 4;
    ng_sub **s = ngi_realloc_array(rt, e->subs, e->subs_cap, cap, sizeof *s);
    if (!s) {
      pthread_mutex_unlock(&e->subs_lock);
      pthread_mutex_destroy(&sub->lock);
      ngi_free(rt, sub, sizeof *sub);
      return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
    }
    e->subs = s;
    e->subs_cap = cap;
  }
  e->subs[e->subs_n++] = sub;
  sub->rt = ng_runtime_retain(rt);
  atomic_fetch_add_explicit(&e->nsubs, 1, memory_order_relaxed);
  refresh_want(e);
  pthread_mutex_unlock(&e->subs_lock);
  *out = sub;
  return NG_OK;
}

ng_status ng_sub_poll(ng_sub *sub, ng_event *events, size_t cap, size_t *n, uint64_t *lost) {
  static const char fn[] = "ng_sub_poll";
  if (!sub) return ngi_fail(NULL, NG_EINVAL, "%s: sub must not be NULL", fn);
  if (!n) return ngi_fail(sub->rt, NG_EINVAL, "%s: n must not be NULL", fn);
  if (!events && cap > 0)
    return ngi_fail(sub->rt, NG_EINVAL, "%s: events must not be NULL (cap is %zu)", fn, cap);
  pthread_mutex_lock(&sub->lock);
  size_t k = sub->n < cap ? sub->n : cap;
  for (size_t i = 0; i < k; i++) {
    events[i] = sub->ring[sub->head];
    if (++sub->head == sub->ring_cap) sub->head = 0;
  }
  sub->n -= k;
  if (lost) {
    *lost = sub->lost;
    sub->lost = 0;
  }
  pthread_mutex_unlock(&sub->lock);
  *n = k;
  return NG_OK;
}

uint64_t ng_sub_lost(ng_sub *sub) {
  if (!sub) return 0;
  pthread_mutex_lock(&sub->lock);
  uint64_t lost = sub->lost;
  sub->lost = 0;
  pthread_mutex_unlock(&sub->lock);
  return lost;
}

size_t ng_sub_pending(ng_sub *sub) {
  if (!sub) return 0;
  pthread_mutex_lock(&sub->lock);
  size_t n = sub->n;
  pthread_mutex_unlock(&sub->lock);
  return n;
}

void ng_sub_close(ng_sub *sub) {
  if (!sub) return;
  ng_runtime *rt = sub->rt;
  ngi_events *e = &rt->ev;
  pthread_mutex_lock(&e->subs_lock);
  for (size_t i = 0; i < e->subs_n; i++) {
    if (e->subs[i] != sub) continue;
    memmove(&e->subs[i], &e->subs[i + 1], (e->subs_n - i - 1) * sizeof *e->subs);
    e->subs_n--;
    break;
  }
  atomic_fetch_sub_explicit(&e->nsubs, 1, memory_order_relaxed);
  refresh_want(e);
  pthread_mutex_unlock(&e->subs_lock);
  pthread_mutex_destroy(&sub->lock);
  ngi_free(rt, sub->ring, sub->ring_cap * sizeof *sub->ring);
  ngi_free(rt, sub, sizeof *sub);
  ng_runtime_release(rt);
}

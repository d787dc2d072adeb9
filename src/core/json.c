/* JSON export and import (docs/format.md, "JSON"): every token and connection with ids kept,
 * through cJSON. An import builds a snapshot image and loads it, so it is validated exactly as
 * a snapshot is and either gives a whole new runtime or nothing. */
#include "snapshot_format.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define JSON_FORMAT "neurograph"
#define JSON_VERSION 1

/* Progress in records (tokens, then connections) of an export or import. */
typedef struct progress {
  ng_progress_fn fn; /* NULL: no reports */
  void *ud;
  const char *what;
  uint64_t done, total;
} progress;

/* One more record done: reported every NGI_PROGRESS_RECORDS (the end is
 * reported by the caller, on success). */
static void tick(progress *p) {
  if (p->fn && ++p->done % NGI_PROGRESS_RECORDS == 0 && p->done < p->total)
    p->fn(p->ud, p->what, p->done, p->total);
}

/* ---- export ----------------------------------------------------------------- */

static bool add_num(cJSON *o, const char *k, double v) {
  return cJSON_AddNumberToObject(o, k, v) != NULL;
}

static cJSON *idgen_json(const ngi_idgen *g) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  bool ok = add_num(o, "epoch", (double)g->epoch) && add_num(o, "fresh", (double)g->fresh) &&
            add_num(o, "last", (double)g->last) && add_num(o, "retired", (double)g->retired);
  cJSON *ready = ok ? cJSON_AddArrayToObject(o, "ready") : NULL;
  for (size_t i = g->ready_at; ready && i < g->ready_n; i++)
    if (!cJSON_AddItemToArray(ready, cJSON_CreateNumber(g->ready[i]))) ready = NULL;
  cJSON *pending = ready ? cJSON_AddArrayToObject(o, "pending") : NULL;
  for (size_t i = 0; pending && i < g->pending_n; i++)
    if (!cJSON_AddItemToArray(pending, cJSON_CreateNumber(g->pending[i]))) pending = NULL;
  if (!pending) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static cJSON *token_json(ng_runtime *rt, const ng_token *t, ng_id id, uint8_t placed) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  unsigned entity = ng_token_get_entity(t);
  bool ok = add_num(o, "id", (double)id) &&
            cJSON_AddStringToObject(o, "entity", ng_entity_name(entity)) &&
            add_num(o, "domain", (double)(t->id >> 28)) && add_num(o, "flags", t->flags) &&
            add_num(o, "weight", (double)t->weight) &&
            add_num(o, "field_radius", t->field_radius / 100.0) &&
            add_num(o, "field_strength", t->field_strength / 255.0) &&
            add_num(o, "timestamp", t->timestamp);
  cJSON *coords = ok ? cJSON_AddObjectToObject(o, "coords") : NULL;
  for (int s = 0; coords && s < NG_SPACES; s++) {
    if (!(placed & (1u << s))) continue;
    double xyz[3];
    for (int a = 0; a < 3; a++)
      xyz[a] = ngi_unit_decode(&rt->units[s], t->coords[s][a]);
    cJSON *v = cJSON_CreateDoubleArray(xyz, 3);
    if (!v || !cJSON_AddItemToObject(coords, ng_space_name(s), v)) {
      cJSON_Delete(v);
      coords = NULL;
    }
  }
  if (!coords) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

typedef struct conn_out {
  ng_runtime *rt;
  cJSON *list;
  bool ok;
  progress *pr;
} conn_out;

static bool conn_json(const ng_connection *c, ng_id id, void *ud) {
  conn_out *co = ud;
  cJSON *o = cJSON_CreateObject();
  ng_id from = 0, to = 0;
  ng_connection_ends(co->rt, id, &from, &to);
  int tv[NG_SPACES];
  for (int s = 0; s < NG_SPACES; s++)
    tv[s] = c->target_vector[s];
  bool ok = o && add_num(o, "id", (double)id) && add_num(o, "from", (double)from) &&
            add_num(o, "to", (double)to) &&
            cJSON_AddStringToObject(o, "type", ng_conn_type_name(c->connection_type)) &&
            add_num(o, "rigidity", c->rigidity) && add_num(o, "active_levels", c->active_levels) &&
            add_num(o, "flags", c->flags) && add_num(o, "activation_count", c->activation_count) &&
            add_num(o, "pull_strength", (double)c->pull_strength) &&
            add_num(o, "preferred_distance", (double)c->preferred_distance) &&
            add_num(o, "created_at", c->created_at) &&
            add_num(o, "last_activation", c->last_activation) &&
            add_num(o, "mutability", c->mutability) && add_num(o, "confidence", c->confidence) &&
            add_num(o, "evidence_count", c->evidence_count) &&
            add_num(o, "last_update", c->last_update) &&
            add_num(o, "learning_rate", c->learning_rate) &&
            add_num(o, "decay_rate", c->decay_rate) && add_num(o, "source_id", c->source_id);
  cJSON *v = ok ? cJSON_CreateIntArray(tv, NG_SPACES) : NULL;
  if (!v || !cJSON_AddItemToObject(o, "target_vector", v) || !cJSON_AddItemToArray(co->list, o)) {
    cJSON_Delete(v);
    cJSON_Delete(o);
    co->ok = false;
    return false;
  }
  tick(co->pr);
  return true;
}

/* The whole store as a cJSON tree, reporting to pr (its total set here).
 * Needs the read lock (one point in time). */
static cJSON *store_json(ng_runtime *rt, progress *pr) {
  cJSON *root = cJSON_CreateObject();
  char hex[2 * sizeof(ng_cdna) + 1];
  const unsigned char *cb = (const unsigned char *)&rt->cdna;
  for (size_t i = 0; i < sizeof(ng_cdna); i++)
    snprintf(hex + 2 * i, 3, "%02x", cb[i]);
  bool ok = root && cJSON_AddStringToObject(root, "format", JSON_FORMAT) &&
            add_num(root, "version", JSON_VERSION) && cJSON_AddStringToObject(root, "cdna", hex);
  cJSON *ids = ok ? cJSON_AddObjectToObject(root, "ids") : NULL;
  cJSON *ti = ids ? idgen_json(&rt->tokens.ids) : NULL;
  ok = ti && cJSON_AddItemToObject(ids, "tokens", ti);
  cJSON *ci = ok ? idgen_json(ngi_conns_ids(rt->conns)) : NULL;
  ok = ci && cJSON_AddItemToObject(ids, "connections", ci);
  cJSON *toks = ok ? cJSON_AddArrayToObject(root, "tokens") : NULL;
  const ngi_token_table *t = &rt->tokens;
  pr->total = t->live + ngi_conns_count(rt->conns);
  if (pr->fn) pr->fn(pr->ud, pr->what, 0, pr->total);
  for (size_t k = 0; toks && k < t->len; k++) {
    const ng_token *tok = ngi_tok_at(t, k);
    uint32_t local = NG_ID_LOCAL(tok->id);
    if (local == 0) continue;
    cJSON *o = token_json(rt, tok, ngi_tokens_id_at(t, k), ngi_placed(t, local));
    if (!o || !cJSON_AddItemToArray(toks, o)) {
      cJSON_Delete(o);
      toks = NULL;
    }
    tick(pr);
  }
  conn_out co = {rt, toks ? cJSON_AddArrayToObject(root, "connections") : NULL, true, pr};
  if (co.list) ng_connection_each(rt, conn_json, &co);
  if (!co.list || !co.ok) {
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}

/* needs: rt, a non-empty path. guarantees: path holds the whole store as
 * JSON, replaced atomically (temp file + rename). fails: NG_EINVAL, NG_ENOMEM,
 * NG_EIO (named path and reason); path then untouched. */
ng_status ng_export_json(ng_runtime *rt, const char *path) {
  static const char fn[] = "ng_export_json";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!path || !path[0]) return ngi_fail(rt, NG_EINVAL, "%s: path must be a non-empty string", fn);
  progress pr = {rt->progress, rt->progress_ud, "export", 0, 0};
  ngi_read_lock(rt);
  cJSON *root = store_json(rt, &pr);
  ngi_read_unlock(rt);
  char *text = root ? cJSON_Print(root) : NULL;
  cJSON_Delete(root);
  if (!text) return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  size_t plen = strlen(path), len = strlen(text);
  char *tmp = malloc(plen + 32);
  if (!tmp) {
    cJSON_free(text);
    return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  }
  snprintf(tmp, plen + 32, "%s.tmp-%ld", path, (long)getpid());
  char eb[128];
  ng_status st = NG_OK;
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    st = ngi_fail(rt, NG_EIO, "%s: %s: %s", fn, tmp, errstr(errno, eb, sizeof eb));
  } else {
    bool wrote = fwrite(text, 1, len, f) == len && fputc('\n', f) != EOF;
    int e = errno;
    if (fclose(f) != 0 && wrote) {
      wrote = false;
      e = errno;
    }
    if (!wrote || rename(tmp, path) != 0) {
      if (wrote) e = errno;
      remove(tmp);
      st = ngi_fail(rt, NG_EIO, "%s: %s: %s", fn, path, errstr(e, eb, sizeof eb));
    }
  }
  free(tmp);
  cJSON_free(text);
  if (st == NG_OK && pr.fn) pr.fn(pr.ud, pr.what, pr.total, pr.total);
  return st;
}

/* ---- import ------------------------------------------------------------------- */

/* A growable byte buffer for the snapshot image. */
typedef struct image {
  unsigned char *p;
  size_t len, cap;
  bool oom;
} image;

static void put(image *im, const void *src, size_t n) {
  if (im->oom) return;
  if (im->cap - im->len < n) {
    size_t cap = im->cap ? im->cap : 4096;
    while (cap - im->len < n)
      cap *= 2;
    unsigned char *p = realloc(im->p, cap);
    if (!p) {
      im->oom = true;
      return;
    }
    im->p = p;
    im->cap = cap;
  }
  memcpy(im->p + im->len, src, n);
  im->len += n;
}
static void put32(image *im, uint32_t v) {
  unsigned char b[4];
  wr32(b, v);
  put(im, b, 4);
}
static void put64(image *im, uint64_t v) {
  unsigned char b[8];
  wr64(b, v);
  put(im, b, 8);
}
/* Close the section that began at `start` with its CRC. */
static void end_section(image *im, size_t start) {
  if (!im->oom) put32(im, ngi_crc32c(0, im->p + start, im->len - start));
}

/* The import's state: the first error wins; `where` names what is read. */
typedef struct reader {
  const char *name;
  char err[512];
} reader;

/* Records "FILE: WHERE: WHAT" (WHERE such as "token 12" or "ids.tokens"). */
static bool bad(reader *r, const char *where, const char *what) {
  if (!r->err[0]) {
    int n = snprintf(r->err, sizeof r->err, "%s: %s: %s", r->name, where, what);
    (void)n; /* a long path may truncate the message, never overrun it */
  }
  return false;
}

/* Member k of o, a number that is an integer within lo..hi. */
static bool get_int(reader *r, const cJSON *o, const char *k, const char *where, double lo,
                    double hi, uint64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
      v->valuedouble > hi) {
    char what[160];
    snprintf(what, sizeof what, "%s must be an integer within %.0f..%.0f", k, lo, hi);
    return bad(r, where, what);
  }
  *out = (uint64_t)v->valuedouble;
  return true;
}
static bool get_num(reader *r, const cJSON *o, const char *k, const char *where, double *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
    char what[160];
    snprintf(what, sizeof what, "%s must be a finite number", k);
    return bad(r, where, what);
  }
  *out = v->valuedouble;
  return true;
}

static bool idgen_image(reader *r, image *im, const cJSON *g, const char *where) {
  if (!cJSON_IsObject(g)) return bad(r, where, "must be an object with epoch, fresh, last, retired, ready and pending");
  uint64_t f[4];
  static const char *const keys[4] = {"epoch", "fresh", "last", "retired"};
  for (int i = 0; i < 4; i++)
    if (!get_int(r, g, keys[i], where, 0, (double)NG_ID_MAX, &f[i])) return false;
  const cJSON *ready = cJSON_GetObjectItemCaseSensitive(g, "ready");
  const cJSON *pending = cJSON_GetObjectItemCaseSensitive(g, "pending");
  if (!cJSON_IsArray(ready) || !cJSON_IsArray(pending))
    return bad(r, where, "must have arrays ready and pending");
  for (int i = 0; i < 4; i++)
    put64(im, f[i]);
  put64(im, (uint64_t)cJSON_GetArraySize(ready));
  put64(im, (uint64_t)cJSON_GetArraySize(pending));
  const cJSON *lists[2] = {ready, pending}, *e;
  for (int l = 0; l < 2; l++)
    cJSON_ArrayForEach(e, lists[l]) {
      if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > UINT32_MAX ||
          e->valuedouble != floor(e->valuedouble))
        return bad(r, where, "ready and pending must hold slot numbers");
      put32(im, (uint32_t)e->valuedouble);
    }
  return true;
}

typedef struct keyed {
  ng_id id;
  const cJSON *item;
} keyed;

static int keyed_cmp(const void *a, const void *b) {
  ng_id x = ((const keyed *)a)->id, y = ((const keyed *)b)->id;
  return x < y ? -1 : x > y;
}

/* The items of array `a` (named `what`) sorted by their "id"; NULL with
 * *n == 0 for an empty array. */
static keyed *sorted_by_id(reader *r, const cJSON *a, const char *what, size_t *n) {
  *n = 0;
  if (!cJSON_IsArray(a)) {
    bad(r, what, "must be an array");
    return NULL;
  }
  size_t count = (size_t)cJSON_GetArraySize(a);
  if (count == 0) return NULL;
  keyed *k = malloc(count * sizeof *k);
  if (!k) return NULL;
  const cJSON *e;
  size_t i = 0;
  cJSON_ArrayForEach(e, a) {
    char w[64];
    snprintf(w, sizeof w, "%s[%zu]", what, i + 1);
    if (!cJSON_IsObject(e) || !get_int(r, e, "id", w, 1, (double)NG_ID_MAX, &k[i].id)) {
      if (!cJSON_IsObject(e)) bad(r, w, "must be an object");
      free(k);
      return NULL;
    }
    k[i++].item = e;
  }
  qsort(k, count, sizeof *k, keyed_cmp);
  *n = count;
  return k;
}

static bool token_image(reader *r, image *im, const ngi_unit *units, const cJSON *o, ng_id id,
                        uint8_t *placed) {
  char where[64];
  snprintf(where, sizeof where, "token %llu", (unsigned long long)id);
  ng_token t;
  memset(&t, 0, sizeof t);
  uint64_t flags, domain, ts;
  double weight, fr, fs;
  if (!get_int(r, o, "flags", where, 0, 0xFFFF, &flags) ||
      !get_int(r, o, "domain", where, 0, 15, &domain) || !get_num(r, o, "weight", where, &weight) ||
      !get_num(r, o, "field_radius", where, &fr) || !get_num(r, o, "field_strength", where, &fs) ||
      !get_int(r, o, "timestamp", where, 0, UINT32_MAX, &ts))
    return false;
  t.flags = (uint16_t)flags;
  const cJSON *ent = cJSON_GetObjectItemCaseSensitive(o, "entity");
  if (ent) {
    int e = cJSON_IsString(ent) ? ng_entity_from_name(ent->valuestring) : -1;
    if (e < 0) return bad(r, where, "entity must be an entity name such as \"Concept\"");
    ng_token_set_entity(&t, (unsigned)e);
  }
  if (!(fr >= 0 && fr <= 2.55) || !(fs >= 0 && fs <= 1))
    return bad(r, where, "field_radius must be within 0..2.55 and field_strength within 0..1");
  t.weight = (float)weight;
  t.field_radius = (uint8_t)lround(fr * 100.0);
  t.field_strength = (uint8_t)lround(fs * 255.0);
  t.timestamp = (uint32_t)ts;
  t.id = NG_TOKEN_SLOT(id) | (uint32_t)ng_token_get_entity(&t) << 24 | (uint32_t)domain << 28;
  const cJSON *coords = cJSON_GetObjectItemCaseSensitive(o, "coords"), *c;
  if (coords && !cJSON_IsObject(coords))
    return bad(r, where, "coords must be an object such as {L1 = [x, y, z]}");
  *placed = 0;
  cJSON_ArrayForEach(c, coords) {
    int s = ng_space_from_name(c->string);
    if (s < 0) return bad(r, where, "coords has an unknown space name");
    if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) != 3)
      return bad(r, where, "coords must hold three numbers per space");
    for (int a = 0; a < 3; a++) {
      const cJSON *v = cJSON_GetArrayItem(c, a);
      int32_t raw;
      if (!cJSON_IsNumber(v) ||
          ngi_unit_encode(&units[s], v->valuedouble, -32768, 32767, &raw) != NGI_ENC_OK)
        return bad(r, where, "a coordinate is not a number within its space's range");
      t.coords[s][a] = (int16_t)raw;
    }
    *placed |= (uint8_t)(1u << s);
  }
  put(im, &t, sizeof t);
  return true;
}

static bool conn_image(reader *r, image *im, const cJSON *o, ng_id id) {
  char where[64];
  snprintf(where, sizeof where, "connection %llu", (unsigned long long)id);
  ng_connection c;
  memset(&c, 0, sizeof c);
  static const struct {
    const char *k;
    double hi;
  } ints[] = {{"from", (double)NG_ID_MAX},   {"to", (double)NG_ID_MAX},
              {"rigidity", 255},            {"active_levels", 255},
              {"flags", 255},               {"activation_count", UINT32_MAX},
              {"created_at", UINT32_MAX},   {"last_activation", UINT32_MAX},
              {"mutability", 255},          {"confidence", 255},
              {"evidence_count", 0xFFFF},   {"last_update", UINT32_MAX},
              {"learning_rate", 255},       {"decay_rate", 255},
              {"source_id", UINT32_MAX}};
  uint64_t v[sizeof ints / sizeof ints[0]];
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
    if (!get_int(r, o, ints[i].k, where, 0, ints[i].hi, &v[i])) return false;
  double pull, pref;
  if (!get_num(r, o, "pull_strength", where, &pull) ||
      !get_num(r, o, "preferred_distance", where, &pref))
    return false;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
  int tp = cJSON_IsString(type) ? ng_conn_type_from_name(type->valuestring) : -1;
  if (tp < 0) return bad(r, where, "type must be a connection type name such as \"AssociatedWith\"");
  const cJSON *tv = cJSON_GetObjectItemCaseSensitive(o, "target_vector");
  if (!cJSON_IsArray(tv) || cJSON_GetArraySize(tv) != NG_SPACES)
    return bad(r, where, "target_vector must be an array of 8 integers");
  for (int s = 0; s < NG_SPACES; s++) {
    const cJSON *e = cJSON_GetArrayItem(tv, s);
    if (!cJSON_IsNumber(e) || e->valuedouble < -32768 || e->valuedouble > 32767)
      return bad(r, where, "target_vector must be an array of 8 integers");
    c.target_vector[s] = (int16_t)e->valuedouble;
  }
  c.token_a_id = NG_TOKEN_SLOT(v[0]);
  c.token_b_id = NG_TOKEN_SLOT(v[1]);
  c.connection_type = (uint8_t)tp;
  c.rigidity = (uint8_t)v[2];
  c.active_levels = (uint8_t)v[3];
  c.flags = (uint8_t)v[4];
  c.activation_count = (uint32_t)v[5];
  c.created_at = (uint32_t)v[6];
  c.last_activation = (uint32_t)v[7];
  c.mutability = (uint8_t)v[8];
  c.confidence = (uint8_t)v[9];
  c.evidence_count = (uint16_t)v[10];
  c.last_update = (uint32_t)v[11];
  c.learning_rate = (uint8_t)v[12];
  c.decay_rate = (uint8_t)v[13];
  c.source_id = (uint32_t)v[14];
  c.pull_strength = (float)pull;
  c.preferred_distance = (float)pref;
  put32(im, (uint32_t)id);
  put(im, &c, sizeof c);
  return true;
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* The snapshot image of document `root`, or false with r->err set (or
 * im->oom). Endpoint generations are left to the loader's checks (a
 * connection's endpoints must be live tokens of the file). */
static bool build_image(reader *r, image *im, const cJSON *root, progress *pr) {
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
  const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
  if (!cJSON_IsObject(root) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, JSON_FORMAT) != 0)
    return bad(r, "format", "must be \"neurograph\" (this is not a neurograph JSON export)");
  if (!cJSON_IsNumber(ver) || ver->valuedouble != JSON_VERSION)
    return bad(r, "version", "must be 1");
  const cJSON *hex = cJSON_GetObjectItemCaseSensitive(root, "cdna");
  ng_cdna cdna;
  unsigned char *cb = (unsigned char *)&cdna;
  if (!cJSON_IsString(hex) || strlen(hex->valuestring) != 2 * sizeof cdna)
    return bad(r, "cdna", "must be 768 hexadecimal digits");
  for (size_t i = 0; i < sizeof cdna; i++) {
    int hi = hexval(hex->valuestring[2 * i]), lo = hexval(hex->valuestring[2 * i + 1]);
    if (hi < 0 || lo < 0) return bad(r, "cdna", "must be 768 hexadecimal digits");
    cb[i] = (unsigned char)(hi << 4 | lo);
  }
  ngi_unit units[NG_SPACES];
  ngi_units_of(&cdna, units);
  const cJSON *ids = cJSON_GetObjectItemCaseSensitive(root, "ids");
  size_t nt = 0, nc = 0;
  keyed *toks = sorted_by_id(r, cJSON_GetObjectItemCaseSensitive(root, "tokens"), "tokens", &nt);
  keyed *conns = r->err[0] ? NULL
                           : sorted_by_id(r, cJSON_GetObjectItemCaseSensitive(root, "connections"),
                                          "connections", &nc);
  uint8_t *placed = nt ? malloc(nt) : NULL;
  bool ok = !r->err[0] && (nt == 0 || (toks && placed)) && (nc == 0 || conns);
  if (ok && !cJSON_IsObject(ids)) ok = bad(r, "ids", "must be an object with tokens and connections");
  if (!ok && !r->err[0]) im->oom = true;

  unsigned char h[HDR_SIZE];
  memset(h, 0, sizeof h);
  put(im, h, sizeof h); /* filled in at the end, with the ids section's length */
  size_t at = im->len;
  put(im, &cdna, sizeof cdna);
  end_section(im, at);
  at = im->len;
  pr->total = nt + nc; /* known once the file is parsed: the import starts here */
  if (pr->fn) pr->fn(pr->ud, pr->what, 0, pr->total);
  for (size_t i = 0; ok && i < nt; i++) {
    ok = token_image(r, im, units, toks[i].item, toks[i].id, &placed[i]);
    tick(pr);
  }
  end_section(im, at);
  at = im->len;
  for (size_t i = 0; ok && i < nc; i++) {
    ok = conn_image(r, im, conns[i].item, conns[i].id);
    tick(pr);
  }
  end_section(im, at);
  at = im->len;
  ok = ok && idgen_image(r, im, cJSON_GetObjectItemCaseSensitive(ids, "tokens"), "ids.tokens");
  for (size_t i = 0; ok && i < nt; i++)
    put32(im, (uint32_t)NG_TOKEN_GEN(toks[i].id));
  ok = ok &&
       idgen_image(r, im, cJSON_GetObjectItemCaseSensitive(ids, "connections"), "ids.connections");
  for (size_t i = 0; ok && i < nc; i++)
    put32(im, (uint32_t)(conns[i].id >> NG_CONNECTION_SLOT_BITS));
  if (ok && nt) put(im, placed, nt);
  size_t ids_len = im->len - at;
  end_section(im, at);
  free(toks);
  free(conns);
  free(placed);
  if (!ok || im->oom) return false;

  memcpy(h + OFF_MAGIC, snap_magic, sizeof snap_magic);
  wr16(h + OFF_MAJOR, SNAP_MAJOR);
  wr16(h + OFF_MINOR, SNAP_MINOR);
  wr32(h + OFF_HSIZE, HDR_SIZE);
  wr32(h + OFF_ENDIAN, SNAP_ENDIAN);
  wr64(h + OFF_NTOK, nt);
  wr64(h + OFF_NCONN, nc);
  wr64(h + OFF_IDS_LEN, ids_len);
  wr64(h + OFF_CDNA_LEN, CDNA_BYTES);
  wr64(h + OFF_TOK_LEN, (uint64_t)nt * TOKEN_BYTES);
  wr64(h + OFF_CONN_LEN, (uint64_t)nc * CONN_BYTES);
  wr32(h + OFF_HCRC, ngi_crc32c(0, h, OFF_HCRC));
  memcpy(im->p, h, sizeof h);
  return true;
}

/* The 1-based line and column of text[pos]. */
static void line_of(const char *text, size_t pos, size_t *line, size_t *col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < pos && text[i]; i++) {
    if (text[i] == '\n') {
      ++*line;
      *col = 1;
    } else {
      ++*col;
    }
  }
}

/* needs: path, out; cfg may be NULL (as ng_snapshot_load). guarantees: *out a
 * new runtime holding exactly what the file holds. fails: NG_EINVAL (NULL
 * arguments), NG_EIO (cannot read), NG_ECORRUPT (bad JSON: the message has
 * the line; or a bad value: it names the token or connection), NG_ENOMEM;
 * *out NULL, nothing built. */
ng_status ng_import_json(const char *path, const ng_config *cfg, ng_runtime **out) {
  static const char fn[] = "ng_import_json";
  if (!out) return ngi_fail(NULL, NG_EINVAL, "%s: out must not be NULL", fn);
  *out = NULL;
  if (!path || !path[0]) return ngi_fail(NULL, NG_EINVAL, "%s: path must be a non-empty string", fn);
  progress pr = {cfg ? cfg->progress : NULL, cfg ? cfg->progress_ud : NULL, "import", 0, 0};
  char eb[128];
  FILE *f = fopen(path, "rb");
  if (!f) return ngi_fail(NULL, NG_EIO, "%s: %s: %s", fn, path, errstr(errno, eb, sizeof eb));
  size_t len = 0, cap = 1 << 16;
  char *text = malloc(cap);
  while (text) {
    len += fread(text + len, 1, cap - len, f);
    if (len < cap) break;
    char *bigger = realloc(text, cap * 2);
    if (!bigger) {
      free(text);
      text = NULL;
      break;
    }
    text = bigger;
    cap *= 2;
  }
  int rerr = ferror(f) ? errno : 0;
  fclose(f);
  if (!text) return ngi_fail(NULL, NG_ENOMEM, "%s: out of memory", fn);
  if (rerr) {
    free(text);
    return ngi_fail(NULL, NG_EIO, "%s: %s: %s", fn, path, errstr(rerr, eb, sizeof eb));
  }
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
  if (!root) {
    size_t line, col, pos = end ? (size_t)(end - text) : len;
    line_of(text, pos, &line, &col);
    free(text);
    return ngi_fail(NULL, NG_ECORRUPT, "%s: %s: line %zu, column %zu: invalid JSON", fn, path, line,
                    col);
  }
  free(text);
  reader r = {.name = path, .err = ""};
  image im = {0};
  bool ok = build_image(&r, &im, root, &pr);
  cJSON_Delete(root);
  ng_status st;
  if (ok) {
    st = ngi_snapshot_load_mem(im.p, im.len, cfg, path, out);
    if (st != NG_OK) st = ngi_fail(NULL, st, "%s: %s", fn, ng_last_error_detail(NULL));
  } else if (r.err[0]) {
    st = ngi_fail(NULL, NG_ECORRUPT, "%s: %s", fn, r.err);
  } else {
    st = ngi_fail(NULL, NG_ENOMEM, "%s: out of memory", fn);
  }
  free(im.p);
  if (st == NG_OK && pr.fn) pr.fn(pr.ud, pr.what, pr.total, pr.total);
  return st;
}

/* Tests of the connection store: create/get/update/learn/delete, limits, adjacency, iteration. */
#include "conn_table.h"
#include "internal.h"
#include "test.h"
#include "test_alloc.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- fixtures ------------------------------------------------------------- */

/* Clock and allocator are test_alloc.h's: ngt_now (Unix seconds) is moved by the tests; the
 * allocation-failure tests refuse every request after a budget (ngt_alloc_arm(.., 0)). */

static ng_runtime *new_rt(void) {
  ng_config cfg = {0};
  cfg.clock = ngt_clock;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  return rt;
}

/* Create n tokens; their ids are 1..n on a fresh runtime. */
static void make_tokens(ng_runtime *rt, int n) {
  for (int i = 0; i < n; i++) {
    ng_id id = 0;
    CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &id), NG_OK);
  }
}

static ng_id link(ng_runtime *rt, ng_id from, ng_id to) {
  return ngt_link(rt, from, to, NG_CONN_ASSOCIATED_WITH);
}

/* The whole connection store as bytes (count, then id + record per live
 * connection), to prove a failed call changed nothing. */
typedef struct image {
  size_t n;
  unsigned char bytes[256 * 68];
} image;
static bool image_add(const ng_connection *c, ng_id id, void *ud) {
  image *im = ud;
  if (im->n >= 256) return false;
  memcpy(im->bytes + im->n * 68, &id, 4);
  memcpy(im->bytes + im->n * 68 + 4, c, 64);
  im->n++;
  return true;
}
static void take_image(ng_runtime *rt, image *im) {
  memset(im, 0, sizeof *im);
  CHECK_STATUS(ng_connection_each(rt, image_add, im), NG_OK);
  CHECK_EQ_INT(im->n, ng_connection_count(rt));
}
static int same_image(ng_runtime *rt, const image *before) {
  static image now;
  take_image(rt, &now);
  return now.n == before->n && memcmp(now.bytes, before->bytes, sizeof now.bytes) == 0;
}

static void set_cdna(ng_runtime *rt, void (*edit)(ng_cdna *, void *), void *ud) {
  ng_cdna c;
  CHECK_STATUS(ng_cdna_get(rt, &c), NG_OK);
  edit(&c, ud);
  CHECK_STATUS(ng_cdna_set(rt, &c), NG_OK);
}

/* ---- create and get ------------------------------------------------------- */

static void test_defaults_and_vector(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 7);
  /* Reference 2.1's vector new(7,3) in canonical order is 3 -> 7 here. */
  ng_connection c;
  ng_connection_init(&c);
  c.created_at = 0x11111111u;
  c.last_update = 0x22222222u;
  ng_id id = 0;
  CHECK_STATUS(ng_connection_create(rt, 3, 7, &c, &id), NG_OK);
  CHECK_EQ_INT(id, 1);
  static const unsigned char want[64] = {
      0x03, 0,    0, 0, 0x07, 0,    0,    0,    0x50, 0x80, 0,    0,    0, 0, 0, 0,
      0,    0,    0, 0, 0,    0,    0x80, 0x3f, 0x11, 0x11, 0x11, 0x11, 0, 0, 0, 0,
      0x01, 0x80, 0, 0, 0x22, 0x22, 0x22, 0x22, 0x20, 0x10, 0,    0,    0, 0, 0, 0};
  ng_connection got;
  CHECK_STATUS(ng_connection_get(rt, id, &got), NG_OK);
  CHECK(memcmp(&got, want, 64) == 0);

  /* Direction is kept: 7 -> 3 stays 7 -> 3; zero times become the clock. */
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 7, 3, &c, &id), NG_OK);
  CHECK_EQ_INT(id, 2);
  CHECK_STATUS(ng_connection_get(rt, id, &got), NG_OK);
  CHECK_EQ_INT(got.token_a_id, 7);
  CHECK_EQ_INT(got.token_b_id, 3);
  CHECK_EQ_INT(got.connection_type, 0x50);
  CHECK_EQ_INT(got.rigidity, 128);
  CHECK_EQ_INT(got.flags, 0);
  CHECK_EQ_INT(got.mutability, NG_LEARNABLE);
  CHECK_EQ_INT(got.confidence, 128);
  CHECK_EQ_INT(got.learning_rate, 32);
  CHECK_EQ_INT(got.decay_rate, 16);
  CHECK(got.pull_strength == 0.0f);
  CHECK(got.preferred_distance == 1.0f);
  CHECK_EQ_INT(got.created_at, ngt_now);
  CHECK_EQ_INT(got.last_update, ngt_now);
  CHECK_EQ_INT(got.last_activation, 0);
  CHECK_EQ_INT(ng_connection_count(rt), 2);

  /* Every field is honoured. */
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_set_type(&c, 0x13), NG_OK);
  c.rigidity = 7;
  c.active_levels = 0x81;
  c.flags = NG_CONN_ACTIVE | NG_CONN_INHIBITORY;
  c.activation_count = 99;
  c.pull_strength = -9.5f;
  c.preferred_distance = 0.01f;
  c.last_activation = 5;
  c.mutability = NG_HYPOTHESIS;
  c.confidence = 3;
  c.evidence_count = 4;
  c.learning_rate = 200;
  c.decay_rate = 100;
  c.source_id = 42;
  for (int s = 0; s < NG_SPACES; s++)
    c.target_vector[s] = (int16_t)(-1000 * s);
  c.created_at = 10;
  c.last_update = 11;
  c.token_a_id = 77; /* ignored: the endpoints are the arguments */
  CHECK_STATUS(ng_connection_create(rt, 1, 2, &c, &id), NG_OK);
  CHECK_STATUS(ng_connection_get(rt, id, &got), NG_OK);
  c.token_a_id = 1; /* the stored record holds the endpoints' slots */
  c.token_b_id = 2;
  CHECK(memcmp(&got, &c, sizeof c) == 0);

  /* out_id may be NULL. */
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 4, 5, &c, NULL), NG_OK);
  CHECK_EQ_INT(ng_connection_count(rt), 4);
  CHECK_STATUS(ng_connection_get(rt, 99, &got), NG_ENOTFOUND);
  CHECK_STATUS(ng_connection_get(rt, 0, &got), NG_EINVAL); /* no id at all */
  CHECK_STATUS(ng_connection_get(rt, NG_ID_MAX + 1u, &got), NG_EINVAL);
  CHECK_STATUS(ng_connection_get(rt, 1, NULL), NG_EINVAL);
  CHECK_STATUS(ng_connection_get(NULL, 1, &got), NG_EINVAL);
  CHECK_STATUS(ng_connection_create(NULL, 4, 5, &c, &id), NG_EINVAL);
  CHECK_EQ_INT(ng_connection_count(NULL), 0);
  /* A NULL record means ng_connection_init's defaults; the endpoints are the arguments. */
  CHECK_STATUS(ng_connection_create(rt, 5, 4, NULL, &id), NG_OK);
  CHECK_STATUS(ng_connection_get(rt, id, &got), NG_OK);
  ng_connection_init(&c);
  c.token_a_id = 5;
  c.token_b_id = 4;
  c.created_at = c.last_update = got.created_at;
  CHECK(memcmp(&got, &c, sizeof c) == 0);
  ng_id from = 0, to = 0;
  CHECK_STATUS(ng_connection_ends(rt, id, &from, &to), NG_OK);
  CHECK(from == 5 && to == 4);
  CHECK_STATUS(ng_connection_ends(rt, id, NULL, NULL), NG_OK);
  ng_runtime_release(rt);
}

static void test_bidirectional_and_self(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 2);
  ng_connection c;
  ng_connection_init(&c);
  c.flags = NG_CONN_BIDIRECTIONAL;
  ng_id id = 0, ids[4];
  size_t n = 0;
  CHECK_STATUS(ng_connection_create(rt, 1, 2, &c, &id), NG_OK);
  ng_connection got;
  CHECK_STATUS(ng_connection_get(rt, id, &got), NG_OK);
  CHECK_EQ_INT(got.flags, NG_CONN_BIDIRECTIONAL);
  /* A bidirectional link acts both ways: outgoing and incoming at both ends. */
  CHECK_STATUS(ng_token_connections(rt, 2, NG_OUT, ids, 4, &n), NG_OK);
  CHECK_EQ_INT(n, 1);
  CHECK_EQ_INT(ids[0], id);
  CHECK_STATUS(ng_token_connections(rt, 2, NG_IN, ids, 4, &n), NG_OK);
  CHECK_EQ_INT(n, 1);
  CHECK_STATUS(ng_token_connections(rt, 1, NG_IN, ids, 4, &n), NG_OK);
  CHECK_EQ_INT(n, 1);
  CHECK_EQ_INT(ids[0], id);

  /* A self-link is one out and one in, listed once under NG_BOTH. */
  ng_id self = link(rt, 1, 1);
  CHECK_STATUS(ng_token_connections(rt, 1, NG_OUT, ids, 4, &n), NG_OK);
  CHECK_EQ_INT(n, 2);
  CHECK_STATUS(ng_token_connections(rt, 1, NG_IN, ids, 4, &n), NG_OK);
  CHECK_EQ_INT(n, 2);
  CHECK_EQ_INT(ids[1], self);
  CHECK_STATUS(ng_token_connections(rt, 1, NG_BOTH, ids, 4, &n), NG_OK);
  CHECK_EQ_INT(n, 2);
  CHECK_EQ_INT(ids[0], id);
  CHECK_EQ_INT(ids[1], self);
  ng_runtime_release(rt);
}

static ng_id link_flags(ng_runtime *rt, ng_id from, ng_id to, unsigned type, uint8_t flags,
                        ng_status want) {
  ng_connection c;
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_set_type(&c, type), NG_OK);
  c.flags = flags;
  ng_id id = 0;
  CHECK_STATUS(ng_connection_create(rt, from, to, &c, &id), want);
  return id;
}

/* Undirected links: found from both ends, unique in both directions (also
 * when an update makes a link bidirectional or changes its type), and
 * counted once in each end's degree limits. */
static void test_undirected_links(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 3);
  const unsigned trusts = (unsigned)ng_conn_type_from_name("Trusts");
  const unsigned likes = (unsigned)ng_conn_type_from_name("Likes");
  ng_id ab = link_flags(rt, 1, 2, trusts, NG_CONN_BIDIRECTIONAL, NG_OK), found = 0;
  CHECK_STATUS(ng_connection_find(rt, 1, 2, trusts, &found), NG_OK);
  CHECK_EQ_INT(found, ab);
  CHECK_STATUS(ng_connection_find(rt, 2, 1, trusts, &found), NG_OK);
  CHECK_EQ_INT(found, ab);
  CHECK_STATUS(ng_connection_find(rt, 2, 1, likes, &found), NG_ENOTFOUND);
  /* b -> a of the same type cannot exist beside it, bidirectional or not. */
  link_flags(rt, 2, 1, trusts, 0, NG_EEXIST);
  CHECK_CONTAINS(ng_last_error(rt), "bidirectional");
  link_flags(rt, 2, 1, trusts, NG_CONN_BIDIRECTIONAL, NG_EEXIST);
  link_flags(rt, 1, 2, trusts, 0, NG_EEXIST);
  /* Another type may. A directed pair both ways is fine; making one
   * bidirectional then is not, nor is changing a type into the conflict. */
  ng_id ba = link_flags(rt, 2, 1, likes, 0, NG_OK);
  ng_id ab2 = link_flags(rt, 1, 2, likes, 0, NG_OK);
  ng_connection v;
  ng_connection_init(&v);
  v.flags = NG_CONN_BIDIRECTIONAL;
  CHECK_STATUS(ng_connection_update(rt, ba, &v, NG_CF_FLAG_BITS(NG_CONN_BIDIRECTIONAL)),
               NG_EEXIST);
  CHECK_STATUS(ng_connection_update(rt, ab2, &v, NG_CF_FLAGS), NG_EEXIST);
  CHECK_STATUS(ng_connection_delete(rt, ab2), NG_OK);
  CHECK_STATUS(ng_connection_update(rt, ba, &v, NG_CF_FLAG_BITS(NG_CONN_BIDIRECTIONAL)), NG_OK);
  CHECK_STATUS(ng_connection_find(rt, 1, 2, likes, &found), NG_OK);
  CHECK_EQ_INT(found, ba);
  v.connection_type = (uint8_t)trusts;
  CHECK_STATUS(ng_connection_update(rt, ba, &v, NG_CF_TYPE), NG_EEXIST);
  /* Clearing the flag: a -> b is then outgoing only. */
  v.flags = 0;
  CHECK_STATUS(ng_connection_update(rt, ab, &v, NG_CF_FLAG_BITS(NG_CONN_BIDIRECTIONAL)), NG_OK);
  CHECK_STATUS(ng_connection_find(rt, 2, 1, trusts, &found), NG_ENOTFOUND);
  size_t n = 0;
  ng_link_filter out_trusts = {NG_OUT, (int)trusts, NG_ANY};
  CHECK_STATUS(ng_token_links(rt, 2, &out_trusts, NULL, NULL, 0, &n), NG_OK);
  CHECK_EQ_INT(n, 0);
  CHECK_STATUS(ng_token_links(rt, 1, &out_trusts, NULL, NULL, 0, &n), NG_OK);
  CHECK_EQ_INT(n, 1);
  ng_runtime_release(rt);

  /* Degree limits count a link as stored: out for its from, in for its to,
   * one in each end's total, bidirectional or not. */
  rt = new_rt();
  ng_cdna cd;
  CHECK_STATUS(ng_cdna_get(rt, &cd), NG_OK);
  cd.max_out_degree = 1;
  cd.max_in_degree = 1;
  cd.max_total_degree = 2;
  CHECK_STATUS(ng_cdna_set(rt, &cd), NG_OK);
  make_tokens(rt, 3);
  link_flags(rt, 1, 2, trusts, NG_CONN_BIDIRECTIONAL, NG_OK);
  link_flags(rt, 2, 3, trusts, NG_CONN_BIDIRECTIONAL, NG_OK); /* 2 has one out, one in */
  link_flags(rt, 2, 1, likes, 0, NG_ELIMIT);                  /* a second out for 2 */
  link_flags(rt, 3, 1, likes, NG_CONN_BIDIRECTIONAL, NG_OK);  /* 3: out 1, 1: in 1 */
  ng_runtime_release(rt);
}

/* A snapshot from before the undirected-link rule may hold a bidirectional
 * a -> b beside a b -> a of the same type: it loads as it is, find(b, a)
 * gives the stored b -> a, and no update makes a new such pair. (The pair is
 * made here by setting the flag behind the API's back, as old code could.) */
static void test_old_snapshot_with_both_directions(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 2);
  const unsigned trusts = (unsigned)ng_conn_type_from_name("Trusts");
  ng_id ab = ngt_link(rt, 1, 2, trusts), ba = ngt_link(rt, 2, 1, trusts);
  rt->conns->recs[ngi_conns_find_slot(rt->conns, ab)].flags |= NG_CONN_BIDIRECTIONAL;
  char path[] = "/tmp/ng_undirected_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  fclose(fdopen(fd, "w"));
  CHECK_STATUS(ng_snapshot_save(rt, path), NG_OK);
  ng_runtime_release(rt);
  rt = NULL;
  CHECK_STATUS(ng_snapshot_load(path, NULL, &rt), NG_OK);
  remove(path);
  ng_id found = 0;
  CHECK_STATUS(ng_connection_find(rt, 1, 2, trusts, &found), NG_OK);
  CHECK_EQ_INT(found, ab);
  CHECK_STATUS(ng_connection_find(rt, 2, 1, trusts, &found), NG_OK);
  CHECK_EQ_INT(found, ba);
  ng_id ids[4];
  size_t n = 0;
  CHECK_STATUS(ng_token_connections(rt, 1, NG_IN, ids, 4, &n), NG_OK);
  CHECK(n == 2 && ids[0] == ab && ids[1] == ba);
  ng_connection v;
  ng_connection_init(&v);
  v.flags = NG_CONN_BIDIRECTIONAL;
  CHECK_STATUS(ng_connection_update(rt, ba, &v, NG_CF_FLAG_BITS(NG_CONN_BIDIRECTIONAL)),
               NG_EEXIST);
  v.pull_strength = 2;
  CHECK_STATUS(ng_connection_update(rt, ab, &v, NG_CF_PULL_STRENGTH), NG_OK);
  ng_runtime_release(rt);
}

/* Typed adjacency: direction, type and category, the other ends, id order
 * and counts without lists. */
static void test_token_links(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 5);
  const unsigned trusts = (unsigned)ng_conn_type_from_name("Trusts");
  const unsigned likes = (unsigned)ng_conn_type_from_name("Likes");
  const unsigned cause = (unsigned)ng_conn_type_from_name("Cause");
  ng_id l1 = ngt_link(rt, 1, 2, trusts);
  ng_id l2 = ngt_link(rt, 3, 1, trusts);
  ng_id l3 = ngt_link(rt, 1, 4, cause);
  ng_id l4 = link_flags(rt, 5, 1, likes, NG_CONN_BIDIRECTIONAL, NG_OK);
  ng_id l5 = ngt_link(rt, 1, 1, likes);
  ng_id conns[8], others[8];
  size_t n = 0;
  CHECK_STATUS(ng_token_links(rt, 1, NULL, conns, others, 8, &n), NG_OK);
  CHECK_EQ_INT(n, 5);
  CHECK(conns[0] == l1 && conns[1] == l2 && conns[2] == l3 && conns[3] == l4 && conns[4] == l5);
  CHECK(others[0] == 2 && others[1] == 3 && others[2] == 4 && others[3] == 5 && others[4] == 1);
  ng_link_filter f = {NG_OUT, NG_ANY, NG_ANY};
  CHECK_STATUS(ng_token_links(rt, 1, &f, conns, others, 8, &n), NG_OK);
  CHECK_EQ_INT(n, 4); /* l1, l3, l4 (bidirectional), l5 */
  CHECK(conns[0] == l1 && conns[1] == l3 && conns[2] == l4 && conns[3] == l5);
  CHECK(others[2] == 5);
  f.dir = NG_IN;
  CHECK_STATUS(ng_token_links(rt, 1, &f, NULL, others, 8, &n), NG_OK);
  CHECK_EQ_INT(n, 3); /* l2, l4, l5 */
  CHECK(others[0] == 3 && others[1] == 5 && others[2] == 1);
  f.dir = NG_BOTH;
  f.type = (int)trusts;
  CHECK_STATUS(ng_token_links(rt, 1, &f, conns, NULL, 1, &n), NG_OK);
  CHECK_EQ_INT(n, 2); /* the total, beyond cap */
  CHECK_EQ_INT(conns[0], l1);
  f.type = NG_ANY;
  f.category = ng_conn_type_category(likes); /* Emotional: Likes and Trusts */
  CHECK_STATUS(ng_token_links(rt, 1, &f, NULL, NULL, 0, &n), NG_OK);
  CHECK_EQ_INT(n, 4);
  f.dir = NG_OUT;
  CHECK_STATUS(ng_token_links(rt, 5, &f, NULL, others, 8, &n), NG_OK);
  CHECK(n == 1 && others[0] == 1);
  /* Bad arguments. */
  f.category = 11;
  CHECK_STATUS(ng_token_links(rt, 1, &f, NULL, NULL, 0, &n), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "category");
  f.category = NG_ANY;
  f.type = 176;
  CHECK_STATUS(ng_token_links(rt, 1, &f, NULL, NULL, 0, &n), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "type");
  f.type = NG_ANY;
  f.dir = (ng_direction)0;
  CHECK_STATUS(ng_token_links(rt, 1, &f, NULL, NULL, 0, &n), NG_EINVAL);
  f.dir = NG_BOTH;
  CHECK_STATUS(ng_token_links(rt, 1, &f, NULL, NULL, 1, &n), NG_EINVAL);
  CHECK_STATUS(ng_token_links(rt, 1, &f, NULL, NULL, 0, NULL), NG_EINVAL);
  CHECK_STATUS(ng_token_links(rt, 9, &f, NULL, NULL, 0, &n), NG_ENOTFOUND);
  ng_runtime_release(rt);
}

static void test_unknown_endpoints(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 2);
  link(rt, 1, 2);
  image before;
  take_image(rt, &before);
  ng_connection c;
  ng_id id = 777;
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 9, 2, &c, &id), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "ng_connection_create");
  CHECK_CONTAINS(ng_last_error(rt), "from token 9 does not exist");
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 1, 10, &c, &id), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "to token 10 does not exist");
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 0, 1, &c, &id), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "from must be a token id");
  CHECK_STATUS(ng_connection_create(rt, 1, NG_ID_MAX + 1u, &c, &id), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "to must be a token id");
  /* A composite record id is not a token id: it names a generation no token has. */
  ng_connection_init(&c);
  const ng_id composite = ng_make_id(2, NG_ENTITY_CONCEPT, 3);
  CHECK_STATUS(ng_connection_create(rt, 1, composite, &c, &id), NG_EINVAL);
  char msg[64];
  snprintf(msg, sizeof msg, "to token %llu does not exist", (unsigned long long)composite);
  CHECK_CONTAINS(ng_last_error(rt), msg);
  /* A deleted token is no endpoint. */
  ng_id t3 = 0;
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &t3), NG_OK);
  CHECK_STATUS(ng_token_delete(rt, t3, NULL), NG_OK);
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 1, t3, &c, &id), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "to token");
  CHECK_EQ_INT(id, 777);
  CHECK(same_image(rt, &before));
  ng_runtime_release(rt);
}

static void test_duplicates(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 3);
  ng_id a = link(rt, 1, 2);
  image before;
  take_image(rt, &before);
  ng_connection c;
  ng_connection_init(&c);
  c.pull_strength = 3.0f; /* other fields do not make it a different link */
  CHECK_STATUS(ng_connection_create(rt, 1, 2, &c, NULL), NG_EEXIST);
  CHECK_CONTAINS(ng_last_error(rt), "already exists");
  CHECK(same_image(rt, &before));
  ng_id rev = link(rt, 2, 1);              /* reverse direction */
  ng_id other = ngt_link(rt, 1, 2, 0x10); /* other type */
  ng_id third = link(rt, 1, 3);            /* other target */
  CHECK(rev != a && other != a && third != a);
  ng_id found = 0;
  CHECK_STATUS(ng_connection_find(rt, 1, 2, NG_CONN_ASSOCIATED_WITH, &found), NG_OK);
  CHECK_EQ_INT(found, a);
  CHECK_STATUS(ng_connection_find(rt, 2, 1, NG_CONN_ASSOCIATED_WITH, &found), NG_OK);
  CHECK_EQ_INT(found, rev);
  CHECK_STATUS(ng_connection_find(rt, 1, 2, 0x10, &found), NG_OK);
  CHECK_EQ_INT(found, other);
  CHECK_STATUS(ng_connection_find(rt, 1, 2, 0x11, &found), NG_ENOTFOUND);
  CHECK_STATUS(ng_connection_find(rt, 3, 1, NG_CONN_ASSOCIATED_WITH, &found), NG_ENOTFOUND);
  CHECK_STATUS(ng_connection_find(rt, 1, 2, 0x1000, &found), NG_ENOTFOUND);
  CHECK_STATUS(ng_connection_find(rt, 1, 2, 0x50, NULL), NG_EINVAL);
  /* Deleting the original frees the triple again. */
  CHECK_STATUS(ng_connection_delete(rt, a), NG_OK);
  CHECK_STATUS(ng_connection_find(rt, 1, 2, NG_CONN_ASSOCIATED_WITH, &found), NG_ENOTFOUND);
  ng_id again = link(rt, 1, 2);
  CHECK(again > third);
  ng_runtime_release(rt);
}

/* One invalid field per case; each must fail with EINVAL and change nothing. */
static void test_invalid_fields(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 2);
  link(rt, 2, 1);
  image before;
  take_image(rt, &before);
  ng_stats st0;
  CHECK_STATUS(ng_runtime_stats(rt, &st0), NG_OK);
  struct {
    const char *needle;
    int field;
    float f;
    unsigned u;
  } cases[] = {
      {"connection_type", 0, 0, 0xB0},
      {"connection_type", 0, 0, 0xFF},
      {"mutability", 1, 0, 3},
      {"mutability", 1, 0, 255},
      {"pull_strength", 2, NAN, 0},
      {"pull_strength", 2, INFINITY, 0},
      {"pull_strength", 2, -INFINITY, 0},
      {"pull_strength", 2, 10.001f, 0},
      {"pull_strength", 2, -10.5f, 0},
      {"preferred_distance", 3, 0.0f, 0},
      {"preferred_distance", 3, 0.009f, 0},
      {"preferred_distance", 3, 100.01f, 0},
      {"preferred_distance", 3, NAN, 0},
      {"preferred_distance", 3, -1.0f, 0},
      {"preferred_distance", 3, INFINITY, 0},
      {"padding1", 4, 0, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ng_connection c;
    ng_connection_init(&c);
    switch (cases[i].field) {
    case 0:
      c.connection_type = (uint8_t)cases[i].u;
      break;
    case 1:
      c.mutability = (uint8_t)cases[i].u;
      break;
    case 2:
      c.pull_strength = cases[i].f;
      break;
    case 3:
      c.preferred_distance = cases[i].f;
      break;
    case 4:
      c.padding1 = (uint16_t)cases[i].u;
      break;
    }
    ng_id id = 0;
    CHECK_STATUS(ng_connection_create(rt, 1, 2, &c, &id), NG_EINVAL);
    CHECK_EQ_INT(id, 0);
    CHECK_CONTAINS(ng_last_error(rt), cases[i].needle);
    CHECK_CONTAINS(ng_last_error(rt), "ng_connection_create");
  }
  CHECK(same_image(rt, &before));
  ng_stats st1;
  CHECK_STATUS(ng_runtime_stats(rt, &st1), NG_OK);
  CHECK_EQ_INT(st1.next_connection_id, st0.next_connection_id);
  /* The edges of the ranges are valid. */
  ng_connection c;
  ng_connection_init(&c);
  c.pull_strength = -10.0f;
  c.preferred_distance = 100.0f;
  c.mutability = NG_HYPOTHESIS;
  CHECK_STATUS(ng_connection_set_type(&c, 0xAF), NG_OK);
  c.mutability = NG_HYPOTHESIS;
  CHECK_STATUS(ng_connection_create(rt, 1, 2, &c, NULL), NG_OK);
  ng_connection_init(&c);
  c.pull_strength = 10.0f;
  c.preferred_distance = 0.01f;
  CHECK_STATUS(ng_connection_create(rt, 1, 2, &c, NULL), NG_OK);
  ng_runtime_release(rt);
}

static void clear_causal(ng_cdna *c, void *ud) {
  (void)ud;
  c->allowed_connection_types &= ~(1ull << 1);
}
static void allow_only_causal(ng_cdna *c, void *ud) {
  (void)ud;
  c->allowed_connection_types = 1ull << 1;
}

static void test_allowed_types(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 2);
  ng_id cause = ngt_link(rt, 1, 2, 0x10);
  set_cdna(rt, clear_causal, NULL);
  image before;
  take_image(rt, &before);
  ng_connection c;
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_set_type(&c, 0x1F), NG_OK);
  CHECK_STATUS(ng_connection_create(rt, 2, 1, &c, NULL), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "not allowed");
  CHECK_CONTAINS(ng_last_error(rt), "Causal");
  CHECK(same_image(rt, &before));
  /* Other categories pass; the existing Causal link stays and can be updated
   * in other fields, but not re-typed into a forbidden category. */
  ng_id assoc = link(rt, 2, 1);
  ng_connection v;
  ng_connection_init(&v);
  v.confidence = 9;
  CHECK_STATUS(ng_connection_update(rt, cause, &v, NG_CF_CONFIDENCE), NG_OK);
  v.connection_type = 0x11;
  take_image(rt, &before);
  CHECK_STATUS(ng_connection_update(rt, assoc, &v, NG_CF_TYPE), NG_EINVAL);
  CHECK(same_image(rt, &before));
  /* Only bits 0..10 matter; with only Causal allowed, AssociatedWith fails. */
  set_cdna(rt, allow_only_causal, NULL);
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 1, 1, &c, NULL), NG_EINVAL);
  CHECK_STATUS(ng_connection_set_type(&c, 0x15), NG_OK);
  CHECK_STATUS(ng_connection_create(rt, 1, 1, &c, NULL), NG_OK);
  ng_runtime_release(rt);
}

typedef struct degrees {
  uint32_t out, in, total;
} degrees;
static void set_degrees(ng_cdna *c, void *ud) {
  const degrees *d = ud;
  c->max_out_degree = d->out;
  c->max_in_degree = d->in;
  c->max_total_degree = d->total;
}

static void test_degree_limits(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 10);
  degrees d = {2, 1000, 1000};
  set_cdna(rt, set_degrees, &d);
  link(rt, 1, 2);
  link(rt, 1, 3);
  image before;
  take_image(rt, &before);
  ng_connection c;
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 1, 4, &c, NULL), NG_ELIMIT);
  CHECK_CONTAINS(ng_last_error(rt), "token 1");
  CHECK_CONTAINS(ng_last_error(rt), "max_out_degree 2");
  CHECK(same_image(rt, &before));
  link(rt, 4, 1); /* incoming is not limited by max_out_degree */

  d = (degrees){1000, 2, 1000};
  set_cdna(rt, set_degrees, &d);
  link(rt, 5, 6);
  link(rt, 7, 6);
  take_image(rt, &before);
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 8, 6, &c, NULL), NG_ELIMIT);
  CHECK_CONTAINS(ng_last_error(rt), "token 6");
  CHECK_CONTAINS(ng_last_error(rt), "max_in_degree 2");
  CHECK(same_image(rt, &before));
  link(rt, 6, 8);

  /* Total counts both directions, for either endpoint. Token 1 has 3. */
  d = (degrees){1000, 1000, 3};
  set_cdna(rt, set_degrees, &d);
  take_image(rt, &before);
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 9, 1, &c, NULL), NG_ELIMIT);
  CHECK_CONTAINS(ng_last_error(rt), "token 1");
  CHECK_CONTAINS(ng_last_error(rt), "max_total_degree 3");
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 1, 9, &c, NULL), NG_ELIMIT);
  CHECK_CONTAINS(ng_last_error(rt), "token 1");
  CHECK(same_image(rt, &before));
  /* A self-link adds two to the total: token 10 with total limit 1 cannot. */
  d = (degrees){1000, 1000, 1};
  set_cdna(rt, set_degrees, &d);
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 10, 10, &c, NULL), NG_ELIMIT);
  CHECK_CONTAINS(ng_last_error(rt), "token 10");
  d = (degrees){1000, 1000, 2};
  set_cdna(rt, set_degrees, &d);
  CHECK_STATUS(ng_connection_create(rt, 10, 10, &c, NULL), NG_OK);
  /* Deleting frees capacity again. */
  d = (degrees){2, 1000, 1000};
  set_cdna(rt, set_degrees, &d);
  ng_id first = 0;
  CHECK_STATUS(ng_connection_find(rt, 1, 2, NG_CONN_ASSOCIATED_WITH, &first), NG_OK);
  CHECK_STATUS(ng_connection_delete(rt, first), NG_OK);
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 1, 4, &c, NULL), NG_OK);
  ng_runtime_release(rt);
}

typedef struct strict_cfg {
  int on;
  float minw, maxw, minr, maxr;
} strict_cfg;
static void set_strict(ng_cdna *c, void *ud) {
  const strict_cfg *s = ud;
  if (s->on)
    c->flags |= NG_CDNA_STRICT_MODE;
  else
    c->flags &= ~(uint32_t)NG_CDNA_STRICT_MODE;
  c->min_connection_weight = s->minw;
  c->max_connection_weight = s->maxw;
  c->min_rigidity = s->minr;
  c->max_rigidity = s->maxr;
}

static void test_strict_mode(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 3);
  strict_cfg s = {0, 0.5f, 2.0f, 0.25f, 0.75f};
  set_cdna(rt, set_strict, &s);
  /* Off: only the structural ranges apply. */
  ng_connection c;
  ng_connection_init(&c);
  c.pull_strength = -5.0f;
  c.rigidity = 255;
  ng_id loose = 0;
  CHECK_STATUS(ng_connection_create(rt, 1, 2, &c, &loose), NG_OK);

  s.on = 1;
  set_cdna(rt, set_strict, &s);
  image before;
  take_image(rt, &before);
  ng_connection_init(&c);
  c.pull_strength = -5.0f; /* |pull| = 5 > 2 */
  CHECK_STATUS(ng_connection_create(rt, 1, 3, &c, NULL), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "pull_strength");
  CHECK_CONTAINS(ng_last_error(rt), "strict");
  c.pull_strength = 0.25f; /* below 0.5 */
  CHECK_STATUS(ng_connection_create(rt, 1, 3, &c, NULL), NG_EINVAL);
  c.pull_strength = -1.5f; /* |v| applies: ok, but rigidity 128/255 ok too */
  c.rigidity = 255;        /* 1.0 > 0.75 */
  CHECK_STATUS(ng_connection_create(rt, 1, 3, &c, NULL), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "rigidity");
  c.rigidity = 50; /* 0.196 < 0.25 */
  CHECK_STATUS(ng_connection_create(rt, 1, 3, &c, NULL), NG_EINVAL);
  CHECK(same_image(rt, &before));
  c.rigidity = 128;
  ng_id ok = 0;
  CHECK_STATUS(ng_connection_create(rt, 1, 3, &c, &ok), NG_OK);

  /* Update: strict limits apply to the fields written; the loose record
   * keeps its old values when other fields change. */
  ng_connection v;
  ng_connection_init(&v);
  v.confidence = 77;
  CHECK_STATUS(ng_connection_update(rt, loose, &v, NG_CF_CONFIDENCE), NG_OK);
  v.pull_strength = 3.0f;
  take_image(rt, &before);
  CHECK_STATUS(ng_connection_update(rt, ok, &v, NG_CF_PULL_STRENGTH), NG_EINVAL);
  v.rigidity = 255;
  CHECK_STATUS(ng_connection_update(rt, ok, &v, NG_CF_RIGIDITY), NG_EINVAL);
  CHECK(same_image(rt, &before));
  v.pull_strength = 2.0f;
  v.rigidity = 191; /* 0.749 */
  CHECK_STATUS(ng_connection_update(rt, ok, &v, NG_CF_PULL_STRENGTH | NG_CF_RIGIDITY), NG_OK);
  ng_connection got;
  CHECK_STATUS(ng_connection_get(rt, ok, &got), NG_OK);
  CHECK(got.pull_strength == 2.0f);
  CHECK_EQ_INT(got.rigidity, 191);
  ng_runtime_release(rt);
}

/* ---- update --------------------------------------------------------------- */

static void test_update(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 3);
  ng_id a = link(rt, 1, 2);
  ng_id b = ngt_link(rt, 1, 2, 0x10);
  image before;
  take_image(rt, &before);
  ng_connection v;
  memset(&v, 0, sizeof v);
  CHECK_STATUS(ng_connection_update(rt, a, &v, 0x20000), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "unknown field bits");
  CHECK_STATUS(ng_connection_update(rt, a, NULL, NG_CF_FLAGS), NG_EINVAL);
  CHECK_STATUS(ng_connection_update(rt, 99, &v, NG_CF_FLAGS), NG_ENOTFOUND);
  CHECK_STATUS(ng_connection_update(NULL, a, &v, NG_CF_FLAGS), NG_EINVAL);
  /* Re-typing a into b's (1, 2, 0x10) duplicates it. */
  v.connection_type = 0x10;
  CHECK_STATUS(ng_connection_update(rt, a, &v, NG_CF_TYPE), NG_EEXIST);
  v.connection_type = 0xB0;
  CHECK_STATUS(ng_connection_update(rt, a, &v, NG_CF_TYPE), NG_EINVAL);
  v.connection_type = 0x50;
  v.mutability = 3;
  CHECK_STATUS(ng_connection_update(rt, a, &v, NG_CF_MUTABILITY), NG_EINVAL);
  v.mutability = 0;
  v.pull_strength = NAN;
  CHECK_STATUS(ng_connection_update(rt, a, &v, NG_CF_PULL_STRENGTH | NG_CF_FLAGS), NG_EINVAL);
  v.pull_strength = 0;
  v.preferred_distance = 0; /* invalid, selected with valid fields: all or nothing */
  v.flags = 0xFF;
  CHECK_STATUS(ng_connection_update(rt, a, &v, NG_CF_PREFERRED_DISTANCE | NG_CF_FLAGS), NG_EINVAL);
  CHECK(same_image(rt, &before));

  /* Unselected fields are ignored even when invalid; endpoints never change. */
  ng_connection_init(&v);
  v.preferred_distance = -5; /* not selected */
  v.flags = NG_CONN_PERSISTENT;
  v.connection_type = 0x11;
  v.confidence = 200;
  for (int s = 0; s < NG_SPACES; s++)
    v.target_vector[s] = (int16_t)(s + 1);
  CHECK_STATUS(ng_connection_update(
                   rt, a, &v, NG_CF_FLAGS | NG_CF_TYPE | NG_CF_CONFIDENCE | NG_CF_TARGET_VECTOR),
               NG_OK);
  ng_connection got;
  CHECK_STATUS(ng_connection_get(rt, a, &got), NG_OK);
  CHECK_EQ_INT(got.token_a_id, 1);
  CHECK_EQ_INT(got.token_b_id, 2);
  CHECK_EQ_INT(got.flags, NG_CONN_PERSISTENT);
  CHECK_EQ_INT(got.connection_type, 0x11);
  CHECK_EQ_INT(got.mutability, NG_LEARNABLE); /* NG_CF_TYPE does not derive it */
  CHECK_EQ_INT(got.confidence, 200);
  CHECK(got.preferred_distance == 1.0f);
  CHECK_EQ_INT(got.target_vector[7], 8);
  ng_id found = 0;
  CHECK_STATUS(ng_connection_find(rt, 1, 2, 0x11, &found), NG_OK);
  CHECK_EQ_INT(found, a);
  CHECK_STATUS(ng_connection_find(rt, 1, 2, 0x50, &found), NG_ENOTFOUND);
  /* The type it gave up is free for a new link. */
  link(rt, 1, 2);
  /* Setting a type to its own value is no duplicate. */
  v.connection_type = 0x10;
  CHECK_STATUS(ng_connection_update(rt, b, &v, NG_CF_TYPE), NG_OK);

  /* NG_CF_ALL writes every field but the endpoints. */
  ng_connection_init(&v);
  v.connection_type = 0x22;
  v.rigidity = 1;
  v.active_levels = 2;
  v.activation_count = 3;
  v.pull_strength = 4;
  v.preferred_distance = 5;
  v.created_at = 6;
  v.last_activation = 7;
  v.mutability = 2;
  v.confidence = 8;
  v.evidence_count = 9;
  v.last_update = 10;
  v.learning_rate = 11;
  v.decay_rate = 12;
  v.source_id = 13;
  CHECK_STATUS(ng_connection_update(rt, b, &v, NG_CF_ALL), NG_OK);
  CHECK_STATUS(ng_connection_get(rt, b, &got), NG_OK);
  ng_connection want = v;
  want.token_a_id = 1;
  want.token_b_id = 2;
  CHECK(memcmp(&got, &want, sizeof want) == 0);
  CHECK_STATUS(ng_connection_update(rt, b, NULL, 0), NG_OK); /* nothing selected */
  ng_runtime_release(rt);
}

/* ---- learning ------------------------------------------------------------- */

static void test_learn(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 2);
  ng_id id = link(rt, 1, 2);
  ng_connection got;
  ngt_now += 10;
  CHECK_STATUS(ng_connection_learn(rt, id, NG_LEARN_ACTIVATE, &got), NG_OK);
  CHECK_EQ_INT(got.flags, 0x21);
  CHECK_EQ_INT(got.rigidity, 129);
  CHECK_EQ_INT(got.activation_count, 1);
  CHECK_EQ_INT(got.last_activation, ngt_now);
  ng_connection stored;
  CHECK_STATUS(ng_connection_get(rt, id, &stored), NG_OK);
  CHECK(memcmp(&stored, &got, sizeof got) == 0);

  ng_id id2 = link(rt, 2, 1);
  ngt_now += 5;
  CHECK_STATUS(ng_connection_learn(rt, id2, NG_LEARN_SUCCESS, &got), NG_OK);
  CHECK_EQ_INT(got.confidence, 160);
  CHECK_EQ_INT(got.evidence_count, 1);
  CHECK_EQ_INT(got.last_update, ngt_now);
  CHECK(got.flags & NG_CONN_MODIFIED);
  CHECK_STATUS(ng_connection_learn(rt, id2, NG_LEARN_FAILURE, NULL), NG_OK);
  CHECK_STATUS(ng_connection_get(rt, id2, &got), NG_OK);
  CHECK_EQ_INT(got.confidence, 144);
  CHECK_EQ_INT(got.evidence_count, 1);

  /* Decay: nothing for a Learnable link, even long after. */
  ngt_now += 100000;
  CHECK_STATUS(ng_connection_learn(rt, id2, NG_LEARN_DECAY, &got), NG_OK);
  CHECK_EQ_INT(got.confidence, 144);
  CHECK(!(got.flags & NG_CONN_DECAYING));

  /* A Hypothesis decays only once more than 3600 s have passed. */
  ng_connection c;
  ng_connection_init(&c);
  c.mutability = NG_HYPOTHESIS;
  c.flags = NG_CONN_ACTIVE;
  ng_id h = 0;
  CHECK_STATUS(ng_connection_create(rt, 1, 1, &c, &h), NG_OK);
  ngt_now += 3600;
  CHECK_STATUS(ng_connection_learn(rt, h, NG_LEARN_DECAY, &got), NG_OK);
  CHECK_EQ_INT(got.confidence, 128);
  CHECK_EQ_INT(got.flags, NG_CONN_ACTIVE);
  ngt_now += 1;
  CHECK_STATUS(ng_connection_learn(rt, h, NG_LEARN_DECAY, &got), NG_OK);
  CHECK_EQ_INT(got.confidence, 119); /* trunc(128 * (1 - 16/255)) */
  CHECK_EQ_INT(got.flags, NG_CONN_ACTIVE | NG_CONN_DECAYING);

  /* An Immutable link does not learn confidence. */
  ng_id syn = ngt_link(rt, 1, 2, 0x00);
  CHECK_STATUS(ng_connection_learn(rt, syn, NG_LEARN_FAILURE, &got), NG_OK);
  CHECK_EQ_INT(got.confidence, 255);

  image before;
  take_image(rt, &before);
  CHECK_STATUS(ng_connection_learn(rt, 999, NG_LEARN_ACTIVATE, &got), NG_ENOTFOUND);
  CHECK_STATUS(ng_connection_learn(rt, id, (ng_learn_op)0, &got), NG_EINVAL);
  CHECK_STATUS(ng_connection_learn(rt, id, (ng_learn_op)5, &got), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "ng_connection_learn");
  CHECK_STATUS(ng_connection_learn(NULL, id, NG_LEARN_ACTIVATE, &got), NG_EINVAL);
  CHECK(same_image(rt, &before));
  ng_runtime_release(rt);
}

/* ---- delete, token delete, clear ------------------------------------------ */

static void test_delete(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 2);
  ng_id a = link(rt, 1, 2), b = link(rt, 2, 1);
  CHECK_STATUS(ng_connection_delete(rt, a), NG_OK);
  CHECK_STATUS(ng_connection_delete(rt, a), NG_ENOTFOUND);
  CHECK_CONTAINS(ng_last_error(rt), "ng_connection_delete");
  CHECK_STATUS(ng_connection_delete(rt, 0), NG_EINVAL); /* no id at all */
  CHECK_STATUS(ng_connection_delete(NULL, b), NG_EINVAL);
  ng_connection got;
  CHECK_STATUS(ng_connection_get(rt, a, &got), NG_ENOTFOUND);
  CHECK_STATUS(ng_connection_get(rt, b, &got), NG_OK);
  CHECK_EQ_INT(ng_connection_count(rt), 1);
  ng_id ids[4];
  size_t n = 9;
  CHECK_STATUS(ng_token_connections(rt, 1, NG_OUT, ids, 4, &n), NG_OK);
  CHECK_EQ_INT(n, 0);
  CHECK_STATUS(ng_connection_delete(rt, b), NG_OK);
  CHECK_EQ_INT(ng_connection_count(rt), 0);
  CHECK_STATUS(ng_token_connections(rt, 2, NG_BOTH, ids, 4, &n), NG_OK);
  CHECK_EQ_INT(n, 0);
  /* Ids keep growing after deletes (a slot comes back only once more than 1024 are free). */
  ng_id c = link(rt, 1, 2);
  CHECK_EQ_INT(c, 3);
  ng_runtime_release(rt);
}

static void test_token_delete(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 4);
  ng_id ab = link(rt, 1, 2);
  ng_id ba = link(rt, 2, 1);
  ng_id ca = link(rt, 3, 1);
  ng_id bc = link(rt, 2, 3);
  ng_id aa = link(rt, 1, 1);
  ng_id ab2 = ngt_link(rt, 1, 2, 0x10);
  ng_id cd = link(rt, 3, 4);
  (void)ab;
  (void)ba;
  (void)ca;
  (void)aa;
  (void)ab2;
  size_t removed = 0;
  CHECK_STATUS(ng_token_delete(rt, 1, &removed), NG_OK);
  CHECK_EQ_INT(removed, 5);
  CHECK_EQ_INT(ng_connection_count(rt), 2);
  ng_id ids[8];
  size_t n = 0;
  CHECK_STATUS(ng_connection_list(rt, 0, 8, ids, &n), NG_OK);
  CHECK_EQ_INT(n, 2);
  CHECK_EQ_INT(ids[0], bc);
  CHECK_EQ_INT(ids[1], cd);
  CHECK_STATUS(ng_token_connections(rt, 2, NG_BOTH, ids, 8, &n), NG_OK);
  CHECK_EQ_INT(n, 1);
  CHECK_EQ_INT(ids[0], bc);
  CHECK_STATUS(ng_token_connections(rt, 3, NG_IN, ids, 8, &n), NG_OK);
  CHECK_EQ_INT(n, 1);
  CHECK_EQ_INT(ids[0], bc);
  CHECK_STATUS(ng_token_connections(rt, 3, NG_OUT, ids, 8, &n), NG_OK);
  CHECK_EQ_INT(n, 1);
  CHECK_EQ_INT(ids[0], cd);
  CHECK_STATUS(ng_token_connections(rt, 1, NG_BOTH, ids, 8, &n), NG_ENOTFOUND);
  /* A token without connections removes none. */
  ng_id lone = 0;
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &lone), NG_OK);
  CHECK_STATUS(ng_token_delete(rt, lone, &removed), NG_OK);
  CHECK_EQ_INT(removed, 0);
  CHECK_STATUS(ng_token_delete(rt, 3, &removed), NG_OK);
  CHECK_EQ_INT(removed, 2);
  CHECK_EQ_INT(ng_connection_count(rt), 0);
  ng_runtime_release(rt);
}

static void test_clear_and_ids(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 3);
  link(rt, 1, 2);
  link(rt, 2, 3);
  ng_id last = link(rt, 3, 1);
  size_t rt_tokens = 0, rc = 0;
  CHECK_STATUS(ng_token_clear(rt, &rt_tokens, &rc), NG_OK);
  CHECK_EQ_INT(rt_tokens, 3);
  CHECK_EQ_INT(rc, 3);
  CHECK_EQ_INT(ng_connection_count(rt), 0);
  ng_id ids[4];
  size_t n = 9;
  CHECK_STATUS(ng_connection_list(rt, 0, 4, ids, &n), NG_OK);
  CHECK_EQ_INT(n, 0);
  ng_id next = 0;
  CHECK_STATUS(ng_connection_next(rt, 0, &next), NG_ENOTFOUND);
  ng_id t1 = 0, t2 = 0;
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &t1), NG_OK);
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &t2), NG_OK);
  ng_id fresh = link(rt, t1, t2);
  CHECK_EQ_INT(fresh, last + 1);
  /* The old endpoints' adjacency is gone too: the same triple is free. */
  CHECK_STATUS(ng_connection_find(rt, t1, t2, NG_CONN_ASSOCIATED_WITH, &next), NG_OK);
  CHECK_EQ_INT(next, fresh);
  ng_stats st;
  CHECK_STATUS(ng_runtime_stats(rt, &st), NG_OK);
  CHECK_EQ_INT(st.connections, 1);
  CHECK_EQ_INT(st.next_connection_id, fresh + 1);
  ng_runtime_release(rt);
}

/* ---- iteration ------------------------------------------------------------ */

typedef struct collect {
  ng_id ids[64];
  size_t n, stop_after;
} collect;
static bool collect_fn(const ng_connection *c, ng_id id, void *ud) {
  collect *col = ud;
  (void)c;
  col->ids[col->n++] = id;
  return col->n != col->stop_after;
}

static ng_runtime *busy_rt;
static int busy_result;
static bool write_inside(const ng_connection *c, ng_id id, void *ud) {
  (void)ud;
  busy_result = (int)ng_connection_delete(busy_rt, id);
  ng_connection copy;
  /* readers work inside the callback */
  if (ng_connection_get(busy_rt, id, &copy) != NG_OK || memcmp(&copy, c, sizeof copy) != 0)
    busy_result = -1;
  return false;
}

static void test_iteration(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 10);
  ng_id all[20];
  for (uint32_t i = 0; i < 20; i++)
    all[i] = ngt_link(rt, 1 + i % 10, 1 + (i * 3 + 1) % 10, i < 10 ? 0x50u : 0x10u);
  /* holes: delete every third */
  ng_id want[20];
  size_t nw = 0;
  for (size_t i = 0; i < 20; i++) {
    if (i % 3 == 0)
      CHECK_STATUS(ng_connection_delete(rt, all[i]), NG_OK);
    else
      want[nw++] = all[i];
  }
  CHECK_EQ_INT(ng_connection_count(rt), nw);
  ng_id ids[32];
  size_t n = 0;
  CHECK_STATUS(ng_connection_list(rt, 0, 32, ids, &n), NG_OK);
  CHECK_EQ_INT(n, nw);
  CHECK(memcmp(ids, want, nw * sizeof ids[0]) == 0);
  CHECK_STATUS(ng_connection_list(rt, 3, 4, ids, &n), NG_OK);
  CHECK_EQ_INT(n, 4);
  CHECK(memcmp(ids, want + 3, 4 * sizeof ids[0]) == 0);
  CHECK_STATUS(ng_connection_list(rt, nw - 1, 4, ids, &n), NG_OK);
  CHECK_EQ_INT(n, 1);
  CHECK_EQ_INT(ids[0], want[nw - 1]);
  CHECK_STATUS(ng_connection_list(rt, nw, 4, ids, &n), NG_OK);
  CHECK_EQ_INT(n, 0);
  CHECK_STATUS(ng_connection_list(rt, 0, 0, NULL, &n), NG_OK);
  CHECK_EQ_INT(n, 0);
  CHECK_STATUS(ng_connection_list(rt, 0, 1, NULL, &n), NG_EINVAL);

  /* cursor */
  size_t k = 0;
  ng_id cur = 0, next = 0;
  while (ng_connection_next(rt, cur, &next) == NG_OK) {
    CHECK(k < nw && next == want[k]);
    k++;
    cur = next;
  }
  CHECK_EQ_INT(k, nw);
  CHECK_STATUS(ng_connection_next(rt, all[0], &next), NG_OK); /* from a deleted id */
  CHECK_EQ_INT(next, all[1]);
  CHECK_STATUS(ng_connection_next(rt, 0xFFFFFFFFu, &next), NG_ENOTFOUND);
  CHECK_STATUS(ng_connection_next(rt, 0, NULL), NG_EINVAL);

  /* callback, with early stop */
  collect col = {{0}, 0, 0};
  CHECK_STATUS(ng_connection_each(rt, collect_fn, &col), NG_OK);
  CHECK_EQ_INT(col.n, nw);
  CHECK(memcmp(col.ids, want, nw * sizeof want[0]) == 0);
  collect col2 = {{0}, 0, 2};
  CHECK_STATUS(ng_connection_each(rt, collect_fn, &col2), NG_OK);
  CHECK_EQ_INT(col2.n, 2);
  CHECK_STATUS(ng_connection_each(rt, NULL, NULL), NG_EINVAL);

  /* a write from inside the callback is refused, nothing changes */
  busy_rt = rt;
  busy_result = 0;
  CHECK_STATUS(ng_connection_each(rt, write_inside, NULL), NG_OK);
  CHECK_EQ_INT(busy_result, NG_EBUSY);
  CHECK_EQ_INT(ng_connection_count(rt), nw);
  ng_runtime_release(rt);
}

static void test_token_connections(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 5);
  ng_id o1 = link(rt, 1, 2);
  ng_id i1 = link(rt, 3, 1);
  ng_id o2 = link(rt, 1, 4);
  ng_id i2 = link(rt, 5, 1);
  ng_id o3 = ngt_link(rt, 1, 2, 0x10);
  link(rt, 2, 3); /* unrelated */
  ng_id ids[8];
  size_t n = 0;
  CHECK_STATUS(ng_token_connections(rt, 1, NG_OUT, ids, 8, &n), NG_OK);
  CHECK_EQ_INT(n, 3);
  CHECK(ids[0] == o1 && ids[1] == o2 && ids[2] == o3);
  CHECK_STATUS(ng_token_connections(rt, 1, NG_IN, ids, 8, &n), NG_OK);
  CHECK_EQ_INT(n, 2);
  CHECK(ids[0] == i1 && ids[1] == i2);
  CHECK_STATUS(ng_token_connections(rt, 1, NG_BOTH, ids, 8, &n), NG_OK);
  CHECK_EQ_INT(n, 5);
  CHECK(ids[0] == o1 && ids[1] == i1 && ids[2] == o2 && ids[3] == i2 && ids[4] == o3);
  /* cap smaller than the total: first cap ids, total in n, rest untouched */
  ng_id small[4] = {0, 0, 0xABCD, 0xABCD};
  CHECK_STATUS(ng_token_connections(rt, 1, NG_BOTH, small, 2, &n), NG_OK);
  CHECK_EQ_INT(n, 5);
  CHECK(small[0] == o1 && small[1] == i1 && small[2] == 0xABCD);
  CHECK_STATUS(ng_token_connections(rt, 1, NG_OUT, NULL, 0, &n), NG_OK);
  CHECK_EQ_INT(n, 3);
  /* deleting a middle one keeps the order */
  CHECK_STATUS(ng_connection_delete(rt, o2), NG_OK);
  CHECK_STATUS(ng_token_connections(rt, 1, NG_OUT, ids, 8, &n), NG_OK);
  CHECK_EQ_INT(n, 2);
  CHECK(ids[0] == o1 && ids[1] == o3);
  ng_id o4 = link(rt, 1, 4);
  CHECK_STATUS(ng_token_connections(rt, 1, NG_OUT, ids, 8, &n), NG_OK);
  CHECK_EQ_INT(n, 3);
  CHECK(ids[2] == o4);
  /* errors */
  CHECK_STATUS(ng_token_connections(rt, 99, NG_OUT, ids, 8, &n), NG_ENOTFOUND);
  CHECK_STATUS(ng_token_connections(rt, 0, NG_OUT, ids, 8, &n), NG_EINVAL);
  CHECK_STATUS(ng_token_connections(rt, 1, (ng_direction)0, ids, 8, &n), NG_EINVAL);
  CHECK_STATUS(ng_token_connections(rt, 1, (ng_direction)4, ids, 8, &n), NG_EINVAL);
  CHECK_STATUS(ng_token_connections(rt, 1, NG_OUT, NULL, 8, &n), NG_EINVAL);
  CHECK_STATUS(ng_token_connections(NULL, 1, NG_OUT, ids, 8, &n), NG_EINVAL);
  ng_runtime_release(rt);
}

/* Many links, most deleted (forces compaction and map growth), cross-checked
 * against a plain array model. */
static void test_churn(void) {
  ng_runtime *rt = new_rt();
  enum { T = 50, N = 2000 };
  make_tokens(rt, T);
  static ng_id id_of[N], from_of[N], to_of[N];
  static bool alive[N];
  uint32_t seed = 12345;
  size_t made = 0;
  for (size_t i = 0; i < N; i++) {
    seed = seed * 1103515245u + 12345u;
    ng_id f = 1 + (seed >> 8) % T;
    seed = seed * 1103515245u + 12345u;
    uint32_t t = 1 + (seed >> 8) % T;
    unsigned type = (unsigned)(i % NG_CONN_TYPES);
    ng_connection c;
    ng_connection_init(&c);
    CHECK_STATUS(ng_connection_set_type(&c, type), NG_OK);
    ng_id id = 0;
    ng_status s = ng_connection_create(rt, f, t, &c, &id);
    if (s == NG_EEXIST) continue;
    CHECK_STATUS(s, NG_OK);
    id_of[made] = id;
    from_of[made] = f;
    to_of[made] = t;
    alive[made] = true;
    made++;
    if (made > 3 && seed % 4 != 0) { /* delete an older one most of the time */
      size_t victim = (seed >> 4) % made;
      if (alive[victim]) {
        CHECK_STATUS(ng_connection_delete(rt, id_of[victim]), NG_OK);
        alive[victim] = false;
      }
    }
  }
  size_t live = 0;
  for (size_t i = 0; i < made; i++)
    live += alive[i];
  CHECK_EQ_INT(ng_connection_count(rt), live);
  /* every live one is found with the right endpoints; every dead one is gone */
  for (size_t i = 0; i < made; i++) {
    ng_connection got;
    ng_status s = ng_connection_get(rt, id_of[i], &got);
    CHECK_EQ_INT(s, alive[i] ? NG_OK : NG_ENOTFOUND);
    if (s == NG_OK) CHECK(got.token_a_id == from_of[i] && got.token_b_id == to_of[i]);
  }
  /* per-token adjacency matches the model in order */
  static ng_id got_ids[N], model[N];
  for (uint32_t t = 1; t <= T; t++) {
    for (int dir = NG_OUT; dir <= NG_BOTH; dir++) {
      size_t m = 0;
      for (size_t i = 0; i < made; i++)
        if (alive[i] && (((dir & NG_OUT) && from_of[i] == t) || ((dir & NG_IN) && to_of[i] == t)))
          model[m++] = id_of[i];
      size_t n = 0;
      CHECK_STATUS(ng_token_connections(rt, t, (ng_direction)dir, got_ids, N, &n), NG_OK);
      CHECK_EQ_INT(n, m);
      CHECK(memcmp(got_ids, model, m * sizeof model[0]) == 0);
    }
  }
  /* deleting every token removes everything, exactly once */
  size_t total = 0;
  for (uint32_t t = 1; t <= T; t++) {
    size_t r = 0;
    CHECK_STATUS(ng_token_delete(rt, t, &r), NG_OK);
    total += r;
  }
  CHECK_EQ_INT(total, live);
  CHECK_EQ_INT(ng_connection_count(rt), 0);
  ng_runtime_release(rt);
}

/* Readers on other threads see each adjacency answer whole (ascending ids,
 * each naming the token as its endpoint) while a writer churns. */
typedef struct reader_ctx {
  ng_runtime *rt;
  atomic_int *stop;
  int bad;
  atomic_long rounds;
} reader_ctx;
static void *reader(void *arg) {
  reader_ctx *r = arg;
  ng_id ids[64];
  while (!atomic_load(r->stop)) {
    for (uint32_t t = 1; t <= 8; t++) {
      size_t n = 0;
      if (ng_token_connections(r->rt, t, NG_OUT, ids, 64, &n) != NG_OK || n > 64) r->bad++;
      for (size_t k = 0; k < n && k < 64; k++) {
        if (k > 0 && ids[k] <= ids[k - 1]) r->bad++;
        ng_connection c;
        ng_status st = ng_connection_get(r->rt, ids[k], &c);
        if (st == NG_OK && c.token_a_id != t) r->bad++;
        if (st != NG_OK && st != NG_ENOTFOUND) r->bad++;
      }
    }
    atomic_fetch_add(&r->rounds, 1);
  }
  return NULL;
}

static void test_threads(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 8);
  atomic_int stop;
  atomic_init(&stop, 0);
  reader_ctx ctx[2] = {{rt, &stop, 0, 0}, {rt, &stop, 0, 0}};
  atomic_init(&ctx[0].rounds, 0);
  atomic_init(&ctx[1].rounds, 0);
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    CHECK(pthread_create(&th[i], NULL, reader, &ctx[i]) == 0);
  uint32_t seed = 7;
  for (int op = 0; op < 3000; op++) {
    seed = seed * 1103515245u + 12345u;
    ng_id f = 1 + (seed >> 8) % 8, t = 1 + (seed >> 12) % 8;
    ng_id id = 0;
    ng_status st = ng_connection_find(rt, f, t, NG_CONN_ASSOCIATED_WITH, &id);
    if (st == NG_OK)
      CHECK_STATUS(ng_connection_delete(rt, id), NG_OK);
    else
      link(rt, f, t);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 2; i++)
    CHECK(pthread_join(th[i], NULL) == 0);
  CHECK_EQ_INT(ctx[0].bad + ctx[1].bad, 0);
  ng_runtime_release(rt);
}

/* Records and their slots as the snapshot loader hands them to the table (the
 * generations come beside them, NULL for all 0). */
static ng_connection buf[6];
static uint32_t slots[6];

static void pack(ng_connection *recs, size_t k, uint32_t slot, uint32_t from, uint32_t to,
                 unsigned type) {
  ng_connection c;
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_set_type(&c, type), NG_OK);
  c.token_a_id = from;
  c.token_b_id = to;
  c.created_at = 1000 + slot;
  recs[k] = c;
  slots[k] = slot;
}

static void test_restore(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 4);
  ngi_conns_skip_slots(rt, 20); /* slots 1..19 were issued before, as in a loaded file */
  pack(buf, 0, 3, 1, 2, 0x50);
  pack(buf, 1, 7, 2, 1, 0x50);
  pack(buf, 2, 8, 1, 1, 0x50);
  pack(buf, 3, 10, 1, 2, 0x10);
  pack(buf, 4, 11, 3, 1, 0x50);
  /* not ascending: refused, table stays empty */
  pack(buf, 5, 11, 4, 4, 0x50);
  CHECK_STATUS(ngi_conns_restore(rt, rt->conns, buf, slots, NULL, 6), NG_ECORRUPT);
  CHECK_EQ_INT(ng_connection_count(rt), 0);
  /* an endpoint that is not a live token: refused */
  pack(buf, 5, 12, 4, 9, 0x50);
  CHECK_STATUS(ngi_conns_restore(rt, rt->conns, buf, slots, NULL, 6), NG_ECORRUPT);
  /* a slot never issued (at or above the allocator's fresh slot): refused */
  pack(buf, 5, 20, 4, 4, 0x50);
  CHECK_STATUS(ngi_conns_restore(rt, rt->conns, buf, slots, NULL, 6), NG_ECORRUPT);
  CHECK_EQ_INT(ng_connection_count(rt), 0);

  pack(buf, 5, 19, 4, 4, 0x50);
  CHECK_STATUS(ngi_conns_restore(rt, rt->conns, buf, slots, NULL, 6), NG_OK);
  CHECK_EQ_INT(ng_connection_count(rt), 6);
  CHECK_STATUS(ngi_conns_restore(rt, rt->conns, buf, slots, NULL, 6), NG_EINVAL); /* not empty */
  ng_connection got;
  CHECK_STATUS(ng_connection_get(rt, 10, &got), NG_OK);
  CHECK(got.token_a_id == 1 && got.token_b_id == 2 && got.connection_type == 0x10);
  CHECK_EQ_INT(got.created_at, 1010);
  CHECK_STATUS(ng_connection_get(rt, 4, &got), NG_ENOTFOUND);
  ng_id ids[8];
  size_t n = 0;
  CHECK_STATUS(ng_token_connections(rt, 1, NG_BOTH, ids, 8, &n), NG_OK);
  CHECK_EQ_INT(n, 5);
  CHECK(ids[0] == 3 && ids[1] == 7 && ids[2] == 8 && ids[3] == 10 && ids[4] == 11);
  CHECK_STATUS(ng_connection_list(rt, 0, 8, ids, &n), NG_OK);
  CHECK_EQ_INT(n, 6);
  CHECK(ids[0] == 3 && ids[5] == 19);
  /* the duplicate index and the id counter come back too */
  ng_connection c;
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 2, 1, &c, NULL), NG_EEXIST);
  ng_connection_init(&c);
  ng_id id = 0;
  CHECK_STATUS(ng_connection_create(rt, 4, 1, &c, &id), NG_OK);
  CHECK_EQ_INT(id, 20);
  size_t r = 0;
  CHECK_STATUS(ng_token_delete(rt, 1, &r), NG_OK);
  CHECK_EQ_INT(r, 6);
  CHECK_EQ_INT(ng_connection_count(rt), 1);
  ng_runtime_release(rt);

  /* generations beside the entries make the ids; they must ascend as (generation, slot) */
  rt = new_rt();
  make_tokens(rt, 4);
  ngi_conns_skip_slots(rt, 20);
  const uint32_t gens[6] = {0, 0, 0, 0, 1, 1}, bad_gens[6] = {0, 0, 0, 1, 0, 1};
  CHECK_STATUS(ngi_conns_restore(rt, rt->conns, buf, slots, bad_gens, 6), NG_ECORRUPT);
  CHECK_EQ_INT(ng_connection_count(rt), 0);
  CHECK_STATUS(ngi_conns_restore(rt, rt->conns, buf, slots, gens, 6), NG_OK);
  const ng_id g1 = (ng_id)1 << NG_CONNECTION_SLOT_BITS;
  CHECK_STATUS(ng_connection_get(rt, 11, &got), NG_ENOTFOUND);
  CHECK_STATUS(ng_connection_get(rt, g1 | 11, &got), NG_OK);
  CHECK(got.token_a_id == 3 && got.token_b_id == 1);
  ng_id from = 0, to = 0;
  CHECK_STATUS(ng_connection_ends(rt, g1 | 19, &from, &to), NG_OK);
  CHECK(from == 4 && to == 4);
  CHECK_STATUS(ng_connection_list(rt, 0, 8, ids, &n), NG_OK);
  CHECK(n == 6 && ids[3] == 10 && ids[4] == (g1 | 11) && ids[5] == (g1 | 19));
  ng_runtime_release(rt);

  /* allocation failures leave the table empty and leak nothing */
  ngt_alloc fa = NGT_ALLOC_NEVER;
  ng_config cfg = {0};
  cfg.alloc = ngt_alloc_fn;
  cfg.alloc_ud = &fa;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  if (!rt) return;
  make_tokens(rt, 4);
  ngi_conns_skip_slots(rt, 20);
  int failures = 0;
  for (long budget = 0; budget < 20; budget++) {
    ngt_alloc_arm(&fa, budget, 0);
    ng_status st = ngi_conns_restore(rt, rt->conns, buf, slots, NULL, 6);
    fa.fail_after = -1;
    if (st == NG_OK) break;
    CHECK_STATUS(st, NG_ENOMEM);
    CHECK_EQ_INT(ng_connection_count(rt), 0);
    failures++;
  }
  CHECK(failures > 0);
  CHECK_EQ_INT(ng_connection_count(rt), 6);
  ng_runtime_release(rt);
  CHECK_EQ_INT(fa.live_bytes, 0);
}

/* Every allocation a create makes is made to fail in turn: each failure is
 * NG_ENOMEM with the store unchanged; nothing leaks at the end. */
/* Slots run out at NG_CONNECTION_SLOT_MAX: the last is usable, then NG_ELIMIT; a deleted
 * one then comes back (no fresh slot is left) under a new generation. */
static void test_id_limit(void) {
  ng_runtime *rt = new_rt();
  make_tokens(rt, 2);
  ng_id first = link(rt, 1, 2);
  ngi_conns_skip_slots(rt, NG_CONNECTION_SLOT_MAX - 1);
  CHECK_EQ_INT(link(rt, 2, 1), NG_CONNECTION_SLOT_MAX - 1);
  CHECK_EQ_INT(link(rt, 1, 1), NG_CONNECTION_SLOT_MAX);
  image before;
  take_image(rt, &before);
  ng_connection c;
  ng_connection_init(&c);
  ng_id id = 0;
  CHECK_STATUS(ng_connection_create(rt, 2, 2, &c, &id), NG_ELIMIT);
  CHECK_CONTAINS(ng_last_error(rt), "connection limit reached");
  CHECK_EQ_INT(id, 0);
  CHECK(same_image(rt, &before));
  /* the store still works at the top of the id range */
  ng_id next = 0;
  CHECK_STATUS(ng_connection_next(rt, first, &next), NG_OK);
  CHECK_EQ_INT(next, NG_CONNECTION_SLOT_MAX - 1);
  CHECK_STATUS(ng_connection_next(rt, NG_CONNECTION_SLOT_MAX, &next), NG_ENOTFOUND);
  CHECK_STATUS(ng_connection_delete(rt, NG_CONNECTION_SLOT_MAX), NG_OK);
  const ng_id reused = (ng_id)1 << NG_CONNECTION_SLOT_BITS | NG_CONNECTION_SLOT_MAX;
  CHECK_STATUS(ng_connection_create(rt, 2, 2, &c, &id), NG_OK);
  CHECK(id == reused);
  CHECK_STATUS(ng_connection_get(rt, NG_CONNECTION_SLOT_MAX, &c), NG_ENOTFOUND); /* stale */
  CHECK_STATUS(ng_connection_delete(rt, NG_CONNECTION_SLOT_MAX), NG_ENOTFOUND);
  ng_connection_init(&c);
  CHECK_STATUS(ng_connection_create(rt, 1, 1, &c, &id), NG_ELIMIT);
  ng_id ids[4];
  size_t n = 0;
  CHECK_STATUS(ng_token_connections(rt, 2, NG_BOTH, ids, 4, &n), NG_OK);
  CHECK_EQ_INT(n, 3);
  CHECK(ids[0] == first && ids[1] == NG_CONNECTION_SLOT_MAX - 1 && ids[2] == reused);
  ng_runtime_release(rt);
}

static void test_out_of_memory(void) {
  ngt_alloc fa = NGT_ALLOC_NEVER;
  ng_config cfg = {0};
  cfg.alloc = ngt_alloc_fn;
  cfg.alloc_ud = &fa;
  cfg.clock = ngt_clock;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  if (!rt) return;
  make_tokens(rt, 40);
  int enomem = 0;
  for (uint32_t i = 0; i < 120; i++) {
    ng_connection c;
    ng_connection_init(&c);
    CHECK_STATUS(ng_connection_set_type(&c, i / 40), NG_OK);
    for (long budget = 0;; budget++) {
      image before;
      take_image(rt, &before);
      ng_stats s0;
      CHECK_STATUS(ng_runtime_stats(rt, &s0), NG_OK);
      ngt_alloc_arm(&fa, budget, 0);
      ng_id id = 0;
      ng_status st = ng_connection_create(rt, 1 + i % 40, 1 + (i * 7 + 3) % 40, &c, &id);
      fa.fail_after = -1;
      if (st == NG_OK) break;
      CHECK_STATUS(st, NG_ENOMEM);
      enomem++;
      CHECK(same_image(rt, &before));
      ng_stats s1;
      CHECK_STATUS(ng_runtime_stats(rt, &s1), NG_OK);
      CHECK_EQ_INT(s1.next_connection_id, s0.next_connection_id);
      if (budget > 10) break;
    }
    if (i % 3 == 0) {
      ng_id victim = 0;
      if (ng_connection_next(rt, i, &victim) == NG_OK)
        CHECK_STATUS(ng_connection_delete(rt, victim), NG_OK);
    }
  }
  CHECK(enomem > 0);
  /* deletes never allocate */
  ngt_alloc_arm(&fa, 0, 0);
  size_t r = 0;
  CHECK_STATUS(ng_token_delete(rt, 1, &r), NG_OK);
  CHECK(r > 0);
  fa.fail_after = -1;
  ng_runtime_release(rt);
  CHECK_EQ_INT(fa.live_bytes, 0);
}

int main(void) {
  RUN(test_defaults_and_vector);
  RUN(test_bidirectional_and_self);
  RUN(test_undirected_links);
  RUN(test_old_snapshot_with_both_directions);
  RUN(test_token_links);
  RUN(test_unknown_endpoints);
  RUN(test_duplicates);
  RUN(test_invalid_fields);
  RUN(test_allowed_types);
  RUN(test_degree_limits);
  RUN(test_strict_mode);
  RUN(test_update);
  RUN(test_learn);
  RUN(test_delete);
  RUN(test_token_delete);
  RUN(test_clear_and_ids);
  RUN(test_iteration);
  RUN(test_token_connections);
  RUN(test_churn);
  RUN(test_id_limit);
  RUN(test_restore);
  RUN(test_threads);
  RUN(test_out_of_memory);
  return ngt_done("test_connections");
}

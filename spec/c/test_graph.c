/* Tests of the graph walks: breadth-first walks, cheapest paths, spreading activation, bad input.
 */
#include "test.h"
#include "test_alloc.h"

#include <math.h>
#include <pthread.h>

static ng_runtime *new_rt(ngt_alloc *a) {
  ng_config cfg = {0};
  cfg.clock = ngt_clock;
  if (a) {
    cfg.alloc = ngt_alloc_fn;
    cfg.alloc_ud = a;
  }
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  return rt;
}

/* A link from -> to with confidence conf (u8). */
static ng_id link_conf(ng_runtime *rt, ng_id from, ng_id to, uint8_t conf) {
  ng_connection c;
  ng_connection_init(&c);
  c.confidence = conf;
  ng_id id = 0;
  CHECK_STATUS(ng_connection_create(rt, from, to, &c, &id), NG_OK);
  return id;
}

/*
 * Tokens 1..6 placed in L1 at x = 0, 1, 1, 2, 3, 9 (y = z = 0 except token 3
 * at y = 1), and the links, in id order:
 *   1 -> 2 (conf 255), 1 -> 3 (255), 2 -> 4 (51), 3 -> 4 (255), 4 -> 5 (128), 6 -> 1 (128)
 */
static ng_runtime *hand_graph(ngt_alloc *a) {
  ng_runtime *rt = new_rt(a);
  static const double pos[6][3] = {{0, 0, 0}, {1, 0, 0}, {1, 1, 0},
                                   {2, 0, 0}, {3, 0, 0}, {9, 0, 0}};
  for (int i = 0; i < 6; i++) {
    ng_place p = {0, {pos[i][0], pos[i][1], pos[i][2]}};
    ng_id id = 0;
    CHECK_STATUS(ng_token_create_at(rt, NULL, &p, 1, &id), NG_OK);
    CHECK_EQ_INT(id, i + 1);
  }
  link_conf(rt, 1, 2, 255);
  link_conf(rt, 1, 3, 255);
  link_conf(rt, 2, 4, 51);
  link_conf(rt, 3, 4, 255);
  link_conf(rt, 4, 5, 128);
  link_conf(rt, 6, 1, 128);
  return rt;
}

static void check_ids(const ng_id *got, size_t n, const ng_id *want, size_t wn, int line) {
  ngt_checks++;
  bool same = n == wn;
  for (size_t i = 0; same && i < n; i++)
    same = got[i] == want[i];
  if (!same) {
    ngt_failures++;
    fprintf(stderr, "%s:%d: ids differ: got", __FILE__, line);
    for (size_t i = 0; i < n; i++)
      fprintf(stderr, " %llu", (unsigned long long)got[i]);
    fprintf(stderr, "\n");
  }
}
#define CHECK_IDS(got, n, ...)                                                                     \
  do {                                                                                             \
    const ng_id want_[] = {__VA_ARGS__};                                                           \
    check_ids(got, n, want_, sizeof want_ / sizeof want_[0], __LINE__);                            \
  } while (0)

#define CHECK_NEAR(a, b) CHECK(fabs((double)(a) - (double)(b)) < 1e-9)

static void test_bfs(void) {
  ng_runtime *rt = hand_graph(NULL);
  ng_id ids[16];
  uint32_t depths[16];
  size_t n = 0;
  CHECK_STATUS(ng_graph_bfs(rt, 1, NULL, ids, depths, 16, &n), NG_OK);
  CHECK_IDS(ids, n, 1, 2, 3, 4, 5);
  CHECK(depths[0] == 0 && depths[1] == 1 && depths[2] == 1 && depths[3] == 2 && depths[4] == 3);

  ng_walk w = {NG_BOTH, 0, {0}, 0};
  CHECK_STATUS(ng_graph_bfs(rt, 4, &w, ids, depths, 16, &n), NG_OK);
  CHECK_IDS(ids, n, 4, 2, 3, 5, 1, 6);
  CHECK(depths[4] == 2 && depths[5] == 3);

  w.max_depth = 1; /* a neighbourhood of 1 hop */
  CHECK_STATUS(ng_graph_bfs(rt, 4, &w, ids, depths, 16, &n), NG_OK);
  CHECK_IDS(ids, n, 4, 2, 3, 5);

  w = (ng_walk){NG_IN, 0, {0}, 0};
  CHECK_STATUS(ng_graph_bfs(rt, 1, &w, ids, NULL, 16, &n), NG_OK);
  CHECK_IDS(ids, n, 1, 6);

  /* cap 0 counts; a short buffer gets the first cap */
  CHECK_STATUS(ng_graph_bfs(rt, 1, NULL, NULL, NULL, 0, &n), NG_OK);
  CHECK_EQ_INT(n, 5);
  CHECK_STATUS(ng_graph_bfs(rt, 1, NULL, ids, NULL, 2, &n), NG_OK);
  CHECK_EQ_INT(n, 5);
  CHECK_IDS(ids, 2, 1, 2);

  /* types: only links of type 0x01 (none here) leave the start alone */
  w = (ng_walk){0};
  w.types[0] = 1ull << 0x01;
  CHECK_STATUS(ng_graph_bfs(rt, 1, &w, ids, NULL, 16, &n), NG_OK);
  CHECK_IDS(ids, n, 1);
  /* categories: AssociatedWith's own */
  w = (ng_walk){0};
  w.categories = (uint16_t)(1u << (NG_CONN_ASSOCIATED_WITH >> 4));
  CHECK_STATUS(ng_graph_bfs(rt, 1, &w, ids, NULL, 16, &n), NG_OK);
  CHECK_EQ_INT(n, 5);

  /* a bidirectional link acts both ways */
  ng_connection c;
  ng_connection_init(&c);
  c.flags = NG_CONN_BIDIRECTIONAL;
  CHECK_STATUS(ng_connection_create(rt, 6, 5, &c, NULL), NG_OK);
  CHECK_STATUS(ng_graph_bfs(rt, 1, NULL, ids, NULL, 16, &n), NG_OK);
  CHECK_IDS(ids, n, 1, 2, 3, 4, 5, 6);
  ng_runtime_release(rt);
}

static void test_bfs_bad_input(void) {
  ng_runtime *rt = hand_graph(NULL);
  ng_id ids[4];
  size_t n = 99;
  CHECK_STATUS(ng_graph_bfs(rt, 77, NULL, ids, NULL, 4, &n), NG_ENOTFOUND);
  CHECK(strstr(ng_last_error(rt), "start token 77 not found") != NULL);
  CHECK_EQ_INT(n, 99);
  CHECK_STATUS(ng_graph_bfs(rt, 0, NULL, ids, NULL, 4, &n), NG_EINVAL);
  ng_walk w = {(ng_direction)7, 0, {0}, 0};
  CHECK_STATUS(ng_graph_bfs(rt, 1, &w, ids, NULL, 4, &n), NG_EINVAL);
  w = (ng_walk){0};
  w.types[2] = 1ull << 60; /* type 188 */
  CHECK_STATUS(ng_graph_bfs(rt, 1, &w, ids, NULL, 4, &n), NG_EINVAL);
  w = (ng_walk){0};
  w.categories = 1u << 11;
  CHECK_STATUS(ng_graph_bfs(rt, 1, &w, ids, NULL, 4, &n), NG_EINVAL);
  CHECK_STATUS(ng_graph_bfs(rt, 1, NULL, NULL, NULL, 4, &n), NG_EINVAL);
  CHECK_STATUS(ng_graph_bfs(rt, 1, NULL, ids, NULL, 4, NULL), NG_EINVAL);
  ng_runtime_release(rt);
}

/* NG_COST_FN: each link costs its target's id; counts the calls. */
static int fn_calls;
static double cost_by_target(const ng_connection *c, ng_id conn, ng_id from, ng_id to, void *ud) {
  (void)c;
  (void)conn;
  (void)from;
  (void)ud;
  fn_calls++;
  return (double)to;
}
static double cost_negative(const ng_connection *c, ng_id conn, ng_id from, ng_id to, void *ud) {
  (void)c;
  (void)conn;
  (void)from;
  (void)to;
  (void)ud;
  return -1;
}
/* Writes during the walk are allowed: the callback runs with no lock held. */
static double cost_writing(const ng_connection *c, ng_id conn, ng_id from, ng_id to, void *ud) {
  (void)c;
  (void)conn;
  (void)from;
  (void)to;
  ng_runtime *rt = ud;
  CHECK_STATUS(ng_token_create(rt, NULL, 0, NULL), NG_OK);
  return 1;
}

static void test_path(void) {
  ng_runtime *rt = hand_graph(NULL);
  ng_id ids[16];
  size_t n = 0;
  double cost = -1;
  /* hops: 4 is reached through 2 and 3 at the same cost; the smaller id wins */
  CHECK_STATUS(ng_graph_path(rt, 1, 5, NULL, ids, 16, &n, &cost), NG_OK);
  CHECK_IDS(ids, n, 1, 2, 4, 5);
  CHECK_NEAR(cost, 3);
  /* weight: -ln(confidence / 255), so the strong 3 -> 4 beats the weak 2 -> 4 */
  ng_path_opts o = {0};
  o.cost = NG_COST_WEIGHT;
  CHECK_STATUS(ng_graph_path(rt, 1, 5, &o, ids, 16, &n, &cost), NG_OK);
  CHECK_IDS(ids, n, 1, 3, 4, 5);
  CHECK_NEAR(cost, -log(128 / 255.0));
  /* distance in L1 (A*): 1-2-4-5 is 3 long, 1-3-4-5 is 1 + sqrt 2 + 1 */
  o = (ng_path_opts){0};
  o.cost = NG_COST_DISTANCE;
  CHECK_STATUS(ng_graph_path(rt, 1, 5, &o, ids, 16, &n, &cost), NG_OK);
  CHECK_IDS(ids, n, 1, 2, 4, 5);
  CHECK(fabs(cost - 3) < 1e-6);
  /* not placed in L2: no path */
  o.space = 1;
  CHECK_STATUS(ng_graph_path(rt, 1, 5, &o, ids, 16, &n, &cost), NG_ENOTFOUND);
  /* max_cost */
  o = (ng_path_opts){0};
  o.max_cost = 2.5;
  CHECK_STATUS(ng_graph_path(rt, 1, 5, &o, ids, 16, &n, &cost), NG_ENOTFOUND);
  CHECK(strstr(ng_last_error(rt), "no path from 1 to 5") != NULL);
  o.max_cost = 3;
  CHECK_STATUS(ng_graph_path(rt, 1, 5, &o, ids, 16, &n, &cost), NG_OK);
  /* a path to itself */
  CHECK_STATUS(ng_graph_path(rt, 3, 3, NULL, ids, 16, &n, &cost), NG_OK);
  CHECK_IDS(ids, n, 3);
  CHECK_NEAR(cost, 0);
  /* against the direction: none; both ways: 5 -> 4 -> 2 -> 1 */
  CHECK_STATUS(ng_graph_path(rt, 5, 1, NULL, ids, 16, &n, &cost), NG_ENOTFOUND);
  o = (ng_path_opts){0};
  o.walk.dir = NG_BOTH;
  CHECK_STATUS(ng_graph_path(rt, 5, 1, &o, ids, 16, &n, &cost), NG_OK);
  CHECK_IDS(ids, n, 5, 4, 2, 1);
  /* cap too small: the length, nothing else */
  CHECK_STATUS(ng_graph_path(rt, 1, 5, NULL, ids, 2, &n, NULL), NG_OK);
  CHECK_EQ_INT(n, 4);
  /* a cost function: 1 -> 2 -> 4 -> 5 costs 2 + 4 + 5, through 3 costs 12 */
  o = (ng_path_opts){0};
  o.cost = NG_COST_FN;
  o.fn = cost_by_target;
  fn_calls = 0;
  CHECK_STATUS(ng_graph_path(rt, 1, 5, &o, ids, 16, &n, &cost), NG_OK);
  CHECK_IDS(ids, n, 1, 2, 4, 5);
  CHECK_NEAR(cost, 11);
  CHECK(fn_calls >= 4);
  o.fn = cost_negative;
  CHECK_STATUS(ng_graph_path(rt, 1, 5, &o, ids, 16, &n, &cost), NG_EINVAL);
  CHECK(strstr(ng_last_error(rt), "fn returned -1") != NULL);
  o.fn = cost_writing;
  o.ud = rt;
  size_t before = ng_token_count(rt);
  CHECK_STATUS(ng_graph_path(rt, 1, 5, &o, ids, 16, &n, &cost), NG_OK);
  CHECK(ng_token_count(rt) > before);
  ng_runtime_release(rt);
}

static void test_path_bad_input(void) {
  ng_runtime *rt = hand_graph(NULL);
  ng_id ids[4];
  size_t n = 0;
  CHECK_STATUS(ng_graph_path(rt, 1, 99, NULL, ids, 4, &n, NULL), NG_ENOTFOUND);
  CHECK(strstr(ng_last_error(rt), "to token 99 not found") != NULL);
  CHECK_STATUS(ng_graph_path(rt, 99, 1, NULL, ids, 4, &n, NULL), NG_ENOTFOUND);
  CHECK(strstr(ng_last_error(rt), "from token 99 not found") != NULL);
  ng_path_opts o = {0};
  o.cost = (ng_cost)9;
  CHECK_STATUS(ng_graph_path(rt, 1, 5, &o, ids, 4, &n, NULL), NG_EINVAL);
  o = (ng_path_opts){0};
  o.cost = NG_COST_FN;
  CHECK_STATUS(ng_graph_path(rt, 1, 5, &o, ids, 4, &n, NULL), NG_EINVAL);
  o = (ng_path_opts){0};
  o.cost = NG_COST_DISTANCE;
  o.space = 8;
  CHECK_STATUS(ng_graph_path(rt, 1, 5, &o, ids, 4, &n, NULL), NG_EINVAL);
  o = (ng_path_opts){0};
  o.max_cost = NAN;
  CHECK_STATUS(ng_graph_path(rt, 1, 5, &o, ids, 4, &n, NULL), NG_EINVAL);
  ng_runtime_release(rt);
}

/* The hand-derived spreads from token 1 with energy 1 and the defaults:
 * FIRST: 2 and 3 get 1 * 1 * 0.8; 4 first hears from 2: 0.8 * 0.2 * 0.8 =
 * 0.128 (51/255 = 0.2); 5 gets 0.128 * (128/255) * 0.8 = 0.0514, reached
 * but under the threshold. MAX: 4 keeps 0.8 * 1 * 0.8 = 0.64 (through 3), 5
 * gets 0.64 * (128/255) * 0.8. SUM: 4 gets 0.128 + 0.64 = 0.768, 5 that
 * times (128/255) * 0.8. */
static void test_spread(void) {
  ng_runtime *rt = hand_graph(NULL);
  ng_spread_opts o;
  ng_spread_init(&o);
  ng_activation out[8];
  ng_id path[32];
  size_t n = 0, pn = 0;
  ng_id src = 1;
  CHECK_STATUS(ng_graph_spread(rt, &src, NULL, 1, &o, out, 8, &n, path, 32, &pn), NG_OK);
  CHECK_EQ_INT(n, 4);
  CHECK(out[0].id == 1 && out[1].id == 2 && out[2].id == 3 && out[3].id == 4);
  CHECK_NEAR(out[0].energy, 1);
  CHECK_NEAR(out[1].energy, 0.8);
  CHECK_NEAR(out[2].energy, 0.8);
  CHECK_NEAR(out[3].energy, 0.8 * 0.2 * 0.8);
  CHECK_EQ_INT(out[3].depth, 2);
  CHECK_EQ_INT(out[3].source, 1);
  CHECK_IDS(path + out[3].path_off, out[3].depth + 1, 1, 2, 4);
  CHECK_EQ_INT(pn, 1 + 2 + 2 + 3);

  const double w5 = 128 / 255.0;
  o.mode = NG_SPREAD_MAX;
  CHECK_STATUS(ng_graph_spread(rt, &src, NULL, 1, &o, out, 8, &n, path, 32, &pn), NG_OK);
  CHECK_EQ_INT(n, 5);
  CHECK(out[3].id == 4 && out[4].id == 5);
  CHECK_NEAR(out[3].energy, 0.64);
  CHECK_NEAR(out[4].energy, 0.64 * w5 * 0.8);
  CHECK_IDS(path + out[4].path_off, out[4].depth + 1, 1, 3, 4, 5);

  o.mode = NG_SPREAD_SUM;
  CHECK_STATUS(ng_graph_spread(rt, &src, NULL, 1, &o, out, 8, &n, path, 32, &pn), NG_OK);
  CHECK_EQ_INT(n, 5);
  CHECK_NEAR(out[3].energy, 0.768);
  CHECK_NEAR(out[4].energy, 0.768 * w5 * 0.8);
  CHECK_IDS(path + out[3].path_off, out[3].depth + 1, 1, 3, 4);

  /* two sources, energies given; max_depth 1 */
  ng_id two[2] = {6, 4};
  double e[2] = {0.5, 2};
  ng_spread_init(&o);
  o.walk.max_depth = 1;
  CHECK_STATUS(ng_graph_spread(rt, two, e, 2, &o, out, 8, &n, path, 32, &pn), NG_OK);
  CHECK_EQ_INT(n, 4); /* 4 (2), 5 (2 * w5 * 0.8), 6 (0.5), 1 (0.5 * w5 * 0.8 = 0.2008) */
  CHECK(out[0].id == 4 && out[1].id == 5 && out[2].id == 6 && out[3].id == 1);
  CHECK_EQ_INT(out[1].source, 4);
  CHECK_EQ_INT(out[3].source, 6);

  /* cap 0 counts */
  CHECK_STATUS(ng_graph_spread(rt, two, e, 2, &o, NULL, 0, &n, NULL, 0, &pn), NG_OK);
  CHECK_EQ_INT(n, 4);
  CHECK_EQ_INT(pn, 1 + 2 + 1 + 2);
  ng_runtime_release(rt);
}

static void test_spread_bad_input(void) {
  ng_runtime *rt = hand_graph(NULL);
  ng_spread_opts o;
  ng_spread_init(&o);
  size_t n = 0, pn = 0;
  ng_id src[2] = {1, 1};
  double e = NAN;
  CHECK_STATUS(ng_graph_spread(rt, src, NULL, 2, &o, NULL, 0, &n, NULL, 0, &pn), NG_EINVAL);
  CHECK(strstr(ng_last_error(rt), "given twice") != NULL);
  CHECK_STATUS(ng_graph_spread(rt, src, &e, 1, &o, NULL, 0, &n, NULL, 0, &pn), NG_EINVAL);
  ng_id missing = 42;
  CHECK_STATUS(ng_graph_spread(rt, &missing, NULL, 1, &o, NULL, 0, &n, NULL, 0, &pn), NG_ENOTFOUND);
  o.walk.max_depth = 0;
  CHECK_STATUS(ng_graph_spread(rt, src, NULL, 1, &o, NULL, 0, &n, NULL, 0, &pn), NG_EINVAL);
  CHECK(strstr(ng_last_error(rt), "max_depth") != NULL);
  ng_spread_init(&o);
  o.decay = NAN;
  CHECK_STATUS(ng_graph_spread(rt, src, NULL, 1, &o, NULL, 0, &n, NULL, 0, &pn), NG_EINVAL);
  ng_spread_init(&o);
  o.min_energy = -1;
  CHECK_STATUS(ng_graph_spread(rt, src, NULL, 1, &o, NULL, 0, &n, NULL, 0, &pn), NG_EINVAL);
  ng_spread_init(&o);
  o.mode = (ng_spread_mode)5;
  CHECK_STATUS(ng_graph_spread(rt, src, NULL, 1, &o, NULL, 0, &n, NULL, 0, &pn), NG_EINVAL);
  CHECK_STATUS(ng_graph_spread(rt, src, NULL, 0, NULL, NULL, 0, &n, NULL, 0, &pn), NG_EINVAL);
  ng_runtime_release(rt);
}

/* Every allocation a walk makes may fail: the walk reports NG_ENOMEM, leaks
 * nothing, and the next walk works. */
static void test_out_of_memory(void) {
  ngt_alloc a = NGT_ALLOC_NEVER;
  ng_runtime *rt = hand_graph(&a);
  ng_id ids[8];
  size_t n = 0, pn = 0;
  ng_activation out[8];
  ng_id path[32], src = 1;
  ng_spread_opts so;
  ng_spread_init(&so);
  so.mode = NG_SPREAD_SUM;
  for (long budget = 0; budget < 12; budget++) {
    ngt_alloc_arm(&a, budget, 0);
    ng_status s1 = ng_graph_bfs(rt, 1, NULL, ids, NULL, 8, &n);
    ngt_alloc_arm(&a, budget, 0);
    ng_status s2 = ng_graph_path(rt, 1, 5, NULL, ids, 8, &n, NULL);
    ngt_alloc_arm(&a, budget, 0);
    ng_status s3 = ng_graph_spread(rt, &src, NULL, 1, &so, out, 8, &n, path, 32, &pn);
    CHECK(s1 == NG_OK || s1 == NG_ENOMEM);
    CHECK(s2 == NG_OK || s2 == NG_ENOMEM);
    CHECK(s3 == NG_OK || s3 == NG_ENOMEM);
    ngt_alloc_arm(&a, -1, 0);
    CHECK_STATUS(ng_graph_bfs(rt, 1, NULL, ids, NULL, 8, &n), NG_OK);
    CHECK_EQ_INT(n, 5);
  }
  ngt_alloc_arm(&a, -1, 0);
  ng_runtime_release(rt);
  CHECK_EQ_INT(a.live_blocks, 0);
}

/* A random graph of n tokens placed in L1, 4n links (some bidirectional,
 * some self-links, some types other than the default), built the same way
 * from `seed` on every call, then some links and tokens deleted (tombstones). */
static ng_runtime *random_graph(int n, uint64_t seed) {
  ng_runtime *rt = new_rt(NULL);
  ng_cdna cd;
  ng_cdna_get(rt, &cd);
  cd.max_out_degree = cd.max_in_degree = cd.max_total_degree = 100000;
  CHECK_STATUS(ng_cdna_set(rt, &cd), NG_OK);
  for (int i = 0; i < n; i++) {
    ng_place p = {0,
                  {(double)(ngt_rnd(&seed) % 200) - 100, (double)(ngt_rnd(&seed) % 200) - 100, 0}};
    CHECK_STATUS(ng_token_create_at(rt, NULL, &p, 1, NULL), NG_OK);
  }
  for (int k = 0; k < 4 * n; k++) {
    ng_connection c;
    ng_connection_init(&c);
    c.confidence = (uint8_t)(1 + ngt_rnd(&seed) % 255);
    c.pull_strength = (float)(ngt_rnd(&seed) % 41) / 4 - 5;
    if (ngt_rnd(&seed) % 8 == 0) c.flags = NG_CONN_BIDIRECTIONAL;
    if (ngt_rnd(&seed) % 4 == 0) CHECK_STATUS(ng_connection_set_type(&c, 0x10), NG_OK);
    ng_id a = 1 + ngt_rnd(&seed) % (uint32_t)n;
    ng_id b = ngt_rnd(&seed) % 50 == 0 ? a : 1 + ngt_rnd(&seed) % (uint32_t)n;
    ng_status st = ng_connection_create(rt, a, b, &c, NULL);
    CHECK(st == NG_OK || st == NG_EEXIST);
  }
  for (int k = 0; k < n / 4; k++)
    (void)ng_connection_delete(rt, 1 + ngt_rnd(&seed) % (uint32_t)(4 * n));
  for (int k = 0; k < n / 50; k++)
    (void)ng_token_delete(rt, 1 + ngt_rnd(&seed) % (uint32_t)n, NULL);
  return rt;
}

/* Every walk of `a` and `b` (equal stores) from `from` gives the same answer. */
static void same_walks(ng_runtime *a, ng_runtime *b, ng_id from, ng_id to, int line) {
  enum { CAP = 8192 };
  static ng_id ia[CAP], ib[CAP], pa[4 * CAP], pb[4 * CAP];
  static uint32_t da[CAP], db[CAP];
  static ng_activation xa[CAP], xb[CAP];
  int before = ngt_failures;
  for (int dir = NG_OUT; dir <= NG_BOTH; dir++) {
    ng_walk w = {(ng_direction)dir, 0, {0}, 0};
    size_t na = 0, nb = 0;
    ng_status sa = ng_graph_bfs(a, from, &w, ia, da, CAP, &na);
    ng_status sb = ng_graph_bfs(b, from, &w, ib, db, CAP, &nb);
    CHECK(sa == sb && na == nb && memcmp(ia, ib, na * sizeof *ia) == 0 &&
          memcmp(da, db, na * sizeof *da) == 0);
    w.types[0x10 / 64] = 1ull << (0x10 % 64);
    sa = ng_graph_bfs(a, from, &w, ia, da, CAP, &na);
    sb = ng_graph_bfs(b, from, &w, ib, db, CAP, &nb);
    CHECK(sa == sb && na == nb && memcmp(ia, ib, na * sizeof *ia) == 0);
    for (int cost = NG_COST_HOPS; cost <= NG_COST_DISTANCE; cost++) {
      ng_path_opts o = {0};
      o.walk.dir = (ng_direction)dir;
      o.cost = (ng_cost)cost;
      double ca = -1, cb = -2;
      sa = ng_graph_path(a, from, to, &o, ia, CAP, &na, &ca);
      sb = ng_graph_path(b, from, to, &o, ib, CAP, &nb, &cb);
      CHECK(sa == sb);
      if (sa == NG_OK) CHECK(na == nb && ca == cb && memcmp(ia, ib, na * sizeof *ia) == 0);
    }
    for (int mode = NG_SPREAD_FIRST; mode <= NG_SPREAD_MAX; mode++) {
      ng_spread_opts o;
      ng_spread_init(&o);
      o.walk.dir = (ng_direction)dir;
      o.field = NG_WEIGHT_PULL;
      o.mode = (ng_spread_mode)mode;
      o.threshold = 0.001;
      double e = 20;
      size_t qa = 0, qb = 0;
      sa = ng_graph_spread(a, &from, &e, 1, &o, xa, CAP, &na, pa, 4 * CAP, &qa);
      sb = ng_graph_spread(b, &from, &e, 1, &o, xb, CAP, &nb, pb, 4 * CAP, &qb);
      CHECK(sa == sb && na == nb && qa == qb && na <= CAP && qa <= 4 * CAP);
      for (size_t i = 0; sa == NG_OK && i < na && i < nb; i++)
        CHECK(xa[i].id == xb[i].id && xa[i].energy == xb[i].energy && xa[i].depth == xb[i].depth &&
              xa[i].path_off == xb[i].path_off);
      if (sa == NG_OK) CHECK(memcmp(pa, pb, qa * sizeof *pa) == 0);
    }
  }
  if (ngt_failures != before) fprintf(stderr, "  (same_walks called from line %d)\n", line);
}

/* Walks that cross many links switch to a compact copy of the adjacency
 * (the CSR); it answers exactly as the linked lists do, and a write makes
 * it stale. `warm` has walked a lot (so it copies), `cold` has never walked. */
static void test_adjacency_copy(void) {
  ng_runtime *warm = random_graph(3000, 7), *cold = random_graph(3000, 7);
  ng_id ids[16];
  size_t n = 0;
  ng_id from = 1;
  for (; from < 100; from++) /* a start that reaches much of the graph (and exists) */
    if (ng_graph_bfs(warm, from, NULL, NULL, NULL, 0, &n) == NG_OK && n > 1000) break;
  CHECK(n > 1000);
  for (int dir = NG_OUT; dir <= NG_BOTH; dir++) { /* warm every direction twice */
    ng_walk w = {(ng_direction)dir, 0, {0}, 0};
    CHECK_STATUS(ng_graph_bfs(warm, from, &w, ids, NULL, 16, &n), NG_OK);
    CHECK_STATUS(ng_graph_bfs(warm, from, &w, ids, NULL, 16, &n), NG_OK);
  }
  same_walks(warm, cold, from, 2999, __LINE__);
  /* writes on both: the copy is stale and rebuilt; the cold one still walks the lists */
  ng_runtime_release(cold);
  cold = random_graph(3000, 7);
  uint64_t seed = 99;
  for (int k = 0; k < 200; k++) {
    ng_id a = 1 + ngt_rnd(&seed) % 3000, b = 1 + ngt_rnd(&seed) % 3000;
    ng_connection c;
    ng_connection_init(&c);
    c.flags = k % 3 == 0 ? NG_CONN_BIDIRECTIONAL : 0;
    ng_status s1 = ng_connection_create(warm, a, b, &c, NULL);
    ng_status s2 = ng_connection_create(cold, a, b, &c, NULL);
    CHECK(s1 == s2);
    ng_id d = 1 + ngt_rnd(&seed) % 12000;
    CHECK(ng_connection_delete(warm, d) == ng_connection_delete(cold, d));
  }
  same_walks(warm, cold, from, 1500, __LINE__);
  /* inside a transaction the copy is not used: the walk sees the transaction's own writes */
  CHECK_STATUS(ng_txn_begin(warm), NG_OK);
  ng_id lone = 0;
  CHECK_STATUS(ng_token_create(warm, NULL, 0, &lone), NG_OK);
  CHECK_STATUS(ng_connection_create(warm, from, lone, NULL, NULL), NG_OK);
  CHECK_STATUS(ng_graph_path(warm, from, lone, NULL, ids, 16, &n, NULL), NG_OK);
  CHECK_STATUS(ng_connection_create(warm, lone, from, NULL, NULL), NG_OK);
  CHECK_STATUS(ng_graph_path(warm, lone, from, NULL, ids, 16, &n, NULL), NG_OK);
  CHECK_EQ_INT(n, 2);
  CHECK_STATUS(ng_txn_rollback(warm), NG_OK);
  CHECK_STATUS(ng_graph_path(warm, lone, from, NULL, ids, 16, &n, NULL), NG_ENOTFOUND);
  ng_runtime_release(warm);
  ng_runtime_release(cold);
}

/* Walks on several threads while another writes: no walk fails, the scratch
 * and the adjacency copy are never shared by two walks (ThreadSanitizer
 * checks that in CI), and nothing leaks. */
typedef struct walk_job {
  ng_runtime *rt;
  int rounds;
  int failures;
} walk_job;

static void *walker_thread(void *ud) {
  walk_job *j = ud;
  static _Thread_local ng_id ids[4096];
  for (int r = 0; r < j->rounds; r++) {
    size_t n = 0;
    ng_walk w = {(ng_direction)(1 + r % 3), 0, {0}, 0};
    ng_status st = ng_graph_bfs(j->rt, 1 + (ng_id)(r % 50), &w, ids, NULL, 4096, &n);
    if (st != NG_OK && st != NG_ENOTFOUND) j->failures++;
    ng_spread_opts o;
    ng_spread_init(&o);
    o.mode = (ng_spread_mode)(r % 3);
    ng_id src = 1 + (ng_id)(r % 50);
    size_t pn = 0;
    st = ng_graph_spread(j->rt, &src, NULL, 1, &o, NULL, 0, &n, NULL, 0, &pn);
    if (st != NG_OK && st != NG_ENOTFOUND) j->failures++;
    st = ng_graph_path(j->rt, src, 2 + (ng_id)(r % 7), NULL, ids, 4096, &n, NULL);
    if (st != NG_OK && st != NG_ENOTFOUND) j->failures++;
  }
  return NULL;
}

static void test_threads(void) {
  ng_runtime *rt = random_graph(1500, 3);
  walk_job jobs[3];
  pthread_t th[3];
  for (int i = 0; i < 3; i++) {
    jobs[i] = (walk_job){rt, 200, 0};
    CHECK(pthread_create(&th[i], NULL, walker_thread, &jobs[i]) == 0);
  }
  uint64_t seed = 5;
  for (int k = 0; k < 2000; k++) {
    ng_id a = 1 + ngt_rnd(&seed) % 1500, b = 1 + ngt_rnd(&seed) % 1500;
    (void)ng_connection_create(rt, a, b, NULL, NULL);
    (void)ng_connection_delete(rt, 1 + ngt_rnd(&seed) % 8000);
  }
  for (int i = 0; i < 3; i++) {
    pthread_join(th[i], NULL);
    CHECK_EQ_INT(jobs[i].failures, 0);
  }
  ng_runtime_release(rt);
}

int main(void) {
  test_bfs();
  test_bfs_bad_input();
  test_path();
  test_path_bad_input();
  test_spread();
  test_spread_bad_input();
  test_out_of_memory();
  test_adjacency_copy();
  test_threads();
  return ngt_done("test_graph");
}

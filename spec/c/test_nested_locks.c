/* Read locks nested over many runtimes (issue 11 item 5): callbacks of ng_*_each nested over
 * more runtimes than the per-thread table holds inline must keep working, and must not deadlock
 * against a writer waiting on one of them. An alarm turns a deadlock into a failure. */
#include "test.h"

#include "neurograph.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

enum { RUNTIMES = 24, TARGET = 20 }; /* TARGET: the runtime the writer waits on */

static ng_runtime *rts[RUNTIMES];
static ng_runtime *spare; /* held by nobody: writes to it must work at any depth */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int innermost_reached, writer_started;

/* Results, checked by main (CHECK is not thread-safe). */
static int reads_ok, busy_ok, spare_ok, conn_each_ok;
static ng_status writer_status = NG_EINVAL;

static void *writer(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  while (!innermost_reached)
    pthread_cond_wait(&cv, &mu);
  writer_started = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  /* Queues behind the reader's hold; a writer-preferring lock then stops new readers. */
  ng_id id;
  writer_status = ng_token_create(rts[TARGET], NULL, NG_TF_COORDS_ALL, &id);
  return NULL;
}

static bool count_conn(const ng_connection *c, ng_id id, void *ud) {
  (void)c;
  (void)id;
  ++*(int *)ud;
  return true;
}

/* At the bottom of the nest, with a writer waiting on rts[TARGET]: read every runtime again
 * (each re-read nests in this thread's hold), write where it must fail and where it must work. */
static void innermost(void) {
  pthread_mutex_lock(&mu);
  innermost_reached = 1;
  pthread_cond_broadcast(&cv);
  while (!writer_started)
    pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  struct timespec pause = {0, 200 * 1000 * 1000};
  nanosleep(&pause, NULL); /* let the writer block in its lock call */

  int ok = 1;
  for (int k = 0; k < RUNTIMES; k++) {
    ng_id ids[4];
    size_t n = 0;
    if (ng_token_count(rts[k]) != 1) ok = 0;
    if (ng_token_list(rts[k], 0, 4, ids, &n) != NG_OK || n != 1) ok = 0;
  }
  reads_ok = ok;

  ok = 1;
  for (int k = 0; k < RUNTIMES; k++) {
    ng_id id;
    if (ng_token_create(rts[k], NULL, NG_TF_COORDS_ALL, &id) != NG_EBUSY) ok = 0;
  }
  busy_ok = ok;

  ng_id id;
  spare_ok = ng_token_create(spare, NULL, NG_TF_COORDS_ALL, &id) == NG_OK;
  int seen = 0;
  conn_each_ok = ng_connection_each(rts[TARGET], count_conn, &seen) == NG_OK && seen == 0;
}

static bool nest(const ng_token *tok, ng_id id, void *ud) {
  (void)tok;
  (void)id;
  int level = (int)(intptr_t)ud + 1;
  if (level == RUNTIMES)
    innermost();
  else
    ng_token_each(rts[level], nest, (void *)(intptr_t)level);
  return true;
}

static void *reader(void *arg) {
  (void)arg;
  ng_token_each(rts[0], nest, (void *)(intptr_t)0);
  return NULL;
}

static void test_nested_reads_with_waiting_writer(void) {
  for (int k = 0; k < RUNTIMES; k++) {
    ng_id id;
    CHECK_STATUS(ng_runtime_new(NULL, &rts[k]), NG_OK);
    CHECK_STATUS(ng_token_create(rts[k], NULL, NG_TF_COORDS_ALL, &id), NG_OK);
  }
  CHECK_STATUS(ng_runtime_new(NULL, &spare), NG_OK);

  pthread_t r, w;
  pthread_create(&w, NULL, writer, NULL);
  pthread_create(&r, NULL, reader, NULL);
  pthread_join(r, NULL);
  pthread_join(w, NULL);

  CHECK(reads_ok);
  CHECK(busy_ok);
  CHECK(spare_ok);
  CHECK(conn_each_ok);
  CHECK_STATUS(writer_status, NG_OK);
  CHECK_EQ_INT(ng_token_count(rts[TARGET]), 2);
  for (int k = 0; k < RUNTIMES; k++)
    ng_runtime_release(rts[k]);
  ng_runtime_release(spare);
}

/* After a deep nest has ended, the thread's bookkeeping is back to empty: every runtime
 * can be written again from the same thread. */
static int depth_seen;
static bool nest_then_count(const ng_token *tok, ng_id id, void *ud) {
  (void)tok;
  (void)id;
  int level = (int)(intptr_t)ud + 1;
  if (level > depth_seen) depth_seen = level;
  if (level < RUNTIMES) ng_token_each(rts[level], nest_then_count, (void *)(intptr_t)level);
  return false; /* one token per level: the runtimes grow between rounds */
}

static void test_deep_nest_unwinds(void) {
  for (int k = 0; k < RUNTIMES; k++) {
    ng_id id;
    CHECK_STATUS(ng_runtime_new(NULL, &rts[k]), NG_OK);
    CHECK_STATUS(ng_token_create(rts[k], NULL, NG_TF_COORDS_ALL, &id), NG_OK);
  }
  for (int round = 0; round < 3; round++) {
    depth_seen = 0;
    CHECK_STATUS(ng_token_each(rts[0], nest_then_count, (void *)(intptr_t)0), NG_OK);
    CHECK_EQ_INT(depth_seen, RUNTIMES);
    for (int k = 0; k < RUNTIMES; k++) {
      ng_id id;
      CHECK_STATUS(ng_token_create(rts[k], NULL, NG_TF_COORDS_ALL, &id), NG_OK);
    }
  }
  for (int k = 0; k < RUNTIMES; k++)
    ng_runtime_release(rts[k]);
}

int main(void) {
  alarm(30); /* a deadlock ends the test with SIGALRM, a failure */
  RUN(test_nested_reads_with_waiting_writer);
  RUN(test_deep_nest_unwinds);
  return ngt_done("test_nested_locks");
}

/* Masked writes (issue 12 item 2): two threads write different parts of the same record many
 * times, each with one masked update (NG_TF_ENTITY, NG_CF_FLAG_BITS); no update is lost: every
 * read-back and the final record hold both threads' last writes. */
#include "test.h"

#include "neurograph.h"

#include <pthread.h>

enum { ROUNDS = 20000 };

typedef struct writer {
  ng_runtime *rt;
  ng_id id;
  int which;            /* 0 or 1: which part of the record this thread owns */
  unsigned last;        /* the value of its last write */
  unsigned long errors; /* CHECK is not thread-safe: counted here, checked by main */
} writer;

/* Thread 0 cycles the entity (NG_TF_ENTITY); thread 1 the weight and the domain. */
static void *token_writer(void *arg) {
  writer *w = arg;
  for (unsigned i = 1; i <= ROUNDS; i++) {
    ng_token v, got;
    ng_token_init(&v);
    if (w->which == 0) {
      w->last = i % NG_ENTITY_COUNT;
      ng_token_set_entity(&v, w->last);
      v.flags |= 0xF0FF; /* the other flag bits must not be written */
      if (ng_token_update(w->rt, w->id, &v, NG_TF_ENTITY) != NG_OK) w->errors++;
      if (ng_token_get(w->rt, w->id, &got) != NG_OK || ng_token_get_entity(&got) != w->last)
        w->errors++;
    } else {
      w->last = i;
      v.weight = (float)(i % 100);
      v.id = ng_make_id(0, 0, i % 16);
      if (ng_token_update(w->rt, w->id, &v, NG_TF_WEIGHT | NG_TF_DOMAIN) != NG_OK) w->errors++;
      if (ng_token_get(w->rt, w->id, &got) != NG_OK || got.weight != (float)(i % 100) ||
          NG_ID_DOMAIN(got.id) != i % 16)
        w->errors++;
    }
  }
  return NULL;
}

static void test_token_entity_and_other_fields(void) {
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(NULL, &rt), NG_OK);
  ng_token t;
  ng_token_init(&t);
  t.flags = 0x2005;
  ng_id id = 0;
  CHECK_STATUS(ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id), NG_OK);

  writer w[2] = {{.rt = rt, .id = id, .which = 0}, {.rt = rt, .id = id, .which = 1}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    pthread_create(&th[i], NULL, token_writer, &w[i]);
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  CHECK_EQ_INT(w[0].errors, 0);
  CHECK_EQ_INT(w[1].errors, 0);

  CHECK_STATUS(ng_token_get(rt, id, &t), NG_OK);
  CHECK_EQ_INT(ng_token_get_entity(&t), w[0].last);
  CHECK_EQ_INT(NG_ID_ENTITY(t.id), w[0].last); /* the id's entity copy follows */
  CHECK_EQ_INT(t.flags & ~NG_TOKEN_ENTITY_MASK, 0x2005 & ~NG_TOKEN_ENTITY_MASK);
  CHECK(t.weight == (float)(w[1].last % 100));
  CHECK_EQ_INT(NG_ID_DOMAIN(t.id), w[1].last % 16);
  ng_runtime_release(rt);
}

/* Each thread owns flag bits and toggles them with NG_CF_FLAG_BITS; thread 1 also writes the
 * confidence in the same update. */
static const uint8_t owned[2] = {NG_CONN_BIDIRECTIONAL, NG_CONN_USER_FLAG | NG_CONN_INHIBITORY};

static void *conn_writer(void *arg) {
  writer *w = arg;
  uint8_t mine = owned[w->which];
  for (unsigned i = 1; i <= ROUNDS; i++) {
    ng_connection v, got;
    ng_connection_init(&v);
    w->last = i;
    v.flags = (i & 1) ? mine : (uint8_t)~mine; /* only the bits in the mask count */
    uint8_t want = (i & 1) ? mine : 0;
    uint32_t fields = NG_CF_FLAG_BITS(mine);
    if (w->which == 1) {
      v.confidence = (uint8_t)i;
      fields |= NG_CF_CONFIDENCE;
    }
    if (ng_connection_update(w->rt, w->id, &v, fields) != NG_OK) w->errors++;
    if (ng_connection_get(w->rt, w->id, &got) != NG_OK || (got.flags & mine) != want) w->errors++;
  }
  return NULL;
}

static void test_connection_flag_bits(void) {
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(NULL, &rt), NG_OK);
  ng_id a = 0, b = 0, id = 0;
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &a), NG_OK);
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &b), NG_OK);
  ng_connection c;
  ng_connection_init(&c);
  c.flags = NG_CONN_ACTIVE | NG_CONN_PERSISTENT; /* owned by neither thread */
  CHECK_STATUS(ng_connection_create(rt, a, b, &c, &id), NG_OK);

  writer w[2] = {{.rt = rt, .id = id, .which = 0}, {.rt = rt, .id = id, .which = 1}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    pthread_create(&th[i], NULL, conn_writer, &w[i]);
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  CHECK_EQ_INT(w[0].errors, 0);
  CHECK_EQ_INT(w[1].errors, 0);

  CHECK_STATUS(ng_connection_get(rt, id, &c), NG_OK);
  uint8_t want = NG_CONN_ACTIVE | NG_CONN_PERSISTENT;
  for (int i = 0; i < 2; i++)
    if (w[i].last & 1) want |= owned[i];
  CHECK_EQ_INT(c.flags, want);
  CHECK_EQ_INT(c.confidence, (uint8_t)w[1].last);
  ng_runtime_release(rt);
}

/* The selectors themselves: NG_CF_FLAGS writes all bits and wins over NG_CF_FLAG_BITS; an empty
 * mask writes nothing; NG_TF_FLAGS writes the entity too. */
static void test_selectors(void) {
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(NULL, &rt), NG_OK);
  ng_id a = 0, b = 0, id = 0;
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &a), NG_OK);
  CHECK_STATUS(ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &b), NG_OK);
  ng_connection c, v;
  ng_connection_init(&c);
  c.flags = 0x03;
  CHECK_STATUS(ng_connection_create(rt, a, b, &c, &id), NG_OK);
  ng_connection_init(&v);
  v.flags = 0xF0;
  CHECK_STATUS(ng_connection_update(rt, id, &v, NG_CF_FLAG_BITS(0x30)), NG_OK);
  CHECK_STATUS(ng_connection_get(rt, id, &c), NG_OK);
  CHECK_EQ_INT(c.flags, 0x33);
  CHECK_STATUS(ng_connection_update(rt, id, &v, NG_CF_FLAGS | NG_CF_FLAG_BITS(0x01)), NG_OK);
  CHECK_STATUS(ng_connection_get(rt, id, &c), NG_OK);
  CHECK_EQ_INT(c.flags, 0xF0);
  CHECK_STATUS(ng_connection_update(rt, id, NULL, 0), NG_OK);
  CHECK_STATUS(ng_connection_update(rt, id, &v, 0x00800000u), NG_EINVAL); /* unknown bit 23 */

  ng_token t;
  ng_token_init(&t);
  t.flags = 0x1F00 | NG_TOKEN_ACTIVE;
  CHECK_STATUS(ng_token_update(rt, a, &t, NG_TF_ENTITY), NG_OK);
  CHECK_STATUS(ng_token_get(rt, a, &t), NG_OK);
  CHECK_EQ_INT(t.flags, 0x0F00 | NG_TOKEN_ACTIVE); /* only bits 8-11 came */
  CHECK_EQ_INT(NG_ID_ENTITY(t.id), 0xF);
  ng_token_init(&t);
  CHECK_STATUS(ng_token_update(rt, a, &t, NG_TF_FLAGS), NG_OK);
  CHECK_STATUS(ng_token_get(rt, a, &t), NG_OK);
  CHECK_EQ_INT(t.flags, NG_TOKEN_ACTIVE);
  CHECK_EQ_INT(NG_ID_ENTITY(t.id), 0);
  ng_runtime_release(rt);
}

int main(void) {
  RUN(test_token_entity_and_other_fields);
  RUN(test_connection_flag_bits);
  RUN(test_selectors);
  return ngt_done("test_masked_writes");
}

/* Progress reports (ng_progress_fn) of saves, loads, exports and imports. */
#include "test.h"

#include <stdio.h>
#include <unistd.h>

/* Every call one operation made. */
typedef struct log {
  int calls;
  const char *what; /* of every call; NULL when they differ */
  uint64_t first_done, last_done, last_total;
  bool ascending; /* done rose at every call, total never changed */
} log;

static void record(void *ud, const char *what, uint64_t done, uint64_t total) {
  log *l = ud;
  if (l->calls == 0) {
    l->what = what;
    l->first_done = done;
    l->ascending = true;
  } else {
    if (l->what != what && (!l->what || strcmp(l->what, what) != 0)) l->what = NULL;
    if (done <= l->last_done || total != l->last_total) l->ascending = false;
  }
  if (done > total) l->ascending = false;
  l->calls++;
  l->last_done = done;
  l->last_total = total;
}

/* Enough records for reports between start and end: 1.9 MB of token records (a report a
 * MiB) and 33,000 records (a report every 4096). */
enum { TOKENS = 30000 };

static ng_runtime *filled(log *l) {
  ng_config cfg = {0};
  cfg.progress = l ? record : NULL;
  cfg.progress_ud = l;
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(&cfg, &rt), NG_OK);
  ng_token t;
  ng_token_init(&t);
  ng_id prev = 0;
  for (int i = 0; i < TOKENS; i++) {
    ng_id id;
    CHECK_STATUS(ng_token_create(rt, &t, 0, &id), NG_OK);
    if (prev && i % 10 == 0) CHECK_STATUS(ng_connection_create(rt, prev, id, NULL, NULL), NG_OK);
    prev = id;
  }
  return rt;
}

static void check_log(const log *l, const char *what, uint64_t total) {
  CHECK(l->what != NULL && strcmp(l->what, what) == 0);
  CHECK(l->calls >= 3); /* the start, at least one report between, the end */
  CHECK_EQ_INT(l->first_done, 0);
  CHECK(l->ascending);
  CHECK_EQ_INT(l->last_done, l->last_total);
  if (total) CHECK_EQ_INT(l->last_total, total);
}

static void temp_path(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "/tmp/ng_progress_%ld_%s", (long)getpid(), name);
}

static void test_save_and_load(void) {
  log l = {0};
  ng_runtime *rt = filled(&l);
  char path[128];
  temp_path(path, sizeof path, "snap");
  CHECK_STATUS(ng_snapshot_save(rt, path), NG_OK);
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  long size = -1;
  if (f && fseek(f, 0, SEEK_END) == 0) size = ftell(f);
  if (f) fclose(f);
  check_log(&l, "save", (uint64_t)size);

  log ll = {0};
  ng_config cfg = {0};
  cfg.progress = record;
  cfg.progress_ud = &ll;
  ng_runtime *back = NULL;
  CHECK_STATUS(ng_snapshot_load(path, &cfg, &back), NG_OK);
  check_log(&ll, "load", (uint64_t)size);
  /* the loaded runtime keeps the callback for its own saves */
  ll = (log){0};
  CHECK_STATUS(ng_snapshot_save(back, path), NG_OK);
  check_log(&ll, "save", (uint64_t)size);
  ng_runtime_release(back);
  ng_runtime_release(rt);
  remove(path);
}

static void test_export_and_import(void) {
  log l = {0};
  ng_runtime *rt = filled(&l);
  uint64_t records = ng_token_count(rt) + ng_connection_count(rt);
  char path[128];
  temp_path(path, sizeof path, "json");
  CHECK_STATUS(ng_export_json(rt, path), NG_OK);
  check_log(&l, "export", records);

  log il = {0};
  ng_config cfg = {0};
  cfg.progress = record;
  cfg.progress_ud = &il;
  ng_runtime *back = NULL;
  CHECK_STATUS(ng_import_json(path, &cfg, &back), NG_OK);
  check_log(&il, "import", records);
  ng_runtime_release(back);
  ng_runtime_release(rt);
  remove(path);
}

/* A failed load starts but never reports the end (done == total). */
static void test_failure_has_no_end(void) {
  log l = {0};
  ng_runtime *rt = filled(&l);
  char path[128];
  temp_path(path, sizeof path, "bad");
  CHECK_STATUS(ng_snapshot_save(rt, path), NG_OK);
  FILE *f = fopen(path, "r+b");
  CHECK(f != NULL);
  if (f) { /* corrupt a token record: the token section checksum fails */
    fseek(f, 2000, SEEK_SET);
    fputc(0x5A ^ fgetc(f), f);
    fclose(f);
  }
  log ll = {0};
  ng_config cfg = {0};
  cfg.progress = record;
  cfg.progress_ud = &ll;
  ng_runtime *back = NULL;
  CHECK_STATUS(ng_snapshot_load(path, &cfg, &back), NG_ECORRUPT);
  CHECK(ll.calls >= 1);
  CHECK(ll.last_done < ll.last_total);
  ng_runtime_release(rt);
  remove(path);
}

/* Without a callback every operation still works (nothing to call). */
static void test_null_callback(void) {
  ng_runtime *rt = filled(NULL);
  char snap[128], json[128];
  temp_path(snap, sizeof snap, "nsnap");
  temp_path(json, sizeof json, "njson");
  CHECK_STATUS(ng_snapshot_save(rt, snap), NG_OK);
  CHECK_STATUS(ng_export_json(rt, json), NG_OK);
  ng_runtime *a = NULL, *b = NULL;
  CHECK_STATUS(ng_snapshot_load(snap, NULL, &a), NG_OK);
  CHECK_STATUS(ng_import_json(json, NULL, &b), NG_OK);
  CHECK_EQ_INT(ng_token_count(a), TOKENS);
  CHECK_EQ_INT(ng_token_count(b), TOKENS);
  ng_runtime_release(a);
  ng_runtime_release(b);
  ng_runtime_release(rt);
  remove(snap);
  remove(json);
}

int main(void) {
  RUN(test_save_and_load);
  RUN(test_export_and_import);
  RUN(test_failure_has_no_end);
  RUN(test_null_callback);
  return ngt_done("test_progress");
}

/* Benchmark: the cost of the write-ahead journal (issue 18).
 *
 * Usage: bench_journal [--quick] [--n N] [--updates M]
 *
 * N tokens (default 100,000; 10,000 with --quick) placed in L1; M random single-token updates
 * (ng_token_update of a random token's weight and L1 position; default 1,000,000, 200,000 with
 * --quick), measured in one run:
 *   - in memory (ng_runtime_new) against a durable world with sync = "batch" (ng_runtime_open
 *     in a directory beside the working directory): updates per second and their ratio; the
 *     bar is 0.5;
 *   - the same with the updates made as frames: ng_token_update_batch of 1,000 distinct random
 *     tokens a commit (a record of 1,000 entries instead of 1,000 records);
 *   - sync = "always": commits per second against the raw rate of write + fdatasync of a small
 *     block on a file in the same directory (the disk's own bound), and their ratio.
 *   - the same single-token updates with sync = "off" (no fsync at all);
 *   - the machine's cost of a fresh page (the first write to each page of a new anonymous
 *     mapping): about 0.25 us on bare metal, far more in a VM whose hypervisor builds its own
 *     entry for each page the first time it is used; and the cost of the same first write when
 *     the page was populated (MADV_POPULATE_WRITE) and read once by another thread, as the
 *     journal's thread does for the pages ahead of the writer.
 * Each figure is the median of three passes. The exit status is 2 when the bar fails (not
 * with --quick: small sizes are noise), 1 on an error.
 */
#define _GNU_SOURCE /* fdatasync, mkdtemp */
#include "bench_time.h"
#include "neurograph.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BAR 0.5
#define PASSES 3
/* The journal record of one update of a weight and an L1 position: a token delta, 16 + 23
 * bytes, padded to 40 (docs/format.md, "Journal file"). */
#define UPDATE_RECORD 40

static double median3(double *v) {
  qsort(v, PASSES, sizeof *v, dbl_cmp);
  return v[PASSES / 2];
}

static uint64_t seed = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
  seed ^= seed << 13;
  seed ^= seed >> 7;
  seed ^= seed << 17;
  return (uint32_t)(seed >> 32);
}

static void check(ng_status st, const char *what, ng_runtime *rt) {
  if (st == NG_OK) return;
  fprintf(stderr, "bench_journal: %s: %s (%s)\n", what, ng_strerror(st), ng_last_error(rt));
  exit(1);
}

/* N tokens placed in L1, created in one transaction (one journal record). */
static void fill(ng_runtime *rt, size_t n) {
  check(ng_txn_begin(rt), "begin", rt);
  for (size_t i = 0; i < n; i++) {
    ng_token t;
    ng_token_init(&t);
    ng_token_set_coords(&t, NG_L1, (float)(rnd() % 1000), (float)(rnd() % 1000), 0);
    check(ng_token_create(rt, &t, NG_TF_COORDS(NG_L1), NULL), "create", rt);
  }
  check(ng_txn_commit(rt), "commit", rt);
}

/* Updates per second over m random single-token updates. */
static double updates(ng_runtime *rt, size_t n, size_t m) {
  ng_token v;
  ng_token_init(&v);
  double t0 = now();
  for (size_t i = 0; i < m; i++) {
    v.weight = (float)(rnd() % 100);
    ng_token_set_coords(&v, NG_L1, (float)(rnd() % 1000), (float)(rnd() % 1000), 0);
    ng_id id = 1 + rnd() % n;
    check(ng_token_update(rt, id, &v, NG_TF_WEIGHT | NG_TF_COORDS(NG_L1)), "update", rt);
  }
  return (double)m / (now() - t0);
}

enum { FRAME = 1000 };

/* Updates per second over m random updates made FRAME at a time, one
 * ng_token_update_batch (one commit) each: distinct ids (a stride prime to n). */
static double frame_updates(ng_runtime *rt, size_t n, size_t m) {
  static ng_id ids[FRAME];
  static ng_token vals[FRAME];
  double t0 = now();
  for (size_t done = 0; done < m; done += FRAME) {
    size_t start = rnd() % n;
    for (size_t i = 0; i < FRAME; i++) {
      ids[i] = 1 + (start + i * 7919u) % n;
      ng_token_init(&vals[i]);
      vals[i].weight = (float)(rnd() % 100);
      ng_token_set_coords(&vals[i], NG_L1, (float)(rnd() % 1000), (float)(rnd() % 1000), 0);
    }
    check(ng_token_update_batch(rt, ids, vals, FRAME, NG_TF_WEIGHT | NG_TF_COORDS(NG_L1)),
          "update_batch", rt);
  }
  return (double)m / (now() - t0);
}

/* write + fdatasync of 128 bytes per round on a file in dir: the disk's commit bound. */
static double raw_fsync_rate(const char *dir, size_t rounds) {
  char path[512];
  snprintf(path, sizeof path, "%s/raw-fsync", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    perror("bench_journal: raw fsync file");
    exit(1);
  }
  unsigned char block[128];
  memset(block, 7, sizeof block);
  double t0 = now();
  for (size_t i = 0; i < rounds; i++)
    if (write(fd, block, sizeof block) != (ssize_t)sizeof block || fdatasync(fd) != 0) {
      perror("bench_journal: raw fsync");
      exit(1);
    }
  double rate = (double)rounds / (now() - t0);
  close(fd);
  unlink(path);
  return rate;
}

static void *touch_pages(void *arg) {
  volatile unsigned char *m = arg;
  size_t len = (size_t)64 << 20, page = (size_t)sysconf(_SC_PAGESIZE);
  for (size_t o = 0; o < len; o += page)
    (void)m[o];
  return NULL;
}

/* Microseconds per first write to a page of fresh anonymous memory (64 MiB),
 * as it comes, or (read_first) populated and then read once by another
 * thread, as the journal's window thread does. */
static double first_write_us(bool read_first) {
  size_t len = (size_t)64 << 20, page = (size_t)sysconf(_SC_PAGESIZE);
  unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return 0;
  if (read_first) {
#if defined(MADV_POPULATE_WRITE)
    (void)madvise(m, len, MADV_POPULATE_WRITE);
#endif
    pthread_t t;
    if (pthread_create(&t, NULL, touch_pages, m) != 0) {
      munmap(m, len);
      return 0;
    }
    pthread_join(t, NULL);
  }
  double t0 = now();
  for (size_t o = 0; o < len; o += page)
    m[o] = 1;
  double us = (now() - t0) / (double)(len / page) * 1e6;
  munmap(m, len);
  return us;
}

static void remove_world(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "bench_journal: could not remove %s\n", dir);
}

int main(int argc, char **argv) {
  int quick = 0;
  size_t n = 0, m = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      quick = 1;
    else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc)
      n = (size_t)strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--updates") == 0 && i + 1 < argc)
      m = (size_t)strtoull(argv[++i], NULL, 10);
    else {
      fprintf(stderr, "usage: bench_journal [--quick] [--n N] [--updates M]\n");
      return 1;
    }
  }
  if (!n) n = quick ? 10000 : 100000;
  if (!m) m = quick ? 200000 : 1000000;
  size_t always_n = quick ? 100 : 500;
  char dir[] = "./ng-bench-journal-XXXXXX";
  if (!mkdtemp(dir)) {
    perror("bench_journal: mkdtemp");
    return 1;
  }
  char world[600], world_off[600];
  snprintf(world, sizeof world, "%s/world", dir);
  snprintf(world_off, sizeof world_off, "%s/world-off", dir);

  ng_runtime *mem = NULL;
  check(ng_runtime_new(NULL, &mem), "runtime", NULL);
  fill(mem, n);
  ng_open_options batch = {.sync = NG_SYNC_BATCH};
  ng_runtime *dur = NULL;
  check(ng_runtime_open(world, &batch, &dur), "open (batch)", NULL);
  fill(dur, n);
  ng_open_options off = {.sync = NG_SYNC_OFF};
  ng_runtime *unsynced = NULL;
  check(ng_runtime_open(world_off, &off, &unsynced), "open (off)", NULL);
  fill(unsynced, n);
  double r_mem[PASSES], r_batch[PASSES], r_off[PASSES], f_mem[PASSES], f_batch[PASSES];
  for (int p = 0; p < PASSES; p++) { /* interleaved, so drift hits all alike */
    r_mem[p] = updates(mem, n, m);
    r_batch[p] = updates(dur, n, m);
    r_off[p] = updates(unsynced, n, m);
    f_mem[p] = frame_updates(mem, n, m);
    f_batch[p] = frame_updates(dur, n, m);
  }
  ng_runtime_release(unsynced);
  ng_runtime_release(dur);
  ng_runtime_release(mem);
  double vm = median3(r_mem), vb = median3(r_batch), ratio = vb / vm, vo = median3(r_off);
  double fm = median3(f_mem), fb = median3(f_batch);

  ng_open_options always = {.sync = NG_SYNC_ALWAYS};
  check(ng_runtime_open(world, &always, &dur), "open (always)", NULL);
  double r_always[PASSES], r_raw[PASSES];
  for (int p = 0; p < PASSES; p++) {
    r_raw[p] = raw_fsync_rate(dir, always_n);
    r_always[p] = updates(dur, n, always_n);
  }
  ng_runtime_release(dur);
  double va = median3(r_always), vr = median3(r_raw);
  remove_world(dir);

  printf("journal: %zu tokens, random single-token updates (weight + L1 position), median of %d\n",
         n, PASSES);
  printf("  %-34s %12.0f updates/s\n", "in memory", vm);
  printf("  %-34s %12.0f updates/s   %.2fx of in memory (bar >= %.2f)%s\n",
         "sync = \"batch\" (100 ms)", vb, ratio, BAR, ratio >= BAR ? "" : "  MISSED");
  printf("  %-34s %12.0f updates/s   %.2fx of in memory\n", "sync = \"off\"", vo, vo / vm);
  printf("  %-34s %12.0f updates/s\n", "in memory, frames of 1000", fm);
  printf("  %-34s %12.0f updates/s   %.2fx of in memory\n", "sync = \"batch\", frames of 1000", fb,
         fb / fm);
  printf("  %-34s %12.0f commits/s\n", "raw write + fdatasync, same disk", vr);
  printf("  %-34s %12.0f commits/s   %.2fx of the raw fsync rate\n", "sync = \"always\"", va,
         va / vr);
  double pu[PASSES];
  for (int p = 0; p < PASSES; p++)
    pu[p] = first_write_us(false);
  printf("  %-34s %12.2f us (%.0f ns per update at %d-byte records)\n", "a fresh page, first write",
         median3(pu), median3(pu) * 1000.0 * UPDATE_RECORD / 4096.0, UPDATE_RECORD);
  for (int p = 0; p < PASSES; p++)
    pu[p] = first_write_us(true);
  printf("  %-34s %12.2f us (the journal's thread reads each page first)\n",
         "  the same, read by a thread first", median3(pu));
  return !quick && ratio < BAR ? 2 : 0;
}

/* Benchmark: snapshot save and load of 1M tokens + 1M connections against `cp` of the same
 * number of bytes, measured in the same run (bar: each within 3x of the copy). */
#define _POSIX_C_SOURCE 200809L
#include "bench_time.h"
#include "neurograph.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint32_t rng(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(*s >> 33);
}

/* Run `cp src dst` as a child process; returns its wall time or -1. */
static double run_cp(const char *src, const char *dst) {
  double t0 = now();
  pid_t pid = fork();
  if (pid == 0) {
    execlp("cp", "cp", src, dst, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return -1;
  return now() - t0;
}

/* fsync a file, as a save does (cp does not). */
static double sync_file(const char *path) {
  double t0 = now();
  int fd = open(path, O_RDONLY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  return now() - t0;
}

static double best(const double *v, int n) {
  double b = v[0];
  for (int i = 1; i < n; i++)
    if (v[i] < b) b = v[i];
  return b;
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 1000000;
  int reps = argc > 2 ? atoi(argv[2]) : 3;
  if (reps < 1 || reps > 16) reps = 3;
  const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char snap[512], copy[512], plain[512];
  snprintf(snap, sizeof snap, "%s/bench_snapshot_%ld.ngs", dir, (long)getpid());
  snprintf(copy, sizeof copy, "%s/bench_snapshot_%ld.copy", dir, (long)getpid());
  snprintf(plain, sizeof plain, "%s/bench_snapshot_%ld.bin", dir, (long)getpid());

  ng_config cfg = {.initial_tokens = n, .initial_connections = n};
  ng_runtime *rt = NULL;
  if (ng_runtime_new(&cfg, &rt) != NG_OK) return 1;
  uint64_t seed = 7;
  ng_token t;
  ng_token_init(&t);
  for (size_t i = 0; i < n; i++) {
    for (int s = 0; s < NG_SPACES; s++)
      for (int a = 0; a < 3; a++) t.coords[s][a] = (int16_t)(rng(&seed) % 20000 - 10000);
    t.weight = (float)(rng(&seed) % 100) / 100.0f;
    ng_id id;
    if (ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id) != NG_OK) return 1;
  }
  size_t made = 0;
  for (size_t i = 0; made < n && i < 2 * n; i++) {
    ng_connection c;
    ng_connection_init(&c);
    ng_connection_set_type(&c, rng(&seed) % NG_CONN_TYPES);
    ng_id cid;
    if (ng_connection_create(rt, (uint32_t)(i % n + 1), (uint32_t)(rng(&seed) % n + 1), &c, &cid) ==
        NG_OK)
      made++;
  }
  printf("bench_snapshot: %zu tokens, %zu connections, best of %d\n", ng_token_count(rt),
         ng_connection_count(rt), reps);

  double save[16], load[16], cp[16], cps[16];
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    if (ng_snapshot_save(rt, snap) != NG_OK) {
      fprintf(stderr, "save: %s\n", ng_last_error(rt));
      return 1;
    }
    save[r] = now() - t0;
    ng_runtime *back = NULL;
    t0 = now();
    if (ng_snapshot_load(snap, NULL, &back) != NG_OK) {
      fprintf(stderr, "load: %s\n", ng_last_error(NULL));
      return 1;
    }
    load[r] = now() - t0;
    ng_runtime_release(back);
  }
  /* The baseline copies a file of exactly the snapshot's size (not the snapshot
   * itself, so nothing is shared with the runs above beyond the page cache). */
  struct stat sb;
  stat(snap, &sb);
  FILE *f = fopen(plain, "wb");
  if (!f) return 1;
  char block[65536];
  for (size_t i = 0; i < sizeof block; i++) block[i] = (char)(i * 7);
  for (off_t left = sb.st_size; left > 0; left -= (off_t)sizeof block)
    fwrite(block, 1, left < (off_t)sizeof block ? (size_t)left : sizeof block, f);
  fclose(f);
  for (int r = 0; r < reps; r++) {
    unlink(copy);
    cp[r] = run_cp(plain, copy);
    cps[r] = cp[r] + sync_file(copy);
  }
  double bs = best(save, reps), bl = best(load, reps), bc = best(cp, reps), bcs = best(cps, reps);
  printf("  file size          %10.1f MB\n", (double)sb.st_size / 1e6);
  printf("  cp                 %10.1f ms\n", bc * 1e3);
  printf("  cp + fsync         %10.1f ms\n", bcs * 1e3);
  printf("  save (with fsync)  %10.1f ms   %.2fx cp   %.2fx cp+fsync\n", bs * 1e3, bs / bc,
         bs / bcs);
  printf("  load               %10.1f ms   %.2fx cp\n", bl * 1e3, bl / bc);
  printf("  bar: each <= 3x cp: save %s, load %s\n", bs / bc <= 3 ? "met" : "MISSED",
         bl / bc <= 3 ? "met" : "MISSED");
  if (!getenv("KEEP")) unlink(snap);
  unlink(copy);
  unlink(plain);
  ng_runtime_release(rt);
  return 0;
}

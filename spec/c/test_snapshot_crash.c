/* Crash safety of snapshots: a child saving in a loop is SIGKILLed at random moments; the file
 * on disk must always load and equal one of the states that were saved. */
#include "internal.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* State n (n >= BASE): tokens 1..n, token i with timestamp i, weight i % 100
 * and L1 x = i % 30000; connections i -> i+1 (id i) for i < n. Each is fully
 * determined by n, so "equals one of the saved states" is checkable. */
enum { BASE = 5000 };

static ng_status add_step(ng_runtime *rt, uint32_t n) {
  ng_token t;
  ng_token_init(&t);
  t.timestamp = n;
  t.weight = (float)(n % 100);
  t.coords[NG_L1][0] = (int16_t)(n % 30000);
  ng_id id = 0;
  ng_status st = ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id);
  if (st != NG_OK || id != n) return st ? st : NG_EINVAL;
  if (n > 1) {
    ng_connection c;
    ng_connection_init(&c);
    c.created_at = c.last_update = n;
    ng_id cid = 0;
    st = ng_connection_create(rt, n - 1, n, &c, &cid);
    if (st == NG_OK && cid != n - 1) st = NG_EINVAL;
  }
  return st;
}

/* Is rt exactly state n for some n? Returns n, or 0 if it is not a state. */
static uint32_t which_state(ng_runtime *rt) {
  ng_stats s;
  if (ng_runtime_stats(rt, &s) != NG_OK) return 0;
  uint32_t n = (uint32_t)s.tokens;
  if (n < BASE || s.next_token_id != n + 1 || s.connections != n - 1 ||
      s.next_connection_id != n)
    return 0;
  for (uint32_t i = 1; i <= n; i++) {
    ng_token t;
    if (ng_token_get(rt, i, &t) != NG_OK || t.timestamp != i || t.weight != (float)(i % 100) ||
        t.coords[NG_L1][0] != (int16_t)(i % 30000))
      return 0;
    ng_connection c;
    if (i < n && (ng_connection_get(rt, i, &c) != NG_OK || c.token_a_id != i ||
                  c.token_b_id != i + 1 || c.created_at != i + 1))
      return 0;
  }
  return n;
}

/* The child: continue from the file (or build the base state), then add one
 * step and save, forever, reporting each completed save on the pipe. */
static void child_main(const char *path, int report) {
  ng_runtime *rt = NULL;
  if (access(path, F_OK) == 0) {
    if (ng_snapshot_load(path, NULL, &rt) != NG_OK) _exit(3);
  } else {
    if (ng_runtime_new(NULL, &rt) != NG_OK) _exit(4);
    for (uint32_t i = 1; i < BASE; i++)
      if (add_step(rt, i) != NG_OK) _exit(5);
  }
  for (;;) {
    uint32_t n = (uint32_t)ng_token_count(rt) + 1;
    if (add_step(rt, n) != NG_OK) _exit(6);
    if (ng_snapshot_save(rt, path) != NG_OK) _exit(7);
    if (write(report, &n, sizeof n) != (ssize_t)sizeof n) _exit(8);
  }
}

static int count_temp_files(const char *dir, int remove) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!strstr(de->d_name, ".tmp-")) continue;
    n++;
    if (remove) {
      char p[600];
      snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
      unlink(p);
    }
  }
  closedir(d);
  return n;
}

static void test_sigkill_during_saves(void) {
  char dir[] = "/tmp/ng_crash_XXXXXX";
  if (!mkdtemp(dir)) {
    CHECK(0);
    return;
  }
  char path[256];
  snprintf(path, sizeof path, "%s/world.ngs", dir);
  const char *env = getenv("NG_CRASH_ROUNDS");
  int rounds = env ? atoi(env) : 30;
  unsigned seed = (unsigned)time(NULL);
  printf("     seed %u, %d rounds\n", seed, rounds);
  srand(seed);
  uint32_t last_done = 0;
  int leftovers = 0, mid_save = 0;
  for (int r = 0; r < rounds; r++) {
    int fds[2];
    if (pipe(fds) != 0) break;
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      child_main(path, fds[1]);
    }
    close(fds[1]);
    /* wait for this child's first completed save (so every round makes
     * progress), then kill it at a random moment within the next few saves:
     * while writing, syncing, renaming or reporting */
    uint32_t n = 0;
    if (read(fds[0], &n, sizeof n) == (ssize_t)sizeof n) last_done = n;
    struct timespec ts = {0, (long)(rand() % 20000) * 1000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    if (!WIFSIGNALED(status))
      fprintf(stderr, "child exited with %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    while (read(fds[0], &n, sizeof n) == (ssize_t)sizeof n) last_done = n;
    close(fds[0]);

    ng_runtime *rt = NULL;
    ng_status st = ng_snapshot_load(path, NULL, &rt);
    CHECK_STATUS(st, NG_OK);
    if (st != NG_OK) {
      fprintf(stderr, "round %d: %s\n", r, ng_last_error(NULL));
      break;
    }
    uint32_t state = which_state(rt);
    ng_runtime_release(rt);
    /* the file holds the last completed save, or the one being reported */
    CHECK(state != 0);
    CHECK(state == last_done || state == last_done + 1);
    if (state == last_done + 1) mid_save++;
    if (state) last_done = state; /* the next child continues from the file */
    leftovers += count_temp_files(dir, 1); /* a SIGKILL can leave one; never read */
  }
  printf("     last state %u; %d kills between rename and report; %d temp files left by kills\n",
         last_done, mid_save, leftovers);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  RUN(test_sigkill_during_saves);
  return ngt_done("test_snapshot_crash");
}

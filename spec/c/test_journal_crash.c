/* Crash safety of durable worlds: a child takes random steps (writes, batches, transactions
 * that commit or roll back, checkpoints: explicit ones, in the foreground and in the background,
 * and automatic ones every few KiB) on a world opened with sync = "always", reporting each
 * finished step over a pipe; it is SIGKILLed at a random moment (often mid-checkpoint), with
 * the process of a background checkpoint's save if one runs (the whole process group, as a
 * machine's crash would). The reopened world must equal a model that took
 * the same steps: after the last reported step or the one after it, never less, never part of
 * a transaction. NG_JOURNAL_CRASH_ROUNDS sets the rounds (default 200). */
#include "internal.h"
#include "test_world.h"

#include <signal.h>
#include <sys/wait.h>

static void child_main(const char *dir, uint64_t seed, int report) {
  ng_open_options o = {.config = &ngw_cfg, .sync = NG_SYNC_ALWAYS, .checkpoint_bytes = 16384};
  ng_runtime *rt = NULL;
  if (ng_runtime_open(dir, &o, &rt) != NG_OK) {
    fprintf(stderr, "child: %s\n", ng_last_error(NULL));
    _exit(3);
  }
  for (uint32_t i = 1;; i++) {
    ngw_step(rt, &seed, 1);
    if (write(report, &i, sizeof i) != (ssize_t)sizeof i) _exit(4);
  }
}

static void test_sigkill_during_commits(void) {
  char dir[] = "/tmp/ng_jcrash_XXXXXX";
  if (!mkdtemp(dir)) {
    CHECK(0);
    return;
  }
  const char *env = getenv("NG_JOURNAL_CRASH_ROUNDS");
  int rounds = env ? atoi(env) : 200;
  unsigned seed = (unsigned)time(NULL);
  printf("     seed %u, %d rounds\n", seed, rounds);
  srand(seed);
  ng_runtime *model = NULL;
  ng_runtime_new(&ngw_cfg, &model);
  uint64_t steps = 0, one_more = 0;
  for (int r = 0; r < rounds; r++) {
    uint64_t rng = (uint64_t)seed * 2654435761u + (uint64_t)r + 1;
    int fds[2];
    if (pipe(fds) != 0) break;
    pid_t pid = fork();
    if (pid == 0) {
      setpgid(0, 0); /* its background saves' processes join its group */
      close(fds[0]);
      child_main(dir, rng, fds[1]);
    }
    setpgid(pid, pid); /* either side may run first */
    close(fds[1]);
    uint32_t n = 0, acked = 0;
    if (rand() % 4 && read(fds[0], &n, sizeof n) == (ssize_t)sizeof n) acked = n;
    struct timespec ts = {0, (long)(rand() % 15000) * 1000L};
    nanosleep(&ts, NULL);
    kill(-pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    /* a background save's process, killed with it, may take a moment to end (and its
     * copy of the world's descriptor with it) */
    for (int w = 0; w < 2000 && kill(-pid, 0) == 0; w++)
      nanosleep(&(struct timespec){0, 1000000}, NULL);
    if (!WIFSIGNALED(status))
      fprintf(stderr, "child exited with %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    while (read(fds[0], &n, sizeof n) == (ssize_t)sizeof n)
      acked = n;
    close(fds[0]);

    ng_runtime *rt = NULL;
    ng_open_options o = {.config = &ngw_cfg, .sync = NG_SYNC_OFF};
    ng_status st = ng_runtime_open(dir, &o, &rt);
    CHECK_STATUS(st, NG_OK);
    if (st != NG_OK) {
      fprintf(stderr, "round %d: %s\n", r, ng_last_error(NULL));
      break;
    }
    for (uint32_t i = 0; i < acked; i++)
      ngw_step(model, &rng, 0);
    int same = ngw_same(rt, model);
    if (!same) { /* the step being reported when the child died */
      ngw_step(model, &rng, 0);
      same = ngw_same(rt, model);
      one_more++;
    }
    ng_runtime_release(rt);
    if (!same)
      fprintf(stderr, "round %d: the world is not the model after %u or %u steps\n", r, acked,
              acked + 1);
    CHECK(same);
    if (!same) break;
    steps += acked;
  }
  printf("     %llu steps acknowledged; %llu kills after a commit and before its report\n",
         (unsigned long long)steps, (unsigned long long)one_more);
  ng_runtime_release(model);
  ngw_remove(dir);
}

int main(void) {
  test_sigkill_during_commits();
  return ngt_done("test_journal_crash");
}

/* Background saves (ng_snapshot_save_background): the file is the state at the call, byte for
 * byte what ng_snapshot_save writes; errors, NG_EBUSY, a killed child, release while running. */
#include "internal.h"
#include "test.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* Sleep for us microseconds (nanosleep: usleep is not POSIX 2008). */
static void sleep_us(long us) {
  struct timespec ts = {us / 1000000, us % 1000000 * 1000};
  nanosleep(&ts, NULL);
}

static char tmpdir[] = "/tmp/ng_bgsave_XXXXXX";

static char *tpath(const char *name) {
  static char buf[4][512];
  static int i;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, name);
  return buf[i];
}

/* Whether files a and b hold the same bytes. */
static bool same_file(const char *a, const char *b) {
  size_t la = 0, lb = 0;
  unsigned char *x = ngt_read_file(a, &la), *y = ngt_read_file(b, &lb);
  bool same = x && y && la == lb && memcmp(x, y, la) == 0;
  free(x);
  free(y);
  return same;
}

/* Entries of tmpdir other than . and .. (temporary files included). */
static int dir_entries(void) {
  DIR *d = opendir(tmpdir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d)) != NULL;)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  if (d) closedir(d);
  return n;
}

static void clear_dir(void) {
  DIR *d = opendir(tmpdir);
  for (struct dirent *e; d && (e = readdir(d)) != NULL;)
    if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0))
      unlink(tpath(e->d_name));
  if (d) closedir(d);
}

/* A runtime with n tokens in a chain of connections, a few deleted (free slots to save). */
static ng_runtime *world(uint32_t n) {
  ng_runtime *rt = NULL;
  CHECK_STATUS(ng_runtime_new(NULL, &rt), NG_OK);
  ng_id prev = 0;
  for (uint32_t i = 0; i < n; i++) {
    ng_id id = ngt_token_at(rt, (float)(i % 200), (float)(i % 7), 1.0f);
    if (prev) ngt_link(rt, prev, id, 0);
    prev = id;
  }
  for (ng_id id = 5; id < n; id += 97)
    CHECK_STATUS(ng_token_delete(rt, id, NULL), NG_OK);
  return rt;
}

static void test_same_bytes_as_a_synchronous_save(void) {
  ng_runtime *rt = world(3000);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("sync.ngs")), NG_OK);
  ng_save *job = NULL;
  CHECK_STATUS(ng_snapshot_save_background(rt, tpath("bg.ngs"), &job), NG_OK);
  CHECK(job != NULL);
  const char *msg = "unset";
  CHECK_STATUS(ng_save_status(job, true, &msg), NG_OK);
  CHECK(msg == NULL);
  CHECK(same_file(tpath("sync.ngs"), tpath("bg.ngs")));
  CHECK_EQ_INT(dir_entries(), 2); /* no temporary file left */
  ng_save_free(job);
  ng_runtime_release(rt);
  clear_dir();
}

static void test_writes_after_the_call_are_not_in_the_file(void) {
  ng_runtime *rt = world(2000);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("before.ngs")), NG_OK);
  ng_save *job = NULL;
  CHECK_STATUS(ng_snapshot_save_background(rt, tpath("bg.ngs"), &job), NG_OK);
  for (int i = 0; i < 500; i++)
    ngt_token_at(rt, 1, 2, 3);
  CHECK_STATUS(ng_token_delete(rt, 1, NULL), NG_OK);
  CHECK_STATUS(ng_save_status(job, true, NULL), NG_OK);
  CHECK(same_file(tpath("before.ngs"), tpath("bg.ngs")));
  ng_runtime *back = NULL;
  CHECK_STATUS(ng_snapshot_load(tpath("bg.ngs"), NULL, &back), NG_OK);
  ng_token t;
  CHECK_STATUS(ng_token_get(back, 1, &t), NG_OK);
  CHECK_EQ_INT(ng_token_count(back), 2000 - 21);
  ng_runtime_release(back);
  ng_save_free(job);
  ng_runtime_release(rt);
  clear_dir();
}

static void test_a_directory_that_does_not_exist_fails_at_the_call(void) {
  ng_runtime *rt = world(10);
  ng_save *job = (ng_save *)&job;
  CHECK_STATUS(ng_snapshot_save_background(rt, "/nonexistent-ng-dir/x.ngs", &job), NG_EIO);
  CHECK(job == NULL);
  CHECK_CONTAINS(ng_last_error(rt), "/nonexistent-ng-dir/x.ngs");
  ng_runtime_release(rt);
}

/* A write error in the child (here: the file size limit, EFBIG) comes back through the status,
 * naming the path; the previous file stays and no temporary file is left. */
static void test_a_failed_write_is_reported_by_the_status(void) {
  ng_runtime *rt = world(3000);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("s.ngs")), NG_OK);
  ngt_token_at(rt, 0, 0, 0);
  struct rlimit old, small = {4096, 4096};
  CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
  small.rlim_max = old.rlim_max;
  void (*was)(int) = signal(SIGXFSZ, SIG_IGN); /* a write past the limit: EFBIG, not a signal */
  CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
  ng_save *job = NULL;
  ng_status st = ng_snapshot_save_background(rt, tpath("s.ngs"), &job);
  CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0); /* the child has its copy of the limit */
  signal(SIGXFSZ, was);
  CHECK_STATUS(st, NG_OK);
  const char *msg = NULL;
  CHECK_STATUS(ng_save_status(job, true, &msg), NG_EIO);
  CHECK_CONTAINS(msg, "writing ");
  CHECK_CONTAINS(msg, tpath("s.ngs"));
  CHECK_STATUS(ng_save_status(job, false, NULL), NG_EIO); /* asked again: the same */
  ng_runtime *back = NULL;
  CHECK_STATUS(ng_snapshot_load(tpath("s.ngs"), NULL, &back), NG_OK);
  if (back) CHECK_EQ_INT(ng_token_count(back), 3000 - 31);
  ng_runtime_release(back);
  CHECK_EQ_INT(dir_entries(), 1);
  ng_save_free(job);
  ng_runtime_release(rt);
  clear_dir();
}

/* One at a time per runtime: a second while the first runs (its child stopped) is NG_EBUSY;
 * once the first ends, the next starts. Another runtime saves meanwhile. */
static void test_a_second_save_while_one_runs_is_busy(void) {
  ng_runtime *rt = world(20000), *other = world(10);
  ng_save *a = NULL, *b = NULL, *c = NULL;
  CHECK_STATUS(ng_snapshot_save_background(rt, tpath("a.ngs"), &a), NG_OK);
  kill(ngi_save_child(a), SIGSTOP);
  CHECK_STATUS(ng_save_status(a, false, NULL), NG_EBUSY);
  CHECK_STATUS(ng_snapshot_save_background(rt, tpath("b.ngs"), &b), NG_EBUSY);
  CHECK(b == NULL);
  CHECK_CONTAINS(ng_last_error(rt), "is still running");
  CHECK_STATUS(ng_snapshot_save(rt, tpath("sync.ngs")), NG_OK); /* a synchronous one may */
  CHECK_STATUS(ng_snapshot_save_background(other, tpath("o.ngs"), &c), NG_OK);
  CHECK_STATUS(ng_save_status(c, true, NULL), NG_OK);
  kill(ngi_save_child(a), SIGCONT);
  CHECK_STATUS(ng_save_status(a, true, NULL), NG_OK);
  CHECK_STATUS(ng_snapshot_save_background(rt, tpath("b.ngs"), &b), NG_OK);
  CHECK_STATUS(ng_save_status(b, true, NULL), NG_OK);
  CHECK(same_file(tpath("a.ngs"), tpath("b.ngs")));
  ng_save_free(a);
  ng_save_free(b);
  ng_save_free(c);
  ng_runtime_release(rt);
  ng_runtime_release(other);
  clear_dir();
}

/* The crash test: the child killed at a random moment leaves the previous file, byte for
 * byte, or (killed after the rename) the complete new one; never a partial file, never a
 * temporary file. The status says it was killed. */
static void test_a_killed_save_leaves_the_previous_file(void) {
  ng_runtime *rt = world(20000);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("s.ngs")), NG_OK);
  uint64_t seed = 0x9E3779B97F4A7C15u;
  int killed = 0, old_kept = 0;
  for (int round = 0; round < 20; round++) {
    unlink(tpath("old.ngs")); /* a second name for what s.ngs holds now: the save replaces */
    CHECK(link(tpath("s.ngs"), tpath("old.ngs")) == 0); /* the name s.ngs, not the file */
    ngt_token_at(rt, 0, 0, 0);
    CHECK_STATUS(ng_snapshot_save(rt, tpath("new.ngs")), NG_OK); /* what the save writes */
    ng_save *job = NULL;
    CHECK_STATUS(ng_snapshot_save_background(rt, tpath("s.ngs"), &job), NG_OK);
    sleep_us(ngt_rnd(&seed) % 20000); /* somewhere in its run: writing, syncing, or before */
    kill(ngi_save_child(job), SIGKILL);
    const char *msg = NULL;
    ng_status st = ng_save_status(job, true, &msg);
    if (st != NG_OK) {
      killed++;
      CHECK_STATUS(st, NG_EIO);
      CHECK_CONTAINS(msg, "was killed by signal 9");
    }
    bool old = same_file(tpath("s.ngs"), tpath("old.ngs"));
    old_kept += old;
    CHECK(old ? st != NG_OK : same_file(tpath("s.ngs"), tpath("new.ngs")));
    CHECK_EQ_INT(dir_entries(), 3);
    ng_save_free(job);
  }
  CHECK(old_kept > 0); /* the test tried what it is for */
  printf("     %d of 20 saves killed, %d before the rename\n", killed, old_kept);
  ng_runtime_release(rt);
  clear_dir();
}

static void *resume_later(void *arg) {
  sleep_us(100 * 1000);
  kill(*(pid_t *)arg, SIGCONT);
  return NULL;
}

/* The last release waits for a running save; a handle freed first does not stop it. */
static void test_release_waits_for_a_running_save(void) {
  ng_runtime *rt = world(1000);
  ng_save *job = NULL, *dropped = NULL;
  CHECK_STATUS(ng_snapshot_save(rt, tpath("sync.ngs")), NG_OK);
  CHECK_STATUS(ng_snapshot_save_background(rt, tpath("bg.ngs"), &job), NG_OK);
  pid_t pid = ngi_save_child(job);
  kill(pid, SIGSTOP);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, resume_later, &pid) == 0);
  double t0 = ngt_now_s();
  ng_runtime_release(rt);
  CHECK(ngt_now_s() - t0 > 0.05);
  CHECK_STATUS(ng_save_status(job, false, NULL), NG_OK); /* done when release returned */
  CHECK(same_file(tpath("sync.ngs"), tpath("bg.ngs")));
  pthread_join(th, NULL);
  ng_save_free(job);

  rt = world(1000);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("sync.ngs")), NG_OK);
  CHECK_STATUS(ng_snapshot_save_background(rt, tpath("dropped.ngs"), &dropped), NG_OK);
  ng_save_free(dropped); /* the save goes on */
  ng_runtime_release(rt);
  CHECK(same_file(tpath("sync.ngs"), tpath("dropped.ngs")));
  clear_dir();
}

/* From inside an iteration callback (the read lock held: the save nests in it). */
static bool save_from_callback(const ng_token *tok, ng_id id, void *ud) {
  (void)tok;
  (void)id;
  ng_runtime *rt = ud;
  ng_save *job = NULL;
  CHECK_STATUS(ng_snapshot_save_background(rt, tpath("cb.ngs"), &job), NG_OK);
  CHECK_STATUS(ng_save_status(job, true, NULL), NG_OK);
  ng_save_free(job);
  return false;
}

static void test_a_save_from_an_iteration_callback(void) {
  ng_runtime *rt = world(100);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("sync.ngs")), NG_OK);
  CHECK_STATUS(ng_token_each(rt, save_from_callback, rt), NG_OK);
  CHECK(same_file(tpath("sync.ngs"), tpath("cb.ngs")));
  ng_runtime_release(rt);
  clear_dir();
}

static void test_bad_arguments(void) {
  ng_runtime *rt = world(10);
  ng_save *job = NULL;
  CHECK_STATUS(ng_snapshot_save_background(NULL, tpath("x.ngs"), &job), NG_EINVAL);
  CHECK_STATUS(ng_snapshot_save_background(rt, NULL, &job), NG_EINVAL);
  CHECK_STATUS(ng_snapshot_save_background(rt, "", &job), NG_EINVAL);
  CHECK_CONTAINS(ng_last_error(rt), "path");
  CHECK_STATUS(ng_snapshot_save_background(rt, tpath("x.ngs"), NULL), NG_EINVAL);
  CHECK_STATUS(ng_save_status(NULL, false, NULL), NG_EINVAL);
  ng_save_free(NULL);
  CHECK_STATUS(ng_snapshot_save_background(rt, tmpdir, &job), NG_EIO); /* a directory */
  CHECK_STATUS(ng_txn_begin(rt), NG_OK);
  ngt_token_at(rt, 1, 1, 1);
  CHECK_STATUS(ng_snapshot_save_background(rt, tpath("x.ngs"), &job), NG_EBUSY);
  CHECK_CONTAINS(ng_last_error(rt), "transaction");
  CHECK(job == NULL);
  CHECK_STATUS(ng_txn_rollback(rt), NG_OK);
  CHECK_EQ_INT(dir_entries(), 0);
  ng_runtime_release(rt);
}

int main(void) {
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return EXIT_FAILURE;
  }
  RUN(test_same_bytes_as_a_synchronous_save);
  RUN(test_writes_after_the_call_are_not_in_the_file);
  RUN(test_a_directory_that_does_not_exist_fails_at_the_call);
  RUN(test_a_failed_write_is_reported_by_the_status);
  RUN(test_a_second_save_while_one_runs_is_busy);
  RUN(test_a_killed_save_leaves_the_previous_file);
  RUN(test_release_waits_for_a_running_save);
  RUN(test_a_save_from_an_iteration_callback);
  RUN(test_bad_arguments);
  rmdir(tmpdir);
  return ngt_done("test_bgsave");
}

/* Tests of what a save replaces: regular files only, symbolic links followed, permissions kept. */
#include "neurograph.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/ng_targets_XXXXXX";

static char *tpath(const char *name) {
  static char buf[4][512];
  static int i;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, name);
  return buf[i];
}

/* A runtime holding n tokens. */
static ng_runtime *with_tokens(int n) {
  ng_runtime *rt = NULL;
  if (ng_runtime_new(NULL, &rt) != NG_OK) return NULL;
  for (int i = 0; i < n; i++) {
    ng_token t;
    ng_token_init(&t);
    ng_id id;
    ng_token_create(rt, &t, NG_TF_COORDS_ALL, &id);
  }
  return rt;
}

/* How many tokens the snapshot at path holds; -1 if it does not load. */
static long tokens_in(const char *path) {
  ng_runtime *rt = NULL;
  if (ng_snapshot_load(path, NULL, &rt) != NG_OK) return -1;
  long n = (long)ng_token_count(rt);
  ng_runtime_release(rt);
  return n;
}

static int is_link(const char *path) {
  struct stat sb;
  return lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode);
}

static int count_temp_files(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (strstr(de->d_name, ".tmp-")) n++;
  closedir(d);
  return n;
}

/* A FIFO (as a device node such as /dev/null) is refused, not replaced. */
static void test_fifo_refused(void) {
  ng_runtime *rt = with_tokens(1);
  const char *fifo = tpath("fifo");
  CHECK_EQ_INT(mkfifo(fifo, 0600), 0);
  CHECK_STATUS(ng_snapshot_save(rt, fifo), NG_EIO);
  CHECK_CONTAINS(ng_last_error(rt), fifo);
  CHECK_CONTAINS(ng_last_error(rt), "not a regular file");
  struct stat sb;
  CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
  /* the same through a symbolic link */
  CHECK_EQ_INT(symlink("fifo", tpath("to-fifo")), 0);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("to-fifo")), NG_EIO);
  CHECK_CONTAINS(ng_last_error(rt), "not a regular file");
  CHECK(is_link(tpath("to-fifo")));
  CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
  /* a directory */
  CHECK_EQ_INT(mkdir(tpath("dir"), 0700), 0);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("dir")), NG_EIO);
  CHECK_CONTAINS(ng_last_error(rt), "not a regular file");
  CHECK_EQ_INT(count_temp_files(tmpdir), 0);
  ng_runtime_release(rt);
}

/* A link's target is replaced; the link stays a link. */
static void test_symlink_followed(void) {
  ng_runtime *old = with_tokens(1), *rt = with_tokens(3);
  CHECK_STATUS(ng_snapshot_save(old, tpath("real.ngs")), NG_OK);
  CHECK_EQ_INT(symlink(tpath("real.ngs"), tpath("link.ngs")), 0);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("link.ngs")), NG_OK);
  CHECK(is_link(tpath("link.ngs")));
  CHECK_EQ_INT(tokens_in(tpath("real.ngs")), 3);
  CHECK_EQ_INT(count_temp_files(tmpdir), 0);
  ng_runtime_release(old);
  ng_runtime_release(rt);
}

/* A chain of links, one absolute and one relative, each followed. */
static void test_symlink_chain(void) {
  ng_runtime *old = with_tokens(1), *rt = with_tokens(4);
  CHECK_STATUS(ng_snapshot_save(old, tpath("chain-end.ngs")), NG_OK);
  CHECK_EQ_INT(symlink("chain-end.ngs", tpath("chain-2")), 0);
  CHECK_EQ_INT(symlink(tpath("chain-2"), tpath("chain-1")), 0);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("chain-1")), NG_OK);
  CHECK(is_link(tpath("chain-1")) && is_link(tpath("chain-2")));
  CHECK_EQ_INT(tokens_in(tpath("chain-end.ngs")), 4);
  ng_runtime_release(old);
  ng_runtime_release(rt);
}

/* A relative target is relative to the link's directory, not the working
 * directory; the temporary file goes to the target's directory. */
static void test_symlink_relative(void) {
  ng_runtime *old = with_tokens(1), *rt = with_tokens(5);
  CHECK_EQ_INT(mkdir(tpath("sub"), 0700), 0);
  CHECK_STATUS(ng_snapshot_save(old, tpath("rel.ngs")), NG_OK);
  CHECK_EQ_INT(symlink("../rel.ngs", tpath("sub/rel-link")), 0);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("sub/rel-link")), NG_OK);
  CHECK(is_link(tpath("sub/rel-link")));
  CHECK_EQ_INT(tokens_in(tpath("rel.ngs")), 5);
  CHECK_EQ_INT(count_temp_files(tpath("sub")), 0);
  ng_runtime_release(old);
  ng_runtime_release(rt);
}

/* A dangling link: the save creates the file it names. */
static void test_symlink_dangling(void) {
  ng_runtime *rt = with_tokens(2);
  CHECK_EQ_INT(symlink("created.ngs", tpath("dangling")), 0);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("dangling")), NG_OK);
  CHECK(is_link(tpath("dangling")));
  CHECK_EQ_INT(tokens_in(tpath("created.ngs")), 2);
  ng_runtime_release(rt);
}

/* A loop of links fails with the system's reason and touches nothing. */
static void test_symlink_loop(void) {
  ng_runtime *rt = with_tokens(1);
  CHECK_EQ_INT(symlink("loop-b", tpath("loop-a")), 0);
  CHECK_EQ_INT(symlink("loop-a", tpath("loop-b")), 0);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("loop-a")), NG_EIO);
  CHECK_CONTAINS(ng_last_error(rt), "symbolic links");
  CHECK(is_link(tpath("loop-a")) && is_link(tpath("loop-b")));
  ng_runtime_release(rt);
}

/* An existing file keeps its permission bits; a new one gets 0666 & ~umask. */
static void test_mode_kept(void) {
  ng_runtime *rt = with_tokens(1);
  mode_t old_mask = umask(022);
  struct stat sb;
  CHECK_STATUS(ng_snapshot_save(rt, tpath("private.ngs")), NG_OK);
  CHECK(stat(tpath("private.ngs"), &sb) == 0 && (sb.st_mode & 07777) == 0644);
  CHECK_EQ_INT(chmod(tpath("private.ngs"), 0600), 0);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("private.ngs")), NG_OK);
  CHECK(stat(tpath("private.ngs"), &sb) == 0);
  CHECK_EQ_INT(sb.st_mode & 07777, 0600);
  /* through a link: the target's bits */
  CHECK_EQ_INT(chmod(tpath("private.ngs"), 0640), 0);
  CHECK_EQ_INT(symlink("private.ngs", tpath("private-link")), 0);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("private-link")), NG_OK);
  CHECK(stat(tpath("private.ngs"), &sb) == 0);
  CHECK_EQ_INT(sb.st_mode & 07777, 0640);
  umask(old_mask);
  ng_runtime_release(rt);
}

/* A rename replaces a directory entry: another hard link to the old file
 * keeps the old content (docs/format.md says so). */
static void test_hard_link_keeps_old(void) {
  ng_runtime *old = with_tokens(1), *rt = with_tokens(6);
  CHECK_STATUS(ng_snapshot_save(old, tpath("hard.ngs")), NG_OK);
  CHECK_EQ_INT(link(tpath("hard.ngs"), tpath("hard-2.ngs")), 0);
  CHECK_STATUS(ng_snapshot_save(rt, tpath("hard.ngs")), NG_OK);
  CHECK_EQ_INT(tokens_in(tpath("hard.ngs")), 6);
  CHECK_EQ_INT(tokens_in(tpath("hard-2.ngs")), 1);
  ng_runtime_release(old);
  ng_runtime_release(rt);
}

static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    if (unlink(p) != 0 && errno == EISDIR) remove_tree(p);
  }
  closedir(d);
  rmdir(dir);
}

int main(void) {
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_fifo_refused);
  RUN(test_symlink_followed);
  RUN(test_symlink_chain);
  RUN(test_symlink_relative);
  RUN(test_symlink_dangling);
  RUN(test_symlink_loop);
  RUN(test_mode_kept);
  RUN(test_hard_link_keeps_old);
  remove_tree(tmpdir);
  return ngt_done("test_snapshot_targets");
}

/* Background saves, as Redis's BGSAVE: a fork()ed child writes the snapshot of the moment of
 * the fork while the caller goes on; a reaper thread records how the child ended. POSIX only. */
#include "snapshot_format.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* The longest message a save reports (the child's report: one status byte, then the text). */
enum { SAVE_MSG = 512 };

/* Shared by the caller's handle, the reaper thread and the runtime (rt->bg, kept until the
 * runtime's next background save or its end, for NG_EBUSY and for the wait at release);
 * freed by the last of them. Allocated with malloc, not the runtime's allocator, because
 * a handle may outlive its runtime. */
struct ng_save {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs;         /* under mu */
  bool done;        /* under mu: status and message are final */
  pid_t pid;        /* under mu: the child, -1 when fork failed; set before the reaper reads it */
  int fd;           /* the pipe's read end, the reaper's */
  ng_status status; /* how the save ended (final once done) */
  char message[SAVE_MSG];
  char *tmp;   /* the child's temporary file: the reaper removes it if the child dies */
  char path[]; /* as the caller gave it, for messages */
};

static void save_unref(ng_save *job) {
  pthread_mutex_lock(&job->mu);
  int left = --job->refs;
  pthread_mutex_unlock(&job->mu);
  if (left > 0) return;
  pthread_mutex_destroy(&job->mu);
  pthread_cond_destroy(&job->cv);
  free(job->tmp);
  free(job);
}

/* The reaper: reads the child's report until the pipe closes (the child ended), reaps the
 * child, records the outcome and wakes the waiters. A child that ends without a report (a
 * signal, such as SIGKILL) leaves the old file or, killed between the rename and its report,
 * the complete new one; its temporary file, if any, is removed. The
 * thread never touches the runtime, which may be gone by then. */
static void *reap(void *arg) {
  ng_save *job = arg;
  char rep[1 + SAVE_MSG];
  size_t got = 0;
  for (;;) {
    ssize_t k = read(job->fd, rep + got, got < sizeof rep - 1 ? sizeof rep - 1 - got : 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += (size_t)k;
  }
  close(job->fd);
  pthread_mutex_lock(&job->mu);
  pid_t pid = job->pid;
  pthread_mutex_unlock(&job->mu);
  int ws = 0, reaped = 0;
  if (pid > 0) {
    while ((reaped = waitpid(pid, &ws, 0)) < 0 && errno == EINTR) {
    }
  }
  ng_status st = NG_EIO;
  if (got > 0) { /* the child's own verdict (one write: whole or absent) */
    st = (ng_status)rep[0];
    rep[got] = '\0';
    snprintf(job->message, sizeof job->message, "%s", rep + 1);
  } else {
    unlink(job->tmp);
    if (reaped > 0 && WIFSIGNALED(ws))
      snprintf(job->message, sizeof job->message,
               "the save of %s was killed by signal %d (the "
               "file is the previous one, or the new one if the kill came after the rename)",
               job->path, WTERMSIG(ws));
    else
      snprintf(job->message, sizeof job->message,
               "the save of %s ended without a report (the "
               "file is the previous one, or the new one if it ended after the rename)",
               job->path);
  }
  pthread_mutex_lock(&job->mu);
  job->status = st;
  job->done = true;
  pthread_cond_broadcast(&job->cv);
  pthread_mutex_unlock(&job->mu);
  save_unref(job);
  return NULL;
}

/* The child: write, commit, report on fd, _exit. It runs in a copy of a multithreaded process
 * where only this thread exists, so it does the least it can: the writer and the commit (no
 * allocation but the lock-tracking table's, which glibc's fork leaves usable), no progress
 * callback (the host's code is not for this process), no Lua, and _exit (no atexit handlers,
 * no stdio flush). The caller's lock on rt is held in this copy, so the image is the fork's
 * moment. */
static _Noreturn void child_save(ng_runtime *rt, ngi_save_file *s, int fd, const char *path) {
  ngi_world_forked(rt);
  s->w.progress = NULL;
  ngi_save_file_write(rt, s);
  const char *what;
  int e = ngi_save_file_commit(s, &what);
  char rep[1 + SAVE_MSG];
  size_t n = 1;
  rep[0] = (char)(e ? NG_EIO : NG_OK);
  if (e) {
    char ebuf[128];
    int k =
        snprintf(rep + 1, sizeof rep - 1, "%s %s: %s", what, path, errstr(e, ebuf, sizeof ebuf));
    n += k < 0 ? 0 : (size_t)k < sizeof rep - 1 ? (size_t)k : sizeof rep - 2;
  }
  /* One write of at most PIPE_BUF bytes: the reaper gets all of it or nothing. */
  while (write(fd, rep, n) < 0 && errno == EINTR) {
  }
  _exit(e ? 1 : 0);
}

ng_status ngi_snapshot_save_background(ng_runtime *rt, const char *fn, const char *path,
                                       ng_save **out) {
  char ebuf[128];
  pthread_mutex_lock(&rt->bg_lock);
  ng_save *prev = rt->bg;
  if (prev) {
    pthread_mutex_lock(&prev->mu);
    bool running = !prev->done;
    pthread_mutex_unlock(&prev->mu);
    if (running) {
      pthread_mutex_unlock(&rt->bg_lock);
      return ngi_fail(rt, NG_EBUSY, "%s: a background save of %s is still running", fn, prev->path);
    }
  }

  size_t plen = strlen(path) + 1;
  ng_save *job = malloc(sizeof *job + plen);
  if (!job) {
    pthread_mutex_unlock(&rt->bg_lock);
    return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  }
  memset(job, 0, sizeof *job);
  memcpy(job->path, path, plen);
  ngi_save_file s;
  ng_status st = ngi_save_file_open(rt, fn, path, &s);
  if (st != NG_OK) {
    free(job);
    pthread_mutex_unlock(&rt->bg_lock);
    return st;
  }
  int p[2] = {-1, -1};
  const char *failed = NULL;
  int e = 0;
  job->tmp = strdup(s.tmp);
  if (!job->tmp) {
    e = ENOMEM, failed = "strdup";
  } else if (pipe(p) != 0) {
    e = errno, failed = "pipe";
  } else if (fcntl(p[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(p[1], F_SETFD, FD_CLOEXEC) != 0) {
    e = errno, failed = "fcntl"; /* else a program the host runs would hold the pipe open */
  } else if (pthread_mutex_init(&job->mu, NULL) != 0) {
    e = EAGAIN, failed = "pthread_mutex_init";
  } else if (pthread_cond_init(&job->cv, NULL) != 0) {
    pthread_mutex_destroy(&job->mu);
    e = EAGAIN, failed = "pthread_cond_init";
  }
  pthread_t thread;
  if (!failed) {
    job->fd = p[0];
    job->pid = -1;
    job->refs = 3; /* the caller's handle, the reaper, rt->bg */
    if ((e = pthread_create(&thread, NULL, reap, job)) != 0) {
      pthread_mutex_destroy(&job->mu);
      pthread_cond_destroy(&job->cv);
      failed = "pthread_create";
    }
  }
  if (failed) {
    if (p[0] >= 0) close(p[0]), close(p[1]);
    unlink(s.tmp);
    ngi_save_file_free(rt, &s);
    free(job->tmp);
    free(job);
    pthread_mutex_unlock(&rt->bg_lock);
    return ngi_fail(rt, e == ENOMEM || e == EAGAIN ? NG_ENOMEM : NG_EIO,
                    "%s: cannot start a background save of %s: %s: %s", fn, path, failed,
                    errstr(e, ebuf, sizeof ebuf));
  }
  pthread_detach(thread);

  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    child_save(rt, &s, p[1], path);
  }
  e = errno;
  pthread_mutex_lock(&job->mu);
  job->pid = pid;
  pthread_mutex_unlock(&job->mu);
  /* The reaper sees the end of the pipe when the child's copy closes too (and the copy of any
   * child another thread forked meanwhile, which only delays the report). */
  close(p[1]);
  if (pid < 0) unlink(s.tmp);
  ngi_save_file_free(rt, &s); /* the parent's copies; the child has its own */
  if (pid < 0) {
    pthread_mutex_unlock(&rt->bg_lock);
    save_unref(job); /* neither the caller's handle nor rt->bg: the reaper frees it */
    save_unref(job);
    return ngi_fail(rt, e == ENOMEM || e == EAGAIN ? NG_ENOMEM : NG_EIO,
                    "%s: cannot start a background save of %s: fork: %s", fn, path,
                    errstr(e, ebuf, sizeof ebuf));
  }
  rt->bg = job;
  pthread_mutex_unlock(&rt->bg_lock);
  if (prev) save_unref(prev);
  *out = job;
  return NG_OK;
}

/* Needs rt, path, out. Guarantees: on NG_OK *out is a running save of the state at the call
 * (see the header). Fails: NG_EINVAL (NULL arguments), NG_EBUSY (a background save of rt is
 * running, or called inside this thread's transaction on rt), NG_ENOMEM, NG_EIO (the
 * temporary file, or fork); nothing is left behind. */
ng_status ng_snapshot_save_background(ng_runtime *rt, const char *path, ng_save **out) {
  static const char fn[] = "ng_snapshot_save_background";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!path || !*path) return ngi_fail(rt, NG_EINVAL, "%s: path must be a non-empty string", fn);
  if (!out) return ngi_fail(rt, NG_EINVAL, "%s: out must not be NULL", fn);
  *out = NULL;
  /* The read lock nests in this thread's transaction, whose uncommitted writes must not be
   * saved; elsewhere it means no write is in flight, and readers go on during the fork. */
  if (ngi_txn_holds(rt)) return ngi_fail(rt, NG_EBUSY, "%s: cannot save inside a transaction", fn);
  ngi_read_lock(rt);
  ng_status st = ngi_snapshot_save_background(rt, fn, path, out);
  ngi_read_unlock(rt);
  return st;
}

ng_status ng_save_status(ng_save *job, bool wait, const char **message) {
  if (message) *message = NULL;
  if (!job) return ngi_fail(NULL, NG_EINVAL, "ng_save_status: job must not be NULL");
  pthread_mutex_lock(&job->mu);
  while (wait && !job->done)
    pthread_cond_wait(&job->cv, &job->mu);
  ng_status st = job->done ? job->status : NG_EBUSY;
  pthread_mutex_unlock(&job->mu);
  if (st != NG_OK && st != NG_EBUSY && message) *message = job->message;
  return st;
}

void ng_save_free(ng_save *job) {
  if (job) save_unref(job);
}

void ngi_save_ref(ng_save *job) {
  pthread_mutex_lock(&job->mu);
  job->refs++;
  pthread_mutex_unlock(&job->mu);
}

void ngi_bgsave_end(ng_runtime *rt) {
  ng_save *job = rt->bg;
  if (!job) return;
  ng_save_status(job, true, NULL);
  rt->bg = NULL;
  save_unref(job);
}

pid_t ngi_save_child(ng_save *job) {
  pthread_mutex_lock(&job->mu);
  pid_t pid = job->pid;
  pthread_mutex_unlock(&job->mu);
  return pid;
}

/* fs.h: files written atomically, files read whole, paths.
 *
 * Every file vr writes goes through vr_atomic: bytes go to "PATH.tmp.PID",
 * which is fsynced, renamed over PATH, and the directory fsynced, so a reader
 * (or a crash) sees the old file or the new one, never half of one. */
#ifndef VR_FS_H
#define VR_FS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "err.h"

struct vr_atomic {
    char *path;
    char *tmp;
    int fd;
    /* Set after open to skip both fsyncs: only for files that carry a
     * checksum of their contents which every reader verifies, and that can be
     * rebuilt (the pixel cache), so that a crash may lose them but never
     * pass off a torn one. The rename still makes them appear whole. */
    int nosync;
};

/* Create the temp file beside path. */
int vr_atomic_open(struct vr_atomic *a, const char *path, struct vr_err *err);
/* Create a new temporary file beside path, PATH.tmp.PID.XXXXXXXX, with
 * O_EXCL | O_NOFOLLOW (a planted file or symlink is never written through);
 * returns its descriptor and *tmp (malloc'ed), or -1. */
int vr_tmp_create(const char *path, char **tmp, struct vr_err *err);
int vr_atomic_write(struct vr_atomic *a, const void *buf, size_t len, struct vr_err *err);
/* fsync (unless nosync), close, rename to path, fsync the directory (unless nosync). On failure the temp file is
 * removed and path is untouched. Frees a's contents either way. */
int vr_atomic_commit(struct vr_atomic *a, struct vr_err *err);
/* Remove the temp file and free a's contents. */
void vr_atomic_abort(struct vr_atomic *a);
/* Open + write + commit. */
int vr_file_write_atomic(const char *path, const void *buf, size_t len, struct vr_err *err);

/* Read a whole file into a NUL-terminated malloc'ed buffer (*len excludes the
 * NUL). "-" reads standard input. */
int vr_file_read(const char *path, char **buf, size_t *len, struct vr_err *err);

/* Open path for reading only when it is a regular file (after symlinks): a
 * FIFO, a device such as /dev/zero or a directory named by a dataset is an
 * error ("not a regular file"), never a hang or an endless read; nor is a file
 * larger than max_bytes read (0: no limit). The descriptor is close-on-exec. */
FILE *vr_file_open_regular(const char *path, int64_t max_bytes, struct vr_err *err);
/* vr_file_read for files a dataset names: vr_file_open_regular's checks,
 * then the whole file. */
int vr_file_read_regular(const char *path, int64_t max_bytes, char **buf, size_t *len,
                         struct vr_err *err);

/* Remove the temporaries of dead writers from dir: regular files named
 * *.tmp.PID[.*] (vr_tmp_create's and older vr's names) whose PID no longer
 * runs and that are at least min_age_s old (a writer in another pid
 * namespace sharing the folder looks dead; the age keeps its file safe).
 * Returns how many were removed. */
int vr_tmp_sweep(const char *dir, int64_t min_age_s);
/* The same for a caller that holds dir's writer lock (a run folder's
 * OUT/.lock): the lock proves that no other writer is at work, so every such
 * temporary but this process's goes now, whatever its age, and whether or
 * not its pid runs (a dead writer's pid may be another program's by now). */
int vr_tmp_sweep_held(const char *dir);

/* rm -rf name, relative to the folder dfd (AT_FDCWD: the current one); links
 * are removed, never followed. 0, or -1 with errno saying why. */
int vr_rm_rf_at(int dfd, const char *name);

/* A whole-file write lock (fcntl; released when the process ends, however it
 * ends): the descriptor, or -1 with *holder the pid that holds it (-1 when
 * unknown; 0 for any other failure) and err set. */
int vr_lock_take(const char *path, pid_t *holder, struct vr_err *err);
/* *pid = the process holding a write lock on path, or 0 (none, or no file);
 * this process's own pid when it holds the lock itself. */
int vr_lock_holder(const char *path, pid_t *pid, struct vr_err *err);
/* Whether this process holds the lock on path (vr_lock_take). POSIX locks
 * belong to the process and closing any descriptor of the file drops them
 * all, so code that might open a lock file its own process holds (a loader
 * settling a folder, fileset.h) asks first. */
int vr_lock_held(const char *path);
/* Give back a lock that vr_lock_take returned (close its descriptor). */
void vr_lock_release(int fd);

/* Test-only fault injection, for the crash and full-disk tests (tests/t0915):
 * with VR_TEST_IO=kill@K in the environment, the K-th step of writing a
 * file or a checkpoint (creating, writing, fsyncing, renaming, removing;
 * counted from 1 across the process) raises SIGKILL before it runs; with
 * fail@K that step fails with ENOSPC instead; with "trace" each step prints
 * "vr-test-io K WHAT PATH" on stderr. Unset (always, outside tests) it costs
 * one test of a static. Returns 0, or -1 with errno set. */
int vr_test_io(const char *what, const char *path);

/* 0 when path, its symlinks resolved, lies inside the folder root (also
 * resolved); else -1 with err naming both (or saying which cannot be
 * resolved, e.g. a missing file). */
int vr_path_confined(const char *root, const char *path, struct vr_err *err);

/* dir + "/" + name, lexically normalised ("a//b/./c" -> "a/b/c"); name is
 * returned as is (normalised) when absolute or when dir is NULL or empty.
 * Caller frees. */
char *vr_path_join(const char *dir, const char *name);
/* Absolute, lexically normalised form of path (relative to the current
 * directory); symlinks are not resolved. Caller frees. */
char *vr_path_abs(const char *path);
/* Directory part of path ("." when it has none). Caller frees. */
char *vr_path_dir(const char *path);
/* mkdir -p. */
int vr_mkdir_p(const char *dir, struct vr_err *err);

#endif

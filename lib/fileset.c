/* fileset.c: a folder's files replaced as one set through a commit record
 * (see fileset.h). vr-update's run folder root; every loader of a model
 * folder settles it first. */
#include "fileset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "jsonl.h"

/* A plain file name the record may carry: no path, no dot file (the record,
 * the lock and temporaries are dot files, never part of a set). */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n < 256 && s[0] != '.' && !strchr(s, '/');
}

static int staging_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 5 && n < 256 && strncmp(s, ".tmp-", 5) == 0 && !strchr(s, '/');
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Step 3 (fileset.h). Every step may have been done before a crash: a staged
 * file that is gone was moved, a file to remove that is gone was removed. */
static int apply(const char *dir, const char *staging, const json_t *mv, const json_t *rm, struct vr_err *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return vr_err_sys(err, dir, "cannot open");
    int sfd = openat(dfd, staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc = 0;
    if (sfd < 0 && errno != ENOENT) rc = vr_err_sys(err, dir, "cannot open %s", staging);
    size_t i;
    json_t *v;
    json_array_foreach(mv, i, v) {
        const char *n = json_string_value(v);
        if (rc || sfd < 0) break;
        if (vr_test_io("rename", n) || (renameat(sfd, n, dfd, n) != 0 && errno != ENOENT))
            rc = vr_err_sys(err, dir, "cannot move %s/%s into place", staging, n);
    }
    json_array_foreach(rm, i, v) {
        const char *n = json_string_value(v);
        if (rc) break;
        if (vr_test_io("unlink", n) || (unlinkat(dfd, n, 0) != 0 && errno != ENOENT))
            rc = vr_err_sys(err, dir, "cannot remove %s", n);
    }
    /* the moves are on disk before the record goes (a folder that refuses
     * fsync does not undo them, as in vr_atomic_commit) */
    if (rc == 0) (void)fsync(dfd);
    if (rc == 0 && (vr_test_io("unlink", VR_FILESET_RECORD) ||
                    (unlinkat(dfd, VR_FILESET_RECORD, 0) != 0 && errno != ENOENT)))
        rc = vr_err_sys(err, dir, "cannot remove %s", VR_FILESET_RECORD);
    if (rc == 0) {
        (void)fsync(dfd);
        /* a leftover if this fails or a crash comes first: the next writer removes it */
        if (vr_test_io("remove", staging) == 0) (void)vr_rm_rf_at(dfd, staging);
    }
    if (sfd >= 0) close(sfd);
    close(dfd);
    return rc;
}

int vr_fileset_commit(const char *dir, const char *staging, const char *const *drop, int ndrop,
                      struct vr_err *err)
{
    VR_ASSERT(staging_ok(staging));
    char *sp = vr_path_join(dir, staging);
    DIR *d = opendir(sp);
    if (!d) {
        vr_err_sys(err, sp, "cannot open");
        free(sp);
        return -1;
    }
    int n = 0, cap = 16;
    char **names = vr_xmalloc((size_t)cap * sizeof *names);
    for (struct dirent *e; (e = readdir(d));) {
        struct stat st;
        if (!name_ok(e->d_name) || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (n == cap) names = vr_xrealloc(names, (size_t)(cap *= 2) * sizeof *names);
        names[n++] = vr_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    json_t *mv = json_array(), *rm = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(mv, json_string(names[i]));
    for (int k = 0; k < ndrop; k++) {
        if (!name_ok(drop[k]) || bsearch(&drop[k], names, (size_t)n, sizeof *names, cmp_str)) continue;
        json_array_append_new(rm, json_string(drop[k]));
    }
    json_t *rec = json_pack("{s:s,s:o,s:o}", "staging", staging, "move", mv, "remove", rm);
    char *rp = vr_path_join(dir, VR_FILESET_RECORD);
    /* the commit point: durable once this returns */
    int rc = vr_json_write_file(rp, rec, 0, err);
    if (rc) {
        (void)vr_rm_rf_at(AT_FDCWD, sp);
        if (err && !err->hint[0]) vr_err_hint(err, "%s is as it was before this save", dir);
    } else if ((rc = apply(dir, staging, mv, rm, err)) != 0) {
        vr_err_hint(err, "the save is complete: the next program that loads %s (or writes to it) puts its "
                         "last files in place",
                    dir);
    }
    free(rp);
    json_decref(rec);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(sp);
    return rc;
}

/* An array of plain file names. */
static int names_ok(const json_t *a)
{
    if (!json_is_array(a)) return 0;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (!json_is_string(v) || !name_ok(json_string_value(v))) return 0;
    return 1;
}

int vr_fileset_recover(const char *dir, struct vr_err *err)
{
    char *rp = vr_path_join(dir, VR_FILESET_RECORD);
    struct stat st;
    if (lstat(rp, &st) != 0 && errno == ENOENT) {
        free(rp);
        return 0;
    }
    char *buf;
    size_t len;
    int rc = vr_file_read_regular(rp, 1 << 20, &buf, &len, err);
    if (rc) {
        free(rp);
        return -1;
    }
    json_error_t je;
    json_t *rec = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    json_t *sg = json_object_get(rec, "staging"), *mv = json_object_get(rec, "move"),
           *rm = json_object_get(rec, "remove");
    if (!rec) {
        rc = vr_err_set(err, VR_ERR_INPUT, rp, je.line, "invalid JSON: %s", je.text);
    } else if (!json_is_string(sg) || !staging_ok(json_string_value(sg)) || !names_ok(mv) || !names_ok(rm)) {
        rc = vr_err_set(err, VR_ERR_INPUT, rp, 0,
                        "not a commit record of vr (\"staging\": .tmp-*, \"move\" and \"remove\": file names)");
    }
    if (rc) {
        vr_err_hint(err, "a save into %s did not finish and its record is damaged: check the folder's files, "
                         "then remove the record",
                    dir);
    } else {
        rc = apply(dir, json_string_value(sg), mv, rm, err) ? -1 : 1;
        if (rc < 0) vr_err_hint(err, "an interrupted save into %s could not be completed", dir);
    }
    json_decref(rec);
    free(rp);
    return rc;
}

int vr_fileset_settle(const char *dir, struct vr_err *err)
{
    char *rp = vr_path_join(dir, VR_FILESET_RECORD), *lp = vr_path_join(dir, VR_FILESET_LOCK);
    struct stat st;
    int rc = 0;
    if (lstat(rp, &st) != 0) goto out; /* the usual case: nothing to do */
    if (vr_lock_held(lp)) { /* this process is dir's writer */
        rc = vr_fileset_recover(dir, err) < 0 ? -1 : 0;
        goto out;
    }
    for (int tries = 0;; tries++) {
        pid_t holder;
        struct vr_err e2;
        int fd = vr_lock_take(lp, &holder, &e2);
        if (fd >= 0) {
            rc = vr_fileset_recover(dir, err) < 0 ? -1 : 0;
            vr_lock_release(fd);
            break;
        }
        if (!holder) { /* a folder we may not write to, say */
            rc = vr_err_set(err, VR_ERR_INPUT, dir, 0,
                            "a save into this folder did not finish (%s), and this program cannot finish it: %s",
                            VR_FILESET_RECORD, e2.msg);
            vr_err_hint(err, "a program that may write to %s finishes it when it loads the folder "
                             "(vr-inspect -m %s)",
                        dir, dir);
            break;
        }
        if (lstat(rp, &st) != 0) break; /* the writer has finished */
        if (tries == 200) {
            rc = vr_err_set(err, VR_ERR_INPUT, dir, 0,
                            "pid %ld is replacing the files of this folder (%s); load it when that save has finished",
                            (long)holder, VR_FILESET_RECORD);
            break;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
out:
    free(rp);
    free(lp);
    return rc;
}

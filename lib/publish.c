/* publish.c: the weight handoff of the steady-state loop (see publish.h):
 * vr-update --publish writes, vr-rollout --follow reads. */
#include "publish.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "fs.h"
#include "progress.h"

#define LOCK_FILE "lock"
#define GEN_FILE "generation"

/* The pid holding a write lock on path, 0 when none (or no such file). */
/* ---- the writer ---- */

int vr_publish_open(struct vr_publish *p, const char *dir, const char *src, int prompts_per_step,
                    struct vr_err *err)
{
    memset(p, 0, sizeof *p);
    p->fd = -1;
    p->gen = -1;
    VR_ASSERT(prompts_per_step > 0);
    if (vr_mkdir_p(dir, err)) return -1;
    struct stat ds, ss;
    if (src && stat(dir, &ds) == 0 && stat(src, &ss) == 0 && ds.st_dev == ss.st_dev && ds.st_ino == ss.st_ino)
        return vr_err_set(err, VR_ERR_USAGE, dir, 0, "is the model folder; publish into a folder of its own");
    char *lp = vr_path_join(dir, LOCK_FILE);
    pid_t other = 0;
    int fd = vr_lock_take(lp, &other, err);
    free(lp);
    if (fd < 0) {
        if (other) vr_err_set(err, VR_ERR_INPUT, dir, 0, "another process (pid %ld) publishes here", (long)other);
        return -1;
    }
    /* an earlier run's files that a reader could take for ours: the lock
     * already tells readers that this writer is the live one, and a
     * generation file they believe must name this pid */
    static const char *const stale[] = {GEN_FILE, "adapter_config.json", "adapter_model.safetensors",
                                        "model.safetensors.index.json"};
    for (size_t i = 0; i < sizeof stale / sizeof *stale; i++) {
        char *sp = vr_path_join(dir, stale[i]);
        int rc = unlink(sp);
        if (rc != 0 && errno != ENOENT) {
            vr_err_sys(err, sp, "cannot remove");
            free(sp);
            close(fd);
            return -1;
        }
        free(sp);
    }
    p->dir = vr_xstrdup(dir);
    p->fd = fd;
    p->prompts_per_step = prompts_per_step;
    return 0;
}

int vr_publish_weights(struct vr_publish *p, int64_t gen, const char *src, const struct vr_ptab *t,
                       const float *master, enum vr_dtype dt, struct vr_err *err)
{
    VR_ASSERT(p->fd >= 0 && gen > p->gen);
    if (dt != VR_DTYPE_F32 && dt != VR_DTYPE_BF16 && dt != VR_DTYPE_F16)
        return vr_err_set(err, VR_ERR_USAGE, p->dir, 0, "weights as %s: vr writes F32, BF16 or F16",
                          vr_dtype_name(dt));
    if (!p->aux) {
        if (vr_ckpt_copy_aux(p->dir, src, dt, err)) return -1;
        p->aux = 1;
    }
    /* the tensors a checkpoint's weights hold, with the generation, no fsync */
    char g[32];
    snprintf(g, sizeof g, "%" PRId64, gen);
    json_t *meta = json_pack("{s:s,s:s}", "format", "pt", "generation", g);
    char *path = vr_path_join(p->dir, "model.safetensors");
    int rc = vr_ckpt_write_params(path, t, master, dt,
                                  &(struct vr_st_write_opts){.metadata = meta, .nosync = 1}, err);
    free(path);
    json_decref(meta);
    return rc;
}

int vr_publish_mark(struct vr_publish *p, int64_t gen, struct vr_err *err)
{
    VR_ASSERT(p->fd >= 0 && gen > p->gen);
    char buf[160];
    int len = snprintf(buf, sizeof buf, "{\"generation\":%" PRId64 ",\"pid\":%ld,\"prompts_per_step\":%d}\n", gen,
                       (long)getpid(), p->prompts_per_step);
    char *path = vr_path_join(p->dir, GEN_FILE);
    struct vr_atomic a;
    int rc = vr_atomic_open(&a, path, err);
    if (rc == 0) {
        a.nosync = 1;
        rc = vr_atomic_write(&a, buf, (size_t)len, err);
        if (rc == 0) rc = vr_atomic_commit(&a, err);
        else vr_atomic_abort(&a);
    }
    free(path);
    if (rc == 0) p->gen = gen;
    return rc;
}

void vr_publish_close(struct vr_publish *p)
{
    if (p->fd >= 0) close(p->fd);
    free(p->dir);
    memset(p, 0, sizeof *p);
    p->fd = -1;
}

/* ---- readers ---- */

void vr_publish_reader_init(struct vr_publish_reader *r, const char *dir)
{
    memset(r, 0, sizeof *r);
    r->dir = vr_xstrdup(dir);
    r->start_timeout = 120;
    r->t0 = vr_now();
}

void vr_publish_reader_release(struct vr_publish_reader *r)
{
    free(r->dir);
    memset(r, 0, sizeof *r);
}

/* DIR/generation: 1 with its fields, 0 when absent or not one vr writes. */
static int read_gen(const char *path, int64_t *gen, long *pid, int *pps, struct vr_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : vr_err_sys(err, path, "cannot open");
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (n < 0) {
        errno = e;
        return vr_err_sys(err, path, "read failed");
    }
    json_error_t je;
    json_t *j = json_loadb(buf, (size_t)n, 0, &je);
    json_t *g = json_object_get(j, "generation"), *p = json_object_get(j, "pid"),
           *s = json_object_get(j, "prompts_per_step");
    int ok = json_is_integer(g) && json_is_integer(p) && json_is_integer(s) && json_integer_value(g) >= 0 &&
             json_integer_value(s) > 0 && json_integer_value(s) <= 1 << 30;
    if (ok) {
        *gen = json_integer_value(g);
        *pid = (long)json_integer_value(p);
        *pps = (int)json_integer_value(s);
    }
    json_decref(j);
    /* not ours: an earlier run's, which the live writer is about to remove */
    return ok;
}

int vr_publish_poll(struct vr_publish_reader *r, int64_t *gen, struct vr_err *err)
{
    *gen = -1;
    char *lp = vr_path_join(r->dir, LOCK_FILE), *gp = vr_path_join(r->dir, GEN_FILE);
    pid_t holder;
    int rc = vr_lock_holder(lp, &holder, err);
    if (rc == 0 && holder == 0) {
        if (r->writer)
            rc = vr_err_set(err, VR_ERR_INPUT, r->dir, 0, "its writer (vr-update --publish, pid %ld) is gone",
                            (long)r->writer);
        else if (vr_now() - r->t0 > r->start_timeout)
            rc = vr_err_set(err, VR_ERR_INPUT, r->dir, 0, "no vr-update --publish has written here in %g s",
                            r->start_timeout);
    } else if (rc == 0 && holder < 0) {
        rc = vr_err_set(err, VR_ERR_INPUT, r->dir, 0,
                        "its writer runs in another pid namespace; run vr-rollout beside vr-update");
    } else if (rc == 0 && r->writer && holder != r->writer) {
        rc = vr_err_set(err, VR_ERR_INPUT, r->dir, 0, "its writer pid %ld was replaced by pid %ld",
                        (long)r->writer, (long)holder);
    } else if (rc == 0) {
        /* the lock first, then the file: a file read after the writer took
         * the lock is this writer's or names another (earlier) pid */
        int64_t g;
        long pid;
        int pps, have = read_gen(gp, &g, &pid, &pps, err);
        if (holder > 0) r->writer = holder;
        if (have < 0) rc = -1;
        else if (have && pid == (long)holder) {
            r->prompts_per_step = pps;
            *gen = g;
        }
    }
    free(lp);
    free(gp);
    return rc;
}

int vr_publish_wait(struct vr_publish_reader *r, int64_t at_least, int64_t *gen, struct vr_err *err)
{
    for (;;) {
        if (vr_publish_poll(r, gen, err)) return -1;
        if (*gen >= at_least) return 0;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

int64_t vr_publish_generation_of(const struct vr_stset *st)
{
    if (st->nfiles != 1) return -1;
    const char *g = json_string_value(json_object_get(st->files[0].metadata, "generation"));
    if (!g || !*g) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(g, &end, 10);
    return *end || errno || v < 0 ? -1 : (int64_t)v;
}

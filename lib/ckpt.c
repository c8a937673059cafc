/* ckpt.c: checkpoint folders (see ckpt.h) — the writers, the atomic save
 * (temporary sibling, fsync, rename or atomic exchange), the readers of the
 * trainer state and the run folder's listing and pruning. vr-update's. */
#include "ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileset.h"
#include "fs.h"
#include "jsonl.h"
#include "safetensors.h"

#define STATE_FILE "trainer_state.json"
#define OPTIM_FILE "optimizer.safetensors"
#define RUN_LOCK VR_FILESET_LOCK /* vr_ckpt_run_lock */

/* ---- the table ---- */

static size_t param_numel(const struct vr_param *p)
{
    size_t n = 1;
    for (int d = 0; d < p->ndim; d++) n *= (size_t)p->shape[d];
    return n;
}

static int trained(const struct vr_ptab *t, int i)
{
    return !t->p[i].tied && (!t->train || t->train[i]);
}

/* Programming errors only: the caller built the table. */
static void check_tab(const struct vr_ptab *t)
{
    for (int i = 0; i < t->np; i++)
        if (!t->p[i].tied) VR_ASSERT(t->off[i] + param_numel(&t->p[i]) <= t->total);
}

int vr_ptab_ranges(const struct vr_ptab *t, struct vr_range *out)
{
    int n = 0;
    for (int i = 0; i < t->np; i++)
        if (trained(t, i)) out[n++] = (struct vr_range){t->off[i], param_numel(&t->p[i]), i};
    return n;
}

/* ---- removing folders ---- */

static int rm_rf(const char *path, struct vr_err *err)
{
    if (vr_rm_rf_at(AT_FDCWD, path)) return vr_err_sys(err, path, "cannot remove");
    return 0;
}

/* fsync of a folder; some filesystems refuse it, which does not undo
 * anything already on disk (as vr_atomic_commit) */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

/* fsync every file under dir, then dir. */
static int sync_tree(const char *dir, int depth, struct vr_err *err)
{
    DIR *d = opendir(dir);
    if (!d) return vr_err_sys(err, dir, "cannot open");
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = vr_path_join(dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) != 0) {
            rc = vr_err_sys(err, p, "cannot stat");
        } else if (S_ISREG(sb.st_mode)) {
            int fd = open(p, O_RDONLY | O_CLOEXEC);
            if (fd < 0) rc = vr_err_sys(err, p, "cannot open");
            else {
                if (vr_test_io("fsync", p) || fsync(fd) != 0) rc = vr_err_sys(err, p, "fsync failed");
                close(fd);
            }
        } else if (S_ISDIR(sb.st_mode) && depth < 8) {
            rc = sync_tree(p, depth + 1, err);
        }
        free(p);
    }
    closedir(d);
    if (rc == 0) sync_dir(dir);
    return rc;
}

/* ---- writers ---- */

static int check_dtype(enum vr_dtype dt, const char *path, struct vr_err *err)
{
    if (dt == VR_DTYPE_F32 || dt == VR_DTYPE_BF16 || dt == VR_DTYPE_F16) return 0;
    return vr_err_set(err, VR_ERR_USAGE, path, 0, "weights as %s: vr writes F32, BF16 or F16",
                      dt < VR_DTYPE_COUNT ? vr_dtype_name(dt) : "?");
}

struct wfill {
    const struct vr_ptab *t;
    const float *master;
    const int *map; /* writer index -> parameter index */
    enum vr_dtype dt;
};

static int wfill_fn(void *ctx, int i, void *buf, size_t nbytes, struct vr_err *err)
{
    struct wfill *w = ctx;
    int k = w->map[i];
    (void)err;
    VR_ASSERT(nbytes == param_numel(&w->t->p[k]) * vr_dtype_size(w->dt));
    vr_convert_from_f32(buf, w->dt, w->master + w->t->off[k], nbytes / vr_dtype_size(w->dt));
    return 0;
}

/* one file at path (model_dir NULL; o NULL: {"format": "pt"} and fsync) or a
 * model's set in model_dir */
static int write_tensors(const char *path, const char *model_dir, const struct vr_ptab *t,
                         const float *master, enum vr_dtype dt, uint64_t max_shard,
                         const struct vr_st_write_opts *o, struct vr_err *err)
{
    if (check_dtype(dt, path ? path : model_dir, err)) return -1;
    check_tab(t);
    const char **names = vr_xmalloc(((size_t)t->np + 1) * sizeof *names);
    struct vr_tensor *ts = vr_xmalloc(((size_t)t->np + 1) * sizeof *ts);
    int *map = vr_xmalloc(((size_t)t->np + 1) * sizeof *map);
    int n = 0;
    for (int i = 0; i < t->np; i++) {
        if (t->p[i].tied) continue;
        names[n] = t->p[i].name;
        vr_tensor_view(&ts[n], dt, t->p[i].ndim, t->p[i].shape, NULL);
        map[n++] = i;
    }
    struct wfill w = {t, master, map, dt};
    struct vr_st_write_opts wo = o ? *o : (struct vr_st_write_opts){0};
    wo.fill = wfill_fn;
    wo.ctx = &w;
    int rc;
    if (model_dir) {
        rc = vr_stset_write(model_dir, n, names, ts, max_shard, &wo, err);
    } else {
        /* what transformers and PEFT write: readers check it */
        json_t *m = wo.metadata ? json_incref(wo.metadata) : json_pack("{s:s}", "format", "pt");
        wo.metadata = m;
        rc = vr_safetensors_write(path, n, names, ts, &wo, err);
        json_decref(m);
    }
    free(names);
    free(ts);
    free(map);
    return rc;
}

int vr_ckpt_write_params(const char *path, const struct vr_ptab *t, const float *master,
                         enum vr_dtype dt, const struct vr_st_write_opts *o, struct vr_err *err)
{
    return write_tensors(path, NULL, t, master, dt, 0, o, err);
}

/* The untied tensors of t as a model's model.safetensors or shards in dir. */
static int write_weights(const char *dir, const struct vr_ptab *t, const float *master,
                         enum vr_dtype dt, uint64_t max_shard_bytes, struct vr_err *err)
{
    return write_tensors(NULL, dir, t, master, dt, max_shard_bytes, NULL, err);
}

static int write_optim(const char *dir, const struct vr_ckpt *c, struct vr_err *err)
{
    const struct vr_ptab *t = c->tab;
    VR_ASSERT(t && c->master);
    check_tab(t);
    for (int i = 0; i < t->np; i++) /* the moments cover the trained tensors (none: LoRA's extras only) */
        VR_ASSERT(!trained(t, i) || c->opt->n == t->total);
    size_t cap = 3 * (size_t)t->np + (size_t)c->nextra + 1;
    char **names = vr_xcalloc(cap, sizeof *names);
    struct vr_tensor *ts = vr_xmalloc(cap * sizeof *ts);
    int n = 0;
    static const char *const kind[3] = {"master", "exp_avg", "exp_avg_sq"};
    for (int i = 0; i < t->np; i++) {
        if (!trained(t, i)) continue;
        const float *src[3] = {c->master, c->opt->m, c->opt->v};
        for (int k = 0; k < 3; k++) {
            size_t len = strlen(kind[k]) + strlen(t->p[i].name) + 2;
            names[n] = vr_xmalloc(len);
            snprintf(names[n], len, "%s.%s", kind[k], t->p[i].name);
            /* the writer only reads through the view */
            vr_tensor_view(&ts[n++], VR_DTYPE_F32, t->p[i].ndim, t->p[i].shape,
                           (void *)(uintptr_t)(src[k] + t->off[i]));
        }
    }
    for (int i = 0; i < c->nextra; i++) {
        names[n] = vr_xstrdup(c->extra_names[i]);
        ts[n++] = c->extra[i];
    }
    char *path = vr_path_join(dir, OPTIM_FILE);
    json_t *meta = json_pack("{s:s}", "format", "vr-adamw");
    int rc = vr_safetensors_write(path, n, (const char *const *)names, ts,
                                  &(struct vr_st_write_opts){.metadata = meta}, err);
    json_decref(meta);
    free(path);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(ts);
    return rc;
}

/* Files of a model folder that are not weights or trainer state. */
static int aux_file(const char *name)
{
    static const char *const skip_suffix[] = {".safetensors", ".bin", ".pt", ".pth", ".h5",
                                              ".msgpack", ".ckpt", ".gguf", ".index.json"};
    /* a LoRA folder's adapter_config.json would make transformers load the
     * folder as an adapter; adapter checkpoints write their own */
    if (name[0] == '.' || strstr(name, ".tmp.") || strcmp(name, STATE_FILE) == 0 ||
        strcmp(name, "adapter_config.json") == 0)
        return 0;
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof skip_suffix / sizeof *skip_suffix; i++) {
        size_t k = strlen(skip_suffix[i]);
        if (n >= k && strcmp(name + n - k, skip_suffix[i]) == 0) return 0;
    }
    return 1;
}

/* Set the dtype keys config.json has (torch_dtype; dtype in transformers
 * >= 4.56; the same in text_config and vision_config). Returns whether
 * anything changed. */
static int set_dtype(json_t *j, const char *dt, int top)
{
    int changed = 0, found = 0;
    static const char *const keys[2] = {"torch_dtype", "dtype"};
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(j, keys[k]);
        if (!json_is_string(v) && !json_is_null(v)) continue;
        found = 1;
        if (json_is_string(v) && strcmp(json_string_value(v), dt) == 0) continue;
        json_object_set_new(j, keys[k], json_string(dt));
        changed = 1;
    }
    if (top && !found) {
        json_object_set_new(j, "torch_dtype", json_string(dt));
        changed = 1;
    }
    if (top) {
        static const char *const subs[2] = {"text_config", "vision_config"};
        for (int k = 0; k < 2; k++) {
            json_t *s = json_object_get(j, subs[k]);
            if (json_is_object(s)) changed |= set_dtype(s, dt, 0);
        }
    }
    return changed;
}

static int copy_config(const char *dst, const char *src, const char *buf, size_t len,
                       enum vr_dtype dtype, struct vr_err *err)
{
    const char *dt = dtype == VR_DTYPE_F32    ? "float32"
                     : dtype == VR_DTYPE_BF16 ? "bfloat16"
                     : dtype == VR_DTYPE_F16  ? "float16"
                                              : NULL;
    if (!dt) return vr_file_write_atomic(dst, buf, len, err);
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return j ? vr_err_set(err, VR_ERR_INPUT, src, 0, "not a JSON object")
                 : vr_err_set(err, VR_ERR_INPUT, src, je.line, "invalid JSON: %s", je.text);
    }
    int rc = set_dtype(j, dt, 1) ? vr_json_write_file(dst, j, 0, err) : vr_file_write_atomic(dst, buf, len, err);
    json_decref(j);
    return rc;
}

/* same_as: the folder the files end up in (dst, or the one a staging
 * folder dst is committed to); when it is src, only config.json is
 * rewritten and the other files are left where they are. */
static int copy_aux(const char *dst, const char *src, const char *same_as, enum vr_dtype dtype,
                    struct vr_err *err)
{
    struct stat ss, ds;
    if (stat(src, &ss) != 0) return vr_err_sys(err, src, "cannot open");
    if (!S_ISDIR(ss.st_mode)) return vr_err_set(err, VR_ERR_INPUT, src, 0, "not a folder");
    if (vr_mkdir_p(dst, err)) return -1;
    int same = stat(same_as, &ds) == 0 && ds.st_dev == ss.st_dev && ds.st_ino == ss.st_ino;
    DIR *d = opendir(src);
    if (!d) return vr_err_sys(err, src, "cannot open");
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!aux_file(e->d_name)) continue;
        int config = strcmp(e->d_name, "config.json") == 0;
        if (same && !config) continue;
        char *sp = vr_path_join(src, e->d_name), *dp = vr_path_join(dst, e->d_name);
        struct stat sb;
        if (stat(sp, &sb) != 0) {
            rc = vr_err_sys(err, sp, "cannot open"); /* a dangling link, say */
        } else if (S_ISREG(sb.st_mode)) {
            char *buf;
            size_t len;
            rc = vr_file_read(sp, &buf, &len, err);
            if (rc == 0) {
                rc = config ? copy_config(dp, sp, buf, len, dtype, err)
                            : vr_file_write_atomic(dp, buf, len, err);
                free(buf);
            }
        }
        free(sp);
        free(dp);
    }
    closedir(d);
    return rc;
}

int vr_ckpt_copy_aux(const char *dst, const char *src, enum vr_dtype dtype, struct vr_err *err)
{
    return copy_aux(dst, src, dst, dtype, err);
}

/* vr_ckpt_write into dir, for the folder final (dir itself, or the folder a
 * staging folder dir is committed to) */
static int write_into(const char *dir, const char *final, const struct vr_ckpt *c, struct vr_err *err)
{
    if (vr_mkdir_p(dir, err)) return -1;
    int weights = c->tab && c->master;
    if (c->src && copy_aux(dir, c->src, final, weights ? c->dtype : VR_DTYPE_COUNT, err)) return -1;
    if (weights && write_weights(dir, c->tab, c->master, c->dtype, c->max_shard_bytes, err))
        return -1;
    if (c->opt && write_optim(dir, c, err)) return -1;
    if (c->more && c->more(c->more_ctx, dir, err)) return -1;
    if (c->state) {
        char *p = vr_path_join(dir, STATE_FILE);
        int rc = vr_json_write_file(p, c->state, 0, err);
        free(p);
        if (rc) return -1;
    }
    return 0;
}

int vr_ckpt_write(const char *dir, const struct vr_ckpt *c, struct vr_err *err)
{
    return write_into(dir, dir, c, err);
}

/* The files that make up a checkpoint's state, as vr writes them: a set
 * without one removes it from the folder it replaces (an adapter would be
 * folded in again, moments of other tensors continued, a shard index would
 * shadow a new model.safetensors). */
static int state_file(const char *name)
{
    static const char *const names[] = {"model.safetensors", "model.safetensors.index.json", "adapter_config.json",
                                        "adapter_model.safetensors", OPTIM_FILE, STATE_FILE};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(name, names[i])) return 1;
    size_t n = strlen(name); /* model-00001-of-00002.safetensors */
    return !strncmp(name, "model-", 6) && strstr(name, "-of-") && n > 12 && !strcmp(name + n - 12, ".safetensors");
}

int vr_ckpt_replace(const char *dir, const struct vr_ckpt *c, struct vr_err *err)
{
    if (c->tab && c->master && check_dtype(c->dtype, dir, err)) return -1;
    if (vr_mkdir_p(dir, err)) return -1;
    char name[64];
    snprintf(name, sizeof name, ".tmp-save-%ld", (long)getpid());
    char *tmp = vr_path_join(dir, name);
    int rc = rm_rf(tmp, err); /* ours from an earlier failed try of this process */
    if (rc == 0 && (vr_test_io("mkdir", tmp) || mkdir(tmp, 0755) != 0))
        rc = vr_err_sys(err, tmp, "cannot create");
    if (rc == 0 && (write_into(tmp, dir, c, err) || sync_tree(tmp, 0, err))) {
        rc = -1;
        (void)vr_rm_rf_at(AT_FDCWD, tmp);
    }
    /* nothing of dir has changed yet, however far the staging got */
    if (rc && err && !err->hint[0]) vr_err_hint(err, "%s is as it was before this save", dir);
    if (rc == 0) {
        /* the state files of dir, which the new set replaces or removes */
        int n = 0, cap = 8;
        char **drop = vr_xmalloc((size_t)cap * sizeof *drop);
        DIR *d = opendir(dir);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (!state_file(e->d_name)) continue;
            if (n == cap) drop = vr_xrealloc(drop, (size_t)(cap *= 2) * sizeof *drop);
            drop[n++] = vr_xstrdup(e->d_name);
        }
        if (d) closedir(d);
        rc = vr_fileset_commit(dir, name, (const char *const *)drop, n, err);
        for (int i = 0; i < n; i++) free(drop[i]);
        free(drop);
    }
    free(tmp);
    return rc;
}

/* ---- the atomic folder ---- */

/* A checkpoint folder written in steps: begin makes the temporary sibling of
 * dir (tx->tmp) to write into; commit fsyncs what is in it and renames it to
 * dir; abort removes it. Commit and abort free tx's contents. */
struct tx {
    char *dir, *tmp;
};

static int tx_begin(struct tx *tx, const char *dir, struct vr_err *err)
{
    memset(tx, 0, sizeof *tx);
    char *d = vr_path_join(NULL, dir);
    size_t n = strlen(d);
    while (n > 1 && d[n - 1] == '/') d[--n] = 0;
    const char *base = strrchr(d, '/');
    base = base ? base + 1 : d;
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
        vr_err_set(err, VR_ERR_USAGE, dir, 0, "not a folder name to write a checkpoint to");
        free(d);
        return -1;
    }
    char *parent = vr_path_dir(d);
    if (vr_mkdir_p(parent, err)) {
        free(parent);
        free(d);
        return -1;
    }
    char name[512];
    snprintf(name, sizeof name, ".tmp-%s-%ld", base, (long)getpid());
    tx->tmp = vr_path_join(parent, name);
    tx->dir = d;
    free(parent);
    /* ours from an earlier failed try of this process: stale */
    if (rm_rf(tx->tmp, err) ||
        ((vr_test_io("mkdir", tx->tmp) || mkdir(tx->tmp, 0755) != 0) && vr_err_sys(err, tx->tmp, "cannot create"))) {
        free(tx->tmp);
        free(tx->dir);
        memset(tx, 0, sizeof *tx);
        return -1;
    }
    return 0;
}

static void tx_abort(struct tx *tx)
{
    if (tx->tmp) (void)vr_rm_rf_at(AT_FDCWD, tx->tmp);
    free(tx->tmp);
    free(tx->dir);
    memset(tx, 0, sizeof *tx);
}

static int tx_commit(struct tx *tx, struct vr_err *err)
{
    if (sync_tree(tx->tmp, 0, err)) {
        tx_abort(tx);
        return -1;
    }
    char *parent = vr_path_dir(tx->dir);
    int rc = 0;
    if (vr_test_io("rename", tx->dir)) {
        rc = vr_err_sys(err, tx->dir, "rename failed");
    } else if (rename(tx->tmp, tx->dir) == 0) { /* new, or over an empty folder */
        sync_dir(parent);
    } else if (errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR || errno == EISDIR) {
        /* swap in one step: a crash leaves the old folder or the new one */
        if (renameat2(AT_FDCWD, tx->tmp, AT_FDCWD, tx->dir, RENAME_EXCHANGE) == 0) {
            sync_dir(parent);
            (void)vr_rm_rf_at(AT_FDCWD, tx->tmp); /* the old one; a leftover if this fails */
        } else if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) {
            /* no exchange here: old aside, new in, old out (a crash between
             * the renames leaves both under .tmp-* names) */
            size_t len = strlen(tx->tmp) + 8;
            char *aside = vr_xmalloc(len);
            const char *b = strrchr(tx->tmp, '/');
            b = b ? b + 1 : tx->tmp;
            snprintf(aside, len, "%.*s.tmp-old-%s", (int)(b - tx->tmp), tx->tmp, b + 5);
            if (rename(tx->dir, aside) != 0) {
                rc = vr_err_sys(err, tx->dir, "cannot move the old checkpoint aside");
            } else if (rename(tx->tmp, tx->dir) != 0) {
                rc = vr_err_sys(err, tx->dir, "rename failed");
                (void)rename(aside, tx->dir);
            } else {
                sync_dir(parent);
                (void)vr_rm_rf_at(AT_FDCWD, aside);
            }
            free(aside);
        } else {
            rc = vr_err_sys(err, tx->dir, "rename failed");
        }
    } else {
        rc = vr_err_sys(err, tx->dir, "rename failed");
    }
    free(parent);
    if (rc) {
        tx_abort(tx);
        return -1;
    }
    free(tx->tmp);
    free(tx->dir);
    memset(tx, 0, sizeof *tx);
    return 0;
}

/* Remove RUN's complete checkpoints but the newest keep and step protect
 * (-1: none), each renamed aside first so that it vanishes at once; and the
 * .tmp-* folders of processes that no longer run. */
static int prune(const char *run, int keep, int64_t protect, struct vr_err *err);

int vr_ckpt_save(const char *run, int64_t step, const struct vr_ckpt *c, int keep, char **path,
                 struct vr_err *err)
{
    if (path) *path = NULL;
    if (step < 0) return vr_err_set(err, VR_ERR_USAGE, run, 0, "checkpoint step %lld", (long long)step);
    if (!c->state)
        return vr_err_set(err, VR_ERR_USAGE, run, 0, "a checkpoint needs its trainer state");
    if (c->tab && c->master && check_dtype(c->dtype, run, err)) return -1;
    char name[64];
    snprintf(name, sizeof name, "checkpoint-%lld", (long long)step);
    char *dir = vr_path_join(run, name);
    struct tx tx;
    if (tx_begin(&tx, dir, err)) goto fail;
    if (vr_ckpt_write(tx.tmp, c, err)) {
        tx_abort(&tx);
        goto fail;
    }
    if (tx_commit(&tx, err)) goto fail;
    if (prune(run, keep, step, err)) goto fail;
    if (path) *path = dir;
    else free(dir);
    return 0;
fail:
    free(dir);
    return -1;
}

/* ---- the run folder ---- */

/* "checkpoint-N", N plain decimal (no sign, no leading zero) */
static int parse_step(const char *name, int64_t *step)
{
    if (strncmp(name, "checkpoint-", 11) != 0) return -1;
    const char *s = name + 11;
    if (!*s || (s[0] == '0' && s[1])) return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*s - '0');
    }
    *step = v;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int vr_ckpt_list(const char *run, int64_t **steps, struct vr_err *err)
{
    *steps = NULL;
    DIR *d = opendir(run);
    if (!d) return errno == ENOENT ? 0 : vr_err_sys(err, run, "cannot open");
    int n = 0, cap = 0;
    int64_t *s = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t st;
        if (parse_step(e->d_name, &st)) continue;
        char rel[512];
        snprintf(rel, sizeof rel, "%s/%s", e->d_name, STATE_FILE);
        char *p = vr_path_join(run, rel);
        struct stat sb;
        int complete = stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
        free(p);
        if (!complete) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            s = vr_xrealloc(s, (size_t)cap * sizeof *s);
        }
        s[n++] = st;
    }
    closedir(d);
    if (n) qsort(s, (size_t)n, sizeof *s, cmp_i64);
    *steps = s;
    return n;
}

int vr_ckpt_newest(const char *run, char **path, int64_t *step, struct vr_err *err)
{
    *path = NULL;
    int64_t *s;
    int n = vr_ckpt_list(run, &s, err);
    if (n <= 0) return n;
    char name[64];
    snprintf(name, sizeof name, "checkpoint-%lld", (long long)s[n - 1]);
    *path = vr_path_join(run, name);
    if (step) *step = s[n - 1];
    free(s);
    return 1;
}

/* The pid a .tmp-*-PID name ends with, or 0. */
static long leftover_pid(const char *name)
{
    if (strncmp(name, ".tmp-", 5) != 0) return 0;
    const char *dash = strrchr(name, '-');
    if (!dash || !dash[1] || dash[1] == '0') return 0;
    long v = 0;
    for (const char *s = dash + 1; *s; s++) {
        if (*s < '0' || *s > '9' || v > 1L << 40) return 0;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* Best effort: a leftover that stays only costs disk space. held: the
 * caller holds RUN's lock, so no other process writes there and every
 * leftover but ours goes, its pid alive or not (a dead writer's pid may be
 * another program's by now); else only those of processes that are gone. */
static void clean_leftovers(const char *run, int held)
{
    DIR *d = opendir(run);
    if (!d) return;
    int fd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = leftover_pid(e->d_name);
        if (pid <= 0 || pid == (long)getpid()) continue;
        if (held || pid > 0x7fffffffL || (kill((pid_t)pid, 0) != 0 && errno == ESRCH))
            (void)vr_rm_rf_at(fd, e->d_name);
    }
    closedir(d);
}

int vr_ckpt_recover(const char *run, struct vr_err *err)
{
    int rc = vr_fileset_recover(run, err);
    if (rc < 0) return -1;
    clean_leftovers(run, 1);
    vr_tmp_sweep_held(run);
    return rc;
}

static int prune(const char *run, int keep, int64_t protect, struct vr_err *err)
{
    int64_t *s;
    int n = vr_ckpt_list(run, &s, err);
    if (n < 0) return -1;
    int rc = 0;
    for (int i = 0; keep > 0 && i < n - keep && rc == 0; i++) {
        if (s[i] == protect) continue;
        char name[64], aside[96];
        snprintf(name, sizeof name, "checkpoint-%lld", (long long)s[i]);
        snprintf(aside, sizeof aside, ".tmp-del-%s-%ld", name, (long)getpid());
        char *p = vr_path_join(run, name), *q = vr_path_join(run, aside);
        /* out of the listing in one step, then removed at leisure */
        if (vr_test_io("rename", p) || rename(p, q) != 0) rc = vr_err_sys(err, p, "cannot remove old checkpoint");
        else {
            sync_dir(run);
            rc = rm_rf(q, err);
        }
        free(p);
        free(q);
    }
    free(s);
    if (rc == 0) clean_leftovers(run, 0);
    return rc;
}

/* ---- readers ---- */

static int same_shape(const struct vr_st_entry *e, int ndim, const int64_t *shape)
{
    if (e->ndim != ndim) return 0;
    for (int d = 0; d < ndim; d++)
        if (e->shape[d] != shape[d]) return 0;
    return 1;
}

static int load_one(const struct vr_safetensors *st, const char *name, enum vr_dtype dt, int ndim,
                    const int64_t *shape, void *dst, struct vr_err *err)
{
    const struct vr_st_entry *e = vr_safetensors_find(st, name);
    char want[64], got[64];
    struct vr_tensor tw, tg;
    vr_tensor_view(&tw, dt, ndim, shape, NULL);
    if (!e) {
        vr_err_set(err, VR_ERR_INPUT, st->path, 0, "tensor '%s' is missing (expected %s %s)", name,
                   vr_dtype_name(dt), vr_tensor_shape_str(&tw, want, sizeof want));
        return vr_err_hint(err, "the state was saved with other trainable parameters; without the "
                                "file AdamW starts afresh");
    }
    if (e->dtype != dt || !same_shape(e, ndim, shape)) {
        vr_tensor_view(&tg, e->dtype, e->ndim, e->shape, NULL);
        return vr_err_set(err, VR_ERR_INPUT, st->path, 0, "tensor '%s' is %s %s, expected %s %s", name,
                          vr_dtype_name(e->dtype), vr_tensor_shape_str(&tg, got, sizeof got),
                          vr_dtype_name(dt), vr_tensor_shape_str(&tw, want, sizeof want));
    }
    memcpy(dst, st->data + e->begin, (size_t)(e->end - e->begin));
    return 0;
}

int vr_ckpt_load_optim(const char *dir, const struct vr_ptab *t, float *master,
                       struct vr_optstate *s, int nextra, const char *const *names,
                       struct vr_tensor *extra, struct vr_err *err)
{
    check_tab(t);
    for (int i = 0; i < t->np; i++) /* the moments cover the trained tensors (none: extras only) */
        VR_ASSERT(!trained(t, i) || s->n == t->total);
    if (vr_fileset_settle(dir, err)) return -1;
    char *path = vr_path_join(dir, OPTIM_FILE);
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT) {
        free(path);
        return 0;
    }
    struct vr_safetensors st;
    int rc = vr_safetensors_open(&st, path, err);
    free(path);
    if (rc) return -1;
    static const char *const kind[3] = {"master", "exp_avg", "exp_avg_sq"};
    for (int i = 0; i < t->np && rc == 0; i++) {
        if (!trained(t, i)) continue;
        float *dst[3] = {master, s->m, s->v};
        for (int k = master ? 0 : 1; k < 3 && rc == 0; k++) {
            char name[160];
            snprintf(name, sizeof name, "%s.%s", kind[k], t->p[i].name);
            rc = load_one(&st, name, VR_DTYPE_F32, t->p[i].ndim, t->p[i].shape, dst[k] + t->off[i], err);
        }
    }
    for (int i = 0; i < nextra && rc == 0; i++)
        rc = load_one(&st, names[i], extra[i].dtype, extra[i].ndim, extra[i].shape, extra[i].data, err);
    vr_safetensors_close(&st);
    return rc ? -1 : 1;
}

int vr_ckpt_load_state(const char *dir, json_t **state, struct vr_err *err)
{
    *state = NULL;
    if (vr_fileset_settle(dir, err)) return -1;
    char *path = vr_path_join(dir, STATE_FILE);
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT) {
        free(path);
        return 0;
    }
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    int rc = 1;
    if (!j) rc = vr_err_set(err, VR_ERR_INPUT, path, je.line, "invalid JSON: %s", je.text);
    else if (!json_is_object(j)) {
        rc = vr_err_set(err, VR_ERR_INPUT, path, 0, "not a JSON object");
        json_decref(j);
    } else {
        *state = j;
    }
    free(path);
    return rc;
}

int vr_ckpt_run_lock(const char *run, int *made, struct vr_err *err)
{
    struct stat st;
    *made = stat(run, &st) != 0;
    if (*made && vr_mkdir_p(run, err)) return -1;
    char *lp = vr_path_join(run, RUN_LOCK);
    pid_t holder;
    int fd = vr_lock_take(lp, &holder, err);
    free(lp);
    if (fd < 0 && holder)
        vr_err_set(err, VR_ERR_INPUT, run, 0, "another vr-update (pid %ld) is writing this run folder",
                   (long)holder);
    if (fd < 0 && *made) vr_ckpt_run_drop_empty(run);
    return fd;
}

void vr_ckpt_run_drop_empty(const char *run)
{
    DIR *d = opendir(run);
    if (!d) return;
    int other = 0;
    for (struct dirent *e; (e = readdir(d));)
        other |= strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, RUN_LOCK);
    closedir(d);
    if (other) return;
    char *lp = vr_path_join(run, RUN_LOCK);
    unlink(lp);
    free(lp);
    rmdir(run);
}

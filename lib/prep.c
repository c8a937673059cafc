/* prep.c: vr-prep's stream of task lines: inputs through lib/dataset, the
 * image check, subsets and epochs (see prep.h). */
#include "prep.h"

#include "jsonl.h"

/* Where tasks go: straight to the output when the subset rule allows it
 * (all or first:N, one epoch), else into a pool for random, pyrandom and end
 * subsets, which need the whole list. */
struct sink {
    int stream;
    int64_t limit; /* streaming first:N: stop after N; -1 for no limit */
    FILE *fp;
    struct vr_imgcache *ic; /* check_images */
    struct vr_dataset_opts *ds;
    struct vr_tasks pool;
    int64_t written;
};

/* Check (with check_images) and write one task. 0 also for a task skipped
 * with skip_bad; -1 on failure. */
static int put_task(struct sink *k, json_t *t, struct vr_err *err)
{
    if (k->ic && vr_dataset_check_task(k->ic, t, err)) {
        if (!k->ds->skip_bad) return -1;
        k->ds->skipped++;
        if (k->ds->warn) k->ds->warn(k->ds->warn_ctx, err);
        return 0;
    }
    if (vr_jsonl_write(k->fp, t, err)) return -1;
    k->written++;
    return 0;
}

static int emit(void *ctx, json_t *t, struct vr_err *err)
{
    struct sink *k = ctx;
    if (!k->stream) {
        vr_tasks_push(&k->pool, t);
        return 0;
    }
    int rc = put_task(k, t, err);
    json_decref(t);
    if (rc) return -1;
    return k->limit >= 0 && k->written >= k->limit;
}

/* Epoch e of the pooled tasks: the subset drawn with stream e, each line
 * with "epoch" when there is more than one. */
static int write_epoch(struct sink *k, const struct vr_prep_opts *o, int e, struct vr_err *err)
{
    struct vr_tasks sel = {.cap = k->pool.n + 1};
    int rc = 0;
    sel.v = vr_xmalloc((size_t)sel.cap * sizeof *sel.v);
    for (int64_t i = 0; i < k->pool.n; i++) sel.v[sel.n++] = json_incref(k->pool.v[i]);
    sel.n = vr_take_apply(sel.v, sel.n, &o->take, o->ds.seed, (uint64_t)e);
    for (int64_t i = 0; i < sel.n && rc >= 0; i++) {
        if (o->epochs > 1) json_object_set_new(sel.v[i], "epoch", json_integer(e));
        rc = put_task(k, sel.v[i], err);
        if (o->epochs > 1) json_object_del(sel.v[i], "epoch");
    }
    vr_tasks_release(&sel);
    return rc;
}

int vr_prep_run(struct vr_prep_opts *o, char *const *inputs, int n, FILE *out, int64_t *written,
                struct vr_err *err)
{
    const struct vr_take *t = &o->take;
    struct sink k = {.fp = out, .ds = &o->ds, .limit = -1, .ic = o->check_images ? vr_imgcache_new() : NULL};
    k.stream = o->epochs == 1 && (t->how == VR_TAKE_ALL || (t->how == VR_TAKE_FIRST && !t->percent));
    if (k.stream && t->how == VR_TAKE_FIRST) k.limit = (int64_t)t->n;
    int rc = 0;
    for (int i = 0; i < n && rc == 0 && k.limit != 0; i++) {
        o->ds.images_dir = o->ndirs ? o->dirs[o->ndirs == 1 ? 0 : i] : NULL;
        rc = vr_dataset_read(inputs[i], &o->ds, emit, &k, err);
        if (o->progress) vr_progress_update(o->progress, i + 1);
    }
    if (o->progress) vr_progress_end(o->progress);
    for (int e = 0; e < o->epochs && rc >= 0 && !k.stream; e++) rc = write_epoch(&k, o, e, err);
    *written = k.written;
    vr_tasks_release(&k.pool);
    vr_imgcache_free(k.ic);
    return rc < 0 ? -1 : 0;
}

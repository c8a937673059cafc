/* encode.c: vr-encode's pipeline (encode.h). The reading thread parses and
 * checks each line and queues its images; -j workers find or make their
 * pixel cache entries; the reading thread writes lines, oldest first, as soon
 * as their images are done, running the vision tower (if any) on the way.
 * At most 8 lines per worker (and 8 more) are in flight. */
#include "encode.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "fs.h"
#include "jsonl.h"
#include "lora.h"
#include "pixcache.h"
#include "task.h"
#include "vcache.h"

/* A task line on its way through: its image jobs, then its output. */
struct item;
struct job {
    struct item *it;
    const char *path;
    struct vr_pixref ref;
    struct vr_err err;
    int rc;
};
struct item {
    json_t *obj;
    const char *file;
    long line;
    int bad;
    struct vr_err err;
    int njobs, left;   /* left: jobs not done yet, under mu */
    struct job *jobs;
};

struct vr_encode {
    struct vr_encode_opts o;
    struct vr_pixcache cache;
    int cache_open;
    int vision;             /* model and vcache are open */
    struct vr_model model;
    struct vr_vcache vcache;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    struct job **q;         /* FIFO of jobs not yet started */
    size_t qhead, qlen, qcap;
    int stop;
    pthread_t *threads;
    int nthreads;
    struct item **ring;     /* lines in flight, oldest first */
    size_t rhead, rlen, rcap;
    char **files;           /* input names: items point at them until written */
    int nfiles;
    struct vr_encode_stats st;
};

static void *worker(void *arg)
{
    struct vr_encode *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (e->qlen == 0 && !e->stop) pthread_cond_wait(&e->work, &e->mu);
        if (e->qlen == 0) {
            pthread_mutex_unlock(&e->mu);
            return NULL;
        }
        struct job *j = e->q[e->qhead];
        e->qhead = (e->qhead + 1) % e->qcap;
        e->qlen--;
        pthread_mutex_unlock(&e->mu);

        j->rc = vr_pixcache_get(&e->cache, j->path, &j->ref, &j->err);

        pthread_mutex_lock(&e->mu);
        if (--j->it->left == 0) pthread_cond_broadcast(&e->done);
        pthread_mutex_unlock(&e->mu);
    }
}

static void enqueue(struct vr_encode *e, struct job *j)
{
    pthread_mutex_lock(&e->mu);
    if (e->qlen == e->qcap) {
        size_t ncap = e->qcap ? e->qcap * 2 : 64;
        struct job **nq = vr_xmalloc(ncap * sizeof *nq);
        for (size_t i = 0; i < e->qlen; i++) nq[i] = e->q[(e->qhead + i) % e->qcap];
        free(e->q);
        e->q = nq, e->qhead = 0, e->qcap = ncap;
    }
    e->q[(e->qhead + e->qlen++) % e->qcap] = j;
    pthread_cond_signal(&e->work);
    pthread_mutex_unlock(&e->mu);
}

/* Let the workers finish the image they hold (so that no cache write is cut
 * in half), drop the rest when asked, and wait for them. */
static void stop_workers(struct vr_encode *e, int drop)
{
    pthread_mutex_lock(&e->mu);
    if (drop) e->qlen = 0;
    e->stop = 1;
    pthread_cond_broadcast(&e->work);
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < e->nthreads; i++) pthread_join(e->threads[i], NULL);
    e->nthreads = 0;
}

static void note(struct vr_encode *e, enum vr_encode_note what, const char *msg)
{
    if (e->o.note) e->o.note(e->o.note_ctx, what, msg);
}

/* Load the --vision checkpoint and check that the preprocessing cuts the
 * patches its tower takes. */
static int open_vision(struct vr_encode *e, struct vr_err *err)
{
    const struct vr_preproc *pp = &e->o.pp;
    if (vr_lora_load_merged(&e->model, e->o.vision_model, err)) return -1;
    const struct vr_vision_config *v = &e->model.cfg.vision;
    e->vision = 1;
    if (pp->patch_size != v->patch || pp->temporal_patch_size != v->temporal_patch || pp->merge_size != v->merge)
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0,
                          "--vision: the preprocessing's patch %d, temporal patch %d and merge %d are not the "
                          "vision tower's %d, %d and %d",
                          pp->patch_size, pp->temporal_patch_size, pp->merge_size, v->patch, v->temporal_patch,
                          v->merge);
    return 0;
}

int vr_encode_open(struct vr_encode **out, const struct vr_encode_opts *o, struct vr_err *err)
{
    VR_ASSERT(o->jobs >= 1 && o->out && o->out_name);
    struct vr_encode *e = vr_xcalloc(1, sizeof *e);
    e->o = *o;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->work, NULL);
    pthread_cond_init(&e->done, NULL);
    *out = NULL;
    if (o->vision_model && open_vision(e, err)) goto fail;
    if (vr_pixcache_init(&e->cache, o->cache_dir, &o->pp, o->max_decode_pixels, err)) goto fail;
    e->cache_open = 1;
    if (e->vision && vr_vcache_init(&e->vcache, o->cache_dir, &e->model, err)) goto fail;
    e->rcap = 8 * (size_t)o->jobs + 8;
    e->ring = vr_xcalloc(e->rcap, sizeof *e->ring);
    e->threads = vr_xcalloc((size_t)o->jobs, sizeof *e->threads);
    for (int i = 0; i < o->jobs; i++) {
        if (pthread_create(&e->threads[i], NULL, worker, e) != 0) {
            vr_err_set(err, VR_ERR_SYS, NULL, 0, "cannot start thread %d of %d", i + 1, o->jobs);
            goto fail;
        }
        e->nthreads++;
    }
    *out = e;
    return 0;
fail:
    vr_encode_free(e);
    return -1;
}

static void item_free(struct item *it)
{
    for (int i = 0; i < it->njobs; i++) vr_pixref_release(&it->jobs[i].ref);
    free(it->jobs);
    json_decref(it->obj);
    free(it);
}

/* A bad line (why): fail with it, or with skip_bad, note it and go on. */
static int bad(struct vr_encode *e, const struct vr_err *why, struct vr_err *err)
{
    if (!e->o.skip_bad) {
        if (err != why) *err = *why;
        return -1;
    }
    note(e, VR_ENCODE_SKIPPED, why->msg);
    e->st.skipped++;
    return 0;
}

/* Check what the line says about its images against what they are. */
static int check_sizes(const struct item *it, struct vr_err *err)
{
    json_t *sz = json_object_get(it->obj, "image_sizes");
    for (int i = 0; sz && i < it->njobs; i++) {
        json_t *p = json_array_get(sz, (size_t)i);
        int w = (int)json_integer_value(json_array_get(p, 0));
        int h = (int)json_integer_value(json_array_get(p, 1));
        const struct vr_pixref *r = &it->jobs[i].ref;
        if (w != r->image_w || h != r->image_h)
            return vr_err_set(err, VR_ERR_INPUT, it->file, it->line,
                              "%s: 'image_sizes' says %dx%d, the image is %dx%d", it->jobs[i].path,
                              w, h, r->image_w, r->image_h);
    }
    return 0;
}

/* The line's "vision" entries, one per image, made on this thread. */
static int vision_refs(struct vr_encode *e, const struct item *it, json_t **out, struct vr_err *err)
{
    json_t *vis = json_array();
    for (int i = 0; i < it->njobs; i++) {
        struct vr_visref v;
        if (vr_vcache_get(&e->vcache, &it->jobs[i].ref, &v, err)) {
            json_decref(vis);
            return vr_err_locate(err, it->file, it->line);
        }
        if (v.rebuilt[0]) note(e, VR_ENCODE_REBUILT, v.rebuilt);
        json_array_append_new(vis, vr_visref_json(&e->vcache, &v));
        vr_visref_release(&v);
    }
    *out = vis;
    return 0;
}

/* "pixels" and "vision" (vis, taken) into the line: an object for one image,
 * lists for several, nothing for none. */
static void attach(struct item *it, json_t *vis)
{
    if (it->njobs == 1) {
        json_object_set_new(it->obj, "pixels", vr_pixref_json(&it->jobs[0].ref));
        if (vis) json_object_set(it->obj, "vision", json_array_get(vis, 0));
    } else if (it->njobs > 1) {
        json_t *a = json_array();
        for (int i = 0; i < it->njobs; i++) json_array_append_new(a, vr_pixref_json(&it->jobs[i].ref));
        json_object_set_new(it->obj, "pixels", a);
        if (vis) json_object_set(it->obj, "vision", vis);
    }
    json_decref(vis);
}

/* A line whose images are done: write it, or deal with it as a bad line. */
static int emit(struct vr_encode *e, struct item *it, struct vr_err *err)
{
    if (it->bad) return bad(e, &it->err, err);
    for (int i = 0; i < it->njobs; i++)
        if (it->jobs[i].rc) {
            *err = it->jobs[i].err;
            vr_err_locate(err, it->file, it->line);
            return bad(e, err, err);
        }
    json_t *vis = NULL;
    if (check_sizes(it, err) || (e->vision && it->njobs > 0 && vision_refs(e, it, &vis, err)))
        return bad(e, err, err);
    attach(it, vis);
    for (int i = 0; i < it->njobs; i++)
        if (it->jobs[i].ref.rebuilt[0]) note(e, VR_ENCODE_REBUILT, it->jobs[i].ref.rebuilt);
    /* flushed line by line: a long-lived pipeline (vr-rollout --follow)
     * should not wait for a buffer to fill */
    if (vr_jsonl_write(e->o.out, it->obj, err) || fflush(e->o.out) != 0) {
        e->st.broken_pipe = errno == EPIPE;
        return vr_err_sys(err, e->o.out_name, "write failed");
    }
    e->st.written++;
    e->st.images += it->njobs;
    if (e->o.progress) vr_progress_update(e->o.progress, e->st.images);
    return 0;
}

/* Write the oldest line once its images are done (waiting for them, or not):
 * 1 when it went (written or skipped), 0 when it is not done, -1 on failure. */
static int emit_head(struct vr_encode *e, int wait, struct vr_err *err)
{
    struct item *it = e->ring[e->rhead];
    pthread_mutex_lock(&e->mu);
    while (wait && it->left > 0) pthread_cond_wait(&e->done, &e->mu);
    int ready = it->left == 0;
    pthread_mutex_unlock(&e->mu);
    if (!ready) return 0;
    e->rhead = (e->rhead + 1) % e->rcap;
    e->rlen--;
    int rc = emit(e, it, err);
    item_free(it);
    return rc ? -1 : 1;
}

/* Take it (freed on failure) into the ring and its images into the queue,
 * then write the lines that are done. */
static int push(struct vr_encode *e, struct item *it, struct vr_err *err)
{
    while (e->rlen == e->rcap)
        if (emit_head(e, 1, err) < 0) {
            item_free(it);
            return -1;
        }
    e->ring[(e->rhead + e->rlen++) % e->rcap] = it;
    for (int i = 0; i < it->njobs; i++) enqueue(e, &it->jobs[i]);
    int rc = 0;
    while (e->rlen && (rc = emit_head(e, 0, err)) > 0) {}
    return rc < 0 ? -1 : 0;
}

/* A line read (obj, or the error of a line that is not JSON): checked, with
 * one job per image unless it is bad. */
static struct item *item_new(struct vr_encode *e, json_t *obj, const char *file, long line,
                             const struct vr_err *read_err)
{
    struct item *it = vr_xcalloc(1, sizeof *it);
    it->obj = obj;
    it->file = file;
    it->line = line;
    if (read_err) {
        it->bad = 1;
        it->err = *read_err;
        return it;
    }
    if (vr_task_validate_unlabelled(obj, file, line, &it->err)) {
        it->bad = 1;
        return it;
    }
    json_t *im = json_object_get(obj, "images");
    for (size_t i = 0; e->o.confine && i < json_array_size(im); i++)
        if (vr_path_confined(e->o.confine, json_string_value(json_array_get(im, i)), &it->err)) {
            vr_err_locate(&it->err, file, line);
            it->bad = 1;
            return it;
        }
    it->njobs = it->left = (int)json_array_size(im);
    it->jobs = vr_xcalloc((size_t)it->njobs + 1, sizeof *it->jobs);
    for (int i = 0; i < it->njobs; i++) {
        it->jobs[i].it = it;
        it->jobs[i].path = json_string_value(json_array_get(im, (size_t)i));
    }
    return it;
}

static int read_input(struct vr_encode *e, const char *path, struct vr_err *err)
{
    struct vr_jsonl r;
    if (vr_jsonl_open(&r, path, err)) return -1;
    e->files = vr_xrealloc(e->files, ((size_t)e->nfiles + 1) * sizeof *e->files);
    const char *file = e->files[e->nfiles++] = vr_xstrdup(r.path);
    int rc = 0;
    for (;;) {
        json_t *obj = NULL;
        struct vr_err lerr;
        int n = vr_jsonl_next(&r, &obj, &lerr);
        if (n == 0) break;
        if (push(e, item_new(e, obj, file, r.line, n < 0 ? &lerr : NULL), err)) {
            rc = -1;
            break;
        }
    }
    vr_jsonl_close(&r);
    return rc;
}

int vr_encode_run(struct vr_encode *e, char *const *files, int nfiles, struct vr_err *err)
{
    int rc = nfiles == 0 ? read_input(e, "-", err) : 0;
    for (int i = 0; rc == 0 && i < nfiles; i++) rc = read_input(e, files[i], err);
    while (rc == 0 && e->rlen) rc = emit_head(e, 1, err) < 0 ? -1 : 0;
    stop_workers(e, rc != 0);
    return rc;
}

const struct vr_encode_stats *vr_encode_stats(struct vr_encode *e)
{
    e->st.hits = e->cache.hits;
    e->st.misses = e->cache.misses;
    if (e->vision) {
        e->st.vision_hits = e->vcache.hits;
        e->st.vision_misses = e->vcache.misses;
        memcpy(e->st.vision_model, e->vcache.model, sizeof e->st.vision_model);
    }
    return &e->st;
}

void vr_encode_free(struct vr_encode *e)
{
    if (!e) return;
    stop_workers(e, 1);
    for (; e->rlen; e->rlen--, e->rhead = (e->rhead + 1) % e->rcap) item_free(e->ring[e->rhead]);
    if (e->cache_open) vr_pixcache_release(&e->cache);
    if (e->vision) {
        vr_vcache_release(&e->vcache); /* zeroed when it was never opened */
        vr_model_release(&e->model);
    }
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->work);
    pthread_cond_destroy(&e->done);
    free(e->threads);
    free(e->q);
    free(e->ring);
    for (int i = 0; i < e->nfiles; i++) free(e->files[i]);
    free(e->files);
    free(e);
}

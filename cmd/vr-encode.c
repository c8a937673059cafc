/* vr-encode: add Qwen2-VL pixels to task lines (DESIGN.md §3.2). Each image
 * is decoded, preprocessed exactly as transformers' slow image processor does
 * and stored in a content-addressed safetensors cache (lib/pixcache.h); the
 * line gains "pixels". Images are processed by -j threads; lines come out in
 * input order. With --vision the model's vision tower also runs on each
 * image (one at a time, on this thread, as lines are written; a cache hit
 * runs nothing) and the line gains "vision" (lib/vcache.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fs.h"
#include "jsonl.h"
#include "pixcache.h"
#include "progress.h"
#include "task.h"
#include "vcache.h"

enum { O_MIN = 256, O_MAX, O_MINSIDE, O_PILLOW, O_MAXDEC, O_SKIP, O_VISION, O_CONFINE };

static const struct vr_opt opts[] = {
    {"cache", 'c', "DIR", "folder of the pixel cache files (default: cache)"},
    {"model", 'm', "DIR", "preprocessing parameters from DIR/preprocessor_config.json"},
    {"min-pixels", O_MIN, "N", "least resized area in pixels (default 3136, VLM-R1's)"},
    {"max-pixels", O_MAX, "N", "largest resized area in pixels (default 12845056, VLM-R1's)"},
    {"min-side", O_MINSIDE, "N", "first enlarge a short side under N px, as VLM-R1's trainer (default 0: off)"},
    {"pillow", O_PILLOW, "N", "resample in the pass order of Pillow N: 12 or 13 (default 13)"},
    {"jobs", 'j', "N", "images processed in parallel (default 2)"},
    {"max-decode-pixels", O_MAXDEC, "N", "refuse larger images before decoding (default 178956970)"},
    {"skip-bad", O_SKIP, NULL, "skip bad lines and images with a warning instead of failing"},
    {"vision", O_VISION, NULL, "also cache the vision tower's embeddings of the --model checkpoint"},
    {"confine", O_CONFINE, "DIR", "read only images inside DIR (symlinks resolved); others are bad lines"},
    {0},
};

static const struct vr_cli cli = {
    "vr-encode",
    "[OPTION]... [FILE]...",
    "Add preprocessed image pixels (Qwen2-VL) to task lines, caching them as safetensors files.\n"
    "With no FILE, or when FILE is -, read standard input.",
    opts,
};

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
    int njobs, left;
    struct job *jobs;
};

static struct {
    struct vr_pixcache cache;
    int vision;
    struct vr_model model;
    struct vr_vcache vcache;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    struct job **q; /* FIFO of jobs not yet started */
    size_t qhead, qlen, qcap;
    int stop;
    pthread_t *threads;
    int nthreads;
    int skip_bad;
    const char *confine; /* --confine DIR, or NULL */
    char **files; /* input names */
    int nfiles;
    int64_t written, skipped, images;
    struct vr_progress prog;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
       .done = PTHREAD_COND_INITIALIZER};

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&g.mu);
        while (g.qlen == 0 && !g.stop) pthread_cond_wait(&g.work, &g.mu);
        if (g.qlen == 0) {
            pthread_mutex_unlock(&g.mu);
            return NULL;
        }
        struct job *j = g.q[g.qhead];
        g.qhead = (g.qhead + 1) % g.qcap;
        g.qlen--;
        pthread_mutex_unlock(&g.mu);

        j->rc = vr_pixcache_get(&g.cache, j->path, &j->ref, &j->err);

        pthread_mutex_lock(&g.mu);
        if (--j->it->left == 0) pthread_cond_broadcast(&g.done);
        pthread_mutex_unlock(&g.mu);
    }
}

static void enqueue(struct job *j)
{
    pthread_mutex_lock(&g.mu);
    if (g.qlen == g.qcap) {
        size_t ncap = g.qcap ? g.qcap * 2 : 64;
        struct job **nq = vr_xmalloc(ncap * sizeof *nq);
        for (size_t i = 0; i < g.qlen; i++) nq[i] = g.q[(g.qhead + i) % g.qcap];
        free(g.q);
        g.q = nq, g.qhead = 0, g.qcap = ncap;
    }
    g.q[(g.qhead + g.qlen++) % g.qcap] = j;
    pthread_cond_signal(&g.work);
    pthread_mutex_unlock(&g.mu);
}

/* Let the workers finish the image they hold (so that no cache write is cut
 * in half), drop the rest, and wait for them. */
static void stop_workers(int drop)
{
    pthread_mutex_lock(&g.mu);
    if (drop) g.qlen = 0;
    g.stop = 1;
    pthread_cond_broadcast(&g.work);
    pthread_mutex_unlock(&g.mu);
    for (int i = 0; i < g.nthreads; i++) pthread_join(g.threads[i], NULL);
    g.nthreads = 0;
}

__attribute__((noreturn)) static void die(const struct vr_err *err)
{
    stop_workers(1);
    fflush(stdout);
    vr_die(err);
}

/* The reader went away: end quietly, as a pipe stage killed by SIGPIPE does,
 * but only after the workers have finished the cache files they are writing
 * (SIGPIPE is ignored until then, so a write fails with EPIPE instead). */
__attribute__((noreturn)) static void pipe_closed(void)
{
    stop_workers(1);
    signal(SIGPIPE, SIG_DFL);
    raise(SIGPIPE);
    _exit(141);
}

static void item_free(struct item *it)
{
    for (int i = 0; i < it->njobs; i++) vr_pixref_release(&it->jobs[i].ref);
    free(it->jobs);
    json_decref(it->obj);
    free(it);
}

/* A bad line: fail, or with --skip-bad, say so and drop it. */
static void bad(struct vr_err *err)
{
    if (!g.skip_bad) die(err);
    vr_warn("%s (skipped)", err->msg);
    g.skipped++;
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

static void emit(struct item *it)
{
    struct vr_err err;
    if (it->bad) {
        bad(&it->err);
        return;
    }
    for (int i = 0; i < it->njobs; i++) {
        struct job *j = &it->jobs[i];
        if (j->rc) {
            err = j->err;
            vr_err_locate(&err, it->file, it->line);
            bad(&err);
            return;
        }
    }
    if (check_sizes(it, &err)) {
        bad(&err);
        return;
    }
    json_t *vis = NULL;
    if (g.vision && it->njobs > 0) {
        vis = json_array();
        for (int i = 0; i < it->njobs; i++) {
            struct vr_visref v;
            if (vr_vcache_get(&g.vcache, &it->jobs[i].ref, &v, &err)) {
                json_decref(vis);
                vr_err_locate(&err, it->file, it->line);
                bad(&err);
                return;
            }
            if (v.rebuilt[0]) vr_warn("%s (rebuilt the cache entry)", v.rebuilt);
            json_array_append_new(vis, vr_visref_json(&g.vcache, &v));
            vr_visref_release(&v);
        }
    }
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
    for (int i = 0; i < it->njobs; i++)
        if (it->jobs[i].ref.rebuilt[0])
            vr_warn("%s (rebuilt the cache entry)", it->jobs[i].ref.rebuilt);
    /* flushed line by line: a long-lived pipeline (vr-rollout --follow)
     * should not wait for a buffer to fill */
    if (vr_jsonl_write(stdout, it->obj, &err) || fflush(stdout) != 0) {
        if (errno == EPIPE) pipe_closed();
        vr_err_sys(&err, "<stdout>", "write failed");
        die(&err);
    }
    g.written++;
    g.images += it->njobs;
    vr_progress_update(&g.prog, g.images);
}

/* Lines in flight, oldest first. */
static struct {
    struct item **v;
    size_t head, len, cap;
} ring;

/* Write the oldest line once its images are done (waiting for them, or not);
 * returns whether it was written. */
static int emit_head(int wait)
{
    struct item *it = ring.v[ring.head];
    pthread_mutex_lock(&g.mu);
    while (wait && it->left > 0) pthread_cond_wait(&g.done, &g.mu);
    int ready = it->left == 0;
    pthread_mutex_unlock(&g.mu);
    if (!ready) return 0;
    ring.head = (ring.head + 1) % ring.cap;
    ring.len--;
    emit(it);
    item_free(it);
    return 1;
}

static void push(struct item *it)
{
    while (ring.len == ring.cap) emit_head(1);
    ring.v[(ring.head + ring.len++) % ring.cap] = it;
    for (int i = 0; i < it->njobs; i++) enqueue(&it->jobs[i]);
    while (ring.len && emit_head(0)) {}
}

static void read_input(const char *path)
{
    struct vr_jsonl r;
    struct vr_err err;
    if (vr_jsonl_open(&r, path, &err)) die(&err);
    /* items point at the name until they are written: keep it to the end */
    g.files = vr_xrealloc(g.files, ((size_t)g.nfiles + 1) * sizeof *g.files);
    const char *file = g.files[g.nfiles++] = vr_xstrdup(r.path);
    for (;;) {
        json_t *obj = NULL;
        int rc = vr_jsonl_next(&r, &obj, &err);
        if (rc == 0) break;
        struct item *it = vr_xcalloc(1, sizeof *it);
        it->obj = obj;
        it->file = file;
        it->line = r.line;
        if (rc < 0 || vr_task_validate_unlabelled(obj, file, r.line, &err)) {
            it->bad = 1;
            it->err = err;
        } else {
            json_t *im = json_object_get(obj, "images");
            for (size_t i = 0; g.confine && i < json_array_size(im) && !it->bad; i++)
                if (vr_path_confined(g.confine, json_string_value(json_array_get(im, i)), &it->err)) {
                    vr_err_locate(&it->err, file, r.line);
                    it->bad = 1;
                }
            if (it->bad) {
                push(it);
                continue;
            }
            it->njobs = it->left = (int)json_array_size(im);
            it->jobs = vr_xcalloc((size_t)it->njobs + 1, sizeof *it->jobs);
            for (int i = 0; i < it->njobs; i++) {
                it->jobs[i].it = it;
                it->jobs[i].path = json_string_value(json_array_get(im, (size_t)i));
            }
        }
        push(it);
    }
    vr_jsonl_close(&r);
}

int main(int argc, char **argv)
{
    const char *cache = "cache", *model = NULL;
    int64_t min_pixels = -1, max_pixels = -1, max_decode = VR_IMAGE_MAX_PIXELS_DEFAULT;
    int min_side = -1, pillow = -1, jobs = 2;
    int c, ind;
    const char *arg;
    struct vr_err err;
    vr_cli_init(&cli, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    while ((c = vr_cli_next(&ind, &arg)) != -1) {
        switch (c) {
        case 'c': cache = arg; break;
        case 'm': model = arg; break;
        case O_MIN: min_pixels = vr_cli_int("min-pixels", arg, 1, 1LL << 30); break;
        case O_MAX: max_pixels = vr_cli_int("max-pixels", arg, 1, 1LL << 30); break;
        case O_MINSIDE: min_side = (int)vr_cli_int("min-side", arg, 0, 4096); break;
        case O_PILLOW: pillow = (int)vr_cli_int("pillow", arg, 1, 99); break;
        case 'j': jobs = (int)vr_cli_int("jobs", arg, 1, 256); break;
        case O_MAXDEC: max_decode = vr_cli_int("max-decode-pixels", arg, 1, INT64_MAX); break;
        case O_SKIP: g.skip_bad = 1; break;
        case O_VISION: g.vision = 1; break;
        case O_CONFINE: g.confine = arg; break;
        }
    }
    struct vr_preproc pp;
    vr_preproc_defaults(&pp);
    if (model && vr_preproc_load(&pp, model, &err)) vr_die(&err);
    if (min_pixels > 0) pp.min_pixels = min_pixels;
    if (max_pixels > 0) pp.max_pixels = max_pixels;
    if (min_side >= 0) pp.min_side = min_side;
    if (pillow > 0) pp.pillow = pillow;
    if (vr_preproc_check(&pp, &err)) vr_die_usage("%s", err.msg);
    if (g.vision) {
        if (!model) vr_die_usage("--vision needs --model DIR");
        if (vr_model_load(&g.model, model, &err)) vr_die(&err);
        const struct vr_vision_config *v = &g.model.cfg.vision;
        if (pp.patch_size != v->patch || pp.temporal_patch_size != v->temporal_patch ||
            pp.merge_size != v->merge)
            vr_die_usage("--vision: the preprocessing's patch %d, temporal patch %d and merge %d "
                         "are not the vision tower's %d, %d and %d",
                         pp.patch_size, pp.temporal_patch_size, pp.merge_size, v->patch,
                         v->temporal_patch, v->merge);
    }
    if (vr_pixcache_init(&g.cache, cache, &pp, max_decode, &err)) vr_die(&err);
    if (g.vision && vr_vcache_init(&g.vcache, cache, &g.model, &err)) vr_die(&err);

    vr_progress_init(&g.prog, "vr-encode", "images", 0);
    ring.cap = 8 * (size_t)jobs + 8;
    ring.v = vr_xcalloc(ring.cap, sizeof *ring.v);
    g.threads = vr_xcalloc((size_t)jobs, sizeof *g.threads);
    for (int i = 0; i < jobs; i++) {
        if (pthread_create(&g.threads[i], NULL, worker, NULL) != 0)
            vr_die_msg("cannot start thread %d of %d", i + 1, jobs);
        g.nthreads++;
    }
    if (ind >= argc) read_input("-");
    for (int i = ind; i < argc; i++) read_input(argv[i]);
    while (ring.len) emit_head(1);
    stop_workers(0);
    vr_progress_end(&g.prog);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (errno == EPIPE) pipe_closed();
        vr_die_msg("<stdout>: write failed");
    }
    if (g.skipped)
        vr_warn("%lld tasks skipped, %lld written", (long long)g.skipped, (long long)g.written);
    else if (isatty(2))
        vr_warn("%lld tasks, %lld images (%lld cached, %lld built)", (long long)g.written,
                (long long)g.images, (long long)g.cache.hits, (long long)g.cache.misses);
    if (g.vision && isatty(2))
        vr_warn("vision %s: %lld embeddings cached, %lld computed", g.vcache.model,
                (long long)g.vcache.hits, (long long)g.vcache.misses);
    vr_pixcache_release(&g.cache);
    if (g.vision) {
        vr_vcache_release(&g.vcache);
        vr_model_free(&g.model);
    }
    free(g.threads);
    free(g.q);
    free(ring.v);
    for (int i = 0; i < g.nfiles; i++) free(g.files[i]);
    free(g.files);
    return 0;
}

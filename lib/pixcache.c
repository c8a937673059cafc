/* pixcache.c: vr-encode's content-addressed cache of preprocessed pixels
 * (see pixcache.h). Used by vr-encode, and by any later stage that finds a
 * task line without pixels. */
#include "pixcache.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fs.h"
#include "hash.h"
#include "jsonl.h"
#include "safetensors.h"

/* ---- the memo: key -> result, and which keys are being computed ---- */

enum { SLOT_EMPTY, SLOT_BUSY, SLOT_DONE, SLOT_FAILED };

struct slot {
    uint64_t hi, lo;
    int state;
    struct vr_pixref ref; /* when DONE */
};

struct vr_pixcache_memo {
    struct slot *s;
    size_t cap, used; /* cap a power of two */
};

static struct slot *memo_find(struct vr_pixcache_memo *m, uint64_t hi, uint64_t lo, int add)
{
    if (add && (m->used + 1) * 2 > m->cap) {
        struct vr_pixcache_memo n = {vr_xcalloc(m->cap ? m->cap * 2 : 256, sizeof(struct slot)),
                                     m->cap ? m->cap * 2 : 256, 0};
        for (size_t i = 0; i < m->cap; i++)
            if (m->s[i].state != SLOT_EMPTY) *memo_find(&n, m->s[i].hi, m->s[i].lo, 1) = m->s[i];
        free(m->s);
        *m = n;
    }
    if (!m->cap) return NULL;
    for (size_t i = (size_t)lo & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        struct slot *e = &m->s[i];
        if (e->state == SLOT_EMPTY) {
            if (!add) return NULL;
            e->hi = hi, e->lo = lo;
            m->used++;
            return e;
        }
        if (e->hi == hi && e->lo == lo) return e;
    }
}

/* ---- refs ---- */

void vr_pixref_release(struct vr_pixref *r)
{
    free(r->file);
    r->file = NULL;
}

static void ref_copy(struct vr_pixref *dst, const struct vr_pixref *src)
{
    *dst = *src;
    dst->file = src->file ? vr_xstrdup(src->file) : NULL;
}

json_t *vr_pixref_json(const struct vr_pixref *r)
{
    return json_pack("{s:s,s:[I,I,I],s:[i,i],s:[i,i]}", "file", r->file, "grid_thw",
                     (json_int_t)r->grid[0], (json_int_t)r->grid[1], (json_int_t)r->grid[2],
                     "input_size", r->input_w, r->input_h, "image_size", r->image_w, r->image_h);
}

/* ---- the cache ---- */

int vr_pixcache_init(struct vr_pixcache *c, const char *dir, const struct vr_preproc *pp,
                     int64_t max_decode_pixels, struct vr_err *err)
{
    memset(c, 0, sizeof *c);
    if (vr_preproc_check(pp, err)) return -1;
    if (vr_mkdir_p(dir, err)) return -1;
    vr_tmp_sweep(dir, 3600); /* what killed writers left behind, an hour on */
    c->dir = vr_xstrdup(dir);
    c->pp = *pp;
    c->max_decode_pixels = max_decode_pixels;
    c->memo = vr_xcalloc(1, sizeof *c->memo);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return 0;
}

void vr_pixcache_release(struct vr_pixcache *c)
{
    if (!c->memo) return;
    for (size_t i = 0; i < c->memo->cap; i++)
        if (c->memo->s[i].state == SLOT_DONE) vr_pixref_release(&c->memo->s[i].ref);
    free(c->memo->s);
    free(c->memo);
    free(c->dir);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    memset(c, 0, sizeof *c);
}

static struct vr_hash128 key_of(const struct vr_pixcache *c, const void *bytes, size_t len)
{
    struct vr_hasher h;
    vr_hasher_init(&h);
    vr_hasher_str(&h, VR_PIXCACHE_FORMAT);
    vr_preproc_hash(&c->pp, &h);
    vr_hasher_u64(&h, len);
    vr_hasher_update(&h, bytes, len);
    return vr_hasher_final(&h);
}

/* The grid and sizes an image of w x h gets under pp. */
static int expect(const struct vr_preproc *pp, int w, int h, struct vr_pixref *r,
                  struct vr_err *err)
{
    int rw, rh;
    if (vr_preprocess_size(pp, w, h, &rw, &rh, err)) return -1;
    r->image_w = w, r->image_h = h;
    r->input_w = rw, r->input_h = rh;
    r->grid[0] = 1;
    r->grid[1] = rh / pp->patch_size;
    r->grid[2] = rw / pp->patch_size;
    return 0;
}

static int same_params(const struct vr_preproc *a, const struct vr_preproc *b)
{
    struct vr_hasher h;
    vr_hasher_init(&h);
    vr_preproc_hash(a, &h);
    struct vr_hash128 x = vr_hasher_final(&h);
    vr_hasher_init(&h);
    vr_preproc_hash(b, &h);
    struct vr_hash128 y = vr_hasher_final(&h);
    return x.hi == y.hi && x.lo == y.lo;
}

/* An open, validated entry. */
struct entry {
    struct vr_safetensors st;
    struct vr_preproc pp;     /* the entry's parameters */
    const uint8_t *rgb;       /* the image, input_h x input_w x 3, in the mapping */
    struct vr_pixref ref;     /* all but file */
};

/* Open file and check everything about it before any caller uses a byte:
 * tensors, format, key (unless NULL), parameters (those of the metadata,
 * which must equal want unless it is NULL), shapes and grid against the
 * image size they give, and the image's checksum (which a torn write fails:
 * see pixcache.h). On failure nothing stays open and err has the reason. */
static int entry_open(struct entry *e, const char *file, const struct vr_preproc *want,
                      const char *key, struct vr_err *err)
{
    memset(e, 0, sizeof *e);
    if (vr_safetensors_open(&e->st, file, err)) return -1;
    const struct vr_st_entry *im = vr_safetensors_find(&e->st, "image");
    const struct vr_st_entry *gt = vr_safetensors_find(&e->st, "grid_thw");
    json_t *m = e->st.metadata;
    const char *fmt = json_string_value(json_object_get(m, "format"));
    const char *size = json_string_value(json_object_get(m, "image_size"));
    const char *k = json_string_value(json_object_get(m, "key"));
    const char *ptxt = json_string_value(json_object_get(m, "preprocess"));
    const char *sum = json_string_value(json_object_get(m, "image_xxh3"));
    int w = 0, h = 0;
    char tail;
    json_t *pj = NULL;
    json_error_t je;
    struct vr_tensor g = {0};
    struct vr_pixref *r = &e->ref;
    int rc = -1;
    vr_preproc_defaults(&e->pp);
    if (e->st.n != 2 || !im || !gt) {
        vr_err_set(err, VR_ERR_INPUT, file, 0, "not a pixel cache entry (tensors)");
    } else if (!fmt || strcmp(fmt, VR_PIXCACHE_FORMAT) != 0) {
        vr_err_set(err, VR_ERR_INPUT, file, 0, "format is '%s', not '%s'", fmt ? fmt : "(none)",
                   VR_PIXCACHE_FORMAT);
    } else if (key && (!k || strcmp(k, key) != 0)) {
        vr_err_set(err, VR_ERR_INPUT, file, 0, "holds the entry of key %s", k ? k : "(none)");
    } else if (!ptxt || !(pj = json_loads(ptxt, JSON_REJECT_DUPLICATES, &je)) ||
               vr_preproc_parse(&e->pp, pj, file, err)) {
        vr_err_set(err, VR_ERR_INPUT, file, 0, "bad preprocess parameters in the metadata");
    } else if (want && !same_params(want, &e->pp)) {
        vr_err_set(err, VR_ERR_INPUT, file, 0, "made with other preprocessing parameters");
    } else if (!size || sscanf(size, "%dx%d%c", &w, &h, &tail) != 2 || w < 1 || h < 1) {
        vr_err_set(err, VR_ERR_INPUT, file, 0, "bad image_size in the metadata");
    } else if (expect(&e->pp, w, h, r, err) == 0) {
        if (im->dtype != VR_DTYPE_U8 || im->ndim != 3 || im->shape[0] != r->input_h ||
            im->shape[1] != r->input_w || im->shape[2] != 3)
            vr_err_set(err, VR_ERR_INPUT, file, 0, "image is not U8 [%d, %d, 3]", r->input_h,
                       r->input_w);
        else if (gt->dtype != VR_DTYPE_I64 || gt->ndim != 2 || gt->shape[0] != 1 ||
                 gt->shape[1] != 3 || vr_safetensors_read(&e->st, "grid_thw", &g, err))
            vr_err_set(err, VR_ERR_INPUT, file, 0, "grid_thw is not I64 [1, 3]");
        else if (memcmp(g.data, r->grid, sizeof r->grid) != 0)
            vr_err_set(err, VR_ERR_INPUT, file, 0, "grid_thw disagrees with image_size");
        else {
            /* the shapes above and the reader's tiling check bound the bytes */
            e->rgb = e->st.data + im->begin;
            char hex[33];
            vr_hash128_hex(vr_hash128(e->rgb, (size_t)(im->end - im->begin)), hex);
            if (!sum || strcmp(sum, hex) != 0)
                vr_err_set(err, VR_ERR_INPUT, file, 0,
                           "image checksum mismatch (a torn or corrupt write)");
            else
                rc = 0;
        }
    } else {
        vr_err_locate(err, file, 0);
    }
    json_decref(pj);
    vr_tensor_release(&g);
    if (rc) vr_safetensors_close(&e->st);
    return rc;
}

int vr_pixcache_check(const struct vr_pixcache *c, const char *file, const char *key,
                      struct vr_pixref *out, struct vr_err *err)
{
    struct entry e;
    if (entry_open(&e, file, &c->pp, key, err)) return -1;
    /* the sizes and grid; out's key, file and flags stay as they are */
    memcpy(out->grid, e.ref.grid, sizeof out->grid);
    out->input_w = e.ref.input_w, out->input_h = e.ref.input_h;
    out->image_w = e.ref.image_w, out->image_h = e.ref.image_h;
    vr_safetensors_close(&e.st);
    return 0;
}

int vr_pixels_load(const char *file, const struct vr_preproc *want,
                   struct vr_tensor *pixel_values, int64_t grid[3], struct vr_err *err)
{
    memset(pixel_values, 0, sizeof *pixel_values);
    struct entry e;
    if (entry_open(&e, file, want, NULL, err)) return -1;
    const struct vr_preproc *p = &e.pp;
    int64_t shape[2] = {e.ref.grid[0] * e.ref.grid[1] * e.ref.grid[2],
                        3LL * p->temporal_patch_size * p->patch_size * p->patch_size};
    int rc = vr_tensor_alloc(pixel_values, VR_DTYPE_F32, 2, shape, err);
    if (rc == 0) {
        vr_patchify(p, e.rgb, e.ref.input_w, e.ref.input_h, pixel_values->data);
        memcpy(grid, e.ref.grid, sizeof e.ref.grid);
    } else {
        vr_err_locate(err, file, 0);
    }
    vr_safetensors_close(&e.st);
    return rc;
}

/* The entry's __metadata__ (insertion order is the file's order). */
static json_t *entry_meta(const struct vr_pixcache *c, const char *key, int w, int h,
                          const char *sum)
{
    char size[64];
    snprintf(size, sizeof size, "%dx%d", w, h);
    json_t *pj = vr_preproc_json(&c->pp);
    struct vr_buf ptxt = {0};
    vr_json_dump(&ptxt, pj);
    json_t *meta = json_pack("{s:s,s:s,s:s,s:s,s:s}", "format", VR_PIXCACHE_FORMAT, "key", key,
                             "image_size", size, "preprocess", ptxt.p, "image_xxh3", sum);
    json_decref(pj);
    vr_buf_release(&ptxt);
    return meta;
}

/* Decode, resize and write the entry for bytes at file: the resized image
 * (0.9 MB for 640x480) and the grid, with the image's checksum, not
 * fsynced (see pixcache.h for why that is safe). */
static int build(struct vr_pixcache *c, const char *path, const void *bytes, size_t len,
                 const char *file, const char *key, struct vr_pixref *out, struct vr_err *err)
{
    struct vr_image im, rs;
    if (vr_image_decode(path, bytes, len, c->max_decode_pixels, &im, err)) return -1;
    int rc = vr_preprocess_resize(&c->pp, &im, &rs, err);
    if (rc) vr_err_locate(err, path, 0);
    int w = im.w, h = im.h;
    vr_image_release(&im);
    if (rc) return -1;
    const int P = c->pp.patch_size;
    struct vr_tensor t[2];
    int64_t shape[3] = {rs.h, rs.w, 3}, gshape[2] = {1, 3};
    int64_t grid[3] = {1, rs.h / P, rs.w / P};
    size_t nb = (size_t)rs.w * (size_t)rs.h * 3;
    vr_tensor_view(&t[0], VR_DTYPE_U8, 3, shape, rs.px);
    vr_tensor_view(&t[1], VR_DTYPE_I64, 2, gshape, grid);
    static const char *const names[2] = {"image", "grid_thw"};
    char sum[33];
    vr_hash128_hex(vr_hash128(rs.px, nb), sum);
    json_t *meta = entry_meta(c, key, w, h, sum);
    struct vr_st_write_opts wo = {.metadata = meta, .nosync = 1};
    rc = vr_safetensors_write(file, 2, names, t, &wo, err);
    json_decref(meta);
    if (rc == 0) {
        out->image_w = w, out->image_h = h;
        out->input_w = rs.w, out->input_h = rs.h;
        memcpy(out->grid, grid, sizeof grid);
    }
    vr_image_release(&rs);
    return rc;
}

int vr_pixcache_get(struct vr_pixcache *c, const char *path, struct vr_pixref *out,
                    struct vr_err *err)
{
    memset(out, 0, sizeof *out);
    char *bytes;
    size_t len;
    if (vr_file_read_regular(path, VR_IMAGE_MAX_FILE_BYTES, &bytes, &len, err)) return -1;
    struct vr_hash128 k = key_of(c, bytes, len);

    /* claim the key, or wait for whoever holds it */
    pthread_mutex_lock(&c->mu);
    struct slot *e;
    for (;;) {
        e = memo_find(c->memo, k.hi, k.lo, 1);
        if (e->state == SLOT_DONE) {
            ref_copy(out, &e->ref);
            out->hit = 1;
            out->rebuilt[0] = 0;
            c->hits++;
            pthread_mutex_unlock(&c->mu);
            free(bytes);
            return 0;
        }
        if (e->state != SLOT_BUSY) break;
        pthread_cond_wait(&c->cv, &c->mu);
    }
    e->state = SLOT_BUSY;
    pthread_mutex_unlock(&c->mu);

    vr_hash128_hex(k, out->key);
    char name[48];
    snprintf(name, sizeof name, "%s.safetensors", out->key);
    char *file = vr_path_join(c->dir, name);
    struct vr_err why;
    struct stat sb;
    int rc, exists = stat(file, &sb) == 0;
    if (exists && vr_pixcache_check(c, file, out->key, out, &why) == 0) {
        out->hit = 1;
        rc = 0;
    } else {
        if (exists) snprintf(out->rebuilt, sizeof out->rebuilt, "%s", why.msg);
        rc = build(c, path, bytes, len, file, out->key, out, err);
    }
    free(bytes);

    pthread_mutex_lock(&c->mu);
    e = memo_find(c->memo, k.hi, k.lo, 0); /* the table may have moved */
    if (rc == 0) {
        out->file = file;
        ref_copy(&e->ref, out);
        e->state = SLOT_DONE;
        if (out->hit) c->hits++;
        else c->misses++;
        if (out->rebuilt[0]) c->rebuilt++;
    } else {
        free(file);
        e->state = SLOT_FAILED;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int vr_pixels_task(const struct vr_task *t, int cols, float **pix, struct vr_err *err)
{
    *pix = NULL;
    size_t total = 0;
    for (int i = 0; i < t->nimages; i++) {
        if (!t->im[i].pixels) return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "no \"pixels\": run vr-encode first");
        total += (size_t)t->im[i].grid[0] * t->im[i].grid[1] * t->im[i].grid[2];
    }
    float *out = vr_xmalloc((total + 1) * cols * sizeof *out);
    size_t at = 0;
    for (int i = 0; i < t->nimages; i++) {
        const char *f = t->im[i].pixels;
        const int *want = t->im[i].grid;
        struct vr_tensor pv;
        int64_t g[3];
        if (vr_pixels_load(f, NULL, &pv, g, err)) {
            free(out);
            return -1;
        }
        if (g[0] != want[0] || g[1] != want[1] || g[2] != want[2] || pv.shape[1] != cols) {
            vr_tensor_release(&pv);
            free(out);
            return vr_err_set(err, VR_ERR_INPUT, f, 0,
                              "holds a [%lld, %lld, %lld] grid of %lld-value patches; the line says [%d, %d, %d] and "
                              "the model wants %d values",
                              (long long)g[0], (long long)g[1], (long long)g[2], (long long)pv.shape[1], want[0],
                              want[1], want[2], cols);
        }
        VR_ASSERT(pv.shape[0] == g[0] * g[1] * g[2]);
        memcpy(out + at * cols, pv.data, vr_tensor_nbytes(&pv));
        at += (size_t)pv.shape[0];
        vr_tensor_release(&pv);
    }
    *pix = out;
    return 0;
}

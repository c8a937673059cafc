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

void vr_pixcache_key(const struct vr_pixcache *c, const void *bytes, size_t len, char hex[33])
{
    vr_hash128_hex(key_of(c, bytes, len), hex);
}

/* The grid and sizes an image of w x h gets under c's parameters. */
static int expect(const struct vr_pixcache *c, int w, int h, struct vr_pixref *r,
                  struct vr_err *err)
{
    int rw, rh;
    if (vr_preprocess_size(&c->pp, w, h, &rw, &rh, err)) return -1;
    r->image_w = w, r->image_h = h;
    r->input_w = rw, r->input_h = rh;
    r->grid[0] = 1;
    r->grid[1] = rh / c->pp.patch_size;
    r->grid[2] = rw / c->pp.patch_size;
    return 0;
}

int vr_pixcache_check(const struct vr_pixcache *c, const char *file, const char *key,
                      struct vr_pixref *out, struct vr_err *err)
{
    struct vr_safetensors st;
    if (vr_safetensors_open(&st, file, err)) return -1;
    int rc = -1;
    const int P = c->pp.patch_size;
    const int64_t cols = 3LL * c->pp.temporal_patch_size * P * P;
    const struct vr_st_entry *pv = vr_safetensors_find(&st, "pixel_values");
    const struct vr_st_entry *gt = vr_safetensors_find(&st, "grid_thw");
    json_t *m = st.metadata;
    const char *fmt = json_string_value(json_object_get(m, "format"));
    const char *size = json_string_value(json_object_get(m, "image_size"));
    const char *k = json_string_value(json_object_get(m, "key"));
    int w = 0, h = 0;
    char tail;
    struct vr_tensor g = {0};
    if (st.n != 2 || !pv || !gt) {
        vr_err_set(err, VR_ERR_INPUT, file, 0, "not a pixel cache entry (tensors)");
    } else if (!fmt || strcmp(fmt, VR_PIXCACHE_FORMAT) != 0) {
        vr_err_set(err, VR_ERR_INPUT, file, 0, "format is '%s', not '%s'", fmt ? fmt : "(none)",
                   VR_PIXCACHE_FORMAT);
    } else if (key && (!k || strcmp(k, key) != 0)) {
        vr_err_set(err, VR_ERR_INPUT, file, 0, "holds the entry of key %s", k ? k : "(none)");
    } else if (!size || sscanf(size, "%dx%d%c", &w, &h, &tail) != 2 || w < 1 || h < 1) {
        vr_err_set(err, VR_ERR_INPUT, file, 0, "bad image_size in the metadata");
    } else if (expect(c, w, h, out, err) == 0) {
        int64_t n = out->grid[0] * out->grid[1] * out->grid[2];
        if (pv->dtype != VR_DTYPE_F32 || pv->ndim != 2 || pv->shape[0] != n ||
            pv->shape[1] != cols)
            vr_err_set(err, VR_ERR_INPUT, file, 0, "pixel_values is not F32 [%lld, %lld]",
                       (long long)n, (long long)cols);
        else if (gt->dtype != VR_DTYPE_I64 || gt->ndim != 2 || gt->shape[0] != 1 ||
                 gt->shape[1] != 3 || vr_safetensors_read(&st, "grid_thw", &g, err))
            vr_err_set(err, VR_ERR_INPUT, file, 0, "grid_thw is not I64 [1, 3]");
        else if (memcmp(g.data, out->grid, sizeof out->grid) != 0)
            vr_err_set(err, VR_ERR_INPUT, file, 0, "grid_thw disagrees with image_size");
        else
            rc = 0;
    } else {
        vr_err_locate(err, file, 0);
    }
    vr_tensor_release(&g);
    vr_safetensors_close(&st);
    return rc;
}

/* The entry's __metadata__ (insertion order is the file's order). */
static json_t *entry_meta(const struct vr_pixcache *c, const char *key, int w, int h)
{
    char size[64];
    snprintf(size, sizeof size, "%dx%d", w, h);
    json_t *pj = vr_preproc_json(&c->pp);
    struct vr_buf ptxt = {0};
    vr_json_dump(&ptxt, pj);
    json_t *meta = json_pack("{s:s,s:s,s:s,s:s}", "format", VR_PIXCACHE_FORMAT, "key", key,
                             "image_size", size, "preprocess", ptxt.p);
    json_decref(pj);
    vr_buf_free(&ptxt);
    return meta;
}

/* Decode, preprocess and write the entry for bytes at file. pixel_values is
 * made whole and written in one write(2): writing it strip by strip from a
 * buffer that stays in cache measured slower (on tmpfs the kernel's side of
 * many smaller writes costs more than the memory traffic saved). */
static int build(struct vr_pixcache *c, const char *path, const void *bytes, size_t len,
                 const char *file, const char *key, struct vr_pixref *out, struct vr_err *err)
{
    struct vr_image im;
    struct vr_pixels px;
    if (vr_image_decode(path, bytes, len, c->max_decode_pixels, &im, err)) return -1;
    int rc = vr_preprocess(&c->pp, &im, &px, err);
    if (rc) vr_err_locate(err, path, 0);
    int w = im.w, h = im.h;
    vr_image_release(&im);
    if (rc) return -1;
    struct vr_tensor t[2];
    int64_t shape[2] = {px.rows, px.cols}, gshape[2] = {1, 3};
    int64_t grid[3] = {px.grid_t, px.grid_h, px.grid_w};
    vr_tensor_view(&t[0], VR_DTYPE_F32, 2, shape, px.data);
    vr_tensor_view(&t[1], VR_DTYPE_I64, 2, gshape, grid);
    static const char *const names[2] = {"pixel_values", "grid_thw"};
    json_t *meta = entry_meta(c, key, w, h);
    rc = vr_safetensors_write(file, 2, names, t, meta, err);
    json_decref(meta);
    if (rc == 0) {
        out->image_w = w, out->image_h = h;
        out->input_w = px.width, out->input_h = px.height;
        memcpy(out->grid, grid, sizeof grid);
    }
    vr_pixels_release(&px);
    return rc;
}

int vr_pixcache_get(struct vr_pixcache *c, const char *path, struct vr_pixref *out,
                    struct vr_err *err)
{
    memset(out, 0, sizeof *out);
    char *bytes;
    size_t len;
    if (vr_file_read(path, &bytes, &len, err)) return -1;
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

/* vcache.c: the vision-embedding cache (see vcache.h). Used by vr-encode
 * --vision; later stages read entries with vr_vision_load. */
#include "vcache.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fs.h"
#include "hash.h"
#include "qwen.h"
#include "safetensors.h"

uint64_t vr_vision_hash(const struct vr_model *m)
{
    struct vr_hasher h;
    vr_hasher_init64(&h);
    for (int i = 0; i < m->nparams; i++) {
        const struct vr_param *p = &m->params[i];
        if (strncmp(p->name, "visual.", 7) != 0) continue;
        vr_hasher_str(&h, p->name);
        vr_hasher_str(&h, vr_dtype_name(p->t.dtype));
        vr_hasher_u64(&h, (uint64_t)p->t.ndim);
        for (int d = 0; d < p->t.ndim; d++) vr_hasher_u64(&h, (uint64_t)p->t.shape[d]);
        vr_hasher_update(&h, p->t.data, vr_tensor_nbytes(&p->t));
    }
    return vr_hasher_final64(&h);
}

void vr_visref_release(struct vr_visref *r)
{
    free(r->file);
    r->file = NULL;
}

int vr_vcache_init(struct vr_vcache *c, const char *dir, const struct vr_model *m,
                   struct vr_err *err)
{
    memset(c, 0, sizeof *c);
    if (vr_mkdir_p(dir, err)) return -1;
    c->dir = vr_xstrdup(dir);
    c->m = m;
    c->vhash = vr_vision_hash(m);
    snprintf(c->model, sizeof c->model, "%016llx", (unsigned long long)c->vhash);
    return 0;
}

void vr_vcache_release(struct vr_vcache *c)
{
    vr_ws_release(&c->ws);
    free(c->dir);
    memset(c, 0, sizeof *c);
}

json_t *vr_visref_json(const struct vr_vcache *c, const struct vr_visref *r)
{
    return json_pack("{s:s,s:s}", "file", r->file, "model", c->model);
}

/* Open and check an entry: format, key (unless NULL), model (unless 0),
 * shape [rows (unless < 0), cols (unless < 0)], checksum. On success st is
 * open and *emb points at the embeds entry. */
static int entry_open(struct vr_safetensors *st, const struct vr_st_entry **emb, const char *file,
                      const char *key, uint64_t vhash, int64_t rows, int64_t cols,
                      struct vr_err *err)
{
    if (vr_safetensors_open(st, file, err)) return -1;
    const struct vr_st_entry *e = vr_safetensors_find(st, "embeds");
    json_t *m = st->metadata;
    const char *fmt = json_string_value(json_object_get(m, "format"));
    const char *k = json_string_value(json_object_get(m, "key"));
    const char *model = json_string_value(json_object_get(m, "model"));
    const char *sum = json_string_value(json_object_get(m, "embeds_xxh3"));
    char want[17], hex[33];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)vhash);
    if (st->n != 1 || !e)
        vr_err_set(err, VR_ERR_INPUT, file, 0, "not a vision cache entry (tensors)");
    else if (!fmt || strcmp(fmt, VR_VCACHE_FORMAT) != 0)
        vr_err_set(err, VR_ERR_INPUT, file, 0, "format is '%s', not '%s'", fmt ? fmt : "(none)",
                   VR_VCACHE_FORMAT);
    else if (key && (!k || strcmp(k, key) != 0))
        vr_err_set(err, VR_ERR_INPUT, file, 0, "holds the entry of key %s", k ? k : "(none)");
    else if (vhash && (!model || strcmp(model, want) != 0))
        vr_err_set(err, VR_ERR_INPUT, file, 0, "made by vision tower %s, not %s",
                   model ? model : "(none)", want);
    else if (e->dtype != VR_DTYPE_F32 || e->ndim != 2 || (rows >= 0 && e->shape[0] != rows) ||
             (cols >= 0 && e->shape[1] != cols))
        vr_err_set(err, VR_ERR_INPUT, file, 0, "embeds is not F32 [%lld, %lld]", (long long)rows,
                   (long long)cols);
    else {
        vr_hash128_hex(vr_hash128(st->data + e->begin, (size_t)(e->end - e->begin)), hex);
        if (!sum || strcmp(sum, hex) != 0) {
            vr_err_set(err, VR_ERR_INPUT, file, 0,
                       "embeds checksum mismatch (a torn or corrupt write)");
        } else {
            *emb = e;
            return 0;
        }
    }
    vr_safetensors_close(st);
    return -1;
}

int vr_vision_load(const char *file, uint64_t vhash, struct vr_tensor *embeds,
                   struct vr_err *err)
{
    memset(embeds, 0, sizeof *embeds);
    struct vr_safetensors st;
    const struct vr_st_entry *e;
    if (entry_open(&st, &e, file, NULL, vhash, -1, -1, err)) return -1;
    int rc = vr_safetensors_read(&st, "embeds", embeds, err);
    vr_safetensors_close(&st);
    return rc;
}

/* Run the tower on px's pixels and write the entry. */
static int build(struct vr_vcache *c, const struct vr_pixref *px, const char *file,
                 const char *key, int64_t rows, int64_t cols, struct vr_err *err)
{
    const struct vr_vision_config *v = &c->m->cfg.vision;
    struct vr_tensor pv;
    int64_t grid[3];
    if (vr_pixels_load(px->file, NULL, &pv, grid, err)) return -1;
    int rc = -1;
    float *out = NULL;
    const int64_t want = (int64_t)v->in_chans * v->temporal_patch * v->patch * v->patch;
    if (pv.shape[1] != want) {
        vr_err_set(err, VR_ERR_INPUT, px->file, 0,
                   "pixel rows of %lld values do not fit the vision tower's patches of %lld "
                   "(patch %d, temporal patch %d)",
                   (long long)pv.shape[1], (long long)want, v->patch, v->temporal_patch);
        goto out;
    }
    out = malloc((size_t)rows * (size_t)cols * sizeof *out);
    if (!out) {
        vr_err_set(err, VR_ERR_SYS, file, 0, "out of memory for %lldx%lld embeddings",
                   (long long)rows, (long long)cols);
        goto out;
    }
    const int g[1][3] = {{(int)grid[0], (int)grid[1], (int)grid[2]}};
    vr_ws_reset(&c->ws);
    if (vr_vision_fwd(c->m, out, pv.data, 1, g, &c->ws, err)) {
        vr_err_locate(err, px->file, 0);
        goto out;
    }
    struct vr_tensor t;
    int64_t shape[2] = {rows, cols};
    vr_tensor_view(&t, VR_DTYPE_F32, 2, shape, out);
    char sum[33], gs[96];
    vr_hash128_hex(vr_hash128(out, (size_t)rows * (size_t)cols * sizeof *out), sum);
    snprintf(gs, sizeof gs, "%lld,%lld,%lld", (long long)grid[0], (long long)grid[1],
             (long long)grid[2]);
    json_t *meta = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "format", VR_VCACHE_FORMAT, "key", key,
                             "pixels", px->key, "model", c->model, "grid_thw", gs,
                             "embeds_xxh3", sum);
    static const char *const names[1] = {"embeds"};
    struct vr_st_write_opts wo = {.metadata = meta, .nosync = 1};
    rc = vr_safetensors_write(file, 1, names, &t, &wo, err);
    json_decref(meta);
out:
    free(out);
    vr_tensor_release(&pv);
    return rc;
}

int vr_vcache_get(struct vr_vcache *c, const struct vr_pixref *px, struct vr_visref *out,
                  struct vr_err *err)
{
    memset(out, 0, sizeof *out);
    const struct vr_vision_config *v = &c->m->cfg.vision;
    struct vr_hasher h;
    vr_hasher_init(&h);
    vr_hasher_str(&h, VR_VCACHE_FORMAT);
    vr_hasher_str(&h, px->key);
    vr_hasher_u64(&h, c->vhash);
    vr_hash128_hex(vr_hasher_final(&h), out->key);
    const int64_t unit = (int64_t)v->merge * v->merge;
    out->rows = px->grid[0] * px->grid[1] * px->grid[2] / unit;
    out->cols = v->out_hidden;
    char name[48];
    snprintf(name, sizeof name, "%s.safetensors", out->key);
    char *file = vr_path_join(c->dir, name);
    struct stat sb;
    struct vr_err why;
    int rc = 0;
    if (stat(file, &sb) == 0) {
        struct vr_safetensors st;
        const struct vr_st_entry *e;
        if (entry_open(&st, &e, file, out->key, c->vhash, out->rows, out->cols, &why) == 0) {
            vr_safetensors_close(&st);
            out->hit = 1;
        } else {
            snprintf(out->rebuilt, sizeof out->rebuilt, "%s", why.msg);
        }
    }
    if (!out->hit) rc = build(c, px, file, out->key, out->rows, out->cols, err);
    if (rc) {
        free(file);
        return -1;
    }
    out->file = file;
    if (out->hit) c->hits++;
    else c->misses++;
    if (out->rebuilt[0]) c->rebuilt++;
    return 0;
}

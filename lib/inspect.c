/* inspect.c: vr-inspect's lines (inspect.h): every tensor of a safetensors
 * file or checkpoint folder, value statistics, differences from a reference,
 * a checkpoint as the loader sees it. */
#include "inspect.h"

#include <math.h>
#include <string.h>

#include "init.h"
#include "jsonl.h"
#include "lora.h"
#include "model.h"

/* F8_E4M3 as in safetensors/PyTorch (the "fn" variant): bias 7, no infinity,
 * S.1111.111 is NaN. */
static double f8e4m3(uint8_t b)
{
    int e = (b >> 3) & 15, m = b & 7;
    double v = e == 15 && m == 7 ? NAN : e ? ldexp(8 + m, e - 10) : ldexp(m, -9);
    return b & 0x80 ? -v : v;
}

/* Element i of a float tensor as a double; the bytes may be unaligned. */
static double elem(const uint8_t *p, enum vr_dtype dt, uint64_t i)
{
    uint16_t h;
    float f;
    double d;
    switch (dt) {
    case VR_DTYPE_F64: memcpy(&d, p + 8 * i, 8); return d;
    case VR_DTYPE_F32: memcpy(&f, p + 4 * i, 4); return f;
    case VR_DTYPE_BF16: memcpy(&h, p + 2 * i, 2); return vr_bf16_to_f32(h);
    case VR_DTYPE_F16: memcpy(&h, p + 2 * i, 2); return vr_f16_to_f32(h);
    case VR_DTYPE_F8_E5M2: return vr_f16_to_f32((uint16_t)(p[i] << 8)); /* the top byte of an f16 */
    case VR_DTYPE_F8_E4M3: return f8e4m3(p[i]);
    default: VR_ASSERT(!"not a float dtype");
    }
    return 0;
}

static int is_float(enum vr_dtype dt)
{
    return dt == VR_DTYPE_F64 || dt == VR_DTYPE_F32 || dt == VR_DTYPE_BF16 || dt == VR_DTYPE_F16 ||
           dt == VR_DTYPE_F8_E5M2 || dt == VR_DTYPE_F8_E4M3;
}

/* min, max, mean over the finite values (null when there are none), summed
 * in double in file order; nan and inf counts. */
static void add_stats(json_t *o, const struct vr_safetensors *st, const struct vr_st_entry *e)
{
    uint64_t n = (e->end - e->begin) / vr_dtype_size(e->dtype), nan = 0, inf = 0, fin = 0;
    double mn = 0, mx = 0, sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        double x = elem(st->data + e->begin, e->dtype, i);
        if (isnan(x))
            nan++;
        else if (isinf(x))
            inf++;
        else {
            if (!fin || x < mn) mn = x;
            if (!fin || x > mx) mx = x;
            sum += x;
            fin++;
        }
    }
    json_object_set_new(o, "min", fin ? json_real(mn) : json_null());
    json_object_set_new(o, "max", fin ? json_real(mx) : json_null());
    json_object_set_new(o, "mean", fin ? json_real(sum / (double)fin) : json_null());
    json_object_set_new(o, "nan", json_integer((json_int_t)nan));
    json_object_set_new(o, "inf", json_integer((json_int_t)inf));
}

/* Write o as a line and drop it. */
static int put(FILE *out, json_t *o, struct vr_err *err)
{
    int rc = vr_jsonl_write(out, o, err);
    json_decref(o);
    return rc;
}

/* --compare: differences from the tensor of the same name and shape in ref. */
static void add_compare(json_t *o, const struct vr_safetensors *st, const struct vr_st_entry *e,
                        const struct vr_stset *ref)
{
    const struct vr_safetensors *rf;
    const struct vr_st_entry *r = vr_stset_find(ref, e->name, &rf);
    int same = r && is_float(r->dtype) && r->ndim == e->ndim;
    for (int d = 0; same && d < e->ndim; d++) same = r->shape[d] == e->shape[d];
    if (!same) {
        json_object_set_new(o, "rel", json_null());
        return;
    }
    uint64_t n = (e->end - e->begin) / vr_dtype_size(e->dtype);
    double md = 0, mb = 0;
    for (uint64_t i = 0; i < n; i++) {
        double a = elem(st->data + e->begin, e->dtype, i), b = elem(rf->data + r->begin, r->dtype, i);
        double d = fabs(a - b);
        if (!(d <= md)) md = d; /* NaN propagates */
        if (fabs(b) > mb) mb = fabs(b);
    }
    json_object_set_new(o, "max_abs", json_real(md));
    json_object_set_new(o, "rel", json_real(mb > 0 ? md / mb : md));
}

static int list_file(FILE *out, const struct vr_safetensors *st, const struct vr_inspect_opts *io,
                     struct vr_err *err)
{
    uint64_t hlen = (uint64_t)(st->data - st->map) - 8;
    if (io->header)
        return put(out, json_pack("{s:s,s:I,s:I,s:i,s:O?}", "file", st->path, "header_bytes", (json_int_t)hlen,
                      "data_bytes", (json_int_t)st->data_len, "tensors", st->n, "metadata",
                      st->metadata), err);
    for (int i = 0; i < st->n; i++) {
        const struct vr_st_entry *e = &st->t[i];
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim; d++) json_array_append_new(shape, json_integer(e->shape[d]));
        json_t *o =
            json_pack("{s:s,s:s,s:s,s:o,s:I,s:I}", "file", st->path, "name", e->name, "dtype",
                      vr_dtype_name(e->dtype), "shape", shape, "offset",
                      (json_int_t)(8 + hlen + e->begin), "bytes", (json_int_t)(e->end - e->begin));
        if (io->stats && is_float(e->dtype)) add_stats(o, st, e);
        if (io->ref && is_float(e->dtype)) add_compare(o, st, e, io->ref);
        if (put(out, o, err)) return -1;
    }
    return 0;
}

static int cmp_path(const void *a, const void *b)
{
    const struct vr_safetensors *x = *(const struct vr_safetensors *const *)a,
                                *y = *(const struct vr_safetensors *const *)b;
    return strcmp(x->path, y->path);
}

int vr_inspect_model(FILE *out, const char *dir, struct vr_err *err)
{
    struct vr_model m;
    if (vr_lora_load_merged(&m, dir, err)) return -1;
    const struct vr_text_config *t = &m.cfg.text;
    const struct vr_vision_config *v = &m.cfg.vision;
    json_t *o = json_pack("{s:s,s:b,s:I,s:s,s:b,s:{s:i,s:i,s:i,s:i,s:i},s:{s:i,s:i,s:i}}", "model", dir, "ok", 1,
                  "params", (json_int_t)vr_init_param_count(&m.cfg), "dtype",
                  vr_dtype_name(m.embed->dtype), "tied", m.params[m.nparams - 1].tied, "text", "layers",
                  t->layers, "hidden", t->hidden, "heads", t->heads, "kv_heads", t->kv_heads, "vocab",
                  t->vocab, "vision", "depth", v->depth, "hidden", v->hidden, "heads", v->heads);
    vr_model_release(&m);
    return put(out, o, err);
}

int vr_inspect_path(FILE *out, const char *path, const struct vr_inspect_opts *io, struct vr_err *err)
{
    struct vr_stset s;
    if (vr_stset_open(&s, path, err)) return -1;
    /* shards in name order (model-00001-of-... first), whatever the index's order */
    const struct vr_safetensors **f = vr_xmalloc(((size_t)s.nfiles + 1) * sizeof *f);
    for (int i = 0; i < s.nfiles; i++) f[i] = &s.files[i];
    qsort(f, (size_t)s.nfiles, sizeof *f, cmp_path);
    int rc = 0;
    for (int i = 0; i < s.nfiles && rc == 0; i++) rc = list_file(out, f[i], io, err);
    free(f);
    vr_stset_close(&s);
    return rc;
}


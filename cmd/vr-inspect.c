/* vr-inspect: list the tensors of safetensors files and checkpoint folders
 * (one model.safetensors, or shards + model.safetensors.index.json), one JSON
 * line per tensor; with --stats, value statistics of float tensors; with
 * --header, one line per file. A debugging tool beside the pipeline stages;
 * every file is validated by lib/safetensors before any byte is used. */
#include <math.h>
#include <string.h>

#include "cli.h"
#include "jsonl.h"
#include "init.h"
#include "lora.h"
#include "model.h"
#include "safetensors.h"

static const struct vr_opt opts[] = {
    {"stats", 's', NULL, "add min, max, mean (finite values) and nan, inf counts of float tensors"},
    {"header", 'H', NULL,
     "one line per file instead: header and data bytes, tensors, __metadata__"},
    {"model", 'm', NULL,
     "load each DIR as a Qwen2.5-VL checkpoint, check every tensor against config.json, one line each"},
    {"compare", 'c', "REF",
     "add max_abs and rel = max|a-b|/max|b| against the same-named float tensor of REF (file or folder)"},
    {0},
};

static const struct vr_cli cli = {
    "vr-inspect",
    "[OPTION]... FILE|DIR...",
    "List the tensors of safetensors files and checkpoint folders (model.safetensors, or\n"
    "shards named by model.safetensors.index.json), one JSON line per tensor:\n"
    "file, name, dtype, shape, offset (of its first byte in the file) and bytes.",
    opts,
};

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

static void put(json_t *o)
{
    struct vr_err err;
    if (vr_jsonl_write(stdout, o, &err)) vr_die(&err);
    json_decref(o);
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

static void list_file(const struct vr_safetensors *st, int header, int stats, const struct vr_stset *ref)
{
    uint64_t hlen = (uint64_t)(st->data - st->map) - 8;
    if (header) {
        put(json_pack("{s:s,s:I,s:I,s:i,s:O?}", "file", st->path, "header_bytes", (json_int_t)hlen,
                      "data_bytes", (json_int_t)st->data_len, "tensors", st->n, "metadata",
                      st->metadata));
        return;
    }
    for (int i = 0; i < st->n; i++) {
        const struct vr_st_entry *e = &st->t[i];
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim; d++) json_array_append_new(shape, json_integer(e->shape[d]));
        json_t *o =
            json_pack("{s:s,s:s,s:s,s:o,s:I,s:I}", "file", st->path, "name", e->name, "dtype",
                      vr_dtype_name(e->dtype), "shape", shape, "offset",
                      (json_int_t)(8 + hlen + e->begin), "bytes", (json_int_t)(e->end - e->begin));
        if (stats && is_float(e->dtype)) add_stats(o, st, e);
        if (ref && is_float(e->dtype)) add_compare(o, st, e, ref);
        put(o);
    }
}

static int cmp_path(const void *a, const void *b)
{
    const struct vr_safetensors *x = *(const struct vr_safetensors *const *)a,
                                *y = *(const struct vr_safetensors *const *)b;
    return strcmp(x->path, y->path);
}

/* --model: the checkpoint as vr's loader sees it. */
static int check_model(const char *dir)
{
    struct vr_model m;
    struct vr_err err;
    if (vr_lora_load_merged(&m, dir, &err)) {
        vr_warn("%s", err.msg);
        return 1;
    }
    const struct vr_text_config *t = &m.cfg.text;
    const struct vr_vision_config *v = &m.cfg.vision;
    put(json_pack("{s:s,s:b,s:I,s:s,s:b,s:{s:i,s:i,s:i,s:i,s:i},s:{s:i,s:i,s:i}}", "model", dir, "ok", 1,
                  "params", (json_int_t)vr_init_param_count(&m.cfg), "dtype",
                  vr_dtype_name(m.embed->dtype), "tied", m.params[m.nparams - 1].tied, "text", "layers",
                  t->layers, "hidden", t->hidden, "heads", t->heads, "kv_heads", t->kv_heads, "vocab",
                  t->vocab, "vision", "depth", v->depth, "hidden", v->hidden, "heads", v->heads));
    vr_model_release(&m);
    return 0;
}

int main(int argc, char **argv)
{
    int stats = 0, header = 0, model = 0, c, ind, status = 0;
    const char *arg, *cmp = NULL;
    struct vr_stset ref;
    vr_cli_init(&cli, argc, argv);
    while ((c = vr_cli_next(&ind, &arg)) != -1) {
        switch (c) {
        case 's': stats = 1; break;
        case 'H': header = 1; break;
        case 'm': model = 1; break;
        case 'c': cmp = arg; break;
        }
    }
    if (cmp) {
        struct vr_err err;
        if (vr_stset_open(&ref, cmp, &err)) vr_die(&err);
    }
    if (ind >= argc) vr_die_usage("no FILE or DIR given");
    for (int a = ind; a < argc && model; a++) status |= check_model(argv[a]);
    for (int a = ind; a < argc && !model; a++) {
        struct vr_stset s;
        struct vr_err err = {0};
        if (vr_stset_open(&s, argv[a], &err)) { /* report, go on with the next, exit 1 */
            vr_warn("%s", err.msg);
            if (err.hint[0]) fprintf(stderr, "hint: %s\n", err.hint);
            status = 1;
            continue;
        }
        /* shards in name order (model-00001-of-... first), whatever the index's order */
        const struct vr_safetensors **f = vr_xmalloc(((size_t)s.nfiles + 1) * sizeof *f);
        for (int i = 0; i < s.nfiles; i++) f[i] = &s.files[i];
        qsort(f, (size_t)s.nfiles, sizeof *f, cmp_path);
        for (int i = 0; i < s.nfiles; i++) list_file(f[i], header, stats, cmp ? &ref : NULL);
        free(f);
        vr_stset_close(&s);
    }
    if (cmp) vr_stset_close(&ref);
    if (fflush(stdout) != 0 || ferror(stdout)) vr_die_msg("<stdout>: write failed");
    return status;
}

/* safetensors.c: the reader against files written by the reference (Python
 * safetensors, tests/golden/make_safetensors.py), bit for bit; the writer's
 * round trip and layout for every dtype; sharded sets both ways; zero copy.
 *
 *   build/tests/safetensors.t             the TAP test (temp files removed)
 *   build/tests/safetensors.t --write DIR  also leave vr-written files and a
 *       manifest.json in DIR, for `make_safetensors.py --check-vr DIR` */
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "safetensors.h"

#include "../tap.h"
#include "golden.h"

/* ---- the reference's files ---- */

static const char *hexfield(json_t *e) { return json_string_value(json_object_get(e, "hex")); }

static void check_entry(const struct vr_safetensors *st, int i, json_t *e, const char *rel)
{
    const char *name = json_string_value(json_object_get(e, "name"));
    const struct vr_st_entry *t = &st->t[i];
    json_t *shape = json_object_get(e, "shape");
    int same =
        strcmp(t->name, name) == 0 &&
        strcmp(vr_dtype_name(t->dtype), json_string_value(json_object_get(e, "dtype"))) == 0 &&
        t->ndim == (int)json_array_size(shape);
    for (int d = 0; same && d < t->ndim; d++)
        same = t->shape[d] == json_integer_value(json_array_get(shape, (size_t)d));
    json_t *off = json_object_get(e, "data_offsets");
    same = same && t->begin == (uint64_t)json_integer_value(json_array_get(off, 0)) &&
           t->end == (uint64_t)json_integer_value(json_array_get(off, 1));
    ok(same, "%s: tensor %d is '%s' with the reference's dtype, shape and offsets", rel, i, name);
    ok(vr_safetensors_find(st, name) == t, "%s: find('%s')", rel, name);

    struct vr_err err = {0};
    struct vr_tensor r;
    int rc = vr_safetensors_read(st, name, &r, &err);
    ok(rc == 0 && vr_tensor_nbytes(&r) == t->end - t->begin, "%s: read('%s')", rel, name);
    if (rc) {
        diag("%s", err.msg);
        return;
    }
    char ws[17];
    golden_wsum(r.data, vr_tensor_nbytes(&r), ws);
    is_str(ws, json_string_value(json_object_get(e, "wsum")), "%s: '%s' bytes match (checksum)",
           rel, name);
    if (hexfield(e)) {
        char *hx = golden_hex(r.data, vr_tensor_nbytes(&r));
        is_str(hx, hexfield(e), "%s: '%s' bytes match (hex)", rel, name);
        free(hx);
    }
    /* zero copy: an aligned tensor is viewed in place, inside the mapping */
    struct vr_tensor v;
    const uint8_t *want = st->data + t->begin;
    if ((uintptr_t)want % vr_dtype_size(t->dtype) == 0) {
        rc = vr_safetensors_view(st, name, &v, &err);
        ok(rc == 0 && v.data == want && (const uint8_t *)v.data >= st->map &&
               (const uint8_t *)v.data + vr_tensor_nbytes(&v) <= st->map + st->size && !v.owned &&
               memcmp(v.data, r.data, vr_tensor_nbytes(&r)) == 0,
           "%s: view('%s') points into the mapping", rel, name);
    } else {
        rc = vr_safetensors_view(st, name, &v, &err);
        ok(rc == -1 && strstr(err.msg, "not aligned"), "%s: view('%s') refuses unaligned bytes: %s",
           rel, name, err.msg);
    }
    vr_tensor_release(&r);
}

static void check_file(const char *rel, json_t *spec)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", golden_path("safetensors/"));
    strncat(path, rel, sizeof path - strlen(path) - 1);
    struct vr_safetensors st;
    struct vr_err err = {0};
    int rc = vr_safetensors_open(&st, path, &err);
    if (!ok(rc == 0, "open %s", rel)) {
        diag("%s", err.msg);
        return;
    }
    json_t *ts = json_object_get(spec, "tensors");
    is_int(st.n, json_array_size(ts), "%s: tensor count", rel);
    is_int(st.data - st.map - 8, json_integer_value(json_object_get(spec, "header_len")),
           "%s: header length", rel);
    json_t *meta = json_object_get(spec, "metadata");
    ok(json_is_null(meta) ? st.metadata == NULL : json_equal(st.metadata, meta),
       "%s: __metadata__ as written", rel);
    for (int i = 0; i < st.n && i < (int)json_array_size(ts); i++)
        check_entry(&st, i, json_array_get(ts, (size_t)i), rel);
    ok(vr_safetensors_find(&st, "no.such.tensor") == NULL, "%s: find of a missing name is NULL",
       rel);
    struct vr_tensor v;
    rc = vr_safetensors_view(&st, "no.such.tensor", &v, &err);
    ok(rc == -1 && strstr(err.msg, "no tensor named 'no.such.tensor'") && strstr(err.msg, rel),
       "%s: view of a missing name fails: %s", rel, err.msg);
    vr_safetensors_close(&st);
}

static const char *ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0 ? s : NULL;
}

/* expected.json's description of a tensor, by file and name */
static json_t *spec_of(json_t *files, const char *rel, const char *name)
{
    json_t *ts = json_object_get(json_object_get(files, rel), "tensors"), *e;
    size_t i;
    json_array_foreach(ts, i, e) if (strcmp(json_string_value(json_object_get(e, "name")), name) ==
                                     0) return e;
    return NULL;
}

static void check_sharded(json_t *exp)
{
    json_t *files = json_object_get(exp, "files");
    json_t *idx = json_object_get(exp, "sharded_index");
    json_t *wm = json_object_get(idx, "weight_map");
    const char *targets[] = {"safetensors/sharded", "safetensors/sharded/",
                             "safetensors/sharded/model.safetensors.index.json"};
    for (int k = 0; k < 3; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s", golden_path(targets[k]));
        struct vr_stset s;
        struct vr_err err = {0};
        int rc = vr_stset_open(&s, path, &err);
        if (!ok(rc == 0 && s.nfiles == 2, "stset_open %s: 2 shards", targets[k])) {
            diag("%s", rc ? err.msg : "wrong shard count");
            if (rc == 0) vr_stset_close(&s);
            continue;
        }
        const char *name;
        json_t *shard;
        int found = 0, right = 0, bytes = 0, n = 0;
        uint64_t total = 0;
        json_object_foreach(wm, name, shard)
        {
            n++;
            const struct vr_safetensors *f = NULL;
            const struct vr_st_entry *e = vr_stset_find(&s, name, &f);
            if (!e) continue;
            found++;
            total += e->end - e->begin;
            if (ends_with(f->path, json_string_value(shard))) right++;
            char rel[256], ws[17];
            snprintf(rel, sizeof rel, "sharded/%s", json_string_value(shard));
            json_t *sp = spec_of(files, rel, name);
            golden_wsum(f->data + e->begin, e->end - e->begin, ws);
            if (sp && strcmp(ws, json_string_value(json_object_get(sp, "wsum"))) == 0) bytes++;
        }
        is_int(found, n, "%s: every tensor of the index is found", targets[k]);
        is_int(right, n, "%s: each in the shard the index names", targets[k]);
        is_int(bytes, n, "%s: each with the reference's bytes", targets[k]);
        is_int(total,
               json_integer_value(json_object_get(json_object_get(idx, "metadata"), "total_size")),
               "%s: sizes add up to the index's total_size", targets[k]);
        ok(vr_stset_find(&s, "no.such.tensor", NULL) == NULL, "%s: missing name is NULL",
           targets[k]);
        vr_stset_close(&s);
    }
    /* a folder with one model.safetensors, and a plain file */
    const char *singles[] = {"safetensors/single", "safetensors/single/model.safetensors",
                             "safetensors/dtypes.safetensors"};
    for (int k = 0; k < 3; k++) {
        struct vr_stset s;
        struct vr_err err = {0};
        char path[4096];
        snprintf(path, sizeof path, "%s", golden_path(singles[k]));
        int rc = vr_stset_open(&s, path, &err);
        ok(rc == 0 && s.nfiles == 1 && vr_stset_find(&s, k < 2 ? "lm_head.weight" : "f32.5d", NULL),
           "stset_open %s: one file", singles[k]);
        if (rc == 0)
            vr_stset_close(&s);
        else
            diag("%s", err.msg);
    }
}

/* ---- vr's own files ---- */

/* element i of tensor k; keep in step with vr_value_bytes in
 * tests/golden/make_safetensors.py */
static void fill_pattern(struct vr_tensor *t, int k)
{
    int64_t n = vr_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        long long v = ((i * 37 + k * 11) % 251) - 125;
        void *d = t->data;
        switch (t->dtype) {
        case VR_DTYPE_F8_E4M3:
        case VR_DTYPE_F8_E5M2: ((uint8_t *)d)[i] = (uint8_t)((i * 7 + k) & 0x7f); break;
        case VR_DTYPE_BOOL: ((uint8_t *)d)[i] = (uint8_t)(v & 1); break;
        case VR_DTYPE_U8: ((uint8_t *)d)[i] = (uint8_t)(v + 125); break;
        case VR_DTYPE_I8: ((int8_t *)d)[i] = (int8_t)v; break;
        case VR_DTYPE_I16: ((int16_t *)d)[i] = (int16_t)v; break;
        case VR_DTYPE_U16: ((uint16_t *)d)[i] = (uint16_t)(v + 125); break;
        case VR_DTYPE_I32: ((int32_t *)d)[i] = (int32_t)v; break;
        case VR_DTYPE_U32: ((uint32_t *)d)[i] = (uint32_t)(v + 125); break;
        case VR_DTYPE_I64: ((int64_t *)d)[i] = v; break;
        case VR_DTYPE_U64: ((uint64_t *)d)[i] = (uint64_t)(v + 125); break;
        case VR_DTYPE_F64: ((double *)d)[i] = (double)v / 8; break;
        case VR_DTYPE_F32:
        case VR_DTYPE_F16:
        case VR_DTYPE_BF16: {
            float f = (float)v / 8;
            vr_convert_from_f32((uint8_t *)d + i * (int64_t)vr_dtype_size(t->dtype), t->dtype, &f,
                                1);
            break;
        }
        default: VR_ASSERT(0);
        }
    }
}

#define MAXT 80
struct tset {
    int n;
    char *names[MAXT];
    struct vr_tensor t[MAXT];
    int k[MAXT];
};

static void tset_add(struct tset *s, const char *name, enum vr_dtype dt, int ndim,
                     const int64_t *shape)
{
    VR_ASSERT(s->n < MAXT);
    struct vr_err err;
    VR_ASSERT(vr_tensor_alloc(&s->t[s->n], dt, ndim, shape, &err) == 0);
    s->names[s->n] = vr_xstrdup(name);
    s->k[s->n] = s->n;
    fill_pattern(&s->t[s->n], s->n);
    s->n++;
}

static void tset_free(struct tset *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->names[i]);
        vr_tensor_release(&s->t[i]);
    }
    s->n = 0;
}

/* every dtype in four shapes: 0-d, 5-d, odd vector, zero-size */
static void all_dtypes(struct tset *s)
{
    static const int64_t s5[] = {2, 1, 3, 1, 2}, s1[] = {7}, s0[] = {4, 0, 2};
    for (int d = 0; d < VR_DTYPE_COUNT; d++) {
        char name[64], lower[16];
        const char *dn = vr_dtype_name((enum vr_dtype)d);
        size_t j = 0;
        for (; dn[j] && j + 1 < sizeof lower; j++) lower[j] = (char)(dn[j] | 0x20);
        lower[j] = 0;
        snprintf(name, sizeof name, "%s.scalar", lower);
        tset_add(s, name, (enum vr_dtype)d, 0, NULL);
        snprintf(name, sizeof name, "%s.5d", lower);
        tset_add(s, name, (enum vr_dtype)d, 5, s5);
        snprintf(name, sizeof name, "%s.vec", lower);
        tset_add(s, name, (enum vr_dtype)d, 1, s1);
        snprintf(name, sizeof name, "%s.empty", lower);
        tset_add(s, name, (enum vr_dtype)d, 3, s0);
    }
}

/* a Qwen-like checkpoint, bf16 with one f32 tensor */
static void checkpoint(struct tset *s)
{
    static const int64_t emb[] = {64, 16}, sq[] = {16, 16}, vec[] = {16}, up[] = {32, 16};
    tset_add(s, "model.embed_tokens.weight", VR_DTYPE_BF16, 2, emb);
    for (int l = 0; l < 2; l++) {
        char n[128];
        snprintf(n, sizeof n, "model.layers.%d.self_attn.q_proj.weight", l);
        tset_add(s, n, VR_DTYPE_BF16, 2, sq);
        snprintf(n, sizeof n, "model.layers.%d.self_attn.q_proj.bias", l);
        tset_add(s, n, VR_DTYPE_BF16, 1, vec);
        snprintf(n, sizeof n, "model.layers.%d.mlp.up_proj.weight", l);
        tset_add(s, n, VR_DTYPE_BF16, 2, up);
        snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", l);
        tset_add(s, n, VR_DTYPE_F32, 1, vec);
    }
    tset_add(s, "model.norm.weight", VR_DTYPE_BF16, 1, vec);
    tset_add(s, "lm_head.weight", VR_DTYPE_BF16, 2, emb);
}

static int count_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* The round trip and the layout of one file vr wrote from s. */
static void check_written(const char *path, const struct tset *s, json_t *meta)
{
    struct vr_safetensors st;
    struct vr_err err = {0};
    int rc = vr_safetensors_open(&st, path, &err);
    if (!ok(rc == 0, "reopen %s", path)) {
        diag("%s", err.msg);
        return;
    }
    is_int(st.n, s->n, "%s: all %d tensors", path, s->n);
    uint64_t hlen = rd64(st.map);
    ok(hlen % 8 == 0, "header length %llu is a multiple of 8", (unsigned long long)hlen);
    size_t jl = (size_t)hlen;
    while (jl && st.map[8 + jl - 1] == ' ') jl--;
    ok(jl && st.map[8 + jl - 1] == '}' && hlen - jl < 8, "header is JSON padded with < 8 spaces");
    json_t *h = json_loadb((const char *)st.map + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, NULL);
    ok(h && json_object_size(h) == (size_t)s->n + (meta ? 1 : 0),
       "header parses, one key per tensor");
    json_decref(h);
    ok(meta ? json_equal(st.metadata, meta) : st.metadata == NULL, "__metadata__ round trips");
    int same = 0, aligned = 0, views = 0, order = 1;
    for (int i = 0; i < s->n; i++) {
        struct vr_tensor r, v;
        const struct vr_st_entry *e = vr_safetensors_find(&st, s->names[i]);
        if (!e || vr_safetensors_read(&st, s->names[i], &r, &err)) continue;
        int eq = r.dtype == s->t[i].dtype && r.ndim == s->t[i].ndim &&
                 memcmp(r.shape, s->t[i].shape, sizeof r.shape[0] * (size_t)r.ndim) == 0 &&
                 memcmp(r.data, s->t[i].data, vr_tensor_nbytes(&r)) == 0;
        same += eq;
        if (!eq) diag("'%s' differs after the round trip", s->names[i]);
        vr_tensor_release(&r);
        aligned += (size_t)(8 + hlen + e->begin) % vr_dtype_size(e->dtype) == 0;
        views +=
            vr_safetensors_view(&st, s->names[i], &v, &err) == 0 && v.data == st.data + e->begin;
    }
    /* the reference's order: by its dtype enum, largest first, then by name */
    static const int rank[VR_DTYPE_COUNT] = {
        [VR_DTYPE_U64] = 14, [VR_DTYPE_I64] = 13, [VR_DTYPE_F64] = 12,    [VR_DTYPE_F32] = 11,
        [VR_DTYPE_U32] = 10, [VR_DTYPE_I32] = 9,  [VR_DTYPE_BF16] = 8,    [VR_DTYPE_F16] = 7,
        [VR_DTYPE_U16] = 6,  [VR_DTYPE_I16] = 5,  [VR_DTYPE_F8_E4M3] = 4, [VR_DTYPE_F8_E5M2] = 3,
        [VR_DTYPE_I8] = 2,   [VR_DTYPE_U8] = 1,   [VR_DTYPE_BOOL] = 0};
    for (int i = 1; i < st.n; i++) {
        int a = rank[st.t[i - 1].dtype], b = rank[st.t[i].dtype];
        if (a < b || (a == b && strcmp(st.t[i - 1].name, st.t[i].name) > 0)) order = 0;
    }
    is_int(same, s->n, "every tensor reads back with its dtype, shape and bytes");
    is_int(aligned, s->n, "every tensor starts at a multiple of its element size in the file");
    is_int(views, s->n, "every tensor can be viewed in place");
    ok(order,
       "tensors are laid out as the reference does: U64, I64, F64, F32, ... BOOL, then by name");
    vr_safetensors_close(&st);
}

static int write_ok(const char *path, const struct tset *s, json_t *meta)
{
    struct vr_err err = {0};
    int rc = vr_safetensors_write(path, s->n, (const char *const *)s->names, s->t,
                                  &(struct vr_st_write_opts){.metadata = meta}, &err);
    if (!ok(rc == 0, "write %s (%d tensors)", path, s->n)) diag("%s", err.msg);
    return rc;
}

static json_t *manifest_entry(const struct tset *s, json_t *meta)
{
    json_t *ts = json_array();
    for (int i = 0; i < s->n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < s->t[i].ndim; d++)
            json_array_append_new(shape, json_integer(s->t[i].shape[d]));
        json_array_append_new(ts, json_pack("{s:s,s:s,s:o,s:i}", "name", s->names[i], "dtype",
                                            vr_dtype_name(s->t[i].dtype), "shape", shape, "k",
                                            s->k[i]));
    }
    json_t *e = json_pack("{s:o}", "tensors", ts);
    if (meta) json_object_set(e, "metadata", meta);
    return e;
}

static void writer_tests(const char *dir, json_t *manifest)
{
    char p[4096];
    struct vr_err err = {0};
    json_t *files = json_object_get(manifest, "files");

    struct tset all = {0};
    all_dtypes(&all);
    json_t *meta = json_pack("{s:s,s:s}", "format", "pt", "writer", "vr \u00e9\u2713");
    snprintf(p, sizeof p, "%s/all.safetensors", dir);
    if (write_ok(p, &all, meta) == 0) check_written(p, &all, meta);
    json_object_set_new(files, "all.safetensors", manifest_entry(&all, meta));
    is_int(count_temp_files(dir), 0, "no temporary file is left beside it");
    /* writing again replaces the file whole */
    if (write_ok(p, &all, meta) == 0) check_written(p, &all, meta);

    struct tset ck = {0};
    checkpoint(&ck);
    snprintf(p, sizeof p, "%s/ckpt.safetensors", dir);
    if (write_ok(p, &ck, NULL) == 0) check_written(p, &ck, NULL);
    json_object_set_new(files, "ckpt.safetensors", manifest_entry(&ck, NULL));

    /* refusals: nothing written, nothing left */
    const char *dup[] = {"a", "a"};
    struct vr_tensor two[2];
    int64_t one = 1;
    vr_tensor_view(&two[0], VR_DTYPE_F32, 1, &one, ck.t[0].data);
    two[1] = two[0];
    snprintf(p, sizeof p, "%s/dup.safetensors", dir);
    int rc = vr_safetensors_write(p, 2, dup, two, NULL, &err);
    ok(rc == -1 && err.kind == VR_ERR_USAGE && access(p, F_OK) != 0,
       "a name given twice is refused, no file: %s", err.msg);
    snprintf(p, sizeof p, "%s/no/such/dir/x.safetensors", dir);
    rc = vr_safetensors_write(p, ck.n, (const char *const *)ck.names, ck.t, NULL, &err);
    ok(rc == -1 && strstr(err.msg, p), "a missing folder fails naming the file: %s", err.msg);
    is_int(count_temp_files(dir), 0, "still no temporary file");

    /* sharded: small shards, then the index */
    snprintf(p, sizeof p, "%s/ckpt", dir);
    uint64_t maxb = 1500, total = 0, biggest = 0;
    for (int i = 0; i < ck.n; i++) {
        total += vr_tensor_nbytes(&ck.t[i]);
        if (vr_tensor_nbytes(&ck.t[i]) > biggest) biggest = vr_tensor_nbytes(&ck.t[i]);
    }
    rc = vr_stset_write(p, ck.n, (const char *const *)ck.names, ck.t, maxb, NULL, &err);
    if (!ok(rc == 0, "stset_write %s, shards of at most %llu bytes", p, (unsigned long long)maxb))
        diag("%s", err.msg);
    is_int(count_temp_files(p), 0, "no temporary file in the checkpoint folder");
    struct vr_stset s;
    rc = vr_stset_open(&s, p, &err);
    if (ok(rc == 0, "stset_open %s", p)) {
        ok(s.nfiles > 1, "%d shards", s.nfiles);
        int good = 0;
        for (int i = 0; i < ck.n; i++) {
            const struct vr_safetensors *f;
            const struct vr_st_entry *e = vr_stset_find(&s, ck.names[i], &f);
            good += e && e->dtype == ck.t[i].dtype &&
                    e->end - e->begin == vr_tensor_nbytes(&ck.t[i]) &&
                    memcmp(f->data + e->begin, ck.t[i].data, e->end - e->begin) == 0;
        }
        is_int(good, ck.n, "every tensor is found in its shard with its bytes");
        int within = 1;
        char want[64];
        for (int k = 0; k < s.nfiles; k++) {
            if (s.files[k].data_len > maxb && s.files[k].n > 1) within = 0;
            snprintf(want, sizeof want, "model-%05d-of-%05d.safetensors", k + 1, s.nfiles);
            int named = 0;
            for (int j = 0; j < s.nfiles; j++) named |= ends_with(s.files[j].path, want) != NULL;
            if (!named) within = 0;
        }
        ok(within, "shards are named model-0000k-of-0000N and hold <= max bytes (or one tensor)");
        vr_stset_close(&s);
    } else {
        diag("%s", err.msg);
    }
    char ip[4096];
    snprintf(ip, sizeof ip, "%s/model.safetensors.index.json", p);
    json_t *idx = json_load_file(ip, 0, NULL);
    ok(idx &&
           (uint64_t)json_integer_value(
               json_object_get(json_object_get(idx, "metadata"), "total_size")) == total &&
           json_object_size(json_object_get(idx, "weight_map")) == (size_t)ck.n,
       "index: total_size %llu and %d names", (unsigned long long)total, ck.n);
    json_decref(idx);
    json_object_set_new(manifest, "sets", json_pack("[s]", "ckpt"));
    json_t *stt = manifest_entry(&ck, NULL);
    json_object_set_new(manifest, "set_tensors",
                        json_pack("{s:O}", "ckpt", json_object_get(stt, "tensors")));
    json_decref(stt);

    /* max 0: one model.safetensors, and the stale index goes */
    snprintf(p, sizeof p, "%s/flat", dir);
    rc = vr_stset_write(p, ck.n, (const char *const *)ck.names, ck.t, maxb, NULL, &err) ||
         vr_stset_write(p, ck.n, (const char *const *)ck.names, ck.t, 0, NULL, &err);
    snprintf(ip, sizeof ip, "%s/flat/model.safetensors.index.json", dir);
    ok(rc == 0 && access(ip, F_OK) != 0, "unsharded rewrite removes the old index");
    rc = vr_stset_open(&s, p, &err);
    ok(rc == 0 && s.nfiles == 1 && s.files[0].n == ck.n, "and opens as one model.safetensors");
    if (rc == 0) vr_stset_close(&s);

    tset_free(&all);
    tset_free(&ck);
    json_decref(meta);
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            rm_rf(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    const char *keep = NULL;
    if (argc == 3 && strcmp(argv[1], "--write") == 0)
        keep = argv[2];
    else if (argc != 1) {
        fprintf(stderr, "usage: %s [--write DIR]\n", argv[0]);
        return 2;
    }

    json_t *exp = golden_json("safetensors/expected.json");
    const char *rel;
    json_t *spec;
    json_object_foreach(json_object_get(exp, "files"), rel, spec) check_file(rel, spec);
    check_sharded(exp);
    json_decref(exp);

    char tmpl[] = "/tmp/vr-st-test.XXXXXX";
    const char *dir = keep;
    struct vr_err err;
    if (keep) {
        ok(vr_mkdir_p(keep, &err) == 0, "mkdir %s", keep);
    } else {
        const char *t = getenv("TMPDIR");
        static char buf[4096];
        snprintf(buf, sizeof buf, "%s/vr-st-test.XXXXXX", t && *t ? t : "/tmp");
        dir = mkdtemp(buf) ? buf : mkdtemp(tmpl);
        VR_ASSERT(dir);
    }
    json_t *manifest = json_pack("{s:{}}", "files");
    writer_tests(dir, manifest);
    if (keep) {
        char p[4096];
        snprintf(p, sizeof p, "%s/manifest.json", keep);
        ok(json_dump_file(manifest, p, JSON_INDENT(1)) == 0, "wrote %s", p);
    } else {
        rm_rf(dir);
    }
    json_decref(manifest);
    return done_testing();
}

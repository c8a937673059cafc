/* safetensors.c: validated mmap reader, atomic writer, sharded sets (see
 * safetensors.h). Used by every stage that moves tensors between processes
 * and by the checkpoint loader/saver. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fs.h"
#include "jsonl.h"

static int cmp_begin(const void *a, const void *b)
{
    const struct vr_st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_name_idx(const void *a, const void *b, void *base)
{
    const struct vr_st_entry *t = base;
    return strcmp(t[*(const int *)a].name, t[*(const int *)b].name);
}

/* Parse one header entry; msg names the tensor on failure. */
static int parse_entry(struct vr_st_entry *e, const char *name, json_t *v, const char *path,
                       uint64_t data_len, struct vr_err *err)
{
    if (!json_is_object(v))
        return vr_err_set(err, VR_ERR_INPUT, path, 0, "tensor '%s': header entry is not an object",
                          name);
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return vr_err_set(err, VR_ERR_INPUT, path, 0, "tensor '%s': unknown header field '%s'",
                              name, key);
    }
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
           *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt))
        return vr_err_set(err, VR_ERR_INPUT, path, 0, "tensor '%s': 'dtype' missing or not a string",
                          name);
    if (vr_dtype_parse(json_string_value(dt), &e->dtype))
        return vr_err_set(err, VR_ERR_INPUT, path, 0, "tensor '%s': unknown dtype '%s'", name,
                          json_string_value(dt));
    if (!json_is_array(sh))
        return vr_err_set(err, VR_ERR_INPUT, path, 0, "tensor '%s': 'shape' missing or not a list",
                          name);
    if (json_array_size(sh) > VR_MAX_DIMS)
        return vr_err_set(err, VR_ERR_INPUT, path, 0,
                          "tensor '%s' has %zu dimensions, vr supports at most %d", name,
                          json_array_size(sh), VR_MAX_DIMS);
    e->ndim = (int)json_array_size(sh);
    uint64_t numel = 1;
    int overflow = 0;
    for (int i = 0; i < e->ndim; i++) {
        json_t *d = json_array_get(sh, (size_t)i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return vr_err_set(err, VR_ERR_INPUT, path, 0,
                              "tensor '%s': shape entry %d is not a non-negative integer", name, i);
        e->shape[i] = json_integer_value(d);
        uint64_t s = (uint64_t)e->shape[i];
        if (s && numel > UINT64_MAX / s) overflow = 1;
        numel *= s;
    }
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        !json_is_integer(json_array_get(off, 0)) || !json_is_integer(json_array_get(off, 1)) ||
        json_integer_value(json_array_get(off, 0)) < 0 ||
        json_integer_value(json_array_get(off, 1)) < 0)
        return vr_err_set(err, VR_ERR_INPUT, path, 0,
                          "tensor '%s': 'data_offsets' must be two non-negative integers", name);
    e->begin = (uint64_t)json_integer_value(json_array_get(off, 0));
    e->end = (uint64_t)json_integer_value(json_array_get(off, 1));
    if (e->end < e->begin)
        return vr_err_set(err, VR_ERR_INPUT, path, 0, "tensor '%s': data_offsets end %llu < begin %llu",
                          name, (unsigned long long)e->end, (unsigned long long)e->begin);
    if (e->end > data_len)
        return vr_err_set(err, VR_ERR_INPUT, path, 0,
                          "tensor '%s': data_offsets end %llu is past the end of the data (%llu bytes)",
                          name, (unsigned long long)e->end, (unsigned long long)data_len);
    size_t es = vr_dtype_size(e->dtype);
    if (overflow || numel > UINT64_MAX / es || numel * es != e->end - e->begin)
        return vr_err_set(err, VR_ERR_INPUT, path, 0,
                          "tensor '%s': %llu bytes in the file but dtype %s x shape needs %s%llu",
                          name, (unsigned long long)(e->end - e->begin), vr_dtype_name(e->dtype),
                          overflow || numel > UINT64_MAX / es ? "more than " : "",
                          overflow || numel > UINT64_MAX / es ? (unsigned long long)UINT64_MAX
                                                              : (unsigned long long)(numel * es));
    e->name = vr_xstrdup(name);
    return 0;
}

/* Open, check and map path whole into st (st->map, st->size, st->path). */
static int map_file(struct vr_safetensors *st, const char *path, struct vr_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vr_err_sys(err, path, "cannot open");
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return vr_err_sys(err, path, "cannot stat");
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return vr_err_set(err, VR_ERR_INPUT, path, 0, "not a regular file");
    }
    st->size = (size_t)sb.st_size;
    if (st->size < 8) {
        close(fd);
        return vr_err_set(err, VR_ERR_INPUT, path, 0,
                          "file is %zu bytes, too short for a safetensors header", st->size);
    }
    void *m = mmap(NULL, st->size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return vr_err_sys(err, path, "cannot mmap");
    st->map = m;
    st->path = vr_xstrdup(path);
    return 0;
}

/* The header's entries of the object h into st->t (st->n of them), and its
 * __metadata__ (strings only) into st->metadata. */
static int read_entries(struct vr_safetensors *st, json_t *h, const char *path, struct vr_err *err)
{
    st->t = vr_xcalloc(json_object_size(h) + 1, sizeof *st->t);
    const char *key;
    json_t *val;
    json_object_foreach(h, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(val))
                return vr_err_set(err, VR_ERR_INPUT, path, 0, "'__metadata__' is not an object");
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv))
                    return vr_err_set(err, VR_ERR_INPUT, path, 0,
                                      "'__metadata__' value '%s' is not a string", mk);
            }
            st->metadata = json_incref(val);
            continue;
        }
        if (parse_entry(&st->t[st->n], key, val, path, st->data_len, err)) return -1;
        st->n++;
    }
    return 0;
}

/* The header of the mapped file: its length in range, then the JSON object
 * it holds (read_entries); sets st->data and st->data_len. */
static int read_header(struct vr_safetensors *st, const char *path, struct vr_err *err)
{
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | st->map[i];
    if (hlen > VR_ST_MAX_HEADER)
        return vr_err_set(err, VR_ERR_INPUT, path, 0, "header length %llu exceeds the %u-byte limit",
                          (unsigned long long)hlen, VR_ST_MAX_HEADER);
    if (hlen > st->size - 8)
        return vr_err_set(err, VR_ERR_INPUT, path, 0,
                          "header length %llu is past the end of the file (%zu bytes): truncated?",
                          (unsigned long long)hlen, st->size);
    if (hlen < 2 || st->map[8] != '{')
        return vr_err_set(err, VR_ERR_INPUT, path, 0, "header does not start with '{'");
    json_error_t je;
    json_t *h = json_loadb((const char *)st->map + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!h)
        return vr_err_set(err, VR_ERR_INPUT, path, 0, "header is not valid JSON: %s (byte %d)", je.text,
                          je.position);
    if (!json_is_object(h)) {
        json_decref(h);
        return vr_err_set(err, VR_ERR_INPUT, path, 0, "header is not a JSON object");
    }
    st->data = st->map + 8 + hlen;
    st->data_len = st->size - 8 - hlen;
    int rc = read_entries(st, h, path, err);
    json_decref(h);
    return rc;
}

/* The tensors must tile [0, data_len) exactly; sorts st->t by offset. */
static int check_tiling(struct vr_safetensors *st, const char *path, struct vr_err *err)
{
    qsort(st->t, (size_t)st->n, sizeof *st->t, cmp_begin);
    uint64_t at = 0;
    for (int i = 0; i < st->n; i++) {
        if (st->t[i].begin != at) {
            if (st->t[i].begin < at)
                return vr_err_set(err, VR_ERR_INPUT, path, 0, "tensor '%s' overlaps tensor '%s'",
                                  st->t[i].name, st->t[i - 1].name);
            return vr_err_set(err, VR_ERR_INPUT, path, 0,
                              "gap of %llu bytes before tensor '%s' (offsets must tile the data)",
                              (unsigned long long)(st->t[i].begin - at), st->t[i].name);
        }
        at = st->t[i].end;
    }
    if (at != st->data_len)
        return vr_err_set(err, VR_ERR_INPUT, path, 0,
                          "tensors cover %llu bytes but the file holds %llu after the header",
                          (unsigned long long)at, (unsigned long long)st->data_len);
    return 0;
}

int vr_safetensors_open(struct vr_safetensors *st, const char *path, struct vr_err *err)
{
    memset(st, 0, sizeof *st);
    if (map_file(st, path, err)) return -1;
    if (read_header(st, path, err) || check_tiling(st, path, err)) {
        vr_safetensors_close(st);
        return -1;
    }
    st->by_name = vr_xmalloc(((size_t)st->n + 1) * sizeof *st->by_name);
    for (int i = 0; i < st->n; i++) st->by_name[i] = i;
    qsort_r(st->by_name, (size_t)st->n, sizeof *st->by_name, cmp_name_idx, st->t);
    for (int i = 1; i < st->n; i++)
        VR_ASSERT(strcmp(st->t[st->by_name[i - 1]].name, st->t[st->by_name[i]].name) < 0);
    return 0;
}

void vr_safetensors_close(struct vr_safetensors *st)
{
    if (st->map) munmap((void *)st->map, st->size);
    for (int i = 0; i < st->n; i++) free(st->t[i].name);
    free(st->t);
    free(st->by_name);
    free(st->path);
    if (st->metadata) json_decref(st->metadata);
    memset(st, 0, sizeof *st);
}

const struct vr_st_entry *vr_safetensors_find(const struct vr_safetensors *st, const char *name)
{
    int lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const struct vr_st_entry *e = &st->t[st->by_name[mid]];
        int c = strcmp(name, e->name);
        if (c == 0) return e;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

static const struct vr_st_entry *find_or_err(const struct vr_safetensors *st, const char *name,
                                             struct vr_err *err)
{
    const struct vr_st_entry *e = vr_safetensors_find(st, name);
    if (!e) vr_err_set(err, VR_ERR_INPUT, st->path, 0, "no tensor named '%s'", name);
    return e;
}

int vr_safetensors_view(const struct vr_safetensors *st, const char *name, struct vr_tensor *out,
                        struct vr_err *err)
{
    const struct vr_st_entry *e = find_or_err(st, name, err);
    if (!e) return -1;
    const uint8_t *p = st->data + e->begin;
    if ((uintptr_t)p % vr_dtype_size(e->dtype))
        return vr_err_set(err, VR_ERR_INPUT, st->path, 0,
                          "tensor '%s' is not aligned to its %zu-byte elements", name,
                          vr_dtype_size(e->dtype));
    vr_tensor_view(out, e->dtype, e->ndim, e->shape, (void *)p);
    return 0;
}

int vr_safetensors_read(const struct vr_safetensors *st, const char *name, struct vr_tensor *out,
                        struct vr_err *err)
{
    const struct vr_st_entry *e = find_or_err(st, name, err);
    if (!e) return -1;
    if (vr_tensor_alloc(out, e->dtype, e->ndim, e->shape, err)) return -1;
    memcpy(out->data, st->data + e->begin, e->end - e->begin);
    return 0;
}

/* ---- writing ---- */

struct worder {
    const char *name;
    const struct vr_tensor *t;
    int index; /* position in the caller's list, for the fill callback */
};

/* The reference's order is its Dtype enum, which is ours but for the two F8
 * types; largest first, it also sorts by element size. */
static int dtype_rank(enum vr_dtype dt)
{
    if (dt == VR_DTYPE_F8_E4M3) return VR_DTYPE_F8_E5M2;
    if (dt == VR_DTYPE_F8_E5M2) return VR_DTYPE_F8_E4M3;
    return (int)dt;
}

static int cmp_worder(const void *a, const void *b)
{
    const struct worder *x = a, *y = b;
    int rx = dtype_rank(x->t->dtype), ry = dtype_rank(y->t->dtype);
    if (rx != ry) return rx > ry ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The JSON header of the n tensors w (in file order), padded with spaces to
 * a multiple of 8 bytes. */
static void put_header(struct vr_buf *h, const struct worder *w, int n, json_t *metadata)
{
    vr_buf_putc(h, '{');
    int first = 1;
    if (metadata && json_object_size(metadata)) {
        vr_buf_puts(h, "\"__metadata__\":");
        vr_json_dump(h, metadata);
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const struct vr_tensor *t = w[i].t;
        uint64_t nb = vr_tensor_nbytes(t);
        if (!first) vr_buf_putc(h, ',');
        first = 0;
        vr_json_dump_string(h, w[i].name, strlen(w[i].name));
        vr_buf_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", vr_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            vr_buf_printf(h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        vr_buf_printf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                      (unsigned long long)(off + nb));
        off += nb;
    }
    vr_buf_putc(h, '}');
    while (h->len % 8) vr_buf_putc(h, ' ');
}

/* vr_safetensors_write, where o->fill gets ids[i] for the caller's index of
 * tensor i (ids NULL: i). */
static int st_write(const char *path, int n, const char *const *names,
                    const struct vr_tensor *tensors, const int *ids,
                    const struct vr_st_write_opts *o, struct vr_err *err)
{
    static const struct vr_st_write_opts dflt;
    if (!o) o = &dflt;
    struct worder *w = vr_xmalloc(((size_t)n + 1) * sizeof *w);
    for (int i = 0; i < n; i++) {
        w[i].name = names[i];
        w[i].t = &tensors[i];
        w[i].index = ids ? ids[i] : i;
        if (vr_tensor_numel(&tensors[i]) < 0) {
            free(w);
            return vr_err_set(err, VR_ERR_USAGE, path, 0, "tensor '%s' has an invalid shape",
                              names[i]);
        }
    }
    qsort(w, (size_t)n, sizeof *w, cmp_worder);
    for (int i = 1; i < n; i++)
        if (strcmp(w[i].name, w[i - 1].name) == 0) {
            vr_err_set(err, VR_ERR_USAGE, path, 0, "tensor name '%s' given twice", w[i].name);
            free(w);
            return -1;
        }
    struct vr_buf h = {0};
    put_header(&h, w, n, o->metadata);
    size_t len = h.len;
    uint8_t hl[8];
    for (int i = 0; i < 8; i++) hl[i] = (uint8_t)((uint64_t)len >> (8 * i));

    struct vr_atomic a;
    int rc = -1;
    void *buf = NULL;
    if (vr_atomic_open(&a, path, err)) goto out;
    a.nosync = o->nosync != 0;
    if (vr_atomic_write(&a, hl, 8, err) || vr_atomic_write(&a, h.p, len, err)) goto abort;
    size_t cap = 0;
    for (int i = 0; i < n; i++) {
        size_t nb = vr_tensor_nbytes(w[i].t);
        const void *p = w[i].t->data;
        if (o->fill) {
            if (nb > cap) {
                free(buf);
                buf = malloc(nb ? nb : 1);
                cap = nb;
                if (!buf) {
                    vr_err_set(err, VR_ERR_SYS, path, 0, "out of memory for tensor '%s'", w[i].name);
                    goto abort;
                }
            }
            if (o->fill(o->ctx, w[i].index, buf, nb, err)) goto abort;
            p = buf;
        }
        if (vr_atomic_write(&a, p, nb, err)) goto abort;
    }
    rc = vr_atomic_commit(&a, err);
    goto out;
abort:
    vr_atomic_abort(&a);
out:
    free(buf);
    vr_buf_release(&h);
    free(w);
    return rc;
}

int vr_safetensors_write(const char *path, int n, const char *const *names,
                         const struct vr_tensor *tensors, const struct vr_st_write_opts *o,
                         struct vr_err *err)
{
    return st_write(path, n, names, tensors, NULL, o, err);
}

/* ---- sharded sets ---- */

/* The distinct shard names of weight_map wm, in first-seen order, into
 * *out (malloc'ed, pointing into wm; *ns of them); each must be a file name
 * in index's folder. */
static int shard_names(json_t *wm, const char *index, const char ***out, int *ns, struct vr_err *err)
{
    const char *key;
    json_t *val;
    const char **shards = vr_xmalloc((json_object_size(wm) + 1) * sizeof *shards);
    int n = 0;
    json_object_foreach(wm, key, val) {
        if (!json_is_string(val)) {
            free(shards);
            return vr_err_set(err, VR_ERR_INPUT, index, 0, "weight_map['%s'] is not a file name", key);
        }
        const char *f = json_string_value(val);
        if (strchr(f, '/') || strcmp(f, "..") == 0) {
            free(shards);
            return vr_err_set(err, VR_ERR_INPUT, index, 0,
                              "weight_map['%s']: shard '%s' is not in the folder", key, f);
        }
        int seen = 0;
        for (int i = 0; i < n && !seen; i++) seen = strcmp(shards[i], f) == 0;
        if (!seen) shards[n++] = f;
    }
    *out = shards;
    *ns = n;
    return 0;
}

/* Open the shards beside index into s, then check that every tensor of
 * weight_map wm is in the shard it names. */
static int open_shards(struct vr_stset *s, const char *index, json_t *wm, const char **shards, int ns,
                       struct vr_err *err)
{
    s->files = vr_xcalloc((size_t)ns + 1, sizeof *s->files);
    char *dir = vr_path_dir(index);
    for (int i = 0; i < ns; i++) {
        char *p = vr_path_join(dir, shards[i]);
        int rc = vr_safetensors_open(&s->files[i], p, err);
        free(p);
        if (rc) {
            free(dir);
            return -1;
        }
        s->nfiles++;
    }
    free(dir);
    const char *key;
    json_t *val;
    json_object_foreach(wm, key, val) {
        int i = 0;
        while (strcmp(shards[i], json_string_value(val))) i++;
        if (!vr_safetensors_find(&s->files[i], key))
            return vr_err_set(err, VR_ERR_INPUT, index, 0, "tensor '%s' is not in shard '%s'", key,
                              json_string_value(val));
    }
    return 0;
}

/* s from a model.safetensors.index.json and the shards it lists. */
static int open_index(struct vr_stset *s, const char *index, struct vr_err *err)
{
    json_error_t je;
    json_t *j = json_load_file(index, JSON_REJECT_DUPLICATES, &je);
    if (!j) return vr_err_set(err, VR_ERR_INPUT, index, je.line, "invalid JSON: %s", je.text);
    json_t *wm = json_object_get(j, "weight_map");
    const char **shards = NULL;
    int ns = 0, rc = -1;
    if (!json_is_object(wm))
        vr_err_set(err, VR_ERR_INPUT, index, 0, "no 'weight_map' object");
    else if (shard_names(wm, index, &shards, &ns, err) == 0)
        rc = open_shards(s, index, wm, shards, ns, err);
    free(shards);
    json_decref(j);
    if (rc) vr_stset_close(s);
    return rc;
}

int vr_stset_open(struct vr_stset *s, const char *path, struct vr_err *err)
{
    memset(s, 0, sizeof *s);
    struct stat sb;
    if (stat(path, &sb) != 0) return vr_err_sys(err, path, "cannot open");
    char *file = NULL, *index = NULL;
    if (S_ISDIR(sb.st_mode)) {
        index = vr_path_join(path, "model.safetensors.index.json");
        if (access(index, F_OK) != 0) {
            free(index);
            index = NULL;
            file = vr_path_join(path, "model.safetensors");
        }
    } else {
        size_t n = strlen(path);
        if (n > 5 && strcmp(path + n - 5, ".json") == 0) index = vr_xstrdup(path);
        else file = vr_xstrdup(path);
    }
    if (index) {
        int rc = open_index(s, index, err);
        free(index);
        return rc;
    }
    s->files = vr_xcalloc(1, sizeof *s->files);
    int rc = vr_safetensors_open(&s->files[0], file, err);
    free(file);
    if (rc) {
        free(s->files);
        s->files = NULL;
        return -1;
    }
    s->nfiles = 1;
    return 0;
}

void vr_stset_close(struct vr_stset *s)
{
    for (int i = 0; i < s->nfiles; i++) vr_safetensors_close(&s->files[i]);
    free(s->files);
    memset(s, 0, sizeof *s);
}

const struct vr_st_entry *vr_stset_find(const struct vr_stset *s, const char *name,
                                        const struct vr_safetensors **file)
{
    for (int i = 0; i < s->nfiles; i++) {
        const struct vr_st_entry *e = vr_safetensors_find(&s->files[i], name);
        if (e) {
            if (file) *file = &s->files[i];
            return e;
        }
    }
    return NULL;
}

int vr_stset_write(const char *dir, int n, const char *const *names,
                   const struct vr_tensor *tensors, uint64_t max_shard_bytes,
                   const struct vr_st_write_opts *o, struct vr_err *err)
{
    if (vr_mkdir_p(dir, err)) return -1;
    uint64_t total = 0;
    for (int i = 0; i < n; i++) total += vr_tensor_nbytes(&tensors[i]);
    if (max_shard_bytes == 0 || total <= max_shard_bytes) {
        char *p = vr_path_join(dir, "model.safetensors");
        int rc = st_write(p, n, names, tensors, NULL, o, err);
        free(p);
        if (rc == 0) { /* a stale index would shadow the new file */
            p = vr_path_join(dir, "model.safetensors.index.json");
            unlink(p);
            free(p);
        }
        return rc;
    }
    /* greedy packing in the given order, like transformers' shard splitting */
    int *shard = vr_xmalloc(((size_t)n + 1) * sizeof *shard);
    int nshards = 0;
    uint64_t cur = 0;
    for (int i = 0; i < n; i++) {
        uint64_t b = vr_tensor_nbytes(&tensors[i]);
        if (nshards == 0 || (cur > 0 && cur + b > max_shard_bytes)) nshards++, cur = 0;
        cur += b;
        shard[i] = nshards - 1;
    }
    const char **sn = vr_xmalloc(((size_t)n + 1) * sizeof *sn);
    struct vr_tensor *st = vr_xmalloc(((size_t)n + 1) * sizeof *st);
    int *ids = vr_xmalloc(((size_t)n + 1) * sizeof *ids);
    json_t *wm = json_object();
    int rc = 0;
    for (int k = 0; k < nshards && rc == 0; k++) {
        char fname[64];
        snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", k + 1, nshards);
        int m = 0;
        for (int i = 0; i < n; i++)
            if (shard[i] == k) {
                sn[m] = names[i];
                ids[m] = i;
                st[m++] = tensors[i];
                json_object_set_new(wm, names[i], json_string(fname));
            }
        char *p = vr_path_join(dir, fname);
        rc = st_write(p, m, sn, st, ids, o, err);
        free(p);
    }
    if (rc == 0) {
        json_t *idx = json_pack("{s:{s:I},s:o}", "metadata", "total_size", (json_int_t)total,
                                "weight_map", json_incref(wm));
        char *p = vr_path_join(dir, "model.safetensors.index.json");
        rc = vr_json_write_file(p, idx, JSON_SORT_KEYS, err);
        free(p);
        json_decref(idx);
    }
    json_decref(wm);
    free(sn);
    free(st);
    free(ids);
    free(shard);
    return rc;
}

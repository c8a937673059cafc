/* preprocess.c: Qwen2-VL image preprocessing (see preprocess.h), the CPU
 * reference and the fast path at once: every step is either integer (the
 * resampler) or a per-byte table, so there is nothing to reorder. Used by
 * vr-encode; the golden test compares it with transformers' output. */
#include "preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileset.h"
#include "fs.h"
#include "resample.h"

void vr_preproc_defaults(struct vr_preproc *p)
{
    static const double mean[3] = {0.48145466, 0.4578275, 0.40821073};
    static const double std[3] = {0.26862954, 0.26130258, 0.27577711};
    memset(p, 0, sizeof *p);
    p->min_pixels = 3136;
    p->max_pixels = 12845056;
    p->patch_size = 14;
    p->temporal_patch_size = 2;
    p->merge_size = 2;
    p->resample = VR_FILTER_BICUBIC;
    p->do_resize = p->do_rescale = p->do_normalize = 1;
    p->rescale_factor = 1.0 / 255.0;
    memcpy(p->mean, mean, sizeof mean);
    memcpy(p->std, std, sizeof std);
    p->min_side = 0;
    p->pillow = VR_PILLOW_DEFAULT;
}

int vr_preproc_check(const struct vr_preproc *p, struct vr_err *err)
{
#define BAD(...) vr_err_set(err, VR_ERR_USAGE, NULL, 0, __VA_ARGS__)
    if (p->min_pixels < 1 || p->min_pixels > (1LL << 30))
        return BAD("min_pixels %lld is out of range [1, 2^30]", (long long)p->min_pixels);
    if (p->max_pixels < p->min_pixels || p->max_pixels > (1LL << 30))
        return BAD("max_pixels %lld is out of range [min_pixels %lld, 2^30]",
                   (long long)p->max_pixels, (long long)p->min_pixels);
    if (p->patch_size < 1 || p->patch_size > 1024)
        return BAD("patch_size %d is out of range [1, 1024]", p->patch_size);
    if (p->temporal_patch_size < 1 || p->temporal_patch_size > 16)
        return BAD("temporal_patch_size %d is out of range [1, 16]", p->temporal_patch_size);
    if (p->merge_size < 1 || p->merge_size > 16)
        return BAD("merge_size %d is out of range [1, 16]", p->merge_size);
    if (!vr_filter_name(p->resample))
        return BAD("resample %d is not one of PIL's convolution filters 1..5 (0, nearest, is "
                   "not implemented)", p->resample);
    if (!isfinite(p->rescale_factor)) return BAD("rescale_factor is not finite");
    for (int c = 0; c < 3; c++)
        if (!isfinite(p->mean[c]) || !isfinite(p->std[c]) || (float)p->std[c] == 0.0f)
            return BAD("image_mean/image_std[%d] must be finite with a non-zero std", c);
    if (p->pillow < 1 || p->pillow > 99) return BAD("pillow version %d is out of range", p->pillow);
    if (p->min_side < 0 || p->min_side > 4096)
        return BAD("min_side %d is out of range [0, 4096]", p->min_side);
    return 0;
#undef BAD
}

/* ---- preprocessor_config.json ---- */

static int get_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   const char *file, struct vr_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)))
        d = json_real_value(v);
    else return vr_err_set(err, VR_ERR_INPUT, file, 0, "'%s' is not an integer", key);
    if (d < (double)lo || d > (double)hi)
        return vr_err_set(err, VR_ERR_INPUT, file, 0, "'%s' is %.0f, out of range [%lld, %lld]",
                          key, d, (long long)lo, (long long)hi);
    *out = (int64_t)d;
    return 0;
}

static int get_small(json_t *o, const char *key, int lo, int hi, int *out, const char *file,
                     struct vr_err *err)
{
    int64_t v = *out;
    if (get_int(o, key, lo, hi, &v, file, err)) return -1;
    *out = (int)v;
    return 0;
}

static int get_bool(json_t *o, const char *key, int *out, const char *file, struct vr_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v))
        return vr_err_set(err, VR_ERR_INPUT, file, 0, "'%s' is not true or false", key);
    *out = json_is_true(v);
    return 0;
}

static int get_real(json_t *o, const char *key, double *out, const char *file,
                    struct vr_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return vr_err_set(err, VR_ERR_INPUT, file, 0, "'%s' is not a number", key);
    *out = json_number_value(v);
    return 0;
}

static int get_triple(json_t *o, const char *key, double out[3], const char *file,
                      struct vr_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (json_is_number(v)) { /* one value for every channel, as transformers allows */
        out[0] = out[1] = out[2] = json_number_value(v);
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) != 3)
        return vr_err_set(err, VR_ERR_INPUT, file, 0, "'%s' is not a list of 3 numbers", key);
    for (int c = 0; c < 3; c++) {
        json_t *x = json_array_get(v, (size_t)c);
        if (!json_is_number(x))
            return vr_err_set(err, VR_ERR_INPUT, file, 0, "'%s'[%d] is not a number", key, c);
        out[c] = json_number_value(x);
    }
    return 0;
}

static int apply(struct vr_preproc *p, json_t *o, const char *file, struct vr_err *err);

int vr_preproc_load(struct vr_preproc *p, const char *path, struct vr_err *err)
{
    char *file;
    size_t n = strlen(path);
    if (n >= 5 && strcmp(path + n - 5, ".json") == 0) file = vr_xstrdup(path);
    else if (vr_fileset_settle(path, err)) return -1; /* a folder: one save's files (fileset.h) */
    else file = vr_path_join(path, "preprocessor_config.json");
    json_error_t je;
    json_t *o = NULL;
    int rc = -1;
    struct stat sb;
    if (strcmp(file, path) != 0 && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode) &&
        access(file, F_OK) != 0) {
        rc = 0; /* a checkpoint without one keeps p */
        goto out;
    }
    o = json_load_file(file, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        if (je.line > 0) vr_err_set(err, VR_ERR_INPUT, file, je.line, "%s", je.text);
        else vr_err_set(err, VR_ERR_INPUT, file, 0, "%s", je.text);
        goto out;
    }
    if (!json_is_object(o)) {
        vr_err_set(err, VR_ERR_INPUT, file, 0, "not a JSON object");
        goto out;
    }
    if (apply(p, o, file, err)) goto out;
    rc = 0;
out:
    json_decref(o);
    free(file);
    return rc;
}

/* Apply the keys of o over p (p unchanged on failure). */
static int apply(struct vr_preproc *p, json_t *o, const char *file, struct vr_err *err)
{
    struct vr_preproc q = *p;
    const int64_t big = 1LL << 40;
    json_t *size = json_object_get(o, "size");
    if (size && json_is_object(size)) {
        if (get_int(size, "shortest_edge", 0, big, &q.min_pixels, file, err) ||
            get_int(size, "longest_edge", 0, big, &q.max_pixels, file, err))
            return -1;
    }
    int filter = q.resample;
    if (get_int(o, "min_pixels", 0, big, &q.min_pixels, file, err) ||
        get_int(o, "max_pixels", 0, big, &q.max_pixels, file, err) ||
        get_small(o, "patch_size", 1, 1024, &q.patch_size, file, err) ||
        get_small(o, "temporal_patch_size", 1, 16, &q.temporal_patch_size, file, err) ||
        get_small(o, "merge_size", 1, 16, &q.merge_size, file, err) ||
        get_small(o, "resample", 0, 5, &filter, file, err) ||
        get_bool(o, "do_resize", &q.do_resize, file, err) ||
        get_bool(o, "do_rescale", &q.do_rescale, file, err) ||
        get_bool(o, "do_normalize", &q.do_normalize, file, err) ||
        get_real(o, "rescale_factor", &q.rescale_factor, file, err) ||
        get_triple(o, "image_mean", q.mean, file, err) ||
        get_triple(o, "image_std", q.std, file, err))
        return -1;
    q.resample = filter;
    if (vr_preproc_check(&q, err)) {
        vr_err_locate(err, file, 0);
        err->kind = VR_ERR_INPUT;
        return -1;
    }
    *p = q;
    return 0;
}

int vr_preproc_parse(struct vr_preproc *p, json_t *o, const char *file, struct vr_err *err)
{
    if (!json_is_object(o)) return vr_err_set(err, VR_ERR_INPUT, file, 0, "not a JSON object");
    struct vr_preproc q = *p;
    if (get_small(o, "min_side", 0, 4096, &q.min_side, file, err) ||
        get_small(o, "pillow", 1, 99, &q.pillow, file, err) || apply(&q, o, file, err))
        return -1;
    *p = q;
    return 0;
}

void vr_preproc_hash(const struct vr_preproc *p, struct vr_hasher *h)
{
    vr_hasher_str(h, "vr_preproc/1");
    vr_hasher_u64(h, (uint64_t)p->min_pixels);
    vr_hasher_u64(h, (uint64_t)p->max_pixels);
    vr_hasher_u64(h, (uint64_t)p->patch_size);
    vr_hasher_u64(h, (uint64_t)p->temporal_patch_size);
    vr_hasher_u64(h, (uint64_t)p->merge_size);
    vr_hasher_u64(h, (uint64_t)p->resample);
    vr_hasher_u64(h, (uint64_t)(p->do_resize | p->do_rescale << 1 | p->do_normalize << 2));
    vr_hasher_f64(h, p->rescale_factor);
    for (int c = 0; c < 3; c++) {
        vr_hasher_f64(h, p->mean[c]);
        vr_hasher_f64(h, p->std[c]);
    }
    vr_hasher_u64(h, (uint64_t)p->min_side);
    vr_hasher_u64(h, (uint64_t)(p->pillow >= 13 ? 13 : 12)); /* only the pass order differs */
}

json_t *vr_preproc_json(const struct vr_preproc *p)
{
    return json_pack("{s:I,s:I,s:i,s:i,s:i,s:i,s:b,s:b,s:f,s:b,s:[f,f,f],s:[f,f,f],s:i,s:i}",
                     "min_pixels", (json_int_t)p->min_pixels, "max_pixels",
                     (json_int_t)p->max_pixels, "patch_size", p->patch_size,
                     "temporal_patch_size", p->temporal_patch_size, "merge_size", p->merge_size,
                     "resample", p->resample, "do_resize", p->do_resize, "do_rescale",
                     p->do_rescale, "rescale_factor", p->rescale_factor, "do_normalize",
                     p->do_normalize, "image_mean", p->mean[0], p->mean[1], p->mean[2],
                     "image_std", p->std[0], p->std[1], p->std[2], "min_side", p->min_side,
                     "pillow", p->pillow);
}

/* ---- sizes ---- */

int vr_smart_resize(int height, int width, int factor, long min_pixels, long max_pixels,
                    int *out_h, int *out_w, struct vr_err *err)
{
    if (height < 1 || width < 1)
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "image has size %dx%d", width, height);
    if (factor < 1) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "factor %d < 1", factor);
    int lo = height < width ? height : width, hi = height < width ? width : height;
    double ratio = (double)hi / (double)lo;
    if (ratio > 200)
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                          "absolute aspect ratio must be smaller than 200, got %.17g (%dx%d)",
                          ratio, width, height);
    /* Python: round(height / factor) * factor, round() halving to even; the
     * products are Python ints, so int64 here */
    long long h_bar = (long long)rint((double)height / factor) * factor;
    long long w_bar = (long long)rint((double)width / factor) * factor;
    double hw = (double)height * (double)width; /* exact: both < 2^31 */
    if (h_bar * w_bar > max_pixels) {
        double beta = sqrt(hw / (double)max_pixels);
        h_bar = (long long)floor((double)height / beta / factor) * factor;
        w_bar = (long long)floor((double)width / beta / factor) * factor;
        if (h_bar < factor) h_bar = factor;
        if (w_bar < factor) w_bar = factor;
    } else if (h_bar * w_bar < min_pixels) {
        double beta = sqrt((double)min_pixels / hw);
        h_bar = (long long)ceil((double)height * beta / factor) * factor;
        w_bar = (long long)ceil((double)width * beta / factor) * factor;
    }
    if (h_bar < factor || w_bar < factor || h_bar > (1LL << 30) || w_bar > (1LL << 30) ||
        h_bar * w_bar > (1LL << 31))
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                          "image of %dx%d resizes to %lldx%lld, outside [%d, 2^31] pixels",
                          width, height, w_bar, h_bar, factor);
    *out_h = (int)h_bar;
    *out_w = (int)w_bar;
    return 0;
}

void vr_min_side_size(int w, int h, int min_side, int *out_w, int *out_h)
{
    *out_w = w;
    *out_h = h;
    if (min_side <= 0 || (w >= min_side && h >= min_side)) return;
    /* VLM-R1: new = int(long * (min_side / short)), in doubles */
    if (w < h) {
        *out_w = min_side;
        *out_h = (int)((double)h * ((double)min_side / (double)w));
    } else {
        *out_h = min_side;
        *out_w = (int)((double)w * ((double)min_side / (double)h));
    }
}

int vr_preprocess_size(const struct vr_preproc *p, int width, int height, int *out_w, int *out_h,
                       struct vr_err *err)
{
    int w, h;
    vr_min_side_size(width, height, p->min_side, &w, &h);
    int factor = p->patch_size * p->merge_size;
    if (p->do_resize)
        return vr_smart_resize(h, w, factor, (long)p->min_pixels, (long)p->max_pixels, out_h,
                               out_w, err);
    if (h % factor || w % factor)
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                          "image of %dx%d is not a multiple of %d a side and do_resize is off",
                          w, h, factor);
    *out_w = w;
    *out_h = h;
    return 0;
}

/* ---- pixels ---- */

void vr_pixels_release(struct vr_pixels *px)
{
    free(px->data);
    memset(px, 0, sizeof *px);
}

void vr_patchify(const struct vr_preproc *p, const uint8_t *rgb, int w, int h, float *out)
{
    /* The slow path's arithmetic, per byte value: float32(float64(u8) *
     * rescale), then (x - float32(mean)) / float32(std) in float32. A table
     * of 3 x 256 floats holds every value the image can produce. */
    float lut[3][256];
    for (int c = 0; c < 3; c++) {
        float m = (float)p->mean[c], s = (float)p->std[c];
        for (int v = 0; v < 256; v++) {
            float x = p->do_rescale ? (float)((double)v * p->rescale_factor) : (float)v;
            if (p->do_normalize) x = (x - m) / s;
            lut[c][v] = x;
        }
    }
    const int P = p->patch_size, T = p->temporal_patch_size, M = p->merge_size;
    const int gh = h / P, gw = w / P;
    const size_t plane = (size_t)P * (size_t)P, cols = 3 * (size_t)T * plane;
    const size_t stride = 3 * (size_t)w;
    float *row = out;
    for (int bh = 0; bh < gh / M; bh++)
        for (int bw = 0; bw < gw / M; bw++)
            for (int mh = 0; mh < M; mh++)
                for (int mw = 0; mw < M; mw++) {
                    const uint8_t *src = rgb + (size_t)((bh * M + mh) * P) * stride +
                                         (size_t)((bw * M + mw) * P) * 3;
                    for (int c = 0; c < 3; c++) {
                        float *dst = row + (size_t)c * (size_t)T * plane;
                        const float *l = lut[c];
                        for (int py = 0; py < P; py++) {
                            const uint8_t *s = src + (size_t)py * stride + c;
                            float *d = dst + (size_t)py * (size_t)P;
                            if (T == 2) { /* the image is both frames */
                                for (int px = 0; px < P; px++) d[px] = d[plane + px] = l[s[3 * px]];
                            } else {
                                for (int px = 0; px < P; px++) d[px] = l[s[3 * px]];
                                for (int t = 1; t < T; t++)
                                    memcpy(d + t * plane, d, (size_t)P * sizeof *d);
                            }
                        }
                    }
                    row += cols;
                }
}

int vr_preprocess_resize(const struct vr_preproc *p, const struct vr_image *im,
                         struct vr_image *out, struct vr_err *err)
{
    memset(out, 0, sizeof *out);
    int w1, h1, rw, rh;
    vr_min_side_size(im->w, im->h, p->min_side, &w1, &h1);
    if (vr_preprocess_size(p, im->w, im->h, &rw, &rh, err)) return -1;
    uint8_t *small = NULL, *resized = malloc((size_t)rw * (size_t)rh * 3);
    const uint8_t *src = im->px;
    int rc = -1;
    if (!resized) {
        vr_err_set(err, VR_ERR_SYS, NULL, 0, "out of memory resizing to %dx%d", rw, rh);
        goto out;
    }
    if (w1 != im->w || h1 != im->h) {
        small = malloc((size_t)w1 * (size_t)h1 * 3);
        if (!small) {
            vr_err_set(err, VR_ERR_SYS, NULL, 0, "out of memory");
            goto out;
        }
        if (vr_resample(small, w1, h1, im->px, im->w, im->h, 3, VR_FILTER_LANCZOS, p->pillow, err))
            goto out;
        src = small;
    }
    /* equal sizes copy, as PIL's resize returns a copy */
    if (vr_resample(resized, rw, rh, src, w1, h1, 3, p->resample, p->pillow, err)) goto out;
    out->w = rw, out->h = rh, out->px = resized;
    resized = NULL;
    rc = 0;
out:
    free(small);
    free(resized);
    return rc;
}

int vr_preprocess(const struct vr_preproc *p, const struct vr_image *im, struct vr_pixels *out,
                  struct vr_err *err)
{
    memset(out, 0, sizeof *out);
    struct vr_image r;
    if (vr_preprocess_resize(p, im, &r, err)) return -1;
    const int P = p->patch_size;
    out->grid_t = 1;
    out->grid_h = r.h / P;
    out->grid_w = r.w / P;
    out->width = r.w;
    out->height = r.h;
    out->rows = out->grid_t * out->grid_h * out->grid_w;
    out->cols = 3LL * p->temporal_patch_size * P * P;
    out->data = malloc((size_t)out->rows * (size_t)out->cols * sizeof(float));
    if (!out->data) {
        vr_err_set(err, VR_ERR_SYS, NULL, 0, "out of memory for %lldx%lld pixel values",
                   (long long)out->rows, (long long)out->cols);
        vr_image_release(&r);
        memset(out, 0, sizeof *out);
        return -1;
    }
    vr_patchify(p, r.px, r.w, r.h, out->data);
    vr_image_release(&r);
    return 0;
}

/* preprocess.c: image decoding, Pillow resampling and Qwen2-VL preprocessing
 * against the fixtures tests/golden/make_images.py made with PIL and
 * transformers' slow Qwen2VLImageProcessor (see that script for what each
 * holds). Run from the repository root (make test does) or set VR_SRC. */
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "golden.h"
#include "image.h"
#include "pixcache.h"
#include "preprocess.h"
#include "resample.h"
#include "safetensors.h"
#include "../tap.h"

/* ---- smart_resize ---- */

static void test_smart_resize_examples(void)
{
    /* qwen25vl.md §2.2's worked examples */
    struct vr_err err;
    static const struct {
        int h, w;
        long max;
        int want_h, want_w;
        const char *what;
    } ex[] = {
        {480, 640, 12845056, 476, 644, "640x480 -> 644x476"},
        {1080, 1920, 12845056, 1092, 1932, "1920x1080 -> 1932x1092"},
        {1080, 1920, 1003520, 728, 1316, "1920x1080, max_pixels 1003520 -> 1316x728"},
        {1, 200, 12845056, 28, 812, "aspect ratio 200 is accepted"},
        /* 70/28 = 2.5 rounds to 2 and 98/28 = 3.5 to 4, as Python's round() */
        {70, 98, 1L << 30, 56, 112, "round half to even"},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        int h = 0, w = 0;
        int rc = vr_smart_resize(ex[i].h, ex[i].w, 28, 3136, ex[i].max, &h, &w, &err);
        ok(rc == 0 && h == ex[i].want_h && w == ex[i].want_w, "smart_resize %s (got %dx%d)",
           ex[i].what, w, h);
    }
    int h, w;
    int rc = vr_smart_resize(1, 201, 28, 3136, 12845056, &h, &w, &err);
    ok(rc == -1 && strstr(err.msg, "aspect ratio must be smaller than 200"),
       "aspect ratio 201 is refused: %s", err.msg);
}

static void test_smart_resize_table(void)
{
    FILE *f = fopen(golden_path("smart_resize.txt"), "r");
    if (!ok(f != NULL, "open smart_resize.txt")) return;
    char line[256];
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        long hh, ww, mn, mx;
        char res[64];
        int eh = 0, ew = 0;
        if (sscanf(line, "%ld %ld %ld %ld %63s %d", &hh, &ww, &mn, &mx, res, &ew) < 5) continue;
        int want_err = strcmp(res, "error") == 0;
        if (!want_err) eh = atoi(res);
        struct vr_err err;
        int h = 0, w = 0;
        int rc = vr_smart_resize((int)hh, (int)ww, 28, mn, mx, &h, &w, &err);
        int good = want_err ? rc == -1 : (rc == 0 && h == eh && w == ew);
        if (!good && bad++ < 5)
            diag("%ld x %ld [%ld, %ld]: got rc %d %d x %d, want %s %d", hh, ww, mn, mx, rc, h, w,
                 res, ew);
        n++;
    }
    fclose(f);
    ok(n > 400 && bad == 0, "smart_resize equals transformers' on %d sizes (%d differ)", n, bad);
}

/* ---- decoding ---- */

static void test_decode(void)
{
    json_t *idx = golden_json("images/index.json");
    size_t i;
    json_t *e;
    json_array_foreach(idx, i, e) {
        const char *file = json_string_value(json_object_get(e, "file"));
        char path[1024];
        snprintf(path, sizeof path, "%s", golden_path("images/"));
        strncat(path, file, sizeof path - strlen(path) - 1);
        struct vr_image im;
        struct vr_err err;
        if (!ok(vr_image_load(path, VR_IMAGE_MAX_PIXELS_DEFAULT, &im, &err) == 0, "decode %s",
                file)) {
            diag("%s", err.msg);
            continue;
        }
        char sum[17];
        golden_wsum(im.px, (size_t)im.w * (size_t)im.h * 3, sum);
        const char *want = json_string_value(json_object_get(e, "wsum_rgb"));
        ok(im.w == json_integer_value(json_object_get(e, "width")) &&
               im.h == json_integer_value(json_object_get(e, "height")) && strcmp(sum, want) == 0,
           "%s (PIL mode %s): %dx%d RGB equals PIL's convert(\"RGB\")", file,
           json_string_value(json_object_get(e, "pil_mode")), im.w, im.h);
        vr_image_release(&im);
    }
    json_decref(idx);
}

/* ---- resampling ---- */

static void test_resample(void)
{
    struct vr_safetensors st;
    struct vr_err err;
    if (!ok(vr_safetensors_open(&st, golden_path("resample/cases.safetensors"), &err) == 0,
            "open resample fixtures"))
        return;
    json_t *idx = golden_json("resample/index.json");
    size_t i;
    json_t *e;
    json_array_foreach(idx, i, e) {
        const char *src = json_string_value(json_object_get(e, "input"));
        int ow = (int)json_integer_value(json_object_get(e, "width"));
        int oh = (int)json_integer_value(json_object_get(e, "height"));
        int fl = (int)json_integer_value(json_object_get(e, "filter"));
        char name[128];
        snprintf(name, sizeof name, "in.%s", src);
        struct vr_tensor in, want;
        if (vr_safetensors_view(&st, name, &in, &err)) {
            ok(0, "%s", err.msg);
            continue;
        }
        int ih = (int)in.shape[0], iw = (int)in.shape[1];
        int ch = in.ndim == 3 ? (int)in.shape[2] : 1;
        for (int simd = 0; simd <= 1; simd++)
        for (int pil = 12; pil <= 13; pil++) {
            int was = vr_resample_simd(simd);
            snprintf(name, sizeof name, "out%zu.pillow%d", i, pil);
            if (vr_safetensors_view(&st, name, &want, &err)) {
                ok(0, "%s", err.msg);
                continue;
            }
            size_t n = (size_t)ow * (size_t)oh * (size_t)ch;
            uint8_t *got = malloc(n);
            int rc = vr_resample(got, ow, oh, in.data, iw, ih, ch, fl, pil, &err);
            size_t diff = 0;
            for (size_t k = 0; rc == 0 && k < n; k++) diff += got[k] != ((uint8_t *)want.data)[k];
            ok(rc == 0 && diff == 0, "resample %s %dx%d -> %dx%d %s, Pillow %d order, %s: %zu of %zu differ",
               src, iw, ih, ow, oh, vr_filter_name(fl), pil, vr_resample_simd(-1) ? "AVX2" : "scalar", diff, n);
            free(got);
            vr_resample_simd(was);
        }
    }
    json_decref(idx);
    vr_safetensors_close(&st);
}

/* ---- preprocessing ---- */

struct totals {
    double values, exact, within; /* over the stored rows */
    int cases, bit_exact, mem_same;
    char dir[64];                 /* the cache folder */
};

static void test_preprocess_case(json_t *e, struct totals *tot)
{
    const char *fn = json_string_value(json_object_get(e, "file"));
    const char *img = json_string_value(json_object_get(e, "image"));
    char path[1024];
    snprintf(path, sizeof path, "%s", golden_path("images/"));
    strncat(path, img, sizeof path - strlen(path) - 1);
    struct vr_preproc p;
    vr_preproc_defaults(&p);
    p.min_pixels = json_integer_value(json_object_get(e, "min_pixels"));
    p.max_pixels = json_integer_value(json_object_get(e, "max_pixels"));
    p.min_side = (int)json_integer_value(json_object_get(e, "min_side"));
    /* pixel_values as later stages get them: vr-encode's cache entry (the
     * resized image), then vr_pixels_load (normalise + patchify) */
    struct vr_pixcache cache;
    struct vr_pixref ref = {0};
    struct vr_tensor pv = {0};
    int64_t grid3[3];
    struct vr_err err;
    if (vr_pixcache_init(&cache, tot->dir, &p, 0, &err) ||
        vr_pixcache_get(&cache, path, &ref, &err) ||
        vr_pixels_load(ref.file, &p, &pv, grid3, &err)) {
        ok(0, "%s: %s", fn, err.msg);
        vr_pixref_release(&ref);
        vr_pixcache_release(&cache);
        return;
    }
    struct vr_pixels px = {grid3[0], grid3[1], grid3[2], ref.input_w, ref.input_h,
                           pv.shape[0], pv.shape[1], pv.data};
    /* the in-memory path (encode_core, the fuzzer) gives the same bytes */
    {
        struct vr_image im;
        struct vr_pixels mem;
        int same = vr_image_load(path, 0, &im, &err) == 0;
        if (same) {
            same = vr_preprocess(&p, &im, &mem, &err) == 0;
            vr_image_release(&im);
        }
        if (same) {
            same = mem.rows == px.rows && mem.cols == px.cols &&
                   memcmp(mem.data, px.data, (size_t)px.rows * (size_t)px.cols * 4) == 0;
            vr_pixels_release(&mem);
        }
        tot->mem_same += same;
    }
    unlink(ref.file);
    vr_pixref_release(&ref);
    vr_pixcache_release(&cache);
    snprintf(path, sizeof path, "%s", golden_path("preprocess/"));
    strncat(path, fn, sizeof path - strlen(path) - 1);
    struct vr_safetensors st;
    struct vr_tensor grid, u8, head;
    if (vr_safetensors_open(&st, path, &err) || vr_safetensors_read(&st, "grid_thw", &grid, &err) ||
        vr_safetensors_view(&st, "u8", &u8, &err) || vr_safetensors_read(&st, "head", &head, &err)) {
        ok(0, "%s: %s", fn, err.msg);
        vr_tensor_release(&pv);
        return;
    }
    const int64_t *g = grid.data;
    ok(g[0] == px.grid_t && g[1] == px.grid_h && g[2] == px.grid_w,
       "%s: grid_thw [%lld,%lld,%lld] equals transformers' [%lld,%lld,%lld]", fn,
       (long long)px.grid_t, (long long)px.grid_h, (long long)px.grid_w, (long long)g[0],
       (long long)g[1], (long long)g[2]);
    if (px.rows != g[0] * g[1] * g[2] || px.cols != 1176) goto out;

    /* rows 0 and N-1 verbatim: the normalisation table and the layout */
    const float *h = head.data;
    int head_ok = memcmp(h, px.data, 1176 * 4) == 0 &&
                  memcmp(h + 1176, px.data + (size_t)(px.rows - 1) * 1176, 1176 * 4) == 0;
    /* the stored rows, in byte units: value v of channel c is table[c][v];
     * ours is inverted through the same table (head_ok says it is the
     * processor's) and both frames must carry it */
    float table[3][256];
    {
        uint8_t all[256 * 3];
        for (int v = 0; v < 256; v++) all[3 * v] = all[3 * v + 1] = all[3 * v + 2] = (uint8_t)v;
        struct vr_preproc q = p;
        q.patch_size = 1, q.merge_size = 1, q.temporal_patch_size = 1;
        float f[256 * 3];
        vr_patchify(&q, all, 256, 1, f);
        for (int v = 0; v < 256; v++)
            for (int c = 0; c < 3; c++) table[c][v] = f[v * 3 + c];
    }
    int64_t stride = json_integer_value(json_object_get(e, "row_stride"));
    double values = 0, exact = 0, within = 0, maxdiff = 0;
    const uint8_t *w8 = u8.data;
    for (int64_t k = 0; k < u8.shape[0]; k++) {
        const float *r = px.data + (size_t)(k * stride) * 1176;
        for (int c = 0; c < 3; c++)
            for (int t = 0; t < 2; t++)
                for (int q = 0; q < 196; q++) {
                    float want = table[c][w8[k * 588 + c * 196 + q]];
                    float got = r[(c * 2 + t) * 196 + q];
                    double d = fabs((double)got - (double)want);
                    values++;
                    exact += got == want;
                    within += d <= 0.03;
                    if (d > maxdiff) maxdiff = d;
                }
    }
    char sum[17];
    golden_wsum(px.data, (size_t)px.rows * 1176 * sizeof(float), sum);
    int bit_exact = strcmp(sum, json_string_value(json_object_get(e, "wsum_f32"))) == 0;
    ok(head_ok && within >= 0.999 * values,
       "%s: %.0f values, %.4f%% exact, %.4f%% within 0.03, max diff %.4g; all %lld rows bit-exact: %s",
       fn, values, 100 * exact / values, 100 * within / values, maxdiff, (long long)px.rows,
       bit_exact ? "yes" : "no");
    tot->values += values;
    tot->exact += exact;
    tot->within += within;
    tot->cases++;
    tot->bit_exact += bit_exact;
out:
    vr_tensor_release(&grid);
    vr_tensor_release(&head);
    vr_safetensors_close(&st);
    vr_tensor_release(&pv);
}

static void test_preprocess(void)
{
    json_t *idx = golden_json("preprocess/index.json");
    struct totals tot = {0};
    snprintf(tot.dir, sizeof tot.dir, "/tmp/vr-preprocess.XXXXXX");
    if (!ok(mkdtemp(tot.dir) != NULL, "make a cache folder")) return;
    size_t i;
    json_t *e;
    json_array_foreach(idx, i, e) test_preprocess_case(e, &tot);
    rmdir(tot.dir);
    ok(tot.cases == (int)json_array_size(idx) && tot.bit_exact == tot.cases,
       "preprocess (through the cache and vr_pixels_load): %d of %d cases bit-exact over every "
       "row; stored rows %.0f values, %.4f%% exact",
       tot.bit_exact, tot.cases, tot.values, 100 * tot.exact / tot.values);
    ok(tot.mem_same == tot.cases, "vr_preprocess in memory equals the load path in %d of %d cases",
       tot.mem_same, tot.cases);
    json_decref(idx);
}

/* ---- the small pieces ---- */

static void test_pieces(void)
{
    int w, h;
    vr_min_side_size(10, 40, 28, &w, &h);
    ok(w == 28 && h == 112, "VLM-R1 min side: 10x40 -> 28x112 (got %dx%d)", w, h);
    vr_min_side_size(40, 10, 28, &w, &h);
    ok(w == 112 && h == 28, "VLM-R1 min side: 40x10 -> 112x28 (got %dx%d)", w, h);
    vr_min_side_size(28, 28, 28, &w, &h);
    ok(w == 28 && h == 28, "VLM-R1 min side leaves 28x28 alone");

    struct vr_preproc p, q;
    vr_preproc_defaults(&p);
    struct vr_err err;
    ok(vr_preproc_check(&p, &err) == 0, "defaults pass the range checks");
    struct vr_hasher a, b;
    vr_hasher_init(&a);
    vr_preproc_hash(&p, &a);
    q = p;
    q.max_pixels--;
    vr_hasher_init(&b);
    vr_preproc_hash(&q, &b);
    struct vr_hash128 ha = vr_hasher_final(&a), hb = vr_hasher_final(&b);
    ok(ha.hi != hb.hi || ha.lo != hb.lo, "every parameter is in the hash (max_pixels)");
    q = p;
    q.resample = 0;
    ok(vr_preproc_check(&q, &err) == -1 && strstr(err.msg, "resample 0"),
       "nearest is refused: %s", err.msg);
}

/* vr_pixels_load refuses what a lookup refuses: a torn entry (data never
 * written, header intact), other parameters, a file that is no entry. */
static void test_load_bad(void)
{
    char dir[] = "/tmp/vr-pixload.XXXXXX";
    if (!ok(mkdtemp(dir) != NULL, "make a cache folder")) return;
    struct vr_preproc p;
    vr_preproc_defaults(&p);
    struct vr_pixcache cache;
    struct vr_pixref ref = {0};
    struct vr_tensor pv;
    int64_t grid[3];
    struct vr_err err;
    err.msg[0] = 0;
    int rc = vr_pixcache_init(&cache, dir, &p, 0, &err) ||
             vr_pixcache_get(&cache, golden_path("images/rgb_211x143.png"), &ref, &err);
    if (!ok(rc == 0, "make an entry %s", err.msg)) return;
    rc = vr_pixels_load(ref.file, NULL, &pv, grid, &err);
    ok(rc == 0 && pv.shape[0] == 10 * 16 && pv.shape[1] == 1176 && grid[0] == 1 &&
           grid[1] == 10 && grid[2] == 16,
       "load with the entry's own parameters: [%lld, %lld]", (long long)pv.shape[0],
       (long long)pv.shape[1]);
    vr_tensor_release(&pv);
    struct vr_preproc q = p;
    q.max_pixels = 100000;
    rc = vr_pixels_load(ref.file, &q, &pv, grid, &err);
    ok(rc == -1 && pv.data == NULL && strstr(err.msg, "other preprocessing parameters"),
       "other parameters are refused: %s", err.msg);
    /* a torn write: the header reached the disk, the image's blocks did not */
    struct stat sb;
    FILE *f = fopen(ref.file, "r+b");
    int torn = f && stat(ref.file, &sb) == 0 && fseek(f, (long)sb.st_size - 1000, SEEK_SET) == 0;
    static const char zeros[1000];
    torn = torn && fwrite(zeros, 1, sizeof zeros, f) == sizeof zeros;
    if (f) fclose(f);
    rc = torn ? vr_pixels_load(ref.file, NULL, &pv, grid, &err) : 0;
    ok(rc == -1 && strstr(err.msg, "checksum mismatch"),
       "a zeroed tail fails the checksum: %s", err.msg);
    struct vr_pixref r2 = {0};
    ok(vr_pixcache_check(&cache, ref.file, NULL, &r2, &err) == -1, "and the lookup's check");
    rc = vr_pixels_load(golden_path("preprocess/grey_199x101.small.safetensors"), NULL, &pv, grid,
                        &err);
    ok(rc == -1 && strstr(err.msg, "not a pixel cache entry"),
       "another safetensors file: %s", err.msg);
    unlink(ref.file);
    rmdir(dir);
    vr_pixref_release(&ref);
    vr_pixcache_release(&cache);
}

int main(void)
{
    test_smart_resize_examples();
    test_smart_resize_table();
    test_pieces();
    test_decode();
    test_resample();
    test_preprocess();
    test_load_bad();
    return done_testing();
}

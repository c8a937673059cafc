/* resample.c: Pillow-exact convolution resampling for 8-bit images (see
 * resample.h). Reference path and fast path at once: the arithmetic is
 * integer after the coefficients are fixed, so the loops below may be
 * reordered (the vertical pass runs tap by tap over whole rows) without
 * changing a bit. Used by vr-encode through preprocess.c.
 *
 * The steps, per axis, for an input of n samples and an output of m:
 *   scale = n / m (the input size as a float first, as Pillow's box is float)
 *   filterscale = max(scale, 1); support = filter support * filterscale
 *   for output sample i: center = (i + 0.5) * scale;
 *     taps from (int)(center - support + 0.5) to (int)(center + support + 0.5),
 *     clamped to [0, n); weight of tap j = filter((j - center + 0.5) / filterscale),
 *     then divided by the sum of the weights (double)
 *   fixed point: (int)(w * 2^22 +- 0.5) (rounded away from zero)
 *   sample = clip((2^21 + sum of in * w) >> 22, 0, 255) */
#include "resample.h"

#include "cpu/isa.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PREC 22 /* Pillow's PRECISION_BITS: 32 - 8 - 2 */

/* The weights must be computed without fused multiply-adds (with -march
 * flags that allow them they would round differently from Pillow's build and
 * move a weight by one unit), and the integer loops want GCC's -O3
 * vectoriser. clang knows neither attribute but honours the pragma. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#define NO_FMA
#define OPT3
#else
#define NO_FMA __attribute__((optimize("fp-contract=off")))
#define OPT3 __attribute__((optimize("O3")))
#endif

/* The filters as Pillow evaluates them: the same expressions in the same
 * order, so that every double comes out the same. */
static double f_box(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

static double f_bilinear(double x)
{
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double f_hamming(double x)
{
    if (x < 0.0) x = -x;
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x = x * M_PI;
    return sin(x) / x * (0.54f + 0.46f * cos(x));
}

static double f_bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc(double x)
{
    if (x == 0.0) return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double f_lanczos(double x) { return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0; }

struct filter {
    double (*f)(double);
    double support;
    const char *name;
};

static const struct filter *filter_get(int filter)
{
    static const struct filter tab[] = {
        [VR_FILTER_LANCZOS] = {f_lanczos, 3.0, "lanczos"},
        [VR_FILTER_BILINEAR] = {f_bilinear, 1.0, "bilinear"},
        [VR_FILTER_BICUBIC] = {f_bicubic, 2.0, "bicubic"},
        [VR_FILTER_BOX] = {f_box, 0.5, "box"},
        [VR_FILTER_HAMMING] = {f_hamming, 1.0, "hamming"},
    };
    if (filter < VR_FILTER_LANCZOS || filter > VR_FILTER_HAMMING) return NULL;
    return &tab[filter];
}

const char *vr_filter_name(int filter)
{
    const struct filter *f = filter_get(filter);
    return f ? f->name : NULL;
}

/* One axis: for each output sample, its first tap, its tap count, and ksize
 * fixed-point weights (unused ones zero). */
struct axis {
    int ksize;
    int *first, *count;
    int32_t *k;
};

static void axis_free(struct axis *a)
{
    free(a->first);
    free(a->count);
    free(a->k);
    memset(a, 0, sizeof *a);
}

NO_FMA static int
axis_init(struct axis *a, int in_size, int out_size, const struct filter *fl, struct vr_err *err)
{
    memset(a, 0, sizeof *a);
    double scale = (double)(float)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = fl->support * filterscale;
    double ks = ceil(support) * 2 + 1;
    if (ks > (double)(1 << 20) || (double)out_size * ks > (double)(SIZE_MAX / 8))
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "resampling %d to %d needs too many taps",
                          in_size, out_size);
    a->ksize = (int)ks;
    size_t nk = (size_t)out_size * (size_t)a->ksize;
    double *w = malloc(nk * sizeof *w);
    a->first = malloc((size_t)out_size * sizeof *a->first);
    a->count = malloc((size_t)out_size * sizeof *a->count);
    a->k = malloc(nk * sizeof *a->k);
    if (!w || !a->first || !a->count || !a->k) {
        free(w);
        axis_free(a);
        return vr_err_set(err, VR_ERR_SYS, NULL, 0, "out of memory for resampling weights");
    }
    double inv = 1.0 / filterscale;
    for (int i = 0; i < out_size; i++) {
        double center = 0.0 + (i + 0.5) * scale;
        double sum = 0.0;
        int lo = (int)(center - support + 0.5);
        if (lo < 0) lo = 0;
        int hi = (int)(center + support + 0.5);
        if (hi > in_size) hi = in_size;
        int cnt = hi - lo;
        double *wi = w + (size_t)i * (size_t)a->ksize;
        int j = 0;
        for (; j < cnt; j++) {
            double v = fl->f((j + lo - center + 0.5) * inv);
            wi[j] = v;
            sum += v;
        }
        if (sum != 0.0)
            for (j = 0; j < cnt; j++) wi[j] /= sum;
        for (j = cnt < 0 ? 0 : cnt; j < a->ksize; j++) wi[j] = 0;
        a->first[i] = lo;
        a->count[i] = cnt < 0 ? 0 : cnt;
    }
    for (size_t i = 0; i < nk; i++)
        a->k[i] = w[i] < 0 ? (int32_t)(-0.5 + w[i] * (1 << PREC))
                           : (int32_t)(0.5 + w[i] * (1 << PREC));
    free(w);
    return 0;
}

static inline uint8_t clip8(int32_t v)
{
    v >>= PREC; /* arithmetic shift: floor, as Pillow's table lookup */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* out rows [0, nrows) of width ow from in rows [row0, row0 + nrows). C is a
 * constant in the specialised copies, so the channel loop unrolls. The
 * reference; the AVX2 path below must agree with it bit for bit. */
static inline void horiz(uint8_t *out, int ow, const uint8_t *in, int iw, int row0, int nrows,
                         const int C, const struct axis *a)
{
    for (int y = 0; y < nrows; y++) {
        const uint8_t *src = in + (size_t)(row0 + y) * (size_t)iw * (size_t)C;
        uint8_t *dst = out + (size_t)y * (size_t)ow * (size_t)C;
        for (int x = 0; x < ow; x++) {
            const int32_t *k = a->k + (size_t)x * (size_t)a->ksize;
            const uint8_t *s = src + (size_t)a->first[x] * (size_t)C;
            int n = a->count[x];
            int32_t acc[4] = {1 << (PREC - 1), 1 << (PREC - 1), 1 << (PREC - 1), 1 << (PREC - 1)};
            for (int j = 0; j < n; j++)
                for (int c = 0; c < C; c++) acc[c] += (int32_t)s[j * C + c] * k[j];
            for (int c = 0; c < C; c++) dst[x * C + c] = clip8(acc[c]);
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1

/* RGB, two output pixels per 256-bit vector (pixel x in the low 128-bit
 * lane, x+1 in the high one), four taps per step. vpmaddwd multiplies 16-bit
 * pairs and adds each pair, which is fast and exact but needs 16-bit weights,
 * so each 22-bit weight is split, w = 256 * hi + lo with lo in [0, 256):
 *   sum(x * w) = 256 * sum(x * hi) + sum(x * lo),
 * both sums exact in int32 and their combination equal to the reference's
 * int32 sum (which does not overflow), so the result is bit for bit the same.
 * A 16-byte load at a pixel's first tap holds 4 taps of RGB; vpshufb widens
 * taps (0,1) and (2,3) to [R0 R1 G0 G1 B0 B1 0 0] 16-bit pairs. A pair of
 * pixels runs max(count) taps rounded up to 4, the missing weights zero; a
 * pair whose loads would leave the buffer (last row, right edge) goes to the
 * scalar code. */
struct hpairs {
    int n;            /* pairs: ow / 2 */
    int groups;       /* 4-tap groups per pair: ceil(ksize / 4) */
    int *off;         /* byte offsets of the first taps of pixels 2i and 2i+1 */
    int *ng;          /* groups pair i runs */
    int *end;         /* one past the last byte pair i reads, from its row's start */
    int16_t *kv;      /* [n][groups][hi01, hi23, lo01, lo23][16] */
};

static void hpairs_free(struct hpairs *p)
{
    free(p->off);
    free(p->ng);
    free(p->end);
    free(p->kv);
    memset(p, 0, sizeof *p);
}

/* Fails (-1) on memory, or (1) when a weight does not split into 16 bits
 * (no Pillow filter does that; the scalar code then runs). */
static int hpairs_init(struct hpairs *p, const struct axis *a, int ow)
{
    memset(p, 0, sizeof *p);
    p->n = ow / 2;
    p->groups = (a->ksize + 3) / 4;
    p->off = malloc(((size_t)p->n * 2 + 1) * sizeof *p->off);
    p->ng = malloc(((size_t)p->n + 1) * sizeof *p->ng);
    p->end = malloc(((size_t)p->n + 1) * sizeof *p->end);
    p->kv = calloc((size_t)p->n * (size_t)p->groups * 64 + 1, sizeof *p->kv);
    if (!p->off || !p->ng || !p->end || !p->kv) {
        hpairs_free(p);
        return -1;
    }
    for (int i = 0; i < p->n; i++) {
        int n = 0;
        for (int h = 0; h < 2; h++) {
            int x = 2 * i + h;
            p->off[2 * i + h] = a->first[x] * 3;
            if (a->count[x] > n) n = a->count[x];
        }
        int ng = (n + 3) / 4;
        p->ng[i] = ng;
        int far = a->first[2 * i] > a->first[2 * i + 1] ? a->first[2 * i] : a->first[2 * i + 1];
        p->end[i] = far * 3 + 12 * (ng - 1) + 16;
        for (int h = 0; h < 2; h++) {
            int x = 2 * i + h;
            const int32_t *k = a->k + (size_t)x * (size_t)a->ksize;
            for (int j = 0; j < a->count[x]; j++) {
                int32_t hi = k[j] >> 8, lo = k[j] & 255; /* k = 256 hi + lo, floor */
                if (hi < -32768 || hi > 32767) {
                    hpairs_free(p);
                    return 1;
                }
                int g = j / 4, t = j % 4; /* tap t of group g: vector t/2, slot t%2 */
                int16_t *v = p->kv + ((size_t)i * (size_t)p->groups + (size_t)g) * 64;
                for (int l = 0; l < 3; l++) { /* R, G, B lanes of this pixel's half */
                    v[(t / 2) * 16 + h * 8 + l * 2 + t % 2] = (int16_t)hi;
                    v[(2 + t / 2) * 16 + h * 8 + l * 2 + t % 2] = (int16_t)lo;
                }
            }
        }
    }
    return 0;
}

__attribute__((target("avx2"))) static void
horiz3_avx2(uint8_t *out, int ow, const uint8_t *in, size_t inlen, int iw, int row0, int nrows,
            const struct axis *a, const struct hpairs *p)
{
    const __m256i bias = _mm256_set1_epi32(1 << (PREC - 1));
    const __m256i c01 = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,
                                         0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1);
    const __m128i pick = _mm_setr_epi8(0, 1, 2, 4, 5, 6, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i c23 = _mm256_setr_epi8(6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1,
                                         6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
    for (int y = 0; y < nrows; y++) {
        size_t start = (size_t)(row0 + y) * (size_t)iw * 3;
        const uint8_t *src = in + start;
        uint8_t *dst = out + (size_t)y * (size_t)ow * 3;
        for (int i = 0; i < p->n; i++) {
            if (start + (size_t)p->end[i] > inlen) {
                horiz(dst + 6 * i, 2, src, iw, 0, 1, 3, &(struct axis){a->ksize,
                      a->first + 2 * i, a->count + 2 * i, a->k + (size_t)2 * i * (size_t)a->ksize});
                continue;
            }
            const uint8_t *sa = src + p->off[2 * i], *sb = src + p->off[2 * i + 1];
            const __m256i *kv = (const __m256i *)(p->kv + (size_t)i * (size_t)p->groups * 64);
            __m256i hi = _mm256_setzero_si256(), lo = _mm256_setzero_si256();
            for (int g = 0; g < p->ng[i]; g++, sa += 12, sb += 12, kv += 4) {
                __m256i v = _mm256_inserti128_si256(
                    _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)sa)),
                    _mm_loadu_si128((const __m128i *)sb), 1);
                __m256i t01 = _mm256_shuffle_epi8(v, c01), t23 = _mm256_shuffle_epi8(v, c23);
                hi = _mm256_add_epi32(hi, _mm256_add_epi32(_mm256_madd_epi16(t01, _mm256_loadu_si256(kv)),
                                                           _mm256_madd_epi16(t23, _mm256_loadu_si256(kv + 1))));
                lo = _mm256_add_epi32(lo, _mm256_add_epi32(_mm256_madd_epi16(t01, _mm256_loadu_si256(kv + 2)),
                                                           _mm256_madd_epi16(t23, _mm256_loadu_si256(kv + 3))));
            }
            __m256i acc = _mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(hi, 8), lo), bias);
            acc = _mm256_srai_epi32(acc, PREC);
            __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
            /* [A0 A1 A2 B0 B1 B2 0 0]: 8 bytes stored, the last 2 rewritten by
             * the next pair; the row's last pair stores its 6 alone */
            __m128i b = _mm_shuffle_epi8(_mm_packus_epi16(w, w), pick);
            if (i + 1 < p->n) {
                _mm_storel_epi64((__m128i *)(dst + 6 * i), b);
            } else {
                uint64_t q = (uint64_t)_mm_cvtsi128_si64(b);
                memcpy(dst + 6 * i, &q, 6);
            }
        }
        if (ow & 1) /* the odd one out */
            horiz(dst + (size_t)(ow - 1) * 3, 1, src, iw, 0, 1, 3,
                  &(struct axis){a->ksize, a->first + ow - 1, a->count + ow - 1,
                                 a->k + (size_t)(ow - 1) * (size_t)a->ksize});
    }
}

static int simd = -1; /* -1: not decided yet; atomic, as threads ask at once */

static int have_avx2(void)
{
    int v = __atomic_load_n(&simd, __ATOMIC_RELAXED);
    if (v < 0) {
        v = vr_isa() == VR_ISA_AVX2 || vr_isa() == VR_ISA_AVX512; /* VR_ISA=c: the scalar path */
        __atomic_store_n(&simd, v, __ATOMIC_RELAXED);
    }
    return v;
}
#endif

int vr_resample_simd(int on)
{
#ifdef HAVE_AVX2_PATH
    int was = have_avx2();
    if (on >= 0) __atomic_store_n(&simd, on && __builtin_cpu_supports("avx2"), __ATOMIC_RELAXED);
    return was;
#else
    (void)on;
    return 0;
#endif
}

/* inlen: bytes readable at in (the fast path reads a little past a pixel). */
static int horiz_any(uint8_t *out, int ow, const uint8_t *in, size_t inlen, int iw, int row0,
                     int nrows, int C, const struct axis *a)
{
#ifdef HAVE_AVX2_PATH
    if (C == 3 && ow >= 2 && have_avx2()) {
        struct hpairs p;
        int rc = hpairs_init(&p, a, ow);
        if (rc < 0) return -1;
        if (rc == 0) {
            horiz3_avx2(out, ow, in, inlen, iw, row0, nrows, a, &p);
            hpairs_free(&p);
            return 0;
        }
    }
#endif
    (void)inlen;
    switch (C) {
    case 1: horiz(out, ow, in, iw, row0, nrows, 1, a); break;
    case 3: horiz(out, ow, in, iw, row0, nrows, 3, a); break;
    default: horiz(out, ow, in, iw, row0, nrows, C, a); break;
    }
    return 0;
}

/* out (oh, rowlen)  in (rows from a->first[..] on, rowlen): each output row is
 * accumulated tap by tap over a chunk of the row held in acc (integer sums,
 * so the order is free and the inner loops vectorise; the AVX2 copy does 8
 * lanes at a time). */
#define VCHUNK 512
static inline __attribute__((always_inline)) void
vert_body(uint8_t *out, int oh, const uint8_t *in, size_t rowlen, const struct axis *a)
{
    int32_t acc[VCHUNK];
    for (int y = 0; y < oh; y++) {
        const int32_t *k = a->k + (size_t)y * (size_t)a->ksize;
        const uint8_t *src0 = in + (size_t)a->first[y] * rowlen;
        const int n = a->count[y];
        uint8_t *dst = out + (size_t)y * rowlen;
        for (size_t x0 = 0; x0 < rowlen; x0 += VCHUNK) {
            const size_t m = rowlen - x0 < VCHUNK ? rowlen - x0 : VCHUNK;
            for (size_t i = 0; i < m; i++) acc[i] = 1 << (PREC - 1);
            for (int j = 0; j < n; j++) {
                const uint8_t *src = src0 + (size_t)j * rowlen + x0;
                const int32_t kj = k[j];
                for (size_t i = 0; i < m; i++) acc[i] += (int32_t)src[i] * kj;
            }
            for (size_t i = 0; i < m; i++) {
                int32_t v = acc[i] >> PREC;
                dst[x0 + i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
}

OPT3 static void
vert_plain(uint8_t *out, int oh, const uint8_t *in, size_t rowlen, const struct axis *a)
{
    vert_body(out, oh, in, rowlen, a);
}

#ifdef HAVE_AVX2_PATH
__attribute__((target("avx2"))) OPT3 static void
vert_avx2(uint8_t *out, int oh, const uint8_t *in, size_t rowlen, const struct axis *a)
{
    vert_body(out, oh, in, rowlen, a);
}
#endif

static void vert(uint8_t *out, int oh, const uint8_t *in, size_t rowlen, const struct axis *a)
{
#ifdef HAVE_AVX2_PATH
    if (have_avx2()) {
        vert_avx2(out, oh, in, rowlen, a);
        return;
    }
#endif
    vert_plain(out, oh, in, rowlen, a);
}

int vr_resample(uint8_t *out, int ow, int oh, const uint8_t *in, int iw, int ih, int channels,
                int filter, int pillow, struct vr_err *err)
{
    const struct filter *fl = filter_get(filter);
    if (!fl) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "unknown resampling filter %d", filter);
    if (ow < 1 || oh < 1 || iw < 1 || ih < 1 || channels < 1 || channels > 4)
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "cannot resample %dx%d to %dx%d", iw, ih,
                          ow, oh);
    const size_t C = (size_t)channels;
    if (ow == iw && oh == ih) {
        memcpy(out, in, (size_t)iw * (size_t)ih * C);
        return 0;
    }
    int need_h = ow != iw, need_v = oh != ih;
    /* Pillow >= 13 runs the vertical pass first when the height shrinks by
     * more than twice what the width shrinks (or the width grows); before,
     * the horizontal pass always came first. The two orders round the
     * intermediate image differently. */
    int v_first = pillow >= 13 && ih - oh > 0 && (long)(ih - oh) > 2L * (iw - ow);
    struct axis av = {0}, ah = {0};
    uint8_t *tmp = NULL;
    int rc = -1;
    if (need_v && axis_init(&av, ih, oh, fl, err)) goto out;
    if (need_h && axis_init(&ah, iw, ow, fl, err)) goto out;
    if (!need_h) {
        vert(out, oh, in, (size_t)iw * C, &av);
    } else if (!need_v) {
        if (horiz_any(out, ow, in, (size_t)iw * ih * C, iw, 0, ih, channels, &ah)) goto oom;
    } else if (v_first) {
        tmp = malloc((size_t)oh * (size_t)iw * C);
        if (!tmp) goto oom;
        vert(tmp, oh, in, (size_t)iw * C, &av);
        if (horiz_any(out, ow, tmp, (size_t)iw * oh * C, iw, 0, oh, channels, &ah)) goto oom;
    } else {
        /* only the input rows the vertical pass reads get a horizontal pass */
        int row0 = av.first[0], row1 = av.first[oh - 1] + av.count[oh - 1];
        tmp = malloc((size_t)(row1 - row0) * (size_t)ow * C + 1);
        if (!tmp) goto oom;
        if (horiz_any(tmp, ow, in, (size_t)iw * ih * C, iw, row0, row1 - row0, channels, &ah))
            goto oom;
        for (int y = 0; y < oh; y++) av.first[y] -= row0;
        vert(out, oh, tmp, (size_t)ow * C, &av);
    }
    rc = 0;
    goto out;
oom:
    vr_err_set(err, VR_ERR_SYS, NULL, 0, "out of memory resampling %dx%d to %dx%d", iw, ih, ow, oh);
out:
    free(tmp);
    axis_free(&av);
    axis_free(&ah);
    return rc;
}

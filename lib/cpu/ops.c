/* ops.c: the CPU backend's generation-path ops (cpu/ops.h, ../ops.h): the
 * workspace, the GEMM over stored-dtype weights (gemm.c's vr_sgemm), and the vector variants
 * (AVX-512, AVX2+FMA, NEON, C; cpu/isa.h) of SwiGLU, softmax and the
 * samplers' max and exp, and attention over vision segments or a KV cache.
 * Their references are in ref.c. */
#include "cpu/ops.h"

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif
#include <pthread.h>

#include "cpu/isa.h"
#include "cpu/lanes.h"
#include "cpu/pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct vr_ws_chunk {
    struct vr_ws_chunk *next;
    size_t cap, used; /* in floats */
    float *data;
};

void vr_ws_reset(struct vr_ws *ws)
{
    for (struct vr_ws_chunk *c = ws->head; c; c = c->next) c->used = 0;
    ws->cur = ws->head;
}

float *vr_ws_floats(struct vr_ws *ws, size_t n)
{
    n = (n + 15) & ~(size_t)15; /* keep 64-byte alignment */
    for (struct vr_ws_chunk *c = ws->cur; c; c = c->next) {
        if (c->cap - c->used >= n) {
            float *p = c->data + c->used;
            c->used += n;
            ws->cur = c;
            return p;
        }
    }
    struct vr_ws_chunk *c = vr_xcalloc(1, sizeof *c);
    c->cap = n > (1u << 20) ? n : (1u << 20);
    c->data = vr_xmalloc_big(c->cap * sizeof(float), 0); /* 64-byte aligned or better */
    c->used = n;
    /* append at the end so earlier chunks are reused first after a reset */
    struct vr_ws_chunk **pp = &ws->head;
    while (*pp) pp = &(*pp)->next;
    *pp = c;
    ws->cur = c;
    return c->data;
}

void vr_ws_release(struct vr_ws *ws)
{
    for (struct vr_ws_chunk *c = ws->head, *n; c; c = n) {
        n = c->next;
        free(c->data);
        free(c);
    }
    ws->head = ws->cur = NULL;
    for (int i = 0; i < 2; i++) {
        free(ws->wslot[i]);
        ws->wslot[i] = NULL;
        ws->wcap[i] = 0;
    }
}

/* The reused buffer of a widening slot, grown to n floats. */
static float *wslot(struct vr_ws *ws, int slot, size_t n)
{
    if (n > ws->wcap[slot]) {
        free(ws->wslot[slot]);
        ws->wslot[slot] = aligned_alloc(64, ((n + 15) & ~(size_t)15) * sizeof(float));
        if (!ws->wslot[slot]) {
            fprintf(stderr, "vr: out of memory widening a %zu-element weight\n", n);
            abort();
        }
        ws->wcap[slot] = n;
    }
    return ws->wslot[slot];
}

const float *vr_weight_f32(const struct vr_tensor *w, int slot, struct vr_ws *ws)
{
    if (w->dtype == VR_DTYPE_F32) return w->data;
    size_t n = (size_t)vr_tensor_numel(w);
    float *p = wslot(ws, slot, n);
    vr_convert_to_f32(p, w->data, w->dtype, n);
    return p;
}

void vr_embed_infer_cpu(float *x, const struct vr_tensor *e, const int32_t *ids, int M)
{
    /* x (M, D)  e (V, D) */
    int D = (int)e->shape[1];
    size_t es = vr_dtype_size(e->dtype);
    for (int i = 0; i < M; i++)
        vr_convert_to_f32(x + (size_t)i * D, (const char *)e->data + (size_t)ids[i] * D * es, e->dtype, (size_t)D);
}

struct widen {
    float *dst;
    const struct vr_tensor *w;
    size_t rowlen;
};

static void widen_rows(void *vctx, int r0, int r1)
{
    const struct widen *c = vctx;
    size_t es = vr_dtype_size(c->w->dtype);
    vr_convert_to_f32(c->dst + (size_t)r0 * c->rowlen, (const char *)c->w->data + (size_t)r0 * c->rowlen * es,
                      c->w->dtype, (size_t)(r1 - r0) * c->rowlen);
}

void vr_linear_infer_cpu(float *out, const float *x, const struct vr_tensor *w, const struct vr_tensor *b, int M,
                         struct vr_ws *ws)
{
    /* out (M,N)  x (M,K)  w (N,K)  b (N) */
    int N = (int)w->shape[0], K = (int)w->shape[1];
    const float *B = b ? vr_weight_f32(b, 1, ws) : NULL;
    if (M <= VR_GEMV_MAX_M) {
        vr_gemv_cpu(out, x, w, B, M);
        return;
    }
    const float *W = w->data;
    if (w->dtype != VR_DTYPE_F32) { /* widen into the reused slot, rows in parallel */
        struct widen c = {wslot(ws, 0, (size_t)N * K), w, (size_t)K};
        vr_parallel_for(N, widen_rows, &c);
        W = c.dst;
    }
    /* every element one fma chain over K, then + the bias (gemm.c), so
     * neither the thread count nor the CPU changes a bit */
    vr_sgemm_pool(0, 1, M, N, K, 1.0f, x, K, W, K, 0.0f, out, N, B);
}

/* ---- exp and sums of exps: one order of arithmetic on every CPU ----
 *
 * exp1 is the definition: expf by range reduction by ln 2 (Cody-Waite, two
 * constants) and a degree-6 polynomial on [-ln2/2, ln2/2], about 1 ulp like
 * libm's, evaluated with exactly these fused multiply-adds, then scaled by
 * 2^n as (p 2^h) 2^(n-h) with h = n/2: two normal powers of two, so the first
 * product is exact and the second rounds once (AVX-512's scalef rounds
 * p 2^n once: the same value). The vector variants compute the same
 * operations lane by lane, so an element's exp is the same bits in every
 * variant and at every position; the C variant and nothing else calls exp1.
 * Below EXP_LO (where expf's value is under FLT_MIN) and for a NaN the exp is
 * 0: a masked score (-inf) gives exactly 0, not a subnormal, which would
 * leak into softmax rows and the products after them, where every subnormal
 * operand costs a microcode assist on Intel CPUs (prefill attention ran 50x
 * slower on one).
 *
 * A sum of exps runs in the 16 lanes of lanes.h, a block of 4096 elements
 * at a time; the blocks' lane trees are added in double. */
#define EXP_LO -87.3f
#define EXP_HI 88.7f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define EP0 1.9875691500e-4f
#define EP1 1.3981999507e-3f
#define EP2 8.3334519073e-3f
#define EP3 4.1665795894e-2f
#define EP4 1.6666665459e-1f
#define EP5 5.0000001201e-1f
#define SUM_BLOCK VR_EXP_BLOCK /* elements summed in float before the double total */

static inline float pow2i(int e)
{
    union {
        uint32_t u;
        float f;
    } v = {(uint32_t)(e + 127) << 23};
    return v.f;
}

static inline float exp1(float a)
{
    float x = fminf(fmaxf(a, EXP_LO), EXP_HI); /* a NaN becomes EXP_LO, as max_ps does */
    float n = nearbyintf(x * LOG2E);
    float r = fmaf(-n, LN2_HI, x);
    r = fmaf(-n, LN2_LO, r);
    float p = EP0;
    p = fmaf(p, r, EP1);
    p = fmaf(p, r, EP2);
    p = fmaf(p, r, EP3);
    p = fmaf(p, r, EP4);
    p = fmaf(p, r, EP5);
    p = fmaf(p, r * r, r + 1.0f);
    int ni = (int)n, hi = ni >> 1;
    return a >= EXP_LO ? p * pow2i(hi) * pow2i(ni - hi) : 0.0f; /* below, and NaN: 0 */
}

float vr_exp_def(float x) { return exp1(x); }

/* the C variant of vr_exp_infer_cpu: out = exp(x scale - shift), and its sum */
VR_C_CLONES static double exp_sum_c(float *out, const float *x, int n, float scale, float shift)
{
    double z = 0;
    for (int b = 0; b < n; b += SUM_BLOCK) {
        int e = n - b < SUM_BLOCK ? n : b + SUM_BLOCK;
        float acc[16] = {0};
        for (int i = b; i < e; i++) acc[i % 16] += out[i] = exp1(x[i] * scale - shift);
        z += vr_tree16(acc);
    }
    return z;
}

#if defined(__x86_64__)
/* exp1 in 16 lanes */
__attribute__((target("avx512f"))) static inline __m512 exp16(__m512 a)
{
    __mmask16 keep = _mm512_cmp_ps_mask(a, _mm512_set1_ps(EXP_LO), _CMP_GE_OQ); /* else 0 */
    __m512 x = _mm512_min_ps(_mm512_max_ps(a, _mm512_set1_ps(EXP_LO)), _mm512_set1_ps(EXP_HI));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(EP0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EP1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EP2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EP3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EP4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EP5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(p, n));
}

/* exp1 in 8 lanes for AVX2 + FMA (no scalef: the two powers of two) */
__attribute__((target("avx2,fma"))) static inline __m256 exp8(__m256 a)
{
    __m256 keep = _mm256_cmp_ps(a, _mm256_set1_ps(EXP_LO), _CMP_GE_OQ); /* else 0 */
    __m256 x = _mm256_min_ps(_mm256_max_ps(a, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(EP0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EP1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EP2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EP3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EP4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EP5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i ni = _mm256_cvtps_epi32(n), hi = _mm256_srai_epi32(ni, 1), lo = _mm256_sub_epi32(ni, hi);
    __m256 ph = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(hi, _mm256_set1_epi32(127)), 23));
    __m256 pl = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(lo, _mm256_set1_epi32(127)), 23));
    return _mm256_and_ps(keep, _mm256_mul_ps(_mm256_mul_ps(p, ph), pl));
}

/* lanes i < n of 8 as an AVX2 mask (n may be <= 0 or > 8) */
__attribute__((target("avx2"))) static inline __m256i mask8(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n < 0 ? 0 : n > 8 ? 8 : n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__attribute__((target("avx512f"))) static double exp_sum16(float *out, const float *x, int n, float scale,
                                                           float shift)
{
    __m512 vs = _mm512_set1_ps(scale), vh = _mm512_set1_ps(shift);
    double z = 0;
    for (int b = 0; b < n; b += SUM_BLOCK) {
        int e = n - b < SUM_BLOCK ? n : b + SUM_BLOCK;
        __m512 acc = _mm512_setzero_ps();
        for (int i = b; i < e; i += 16) {
            __mmask16 m = e - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (e - i)) - 1);
            __m512 v = exp16(_mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs), vh));
            _mm512_mask_storeu_ps(out + i, m, v);
            acc = _mm512_mask_add_ps(acc, m, acc, v);
        }
        z += vr_tree16_512(acc);
    }
    return z;
}

__attribute__((target("avx2,fma"))) static double exp_sum8(float *out, const float *x, int n, float scale,
                                                           float shift)
{
    __m256 vs = _mm256_set1_ps(scale), vh = _mm256_set1_ps(shift);
    double z = 0;
    for (int b = 0; b < n; b += SUM_BLOCK) {
        int e = n - b < SUM_BLOCK ? n : b + SUM_BLOCK, i = b;
        __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
        for (; i + 16 <= e; i += 16) {
            __m256 v0 = exp8(_mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), vh));
            __m256 v1 = exp8(_mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vs), vh));
            _mm256_storeu_ps(out + i, v0);
            _mm256_storeu_ps(out + i + 8, v1);
            lo = _mm256_add_ps(lo, v0);
            hi = _mm256_add_ps(hi, v1);
        }
        if (i < e) { /* the tail, masked: a masked-off lane adds +0, which changes nothing */
            __m256i m0 = mask8(e - i), m1 = mask8(e - i - 8);
            __m256 v0 = exp8(_mm256_sub_ps(_mm256_mul_ps(_mm256_maskload_ps(x + i, m0), vs), vh));
            __m256 v1 = exp8(_mm256_sub_ps(_mm256_mul_ps(_mm256_maskload_ps(x + i + 8, m1), vs), vh));
            _mm256_maskstore_ps(out + i, m0, v0);
            _mm256_maskstore_ps(out + i + 8, m1, v1);
            lo = _mm256_add_ps(lo, _mm256_and_ps(v0, _mm256_castsi256_ps(m0)));
            hi = _mm256_add_ps(hi, _mm256_and_ps(v1, _mm256_castsi256_ps(m1)));
        }
        z += vr_tree8x2(lo, hi);
    }
    return z;
}

__attribute__((target("avx512f"))) static float max16(const float *x, int n)
{
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    return _mm512_reduce_max_ps(m);
}

__attribute__((target("avx2"))) static float max8(const float *x, int n)
{
    __m256 m = _mm256_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

/* Every element goes through the same vector code (the tail masked), so an
 * element's value does not depend on where the batch puts it. */
__attribute__((target("avx512f"))) static void swiglu16(float *out, const float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(m, g + i);
        __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        __m512 s = _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, u + i)));
    }
}

__attribute__((target("avx2,fma"))) static void swiglu8(float *out, const float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        __m256i m = mask8(n - i < 8 ? (int)(n - i) : 8);
        __m256 x = _mm256_maskload_ps(g + i, m);
        __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        __m256 s = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        _mm256_maskstore_ps(out + i, m, _mm256_mul_ps(s, _mm256_maskload_ps(u + i, m)));
    }
}

/* SwiGLU's gradient (swiglu_grad_c is the definition): every input of an
 * element is loaded before its outputs are stored, so dg or du may be dy */
__attribute__((target("avx512f"))) static void swiglu_grad16(float *dg, float *du, const float *dy, const float *g,
                                                             const float *u, size_t n)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(m, g + i), d = _mm512_maskz_loadu_ps(m, dy + i);
        __m512 v = _mm512_maskz_loadu_ps(m, u + i);
        __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
        if (du) _mm512_mask_storeu_ps(du + i, m, _mm512_mul_ps(_mm512_mul_ps(d, x), s));
        if (dg)
            _mm512_mask_storeu_ps(dg + i, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(d, v), s),
                                                           _mm512_add_ps(one, _mm512_mul_ps(x, _mm512_sub_ps(one, s)))));
    }
}

__attribute__((target("avx2,fma"))) static void swiglu_grad8(float *dg, float *du, const float *dy, const float *g,
                                                             const float *u, size_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 8) {
        __m256i m = mask8(n - i < 8 ? (int)(n - i) : 8);
        __m256 x = _mm256_maskload_ps(g + i, m), d = _mm256_maskload_ps(dy + i, m), v = _mm256_maskload_ps(u + i, m);
        __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
        if (du) _mm256_maskstore_ps(du + i, m, _mm256_mul_ps(_mm256_mul_ps(d, x), s));
        if (dg)
            _mm256_maskstore_ps(dg + i, m, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(d, v), s),
                                                         _mm256_add_ps(one, _mm256_mul_ps(x, _mm256_sub_ps(one, s)))));
    }
}
#endif

#if defined(__aarch64__)
/* exp1 in 4 NEON lanes; the power of two as in exp8. vmaxnm turns a NaN into
 * the bound, as fmaxf and x86's max do. */
static inline float32x4_t exp4(float32x4_t a)
{
    uint32x4_t keep = vcgeq_f32(a, vdupq_n_f32(EXP_LO)); /* else 0 */
    float32x4_t x = vminnmq_f32(vmaxnmq_f32(a, vdupq_n_f32(EXP_LO)), vdupq_n_f32(EXP_HI));
    float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(LOG2E)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(LN2_HI));
    r = vfmsq_f32(r, n, vdupq_n_f32(LN2_LO));
    float32x4_t p = vdupq_n_f32(EP0);
    p = vfmaq_f32(vdupq_n_f32(EP1), p, r);
    p = vfmaq_f32(vdupq_n_f32(EP2), p, r);
    p = vfmaq_f32(vdupq_n_f32(EP3), p, r);
    p = vfmaq_f32(vdupq_n_f32(EP4), p, r);
    p = vfmaq_f32(vdupq_n_f32(EP5), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    int32x4_t ni = vcvtq_s32_f32(n), hi = vshrq_n_s32(ni, 1), lo = vsubq_s32(ni, hi);
    float32x4_t ph = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(hi, vdupq_n_s32(127)), 23));
    float32x4_t pl = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(lo, vdupq_n_s32(127)), 23));
    return vreinterpretq_f32_u32(vandq_u32(keep, vreinterpretq_u32_f32(vmulq_f32(vmulq_f32(p, ph), pl))));
}

static float max4(const float *x, int n)
{
    float32x4_t m = vdupq_n_f32(-INFINITY);
    for (int i = 0; i < n; i += 4) m = vmaxq_f32(m, vld1q_f32(x + i));
    return vmaxvq_f32(m);
}

static double exp_sum4(float *out, const float *x, int n, float scale, float shift)
{
    float32x4_t vs = vdupq_n_f32(scale), vh = vdupq_n_f32(shift);
    double z = 0;
    for (int b = 0; b < n; b += SUM_BLOCK) {
        int e = n - b < SUM_BLOCK ? n : b + SUM_BLOCK;
        float32x4_t a[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
        for (int i = b; i < e; i += 16) {
            int m = e - i < 16 ? e - i : 16;
            float buf[16] = {0}, ob[16];
            const float *xp = x + i;
            if (m < 16) memcpy(buf, xp, (size_t)m * sizeof *buf), xp = buf;
            for (int q = 0; q < 4; q++) {
                float32x4_t v = exp4(vsubq_f32(vmulq_f32(vld1q_f32(xp + 4 * q), vs), vh));
                vst1q_f32(m < 16 ? ob + 4 * q : out + i + 4 * q, v);
                uint32x4_t keep = vcltq_s32(vaddq_s32(vdupq_n_s32(4 * q), (int32x4_t){0, 1, 2, 3}), vdupq_n_s32(m));
                a[q] = vaddq_f32(a[q], vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), keep)));
            }
            if (m < 16) memcpy(out + i, ob, (size_t)m * sizeof *ob);
        }
        z += vr_tree4x4(a[0], a[1], a[2], a[3]);
    }
    return z;
}

/* The tail goes through the vector code too, from a copy, so an element's
 * value does not depend on where the batch puts it. */
static void swiglu4(float *out, const float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i += 4) {
        float gb[4] = {0}, ub[4] = {0}, ob[4];
        size_t m = n - i < 4 ? n - i : 4;
        const float *gp = g + i, *up = u + i;
        if (m < 4) memcpy(gb, gp, m * sizeof *gb), memcpy(ub, up, m * sizeof *ub), gp = gb, up = ub;
        float32x4_t x = vld1q_f32(gp);
        float32x4_t e = exp4(vsubq_f32(vdupq_n_f32(0), x));
        float32x4_t s = vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), e));
        vst1q_f32(m < 4 ? ob : out + i, vmulq_f32(s, vld1q_f32(up)));
        if (m < 4) memcpy(out + i, ob, m * sizeof *ob);
    }
}

static void swiglu_grad4(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    for (size_t i = 0; i < n; i += 4) {
        float gb[4] = {0}, db[4] = {0}, ub[4] = {0}, ogb[4], oub[4];
        size_t m = n - i < 4 ? n - i : 4;
        const float *gp = g + i, *dp = dy + i, *up = u + i;
        if (m < 4) {
            memcpy(gb, gp, m * sizeof *gb), memcpy(db, dp, m * sizeof *db), memcpy(ub, up, m * sizeof *ub);
            gp = gb, dp = db, up = ub;
        }
        float32x4_t x = vld1q_f32(gp), d = vld1q_f32(dp), v = vld1q_f32(up);
        float32x4_t s = vdivq_f32(one, vaddq_f32(one, exp4(vsubq_f32(vdupq_n_f32(0), x))));
        float32x4_t eu = vmulq_f32(vmulq_f32(d, x), s);
        float32x4_t eg = vmulq_f32(vmulq_f32(vmulq_f32(d, v), s), vaddq_f32(one, vmulq_f32(x, vsubq_f32(one, s))));
        if (du) vst1q_f32(m < 4 ? oub : du + i, eu);
        if (dg) vst1q_f32(m < 4 ? ogb : dg + i, eg);
        if (m < 4 && du) memcpy(du + i, oub, m * sizeof *oub);
        if (m < 4 && dg) memcpy(dg + i, ogb, m * sizeof *ogb);
    }
}
#endif

#if defined(__x86_64__)
static int have_avx512(void) { return vr_isa() == VR_ISA_AVX512; }
static int have_avx2(void) { return vr_isa() == VR_ISA_AVX2; }
#elif defined(__aarch64__)
static int have_neon(void) { return vr_isa() == VR_ISA_NEON; }
#endif

float vr_max_infer_cpu(const float *x, int n)
{
    float m = -INFINITY;
    int i = 0;
#if defined(__x86_64__)
    if (have_avx512() && n >= 16) {
        m = max16(x, n & ~15);
        i = n & ~15;
    } else if (have_avx2() && n >= 8) {
        m = max8(x, n & ~7);
        i = n & ~7;
    }
#elif defined(__aarch64__)
    if (have_neon() && n >= 4) {
        m = max4(x, n & ~3);
        i = n & ~3;
    }
#endif
    for (; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}

double vr_exp_infer_cpu(float *out, const float *x, int n, float scale, float shift)
{
#if defined(__x86_64__)
    if (have_avx512()) return exp_sum16(out, x, n, scale, shift);
    if (have_avx2()) return exp_sum8(out, x, n, scale, shift);
#elif defined(__aarch64__)
    if (have_neon()) return exp_sum4(out, x, n, scale, shift);
#endif
    return exp_sum_c(out, x, n, scale, shift);
}

/* Elementwise ops split their rows over the pool when there are enough. */
#define PAR_MIN (1 << 15) /* elements below which threading costs more than it saves */

struct swi {
    float *out;
    const float *g, *u;
    size_t n;
};

/* The C variants: the definitions, one element at a time */
VR_C_CLONES static void swiglu_c(float *out, const float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + exp1(0.0f - g[i])) * u[i];
}

/* s = sigmoid(g); du = dy g s, dg = dy u s (1 + g (1 - s)), in that order */
VR_C_CLONES static void swiglu_grad_c(float *dg, float *du, const float *dy, const float *g, const float *u,
                                      size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float d = dy[i], x = g[i], v = u[i], s = 1.0f / (1.0f + exp1(0.0f - x));
        if (du) du[i] = d * x * s;
        if (dg) dg[i] = d * v * s * (1.0f + x * (1.0f - s));
    }
}

void vr_swiglu_span_cpu(float *out, const float *g, const float *u, size_t n)
{
#if defined(__x86_64__)
    if (have_avx512()) swiglu16(out, g, u, n);
    else if (have_avx2()) swiglu8(out, g, u, n);
    else swiglu_c(out, g, u, n);
#elif defined(__aarch64__)
    if (have_neon()) swiglu4(out, g, u, n);
    else swiglu_c(out, g, u, n);
#else
    swiglu_c(out, g, u, n);
#endif
}

void vr_swiglu_grad_span_cpu(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n)
{
#if defined(__x86_64__)
    if (have_avx512()) swiglu_grad16(dg, du, dy, g, u, n);
    else if (have_avx2()) swiglu_grad8(dg, du, dy, g, u, n);
    else swiglu_grad_c(dg, du, dy, g, u, n);
#elif defined(__aarch64__)
    if (have_neon()) swiglu_grad4(dg, du, dy, g, u, n);
    else swiglu_grad_c(dg, du, dy, g, u, n);
#else
    swiglu_grad_c(dg, du, dy, g, u, n);
#endif
}

/* chunks of 1024 elements */
static void swi_chunks(void *vctx, int c0, int c1)
{
    const struct swi *c = vctx;
    size_t a = (size_t)c0 * 1024, b = (size_t)c1 * 1024 < c->n ? (size_t)c1 * 1024 : c->n;
    vr_swiglu_span_cpu(c->out + a, c->g + a, c->u + a, b - a);
}

void vr_swiglu_infer_cpu(float *out, const float *gate, const float *up, size_t n)
{
    struct swi c = {out, gate, up, n};
    int chunks = (int)((n + 1023) / 1024);
    if (n < PAR_MIN) swi_chunks(&c, 0, chunks);
    else vr_parallel_for(chunks, swi_chunks, &c);
}

/* softmax in place: the max, the exps of x - max and their sum as
 * vr_exp_infer_cpu makes them (so in one order on every CPU), then each
 * times 1 / sum. All -inf gives zeros. */
void vr_softmax_infer_cpu(float *x, int n)
{
    float mx = vr_max_infer_cpu(x, n);
    if (mx == -INFINITY) {
        memset(x, 0, (size_t)n * sizeof *x);
        return;
    }
    float inv = 1.0f / (float)vr_exp_infer_cpu(x, x, n, 1.0f, mx);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

#define ROWS 64 /* query rows per attention task: bounds scratch to ROWS x keys */

/* Attention tasks are (head, block of query rows); each thread has its own
 * score buffer of ROWS x maxkeys floats. */
struct attn {
    float *out;
    const float *q, *k, *v;  /* first row of head 0 */
    int ldq, ldk, ldo;       /* row strides */
    int H, G, K;             /* heads, query heads per KV head, head dim */
    const int *cu;           /* segments (non-causal), or NULL (causal) */
    int nseg, nblk_total;
    int *blk_seg, *blk_row;  /* per block of a head: segment and first row */
    /* causal */
    int Tq, n, q0, kvstride;
    int hr; /* one query row (decode): a task is up to 4 query heads of a KV head, as the rows of one product */
    const unsigned char *valid;
    float *S;                /* nthreads x ROWS x maxkeys */
    size_t Sper;
    float scale;
};

static void attn_tasks(void *vctx, int t0, int t1)
{
    const struct attn *a = vctx;
    float *S = a->S + (size_t)vr_thread_index() * a->Sper;
    for (int t = t0; t < t1; t++) {
        int h = t / a->nblk_total, blk = t % a->nblk_total;
        int kh = h / a->G, r0, rows, k0, L, ldq = a->ldq, ldo = a->ldo;
        if (a->hr) { /* heads h .. h + rows - 1 of query row 0 */
            int ng = (a->G + 3) / 4, gi = blk % ng * 4;
            kh = blk / ng;
            h = kh * a->G + gi;
            rows = a->G - gi < 4 ? a->G - gi : 4;
            r0 = 0, k0 = 0, ldq = a->K, ldo = a->K;
            L = a->q0 + 1 < a->n ? a->q0 + 1 : a->n;
        } else if (a->cu) {
            int s = a->blk_seg[blk];
            r0 = a->blk_row[blk];
            rows = a->cu[s + 1] - r0 < ROWS ? a->cu[s + 1] - r0 : ROWS;
            k0 = a->cu[s];
            L = a->cu[s + 1] - a->cu[s];
        } else {
            r0 = blk * ROWS;
            rows = a->Tq - r0 < ROWS ? a->Tq - r0 : ROWS;
            k0 = 0;
            /* keys past the block's last query are masked for all its rows:
             * their probabilities are exactly 0, so they are left out */
            L = a->q0 + r0 + rows < a->n ? a->q0 + r0 + rows : a->n;
        }
        const float *q = a->q + (size_t)r0 * a->ldq + (size_t)h * a->K;
        const float *k = a->k + (size_t)kh * a->kvstride + (size_t)k0 * a->ldk;
        const float *v = a->v + (size_t)kh * a->kvstride + (size_t)k0 * a->ldk;
        vr_sgemm(0, 1, rows, L, a->K, a->scale, q, ldq, k, a->ldk, 0.0f, S, L);
        for (int i = 0; i < rows; i++) {
            float *row = S + (size_t)i * L;
            if (!a->cu) {
                int last = a->q0 + r0 + (a->hr ? 0 : i);
                for (int j = last + 1; j < L; j++) row[j] = -INFINITY;
                if (a->valid)
                    for (int j = 0; j <= last && j < L; j++)
                        if (!a->valid[j]) row[j] = -INFINITY;
            }
            vr_softmax_infer_cpu(row, L);
        }
        vr_sgemm(0, 0, rows, a->K, L, 1.0f, S, L, v, a->ldk, 0.0f, a->out + (size_t)r0 * a->ldo + (size_t)h * a->K,
                 ldo);
    }
}

/* Vision segments (non-causal): blocks of ROWS query rows inside each segment. */
static void attn_segments(float *out, const float *q, const float *k, const float *v, const struct vr_attn_dims *d,
                          struct vr_ws *ws)
{
    int maxlen = 0, nblk = 0;
    for (int s = 0; s < d->nseg; s++) {
        int L = d->cu[s + 1] - d->cu[s];
        if (L > maxlen) maxlen = L;
        nblk += (L + ROWS - 1) / ROWS;
    }
    int *bs = (int *)vr_ws_floats(ws, (size_t)nblk + 1), *br = (int *)vr_ws_floats(ws, (size_t)nblk + 1);
    for (int s = 0, b = 0; s < d->nseg; s++)
        for (int r = d->cu[s]; r < d->cu[s + 1]; r += ROWS) bs[b] = s, br[b++] = r;
    size_t per = (size_t)ROWS * maxlen;
    /* the kv head offset is h*K inside a row, so kvstride = K with ldk = kv_stride */
    struct attn a = {.out = out, .q = q, .k = k, .v = v, .ldq = d->q_stride, .ldk = d->kv_stride,
                     .ldo = d->H * d->K, .H = d->H, .G = d->H / d->KVH, .K = d->K, .cu = d->cu, .nseg = d->nseg,
                     .nblk_total = nblk, .blk_seg = bs, .blk_row = br, .kvstride = d->K, .Sper = per,
                     .S = vr_ws_floats(ws, per * (size_t)vr_threads()), .scale = 1.0f / sqrtf((float)d->K)};
    vr_parallel_for(d->H * nblk, attn_tasks, &a);
}

/* Causal attention of N queries against a KV cache of one sequence. */
static void attn_cache(float *out, const float *q, const float *kc, const float *vc, const struct vr_attn_dims *d,
                       struct vr_ws *ws)
{
    int G = d->H / d->KVH, hr = d->N == 1;
    /* decode: the query heads that share a KV head go as the rows of one
     * product (up to 4: the few-row path), so the keys are read and
     * transposed once for them; the same chains, so the same bits */
    int nblk = hr ? d->KVH * ((G + 3) / 4) : (d->N + ROWS - 1) / ROWS;
    size_t per = (size_t)ROWS * d->nkeys;
    struct attn a = {.out = out, .q = q, .k = kc, .v = vc, .ldq = d->q_stride, .ldk = d->K, .ldo = d->H * d->K,
                     .H = d->H, .G = G, .K = d->K, .cu = NULL, .nblk_total = nblk, .Tq = d->N,
                     .n = d->nkeys, .q0 = d->q0, .kvstride = d->cap * d->K, .hr = hr, .valid = d->valid, .Sper = per,
                     .S = vr_ws_floats(ws, per * (size_t)vr_threads()), .scale = 1.0f / sqrtf((float)d->K)};
    vr_parallel_for(hr ? nblk : d->H * nblk, attn_tasks, &a);
}

void vr_attn_infer_cpu(float *out, const float *q, const float *k, const float *v, const struct vr_attn_dims *d,
                       struct vr_ws *ws)
{
    /* out (N, H*K)  q (N, H, K) rows q_stride apart  k, v: packed rows kv_stride apart, or (KVH, cap, K) */
    VR_ASSERT(d->KVH > 0 && d->H % d->KVH == 0);
    VR_ASSERT(d->cu ? !d->causal : d->causal); /* the two kernels this path has */
    if (d->cu) attn_segments(out, q, k, v, d, ws);
    else attn_cache(out, q, k, v, d, ws);
}

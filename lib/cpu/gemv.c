/* gemv.c: out (M,N) = x (M,K) . w (N,K)^T + b for few rows (decode), reading
 * each weight once, in its stored dtype (a bf16 weight moves half the bytes
 * of f32; it is widened in registers and the math stays fp32). Rows of w are
 * split across the thread pool, so a row's result never depends on the
 * thread count. AVX-512, AVX2+FMA or NEON when the CPU has it (VR_ISA), else plain
 * C. The gemv_infer op of the seam (../ops.h) and the few-row path of
 * vr_linear_infer_cpu; every variant is tested against the plain-loop
 * reference (ref.c, tests/unit/ops_ref.c). */
#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif
#include <string.h>

#include "cpu/isa.h"
#include "cpu/ops.h"
#include "cpu/pool.h"

#define GROUP 4 /* input rows that share one pass over a weight row */

struct gemv {
    float *out;
    const float *x, *b;
    const void *w;
    enum vr_dtype dt;
    int M, N, K;
};

static float w_at(const void *w, enum vr_dtype dt, size_t i)
{
    switch (dt) {
    case VR_DTYPE_BF16: return vr_bf16_to_f32(((const uint16_t *)w)[i]);
    case VR_DTYPE_F16: return vr_f16_to_f32(((const uint16_t *)w)[i]);
    default: return ((const float *)w)[i];
    }
}

static void rows_c(void *vctx, int n0, int n1)
{
    const struct gemv *g = vctx;
    for (int n = n0; n < n1; n++)
        for (int m = 0; m < g->M; m++) {
            const float *x = g->x + (size_t)m * g->K;
            float s = 0;
            for (int k = 0; k < g->K; k++) s += x[k] * w_at(g->w, g->dt, (size_t)n * g->K + k);
            g->out[(size_t)m * g->N + n] = s + (g->b ? g->b[n] : 0.0f);
        }
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw"))) static inline __m512 load16(const void *w, enum vr_dtype dt,
                                                                        size_t i)
{
    if (dt == VR_DTYPE_BF16)
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i))), 16));
    if (dt == VR_DTYPE_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i)));
    return _mm512_loadu_ps((const float *)w + i);
}

/* MG input rows against weight row n; MG is a constant at each call so the
 * accumulators live in registers. Every row sums in the same order whatever
 * MG is — 16-float chunk c goes to accumulator c % 4, then ((0+1)+(2+3)),
 * then the scalar tail — so a row's result does not depend on which rows
 * share its batch (vr-rollout's output must not change with the batch). */
#define FMA1(j, q, xk, wv) \
    if (MG > j) a##j##q = _mm512_fmadd_ps(_mm512_loadu_ps(x##j + (xk)), wv, a##j##q)
#define FMA_ALL(q, xk, wv) do { FMA1(0, q, xk, wv); FMA1(1, q, xk, wv); FMA1(2, q, xk, wv); FMA1(3, q, xk, wv); } while (0)
#define ROW_OUT(j)                                                                                   \
    if (MG > j) {                                                                                    \
        float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a##j##0, a##j##1),                \
                                                     _mm512_add_ps(a##j##2, a##j##3)));              \
        for (int kk = K16; kk < K; kk++) s += x##j[kk] * w_at(g->w, g->dt, wo + (size_t)kk);         \
        g->out[(size_t)(m0 + j) * g->N + n] = s + (g->b ? g->b[n] : 0.0f);                           \
    }

__attribute__((target("avx512f,avx512bw"), always_inline)) static inline void
dot_rows(const struct gemv *g, int n, int m0, const int MG)
{
    int K = g->K, K16 = K & ~15, K64 = K & ~63;
    size_t wo = (size_t)n * K;
    const float *x0 = g->x + (size_t)m0 * K, *x1 = x0 + K, *x2 = x1 + K, *x3 = x2 + K;
    __m512 z = _mm512_setzero_ps();
    __m512 a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
    __m512 a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
    int k = 0;
    for (; k < K64; k += 64) {
        __m512 w0 = load16(g->w, g->dt, wo + (size_t)k), w1 = load16(g->w, g->dt, wo + (size_t)k + 16);
        __m512 w2 = load16(g->w, g->dt, wo + (size_t)k + 32), w3 = load16(g->w, g->dt, wo + (size_t)k + 48);
        FMA_ALL(0, k, w0);
        FMA_ALL(1, k + 16, w1);
        FMA_ALL(2, k + 32, w2);
        FMA_ALL(3, k + 48, w3);
    }
    if (k < K16) {
        __m512 wv = load16(g->w, g->dt, wo + (size_t)k);
        FMA_ALL(0, k, wv);
        k += 16;
    }
    if (k < K16) {
        __m512 wv = load16(g->w, g->dt, wo + (size_t)k);
        FMA_ALL(1, k, wv);
        k += 16;
    }
    if (k < K16) {
        __m512 wv = load16(g->w, g->dt, wo + (size_t)k);
        FMA_ALL(2, k, wv);
        k += 16;
    }
    ROW_OUT(0)
    ROW_OUT(1)
    ROW_OUT(2)
    ROW_OUT(3)
}

__attribute__((target("avx512f,avx512bw"))) static void rows_avx512(void *vctx, int n0, int n1)
{
    const struct gemv *g = vctx;
    for (int n = n0; n < n1; n++)
        for (int m0 = 0; m0 < g->M; m0 += GROUP) {
            switch (g->M - m0 < GROUP ? g->M - m0 : GROUP) {
            case 1: dot_rows(g, n, m0, 1); break;
            case 2: dot_rows(g, n, m0, 2); break;
            case 3: dot_rows(g, n, m0, 3); break;
            default: dot_rows(g, n, m0, 4); break;
            }
        }
}

/* AVX2 + FMA + F16C (x86-64-v3): the same scheme in 8 lanes. Each row keeps
 * two accumulators (16-float chunk c: its two halves go to accumulators 0
 * and 1), summed as (a0 + a1) and then lanes ((0+4)+(2+6))+((1+5)+(3+7)),
 * then the scalar tail: an order fixed per row, whatever MG. */
__attribute__((target("avx2,fma,f16c"))) static inline __m256 load8(const void *w, enum vr_dtype dt, size_t i)
{
    if (dt == VR_DTYPE_BF16)
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i))), 16));
    if (dt == VR_DTYPE_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    return _mm256_loadu_ps((const float *)w + i);
}

__attribute__((target("avx2,fma"))) static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)); /* 0+4 1+5 2+6 3+7 */
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));                                          /* (0+4)+(2+6), ... */
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

#define FMA8(j, q, xk, wv) \
    if (MG > j) b##j##q = _mm256_fmadd_ps(_mm256_loadu_ps(x##j + (xk)), wv, b##j##q)
#define FMA8_ALL(q, xk, wv) do { FMA8(0, q, xk, wv); FMA8(1, q, xk, wv); FMA8(2, q, xk, wv); FMA8(3, q, xk, wv); } while (0)
#define ROW8_OUT(j)                                                                          \
    if (MG > j) {                                                                            \
        float s = hsum8(_mm256_add_ps(b##j##0, b##j##1));                                    \
        for (int kk = K16; kk < K; kk++) s += x##j[kk] * w_at(g->w, g->dt, wo + (size_t)kk); \
        g->out[(size_t)(m0 + j) * g->N + n] = s + (g->b ? g->b[n] : 0.0f);                   \
    }

__attribute__((target("avx2,fma,f16c"), always_inline)) static inline void
dot_rows8(const struct gemv *g, int n, int m0, const int MG)
{
    int K = g->K, K16 = K & ~15;
    size_t wo = (size_t)n * K;
    const float *x0 = g->x + (size_t)m0 * K, *x1 = x0 + K, *x2 = x1 + K, *x3 = x2 + K;
    __m256 z = _mm256_setzero_ps();
    __m256 b00 = z, b01 = z, b10 = z, b11 = z, b20 = z, b21 = z, b30 = z, b31 = z;
    for (int k = 0; k < K16; k += 16) {
        __m256 w0 = load8(g->w, g->dt, wo + (size_t)k), w1 = load8(g->w, g->dt, wo + (size_t)k + 8);
        FMA8_ALL(0, k, w0);
        FMA8_ALL(1, k + 8, w1);
    }
    ROW8_OUT(0)
    ROW8_OUT(1)
    ROW8_OUT(2)
    ROW8_OUT(3)
}

__attribute__((target("avx2,fma,f16c"))) static void rows_avx2(void *vctx, int n0, int n1)
{
    const struct gemv *g = vctx;
    for (int n = n0; n < n1; n++)
        for (int m0 = 0; m0 < g->M; m0 += GROUP) {
            switch (g->M - m0 < GROUP ? g->M - m0 : GROUP) {
            case 1: dot_rows8(g, n, m0, 1); break;
            case 2: dot_rows8(g, n, m0, 2); break;
            case 3: dot_rows8(g, n, m0, 3); break;
            default: dot_rows8(g, n, m0, 4); break;
            }
        }
}
#endif


#if defined(__aarch64__)
/* NEON (arm64): four 4-lane accumulators per row (16-float chunk c: its
 * quarters go to accumulators 0..3), summed (0+1)+(2+3), then across lanes
 * (faddp's fixed pairs), then the scalar tail: an order fixed per row. */
static inline float32x4_t load4(const void *w, enum vr_dtype dt, size_t i)
{
    if (dt == VR_DTYPE_BF16) return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)w + i), 16));
    if (dt == VR_DTYPE_F16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)w + i)));
    return vld1q_f32((const float *)w + i);
}

#define FMA4(j, q, xk, wv) \
    if (MG > j) c##j##q = vfmaq_f32(c##j##q, vld1q_f32(x##j + (xk)), wv)
#define FMA4_ALL(q, xk, wv) do { FMA4(0, q, xk, wv); FMA4(1, q, xk, wv); FMA4(2, q, xk, wv); FMA4(3, q, xk, wv); } while (0)
#define ROW4_OUT(j)                                                                                 \
    if (MG > j) {                                                                                   \
        float s = vaddvq_f32(vaddq_f32(vaddq_f32(c##j##0, c##j##1), vaddq_f32(c##j##2, c##j##3)));  \
        for (int kk = K16; kk < K; kk++) s += x##j[kk] * w_at(g->w, g->dt, wo + (size_t)kk);        \
        g->out[(size_t)(m0 + j) * g->N + n] = s + (g->b ? g->b[n] : 0.0f);                          \
    }

static inline __attribute__((always_inline)) void dot_rows4(const struct gemv *g, int n, int m0, const int MG)
{
    int K = g->K, K16 = K & ~15;
    size_t wo = (size_t)n * K;
    const float *x0 = g->x + (size_t)m0 * K, *x1 = x0 + K, *x2 = x1 + K, *x3 = x2 + K;
    float32x4_t z = vdupq_n_f32(0);
    float32x4_t c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
    float32x4_t c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;
    for (int k = 0; k < K16; k += 16) {
        float32x4_t w0 = load4(g->w, g->dt, wo + (size_t)k), w1 = load4(g->w, g->dt, wo + (size_t)k + 4);
        float32x4_t w2 = load4(g->w, g->dt, wo + (size_t)k + 8), w3 = load4(g->w, g->dt, wo + (size_t)k + 12);
        FMA4_ALL(0, k, w0);
        FMA4_ALL(1, k + 4, w1);
        FMA4_ALL(2, k + 8, w2);
        FMA4_ALL(3, k + 12, w3);
    }
    ROW4_OUT(0)
    ROW4_OUT(1)
    ROW4_OUT(2)
    ROW4_OUT(3)
}

static void rows_neon(void *vctx, int n0, int n1)
{
    const struct gemv *g = vctx;
    for (int n = n0; n < n1; n++)
        for (int m0 = 0; m0 < g->M; m0 += GROUP) {
            switch (g->M - m0 < GROUP ? g->M - m0 : GROUP) {
            case 1: dot_rows4(g, n, m0, 1); break;
            case 2: dot_rows4(g, n, m0, 2); break;
            case 3: dot_rows4(g, n, m0, 3); break;
            default: dot_rows4(g, n, m0, 4); break;
            }
        }
}
#endif

void vr_gemv_cpu(float *out, const float *x, const struct vr_tensor *w, const float *b, int M)
{
    /* out (M,N)  x (M,K)  w (N,K)  b (N) */
    struct gemv g = {out, x, b, w->data, w->dtype, M, (int)w->shape[0], (int)w->shape[1]};
    vr_range_fn fn = rows_c;
#if defined(__x86_64__)
    if (vr_isa() == VR_ISA_AVX512) fn = rows_avx512;
    else if (vr_isa() == VR_ISA_AVX2) fn = rows_avx2;
#elif defined(__aarch64__)
    if (vr_isa() == VR_ISA_NEON) fn = rows_neon;
#endif
    vr_parallel_for(g.N, fn, &g);
}

void vr_gemv_infer_cpu(float *out, const float *x, const struct vr_tensor *w, const struct vr_tensor *b, int M,
                       struct vr_ws *ws)
{
    vr_gemv_cpu(out, x, w, b ? vr_weight_f32(b, 1, ws) : NULL, M);
}

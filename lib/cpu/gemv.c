/* gemv.c: out (M,N) = x (M,K) . w (N,K)^T + b for few rows (decode), reading
 * each weight once, in its stored dtype (a bf16 weight moves half the bytes
 * of f32; it is widened in registers and the math stays fp32). Rows of w are
 * split across the thread pool, so a row's result never depends on the
 * thread count. AVX-512, AVX2+FMA or NEON when the CPU has it (VR_ISA), else plain
 * C, all in one order of arithmetic: element k < K16 (K rounded down to 16)
 * of a dot product goes to lane k % 16 by a fused multiply-add, in order;
 * the lanes are added by lanes.h's tree, the elements from K16 on by fused
 * multiply-adds in order, then the bias is added. So a row's numbers are the
 * same bits on every CPU and whichever rows share its batch. The AVX-512
 * variant computes 16 dot products at a time (tile16) and adds their lanes
 * by the same tree in packed registers. The gemv_infer op of the seam (../ops.h) and the few-row path of
 * vr_linear_infer_cpu; every variant is tested against the plain-loop
 * reference (ref.c, tests/unit/ops_ref.c). */
#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif
#include <string.h>

#include <math.h>

#include "cpu/isa.h"
#include "cpu/lanes.h"
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

/* the elements from K16 on, then the bias */
static inline float finish(const struct gemv *g, float s, const float *x, int n, int K16)
{
    for (int k = K16; k < g->K; k++) s = fmaf(x[k], w_at(g->w, g->dt, (size_t)n * g->K + k), s);
    return s + (g->b ? g->b[n] : 0.0f);
}

VR_C_CLONES static void rows_c(void *vctx, int n0, int n1)
{
    const struct gemv *g = vctx;
    int K16 = g->K & ~15;
    for (int n = n0; n < n1; n++)
        for (int m = 0; m < g->M; m++) {
            const float *x = g->x + (size_t)m * g->K;
            float a[16] = {0};
            for (int k = 0; k < K16; k++) a[k % 16] = fmaf(x[k], w_at(g->w, g->dt, (size_t)n * g->K + k), a[k % 16]);
            g->out[(size_t)m * g->N + n] = finish(g, vr_tree16(a), x, n, K16);
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
 * accumulators (one register of 16 lanes per row) live in registers. Up to
 * 8 rows share a pass (AVX-512 has the registers): 8 chains in flight hide
 * the FMA's latency, and the weight row is read once for them. */
#define GROUP512 8



#define FMA1(j, xk, wv) \
    if (MG > j) a##j = _mm512_fmadd_ps(_mm512_loadu_ps(x##j + (xk)), wv, a##j)
#define ROW_OUT(j) \
    if (MG > j) g->out[(size_t)(m0 + j) * g->N + n] = finish(g, vr_tree16_512(a##j), x##j, n, K16)

__attribute__((target("avx512f,avx512bw"), always_inline)) static inline void
dot_rows(const struct gemv *g, int n, int m0, const int MG)
{
    int K = g->K, K16 = K & ~15;
    size_t wo = (size_t)n * K;
    const float *x0 = g->x + (size_t)m0 * K, *x1 = x0 + K, *x2 = x1 + K, *x3 = x2 + K;
    const float *x4 = x3 + K, *x5 = x4 + K, *x6 = x5 + K, *x7 = x6 + K;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (int k = 0; k < K16; k += 16) {
        __m512 wv = load16(g->w, g->dt, wo + (size_t)k);
        FMA1(0, k, wv);
        FMA1(1, k, wv);
        FMA1(2, k, wv);
        FMA1(3, k, wv);
        FMA1(4, k, wv);
        FMA1(5, k, wv);
        FMA1(6, k, wv);
        FMA1(7, k, wv);
    }
    ROW_OUT(0);
    ROW_OUT(1);
    ROW_OUT(2);
    ROW_OUT(3);
    ROW_OUT(4);
    ROW_OUT(5);
    ROW_OUT(6);
    ROW_OUT(7);
}

/* 16 dot products at once: R input rows (from m0) by C = 16 / R weight rows
 * (from n), accumulator r C + c for row r and weight row c, each the same
 * chain as dot_rows' (lane k % 16, k in order). A weight row loaded once
 * serves R input rows and an input row C weight rows, so loads no longer
 * outnumber the FMAs, and there are 16 chains in flight. */
__attribute__((target("avx512f,avx512bw"), always_inline)) static inline void
tile16(const struct gemv *g, int n, int m0, const int R, const enum vr_dtype dt)
{
    const int C = 16 / R;
    int K = g->K, K16 = K & ~15;
    const float *x = g->x + (size_t)m0 * K;
    __m512 a[16], w[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) a[i] = _mm512_setzero_ps();
    for (int k = 0; k < K16; k += 16) {
#pragma GCC unroll 16
        for (int c = 0; c < C; c++) {
            w[c] = load16(g->w, dt, (size_t)(n + c) * K + (size_t)k);
            __asm__("" : "+v"(w[c])); /* in a register: GCC would load it again for every FMA */
            /* the same columns two tiles on (8 KB of f32 rows at K = 512):
             * LM head at M = 8, 2 threads, 18.5 ms against 24 without */
            _mm_prefetch((const char *)g->w + ((size_t)(n + c + 2 * C) * K + (size_t)k) * (dt == VR_DTYPE_F32 ? 4 : 2),
                         _MM_HINT_T0);
        }
#pragma GCC unroll 16
        for (int r = 0; r < R; r++) {
            __m512 xv = _mm512_loadu_ps(x + (size_t)r * K + k);
            __asm__("" : "+v"(xv));
#pragma GCC unroll 16
            for (int c = 0; c < C; c++) a[r * C + c] = _mm512_fmadd_ps(xv, w[c], a[r * C + c]);
        }
    }
    /* lanes.h's tree for the 16 accumulators at once: each step adds the
     * same pairs of lanes as vr_tree16, packed into fewer registers */
    __m512 s[8], u[4], v[2];
#pragma GCC unroll 16
    for (int i = 0; i < 8; i++) /* i + i+8: accumulators 2i, 2i+1 in one register */
        s[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xee));
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) /* + i+4: accumulators 4i..4i+3, 4 lanes each */
        u[i] = _mm512_add_ps(_mm512_shuffle_f32x4(s[2 * i], s[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(s[2 * i], s[2 * i + 1], 0xdd));
#pragma GCC unroll 16
    for (int i = 0; i < 2; i++) /* (0 + 2), (1 + 3) */
        v[i] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0xee));
    /* their sum: lane l holds accumulator l / 4 + 4 (l % 4) */
    __m512 t = _mm512_add_ps(_mm512_shuffle_ps(v[0], v[1], 0x88), _mm512_shuffle_ps(v[0], v[1], 0xdd));
    float d[16];
    _mm512_storeu_ps(d, t);
#pragma GCC unroll 16
    for (int l = 0; l < 16; l++) {
        int i = l / 4 + 4 * (l % 4), r = i / C, c = i % C;
        g->out[(size_t)(m0 + r) * g->N + n + c] = finish(g, d[l], x + (size_t)r * K, n + c, K16);
    }
}

/* one function for each tile shape and dtype: the loops stay small enough
 * for the instruction cache */
typedef void (*tile_fn)(const struct gemv *g, int n, int m0);
#define TILE(R, DT, D)                                                                                    \
    __attribute__((target("avx512f,avx512bw"), noinline)) static void tile_##R##_##D(const struct gemv *g, \
                                                                                   int n, int m0)         \
    {                                                                                                     \
        tile16(g, n, m0, R, DT);                                                                          \
    }
#define TILES(DT, D) TILE(8, DT, D) TILE(4, DT, D) TILE(2, DT, D) TILE(1, DT, D)
TILES(VR_DTYPE_F32, f32)
TILES(VR_DTYPE_BF16, bf16)
TILES(VR_DTYPE_F16, f16)

__attribute__((target("avx512f,avx512bw"))) static void rows_avx512(void *vctx, int n0, int n1)
{
    const struct gemv *g = vctx;
    const tile_fn *t = g->dt == VR_DTYPE_BF16  ? (const tile_fn[]){tile_8_bf16, tile_4_bf16, tile_2_bf16, tile_1_bf16}
                       : g->dt == VR_DTYPE_F16 ? (const tile_fn[]){tile_8_f16, tile_4_f16, tile_2_f16, tile_1_f16}
                                               : (const tile_fn[]){tile_8_f32, tile_4_f32, tile_2_f32, tile_1_f32};
    int n = n0;
    for (; n + 16 <= n1; n += 16) { /* 16 weight rows, from memory once */
        int m0 = 0;
        for (; m0 + 8 <= g->M; m0 += 8)
            for (int c = 0; c < 16; c += 2) t[0](g, n + c, m0);
        if (g->M - m0 >= 4) {
            for (int c = 0; c < 16; c += 4) t[1](g, n + c, m0);
            m0 += 4;
        }
        if (g->M - m0 >= 2) {
            for (int c = 0; c < 16; c += 8) t[2](g, n + c, m0);
            m0 += 2;
        }
        if (g->M - m0 >= 1) t[3](g, n, m0);
    }
    for (; n < n1; n++)
        for (int m0 = 0; m0 < g->M; m0 += GROUP512) {
            switch (g->M - m0 < GROUP512 ? g->M - m0 : GROUP512) {
            case 1: dot_rows(g, n, m0, 1); break;
            case 2: dot_rows(g, n, m0, 2); break;
            case 3: dot_rows(g, n, m0, 3); break;
            case 4: dot_rows(g, n, m0, 4); break;
            case 5: dot_rows(g, n, m0, 5); break;
            case 6: dot_rows(g, n, m0, 6); break;
            case 7: dot_rows(g, n, m0, 7); break;
            default: dot_rows(g, n, m0, 8); break;
            }
        }
}

/* AVX2 + FMA + F16C (x86-64-v3): the 16 lanes of a row in two registers. */
__attribute__((target("avx2,fma,f16c"))) static inline __m256 load8(const void *w, enum vr_dtype dt, size_t i)
{
    if (dt == VR_DTYPE_BF16)
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i))), 16));
    if (dt == VR_DTYPE_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    return _mm256_loadu_ps((const float *)w + i);
}

#define FMA8(j, q, xk, wv) \
    if (MG > j) b##j##q = _mm256_fmadd_ps(_mm256_loadu_ps(x##j + (xk)), wv, b##j##q)
#define FMA8_ALL(q, xk, wv) do { FMA8(0, q, xk, wv); FMA8(1, q, xk, wv); FMA8(2, q, xk, wv); FMA8(3, q, xk, wv); } while (0)
#define ROW8_OUT(j) \
    if (MG > j) g->out[(size_t)(m0 + j) * g->N + n] = finish(g, vr_tree8x2(b##j##0, b##j##1), x##j, n, K16)

__attribute__((target("avx2,fma,f16c"), always_inline)) static inline void
dot_rows8(const struct gemv *g, int n, int m0, const int MG, const enum vr_dtype dt)
{
    int K = g->K, K16 = K & ~15;
    size_t wo = (size_t)n * K;
    const float *x0 = g->x + (size_t)m0 * K, *x1 = x0 + K, *x2 = x1 + K, *x3 = x2 + K;
    const char *ahead = (const char *)g->w + (wo + 2 * (size_t)K) * (dt == VR_DTYPE_F32 ? 4 : 2);
    __m256 z = _mm256_setzero_ps();
    __m256 b00 = z, b01 = z, b10 = z, b11 = z, b20 = z, b21 = z, b30 = z, b31 = z;
    for (int k = 0; k < K16; k += 16) {
        /* the weight row two on (AVX-512's tile16 does the same) */
        _mm_prefetch(ahead + (size_t)k * (dt == VR_DTYPE_F32 ? 4 : 2), _MM_HINT_T0);
        __m256 w0 = load8(g->w, dt, wo + (size_t)k), w1 = load8(g->w, dt, wo + (size_t)k + 8);
        FMA8_ALL(0, k, w0);
        FMA8_ALL(1, k + 8, w1);
    }
    ROW8_OUT(0);
    ROW8_OUT(1);
    ROW8_OUT(2);
    ROW8_OUT(3);
}

/* one loop for each dtype, so the loads' choice is not made every step */
#define ROWS_AVX2(DT, D)                                                                               \
    __attribute__((target("avx2,fma,f16c"))) static void rows_avx2_##D(void *vctx, int n0, int n1) \
    {                                                                                                  \
        const struct gemv *g = vctx;                                                                   \
        for (int n = n0; n < n1; n++)                                                                  \
            for (int m0 = 0; m0 < g->M; m0 += GROUP) {                                                 \
                switch (g->M - m0 < GROUP ? g->M - m0 : GROUP) {                                       \
                case 1: dot_rows8(g, n, m0, 1, DT); break;                                             \
                case 2: dot_rows8(g, n, m0, 2, DT); break;                                             \
                case 3: dot_rows8(g, n, m0, 3, DT); break;                                             \
                default: dot_rows8(g, n, m0, 4, DT); break;                                            \
                }                                                                                      \
            }                                                                                          \
    }
ROWS_AVX2(VR_DTYPE_F32, f32)
ROWS_AVX2(VR_DTYPE_BF16, bf16)
ROWS_AVX2(VR_DTYPE_F16, f16)

static void rows_avx2(void *vctx, int n0, int n1)
{
    const struct gemv *g = vctx;
    if (g->dt == VR_DTYPE_BF16) rows_avx2_bf16(vctx, n0, n1);
    else if (g->dt == VR_DTYPE_F16) rows_avx2_f16(vctx, n0, n1);
    else rows_avx2_f32(vctx, n0, n1);
}
#endif


#if defined(__aarch64__)
/* NEON (arm64): the 16 lanes of a row in four registers. */
static inline float32x4_t load4(const void *w, enum vr_dtype dt, size_t i)
{
    if (dt == VR_DTYPE_BF16) return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)w + i), 16));
    if (dt == VR_DTYPE_F16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)w + i)));
    return vld1q_f32((const float *)w + i);
}

#define FMA4(j, q, xk, wv) \
    if (MG > j) c##j##q = vfmaq_f32(c##j##q, vld1q_f32(x##j + (xk)), wv)
#define FMA4_ALL(q, xk, wv) do { FMA4(0, q, xk, wv); FMA4(1, q, xk, wv); FMA4(2, q, xk, wv); FMA4(3, q, xk, wv); } while (0)
#define ROW4_OUT(j) \
    if (MG > j) g->out[(size_t)(m0 + j) * g->N + n] = finish(g, vr_tree4x4(c##j##0, c##j##1, c##j##2, c##j##3), x##j, n, K16)

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
    ROW4_OUT(0);
    ROW4_OUT(1);
    ROW4_OUT(2);
    ROW4_OUT(3);
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

/* ---- one dot product of the same definition (RMSNorm's sum of squares) ---- */

VR_C_CLONES static float dot_c(const float *a, const float *b, int n)
{
    int n16 = n & ~15;
    float acc[16] = {0};
    for (int k = 0; k < n16; k++) acc[k % 16] = fmaf(a[k], b[k], acc[k % 16]);
    float s = vr_tree16(acc);
    for (int k = n16; k < n; k++) s = fmaf(a[k], b[k], s);
    return s;
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float dot16(const float *a, const float *b, int n)
{
    int n16 = n & ~15;
    __m512 acc = _mm512_setzero_ps();
    for (int k = 0; k < n16; k += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), acc);
    float s = vr_tree16_512(acc);
    for (int k = n16; k < n; k++) s = fmaf(a[k], b[k], s);
    return s;
}

__attribute__((target("avx2,fma"))) static float dot8(const float *a, const float *b, int n)
{
    int n16 = n & ~15;
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int k = 0; k < n16; k += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), hi);
    }
    float s = vr_tree8x2(lo, hi);
    for (int k = n16; k < n; k++) s = fmaf(a[k], b[k], s);
    return s;
}
#elif defined(__aarch64__)
static float dot4(const float *a, const float *b, int n)
{
    int n16 = n & ~15;
    float32x4_t c0 = vdupq_n_f32(0), c1 = c0, c2 = c0, c3 = c0;
    for (int k = 0; k < n16; k += 16) {
        c0 = vfmaq_f32(c0, vld1q_f32(a + k), vld1q_f32(b + k));
        c1 = vfmaq_f32(c1, vld1q_f32(a + k + 4), vld1q_f32(b + k + 4));
        c2 = vfmaq_f32(c2, vld1q_f32(a + k + 8), vld1q_f32(b + k + 8));
        c3 = vfmaq_f32(c3, vld1q_f32(a + k + 12), vld1q_f32(b + k + 12));
    }
    float s = vr_tree4x4(c0, c1, c2, c3);
    for (int k = n16; k < n; k++) s = fmaf(a[k], b[k], s);
    return s;
}
#endif

float vr_dot_cpu(const float *a, const float *b, int n)
{
#if defined(__x86_64__)
    if (vr_isa() == VR_ISA_AVX512) return dot16(a, b, n);
    if (vr_isa() == VR_ISA_AVX2) return dot8(a, b, n);
#elif defined(__aarch64__)
    if (vr_isa() == VR_ISA_NEON) return dot4(a, b, n);
#endif
    return dot_c(a, b, n);
}

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

/* gemm.c: the CPU backend's float GEMM, one order of arithmetic on every CPU.
 *
 *     C (M,N) = (alpha op(A)) op(B) + beta C      row-major, op = as is or transposed
 *
 * Each element is one fused multiply-add chain, k = 0, 1, ..., K-1 in order,
 * then BLAS's update:
 *
 *     c = 0
 *     for k:  c = fma(alpha * A[i][k], B[k][j], c)      (alpha * A rounded to float once)
 *     C[i][j] = beta == 0 ? c : c + beta * C[i][j]       (beta * C rounded once)
 *
 * so adding the same product twice doubles exactly, as with BLAS. Every
 * variant (AVX-512, AVX2+FMA, NEON, plain C with fmaf) computes exactly this,
 * and splitting K into blocks only stores the running c (in C, or while
 * C's old value waits for the last block, in a per-thread buffer) and loads
 * it back, so the bits do not depend on the CPU, the vector width, the
 * blocking, the tiling or the thread count. OpenBLAS's result depends on the
 * kernel it picks for the CPU (its K blocking and its order of partial sums);
 * this is why the float ops do not use it. The error is that of a sequential
 * sum with fused products: |c - exact| <= K u sum_k |alpha a b|, plus one
 * rounding each for alpha a and the update (u = 2^-24).
 *
 * The structure is the usual one (Goto / BLIS): B is packed in panels of KC
 * rows by NR columns, A in strips of MR rows by KC (transposed 8 x 8 in AVX
 * registers where needed, the far-apart source rows prefetched), and a
 * register-blocked kernel (AVX-512 12 x 32, AVX2 6 x 16, NEON 8 x 12, C
 * 4 x 8) runs the chains of an MR x NR tile of C over a KC block. Rows and
 * columns past an edge hold stale values in the packed copies: the kernels
 * compute them and never store them; a right edge goes through a scratch
 * tile. vr_sgemm runs on the calling thread, its buffers held per thread
 * (attention's small products, inside the pool's tasks); vr_sgemm_pool
 * spreads one product over the pool, sharing each packed block of B
 * (training's linears and LM head, prefill's linears). Measured
 * against OpenBLAS's single-thread sgemm on the training shapes: 0.9-1.0 of
 * its rate, 0.7-0.8 on 64 x 64 attention products (bench/gemm.c,
 * bench/RESULTS.md). */
#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/isa.h"
#include "cpu/ops.h"
#include "cpu/pool.h"
#include "err.h"

#define KC 256 /* rows of B per packed panel: KC x NR of B stays in L1 */
#define MC 96  /* rows of A per packed block (a multiple of every MR) */
#define NC 480 /* columns of B per packed panel (a multiple of every NR: NEON's 12 too;
                * 512 made its last panel of 12 write past the buffer) */
#define MRMAX 12
#define NRMAX 32


/* ---- kernels: h rows of an MR x NR tile, over a block of kc values of k,
 * a packed MR per k (rows past h: any values), b packed NR per k; one fma chain
 * per element. Where the chains start and end: ---- */
struct ends {
    const float *src; /* the running chains (row stride lds), or NULL: start from 0 */
    long lds;
    float *c; /* where they go (row stride ldc) */
    long ldc;
    float beta; /* nonzero on the last block: store chain + beta * c's old value */
};

/* Each vector kernel is written once for a row count and instantiated for MR
 * and smaller ones, so an edge strip of h rows costs the next instance up,
 * not a full MR. */
typedef void kern_fn(int kc, const float *a, const float *b, const struct ends *e, int h);

#define KERN_C_MR 4
#define KERN_C_NR 8
/* the packings round a block up to whole strips and panels, which must fit
 * the buffer: MR 12, 6, 8, 4 and NR 32, 16, 12, 8 (AVX-512, AVX2, NEON, C) */
_Static_assert(MC % 24 == 0 && NC % 96 == 0, "MC and NC must be multiples of every variant's MR and NR");
VR_C_CLONES static void kern_c(int kc, const float *a, const float *b, const struct ends *e, int h)
{
    float acc[KERN_C_MR][KERN_C_NR];
    for (int r = 0; r < KERN_C_MR; r++)
        for (int j = 0; j < KERN_C_NR; j++) acc[r][j] = e->src && r < h ? e->src[r * e->lds + j] : 0.0f;
    for (int k = 0; k < kc; k++, a += KERN_C_MR, b += KERN_C_NR)
        for (int r = 0; r < h; r++)
            for (int j = 0; j < KERN_C_NR; j++) acc[r][j] = fmaf(a[r], b[j], acc[r][j]);
    for (int r = 0; r < h; r++)
        for (int j = 0; j < KERN_C_NR; j++) {
            float *c = e->c + r * e->ldc + j;
            *c = e->beta != 0 ? acc[r][j] + e->beta * *c : acc[r][j];
        }
}

#if defined(__x86_64__)
/* ROWS x 32 of a 12-row strip: up to 24 accumulators, two B vectors, one
 * broadcast of A */
__attribute__((target("avx512f"), always_inline)) static inline void k512(int kc, const float *a, const float *b,
                                                                         const struct ends *e, int h, const int ROWS)
{
    const float *s = e->src;
    float *c = e->c;
    long lds = e->lds, ldc = e->ldc;
    __m512 acc[12][2];
    if (e->beta != 0) /* C's old rows are read at the end: fetch them while the chains run */
        for (int r = 0; r < h; r++) _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0),
                                    _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_T0);
#pragma GCC unroll 12
    for (int r = 0; r < ROWS; r++) {
        acc[r][0] = s && r < h ? _mm512_loadu_ps(s + r * lds) : _mm512_setzero_ps();
        acc[r][1] = s && r < h ? _mm512_loadu_ps(s + r * lds + 16) : _mm512_setzero_ps();
    }
    for (int k = 0; k < kc; k++, a += 12, b += 32) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
        for (int r = 0; r < ROWS; r++) {
            __m512 ar = _mm512_set1_ps(a[r]);
            acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
        }
    }
    __m512 vb = _mm512_set1_ps(e->beta);
#pragma GCC unroll 12
    for (int r = 0; r < ROWS; r++)
        if (r < h) {
            if (e->beta != 0) {
                acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_mul_ps(vb, _mm512_loadu_ps(c + r * ldc)));
                acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_mul_ps(vb, _mm512_loadu_ps(c + r * ldc + 16)));
            }
            _mm512_storeu_ps(c + r * ldc, acc[r][0]);
            _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
        }
}

__attribute__((target("avx512f"))) static void kern_avx512(int kc, const float *a, const float *b,
                                                           const struct ends *e, int h)
{
    if (h > 8) k512(kc, a, b, e, h, 12);
    else if (h > 4) k512(kc, a, b, e, h, 8);
    else if (h > 2) k512(kc, a, b, e, h, 4);
    else if (h > 1) k512(kc, a, b, e, h, 2);
    else k512(kc, a, b, e, h, 1); /* decode's attention: one query row */
}

/* ROWS x 16 of a 6-row strip: up to 12 accumulators, two B vectors, one
 * broadcast of A */
__attribute__((target("avx2,fma"), always_inline)) static inline void k256(int kc, const float *a, const float *b,
                                                                          const struct ends *e, int h, const int ROWS)
{
    const float *s = e->src;
    float *c = e->c;
    long lds = e->lds, ldc = e->ldc;
    __m256 acc[6][2];
    if (e->beta != 0) /* C's old rows are read at the end: fetch them while the chains run */
        for (int r = 0; r < h; r++) _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0),
                                    _mm_prefetch((const char *)(c + r * ldc + 8), _MM_HINT_T0);
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; r++) {
        acc[r][0] = s && r < h ? _mm256_loadu_ps(s + r * lds) : _mm256_setzero_ps();
        acc[r][1] = s && r < h ? _mm256_loadu_ps(s + r * lds + 8) : _mm256_setzero_ps();
    }
    for (int k = 0; k < kc; k++, a += 6, b += 16) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int r = 0; r < ROWS; r++) {
            __m256 ar = _mm256_broadcast_ss(a + r);
            acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
        }
    }
    __m256 vb = _mm256_set1_ps(e->beta);
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; r++)
        if (r < h) {
            if (e->beta != 0) {
                acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_mul_ps(vb, _mm256_loadu_ps(c + r * ldc)));
                acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_mul_ps(vb, _mm256_loadu_ps(c + r * ldc + 8)));
            }
            _mm256_storeu_ps(c + r * ldc, acc[r][0]);
            _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
        }
}

__attribute__((target("avx2,fma"))) static void kern_avx2(int kc, const float *a, const float *b,
                                                          const struct ends *e, int h)
{
    if (h > 4) k256(kc, a, b, e, h, 6);
    else if (h > 2) k256(kc, a, b, e, h, 4);
    else if (h > 1) k256(kc, a, b, e, h, 2);
    else k256(kc, a, b, e, h, 1); /* decode's attention: one query row */
}
#endif

#if defined(__aarch64__)
/* ROWS x 12 of an 8-row strip: up to 24 accumulators, three B vectors, A's
 * values in two registers taken by lane (vfmaq_laneq_f32: one fused
 * multiply-add per lane) */
static inline __attribute__((always_inline)) void kneon(int kc, const float *a, const float *b, const struct ends *e,
                                                        int h, const int ROWS)
{
    const float *s = e->src;
    float *c = e->c;
    long lds = e->lds, ldc = e->ldc;
    float32x4_t acc[8][3];
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; r++)
        for (int j = 0; j < 3; j++) acc[r][j] = s && r < h ? vld1q_f32(s + r * lds + 4 * j) : vdupq_n_f32(0);
    for (int k = 0; k < kc; k++, a += 8, b += 12) {
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
#define ROW(r, av, l)                                                                                                 \
    if (r < ROWS) {                                                                                                   \
        acc[r][0] = vfmaq_laneq_f32(acc[r][0], b0, av, l);                                                            \
        acc[r][1] = vfmaq_laneq_f32(acc[r][1], b1, av, l);                                                            \
        acc[r][2] = vfmaq_laneq_f32(acc[r][2], b2, av, l);                                                            \
    }
        ROW(0, a0, 0) ROW(1, a0, 1) ROW(2, a0, 2) ROW(3, a0, 3)
        ROW(4, a1, 0) ROW(5, a1, 1) ROW(6, a1, 2) ROW(7, a1, 3)
#undef ROW
    }
    float32x4_t vb = vdupq_n_f32(e->beta);
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; r++)
        if (r < h)
            for (int j = 0; j < 3; j++) {
                if (e->beta != 0) acc[r][j] = vaddq_f32(acc[r][j], vmulq_f32(vb, vld1q_f32(c + r * ldc + 4 * j)));
                vst1q_f32(c + r * ldc + 4 * j, acc[r][j]);
            }
}

static void kern_neon(int kc, const float *a, const float *b, const struct ends *e, int h)
{
    if (h > 4) kneon(kc, a, b, e, h, 8);
    else if (h > 1) kneon(kc, a, b, e, h, 4);
    else kneon(kc, a, b, e, h, 1); /* decode's attention: one query row */
}
#endif

struct variant {
    kern_fn *kern;
    int mr, nr, vec; /* vec: the packing may use AVX2 */
};

static struct variant variant(void)
{
    switch (vr_isa()) {
#if defined(__x86_64__)
    case VR_ISA_AVX512: return (struct variant){kern_avx512, 12, 32, 1};
    case VR_ISA_AVX2: return (struct variant){kern_avx2, 6, 16, 1};
#endif
#if defined(__aarch64__)
    case VR_ISA_NEON: return (struct variant){kern_neon, 8, 12, 0};
#endif
    default: return (struct variant){kern_c, KERN_C_MR, KERN_C_NR, 0};
    }
}

/* The transposing copy both packings need: dst[k ld + r] = alpha src[r sld + k]
 * for rows r < g and k < n. Rows from g up to ld may be left with junk:
 * the caller fills them afterwards. */
static void tcopy_c(float *dst, int ld, const float *src, long sld, int g, int n, float alpha)
{
    for (int k = 0; k < n; k++)
        for (int r = 0; r < g; r++) dst[(size_t)k * ld + r] = alpha * src[r * sld + k];
}

#if defined(__x86_64__)
/* o[t] = lane t of each of r[0..7]: an 8 x 8 transpose in AVX registers */
__attribute__((target("avx2"), always_inline)) static inline void tr8(const __m256 r[8], __m256 o[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
    o[0] = _mm256_permute2f128_ps(u0, u4, 0x20), o[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    o[2] = _mm256_permute2f128_ps(u2, u6, 0x20), o[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    o[4] = _mm256_permute2f128_ps(u0, u4, 0x31), o[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    o[6] = _mm256_permute2f128_ps(u2, u6, 0x31), o[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* 8 rows by 8 k through registers (tr8). Each of the 8
 * stores writes 8 floats; with fewer than 8 rows the extra ones are junk
 * and land past row g, possibly in the next k's first rows, which later
 * stores overwrite: hence the order below (k ascending, within a chunk the
 * partial group of rows before the full ones) and the buffer's 8 spare
 * floats at its end. */
__attribute__((target("avx2"), always_inline)) static inline void t8(float *d, int ld, const float *p, long sld, int g,
                                                                    __m256 va, int scale, int pf)
{
    __m256 r[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(p + (i < g ? i : 0) * sld);
    if (pf) /* each row 4 lines ahead: the rows are far apart, the prefetcher follows few streams */
        for (int i = 0; i < g; i++) _mm_prefetch((const char *)(p + i * sld + 64), _MM_HINT_T0);
    __m256 o[8];
    tr8(r, o);
    for (int t = 0; t < 8; t++) _mm256_storeu_ps(d + (size_t)t * ld, scale ? _mm256_mul_ps(o[t], va) : o[t]);
}

__attribute__((target("avx2"))) static void tcopy_avx2(float *dst, int ld, const float *src, long sld, int g, int n,
                                                       float alpha)
{
    __m256 va = _mm256_set1_ps(alpha);
    int scale = alpha != 1, full = g / 8 * 8, k = 0;
    for (; k + 8 <= n; k += 8) {
        float *d = dst + (size_t)k * ld;
        int pf = (k & 8) == 0; /* once a cache line (16 floats) */
        if (full < g) t8(d + full, ld, src + full * sld + k, sld, g - full, va, scale, pf);
        for (int r = 0; r < full; r += 8) t8(d + r, ld, src + r * sld + k, sld, 8, va, scale, pf);
    }
    if (k < n) tcopy_c(dst + (size_t)k * ld, ld, src + k, sld, g, n - k, alpha);
}
#endif

static void tcopy(float *dst, int ld, const float *src, long sld, int g, int n, float alpha, int vec)
{
#if defined(__x86_64__)
    if (vec) {
        tcopy_avx2(dst, ld, src, sld, g, n, alpha);
        return;
    }
#endif
    (void)vec;
    tcopy_c(dst, ld, src, sld, g, n, alpha);
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static void scopy_avx2(float *dst, const float *src, int n, float alpha)
{
    __m256 va = _mm256_set1_ps(alpha);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_loadu_ps(src + j);
        _mm256_storeu_ps(dst + j, alpha != 1 ? _mm256_mul_ps(v, va) : v);
    }
    /* the rest by 4 and 2 (AVX2's strip of 6, AVX-512's of 12): A's rows,
     * transposed, went one float at a time (TN 0.86 of OpenBLAS) */
    if (j + 4 <= n) {
        __m128 v = _mm_loadu_ps(src + j);
        _mm_storeu_ps(dst + j, alpha != 1 ? _mm_mul_ps(v, _mm256_castps256_ps128(va)) : v);
        j += 4;
    }
    if (j + 2 <= n) {
        /* 64-bit moves of an unaligned type (a float pair need not be a
         * double's alignment: _mm_load_sd's dereference is UB there) */
        __m128 v = _mm_castsi128_ps(_mm_loadl_epi64((const __m128i_u *)(src + j)));
        _mm_storel_epi64((__m128i_u *)(dst + j),
                         _mm_castps_si128(alpha != 1 ? _mm_mul_ps(v, _mm256_castps256_ps128(va)) : v));
        j += 2;
    }
    for (; j < n; j++) dst[j] = alpha * src[j];
}
#endif

/* dst[j] = alpha src[j], j < n (a short row: a memcpy call costs more) */
static inline void scopy(float *dst, const float *src, int n, float alpha, int vec)
{
#if defined(__x86_64__)
    if (vec) {
        scopy_avx2(dst, src, n, alpha);
        return;
    }
#endif
    (void)vec;
    for (int j = 0; j < n; j++) dst[j] = alpha * src[j];
}

/* Rows of A or B a packing reads are often far apart (a weight's rows, the
 * LM head's logits): the hardware prefetcher does not cross pages, so the
 * packing asks for the row PF_ROWS ahead itself. */
#define PF_ROWS 8
static inline void prefetch_row(const float *p, int n)
{
    for (int i = 0; i < n; i += 16) __builtin_prefetch(p + i);
    __builtin_prefetch(p + n - 1);
}

/* rows [i0, i0+mc) x cols [k0, k0+kc) of alpha op(A), in strips of mr rows,
 * each strip k-major (mr values per k; rows past mc left as they are). The strips are
 * written in order (tcopy's junk only ever lands ahead). */
static void pack_a(float *dst, const float *A, int lda, int ta, int i0, int mc, int k0, int kc, float alpha, int mr,
                   int vec)
{
    if (ta) { /* A(i, k) = A[k lda + i]: row k of A holds the mc values of every strip */
        for (int k = 0; k < kc; k++) {
            const float *src = A + (size_t)(k0 + k) * lda + i0;
            if (k + PF_ROWS < kc) prefetch_row(src + (size_t)PF_ROWS * lda, mc);
            for (int s = 0; s < mc; s += mr) {
                int h = mc - s < mr ? mc - s : mr;
                scopy(dst + (size_t)s * kc + (size_t)k * mr, src + s, h, alpha, vec);
            }
        }
        return;
    }
    for (int s = 0; s < mc; s += mr, dst += (size_t)mr * kc) {
        int h = mc - s < mr ? mc - s : mr;
        tcopy(dst, mr, A + (size_t)(i0 + s) * lda + k0, lda, h, kc, alpha, vec);
    }
}

/* rows [k0, k0+kc) x cols [j0, j0+nc) of op(B), in panels of nr columns,
 * each panel k-major (nr values per k; columns past nc left as they are) */
static void pack_b(float *dst, const float *B, int ldb, int tb, int k0, int kc, int j0, int nc, int nr, int vec)
{
    if (!tb) { /* row k of B holds the nc values of every panel */
        for (int k = 0; k < kc; k++) {
            const float *src = B + (size_t)(k0 + k) * ldb + j0;
            if (k + PF_ROWS < kc) prefetch_row(src + (size_t)PF_ROWS * ldb, nc);
            for (int s = 0; s < nc; s += nr) {
                int w = nc - s < nr ? nc - s : nr;
                scopy(dst + (size_t)s * kc + (size_t)k * nr, src + s, w, 1.0f, vec);
            }
        }
        return;
    }
    for (int s = 0; s < nc; s += nr, dst += (size_t)nr * kc) {
        int w = nc - s < nr ? nc - s : nr;
        /* B(k, j) = B[j ldb + k]: column j of op(B) is row j of B */
        tcopy(dst, nr, B + (size_t)(j0 + s) * ldb + k0, ldb, w, kc, 1.0f, vec);
    }
}

/* ---- per-thread buffers, freed when the thread ends ---- */

struct bufs {
    float *pack; /* A's block and B's panel */
    float *shared; /* vr_sgemm_pool's block of op(B), which the pool's threads share */
    float *run;  /* the running chains, when C's old value must wait for the last K block */
    size_t run_cap;
};

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static void buf_free(void *p)
{
    struct bufs *b = p;
    free(b->pack), free(b->shared), free(b->run), free(b);
}
static void buf_key_init(void) { VR_ASSERT(pthread_key_create(&buf_key, buf_free) == 0); }

static struct bufs *buffers(void)
{
    pthread_once(&buf_once, buf_key_init);
    struct bufs *b = pthread_getspecific(buf_key);
    if (!b) {
        b = vr_xcalloc(1, sizeof *b);
        /* tcopy writes up to 8 floats past each part. Both parts start on a
         * cache line, so the kernels' loads of a packed row of B (16 floats
         * in AVX2, 32 in AVX-512) never straddle two lines (one of AVX2's
         * two did; the gain was within the noise of the 2-core Zen 3 host) */
        b->pack = vr_xcalloc64(((size_t)MC * KC + (size_t)KC * NC + 32) * sizeof(float));
        VR_ASSERT(pthread_setspecific(buf_key, b) == 0);
    }
    return b;
}

struct call {
    int ta, tb, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    float *run; /* M x N (row stride N) for the chains between K blocks, or NULL: in C */
};

/* Where the chains wait between K blocks while C's old value waits for the
 * last one (beta != 0 and K > KC): M x N floats of the calling thread's,
 * else NULL (in C). */
static float *running(struct bufs *bf, const struct call *g)
{
    if (g->beta == 0 || g->K <= KC) return NULL;
    size_t n = (size_t)g->M * g->N;
    if (bf->run_cap < n) {
        free(bf->run);
        bf->run = vr_xmalloc(n * sizeof(float));
        bf->run_cap = n;
    }
    return bf->run;
}

/* one kernel call on the tile at C's (i, j), h x w, over K block [k0, k0+kc) */
static void tile(const struct variant *v, const struct call *g, const float *a, const float *b, int i, int j, int h,
                 int w, int k0, int kc)
{
    int first = k0 == 0, last = k0 + kc >= g->K;
    float *ct = g->C + (size_t)i * g->ldc + j;
    float *rt = g->run ? g->run + (size_t)i * g->N + j : ct;
    long ldr = g->run ? g->N : g->ldc;
    struct ends e = {first ? NULL : rt, ldr, last ? ct : rt, last ? g->ldc : ldr, last ? g->beta : 0};
    if (w == v->nr) {
        v->kern(kc, a, b, &e, h);
        return;
    }
    /* a right edge: through a full-width scratch tile */
    _Alignas(64) float t[MRMAX * NRMAX] = {0};
    if (e.src)
        for (int r = 0; r < h; r++) memcpy(t + r * v->nr, e.src + r * e.lds, (size_t)w * sizeof *t);
    struct ends te = {e.src ? t : NULL, v->nr, t, v->nr, 0};
    v->kern(kc, a, b, &te, h);
    for (int r = 0; r < h; r++)
        for (int q = 0; q < w; q++) {
            float *c = e.c + r * e.ldc + q;
            *c = e.beta != 0 ? t[r * v->nr + q] + e.beta * *c : t[r * v->nr + q];
        }
}

static void chains(const struct variant *v, float *pa, float *pb, const struct call *g)
{
    for (int j0 = 0; j0 < g->N; j0 += NC) {
        int nc = g->N - j0 < NC ? g->N - j0 : NC;
        VR_ASSERT((nc + v->nr - 1) / v->nr * v->nr <= NC); /* whole panels fit the buffer */
        for (int k0 = 0; k0 < g->K; k0 += KC) {
            int kc = g->K - k0 < KC ? g->K - k0 : KC;
            pack_b(pb, g->B, g->ldb, g->tb, k0, kc, j0, nc, v->nr, v->vec);
            for (int i0 = 0; i0 < g->M; i0 += MC) {
                int mc = g->M - i0 < MC ? g->M - i0 : MC;
                VR_ASSERT((mc + v->mr - 1) / v->mr * v->mr <= MC);
                pack_a(pa, g->A, g->lda, g->ta, i0, mc, k0, kc, g->alpha, v->mr, v->vec);
                for (int js = 0; js < nc; js += v->nr)
                    for (int is = 0; is < mc; is += v->mr)
                        tile(v, g, pa + (size_t)is * kc, pb + (size_t)js * kc, i0 + is, j0 + js,
                             mc - is < v->mr ? mc - is : v->mr, nc - js < v->nr ? nc - js : v->nr, k0, kc);
            }
        }
    }
}

/* ---- a few rows (decode's attention: one query row against the KV cache):
 * no packing, which would cost more than the product. The same chains. ---- */
#define SMALL_M 4
#define SMALL_K 4096 /* A's row, scaled, on the stack */

#if defined(__x86_64__)
/* the update of 8 chains: c (+ beta C), lanes past n not stored */
__attribute__((target("avx2"))) static inline void put8(float *c, __m256 acc, float beta, int n)
{
    __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    if (beta != 0) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(beta), _mm256_maskload_ps(c, m)));
    if (n >= 8) _mm256_storeu_ps(c, acc);
    else _mm256_maskstore_ps(c, m, acc);
}

/* alpha A(i, k) for k < K, rounded as the packing rounds it */
static void arow(float *as, const struct call *g, int i)
{
    for (int k = 0; k < g->K; k++) as[k] = g->alpha * (g->ta ? g->A[(size_t)k * g->lda + i] : g->A[(size_t)i * g->lda + k]);
}

/* op(B) = B: 64 columns at a time (8 chains in flight), alpha A(i, k)
 * broadcast, B's row k loaded */
__attribute__((target("avx2,fma"))) static void small_nn(const struct call *g, float *as)
{
    for (int i = 0; i < g->M; i++) {
        arow(as, g, i);
        for (int j0 = 0; j0 < g->N; j0 += 64) {
            int w = g->N - j0 < 64 ? g->N - j0 : 64, nv = (w + 7) / 8;
            __m256 acc[8];
            for (int q = 0; q < 8; q++) acc[q] = _mm256_setzero_ps();
            const float *b = g->B + j0;
            if (w == 64) {
                for (int k = 0; k < g->K; k++, b += g->ldb) {
                    __m256 va = _mm256_broadcast_ss(as + k);
#pragma GCC unroll 8
                    for (int q = 0; q < 8; q++) acc[q] = _mm256_fmadd_ps(va, _mm256_loadu_ps(b + 8 * q), acc[q]);
                }
            } else {
                __m256i m[8];
                for (int q = 0; q < 8; q++)
                    m[q] = _mm256_cmpgt_epi32(_mm256_set1_epi32(w - 8 * q), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                for (int k = 0; k < g->K; k++, b += g->ldb) {
                    __m256 va = _mm256_broadcast_ss(as + k);
                    for (int q = 0; q < nv; q++) acc[q] = _mm256_fmadd_ps(va, _mm256_maskload_ps(b + 8 * q, m[q]), acc[q]);
                }
            }
            float *c = g->C + (size_t)i * g->ldc + j0;
            for (int q = 0; q < nv; q++) put8(c + 8 * q, acc[q], g->beta, w - 8 * q);
        }
    }
}

/* 8 rows of B by 8 k, transposed in registers, into the 8 chains of each of
 * the MR rows of A: acc[r] lane t is column j0 + t of op(B) for row r (the
 * rows' chains share one transpose: decode's attention passes a KV head's
 * query heads as rows). tr8's steps written out: through arrays GCC spills
 * them here (3.5 us a decode head against 5.6-8.5) */
__attribute__((target("avx2,fma"), always_inline)) static inline void nt8(__m256 *acc, const float *b, long ldb,
                                                                        const float *as, long K, const int MR)
{
    __m256 r0 = _mm256_loadu_ps(b), r1 = _mm256_loadu_ps(b + ldb), r2 = _mm256_loadu_ps(b + 2 * ldb);
    __m256 r3 = _mm256_loadu_ps(b + 3 * ldb), r4 = _mm256_loadu_ps(b + 4 * ldb), r5 = _mm256_loadu_ps(b + 5 * ldb);
    __m256 r6 = _mm256_loadu_ps(b + 6 * ldb), r7 = _mm256_loadu_ps(b + 7 * ldb);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
    __m256 c[8] = {_mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
                   _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
                   _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
                   _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31)};
#pragma GCC unroll 8
    for (int t = 0; t < 8; t++)
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(as + r * K + t), c[t], acc[r]);
}

/* op(B) = B^T for MR (<= SMALL_M) rows of A at once: 8 columns (rows of B)
 * at a time, one transpose for all the rows' chains */
__attribute__((target("avx2,fma"), always_inline)) static inline void small_nt_rows(const struct call *g,
                                                                                 const float *as, int i0,
                                                                                 const int MR)
{
    long ldb = g->ldb, K = g->K;
    int K8 = g->K & ~7, j0 = 0;
    for (; j0 + 8 <= g->N; j0 += 8) {
        const float *b = g->B + (size_t)j0 * ldb;
        __m256 acc[SMALL_M];
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) acc[r] = _mm256_setzero_ps();
        for (int k = 0; k < K8; k += 8) nt8(acc, b + k, ldb, as + k, K, MR);
        for (int k = K8; k < g->K; k++) {
            const float *p = b + k;
            __m256 bv = _mm256_setr_ps(p[0], p[ldb], p[2 * ldb], p[3 * ldb], p[4 * ldb], p[5 * ldb], p[6 * ldb],
                                       p[7 * ldb]);
#pragma GCC unroll 4
            for (int r = 0; r < MR; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(as + r * K + k), bv, acc[r]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) put8(g->C + (size_t)(i0 + r) * g->ldc + j0, acc[r], g->beta, 8);
    }
    for (; j0 < g->N; j0++) /* the last columns, one chain each */
        for (int r = 0; r < MR; r++) {
            float c = 0;
            for (int k = 0; k < g->K; k++) c = fmaf(as[r * K + k], g->B[(size_t)j0 * ldb + k], c);
            float *o = g->C + (size_t)(i0 + r) * g->ldc + j0;
            *o = g->beta != 0 ? c + g->beta * *o : c;
        }
}

/* op(B) = B^T: all M rows' scaled A in as (M x K), then the rows together */
__attribute__((target("avx2,fma"))) static void small_nt(const struct call *g, float *as)
{
    for (int i = 0; i < g->M; i++) arow(as + (size_t)i * g->K, g, i);
    switch (g->M) {
    case 1: small_nt_rows(g, as, 0, 1); break;
    case 2: small_nt_rows(g, as, 0, 2); break;
    case 3: small_nt_rows(g, as, 0, 3); break;
    default: small_nt_rows(g, as, 0, 4); break;
    }
}
#endif

void vr_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* no chain: c = 0 */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float *c = C + (size_t)i * ldc + j;
                *c = beta != 0 ? 0.0f + beta * *c : 0.0f;
            }
        return;
    }
    struct call g = {ta, tb, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C, NULL};
    struct variant v = variant();
#if defined(__x86_64__)
    if (M <= SMALL_M && v.vec && K <= SMALL_K) {
        float as[SMALL_M * SMALL_K]; /* small_nt: all rows; small_nn: one */
        (tb ? small_nt : small_nn)(&g, as);
        return;
    }
#endif
    struct bufs *bf = buffers();
    g.run = running(bf, &g);
    chains(&v, bf->pack, bf->pack + (size_t)MC * KC + 16, &g);
}

/* ---- one product over the thread pool, BLIS's way: each block of KC rows
 * by up to NCS columns of op(B) is packed once, by all the threads, into a
 * buffer they share (L3); then each thread packs its own rows of A, a block
 * of MC at a time (L2), and runs the kernels over the whole block of B, a
 * panel of NR columns at a time (L1). Tiles of C each packing their own rows
 * of A and columns of B (vr_gemm_tiles) packed B again for every tile of
 * rows and A for every tile of columns: at the training step's shapes on 2
 * AVX2 cores, 120-135 GFLOP/s for linear_fwd against 160 for a product that
 * packs each operand once. The same chains, so the same bits. With C's old
 * value waiting for the last K block, the running chains of a block of
 * rows by NCS columns wait in a buffer of at most RUN_MAX floats. ---- */
#define NCS 1920 /* 1.9 MB of f32 at KC 256 */
_Static_assert(NCS % 96 == 0, "NCS must be a multiple of every variant's NR");

struct pool {
    struct variant v;
    struct call g;      /* a block of the product: rows by up to NCS columns */
    const float *bias;  /* its columns' */
    float *pb;          /* the shared block of op(B): its columns, k in [k0, k0+kc) */
    int nc, k0, kc;
    int rows, cgroups;  /* tasks: chunks of rows (rows each, a multiple of MR) by groups of panels */
};

static void pool_pack_b(void *vctx, int p0, int p1)
{
    const struct pool *p = vctx;
    int nr = p->v.nr, s0 = p0 * nr, s1 = p1 * nr < p->nc ? p1 * nr : p->nc;
    /* whole panels: tcopy's junk (a partial panel's) lands past the block,
     * never in another thread's panels */
    pack_b(p->pb + (size_t)s0 * p->kc, p->g.B, p->g.ldb, p->g.tb, p->k0, p->kc, s0, s1 - s0, nr, p->v.vec);
}

static void pool_rows(void *vctx, int t0, int t1)
{
    const struct pool *p = vctx;
    const struct call *g = &p->g;
    int mr = p->v.mr, nr = p->v.nr, npan = (p->nc + nr - 1) / nr, per = (npan + p->cgroups - 1) / p->cgroups;
    int last = p->k0 + p->kc >= g->K;
    float *pa = buffers()->pack;
    for (int t = t0; t < t1; t++) {
        int r0 = t / p->cgroups * p->rows, r1 = r0 + p->rows < g->M ? r0 + p->rows : g->M;
        int js0 = t % p->cgroups * per * nr, js1 = js0 + per * nr < p->nc ? js0 + per * nr : p->nc;
        for (int i0 = r0; i0 < r1; i0 += MC) {
            int mc = r1 - i0 < MC ? r1 - i0 : MC;
            pack_a(pa, g->A, g->lda, g->ta, i0, mc, p->k0, p->kc, g->alpha, mr, p->v.vec);
            for (int js = js0; js < js1; js += nr)
                for (int is = 0; is < mc; is += mr) {
                    int h = mc - is < mr ? mc - is : mr, w = p->nc - js < nr ? p->nc - js : nr, i = i0 + is;
                    tile(&p->v, g, pa + (size_t)is * p->kc, p->pb + (size_t)js * p->kc, i, js, h, w, p->k0, p->kc);
                    if (p->bias && last) /* the product, then + the bias */
                        for (int r = 0; r < h; r++)
                            for (int q = 0; q < w; q++) g->C[(size_t)(i + r) * g->ldc + js + q] += p->bias[js + q];
                }
        }
    }
}

static void pool_tiles(void *vctx, int t0, int t1);

#define RUN_MAX (1 << 22) /* floats of running chains (16 MB): rows of a block, when there are any */

void vr_sgemm_pool(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc, const float *bias)
{
    if (M <= 0 || N <= 0) return;
    struct pool p = {.v = variant(),
                     .g = {ta, tb, M, N, K, lda, ldb, ldc, alpha, bias ? 0.0f : beta, A, B, C, NULL},
                     .bias = bias};
    if (K <= 0 || M <= SMALL_M) { /* no packing (vr_sgemm's own paths), tiles of columns */
        int tm, tn;
        vr_gemm_tiles(M, N, &tm, &tn);
        p.rows = tm, p.nc = tn, p.cgroups = (N + tn - 1) / tn;
        vr_parallel_for((M + tm - 1) / tm * p.cgroups, pool_tiles, &p);
        return;
    }
    int T = vr_threads(), mr = p.v.mr, mb = M;
    if (p.g.beta != 0 && K > KC) { /* the chains wait in a buffer: blocks of rows bound it */
        mb = RUN_MAX / (N < NCS ? N : NCS) / MC * MC;
        if (mb < T * MC) mb = T * MC;
    }
    struct bufs *bf = buffers();
    if (!bf->shared) bf->shared = vr_xcalloc64(((size_t)KC * NCS + 32) * sizeof(float));
    p.pb = bf->shared;
    for (int i0 = 0; i0 < M; i0 += mb)
        for (int j0 = 0; j0 < N; j0 += NCS) {
            struct call s = {ta, tb, M - i0 < mb ? M - i0 : mb, N - j0 < NCS ? N - j0 : NCS, K, lda, ldb, ldc,
                             alpha, p.g.beta, A + (ta ? (size_t)i0 : (size_t)i0 * lda),
                             B + (tb ? (size_t)j0 * ldb : (size_t)j0), C + (size_t)i0 * ldc + j0, NULL};
            s.run = running(bf, &s);
            p.g = s, p.bias = bias ? bias + j0 : NULL, p.nc = s.N;
            p.rows = ((s.M + T - 1) / T + mr - 1) / mr * mr;
            int chunks = (s.M + p.rows - 1) / p.rows;
            p.cgroups = (T + chunks - 1) / chunks; /* few rows: the threads split the columns too */
            for (p.k0 = 0; p.k0 < K; p.k0 += KC) {
                p.kc = K - p.k0 < KC ? K - p.k0 : KC;
                vr_parallel_for((p.nc + p.v.nr - 1) / p.v.nr, pool_pack_b, &p);
                vr_parallel_for(chunks * p.cgroups, pool_rows, &p);
            }
        }
}

/* M <= SMALL_M or K <= 0: tile t is rows [t / cgroups * rows, ...) by
 * columns [t % cgroups * nc, ...), each a vr_sgemm */
static void pool_tiles(void *vctx, int t0, int t1)
{
    const struct pool *p = vctx;
    const struct call *g = &p->g;
    for (int t = t0; t < t1; t++) {
        int i = t / p->cgroups * p->rows, j = t % p->cgroups * p->nc;
        int h = g->M - i < p->rows ? g->M - i : p->rows, w = g->N - j < p->nc ? g->N - j : p->nc;
        const float *a = g->A + (g->ta ? (size_t)i : (size_t)i * g->lda);
        const float *b = g->B + (g->tb ? (size_t)j * g->ldb : (size_t)j);
        float *c = g->C + (size_t)i * g->ldc + j;
        vr_sgemm(g->ta, g->tb, h, w, g->K, g->alpha, a, g->lda, b, g->ldb, g->beta, c, g->ldc);
        if (p->bias)
            for (int r = 0; r < h; r++)
                for (int q = 0; q < w; q++) c[(size_t)r * g->ldc + q] += p->bias[j + q];
    }
}

/* Output tiles of a GEMM (M,N), for the products that are not one
 * vr_sgemm_pool: the float64 twins' dgemm (train_ops_impl.h) and the pool's
 * few-row path. At most 64K elements (256 x 256; a short M gets wider tiles,
 * up to 2048), halved (down to 32) until there are 2 per thread. Every tile
 * packs its rows of A and columns of B again, so the fewer and squarer the
 * better once the threads have enough (when training's float products went
 * through tiles, 4 per thread made linear_bwd's dw 105-122 GFLOP/s on 2 AVX2
 * cores against 133 with 2); the float GEMM's bits do not depend on the
 * tiles, so they may follow the thread count (the double twins are only
 * checked to a bound). The tiles are then evened out, their number kept. */
void vr_gemm_tiles(int M, int N, int *tm, int *tn)
{
    int a = 256;
    long want = 2L * vr_threads();
    while (a > 32 && a / 2 >= M) a /= 2; /* no taller than the matrix needs */
    int b = 65536 / a < 2048 ? 65536 / a : 2048;
    while (b > 32 && b / 2 >= N) b /= 2;
    for (;;) {
        long tiles = (long)((M + a - 1) / a) * ((N + b - 1) / b);
        int ha = a > 32 && a / 2 < M, hb = b > 32 && b / 2 < N; /* halving adds tiles */
        if (tiles >= want || (!ha && !hb)) break;
        if (hb && (b >= a || !ha)) b /= 2;
        else a /= 2;
    }
    /* the same number of tiles, of even sizes (rounded up to 8 rows and 16
     * columns): M = 322 in tiles of 256 and 66 rows gave one thread four
     * times the other's work */
    int na = (M + a - 1) / a, nb = (N + b - 1) / b;
    *tm = ((M + na - 1) / na + 7) & ~7;
    *tn = ((N + nb - 1) / nb + 15) & ~15;
}

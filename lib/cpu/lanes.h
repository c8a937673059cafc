/* lanes.h: the one order in which the CPU ops add 16 lanes (DESIGN.md §7).
 * A sum of many floats runs in 16 lanes, element i in lane i % 16 in order;
 * the lanes are then added by the tree (i + i+8), (+ i+4), (+ i+2), (0 + 1).
 * vr_tree16 is the definition (the C variants); the vector variants hold the
 * lanes in one AVX-512 register, two AVX2 ones or four NEON ones and add
 * them by the same tree, so a sum is the same bits on every CPU. Used by
 * the exp sums (ops.c) and the GEMV's dot products (gemv.c). */
#ifndef VR_CPU_LANES_H
#define VR_CPU_LANES_H

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

static inline float vr_tree16(const float a[16])
{
    float t[8], u[4];
    for (int i = 0; i < 8; i++) t[i] = a[i] + a[i + 8];
    for (int i = 0; i < 4; i++) u[i] = t[i] + t[i + 4];
    return (u[0] + u[2]) + (u[1] + u[3]);
}

#if defined(__x86_64__)
/* the tree of lanes lo (0..7) and hi (8..15) */
__attribute__((target("avx2"))) static inline float vr_tree8x2(__m256 lo, __m256 hi)
{
    __m256 t = _mm256_add_ps(lo, hi);                                                /* i + i+8 */
    __m128 u = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)); /* + i+4 */
    __m128 v = _mm_add_ps(u, _mm_movehl_ps(u, u));                                   /* + i+2 */
    return _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)));                         /* 0 + 1 */
}

__attribute__((target("avx512f"))) static inline float vr_tree16_512(__m512 a)
{
    return vr_tree8x2(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}
#endif

#if defined(__aarch64__)
/* the tree of lanes a0 (0..3), a1 (4..7), a2 (8..11), a3 (12..15) */
static inline float vr_tree4x4(float32x4_t a0, float32x4_t a1, float32x4_t a2, float32x4_t a3)
{
    float32x4_t u = vaddq_f32(vaddq_f32(a0, a2), vaddq_f32(a1, a3)); /* (i + i+8) + (i+4 + i+12) */
    float32x2_t v = vadd_f32(vget_low_f32(u), vget_high_f32(u));    /* + i+2 */
    return vget_lane_f32(v, 0) + vget_lane_f32(v, 1);
}
#endif

#endif

/* isa_bits.c: the generation path's vector variants give the bits of their
 * definitions, so a rollout is the same bytes on every CPU. One process
 * tests the variant VR_ISA chose; t0050 runs this binary under every variant
 * the CPU can run (cpu_ops.c checks the same ops against float64; this file
 * checks that no variant has an arithmetic of its own).
 *
 * The definitions, written out here as plain loops:
 * - exp: vr_exp_def (ops.c), one float at a time;
 * - a sum: element i of each block of 4096 in lane i % 16, in order, the
 *   lanes by lanes.h's tree, the blocks in double (vr_exp_infer_cpu);
 * - softmax: the max, the exps of x - max summed as above, times 1 / sum;
 * - SwiGLU: g / (1 + exp(0 - g)) u; its gradient: s = 1 / (1 + exp(0 - g)),
 *   du = dy g s, dg = dy u s (1 + g (1 - s)), left to right;
 * - the GEMV's dot product: k < K16 in lane k % 16 by fma in order, the tree,
 *   then k >= K16 by fma in order, then + the bias (vr_dot_cpu: without). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "cpu/isa.h"
#include "cpu/lanes.h"
#include "cpu/ops.h"
#include "rng.h"

#include "weights.h"

#include "../tap.h"

static struct vr_rng rng;

static float frand(float lo, float hi) { return lo + (hi - lo) * (float)vr_rng_double(&rng); }

static int same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

static double exp_sum_def(float *out, const float *x, int n, float scale, float shift)
{
    double z = 0;
    for (int b = 0; b < n; b += 4096) {
        float acc[16] = {0};
        for (int i = b; i < n && i < b + 4096; i++) acc[i % 16] += out[i] = vr_exp_def(x[i] * scale - shift);
        z += vr_tree16(acc);
    }
    return z;
}

static float wval(const void *w, enum vr_dtype dt, size_t i)
{
    if (dt == VR_DTYPE_BF16) return vr_bf16_to_f32(((const uint16_t *)w)[i]);
    if (dt == VR_DTYPE_F16) return vr_f16_to_f32(((const uint16_t *)w)[i]);
    return ((const float *)w)[i];
}

static int gemv_same(enum vr_dtype dt, int M, int N, int K, int bias)
{
    float *x = vr_xmalloc((size_t)M * K * 4 + 4), *b = vr_xmalloc((size_t)N * 4);
    float *out = vr_xmalloc((size_t)M * N * 4), *want = vr_xmalloc((size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++) x[i] = frand(-1, 1);
    for (int i = 0; i < N; i++) b[i] = frand(-1, 1);
    void *w = rand_weight(dt, (size_t)N * K, frand);
    struct vr_tensor tw;
    int64_t shape[2] = {N, K};
    vr_tensor_view(&tw, dt, 2, shape, w);
    vr_gemv_cpu(out, x, &tw, bias ? b : NULL, M);
    int K16 = K & ~15;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float a[16] = {0};
            for (int k = 0; k < K16; k++) a[k % 16] = fmaf(x[(size_t)m * K + k], wval(w, dt, (size_t)n * K + k), a[k % 16]);
            float s = vr_tree16(a);
            for (int k = K16; k < K; k++) s = fmaf(x[(size_t)m * K + k], wval(w, dt, (size_t)n * K + k), s);
            want[(size_t)m * N + n] = s + (bias ? b[n] : 0.0f);
        }
    int ok_ = same(out, want, (size_t)M * N);
    free(x), free(b), free(out), free(want), free(w);
    return ok_;
}

int main(void)
{
    vr_rng_init(&rng, 424242, 0);
    printf("# VR_ISA variant: %s\n", vr_isa_name(vr_isa()));

    /* exp over its whole range and past both clamps, at odd lengths (the
     * tails), against the definition one float at a time */
    {
        int n = 100003, good = 1;
        float *x = vr_xmalloc((size_t)n * 4), *out = vr_xmalloc((size_t)n * 4), *want = vr_xmalloc((size_t)n * 4);
        for (int i = 0; i < n; i++) x[i] = i < 16 ? (float[]){0, -0.0f, 1, -1, 88.7f, 89, -87.3f, -88, -104, 100, 0.5f,
                                                             -0.5f, 0.34657359f, -0.34657359f, 1e-8f, -1e-8f}[i]
                                                  : frand(-95, 95);
        double z = vr_exp_infer_cpu(out, x, n, 1.0f, 0.0f), zw = exp_sum_def(want, x, n, 1.0f, 0.0f);
        good = same(out, want, (size_t)n);
        ok(good && z == zw, "exp of %d values in [-95, 95] (both clamps, +-0): each exp and the sum are the "
                            "definition's bits",
           n);
        for (int len = 1; len <= 40; len++) { /* every tail length, at an offset */
            float scale = frand(0.5f, 2), shift = frand(-3, 3);
            z = vr_exp_infer_cpu(out, x + 7, len, scale, shift), zw = exp_sum_def(want, x + 7, len, scale, shift);
            good &= same(out, want, (size_t)len) && z == zw;
        }
        ok(good, "exp x scale - shift and its sum, lengths 1..40: the definition's bits");
        free(x), free(out), free(want);
    }

    /* exp under EXP_LO (-87.3, where expf falls under FLT_MIN) is +0, not a
     * subnormal: a masked score's probability must be exactly 0, and
     * subnormals cost a microcode assist in every product they reach on
     * Intel CPUs (the old clamp gave 1.2e-38, which softmax's 1/sum made
     * subnormal: prefill attention ran 50x slower there). In every variant,
     * at every position of a vector. */
    {
        float x[37], y[37];
        for (int i = 0; i < 37; i++) x[i] = (float[]){-INFINITY, NAN, -87.31f, -88, -1e30f, -87.3f, 0}[i % 7];
        vr_exp_infer_cpu(y, x, 37, 1.0f, 0.0f);
        int good = 1;
        for (int i = 0; i < 37; i++)
            good &= i % 7 < 5 ? y[i] == 0 && !signbit(y[i]) : i % 7 == 5 ? y[i] >= FLT_MIN && y[i] < 1.3e-38f : y[i] == 1;
        ok(good && vr_exp_def(-INFINITY) == 0 && vr_exp_def(NAN) == 0 && vr_exp_def(-87.3f) >= FLT_MIN,
           "exp of -inf, NaN and arguments under -87.3 is +0 in every lane; exp(-87.3) is normal");
    }

    /* softmax and SwiGLU at lengths around the vector widths */
    {
        static const int lens[] = {1, 3, 4, 7, 8, 15, 16, 17, 31, 33, 100, 1000, 4097, 9000};
        int smx = 1, swi = 1, grad = 1;
        for (size_t t = 0; t < sizeof lens / sizeof *lens; t++) {
            int n = lens[t];
            float *x = vr_xmalloc((size_t)n * 4), *y = vr_xmalloc((size_t)n * 4), *u = vr_xmalloc((size_t)n * 4);
            float *want = vr_xmalloc((size_t)n * 4);
            for (int i = 0; i < n; i++) x[i] = frand(-30, 30), u[i] = frand(-2, 2);
            if (n > 5) x[3] = -INFINITY; /* a masked score */
            memcpy(y, x, (size_t)n * 4);
            vr_softmax_infer_cpu(y, n);
            float mx = -INFINITY;
            for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
            float inv = 1.0f / (float)exp_sum_def(want, x, n, 1.0f, mx);
            for (int i = 0; i < n; i++) want[i] *= inv;
            smx &= same(y, want, (size_t)n) && (n <= 5 || (y[3] == 0 && !signbit(y[3])));
            for (int i = 0; i < n; i++) x[i] = frand(-20, 20);
            vr_swiglu_infer_cpu(y, x, u, (size_t)n);
            for (int i = 0; i < n; i++) want[i] = x[i] / (1.0f + vr_exp_def(0.0f - x[i])) * u[i];
            swi &= same(y, want, (size_t)n);
            /* the gradient, from y as dy; du alone, then dg alone written over dy */
            float *du = vr_xmalloc((size_t)n * 4 + 4), *wg = vr_xmalloc((size_t)n * 4 + 4);
            for (int i = 0; i < n; i++) {
                float d = y[i], s = 1.0f / (1.0f + vr_exp_def(0.0f - x[i]));
                want[i] = d * x[i] * s;
                wg[i] = d * u[i] * s * (1.0f + x[i] * (1.0f - s));
            }
            vr_swiglu_grad_span_cpu(NULL, du, y, x, u, (size_t)n);
            grad &= same(du, want, (size_t)n);
            vr_swiglu_grad_span_cpu(y, NULL, y, x, u, (size_t)n);
            grad &= same(y, wg, (size_t)n);
            free(du), free(wg);
            free(x), free(y), free(u), free(want);
        }
        ok(smx, "softmax, 14 lengths 1..9000 (one -inf, which gives +0): the definition's bits");
        ok(swi, "SwiGLU, 14 lengths 1..9000: the definition's bits");
        ok(grad, "SwiGLU's gradient (dg over dy, du), 14 lengths 1..9000: the definition's bits");
    }

    /* the GEMV: every dtype, K around 16, 1..15 rows (the AVX-512 variant's
     * tiles of 8, 4, 2 and 1 rows by 16 weight rows, and the weight rows
     * past the last whole tile of a thread's share) */
    {
        static const int Ks[] = {1, 15, 16, 17, 64, 65, 100, 513};
        static const enum vr_dtype dts[] = {VR_DTYPE_F32, VR_DTYPE_BF16, VR_DTYPE_F16};
        int good = 1, n = 0;
        for (size_t d = 0; d < 3; d++)
            for (size_t k = 0; k < sizeof Ks / sizeof *Ks; k++)
                for (int M = 1; M <= 15; M++, n += 2)
                    good &= gemv_same(dts[d], M, 37, Ks[k], (M + (int)k) % 2) && gemv_same(dts[d], M, 70, Ks[k], M % 2);
        ok(good, "GEMV, %d shapes (f32, bf16, f16; K 1..513; 1..15 rows; 37 and 70 weight rows; with and without bias): the "
                 "definition's bits",
           n);
    }
    /* one dot product (RMSNorm's sum of squares): the GEMV's definition */
    {
        static const int ns[] = {0, 1, 7, 15, 16, 17, 31, 33, 64, 100, 512, 513, 1280, 1408, 2048, 3421};
        int good = 1;
        for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
            int n = ns[t], n16 = n & ~15;
            float *a = vr_xmalloc((size_t)n * 4 + 4), *b = vr_xmalloc((size_t)n * 4 + 4), acc[16] = {0};
            for (int i = 0; i < n; i++) a[i] = frand(-3, 3), b[i] = frand(-3, 3);
            for (int k = 0; k < n16; k++) acc[k % 16] = fmaf(a[k], b[k], acc[k % 16]);
            float want = vr_tree16(acc);
            for (int k = n16; k < n; k++) want = fmaf(a[k], b[k], want);
            float got = vr_dot_cpu(a, b, n), sq = vr_dot_cpu(a, a, n);
            memset(acc, 0, sizeof acc);
            for (int k = 0; k < n16; k++) acc[k % 16] = fmaf(a[k], a[k], acc[k % 16]);
            float wsq = vr_tree16(acc);
            for (int k = n16; k < n; k++) wsq = fmaf(a[k], a[k], wsq);
            good &= memcmp(&got, &want, 4) == 0 && memcmp(&sq, &wsq, 4) == 0;
            free(a), free(b);
        }
        ok(good, "dot product, 16 lengths 0..3421 (x.y and x.x): the definition's bits");
    }
    return done_testing();
}

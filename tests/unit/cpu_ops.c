/* cpu_ops.c: the vector variants of the hot CPU ops against float64
 * references, on odd sizes: the bf16/f16/f32 GEMV of decode, max, the
 * shifted exp-and-sum of sampling, softmax and SwiGLU. One process tests the
 * variant VR_ISA chose (cpu/isa.h); t0050 runs this binary under every
 * variant the CPU can run.
 *
 * Tolerances, from the arithmetic (u = 2^-24, float32's unit roundoff):
 * - a K-term float32 dot product in any summation order is within
 *   K u sum|x_k w_k| of the exact one (Higham, Accuracy and Stability of
 *   Numerical Algorithms, §3.1; an FMA only removes roundings), plus one
 *   rounding for the bias: the check is |got - ref| <= (K + 2) u (sum|x w| + |b|);
 * - exp of x scale - shift computed in float32: the product rounds (an
 *   absolute error u|x scale| in the argument), the difference a rounds (u|a|),
 *   and expf is within 2 ulp: |got - ref| <= (|x scale| + |a| + 4) u ref; below
 *   an argument of -87.3 (a value under FLT_MIN) the exp is 0, so an absolute
 *   error up to exp(-87.3) = 1.22e-38 is allowed too (TINY);
 * - sums of n positive terms each within e relatively: within (e + n u);
 * - softmax: each exp as above, and dividing by a sum within (e + n u):
 *   within (2 e + n u + u) of the exact value, relatively. */
#include <math.h>

#include "cpu/isa.h"
#include "cpu/ops.h"
#include "rng.h"

#include "weights.h"

#include "../tap.h"

static const double U = 1.0 / 16777216.0, TINY = 1.3e-38;
static struct vr_rng rng;

static float frand(float lo, float hi) { return lo + (hi - lo) * (float)vr_rng_double(&rng); }

static double wval(const void *w, enum vr_dtype dt, size_t i)
{
    if (dt == VR_DTYPE_BF16) return vr_bf16_to_f32(((const uint16_t *)w)[i]);
    if (dt == VR_DTYPE_F16) return vr_f16_to_f32(((const uint16_t *)w)[i]);
    return ((const float *)w)[i];
}

static void gemv(enum vr_dtype dt, int M, int N, int K)
{
    float *x = vr_xmalloc((size_t)M * K * 4 + 4), *b = vr_xmalloc((size_t)N * 4), *out = vr_xmalloc((size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++) x[i] = frand(-1, 1);
    for (int i = 0; i < N; i++) b[i] = frand(-1, 1);
    void *w = rand_weight(dt, (size_t)N * K, frand);
    struct vr_tensor tw;
    int64_t shape[2] = {N, K};
    vr_tensor_view(&tw, dt, 2, shape, w);
    vr_gemv_cpu(out, x, &tw, b, M);
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = b[n], a = fabs(b[n]);
            for (int k = 0; k < K; k++) {
                double p = (double)x[(size_t)m * K + k] * wval(w, dt, (size_t)n * K + k);
                s += p, a += fabs(p);
            }
            double r = fabs(out[(size_t)m * N + n] - s) / ((K + 2) * U * a);
            if (!(r <= worst)) worst = r;
        }
    ok(worst <= 1, "gemv %s M=%d N=%d K=%d: error %.2f of its bound", vr_dtype_name(dt), M, N, K, worst);
    /* a row's result does not depend on the rows beside it */
    if (M > 1) {
        float *one = vr_xmalloc((size_t)N * 4);
        vr_gemv_cpu(one, x + (size_t)(M - 1) * K, &tw, b, 1);
        ok(memcmp(one, out + (size_t)(M - 1) * N, (size_t)N * 4) == 0, "gemv %s: row %d alone = in a batch of %d",
           vr_dtype_name(dt), M - 1, M);
        free(one);
    }
    free(x), free(b), free(out), free(w);
}

static void exps(int n)
{
    float *x = vr_xmalloc((size_t)n * 4 + 4), *out = vr_xmalloc((size_t)n * 4 + 4);
    for (int i = 0; i < n; i++) x[i] = frand(-30, 30);
    x[n / 2] = 40; /* the largest, so exp(x * scale - shift) <= 1 */
    float scale = 1.0f / 0.7f;
    float mx = vr_max_infer_cpu(x, n);
    double m = -INFINITY;
    for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    ok(mx == (float)m, "max n=%d exact", n);
    float shift = mx * scale;
    double z = vr_exp_infer_cpu(out, x, n, scale, shift), zr = 0, worst = 0, e_max = 0;
    for (int i = 0; i < n; i++) {
        double a = (double)x[i] * scale - shift, r = exp(a), e = (fabs((double)x[i] * scale) + fabs(a) + 4) * U;
        zr += r;
        e_max = e > e_max ? e : e_max;
        double q = fabs(out[i] - r) / (e * r + TINY);
        if (!(q <= worst)) worst = q;
    }
    ok(worst <= 1, "exp_shift n=%d: each exp within %.2f of its bound", n, worst);
    ok(fabs(z - zr) <= (e_max + n * U) * zr + n * TINY, "exp_shift n=%d: the sum %.9g within its bound of %.9g", n, z, zr);

    for (int i = 0; i < n; i++) x[i] = frand(-20, 20);
    memcpy(out, x, (size_t)n * 4);
    vr_softmax_infer_cpu(out, n);
    double mm = -INFINITY, s = 0;
    for (int i = 0; i < n; i++) mm = x[i] > mm ? x[i] : mm;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - mm);
    worst = 0;
    for (int i = 0; i < n; i++) {
        double a = (double)x[i] - mm, r = exp(a) / s, e = 2 * (fabs(a) + 4) * U + (n + 1) * U;
        double q = fabs(out[i] - r) / (e * r + TINY);
        if (!(q <= worst)) worst = q;
    }
    ok(worst <= 1, "softmax n=%d: within %.2f of its bound", n, worst);

    float *u = vr_xmalloc((size_t)n * 4 + 4);
    for (int i = 0; i < n; i++) x[i] = frand(-20, 20), u[i] = frand(-2, 2);
    vr_swiglu_infer_cpu(out, x, u, (size_t)n);
    worst = 0;
    for (int i = 0; i < n; i++) {
        /* g / (1 + exp(-g)) * u: exp within (|g| + 4) u, then an add, a divide, a multiply */
        double r = (double)x[i] / (1 + exp(-(double)x[i])) * u[i], e = (fabs(x[i]) + 8) * U;
        double q = fabs(out[i] - r) / (e * fabs(r) + TINY);
        if (!(q <= worst)) worst = q;
    }
    ok(worst <= 1, "swiglu n=%d: within %.2f of its bound", n, worst);
    free(x), free(out), free(u);
}

int main(void)
{
    vr_rng_init(&rng, 1, 0);
    diag("variant: %s", vr_isa_name(vr_isa()));
    static const int Ks[] = {1, 7, 8, 15, 16, 17, 63, 64, 65, 100, 257, 896};
    enum vr_dtype dts[] = {VR_DTYPE_F32, VR_DTYPE_BF16, VR_DTYPE_F16};
    for (int d = 0; d < 3; d++)
        for (size_t k = 0; k < sizeof Ks / sizeof *Ks; k++) gemv(dts[d], 1 + (int)(k % 8), 37, Ks[k]);
    gemv(VR_DTYPE_BF16, 16, 301, 2048);
    static const int ns[] = {1, 5, 8, 9, 16, 17, 31, 100, 4097, 151646};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) exps(ns[i]);
    return done_testing();
}

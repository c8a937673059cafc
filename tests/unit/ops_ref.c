/* ops_ref.c: every op of the seam (lib/ops.h), called through the backend
 * table, against its plain-loop reference (lib/cpu/ref.h), on random shapes
 * including odd sizes. One process tests the backend and the ISA variant it
 * runs (VR_ISA, cpu/isa.h); t0050 runs it under each variant the CPU can run.
 *
 * Each comparison is element by element against a bound derived from the
 * arithmetic, written beside it. u = 2^-24 is float32's unit roundoff. The
 * rules used throughout (Higham, Accuracy and Stability of Numerical
 * Algorithms, §3.1-3.4):
 * - a float32 sum of n terms, in any order and with or without FMA, is within
 *   (n + 1) u sum|terms| of the exact sum (n + 2 with a bias added first);
 * - a product or quotient of values with relative errors e1, e2 has relative
 *   error e1 + e2 + u;
 * - exp(a + da) = exp(a) (1 + da + ...): an absolute error in the argument is
 *   a relative error of the result; glibc's expf/erff/logf are within 1 ulp
 *   (2u), the vector exp of the _infer ops within (|a| + 4) u (cpu_ops.c);
 * - softmax probabilities from scores with absolute errors <= delta have
 *   relative errors <= 2 delta plus the roundings of the exp and the sum.
 * A small absolute TINY covers results near float32's underflow. */
#include <math.h>
#include <string.h>

#include "cpu/isa.h"
#include "cpu/ref.h"
#include "ops.h"
#include "rng.h"

#include "../tap.h"

static const double U = 1.0 / 16777216.0, TINY = 1e-30;
static struct vr_rng rng;
static struct vr_ws ws;

static float *fvec(size_t n, double lo, double hi)
{
    float *x = vr_xmalloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * vr_rng_double(&rng));
    return x;
}

static double *wide(const float *x, size_t n)
{
    double *d = vr_xmalloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static double *dzero(size_t n) { return vr_xcalloc(n ? n : 1, sizeof(double)); }

/* The worst |got - ref| / bound over n elements (<= 1 passes). */
static double worst_of(const float *got, const double *ref, const double *bound, size_t n)
{
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double q = fabs(got[i] - ref[i]) / (bound[i] + TINY);
        if (!(q <= w)) w = q; /* NaN sticks */
    }
    return w;
}

/* ---- linear ---- */

static void linear(int N, int O, int I, int bias)
{
    float *x = fvec((size_t)N * I, -1, 1), *w = fvec((size_t)O * I, -1, 1), *b = bias ? fvec(O, -1, 1) : NULL;
    float *dy = fvec((size_t)N * O, -1, 1), *dw = fvec((size_t)O * I, -1, 1), *db = fvec(O, -1, 1);
    float *y = vr_xmalloc((size_t)N * O * 4), *dx = vr_xmalloc((size_t)N * I * 4);
    double *X = wide(x, (size_t)N * I), *W = wide(w, (size_t)O * I), *B = b ? wide(b, O) : NULL,
           *DY = wide(dy, (size_t)N * O), *DW0 = wide(dw, (size_t)O * I), *DB0 = wide(db, O);
    double *Y = dzero((size_t)N * O), *DX = dzero((size_t)N * I), *DW = dzero((size_t)O * I), *DB = dzero(O);
    double *by = dzero((size_t)N * O), *bx = dzero((size_t)N * I), *bw = dzero((size_t)O * I), *bb = dzero(O);
    vr_linear_fwd(y, x, w, b, N, O, I, &ws);
    vr_linear_bwd(dx, dw, db, dy, x, w, N, O, I, &ws);
    vr_ws_reset(&ws);
    vr_linear_fwd_ref(Y, X, W, B, N, O, I);
    vr_linear_bwd_ref(DX, DW, DB, DY, X, W, N, O, I);
    /* y: I products and the bias, (I + 2) u sum|terms| */
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double a = B ? fabs(B[o]) : 0;
            for (int i = 0; i < I; i++) a += fabs(X[(size_t)n * I + i] * W[(size_t)o * I + i]);
            by[(size_t)n * O + o] = (I + 2) * U * a;
        }
    /* dx: O products; dw, db: N terms added to the initial value (accumulation) */
    for (int n = 0; n < N; n++)
        for (int i = 0; i < I; i++) {
            double a = 0;
            for (int o = 0; o < O; o++) a += fabs(DY[(size_t)n * O + o] * W[(size_t)o * I + i]);
            bx[(size_t)n * I + i] = (O + 1) * U * a;
        }
    for (int o = 0; o < O; o++) {
        double ab = fabs(DB0[o]);
        for (int n = 0; n < N; n++) ab += fabs(DY[(size_t)n * O + o]);
        bb[o] = (N + 2) * U * ab;
        DB[o] += DB0[o];
        for (int i = 0; i < I; i++) {
            double a = fabs(DW0[(size_t)o * I + i]);
            for (int n = 0; n < N; n++) a += fabs(DY[(size_t)n * O + o] * X[(size_t)n * I + i]);
            bw[(size_t)o * I + i] = (N + 2) * U * a;
            DW[(size_t)o * I + i] += DW0[(size_t)o * I + i];
        }
    }
    double e[4] = {worst_of(y, Y, by, (size_t)N * O), worst_of(dx, DX, bx, (size_t)N * I),
                   worst_of(dw, DW, bw, (size_t)O * I), worst_of(db, DB, bb, O)};
    ok(e[0] <= 1 && e[1] <= 1 && e[2] <= 1 && e[3] <= 1,
       "linear N=%d O=%d I=%d%s: y %.2f dx %.2f dw %.2f db %.2f of their bounds", N, O, I, bias ? " +b" : "", e[0],
       e[1], e[2], e[3]);
    free(x), free(w), free(b), free(dy), free(dw), free(db), free(y), free(dx), free(X), free(W), free(B), free(DY);
    free(DW0), free(DB0), free(Y), free(DX), free(DW), free(DB), free(by), free(bx), free(bw), free(bb);
}

/* linear_infer and gemv_infer: weights stored as dt, reference on the widened
 * weights (exact), the same (K + 2) u sum|x w| + |b| bound */
static void linear_infer(enum vr_dtype dt, int M, int N, int K, int gemv)
{
    float *x = fvec((size_t)M * K, -1, 1), *wf = fvec((size_t)N * K, -1, 1), *bf = fvec(N, -1, 1);
    void *w = vr_xmalloc((size_t)N * K * 4);
    uint16_t *bh = vr_xmalloc((size_t)N * 2);
    double *W = dzero((size_t)N * K), *B = dzero(N), *X = wide(x, (size_t)M * K), *Y = dzero((size_t)M * N),
           *bd = dzero((size_t)M * N);
    for (size_t i = 0; i < (size_t)N * K; i++) {
        if (dt == VR_DTYPE_F32) ((float *)w)[i] = wf[i], W[i] = wf[i];
        else if (dt == VR_DTYPE_BF16) ((uint16_t *)w)[i] = vr_f32_to_bf16(wf[i]), W[i] = vr_bf16_to_f32(((uint16_t *)w)[i]);
        else ((uint16_t *)w)[i] = vr_f32_to_f16(wf[i]), W[i] = vr_f16_to_f32(((uint16_t *)w)[i]);
    }
    for (int n = 0; n < N; n++) bh[n] = vr_f32_to_bf16(bf[n]), B[n] = vr_bf16_to_f32(bh[n]); /* a bf16 bias */
    struct vr_tensor tw, tb;
    int64_t sw[2] = {N, K}, sb[1] = {N};
    vr_tensor_view(&tw, dt, 2, sw, w);
    vr_tensor_view(&tb, VR_DTYPE_BF16, 1, sb, bh);
    float *y = vr_xmalloc((size_t)M * N * 4);
    if (gemv) vr_gemv_infer(y, x, &tw, &tb, M, &ws);
    else vr_linear_infer(y, x, &tw, &tb, M, &ws);
    vr_ws_reset(&ws);
    vr_linear_fwd_ref(Y, X, W, B, M, N, K);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double a = fabs(B[n]);
            for (int k = 0; k < K; k++) a += fabs(X[(size_t)m * K + k] * W[(size_t)n * K + k]);
            bd[(size_t)m * N + n] = (K + 2) * U * a;
        }
    double e = worst_of(y, Y, bd, (size_t)M * N);
    ok(e <= 1, "%s %s M=%d N=%d K=%d: %.2f of its bound", gemv ? "gemv_infer" : "linear_infer", vr_dtype_name(dt), M,
       N, K, e);
    free(x), free(wf), free(bf), free(w), free(bh), free(W), free(B), free(X), free(Y), free(bd), free(y);
}

/* ---- rmsnorm ---- */

static void rmsnorm(int N, int D)
{
    size_t n = (size_t)N * D;
    float *x = fvec(n, -2, 2), *w = fvec(D, 0.5, 1.5), *dy = fvec(n, -1, 1), *dw = fvec(D, -1, 1);
    float *y = vr_xmalloc(n * 4), *r = vr_xmalloc((size_t)N * 4), *dx = vr_xmalloc(n * 4);
    double *X = wide(x, n), *W = wide(w, D), *DY = wide(dy, n), *DW0 = wide(dw, D), *Y = dzero(n), *R = dzero(N),
           *DX = dzero(n), *DW = dzero(D), *by = dzero(n), *br = dzero(N), *bx = dzero(n), *bw = dzero(D);
    vr_rmsnorm_fwd(y, r, x, w, N, D, 1e-6);
    vr_rmsnorm_bwd(dx, dw, dy, x, r, w, N, D);
    vr_rmsnorm_fwd_ref(Y, R, X, W, N, D, 1e-6);
    vr_rmsnorm_bwd_ref(DX, DW, DY, X, W, N, D, 1e-6);
    /* rstd: the D squares sum within (D + 1) u (float: 16 lanes of D/16
     * fused terms each, then the tree's 4 adds, (D/16 + 5) u; the float64
     * twin in order, (D + 1) u), the mean and eps add 2u, the
     * square root halves it and adds u, the division adds u:
     * (D/2 + 4) u. y = w (x r): two more products. */
    double er = (D / 2.0 + 4) * U;
    for (int i = 0; i < N; i++) {
        br[i] = er * R[i];
        double dot = 0;
        for (int d = 0; d < D; d++) dot += fabs(DY[(size_t)i * D + d] * W[d] * X[(size_t)i * D + d]);
        for (int d = 0; d < D; d++) {
            size_t j = (size_t)i * D + d;
            by[j] = (er + 2 * U) * fabs(Y[j]);
            /* dx = r (dy w - x k), k = r^2 dot / D: r's error enters once in the
             * first term and three times in the second, dot is a D-term sum,
             * and some 6 roundings: bound on the absolute values of the terms */
            double t1 = R[i] * fabs(DY[j] * W[d]), t2 = R[i] * fabs(X[j]) * R[i] * R[i] * dot / D;
            bx[j] = (er + 3 * U) * t1 + (3 * er + (D + 6) * U) * t2;
        }
    }
    for (int d = 0; d < D; d++) { /* dw: N terms dy x r, each with r's error, onto the initial value */
        double a = 0;
        for (int i = 0; i < N; i++) a += fabs(DY[(size_t)i * D + d] * X[(size_t)i * D + d]) * R[i];
        bw[d] = (er + (N + 3) * U) * (a + fabs(DW0[d]));
        DW[d] += DW0[d];
    }
    double e[4] = {worst_of(y, Y, by, n), worst_of(r, R, br, N), worst_of(dx, DX, bx, n), worst_of(dw, DW, bw, D)};
    ok(e[0] <= 1 && e[1] <= 1 && e[2] <= 1 && e[3] <= 1,
       "rmsnorm N=%d D=%d: y %.2f rstd %.2f dx %.2f dw %.2f of their bounds", N, D, e[0], e[1], e[2], e[3]);
    /* y may alias x (the generation path normalises in place) */
    float *xa = vr_xmalloc(n * 4);
    memcpy(xa, x, n * 4);
    vr_rmsnorm_fwd(xa, NULL, xa, w, N, D, 1e-6);
    ok(memcmp(xa, y, n * 4) == 0, "rmsnorm N=%d D=%d: in place, rstd not kept: the same bytes", N, D);
    free(x), free(w), free(dy), free(dw), free(y), free(r), free(dx), free(X), free(W), free(DY), free(DW0), free(Y);
    free(R), free(DX), free(DW), free(by), free(br), free(bx), free(bw), free(xa);
}

/* ---- rope ---- */

static void rope(int N, int H, int K, int pad)
{
    int stride = H * K + pad;
    size_t n = (size_t)N * stride;
    float *x = fvec(n, -1, 1), *cs = fvec((size_t)N * K, -1, 1), *sn = fvec((size_t)N * K, -1, 1);
    float *y = vr_xmalloc(n * 4), *g = vr_xmalloc(n * 4);
    memcpy(y, x, n * 4), memcpy(g, x, n * 4);
    double *Y = wide(x, n), *G = wide(x, n), *by = dzero(n), *bg = dzero(n);
    vr_rope_fwd(y, cs, sn, N, H, K, stride);
    vr_rope_bwd(g, cs, sn, N, H, K, stride);
    vr_rope_fwd_ref(Y, cs, sn, N, H, K, stride);
    vr_rope_bwd_ref(G, cs, sn, N, H, K, stride);
    /* each output is a c +- b s: two products and a sum, 2u (|a c| + |b s|);
     * the padding is not touched: bound 0 */
    int h2 = K / 2;
    for (int i = 0; i < N; i++)
        for (int h = 0; h < H; h++)
            for (int d = 0; d < h2; d++) {
                size_t j = (size_t)i * stride + (size_t)h * K + d;
                const float *c = cs + (size_t)i * K, *s = sn + (size_t)i * K;
                double a = fabs(x[j]), b = fabs(x[j + h2]);
                by[j] = 2 * U * (a * fabs(c[d]) + b * fabs(s[d]));
                by[j + h2] = 2 * U * (b * fabs(c[d + h2]) + a * fabs(s[d + h2]));
                bg[j] = 2 * U * (a * fabs(c[d]) + b * fabs(s[d + h2]));
                bg[j + h2] = 2 * U * (b * fabs(c[d + h2]) + a * fabs(s[d]));
            }
    double e[2] = {worst_of(y, Y, by, n), worst_of(g, G, bg, n)};
    ok(e[0] <= 1 && e[1] <= 1, "rope N=%d H=%d K=%d pad %d: fwd %.2f bwd %.2f of their bounds", N, H, K, pad, e[0],
       e[1]);
    free(x), free(cs), free(sn), free(y), free(g), free(Y), free(G), free(by), free(bg);
}

/* ---- elementwise ---- */

static void elementwise(size_t n)
{
    float *g = fvec(n, -12, 12), *u = fvec(n, -2, 2), *dy = fvec(n, -1, 1);
    float *y = vr_xmalloc(n * 4), *yi = vr_xmalloc(n * 4), *dg = vr_xmalloc(n * 4), *du = vr_xmalloc(n * 4),
          *ge = vr_xmalloc(n * 4), *gd = vr_xmalloc(n * 4), *ad = vr_xmalloc(n * 4);
    double *G = wide(g, n), *Uu = wide(u, n), *DY = wide(dy, n), *Y = dzero(n), *DG = dzero(n), *DU = dzero(n),
           *GE = dzero(n), *GD = dzero(n), *AD = wide(u, n);
    double *b1 = dzero(n), *b2 = dzero(n), *b3 = dzero(n), *b4 = dzero(n), *b5 = dzero(n), *b6 = dzero(n),
           *b7 = dzero(n);
    vr_swiglu_fwd(y, g, u, n);
    vr_swiglu_infer(yi, g, u, n);
    vr_swiglu_bwd(dg, du, dy, g, u, n);
    vr_gelu_fwd(ge, g, n);
    vr_gelu_bwd(gd, dy, g, n);
    memcpy(ad, u, n * 4);
    vr_add_fwd(ad, dy, n);
    vr_swiglu_fwd_ref(Y, G, Uu, n);
    vr_swiglu_bwd_ref(DG, DU, DY, G, Uu, n);
    vr_gelu_fwd_ref(GE, G, n);
    vr_gelu_bwd_ref(GD, DY, G, n);
    vr_add_fwd_ref(AD, DY, n);
    for (size_t i = 0; i < n; i++) {
        double x = G[i], s = 1 / (1 + exp(-x)), F = 1 + x * (1 - s);
        /* swiglu (fwd and _infer are the same code): the vector exp
         * (vr_exp_def) is within (|g| + 4) u of e^-g, the argument's rounding
         * magnified by |g| plus the polynomial's; then 1 + e, the division
         * and the product: (|g| + 8) u */
        b1[i] = (fabs(x) + 8) * U * fabs(Y[i]);
        b2[i] = b1[i];
        /* dg = dy u s (1 + g (1 - s)): s = 1 / (1 + e) within (|g| + 6) u
         * relatively (e's error shrunk by e / (1 + e) <= 1, two roundings), so
         * 1 - s within (|g| + 7) u absolutely, g (1 - s) within
         * |g| (|g| + 8) u, F within that + |F| u, and the products' (|g| + 9)
         * |F| u: u |dy u s| ((|g| + 10) |F| + |g| (|g| + 8)); du = dy g s:
         * (|g| + 6) u + 2 products */
        b3[i] = U * fabs(DY[i] * Uu[i] * s) * ((fabs(x) + 10) * fabs(F) + fabs(x) * (fabs(x) + 8));
        b4[i] = (fabs(x) + 8) * U * fabs(DU[i]);
        /* gelu = 0.5 x (1 + erf(x c)), c = 1/sqrt 2 rounded (u): the argument is
         * within 2u|x|, erf' <= 1.13, erff 2u, then 3 roundings:
         * (4 + 2|x|) u (|y| + |x|) covers it */
        b5[i] = (4 + 2 * fabs(x)) * U * (fabs(GE[i]) + fabs(x));
        /* gelu' = Phi(x) + x phi(x): Phi as above, phi = e^(-x^2/2) c' with
         * an argument within x^2 u: |dy| u (8 + 4|x| + 2 x^2) */
        b6[i] = fabs(DY[i]) * U * (8 + 4 * fabs(x) + 2 * x * x);
        b7[i] = U * fabs(AD[i]); /* one correctly rounded add */
    }
    double e[7] = {worst_of(y, Y, b1, n), worst_of(yi, Y, b2, n), worst_of(dg, DG, b3, n), worst_of(du, DU, b4, n),
                   worst_of(ge, GE, b5, n), worst_of(gd, GD, b6, n), worst_of(ad, AD, b7, n)};
    ok(e[0] <= 1 && e[1] <= 1 && e[2] <= 1 && e[3] <= 1,
       "swiglu n=%zu: fwd %.2f infer %.2f dg %.2f du %.2f of their bounds", n, e[0], e[1], e[2], e[3]);
    ok(e[4] <= 1 && e[5] <= 1, "gelu n=%zu: fwd %.2f bwd %.2f of their bounds", n, e[4], e[5]);
    ok(e[6] <= 1, "add n=%zu: %.2f of its bound", n, e[6]);
    free(g), free(u), free(dy), free(y), free(yi), free(dg), free(du), free(ge), free(gd), free(ad), free(G);
    free(Uu), free(DY), free(Y), free(DG), free(DU), free(GE), free(GD), free(AD);
    free(b1), free(b2), free(b3), free(b4), free(b5), free(b6), free(b7);
}

/* ---- embedding rows ---- */

/* Gathers are copies (exact); the scatter-add of c rows onto a table row is
 * a (c + 1)-term sum with the initial value: (c + 1) u sum|terms|. */
static void embed(int N, int D, int V)
{
    float *tab = fvec((size_t)V * D, -1, 1), *dx = fvec((size_t)N * D, -1, 1), *dt = fvec((size_t)V * D, -1, 1);
    float *x = vr_xmalloc((size_t)N * D * 4), *xi = vr_xmalloc((size_t)N * D * 4);
    int32_t *idx = vr_xmalloc((size_t)N * 4), *ids = vr_xmalloc((size_t)N * 4), *cnt = vr_xcalloc(V, 4);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)vr_rng_below(&rng, V), idx[i] = i % 3 ? ids[i] : -1;
    for (size_t i = 0; i < (size_t)N * D; i++) x[i] = 7;
    double *T = wide(tab, (size_t)V * D), *DX = wide(dx, (size_t)N * D), *DT = wide(dt, (size_t)V * D),
           *X = dzero((size_t)N * D), *bt = dzero((size_t)V * D);
    for (size_t i = 0; i < (size_t)N * D; i++) X[i] = 7;
    uint16_t *tb = vr_xmalloc((size_t)V * D * 2);
    for (size_t i = 0; i < (size_t)V * D; i++) tb[i] = vr_f32_to_bf16(tab[i]);
    struct vr_tensor te;
    int64_t shape[2] = {V, D};
    vr_tensor_view(&te, VR_DTYPE_BF16, 2, shape, tb);
    vr_embed_fwd(x, tab, idx, N, D);
    vr_embed_bwd(dt, dx, idx, N, D);
    vr_embed_infer(xi, &te, ids, N);
    vr_embed_fwd_ref(X, T, idx, N, D);
    for (int i = 0; i < N; i++)
        for (int d = 0; idx[i] >= 0 && d < D; d++) bt[(size_t)idx[i] * D + d] += fabs(DX[(size_t)i * D + d]);
    for (int i = 0; i < N; i++) cnt[idx[i] >= 0 ? idx[i] : 0] += idx[i] >= 0;
    for (int r = 0; r < V; r++)
        for (int d = 0; d < D; d++) {
            size_t j = (size_t)r * D + d;
            bt[j] = (cnt[r] + 1) * U * (bt[j] + fabs(DT[j]));
        }
    vr_embed_bwd_ref(DT, DX, idx, N, D);
    int same = 1, same_i = 1;
    for (size_t i = 0; i < (size_t)N * D; i++) same &= x[i] == X[i];
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) same_i &= xi[(size_t)i * D + d] == vr_bf16_to_f32(tb[(size_t)ids[i] * D + d]);
    double e = worst_of(dt, DT, bt, (size_t)V * D);
    ok(same && same_i && e <= 1, "embed N=%d D=%d V=%d: gather %s, infer (bf16) %s, scatter-add %.2f of its bound", N,
       D, V, same ? "exact" : "WRONG", same_i ? "exact" : "WRONG", e);
    free(tab), free(dx), free(dt), free(x), free(xi), free(idx), free(ids), free(cnt), free(T), free(DX), free(DT);
    free(X), free(bt), free(tb);
}

/* ---- sampling ---- */

static void sampling(int n)
{
    float *x = fvec(n, -20, 20), *out = vr_xmalloc((size_t)n * 4), *sm = vr_xmalloc((size_t)n * 4);
    double *X = wide(x, n), *O = dzero(n), *S = dzero(n), *bo = dzero(n), *bs = dzero(n);
    float scale = 1.0f / 0.7f, mx = vr_max_infer(x, n), shift = mx * scale;
    double z = vr_exp_infer(out, x, n, scale, shift), zr = vr_exp_ref(O, X, n, scale, shift), emax = 0;
    memcpy(sm, x, (size_t)n * 4);
    vr_softmax_infer(sm, n);
    vr_softmax_ref(S, X, n);
    for (int i = 0; i < n; i++) {
        /* x scale rounds (u |x scale|), minus shift rounds (u |a|), exp (|a| + 4) u */
        double a = X[i] * scale - shift, e = (fabs(X[i] * scale) + fabs(a) + 4) * U;
        bo[i] = e * O[i];
        emax = e > emax ? e : emax;
        /* softmax: the exp of x - max as above, and the sum's (n + 1) u */
        bs[i] = (2 * (fabs(X[i] - vr_max_ref(X, n)) + 4) + n + 1) * U * S[i];
    }
    double e[2] = {worst_of(out, O, bo, n), worst_of(sm, S, bs, n)};
    ok(mx == vr_max_ref(X, n), "max n=%d exact", n);
    ok(e[0] <= 1 && fabs(z - zr) <= (emax + n * U) * zr,
       "exp n=%d: each %.2f of its bound, the sum %.9g of %.9g within (e + n u)", n, e[0], z, zr);
    ok(e[1] <= 1, "softmax n=%d: %.2f of its bound", n, e[1]);
    free(x), free(out), free(sm), free(X), free(O), free(S), free(bo), free(bs);
}

/* ---- attention ---- */

/* Bounds of out (N, H*K) and lse (N, H) from the exact scores. A score's
 * error: its K-term dot (K + 1) u sum|q k| scaled, and the scale's rounding.
 * Probabilities then within 2 delta + (2|s - m| + 8) u (the exp of either
 * variant) + (L + 2) u (the sum and the division), and out, an L-term sum of
 * p v, within (that + (L + 1) u) sum p |v|. lse = m + log Z: delta + (L + 4) u
 * + u |lse|. */
static void attn_bounds(double *bo, double *bl, const double *q, const double *k, const double *v,
                        const struct vr_attn_dims *d)
{
    struct vr_attn_dims one = *d;
    int maxk = d->cu ? d->cu[d->nseg] : d->nkeys;
    double *p = dzero(maxk), *lse = dzero(1), *o = dzero(d->K), sc = 1 / sqrt((double)d->K);
    for (int i = 0; i < d->N; i++)
        for (int h = 0; h < d->H; h++) {
            int kh = h / (d->H / d->KVH), j0 = 0, j1 = 0, L = 0;
            if (d->cu) {
                int s = 0;
                while (d->cu[s + 1] <= i) s++;
                j0 = d->cu[s], j1 = d->causal ? i + 1 : d->cu[s + 1];
            } else {
                j1 = d->q0 + i + 1 < d->nkeys ? d->q0 + i + 1 : d->nkeys;
            }
            const double *qi = q + (size_t)i * d->q_stride + (size_t)h * d->K;
            double delta = 0, m = -INFINITY, z = 0, spread = 0;
            for (int j = j0; j < j1; j++) {
                if (!d->cu && d->valid && !d->valid[j]) {
                    p[j] = -INFINITY;
                    continue;
                }
                const double *kj = d->cu ? k + (size_t)j * d->kv_stride + (size_t)kh * d->K
                                         : k + ((size_t)kh * d->cap + j) * d->K;
                double s = 0, a = 0;
                for (int e = 0; e < d->K; e++) s += qi[e] * kj[e], a += fabs(qi[e] * kj[e]);
                p[j] = s * sc;
                delta = fmax(delta, (d->K + 3) * U * a * sc);
                m = fmax(m, p[j]);
                L++;
            }
            for (int j = j0; j < j1; j++) spread = p[j] > -INFINITY ? fmax(spread, m - p[j]) : spread;
            for (int j = j0; j < j1; j++) z += p[j] = L ? exp(p[j] - m) : 0;
            double ep = 2 * delta + (2 * spread + 8) * U + (L + 2) * U, pv[1024] = {0};
            VR_ASSERT(d->K <= 1024);
            for (int j = j0; j < j1 && L; j++) {
                const double *vj = d->cu ? v + (size_t)j * d->kv_stride + (size_t)kh * d->K
                                         : v + ((size_t)kh * d->cap + j) * d->K;
                for (int e = 0; e < d->K; e++) pv[e] += p[j] / z * fabs(vj[e]);
            }
            for (int e = 0; e < d->K; e++) bo[((size_t)i * d->H + h) * d->K + e] = (ep + (L + 1) * U) * pv[e];
            if (bl) bl[(size_t)i * d->H + h] = L ? delta + (L + 4) * U + U * fabs(m + log(z)) : 0;
        }
    (void)one;
    free(p), free(lse), free(o);
}

/* Backward bounds (packed rows): with the probabilities' relative error ep
 * and out's bound bo from above, dp_j = dout . v_j within (K + 1) u
 * sum|dout v|, D = dout . out within (K + 1) u sum|dout out| + sum|dout| bo,
 * ds_j = p_j (dp_j - D) within ep |ds_j| + p_j (e_dp + e_D) + 2u |ds_j|;
 * then dq, dk (sums over keys, or over the queries of every head of the
 * group) and dv add their sums' (terms + 1) u sum|terms|. */
static void attn_bwd_bounds(double *bq, double *bk, double *bv, const double *dout, const double *q,
                            const double *k, const double *v, const double *bo, const struct vr_attn_dims *d)
{
    int N = d->N, K = d->K, G = d->H / d->KVH;
    double sc = 1 / sqrt((double)K), *p = dzero(N), *dp = dzero(N), *eq = dzero(K);
    double *out = dzero((size_t)N * d->H * K);
    vr_attn_fwd_ref(out, NULL, q, k, v, d);
    for (int i = 0; i < N; i++)
        for (int h = 0; h < d->H; h++) {
            int kh = h / G, s = 0;
            while (d->cu[s + 1] <= i) s++;
            int j0 = d->cu[s], j1 = d->causal ? i + 1 : d->cu[s + 1], L = j1 - j0, Lq = d->cu[s + 1] - d->cu[s];
            const double *qi = q + (size_t)i * d->q_stride + (size_t)h * K, *go = dout + ((size_t)i * d->H + h) * K;
            const double *oi = out + ((size_t)i * d->H + h) * K, *boi = bo + ((size_t)i * d->H + h) * K;
            double m = -INFINITY, z = 0, delta = 0, spread = 0, D = 0, eD = 0;
            for (int j = j0; j < j1; j++) {
                const double *kj = k + (size_t)j * d->kv_stride + (size_t)kh * K;
                double sdot = 0, a = 0;
                for (int e = 0; e < K; e++) sdot += qi[e] * kj[e], a += fabs(qi[e] * kj[e]);
                p[j] = sdot * sc;
                delta = fmax(delta, (K + 3) * U * a * sc);
                m = fmax(m, p[j]);
            }
            for (int j = j0; j < j1; j++) spread = fmax(spread, m - p[j]);
            for (int j = j0; j < j1; j++) z += p[j] = exp(p[j] - m);
            double ep = 2 * delta + (2 * spread + 8) * U + (L + 2) * U;
            for (int e = 0; e < K; e++) D += go[e] * oi[e], eD += (K + 1) * U * fabs(go[e] * oi[e]) + fabs(go[e]) * boi[e];
            for (int e = 0; e < K; e++) eq[e] = 0;
            for (int j = j0; j < j1; j++) {
                const double *vj = v + (size_t)j * d->kv_stride + (size_t)kh * K,
                             *kj = k + (size_t)j * d->kv_stride + (size_t)kh * K;
                double pj = p[j] / z, a = 0;
                dp[j] = 0;
                for (int e = 0; e < K; e++) dp[j] += go[e] * vj[e], a += fabs(go[e] * vj[e]);
                double ds = pj * (dp[j] - D), eds = (ep + 2 * U) * fabs(ds) + pj * ((K + 1) * U * a + eD);
                for (int e = 0; e < K; e++) {
                    eq[e] += sc * (eds + (L + 1) * U * fabs(ds)) * fabs(kj[e]);
                    size_t kv = (size_t)j * d->kv_stride + (size_t)kh * K + e;
                    bk[kv] += sc * (eds + (Lq * G + 1) * U * fabs(ds)) * fabs(qi[e]);
                    bv[kv] += (ep + (Lq * G + 1) * U) * pj * fabs(go[e]);
                }
            }
            for (int e = 0; e < K; e++) bq[(size_t)i * d->q_stride + (size_t)h * K + e] = eq[e];
        }
    free(p), free(dp), free(eq), free(out);
}

/* Packed rows: q, k, v in one (N, W) buffer with 3 padding columns, as the
 * vision tower's qkv and the decoder's separate q, k, v alike (strides). */
static void attention(int H, int KVH, int K, const int *cu, int nseg, int causal)
{
    int N = cu[nseg], W = (H + 2 * KVH) * K + 3;
    size_t nb = (size_t)N * W, no = (size_t)N * H * K;
    float *qkv = fvec(nb, -1.5, 1.5), *dout = fvec(no, -1, 1), *out = vr_xmalloc(no * 4),
          *lse = vr_xmalloc((size_t)N * H * 4), *g = vr_xcalloc(nb, 4);
    double *QKV = wide(qkv, nb), *DOUT = wide(dout, no), *O = dzero(no), *L = dzero((size_t)N * H),
           *Gr = dzero(nb), *bo = dzero(no), *bl = dzero((size_t)N * H), *bg = dzero(nb);
    struct vr_attn_dims d = {.N = N, .H = H, .KVH = KVH, .K = K, .q_stride = W, .kv_stride = W, .causal = causal,
                             .cu = cu, .nseg = nseg};
    const float *q = qkv, *k = qkv + H * K, *v = qkv + (H + KVH) * K;
    vr_attn_fwd(out, lse, q, k, v, &d, &ws);
    vr_ws_reset(&ws);
    vr_attn_bwd(g, g + H * K, g + (H + KVH) * K, dout, out, lse, q, k, v, &d, &ws);
    vr_ws_reset(&ws);
    vr_attn_fwd_ref(O, L, QKV, QKV + H * K, QKV + (H + KVH) * K, &d);
    vr_attn_bwd_ref(Gr, Gr + H * K, Gr + (H + KVH) * K, DOUT, QKV, QKV + H * K, QKV + (H + KVH) * K, &d);
    attn_bounds(bo, bl, QKV, QKV + H * K, QKV + (H + KVH) * K, &d);
    attn_bwd_bounds(bg, bg + H * K, bg + (H + KVH) * K, DOUT, QKV, QKV + H * K, QKV + (H + KVH) * K, bo, &d);
    double e[3] = {worst_of(out, O, bo, no), worst_of(lse, L, bl, (size_t)N * H), worst_of(g, Gr, bg, nb)};
    ok(e[0] <= 1 && e[1] <= 1 && e[2] <= 1,
       "attention %s H=%d KVH=%d K=%d N=%d (%d segments): out %.2f lse %.2f dqkv %.2f of their bounds",
       causal ? "causal" : "full", H, KVH, K, N, nseg, e[0], e[1], e[2]);
    if (!causal) { /* the vision tower's path */
        float *oi = vr_xmalloc(no * 4);
        vr_attn_infer(oi, q, k, v, &d, &ws);
        vr_ws_reset(&ws);
        double ei = worst_of(oi, O, bo, no);
        ok(ei <= 1, "attn_infer segments H=%d KVH=%d K=%d N=%d: %.2f of its bound", H, KVH, K, N, ei);
        free(oi);
    }
    free(qkv), free(dout), free(out), free(lse), free(g), free(QKV), free(DOUT), free(O), free(L), free(Gr), free(bo);
    free(bl), free(bg);
}

/* The decoder's path: Tq queries at q0 against a cache (KVH, cap, K) of
 * nkeys keys, some invalid (left padding); a query that sees none gets 0. */
static void attention_cache(int H, int KVH, int K, int Tq, int q0, int cap, int npad)
{
    int nkeys = q0 + Tq;
    size_t no = (size_t)Tq * H * K, nc = (size_t)KVH * cap * K;
    float *q = fvec(no, -1.5, 1.5), *kc = fvec(nc, -1.5, 1.5), *vc = fvec(nc, -1.5, 1.5), *out = vr_xmalloc(no * 4);
    unsigned char *valid = vr_xmalloc((size_t)cap);
    for (int j = 0; j < cap; j++) valid[j] = j >= npad;
    double *Q = wide(q, no), *Kc = wide(kc, nc), *Vc = wide(vc, nc), *O = dzero(no), *bo = dzero(no);
    struct vr_attn_dims d = {.N = Tq, .H = H, .KVH = KVH, .K = K, .q_stride = H * K, .causal = 1, .cap = cap,
                             .nkeys = nkeys, .q0 = q0, .valid = valid};
    vr_attn_infer(out, q, kc, vc, &d, &ws);
    vr_ws_reset(&ws);
    vr_attn_fwd_ref(O, NULL, Q, Kc, Vc, &d);
    attn_bounds(bo, NULL, Q, Kc, Vc, &d);
    double e = worst_of(out, O, bo, no);
    ok(e <= 1, "attn_infer cache H=%d KVH=%d K=%d Tq=%d q0=%d, %d padded: %.2f of its bound", H, KVH, K, Tq, q0,
       npad, e);
    free(q), free(kc), free(vc), free(out), free(valid), free(Q), free(Kc), free(Vc), free(O), free(bo);
}

/* Decode's grouped heads compute the chains a prefill row does: the last row
 * of a 2-query call equals, bit for bit, that query alone at q0 + 1 */
static void attention_decode_bits(int H, int KVH, int K, int n, int cap)
{
    size_t nc = (size_t)KVH * cap * K;
    float *q = fvec((size_t)2 * H * K, -1.5, 1.5), *kc = fvec(nc, -1.5, 1.5), *vc = fvec(nc, -1.5, 1.5);
    float *two = vr_xmalloc((size_t)2 * H * K * 4), *one = vr_xmalloc((size_t)H * K * 4);
    struct vr_attn_dims d = {.N = 2, .H = H, .KVH = KVH, .K = K, .q_stride = H * K, .causal = 1, .cap = cap,
                             .nkeys = n, .q0 = n - 2};
    vr_attn_infer(two, q, kc, vc, &d, &ws);
    vr_ws_reset(&ws);
    d.N = 1, d.q0 = n - 1;
    vr_attn_infer(one, q + (size_t)H * K, kc, vc, &d, &ws);
    vr_ws_reset(&ws);
    ok(!memcmp(one, two + (size_t)H * K, (size_t)H * K * 4),
       "attn_infer decode H=%d KVH=%d K=%d, %d keys: the prefill row's bits", H, KVH, K, n);
    free(q), free(kc), free(vc), free(two), free(one);
}

/* ---- logp ---- */

/* Logits l_v = h . w_v / T within delta_v = (D + 2) u sum|h w_v| / T + u |l_v|
 * (the dot, then the division). logp = l_t - m - log Z with Z summed in
 * double: 2 max delta + (8 + |logp|) u. The entropy's derivative in l is
 * bounded by (1 + H) per unit of max error: (2 max delta + 8u)(1 + H).
 * Backward: dl_v = g ([v = t] - p_v), g = dlogp / T, p_v within
 * 2 max delta + 6u relatively; dh (V terms in at most 8 parts) and dw
 * (N terms onto the initial value) add their sums' roundings. Kept
 * (prob given), the forward's softmax rows are those p_v, and the
 * backward from them gives the same bits as from the logits. */
static void logp(int N, int D, int V)
{
    float *h = fvec((size_t)N * D, -1, 1), *w = fvec((size_t)V * D, -1, 1), *dl = fvec(N, -1, 1),
          *dw = fvec((size_t)V * D, -0.1, 0.1);
    int32_t *t = vr_xmalloc((size_t)N * sizeof *t);
    for (int n = 0; n < N; n++) t[n] = (int32_t)(vr_rng_u64(&rng) % (uint64_t)V);
    dl[N / 2] = 0; /* a row with no gradient */
    float *lp = vr_xmalloc((size_t)N * 4), *ent = vr_xmalloc((size_t)N * 4), *dh = vr_xmalloc((size_t)N * D * 4);
    double *Hh = wide(h, (size_t)N * D), *Ww = wide(w, (size_t)V * D), *DL = wide(dl, N), *DW0 = wide(dw, (size_t)V * D);
    double *LP = dzero(N), *EN = dzero(N), *DH = dzero((size_t)N * D), *DW = dzero((size_t)V * D);
    double *blp = dzero(N), *ben = dzero(N), *bdh = dzero((size_t)N * D), *bdw = dzero((size_t)V * D);
    double temp = 0.9, *l = dzero(V), *ed = dzero((size_t)N * V), *PR = dzero((size_t)N * V);
    float *pr = vr_xmalloc((size_t)N * V * 4), *lp2 = vr_xmalloc((size_t)N * 4), *ent2 = vr_xmalloc((size_t)N * 4);
    float *dh2 = vr_xmalloc((size_t)N * D * 4), *dw2 = vr_xmalloc((size_t)V * D * 4);
    memcpy(dw2, dw, (size_t)V * D * 4);
    vr_logp_fwd(lp, ent, NULL, h, w, t, N, D, V, temp, &ws);
    vr_ws_reset(&ws);
    vr_logp_bwd(dh, dw, dl, NULL, h, w, t, N, D, V, temp, &ws);
    vr_ws_reset(&ws);
    vr_logp_fwd(lp2, ent2, pr, h, w, t, N, D, V, temp, &ws);
    vr_ws_reset(&ws);
    vr_logp_bwd(dh2, dw2, dl, pr, h, w, t, N, D, V, temp, &ws);
    vr_ws_reset(&ws);
    ok(!memcmp(lp, lp2, (size_t)N * 4) && !memcmp(ent, ent2, (size_t)N * 4) &&
           !memcmp(dh, dh2, (size_t)N * D * 4) && !memcmp(dw, dw2, (size_t)V * D * 4),
       "logp N=%d D=%d V=%d: keeping the probabilities changes no bit of logp, entropy, dh, dw", N, D, V);
    vr_logp_fwd_ref(LP, EN, PR, Hh, Ww, t, N, D, V, temp);
    vr_logp_bwd_ref(DH, DW, DL, Hh, Ww, t, N, D, V, temp);
    double wprob = 0;
    for (int n = 0; n < N; n++) {
        double m = -INFINITY, z = 0, dmax = 0, g = DL[n] / temp;
        for (int v = 0; v < V; v++) {
            double s = 0, a = 0;
            for (int e = 0; e < D; e++) s += Hh[(size_t)n * D + e] * Ww[(size_t)v * D + e], a += fabs(Hh[(size_t)n * D + e] * Ww[(size_t)v * D + e]);
            l[v] = s / temp;
            dmax = fmax(dmax, (D + 2) * U * a / temp + U * fabs(l[v]));
            m = fmax(m, l[v]);
        }
        for (int v = 0; v < V; v++) z += exp(l[v] - m);
        blp[n] = 2 * dmax + (8 + fabs(LP[n])) * U;
        ben[n] = (2 * dmax + 8 * U) * (1 + EN[n]);
        double ep = 2 * dmax + 6 * U;
        for (int v = 0; v < V; v++) {
            double pv = exp(l[v] - m) / z, d = g * ((v == t[n]) - pv);
            double r = fabs(pr[(size_t)n * V + v] - PR[(size_t)n * V + v]) / (ep * pv + TINY);
            if (!(r <= wprob)) wprob = r;
            ed[(size_t)n * V + v] = fabs(g) * pv * ep + 2 * U * fabs(d); /* dl's error */
            for (int e = 0; e < D; e++) {
                bdh[(size_t)n * D + e] += ed[(size_t)n * V + v] * fabs(Ww[(size_t)v * D + e]) +
                                          (V + 10) * U * fabs(d * Ww[(size_t)v * D + e]);
                bdw[(size_t)v * D + e] += ed[(size_t)n * V + v] * fabs(Hh[(size_t)n * D + e]) +
                                          (N + 2) * U * fabs(d * Hh[(size_t)n * D + e]);
            }
        }
    }
    for (size_t i = 0; i < (size_t)V * D; i++) DW[i] += DW0[i], bdw[i] += (N + 2) * U * fabs(DW0[i]);
    double e[4] = {worst_of(lp, LP, blp, N), worst_of(ent, EN, ben, N), worst_of(dh, DH, bdh, (size_t)N * D),
                   worst_of(dw, DW, bdw, (size_t)V * D)};
    ok(e[0] <= 1 && e[1] <= 1 && e[2] <= 1 && e[3] <= 1,
       "logp N=%d D=%d V=%d: logp %.2f entropy %.2f dh %.2f dw %.2f of their bounds", N, D, V, e[0], e[1], e[2], e[3]);
    ok(wprob <= 1, "logp N=%d D=%d V=%d: the kept probabilities within %.2f of their bound", N, D, V, wprob);
    free(pr), free(lp2), free(ent2), free(dh2), free(dw2), free(PR);
    free(h), free(w), free(dl), free(dw), free(t), free(lp), free(ent), free(dh), free(Hh), free(Ww), free(DL);
    free(DW0), free(LP), free(EN), free(DH), free(DW), free(blp), free(ben), free(bdh), free(bdw), free(l), free(ed);
}

/* ---- the float64 twins against the references ----
 * Both in double: they differ by summation order only, so within about
 * (terms) 2^-53 relatively; 1e-12 of the norm leaves room and still catches
 * any wrong formula (a reference and a twin would have to share a mistake). */
static double nrel(const double *a, const double *b, size_t n)
{
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs(a[i] - b[i])), s = fmax(s, fabs(b[i]));
    return e / (s + 1e-300);
}

static double *dvec(size_t n)
{
    double *x = dzero(n);
    for (size_t i = 0; i < n; i++) x[i] = 2 * vr_rng_double(&rng) - 1;
    return x;
}

static void twins(void)
{
    int N = 23, D = 17, V = 41, H = 4, KVH = 2, K = 6, cu[3] = {0, 9, 23};
    double *x = dvec((size_t)N * D), *w = dvec((size_t)V * D), *dy = dvec((size_t)N * V), *a = dzero((size_t)N * V),
           *b = dzero((size_t)N * V), *c = dzero((size_t)V * D), *e2 = dzero((size_t)V * D), *f = dzero(V),
           *f2 = dzero(V), *dx = dzero((size_t)N * D), *dx2 = dzero((size_t)N * D);
    vr_linear_fwd_f64(a, x, w, w, N, V, D, &ws);
    vr_linear_fwd_ref(b, x, w, w, N, V, D);
    vr_linear_bwd_f64(dx, c, f, dy, x, w, N, V, D, &ws);
    vr_linear_bwd_ref(dx2, e2, f2, dy, x, w, N, V, D);
    vr_ws_reset(&ws);
    double el = fmax(fmax(nrel(a, b, (size_t)N * V), nrel(dx, dx2, (size_t)N * D)),
                     fmax(nrel(c, e2, (size_t)V * D), nrel(f, f2, V)));
    double r1[64], r2[64];
    memset(c, 0, sizeof(double) * D), memset(e2, 0, sizeof(double) * D);
    vr_rmsnorm_fwd_f64(a, r1, x, w, N, D, 1e-6);
    vr_rmsnorm_fwd_ref(b, r2, x, w, N, D, 1e-6);
    double er = fmax(nrel(a, b, (size_t)N * D), nrel(r1, r2, N));
    vr_rmsnorm_bwd_f64(dx, c, dy, x, r1, w, N, D);
    vr_rmsnorm_bwd_ref(dx2, e2, dy, x, w, N, D, 1e-6);
    er = fmax(er, fmax(nrel(dx, dx2, (size_t)N * D), nrel(c, e2, D)));
    double lp[64], lp2[64], en[64], en2[64];
    int32_t t[64];
    for (int n = 0; n < N; n++) t[n] = (int32_t)((n * 7) % V);
    vr_logp_fwd_f64(lp, en, NULL, x, w, t, N, D, V, 0.8, &ws);
    vr_logp_fwd_ref(lp2, en2, NULL, x, w, t, N, D, V, 0.8);
    memset(c, 0, sizeof(double) * V * D);
    vr_logp_bwd_f64(dx, c, dy, NULL, x, w, t, N, D, V, 0.8, &ws);
    vr_logp_bwd_ref(dx2, e2, dy, x, w, t, N, D, V, 0.8);
    vr_ws_reset(&ws);
    double ep = fmax(fmax(nrel(lp, lp2, N), nrel(en, en2, N)), fmax(nrel(dx, dx2, (size_t)N * D), nrel(c, e2, (size_t)V * D)));
    int Wd = (H + 2 * KVH) * K;
    double *qkv = dvec((size_t)N * Wd), *o1 = dzero((size_t)N * H * K), *o2 = dzero((size_t)N * H * K), *l1 = dzero(N * H),
           *l2 = dzero(N * H), *g1 = dzero((size_t)N * Wd), *g2 = dzero((size_t)N * Wd), *go = dvec((size_t)N * H * K);
    double ea = 0;
    for (int causal = 0; causal < 2; causal++) {
        struct vr_attn_dims d = {.N = N, .H = H, .KVH = KVH, .K = K, .q_stride = Wd, .kv_stride = Wd, .causal = causal,
                                 .cu = cu, .nseg = 2};
        vr_attn_fwd_f64(o1, l1, qkv, qkv + H * K, qkv + (H + KVH) * K, &d, &ws);
        vr_attn_fwd_ref(o2, l2, qkv, qkv + H * K, qkv + (H + KVH) * K, &d);
        vr_attn_bwd_f64(g1, g1 + H * K, g1 + (H + KVH) * K, go, o1, l1, qkv, qkv + H * K, qkv + (H + KVH) * K, &d, &ws);
        vr_attn_bwd_ref(g2, g2 + H * K, g2 + (H + KVH) * K, go, qkv, qkv + H * K, qkv + (H + KVH) * K, &d);
        vr_ws_reset(&ws);
        ea = fmax(ea, fmax(fmax(nrel(o1, o2, (size_t)N * H * K), nrel(l1, l2, N * H)), nrel(g1, g2, (size_t)N * Wd)));
    }
    ok(el <= 1e-12 && er <= 1e-12 && ep <= 1e-12 && ea <= 1e-12,
       "the float64 twins equal the references: linear %.1e rmsnorm %.1e logp %.1e attention %.1e", el, er, ep, ea);
    free(x), free(w), free(dy), free(a), free(b), free(c), free(e2), free(f), free(f2), free(dx), free(dx2);
    free(qkv), free(o1), free(o2), free(l1), free(l2), free(g1), free(g2), free(go);
}

/* A row without gradient (dlogp 0) whose logits overflow to infinity (its
 * logp is not finite): the other rows' dh and every dw stay finite, its dh
 * is +0, kept or not. */
static void logp_masked_overflow(void)
{
    enum { N = 3, D = 4, V = 7 };
    float h[N * D], w[V * D], dl[N] = {0.5f, 0, -0.25f}, dh[N * D], dw[V * D], lp[N], pr[N * V];
    int32_t t[N] = {1, 2, 3};
    for (int i = 0; i < N * D; i++) h[i] = (float)(i % 5) * 0.25f - 0.5f;
    for (int i = 0; i < V * D; i++) w[i] = (float)(i % 7) * 0.125f - 0.375f;
    for (int e = 0; e < D; e++) h[D + e] = 3e38f, w[e] = 1; /* row 1: its first logit overflows to +inf */
    int fine = 1;
    for (int keep = 0; keep < 2; keep++) {
        memset(dw, 0, sizeof dw);
        vr_logp_fwd(lp, NULL, keep ? pr : NULL, h, w, t, N, D, V, 1.0, &ws);
        vr_ws_reset(&ws);
        vr_logp_bwd(dh, dw, dl, keep ? pr : NULL, h, w, t, N, D, V, 1.0, &ws);
        vr_ws_reset(&ws);
        for (int i = 0; i < V * D; i++) fine &= isfinite(dw[i]) != 0;
        for (int i = 0; i < N * D; i++) fine &= i / D == 1 ? !signbit(dh[i]) && dh[i] == 0 : isfinite(dh[i]) != 0;
    }
    ok(fine && !isfinite(lp[1]), "logp: a masked row with infinite logits leaves dw and the other rows' dh finite");
}

int main(void)
{
    vr_rng_init(&rng, 13, 0);
    diag("backend %s, variant %s", vr_backend()->name, vr_isa_name(vr_isa()));
    linear(1, 1, 1, 1);
    linear(3, 5, 7, 0);
    linear(17, 33, 65, 1);
    linear(70, 130, 257, 1);
    enum vr_dtype dts[] = {VR_DTYPE_F32, VR_DTYPE_BF16, VR_DTYPE_F16};
    static const int Ms[] = {1, 7, 16, 17, 45};
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < 5; i++) linear_infer(dts[t], Ms[i], 37, 65 + 64 * (i % 2), 0);
    for (int t = 0; t < 3; t++) linear_infer(dts[t], 20, 33, 129, 1);
    rmsnorm(1, 1);
    rmsnorm(5, 7);
    rmsnorm(9, 129);
    rmsnorm(300, 160); /* above the size where rows spread over threads */
    rope(3, 1, 2, 0);
    rope(7, 3, 8, 3);
    rope(300, 4, 32, 1);
    elementwise(1);
    elementwise(37);
    elementwise(40000);
    embed(1, 1, 1);
    embed(50, 13, 7);
    sampling(1);
    sampling(17);
    sampling(4099);
    static const int cu1[2] = {0, 1}, cu3[4] = {0, 70, 71, 100}, cu2[3] = {0, 33, 130};
    attention(2, 2, 1, cu1, 1, 1);
    attention(4, 4, 16, cu3, 3, 0);
    attention(6, 2, 7, cu3, 3, 1);
    attention(4, 1, 8, cu2, 2, 1);
    attention(3, 3, 5, cu2, 2, 0);
    attention_cache(4, 2, 16, 1, 0, 8, 0);
    attention_cache(6, 3, 8, 1, 40, 50, 5);
    attention_cache(4, 2, 16, 70, 0, 80, 3);
    attention_cache(2, 1, 5, 9, 3, 20, 5);  /* the first queries see no valid key */
    /* decode: a KV head's query heads go together, in groups of up to 4 */
    attention_cache(14, 2, 16, 1, 30, 40, 2); /* 7 a KV head: groups of 4 and 3 */
    attention_cache(8, 2, 64, 1, 100, 128, 0);
    attention_cache(4, 4, 8, 1, 10, 16, 1);   /* one query head a KV head */
    attention_cache(2, 1, 5, 1, 3, 20, 5);    /* no valid key: zeros */
    attention_decode_bits(14, 2, 16, 37, 40);
    attention_decode_bits(8, 2, 64, 403, 420);
    logp(1, 3, 5);
    logp(9, 17, 301);
    logp(131, 24, 500); /* more rows than one chunk */
    logp_masked_overflow();
    twins();
    vr_ws_release(&ws);
    return done_testing();
}

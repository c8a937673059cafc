/* cuda_ops.c: every CUDA op (kernels/vr_cuda.h) against its CPU twin: the
 * float64 twins of the seam's ops (lib/ops.h: the same code as the float32
 * ones vr-update runs, in double) or a plain loop written here, on random
 * shapes including odd sizes; AdamW against lib/optim.c bit for bit; two
 * runs of every reducing op bit for bit (no atomics, fixed trees).
 *
 * Tolerances are normwise, max|gpu - ref| / max|ref|, and come from the
 * float32 arithmetic: a sum of n float32 terms is off by at most about
 * n u sum|terms| (u = 2^-24, Higham §4.2), CUDA's expf/erff/logf are within
 * 2 ulp and sqrtf/division are correctly rounded. Each bound below is that
 * estimate for the op's longest sum, times a factor of 4 for the terms
 * around it; it depends on the shapes only, never on the machine.
 *
 * Built only where nvcc exists (the Makefile defines VR_CUDA and links
 * kernels/); without a GPU it skips. */
#include <math.h>
#include <string.h>

#include "../tap.h"

#ifndef VR_CUDA
int main(void)
{
    (void)ok;
    skip_all("built without nvcc: no CUDA backend");
    return 0;
}
#else

#include "cpu/ref.h"
#include "ops.h"
#include "err.h"
#include "optim.h"
#include "rng.h"
#include "sample.h"
#include "tensor.h"
#include "vr_cuda.h"

#define U 0x1p-24 /* float32 unit roundoff */

static struct vr_ws ws;
static struct vr_rng rng;

static double *dvec(size_t n, double lo, double hi)
{
    double *x = vr_xmalloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * vr_rng_double(&rng)); /* float-exact */
    return x;
}

static float *f32(const double *x, size_t n)
{
    float *y = vr_xmalloc((n ? n : 1) * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}

/* device copy of n floats of x (NULL: n zeros) */
static float *dev(const double *x, size_t n)
{
    float *d = vr_cuda_alloc((n ? n : 1) * sizeof(float));
    if (x) {
        float *h = f32(x, n);
        vr_cuda_to_device(d, h, n * sizeof(float));
        free(h);
    } else {
        vr_cuda_zero(d, (n ? n : 1) * sizeof(float));
    }
    return d;
}

static void *dev_bytes(const void *x, size_t bytes)
{
    void *d = vr_cuda_alloc(bytes ? bytes : 1);
    if (bytes) vr_cuda_to_device(d, x, bytes);
    return d;
}

static float *host(const float *d, size_t n)
{
    float *h = vr_xmalloc((n ? n : 1) * sizeof *h);
    char msg[256];
    if (vr_cuda_sync(msg, sizeof msg)) {
        diag("%s", msg);
        ok(0, "CUDA error");
        memset(h, 0, (n ? n : 1) * sizeof *h);
        return h;
    }
    vr_cuda_to_host(h, d, n * sizeof(float));
    return h;
}

/* max|got - want| / max(max|want|, tiny) <= tol, got in host memory */
static int hclose(const char *what, const float *got, const double *want, size_t n, double tol)
{
    double e = 0, m = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= e)) e = d, at = i; /* NaN lands here */
        if (fabs(want[i]) > m) m = fabs(want[i]);
    }
    double rel = e / (m > 1e-30 ? m : 1e-30);
    int r = ok(rel <= tol, "%s: error %.3g <= %.3g", what, rel, tol);
    if (!r && n) diag("  at %zu: got %.9g want %.9g", at, got[at], want[at]);
    return r;
}

/* the same for got in device memory */
static int close_to(const char *what, const float *dgot, const double *want, size_t n, double tol)
{
    float *got = host(dgot, n);
    int r = hclose(what, got, want, n, tol);
    free(got);
    return r;
}

/* The same op run twice gives the same bits. */
static void same_bits(const char *what, const float *a, const float *b, size_t n)
{
    float *x = host(a, n), *y = host(b, n);
    ok(!memcmp(x, y, n * sizeof *x), "%s: two runs give the same bits", what);
    free(x), free(y);
}

static void test_elementwise(size_t n)
{
    double *g = dvec(n, -6, 6), *u = dvec(n, -2, 2), *dy = dvec(n, -1, 1);
    double *y = vr_xmalloc(n * sizeof *y), *dg = vr_xmalloc(n * sizeof *dg), *du = vr_xmalloc(n * sizeof *du);
    float *G = dev(g, n), *Uu = dev(u, n), *DY = dev(dy, n), *Y = dev(NULL, n), *DG = dev(NULL, n), *DU = dev(NULL, n);
    /* one exp (2 ulp), a division, two products: a few ulp each element */
    vr_swiglu_fwd_f64(y, g, u, n);
    vr_cuda_swiglu_fwd(Y, G, Uu, n);
    close_to("swiglu_fwd", Y, y, n, 16 * U);
    vr_swiglu_bwd_f64(dg, du, dy, g, u, n);
    vr_cuda_swiglu_bwd(DG, DU, DY, G, Uu, n);
    close_to("swiglu_bwd dg", DG, dg, n, 32 * U);
    close_to("swiglu_bwd du", DU, du, n, 16 * U);
    /* erff and expf within 2 ulp, a few products */
    vr_gelu_fwd_f64(y, g, n);
    vr_cuda_gelu_fwd(Y, G, n);
    close_to("gelu_fwd", Y, y, n, 16 * U);
    vr_gelu_bwd_f64(dg, dy, g, n);
    vr_cuda_gelu_bwd(DG, DY, G, n);
    close_to("gelu_bwd", DG, dg, n, 32 * U);
    /* one rounded addition */
    for (size_t i = 0; i < n; i++) y[i] = (double)(float)(g[i] + u[i]);
    vr_cuda_add(G, Uu, n);
    close_to("add (exact: one rounding)", G, y, n, 0);
    free(g), free(u), free(dy), free(y), free(dg), free(du);
    vr_cuda_free(G), vr_cuda_free(Uu), vr_cuda_free(DY), vr_cuda_free(Y), vr_cuda_free(DG), vr_cuda_free(DU);
}

static void test_rmsnorm(int N, int D)
{
    size_t n = (size_t)N * D;
    double *x = dvec(n, -2, 2), *w = dvec(D, 0.5, 1.5), *dy = dvec(n, -1, 1);
    double *y = vr_xmalloc(n * 8), *rs = vr_xmalloc((size_t)N * 8), *dx = vr_xmalloc(n * 8), *dw = vr_xcalloc(D, 8);
    float *X = dev(x, n), *W = dev(w, D), *DYd = dev(dy, n), *Y = dev(NULL, n), *RS = dev(NULL, N), *DX = dev(NULL, n),
          *DW = dev(NULL, D), *DW2 = dev(NULL, D);
    vr_rmsnorm_fwd_f64(y, rs, x, w, N, D, 1e-6);
    vr_cuda_rmsnorm_fwd(Y, RS, X, W, N, D, 1e-6);
    /* a sum of D squares, then rsqrt and two products */
    close_to("rmsnorm_fwd y", Y, y, n, 4 * (D + 8) * U);
    close_to("rmsnorm_fwd rstd", RS, rs, N, 4 * (D + 8) * U);
    vr_rmsnorm_bwd_f64(dx, dw, dy, x, rs, w, N, D);
    vr_cuda_rmsnorm_bwd(DX, DW, DYd, X, RS, W, N, D);
    vr_cuda_rmsnorm_bwd(NULL, DW2, DYd, X, RS, W, N, D);
    /* dx: a dot of D terms on top of rstd's error; dw: a sum over N rows */
    close_to("rmsnorm_bwd dx", DX, dx, n, 8 * (D + 8) * U);
    close_to("rmsnorm_bwd dw", DW, dw, D, 4 * (N + D + 8) * U);
    same_bits("rmsnorm_bwd dw", DW, DW2, D);
    free(x), free(w), free(dy), free(y), free(rs), free(dx), free(dw);
    vr_cuda_free(X), vr_cuda_free(W), vr_cuda_free(DYd), vr_cuda_free(Y), vr_cuda_free(RS), vr_cuda_free(DX);
    vr_cuda_free(DW), vr_cuda_free(DW2);
}

static void test_rope(int N, int H, int K, int stride)
{
    size_t n = (size_t)N * stride;
    double *x = dvec(n, -2, 2), *c = vr_xmalloc((size_t)N * K * 8), *s = vr_xmalloc((size_t)N * K * 8);
    for (int i = 0; i < N * K; i++) {
        double th = vr_rng_double(&rng) * 6.283;
        c[i] = (float)cos(th), s[i] = (float)sin(th);
    }
    float *cf = f32(c, (size_t)N * K), *sf = f32(s, (size_t)N * K);
    float *X = dev(x, n), *C = dev(c, (size_t)N * K), *S = dev(s, (size_t)N * K);
    vr_rope_fwd_f64(x, cf, sf, N, H, K, stride);
    vr_cuda_rope(X, C, S, N, H, K, stride, 0);
    /* two products and a sum each element */
    close_to("rope", X, x, n, 8 * U);
    vr_rope_bwd_f64(x, cf, sf, N, H, K, stride);
    vr_cuda_rope(X, C, S, N, H, K, stride, 1);
    close_to("rope inverse", X, x, n, 16 * U);
    free(x), free(c), free(s), free(cf), free(sf);
    vr_cuda_free(X), vr_cuda_free(C), vr_cuda_free(S);
}

static void test_linear(int N, int O, int In, int bias)
{
    double *x = dvec((size_t)N * In, -1, 1), *w = dvec((size_t)O * In, -1, 1), *b = bias ? dvec(O, -1, 1) : NULL;
    double *dy = dvec((size_t)N * O, -1, 1), *y = vr_xmalloc((size_t)N * O * 8), *dx = vr_xmalloc((size_t)N * In * 8);
    double *dw = dvec((size_t)O * In, -1, 1), *db = bias ? dvec(O, -1, 1) : NULL;
    float *X = dev(x, (size_t)N * In), *W = dev(w, (size_t)O * In), *B = bias ? dev(b, O) : NULL;
    float *DY = dev(dy, (size_t)N * O), *Y = dev(NULL, (size_t)N * O), *DX = dev(NULL, (size_t)N * In);
    float *DW = dev(dw, (size_t)O * In), *DB = bias ? dev(db, O) : NULL;
    vr_linear_fwd_f64(y, x, w, b, N, O, In, &ws);
    vr_cuda_linear_fwd(Y, X, W, B, N, O, In);
    /* dots of In terms of size <= 1 against outputs of size ~sqrt(In): bound In u sum|terms| / max|y| */
    close_to("linear_fwd", Y, y, (size_t)N * O, 4 * (In + 1) * U * sqrt(In));
    vr_linear_bwd_f64(dx, dw, db, dy, x, w, N, O, In, &ws);
    vr_cuda_linear_bwd(DX, DW, DB, DY, X, W, N, O, In);
    close_to("linear_bwd dx", DX, dx, (size_t)N * In, 4 * (O + 1) * U * sqrt(O));
    close_to("linear_bwd dw (accumulated)", DW, dw, (size_t)O * In, 4 * (N + 2) * U * sqrt(N + 1));
    if (bias) close_to("linear_bwd db (accumulated)", DB, db, O, 4 * (N + 2) * U * sqrt(N + 1));
    /* bf16: the reference on the bf16-rounded x and w, in double */
    uint16_t *wb = vr_xmalloc((size_t)O * In * 2);
    double *xr = vr_xmalloc((size_t)N * In * 8), *wr = vr_xmalloc((size_t)O * In * 8);
    for (size_t i = 0; i < (size_t)O * In; i++) wr[i] = vr_bf16_to_f32(wb[i] = vr_f32_to_bf16((float)w[i]));
    for (size_t i = 0; i < (size_t)N * In; i++) xr[i] = vr_bf16_to_f32(vr_f32_to_bf16((float)x[i]));
    vr_linear_fwd_f64(y, xr, wr, b, N, O, In, &ws);
    uint16_t *WB = dev_bytes(wb, (size_t)O * In * 2), *XB = vr_cuda_alloc((size_t)N * In * 2 + 2);
    vr_cuda_linear_fwd_bf16(Y, X, WB, B, N, O, In, XB);
    close_to("linear_fwd_bf16", Y, y, (size_t)N * O, 4 * (In + 1) * U * sqrt(In));
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db), free(wb), free(xr), free(wr);
    vr_cuda_free(X), vr_cuda_free(W), vr_cuda_free(B), vr_cuda_free(DY), vr_cuda_free(Y), vr_cuda_free(DX);
    vr_cuda_free(DW), vr_cuda_free(DB), vr_cuda_free(WB), vr_cuda_free(XB);
}

/* nseg sequences of random lengths adding up to N */
static int *segments(int N, int nseg)
{
    int *cu = vr_xmalloc((size_t)(nseg + 1) * sizeof *cu);
    cu[0] = 0;
    for (int s = 1; s < nseg; s++) cu[s] = cu[s - 1] + 1 + (int)vr_rng_below(&rng, (uint64_t)(N - cu[s - 1] - (nseg - s)));
    cu[nseg] = N;
    return cu;
}

static void test_attn(int N, int H, int KVH, int K, int nseg, int causal)
{
    int qs = H * K + 2 * KVH * K, ks = qs; /* q, k, v interleaved in one qkv row, as the model packs them */
    size_t nq = (size_t)N * qs;
    double *qkv = dvec(nq, -1, 1), *dout = dvec((size_t)N * H * K, -1, 1);
    const double *q = qkv, *k = qkv + H * K, *v = qkv + H * K + KVH * K;
    double *out = vr_xmalloc((size_t)N * H * K * 8), *lse = vr_xmalloc((size_t)N * H * 8);
    double *dqkv = vr_xcalloc(nq, 8);
    int *cu = segments(N, nseg);
    float *QKV = dev(qkv, nq), *DOUT = dev(dout, (size_t)N * H * K), *OUT = dev(NULL, (size_t)N * H * K);
    float *LSE = dev(NULL, (size_t)N * H), *DQKV = dev(NULL, nq), *DQKV2 = dev(NULL, nq), *SCR = dev(NULL, (size_t)N * H);
    int *CU = dev_bytes(cu, (size_t)(nseg + 1) * sizeof *cu);
    struct vr_attn_dims dims = {.N = N, .H = H, .KVH = KVH, .K = K, .q_stride = qs, .kv_stride = ks, .causal = causal,
                                 .cu = cu, .nseg = nseg};
    vr_attn_fwd_f64(out, lse, q, k, v, &dims, &ws);
    struct vr_attn_dims a = dims;
    a.cu = CU; /* the kernels read it on the device */
    vr_cuda_attn_fwd(OUT, LSE, QKV, QKV + H * K, QKV + H * K + KVH * K, &a);
    char what[96];
    /* dots of K terms, softmax sums over at most N keys, expf's 2 ulp */
    double tol = 4 * (K + N + 8) * U;
    snprintf(what, sizeof what, "attn_fwd N=%d H=%d KVH=%d K=%d nseg=%d causal=%d", N, H, KVH, K, nseg, causal);
    close_to(what, OUT, out, (size_t)N * H * K, tol);
    close_to("attn_fwd lse", LSE, lse, (size_t)N * H, tol);
    vr_attn_bwd_f64(dqkv, dqkv + H * K, dqkv + H * K + KVH * K, dout, out, lse, q, k, v, &dims, &ws);
    for (int rep = 0; rep < 2; rep++)
        vr_cuda_attn_bwd(rep ? DQKV2 : DQKV, (rep ? DQKV2 : DQKV) + H * K, (rep ? DQKV2 : DQKV) + H * K + KVH * K, DOUT,
                         OUT, LSE, QKV, QKV + H * K, QKV + H * K + KVH * K, &a, SCR);
    /* gradients sum over keys, queries and the heads of a group */
    close_to("attn_bwd dq dk dv", DQKV, dqkv, nq, 8 * (K + N * (H / KVH) + 8) * U);
    same_bits("attn_bwd", DQKV, DQKV2, nq);
    free(qkv), free(dout), free(out), free(lse), free(dqkv), free(cu);
    vr_cuda_free(QKV), vr_cuda_free(DOUT), vr_cuda_free(OUT), vr_cuda_free(LSE), vr_cuda_free(DQKV);
    vr_cuda_free(DQKV2), vr_cuda_free(SCR), vr_cuda_free(CU);
}

static void test_logp(int N, int D, int V, double temp, int chunk)
{
    double *h = dvec((size_t)N * D, -1, 1), *w = dvec((size_t)V * D, -0.5, 0.5), *dl = dvec(N, -1, 1);
    int32_t *t = vr_xmalloc((size_t)N * sizeof *t);
    for (int i = 0; i < N; i++) t[i] = (int32_t)vr_rng_below(&rng, (uint64_t)V);
    dl[0] = 0; /* a row without gradient */
    double *lp = vr_xmalloc((size_t)N * 8), *ent = vr_xmalloc((size_t)N * 8);
    double *dh = vr_xmalloc((size_t)N * D * 8), *dw = vr_xcalloc((size_t)V * D, 8);
    float *Hd = dev(h, (size_t)N * D), *W = dev(w, (size_t)V * D), *DL = dev(dl, N), *LP = dev(NULL, N);
    float *ENT = dev(NULL, N), *DH = dev(NULL, (size_t)N * D), *DW = dev(NULL, (size_t)V * D);
    float *SCR = dev(NULL, (size_t)chunk * V);
    int32_t *T = dev_bytes(t, (size_t)N * sizeof *t);
    vr_logp_fwd_f64(lp, ent, NULL, h, w, t, N, D, V, temp, &ws);
    vr_cuda_logp_fwd(LP, ENT, Hd, W, T, N, D, V, temp, SCR, chunk);
    /* logits: dots of D terms; then sums over V in double */
    double tol = 4 * (D + 16) * U * sqrt(D);
    close_to("logp_fwd logp", LP, lp, N, tol);
    close_to("logp_fwd entropy", ENT, ent, N, tol);
    vr_logp_bwd_f64(dh, dw, dl, NULL, h, w, t, N, D, V, temp, &ws);
    vr_cuda_logp_bwd(DH, DW, DL, Hd, W, T, N, D, V, temp, SCR, chunk);
    close_to("logp_bwd dh", DH, dh, (size_t)N * D, 4 * (V + D + 16) * U);
    close_to("logp_bwd dw", DW, dw, (size_t)V * D, 4 * (N + D + 16) * U);
    free(h), free(w), free(dl), free(t), free(lp), free(ent), free(dh), free(dw);
    vr_cuda_free(Hd), vr_cuda_free(W), vr_cuda_free(DL), vr_cuda_free(LP), vr_cuda_free(ENT), vr_cuda_free(DH);
    vr_cuda_free(DW), vr_cuda_free(SCR), vr_cuda_free(T);
}

/* the seam's gather and scatter-add: rows whose id is -1 (text rows, when the
 * table holds image features) are left alone */
static void test_embed(int N, int D, int V)
{
    double *tab = dvec((size_t)V * D, -1, 1), *dout = dvec((size_t)N * D, -1, 1), *x0 = dvec((size_t)N * D, -1, 1);
    int32_t *ids = vr_xmalloc((size_t)N * sizeof *ids);
    for (int i = 0; i < N; i++) ids[i] = i % 5 == 4 ? -1 : (int32_t)vr_rng_below(&rng, (uint64_t)(V / 2 + 1)); /* repeats */
    double *out = vr_xmalloc((size_t)N * D * 8), *dtab = vr_xcalloc((size_t)V * D, 8);
    float *dtabf = vr_xcalloc((size_t)V * D, 4);
    memcpy(out, x0, (size_t)N * D * 8);
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D && ids[i] >= 0; d++) {
            out[(size_t)i * D + d] = tab[(size_t)ids[i] * D + d];
            /* the float32 sum in the order of n: what the kernel must give bit for bit */
            dtabf[(size_t)ids[i] * D + d] += (float)dout[(size_t)i * D + d];
        }
    for (size_t i = 0; i < (size_t)V * D; i++) dtab[i] = dtabf[i];
    float *TAB = dev(tab, (size_t)V * D), *OUT = dev(x0, (size_t)N * D), *DOUT = dev(dout, (size_t)N * D);
    float *DTAB = dev(NULL, (size_t)V * D);
    int32_t *IDS = dev_bytes(ids, (size_t)N * sizeof *ids);
    vr_cuda_embed_fwd(OUT, TAB, IDS, N, D);
    close_to("embed_fwd (a copy; rows of id -1 kept)", OUT, out, (size_t)N * D, 0);
    uint16_t *tb = vr_xmalloc((size_t)V * D * 2);
    for (size_t i = 0; i < (size_t)V * D; i++) tb[i] = vr_f32_to_bf16((float)tab[i]);
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D && ids[i] >= 0; d++) out[(size_t)i * D + d] = vr_bf16_to_f32(tb[(size_t)ids[i] * D + d]);
    uint16_t *TB = dev_bytes(tb, (size_t)V * D * 2);
    vr_cuda_embed_fwd_bf16(OUT, TB, IDS, N, D);
    close_to("embed_fwd_bf16 (a copy)", OUT, out, (size_t)N * D, 0);
    vr_cuda_embed_bwd(DTAB, DOUT, IDS, N, D);
    close_to("embed_bwd (the CPU's float32 sums, bit for bit)", DTAB, dtab, (size_t)V * D, 0);
    free(tab), free(dout), free(x0), free(ids), free(out), free(dtab), free(dtabf), free(tb);
    vr_cuda_free(TAB), vr_cuda_free(OUT), vr_cuda_free(DOUT), vr_cuda_free(DTAB), vr_cuda_free(IDS), vr_cuda_free(TB);
}

/* Decode against a KV cache (KVH, cap, K) with holes in the valid mask (the
 * left padding of batched prefill) against the reference attention. */
static void test_attn_cache(int Tq, int H, int KVH, int K, int cap, int nkeys)
{
    int q0 = nkeys - Tq;
    double *q = dvec((size_t)Tq * H * K, -1, 1), *k = dvec((size_t)KVH * cap * K, -1, 1);
    double *v = dvec((size_t)KVH * cap * K, -1, 1), *out = vr_xmalloc((size_t)Tq * H * K * 8);
    unsigned char *valid = vr_xmalloc((size_t)cap);
    for (int j = 0; j < cap; j++) valid[j] = j % 7 != 3;
    struct vr_attn_dims d = {.N = Tq, .H = H, .KVH = KVH, .K = K, .q_stride = H * K, .causal = 1, .cap = cap,
                             .nkeys = nkeys, .q0 = q0, .valid = valid};
    vr_attn_fwd_ref(out, NULL, q, k, v, &d);
    float *Q = dev(q, (size_t)Tq * H * K), *Kd = dev(k, (size_t)KVH * cap * K), *Vd = dev(v, (size_t)KVH * cap * K);
    float *OUT = dev(NULL, (size_t)Tq * H * K);
    unsigned char *VALID = dev_bytes(valid, (size_t)cap);
    struct vr_attn_dims dd = d;
    dd.valid = VALID;
    vr_cuda_attn_fwd(OUT, NULL, Q, Kd, Vd, &dd);
    char what[96];
    snprintf(what, sizeof what, "attn_fwd on a KV cache Tq=%d H=%d KVH=%d K=%d nkeys=%d", Tq, H, KVH, K, nkeys);
    close_to(what, OUT, out, (size_t)Tq * H * K, 4 * (K + nkeys + 8) * U);
    free(q), free(k), free(v), free(out), free(valid);
    vr_cuda_free(Q), vr_cuda_free(Kd), vr_cuda_free(Vd), vr_cuda_free(OUT), vr_cuda_free(VALID);
}

static void test_softmax(int M, int N)
{
    double *x = dvec((size_t)M * N, -8, 8), *y = vr_xmalloc((size_t)M * N * 8);
    for (int i = 0; i < M; i++) {
        const double *r = x + (size_t)i * N;
        double m = -INFINITY, s = 0;
        for (int j = 0; j < N; j++) m = r[j] > m ? r[j] : m;
        for (int j = 0; j < N; j++) s += exp(r[j] - m);
        for (int j = 0; j < N; j++) y[(size_t)i * N + j] = exp(r[j] - m) / s;
    }
    float *X = dev(x, (size_t)M * N);
    vr_cuda_softmax(X, M, N);
    close_to("softmax", X, y, (size_t)M * N, 4 * (N + 8) * U);
    free(x), free(y);
    vr_cuda_free(X);
}

static void test_adamw(size_t n, double wd, int64_t step)
{
    struct vr_adamw o = {1e-3, 0.9, 0.999, 1e-8, wd};
    double *w = dvec(n, -1, 1), *g = dvec(n, -1e-2, 1e-2), *m = dvec(n, -1e-3, 1e-3), *v = dvec(n, 0, 1e-4);
    float *wf = f32(w, n), *gf = f32(g, n);
    struct vr_optstate s;
    struct vr_err err;
    if (vr_optstate_init(&s, n, &err)) {
        ok(0, "adamw: %s", err.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) s.m[i] = (float)m[i], s.v[i] = (float)v[i];
    float *W = dev(w, n), *G = dev(g, n), *M = dev(m, n), *Vv = dev(v, n);
    struct vr_range r = {0, n, 0};
    vr_adamw_step(&o, o.lr, step, &r, 1, wf, gf, &s);
    struct vr_adamw_consts k;
    vr_adamw_consts(&o, o.lr, step, &k);
    vr_cuda_adamw(W, G, M, Vv, n, &k);
    float *wg = host(W, n), *mg = host(M, n), *vg = host(Vv, n);
    ok(!memcmp(wg, wf, n * 4) && !memcmp(mg, s.m, n * 4) && !memcmp(vg, s.v, n * 4),
       "adamw (wd %g, step %lld): weights and moments equal lib/optim.c's bit for bit", wd, (long long)step);
    free(w), free(g), free(m), free(v), free(wf), free(gf), free(wg), free(mg), free(vg);
    vr_optstate_release(&s);
    vr_cuda_free(W), vr_cuda_free(G), vr_cuda_free(M), vr_cuda_free(Vv);
}

/* B rows of V logits through vr_sample and vr_cuda_sample: the same tokens
 * (a different token needs u z within a few ulp of a boundary between two
 * tokens: about 1e-12 a row for these sizes) and the same sampling log-prob
 * up to the float32 sums over V. */
static void test_sample(int B, int V, struct vr_sampling sp, const char *what)
{
    double *lg = dvec((size_t)B * V, -6, 6);
    float *lf = f32(lg, (size_t)B * V);
    for (int b = 0; b < B; b++) lf[(size_t)b * V + (b % V)] = lf[(size_t)b * V + ((b + 3) % V)]; /* a tie */
    int nseen = 5;
    int32_t *seen = vr_xmalloc((size_t)B * nseen * sizeof *seen);
    int *off = vr_xmalloc(((size_t)B + 1) * sizeof *off);
    uint64_t *task = vr_xmalloc((size_t)B * sizeof *task);
    uint32_t *comp = vr_xmalloc((size_t)B * sizeof *comp), *pos = vr_xmalloc((size_t)B * sizeof *pos);
    for (int b = 0; b <= B; b++) off[b] = b * nseen;
    for (int i = 0; i < B * nseen; i++) seen[i] = (int32_t)vr_rng_below(&rng, (uint64_t)V);
    if (B * nseen > 1) seen[1] = seen[0]; /* a repeat: penalised once */
    for (int b = 0; b < B; b++) task[b] = (uint64_t)vr_rng_u32(&rng) << 32 | vr_rng_u32(&rng), comp[b] = (uint32_t)b, pos[b] = (uint32_t)(b * 31);
    float *LG = vr_cuda_alloc((size_t)B * V * 4), *Ud = vr_cuda_alloc((size_t)B * 4), *LP = vr_cuda_alloc((size_t)B * 4);
    vr_cuda_to_device(LG, lf, (size_t)B * V * 4);
    int32_t *SEEN = dev_bytes(seen, (size_t)B * nseen * sizeof *seen), *TOK = vr_cuda_alloc((size_t)B * 4);
    int *OFF = dev_bytes(off, ((size_t)B + 1) * sizeof *off);
    uint64_t *TASK = dev_bytes(task, (size_t)B * 8);
    uint32_t *COMP = dev_bytes(comp, (size_t)B * 4), *POS = dev_bytes(pos, (size_t)B * 4);
    void *scr = vr_cuda_alloc(vr_cuda_sample_scratch(B, V));
    vr_cuda_sample_uniform(Ud, B, 1234, TASK, COMP, POS);
    vr_cuda_sample(TOK, LP, LG, B, V, &sp, SEEN, OFF, Ud, scr);
    float *ug = host(Ud, (size_t)B), *lpg = host(LP, (size_t)B);
    int32_t *tg = vr_xmalloc((size_t)B * sizeof *tg);
    vr_cuda_to_host(tg, TOK, (size_t)B * sizeof *tg);
    struct vr_sample_ws sw;
    vr_sample_ws_init(&sw, V);
    int same_u = 1, same_t = 0;
    double lperr = 0;
    for (int b = 0; b < B; b++) {
        float u = vr_sample_uniform(1234, task[b], comp[b], pos[b]), lp;
        same_u &= !memcmp(&u, &ug[b], sizeof u);
        int32_t t = vr_sample(lf + (size_t)b * V, &sp, seen + off[b], nseen, u, &lp, &sw);
        same_t += t == tg[b];
        if (t == tg[b] && fabs(lp - lpg[b]) > lperr) lperr = fabs(lp - lpg[b]);
        if (t != tg[b]) diag("  row %d: CPU %d GPU %d (u %.9g)", b, t, tg[b], u);
    }
    ok(same_u, "sample_uniform: the CPU's Philox draws bit for bit (%s)", what);
    ok(same_t == B, "sample %s: %d of %d tokens as the CPU's", what, same_t, B);
    /* logp = x inv - mx - log z: z a sum of V float32 exps, as float32 */
    ok(lperr <= 4 * (V + 16) * U * 8, "sample %s: logp within %.3g (%.3g)", what, 4 * (V + 16) * U * 8, lperr);
    vr_sample_ws_release(&sw);
    free(lg), free(lf), free(seen), free(off), free(task), free(comp), free(pos), free(ug), free(lpg), free(tg);
    vr_cuda_free(LG), vr_cuda_free(Ud), vr_cuda_free(LP), vr_cuda_free(SEEN), vr_cuda_free(TOK), vr_cuda_free(OFF);
    vr_cuda_free(TASK), vr_cuda_free(COMP), vr_cuda_free(POS), vr_cuda_free(scr);
}


/* y (M,O) = x . w^T + b in double, w given as floats (widened weights) */
static void gemv_ref(double *y, const double *x, const float *w, const double *b, int M, int O, int In)
{
    for (int m = 0; m < M; m++)
        for (int o = 0; o < O; o++) {
            double s = b ? b[o] : 0;
            for (int k = 0; k < In; k++) s += x[(size_t)m * In + k] * w[(size_t)o * In + k];
            y[(size_t)m * O + o] = s;
        }
}

/* a weight tensor of dtype dt from doubles, and its exact float values */
static struct vr_tensor weight(enum vr_dtype dt, const double *w, int O, int In, float *wf)
{
    struct vr_tensor t = {.dtype = dt, .ndim = 2, .shape = {O, In}};
    size_t n = (size_t)O * In;
    t.data = vr_xmalloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        if (dt == VR_DTYPE_F32) wf[i] = ((float *)t.data)[i] = (float)w[i];
        else if (dt == VR_DTYPE_BF16) wf[i] = vr_bf16_to_f32(((uint16_t *)t.data)[i] = vr_f32_to_bf16((float)w[i]));
        else wf[i] = vr_f16_to_f32(((uint16_t *)t.data)[i] = vr_f32_to_f16((float)w[i]));
    }
    return t;
}

/* vr_cuda_gemv: every dtype against the double loop; an output's bits do not
 * depend on M (row 2 of M rows equals the same row alone); and widening */
static void test_gemv(int M, int O, int In, enum vr_dtype dt)
{
    double *x = dvec((size_t)M * In, -1, 1), *w = dvec((size_t)O * In, -1, 1), *b = dvec(O, -1, 1);
    double *y = vr_xmalloc((size_t)M * O * 8);
    float *wf = vr_xmalloc((size_t)O * In * 4);
    struct vr_tensor t = weight(dt, w, O, In, wf);
    size_t wb = dt == VR_DTYPE_F32 ? 4 : 2;
    gemv_ref(y, x, wf, b, M, O, In);
    float *X = dev(x, (size_t)M * In), *B = dev(b, O), *Y = dev(NULL, (size_t)M * O), *Y1 = dev(NULL, O);
    void *W = dev_bytes(t.data, (size_t)O * In * wb);
    vr_cuda_gemv(Y, X, W, dt, B, M, O, In);
    char what[64];
    snprintf(what, sizeof what, "gemv %s M=%d O=%d In=%d", vr_dtype_name(dt), M, O, In);
    /* a dot of In terms of size <= 1 plus the bias, outputs ~sqrt(In) */
    close_to(what, Y, y, (size_t)M * O, 4 * (In + 1) * U * sqrt(In));
    int r = M > 2 ? 2 : M - 1;
    vr_cuda_gemv(Y1, X + (size_t)r * In, W, dt, B, 1, O, In);
    float *all = host(Y, (size_t)M * O), *one = host(Y1, O);
    if (M >= 2) ok(!memcmp(all + (size_t)r * O, one, (size_t)O * 4), "%s: row %d alone gives the same bits", what, r);
    float *WF = dev(NULL, (size_t)O * In);
    vr_cuda_widen(WF, W, dt, (size_t)O * In);
    float *wback = host(WF, (size_t)O * In);
    ok(!memcmp(wback, wf, (size_t)O * In * 4), "widen %s: exact", vr_dtype_name(dt));
    free(x), free(w), free(b), free(y), free(wf), free(t.data), free(all), free(one), free(wback);
    vr_cuda_free(X), vr_cuda_free(B), vr_cuda_free(Y), vr_cuda_free(Y1), vr_cuda_free(W), vr_cuda_free(WF);
}

/* ---- the table of kernels/backend.c (VR_DEVICE=cuda) on host memory ---- */

static const struct vr_backend *table(void)
{
    static const struct vr_backend *t;
    if (!t) {
        const struct vr_cuda_host h = {&vr_backend_cpu, vr_weight_f32};
        char msg[256];
        t = vr_cuda_backend_open(&h, msg, sizeof msg);
        if (!t) diag("vr_cuda_backend_open: %s", msg);
    }
    return t;
}

static float *hf(const double *x, size_t n) { return f32(x, n); }

/* The rest of the table: gradients added into what is there (linear_bwd's dw
 * and db start at 1), the LM head's log-probs, gemv_infer called directly, and
 * attention against a KV cache (nkeys < cap, some keys not valid). */
static void test_table_more(const struct vr_backend *t, int N, int D, int I, const double *x, const double *wl,
                            const double *bl, struct vr_tensor wt, const double *bd)
{
    double *dy = dvec((size_t)N * I, -1, 1), *dx = vr_xmalloc((size_t)N * D * 8);
    double *dw = vr_xmalloc((size_t)I * D * 8), *db = vr_xmalloc((size_t)I * 8);
    for (size_t i = 0; i < (size_t)I * D; i++) dw[i] = 1;
    for (int i = 0; i < I; i++) db[i] = 1;
    float *X = hf(x, (size_t)N * D), *WL = hf(wl, (size_t)I * D), *DY = hf(dy, (size_t)N * I);
    float *DX = vr_xmalloc((size_t)N * D * 4), *DW = hf(dw, (size_t)I * D), *DB = hf(db, I);
    vr_linear_bwd_f64(dx, dw, db, dy, x, wl, N, I, D, &ws);
    t->linear_bwd(DX, DW, DB, DY, X, WL, N, I, D, &ws);
    hclose("table linear_bwd dx", DX, dx, (size_t)N * D, 4 * (I + 1) * U * sqrt(I));
    hclose("table linear_bwd dw added to 1", DW, dw, (size_t)I * D, 4 * (N + 2) * U * sqrt(N + 1));
    hclose("table linear_bwd db added to 1", DB, db, I, 4 * (N + 2) * U * sqrt(N + 1));
    /* log-probs of N targets through the (I, D) matrix as an LM head */
    int32_t *tg = vr_xmalloc((size_t)N * 4);
    for (int i = 0; i < N; i++) tg[i] = (int32_t)vr_rng_below(&rng, (uint64_t)I);
    double *lp = vr_xmalloc((size_t)N * 8), *ent = vr_xmalloc((size_t)N * 8);
    float *LP = vr_xmalloc((size_t)N * 4), *ENT = vr_xmalloc((size_t)N * 4);
    vr_logp_fwd_f64(lp, ent, NULL, x, wl, tg, N, D, I, 0.9, &ws);
    t->logp_fwd(LP, ENT, NULL, X, WL, tg, N, D, I, 0.9, &ws);
    hclose("table logp_fwd", LP, lp, N, 4 * (D + 16) * U * sqrt(D));
    hclose("table logp_fwd entropy", ENT, ent, N, 4 * (D + 16) * U * sqrt(D));
    /* gemv_infer on the bf16 tensor, bias f32 */
    struct vr_tensor bt = {.dtype = VR_DTYPE_F32, .ndim = 1, .shape = {I}, .data = hf(bl, I)};
    float *wf = vr_xmalloc((size_t)I * D * 4), *Y = vr_xmalloc((size_t)N * I * 4);
    for (size_t i = 0; i < (size_t)I * D; i++) wf[i] = vr_bf16_to_f32(((uint16_t *)wt.data)[i]);
    double *y = vr_xmalloc((size_t)N * I * 8);
    gemv_ref(y, x, wf, bd, N, I, D);
    t->gemv_infer(Y, X, &wt, &bt, N, &ws);
    hclose("table gemv_infer bf16", Y, y, (size_t)N * I, 4 * (D + 1) * U * sqrt(D));
    /* a KV cache: 3 queries at positions 37..39 of a 64-row cache, every 7th key invalid */
    int H = 4, KVH = 2, K = 32, cap = 64, nkeys = 40, Tq = 3;
    double *q = dvec((size_t)Tq * H * K, -1, 1), *k = dvec((size_t)KVH * cap * K, -1, 1);
    double *v = dvec((size_t)KVH * cap * K, -1, 1), *out = vr_xmalloc((size_t)Tq * H * K * 8);
    unsigned char valid[64];
    for (int j = 0; j < cap; j++) valid[j] = j % 7 != 3;
    struct vr_attn_dims d = {.N = Tq, .H = H, .KVH = KVH, .K = K, .q_stride = H * K, .causal = 1, .cap = cap,
                             .nkeys = nkeys, .q0 = nkeys - Tq, .valid = valid};
    vr_attn_fwd_ref(out, NULL, q, k, v, &d);
    float *Q = hf(q, (size_t)Tq * H * K), *Kc = hf(k, (size_t)KVH * cap * K), *Vc = hf(v, (size_t)KVH * cap * K);
    float *OUT = vr_xmalloc((size_t)Tq * H * K * 4);
    t->attn_infer(OUT, Q, Kc, Vc, &d, &ws);
    hclose("table attn_infer on a KV cache with invalid keys", OUT, out, (size_t)Tq * H * K, 4 * (K + nkeys + 8) * U);
    free(dy), free(dx), free(dw), free(db), free(X), free(WL), free(DY), free(DX), free(DW), free(DB), free(tg);
    free(lp), free(ent), free(LP), free(ENT), free(bt.data), free(wf), free(Y), free(y), free(q), free(k), free(v);
    free(out), free(Q), free(Kc), free(Vc), free(OUT);
}

/* Through the table: aliasing (y = x), q, k, v and dq, dk, dv as column slices
 * of one padded buffer (the padding, a sentinel, must survive), rope in place
 * on strided rows, the gather leaving rows with id -1, and the generation
 * path on bf16 tensors, all against the float64 twins. */
static void test_table(const struct vr_backend *t, int N, int H, int KVH, int K)
{
    if (!ok(t != NULL, "the %s table opens", t ? t->name : "CUDA")) return;
    int D = H * K, I = 3 * D + 1;
    /* rmsnorm in place */
    double *x = dvec((size_t)N * D, -1, 1), *w = dvec(D, 0.5, 1.5), *y = vr_xmalloc((size_t)N * D * 8);
    double *r = vr_xmalloc((size_t)N * 8);
    float *X = hf(x, (size_t)N * D), *R = vr_xmalloc((size_t)N * 4), *W = hf(w, D);
    vr_rmsnorm_fwd_f64(y, r, x, w, N, D, 1e-6);
    t->rmsnorm_fwd(X, R, X, W, N, D, 1e-6);
    /* mean of D squares, a sqrt, a product: D u plus a few ulp (in place: y and
     * x are one span; separate copies would pass too, merging is tested below) */
    hclose("table rmsnorm_fwd, y = x", X, y, (size_t)N * D, 4 * (D + 8) * U);
    hclose("table rmsnorm_fwd rstd", R, r, N, 4 * (D + 8) * U);
    /* linear with a bias */
    double *wl = dvec((size_t)I * D, -1, 1), *bl = dvec(I, -1, 1), *yl = vr_xmalloc((size_t)N * I * 8);
    float *WL = hf(wl, (size_t)I * D), *BL = hf(bl, I), *YL = vr_xmalloc((size_t)N * I * 4), *XL = hf(x, (size_t)N * D);
    vr_linear_fwd_f64(yl, x, wl, bl, N, I, D, &ws);
    t->linear_fwd(YL, XL, WL, BL, N, I, D, &ws);
    hclose("table linear_fwd", YL, yl, (size_t)N * I, 4 * (D + 1) * U * sqrt(D));
    /* attention on a padded qkv buffer */
    int qs = (H + 2 * KVH) * K + 3;
    size_t nq = (size_t)N * qs;
    double *qkv = dvec(nq, -1, 1), *dout = dvec((size_t)N * D, -1, 1), *out = vr_xmalloc((size_t)N * D * 8);
    double *lse = vr_xmalloc((size_t)N * H * 8), *dqkv = vr_xcalloc(nq, 8);
    int cu[3] = {0, N / 2, N};
    struct vr_attn_dims d = {.N = N, .H = H, .KVH = KVH, .K = K, .q_stride = qs, .kv_stride = qs, .causal = 1,
                             .cu = cu, .nseg = 2};
    const double *q = qkv, *k = qkv + D, *v = qkv + D + KVH * K;
    vr_attn_fwd_f64(out, lse, q, k, v, &d, &ws);
    vr_attn_bwd_f64(dqkv, dqkv + D, dqkv + D + KVH * K, dout, out, lse, q, k, v, &d, &ws);
    float *QKV = hf(qkv, nq), *DOUT = hf(dout, (size_t)N * D), *OUT = vr_xmalloc((size_t)N * D * 4);
    float *LSE = vr_xmalloc((size_t)N * H * 4), *DQKV = vr_xmalloc(nq * 4);
    for (size_t i = 0; i < nq; i++) DQKV[i] = 7.0f; /* the padding keeps it */
    t->attn_fwd(OUT, LSE, QKV, QKV + D, QKV + D + KVH * K, &d, &ws);
    t->attn_bwd(DQKV, DQKV + D, DQKV + D + KVH * K, DOUT, OUT, LSE, QKV, QKV + D, QKV + D + KVH * K, &d, &ws);
    hclose("table attn_fwd", OUT, out, (size_t)N * D, 4 * (K + N + 8) * U);
    int pad = 1;
    for (int i = 0; i < N; i++)
        for (int j = qs - 3; j < qs; j++) {
            pad &= DQKV[(size_t)i * qs + j] == 7.0f;
            DQKV[(size_t)i * qs + j] = 0; /* the reference's padding is 0 */
        }
    ok(pad, "table attn_bwd: the padding between rows is left alone");
    hclose("table attn_bwd dq dk dv (column slices of one buffer)", DQKV, dqkv, nq, 8 * (K + N * (H / KVH) + 8) * U);
    /* rope in place on the q slice of the padded rows */
    double *cs = dvec((size_t)N * K, -1, 1), *sn = dvec((size_t)N * K, -1, 1), *qr = vr_xmalloc(nq * 8);
    memcpy(qr, qkv, nq * 8);
    float *CS = hf(cs, (size_t)N * K), *SN = hf(sn, (size_t)N * K), *QR = hf(qkv, nq);
    vr_rope_fwd_f64(qr, CS, SN, N, H, K, qs);
    t->rope_fwd(QR, CS, SN, N, H, K, qs);
    /* x c - x' s: two rounded products and a difference, 3u (|x c| + |x' s|) <= 6u
     * against a max|ref| near 1 (the untouched k, v values): 16u */
    hclose("table rope_fwd in place, strided rows (the rest untouched)", QR, qr, nq, 16 * U);
    /* the gather: rows with id -1 keep their values */
    int32_t ids[7] = {3, -1, 0, 5, -1, 5, 1};
    double *tab = dvec(6 * (size_t)D, -1, 1), *xe = dvec(7 * (size_t)D, -1, 1);
    float *TAB = hf(tab, 6 * (size_t)D), *XE = hf(xe, 7 * (size_t)D);
    vr_embed_fwd_f64(xe, tab, ids, 7, D);
    t->embed_fwd(XE, TAB, ids, 7, D);
    hclose("table embed_fwd (rows with id -1 untouched)", XE, xe, 7 * (size_t)D, 0);
    /* the generation path on a bf16 weight: few rows (the GEMV) and many (widen + GEMM) */
    float *wf = vr_xmalloc((size_t)I * D * 4);
    struct vr_tensor wt = weight(VR_DTYPE_BF16, wl, I, D, wf);
    struct vr_tensor bt = {.dtype = VR_DTYPE_F32, .ndim = 1, .shape = {I}, .data = BL};
    double *bd = vr_xmalloc((size_t)I * 8);
    for (int i = 0; i < I; i++) bd[i] = BL[i];
    for (int M = 2; M <= 40; M += 38) {
        double *xm = dvec((size_t)M * D, -1, 1), *ym = vr_xmalloc((size_t)M * I * 8);
        float *XM = hf(xm, (size_t)M * D), *YM = vr_xmalloc((size_t)M * I * 4);
        gemv_ref(ym, xm, wf, bd, M, I, D);
        t->linear_infer(YM, XM, &wt, &bt, M, &ws);
        char what[64];
        snprintf(what, sizeof what, "table linear_infer bf16, M=%d", M);
        hclose(what, YM, ym, (size_t)M * I, 4 * (D + 1) * U * sqrt(D));
        free(xm), free(ym), free(XM), free(YM);
    }
    test_table_more(t, N, D, I, x, wl, bl, wt, bd);
    free(x), free(w), free(y), free(r), free(X), free(R), free(W), free(wl), free(bl), free(yl), free(WL), free(BL);
    free(YL), free(XL), free(qkv), free(dout), free(out), free(lse), free(dqkv), free(QKV), free(DOUT), free(OUT);
    free(LSE), free(DQKV), free(cs), free(sn), free(qr), free(CS), free(SN), free(QR), free(tab), free(xe), free(TAB);
    free(XE), free(wf), free(wt.data), free(bd);
}

int main(void)
{
    vr_rng_init(&rng, 7, 0);
    if (vr_cuda_device_count() == 0) {
        /* the table tests on the CPU's table: they check themselves (references,
         * tolerances, extents), so that a GPU's first minutes test the kernels */
        diag("no GPU: the kernels are not tested; the table tests run on the CPU table");
        test_table(&vr_backend_cpu, 9, 4, 2, 16);
        test_table(&vr_backend_cpu, 33, 2, 1, 64);
        vr_ws_release(&ws);
        return done_testing();
    }
    char name[128];
    vr_cuda_device_name(name, sizeof name);
    diag("device: %s", name);
    test_elementwise(1);
    test_elementwise(100003);
    test_rmsnorm(1, 7);
    test_rmsnorm(37, 1000);
    test_rope(5, 3, 8, 3 * 8);
    test_rope(33, 4, 64, 6 * 64 + 5);
    test_linear(1, 5, 3, 1);
    test_linear(37, 129, 70, 1);
    test_linear(64, 256, 128, 0);
    test_attn(1, 1, 1, 8, 1, 1);
    test_attn(29, 4, 2, 16, 3, 1);
    test_attn(40, 6, 2, 40, 2, 1);
    test_attn(33, 3, 3, 80, 4, 0); /* the vision tower's windows: no mask inside a segment */
    test_attn(20, 2, 1, 128, 1, 1);
    test_attn_cache(1, 4, 2, 64, 50, 37);
    test_attn_cache(5, 16, 2, 128, 300, 260);
    test_logp(1, 8, 11, 1.0, 4);
    test_logp(19, 64, 1001, 0.7, 8);
    test_embed(9, 5, 11);
    test_embed(300, 64, 501);
    test_gemv(1, 7, 5, VR_DTYPE_F32);
    test_gemv(5, 301, 1000, VR_DTYPE_BF16);
    test_gemv(3, 64, 257, VR_DTYPE_F16);
    ok(table() && !strcmp(table()->name, "cuda"), "the CUDA table opens, named cuda");
    test_table(table(), 9, 4, 2, 16);
    test_table(table(), 33, 2, 1, 64);
    test_softmax(3, 1);
    test_softmax(17, 5003);
    test_adamw(1, 0, 1);
    test_adamw(100001, 0.1, 7);
    struct vr_sampling plain = {.temperature = 1.0f, .top_p = 1.0f, .rep_penalty = 1.0f};
    struct vr_sampling greedy = plain, hot = plain, pen = plain, trunc = plain, all = plain;
    greedy.greedy = 1;
    hot.temperature = 0.7f;
    pen.rep_penalty = 1.3f;
    trunc.top_k = 50, trunc.top_p = 0.9f, trunc.min_p = 0.05f, trunc.temperature = 0.8f;
    all = trunc, all.rep_penalty = 1.2f;
    struct vr_sampling pgreedy = greedy;
    pgreedy.rep_penalty = 1.5f;
    test_sample(7, 13, plain, "plain");
    test_sample(33, 5003, plain, "plain");
    test_sample(33, 5003, greedy, "greedy");
    test_sample(33, 5003, pgreedy, "greedy with penalty");
    test_sample(33, 5003, hot, "temperature 0.7");
    test_sample(33, 5003, pen, "repetition penalty");
    test_sample(33, 5003, trunc, "top-k, top-p, min-p");
    test_sample(17, 151936, all, "everything, Qwen's vocabulary");
    vr_ws_release(&ws);
    return done_testing();
}
#endif

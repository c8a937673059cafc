/* gemm.c: vr_sgemm (lib/cpu/gemm.c) against its definition, bit for bit:
 * every element is the fma chain c = fma(alpha a_k, b_k, c) over k = 0..K-1
 * from 0, then c + beta C. The plain loop below computes exactly that with
 * fmaf, so every variant (the one VR_ISA picks; t0050 runs this file under
 * each the CPU has) must give the same bits: that is the claim that a result
 * does not depend on the CPU. Also: the chain is within its error bound of a
 * float64 product (so the definition is a good one), splitting the call into
 * tiles or running it on threads changes nothing (vr_sgemm_pool too),
 * beta = 0 never reads C,
 * and adding a product twice doubles it exactly. */
#include <math.h>
#include <string.h>

#include "cpu/isa.h"
#include "cpu/ops.h"
#include "cpu/pool.h"
#include "rng.h"

#include "../tap.h"

static struct vr_rng rng;

static float *fvec(size_t n)
{
    float *x = vr_xmalloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(vr_rng_double(&rng) * 2 - 1);
    return x;
}

static float at(const float *X, int ld, int t, int r, int c) { return t ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c]; }

/* the definition, one element at a time */
static void chain_ref(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                      int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float c = 0;
            for (int k = 0; k < K; k++) c = fmaf(alpha * at(A, lda, ta, i, k), at(B, ldb, tb, k, j), c);
            float *o = C + (size_t)i * ldc + j;
            *o = beta == 0 ? c : c + beta * *o;
        }
}

struct call {
    int ta, tb, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    float *A, *B, *C0;
};

static struct call make(int ta, int tb, int M, int N, int K, float alpha, float beta, int pad)
{
    struct call c = {ta, tb, M, N, K, 0, 0, 0, alpha, beta, NULL, NULL, NULL};
    c.lda = (ta ? M : K) + pad, c.ldb = (tb ? K : N) + pad, c.ldc = N + pad;
    c.A = fvec((size_t)(ta ? K : M) * c.lda);
    c.B = fvec((size_t)(tb ? N : K) * c.ldb);
    c.C0 = fvec((size_t)M * c.ldc);
    return c;
}

static void drop(struct call *c) { free(c->A), free(c->B), free(c->C0); }

struct job {
    const struct call *c;
    float *outs;
};

/* pool task t: C += the product into outs[t] */
static void each(void *v, int t0, int t1)
{
    const struct job *jb = v;
    const struct call *c = jb->c;
    for (int t = t0; t < t1; t++) {
        float *o = jb->outs + (size_t)t * c->M * c->N;
        memcpy(o, c->C0, (size_t)c->M * c->N * sizeof *o);
        vr_sgemm(0, 1, c->M, c->N, c->K, 1.0f, c->A, c->lda, c->B, c->ldb, 1.0f, o, c->ldc);
    }
}

static float *run(const struct call *c, int ref)
{
    size_t n = (size_t)c->M * c->ldc;
    float *C = vr_xmalloc((n ? n : 1) * sizeof *C);
    memcpy(C, c->C0, (size_t)c->M * c->ldc * sizeof *C);
    (ref ? chain_ref : vr_sgemm)(c->ta, c->tb, c->M, c->N, c->K, c->alpha, c->A, c->lda, c->B, c->ldb, c->beta, C,
                                 c->ldc);
    return C;
}

/* the definition's error against float64: the chain of K fused steps rounds
 * each partial sum once, |c - exact| <= K u sum_k |alpha' a b| where alpha'
 * a is the rounded product (|alpha' a - alpha a| <= u |alpha a|: one more u
 * on every term), and the update c + beta C adds u |result| + 2u |beta C|
 * (beta C rounded, then the sum rounded). */
static double worst_vs_f64(const struct call *c, const float *C)
{
    const double u = 1.0 / 16777216.0;
    double worst = 0;
    for (int i = 0; i < c->M; i++)
        for (int j = 0; j < c->N; j++) {
            double s = 0, mag = 0;
            for (int k = 0; k < c->K; k++) {
                double t = (double)c->alpha * at(c->A, c->lda, c->ta, i, k) * at(c->B, c->ldb, c->tb, k, j);
                s += t, mag += fabs(t);
            }
            double old = c->beta == 0 ? 0 : (double)c->beta * c->C0[(size_t)i * c->ldc + j];
            double got = C[(size_t)i * c->ldc + j], want = s + old;
            double bound = (c->K + 1) * u * mag + u * fabs(want) + 2 * u * fabs(old) + 1e-37;
            double r = fabs(got - want) / bound;
            if (r > worst) worst = r;
        }
    return worst;
}

int main(void)
{
    vr_rng_init(&rng, 20261207, 0);
    printf("# VR_ISA variant: %s\n", vr_isa_name(vr_isa()));

    /* shapes around every block edge: MR (12, 6, 8, 4), NR (32, 16, 12, 8),
     * MC 96, NC 512, KC 256, the 8-wide transposes of the packing, and the
     * few-row path's */
    static const int shapes[][3] = {{1, 1, 1},     {1, 7, 3},      {5, 1, 9},     {12, 32, 256}, {13, 33, 257},
                                    {7, 17, 8},    {96, 64, 64},   {97, 65, 100}, {6, 16, 300},  {25, 45, 513},
                                    {100, 530, 31}, {200, 40, 600}, {3, 520, 17},  {64, 64, 512}, {11, 12, 1},
                                    /* 1-4 rows, no packing (decode attention: a KV head's query heads) */
                                    {2, 29, 64},   {4, 403, 64},   {4, 9, 13},    {2, 8, 8}};
    static const float alphas[] = {1.0f, 0.125f, -0.3f}, betas[] = {0.0f, 1.0f, 0.5f};
    int same = 1, bounded = 1, n = 0;
    double worst = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int t = 0; t < 4; t++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            float alpha = alphas[(s + t) % 3], beta = betas[(s + 2 * t) % 3];
            struct call c = make(t & 1, t >> 1, M, N, K, alpha, beta, (int)(s % 3));
            float *got = run(&c, 0), *want = run(&c, 1);
            if (memcmp(got, want, (size_t)M * c.ldc * sizeof *got)) {
                if (same) diag("first difference: shape %dx%dx%d ta %d tb %d alpha %g beta %g", M, N, K, c.ta, c.tb,
                               alpha, beta);
                same = 0;
            }
            double w = worst_vs_f64(&c, got);
            if (w > worst) worst = w;
            if (w > 1) bounded = 0;
            n++;
            free(got), free(want), drop(&c);
        }
    ok(same, "%d calls (4 transposes, alpha 1, 1/8, -0.3, beta 0, 1, 0.5, padded strides): bit-identical to the "
             "fma chain's definition",
       n);
    ok(bounded, "and within the chain's error bound of float64: worst %.3f of the bound", worst);

    /* tiles: the same product computed as 4 sub-calls, and on the pool */
    {
        int M = 150, N = 300, K = 700;
        struct call c = make(0, 1, M, N, K, 1.0f, 0.0f, 0);
        float *whole = run(&c, 0);
        float *parts = vr_xcalloc((size_t)M * N, sizeof *parts);
        int m1 = 61, n1 = 133;
        for (int q = 0; q < 4; q++) {
            int i0 = q & 1 ? m1 : 0, i1 = q & 1 ? M : m1, j0 = q & 2 ? n1 : 0, j1 = q & 2 ? N : n1;
            vr_sgemm(0, 1, i1 - i0, j1 - j0, K, 1.0f, c.A + (size_t)i0 * K, K, c.B + (size_t)j0 * K, K, 0.0f,
                     parts + (size_t)i0 * N + j0, N);
        }
        ok(!memcmp(whole, parts, (size_t)M * N * sizeof *whole), "a 150x300x700 product in 4 uneven tiles is "
                                                                    "bit-identical to one call");
        free(whole), free(parts), drop(&c);
    }

    /* beta = 0 never reads C (NaN there changes nothing); K = 0 gives beta C */
    {
        struct call c = make(1, 0, 20, 40, 50, 1.0f, 0.0f, 1);
        for (size_t i = 0; i < (size_t)c.M * c.ldc; i++) c.C0[i] = NAN;
        float *got = run(&c, 0);
        int finite = 1;
        for (int i = 0; i < c.M; i++)
            for (int j = 0; j < c.N; j++) finite &= isfinite(got[(size_t)i * c.ldc + j]);
        ok(finite, "beta 0: C's NaNs are not read");
        free(got), drop(&c);
        struct call z = make(0, 0, 9, 10, 0, 1.0f, 0.5f, 0);
        got = run(&z, 0);
        int half = 1;
        for (int i = 0; i < 90; i++) half &= got[i] == 0.5f * z.C0[i];
        z.beta = 0;
        float *zero = run(&z, 0);
        for (int i = 0; i < 90; i++) half &= zero[i] == 0;
        ok(half, "K 0: C = beta C (0 with beta 0)");
        free(got), free(zero), drop(&z);
    }

    /* accumulating the same product twice doubles it exactly (gradient
     * accumulation relies on it: the product is rounded before the add) */
    {
        struct call c = make(1, 0, 70, 90, 300, 1.0f, 0.0f, 0);
        float *once = run(&c, 0);
        memcpy(c.C0, once, (size_t)c.M * c.N * sizeof *once);
        c.beta = 1;
        float *twice = run(&c, 0);
        int dbl = 1;
        for (int i = 0; i < c.M * c.N; i++) dbl &= twice[i] == 2 * once[i];
        ok(dbl, "C += the same product (K 300, across K blocks) doubles C exactly");
        free(once), free(twice), drop(&c);
    }

    /* callers on several pool threads at once: per-thread buffers */
    {
        struct call c = make(0, 1, 64, 96, 400, 1.0f, 1.0f, 0);
        float *want = run(&c, 1);
        int T = 8;
        float *outs = vr_xmalloc((size_t)T * c.M * c.N * sizeof *outs);
        struct job j = {&c, outs};
        vr_parallel_for(T, each, &j);
        int eq = 1;
        for (int t = 0; t < T; t++) eq &= !memcmp(outs + (size_t)t * c.M * c.N, want, (size_t)c.M * c.N * sizeof *want);
        ok(eq, "8 calls spread over %d pool threads: each equals the definition", vr_threads());
        free(outs), free(want), drop(&c);
    }
    /* vr_sgemm_pool: the same chains over the pool (each block of op(B)
     * packed once and shared, the threads' rows of A their own), so the
     * definition's bits at any thread count (t0050 runs this file with
     * VR_THREADS 1, 2 and 3); with a bias, the product rounded then + the
     * bias. Shapes: rows fewer than the threads' (a thread's chunk of rows
     * empty), the few-row path (M <= 4), columns past a shared block (NCS
     * 1920) and past KC with beta (the running chains), odd strides. */
    {
        static const int pshapes[][3] = {{1, 1, 1},    {3, 2000, 40},  {4, 37, 300},  {5, 33, 17},
                                         {7, 1921, 9}, {97, 65, 513},  {150, 300, 700}, {193, 17, 257},
                                         {6, 16, 256}, {250, 130, 64}, {2, 5, 0},     {30, 3850, 260}};
        int eq = 1, nb = 0;
        for (size_t s = 0; s < sizeof pshapes / sizeof *pshapes; s++)
            for (int t = 0; t < 4; t++) {
                int M = pshapes[s][0], N = pshapes[s][1], K = pshapes[s][2];
                float alpha = alphas[(s + t) % 3], beta = betas[(s + 2 * t + 1) % 3];
                struct call c = make(t & 1, t >> 1, M, N, K, alpha, beta, (int)(s % 3));
                float *want = run(&c, 1), *got = vr_xmalloc((size_t)M * c.ldc * sizeof *got);
                memcpy(got, c.C0, (size_t)M * c.ldc * sizeof *got);
                vr_sgemm_pool(c.ta, c.tb, M, N, K, alpha, c.A, c.lda, c.B, c.ldb, beta, got, c.ldc, NULL);
                if (memcmp(got, want, (size_t)M * c.ldc * sizeof *got)) {
                    if (eq) diag("first difference: pool, shape %dx%dx%d ta %d tb %d beta %g", M, N, K, c.ta, c.tb,
                                 beta);
                    eq = 0;
                }
                /* with a bias: C's old value not read, then + bias[j] */
                float *bias = fvec((size_t)N);
                c.beta = 0;
                float *prod = run(&c, 1);
                memcpy(got, c.C0, (size_t)M * c.ldc * sizeof *got);
                vr_sgemm_pool(c.ta, c.tb, M, N, K, alpha, c.A, c.lda, c.B, c.ldb, beta, got, c.ldc, bias);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        float w = prod[(size_t)i * c.ldc + j] + bias[j];
                        eq &= !memcmp(&got[(size_t)i * c.ldc + j], &w, sizeof w);
                    }
                nb++;
                free(got), free(want), free(prod), free(bias), drop(&c);
            }
        ok(eq, "vr_sgemm_pool on %d threads, %d shapes x 4 transposes, with and without a bias: bit-identical to the "
               "definition",
           vr_threads(), nb / 4);
    }

    /* running chains past the pool's bound (RUN_MAX, 2^22 floats: C's old
     * value waits, K > KC): the product goes in blocks of rows; against
     * vr_sgemm, which the shapes above check against the definition (the
     * plain loop would take seconds here, minutes under qemu) */
    {
        struct call c = make(1, 1, 2200, 1920, 257, 0.5f, 0.5f, 3);
        float *want = run(&c, 0), *got = vr_xmalloc((size_t)c.M * c.ldc * sizeof *got);
        memcpy(got, c.C0, (size_t)c.M * c.ldc * sizeof *got);
        vr_sgemm_pool(c.ta, c.tb, c.M, c.N, c.K, c.alpha, c.A, c.lda, c.B, c.ldb, c.beta, got, c.ldc, NULL);
        ok(!memcmp(got, want, (size_t)c.M * c.ldc * sizeof *got),
           "vr_sgemm_pool, 2200 x 1920 x 257 with beta 0.5 (its running chains in blocks of rows): bit-identical "
           "to vr_sgemm");
        free(got), free(want), drop(&c);
    }
    return done_testing();
}

/* train_ops.c: the CPU backend's differentiable ops (the _fwd/_bwd entries
 * of ../ops.h): forwards that save what backward needs, and backwards. Plain
 * loops for the elementwise ops and row reductions, single-threaded GEMMs
 * on tiles spread over the pool (gemm.c's vr_sgemm for float,
 * OpenBLAS's dgemm for the double twins). The code is train_ops_impl.h,
 * compiled here for float (vr_<op>_<fwd|bwd>_cpu, the table's entries) and
 * double (the _f64 twins, for the gradient checks). The generation path
 * shares the float rmsnorm, rope, gelu and add. */
#include "cpu/ops.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cpu/pool.h"
#include "err.h"

#undef I /* complex.h's, through cblas.h: the ops call a width I */

/* OpenBLAS (the double twins' dgemm) runs single-threaded inside the pool's
 * tasks: two spinning pools would fight over the cores. */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single(void) { openblas_set_num_threads(1); }
#define BLAS_INIT() pthread_once(&blas_once, blas_single)

#define PAR_MIN (1 << 15) /* elements below which an elementwise op stays on one thread */
#define AROWS 64          /* query (or key) rows per attention task: scratch AROWS x sequence */
#define LOGP_ROWS 128     /* rows per LM-head chunk: scratch LOGP_ROWS x V */

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* The float ops' GEMM: gemm.c's fixed-order vr_sgemm behind cblas_sgemm's
 * signature (row-major only), so the results are the same bits on every CPU;
 * the double twins keep OpenBLAS's dgemm (they are the accuracy reference). */
static void sgemm_fixed(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N,
                        int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                        int ldc)
{
    VR_ASSERT(order == CblasRowMajor);
    vr_sgemm(ta == CblasTrans, tb == CblasTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* 0, n-1, 1, n-2, ...: the i-th block to visit */
static inline int zigzag(int i, int n) { return i % 2 ? n - 1 - i / 2 : i / 2; }

/* Blocks of up to AROWS rows inside the segments cu[0..nseg]: their segment
 * and first row (when seg, row are not NULL). Returns the count; *maxlen is
 * the longest segment. */
static int attn_blocks(const int *cu, int nseg, int *seg, int *row, int *maxlen)
{
    int n = 0;
    *maxlen = 0;
    for (int s = 0; s < nseg; s++) {
        VR_ASSERT(cu[s + 1] >= cu[s]);
        if (cu[s + 1] - cu[s] > *maxlen) *maxlen = cu[s + 1] - cu[s];
        for (int r = cu[s]; r < cu[s + 1]; r += AROWS, n++)
            if (seg) seg[n] = s, row[n] = r;
    }
    return n;
}

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(n) CAT(n, CAT(_, S))               /* a static helper of type S */
#define API(n) CAT(CAT(vr_, n), CAT(_, SUF)) /* a public op of type S */

/* erf of a float through the double erf, rounded once: glibc's erff (and
 * tanhf) give different bits on x86-64 and arm64, its erf rounded to float
 * the same (4 million arguments checked, 2026-12-07), and a GELU's bits
 * should not depend on the machine. expf, logf, sinf, cosf and powf agree. */
static inline float erf_f(float x) { return (float)erf((double)x); }

/* exp(x - shift) of n values into out (which may be x), and their sum in
 * double. float: the generation ops' one definition and order
 * (vr_exp_infer_cpu: vr_exp_def in 16 lanes, blocks of 4096), vectorised in
 * every variant with the same bits; the float64 twins: libm's exp summed in
 * order. The softmaxes of attention and of the LM head go through it. */
static double exp_shift_f32(float *out, const float *x, int n, float shift)
{
    return vr_exp_infer_cpu(out, x, n, 1.0f, shift);
}
/* the largest of n values (finite ones: every variant gives the same) */
static float max_f32(const float *x, int n) { return vr_max_infer_cpu(x, n); }
static double max_f64(const double *x, int n)
{
    double m = -INFINITY;
    for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}
static double exp_shift_f64(double *out, const double *x, int n, double shift)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (out[i] = exp(x[i] - shift));
    return s;
}

/* SwiGLU and its gradient over a span: in float, the generation path's
 * vector code with vr_exp_def (the same bits on every CPU); in double, the
 * same formulas with libm's exp */
static void swiglu_f64(double *y, const double *g, const double *u, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = g[i] / (1 + exp(-g[i])) * u[i];
}
static void swiglu_grad_f64(double *dg, double *du, const double *dy, const double *g, const double *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double d = dy[i], x = g[i], v = u[i], s = 1 / (1 + exp(-x));
        if (du) du[i] = d * x * s;
        if (dg) dg[i] = d * v * s * (1 + x * (1 - s));
    }
}

/* a dot product: in float the GEMV's definition (16 lanes and lanes.h's
 * tree, vr_dot_cpu: the same bits in every variant, and one FMA's latency
 * per 16 elements instead of one add's per element); in double, in order */
static double dot_f64(const double *a, const double *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

#define R float
#define S f32
#define SUF cpu
#define GEMM sgemm_fixed
#define POOL_GEMM vr_sgemm_pool
#define EXP expf
#define EXP_SHIFT exp_shift_f32
#define MAXV max_f32
#define SWIGLU vr_swiglu_span_cpu
#define SWIGLU_GRAD vr_swiglu_grad_span_cpu
#define DOT vr_dot_cpu
#define LOG logf
#define SQRT sqrtf
#define ERF erf_f
#include "cpu/train_ops_impl.h"
#undef R
#undef S
#undef SUF
#undef GEMM
#undef POOL_GEMM
#undef EXP
#undef EXP_SHIFT
#undef MAXV
#undef SWIGLU
#undef SWIGLU_GRAD
#undef DOT
#undef LOG
#undef SQRT
#undef ERF

#define R double
#define S f64
#define SUF f64
#define GEMM cblas_dgemm
#define EXP exp
#define EXP_SHIFT exp_shift_f64
#define MAXV max_f64
#define SWIGLU swiglu_f64
#define SWIGLU_GRAD swiglu_grad_f64
#define DOT dot_f64
#define LOG log
#define SQRT sqrt
#define ERF erf
#include "cpu/train_ops_impl.h"

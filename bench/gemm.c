/* gemm: vr_sgemm (lib/cpu/gemm.c, one fma chain per element, the same bits
 * on every CPU) against OpenBLAS's cblas_sgemm, single-threaded, on the
 * same data in one process, alternating, median of --repeats. Shapes: the
 * transposes training uses (NT forward, NN and TN backward) on 256 x 256
 * tiles, attention's 64-wide products, an LM-head chunk and an inference
 * linear. Prints GFLOP/s of each, the ratio vr / OpenBLAS, and the largest
 * difference between the two results relative to the element's magnitude
 * (a sanity check: tests/unit/gemm.c holds vr to its definition's bits).
 *
 *   gemm [--repeats R]                                   */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/isa.h"
#include "cpu/ops.h"
#include "err.h"
#include "progress.h"
#include "rng.h"

#include <cblas.h> /* after ops.h: complex.h's I would clash with its parameter names */
#undef I

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct shape {
    const char *what;
    int ta, tb, M, N, K;
};

int main(int argc, char **argv)
{
    int R = 7;
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--repeats") && i + 1 < argc) R = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: gemm [--repeats R]\n");
            return 2;
        }
    }
    if (R < 1 || R > 64) {
        fprintf(stderr, "gemm: repeats 1..64\n");
        return 2;
    }
    openblas_set_num_threads(1);
    static const struct shape shapes[] = {
        {"linear fwd tile (NT)", 0, 1, 256, 256, 512},
        {"linear fwd tile, K 1376 (NT)", 0, 1, 256, 256, 1376},
        {"linear bwd dx tile (NN)", 0, 0, 256, 256, 512},
        {"linear bwd dw tile (TN)", 1, 0, 256, 256, 512},
        {"attention scores (NT, K 64)", 0, 1, 64, 512, 64},
        {"attention out (NN, K 512)", 0, 0, 64, 64, 512},
        {"LM head chunk (NT)", 0, 1, 128, 1024, 512},
        {"inference linear (NT)", 0, 1, 600, 1376 / 4, 512},
    };
    printf("# gemm: single thread, ISA %s, median of %d; GFLOP/s\n", vr_isa_name(vr_isa()), R);
    printf("%-32s %9s %9s %7s %9s\n", "shape", "openblas", "vr", "vr/ob", "maxrel");
    struct vr_rng rng;
    vr_rng_init(&rng, 11, 0);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const struct shape *sh = &shapes[s];
        int M = sh->M, N = sh->N, K = sh->K;
        int lda = sh->ta ? M : K, ldb = sh->tb ? K : N;
        float *A = vr_xmalloc((size_t)M * K * 4), *B = vr_xmalloc((size_t)K * N * 4);
        float *C0 = vr_xmalloc((size_t)M * N * 4), *C1 = vr_xmalloc((size_t)M * N * 4);
        for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (vr_rng_float(&rng) * 2 - 1);
        for (size_t i = 0; i < (size_t)K * N; i++) B[i] = (vr_rng_float(&rng) * 2 - 1);
        double tb[64], tv[64];
        /* enough calls per timing for about 20 ms of work at 50 GFLOP/s */
        double fl = 2.0 * M * N * K;
        int calls = (int)(1e9 / fl) + 1;
        for (int r = 0; r < R; r++) {
            double t = vr_now();
            for (int c = 0; c < calls; c++)
                cblas_sgemm(CblasRowMajor, sh->ta ? CblasTrans : CblasNoTrans, sh->tb ? CblasTrans : CblasNoTrans,
                            M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C0, N);
            tb[r] = (vr_now() - t) / calls;
            t = vr_now();
            for (int c = 0; c < calls; c++) vr_sgemm(sh->ta, sh->tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C1, N);
            tv[r] = (vr_now() - t) / calls;
        }
        qsort(tb, R, sizeof *tb, cmp_double);
        qsort(tv, R, sizeof *tv, cmp_double);
        double worst = 0;
        for (size_t i = 0; i < (size_t)M * N; i++) {
            double d = fabs((double)C0[i] - C1[i]) / (fabs((double)C0[i]) + 1e-3 * sqrt((double)K));
            if (d > worst) worst = d;
        }
        printf("%-32s %9.1f %9.1f %7.3f %9.2e\n", sh->what, fl / tb[R / 2] * 1e-9, fl / tv[R / 2] * 1e-9,
               tb[R / 2] / tv[R / 2], worst);
        free(A), free(B), free(C0), free(C1);
    }
    return 0;
}

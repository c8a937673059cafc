/* logp: the LM head's forward and backward (vr_logp_fwd + vr_logp_bwd, the
 * token log-probs of N scored rows over a vocabulary of V) with the softmax
 * rows kept from the forward for the backward (vr-update --keep-logits, the
 * default) against computing the logits again in the backward
 * (--keep-logits 0), in one process on the same data, alternating, median of
 * --repeats. Also checks that both give the same bits of logp, dh and dw.
 * Defaults: the small preset's head (D 512, V 151680) on 512 rows, the rows
 * bench/update.sh scores.
 *
 *   logp [--rows N] [--hidden D] [--vocab V] [--repeats R]           */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops.h"
#include "cpu/pool.h"
#include "err.h"
#include "rng.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct run {
    float *lp, *dh, *dw;
    double fwd[64], bwd[64];
};

int main(int argc, char **argv)
{
    int N = 512, D = 512, V = 151680, R = 5;
    for (int i = 1; i < argc; i += 2) {
        int v = i + 1 < argc ? atoi(argv[i + 1]) : 0; /* a flag without its value: 0, refused below */
        if (!strcmp(argv[i], "--rows")) N = v;
        else if (!strcmp(argv[i], "--hidden")) D = v;
        else if (!strcmp(argv[i], "--vocab")) V = v;
        else if (!strcmp(argv[i], "--repeats")) R = v;
        else {
            fprintf(stderr, "usage: logp [--rows N] [--hidden D] [--vocab V] [--repeats R]\n");
            return 2;
        }
    }
    if (N < 1 || D < 1 || V < 2 || R < 1 || R > 64) {
        fprintf(stderr, "logp: sizes must be positive, repeats 1..64\n");
        return 2;
    }
    struct vr_rng rng;
    vr_rng_init(&rng, 7, 0);
    float *h = vr_xmalloc((size_t)N * D * 4), *w = vr_xmalloc((size_t)V * D * 4), *dl = vr_xmalloc((size_t)N * 4);
    float *prob = vr_xmalloc((size_t)N * V * 4);
    int32_t *t = vr_xmalloc((size_t)N * 4);
    for (size_t i = 0; i < (size_t)N * D; i++) h[i] = (float)(vr_rng_double(&rng) * 2 - 1);
    for (size_t i = 0; i < (size_t)V * D; i++) w[i] = (float)(vr_rng_double(&rng) * 0.1 - 0.05);
    for (int n = 0; n < N; n++) t[n] = (int32_t)(vr_rng_u64(&rng) % (uint64_t)V), dl[n] = (float)(vr_rng_double(&rng) - 0.5);
    struct run run[2];
    struct vr_ws ws = {0};
    for (int k = 0; k < 2; k++) {
        run[k].lp = vr_xmalloc((size_t)N * 4);
        run[k].dh = vr_xmalloc((size_t)N * D * 4);
        run[k].dw = vr_xcalloc((size_t)V * D, 4);
    }
    for (int r = 0; r <= R; r++) /* the first round warms up (workspace, page faults) */
        for (int k = 0; k < 2; k++) {
            struct run *u = &run[k];
            float *p = k ? prob : NULL;
            memset(u->dw, 0, (size_t)V * D * 4);
            double t0 = now();
            vr_logp_fwd(u->lp, NULL, p, h, w, t, N, D, V, 1.0, &ws);
            double t1 = now();
            vr_logp_bwd(u->dh, u->dw, dl, p, h, w, t, N, D, V, 1.0, &ws);
            double t2 = now();
            vr_ws_reset(&ws);
            if (r > 0) u->fwd[r - 1] = t1 - t0, u->bwd[r - 1] = t2 - t1;
        }
    int same = !memcmp(run[0].lp, run[1].lp, (size_t)N * 4) && !memcmp(run[0].dh, run[1].dh, (size_t)N * D * 4) &&
               !memcmp(run[0].dw, run[1].dw, (size_t)V * D * 4);
    double med[2][2];
    for (int k = 0; k < 2; k++) {
        qsort(run[k].fwd, (size_t)R, sizeof(double), cmp_double);
        qsort(run[k].bwd, (size_t)R, sizeof(double), cmp_double);
        med[k][0] = run[k].fwd[R / 2], med[k][1] = run[k].bwd[R / 2];
    }
    for (int k = 0; k < 2; k++)
        printf("{\"impl\":\"vr\",\"probabilities\":\"%s\",\"rows\":%d,\"hidden\":%d,\"vocab\":%d,\"threads\":%d,"
               "\"fwd_s\":%.4f,\"bwd_s\":%.4f,\"total_s\":%.4f,\"kept_mb\":%.1f}\n",
               k ? "kept" : "recomputed", N, D, V, vr_threads(), med[k][0], med[k][1], med[k][0] + med[k][1],
               k ? (double)N * V * 4 / (1 << 20) : 0.0);
    printf("# kept vs recomputed: %.2fx faster (fwd + bwd, median of %d); logp, dh and dw %s\n",
           (med[0][0] + med[0][1]) / (med[1][0] + med[1][1]), R, same ? "bit-identical" : "DIFFER");
    vr_ws_release(&ws);
    for (int k = 0; k < 2; k++) free(run[k].lp), free(run[k].dh), free(run[k].dw);
    free(h), free(w), free(dl), free(prob), free(t);
    return same ? 0 : 1;
}

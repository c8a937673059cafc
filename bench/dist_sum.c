/* bench/dist_sum.c: lib/dist.h's fixed-order sum against its peer,
 * MPI_Allreduce(MPI_SUM) (whose order Open MPI picks by size and rank
 * count), on the same float arrays, in the same job:
 *     mpirun -np 2 build/bench/dist_sum [MFLOATS...]
 * Prints one JSONL record per size (rank 0): seconds (median of 5 after a
 * warm-up), GB/s of the array, and the ratio. Built without MPI it says so
 * and exits 1. Also checks that the fixed-order sum is the rank-order sum. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"

#ifdef VR_MPI
#include <mpi.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* rank r's value at i: a different float per rank and element */
static float val(int r, size_t i) { return (float)((double)((i * 2654435761u + (size_t)r * 40503u) % 1000003) * 1e-6 - 0.5); }

int main(int argc, char **argv)
{
    struct vr_err err;
    if (vr_dist_init(&err) || vr_dist_size() < 2) {
        fprintf(stderr, "dist_sum: run it under mpirun -np 2 or more\n");
        return 1;
    }
    int me = vr_dist_rank(), N = vr_dist_size();
    double sizes[16] = {1, 16, 129.3};
    int ns = 3;
    if (argc > 1) {
        ns = 0;
        for (int i = 1; i < argc && ns < 16; i++) sizes[ns++] = atof(argv[i]);
    }
    for (int k = 0; k < ns; k++) {
        size_t n = (size_t)(sizes[k] * 1e6);
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        double ts[2][5];
        for (int rep = -1; rep < 5; rep++) {
            for (size_t i = 0; i < n; i++) x[i] = y[i] = val(me, i);
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = now();
            vr_dist_sum(x, n, &err);
            double t1 = now();
            MPI_Barrier(MPI_COMM_WORLD);
            double t2 = now();
            MPI_Allreduce(MPI_IN_PLACE, y, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double t3 = now();
            if (rep >= 0) ts[0][rep] = t1 - t0, ts[1][rep] = t3 - t2;
        }
        size_t bad = 0, differ = 0;
        for (size_t i = 0; i < n; i++) {
            double acc = val(0, i);
            for (int r = 1; r < N; r++) acc += val(r, i);
            bad += x[i] != (float)acc;
            differ += x[i] != y[i];
        }
        qsort(ts[0], 5, sizeof(double), cmp);
        qsort(ts[1], 5, sizeof(double), cmp);
        if (me == 0)
            printf("{\"ranks\":%d,\"floats\":%zu,\"fixed_s\":%.4f,\"allreduce_s\":%.4f,\"ratio\":%.2f,"
                   "\"fixed_gb_s\":%.2f,\"not_rank_order\":%zu,\"differ_from_allreduce\":%zu}\n",
                   N, n, ts[0][2], ts[1][2], ts[0][2] / ts[1][2], n * 4.0 / ts[0][2] * 1e-9, bad, differ);
        free(x);
        free(y);
    }
    return 0;
}
#else
int main(void)
{
    fprintf(stderr, "dist_sum: built without MPI (no mpicc when it was built)\n");
    return 1;
}
#endif

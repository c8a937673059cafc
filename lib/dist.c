/* dist.c: the job's processes and their collectives (see dist.h): MPI when
 * built with VR_MPI (the Makefile adds it when mpicc exists), else one
 * process. Used by vr-update (gradients, input lines) and vr-rollout (task
 * lines out, rollout lines back). */
#include "dist.h"
#include "progress.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef VR_MPI
#include <mpi.h>
#endif

static int my_rank, nranks = 1, inited;
static double spent; /* seconds in collectives */

/* An environment variable as a number, -1 when unset or not a number. */
static long env_long(const char *name)
{
    const char *s = getenv(name);
    char *end;
    if (!s || !*s) return -1;
    long v = strtol(s, &end, 10);
    return *end ? -1 : v;
}

/* Processes the launcher started, as far as its environment says: Open
 * MPI's mpirun (OMPI_COMM_WORLD_SIZE), PMI-1/2 launchers such as MPICH's
 * hydra and srun --mpi=pmi2 (PMI_SIZE), PMIx ones such as srun --mpi=pmix
 * (PMIX_RANK: a rank above 0 means at least rank + 1). 0: no launcher. */
static long launched_size(void)
{
    long n = env_long("OMPI_COMM_WORLD_SIZE");
    if (n < 0) n = env_long("PMI_SIZE");
    long r = env_long("PMIX_RANK");
    if (r >= 0 && n < r + 1) n = r + 1;
    return n < 0 ? 0 : n;
}

int vr_dist_rank(void) { return my_rank; }
int vr_dist_size(void) { return nranks; }
double vr_dist_seconds(void) { return spent; }

#ifdef VR_MPI

const char *vr_dist_impl(void) { return "mpi"; }

/* exit() ends the job: 0 finalizes, anything else aborts every rank, so a
 * rank that fails (bad input, a full disk) never leaves the others blocked
 * in a collective. */
static void at_exit(int status, void *arg)
{
    (void)arg;
    int done = 0;
    MPI_Finalized(&done);
    if (done) return;
    fflush(stdout);
    if (status == 0) {
        MPI_Finalize();
        return;
    }
    if (nranks > 1)
        fprintf(stderr, "%s: rank %d of %d failed (exit status %d): ending the job\n", program_invocation_short_name,
                my_rank, nranks, status);
    MPI_Abort(MPI_COMM_WORLD, status);
}

int vr_dist_init(struct vr_err *err)
{
    (void)err;
    if (inited) return 0;
    inited = 1;
    /* started alone (no launcher), MPI is left out: Open MPI's singleton
     * start forks a daemon, slow and noisy in containers, for nothing */
    if (!launched_size()) return 0;
    MPI_Init(NULL, NULL);
    MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    on_exit(at_exit, NULL);
    return 0;
}

void vr_dist_abort(int code)
{
    int up = 0, done = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&done);
    if (up && !done) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

#define SLICE ((size_t)1 << 22) /* elements each rank sums per round: the scratch is N of these */

/* The fixed-order sum (dist.h): in rounds of N slices, slice r of every
 * rank goes to rank r (MPI_Alltoallv), which sums the N copies in rank order,
 * then every rank gets every sum (MPI_Allgatherv). */
static int sum(void *x, size_t n, int dbl)
{
    if (nranks == 1 || n == 0) return 0;
    double t0 = vr_now();
    size_t N = (size_t)nranks, esz = dbl ? sizeof(double) : sizeof(float);
    size_t S = (n + N - 1) / N < SLICE ? (n + N - 1) / N : SLICE;
    MPI_Datatype ty = dbl ? MPI_DOUBLE : MPI_FLOAT;
    /* scratch kept from call to call: no allocation (and no page faults)
     * in the steps after the first */
    static char *recv;
    static size_t cap;
    static int *cnt, *dsp, *rcnt, *rdsp;
    if (N * S * esz > cap) {
        free(recv);
        cap = N * S * esz;
        recv = vr_xmalloc_big(cap, 0);
    }
    if (!cnt) {
        cnt = vr_xmalloc(N * sizeof *cnt), dsp = vr_xmalloc(N * sizeof *dsp);
        rcnt = vr_xmalloc(N * sizeof *rcnt), rdsp = vr_xmalloc(N * sizeof *rdsp);
    }
    for (size_t at = 0; at < n; at += N * S) {
        size_t len = n - at < N * S ? n - at : N * S, s = (len + N - 1) / N;
        for (size_t r = 0; r < N; r++) {
            size_t lo = r * s < len ? r * s : len, hi = (r + 1) * s < len ? (r + 1) * s : len;
            cnt[r] = (int)(hi - lo);
            dsp[r] = (int)lo;
        }
        int mine = cnt[my_rank];
        for (size_t q = 0; q < N; q++) {
            rcnt[q] = mine;
            rdsp[q] = (int)q * mine;
        }
        char *blk = (char *)x + at * esz;
        MPI_Alltoallv(blk, cnt, dsp, ty, recv, rcnt, rdsp, ty, MPI_COMM_WORLD);
        if (dbl) {
            double *out = (double *)blk + dsp[my_rank];
            const double *in = (const double *)recv;
            for (int j = 0; j < mine; j++) {
                double acc = in[j];
                for (size_t q = 1; q < N; q++) acc += in[q * mine + j];
                out[j] = acc;
            }
        } else {
            float *out = (float *)blk + dsp[my_rank];
            const float *in = (const float *)recv;
            for (int j = 0; j < mine; j++) {
                double acc = in[j];
                for (size_t q = 1; q < N; q++) acc += in[q * mine + j];
                out[j] = (float)acc;
            }
        }
        MPI_Allgatherv(MPI_IN_PLACE, 0, ty, blk, cnt, dsp, ty, MPI_COMM_WORLD);
    }
    spent += vr_now() - t0;
    return 0;
}

int vr_dist_sum(float *x, size_t n, struct vr_err *err)
{
    (void)err;
    return sum(x, n, 0);
}

int vr_dist_sum_f64(double *x, size_t n, struct vr_err *err)
{
    (void)err;
    return sum(x, n, 1);
}

int vr_dist_bcast(void *buf, size_t n, struct vr_err *err)
{
    (void)err;
    if (nranks == 1) return 0;
    double t0 = vr_now();
    for (size_t at = 0; at < n;) { /* MPI counts are ints */
        int k = n - at < (1u << 30) ? (int)(n - at) : 1 << 30;
        MPI_Bcast((char *)buf + at, k, MPI_BYTE, 0, MPI_COMM_WORLD);
        at += (size_t)k;
    }
    spent += vr_now() - t0;
    return 0;
}

int vr_dist_gather(const void *buf, size_t n, struct vr_buf *out, size_t *counts, struct vr_err *err)
{
    if (nranks == 1) {
        vr_buf_reset(out);
        vr_buf_put(out, buf, n);
        counts[0] = n;
        return 0;
    }
    double t0 = vr_now();
    uint64_t mine = n, *all = my_rank == 0 ? vr_xmalloc((size_t)nranks * sizeof *all) : NULL;
    int *cnt = NULL, *dsp = NULL, rc = 0;
    MPI_Gather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (my_rank == 0) {
        uint64_t total = 0;
        cnt = vr_xmalloc((size_t)nranks * sizeof *cnt);
        dsp = vr_xmalloc((size_t)nranks * sizeof *dsp);
        for (int r = 0; r < nranks; r++) {
            counts[r] = all[r];
            dsp[r] = (int)total;
            cnt[r] = (int)all[r];
            total += all[r];
        }
        if (total >= INT32_MAX) /* the displacements are ints */
            rc = vr_err_set(err, VR_ERR_SYS, NULL, 0, "a gather of %llu bytes: MPI counts stop at 2 GiB",
                            (unsigned long long)total);
        else {
            out->p = vr_xrealloc(out->p, total + 1);
            out->cap = total + 1;
            out->len = total;
            out->p[total] = 0;
        }
    }
    int bad = rc;
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (!bad) MPI_Gatherv(buf, (int)n, MPI_BYTE, out ? out->p : NULL, cnt, dsp, MPI_BYTE, 0, MPI_COMM_WORLD);
    else if (!rc) rc = vr_err_set(err, VR_ERR_SYS, NULL, 0, "a gather of over 2 GiB");
    free(all), free(cnt), free(dsp);
    spent += vr_now() - t0;
    return rc;
}

int vr_dist_barrier(struct vr_err *err)
{
    (void)err;
    if (nranks > 1) MPI_Barrier(MPI_COMM_WORLD);
    return 0;
}

#else /* one process */

const char *vr_dist_impl(void) { return "single"; }

int vr_dist_init(struct vr_err *err)
{
    long n = launched_size();
    if (n > 1) {
        vr_err_set(err, VR_ERR_USAGE, NULL, 0,
                   "launched as %ld processes (mpirun, srun), but this %s was built without MPI", n,
                   program_invocation_short_name);
        return vr_err_hint(err, "install Open MPI (share/deps.sh adds openmpi-bin libopenmpi-dev), then make; "
                                "or run one process");
    }
    inited = 1;
    return 0;
}

void vr_dist_abort(int code) { exit(code); }
int vr_dist_sum(float *x, size_t n, struct vr_err *err) { (void)x, (void)n, (void)err; return 0; }
int vr_dist_sum_f64(double *x, size_t n, struct vr_err *err) { (void)x, (void)n, (void)err; return 0; }
int vr_dist_bcast(void *buf, size_t n, struct vr_err *err) { (void)buf, (void)n, (void)err; return 0; }
int vr_dist_barrier(struct vr_err *err) { (void)err; return 0; }

int vr_dist_gather(const void *buf, size_t n, struct vr_buf *out, size_t *counts, struct vr_err *err)
{
    (void)err;
    vr_buf_reset(out);
    vr_buf_put(out, buf, n);
    counts[0] = n;
    return 0;
}

#endif

/* The wire form of a line: rc, line number, error kind, bytes; then the
 * bytes: path NUL text (a line) or message NUL hint (an error). */
int vr_dist_jsonl_next(struct vr_jsonl_files *in, json_t **line, const char **file, long *lineno,
                       struct vr_err *err)
{
    static char *msg;
    static size_t cap;
    *line = NULL;
    if (nranks == 1) {
        int rc = vr_jsonl_files_next(in, line, err);
        *file = in->in.path;
        *lineno = in->in.line;
        return rc;
    }
    int64_t h[4] = {0};
    size_t a = 0, b = 0;
    const char *s1 = "", *s2 = "";
    if (my_rank == 0) {
        int rc = vr_jsonl_files_next(in, line, err);
        if (rc > 0) { /* the raw text: the other ranks parse the same bytes */
            s1 = in->in.path;
            s2 = in->in.buf;
            b = strcspn(s2, "\r\n");
        } else if (rc < 0) {
            s1 = err->msg;
            s2 = err->hint;
            b = strlen(s2);
            h[2] = err->kind;
        }
        a = strlen(s1);
        h[0] = rc;
        h[1] = rc ? in->in.line : 0;
        h[3] = (int64_t)(a + 1 + b);
    }
    vr_dist_bcast(h, sizeof h, err);
    if ((size_t)h[3] + 1 > cap) {
        cap = (size_t)h[3] + 1;
        msg = vr_xrealloc(msg, cap);
    }
    if (my_rank == 0 && h[3]) {
        memcpy(msg, s1, a + 1);
        memcpy(msg + a + 1, s2, b);
    }
    vr_dist_bcast(msg, (size_t)h[3], err);
    msg[h[3]] = 0;
    *file = msg;
    *lineno = (long)h[1];
    if (my_rank == 0 || h[0] == 0) return (int)h[0];
    const char *text = msg + strlen(msg) + 1;
    if (h[0] < 0) {
        vr_err_set(err, (enum vr_errkind)h[2], NULL, 0, "%s", msg);
        if (*text) vr_err_hint(err, "%s", text);
        return -1;
    }
    json_error_t je; /* as vr_jsonl_next reads it (rank 0 has checked it) */
    *line = json_loadb(text, strlen(text), JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    VR_ASSERT(*line);
    return 1;
}

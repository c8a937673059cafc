/* dist.h: the processes of one job and the collectives between them
 * (DESIGN.md §8): data-parallel vr-update, vr-rollout split across ranks.
 *
 * One job is N processes (ranks 0..N-1) started by a launcher: mpirun, srun,
 * or anything that speaks PMI/PMIx. vr_dist_init reads the launcher's
 * environment; a process started without one is rank 0 of 1, and every
 * collective is then a no-op, so library code calls them unconditionally.
 * Two implementations, one chosen at build time: MPI (lib/dist.c with
 * VR_MPI, when the Makefile finds mpicc) and a single-process one, which
 * refuses a launch with more than one process instead of running N
 * unrelated copies that would all write the same run folder.
 *
 * Every collective is called by every rank, in the same order, with the same
 * sizes; results are identical on every rank, bit for bit, and never depend
 * on timing or on which process finishes first (see vr_dist_sum). The
 * process-wide state is set once by vr_dist_init; the calls are not
 * thread-safe (one thread of each rank talks). A failed collective ends the
 * job (MPI's fatal error handler: a dead peer takes every rank down, never a
 * hang), so their error returns are for implementations that can report. */
#ifndef VR_DIST_H
#define VR_DIST_H

#include <stddef.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "jsonl.h"

/* Join the job the environment describes (idempotent). Launched by mpirun
 * or srun with the MPI build: MPI_Init, and from then on exit() ends the
 * job: status 0 finalizes MPI, any other status aborts every rank (with a
 * line on stderr naming this rank), so one rank's error never leaves the
 * others waiting. Without MPI, a launch of more than one process
 * (OMPI_COMM_WORLD_SIZE, PMI_SIZE > 1, or PMIX_RANK > 0) is VR_ERR_USAGE
 * with a hint. */
int vr_dist_init(struct vr_err *err);

int vr_dist_rank(void);
int vr_dist_size(void);
/* "mpi" or "single": the implementation built in. */
const char *vr_dist_impl(void);

/* x[0..n) := the sum over ranks of every rank's x, on every rank, in one
 * fixed order: element i is ((x_0[i] + x_1[i]) + ...) + x_{N-1}[i] in
 * double, rounded once to float. Rank order, not arrival order, so two runs
 * give the same bits; with one rank x is unchanged. (MPI_Allreduce leaves
 * the order to the implementation: ring, tree or recursive halving, chosen
 * by message size and rank count.) Cost: a reduce-scatter of x in rank
 * order and an all-gather, as much traffic as a ring all-reduce, through a
 * bounded scratch buffer. */
int vr_dist_sum(float *x, size_t n, struct vr_err *err);
/* The same for doubles (summed in double). */
int vr_dist_sum_f64(double *x, size_t n, struct vr_err *err);

/* buf[0..n) of rank 0 to every rank. */
int vr_dist_bcast(void *buf, size_t n, struct vr_err *err);

/* Rank 0 gets every rank's bytes: out (rank 0 only; reset first) holds
 * them in rank order, counts[r] (N entries, rank 0 only) how many came from
 * rank r. Other ranks pass out and counts NULL. */
int vr_dist_gather(const void *buf, size_t n, struct vr_buf *out, size_t *counts, struct vr_err *err);

int vr_dist_barrier(struct vr_err *err);

/* End the whole job now with status code (every rank). */
__attribute__((noreturn)) void vr_dist_abort(int code);

/* Seconds this process has spent in collectives since vr_dist_init
 * (waiting for slower ranks included): the communication share of a step. */
double vr_dist_seconds(void);

/* Rank 0 reads the next line of in and every rank gets it, with its
 * file:line (as vr_jsonl_files_next: 1, 0 at the end, -1 on a bad line on
 * every rank). Other ranks need no input of their own: mpirun gives stdin to
 * rank 0 only. *file points into a buffer valid until the next call. */
int vr_dist_jsonl_next(struct vr_jsonl_files *in, json_t **line, const char **file, long *lineno,
                       struct vr_err *err);

#endif

/* dist.c: lib/dist.h's single-process implementation (compiled in here
 * without VR_MPI, whatever libvr.a holds): a launch of several processes is
 * refused with a hint, one process is rank 0 of 1 and its collectives leave
 * the data as it is. Also vr_update_share, the part of a batch each rank
 * trains on: whole micro-batches, contiguous, about 1/N of the tokens each.
 * The MPI implementation runs under mpirun in t0925 and t0705. */
#include "../../lib/dist.c"

#include "update.h"

#include "../tap.h"

static void launch(const char *var, const char *val, int refused)
{
    struct vr_err err = {0};
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    unsetenv("PMIX_RANK");
    if (var) setenv(var, val, 1);
    int rc = vr_dist_init(&err);
    if (refused)
        ok(rc == -1 && err.kind == VR_ERR_USAGE && strstr(err.msg, "built without MPI") &&
               strstr(err.hint, "install Open MPI"),
           "%s=%s: refused (%s)", var, val, err.msg);
    else ok(rc == 0 && vr_dist_size() == 1 && vr_dist_rank() == 0, "%s=%s: one process", var ? var : "no launcher",
            var ? val : "");
}

static void collectives(void)
{
    float x[3] = {1, 2, 3};
    double y[2] = {0.5, -1};
    char b[4] = "abc";
    size_t counts[1];
    struct vr_buf out = {0};
    struct vr_err err;
    ok(!vr_dist_sum(x, 3, &err) && x[0] == 1 && x[2] == 3 && !vr_dist_sum_f64(y, 2, &err) && y[1] == -1 &&
           !vr_dist_bcast(b, 4, &err) && !strcmp(b, "abc") && !vr_dist_barrier(&err),
       "sum, bcast and barrier of one rank leave the data");
    ok(!vr_dist_gather("xyz", 3, &out, counts, &err) && counts[0] == 3 && out.len == 3 && !memcmp(out.p, "xyz", 3),
       "gather of one rank: its bytes");
    ok(!strcmp(vr_dist_impl(), "single"), "the implementation says so");
    vr_buf_release(&out);
}

/* A batch of n sequences of the given lengths, with budget tokens per micro-batch. */
static void share_is(const int *len, int n, int64_t budget, int ranks, const int *want_lo, const char *what)
{
    struct vr_update u;
    struct vr_batch b;
    memset(&u, 0, sizeof u);
    memset(&b, 0, sizeof b);
    u.o.max_batch_tokens = budget;
    b.nseq = n;
    b.s = calloc((size_t)n, sizeof *b.s);
    for (int i = 0; i < n; i++) b.s[i].n = len[i];
    int good = 1;
    for (int r = 0; r < ranks; r++) {
        int lo, hi;
        vr_update_share(&u, &b, r, ranks, &lo, &hi);
        if (lo != want_lo[r] || hi != want_lo[r + 1]) {
            diag("rank %d: [%d, %d), want [%d, %d)", r, lo, hi, want_lo[r], want_lo[r + 1]);
            good = 0;
        }
    }
    ok(good, "share: %s", what);
    free(b.s);
}

int main(void)
{
    launch(NULL, NULL, 0);
    launch("OMPI_COMM_WORLD_SIZE", "1", 0);
    launch("OMPI_COMM_WORLD_SIZE", "2", 1);
    launch("PMI_SIZE", "3", 1);
    launch("PMIX_RANK", "1", 1);
    launch("PMIX_RANK", "0", 0);
    collectives();
    int eight[8] = {100, 100, 100, 100, 100, 100, 100, 100};
    share_is(eight, 8, 1, 2, (int[]){0, 4, 8}, "8 equal sequences, one per micro-batch, 2 ranks: 4 each");
    share_is(eight, 8, 1, 3, (int[]){0, 3, 5, 8}, "3 ranks: 3, 2, 3 (by the middle token of each)");
    share_is(eight, 8, 250, 3, (int[]){0, 2, 6, 8}, "micro-batches of 2 sequences stay whole");
    share_is(eight, 8, 1 << 20, 2, (int[]){0, 0, 8}, "one micro-batch: one rank, the other idle");
    int uneven[4] = {1000, 10, 10, 10};
    share_is(uneven, 4, 1, 2, (int[]){0, 1, 4}, "by tokens, not sequences");
    share_is(uneven, 4, 1, 1, (int[]){0, 4}, "one rank: everything");
    done_testing();
}

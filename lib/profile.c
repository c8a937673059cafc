/* profile.c: VR_PROFILE=FILE, the time each op of the seam (ops.h) takes in
 * this process, written to FILE ("-": stderr) at exit as JSONL, one line per
 * op that ran, then one "total" line:
 *   {"prog":"vr-update","pid":123,"op":"linear_fwd","calls":960,"seconds":4.21,"gflop":530.6}
 *   {"prog":"vr-update","pid":123,"op":"total","calls":..,"seconds":..,"wall":..}
 * It wraps whichever table lib/backend.c chose: each entry times the inner
 * call (vr_now, monotonic) and counts the floating-point operations of its
 * matrix products from the shapes, 2 per multiply-add, the useful ones only
 * (the LM head's recomputed logits and attention's recomputed scores are not
 * counted; element-wise ops count none). The numbers an op computes are
 * untouched: the wrapper only calls it. "wall" is the time from the table's
 * choice to exit; "seconds" of total over it is the share spent in ops.
 * Lines are appended with one write, so MPI ranks can share a file; a
 * process killed by a signal writes nothing, and vr_profile_write writes the
 * report before exit (then not again). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops.h"
#include "progress.h"

/* One counter set per op; ops may run on several threads at once. */
struct counter {
    const char *op;
    atomic_uint_fast64_t calls, ns;
    _Atomic double flop;
};

enum {
#define X(name) P_##name,
#define VR_PROFILE_OPS                                                                                            \
    X(linear_fwd) X(linear_bwd) X(rmsnorm_fwd) X(rmsnorm_bwd) X(rope_fwd) X(rope_bwd) X(swiglu_fwd)             \
    X(swiglu_bwd) X(gelu_fwd) X(gelu_bwd) X(add_fwd) X(embed_fwd) X(embed_bwd) X(attn_fwd) X(attn_bwd)          \
    X(logp_fwd) X(logp_bwd) X(linear_infer) X(gemv_infer) X(embed_infer) X(swiglu_infer) X(attn_infer)          \
    X(softmax_infer) X(max_infer) X(exp_infer)
    VR_PROFILE_OPS
#undef X
    P_COUNT
};

static struct counter counters[P_COUNT] = {
#define X(name) [P_##name] = {.op = #name},
    VR_PROFILE_OPS
#undef X
};

/* every entry of the table is wrapped: a new op fails here until it is listed */
_Static_assert(sizeof(struct vr_backend) == offsetof(struct vr_backend, linear_fwd) + P_COUNT * sizeof(void (*)(void)),
               "struct vr_backend has an op VR_PROFILE_OPS does not list");

static const struct vr_backend *inner;
static struct vr_backend wrapped;
static const char *path;
static uint64_t t_start;

/* nanoseconds from progress.h's monotonic clock, as the counters add them */
static uint64_t now_ns(void) { return (uint64_t)(vr_now() * 1e9); }

static void add(int op, uint64_t t0, double flop)
{
    struct counter *c = &counters[op];
    atomic_fetch_add_explicit(&c->calls, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->ns, now_ns() - t0, memory_order_relaxed);
    if (flop > 0) {
        double old = atomic_load_explicit(&c->flop, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&c->flop, &old, old + flop, memory_order_relaxed,
                                                      memory_order_relaxed)) {
        }
    }
}

/* Query-key pairs of one attention call: each segment's (causal: lower
 * triangle with the diagonal), or with a KV cache each query's visible keys
 * (the slots up to its position; padding slots of valid are counted). */
static double attn_pairs(const struct vr_attn_dims *d)
{
    double p = 0;
    if (d->cu) {
        for (int s = 0; s < d->nseg; s++) {
            double L = d->cu[s + 1] - d->cu[s];
            p += d->causal ? L * (L + 1) / 2 : L * L;
        }
    } else {
        for (int i = 0; i < d->N; i++) {
            int seen = d->q0 + i + 1;
            p += seen < d->nkeys ? seen : d->nkeys;
        }
    }
    return p;
}

/* x (M,K) . w (N,K)^T: 2 M N K */
static double tensor_flop(const struct vr_tensor *w, int M)
{
    return 2.0 * M * (double)w->shape[0] * (double)w->shape[1];
}

#define TIMED(name, flop, ...)                   \
    do {                                         \
        uint64_t t0_ = now_ns();                 \
        inner->name(__VA_ARGS__);                \
        add(P_##name, t0_, flop);                \
    } while (0)

static void p_linear_fwd(float *y, const float *x, const float *w, const float *b, int N, int O, int I,
                         struct vr_ws *ws)
{
    TIMED(linear_fwd, 2.0 * N * O * I, y, x, w, b, N, O, I, ws);
}
static void p_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N,
                         int O, int I, struct vr_ws *ws)
{
    TIMED(linear_bwd, 2.0 * N * O * I * ((dx != NULL) + (dw != NULL)), dx, dw, db, dy, x, w, N, O, I, ws);
}
static void p_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int N, int D, double eps)
{
    TIMED(rmsnorm_fwd, 0, y, rstd, x, w, N, D, eps);
}
static void p_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rstd, const float *w,
                          int N, int D)
{
    TIMED(rmsnorm_bwd, 0, dx, dw, dy, x, rstd, w, N, D);
}
static void p_rope_fwd(float *x, const float *cos, const float *sin, int N, int H, int K, int stride)
{
    TIMED(rope_fwd, 0, x, cos, sin, N, H, K, stride);
}
static void p_rope_bwd(float *dx, const float *cos, const float *sin, int N, int H, int K, int stride)
{
    TIMED(rope_bwd, 0, dx, cos, sin, N, H, K, stride);
}
static void p_swiglu_fwd(float *y, const float *g, const float *u, size_t n) { TIMED(swiglu_fwd, 0, y, g, u, n); }
static void p_swiglu_bwd(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n)
{
    TIMED(swiglu_bwd, 0, dg, du, dy, g, u, n);
}
static void p_gelu_fwd(float *y, const float *x, size_t n) { TIMED(gelu_fwd, 0, y, x, n); }
static void p_gelu_bwd(float *dx, const float *dy, const float *x, size_t n) { TIMED(gelu_bwd, 0, dx, dy, x, n); }
static void p_add_fwd(float *y, const float *x, size_t n) { TIMED(add_fwd, 0, y, x, n); }
static void p_embed_fwd(float *x, const float *table, const int32_t *idx, int N, int D)
{
    TIMED(embed_fwd, 0, x, table, idx, N, D);
}
static void p_embed_bwd(float *dtable, const float *dx, const int32_t *idx, int N, int D)
{
    TIMED(embed_bwd, 0, dtable, dx, idx, N, D);
}
/* forward: scores and the weighted sum, 2 products of K per pair and head */
static void p_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                       const struct vr_attn_dims *d, struct vr_ws *ws)
{
    TIMED(attn_fwd, 4.0 * attn_pairs(d) * d->H * d->K, out, lse, q, k, v, d, ws);
}
/* backward: dv, dp, dq, dk, 4 products per pair and head (twice the forward) */
static void p_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                       const float *q, const float *k, const float *v, const struct vr_attn_dims *d,
                       struct vr_ws *ws)
{
    TIMED(attn_bwd, 8.0 * attn_pairs(d) * d->H * d->K, dq, dk, dv, dout, out, lse, q, k, v, d, ws);
}
static void p_logp_fwd(float *logp, float *ent, float *prob, const float *h, const float *w, const int32_t *target,
                       int N, int D, int V, double temp, struct vr_ws *ws)
{
    TIMED(logp_fwd, 2.0 * N * D * V, logp, ent, prob, h, w, target, N, D, V, temp, ws);
}
/* dh and dw over the rows with a gradient (dlogp is read here: both tables
 * keep tensors in host memory today; a device-memory table would pass the
 * count instead) */
static void p_logp_bwd(float *dh, float *dw, const float *dlogp, const float *prob, const float *h, const float *w,
                       const int32_t *target, int N, int D, int V, double temp, struct vr_ws *ws)
{
    int rows = 0;
    for (int i = 0; i < N; i++) rows += dlogp[i] != 0;
    TIMED(logp_bwd, 2.0 * rows * D * V * ((dh != NULL) + (dw != NULL)), dh, dw, dlogp, prob, h, w, target, N, D,
          V, temp, ws);
}
static void p_linear_infer(float *out, const float *x, const struct vr_tensor *w, const struct vr_tensor *b, int M,
                           struct vr_ws *ws)
{
    TIMED(linear_infer, tensor_flop(w, M), out, x, w, b, M, ws);
}
static void p_gemv_infer(float *out, const float *x, const struct vr_tensor *w, const struct vr_tensor *b, int M,
                         struct vr_ws *ws)
{
    TIMED(gemv_infer, tensor_flop(w, M), out, x, w, b, M, ws);
}
static void p_embed_infer(float *x, const struct vr_tensor *e, const int32_t *ids, int M)
{
    TIMED(embed_infer, 0, x, e, ids, M);
}
static void p_swiglu_infer(float *y, const float *g, const float *u, size_t n) { TIMED(swiglu_infer, 0, y, g, u, n); }
static void p_attn_infer(float *out, const float *q, const float *k, const float *v, const struct vr_attn_dims *d,
                         struct vr_ws *ws)
{
    TIMED(attn_infer, 4.0 * attn_pairs(d) * d->H * d->K, out, q, k, v, d, ws);
}
static void p_softmax_infer(float *x, int n) { TIMED(softmax_infer, 0, x, n); }
static float p_max_infer(const float *x, int n)
{
    uint64_t t0 = now_ns();
    float r = inner->max_infer(x, n);
    add(P_max_infer, t0, 0);
    return r;
}
static double p_exp_infer(float *out, const float *x, int n, float scale, float shift)
{
    uint64_t t0 = now_ns();
    double r = inner->exp_infer(out, x, n, scale, shift);
    add(P_exp_infer, t0, 0);
    return r;
}

/* Appends the lines in one write, the first time only; a failure is said on
 * stderr (the run's own result stands). */
void vr_profile_write(void)
{
    static atomic_flag done = ATOMIC_FLAG_INIT;
    if (!inner || atomic_flag_test_and_set(&done)) return;
    double wall = (now_ns() - t_start) * 1e-9, total = 0;
    uint64_t calls = 0;
    /* the program's name as a JSON string: a quote, backslash or control
     * character in argv[0] becomes '?' (a name, not data) */
    char prog[64];
    snprintf(prog, sizeof prog, "%s", program_invocation_short_name);
    for (char *c = prog; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) *c = '?';
    /* a line is at most ~190 bytes with prog's 63 */
    char buf[256 * (P_COUNT + 1)];
    size_t len = 0;
    long pid = (long)getpid();
    for (int i = 0; i < P_COUNT; i++) {
        uint64_t n = atomic_load(&counters[i].calls);
        if (!n) continue;
        double s = atomic_load(&counters[i].ns) * 1e-9, f = atomic_load(&counters[i].flop);
        total += s;
        calls += n;
        len += (size_t)snprintf(buf + len, sizeof buf - len, "{\"prog\":\"%s\",\"pid\":%ld,\"op\":\"%s\",\"calls\":%llu,"
                                "\"seconds\":%.6f,\"gflop\":%.9g}\n", prog, pid, counters[i].op,
                                (unsigned long long)n, s, f * 1e-9);
    }
    len += (size_t)snprintf(buf + len, sizeof buf - len, "{\"prog\":\"%s\",\"pid\":%ld,\"op\":\"total\",\"calls\":%llu,"
                            "\"seconds\":%.6f,\"wall\":%.6f}\n", prog, pid, (unsigned long long)calls, total, wall);
    VR_ASSERT(len < sizeof buf);
    int fd = strcmp(path, "-") ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : 2;
    if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
        fprintf(stderr, "%s: VR_PROFILE=%s: cannot write the profile: %m\n", prog, path);
    if (fd > 2) close(fd);
}

const struct vr_backend *vr_profile_wrap(const struct vr_backend *b, const char *file)
{
    inner = b;
    path = file;
    wrapped = (struct vr_backend){
        .name = b->name,
        .keeps_prob = b->keeps_prob,
#define X(name) .name = p_##name,
        VR_PROFILE_OPS
#undef X
    };
    t_start = now_ns();
    atexit(vr_profile_write);
    return &wrapped;
}

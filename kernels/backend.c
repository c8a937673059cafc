/* backend.c: the seam's table (lib/ops.h, struct vr_backend) on the GPU, for
 * VR_DEVICE=cuda (lib/backend.c loads this file's shared library, built
 * when nvcc exists, and calls vr_cuda_backend_open).
 *
 * This is the STAGING backend: the model's tensors stay in host memory, as
 * the seam's contract says today ("pointers are the backend's memory"), and
 * each op copies its operands to the GPU, runs the kernels of vr_cuda.h and
 * copies its results back. Every program runs unchanged on the GPU's
 * arithmetic, so the kernels can be checked at model level (logits, greedy
 * tokens, a GRPO step: tests/gpu/check.sh); it is not the fast path, which
 * keeps weights, activations and the KV cache in device memory (not built
 * yet: kernels/README.md).
 *
 * Transfers: an op names each operand's host range and whether the op reads
 * it (IN), writes part of it or adds into it (OUT: read back and written
 * back), or overwrites all of it (NEW: written back only). Overlapping ranges
 * (y aliasing x, q, k, v as column slices of one qkv buffer) are merged into
 * one device copy, so aliasing behaves as on the CPU. The three sampler
 * helpers (softmax, max, exp of one row) and the embedding gather of the
 * generation path stay on the CPU: a row each, a copy of the whole table each.
 *
 * Errors: a CUDA error or an out-of-memory ends the process with a message
 * (the seam's ops return nothing; vr-update's saves are atomic, so nothing
 * written is lost). Ops are serialised by one mutex. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/ops.h"
#include "vr_cuda.h"

static struct vr_cuda_host host;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void fail(const char *what)
{
    char msg[256];
    if (vr_cuda_sync(msg, sizeof msg) == 0) snprintf(msg, sizeof msg, "%s", what);
    fprintf(stderr, "%s: VR_DEVICE=cuda: %s (%s)\n", program_invocation_short_name, msg, what);
    exit(1);
}

/* ---- device memory: a bump arena, one chunk once the peak is known ---- */

static struct {
    char *chunk[64];
    size_t cap[64];
    int n;
    size_t used, total; /* used: in the newest chunk; total: all chunks' bytes in use */
} ar;

static void *dalloc(size_t bytes)
{
    bytes = (bytes + 255) & ~(size_t)255;
    if (!ar.n || ar.used + bytes > ar.cap[ar.n - 1]) {
        if (ar.n == 64) fail("more than 64 device chunks in one op");
        size_t c = ar.n ? 2 * ar.cap[ar.n - 1] : (size_t)64 << 20;
        if (c < bytes) c = bytes;
        ar.chunk[ar.n] = vr_cuda_alloc(c);
        if (!ar.chunk[ar.n]) fail("out of GPU memory");
        ar.cap[ar.n++] = c;
        ar.used = 0;
    }
    void *p = ar.chunk[ar.n - 1] + ar.used;
    ar.used += bytes;
    ar.total += bytes;
    return p;
}

/* After an op: more than one chunk means the op outgrew the arena; keep one
 * chunk of the whole for the next. */
static void dreset(void)
{
    if (ar.n > 1) {
        size_t need = ar.total;
        for (int i = 0; i < ar.n; i++) vr_cuda_free(ar.chunk[i]);
        ar.n = 0;
        ar.used = 0;
        ar.total = 0;
        dalloc(need);
    }
    ar.used = 0;
    ar.total = 0;
}

/* ---- an op's operands ---- */

enum { IN, OUT, NEW };
#define MAXOP 12

struct xfer {
    int n;
    struct {
        const char *h;
        size_t bytes;
        int how;
        char *d;     /* the operand's device address */
        int span;    /* its span: the first operand of the merged range */
    } a[MAXOP];
};

/* Name an operand; returns its index (-1 for NULL or empty: no operand). */
static int opnd(struct xfer *x, const void *h, size_t bytes, int how)
{
    if (!h || !bytes) return -1;
    if (x->n == MAXOP) fail("an op with too many operands");
    x->a[x->n].h = h;
    x->a[x->n].bytes = bytes;
    x->a[x->n].how = how;
    return x->n++;
}

static void *dp(const struct xfer *x, int i) { return i < 0 ? NULL : x->a[i].d; }

static int by_start(const void *a, const void *b, void *ctx)
{
    const struct xfer *x = ctx;
    const char *p = x->a[*(const int *)a].h, *q = x->a[*(const int *)b].h;
    return p < q ? -1 : p > q;
}

static void sort_idx(int *idx, int n, const struct xfer *x)
{
    for (int i = 1; i < n; i++) /* insertion sort: a dozen operands */
        for (int j = i; j > 0 && by_start(&idx[j - 1], &idx[j], (void *)x) > 0; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
}

/* Merge overlapping operands into spans; give each span device memory and
 * copy it up unless all it holds is NEW. */
static void map(struct xfer *x)
{
    int idx[MAXOP];
    for (int i = 0; i < x->n; i++) idx[i] = i;
    sort_idx(idx, x->n, x);
    for (int s = 0; s < x->n;) {
        const char *lo = x->a[idx[s]].h, *hi = lo + x->a[idx[s]].bytes;
        int e = s + 1, upload = x->a[idx[s]].how != NEW;
        for (; e < x->n && x->a[idx[e]].h < hi; e++) {
            const char *end = x->a[idx[e]].h + x->a[idx[e]].bytes;
            if (end > hi) hi = end;
            upload |= x->a[idx[e]].how != NEW;
        }
        char *d = dalloc((size_t)(hi - lo));
        if (upload) vr_cuda_to_device(d, lo, (size_t)(hi - lo));
        for (int i = s; i < e; i++) {
            x->a[idx[i]].d = d + (x->a[idx[i]].h - lo);
            x->a[idx[i]].span = idx[s];
        }
        x->a[idx[s]].bytes = (size_t)(hi - lo); /* the span's leader carries its size */
        s = e;
    }
}

static void check(const char *what)
{
    char msg[256];
    if (vr_cuda_sync(msg, sizeof msg)) {
        fprintf(stderr, "%s: VR_DEVICE=cuda: %s: %s\n", program_invocation_short_name, what, msg);
        exit(1);
    }
}

/* Check for errors (before anything is copied over host memory); copy back
 * every span that holds an output; check the copies; free. */
static void unmap(struct xfer *x, const char *what)
{
    check(what);
    for (int i = 0; i < x->n; i++) {
        if (x->a[i].how == IN) continue;
        int l = x->a[i].span;
        if (x->a[l].how == -1) continue; /* copied back already */
        vr_cuda_to_host((void *)x->a[l].h, x->a[l].d, x->a[l].bytes);
        x->a[l].how = -1;
    }
    check(what);
    dreset();
}

#define F(n) ((size_t)(n) * sizeof(float))
#define BEGIN struct xfer x = {0}; pthread_mutex_lock(&mu)
#define END(what) unmap(&x, what); pthread_mutex_unlock(&mu)

/* floats from the first of n rows `stride` apart to the end of the last's width */
static size_t rows_extent(int n, int stride, int width) { return n > 0 ? (size_t)(n - 1) * stride + width : 0; }

static size_t wbytes(enum vr_dtype dt) { return dt == VR_DTYPE_F32 ? 4 : dt == VR_DTYPE_BF16 || dt == VR_DTYPE_F16 ? 2 : 0; }

/* ---- the differentiable ops ---- */

static void linear_fwd(float *y, const float *x_, const float *w, const float *b, int N, int O, int I, struct vr_ws *ws)
{
    (void)ws;
    BEGIN;
    int iy = opnd(&x, y, F((size_t)N * O), NEW), ix = opnd(&x, x_, F((size_t)N * I), IN),
        iw = opnd(&x, w, F((size_t)O * I), IN), ib = opnd(&x, b, F(O), IN);
    map(&x);
    vr_cuda_linear_fwd(dp(&x, iy), dp(&x, ix), dp(&x, iw), dp(&x, ib), N, O, I);
    END("linear_fwd");
}

static void linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x_, const float *w, int N, int O,
                       int I, struct vr_ws *ws)
{
    (void)ws;
    BEGIN;
    int idx = opnd(&x, dx, F((size_t)N * I), NEW), idw = opnd(&x, dw, F((size_t)O * I), OUT),
        idb = opnd(&x, db, F(O), OUT), idy = opnd(&x, dy, F((size_t)N * O), IN), ix = opnd(&x, x_, F((size_t)N * I), IN),
        iw = opnd(&x, w, F((size_t)O * I), IN);
    map(&x);
    vr_cuda_linear_bwd(dp(&x, idx), dp(&x, idw), dp(&x, idb), dp(&x, idy), dp(&x, ix), dp(&x, iw), N, O, I);
    END("linear_bwd");
}

static void rmsnorm_fwd(float *y, float *rstd, const float *x_, const float *w, int N, int D, double eps)
{
    BEGIN;
    int iy = opnd(&x, y, F((size_t)N * D), NEW), ir = opnd(&x, rstd, F(N), NEW), ix = opnd(&x, x_, F((size_t)N * D), IN),
        iw = opnd(&x, w, F(D), IN);
    map(&x);
    vr_cuda_rmsnorm_fwd(dp(&x, iy), dp(&x, ir), dp(&x, ix), dp(&x, iw), N, D, eps);
    END("rmsnorm_fwd");
}

static void rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x_, const float *rstd, const float *w, int N,
                        int D)
{
    BEGIN;
    int idx = opnd(&x, dx, F((size_t)N * D), NEW), idw = opnd(&x, dw, F(D), OUT), idy = opnd(&x, dy, F((size_t)N * D), IN),
        ix = opnd(&x, x_, F((size_t)N * D), IN), ir = opnd(&x, rstd, F(N), IN), iw = opnd(&x, w, F(D), IN);
    map(&x);
    vr_cuda_rmsnorm_bwd(dp(&x, idx), dp(&x, idw), dp(&x, idy), dp(&x, ix), dp(&x, ir), dp(&x, iw), N, D);
    END("rmsnorm_bwd");
}

static void rope(float *x_, const float *cos, const float *sin, int N, int H, int K, int stride, int inverse)
{
    BEGIN;
    int ix = opnd(&x, x_, F(rows_extent(N, stride, H * K)), OUT), ic = opnd(&x, cos, F((size_t)N * K), IN),
        is = opnd(&x, sin, F((size_t)N * K), IN);
    map(&x);
    vr_cuda_rope(dp(&x, ix), dp(&x, ic), dp(&x, is), N, H, K, stride, inverse);
    END("rope");
}
static void rope_fwd(float *x, const float *c, const float *s, int N, int H, int K, int st) { rope(x, c, s, N, H, K, st, 0); }
static void rope_bwd(float *x, const float *c, const float *s, int N, int H, int K, int st) { rope(x, c, s, N, H, K, st, 1); }

static void swiglu_fwd(float *y, const float *g, const float *u, size_t n)
{
    BEGIN;
    int iy = opnd(&x, y, F(n), NEW), ig = opnd(&x, g, F(n), IN), iu = opnd(&x, u, F(n), IN);
    map(&x);
    vr_cuda_swiglu_fwd(dp(&x, iy), dp(&x, ig), dp(&x, iu), n);
    END("swiglu_fwd");
}

static void swiglu_bwd(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n)
{
    BEGIN;
    int idg = opnd(&x, dg, F(n), NEW), idu = opnd(&x, du, F(n), NEW), idy = opnd(&x, dy, F(n), IN),
        ig = opnd(&x, g, F(n), IN), iu = opnd(&x, u, F(n), IN);
    map(&x);
    vr_cuda_swiglu_bwd(dp(&x, idg), dp(&x, idu), dp(&x, idy), dp(&x, ig), dp(&x, iu), n);
    END("swiglu_bwd");
}

static void gelu_fwd(float *y, const float *x_, size_t n)
{
    BEGIN;
    int iy = opnd(&x, y, F(n), NEW), ix = opnd(&x, x_, F(n), IN);
    map(&x);
    vr_cuda_gelu_fwd(dp(&x, iy), dp(&x, ix), n);
    END("gelu_fwd");
}

static void gelu_bwd(float *dx, const float *dy, const float *x_, size_t n)
{
    BEGIN;
    int idx = opnd(&x, dx, F(n), NEW), idy = opnd(&x, dy, F(n), IN), ix = opnd(&x, x_, F(n), IN);
    map(&x);
    vr_cuda_gelu_bwd(dp(&x, idx), dp(&x, idy), dp(&x, ix), n);
    END("gelu_bwd");
}

static void add_fwd(float *y, const float *x_, size_t n)
{
    BEGIN;
    int iy = opnd(&x, y, F(n), OUT), ix = opnd(&x, x_, F(n), IN);
    map(&x);
    vr_cuda_add(dp(&x, iy), dp(&x, ix), n);
    END("add");
}

/* rows of the table that idx reaches: max idx + 1 */
static int table_rows(const int32_t *idx, int N)
{
    int r = 0;
    for (int i = 0; i < N; i++)
        if (idx[i] >= r) r = idx[i] + 1;
    return r;
}

static void embed_fwd(float *x_, const float *table, const int32_t *idx, int N, int D)
{
    int rows = table_rows(idx, N);
    if (!rows) return;
    BEGIN;
    int ix = opnd(&x, x_, F((size_t)N * D), OUT), it = opnd(&x, table, F((size_t)rows * D), IN),
        ii = opnd(&x, idx, (size_t)N * 4, IN);
    map(&x);
    vr_cuda_embed_fwd(dp(&x, ix), dp(&x, it), dp(&x, ii), N, D);
    END("embed_fwd");
}

static void embed_bwd(float *dtable, const float *dx, const int32_t *idx, int N, int D)
{
    int rows = table_rows(idx, N);
    if (!rows) return;
    BEGIN;
    int it = opnd(&x, dtable, F((size_t)rows * D), OUT), ix = opnd(&x, dx, F((size_t)N * D), IN),
        ii = opnd(&x, idx, (size_t)N * 4, IN);
    map(&x);
    vr_cuda_embed_bwd(dp(&x, it), dp(&x, ix), dp(&x, ii), N, D);
    END("embed_bwd");
}

/* What the attention kernels take (vr_cuda.h): K <= 256, and packed segments
 * that cover the N rows from 0 (the CPU also allows rows outside them, which
 * it leaves alone). Other calls run on the CPU's op. */
static int attn_on_gpu(const struct vr_attn_dims *d)
{
    if (d->K > 256) return 0;
    return !d->cu || (d->nseg > 0 && d->cu[0] == 0 && d->cu[d->nseg] == d->N);
}

/* The operands every attention call shares; *dd gets device cu and valid. */
struct attn_ops {
    int q, k, v, cu, valid;
};

static struct attn_ops attn_operands(struct xfer *x, const float *q, const float *k, const float *v,
                                     const struct vr_attn_dims *d)
{
    struct attn_ops a;
    a.q = opnd(x, q, F(rows_extent(d->N, d->q_stride, d->H * d->K)), IN);
    size_t kv = d->cu ? rows_extent(d->N, d->kv_stride, d->KVH * d->K) : (size_t)d->KVH * d->cap * d->K;
    a.k = opnd(x, k, F(kv), IN);
    a.v = opnd(x, v, F(kv), IN);
    a.cu = d->cu ? opnd(x, d->cu, (size_t)(d->nseg + 1) * sizeof(int), IN) : -1;
    a.valid = !d->cu && d->valid ? opnd(x, d->valid, (size_t)d->cap, IN) : -1;
    return a;
}

static struct vr_attn_dims dev_dims(const struct xfer *x, const struct vr_attn_dims *d, struct attn_ops a)
{
    struct vr_attn_dims dd = *d;
    dd.cu = dp(x, a.cu);
    dd.valid = dp(x, a.valid);
    return dd;
}

static void attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                     const struct vr_attn_dims *d, struct vr_ws *ws)
{
    if (d->N <= 0) return;
    if (!attn_on_gpu(d)) {
        host.cpu->attn_fwd(out, lse, q, k, v, d, ws);
        return;
    }
    BEGIN;
    int io = opnd(&x, out, F((size_t)d->N * d->H * d->K), NEW), il = opnd(&x, lse, F((size_t)d->N * d->H), NEW);
    struct attn_ops a = attn_operands(&x, q, k, v, d);
    map(&x);
    struct vr_attn_dims dd = dev_dims(&x, d, a);
    vr_cuda_attn_fwd(dp(&x, io), dp(&x, il), dp(&x, a.q), dp(&x, a.k), dp(&x, a.v), &dd);
    END("attn_fwd");
}

static void attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                     const float *q, const float *k, const float *v, const struct vr_attn_dims *d, struct vr_ws *ws)
{
    if (d->N <= 0) return;
    if (!attn_on_gpu(d)) {
        host.cpu->attn_bwd(dq, dk, dv, dout, out, lse, q, k, v, d, ws);
        return;
    }
    BEGIN;
    size_t nq = rows_extent(d->N, d->q_stride, d->H * d->K), nkv = rows_extent(d->N, d->kv_stride, d->KVH * d->K);
    int idq = opnd(&x, dq, F(nq), OUT), idk = opnd(&x, dk, F(nkv), OUT), idv = opnd(&x, dv, F(nkv), OUT),
        ido = opnd(&x, dout, F((size_t)d->N * d->H * d->K), IN), io = opnd(&x, out, F((size_t)d->N * d->H * d->K), IN),
        il = opnd(&x, lse, F((size_t)d->N * d->H), IN);
    struct attn_ops a = attn_operands(&x, q, k, v, d);
    map(&x);
    struct vr_attn_dims dd = dev_dims(&x, d, a);
    float *scratch = dalloc(F((size_t)d->N * d->H));
    vr_cuda_attn_bwd(dp(&x, idq), dp(&x, idk), dp(&x, idv), dp(&x, ido), dp(&x, io), dp(&x, il), dp(&x, a.q),
                     dp(&x, a.k), dp(&x, a.v), &dd, scratch);
    END("attn_bwd");
}

/* rows of logits per chunk: at most 256 MiB of them */
static int logit_chunk(int N, int V)
{
    size_t c = ((size_t)256 << 20) / F(V > 0 ? V : 1);
    if (c < 1) c = 1;
    return c < (size_t)N ? (int)c : (N > 0 ? N : 1);
}

/* Keeping the probabilities (prob) is the CPU op's: the device recomputes
 * them in the backward, where prob is not needed. */
static void logp_fwd(float *logp, float *ent, float *prob, const float *h, const float *w, const int32_t *target,
                     int N, int D, int V, double temp, struct vr_ws *ws)
{
    if (prob) {
        host.cpu->logp_fwd(logp, ent, prob, h, w, target, N, D, V, temp, ws);
        return;
    }
    if (N <= 0) return;
    BEGIN;
    int il = opnd(&x, logp, F(N), NEW), ie = opnd(&x, ent, F(N), NEW), ih = opnd(&x, h, F((size_t)N * D), IN),
        iw = opnd(&x, w, F((size_t)V * D), IN), it = opnd(&x, target, (size_t)N * 4, IN);
    map(&x);
    int chunk = logit_chunk(N, V);
    float *scratch = dalloc(F((size_t)chunk * V));
    vr_cuda_logp_fwd(dp(&x, il), dp(&x, ie), dp(&x, ih), dp(&x, iw), dp(&x, it), N, D, V, temp, scratch, chunk);
    END("logp_fwd");
}

static void logp_bwd(float *dh, float *dw, const float *dlogp, const float *prob, const float *h, const float *w,
                     const int32_t *target, int N, int D, int V, double temp, struct vr_ws *ws)
{
    (void)ws, (void)prob;
    if (N <= 0) return;
    BEGIN;
    int idh = opnd(&x, dh, F((size_t)N * D), NEW), idw = opnd(&x, dw, F((size_t)V * D), OUT),
        idl = opnd(&x, dlogp, F(N), IN), ih = opnd(&x, h, F((size_t)N * D), IN), iw = opnd(&x, w, F((size_t)V * D), IN),
        it = opnd(&x, target, (size_t)N * 4, IN);
    map(&x);
    int chunk = logit_chunk(N, V);
    float *scratch = dalloc(F((size_t)chunk * V));
    vr_cuda_logp_bwd(dp(&x, idh), dp(&x, idw), dp(&x, idl), dp(&x, ih), dp(&x, iw), dp(&x, it), N, D, V, temp, scratch,
                     chunk);
    END("logp_bwd");
}

/* ---- the generation path ---- */

static void gemv_infer(float *out, const float *x_, const struct vr_tensor *w, const struct vr_tensor *b, int M,
                       struct vr_ws *ws)
{
    int O = (int)w->shape[0], K = (int)w->shape[1];
    size_t wb = wbytes(w->dtype);
    if (!wb) { /* a dtype without a kernel (f8): the CPU's */
        host.cpu->gemv_infer(out, x_, w, b, M, ws);
        return;
    }
    const float *B = b ? host.weight_f32(b, 1, ws) : NULL;
    BEGIN;
    int io = opnd(&x, out, F((size_t)M * O), NEW), ix = opnd(&x, x_, F((size_t)M * K), IN),
        iw = opnd(&x, w->data, (size_t)O * K * wb, IN), ib = opnd(&x, B, F(O), IN);
    map(&x);
    vr_cuda_gemv(dp(&x, io), dp(&x, ix), dp(&x, iw), w->dtype, dp(&x, ib), M, O, K);
    END("gemv_infer");
}

static void linear_infer(float *out, const float *x_, const struct vr_tensor *w, const struct vr_tensor *b, int M,
                         struct vr_ws *ws)
{
    size_t wb = wbytes(w->dtype);
    if (!wb) { /* a dtype without a kernel: the CPU's */
        host.cpu->linear_infer(out, x_, w, b, M, ws);
        return;
    }
    if (M <= VR_GEMV_MAX_M) { /* as the CPU: few rows are a GEMV, row by row */
        gemv_infer(out, x_, w, b, M, ws);
        return;
    }
    int O = (int)w->shape[0], K = (int)w->shape[1];
    const float *B = b ? host.weight_f32(b, 1, ws) : NULL;
    BEGIN;
    int io = opnd(&x, out, F((size_t)M * O), NEW), ix = opnd(&x, x_, F((size_t)M * K), IN),
        iw = opnd(&x, w->data, (size_t)O * K * wb, IN), ib = opnd(&x, B, F(O), IN);
    map(&x);
    float *W = dp(&x, iw);
    if (w->dtype != VR_DTYPE_F32) { /* widened exactly, as the CPU's slot; then the fp32 GEMM */
        W = dalloc(F((size_t)O * K));
        vr_cuda_widen(W, dp(&x, iw), w->dtype, (size_t)O * K);
    }
    vr_cuda_linear_fwd(dp(&x, io), dp(&x, ix), W, dp(&x, ib), M, O, K);
    END("linear_infer");
}

static void swiglu_infer(float *y, const float *g, const float *u, size_t n) { swiglu_fwd(y, g, u, n); }

static void attn_infer(float *out, const float *q, const float *k, const float *v, const struct vr_attn_dims *d,
                       struct vr_ws *ws)
{
    if (d->N <= 0) return;
    if (!attn_on_gpu(d)) {
        host.cpu->attn_infer(out, q, k, v, d, ws);
        return;
    }
    BEGIN;
    int io = opnd(&x, out, F((size_t)d->N * d->H * d->K), NEW);
    struct attn_ops a = attn_operands(&x, q, k, v, d);
    map(&x);
    struct vr_attn_dims dd = dev_dims(&x, d, a);
    vr_cuda_attn_fwd(dp(&x, io), NULL, dp(&x, a.q), dp(&x, a.k), dp(&x, a.v), &dd);
    END("attn_infer");
}

static struct vr_backend table = {
    .name = "cuda",
    .linear_fwd = linear_fwd,
    .linear_bwd = linear_bwd,
    .rmsnorm_fwd = rmsnorm_fwd,
    .rmsnorm_bwd = rmsnorm_bwd,
    .rope_fwd = rope_fwd,
    .rope_bwd = rope_bwd,
    .swiglu_fwd = swiglu_fwd,
    .swiglu_bwd = swiglu_bwd,
    .gelu_fwd = gelu_fwd,
    .gelu_bwd = gelu_bwd,
    .add_fwd = add_fwd,
    .embed_fwd = embed_fwd,
    .embed_bwd = embed_bwd,
    .attn_fwd = attn_fwd,
    .attn_bwd = attn_bwd,
    .logp_fwd = logp_fwd,
    .logp_bwd = logp_bwd,
    .linear_infer = linear_infer,
    .gemv_infer = gemv_infer,
    .swiglu_infer = swiglu_infer,
    .attn_infer = attn_infer,
};

/* The table, or NULL with the reason in msg (no GPU, no driver). host: the
 * CPU backend (the sampler's row helpers and the embedding gather stay
 * there) and the widening of small weights (biases). */
const struct vr_backend *vr_cuda_backend_open(const struct vr_cuda_host *h, char *msg, size_t n)
{
    if (vr_cuda_device_count() < 1) {
        snprintf(msg, n, "no CUDA device (cudaGetDeviceCount found none)");
        return NULL;
    }
    host = *h;
    table.embed_infer = host.cpu->embed_infer;
    table.softmax_infer = host.cpu->softmax_infer;
    table.max_infer = host.cpu->max_infer;
    table.exp_infer = host.cpu->exp_infer;
    return &table;
}

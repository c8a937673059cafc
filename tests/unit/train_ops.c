/* train_ops.c: the differentiable ops of the seam (lib/ops.h). Every float64
 * backward against central differences of the float64 forward; float32
 * against float64; the float32 forwards against the generation path's _infer
 * ops (so the forward we differentiate is the one the model runs); results
 * bit-identical with 1 and 3 threads (child processes, since the pool reads
 * VR_THREADS once); weight gradients accumulate. */
#include <sys/wait.h>
#include <unistd.h>

#include "cpu/ops.h" /* VR_GEMV_MAX_M */
#include "cpu/pool.h"
#include "ops.h"
#include "err.h"
#include "rng.h"

#include "../tap.h"

#define TOL_FD 1e-6   /* analytic vs finite differences, float64 */
#define TOL_F32 1e-5  /* float32 vs float64 */
#define TOL_PROD 1e-6 /* our float32 forward vs the _infer ops */

static struct vr_ws ws;

/* RoPE forward, or its transpose (the backward) when inverse */
static void rope64(double *x, const float *cs, const float *sn, int N, int H, int K, int stride, int inverse)
{
    if (inverse) vr_rope_bwd_f64(x, cs, sn, N, H, K, stride);
    else vr_rope_fwd_f64(x, cs, sn, N, H, K, stride);
}

static void rope32(float *x, const float *cs, const float *sn, int N, int H, int K, int stride, int inverse)
{
    if (inverse) vr_rope_bwd(x, cs, sn, N, H, K, stride);
    else vr_rope_fwd(x, cs, sn, N, H, K, stride);
}

static struct vr_attn_dims adims(int N, int H, int KVH, int K, int qs, int ks, const int *cu, int nseg, int causal)
{
    return (struct vr_attn_dims){.N = N, .H = H, .KVH = KVH, .K = K, .q_stride = qs, .kv_stride = ks,
                                 .causal = causal, .cu = cu, .nseg = nseg};
}
static struct vr_rng rng;

static double *dvec(size_t n, double lo, double hi)
{
    double *x = vr_xmalloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * vr_rng_double(&rng);
    return x;
}

static double *dzero(size_t n) { return vr_xcalloc(n ? n : 1, sizeof(double)); }

static double *dfill(size_t n, double v)
{
    double *x = dzero(n);
    for (size_t i = 0; i < n; i++) x[i] = v;
    return x;
}

/* n random values that are floats: the inputs both precisions can see exactly */
static double *dvec32(size_t n, double lo, double hi)
{
    double *x = dvec(n, lo, hi);
    for (size_t i = 0; i < n; i++) x[i] = (float)x[i];
    return x;
}

static float *to_f32(const double *x, size_t n)
{
    float *y = vr_xmalloc((n ? n : 1) * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}

static float *fvec(size_t n, double lo, double hi)
{
    double *d = dvec(n, lo, hi);
    float *f = to_f32(d, n);
    free(d);
    return f;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* max |a - b| / max |b| */
static double rel_err(const double *a, const double *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (!(d <= md)) md = d; /* NaN propagates */
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static double rel_err_f(const float *a, const double *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static double rel_err_ff(const float *a, const float *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

/* ---- finite differences ---- */

typedef double (*loss_fn)(void *ctx);

/* max |g - fd| / max |fd| over x[0], x[step], x[2 step], ... and x[n-1], where
 * fd is the central difference of f at x[i]; x is restored. */
static double fd_err(loss_fn f, void *ctx, double *x, size_t n, const double *g, size_t step)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n;) {
        double x0 = x[i], h = 1e-5 * fmax(1, fabs(x0)), xp = x0 + h, xm = x0 - h;
        x[i] = xp;
        double lp = f(ctx);
        x[i] = xm;
        double lm = f(ctx);
        x[i] = x0;
        double fd = (lp - lm) / (xp - xm), d = fabs(fd - g[i]);
        if (!(d <= md)) md = d;
        if (fabs(fd) > mb) mb = fabs(fd);
        if (i == n - 1) break;
        i = i + step < n ? i + step : n - 1;
    }
    return mb > 0 ? md / mb : md;
}

/* ---- 1. float64 gradients against finite differences ---- */

struct lin {
    int N, O, I;
    double *x, *w, *b, *c, *y;
};

static double lin_loss(void *p)
{
    struct lin *t = p;
    vr_linear_fwd_f64(t->y, t->x, t->w, t->b, t->N, t->O, t->I, &ws);
    vr_ws_reset(&ws);
    return dot(t->c, t->y, (size_t)t->N * t->O);
}

static void grad_linear(int N, int O, int I, int bias)
{
    struct lin t = {N, O, I, dvec((size_t)N * I, -1, 1), dvec((size_t)O * I, -1, 1), bias ? dvec(O, -1, 1) : NULL,
                    dvec((size_t)N * O, -1, 1), dzero((size_t)N * O)};
    double *ref = dzero((size_t)N * O);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double s = 0;
            for (int i = 0; i < I; i++) s += t.x[(size_t)n * I + i] * t.w[(size_t)o * I + i];
            ref[(size_t)n * O + o] = s + (bias ? t.b[o] : 0);
        }
    lin_loss(&t);
    double ey = rel_err(t.y, ref, (size_t)N * O);
    double *dx = dzero((size_t)N * I), *dw = dzero((size_t)O * I), *db = bias ? dzero(O) : NULL;
    vr_linear_bwd_f64(dx, dw, db, t.c, t.x, t.w, N, O, I, &ws);
    vr_ws_reset(&ws);
    double ex = fd_err(lin_loss, &t, t.x, (size_t)N * I, dx, 1), ew = fd_err(lin_loss, &t, t.w, (size_t)O * I, dw, 1);
    double eb = bias ? fd_err(lin_loss, &t, t.b, O, db, 1) : 0;
    ok(ey <= 1e-14 && ex <= TOL_FD && ew <= TOL_FD && eb <= TOL_FD,
       "linear%s N=%d O=%d I=%d: y vs loops %.1e; rel err dx %.1e dw %.1e db %.1e", bias ? "+bias" : "", N, O, I,
       ey, ex, ew, eb);
    free(t.x), free(t.w), free(t.b), free(t.c), free(t.y), free(ref), free(dx), free(dw), free(db);
}

struct rms {
    int N, D;
    double *x, *w, *c, *y, *rstd;
};

static double rms_loss(void *p)
{
    struct rms *t = p;
    vr_rmsnorm_fwd_f64(t->y, t->rstd, t->x, t->w, t->N, t->D, 1e-6);
    return dot(t->c, t->y, (size_t)t->N * t->D);
}

static void grad_rmsnorm(int N, int D)
{
    size_t n = (size_t)N * D;
    struct rms t = {N, D, dvec(n, -2, 2), dvec(D, 0.5, 1.5), dvec(n, -1, 1), dzero(n), dzero(N)};
    rms_loss(&t);
    double *dx = dzero(n), *dw = dzero(D);
    vr_rmsnorm_bwd_f64(dx, dw, t.c, t.x, t.rstd, t.w, N, D);
    double ex = fd_err(rms_loss, &t, t.x, n, dx, 1), ew = fd_err(rms_loss, &t, t.w, D, dw, 1);
    /* dx may alias dy */
    double *dy = dzero(n);
    memcpy(dy, t.c, n * sizeof *dy);
    vr_rmsnorm_bwd_f64(dy, NULL, dy, t.x, t.rstd, t.w, N, D);
    ok(ex <= TOL_FD && ew <= TOL_FD && memcmp(dy, dx, n * sizeof *dx) == 0,
       "rmsnorm N=%d D=%d: rel err dx %.1e dw %.1e; dx in place of dy the same", N, D, ex, ew);
    free(t.x), free(t.w), free(t.c), free(t.y), free(t.rstd), free(dx), free(dw), free(dy);
}

struct ew {
    size_t n;
    double *a, *b, *c, *y;
};

static double swiglu_loss(void *p)
{
    struct ew *t = p;
    vr_swiglu_fwd_f64(t->y, t->a, t->b, t->n);
    return dot(t->c, t->y, t->n);
}

static double gelu_loss(void *p)
{
    struct ew *t = p;
    vr_gelu_fwd_f64(t->y, t->a, t->n);
    return dot(t->c, t->y, t->n);
}

static void grad_elementwise(size_t n)
{
    struct ew t = {n, dvec(n, -5, 5), dvec(n, -2, 2), dvec(n, -1, 1), dzero(n)};
    double *dg = dzero(n), *du = dzero(n), *dy = dzero(n);
    vr_swiglu_bwd_f64(dg, du, t.c, t.a, t.b, n);
    double eg = fd_err(swiglu_loss, &t, t.a, n, dg, 1), eu = fd_err(swiglu_loss, &t, t.b, n, du, 1);
    memcpy(dy, t.c, n * sizeof *dy);
    vr_swiglu_bwd_f64(dy, NULL, dy, t.a, t.b, n);
    ok(eg <= TOL_FD && eu <= TOL_FD && memcmp(dy, dg, n * sizeof *dy) == 0,
       "swiglu n=%zu: rel err dg %.1e du %.1e; dg in place of dy the same", n, eg, eu);
    vr_gelu_bwd_f64(dg, t.c, t.a, n);
    double ex = fd_err(gelu_loss, &t, t.a, n, dg, 1);
    memcpy(dy, t.c, n * sizeof *dy);
    vr_gelu_bwd_f64(dy, dy, t.a, n);
    ok(ex <= TOL_FD && memcmp(dy, dg, n * sizeof *dy) == 0, "gelu n=%zu: rel err dx %.1e; in place the same", n, ex);
    free(t.a), free(t.b), free(t.c), free(t.y), free(dg), free(du), free(dy);
}

struct rope {
    int N, H, K, stride, inverse;
    const float *cs, *sn;
    double *x, *buf, *c;
};

static double rope_loss(void *p)
{
    struct rope *t = p;
    size_t n = (size_t)t->N * t->stride;
    memcpy(t->buf, t->x, n * sizeof *t->buf);
    rope64(t->buf, t->cs, t->sn, t->N, t->H, t->K, t->stride, t->inverse);
    return dot(t->c, t->buf, n);
}

/* The tables are random, their halves unrelated, so the backward must be
 * the exact transpose; rows carry 3 bytes of padding the op must not touch
 * (the loss covers them: their gradient is c itself). */
static void grad_rope(int N, int H, int K, int inverse)
{
    int stride = H * K + 3;
    size_t n = (size_t)N * stride;
    float *cs = fvec((size_t)N * K, -1, 1), *sn = fvec((size_t)N * K, -1, 1);
    struct rope t = {N, H, K, stride, inverse, cs, sn, dvec(n, -1, 1), dzero(n), dvec(n, -1, 1)};
    double *g = dzero(n);
    memcpy(g, t.c, n * sizeof *g);
    rope64(g, cs, sn, N, H, K, stride, !inverse);
    double e = fd_err(rope_loss, &t, t.x, n, g, 1);
    ok(e <= TOL_FD, "rope%s N=%d H=%d K=%d stride %d: rel err dx %.1e (the %s is the backward)",
       inverse ? " inverse" : "", N, H, K, stride, e, inverse ? "forward" : "inverse");
    free(cs), free(sn), free(t.x), free(t.buf), free(t.c), free(g);
}

/* Attention inputs: packed (q, k, v inside one (N, W) buffer, W with 3
 * padding columns, qs = ks = W) or separate (q (N, H*K), k, v (N, KVH*K)). */
struct att {
    int N, H, KVH, K, qs, ks, causal, nseg, packed;
    const int *cu;
    double *buf[3], *c, *out, *lse;
    size_t nbuf[3];
    const double *q, *k, *v;
};

static double att_loss(void *p)
{
    struct att *t = p;
    struct vr_attn_dims d = adims(t->N, t->H, t->KVH, t->K, t->qs, t->ks, t->cu, t->nseg, t->causal);
    vr_attn_fwd_f64(t->out, t->lse, t->q, t->k, t->v, &d, &ws);
    vr_ws_reset(&ws);
    return dot(t->c, t->out, (size_t)t->N * t->H * t->K);
}

static void att_init(struct att *t, int H, int KVH, int K, const int *cu, int nseg, int causal, int packed)
{
    int N = cu[nseg];
    memset(t, 0, sizeof *t);
    *t = (struct att){.N = N, .H = H, .KVH = KVH, .K = K, .causal = causal, .nseg = nseg, .packed = packed, .cu = cu};
    if (packed) {
        int W = (H + 2 * KVH) * K + 3;
        t->qs = t->ks = W;
        t->nbuf[0] = (size_t)N * W;
        t->buf[0] = dvec32(t->nbuf[0], -1.5, 1.5);
        t->q = t->buf[0], t->k = t->buf[0] + H * K, t->v = t->buf[0] + (H + KVH) * K;
    } else {
        t->qs = H * K, t->ks = KVH * K;
        t->nbuf[0] = (size_t)N * H * K, t->nbuf[1] = t->nbuf[2] = (size_t)N * KVH * K;
        for (int i = 0; i < 3; i++) t->buf[i] = dvec32(t->nbuf[i], -1.5, 1.5);
        t->q = t->buf[0], t->k = t->buf[1], t->v = t->buf[2];
    }
    t->c = dvec32((size_t)N * H * K, -1, 1);
    t->out = dzero((size_t)N * H * K);
    t->lse = dzero((size_t)N * H);
}

static void att_release(struct att *t)
{
    for (int i = 0; i < 3; i++) free(t->buf[i]);
    free(t->c), free(t->out), free(t->lse);
}

/* dq, dk, dv into g[0..2] laid out as buf (sentinel 7 first: the padding
 * must stay); returns whether the padding did */
static int att_grad(struct att *t, double **g)
{
    for (int i = 0; i < 3; i++) g[i] = t->buf[i] ? dfill(t->nbuf[i], 7) : NULL;
    att_loss(t);
    const int H = t->H, K = t->K, KVH = t->KVH;
    double *dq = g[0], *dk = t->packed ? g[0] + H * K : g[1], *dv = t->packed ? g[0] + (H + KVH) * K : g[2];
    struct vr_attn_dims d = adims(t->N, H, KVH, K, t->qs, t->ks, t->cu, t->nseg, t->causal);
    vr_attn_bwd_f64(dq, dk, dv, t->c, t->out, t->lse, t->q, t->k, t->v, &d, &ws);
    vr_ws_reset(&ws);
    int pad_ok = 1;
    if (t->packed)
        for (int n = 0; n < t->N; n++)
            for (int j = (H + 2 * KVH) * K; j < t->qs; j++) {
                pad_ok &= g[0][(size_t)n * t->qs + j] == 7;
                g[0][(size_t)n * t->qs + j] = 0;
            }
    return pad_ok;
}

static void grad_attn(int H, int KVH, int K, const int *cu, int nseg, int causal, int packed)
{
    struct att t;
    double *g[3];
    att_init(&t, H, KVH, K, cu, nseg, causal, packed);
    int pad_ok = att_grad(&t, g);
    char lens[64] = "", *p = lens;
    for (int s = 0; s < nseg; s++) p += snprintf(p, (size_t)(lens + sizeof lens - p), "%s%d", s ? "," : "", cu[s + 1] - cu[s]);
    if (packed) {
        double e = fd_err(att_loss, &t, t.buf[0], t.nbuf[0], g[0], 1);
        ok(e <= TOL_FD && pad_ok, "attention %s H=%d KVH=%d K=%d lengths %s, q k v in one padded buffer: rel err dqkv %.1e%s",
           causal ? "causal" : "full", H, KVH, K, lens, e, pad_ok ? "" : "; padding overwritten");
    } else {
        double e[3];
        for (int i = 0; i < 3; i++) e[i] = fd_err(att_loss, &t, t.buf[i], t.nbuf[i], g[i], 1);
        ok(e[0] <= TOL_FD && e[1] <= TOL_FD && e[2] <= TOL_FD,
           "attention %s H=%d KVH=%d K=%d lengths %s, separate q k v: rel err dq %.1e dk %.1e dv %.1e",
           causal ? "causal" : "full", H, KVH, K, lens, e[0], e[1], e[2]);
    }
    for (int i = 0; i < 3; i++) free(g[i]);
    att_release(&t);
}

struct lp {
    int N, D, V;
    double temp;
    const int32_t *tg;
    double *h, *w, *c, *logp, *ent;
};

static double lp_loss(void *p)
{
    struct lp *t = p;
    vr_logp_fwd_f64(t->logp, t->ent, NULL, t->h, t->w, t->tg, t->N, t->D, t->V, t->temp, &ws);
    vr_ws_reset(&ws);
    return dot(t->c, t->logp, t->N);
}

static int32_t *targets(int N, int V)
{
    int32_t *tg = vr_xmalloc((size_t)N * sizeof *tg);
    for (int n = 0; n < N; n++) tg[n] = (int32_t)vr_rng_below(&rng, (uint64_t)V);
    return tg;
}

/* dlogp: every fifth row 0 (a prompt token: skipped, its dh row zero) */
static double *dlogp_vec(int N)
{
    double *c = dvec(N, -1, 1);
    for (int n = 0; n < N; n += 5) c[n] = 0;
    return c;
}

/* Rows cross the 128-row chunk; with a large V only every step-th weight
 * and hstep-th input is differenced (the vocabulary tiles and parts are
 * still all crossed). */
static void grad_logp(int N, int D, int V, size_t hstep, size_t wstep)
{
    struct lp t = {N, D, V, 0.9, targets(N, V), dvec((size_t)N * D, -1, 1), dvec((size_t)V * D, -1, 1), dlogp_vec(N),
                   dzero(N), dzero(N)};
    lp_loss(&t);
    /* the forward against plain loops */
    double *rl = dzero(N), *re = dzero(N), *l = dzero(V);
    for (int n = 0; n < N; n++) {
        double m = -INFINITY, z = 0, e = 0;
        for (int v = 0; v < V; v++) {
            l[v] = dot(t.h + (size_t)n * D, t.w + (size_t)v * D, D) / t.temp;
            m = fmax(m, l[v]);
        }
        for (int v = 0; v < V; v++) z += exp(l[v] - m);
        double lse = m + log(z);
        for (int v = 0; v < V; v++) e -= exp(l[v] - lse) * (l[v] - lse);
        rl[n] = l[t.tg[n]] - lse, re[n] = e;
    }
    double elp = rel_err(t.logp, rl, N), eent = rel_err(t.ent, re, N);
    double *dh = dfill((size_t)N * D, 9), *dw = dzero((size_t)V * D);
    vr_logp_bwd_f64(dh, dw, t.c, NULL, t.h, t.w, t.tg, N, D, V, t.temp, &ws);
    vr_ws_reset(&ws);
    double eh = fd_err(lp_loss, &t, t.h, (size_t)N * D, dh, hstep), ew = fd_err(lp_loss, &t, t.w, (size_t)V * D, dw, wstep);
    int zero_ok = 1;
    for (int n = 0; n < N; n += 5)
        for (int d = 0; d < D; d++) zero_ok &= dh[(size_t)n * D + d] == 0;
    ok(elp <= 1e-12 && eent <= 1e-12 && eh <= TOL_FD && ew <= TOL_FD && zero_ok,
       "logp N=%d D=%d V=%d temp 0.9: logp, entropy vs loops %.1e %.1e; rel err dh %.1e dw %.1e%s", N, D, V, elp, eent,
       eh, ew, zero_ok ? "" : "; dh of a dlogp = 0 row not zero");
    free((void *)t.tg), free(t.h), free(t.w), free(t.c), free(t.logp), free(t.ent), free(rl), free(re), free(l);
    free(dh), free(dw);
}

/* ---- 2. float32 against float64 ---- */

static void f32_linear(int N, int O, int I)
{
    size_t nx = (size_t)N * I, nw = (size_t)O * I, ny = (size_t)N * O;
    double *x = dvec32(nx, -1, 1), *w = dvec32(nw, -1, 1), *b = dvec32(O, -1, 1), *dy = dvec32(ny, -1, 1);
    float *xf = to_f32(x, nx), *wf = to_f32(w, nw), *bf = to_f32(b, O), *dyf = to_f32(dy, ny);
    double *y = dzero(ny), *dx = dzero(nx), *dw = dzero(nw), *db = dzero(O);
    float *yf = vr_xcalloc(ny, 4), *dxf = vr_xcalloc(nx, 4), *dwf = vr_xcalloc(nw, 4), *dbf = vr_xcalloc(O, 4);
    vr_linear_fwd_f64(y, x, w, b, N, O, I, &ws);
    vr_linear_fwd(yf, xf, wf, bf, N, O, I, &ws);
    vr_linear_bwd_f64(dx, dw, db, dy, x, w, N, O, I, &ws);
    vr_linear_bwd(dxf, dwf, dbf, dyf, xf, wf, N, O, I, &ws);
    vr_ws_reset(&ws);
    double e[4] = {rel_err_f(yf, y, ny), rel_err_f(dxf, dx, nx), rel_err_f(dwf, dw, nw), rel_err_f(dbf, db, O)};
    ok(e[0] <= TOL_F32 && e[1] <= TOL_F32 && e[2] <= TOL_F32 && e[3] <= TOL_F32,
       "f32 = f64: linear N=%d O=%d I=%d: y %.1e dx %.1e dw %.1e db %.1e", N, O, I, e[0], e[1], e[2], e[3]);
    free(x), free(w), free(b), free(dy), free(xf), free(wf), free(bf), free(dyf);
    free(y), free(dx), free(dw), free(db), free(yf), free(dxf), free(dwf), free(dbf);
}

static void f32_small_ops(int N, int D)
{
    size_t n = (size_t)N * D;
    double *x = dvec32(n, -3, 3), *u = dvec32(n, -2, 2), *w = dvec32(D, 0.5, 1.5), *dy = dvec32(n, -1, 1);
    float *xf = to_f32(x, n), *uf = to_f32(u, n), *wf = to_f32(w, D), *dyf = to_f32(dy, n);
    double *y = dzero(n), *r = dzero(N), *dx = dzero(n), *dw = dzero(D), *du = dzero(n);
    float *yf = vr_xcalloc(n, 4), *rf = vr_xcalloc(N, 4), *dxf = vr_xcalloc(n, 4), *dwf = vr_xcalloc(D, 4),
          *duf = vr_xcalloc(n, 4);

    vr_rmsnorm_fwd_f64(y, r, x, w, N, D, 1e-6);
    vr_rmsnorm_fwd(yf, rf, xf, wf, N, D, 1e-6);
    vr_rmsnorm_bwd_f64(dx, dw, dy, x, r, w, N, D);
    vr_rmsnorm_bwd(dxf, dwf, dyf, xf, rf, wf, N, D);
    double e1[4] = {rel_err_f(yf, y, n), rel_err_f(rf, r, N), rel_err_f(dxf, dx, n), rel_err_f(dwf, dw, D)};
    ok(e1[0] <= TOL_F32 && e1[1] <= TOL_F32 && e1[2] <= TOL_F32 && e1[3] <= TOL_F32,
       "f32 = f64: rmsnorm N=%d D=%d: y %.1e rstd %.1e dx %.1e dw %.1e", N, D, e1[0], e1[1], e1[2], e1[3]);

    vr_swiglu_fwd_f64(y, x, u, n);
    vr_swiglu_fwd(yf, xf, uf, n);
    vr_swiglu_bwd_f64(dx, du, dy, x, u, n);
    vr_swiglu_bwd(dxf, duf, dyf, xf, uf, n);
    double e2[3] = {rel_err_f(yf, y, n), rel_err_f(dxf, dx, n), rel_err_f(duf, du, n)};
    ok(e2[0] <= TOL_F32 && e2[1] <= TOL_F32 && e2[2] <= TOL_F32, "f32 = f64: swiglu n=%zu: y %.1e dg %.1e du %.1e", n,
       e2[0], e2[1], e2[2]);

    vr_gelu_fwd_f64(y, x, n);
    vr_gelu_fwd(yf, xf, n);
    vr_gelu_bwd_f64(dx, dy, x, n);
    vr_gelu_bwd(dxf, dyf, xf, n);
    double e3[2] = {rel_err_f(yf, y, n), rel_err_f(dxf, dx, n)};
    ok(e3[0] <= TOL_F32 && e3[1] <= TOL_F32, "f32 = f64: gelu n=%zu: y %.1e dx %.1e", n, e3[0], e3[1]);

    /* rope: rows of 4 heads of D/4 */
    int H = 4, K = D / 4;
    float *cs = fvec((size_t)N * K, -1, 1), *sn = fvec((size_t)N * K, -1, 1);
    double e4[2];
    for (int inv = 0; inv < 2; inv++) {
        memcpy(y, x, n * sizeof *y);
        memcpy(yf, xf, n * sizeof *yf);
        rope64(y, cs, sn, N, H, K, D, inv);
        rope32(yf, cs, sn, N, H, K, D, inv);
        e4[inv] = rel_err_f(yf, y, n);
    }
    ok(e4[0] <= TOL_F32 && e4[1] <= TOL_F32, "f32 = f64: rope N=%d H=%d K=%d: forward %.1e inverse %.1e", N, H, K,
       e4[0], e4[1]);
    free(x), free(u), free(w), free(dy), free(xf), free(uf), free(wf), free(dyf), free(y), free(r), free(dx), free(dw);
    free(du), free(yf), free(rf), free(dxf), free(dwf), free(duf), free(cs), free(sn);
}

static void f32_attn(int H, int KVH, int K, const int *cu, int nseg, int causal, int packed)
{
    struct att t;
    double *g[3];
    att_init(&t, H, KVH, K, cu, nseg, causal, packed);
    att_grad(&t, g);
    int N = t.N;
    size_t no = (size_t)N * H * K;
    float *bf[3], *gf[3];
    for (int i = 0; i < 3; i++) {
        bf[i] = t.buf[i] ? to_f32(t.buf[i], t.nbuf[i]) : NULL;
        gf[i] = t.buf[i] ? vr_xcalloc(t.nbuf[i], 4) : NULL;
    }
    int kk = packed ? H * K : 0, vv = packed ? (H + KVH) * K : 0;
    const float *q = bf[0], *k = packed ? bf[0] + kk : bf[1], *v = packed ? bf[0] + vv : bf[2];
    float *c = to_f32(t.c, no), *out = vr_xcalloc(no, 4), *lse = vr_xcalloc((size_t)N * H, 4);
    struct vr_attn_dims d = adims(N, H, KVH, K, t.qs, t.ks, cu, nseg, causal);
    vr_attn_fwd(out, lse, q, k, v, &d, &ws);
    vr_ws_reset(&ws);
    vr_attn_bwd(gf[0], packed ? gf[0] + kk : gf[1], packed ? gf[0] + vv : gf[2], c, out, lse, q, k, v, &d, &ws);
    vr_ws_reset(&ws);
    if (packed) /* padding columns of the gradient are 0 in g */
        for (int n = 0; n < N; n++)
            for (int j = (H + 2 * KVH) * K; j < t.qs; j++) gf[0][(size_t)n * t.qs + j] = 0;
    double e[5] = {rel_err_f(out, t.out, no), rel_err_f(lse, t.lse, (size_t)N * H), 0, 0, 0};
    for (int i = 0; i < 3; i++) e[2 + i] = t.buf[i] ? rel_err_f(gf[i], g[i], t.nbuf[i]) : 0;
    char ge[64];
    if (packed) snprintf(ge, sizeof ge, "dqkv %.1e", e[2]);
    else snprintf(ge, sizeof ge, "dq %.1e dk %.1e dv %.1e", e[2], e[3], e[4]);
    ok(e[0] <= TOL_F32 && e[1] <= TOL_F32 && e[2] <= TOL_F32 && e[3] <= TOL_F32 && e[4] <= TOL_F32,
       "f32 = f64: attention %s%s H=%d KVH=%d K=%d N=%d: out %.1e lse %.1e %s", causal ? "causal" : "full",
       packed ? " packed" : "", H, KVH, K, N, e[0], e[1], ge);
    for (int i = 0; i < 3; i++) free(g[i]), free(bf[i]), free(gf[i]);
    free(c), free(out), free(lse);
    att_release(&t);
}

static void f32_logp(int N, int D, int V)
{
    int32_t *tg = targets(N, V);
    double *h = dvec32((size_t)N * D, -1, 1), *w = dvec32((size_t)V * D, -1, 1), *c = dlogp_vec(N);
    for (int n = 0; n < N; n++) c[n] = (float)c[n];
    float *hf = to_f32(h, (size_t)N * D), *wf = to_f32(w, (size_t)V * D), *cf = to_f32(c, N);
    double *lp = dzero(N), *ent = dzero(N), *dh = dzero((size_t)N * D), *dw = dzero((size_t)V * D);
    float *lpf = vr_xcalloc(N, 4), *entf = vr_xcalloc(N, 4), *dhf = vr_xcalloc((size_t)N * D, 4),
          *dwf = vr_xcalloc((size_t)V * D, 4);
    vr_logp_fwd_f64(lp, ent, NULL, h, w, tg, N, D, V, 0.9, &ws);
    vr_ws_reset(&ws);
    vr_logp_fwd(lpf, entf, NULL, hf, wf, tg, N, D, V, 0.9, &ws);
    vr_ws_reset(&ws);
    vr_logp_bwd_f64(dh, dw, c, NULL, h, w, tg, N, D, V, 0.9, &ws);
    vr_ws_reset(&ws);
    vr_logp_bwd(dhf, dwf, cf, NULL, hf, wf, tg, N, D, V, 0.9, &ws);
    vr_ws_reset(&ws);
    double e[4] = {rel_err_f(lpf, lp, N), rel_err_f(entf, ent, N), rel_err_f(dhf, dh, (size_t)N * D),
                   rel_err_f(dwf, dw, (size_t)V * D)};
    ok(e[0] <= TOL_F32 && e[1] <= TOL_F32 && e[2] <= TOL_F32 && e[3] <= TOL_F32,
       "f32 = f64: logp N=%d D=%d V=%d: logp %.1e entropy %.1e dh %.1e dw %.1e", N, D, V, e[0], e[1], e[2], e[3]);
    free(tg), free(h), free(w), free(c), free(hf), free(wf), free(cf), free(lp), free(ent), free(dh), free(dw);
    free(lpf), free(entf), free(dhf), free(dwf);
}

/* ---- 3. our float32 forwards against ops.h ---- */

static void tensor2(struct vr_tensor *t, float *data, int64_t a, int64_t b)
{
    int64_t shape[2] = {a, b};
    vr_tensor_view(t, VR_DTYPE_F32, b ? 2 : 1, shape, data);
}

static void prod_linear(int N, int O, int I)
{
    float *x = fvec((size_t)N * I, -1, 1), *w = fvec((size_t)O * I, -1, 1), *b = fvec(O, -1, 1);
    float *y = vr_xcalloc((size_t)N * O, 4), *ref = vr_xcalloc((size_t)N * O, 4);
    struct vr_tensor tw, tb;
    tensor2(&tw, w, O, I);
    int64_t sb[1] = {O};
    vr_tensor_view(&tb, VR_DTYPE_F32, 1, sb, b);
    vr_linear_fwd(y, x, w, b, N, O, I, &ws);
    vr_linear_infer(ref, x, &tw, &tb, N, &ws);
    vr_ws_reset(&ws);
    double e = rel_err_ff(y, ref, (size_t)N * O);
    ok(e <= TOL_PROD, "linear N=%d O=%d I=%d equals vr_linear_infer (%s path): rel err %.1e", N, O, I,
       N <= VR_GEMV_MAX_M ? "gemv" : "sgemm", e);
    free(x), free(w), free(b), free(y), free(ref);
}

/* rmsnorm, rope, gelu and add are one op for both paths; SwiGLU is not */
static void prod_small_ops(int N, int D)
{
    size_t n = (size_t)N * D;
    float *x = fvec(n, -3, 3), *u = fvec(n, -2, 2), *y = vr_xcalloc(n, 4), *ref = vr_xcalloc(n, 4);
    vr_swiglu_fwd(y, x, u, n);
    vr_swiglu_infer(ref, x, u, n);
    double e = rel_err_ff(y, ref, n);
    ok(e <= TOL_PROD, "swiglu n=%zu equals vr_swiglu_infer: rel err %.1e", n, e);
    free(x), free(u), free(y), free(ref);
}

static void prod_attn(void)
{
    /* the vision tower: non-causal segments in a (N, 3*H*K) qkv buffer */
    int H = 4, K = 16, D = H * K, cu[4] = {0, 100, 101, 138}, N = cu[3];
    float *qkv = fvec((size_t)N * 3 * D, -1.5, 1.5), *out = vr_xcalloc((size_t)N * D, 4),
          *ref = vr_xcalloc((size_t)N * D, 4), *lse = vr_xcalloc((size_t)N * H, 4);
    struct vr_attn_dims d = adims(N, H, H, K, 3 * D, 3 * D, cu, 3, 0);
    vr_attn_fwd(out, lse, qkv, qkv + D, qkv + 2 * D, &d, &ws);
    vr_ws_reset(&ws);
    vr_attn_infer(ref, qkv, qkv + D, qkv + 2 * D, &d, &ws);
    vr_ws_reset(&ws);
    double e = rel_err_ff(out, ref, (size_t)N * D);
    ok(e <= TOL_PROD, "attention full, lengths 100,1,37 equals vr_attn_infer: rel err %.1e", e);
    free(qkv), free(out), free(ref), free(lse);

    /* the decoder: causal GQA over one sequence, k and v as a cache (KVH, cap, K) */
    int KVH = 2, T = 90, cu1[2] = {0, T};
    float *q = fvec((size_t)T * H * K, -1.5, 1.5), *k = fvec((size_t)T * KVH * K, -1.5, 1.5),
          *v = fvec((size_t)T * KVH * K, -1.5, 1.5), *kc = vr_xmalloc((size_t)T * KVH * K * 4),
          *vc = vr_xmalloc((size_t)T * KVH * K * 4);
    for (int j = 0; j < T; j++)
        for (int g = 0; g < KVH; g++) {
            memcpy(kc + ((size_t)g * T + j) * K, k + ((size_t)j * KVH + g) * K, (size_t)K * 4);
            memcpy(vc + ((size_t)g * T + j) * K, v + ((size_t)j * KVH + g) * K, (size_t)K * 4);
        }
    out = vr_xcalloc((size_t)T * H * K, 4), ref = vr_xcalloc((size_t)T * H * K, 4), lse = vr_xcalloc((size_t)T * H, 4);
    d = adims(T, H, KVH, K, H * K, KVH * K, cu1, 1, 1);
    vr_attn_fwd(out, lse, q, k, v, &d, &ws);
    vr_ws_reset(&ws);
    d = (struct vr_attn_dims){.N = T, .H = H, .KVH = KVH, .K = K, .q_stride = H * K, .causal = 1, .cap = T, .nkeys = T};
    vr_attn_infer(ref, q, kc, vc, &d, &ws);
    vr_ws_reset(&ws);
    e = rel_err_ff(out, ref, (size_t)T * H * K);
    ok(e <= TOL_PROD, "attention causal GQA H=%d KVH=%d T=%d equals vr_attn_infer: rel err %.1e", H, KVH, T, e);
    free(q), free(k), free(v), free(kc), free(vc), free(out), free(ref), free(lse);
}

/* ---- 4. thread-count independence, accumulation ---- */

struct fbuf {
    float *p;
    size_t n, cap;
};

static void put(struct fbuf *b, const float *x, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = vr_xrealloc(b->p, b->cap * sizeof *b->p);
    }
    memcpy(b->p + b->n, x, n * sizeof *x);
    b->n += n;
}

/* The float32 backwards (and forwards) of linear, attention and logp on
 * fixed inputs, every result appended to b. */
static void det_compute(struct fbuf *b)
{
    vr_rng_init(&rng, 42, 7);
    {
        int N = 300, O = 200, I = 70;
        float *x = fvec((size_t)N * I, -1, 1), *w = fvec((size_t)O * I, -1, 1), *bias = fvec(O, -1, 1),
              *dy = fvec((size_t)N * O, -1, 1), *y = vr_xcalloc((size_t)N * O, 4), *dx = vr_xcalloc((size_t)N * I, 4),
              *dw = vr_xcalloc((size_t)O * I, 4), *db = vr_xcalloc(O, 4);
        vr_linear_fwd(y, x, w, bias, N, O, I, &ws);
        vr_linear_bwd(dx, dw, db, dy, x, w, N, O, I, &ws);
        vr_ws_reset(&ws);
        put(b, y, (size_t)N * O), put(b, dx, (size_t)N * I), put(b, dw, (size_t)O * I), put(b, db, O);
        free(x), free(w), free(bias), free(dy), free(y), free(dx), free(dw), free(db);
    }
    static const int cu[4] = {0, 100, 101, 138};
    for (int causal = 0; causal < 2; causal++) {
        int N = 138, H = 4, KVH = 2, K = 16, W = (H + 2 * KVH) * K;
        float *qkv = fvec((size_t)N * W, -1.5, 1.5), *dout = fvec((size_t)N * H * K, -1, 1),
              *out = vr_xcalloc((size_t)N * H * K, 4), *lse = vr_xcalloc((size_t)N * H, 4),
              *g = vr_xcalloc((size_t)N * W, 4);
        struct vr_attn_dims d = adims(N, H, KVH, K, W, W, cu, 3, causal);
        vr_attn_fwd(out, lse, qkv, qkv + H * K, qkv + (H + KVH) * K, &d, &ws);
        vr_ws_reset(&ws);
        vr_attn_bwd(g, g + H * K, g + (H + KVH) * K, dout, out, lse, qkv, qkv + H * K, qkv + (H + KVH) * K, &d, &ws);
        vr_ws_reset(&ws);
        put(b, out, (size_t)N * H * K), put(b, lse, (size_t)N * H), put(b, g, (size_t)N * W);
        free(qkv), free(dout), free(out), free(lse), free(g);
    }
    {
        int N = 200, D = 32, V = 1500;
        int32_t *tg = targets(N, V);
        float *h = fvec((size_t)N * D, -1, 1), *w = fvec((size_t)V * D, -1, 1), *c = fvec(N, -1, 1),
              *lp = vr_xcalloc(N, 4), *ent = vr_xcalloc(N, 4), *dh = vr_xcalloc((size_t)N * D, 4),
              *dw = vr_xcalloc((size_t)V * D, 4);
        for (int n = 0; n < N; n += 5) c[n] = 0;
        vr_logp_fwd(lp, ent, NULL, h, w, tg, N, D, V, 0.9, &ws);
        vr_ws_reset(&ws);
        vr_logp_bwd(dh, dw, c, NULL, h, w, tg, N, D, V, 0.9, &ws);
        vr_ws_reset(&ws);
        put(b, lp, N), put(b, ent, N), put(b, dh, (size_t)N * D), put(b, dw, (size_t)V * D);
        free(tg), free(h), free(w), free(c), free(lp), free(ent), free(dh), free(dw);
    }
}

/* det_compute in a child with VR_THREADS=threads; its pool size in *got */
static float *det_child(int threads, size_t n, int *got)
{
    int fd[2];
    char v[16];
    VR_ASSERT(pipe(fd) == 0);
    snprintf(v, sizeof v, "%d", threads);
    const char *old = getenv("VR_THREADS");
    char *saved = old ? vr_xstrdup(old) : NULL;
    setenv("VR_THREADS", v, 1); /* this process's pool has read it already */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]), close(fd[1]);
        execl("/proc/self/exe", "train_ops.t", "--det", (char *)NULL);
        _exit(127);
    }
    if (saved) setenv("VR_THREADS", saved, 1);
    else unsetenv("VR_THREADS");
    free(saved);
    close(fd[1]);
    size_t want = sizeof(int) + n * sizeof(float), got_bytes = 0;
    char *buf = vr_xmalloc(want + 1);
    ssize_t r;
    while ((r = read(fd[0], buf + got_bytes, want + 1 - got_bytes)) > 0) got_bytes += (size_t)r;
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    if (got_bytes != want || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        diag("child with VR_THREADS=%d: %zu bytes of %zu, status %d", threads, got_bytes, want, st);
        free(buf);
        return NULL;
    }
    float *x = vr_xmalloc(n * sizeof *x);
    memcpy(got, buf, sizeof(int));
    memcpy(x, buf + sizeof(int), n * sizeof *x);
    free(buf);
    return x;
}

static void determinism(void)
{
    struct fbuf a = {0};
    det_compute(&a);
    int t1 = 0, t3 = 0;
    float *b = det_child(1, a.n, &t1), *c = det_child(3, a.n, &t3);
    ok(b && c && t1 == 1 && t3 == 3 && memcmp(a.p, b, a.n * 4) == 0 && memcmp(a.p, c, a.n * 4) == 0,
       "linear, attention, logp fwd+bwd (f32, %zu values) bit-identical with 1, 3 and %d threads", a.n, vr_threads());
    free(a.p), free(b), free(c);
}

static void accumulate(void)
{
    int N = 50, O = 30, I = 20;
    float *x = fvec((size_t)N * I, -1, 1), *w = fvec((size_t)O * I, -1, 1), *dy = fvec((size_t)N * O, -1, 1),
          *dx = vr_xcalloc((size_t)N * I, 4), *dx1 = vr_xcalloc((size_t)N * I, 4), *dw = vr_xcalloc((size_t)O * I, 4),
          *dw1 = vr_xcalloc((size_t)O * I, 4), *dw0 = vr_xcalloc((size_t)O * I, 4), *db = vr_xcalloc(O, 4),
          *db1 = vr_xcalloc(O, 4);
    vr_linear_bwd(dx, dw, db, dy, x, w, N, O, I, &ws);
    memcpy(dx1, dx, (size_t)N * I * 4), memcpy(dw1, dw, (size_t)O * I * 4), memcpy(db1, db, (size_t)O * 4);
    vr_linear_bwd(dx, dw, db, dy, x, w, N, O, I, &ws);
    vr_linear_bwd(NULL, dw0, NULL, dy, x, w, N, O, I, &ws); /* no dx, no db */
    vr_ws_reset(&ws);
    int acc = memcmp(dx, dx1, (size_t)N * I * 4) == 0 && memcmp(dw0, dw1, (size_t)O * I * 4) == 0;
    for (int i = 0; i < O * I; i++) acc &= dw[i] == 2 * dw1[i];
    for (int i = 0; i < O; i++) acc &= db[i] == 2 * db1[i];
    ok(acc, "linear backward twice: dx overwritten, dw and db doubled; dx = db = NULL gives the same dw");

    int V = 300, D = 8, M = 100; /* one chunk: a second chunk would round differently */
    int32_t *tg = targets(M, V);
    float *h = fvec((size_t)M * D, -1, 1), *lw = fvec((size_t)V * D, -1, 1), *c = fvec(M, -1, 1),
          *dh = vr_xcalloc((size_t)M * D, 4), *ldw = vr_xcalloc((size_t)V * D, 4), *ldw1 = vr_xcalloc((size_t)V * D, 4);
    vr_logp_bwd(dh, ldw, c, NULL, h, lw, tg, M, D, V, 1.0, &ws);
    memcpy(ldw1, ldw, (size_t)V * D * 4);
    vr_logp_bwd(NULL, ldw, c, NULL, h, lw, tg, M, D, V, 1.0, &ws);
    vr_ws_reset(&ws);
    acc = 1;
    for (int i = 0; i < V * D; i++) acc &= ldw[i] == 2 * ldw1[i];
    ok(acc, "logp backward twice: dw doubled (the second without dh)");
    free(x), free(w), free(dy), free(dx), free(dx1), free(dw), free(dw1), free(dw0), free(db), free(db1);
    free(tg), free(h), free(lw), free(c), free(dh), free(ldw), free(ldw1);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--det") == 0) { /* the child of determinism() */
        struct fbuf b = {0};
        det_compute(&b);
        int t = vr_threads();
        fwrite(&t, sizeof t, 1, stdout);
        fwrite(b.p, sizeof *b.p, b.n, stdout);
        free(b.p);
        vr_ws_release(&ws);
        return fflush(stdout) != 0;
    }
    vr_rng_init(&rng, 1, 0);

    grad_linear(70, 40, 5, 1);
    grad_linear(33, 9, 6, 0);
    grad_rmsnorm(5, 9);
    grad_elementwise(40);
    grad_rope(3, 2, 8, 0);
    grad_rope(3, 2, 8, 1);
    static const int cu3[4] = {0, 3, 4, 9}, cu2[3] = {0, 70, 72}, cu2b[3] = {0, 66, 71};
    grad_attn(4, 2, 4, cu3, 3, 0, 1);
    grad_attn(4, 2, 4, cu3, 3, 1, 1);
    grad_attn(2, 1, 4, cu2, 2, 1, 0);
    grad_attn(2, 2, 4, cu2b, 2, 0, 1);
    grad_logp(150, 4, 40, 1, 1);
    grad_logp(130, 3, 1100, 2, 17);

    f32_linear(300, 200, 70);
    f32_small_ops(37, 64);
    static const int cu4[4] = {0, 100, 101, 138};
    f32_attn(4, 2, 16, cu4, 3, 0, 1);
    f32_attn(4, 2, 16, cu4, 3, 1, 1);
    f32_attn(4, 2, 16, cu4, 3, 1, 0);
    f32_logp(200, 32, 1500);

    prod_linear(40, 70, 50);
    prod_linear(5, 70, 50);
    prod_small_ops(37, 64);
    prod_attn();

    determinism();
    accumulate();
    vr_ws_release(&ws);
    return done_testing();
}

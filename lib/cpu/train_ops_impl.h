/* train_ops_impl.h: the body of the differentiable ops (../ops.h), written
 * once for a real type. train_ops.c includes it twice: R = float, S = f32 (the
 * CPU backend's entries, what vr-update runs) and R = double, S = f64 (what the
 * gradient check runs). The includer defines R, S, SUF (the public names'
 * suffix), GEMM (cblas_sgemm / cblas_dgemm; a task's single-threaded product),
 * POOL_GEMM if defined (a product over the whole pool, else tiles of GEMM), EXP, LOG, SQRT and ERF for R,
 * EXP_SHIFT and MAXV (a row's exps with their sum, its max), SWIGLU and
 * SWIGLU_GRAD (over a span, as vr_swiglu_span_cpu), DOT (a dot product), and
 * the type-free helpers (imin, zigzag,
 * attn_blocks, AROWS, LOGP_ROWS, PAR_MIN). No include guard on purpose.
 *
 * Each output element is written by exactly one task in a fixed order: the
 * loops' tasks depend on the shapes alone, or (the GEMM tiles) on nothing
 * that changes an element's chain (gemm.c), so results do not depend on
 * VR_THREADS. */

/* n values of R from ws, 64-byte aligned. */
static R *FN(al)(struct vr_ws *ws, size_t n)
{
    return (R *)(void *)vr_ws_floats(ws, n * (sizeof(R) / sizeof(float)));
}

/* ---- GEMM ---- */

#ifdef POOL_GEMM
/* C (M,N) = alpha op(A) op(B) + beta C, or with bias (N) != NULL
 * C = alpha op(A) op(B) + bias: the pool's GEMM (gemm.c's vr_sgemm_pool,
 * every operand packed once) */
static void FN(gemm)(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K, R alpha,
                     const R *A, int lda, const R *B, int ldb, R beta, R *C, int ldc, const R *bias)
{
    POOL_GEMM(ta == CblasTrans, tb == CblasTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
}
#else
struct FN(gemm) {
    enum CBLAS_TRANSPOSE ta, tb;
    int M, N, K, tm, tn, ntn;
    R alpha, beta;
    const R *A, *B, *bias;
    int lda, ldb, ldc;
    R *C;
};

static void FN(gemm_tasks)(void *vctx, int t0, int t1)
{
    const struct FN(gemm) *g = vctx;
    for (int t = t0; t < t1; t++) {
        int m0 = t / g->ntn * g->tm, n0 = t % g->ntn * g->tn;
        int m = imin(g->tm, g->M - m0), n = imin(g->tn, g->N - n0);
        R *C = g->C + (size_t)m0 * g->ldc + n0;
        const R *A = g->A + (g->ta == CblasNoTrans ? (size_t)m0 * g->lda : (size_t)m0);
        const R *B = g->B + (g->tb == CblasNoTrans ? (size_t)n0 : (size_t)n0 * g->ldb);
        GEMM(CblasRowMajor, g->ta, g->tb, m, n, g->K, g->alpha, A, g->lda, B, g->ldb, g->bias ? 0 : g->beta, C,
             g->ldc);
        if (g->bias) /* the product, then + the bias: the order of vr_linear_infer_cpu */
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) C[(size_t)i * g->ldc + j] += g->bias[n0 + j];
    }
}

/* C (M,N) = alpha op(A) op(B) + beta C, or with bias (N) != NULL
 * C = alpha op(A) op(B) + bias. Row-major; one single-threaded GEMM call per
 * tile, the tiles spread over the pool. */
static void FN(gemm)(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K, R alpha,
                     const R *A, int lda, const R *B, int ldb, R beta, R *C, int ldc, const R *bias)
{
    if (M <= 0 || N <= 0) return;
    BLAS_INIT();
    struct FN(gemm) g = {ta, tb, M, N, K, 0, 0, 0, alpha, beta, A, B, bias, lda, ldb, ldc, C};
    vr_gemm_tiles(M, N, &g.tm, &g.tn);
    g.ntn = (N + g.tn - 1) / g.tn;
    vr_parallel_for((M + g.tm - 1) / g.tm * g.ntn, FN(gemm_tasks), &g);
}

#endif

/* ---- linear ---- */

void API(linear_fwd)(R *y, const R *x, const R *w, const R *b, int N, int O, int I, struct vr_ws *ws)
{
    /* y (N,O)  x (N,I)  w (O,I)  b (O) */
    (void)ws;
    FN(gemm)(CblasNoTrans, CblasTrans, N, O, I, 1, x, I, w, I, 0, y, O, b);
}

struct FN(colsum) {
    R *db;
    const R *dy;
    int N, O;
};

/* db[o] += sum over rows of dy[., o] for column blocks [c0, c1) of 256 */
static void FN(colsum_blocks)(void *vctx, int c0, int c1)
{
    const struct FN(colsum) *c = vctx;
    for (int blk = c0; blk < c1; blk++) {
        int o0 = blk * 256, n = imin(256, c->O - o0);
        R acc[256] = {0};
        for (int i = 0; i < c->N; i++) {
            const R *r = c->dy + (size_t)i * c->O + o0;
            for (int j = 0; j < n; j++) acc[j] += r[j];
        }
        for (int j = 0; j < n; j++) c->db[o0 + j] += acc[j];
    }
}

void API(linear_bwd)(R *dx, R *dw, R *db, const R *dy, const R *x, const R *w, int N, int O, int I,
                     struct vr_ws *ws)
{
    /* dx (N,I)  dw (O,I)  db (O)  dy (N,O)  x (N,I)  w (O,I) */
    (void)ws;
    if (N <= 0) return;
    if (dx) FN(gemm)(CblasNoTrans, CblasNoTrans, N, I, O, 1, dy, O, w, I, 0, dx, I, NULL);
    if (dw) FN(gemm)(CblasTrans, CblasNoTrans, O, I, N, 1, dy, O, x, I, 1, dw, I, NULL);
    if (db) {
        struct FN(colsum) c = {db, dy, N, O};
        int nb = (O + 255) / 256;
        if ((size_t)N * O < PAR_MIN) FN(colsum_blocks)(&c, 0, nb);
        else vr_parallel_for(nb, FN(colsum_blocks), &c);
    }
}

/* ---- RMSNorm ---- */

struct FN(rms) {
    R *y, *rstd, *dx, *dw;
    const R *x, *w, *dy, *rs;
    int N, D;
    R eps;
};

static void FN(rms_fwd_rows)(void *vctx, int r0, int r1)
{
    const struct FN(rms) *c = vctx;
    int D = c->D;
    for (int i = r0; i < r1; i++) {
        const R *x = c->x + (size_t)i * D;
        R *y = c->y + (size_t)i * D, ss = DOT(x, x, D);
        R r = 1 / SQRT(ss / (R)D + c->eps);
        if (c->rstd) c->rstd[i] = r;
        for (int d = 0; d < D; d++) y[d] = c->w[d] * (x[d] * r);
    }
}

void API(rmsnorm_fwd)(R *y, R *rstd, const R *x, const R *w, int N, int D, double eps)
{
    /* y (N,D)  rstd (N) or NULL  x (N,D)  w (D); y may alias x (a row's sum comes first) */
    struct FN(rms) c = {.y = y, .rstd = rstd, .x = x, .w = w, .N = N, .D = D, .eps = (R)eps};
    if ((size_t)N * D < PAR_MIN) FN(rms_fwd_rows)(&c, 0, N);
    else vr_parallel_for(N, FN(rms_fwd_rows), &c);
}

/* dw[d] += sum_n dy x rstd, column blocks [b0, b1) of 64 */
static void FN(rms_dw_cols)(void *vctx, int b0, int b1)
{
    const struct FN(rms) *c = vctx;
    for (int blk = b0; blk < b1; blk++) {
        int d0 = blk * 64, n = imin(64, c->D - d0);
        R acc[64] = {0};
        for (int i = 0; i < c->N; i++) {
            const R *dy = c->dy + (size_t)i * c->D + d0, *x = c->x + (size_t)i * c->D + d0;
            R r = c->rs[i];
            for (int j = 0; j < n; j++) acc[j] += dy[j] * x[j] * r;
        }
        for (int j = 0; j < n; j++) c->dw[d0 + j] += acc[j];
    }
}

/* dx = rstd (dy w - x rstd^2 mean(dy w x)); the row's dot is taken before
 * anything is written, so dx may alias dy */
static void FN(rms_dx_rows)(void *vctx, int r0, int r1)
{
    const struct FN(rms) *c = vctx;
    int D = c->D;
    for (int i = r0; i < r1; i++) {
        const R *dy = c->dy + (size_t)i * D, *x = c->x + (size_t)i * D;
        R *dx = c->dx + (size_t)i * D, r = c->rs[i], dot = 0;
        for (int d = 0; d < D; d++) dot += dy[d] * c->w[d] * x[d];
        R k = r * r * dot / (R)D;
        for (int d = 0; d < D; d++) dx[d] = r * (dy[d] * c->w[d] - x[d] * k);
    }
}

void API(rmsnorm_bwd)(R *dx, R *dw, const R *dy, const R *x, const R *rstd, const R *w, int N, int D)
{
    /* dx (N,D)  dw (D)  dy (N,D)  x (N,D)  rstd (N)  w (D) */
    struct FN(rms) c = {.dx = dx, .dw = dw, .x = x, .w = w, .dy = dy, .rs = rstd, .N = N, .D = D};
    int small = (size_t)N * D < PAR_MIN;
    if (dw) { /* before dx: dx may overwrite dy */
        if (small) FN(rms_dw_cols)(&c, 0, (D + 63) / 64);
        else vr_parallel_for((D + 63) / 64, FN(rms_dw_cols), &c);
    }
    if (dx) {
        if (small) FN(rms_dx_rows)(&c, 0, N);
        else vr_parallel_for(N, FN(rms_dx_rows), &c);
    }
}

/* ---- SwiGLU and GELU (elementwise; chunks of 4096 over the pool when big) ---- */

struct FN(ew) {
    R *y, *y2;
    const R *a, *b, *c;
    size_t n;
};

static void FN(swiglu_fwd_chunks)(void *vctx, int c0, int c1)
{
    const struct FN(ew) *e = vctx;
    size_t i1 = (size_t)c1 * 4096 < e->n ? (size_t)c1 * 4096 : e->n;
    size_t i0 = (size_t)c0 * 4096;
    SWIGLU(e->y + i0, e->a + i0, e->b + i0, i1 - i0);
}

static void FN(ew_run)(vr_range_fn fn, struct FN(ew) *e)
{
    int chunks = (int)((e->n + 4095) / 4096);
    if (e->n < PAR_MIN) fn(e, 0, chunks);
    else vr_parallel_for(chunks, fn, e);
}

void API(swiglu_fwd)(R *y, const R *g, const R *u, size_t n)
{
    /* y (n)  g (n)  u (n) */
    struct FN(ew) e = {.y = y, .a = g, .b = u, .n = n};
    FN(ew_run)(FN(swiglu_fwd_chunks), &e);
}

/* y = dg, y2 = du, a = dy, b = g, c = u; dy is read before either is written */
static void FN(swiglu_bwd_chunks)(void *vctx, int c0, int c1)
{
    const struct FN(ew) *e = vctx;
    size_t i1 = (size_t)c1 * 4096 < e->n ? (size_t)c1 * 4096 : e->n;
    size_t i0 = (size_t)c0 * 4096;
    SWIGLU_GRAD(e->y ? e->y + i0 : NULL, e->y2 ? e->y2 + i0 : NULL, e->a + i0, e->b + i0, e->c + i0, i1 - i0);
}

void API(swiglu_bwd)(R *dg, R *du, const R *dy, const R *g, const R *u, size_t n)
{
    /* dg (n)  du (n)  dy (n)  g (n)  u (n) */
    struct FN(ew) e = {.y = dg, .y2 = du, .a = dy, .b = g, .c = u, .n = n};
    FN(ew_run)(FN(swiglu_bwd_chunks), &e);
}

static void FN(gelu_fwd_chunks)(void *vctx, int c0, int c1)
{
    const struct FN(ew) *e = vctx;
    size_t i1 = (size_t)c1 * 4096 < e->n ? (size_t)c1 * 4096 : e->n;
    for (size_t i = (size_t)c0 * 4096; i < i1; i++) /* y may alias x */
        e->y[i] = (R)0.5 * e->a[i] * (1 + ERF(e->a[i] * (R)M_SQRT1_2));
}

void API(gelu_fwd)(R *y, const R *x, size_t n)
{
    /* y (n)  x (n) */
    struct FN(ew) e = {.y = y, .a = x, .n = n};
    FN(ew_run)(FN(gelu_fwd_chunks), &e);
}

/* y = dx, a = dy, b = x: gelu'(x) = Phi(x) + x phi(x) */
static void FN(gelu_bwd_chunks)(void *vctx, int c0, int c1)
{
    const struct FN(ew) *e = vctx;
    size_t i1 = (size_t)c1 * 4096 < e->n ? (size_t)c1 * 4096 : e->n;
    for (size_t i = (size_t)c0 * 4096; i < i1; i++) {
        R x = e->b[i];
        R d = (R)0.5 * (1 + ERF(x * (R)M_SQRT1_2)) + x * (R)0.39894228040143267794 * EXP((R)-0.5 * x * x);
        e->y[i] = e->a[i] * d;
    }
}

void API(gelu_bwd)(R *dx, const R *dy, const R *x, size_t n)
{
    /* dx (n)  dy (n)  x (n) */
    struct FN(ew) e = {.y = dx, .a = dy, .b = x, .n = n};
    FN(ew_run)(FN(gelu_bwd_chunks), &e);
}

/* ---- RoPE ---- */

struct FN(rope) {
    R *x;
    const float *cos, *sin;
    int H, K, stride, inverse;
};

static void FN(rope_rows)(void *vctx, int r0, int r1)
{
    const struct FN(rope) *p = vctx;
    int K = p->K, h2 = K / 2;
    for (int i = r0; i < r1; i++) {
        const float *c = p->cos + (size_t)i * K, *s = p->sin + (size_t)i * K;
        for (int h = 0; h < p->H; h++) {
            R *v = p->x + (size_t)i * p->stride + (size_t)h * K;
            if (!p->inverse) /* [c1 -s1; s2 c2] on (x1, x2) */
                for (int d = 0; d < h2; d++) {
                    R a = v[d], b = v[d + h2];
                    v[d] = a * c[d] - b * s[d];
                    v[d + h2] = b * c[d + h2] + a * s[d + h2];
                }
            else /* the transpose [c1 s2; -s1 c2] */
                for (int d = 0; d < h2; d++) {
                    R a = v[d], b = v[d + h2];
                    v[d] = a * c[d] + b * s[d + h2];
                    v[d + h2] = b * c[d + h2] - a * s[d];
                }
        }
    }
}

static void FN(rope)(R *x, const float *cos, const float *sin, int N, int H, int K, int stride, int inverse)
{
    /* x (N, H, K) rows `stride` apart, in place  cos, sin (N, K) */
    struct FN(rope) p = {x, cos, sin, H, K, stride, inverse};
    if ((size_t)N * H * K < PAR_MIN) FN(rope_rows)(&p, 0, N);
    else vr_parallel_for(N, FN(rope_rows), &p);
}

void API(rope_fwd)(R *x, const float *cos, const float *sin, int N, int H, int K, int stride)
{
    FN(rope)(x, cos, sin, N, H, K, stride, 0);
}

void API(rope_bwd)(R *dx, const float *cos, const float *sin, int N, int H, int K, int stride)
{
    FN(rope)(dx, cos, sin, N, H, K, stride, 1);
}

/* ---- residual add ---- */

static void FN(add_chunks)(void *vctx, int c0, int c1)
{
    const struct FN(ew) *e = vctx;
    size_t i1 = (size_t)c1 * 4096 < e->n ? (size_t)c1 * 4096 : e->n;
    for (size_t i = (size_t)c0 * 4096; i < i1; i++) e->y[i] += e->a[i];
}

void API(add_fwd)(R *y, const R *x, size_t n)
{
    /* y (n) += x (n) */
    struct FN(ew) e = {.y = y, .a = x, .n = n};
    FN(ew_run)(FN(add_chunks), &e);
}

/* ---- row gather and scatter-add (embeddings, image features) ---- */

void API(embed_fwd)(R *x, const R *table, const int32_t *idx, int N, int D)
{
    /* x (N,D)  table (., D)  idx (N) */
    for (int i = 0; i < N; i++)
        if (idx[i] >= 0) memcpy(x + (size_t)i * D, table + (size_t)idx[i] * D, (size_t)D * sizeof(R));
}

void API(embed_bwd)(R *dtable, const R *dx, const int32_t *idx, int N, int D)
{
    /* dtable (., D)  dx (N,D)  idx (N): rows in order, so a table row's sum has one order */
    for (int i = 0; i < N; i++)
        if (idx[i] >= 0) {
            R *t = dtable + (size_t)idx[i] * D;
            const R *g = dx + (size_t)i * D;
            for (int d = 0; d < D; d++) t[d] += g[d];
        }
}

/* ---- attention ---- */

/* Tasks are (head, block of up to AROWS rows of one sequence); blocks are
 * visited in zigzag order so that a thread's contiguous share of causal
 * blocks mixes long and short ones. Each thread has per floats of scratch. */
struct FN(att) {
    R *out, *lse, *dq, *dk, *dv, *Dd;
    const R *q, *k, *v, *dout, *lsein;
    int qs, ks, H, G, K, causal;
    const int *cu, *bseg, *brow;
    int nblk;
    R *buf;
    size_t per;
    R scale;
};

static void FN(attn_fwd_tasks)(void *vctx, int t0, int t1)
{
    const struct FN(att) *a = vctx;
    R *Sc = a->buf + (size_t)vr_thread_index() * a->per;
    int HK = a->H * a->K, K = a->K;
    for (int t = t0; t < t1; t++) {
        int h = t / a->nblk, b = zigzag(t % a->nblk, a->nblk), s = a->bseg[b], r0 = a->brow[b];
        int k0 = a->cu[s], end = a->cu[s + 1], rows = imin(AROWS, end - r0);
        int L = a->causal ? r0 + rows - k0 : end - k0;
        size_t kvoff = (size_t)k0 * a->ks + (size_t)(h / a->G) * K;
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, rows, L, K, a->scale, a->q + (size_t)r0 * a->qs + (size_t)h * K,
             a->qs, a->k + kvoff, a->ks, 0, Sc, L);
        for (int i = 0; i < rows; i++) {
            R *p = Sc + (size_t)i * L;
            int n = a->causal ? r0 + i - k0 + 1 : L;
            R m = MAXV(p, n) + 0, sum = (R)EXP_SHIFT(p, p, n, m), inv = 1 / sum;
            for (int j = 0; j < n; j++) p[j] *= inv;
            for (int j = n; j < L; j++) p[j] = 0;
            a->lse[(size_t)(r0 + i) * a->H + h] = m + LOG(sum);
        }
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, K, L, 1, Sc, L, a->v + kvoff, a->ks, 0,
             a->out + (size_t)r0 * HK + (size_t)h * K, HK);
    }
}

/* Blocks, per-thread scratch of `rows` rows of the longest sequence, scale. */
static int FN(attn_setup)(struct FN(att) *a, int N, int nseg, int rows, struct vr_ws *ws)
{
    int maxlen = 0;
    a->nblk = attn_blocks(a->cu, nseg, NULL, NULL, &maxlen);
    int *bs = (int *)(void *)vr_ws_floats(ws, (size_t)a->nblk + 1);
    int *br = (int *)(void *)vr_ws_floats(ws, (size_t)a->nblk + 1);
    attn_blocks(a->cu, nseg, bs, br, &maxlen);
    a->bseg = bs, a->brow = br;
    a->per = ((size_t)rows * maxlen + 15) & ~(size_t)15;
    a->buf = FN(al)(ws, a->per * (size_t)vr_threads());
    a->scale = 1 / SQRT((R)a->K);
    VR_ASSERT(nseg >= 0 && (nseg == 0 || (a->cu[0] >= 0 && a->cu[nseg] <= N)));
    BLAS_INIT();
    return a->nblk;
}

void API(attn_fwd)(R *out, R *lse, const R *q, const R *k, const R *v, const struct vr_attn_dims *d,
                   struct vr_ws *ws)
{
    /* out (N, H*K)  lse (N, H)  q (N, H, K) rows q_stride apart  k, v (N, KVH, K) rows kv_stride apart */
    VR_ASSERT(d->KVH > 0 && d->H % d->KVH == 0 && d->cu);
    struct FN(att) a = {.out = out, .lse = lse, .q = q, .k = k, .v = v, .qs = d->q_stride, .ks = d->kv_stride,
                        .H = d->H, .G = d->H / d->KVH, .K = d->K, .causal = d->causal, .cu = d->cu};
    int nblk = FN(attn_setup)(&a, d->N, d->nseg, AROWS, ws); /* scores */
    vr_parallel_for(d->H * nblk, FN(attn_fwd_tasks), &a);
}

struct FN(drow) {
    R *Dd;
    const R *dout, *out;
    int H, K;
};

/* Dd[n, h] = dout[n, h] . out[n, h] */
static void FN(attn_drows)(void *vctx, int r0, int r1)
{
    const struct FN(drow) *c = vctx;
    for (int n = r0; n < r1; n++)
        for (int h = 0; h < c->H; h++) {
            size_t o = ((size_t)n * c->H + h) * c->K;
            R d = 0;
            for (int j = 0; j < c->K; j++) d += c->dout[o + j] * c->out[o + j];
            c->Dd[(size_t)n * c->H + h] = d;
        }
}

/* dq of (head, query block): P from the scores and lse, dS = P (dP - D),
 * dq = scale dS k over the keys the block sees. */
static void FN(attn_dq_tasks)(void *vctx, int t0, int t1)
{
    const struct FN(att) *a = vctx;
    int HK = a->H * a->K, K = a->K;
    for (int t = t0; t < t1; t++) {
        int h = t / a->nblk, b = zigzag(t % a->nblk, a->nblk), s = a->bseg[b], r0 = a->brow[b];
        int k0 = a->cu[s], end = a->cu[s + 1], rows = imin(AROWS, end - r0);
        int L = a->causal ? r0 + rows - k0 : end - k0;
        R *Sc = a->buf + (size_t)vr_thread_index() * a->per, *dP = Sc + (size_t)rows * L;
        size_t kvoff = (size_t)k0 * a->ks + (size_t)(h / a->G) * K;
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, rows, L, K, a->scale, a->q + (size_t)r0 * a->qs + (size_t)h * K,
             a->qs, a->k + kvoff, a->ks, 0, Sc, L);
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, rows, L, K, 1, a->dout + (size_t)r0 * HK + (size_t)h * K, HK,
             a->v + kvoff, a->ks, 0, dP, L);
        for (int i = 0; i < rows; i++) {
            R *p = Sc + (size_t)i * L, *dp = dP + (size_t)i * L;
            R l = a->lsein[(size_t)(r0 + i) * a->H + h], D = a->Dd[(size_t)(r0 + i) * a->H + h];
            int n = a->causal ? r0 + i - k0 + 1 : L;
            EXP_SHIFT(p, p, n, l);
            for (int j = 0; j < n; j++) p[j] = p[j] * (dp[j] - D);
            for (int j = n; j < L; j++) p[j] = 0;
        }
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, K, L, a->scale, Sc, L, a->k + kvoff, a->ks, 0,
             a->dq + (size_t)r0 * a->qs + (size_t)h * K, a->qs);
    }
}

/* dk, dv of (kv head, key block): the transposed scores against every query
 * that sees the block, summed over the group's query heads in order. */
static void FN(attn_dkv_tasks)(void *vctx, int t0, int t1)
{
    const struct FN(att) *a = vctx;
    int HK = a->H * a->K, K = a->K;
    for (int t = t0; t < t1; t++) {
        int g = t / a->nblk, b = zigzag(t % a->nblk, a->nblk), s = a->bseg[b], j0 = a->brow[b];
        int end = a->cu[s + 1], kb = imin(AROWS, end - j0), qa = a->causal ? j0 : a->cu[s], Lq = end - qa;
        R *St = a->buf + (size_t)vr_thread_index() * a->per, *dPt = St + (size_t)kb * Lq;
        R *lrow = dPt + (size_t)kb * Lq, *drow = lrow + Lq;
        size_t kvoff = (size_t)j0 * a->ks + (size_t)g * K;
        for (int hh = 0; hh < a->G; hh++) {
            int h = g * a->G + hh;
            R beta = hh ? 1 : 0;
            const R *q = a->q + (size_t)qa * a->qs + (size_t)h * K, *dout = a->dout + (size_t)qa * HK + (size_t)h * K;
            for (int i = 0; i < Lq; i++) {
                lrow[i] = a->lsein[(size_t)(qa + i) * a->H + h];
                drow[i] = a->Dd[(size_t)(qa + i) * a->H + h];
            }
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, kb, Lq, K, a->scale, a->k + kvoff, a->ks, q, a->qs, 0, St,
                 Lq);
            GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, kb, Lq, K, 1, a->v + kvoff, a->ks, dout, HK, 0, dPt, Lq);
            for (int j = 0; j < kb; j++) {
                R *p = St + (size_t)j * Lq, *dp = dPt + (size_t)j * Lq;
                int lo = a->causal ? j : 0; /* query qa + i sees key j0 + j when i >= j */
                for (int i = 0; i < lo; i++) p[i] = dp[i] = 0;
                for (int i = lo; i < Lq; i++) p[i] = p[i] - lrow[i];
                EXP_SHIFT(p + lo, p + lo, Lq - lo, 0); /* x - 0 is x: exp(s - lse) as in dq */
                for (int i = lo; i < Lq; i++) dp[i] = p[i] * (dp[i] - drow[i]);
            }
            if (a->dv)
                GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, kb, K, Lq, 1, St, Lq, dout, HK, beta, a->dv + kvoff,
                     a->ks);
            if (a->dk)
                GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, kb, K, Lq, a->scale, dPt, Lq, q, a->qs, beta,
                     a->dk + kvoff, a->ks);
        }
    }
}

void API(attn_bwd)(R *dq, R *dk, R *dv, const R *dout, const R *out, const R *lse, const R *q, const R *k,
                   const R *v, const struct vr_attn_dims *d, struct vr_ws *ws)
{
    /* dq (N, H, K) rows q_stride apart  dk, dv (N, KVH, K) rows kv_stride apart  dout, out (N, H*K)  lse (N, H) */
    VR_ASSERT(d->KVH > 0 && d->H % d->KVH == 0 && d->cu);
    int N = d->N, H = d->H, K = d->K, KVH = d->KVH;
    struct FN(att) a = {.dq = dq, .dk = dk, .dv = dv, .q = q, .k = k, .v = v, .dout = dout, .lsein = lse,
                        .qs = d->q_stride, .ks = d->kv_stride, .H = H, .G = H / KVH, .K = K, .causal = d->causal,
                        .cu = d->cu};
    int nblk = FN(attn_setup)(&a, N, d->nseg, 2 * AROWS + 2, ws); /* P, dP, lse, D */
    struct FN(drow) c = {FN(al)(ws, (size_t)N * H), dout, out, H, K};
    a.Dd = c.Dd;
    if ((size_t)N * H * K < PAR_MIN) FN(attn_drows)(&c, 0, N);
    else vr_parallel_for(N, FN(attn_drows), &c);
    if (dq) vr_parallel_for(H * nblk, FN(attn_dq_tasks), &a);
    if (dk || dv) vr_parallel_for(KVH * nblk, FN(attn_dkv_tasks), &a);
}

/* ---- token log-probabilities through the LM head ---- */

struct FN(lp) {
    R *L, *logp, *ent, *part, *dh;
    const R *w, *dlogp, *prob; /* backward: the forward's softmax rows, or NULL */
    const int32_t *target;
    int r0, V, D, dt, ndt, nvp, rows;
    R temp;
};

/* A row of logits divided by the temperature in place; returns its max. */
static R FN(lp_scale_max)(R *l, int V, R temp)
{
    if (temp != 1) /* x / 1 is x */
        for (int v = 0; v < V; v++) l[v] = l[v] / temp;
    return MAXV(l, V) + 0; /* + 0: a zero maximum is +0 whichever zero came first */
}

/* Forward of rows [r0 + i0, r0 + i1): logits / temp, then the row's
 * log-softmax at the target and the entropy, sums in double. Keeping (c->L
 * is then the rows of prob), the row becomes its softmax: e = exp(l - m)
 * times (R)(1 / sum), the products the backward would form. */
static void FN(lp_fwd_rows)(void *vctx, int i0, int i1)
{
    const struct FN(lp) *c = vctx;
    for (int i = i0; i < i1; i++) {
        R *l = c->L + (size_t)i * c->V, m = FN(lp_scale_max)(l, c->V, c->temp);
        int n = c->r0 + i, t = c->target[n];
        VR_ASSERT(t >= 0 && t < c->V);
        R lt = l[t];
        double sum = 0, sd[4] = {0}; /* sum e; sum e (m - l), element v in sd[v % 4] */
        R e[VR_EXP_BLOCK];             /* EXP_SHIFT's block: the sum is the whole row's */
        for (int v0 = 0; v0 < c->V; v0 += VR_EXP_BLOCK) {
            int nb = imin(VR_EXP_BLOCK, c->V - v0), v = 0;
            sum += EXP_SHIFT(e, l + v0, nb, m);
            if (c->ent) {
                for (; v + 4 <= nb; v += 4)
                    for (int q = 0; q < 4; q++) sd[q] += (double)e[v + q] * (double)(m - l[v0 + v + q]);
                for (; v < nb; v++) sd[v % 4] += (double)e[v] * (double)(m - l[v0 + v]);
            }
            if (c->prob) memcpy(l + v0, e, (size_t)nb * sizeof(R));
        }
        double sdl = (sd[0] + sd[1]) + (sd[2] + sd[3]);
        c->logp[n] = (lt - m) - (R)log(sum);
        if (c->ent) c->ent[n] = (R)(log(sum) + sdl / sum); /* -sum p log p, every term >= 0 */
        if (c->prob) {
            R inv = (R)(1 / sum);
            for (int v = 0; v < c->V; v++) l[v] = l[v] * inv;
        }
    }
}

void API(logp_fwd)(R *logp, R *ent, R *prob, const R *h, const R *w, const int32_t *target, int N, int D, int V,
                   double temp, struct vr_ws *ws)
{
    /* logp (N)  ent (N)  prob (N,V)  h (N,D)  w (V,D)  target (N) */
    struct FN(lp) c = {.logp = logp, .ent = ent, .prob = prob, .w = w, .target = target, .V = V, .D = D,
                       .temp = (R)temp};
    R *chunk = prob ? NULL : FN(al)(ws, (size_t)imin(N, LOGP_ROWS) * V);
    for (c.r0 = 0; c.r0 < N; c.r0 += LOGP_ROWS) {
        int rows = imin(LOGP_ROWS, N - c.r0);
        c.L = prob ? prob + (size_t)c.r0 * V : chunk;
        FN(gemm)(CblasNoTrans, CblasTrans, rows, V, D, 1, h + (size_t)c.r0 * D, D, w, D, 0, c.L, V, NULL);
        vr_parallel_for(rows, FN(lp_fwd_rows), &c);
    }
}

/* Backward of chunk rows [i0, i1) (rows r0 + i): L becomes dlogits = dlogp
 * (onehot - p) / temp, p from the logits in L or, kept, from c->prob. */
static void FN(lp_bwd_rows)(void *vctx, int i0, int i1)
{
    const struct FN(lp) *c = vctx;
    for (int i = i0; i < i1; i++) {
        R *l = c->L + (size_t)i * c->V;
        int n = c->r0 + i, t = c->target[n];
        VR_ASSERT(t >= 0 && t < c->V);
        R g = c->dlogp[n] / c->temp;
        if (g == 0) { /* no gradient: zeros, whatever the row's logits hold */
            memset(l, 0, (size_t)c->V * sizeof(R));
            continue;
        }
        if (c->prob) {
            const R *p = c->prob + (size_t)n * c->V;
            for (int v = 0; v < c->V; v++) l[v] = -g * p[v];
        } else {
            R m = FN(lp_scale_max)(l, c->V, c->temp);
            double sum = 0; /* in the forward's blocks, so the same sum */
            for (int v0 = 0; v0 < c->V; v0 += VR_EXP_BLOCK)
                sum += EXP_SHIFT(l + v0, l + v0, imin(VR_EXP_BLOCK, c->V - v0), m);
            R inv = (R)(1 / sum);
            for (int v = 0; v < c->V; v++) l[v] = -g * (l[v] * inv);
        }
        l[t] += g;
    }
}

/* part[p] (rows, D) = dlogits[:, vocab part p] . w[vocab part p], tasks
 * (part, column tile of D) */
static void FN(lp_dh_tasks)(void *vctx, int t0, int t1)
{
    const struct FN(lp) *c = vctx;
    for (int t = t0; t < t1; t++) {
        int p = t / c->ndt, d0 = t % c->ndt * c->dt, nd = imin(c->dt, c->D - d0);
        int v0 = (int)((long)c->V * p / c->nvp), v1 = (int)((long)c->V * (p + 1) / c->nvp);
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->rows, nd, v1 - v0, 1, c->L + v0, c->V,
             c->w + (size_t)v0 * c->D + d0, c->D, 0, c->part + (size_t)p * c->rows * c->D + d0, c->D);
    }
}

/* dh[r0 + i] = sum over parts in order, rows [i0, i1) */
static void FN(lp_dh_sum)(void *vctx, int i0, int i1)
{
    const struct FN(lp) *c = vctx;
    for (int i = i0; i < i1; i++) {
        R *dh = c->dh + (size_t)(c->r0 + i) * c->D;
        memcpy(dh, c->part + (size_t)i * c->D, (size_t)c->D * sizeof(R));
        for (int p = 1; p < c->nvp; p++) {
            const R *q = c->part + ((size_t)p * c->rows + i) * c->D;
            for (int d = 0; d < c->D; d++) dh[d] += q[d];
        }
    }
}

void API(logp_bwd)(R *dh, R *dw, const R *dlogp, const R *prob, const R *h, const R *w, const int32_t *target,
                   int N, int D, int V, double temp, struct vr_ws *ws)
{
    /* dh (N,D)  dw (V,D)  dlogp (N)  prob (N,V)  h (N,D)  w (V,D)  target (N) */
    if (!dh && !dw) return;
    int crows = imin(N, LOGP_ROWS);
    struct FN(lp) c = {.L = FN(al)(ws, (size_t)crows * V), .dh = dh, .w = w, .dlogp = dlogp, .prob = prob,
                       .target = target, .V = V, .D = D, .temp = (R)temp};
    /* dh splits the vocabulary into nvp parts (partial sums added in order;
     * a function of V alone, so of the bits) and D into ndt tiles, enough
     * tasks for the threads: each task packs its rows of L again, so no more
     * (the tiles do not change a bit) */
    c.nvp = imin(8, (V + 255) / 256);
    if (c.nvp < 1) c.nvp = 1;
    c.ndt = imin(imax(1, (4 * vr_threads() + c.nvp - 1) / c.nvp), imax(1, D / 64));
    c.dt = (D + c.ndt - 1) / c.ndt;
    c.ndt = (D + c.dt - 1) / c.dt;
    c.part = dh ? FN(al)(ws, (size_t)c.nvp * crows * D) : NULL;
    /* the forward's chunks (logits computed again are the forward's bits, so
     * keeping them changes nothing); a chunk with no gradient is
     * skipped, and rows without one give dlogits of +0 and dh = 0 */
    for (c.r0 = 0; c.r0 < N; c.r0 += LOGP_ROWS) {
        c.rows = imin(LOGP_ROWS, N - c.r0);
        int any = 0;
        for (int i = 0; i < c.rows; i++) any |= dlogp[c.r0 + i] != 0;
        if (any) {
            const R *hc = h + (size_t)c.r0 * D;
            if (!prob) FN(gemm)(CblasNoTrans, CblasTrans, c.rows, V, D, 1, hc, D, w, D, 0, c.L, V, NULL);
            vr_parallel_for(c.rows, FN(lp_bwd_rows), &c);
            if (dh) {
                BLAS_INIT();
                vr_parallel_for(c.nvp * c.ndt, FN(lp_dh_tasks), &c);
                vr_parallel_for(c.rows, FN(lp_dh_sum), &c);
            }
            if (dw) FN(gemm)(CblasTrans, CblasNoTrans, V, D, c.rows, 1, c.L, V, hc, D, 1, dw, D, NULL);
        }
        for (int i = 0; dh && i < c.rows; i++)
            if (!any || dlogp[c.r0 + i] == 0) memset(dh + (size_t)(c.r0 + i) * D, 0, (size_t)D * sizeof(R));
    }
}

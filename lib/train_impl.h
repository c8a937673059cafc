/* train_impl.h: the model-level training pass, type-generic. Included by
 * train.c with R = float, S = f32 (what vr-update runs) and R = double,
 * S = f64 (the gradient check). Mirrors qwen.c's forward op for op, every
 * op through the seam (ops.h; the f64 pass calls the ops' _f64 twins); every
 * activation backward needs is kept in the workspace, or — with
 * opts->checkpoint — only each block's input, the block being recomputed
 * just before its backward. */

#define FN(n) CAT(n, S)
#define OP(n) CAT(CAT(vr_, n), OPSUF) /* an op of the seam (ops.h), or its _f64 twin */

/* Saved activations of one block (vision or decoder). */
struct FN(blk) {
    R *x;            /* block input (N, D): always kept */
    R *xn1, *rstd1;  /* input norm */
    R *q, *k, *v;    /* after RoPE (vision: views into qkv) */
    R *qkv;          /* vision: (N, 3D) */
    R *att, *lse;    /* attention output (N, H*K), log-sum-exp (N, H) */
    R *x2;           /* x + attention projection */
    R *xn2, *rstd2;  /* post-attention norm */
    R *g, *u;        /* MLP gate and up, before SwiGLU (N, I) */
    R *lz[LP_COUNT]; /* LoRA: x A^T (N, r) of each adapted linear */
};

struct FN(act) {
    /* vision */
    int NP, NM, ncuw, ncuf, vsave;
    int *widx, *cuw, *cuf;
    float *vcs, *vsn;       /* (NP, Kv) rotary tables in window order */
    R *pix;                 /* (NP, C*Tp*P*P) patches in merge-block order */
    struct FN(blk) *vb;     /* (depth) */
    struct FN(blk) vscratch;/* shared by all blocks when not vsave */
    R *vh;                  /* (NP, Dv) last block's output */
    R *mxn, *mrstd, *my0, *mg; /* merger: norm, first linear, GELU */
    R *vout;                /* (NM, D) merged tokens in raster order */
    /* decoder */
    float *cs, *sn;         /* (N, K) M-RoPE tables */
    struct FN(blk) *lb;     /* (layers) */
    struct FN(blk) lscratch;
    R *xL;                  /* (N, D) last layer's output */
    R *hrow, *hn, *hrstd;   /* (nout, D) scored rows before and after the final norm */
    /* LoRA scratch: dropped-out input and its gradient (N, MX), B-product (N, MX), dz (N, r) */
    R *lt, *lt2, *ltmp, *ldz;
    R *weff;                /* (V, D) lm_head + scale B A, when lm_head is adapted */
    R *prob;                /* (nout, V) the LM head's softmax rows, kept for the backward, or NULL */
};

static R *FN(al)(struct vr_ws *ws, size_t n)
{
    return (R *)(void *)vr_ws_floats(ws, n * (sizeof(R) / sizeof(float)) + 1);
}

#define W_(i) (w + L->off[i])
#define G_(i) (g && L->train[i] ? g + L->off[i] : NULL)

/* ---- blocks ---- */

static void FN(vblk_alloc)(struct FN(blk) *a, int N, int D, int H, int F, struct vr_ws *ws)
{
    a->xn1 = FN(al)(ws, (size_t)N * D);
    a->rstd1 = FN(al)(ws, (size_t)N);
    a->qkv = FN(al)(ws, (size_t)N * 3 * D);
    a->q = a->qkv, a->k = a->qkv + D, a->v = a->qkv + 2 * D;
    a->att = FN(al)(ws, (size_t)N * D);
    a->lse = FN(al)(ws, (size_t)N * H);
    a->x2 = FN(al)(ws, (size_t)N * D);
    a->xn2 = FN(al)(ws, (size_t)N * D);
    a->rstd2 = FN(al)(ws, (size_t)N);
    a->g = FN(al)(ws, (size_t)N * F);
    a->u = FN(al)(ws, (size_t)N * F);
}

static void FN(lblk_alloc)(struct FN(blk) *a, int N, const struct vr_layout *L, int l,
                           const struct vr_train_opts *o, struct vr_ws *ws)
{
    const struct vr_text_config *t = &L->cfg.text;
    for (int r = 0; r < LP_COUNT; r++)
        a->lz[r] = o->lora && o->lora->of[L->ly[l][r]] >= 0 ? FN(al)(ws, (size_t)N * o->lora->r) : NULL;
    int D = t->hidden, HK = t->heads * t->head_dim, KK = t->kv_heads * t->head_dim, I = t->intermediate;
    a->xn1 = FN(al)(ws, (size_t)N * D);
    a->rstd1 = FN(al)(ws, (size_t)N);
    a->q = FN(al)(ws, (size_t)N * HK);
    a->k = FN(al)(ws, (size_t)N * KK);
    a->v = FN(al)(ws, (size_t)N * KK);
    a->att = FN(al)(ws, (size_t)N * HK);
    a->lse = FN(al)(ws, (size_t)N * t->heads);
    a->x2 = FN(al)(ws, (size_t)N * D);
    a->xn2 = FN(al)(ws, (size_t)N * D);
    a->rstd2 = FN(al)(ws, (size_t)N);
    a->g = FN(al)(ws, (size_t)N * I);
    a->u = FN(al)(ws, (size_t)N * I);
}

/* A vision block: out (N, D) from a->x; out must not alias a->x. s (N, F) scratch. */
static void FN(vblk_fwd)(const struct vr_layout *L, const R *w, int b, struct FN(blk) *a, R *out, R *s,
                         int N, const float *cs, const float *sn, const int *cu, int ncu, struct vr_ws *ws)
{
    const struct vr_vision_config *v = &L->cfg.vision;
    int D = v->hidden, H = v->heads, K = D / H, F = v->intermediate;
    const int *p = L->vb[b];
    OP(rmsnorm_fwd)(a->xn1, a->rstd1, a->x, W_(p[VP_NORM1]), N, D, 1e-6);
    OP(linear_fwd)(a->qkv, a->xn1, W_(p[VP_QKV_W]), W_(p[VP_QKV_B]), N, 3 * D, D, ws);
    OP(rope_fwd)(a->qkv, cs, sn, N, H, K, 3 * D);
    OP(rope_fwd)(a->qkv + D, cs, sn, N, H, K, 3 * D);
    struct vr_attn_dims ad = {.N = N, .H = H, .KVH = H, .K = K, .q_stride = 3 * D, .kv_stride = 3 * D, .cu = cu,
                              .nseg = ncu};
    OP(attn_fwd)(a->att, a->lse, a->q, a->k, a->v, &ad, ws);
    OP(linear_fwd)(out, a->att, W_(p[VP_PROJ_W]), W_(p[VP_PROJ_B]), N, D, D, ws);
    memcpy(a->x2, a->x, (size_t)N * D * sizeof(R));
    OP(add_fwd)(a->x2, out, (size_t)N * D);
    OP(rmsnorm_fwd)(a->xn2, a->rstd2, a->x2, W_(p[VP_NORM2]), N, D, 1e-6);
    OP(linear_fwd)(a->g, a->xn2, W_(p[VP_GATE_W]), W_(p[VP_GATE_B]), N, F, D, ws);
    OP(linear_fwd)(a->u, a->xn2, W_(p[VP_UP_W]), W_(p[VP_UP_B]), N, F, D, ws);
    OP(swiglu_fwd)(s, a->g, a->u, (size_t)N * F);
    OP(linear_fwd)(out, s, W_(p[VP_DOWN_W]), W_(p[VP_DOWN_B]), N, D, F, ws);
    OP(add_fwd)(out, a->x2, (size_t)N * D);
}

/* Scratch of one block's backward. */
struct FN(bsc) {
    R *s, *ds, *du, *dxn, *tmp, *datt, *dq, *dk, *dv, *out;
};

static void FN(bsc_alloc)(struct FN(bsc) *c, int N, int D, int HK, int KK, int I, struct vr_ws *ws)
{
    c->s = FN(al)(ws, (size_t)N * I);
    c->ds = FN(al)(ws, (size_t)N * I);
    c->du = FN(al)(ws, (size_t)N * I);
    c->dxn = FN(al)(ws, (size_t)N * D);
    c->tmp = FN(al)(ws, (size_t)N * D);
    c->datt = FN(al)(ws, (size_t)N * HK);
    c->dq = FN(al)(ws, (size_t)N * (HK + 2 * KK)); /* vision: the packed dqkv */
    c->dk = c->dq + (size_t)N * HK;
    c->dv = c->dk + (size_t)N * KK;
    c->out = FN(al)(ws, (size_t)N * D);
}

/* Vision block backward: dy (N, D) holds d(output) and becomes d(input). */
static void FN(vblk_bwd)(const struct vr_layout *L, const R *w, R *g, int b, const struct FN(blk) *a,
                         R *dy, struct FN(bsc) *c, int N, const float *cs, const float *sn, const int *cu,
                         int ncu, struct vr_ws *ws)
{
    const struct vr_vision_config *v = &L->cfg.vision;
    int D = v->hidden, H = v->heads, K = D / H, F = v->intermediate;
    size_t ND = (size_t)N * D;
    const int *p = L->vb[b];
    OP(swiglu_fwd)(c->s, a->g, a->u, (size_t)N * F);
    OP(linear_bwd)(c->ds, G_(p[VP_DOWN_W]), G_(p[VP_DOWN_B]), dy, c->s, W_(p[VP_DOWN_W]), N, D, F, ws);
    OP(swiglu_bwd)(c->ds, c->du, c->ds, a->g, a->u, (size_t)N * F);
    OP(linear_bwd)(c->dxn, G_(p[VP_GATE_W]), G_(p[VP_GATE_B]), c->ds, a->xn2, W_(p[VP_GATE_W]), N, F, D, ws);
    OP(linear_bwd)(c->tmp, G_(p[VP_UP_W]), G_(p[VP_UP_B]), c->du, a->xn2, W_(p[VP_UP_W]), N, F, D, ws);
    OP(add_fwd)(c->dxn, c->tmp, ND);
    OP(rmsnorm_bwd)(c->dxn, G_(p[VP_NORM2]), c->dxn, a->x2, a->rstd2, W_(p[VP_NORM2]), N, D);
    OP(add_fwd)(dy, c->dxn, ND); /* dy is now d(x2) */
    OP(linear_bwd)(c->datt, G_(p[VP_PROJ_W]), G_(p[VP_PROJ_B]), dy, a->att, W_(p[VP_PROJ_W]), N, D, D, ws);
    R *dqkv = c->dq;
    struct vr_attn_dims ad = {.N = N, .H = H, .KVH = H, .K = K, .q_stride = 3 * D, .kv_stride = 3 * D, .cu = cu,
                              .nseg = ncu};
    OP(attn_bwd)(dqkv, dqkv + D, dqkv + 2 * D, c->datt, a->att, a->lse, a->q, a->k, a->v, &ad, ws);
    OP(rope_bwd)(dqkv, cs, sn, N, H, K, 3 * D);
    OP(rope_bwd)(dqkv + D, cs, sn, N, H, K, 3 * D);
    OP(linear_bwd)(c->dxn, G_(p[VP_QKV_W]), G_(p[VP_QKV_B]), dqkv, a->xn1, W_(p[VP_QKV_W]), N, 3 * D, D, ws);
    OP(rmsnorm_bwd)(c->dxn, G_(p[VP_NORM1]), c->dxn, a->x, a->rstd1, W_(p[VP_NORM1]), N, D);
    OP(add_fwd)(dy, c->dxn, ND);
}

/* LoRA dropout in place of x (N, In) into out: each element kept with
 * probability 1 - p (Philox of seed; row, column, target, step) and scaled
 * by 1 / (1 - p). */
static void FN(dropout)(R *out, const R *x, int N, int In, const struct vr_lora *lo, int t, int64_t row0)
{
    uint32_t key[2] = {(uint32_t)lo->seed, (uint32_t)(lo->seed >> 32)}, r[4];
    R keep = (R)(1.0 / (1.0 - lo->dropout));
    float p = (float)lo->dropout;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < In; i += 4) {
            uint32_t ctr[4] = {(uint32_t)(row0 + n), (uint32_t)i, (uint32_t)t, (uint32_t)lo->step};
            vr_philox(ctr, key, r);
            for (int k = 0; k < 4 && i + k < In; k++) {
                size_t e = (size_t)n * In + i + k;
                out[e] = vr_u32_to_unit_float(r[k]) >= p ? x[e] * keep : 0;
            }
        }
}

/* y (N, O) = x W^T + b, plus scale * (x A^T) B^T when W is adapted; z (N, r)
 * keeps x A^T for backward. */
static void FN(llin_fwd)(const struct vr_layout *L, const R *w, const struct vr_train_opts *o,
                         const struct FN(act) *A, int wi, int bi, R *y, const R *x, int N, int O, int In, R *z,
                         struct vr_ws *ws)
{
    OP(linear_fwd)(y, x, W_(wi), bi >= 0 ? W_(bi) : NULL, N, O, In, ws);
    const struct vr_lora *lo = o->lora;
    int t = lo ? lo->of[wi] : -1;
    if (t < 0) return;
    const struct vr_lora_ad *ad = &lo->ad[t];
    const R *lw = (const R *)o->lw, *xt = x;
    if (lo->dropout > 0) {
        FN(dropout)(A->lt, x, N, In, lo, t, o->row0);
        xt = A->lt;
    }
    OP(linear_fwd)(z, xt, lw + ad->a, NULL, N, lo->r, In, ws);
    OP(linear_fwd)(A->ltmp, z, lw + ad->b, NULL, N, O, lo->r, ws);
    R sc = (R)lo->scale;
    for (size_t i = 0; i < (size_t)N * O; i++) y[i] += sc * A->ltmp[i];
}

/* Backward of llin_fwd: dx (N, In) = (overwritten; may be NULL without an
 * adapter), weight gradients added. */
static void FN(llin_bwd)(const struct vr_layout *L, const R *w, R *g, const struct vr_train_opts *o,
                         const struct FN(act) *A, int wi, int bi, R *dx, const R *dy, const R *x, int N, int O,
                         int In, const R *z, struct vr_ws *ws)
{
    OP(linear_bwd)(dx, G_(wi), bi >= 0 ? G_(bi) : NULL, dy, x, W_(wi), N, O, In, ws);
    const struct vr_lora *lo = o->lora;
    int t = lo ? lo->of[wi] : -1;
    if (t < 0) return;
    const struct vr_lora_ad *ad = &lo->ad[t];
    const R *lw = (const R *)o->lw, *xt = x;
    R *lg = (R *)o->lg, sc = (R)lo->scale;
    for (size_t i = 0; i < (size_t)N * O; i++) A->ltmp[i] = sc * dy[i];
    OP(linear_bwd)(A->ldz, lg ? lg + ad->b : NULL, NULL, A->ltmp, z, lw + ad->b, N, O, lo->r, ws);
    if (lo->dropout > 0) {
        FN(dropout)(A->lt, x, N, In, lo, t, o->row0);
        xt = A->lt;
    }
    OP(linear_bwd)(A->lt2, lg ? lg + ad->a : NULL, NULL, A->ldz, xt, lw + ad->a, N, lo->r, In, ws);
    if (lo->dropout > 0) { /* the mask again: where x was dropped, no gradient */
        FN(dropout)(A->lt, A->lt2, N, In, lo, t, o->row0);
        memcpy(A->lt2, A->lt, (size_t)N * In * sizeof(R));
    }
    OP(add_fwd)(dx, A->lt2, (size_t)N * In);
}

/* A decoder layer over packed causal sequences. */
static void FN(lblk_fwd)(const struct vr_layout *L, const R *w, const struct vr_train_opts *o,
                         const struct FN(act) *A, int l, struct FN(blk) *a, R *out, R *s, int N, const float *cs,
                         const float *sn, const int *cu, int nseq, struct vr_ws *ws)
{
    const struct vr_text_config *t = &L->cfg.text;
    int D = t->hidden, H = t->heads, KVH = t->kv_heads, K = t->head_dim, I = t->intermediate;
    const int *p = L->ly[l];
    OP(rmsnorm_fwd)(a->xn1, a->rstd1, a->x, W_(p[LP_IN_NORM]), N, D, t->eps);
    FN(llin_fwd)(L, w, o, A, p[LP_Q_W], p[LP_Q_B], a->q, a->xn1, N, H * K, D, a->lz[LP_Q_W], ws);
    FN(llin_fwd)(L, w, o, A, p[LP_K_W], p[LP_K_B], a->k, a->xn1, N, KVH * K, D, a->lz[LP_K_W], ws);
    FN(llin_fwd)(L, w, o, A, p[LP_V_W], p[LP_V_B], a->v, a->xn1, N, KVH * K, D, a->lz[LP_V_W], ws);
    OP(rope_fwd)(a->q, cs, sn, N, H, K, H * K);
    OP(rope_fwd)(a->k, cs, sn, N, KVH, K, KVH * K);
    struct vr_attn_dims ad = {.N = N, .H = H, .KVH = KVH, .K = K, .q_stride = H * K, .kv_stride = KVH * K,
                              .causal = 1, .cu = cu, .nseg = nseq};
    OP(attn_fwd)(a->att, a->lse, a->q, a->k, a->v, &ad, ws);
    FN(llin_fwd)(L, w, o, A, p[LP_O_W], -1, out, a->att, N, D, H * K, a->lz[LP_O_W], ws);
    memcpy(a->x2, a->x, (size_t)N * D * sizeof(R));
    OP(add_fwd)(a->x2, out, (size_t)N * D);
    OP(rmsnorm_fwd)(a->xn2, a->rstd2, a->x2, W_(p[LP_POST_NORM]), N, D, t->eps);
    FN(llin_fwd)(L, w, o, A, p[LP_GATE_W], -1, a->g, a->xn2, N, I, D, a->lz[LP_GATE_W], ws);
    FN(llin_fwd)(L, w, o, A, p[LP_UP_W], -1, a->u, a->xn2, N, I, D, a->lz[LP_UP_W], ws);
    OP(swiglu_fwd)(s, a->g, a->u, (size_t)N * I);
    FN(llin_fwd)(L, w, o, A, p[LP_DOWN_W], -1, out, s, N, D, I, a->lz[LP_DOWN_W], ws);
    OP(add_fwd)(out, a->x2, (size_t)N * D);
}

static void FN(lblk_bwd)(const struct vr_layout *L, const R *w, R *g, const struct vr_train_opts *o,
                         const struct FN(act) *A, int l, const struct FN(blk) *a, R *dy, struct FN(bsc) *c, int N,
                         const float *cs, const float *sn, const int *cu, int nseq, struct vr_ws *ws)
{
    const struct vr_text_config *t = &L->cfg.text;
    int D = t->hidden, H = t->heads, KVH = t->kv_heads, K = t->head_dim, I = t->intermediate;
    size_t ND = (size_t)N * D;
    const int *p = L->ly[l];
    OP(swiglu_fwd)(c->s, a->g, a->u, (size_t)N * I);
    FN(llin_bwd)(L, w, g, o, A, p[LP_DOWN_W], -1, c->ds, dy, c->s, N, D, I, a->lz[LP_DOWN_W], ws);
    OP(swiglu_bwd)(c->ds, c->du, c->ds, a->g, a->u, (size_t)N * I);
    FN(llin_bwd)(L, w, g, o, A, p[LP_GATE_W], -1, c->dxn, c->ds, a->xn2, N, I, D, a->lz[LP_GATE_W], ws);
    FN(llin_bwd)(L, w, g, o, A, p[LP_UP_W], -1, c->tmp, c->du, a->xn2, N, I, D, a->lz[LP_UP_W], ws);
    OP(add_fwd)(c->dxn, c->tmp, ND);
    OP(rmsnorm_bwd)(c->dxn, G_(p[LP_POST_NORM]), c->dxn, a->x2, a->rstd2, W_(p[LP_POST_NORM]), N, D);
    OP(add_fwd)(dy, c->dxn, ND);
    FN(llin_bwd)(L, w, g, o, A, p[LP_O_W], -1, c->datt, dy, a->att, N, D, H * K, a->lz[LP_O_W], ws);
    struct vr_attn_dims ad = {.N = N, .H = H, .KVH = KVH, .K = K, .q_stride = H * K, .kv_stride = KVH * K,
                              .causal = 1, .cu = cu, .nseg = nseq};
    OP(attn_bwd)(c->dq, c->dk, c->dv, c->datt, a->att, a->lse, a->q, a->k, a->v, &ad, ws);
    OP(rope_bwd)(c->dq, cs, sn, N, H, K, H * K);
    OP(rope_bwd)(c->dk, cs, sn, N, KVH, K, KVH * K);
    FN(llin_bwd)(L, w, g, o, A, p[LP_Q_W], p[LP_Q_B], c->dxn, c->dq, a->xn1, N, H * K, D, a->lz[LP_Q_W], ws);
    FN(llin_bwd)(L, w, g, o, A, p[LP_K_W], p[LP_K_B], c->tmp, c->dk, a->xn1, N, KVH * K, D, a->lz[LP_K_W], ws);
    OP(add_fwd)(c->dxn, c->tmp, ND);
    FN(llin_bwd)(L, w, g, o, A, p[LP_V_W], p[LP_V_B], c->tmp, c->dv, a->xn1, N, KVH * K, D, a->lz[LP_V_W], ws);
    OP(add_fwd)(c->dxn, c->tmp, ND);
    OP(rmsnorm_bwd)(c->dxn, G_(p[LP_IN_NORM]), c->dxn, a->x, a->rstd1, W_(p[LP_IN_NORM]), N, D);
    OP(add_fwd)(dy, c->dxn, ND);
}

/* ---- vision tower ---- */

static void FN(vision_fwd)(const struct vr_layout *L, const R *w, const struct vr_pack *p, struct FN(act) *A,
                           struct vr_ws *ws)
{
    const struct vr_vision_config *v = &L->cfg.vision;
    int D = v->hidden, H = v->heads, K = D / H, F = v->intermediate, unit = v->merge * v->merge;
    int NP = p->npatch, NM = NP / unit, C = v->in_chans * v->temporal_patch * v->patch * v->patch;
    int nwin = 0, nfr = 0;
    int wsz = v->window / v->merge / v->patch;
    for (int i = 0; i < p->nimg; i++) {
        nwin += p->grid[i][0] * ((p->grid[i][1] / v->merge) / wsz + 1) * ((p->grid[i][2] / v->merge) / wsz + 1);
        nfr += p->grid[i][0];
    }
    A->NP = NP, A->NM = NM;
    A->widx = (int *)vr_ws_floats(ws, (size_t)NM + 1);
    A->cuw = (int *)vr_ws_floats(ws, (size_t)nwin + 2);
    A->cuf = (int *)vr_ws_floats(ws, (size_t)nfr + 2);
    vr_vision_window_plan(v, p->nimg, (const int(*)[3])p->grid, A->widx, A->cuw, &A->ncuw, A->cuf, &A->ncuf);
    A->pix = FN(al)(ws, (size_t)NP * C);
    for (size_t i = 0; i < (size_t)NP * C; i++) A->pix[i] = (R)p->pixels[i];
    R *x0 = FN(al)(ws, (size_t)NP * D);
    OP(linear_fwd)(x0, A->pix, W_(L->patch), NULL, NP, D, C, ws);
    float *cos0 = vr_ws_floats(ws, (size_t)NP * K), *sin0 = vr_ws_floats(ws, (size_t)NP * K);
    vr_vision_rope_tables(v, p->nimg, (const int(*)[3])p->grid, cos0, sin0);
    A->vcs = vr_ws_floats(ws, (size_t)NP * K);
    A->vsn = vr_ws_floats(ws, (size_t)NP * K);
    A->vb = (struct FN(blk) *)(void *)vr_ws_floats(ws, (size_t)v->depth * sizeof(struct FN(blk)) / 4 + 1);
    for (int b = 0; b < v->depth; b++) A->vb[b].x = FN(al)(ws, (size_t)NP * D);
    for (int j = 0; j < NM; j++) {
        size_t src = (size_t)A->widx[j] * unit, dst = (size_t)j * unit;
        memcpy(A->vb[0].x + dst * D, x0 + src * D, (size_t)unit * D * sizeof(R));
        memcpy(A->vcs + dst * K, cos0 + src * K, (size_t)unit * K * sizeof(float));
        memcpy(A->vsn + dst * K, sin0 + src * K, (size_t)unit * K * sizeof(float));
    }
    if (!A->vsave) FN(vblk_alloc)(&A->vscratch, NP, D, H, F, ws);
    A->vh = FN(al)(ws, (size_t)NP * D);
    R *s = FN(al)(ws, (size_t)NP * F);
    for (int b = 0; b < v->depth; b++) {
        struct FN(blk) *a = &A->vb[b];
        if (A->vsave) FN(vblk_alloc)(a, NP, D, H, F, ws);
        else {
            R *x = a->x;
            *a = A->vscratch;
            a->x = x;
        }
        int full = 0;
        for (int i = 0; i < v->nfullatt; i++) full |= v->fullatt[i] == b;
        R *out = b + 1 < v->depth ? A->vb[b + 1].x : A->vh;
        FN(vblk_fwd)(L, w, b, a, out, s, NP, A->vcs, A->vsn, full ? A->cuf : A->cuw, full ? A->ncuf : A->ncuw,
                     ws);
    }
    /* merger */
    int MD = D * unit, O = v->out_hidden;
    A->mxn = FN(al)(ws, (size_t)NP * D);
    A->mrstd = FN(al)(ws, (size_t)NP);
    A->my0 = FN(al)(ws, (size_t)NM * MD);
    A->mg = FN(al)(ws, (size_t)NM * MD);
    R *y = FN(al)(ws, (size_t)NM * O);
    OP(rmsnorm_fwd)(A->mxn, A->mrstd, A->vh, W_(L->mln), NP, D, 1e-6);
    OP(linear_fwd)(A->my0, A->mxn, W_(L->mw0), W_(L->mb0), NM, MD, MD, ws);
    OP(gelu_fwd)(A->mg, A->my0, (size_t)NM * MD);
    OP(linear_fwd)(y, A->mg, W_(L->mw2), W_(L->mb2), NM, O, MD, ws);
    A->vout = FN(al)(ws, (size_t)NM * O);
    for (int j = 0; j < NM; j++)
        memcpy(A->vout + (size_t)A->widx[j] * O, y + (size_t)j * O, (size_t)O * sizeof(R));
}

/* dvout (NM, O) in raster order: the gradient reaching the merged tokens. */
static void FN(vision_bwd)(const struct vr_layout *L, const R *w, R *g, const struct FN(act) *A,
                           const R *dvout, struct vr_ws *ws)
{
    const struct vr_vision_config *v = &L->cfg.vision;
    int D = v->hidden, F = v->intermediate, unit = v->merge * v->merge;
    int NP = A->NP, NM = A->NM, MD = D * unit, O = v->out_hidden;
    int C = v->in_chans * v->temporal_patch * v->patch * v->patch;
    R *dy = FN(al)(ws, (size_t)NM * O), *dmg = FN(al)(ws, (size_t)NM * MD), *dmx = FN(al)(ws, (size_t)NP * D);
    for (int j = 0; j < NM; j++) memcpy(dy + (size_t)j * O, dvout + (size_t)A->widx[j] * O, (size_t)O * sizeof(R));
    OP(linear_bwd)(dmg, G_(L->mw2), G_(L->mb2), dy, A->mg, W_(L->mw2), NM, O, MD, ws);
    OP(gelu_bwd)(dmg, dmg, A->my0, (size_t)NM * MD);
    OP(linear_bwd)(dmx, G_(L->mw0), G_(L->mb0), dmg, A->mxn, W_(L->mw0), NM, MD, MD, ws);
    OP(rmsnorm_bwd)(dmx, G_(L->mln), dmx, A->vh, A->mrstd, W_(L->mln), NP, D);
    struct FN(bsc) c;
    FN(bsc_alloc)(&c, NP, D, D, D, F, ws);
    for (int b = v->depth - 1; b >= 0; b--) {
        int full = 0;
        for (int i = 0; i < v->nfullatt; i++) full |= v->fullatt[i] == b;
        const int *cu = full ? A->cuf : A->cuw;
        int ncu = full ? A->ncuf : A->ncuw;
        if (!A->vsave) /* recompute the block from its saved input */
            FN(vblk_fwd)(L, w, b, &A->vb[b], c.out, c.s, NP, A->vcs, A->vsn, cu, ncu, ws);
        FN(vblk_bwd)(L, w, g, b, &A->vb[b], dmx, &c, NP, A->vcs, A->vsn, cu, ncu, ws);
    }
    if (G_(L->patch)) { /* back to merge-block order, then the patch embedding's weight */
        R *dx0 = FN(al)(ws, (size_t)NP * D);
        for (int j = 0; j < NM; j++)
            memcpy(dx0 + (size_t)A->widx[j] * unit * D, dmx + (size_t)j * unit * D, (size_t)unit * D * sizeof(R));
        OP(linear_bwd)(NULL, G_(L->patch), NULL, dx0, A->pix, W_(L->patch), NP, D, C, ws);
    }
}

/* ---- the whole model ---- */

struct vr_train_act *FN(vr_train_fwd_)(const struct vr_layout *L, const R *w, const struct vr_pack *p,
                                       const struct vr_train_opts *o, R *logp, R *ent, struct vr_ws *ws)
{
    const struct vr_text_config *t = &L->cfg.text;
    int N = p->N, D = t->hidden, K = t->head_dim, I = t->intermediate, V = t->vocab;
    struct FN(act) *A = (struct FN(act) *)(void *)vr_ws_floats(ws, sizeof *A / 4 + 1);
    memset(A, 0, sizeof *A);
    if (p->nimg) {
        A->vsave = !o->checkpoint && !o->no_vision_grad;
        FN(vision_fwd)(L, w, p, A, ws);
    }
    A->cs = vr_ws_floats(ws, (size_t)N * K);
    A->sn = vr_ws_floats(ws, (size_t)N * K);
    vr_mrope_tables(A->cs, A->sn, p->pos, N, N, t);
    A->lb = (struct FN(blk) *)(void *)vr_ws_floats(ws, (size_t)t->layers * sizeof(struct FN(blk)) / 4 + 1);
    for (int l = 0; l < t->layers; l++) A->lb[l].x = FN(al)(ws, (size_t)N * D);
    A->xL = FN(al)(ws, (size_t)N * D);
    OP(embed_fwd)(A->lb[0].x, W_(L->embed), p->ids, N, D); /* then image rows take their features */
    if (p->nimg) OP(embed_fwd)(A->lb[0].x, A->vout, p->img_row, N, D);
    const struct vr_lora *lo = o->lora;
    if (lo) {
        int MX = D > I ? D : I;
        if (t->heads * K > MX) MX = t->heads * K;
        A->lt = FN(al)(ws, (size_t)N * MX);
        A->lt2 = FN(al)(ws, (size_t)N * MX);
        A->ltmp = FN(al)(ws, (size_t)N * MX);
        A->ldz = FN(al)(ws, (size_t)N * lo->r);
    }
    if (o->checkpoint) FN(lblk_alloc)(&A->lscratch, N, L, 0, o, ws); /* every layer adapts the same roles */
    R *s = FN(al)(ws, (size_t)N * I);
    for (int l = 0; l < t->layers; l++) {
        struct FN(blk) *a = &A->lb[l];
        if (!o->checkpoint) FN(lblk_alloc)(a, N, L, l, o, ws);
        else {
            R *x = a->x;
            *a = A->lscratch;
            a->x = x;
        }
        FN(lblk_fwd)(L, w, o, A, l, a, l + 1 < t->layers ? A->lb[l + 1].x : A->xL, s, N, A->cs, A->sn, p->cu,
                     p->nseq, ws);
    }
    int n = p->nout;
    A->hrow = FN(al)(ws, (size_t)n * D);
    A->hn = FN(al)(ws, (size_t)n * D);
    A->hrstd = FN(al)(ws, (size_t)n);
    for (int i = 0; i < n; i++) memcpy(A->hrow + (size_t)i * D, A->xL + (size_t)p->out_row[i] * D, (size_t)D * sizeof(R));
    OP(rmsnorm_fwd)(A->hn, A->hrstd, A->hrow, W_(L->norm), n, D, t->eps);
    const R *head = W_(L->head);
    int th = lo ? lo->of[L->head] : -1;
    if (th >= 0) { /* lm_head + scale B A, as one matrix */
        const struct vr_lora_ad *ad = &lo->ad[th];
        const R *lw = (const R *)o->lw;
        R *at = FN(al)(ws, (size_t)D * lo->r);
        for (int k = 0; k < lo->r; k++)
            for (int d = 0; d < D; d++) at[(size_t)d * lo->r + k] = lw[ad->a + (size_t)k * D + d];
        A->weff = FN(al)(ws, (size_t)V * D);
        OP(linear_fwd)(A->weff, lw + ad->b, at, NULL, V, D, lo->r, ws);
        R sc = (R)lo->scale;
        for (size_t i = 0; i < (size_t)V * D; i++) A->weff[i] = head[i] + sc * A->weff[i];
        head = A->weff;
    }
    A->prob = NULL;
    if (o->keep_logits > 0 && (double)n * V * sizeof(R) <= (double)o->keep_logits) A->prob = FN(al)(ws, (size_t)n * V);
    OP(logp_fwd)(logp, ent, A->prob, A->hn, head, p->tgt, n, D, V, o->temperature, ws);
    return (struct vr_train_act *)(void *)A;
}

void FN(vr_train_bwd_)(const struct vr_layout *L, const R *w, R *g, const struct vr_pack *p,
                       const struct vr_train_opts *o, struct vr_train_act *act, const R *dlogp, struct vr_ws *ws)
{
    const struct vr_text_config *t = &L->cfg.text;
    struct FN(act) *A = (struct FN(act) *)(void *)act;
    int N = p->N, D = t->hidden, V = t->vocab, n = p->nout;
    int HK = t->heads * t->head_dim, KK = t->kv_heads * t->head_dim;
    R *dh = FN(al)(ws, (size_t)n * D), *dx = FN(al)(ws, (size_t)N * D);
    const struct vr_lora *lo = o->lora;
    int th = lo ? lo->of[L->head] : -1;
    if (th >= 0) { /* through lm_head + scale B A: dW then the adapter's share */
        const struct vr_lora_ad *ad = &lo->ad[th];
        const R *lw = (const R *)o->lw;
        R *lg = (R *)o->lg, sc = (R)lo->scale;
        R *dwe = FN(al)(ws, (size_t)V * D);
        memset(dwe, 0, (size_t)V * D * sizeof(R));
        OP(logp_bwd)(dh, dwe, dlogp, A->prob, A->hn, A->weff, p->tgt, n, D, V, o->temperature, ws);
        if (G_(L->head)) OP(add_fwd)(G_(L->head), dwe, (size_t)V * D);
        if (lg) {
            R *tb = FN(al)(ws, (size_t)V * lo->r), *ta = FN(al)(ws, (size_t)lo->r * D);
            OP(linear_fwd)(tb, dwe, lw + ad->a, NULL, V, lo->r, D, ws);      /* dW A^T */
            for (size_t i = 0; i < (size_t)V * lo->r; i++) lg[ad->b + i] += sc * tb[i];
            memset(ta, 0, (size_t)lo->r * D * sizeof(R));
            OP(linear_bwd)(NULL, ta, NULL, lw + ad->b, dwe, lw + ad->a, V, lo->r, D, ws); /* B^T dW */
            for (size_t i = 0; i < (size_t)lo->r * D; i++) lg[ad->a + i] += sc * ta[i];
        }
    } else {
        OP(logp_bwd)(dh, G_(L->head), dlogp, A->prob, A->hn, W_(L->head), p->tgt, n, D, V, o->temperature, ws);
    }
    OP(rmsnorm_bwd)(dh, G_(L->norm), dh, A->hrow, A->hrstd, W_(L->norm), n, D);
    memset(dx, 0, (size_t)N * D * sizeof(R));
    for (int i = 0; i < n; i++) OP(add_fwd)(dx + (size_t)p->out_row[i] * D, dh + (size_t)i * D, (size_t)D);
    struct FN(bsc) c;
    FN(bsc_alloc)(&c, N, D, HK, KK, t->intermediate, ws);
    for (int l = t->layers - 1; l >= 0; l--) {
        if (o->checkpoint)
            FN(lblk_fwd)(L, w, o, A, l, &A->lb[l], c.out, c.s, N, A->cs, A->sn, p->cu, p->nseq, ws);
        FN(lblk_bwd)(L, w, g, o, A, l, &A->lb[l], dx, &c, N, A->cs, A->sn, p->cu, p->nseq, ws);
    }
    R *gE = G_(L->embed), *dv = NULL;
    int vis = p->nimg && !o->no_vision_grad;
    if (vis) {
        dv = FN(al)(ws, (size_t)A->NM * D);
        memset(dv, 0, (size_t)A->NM * D * sizeof(R));
    }
    if (vis) OP(embed_bwd)(dv, dx, p->img_row, N, D);
    if (gE) { /* text rows only: an image row's gradient went to the vision tower */
        int32_t *tid = (int32_t *)(void *)vr_ws_floats(ws, (size_t)N);
        for (int i = 0; i < N; i++) tid[i] = p->img_row[i] >= 0 ? -1 : p->ids[i];
        OP(embed_bwd)(gE, dx, tid, N, D);
    }
    if (vis) FN(vision_bwd)(L, w, g, A, dv, ws);
}

#undef W_
#undef G_
#undef FN
#undef OP

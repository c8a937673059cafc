/* qwen.c: Qwen2.5-VL forward (see qwen.h), mirroring transformers'
 * modeling_qwen2_5_vl.py op for op in fp32. Every op goes through the seam
 * (ops.h), so the same code runs on any backend. */
#include "qwen.h"

#include <math.h>
#include <string.h>

/* ---- vision ---- */

/* Window order of merged tokens (get_window_index) and the window and full
 * segment boundaries in patch units. */
int vr_vision_window_plan(const struct vr_vision_config *v, int nimg, const int (*grid)[3], int *widx,
                          int *cuw, int *ncuw, int *cuf, int *ncuf)
{
    int ws = v->window / v->merge / v->patch, unit = v->merge * v->merge;
    int nw = 0, nf = 0, off = 0, k = 0;
    cuw[nw++] = 0;
    cuf[nf++] = 0;
    for (int i = 0; i < nimg; i++) {
        int gt = grid[i][0], lh = grid[i][1] / v->merge, lw = grid[i][2] / v->merge;
        int nwh = (lh + ws - lh % ws) / ws, nww = (lw + ws - lw % ws) / ws;
        for (int t = 0; t < gt; t++) {
            for (int wr = 0; wr < nwh; wr++)
                for (int wc = 0; wc < nww; wc++) {
                    int cnt = 0;
                    for (int r = 0; r < ws; r++)
                        for (int c = 0; c < ws; c++) {
                            int rr = wr * ws + r, cc = wc * ws + c;
                            if (rr < lh && cc < lw) {
                                widx[k++] = off + (t * lh + rr) * lw + cc;
                                cnt++;
                            }
                        }
                    if (cnt) { /* empty windows vanish (unique_consecutive) */
                        cuw[nw] = cuw[nw - 1] + cnt * unit;
                        nw++;
                    }
                }
            cuf[nf] = cuf[nf - 1] + grid[i][1] * grid[i][2];
            nf++;
        }
        off += gt * lh * lw;
    }
    *ncuw = nw - 1;
    *ncuf = nf - 1;
    return k;
}

void vr_vision_rope_tables(const struct vr_vision_config *v, int nimg, const int (*grid)[3], float *cos0,
                           float *sin0)
{
    int K = v->hidden / v->heads, nf = K / 4; /* frequencies per axis */
    float inv[VR_MAX_HEAD_DIM / 4];
    VR_ASSERT(nf <= VR_MAX_HEAD_DIM / 4);
    for (int j = 0; j < nf; j++)
        inv[j] = 1.0f / powf((float)v->rope_theta, (float)(2 * j) / (float)(K / 2));
    int p = 0;
    for (int i = 0; i < nimg; i++)
        for (int t = 0; t < grid[i][0]; t++)
            for (int bh = 0; bh < grid[i][1] / v->merge; bh++)
                for (int bw = 0; bw < grid[i][2] / v->merge; bw++)
                    for (int mh = 0; mh < v->merge; mh++)
                        for (int mw = 0; mw < v->merge; mw++, p++) {
                            float hp = (float)(bh * v->merge + mh), wp = (float)(bw * v->merge + mw);
                            float *c = cos0 + (size_t)p * K, *s = sin0 + (size_t)p * K;
                            for (int j = 0; j < nf; j++) {
                                float a = hp * inv[j], b = wp * inv[j];
                                c[j] = c[j + 2 * nf] = cosf(a);
                                s[j] = s[j + 2 * nf] = sinf(a);
                                c[j + nf] = c[j + 3 * nf] = cosf(b);
                                s[j + nf] = s[j + 3 * nf] = sinf(b);
                            }
                        }
}

int vr_vision_fwd(const struct vr_model *m, float *out, const float *pixels, int nimg,
                  const int (*grid)[3], struct vr_ws *ws, struct vr_err *err)
{
    const struct vr_vision_config *v = &m->cfg.vision;
    int D = v->hidden, H = v->heads, K = D / H, unit = v->merge * v->merge;
    int N = 0, nwin = 0, nframes = 0;
    for (int i = 0; i < nimg; i++) {
        if (grid[i][0] <= 0 || grid[i][1] <= 0 || grid[i][2] <= 0 || grid[i][1] % v->merge ||
            grid[i][2] % v->merge)
            return vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                              "image %d: grid [%d, %d, %d] is not a positive multiple of the %d-patch merge",
                              i, grid[i][0], grid[i][1], grid[i][2], v->merge);
        N += grid[i][0] * grid[i][1] * grid[i][2];
        nframes += grid[i][0];
        int wsz = v->window / v->merge / v->patch;
        nwin += grid[i][0] * ((grid[i][1] / v->merge) / wsz + 1) * ((grid[i][2] / v->merge) / wsz + 1);
    }
    int NM = N / unit;
    int *widx = vr_xmalloc(((size_t)NM + 1) * sizeof *widx);
    int *cuw = vr_xmalloc(((size_t)nwin + 2) * sizeof *cuw);
    int *cuf = vr_xmalloc(((size_t)nframes + 2) * sizeof *cuf); /* one bound per frame, and 0 */
    int ncuw, ncuf;
    vr_vision_window_plan(v, nimg, grid, widx, cuw, &ncuw, cuf, &ncuf);

    /* patch embedding: a Conv3d with stride = kernel is a matmul */
    struct vr_tensor pw = *m->patch_embed;
    pw.ndim = 2;
    pw.shape[1] = (int64_t)v->in_chans * v->temporal_patch * v->patch * v->patch;
    float *x0 = vr_ws_floats(ws, (size_t)N * D);
    vr_linear_infer(x0, pixels, &pw, NULL, N, ws);

    /* rotary tables per patch (merge-block order), then both go to window order */
    float *cos0 = vr_ws_floats(ws, (size_t)N * K), *sin0 = vr_ws_floats(ws, (size_t)N * K);
    vr_vision_rope_tables(v, nimg, grid, cos0, sin0);
    float *h = vr_ws_floats(ws, (size_t)N * D), *cs = vr_ws_floats(ws, (size_t)N * K),
          *sn = vr_ws_floats(ws, (size_t)N * K);
    for (int j = 0; j < NM; j++) {
        size_t src = (size_t)widx[j] * unit, dst = (size_t)j * unit;
        memcpy(h + dst * D, x0 + src * D, (size_t)unit * D * sizeof *h);
        memcpy(cs + dst * K, cos0 + src * K, (size_t)unit * K * sizeof *cs);
        memcpy(sn + dst * K, sin0 + src * K, (size_t)unit * K * sizeof *sn);
    }

    float *x = vr_ws_floats(ws, (size_t)N * D), *qkv = vr_ws_floats(ws, (size_t)N * 3 * D),
          *att = vr_ws_floats(ws, (size_t)N * D), *g = vr_ws_floats(ws, (size_t)N * v->intermediate),
          *u = vr_ws_floats(ws, (size_t)N * v->intermediate);
    for (int b = 0; b < v->depth; b++) {
        struct vr_tensor *const *w = m->vblock[b];
        int full = 0;
        for (int i = 0; i < v->nfullatt; i++) full |= v->fullatt[i] == b;
        struct vr_attn_dims ad = {.N = N, .H = H, .KVH = H, .K = K, .q_stride = 3 * D, .kv_stride = 3 * D,
                                  .cu = full ? cuf : cuw, .nseg = full ? ncuf : ncuw};
        vr_rmsnorm_fwd(x, NULL, h, vr_weight_f32(w[VP_NORM1], 1, ws), N, D, 1e-6);
        vr_linear_infer(qkv, x, w[VP_QKV_W], w[VP_QKV_B], N, ws);
        vr_rope_fwd(qkv, cs, sn, N, H, K, 3 * D);     /* q */
        vr_rope_fwd(qkv + D, cs, sn, N, H, K, 3 * D); /* k */
        vr_attn_infer(att, qkv, qkv + D, qkv + 2 * D, &ad, ws);
        vr_linear_infer(x, att, w[VP_PROJ_W], w[VP_PROJ_B], N, ws);
        vr_add_fwd(h, x, (size_t)N * D);
        vr_rmsnorm_fwd(x, NULL, h, vr_weight_f32(w[VP_NORM2], 1, ws), N, D, 1e-6);
        vr_linear_infer(g, x, w[VP_GATE_W], w[VP_GATE_B], N, ws);
        vr_linear_infer(u, x, w[VP_UP_W], w[VP_UP_B], N, ws);
        vr_swiglu_infer(g, g, u, (size_t)N * v->intermediate);
        vr_linear_infer(x, g, w[VP_DOWN_W], w[VP_DOWN_B], N, ws);
        vr_add_fwd(h, x, (size_t)N * D);
    }
    /* merger: norm per patch, 4 patches side by side, MLP, back to raster order */
    vr_rmsnorm_fwd(x, NULL, h, vr_weight_f32(m->merger_ln, 1, ws), N, D, 1e-6);
    int MD = D * unit, O = v->out_hidden;
    float *y0 = vr_ws_floats(ws, (size_t)NM * MD), *y = vr_ws_floats(ws, (size_t)NM * O);
    vr_linear_infer(y0, x, m->merger_w0, m->merger_b0, NM, ws);
    vr_gelu_fwd(y0, y0, (size_t)NM * MD);
    vr_linear_infer(y, y0, m->merger_w2, m->merger_b2, NM, ws);
    for (int j = 0; j < NM; j++) memcpy(out + (size_t)widx[j] * O, y + (size_t)j * O, (size_t)O * sizeof *out);
    free(widx);
    free(cuw);
    free(cuf);
    return 0;
}

/* ---- positions ---- */

int vr_rope_index(int32_t *pos, int *delta, int *nused, const int32_t *ids,
                  const unsigned char *valid, int T, const struct vr_model_config *c, int nimg,
                  const int (*grid)[3], struct vr_err *err)
{
    int merge = c->vision.merge, next = 0, img = 0, nreal = 0, maxp = -1;
    int32_t *pt = pos, *ph = pos + T, *pw = pos + 2 * T;
    for (int i = 0; i < T;) {
        if (valid && !valid[i]) {
            pt[i] = ph[i] = pw[i] = 0;
            i++;
            continue;
        }
        if (ids[i] != c->image_token_id) {
            pt[i] = ph[i] = pw[i] = next;
            if (next > maxp) maxp = next;
            next++, nreal++, i++;
            continue;
        }
        if (img >= nimg)
            return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "more image runs in the prompt than images (%d)",
                              nimg);
        int gt = grid[img][0], lh = grid[img][1] / merge, lw = grid[img][2] / merge;
        int n = gt * lh * lw;
        for (int k = 0; k < n; k++, i++) {
            if (i >= T || ids[i] != c->image_token_id || (valid && !valid[i]))
                return vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                                  "image %d needs %d <|image_pad|> tokens in a row", img, n);
            int t = k / (lh * lw), r = (k / lw) % lh, col = k % lw;
            pt[i] = next + t;
            ph[i] = next + r;
            pw[i] = next + col;
            int mx = pt[i] > ph[i] ? pt[i] : ph[i];
            if (pw[i] > mx) mx = pw[i];
            if (mx > maxp) maxp = mx;
            nreal++;
        }
        next += lh > lw ? lh : lw;
        img++;
    }
    *delta = maxp + 1 - nreal;
    *nused = img;
    return 0;
}

/* ---- decoder ---- */

int vr_kvcache_init(struct vr_kvcache *kv, const struct vr_model_config *c, int B, int cap,
                    struct vr_err *err)
{
    memset(kv, 0, sizeof *kv);
    kv->layers = c->text.layers;
    kv->B = B;
    kv->cap = cap;
    kv->kvh = c->text.kv_heads;
    kv->hd = c->text.head_dim;
    size_t n = (size_t)kv->layers * B * kv->kvh * cap * kv->hd;
    kv->k = calloc(n, sizeof(float));
    kv->v = calloc(n, sizeof(float));
    kv->valid = calloc((size_t)B * cap, 1);
    kv->len = calloc((size_t)B, sizeof(int));
    kv->nreal = calloc((size_t)B, sizeof(int));
    kv->delta = calloc((size_t)B, sizeof(int));
    if (!kv->k || !kv->v || !kv->valid || !kv->len || !kv->nreal || !kv->delta) {
        vr_kvcache_release(kv);
        return vr_err_set(err, VR_ERR_SYS, NULL, 0, "out of memory for a KV cache of %d x %d tokens", B,
                          cap);
    }
    return 0;
}

void vr_kvcache_release(struct vr_kvcache *kv)
{
    free(kv->k);
    free(kv->v);
    free(kv->valid);
    free(kv->len);
    free(kv->nreal);
    free(kv->delta);
    memset(kv, 0, sizeof *kv);
}

static float *kv_at(const struct vr_kvcache *kv, float *base, int l, int b, int h)
{
    return base + ((((size_t)l * kv->B + b) * kv->kvh + h) * kv->cap) * kv->hd;
}

void vr_kvcache_copy_seq(struct vr_kvcache *dst, int db, const struct vr_kvcache *src, int sb)
{
    int n = src->len[sb];
    VR_ASSERT(n <= dst->cap && dst->layers == src->layers && dst->kvh == src->kvh && dst->hd == src->hd);
    for (int l = 0; l < src->layers; l++)
        for (int h = 0; h < src->kvh; h++) {
            memcpy(kv_at(dst, dst->k, l, db, h), kv_at(src, src->k, l, sb, h), (size_t)n * src->hd * 4);
            memcpy(kv_at(dst, dst->v, l, db, h), kv_at(src, src->v, l, sb, h), (size_t)n * src->hd * 4);
        }
    memcpy(dst->valid + (size_t)db * dst->cap, src->valid + (size_t)sb * src->cap, (size_t)n);
    dst->len[db] = n;
    dst->nreal[db] = src->nreal[sb];
    dst->delta[db] = src->delta[sb];
}

/* M-RoPE tables for rows with positions pos (3, M): cos, sin (M, hd). */
void vr_mrope_tables(float *cs, float *sn, const int32_t *pos, int M, int stride,
                     const struct vr_text_config *t)
{
    int K = t->head_dim, h2 = K / 2;
    float inv[VR_MAX_HEAD_DIM / 2];
    VR_ASSERT(h2 <= VR_MAX_HEAD_DIM / 2);
    for (int j = 0; j < h2; j++) inv[j] = 1.0f / powf((float)t->rope_theta, (float)(2 * j) / (float)K);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < h2; j++) {
            int sec = j < t->mrope[0] ? 0 : j < t->mrope[0] + t->mrope[1] ? 1 : 2;
            float a = (float)pos[(size_t)sec * stride + i] * inv[j];
            cs[(size_t)i * K + j] = cs[(size_t)i * K + j + h2] = cosf(a);
            sn[(size_t)i * K + j] = sn[(size_t)i * K + j + h2] = sinf(a);
        }
}

/* out (M,N) = x . w^T + b; decode steps always take the GEMV path so a row's
 * result never depends on how many rows share the step. */
static void lin(float *out, const float *x, const struct vr_tensor *w, const struct vr_tensor *b, int M,
                int decode, struct vr_ws *ws)
{
    if (decode) vr_gemv_infer(out, x, w, b, M, ws);
    else vr_linear_infer(out, x, w, b, M, ws);
}

/* The layers over M = B*T rows of hidden state x; element b's tokens go to
 * cache row rows[b] (rows NULL: b) at slots [start[b], start[b]+T), and it
 * attends over its own row. */
static void decoder(const struct vr_model *m, struct vr_kvcache *kv, float *x, int B, int T,
                    const int *rows, const int *start, const float *cs, const float *sn, struct vr_ws *ws)
{
    int dec = T == 1;
    const struct vr_text_config *t = &m->cfg.text;
    int M = B * T, D = t->hidden, H = t->heads, KVH = t->kv_heads, K = t->head_dim, I = t->intermediate;
    float *y = vr_ws_floats(ws, (size_t)M * D), *q = vr_ws_floats(ws, (size_t)M * H * K),
          *kk = vr_ws_floats(ws, (size_t)M * KVH * K), *vv = vr_ws_floats(ws, (size_t)M * KVH * K),
          *att = vr_ws_floats(ws, (size_t)M * H * K), *g = vr_ws_floats(ws, (size_t)M * I),
          *u = vr_ws_floats(ws, (size_t)M * I);
    for (int l = 0; l < t->layers; l++) {
        struct vr_tensor *const *w = m->layer[l];
        vr_rmsnorm_fwd(y, NULL, x, vr_weight_f32(w[LP_IN_NORM], 1, ws), M, D, t->eps);
        lin(q, y, w[LP_Q_W], w[LP_Q_B], M, dec, ws);
        lin(kk, y, w[LP_K_W], w[LP_K_B], M, dec, ws);
        lin(vv, y, w[LP_V_W], w[LP_V_B], M, dec, ws);
        vr_rope_fwd(q, cs, sn, M, H, K, H * K);
        vr_rope_fwd(kk, cs, sn, M, KVH, K, KVH * K);
        for (int b = 0; b < B; b++) {
            int r = rows ? rows[b] : b, s0 = start[b];
            for (int i = 0; i < T; i++)
                for (int h = 0; h < KVH; h++) {
                    size_t row = ((size_t)b * T + i) * KVH * K + (size_t)h * K;
                    memcpy(kv_at(kv, kv->k, l, r, h) + (size_t)(s0 + i) * K, kk + row, (size_t)K * 4);
                    memcpy(kv_at(kv, kv->v, l, r, h) + (size_t)(s0 + i) * K, vv + row, (size_t)K * 4);
                }
            struct vr_attn_dims ad = {.N = T, .H = H, .KVH = KVH, .K = K, .q_stride = H * K, .causal = 1,
                                      .cap = kv->cap, .nkeys = s0 + T, .q0 = s0,
                                      .valid = kv->valid + (size_t)r * kv->cap};
            vr_attn_infer(att + (size_t)b * T * H * K, q + (size_t)b * T * H * K, kv_at(kv, kv->k, l, r, 0),
                          kv_at(kv, kv->v, l, r, 0), &ad, ws);
        }
        lin(y, att, w[LP_O_W], NULL, M, dec, ws);
        vr_add_fwd(x, y, (size_t)M * D);
        vr_rmsnorm_fwd(y, NULL, x, vr_weight_f32(w[LP_POST_NORM], 1, ws), M, D, t->eps);
        lin(g, y, w[LP_GATE_W], NULL, M, dec, ws);
        lin(u, y, w[LP_UP_W], NULL, M, dec, ws);
        vr_swiglu_infer(g, g, u, (size_t)M * I);
        lin(y, g, w[LP_DOWN_W], NULL, M, dec, ws);
        vr_add_fwd(x, y, (size_t)M * D);
    }
}

/* x (M, D) = embed[ids]; fails on an id outside the vocabulary. */
static int embed_rows(const struct vr_model *m, float *x, const int32_t *ids, int M, struct vr_err *err)
{
    for (int i = 0; i < M; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.text.vocab)
            return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "token id %d is outside the vocabulary (%d)", ids[i],
                              m->cfg.text.vocab);
    vr_embed_infer(x, m->embed, ids, M);
    return 0;
}

static void head(const struct vr_model *m, float *logits, const float *x, int M, int decode,
                 struct vr_ws *ws)
{
    const struct vr_text_config *t = &m->cfg.text;
    float *y = vr_ws_floats(ws, (size_t)M * t->hidden);
    vr_rmsnorm_fwd(y, NULL, x, vr_weight_f32(m->norm, 1, ws), M, t->hidden, t->eps);
    lin(logits, y, m->lm_head, NULL, M, decode, ws);
}

int vr_lm_prefill(const struct vr_model *m, struct vr_kvcache *kv, float *logits, int all_logits,
                  const int32_t *ids, const unsigned char *mask, int B, int T, const float *img,
                  int n_img, int nimg, const int (*grid)[3], struct vr_ws *ws, struct vr_err *err)
{
    const struct vr_text_config *t = &m->cfg.text;
    int D = t->hidden, M = B * T;
    if (B > kv->B || T > kv->cap)
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "prefill of %d x %d tokens exceeds the cache (%d x %d)",
                          B, T, kv->B, kv->cap);
    float *x = vr_ws_floats(ws, (size_t)M * D);
    if (embed_rows(m, x, ids, M, err)) return -1;
    int32_t *pos = (int32_t *)vr_ws_floats(ws, (size_t)3 * M);
    int used = 0, row = 0;
    for (int b = 0; b < B; b++) {
        int nu;
        int32_t *pb = (int32_t *)vr_ws_floats(ws, (size_t)3 * T);
        if (vr_rope_index(pb, &kv->delta[b], &nu, ids + (size_t)b * T, mask ? mask + (size_t)b * T : NULL,
                          T, &m->cfg, nimg - used, grid + used, err))
            return vr_err_locate(err, "prompt", b + 1);
        used += nu;
        for (int c = 0; c < 3; c++) memcpy(pos + (size_t)c * M + (size_t)b * T, pb + (size_t)c * T, (size_t)T * 4);
        kv->len[b] = T;
        kv->nreal[b] = 0;
        for (int i = 0; i < T; i++) {
            int ok = !mask || mask[(size_t)b * T + i];
            kv->valid[(size_t)b * kv->cap + i] = (unsigned char)ok;
            kv->nreal[b] += ok;
            if (ok && ids[(size_t)b * T + i] == m->cfg.image_token_id) {
                if (row >= n_img)
                    return vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                                      "more <|image_pad|> tokens than image embeddings (%d)", n_img);
                memcpy(x + ((size_t)b * T + i) * D, img + (size_t)row * D, (size_t)D * 4);
                row++;
            }
        }
    }
    if (row != n_img)
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "%d <|image_pad|> tokens for %d image embeddings", row,
                          n_img);
    float *cs = vr_ws_floats(ws, (size_t)M * t->head_dim), *sn = vr_ws_floats(ws, (size_t)M * t->head_dim);
    vr_mrope_tables(cs, sn, pos, M, M, t);
    int *zero = (int *)vr_ws_floats(ws, (size_t)B);
    memset(zero, 0, (size_t)B * sizeof *zero);
    decoder(m, kv, x, B, T, NULL, zero, cs, sn, ws);
    if (all_logits) {
        head(m, logits, x, M, 0, ws);
    } else {
        float *last = vr_ws_floats(ws, (size_t)B * D);
        for (int b = 0; b < B; b++)
            memcpy(last + (size_t)b * D, x + ((size_t)b * T + T - 1) * D, (size_t)D * 4);
        head(m, logits, last, B, 1, ws);
    }
    return 0;
}

int vr_lm_decode_rows(const struct vr_model *m, struct vr_kvcache *kv, float *logits, const int32_t *ids,
                      const int *rows, int n, struct vr_ws *ws, struct vr_err *err)
{
    const struct vr_text_config *t = &m->cfg.text;
    int D = t->hidden;
    for (int b = 0; b < n; b++) {
        int r = rows ? rows[b] : b;
        if (r < 0 || r >= kv->B)
            return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "cache row %d does not exist", r);
        if (kv->len[r] >= kv->cap)
            return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "the KV cache row %d is full (%d tokens)", r, kv->cap);
    }
    float *x = vr_ws_floats(ws, (size_t)n * D);
    if (embed_rows(m, x, ids, n, err)) return -1;
    int32_t *pos = (int32_t *)vr_ws_floats(ws, (size_t)3 * n);
    int *start = (int *)vr_ws_floats(ws, (size_t)n);
    for (int b = 0; b < n; b++) {
        int r = rows ? rows[b] : b;
        int p = kv->nreal[r] + kv->delta[r];
        pos[b] = pos[n + b] = pos[2 * n + b] = p;
        start[b] = kv->len[r];
        kv->valid[(size_t)r * kv->cap + kv->len[r]] = 1;
    }
    float *cs = vr_ws_floats(ws, (size_t)n * t->head_dim), *sn = vr_ws_floats(ws, (size_t)n * t->head_dim);
    vr_mrope_tables(cs, sn, pos, n, n, t);
    decoder(m, kv, x, n, 1, rows, start, cs, sn, ws);
    for (int b = 0; b < n; b++) {
        int r = rows ? rows[b] : b;
        kv->len[r]++;
        kv->nreal[r]++;
    }
    head(m, logits, x, n, 1, ws);
    return 0;
}

int vr_lm_decode(const struct vr_model *m, struct vr_kvcache *kv, float *logits, const int32_t *ids,
                 struct vr_ws *ws, struct vr_err *err)
{
    return vr_lm_decode_rows(m, kv, logits, ids, NULL, kv->B, ws, err);
}

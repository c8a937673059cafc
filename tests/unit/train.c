/* train.c: the whole training pass, checked in float64 against central
 * finite differences: for every parameter tensor, the directional derivative
 * of L = sum_i c_i * logp_i along a random direction equals its gradient's
 * projection to 1e-6 relative. The pack has two images (one with four
 * windows of unequal size, so window and full attention differ), M-RoPE
 * positions, three packed sequences sharing images, and both tied and untied
 * heads. Also: activation checkpointing gives bit-identical gradients, the
 * f32 pass agrees with f64, and a frozen vision tower gets no gradient. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qwen.h"
#include "rng.h"
#include "train.h"

#include "../tap.h"

static uint64_t rs = 88172645463325252ull;
static double urand(void) /* xorshift, [-1, 1) */
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (double)(rs >> 11) / (double)(1ull << 52) - 1.0;
}

static void config(struct vr_model_config *c, int tie)
{
    memset(c, 0, sizeof *c);
    c->text = (struct vr_text_config){.hidden = 32, .layers = 2, .heads = 4, .kv_heads = 2, .head_dim = 8,
                                      .intermediate = 24, .vocab = 40, .eps = 1e-6, .rope_theta = 10000.0,
                                      .mrope = {1, 1, 2}, .tie = tie};
    c->vision = (struct vr_vision_config){.depth = 2, .hidden = 16, .heads = 2, .intermediate = 24, .out_hidden = 32,
                                          .patch = 2, .temporal_patch = 2, .merge = 2, .window = 16, .in_chans = 3,
                                          .nfullatt = 1, .fullatt = {1}, .rope_theta = 10000.0};
    c->image_token_id = 37;
    c->video_token_id = 38;
    c->vision_start_id = 35;
    c->vision_end_id = 36;
    c->eos_id = 39;
}

/* Two images: 1x10x10 patches (25 merged tokens; windows of 4x4 merged
 * tokens: 16, 4, 4, 1) and 1x4x6 (6 merged). Sequences: two on image 0, one
 * on image 1. */
static void make_pack(struct vr_pack *p, const struct vr_model_config *c)
{
    static const int grid[2][3] = {{1, 10, 10}, {1, 4, 6}};
    int text[3] = {7, 5, 9}, img_of[3] = {0, 0, 1}, nm[2] = {25, 6}, cols = 3 * 2 * 2 * 2;
    memset(p, 0, sizeof *p);
    p->nseq = 3;
    p->nimg = 2;
    p->grid = malloc(sizeof grid);
    memcpy(p->grid, grid, sizeof grid);
    p->npatch = 100 + 24;
    p->pixels = malloc((size_t)p->npatch * cols * sizeof *p->pixels);
    for (int i = 0; i < p->npatch * cols; i++) p->pixels[i] = (float)urand();
    p->cu = malloc(4 * sizeof *p->cu);
    p->cu[0] = 0;
    for (int s = 0; s < 3; s++) p->cu[s + 1] = p->cu[s] + 3 + nm[img_of[s]] + text[s];
    p->N = p->cu[3];
    p->ids = malloc((size_t)p->N * sizeof *p->ids);
    p->img_row = malloc((size_t)p->N * sizeof *p->img_row);
    p->pos = malloc((size_t)3 * p->N * sizeof *p->pos);
    p->out_row = malloc((size_t)p->N * sizeof *p->out_row);
    p->tgt = malloc((size_t)p->N * sizeof *p->tgt);
    int32_t pos1[3 * 64];
    for (int s = 0; s < 3; s++) {
        int at = p->cu[s], n = p->cu[s + 1] - at, k = 0, base = img_of[s] ? 25 : 0;
        int32_t *id = p->ids + at;
        id[0] = 3;
        id[1] = c->vision_start_id;
        for (int j = 0; j < nm[img_of[s]]; j++) id[2 + j] = c->image_token_id;
        id[2 + nm[img_of[s]]] = c->vision_end_id;
        for (int j = 3 + nm[img_of[s]]; j < n; j++) id[j] = (int32_t)((rs = rs * 6364136223846793005ull + 1) >> 59) + 1;
        for (int j = 0; j < n; j++) p->img_row[at + j] = id[j] == c->image_token_id ? base + k++ : -1;
        int delta, nused;
        struct vr_err err;
        VR_ASSERT(vr_rope_index(pos1, &delta, &nused, id, NULL, n, c, 1, &grid[img_of[s]], &err) == 0);
        for (int d = 0; d < 3; d++) memcpy(p->pos + (size_t)d * p->N + at, pos1 + d * n, (size_t)n * 4);
        /* score the text after the image, the last few tokens of the prompt and the "completion" */
        for (int j = 3 + nm[img_of[s]] - 1; j < n - 1; j++) {
            p->out_row[p->nout] = at + j;
            p->tgt[p->nout++] = id[j + 1];
        }
    }
}

static double loss64(const struct vr_layout *L, const double *w, const struct vr_pack *p, const double *c,
                     const struct vr_train_opts *o, struct vr_ws *ws)
{
    vr_ws_reset(ws);
    double *lp = (double *)(void *)vr_ws_floats(ws, 2 * (size_t)p->nout + 2);
    vr_train_fwd_f64(L, w, p, o, lp, NULL, ws);
    double s = 0;
    for (int i = 0; i < p->nout; i++) s += c[i] * lp[i];
    return s;
}

/* Central differences of fourth order (error O(h^4)), so a step large
 * enough to keep rounding small is still exact enough: f at -2h, -h, h, 2h. */
#define FD_H 1e-4
static const double STEP[4] = {-2, -1, 1, 2};
static double fd(const double f[4]) { return (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * FD_H); }

static void run(int tie)
{
    struct vr_model m = {0};
    config(&m.cfg, tie);
    vr_model_params(&m);
    struct vr_layout L;
    vr_layout_init(&L, &m);
    struct vr_pack p;
    make_pack(&p, &m.cfg);
    double *w = calloc(L.total, sizeof *w), *g = calloc(L.total, sizeof *g), *dir = calloc(L.total, sizeof *dir);
    double *wp = malloc(L.total * sizeof *wp);
    for (int i = 0; i < L.np; i++) {
        if (m.params[i].tied) continue;
        int norm = strstr(m.params[i].name, "norm") || strstr(m.params[i].name, "ln_q");
        for (size_t j = 0; j < L.n[i]; j++) w[L.off[i] + j] = norm ? 1 + 0.2 * urand() : 0.3 * urand();
        if (i == L.patch) /* patches are wide: keep the vision activations O(1) */
            for (size_t j = 0; j < L.n[i]; j++) w[L.off[i] + j] *= 0.3;
    }
    double *c = malloc((size_t)p.nout * sizeof *c);
    for (int i = 0; i < p.nout; i++) c[i] = urand();
    struct vr_ws ws = {0};
    struct vr_train_opts o = {.temperature = 0.9};
    double *lp = (double *)(void *)vr_ws_floats(&ws, 2 * (size_t)p.nout + 2);
    struct vr_train_act *act = vr_train_fwd_f64(&L, w, &p, &o, lp, NULL, &ws);
    vr_train_bwd_f64(&L, w, g, &p, &o, act, c, &ws);
    double worst = 0;
    for (int i = 0; i < L.np; i++) {
        if (m.params[i].tied) continue;
        double dd = 0, an = 0, f[4];
        for (size_t j = 0; j < L.n[i]; j++) dir[j] = urand();
        for (size_t j = 0; j < L.n[i]; j++) an += g[L.off[i] + j] * dir[j];
        memcpy(wp, w, L.total * sizeof *wp);
        for (int k = 0; k < 4; k++) {
            for (size_t j = 0; j < L.n[i]; j++) wp[L.off[i] + j] = w[L.off[i] + j] + STEP[k] * FD_H * dir[j];
            f[k] = loss64(&L, wp, &p, c, &o, &ws);
        }
        dd = fd(f);
        double rel = fabs(dd - an) / fmax(fabs(dd), 1e-300);
        if (rel > worst) worst = rel;
        ok(rel <= 1e-6 && an != 0, "%s %s: analytic %.12g, finite difference %.12g, rel err %.2e",
           tie ? "tied" : "untied", m.params[i].name, an, dd, rel);
    }
    diag("worst relative error %.2e", worst);

    /* activation checkpointing recomputes the same numbers */
    double *g2 = calloc(L.total, sizeof *g2);
    struct vr_train_opts oc = o;
    oc.checkpoint = 1;
    vr_ws_reset(&ws);
    lp = (double *)(void *)vr_ws_floats(&ws, 2 * (size_t)p.nout + 2);
    act = vr_train_fwd_f64(&L, w, &p, &oc, lp, NULL, &ws);
    vr_train_bwd_f64(&L, w, g2, &p, &oc, act, c, &ws);
    ok(memcmp(g, g2, L.total * sizeof *g) == 0, "%s: checkpointed activations give bit-identical gradients",
       tie ? "tied" : "untied");

    /* f32 agrees with f64 */
    float *wf = calloc(L.total, sizeof *wf), *gf = calloc(L.total, sizeof *gf), *cf = malloc((size_t)p.nout * 4);
    for (size_t j = 0; j < L.total; j++) wf[j] = (float)w[j];
    for (int i = 0; i < p.nout; i++) cf[i] = (float)c[i];
    vr_ws_reset(&ws);
    float *lpf = vr_ws_floats(&ws, (size_t)p.nout + 1);
    act = vr_train_fwd_f32(&L, wf, &p, &o, lpf, NULL, &ws);
    vr_train_bwd_f32(&L, wf, gf, &p, &o, act, cf, &ws);
    double md = 0, mg = 0;
    for (size_t j = 0; j < L.total; j++) {
        md = fmax(md, fabs(gf[j] - g[j]));
        mg = fmax(mg, fabs(g[j]));
    }
    ok(md / mg < 1e-4, "%s: f32 gradients within %.1e of f64", tie ? "tied" : "untied", md / mg);

    /* a frozen vision tower: no vision gradient, the same text gradient */
    struct vr_train_opts of = o;
    of.no_vision_grad = 1;
    memset(g2, 0, L.total * sizeof *g2);
    vr_ws_reset(&ws);
    lp = (double *)(void *)vr_ws_floats(&ws, 2 * (size_t)p.nout + 2);
    act = vr_train_fwd_f64(&L, w, &p, &of, lp, NULL, &ws);
    vr_train_bwd_f64(&L, w, g2, &p, &of, act, c, &ws);
    int vis0 = 1, same = 1;
    for (int i = 0; i < L.np; i++) {
        if (m.params[i].tied) continue;
        int vis = strncmp(m.params[i].name, "visual.", 7) == 0;
        for (size_t j = 0; j < L.n[i]; j++) {
            if (vis && g2[L.off[i] + j] != 0) vis0 = 0;
            if (!vis && g2[L.off[i] + j] != g[L.off[i] + j]) same = 0;
        }
    }
    ok(vis0 && same, "%s: --freeze-vision: zero vision gradient, text gradient unchanged", tie ? "tied" : "untied");

    /* LoRA on every decoder linear and lm_head, with dropout: the adapters'
     * gradients against finite differences too */
    struct vr_lora lo;
    vr_lora_init(&lo, &m, 2, 3.0, 0.25, 0, 5);
    lo.step = 3;
    double *aw = calloc(lo.total, sizeof *aw), *ag = calloc(lo.total, sizeof *ag), *ap = malloc(lo.total * sizeof *ap);
    for (size_t j = 0; j < lo.total; j++) aw[j] = 0.3 * urand();
    struct vr_train_opts ol = o;
    ol.lora = &lo;
    ol.lw = aw;
    ol.lg = ag;
    memset(g2, 0, L.total * sizeof *g2);
    vr_ws_reset(&ws);
    lp = (double *)(void *)vr_ws_floats(&ws, 2 * (size_t)p.nout + 2);
    act = vr_train_fwd_f64(&L, w, &p, &ol, lp, NULL, &ws);
    vr_train_bwd_f64(&L, w, g2, &p, &ol, act, c, &ws);
    double lworst = 0;
    int lbad = 0;
    for (int k = 0; k < 2 * lo.n; k++) {
        size_t n = (size_t)(lo.tab[k].shape[0] * lo.tab[k].shape[1]), off = lo.off[k];
        double an = 0, f[4];
        for (size_t j = 0; j < n; j++) dir[j] = urand();
        for (size_t j = 0; j < n; j++) an += ag[off + j] * dir[j];
        struct vr_train_opts op = ol;
        op.lg = NULL;
        op.lw = ap;
        memcpy(ap, aw, lo.total * sizeof *ap);
        for (int q = 0; q < 4; q++) {
            for (size_t j = 0; j < n; j++) ap[off + j] = aw[off + j] + STEP[q] * FD_H * dir[j];
            f[q] = loss64(&L, w, &p, c, &op, &ws);
        }
        double dd = fd(f), rel = fabs(dd - an) / fmax(fabs(dd), 1e-300);
        if (rel > lworst) lworst = rel;
        if (!(rel <= 1e-6) || an == 0) {
            lbad++;
            diag("%s: analytic %.12g, finite difference %.12g", lo.tab[k].name, an, dd);
        }
    }
    ok(lbad == 0 && lo.n == 2 * 7 + 1, "%s: LoRA (r 2, dropout 0.25) on %d linears: every adapter's gradient "
       "within %.2e of finite differences", tie ? "tied" : "untied", lo.n, lworst);
    free(aw);
    free(ag);
    free(ap);
    vr_lora_release(&lo);

    free(g2);
    free(wf);
    free(gf);
    free(cf);
    free(c);
    free(w);
    free(g);
    free(wp);
    free(dir);
    vr_ws_release(&ws);
    vr_pack_release(&p);
    vr_layout_release(&L);
    vr_model_release(&m);
}

int main(void)
{
    run(0);
    run(1);
    return done_testing();
}

/* train.c: the training pass (train.h): the parameter layout, and the
 * model code of train_impl.h compiled for float (vr-update) and double (the
 * gradient check). */
#include "train.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "qwen.h"
#include "rng.h"

static int param_index(const struct vr_model *m, const struct vr_tensor *t)
{
    const struct vr_param *p = (const struct vr_param *)(const void *)((const char *)t - offsetof(struct vr_param, t));
    VR_ASSERT(p >= m->params && p < m->params + m->nparams);
    return (int)(p - m->params);
}

void vr_layout_init(struct vr_layout *L, const struct vr_model *m)
{
    memset(L, 0, sizeof *L);
    L->cfg = m->cfg;
    L->np = m->nparams;
    L->p = m->params;
    L->off = vr_xcalloc((size_t)L->np, sizeof *L->off);
    L->n = vr_xcalloc((size_t)L->np, sizeof *L->n);
    L->train = vr_xcalloc((size_t)L->np, 1);
    L->patch = param_index(m, m->patch_embed);
    L->vb = vr_xcalloc((size_t)m->cfg.vision.depth, sizeof *L->vb);
    for (int b = 0; b < m->cfg.vision.depth; b++)
        for (int r = 0; r < VP_COUNT; r++) L->vb[b][r] = param_index(m, m->vblock[b][r]);
    L->mln = param_index(m, m->merger_ln);
    L->mw0 = param_index(m, m->merger_w0);
    L->mb0 = param_index(m, m->merger_b0);
    L->mw2 = param_index(m, m->merger_w2);
    L->mb2 = param_index(m, m->merger_b2);
    L->embed = param_index(m, m->embed);
    L->ly = vr_xcalloc((size_t)m->cfg.text.layers, sizeof *L->ly);
    for (int l = 0; l < m->cfg.text.layers; l++)
        for (int r = 0; r < LP_COUNT; r++) L->ly[l][r] = param_index(m, m->layer[l][r]);
    L->norm = param_index(m, m->norm);
    L->head = -1;
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i].name, "lm_head.weight") == 0) L->head = i;
    VR_ASSERT(L->head >= 0);
    size_t off = 0;
    for (int i = 0; i < L->np; i++) {
        size_t n = 1;
        for (int d = 0; d < m->params[i].ndim; d++) n *= (size_t)m->params[i].shape[d];
        L->n[i] = n;
        L->train[i] = 1;
        if (m->params[i].tied) continue;
        L->off[i] = off;
        off += (n + 15) & ~(size_t)15; /* each tensor 64-byte aligned */
    }
    if (m->params[L->head].tied) L->off[L->head] = L->off[L->embed];
    L->total = off;
}

void vr_layout_release(struct vr_layout *L)
{
    free(L->off);
    free(L->n);
    free(L->train);
    free(L->vb);
    free(L->ly);
    memset(L, 0, sizeof *L);
}

void vr_layout_gather(const struct vr_layout *L, const struct vr_model *m, float *w)
{
    memset(w, 0, L->total * sizeof *w);
    for (int i = 0; i < L->np; i++)
        if (!m->params[i].tied)
            vr_convert_to_f32(w + L->off[i], m->params[i].t.data, m->params[i].t.dtype, L->n[i]);
}

static void grow(void **a, size_t *cap, size_t need)
{
    if (need <= *cap) return;
    free(*a);
    *a = vr_xmalloc(need);
    *cap = need;
}

void vr_pack_reserve(struct vr_pack *p, int N, int nseq, int nout, int nimg, int npatch, int cols)
{
    size_t n = (size_t)N + 1;
    grow((void **)&p->cu, &p->cap[0], ((size_t)nseq + 1) * sizeof *p->cu);
    if (n * sizeof(int32_t) * 3 > p->cap[1]) { /* the per-row arrays together */
        free(p->ids);
        free(p->pos);
        free(p->img_row);
        p->ids = vr_xmalloc(n * sizeof *p->ids);
        p->pos = vr_xmalloc(3 * n * sizeof *p->pos);
        p->img_row = vr_xmalloc(n * sizeof *p->img_row);
        p->cap[1] = n * sizeof(int32_t) * 3;
    }
    if (((size_t)nout + 1) * sizeof(int) > p->cap[2]) {
        free(p->out_row);
        free(p->tgt);
        p->out_row = vr_xmalloc(((size_t)nout + 1) * sizeof *p->out_row);
        p->tgt = vr_xmalloc(((size_t)nout + 1) * sizeof *p->tgt);
        p->cap[2] = ((size_t)nout + 1) * sizeof(int);
    }
    grow((void **)&p->grid, &p->cap[3], ((size_t)nimg + 1) * sizeof *p->grid);
    grow((void **)&p->pixels, &p->cap[4], ((size_t)npatch + 1) * cols * sizeof *p->pixels);
}

void vr_pack_release(struct vr_pack *p)
{
    free(p->cu);
    free(p->ids);
    free(p->pos);
    free(p->grid);
    free(p->pixels);
    free(p->img_row);
    free(p->out_row);
    free(p->tgt);
    memset(p, 0, sizeof *p);
}

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

#define R float
#define S f32
#define OPSUF
#include "train_impl.h"
#undef R
#undef S
#undef OPSUF

#define R double
#define S f64
#define OPSUF _f64
#include "train_impl.h"
#undef R
#undef S
#undef OPSUF

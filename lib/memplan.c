/* memplan.c: the memory plan of a training run (see memplan.h). */
#include "memplan.h"

#include <stdlib.h>
#include <string.h>

void vr_memplan_opts_init(struct vr_memplan_opts *o)
{
    *o = (struct vr_memplan_opts){.checkpoint = 1, .batch_tokens = 16384, .logits_rows = 1024,
                                  .weight_bytes = 2, .master_bytes = 4, .moment_bytes = 4, .act_bytes = 4};
}

static void row(struct vr_memplan *p, const char *what, double bytes)
{
    if (p->n == VR_MEMPLAN_ROWS) return;
    snprintf(p->row[p->n].what, sizeof p->row[p->n].what, "%s", what);
    p->row[p->n++].bytes = bytes;
    p->total += bytes;
}

static int64_t numel(const struct vr_param *q)
{
    int64_t n = 1;
    for (int d = 0; d < q->ndim; d++) n *= q->shape[d];
    return n;
}

/* LoRA's trained parameters: r (in + out) for the decoder's q/k/v/o/gate/up/
 * down and lm_head (DESIGN.md §6) */
static int64_t lora_params(const struct vr_model *m, int r)
{
    int64_t n = 0;
    for (int l = 0; l < m->cfg.text.layers; l++)
        for (int role = 0; role < LP_COUNT; role++) {
            const struct vr_tensor *t = m->layer[l][role];
            if (t->ndim == 2) n += (int64_t)r * (t->shape[0] + t->shape[1]);
        }
    return n + (int64_t)r * (m->lm_head->shape[0] + m->lm_head->shape[1]);
}

void vr_memplan_make(const struct vr_model_config *c, const struct vr_memplan_opts *o, struct vr_memplan *p)
{
    memset(p, 0, sizeof *p);
    struct vr_model m;
    memset(&m, 0, sizeof m);
    m.cfg = *c;
    vr_model_params(&m);
    for (int i = 0; i < m.nparams; i++) {
        /* shapes only: the views hold no data, so point them at their param */
        m.params[i].t.ndim = m.params[i].ndim;
        memcpy(m.params[i].t.shape, m.params[i].shape, sizeof m.params[i].shape);
    }
    int64_t vision = 0;
    for (int i = 0; i < m.nparams; i++) {
        if (m.params[i].tied) continue;
        int64_t n = numel(&m.params[i]);
        p->params += n;
        if (!strncmp(m.params[i].name, "visual.", 7)) vision += n;
    }
    p->trainable = o->lora_r ? lora_params(&m, o->lora_r) : p->params - (o->freeze_vision ? vision : 0);
    const struct vr_text_config *t = &c->text;
    const struct vr_vision_config *v = &c->vision;
    double P = (double)p->params, T = (double)p->trainable;
    char what[64];
    snprintf(what, sizeof what, "weights (%d-byte)", o->weight_bytes);
    row(p, what, P * o->weight_bytes);
    if (o->lora_r) row(p, "LoRA adapters (fp32)", T * 4);
    else if (o->master_bytes) row(p, "master weights (fp32)", T * o->master_bytes);
    row(p, "gradients (fp32)", T * 4);
    snprintf(what, sizeof what, "AdamW moments (2 x %d-byte)", o->moment_bytes);
    row(p, what, T * 2 * o->moment_bytes);
    if (o->ref && !o->lora_r) row(p, "reference model", P * o->weight_bytes); /* LoRA: the base, adapters off */
    /* saved activations per token and layer: block input, normed input, q k v,
     * attention out and lse, post-attention residual and norm, gate, up, SwiGLU */
    double D = t->hidden, kv = (double)t->kv_heads * t->head_dim, I = t->intermediate;
    double per_layer = 4 * D + 2 * kv + t->heads + 3 * I + 2;
    double Dv = v->hidden, Iv = v->intermediate;
    double per_vlayer = 6 * Dv + v->heads + 3 * Iv + 2;
    double tok = (double)o->batch_tokens, pat = (double)o->image_patches;
    double act;
    if (o->checkpoint) /* block inputs, plus one block's set while it is recomputed */
        act = tok * (t->layers * D + per_layer) + pat * (v->depth * Dv + per_vlayer);
    else
        act = tok * t->layers * per_layer + pat * v->depth * per_vlayer;
    snprintf(what, sizeof what, "activations (%s)", o->checkpoint ? "checkpointed" : "all saved");
    row(p, what, act * o->act_bytes);
    int rows = (int)(o->logits_rows < tok ? o->logits_rows : tok);
    row(p, "LM-head logits chunk (fp32)", (double)rows * t->vocab * 4 + (double)rows * D * 4);
    row(p, "cuBLASLt workspace", 32.0 * (1 << 20));
    free(m.params);
    free(m.vblock);
    free(m.layer);
}

void vr_memplan_print(const struct vr_memplan *p, double gpu_bytes, FILE *f)
{
    fprintf(f, "parameters: %.3f B, trained: %.3f B\n", p->params / 1e9, p->trainable / 1e9);
    const double G = 1 << 30;
    for (int i = 0; i < p->n; i++) fprintf(f, "  %-34s %9.2f GiB\n", p->row[i].what, p->row[i].bytes / G);
    fprintf(f, "  %-34s %9.2f GiB\n", "total", p->total / G);
    if (gpu_bytes > 0)
        fprintf(f, "%s %.1f GiB of GPU memory (%.1f GiB %s)\n", p->total <= gpu_bytes ? "fits in" : "does NOT fit in",
                gpu_bytes / G, (gpu_bytes > p->total ? gpu_bytes - p->total : p->total - gpu_bytes) / G,
                p->total <= gpu_bytes ? "left" : "over");
}

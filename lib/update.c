/* update.c: scored lines -> the gradient of one optimizer step (update.h).
 * The losses are VLM-R1's (grpo_trainer.py compute_loss) and TRL's
 * aggregation variants, DESIGN.md §6. */
#include "update.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "fs.h"
#include "jsonl.h"
#include "ops.h"
#include "pixcache.h"
#include "qwen.h"

/* The weights are in the f32 arrays now: unmap the checkpoint (its pages
 * would otherwise count a second time), keeping the table's names, shapes
 * and dtypes. */
static void drop_mapping(struct vr_model *m)
{
    for (int i = 0; i < m->nparams; i++)
        if (!m->params[i].t.owned) m->params[i].t.data = NULL;
    vr_stset_close(&m->st);
}

int vr_update_init(struct vr_update *u, const char *model_dir, const char *ref_dir,
                   const struct vr_update_opts *o, struct vr_err *err)
{
    memset(u, 0, sizeof *u);
    u->o = *o;
    if (vr_model_load(&u->m, model_dir, err)) return -1;
    char *tp = vr_path_join(model_dir, "tokenizer.json");
    int rc = vr_bpe_load(&u->tok, tp, err);
    free(tp);
    if (rc) goto fail;
    u->neos = vr_model_eos(model_dir, &u->m.cfg, u->eos, 8);
    vr_layout_init(&u->L, &u->m);
    u->w = vr_xmalloc_big(u->L.total * sizeof *u->w, 0);
    if (!o->forward_only) u->g = vr_xmalloc_big(u->L.total * sizeof *u->g, 1);
    vr_layout_gather(&u->L, &u->m, u->w);
    drop_mapping(&u->m);
    const char *ad = o->adapter_dir ? o->adapter_dir : vr_lora_present(model_dir) ? model_dir : NULL;
    if (ad) {
        if (vr_lora_load(&u->lo, &u->aw, &u->m, ad, o->seed, err)) goto fail;
        u->lora = 1;
    } else if (o->lora_r > 0) {
        vr_lora_init(&u->lo, &u->m, o->lora_r, o->lora_alpha, o->lora_dropout, 0, o->seed);
        u->aw = vr_xmalloc((u->lo.total + 1) * sizeof *u->aw);
        vr_lora_init_weights(&u->lo, u->aw);
        u->lora = 1;
    }
    if (u->lora) {
        if (o->lora_dropout_set) u->lo.dropout = o->lora_dropout; /* a flag given now wins */
        if (ad && o->lora_r > 0 && o->lora_r != u->lo.r) {
            vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--lora-r %d, but the adapter in %s has r = %d", o->lora_r, ad,
                       u->lo.r);
            goto fail;
        }
        if (!o->forward_only) u->ag = vr_xcalloc(u->lo.total + 1, sizeof *u->ag);
        for (int i = 0; i < u->L.np; i++) u->L.train[i] = 0; /* only the adapters train */
    }
    if (o->beta > 0 && !o->sft && u->lora && !ref_dir) {
        u->has_ref = 1; /* the base model, adapters off */
    } else if (o->beta > 0 && !o->sft) {
        if (!ref_dir) {
            vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--beta %g needs a reference model (--ref DIR), or --beta 0",
                       o->beta);
            goto fail;
        }
        if (vr_lora_load_merged(&u->mref, ref_dir, err)) goto fail; /* a LoRA run folder as the policy it holds */
        u->has_ref = 1;
        struct vr_text_config tr = u->mref.cfg.text;
        tr.tie = u->m.cfg.text.tie; /* tied or not, the layout serves both */
        if (memcmp(&tr, &u->m.cfg.text, sizeof tr) ||
            memcmp(&u->mref.cfg.vision, &u->m.cfg.vision, sizeof u->m.cfg.vision)) {
            vr_err_set(err, VR_ERR_INPUT, ref_dir, 0, "the reference model's config differs from the policy's");
            goto fail;
        }
        vr_layout_init(&u->Lref, &u->mref);
        u->wref = vr_xmalloc_big(u->Lref.total * sizeof *u->wref, 0);
        vr_layout_gather(&u->Lref, &u->mref, u->wref);
        drop_mapping(&u->mref);
    }
    return 0;
fail:
    vr_update_release(u);
    return -1;
}

void vr_update_release(struct vr_update *u)
{
    free(u->w);
    free(u->g);
    free(u->wref);
    free(u->aw);
    free(u->ag);
    if (u->lora) vr_lora_release(&u->lo);
    if (u->L.np) vr_layout_release(&u->L);
    if (u->Lref.np) vr_layout_release(&u->Lref);
    if (u->wref) vr_model_release(&u->mref);
    if (u->tok) vr_bpe_free(u->tok);
    if (u->m.params) vr_model_release(&u->m);
    vr_ws_release(&u->ws);
    vr_pack_release(&u->pk);
    free(u->gbase);
    memset(u, 0, sizeof *u);
}

void vr_batch_release(struct vr_batch *b)
{
    for (int i = 0; i < b->ng; i++) {
        free(b->g[i].grid);
        free(b->g[i].pix);
        free(b->g[i].pos);
    }
    for (int i = 0; i < b->nseq; i++) {
        free(b->s[i].ids);
        free(b->s[i].old);
        free(b->s[i].ref);
    }
    for (int i = 0; i < b->nterm; i++) free(b->term[i]);
    free(b->g);
    free(b->s);
    memset(b, 0, sizeof *b);
}

static struct vr_update_seq *new_seq(struct vr_batch *b)
{
    if (b->nseq == b->cap_s) {
        b->cap_s = b->cap_s ? 2 * b->cap_s : 16;
        b->s = vr_xrealloc(b->s, (size_t)b->cap_s * sizeof *b->s);
    }
    struct vr_update_seq *s = &b->s[b->nseq++];
    memset(s, 0, sizeof *s);
    return s;
}

void vr_batch_terms_json(const struct vr_batch *b, struct vr_buf *out)
{
    if (!b->nterm) return;
    vr_buf_puts(out, ",\"rewards\":{");
    for (int t = 0; t < b->nterm; t++) {
        char num[40];
        vr_json_fmt_real(num, b->term_sum[t] / (double)b->term_n[t]);
        if (t) vr_buf_puts(out, ",");
        vr_json_dump_string(out, b->term[t], strlen(b->term[t]));
        vr_buf_printf(out, ":%s", num);
    }
    vr_buf_puts(out, "}");
}

/* Add a completion's reward terms to the batch's sums (terms past
 * VR_BATCH_TERMS names are left out of the metrics). */
static void add_terms(struct vr_batch *b, const json_t *rewards)
{
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)rewards, name, v) {
        if (!json_is_number(v) || !isfinite(json_number_value(v))) continue;
        int t = 0;
        while (t < b->nterm && strcmp(b->term[t], name)) t++;
        if (t == b->nterm) {
            if (t == VR_BATCH_TERMS) continue;
            b->term[b->nterm++] = vr_xstrdup(name);
        }
        b->term_sum[t] += json_number_value(v);
        b->term_n[t]++;
    }
}

/* The prompt's image slots against its images, and its M-RoPE positions
 * (*pos, (3, P), the caller's to free; *delta), once per line: every
 * completion of the group shares them. */
static int prompt_positions(const struct vr_model_config *c, const struct vr_ids *ids, int nimg, int (*grid)[3],
                            int np, const char *file, long lineno, int32_t **pos, int *delta, struct vr_err *err)
{
    int P = (int)ids->n, unit = c->vision.merge * c->vision.merge, have = 0, nused;
    for (int j = 0; j < P; j++) have += ids->v[j] == c->image_token_id;
    if (have * unit != np)
        return vr_err_set(err, VR_ERR_INPUT, file, lineno, "the prompt has %d <|image_pad|> tokens; its images need %d",
                          have, np / unit);
    *pos = vr_xmalloc(((size_t)3 * P + 1) * sizeof **pos);
    if (vr_rope_index(*pos, delta, &nused, ids->v, NULL, P, c, nimg, (const int(*)[3])grid, err)) {
        vr_err_locate(err, file, lineno);
        return -1;
    }
    return 0;
}

/* SFT: one sequence, the prompt (P tokens) and the answer with its
 * <|im_end|>; the "\n" after it is not a target. */
static int add_answer(struct vr_update *u, struct vr_batch *b, const struct vr_task *t, const struct vr_ids *ids,
                      const char *file, long lineno, struct vr_err *err)
{
    struct vr_chat_task_opts co = u->o.chat;
    struct vr_ids full = {0};
    co.assistant = 1;
    if (vr_chat_task(u->tok, t, &co, file, lineno, NULL, &full, err)) {
        vr_ids_release(&full);
        return -1;
    }
    VR_ASSERT(full.n >= ids->n + 2 && memcmp(full.v, ids->v, ids->n * sizeof *ids->v) == 0);
    struct vr_update_seq *s = new_seq(b);
    s->g = b->ng;
    s->n = (int)full.n - 1;
    s->ids = vr_xmalloc((size_t)s->n * sizeof *s->ids);
    memcpy(s->ids, full.v, (size_t)s->n * sizeof *s->ids);
    s->first = (int)ids->n;
    s->len = s->n - s->first;
    b->tokens += s->len;
    vr_ids_release(&full);
    return 0;
}

/* GRPO: one sequence per completion, the prompt's ids and the completion's
 * tokens through the first end-of-sequence token. */
static int add_completions(struct vr_update *u, struct vr_batch *b, const struct vr_task *t,
                           const struct vr_ids *ids, const char *file, long lineno, struct vr_err *err)
{
    int P = (int)ids->n;
    if (t->prompt_tokens > 0 && t->prompt_tokens != P) {
        vr_err_set(err, VR_ERR_INPUT, file, lineno, "the prompt renders to %d tokens, but the rollout had %d", P,
                   t->prompt_tokens);
        vr_err_hint(err, "give vr-update the --template and --system that vr-rollout had");
        return -1;
    }
    for (int k = 0; k < t->ncompl; k++) {
        const struct vr_task_completion *cp = &t->c[k];
        if (cp->rewards) add_terms(b, cp->rewards);
        int n = cp->n, len = n;
        for (int j = 0; j < n && len == n; j++) /* through the first end-of-sequence token */
            for (int e = 0; e < u->neos; e++)
                if (cp->tokens[j] == u->eos[e]) len = j + 1;
        struct vr_update_seq *s = new_seq(b);
        s->g = b->ng;
        s->n = P + len;
        s->ids = vr_xmalloc(((size_t)s->n + 1) * sizeof *s->ids);
        memcpy(s->ids, ids->v, (size_t)P * sizeof *s->ids);
        memcpy(s->ids + P, cp->tokens, (size_t)len * sizeof *s->ids);
        s->old = vr_xmalloc(((size_t)len + 1) * sizeof *s->old);
        memcpy(s->old, cp->logp, (size_t)len * sizeof *s->old);
        s->first = P;
        s->len = len;
        s->adv = cp->advantage;
        s->reward = cp->has_reward ? cp->reward : 0;
        b->tokens += len;
    }
    return 0;
}

int vr_batch_add(struct vr_update *u, struct vr_batch *b, const json_t *line, const char *file, long lineno,
                 struct vr_err *err)
{
    const struct vr_model_config *c = &u->m.cfg;
    struct vr_chat_task_opts co = u->o.chat;
    struct vr_ids ids = {0};
    int (*grid)[3] = NULL, nimg = 0, rc = -1, s0 = b->nseq, delta = 0;
    float *pix = NULL;
    int32_t *pos = NULL;
    struct vr_task_limits lim;
    vr_model_task_limits(c, &lim);
    struct vr_task t;
    if (vr_task_parse(line, VR_NEED_GRIDS | (u->o.sft ? 0 : VR_NEED_ADVANTAGES), &lim, file, lineno, &t, err))
        return -1;
    nimg = t.nimages;
    grid = vr_task_grids(&t);
    co.assistant = 0;
    if (vr_chat_task(u->tok, &t, &co, file, lineno, NULL, &ids, err)) goto out;
    int cols = c->vision.in_chans * c->vision.temporal_patch * c->vision.patch * c->vision.patch, np = 0;
    for (int i = 0; i < nimg; i++) np += grid[i][0] * grid[i][1] * grid[i][2];
    if (nimg && vr_pixels_task(&t, cols, &pix, err)) {
        vr_err_locate(err, file, lineno);
        goto out;
    }
    if (prompt_positions(c, &ids, nimg, grid, np, file, lineno, &pos, &delta, err)) goto out;
    if (u->o.sft ? add_answer(u, b, &t, &ids, file, lineno, err) : add_completions(u, b, &t, &ids, file, lineno, err))
        goto out;
    if (b->ng == b->cap_g) {
        b->cap_g = b->cap_g ? 2 * b->cap_g : 8;
        b->g = vr_xrealloc(b->g, (size_t)b->cap_g * sizeof *b->g);
    }
    b->g[b->ng++] = (struct vr_update_group){.nimg = nimg, .npatch = np, .grid = grid, .pix = pix, .seq0 = s0,
                                             .nseq = b->nseq - s0, .P = (int)ids.n, .pos = pos, .delta = delta};
    grid = NULL;
    pix = NULL;
    pos = NULL;
    rc = 0;
out:
    if (rc) { /* drop what this line added */
        for (int i = s0; i < b->nseq; i++) {
            free(b->s[i].ids);
            free(b->s[i].old);
        }
        b->nseq = s0;
    }
    vr_task_release(&t);
    free(grid);
    free(pix);
    free(pos);
    vr_ids_release(&ids);
    return rc;
}

/* The packing scratch for batch b: per-group image offsets (grown, never
 * shrunk). */
static void scratch(struct vr_update *u, const struct vr_batch *b)
{
    if ((size_t)b->ng + 1 > u->cap_gbase) {
        free(u->gbase);
        u->cap_gbase = (size_t)b->ng + 1;
        u->gbase = vr_xmalloc(u->cap_gbase * sizeof *u->gbase);
    }
}

/* Pack sequences [s0, s1) of b for the training pass, into p's reused arrays. */
static void pack_build(struct vr_update *u, const struct vr_batch *b, int s0, int s1, struct vr_pack *p)
{
    const struct vr_model_config *c = &u->m.cfg;
    int cols = c->vision.in_chans * c->vision.temporal_patch * c->vision.patch * c->vision.patch;
    int unit = c->vision.merge * c->vision.merge;
    p->nseq = s1 - s0;
    p->N = p->nout = p->nimg = p->npatch = 0;
    for (int i = s0; i < s1; i++) {
        p->N += b->s[i].n;
        p->nout += b->s[i].len;
    }
    int gfirst = b->s[s0].g, glast = b->s[s1 - 1].g;
    for (int g = gfirst; g <= glast; g++) {
        p->nimg += b->g[g].nimg;
        p->npatch += b->g[g].npatch;
    }
    vr_pack_reserve(p, p->N, p->nseq, p->nout, p->nimg, p->npatch, cols);
    p->cu[0] = 0;
    for (int i = s0; i < s1; i++) p->cu[i - s0 + 1] = p->cu[i - s0] + b->s[i].n;
    int *gbase = u->gbase, img = 0, patch = 0;
    for (int g = gfirst; g <= glast; g++) {
        gbase[g - gfirst] = patch / unit;
        if (b->g[g].nimg) {
            memcpy(p->grid + img, b->g[g].grid, (size_t)b->g[g].nimg * sizeof *p->grid);
            memcpy(p->pixels + (size_t)patch * cols, b->g[g].pix, (size_t)b->g[g].npatch * cols * sizeof *p->pixels);
        }
        img += b->g[g].nimg;
        patch += b->g[g].npatch;
    }
    int o = 0;
    for (int i = s0; i < s1; i++) {
        const struct vr_update_seq *s = &b->s[i];
        const struct vr_update_group *g = &b->g[s->g];
        int at = p->cu[i - s0], k = 0;
        VR_ASSERT(s->first == g->P);
        memcpy(p->ids + at, s->ids, (size_t)s->n * sizeof *s->ids);
        /* the prompt's positions; completion tokens are text whatever they are
         * (a sampled <|image_pad|> is an ordinary embedding, not an image slot) */
        for (int d = 0; d < 3; d++) {
            int32_t *pd = p->pos + (size_t)d * p->N + at;
            memcpy(pd, g->pos + (size_t)d * g->P, (size_t)g->P * sizeof *pd);
            for (int j = g->P; j < s->n; j++) pd[j] = j + g->delta;
        }
        for (int j = 0; j < s->n; j++)
            p->img_row[at + j] = j < s->first && s->ids[j] == c->image_token_id ? gbase[s->g - gfirst] + k++ : -1;
        VR_ASSERT(k * unit == g->npatch); /* checked by vr_batch_add */
        for (int j = 0; j < s->len; j++, o++) {
            p->out_row[o] = at + s->first + j - 1;
            p->tgt[o] = s->ids[s->first + j];
        }
    }
}

double vr_grpo_token(double logp, double old, double ref, double adv, double eps_lo, double eps_hi,
                     double beta, double *dlogp, double *kl, int *clipped)
{
    double ratio = exp(logp - old);
    double c2 = ratio < 1 - eps_lo ? 1 - eps_lo : ratio > 1 + eps_hi ? 1 + eps_hi : ratio;
    double l1 = ratio * adv, l2 = c2 * adv, loss, d;
    if (l1 <= l2) { /* unclipped branch (ties carry the same derivative) */
        loss = -l1;
        d = -ratio * adv;
    } else {
        loss = -l2;
        d = c2 == ratio ? -ratio * adv : 0; /* clamp passes the gradient only inside the range */
    }
    *clipped = (ratio < 1 - eps_lo && adv < 0) || (ratio > 1 + eps_hi && adv > 0);
    *kl = 0;
    if (beta != 0) {
        double x = ref - logp;
        *kl = exp(x) - x - 1;
        loss += beta * *kl;
        d += beta * (1 - exp(x));
    }
    *dlogp = d;
    return loss;
}

/* Per-token loss weights of the step (the aggregation of DESIGN.md §6). */
static void weights(const struct vr_update *u, struct vr_batch *b)
{
    int S = 0, Lmax = 0;
    for (int i = 0; i < b->nseq; i++)
        if (b->s[i].len) {
            S++;
            if (b->s[i].len > Lmax) Lmax = b->s[i].len;
        }
    for (int i = 0; i < b->nseq; i++) {
        struct vr_update_seq *s = &b->s[i];
        if (!s->len) continue;
        if (u->o.sft) s->weight = 1.0 / (double)b->tokens;
        else if (u->o.loss == VR_LOSS_GRPO) s->weight = 1.0 / ((double)S * s->len);
        else if (u->o.loss == VR_LOSS_DR_GRPO) s->weight = 1.0 / ((double)b->nseq * (u->o.max_len ? u->o.max_len : Lmax));
        else s->weight = 1.0 / (double)b->tokens;
    }
}

/* The next micro-batch [s0, s1) of sequences before hi: whole sequences
 * within the token budget, at least one. */
static int next_micro(const struct vr_update *u, const struct vr_batch *b, int s0, int hi)
{
    int64_t t = 0;
    int s1 = s0;
    while (s1 < hi && (s1 == s0 || t + b->s[s1].n <= u->o.max_batch_tokens)) t += b->s[s1++].n;
    return s1;
}

/* Forward only over the micro-batches of b's sequences [lo, hi) with
 * weights w of layout L: fn gets
 * each sequence's target log-probabilities (len of them, valid during the
 * call). The reference log-probs and the image-swap check both read them. */
static void forward_each(struct vr_update *u, const struct vr_batch *b, int lo, int hi, const struct vr_layout *L,
                         const float *w, const struct vr_train_opts *to,
                         void (*fn)(void *ctx, int seq, const float *lp, int len), void *ctx)
{
    scratch(u, b);
    for (int s0 = lo; s0 < hi;) {
        int s1 = next_micro(u, b, s0, hi);
        struct vr_pack *pk = &u->pk;
        pack_build(u, b, s0, s1, pk);
        vr_ws_reset(&u->ws);
        float *lp = vr_ws_floats(&u->ws, (size_t)pk->nout + 1);
        vr_train_fwd_f32(L, w, pk, to, lp, NULL, &u->ws);
        for (int i = s0, o = 0; i < s1; o += b->s[i].len, i++) fn(ctx, i, lp + o, b->s[i].len);
        s0 = s1;
    }
}

static void keep_ref(void *ctx, int seq, const float *lp, int len)
{
    struct vr_update_seq *s = &((struct vr_batch *)ctx)->s[seq];
    s->ref = vr_xmalloc(((size_t)len + 1) * sizeof *s->ref);
    memcpy(s->ref, lp, (size_t)len * sizeof *lp);
}

/* The reference log-probs of sequences [lo, hi), this rank's share. */
static void ref_logps(struct vr_update *u, struct vr_batch *b, int lo, int hi)
{
    struct vr_train_opts to = {.temperature = u->o.temperature, .checkpoint = 1, .no_vision_grad = 1};
    if (u->wref) forward_each(u, b, lo, hi, &u->Lref, u->wref, &to, keep_ref, b);
    else forward_each(u, b, lo, hi, &u->L, u->w, &to, keep_ref, b); /* LoRA: the base */
    b->have_ref = 1;
}

static void sum_logp(void *ctx, int seq, const float *lp, int len)
{
    double sum = 0;
    for (int j = 0; j < len; j++) sum += lp[j];
    ((double *)ctx)[seq] = sum;
}

int vr_update_logp(struct vr_update *u, const struct vr_batch *b, double *seq_logp)
{
    struct vr_train_opts to = {.temperature = u->o.sft ? 1.0 : u->o.temperature, .checkpoint = 1,
                               .no_vision_grad = 1};
    if (u->lora) {
        to.lora = &u->lo;
        to.lw = u->aw;
    }
    forward_each(u, b, 0, b->nseq, &u->L, u->w, &to, sum_logp, seq_logp);
    return 0;
}

void vr_update_share(const struct vr_update *u, const struct vr_batch *b, int rank, int ranks, int *lo, int *hi)
{
    int64_t total = 0, before = 0;
    for (int i = 0; i < b->nseq; i++) total += b->s[i].n;
    *lo = *hi = b->nseq;
    int first = 1;
    for (int s0 = 0, s1; s0 < b->nseq; s0 = s1) {
        s1 = next_micro(u, b, s0, b->nseq); /* the micro-batches of one process */
        int64_t n = 0;
        for (int i = s0; i < s1; i++) n += b->s[i].n;
        /* the rank whose part of the tokens holds the micro-batch's middle */
        int64_t r = (2 * before + n) * ranks / (2 * total);
        before += n;
        if (r == rank && first) *lo = s0, first = 0;
        if (r > rank) {
            *hi = s0;
            break;
        }
    }
    if (first) *lo = *hi;
}

/* Sum the gradients of every rank (lib/dist.h, a fixed order): the adapters'
 * or the trainable tensors', runs of adjacent ones in one call. */
static int sum_grads(struct vr_update *u, struct vr_err *err)
{
    if (vr_dist_size() == 1) return 0;
    if (u->lora) return vr_dist_sum(u->ag, u->lo.total, err);
    const struct vr_layout *L = &u->L;
    size_t at = 0, n = 0;
    for (int i = 0; i <= L->np; i++) {
        size_t k = 0;
        if (i < L->np && L->train[i] && !L->p[i].tied) {
            k = 1;
            for (int d = 0; d < L->p[i].ndim; d++) k *= (size_t)L->p[i].shape[d];
        }
        if (k && n && L->off[i] == at + n) { /* extends the run */
            n += k;
            continue;
        }
        if (n && vr_dist_sum(u->g + at, n, err)) return -1;
        at = k ? L->off[i] : 0;
        n = k;
    }
    return 0;
}

/* The step's numbers from each sequence's (SEQ_STATS per sequence, summed
 * over ranks: each sequence is one rank's, so the sum is exact and the
 * totals, added in sequence order, do not depend on the ranks). */
enum { SEQ_LOSS, SEQ_PG, SEQ_KL, SEQ_CLIP, SEQ_STATS };

static int step_stats(const struct vr_batch *b, double *per, struct vr_update_stats *st, struct vr_err *err)
{
    if (vr_dist_sum_f64(per, (size_t)b->nseq * SEQ_STATS, err)) return -1;
    double kl_seq = 0, clip = 0, rsum = 0, rsq = 0, lsum = 0;
    int nscored = 0;
    for (int i = 0; i < b->nseq; i++) {
        const struct vr_update_seq *s = &b->s[i];
        const double *q = per + (size_t)i * SEQ_STATS;
        st->loss += q[SEQ_LOSS];
        st->pg_loss += q[SEQ_PG];
        clip += q[SEQ_CLIP];
        if (s->len) {
            kl_seq += q[SEQ_KL];
            nscored++;
        }
        rsum += s->reward;
        rsq += s->reward * s->reward;
        lsum += s->len;
        st->seq_tokens += s->n;
    }
    st->tokens = b->tokens;
    st->kl = nscored ? kl_seq / nscored : 0;
    st->clip_ratio = b->tokens ? clip / (double)b->tokens : 0;
    st->reward = rsum / b->nseq;
    st->reward_std = b->nseq > 1 ? sqrt(fmax(0, (rsq - rsum * rsum / b->nseq) / (b->nseq - 1))) : 0;
    st->completion_len = lsum / b->nseq;
    return 0;
}

/* The loss of sequences [lo, hi) (a micro-batch) from their log-probs lp:
 * per-sequence numbers into per, d loss / d logp into dl. */
static void seq_losses(const struct vr_update *u, const struct vr_batch *b, int lo, int hi, double beta,
                       const float *lp, float *dl, double *per)
{
    int grpo = !u->o.sft, o = 0;
    for (int i = lo; i < hi; i++) {
        const struct vr_update_seq *s = &b->s[i];
        double *q = per + (size_t)i * SEQ_STATS, kls = 0;
        for (int j = 0; j < s->len; j++, o++) {
            double d, kl, tl;
            int cl = 0;
            if (grpo) tl = vr_grpo_token(lp[o], s->old[j], beta != 0 ? s->ref[j] : 0, s->adv, u->o.epsilon,
                                         u->o.epsilon_high, beta, &d, &kl, &cl);
            else tl = -lp[o], d = -1, kl = 0;
            q[SEQ_LOSS] += s->weight * tl;
            q[SEQ_PG] += s->weight * (tl - beta * kl);
            dl[o] = (float)(s->weight * d);
            kls += kl;
            q[SEQ_CLIP] += cl;
        }
        if (s->len) q[SEQ_KL] = kls / s->len;
    }
}

int vr_update_grads(struct vr_update *u, struct vr_batch *b, struct vr_update_stats *st, struct vr_err *err)
{
    memset(st, 0, sizeof *st);
    VR_ASSERT(u->g); /* not a forward_only update */
    memset(u->g, 0, u->L.total * sizeof *u->g);
    if (u->lora) memset(u->ag, 0, u->lo.total * sizeof *u->ag);
    if (b->nseq == 0) return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "an empty batch");
    weights(u, b);
    scratch(u, b);
    int grpo = !u->o.sft, lo, hi;
    vr_update_share(u, b, vr_dist_rank(), vr_dist_size(), &lo, &hi);
    double beta = grpo && u->has_ref ? u->o.beta : 0;
    if (beta != 0 && !b->have_ref) ref_logps(u, b, lo, hi);
    struct vr_train_opts to = {.temperature = grpo ? u->o.temperature : 1.0, .checkpoint = u->o.checkpoint,
                               .no_vision_grad = u->o.freeze_vision || u->lora};
    if (vr_backend()->keeps_prob) to.keep_logits = u->o.keep_logits_mb << 20;
    if (u->lora) {
        to.lora = &u->lo;
        to.lw = u->aw;
        to.lg = u->ag;
    }
    double *per = vr_xcalloc((size_t)b->nseq * SEQ_STATS, sizeof *per);
    to.row0 = 0; /* the row of the step: dropout masks do not depend on the share */
    for (int i = 0; i < lo; i++) to.row0 += b->s[i].n;
    for (int s0 = lo; s0 < hi;) {
        int s1 = next_micro(u, b, s0, hi);
        struct vr_pack *pk = &u->pk;
        pack_build(u, b, s0, s1, pk);
        vr_ws_reset(&u->ws);
        float *lp = vr_ws_floats(&u->ws, (size_t)pk->nout + 1), *dl = vr_ws_floats(&u->ws, (size_t)pk->nout + 1);
        struct vr_train_act *act = vr_train_fwd_f32(&u->L, u->w, pk, &to, lp, NULL, &u->ws);
        seq_losses(u, b, s0, s1, beta, lp, dl, per);
        vr_train_bwd_f32(&u->L, u->w, u->g, pk, &to, act, dl, &u->ws);
        to.row0 += pk->N;
        s0 = s1;
    }
    int rc = sum_grads(u, err) || step_stats(b, per, st, err) ? -1 : 0;
    free(per);
    return rc;
}

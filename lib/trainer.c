/* trainer.c: a vr-update run (see trainer.h): the batches, the optimizer
 * steps on them, the run folder's saves and the published generations. The
 * numbers come from lib/update.c (gradients) and lib/optim.c (clipping,
 * schedule, AdamW); the files from lib/ckpt.c, lib/lora.c and lib/publish.c. */
#include "trainer.h"

#include <math.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "ckpt.h"
#include "dist.h"
#include "fs.h"
#include "jsonl.h"
#include "hash.h"
#include "init.h"
#include "memplan.h"
#include "model.h"
#include "lora.h"
#include "publish.h"
#include "safetensors.h"
#include "progress.h"

struct vr_trainer_impl {
    struct vr_trainer_opts o;     /* the caller's, defaults resolved */
    struct vr_update u;
    int have_u;
    struct vr_ptab tab;           /* the model's weights ... */
    struct vr_ptab train_tab;     /* ... and what trains: the same, or the adapters */
    float *train_w, *train_g;     /* what trains: weights and gradients */
    struct vr_range *rg;          /* the trainable tensors of train_tab */
    int nr;
    struct vr_optstate os;
    float *g0;                    /* --dump: the gradients before clipping */
    enum vr_dtype dt;             /* of the saved weights */
    char *from;                   /* --resume: the checkpoint started from */
    struct vr_publish pub;
    int lock;                     /* the run folder's lock, -1 before it is taken */
    /* the data cursor: lines still to skip (used by the resumed checkpoint);
     * the batch being gathered (nl lines, full when complete) and its next
     * iteration; the cursor after the last step taken, which saves record */
    int64_t skip, saved_step, last_lines;
    int last_iter, it, nl, full;
    struct vr_batch b;
    struct vr_buf line;           /* the metrics line */
    int writer;                   /* rank 0 of the job: the one that writes files and metrics */
    int idle_warned;              /* a rank had no micro-batch (said once) */
    double comm0;                 /* vr_dist_seconds() when the step began */
};

__attribute__((format(printf, 2, 3))) static void warn(const struct vr_trainer_impl *r, const char *fmt, ...)
{
    if (!r->o.warn || !r->writer) return; /* every rank would say the same */
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->o.warn(r->o.ctx, msg);
}

/* --dump: the step's loss, grad norm, gradients before clipping and the
 * updated weights of the trainable tensors, for checking against PyTorch. */
static int write_dump(const char *path, const struct vr_ptab *T, const struct vr_range *rg, int nr,
                      const float *g, const float *w, double loss, double gnorm, struct vr_err *err)
{
    int n = 2 + 2 * nr;
    const char **names = vr_xmalloc((size_t)n * sizeof *names);
    char (*buf)[112] = vr_xmalloc((size_t)n * sizeof *buf);
    struct vr_tensor *t = vr_xcalloc((size_t)n, sizeof *t);
    float sc[2] = {(float)loss, (float)gnorm};
    int64_t one = 1;
    names[0] = "loss";
    names[1] = "grad_norm";
    vr_tensor_view(&t[0], VR_DTYPE_F32, 1, &one, &sc[0]);
    vr_tensor_view(&t[1], VR_DTYPE_F32, 1, &one, &sc[1]);
    for (int k = 0; k < nr; k++) {
        const struct vr_param *p = &T->p[rg[k].id];
        snprintf(buf[2 + 2 * k], sizeof buf[0], "grad.%s", p->name);
        snprintf(buf[3 + 2 * k], sizeof buf[0], "after.%s", p->name);
        names[2 + 2 * k] = buf[2 + 2 * k];
        names[3 + 2 * k] = buf[3 + 2 * k];
        vr_tensor_view(&t[2 + 2 * k], VR_DTYPE_F32, p->ndim, p->shape, (void *)(g + rg[k].off));
        vr_tensor_view(&t[3 + 2 * k], VR_DTYPE_F32, p->ndim, p->shape, (void *)(w + rg[k].off));
    }
    int rc = vr_safetensors_write(path, n, names, t, NULL, err);
    free(names);
    free(buf);
    free(t);
    return rc;
}

/* --grads: a step's gradients from a file instead of the batch (replaying a
 * step, e.g. to check the optimizer on PyTorch's gradients). */
static int read_grads(const char *path, const struct vr_ptab *T, const struct vr_range *rg, int nr, float *g,
                      struct vr_update_stats *st, struct vr_err *err)
{
    struct vr_safetensors f;
    if (vr_safetensors_open(&f, path, err)) return -1;
    memset(st, 0, sizeof *st);
    memset(g, 0, T->total * sizeof *g);
    int rc = 0;
    struct vr_tensor t;
    if (vr_safetensors_find(&f, "loss") && vr_safetensors_read(&f, "loss", &t, err) == 0) {
        if (t.dtype == VR_DTYPE_F32 && vr_tensor_numel(&t) >= 1) st->loss = ((float *)t.data)[0];
        vr_tensor_release(&t);
    }
    for (int k = 0; k < nr && !rc; k++) {
        const struct vr_param *p = &T->p[rg[k].id];
        char name[112];
        snprintf(name, sizeof name, "grad.%s", p->name);
        if (vr_safetensors_read(&f, name, &t, err)) {
            rc = -1;
            break;
        }
        if (t.dtype != VR_DTYPE_F32 || (size_t)vr_tensor_numel(&t) != rg[k].n)
            rc = vr_err_set(err, VR_ERR_INPUT, path, 0, "%s: expected F32 with %zu values", name, rg[k].n);
        else memcpy(g + rg[k].off, t.data, rg[k].n * sizeof *g);
        vr_tensor_release(&t);
    }
    vr_safetensors_close(&f);
    return rc;
}

/* ---- saves ---- */

/* config.json of dir with tie_word_embeddings false (at the top and in text_config). */
static int untie_config(void *ctx, const char *dir, struct vr_err *err)
{
    (void)ctx;
    char *p = vr_path_join(dir, "config.json");
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    int rc;
    if (!j) rc = vr_err_set(err, VR_ERR_INPUT, p, je.line, "%s", je.text);
    else {
        json_object_set_new(j, "tie_word_embeddings", json_false());
        json_t *tc = json_object_get(j, "text_config");
        if (json_is_object(tc)) json_object_set_new(tc, "tie_word_embeddings", json_false());
        rc = vr_json_write_file(p, j, 0, err);
        json_decref(j);
    }
    free(p);
    return rc;
}

static int write_adapter(void *ctx, const char *dir, struct vr_err *err)
{
    const struct vr_trainer_impl *r = ctx;
    return vr_lora_write(&r->u.lo, r->train_w, dir, r->o.model, err);
}

/* LoRA's optimizer state goes into optimizer.safetensors as extras named
 * like the model's own: master.KEY, exp_avg.KEY, exp_avg_sq.KEY. The views
 * are of the live arrays; free(*names), free(*np), free(*t). */
static void adapter_extras(const struct vr_trainer_impl *r, char (**names)[200], const char ***np,
                           struct vr_tensor **t)
{
    int n = r->train_tab.np;
    *names = vr_xmalloc(3 * (size_t)n * sizeof **names);
    *np = vr_xmalloc(3 * (size_t)n * sizeof **np);
    *t = vr_xcalloc(3 * (size_t)n, sizeof **t);
    static const char *const pre[3] = {"master", "exp_avg", "exp_avg_sq"};
    float *src[3] = {r->train_w, r->os.m, r->os.v};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < n; i++) {
            const struct vr_param *p = &r->train_tab.p[i];
            snprintf((*names)[k * n + i], sizeof **names, "%s.%s", pre[k], p->name);
            (*np)[k * n + i] = (*names)[k * n + i];
            vr_tensor_view(&(*t)[k * n + i], VR_DTYPE_F32, p->ndim, p->shape, src[k] + r->train_tab.off[i]);
        }
}

/* The merged weights (--merge): full weights with the adapters folded in, a
 * new base model. An adapted lm_head tied to the embedding becomes its own
 * tensor (*mtab gets the untied table; free m->p and m->off when untied). */
static float *merged_weights(const struct vr_trainer_impl *r, struct vr_ptab *mtab, int *untied)
{
    const struct vr_ptab *tab = &r->tab;
    int head = -1, embed = -1;
    for (int i = 0; i < tab->np; i++) {
        if (!strcmp(tab->p[i].name, "lm_head.weight")) head = i;
        if (!strcmp(tab->p[i].name, "model.embed_tokens.weight")) embed = i;
    }
    int untie = head >= 0 && tab->p[head].tied && r->u.lo.of[head] >= 0;
    size_t extra = untie ? (size_t)(tab->p[head].shape[0] * tab->p[head].shape[1]) : 0;
    float *merged = vr_xmalloc((tab->total + extra + 1) * sizeof *merged);
    memcpy(merged, r->u.w, tab->total * sizeof *merged);
    *mtab = *tab;
    if (untie) {
        struct vr_param *p = vr_xmalloc((size_t)mtab->np * sizeof *p);
        size_t *off = vr_xmalloc((size_t)mtab->np * sizeof *off);
        memcpy(p, tab->p, (size_t)mtab->np * sizeof *p);
        memcpy(off, tab->off, (size_t)mtab->np * sizeof *off);
        p[head].tied = 0;
        off[head] = tab->total;
        memcpy(merged + off[head], r->u.w + off[embed], extra * sizeof *merged);
        mtab->p = p;
        mtab->off = off;
        mtab->total = tab->total + extra;
    }
    vr_lora_merge_flat(&r->u.lo, r->train_w, merged, mtab->off);
    *untied = untie;
    return merged;
}

/* A checkpoint of the run at step, with the data cursor (lines, iteration):
 * RUN/checkpoint-STEP, or (root) the files of RUN itself, each atomically
 * (the root as one set of files, which drops what an earlier save there had
 * and this one has not: adapter files, optimizer state). */
static int save_at(const struct vr_trainer_impl *r, int64_t step, int64_t lines, int iteration, int root,
                   struct vr_err *err)
{
    json_t *st = json_pack("{s:I,s:I,s:i}", "step", (json_int_t)step, "lines", (json_int_t)lines, "iteration",
                           iteration);
    struct vr_ckpt c = {.src = r->o.model, .tab = &r->tab, .master = r->u.w, .dtype = r->dt,
                        .max_shard_bytes = 4000000000ull, .opt = &r->os, .state = st};
    char (*names)[200] = NULL;
    const char **np = NULL;
    struct vr_tensor *t = NULL;
    float *merged = NULL;
    struct vr_ptab mtab;
    int untied = 0;
    if (r->u.lora && root && r->o.merge) {
        merged = merged_weights(r, &mtab, &untied);
        c.tab = &mtab;
        c.master = merged;
        c.opt = NULL;
        if (untied) c.more = untie_config;
    } else if (r->u.lora) {
        adapter_extras(r, &names, &np, &t);
        c.nextra = 3 * r->train_tab.np;
        c.extra_names = np;
        c.extra = t;
        c.more = write_adapter;
        c.more_ctx = (void *)r;
    }
    int rc = root ? vr_ckpt_replace(r->o.out, &c, err) : vr_ckpt_save(r->o.out, step, &c, r->o.keep, NULL, err);
    json_decref(st);
    if (untied) {
        free((void *)mtab.p);
        free((void *)mtab.off);
    }
    free(names);
    free(np);
    free(t);
    free(merged);
    return rc;
}

/* vr_trainer_save on this rank alone: rank 0 writes, the others only count. */
static int save(struct vr_trainer *t, enum vr_trainer_where where, struct vr_err *err)
{
    struct vr_trainer_impl *r = t->impl;
    if (r->writer && save_at(r, t->step, r->last_lines, r->last_iter, where == VR_TRAINER_ROOT, err)) return -1;
    if (where == VR_TRAINER_CHECKPOINT) r->saved_step = t->step;
    return 0;
}

int vr_trainer_save(struct vr_trainer *t, enum vr_trainer_where where, struct vr_err *err)
{
    int rc = save(t, where, err);
    struct vr_err e2;
    vr_dist_barrier(&e2); /* no rank goes on (or ends the job) before rank 0's save is done */
    return rc;
}

/* Whether the run folder's root holds the save of step: a run killed after
 * its last checkpoint, before the root's save, left it behind, and --resume
 * from that checkpoint has no step left to take but still owes the root. */
static int root_holds(const char *out, int64_t step)
{
    json_t *st;
    struct vr_err e;
    if (vr_ckpt_load_state(out, &st, &e) != 1) return 0;
    int same = json_integer_value(json_object_get(st, "step")) == step;
    json_decref(st);
    return same;
}

/* ---- the start ---- */

/* The optimizer state of a folder (1 read, 0 none, -1 error). */
static int load_optim(struct vr_trainer_impl *r, const char *dir, struct vr_err *err)
{
    if (!r->u.lora) return vr_ckpt_load_optim(dir, &r->tab, r->u.w, &r->os, 0, NULL, NULL, err);
    if (!vr_lora_present(dir)) return 0; /* new adapters on a full-weight folder: fresh moments */
    char (*names)[200];
    const char **np;
    struct vr_tensor *t;
    adapter_extras(r, &names, &np, &t);
    /* no model tensor trains: only the extras are read, into views of the live arrays */
    struct vr_optstate none = {0};
    int rc = vr_ckpt_load_optim(dir, &r->tab, NULL, &none, 3 * r->train_tab.np, np, t, err);
    free(names);
    free(np);
    free(t);
    return rc;
}

/* --publish: generation gen of the weights, what a checkpoint of the run
 * would hold (lib/publish.h); LoRA: the base weights once, then the adapter */
static int publish_gen(struct vr_trainer_impl *r, int64_t gen, struct vr_err *err)
{
    struct vr_publish *p = &r->pub;
    if (!r->writer) return 0;
    if ((!r->u.lora || p->gen < 0) && vr_publish_weights(p, gen, r->o.model, &r->tab, r->u.w, r->dt, err))
        return -1;
    if (r->u.lora && vr_lora_write(&r->u.lo, r->train_w, p->dir, r->o.model, err)) return -1;
    return vr_publish_mark(p, gen, err);
}

/* The run folder, locked, with what a killed writer left settled, and the
 * checkpoint --resume starts from (r->from, NULL for none). */
static int open_run(struct vr_trainer *t, struct vr_err *err)
{
    struct vr_trainer_impl *r = t->impl;
    const struct vr_trainer_opts *o = &r->o;
    if (r->writer) {
        r->lock = vr_ckpt_run_lock(o->out, &t->made, err);
        if (r->lock < 0) return -1;
        int recovered = vr_ckpt_recover(o->out, err);
        if (recovered < 0) return -1;
        if (recovered)
            warn(r, "%s: finished the save that a killed vr-update had committed but not put in place", o->out);
        if (o->resume && vr_ckpt_newest(o->out, &r->from, NULL, err) < 0) return -1;
        if (o->resume && !r->from) warn(r, "%s has no complete checkpoint; starting from %s", o->out, o->model);
    }
    if (vr_dist_size() == 1) return 0;
    /* the other ranks start from the checkpoint rank 0 chose, after its
     * recovery (they read the same paths: one machine or a shared filesystem) */
    uint64_t n = r->from ? strlen(r->from) + 1 : 0;
    if (vr_dist_bcast(&n, sizeof n, err)) return -1;
    if (!r->writer && n) r->from = vr_xmalloc(n);
    return n ? vr_dist_bcast(r->from, n, err) : 0;
}

/* With several ranks: every rank must start from the same weights and
 * optimizer state (the same files), or their steps would drift apart
 * silently. Each rank's hash, summed into a table of all of them. */
static int same_start(const struct vr_trainer_impl *r, struct vr_err *err)
{
    int N = vr_dist_size();
    if (N == 1) return 0;
    struct vr_hasher h;
    vr_hasher_init64(&h);
    vr_hasher_update(&h, r->u.w, r->tab.total * sizeof *r->u.w);
    if (r->u.lora) vr_hasher_update(&h, r->train_w, r->train_tab.total * sizeof *r->train_w);
    vr_hasher_update(&h, r->os.m, r->train_tab.total * sizeof *r->os.m);
    vr_hasher_update(&h, r->os.v, r->train_tab.total * sizeof *r->os.v);
    uint64_t mine = vr_hasher_final64(&h);
    double *all = vr_xcalloc(2 * (size_t)N, sizeof *all); /* two exact 32-bit halves each */
    all[2 * vr_dist_rank()] = (double)(mine >> 32);
    all[2 * vr_dist_rank() + 1] = (double)(mine & 0xffffffffu);
    int rc = vr_dist_sum_f64(all, 2 * (size_t)N, err), bad = -1;
    for (int k = 1; !rc && k < N && bad < 0; k++)
        if (all[2 * k] != all[0] || all[2 * k + 1] != all[1]) bad = k;
    free(all);
    if (rc || bad < 0) return rc;
    vr_err_set(err, VR_ERR_INPUT, NULL, 0, "rank %d of %d starts from other weights or optimizer state than rank 0",
               bad, N);
    return vr_err_hint(err, "every rank reads --model, --ref and --out at the same paths: run on one machine or on "
                            "a shared filesystem");
}

/* What trains: the weights but the frozen ones (--freeze, --freeze-vision),
 * or the adapters; their ranges. */
static int trainable(struct vr_trainer_impl *r, struct vr_err *err)
{
    struct vr_layout *L = &r->u.L;
    for (int i = 0; i < L->np; i++) {
        for (int f = 0; f < r->o.nfreeze; f++)
            if (regexec(&r->o.freeze[f], L->p[i].name, 0, NULL, 0) == 0) L->train[i] = 0;
        if (r->o.update.freeze_vision && strncmp(L->p[i].name, "visual.", 7) == 0) L->train[i] = 0;
    }
    if (L->p[L->head].tied) L->train[L->head] = L->train[L->embed];
    r->tab = (struct vr_ptab){L->np, L->p, L->off, L->train, L->total};
    r->train_tab = r->tab;
    r->train_w = r->u.w;
    r->train_g = r->u.g;
    if (r->u.lora) {
        r->train_tab = (struct vr_ptab){2 * r->u.lo.n, r->u.lo.tab, r->u.lo.off, NULL, r->u.lo.total};
        r->train_w = r->u.aw;
        r->train_g = r->u.ag;
    }
    r->rg = vr_xmalloc(((size_t)r->train_tab.np + 1) * sizeof *r->rg);
    r->nr = vr_ptab_ranges(&r->train_tab, r->rg);
    if (!r->nr) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "every parameter is frozen");
    return 0;
}

/* The optimizer state and the step count of the starting folder, when it
 * has them: one-shot pipelines continue AdamW from step to step;
 * fresh_optimizer ignores the model folder's (not a resumed run's). A
 * resumed run also takes the data cursor. */
static int start_state(struct vr_trainer *t, struct vr_err *err)
{
    struct vr_trainer_impl *r = t->impl;
    const char *start = r->from ? r->from : r->o.model;
    int64_t iter0 = 0;
    json_t *st = NULL;
    if ((r->from || !r->o.fresh_optimizer) &&
        (load_optim(r, start, err) < 0 || vr_ckpt_load_state(start, &st, err) < 0))
        return -1;
    if (st) {
        t->step = json_integer_value(json_object_get(st, "step"));
        if (r->from) { /* the same input: skip what the checkpoint used */
            t->lines = json_integer_value(json_object_get(st, "lines"));
            iter0 = json_integer_value(json_object_get(st, "iteration"));
        }
        json_decref(st);
    }
    r->skip = r->last_lines = t->lines;
    r->it = r->last_iter = (int)iter0;
    return 0;
}

void vr_trainer_opts_init(struct vr_trainer_opts *o)
{
    memset(o, 0, sizeof *o);
    o->update = (struct vr_update_opts){.loss = VR_LOSS_GRPO, .epsilon = 0.2, .epsilon_high = -1, .beta = 0.04,
                                        .temperature = 1.0, .max_batch_tokens = 16384, .keep_logits_mb = 1024};
    o->adamw = (struct vr_adamw){.lr = 1e-6, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0};
    o->schedule = VR_SCHED_CONSTANT;
    o->max_grad_norm = 1.0;
    o->iterations = 1;
    o->keep = 2;
}

int vr_trainer_opts_check(const struct vr_trainer_opts *o, int dry_run, struct vr_err *err)
{
    if (!o->model) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--model DIR is required");
    if (!o->out && !dry_run) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--out DIR is required");
    if (o->publish && !o->prompts_per_step)
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--publish needs --prompts-per-step N (a generation per batch of N lines)");
    if ((o->schedule == VR_SCHED_LINEAR || o->schedule == VR_SCHED_COSINE) && !o->total_steps)
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--lr-schedule %s needs --steps N (the run's total optimizer steps)",
                          vr_schedule_name(o->schedule));
    return 0;
}

int vr_trainer_plan(const struct vr_trainer_opts *o, int64_t image_patches, struct vr_memplan *p, struct vr_err *err)
{
    struct vr_model_config c;
    struct stat st;
    /* a folder's config, else a preset's when there is no folder of that name */
    if (stat(o->model, &st) == 0) {
        char *path = vr_path_join(o->model, "config.json");
        int rc = vr_model_config_load(&c, path, err);
        free(path);
        if (rc) return -1;
    } else if (vr_init_preset(o->model, &c) != 0) {
        return vr_err_set(err, VR_ERR_INPUT, o->model, 0, "no such folder, and not a preset (tiny, demo, small, 3b, 7b)");
    }
    struct vr_memplan_opts mo;
    vr_memplan_opts_init(&mo);
    mo.lora_r = o->update.lora_r;
    mo.freeze_vision = o->update.freeze_vision;
    mo.ref = o->update.beta > 0 && !o->update.sft;
    mo.checkpoint = o->update.checkpoint;
    mo.batch_tokens = o->update.max_batch_tokens;
    mo.image_patches = image_patches;
    vr_memplan_make(&c, &mo, p);
    return 0;
}

int vr_trainer_open(struct vr_trainer *t, const struct vr_trainer_opts *o, struct vr_err *err)
{
    VR_ASSERT(o->model && o->out && o->iterations >= 1 && (!o->publish || o->prompts_per_step > 0));
    memset(t, 0, sizeof *t);
    struct vr_trainer_impl *r = t->impl = vr_xcalloc(1, sizeof *r);
    r->o = *o;
    struct vr_update_opts *uo = &r->o.update;
    if (uo->epsilon_high < 0) uo->epsilon_high = uo->epsilon;
    if (uo->lora_alpha == 0) uo->lora_alpha = 2.0 * uo->lora_r;
    r->lock = -1;
    r->pub.fd = -1;
    r->saved_step = -1;
    r->writer = vr_dist_rank() == 0;
    if (!r->writer) r->o.publish = r->o.dump = NULL;
    /* --publish first, so that a vr-rollout --follow sees a writer at once */
    if (r->o.publish && vr_publish_open(&r->pub, o->publish, o->model, o->prompts_per_step, err)) goto fail;
    if (open_run(t, err)) goto fail;
    if (vr_update_init(&r->u, r->from ? r->from : o->model, o->ref, uo, err)) goto fail;
    r->have_u = 1;
    r->dt = o->dtype_set ? o->dtype : r->u.m.params[r->u.L.embed].t.dtype;
    if (trainable(r, err) || vr_optstate_init(&r->os, r->train_tab.total, err)) goto fail;
    if (r->o.dump) r->g0 = vr_xmalloc(r->train_tab.total * sizeof *r->g0);
    if (start_state(t, err) || same_start(r, err)) goto fail;
    /* generation 0: the starting weights (after --resume, the batches done) */
    if (r->o.publish && publish_gen(r, t->lines / o->prompts_per_step, err)) goto fail;
    return 0;
fail:
    vr_trainer_release(t);
    return -1;
}

/* ---- batches and steps ---- */

/* A line every rank took, or one that some rank could not (the pixels it
 * names are missing on its machine, say): then every rank fails together,
 * those without a message of their own naming the first rank that has one,
 * so that the caller's save of the run (vr_trainer_save, collective) is
 * made by all of them. */
static int agree(int rc, const char *file, long lineno, struct vr_err *err)
{
    int N = vr_dist_size(), first = rc ? vr_dist_rank() : N;
    if (N > 1) { /* the lowest failing rank, through an exact sum */
        double *v = vr_xcalloc((size_t)N, sizeof *v);
        v[vr_dist_rank()] = rc ? 1 : 0;
        struct vr_err e2;
        if (vr_dist_sum_f64(v, (size_t)N, &e2)) vr_dist_abort(1);
        for (first = 0; first < N && v[first] == 0; first++) {}
        free(v);
    }
    if (first == N) return 0;
    if (!rc)
        vr_err_set(err, VR_ERR_INPUT, file, lineno, "rank %d of %d could not take this line (its message says why)",
                   first, N);
    return -1;
}

int vr_trainer_feed(struct vr_trainer *t, const json_t *line, const char *file, long lineno, struct vr_err *err)
{
    struct vr_trainer_impl *r = t->impl;
    VR_ASSERT(!r->full);
    if (!line) return r->full = r->nl > 0;
    if (r->skip > 0) { /* used by the checkpoint we resumed from */
        r->skip--;
        return 0;
    }
    if (agree(vr_batch_add(&r->u, &r->b, line, file, lineno, err), file, lineno, err)) return -1;
    r->nl++;
    return r->full = r->o.prompts_per_step && r->nl == r->o.prompts_per_step;
}

/* The metrics line of a step (DESIGN.md §3.5) into r->line. */
static void metrics_line(struct vr_trainer_impl *r, int64_t step, const struct vr_update_stats *st, double gnorm,
                         double lr, double sec)
{
    struct vr_buf *l = &r->line;
    vr_buf_reset(l);
    vr_buf_printf(l, "{\"step\":%lld,\"loss\":%.9g,\"pg_loss\":%.9g,\"kl\":%.9g,\"clip_ratio\":%.9g,\"reward\":%.9g,"
                  "\"reward_std\":%.9g,\"completion_len\":%.9g,\"grad_norm\":%.9g,\"lr\":%.9g,\"tokens\":%lld,"
                  "\"tokens_per_s\":%.6g,\"seconds\":%.6g",
                  (long long)step, st->loss, st->pg_loss, st->kl, st->clip_ratio, st->reward, st->reward_std,
                  st->completion_len, gnorm, lr, (long long)st->tokens, st->seq_tokens / sec, sec);
    vr_batch_terms_json(&r->b, l);
    if (vr_dist_size() > 1) /* the seconds this rank spent in collectives, waiting for the others included */
        vr_buf_printf(l, ",\"ranks\":%d,\"comm_seconds\":%.6g", vr_dist_size(), vr_dist_seconds() - r->comm0);
    vr_buf_puts(l, "}\n");
}

/* The metrics went nowhere (a closed or full stdout): keep the step taken in
 * the run folder, then stop with the writer's error. */
static int metrics_lost(struct vr_trainer *t)
{
    struct vr_trainer_impl *r = t->impl;
    struct vr_err e2;
    if (save(t, VR_TRAINER_ROOT, &e2)) warn(r, "%s", e2.msg); /* rank 0 alone: the others do not know */
    else warn(r, "%s holds step %lld; --resume goes on from there", r->o.out, (long long)t->step);
    return -1;
}

/* Ranks without a micro-batch of their own in this batch wait for the
 * others: said once per run. */
static void idle_ranks(struct vr_trainer_impl *r)
{
    int N = vr_dist_size(), idle = 0, lo, hi;
    for (int k = 0; k < N; k++) {
        vr_update_share(&r->u, &r->b, k, N, &lo, &hi);
        idle += lo == hi;
    }
    if (!idle) return;
    int64_t tokens = 0;
    for (int i = 0; i < r->b.nseq; i++) tokens += r->b.s[i].n;
    warn(r, "%d of %d ranks have no micro-batch of this batch to run; --max-batch-tokens %lld or less gives each one",
         idle, N, (long long)(tokens / N > 0 ? tokens / N : 1));
    r->idle_warned = 1;
}

/* Iteration r->it on the batch: one optimizer step, or a refused one. */
static int one_step(struct vr_trainer *t, struct vr_err *err)
{
    struct vr_trainer_impl *r = t->impl;
    double t0 = vr_now();
    r->comm0 = vr_dist_seconds();
    struct vr_update_stats st;
    if (r->u.lora) r->u.lo.step = (uint64_t)t->step; /* dropout masks */
    if (r->o.grads ? read_grads(r->o.grads, &r->train_tab, r->rg, r->nr, r->train_g, &st, err)
                   : vr_update_grads(&r->u, &r->b, &st, err))
        return -1;
    if (!r->o.grads && !r->idle_warned) idle_ranks(r);
    int bad = isfinite(st.loss) ? vr_first_nonfinite(r->rg, r->nr, r->train_g) : -2;
    if (bad != -1) {
        warn(r, "step %lld: %s is not finite; the step is skipped and the weights are unchanged",
             (long long)t->step + 1, bad == -2 ? "the loss" : r->train_tab.p[r->rg[bad].id].name);
        t->refused = 1;
        return 0;
    }
    if (r->g0) memcpy(r->g0, r->train_g, r->train_tab.total * sizeof *r->g0);
    double gnorm = vr_clip_grad_norm(r->rg, r->nr, r->train_g, r->o.max_grad_norm);
    double lr = vr_lr_at(r->o.schedule, r->o.adamw.lr, t->step, r->o.warmup_steps, r->o.total_steps);
    vr_adamw_step(&r->o.adamw, lr, t->step + 1, r->rg, r->nr, r->train_w, r->train_g, &r->os);
    if (r->o.dump && write_dump(r->o.dump, &r->train_tab, r->rg, r->nr, r->g0, r->train_w, st.loss, gnorm, err))
        return -1;
    t->step++;
    t->taken++;
    double sec = vr_now() - t0;
    /* the data cursor: lines of finished batches, steps done in this one */
    int last = r->it + 1 >= r->o.iterations;
    r->last_lines = last ? t->lines + r->nl : t->lines;
    r->last_iter = last ? 0 : r->it + 1;
    if (r->o.metrics && r->writer) {
        metrics_line(r, t->step, &st, gnorm, lr, sec);
        if (r->o.metrics(r->o.ctx, r->line.p, err)) return metrics_lost(t);
    }
    if (r->o.save_every && t->step % r->o.save_every == 0 && vr_trainer_save(t, VR_TRAINER_CHECKPOINT, err))
        return -1;
    return 0;
}

int vr_trainer_step(struct vr_trainer *t, struct vr_err *err)
{
    struct vr_trainer_impl *r = t->impl;
    if (!r->full) return 0;
    int did = r->it < r->o.iterations;
    if (did) {
        if (one_step(t, err)) return -1;
        if (++r->it < r->o.iterations) return 1;
    }
    /* the batch is done */
    t->lines += r->nl;
    vr_batch_release(&r->b);
    r->nl = r->full = r->it = 0;
    if (r->o.publish && publish_gen(r, r->pub.gen + 1, err)) return -1;
    return did;
}

/* ---- the end ---- */

int vr_trainer_close(struct vr_trainer *t, struct vr_err *err)
{
    struct vr_trainer_impl *r = t->impl;
    /* the last step: a checkpoint folder (crash-safe, for --resume) when
     * saving every N steps, and always the run folder itself, which
     * vr-rollout and the next vr-update read */
    int rc = 0;
    /* the same on every rank (the saves are collective): rank 0 reads the run folder */
    int64_t root = t->taken || (r->o.merge && r->u.lora) || (r->from && r->writer && !root_holds(r->o.out, t->step));
    if (vr_dist_bcast(&root, sizeof root, err)) rc = -1;
    if (!rc && t->taken && r->o.save_every && r->saved_step != t->step)
        rc = vr_trainer_save(t, VR_TRAINER_CHECKPOINT, err);
    if (!rc && root) rc = vr_trainer_save(t, VR_TRAINER_ROOT, err);
    vr_trainer_release(t);
    return rc;
}

void vr_trainer_release(struct vr_trainer *t)
{
    struct vr_trainer_impl *r = t->impl;
    if (!r) return;
    if (r->pub.fd >= 0 || r->pub.dir) vr_publish_close(&r->pub);
    vr_batch_release(&r->b);
    vr_buf_release(&r->line);
    vr_optstate_release(&r->os);
    free(r->rg);
    free(r->g0);
    if (r->have_u) vr_update_release(&r->u);
    free(r->from);
    /* a run folder this run made and saved nothing into leaves no trace */
    if (t->made) vr_ckpt_run_drop_empty(r->o.out);
    if (r->lock >= 0) vr_lock_release(r->lock);
    free(r);
    t->impl = NULL;
}

int vr_trainer_run(struct vr_trainer *t, struct vr_jsonl_files *in, struct vr_err *err)
{
    for (int rc = 1; rc > 0;) {
        json_t *line = NULL;
        const char *file;
        long lineno;
        /* rank 0 reads; every rank of a data-parallel job gets the line */
        if ((rc = vr_dist_jsonl_next(in, &line, &file, &lineno, err)) < 0) return -1;
        int more = vr_trainer_feed(t, line, file, lineno, err);
        json_decref(line);
        if (more < 0 && t->taken) { /* keep the steps taken: the run folder at the last finished batch */
            struct vr_err e2;
            if (vr_trainer_save(t, VR_TRAINER_ROOT, &e2)) warn(t->impl, "%s", e2.msg);
        }
        while (more > 0) more = vr_trainer_step(t, err);
        if (more < 0) return -1;
    }
    return 0;
}

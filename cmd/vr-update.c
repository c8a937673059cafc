/* vr-update: GRPO (or SFT) steps on scored lines: loss, backward, AdamW, and
 * the next checkpoint; one metrics line per optimizer step on stdout
 * (DESIGN.md §2, §3.5, §6). */
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "cli.h"
#include "fs.h"
#include "jsonl.h"
#include "lora.h"
#include "optim.h"
#include "publish.h"
#include "safetensors.h"
#include "update.h"

enum { O_REF = 256, O_SFT, O_LOSS, O_EPS, O_EPSH, O_BETA, O_ITER, O_TEMP, O_TEMPLATE, O_SYSTEM, O_LR, O_SCHED,
       O_WARMUP, O_STEPS, O_B1, O_B2, O_AEPS, O_WD, O_CLIP, O_PPS, O_BUDGET, O_CKACT, O_FREEZEV, O_FREEZE,
       O_SAVE, O_KEEP, O_RESUME, O_DTYPE, O_DUMP, O_GRADS, O_LORA_R, O_LORA_A, O_LORA_D, O_ADAPTER, O_MERGE, O_SEED,
       O_PUBLISH, O_MAXTOK, O_FRESH };

static const struct vr_opt opts[] = {
    {"model", 'm', "DIR", "the policy checkpoint to start from (required)"},
    {"out", 'o', "DIR", "the run folder: checkpoints in DIR/checkpoint-STEP, the last one also in DIR (required)"},
    {"ref", O_REF, "DIR", "the reference model of the KL term (required when --beta > 0)"},
    {"sft", O_SFT, NULL, "supervised fine-tuning: cross-entropy on the answers of task lines"},
    {"loss", O_LOSS, "NAME", "grpo (VLM-R1), bnpo, dapo or dr_grpo (default grpo)"},
    {"epsilon", O_EPS, "E", "clip the ratio below at 1 - E (default 0.2)"},
    {"epsilon-high", O_EPSH, "E", "clip the ratio above at 1 + E (default: --epsilon)"},
    {"beta", O_BETA, "B", "weight of the k3 KL against --ref (default 0.04; 0 loads no reference)"},
    {"iterations", O_ITER, "MU", "optimizer steps per batch, the rollout logp as the old policy (default 1)"},
    {"temperature", O_TEMP, "T", "the sampling temperature: logits / T, as vr-rollout (default 1.0)"},
    {"template", O_TEMPLATE, "NAME|FILE", "question template, as given to vr-rollout (default r1)"},
    {"system", O_SYSTEM, "TEXT", "system prompt, as given to vr-rollout"},
    {"lr", O_LR, "LR", "peak learning rate (default 1e-6)"},
    {"lr-schedule", O_SCHED, "NAME", "constant, constant_with_warmup, linear or cosine (default constant)"},
    {"warmup-steps", O_WARMUP, "N", "steps of linear warm-up (default 0)"},
    {"steps", O_STEPS, "N", "total optimizer steps of the run, for linear and cosine schedules"},
    {"adam-beta1", O_B1, "B", "AdamW beta1 (default 0.9)"},
    {"adam-beta2", O_B2, "B", "AdamW beta2 (default 0.999)"},
    {"adam-eps", O_AEPS, "E", "AdamW epsilon (default 1e-8)"},
    {"weight-decay", O_WD, "W", "AdamW decoupled weight decay (default 0)"},
    {"max-grad-norm", O_CLIP, "X", "clip the global gradient norm to X, 0 for none (default 1.0)"},
    {"prompts-per-step", O_PPS, "N", "input lines (prompts, G completions each) per batch (default 0: all)"},
    {"max-batch-tokens", O_BUDGET, "N", "tokens through the model at once; gradients accumulate (default 16384)"},
    {"checkpoint-activations", O_CKACT, NULL, "keep only block inputs; recompute blocks in backward"},
    {"freeze-vision", O_FREEZEV, NULL, "train no vision-tower parameter"},
    {"freeze", O_FREEZE, "REGEX", "train no parameter whose name matches the extended REGEX"},
    {"save-every", O_SAVE, "N", "also write a checkpoint every N steps (default 0: only at the end)"},
    {"keep", O_KEEP, "N", "keep the newest N checkpoint-STEP folders (default 2)"},
    {"publish", O_PUBLISH, "DIR", "after each batch put the weights in DIR with a generation number, for vr-rollout"},
    {"resume", O_RESUME, NULL, "continue from the newest complete checkpoint in --out, skipping the lines it used"},
    {"fresh-optimizer", O_FRESH, NULL, "start AdamW and the step count afresh, not from the --model folder's state (e.g. GRPO after SFT)"},
    {"dtype", O_DTYPE, "TYPE", "dtype of the saved weights: bf16, f16, f32 (default: the policy's)"},
    {"max-tokens", O_MAXTOK, "N", "the rollout's --max-tokens: dr_grpo divides by completions x N (default: the longest)"},
    {"lora-r", O_LORA_R, "R", "train LoRA adapters of rank R on every linear outside the vision tower"},
    {"lora-alpha", O_LORA_A, "A", "LoRA scale alpha / R (default 2R)"},
    {"lora-dropout", O_LORA_D, "P", "dropout on the adapters' input (default 0)"},
    {"adapter", O_ADAPTER, "DIR", "start from this PEFT LoRA adapter (default: the --model folder's, if any)"},
    {"merge", O_MERGE, NULL, "write the run folder as full weights with the adapters folded in"},
    {"seed", O_SEED, "N", "seed of the adapters' initialisation and dropout (default 0)"},
    {"dump", O_DUMP, "FILE", "after each step write its loss, gradients and new weights to FILE (safetensors)"},
    {"grads", O_GRADS, "FILE", "take each step's gradients from FILE (grad.NAME, as --dump writes) instead of computing them"},
    {0},
};

static const struct vr_cli cli = {
    "vr-update",
    "--model DIR --out DIR [OPTION]... [FILE]...",
    "Read scored lines (vr-reward's output; task lines with --sft), take GRPO or SFT optimizer steps\n"
    "with AdamW, write the checkpoint to --out and one metrics line per step on standard output.\n"
    "A batch is --prompts-per-step lines, each a prompt with its G completions.",
    opts,
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
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
                      struct vr_ustats *st, struct vr_err *err)
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

/* What a checkpoint of the run holds. */
struct vr_run {
    const char *out, *src;          /* the run folder; the model folder of the non-weight files */
    const struct vr_ptab *tab;      /* the model's weights ... */
    const float *w;
    const struct vr_ptab *ttab;     /* ... and what trains (the same, or the adapters) */
    const float *tw;
    const struct vr_optstate *os;
    enum vr_dtype dt;
    int keep;
    const struct vr_lora *lora;     /* LoRA: adapter files beside the base weights */
    int merge;                      /* the run folder gets merged full weights */
};

static int untie_config(const char *dir, struct vr_err *err);

static int untie_more(void *ctx, const char *dir, struct vr_err *err)
{
    (void)ctx;
    return untie_config(dir, err);
}

static int write_adapter(void *ctx, const char *dir, struct vr_err *err)
{
    const struct vr_run *r = ctx;
    return vr_lora_write(r->lora, r->tw, dir, r->src, err);
}

/* LoRA's optimizer state goes into optimizer.safetensors as extras named
 * like the model's own: master.KEY, exp_avg.KEY, exp_avg_sq.KEY. */
static void adapter_extras(const struct vr_run *r, char (**names)[200], const char ***np, struct vr_tensor **t,
                           float *m, float *v, float *w)
{
    int n = r->ttab->np;
    *names = vr_xmalloc(3 * (size_t)n * sizeof **names);
    *np = vr_xmalloc(3 * (size_t)n * sizeof **np);
    *t = vr_xcalloc(3 * (size_t)n, sizeof **t);
    static const char *const pre[3] = {"master", "exp_avg", "exp_avg_sq"};
    float *src[3] = {w, m, v};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < n; i++) {
            const struct vr_param *p = &r->ttab->p[i];
            snprintf((*names)[k * n + i], sizeof **names, "%s.%s", pre[k], p->name);
            (*np)[k * n + i] = (*names)[k * n + i];
            vr_tensor_view(&(*t)[k * n + i], VR_DTYPE_F32, p->ndim, p->shape, src[k] + r->ttab->off[i]);
        }
}

/* config.json of dir with tie_word_embeddings false (at the top and in text_config). */
static int untie_config(const char *dir, struct vr_err *err)
{
    char *p = vr_path_join(dir, "config.json");
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    int rc;
    if (!j) rc = vr_err_set(err, VR_ERR_INPUT, p, je.line, "%s", je.text);
    else {
        json_object_set_new(j, "tie_word_embeddings", json_false());
        json_t *tc = json_object_get(j, "text_config");
        if (json_is_object(tc)) json_object_set_new(tc, "tie_word_embeddings", json_false());
        rc = vr_ckpt_write_json(p, j, err);
        json_decref(j);
    }
    free(p);
    return rc;
}

/* A checkpoint of the run: RUN/checkpoint-STEP, or (root) the files of RUN
 * itself, each atomically (the root as one set of files, which drops what an
 * earlier save there had and this one has not: adapter files, optimizer
 * state). */
static int save(const struct vr_run *r, int64_t step, int64_t lines, int iteration, int root, struct vr_err *err)
{
    json_t *st = json_pack("{s:I,s:I,s:i}", "step", (json_int_t)step, "lines", (json_int_t)lines, "iteration",
                           iteration);
    struct vr_ckpt c = {.src = r->src, .tab = r->tab, .master = r->w, .dtype = r->dt,
                        .max_shard_bytes = 4000000000ull, .opt = r->os, .state = st};
    char (*names)[200] = NULL;
    const char **np = NULL;
    struct vr_tensor *t = NULL;
    float *merged = NULL;
    struct vr_param *untied = NULL;
    size_t *uoff = NULL;
    struct vr_ptab mtab;
    int untie = 0;
    if (r->lora && root && r->merge) { /* full weights, adapters folded in: a new base model */
        /* an adapted lm_head tied to the embedding becomes its own tensor */
        int head = -1, embed = -1;
        for (int i = 0; i < r->tab->np; i++) {
            if (!strcmp(r->tab->p[i].name, "lm_head.weight")) head = i;
            if (!strcmp(r->tab->p[i].name, "model.embed_tokens.weight")) embed = i;
        }
        untie = head >= 0 && r->tab->p[head].tied && r->lora->of[head] >= 0;
        size_t extra = untie ? (size_t)(r->tab->p[head].shape[0] * r->tab->p[head].shape[1]) : 0;
        merged = vr_xmalloc((r->tab->total + extra + 1) * sizeof *merged);
        memcpy(merged, r->w, r->tab->total * sizeof *merged);
        mtab = *r->tab;
        if (untie) {
            untied = vr_xmalloc((size_t)mtab.np * sizeof *untied);
            uoff = vr_xmalloc((size_t)mtab.np * sizeof *uoff);
            memcpy(untied, mtab.p, (size_t)mtab.np * sizeof *untied);
            memcpy(uoff, mtab.off, (size_t)mtab.np * sizeof *uoff);
            untied[head].tied = 0;
            uoff[head] = r->tab->total;
            memcpy(merged + uoff[head], r->w + uoff[embed], extra * sizeof *merged);
            mtab.p = untied;
            mtab.off = uoff;
            mtab.total = r->tab->total + extra;
        }
        vr_lora_merge_flat(r->lora, r->tw, merged, mtab.off);
        c.tab = &mtab;
        c.master = merged;
        c.opt = NULL;
        if (untie) c.more = untie_more;
    } else if (r->lora) {
        adapter_extras(r, &names, &np, &t, r->os->m, r->os->v, (float *)r->tw);
        c.nextra = 3 * r->ttab->np;
        c.extra_names = np;
        c.extra = t;
        c.more = write_adapter;
        c.more_ctx = (void *)r;
    }
    int rc = root ? vr_ckpt_replace(r->out, &c, err) : vr_ckpt_save(r->out, step, &c, r->keep, NULL, err);
    json_decref(st);
    free(untied);
    free(uoff);
    free(names);
    free(np);
    free(t);
    free(merged);
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

/* The optimizer state of a folder (1 read, 0 none, -1 error). */
static int load_optim(const struct vr_run *r, const char *dir, struct vr_err *err)
{
    if (!r->lora) return vr_ckpt_load_optim(dir, r->tab, (float *)r->w, (struct vr_optstate *)r->os, 0, NULL, NULL, err);
    if (!vr_lora_present(dir)) return 0; /* new adapters on a full-weight folder: fresh moments */
    char (*names)[200];
    const char **np;
    struct vr_tensor *t;
    adapter_extras(r, &names, &np, &t, r->os->m, r->os->v, (float *)r->tw);
    /* no model tensor trains: only the extras are read, into views of the live arrays */
    struct vr_optstate none = {0};
    int rc = vr_ckpt_load_optim(dir, r->tab, NULL, &none, 3 * r->ttab->np, np, t, err);
    free(names);
    free(np);
    free(t);
    return rc;
}

/* --publish: generation gen of the weights, what a checkpoint of the run
 * would hold (lib/publish.h); LoRA: the base weights once, then the adapter */
static int publish_gen(struct vr_publish *p, const struct vr_run *r, int64_t gen, struct vr_err *err)
{
    if ((!r->lora || p->gen < 0) && vr_publish_weights(p, gen, r->src, r->tab, r->w, r->dt, err)) return -1;
    if (r->lora && vr_lora_write(r->lora, r->tw, p->dir, r->src, err)) return -1;
    return vr_publish_mark(p, gen, err);
}

/* The run folder this process made: removed at exit while it holds nothing
 * but the lock (a run that failed before its first save leaves no trace). */
static const char *made_out;
static void drop_made_out(void) { vr_ckpt_run_drop_empty(made_out); }

int main(int argc, char **argv)
{
    struct vr_update_opts uo = {.loss = VR_LOSS_GRPO, .epsilon = 0.2, .epsilon_high = -1, .beta = 0.04,
                                .temperature = 1.0, .max_batch_tokens = 16384};
    struct vr_adamw ao = {.lr = 1e-6, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0};
    const char *model = NULL, *out = NULL, *ref = NULL, *tmpl = "r1", *sched = "constant", *dtype = NULL,
               *dump = NULL, *grads = NULL;
    char *tmpl_text = NULL;
    const char *publish = NULL;
    double clip = 1.0;
    int iters = 1, pps = 0, warmup = 0, save_every = 0, keep = 2, resume = 0, nfreeze = 0, fresh = 0;
    int64_t total_steps = 0;
    const char *freeze[16];
    int freeze_vision = 0, merge = 0;
    struct vr_err err;
    int c, ind;
    const char *arg;
    vr_cli_init(&cli, argc, argv);
    /* a closed stdout must not kill a step in the middle: writes fail with
     * EPIPE instead, and the metrics writer saves the run before it stops */
    signal(SIGPIPE, SIG_IGN);
    /* a file-size limit (ulimit -f) must not kill a save in the middle
     * either: the write fails with EFBIG, and the save with a message */
    signal(SIGXFSZ, SIG_IGN);
    while ((c = vr_cli_next(&ind, &arg)) != -1) {
        switch (c) {
        case 'm': model = arg; break;
        case 'o': out = arg; break;
        case O_REF: ref = arg; break;
        case O_SFT: uo.sft = 1; break;
        case O_LOSS:
            if (!strcmp(arg, "grpo")) uo.loss = VR_LOSS_GRPO;
            else if (!strcmp(arg, "bnpo")) uo.loss = VR_LOSS_BNPO;
            else if (!strcmp(arg, "dapo")) uo.loss = VR_LOSS_DAPO;
            else if (!strcmp(arg, "dr_grpo")) uo.loss = VR_LOSS_DR_GRPO;
            else vr_die_usage("--loss: '%s' is not grpo, bnpo, dapo or dr_grpo", arg);
            break;
        case O_EPS: uo.epsilon = vr_cli_double("epsilon", arg, 0, 1); break;
        case O_EPSH: uo.epsilon_high = vr_cli_double("epsilon-high", arg, 0, 100); break;
        case O_BETA: uo.beta = vr_cli_double("beta", arg, 0, 1e6); break;
        case O_ITER: iters = (int)vr_cli_int("iterations", arg, 1, 1000); break;
        case O_TEMP: uo.temperature = vr_cli_double("temperature", arg, 1e-6, 100); break;
        case O_TEMPLATE: tmpl = arg; break;
        case O_SYSTEM: uo.chat.system = arg; break;
        case O_LR: ao.lr = vr_cli_double("lr", arg, 0, 10); break;
        case O_SCHED: sched = arg; break;
        case O_WARMUP: warmup = (int)vr_cli_int("warmup-steps", arg, 0, 1 << 30); break;
        case O_STEPS: total_steps = vr_cli_int("steps", arg, 1, INT64_MAX / 2); break;
        case O_B1: ao.beta1 = vr_cli_double("adam-beta1", arg, 0, 0.999999999); break;
        case O_B2: ao.beta2 = vr_cli_double("adam-beta2", arg, 0, 0.999999999); break;
        case O_AEPS: ao.eps = vr_cli_double("adam-eps", arg, 0, 1); break;
        case O_WD: ao.weight_decay = vr_cli_double("weight-decay", arg, 0, 10); break;
        case O_CLIP: clip = vr_cli_double("max-grad-norm", arg, 0, 1e12); break;
        case O_PPS: pps = (int)vr_cli_int("prompts-per-step", arg, 0, 1 << 30); break;
        case O_BUDGET: uo.max_batch_tokens = vr_cli_int("max-batch-tokens", arg, 1, INT64_MAX / 2); break;
        case O_CKACT: uo.checkpoint = 1; break;
        case O_FREEZEV: freeze_vision = 1; break;
        case O_FREEZE:
            if (nfreeze == 16) vr_die_usage("--freeze: at most 16");
            freeze[nfreeze++] = arg;
            break;
        case O_SAVE: save_every = (int)vr_cli_int("save-every", arg, 0, 1 << 30); break;
        case O_KEEP: keep = (int)vr_cli_int("keep", arg, 1, 1 << 30); break;
        case O_RESUME: resume = 1; break;
        case O_FRESH: fresh = 1; break;
        case O_DTYPE: dtype = arg; break;
        case O_DUMP: dump = arg; break;
        case O_GRADS: grads = arg; break;
        case O_LORA_R: uo.lora_r = (int)vr_cli_int("lora-r", arg, 1, 65536); break;
        case O_LORA_A: uo.lora_alpha = vr_cli_double("lora-alpha", arg, 1e-9, 1e9); break;
        case O_LORA_D:
            uo.lora_dropout = vr_cli_double("lora-dropout", arg, 0, 0.99);
            uo.lora_dropout_set = 1;
            break;
        case O_ADAPTER: uo.adapter_dir = arg; break;
        case O_MERGE: merge = 1; break;
        case O_SEED: uo.seed = vr_cli_u64("seed", arg); break;
        case O_PUBLISH: publish = arg; break;
        case O_MAXTOK: uo.max_len = (int)vr_cli_int("max-tokens", arg, 1, 1 << 24); break;
        }
    }
    if (!model) vr_die_usage("--model DIR is required");
    if (!out) vr_die_usage("--out DIR is required");
    if (publish && !pps) vr_die_usage("--publish needs --prompts-per-step N (a generation per batch of N lines)");
    if (uo.epsilon_high < 0) uo.epsilon_high = uo.epsilon;
    if (uo.lora_alpha == 0) uo.lora_alpha = 2.0 * uo.lora_r;
    uo.freeze_vision = freeze_vision;
    enum vr_schedule sk;
    if (vr_schedule_parse(sched, &sk)) vr_die_usage("--lr-schedule: '%s' is not constant, constant_with_warmup, linear or cosine", sched);
    if ((sk == VR_SCHED_LINEAR || sk == VR_SCHED_COSINE) && !total_steps)
        vr_die_usage("--lr-schedule %s needs --steps N (the run's total optimizer steps)", sched);
    enum vr_dtype sdt = VR_DTYPE_BF16;
    int have_dtype = 0;
    if (dtype) {
        if (!strcmp(dtype, "bf16")) sdt = VR_DTYPE_BF16;
        else if (!strcmp(dtype, "f16")) sdt = VR_DTYPE_F16;
        else if (!strcmp(dtype, "f32")) sdt = VR_DTYPE_F32;
        else vr_die_usage("--dtype: '%s' is not bf16, f16 or f32", dtype);
        have_dtype = 1;
    }
    if (vr_chat_template_arg(tmpl, &uo.chat.tmpl, &tmpl_text, &err)) vr_die(&err);

    /* --publish: take DIR now, so that a vr-rollout --follow DIR sees a writer at once */
    struct vr_publish pub = {.fd = -1};
    if (publish && vr_publish_open(&pub, publish, model, pps, &err)) vr_die(&err);

    /* one writer per run folder: a second vr-update into it is refused, not mixed in */
    int made = 0;
    if (vr_ckpt_run_lock(out, &made, &err) < 0) vr_die(&err); /* held until we exit */
    if (made) {
        made_out = out;
        atexit(drop_made_out);
    }
    /* what a killed writer left: a save of the root to finish, temporaries */
    int recovered = vr_ckpt_recover(out, &err);
    if (recovered < 0) vr_die(&err);
    if (recovered) vr_warn("%s: finished the save that a killed vr-update had committed but not put in place", out);

    /* the run state: --resume takes the newest complete checkpoint of --out */
    char *from = NULL;
    if (resume && vr_ckpt_newest(out, &from, NULL, &err) < 0) vr_die(&err);
    if (resume && !from) vr_warn("%s has no complete checkpoint; starting from %s", out, model);
    struct vr_update u;
    if (vr_update_init(&u, from ? from : model, ref, &uo, &err)) vr_die(&err);
    if (!have_dtype) sdt = u.m.params[u.L.embed].t.dtype;
    struct vr_layout *L = &u.L;
    for (int f = 0; f < nfreeze; f++) {
        regex_t re;
        if (regcomp(&re, freeze[f], REG_EXTENDED | REG_NOSUB)) vr_die_usage("--freeze: '%s' is not a regular expression", freeze[f]);
        for (int i = 0; i < L->np; i++)
            if (regexec(&re, L->p[i].name, 0, NULL, 0) == 0) L->train[i] = 0;
        regfree(&re);
    }
    for (int i = 0; i < L->np; i++)
        if (freeze_vision && strncmp(L->p[i].name, "visual.", 7) == 0) L->train[i] = 0;
    if (L->p[L->head].tied) L->train[L->head] = L->train[L->embed];
    struct vr_ptab tab = {L->np, L->p, L->off, L->train, L->total};
    /* what trains: the weights, or the adapters */
    struct vr_ptab ttab = tab;
    float *tw = u.w, *tg = u.g;
    if (u.lora) {
        ttab = (struct vr_ptab){2 * u.lo.n, u.lo.tab, u.lo.off, NULL, u.lo.total};
        tw = u.aw;
        tg = u.ag;
    }
    struct vr_range *rg = vr_xmalloc(((size_t)ttab.np + 1) * sizeof *rg);
    int nr = vr_ptab_ranges(&ttab, rg);
    if (!nr) vr_die_usage("every parameter is frozen");
    struct vr_optstate os;
    if (vr_optstate_init(&os, ttab.total, &err)) vr_die(&err);
    float *g0 = dump ? vr_xmalloc(ttab.total * sizeof *g0) : NULL;
    struct vr_run run = {.out = out, .src = model, .tab = &tab, .w = u.w, .ttab = &ttab, .tw = tw, .os = &os,
                         .dt = sdt, .keep = keep, .lora = u.lora ? &u.lo : NULL, .merge = merge};
    /* the optimizer state of the starting folder, when it has one: one-shot
     * pipelines continue AdamW (and the step count) from step to step;
     * --fresh-optimizer ignores the --model folder's (not a resumed run's) */
    const char *start = from ? from : model;
    int64_t step = 0, lines = 0;
    int iter0 = 0;
    if ((from || !fresh) && load_optim(&run, start, &err) < 0) vr_die(&err);
    json_t *st0 = NULL;
    if ((from || !fresh) && vr_ckpt_load_state(start, &st0, &err) < 0) vr_die(&err);
    if (st0) {
        step = json_integer_value(json_object_get(st0, "step"));
        if (from) { /* the same input: skip what the checkpoint used */
            lines = json_integer_value(json_object_get(st0, "lines"));
            iter0 = (int)json_integer_value(json_object_get(st0, "iteration"));
        }
        json_decref(st0);
    }
    /* generation 0: the starting weights (after --resume, the batches done) */
    if (publish && publish_gen(&pub, &run, lines / pps, &err)) vr_die(&err);

    int eof = 0, refused = 0;
    struct vr_jsonl_files in;
    vr_jsonl_files_init(&in, argv + ind, argc - ind);
    /* the data cursor of the last step taken: at first the checkpoint's */
    int64_t skip = lines, saved_step = -1, last_lines = lines;
    int last_iter = iter0;
    int taken = 0;
    while (!eof) {
        struct vr_batch b = {0};
        int nl = 0;
        while (!pps || nl < pps) {
            json_t *t;
            int rc = vr_jsonl_files_next(&in, &t, &err);
            if (rc < 0) vr_die(&err);
            if (rc == 0) {
                eof = 1;
                break;
            }
            if (skip > 0) { /* used by the checkpoint we resumed from */
                skip--;
                json_decref(t);
                continue;
            }
            if (vr_batch_add(&u, &b, t, in.in.path, in.in.line, &err)) {
                /* keep the steps already taken: the run folder at the last finished batch */
                struct vr_err e2;
                if (taken && save(&run, step, last_lines, last_iter, 1, &e2)) vr_warn("%s", e2.msg);
                vr_die(&err);
            }
            json_decref(t);
            nl++;
        }
        if (!nl) break;
        for (int it = iter0; it < iters; it++) {
            double t0 = now();
            struct vr_ustats st;
            if (u.lora) u.lo.step = (uint64_t)step; /* dropout masks */
            if (grads ? read_grads(grads, &ttab, rg, nr, tg, &st, &err) : vr_update_grads(&u, &b, &st, &err))
                vr_die(&err);
            int bad = isfinite(st.loss) ? vr_first_nonfinite(rg, nr, tg) : -2;
            if (bad != -1) {
                vr_warn("step %lld: %s is not finite; the step is skipped and the weights are unchanged",
                        (long long)step + 1, bad == -2 ? "the loss" : ttab.p[rg[bad].id].name);
                refused = 1;
                continue;
            }
            if (g0) memcpy(g0, tg, ttab.total * sizeof *g0);
            double gnorm = vr_clip_grad_norm(rg, nr, tg, clip);
            double lr = vr_lr_at(sk, ao.lr, step, warmup, total_steps);
            vr_adamw_step(&ao, lr, step + 1, rg, nr, tw, tg, &os);
            if (dump && write_dump(dump, &ttab, rg, nr, g0, tw, st.loss, gnorm, &err)) vr_die(&err);
            step++;
            taken++;
            double sec = now() - t0;
            printf("{\"step\":%lld,\"loss\":%.9g,\"pg_loss\":%.9g,\"kl\":%.9g,\"clip_ratio\":%.9g,\"reward\":%.9g,"
                   "\"reward_std\":%.9g,\"completion_len\":%.9g,\"grad_norm\":%.9g,\"lr\":%.9g,\"tokens\":%lld,"
                   "\"tokens_per_s\":%.6g,\"seconds\":%.6g",
                   (long long)step, st.loss, st.pg_loss, st.kl, st.clip_ratio, st.reward, st.reward_std,
                   st.completion_len, gnorm, lr, (long long)st.tokens, st.seq_tokens / sec, sec);
            struct vr_buf terms = {0};
            vr_batch_terms_json(&b, &terms);
            printf("%s}\n", terms.len ? terms.p : "");
            vr_buf_free(&terms);
            /* the data cursor: lines of finished batches, steps done in this one */
            int64_t cur_lines = it + 1 < iters ? lines : lines + nl;
            int cur_iter = it + 1 < iters ? it + 1 : 0;
            if (fflush(stdout) != 0 || ferror(stdout)) {
                /* a closed or full stdout (| head, a full disk): keep the step taken, then stop */
                int e = errno;
                struct vr_err e2;
                if (save(&run, step, cur_lines, cur_iter, 1, &e2)) vr_warn("%s", e2.msg);
                else vr_warn("%s holds step %lld; --resume goes on from there", out, (long long)step);
                vr_die_msg("<stdout>: cannot write the metrics: %s", strerror(e));
            }
            if (save_every && step % save_every == 0) {
                if (save(&run, step, cur_lines, cur_iter, 0, &err)) vr_die(&err);
                saved_step = step;
            }
            last_lines = cur_lines;
            last_iter = cur_iter;
        }
        iter0 = 0;
        lines += nl;
        vr_batch_release(&b);
        if (publish && publish_gen(&pub, &run, pub.gen + 1, &err)) vr_die(&err);
    }
    /* the last step: a checkpoint folder (crash-safe, for --resume) when
     * saving every N steps, and always the run folder itself, which vr-rollout
     * and the next vr-update read */
    if (taken && save_every && saved_step != step &&
        save(&run, step, last_lines, last_iter, 0, &err))
        vr_die(&err);
    if ((taken || (merge && u.lora) || (from && !root_holds(out, step))) &&
        save(&run, step, last_lines, last_iter, 1, &err))
        vr_die(&err);
    if (publish) vr_publish_close(&pub);
    vr_jsonl_files_close(&in);
    vr_optstate_release(&os);
    free(rg);
    free(g0);
    vr_update_release(&u);
    free(from);
    free(tmpl_text);
    return refused ? 1 : 0;
}

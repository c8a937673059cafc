/* vr-update: GRPO (or SFT) steps on scored lines: loss, backward, AdamW, and
 * the next checkpoint; one metrics line per optimizer step on stdout
 * (DESIGN.md §2, §3.5, §6). The run itself is lib/trainer.h: this main reads
 * the options and the lines, prints, and turns errors into exit codes. */
#include <errno.h>
#include <regex.h>
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "dist.h"
#include "jsonl.h"
#include "trainer.h"

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

/* The index of s among names (NULL-terminated), -1 when it is not there. */
static int pick(const char *s, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

/* Options into o; returns the index of the first file argument. */
static int parse(struct vr_trainer_opts *o, char **tmpl_text)
{
    static const char *const losses[] = {"grpo", "bnpo", "dapo", "dr_grpo", NULL}; /* enum vr_loss */
    static const char *const dtypes[] = {"bf16", "f16", "f32", NULL};
    static const enum vr_dtype dtype_of[] = {VR_DTYPE_BF16, VR_DTYPE_F16, VR_DTYPE_F32};
    static regex_t freeze[16]; /* held for the whole run */
    const char *tmpl = "r1", *sched = "constant", *dtype = NULL, *arg;
    struct vr_update_opts *uo = &o->update;
    struct vr_err err;
    int c, ind;
    vr_trainer_opts_init(o);
    o->freeze = freeze;
    while ((c = vr_cli_next(&ind, &arg)) != -1) {
        switch (c) {
        case 'm': o->model = arg; break;
        case 'o': o->out = arg; break;
        case O_REF: o->ref = arg; break;
        case O_SFT: uo->sft = 1; break;
        case O_LOSS:
            if ((c = pick(arg, losses)) < 0) vr_die_usage("--loss: '%s' is not grpo, bnpo, dapo or dr_grpo", arg);
            uo->loss = (enum vr_loss)c;
            break;
        case O_EPS: uo->epsilon = vr_cli_double("epsilon", arg, 0, 1); break;
        case O_EPSH: uo->epsilon_high = vr_cli_double("epsilon-high", arg, 0, 100); break;
        case O_BETA: uo->beta = vr_cli_double("beta", arg, 0, 1e6); break;
        case O_ITER: o->iterations = (int)vr_cli_int("iterations", arg, 1, 1000); break;
        case O_TEMP: uo->temperature = vr_cli_double("temperature", arg, 1e-6, 100); break;
        case O_TEMPLATE: tmpl = arg; break;
        case O_SYSTEM: uo->chat.system = arg; break;
        case O_LR: o->adamw.lr = vr_cli_double("lr", arg, 0, 10); break;
        case O_SCHED: sched = arg; break;
        case O_WARMUP: o->warmup_steps = (int)vr_cli_int("warmup-steps", arg, 0, 1 << 30); break;
        case O_STEPS: o->total_steps = vr_cli_int("steps", arg, 1, INT64_MAX / 2); break;
        case O_B1: o->adamw.beta1 = vr_cli_double("adam-beta1", arg, 0, 0.999999999); break;
        case O_B2: o->adamw.beta2 = vr_cli_double("adam-beta2", arg, 0, 0.999999999); break;
        case O_AEPS: o->adamw.eps = vr_cli_double("adam-eps", arg, 0, 1); break;
        case O_WD: o->adamw.weight_decay = vr_cli_double("weight-decay", arg, 0, 10); break;
        case O_CLIP: o->max_grad_norm = vr_cli_double("max-grad-norm", arg, 0, 1e12); break;
        case O_PPS: o->prompts_per_step = (int)vr_cli_int("prompts-per-step", arg, 0, 1 << 30); break;
        case O_BUDGET: uo->max_batch_tokens = vr_cli_int("max-batch-tokens", arg, 1, INT64_MAX / 2); break;
        case O_CKACT: uo->checkpoint = 1; break;
        case O_FREEZEV: uo->freeze_vision = 1; break;
        case O_FREEZE:
            if (o->nfreeze == 16) vr_die_usage("--freeze: at most 16");
            if (regcomp(&freeze[o->nfreeze++], arg, REG_EXTENDED | REG_NOSUB))
                vr_die_usage("--freeze: '%s' is not a regular expression", arg);
            break;
        case O_SAVE: o->save_every = (int)vr_cli_int("save-every", arg, 0, 1 << 30); break;
        case O_KEEP: o->keep = (int)vr_cli_int("keep", arg, 1, 1 << 30); break;
        case O_RESUME: o->resume = 1; break;
        case O_FRESH: o->fresh_optimizer = 1; break;
        case O_DTYPE: dtype = arg; break;
        case O_DUMP: o->dump = arg; break;
        case O_GRADS: o->grads = arg; break;
        case O_LORA_R: uo->lora_r = (int)vr_cli_int("lora-r", arg, 1, 65536); break;
        case O_LORA_A: uo->lora_alpha = vr_cli_double("lora-alpha", arg, 1e-9, 1e9); break;
        case O_LORA_D:
            uo->lora_dropout = vr_cli_double("lora-dropout", arg, 0, 0.99);
            uo->lora_dropout_set = 1;
            break;
        case O_ADAPTER: uo->adapter_dir = arg; break;
        case O_MERGE: o->merge = 1; break;
        case O_SEED: uo->seed = vr_cli_u64("seed", arg); break;
        case O_PUBLISH: o->publish = arg; break;
        case O_MAXTOK: uo->max_len = (int)vr_cli_int("max-tokens", arg, 1, 1 << 24); break;
        }
    }
    if (!o->model) vr_die_usage("--model DIR is required");
    if (!o->out) vr_die_usage("--out DIR is required");
    if (o->publish && !o->prompts_per_step) vr_die_usage("--publish needs --prompts-per-step N (a generation per batch of N lines)");
    if (vr_schedule_parse(sched, &o->schedule)) vr_die_usage("--lr-schedule: '%s' is not constant, constant_with_warmup, linear or cosine", sched);
    if ((o->schedule == VR_SCHED_LINEAR || o->schedule == VR_SCHED_COSINE) && !o->total_steps)
        vr_die_usage("--lr-schedule %s needs --steps N (the run's total optimizer steps)", sched);
    if (dtype) {
        if ((c = pick(dtype, dtypes)) < 0) vr_die_usage("--dtype: '%s' is not bf16, f16 or f32", dtype);
        o->dtype = dtype_of[c];
        o->dtype_set = 1;
    }
    if (vr_chat_template_arg(tmpl, &uo->chat.tmpl, tmpl_text, &err)) vr_die(&err);
    return ind;
}

static void warn(void *ctx, const char *msg)
{
    (void)ctx;
    vr_warn("%s", msg);
}

/* Each metrics line is flushed at once; a closed or full stdout (| head, a
 * full disk) ends the run, which the trainer first saves. */
static int metrics(void *ctx, const char *line, struct vr_err *err)
{
    (void)ctx;
    fputs(line, stdout);
    if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
    int e = errno;
    return vr_err_set(err, VR_ERR_SYS, "<stdout>", 0, "cannot write the metrics: %s", strerror(e));
}

/* Stop after a failure: the run folder unlocked (and gone when this run made
 * it and saved nothing), the message printed. */
__attribute__((noreturn)) static void fail(struct vr_trainer *t, const struct vr_err *err)
{
    vr_trainer_release(t);
    vr_die(err);
}

int main(int argc, char **argv)
{
    struct vr_trainer_opts o;
    struct vr_trainer t;
    struct vr_err err;
    char *tmpl_text = NULL;
    vr_cli_init(&cli, argc, argv);
    /* a closed stdout must not kill a step in the middle: writes fail with
     * EPIPE instead, and the metrics writer saves the run before it stops */
    signal(SIGPIPE, SIG_IGN);
    /* a file-size limit (ulimit -f) must not kill a save in the middle
     * either: the write fails with EFBIG, and the save with a message */
    signal(SIGXFSZ, SIG_IGN);
    int ind = parse(&o, &tmpl_text);
    if (vr_dist_init(&err)) vr_die(&err); /* under mpirun or srun: one rank of a data-parallel job */
    o.warn = warn;
    o.metrics = metrics;
    if (vr_trainer_open(&t, &o, &err)) vr_die(&err);
    /* a batch's steps are taken as soon as its last line is read */
    struct vr_jsonl_files in;
    vr_jsonl_files_init(&in, argv + ind, argc - ind);
    for (int rc = 1; rc > 0;) {
        json_t *line = NULL;
        const char *file;
        long lineno;
        if ((rc = vr_dist_jsonl_next(&in, &line, &file, &lineno, &err)) < 0) fail(&t, &err); /* rank 0 reads */
        int more = vr_trainer_feed(&t, line, file, lineno, &err);
        json_decref(line);
        if (more < 0 && t.taken) { /* keep the steps taken: the run folder at the last finished batch */
            struct vr_err e2;
            if (vr_trainer_save(&t, VR_TRAINER_ROOT, &e2)) vr_warn("%s", e2.msg);
        }
        while (more > 0) more = vr_trainer_step(&t, &err);
        if (more < 0) fail(&t, &err);
    }
    int refused = t.refused;
    if (vr_trainer_close(&t, &err)) vr_die(&err);
    vr_jsonl_files_close(&in);
    free(tmpl_text);
    return refused ? 1 : 0;
}

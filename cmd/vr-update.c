/* vr-update: GRPO (or SFT) steps on scored lines: loss, backward, AdamW, and
 * the next checkpoint; one metrics line per optimizer step on stdout
 * (DESIGN.md §2, §3.5, §6). The run itself is lib/trainer.h: this main reads
 * the options and the lines, prints, and turns errors into exit codes. */
#include <regex.h>
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "dist.h"
#include "jsonl.h"
#include "memplan.h"
#include "trainer.h"

static struct vr_trainer_opts o; /* vr_trainer_opts_init's defaults, then the flags */
static const char *tmpl = "r1";
static int dtype = -1; /* the index in --dtype's list; -1: the policy's */
static double dry_gib; /* --dry-run: the GPU's memory in GiB */
static int64_t patches;
static vr_opt_fn freeze_arg, dropout_arg;

static const struct vr_opt opts[] = {
    VR_OPT_STRING("model", 'm', "DIR", &o.model, "the policy checkpoint to start from (required)"),
    VR_OPT_STRING("out", 'o', "DIR", &o.out, "the run folder: checkpoints in DIR/checkpoint-STEP, the last one also in DIR (required)"),
    VR_OPT_STRING("ref", 0, "DIR", &o.ref, "the reference model of the KL term (required when --beta > 0)"),
    VR_OPT_FLAG("sft", 0, &o.update.sft, "supervised fine-tuning: cross-entropy on the answers of task lines"),
    VR_OPT_CHOICE("loss", 0, "NAME", &o.update.loss, "grpo|bnpo|dapo|dr_grpo", "grpo (VLM-R1), bnpo, dapo or dr_grpo (default grpo)"),
    VR_OPT_DOUBLE("epsilon", 0, "E", &o.update.epsilon, 0, 1, "clip the ratio below at 1 - E (default 0.2)"),
    VR_OPT_DOUBLE("epsilon-high", 0, "E", &o.update.epsilon_high, 0, 100, "clip the ratio above at 1 + E (default: --epsilon)"),
    VR_OPT_DOUBLE("beta", 0, "B", &o.update.beta, 0, 1e6, "weight of the k3 KL against --ref (default 0.04; 0 loads no reference)"),
    VR_OPT_INT("iterations", 0, "MU", &o.iterations, 1, 1000, "optimizer steps per batch, the rollout logp as the old policy (default 1)"),
    VR_OPT_DOUBLE("temperature", 0, "T", &o.update.temperature, 1e-6, 100, "the sampling temperature: logits / T, as vr-rollout (default 1.0)"),
    VR_OPT_STRING("template", 0, "NAME|FILE", &tmpl, "question template, as given to vr-rollout (default r1)"),
    VR_OPT_STRING("system", 0, "TEXT", &o.update.chat.system, "system prompt, as given to vr-rollout"),
    VR_OPT_DOUBLE("lr", 0, "LR", &o.adamw.lr, 0, 10, "peak learning rate (default 1e-6)"),
    VR_OPT_CHOICE("lr-schedule", 0, "NAME", &o.schedule, "constant|constant_with_warmup|linear|cosine", /* enum vr_schedule */
                  "constant, constant_with_warmup, linear or cosine (default constant)"),
    VR_OPT_INT("warmup-steps", 0, "N", &o.warmup_steps, 0, 1 << 30, "steps of linear warm-up (default 0)"),
    VR_OPT_I64("steps", 0, "N", &o.total_steps, 1, INT64_MAX / 2, "total optimizer steps of the run, for linear and cosine schedules"),
    VR_OPT_DOUBLE("adam-beta1", 0, "B", &o.adamw.beta1, 0, 0.999999999, "AdamW beta1 (default 0.9)"),
    VR_OPT_DOUBLE("adam-beta2", 0, "B", &o.adamw.beta2, 0, 0.999999999, "AdamW beta2 (default 0.999)"),
    VR_OPT_DOUBLE("adam-eps", 0, "E", &o.adamw.eps, 0, 1, "AdamW epsilon (default 1e-8)"),
    VR_OPT_DOUBLE("weight-decay", 0, "W", &o.adamw.weight_decay, 0, 10, "AdamW decoupled weight decay (default 0)"),
    VR_OPT_DOUBLE("max-grad-norm", 0, "X", &o.max_grad_norm, 0, 1e12, "clip the global gradient norm to X, 0 for none (default 1.0)"),
    VR_OPT_INT("prompts-per-step", 0, "N", &o.prompts_per_step, 0, 1 << 30, "input lines (prompts, G completions each) per batch (default 0: all)"),
    VR_OPT_I64("max-batch-tokens", 0, "N", &o.update.max_batch_tokens, 1, INT64_MAX / 2, "tokens through the model at once; gradients accumulate (default 16384)"),
    VR_OPT_FLAG("checkpoint-activations", 0, &o.update.checkpoint, "keep only block inputs; recompute blocks in backward"),
    VR_OPT_I64("keep-logits", 0, "MB", &o.update.keep_logits_mb, 0, INT64_MAX >> 21, "keep the LM head's probabilities for the backward when a micro-batch's fit in MB MiB (default 1024; 0: compute them again)"),
    VR_OPT_FLAG("freeze-vision", 0, &o.update.freeze_vision, "train no vision-tower parameter"),
    VR_OPT_CALL("freeze", 0, "REGEX", freeze_arg, &o, "train no parameter whose name matches the extended REGEX"),
    VR_OPT_INT("save-every", 0, "N", &o.save_every, 0, 1 << 30, "also write a checkpoint every N steps (default 0: only at the end)"),
    VR_OPT_INT("keep", 0, "N", &o.keep, 1, 1 << 30, "keep the newest N checkpoint-STEP folders (default 2)"),
    VR_OPT_STRING("publish", 0, "DIR", &o.publish, "after each batch put the weights in DIR with a generation number, for vr-rollout"),
    VR_OPT_FLAG("resume", 0, &o.resume, "continue from the newest complete checkpoint in --out, skipping the lines it used"),
    VR_OPT_FLAG("fresh-optimizer", 0, &o.fresh_optimizer, "start AdamW and the step count afresh, not from the --model folder's state (e.g. GRPO after SFT)"),
    VR_OPT_CHOICE("dtype", 0, "TYPE", &dtype, "bf16|f16|f32", "dtype of the saved weights: bf16, f16, f32 (default: the policy's)"),
    VR_OPT_INT("max-tokens", 0, "N", &o.update.max_len, 1, 1 << 24, "the rollout's --max-tokens: dr_grpo divides by completions x N (default: the longest)"),
    VR_OPT_INT("lora-r", 0, "R", &o.update.lora_r, 1, 65536, "train LoRA adapters of rank R on every linear outside the vision tower"),
    VR_OPT_DOUBLE("lora-alpha", 0, "A", &o.update.lora_alpha, 1e-9, 1e9, "LoRA scale alpha / R (default 2R)"),
    VR_OPT_CALL("lora-dropout", 0, "P", dropout_arg, &o.update, "dropout on the adapters' input (default 0)"),
    VR_OPT_STRING("adapter", 0, "DIR", &o.update.adapter_dir, "start from this PEFT LoRA adapter (default: the --model folder's, if any)"),
    VR_OPT_FLAG("merge", 0, &o.merge, "write the run folder as full weights with the adapters folded in"),
    VR_OPT_U64("seed", 0, "N", &o.update.seed, "seed of the adapters' initialisation and dropout (default 0)"),
    VR_OPT_STRING("dump", 0, "FILE", &o.dump, "after each step write its loss, gradients and new weights to FILE (safetensors)"),
    VR_OPT_STRING("grads", 0, "FILE", &o.grads, "take each step's gradients from FILE (grad.NAME, as --dump writes) instead of computing them"),
    VR_OPT_DOUBLE("dry-run", 0, "GIB", &dry_gib, 1, 1e6, "print the GPU memory plan of this run on a GIB GiB GPU and stop (--model may name a preset)"),
    VR_OPT_I64("image-patches", 0, "N", &patches, 0, INT64_MAX / 2, "with --dry-run: vision patches per micro-batch (default 0)"),
    VR_OPT_END,
};

static const struct vr_cli cli = {
    "vr-update",
    "--model DIR --out DIR [OPTION]... [FILE]...",
    "Read scored lines (vr-reward's output; task lines with --sft), take GRPO or SFT optimizer steps\n"
    "with AdamW, write the checkpoint to --out and one metrics line per step on standard output.\n"
    "A batch is --prompts-per-step lines, each a prompt with its G completions.",
    opts,
};

/* --freeze REGEX, repeatable: each is compiled at once, held for the run */
static int freeze_arg(const struct vr_opt *opt, const char *arg, struct vr_err *err)
{
    static regex_t freeze[16];
    struct vr_trainer_opts *to = opt->dst;
    to->freeze = freeze;
    if (to->nfreeze == 16) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--freeze: at most 16");
    if (regcomp(&freeze[to->nfreeze], arg, REG_EXTENDED | REG_NOSUB))
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--freeze: '%s' is not a regular expression", arg);
    to->nfreeze++;
    return 0;
}

/* --lora-dropout P: given, it overrides a loaded adapter's */
static int dropout_arg(const struct vr_opt *opt, const char *arg, struct vr_err *err)
{
    struct vr_update_opts *u = opt->dst;
    u->lora_dropout_set = 1;
    return vr_cli_get_double(opt->name, arg, 0, 0.99, &u->lora_dropout, err);
}

/* The checks between flags; the template's text into *tmpl_text. */
static void check(char **tmpl_text)
{
    static const enum vr_dtype dtype_of[] = {VR_DTYPE_BF16, VR_DTYPE_F16, VR_DTYPE_F32};
    struct vr_err err;
    if (vr_trainer_opts_check(&o, dry_gib > 0, &err) || vr_chat_template_arg(tmpl, &o.update.chat.tmpl, tmpl_text, &err))
        vr_die(&err);
    if (dtype >= 0) {
        o.dtype = dtype_of[dtype];
        o.dtype_set = 1;
    }
}

int main(int argc, char **argv)
{
    struct vr_trainer t;
    struct vr_err err;
    char *tmpl_text = NULL;
    vr_trainer_opts_init(&o);
    int ind = vr_cli_parse(&cli, argc, argv);
    check(&tmpl_text);
    if (dry_gib > 0) {
        struct vr_memplan plan;
        if (vr_trainer_plan(&o, patches, &plan, &err)) vr_die(&err);
        vr_memplan_print(&plan, dry_gib * (1 << 30), stdout);
        return 0;
    }
    /* a closed stdout must not kill a step in the middle: writes fail with
     * EPIPE instead, and the metrics writer saves the run before it stops */
    signal(SIGPIPE, SIG_IGN);
    /* a file-size limit (ulimit -f) must not kill a save in the middle
     * either: the write fails with EFBIG, and the save with a message */
    signal(SIGXFSZ, SIG_IGN);
    if (vr_dist_init(&err)) vr_die(&err); /* under mpirun or srun: one rank of a data-parallel job */
    o.warn = vr_cli_warn;
    o.metrics = vr_cli_put_line; /* each step's line; a closed stdout ends the run, saved first */
    o.ctx = "the metrics";
    if (vr_trainer_open(&t, &o, &err)) vr_die(&err);
    struct vr_jsonl_files in;
    vr_jsonl_files_init(&in, argv + ind, argc - ind);
    if (vr_trainer_run(&t, &in, &err)) { /* the run folder unlocked (gone when made here, nothing saved) */
        vr_trainer_release(&t);
        vr_die(&err);
    }
    int refused = t.refused;
    if (vr_trainer_close(&t, &err)) vr_die(&err);
    vr_jsonl_files_close(&in);
    free(tmpl_text);
    return refused ? 1 : 0;
}

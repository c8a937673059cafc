/* vr-rollout: sample G completions per encoded task line from the policy and
 * write rollout lines (DESIGN.md §3.3); with --follow, from the weights a
 * long-lived vr-update publishes (the steady-state loop, DESIGN.md §2.1).
 * Continuous batching and the --follow policy are lib/rollout.h's
 * vr_rollout_run; this main parses options and writes the lines it hands
 * back. */
#include <stdlib.h>

#include "cli.h"
#include "dist.h"
#include "jsonl.h"
#include "progress.h"
#include "rollout.h"

enum { O_TOKENIZER = 256, O_GREEDY, O_TEMP, O_TOPK, O_TOPP, O_MINP, O_REP, O_MAXTOK, O_STOPANS, O_SEED,
       O_TEMPLATE, O_SYSTEM, O_BUDGET, O_MAXPROMPT, O_FOLLOW, O_STALE, O_PPS, O_SHARD };

static const struct vr_opt opts[] = {
    {"model", 'm', "DIR", "the policy checkpoint (required without --follow)"},
    {"tokenizer", O_TOKENIZER, "FILE", "tokenizer.json (default: the model folder's)"},
    {"group", 'G', "N", "completions per prompt (default 8)"},
    {"greedy", O_GREEDY, NULL, "take the most likely token (no sampling)"},
    {"temperature", O_TEMP, "T", "sampling temperature (default 1.0)"},
    {"top-k", O_TOPK, "K", "keep the K most likely tokens (default 0: off)"},
    {"top-p", O_TOPP, "P", "nucleus: keep the most likely tokens holding mass P (default 1: off)"},
    {"min-p", O_MINP, "P", "drop tokens below P times the top probability (default 0: off)"},
    {"repetition-penalty", O_REP, "X", "penalise tokens already seen, as HF (default 1: off)"},
    {"max-tokens", O_MAXTOK, "N", "longest completion in tokens (default 512)"},
    {"stop-after-answer", O_STOPANS, NULL, "end a completion once its text ends with </answer>"},
    {"max-batch-tokens", O_BUDGET, "N", "KV cache size in tokens, shared by the prompts in flight (default 40960)"},
    {"max-prompt-tokens", O_MAXPROMPT, "N", "longest prompt, images included (default 2048)"},
    {"seed", O_SEED, "N", "seed of the sampler (default 0)"},
    {"template", O_TEMPLATE, "NAME|FILE", "question template: r1, baseline, none, or a file with {Question} (default r1)"},
    {"system", O_SYSTEM, "TEXT", "system prompt (default \"You are a helpful assistant.\")"},
    {"follow", O_FOLLOW, "DIR", "sample from the weights a long-lived vr-update publishes in DIR (instead of --model)"},
    {"max-staleness", O_STALE, "S", "with --follow: sample from weights at most S batches behind (default 0: on-policy)"},
    {"prompts-per-step", O_PPS, "N", "with --follow: lines per batch, as vr-update's (default: the publisher's)"},
    {"shard", O_SHARD, "K/N", "roll out only input lines K, K+N, K+2N, ... (K = 1..N): one of N jobs"},
    {0},
};

static const struct vr_cli cli = {
    "vr-rollout",
    "(--model DIR | --follow DIR) [OPTION]... [FILE]...",
    "Sample G completions per encoded task line (vr-encode's output) and write rollout lines\n"
    "with their tokens, sampling log-probs and finish reasons. Reads the FILEs or standard input.",
    opts,
};

static int put(void *ctx, json_t *task, struct vr_err *err)
{
    (void)ctx;
    if (vr_jsonl_write(stdout, task, err) || fflush(stdout))
        return vr_err_set(err, VR_ERR_SYS, NULL, 0, "<stdout>: write failed");
    return 0;
}

int main(int argc, char **argv)
{
    struct vr_rollout_opts o = {.G = 8, .max_tokens = 512,
                                .sampling = {.temperature = 1.0f, .top_p = 1.0f, .rep_penalty = 1.0f}};
    const char *model = NULL, *tokenizer = NULL, *tmpl = "r1", *follow = NULL;
    char *tmpl_text = NULL;
    int64_t budget = 40960;
    int max_prompt = 2048, stale = 0, pps = 0, have_stale = 0;
    struct vr_err err;
    int c, ind;
    const char *arg;
    vr_cli_init(&cli, argc, argv);
    while ((c = vr_cli_next(&ind, &arg)) != -1) {
        switch (c) {
        case 'm': model = arg; break;
        case O_TOKENIZER: tokenizer = arg; break;
        case 'G': o.G = (int)vr_cli_int("group", arg, 1, 1024); break;
        case O_GREEDY: o.sampling.greedy = 1; break;
        case O_TEMP: o.sampling.temperature = (float)vr_cli_double("temperature", arg, 1e-6, 100); break;
        case O_TOPK: o.sampling.top_k = (int)vr_cli_int("top-k", arg, 0, 100000000); break;
        case O_TOPP: o.sampling.top_p = (float)vr_cli_double("top-p", arg, 1e-6, 1); break;
        case O_MINP: o.sampling.min_p = (float)vr_cli_double("min-p", arg, 0, 1); break;
        case O_REP: o.sampling.rep_penalty = (float)vr_cli_double("repetition-penalty", arg, 1e-3, 100); break;
        case O_MAXTOK: o.max_tokens = (int)vr_cli_int("max-tokens", arg, 1, 1 << 20); break;
        case O_STOPANS: o.stop_after_answer = 1; break;
        case O_SEED: o.seed = vr_cli_u64("seed", arg); break;
        case O_TEMPLATE: tmpl = arg; break;
        case O_SYSTEM: o.chat.system = arg; break;
        case O_BUDGET: budget = vr_cli_int("max-batch-tokens", arg, 1, INT64_MAX / 2); break;
        case O_MAXPROMPT: max_prompt = (int)vr_cli_int("max-prompt-tokens", arg, 1, 1 << 24); break;
        case O_FOLLOW: follow = arg; break;
        case O_STALE: stale = (int)vr_cli_int("max-staleness", arg, 0, 1 << 20), have_stale = 1; break;
        case O_PPS: pps = (int)vr_cli_int("prompts-per-step", arg, 1, 1 << 30); break;
        case O_SHARD:
            if (sscanf(arg, "%d/%d%n", &o.shard, &o.shards, &c) != 2 || arg[c] || o.shards < 1 || o.shard < 1 ||
                o.shard > o.shards)
                vr_die_usage("--shard: '%s' is not K/N with 1 <= K <= N", arg);
            o.shard--;
            break;
        }
    }
    if (model && follow)
        vr_die_usage("--model and --follow exclude each other: with --follow the policy is what DIR holds");
    if (!model && !follow) vr_die_usage("--model DIR (or --follow DIR) is required");
    if (!follow && (have_stale || pps)) vr_die_usage("--max-staleness and --prompts-per-step need --follow DIR");
    if (follow && o.shards) vr_die_usage("--shard and --follow exclude each other: a follower takes every batch");
    if (vr_chat_template_arg(tmpl, &o.chat.tmpl, &tmpl_text, &err)) vr_die(&err);
    if (vr_dist_init(&err)) vr_die(&err); /* under mpirun or srun: the lines are split across the ranks */
    struct vr_rollout_follow f;
    if (follow && vr_rollout_follow_open(&f, follow, stale, pps, &err)) vr_die(&err);
    struct vr_rollout r;
    if (vr_rollout_init(&r, follow ? follow : model, tokenizer, &o, &err) ||
        vr_rollout_start(&r, budget, max_prompt, &err))
        vr_die(&err);
    struct vr_progress prog;
    vr_progress_init(&prog, "vr-rollout", "completion tokens", 0);
    struct vr_jsonl_files in;
    vr_jsonl_files_init(&in, argv + ind, argc - ind);
    if (vr_rollout_run(&r, &in, follow ? &f : NULL, put, NULL, &prog, &err)) vr_die(&err);
    vr_progress_end(&prog);
    vr_jsonl_files_close(&in);
    vr_rollout_release(&r);
    if (follow) vr_rollout_follow_release(&f);
    free(tmpl_text);
    return 0;
}

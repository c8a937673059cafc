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

/* --shard K/N: this job's lines of N (o->shard counts from 0). */
static int shard_arg(const struct vr_opt *opt, const char *arg, struct vr_err *err)
{
    struct vr_rollout_opts *ro = opt->dst;
    int n = 0;
    if (sscanf(arg, "%d/%d%n", &ro->shard, &ro->shards, &n) != 2 || arg[n] || ro->shards < 1 || ro->shard < 1 ||
        ro->shard > ro->shards)
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--shard: '%s' is not K/N with 1 <= K <= N", arg);
    ro->shard--;
    return 0;
}

static struct vr_rollout_opts o = {.G = 8, .max_tokens = 512,
                                   .sampling = {.temperature = 1.0f, .top_p = 1.0f, .rep_penalty = 1.0f}};
static const char *model, *tokenizer, *tmpl = "r1", *follow;
static int64_t budget = 40960;
static int max_prompt = 2048, stale = -1, pps; /* stale: -1 when not given */

static const struct vr_opt opts[] = {
    VR_OPT_STRING("model", 'm', "DIR", &model, "the policy checkpoint (required without --follow)"),
    VR_OPT_STRING("tokenizer", 0, "FILE", &tokenizer, "tokenizer.json (default: the model folder's)"),
    VR_OPT_INT("group", 'G', "N", &o.G, 1, 1024, "completions per prompt (default 8)"),
    VR_OPT_FLAG("greedy", 0, &o.sampling.greedy, "take the most likely token (no sampling)"),
    VR_OPT_FLOAT("temperature", 0, "T", &o.sampling.temperature, 1e-6, 100, "sampling temperature (default 1.0)"),
    VR_OPT_INT("top-k", 0, "K", &o.sampling.top_k, 0, 100000000, "keep the K most likely tokens (default 0: off)"),
    VR_OPT_FLOAT("top-p", 0, "P", &o.sampling.top_p, 1e-6, 1, "nucleus: keep the most likely tokens holding mass P (default 1: off)"),
    VR_OPT_FLOAT("min-p", 0, "P", &o.sampling.min_p, 0, 1, "drop tokens below P times the top probability (default 0: off)"),
    VR_OPT_FLOAT("repetition-penalty", 0, "X", &o.sampling.rep_penalty, 1e-3, 100, "penalise tokens already seen, as HF (default 1: off)"),
    VR_OPT_INT("max-tokens", 0, "N", &o.max_tokens, 1, 1 << 20, "longest completion in tokens (default 512)"),
    VR_OPT_FLAG("stop-after-answer", 0, &o.stop_after_answer, "end a completion once its text ends with </answer>"),
    VR_OPT_I64("max-batch-tokens", 0, "N", &budget, 1, INT64_MAX / 2, "KV cache size in tokens, shared by the prompts in flight (default 40960)"),
    VR_OPT_INT("max-prompt-tokens", 0, "N", &max_prompt, 1, 1 << 24, "longest prompt, images included (default 2048)"),
    VR_OPT_U64("seed", 0, "N", &o.seed, "seed of the sampler (default 0)"),
    VR_OPT_STRING("template", 0, "NAME|FILE", &tmpl, "question template: r1, baseline, none, or a file with {Question} (default r1)"),
    VR_OPT_STRING("system", 0, "TEXT", &o.chat.system, "system prompt (default \"You are a helpful assistant.\")"),
    VR_OPT_STRING("follow", 0, "DIR", &follow, "sample from the weights a long-lived vr-update publishes in DIR (instead of --model)"),
    VR_OPT_INT("max-staleness", 0, "S", &stale, 0, 1 << 20, "with --follow: sample from weights at most S batches behind (default 0: on-policy)"),
    VR_OPT_INT("prompts-per-step", 0, "N", &pps, 1, 1 << 30, "with --follow: lines per batch, as vr-update's (default: the publisher's)"),
    VR_OPT_CALL("shard", 0, "K/N", shard_arg, &o, "roll out only input lines K, K+N, K+2N, ... (K = 1..N): one of N jobs"),
    VR_OPT_END,
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
    char *tmpl_text = NULL;
    struct vr_err err;
    int ind = vr_cli_parse(&cli, argc, argv);
    if (model && follow)
        vr_die_usage("--model and --follow exclude each other: with --follow the policy is what DIR holds");
    if (!model && !follow) vr_die_usage("--model DIR (or --follow DIR) is required");
    if (!follow && (stale >= 0 || pps)) vr_die_usage("--max-staleness and --prompts-per-step need --follow DIR");
    if (follow && o.shards) vr_die_usage("--shard and --follow exclude each other: a follower takes every batch");
    if (vr_chat_template_arg(tmpl, &o.chat.tmpl, &tmpl_text, &err)) vr_die(&err);
    if (vr_dist_init(&err)) vr_die(&err); /* under mpirun or srun: the lines are split across the ranks */
    struct vr_rollout_follow f;
    if (follow && vr_rollout_follow_open(&f, follow, stale < 0 ? 0 : stale, pps, &err)) vr_die(&err);
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

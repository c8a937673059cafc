/* vr-reward: score rollout lines with VLM-R1's rewards (or any command) and
 * add GRPO's group-relative advantages; the stage between vr-rollout and
 * vr-update (DESIGN.md §2, §3.4). Scoring and the batches of advantages are
 * lib/reward.h; this main reads the lines and stops the exec: commands on
 * every way out. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "jsonl.h"
#include "progress.h"
#include "reward.h"

static struct vr_reward R = {.timeout = 30};
static struct vr_reward_batch out = {.scale = VR_SCALE_GROUP, .out_name = "<stdout>"};
static const char *tok;
static int skip_bad, nspec;

/* -r LIST, repeatable: the terms add up */
static int reward_arg(const struct vr_opt *opt, const char *arg, struct vr_err *err)
{
    (void)opt;
    nspec++;
    return vr_reward_add(&R, arg, err);
}

static const struct vr_opt opts[] = {
    VR_OPT_CALL("reward", 'r', "LIST", reward_arg, NULL, "rewards and weights, e.g. format:0.5,iou (default format,iou); repeatable"),
    VR_OPT_DOUBLE("reward-timeout", 0, "SEC", &R.timeout, 0.001, 1e6, "exec: rewards: longest wait for one answer (default 30)"),
    VR_OPT_CHOICE("scale", 0, "HOW", &out.scale, "group|batch|none", "advantage scale: group, batch or none (default group)"),
    VR_OPT_I64("prompts", 0, "N", &out.prompts, 1, INT64_MAX, "with --scale batch: lines per batch (default: all of the input)"),
    VR_OPT_FLAG("drop-degenerate", 0, &out.drop, "leave out groups whose rewards are all equal"),
    VR_OPT_STRING("tokenizer", 0, "PATH", &tok, "tokenizer.json or checkpoint folder; length counts the text's tokens"),
    VR_OPT_FLAG("skip-bad", 0, &skip_bad, "skip bad lines with a warning instead of failing"),
    VR_OPT_END,
};

static const struct vr_cli cli = {
    "vr-reward",
    "[OPTION]... [FILE]...",
    "Score rollout lines (JSONL) with VLM-R1's rewards or a command, add each group's\n"
    "advantages, and write scored lines on standard output. With no FILE, read standard input.",
    opts,
};

/* Fail: stop the exec: commands first (a hung one would outlive us). */
__attribute__((noreturn)) static void fail(const struct vr_err *err)
{
    vr_reward_release(&R);
    vr_die(err);
}

/* Killed, interrupted or cut off (SIGPIPE): the exec: commands run in their
 * own process groups, so neither a Ctrl-C nor our death reaches them; take
 * them along. */
static void on_signal(int sig)
{
    for (int i = 0; i < R.nterms; i++)
        if (R.terms[i].exec.pid > 0) kill(-R.terms[i].exec.pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Score the lines of one input into out; a bad line with --skip-bad is
 * counted in *skipped. */
static void score_file(const char *path, int64_t *skipped, struct vr_progress *prog)
{
    struct vr_err err;
    struct vr_jsonl rd;
    json_t *line;
    int rc;
    if (vr_jsonl_open(&rd, path, &err)) fail(&err);
    while ((rc = vr_jsonl_next(&rd, &line, &err)) != 0) {
        if (rc > 0 && vr_reward_score(&R, line, rd.path, rd.line, &err) == 0) {
            if (vr_reward_batch_push(&out, line, &err)) fail(&err);
            vr_progress_update(prog, out.groups + (int64_t)out.npend);
            continue;
        }
        json_decref(line);
        if (!skip_bad || R.exec_failed || err.kind != VR_ERR_INPUT) {
            vr_jsonl_close(&rd);
            fail(&err);
        }
        vr_warn("%s (skipped)", err.msg);
        (*skipped)++;
    }
    vr_jsonl_close(&rd);
}

int main(int argc, char **argv)
{
    struct vr_err err;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    int ind = vr_cli_parse(&cli, argc, argv);
    signal(SIGPIPE, on_signal); /* a closed stdout ends us quietly, and our commands with us */
    if (out.prompts && out.scale != VR_SCALE_BATCH) vr_die_usage("--prompts applies to --scale batch only");
    if (!nspec && vr_reward_add(&R, "format,iou", &err)) fail(&err);
    if (tok && vr_reward_tokenizer(&R, tok, &err)) fail(&err);
    out.out = stdout;

    struct vr_progress prog;
    vr_progress_init(&prog, "vr-reward", "groups", 0);
    int64_t skipped = 0;
    if (ind == argc) score_file("-", &skipped, &prog);
    for (int i = ind; i < argc; i++) score_file(argv[i], &skipped, &prog);
    if (vr_reward_batch_flush(&out, &err)) fail(&err);
    vr_progress_end(&prog);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        vr_err_sys(&err, "<stdout>", "write failed");
        fail(&err);
    }
    int closed = vr_reward_close(&R, &err);
    if (closed < 0) fail(&err);
    if (closed > 0) vr_warn("%s", err.msg);

    struct vr_buf s = {0};
    vr_reward_summary(&R, &out, &s);
    if (skipped) vr_buf_printf(&s, "; %lld bad lines skipped", (long long)skipped);
    vr_warn("%s", s.p);
    vr_buf_release(&s);
    vr_reward_batch_release(&out);
    vr_reward_release(&R);
    return 0;
}

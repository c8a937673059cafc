/* vr-reward: score rollout lines with VLM-R1's rewards (or any command) and
 * add GRPO's group-relative advantages; the stage between vr-rollout and
 * vr-update (DESIGN.md §2, §3.4). */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "jsonl.h"
#include "progress.h"
#include "reward.h"

enum { O_TIMEOUT = 256, O_SCALE, O_PROMPTS, O_DROP, O_TOK, O_SKIP };

static const struct vr_opt opts[] = {
    {"reward", 'r', "LIST", "rewards and weights, e.g. format:0.5,iou (default format,iou); repeatable"},
    {"reward-timeout", O_TIMEOUT, "SEC", "exec: rewards: longest wait for one answer (default 30)"},
    {"scale", O_SCALE, "HOW", "advantage scale: group, batch or none (default group)"},
    {"prompts", O_PROMPTS, "N", "with --scale batch: lines per batch (default: all of the input)"},
    {"drop-degenerate", O_DROP, NULL, "leave out groups whose rewards are all equal"},
    {"tokenizer", O_TOK, "PATH", "tokenizer.json or checkpoint folder; length counts the text's tokens"},
    {"skip-bad", O_SKIP, NULL, "skip bad lines with a warning instead of failing"},
    {0},
};

static const struct vr_cli cli = {
    "vr-reward",
    "[OPTION]... [FILE]...",
    "Score rollout lines (JSONL) with VLM-R1's rewards or a command, add each group's\n"
    "advantages, and write scored lines on standard output. With no FILE, read standard input.",
    opts,
};

static struct vr_reward R;

/* Fail: stop the exec: commands first (a hung one would outlive us). */
__attribute__((noreturn)) static void fail(const struct vr_err *err)
{
    vr_reward_release(&R);
    vr_die(err);
}

struct out {
    enum vr_scale scale;
    int drop;
    json_t **pend;
    size_t npend, cap;
    int64_t groups, degenerate, written;
};

/* Advantages for the pending lines (one batch), then write them. */
static void flush(struct out *o)
{
    struct vr_err err;
    double bstd = o->scale == VR_SCALE_BATCH ? vr_reward_batch_std(o->pend, o->npend) : 0;
    for (size_t i = 0; i < o->npend; i++) {
        int degen = vr_reward_advantages(o->pend[i], o->scale, bstd);
        if (degen == -2) {
            const char *id = json_string_value(json_object_get(o->pend[i], "id"));
            vr_err_set(&err, VR_ERR_INPUT, NULL, 0,
                       "line %s: its rewards are too large for advantages (their mean or spread is not finite)",
                       id ? id : "without an id");
            fail(&err);
        }
        o->groups++;
        o->degenerate += degen == 1;
        if (!(degen == 1 && o->drop)) {
            if (vr_jsonl_write(stdout, o->pend[i], &err)) fail(&err);
            o->written++;
        }
        json_decref(o->pend[i]);
    }
    /* each scored line goes out at once: in the steady-state loop vr-update
     * waits for it before the rollout gets the weights of its next batch */
    if (o->npend && fflush(stdout) != 0) {
        vr_err_sys(&err, "<stdout>", "write failed");
        fail(&err);
    }
    o->npend = 0;
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

int main(int argc, char **argv)
{
    struct vr_err err;
    struct out o = {.scale = VR_SCALE_GROUP};
    int64_t prompts = 0;
    int skip_bad = 0, nspec = 0;
    const char *tok = NULL, *arg;
    int c, ind;
    R.timeout = 30;
    vr_cli_init(&cli, argc, argv);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    signal(SIGPIPE, on_signal); /* a closed stdout ends us quietly, and our commands with us */
    while ((c = vr_cli_next(&ind, &arg)) != -1) {
        switch (c) {
        case 'r':
            if (vr_reward_add(&R, arg, &err)) fail(&err);
            nspec++;
            break;
        case O_TIMEOUT: R.timeout = vr_cli_double("reward-timeout", arg, 0.001, 1e6); break;
        case O_SCALE:
            if (vr_scale_parse(arg, &o.scale)) vr_die_usage("--scale: '%s' is not group, batch or none", arg);
            break;
        case O_PROMPTS: prompts = vr_cli_int("prompts", arg, 1, INT64_MAX); break;
        case O_DROP: o.drop = 1; break;
        case O_TOK: tok = arg; break;
        case O_SKIP: skip_bad = 1; break;
        }
    }
    if (prompts && o.scale != VR_SCALE_BATCH) vr_die_usage("--prompts applies to --scale batch only");
    if (!nspec && vr_reward_add(&R, "format,iou", &err)) fail(&err);
    if (tok && vr_reward_tokenizer(&R, tok, &err)) fail(&err);

    int nin = argc - ind;
    const char *dash = "-";
    const char *const *inputs = nin ? (const char *const *)argv + ind : &dash;
    if (!nin) nin = 1;
    struct vr_progress prog;
    vr_progress_init(&prog, "vr-reward", "groups", 0);
    int64_t skipped = 0;
    for (int i = 0; i < nin; i++) {
        struct vr_jsonl rd;
        if (vr_jsonl_open(&rd, inputs[i], &err)) fail(&err);
        json_t *line;
        int rc;
        while ((rc = vr_jsonl_next(&rd, &line, &err)) != 0) {
            if (rc > 0 && vr_reward_score(&R, line, rd.path, rd.line, &err) == 0) {
                if (o.npend == o.cap) o.pend = vr_xrealloc(o.pend, (o.cap = o.cap ? 2 * o.cap : 16) * sizeof *o.pend);
                o.pend[o.npend++] = line;
                if (o.scale != VR_SCALE_BATCH || (prompts && (int64_t)o.npend == prompts)) flush(&o);
                vr_progress_update(&prog, o.groups + (int64_t)o.npend);
                continue;
            }
            json_decref(line);
            if (!skip_bad || R.exec_failed || err.kind != VR_ERR_INPUT) {
                vr_jsonl_close(&rd);
                fail(&err);
            }
            vr_warn("%s (skipped)", err.msg);
            skipped++;
        }
        vr_jsonl_close(&rd);
    }
    flush(&o);
    vr_progress_end(&prog);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        vr_err_sys(&err, "<stdout>", "write failed");
        fail(&err);
    }
    int closed = vr_reward_close(&R, &err);
    if (closed < 0) fail(&err);
    if (closed > 0) vr_warn("%s", err.msg);

    /* the summary: means of the unweighted rewards, the weighted total */
    struct vr_buf s = {0};
    vr_buf_printf(&s, "%lld groups, %lld completions", (long long)o.groups, (long long)R.completions);
    if (R.completions) {
        double total = 0;
        for (int i = 0; i < R.nterms; i++)
            total += R.terms[i].weight * R.terms[i].sum / (double)R.completions;
        vr_buf_printf(&s, "; mean reward %.4g (", total);
        for (int i = 0; i < R.nterms; i++)
            vr_buf_printf(&s, "%s%s %.4g", i ? ", " : "", R.terms[i].name,
                          R.terms[i].sum / (double)R.completions);
        vr_buf_putc(&s, ')');
    }
    vr_buf_printf(&s, "; %lld degenerate%s", (long long)o.degenerate, o.drop ? " (dropped)" : "");
    if (skipped) vr_buf_printf(&s, "; %lld bad lines skipped", (long long)skipped);
    vr_warn("%s", s.p);
    vr_buf_release(&s);
    free(o.pend);
    vr_reward_release(&R);
    return 0;
}

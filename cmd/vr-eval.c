/* vr-eval: score model outputs as VLM-R1's evaluation scripts do and report
 * accuracy at IoU 0.5 per split, or compare two runs (DESIGN.md §3.6). Reads
 * vr-rollout's lines, VLM-R1's rec_results_*.json, or JSONL with a model's
 * text; the last stage of an eval pipeline and the one piped into jq. */
#include <string.h>

#include "cli.h"
#include "eval.h"
#include "imgswap.h"
#include "jsonl.h"
#include "progress.h"

static struct vr_eval_run_opts o = {.eval = {.parse = VR_EVAL_R1, .iou_threshold = 0.5, .by = "split"}, .draw_max = 100};
static struct vr_imgswap_opts io;
static int do_swap;
static const char *tmpl;

static const struct vr_opt opts[] = {
    VR_OPT_CHOICE("parse", 0, "MODE", &o.eval.parse, "r1|baseline", "r1 (test_rec_r1.py: the box in <answer>) or baseline (test_rec_baseline.py) (default r1)"),
    VR_OPT_DOUBLE("iou", 0, "T", &o.eval.iou_threshold, 0, 1, "a prediction is correct when its IoU > T (default 0.5)"),
    VR_OPT_FLAG("all", 'a', &o.eval.all, "a verdict for every completion of a line, not only the first"),
    VR_OPT_STRING("by", 0, "FIELD", &o.eval.by, "group the summaries by the lines' FIELD (default split)"),
    VR_OPT_FLAG("summary", 's', &o.summary_only, "print only the summary lines"),
    VR_OPT_STRING("split", 0, "NAME", &o.eval.split, "the split of inputs that name none (default: the file's name)"),
    VR_OPT_FLAG("diff", 0, &o.diff, "compare two runs, OLD and NEW, paired by split and id"),
    VR_OPT_STRING("draw", 0, "DIR", &o.draw_dir, "write a PNG per sample to DIR: the image, gold and predicted boxes, IoU"),
    VR_OPT_I64("draw-max", 0, "N", &o.draw_max, 0, INT64_MAX, "with --draw, the first N samples only (default 100)"),
    VR_OPT_FLAG("skip-bad", 0, &o.skip_bad, "skip bad lines with a warning instead of failing"),
    VR_OPT_FLAG("image-swap", 0, &do_swap, "read encoded task lines: the answer's loss with each line's own images and with another's"),
    VR_OPT_STRING("model", 'm', "DIR", &io.model, "with --image-swap: the checkpoint to check"),
    VR_OPT_STRING("template", 0, "NAME|FILE", &tmpl, "with --image-swap: question template, as in training (default r1)"),
    VR_OPT_STRING("system", 0, "TEXT", &io.chat.system, "with --image-swap: system prompt, as in training"),
    VR_OPT_END,
};

static const struct vr_cli cli = {
    "vr-eval",
    "[OPTION]... [FILE]...\n   or: vr-eval --diff [OPTION]... OLD NEW\n"
    "   or: vr-eval --image-swap --model DIR [OPTION]... [FILE]...",
    "Score grounding answers as VLM-R1's evaluation scripts do: one verdict line per sample,\n"
    "then one summary line per split (accuracy at IoU > 0.5 with a Wilson interval, mean IoU,\n"
    "parse and format rates). Reads vr-rollout lines, VLM-R1 rec_results_*.json files (by the\n"
    ".json extension) or JSONL with a model's text. With no FILE, read standard input.\n"
    "--image-swap checks that a model looks at its images (see vr-eval(1)).",
    opts,
};

static void skipped(const struct vr_err *err) { vr_warn("%s (skipped)", err->msg); }
static void not_drawn(const struct vr_err *err) { vr_warn("%s (not drawn)", err->msg); }

static void flush_stdout(void)
{
    struct vr_err err;
    if (fflush(stdout) == 0 && !ferror(stdout)) return;
    vr_err_sys(&err, "<stdout>", "write failed");
    vr_die(&err);
}

/* --image-swap: per-line losses, then a summary per group. */
static void image_swap(char *const *inputs, int n)
{
    struct vr_progress prog;
    struct vr_err err;
    char *tmpl_text = NULL;
    if (o.diff || o.draw_dir || o.eval.all || o.skip_bad)
        vr_die_usage("--image-swap takes none of --diff, --draw, --all, --skip-bad");
    if (tmpl && vr_chat_template_arg(tmpl, &io.chat.tmpl, &tmpl_text, &err)) vr_die(&err);
    vr_progress_init(&prog, "vr-eval", "lines", 0);
    if (vr_imgswap_write(&io, inputs, n, o.summary_only, &prog, stdout, &err)) vr_die(&err);
    free(tmpl_text);
    flush_stdout();
}

int main(int argc, char **argv)
{
    vr_json_reals_exact(1); /* boxes and IoUs are doubles, to the last bit */
    int ind = vr_cli_parse(&cli, argc, argv);
    if (!*o.eval.by) vr_die_usage("--by: empty field name");
    io.by = o.eval.by;
    if (do_swap != !!io.model) vr_die_usage(do_swap ? "--image-swap needs --model DIR" : "--model goes with --image-swap");
    if (!do_swap && (tmpl || io.chat.system)) vr_die_usage("--template and --system go with --image-swap");
    if (do_swap) {
        image_swap(argv + ind, argc - ind);
        return 0;
    }
    int nin = argc - ind;
    if (o.diff && nin != 2) vr_die_usage("--diff takes two runs, OLD and NEW");
    if (o.diff && (o.draw_dir || o.eval.all)) vr_die_usage("--diff compares first completions; --draw and --all do not apply");
    const char *dash = "-";
    const char *const *inputs = nin ? (const char *const *)argv + ind : &dash;
    struct vr_progress prog;
    struct vr_err err;
    int64_t nskipped;
    vr_progress_init(&prog, "vr-eval", "samples", 0);
    o.progress = &prog;
    o.skipped = skipped;
    o.not_drawn = not_drawn;
    if (vr_eval_run(&o, inputs, nin ? nin : 1, stdout, &nskipped, &err)) vr_die(&err);
    if (nskipped) vr_warn("%lld bad lines skipped", (long long)nskipped);
    flush_stdout();
    return 0;
}

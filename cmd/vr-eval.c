/* vr-eval: score model outputs as VLM-R1's evaluation scripts do and report
 * accuracy at IoU 0.5 per split, or compare two runs (DESIGN.md §3.6). Reads
 * vr-rollout's lines, VLM-R1's rec_results_*.json, or JSONL with a model's
 * text; the last stage of an eval pipeline and the one piped into jq. */
#include <string.h>

#include "cli.h"
#include "draw.h"
#include "eval.h"
#include "fs.h"
#include "image_write.h"
#include "imgswap.h"
#include "jsonl.h"
#include "progress.h"

enum { O_PARSE = 256, O_IOU, O_BY, O_SPLIT, O_DIFF, O_DRAW, O_DRAW_MAX, O_SKIP, O_SWAP, O_TEMPLATE,
       O_SYSTEM };

static const struct vr_opt opts[] = {
    {"parse", O_PARSE, "MODE", "r1 (test_rec_r1.py: the box in <answer>) or baseline (test_rec_baseline.py) (default r1)"},
    {"iou", O_IOU, "T", "a prediction is correct when its IoU > T (default 0.5)"},
    {"all", 'a', NULL, "a verdict for every completion of a line, not only the first"},
    {"by", O_BY, "FIELD", "group the summaries by the lines' FIELD (default split)"},
    {"summary", 's', NULL, "print only the summary lines"},
    {"split", O_SPLIT, "NAME", "the split of inputs that name none (default: the file's name)"},
    {"diff", O_DIFF, NULL, "compare two runs, OLD and NEW, paired by split and id"},
    {"draw", O_DRAW, "DIR", "write a PNG per sample to DIR: the image, gold and predicted boxes, IoU"},
    {"draw-max", O_DRAW_MAX, "N", "with --draw, the first N samples only (default 100)"},
    {"skip-bad", O_SKIP, NULL, "skip bad lines with a warning instead of failing"},
    {"image-swap", O_SWAP, NULL, "read encoded task lines: the answer's loss with each line's own images and with another's"},
    {"model", 'm', "DIR", "with --image-swap: the checkpoint to check"},
    {"template", O_TEMPLATE, "NAME|FILE", "with --image-swap: question template, as in training (default r1)"},
    {"system", O_SYSTEM, "TEXT", "with --image-swap: system prompt, as in training"},
    {0},
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

/* What becomes of each verdict. */
struct sink {
    int summary_only, diff_run; /* diff_run: 0 or 1 with --diff, else -1 */
    const char *by;
    struct vr_eval_report report;
    struct vr_eval_pairs pairs;
    const char *draw_dir;
    int64_t draw_max, drawn, seen;
    struct vr_progress prog;
};

static void out_json(json_t *v)
{
    struct vr_err err;
    if (vr_jsonl_write(stdout, v, &err)) vr_die(&err);
    json_decref(v);
}

static void warn_err(const struct vr_err *err) { vr_warn("%s (skipped)", err->msg); }

static int take(void *ctx, struct vr_eval_verdict *v, int n, struct vr_err *err)
{
    struct sink *s = ctx;
    for (int i = 0; i < n; i++, s->seen++) {
        if (s->diff_run >= 0) {
            vr_eval_pairs_add(&s->pairs, s->diff_run, &v[i]);
            continue;
        }
        vr_eval_report_add(&s->report, &v[i]);
        if (!s->summary_only) out_json(vr_eval_verdict_json(&v[i]));
        if (s->draw_dir && s->drawn < s->draw_max) {
            int rc = vr_eval_draw(s->draw_dir, &v[i], s->seen, err);
            if (rc < 0) return -1;
            if (rc > 0) vr_warn("%s (not drawn)", err->msg);
            else s->drawn++;
        }
    }
    vr_progress_update(&s->prog, s->seen);
    return 0;
}

static int swap_line(void *ctx, const struct vr_imgswap_line *l, struct vr_err *err)
{
    (void)err;
    struct sink *s = ctx;
    if (!s->summary_only) out_json(vr_imgswap_line_json(l, s->by));
    vr_progress_update(&s->prog, ++s->seen);
    return 0;
}

/* --image-swap: per-line losses, then a summary per group. */
static void image_swap(struct sink *s, const struct vr_imgswap_opts *io, char *const *inputs, int n)
{
    struct vr_imgswap_report rep = {0};
    struct vr_err err;
    vr_progress_init(&s->prog, "vr-eval", "lines", 0);
    if (vr_imgswap_run(io, inputs, n, swap_line, s, &rep, &err)) vr_die(&err);
    vr_progress_end(&s->prog);
    for (int g = 0; g < rep.n; g++) out_json(vr_imgswap_summary_json(&rep.sum[g], s->by));
    vr_imgswap_report_release(&rep);
}

int main(int argc, char **argv)
{
    struct vr_eval_opts o = {.parse = VR_EVAL_R1, .iou_threshold = 0.5, .by = "split"};
    struct sink s = {.draw_max = 100, .diff_run = -1};
    int skip_bad = 0, do_diff = 0, do_swap = 0, c, ind;
    const char *arg, *tmpl = NULL;
    struct vr_imgswap_opts io = {0};
    vr_cli_init(&cli, argc, argv);
    vr_json_reals_exact(1); /* boxes and IoUs are doubles, to the last bit */
    while ((c = vr_cli_next(&ind, &arg)) != -1) {
        switch (c) {
        case O_PARSE:
            if (vr_eval_parse_name(arg, &o.parse)) vr_die_usage("--parse: '%s' is not r1 or baseline", arg);
            break;
        case O_IOU: o.iou_threshold = vr_cli_double("iou", arg, 0, 1); break;
        case 'a': o.all = 1; break;
        case O_BY: o.by = arg; break;
        case 's': s.summary_only = 1; break;
        case O_SPLIT: o.split = arg; break;
        case O_DIFF: do_diff = 1; break;
        case O_DRAW: s.draw_dir = arg; break;
        case O_DRAW_MAX: s.draw_max = vr_cli_int("draw-max", arg, 0, INT64_MAX); break;
        case O_SKIP: skip_bad = 1; break;
        case O_SWAP: do_swap = 1; break;
        case 'm': io.model = arg; break;
        case O_TEMPLATE: tmpl = arg; break;
        case O_SYSTEM: io.chat.system = arg; break;
        }
    }
    if (!*o.by) vr_die_usage("--by: empty field name");
    s.by = io.by = o.by;
    if (do_swap != !!io.model) vr_die_usage(do_swap ? "--image-swap needs --model DIR" : "--model goes with --image-swap");
    if (!do_swap && (tmpl || io.chat.system)) vr_die_usage("--template and --system go with --image-swap");
    if (do_swap) {
        if (do_diff || s.draw_dir || o.all || skip_bad)
            vr_die_usage("--image-swap takes none of --diff, --draw, --all, --skip-bad");
        char *tmpl_text = NULL;
        struct vr_err err;
        if (tmpl && vr_chat_template_arg(tmpl, &io.chat.tmpl, &tmpl_text, &err)) vr_die(&err);
        image_swap(&s, &io, argv + ind, argc - ind);
        free(tmpl_text);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            vr_err_sys(&err, "<stdout>", "write failed");
            vr_die(&err);
        }
        return 0;
    }
    int nin = argc - ind;
    if (do_diff && nin != 2) vr_die_usage("--diff takes two runs, OLD and NEW");
    if (do_diff && (s.draw_dir || o.all)) vr_die_usage("--diff compares first completions; --draw and --all do not apply");
    const char *dash = "-";
    const char *const *inputs = nin ? (const char *const *)argv + ind : &dash;
    if (!nin) nin = 1;
    struct vr_err err;
    if (s.draw_dir && vr_mkdir_p(s.draw_dir, &err)) vr_die(&err);
    if (do_diff) vr_eval_pairs_init(&s.pairs);
    int64_t skipped = 0;
    vr_progress_init(&s.prog, "vr-eval", "samples", 0);
    for (int i = 0; i < nin; i++) {
        if (do_diff) s.diff_run = i;
        if (vr_eval_read(inputs[i], &o, skip_bad, take, &s, warn_err, &skipped, &err)) vr_die(&err);
    }
    vr_progress_end(&s.prog);
    if (s.drawn && vr_image_write_sync(s.draw_dir, &err)) vr_die(&err);
    if (s.draw_dir) vr_draw_shutdown(); /* cairo's and fontconfig's caches */
    if (do_diff) {
        json_t *lines = vr_eval_pairs_lines(&s.pairs, o.by);
        for (size_t i = 0; i < json_array_size(lines); i++) out_json(json_incref(json_array_get(lines, i)));
        json_decref(lines);
        vr_eval_pairs_release(&s.pairs);
    }
    for (int g = 0; g < s.report.n; g++)
        out_json(vr_eval_summary_json(&s.report.sum[g], o.by, s.report.group[g], o.iou_threshold));
    vr_eval_report_release(&s.report);
    if (skipped) vr_warn("%lld bad lines skipped", (long long)skipped);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        vr_err_sys(&err, "<stdout>", "write failed");
        vr_die(&err);
    }
    return 0;
}

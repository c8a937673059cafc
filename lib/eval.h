/* eval.h: vr-eval's scoring (DESIGN.md §3.6): boxes read from model text as
 * VLM-R1's evaluation scripts read them (src/eval/test_rec_r1.py and
 * test_rec_baseline.py), rescaled from the model's input size to the
 * original image, IoU, per-sample verdicts and per-split summaries with
 * intervals, and the paired comparison of two runs. tests/golden/eval_golden.py
 * is the Python transcription that made the golden verdicts. */
#ifndef VR_EVAL_H
#define VR_EVAL_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "progress.h"
#include "reward.h"

enum vr_eval_parse {
    VR_EVAL_R1,       /* first <answer>…</answer>, then \{.*\[\d+, \d+, \d+, \d+].*\} in it */
    VR_EVAL_BASELINE, /* the first numeric 4-list anywhere: floats, signs, decimals */
};
/* (vr-eval --parse names them in this order: r1|baseline) */

enum vr_eval_status {
    VR_EVAL_OK,
    VR_EVAL_NO_ANSWER,  /* r1: no <answer>…</answer> block */
    VR_EVAL_NO_BOX,     /* no box where the parser looks */
    VR_EVAL_BAD_NUMBER, /* r1: a number Python cannot read or divide (its script would crash) */
};


struct vr_eval_opts {
    enum vr_eval_parse parse;
    double iou_threshold; /* correct: IoU > threshold (0.5) */
    int all;              /* every completion, not only the first */
    const char *by;       /* the field that groups summaries ("split") */
    const char *split;    /* the split of lines or records that have none (NULL: the file's name) */
};

/* One scored output. Strings are owned (vr_eval_verdict_release). */
struct vr_eval_verdict {
    char *id, *split, *group; /* group: the --by field's value as text */
    int completion;           /* index in the line's completions, -1 for other inputs */
    enum vr_eval_status status;
    double pred[4];           /* valid when status == VR_EVAL_OK */
    int has_gt;               /* 0: batch grounding, no gold box */
    double gt[4];
    double iou;               /* NaN only where Python's would be (inf in a baseline box) */
    int correct, format;      /* format: VLM-R1's REC format reward is 1 */
    int64_t tokens;           /* the completion's tokens, -1 when unknown */
    char *image, *caption;    /* for drawing: the first image's path, the expression (either may be NULL) */
};
void vr_eval_verdict_release(struct vr_eval_verdict *v);
/* A line's field as text: a string as is, a number or boolean as JSON; NULL
 * when absent or of another type. Caller frees. */
char *vr_eval_field_text(const json_t *line, const char *key);

/* The verdict line: {"id","split",["completion"],"parse","format","pred","gt","iou","correct",["tokens"]};
 * without a gold box only id, split, [completion], parse, format, pred. */
json_t *vr_eval_verdict_json(const struct vr_eval_verdict *v);

/* Score one JSONL line: a rollout or scored line ("completions": [{"text",
 * "tokens"}], sizes from "pixels") or a plain line ("text", "model_output" or
 * "response"; sizes from "input_size" and "image_size", [w, h]); the gold box
 * is "solution" (absent: batch grounding). Without a model input size the box
 * is taken as image pixels. Fills *out with *n verdicts (caller releases each
 * and frees the array). Fails with "file:line: what is wrong". */
int vr_eval_line(const json_t *line, const char *file, long lineno, const struct vr_eval_opts *o,
                 struct vr_eval_verdict **out, int *n, struct vr_err *err);

/* Score a VLM-R1 rec_results document ({"accuracy", "results": [{"model_output",
 * "ground_truth", "input_size": [h, w], "image_size": [h, w], ...}]}), as
 * test_rec_r1.py wrote it; the verdicts' ids are the results' indices. */
int vr_eval_rec_results(const json_t *doc, const char *file, const struct vr_eval_opts *o,
                        struct vr_eval_verdict **out, int *n, struct vr_err *err);

/* Totals of one group of verdicts. */
struct vr_eval_summary {
    int64_t n, correct, unlabelled, parsed, formatted, tok_n;
    double iou_sum, tok_sum;
};
/* {"summary":true, BY: group, "n", "correct", "acc", "acc_lo", "acc_hi",
 *  "interval":"wilson95", "iou_threshold", "miou", "parse_rate", "format_rate",
 *  "mean_tokens", ["unlabelled"]} */
json_t *vr_eval_summary_json(const struct vr_eval_summary *s, const char *by, const char *group,
                             double iou_threshold);

/* ---- runs: reading, summaries, pairs, pictures ------------------------- */

/* Called with the verdicts of each line (or of a whole rec_results file); they
 * are released when it returns. Nonzero stops the reading (err filled). */
typedef int (*vr_eval_fn)(void *ctx, struct vr_eval_verdict *v, int n, struct vr_err *err);
/* Score one input: VLM-R1's rec_results document when path ends in ".json",
 * else JSONL ("-": standard input). With skip_bad a bad line (VR_ERR_INPUT) is
 * handed to warn (may be NULL), counted in *skipped, and reading goes on.
 * Returns 0, or -1 with err. */
int vr_eval_read(const char *path, const struct vr_eval_opts *o, int skip_bad, vr_eval_fn fn, void *ctx,
                 void (*warn)(const struct vr_err *), int64_t *skipped, struct vr_err *err);

/* Summaries by group, in order of first appearance. Zero-initialise. */
struct vr_eval_report {
    char **group;
    struct vr_eval_summary *sum;
    int n;
};
void vr_eval_report_add(struct vr_eval_report *r, const struct vr_eval_verdict *v);
void vr_eval_report_release(struct vr_eval_report *r);

/* Two runs' labelled first-completion verdicts, keyed by split and id. */
struct vr_eval_pairs {
    json_t *run[2]; /* "split\tid" -> {"correct", "group"} */
};
void vr_eval_pairs_init(struct vr_eval_pairs *p);
void vr_eval_pairs_add(struct vr_eval_pairs *p, int run, const struct vr_eval_verdict *v);
/* One line per group: {"diff":true, BY: group, "n", "old_acc", "new_acc",
 * "wins", "losses", "both_correct", "both_wrong", "p_mcnemar", "only_old",
 * "only_new"}, run 0 being OLD; a new JSON array (caller decrefs). */
json_t *vr_eval_pairs_lines(const struct vr_eval_pairs *p, const char *by);
void vr_eval_pairs_release(struct vr_eval_pairs *p);

/* v drawn over its image (draw.h) as DIR/NNNNN-ID[-K].png, NNNNN = index:
 * 0; 1 when it is not drawn (no image, or one that does not load: err says
 * why, for a warning); -1 when the picture cannot be written. The file is
 * not fsynced (vr_image_write_sync(dir) once at the end). */
int vr_eval_draw(const char *dir, const struct vr_eval_verdict *v, int64_t index, struct vr_err *err);

/* What vr-eval writes for inputs[0..n) ("-": standard input): each verdict
 * line (unless summary_only), then with diff (two inputs, OLD and NEW) the
 * paired lines per group, then a summary line per group; with draw_dir the
 * first draw_max verdicts' pictures (a verdict that has none goes to
 * not_drawn, a bad line skipped with skip_bad to skipped and *nskipped).
 * Returns 0, or -1 with err (the lines written so far stay written). */
struct vr_eval_run_opts {
    struct vr_eval_opts eval;
    int summary_only, diff, skip_bad;
    const char *draw_dir;          /* NULL: no pictures */
    int64_t draw_max;
    struct vr_progress *progress;  /* counts the verdicts; NULL for none */
    void (*skipped)(const struct vr_err *err);
    void (*not_drawn)(const struct vr_err *err);
};
int vr_eval_run(const struct vr_eval_run_opts *o, const char *const *inputs, int n, FILE *out,
                int64_t *nskipped, struct vr_err *err);


#endif

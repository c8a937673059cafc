/* imgswap.h: is a model looking at its images? The image-swap check
 * (vr-eval --image-swap).
 *
 * For each task line (with its encoded "pixels" and a gold answer), the
 * teacher-forced negative log-likelihood of the SFT answer (vr-update --sft's
 * target: "completion", else <think>THINK</think> when the task has one, then
 * the box) per answer token, once with the line's own images and once with
 * the images of another line of the same group (--by field) whose images have
 * the same patch grids: within each block of lines read, lines of one group
 * and one grid signature are rotated by one. A model that reads its images
 * loses more with someone else's; a text-only model loses nothing. The gap
 * (swapped - own, nats per answer token) is reported per line and as a mean
 * over lines with a 95% interval (normal approximation, mean +- 1.96 s/sqrt n).
 * Lines with no partner (alone in their group and grid within a block) are
 * counted, not scored. The verdict: a model looks at its images when the
 * interval's lower end is above VR_IMGSWAP_MIN_GAP, a material effect (an
 * untrained or text-only model's gap is within about 1e-4 of zero; one that
 * reads a colour off the image gains tenths of a nat per token). */
#define VR_IMGSWAP_MIN_GAP 0.01
#ifndef VR_IMGSWAP_H
#define VR_IMGSWAP_H

#include <jansson.h>
#include <stdint.h>

#include "chat.h"
#include "err.h"
#include "progress.h"

struct vr_imgswap_opts {
    const char *model;             /* checkpoint folder (its LoRA adapter applies, if any) */
    struct vr_chat_task_opts chat; /* template and system prompt, as in training */
    const char *by;                /* group field (NULL: "split") */
    int block;                     /* lines read and swapped at once (<= 0: 256) */
};

/* One line's result. */
struct vr_imgswap_line {
    const char *id, *group;        /* valid during the callback */
    int paired;                    /* 0: no partner; nll_swapped unset */
    int64_t tokens;                /* answer tokens */
    double nll, nll_swapped;       /* nats per answer token */
};

/* A group's summary. */
struct vr_imgswap_summary {
    char *group;
    int64_t lines, paired, tokens; /* tokens of the paired lines */
    double nll, nll_swapped;       /* sums over paired lines of nats per token */
    double gap, gap_sq;            /* sums of the per-line gap and its square */
};

struct vr_imgswap_report {
    int n;
    struct vr_imgswap_summary *sum;
};

typedef int (*vr_imgswap_fn)(void *ctx, const struct vr_imgswap_line *l, struct vr_err *err);

/* Run the check over the lines of inputs (n files; none: standard input),
 * calling fn (may be NULL) for every line in input order and adding each to
 * rep (zeroed by the caller). Errors name file:line. */
int vr_imgswap_run(const struct vr_imgswap_opts *o, char *const *inputs, int n, vr_imgswap_fn fn,
                   void *ctx, struct vr_imgswap_report *rep, struct vr_err *err);
void vr_imgswap_report_release(struct vr_imgswap_report *rep);
/* vr-eval --image-swap: vr_imgswap_run writing a line per input line to out
 * (unless summary_only), then a summary line per group. progress (may be
 * NULL) counts the lines. Returns 0, or -1 with err. */
int vr_imgswap_write(const struct vr_imgswap_opts *o, char *const *inputs, int n, int summary_only,
                     struct vr_progress *progress, FILE *out, struct vr_err *err);

/* {"id","<by>","tokens","nll"[,"nll_swapped","gap"]} */
json_t *vr_imgswap_line_json(const struct vr_imgswap_line *l, const char *by);
/* {"<by>","check":"image_swap","lines","paired","tokens","nll","nll_swapped","gap",
 *  "gap_lo","gap_hi","looks"}: means over paired lines (nll and gap per token);
 * looks: gap_lo > VR_IMGSWAP_MIN_GAP. */
json_t *vr_imgswap_summary_json(const struct vr_imgswap_summary *s, const char *by);

#endif

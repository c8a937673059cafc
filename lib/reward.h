/* reward.h: vr-reward's rewards and GRPO's group-relative advantages
 * (DESIGN.md §3.4).
 *
 * The text rewards are VLM-R1's REC rewards as its Python computes them
 * (om-ai-lab/VLM-R1, src/open-r1-multimodal/src/open_r1/: vlm_modules/
 * qwen_module.py format_reward_rec and iou_reward, grpo_jsonl.py format_reward,
 * cosine_reward and repetition_reward); tests/golden/reward_golden.py mirrors
 * them and its corpus pins vr to them (1e-9). Python's \d and \s in str
 * patterns are Unicode-aware (Nd digits; the 29 characters of str.isspace);
 * vr's patterns use the same sets, from Python 3.11's Unicode 14 tables.
 * Where vr departs from VLM-R1 the function says so (and vr-reward(1) lists it).
 *
 * Texts are a completion's "text": valid UTF-8 (a JSON string; invalid bytes
 * out of the tokenizer are U+FFFD, as Hugging Face's batch_decode gives them).
 *
 * A struct vr_reward holds the chosen terms ("format:0.5,iou"), scores rollout
 * lines (each completion gains "rewards", "reward") and runs exec: terms as
 * child processes. vr_reward_advantages then adds "group" and each
 * "advantage". Nothing here prints or exits. */
#ifndef VR_REWARD_H
#define VR_REWARD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"

/* ---- text rewards: pure functions of one completion --------------------- */

/* VLM-R1's REC format reward: 1.0 when re.search(r"<think>.*?</think>\s*
 * <answer>.*?\{.*\[\d+,\s*\d+,\s*\d+,\s*\d+\].*\}.*?</answer>", text,
 * re.DOTALL) matches, else 0.0. Linear time (see reward.c). */
double vr_reward_format(const char *text, size_t len);
/* VLM-R1's generic format reward: 1.0 when re.fullmatch(r"<think>.*?</think>
 * \s*<answer>.*?</answer>", text, re.DOTALL) matches, else 0.0. */
double vr_reward_format_strict(const char *text, size_t len);

/* What the IoU reward knows about a line. rescale: 1 when the model input
 * size (in_w x in_h, pixels.input_size or grid_thw * 14) and the original
 * image size (img_w x img_h, image_sizes[0]) are both known; the answer's box
 * is then mapped from input to image pixels as VLM-R1 does. 0: the box is
 * taken as image pixels (VLM-R1 always rescales; vr's choice for lines with no
 * pixels). sol: the gold box x1, y1, x2, y2 in image pixels. */
struct vr_reward_geom {
    int rescale;
    int64_t in_w, in_h, img_w, img_h;
    double sol[4];
};

enum vr_answer_box {
    VR_BOX_OK = 0,
    VR_BOX_NO_ANSWER, /* no <answer>…</answer> block */
    VR_BOX_NO_BOX,    /* no [int, int, int, int] in the first block */
    VR_BOX_RAISES,    /* Python raises: an integer of more than 4300 digits,
                         or a value too large for a double */
};
/* The box VLM-R1's iou_reward reads from text: the first <answer>…</answer>
 * block, the first [\d+, \d+, \d+, \d+] in it (Unicode digits count, as
 * Python's int() reads them), each integer divided by the input size and
 * multiplied by the image size (Python's int / int is correctly rounded,
 * also beyond 2^53; so is vr's), or converted to double without rescale.
 * box is set only for VR_BOX_OK. */
enum vr_answer_box vr_reward_answer_box(const char *text, size_t len,
                                        const struct vr_reward_geom *g, double box[4]);
/* The inside of the first <answer>…</answer> of t[0..n) (VLM-R1's
 * re.search(r'<answer>(.*?)</answer>', text, re.DOTALL)): t[*start..*end).
 * -1 when there is none. */
int vr_reward_answer_block(const char *t, size_t n, size_t *start, size_t *end);
/* The four integer groups ov[2..10) of a match in t (Python's \d runs) as a
 * box: each divided by the input size and multiplied by the image size as
 * resize_bbox does (g->rescale), or float(int) without. -1 where Python
 * raises (see vr_py_int_ratio). Shared with vr-eval's r1 parser. */
int vr_reward_int_box(const char *t, const size_t ov[10], const struct vr_reward_geom *g, double box[4]);

/* VLM-R1's iou(box1, box2), operation for operation (inclusive pixel
 * intersection: min(x2) - 1 - max(x1) + 1; plain-area union; Python's max and
 * min on NaN). Returns 0 and *out, or -1 where Python raises
 * ZeroDivisionError (union == 0). */
int vr_reward_iou_boxes(const double box1[4], const double box2[4], double *out);
/* VLM-R1's continuous IoU reward: 0.0 without a box or where Python raises;
 * NaN (inf - inf, from integers beyond 1e300) is 0.0 too, where VLM-R1 would
 * let the NaN poison the group's advantages. */
double vr_reward_iou(const char *text, size_t len, const struct vr_reward_geom *g);

/* VLM-R1's cosine length reward (cosine_reward in grpo_jsonl.py), which sets
 * acc_reward = 1.0 before use, so the correct-answer curve always applies:
 * 1.0 - 0.5 * (1 - cos(ntokens * pi / 1024)) / 2, not clamped (it rises again
 * past 1024 tokens, as VLM-R1's does). */
double vr_reward_length(int64_t ntokens);

/* VLM-R1's repetition penalty (repetition_reward in grpo_jsonl.py): for a
 * JSON list of {"bbox_2d","label"} objects found in a ```json fence, a ```
 * fence or a bare [{…"bbox_2d"…"label"…}], -(1 - unique/total) over those
 * items; otherwise -(1 - unique/total) over the 6-grams of lowercased
 * whitespace-separated words (0 below 6 words). Departures: json_repair is not
 * reproduced (a candidate strict JSON refuses is plain text, as are NaN,
 * Infinity and integers beyond int64); items on which VLM-R1 raises TypeError
 * are skipped; lowercasing is utf8proc's simple mapping plus U+0130, without
 * Python's final-sigma rule. Returns a value in [-1, 0]. */
double vr_reward_repetition(const char *text, size_t len);


/* ---- exec: rewards from another program ---------------------------------- */

/* A command started once (/bin/sh -c CMD, in its own process group) that reads
 * one JSON line per completion on its standard input and answers one number
 * per line on its standard output. Its standard error is ours. */
struct vr_reward_exec {
    char *cmd;
    pid_t pid;      /* 0: not started, or reaped */
    int to_fd;      /* its stdin, non-blocking; -1 when closed */
    int from_fd;    /* its stdout */
    struct vr_buf in; /* bytes read and not yet used */
    int eof;
    int status;     /* waitpid status once reaped */
};
/* Start cmd. Fails (VR_ERR_SYS) when a pipe or fork fails; a command that
 * cannot run shows later, as an exit before answering. */
int vr_reward_exec_start(struct vr_reward_exec *x, const char *cmd, struct vr_err *err);
/* Write req (n lines, each ending in '\n') and read n numbers into out.
 * timeout: the longest wait for the next number, in seconds. On a crash, an
 * exit, a timeout (the command is then killed), a line that is not a finite
 * number, or output beyond n lines, fails with err = "what: completion K:
 * what happened" (what names the task) and the command is gone. */
int vr_reward_exec_ask(struct vr_reward_exec *x, const char *req, size_t len, int n,
                       double *out, double timeout, const char *what, struct vr_err *err);
/* Close its input and wait up to timeout seconds for it to exit (then kill
 * it). Returns -1 (err set) when it printed more than it was asked for (its
 * answers and the completions were out of step), 1 (err set, a warning) when
 * it exited with a non-zero status or had to be killed, 0 otherwise. Frees
 * x's contents either way. */
int vr_reward_exec_stop(struct vr_reward_exec *x, double timeout, struct vr_err *err);
/* Kill it (the whole process group) and free x's contents. */
void vr_reward_exec_kill(struct vr_reward_exec *x);

/* ---- a set of reward terms, scoring lines -------------------------------- */

enum vr_reward_fn {
    VR_RW_FORMAT,
    VR_RW_FORMAT_STRICT,
    VR_RW_IOU,        /* also "accuracy", VLM-R1's name for it in grpo_rec.py */
    VR_RW_IOU50,
    VR_RW_LENGTH,
    VR_RW_REPETITION,
    VR_RW_EXEC,
};

struct vr_reward_term {
    enum vr_reward_fn fn;
    char *name;      /* key in "rewards": "format", "exec:CMD" */
    double weight;
    struct vr_reward_exec exec;
    double sum;      /* of unweighted values, for the summary */
    int64_t n;
};

struct vr_bpe;

struct vr_reward {
    struct vr_reward_term *terms;
    int nterms;
    double timeout;     /* exec: seconds per answer (default 30) */
    struct vr_bpe *tok; /* length: tokens counted by re-encoding the text as
                           VLM-R1 does; NULL: from the completion's "tokens" */
    struct vr_buf req;
    double *vals;       /* scratch: nterms x completions */
    size_t vals_cap;
    int64_t lines, completions;
    int exec_failed;    /* set when an exec: command failed (not a line's fault) */
};

/* Add the terms of spec to r: a comma-separated list of NAME[:WEIGHT] with
 * NAME one of format, format-strict, iou, accuracy, iou50, length, repetition;
 * or exec:CMD / exec:WEIGHT:CMD, which takes the rest of spec (commas and
 * colons included) as the command. Weight defaults to 1. Unknown names, bad
 * weights and a name given twice are VR_ERR_USAGE. */
int vr_reward_add(struct vr_reward *r, const char *spec, struct vr_err *err);
/* Load the tokenizer for `length` (a tokenizer.json, or a folder holding one). */
int vr_reward_tokenizer(struct vr_reward *r, const char *path, struct vr_err *err);
/* Score one rollout line in place: each completion gains "rewards" ({name:
 * value}) and "reward" (the weighted sum). A line without a non-empty
 * "completions" list of objects with a "text" string, or without the fields a
 * term needs ("solution" for iou), is VR_ERR_INPUT at file:line; an exec
 * failure names file:line, the task id and the completion. */
int vr_reward_score(struct vr_reward *r, json_t *line, const char *file, long lineno,
                    struct vr_err *err);
/* Stop the exec commands (see vr_reward_exec_stop): -1 if one failed, else 1
 * if one warned, else 0; err holds the first such message. Every command is
 * stopped. */
int vr_reward_close(struct vr_reward *r, struct vr_err *err);
void vr_reward_release(struct vr_reward *r);

/* ---- advantages ----------------------------------------------------------- */

enum vr_scale {
    VR_SCALE_GROUP, /* (r - group mean) / (group std + 1e-4): VLM-R1, TRL's default */
    VR_SCALE_BATCH, /* (r - group mean) / (batch std + 1e-4): TRL's scale_rewards="batch" */
    VR_SCALE_NONE,  /* r - group mean: Dr. GRPO */
};
/* (vr-reward --scale names them in this order: group|batch|none) */

/* Mean and unbiased standard deviation (torch.std's default, n - 1) of
 * r[0..n), n >= 1. For n == 1 torch gives NaN, which would make every
 * advantage NaN; vr sets std = 0 (the group is degenerate, advantage 0). */
void vr_reward_stats(const double *r, size_t n, double *mean, double *std);
/* On a scored line: "group":{"mean","std"} (the group's own), "degenerate":true
 * when its rewards are all equal, and each completion's "advantage" under
 * scale (batch_std is the divisor's std for VR_SCALE_BATCH, and is recorded as
 * the line's "batch_std"). Returns 1 for a degenerate group, 0 otherwise, -1
 * for a line that was not scored, -2 (the line unchanged) when the rewards'
 * mean, spread or an advantage is not finite (rewards near DBL_MAX). */
int vr_reward_advantages(json_t *line, enum vr_scale scale, double batch_std);
/* Unbiased std over the "reward" of every completion of lines[0..n) (0 for a
 * single completion). */
double vr_reward_batch_std(json_t *const *lines, size_t n);

/* ---- batches: advantages, then out (reward_batch.c) ------------------------ */

/* Scored lines on their way to out: held until their batch is complete (each
 * line is one with VR_SCALE_GROUP and NONE; prompts lines, or the whole
 * input, with VR_SCALE_BATCH), then given advantages and written, and out
 * flushed at once (in the steady-state loop vr-update waits for a line before
 * the rollout gets the weights of its next batch). Zero-initialise, then set
 * the fields above pend. */
struct vr_reward_batch {
    enum vr_scale scale;
    int64_t prompts;      /* VR_SCALE_BATCH: lines per batch; 0: the whole input */
    int drop;             /* leave out degenerate groups */
    FILE *out;
    const char *out_name; /* out's name in errors ("<stdout>") */
    json_t **pend;
    size_t npend, cap;
    int64_t groups, degenerate, written; /* counts for the summary */
};
/* Take a scored line (the batch owns it); a complete batch is written.
 * Returns 0, or -1 with err (a write failed, or a line's rewards are too
 * large for advantages). */
int vr_reward_batch_push(struct vr_reward_batch *b, json_t *line, struct vr_err *err);
/* Write the lines held (the last batch). 0, or -1 with err. */
int vr_reward_batch_flush(struct vr_reward_batch *b, struct vr_err *err);
void vr_reward_batch_release(struct vr_reward_batch *b);
/* The run in one line, appended to s: "G groups, C completions; mean reward
 * X (NAME m, ...); D degenerate[ (dropped)]", the means over the unweighted
 * rewards of r's terms and X the weighted total. */
void vr_reward_summary(const struct vr_reward *r, const struct vr_reward_batch *b, struct vr_buf *s);

#endif

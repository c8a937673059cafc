/* chat.h: the Qwen2.5-VL chat template, for what vr needs (vr-tokenize
 * --chat now; vr-rollout and vr-update build their prompts here too).
 *
 * One conversation: an optional system turn (default "You are a helpful
 * assistant.", as the official template adds when the first message is not a
 * system one), a user turn of N images then text, and either an assistant turn
 * (SFT) or the generation prompt. Each image is
 *   <|vision_start|> + (grid_t*grid_h*grid_w / merge_size^2) x <|image_pad|> + <|vision_end|>
 * which is the official chat_template.json followed by the processor's pad
 * expansion (shared/qwen25vl.md §5):
 *   <|im_start|>system\nSYSTEM<|im_end|>\n<|im_start|>user\n[IMAGES]TEXT<|im_end|>\n
 *   <|im_start|>assistant\n            (generation prompt)
 *   <|im_start|>assistant\nANSWER<|im_end|>\n   (assistant turn, no prompt after)
 * The ids are built directly: special tokens by id, each run of text between
 * them through vr_bpe_encode (so special-token text inside the user text is
 * matched, as tokenizing the rendered string does). They equal tokenizing the
 * rendered text whenever no added token spans the border between the user's
 * text and the template's tokens — true for Qwen's added tokens, which all
 * begin with '<' and end with '>' (checked in VR_DEBUG_ASSERT builds). */
#ifndef VR_CHAT_H
#define VR_CHAT_H

#include <jansson.h>

#include "bpe.h"
#include "buf.h"
#include "err.h"
#include "task.h"

#define VR_CHAT_DEFAULT_SYSTEM "You are a helpful assistant."

struct vr_chat {
    const char *system;       /* NULL: VR_CHAT_DEFAULT_SYSTEM */
    int nimages;
    const int (*grid_thw)[3]; /* nimages (t, h, w) patch grids */
    int merge_size;           /* <= 0: 2 */
    const char *user;         /* the text after the images; NULL is "" */
    const char *assistant;    /* NULL: no assistant turn, end with the generation prompt */
};

/* Append the rendered prompt to text and its ids to ids (either may be NULL).
 * Fails when the tokenizer lacks one of the template's special tokens or a
 * grid does not divide by merge_size^2. */
int vr_chat_render(struct vr_bpe *tok, const struct vr_chat *c, struct vr_buf *text,
                   struct vr_ids *ids, struct vr_err *err);

/* Question templates: "{Question}" is replaced by the task's problem.
 *   r1        VLM-R1's REC prompt (grpo_rec.py, test_rec_r1.py): the problem, then
 *             " First output the thinking process in <think> </think> tags and then
 *             output the final answer in <answer> </answer> tags. Output the final
 *             answer in JSON format."
 *   baseline  VLM-R1's test_rec_baseline.py: the problem, then " Please provide
 *             the bounding box coordinate in JSON format."
 *   none      the problem as it is
 * Returns the template text, or NULL for an unknown name. */
const char *vr_chat_template(const char *name);
/* A --template argument: a name above, or a file holding {Question} (its
 * final newline is not part of the question). *tmpl gets the text, *owned
 * the file's text to free (NULL for a name). Fails naming the file. */
int vr_chat_template_arg(const char *arg, const char **tmpl, char **owned, struct vr_err *err);
/* Append tmpl with every "{Question}" replaced by problem. */
void vr_chat_question(const char *tmpl, const char *problem, struct vr_buf *out);

/* How a task line (DESIGN.md §3.1/§3.2, parsed by vr_task_parse with
 * VR_NEED_GRIDS) becomes a conversation. */
struct vr_chat_task_opts {
    const char *system;      /* NULL: default */
    const char *tmpl;        /* question template text (NULL: r1) */
    int patch_size, merge_size;  /* <= 0: 14, 2 */
    int assistant;           /* 1: add the assistant turn (vr_chat_task_answer) */
};

/* The SFT answer of a task: its "completion" string when it has one; else,
 * for a box solution, <answer>{"bbox_2d": [x1, y1, x2, y2]}</answer> with the
 * box scaled from the original image (image_sizes[0]) to the model's input
 * (grid * patch_size) and rounded half up to integers, and ', "label": "…"'
 * after the box when the task has a label; for a string solution,
 * <answer>SOLUTION</answer>; either after <think>THINK</think> when the task
 * has a "think" string (a reasoning caption, e.g. vr-synth's). */
int vr_chat_task_answer(const struct vr_task *t, const struct vr_chat_task_opts *o, const char *file, long line,
                        struct vr_buf *out, struct vr_err *err);

/* Render a task: its images' grids, the question through the template, the
 * optional answer. */
int vr_chat_task(struct vr_bpe *tok, const struct vr_task *t, const struct vr_chat_task_opts *o,
                 const char *file, long line, struct vr_buf *text, struct vr_ids *ids,
                 struct vr_err *err);

#endif

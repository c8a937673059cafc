/* rollout.h: G completions per task from the policy (vr-rollout, DESIGN.md
 * §3.3). A task's prompt (images included) is prefilled once and its KV cache
 * copied to the G rows that sample from it; the G completions then decode in
 * lockstep until each has stopped. Randomness comes from (seed, task id,
 * completion index, position) only, so results do not depend on batching or
 * threads. */
#ifndef VR_ROLLOUT_H
#define VR_ROLLOUT_H

#include <jansson.h>

#include "bpe.h"
#include "chat.h"
#include "qwen.h"
#include "sample.h"

struct vr_rollout_opts {
    int G;
    int max_tokens;
    int stop_after_answer;    /* stop a completion once its text ends with </answer> */
    uint64_t seed;
    struct vr_sampling sampling;
    struct vr_chat_task_opts chat;
};

struct vr_rollout {
    struct vr_rollout_opts o;
    struct vr_model m;
    struct vr_bpe *tok;
    uint64_t vhash;           /* vision weights, to trust a "vision" cache entry */
    int32_t eos[8];
    int neos;
    struct vr_ws ws;
    struct vr_sample_ws sws;
    int64_t tokens_out;       /* completion tokens produced so far */
};

/* Load the model folder (weights, tokenizer.json, generation_config.json's
 * eos_token_id list, else config.json's). tokenizer may be NULL (DIR's). */
int vr_rollout_init(struct vr_rollout *r, const char *model_dir, const char *tokenizer,
                    const struct vr_rollout_opts *o, struct vr_err *err);
void vr_rollout_release(struct vr_rollout *r);

/* Add "prompt_tokens" and "completions" ([{text, tokens, logp, finish}]) to
 * task, an encoded line (it needs "pixels" for its images; "vision" entries
 * of this model are used when present). Errors name file:line. */
int vr_rollout_task(struct vr_rollout *r, json_t *task, const char *file, long line,
                    struct vr_err *err);

#endif

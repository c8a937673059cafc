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
#include "jsonl.h"
#include "progress.h"
#include "publish.h"
#include "qwen.h"
#include "sample.h"

struct vr_rollout_opts {
    int G;
    int max_tokens;
    int stop_after_answer;    /* stop a completion once its text ends with </answer> */
    uint64_t seed;
    int shard, shards;        /* --shard K/N: only input lines i with i % shards == shard (0-based); shards 0: all */
    struct vr_sampling sampling;
    struct vr_chat_task_opts chat;
};

struct vr_group;

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
    /* the running batch (vr_rollout_start) */
    struct vr_kvcache kv;     /* rows x cap, allocated once */
    struct vr_kvcache kv1;    /* one prompt's prefill, copied into its G rows */
    int rows, cap, max_prompt;
    int *free_rows, nfree;
    struct vr_group *active;  /* groups decoding */
    struct vr_group *finished;/* done, waiting for their turn in input order */
    int64_t seq_in, seq_out;
    int32_t *seen;            /* scratch: prompt + completion ids of one row */
    int *step_rows;
    int32_t *step_ids;
    float *step_logits;
};

/* Load the model folder (weights, tokenizer.json, generation_config.json's
 * eos_token_id list, else config.json's). tokenizer may be NULL (DIR's). */
int vr_rollout_init(struct vr_rollout *r, const char *model_dir, const char *tokenizer,
                    const struct vr_rollout_opts *o, struct vr_err *err);
void vr_rollout_release(struct vr_rollout *r);

/* Continuous batching: allocate the KV cache once from the budget:
 * max_batch_tokens / (max_prompt + max_tokens) rows (at least G). The
 * admission, decode and output loop is vr_rollout_run's (below). */
int vr_rollout_start(struct vr_rollout *r, int64_t max_batch_tokens, int max_prompt, struct vr_err *err);

/* --follow (DESIGN.md §2.1): sampling from the generations that a long-lived
 * vr-update publishes in a folder. */
struct vr_rollout_follow {
    struct vr_publish_reader rd;
    int64_t loaded;           /* the generation sampling now */
    int stale;                /* --max-staleness S */
    int pps;                  /* lines per batch: the writer's --prompts-per-step */
};

/* Wait until dir's writer has published generation 0 (publish.h: a writer
 * that does not appear is an error, never a hang); pps, unless 0, must be the
 * writer's lines per batch (VR_ERR_INPUT). Then vr_rollout_init(dir) loads
 * what it published. */
int vr_rollout_follow_open(struct vr_rollout_follow *f, const char *dir, int stale, int pps, struct vr_err *err);
void vr_rollout_follow_release(struct vr_rollout_follow *f);

/* Where finished tasks go, in input order: the task is the caller's to
 * keep (json_incref) or leave; 0, or -1 with err filled, which ends the run. */
typedef int (*vr_rollout_sink_fn)(void *ctx, json_t *task, struct vr_err *err);

/* Roll out every line of in (vr_rollout_start first; with o.shards > 1,
 * the lines of o.shard): admit tasks while a
 * group's rows are free, step the running batch, hand finished tasks to sink
 * in input order, until in is done and nothing is in flight. With f, batch k
 * (lines k*pps on) is sampled from generation k - S or newer: its first line
 * waits for that generation, and weights change only with nothing in flight,
 * so a batch that needs newer weights first drains the running tasks (the
 * writer needs them to make the generation). prog (NULL: none) counts
 * completion tokens. Fails on the first bad line (naming file:line), a
 * failed reload or wait, or a failed sink; tasks still in flight are then
 * dropped.
 * Under mpirun (lib/dist.h, N ranks; every rank calls it, and f must be
 * NULL): rank 0 reads chunks of lines (4 x the groups that fit in the N KV
 * caches), every rank rolls out the chunk's lines j with j % N == its rank,
 * and rank 0's sink gets all of them in input order: the same lines, byte
 * for byte, as one process (sampling is keyed by task id, not by batch or
 * rank). Only rank 0's sink is called. A bad line fails every rank; the
 * chunks before it have been written. */
int vr_rollout_run(struct vr_rollout *r, struct vr_jsonl_files *in, struct vr_rollout_follow *f,
                   vr_rollout_sink_fn sink, void *ctx, struct vr_progress *prog, struct vr_err *err);

#endif

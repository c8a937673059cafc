/* update.h: from scored lines (DESIGN.md §3.4) or task lines (SFT) to the
 * gradient of one optimizer step (vr-update, DESIGN.md §6).
 *
 * A step's batch is a list of groups (one per input line: a prompt, its
 * images, and its G completions); each completion is one sequence, prompt +
 * completion tokens up to and including the first end-of-sequence token.
 * vr_update_grads runs the batch through the training pass in micro-batches
 * of at most max_batch_tokens tokens (a group's images go with every
 * micro-batch that holds one of its sequences), so gradients accumulate and
 * the result does not depend on the budget beyond float rounding. */
#ifndef VR_UPDATE_H
#define VR_UPDATE_H

#include <jansson.h>

#include "bpe.h"
#include "chat.h"
#include "train.h"

enum vr_loss { VR_LOSS_GRPO, VR_LOSS_BNPO, VR_LOSS_DAPO, VR_LOSS_DR_GRPO };

struct vr_update_opts {
    int sft;                  /* cross-entropy on the answer instead of GRPO */
    enum vr_loss loss;
    double epsilon, epsilon_high; /* clip range [1 - epsilon, 1 + epsilon_high] */
    double beta;              /* k3 KL weight; 0 needs no reference model */
    double temperature;       /* logits / T, as the sampler (TRL); GRPO only */
    int64_t max_batch_tokens; /* tokens per micro-batch */
    int max_len;              /* dr_grpo's divisor per completion (0: the longest of the step) */
    int checkpoint;           /* activation checkpointing */
    int64_t keep_logits_mb;   /* keep the LM head's probabilities from the forward for the backward
                               * when a micro-batch's fit in this many MiB (0: compute them again);
                               * the CPU backend's only, and the same bits either way */
    int freeze_vision;        /* no gradient into the vision tower */
    struct vr_chat_task_opts chat;
    /* LoRA: train adapters instead of the weights (lora_r > 0, or an adapter
     * in the model folder or in adapter_dir) */
    int lora_r;
    double lora_alpha, lora_dropout;
    int lora_dropout_set;     /* the flag was given: it overrides a loaded adapter's */
    const char *adapter_dir;  /* start from this PEFT adapter */
    uint64_t seed;            /* adapter initialisation and dropout */
    int forward_only;         /* no gradient arrays: vr_update_logp only (the image-swap check) */
};

struct vr_update_seq {
    int g;                    /* its group */
    int32_t *ids;             /* prompt + completion (owned) */
    int n;                    /* ids */
    int first, len;           /* targets are ids[first .. first+len) */
    float *old;               /* (len) sampling log-probs (GRPO) */
    float *ref;               /* (len) reference log-probs, when beta > 0 */
    double adv, reward, weight; /* advantage, reward, loss weight per token */
};

struct vr_update_group {
    int nimg, npatch;
    int (*grid)[3];
    float *pix;               /* (npatch, cols) */
    int seq0, nseq;
    int P;                    /* prompt tokens */
    int32_t *pos;             /* (3, P) the prompt's M-RoPE positions */
    int delta;                /* completion token j (>= P) sits at position j + delta */
};

#define VR_BATCH_TERMS 16

struct vr_batch {
    int ng, nseq, cap_g, cap_s;
    struct vr_update_group *g;
    struct vr_update_seq *s;
    int64_t tokens;           /* scored tokens */
    int have_ref;
    /* the reward terms of the completions ("rewards": {"format": 1, "iou": 0.7}),
     * in order of first appearance: sums and counts, for the metrics line */
    int nterm;
    char *term[VR_BATCH_TERMS];
    double term_sum[VR_BATCH_TERMS];
    int64_t term_n[VR_BATCH_TERMS];
};

/* What a step measured (DESIGN.md §3.5). */
struct vr_update_stats {
    double loss, pg_loss, kl, clip_ratio, reward, reward_std, completion_len;
    int64_t tokens;           /* scored tokens */
    int64_t seq_tokens;       /* tokens through the model */
};

struct vr_update {
    struct vr_update_opts o;
    struct vr_model m;        /* the policy's table (and its mapped checkpoint) */
    struct vr_layout L;
    float *w, *g;             /* (L.total) fp32 master weights and gradients */
    struct vr_bpe *tok;
    int32_t eos[8];
    int neos;
    int has_ref;
    struct vr_model mref;
    struct vr_layout Lref;
    float *wref;
    struct vr_ws ws;
    /* LoRA: the adapters are what trains; the base weights w stay, and serve
     * as the reference model when no --ref is given (TRL with PEFT) */
    int lora;
    struct vr_lora lo;
    float *aw, *ag;           /* (lo.total) adapter weights and gradients */
    /* a micro-batch's pack and packing scratch, reused from step to step */
    struct vr_pack pk;
    int *gbase;
    size_t cap_gbase;
};

/* Load the policy (its weights become the fp32 master weights), its
 * tokenizer, and, when o->beta > 0 and not SFT, the reference model ref_dir
 * (which must have the policy's config). */
int vr_update_init(struct vr_update *u, const char *model_dir, const char *ref_dir,
                   const struct vr_update_opts *o, struct vr_err *err);
void vr_update_release(struct vr_update *u);

/* Add one input line to the batch: a scored line (GRPO: needs "completions"
 * with "tokens", "logp", "advantage") or a task line (SFT). Its images'
 * pixels are loaded from "pixels" (run vr-encode first). Errors name
 * file:line. */
int vr_batch_add(struct vr_update *u, struct vr_batch *b, const json_t *line, const char *file, long lineno,
                 struct vr_err *err);
void vr_batch_release(struct vr_batch *b);
/* Append ,"rewards":{"format":…,"iou":…} (each reward term's mean over b's
 * completions, for the metrics line) to out; nothing when b has no terms. */
void vr_batch_terms_json(const struct vr_batch *b, struct vr_buf *out);

/* Zero u->g (and u->ag) and accumulate the gradient of the step's loss over the batch;
 * on the first call for a batch with beta > 0, the reference log-probs are
 * computed and kept in it. Fills st.
 * Data parallel (lib/dist.h, more than one rank): every rank holds the whole
 * batch (the loss weights count its tokens and sequences, as one process
 * does) and runs its share of the sequences (vr_update_share); the
 * gradients of the trainable tensors (or adapters) are then summed over the
 * ranks in rank order and st's numbers over the sequences, so every rank
 * ends with the same bits, and they equal one process's up to the float
 * rounding of that sum (the loss and st exactly). */
int vr_update_grads(struct vr_update *u, struct vr_batch *b, struct vr_update_stats *st, struct vr_err *err);

/* The share of rank (of ranks) in b: sequences [*lo, *hi), whole
 * micro-batches of the packing one process makes (sequences in order, up to
 * max_batch_tokens each), contiguous, in rank order: a micro-batch goes to
 * the rank whose 1/ranks of the batch's tokens (prompt + completion, what
 * goes through the model) holds its middle token. So every micro-batch is
 * run exactly as one process runs it: the log-probs, the loss and the
 * metrics are bit-identical to one process's, and the gradients differ only
 * in the order their micro-batch sums are added. A rank gets no work when
 * the batch has fewer micro-batches than ranks: give --max-batch-tokens at
 * most the batch's tokens / ranks. */
void vr_update_share(const struct vr_update *u, const struct vr_batch *b, int rank, int ranks, int *lo, int *hi);

/* Forward only: seq_logp[i] = the sum of the log-probabilities of sequence
 * i's targets under the policy (with its adapters), for every sequence of b
 * (the image-swap check, lib/imgswap.h). */
int vr_update_logp(struct vr_update *u, const struct vr_batch *b, double *seq_logp);

/* Per-token GRPO loss and its derivative with respect to logp (exposed for
 * the unit test): returns the loss of one token; *dlogp its derivative;
 * *clipped whether the clipped branch is taken. */
double vr_grpo_token(double logp, double old, double ref, double adv, double eps_lo, double eps_hi,
                     double beta, double *dlogp, double *kl, int *clipped);

#endif

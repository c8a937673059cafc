/* trainer.h: a training run as vr-update makes it (DESIGN.md §2.1, §4, §6):
 * lines gathered into batches, μ optimizer steps per batch (GRPO or SFT
 * gradients, clipping, the schedule, AdamW), one metrics line per step, the
 * run folder's checkpoints, --resume, the refusal of a non-finite step,
 * LoRA's adapter files and merge, and the weights published per batch for
 * vr-rollout --follow.
 *
 * The caller reads the lines and hands them over:
 *     vr_trainer_opts_init(&o); ...set o...; vr_trainer_open(&t, &o, &err);
 *     for each line:  if (vr_trainer_feed(&t, line, file, n, &err) > 0)
 *                         while (vr_trainer_step(&t, &err) > 0) {}
 *     at the end:     vr_trainer_feed(&t, NULL, ...), the steps it asks for,
 *                     then vr_trainer_close(&t, &err)
 * A batch's steps are taken as soon as its last line is fed, before the next
 * line is read: in the steady-state loop that line is only sampled after the
 * weights of this batch are published.
 *
 * Nothing here prints: warnings (a recovered save, a --resume without a
 * checkpoint, a refused step, the save made when the metrics cannot be
 * written) go to o.warn and each step's metrics line to o.metrics.
 *
 * Data parallel (lib/dist.h, several ranks): every rank opens the run and
 * is fed every line, in the same order (vr_dist_jsonl_next), and calls
 * every function here as the others do: the gradients are summed across
 * the ranks (vr_update_grads) and every rank takes the same step. Rank 0
 * alone locks and writes the run folder, the metrics, the warnings,
 * --publish and --dump; the others start from the checkpoint it chose and
 * must read the same files (checked: open fails when their weights or
 * optimizer state differ from rank 0's). The metrics line adds "ranks" and
 * "comm_seconds" (this rank's seconds in collectives during the step). */
#ifndef VR_TRAINER_H
#define VR_TRAINER_H

#include <jansson.h>
#include <regex.h>
#include <stdint.h>

#include "err.h"
#include "jsonl.h"
#include "optim.h"
#include "update.h"

struct vr_trainer_opts {
    const char *model;           /* the checkpoint to start from */
    const char *ref;             /* the KL term's reference model, or NULL */
    const char *out;             /* the run folder (made when missing) */
    struct vr_update_opts update; /* loss, budget, template, LoRA, freeze_vision */
    struct vr_adamw adamw;       /* lr: the peak rate */
    enum vr_schedule schedule;
    int warmup_steps;
    int64_t total_steps;         /* for linear and cosine schedules */
    double max_grad_norm;        /* 0: measure only */
    int iterations;              /* μ: optimizer steps per batch, >= 1 */
    int prompts_per_step;        /* lines per batch; 0: all the input is one */
    int save_every;              /* a checkpoint-STEP folder every N steps; 0: at the end only */
    int keep;                    /* the newest checkpoint-STEP folders kept */
    int resume;                  /* continue from out's newest complete checkpoint */
    int fresh_optimizer;         /* ignore the model folder's optimizer state and step */
    int merge;                   /* LoRA: the run folder gets full weights */
    int dtype_set;               /* dtype of the saved weights, else the policy's */
    enum vr_dtype dtype;
    const regex_t *freeze;       /* tensors whose names match do not train (the caller's) */
    int nfreeze;
    const char *publish;         /* the folder of the generations (needs prompts_per_step) */
    const char *dump, *grads;    /* --dump / --grads files, or NULL */
    /* warn gets one message (no program name, no newline); metrics gets each
     * step's line ("{...}\n") and returns -1 with err filled when it cannot
     * take it. NULL drops them. */
    void (*warn)(void *ctx, const char *msg);
    int (*metrics)(void *ctx, const char *line, struct vr_err *err);
    void *ctx;
};

struct vr_trainer_impl;

struct vr_trainer {
    /* for callers to read */
    int64_t step;                /* optimizer steps of the run (a resumed or continued run counts on) */
    int64_t lines;               /* input lines of its finished batches */
    int64_t taken;               /* steps taken since open */
    int refused;                 /* a step was refused: its loss or a gradient was not finite */
    int made;                    /* open made the run folder */
    struct vr_trainer_impl *impl;
};

/* VLM-R1's defaults (DESIGN.md §6) and vr-update's: GRPO, ε 0.2, β 0.04,
 * lr 1e-6, AdamW (0.9, 0.999, 1e-8, 0), clip 1.0, μ 1, keep 2, constant
 * schedule, 16384 tokens per micro-batch. Pointers NULL. */
void vr_trainer_opts_init(struct vr_trainer_opts *o);

/* The rules between options (vr-update's usage errors): model and out set,
 * --publish with prompts_per_step, a linear or cosine schedule with
 * total_steps. 0, or -1 with a VR_ERR_USAGE err. A dry run needs no out. */
int vr_trainer_opts_check(const struct vr_trainer_opts *o, int dry_run, struct vr_err *err);

/* The GPU memory plan of the run o describes (vr-update --dry-run; memplan.h
 * for the rows): the config.json of o->model, or of the vr-init preset that
 * o->model names when no such folder exists ("3b", ...); the batch from
 * o->update (max_batch_tokens, checkpoint, lora_r, freeze_vision, beta > 0
 * for a reference model) and image_patches vision patches per micro-batch. */
struct vr_memplan;
int vr_trainer_plan(const struct vr_trainer_opts *o, int64_t image_patches, struct vr_memplan *p,
                    struct vr_err *err);

/* Start the run: take o->publish, lock o->out for this process (a second
 * writer is refused), finish a save that a killed writer committed, load the
 * model (with --resume, out's newest complete checkpoint; its data cursor
 * says which input lines to skip), decide what trains, read the optimizer
 * state and step count of the starting folder (unless fresh_optimizer
 * without resume) and publish generation 0. o and the strings it points to
 * must outlive t. On failure nothing is held and a run folder it made is
 * gone; VR_ERR_USAGE when nothing would train. */
int vr_trainer_open(struct vr_trainer *t, const struct vr_trainer_opts *o, struct vr_err *err);

/* Hand over an input line (file and lineno name it in errors; the trainer
 * keeps no reference to line), or NULL at the end of the input. Returns 1
 * when a batch is complete (prompts_per_step lines, or what is left at the
 * end): call vr_trainer_step until it returns 0 before feeding more; 0 when
 * not (a line that a resumed checkpoint had used is skipped); -1 on a bad
 * line, with err "FILE:LINE: ...", the batch and the run as they were.
 * Ranks agree: when one rank cannot take the line (its message says why),
 * every rank returns -1, the others naming the rank. */
int vr_trainer_feed(struct vr_trainer *t, const json_t *line, const char *file, long lineno,
                    struct vr_err *err);

/* Take the complete batch's next optimizer step: the gradient (or o->grads'),
 * clipping, AdamW, the metrics line, a checkpoint every save_every steps;
 * after the batch's last step, the batch is dropped and its generation
 * published. A non-finite loss or gradient refuses the step (the weights
 * stay; warned, t->refused set) and the run goes on. Returns 1 after a step
 * taken or refused, 0 when the batch has none left (or there is no complete
 * batch), -1 on error. When o->metrics fails, the run folder is saved first
 * (warned: which step it holds, or why the save failed) and its err is
 * returned. */
int vr_trainer_step(struct vr_trainer *t, struct vr_err *err);

enum vr_trainer_where { VR_TRAINER_ROOT, VR_TRAINER_CHECKPOINT };

/* Save the run as it stands after its last step (before the first: as it
 * started): the run folder itself (what vr-rollout and a next vr-update
 * read), or out/checkpoint-STEP, atomically, pruned to the newest keep
 * (what --resume reads). The state files record the step, the input lines
 * of finished batches and the steps done in the current one. Collective:
 * every rank calls it, rank 0 writes, and no rank returns before it has
 * (so none can end the job in the middle of the save). */
int vr_trainer_save(struct vr_trainer *t, enum vr_trainer_where where, struct vr_err *err);

/* End the run: a checkpoint of the last step when saving every N steps
 * left it out, and the run folder when a step was taken, a LoRA run is
 * merged, or a resumed run's folder lags its checkpoint; then release t.
 * t is released on failure too. */
int vr_trainer_close(struct vr_trainer *t, struct vr_err *err);

/* Free t without saving (after a failure); the run folder is unlocked, and
 * removed when open made it and nothing was saved into it. */
void vr_trainer_release(struct vr_trainer *t);

/* vr-update's loop: feed every line of in, taking each
 * complete batch's steps as soon as its last line is read. On a bad line
 * after steps were taken, the run folder is first saved as of the last
 * finished batch (a failed save goes to o->warn). Returns 0 at the end of
 * the input, -1 with err; either way t is still open (close or release it). */
int vr_trainer_run(struct vr_trainer *t, struct vr_jsonl_files *in, struct vr_err *err);

#endif

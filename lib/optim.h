/* optim.h: AdamW, gradient-norm clipping and learning-rate schedules over the
 * flat fp32 arrays of a training run (DESIGN.md §6; vr-update).
 *
 * Weights (the fp32 master copy), gradients and the two AdamW moments are each
 * one float array in the order of the parameter table; the optimizer touches
 * only the ranges it is given, one per trainable tensor, so a frozen tensor is
 * simply a range left out (its moments stay zero and are never read).
 *
 * Numbers follow PyTorch: vr_adamw_step is torch.optim.AdamW's single-tensor
 * path (foreach=False) operation for operation, with the Python-double scalars
 * rounded to float32 where torch rounds them, and bit-exact with torch 2.x on
 * x86-64 CPUs (tests/unit/optim.c holds torch's output). vr_clip_grad_norm is
 * torch.nn.utils.clip_grad_norm_(max_norm, 2, foreach=False), vr_lr_at is
 * the LambdaLR of transformers' get_scheduler. */
#ifndef VR_OPTIM_H
#define VR_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Elements [off, off + n) of the flat arrays: one trainable tensor. id is the
 * caller's tag (the parameter's index in its table, for messages); the
 * functions here carry it untouched. Ranges must not overlap (a tied lm_head
 * that shares embed's floats is listed once). */
struct vr_range {
    size_t off, n;
    int id;
};

/* AdamW's hyper-parameters, as torch.optim.AdamW(lr, (beta1, beta2), eps,
 * weight_decay). lr is the base (peak) rate: a step's rate comes from
 * vr_lr_at and is passed to vr_adamw_step. */
struct vr_adamw {
    double lr, beta1, beta2, eps, weight_decay;
};

/* The moments, exp_avg (m) and exp_avg_sq (v): n floats each (the length of
 * the flat arrays), zero at the start, in one allocation. */
struct vr_optstate {
    size_t n;
    float *m, *v;
};

/* Allocate zeroed moments for n floats. VR_ERR_SYS when out of memory. */
int vr_optstate_init(struct vr_optstate *s, size_t n, struct vr_err *err);
void vr_optstate_release(struct vr_optstate *s);

/* One step's scalars, rounded to float32 where torch rounds them: what the
 * per-element update reads (here and in the CUDA twin, kernels/optim.cu, so
 * both backends compute the same bits). step >= 1. */
struct vr_adamw_consts {
    float decay;     /* 1 - lr*wd */
    int do_decay;    /* wd != 0 */
    float w1;        /* 1 - beta1: the lerp weight */
    int small;       /* |w1| < 0.5: which of lerp's two forms (ATen's is_lerp_weight_small) */
    float b2, w2;    /* beta2, 1 - beta2 */
    float bc2s;      /* sqrt(1 - beta2^step) */
    float eps;
    float neg_step;  /* -lr / (1 - beta1^step) */
};
void vr_adamw_consts(const struct vr_adamw *o, double lr, int64_t step, struct vr_adamw_consts *k);

/* One AdamW step of every range: w (the master weights) from g, updating
 * s->m and s->v. lr: this step's rate; step: its 1-based count (torch's
 * state["step"] after the increment: 1 on the first step), shared by all
 * ranges. Elements outside the ranges are not read or written. */
void vr_adamw_step(const struct vr_adamw *o, double lr, int64_t step, const struct vr_range *r,
                   int nr, float *w, const float *g, struct vr_optstate *s);

/* The global 2-norm of the gradients in the ranges, and, when max_norm > 0,
 * the clipping of torch.nn.utils.clip_grad_norm_: every element of the
 * ranges is multiplied by min(max_norm / (norm + 1e-6), 1) computed in
 * float32 as torch does. Returns the norm before clipping, as the float32
 * value torch would report (widened). Each tensor's norm is accumulated in
 * double (torch accumulates in float32 lanes, so the norm may differ from
 * torch's in the last bit or two of float32); inf or NaN gradients give an
 * inf or NaN norm (check vr_first_nonfinite first). max_norm <= 0: measure
 * only, as transformers' Trainer does with max_grad_norm 0. */
double vr_clip_grad_norm(const struct vr_range *r, int nr, float *g, double max_norm);

/* Index (into r) of the first range holding an inf or NaN gradient, or -1. */
int vr_first_nonfinite(const struct vr_range *r, int nr, const float *g);

/* transformers' schedules (get_scheduler(name, ..., num_warmup_steps,
 * num_training_steps)): constant; constant_with_warmup; linear (warm-up,
 * then linear decay to 0 at total, 0 after); cosine (warm-up, then a half
 * cosine to 0 at total, num_cycles 0.5; past total it rises again, as
 * transformers' does). Warm-up is linear from 0: the rate of step s < warmup
 * is base * s / warmup, so the first step's rate is 0. */
enum vr_schedule { VR_SCHED_CONSTANT, VR_SCHED_CONSTANT_WARMUP, VR_SCHED_LINEAR, VR_SCHED_COSINE };

/* "constant", "constant_with_warmup", "linear", "cosine"; -1 if unknown. */
int vr_schedule_parse(const char *name, enum vr_schedule *out);
const char *vr_schedule_name(enum vr_schedule s);
/* The rate of the optimizer step with 0-based index step (the number of steps
 * already taken): base_lr * lambda(step) in double, the value LambdaLR has
 * set when the optimizer takes that step. warmup and total in steps (total
 * is unused by constant schedules). */
double vr_lr_at(enum vr_schedule s, double base_lr, int64_t step, int64_t warmup, int64_t total);

#endif

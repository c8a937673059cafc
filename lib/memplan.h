/* memplan.h: the memory plan of a training run on one GPU (vr-update
 * --dry-run; kernels/README.md): bytes of weights, master weights,
 * gradients, AdamW moments, reference model, activations and scratch for a
 * model config and a batch, before anything is loaded. Parameter counts come
 * from the model's own parameter table (vr_model_params), so the plan and the
 * checkpoint never disagree. */
#ifndef VR_MEMPLAN_H
#define VR_MEMPLAN_H

#include <stdint.h>
#include <stdio.h>

#include "model.h"

struct vr_memplan_opts {
    int lora_r;            /* 0: full-parameter training */
    int freeze_vision;     /* the vision tower trains nothing */
    int ref;               /* a reference model for the KL term (beta > 0) */
    int checkpoint;        /* --checkpoint-activations */
    int64_t batch_tokens;  /* --max-batch-tokens: tokens through the model at once */
    int64_t image_patches; /* of those, vision patches (before the 2x2 merge) */
    int logits_rows;       /* rows of LM-head logits at once (the chunk) */
    int weight_bytes;      /* the compute copy of the weights: 2 (bf16) */
    int master_bytes;      /* fp32 master weights: 4; 0 when the compute copy is the master */
    int moment_bytes;      /* each AdamW moment: 4 (fp32) or 2 (bf16 with stochastic rounding) */
    int act_bytes;         /* saved activations: 4 (fp32) or 2 (bf16) */
};

/* GPU defaults: bf16 weights, fp32 master, moments and gradients, fp32
 * activations with checkpointing, logits in chunks of 1024 rows. */
void vr_memplan_opts_init(struct vr_memplan_opts *o);

#define VR_MEMPLAN_ROWS 10
struct vr_memplan {
    int64_t params, trainable;      /* all parameters (a tied lm_head counted once); trained ones */
    int n;
    struct {
        char what[64];
        double bytes;
    } row[VR_MEMPLAN_ROWS];
    double total;
};

void vr_memplan_make(const struct vr_model_config *c, const struct vr_memplan_opts *o, struct vr_memplan *p);
/* The plan as a table ("what  GiB") with the total and whether it fits in
 * gpu_bytes (0: say nothing about fitting). */
void vr_memplan_print(const struct vr_memplan *p, double gpu_bytes, FILE *f);

#endif

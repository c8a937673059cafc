/* train.h: the Qwen2.5-VL training pass on the CPU (vr-update): forward over
 * a packed micro-batch with what backward needs saved, and backward into a
 * flat gradient array. The weights are one flat array in the order of the
 * parameter table (vr_model_params), which load, save, the optimizer and LoRA
 * all walk (STYLE.md "Numbers").
 *
 * The model code (train_impl.h) is compiled twice: _f32 is what vr-update
 * runs; _f64 is the same code in double, which tests/unit/train.c checks
 * against central finite differences through the whole model (window
 * attention, M-RoPE, the patch merger and the LM head included). */
#ifndef VR_TRAIN_H
#define VR_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "ops.h"
#include "lora.h"
#include "model.h"

/* Where each parameter lives in the flat arrays. */
struct vr_layout {
    struct vr_model_config cfg;
    int np;                 /* parameters in the table (lm_head included when tied) */
    const struct vr_param *p; /* the table (names, shapes); not owned */
    size_t *off;            /* (np) offset in floats; a tied lm_head shares embed's */
    size_t *n;              /* (np) element count */
    unsigned char *train;   /* (np) 1: gradient wanted */
    size_t total;           /* floats in the flat array */
    /* parameter indices by role */
    int patch, (*vb)[VP_COUNT], mln, mw0, mb0, mw2, mb2, embed, (*ly)[LP_COUNT], norm, head;
};

/* Build the layout of m's table (m->params filled by vr_model_params or
 * vr_model_load); every parameter trainable. */
void vr_layout_init(struct vr_layout *L, const struct vr_model *m);
void vr_layout_release(struct vr_layout *L);
/* Copy m's weights (any stored dtype) into the flat f32 array w (L->total). */
void vr_layout_gather(const struct vr_layout *L, const struct vr_model *m, float *w);

/* A packed micro-batch: nseq sequences end to end (rows [cu[s], cu[s+1])),
 * each prompt + completion; images shared by the sequences of a group are
 * run through the vision tower once. */
struct vr_pack {
    int N, nseq;
    int *cu;                /* (nseq+1) */
    int32_t *ids;           /* (N) */
    int32_t *pos;           /* (3, N) M-RoPE positions (vr_rope_index per sequence) */
    int nimg;               /* images of the pack */
    int (*grid)[3];         /* (nimg) t, h, w in patches */
    int npatch;             /* sum of t*h*w */
    float *pixels;          /* (npatch, C*Tp*P*P) in vr-encode's order, image after image */
    int *img_row;           /* (N): the merged vision row an image-pad token takes, else -1 */
    int nout;               /* rows whose next token is scored */
    int *out_row;           /* (nout) row t: its logits predict tgt = ids[t+1] */
    int32_t *tgt;           /* (nout) */
    size_t cap[5];          /* capacities, so a pack is refilled without allocating */
};

/* What the forward keeps for backward (opaque; lives in the workspace). */
struct vr_train_act;

/* Options of a pass. */
struct vr_train_opts {
    double temperature;     /* logits / T before log_softmax (TRL); 1 for SFT */
    int checkpoint;         /* keep only block inputs; recompute blocks in backward */
    int no_vision_grad;     /* vision tower frozen: run it without saving */
    const struct vr_lora *lora; /* adapters on the decoder linears and lm_head, or NULL */
    const void *lw;         /* (lora->total) their weights, as the pass's R */
    void *lg;               /* (lora->total) their gradients (backward adds), or NULL */
    int64_t row0;           /* the pack's first row within the step: dropout masks are keyed by
                             * the row in the step, so micro-batching does not change them */
    int64_t keep_logits;    /* bytes: the forward keeps the LM head's softmax rows for the backward
                             * when they fit (the same bits as computing them again); 0: never */
};

#define VR_TRAIN_DECL(R, S)                                                                        \
    /* Forward: logp (nout) of the targets, ent (nout) their entropies (may be NULL). Returns the */ \
    /* saved activations (in ws; valid until ws is reset). */                                      \
    struct vr_train_act *vr_train_fwd_##S(const struct vr_layout *L, const R *w,                   \
                                          const struct vr_pack *p, const struct vr_train_opts *o,  \
                                          R *logp, R *ent, struct vr_ws *ws);                      \
    /* Backward from dlogp (nout): ADDS into g (L->total; only trainable parameters). */           \
    void vr_train_bwd_##S(const struct vr_layout *L, const R *w, R *g, const struct vr_pack *p,    \
                          const struct vr_train_opts *o, struct vr_train_act *act, const R *dlogp, \
                          struct vr_ws *ws);

VR_TRAIN_DECL(float, f32)
VR_TRAIN_DECL(double, f64)

/* Size a pack's arrays for N rows, nseq sequences, nout scored rows, nimg
 * images of npatch patches of cols values (growing them only when needed). */
void vr_pack_reserve(struct vr_pack *p, int N, int nseq, int nout, int nimg, int npatch, int cols);
/* Free a pack's arrays. */
void vr_pack_release(struct vr_pack *p);

#endif

/* model.h: a Qwen2.5-VL checkpoint — its config, its parameter table, and its
 * weights mapped from safetensors (DESIGN.md §5, shared/qwen25vl.md).
 *
 * The parameter table (vr_model_params) is the one list of names and shapes
 * that loading, saving (vr-init), the optimizer and LoRA all walk. Names use
 * the original checkpoint spelling ("model.layers.N…", "visual.…"); the
 * newer "model.language_model.…" / "model.visual.…" spelling loads too.
 * Weights stay in their stored dtype (bf16, f16 or f32) and in the mapping:
 * ops widen them as they go. */
#ifndef VR_MODEL_H
#define VR_MODEL_H

#include "safetensors.h"
#include "task.h"
#include "tensor.h"

#define VR_MAX_FULLATT 64

struct vr_vision_config {
    int depth, hidden, heads, intermediate, out_hidden;
    int patch, temporal_patch, merge, window, in_chans;
    int nfullatt, fullatt[VR_MAX_FULLATT];
    double rope_theta; /* 10000 */
};

struct vr_text_config {
    int hidden, layers, heads, kv_heads, head_dim, intermediate, vocab;
    int max_pos;       /* max_position_embeddings (128000 when absent) */
    double eps, rope_theta;
    int mrope[3];      /* t, h, w sections, summing to head_dim / 2 */
    int tie;           /* lm_head shares embed_tokens */
};

struct vr_model_config {
    struct vr_text_config text;
    struct vr_vision_config vision;
    int image_token_id, video_token_id, vision_start_id, vision_end_id;
    int bos_id, eos_id;
};

/* Read config.json (4.4x layout with text fields at the top level, or 5.x with
 * "text_config"). Refuses unknown architectures, impossible sizes. */
int vr_model_config_load(struct vr_model_config *c, const char *path, struct vr_err *err);
/* What a task line may hold for this model (vr_task_parse): its patch and
 * merge sizes, vocabulary, and context for the images' tokens. */
void vr_model_task_limits(const struct vr_model_config *c, struct vr_task_limits *l);

/* Parameter roles inside a block, so ops can find their weights by index. */
enum vr_vparam { VP_NORM1, VP_NORM2, VP_QKV_W, VP_QKV_B, VP_PROJ_W, VP_PROJ_B, VP_GATE_W, VP_GATE_B,
                 VP_UP_W, VP_UP_B, VP_DOWN_W, VP_DOWN_B, VP_COUNT };
enum vr_lparam { LP_IN_NORM, LP_POST_NORM, LP_Q_W, LP_Q_B, LP_K_W, LP_K_B, LP_V_W, LP_V_B, LP_O_W,
                 LP_GATE_W, LP_UP_W, LP_DOWN_W, LP_COUNT };

struct vr_model {
    struct vr_model_config cfg;
    struct vr_stset st;           /* the mapped checkpoint (weights are views into it) */
    int nparams;
    struct vr_param *params;      /* the table, in canonical order */
    /* named views into params[] */
    struct vr_tensor *patch_embed;                 /* [Dv, C*Tp*P*P] */
    struct vr_tensor *(*vblock)[VP_COUNT];         /* depth x role */
    struct vr_tensor *merger_ln, *merger_w0, *merger_b0, *merger_w2, *merger_b2;
    struct vr_tensor *embed;                       /* [V, D] */
    struct vr_tensor *(*layer)[LP_COUNT];          /* layers x role */
    struct vr_tensor *norm;                        /* [D] */
    struct vr_tensor *lm_head;                     /* [V, D]; == embed when tied */
};

struct vr_param {
    char name[96];
    int ndim;
    int64_t shape[VR_MAX_DIMS];
    struct vr_tensor t;   /* the weight (a view into the checkpoint, or owned) */
    int tied;             /* lm_head of a tied model: not stored, aliases embed */
};

/* Fill m->params with the table for m->cfg (no weights yet) and the named views. */
void vr_model_params(struct vr_model *m);
/* Load dir (config.json + model.safetensors or shards): the checkpoint's own
 * weights. Every tensor must be present with the shape the config implies;
 * the error names the tensor, the expected and the actual shape. A save of
 * dir that a crash left committed but not in place is finished first
 * (vr_fileset_settle). A LoRA adapter beside the weights is not applied:
 * vr_lora_load_merged (lora.h) loads a run folder as the policy it holds. */
int vr_model_load(struct vr_model *m, const char *dir, struct vr_err *err);
/* Free what m holds (not m itself); m is left zeroed. */
void vr_model_release(struct vr_model *m);
/* The end-of-sequence ids of checkpoint folder dir: generation_config.json's
 * eos_token_id (an int or a list, as Qwen's), else the config's. At most max;
 * returns how many. */
int vr_model_eos(const char *dir, const struct vr_model_config *c, int32_t *eos, int max);

#endif

/* init.h: new checkpoints — presets of every Qwen2.5-VL size, the config.json
 * transformers reads, and random weights initialised as transformers does
 * (normal(0, initializer_range) for linear, conv and embedding weights, 1 for
 * norms, 0 for biases) from vr's counter-based RNG. Used by vr-init. */
#ifndef VR_INIT_H
#define VR_INIT_H

#include <jansson.h>
#include <stdint.h>

#include "model.h"

/* The official Qwen2.5-VL chat template (jinja), for tokenizer_config.json. */
extern const char vr_init_chat_template[];

/* "tiny", "demo", "small", "3b", "7b". -1 if unknown. */
int vr_init_preset(const char *name, struct vr_model_config *c);
/* config.json for c: the 4.4x layout (text fields at the top level, as the
 * published Qwen2.5-VL checkpoints), which every transformers version loads. */
json_t *vr_init_config_json(const struct vr_model_config *c);
/* Number of parameters (tied lm_head counted once). */
int64_t vr_init_param_count(const struct vr_model_config *c);

struct vr_init_opts {
    enum vr_dtype dtype;      /* F32, BF16 or F16 */
    uint64_t seed;
    double init_range;        /* std of the normal init (0.02) */
    uint64_t max_shard_bytes; /* 0: one file */
};
/* Write config.json and the weights of a random model into dir (created). */
int vr_init_write_random(const struct vr_model_config *c, const char *dir,
                         const struct vr_init_opts *o, struct vr_err *err);

#endif

/* lora.h: LoRA adapters (Hu et al. 2021) as PEFT writes them, on every
 * linear layer outside the vision tower — the decoder's q, k, v, o, gate, up,
 * down projections and lm_head, which is what VLM-R1's find_all_linear_names
 * targets. An adapted linear computes y = x W^T + b + scale * (x A^T) B^T with
 * A (r, in), B (out, r), scale = alpha / r (alpha / sqrt(r) with rsLoRA).
 *
 * The adapters live in one flat fp32 array (A then B of each target, in
 * parameter-table order); lo->tab names them with PEFT's keys
 * ("base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight")
 * so that checkpoints, the optimizer and --dump walk them as they walk the
 * model's own parameters. Folders: adapter_config.json +
 * adapter_model.safetensors, loadable by peft.PeftModel.from_pretrained. */
#ifndef VR_LORA_H
#define VR_LORA_H

#include <stdint.h>

#include "model.h"

struct vr_lora_ad {
    int param;          /* the adapted weight's index in the model's table */
    int out, in;
    size_t a, b;        /* offsets of A (r, in) and B (out, r) in the flat array */
};

struct vr_lora {
    int r, rslora;
    double alpha, scale, dropout;
    uint64_t seed, step; /* dropout masks: Philox of (seed; step, target, element) */
    int n;               /* targets */
    struct vr_lora_ad *ad;
    int *of;             /* (model params) target index, or -1 */
    size_t total;        /* floats in the flat array */
    /* the adapter tensors as a parameter table (2n entries: A, B per target) */
    struct vr_param *tab;
    size_t *off;
};

/* Targets of m's table: every decoder linear and lm_head. */
void vr_lora_init(struct vr_lora *lo, const struct vr_model *m, int r, double alpha, double dropout,
                  int rslora, uint64_t seed);
void vr_lora_release(struct vr_lora *lo);
/* PEFT's initialisation: A ~ kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(in),
 * 1/sqrt(in)) from Philox(seed), B = 0. w: lo->total floats. */
void vr_lora_init_weights(const struct vr_lora *lo, float *w);

/* Does dir hold an adapter (adapter_config.json and adapter_model.safetensors)? */
int vr_lora_present(const char *dir);
/* Load dir's adapter for model m: r, lora_alpha, lora_dropout, use_rslora from
 * adapter_config.json (DoRA and bias training are refused), the tensors from
 * adapter_model.safetensors (both module spellings; tensors of other kinds,
 * such as a saved lm_head base layer, are ignored). *w gets lo->total floats
 * (malloc'ed). Errors name the file and the tensor. */
int vr_lora_load(struct vr_lora *lo, float **w, const struct vr_model *m, const char *dir, uint64_t seed,
                 struct vr_err *err);
/* Write adapter_config.json and adapter_model.safetensors into dir (each
 * atomically). base: the base_model_name_or_path to record. */
int vr_lora_write(const struct vr_lora *lo, const float *w, const char *dir, const char *base,
                  struct vr_err *err);
/* Fold the adapters into flat f32 model weights laid out by off (the
 * model's table offsets): W += scale * B A. */
void vr_lora_merge_flat(const struct vr_lora *lo, const float *aw, float *w, const size_t *off);
/* Load model folder dir as the policy it holds, as every stage but
 * vr-update's trainer serves it: vr_model_load, then dir's adapter, when it
 * has one (vr_lora_present), folded into m's weights in place (each adapted
 * tensor becomes an owned copy in its dtype; an adapted tied lm_head is
 * untied). On failure m is left empty. */
int vr_lora_load_merged(struct vr_model *m, const char *dir, struct vr_err *err);

#endif

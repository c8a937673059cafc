/* qwen.h: the Qwen2.5-VL forward pass on the CPU (DESIGN.md §5): vision tower,
 * M-RoPE position ids (transformers' get_rope_index), and the decoder with a
 * KV cache for batched prefill and one-token decode. */
#ifndef VR_QWEN_H
#define VR_QWEN_H

#include <stdint.h>

#include "ops.h"
#include "model.h"

/* Vision tower. pixels (N, C*Tp*P*P) rows in merge-block order (vr-encode's
 * pixel_values); grid (nimg, 3) as t, h, w in patches. out (N/merge^2,
 * out_hidden): merged tokens in raster order, image after image. */
int vr_vision_fwd(const struct vr_model *m, float *out, const float *pixels, int nimg,
                  const int (*grid)[3], struct vr_ws *ws, struct vr_err *err);

#define VR_MAX_HEAD_DIM 512

/* The window plan of the vision tower (transformers' get_window_index): widx
 * (merged tokens) lists merged tokens in window order; cuw[0..ncuw] window and
 * cuf[0..ncuf] full-attention (per frame) boundaries in patch units. Sizes:
 * widx N/merge^2, cuw nwin + 1, cuf frames + 1. Returns the merged count. */
int vr_vision_window_plan(const struct vr_vision_config *v, int nimg, const int (*grid)[3], int *widx,
                          int *cuw, int *ncuw, int *cuf, int *ncuf);
/* The 2-D rotary tables of every patch in merge-block order: cos0, sin0 (N, head_dim). */
void vr_vision_rope_tables(const struct vr_vision_config *v, int nimg, const int (*grid)[3], float *cos0,
                           float *sin0);
/* M-RoPE tables for M rows with positions pos (3, stride): cs, sn (M, head_dim). */
void vr_mrope_tables(float *cs, float *sn, const int32_t *pos, int M, int stride,
                     const struct vr_text_config *t);

/* Position ids of one sequence: pos (3, T) as t, h, w. Padding (valid[i] == 0;
 * valid NULL means none) gets 0 and is skipped, as transformers does with an
 * attention mask. Images are taken from grid in order; *nused gets how many
 * this sequence used. *delta = max position + 1 - number of real tokens. */
int vr_rope_index(int32_t *pos, int *delta, int *nused, const int32_t *ids,
                  const unsigned char *valid, int T, const struct vr_model_config *c, int nimg,
                  const int (*grid)[3], struct vr_err *err);

/* K and V of every layer for B sequences of up to cap tokens. */
struct vr_kvcache {
    int layers, B, cap, kvh, hd;
    float *k, *v;          /* (layers, B, kvh, cap, hd) */
    unsigned char *valid;  /* (B, cap): 0 for padding */
    int *len;              /* (B): tokens in the cache, padding included */
    int *nreal;            /* (B): real tokens in the cache */
    int *delta;            /* (B): rope delta from the prefill */
};
int vr_kvcache_init(struct vr_kvcache *kv, const struct vr_model_config *c, int B, int cap,
                    struct vr_err *err);
void vr_kvcache_release(struct vr_kvcache *kv);
/* Copy sequence sb of src (all layers, its whole length) into sequence db of
 * dst, e.g. one prefilled prompt into the G rows that sample from it. */
void vr_kvcache_copy_seq(struct vr_kvcache *dst, int db, const struct vr_kvcache *src, int sb);

/* Prefill B sequences of T tokens into an empty cache. ids, mask (B, T): mask 0
 * marks left padding. Image-pad tokens take the rows of img (in order over the
 * batch; n_img rows of hidden width). logits: (B, T, V) when all_logits, else
 * (B, V) for the last position. */
int vr_lm_prefill(const struct vr_model *m, struct vr_kvcache *kv, float *logits, int all_logits,
                  const int32_t *ids, const unsigned char *mask, int B, int T, const float *img,
                  int n_img, int nimg, const int (*grid)[3], struct vr_ws *ws, struct vr_err *err);

/* Append one token to each cache row rows[0..n) (NULL: rows 0..n-1), each at
 * its own length, and return their logits (n, V). Rows not listed are left
 * alone, so sequences can join and leave a running batch. */
int vr_lm_decode_rows(const struct vr_model *m, struct vr_kvcache *kv, float *logits, const int32_t *ids,
                      const int *rows, int n, struct vr_ws *ws, struct vr_err *err);

/* Append one token per sequence (all B rows) and return its logits (B, V). */
int vr_lm_decode(const struct vr_model *m, struct vr_kvcache *kv, float *logits, const int32_t *ids,
                 struct vr_ws *ws, struct vr_err *err);

#endif

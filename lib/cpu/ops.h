/* ops.h: the CPU reference ops (DESIGN.md §7). fp32 math; weights may be
 * stored as f32, bf16 or f16 and are widened into a workspace per call.
 * GEMMs go through OpenBLAS cblas_sgemm. The CUDA twins (kernels/) are
 * checked against these. Shapes: see the legend in tensor.h. */
#ifndef VR_CPU_OPS_H
#define VR_CPU_OPS_H

#include <stddef.h>

#include "tensor.h"

/* A bump allocator for activations: chunks are kept across resets, so after
 * the first call of a given size nothing is allocated. */
struct vr_ws {
    struct vr_ws_chunk *head;
    struct vr_ws_chunk *cur;
    /* widened weights: one reused buffer per slot (an op's weight lives only
     * for the op), so a bf16 model never holds more than one f32 copy of a
     * weight at a time */
    float *wslot[2];
    size_t wcap[2];
};
void vr_ws_reset(struct vr_ws *ws);
/* n floats, 64-byte aligned, uninitialised; valid until the next reset. */
float *vr_ws_floats(struct vr_ws *ws, size_t n);
void vr_ws_free(struct vr_ws *ws);

/* The weight as f32: the data itself when stored as F32, else widened into
 * ws's buffer for slot (0: matrices, 1: vectors), valid until that slot's next
 * use. */
const float *vr_weight_f32(const struct vr_tensor *w, int slot, struct vr_ws *ws);

/* out (M,N) = x (M,K) . w (N,K)^T + b (N); b may be NULL. */
void vr_linear_fwd_cpu(float *out, const float *x, const struct vr_tensor *w,
                       const struct vr_tensor *b, int M, struct vr_ws *ws);
/* The same for few rows (M <= VR_GEMV_MAX_M): streams w once in its stored
 * dtype, threads over N. b (N, f32) may be NULL. */
#define VR_GEMV_MAX_M 16
void vr_gemv_fwd_cpu(float *out, const float *x, const struct vr_tensor *w, const float *b, int M);

/* out (M,D) = x * rsqrt(mean(x^2) + eps) * w; out may alias x. */
void vr_rmsnorm_fwd_cpu(float *out, const float *x, const struct vr_tensor *w, int M, int D,
                        double eps, struct vr_ws *ws);
/* out (n) = silu(gate) * up; out may alias gate. */
void vr_swiglu_fwd_cpu(float *out, const float *gate, const float *up, size_t n);
/* x (n) = gelu(x), the exact erf form (nn.GELU()). */
void vr_gelu_fwd_cpu(float *x, size_t n);
/* x (n) += y. */
void vr_add_cpu(float *x, const float *y, size_t n);

/* Rotate-half RoPE in place on rows of heads: x (M, H, K) with per-row cos,
 * sin (M, K). */
void vr_rope_fwd_cpu(float *x, const float *cos, const float *sin, int M, int H, int K, int row_stride);

/* Non-causal attention inside segments (the vision tower). qkv (N, 3*H*K) as
 * the qkv projection writes it; out (N, H*K); segments cu[0..nseg]. */
void vr_attn_segments_fwd_cpu(float *out, const float *qkv, int N, int H, int K, const int *cu,
                              int nseg, struct vr_ws *ws);

/* Causal GQA attention of Tq queries against a cache of n keys (one sequence,
 * one layer). q (Tq, H, K); kc, vc (KVH, cap, K); query i sees keys j <= q0 + i
 * whose valid[j] is set (valid NULL: all). A query that sees no key gets
 * zeros (left padding). out (Tq, H*K). */
void vr_attn_causal_fwd_cpu(float *out, const float *q, int Tq, int H, int KVH, int K,
                            const float *kc, const float *vc, int cap, int n, int q0,
                            const unsigned char *valid, struct vr_ws *ws);

/* max of x (n >= 1). */
float vr_max_cpu(const float *x, int n);
/* out[i] = exp(x[i] * scale - shift); returns the sum (the samplers' softmax). */
double vr_exp_shift_cpu(float *out, const float *x, int n, float scale, float shift);

/* Numerically safe in-place softmax of a row of n floats. */
void vr_softmax_row_cpu(float *x, int n);

#endif

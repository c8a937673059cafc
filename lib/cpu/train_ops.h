/* train_ops.h: the ops of the training pass (vr-update), forward with what
 * backward needs saved, and backward. One source (train_ops_impl.h) is
 * compiled twice: _f32 is what vr-update runs, _f64 is the same code in
 * double, which the gradient check (tests/unit/train_ops.c) compares against
 * central finite differences. Shapes use the legend of tensor.h; N rows.
 *
 * Conventions:
 * - Weights are plain arrays in the parameter layout (fp32 master weights).
 * - Backward writes the input gradient (dx = ..., overwriting) and ADDS into
 *   weight gradients (dw += ...), so micro-batches accumulate. Any gradient
 *   pointer may be NULL: that gradient is not wanted (frozen or a leaf).
 * - Scratch comes from ws (no allocation after the first call of a size).
 * - Results never depend on the thread count (VR_THREADS). */
#ifndef VR_CPU_TRAIN_OPS_H
#define VR_CPU_TRAIN_OPS_H

#include <stdint.h>

#include "cpu/ops.h"

#define VR_TRAIN_OPS_DECL(R, S)                                                                    \
    /* y (N,O) = x (N,In) . w (O,In)^T + b (O); b may be NULL */                                     \
    void vr_train_linear_fwd_##S(R *y, const R *x, const R *w, const R *b, int N, int O, int In,   \
                                 struct vr_ws *ws);                                                \
    /* dx (N,In) = dy . w (dx may be NULL); dw (O,In) += dy^T . x; db (O) += sum_n dy */             \
    void vr_train_linear_bwd_##S(R *dx, R *dw, R *db, const R *dy, const R *x, const R *w, int N,  \
                                 int O, int In, struct vr_ws *ws);                                  \
    /* y (N,D) = x * rstd * w, rstd (N) = 1/sqrt(mean(x^2) + eps) saved for backward */            \
    void vr_train_rmsnorm_fwd_##S(R *y, R *rstd, const R *x, const R *w, int N, int D, double eps); \
    /* dx (N,D) = d/dx; dw (D) += sum_n dy * x * rstd; dx may alias dy */                          \
    void vr_train_rmsnorm_bwd_##S(R *dx, R *dw, const R *dy, const R *x, const R *rstd,           \
                                  const R *w, int N, int D);                                       \
    /* y (n) = silu(g) * u */                                                                      \
    void vr_train_swiglu_fwd_##S(R *y, const R *g, const R *u, size_t n);                          \
    /* dg, du (n) from dy; dg may alias dy */                                                      \
    void vr_train_swiglu_bwd_##S(R *dg, R *du, const R *dy, const R *g, const R *u, size_t n);     \
    /* y (n) = gelu(x), erf form */                                                                \
    void vr_train_gelu_fwd_##S(R *y, const R *x, size_t n);                                        \
    /* dx (n) = dy * gelu'(x); dx may alias dy */                                                  \
    void vr_train_gelu_bwd_##S(R *dx, const R *dy, const R *x, size_t n);                          \
    /* In place on x (N, H, K) with row stride `stride` (elements between rows): rotate-half RoPE  \
     * with per-row tables cos, sin (N, K). inverse != 0 applies the transpose (rotation by -angle), \
     * which is the backward of the forward. */                                                    \
    void vr_train_rope_##S(R *x, const float *cos, const float *sin, int N, int H, int K,         \
                           int stride, int inverse);                                               \
    /* Attention of packed sequences: rows [cu[s], cu[s+1]) form sequence s (nseg of them).        \
     * q (N, H, K) with row stride qs; k, v (N, KVH, K) with row stride ks (the same for both);   \
     * H % KVH == 0 (head h reads kv head h / (H/KVH)). causal: row i sees rows <= i of its         \
     * sequence, else all of them. scale 1/sqrt(K). out (N, H*K) dense; lse (N, H) saved.         */ \
    void vr_train_attn_fwd_##S(R *out, R *lse, const R *q, const R *k, const R *v, int qs, int ks, \
                               int N, int H, int KVH, int K, const int *cu, int nseg, int causal,  \
                               struct vr_ws *ws);                                                  \
    /* dq, dk, dv (same layout and strides as q, k, v; overwritten) from dout (N, H*K), the      \
     * forward's out and lse. */                                                                   \
    void vr_train_attn_bwd_##S(R *dq, R *dk, R *dv, const R *dout, const R *out, const R *lse,    \
                               const R *q, const R *k, const R *v, int qs, int ks, int N, int H,  \
                               int KVH, int K, const int *cu, int nseg, int causal,                \
                               struct vr_ws *ws);                                                  \
    /* Token log-probabilities through the LM head: logits = h (N,D) . w (V,D)^T / temp;           \
     * logp (N) = log_softmax(logits)[target]; ent (N) the entropy (may be NULL). Rows are       \
     * processed in chunks so the (N, V) logits never exist at once. */                            \
    void vr_train_logp_fwd_##S(R *logp, R *ent, const R *h, const R *w, const int32_t *target,     \
                               int N, int D, int V, double temp, struct vr_ws *ws);                \
    /* dh (N,D) = from dlogp (N); dw (V,D) += (recomputes the logits chunk by chunk).              \
     * Rows with dlogp == 0 may be skipped (their dh is zero). */                                  \
    void vr_train_logp_bwd_##S(R *dh, R *dw, const R *dlogp, const R *h, const R *w,              \
                               const int32_t *target, int N, int D, int V, double temp,            \
                               struct vr_ws *ws);

VR_TRAIN_OPS_DECL(float, f32)
VR_TRAIN_OPS_DECL(double, f64)

#endif

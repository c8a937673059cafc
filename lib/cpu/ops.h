/* ops.h: the CPU backend's ops (DESIGN.md §7), the entries of
 * vr_backend_cpu (backend.c) behind the seam of ../ops.h, where each is
 * documented. The model never calls these directly; tests do, to reach a
 * variant. fp32 math; inference weights may be stored as f32, bf16 or f16
 * and are widened per call (or in registers, by the GEMV). GEMMs go through
 * single-threaded vr_sgemm calls (gemm.c) on tiles of the output. The _infer ops
 * have vector variants (AVX-512, AVX2+FMA, NEON, C) chosen by cpu/isa.h;
 * the _fwd/_bwd ops are train_ops_impl.h compiled for float (here) and for
 * double (the _f64 twins of ../ops.h). Every one is tested against its
 * plain-loop reference (cpu/ref.h, tests/unit/ops_ref.c). */
#ifndef VR_CPU_OPS_H
#define VR_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "../ops.h"

/* ---- GEMM (gemm.c) ---- */

/* C (M,N) = (alpha op(A)) op(B) + beta C, row-major, op(X) = X or X^T as
 * ta, tb are 0 or 1. Each element is one fused multiply-add chain over
 * k = 0..K-1 from 0, then + beta C: the same bits on every CPU and vector
 * variant; single-threaded (the callers share tiles of C out). */
void vr_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);
/* The same product over the thread pool (each block of op(B) packed once
 * and shared), with bias (N) != NULL: C = alpha op(A) op(B) + bias (the
 * product rounded, then + the bias; beta unused). The same bits as vr_sgemm
 * at any thread count. Not from inside a vr_parallel_for task. */
void vr_sgemm_pool(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc, const float *bias);
/* Tiles tm x tn of a product's output (M,N) to share out over the pool
 * (the float64 twins' products, vr_sgemm_pool's few-row path): few and large (each packs its rows of A and columns of B), 2 per
 * thread. The bits do not depend on them. */
void vr_gemm_tiles(int M, int N, int *tm, int *tn);

/* ---- the generation path (ops.c, gemv.c) ---- */

void vr_linear_infer_cpu(float *out, const float *x, const struct vr_tensor *w, const struct vr_tensor *b, int M,
                         struct vr_ws *ws);
void vr_gemv_infer_cpu(float *out, const float *x, const struct vr_tensor *w, const struct vr_tensor *b, int M,
                       struct vr_ws *ws);
/* The GEMV kernel: b (N) already f32 (may be NULL). linear_infer takes it
 * for M <= VR_GEMV_MAX_M. */
#define VR_GEMV_MAX_M 16
void vr_gemv_cpu(float *out, const float *x, const struct vr_tensor *w, const float *b, int M);
/* One dot product of the GEMV's definition (no bias): k < n16 (n rounded
 * down to 16) in lane k % 16 by fma in order, lanes.h's tree, then the rest
 * by fma in order; the same bits in every variant (RMSNorm's sum of squares) */
float vr_dot_cpu(const float *a, const float *b, int n);
void vr_embed_infer_cpu(float *x, const struct vr_tensor *e, const int32_t *ids, int M);
void vr_swiglu_infer_cpu(float *y, const float *g, const float *u, size_t n);
/* SwiGLU and its gradient on one thread (the pool's callers split n): y =
 * g / (1 + exp(0 - g)) u; s = 1 / (1 + exp(0 - g)), du = dy g s, dg = dy u s
 * (1 + g (1 - s)), each left to right in float with vr_exp_def, the same
 * bits in every variant. dg or du may be NULL (not wanted) or dy. */
void vr_swiglu_span_cpu(float *y, const float *g, const float *u, size_t n);
void vr_swiglu_grad_span_cpu(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n);
void vr_attn_infer_cpu(float *out, const float *q, const float *k, const float *v, const struct vr_attn_dims *d,
                       struct vr_ws *ws);
void vr_softmax_infer_cpu(float *x, int n);
float vr_max_infer_cpu(const float *x, int n);
/* out = exp(x scale - shift) and their sum: 16 lanes per block of
 * VR_EXP_BLOCK elements, the blocks' sums added in double (so a row summed
 * in such blocks, block by block, gives the same sum as in one call) */
#define VR_EXP_BLOCK 4096
double vr_exp_infer_cpu(float *out, const float *x, int n, float scale, float shift);
/* exp of one float as every variant of the _infer ops computes it (ops.c):
 * the definition the vector variants match bit for bit */
float vr_exp_def(float x);

/* ---- the differentiable ops in float32 (train_ops.c) ---- */

void vr_linear_fwd_cpu(float *y, const float *x, const float *w, const float *b, int N, int O, int I,
                       struct vr_ws *ws);
void vr_linear_bwd_cpu(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N,
                       int O, int I, struct vr_ws *ws);
void vr_rmsnorm_fwd_cpu(float *y, float *rstd, const float *x, const float *w, int N, int D, double eps);
void vr_rmsnorm_bwd_cpu(float *dx, float *dw, const float *dy, const float *x, const float *rstd, const float *w,
                        int N, int D);
void vr_rope_fwd_cpu(float *x, const float *cos, const float *sin, int N, int H, int K, int stride);
void vr_rope_bwd_cpu(float *dx, const float *cos, const float *sin, int N, int H, int K, int stride);
void vr_swiglu_fwd_cpu(float *y, const float *g, const float *u, size_t n);
void vr_swiglu_bwd_cpu(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n);
void vr_gelu_fwd_cpu(float *y, const float *x, size_t n);
void vr_gelu_bwd_cpu(float *dx, const float *dy, const float *x, size_t n);
void vr_add_fwd_cpu(float *y, const float *x, size_t n);
void vr_embed_fwd_cpu(float *x, const float *table, const int32_t *idx, int N, int D);
void vr_embed_bwd_cpu(float *dtable, const float *dx, const int32_t *idx, int N, int D);
void vr_attn_fwd_cpu(float *out, float *lse, const float *q, const float *k, const float *v,
                     const struct vr_attn_dims *d, struct vr_ws *ws);
void vr_attn_bwd_cpu(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                     const float *q, const float *k, const float *v, const struct vr_attn_dims *d,
                     struct vr_ws *ws);
void vr_logp_fwd_cpu(float *logp, float *ent, float *prob, const float *h, const float *w, const int32_t *target,
                     int N, int D, int V, double temp, struct vr_ws *ws);
void vr_logp_bwd_cpu(float *dh, float *dw, const float *dlogp, const float *prob, const float *h, const float *w,
                     const int32_t *target, int N, int D, int V, double temp, struct vr_ws *ws);

#endif

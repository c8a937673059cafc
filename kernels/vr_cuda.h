/* vr_cuda.h: the CUDA backend's ops (the .cu files of kernels/), callable from C, on
 * device pointers (DESIGN.md §7). Each op is the GPU twin of a CPU op and
 * keeps the contract of its entry in the seam's table (lib/ops.h, struct
 * vr_backend: f32 arrays, backward writes dx and ADDS into weight gradients,
 * any gradient pointer may be NULL). kernels/backend.c fills that table from
 * these ops (VR_DEVICE=cuda). tests/unit/cuda_ops.c checks
 * every one against the float64 CPU reference.
 *
 * Numbers: fp32 math and accumulation; weights may be stored as bf16 (the
 * *_bf16 entry points). Every reduction has a fixed shape that depends on the
 * sizes alone (no atomics on floats), so results do not depend on timing:
 * two runs give the same bits.
 *
 * Errors: the ops enqueue on the current stream and return nothing; a launch
 * or CUDA error is kept and reported by vr_cuda_sync (a message into msg),
 * the one place callers check, as cudaDeviceSynchronize does. */
#ifndef VR_CUDA_H
#define VR_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "ops.h"
#include "optim.h"
#include "sample.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- runtime ---- */

/* GPUs visible to this process; 0 without a driver or a device (never fails). */
int vr_cuda_device_count(void);
/* "NVIDIA H200 (sm_90, 139 GiB)" into buf. */
void vr_cuda_device_name(char *buf, size_t n);
/* Wait for the queued work; 0, or -1 with the first error since the last
 * sync in msg (size n). */
int vr_cuda_sync(char *msg, size_t n);
/* Device memory; NULL when out of memory (the error is also kept for sync). */
void *vr_cuda_alloc(size_t bytes);
void vr_cuda_free(void *p);
void vr_cuda_to_device(void *dst, const void *src, size_t bytes);
void vr_cuda_to_host(void *dst, const void *src, size_t bytes);
void vr_cuda_zero(void *p, size_t bytes);

/* ---- linear (cuBLASLt) ---- */

/* y (N,O) = x (N,In) . w (O,In)^T + b (O); b may be NULL. fp32 in and out,
 * fp32 compute (no TF32). ws: device scratch for cuBLASLt (may be NULL). */
void vr_cuda_linear_fwd(float *y, const float *x, const float *w, const float *b, int N, int O, int In);
/* dx (N,In) = dy . w (dx may be NULL); dw (O,In) += dy^T . x; db (O) += sum_n dy. */
void vr_cuda_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                        int N, int O, int In);
/* The same forward with w and x rounded to bf16 (w stored bf16: uint16_t
 * bit patterns), fp32 accumulation and output: the inference GEMM. xb is
 * device scratch of N*In bf16 for x's rounded copy. */
void vr_cuda_linear_fwd_bf16(float *y, const float *x, const uint16_t *w, const float *b, int N, int O,
                             int In, uint16_t *xb);

/* The generation path's product, gemv_infer's twin: y (M,O) = x (M,In) .
 * w (O,In)^T + b (O) with w in its stored dtype (f32, bf16, f16), one warp
 * per output in a fixed order: an output's bits never depend on M. */
void vr_cuda_gemv(float *y, const float *x, const void *w, enum vr_dtype dt, const float *b, int M, int O, int In);
/* y (n) f32 = x (n) in dtype dt (f32, bf16, f16), exactly. */
void vr_cuda_widen(float *y, const void *x, enum vr_dtype dt, size_t n);

/* ---- elementwise, norms, rope ---- */

/* y (N,D) = x * rstd * w, rstd (N) = 1/sqrt(mean(x^2) + eps). */
void vr_cuda_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int N, int D, double eps);
/* dx (N,D) (may alias dy; may be NULL); dw (D) += sum_n dy * x * rstd (may be NULL). */
void vr_cuda_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rstd,
                         const float *w, int N, int D);
/* y = silu(g) * u; and its backward (dg may alias dy; either may be NULL). */
void vr_cuda_swiglu_fwd(float *y, const float *g, const float *u, size_t n);
void vr_cuda_swiglu_bwd(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n);
/* y = gelu(x), erf form; dx = dy * gelu'(x) (dx may alias dy). */
void vr_cuda_gelu_fwd(float *y, const float *x, size_t n);
void vr_cuda_gelu_bwd(float *dx, const float *dy, const float *x, size_t n);
/* x += y. */
void vr_cuda_add(float *x, const float *y, size_t n);
/* In place on x (N, H, K), rows `stride` floats apart: rotate-half RoPE with
 * per-row tables cos, sin (N, K); inverse != 0 applies the transpose (the
 * backward). M-RoPE is the same op: its sections are in the tables. */
void vr_cuda_rope(float *x, const float *cos, const float *sin, int N, int H, int K, int stride, int inverse);
/* Softmax of each row of x (M, N) in place. */
void vr_cuda_softmax(float *x, int M, int N);

/* ---- embedding ---- */

/* Row gather, the seam's embed_fwd: out[n] (D) = table[ids[n]] for rows with
 * ids[n] >= 0, the others untouched (token embeddings; image features into
 * their rows); table (V, D) f32 or bf16. */
void vr_cuda_embed_fwd(float *out, const float *table, const int32_t *ids, int N, int D);
void vr_cuda_embed_fwd_bf16(float *out, const uint16_t *table, const int32_t *ids, int N, int D);
/* dtable[ids[n]] += dout[n] for ids[n] >= 0, each row of dtable summed in
 * increasing n (deterministic: no atomics). */
void vr_cuda_embed_bwd(float *dtable, const float *dout, const int32_t *ids, int N, int D);

/* ---- attention ---- */

/* The dimensions are the seam's (lib/ops.h, struct vr_attn_dims) with its
 * arrays in DEVICE memory: cu (nseg + 1 ints) for packed rows, valid (cap
 * bytes, or NULL) for a KV cache. K <= 256.
 * Packed rows (cu != NULL): out (N, H*K) dense, lse (N, H) saved (may be
 * NULL at inference). A KV cache (cu == NULL, causal): k, v are
 * (KVH, cap, K); query i sees keys j <= q0 + i, j < nkeys, with valid[j] set;
 * a query that sees no key gets zeros (and lse -inf). */
void vr_cuda_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                      const struct vr_attn_dims *d);
/* Packed rows only: dq, dk, dv (layouts and strides of q, k, v; overwritten)
 * from dout (N, H*K) and the forward's out and lse. scratch: N*H floats of
 * device memory. */
void vr_cuda_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                      const float *q, const float *k, const float *v, const struct vr_attn_dims *d,
                      float *scratch);

/* ---- log-probabilities through the LM head ---- */

/* logits = h (N,D) . w (V,D)^T / temp, in row chunks so at most `chunk` x V
 * floats of logits exist (scratch: chunk*V floats of device memory);
 * logp (N) = log_softmax(logits)[target], ent (N) the entropy (may be NULL). */
void vr_cuda_logp_fwd(float *logp, float *ent, const float *h, const float *w, const int32_t *target, int N,
                      int D, int V, double temp, float *scratch, int chunk);
/* dh (N,D) from dlogp (N); dw (V,D) += (may be NULL); the logits are
 * recomputed chunk by chunk in scratch (chunk*V floats). */
void vr_cuda_logp_bwd(float *dh, float *dw, const float *dlogp, const float *h, const float *w,
                      const int32_t *target, int N, int D, int V, double temp, float *scratch, int chunk);

/* ---- sampling ---- */

/* u (B) = vr_sample_uniform(seed, task_hash[b], completion[b], position[b])
 * (lib/sample.h): the same Philox4x32-10 block, bit for bit. */
void vr_cuda_sample_uniform(float *u, int B, uint64_t seed, const uint64_t *task_hash, const uint32_t *completion,
                            const uint32_t *position);
/* Bytes of device scratch vr_cuda_sample needs for B rows of V. */
size_t vr_cuda_sample_scratch(int B, int V);
/* The next token of each row of logits (B, V), as vr_sample: tok (B) and the
 * sampling policy's logp (B). Row b's seen ids (for the repetition penalty)
 * are seen[seen_off[b] .. seen_off[b + 1]) (device arrays; NULL without a
 * penalty); u (B) from vr_cuda_sample_uniform. The same token as the CPU up
 * to ties within a few ulp (see sample.cu). */
void vr_cuda_sample(int32_t *tok, float *logp, const float *logits, int B, int V, const struct vr_sampling *s,
                    const int32_t *seen, const int *seen_off, const float *u, void *scratch);

/* ---- optimizer ---- */

/* One AdamW step over n floats: torch.optim.AdamW's single-tensor path with
 * the per-element operations of lib/optim.c in the same order, each rounded
 * as there (no contraction into FMAs beyond the two fmaf of the CPU code), on
 * the scalars vr_adamw_consts rounded on the host: the same bits as
 * vr_adamw_step. */
void vr_cuda_adamw(float *w, const float *g, float *m, float *v, size_t n, const struct vr_adamw_consts *k);

/* ---- the seam's table (kernels/backend.c) ---- */

/* The staging table for VR_DEVICE=cuda (ops.h: struct vr_cuda_host), or NULL
 * with the reason in msg. */
const struct vr_backend *vr_cuda_backend_open(const struct vr_cuda_host *h, char *msg, size_t n);

#ifdef __cplusplus
}
#endif

#endif

/* ops.h: the op seam (DESIGN.md §7). Every op the model calls — qwen.c's
 * inference forward, the training pass of train_impl.h, LoRA and sampling —
 * is declared here, and each call goes through one table of function
 * pointers, struct vr_backend, chosen once per process (ggml's backend
 * interface, in small). The CPU backend (lib/cpu/backend.c) fills it from
 * lib/cpu/; a CUDA backend (kernels/, issue 15) fills the same struct.
 * Every entry has a plain-loop reference in lib/cpu/ref.c, the oracle that
 * tests/unit/ops_ref.c holds every variant to (each VR_ISA, every backend).
 *
 * Names: vr_<op>_fwd / vr_<op>_bwd are the differentiable ops on float32
 * arrays (the training pass; weights are the fp32 master copy), the forward
 * saving what the backward needs. The generation path uses the same ops where
 * their arithmetic is the same (rmsnorm, rope, gelu, add) and a _infer op
 * where it is not: vr_<op>_infer reads weights in their stored dtype
 * (bf16/f16/f32 tensors), saves nothing, may use the vector exp of the ISA
 * variant, and reads the KV cache. _infer and _fwd of one op are separate
 * entries only because rollouts and checkpoints must stay byte-identical to
 * what each computed before the seam; a backend may point both at one kernel.
 *
 * Conventions:
 * - Shapes use the legend of tensor.h; N rows. Each op states its shapes.
 * - Backward writes input gradients (dx = ..., overwriting) and ADDS into
 *   weight gradients (dw += ...), so micro-batches accumulate. A gradient
 *   pointer may be NULL: that gradient is not wanted.
 * - Scratch comes from ws (no allocation after the first call of a size).
 * - Results never depend on the thread count (VR_THREADS) or on the BLAS
 *   kernel OpenBLAS picks: fixed work decomposition, fixed reduction order.
 * - Pointers are the backend's memory (host memory for the CPU backend). */
#ifndef VR_OPS_H
#define VR_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

/* ---- workspace ---- */

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
void vr_ws_release(struct vr_ws *ws);

/* The weight as f32: the data itself when stored as F32, else widened into
 * ws's buffer for slot (0: matrices, 1: vectors), valid until that slot's next
 * use. */
const float *vr_weight_f32(const struct vr_tensor *w, int slot, struct vr_ws *ws);

/* ---- attention dimensions ---- */

/* The shape of one attention call. q has N rows of H heads of K values,
 * q_stride elements apart; k, v have KVH heads (H % KVH == 0: query head h
 * reads kv head h / (H / KVH)). Scale 1/sqrt(K).
 * - Packed rows (cu != NULL): rows [cu[s], cu[s+1]) form sequence or vision
 *   segment s (nseg of them); k, v rows are kv_stride apart, row-aligned with
 *   q. causal: row i sees rows <= i of its segment, else all of them.
 * - A KV cache (cu == NULL, vr_attn_infer only, causal): k, v are
 *   (KVH, cap, K); query i sees keys j <= q0 + i, j < nkeys, whose valid[j]
 *   is set (valid NULL: all); a query that sees no key gets zeros. */
struct vr_attn_dims {
    int N, H, KVH, K;
    int q_stride, kv_stride;
    int causal;
    const int *cu;
    int nseg;
    int cap, nkeys, q0;
    const unsigned char *valid;
};

/* ---- the table ---- */

struct vr_backend {
    const char *name;
    /* 1 when logp_fwd fills prob at little cost and logp_bwd reads it
     * instead of computing the logits again (the CPU table): vr-update keeps
     * the LM head's probabilities (--keep-logits) only then. The CUDA table
     * runs logp_fwd with prob on the CPU, so it says 0. */
    int keeps_prob;

    /* y (N,O) = x (N,I) . w (O,I)^T + b (O); b may be NULL */
    void (*linear_fwd)(float *y, const float *x, const float *w, const float *b, int N, int O, int I,
                       struct vr_ws *ws);
    /* dx (N,I) = dy . w (dx may be NULL); dw (O,I) += dy^T . x; db (O) += sum_n dy */
    void (*linear_bwd)(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                       int N, int O, int I, struct vr_ws *ws);
    /* y (N,D) = x * rstd * w, rstd (N) = 1/sqrt(mean(x^2) + eps) (rstd may be
     * NULL: not kept); y may alias x */
    void (*rmsnorm_fwd)(float *y, float *rstd, const float *x, const float *w, int N, int D, double eps);
    /* dx (N,D); dw (D) += sum_n dy * x * rstd; dx may alias dy */
    void (*rmsnorm_bwd)(float *dx, float *dw, const float *dy, const float *x, const float *rstd,
                        const float *w, int N, int D);
    /* In place on x (N, H, K), rows stride apart: rotate-half RoPE with per-row
     * tables cos, sin (N, K) (M-RoPE: the tables carry the sections). The
     * backward is the transpose (rotation by -angle). */
    void (*rope_fwd)(float *x, const float *cos, const float *sin, int N, int H, int K, int stride);
    void (*rope_bwd)(float *dx, const float *cos, const float *sin, int N, int H, int K, int stride);
    /* y (n) = silu(g) * u; y may alias g. Backward: dg, du (n) from dy; dg may alias dy */
    void (*swiglu_fwd)(float *y, const float *g, const float *u, size_t n);
    void (*swiglu_bwd)(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n);
    /* y (n) = gelu(x), the exact erf form (nn.GELU()); y may alias x. dx may alias dy */
    void (*gelu_fwd)(float *y, const float *x, size_t n);
    void (*gelu_bwd)(float *dx, const float *dy, const float *x, size_t n);
    /* y (n) += x */
    void (*add_fwd)(float *y, const float *x, size_t n);
    /* Row gather: x[i] (D) = table[idx[i]] for rows with idx[i] >= 0 (the
     * others untouched): token embeddings (table = embed, idx = ids) and image
     * features into their rows (table = merged vision rows). Backward, the
     * scatter-add: dtable[idx[i]] += dx[i], rows in increasing i. */
    void (*embed_fwd)(float *x, const float *table, const int32_t *idx, int N, int D);
    void (*embed_bwd)(float *dtable, const float *dx, const int32_t *idx, int N, int D);
    /* Attention of packed rows (d->cu set). out (N, H*K) dense; lse (N, H) saved. */
    void (*attn_fwd)(float *out, float *lse, const float *q, const float *k, const float *v,
                     const struct vr_attn_dims *d, struct vr_ws *ws);
    /* dq, dk, dv (layouts and strides of q, k, v; overwritten; any may be
     * NULL) from dout (N, H*K), the forward's out and lse */
    void (*attn_bwd)(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                     const float *q, const float *k, const float *v, const struct vr_attn_dims *d,
                     struct vr_ws *ws);
    /* Token log-probabilities through the LM head: logits = h (N,D) . w (V,D)^T / temp;
     * logp (N) = log_softmax(logits)[target]; ent (N) the entropy (may be NULL).
     * Chunked over rows, so the (N, V) logits never exist at once, unless
     * prob (N,V) is given (else NULL): then it receives softmax(logits), for
     * the backward to use instead of computing them again. */
    void (*logp_fwd)(float *logp, float *ent, float *prob, const float *h, const float *w, const int32_t *target,
                     int N, int D, int V, double temp, struct vr_ws *ws);
    /* dh (N,D) from dlogp (N); dw (V,D) +=; rows with dlogp == 0 get dh = 0.
     * prob: the forward's (the same bits as computing them again), or NULL. */
    void (*logp_bwd)(float *dh, float *dw, const float *dlogp, const float *prob, const float *h, const float *w,
                     const int32_t *target, int N, int D, int V, double temp, struct vr_ws *ws);

    /* The generation path. out (M,N) = x (M,K) . w (N,K)^T + b (N), w and b
     * tensors in their stored dtype (b may be NULL); few rows go to gemv_infer */
    void (*linear_infer)(float *out, const float *x, const struct vr_tensor *w, const struct vr_tensor *b,
                         int M, struct vr_ws *ws);
    /* The same for any M, reading w once in its stored dtype; each row is
     * summed in one fixed order, so a row's numbers never depend on M (decode) */
    void (*gemv_infer)(float *out, const float *x, const struct vr_tensor *w, const struct vr_tensor *b, int M,
                       struct vr_ws *ws);
    /* x (M, D) = rows ids of the stored embedding e (V, D), widened; ids in range */
    void (*embed_infer)(float *x, const struct vr_tensor *e, const int32_t *ids, int M);
    /* y (n) = silu(g) * u with the ISA variant's exp; y may alias g */
    void (*swiglu_infer)(float *y, const float *g, const float *u, size_t n);
    /* out (N, H*K) from packed segments (non-causal, vision) or a KV cache (causal) */
    void (*attn_infer)(float *out, const float *q, const float *k, const float *v, const struct vr_attn_dims *d,
                       struct vr_ws *ws);
    /* Sampling. In place softmax of a row x (n) (all -inf: zeros); the max of
     * x (n >= 1); out (n) = exp(x * scale - shift), returning the sum */
    void (*softmax_infer)(float *x, int n);
    float (*max_infer)(const float *x, int n);
    double (*exp_infer)(float *out, const float *x, int n, float scale, float shift);
};

/* The backend of this process, chosen on first use by VR_DEVICE (lib/backend.c):
 *   cpu   lib/cpu/backend.c, the default without a GPU;
 *   cuda  kernels/backend.c, loaded from libvr_cuda.so (beside the program,
 *         in ../lib/vr/, or VR_CUDA_LIB), the default when /dev/nvidiactl
 *         exists and the library finds a GPU.
 * Asking for cuda where it cannot run, or for another name, ends the process
 * with a message (exit 1, or 2 for an unknown name): a user who asked for
 * the GPU must not get the CPU's speed silently. */
const struct vr_backend *vr_backend(void);
extern const struct vr_backend vr_backend_cpu;

/* The table b with each op timed and its matrix products' FLOPs counted,
 * written as JSONL to file ("-": stderr) at exit (lib/profile.c); the
 * backend chosen is wrapped so when VR_PROFILE names a file. Call once. */
const struct vr_backend *vr_profile_wrap(const struct vr_backend *b, const char *file);
/* The report now instead of at exit (once: later calls and exit write nothing) */
void vr_profile_write(void);

/* What the CUDA backend's library takes from the program that loads it: the
 * CPU table (the ops it leaves on the CPU) and the widening of small
 * weights. Its entry point, found with dlsym:
 *   const struct vr_backend *vr_cuda_backend_open(const struct vr_cuda_host *,
 *                                                 char *msg, size_t n);
 * the table, or NULL with the reason in msg. */
struct vr_cuda_host {
    const struct vr_backend *cpu;
    const float *(*weight_f32)(const struct vr_tensor *w, int slot, struct vr_ws *ws);
};

/* ---- the ops: one call each through the table ---- */

#define VR_OP(name, ...) (vr_backend()->name(__VA_ARGS__))

static inline void vr_linear_fwd(float *y, const float *x, const float *w, const float *b, int N, int O, int I,
                                 struct vr_ws *ws)
{
    VR_OP(linear_fwd, y, x, w, b, N, O, I, ws);
}
static inline void vr_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                 int N, int O, int I, struct vr_ws *ws)
{
    VR_OP(linear_bwd, dx, dw, db, dy, x, w, N, O, I, ws);
}
static inline void vr_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int N, int D, double eps)
{
    VR_OP(rmsnorm_fwd, y, rstd, x, w, N, D, eps);
}
static inline void vr_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rstd,
                                  const float *w, int N, int D)
{
    VR_OP(rmsnorm_bwd, dx, dw, dy, x, rstd, w, N, D);
}
static inline void vr_rope_fwd(float *x, const float *cos, const float *sin, int N, int H, int K, int stride)
{
    VR_OP(rope_fwd, x, cos, sin, N, H, K, stride);
}
static inline void vr_rope_bwd(float *dx, const float *cos, const float *sin, int N, int H, int K, int stride)
{
    VR_OP(rope_bwd, dx, cos, sin, N, H, K, stride);
}
static inline void vr_swiglu_fwd(float *y, const float *g, const float *u, size_t n) { VR_OP(swiglu_fwd, y, g, u, n); }
static inline void vr_swiglu_bwd(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n)
{
    VR_OP(swiglu_bwd, dg, du, dy, g, u, n);
}
static inline void vr_gelu_fwd(float *y, const float *x, size_t n) { VR_OP(gelu_fwd, y, x, n); }
static inline void vr_gelu_bwd(float *dx, const float *dy, const float *x, size_t n) { VR_OP(gelu_bwd, dx, dy, x, n); }
static inline void vr_add_fwd(float *y, const float *x, size_t n) { VR_OP(add_fwd, y, x, n); }
static inline void vr_embed_fwd(float *x, const float *table, const int32_t *idx, int N, int D)
{
    VR_OP(embed_fwd, x, table, idx, N, D);
}
static inline void vr_embed_bwd(float *dtable, const float *dx, const int32_t *idx, int N, int D)
{
    VR_OP(embed_bwd, dtable, dx, idx, N, D);
}
static inline void vr_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                               const struct vr_attn_dims *d, struct vr_ws *ws)
{
    VR_OP(attn_fwd, out, lse, q, k, v, d, ws);
}
static inline void vr_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *out,
                               const float *lse, const float *q, const float *k, const float *v,
                               const struct vr_attn_dims *d, struct vr_ws *ws)
{
    VR_OP(attn_bwd, dq, dk, dv, dout, out, lse, q, k, v, d, ws);
}
static inline void vr_logp_fwd(float *logp, float *ent, float *prob, const float *h, const float *w,
                               const int32_t *target, int N, int D, int V, double temp, struct vr_ws *ws)
{
    VR_OP(logp_fwd, logp, ent, prob, h, w, target, N, D, V, temp, ws);
}
static inline void vr_logp_bwd(float *dh, float *dw, const float *dlogp, const float *prob, const float *h,
                               const float *w, const int32_t *target, int N, int D, int V, double temp,
                               struct vr_ws *ws)
{
    VR_OP(logp_bwd, dh, dw, dlogp, prob, h, w, target, N, D, V, temp, ws);
}
static inline void vr_linear_infer(float *out, const float *x, const struct vr_tensor *w,
                                   const struct vr_tensor *b, int M, struct vr_ws *ws)
{
    VR_OP(linear_infer, out, x, w, b, M, ws);
}
static inline void vr_gemv_infer(float *out, const float *x, const struct vr_tensor *w, const struct vr_tensor *b,
                                 int M, struct vr_ws *ws)
{
    VR_OP(gemv_infer, out, x, w, b, M, ws);
}
static inline void vr_embed_infer(float *x, const struct vr_tensor *e, const int32_t *ids, int M)
{
    VR_OP(embed_infer, x, e, ids, M);
}
static inline void vr_swiglu_infer(float *y, const float *g, const float *u, size_t n) { VR_OP(swiglu_infer, y, g, u, n); }
static inline void vr_attn_infer(float *out, const float *q, const float *k, const float *v,
                                 const struct vr_attn_dims *d, struct vr_ws *ws)
{
    VR_OP(attn_infer, out, q, k, v, d, ws);
}
static inline void vr_softmax_infer(float *x, int n) { VR_OP(softmax_infer, x, n); }
static inline float vr_max_infer(const float *x, int n) { return VR_OP(max_infer, x, n); }
static inline double vr_exp_infer(float *out, const float *x, int n, float scale, float shift)
{
    return VR_OP(exp_infer, out, x, n, scale, shift);
}

/* ---- the float64 twins of the differentiable ops ----
 * The same code as the CPU backend's _fwd/_bwd compiled for double (not in
 * the table: CPU only), which the gradient checks (tests/unit/train_ops.c,
 * tests/unit/train.c) run against central finite differences. Arguments as
 * the table's. */
void vr_linear_fwd_f64(double *y, const double *x, const double *w, const double *b, int N, int O, int I,
                       struct vr_ws *ws);
void vr_linear_bwd_f64(double *dx, double *dw, double *db, const double *dy, const double *x, const double *w,
                       int N, int O, int I, struct vr_ws *ws);
void vr_rmsnorm_fwd_f64(double *y, double *rstd, const double *x, const double *w, int N, int D, double eps);
void vr_rmsnorm_bwd_f64(double *dx, double *dw, const double *dy, const double *x, const double *rstd,
                        const double *w, int N, int D);
void vr_rope_fwd_f64(double *x, const float *cos, const float *sin, int N, int H, int K, int stride);
void vr_rope_bwd_f64(double *dx, const float *cos, const float *sin, int N, int H, int K, int stride);
void vr_swiglu_fwd_f64(double *y, const double *g, const double *u, size_t n);
void vr_swiglu_bwd_f64(double *dg, double *du, const double *dy, const double *g, const double *u, size_t n);
void vr_gelu_fwd_f64(double *y, const double *x, size_t n);
void vr_gelu_bwd_f64(double *dx, const double *dy, const double *x, size_t n);
void vr_add_fwd_f64(double *y, const double *x, size_t n);
void vr_embed_fwd_f64(double *x, const double *table, const int32_t *idx, int N, int D);
void vr_embed_bwd_f64(double *dtable, const double *dx, const int32_t *idx, int N, int D);
void vr_attn_fwd_f64(double *out, double *lse, const double *q, const double *k, const double *v,
                     const struct vr_attn_dims *d, struct vr_ws *ws);
void vr_attn_bwd_f64(double *dq, double *dk, double *dv, const double *dout, const double *out,
                     const double *lse, const double *q, const double *k, const double *v,
                     const struct vr_attn_dims *d, struct vr_ws *ws);
void vr_logp_fwd_f64(double *logp, double *ent, double *prob, const double *h, const double *w,
                     const int32_t *target, int N, int D, int V, double temp, struct vr_ws *ws);
void vr_logp_bwd_f64(double *dh, double *dw, const double *dlogp, const double *prob, const double *h,
                     const double *w, const int32_t *target, int N, int D, int V, double temp, struct vr_ws *ws);

#endif

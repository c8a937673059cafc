/* ref.h: the plain-loop reference of every op of the seam (../ops.h), the
 * oracle that tests/unit/ops_ref.c holds each variant to: every VR_ISA
 * variant of the CPU backend, its float32 differentiable ops, and (later)
 * the CUDA backend. llm.c-style: one loop nest per op, written from the
 * formula (derivations in ref.c), in double on double arrays — a float32
 * input widens exactly, so the reference sees the same inputs as the op and
 * its own rounding (about 1e-16 relative) is far below any float32 bound.
 * Never used by the model; slow on purpose (no blocking, no threads).
 *
 * Arguments as the op's in ops.h, with two differences: backward refs
 * OVERWRITE every gradient they are given (the ops add into weight
 * gradients; a test adds the initial values itself), except embed_bwd_ref, and _infer ops have no
 * refs of their own: linear_infer and gemv_infer are linear_fwd_ref on the
 * widened weights, embed_infer is embed_fwd_ref on the widened table,
 * swiglu_infer is swiglu_fwd_ref, attn_infer is
 * attn_fwd_ref (which also reads a KV cache). */
#ifndef VR_CPU_REF_H
#define VR_CPU_REF_H

#include <stddef.h>
#include <stdint.h>

#include "../ops.h"

void vr_linear_fwd_ref(double *y, const double *x, const double *w, const double *b, int N, int O, int I);
void vr_linear_bwd_ref(double *dx, double *dw, double *db, const double *dy, const double *x, const double *w,
                       int N, int O, int I);
void vr_rmsnorm_fwd_ref(double *y, double *rstd, const double *x, const double *w, int N, int D, double eps);
/* recomputes rstd from x and eps rather than trusting the forward's */
void vr_rmsnorm_bwd_ref(double *dx, double *dw, const double *dy, const double *x, const double *w, int N, int D,
                        double eps);
void vr_rope_fwd_ref(double *x, const float *cos, const float *sin, int N, int H, int K, int stride);
void vr_rope_bwd_ref(double *dx, const float *cos, const float *sin, int N, int H, int K, int stride);
void vr_swiglu_fwd_ref(double *y, const double *g, const double *u, size_t n);
void vr_swiglu_bwd_ref(double *dg, double *du, const double *dy, const double *g, const double *u, size_t n);
void vr_gelu_fwd_ref(double *y, const double *x, size_t n);
void vr_gelu_bwd_ref(double *dx, const double *dy, const double *x, size_t n);
void vr_add_fwd_ref(double *y, const double *x, size_t n);
/* gather rows idx >= 0; the backward ADDS (dtable keeps what it had), as the op */
void vr_embed_fwd_ref(double *x, const double *table, const int32_t *idx, int N, int D);
void vr_embed_bwd_ref(double *dtable, const double *dx, const int32_t *idx, int N, int D);
/* packed rows (d->cu) or a KV cache; lse may be NULL; a query that sees no
 * key gets zeros and lse -inf */
void vr_attn_fwd_ref(double *out, double *lse, const double *q, const double *k, const double *v,
                     const struct vr_attn_dims *d);
/* packed rows only; recomputes the probabilities from q and k */
void vr_attn_bwd_ref(double *dq, double *dk, double *dv, const double *dout, const double *q, const double *k,
                     const double *v, const struct vr_attn_dims *d);
/* prob (N,V) the softmax rows, or NULL */
void vr_logp_fwd_ref(double *logp, double *ent, double *prob, const double *h, const double *w,
                     const int32_t *target, int N, int D, int V, double temp);
void vr_logp_bwd_ref(double *dh, double *dw, const double *dlogp, const double *h, const double *w,
                     const int32_t *target, int N, int D, int V, double temp);
/* sampling: softmax of a row (all -inf: zeros); max; out = exp(x scale - shift), returns the sum */
void vr_softmax_ref(double *y, const double *x, int n);
double vr_max_ref(const double *x, int n);
double vr_exp_ref(double *out, const double *x, int n, double scale, double shift);

#endif

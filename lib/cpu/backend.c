/* backend.c: the CPU backend's table (../ops.h): the generation path's
 * vector ops of ops.c and gemv.c, and the differentiable ops of
 * train_ops.c. kernels/backend.c fills the same struct for the GPU; lib/backend.c
 * chooses. */
#include "cpu/ops.h"

const struct vr_backend vr_backend_cpu = {
    .name = "cpu",
    .keeps_prob = 1,
    .linear_fwd = vr_linear_fwd_cpu,
    .linear_bwd = vr_linear_bwd_cpu,
    .rmsnorm_fwd = vr_rmsnorm_fwd_cpu,
    .rmsnorm_bwd = vr_rmsnorm_bwd_cpu,
    .rope_fwd = vr_rope_fwd_cpu,
    .rope_bwd = vr_rope_bwd_cpu,
    .swiglu_fwd = vr_swiglu_fwd_cpu,
    .swiglu_bwd = vr_swiglu_bwd_cpu,
    .gelu_fwd = vr_gelu_fwd_cpu,
    .gelu_bwd = vr_gelu_bwd_cpu,
    .add_fwd = vr_add_fwd_cpu,
    .embed_fwd = vr_embed_fwd_cpu,
    .embed_bwd = vr_embed_bwd_cpu,
    .attn_fwd = vr_attn_fwd_cpu,
    .attn_bwd = vr_attn_bwd_cpu,
    .logp_fwd = vr_logp_fwd_cpu,
    .logp_bwd = vr_logp_bwd_cpu,
    .linear_infer = vr_linear_infer_cpu,
    .gemv_infer = vr_gemv_infer_cpu,
    .embed_infer = vr_embed_infer_cpu,
    .swiglu_infer = vr_swiglu_infer_cpu,
    .attn_infer = vr_attn_infer_cpu,
    .softmax_infer = vr_softmax_infer_cpu,
    .max_infer = vr_max_infer_cpu,
    .exp_infer = vr_exp_infer_cpu,
};

/* logp.cu: token log-probabilities through the LM head (vr_cuda.h), in row
 * chunks so that at most chunk x V logits exist: the logits of a chunk come
 * from one GEMM (linear.cu), then one block a row takes max, the sums (in
 * double, as the CPU) and the target's log-prob and entropy; the backward
 * recomputes the chunk and turns it into dlogits = dlogp/T (onehot - p) in
 * place before the two GEMMs of dh and dw. */
#include "common.cuh"

#define ROW_THREADS 256

/* One row: l = L / temp in place; returns max and (through *sum) sum exp(l - m) */
__device__ float row_scale_max(float *l, int V, float temp, float *shf)
{
    float m = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float x = l[v] / temp;
        l[v] = x;
        m = fmaxf(m, x);
    }
    return vr_block_max(m, shf);
}

__global__ void k_logp_rows(float *logp, float *ent, float *L, const int32_t *target, int r0, int V, float temp)
{
    __shared__ float shf[32];
    __shared__ double shd[32];
    float *l = L + (size_t)blockIdx.x * V;
    float m = row_scale_max(l, V, temp, shf);
    double sum = 0, sdl = 0; /* sum e, sum e (m - l) */
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float e = expf(l[v] - m);
        sum += e;
        sdl += (double)e * (double)(m - l[v]);
    }
    sum = vr_block_sum(sum, shd);
    sdl = vr_block_sum(sdl, shd);
    if (threadIdx.x == 0) {
        int n = r0 + blockIdx.x, t = target[n];
        logp[n] = (l[t] - m) - (float)log(sum);
        if (ent) ent[n] = (float)(log(sum) + sdl / sum);
    }
}

extern "C" void vr_cuda_logp_fwd(float *logp, float *ent, const float *h, const float *w, const int32_t *target,
                                 int N, int D, int V, double temp, float *scratch, int chunk)
{
    for (int r0 = 0; r0 < N; r0 += chunk) {
        int rows = N - r0 < chunk ? N - r0 : chunk;
        vr_cuda_linear_fwd(scratch, h + (size_t)r0 * D, w, NULL, rows, V, D);
        k_logp_rows<<<rows, ROW_THREADS>>>(logp, ent, scratch, target, r0, V, (float)temp);
        VR_CU_LAUNCHED("logp_fwd");
    }
}

/* L row -> dlogits = g (onehot(t) - p), g = dlogp / temp */
__global__ void k_logp_drows(float *L, const float *dlogp, const int32_t *target, int r0, int V, float temp)
{
    __shared__ float shf[32];
    __shared__ double shd[32];
    float *l = L + (size_t)blockIdx.x * V;
    float m = row_scale_max(l, V, temp, shf);
    double sum = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) sum += (l[v] = expf(l[v] - m));
    sum = vr_block_sum(sum, shd);
    int n = r0 + blockIdx.x;
    float g = dlogp[n] / temp, inv = (float)(1 / sum);
    for (int v = threadIdx.x; v < V; v += blockDim.x) l[v] = -g * (l[v] * inv);
    __syncthreads();
    if (threadIdx.x == 0) l[target[n]] += g;
}

extern "C" void vr_cuda_logp_bwd(float *dh, float *dw, const float *dlogp, const float *h, const float *w,
                                 const int32_t *target, int N, int D, int V, double temp, float *scratch, int chunk)
{
    if (!dh && !dw) return;
    for (int r0 = 0; r0 < N; r0 += chunk) {
        int rows = N - r0 < chunk ? N - r0 : chunk;
        const float *hc = h + (size_t)r0 * D;
        vr_cuda_linear_fwd(scratch, hc, w, NULL, rows, V, D);
        k_logp_drows<<<rows, ROW_THREADS>>>(scratch, dlogp, target, r0, V, (float)temp);
        VR_CU_LAUNCHED("logp_bwd");
        /* dh (rows, D) = dL . w; dw (V, D) += dL^T . h: the linear layer's backward with O = V, In = D */
        vr_cuda_linear_bwd(dh ? dh + (size_t)r0 * D : NULL, dw, NULL, scratch, hc, w, rows, V, D);
    }
}

/* norm.cu: RMSNorm forward and backward, row softmax (vr_cuda.h). One block
 * of 256 threads a row; a row's sums take a fixed tree (vr_block_sum). */
#include "common.cuh"

#define ROW_THREADS 256

__global__ void k_rms_fwd(float *y, float *rstd, const float *x, const float *w, int D, float eps)
{
    __shared__ float sh[32];
    const float *xr = x + (size_t)blockIdx.x * D;
    float *yr = y + (size_t)blockIdx.x * D;
    float ss = 0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) ss += xr[d] * xr[d];
    ss = vr_block_sum(ss, sh);
    float r = 1.0f / sqrtf(ss / (float)D + eps);
    if (threadIdx.x == 0 && rstd) rstd[blockIdx.x] = r;
    for (int d = threadIdx.x; d < D; d += blockDim.x) yr[d] = w[d] * (xr[d] * r);
}

extern "C" void vr_cuda_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int N, int D, double eps)
{
    if (N <= 0) return;
    k_rms_fwd<<<N, ROW_THREADS>>>(y, rstd, x, w, D, (float)eps);
    VR_CU_LAUNCHED("rmsnorm_fwd");
}

/* dw[d] += sum_n dy x rstd: one thread a column, rows in order. */
__global__ void k_rms_dw(float *dw, const float *dy, const float *x, const float *rstd, int N, int D)
{
    for (int d = blockIdx.x * blockDim.x + threadIdx.x; d < D; d += gridDim.x * blockDim.x) {
        float acc = 0;
        for (int n = 0; n < N; n++) acc += dy[(size_t)n * D + d] * x[(size_t)n * D + d] * rstd[n];
        dw[d] += acc;
    }
}

/* dx = rstd (dy w - x rstd^2 mean(dy w x)); the dot first, so dx may alias dy */
__global__ void k_rms_dx(float *dx, const float *dy, const float *x, const float *rstd, const float *w, int D)
{
    __shared__ float sh[32];
    size_t o = (size_t)blockIdx.x * D;
    float r = rstd[blockIdx.x], dot = 0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) dot += dy[o + d] * w[d] * x[o + d];
    dot = vr_block_sum(dot, sh);
    float k = r * r * dot / (float)D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) dx[o + d] = r * (dy[o + d] * w[d] - x[o + d] * k);
}

extern "C" void vr_cuda_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rstd,
                                    const float *w, int N, int D)
{
    if (N <= 0) return;
    if (dw) { /* before dx: dx may overwrite dy */
        k_rms_dw<<<(D + 127) / 128, 128>>>(dw, dy, x, rstd, N, D);
        VR_CU_LAUNCHED("rmsnorm_bwd dw");
    }
    if (dx) {
        k_rms_dx<<<N, ROW_THREADS>>>(dx, dy, x, rstd, w, D);
        VR_CU_LAUNCHED("rmsnorm_bwd dx");
    }
}

__global__ void k_softmax(float *x, int N)
{
    __shared__ float sh[32];
    float *r = x + (size_t)blockIdx.x * N;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < N; j += blockDim.x) m = fmaxf(m, r[j]);
    m = vr_block_max(m, sh);
    float s = 0;
    for (int j = threadIdx.x; j < N; j += blockDim.x) s += (r[j] = expf(r[j] - m));
    s = vr_block_sum(s, sh);
    float inv = 1.0f / s;
    for (int j = threadIdx.x; j < N; j += blockDim.x) r[j] *= inv;
}

extern "C" void vr_cuda_softmax(float *x, int M, int N)
{
    if (M <= 0 || N <= 0) return;
    k_softmax<<<M, ROW_THREADS>>>(x, N);
    VR_CU_LAUNCHED("softmax");
}

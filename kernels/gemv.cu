/* gemv.cu: the generation path's matrix-vector product and the weight
 * widening (vr_cuda.h). vr_cuda_gemv is the GPU twin of gemv_infer: each
 * output y[m][o] is one warp's sum over k, lane l taking k = l, l + 32, ...
 * in order, then a fixed butterfly, so an output's bits depend on In alone,
 * never on M (decode and a prefill of the same row agree), and never on
 * timing. Weights are read in their stored dtype. */
#include <cuda_fp16.h>

#include "common.cuh"

template <typename T> __device__ __forceinline__ float wval(T v);
template <> __device__ __forceinline__ float wval<float>(float v) { return v; }
template <> __device__ __forceinline__ float wval<uint16_t>(uint16_t v) { return vr_bf16_f32(v); }
template <> __device__ __forceinline__ float wval<__half>(__half v) { return __half2float(v); }

template <typename T>
__global__ void k_gemv(float *y, const float *x, const T *w, const float *b, int M, int O, int In)
{
    int lane = threadIdx.x & 31;
    size_t nw = (size_t)gridDim.x * (blockDim.x >> 5);
    /* warps stride over the outputs (whole warps together: the shuffles see 32 lanes) */
    for (size_t warp = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; warp < (size_t)M * O; warp += nw) {
        int m = (int)(warp / O), o = (int)(warp % O);
        const float *xr = x + (size_t)m * In;
        const T *wr = w + (size_t)o * In;
        float s = 0;
        for (int k = lane; k < In; k += 32) s = fmaf(xr[k], wval<T>(wr[k]), s);
        s = vr_warp_sum(s);
        if (lane == 0) y[(size_t)m * O + o] = b ? s + b[o] : s;
    }
}

extern "C" void vr_cuda_gemv(float *y, const float *x, const void *w, enum vr_dtype dt, const float *b, int M, int O,
                             int In)
{
    if (M <= 0 || O <= 0) return;
    size_t warps = (size_t)M * O, want = (warps + 7) / 8; /* 8 warps a block */
    unsigned blocks = (unsigned)(want < (1u << 20) ? want : (1u << 20));
    switch (dt) {
    case VR_DTYPE_F32: k_gemv<float><<<blocks, 256>>>(y, x, (const float *)w, b, M, O, In); break;
    case VR_DTYPE_BF16: k_gemv<uint16_t><<<blocks, 256>>>(y, x, (const uint16_t *)w, b, M, O, In); break;
    case VR_DTYPE_F16: k_gemv<__half><<<blocks, 256>>>(y, x, (const __half *)w, b, M, O, In); break;
    default: vr_cuda_keep(cudaErrorInvalidValue, "gemv: a weight dtype other than f32, bf16, f16"); return;
    }
    VR_CU_LAUNCHED("gemv");
}

template <typename T> __global__ void k_widen(float *y, const T *x, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = wval<T>(x[i]);
}

extern "C" void vr_cuda_widen(float *y, const void *x, enum vr_dtype dt, size_t n)
{
    if (!n) return;
    switch (dt) {
    case VR_DTYPE_BF16: k_widen<uint16_t><<<vr_blocks(n, 256), 256>>>(y, (const uint16_t *)x, n); break;
    case VR_DTYPE_F16: k_widen<__half><<<vr_blocks(n, 256), 256>>>(y, (const __half *)x, n); break;
    case VR_DTYPE_F32: vr_cuda_keep(cudaMemcpy(y, x, n * 4, cudaMemcpyDeviceToDevice), "widen f32"); return;
    default: vr_cuda_keep(cudaErrorInvalidValue, "widen: a dtype other than f32, bf16, f16"); return;
    }
    VR_CU_LAUNCHED("widen");
}

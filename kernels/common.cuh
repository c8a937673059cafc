/* common.cuh: what the .cu files of kernels/ share: the kept error, launch shapes,
 * block reductions with a fixed tree, bf16 bit conversions equal to
 * lib/tensor.c's. Not installed; included by the .cu files only. */
#ifndef VR_CUDA_COMMON_CUH
#define VR_CUDA_COMMON_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include "vr_cuda.h"

/* Remember the first error since the last vr_cuda_sync (runtime.cu). */
void vr_cuda_keep(cudaError_t e, const char *what);
#define VR_CU_LAUNCHED(what) vr_cuda_keep(cudaGetLastError(), what)

static inline unsigned vr_blocks(size_t n, unsigned threads)
{
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b > 65535u * 1024u ? 65535u * 1024u : b); /* grid-stride loops take the rest */
}

/* bf16 <-> float as lib/tensor.c: round to nearest even, every NaN -> 0x7fc0. */
__device__ __forceinline__ float vr_bf16_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
__device__ __forceinline__ uint16_t vr_f32_bf16(float f)
{
    if (f != f) return 0x7fc0;
    uint32_t u = __float_as_uint(f);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Sum over a warp with a fixed butterfly: every lane gets the same bits. */
__device__ __forceinline__ float vr_warp_sum(float x)
{
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float vr_warp_max(float x)
{
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
__device__ __forceinline__ double vr_warp_sum_d(double x)
{
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

/* Block-wide sum (blockDim.x a multiple of 32, at most 1024): warp sums, then
 * the first warp sums those; the shape depends on blockDim alone. Every
 * thread gets the result. sh: 32 floats of shared memory. */
template <typename T> __device__ T vr_block_sum(T x, T *sh)
{
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0) sh[wid] = x;
    __syncthreads();
    x = lane < nw ? sh[lane] : (T)0;
    if (wid == 0)
        for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    if (threadIdx.x == 0) sh[0] = x;
    __syncthreads();
    return sh[0];
}
template <typename T> __device__ T vr_block_max(T x, T *sh)
{
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) x = max(x, __shfl_xor_sync(0xffffffffu, x, o));
    __syncthreads();
    if (lane == 0) sh[wid] = x;
    __syncthreads();
    x = lane < nw ? sh[lane] : (T)-INFINITY;
    if (wid == 0)
        for (int o = 16; o > 0; o >>= 1) x = max(x, __shfl_xor_sync(0xffffffffu, x, o));
    if (threadIdx.x == 0) sh[0] = x;
    __syncthreads();
    return sh[0];
}

#endif

/* runtime.cu: devices, memory, and the kept error of the CUDA backend
 * (vr_cuda.h). One device (the current one), the default stream. */
#include <stdio.h>
#include <string.h>

#include "common.cuh"

static cudaError_t kept = cudaSuccess;
static char kept_what[96];

void vr_cuda_keep(cudaError_t e, const char *what)
{
    if (e == cudaSuccess || kept != cudaSuccess) return;
    kept = e;
    snprintf(kept_what, sizeof kept_what, "%s", what);
}

extern "C" int vr_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* no driver or no device: not an error of ours */
        return 0;
    }
    return n;
}

extern "C" void vr_cuda_device_name(char *buf, size_t n)
{
    cudaDeviceProp p;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
        snprintf(buf, n, "no CUDA device");
        return;
    }
    snprintf(buf, n, "%s (sm_%d%d, %.0f GiB)", p.name, p.major, p.minor, (double)p.totalGlobalMem / (1 << 30));
}

extern "C" int vr_cuda_sync(char *msg, size_t n)
{
    vr_cuda_keep(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    if (kept == cudaSuccess) return 0;
    snprintf(msg, n, "CUDA: %s: %s", kept_what, cudaGetErrorString(kept));
    kept = cudaSuccess;
    (void)cudaGetLastError();
    return -1;
}

extern "C" void *vr_cuda_alloc(size_t bytes)
{
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        vr_cuda_keep(e, "cudaMalloc");
        return NULL;
    }
    return p;
}

extern "C" void vr_cuda_free(void *p)
{
    if (p) vr_cuda_keep(cudaFree(p), "cudaFree");
}

extern "C" void vr_cuda_to_device(void *dst, const void *src, size_t bytes)
{
    vr_cuda_keep(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
}

extern "C" void vr_cuda_to_host(void *dst, const void *src, size_t bytes)
{
    vr_cuda_keep(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
}

extern "C" void vr_cuda_zero(void *p, size_t bytes)
{
    vr_cuda_keep(cudaMemset(p, 0, bytes), "cudaMemset");
}

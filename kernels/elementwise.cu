/* elementwise.cu: SwiGLU, GELU, add, RoPE, embedding rows, AdamW (vr_cuda.h).
 * One thread an element (or a rotated pair), grid-stride loops; nothing is
 * reduced, so every result is one expression of its inputs. */
#include "common.cuh"

#define GRID(n) vr_blocks((n), 256), 256

__global__ void k_swiglu_fwd(float *y, const float *g, const float *u, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

extern "C" void vr_cuda_swiglu_fwd(float *y, const float *g, const float *u, size_t n)
{
    if (!n) return;
    k_swiglu_fwd<<<GRID(n)>>>(y, g, u, n);
    VR_CU_LAUNCHED("swiglu_fwd");
}

/* d/dg silu(g) u = u s (1 + g (1 - s)), d/du = silu(g); dy read first (dg may alias it) */
__global__ void k_swiglu_bwd(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float d = dy[i], gi = g[i], ui = u[i], s = 1.0f / (1.0f + expf(-gi));
        if (du) du[i] = d * gi * s;
        if (dg) dg[i] = d * ui * s * (1.0f + gi * (1.0f - s));
    }
}

extern "C" void vr_cuda_swiglu_bwd(float *dg, float *du, const float *dy, const float *g, const float *u, size_t n)
{
    if (!n) return;
    k_swiglu_bwd<<<GRID(n)>>>(dg, du, dy, g, u, n);
    VR_CU_LAUNCHED("swiglu_bwd");
}

__global__ void k_gelu_fwd(float *y, const float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

extern "C" void vr_cuda_gelu_fwd(float *y, const float *x, size_t n)
{
    if (!n) return;
    k_gelu_fwd<<<GRID(n)>>>(y, x, n);
    VR_CU_LAUNCHED("gelu_fwd");
}

/* gelu'(x) = Phi(x) + x phi(x) */
__global__ void k_gelu_bwd(float *dx, const float *dy, const float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float xi = x[i];
        float d = 0.5f * (1.0f + erff(xi * 0.70710678118654752f)) + xi * 0.39894228040143267794f * expf(-0.5f * xi * xi);
        dx[i] = dy[i] * d;
    }
}

extern "C" void vr_cuda_gelu_bwd(float *dx, const float *dy, const float *x, size_t n)
{
    if (!n) return;
    k_gelu_bwd<<<GRID(n)>>>(dx, dy, x, n);
    VR_CU_LAUNCHED("gelu_bwd");
}

__global__ void k_add(float *x, const float *y, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] += y[i];
}

extern "C" void vr_cuda_add(float *x, const float *y, size_t n)
{
    if (!n) return;
    k_add<<<GRID(n)>>>(x, y, n);
    VR_CU_LAUNCHED("add");
}

/* One thread a pair (d, d + K/2) of one head of one row. Forward
 * [c1 -s1; s2 c2] on (a, b); inverse its transpose [c1 s2; -s1 c2]. */
__global__ void k_rope(float *x, const float *cos, const float *sin, int N, int H, int K, int stride, int inverse)
{
    int h2 = K / 2;
    size_t total = (size_t)N * H * h2;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total; t += (size_t)gridDim.x * blockDim.x) {
        int d = (int)(t % h2);
        size_t rh = t / h2;
        int h = (int)(rh % H), i = (int)(rh / H);
        const float *c = cos + (size_t)i * K, *s = sin + (size_t)i * K;
        float *v = x + (size_t)i * stride + (size_t)h * K;
        float a = v[d], b = v[d + h2];
        if (!inverse) {
            v[d] = a * c[d] - b * s[d];
            v[d + h2] = b * c[d + h2] + a * s[d + h2];
        } else {
            v[d] = a * c[d] + b * s[d + h2];
            v[d + h2] = b * c[d + h2] - a * s[d];
        }
    }
}

extern "C" void vr_cuda_rope(float *x, const float *cos, const float *sin, int N, int H, int K, int stride,
                             int inverse)
{
    size_t n = (size_t)N * H * (K / 2);
    if (!n) return;
    k_rope<<<GRID(n)>>>(x, cos, sin, N, H, K, stride, inverse);
    VR_CU_LAUNCHED("rope");
}

template <typename T> __device__ __forceinline__ float widen(T v);
template <> __device__ __forceinline__ float widen<float>(float v) { return v; }
template <> __device__ __forceinline__ float widen<uint16_t>(uint16_t v) { return vr_bf16_f32(v); }

template <typename T> __global__ void k_embed_fwd(float *out, const T *table, const int32_t *ids, int N, int D)
{
    size_t total = (size_t)N * D;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total; t += (size_t)gridDim.x * blockDim.x) {
        size_t n = t / D, d = t % D;
        if (ids[n] >= 0) out[t] = widen<T>(table[(size_t)ids[n] * D + d]);
    }
}

extern "C" void vr_cuda_embed_fwd(float *out, const float *table, const int32_t *ids, int N, int D)
{
    if (!N || !D) return;
    k_embed_fwd<float><<<GRID((size_t)N * D)>>>(out, table, ids, N, D);
    VR_CU_LAUNCHED("embed_fwd");
}

extern "C" void vr_cuda_embed_fwd_bf16(float *out, const uint16_t *table, const int32_t *ids, int N, int D)
{
    if (!N || !D) return;
    k_embed_fwd<uint16_t><<<GRID((size_t)N * D)>>>(out, table, ids, N, D);
    VR_CU_LAUNCHED("embed_fwd_bf16");
}

/* One thread a column d: walks the rows n in order and adds into the row of
 * their id, so each element of dtable gets its terms in the order of n
 * whatever the launch shape (as the CPU's loop over n). */
__global__ void k_embed_bwd(float *dtable, const float *dout, const int32_t *ids, int N, int D)
{
    for (int d = blockIdx.x * blockDim.x + threadIdx.x; d < D; d += gridDim.x * blockDim.x)
        for (int n = 0; n < N; n++)
            if (ids[n] >= 0) dtable[(size_t)ids[n] * D + d] += dout[(size_t)n * D + d];
}

extern "C" void vr_cuda_embed_bwd(float *dtable, const float *dout, const int32_t *ids, int N, int D)
{
    if (!N || !D) return;
    k_embed_bwd<<<(D + 127) / 128, 128>>>(dtable, dout, ids, N, D);
    VR_CU_LAUNCHED("embed_bwd");
}

/* lib/optim.c's adamw_range, element for element: explicit _rn intrinsics
 * so nvcc contracts nothing the CPU does not (its two fmaf are __fmaf_rn). */
__global__ void k_adamw(float *w, const float *g, float *m, float *v, size_t n, struct vr_adamw_consts k)
{
    const float a = k.small ? k.w1 : __fsub_rn(k.w1, 1.0f);
    const float decay = k.do_decay ? k.decay : 1.0f;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float gi = g[i], mi = m[i];
        float wi = __fmul_rn(w[i], decay);
        mi = __fmaf_rn(a, __fsub_rn(gi, mi), k.small ? mi : gi);
        float vi = __fmul_rn(v[i], k.b2);
        vi = __fmaf_rn(__fmul_rn(k.w2, gi), gi, vi);
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), k.bc2s), k.eps);
        wi = __fadd_rn(wi, __fdiv_rn(__fmul_rn(k.neg_step, mi), denom));
        m[i] = mi;
        v[i] = vi;
        w[i] = wi;
    }
}

extern "C" void vr_cuda_adamw(float *w, const float *g, float *m, float *v, size_t n, const struct vr_adamw_consts *k)
{
    if (!n) return;
    k_adamw<<<GRID(n)>>>(w, g, m, v, n, *k);
    VR_CU_LAUNCHED("adamw");
}

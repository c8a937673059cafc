/* attention.cu: attention of packed sequences, forward and backward
 * (vr_cuda.h), flash-style: no (T x T) matrix is ever stored. One warp a
 * (row, head); a lane holds dimensions lane, lane + 32, ... of the head. The
 * forward keeps an online softmax (running max m, sum l) and saves
 * lse = m + log l; the backward recomputes p = exp(s - lse) per pair:
 *   D_i  = dout_i . out_i
 *   dS_ij = p_ij (dout_i . v_j - D_i)
 *   dq_i = scale sum_j dS_ij k_j,  dk_j = scale sum_i dS_ij q_i,  dv_j = sum_i p_ij dout_i
 * with dk, dv summed over the query heads that share the kv head (GQA).
 * The forward also reads a KV cache (generation); the backward packed rows.
 * Every sum runs in a fixed order (keys, then heads, in increasing index), so
 * two runs give the same bits. Simple rather than fast: a first version to
 * check against the CPU; tensor-core tiles come once it has run on a GPU. */
#include "common.cuh"

#define KP 8 /* K <= 32 * KP = 256 */
#define WARPS 4

/* The sequence holding row i: s with cu[s] <= i < cu[s + 1]. */
__device__ int seg_of(const int *cu, int nseg, int i)
{
    int lo = 0, hi = nseg - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (cu[mid] <= i) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

__device__ __forceinline__ void load(float r[KP], const float *p, int K)
{
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int t = 0; t < KP; t++) r[t] = lane + 32 * t < K ? p[lane + 32 * t] : 0.0f;
}

__device__ __forceinline__ float dot(const float a[KP], const float *p, int K)
{
    int lane = threadIdx.x & 31;
    float s = 0;
#pragma unroll
    for (int t = 0; t < KP; t++)
        if (lane + 32 * t < K) s += a[t] * p[lane + 32 * t];
    return vr_warp_sum(s);
}

/* The keys of query row i: [j0, j1) of its segment (packed rows), or of the
 * cache [0, min(nkeys, q0 + i + 1)) with the valid mask. */
__device__ void key_range(const struct vr_attn_dims &a, int i, int *j0, int *j1)
{
    if (a.cu) {
        int s = seg_of(a.cu, a.nseg, i);
        *j0 = a.cu[s];
        *j1 = a.causal ? i + 1 : a.cu[s + 1];
    } else {
        *j0 = 0;
        *j1 = min(a.nkeys, a.q0 + i + 1);
    }
}

__global__ void k_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                           struct vr_attn_dims a, float scale)
{
    int w = blockIdx.x * WARPS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (w >= a.N * a.H) return;
    int i = w / a.H, h = w % a.H, kvh = h / (a.H / a.KVH), K = a.K, j0, j1;
    key_range(a, i, &j0, &j1);
    /* packed: row j of head kvh at j * kv_stride + kvh * K; cache: (KVH, cap, K) */
    size_t kbase = a.cu ? (size_t)kvh * K : (size_t)kvh * a.cap * K;
    size_t kstep = a.cu ? (size_t)a.kv_stride : (size_t)K;
    float qr[KP], acc[KP];
    load(qr, q + (size_t)i * a.q_stride + (size_t)h * K, K);
#pragma unroll
    for (int t = 0; t < KP; t++) acc[t] = 0;
    float m = -INFINITY, l = 0;
    for (int j = j0; j < j1; j++) {
        if (!a.cu && a.valid && !a.valid[j]) continue;
        const float *kj = k + kbase + (size_t)j * kstep, *vj = v + kbase + (size_t)j * kstep;
        float sc = dot(qr, kj, K) * scale;
        float mn = fmaxf(m, sc), c = expf(m - mn), p = expf(sc - mn);
        l = l * c + p;
#pragma unroll
        for (int t = 0; t < KP; t++)
            if (lane + 32 * t < K) acc[t] = acc[t] * c + p * vj[lane + 32 * t];
        m = mn;
    }
    float inv = l > 0 ? 1.0f / l : 0.0f; /* no key seen: zeros */
    float *o = out + (size_t)i * a.H * K + (size_t)h * K;
#pragma unroll
    for (int t = 0; t < KP; t++)
        if (lane + 32 * t < K) o[lane + 32 * t] = acc[t] * inv;
    if (lane == 0 && lse) lse[(size_t)i * a.H + h] = l > 0 ? m + logf(l) : -INFINITY;
}

static unsigned warps_grid(size_t n) { return (unsigned)((n + WARPS - 1) / WARPS); }

extern "C" void vr_cuda_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                                 const struct vr_attn_dims *a)
{
    if (a->N <= 0 || a->H <= 0) return;
    k_attn_fwd<<<warps_grid((size_t)a->N * a->H), 32 * WARPS>>>(out, lse, q, k, v, *a, 1.0f / sqrtf((float)a->K));
    VR_CU_LAUNCHED("attn_fwd");
}

/* D (N, H) = rowwise dout . out */
__global__ void k_attn_dd(float *D, const float *dout, const float *out, struct vr_attn_dims a)
{
    int w = blockIdx.x * WARPS + (threadIdx.x >> 5);
    if (w >= a.N * a.H) return;
    size_t o = (size_t)w * a.K; /* (i, h) is row w of the (N*H, K) view of out */
    float r[KP];
    load(r, dout + o, a.K);
    float d = dot(r, out + o, a.K);
    if ((threadIdx.x & 31) == 0) D[w] = d;
}

__global__ void k_attn_dq(float *dq, const float *dout, const float *lse, const float *D, const float *q,
                          const float *k, const float *v, struct vr_attn_dims a, float scale)
{
    int w = blockIdx.x * WARPS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (w >= a.N * a.H) return;
    int i = w / a.H, h = w % a.H, kvh = h / (a.H / a.KVH), K = a.K;
    int s = seg_of(a.cu, a.nseg, i), j0 = a.cu[s], j1 = a.causal ? i + 1 : a.cu[s + 1];
    float qr[KP], dr[KP], acc[KP];
    load(qr, q + (size_t)i * a.q_stride + (size_t)h * K, K);
    load(dr, dout + (size_t)i * a.H * K + (size_t)h * K, K);
#pragma unroll
    for (int t = 0; t < KP; t++) acc[t] = 0;
    float L = lse[w], Di = D[w];
    for (int j = j0; j < j1; j++) {
        const float *kj = k + (size_t)j * a.kv_stride + (size_t)kvh * K;
        const float *vj = v + (size_t)j * a.kv_stride + (size_t)kvh * K;
        float p = expf(dot(qr, kj, K) * scale - L);
        float ds = p * (dot(dr, vj, K) - Di);
#pragma unroll
        for (int t = 0; t < KP; t++)
            if (lane + 32 * t < K) acc[t] += ds * kj[lane + 32 * t];
    }
    float *o = dq + (size_t)i * a.q_stride + (size_t)h * K;
#pragma unroll
    for (int t = 0; t < KP; t++)
        if (lane + 32 * t < K) o[lane + 32 * t] = acc[t] * scale;
}

/* one warp a (key row j, kv head): the query heads of the group, then the
 * rows that see j, in increasing order */
__global__ void k_attn_dkv(float *dk, float *dv, const float *dout, const float *lse, const float *D,
                           const float *q, const float *k, const float *v, struct vr_attn_dims a, float scale)
{
    int w = blockIdx.x * WARPS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (w >= a.N * a.KVH) return;
    int j = w / a.KVH, kvh = w % a.KVH, K = a.K, G = a.H / a.KVH;
    int s = seg_of(a.cu, a.nseg, j), i0 = a.causal ? j : a.cu[s], i1 = a.cu[s + 1];
    float kr[KP], vr[KP], dka[KP], dva[KP];
    load(kr, k + (size_t)j * a.kv_stride + (size_t)kvh * K, K);
    load(vr, v + (size_t)j * a.kv_stride + (size_t)kvh * K, K);
#pragma unroll
    for (int t = 0; t < KP; t++) dka[t] = dva[t] = 0;
    for (int h = kvh * G; h < (kvh + 1) * G; h++)
        for (int i = i0; i < i1; i++) {
            const float *qi = q + (size_t)i * a.q_stride + (size_t)h * K;
            const float *di = dout + (size_t)i * a.H * K + (size_t)h * K;
            float p = expf(dot(kr, qi, K) * scale - lse[(size_t)i * a.H + h]);
            float ds = p * (dot(vr, di, K) - D[(size_t)i * a.H + h]);
#pragma unroll
            for (int t = 0; t < KP; t++)
                if (lane + 32 * t < K) {
                    dva[t] += p * di[lane + 32 * t];
                    dka[t] += ds * qi[lane + 32 * t];
                }
        }
    /* either may be NULL (the seam's contract): not wanted */
    float *ok = dk ? dk + (size_t)j * a.kv_stride + (size_t)kvh * K : NULL;
    float *ov = dv ? dv + (size_t)j * a.kv_stride + (size_t)kvh * K : NULL;
#pragma unroll
    for (int t = 0; t < KP; t++)
        if (lane + 32 * t < K) {
            if (ok) ok[lane + 32 * t] = dka[t] * scale;
            if (ov) ov[lane + 32 * t] = dva[t];
        }
}

extern "C" void vr_cuda_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                 const float *lse, const float *q, const float *k, const float *v,
                                 const struct vr_attn_dims *a, float *scratch)
{
    if (a->N <= 0 || a->H <= 0) return;
    float scale = 1.0f / sqrtf((float)a->K);
    size_t nq = (size_t)a->N * a->H, nk = (size_t)a->N * a->KVH;
    k_attn_dd<<<warps_grid(nq), 32 * WARPS>>>(scratch, dout, out, *a);
    VR_CU_LAUNCHED("attn_bwd D");
    if (dq) {
        k_attn_dq<<<warps_grid(nq), 32 * WARPS>>>(dq, dout, lse, scratch, q, k, v, *a, scale);
        VR_CU_LAUNCHED("attn_bwd dq");
    }
    if (dk || dv) {
        k_attn_dkv<<<warps_grid(nk), 32 * WARPS>>>(dk, dv, dout, lse, scratch, q, k, v, *a, scale);
        VR_CU_LAUNCHED("attn_bwd dk dv");
    }
}

/* sample.cu: the sampler of lib/sample.c on the GPU (vr_cuda.h), one block a
 * row: repetition penalty over the distinct seen ids, temperature, top-k
 * (ties with the k-th kept), top-p, min-p, then the inverse CDF over the kept
 * ids in increasing order with u from the same Philox4x32-10 counters as the
 * CPU. The candidates are sorted by a stable segmented radix sort (CUB), so
 * equal logits keep increasing ids, as the CPU's comparison does; the cut
 * points are found by one thread a row walking the sorted row in the CPU's
 * order with the CPU's double sums. The draw's running sum is split over the
 * threads (each adds its stretch in order, the stretches' totals are added in
 * order), so a token can differ from the CPU's only when u z falls within a
 * few ulp of a boundary between two tokens. */
#include <cub/device/device_segmented_radix_sort.cuh>

#include "common.cuh"

#define THREADS 256

/* ---- Philox4x32-10, as lib/rng.c ---- */

__device__ void philox(uint32_t c[4], uint32_t k0, uint32_t k1)
{
    for (int r = 0; r < 10; r++) {
        uint32_t hi0 = __umulhi(0xD2511F53u, c[0]), lo0 = 0xD2511F53u * c[0];
        uint32_t hi1 = __umulhi(0xCD9E8D57u, c[2]), lo1 = 0xCD9E8D57u * c[2];
        uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
        c[0] = n0, c[1] = lo1, c[2] = n2, c[3] = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

__global__ void k_uniform(float *u, int B, uint64_t seed, const uint64_t *task, const uint32_t *comp, const uint32_t *pos)
{
    int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= B) return;
    uint32_t c[4] = {pos[b], comp[b], (uint32_t)task[b], (uint32_t)(task[b] >> 32)};
    philox(c, (uint32_t)seed, (uint32_t)(seed >> 32));
    u[b] = (float)(c[0] >> 8) * 0x1p-24f; /* vr_u32_to_unit_float */
}

extern "C" void vr_cuda_sample_uniform(float *u, int B, uint64_t seed, const uint64_t *task_hash,
                                       const uint32_t *completion, const uint32_t *position)
{
    if (B <= 0) return;
    k_uniform<<<(B + 127) / 128, 128>>>(u, B, seed, task_hash, completion, position);
    VR_CU_LAUNCHED("sample_uniform");
}

/* ---- scratch ---- */

struct scratch {
    float *l, *ls;     /* (B, V) penalised logits / T; sorted */
    int *id, *ids;     /* (B, V) ids; sorted with ls */
    unsigned char *keep; /* (B, V) */
    int *off;          /* B + 1 row offsets */
    void *cub;
    size_t cub_bytes;
};

static size_t al(size_t n) { return (n + 255) & ~(size_t)255; }

static size_t cub_bytes(int B, int V)
{
    size_t bytes = 0;
    cub::DeviceSegmentedRadixSort::SortPairsDescending(NULL, bytes, (const float *)NULL, (float *)NULL,
                                                       (const int *)NULL, (int *)NULL, B * V, B,
                                                       (const int *)NULL, (const int *)NULL);
    return bytes;
}

static struct scratch carve(void *p, int B, int V)
{
    size_t n = (size_t)B * V;
    char *c = (char *)p;
    struct scratch s;
    s.l = (float *)c, c += al(n * 4);
    s.ls = (float *)c, c += al(n * 4);
    s.id = (int *)c, c += al(n * 4);
    s.ids = (int *)c, c += al(n * 4);
    s.keep = (unsigned char *)c, c += al(n);
    s.off = (int *)c, c += al(((size_t)B + 1) * 4);
    s.cub_bytes = cub_bytes(B, V);
    s.cub = c;
    return s;
}

extern "C" size_t vr_cuda_sample_scratch(int B, int V)
{
    size_t n = (size_t)B * V;
    return 4 * al(n * 4) + al(n) + al(((size_t)B + 1) * 4) + cub_bytes(B, V) + 256;
}

/* ---- the row kernels ---- */

/* l = logits with the penalty applied once per distinct seen id (its first
 * occurrence in seen), then / T when drawing; ids 0..V-1 and row offsets. */
__global__ void k_prep(struct scratch s, const float *logits, int V, struct vr_sampling sp, const int32_t *seen,
                       const int *seen_off, int divide)
{
    int b = blockIdx.x;
    const float *x = logits + (size_t)b * V;
    float *l = s.l + (size_t)b * V;
    int *id = s.id + (size_t)b * V;
    for (int v = threadIdx.x; v < V; v += blockDim.x) l[v] = x[v], id[v] = v;
    if (threadIdx.x == 0) {
        s.off[b] = b * V;
        if (b == gridDim.x - 1) s.off[b + 1] = (b + 1) * V;
    }
    __syncthreads();
    if (sp.rep_penalty != 1.0f && seen) {
        int a = seen_off[b], e = seen_off[b + 1];
        for (int i = a + threadIdx.x; i < e; i += blockDim.x) {
            int t = seen[i], first = t >= 0 && t < V;
            for (int j = a; j < i && first; j++) first = seen[j] != t;
            if (first) l[t] = l[t] < 0 ? l[t] * sp.rep_penalty : l[t] / sp.rep_penalty;
        }
        __syncthreads();
    }
    if (divide)
        for (int v = threadIdx.x; v < V; v += blockDim.x) l[v] /= sp.temperature;
}

/* The cut of the sorted row (one thread, the CPU's loops), then keep[] */
__global__ void k_cut(struct scratch s, int V, struct vr_sampling sp)
{
    __shared__ int n_keep;
    int b = blockIdx.x;
    const float *ls = s.ls + (size_t)b * V;
    const int *ids = s.ids + (size_t)b * V;
    unsigned char *keep = s.keep + (size_t)b * V;
    for (int v = threadIdx.x; v < V; v += blockDim.x) keep[v] = 0;
    if (threadIdx.x == 0) {
        int n = V;
        if (sp.top_k > 0 && sp.top_k < n) {
            float kth = ls[sp.top_k - 1];
            n = sp.top_k;
            while (n < V && ls[n] == kth) n++;
        }
        double mx = ls[0], z = 0;
        for (int i = 0; i < n; i++) z += exp((double)ls[i] - mx);
        if (sp.top_p < 1.0f) {
            double c = 0;
            int k = n;
            for (int i = 0; i < n; i++) {
                c += exp((double)ls[i] - mx) / z;
                if (c >= sp.top_p) {
                    k = i + 1;
                    break;
                }
            }
            n = k;
        }
        if (sp.min_p > 0) {
            z = 0;
            for (int i = 0; i < n; i++) z += exp((double)ls[i] - mx);
            double pmax = 1.0 / z;
            int k = 1;
            while (k < n && exp((double)ls[k] - mx) / z >= sp.min_p * pmax) k++;
            n = k;
        }
        n_keep = n;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < n_keep; i += blockDim.x) keep[ids[i]] = 1;
}

/* The first i in [0, V) where the running sum of w(i) passes target: each
 * thread a contiguous stretch, totals added in thread order; -1 if none. */
template <typename W> __device__ int inverse_cdf(W w, int V, double target, double *sh_tot, int *sh_min)
{
    int T = blockDim.x, t = threadIdx.x;
    int a = (int)((long)V * t / T), e = (int)((long)V * (t + 1) / T);
    double tot = 0;
    for (int i = a; i < e; i++) tot += w(i);
    sh_tot[t] = tot;
    if (t == 0) *sh_min = V;
    __syncthreads();
    double c = 0;
    for (int j = 0; j < t; j++) c += sh_tot[j];
    int found = V;
    if (c <= target)
        for (int i = a; i < e; i++) {
            c += w(i);
            if (c > target) {
                found = i;
                break;
            }
        }
    if (found < V) atomicMin(sh_min, found); /* an int minimum: the same whatever the order */
    __syncthreads();
    return *sh_min < V ? *sh_min : -1;
}

struct plain_w { /* the plain draw: exp(x inv - mx) as float, over every id */
    const float *x;
    float inv, mx;
    __device__ double operator()(int i) const { return (double)expf(x[i] * inv - mx); }
};
struct kept_w { /* the truncated draw: exp(l - mx) in double over the kept ids */
    const float *l;
    const unsigned char *keep;
    double mx;
    __device__ double operator()(int i) const { return keep && !keep[i] ? 0.0 : exp((double)l[i] - mx); }
};

/* mode 0: plain sampling; 1: greedy on raw logits; 2: greedy on l; 3: draw
 * over l (kept ids when keep) */
__global__ void k_draw(int32_t *tok, float *logp, const float *logits, struct scratch s, int V, float inv,
                       const float *u, int mode, int truncated)
{
    __shared__ float shf[32];
    __shared__ double shd[32];
    __shared__ double sh_tot[THREADS];
    __shared__ int sh_min;
    __shared__ float shv[32];
    __shared__ int shi[32];
    int b = blockIdx.x;
    const float *x = logits + (size_t)b * V, *l = s.l + (size_t)b * V;
    const unsigned char *keep = truncated ? s.keep + (size_t)b * V : NULL;
    /* the sampling policy's log-prob: softmax of raw logits * inv */
    float mraw = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) mraw = fmaxf(mraw, x[v]);
    float mx = vr_block_max(mraw, shf) * inv;
    double z = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) z += (double)expf(x[v] * inv - mx);
    z = vr_block_sum(z, shd);
    int t = -1;
    if (mode == 1 || mode == 2) { /* argmax, first on ties */
        const float *y = mode == 1 ? x : l;
        float bv = -INFINITY;
        int bi = V;
        for (int v = threadIdx.x; v < V; v += blockDim.x)
            if (y[v] > bv || bi == V) bv = y[v], bi = v;
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (ov > bv || (ov == bv && oi < bi)) bv = ov, bi = oi;
        }
        if ((threadIdx.x & 31) == 0) shv[threadIdx.x >> 5] = bv, shi[threadIdx.x >> 5] = bi;
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int w = 1; w < (int)(blockDim.x >> 5); w++)
                if (shv[w] > shv[0] || (shv[w] == shv[0] && shi[w] < shi[0])) shv[0] = shv[w], shi[0] = shi[w];
            sh_min = shi[0];
        }
        __syncthreads();
        t = sh_min;
    } else if (mode == 0) {
        t = inverse_cdf(plain_w{x, inv, mx}, V, (double)u[b] * z, sh_tot, &sh_min);
        if (t < 0) t = V - 1;
    } else {
        float m = -INFINITY;
        for (int v = threadIdx.x; v < V; v += blockDim.x)
            if (!keep || keep[v]) m = fmaxf(m, l[v]);
        double mk = vr_block_max(m, shf);
        kept_w w{l, keep, mk};
        double zk;
        /* z over the stretches in thread order, as inverse_cdf adds them */
        int T = blockDim.x, a = (int)((long)V * threadIdx.x / T), e = (int)((long)V * (threadIdx.x + 1) / T);
        double part = 0;
        for (int i = a; i < e; i++) part += w(i);
        __syncthreads();
        sh_tot[threadIdx.x] = part;
        __syncthreads();
        if (threadIdx.x == 0) {
            double zz = 0;
            for (int j = 0; j < T; j++) zz += sh_tot[j];
            shd[0] = zz;
        }
        __syncthreads();
        zk = shd[0];
        __syncthreads();
        t = inverse_cdf(w, V, (double)u[b] * zk, sh_tot, &sh_min);
        if (t < 0) { /* the last kept id */
            int last = -1;
            for (int v = threadIdx.x; v < V; v += blockDim.x)
                if (!keep || keep[v]) last = v;
            __syncthreads();
            if (threadIdx.x == 0) sh_min = -1;
            __syncthreads();
            atomicMax(&sh_min, last);
            __syncthreads();
            t = sh_min;
        }
    }
    if (threadIdx.x == 0) {
        tok[b] = t;
        logp[b] = (float)((double)(x[t] * inv) - mx - log(z));
    }
}

extern "C" void vr_cuda_sample(int32_t *tok, float *logp, const float *logits, int B, int V,
                               const struct vr_sampling *sp, const int32_t *seen, const int *seen_off,
                               const float *u, void *scratch)
{
    if (B <= 0) return;
    struct scratch s = carve(scratch, B, V);
    float inv = 1.0f / (sp->greedy ? 1.0f : sp->temperature);
    int plain = sp->rep_penalty == 1.0f && sp->top_k <= 0 && sp->top_p >= 1.0f && sp->min_p <= 0;
    int sorted = !sp->greedy && (sp->top_k > 0 || sp->top_p < 1.0f || sp->min_p > 0);
    int mode = plain ? (sp->greedy ? 1 : 0) : (sp->greedy ? 2 : 3);
    if (!plain) {
        k_prep<<<B, THREADS>>>(s, logits, V, *sp, seen, seen_off, !sp->greedy);
        VR_CU_LAUNCHED("sample prep");
    }
    if (sorted) {
        size_t bytes = s.cub_bytes;
        vr_cuda_keep(cub::DeviceSegmentedRadixSort::SortPairsDescending(s.cub, bytes, s.l, s.ls, s.id, s.ids, B * V,
                                                                        B, s.off, s.off + 1),
                     "sample sort");
        k_cut<<<B, THREADS>>>(s, V, *sp);
        VR_CU_LAUNCHED("sample cut");
    }
    k_draw<<<B, THREADS>>>(tok, logp, logits, s, V, inv, u, mode, sorted);
    VR_CU_LAUNCHED("sample draw");
}

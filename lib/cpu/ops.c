/* ops.c: CPU reference ops (see ops.h). Plain loops around OpenBLAS sgemm. */
#include "cpu/ops.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct vr_ws_chunk {
    struct vr_ws_chunk *next;
    size_t cap, used; /* in floats */
    float *data;
};

void vr_ws_reset(struct vr_ws *ws)
{
    for (struct vr_ws_chunk *c = ws->head; c; c = c->next) c->used = 0;
    ws->cur = ws->head;
}

float *vr_ws_floats(struct vr_ws *ws, size_t n)
{
    n = (n + 15) & ~(size_t)15; /* keep 64-byte alignment */
    for (struct vr_ws_chunk *c = ws->cur; c; c = c->next) {
        if (c->cap - c->used >= n) {
            float *p = c->data + c->used;
            c->used += n;
            ws->cur = c;
            return p;
        }
    }
    struct vr_ws_chunk *c = vr_xcalloc(1, sizeof *c);
    c->cap = n > (1u << 20) ? n : (1u << 20);
    c->data = aligned_alloc(64, c->cap * sizeof(float));
    if (!c->data) {
        fprintf(stderr, "vr: out of memory for a %zu-float workspace\n", c->cap);
        abort();
    }
    c->used = n;
    /* append at the end so earlier chunks are reused first after a reset */
    struct vr_ws_chunk **pp = &ws->head;
    while (*pp) pp = &(*pp)->next;
    *pp = c;
    ws->cur = c;
    return c->data;
}

void vr_ws_free(struct vr_ws *ws)
{
    for (struct vr_ws_chunk *c = ws->head, *n; c; c = n) {
        n = c->next;
        free(c->data);
        free(c);
    }
    ws->head = ws->cur = NULL;
    for (int i = 0; i < 2; i++) {
        free(ws->wslot[i]);
        ws->wslot[i] = NULL;
        ws->wcap[i] = 0;
    }
}

const float *vr_weight_f32(const struct vr_tensor *w, int slot, struct vr_ws *ws)
{
    if (w->dtype == VR_DTYPE_F32) return w->data;
    size_t n = (size_t)vr_tensor_numel(w);
    if (n > ws->wcap[slot]) {
        free(ws->wslot[slot]);
        ws->wslot[slot] = aligned_alloc(64, ((n + 15) & ~(size_t)15) * sizeof(float));
        if (!ws->wslot[slot]) {
            fprintf(stderr, "vr: out of memory widening a %zu-element weight\n", n);
            abort();
        }
        ws->wcap[slot] = n;
    }
    vr_convert_to_f32(ws->wslot[slot], w->data, w->dtype, n);
    return ws->wslot[slot];
}

void vr_linear_fwd_cpu(float *out, const float *x, const struct vr_tensor *w,
                       const struct vr_tensor *b, int M, struct vr_ws *ws)
{
    /* out (M,N)  x (M,K)  w (N,K)  b (N) */
    int N = (int)w->shape[0], K = (int)w->shape[1];
    const float *W = vr_weight_f32(w, 0, ws);
    if (b) {
        const float *B = vr_weight_f32(b, 1, ws);
        for (int i = 0; i < M; i++) memcpy(out + (size_t)i * N, B, (size_t)N * sizeof *out);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, W, K, b ? 1.0f : 0.0f,
                out, N);
}

void vr_rmsnorm_fwd_cpu(float *out, const float *x, const struct vr_tensor *w, int M, int D,
                        double eps, struct vr_ws *ws)
{
    /* out (M,D)  x (M,D)  w (D) */
    const float *W = vr_weight_f32(w, 1, ws);
    for (int i = 0; i < M; i++) {
        const float *xi = x + (size_t)i * D;
        float *oi = out + (size_t)i * D;
        float ss = 0;
        for (int d = 0; d < D; d++) ss += xi[d] * xi[d];
        float r = 1.0f / sqrtf(ss / (float)D + (float)eps);
        for (int d = 0; d < D; d++) oi[d] = W[d] * (xi[d] * r);
    }
}

void vr_swiglu_fwd_cpu(float *out, const float *gate, const float *up, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void vr_gelu_fwd_cpu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void vr_add_cpu(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

void vr_rope_fwd_cpu(float *x, const float *cos, const float *sin, int M, int H, int K, int row_stride)
{
    /* x (M, H, K) with rows row_stride floats apart; cos, sin (M, K) */
    int h2 = K / 2;
    for (int i = 0; i < M; i++) {
        const float *c = cos + (size_t)i * K, *s = sin + (size_t)i * K;
        for (int h = 0; h < H; h++) {
            float *v = x + (size_t)i * row_stride + (size_t)h * K;
            for (int d = 0; d < h2; d++) {
                float a = v[d], b = v[d + h2];
                v[d] = a * c[d] - b * s[d];
                v[d + h2] = b * c[d + h2] + a * s[d + h2];
            }
        }
    }
}

void vr_softmax_row_cpu(float *x, int n)
{
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    if (mx == -INFINITY) {
        memset(x, 0, (size_t)n * sizeof *x);
        return;
    }
    float sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void vr_attn_segments_fwd_cpu(float *out, const float *qkv, int N, int H, int K, const int *cu,
                              int nseg, struct vr_ws *ws)
{
    /* out (N, H*K)  qkv (N, 3*H*K) */
    int D = H * K, ld = 3 * D;
    float scale = 1.0f / sqrtf((float)K);
    int maxlen = 0;
    for (int s = 0; s < nseg; s++)
        if (cu[s + 1] - cu[s] > maxlen) maxlen = cu[s + 1] - cu[s];
    float *S = vr_ws_floats(ws, (size_t)maxlen * maxlen);
    (void)N;
    for (int s = 0; s < nseg; s++) {
        int a = cu[s], L = cu[s + 1] - cu[s];
        if (L <= 0) continue;
        for (int h = 0; h < H; h++) {
            const float *q = qkv + (size_t)a * ld + (size_t)h * K;
            const float *k = q + D, *v = q + 2 * D;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, K, scale, q, ld, k, ld, 0.0f, S, L);
            for (int i = 0; i < L; i++) vr_softmax_row_cpu(S + (size_t)i * L, L);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, K, L, 1.0f, S, L, v, ld, 0.0f,
                        out + (size_t)a * D + (size_t)h * K, D);
        }
    }
}

void vr_attn_causal_fwd_cpu(float *out, const float *q, int Tq, int H, int KVH, int K,
                            const float *kc, const float *vc, int cap, int n, int q0,
                            const unsigned char *valid, struct vr_ws *ws)
{
    /* out (Tq, H*K)  q (Tq, H, K)  kc, vc (KVH, cap, K) */
    int D = H * K, G = H / KVH;
    float scale = 1.0f / sqrtf((float)K);
    float *S = vr_ws_floats(ws, (size_t)Tq * n);
    for (int h = 0; h < H; h++) {
        const float *kh = kc + (size_t)(h / G) * cap * K, *vh = vc + (size_t)(h / G) * cap * K;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tq, n, K, scale, q + (size_t)h * K, D, kh,
                    K, 0.0f, S, n);
        for (int i = 0; i < Tq; i++) {
            float *row = S + (size_t)i * n;
            int last = q0 + i; /* the newest key this query may see */
            for (int j = 0; j < n; j++)
                if (j > last || (valid && !valid[j])) row[j] = -INFINITY;
            vr_softmax_row_cpu(row, n);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tq, K, n, 1.0f, S, n, vh, K, 0.0f,
                    out + (size_t)h * K, D);
    }
}

/* ref.c: the plain-loop reference ops (ref.h), in double. Each is the
 * formula written as loops, with its derivation; no blocking, no threads,
 * no vector code, so a reader can check it against the math and the fast
 * variants can be checked against it (tests/unit/ops_ref.c). */
#include "cpu/ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- linear ----
 * y[n,o] = b[o] + sum_i x[n,i] w[o,i]. With L a function of y,
 * dL/dx[n,i] = sum_o dy[n,o] w[o,i], dL/dw[o,i] = sum_n dy[n,o] x[n,i],
 * dL/db[o] = sum_n dy[n,o]. */
void vr_linear_fwd_ref(double *y, const double *x, const double *w, const double *b, int N, int O, int I)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double s = b ? b[o] : 0;
            for (int i = 0; i < I; i++) s += x[(size_t)n * I + i] * w[(size_t)o * I + i];
            y[(size_t)n * O + o] = s;
        }
}

void vr_linear_bwd_ref(double *dx, double *dw, double *db, const double *dy, const double *x, const double *w,
                       int N, int O, int I)
{
    for (int n = 0; dx && n < N; n++)
        for (int i = 0; i < I; i++) {
            double s = 0;
            for (int o = 0; o < O; o++) s += dy[(size_t)n * O + o] * w[(size_t)o * I + i];
            dx[(size_t)n * I + i] = s;
        }
    for (int o = 0; dw && o < O; o++)
        for (int i = 0; i < I; i++) {
            double s = 0;
            for (int n = 0; n < N; n++) s += dy[(size_t)n * O + o] * x[(size_t)n * I + i];
            dw[(size_t)o * I + i] = s;
        }
    for (int o = 0; db && o < O; o++) {
        double s = 0;
        for (int n = 0; n < N; n++) s += dy[(size_t)n * O + o];
        db[o] = s;
    }
}

/* ---- RMSNorm ----
 * r = (sum_d x_d^2 / D + eps)^(-1/2), y_d = w_d x_d r. Since
 * dr/dx_j = -r^3 x_j / D:
 *   dx_j = r w_j dy_j - (r^3 / D) x_j sum_d dy_d w_d x_d,
 *   dw_d = sum over rows of dy_d x_d r. */
static double rms_r(const double *x, int D, double eps)
{
    double ss = 0;
    for (int d = 0; d < D; d++) ss += x[d] * x[d];
    return 1 / sqrt(ss / D + eps);
}

void vr_rmsnorm_fwd_ref(double *y, double *rstd, const double *x, const double *w, int N, int D, double eps)
{
    for (int n = 0; n < N; n++) {
        const double *xn = x + (size_t)n * D;
        double r = rms_r(xn, D, eps);
        if (rstd) rstd[n] = r;
        for (int d = 0; d < D; d++) y[(size_t)n * D + d] = w[d] * xn[d] * r;
    }
}

void vr_rmsnorm_bwd_ref(double *dx, double *dw, const double *dy, const double *x, const double *w, int N, int D,
                        double eps)
{
    if (dw) memset(dw, 0, (size_t)D * sizeof *dw);
    for (int n = 0; n < N; n++) {
        const double *xn = x + (size_t)n * D, *g = dy + (size_t)n * D;
        double r = rms_r(xn, D, eps), dot = 0;
        for (int d = 0; d < D; d++) dot += g[d] * w[d] * xn[d];
        for (int d = 0; dx && d < D; d++) dx[(size_t)n * D + d] = r * w[d] * g[d] - r * r * r / D * xn[d] * dot;
        for (int d = 0; dw && d < D; d++) dw[d] += g[d] * xn[d] * r;
    }
}

/* ---- RoPE ----
 * Rotate-half: with h = K/2 and a = x_d, b = x_{d+h} (d < h),
 *   x'_d = a c_d - b s_d,  x'_{d+h} = b c_{d+h} + a s_{d+h}
 * (for RoPE c_d = c_{d+h} = cos, s_d = s_{d+h} = sin of one angle; the tables
 * may differ, so the matrix is [c_d -s_d; s_{d+h} c_{d+h}]). Linear in x, so
 * the backward is the transpose [c_d s_{d+h}; -s_d c_{d+h}]. */
static void rope_ref(double *x, const float *cs, const float *sn, int N, int H, int K, int stride, int transpose)
{
    int h2 = K / 2;
    for (int n = 0; n < N; n++)
        for (int hh = 0; hh < H; hh++) {
            double *v = x + (size_t)n * stride + (size_t)hh * K;
            const float *c = cs + (size_t)n * K, *s = sn + (size_t)n * K;
            for (int d = 0; d < h2; d++) {
                double a = v[d], b = v[d + h2];
                if (!transpose) {
                    v[d] = a * c[d] - b * s[d];
                    v[d + h2] = b * c[d + h2] + a * s[d + h2];
                } else {
                    v[d] = a * c[d] + b * s[d + h2];
                    v[d + h2] = b * c[d + h2] - a * s[d];
                }
            }
        }
}

void vr_rope_fwd_ref(double *x, const float *cos, const float *sin, int N, int H, int K, int stride)
{
    rope_ref(x, cos, sin, N, H, K, stride, 0);
}

void vr_rope_bwd_ref(double *dx, const float *cos, const float *sin, int N, int H, int K, int stride)
{
    rope_ref(dx, cos, sin, N, H, K, stride, 1);
}

/* ---- SwiGLU, GELU, add ----
 * y = g s u with s = 1/(1+e^-g); s' = s (1 - s), so
 *   dg = dy u (s + g s (1 - s)) = dy u s (1 + g (1 - s)),  du = dy g s.
 * gelu(x) = x Phi(x), Phi(x) = (1 + erf(x/sqrt 2))/2; gelu' = Phi(x) + x phi(x),
 * phi(x) = e^(-x^2/2) / sqrt(2 pi). */
void vr_swiglu_fwd_ref(double *y, const double *g, const double *u, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = g[i] / (1 + exp(-g[i])) * u[i];
}

void vr_swiglu_bwd_ref(double *dg, double *du, const double *dy, const double *g, const double *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double s = 1 / (1 + exp(-g[i])), d = dy[i];
        if (dg) dg[i] = d * u[i] * s * (1 + g[i] * (1 - s));
        if (du) du[i] = d * g[i] * s;
    }
}

void vr_gelu_fwd_ref(double *y, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = x[i] * 0.5 * (1 + erf(x[i] / sqrt(2.0)));
}

void vr_gelu_bwd_ref(double *dx, const double *dy, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double phi = exp(-0.5 * x[i] * x[i]) / sqrt(2 * M_PI);
        dx[i] = dy[i] * (0.5 * (1 + erf(x[i] / sqrt(2.0))) + x[i] * phi);
    }
}

void vr_add_fwd_ref(double *y, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* ---- embedding rows ----
 * x_i = T[idx_i]; as a function of T, dL/dT[r] = sum over i with idx_i = r
 * of dL/dx_i. */
void vr_embed_fwd_ref(double *x, const double *table, const int32_t *idx, int N, int D)
{
    for (int i = 0; i < N; i++)
        for (int d = 0; idx[i] >= 0 && d < D; d++) x[(size_t)i * D + d] = table[(size_t)idx[i] * D + d];
}

void vr_embed_bwd_ref(double *dtable, const double *dx, const int32_t *idx, int N, int D)
{
    for (int i = 0; i < N; i++)
        for (int d = 0; idx[i] >= 0 && d < D; d++) dtable[(size_t)idx[i] * D + d] += dx[(size_t)i * D + d];
}

/* ---- attention ----
 * For query row i, head h (kv head h / (H/KVH)), over the keys j it sees:
 *   s_j = q_i . k_j / sqrt(K),  m = max s,  Z = sum e^(s_j - m),
 *   p_j = e^(s_j - m) / Z,  out_i = sum p_j v_j,  lse_i = m + log Z.
 * Backward (L a function of out): dv_j += p_j dout_i; dp_j = dout_i . v_j;
 * the softmax Jacobian gives ds_j = p_j (dp_j - sum_l p_l dp_l), and
 * sum_l p_l dp_l = dout_i . out_i; dq_i = sum ds_j k_j / sqrt K,
 * dk_j += ds_j q_i / sqrt K. */

/* The keys row i (0-based inside the call) sees: [*j0, *j1) of segment rows,
 * or of the cache; *seg_base the first key's row. */
static void attn_keys(const struct vr_attn_dims *d, int i, int *j0, int *j1)
{
    if (d->cu) {
        int s = 0;
        while (d->cu[s + 1] <= i) s++;
        *j0 = d->cu[s];
        *j1 = d->causal ? i + 1 : d->cu[s + 1];
    } else {
        *j0 = 0;
        *j1 = d->q0 + i + 1 < d->nkeys ? d->q0 + i + 1 : d->nkeys;
    }
}

static const double *attn_row(const double *base, const struct vr_attn_dims *d, int j, int kh)
{
    if (d->cu) return base + (size_t)j * d->kv_stride + (size_t)kh * d->K;
    return base + ((size_t)kh * d->cap + j) * d->K; /* cache (KVH, cap, K) */
}

/* p (scratch of the row's key count) for query i, head h; returns the count
 * of keys seen (0: none) and sets *lse */
static int attn_probs(double *p, const double *q, const double *k, const struct vr_attn_dims *d, int i, int h,
                      int *j0, double *lse)
{
    int j1, kh = h / (d->H / d->KVH), seen = 0;
    attn_keys(d, i, j0, &j1);
    const double *qi = q + (size_t)i * d->q_stride + (size_t)h * d->K;
    double m = -INFINITY, z = 0;
    for (int j = *j0; j < j1; j++) {
        p[j - *j0] = -INFINITY;
        if (!d->cu && d->valid && !d->valid[j]) continue;
        const double *kj = attn_row(k, d, j, kh);
        double s = 0;
        for (int e = 0; e < d->K; e++) s += qi[e] * kj[e];
        p[j - *j0] = s / sqrt((double)d->K);
        if (p[j - *j0] > m) m = p[j - *j0];
        seen++;
    }
    for (int j = *j0; j < j1; j++) z += p[j - *j0] = seen ? exp(p[j - *j0] - m) : 0;
    for (int j = *j0; seen && j < j1; j++) p[j - *j0] /= z;
    *lse = seen ? m + log(z) : -INFINITY;
    return seen ? j1 - *j0 : 0;
}

void vr_attn_fwd_ref(double *out, double *lse, const double *q, const double *k, const double *v,
                     const struct vr_attn_dims *d)
{
    int maxk = d->cu ? d->cu[d->nseg] : d->nkeys;
    double *p = vr_xmalloc(((size_t)maxk + 1) * sizeof *p);
    for (int i = 0; i < d->N; i++)
        for (int h = 0; h < d->H; h++) {
            int j0, kh = h / (d->H / d->KVH);
            double l;
            int L = attn_probs(p, q, k, d, i, h, &j0, &l);
            double *o = out + ((size_t)i * d->H + h) * d->K;
            for (int e = 0; e < d->K; e++) {
                double s = 0;
                for (int j = 0; j < L; j++) s += p[j] * attn_row(v, d, j0 + j, kh)[e];
                o[e] = s;
            }
            if (lse) lse[(size_t)i * d->H + h] = l;
        }
    free(p);
}

void vr_attn_bwd_ref(double *dq, double *dk, double *dv, const double *dout, const double *q, const double *k,
                     const double *v, const struct vr_attn_dims *d)
{
    int N = d->N, K = d->K, G = d->H / d->KVH;
    double sc = 1 / sqrt((double)K), *p = vr_xmalloc(((size_t)N + 1) * sizeof *p), *dp = vr_xmalloc(((size_t)N + 1) * sizeof *dp);
    for (int i = 0; i < N; i++) {
        for (int e = 0; dq && e < d->H * K; e++) dq[(size_t)i * d->q_stride + e] = 0;
        for (int e = 0; e < d->KVH * K; e++) {
            if (dk) dk[(size_t)i * d->kv_stride + e] = 0;
            if (dv) dv[(size_t)i * d->kv_stride + e] = 0;
        }
    }
    for (int i = 0; i < N; i++)
        for (int h = 0; h < d->H; h++) {
            int j0, kh = h / G;
            double l, D = 0;
            int L = attn_probs(p, q, k, d, i, h, &j0, &l);
            const double *go = dout + ((size_t)i * d->H + h) * K, *qi = q + (size_t)i * d->q_stride + (size_t)h * K;
            for (int j = 0; j < L; j++) {
                const double *vj = v + (size_t)(j0 + j) * d->kv_stride + (size_t)kh * K;
                dp[j] = 0;
                for (int e = 0; e < K; e++) dp[j] += go[e] * vj[e];
                D += p[j] * dp[j];
            }
            for (int j = 0; j < L; j++) {
                size_t kv = (size_t)(j0 + j) * d->kv_stride + (size_t)kh * K;
                double ds = p[j] * (dp[j] - D);
                for (int e = 0; e < K; e++) {
                    if (dq) dq[(size_t)i * d->q_stride + (size_t)h * K + e] += sc * ds * k[kv + e];
                    if (dk) dk[kv + e] += sc * ds * qi[e];
                    if (dv) dv[kv + e] += p[j] * go[e];
                }
            }
        }
    free(p), free(dp);
}

/* ---- token log-probabilities ----
 * l_v = h . w_v / T, logp = l_t - log sum_v e^(l_v), p_v = e^(l_v) / sum,
 * entropy = -sum p_v log p_v. d logp / d l_v = [v == t] - p_v, so with
 * g = dlogp / T: dh = g sum_v ([v == t] - p_v) w_v, dw_v = g ([v == t] - p_v) h. */
static double lp_row(double *p, const double *h, const double *w, int D, int V, double temp)
{
    double m = -INFINITY, z = 0;
    for (int v = 0; v < V; v++) {
        double s = 0;
        for (int e = 0; e < D; e++) s += h[e] * w[(size_t)v * D + e];
        p[v] = s / temp;
        if (p[v] > m) m = p[v];
    }
    for (int v = 0; v < V; v++) z += exp(p[v] - m);
    return m + log(z); /* log sum e^l; p holds the logits */
}

void vr_logp_fwd_ref(double *logp, double *ent, double *prob, const double *h, const double *w,
                     const int32_t *target, int N, int D, int V, double temp)
{
    double *p = vr_xmalloc((size_t)V * sizeof *p);
    for (int n = 0; n < N; n++) {
        double lz = lp_row(p, h + (size_t)n * D, w, D, V, temp), e = 0;
        logp[n] = p[target[n]] - lz;
        for (int v = 0; v < V; v++) e -= exp(p[v] - lz) * (p[v] - lz);
        if (ent) ent[n] = e;
        for (int v = 0; prob && v < V; v++) prob[(size_t)n * V + v] = exp(p[v] - lz);
    }
    free(p);
}

void vr_logp_bwd_ref(double *dh, double *dw, const double *dlogp, const double *h, const double *w,
                     const int32_t *target, int N, int D, int V, double temp)
{
    double *p = vr_xmalloc((size_t)V * sizeof *p);
    if (dw) memset(dw, 0, (size_t)V * D * sizeof *dw);
    for (int n = 0; n < N; n++) {
        const double *hn = h + (size_t)n * D;
        double lz = lp_row(p, hn, w, D, V, temp), g = dlogp[n] / temp;
        for (int e = 0; dh && e < D; e++) dh[(size_t)n * D + e] = 0;
        for (int v = 0; v < V; v++) {
            double dl = g * ((v == target[n]) - exp(p[v] - lz));
            for (int e = 0; e < D; e++) {
                if (dh) dh[(size_t)n * D + e] += dl * w[(size_t)v * D + e];
                if (dw) dw[(size_t)v * D + e] += dl * hn[e];
            }
        }
    }
    free(p);
}

/* ---- sampling ---- */

void vr_softmax_ref(double *y, const double *x, int n)
{
    double m = vr_max_ref(x, n), z = 0;
    for (int i = 0; i < n; i++) z += y[i] = m == -INFINITY ? 0 : exp(x[i] - m);
    for (int i = 0; z > 0 && i < n; i++) y[i] /= z;
}

double vr_max_ref(const double *x, int n)
{
    double m = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}

double vr_exp_ref(double *out, const double *x, int n, double scale, double shift)
{
    double z = 0;
    for (int i = 0; i < n; i++) z += out[i] = exp(x[i] * scale - shift);
    return z;
}

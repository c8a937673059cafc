/* sample.c: HF-style logits processing and sampling (see sample.h). */
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "err.h"
#include "rng.h"

void vr_sample_ws_init(struct vr_sample_ws *w, int V)
{
    w->V = V;
    w->l = vr_xmalloc((size_t)V * sizeof *w->l);
    w->idx = vr_xmalloc((size_t)V * sizeof *w->idx);
    w->seen = vr_xcalloc((size_t)V, 1);
}

void vr_sample_ws_release(struct vr_sample_ws *w)
{
    free(w->l), free(w->idx), free(w->seen);
    memset(w, 0, sizeof *w);
}

float vr_sample_uniform(uint64_t seed, uint64_t task_hash, uint32_t completion, uint32_t position)
{
    uint32_t ctr[4] = {position, completion, (uint32_t)task_hash, (uint32_t)(task_hash >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, out[4];
    vr_philox(ctr, key, out);
    return vr_u32_to_unit_float(out[0]);
}

static __thread const float *cmp_base; /* qsort has no context argument */
static int cmp_desc(const void *a, const void *b)
{
    float x = cmp_base[*(const int *)a], y = cmp_base[*(const int *)b];
    if (x != y) return x > y ? -1 : 1;
    return *(const int *)a - *(const int *)b;
}

static int cmp_id(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* Draw from softmax(l / T) truncated by top-k, top-p and min-p (l: the
 * penalised logits, overwritten). */
static int32_t draw(float *l, const struct vr_sampling *s, float u, struct vr_sample_ws *w)
{
    int V = w->V;
    int32_t tok;
    for (int i = 0; i < V; i++) l[i] /= s->temperature;
    int n = V;                      /* candidates, sorted by logit when truncating */
    int sorted = s->top_k > 0 || s->top_p < 1.0f || s->min_p > 0;
    for (int i = 0; i < V; i++) w->idx[i] = i;
    if (sorted) {
        cmp_base = l;
        qsort(w->idx, (size_t)V, sizeof *w->idx, cmp_desc);
        if (s->top_k > 0 && s->top_k < n) { /* ties with the k-th are kept, as HF */
            float kth = l[w->idx[s->top_k - 1]];
            n = s->top_k;
            while (n < V && l[w->idx[n]] == kth) n++;
        }
        double mx = l[w->idx[0]], z = 0;
        for (int i = 0; i < n; i++) z += exp((double)l[w->idx[i]] - mx);
        if (s->top_p < 1.0f) { /* smallest prefix whose mass reaches top_p */
            double c = 0;
            int keep = n;
            for (int i = 0; i < n; i++) {
                c += exp((double)l[w->idx[i]] - mx) / z;
                if (c >= s->top_p) {
                    keep = i + 1;
                    break;
                }
            }
            n = keep;
        }
        if (s->min_p > 0) {
            z = 0; /* over what top-k and top-p kept, as HF's warpers chain */
            for (int i = 0; i < n; i++) z += exp((double)l[w->idx[i]] - mx);
            double pmax = 1.0 / z; /* exp(mx - mx) / z */
            int keep = 1;
            while (keep < n && exp((double)l[w->idx[keep]] - mx) / z >= s->min_p * pmax) keep++;
            n = keep;
        }
        /* the draw goes over kept ids in increasing order */
        qsort(w->idx, (size_t)n, sizeof *w->idx, cmp_id);
    }
    double mx = -INFINITY, z = 0;
    for (int i = 0; i < n; i++)
        if (l[w->idx[i]] > mx) mx = l[w->idx[i]];
    for (int i = 0; i < n; i++) z += exp((double)l[w->idx[i]] - mx);
    double target = (double)u * z, c = 0;
    tok = w->idx[n - 1];
    for (int i = 0; i < n; i++) {
        c += exp((double)l[w->idx[i]] - mx);
        if (c > target) {
            tok = w->idx[i];
            break;
        }
    }
    return tok;
}

int32_t vr_sample(const float *logits, const struct vr_sampling *s, const int32_t *seen, int nseen,
                  float u, float *logp, struct vr_sample_ws *w)
{
    int V = w->V;
    float *l = w->l;
    float T = s->greedy ? 1.0f : s->temperature, inv = 1.0f / T;
    /* the sampling policy's log-probs: softmax of the raw logits / T; w->l
     * keeps exp(l_i / T - max) for the plain draw below */
    float mx = vr_max_infer(logits, V) * inv;
    double z = vr_exp_infer(l, logits, V, inv, mx);
    int plain = s->rep_penalty == 1.0f && s->top_k <= 0 && s->top_p >= 1.0f && s->min_p <= 0;
    int32_t tok = 0;
    if (plain && s->greedy) {
        float best = logits[0];
        for (int i = 1; i < V; i++)
            if (logits[i] > best) best = logits[i], tok = i;
    } else if (plain) { /* inverse CDF over the stored exponentials */
        double target = (double)u * z, c = 0;
        tok = V - 1;
        for (int i = 0; i < V; i++) {
            c += l[i];
            if (c > target) {
                tok = i;
                break;
            }
        }
    } else {
        memcpy(l, logits, (size_t)V * sizeof *l);
        if (s->rep_penalty != 1.0f) {
            for (int i = 0; i < nseen; i++) {
                int id = seen[i];
                if (id < 0 || id >= V || w->seen[id]) continue;
                w->seen[id] = 1;
                l[id] = l[id] < 0 ? l[id] * s->rep_penalty : l[id] / s->rep_penalty;
            }
            for (int i = 0; i < nseen; i++)
                if (seen[i] >= 0 && seen[i] < V) w->seen[seen[i]] = 0;
        }
        if (s->greedy) {
            for (int i = 1; i < V; i++)
                if (l[i] > l[tok]) tok = i;
        } else {
            tok = draw(l, s, u, w);
        }
    }
    *logp = (float)((double)(logits[tok] * inv) - mx - log(z));
    return tok;
}

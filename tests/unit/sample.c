/* sample.c: vr_sample draws from softmax(logits / T) truncated by top-k, top-p
 * and min-p exactly as HF's warpers define them (chi-square over 40,000
 * draws, with the expected distribution computed here in double), greedy and
 * repetition penalty follow HF, and a wrong temperature or cut-off fails the
 * same test (so it has the power to catch one). */
#include <math.h>

#include "sample.h"

#include "../tap.h"

#define V 12
#define N 40000

/* The distribution HF would sample from, computed directly. */
static void expected(const float *logits, const struct vr_sampling *s, double *p)
{
    double l[V], mx = -INFINITY, z = 0;
    int ord[V];
    for (int i = 0; i < V; i++) l[i] = logits[i] / s->temperature, ord[i] = i;
    for (int i = 0; i < V; i++) /* sort ids by logit, descending */
        for (int j = i + 1; j < V; j++)
            if (l[ord[j]] > l[ord[i]]) { int t = ord[i]; ord[i] = ord[j]; ord[j] = t; }
    int keep[V] = {0}, n = V;
    if (s->top_k > 0 && s->top_k < V) n = s->top_k;
    for (int i = 0; i < n; i++) if (l[ord[i]] > mx) mx = l[ord[i]];
    for (int i = 0; i < n; i++) z += exp(l[ord[i]] - mx);
    if (s->top_p < 1) {
        double c = 0;
        for (int i = 0; i < n; i++) {
            c += exp(l[ord[i]] - mx) / z;
            if (c >= s->top_p) { n = i + 1; break; }
        }
    }
    for (int i = 0; i < n; i++) keep[ord[i]] = 1;
    z = 0;
    for (int i = 0; i < V; i++) if (keep[i]) z += exp(l[i] - mx);
    for (int i = 0; i < V; i++) p[i] = keep[i] ? exp(l[i] - mx) / z : 0;
}

/* chi-square statistic of N draws against p, and its degrees of freedom */
static double chi2(const float *logits, const struct vr_sampling *draw, const double *p, int *dof)
{
    struct vr_sample_ws w;
    vr_sample_ws_init(&w, V);
    long cnt[V] = {0};
    for (int i = 0; i < N; i++) {
        float lp;
        cnt[vr_sample(logits, draw, NULL, 0, vr_sample_uniform(42, 7, (uint32_t)(i % 8), (uint32_t)(i / 8)), &lp, &w)]++;
    }
    double x = 0;
    *dof = -1;
    for (int i = 0; i < V; i++) {
        if (p[i] == 0) {
            if (cnt[i]) { /* drew a token that was cut off */
                vr_sample_ws_release(&w);
                return INFINITY;
            }
            continue;
        }
        double e = p[i] * N;
        x += (cnt[i] - e) * (cnt[i] - e) / e;
        (*dof)++;
    }
    vr_sample_ws_release(&w);
    return x;
}

/* chi-square critical values at p = 0.001 for 1..11 degrees of freedom */
static const double crit[] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88, 29.59, 31.26};

int main(void)
{
    float logits[V] = {2.0f, 1.5f, 1.4f, 0.3f, -0.2f, 0.9f, 1.1f, -1.0f, 0.0f, 0.5f, 1.45f, -2.0f};
    struct vr_sampling cases[] = {
        {.temperature = 1.0f, .top_p = 1.0f, .rep_penalty = 1.0f},
        {.temperature = 0.7f, .top_p = 1.0f, .rep_penalty = 1.0f},
        {.temperature = 1.3f, .top_k = 5, .top_p = 1.0f, .rep_penalty = 1.0f},
        {.temperature = 1.0f, .top_p = 0.8f, .rep_penalty = 1.0f},
        {.temperature = 0.9f, .top_k = 8, .top_p = 0.9f, .rep_penalty = 1.0f},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        double p[V];
        int dof;
        expected(logits, &cases[c], p);
        double x = chi2(logits, &cases[c], p, &dof);
        ok(dof >= 1 && x < crit[dof], "T=%.1f top_k=%d top_p=%.1f: chi2 %.1f < %.1f (%d dof, %d draws)",
           cases[c].temperature, cases[c].top_k, cases[c].top_p, x, crit[dof > 0 ? dof : 1], dof, N);
        /* the same draws against a wrong distribution must fail */
        struct vr_sampling wrong = cases[c];
        wrong.temperature *= 1.25f;
        double q[V];
        expected(logits, &wrong, q);
        x = chi2(logits, &cases[c], q, &dof);
        ok(!(x < crit[dof > 0 ? dof : 1]), "  ... and is told apart from T x 1.25 (chi2 %.1f)", x);
        if (cases[c].top_k || cases[c].top_p < 1) {
            wrong = cases[c];
            wrong.top_k = cases[c].top_k ? cases[c].top_k + 2 : 0;
            wrong.top_p = cases[c].top_p < 1 ? cases[c].top_p - 0.15f : 1.0f;
            expected(logits, &wrong, q);
            x = chi2(logits, &cases[c], q, &dof);
            ok(!(x < crit[dof > 0 ? dof : 1]), "  ... and from another cut-off (chi2 %.1f)", x);
        }
    }
    /* min-p: only tokens with p >= min_p * p_max are ever drawn */
    struct vr_sample_ws w;
    vr_sample_ws_init(&w, V);
    struct vr_sampling mp = {.temperature = 1.0f, .top_p = 1.0f, .min_p = 0.5f, .rep_penalty = 1.0f};
    int bad = 0;
    for (int i = 0; i < 5000; i++) {
        float lp;
        int t = vr_sample(logits, &mp, NULL, 0, vr_sample_uniform(1, 2, 0, (uint32_t)i), &lp, &w);
        if (logits[t] < 2.0f + logf(0.5f)) bad++;
    }
    ok(bad == 0, "min-p 0.5 keeps only tokens within log 2 of the best (%d outside)", bad);
    /* greedy and the repetition penalty */
    struct vr_sampling g = {.greedy = 1, .temperature = 1.0f, .top_p = 1.0f, .rep_penalty = 1.0f};
    float lp;
    is_int(vr_sample(logits, &g, NULL, 0, 0.5f, &lp, &w), 0, "greedy takes the argmax");
    double z = 0;
    for (int i = 0; i < V; i++) z += exp(logits[i]);
    ok(fabs(lp - (2.0 - log(z))) < 1e-6, "greedy logp is log softmax of the raw logits (%.7f)", lp);
    g.rep_penalty = 1.5f;
    int32_t seen[3] = {0, 0, 11};
    is_int(vr_sample(logits, &g, seen, 3, 0.5f, &lp, &w), 1, "penalty 1.5 on token 0 (2.0 -> 1.33): token 1 (1.5) wins");
    ok(fabs(lp - (1.5 - log(z))) < 1e-6, "logp ignores the penalty, as TRL's");
    float tie[V] = {0};
    tie[3] = tie[7] = 1.0f;
    g.rep_penalty = 1.0f;
    is_int(vr_sample(tie, &g, NULL, 0, 0.5f, &lp, &w), 3, "greedy ties go to the first id, as torch.argmax");
    float u0 = vr_sample_uniform(9, 123, 4, 17), u1 = vr_sample_uniform(9, 123, 4, 17);
    ok(u0 == u1 && u0 >= 0 && u0 < 1, "the uniform is a pure function of (seed, task, completion, position)");
    ok(vr_sample_uniform(9, 123, 5, 17) != u0 && vr_sample_uniform(9, 124, 4, 17) != u0, "and changes with each");
    vr_sample_ws_release(&w);
    return done_testing();
}

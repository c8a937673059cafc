/* bench/forward: Qwen2.5-VL forward speed on the CPU — vision images/s,
 * prefill tokens/s and decode ms/token — on one image + text prompt, as
 * bench/forward.sh compares against transformers. Also decode's memory
 * roofline: the bytes of the weights one decode step reads (the decoder and
 * the LM head, not the vision tower; the KV cache of a short prompt is left
 * out) over the read bandwidth of the same threads on a 1 GiB buffer
 * (STREAM-style, best of 5). Prints one JSON line.
 *   build/bench/forward MODEL_DIR [--image-side 448] [--text 64] [--decode 32] [--repeats 3] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/pool.h"
#include "progress.h"
#include "qwen.h"
#include "rng.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct sum {
    const float *a;
    size_t per;      /* floats per chunk */
    double part[64]; /* one per chunk */
};

static void sum_range(void *ctx, int b, int e)
{
    struct sum *s = ctx;
    for (int c = b; c < e; c++) {
        const float *p = s->a + (size_t)c * s->per;
        float acc[16] = {0};
        for (size_t i = 0; i < s->per; i += 16) {
            __builtin_prefetch(p + i + 512); /* 2 KiB ahead, as the GEMV does */
            for (int j = 0; j < 16; j++) acc[j] += p[i + j];
        }
        double t = 0;
        for (int j = 0; j < 16; j++) t += acc[j];
        s->part[c] = t;
    }
}

/* bytes/s the pool's threads read from a 1 GiB buffer */
static double read_bandwidth(void)
{
    size_t n = (size_t)1 << 28;
    float *a = malloc(n * 4);
    for (size_t i = 0; i < n; i++) a[i] = 1.0f;
    struct sum s = {a, n / 64, {0}};
    double best = 0;
    for (int rep = 0; rep < 6; rep++) {
        double t = vr_now();
        vr_parallel_for(64, sum_range, &s);
        t = vr_now() - t;
        if (rep && n * 4 / t > best) best = n * 4 / t; /* rep 0 warms up */
    }
    free(a);
    return best;
}

/* bytes of the weights one decode step reads */
static double decode_bytes(const struct vr_model *m)
{
    double b = 0;
    for (int i = 0; i < m->nparams; i++) {
        const struct vr_param *p = &m->params[i];
        if (p->tied || !strncmp(p->name, "visual.", 7)) continue;
        if (&p->t == m->embed && !m->cfg.text.tie) continue; /* untied: one row of it per token */
        double n = 1;
        for (int d = 0; d < p->ndim; d++) n *= (double)p->shape[d];
        b += n * vr_dtype_size(p->t.dtype);
    }
    return b;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: forward MODEL_DIR [--image-side N] [--text N] [--decode N] [--repeats N]\n");
        return 2;
    }
    int side = 448, ntext = 64, ndec = 32, reps = 3;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--image-side")) side = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--text")) ntext = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--decode")) ndec = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeats")) reps = atoi(argv[i + 1]);
    }
    struct vr_model m;
    struct vr_err err;
    double t0 = vr_now();
    if (vr_model_load(&m, argv[1], &err)) {
        fprintf(stderr, "forward: %s\n", err.msg);
        return 1;
    }
    double t_load = vr_now() - t0;
    const struct vr_model_config *c = &m.cfg;
    int g = side / 14, grid[1][3] = {{1, g, g}}, npatch = g * g, nimg = npatch / 4;
    int cols = 3 * 2 * 14 * 14, D = c->text.hidden, V = c->text.vocab;
    float *pix = malloc((size_t)npatch * cols * 4), *vis = malloc((size_t)nimg * D * 4);
    struct vr_rng r;
    vr_rng_init(&r, 1, 0);
    for (size_t i = 0; i < (size_t)npatch * cols; i++) pix[i] = 2 * vr_rng_float(&r) - 1;
    /* prompt: a few text tokens, the image, the rest text (as the chat template) */
    int T = ntext + nimg + 2;
    int32_t *ids = malloc((size_t)T * 4);
    int k = 0;
    for (int i = 0; i < 15; i++) ids[k++] = 100 + i;
    ids[k++] = c->vision_start_id;
    for (int i = 0; i < nimg; i++) ids[k++] = c->image_token_id;
    ids[k++] = c->vision_end_id;
    for (; k < T; k++) ids[k] = 200 + k % 1000;
    struct vr_ws ws = {0};
    struct vr_kvcache kv;
    if (vr_kvcache_init(&kv, c, 1, T + ndec + 1, &err)) return 1;
    float *logits = malloc((size_t)V * 4);
    double tv[32], tp[32], td[32];
    if (reps > 32) reps = 32;
    for (int rep = -1; rep < reps; rep++) { /* rep -1 warms up */
        vr_ws_reset(&ws);
        double a = vr_now();
        if (vr_vision_fwd(&m, vis, pix, 1, (const int(*)[3])grid, &ws, &err)) return 1;
        double b = vr_now();
        vr_ws_reset(&ws);
        if (vr_lm_prefill(&m, &kv, logits, 0, ids, NULL, 1, T, vis, nimg, 1, (const int(*)[3])grid, &ws, &err)) {
            fprintf(stderr, "forward: %s\n", err.msg);
            return 1;
        }
        double cc = vr_now();
        for (int s = 0; s < ndec; s++) {
            int best = 0;
            for (int v = 1; v < V; v++)
                if (logits[v] > logits[best]) best = v;
            int32_t id = best;
            vr_ws_reset(&ws);
            if (vr_lm_decode(&m, &kv, logits, &id, &ws, &err)) return 1;
        }
        double d = vr_now();
        if (rep >= 0) tv[rep] = b - a, tp[rep] = cc - b, td[rep] = (d - cc) / ndec;
    }
    double mv = median(tv, reps), mp = median(tp, reps), md = median(td, reps);
    double wb = decode_bytes(&m), bw = read_bandwidth();
    printf("{\"impl\":\"vr\",\"model\":\"%s\",\"dtype\":\"%s\",\"image_side\":%d,\"patches\":%d,"
           "\"prompt_tokens\":%d,\"decode_tokens\":%d,\"load_s\":%.3f,\"vision_s\":%.4f,\"images_per_s\":%.3f,"
           "\"prefill_s\":%.4f,\"prefill_tokens_per_s\":%.1f,\"decode_ms_per_token\":%.2f,"
           "\"decode_weight_bytes\":%.0f,\"read_gb_per_s\":%.2f,\"roofline_ms\":%.2f,\"of_roofline\":%.3f}\n",
           argv[1], vr_dtype_name(m.embed->dtype), side, npatch, T, ndec, t_load, mv, 1 / mv, mp, T / mp,
           1000 * md, wb, bw / 1e9, 1000 * wb / bw, wb / bw / md);
    vr_kvcache_release(&kv);
    vr_ws_release(&ws);
    vr_model_release(&m);
    free(pix), free(vis), free(ids), free(logits);
    return 0;
}

/* qwen.c: the Qwen2.5-VL forward against transformers (fp32, eager) on the
 * tiny golden model of tests/golden/make_model_golden.py: vision tower, M-RoPE
 * position ids, prefill logits of a left-padded batch with three images, one
 * decode step; and decode-with-cache equal to prefill. */
#include <math.h>

#include "qwen.h"

#include "../tap.h"

#define DIR "tests/golden/model"

/* max |a - b| / max |b| over the selected rows */
static double rel_err(const float *a, const float *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d; /* NaN propagates */
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static const void *get(struct vr_safetensors *st, const char *name, enum vr_dtype dt, int64_t *numel)
{
    struct vr_tensor t;
    struct vr_err err;
    if (vr_safetensors_view(st, name, &t, &err) || t.dtype != dt) {
        diag("fixture tensor %s: %s", name, err.msg);
        exit(1);
    }
    if (numel) *numel = vr_tensor_numel(&t);
    return t.data;
}

/* qwen.t [CKPT IO]: the golden model by default; tests/golden/check_vr_init.py
 * runs it on a vr-init checkpoint and transformers' outputs for it. */
int main(int argc, char **argv)
{
    struct vr_model m;
    struct vr_err err;
    const char *ckpt = argc > 2 ? argv[1] : DIR "/ckpt", *iop = argc > 2 ? argv[2] : DIR "/io.safetensors";
    int golden = argc <= 2;
    if (vr_model_load(&m, ckpt, &err)) {
        ok(0, "load the golden checkpoint: %s", err.msg);
        return done_testing();
    }
    ok(1, "load the golden checkpoint");
    if (golden) {
        is_int(m.cfg.text.layers, 2, "2 decoder layers");
        is_int(m.cfg.text.kv_heads, 2, "GQA: 2 KV heads for 4 query heads");
        is_int(m.cfg.vision.nfullatt, 1, "one full-attention vision block");
        ok(!m.cfg.text.tie && m.lm_head->data != m.embed->data, "untied lm_head loaded");
    }

    struct vr_safetensors io;
    if (vr_safetensors_open(&io, iop, &err)) {
        ok(0, "open fixtures: %s", err.msg);
        return done_testing();
    }
    const struct vr_st_entry *e = vr_safetensors_find(&io, "input_ids");
    int B = (int)e->shape[0], T = (int)e->shape[1];
    const int64_t *ids64 = get(&io, "input_ids", VR_DTYPE_I64, NULL);
    const int64_t *mask64 = get(&io, "attention_mask", VR_DTYPE_I64, NULL);
    int64_t ngrid, npix, nvis;
    const int64_t *g64 = get(&io, "image_grid_thw", VR_DTYPE_I64, &ngrid);
    const float *pix = get(&io, "pixel_values", VR_DTYPE_F32, &npix);
    const float *vis_ref = get(&io, "vision_embeds", VR_DTYPE_F32, &nvis);
    const int64_t *pos_ref = get(&io, "position_ids", VR_DTYPE_I64, NULL);
    const int64_t *delta_ref = get(&io, "rope_deltas", VR_DTYPE_I64, NULL);
    const float *logits_ref = get(&io, "logits", VR_DTYPE_F32, NULL);
    const int64_t *next64 = get(&io, "next_ids", VR_DTYPE_I64, NULL);
    const float *next_ref = get(&io, "next_logits", VR_DTYPE_F32, NULL);
    int nimg = (int)(ngrid / 3), V = m.cfg.text.vocab, D = m.cfg.text.hidden;
    int grid[8][3];
    for (int i = 0; i < nimg; i++)
        for (int k = 0; k < 3; k++) grid[i][k] = (int)g64[i * 3 + k];
    int32_t *ids = vr_xmalloc((size_t)B * T * 4);
    unsigned char *mask = vr_xmalloc((size_t)B * T);
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)ids64[i], mask[i] = (unsigned char)mask64[i];

    struct vr_ws ws = {0};
    float *vis = vr_xmalloc((size_t)nvis * 4);
    ok(vr_vision_fwd(&m, vis, pix, nimg, (const int(*)[3])grid, &ws, &err) == 0, "vision forward");
    double r = rel_err(vis, vis_ref, (size_t)nvis);
    ok(r < 1e-4, "vision embeddings match transformers (rel err %.2e, 3 images, windows + full attention)", r);

    int pos_ok = 1, used = 0;
    for (int b = 0; b < B; b++) {
        int32_t pos[3 * 256];
        int delta, nu;
        VR_ASSERT(T <= 256);
        if (vr_rope_index(pos, &delta, &nu, ids + b * T, mask + b * T, T, &m.cfg, nimg - used,
                          (const int(*)[3])grid + used, &err)) {
            pos_ok = 0;
            diag("%s", err.msg);
            break;
        }
        used += nu;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < T; i++)
                if (pos[c * T + i] != pos_ref[((size_t)c * B + b) * T + i]) pos_ok = 0;
        if (delta != delta_ref[b]) pos_ok = 0;
    }
    ok(pos_ok && used == nimg, "M-RoPE position ids and deltas equal get_rope_index (left padding)");

    struct vr_kvcache kv;
    ok(vr_kvcache_init(&kv, &m.cfg, B, T + 4, &err) == 0, "KV cache");
    float *logits = vr_xmalloc((size_t)B * T * V * 4);
    vr_ws_reset(&ws);
    int rc = vr_lm_prefill(&m, &kv, logits, 1, ids, mask, B, T, vis_ref, (int)(nvis / D), nimg,
                           (const int(*)[3])grid, &ws, &err);
    ok(rc == 0, "prefill a batch of 2 with left padding%s%s", rc ? ": " : "", rc ? err.msg : "");
    double worst = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++)
            if (mask[b * T + i]) {
                double ri = rel_err(logits + ((size_t)b * T + i) * V, logits_ref + ((size_t)b * T + i) * V, (size_t)V);
                if (!(ri <= worst)) worst = ri;
            }
    ok(worst < 1e-4, "prefill logits match transformers at every real position (worst rel err %.2e)", worst);

    int32_t nx[8];
    for (int b = 0; b < B; b++) nx[b] = (int32_t)next64[b];
    float *dl = vr_xmalloc((size_t)B * V * 4);
    vr_ws_reset(&ws);
    ok(vr_lm_decode(&m, &kv, dl, nx, &ws, &err) == 0, "decode one token per sequence");
    r = rel_err(dl, next_ref, (size_t)B * V);
    ok(r < 1e-4, "decode logits match transformers on the extended sequence (rel err %.2e)", r);

    /* the same model through the cache: prefill T-1 tokens, decode the last */
    struct vr_kvcache kv2;
    vr_kvcache_init(&kv2, &m.cfg, B, T + 4, &err);
    int32_t *ids2 = vr_xmalloc((size_t)B * (T - 1) * 4);
    unsigned char *mask2 = vr_xmalloc((size_t)B * (T - 1));
    for (int b = 0; b < B; b++) {
        memcpy(ids2 + b * (T - 1), ids + b * T, (size_t)(T - 1) * 4);
        memcpy(mask2 + b * (T - 1), mask + b * T, (size_t)(T - 1));
        nx[b] = ids[b * T + T - 1];
    }
    float *l2 = vr_xmalloc((size_t)B * V * 4);
    vr_ws_reset(&ws);
    rc = vr_lm_prefill(&m, &kv2, l2, 0, ids2, mask2, B, T - 1, vis_ref, (int)(nvis / D), nimg,
                       (const int(*)[3])grid, &ws, &err);
    vr_ws_reset(&ws);
    rc |= vr_lm_decode(&m, &kv2, l2, nx, &ws, &err);
    worst = 0;
    for (int b = 0; b < B; b++) {
        double ri = rel_err(l2 + (size_t)b * V, logits + ((size_t)b * T + T - 1) * V, (size_t)V);
        if (!(ri <= worst)) worst = ri;
    }
    ok(rc == 0 && worst < 1e-5, "decode with the KV cache equals prefill (rel err %.2e)", worst);

    free(ids), free(mask), free(vis), free(logits), free(dl), free(ids2), free(mask2), free(l2);
    vr_kvcache_release(&kv);
    vr_kvcache_release(&kv2);
    vr_ws_release(&ws);
    vr_safetensors_close(&io);
    vr_model_release(&m);
    return done_testing();
}

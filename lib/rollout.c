/* rollout.c: sampling G completions per task (see rollout.h). Reference
 * path on the CPU backend. */
#include "rollout.h"

#include <math.h>
#include <string.h>

#include "fs.h"
#include "hash.h"
#include "pixcache.h"
#include "vcache.h"

int vr_rollout_init(struct vr_rollout *r, const char *dir, const char *tokenizer,
                    const struct vr_rollout_opts *o, struct vr_err *err)
{
    memset(r, 0, sizeof *r);
    r->o = *o;
    if (vr_model_load(&r->m, dir, err)) return -1;
    char *tp = tokenizer ? vr_xstrdup(tokenizer) : vr_path_join(dir, "tokenizer.json");
    int rc = vr_bpe_load(&r->tok, tp, err);
    free(tp);
    if (rc) {
        vr_model_free(&r->m);
        return -1;
    }
    /* stop ids: generation_config.json's eos_token_id (a list in Qwen's), else config.json's */
    char *gp = vr_path_join(dir, "generation_config.json");
    json_t *g = json_load_file(gp, 0, NULL);
    free(gp);
    json_t *e = g ? json_object_get(g, "eos_token_id") : NULL;
    if (json_is_integer(e)) r->eos[r->neos++] = (int32_t)json_integer_value(e);
    for (size_t i = 0; json_is_array(e) && i < json_array_size(e) && r->neos < 8; i++)
        if (json_is_integer(json_array_get(e, i))) r->eos[r->neos++] = (int32_t)json_integer_value(json_array_get(e, i));
    if (g) json_decref(g);
    if (!r->neos) r->eos[r->neos++] = r->m.cfg.eos_id;
    r->vhash = vr_vision_hash(&r->m);
    vr_sample_ws_init(&r->sws, r->m.cfg.text.vocab);
    return 0;
}

void vr_rollout_release(struct vr_rollout *r)
{
    vr_sample_ws_free(&r->sws);
    vr_ws_free(&r->ws);
    vr_bpe_free(r->tok);
    vr_model_free(&r->m);
    memset(r, 0, sizeof *r);
}

/* The image embeddings of a task, in prompt order: "vision" entries of this
 * model when present, else the vision tower on the "pixels" entries. */
static int image_embeds(struct vr_rollout *r, json_t *task, int nimg, const int (*grid)[3], float **out,
                        int *rows, struct vr_err *err)
{
    json_t *px = json_object_get(task, "pixels"), *vi = json_object_get(task, "vision");
    int D = r->m.cfg.text.hidden, total = 0;
    for (int i = 0; i < nimg; i++) total += grid[i][0] * grid[i][1] * grid[i][2];
    int merge2 = r->m.cfg.vision.merge * r->m.cfg.vision.merge;
    *rows = total / merge2;
    *out = vr_xmalloc(((size_t)*rows + 1) * D * sizeof **out);
    if (nimg == 0) return 0;
    if (vi) { /* cached embeddings, if they are this model's */
        int ok_ = 1, at = 0;
        for (int i = 0; i < nimg && ok_; i++) {
            json_t *v = json_is_array(vi) ? json_array_get(vi, (size_t)i) : vi;
            const char *f = json_string_value(json_object_get(v, "file"));
            struct vr_tensor t;
            if (!f || vr_vision_load(f, r->vhash, &t, err)) {
                ok_ = 0;
                break;
            }
            memcpy(*out + (size_t)at * D, t.data, vr_tensor_nbytes(&t));
            at += (int)t.shape[0];
            vr_tensor_release(&t);
        }
        if (ok_ && at == *rows) return 0;
    }
    if (!px) return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "no \"pixels\": run vr-encode first");
    int cols = 3 * r->m.cfg.vision.temporal_patch * r->m.cfg.vision.patch * r->m.cfg.vision.patch;
    float *pix = vr_xmalloc((size_t)total * cols * sizeof *pix);
    int at = 0;
    for (int i = 0; i < nimg; i++) {
        json_t *p = json_is_array(px) ? json_array_get(px, (size_t)i) : px;
        const char *f = json_string_value(json_object_get(p, "file"));
        struct vr_tensor t;
        int64_t g[3];
        if (!f) {
            free(pix);
            return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "\"pixels\" entry %d has no file", i);
        }
        if (vr_pixels_load(f, NULL, &t, g, err)) {
            free(pix);
            return -1;
        }
        if (t.shape[1] != cols) {
            vr_tensor_release(&t);
            free(pix);
            return vr_err_set(err, VR_ERR_INPUT, f, 0, "pixel rows of %lld values; the model wants %d",
                              (long long)t.shape[1], cols);
        }
        memcpy(pix + (size_t)at * cols, t.data, vr_tensor_nbytes(&t));
        at += (int)t.shape[0];
        vr_tensor_release(&t);
    }
    vr_ws_reset(&r->ws);
    int rc = vr_vision_fwd(&r->m, *out, pix, nimg, grid, &r->ws, err);
    free(pix);
    return rc;
}

int vr_rollout_task(struct vr_rollout *r, json_t *task, const char *file, long line,
                    struct vr_err *err)
{
    struct vr_ids ids = {0};
    int (*grid)[3] = NULL, nimg = 0, rows = 0, G = r->o.G, V = r->m.cfg.text.vocab, rc = -1;
    float *img = NULL, *logits = NULL;
    struct vr_kvcache kv1 = {0}, kvg = {0};
    int32_t *toks = NULL;
    float *lps = NULL;
    int *ntok = NULL, *done = NULL;
    struct vr_buf *text = NULL;
    struct vr_bpe_stream *st = NULL;
    if (vr_chat_task_grids(task, &r->o.chat, file, line, &grid, &nimg, err)) goto out;
    if (vr_chat_task(r->tok, task, &r->o.chat, file, line, NULL, &ids, err)) goto out;
    if (image_embeds(r, task, nimg, (const int(*)[3])grid, &img, &rows, err)) {
        vr_err_locate(err, file, line);
        goto out;
    }
    int T = (int)ids.n, cap = T + r->o.max_tokens + 1;
    if (vr_kvcache_init(&kv1, &r->m.cfg, 1, T, err) || vr_kvcache_init(&kvg, &r->m.cfg, G, cap, err)) goto out;
    logits = vr_xmalloc((size_t)G * V * sizeof *logits);
    vr_ws_reset(&r->ws);
    if (vr_lm_prefill(&r->m, &kv1, logits, 0, ids.v, NULL, 1, T, img, rows, nimg, (const int(*)[3])grid, &r->ws,
                      err)) {
        vr_err_locate(err, file, line);
        goto out;
    }
    for (int g = 0; g < G; g++) {
        vr_kvcache_copy_seq(&kvg, g, &kv1, 0);
        if (g) memcpy(logits + (size_t)g * V, logits, (size_t)V * sizeof *logits);
    }
    const char *id = json_string_value(json_object_get(task, "id"));
    uint64_t th = id ? vr_hash64(id, strlen(id)) : 0;
    int M = r->o.max_tokens;
    toks = vr_xmalloc(((size_t)G * M + 1) * sizeof *toks);
    lps = vr_xmalloc(((size_t)G * M + 1) * sizeof *lps);
    ntok = vr_xcalloc((size_t)G, sizeof *ntok);
    done = vr_xcalloc((size_t)G, sizeof *done); /* 0 running, 1 eos, 2 answer, 3 length */
    text = vr_xcalloc((size_t)G, sizeof *text);
    st = vr_xcalloc((size_t)G, sizeof *st);
    int32_t *seen = vr_xmalloc(((size_t)T + M + 1) * sizeof *seen), *next = vr_xmalloc(((size_t)G + 1) * sizeof *next);
    for (int g = 0; g < G; g++) vr_bpe_stream_init(&st[g], r->tok, VR_BPE_SKIP_SPECIAL);
    for (int pos = 0; pos < M; pos++) {
        int running = 0;
        for (int g = 0; g < G; g++) {
            next[g] = r->eos[0];
            if (done[g]) continue;
            memcpy(seen, ids.v, (size_t)T * sizeof *seen);
            memcpy(seen + T, toks + (size_t)g * M, (size_t)ntok[g] * sizeof *seen);
            float u = vr_sample_uniform(r->o.seed, th, (uint32_t)g, (uint32_t)pos), lp;
            int32_t t = vr_sample(logits + (size_t)g * V, &r->o.sampling, seen, T + ntok[g], u, &lp, &r->sws);
            toks[(size_t)g * M + ntok[g]] = t;
            lps[(size_t)g * M + ntok[g]] = lp;
            ntok[g]++;
            next[g] = t;
            for (int e = 0; e < r->neos; e++)
                if (t == r->eos[e]) done[g] = 1;
            if (!done[g]) {
                vr_bpe_stream_put(&st[g], t, &text[g]);
                if (r->o.stop_after_answer && text[g].len >= 9 &&
                    memcmp(text[g].p + text[g].len - 9, "</answer>", 9) == 0)
                    done[g] = 2;
            }
            if (!done[g] && ntok[g] == M) done[g] = 3;
            running += !done[g];
        }
        r->tokens_out += G;
        if (!running) break;
        vr_ws_reset(&r->ws);
        if (vr_lm_decode(&r->m, &kvg, logits, next, &r->ws, err)) {
            vr_err_locate(err, file, line);
            free(seen), free(next);
            goto out;
        }
    }
    free(seen), free(next);
    static const char *const finish[] = {"length", "eos", "answer", "length"};
    json_t *comps = json_array();
    for (int g = 0; g < G; g++) {
        vr_bpe_stream_flush(&st[g], &text[g]);
        json_t *tk = json_array(), *lp = json_array();
        for (int i = 0; i < ntok[g]; i++) {
            json_array_append_new(tk, json_integer(toks[(size_t)g * M + i]));
            json_array_append_new(lp, json_real(lps[(size_t)g * M + i]));
        }
        json_array_append_new(comps, json_pack("{s:s%,s:o,s:o,s:s}", "text", text[g].p ? text[g].p : "",
                                                text[g].len, "tokens", tk, "logp", lp, "finish",
                                                finish[done[g]]));
    }
    json_object_set_new(task, "prompt_tokens", json_integer(T));
    json_object_set_new(task, "completions", comps);
    rc = 0;
out:
    for (int g = 0; text && g < G; g++) vr_buf_free(&text[g]);
    free(text), free(st), free(toks), free(lps), free(ntok), free(done), free(grid), free(img), free(logits);
    vr_ids_release(&ids);
    vr_kvcache_free(&kv1);
    vr_kvcache_free(&kvg);
    return rc;
}

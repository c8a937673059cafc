/* rollout.c: sampling G completions per task (see rollout.h). Reference
 * path on the CPU backend. */
#include "rollout.h"

#include <math.h>
#include <string.h>

#include "dist.h"
#include "fs.h"
#include "hash.h"
#include "lora.h"
#include "pixcache.h"
#include "vcache.h"

/* One task in flight: its G completions on G cache rows. */
struct vr_group {
    json_t *task;
    int64_t seq;            /* input order */
    int T;                  /* prompt tokens */
    int32_t *prompt;
    uint64_t th;            /* hash of the task id: the sampler's counter */
    int *row;               /* G cache rows */
    int32_t *toks;          /* G x max_tokens */
    float *lps;
    int *ntok, *done;       /* done: 0 running, 1 eos, 2 answer, 3 length */
    float *logits;          /* G x V: the next token's logits */
    struct vr_buf *text;
    struct vr_bpe_stream *st;
    int running;
    struct vr_group *next;
};

static void group_free(struct vr_group *g, int G)
{
    if (!g) return;
    for (int i = 0; g->text && i < G; i++) vr_buf_release(&g->text[i]);
    free(g->prompt), free(g->row), free(g->toks), free(g->lps), free(g->ntok), free(g->done);
    free(g->logits), free(g->text), free(g->st);
    if (g->task) json_decref(g->task);
    free(g);
}


int vr_rollout_init(struct vr_rollout *r, const char *dir, const char *tokenizer,
                    const struct vr_rollout_opts *o, struct vr_err *err)
{
    memset(r, 0, sizeof *r);
    r->o = *o;
    if (vr_lora_load_merged(&r->m, dir, err)) return -1;
    char *tp = tokenizer ? vr_xstrdup(tokenizer) : vr_path_join(dir, "tokenizer.json");
    int rc = vr_bpe_load(&r->tok, tp, err);
    free(tp);
    if (rc) {
        vr_model_release(&r->m);
        return -1;
    }
    r->neos = vr_model_eos(dir, &r->m.cfg, r->eos, 8);
    r->vhash = vr_vision_hash(&r->m);
    vr_sample_ws_init(&r->sws, r->m.cfg.text.vocab);
    return 0;
}

void vr_rollout_release(struct vr_rollout *r)
{
    for (struct vr_group *g = r->active, *n; g; g = n) n = g->next, group_free(g, r->o.G);
    for (struct vr_group *g = r->finished, *n; g; g = n) n = g->next, group_free(g, r->o.G);
    vr_kvcache_release(&r->kv);
    vr_kvcache_release(&r->kv1);
    free(r->free_rows), free(r->seen), free(r->step_rows), free(r->step_ids), free(r->step_logits);
    vr_sample_ws_release(&r->sws);
    vr_ws_release(&r->ws);
    vr_bpe_free(r->tok);
    vr_model_release(&r->m);
    memset(r, 0, sizeof *r);
}

/* The image embeddings of a task, in prompt order: "vision" entries of this
 * model when present (each must hold exactly its image's merged rows), else
 * the vision tower on the "pixels" entries. */
static int image_embeds(struct vr_rollout *r, const struct vr_task *t, const int (*grid)[3], float **out, int *rows,
                        struct vr_err *err)
{
    int nimg = t->nimages, D = r->m.cfg.text.hidden, total = 0;
    for (int i = 0; i < nimg; i++) total += grid[i][0] * grid[i][1] * grid[i][2];
    int merge2 = r->m.cfg.vision.merge * r->m.cfg.vision.merge;
    *rows = total / merge2;
    *out = vr_xmalloc(((size_t)*rows + 1) * D * sizeof **out);
    if (nimg == 0) return 0;
    int cached = 1, at = 0;
    for (int i = 0; i < nimg && cached; i++) { /* cached embeddings, if they are this model's */
        struct vr_tensor e;
        int want = grid[i][0] * grid[i][1] * grid[i][2] / merge2;
        if (!t->im[i].vision || vr_vision_load(t->im[i].vision, r->vhash, &e, err)) {
            cached = 0;
            break;
        }
        if (e.ndim != 2 || e.shape[0] != want || e.shape[1] != D) {
            vr_tensor_release(&e);
            return vr_err_set(err, VR_ERR_INPUT, t->im[i].vision, 0,
                              "holds [%lld, %lld] vision rows; image %d needs [%d, %d]", (long long)e.shape[0],
                              (long long)(e.ndim > 1 ? e.shape[1] : 0), i + 1, want, D);
        }
        memcpy(*out + (size_t)at * D, e.data, vr_tensor_nbytes(&e));
        at += want;
        vr_tensor_release(&e);
    }
    if (cached) return 0;
    int cols = 3 * r->m.cfg.vision.temporal_patch * r->m.cfg.vision.patch * r->m.cfg.vision.patch;
    float *pix;
    if (vr_pixels_task(t, cols, &pix, err)) return -1;
    vr_ws_reset(&r->ws);
    int rc = vr_vision_fwd(&r->m, *out, pix, nimg, grid, &r->ws, err);
    free(pix);
    return rc;
}

int vr_rollout_start(struct vr_rollout *r, int64_t max_batch_tokens, int max_prompt, struct vr_err *err)
{
    r->cap = max_prompt + r->o.max_tokens;
    r->rows = (int)(max_batch_tokens / r->cap);
    r->max_prompt = max_prompt;
    if (r->rows < r->o.G)
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0,
                          "--max-batch-tokens %lld holds %d rows of %d tokens (prompt %d + completion %d); "
                          "a group needs %d", (long long)max_batch_tokens, r->rows, r->cap, max_prompt,
                          r->o.max_tokens, r->o.G);
    if (vr_kvcache_init(&r->kv, &r->m.cfg, r->rows, r->cap, err) ||
        vr_kvcache_init(&r->kv1, &r->m.cfg, 1, max_prompt, err)) /* one prompt's prefill */
        return -1;
    r->free_rows = vr_xmalloc((size_t)r->rows * sizeof *r->free_rows);
    for (int i = 0; i < r->rows; i++) r->free_rows[i] = r->rows - 1 - i;
    r->nfree = r->rows;
    r->seen = vr_xmalloc(((size_t)r->cap + 1) * sizeof *r->seen);
    r->step_rows = vr_xmalloc((size_t)r->rows * sizeof *r->step_rows);
    r->step_ids = vr_xmalloc((size_t)r->rows * sizeof *r->step_ids);
    r->step_logits = vr_xmalloc((size_t)r->rows * r->m.cfg.text.vocab * sizeof *r->step_logits);
    return 0;
}

/* The engine under vr_rollout_run: while room() says G rows are free, add
 * tasks (each is prefilled once and forked to G rows; it needs "pixels", and
 * uses this model's "vision" entries when present); step decodes one token
 * for every running row (rows that stop leave the batch at once and new
 * groups can join); pop returns finished tasks — with "prompt_tokens" and
 * "completions" [{text, tokens, logp, finish}] — in input order, or NULL
 * when the next one is not done. The output never depends on the budget,
 * the order of joining or the thread count. Errors name file:line. */
static int vr_rollout_room(const struct vr_rollout *r) { return r->nfree >= r->o.G; }
static int vr_rollout_busy(const struct vr_rollout *r) { return r->active != NULL || r->finished != NULL; }

/* Sample completion i of g from its logits at position pos; record it. */
static void take(struct vr_rollout *r, struct vr_group *g, int i)
{
    int M = r->o.max_tokens, V = r->m.cfg.text.vocab, pos = g->ntok[i], nseen = 0;
    if (r->o.sampling.rep_penalty != 1.0f) { /* the ids seen so far matter only to the penalty */
        memcpy(r->seen, g->prompt, (size_t)g->T * sizeof *r->seen);
        memcpy(r->seen + g->T, g->toks + (size_t)i * M, (size_t)pos * sizeof *r->seen);
        nseen = g->T + pos;
    }
    float u = vr_sample_uniform(r->o.seed, g->th, (uint32_t)i, (uint32_t)pos), lp;
    int32_t t = vr_sample(g->logits + (size_t)i * V, &r->o.sampling, r->seen, nseen, u, &lp, &r->sws);
    g->toks[(size_t)i * M + pos] = t;
    g->lps[(size_t)i * M + pos] = lp;
    g->ntok[i]++;
    r->tokens_out++;
    for (int e = 0; e < r->neos; e++)
        if (t == r->eos[e]) g->done[i] = 1;
    if (!g->done[i]) {
        vr_bpe_stream_put(&g->st[i], t, &g->text[i]);
        if (r->o.stop_after_answer && g->text[i].len >= 9 &&
            memcmp(g->text[i].p + g->text[i].len - 9, "</answer>", 9) == 0)
            g->done[i] = 2;
    }
    if (!g->done[i] && g->ntok[i] == M) g->done[i] = 3;
    if (g->done[i]) { /* its row leaves the batch */
        g->running--;
        r->free_rows[r->nfree++] = g->row[i];
    }
}

/* A group whose completions have all stopped: write them into its task. */
static void finish_group(struct vr_rollout *r, struct vr_group *g)
{
    static const char *const finish[] = {"length", "eos", "answer", "length"};
    int M = r->o.max_tokens;
    json_t *comps = json_array();
    for (int i = 0; i < r->o.G; i++) {
        vr_bpe_stream_flush(&g->st[i], &g->text[i]);
        json_t *tk = json_array(), *lp = json_array();
        for (int k = 0; k < g->ntok[i]; k++) {
            json_array_append_new(tk, json_integer(g->toks[(size_t)i * M + k]));
            json_array_append_new(lp, json_real(g->lps[(size_t)i * M + k]));
        }
        json_array_append_new(comps, json_pack("{s:s%,s:o,s:o,s:s}", "text", g->text[i].p ? g->text[i].p : "",
                                                g->text[i].len, "tokens", tk, "logp", lp, "finish",
                                                finish[g->done[i]]));
    }
    json_object_set_new(g->task, "prompt_tokens", json_integer(g->T));
    json_object_set_new(g->task, "completions", comps);
    /* into the finished list, kept in input order */
    struct vr_group **pp = &r->finished;
    while (*pp && (*pp)->seq < g->seq) pp = &(*pp)->next;
    g->next = *pp;
    *pp = g;
}

static int vr_rollout_add(struct vr_rollout *r, json_t *task, const char *file, long line, struct vr_err *err)
{
    int G = r->o.G, V = r->m.cfg.text.vocab, M = r->o.max_tokens, nimg = 0, rows = 0, rc = -1;
    int (*grid)[3] = NULL;
    float *img = NULL;
    struct vr_ids ids = {0};
    VR_ASSERT(vr_rollout_room(r));
    /* the images alone must fit the prompt before anything is rendered */
    struct vr_task_limits lim;
    vr_model_task_limits(&r->m.cfg, &lim);
    if (lim.max_image_tokens > r->max_prompt) lim.max_image_tokens = r->max_prompt, lim.why = "--max-prompt-tokens";
    struct vr_task t;
    if (vr_task_parse(task, VR_NEED_GRIDS, &lim, file, line, &t, err)) return -1;
    struct vr_group *g = vr_xcalloc(1, sizeof *g);
    nimg = t.nimages;
    grid = vr_task_grids(&t);
    if (vr_chat_task(r->tok, &t, &r->o.chat, file, line, NULL, &ids, err)) goto out;
    if ((int)ids.n > r->max_prompt) {
        vr_err_set(err, VR_ERR_INPUT, file, line, "the prompt has %zu tokens; --max-prompt-tokens is %d", ids.n,
                   r->max_prompt);
        goto out;
    }
    if (image_embeds(r, &t, (const int(*)[3])grid, &img, &rows, err)) {
        vr_err_locate(err, file, line);
        goto out;
    }
    g->T = (int)ids.n;
    g->logits = vr_xmalloc((size_t)G * V * sizeof *g->logits);
    vr_ws_reset(&r->ws);
    if (vr_lm_prefill(&r->m, &r->kv1, g->logits, 0, ids.v, NULL, 1, g->T, img, rows, nimg, (const int(*)[3])grid,
                      &r->ws, err)) {
        vr_err_locate(err, file, line);
        goto out;
    }
    g->row = vr_xmalloc((size_t)G * sizeof *g->row);
    for (int i = 0; i < G; i++) {
        g->row[i] = r->free_rows[--r->nfree];
        vr_kvcache_copy_seq(&r->kv, g->row[i], &r->kv1, 0);
        if (i) memcpy(g->logits + (size_t)i * V, g->logits, (size_t)V * sizeof *g->logits);
    }
    g->th = t.id ? vr_hash64(t.id, strlen(t.id)) : 0;
    g->task = json_incref(task);
    g->seq = r->seq_in++;
    g->prompt = ids.v;
    ids.v = NULL;
    g->toks = vr_xmalloc(((size_t)G * M + 1) * sizeof *g->toks);
    g->lps = vr_xmalloc(((size_t)G * M + 1) * sizeof *g->lps);
    g->ntok = vr_xcalloc((size_t)G, sizeof *g->ntok);
    g->done = vr_xcalloc((size_t)G, sizeof *g->done);
    g->text = vr_xcalloc((size_t)G, sizeof *g->text);
    g->st = vr_xcalloc((size_t)G, sizeof *g->st);
    g->running = G;
    for (int i = 0; i < G; i++) vr_bpe_stream_init(&g->st[i], r->tok, VR_BPE_SKIP_SPECIAL);
    for (int i = 0; i < G; i++) take(r, g, i); /* the first token comes from the prefill */
    if (g->running) {
        g->next = r->active;
        r->active = g;
    } else {
        finish_group(r, g);
    }
    g = NULL;
    rc = 0;
out:
    vr_task_release(&t);
    group_free(g, G);
    free(grid);
    free(img);
    vr_ids_release(&ids);
    return rc;
}

static int vr_rollout_step(struct vr_rollout *r, struct vr_err *err)
{
    int G = r->o.G, V = r->m.cfg.text.vocab, M = r->o.max_tokens, n = 0;
    for (struct vr_group *g = r->active; g; g = g->next)
        for (int i = 0; i < G; i++)
            if (!g->done[i]) {
                r->step_rows[n] = g->row[i];
                r->step_ids[n++] = g->toks[(size_t)i * M + g->ntok[i] - 1];
            }
    if (n == 0) return 0;
    vr_ws_reset(&r->ws);
    if (vr_lm_decode_rows(&r->m, &r->kv, r->step_logits, r->step_ids, r->step_rows, n, &r->ws, err)) return -1;
    int k = 0;
    for (struct vr_group **pp = &r->active, *g; (g = *pp);) {
        for (int i = 0; i < G; i++)
            if (!g->done[i]) {
                memcpy(g->logits + (size_t)i * V, r->step_logits + (size_t)k++ * V, (size_t)V * sizeof(float));
                take(r, g, i);
            }
        if (g->running == 0) {
            *pp = g->next;
            finish_group(r, g);
        } else {
            pp = &g->next;
        }
    }
    return 0;
}

static json_t *vr_rollout_pop(struct vr_rollout *r)
{
    struct vr_group *g = r->finished;
    if (!g || g->seq != r->seq_out) return NULL;
    r->finished = g->next;
    r->seq_out++;
    json_t *t = json_incref(g->task);
    group_free(g, r->o.G);
    return t;
}

/* Replace the weights with those of model folder dir (--follow: each new
 * generation). Only between tasks: nothing may be in flight (!busy). The
 * tokenizer, the stop ids and the KV cache stay; dir's config must have the
 * same sizes. On failure the old weights stay. */
static int vr_rollout_reload(struct vr_rollout *r, const char *dir, struct vr_err *err)
{
    VR_ASSERT(!vr_rollout_busy(r));
    struct vr_model m;
    if (vr_lora_load_merged(&m, dir, err)) return -1;
    const struct vr_text_config *a = &r->m.cfg.text, *b = &m.cfg.text;
    const struct vr_vision_config *va = &r->m.cfg.vision, *vb = &m.cfg.vision;
    if (a->hidden != b->hidden || a->layers != b->layers || a->heads != b->heads || a->kv_heads != b->kv_heads ||
        a->head_dim != b->head_dim || a->vocab != b->vocab || va->depth != vb->depth || va->hidden != vb->hidden ||
        va->patch != vb->patch || va->temporal_patch != vb->temporal_patch || va->merge != vb->merge) {
        vr_model_release(&m);
        return vr_err_set(err, VR_ERR_INPUT, dir, 0, "the new weights' config has other sizes than the model's");
    }
    vr_model_release(&r->m);
    r->m = m;
    r->vhash = vr_vision_hash(&r->m);
    return 0;
}

int vr_rollout_follow_open(struct vr_rollout_follow *f, const char *dir, int stale, int pps, struct vr_err *err)
{
    memset(f, 0, sizeof *f);
    if (vr_dist_size() > 1) /* the writer's lock ties it to one process on one host */
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--follow runs as one process, not under mpirun or srun");
    f->loaded = -1;
    f->stale = stale;
    vr_publish_reader_init(&f->rd, dir);
    if (vr_publish_wait(&f->rd, 0, &f->loaded, err)) goto fail;
    if (pps && pps != f->rd.prompts_per_step) {
        vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                   "--prompts-per-step %d, but the vr-update publishing %s takes %d lines per batch", pps, dir,
                   f->rd.prompts_per_step);
        goto fail;
    }
    f->pps = f->rd.prompts_per_step;
    return 0;
fail:
    vr_publish_reader_release(&f->rd);
    return -1;
}

void vr_rollout_follow_release(struct vr_rollout_follow *f) { vr_publish_reader_release(&f->rd); }

/* Load the newest generation when it is newer than the loaded one, after
 * waiting for at least need. Only with nothing in flight. */
static int follow_switch(struct vr_rollout *r, struct vr_rollout_follow *f, int64_t need, struct vr_err *err)
{
    int64_t gen;
    if (vr_publish_poll(&f->rd, &gen, err)) return -1;
    if (gen < need && vr_publish_wait(&f->rd, need, &gen, err)) return -1;
    if (gen <= f->loaded) return 0;
    if (vr_rollout_reload(r, f->rd.dir, err)) return -1;
    /* the weights' own record, which a writer can have moved past gen */
    int64_t got = vr_publish_generation_of(&r->m.st);
    f->loaded = got > gen ? got : gen;
    return 0;
}

/* Where vr_rollout_run is in its input: the lines come from next (the
 * files, this shard's lines of them, or this rank's lines of a chunk). */
struct feed {
    int (*next_fn)(struct feed *fd, json_t **line, struct vr_err *err); /* 1, 0 at the end, -1 */
    struct vr_jsonl_files *in;
    int shard, shards;    /* --shard: line i of the input is taken when i % shards == shard */
    int64_t index;        /* lines of the input read */
    const char *file;     /* where the line in next is */
    long lineno;
    json_t **lines;       /* a chunk's lines (run_ranks), file names and numbers */
    char **files;
    long *linenos;
    int nlines, at;
    json_t *next;         /* read, not yet admitted */
    int eof;
    int64_t nread;        /* lines admitted */
};

/* The next line of the files that is this shard's. */
static int next_of_files(struct feed *fd, json_t **line, struct vr_err *err)
{
    for (;;) {
        int rc = vr_jsonl_files_next(fd->in, line, err);
        if (rc <= 0) return rc;
        fd->file = fd->in->in.path;
        fd->lineno = fd->in->in.line;
        if (fd->shards <= 1 || fd->index++ % fd->shards == fd->shard) return 1;
        json_decref(*line);
        *line = NULL;
    }
}

/* Admit lines while a group's rows are free, up to the first line of a
 * batch whose weights must wait for the running tasks to drain. */
static int admit(struct vr_rollout *r, struct feed *fd, struct vr_rollout_follow *f, struct vr_err *err)
{
    while (vr_rollout_room(r)) {
        if (!fd->next && !fd->eof) {
            int rc = fd->next_fn(fd, &fd->next, err);
            if (rc < 0) return -1;
            if (rc == 0) {
                fd->eof = 1;
                fd->next = NULL;
            }
        }
        if (!fd->next) break;
        if (f && fd->nread % f->pps == 0) { /* the first line of batch k */
            int64_t need = fd->nread / f->pps - f->stale;
            if (vr_rollout_busy(r)) {
                if (f->loaded < need) break; /* drain first */
            } else if (follow_switch(r, f, need, err)) {
                return -1;
            }
        }
        if (vr_rollout_add(r, fd->next, fd->file, fd->lineno, err)) return -1;
        json_decref(fd->next);
        fd->next = NULL;
        fd->nread++;
    }
    return 0;
}

/* Continuous batching over fd's lines until they are done and nothing is
 * in flight (vr_rollout_run). */
static int roll(struct vr_rollout *r, struct feed *fd, struct vr_rollout_follow *f, vr_rollout_sink_fn sink,
                void *ctx, struct vr_progress *prog, struct vr_err *err)
{
    for (;;) {
        if (admit(r, fd, f, err)) return -1;
        if (!vr_rollout_busy(r) && !fd->next && fd->eof) return 0;
        if (vr_rollout_step(r, err)) return -1;
        json_t *t;
        while ((t = vr_rollout_pop(r))) {
            int bad = sink(ctx, t, err);
            json_decref(t);
            if (bad) return -1;
        }
        if (prog) vr_progress_update(prog, r->tokens_out);
    }
}

/* ---- several ranks (lib/dist.h) ---- */

/* This rank's lines of the chunk: j with j % N == rank. */
static int next_of_chunk(struct feed *fd, json_t **line, struct vr_err *err)
{
    (void)err;
    fd->at = fd->at < 0 ? vr_dist_rank() : fd->at + vr_dist_size();
    if (fd->at >= fd->nlines) return 0;
    *line = fd->lines[fd->at];
    fd->lines[fd->at] = NULL;
    fd->file = fd->files[fd->at];
    fd->lineno = fd->linenos[fd->at];
    return 1;
}

/* A finished task of this rank, as the text rank 0 will write. */
static int keep_text(void *ctx, json_t *task, struct vr_err *err)
{
    (void)err;
    vr_json_dump(ctx, task);
    vr_buf_putc(ctx, '\n');
    return 0;
}

/* Rank 0 reads up to max lines of this shard into the wire form: per line
 * its number, its file, its text (u64 lengths first). *status: 1 lines,
 * 0 at the end, -1 a bad line (the wire holds err's message and hint). */
static void read_chunk(struct feed *fd, int max, struct vr_buf *w, int64_t *status, struct vr_err *err)
{
    vr_buf_reset(w);
    *status = 0;
    for (int n = 0; n < max; n++) {
        json_t *line;
        int rc = next_of_files(fd, &line, err);
        if (rc <= 0) {
            if (rc < 0) {
                vr_buf_reset(w);
                vr_buf_put(w, err->msg, strlen(err->msg) + 1);
                vr_buf_put(w, err->hint, strlen(err->hint) + 1);
                *status = -1 - (int64_t)err->kind;
            }
            return;
        }
        *status = 1;
        const char *text = fd->in->in.buf; /* the raw text, parsed alike on every rank */
        uint64_t h[3] = {(uint64_t)fd->lineno, strlen(fd->file), strcspn(text, "\r\n")};
        vr_buf_put(w, h, sizeof h);
        vr_buf_put(w, fd->file, h[1]);
        vr_buf_put(w, text, h[2]);
        json_decref(line);
    }
}

/* The chunk's lines from the wire form. */
static void parse_chunk(struct feed *fd, const char *p, const char *end)
{
    fd->nlines = 0;
    fd->at = -1;
    while (p < end) {
        uint64_t h[3];
        memcpy(h, p, sizeof h);
        p += sizeof h;
        int j = fd->nlines++;
        fd->lines = vr_xrealloc(fd->lines, (size_t)fd->nlines * sizeof *fd->lines);
        fd->files = vr_xrealloc(fd->files, (size_t)fd->nlines * sizeof *fd->files);
        fd->linenos = vr_xrealloc(fd->linenos, (size_t)fd->nlines * sizeof *fd->linenos);
        fd->files[j] = vr_xmalloc(h[1] + 1);
        memcpy(fd->files[j], p, h[1]);
        fd->files[j][h[1]] = 0;
        p += h[1];
        fd->linenos[j] = (long)h[0];
        json_error_t je; /* as vr_jsonl_next reads it (rank 0 checked it) */
        fd->lines[j] = (int)(j % vr_dist_size()) == vr_dist_rank() ?
                       json_loadb(p, h[2], JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je) : NULL;
        VR_ASSERT(fd->lines[j] || j % vr_dist_size() != vr_dist_rank());
        p += h[2];
    }
}

static void chunk_release(struct feed *fd)
{
    for (int j = 0; j < fd->nlines; j++) {
        json_decref(fd->lines[j]);
        free(fd->files[j]);
    }
    fd->nlines = 0;
}

/* Rank 0: the chunk's rollout lines in input order, from every rank's
 * text (line j is line j / N of rank j % N), to sink. */
static int write_chunk(const struct vr_buf *all, const size_t *counts, int nlines, vr_rollout_sink_fn sink,
                       void *ctx, struct vr_err *err)
{
    int N = vr_dist_size();
    size_t *at = vr_xmalloc((size_t)N * sizeof *at);
    for (int q = 0, off = 0; q < N; off += (int)counts[q], q++) at[q] = (size_t)off;
    int rc = 0;
    for (int j = 0; j < nlines && !rc; j++) {
        int q = j % N;
        const char *p = all->p + at[q], *nl = memchr(p, '\n', all->p + all->len - p);
        VR_ASSERT(nl);
        json_error_t je;
        json_t *t = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, &je);
        VR_ASSERT(t);
        at[q] = (size_t)(nl + 1 - all->p);
        rc = sink(ctx, t, err);
        json_decref(t);
    }
    free(at);
    return rc;
}

/* Some rank failed on its lines: every rank fails (after the lines rank 0
 * could write: none of this chunk), those without a message of their own
 * naming the first that has one. */
static int agree(int rc, struct vr_err *err)
{
    int N = vr_dist_size();
    double *v = vr_xcalloc((size_t)N, sizeof *v);
    v[vr_dist_rank()] = rc ? 1 : 0;
    struct vr_err e2;
    if (vr_dist_sum_f64(v, (size_t)N, &e2)) vr_dist_abort(1);
    int first = 0;
    while (first < N && v[first] == 0) first++;
    free(v);
    if (first == N) return 0;
    if (!rc) vr_err_set(err, VR_ERR_INPUT, NULL, 0, "rank %d of %d failed on its lines (its message says why)", first, N);
    return -1;
}

/* vr_rollout_run on N ranks: rank 0 reads chunks of lines (4 x what fits in
 * every rank's KV cache at once), every rank gets the chunk and rolls out
 * line j of it when j % N is its rank, and rank 0 hands the rollouts to sink
 * in input order. Sampling is keyed by (seed, task id, completion,
 * position), so the lines are those of one process, byte for byte. */
static int run_ranks(struct vr_rollout *r, struct feed *fd, vr_rollout_sink_fn sink, void *ctx,
                     struct vr_progress *prog, struct vr_err *err)
{
    int N = vr_dist_size(), me = vr_dist_rank(), max = 4 * N * (r->rows / r->o.G), rc = 0;
    struct vr_buf wire = {0}, mine = {0}, all = {0};
    size_t *counts = vr_xmalloc((size_t)N * sizeof *counts);
    fd->next_fn = next_of_chunk;
    for (;;) {
        int64_t h[2] = {0, 0}; /* status, bytes */
        if (me == 0) {
            read_chunk(fd, max, &wire, &h[0], err);
            h[1] = (int64_t)wire.len;
        }
        if (vr_dist_bcast(h, sizeof h, err)) break;
        if (me != 0) { /* room for what comes */
            wire.p = vr_xrealloc(wire.p, (size_t)h[1] + 1);
            wire.cap = (size_t)h[1] + 1;
            wire.len = (size_t)h[1];
        }
        if (vr_dist_bcast(wire.p, (size_t)h[1], err)) break;
        wire.p[h[1]] = 0;
        if (h[0] < 0) { /* rank 0's bad line, on every rank */
            if (me != 0) {
                vr_err_set(err, (enum vr_errkind)(-1 - h[0]), NULL, 0, "%s", wire.p);
                if (wire.p[strlen(wire.p) + 1]) vr_err_hint(err, "%s", wire.p + strlen(wire.p) + 1);
            }
            rc = -1;
            break;
        }
        if (h[0] == 0) break;
        parse_chunk(fd, wire.p, wire.p + wire.len);
        int nlines = fd->nlines;
        fd->eof = 0;
        vr_buf_reset(&mine);
        rc = agree(roll(r, fd, NULL, keep_text, &mine, me == 0 ? prog : NULL, err), err);
        chunk_release(fd);
        if (rc || vr_dist_gather(mine.p, mine.len, me == 0 ? &all : NULL, me == 0 ? counts : NULL, err) ||
            (me == 0 && write_chunk(&all, counts, nlines, sink, ctx, err))) {
            rc = -1;
            break;
        }
    }
    free(fd->lines), free(fd->files), free(fd->linenos), free(counts);
    vr_buf_release(&wire), vr_buf_release(&mine), vr_buf_release(&all);
    return rc;
}

int vr_rollout_run(struct vr_rollout *r, struct vr_jsonl_files *in, struct vr_rollout_follow *f,
                   vr_rollout_sink_fn sink, void *ctx, struct vr_progress *prog, struct vr_err *err)
{
    struct feed fd = {.next_fn = next_of_files, .in = in, .shard = r->o.shard, .shards = r->o.shards};
    if (vr_dist_size() > 1) {
        if (f) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--follow runs as one process, not under mpirun");
        return run_ranks(r, &fd, sink, ctx, prog, err);
    }
    if (f) {
        int64_t got = vr_publish_generation_of(&r->m.st);
        if (got > f->loaded) f->loaded = got;
    }
    int rc = roll(r, &fd, f, sink, ctx, prog, err);
    json_decref(fd.next);
    return rc;
}

/* imgswap.c: the image-swap check (imgswap.h). */
#include <math.h>
#include <string.h>

#include "eval.h"
#include "imgswap.h"
#include "jsonl.h"
#include "task.h"
#include "update.h"

/* Lines read and not yet scored. */
struct block {
    struct vr_batch b;
    char **id, **group;
    int cap;
};

static void block_reset(struct block *k)
{
    for (int i = 0; i < k->b.ng; i++) {
        free(k->id[i]);
        free(k->group[i]);
    }
    vr_batch_release(&k->b);
}

static struct vr_imgswap_summary *summary_of(struct vr_imgswap_report *rep, const char *group)
{
    for (int i = 0; i < rep->n; i++)
        if (!strcmp(rep->sum[i].group, group)) return &rep->sum[i];
    rep->sum = vr_xrealloc(rep->sum, (size_t)(rep->n + 1) * sizeof *rep->sum);
    struct vr_imgswap_summary *s = &rep->sum[rep->n++];
    memset(s, 0, sizeof *s);
    s->group = vr_xstrdup(group);
    return s;
}

/* Same group and the same images' grids: a line may take the other's images. */
static int same_key(const struct block *k, int i, int j)
{
    const struct vr_update_group *a = &k->b.g[i], *b = &k->b.g[j];
    return a->nimg == b->nimg && a->nimg > 0 && !strcmp(k->group[i], k->group[j]) &&
           !memcmp(a->grid, b->grid, (size_t)a->nimg * sizeof *a->grid);
}

/* Score a block: own images, then rotated within each key; report in order. */
static int block_score(struct vr_update *u, struct block *k, vr_imgswap_fn fn, void *ctx,
                       struct vr_imgswap_report *rep, struct vr_err *err)
{
    struct vr_batch *b = &k->b;
    int n = b->ng;
    VR_ASSERT(b->nseq == n); /* SFT: one sequence per line */
    double *own = vr_xmalloc((size_t)n * sizeof *own), *swapped = vr_xmalloc((size_t)n * sizeof *swapped);
    int *partner = vr_xmalloc((size_t)n * sizeof *partner), *done = vr_xcalloc((size_t)n, sizeof *done);
    float **pix = vr_xmalloc((size_t)n * sizeof *pix);
    vr_update_logp(u, b, own);
    /* each key's lines i0 < i1 < ... < im-1 take the images of the next one, the last the first's */
    for (int i = 0; i < n; i++) {
        partner[i] = -1;
        pix[i] = b->g[i].pix;
    }
    for (int i = 0; i < n; i++) {
        if (done[i]) continue;
        int prev = i;
        done[i] = 1;
        for (int j = i + 1; j < n; j++)
            if (!done[j] && same_key(k, i, j)) {
                partner[prev] = j;
                done[j] = 1;
                prev = j;
            }
        if (prev != i) partner[prev] = i;
    }
    for (int i = 0; i < n; i++)
        if (partner[i] >= 0) b->g[i].pix = pix[partner[i]];
    vr_update_logp(u, b, swapped);
    for (int i = 0; i < n; i++) b->g[i].pix = pix[i]; /* back to their owners */
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const struct vr_update_seq *s = &b->s[i];
        struct vr_imgswap_line l = {.id = k->id[i], .group = k->group[i], .paired = partner[i] >= 0,
                                    .tokens = s->len};
        l.nll = s->len ? -own[i] / s->len : 0;
        l.nll_swapped = s->len ? -swapped[i] / s->len : 0;
        struct vr_imgswap_summary *sm = summary_of(rep, l.group);
        sm->lines++;
        if (l.paired && s->len) {
            double gap = l.nll_swapped - l.nll;
            sm->paired++;
            sm->tokens += s->len;
            sm->nll += l.nll;
            sm->nll_swapped += l.nll_swapped;
            sm->gap += gap;
            sm->gap_sq += gap * gap;
        }
        if (fn) rc = fn(ctx, &l, err);
    }
    free(own);
    free(swapped);
    free(partner);
    free(done);
    free(pix);
    return rc;
}

int vr_imgswap_run(const struct vr_imgswap_opts *o, char *const *inputs, int n, vr_imgswap_fn fn,
                   void *ctx, struct vr_imgswap_report *rep, struct vr_err *err)
{
    const char *by = o->by ? o->by : "split";
    int block = o->block > 0 ? o->block : 256;
    struct vr_update_opts uo = {.sft = 1, .max_batch_tokens = 16384, .chat = o->chat, .temperature = 1,
                                .forward_only = 1};
    struct vr_update u;
    if (vr_update_init(&u, o->model, NULL, &uo, err)) return -1;
    struct vr_jsonl_files f;
    vr_jsonl_files_init(&f, inputs, n);
    struct block k = {0};
    int rc = 0;
    for (;;) {
        json_t *line = NULL;
        int r = vr_jsonl_files_next(&f, &line, err);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 1) {
            const char *file = f.in.path;
            long lineno = f.in.line;
            rc = vr_task_validate(line, file, lineno, err);
            if (rc == 0 && !json_object_get(line, "pixels")) {
                rc = vr_err_set(err, VR_ERR_INPUT, file, lineno, "no \"pixels\": the check needs encoded lines");
                vr_err_hint(err, "run vr-encode first");
            }
            if (rc == 0) rc = vr_batch_add(&u, &k.b, line, file, lineno, err);
            if (rc == 0) {
                int i = k.b.ng - 1;
                if (i >= k.cap) {
                    k.cap = k.cap ? 2 * k.cap : 64;
                    k.id = vr_xrealloc(k.id, (size_t)k.cap * sizeof *k.id);
                    k.group = vr_xrealloc(k.group, (size_t)k.cap * sizeof *k.group);
                }
                k.id[i] = vr_eval_field_text(line, "id");
                if (!k.id[i] && asprintf(&k.id[i], "%s:%ld", file, lineno) < 0) abort();
                k.group[i] = vr_eval_field_text(line, by);
                if (!k.group[i]) k.group[i] = vr_xstrdup("");
            }
            json_decref(line);
            if (rc) break;
        }
        if (k.b.ng > 0 && (k.b.ng == block || r == 0)) {
            rc = block_score(&u, &k, fn, ctx, rep, err);
            block_reset(&k);
            if (rc) break;
        }
        if (r == 0) break;
    }
    block_reset(&k);
    free(k.id);
    free(k.group);
    vr_jsonl_files_close(&f);
    vr_update_release(&u);
    return rc;
}

void vr_imgswap_report_release(struct vr_imgswap_report *rep)
{
    for (int i = 0; i < rep->n; i++) free(rep->sum[i].group);
    free(rep->sum);
    memset(rep, 0, sizeof *rep);
}

json_t *vr_imgswap_line_json(const struct vr_imgswap_line *l, const char *by)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(l->id));
    json_object_set_new(o, by, json_string(l->group));
    json_object_set_new(o, "tokens", json_integer(l->tokens));
    json_object_set_new(o, "nll", json_real(l->nll));
    if (l->paired) {
        json_object_set_new(o, "nll_swapped", json_real(l->nll_swapped));
        json_object_set_new(o, "gap", json_real(l->nll_swapped - l->nll));
    }
    return o;
}

json_t *vr_imgswap_summary_json(const struct vr_imgswap_summary *s, const char *by)
{
    json_t *o = json_object();
    json_object_set_new(o, "summary", json_true());
    json_object_set_new(o, by, json_string(s->group));
    json_object_set_new(o, "check", json_string("image_swap"));
    json_object_set_new(o, "lines", json_integer(s->lines));
    json_object_set_new(o, "paired", json_integer(s->paired));
    json_object_set_new(o, "tokens", json_integer(s->tokens));
    if (s->paired) {
        double m = (double)s->paired, gap = s->gap / m;
        /* the sample standard deviation of the per-line gaps; one line: no interval */
        double var = s->paired > 1 ? fmax(0, (s->gap_sq - s->gap * s->gap / m) / (m - 1)) : NAN;
        double half = 1.96 * sqrt(var / m);
        json_object_set_new(o, "nll", json_real(s->nll / m));
        json_object_set_new(o, "nll_swapped", json_real(s->nll_swapped / m));
        json_object_set_new(o, "gap", json_real(gap));
        json_object_set_new(o, "gap_lo", isfinite(half) ? json_real(gap - half) : json_null());
        json_object_set_new(o, "gap_hi", isfinite(half) ? json_real(gap + half) : json_null());
        json_object_set_new(o, "looks", json_boolean(isfinite(half) && gap - half > VR_IMGSWAP_MIN_GAP));
    }
    return o;
}

struct writer {
    FILE *out;
    const char *by;
    int summary_only;
    struct vr_progress *progress;
    int64_t seen;
};

static int write_line(void *ctx, const struct vr_imgswap_line *l, struct vr_err *err)
{
    struct writer *w = ctx;
    if (!w->summary_only) {
        json_t *j = vr_imgswap_line_json(l, w->by);
        int rc = vr_jsonl_write(w->out, j, err);
        json_decref(j);
        if (rc) return -1;
    }
    w->seen++;
    if (w->progress) vr_progress_update(w->progress, w->seen);
    return 0;
}

int vr_imgswap_write(const struct vr_imgswap_opts *o, char *const *inputs, int n, int summary_only,
                     struct vr_progress *progress, FILE *out, struct vr_err *err)
{
    struct writer w = {out, o->by ? o->by : "split", summary_only, progress, 0};
    struct vr_imgswap_report rep = {0};
    int rc = vr_imgswap_run(o, inputs, n, write_line, &w, &rep, err);
    if (progress) vr_progress_end(progress);
    for (int g = 0; g < rep.n && rc == 0; g++) {
        json_t *j = vr_imgswap_summary_json(&rep.sum[g], w.by);
        rc = vr_jsonl_write(out, j, err);
        json_decref(j);
    }
    vr_imgswap_report_release(&rep);
    return rc ? -1 : 0;
}

/* reward_score.c: vr-reward's reward terms on rollout lines and the GRPO
 * advantages of each group (reward.h; DESIGN.md §3.3, §3.4). The text rewards
 * are in reward.c, exec: commands in reward_exec.c. */
#include "reward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bpe.h"
#include "fileset.h"
#include "fs.h"
#include "jsonl.h"
#include "task.h"

static const struct {
    const char *name;
    enum vr_reward_fn fn;
} builtin[] = {
    {"format", VR_RW_FORMAT},   {"format-strict", VR_RW_FORMAT_STRICT},
    {"iou", VR_RW_IOU},         {"accuracy", VR_RW_IOU},
    {"iou50", VR_RW_IOU50},     {"length", VR_RW_LENGTH},
    {"repetition", VR_RW_REPETITION},
};

static int parse_weight(const char *s, size_t n, double *w)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    *w = strtod(buf, &end);
    return *end || !isfinite(*w) ? -1 : 0;
}

static int add_term(struct vr_reward *r, enum vr_reward_fn fn, const char *name, size_t nlen,
                    double w, const char *cmd, struct vr_err *err)
{
    for (int i = 0; i < r->nterms; i++)
        if (strlen(r->terms[i].name) == nlen && memcmp(r->terms[i].name, name, nlen) == 0)
            return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "reward '%.*s' is named twice", (int)nlen,
                              name);
    r->terms = vr_xrealloc(r->terms, (size_t)(r->nterms + 1) * sizeof *r->terms);
    struct vr_reward_term *t = &r->terms[r->nterms++];
    memset(t, 0, sizeof *t);
    t->fn = fn;
    t->name = vr_xmalloc(nlen + 1);
    memcpy(t->name, name, nlen);
    t->name[nlen] = 0;
    t->weight = w;
    t->exec.pid = 0;
    t->exec.to_fd = t->exec.from_fd = -1;
    if (cmd) t->exec.cmd = vr_xstrdup(cmd);
    return 0;
}

int vr_reward_add(struct vr_reward *r, const char *spec, struct vr_err *err)
{
    if (r->timeout <= 0) r->timeout = 30;
    const char *p = spec;
    if (!*p) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "empty reward list");
    while (*p) {
        if (strncmp(p, "exec:", 5) == 0) {
            /* exec:CMD or exec:WEIGHT:CMD, to the end of spec */
            const char *cmd = p + 5, *colon = strchr(cmd, ':');
            double w = 1;
            if (colon && parse_weight(cmd, (size_t)(colon - cmd), &w) == 0) cmd = colon + 1;
            else w = 1;
            if (!*cmd) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "reward 'exec:' names no command");
            char *name = NULL;
            if (asprintf(&name, "exec:%s", cmd) < 0) abort();
            int rc = add_term(r, VR_RW_EXEC, name, strlen(name), w, cmd, err);
            free(name);
            return rc;
        }
        size_t n = strcspn(p, ",");
        size_t nn = strcspn(p, ":,");
        double w = 1;
        if (nn < n && parse_weight(p + nn + 1, n - nn - 1, &w))
            return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "reward '%.*s': bad weight '%.*s'",
                              (int)nn, p, (int)(n - nn - 1), p + nn + 1);
        size_t k = 0, nb = sizeof builtin / sizeof builtin[0];
        while (k < nb && !(strlen(builtin[k].name) == nn && memcmp(builtin[k].name, p, nn) == 0)) k++;
        if (k == nb) {
            vr_err_set(err, VR_ERR_USAGE, NULL, 0, "unknown reward '%.*s'", (int)nn, p);
            return vr_err_hint(err, "rewards: format, format-strict, iou (accuracy), iou50, length, "
                                    "repetition, exec:CMD");
        }
        if (add_term(r, builtin[k].fn, p, nn, w, NULL, err)) return -1;
        p += n;
        if (*p == ',') {
            p++;
            if (!*p) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "reward list ends with ','");
        }
    }
    return 0;
}

int vr_reward_tokenizer(struct vr_reward *r, const char *path, struct vr_err *err)
{
    struct stat st;
    char *file = NULL;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (vr_fileset_settle(path, err)) return -1; /* one save's files (fileset.h) */
        file = vr_path_join(path, "tokenizer.json");
    } else {
        file = vr_xstrdup(path);
    }
    int rc = vr_bpe_load(&r->tok, file, err);
    free(file);
    return rc;
}

/* What the IoU terms need from a line (see struct vr_reward_geom): the
 * first image's original size and the model's input size, as VLM-R1. */
static int line_geom(const struct vr_task *t, struct vr_reward_geom *g, const char *file, long lineno,
                     struct vr_err *err)
{
    memset(g, 0, sizeof *g);
    if (t->sol != VR_SOL_BOX)
        return vr_err_set(err, VR_ERR_INPUT, file, lineno,
                          "'solution' is not a box [x1, y1, x2, y2] (the iou reward needs one)");
    memcpy(g->sol, t->box, sizeof g->sol);
    if (t->nimages > 0) {
        const struct vr_task_image *im = &t->im[0];
        g->img_w = im->w, g->img_h = im->h;
        if (im->grid[0] > 0 && json_object_get(t->json, "pixels")) g->in_w = (int64_t)im->grid[2] * 14, g->in_h = (int64_t)im->grid[1] * 14;
    }
    g->rescale = g->img_w > 0 && g->in_w > 0;
    return 0;
}

/* The token count VLM-R1's length reward uses: len(tokenizer.encode(text));
 * without a tokenizer, the sampled "tokens" less a final EOS (the decoded text
 * VLM-R1 re-encodes has none). */
static int token_count(struct vr_reward *r, const struct vr_task_completion *c, const char *text, size_t len,
                       int64_t *n, const char *file, long lineno, size_t k, struct vr_err *err)
{
    if (r->tok) {
        struct vr_ids ids = {0};
        vr_bpe_encode(r->tok, text, len, 0, &ids);
        *n = (int64_t)ids.n;
        vr_ids_release(&ids);
        return 0;
    }
    if (c->n < 0) {
        vr_err_set(err, VR_ERR_INPUT, file, lineno,
                   "completion %zu has no 'tokens' list (the length reward counts them)", k);
        return vr_err_hint(err, "give --tokenizer to count the tokens of the text instead");
    }
    *n = c->n;
    if (*n > 0 && c->finish && strcmp(c->finish, "eos") == 0) (*n)--;
    return 0;
}

/* The JSON line an exec: command reads for completion k: the line's fields
 * but "completions", then "index" and "completion". */
static void exec_request(struct vr_buf *b, const json_t *line, const json_t *c, size_t k)
{
    const char *key;
    json_t *v;
    vr_buf_putc(b, '{');
    json_object_foreach((json_t *)line, key, v) {
        if (strcmp(key, "completions") == 0) continue;
        vr_json_dump_string(b, key, strlen(key));
        vr_buf_putc(b, ':');
        vr_json_dump(b, v);
        vr_buf_putc(b, ',');
    }
    vr_buf_printf(b, "\"index\":%zu,\"completion\":", k);
    vr_json_dump(b, c);
    vr_buf_puts(b, "}\n");
}

static int score(struct vr_reward *r, json_t *line, const struct vr_task *tk, const char *file, long lineno,
                 struct vr_err *err);

int vr_reward_score(struct vr_reward *r, json_t *line, const char *file, long lineno,
                    struct vr_err *err)
{
    struct vr_task tk;
    if (vr_task_parse(line, 0, NULL, file, lineno, &tk, err)) return -1;
    int rc = score(r, line, &tk, file, lineno, err);
    vr_task_release(&tk);
    return rc;
}

static int score(struct vr_reward *r, json_t *line, const struct vr_task *tk, const char *file, long lineno,
                 struct vr_err *err)
{
    json_t *comps = json_object_get(line, "completions");
    if (tk->ncompl < 0) return vr_err_set(err, VR_ERR_INPUT, file, lineno, "no 'completions' (not a rollout line)");
    size_t g = (size_t)tk->ncompl;
    if (g == 0) return vr_err_set(err, VR_ERR_INPUT, file, lineno, "'completions' is empty");
    for (size_t k = 0; k < g; k++)
        if (!tk->c[k].text)
            return vr_err_set(err, VR_ERR_INPUT, file, lineno, "completion %zu has no 'text' string", k);
    char what[300];
    snprintf(what, sizeof what, "%s:%ld: task '%.200s'", file, lineno, tk->id ? tk->id : "(no id)");

    struct vr_reward_geom geom;
    int need_geom = 0;
    for (int i = 0; i < r->nterms; i++)
        need_geom |= r->terms[i].fn == VR_RW_IOU || r->terms[i].fn == VR_RW_IOU50;
    if (need_geom && line_geom(tk, &geom, file, lineno, err)) return -1;

    size_t nv = (size_t)r->nterms * g;
    if (nv > r->vals_cap) {
        r->vals = vr_xrealloc(r->vals, nv * sizeof *r->vals);
        r->vals_cap = nv;
    }
    for (int i = 0; i < r->nterms; i++) {
        struct vr_reward_term *t = &r->terms[i];
        double *v = r->vals + (size_t)i * g;
        if (t->fn == VR_RW_EXEC) {
            if (t->exec.pid <= 0) {
                char *cmd = vr_xstrdup(t->exec.cmd);
                int rc = vr_reward_exec_start(&t->exec, cmd, err);
                free(cmd);
                if (rc) {
                    r->exec_failed = 1;
                    return -1;
                }
            }
            vr_buf_reset(&r->req);
            for (size_t k = 0; k < g; k++) exec_request(&r->req, line, json_array_get(comps, k), k);
            if (vr_reward_exec_ask(&t->exec, r->req.p, r->req.len, (int)g, v, r->timeout, what, err)) {
                r->exec_failed = 1;
                return -1;
            }
            continue;
        }
        for (size_t k = 0; k < g; k++) {
            const struct vr_task_completion *c = &tk->c[k];
            const char *s = c->text;
            size_t n = c->text_len;
            int64_t ntok = 0;
            switch (t->fn) {
            case VR_RW_FORMAT: v[k] = vr_reward_format(s, n); break;
            case VR_RW_FORMAT_STRICT: v[k] = vr_reward_format_strict(s, n); break;
            case VR_RW_IOU: v[k] = vr_reward_iou(s, n, &geom); break;
            case VR_RW_IOU50: v[k] = vr_reward_iou(s, n, &geom) > 0.5 ? 1.0 : 0.0; break;
            case VR_RW_REPETITION: v[k] = vr_reward_repetition(s, n); break;
            case VR_RW_LENGTH:
                if (token_count(r, c, s, n, &ntok, file, lineno, k, err)) return -1;
                v[k] = vr_reward_length(ntok);
                break;
            case VR_RW_EXEC: break;
            }
        }
    }
    for (size_t k = 0; k < g; k++) {
        json_t *c = json_array_get(comps, k), *rw = json_object();
        double total = 0;
        for (int i = 0; i < r->nterms; i++) {
            double v = r->vals[(size_t)i * g + k];
            json_object_set_new(rw, r->terms[i].name, json_real(v));
            total += r->terms[i].weight * v;
            r->terms[i].sum += v;
            r->terms[i].n++;
        }
        if (!isfinite(total)) {
            json_decref(rw);
            return vr_err_set(err, VR_ERR_INPUT, file, lineno,
                              "completion %zu: the weighted reward overflows", k);
        }
        json_object_set_new(c, "rewards", rw);
        json_object_set_new(c, "reward", json_real(total));
    }
    r->lines++;
    r->completions += (int64_t)g;
    return 0;
}

int vr_reward_close(struct vr_reward *r, struct vr_err *err)
{
    int rc = 0;
    for (int i = 0; i < r->nterms; i++) {
        struct vr_reward_term *t = &r->terms[i];
        if (t->fn != VR_RW_EXEC || t->exec.pid <= 0) continue;
        struct vr_err e;
        int k = vr_reward_exec_stop(&t->exec, r->timeout, &e);
        if (k && (rc == 0 || (k < 0 && rc > 0))) {
            if (err) *err = e;
            rc = k;
        }
    }
    return rc;
}

void vr_reward_release(struct vr_reward *r)
{
    for (int i = 0; i < r->nterms; i++) {
        vr_reward_exec_kill(&r->terms[i].exec);
        free(r->terms[i].name);
    }
    free(r->terms);
    free(r->vals);
    vr_buf_release(&r->req);
    if (r->tok) vr_bpe_free(r->tok);
    memset(r, 0, sizeof *r);
}

/* ---- advantages ------------------------------------------------------------ */

void vr_reward_stats(const double *r, size_t n, double *mean, double *std)
{
    VR_ASSERT(n >= 1);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += r[i];
    double m = s / (double)n, ss = 0;
    for (size_t i = 0; i < n; i++) ss += (r[i] - m) * (r[i] - m);
    *mean = m;
    *std = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
}

/* 1 when all of r[0..n) are equal (always for n == 1). */
static int all_equal(const double *r, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (r[i] != r[0]) return 0;
    return 1;
}

/* The "reward" of each completion of a scored line into a malloc'ed array. */
static double *line_rewards(const json_t *line, size_t *n)
{
    json_t *comps = json_object_get(line, "completions");
    *n = json_array_size(comps);
    if (*n == 0) return NULL;
    double *r = vr_xmalloc(*n * sizeof *r);
    for (size_t k = 0; k < *n; k++) {
        json_t *v = json_object_get(json_array_get(comps, k), "reward");
        if (!json_is_number(v)) {
            free(r);
            return NULL;
        }
        r[k] = json_number_value(v);
    }
    return r;
}

int vr_reward_advantages(json_t *line, enum vr_scale scale, double batch_std)
{
    size_t n;
    double *r = line_rewards(line, &n), mean, std;
    if (!r) return -1;
    vr_reward_stats(r, n, &mean, &std);
    int degen = all_equal(r, n);
    double div = (scale == VR_SCALE_BATCH ? batch_std : std) + 1e-4;
    json_t *comps = json_object_get(line, "completions");
    /* finite rewards near the largest double overflow the mean or the spread:
     * refuse the line rather than write advantages JSON cannot hold */
    int finite = isfinite(mean) && isfinite(div);
    for (size_t k = 0; k < n && finite; k++)
        finite = isfinite(scale == VR_SCALE_NONE ? r[k] - mean : (r[k] - mean) / div);
    if (!finite) {
        free(r);
        return -2;
    }
    for (size_t k = 0; k < n; k++) {
        double a = scale == VR_SCALE_NONE ? r[k] - mean : (r[k] - mean) / div;
        json_object_set_new(json_array_get(comps, k), "advantage", json_real(a));
    }
    json_t *grp = json_object();
    json_object_set_new(grp, "mean", json_real(mean));
    json_object_set_new(grp, "std", json_real(std));
    json_object_set_new(line, "group", grp);
    if (degen) json_object_set_new(line, "degenerate", json_true());
    else json_object_del(line, "degenerate");
    if (scale == VR_SCALE_BATCH) json_object_set_new(line, "batch_std", json_real(batch_std));
    else json_object_del(line, "batch_std"); /* from an earlier scoring */
    free(r);
    return degen;
}

double vr_reward_batch_std(json_t *const *lines, size_t n)
{
    double *all = NULL;
    size_t na = 0;
    for (size_t i = 0; i < n; i++) {
        size_t g;
        double *r = line_rewards(lines[i], &g);
        if (!r) continue;
        all = vr_xrealloc(all, (na + g) * sizeof *all);
        memcpy(all + na, r, g * sizeof *r);
        na += g;
        free(r);
    }
    double mean = 0, std = 0;
    if (na) vr_reward_stats(all, na, &mean, &std);
    free(all);
    return std;
}

/* eval.c: vr-eval's scoring (eval.h). The Python-compatible pieces (\d and
 * \s as Python's str patterns have them, int / int correctly rounded, IoU
 * operation for operation) are py.c's and reward.c's, shared with vr-reward; what is
 * here is what VLM-R1's evaluation scripts do differently from its reward:
 * r1's greedy box pattern inside braces, baseline's float 4-list anywhere, and
 * the bookkeeping of verdicts, summaries and paired comparisons. */
#include "eval.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "buf.h"
#include "draw.h"
#include "fs.h"
#include "image_write.h"
#include "jsonl.h"
#include "task.h"
#include "py.h"

/* resize_bbox and iou repeat Python's operations one by one */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

static const char *status_name(enum vr_eval_status s)
{
    static const char *const names[] = {"ok", "no_answer", "no_box", "bad_number"};
    return names[s];
}

/* ---- the two parsers ------------------------------------------------------ */

enum { RX_R1_BOX, RX_BASELINE, RX_N };
static const char *const rx_src[RX_N] = {
    /* test_rec_r1.py's box, without the \{.* and \s*.*\} around it (below) */
    [RX_R1_BOX] = "\\[(\\d+),\\s*(\\d+),\\s*(\\d+),\\s*(\\d+)]",
    /* test_rec_baseline.py's bbox_pattern, as it is */
    [RX_BASELINE] = "\\[(\\s*-?\\d*\\.?\\d+\\s*),\\s*(\\s*-?\\d*\\.?\\d+\\s*),\\s*(\\s*-?\\d*\\.?\\d+\\s*),"
                    "\\s*(\\s*-?\\d*\\.?\\d+\\s*)\\]",
};
static struct vr_py_re *rx[RX_N];
static pthread_once_t rx_once = PTHREAD_ONCE_INIT;

static void rx_init(void)
{
    for (int k = 0; k < RX_N; k++) rx[k] = vr_py_re_compile(rx_src[k], 0);
}

static int rx_match(int k, const char *s, size_t len, size_t off, int anchored, size_t ov[10])
{
    pthread_once(&rx_once, rx_init);
    return vr_py_re_match(rx[k], s, len, off, anchored, ov, 4);
}

/* re.search(r'\{.*\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)]\s*.*\}', t[s..e), re.DOTALL):
 * a match from any '{' is also one from the first, and the greedy .* gives
 * back characters from the right, so the box is the rightmost one after the
 * first '{' that ends at or before the last '}'. */
static int r1_box(const char *t, size_t s, size_t e, size_t ov[10])
{
    const char *open = memchr(t + s, '{', e - s);
    if (!open) return 0;
    size_t p0 = (size_t)(open - t), z = e;
    while (z > p0 && t[z - 1] != '}') z--;
    if (z <= p0 + 1) return 0;
    z--; /* the last '}' */
    for (size_t q = z; q > p0 + 1;) {
        q--;
        if (t[q] == '[' && rx_match(RX_R1_BOX, t, e, q, 1, ov) && ov[1] <= z) return 1;
    }
    return 0;
}

/* The box VLM-R1's script reads from text[0..len) (valid UTF-8), rescaled as
 * its resize_bbox does when g->rescale (x / input_width * image_width, in
 * that order; r1's integers divided as Python's int / int, correctly
 * rounded), else as read. box is set only for VR_EVAL_OK. r1's greedy
 * pattern takes the last [d, d, d, d] after the block's first '{' that a '}'
 * still follows; found here in linear time, not by backtracking. */
static enum vr_eval_status read_box(enum vr_eval_parse mode, const char *t, size_t n,
                                    const struct vr_reward_geom *g, double box[4])
{
    size_t ov[10];
    if (mode == VR_EVAL_R1) {
        size_t s, e;
        if (vr_reward_answer_block(t, n, &s, &e)) return VR_EVAL_NO_ANSWER;
        if (!r1_box(t, s, e, ov)) return VR_EVAL_NO_BOX;
        return vr_reward_int_box(t, ov, g, box) ? VR_EVAL_BAD_NUMBER : VR_EVAL_OK;
    }
    if (!rx_match(RX_BASELINE, t, n, 0, 0, ov)) return VR_EVAL_NO_BOX;
    for (int i = 0; i < 4; i++) {
        double v;
        if (vr_py_float(t + ov[2 * i + 2], ov[2 * i + 3] - ov[2 * i + 2], &v)) return VR_EVAL_BAD_NUMBER;
        if (g && g->rescale) v = v / (double)(i % 2 ? g->in_h : g->in_w) * (double)(i % 2 ? g->img_h : g->img_w);
        box[i] = v;
    }
    return VR_EVAL_OK;
}

/* ---- verdicts ------------------------------------------------------------- */

void vr_eval_verdict_release(struct vr_eval_verdict *v)
{
    free(v->id);
    free(v->split);
    free(v->group);
    free(v->image);
    free(v->caption);
    memset(v, 0, sizeof *v);
}

/* jansson holds no NaN or infinity: JSON's null stands for them */
static json_t *real(double x) { return isfinite(x) ? json_real(x) : json_null(); }

static json_t *box_json(const double b[4])
{
    json_t *a = json_array();
    for (int i = 0; i < 4; i++) json_array_append_new(a, real(b[i]));
    return a;
}

json_t *vr_eval_verdict_json(const struct vr_eval_verdict *v)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(v->id));
    json_object_set_new(o, "split", json_string(v->split));
    if (v->completion >= 0) json_object_set_new(o, "completion", json_integer(v->completion));
    json_object_set_new(o, "parse", json_string(status_name(v->status)));
    json_object_set_new(o, "format", json_boolean(v->format));
    json_object_set_new(o, "pred", v->status == VR_EVAL_OK ? box_json(v->pred) : json_null());
    if (v->has_gt) {
        json_object_set_new(o, "gt", box_json(v->gt));
        json_object_set_new(o, "iou", real(v->iou));
        json_object_set_new(o, "correct", json_boolean(v->correct));
    }
    if (v->tokens >= 0) json_object_set_new(o, "tokens", json_integer(v->tokens));
    return o;
}

/* A line's field as text: a string as is, a number or boolean as JSON, else NULL. */
char *vr_eval_field_text(const json_t *line, const char *key)
{
    const json_t *v = key ? json_object_get(line, key) : NULL;
    if (json_is_string(v)) return vr_xstrdup(json_string_value(v));
    if (json_is_number(v) || json_is_boolean(v)) return json_dumps(v, JSON_ENCODE_ANY);
    return NULL;
}

/* A positive integer no larger than 2^31 - 1, or -1. */
static int64_t pos_int(const json_t *v)
{
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    return x > 0 && x < ((json_int_t)1 << 31) ? (int64_t)x : -1;
}

/* [a, b] of two positive integers into *a, *b; -1 if v is not such a pair. */
static int int_pair(const json_t *v, int64_t *a, int64_t *b)
{
    if (!json_is_array(v) || json_array_size(v) != 2) return -1;
    *a = pos_int(json_array_get(v, 0));
    *b = pos_int(json_array_get(v, 1));
    return *a < 0 || *b < 0 ? -1 : 0;
}

/* A gold box: 4 finite numbers. 0, or -1 with err. */
static int gold_box(const json_t *v, const char *what, double gt[4], const char *file, long line,
                    struct vr_err *err)
{
    if (!json_is_array(v))
        return vr_err_set(err, VR_ERR_INPUT, file, line, "'%s' is not a box [x1, y1, x2, y2]", what);
    if (json_array_size(v) != 4)
        return vr_err_set(err, VR_ERR_INPUT, file, line, "'%s' has %zu numbers, expected 4", what,
                          json_array_size(v));
    for (int i = 0; i < 4; i++) {
        const json_t *x = json_array_get(v, (size_t)i);
        if (!json_is_number(x) || !isfinite(json_number_value(x)))
            return vr_err_set(err, VR_ERR_INPUT, file, line, "'%s'[%d] is not a finite number", what, i);
        gt[i] = json_number_value(x);
    }
    return 0;
}

/* Score text into v (its id, split and the rest already set). */
static void score(struct vr_eval_verdict *v, const char *text, size_t len, const struct vr_reward_geom *g,
                  const struct vr_eval_opts *o)
{
    v->status = read_box(o->parse, text, len, g, v->pred);
    v->format = vr_reward_format(text, len) == 1.0;
    if (!v->has_gt) return;
    /* VLM-R1 scores an unparsed answer as the box [0, 0, 0, 0] */
    static const double zero[4] = {0, 0, 0, 0};
    double iou;
    if (vr_reward_iou_boxes(v->status == VR_EVAL_OK ? v->pred : zero, v->gt, &iou))
        iou = 0.0; /* union 0: Python raises ZeroDivisionError */
    v->iou = iou;
    v->correct = iou > o->iou_threshold;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The split of a line or file that names none: --split, else the file's name
 * without folders and its extension (and rec_results_ for VLM-R1's files). */
static char *default_split(const char *file, const struct vr_eval_opts *o)
{
    if (o->split) return vr_xstrdup(o->split);
    const char *b = base_name(file);
    if (!strncmp(b, "rec_results_", 12) && b[12]) b += 12;
    char *s = vr_xstrdup(b);
    char *dot = strrchr(s, '.');
    if (dot && dot != s) *dot = 0;
    return s;
}

/* The line checked as every stage checks it (vr_task_parse), and the sizes
 * a predicted box is rescaled between: from the first image's pixels entry,
 * else from "input_size" and "image_size"; none: g->rescale stays 0. */
static int line_geom(const json_t *line, const char *file, long lineno, struct vr_reward_geom *g,
                     struct vr_err *err)
{
    struct vr_task tk;
    if (vr_task_parse(line, VR_LOOSE_IDS, NULL, file, lineno, &tk, err)) return -1;
    int have_px = tk.nimages > 0 && json_object_get(line, "pixels"); /* grids from pixels, not sizes */
    if (have_px) { /* sizes: the first image's pixels entry (vr-encode) */
        g->in_h = (int64_t)tk.im[0].grid[1] * 14, g->in_w = (int64_t)tk.im[0].grid[2] * 14; /* test_rec_r1.py: image_grid_thw * 14 */
        /* the original size: the decoded one, else the dataset's */
        g->img_w = tk.im[0].im_w ? tk.im[0].im_w : tk.im[0].w;
        g->img_h = tk.im[0].im_w ? tk.im[0].im_h : tk.im[0].h;
    }
    vr_task_release(&tk);
    if (have_px) {
        if (g->img_w <= 0) {
            vr_err_set(err, VR_ERR_INPUT, file, lineno, "no original image size: 'pixels.image_size' or 'image_sizes' [width, height]");
            return vr_err_hint(err, "the predicted box is rescaled from the model's input size to the original image");
        }
        g->rescale = 1;
    } else if (json_object_get(line, "input_size") || json_object_get(line, "image_size")) {
        if (int_pair(json_object_get(line, "input_size"), &g->in_w, &g->in_h))
            return vr_err_set(err, VR_ERR_INPUT, file, lineno, "'input_size' is not [width, height]");
        if (int_pair(json_object_get(line, "image_size"), &g->img_w, &g->img_h))
            return vr_err_set(err, VR_ERR_INPUT, file, lineno, "'image_size' is not [width, height]");
        g->rescale = 1;
    }
    return 0;
}

static const char *const text_keys[] = {"text", "model_output", "response"};

int vr_eval_line(const json_t *line, const char *file, long lineno, const struct vr_eval_opts *o,
                 struct vr_eval_verdict **out, int *n, struct vr_err *err)
{
    *out = NULL;
    *n = 0;
    struct vr_reward_geom g = {0};
    if (line_geom(line, file, lineno, &g, err)) return -1;
    struct vr_eval_verdict base = {.completion = -1, .tokens = -1};
    const json_t *sol = json_object_get(line, "solution");
    if (sol && !json_is_null(sol)) {
        if (gold_box(sol, "solution", base.gt, file, lineno, err)) return -1;
        base.has_gt = 1;
    }
    /* what is scored: completions, or one text */
    const json_t *comps = json_object_get(line, "completions");
    const char *text = NULL;
    if (comps) {
        if (!json_is_array(comps) || json_array_size(comps) == 0)
            return vr_err_set(err, VR_ERR_INPUT, file, lineno, "'completions' is empty or not a list");
        for (size_t i = 0; i < json_array_size(comps); i++) {
            const json_t *c = json_array_get(comps, i);
            if (!json_is_string(json_object_get(c, "text")))
                return vr_err_set(err, VR_ERR_INPUT, file, lineno, "completion %zu has no 'text'", i);
        }
    } else {
        for (size_t k = 0; k < sizeof text_keys / sizeof *text_keys && !text; k++) {
            const json_t *t = json_object_get(line, text_keys[k]);
            if (t && !json_is_string(t))
                return vr_err_set(err, VR_ERR_INPUT, file, lineno, "'%s' is not a string", text_keys[k]);
            if (t) text = json_string_value(t);
        }
        if (!text) {
            vr_err_set(err, VR_ERR_INPUT, file, lineno, "nothing to score: no 'completions', 'text' or 'model_output'");
            return vr_err_hint(err, "vr-eval reads vr-rollout's lines, VLM-R1's rec_results_*.json, or JSONL with a model's text");
        }
    }
    base.id = vr_eval_field_text(line, "id");
    if (!base.id && asprintf(&base.id, "%s:%ld", file, lineno) < 0) abort();
    base.split = vr_eval_field_text(line, "split");
    if (!base.split) base.split = default_split(file, o);
    base.group = strcmp(o->by, "split") ? vr_eval_field_text(line, o->by) : vr_xstrdup(base.split);
    if (!base.group) base.group = vr_xstrdup("");
    const json_t *imgs = json_object_get(line, "images");
    if (json_is_array(imgs) && json_is_string(json_array_get(imgs, 0)))
        base.image = vr_xstrdup(json_string_value(json_array_get(imgs, 0)));
    base.caption = vr_eval_field_text(line, "label");
    if (!base.caption) base.caption = vr_eval_field_text(line, "problem");

    int count = comps ? (o->all ? (int)json_array_size(comps) : 1) : 1;
    struct vr_eval_verdict *v = vr_xcalloc((size_t)count, sizeof *v);
    for (int i = 0; i < count; i++) {
        v[i] = base;
        if (i) { /* each verdict owns its strings */
            v[i].id = vr_xstrdup(base.id);
            v[i].split = vr_xstrdup(base.split);
            v[i].group = vr_xstrdup(base.group);
            v[i].image = base.image ? vr_xstrdup(base.image) : NULL;
            v[i].caption = base.caption ? vr_xstrdup(base.caption) : NULL;
        }
        if (comps) {
            const json_t *c = json_array_get(comps, (size_t)i);
            const json_t *t = json_object_get(c, "text"), *tok = json_object_get(c, "tokens");
            v[i].completion = o->all ? i : -1;
            if (json_is_array(tok)) v[i].tokens = (int64_t)json_array_size(tok);
            score(&v[i], json_string_value(t), json_string_length(t), &g, o);
        } else {
            const json_t *t = NULL;
            for (size_t k = 0; !t; k++) t = json_object_get(line, text_keys[k]);
            score(&v[i], text, json_string_length(t), &g, o); /* an embedded NUL is text too */
        }
    }
    *out = v;
    *n = count;
    return 0;
}

int vr_eval_rec_results(const json_t *doc, const char *file, const struct vr_eval_opts *o,
                        struct vr_eval_verdict **out, int *n, struct vr_err *err)
{
    *out = NULL;
    *n = 0;
    const json_t *res = json_object_get(doc, "results");
    if (!json_is_object(doc) || !json_is_array(res)) {
        vr_err_set(err, VR_ERR_INPUT, file, 0, "not a VLM-R1 rec_results file: no \"results\" list");
        return vr_err_hint(err, "a .json input is read as test_rec_r1.py's output; JSONL files need another extension");
    }
    size_t count = json_array_size(res);
    struct vr_eval_verdict *v = vr_xcalloc(count ? count : 1, sizeof *v);
    char *split = default_split(file, o);
    for (size_t i = 0; i < count; i++) {
        const json_t *r = json_array_get(res, i);
        const json_t *text = json_object_get(r, "model_output");
        char what[64], gtwhat[80];
        snprintf(what, sizeof what, "results[%zu]", i);
        snprintf(gtwhat, sizeof gtwhat, "%s.ground_truth", what);
        struct vr_reward_geom g = {0};
        int bad = 0;
        if (!json_is_object(r)) bad = vr_err_set(err, VR_ERR_INPUT, file, 0, "%s is not an object", what);
        else if (!json_is_string(text)) bad = vr_err_set(err, VR_ERR_INPUT, file, 0, "%s: no 'model_output' text", what);
        else if (gold_box(json_object_get(r, "ground_truth"), gtwhat, v[i].gt, file, 0, err)) bad = -1;
        else if (json_object_get(r, "input_size") || json_object_get(r, "image_size")) {
            /* test_rec_r1.py writes (height, width) */
            if (int_pair(json_object_get(r, "input_size"), &g.in_h, &g.in_w) ||
                int_pair(json_object_get(r, "image_size"), &g.img_h, &g.img_w))
                bad = vr_err_set(err, VR_ERR_INPUT, file, 0, "%s: 'input_size' and 'image_size' are not [height, width]", what);
            g.rescale = 1;
        }
        if (bad) {
            for (size_t k = 0; k < i; k++) vr_eval_verdict_release(&v[k]);
            free(v);
            free(split);
            return -1;
        }
        v[i].has_gt = 1;
        v[i].completion = -1;
        v[i].tokens = -1;
        if (asprintf(&v[i].id, "%zu", i) < 0) abort();
        v[i].split = vr_xstrdup(split);
        v[i].group = strcmp(o->by, "split") ? vr_eval_field_text(r, o->by) : vr_xstrdup(split);
        if (!v[i].group) v[i].group = vr_xstrdup("");
        v[i].image = vr_eval_field_text(r, "image");
        v[i].caption = vr_eval_field_text(r, "question");
        score(&v[i], json_string_value(text), json_string_length(text), &g, o);
    }
    free(split);
    *out = v;
    *n = (int)count;
    return 0;
}

/* ---- summaries ------------------------------------------------------------ */

static void summary_add(struct vr_eval_summary *s, const struct vr_eval_verdict *v)
{
    s->parsed += v->status == VR_EVAL_OK;
    s->formatted += v->format;
    if (v->tokens >= 0) s->tok_n++, s->tok_sum += (double)v->tokens;
    if (!v->has_gt) {
        s->unlabelled++;
        return;
    }
    s->n++;
    s->correct += v->correct;
    s->iou_sum += isnan(v->iou) ? 0.0 : v->iou; /* NaN (an inf box) counts as no overlap */
}

#define Z95 1.959963984540054

/* Wilson score interval of k successes in n at 95% (z = 1.959964): [lo, hi]. */
static void wilson(int64_t k, int64_t n, double *lo, double *hi)
{
    if (n <= 0) {
        *lo = 0, *hi = 1;
        return;
    }
    double p = (double)k / (double)n, z2 = Z95 * Z95, nn = (double)n;
    double c = (p + z2 / (2 * nn)) / (1 + z2 / nn);
    double h = Z95 / (1 + z2 / nn) * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
    *lo = c - h < 0 ? 0 : c - h;
    *hi = c + h > 1 ? 1 : c + h;
}

/* McNemar's exact test (two-sided binomial on the discordant pairs):
 * min(1, 2 P[X <= min(b, c)]), X ~ Bin(b + c, 1/2); 1 when b + c == 0. */
static double mcnemar(int64_t b, int64_t c)
{
    int64_t n = b + c, k = b < c ? b : c;
    if (n == 0) return 1.0;
    /* P[X <= k] for X ~ Bin(n, 1/2), terms in log space (n may be large) */
    double lfn = lgamma((double)n + 1), sum = 0;
    for (int64_t i = 0; i <= k; i++)
        sum += exp(lfn - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) - (double)n * M_LN2);
    double p = 2 * sum;
    return p > 1 ? 1.0 : p;
}

static void put_rate(json_t *o, const char *key, int64_t k, int64_t n)
{
    json_object_set_new(o, key, n ? json_real((double)k / (double)n) : json_null());
}

json_t *vr_eval_summary_json(const struct vr_eval_summary *s, const char *by, const char *group,
                             double iou_threshold)
{
    json_t *o = json_object();
    int64_t all = s->n + s->unlabelled;
    json_object_set_new(o, "summary", json_true());
    json_object_set_new(o, by, json_string(group));
    json_object_set_new(o, "n", json_integer(s->n));
    if (s->n) {
        double lo, hi;
        wilson(s->correct, s->n, &lo, &hi);
        json_object_set_new(o, "correct", json_integer(s->correct));
        put_rate(o, "acc", s->correct, s->n);
        json_object_set_new(o, "acc_lo", json_real(lo));
        json_object_set_new(o, "acc_hi", json_real(hi));
        json_object_set_new(o, "interval", json_string("wilson95"));
        json_object_set_new(o, "iou_threshold", json_real(iou_threshold));
        json_object_set_new(o, "miou", json_real(s->iou_sum / (double)s->n));
    }
    put_rate(o, "parse_rate", s->parsed, all);
    put_rate(o, "format_rate", s->formatted, all);
    json_object_set_new(o, "mean_tokens", s->tok_n ? json_real(s->tok_sum / (double)s->tok_n) : json_null());
    if (s->unlabelled) json_object_set_new(o, "unlabelled", json_integer(s->unlabelled));
    return o;
}

/* ---- runs ------------------------------------------------------------------ */

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

int vr_eval_read(const char *path, const struct vr_eval_opts *o, int skip_bad, vr_eval_fn fn, void *ctx,
                 void (*warn)(const struct vr_err *), int64_t *skipped, struct vr_err *err)
{
    struct vr_eval_verdict *v;
    int n, rc = 0;
    if (strcmp(path, "-") && ends_with(path, ".json")) {
        json_error_t je;
        json_t *doc = json_load_file(path, JSON_DECODE_ANY, &je);
        if (!doc) return vr_err_set(err, VR_ERR_INPUT, path, je.line, "%s", je.text);
        rc = vr_eval_rec_results(doc, path, o, &v, &n, err);
        json_decref(doc);
        if (rc) return -1;
        rc = fn(ctx, v, n, err);
        for (int i = 0; i < n; i++) vr_eval_verdict_release(&v[i]);
        free(v);
        return rc ? -1 : 0;
    }
    struct vr_jsonl rd;
    if (vr_jsonl_open(&rd, path, err)) return -1;
    json_t *line;
    int got;
    while (rc == 0 && (got = vr_jsonl_next(&rd, &line, err)) != 0) {
        if (got > 0 && vr_eval_line(line, rd.path, rd.line, o, &v, &n, err) == 0) {
            rc = fn(ctx, v, n, err);
            for (int i = 0; i < n; i++) vr_eval_verdict_release(&v[i]);
            free(v);
        } else if (skip_bad && err->kind == VR_ERR_INPUT) {
            if (warn) warn(err);
            (*skipped)++;
        } else {
            rc = -1;
        }
        json_decref(line);
    }
    vr_jsonl_close(&rd);
    return rc ? -1 : 0;
}

void vr_eval_report_add(struct vr_eval_report *r, const struct vr_eval_verdict *v)
{
    int i = 0;
    while (i < r->n && strcmp(r->group[i], v->group)) i++;
    if (i == r->n) {
        r->group = vr_xrealloc(r->group, (size_t)(r->n + 1) * sizeof *r->group);
        r->sum = vr_xrealloc(r->sum, (size_t)(r->n + 1) * sizeof *r->sum);
        r->group[i] = vr_xstrdup(v->group);
        memset(&r->sum[i], 0, sizeof r->sum[i]);
        r->n++;
    }
    summary_add(&r->sum[i], v);
}

void vr_eval_report_release(struct vr_eval_report *r)
{
    for (int i = 0; i < r->n; i++) free(r->group[i]);
    free(r->group);
    free(r->sum);
    memset(r, 0, sizeof *r);
}

void vr_eval_pairs_init(struct vr_eval_pairs *p)
{
    p->run[0] = json_object();
    p->run[1] = json_object();
}

void vr_eval_pairs_add(struct vr_eval_pairs *p, int run, const struct vr_eval_verdict *v)
{
    if (!v->has_gt || v->completion > 0) return;
    char *key = NULL;
    if (asprintf(&key, "%s\t%s", v->split, v->id) < 0) abort();
    json_object_set_new(p->run[run], key, json_pack("{s:b,s:s}", "correct", v->correct, "group", v->group));
    free(key);
}

void vr_eval_pairs_release(struct vr_eval_pairs *p)
{
    json_decref(p->run[0]);
    json_decref(p->run[1]);
    p->run[0] = p->run[1] = NULL;
}

struct pair_row {
    char *group;
    int64_t n, wins, losses, both, neither, only_old, only_new, old_ok, new_ok;
};

json_t *vr_eval_pairs_lines(const struct vr_eval_pairs *p, const char *by)
{
    struct pair_row *rows = NULL;
    int nrows = 0;
    const char *key;
    json_t *a;
    /* NEW's verdicts against OLD's, then OLD's that NEW lacks; groups in order of first appearance */
    for (int pass = 0; pass < 2; pass++) {
        const json_t *mine = p->run[pass ? 0 : 1], *other = p->run[pass ? 1 : 0];
        json_object_foreach((json_t *)mine, key, a) {
            const char *g = json_string_value(json_object_get(a, "group"));
            int r = 0;
            while (r < nrows && strcmp(rows[r].group, g)) r++;
            if (r == nrows) {
                rows = vr_xrealloc(rows, (size_t)(nrows + 1) * sizeof *rows);
                memset(&rows[nrows], 0, sizeof *rows);
                rows[nrows++].group = vr_xstrdup(g);
            }
            const json_t *b = json_object_get(other, key);
            struct pair_row *w = &rows[r];
            if (!b) {
                pass ? w->only_old++ : w->only_new++;
                continue;
            }
            if (pass) continue; /* pairs are counted once, from NEW's side */
            int n_ok = json_is_true(json_object_get(a, "correct")), o_ok = json_is_true(json_object_get(b, "correct"));
            w->n++;
            w->old_ok += o_ok, w->new_ok += n_ok;
            w->wins += n_ok && !o_ok, w->losses += o_ok && !n_ok;
            w->both += n_ok && o_ok, w->neither += !n_ok && !o_ok;
        }
    }
    json_t *out = json_array();
    for (int r = 0; r < nrows; r++) {
        struct pair_row *w = &rows[r];
        json_t *o = json_object();
        json_object_set_new(o, "diff", json_true());
        json_object_set_new(o, by, json_string(w->group));
        json_object_set_new(o, "n", json_integer(w->n));
        json_object_set_new(o, "old_acc", w->n ? json_real((double)w->old_ok / (double)w->n) : json_null());
        json_object_set_new(o, "new_acc", w->n ? json_real((double)w->new_ok / (double)w->n) : json_null());
        json_object_set_new(o, "wins", json_integer(w->wins));
        json_object_set_new(o, "losses", json_integer(w->losses));
        json_object_set_new(o, "both_correct", json_integer(w->both));
        json_object_set_new(o, "both_wrong", json_integer(w->neither));
        json_object_set_new(o, "p_mcnemar", json_real(mcnemar(w->wins, w->losses)));
        json_object_set_new(o, "only_old", json_integer(w->only_old));
        json_object_set_new(o, "only_new", json_integer(w->only_new));
        json_array_append_new(out, o);
        free(w->group);
    }
    free(rows);
    return out;
}

int vr_eval_draw(const char *dir, const struct vr_eval_verdict *v, int64_t index, struct vr_err *err)
{
    if (!v->image) {
        vr_err_set(err, VR_ERR_INPUT, NULL, 0, "%s: no image to draw", v->id);
        return 1;
    }
    struct vr_image im = {0};
    if (vr_image_load(v->image, VR_IMAGE_MAX_PIXELS_DEFAULT, &im, err)) return 1;
    char verdict[160];
    if (!v->has_gt) snprintf(verdict, sizeof verdict, "%s", status_name(v->status));
    else if (v->status != VR_EVAL_OK) snprintf(verdict, sizeof verdict, "no box (%s)", status_name(v->status));
    else snprintf(verdict, sizeof verdict, "IoU %.3f  %s", v->iou, v->correct ? "correct" : "wrong");
    const char *lines[] = {v->caption ? v->caption : v->id, verdict, NULL};
    struct vr_draw_box gold = {v->gt[0], v->gt[1], v->gt[2], v->gt[3]};
    struct vr_draw_box pred = {v->pred[0], v->pred[1], v->pred[2], v->pred[3]};
    struct vr_draw_spec spec = {v->has_gt ? &gold : NULL, v->status == VR_EVAL_OK ? &pred : NULL, lines};
    /* the number keeps files in input order; the id, made safe, says which */
    struct vr_buf name = {0};
    vr_buf_printf(&name, "%05lld-", (long long)index);
    for (const char *c = v->id; *c && name.len < 80; c++)
        vr_buf_putc(&name, (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                               *c == '-' || *c == '_' ? *c : '_');
    if (v->completion >= 0) vr_buf_printf(&name, "-%d", v->completion);
    vr_buf_puts(&name, ".png");
    char *file = vr_path_join(dir, name.p);
    int rc = vr_draw_png(file, &im, 1024, &spec, VR_IMAGE_WRITE_NOSYNC, err);
    free(file);
    vr_buf_release(&name);
    vr_image_release(&im);
    return rc;
}

/* ---- vr-eval's run ------------------------------------------------------- */

struct run {
    const struct vr_eval_run_opts *o;
    FILE *out;
    int diff_run; /* 0 (OLD) or 1 (NEW) with diff, else -1 */
    struct vr_eval_report report;
    struct vr_eval_pairs pairs;
    int64_t drawn, seen;
};

/* Write v as a line and drop it. */
static int put_json(FILE *out, json_t *v, struct vr_err *err)
{
    int rc = vr_jsonl_write(out, v, err);
    json_decref(v);
    return rc;
}

static int run_take(void *ctx, struct vr_eval_verdict *v, int n, struct vr_err *err)
{
    struct run *s = ctx;
    const struct vr_eval_run_opts *o = s->o;
    for (int i = 0; i < n; i++, s->seen++) {
        if (s->diff_run >= 0) {
            vr_eval_pairs_add(&s->pairs, s->diff_run, &v[i]);
            continue;
        }
        vr_eval_report_add(&s->report, &v[i]);
        if (!o->summary_only && put_json(s->out, vr_eval_verdict_json(&v[i]), err)) return -1;
        if (o->draw_dir && s->drawn < o->draw_max) {
            int rc = vr_eval_draw(o->draw_dir, &v[i], s->seen, err);
            if (rc < 0) return -1;
            if (rc == 0) s->drawn++;
            else if (o->not_drawn) o->not_drawn(err);
        }
    }
    if (o->progress) vr_progress_update(o->progress, s->seen);
    return 0;
}

int vr_eval_run(const struct vr_eval_run_opts *o, const char *const *inputs, int n, FILE *out,
                int64_t *nskipped, struct vr_err *err)
{
    struct run s = {.o = o, .out = out, .diff_run = -1};
    const char *by = o->eval.by;
    int rc = 0;
    *nskipped = 0;
    if (o->draw_dir && vr_mkdir_p(o->draw_dir, err)) return -1;
    if (o->diff) vr_eval_pairs_init(&s.pairs);
    for (int i = 0; i < n && rc == 0; i++) {
        if (o->diff) s.diff_run = i;
        rc = vr_eval_read(inputs[i], &o->eval, o->skip_bad, run_take, &s, o->skipped, nskipped, err);
    }
    if (o->progress) vr_progress_end(o->progress);
    if (rc == 0 && s.drawn) rc = vr_image_write_sync(o->draw_dir, err);
    if (o->draw_dir) vr_draw_shutdown(); /* cairo's and fontconfig's caches */
    if (o->diff) {
        json_t *lines = rc ? NULL : vr_eval_pairs_lines(&s.pairs, by);
        for (size_t i = 0; i < json_array_size(lines) && rc == 0; i++)
            rc = put_json(out, json_incref(json_array_get(lines, i)), err);
        json_decref(lines);
        vr_eval_pairs_release(&s.pairs);
    }
    for (int g = 0; g < s.report.n && rc == 0; g++)
        rc = put_json(out, vr_eval_summary_json(&s.report.sum[g], by, s.report.group[g], o->eval.iou_threshold), err);
    vr_eval_report_release(&s.report);
    return rc ? -1 : 0;
}

/* task.c: task lines (see task.h). Used by vr-prep and by every later stage
 * that accepts tasks. */
#include "task.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "preprocess.h"

/* Parse v as a box: exactly 4 finite numbers with x1 < x2 and y1 < y2.
 * Errors are location-free ("'solution' ..."); callers add file:line. */
static int box_parse(const json_t *v, const char *what, double box[4], struct vr_err *err)
{
    if (!json_is_array(v))
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' is not a list of 4 numbers", what);
    if (json_array_size(v) != 4)
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' has %zu numbers, expected 4", what,
                          json_array_size(v));
    for (int i = 0; i < 4; i++) {
        const json_t *x = json_array_get(v, (size_t)i);
        if (!json_is_number(x))
            return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' entry %d is not a number", what, i);
        box[i] = json_number_value(x);
        if (!isfinite(box[i]))
            return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' entry %d is not finite", what, i);
    }
    if (!(box[0] < box[2]))
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' has x1 %g >= x2 %g", what, box[0], box[2]);
    if (!(box[1] < box[3]))
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' has y1 %g >= y2 %g", what, box[1], box[3]);
    return 0;
}

/* Box inside a w x h image: 0 <= x1, 0 <= y1, x2 <= w, y2 <= h. */
static int box_check_inside(const double box[4], const char *what, int w, int h, struct vr_err *err)
{
    if (box[0] < 0 || box[1] < 0 || box[2] > w || box[3] > h)
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                          "'%s' [%g, %g, %g, %g] is outside the %dx%d image", what, box[0], box[1],
                          box[2], box[3], w, h);
    return 0;
}

json_t *vr_task_new(const char *id, const char *split, int nimages, const char *const *images,
                    const int (*sizes)[2], const char *problem, json_t *solution,
                    const char *label)
{
    json_t *t = json_object();
    json_object_set_new(t, "id", json_string(id));
    json_object_set_new(t, "split", json_string(split));
    json_object_set_new(t, "task", json_string(json_is_array(solution) ? "rec" : "qa"));
    json_t *im = json_array();
    for (int i = 0; i < nimages; i++) json_array_append_new(im, json_string(images[i]));
    json_object_set_new(t, "images", im);
    int known = sizes != NULL && nimages > 0;
    for (int i = 0; known && i < nimages; i++) known = sizes[i][0] > 0 && sizes[i][1] > 0;
    if (known) {
        json_t *s = json_array();
        for (int i = 0; i < nimages; i++)
            json_array_append_new(s, json_pack("[ii]", sizes[i][0], sizes[i][1]));
        json_object_set_new(t, "image_sizes", s);
    }
    json_object_set_new(t, "problem", json_string(problem));
    json_object_set_new(t, "solution", solution);
    if (label) json_object_set_new(t, "label", json_string(label));
    return t;
}

void vr_task_limits_default(struct vr_task_limits *l)
{
    *l = (struct vr_task_limits){.patch = 14, .merge = 2, .min_pixels = 3136, .max_pixels = 12845056,
                                 .max_image_tokens = VR_TASK_MAX_IMAGE_TOKENS};
}

/* v as an integer in [lo, hi], else -1 (hi < INT64_MAX, lo >= 0) */
static int64_t int_in(const json_t *v, int64_t lo, int64_t hi)
{
    if (!json_is_integer(v)) return -1;
    int64_t x = json_integer_value(v);
    return x < lo || x > hi ? -1 : x;
}

/* v as [a, b] of integers in [1, hi] */
static int pair(const json_t *v, int64_t hi, int *a, int *b)
{
    int64_t x, y;
    if (!json_is_array(v) || json_array_size(v) != 2 || (x = int_in(json_array_get(v, 0), 1, hi)) < 0 ||
        (y = int_in(json_array_get(v, 1), 1, hi)) < 0)
        return -1;
    *a = (int)x, *b = (int)y;
    return 0;
}

/* "pixels" or "vision": one object, or a list of one object per image */
static int per_image(const json_t *v, const char *key, int *n, const char *file, long line, struct vr_err *err)
{
    int k = json_is_object(v) ? 1 : json_is_array(v) ? (int)json_array_size(v) : -1;
    if (k < 0 || k > VR_TASK_MAX_IMAGES)
        return vr_err_set(err, VR_ERR_INPUT, file, line, "'%s' is not an object or a list of one per image", key);
    if (*n >= 0 && k != *n)
        return vr_err_set(err, VR_ERR_INPUT, file, line, "'%s' describes %d images, the task has %d", key, k, *n);
    *n = k;
    return 0;
}

static const json_t *nth(const json_t *v, int i) { return json_is_array(v) ? json_array_get(v, (size_t)i) : v; }

static int parse_pixels(struct vr_task *t, const json_t *px, const struct vr_task_limits *lim, const char *file,
                        long line, struct vr_err *err)
{
    for (int i = 0; i < t->nimages; i++) {
        const json_t *p = nth(px, i), *g = json_object_get(p, "grid_thw");
        struct vr_task_image *im = &t->im[i];
        const json_t *f = json_object_get(p, "file");
        if (!json_is_object(p) || (f && (!json_is_string(f) || !json_string_length(f))))
            return vr_err_set(err, VR_ERR_INPUT, file, line, "'pixels' of image %d is not an object with a 'file' name",
                              i + 1);
        im->pixels = json_string_value(f);
        int64_t side = VR_TASK_MAX_SIDE / lim->patch, v[3];
        if (!json_is_array(g) || json_array_size(g) != 3)
            return vr_err_set(err, VR_ERR_INPUT, file, line, "'pixels' of image %d has no grid_thw [t, h, w]", i + 1);
        for (int k = 0; k < 3; k++)
            if ((v[k] = int_in(json_array_get(g, (size_t)k), 1, side)) < 0)
                return vr_err_set(err, VR_ERR_INPUT, file, line,
                                  "'pixels' of image %d: grid_thw holds a value that is not a positive integer up to %lld",
                                  i + 1, (long long)side);
        /* an image is one temporal patch (Qwen repeats the frame); more is video */
        if (v[0] != 1)
            return vr_err_set(err, VR_ERR_INPUT, file, line,
                              "'pixels' of image %d: grid_thw [%lld, %lld, %lld] has %lld frames; vr reads images (t = 1)",
                              i + 1, (long long)v[0], (long long)v[1], (long long)v[2], (long long)v[0]);
        if (v[1] % lim->merge || v[2] % lim->merge)
            return vr_err_set(err, VR_ERR_INPUT, file, line,
                              "image %d: grid_thw [%lld, %lld, %lld] does not give whole merged tokens (merge size %d)",
                              i + 1, (long long)v[0], (long long)v[1], (long long)v[2], lim->merge);
        for (int k = 0; k < 3; k++) im->grid[k] = (int)v[k];
        const json_t *in = json_object_get(p, "input_size"), *is = json_object_get(p, "image_size");
        if (in && (pair(in, VR_TASK_MAX_SIDE, &im->in_w, &im->in_h) ||
                   im->in_w != im->grid[2] * lim->patch || im->in_h != im->grid[1] * lim->patch))
            return vr_err_set(err, VR_ERR_INPUT, file, line,
                              "'pixels' of image %d: input_size is not [width, height] of its grid (%d x %d)", i + 1,
                              im->grid[2] * lim->patch, im->grid[1] * lim->patch);
        if (is && pair(is, VR_TASK_MAX_SIDE, &im->im_w, &im->im_h))
            return vr_err_set(err, VR_ERR_INPUT, file, line,
                              "'pixels' of image %d: image_size is not [width, height] in pixels, 1 to %d", i + 1,
                              VR_TASK_MAX_SIDE);
    }
    return 0;
}

static int parse_completion(struct vr_task_completion *c, const json_t *cj, int k, const struct vr_task_limits *lim,
                            const char *file, long line, struct vr_err *err)
{
#define BAD(...) vr_err_set(err, VR_ERR_INPUT, file, line, __VA_ARGS__)
    c->n = -1;
    if (!json_is_object(cj)) return BAD("completion %d is not an object", k);
    const json_t *tx = json_object_get(cj, "text"), *tk = json_object_get(cj, "tokens"),
                 *lp = json_object_get(cj, "logp"), *fi = json_object_get(cj, "finish"),
                 *rw = json_object_get(cj, "reward"), *ad = json_object_get(cj, "advantage"),
                 *rs = json_object_get(cj, "rewards");
    if (tx && !json_is_string(tx)) return BAD("completion %d: 'text' is not a string", k);
    if (tx) c->text = json_string_value(tx), c->text_len = json_string_length(tx);
    if (tk) {
        if (!json_is_array(tk) || json_array_size(tk) > VR_TASK_MAX_TOKENS)
            return BAD("completion %d: 'tokens' is not a list of at most %d ids", k, VR_TASK_MAX_TOKENS);
        c->n = (int)json_array_size(tk);
        c->tokens = vr_xmalloc(((size_t)c->n + 1) * sizeof *c->tokens);
        int64_t top = lim->vocab > 0 ? lim->vocab - 1 : INT32_MAX;
        for (int j = 0; j < c->n; j++) {
            int64_t id = int_in(json_array_get(tk, (size_t)j), 0, top);
            if (id < 0) return BAD("completion %d: token %d is not an id below %lld", k, j + 1, (long long)top + 1);
            c->tokens[j] = (int32_t)id;
        }
    }
    if (lp) {
        if (!json_is_array(lp) || c->n < 0 || (int)json_array_size(lp) != c->n)
            return BAD("completion %d: \"tokens\" and \"logp\" must be lists of the same length", k);
        c->logp = vr_xmalloc(((size_t)c->n + 1) * sizeof *c->logp);
        for (int j = 0; j < c->n; j++) {
            const json_t *v = json_array_get(lp, (size_t)j);
            /* a float32 log-probability: finite as a float, and <= 0 */
            double x = json_is_number(v) ? json_number_value(v) : NAN;
            if (!(x <= 0) || !isfinite((float)x))
                return BAD("completion %d: logp %d is not a log-probability (a finite number <= 0)", k, j + 1);
            c->logp[j] = (float)x;
        }
    }
    if (fi) {
        const char *f = json_string_value(fi);
        if (!f || (strcmp(f, "eos") && strcmp(f, "answer") && strcmp(f, "length")))
            return BAD("completion %d: 'finish' is not \"eos\", \"answer\" or \"length\"", k);
        c->finish = f;
    }
    if (rw && !json_is_null(rw)) {
        if (!json_is_number(rw) || !isfinite(json_number_value(rw)))
            return BAD("completion %d: 'reward' is not a finite number", k);
        c->has_reward = 1, c->reward = json_number_value(rw);
    }
    if (ad) {
        if (!json_is_number(ad) || !isfinite(json_number_value(ad)))
            return BAD("completion %d: 'advantage' is not a finite number", k);
        c->has_advantage = 1, c->advantage = json_number_value(ad);
    }
    if (rs) {
        const char *key;
        const json_t *v;
        if (!json_is_object(rs)) return BAD("completion %d: 'rewards' is not an object", k);
        json_object_foreach((json_t *)rs, key, v) if (!json_is_number(v) || !isfinite(json_number_value(v)))
            return BAD("completion %d: reward '%s' is not a finite number", k, key);
        c->rewards = rs;
    }
    return 0;
#undef BAD
}

/* The images: "images", else as many as "pixels" describes; their sizes,
 * pixels and vision files; each one's grid (from its pixels, or from its size
 * under lim when need asks for grids) and the prompt tokens they make. */
static int parse_images(struct vr_task *t, const json_t *j, unsigned need, const struct vr_task_limits *lim,
                        const char *file, long line, struct vr_err *err)
{
#define BAD(...) vr_err_set(err, VR_ERR_INPUT, file, line, __VA_ARGS__)
    const json_t *im = json_object_get(j, "images"), *sz = json_object_get(j, "image_sizes"),
                 *px = json_object_get(j, "pixels"), *vi = json_object_get(j, "vision");
    int n = im ? (int)json_array_size(im) : -1;
    if (n > VR_TASK_MAX_IMAGES) return BAD("'images' lists %d images; at most %d", n, VR_TASK_MAX_IMAGES);
    if (px && !json_is_null(px) && per_image(px, "pixels", &n, file, line, err)) return -1;
    if (vi && per_image(vi, "vision", &n, file, line, err)) return -1;
    if (n < 0) n = 0;
    t->nimages = n;
    t->im = vr_xcalloc((size_t)n + 1, sizeof *t->im);
    for (int i = 0; im && i < n; i++) {
        const json_t *v = json_array_get(im, (size_t)i);
        if (!json_is_string(v) || !json_string_length(v)) return BAD("'images' entry %d is not a file name", i);
        t->im[i].path = json_string_value(v);
    }
    if (sz) {
        if (!json_is_array(sz) || (int)json_array_size(sz) != n)
            return BAD("'image_sizes' must hold one [width, height] per image");
        for (int i = 0; i < n; i++)
            if (pair(json_array_get(sz, (size_t)i), VR_TASK_MAX_SIDE, &t->im[i].w, &t->im[i].h))
                return BAD("'image_sizes' entry %d is not [width, height] in pixels, 1 to %d", i, VR_TASK_MAX_SIDE);
    }
    if (px && !json_is_null(px) && parse_pixels(t, px, lim, file, line, err)) return -1;
    for (int i = 0; vi && i < n; i++) {
        const json_t *v = nth(vi, i), *f = json_object_get(v, "file"), *m = json_object_get(v, "model");
        if (!json_is_string(f) || !json_is_string(m))
            return BAD("'vision' of image %d is not {\"file\": ..., \"model\": ...}", i + 1);
        t->im[i].vision = json_string_value(f);
        t->im[i].vision_model = json_string_value(m);
    }
    for (int i = 0; (need & VR_NEED_PIXELS) && i < n; i++)
        if (!t->im[i].pixels) return BAD("no \"pixels\" file for image %d: run vr-encode first", i + 1);
    t->grids = n == 0 || t->im[0].grid[0] > 0;
    if (!t->grids && (need & VR_NEED_GRIDS)) { /* the processor's grid from the original size */
        if (!sz) {
            BAD("no 'pixels' or 'image_sizes' to size the task's %d image%s", n, n == 1 ? "" : "s");
            return vr_err_hint(err, "run vr-prep --check-images or vr-encode first");
        }
        for (int i = 0; i < n; i++) {
            int oh, ow;
            if (vr_smart_resize(t->im[i].h, t->im[i].w, lim->patch * lim->merge, lim->min_pixels, lim->max_pixels,
                                &oh, &ow, err))
                return vr_err_locate(err, file, line);
            t->im[i].grid[0] = 1, t->im[i].grid[1] = oh / lim->patch, t->im[i].grid[2] = ow / lim->patch;
        }
        t->grids = 1;
    }
    if (t->grids) {
        for (int i = 0; i < n; i++)
            t->image_tokens += (int64_t)t->im[i].grid[0] * t->im[i].grid[1] * t->im[i].grid[2] / (lim->merge * lim->merge);
        if (t->image_tokens > lim->max_image_tokens)
            return BAD("the images make %lld prompt tokens; at most %lld fit %s", (long long)t->image_tokens,
                       (long long)lim->max_image_tokens, lim->why ? lim->why : "the model's context");
    }
    return 0;
#undef BAD
}

/* "solution": text, or a box (checked against the first image for a task) */
static int parse_solution(struct vr_task *t, const json_t *so, unsigned need, const char *file, long line,
                          struct vr_err *err)
{
#define BAD(...) vr_err_set(err, VR_ERR_INPUT, file, line, __VA_ARGS__)
    int task = (need & VR_NEED_TASK) != 0, n = t->nimages;
    if (so && !json_is_null(so)) {
        if (json_is_string(so)) {
            t->sol = VR_SOL_TEXT, t->answer = json_string_value(so), t->answer_len = json_string_length(so);
        } else if (!task) { /* 4 finite numbers: a later stage scores any box, as VLM-R1 does */
            if (!json_is_array(so)) return BAD("'solution' is not a string or a list of 4 numbers");
            if (json_array_size(so) != 4)
                return BAD("'solution' has %zu numbers, expected 4", json_array_size(so));
            for (int k = 0; k < 4; k++) {
                const json_t *v = json_array_get(so, (size_t)k);
                if (!json_is_number(v) || !isfinite(json_number_value(v)))
                    return BAD("'solution' entry %d is not a finite number", k);
                t->box[k] = json_number_value(v);
            }
            t->sol = VR_SOL_BOX;
        } else {
            if (box_parse(so, "solution", t->box, err)) return vr_err_locate(err, file, line);
            /* inside the image where tasks are made and checked (vr-prep, vr-encode) */
            if (n > 0 && t->im[0].w > 0 && box_check_inside(t->box, "solution", t->im[0].w, t->im[0].h, err))
                return vr_err_locate(err, file, line);
            t->sol = VR_SOL_BOX;
        }
    } else if (need & VR_NEED_SOLUTION) {
        return BAD("'solution' is missing");
    }
    return 0;
#undef BAD
}

/* "completions", and what need asks of them */
static int parse_completions(struct vr_task *t, const json_t *cs, unsigned need, const struct vr_task_limits *lim,
                             const char *file, long line, struct vr_err *err)
{
#define BAD(...) vr_err_set(err, VR_ERR_INPUT, file, line, __VA_ARGS__)
    if (cs) {
        if (!json_is_array(cs) || json_array_size(cs) > VR_TASK_MAX_COMPLETIONS)
            return BAD("'completions' is not a list of at most %d", VR_TASK_MAX_COMPLETIONS);
        t->ncompl = (int)json_array_size(cs);
        t->c = vr_xcalloc((size_t)t->ncompl + 1, sizeof *t->c);
        for (int k = 0; k < t->ncompl; k++)
            if (parse_completion(&t->c[k], json_array_get(cs, (size_t)k), k + 1, lim, file, line, err)) return -1;
    }
    if (need & (VR_NEED_COMPLETIONS | VR_NEED_ADVANTAGES)) {
        if (t->ncompl < 1) return BAD("no \"completions\": not a rollout line");
        for (int k = 0; k < t->ncompl; k++) {
            if (!t->c[k].logp) return BAD("completion %d has no \"tokens\" and \"logp\"", k + 1);
            if ((need & VR_NEED_ADVANTAGES) && !t->c[k].has_advantage) {
                BAD("completion %d has no \"advantage\"", k + 1);
                return vr_err_hint(err, "score rollouts with vr-reward first");
            }
        }
    }
    return 0;
#undef BAD
}

static int parse(const json_t *j, unsigned need, const struct vr_task_limits *lim, const char *file, long line,
                 struct vr_task *t, struct vr_err *err)
{
#define BAD(...) vr_err_set(err, VR_ERR_INPUT, file, line, __VA_ARGS__)
    if (!json_is_object(j)) return BAD("the line is not a JSON object");
    t->json = j;
    t->prompt_tokens = -1;
    t->ncompl = -1;
    const json_t *id = json_object_get(j, "id"), *im = json_object_get(j, "images"),
                 *pr = json_object_get(j, "problem"), *so = json_object_get(j, "solution"),
                 *cs = json_object_get(j, "completions");
    /* texts are strings; with VR_LOOSE_IDS the descriptive ones (id, split,
     * label) of other tools' lines may be anything, and are left out */
    static const char *const strs[] = {"think", "completion", "split", "label"};
    const char **dst[] = {&t->think, &t->completion, &t->split, &t->label};
    int loose = (need & VR_LOOSE_IDS) != 0;
    for (int k = 0; k < 4; k++) {
        const json_t *v = json_object_get(j, strs[k]);
        if (v && !json_is_string(v) && (k < 2 || !loose)) return BAD("'%s' is not a string", strs[k]);
        *dst[k] = json_string_value(v);
    }
    int task = (need & VR_NEED_TASK) != 0;
    if (id ? !json_is_string(id) && !loose : task) return BAD("'id' is missing or not a string");
    t->id = json_string_value(id);
    if (im ? !json_is_array(im) : task) return BAD("'images' is missing or not a list");
    if (pr ? !json_is_string(pr) : task) return BAD("'problem' is missing or not a string");
    t->problem = json_string_value(pr);
    if (parse_images(t, j, need, lim, file, line, err)) return -1;
    if (parse_solution(t, so, need, file, line, err)) return -1;
    const json_t *pt = json_object_get(j, "prompt_tokens");
    if (pt && (t->prompt_tokens = (int)int_in(pt, 1, INT32_MAX)) < 0)
        return BAD("'prompt_tokens' is not a positive integer");
    if (parse_completions(t, cs, need, lim, file, line, err)) return -1;
    return 0;
#undef BAD
}

int vr_task_parse(const json_t *line, unsigned need, const struct vr_task_limits *lim, const char *file,
                  long lineno, struct vr_task *t, struct vr_err *err)
{
    struct vr_task_limits def;
    if (!lim) vr_task_limits_default(&def), lim = &def;
    memset(t, 0, sizeof *t);
    if (parse(line, need, lim, file, lineno, t, err) == 0) return 0;
    vr_task_release(t);
    return -1;
}

void vr_task_release(struct vr_task *t)
{
    for (int k = 0; k < t->ncompl; k++) free(t->c[k].tokens), free(t->c[k].logp);
    free(t->c);
    free(t->im);
    memset(t, 0, sizeof *t);
}

int (*vr_task_grids(const struct vr_task *t))[3]
{
    int(*g)[3] = vr_xmalloc(((size_t)t->nimages + 1) * sizeof *g);
    for (int i = 0; i < t->nimages; i++) memcpy(g[i], t->im[i].grid, sizeof *g);
    return g;
}

int vr_task_validate(const json_t *j, const char *file, long line, struct vr_err *err)
{
    struct vr_task t;
    if (vr_task_parse(j, VR_NEED_TASK | VR_NEED_SOLUTION, NULL, file, line, &t, err)) return -1;
    vr_task_release(&t);
    return 0;
}

int vr_task_validate_unlabelled(const json_t *j, const char *file, long line, struct vr_err *err)
{
    struct vr_task t;
    if (vr_task_parse(j, VR_NEED_TASK, NULL, file, line, &t, err)) return -1;
    vr_task_release(&t);
    return 0;
}

char *vr_rec_label_from_problem(const char *problem)
{
    size_t pl = strlen(VR_REC_PREFIX);
    if (strncmp(problem, VR_REC_PREFIX, pl) != 0) return NULL;
    char *s = vr_xstrdup(problem + pl);
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n')) s[--n] = 0;
    if (n && s[n - 1] == '.') s[--n] = 0;
    return s;
}

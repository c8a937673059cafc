/* dataset.c: dataset readers behind vr-prep (see dataset.h). Reference code:
 * one pass per file, records converted to task lines in memory. */
#include "dataset.h"

#include <ctype.h>
#include <math.h>
#include <string.h>
#include <yaml.h>

#include "fs.h"
#include "hash.h"
#include "image.h"
#include "jsonl.h"
#include "pyrandom.h"
#include "rng.h"
#include "task.h"

static const char *const fmt_names[] = {"auto", "rec", "yaml", "conv", "messages", "tasks"};

int vr_format_parse(const char *s, enum vr_format *out)
{
    if (strcmp(s, "vlmr1") == 0) s = "rec";
    for (int i = 0; i <= VR_FMT_TASKS; i++)
        if (strcmp(s, fmt_names[i]) == 0) {
            *out = (enum vr_format)i;
            return 0;
        }
    return -1;
}

/* ---- subsets ---- */

int vr_take_parse(const char *s, struct vr_take *t, struct vr_err *err)
{
    memset(t, 0, sizeof *t);
    if (strcmp(s, "all") == 0) return 0;
    const char *num = s, *colon = strchr(s, ':');
    int bare = colon == NULL;
    if (colon) {
        size_t k = (size_t)(colon - s);
        if (k == 5 && strncmp(s, "first", 5) == 0) t->how = VR_TAKE_FIRST;
        else if (k == 3 && strncmp(s, "end", 3) == 0) t->how = VR_TAKE_END;
        else if (k == 6 && strncmp(s, "random", 6) == 0) t->how = VR_TAKE_RANDOM;
        else if (k == 8 && strncmp(s, "pyrandom", 8) == 0) t->how = VR_TAKE_PYRANDOM;
        else
            return vr_err_set(err, VR_ERR_USAGE, NULL, 0,
                              "'%s': expected all, first:N, end:N, random:N or pyrandom:N "
                              "(N may be a percentage)",
                              s);
        num = colon + 1;
    }
    if (!*num) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "'%s': the count is missing", s);
    char *end;
    double v = strtod(num, &end);
    if (end == num || !isfinite(v) || v < 0)
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "'%s': '%s' is not a count or percentage", s,
                          num);
    if (*end == '%') {
        t->percent = 1;
        end++;
        if (v > 100) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "'%s': more than 100%%", s);
    } else if (v != floor(v)) {
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "'%s': a count must be a whole number", s);
    } else if (v > 0x1p53) { /* past 2^53 a double skips integers, and int64_t overflows */
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "'%s': count too large (at most 2^53)", s);
    }
    if (*end) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "'%s': trailing '%s'", s, end);
    t->n = v;
    if (bare) t->how = t->percent ? VR_TAKE_RANDOM : VR_TAKE_FIRST;
    return 0;
}

int64_t vr_take_apply(json_t **items, int64_t n, const struct vr_take *t, uint64_t seed,
                      uint64_t stream)
{
    /* an empty dataset has items == NULL: no pointer arithmetic on it */
    if (t->how == VR_TAKE_ALL || n == 0) return n;
    int64_t k = t->percent ? (int64_t)ceil(t->n * (double)n / 100.0) : (int64_t)t->n;
    if (k > n) k = n;
    if (t->how == VR_TAKE_RANDOM) {
        struct vr_rng r;
        vr_rng_init(&r, seed, stream);
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)vr_rng_below(&r, (uint64_t)i + 1);
            json_t *x = items[i];
            items[i] = items[j];
            items[j] = x;
        }
    } else if (t->how == VR_TAKE_PYRANDOM) {
        struct vr_pyrandom r;
        vr_pyrandom_seed(&r, seed);
        vr_pyrandom_shuffle(&r, items, (size_t)n, sizeof *items);
    }
    if (t->how == VR_TAKE_END) {
        for (int64_t i = 0; i < n - k; i++) json_decref(items[i]);
        memmove(items, items + (n - k), (size_t)k * sizeof *items);
    } else {
        for (int64_t i = k; i < n; i++) json_decref(items[i]);
    }
    return k;
}

void vr_tasks_push(struct vr_tasks *ts, json_t *t)
{
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? 2 * ts->cap : 1024;
        ts->v = vr_xrealloc(ts->v, (size_t)ts->cap * sizeof *ts->v);
    }
    ts->v[ts->n++] = t;
}

void vr_tasks_release(struct vr_tasks *ts)
{
    for (int64_t i = 0; i < ts->n; i++) json_decref(ts->v[i]);
    free(ts->v);
    memset(ts, 0, sizeof *ts);
}

/* ---- one source file ---- */

struct src {
    const char *path;
    char *root;      /* folder relative image paths are joined to */
    char *root_abs;  /* the same, absolute and normalised (for confinement) */
    char *split;
    struct vr_dataset_opts *o;
    vr_task_emit_fn emit;
    void *ctx;
    int stop;        /* the sink asked for no more tasks */
};

static char *basename_noext(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char *r = vr_xstrdup(b);
    char *dot = strrchr(r, '.');
    if (dot && dot != r) *dot = 0;
    return r;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Records one at a time from a JSON list (parsed element by element, so
 * memory holds one record, not the file's tree) or from JSON Lines. */
struct recs {
    const char *path;
    char *text, *p, *end;
    int list;        /* 1: inside a JSON list */
    long line;       /* line of p */
    char *counted;   /* newlines before this point are in line */
};

static int recs_open(struct recs *r, const char *path, struct vr_err *err)
{
    size_t len;
    memset(r, 0, sizeof *r);
    r->path = path;
    if (vr_file_read(path, &r->text, &len, err)) return -1;
    r->p = r->counted = r->text;
    r->end = r->text + len;
    r->line = 1;
    while (r->p < r->end && isspace((unsigned char)*r->p)) r->p++;
    if (r->p == r->end) {
        free(r->text);
        return vr_err_set(err, VR_ERR_INPUT, path, 0, "file is empty");
    }
    if (*r->p == '[') {
        r->list = 1;
        r->p++;
    }
    return 0;
}

static void recs_close(struct recs *r) { free(r->text); }

static void count_lines(struct recs *r)
{
    for (char *q = r->counted; (q = memchr(q, '\n', (size_t)(r->p - q))); q++) r->line++;
    r->counted = r->p;
}

/* Next record into *out with its line; 1, 0 at the end, -1 for a bad record
 * (reading may go on in JSON Lines; a broken list cannot be resynchronised). */
static int recs_next(struct recs *r, json_t **out, long *line, struct vr_err *err)
{
    json_error_t je;
    *out = NULL;
    if (r->list) {
        while (r->p < r->end && (isspace((unsigned char)*r->p) || *r->p == ',')) r->p++;
        count_lines(r);
        *line = r->line;
        if (r->p == r->end) {
            r->list = 0; /* reported once; the next call finds the end */
            return vr_err_set(err, VR_ERR_INPUT, r->path, r->line, "invalid JSON: the list is not closed");
        }
        if (*r->p == ']') {
            char *q = r->p + 1;
            while (q < r->end && isspace((unsigned char)*q)) q++;
            if (q != r->end) {
                r->p = q;
                count_lines(r);
                return vr_err_set(err, VR_ERR_INPUT, r->path, r->line, "invalid JSON: text after the list");
            }
            return 0;
        }
        json_t *v = json_loadb(r->p, (size_t)(r->end - r->p), JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &je);
        if (!v) {
            r->list = 0, r->p = r->end; /* stop: no way back in step */
            return vr_err_set(err, VR_ERR_INPUT, r->path, *line + je.line - 1, "invalid JSON: %s (column %d)",
                              je.text, je.column);
        }
        r->p += je.position;
        char *q = r->p;
        while (q < r->end && isspace((unsigned char)*q)) q++;
        if (q < r->end && *q != ',' && *q != ']') {
            json_decref(v);
            r->p = q;
            count_lines(r);
            long l = r->line;
            r->list = 0, r->p = r->end;
            return vr_err_set(err, VR_ERR_INPUT, r->path, l, "invalid JSON: expected ',' or ']' after a record");
        }
        *out = v;
        return 1;
    }
    for (;;) {
        if (r->p >= r->end) return 0;
        char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
        char *e = nl ? nl : r->end, *q = r->p;
        count_lines(r);
        *line = r->line;
        while (q < e && isspace((unsigned char)*q)) q++;
        char *start = r->p;
        r->p = e < r->end ? e + 1 : e;
        if (q == e) continue; /* blank */
        json_t *v = json_loadb(start, (size_t)(e - start), JSON_REJECT_DUPLICATES, &je);
        if (!v) return vr_err_set(err, VR_ERR_INPUT, r->path, *line, "invalid JSON: %s (column %d)", je.text, je.column);
        *out = v;
        return 1;
    }
}

/* Detect the format of a file from its name and first record. */
static enum vr_format detect(const char *path, json_t *first)
{
    if (ends_with(path, ".yaml") || ends_with(path, ".yml")) return VR_FMT_YAML;
    if (!json_is_object(first)) return VR_FMT_REC;
    if (json_object_get(first, "messages")) return VR_FMT_MESSAGES;
    if (json_object_get(first, "conversations")) return VR_FMT_CONV;
    if (json_object_get(first, "images") && json_object_get(first, "id")) return VR_FMT_TASKS;
    return VR_FMT_REC;
}

/* Strip leading/trailing whitespace in place; returns s. */
static char *strip(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    size_t i = 0;
    while (isspace((unsigned char)s[i])) i++;
    if (i) memmove(s, s + i, n - i + 1);
    return s;
}

/* Remove every occurrence of pat from s, in place. */
static void remove_all(char *s, const char *pat)
{
    size_t pl = strlen(pat);
    char *p;
    while ((p = strstr(s, pat))) memmove(p, p + pl, strlen(p + pl) + 1);
}

/* A box from an answer's JSON: [x1,y1,x2,y2], {"bbox_2d": [...], "label": ...},
 * or a list whose first item is such an object. NULL when it is none of these. */
static json_t *box_from_json(json_t *v, const char **label)
{
    if (json_is_array(v) && json_array_size(v) >= 1 && json_is_object(json_array_get(v, 0)))
        v = json_array_get(v, 0);
    if (json_is_object(v)) {
        json_t *l = json_object_get(v, "label");
        if (json_is_string(l) && label) *label = json_string_value(l);
        v = json_object_get(v, "bbox_2d");
    }
    if (!json_is_array(v) || json_array_size(v) != 4) return NULL;
    for (size_t i = 0; i < 4; i++)
        if (!json_is_number(json_array_get(v, i))) return NULL;
    return v;
}

/* Box numbers are written as reals whatever their spelling in the source, so
 * "[10, 20, 30, 40]" and [10.0, 20.0, 30.0, 40.0] give the same line. */
static json_t *box_normalise(const json_t *v)
{
    json_t *r = json_array();
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *x = json_array_get(v, i);
        json_array_append_new(r, json_is_number(x) ? json_real(json_number_value(x)) : json_incref((json_t *)x));
    }
    return r;
}

/* Solution from a model-style answer: the text inside the first <answer>
 * block (VLM-R1 strips the tags), code fences dropped, then a JSON box if it
 * parses as one, else the text itself. *label gets a label found in the JSON
 * (caller frees). */
static json_t *solution_from_answer(const char *answer, char **label)
{
    char *s = vr_xstrdup(answer);
    char *a = strstr(s, "<answer>"), *b = a ? strstr(a, "</answer>") : NULL;
    if (a && b) {
        *b = 0;
        memmove(s, a + 8, strlen(a + 8) + 1);
    }
    remove_all(s, "<answer>");
    remove_all(s, "</answer>");
    strip(s);
    char *text = vr_xstrdup(s);
    if (strncmp(s, "```", 3) == 0) {
        char *nl = strchr(s, '\n');
        char *close = nl ? strstr(nl, "```") : NULL;
        if (nl && close) {
            *close = 0;
            memmove(s, nl + 1, strlen(nl + 1) + 1);
            strip(s);
        }
    }
    json_t *sol = NULL;
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    const char *lab = NULL;
    json_t *box = v ? box_from_json(v, &lab) : NULL;
    if (box) {
        sol = box_normalise(box);
        if (lab) *label = vr_xstrdup(lab);
    } else {
        sol = json_string(text);
    }
    if (v) json_decref(v);
    free(s);
    free(text);
    return sol;
}

/* The absolute, normalised path of a record's image: relative names are
 * taken from s->root and must stay inside it ("../../etc/passwd" is an error)
 * unless o->allow_outside; absolute names are the dataset's explicit choice.
 * NULL with err set when outside. */
static char *image_path(const struct src *s, const char *name, struct vr_err *err)
{
    char *j = vr_path_join(s->root, name), *a = vr_path_abs(j);
    free(j);
    if (name[0] == '/' || s->o->allow_outside) return a;
    const char *r = s->root_abs;
    size_t n = strlen(r);
    if (strncmp(a, r, n) == 0 && (a[n] == '/' || (n == 1 && r[0] == '/'))) return a;
    vr_err_set(err, VR_ERR_INPUT, NULL, 0, "image '%s' is outside its folder %s", name, r);
    vr_err_hint(err, "vr-prep --allow-outside reads it");
    free(a);
    return NULL;
}

/* Common tail of every format: resolve images, make the id and label, check
 * the box, append. solution is stolen. sizes may be NULL. */
static int add_task(struct src *s, int64_t k, int nimg,
                    const char *const *images, const int (*sizes)[2], const char *problem,
                    json_t *solution, const char *label, const char *think, struct vr_err *err)
{
    char **abs_ = vr_xcalloc((size_t)nimg + 1, sizeof *abs_);
    for (int i = 0; i < nimg; i++)
        if (!(abs_[i] = image_path(s, images[i], err))) {
            for (int k = 0; k < i; k++) free(abs_[k]);
            free(abs_);
            json_decref(solution);
            return -1;
        }
    char *derived = label ? NULL : vr_rec_label_from_problem(problem);
    char id[512];
    snprintf(id, sizeof id, "%s/%lld", s->split, (long long)k);
    json_t *t = vr_task_new(id, s->split, nimg, (const char *const *)abs_, sizes, problem, solution,
                            label ? label : derived);
    if (think) json_object_set_new(t, "think", json_string(think));
    for (int i = 0; i < nimg; i++) free(abs_[i]);
    free(abs_);
    free(derived);
    if (vr_task_validate(t, NULL, 0, err)) {
        json_decref(t);
        return -1;
    }
    int e = s->emit(s->ctx, t, err);
    return e < 0 ? -2 : e; /* -2: not the record's fault */
}

/* Images of a record: a string or a list of strings under key. */
static int record_images(json_t *r, const char *key, const char ***out, int *n, struct vr_err *err)
{
    *out = NULL;
    *n = 0;
    json_t *im = json_object_get(r, key);
    if (json_is_string(im)) {
        *out = vr_xmalloc(sizeof **out);
        (*out)[0] = json_string_value(im);
        *n = 1;
        return 0;
    }
    if (json_is_array(im)) {
        *n = (int)json_array_size(im);
        *out = vr_xcalloc((size_t)*n + 1, sizeof **out);
        for (int i = 0; i < *n; i++) {
            json_t *x = json_array_get(im, (size_t)i);
            if (!json_is_string(x)) {
                free(*out);
                *out = NULL;
                return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' entry %d is not a file name", key,
                                  i);
            }
            (*out)[i] = json_string_value(x);
        }
        return 0;
    }
    if (!im) return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "missing field '%s'", key);
    return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' is not a file name or a list of them", key);
}

static int conv_rec(struct src *s, int64_t k, json_t *r, struct vr_err *err)
{
    const char **images;
    int nimg;
    if (!json_is_object(r)) return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "record is not an object");
    if (record_images(r, "image", &images, &nimg, err)) return -1;
    int rc = -1;
    json_t *pr = json_object_get(r, "problem"), *so = json_object_get(r, "solution"),
           *cap = json_object_get(r, "normal_caption"), *w = json_object_get(r, "width"),
           *h = json_object_get(r, "height"), *think = json_object_get(r, "think");
    int sz[1][2] = {{0, 0}};
    if (!json_is_string(pr)) {
        vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'problem' is missing or not a string");
        goto out;
    }
    if ((json_is_integer(w) && (json_integer_value(w) <= 0 || json_integer_value(w) > VR_TASK_MAX_SIDE)) ||
        (json_is_integer(h) && (json_integer_value(h) <= 0 || json_integer_value(h) > VR_TASK_MAX_SIDE))) {
        vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'width' and 'height' must be whole pixels, 1 to %d",
                   VR_TASK_MAX_SIDE);
        goto out;
    }
    json_t *sol;
    if (json_is_string(so)) {
        char *lab = NULL;
        sol = solution_from_answer(json_string_value(so), &lab);
        free(lab);
    } else if (json_is_array(so)) {
        sol = box_normalise(so);
    } else {
        vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'solution' is missing or not a box");
        goto out;
    }
    if (json_is_integer(w) && json_is_integer(h) && nimg == 1) {
        sz[0][0] = (int)json_integer_value(w);
        sz[0][1] = (int)json_integer_value(h);
    }
    rc = add_task(s, k, nimg, images, nimg == 1 ? (const int(*)[2])sz : NULL,
                  json_string_value(pr), sol, json_is_string(cap) ? json_string_value(cap) : NULL,
                  json_is_string(think) ? json_string_value(think) : NULL, err);
out:
    free(images);
    return rc;
}

/* Text of a message: a string, or a list of {type:text,text} parts joined. */
static char *message_text(json_t *c)
{
    if (json_is_string(c)) return vr_xstrdup(json_string_value(c));
    if (!json_is_array(c)) return NULL;
    size_t i;
    json_t *p;
    char *r = vr_xstrdup("");
    json_array_foreach(c, i, p) {
        json_t *t = json_object_get(p, "text");
        if (!json_is_string(t)) continue;
        size_t a = strlen(r), b = json_string_length(t);
        r = vr_xrealloc(r, a + b + 1);
        memcpy(r + a, json_string_value(t), b + 1);
    }
    return r;
}

/* conv and messages differ only in key names. */
static int chat_rec(struct src *s, int64_t k, json_t *r, int messages, struct vr_err *err)
{
    if (!json_is_object(r)) return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "record is not an object");
    const char *list_key = messages ? "messages" : "conversations";
    const char *role_key = messages ? "role" : "from", *text_key = messages ? "content" : "value";
    const char *user = messages ? "user" : "human", *asst = messages ? "assistant" : "gpt";
    json_t *msgs = json_object_get(r, list_key);
    if (!json_is_array(msgs))
        return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' is missing or not a list", list_key);
    char *q = NULL, *a = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *role = json_object_get(m, role_key);
        if (!json_is_string(role)) continue;
        if (!q && strcmp(json_string_value(role), user) == 0)
            q = message_text(json_object_get(m, text_key));
        else if (q && !a && strcmp(json_string_value(role), asst) == 0)
            a = message_text(json_object_get(m, text_key));
    }
    int rc = -1;
    const char **images = NULL;
    int nimg = 0;
    if (!q || !a) {
        vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'%s' needs a %s turn followed by a %s turn", list_key,
                   user, asst);
        goto out;
    }
    if (record_images(r, messages ? "images" : "image", &images, &nimg, err)) goto out;
    remove_all(q, "<image>");
    strip(q);
    char *label = NULL;
    json_t *sol = solution_from_answer(a, &label);
    rc = add_task(s, k, nimg, images, NULL, q, sol, label, NULL, err);
    free(label);
out:
    free(images);
    free(q);
    free(a);
    return rc;
}

static int tasks_rec(struct src *s, int64_t k, json_t *r, struct vr_err *err)
{
    if (!json_is_object(r)) return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "record is not an object");
    json_t *t = json_deep_copy(r);
    if (!json_object_get(t, "split") || s->o->split)
        json_object_set_new(t, "split", json_string(s->split));
    if (!json_object_get(t, "id")) {
        char id[512];
        snprintf(id, sizeof id, "%s/%lld", s->split, (long long)k);
        json_object_set_new(t, "id", json_string(id));
    }
    json_t *im = json_object_get(t, "images");
    if (json_is_array(im)) {
        for (size_t i = 0; i < json_array_size(im); i++) {
            json_t *x = json_array_get(im, i);
            if (!json_is_string(x)) continue;
            char *a = image_path(s, json_string_value(x), err);
            if (!a) {
                json_decref(t);
                return -1;
            }
            json_array_set_new(im, i, json_string(a));
            free(a);
        }
    }
    json_t *so = json_object_get(t, "solution");
    if (json_is_array(so)) json_object_set_new(t, "solution", box_normalise(so));
    if (vr_task_validate(t, NULL, 0, err)) {
        json_decref(t);
        return -1;
    }
    int e = s->emit(s->ctx, t, err);
    return e < 0 ? -2 : e; /* -2: not the record's fault */
}

/* A bad record: fail, or with --skip-bad count it and go on. */
static int bad_record(struct src *s, struct vr_err *err)
{
    if (!s->o->skip_bad) return -1;
    s->o->skipped++;
    if (s->o->warn) s->o->warn(s->o->warn_ctx, err);
    return 0;
}

static int read_src(struct src *s, enum vr_format f, struct vr_err *err)
{
    struct recs r;
    if (recs_open(&r, s->path, err)) return -1;
    int rc = 0;
    json_t *rec;
    long line;
    for (int64_t k = 0; !s->stop; k++) {
        int got = recs_next(&r, &rec, &line, err);
        if (got == 0) break;
        if (got < 0) {
            if ((rc = bad_record(s, err))) break;
            continue;
        }
        if (f == VR_FMT_AUTO) f = detect(s->path, rec);
        int e;
        switch (f) {
        case VR_FMT_CONV: e = chat_rec(s, k, rec, 0, err); break;
        case VR_FMT_MESSAGES: e = chat_rec(s, k, rec, 1, err); break;
        case VR_FMT_TASKS: e = tasks_rec(s, k, rec, err); break;
        default: e = conv_rec(s, k, rec, err); break;
        }
        json_decref(rec);
        if (e > 0) s->stop = 1; /* the sink has enough */
        else if (e == -1) { /* the record is bad: name its line */
            vr_err_locate(err, s->path, line);
            if ((rc = bad_record(s, err))) break;
        } else if (e < 0) { /* the sink failed: its message is complete */
            rc = -1;
            break;
        }
    }
    recs_close(&r);
    return rc;
}

static int read_one(const char *path, const char *images_dir, const char *split_default,
                    enum vr_format f, struct vr_dataset_opts *o, vr_task_emit_fn emit, void *ctx,
                    struct vr_err *err)
{
    struct src s = {.path = path, .o = o, .emit = emit, .ctx = ctx};
    s.root = images_dir ? vr_xstrdup(images_dir) : vr_path_dir(path);
    s.root_abs = vr_path_abs(s.root); /* once per file, not per image */
    s.split = o->split ? vr_xstrdup(o->split) : vr_xstrdup(split_default);
    int rc = read_src(&s, f, err);
    free(s.root);
    free(s.root_abs);
    free(s.split);
    return rc < 0 ? -1 : s.stop;
}

static int collect(void *ctx, json_t *t, struct vr_err *err)
{
    (void)err;
    vr_tasks_push(ctx, t);
    return 0;
}

/* ---- rec.yaml ---- */

static yaml_node_t *ymap_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

/* A rec.yaml nests a few levels; libyaml's loader takes time quadratic in the
 * depth of nested collections, so a first pass over the events refuses any
 * deeper than this before the loader sees them. */
#define YAML_MAX_DEPTH 64

static int yaml_depth_check(const char *path, FILE *f, struct vr_err *err)
{
    yaml_parser_t p;
    yaml_event_t ev;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int depth = 0, rc = 0;
    for (;;) {
        if (!yaml_parser_parse(&p, &ev)) {
            rc = vr_err_set(err, VR_ERR_INPUT, path, (long)p.problem_mark.line + 1, "invalid YAML: %s",
                            p.problem ? p.problem : "parse error");
            break;
        }
        yaml_event_type_t t = ev.type;
        long line = (long)ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (++depth > YAML_MAX_DEPTH) {
                rc = vr_err_set(err, VR_ERR_INPUT, path, line, "YAML nested more than %d levels deep",
                                YAML_MAX_DEPTH);
                break;
            }
        } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
            depth--;
        } else if (t == YAML_STREAM_END_EVENT) {
            break;
        }
    }
    yaml_parser_delete(&p);
    rewind(f);
    return rc;
}

static int read_yaml(const char *path, struct vr_dataset_opts *o, vr_task_emit_fn emit, void *ctx,
                     struct vr_err *err)
{
    FILE *f = fopen(path, "rbe");
    if (!f) return vr_err_sys(err, path, "cannot open");
    if (yaml_depth_check(path, f, err)) {
        fclose(f);
        return -1;
    }
    yaml_parser_t p;
    yaml_document_t d;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int rc = -1, loaded = 0;
    if (!yaml_parser_load(&p, &d)) {
        vr_err_set(err, VR_ERR_INPUT, path, (long)p.problem_mark.line + 1, "invalid YAML: %s",
                   p.problem ? p.problem : "parse error");
        goto out;
    }
    loaded = 1;
    yaml_node_t *root = yaml_document_get_root_node(&d);
    yaml_node_t *ds = ymap_get(&d, root, "datasets");
    if (!ds || ds->type != YAML_SEQUENCE_NODE) {
        vr_err_set(err, VR_ERR_INPUT, path, root ? (long)root->start_mark.line + 1 : 0,
                   "expected 'datasets:' with a list of {json_path, sampling_strategy}");
        goto out;
    }
    char *dir = vr_path_dir(path);
    int idx = 0;
    rc = 0;
    for (yaml_node_item_t *it = ds->data.sequence.items.start; it < ds->data.sequence.items.top && !rc;
         it++, idx++) {
        yaml_node_t *e = yaml_document_get_node(&d, *it);
        long line = e ? (long)e->start_mark.line + 1 : 0;
        yaml_node_t *jp = ymap_get(&d, e, "json_path"), *ss = ymap_get(&d, e, "sampling_strategy");
        if (!jp || jp->type != YAML_SCALAR_NODE) {
            rc = vr_err_set(err, VR_ERR_INPUT, path, line, "dataset %d has no 'json_path'", idx);
            break;
        }
        struct vr_take take = {0};
        if (ss && ss->type == YAML_SCALAR_NODE &&
            vr_take_parse((char *)ss->data.scalar.value, &take, err)) {
            err->kind = VR_ERR_INPUT;
            rc = vr_err_locate(err, path, (long)ss->start_mark.line + 1);
            break;
        }
        char *jpath = vr_path_join(dir, (char *)jp->data.scalar.value);
        char *split = basename_noext(jpath);
        struct vr_tasks part = {0};
        rc = read_one(jpath, o->images_dir, split, VR_FMT_AUTO, o, collect, &part, err);
        if (rc == 0) {
            part.n = vr_take_apply(part.v, part.n, &take, o->seed, 0x79616d6c00000000ull + (uint64_t)idx);
            int64_t i = 0;
            for (; i < part.n && rc == 0; i++) rc = emit(ctx, part.v[i], err);
            for (; i < part.n; i++) json_decref(part.v[i]);
            part.n = 0;
            if (rc > 0) break; /* the sink has enough */
        }
        vr_tasks_release(&part);
        free(split);
        free(jpath);
    }
    free(dir);
out:
    if (loaded) yaml_document_delete(&d);
    yaml_parser_delete(&p);
    fclose(f);
    return rc < 0 ? -1 : rc;
}

int vr_dataset_read(const char *path, struct vr_dataset_opts *o, vr_task_emit_fn emit, void *ctx,
                    struct vr_err *err)
{
    enum vr_format f = o->format;
    if (f == VR_FMT_AUTO && (ends_with(path, ".yaml") || ends_with(path, ".yml"))) f = VR_FMT_YAML;
    if (f == VR_FMT_YAML) return read_yaml(path, o, emit, ctx, err);
    char *split = strcmp(path, "-") == 0 ? vr_xstrdup("stdin") : basename_noext(path);
    int rc = read_one(path, o->images_dir, split, f, o, emit, ctx, err);
    free(split);
    return rc;
}

/* ---- image checks ---- */

struct size_entry {
    char *path;
    int w, h; /* w < 0: the probe failed, err says why */
    struct vr_err err;
    struct size_entry *next;
};

struct vr_imgcache {
    struct size_entry **tab;
    size_t nb, n;
};

struct vr_imgcache *vr_imgcache_new(void)
{
    struct vr_imgcache *c = vr_xcalloc(1, sizeof *c);
    c->nb = 1024;
    c->tab = vr_xcalloc(c->nb, sizeof *c->tab);
    return c;
}

void vr_imgcache_free(struct vr_imgcache *c)
{
    if (!c) return;
    for (size_t b = 0; b < c->nb; b++)
        for (struct size_entry *e = c->tab[b], *nx; e; e = nx) {
            nx = e->next;
            free(e->path);
            free(e);
        }
    free(c->tab);
    free(c);
}

static struct size_entry *imgcache_get(struct vr_imgcache *c, const char *p)
{
    size_t b = (size_t)vr_hash64(p, strlen(p)) & (c->nb - 1);
    for (struct size_entry *e = c->tab[b]; e; e = e->next)
        if (strcmp(e->path, p) == 0) return e;
    if (c->n * 2 > c->nb) { /* grow before the chains get long */
        size_t nb = c->nb * 2;
        struct size_entry **tab = vr_xcalloc(nb, sizeof *tab);
        for (size_t i = 0; i < c->nb; i++)
            for (struct size_entry *e = c->tab[i], *nx; e; e = nx) {
                nx = e->next;
                size_t k = (size_t)vr_hash64(e->path, strlen(e->path)) & (nb - 1);
                e->next = tab[k];
                tab[k] = e;
            }
        free(c->tab);
        c->tab = tab;
        c->nb = nb;
        b = (size_t)vr_hash64(p, strlen(p)) & (nb - 1);
    }
    struct size_entry *e = vr_xcalloc(1, sizeof *e);
    e->path = vr_xstrdup(p);
    if (vr_image_probe(p, &e->w, &e->h, NULL, &e->err)) e->w = -1;
    e->next = c->tab[b];
    c->tab[b] = e;
    c->n++;
    return e;
}

int vr_dataset_check_task(struct vr_imgcache *c, json_t *t, struct vr_err *err)
{
    json_t *im = json_object_get(t, "images");
    const char *id = json_string_value(json_object_get(t, "id"));
    json_t *sizes = json_array();
    for (size_t j = 0; j < json_array_size(im); j++) {
        struct size_entry *e = imgcache_get(c, json_string_value(json_array_get(im, j)));
        if (e->w < 0) {
            *err = e->err;
            json_decref(sizes);
            return -1;
        }
        json_array_append_new(sizes, json_pack("[ii]", e->w, e->h));
    }
    json_t *given = json_object_get(t, "image_sizes");
    if (given && !json_equal(given, sizes)) {
        char *g = json_dumps(given, JSON_COMPACT), *s = json_dumps(sizes, JSON_COMPACT);
        vr_err_set(err, VR_ERR_INPUT, NULL, 0, "task '%s': image_sizes %s, but the files are %s", id, g, s);
        free(g);
        free(s);
        json_decref(sizes);
        return -1;
    }
    json_object_set_new(t, "image_sizes", sizes);
    if (vr_task_validate(t, NULL, 0, err)) {
        char tmp[sizeof err->msg];
        snprintf(tmp, sizeof tmp, "task '%s': %s", id, err->msg);
        memcpy(err->msg, tmp, sizeof tmp);
        return -1;
    }
    return 0;
}

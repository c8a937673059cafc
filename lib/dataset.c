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

const char *vr_format_name(enum vr_format f) { return fmt_names[f]; }

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
        else
            return vr_err_set(err, VR_ERR_USAGE, NULL, 0,
                              "'%s': expected all, first:N, end:N or random:N (N may be a percentage)",
                              s);
        num = colon + 1;
    }
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
    }
    if (*end) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "'%s': trailing '%s'", s, end);
    t->n = v;
    if (bare) t->how = t->percent ? VR_TAKE_RANDOM : VR_TAKE_FIRST;
    return 0;
}

int64_t vr_take_apply(json_t **items, int64_t n, const struct vr_take *t, uint64_t seed,
                      uint64_t stream)
{
    if (t->how == VR_TAKE_ALL) return n;
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
    char *split;
    json_t *recs;    /* list of records */
    long *lines;     /* JSONL: line of each record; JSON list: computed on demand */
    char *text;      /* JSON list: the file, kept to find a record's line */
    size_t text_len;
    struct vr_dataset_opts *o;
};

/* Line on which element k of the top-level JSON list starts. */
static long json_elem_line(const char *s, size_t n, int64_t k)
{
    long line = 1;
    int depth = 0, instr = 0, esc = 0, want = 0;
    int64_t idx = -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\n') line++;
        if (instr) {
            if (esc) esc = 0;
            else if (c == '\\') esc = 1;
            else if (c == '"') instr = 0;
            continue;
        }
        if (depth == 1 && want && !isspace((unsigned char)c) && c != ',' && c != ']') {
            want = 0;
            if (++idx == k) return line;
        }
        switch (c) {
        case '"': instr = 1; break;
        case '[':
        case '{':
            if (++depth == 1) want = 1;
            break;
        case ']':
        case '}': depth--; break;
        case ',':
            if (depth == 1) want = 1;
            break;
        }
    }
    return 0;
}

static long src_line(struct src *s, int64_t k)
{
    if (s->lines) return s->lines[k];
    if (s->text) return json_elem_line(s->text, s->text_len, k);
    return 0;
}

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

/* Load a JSON list (whole file) or JSONL (one object per line) of records. */
static int load_records(struct src *s, struct vr_err *err)
{
    char *text;
    size_t len;
    if (vr_file_read(s->path, &text, &len, err)) return -1;
    size_t i = 0;
    while (i < len && isspace((unsigned char)text[i])) i++;
    if (i == len) {
        free(text);
        return vr_err_set(err, VR_ERR_INPUT, s->path, 0, "file is empty");
    }
    if (text[i] == '[') {
        json_error_t je;
        s->recs = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        if (!s->recs) {
            free(text);
            return vr_err_set(err, VR_ERR_INPUT, s->path, je.line, "invalid JSON: %s (column %d)",
                              je.text, je.column);
        }
        s->text = text;
        s->text_len = len;
        return 0;
    }
    /* JSON Lines */
    s->recs = json_array();
    size_t cap = 1024, n = 0;
    s->lines = vr_xmalloc(cap * sizeof *s->lines);
    long line = 0;
    char *p = text, *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        line++;
        char *q = p;
        while (q < e && isspace((unsigned char)*q)) q++;
        if (q < e) {
            json_error_t je;
            json_t *v = json_loadb(p, (size_t)(e - p), JSON_REJECT_DUPLICATES, &je);
            if (!v || !json_is_object(v)) {
                if (v) json_decref(v);
                vr_err_set(err, VR_ERR_INPUT, s->path, line,
                           v ? "expected a JSON object" : "invalid JSON: %s (column %d)", je.text,
                           je.column);
                if (!s->o->skip_bad) {
                    free(text);
                    return -1;
                }
                s->o->skipped++;
                if (s->o->warn) s->o->warn(s->o->warn_ctx, err);
            } else {
                if (n == cap) s->lines = vr_xrealloc(s->lines, (cap *= 2) * sizeof *s->lines);
                s->lines[n++] = line;
                json_array_append_new(s->recs, v);
            }
        }
        p = e + 1;
    }
    free(text);
    return 0;
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

/* Common tail of every format: resolve images, make the id and label, check
 * the box, append. solution is stolen. sizes may be NULL. */
static int add_task(struct src *s, int64_t k, struct vr_tasks *out, int nimg,
                    const char *const *images, const int (*sizes)[2], const char *problem,
                    json_t *solution, const char *label, struct vr_err *err)
{
    char **abs_ = vr_xcalloc((size_t)nimg + 1, sizeof *abs_);
    for (int i = 0; i < nimg; i++) {
        char *j = vr_path_join(s->root, images[i]);
        abs_[i] = vr_path_abs(j);
        free(j);
    }
    char *derived = label ? NULL : vr_rec_label_from_problem(problem);
    char id[512];
    snprintf(id, sizeof id, "%s/%lld", s->split, (long long)k);
    json_t *t = vr_task_new(id, s->split, nimg, (const char *const *)abs_, sizes, problem, solution,
                            label ? label : derived);
    for (int i = 0; i < nimg; i++) free(abs_[i]);
    free(abs_);
    free(derived);
    if (vr_task_validate(t, NULL, 0, err)) {
        json_decref(t);
        return -1;
    }
    vr_tasks_push(out, t);
    return 0;
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

static int conv_rec(struct src *s, int64_t k, json_t *r, struct vr_tasks *out, struct vr_err *err)
{
    const char **images;
    int nimg;
    if (!json_is_object(r)) return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "record is not an object");
    if (record_images(r, "image", &images, &nimg, err)) return -1;
    int rc = -1;
    json_t *pr = json_object_get(r, "problem"), *so = json_object_get(r, "solution"),
           *cap = json_object_get(r, "normal_caption"), *w = json_object_get(r, "width"),
           *h = json_object_get(r, "height");
    int sz[1][2] = {{0, 0}};
    if (!json_is_string(pr)) {
        vr_err_set(err, VR_ERR_INPUT, NULL, 0, "'problem' is missing or not a string");
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
    rc = add_task(s, k, out, nimg, images, nimg == 1 ? (const int(*)[2])sz : NULL,
                  json_string_value(pr), sol, json_is_string(cap) ? json_string_value(cap) : NULL,
                  err);
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
static int chat_rec(struct src *s, int64_t k, json_t *r, struct vr_tasks *out, int messages,
                    struct vr_err *err)
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
    rc = add_task(s, k, out, nimg, images, NULL, q, sol, label, err);
    free(label);
out:
    free(images);
    free(q);
    free(a);
    return rc;
}

static int tasks_rec(struct src *s, int64_t k, json_t *r, struct vr_tasks *out, struct vr_err *err)
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
            char *j = vr_path_join(s->root, json_string_value(x));
            char *a = vr_path_abs(j);
            json_array_set_new(im, i, json_string(a));
            free(j);
            free(a);
        }
    }
    json_t *so = json_object_get(t, "solution");
    if (json_is_array(so)) json_object_set_new(t, "solution", box_normalise(so));
    if (vr_task_validate(t, NULL, 0, err)) {
        json_decref(t);
        return -1;
    }
    vr_tasks_push(out, t);
    return 0;
}

static int read_src(struct src *s, enum vr_format f, struct vr_tasks *out, struct vr_err *err)
{
    if (load_records(s, err)) return -1;
    if (!json_is_array(s->recs))
        return vr_err_set(err, VR_ERR_INPUT, s->path, 0, "expected a list of records");
    if (f == VR_FMT_AUTO) f = detect(s->path, json_array_get(s->recs, 0));
    size_t k;
    json_t *r;
    json_array_foreach(s->recs, k, r) {
        int rc;
        switch (f) {
        case VR_FMT_CONV: rc = chat_rec(s, (int64_t)k, r, out, 0, err); break;
        case VR_FMT_MESSAGES: rc = chat_rec(s, (int64_t)k, r, out, 1, err); break;
        case VR_FMT_TASKS: rc = tasks_rec(s, (int64_t)k, r, out, err); break;
        default: rc = conv_rec(s, (int64_t)k, r, out, err); break;
        }
        if (rc) {
            vr_err_locate(err, s->path, src_line(s, (int64_t)k));
            if (!s->o->skip_bad) return -1;
            s->o->skipped++;
            if (s->o->warn) s->o->warn(s->o->warn_ctx, err);
        }
    }
    return 0;
}

static void src_free(struct src *s)
{
    free(s->root);
    free(s->split);
    if (s->recs) json_decref(s->recs);
    free(s->lines);
    free(s->text);
}

static int read_one(const char *path, const char *images_dir, const char *split_default,
                    enum vr_format f, struct vr_dataset_opts *o, struct vr_tasks *out,
                    struct vr_err *err)
{
    struct src s = {.path = path, .o = o};
    s.root = images_dir ? vr_xstrdup(images_dir) : vr_path_dir(path);
    s.split = o->split ? vr_xstrdup(o->split) : vr_xstrdup(split_default);
    int rc = read_src(&s, f, out, err);
    src_free(&s);
    return rc;
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

static int read_yaml(const char *path, struct vr_dataset_opts *o, struct vr_tasks *out,
                     struct vr_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return vr_err_sys(err, path, "cannot open");
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
        rc = read_one(jpath, o->images_dir, split, VR_FMT_AUTO, o, &part, err);
        if (rc == 0) {
            part.n = vr_take_apply(part.v, part.n, &take, o->seed, 0x79616d6c00000000ull + (uint64_t)idx);
            for (int64_t i = 0; i < part.n; i++) vr_tasks_push(out, part.v[i]);
            part.n = 0;
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
    return rc;
}

int vr_dataset_read(const char *path, struct vr_dataset_opts *o, struct vr_tasks *out,
                    struct vr_err *err)
{
    enum vr_format f = o->format;
    if (f == VR_FMT_AUTO && (ends_with(path, ".yaml") || ends_with(path, ".yml"))) f = VR_FMT_YAML;
    if (f == VR_FMT_YAML) return read_yaml(path, o, out, err);
    char *split = strcmp(path, "-") == 0 ? vr_xstrdup("stdin") : basename_noext(path);
    int rc = read_one(path, o->images_dir, split, f, o, out, err);
    free(split);
    return rc;
}

/* ---- image checks ---- */

struct size_entry {
    char *path;
    int w, h; /* w < 0: the probe failed */
    struct vr_err err;
    struct size_entry *next;
};

int vr_dataset_check_images(struct vr_tasks *ts, struct vr_dataset_opts *o, struct vr_err *err)
{
    size_t nb = 1;
    while (nb < (size_t)ts->n * 2) nb <<= 1;
    struct size_entry **tab = vr_xcalloc(nb, sizeof *tab);
    int64_t kept = 0, i;
    int rc = 0;
    for (i = 0; i < ts->n && rc == 0; i++) {
        json_t *t = ts->v[i];
        json_t *im = json_object_get(t, "images");
        json_t *sizes = json_array();
        int bad = 0;
        for (size_t j = 0; j < json_array_size(im) && !bad; j++) {
            const char *p = json_string_value(json_array_get(im, j));
            size_t b = (size_t)vr_hash64(p, strlen(p)) & (nb - 1);
            struct size_entry *e = tab[b];
            while (e && strcmp(e->path, p)) e = e->next;
            if (!e) {
                e = vr_xcalloc(1, sizeof *e);
                e->path = vr_xstrdup(p);
                if (vr_image_probe(p, &e->w, &e->h, NULL, &e->err)) e->w = -1;
                e->next = tab[b];
                tab[b] = e;
            }
            if (e->w < 0) {
                *err = e->err;
                bad = 1;
            } else {
                json_array_append_new(sizes, json_pack("[ii]", e->w, e->h));
            }
        }
        if (!bad) {
            json_t *given = json_object_get(t, "image_sizes");
            if (given && !json_equal(given, sizes)) {
                char *g = json_dumps(given, JSON_COMPACT), *s = json_dumps(sizes, JSON_COMPACT);
                vr_err_set(err, VR_ERR_INPUT, NULL, 0, "task '%s': image_sizes %s, but the files are %s",
                           json_string_value(json_object_get(t, "id")), g, s);
                free(g);
                free(s);
                bad = 1;
            } else {
                json_object_set(t, "image_sizes", sizes);
                if (vr_task_validate(t, NULL, 0, err)) {
                    char tmp[sizeof err->msg];
                    snprintf(tmp, sizeof tmp, "task '%s': %s", json_string_value(json_object_get(t, "id")),
                             err->msg);
                    memcpy(err->msg, tmp, sizeof tmp);
                    bad = 1;
                }
            }
        }
        json_decref(sizes);
        if (bad) {
            if (!o->skip_bad) rc = -1;
            else {
                o->skipped++;
                if (o->warn) o->warn(o->warn_ctx, err);
                json_decref(t);
                continue;
            }
        }
        ts->v[kept++] = t;
    }
    for (; i < ts->n; i++) ts->v[kept++] = ts->v[i]; /* after an error: keep the rest owned */
    ts->n = kept;
    for (size_t b = 0; b < nb; b++)
        for (struct size_entry *e = tab[b], *nx; e; e = nx) {
            nx = e->next;
            free(e->path);
            free(e);
        }
    free(tab);
    return rc;
}

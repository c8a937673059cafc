/* chat.c: the Qwen2.5-VL chat template and task lines -> prompts (see
 * chat.h). Golden-tested against transformers' apply_chat_template + the
 * Qwen2.5-VL processor (tests/t0520). */
#include "chat.h"

#include "fs.h"

#include <math.h>
#include <string.h>

#include "jsonl.h"
#include "preprocess.h"
#include "task.h"

struct render {
    struct vr_bpe *tok;
    struct vr_buf *text;
    struct vr_ids *ids;
    struct vr_buf run; /* text since the last special token */
};

static void put_text(struct render *r, const char *s)
{
    if (r->text) vr_buf_puts(r->text, s);
    if (r->ids) vr_buf_puts(&r->run, s);
}

static void put_special(struct render *r, const char *s, int32_t id)
{
    if (r->text) vr_buf_puts(r->text, s);
    if (!r->ids) return;
    if (r->run.len) vr_bpe_encode(r->tok, r->run.p, r->run.len, 0, r->ids);
    vr_buf_reset(&r->run);
    vr_ids_push(r->ids, id);
}

enum { IM_START, IM_END, VIS_START, VIS_END, IMAGE_PAD, NSPECIAL };
static const char *const special_names[NSPECIAL] = {
    "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
};

int vr_chat_render(struct vr_bpe *tok, const struct vr_chat *c, struct vr_buf *text,
                   struct vr_ids *ids, struct vr_err *err)
{
    int32_t sp[NSPECIAL];
    for (int i = 0; i < NSPECIAL; i++) {
        sp[i] = vr_bpe_token_id(tok, special_names[i]);
        if (sp[i] < 0) {
            vr_err_set(err, VR_ERR_INPUT, NULL, 0, "the tokenizer has no '%s' token",
                       special_names[i]);
            return vr_err_hint(err, "the Qwen2.5-VL chat template needs Qwen's special tokens");
        }
    }
    int merge = c->merge_size > 0 ? c->merge_size : 2;
    long npad[64], *pads = c->nimages <= 64 ? npad : vr_xmalloc((size_t)c->nimages * sizeof *pads);
    for (int i = 0; i < c->nimages; i++) {
        const int *g = c->grid_thw[i];
        long n = (long)g[0] * g[1] * g[2];
        if (g[0] <= 0 || g[1] <= 0 || g[2] <= 0 || n % (merge * merge)) {
            if (pads != npad) free(pads);
            return vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                              "image %d: grid_thw [%d, %d, %d] does not give whole merged tokens "
                              "(merge size %d)",
                              i + 1, g[0], g[1], g[2], merge);
        }
        pads[i] = n / (merge * merge);
    }
    size_t text0 = text ? text->len : 0, ids0 = ids ? ids->n : 0;
    struct render r = {tok, text, ids, {0}};
    put_special(&r, special_names[IM_START], sp[IM_START]);
    put_text(&r, "system\n");
    put_text(&r, c->system ? c->system : VR_CHAT_DEFAULT_SYSTEM);
    put_special(&r, special_names[IM_END], sp[IM_END]);
    put_text(&r, "\n");
    put_special(&r, special_names[IM_START], sp[IM_START]);
    put_text(&r, "user\n");
    for (int i = 0; i < c->nimages; i++) {
        put_special(&r, special_names[VIS_START], sp[VIS_START]);
        for (long k = 0; k < pads[i]; k++) put_special(&r, special_names[IMAGE_PAD], sp[IMAGE_PAD]);
        put_special(&r, special_names[VIS_END], sp[VIS_END]);
    }
    put_text(&r, c->user ? c->user : "");
    put_special(&r, special_names[IM_END], sp[IM_END]);
    put_text(&r, "\n");
    put_special(&r, special_names[IM_START], sp[IM_START]);
    put_text(&r, "assistant\n");
    if (c->assistant) {
        put_text(&r, c->assistant);
        put_special(&r, special_names[IM_END], sp[IM_END]);
        put_text(&r, "\n");
    }
    if (ids && r.run.len) vr_bpe_encode(tok, r.run.p, r.run.len, 0, ids);
    vr_buf_free(&r.run);
    if (pads != npad) free(pads);
#ifdef VR_DEBUG_ASSERT
    /* the ids must be those of the rendered text (chat.h says when) */
    if (text && ids) {
        struct vr_ids again = {0};
        vr_bpe_encode(tok, text->p + text0, text->len - text0, 0, &again);
        int same = again.n == ids->n - ids0 &&
                   (!again.n || !memcmp(again.v, ids->v + ids0, again.n * sizeof *again.v));
        vr_ids_release(&again);
        if (!same)
            return vr_err_set(err, VR_ERR_INPUT, NULL, 0,
                              "the prompt's ids differ from tokenizing its text (an added token "
                              "spans the user text and the template)");
    }
#else
    (void)text0, (void)ids0;
#endif
    return 0;
}

static const struct {
    const char *name, *text;
} templates[] = {
    {"r1", "{Question} First output the thinking process in <think> </think> tags and then output "
           "the final answer in <answer> </answer> tags. Output the final answer in JSON format."},
    {"baseline", "{Question} Please provide the bounding box coordinate in JSON format."},
    {"none", "{Question}"},
};

const char *vr_chat_template(const char *name)
{
    for (size_t i = 0; i < sizeof templates / sizeof *templates; i++)
        if (strcmp(name, templates[i].name) == 0) return templates[i].text;
    return NULL;
}

int vr_chat_template_arg(const char *arg, const char **tmpl, char **owned, struct vr_err *err)
{
    *owned = NULL;
    if ((*tmpl = vr_chat_template(arg))) return 0;
    size_t len;
    char *t;
    if (vr_file_read(arg, &t, &len, err)) {
        vr_err_hint(err, "--template takes r1, baseline, none, or a file");
        return -1;
    }
    if (len && t[len - 1] == '\n') t[--len] = 0;
    if (!strstr(t, "{Question}")) {
        free(t);
        return vr_err_set(err, VR_ERR_INPUT, arg, 0, "the template has no {Question}");
    }
    *tmpl = *owned = t;
    return 0;
}

void vr_chat_question(const char *tmpl, const char *problem, struct vr_buf *out)
{
    static const char key[] = "{Question}";
    const char *p = tmpl, *q;
    while ((q = strstr(p, key))) {
        vr_buf_put(out, p, (size_t)(q - p));
        vr_buf_puts(out, problem);
        p = q + sizeof key - 1;
    }
    vr_buf_puts(out, p);
}

static int grid_of(const json_t *px, int i, const char *file, long line, int g[3],
                   struct vr_err *err)
{
    json_t *thw = json_object_get(px, "grid_thw");
    if (!json_is_array(thw) || json_array_size(thw) != 3)
        return vr_err_set(err, VR_ERR_INPUT, file, line,
                          "'pixels' of image %d has no grid_thw [t, h, w]", i + 1);
    for (int k = 0; k < 3; k++) {
        json_t *v = json_array_get(thw, (size_t)k);
        if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > 1 << 20)
            return vr_err_set(err, VR_ERR_INPUT, file, line,
                              "'pixels' of image %d: grid_thw holds a value that is not a "
                              "positive integer",
                              i + 1);
        g[k] = (int)json_integer_value(v);
    }
    return 0;
}

int vr_chat_task_grids(const json_t *task, const struct vr_chat_task_opts *o, const char *file,
                       long line, int (**grids)[3], int *n, struct vr_err *err)
{
    *grids = NULL;
    *n = 0;
    json_t *images = json_object_get(task, "images");
    json_t *px = json_object_get(task, "pixels");
    json_t *sizes = json_object_get(task, "image_sizes");
    int nimg = json_is_array(images) ? (int)json_array_size(images)
               : json_is_array(px)   ? (int)json_array_size(px)
               : json_is_object(px)  ? 1
                                     : 0;
    if (nimg == 0) return 0;
    int(*g)[3] = vr_xcalloc((size_t)nimg, sizeof *g);
    if (px && !json_is_null(px)) {
        int npx = json_is_array(px) ? (int)json_array_size(px) : json_is_object(px) ? 1 : -1;
        if (npx != nimg) {
            free(g);
            return vr_err_set(err, VR_ERR_INPUT, file, line,
                              "'pixels' describes %d images, the task has %d", npx < 0 ? 0 : npx,
                              nimg);
        }
        for (int i = 0; i < nimg; i++) {
            json_t *p = json_is_array(px) ? json_array_get(px, (size_t)i) : px;
            if (grid_of(p, i, file, line, g[i], err)) {
                free(g);
                return -1;
            }
        }
    } else if (json_is_array(sizes)) {
        if ((int)json_array_size(sizes) != nimg) {
            free(g);
            return vr_err_set(err, VR_ERR_INPUT, file, line,
                              "'image_sizes' has %zu entries for %d images",
                              json_array_size(sizes), nimg);
        }
        int patch = o->patch_size > 0 ? o->patch_size : 14;
        int merge = o->merge_size > 0 ? o->merge_size : 2;
        long minp = o->min_pixels > 0 ? o->min_pixels : 3136;
        long maxp = o->max_pixels > 0 ? o->max_pixels : 12845056;
        for (int i = 0; i < nimg; i++) {
            json_t *wh = json_array_get(sizes, (size_t)i);
            json_t *w = json_array_get(wh, 0), *h = json_array_get(wh, 1);
            if (!json_is_integer(w) || !json_is_integer(h) || json_array_size(wh) != 2 ||
                json_integer_value(w) <= 0 || json_integer_value(h) <= 0 ||
                json_integer_value(w) > VR_TASK_MAX_SIDE || json_integer_value(h) > VR_TASK_MAX_SIDE) {
                free(g);
                return vr_err_set(err, VR_ERR_INPUT, file, line,
                                  "'image_sizes' entry %d is not [width, height]", i + 1);
            }
            int oh, ow;
            if (vr_smart_resize((int)json_integer_value(h), (int)json_integer_value(w),
                                patch * merge, minp, maxp, &oh, &ow, err)) {
                free(g);
                return vr_err_locate(err, file, line);
            }
            g[i][0] = 1;
            g[i][1] = oh / patch;
            g[i][2] = ow / patch;
        }
    } else {
        free(g);
        vr_err_set(err, VR_ERR_INPUT, file, line,
                   "no 'pixels' or 'image_sizes' to size the task's %d image%s", nimg,
                   nimg == 1 ? "" : "s");
        return vr_err_hint(err, "run vr-prep --check-images or vr-encode first");
    }
    *grids = g;
    *n = nimg;
    return 0;
}

static long round_half_up(double x) { return (long)floor(x + 0.5); }

int vr_chat_task_answer(const json_t *task, const int grid0[3], const struct vr_chat_task_opts *o,
                        const char *file, long line, struct vr_buf *out, struct vr_err *err)
{
    json_t *comp = json_object_get(task, "completion");
    if (json_is_string(comp)) {
        vr_buf_put(out, json_string_value(comp), json_string_length(comp));
        return 0;
    }
    json_t *think = json_object_get(task, "think");
    if (json_is_string(think)) {
        vr_buf_puts(out, "<think>");
        vr_buf_put(out, json_string_value(think), json_string_length(think));
        vr_buf_puts(out, "</think>");
    }
    json_t *sol = json_object_get(task, "solution");
    if (json_is_string(sol)) {
        vr_buf_puts(out, "<answer>");
        vr_buf_put(out, json_string_value(sol), json_string_length(sol));
        vr_buf_puts(out, "</answer>");
        return 0;
    }
    if (!json_is_array(sol) || json_array_size(sol) != 4)
        return vr_err_set(err, VR_ERR_INPUT, file, line,
                          "no 'completion' and no box or string 'solution' for the answer");
    double box[4];
    for (int k = 0; k < 4; k++) {
        json_t *v = json_array_get(sol, (size_t)k);
        if (!json_is_number(v) || !isfinite(json_number_value(v)))
            return vr_err_set(err, VR_ERR_INPUT, file, line, "'solution' is not 4 numbers");
        box[k] = json_number_value(v);
    }
    json_t *wh = json_array_get(json_object_get(task, "image_sizes"), 0);
    json_t *w = json_array_get(wh, 0), *h = json_array_get(wh, 1);
    if (!grid0 || !json_is_integer(w) || !json_is_integer(h) || json_integer_value(w) <= 0 ||
        json_integer_value(h) <= 0) {
        vr_err_set(err, VR_ERR_INPUT, file, line,
                   "a box answer needs the image's size ('image_sizes') to scale the box");
        return vr_err_hint(err, "run vr-prep --check-images, or give the answer in 'completion'");
    }
    int patch = o->patch_size > 0 ? o->patch_size : 14;
    double sx = (double)grid0[2] * patch, sy = (double)grid0[1] * patch;
    double ow = (double)json_integer_value(w), oh = (double)json_integer_value(h);
    vr_buf_printf(out, "<answer>{\"bbox_2d\": [%ld, %ld, %ld, %ld]",
                  round_half_up(box[0] * sx / ow), round_half_up(box[1] * sy / oh),
                  round_half_up(box[2] * sx / ow), round_half_up(box[3] * sy / oh));
    json_t *label = json_object_get(task, "label");
    if (json_is_string(label)) {
        vr_buf_puts(out, ", \"label\": ");
        vr_json_dump_string(out, json_string_value(label), json_string_length(label));
    }
    vr_buf_puts(out, "}</answer>");
    return 0;
}

int vr_chat_task(struct vr_bpe *tok, const json_t *task, const struct vr_chat_task_opts *o,
                 const char *file, long line, struct vr_buf *text, struct vr_ids *ids,
                 struct vr_err *err)
{
    json_t *prob = json_object_get(task, "problem");
    if (!json_is_string(prob))
        return vr_err_set(err, VR_ERR_INPUT, file, line, "'problem' is missing or not a string");
    int(*grids)[3] = NULL, n = 0, rc = -1;
    struct vr_buf q = {0}, ans = {0};
    if (vr_chat_task_grids(task, o, file, line, &grids, &n, err)) goto out;
    vr_chat_question(o->tmpl ? o->tmpl : vr_chat_template("r1"), json_string_value(prob), &q);
    if (o->assistant &&
        vr_chat_task_answer(task, n ? grids[0] : NULL, o, file, line, &ans, err))
        goto out;
    struct vr_chat c = {
        .system = o->system,
        .nimages = n,
        .grid_thw = (const int(*)[3])grids,
        .merge_size = o->merge_size,
        .user = q.p ? q.p : "",
        .assistant = o->assistant ? (ans.p ? ans.p : "") : NULL,
    };
    if (vr_chat_render(tok, &c, text, ids, err)) {
        vr_err_locate(err, file, line);
        goto out;
    }
    rc = 0;
out:
    free(grids);
    vr_buf_free(&q);
    vr_buf_free(&ans);
    return rc;
}

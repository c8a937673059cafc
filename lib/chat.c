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
    vr_buf_release(&r.run);
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

static long round_half_up(double x) { return (long)floor(x + 0.5); }

int vr_chat_task_answer(const struct vr_task *t, const struct vr_chat_task_opts *o, const char *file, long line,
                        struct vr_buf *out, struct vr_err *err)
{
    if (t->completion) {
        vr_buf_puts(out, t->completion);
        return 0;
    }
    if (t->think) {
        vr_buf_puts(out, "<think>");
        vr_buf_puts(out, t->think);
        vr_buf_puts(out, "</think>");
    }
    if (t->sol == VR_SOL_TEXT) {
        vr_buf_puts(out, "<answer>");
        vr_buf_put(out, t->answer, t->answer_len);
        vr_buf_puts(out, "</answer>");
        return 0;
    }
    if (t->sol != VR_SOL_BOX)
        return vr_err_set(err, VR_ERR_INPUT, file, line,
                          "no 'completion' and no box or string 'solution' for the answer");
    if (t->nimages == 0 || !t->grids || t->im[0].w <= 0) {
        vr_err_set(err, VR_ERR_INPUT, file, line,
                   "a box answer needs the image's size ('image_sizes') to scale the box");
        return vr_err_hint(err, "run vr-prep --check-images, or give the answer in 'completion'");
    }
    int patch = o->patch_size > 0 ? o->patch_size : 14;
    const int *g = t->im[0].grid;
    double sx = (double)g[2] * patch, sy = (double)g[1] * patch;
    double ow = t->im[0].w, oh = t->im[0].h;
    const double *box = t->box;
    double v[4] = {box[0] * sx / ow, box[1] * sy / oh, box[2] * sx / ow, box[3] * sy / oh};
    /* a box may stray outside its image (transformers renders it all the
     * same), but not beyond what an integer holds */
    for (int k = 0; k < 4; k++)
        if (!(fabs(v[k]) < 1e9))
            return vr_err_set(err, VR_ERR_INPUT, file, line,
                              "'solution' [%g, %g, %g, %g] scaled to the model's input is beyond 1e9 pixels", box[0],
                              box[1], box[2], box[3]);
    vr_buf_printf(out, "<answer>{\"bbox_2d\": [%ld, %ld, %ld, %ld]", round_half_up(v[0]), round_half_up(v[1]),
                  round_half_up(v[2]), round_half_up(v[3]));
    if (t->label) {
        vr_buf_puts(out, ", \"label\": ");
        vr_json_dump_string(out, t->label, strlen(t->label));
    }
    vr_buf_puts(out, "}</answer>");
    return 0;
}

int vr_chat_task(struct vr_bpe *tok, const struct vr_task *t, const struct vr_chat_task_opts *o,
                 const char *file, long line, struct vr_buf *text, struct vr_ids *ids,
                 struct vr_err *err)
{
    if (!t->problem)
        return vr_err_set(err, VR_ERR_INPUT, file, line, "'problem' is missing or not a string");
    if (!t->grids) {
        vr_err_set(err, VR_ERR_INPUT, file, line, "no 'pixels' or 'image_sizes' to size the task's %d image%s",
                   t->nimages, t->nimages == 1 ? "" : "s");
        return vr_err_hint(err, "run vr-prep --check-images or vr-encode first");
    }
    int rc = -1;
    struct vr_buf q = {0}, ans = {0};
    int(*grids)[3] = vr_task_grids(t);
    vr_chat_question(o->tmpl ? o->tmpl : vr_chat_template("r1"), t->problem, &q);
    if (o->assistant && vr_chat_task_answer(t, o, file, line, &ans, err)) goto out;
    struct vr_chat c = {
        .system = o->system,
        .nimages = t->nimages,
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
    vr_buf_release(&q);
    vr_buf_release(&ans);
    return rc;
}

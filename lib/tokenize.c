/* tokenize.c: vr-tokenize's line formats around lib/bpe and lib/chat
 * (tokenize.h). */
#include "tokenize.h"

#include <string.h>

#include "fs.h"
#include "jsonl.h"

static void put_ids(struct vr_buf *b, const int32_t *v, size_t n)
{
    vr_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        char tmp[16];
        int k = snprintf(tmp, sizeof tmp, i ? ",%d" : "%d", v[i]);
        vr_buf_put(b, tmp, (size_t)k);
    }
    vr_buf_putc(b, ']');
}

int vr_tokenize_flush(struct vr_tokenize *t, FILE *out, const char *out_name, struct vr_err *err)
{
    int rc = 0;
    if (t->out.len && fwrite(t->out.p, 1, t->out.len, out) != t->out.len)
        rc = vr_err_set(err, VR_ERR_SYS, out_name, 0, "write failed");
    vr_buf_reset(&t->out);
    return rc;
}

/* A JSON array of ids, or an object whose "ids" is one, into c->ids. */
static int parse_ids(struct vr_tokenize *c, json_t *v, const char *file, long line, struct vr_err *err)
{
    if (json_is_object(v)) v = json_object_get(v, "ids");
    if (!json_is_array(v))
        return vr_err_set(err, VR_ERR_INPUT, file, line,
                          "expected a JSON array of ids (or an object with \"ids\")");
    c->ids.n = 0;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x)
    {
        json_int_t id = json_is_integer(x) ? json_integer_value(x) : -1;
        if (!json_is_integer(x) || id < 0 || id > INT32_MAX || !vr_bpe_has_id(c->tok, (int32_t)id))
            return vr_err_set(err, VR_ERR_INPUT, file, line,
                              "element %zu is not a token id of this tokenizer", i + 1);
        vr_ids_push(&c->ids, (int32_t)id);
    }
    return 0;
}

/* A task line: {["id",] "text", "ids", "n_tokens"}. */
static int chat_line(struct vr_tokenize *c, const json_t *v, const char *file, long line, struct vr_err *err)
{
    if (!json_is_object(v)) return vr_err_set(err, VR_ERR_INPUT, file, line, "expected a task line (a JSON object)");
    struct vr_buf text = {0};
    struct vr_task t;
    c->ids.n = 0;
    if (vr_task_parse(v, VR_NEED_GRIDS, &c->lim, file, line, &t, err)) return -1;
    int bad = vr_chat_task(c->tok, &t, &c->chat, file, line, &text, &c->ids, err);
    vr_task_release(&t);
    if (bad) {
        vr_buf_release(&text);
        return -1;
    }
    c->tokens += (long)c->ids.n;
    c->bytes += (double)text.len;
    vr_buf_putc(&c->out, '{');
    json_t *id = json_object_get(v, "id");
    if (id) {
        vr_buf_puts(&c->out, "\"id\":");
        vr_json_dump(&c->out, id);
        vr_buf_putc(&c->out, ',');
    }
    vr_buf_puts(&c->out, "\"text\":");
    vr_json_dump_string(&c->out, text.p ? text.p : "", text.len);
    vr_buf_puts(&c->out, ",\"ids\":");
    put_ids(&c->out, c->ids.v, c->ids.n);
    vr_buf_printf(&c->out, ",\"n_tokens\":%zu}\n", c->ids.n);
    vr_buf_release(&text);
    return 0;
}

int vr_tokenize_line(struct vr_tokenize *c, const char *s, size_t n, const char *file, long line,
                     struct vr_err *err)
{
    json_t *v = NULL;
    int rc = -1;
    if (c->mode == VR_TOKENIZE_CHAT || c->mode == VR_TOKENIZE_DECODE || c->json) {
        json_error_t je;
        v = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!v)
            return vr_err_set(err, VR_ERR_INPUT, file, line, "invalid JSON: %s (column %d)",
                              je.text, je.column);
    }
    c->lines++;
    switch (c->mode) {
    case VR_TOKENIZE_ENCODE:
        if (v) {
            if (!json_is_string(v)) {
                vr_err_set(err, VR_ERR_INPUT, file, line, "expected a JSON string");
                goto out;
            }
            s = json_string_value(v);
            n = json_string_length(v);
        }
        c->ids.n = 0;
        c->bytes += (double)n;
        vr_bpe_encode(c->tok, s, n, c->split_special ? VR_BPE_SPECIAL_AS_TEXT : 0, &c->ids);
        c->tokens += (long)c->ids.n;
        put_ids(&c->out, c->ids.v, c->ids.n);
        vr_buf_putc(&c->out, '\n');
        break;
    case VR_TOKENIZE_DECODE: {
        if (parse_ids(c, v, file, line, err)) goto out;
        struct vr_buf text = {0};
        vr_bpe_decode(c->tok, c->ids.v, c->ids.n, c->skip_special ? VR_BPE_SKIP_SPECIAL : 0,
                      &text);
        c->tokens += (long)c->ids.n;
        c->bytes += (double)text.len;
        if (c->json) vr_json_dump_string(&c->out, text.p ? text.p : "", text.len);
        else vr_buf_put(&c->out, text.p ? text.p : "", text.len);
        vr_buf_putc(&c->out, '\n');
        vr_buf_release(&text);
        break;
    }
    case VR_TOKENIZE_CHAT:
        if (chat_line(c, v, file, line, err)) goto out;
        break;
    }
    rc = 0;
out:
    json_decref(v);
    return rc;
}

int vr_tokenize_file(struct vr_tokenize *c, const char *path, FILE *out, const char *out_name,
                     struct vr_err *err)
{
    FILE *fp = stdin;
    const char *name = "<stdin>";
    if (strcmp(path, "-") != 0) {
        fp = fopen(path, "r");
        if (!fp) return vr_err_sys(err, path, "cannot open");
        name = path;
    }
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    long line = 0;
    int rc = 0;
    while (rc == 0 && (n = getline(&buf, &cap, fp)) >= 0) {
        line++;
        size_t len = (size_t)n;
        if (len && buf[len - 1] == '\n') len--;
        if (c->mode != VR_TOKENIZE_ENCODE || c->json) {
            /* JSON lines: blank lines are skipped, a CR before the LF is allowed */
            if (len && buf[len - 1] == '\r') len--;
            size_t i = 0;
            while (i < len && (buf[i] == ' ' || buf[i] == '\t')) i++;
            if (i == len) continue;
        }
        rc = vr_tokenize_line(c, buf, len, name, line, err);
        if (rc == 0 && c->out.len >= (1 << 16)) rc = vr_tokenize_flush(c, out, out_name, err);
    }
    if (rc == 0 && ferror(fp)) rc = vr_err_sys(err, name, "read failed");
    free(buf);
    if (fp != stdin) fclose(fp);
    return rc;
}

void vr_tokenize_release(struct vr_tokenize *t)
{
    vr_buf_release(&t->out);
    vr_ids_release(&t->ids);
}

void vr_tokenize_preprocessor(struct vr_tokenize *t, const char *dir)
{
    struct vr_chat_task_opts *o = &t->chat;
    struct vr_task_limits *l = &t->lim;
    char *path = vr_path_join(dir, "preprocessor_config.json");
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    free(path);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    json_t *size = json_object_get(j, "size");
    json_t *mn = json_object_get(j, "min_pixels"), *mx = json_object_get(j, "max_pixels");
    if (!json_is_integer(mn)) mn = json_object_get(size, "shortest_edge");
    if (!json_is_integer(mx)) mx = json_object_get(size, "longest_edge");
    if (json_is_integer(mn) && json_integer_value(mn) > 0 && json_integer_value(mn) <= 1L << 40)
        l->min_pixels = (long)json_integer_value(mn);
    if (json_is_integer(mx) && json_integer_value(mx) > 0 && json_integer_value(mx) <= 1L << 40)
        l->max_pixels = (long)json_integer_value(mx);
    json_t *ps = json_object_get(j, "patch_size"), *ms = json_object_get(j, "merge_size");
    if (json_is_integer(ps) && json_integer_value(ps) > 0 && json_integer_value(ps) < 1024)
        o->patch_size = l->patch = (int)json_integer_value(ps);
    if (json_is_integer(ms) && json_integer_value(ms) > 0 && json_integer_value(ms) < 64)
        o->merge_size = l->merge = (int)json_integer_value(ms);
    json_decref(j);
}


/* vr-tokenize: text -> token ids, ids -> text, and task lines -> the rendered
 * Qwen2.5-VL chat prompt with its ids. A debugging tool beside the pipeline
 * (as llama.cpp's llama-tokenize); lib/bpe and lib/chat do the work. */
#include <stdio.h>
#include <string.h>

#include "bpe.h"
#include "chat.h"
#include "cli.h"
#include "fileset.h"
#include "fs.h"
#include "jsonl.h"
#include "task.h"
#include "progress.h"

enum {
    O_JSON = 256,
    O_CHAT,
    O_SYSTEM,
    O_TEMPLATE,
    O_ASSISTANT,
    O_MINPX,
    O_MAXPX,
    O_SKIP_SPECIAL,
    O_SPLIT_SPECIAL,
    O_STATS,
};

static const struct vr_opt opts[] = {
    {"tokenizer", 't', "FILE", "the tokenizer.json to use"},
    {"model", 'm', "DIR", "a checkpoint folder: its tokenizer.json (and preprocessor_config.json)"},
    {"json", O_JSON, NULL, "input lines are JSON strings; --decode prints JSON strings"},
    {"decode", 'd', NULL, "read JSON arrays of ids (or objects with \"ids\") and print their text"},
    {"chat", O_CHAT, NULL, "read task lines; print the chat prompt: {\"text\", \"ids\", \"n_tokens\"}"},
    {"system", O_SYSTEM, "TEXT", "--chat: system prompt (default \"You are a helpful assistant.\")"},
    {"template", O_TEMPLATE, "NAME|FILE",
     "--chat: question template r1, baseline, none, or a file with {Question} (default r1)"},
    {"assistant", O_ASSISTANT, NULL, "--chat: add the answer as an assistant turn (for SFT)"},
    {"min-pixels", O_MINPX, "N", "--chat: smart_resize lower bound (default 3136)"},
    {"max-pixels", O_MAXPX, "N", "--chat: smart_resize upper bound (default 12845056)"},
    {"skip-special", O_SKIP_SPECIAL, NULL, "--decode: leave out special tokens"},
    {"split-special", O_SPLIT_SPECIAL, NULL, "encode special-token text as plain text"},
    {"stats", O_STATS, NULL, "print load time, lines, bytes, tokens and MB/s on standard error"},
    {0},
};

static const struct vr_cli cli = {
    "vr-tokenize",
    "(--tokenizer FILE | --model DIR) [OPTION]... [FILE]...",
    "Print the token ids of each input line as a JSON array, as the tokenizers library\n"
    "gives them; --decode does the reverse; --chat renders task lines as the Qwen2.5-VL\n"
    "chat prompt. Reads the FILEs, or standard input.",
    opts,
};

enum mode { ENCODE, DECODE, CHAT };

struct ctx {
    struct vr_bpe *tok;
    enum mode mode;
    int json, skip_special, split_special;
    struct vr_chat_task_opts chat;
    struct vr_task_limits lim;
    struct vr_buf out;
    struct vr_ids ids;
    long lines, tokens;
    double bytes;
};

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

static void flush_out(struct ctx *c, int force)
{
    if (c->out.len < (1 << 16) && !force) return;
    if (c->out.len && fwrite(c->out.p, 1, c->out.len, stdout) != c->out.len)
        vr_die_msg("<stdout>: write failed");
    vr_buf_reset(&c->out);
}

/* A JSON array of ids, or an object whose "ids" is one, into c->ids. */
static int parse_ids(struct ctx *c, json_t *v, const char *file, long line, struct vr_err *err)
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

static int do_line(struct ctx *c, const char *s, size_t n, const char *file, long line,
                   struct vr_err *err)
{
    json_t *v = NULL;
    int rc = -1;
    if (c->mode == CHAT || c->mode == DECODE || c->json) {
        json_error_t je;
        v = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!v)
            return vr_err_set(err, VR_ERR_INPUT, file, line, "invalid JSON: %s (column %d)",
                              je.text, je.column);
    }
    c->lines++;
    switch (c->mode) {
    case ENCODE:
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
    case DECODE: {
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
    case CHAT: {
        if (!json_is_object(v)) {
            vr_err_set(err, VR_ERR_INPUT, file, line, "expected a task line (a JSON object)");
            goto out;
        }
        struct vr_buf text = {0};
        struct vr_task t;
        c->ids.n = 0;
        if (vr_task_parse(v, VR_NEED_GRIDS, &c->lim, file, line, &t, err)) goto out;
        int bad = vr_chat_task(c->tok, &t, &c->chat, file, line, &text, &c->ids, err);
        vr_task_release(&t);
        if (bad) {
            vr_buf_release(&text);
            goto out;
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
        break;
    }
    }
    flush_out(c, 0);
    rc = 0;
out:
    json_decref(v);
    return rc;
}

static void run_file(struct ctx *c, const char *path)
{
    struct vr_err err;
    FILE *fp = stdin;
    const char *name = "<stdin>";
    if (strcmp(path, "-") != 0) {
        fp = fopen(path, "r");
        if (!fp) {
            vr_err_sys(&err, path, "cannot open");
            vr_die(&err);
        }
        name = path;
    }
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    long line = 0;
    while ((n = getline(&buf, &cap, fp)) >= 0) {
        line++;
        size_t len = (size_t)n;
        if (len && buf[len - 1] == '\n') len--;
        if (c->mode != ENCODE || c->json) {
            /* JSON lines: blank lines are skipped, a CR before the LF is allowed */
            if (len && buf[len - 1] == '\r') len--;
            size_t i = 0;
            while (i < len && (buf[i] == ' ' || buf[i] == '\t')) i++;
            if (i == len) continue;
        }
        if (do_line(c, buf, len, name, line, &err)) vr_die(&err);
    }
    if (ferror(fp)) {
        vr_err_sys(&err, name, "read failed");
        vr_die(&err);
    }
    free(buf);
    if (fp != stdin) fclose(fp);
}

/* min/max pixels, patch and merge size from DIR/preprocessor_config.json,
 * when present (both spellings: min_pixels/max_pixels, size.shortest_edge/
 * longest_edge). */
static void read_preprocessor(const char *dir, struct vr_chat_task_opts *o, struct vr_task_limits *l)
{
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

int main(int argc, char **argv)
{
    struct ctx c = {0};
    const char *tokfile = NULL, *model = NULL, *tmpl = NULL;
    long minpx = 0, maxpx = 0;
    int stats = 0, chat_only = 0;
    struct vr_err err;
    int opt, ind;
    const char *arg;
    vr_cli_init(&cli, argc, argv);
    while ((opt = vr_cli_next(&ind, &arg)) != -1) {
        switch (opt) {
        case 't': tokfile = arg; break;
        case 'm': model = arg; break;
        case O_JSON: c.json = 1; break;
        case 'd':
            if (c.mode == CHAT) vr_die_usage("--decode and --chat exclude each other");
            c.mode = DECODE;
            break;
        case O_CHAT:
            if (c.mode == DECODE) vr_die_usage("--decode and --chat exclude each other");
            c.mode = CHAT;
            break;
        case O_SYSTEM: c.chat.system = arg, chat_only = 1; break;
        case O_TEMPLATE: tmpl = arg, chat_only = 1; break;
        case O_ASSISTANT: c.chat.assistant = 1, chat_only = 1; break;
        case O_MINPX: minpx = (long)vr_cli_int("min-pixels", arg, 1, 1L << 40), chat_only = 1; break;
        case O_MAXPX: maxpx = (long)vr_cli_int("max-pixels", arg, 1, 1L << 40), chat_only = 1; break;
        case O_SKIP_SPECIAL: c.skip_special = 1; break;
        case O_SPLIT_SPECIAL: c.split_special = 1; break;
        case O_STATS: stats = 1; break;
        }
    }
    if (!tokfile == !model) vr_die_usage("give one of --tokenizer FILE and --model DIR");
    if (chat_only && c.mode != CHAT)
        vr_die_usage("--system, --template, --assistant and --min/max-pixels go with --chat");
    if (c.skip_special && c.mode != DECODE) vr_die_usage("--skip-special goes with --decode");
    if (c.split_special && c.mode != ENCODE) vr_die_usage("--split-special is for encoding");

    if (model && vr_fileset_settle(model, &err)) vr_die(&err); /* one save's files (fileset.h) */
    char *tokpath = model ? vr_path_join(model, "tokenizer.json") : vr_xstrdup(tokfile);
    double t0 = vr_now();
    if (vr_bpe_load(&c.tok, tokpath, &err)) vr_die(&err);
    double load_s = vr_now() - t0;

    char *tmpl_text = NULL;
    if (c.mode == CHAT) {
        vr_task_limits_default(&c.lim);
        if (model) read_preprocessor(model, &c.chat, &c.lim);
        if (minpx) c.lim.min_pixels = minpx;
        if (maxpx) c.lim.max_pixels = maxpx;
        if (c.lim.min_pixels > c.lim.max_pixels)
            vr_die_usage("--min-pixels %ld is above --max-pixels %ld", c.lim.min_pixels, c.lim.max_pixels);
        if (vr_chat_template_arg(tmpl ? tmpl : "r1", &c.chat.tmpl, &tmpl_text, &err)) vr_die(&err);
    }

    t0 = vr_now();
    if (ind >= argc) run_file(&c, "-");
    for (int i = ind; i < argc; i++) run_file(&c, argv[i]);
    flush_out(&c, 1);
    if (fflush(stdout) != 0 || ferror(stdout)) vr_die_msg("<stdout>: write failed");
    double run_s = vr_now() - t0;
    if (stats)
        fprintf(stderr,
                "%s: load %.1f ms, %ld lines, %.0f bytes, %ld tokens, %.3f s, %.2f MB/s\n",
                vr_prog, load_s * 1e3, c.lines, c.bytes, c.tokens, run_s,
                run_s > 0 ? c.bytes / run_s / 1e6 : 0.0);
    free(tmpl_text);
    free(tokpath);
    vr_buf_release(&c.out);
    vr_ids_release(&c.ids);
    vr_bpe_free(c.tok);
    return 0;
}

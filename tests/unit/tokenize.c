/* tokenize.c: lib/tokenize's line formats on the tiny golden tokenizer:
 * encode (text and JSON strings), decode (arrays, {"ids"}, JSON out,
 * special tokens left out), chat (a task line to its prompt), bad lines
 * naming file:line, whole files with CRLF and blank lines, the buffer
 * written to a FILE, and preprocessor_config.json's two spellings. */
#include "tokenize.h"

#include "../tap.h"
#include "files.h"
#include "golden.h"

static struct vr_bpe *tok;

static void setup(struct vr_tokenize *t, enum vr_tokenize_mode mode)
{
    memset(t, 0, sizeof *t);
    t->tok = tok;
    t->mode = mode;
    vr_task_limits_default(&t->lim);
}

/* t->out as a string (reset). */
static char *take(struct vr_tokenize *t)
{
    char *s = strndup(t->out.p ? t->out.p : "", t->out.len);
    vr_buf_reset(&t->out);
    return s;
}

static void test_encode_decode(void)
{
    struct vr_tokenize t;
    struct vr_err err;
    setup(&t, VR_TOKENIZE_ENCODE);
    ok(vr_tokenize_line(&t, "hello world", 11, "f", 1, &err) == 0, "encode a text line");
    char *ids = take(&t);
    ok(ids[0] == '[' && ids[strlen(ids) - 2] == ']' && ids[strlen(ids) - 1] == '\n', "as a JSON array line: %s", ids);
    struct vr_ids direct = {0};
    vr_bpe_encode(tok, "hello world", 11, 0, &direct);
    ok(t.lines == 1 && t.tokens == (long)direct.n && t.bytes == 11, "counts: 1 line, %zu tokens, 11 bytes", direct.n);

    t.json = 1;
    ok(vr_tokenize_line(&t, "\"hello world\"", 13, "f", 2, &err) == 0, "encode a JSON string");
    char *ids2 = take(&t);
    is_str(ids2, ids, "a JSON string gives the ids of its text");
    ok(vr_tokenize_line(&t, "[1]", 3, "f", 3, &err) == -1 && strcmp(err.msg, "f:3: expected a JSON string") == 0,
       "--json: a non-string is refused at file:line");
    ok(vr_tokenize_line(&t, "nope", 4, "f", 4, &err) == -1 && strncmp(err.msg, "f:4: invalid JSON", 17) == 0,
       "--json: invalid JSON at file:line");
    vr_tokenize_release(&t);

    setup(&t, VR_TOKENIZE_DECODE);
    ok(vr_tokenize_line(&t, ids, strlen(ids) - 1, "f", 1, &err) == 0, "decode an array");
    char *text = take(&t);
    is_str(text, "hello world\n", "decode(encode(s)) == s");
    char obj[4200];
    snprintf(obj, sizeof obj, "{\"ids\":%.*s}", (int)strlen(ids) - 1, ids);
    t.json = 1;
    ok(vr_tokenize_line(&t, obj, strlen(obj), "f", 2, &err) == 0, "decode an object with ids");
    char *jtext = take(&t);
    is_str(jtext, "\"hello world\"\n", "--json: a JSON string");
    ok(vr_tokenize_line(&t, "[1,\"x\"]", 7, "f", 5, &err) == -1 &&
           strcmp(err.msg, "f:5: element 2 is not a token id of this tokenizer") == 0,
       "a bad id names file:line and the element");
    ok(vr_tokenize_line(&t, "{\"x\":1}", 7, "f", 6, &err) == -1 && err.kind == VR_ERR_INPUT,
       "an object without ids is refused");

    /* special tokens: kept, or left out */
    vr_buf_reset(&t.out);
    t.json = 0;
    struct vr_ids sp = {0};
    vr_bpe_encode(tok, "hi<|im_end|>", 12, 0, &sp);
    struct vr_buf line = {0};
    vr_buf_putc(&line, '[');
    for (size_t i = 0; i < sp.n; i++) vr_buf_printf(&line, i ? ",%d" : "%d", sp.v[i]);
    vr_buf_putc(&line, ']');
    ok(vr_tokenize_line(&t, line.p, line.len, "f", 7, &err) == 0, "decode with a special token");
    char *with = take(&t);
    t.skip_special = 1;
    ok(vr_tokenize_line(&t, line.p, line.len, "f", 8, &err) == 0, "decode with --skip-special");
    char *without = take(&t);
    is_str(with, "hi<|im_end|>\n", "special tokens kept by default");
    is_str(without, "hi\n", "and left out with skip_special");
    free(with), free(without), vr_buf_release(&line), vr_ids_release(&sp), vr_ids_release(&direct);
    free(ids), free(ids2), free(text), free(jtext);
    vr_tokenize_release(&t);
}

static void test_chat(void)
{
    struct vr_tokenize t;
    struct vr_err err;
    char *tmpl_text = NULL;
    setup(&t, VR_TOKENIZE_CHAT);
    ok(vr_chat_template_arg("r1", &t.chat.tmpl, &tmpl_text, &err) == 0, "the r1 template");
    const char *task = "{\"id\":\"x/1\",\"images\":[\"/a.jpg\"],\"pixels\":{\"grid_thw\":[1,4,6]},"
                       "\"problem\":\"Where is the cat?\",\"solution\":[1,2,3,4]}";
    ok(vr_tokenize_line(&t, task, strlen(task), "t", 1, &err) == 0, "a task line renders");
    char *out = take(&t);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ok(j && strcmp(json_string_value(json_object_get(j, "id")), "x/1") == 0, "its id comes along");
    const char *text = json_string_value(json_object_get(j, "text"));
    json_t *jids = json_object_get(j, "ids");
    ok(text && strstr(text, "Where is the cat?") && strstr(text, "<|vision_start|>"), "the prompt holds the question and the image");
    ok(json_integer_value(json_object_get(j, "n_tokens")) == (json_int_t)json_array_size(jids), "n_tokens counts the ids");
    int32_t pad = -1;
    struct vr_ids pi = {0};
    vr_bpe_encode(tok, "<|image_pad|>", 13, 0, &pi);
    pad = pi.n == 1 ? pi.v[0] : -1;
    size_t npad = 0, i;
    json_t *x;
    json_array_foreach(jids, i, x) npad += json_integer_value(x) == pad;
    ok(npad == 6, "grid 1x4x6 merged 2x2: 6 image pads (got %zu)", npad);
    ok(vr_tokenize_line(&t, "[1]", 3, "t", 2, &err) == -1 && strcmp(err.msg, "t:2: expected a task line (a JSON object)") == 0,
       "a non-object is refused at file:line");
    const char *nogrid = "{\"images\":[\"/a.jpg\"],\"problem\":\"p\",\"solution\":[1,2,3,4]}";
    ok(vr_tokenize_line(&t, nogrid, strlen(nogrid), "t", 3, &err) == -1 && strncmp(err.msg, "t:3: ", 5) == 0,
       "an image without pixels or image_sizes is refused at file:line");
    json_decref(j);
    free(out), free(tmpl_text);
    vr_ids_release(&pi);
    vr_tokenize_release(&t);
}

static void test_files(void)
{
    char root[256];
    tmpdir_make(root, sizeof root, "tokenize");
    struct vr_tokenize t;
    struct vr_err err;
    char *in = pj(root, "in.jsonl");
    FILE *f = fopen(in, "w");
    fputs("\"a\"\r\n\n  \n\"b\"\n", f);
    fclose(f);
    setup(&t, VR_TOKENIZE_ENCODE);
    t.json = 1;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    ok(vr_tokenize_file(&t, in, out, "<mem>", &err) == 0 && vr_tokenize_flush(&t, out, "<mem>", &err) == 0,
       "a JSON lines file: CRLF allowed, blank lines skipped");
    fclose(out);
    ok(t.lines == 2 && len > 0 && buf[len - 1] == '\n', "two lines read, the output written");
    int nl = 0;
    for (size_t i = 0; i < len; i++) nl += buf[i] == '\n';
    ok(nl == 2, "two lines out");
    free(buf);
    ok(vr_tokenize_file(&t, "/nonexistent/x", stdout, "<stdout>", &err) == -1 &&
           strncmp(err.msg, "/nonexistent/x: cannot open", 27) == 0,
       "a missing file: 'cannot open'");
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        setvbuf(full, NULL, _IONBF, 0);
        vr_buf_puts(&t.out, "x\n");
        ok(vr_tokenize_flush(&t, full, "<full>", &err) == -1 && strcmp(err.msg, "<full>: write failed") == 0,
           "a failed write names the output");
        fclose(full);
    }
    vr_tokenize_release(&t);

    /* preprocessor_config.json: both spellings, out of range values ignored */
    setup(&t, VR_TOKENIZE_CHAT);
    vr_tokenize_preprocessor(&t, root);
    ok(t.lim.min_pixels == 3136 && t.lim.max_pixels == 12845056, "no file: the defaults");
    char *pc = pj(root, "preprocessor_config.json");
    f = fopen(pc, "w");
    fputs("{\"size\":{\"shortest_edge\":100,\"longest_edge\":20000},\"patch_size\":16,\"merge_size\":0}", f);
    fclose(f);
    vr_tokenize_preprocessor(&t, root);
    ok(t.lim.min_pixels == 100 && t.lim.max_pixels == 20000, "size.shortest_edge / longest_edge");
    ok(t.lim.patch == 16 && t.chat.patch_size == 16 && t.lim.merge == 2, "patch_size taken, merge_size 0 ignored");
    f = fopen(pc, "w");
    fputs("{\"min_pixels\":200,\"max_pixels\":30000,\"size\":{\"shortest_edge\":1}}", f);
    fclose(f);
    vr_tokenize_preprocessor(&t, root);
    ok(t.lim.min_pixels == 200 && t.lim.max_pixels == 30000, "min_pixels / max_pixels win over size");
    free(pc), free(in);
    vr_tokenize_release(&t);
    tmpdir_remove(root);
}

int main(void)
{
    struct vr_err err;
    if (vr_bpe_load(&tok, golden_path("tokenizer/tiny.json"), &err)) {
        printf("Bail out! %s (run from the repository root or set VR_SRC)\n", err.msg);
        return 1;
    }
    test_encode_decode();
    test_chat();
    test_files();
    vr_bpe_free(tok);
    return done_testing();
}

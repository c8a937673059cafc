/* Unit tests of lib/bpe.c and lib/chat.c below the command line: UTF-8
 * replacement (maximal subparts), the streaming decoder against whole decodes
 * (every split of multi-byte characters across tokens), the encode cache
 * (hits, and clearing when full), the token API, and chat prompts whose ids
 * must equal tokenizing their text. Id-level goldens against the tokenizers
 * library are the shell tests t0500/t0510/t0520. */
#include "../tap.h"
#include "bpe.h"
#include "chat.h"
#include "golden.h"
#include "rng.h"

static const char *qwen_path(void)
{
    static char buf[4096];
    const char *src = getenv("VR_SRC");
    snprintf(buf, sizeof buf, "%s/../shared/tokenizers/qwen2.5/tokenizer.json",
             src && *src ? src : ".");
    FILE *f = fopen(buf, "r");
    if (!f) return NULL;
    fclose(f);
    return buf;
}

static void test_sanitize(void)
{
    static const struct {
        const char *in;
        size_t n;
        const char *want;
    } cases[] = {
        {"abc", 3, NULL}, /* NULL: valid, unchanged */
        {"\x80", 1, "\xEF\xBF\xBD"},
        {"\xC0\x80", 2, "\xEF\xBF\xBD\xEF\xBF\xBD"},         /* overlong: C0 is never valid */
        {"\xE0\x80\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xE0\xA0", 2, "\xEF\xBF\xBD"},                      /* truncated: one maximal subpart */
        {"\xED\xA0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* surrogate */
        {"\xF0\x9F\x98", 3, "\xEF\xBF\xBD"},
        {"\xF0\x9F\x98x", 4, "\xEF\xBF\xBDx"},
        {"\xF4\x90\x80\x80", 4, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xF5", 1, "\xEF\xBF\xBD"},
        {"\xE4\xBD\xA0\xE4\xBD", 5, "\xE4\xBD\xA0\xEF\xBF\xBD"},
        {"a\0b", 3, NULL}, /* NUL is valid UTF-8 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct vr_buf b = {0};
        size_t nrep = vr_utf8_sanitize(cases[i].in, cases[i].n, &b);
        const char *want = cases[i].want ? cases[i].want : cases[i].in;
        size_t wn = cases[i].want ? strlen(cases[i].want) : cases[i].n;
        ok(b.len == wn && memcmp(b.p, want, wn) == 0 && (nrep == 0) == !cases[i].want &&
               vr_utf8_valid(cases[i].in, cases[i].n) == !cases[i].want,
           "sanitize case %zu", i);
        vr_buf_release(&b);
    }
}

/* Stream ids one by one; the pieces must be valid UTF-8 and concatenate to
 * the whole decode. */
static int stream_matches(const struct vr_bpe *t, const int32_t *ids, size_t n, int flags)
{
    struct vr_buf whole = {0}, acc = {0}, piece = {0};
    struct vr_bpe_stream s;
    vr_bpe_decode(t, ids, n, flags, &whole);
    vr_bpe_stream_init(&s, t, flags);
    int good = 1;
    for (size_t i = 0; i < n; i++) {
        vr_buf_reset(&piece);
        vr_bpe_stream_put(&s, ids[i], &piece);
        if (piece.len && !vr_utf8_valid(piece.p, piece.len)) good = 0;
        if (piece.len) vr_buf_put(&acc, piece.p, piece.len);
    }
    vr_bpe_stream_flush(&s, &acc);
    good &= acc.len == whole.len && (!acc.len || memcmp(acc.p, whole.p, acc.len) == 0);
    vr_buf_release(&whole);
    vr_buf_release(&acc);
    vr_buf_release(&piece);
    return good;
}

/* GPT-2's bytes_to_unicode: the character that stands for byte b. */
static unsigned byte_cp(int b)
{
#define PRINTABLE(x) (((x) >= '!' && (x) <= '~') || ((x) >= 0xA1 && (x) <= 0xAC) || (x) >= 0xAE)
    if (PRINTABLE(b)) return (unsigned)b;
    unsigned n = 0;
    for (int x = 0; x < b; x++) n += !PRINTABLE(x);
    return 256 + n;
#undef PRINTABLE
}

static void test_stream(struct vr_bpe *t, const char *name)
{
    static const char *texts[] = {
        "Hello, 世界! 😀👨‍👩‍👧 naïve café", "<|im_start|>user\n中文<|im_end|>", "e\xCC\x81\xE2\x82\xAC",
        "\xF0\x9F\x98", "plain ascii only", "",
    };
    int all = 1;
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
        struct vr_ids ids = {0};
        vr_bpe_encode(t, texts[k], strlen(texts[k]), 0, &ids);
        all &= stream_matches(t, ids.v, ids.n, 0) && stream_matches(t, ids.v, ids.n, VR_BPE_SKIP_SPECIAL);
        vr_ids_release(&ids);
    }
    ok(all, "%s: streaming decode equals whole decode on sample texts", name);

    /* byte tokens alone: every way of cutting UTF-8 across tokens, plus
     * invalid sequences, specials and unknown ids in between */
    int32_t byte_ids[256];
    for (int b = 0; b < 256; b++) {
        unsigned cp = byte_cp(b);
        char u[3] = {0};
        if (cp < 0x80) {
            u[0] = (char)cp;
        } else {
            u[0] = (char)(0xC0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3F));
        }
        byte_ids[b] = vr_bpe_token_id(t, u);
    }
    int have = 1;
    for (int b = 0; b < 256; b++) have &= byte_ids[b] >= 0;
    ok(have, "%s: all 256 byte tokens found", name);
    struct vr_rng r;
    vr_rng_init(&r, 42, 0);
    int32_t im_end = vr_bpe_token_id(t, "<|im_end|>");
    int good = 1;
    for (int trial = 0; trial < 3000; trial++) {
        int32_t ids[24];
        size_t n = 1 + vr_rng_below(&r, 24);
        for (size_t i = 0; i < n; i++) {
            uint32_t x = vr_rng_u32(&r);
            if (x % 17 == 0 && im_end >= 0) ids[i] = im_end;
            else if (x % 23 == 0) ids[i] = vr_bpe_size(t) + 5; /* unknown: skipped */
            else if (x % 5 == 0) ids[i] = (int32_t)vr_rng_below(&r, (uint64_t)vr_bpe_size(t));
            else ids[i] = byte_ids[((x >> 8) & 0xFF) | (x & 2 ? 0x80 : 0)]; /* mostly high bytes */
        }
        good &= stream_matches(t, ids, n, 0) && stream_matches(t, ids, n, VR_BPE_SKIP_SPECIAL);
    }
    ok(good, "%s: streaming decode equals whole decode on 3000 random id runs", name);
}

static void test_cache(struct vr_bpe *t, const char *name)
{
    /* the same text twice (the second from the cache), then enough distinct
     * pieces to clear the cache, then the text again */
    const char *text = "the cat sat on the mat; the cat's hat, THE CAT";
    struct vr_ids a = {0}, b = {0}, c = {0}, junk = {0};
    vr_bpe_encode(t, text, strlen(text), 0, &a);
    vr_bpe_encode(t, text, strlen(text), 0, &b);
    struct vr_buf big = {0};
    for (int i = 0; i < 70000; i++) vr_buf_printf(&big, " zq%xw", (unsigned)i * 2654435761u);
    vr_bpe_encode(t, big.p, big.len, 0, &junk);
    vr_bpe_encode(t, text, strlen(text), 0, &c);
    ok(a.n && a.n == b.n && a.n == c.n && !memcmp(a.v, b.v, a.n * 4) && !memcmp(a.v, c.v, a.n * 4),
       "%s: cached and re-merged pieces give the same ids", name);
    struct vr_buf dec = {0};
    vr_bpe_decode(t, junk.v, junk.n, 0, &dec);
    ok(dec.len == big.len && !memcmp(dec.p, big.p, big.len), "%s: 70000 distinct pieces round-trip",
       name);
    vr_buf_release(&dec);
    vr_buf_release(&big);
    vr_ids_release(&a);
    vr_ids_release(&b);
    vr_ids_release(&c);
    vr_ids_release(&junk);
}

static void test_api(struct vr_bpe *t, const char *name)
{
    int32_t id = vr_bpe_token_id(t, "<|im_end|>");
    ok(id >= 0 && vr_bpe_is_special(t, id) && vr_bpe_has_id(t, id), "%s: <|im_end|> is special",
       name);
    is_str(vr_bpe_token_str(t, id), "<|im_end|>", "%s: token_str of <|im_end|>", name);
    ok(!vr_bpe_has_id(t, -1) && !vr_bpe_has_id(t, vr_bpe_size(t)) &&
           vr_bpe_token_str(t, vr_bpe_size(t)) == NULL && vr_bpe_token_id(t, "no such token!") < 0,
       "%s: out-of-range ids and unknown tokens", name);
    struct vr_ids ids = {0};
    vr_bpe_encode(t, "<|im_end|>", 10, VR_BPE_SPECIAL_AS_TEXT, &ids);
    ok(ids.n > 1, "%s: special-as-text splits <|im_end|> into %zu pieces", name, ids.n);
    ids.n = 0;
    vr_bpe_encode(t, "<|im_end|>", 10, 0, &ids);
    ok(ids.n == 1 && ids.v[0] == id, "%s: <|im_end|> is one id", name);
    vr_ids_release(&ids);
}

/* The chat prompt's ids must equal tokenizing its text. */
static void test_chat(struct vr_bpe *t, const char *name)
{
    static const int grids[2][3] = {{1, 4, 6}, {1, 2, 2}};
    static const char *users[] = {"Where is the cat?", "", "\n\n  leading newlines", "a<|im_end|>b",
                                  "trailing <|im_", "中文 and 'S"};
    static const char *assistants[] = {NULL, "<answer>[1, 2, 3, 4]</answer>", "", " \n"};
    static const char *systems[] = {NULL, "", "Be brief.\n"};
    int all = 1, n = 0;
    for (size_t u = 0; u < sizeof users / sizeof *users; u++)
        for (size_t a = 0; a < sizeof assistants / sizeof *assistants; a++)
            for (size_t s = 0; s < sizeof systems / sizeof *systems; s++)
                for (int ni = 0; ni <= 2; ni++) {
                    struct vr_chat c = {systems[s], ni, grids, 2, users[u], assistants[a]};
                    struct vr_buf text = {0};
                    struct vr_ids ids = {0}, again = {0}, only = {0};
                    struct vr_err err;
                    int rc = vr_chat_render(t, &c, &text, &ids, &err) ||
                             vr_chat_render(t, &c, NULL, &only, &err);
                    vr_bpe_encode(t, text.p, text.len, 0, &again);
                    all &= !rc && ids.n == again.n && !memcmp(ids.v, again.v, ids.n * 4) &&
                           only.n == ids.n && !memcmp(only.v, ids.v, ids.n * 4);
                    n++;
                    vr_buf_release(&text);
                    vr_ids_release(&ids);
                    vr_ids_release(&again);
                    vr_ids_release(&only);
                }
    ok(all, "%s: %d chat prompts: ids built directly equal tokenizing the text", name, n);
    static const int bad[1][3] = {{1, 3, 3}};
    struct vr_chat c = {NULL, 1, bad, 2, "x", NULL};
    struct vr_err err;
    ok(vr_chat_render(t, &c, NULL, NULL, &err) && strstr(err.msg, "grid_thw [1, 3, 3]"),
       "%s: a grid that does not divide by merge^2 fails: %s", name, err.msg);
}

static void test_question(void)
{
    struct vr_buf b = {0};
    vr_chat_question("{Question} and {Question}!", "Q", &b);
    is_str(b.p, "Q and Q!", "question template replaces every {Question}");
    vr_buf_reset(&b);
    vr_chat_question(vr_chat_template("r1"), "Find it.", &b);
    ok(strncmp(b.p, "Find it. First output the thinking process in <think> </think> tags", 65) == 0,
       "r1 template");
    ok(vr_chat_template("nosuch") == NULL && vr_chat_template("baseline") &&
           vr_chat_template("none"),
       "template names");
    vr_buf_release(&b);
}

static void test_load_errors(void)
{
    struct vr_bpe *t;
    struct vr_err err;
    static const char *bad[] = {
        "", "{", "{\"model\": {\"type\": \"Unigram\"}}", "{\"model\": {\"vocab\": {\"a\": 0}}}",
        "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}}", "[]", "{} x",
        "{\"model\": {\"vocab\": {\"a\": 1.5}, \"merges\": []}}",
    };
    int all = 1;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = vr_bpe_load_mem(&t, bad[i], strlen(bad[i]), "x.json", &err);
        all &= rc == -1 && t == NULL && strncmp(err.msg, "x.json", 6) == 0 && !strchr(err.msg, '\n');
    }
    ok(all, "bad tokenizer.json in memory: each fails with a message naming it");
}

int main(void)
{
    test_sanitize();
    test_question();
    test_load_errors();
    struct vr_err err;
    struct vr_bpe *tiny;
    if (vr_bpe_load(&tiny, golden_path("tokenizer/tiny.json"), &err)) {
        printf("Bail out! %s\n", err.msg);
        return 1;
    }
    test_api(tiny, "tiny");
    test_stream(tiny, "tiny");
    test_cache(tiny, "tiny");
    test_chat(tiny, "tiny");
    vr_bpe_free(tiny);
    const char *q = qwen_path();
    if (q) {
        struct vr_bpe *qw;
        if (vr_bpe_load(&qw, q, &err)) {
            printf("Bail out! %s\n", err.msg);
            return 1;
        }
        is_int(vr_bpe_size(qw), 151665, "qwen: 151665 ids");
        test_api(qw, "qwen");
        test_stream(qw, "qwen");
        test_cache(qw, "qwen");
        test_chat(qw, "qwen");
        vr_bpe_free(qw);
    } else {
        diag("no ../shared/tokenizers/qwen2.5/tokenizer.json: the Qwen tokenizer cases are left out");
    }
    return done_testing();
}

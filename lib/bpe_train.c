/* bpe_train.c: byte-level BPE training (see bpe_train.h). Plain and exact
 * rather than fast: words are counted once, then each merge rescans the words
 * that hold its pair; fine for the corpora of tests and demos (MBs). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "bpe_train.h"

#include <pcre2.h>
#include <stdint.h>
#include <string.h>
#include <utf8proc.h>

#include "bpe.h"
#include "buf.h"
#include "fs.h"
#include "hash.h"

#define QWEN_SPLIT                                                                              \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static const struct { const char *s; int special; } added[] = {
    {"<|endoftext|>", 1}, {"<|im_start|>", 1}, {"<|im_end|>", 1}, {"<|object_ref_start|>", 1},
    {"<|object_ref_end|>", 1}, {"<|box_start|>", 1}, {"<|box_end|>", 1}, {"<|quad_start|>", 1},
    {"<|quad_end|>", 1}, {"<|vision_start|>", 1}, {"<|vision_end|>", 1}, {"<|vision_pad|>", 1},
    {"<|image_pad|>", 1}, {"<|video_pad|>", 1}, {"<tool_call>", 0}, {"</tool_call>", 0},
    {"<|fim_prefix|>", 0}, {"<|fim_middle|>", 0}, {"<|fim_suffix|>", 0}, {"<|fim_pad|>", 0},
    {"<|repo_name|>", 0}, {"<|file_sep|>", 0},
};

/* GPT-2's byte -> printable code point map. */
static int byte_cp(int b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    int n = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) n++;
    return 256 + n;
}

/* ---- words: distinct pre-tokenized pieces with their counts ---- */

struct word {
    int *sym;  /* symbol ids */
    int n;
    int64_t count;
};

struct wtab {
    char **key;
    size_t *klen;
    int64_t *count;
    size_t cap, n;
};

static void wtab_add(struct wtab *t, const char *s, size_t n)
{
    if (t->n * 2 >= t->cap) {
        struct wtab o = *t;
        t->cap = o.cap ? o.cap * 2 : 4096;
        t->key = vr_xcalloc(t->cap, sizeof *t->key);
        t->klen = vr_xcalloc(t->cap, sizeof *t->klen);
        t->count = vr_xcalloc(t->cap, sizeof *t->count);
        t->n = 0;
        for (size_t i = 0; i < o.cap; i++)
            if (o.key[i]) {
                size_t h = (size_t)vr_hash64(o.key[i], o.klen[i]) & (t->cap - 1);
                while (t->key[h]) h = (h + 1) & (t->cap - 1);
                t->key[h] = o.key[i], t->klen[h] = o.klen[i], t->count[h] = o.count[i];
                t->n++;
            }
        free(o.key), free(o.klen), free(o.count);
    }
    size_t h = (size_t)vr_hash64(s, n) & (t->cap - 1);
    while (t->key[h] && (t->klen[h] != n || memcmp(t->key[h], s, n))) h = (h + 1) & (t->cap - 1);
    if (!t->key[h]) {
        t->key[h] = vr_xmalloc(n + 1);
        memcpy(t->key[h], s, n);
        t->klen[h] = n;
        t->n++;
    }
    t->count[h]++;
}

/* ---- pair counts ---- */

struct ptab {
    uint64_t *key; /* a << 32 | b, plus 1 so that 0 means empty */
    int64_t *val;
    size_t cap, n;
};

static int64_t *ptab_slot(struct ptab *t, uint64_t k)
{
    k += 1;
    if (t->n * 2 >= t->cap) {
        struct ptab o = *t;
        t->cap = o.cap ? o.cap * 2 : 1 << 16;
        t->key = vr_xcalloc(t->cap, sizeof *t->key);
        t->val = vr_xcalloc(t->cap, sizeof *t->val);
        t->n = 0;
        for (size_t i = 0; i < o.cap; i++)
            if (o.key[i]) {
                size_t h = (size_t)(o.key[i] * 0x9E3779B97F4A7C15ull >> 20) & (t->cap - 1);
                while (t->key[h]) h = (h + 1) & (t->cap - 1);
                t->key[h] = o.key[i], t->val[h] = o.val[i];
                t->n++;
            }
        free(o.key), free(o.val);
    }
    size_t h = (size_t)(k * 0x9E3779B97F4A7C15ull >> 20) & (t->cap - 1);
    while (t->key[h] && t->key[h] != k) h = (h + 1) & (t->cap - 1);
    if (!t->key[h]) t->key[h] = k, t->n++;
    return &t->val[h];
}

static void count_word(struct ptab *p, const struct word *w, int64_t sign)
{
    for (int i = 0; i + 1 < w->n; i++)
        *ptab_slot(p, (uint64_t)w->sym[i] << 32 | (uint32_t)w->sym[i + 1]) += sign * w->count;
}

int vr_bpe_train(json_t **out, const char *const *files, int nfiles, int vocab, int min_freq,
                 struct vr_err *err)
{
    *out = NULL;
    if (vocab < 256) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "a byte-level vocabulary needs at least 256 tokens");
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)QWEN_SPLIT, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    VR_ASSERT(re);
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    struct wtab wt = {0};
    struct vr_buf clean = {0};
    for (int f = 0; f < nfiles; f++) {
        char *text;
        size_t len;
        if (vr_file_read(files[f], &text, &len, err)) goto fail;
        vr_buf_reset(&clean);
        vr_utf8_sanitize(text, len, &clean);
        free(text);
        utf8proc_uint8_t *nfc = NULL;
        utf8proc_ssize_t nl = utf8proc_map((const utf8proc_uint8_t *)clean.p, (utf8proc_ssize_t)clean.len, &nfc,
                                           UTF8PROC_COMPOSE | UTF8PROC_STABLE);
        if (nl < 0) {
            vr_err_set(err, VR_ERR_INPUT, files[f], 0, "cannot normalise: %s", utf8proc_errmsg(nl));
            goto fail;
        }
        PCRE2_SIZE at = 0;
        while (at < (PCRE2_SIZE)nl) {
            /* pcre2 validates the whole subject on every call unless told
             * not to: quadratic in the file. The first call checks it; later
             * starts are on character boundaries of that checked text. */
            uint32_t opt = at && (nfc[at] & 0xC0) != 0x80 ? PCRE2_NO_UTF_CHECK : 0;
            int rc = pcre2_match(re, nfc, (PCRE2_SIZE)nl, at, opt, md, NULL);
            if (rc < 0) { /* the rest matches nothing: it is one piece */
                wtab_add(&wt, (const char *)nfc + at, (size_t)nl - at);
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[0] > at) wtab_add(&wt, (const char *)nfc + at, ov[0] - at);
            if (ov[1] > ov[0]) wtab_add(&wt, (const char *)nfc + ov[0], ov[1] - ov[0]);
            at = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
        }
        free(nfc);
    }
    /* symbols: ids 0..255 are the bytes, in order of their printable code point */
    int order[256], id_of_byte[256];
    for (int b = 0; b < 256; b++) order[b] = b;
    for (int i = 1; i < 256; i++) /* insertion sort by code point: tiny */
        for (int j = i; j > 0 && byte_cp(order[j - 1]) > byte_cp(order[j]); j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int cap = vocab + 1, ntok = 256;
    char **tok = vr_xcalloc((size_t)cap, sizeof *tok);
    for (int i = 0; i < 256; i++) {
        id_of_byte[order[i]] = i;
        char u[8];
        utf8proc_ssize_t k = utf8proc_encode_char(byte_cp(order[i]), (utf8proc_uint8_t *)u);
        u[k] = 0;
        tok[i] = vr_xstrdup(u);
    }
    struct word *w = vr_xcalloc(wt.n + 1, sizeof *w);
    size_t nw = 0;
    for (size_t i = 0; i < wt.cap; i++)
        if (wt.key[i]) {
            w[nw].n = (int)wt.klen[i];
            w[nw].sym = vr_xmalloc(wt.klen[i] * sizeof(int));
            for (size_t k = 0; k < wt.klen[i]; k++) w[nw].sym[k] = id_of_byte[(unsigned char)wt.key[i][k]];
            w[nw].count = wt.count[i];
            nw++;
            free(wt.key[i]);
        }
    struct ptab pt = {0};
    for (size_t i = 0; i < nw; i++) count_word(&pt, &w[i], 1);
    json_t *merges = json_array();
    while (ntok < vocab) {
        uint64_t best = 0;
        int64_t bc = 0;
        for (size_t i = 0; i < pt.cap; i++)
            if (pt.key[i] && (pt.val[i] > bc || (pt.val[i] == bc && bc > 0 && pt.key[i] < best)))
                best = pt.key[i], bc = pt.val[i];
        if (bc < (min_freq > 1 ? min_freq : 1)) break;
        best -= 1;
        int a = (int)(best >> 32), b = (int)(uint32_t)best;
        size_t la = strlen(tok[a]), lb = strlen(tok[b]);
        char *s = vr_xmalloc(la + lb + 1);
        memcpy(s, tok[a], la);
        memcpy(s + la, tok[b], lb + 1);
        int c = -1;
        for (int i = 0; i < ntok && c < 0; i++)
            if (strcmp(tok[i], s) == 0) c = i; /* the same string by another road */
        if (c < 0) tok[c = ntok++] = s;
        else free(s);
        json_array_append_new(merges, json_pack("[ss]", tok[a], tok[b]));
        for (size_t i = 0; i < nw; i++) {
            struct word *x = &w[i];
            int has = 0;
            for (int k = 0; k + 1 < x->n && !has; k++) has = x->sym[k] == a && x->sym[k + 1] == b;
            if (!has) continue;
            count_word(&pt, x, -1);
            int o = 0;
            for (int k = 0; k < x->n; k++) {
                if (k + 1 < x->n && x->sym[k] == a && x->sym[k + 1] == b) {
                    x->sym[o++] = c;
                    k++;
                } else {
                    x->sym[o++] = x->sym[k];
                }
            }
            x->n = o;
            count_word(&pt, x, 1);
        }
        *ptab_slot(&pt, best) = 0;
    }
    json_t *vj = json_object();
    for (int i = 0; i < ntok; i++) json_object_set_new(vj, tok[i], json_integer(i));
    json_t *adds = json_array();
    for (size_t i = 0; i < sizeof added / sizeof *added; i++)
        json_array_append_new(adds, json_pack("{s:i,s:s,s:b,s:b,s:b,s:b,s:b}", "id", ntok + (int)i, "content",
                                              added[i].s, "single_word", 0, "lstrip", 0, "rstrip", 0,
                                              "normalized", 0, "special", added[i].special));
    json_t *bl = json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 0,
                           "use_regex", 0);
    *out = json_pack(
        "{s:s,s:n,s:n,s:o,s:{s:s},s:{s:s,s:[{s:s,s:{s:s},s:s,s:b},O]},s:O,s:O,"
        "s:{s:s,s:n,s:n,s:s,s:s,s:b,s:b,s:b,s:o,s:o}}",
        "version", "1.0", "truncation", "padding", "added_tokens", adds, "normalizer", "type", "NFC",
        "pre_tokenizer", "type", "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex", QWEN_SPLIT,
        "behavior", "Isolated", "invert", 0, bl, "post_processor", bl, "decoder", bl, "model", "type", "BPE",
        "dropout", "unk_token", "continuing_subword_prefix", "", "end_of_word_suffix", "", "fuse_unk", 0,
        "byte_fallback", 0, "ignore_merges", 0, "vocab", vj, "merges", merges);
    json_decref(bl);
    for (size_t i = 0; i < nw; i++) free(w[i].sym);
    free(w);
    for (int i = 0; i < ntok; i++) free(tok[i]);
    free(tok);
    free(pt.key), free(pt.val);
    free(wt.key), free(wt.klen), free(wt.count);
    vr_buf_free(&clean);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return *out ? 0 : vr_err_set(err, VR_ERR_SYS, NULL, 0, "cannot build tokenizer.json");
fail:
    for (size_t i = 0; i < wt.cap; i++) free(wt.key ? wt.key[i] : NULL);
    free(wt.key), free(wt.klen), free(wt.count);
    vr_buf_free(&clean);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return -1;
}

/* bpe_train.c: byte-level BPE training (see bpe_train.h), for vr-init
 * --train-tokenizer. The incremental algorithm of the tokenizers library's
 * BpeTrainer: the corpus is pre-tokenized and its distinct words counted once;
 * a table keeps each adjacent pair's count and the words that hold it; a
 * max-heap of (count, pair) picks each merge; a merge rewrites only the words
 * on its pair's list. The result is the plain trainer's, byte for byte
 * (tests/unit/bpe_train.c keeps that one as the reference): every merge is the
 * pair with the highest count, counted over all adjacent positions ("aaa"
 * holds (a,a) twice), ties going to the smaller (left id, right id). The
 * tokenizers library has the same rule, but its incremental count of some
 * pairs drifts from a recount, so its merges can differ on larger corpora
 * (bench/RESULTS.md, 2026-12-07). */
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

static void wtab_release(struct wtab *t)
{
    for (size_t i = 0; i < t->cap; i++) free(t->key[i]);
    free(t->key), free(t->klen), free(t->count);
    memset(t, 0, sizeof *t);
}

/* Split each file as the tokenizer will (sanitize, NFC, the Qwen2 regex) and
 * count the pieces into wt. */
static int pretokenize(struct wtab *wt, const char *const *files, int nfiles, struct vr_err *err)
{
    int ec, rcode = 0;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)QWEN_SPLIT, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    VR_ASSERT(re);
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    struct vr_buf clean = {0};
    for (int f = 0; f < nfiles && !rcode; f++) {
        char *text;
        size_t len;
        if ((rcode = vr_file_read(files[f], &text, &len, err))) break;
        vr_buf_reset(&clean);
        vr_utf8_sanitize(text, len, &clean);
        free(text);
        utf8proc_uint8_t *nfc = NULL;
        utf8proc_ssize_t nl = utf8proc_map((const utf8proc_uint8_t *)clean.p, (utf8proc_ssize_t)clean.len, &nfc,
                                           UTF8PROC_COMPOSE | UTF8PROC_STABLE);
        if (nl < 0) {
            rcode = vr_err_set(err, VR_ERR_INPUT, files[f], 0, "cannot normalise: %s", utf8proc_errmsg(nl));
            break;
        }
        PCRE2_SIZE at = 0;
        while (at < (PCRE2_SIZE)nl) {
            /* pcre2 validates the whole subject on every call unless told
             * not to: quadratic in the file. The first call checks it; later
             * starts are on character boundaries of that checked text. */
            uint32_t opt = at && (nfc[at] & 0xC0) != 0x80 ? PCRE2_NO_UTF_CHECK : 0;
            int rc = pcre2_match(re, nfc, (PCRE2_SIZE)nl, at, opt, md, NULL);
            if (rc < 0) { /* the rest matches nothing: it is one piece */
                wtab_add(wt, (const char *)nfc + at, (size_t)nl - at);
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[0] > at) wtab_add(wt, (const char *)nfc + at, ov[0] - at);
            if (ov[1] > ov[0]) wtab_add(wt, (const char *)nfc + ov[0], ov[1] - ov[0]);
            at = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
        }
        free(nfc);
    }
    vr_buf_release(&clean);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rcode;
}

/* ---- tokens: id -> string, and string -> id ---- */

struct toks {
    char **s;      /* s[id], owned */
    int n;         /* tokens so far */
    uint32_t *slot; /* open addressing: id + 1, 0 empty */
    size_t cap;
};

static size_t toks_home(const struct toks *t, const char *s)
{
    return (size_t)vr_hash64(s, strlen(s)) & (t->cap - 1);
}

/* The id of string s, or -1. */
static int toks_find(const struct toks *t, const char *s)
{
    for (size_t h = toks_home(t, s); t->slot[h]; h = (h + 1) & (t->cap - 1))
        if (strcmp(t->s[t->slot[h] - 1], s) == 0) return (int)t->slot[h] - 1;
    return -1;
}

/* Append s (taking it) as the next id; t->s has room (the caller sized it). */
static int toks_add(struct toks *t, char *s)
{
    if ((size_t)t->n * 2 + 2 >= t->cap) {
        free(t->slot);
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->slot = vr_xcalloc(t->cap, sizeof *t->slot);
        for (int i = 0; i < t->n; i++) {
            size_t h = toks_home(t, t->s[i]);
            while (t->slot[h]) h = (h + 1) & (t->cap - 1);
            t->slot[h] = (uint32_t)i + 1;
        }
    }
    size_t h = toks_home(t, s);
    while (t->slot[h]) h = (h + 1) & (t->cap - 1);
    t->s[t->n] = s;
    t->slot[h] = (uint32_t)++t->n;
    return t->n - 1;
}

/* Ids 0..255 are the bytes in the order of their printable code points;
 * id_of_byte[b] is byte b's id. */
static void toks_bytes(struct toks *t, int id_of_byte[256])
{
    int order[256];
    for (int b = 0; b < 256; b++) order[b] = b;
    for (int i = 1; i < 256; i++) /* insertion sort by code point: tiny */
        for (int j = i; j > 0 && byte_cp(order[j - 1]) > byte_cp(order[j]); j--) {
            int x = order[j];
            order[j] = order[j - 1];
            order[j - 1] = x;
        }
    for (int i = 0; i < 256; i++) {
        id_of_byte[order[i]] = i;
        char u[8];
        utf8proc_ssize_t k = utf8proc_encode_char(byte_cp(order[i]), (utf8proc_uint8_t *)u);
        u[k] = 0;
        toks_add(t, vr_xstrdup(u));
    }
}

/* ---- pairs: counts, the words that hold them, and a heap of counts ---- */

struct pair {
    uint64_t key;   /* left id << 32 | right id: ordering keys orders (left, right) */
    int64_t count;  /* over all adjacent positions of all words, times word counts */
    int64_t before; /* count when the current merge first touched it */
    int stamp;      /* the merge that last touched it */
    int nw, capw;
    int *w;         /* every word that holds the pair (maybe some that no longer do; repeats) */
};

/* A heap entry: the pair's count when pushed. Entries go stale; the one on
 * top counts only when its count is the pair's count now (see best_pair). */
struct hent {
    int64_t count;
    uint32_t pair;
};

struct trainer {
    struct word *w;
    size_t nw;
    struct pair *p;
    size_t np, capp;
    uint32_t *slot; /* open addressing over p: index + 1, 0 empty */
    size_t nslot;
    struct hent *heap;
    size_t nheap, capheap;
    uint32_t *touched; /* pairs the current merge changed */
    size_t ntouched, captouched;
    int step;
};

static size_t pair_home(uint64_t key, size_t nslot)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 24) & (nslot - 1);
}

/* The index of pair (a, b), added with count 0 when new. */
static uint32_t pair_find(struct trainer *t, int a, int b)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    if (t->np * 2 >= t->nslot) {
        free(t->slot);
        t->nslot = t->nslot ? t->nslot * 2 : 1 << 16;
        t->slot = vr_xcalloc(t->nslot, sizeof *t->slot);
        for (size_t i = 0; i < t->np; i++) {
            size_t h = pair_home(t->p[i].key, t->nslot);
            while (t->slot[h]) h = (h + 1) & (t->nslot - 1);
            t->slot[h] = (uint32_t)i + 1;
        }
    }
    size_t h = pair_home(key, t->nslot);
    for (; t->slot[h]; h = (h + 1) & (t->nslot - 1))
        if (t->p[t->slot[h] - 1].key == key) return t->slot[h] - 1;
    if (t->np == t->capp) {
        t->capp = t->capp ? t->capp * 2 : 1 << 15;
        t->p = vr_xrealloc(t->p, t->capp * sizeof *t->p);
    }
    t->p[t->np] = (struct pair){.key = key, .stamp = -1};
    t->slot[h] = (uint32_t)++t->np;
    return (uint32_t)t->np - 1;
}

/* Add delta to (a, b)'s count, remembering its count before this merge. */
static uint32_t pair_add(struct trainer *t, int a, int b, int64_t delta)
{
    uint32_t i = pair_find(t, a, b);
    struct pair *p = &t->p[i];
    if (p->stamp != t->step) {
        p->stamp = t->step, p->before = p->count;
        if (t->ntouched == t->captouched) {
            t->captouched = t->captouched ? t->captouched * 2 : 1024;
            t->touched = vr_xrealloc(t->touched, t->captouched * sizeof *t->touched);
        }
        t->touched[t->ntouched++] = i;
    }
    p->count += delta;
    return i;
}

static void pair_note_word(struct pair *p, int wi)
{
    if (p->nw && p->w[p->nw - 1] == wi) return;
    if (p->nw == p->capw) {
        p->capw = p->capw ? p->capw * 2 : 4;
        p->w = vr_xrealloc(p->w, (size_t)p->capw * sizeof *p->w);
    }
    p->w[p->nw++] = wi;
}

/* x goes before y: the larger count, then the smaller pair. */
static int hent_above(const struct trainer *t, struct hent x, struct hent y)
{
    return x.count != y.count ? x.count > y.count : t->p[x.pair].key < t->p[y.pair].key;
}

static void heap_push(struct trainer *t, int64_t count, uint32_t pair)
{
    if (t->nheap == t->capheap) {
        t->capheap = t->capheap ? t->capheap * 2 : 1 << 15;
        t->heap = vr_xrealloc(t->heap, t->capheap * sizeof *t->heap);
    }
    struct hent e = {count, pair};
    size_t i = t->nheap++;
    for (; i && hent_above(t, e, t->heap[(i - 1) / 2]); i = (i - 1) / 2) t->heap[i] = t->heap[(i - 1) / 2];
    t->heap[i] = e;
}

static void heap_pop(struct trainer *t)
{
    struct hent e = t->heap[--t->nheap];
    size_t i = 0, n = t->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hent_above(t, t->heap[c + 1], t->heap[c])) c++;
        if (!hent_above(t, t->heap[c], e)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (n) t->heap[i] = e;
}

/* End of a merge (or of the first count): push every pair whose count grew.
 * A pair whose count fell keeps its older, larger entries. So every pair with
 * a count has an entry at least that large, and an entry that is exact when it
 * reaches the top is the true maximum, ties included. */
static void flush_touched(struct trainer *t)
{
    for (size_t k = 0; k < t->ntouched; k++) {
        struct pair *p = &t->p[t->touched[k]];
        if (p->count > p->before) heap_push(t, p->count, t->touched[k]);
    }
    t->ntouched = 0;
}

/* The pair with the highest count (ties: the smaller pair), left on top of the
 * heap; -1 when no pair is left. */
static int best_pair(struct trainer *t)
{
    while (t->nheap) {
        struct hent top = t->heap[0];
        int64_t now = t->p[top.pair].count;
        if (top.count == now) return (int)top.pair;
        heap_pop(t);
        if (now > 0) heap_push(t, now, top.pair);
    }
    return -1;
}

/* Replace each (a, b) of word wi by c, left to right, and move its pair
 * counts; the pairs made with c learn that the word holds them. */
static void word_merge(struct trainer *t, int wi, int a, int b, int c)
{
    struct word *x = &t->w[wi];
    int has = 0;
    for (int k = 0; k + 1 < x->n && !has; k++) has = x->sym[k] == a && x->sym[k + 1] == b;
    if (!has) return; /* a stale or repeated entry of the pair's list */
    for (int k = 0; k + 1 < x->n; k++) pair_add(t, x->sym[k], x->sym[k + 1], -x->count);
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
    for (int k = 0; k + 1 < x->n; k++) {
        uint32_t i = pair_add(t, x->sym[k], x->sym[k + 1], x->count);
        if (x->sym[k] == c || x->sym[k + 1] == c) pair_note_word(&t->p[i], wi);
    }
}

/* Count the pairs of all words and fill the heap. */
static void trainer_start(struct trainer *t)
{
    for (size_t wi = 0; wi < t->nw; wi++) {
        const struct word *x = &t->w[wi];
        for (int k = 0; k + 1 < x->n; k++) {
            uint32_t i = pair_add(t, x->sym[k], x->sym[k + 1], x->count); /* may move t->p */
            pair_note_word(&t->p[i], (int)wi);
        }
    }
    flush_touched(t);
}

/* Merge until tk holds vocab tokens or no pair occurs min_freq times; each
 * merge appends [left, right] to merges. A merge whose string is already a
 * token (by another road: "ab"+"c" after "a"+"bc") would reuse that id, add
 * no token and still be listed, as in the plain trainer and the tokenizers
 * library; no corpus tried has made one (tests/unit/bpe_train.c). */
static void trainer_run(struct trainer *t, struct toks *tk, int vocab, int min_freq, json_t *merges)
{
    while (tk->n < vocab) {
        int ib = best_pair(t);
        if (ib < 0 || t->p[ib].count < (min_freq > 1 ? min_freq : 1)) break;
        heap_pop(t);
        int a = (int)(t->p[ib].key >> 32), b = (int)(uint32_t)t->p[ib].key;
        size_t la = strlen(tk->s[a]), lb = strlen(tk->s[b]);
        char *s = vr_xmalloc(la + lb + 1);
        memcpy(s, tk->s[a], la);
        memcpy(s + la, tk->s[b], lb + 1);
        int c = toks_find(tk, s);
        if (c < 0) c = toks_add(tk, s);
        else free(s);
        json_array_append_new(merges, json_pack("[ss]", tk->s[a], tk->s[b]));
        t->step++;
        /* word_merge never adds to (a, b)'s list (c differs from a and b), so
         * the list stays put while the pair table grows */
        for (int j = 0; j < t->p[ib].nw; j++) word_merge(t, t->p[ib].w[j], a, b, c);
        /* no word holds (a, b) now; one that gets it again is listed anew */
        free(t->p[ib].w);
        t->p[ib].w = NULL, t->p[ib].nw = t->p[ib].capw = 0;
        VR_DASSERT(t->p[ib].count == 0);
        t->p[ib].count = 0;
        flush_touched(t);
    }
}

static void trainer_release(struct trainer *t)
{
    for (size_t i = 0; i < t->nw; i++) free(t->w[i].sym);
    for (size_t i = 0; i < t->np; i++) free(t->p[i].w);
    free(t->w), free(t->p), free(t->slot), free(t->heap), free(t->touched);
    memset(t, 0, sizeof *t);
}

/* The tokenizer.json object around the learned vocabulary and merges
 * (takes merges). */
static json_t *tokenizer_json(const struct toks *tk, json_t *merges)
{
    json_t *vj = json_object();
    for (int i = 0; i < tk->n; i++) json_object_set_new(vj, tk->s[i], json_integer(i));
    json_t *adds = json_array();
    for (size_t i = 0; i < sizeof added / sizeof *added; i++)
        json_array_append_new(adds, json_pack("{s:i,s:s,s:b,s:b,s:b,s:b,s:b}", "id", tk->n + (int)i, "content",
                                              added[i].s, "single_word", 0, "lstrip", 0, "rstrip", 0,
                                              "normalized", 0, "special", added[i].special));
    json_t *bl = json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 0,
                           "use_regex", 0);
    json_t *out = json_pack(
        "{s:s,s:n,s:n,s:o,s:{s:s},s:{s:s,s:[{s:s,s:{s:s},s:s,s:b},O]},s:O,s:O,"
        "s:{s:s,s:n,s:n,s:s,s:s,s:b,s:b,s:b,s:o,s:o}}",
        "version", "1.0", "truncation", "padding", "added_tokens", adds, "normalizer", "type", "NFC",
        "pre_tokenizer", "type", "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex", QWEN_SPLIT,
        "behavior", "Isolated", "invert", 0, bl, "post_processor", bl, "decoder", bl, "model", "type", "BPE",
        "dropout", "unk_token", "continuing_subword_prefix", "", "end_of_word_suffix", "", "fuse_unk", 0,
        "byte_fallback", 0, "ignore_merges", 0, "vocab", vj, "merges", merges);
    json_decref(bl);
    return out;
}

int vr_bpe_train(json_t **out, const char *const *files, int nfiles, int vocab, int min_freq,
                 struct vr_err *err)
{
    *out = NULL;
    if (vocab < 256) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "a byte-level vocabulary needs at least 256 tokens");
    struct wtab wt = {0};
    if (pretokenize(&wt, files, nfiles, err)) {
        wtab_release(&wt);
        return -1;
    }
    int id_of_byte[256];
    struct toks tk = {.s = vr_xcalloc((size_t)vocab + 1, sizeof(char *))};
    toks_bytes(&tk, id_of_byte);
    struct trainer t = {.w = vr_xcalloc(wt.n + 1, sizeof(struct word))};
    for (size_t i = 0; i < wt.cap; i++)
        if (wt.key[i]) {
            struct word *x = &t.w[t.nw++];
            x->n = (int)wt.klen[i];
            x->sym = vr_xmalloc(wt.klen[i] * sizeof(int));
            for (size_t k = 0; k < wt.klen[i]; k++) x->sym[k] = id_of_byte[(unsigned char)wt.key[i][k]];
            x->count = wt.count[i];
        }
    wtab_release(&wt);
    trainer_start(&t);
    json_t *merges = json_array();
    trainer_run(&t, &tk, vocab, min_freq, merges);
    trainer_release(&t);
    *out = tokenizer_json(&tk, merges);
    for (int i = 0; i < tk.n; i++) free(tk.s[i]);
    free(tk.s), free(tk.slot);
    return *out ? 0 : vr_err_set(err, VR_ERR_SYS, NULL, 0, "cannot build tokenizer.json");
}

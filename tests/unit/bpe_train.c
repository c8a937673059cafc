/* Unit tests of lib/bpe_train.c: the incremental trainer (heap of pair
 * counts, pair -> words lists) must give the merges of the plain trainer kept
 * here as the specification, on random corpora of few letters, where tied
 * counts are common and runs ("aaaa") overlap their own pairs; then the edges
 * (no pairs, min_freq, vocab 256, errors). The exact bytes of a tokenizer.json
 * are pinned by t0230. */
#include "../tap.h"
#include "bpe_train.h"
#include "rng.h"

#include <unistd.h>

#define REF_V 512 /* largest vocabulary the reference's pair table holds */

/* GPT-2's byte -> printable code point map (as lib/bpe_train.c). */
static int byte_cp(int b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    int n = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) n++;
    return 256 + n;
}

struct ref {
    char *tok[REF_V];
    int ntok;
    json_t *merges;
    int ties;  /* merges whose count another pair shared */
    int roads; /* merges whose string was a token already */
};

/* Token strings of ids 0..255 (bytes in code point order); id_of[b]. */
static void ref_bytes(struct ref *r, int id_of[256])
{
    int order[256];
    for (int b = 0; b < 256; b++) order[b] = b;
    for (int i = 1; i < 256; i++)
        for (int j = i; j > 0 && byte_cp(order[j - 1]) > byte_cp(order[j]); j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; i < 256; i++) {
        int cp = byte_cp(order[i]);
        char *s = calloc(4, 1);
        if (cp < 0x80) s[0] = (char)cp;
        else s[0] = (char)(0xC0 | cp >> 6), s[1] = (char)(0x80 | (cp & 63));
        r->tok[i] = s;
        id_of[order[i]] = i;
    }
    r->ntok = 256;
}

/* One merge step of the plain trainer on pieces w[0..n) (lengths len[]):
 * count every adjacent pair afresh, pick the highest count, ties to the
 * smaller (left, right). Returns 0 when no pair reaches min_freq. */
static int ref_step(struct ref *r, int **w, int *len, int n, int64_t *cnt, int min_freq)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k + 1 < len[i]; k++) cnt[w[i][k] * REF_V + w[i][k + 1]]++;
    int64_t bc = 0;
    int best = -1, tie = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k + 1 < len[i]; k++) {
            int p = w[i][k] * REF_V + w[i][k + 1];
            if (cnt[p] > bc || (cnt[p] == bc && p < best)) bc = cnt[p], best = p;
        }
    for (int i = 0; i < n; i++)
        for (int k = 0; k + 1 < len[i]; k++) {
            int p = w[i][k] * REF_V + w[i][k + 1];
            tie |= p != best && cnt[p] == bc;
        }
    for (int i = 0; i < n; i++)
        for (int k = 0; k + 1 < len[i]; k++) cnt[w[i][k] * REF_V + w[i][k + 1]] = 0;
    if (best < 0 || bc < (min_freq > 1 ? min_freq : 1)) return 0;
    int a = best / REF_V, b = best % REF_V;
    char s[4096];
    snprintf(s, sizeof s, "%s%s", r->tok[a], r->tok[b]);
    int c = -1;
    for (int i = 0; i < r->ntok && c < 0; i++)
        if (strcmp(r->tok[i], s) == 0) c = i;
    r->roads += c >= 0;
    r->ties += tie;
    if (c < 0) r->tok[c = r->ntok++] = strdup(s);
    json_array_append_new(r->merges, json_pack("[ss]", r->tok[a], r->tok[b]));
    for (int i = 0; i < n; i++) {
        int o = 0;
        for (int k = 0; k < len[i]; k++) {
            if (k + 1 < len[i] && w[i][k] == a && w[i][k + 1] == b) w[i][o++] = c, k++;
            else w[i][o++] = w[i][k];
        }
        len[i] = o;
    }
    return 1;
}

/* The plain trainer on text: one line of ASCII letters and single spaces,
 * which Qwen's pre-tokenizer splits into "w0", " w1", " w2", ... */
static void ref_train(struct ref *r, const char *text, int vocab, int min_freq)
{
    int id_of[256];
    ref_bytes(r, id_of);
    r->merges = json_array();
    int n = 0, cap = 1 + (int)strlen(text);
    int **w = calloc((size_t)cap, sizeof *w), *len = calloc((size_t)cap, sizeof *len);
    for (const char *p = text; *p;) {
        const char *e = p + 1;
        while (*e && *e != ' ') e++;
        w[n] = malloc((size_t)(e - p) * sizeof(int));
        for (const char *q = p; q < e; q++) w[n][len[n]++] = id_of[(unsigned char)*q];
        n++;
        p = e;
    }
    int64_t *cnt = calloc((size_t)REF_V * REF_V, sizeof *cnt);
    while (r->ntok < vocab && ref_step(r, w, len, n, cnt, min_freq)) {}
    for (int i = 0; i < n; i++) free(w[i]);
    free(w), free(len), free(cnt);
}

static void ref_free(struct ref *r)
{
    for (int i = 0; i < r->ntok; i++) free(r->tok[i]);
    json_decref(r->merges);
}

static char tmpdir[] = "/tmp/vr-bpe-train-XXXXXX";

/* Train on text with vr_bpe_train; NULL on failure (err filled). */
static json_t *train_text(const char *text, int vocab, int min_freq, struct vr_err *err)
{
    char path[256];
    snprintf(path, sizeof path, "%s/corpus.txt", tmpdir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    const char *files[] = {path};
    json_t *j = NULL;
    if (vr_bpe_train(&j, files, 1, vocab, min_freq, err)) return NULL;
    return j;
}

/* Compare with the plain trainer; returns the index of the first differing
 * merge in *at (-1 when the lists are equal but the vocabularies differ). */
static int same_as_ref(json_t *j, const struct ref *r, int *at)
{
    json_t *m = json_object_get(json_object_get(j, "model"), "merges");
    json_t *v = json_object_get(json_object_get(j, "model"), "vocab");
    *at = -1;
    size_t n = json_array_size(m) > json_array_size(r->merges) ? json_array_size(m) : json_array_size(r->merges);
    for (size_t i = 0; i < n; i++)
        if (!json_equal(json_array_get(m, i), json_array_get(r->merges, i))) {
            *at = (int)i;
            return 0;
        }
    return (int)json_object_size(v) == r->ntok;
}

/* Random corpora: k letters, words of 1..maxlen, single spaces. */
static void test_random(void)
{
    static const int maxlens[] = {2, 4, 8, 16}, vocabs[] = {256, 300, 400, 512}, minf[] = {0, 1, 2, 3};
    struct vr_rng rng;
    vr_rng_init(&rng, 13, 0);
    int ties = 0, roads = 0, ncase = 48;
    for (int c = 0; c < ncase; c++) {
        int k = 2 + c % 5, maxlen = maxlens[c / 5 % 4], vocab = vocabs[c / 3 % 4], mf = minf[c % 4];
        int nw = 200 + (int)vr_rng_below(&rng, 3000);
        char *text = malloc((size_t)nw * (maxlen + 1) + 1), *p = text;
        for (int i = 0; i < nw; i++) {
            if (i) *p++ = ' ';
            int l = 1 + (int)vr_rng_below(&rng, (uint64_t)maxlen);
            for (int q = 0; q < l; q++) *p++ = (char)('a' + vr_rng_below(&rng, (uint64_t)k));
        }
        *p = 0;
        struct vr_err err = {0};
        json_t *j = train_text(text, vocab, mf, &err);
        struct ref r = {0};
        ref_train(&r, text, vocab, mf);
        int at = -1;
        if (!ok(j && same_as_ref(j, &r, &at), "case %d (%d letters, %d words <= %d, vocab %d, min_freq %d): "
                                              "%zu merges as the plain trainer", c, k, nw, maxlen, vocab, mf,
                json_array_size(r.merges)))
            diag("first difference at merge %d%s%s", at, j ? "" : "; ", j ? "" : err.msg);
        ties += r.ties, roads += r.roads;
        ref_free(&r);
        json_decref(j);
        free(text);
    }
    /* the cases must reach what they are for */
    ok(ties > 100, "the cases hold %d merges chosen among tied counts", ties);
    /* A merge whose string is a token already needs two segmentations of
     * one string, which left-to-right merging of distinct one-character
     * bases seems never to make (none in these cases, nor in 8,000 small
     * random corpora searched for one); both trainers keep the check. */
    diag("%d merges found their token existing", roads);
}

static void test_edges(void)
{
    struct vr_err err = {0};
    json_t *j = train_text("", 300, 2, &err);
    json_t *m = json_object_get(json_object_get(j, "model"), "vocab");
    ok(j && json_object_size(m) == 256 && json_array_size(json_object_get(json_object_get(j, "model"), "merges")) == 0,
       "an empty corpus: the 256 bytes, no merges");
    json_decref(j);
    j = train_text("ab ab ab cd cd", 300, 4, &err);
    ok(j && json_array_size(json_object_get(json_object_get(j, "model"), "merges")) == 0,
       "min_freq above every count: no merges");
    json_decref(j);
    j = train_text("ab ab ab cd cd", 300, 3, &err);
    m = json_object_get(json_object_get(j, "model"), "merges");
    ok(j && json_array_size(m) == 1 && strcmp(json_string_value(json_array_get(json_array_get(m, 0), 0)), "a") == 0,
       "min_freq 3: only (a, b), which occurs 3 times");
    json_decref(j);
    j = train_text("ab ab ab cd cd", 256, 1, &err);
    ok(j && json_array_size(json_object_get(json_object_get(j, "model"), "merges")) == 0, "vocab 256: no merges");
    json_decref(j);
    j = train_text("ab", 255, 1, &err);
    ok(!j && err.kind == VR_ERR_USAGE, "vocab 255 is a usage error");
    const char *files[] = {"/nonexistent/corpus.txt"};
    j = NULL;
    ok(vr_bpe_train(&j, files, 1, 300, 2, &err) && !j && strstr(err.msg, "/nonexistent/corpus.txt"),
       "a missing corpus names the file (%s)", err.msg);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    test_random();
    test_edges();
    char path[256];
    snprintf(path, sizeof path, "%s/corpus.txt", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return done_testing();
}

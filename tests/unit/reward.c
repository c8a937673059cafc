/* reward.c: VLM-R1's rewards against the golden corpus (tests/golden/reward/,
 * made by reward_golden.py from VLM-R1's Python), the linear-time format
 * matcher against the whole regex, Python's int / int rounding, IoU, length
 * and repetition by hand, reward lists, and advantages. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "progress.h"
#include "py.h"
#include "reward.h"

#include "../tap.h"
#include "golden.h"

static const char FORMAT_REC[] =
    "<think>.*?</think>\\s*<answer>.*?\\{.*\\[\\d+,\\s*\\d+,\\s*\\d+,\\s*\\d+\\].*\\}.*?</answer>";
static const char FORMAT_STRICT[] = "<think>.*?</think>\\s*<answer>.*?</answer>";

static pcre2_code *compile_py(const char *py, uint32_t opts)
{
    char *pat = vr_py_regex(py);
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_DOTALL | opts,
                                   &ec, &eo, NULL);
    free(pat);
    if (!re) {
        printf("Bail out! cannot compile %s\n", py);
        exit(1);
    }
    return re;
}

/* The whole regex, searched (or fully matched) by PCRE2: 1, 0, or -1 when
 * PCRE2 gives up (match limit). */
static int whole(pcre2_code *re, const char *s, size_t n, uint32_t opts)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, opts, md, NULL);
    pcre2_match_data_free(md);
    return rc > 0 ? 1 : rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

/* Fill g from a rollout line as vr-reward does (golden lines are simple). */
static void geom_of(json_t *line, struct vr_reward_geom *g)
{
    memset(g, 0, sizeof *g);
    json_t *sol = json_object_get(line, "solution"), *px = json_object_get(line, "pixels");
    for (int i = 0; i < 4; i++) g->sol[i] = json_number_value(json_array_get(sol, (size_t)i));
    json_t *s0 = json_array_get(json_object_get(line, "image_sizes"), 0);
    g->img_w = json_integer_value(json_array_get(s0, 0));
    g->img_h = json_integer_value(json_array_get(s0, 1));
    if (px) {
        json_t *in = json_object_get(px, "input_size"), *grid = json_object_get(px, "grid_thw");
        if (in) {
            g->in_w = json_integer_value(json_array_get(in, 0));
            g->in_h = json_integer_value(json_array_get(in, 1));
        } else {
            g->in_w = 14 * json_integer_value(json_array_get(grid, 2));
            g->in_h = 14 * json_integer_value(json_array_get(grid, 1));
        }
        g->rescale = 1;
    }
}

static json_t *read_jsonl(const char *rel)
{
    FILE *f = fopen(golden_path(rel), "r");
    if (!f) {
        printf("Bail out! %s: cannot open (run from the repository root or set VR_SRC)\n", golden_path(rel));
        exit(1);
    }
    json_t *all = json_array();
    char *buf = NULL;
    size_t cap = 0;
    while (getline(&buf, &cap, f) > 0) {
        json_t *v = json_loads(buf, 0, NULL);
        if (!v) {
            printf("Bail out! %s: bad line\n", rel);
            exit(1);
        }
        json_array_append_new(all, v);
    }
    free(buf);
    fclose(f);
    return all;
}

static void test_golden(pcre2_code *re_fmt, pcre2_code *re_strict)
{
    json_t *lines = read_jsonl("reward/rollouts.jsonl"), *exp = read_jsonl("reward/expected.jsonl");
    size_t li, e = 0, n = 0, bad = 0, exact = 0, regex_bad = 0;
    json_t *line;
    static const char *names[] = {"format", "format-strict", "iou", "iou50", "repetition"};
    json_array_foreach(lines, li, line) {
        struct vr_reward_geom g;
        geom_of(line, &g);
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(line, "completions"), k, c) {
            json_t *tx = json_object_get(c, "text"), *want = json_array_get(exp, e++);
            const char *s = json_string_value(tx);
            size_t len = json_string_length(tx);
            double got[5] = {vr_reward_format(s, len), vr_reward_format_strict(s, len),
                             vr_reward_iou(s, len, &g), vr_reward_iou(s, len, &g) > 0.5 ? 1.0 : 0.0,
                             vr_reward_repetition(s, len)};
            for (int i = 0; i < 5; i++) {
                double w = json_number_value(json_object_get(want, names[i]));
                if (fabs(got[i] - w) > 1e-9) {
                    if (bad++ < 10)
                        diag("%s completion %zu %s: got %.17g, want %.17g", json_string_value(json_object_get(line, "id")),
                             k, names[i], got[i], w);
                } else if (got[i] == w) {
                    exact++;
                }
            }
            if (whole(re_fmt, s, len, 0) != (got[0] == 1.0) ||
                whole(re_strict, s, len, PCRE2_ANCHORED | PCRE2_ENDANCHORED) != (got[1] == 1.0))
                regex_bad++;
            n++;
        }
    }
    ok(n >= 200 && n == json_array_size(exp), "golden corpus: %zu completions (>= 200)", n);
    ok(bad == 0, "format, format-strict, iou, iou50, repetition equal VLM-R1's Python to 1e-9 (%zu of %zu values bit-exact)",
       exact, 5 * n);
    ok(regex_bad == 0, "linear format matchers agree with PCRE2 running the whole regexes on the corpus");
    json_decref(lines);
    json_decref(exp);
}

/* Random texts: a well-formed answer, mutated (pieces inserted, dropped,
 * swapped), so that matches and near misses both come up often. */
static void test_random_format(pcre2_code *re_fmt, pcre2_code *re_strict)
{
    static const char *alpha[] = {"<think>", "</think>", "<answer>", "</answer>", "{", "}", "[", "]",
                                  "1", "23", ",", " ", "\xe3\x80\x80", "\n", "x", "\xd9\xa1",
                                  "\x1c", "\xe1\xa0\x8e", ", ", "[1, 2, 3, 4]", "-", "[1,2,3,4]"};
    static const char *skel[] = {"<think>", "x", "</think>", " ", "<answer>", "{", "[1, 2, 3, 4]", "}", "</answer>"};
    const size_t na = sizeof alpha / sizeof alpha[0], ns = sizeof skel / sizeof skel[0];
    uint64_t st = 12345;
#define NEXT() (st = st * 6364136223846793005ull + 1442695040888963407ull, (size_t)(st >> 33))
    int bad = 0, nf = 0, ns_ = 0;
    char buf[512];
    for (int t = 0; t < 50000; t++) {
        const char *pc[40];
        size_t np = 0;
        for (size_t i = 0; i < ns; i++) pc[np++] = skel[i];
        int muts = (int)(NEXT() % 6);
        for (int m = 0; m < muts; m++) {
            size_t op = NEXT() % 3, at = NEXT() % (np + 1);
            if (op == 0 && np < 40) { /* insert */
                memmove(pc + at + 1, pc + at, (np - at) * sizeof *pc);
                pc[at] = alpha[NEXT() % na];
                np++;
            } else if (op == 1 && at < np) { /* drop */
                memmove(pc + at, pc + at + 1, (np - at - 1) * sizeof *pc);
                np--;
            } else if (np > 1) { /* swap */
                size_t i = NEXT() % np, j = NEXT() % np;
                const char *x = pc[i];
                pc[i] = pc[j];
                pc[j] = x;
            }
        }
        size_t len = 0;
        for (size_t i = 0; i < np; i++) {
            size_t pl = strlen(pc[i]);
            memcpy(buf + len, pc[i], pl);
            len += pl;
        }
        int f = vr_reward_format(buf, len) == 1.0, s = vr_reward_format_strict(buf, len) == 1.0;
        int wf = whole(re_fmt, buf, len, 0), ws = whole(re_strict, buf, len, PCRE2_ANCHORED | PCRE2_ENDANCHORED);
        if (wf != f || ws != s) {
            if (bad++ < 5) diag("disagree on '%.*s': %d/%d %d/%d", (int)len, buf, f, wf, s, ws);
        }
        nf += f;
        ns_ += s;
    }
#undef NEXT
    ok(bad == 0 && nf > 1000 && nf < 49000 && ns_ > 1000,
       "format matchers agree with the whole regexes on 50000 mutated answers (%d and %d match)", nf, ns_);
}

/* Correctly rounded a / w by exact integer comparison of the neighbouring
 * doubles (an oracle independent of reward.c's decimal expansion). */
static double oracle_div(unsigned __int128 a, uint64_t w)
{
    double d = (double)((long double)a / (long double)w); /* within an ulp or two */
    double best = d;
    __int128 bestdiff = -1;
    for (int k = -3; k <= 3; k++) {
        double c = d;
        for (int j = 0; j < (k < 0 ? -k : k); j++) c = nextafter(c, k < 0 ? 0 : INFINITY);
        int e;
        double m = frexp(c, &e); /* c = m * 2^e, m in [0.5, 1) */
        int64_t mi = (int64_t)ldexp(m, 53);
        e -= 53; /* c = mi * 2^e */
        /* |a - c w| scaled by 2^-e when e < 0 */
        __int128 lhs = e < 0 ? (__int128)a << -e : (__int128)a, rhs = (__int128)mi * (__int128)w;
        if (e > 0) rhs <<= e;
        __int128 diff = lhs > rhs ? lhs - rhs : rhs - lhs;
        if (bestdiff < 0 || diff < bestdiff || (diff == bestdiff && (mi & 1) == 0)) {
            bestdiff = diff;
            best = c;
        }
    }
    return best;
}

static void test_int_div(void)
{
    uint64_t st = 99;
    int bad = 0;
    char text[128], digits[48];
    for (int t = 0; t < 20000; t++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t hi = st;
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        unsigned __int128 a = ((unsigned __int128)(hi >> (t % 40)) << 20) | (st >> 44);
        if (t % 3 == 0) a = hi; /* up to 2^64 */
        uint64_t w = 1 + (st >> 20) % (t % 2 ? 5000 : 3000000);
        /* a as decimal */
        int n = 0;
        unsigned __int128 x = a;
        do {
            digits[n++] = (char)('0' + (int)(x % 10));
            x /= 10;
        } while (x);
        for (int i = 0; i < n / 2; i++) {
            char c = digits[i];
            digits[i] = digits[n - 1 - i];
            digits[n - 1 - i] = c;
        }
        digits[n] = 0;
        int len = snprintf(text, sizeof text, "<answer>[%s, 0, 0, 0]</answer>", digits);
        struct vr_reward_geom g = {.rescale = 1, .in_w = (int64_t)w, .in_h = 1, .img_w = 1, .img_h = 1};
        double box[4];
        if (vr_reward_answer_box(text, (size_t)len, &g, box) != VR_BOX_OK || box[0] != oracle_div(a, w)) {
            if (bad++ < 5) diag("%s / %llu: got %.17g, want %.17g", digits, (unsigned long long)w, box[0],
                                oracle_div(a, w));
        }
    }
    ok(bad == 0, "integer / input size is correctly rounded as Python's int / int (20000 cases up to 2^84)");
}

static void test_answer_box(void)
{
    struct vr_reward_geom g = {0};
    double b[4];
    const char *t = "<answer>{\"bbox_2d\": [\xd9\xa1\xd9\xa0, \xef\xbc\x92, 30,\xe3\x80\x80" "4]}</answer>";
    ok(vr_reward_answer_box(t, strlen(t), &g, b) == VR_BOX_OK && b[0] == 10 && b[1] == 2 && b[2] == 30 &&
           b[3] == 4,
       "Arabic-Indic and full-width digits read as Python's int(); U+3000 is \\s");
    t = "<answer>[1,\xe1\xa0\x8e" "2, 3, 4]</answer>";
    is_int(vr_reward_answer_box(t, strlen(t), &g, b), VR_BOX_NO_BOX, "U+180E is not \\s in Python");
    t = "<answer>[1,\x1c" "2, 3, 4]</answer>";
    is_int(vr_reward_answer_box(t, strlen(t), &g, b), VR_BOX_OK, "U+001C is \\s in Python");
    t = "[1, 2, 3, 4]";
    is_int(vr_reward_answer_box(t, strlen(t), &g, b), VR_BOX_NO_ANSWER, "no <answer> block");
    t = "<answer>[1, 2, 3, 4]";
    is_int(vr_reward_answer_box(t, strlen(t), &g, b), VR_BOX_NO_ANSWER, "no </answer>");
    t = "<answer>[1.5, 2, 3, 4]</answer><answer>[1, 2, 3, 4]</answer>";
    is_int(vr_reward_answer_box(t, strlen(t), &g, b), VR_BOX_NO_BOX, "only the first block counts");
    char big[5000];
    memset(big, '9', sizeof big);
    int n = snprintf(big, sizeof big, "<answer>[1, 2, 3, ");
    memset(big + n, '7', 4300);
    strcpy(big + n + 4300, "]</answer>");
    is_int(vr_reward_answer_box(big, strlen(big), &g, b), VR_BOX_RAISES,
           "4300 digits: float(int) overflows (OverflowError)");
    g = (struct vr_reward_geom){.rescale = 1, .in_w = 644, .in_h = 420, .img_w = 640, .img_h = 427};
    memset(big + n, '0', 4300);
    big[n + 4299] = '5';
    is_int(vr_reward_answer_box(big, strlen(big), &g, b), VR_BOX_OK, "4300 digits with leading zeros: int() reads them");
    memset(big + n, '0', 4301);
    strcpy(big + n + 4301, "]</answer>");
    is_int(vr_reward_answer_box(big, strlen(big), &g, b), VR_BOX_RAISES, "4301 digits: int() raises ValueError");
    t = "<answer>[644, 420, 322, 210]</answer>";
    ok(vr_reward_answer_box(t, strlen(t), &g, b) == VR_BOX_OK && b[0] == 640 && b[1] == 427 && b[2] == 320 &&
           b[3] == 213.5,
       "rescale from the model input (644x420) to the image (640x427)");
}

static void test_iou(void)
{
    double a[4] = {0, 0, 10, 10}, b[4] = {0, 0, 10, 10}, v;
    ok(vr_reward_iou_boxes(a, b, &v) == 0 && v == 1.0, "identical boxes: 1");
    double c[4] = {5, 0, 15, 10};
    /* inter x: max 5 .. min(9, 9) -> (9 - 5 + 1) * (9 - 0 + 1) = 50; union 100 + 100 - 50 */
    ok(vr_reward_iou_boxes(a, c, &v) == 0 && v == 50.0 / 150.0, "half overlap: 50/150 (VLM-R1's inclusive intersection)");
    double d[4] = {9, 9, 20, 20};
    /* inter: max 9 .. min 9 -> 9 < 9 is false: no intersection */
    ok(vr_reward_iou_boxes(a, d, &v) == 0 && v == 0.0, "a one-pixel corner overlap counts as none (x1 < x2 - 1 needed)");
    double z1[4] = {10, 0, 0, 10};
    ok(vr_reward_iou_boxes(z1, b, &v) == -1, "union 0 raises ZeroDivisionError (reward 0)");
    double nan4[4] = {INFINITY, 0, INFINITY, 10};
    ok(vr_reward_iou_boxes(nan4, b, &v) == 0 && isnan(v), "inf - inf gives NaN, as in Python");
    struct vr_reward_geom g = {.sol = {0, 0, 10, 10}};
    const char *t = "<answer>[0, 0, 10, 10]</answer>";
    ok(vr_reward_iou(t, strlen(t), &g) == 1.0, "iou reward without rescale");
}

static void test_length_repetition(void)
{
    ok(vr_reward_length(0) == 1.0, "length 0: 1.0");
    ok(fabs(vr_reward_length(512) - 0.75) < 1e-15, "length 512: 0.75");
    ok(vr_reward_length(1024) == 0.5, "length 1024: 0.5");
    ok(fabs(vr_reward_length(2048) - 1.0) < 1e-15, "length 2048: 1.0 again (not clamped, as VLM-R1)");
    const char *t = "a b c d e";
    ok(vr_reward_repetition(t, strlen(t)) == 0.0, "fewer than 6 words: 0");
    t = "a a a a a a a a";
    /* 3 six-grams, all the same: 1 - 1/3 */
    ok(fabs(vr_reward_repetition(t, strlen(t)) + (1 - 1.0 / 3)) < 1e-15, "repeated words: -(1 - 1/3)");
    t = "A b C d E f a B c D e F";
    ok(fabs(vr_reward_repetition(t, strlen(t)) + (1 - 1.0 / 7 * 6)) < 1e-15, "words are lowercased");
    t = "```json\n[{\"bbox_2d\": [1, 2, 3, 4], \"label\": \"a\"}, {\"bbox_2d\": [1, 2, 3, 4], \"label\": \"a\"}]\n```";
    ok(vr_reward_repetition(t, strlen(t)) == -0.5, "JSON list with a repeated object: -0.5");
    ok(vr_reward_repetition("", 0) == 0.0, "empty: 0");
}

static void test_spec(void)
{
    struct vr_reward r = {0};
    struct vr_err err;
    ok(vr_reward_add(&r, "format:0.5,iou", &err) == 0 && r.nterms == 2 && r.terms[0].weight == 0.5 &&
           r.terms[1].weight == 1 && strcmp(r.terms[1].name, "iou") == 0,
       "format:0.5,iou");
    ok(vr_reward_add(&r, "exec:0.25:jq -c '[1,2]', x", &err) == 0 && r.nterms == 3 && r.terms[2].weight == 0.25 &&
           strcmp(r.terms[2].exec.cmd, "jq -c '[1,2]', x") == 0,
       "exec:WEIGHT:CMD takes the rest, commas included");
    ok(vr_reward_add(&r, "exec:awk -F: '{print 1}'", &err) == 0 && r.terms[3].weight == 1 &&
           strcmp(r.terms[3].exec.cmd, "awk -F: '{print 1}'") == 0,
       "exec:CMD with a colon that is no weight");
    ok(vr_reward_add(&r, "format", &err) == -1 && err.kind == VR_ERR_USAGE && strstr(err.msg, "named twice"),
       "a reward named twice: usage error");
    ok(vr_reward_add(&r, "fromat", &err) == -1 && err.kind == VR_ERR_USAGE && strstr(err.msg, "unknown reward 'fromat'"),
       "unknown reward: usage error");
    ok(vr_reward_add(&r, "length:x", &err) == -1 && err.kind == VR_ERR_USAGE, "bad weight: usage error");
    ok(vr_reward_add(&r, "iou50,", &err) == -1 && err.kind == VR_ERR_USAGE, "trailing comma: usage error");
    vr_reward_release(&r);
}

static json_t *group_line(const double *r, size_t n)
{
    json_t *line = json_pack("{s:s, s:[]}", "id", "t/0", "completions");
    for (size_t i = 0; i < n; i++)
        json_array_append_new(json_object_get(line, "completions"), json_pack("{s:s, s:f}", "text", "", "reward", r[i]));
    return line;
}

static double adv(json_t *line, size_t k)
{
    return json_real_value(json_object_get(json_array_get(json_object_get(line, "completions"), k), "advantage"));
}

static void test_advantages(void)
{
    double r[4] = {1, 2, 3, 4}, m, s;
    vr_reward_stats(r, 4, &m, &s);
    ok(m == 2.5 && fabs(s - sqrt(5.0 / 3.0)) < 1e-15, "mean 2.5, unbiased std sqrt(5/3) (torch.std)");
    json_t *line = group_line(r, 4);
    is_int(vr_reward_advantages(line, VR_SCALE_GROUP, 0), 0, "not degenerate");
    ok(fabs(adv(line, 0) - (1 - 2.5) / (sqrt(5.0 / 3.0) + 1e-4)) < 1e-15 &&
           fabs(adv(line, 3) - (4 - 2.5) / (sqrt(5.0 / 3.0) + 1e-4)) < 1e-15,
       "advantage (r - mean) / (std + 1e-4)");
    ok(json_real_value(json_object_get(json_object_get(line, "group"), "mean")) == 2.5 &&
           !json_object_get(line, "degenerate"),
       "group mean recorded, no degenerate flag");
    vr_reward_advantages(line, VR_SCALE_NONE, 0);
    ok(adv(line, 0) == -1.5 && adv(line, 3) == 1.5, "--scale none: r - mean (Dr. GRPO)");
    vr_reward_advantages(line, VR_SCALE_BATCH, 2.0);
    ok(adv(line, 0) == -1.5 / 2.0001 &&
           json_real_value(json_object_get(line, "batch_std")) == 2.0,
       "--scale batch: (r - group mean) / (batch std + 1e-4)");
    json_t *lines[2] = {line, group_line((double[]){10, 10}, 2)};
    double bs = vr_reward_batch_std(lines, 2), all[6] = {1, 2, 3, 4, 10, 10}, bm, bstd;
    vr_reward_stats(all, 6, &bm, &bstd);
    ok(bs == bstd, "batch std over every completion of the batch");
    is_int(vr_reward_advantages(lines[1], VR_SCALE_GROUP, 0), 1, "equal rewards: degenerate");
    ok(adv(lines[1], 0) == 0 && json_is_true(json_object_get(lines[1], "degenerate")),
       "degenerate group: advantage 0, \"degenerate\": true");
    json_decref(lines[1]);
    json_decref(line);
    line = group_line((double[]){0.7}, 1);
    is_int(vr_reward_advantages(line, VR_SCALE_GROUP, 0), 1, "G=1 is degenerate");
    ok(adv(line, 0) == 0 &&
           json_real_value(json_object_get(json_object_get(line, "group"), "std")) == 0,
       "G=1: std 0 (torch.std gives NaN), advantage 0");
    json_decref(line);
}

/* A degenerate completion that costs a backtracking search of the whole
 * regex billions of steps: linear here. */
static void test_pathological(void)
{
    struct vr_buf b = {0};
    vr_buf_puts(&b, "<think></think><answer>");
    for (int i = 0; i < 20000; i++) vr_buf_puts(&b, "{[1, 2, 3, 4]} [{\"bbox_2d\" \"label\" ");
    double t0 = vr_now();
    double f = vr_reward_format(b.p, b.len), r = vr_reward_repetition(b.p, b.len);
    ok(f == 0.0 && r < -0.99 && vr_now() - t0 < 2.0,
       "a 680 KB repetitive completion without </answer> is scored in linear time");
    vr_buf_release(&b);
}

int main(void)
{
    pcre2_code *re_fmt = compile_py(FORMAT_REC, 0), *re_strict = compile_py(FORMAT_STRICT, 0);
    test_golden(re_fmt, re_strict);
    test_random_format(re_fmt, re_strict);
    test_int_div();
    test_answer_box();
    test_iou();
    test_length_repetition();
    test_spec();
    test_advantages();
    test_pathological();
    pcre2_code_free(re_fmt);
    pcre2_code_free(re_strict);
    return done_testing();
}

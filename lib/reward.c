/* reward.c: VLM-R1's text rewards (format, format-strict, IoU, length,
 * repetition), the reference for vr-reward; tests/golden/reward_golden.py is
 * their Python twin and its corpus the test (reward.h has the contracts).
 *
 * Regular expressions are written in Python's syntax and run with Python's \d
 * and \s (py.c): Unicode decimal digits (category Nd) and the 29 characters
 * of str.isspace (which includes U+001C..U+001F and not U+180E, unlike PCRE2's
 * own \s).
 *
 * VLM-R1's format regex, searched whole, backtracks polynomially (a degenerate
 * completion repeating "{[1,2,3,4]}" without "</answer>" costs PCRE2 or Python
 * billions of steps). It is a chain of pieces joined by .* (DOTALL), so it
 * matches exactly when each piece can be found after the previous one, taking
 * each at its earliest end; every piece here has its earliest end at its
 * leftmost start, so leftmost searches decide it in linear time. The unit test
 * compares this with the whole regex on the golden corpus and random texts. */
#include "reward.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "py.h"

/* IoU and the length reward repeat Python's operations one by one; a fused
 * multiply-add would round differently. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* The pieces of VLM-R1's patterns (Python syntax). */
enum { RX_THINK_ANSWER, RX_BBOX, RX_LIST_OPEN, RX_LIST_CLOSE, RX_N };
static const char *const rx_src[RX_N] = {
    [RX_THINK_ANSWER] = "</think>\\s*<answer>",
    [RX_BBOX] = "\\[(\\d+),\\s*(\\d+),\\s*(\\d+),\\s*(\\d+)]",
    [RX_LIST_OPEN] = "\\[\\s*\\{",
    [RX_LIST_CLOSE] = "\\}\\s*\\]",
};
static struct vr_py_re *rx[RX_N];
static pthread_once_t rx_once = PTHREAD_ONCE_INIT;

static void rx_init(void)
{
    for (int k = 0; k < RX_N; k++) rx[k] = vr_py_re_compile(rx_src[k], 1);
}

/* Leftmost match of piece k in s[0..len) starting at or after off: 1 with
 * ov[0..2*(ngroups+1)) set (byte offsets), 0 for none (also for text that is
 * not UTF-8, which JSON strings never are). */
static int rx_find(int k, const char *s, size_t len, size_t off, size_t *ov, int ngroups)
{
    pthread_once(&rx_once, rx_init);
    return vr_py_re_match(rx[k], s, len, off, 0, ov, ngroups);
}

static const char *find(const char *s, size_t len, size_t off, const char *needle)
{
    if (off > len) return NULL;
    return memmem(s + off, len - off, needle, strlen(needle));
}

/* ---- format ---------------------------------------------------------------- */

double vr_reward_format(const char *t, size_t n)
{
    /* <think> .* </think>\s*<answer> .* \{ .* \[\d+,\s*\d+,\s*\d+,\s*\d+\] .* \} .* </answer> */
    size_t ov[10];
    const char *p = find(t, n, 0, "<think>");
    if (!p) return 0.0;
    if (!rx_find(RX_THINK_ANSWER, t, n, (size_t)(p - t) + 7, ov, 0)) return 0.0;
    if (!(p = find(t, n, ov[1], "{"))) return 0.0;
    if (!rx_find(RX_BBOX, t, n, (size_t)(p - t) + 1, ov, 4)) return 0.0;
    if (!(p = find(t, n, ov[1], "}"))) return 0.0;
    return find(t, n, (size_t)(p - t) + 1, "</answer>") ? 1.0 : 0.0;
}

double vr_reward_format_strict(const char *t, size_t n)
{
    /* fullmatch: <think> at 0, </think>\s*<answer> after it, </answer> ending the text */
    size_t ov[2];
    if (n < 7 || memcmp(t, "<think>", 7) != 0) return 0.0;
    if (!rx_find(RX_THINK_ANSWER, t, n, 7, ov, 0)) return 0.0;
    return n >= 9 && n - 9 >= ov[1] && memcmp(t + n - 9, "</answer>", 9) == 0 ? 1.0 : 0.0;
}

/* ---- IoU ------------------------------------------------------------------- */

int vr_reward_answer_block(const char *t, size_t n, size_t *start, size_t *end)
{
    /* re.search(r'<answer>(.*?)</answer>', content, re.DOTALL): the first
     * <answer>, up to the first </answer> after it; .strip() cannot change
     * where a box pattern matches */
    const char *a = find(t, n, 0, "<answer>");
    if (!a) return -1;
    *start = (size_t)(a - t) + 8;
    const char *e = find(t, n, *start, "</answer>");
    if (!e) return -1;
    *end = (size_t)(e - t);
    return 0;
}

enum vr_answer_box vr_reward_answer_box(const char *t, size_t n, const struct vr_reward_geom *g,
                                        double box[4])
{
    size_t s, e, ov[10];
    if (vr_reward_answer_block(t, n, &s, &e)) return VR_BOX_NO_ANSWER;
    if (!rx_find(RX_BBOX, t, e, s, ov, 4)) return VR_BOX_NO_BOX;
    return vr_reward_int_box(t, ov, g, box) ? VR_BOX_RAISES : VR_BOX_OK;
}

int vr_reward_int_box(const char *t, const size_t ov[10], const struct vr_reward_geom *g, double box[4])
{
    for (int i = 0; i < 4; i++) {
        const char *d = t + ov[2 * i + 2];
        size_t len = ov[2 * i + 3] - ov[2 * i + 2];
        double v;
        if (g && g->rescale) { /* resize_bbox: bbox[i] / input_size * image_size */
            if (vr_py_int_ratio(d, len, i % 2 ? g->in_h : g->in_w, &v)) return -1;
            v = v * (double)(i % 2 ? g->img_h : g->img_w);
        } else if (vr_py_int_float(d, len, &v)) {
            return -1;
        }
        box[i] = v;
    }
    return 0;
}

/* Python's max(a, b) and min(a, b): the first unless the second compares
 * greater (smaller), which decides what NaN does. */
static double py_max(double a, double b) { return b > a ? b : a; }
static double py_min(double a, double b) { return b < a ? b : a; }

int vr_reward_iou_boxes(const double b1[4], const double b2[4], double *out)
{
    double ix1 = py_max(b1[0], b2[0]);
    double iy1 = py_max(b1[1], b2[1]);
    double ix2 = py_min(b1[2] - 1, b2[2] - 1);
    double iy2 = py_min(b1[3] - 1, b2[3] - 1);
    double inter = 0.0;
    if (ix1 < ix2 && iy1 < iy2) inter = (ix2 - ix1 + 1) * (iy2 - iy1 + 1);
    double a1 = (b1[2] - b1[0]) * (b1[3] - b1[1]);
    double a2 = (b2[2] - b2[0]) * (b2[3] - b2[1]);
    double uni = a1 + a2 - inter;
    if (uni == 0) return -1;
    *out = inter / uni;
    return 0;
}

double vr_reward_iou(const char *t, size_t n, const struct vr_reward_geom *g)
{
    double box[4], v;
    if (vr_reward_answer_box(t, n, g, box) != VR_BOX_OK) return 0.0;
    if (vr_reward_iou_boxes(box, g->sol, &v)) return 0.0;
    return isnan(v) ? 0.0 : v;
}

/* ---- length ---------------------------------------------------------------- */

double vr_reward_length(int64_t ntokens)
{
    /* cosine_reward with acc_reward forced to 1.0: min_value 0.5, max_value 1.0 */
    const double max_value = 1.0, min_value = 0.5, cosine_max_len = 1024;
    double c = cos((double)ntokens * M_PI / cosine_max_len);
    return max_value - (max_value - min_value) * (1 - c) / 2;
}

/* ---- repetition ------------------------------------------------------------ */

/* str.strip(): s[*a..*b) without Python whitespace at either end. */
static void py_strip(const char *s, size_t *a, size_t *b)
{
    while (*a < *b) {
        size_t i = *a;
        if (!vr_py_is_space(vr_py_utf8_next(s, *b, &i))) break;
        *a = i;
    }
    while (*b > *a) {
        size_t j = *b - 1;
        while (j > *a && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
        size_t i = j;
        if (!vr_py_is_space(vr_py_utf8_next(s, *b, &i))) break;
        *b = j;
    }
}

/* An unambiguous text of a JSON value: equal texts for equal values, types
 * told apart (Python's f"{v}" tells 1 from 1.0 and True from 1 as well). */
static void value_key(struct vr_buf *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        vr_buf_printf(b, "{%zu", json_object_size(v));
        json_object_foreach((json_t *)v, k, x) {
            vr_buf_printf(b, "%zu:", strlen(k));
            vr_buf_puts(b, k);
            value_key(b, x);
        }
        vr_buf_putc(b, '}');
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        vr_buf_printf(b, "[%zu", json_array_size(v));
        json_array_foreach(v, i, x) value_key(b, x);
        vr_buf_putc(b, ']');
        break;
    }
    case JSON_STRING:
        vr_buf_printf(b, "s%zu:", json_string_length(v));
        vr_buf_put(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER: vr_buf_printf(b, "i%lld;", (long long)json_integer_value(v)); break;
    case JSON_REAL: vr_buf_printf(b, "r%.17g;", json_real_value(v)); break;
    case JSON_TRUE: vr_buf_puts(b, "T"); break;
    case JSON_FALSE: vr_buf_puts(b, "F"); break;
    case JSON_NULL: vr_buf_puts(b, "N"); break;
    }
}

struct span {
    const char *p;
    size_t n;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? -1 : 1;
    return memcmp(x->p, y->p, x->n);
}

/* 1 - unique/total, times max_penalty -1.0, as Python computes it. */
static double penalty(size_t unique, size_t total)
{
    double scaling = 1 - (double)unique / (double)total;
    return scaling * -1.0;
}

/* The JSON-list branch: 1 with *out set when data is a non-empty list. */
static int repetition_items(const json_t *data, double *out)
{
    if (!json_is_array(data) || json_array_size(data) == 0) return 0;
    size_t n = json_array_size(data), total = 0;
    struct vr_buf *keys = vr_xcalloc(n, sizeof *keys);
    struct span *sp = vr_xcalloc(n, sizeof *sp);
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(data, i);
        json_t *bb = json_is_object(item) ? json_object_get(item, "bbox_2d") : NULL;
        json_t *lb = json_is_object(item) ? json_object_get(item, "label") : NULL;
        if (!bb || !lb) continue;
        value_key(&keys[total], bb);
        vr_buf_putc(&keys[total], '_');
        value_key(&keys[total], lb);
        sp[total].p = keys[total].p;
        sp[total].n = keys[total].len;
        total++;
    }
    size_t unique = 0;
    if (total) {
        qsort(sp, total, sizeof *sp, span_cmp);
        for (size_t i = 0; i < total; i++)
            if (i == 0 || span_cmp(&sp[i - 1], &sp[i]) != 0) unique++;
    }
    *out = total ? penalty(unique, total) : 0.0;
    for (size_t i = 0; i < n; i++) vr_buf_release(&keys[i]);
    free(keys);
    free(sp);
    return 1;
}

/* str.lower(): utf8proc's simple lowercase mapping, and U+0130 -> "i\u0307"
 * (the one unconditional multi-character lowercase mapping). */
static void py_lower(const char *s, size_t n, struct vr_buf *out)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = vr_py_utf8_next(s, n, &i);
        if (c == 0x130) {
            vr_buf_puts(out, "i\xcc\x87");
            continue;
        }
        utf8proc_uint8_t u[4];
        utf8proc_ssize_t k = utf8proc_encode_char(utf8proc_tolower((utf8proc_int32_t)c), u);
        vr_buf_put(out, u, (size_t)k);
    }
}

struct ngrams {
    const struct span *w;
    int size;
};

static int ngram_cmp(const void *a, const void *b, void *ctx)
{
    const struct ngrams *g = ctx;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    for (int k = 0; k < g->size; k++) {
        int c = span_cmp(&g->w[i + (size_t)k], &g->w[j + (size_t)k]);
        if (c) return c;
    }
    return 0;
}

double vr_reward_repetition(const char *t, size_t n)
{
    if (n == 0) return 0.0;
    /* the JSON candidate: ```json(.*?)```, else ```(.*?)```, else the bare list */
    size_t a = 0, b = 0;
    int have = 0;
    const char *f = find(t, n, 0, "```json"), *g;
    if (f && (g = find(t, n, (size_t)(f - t) + 7, "```"))) {
        a = (size_t)(f - t) + 7, b = (size_t)(g - t);
        py_strip(t, &a, &b);
        have = 1;
    } else {
        if ((f = find(t, n, 0, "```")) && (g = find(t, n, (size_t)(f - t) + 3, "```"))) {
            a = (size_t)(f - t) + 3, b = (size_t)(g - t);
            py_strip(t, &a, &b);
            have = 1;
        }
        if (!have || a == b) {
            /* \[\s*{.*?"bbox_2d".*?"label".*?}\s*\]: from the first "[{", the
             * earliest of each piece (the lazy match); if that fails from
             * the first "[{" it fails from every later one */
            size_t ov[2], s0;
            have = 0;
            if (rx_find(RX_LIST_OPEN, t, n, 0, ov, 0)) {
                s0 = ov[0];
                const char *p = find(t, n, ov[1], "\"bbox_2d\"");
                if (p) p = find(t, n, (size_t)(p - t) + 9, "\"label\"");
                if (p && rx_find(RX_LIST_CLOSE, t, n, (size_t)(p - t) + 7, ov, 0)) {
                    a = s0, b = ov[1];
                    have = 1;
                }
            }
        }
    }
    if (have && a < b) {
        json_t *data = json_loadb(t + a, b - a, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        double r;
        int done = data && repetition_items(data, &r);
        json_decref(data);
        if (done) return r;
    }
    /* plain text: 6-grams of content.lower().split() */
    const int size = 6;
    struct vr_buf low = {0};
    py_lower(t, n, &low);
    struct span *w = NULL;
    size_t nw = 0, cap = 0, i = 0;
    while (i < low.len) {
        size_t j = i;
        if (vr_py_is_space(vr_py_utf8_next(low.p, low.len, &j))) {
            i = j;
            continue;
        }
        size_t start = i;
        for (;;) {
            i = j;
            if (i >= low.len || vr_py_is_space(vr_py_utf8_next(low.p, low.len, &j))) break;
        }
        if (nw == cap) w = vr_xrealloc(w, (cap = cap ? 2 * cap : 64) * sizeof *w);
        w[nw].p = low.p + start;
        w[nw].n = i - start;
        nw++;
    }
    double r = 0.0;
    if (nw >= (size_t)size) {
        size_t total = nw - (size_t)size + 1, unique = 0;
        size_t *idx = vr_xmalloc(total * sizeof *idx);
        for (size_t k = 0; k < total; k++) idx[k] = k;
        struct ngrams ctx = {w, size};
        qsort_r(idx, total, sizeof *idx, ngram_cmp, &ctx);
        for (size_t k = 0; k < total; k++)
            if (k == 0 || ngram_cmp(&idx[k - 1], &idx[k], &ctx) != 0) unique++;
        r = penalty(unique, total);
        free(idx);
    }
    free(w);
    vr_buf_release(&low);
    return r;
}

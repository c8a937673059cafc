/* reward.c: VLM-R1's text rewards (format, format-strict, IoU, length,
 * repetition), the reference for vr-reward; tests/golden/reward_golden.py is
 * their Python twin and its corpus the test (reward.h has the contracts).
 *
 * Regular expressions go through PCRE2 in UTF mode, written in Python's syntax
 * and translated (vr_reward_pyregex) so that \d and \s mean what they mean in
 * Python's str patterns: Unicode decimal digits (category Nd) and the 29
 * characters of str.isspace (which includes U+001C..U+001F and not U+180E,
 * unlike PCRE2's own \s). The tables are Python 3.11's (Unicode 14), printed by
 * `reward_golden.py --tables`; VLM-R1's Python 3.10 (Unicode 13) lacks only
 * the Tangsa digits U+16AC0..U+16AC9.
 *
 * VLM-R1's format regex, searched whole, backtracks polynomially (a degenerate
 * completion repeating "{[1,2,3,4]}" without "</answer>" costs PCRE2 or Python
 * billions of steps). It is a chain of pieces joined by .* (DOTALL), so it
 * matches exactly when each piece can be found after the previous one, taking
 * each at its earliest end; every piece here has its earliest end at its
 * leftmost start, so leftmost searches decide it in linear time. The unit test
 * compares this with the whole regex on the golden corpus and random texts. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "reward.h"

#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* IoU and the length reward repeat Python's operations one by one; a fused
 * multiply-add would round differently. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* Python's \d: runs of Nd code points, each a whole number of 0..9 sequences
 * (Unicode guarantees decimal digits come in contiguous runs from 0 to 9). */
static const uint32_t py_decimal[][2] = {
    {0x30, 0x39}, {0x660, 0x669}, {0x6f0, 0x6f9}, {0x7c0, 0x7c9}, {0x966, 0x96f},
    {0x9e6, 0x9ef}, {0xa66, 0xa6f}, {0xae6, 0xaef}, {0xb66, 0xb6f}, {0xbe6, 0xbef},
    {0xc66, 0xc6f}, {0xce6, 0xcef}, {0xd66, 0xd6f}, {0xde6, 0xdef}, {0xe50, 0xe59},
    {0xed0, 0xed9}, {0xf20, 0xf29}, {0x1040, 0x1049}, {0x1090, 0x1099}, {0x17e0, 0x17e9},
    {0x1810, 0x1819}, {0x1946, 0x194f}, {0x19d0, 0x19d9}, {0x1a80, 0x1a89}, {0x1a90, 0x1a99},
    {0x1b50, 0x1b59}, {0x1bb0, 0x1bb9}, {0x1c40, 0x1c49}, {0x1c50, 0x1c59}, {0xa620, 0xa629},
    {0xa8d0, 0xa8d9}, {0xa900, 0xa909}, {0xa9d0, 0xa9d9}, {0xa9f0, 0xa9f9}, {0xaa50, 0xaa59},
    {0xabf0, 0xabf9}, {0xff10, 0xff19}, {0x104a0, 0x104a9}, {0x10d30, 0x10d39},
    {0x11066, 0x1106f}, {0x110f0, 0x110f9}, {0x11136, 0x1113f}, {0x111d0, 0x111d9},
    {0x112f0, 0x112f9}, {0x11450, 0x11459}, {0x114d0, 0x114d9}, {0x11650, 0x11659},
    {0x116c0, 0x116c9}, {0x11730, 0x11739}, {0x118e0, 0x118e9}, {0x11950, 0x11959},
    {0x11c50, 0x11c59}, {0x11d50, 0x11d59}, {0x11da0, 0x11da9}, {0x16a60, 0x16a69},
    {0x16ac0, 0x16ac9}, {0x16b50, 0x16b59}, {0x1d7ce, 0x1d7ff}, {0x1e140, 0x1e149},
    {0x1e2f0, 0x1e2f9}, {0x1e950, 0x1e959}, {0x1fbf0, 0x1fbf9},
};
#define N_DECIMAL (sizeof py_decimal / sizeof py_decimal[0])

/* Python's \s and str.isspace / str.split / str.strip. */
static const uint32_t py_space[] = {
    0x9,    0xa,    0xb,    0xc,    0xd,    0x1c,   0x1d,   0x1e,   0x1f,   0x20,
    0x85,   0xa0,   0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
    0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
};
#define N_SPACE (sizeof py_space / sizeof py_space[0])

static int is_py_space(uint32_t c)
{
    if (c <= 0x20) return (c >= 0x9 && c <= 0xd) || c >= 0x1c;
    for (size_t i = 10; i < N_SPACE; i++)
        if (py_space[i] == c) return 1;
    return 0;
}

/* The digit value of c, or -1 when c is not in Python's \d. */
static int py_digit(uint32_t c)
{
    size_t lo = 0, hi = N_DECIMAL;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < py_decimal[mid][0]) hi = mid;
        else if (c > py_decimal[mid][1]) lo = mid + 1;
        else return (int)((c - py_decimal[mid][0]) % 10);
    }
    return -1;
}

/* Decode the code point at s[*i] (valid UTF-8 assumed) and advance *i. */
static uint32_t utf8_next(const char *s, size_t n, size_t *i)
{
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + *i, (utf8proc_ssize_t)(n - *i), &c);
    if (k <= 0) { /* not UTF-8: one byte, never a digit or a space */
        (*i)++;
        return 0xFFFD;
    }
    *i += (size_t)k;
    return (uint32_t)c;
}

char *vr_reward_pyregex(const char *py)
{
    struct vr_buf b = {0};
    for (const char *p = py; *p; p++) {
        if (p[0] == '\\' && p[1] == 'd') {
            vr_buf_putc(&b, '[');
            for (size_t i = 0; i < N_DECIMAL; i++)
                vr_buf_printf(&b, "\\x{%x}-\\x{%x}", py_decimal[i][0], py_decimal[i][1]);
            vr_buf_putc(&b, ']');
            p++;
        } else if (p[0] == '\\' && p[1] == 's') {
            vr_buf_putc(&b, '[');
            for (size_t i = 0; i < N_SPACE; i++) vr_buf_printf(&b, "\\x{%x}", py_space[i]);
            vr_buf_putc(&b, ']');
            p++;
        } else if (p[0] == '\\' && p[1]) {
            vr_buf_put(&b, p, 2);
            p++;
        } else {
            vr_buf_putc(&b, *p);
        }
    }
    if (!b.p) vr_buf_puts(&b, "");
    return b.p;
}

/* The pieces of VLM-R1's patterns (Python syntax). */
enum { RX_THINK_ANSWER, RX_BBOX, RX_LIST_OPEN, RX_LIST_CLOSE, RX_N };
static const char *const rx_src[RX_N] = {
    [RX_THINK_ANSWER] = "</think>\\s*<answer>",
    [RX_BBOX] = "\\[(\\d+),\\s*(\\d+),\\s*(\\d+),\\s*(\\d+)]",
    [RX_LIST_OPEN] = "\\[\\s*\\{",
    [RX_LIST_CLOSE] = "\\}\\s*\\]",
};
static pcre2_code *rx[RX_N];
static pthread_once_t rx_once = PTHREAD_ONCE_INIT;

static void rx_init(void)
{
    for (int k = 0; k < RX_N; k++) {
        char *pat = vr_reward_pyregex(rx_src[k]);
        int ec;
        PCRE2_SIZE eoff;
        rx[k] = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_DOTALL, &ec,
                              &eoff, NULL);
        VR_ASSERT(rx[k] != NULL); /* constant patterns */
        (void)pcre2_jit_compile(rx[k], PCRE2_JIT_COMPLETE); /* the interpreter if JIT is absent */
        free(pat);
    }
}

/* Leftmost match of piece k in s[0..len) starting at or after off: 1 with
 * ov[0..2*(ngroups+1)) set (byte offsets), 0 for none (also for text that is
 * not UTF-8, which JSON strings never are). */
static int rx_find(int k, const char *s, size_t len, size_t off, size_t *ov, int ngroups)
{
    pthread_once(&rx_once, rx_init);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(rx[k], NULL);
    VR_ASSERT(md != NULL);
    int rc = pcre2_match(rx[k], (PCRE2_SPTR)s, len, off, 0, md, NULL);
    if (rc > 0) {
        PCRE2_SIZE *v = pcre2_get_ovector_pointer(md);
        for (int i = 0; i < 2 * (ngroups + 1); i++) ov[i] = v[i];
    }
    pcre2_match_data_free(md);
    VR_DASSERT(rc > 0 || rc == PCRE2_ERROR_NOMATCH);
    return rc > 0;
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

/* Python's int() limit (sys.get_int_max_str_digits(), CPython >= 3.10.7):
 * more digits raise ValueError. */
#define PY_INT_MAX_DIGITS 4300

/* The \d+ run s[0..n) as ASCII digits into b. -1 where Python's int() raises. */
static int ascii_digits(const char *s, size_t n, struct vr_buf *b)
{
    size_t i = 0, count = 0;
    vr_buf_reset(b);
    while (i < n) {
        int d = py_digit(utf8_next(s, n, &i));
        VR_DASSERT(d >= 0);
        if (++count > PY_INT_MAX_DIGITS) return -1;
        vr_buf_putc(b, (char)('0' + (d < 0 ? 0 : d)));
    }
    return 0;
}

/* Python's int / int for a non-negative integer (ASCII digits) and 0 < w <
 * 2^31: the correctly rounded quotient. -1 where Python raises OverflowError.
 * Below 10^15 both are exact doubles and one division rounds correctly.
 * Beyond, the quotient is written out: integer part, 40 decimals and a sticky
 * 1 for a non-zero rest, which strtod (correctly rounded) reads. 40 decimals
 * are enough: such a quotient is >= 2^53 / 2^31, so a halfway point between
 * two doubles near it is a multiple of 2^-31 (at most 31 decimals; the sticky
 * digit cannot cross it) and a quotient that is not exactly halfway is
 * farther than 2^-31 / w > 10^-40 from it. */
static int py_int_div(const char *d, int64_t w, double *out)
{
    while (d[0] == '0' && d[1]) d++;
    size_t nd = strlen(d);
    if (nd <= 15) {
        *out = (double)strtoull(d, NULL, 10) / (double)w;
        return 0;
    }
    struct vr_buf q = {0};
    uint64_t rem = 0, uw = (uint64_t)w;
    for (size_t i = 0; i < nd; i++) {
        uint64_t cur = rem * 10 + (uint64_t)(d[i] - '0');
        if (q.len || cur / uw) vr_buf_putc(&q, (char)('0' + cur / uw));
        rem = cur % uw;
    }
    if (!q.len) vr_buf_putc(&q, '0');
    vr_buf_putc(&q, '.');
    for (int i = 0; i < 40; i++) {
        uint64_t cur = rem * 10;
        vr_buf_putc(&q, (char)('0' + cur / uw));
        rem = cur % uw;
    }
    if (rem) vr_buf_putc(&q, '1');
    *out = strtod(q.p, NULL);
    vr_buf_free(&q);
    return isinf(*out) ? -1 : 0;
}

int vr_reward_py_int_ratio(const char *s, size_t n, int64_t w, double *out)
{
    struct vr_buf d = {0};
    int rc = ascii_digits(s, n, &d) ? -1 : py_int_div(d.p, w, out);
    vr_buf_free(&d);
    return rc;
}

int vr_reward_py_int_float(const char *s, size_t n, double *out)
{
    struct vr_buf d = {0};
    int rc = ascii_digits(s, n, &d);
    if (!rc) {
        *out = strtod(d.p, NULL); /* float(int): correctly rounded */
        if (isinf(*out)) rc = -1;  /* OverflowError */
    }
    vr_buf_free(&d);
    return rc;
}

int vr_reward_py_float(const char *s, size_t n, double *out)
{
    /* float() strips whitespace and reads any Unicode decimal digit as its
     * ASCII twin; what is left is -?\d*\.?\d+ here. Its strip is not \s:
     * U+001C..U+001F match \s but float() refuses them (ValueError). */
    struct vr_buf b = {0};
    size_t i = 0;
    int rc = 0;
    while (i < n) {
        uint32_t c = utf8_next(s, n, &i);
        int d = py_digit(c);
        if (d >= 0) vr_buf_putc(&b, (char)('0' + d));
        else if (c == '-' || c == '.') vr_buf_putc(&b, (char)c);
        else if (c >= 0x1c && c <= 0x1f) rc = -1;
        else VR_DASSERT(is_py_space(c));
    }
    if (!b.p) vr_buf_puts(&b, "");
    *out = strtod(b.p, NULL); /* correctly rounded; overflow gives inf, as Python */
    vr_buf_free(&b);
    return rc;
}

enum vr_answer_box vr_reward_answer_box(const char *t, size_t n, const struct vr_reward_geom *g,
                                        double box[4])
{
    /* re.search(r'<answer>(.*?)</answer>', content, re.DOTALL): the first
     * <answer>, up to the first </answer> after it; .strip() cannot change
     * where the box pattern matches */
    const char *a = find(t, n, 0, "<answer>");
    if (!a) return VR_BOX_NO_ANSWER;
    size_t s = (size_t)(a - t) + 8;
    const char *e = find(t, n, s, "</answer>");
    if (!e) return VR_BOX_NO_ANSWER;
    size_t ov[10];
    if (!rx_find(RX_BBOX, t, (size_t)(e - t), s, ov, 4)) return VR_BOX_NO_BOX;
    struct vr_buf dig[4] = {{0}};
    enum vr_answer_box rc = VR_BOX_OK;
    for (int i = 0; i < 4 && rc == VR_BOX_OK; i++)
        if (ascii_digits(t + ov[2 * i + 2], ov[2 * i + 3] - ov[2 * i + 2], &dig[i]))
            rc = VR_BOX_RAISES; /* int(): too many digits */
    for (int i = 0; i < 4 && rc == VR_BOX_OK; i++) {
        double v;
        if (g && g->rescale) {
            /* resize_bbox: bbox[i] / input_size * image_size */
            if (py_int_div(dig[i].p, i % 2 ? g->in_h : g->in_w, &v)) rc = VR_BOX_RAISES;
            else v = v * (double)(i % 2 ? g->img_h : g->img_w);
        } else {
            v = strtod(dig[i].p, NULL); /* float(int), correctly rounded */
            if (isinf(v)) rc = VR_BOX_RAISES;
        }
        box[i] = v;
    }
    for (int i = 0; i < 4; i++) vr_buf_free(&dig[i]);
    return rc;
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
        if (!is_py_space(utf8_next(s, *b, &i))) break;
        *a = i;
    }
    while (*b > *a) {
        size_t j = *b - 1;
        while (j > *a && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
        size_t i = j;
        if (!is_py_space(utf8_next(s, *b, &i))) break;
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
    for (size_t i = 0; i < n; i++) vr_buf_free(&keys[i]);
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
        uint32_t c = utf8_next(s, n, &i);
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
        if (is_py_space(utf8_next(low.p, low.len, &j))) {
            i = j;
            continue;
        }
        size_t start = i;
        for (;;) {
            i = j;
            if (i >= low.len || is_py_space(utf8_next(low.p, low.len, &j))) break;
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
    vr_buf_free(&low);
    return r;
}

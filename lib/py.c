/* py.c: Python's \d, \s, regexes and number reading (py.h). The tables are
 * Python 3.11's (Unicode 14), printed by `reward_golden.py --tables`;
 * VLM-R1's Python 3.10 (Unicode 13) lacks only the Tangsa digits
 * U+16AC0..U+16AC9. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "py.h"

#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "buf.h"
#include "err.h"

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

int vr_py_is_space(uint32_t c)
{
    if (c <= 0x20) return (c >= 0x9 && c <= 0xd) || c >= 0x1c;
    for (size_t i = 10; i < N_SPACE; i++)
        if (py_space[i] == c) return 1;
    return 0;
}

/* The value of c as a decimal digit (Python's \d, category Nd), or -1. */
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

uint32_t vr_py_utf8_next(const char *s, size_t n, size_t *i)
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

char *vr_py_regex(const char *py)
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

/* Python's int() limit (sys.get_int_max_str_digits(), CPython >= 3.10.7):
 * more digits raise ValueError. */
#define PY_INT_MAX_DIGITS 4300

/* The \d+ run s[0..n) as ASCII digits into b. -1 where Python's int() raises. */
static int ascii_digits(const char *s, size_t n, struct vr_buf *b)
{
    size_t i = 0, count = 0;
    vr_buf_reset(b);
    while (i < n) {
        int d = py_digit(vr_py_utf8_next(s, n, &i));
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
    vr_buf_release(&q);
    return isinf(*out) ? -1 : 0;
}

int vr_py_int_ratio(const char *s, size_t n, int64_t w, double *out)
{
    struct vr_buf d = {0};
    int rc = ascii_digits(s, n, &d) ? -1 : py_int_div(d.p, w, out);
    vr_buf_release(&d);
    return rc;
}

int vr_py_int_float(const char *s, size_t n, double *out)
{
    struct vr_buf d = {0};
    int rc = ascii_digits(s, n, &d);
    if (!rc) {
        *out = strtod(d.p, NULL); /* float(int): correctly rounded */
        if (isinf(*out)) rc = -1;  /* OverflowError */
    }
    vr_buf_release(&d);
    return rc;
}

int vr_py_float(const char *s, size_t n, double *out)
{
    /* float() strips whitespace and reads any Unicode decimal digit as its
     * ASCII twin; what is left is -?\d*\.?\d+ here. Its strip is not \s:
     * U+001C..U+001F match \s but float() refuses them (ValueError). */
    struct vr_buf b = {0};
    size_t i = 0;
    int rc = 0;
    while (i < n) {
        uint32_t c = vr_py_utf8_next(s, n, &i);
        int d = py_digit(c);
        if (d >= 0) vr_buf_putc(&b, (char)('0' + d));
        else if (c == '-' || c == '.') vr_buf_putc(&b, (char)c);
        else if (c >= 0x1c && c <= 0x1f) rc = -1;
        else VR_DASSERT(vr_py_is_space(c));
    }
    if (!b.p) vr_buf_puts(&b, "");
    *out = strtod(b.p, NULL); /* correctly rounded; overflow gives inf, as Python */
    vr_buf_release(&b);
    return rc;
}

struct vr_py_re {
    pcre2_code *code;
};

struct vr_py_re *vr_py_re_compile(const char *py, int dotall)
{
    char *pat = vr_py_regex(py);
    int ec;
    PCRE2_SIZE eoff;
    struct vr_py_re *re = vr_xcalloc(1, sizeof *re);
    re->code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | (dotall ? PCRE2_DOTALL : 0),
                             &ec, &eoff, NULL);
    VR_ASSERT(re->code != NULL); /* constant patterns */
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* the interpreter if JIT is absent */
    free(pat);
    return re;
}

int vr_py_re_match(const struct vr_py_re *re, const char *s, size_t len, size_t off, int anchored,
                   size_t *ov, int ngroups)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, NULL);
    VR_ASSERT(md != NULL);
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, off, anchored ? PCRE2_ANCHORED : 0, md, NULL);
    if (rc > 0) {
        PCRE2_SIZE *v = pcre2_get_ovector_pointer(md);
        for (int i = 0; i < 2 * (ngroups + 1); i++) ov[i] = v[i];
    }
    pcre2_match_data_free(md);
    VR_DASSERT(rc > 0 || rc == PCRE2_ERROR_NOMATCH);
    return rc > 0;
}

/* py.h: Python's semantics where vr must reproduce Python code to the bit
 * (VLM-R1's rewards and evaluation scripts): the \d and \s of str patterns,
 * regular expressions written in Python's syntax (through PCRE2), and how
 * int(), float() and int / int read and divide numbers. Used by reward.c and
 * eval.c; tests/golden/reward_golden.py --tables prints the tables. */
#ifndef VR_PY_H
#define VR_PY_H

#include <stddef.h>
#include <stdint.h>

/* Python's str.isspace (\s): 29 code points, U+001C..U+001F included. */
int vr_py_is_space(uint32_t c);
/* Decode the code point at s[*i] (s[0..n)) and advance *i; a byte that is not
 * UTF-8 is U+FFFD, one byte long. */
uint32_t vr_py_utf8_next(const char *s, size_t n, size_t *i);

/* Translate a Python regex (str pattern) into PCRE2 syntax with Python's
 * Unicode \d and \s classes (outside [...] sets only; our patterns have none
 * inside). Caller frees. */
char *vr_py_regex(const char *python_pattern);

/* A compiled Python pattern (UTF mode; DOTALL when asked), JIT-compiled where
 * PCRE2 can. Patterns are constants of the program: a pattern that does not
 * compile is a bug (VR_ASSERT). Never freed: compile each once. */
struct vr_py_re;
struct vr_py_re *vr_py_re_compile(const char *python_pattern, int dotall);
/* Match re in s[0..len) from off, anchored there or at the leftmost place
 * after it: 1 with ov[0..2*(ngroups+1)) set (byte offsets of the match and
 * its groups), 0 for none. Thread-safe. */
int vr_py_re_match(const struct vr_py_re *re, const char *s, size_t len, size_t off, int anchored,
                   size_t *ov, int ngroups);

/* Numbers. s[0..n) is a run of \d (valid UTF-8):
 * int(s) / w, correctly rounded as Python's int / int (0 < w < 2^31), and
 * float(int(s)); each -1 where Python raises (more than 4300 digits, leading
 * zeros counted, or a quotient too large for a double). */
int vr_py_int_ratio(const char *s, size_t n, int64_t w, double *out);
int vr_py_int_float(const char *s, size_t n, double *out);
/* float(s) for s matching \s*-?\d*\.?\d+\s*: correctly rounded, inf beyond
 * the doubles, as Python. -1 where float() raises: U+001C..U+001F, which \s
 * matches but float()'s strip keeps. */
int vr_py_float(const char *s, size_t n, double *out);

#endif

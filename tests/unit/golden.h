/* golden.h: what unit tests share to read the committed fixtures in
 * tests/golden/ (made by the Python kept beside them; CI never runs it).
 * Fixtures are found relative to the repository root, which is the current
 * directory under `make test` (prove runs there); $VR_SRC overrides it. */
#ifndef VR_TEST_GOLDEN_H
#define VR_TEST_GOLDEN_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* tests/golden/<rel> under the source tree, in a static buffer. */
__attribute__((unused)) static const char *golden_path(const char *rel)
{
    static char buf[4096];
    const char *src = getenv("VR_SRC");
    snprintf(buf, sizeof buf, "%s/tests/golden/%s", src && *src ? src : ".", rel);
    return buf;
}

/* The fixture's JSON, or a TAP bail-out naming what is missing. */
__attribute__((unused)) static json_t *golden_json(const char *rel)
{
    json_error_t je;
    json_t *j = json_load_file(golden_path(rel), 0, &je);
    if (!j) {
        printf("Bail out! %s: %s (run from the repository root or set VR_SRC)\n", golden_path(rel),
               je.text);
        exit(1);
    }
    return j;
}

/* make_safetensors.py's checksum: sum of (b[i]+1) * (((i+1)*K) | 1) mod 2^64,
 * as 16 hex digits. One changed byte always changes it (odd weights). */
__attribute__((unused)) static void golden_wsum(const void *p, size_t n, char out[17])
{
    const uint8_t *b = p;
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++)
        h += (uint64_t)(b[i] + 1u) * (((uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull) | 1u);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* Lowercase hex of n bytes into a malloc'ed string. */
__attribute__((unused)) static char *golden_hex(const void *p, size_t n)
{
    static const char d[] = "0123456789abcdef";
    const uint8_t *b = p;
    char *s = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = d[b[i] >> 4];
        s[2 * i + 1] = d[b[i] & 15];
    }
    s[2 * n] = 0;
    return s;
}

#endif

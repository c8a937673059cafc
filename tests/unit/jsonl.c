/* jsonl.c: the JSON Lines reader (errors with file:line, unknown fields kept)
 * and writer (compact, order kept, float32 round trip). */
#include <fcntl.h>
#include <unistd.h>

#include "jsonl.h"

#include "../tap.h"

static char *dump(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    struct vr_buf b = {0};
    vr_json_dump(&b, v);
    json_decref(v);
    return b.p;
}

static void real_is(double x, const char *want)
{
    char buf[40];
    vr_json_fmt_real(buf, x);
    is_str(buf, want, "real %.17g prints as expected", x);
}

int main(void)
{
    char *s = dump("{\"b\":1,\"a\":[true,false,null,\"x\\ny\\u0001\\\"\"],\"c\":{\"z\":\"é\"}}");
    is_str(s, "{\"b\":1,\"a\":[true,false,null,\"x\\ny\\u0001\\\"\"],\"c\":{\"z\":\"é\"}}",
           "compact dump keeps key order, escapes controls, keeps UTF-8");
    free(s);

    real_is(0.1, "0.1");
    real_is((double)0.1f, "0.1");
    real_is(103.93, "103.93");
    real_is(1.0, "1.0");
    real_is(-0.0, "-0.0");
    real_is(1e-30, "1e-30");
    real_is((double)-1.2345678f, "-1.2345678");
    real_is(0.30000000000000004, "0.30000000000000004");
    real_is(16777217.0, "16777217.0");
    /* every float32 printed reads back as the same float32 */
    uint32_t bad = 0, u = 0x12345678;
    for (int i = 0; i < 200000; i++) {
        u = u * 1664525u + 1013904223u;
        float f;
        memcpy(&f, &u, 4);
        if (!isfinite(f)) continue;
        char buf[40];
        vr_json_fmt_real(buf, f);
        if (strtof(buf, NULL) != f || strlen(buf) > 16) bad++;
    }
    ok(bad == 0, "200k random float32 round-trip through the writer (%u bad)", bad);
    real_is(NAN, "null");
    /* the two-decimal fast path prints what the general path would */
    real_is(-0.5, "-0.5");
    real_is(12.3, "12.3");
    real_is(999999.99, "999999.99");
    real_is(0.01, "0.01");
    real_is(1e-5, "1e-05");
    real_is(1e6, "1e+06");
    real_is(1e10, "1e+10");
    int same = 1;
    for (int i = -200000; i <= 200000 && same; i += 7) {
        double x = i / 100.0;
        char a[40], b[40];
        vr_json_fmt_real(a, x);
        /* the general rule, spelled out */
        float f = (float)x;
        if ((double)f == x) {
            for (int p = 6; p <= 9; p++) { snprintf(b, 32, "%.*g", p, x); if (strtof(b, NULL) == f) break; }
        } else {
            for (int p = 15; p <= 17; p++) { snprintf(b, 32, "%.*g", p, x); if (strtod(b, NULL) == x) break; }
        }
        if (!strpbrk(b, ".eEn")) strcat(b, ".0");
        if (strcmp(a, b)) { same = 0; diag("%.17g: %s vs %s", x, a, b); }
    }
    ok(same, "two-decimal reals print exactly as the general rule says");

    /* reader */
    char path[] = "/tmp/vr-jsonl-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "{\"a\":1,\"zz\":{\"keep\":[1,2]}}\n\n  \n{\"b\":2}\r\n[1]\n{\"c\":\n{\"d\":1,\"d\":2}\n{\"e\":3}";
    ok(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "wrote the sample");
    close(fd);
    struct vr_jsonl r;
    struct vr_err err;
    json_t *v;
    ok(vr_jsonl_open(&r, path, &err) == 0, "open");
    ok(vr_jsonl_next(&r, &v, &err) == 1 && r.line == 1, "line 1 read");
    s = NULL;
    struct vr_buf b = {0};
    vr_json_dump(&b, v);
    is_str(b.p, "{\"a\":1,\"zz\":{\"keep\":[1,2]}}", "unknown fields are kept");
    vr_buf_release(&b);
    json_decref(v);
    ok(vr_jsonl_next(&r, &v, &err) == 1 && r.line == 4, "blank lines skipped, CRLF accepted");
    json_decref(v);
    ok(vr_jsonl_next(&r, &v, &err) == -1 && strstr(err.msg, ":5: expected a JSON object"),
       "a list is refused with file:line (%s)", err.msg);
    ok(strncmp(err.msg, path, strlen(path)) == 0, "the message starts with the file name");
    ok(vr_jsonl_next(&r, &v, &err) == -1 && strstr(err.msg, ":6: invalid JSON"),
       "truncated object: file:6 (%s)", err.msg);
    ok(vr_jsonl_next(&r, &v, &err) == -1 && strstr(err.msg, ":7: invalid JSON") &&
           strstr(err.msg, "duplicate"),
       "duplicate keys refused (%s)", err.msg);
    ok(vr_jsonl_next(&r, &v, &err) == 1 && r.line == 8, "reading goes on after a bad line; last line without newline");
    json_decref(v);
    ok(vr_jsonl_next(&r, &v, &err) == 0, "end of input");
    vr_jsonl_close(&r);
    fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0600);
    const char *nul = "{\"text\":\"a\\u0000b\"}\n";
    ok(write(fd, nul, strlen(nul)) == (ssize_t)strlen(nul), "wrote a line with \\u0000");
    close(fd);
    vr_jsonl_open(&r, path, &err);
    ok(vr_jsonl_next(&r, &v, &err) == 1 && json_string_length(json_object_get(v, "text")) == 3,
       "an escaped NUL inside a string is read (a completion may decode to one)");
    b = (struct vr_buf){0};
    vr_json_dump(&b, v);
    is_str(b.p, "{\"text\":\"a\\u0000b\"}", "and written back escaped");
    vr_buf_release(&b);
    json_decref(v);
    vr_jsonl_close(&r);
    unlink(path);
    ok(vr_jsonl_open(&r, "/nonexistent/x.jsonl", &err) == -1 &&
           strstr(err.msg, "/nonexistent/x.jsonl: cannot open"),
       "missing file named (%s)", err.msg);
    return done_testing();
}

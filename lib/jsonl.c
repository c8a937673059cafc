/* jsonl.c: JSON Lines reader and compact writer (see jsonl.h). Every stage
 * reads and writes its stream through here. */
#include "jsonl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

int vr_jsonl_open(struct vr_jsonl *r, const char *path, struct vr_err *err)
{
    memset(r, 0, sizeof *r);
    if (!path || strcmp(path, "-") == 0) {
        r->fp = stdin;
        r->path = vr_xstrdup("<stdin>");
        return 0;
    }
    r->fp = fopen(path, "re"); /* close-on-exec: exec: reward commands do not inherit it */
    if (!r->fp) return vr_err_sys(err, path, "cannot open");
    r->own = 1;
    r->path = vr_xstrdup(path);
    return 0;
}

void vr_jsonl_close(struct vr_jsonl *r)
{
    if (r->own && r->fp) fclose(r->fp);
    free(r->path);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

int vr_jsonl_next(struct vr_jsonl *r, json_t **out, struct vr_err *err)
{
    *out = NULL;
    for (;;) {
        ssize_t n = getline(&r->buf, &r->cap, r->fp);
        if (n < 0) {
            if (ferror(r->fp)) return vr_err_sys(err, r->path, "read failed");
            return 0;
        }
        r->line++;
        size_t len = (size_t)n;
        while (len && (r->buf[len - 1] == '\n' || r->buf[len - 1] == '\r')) len--;
        size_t i = 0;
        while (i < len && (r->buf[i] == ' ' || r->buf[i] == '\t')) i++;
        if (i == len) continue; /* blank line */
        if (memchr(r->buf, 0, len))
            return vr_err_set(err, VR_ERR_INPUT, r->path, r->line, "line holds a NUL byte");
        json_error_t je;
        /* \u0000 inside a string is valid JSON (a completion may decode to a NUL
         * byte); a raw NUL byte in the line is not, and is refused above */
        json_t *v = json_loadb(r->buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
        if (!v)
            return vr_err_set(err, VR_ERR_INPUT, r->path, r->line, "invalid JSON: %s (column %d)",
                              je.text, je.column);
        if (!json_is_object(v)) {
            json_decref(v);
            return vr_err_set(err, VR_ERR_INPUT, r->path, r->line, "expected a JSON object");
        }
        *out = v;
        return 1;
    }
}

/* Reals with at most two decimals below 1e6 (pixel boxes, most dataset
 * numbers) without snprintf + strtod: k/100 printed exactly is their
 * shortest round-trip form, the same text the general path finds. */
static int fmt_centi(char *buf, double x)
{
    if (!(fabs(x) < 1e6)) return 0;
    double k = nearbyint(x * 100.0);
    if (k / 100.0 != x) return 0;
    long long c = llabs((long long)k);
    char *p = buf;
    if (signbit(x)) *p++ = '-';
    p += sprintf(p, "%lld.", c / 100);
    int f = (int)(c % 100);
    if (f % 10 == 0) *p++ = (char)('0' + f / 10);
    else *p++ = (char)('0' + f / 10), *p++ = (char)('0' + f % 10);
    *p = 0;
    return 1;
}

static int doubles_only; /* vr_json_reals_exact */

void vr_json_reals_exact(int on) { doubles_only = on; }

void vr_json_fmt_real(char *buf, double x)
{
    if (!isfinite(x)) {
        strcpy(buf, "null");
        return;
    }
    if (fmt_centi(buf, x)) return;
    float f = (float)x;
    if ((double)f == x && !doubles_only) {
        /* a double that is also a float32 (369.140625): exact when 9 digits or
         * fewer can say so, else the float32 it is (a logp) */
        for (int p = 6; p <= 9; p++) {
            snprintf(buf, 32, "%.*g", p, x);
            if (strtod(buf, NULL) == x) goto done;
        }
        for (int p = 6; p <= 9; p++) {
            snprintf(buf, 32, "%.*g", p, x);
            if (strtof(buf, NULL) == f) break;
        }
    } else {
        for (int p = 15; p <= 17; p++) {
            snprintf(buf, 32, "%.*g", p, x);
            if (strtod(buf, NULL) == x) break;
        }
    }
done:
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0"); /* stays a real when read back */
}

void vr_json_dump_string(struct vr_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    vr_buf_putc(b, '"');
    size_t run = 0; /* start of the pending run of plain bytes */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        vr_buf_put(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': vr_buf_puts(b, "\\\""); break;
        case '\\': vr_buf_puts(b, "\\\\"); break;
        case '\n': vr_buf_puts(b, "\\n"); break;
        case '\r': vr_buf_puts(b, "\\r"); break;
        case '\t': vr_buf_puts(b, "\\t"); break;
        case '\b': vr_buf_puts(b, "\\b"); break;
        case '\f': vr_buf_puts(b, "\\f"); break;
        default: {
            char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
            vr_buf_puts(b, u);
        }
        }
    }
    vr_buf_put(b, s + run, n - run);
    vr_buf_putc(b, '"');
}

void vr_json_dump(struct vr_buf *b, const json_t *v)
{
    char tmp[40];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        int first = 1;
        vr_buf_putc(b, '{');
        json_object_foreach((json_t *)v, k, x) {
            if (!first) vr_buf_putc(b, ',');
            first = 0;
            vr_json_dump_string(b, k, strlen(k));
            vr_buf_putc(b, ':');
            vr_json_dump(b, x);
        }
        vr_buf_putc(b, '}');
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        vr_buf_putc(b, '[');
        json_array_foreach(v, i, x) {
            if (i) vr_buf_putc(b, ',');
            vr_json_dump(b, x);
        }
        vr_buf_putc(b, ']');
        break;
    }
    case JSON_STRING: vr_json_dump_string(b, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER:
        snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        vr_buf_puts(b, tmp);
        break;
    case JSON_REAL:
        vr_json_fmt_real(tmp, json_real_value(v));
        vr_buf_puts(b, tmp);
        break;
    case JSON_TRUE: vr_buf_puts(b, "true"); break;
    case JSON_FALSE: vr_buf_puts(b, "false"); break;
    case JSON_NULL: vr_buf_puts(b, "null"); break;
    }
}

int vr_jsonl_write(FILE *fp, const json_t *v, struct vr_err *err)
{
    static struct vr_buf b; /* reused: one writer per process */
    vr_buf_reset(&b);
    vr_json_dump(&b, v);
    vr_buf_putc(&b, '\n');
    if (fwrite(b.p, 1, b.len, fp) != b.len) return vr_err_sys(err, "<stdout>", "write failed");
    return 0;
}

void vr_jsonl_files_init(struct vr_jsonl_files *f, char *const *paths, int n)
{
    memset(f, 0, sizeof *f);
    f->paths = paths;
    f->n = n;
}

int vr_jsonl_files_next(struct vr_jsonl_files *f, json_t **out, struct vr_err *err)
{
    for (;;) {
        if (!f->open) {
            if (f->at == (f->n > 0 ? f->n : 1)) return 0;
            if (vr_jsonl_open(&f->in, f->n > 0 ? f->paths[f->at] : "-", err)) return -1;
            f->open = 1;
            f->at++;
        }
        int rc = vr_jsonl_next(&f->in, out, err);
        if (rc != 0) return rc;
        vr_jsonl_close(&f->in);
        f->open = 0;
    }
}

void vr_jsonl_files_close(struct vr_jsonl_files *f)
{
    if (f->open) vr_jsonl_close(&f->in);
    f->open = 0;
}

int vr_json_write_file(const char *path, const json_t *j, size_t flags, struct vr_err *err)
{
    char *txt = j ? json_dumps(j, JSON_INDENT(2) | flags) : NULL;
    if (!txt) return vr_err_set(err, VR_ERR_USAGE, path, 0, "cannot serialise the JSON to write");
    size_t len = strlen(txt);
    txt = vr_xrealloc(txt, len + 2);
    txt[len] = '\n';
    int rc = vr_file_write_atomic(path, txt, len + 1, err);
    free(txt);
    return rc;
}

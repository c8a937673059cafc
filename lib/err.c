/* err.c: filling struct vr_err (see err.h). Used by every lib/ module. */
#include "err.h"

#include <sys/mman.h>

#include <errno.h>
#include <stdarg.h>
#include <string.h>

static void vset(struct vr_err *err, enum vr_errkind kind, const char *file, long line,
                 const char *fmt, va_list ap)
{
    size_t n = 0;
    err->kind = kind;
    err->hint[0] = 0;
    if (file && line > 0)
        n = (size_t)snprintf(err->msg, sizeof err->msg, "%s:%ld: ", file, line);
    else if (file)
        n = (size_t)snprintf(err->msg, sizeof err->msg, "%s: ", file);
    if (n >= sizeof err->msg) n = sizeof err->msg - 1;
    vsnprintf(err->msg + n, sizeof err->msg - n, fmt, ap);
    /* one line: a message never carries a newline from its input */
    for (char *p = err->msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

int vr_err_set(struct vr_err *err, enum vr_errkind kind, const char *file, long line,
               const char *fmt, ...)
{
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vset(err, kind, file, line, fmt, ap);
    va_end(ap);
    return -1;
}

int vr_err_sys(struct vr_err *err, const char *file, const char *fmt, ...)
{
    int e = errno;
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vset(err, VR_ERR_SYS, file, 0, fmt, ap);
    va_end(ap);
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(e));
    return -1;
}

int vr_err_hint(struct vr_err *err, const char *fmt, ...)
{
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->hint, sizeof err->hint, fmt, ap);
    va_end(ap);
    return -1;
}

int vr_err_locate(struct vr_err *err, const char *file, long line)
{
    if (!err || !file) return -1;
    char tmp[sizeof err->msg];
    memcpy(tmp, err->msg, sizeof tmp);
    if (line > 0)
        snprintf(err->msg, sizeof err->msg, "%s:%ld: %s", file, line, tmp);
    else
        snprintf(err->msg, sizeof err->msg, "%s: %s", file, tmp);
    return -1;
}

static void oom(size_t n)
{
    fprintf(stderr, "vr: out of memory allocating %zu bytes\n", n);
    abort();
}

void *vr_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *vr_malloc_big(size_t n, int zero)
{
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    if (n < 2 * huge) {
        p = malloc(n ? n : 1);
    } else if (posix_memalign(&p, huge, n) == 0) {
        (void)madvise(p, n & ~(huge - 1), MADV_HUGEPAGE); /* a hint: failure is harmless */
    } else {
        p = NULL;
    }
    if (p && zero) memset(p, 0, n);
    return p;
}

void *vr_xmalloc_big(size_t n, int zero)
{
    void *p = vr_malloc_big(n, zero);
    if (!p) oom(n);
    return p;
}

void *vr_xcalloc64(size_t n)
{
    n = (n + 63) & ~(size_t)63; /* aligned_alloc wants a multiple of the alignment */
    void *p = aligned_alloc(64, n ? n : 64);
    if (!p) oom(n);
    return memset(p, 0, n ? n : 64);
}

void *vr_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *vr_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) oom(n);
    return p;
}

char *vr_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = vr_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

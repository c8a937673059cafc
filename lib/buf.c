/* buf.c: growable text buffer (see buf.h). */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

static void grow(struct vr_buf *b, size_t need)
{
    if (b->len + need + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + need + 1) cap *= 2;
    b->p = vr_xrealloc(b->p, cap);
    b->cap = cap;
}

void vr_buf_put(struct vr_buf *b, const void *s, size_t n)
{
    grow(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void vr_buf_puts(struct vr_buf *b, const char *s) { vr_buf_put(b, s, strlen(s)); }

void vr_buf_putc(struct vr_buf *b, char c)
{
    grow(b, 1);
    b->p[b->len++] = c;
    b->p[b->len] = 0;
}

void vr_buf_printf(struct vr_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    VR_ASSERT(n >= 0);
    grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void vr_buf_release(struct vr_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

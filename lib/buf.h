/* buf.h: a growable byte buffer (always NUL-terminated) for building text. */
#ifndef VR_BUF_H
#define VR_BUF_H

#include <stddef.h>

struct vr_buf {
    char *p;
    size_t len, cap;
};

void vr_buf_put(struct vr_buf *b, const void *s, size_t n);
void vr_buf_puts(struct vr_buf *b, const char *s);
void vr_buf_putc(struct vr_buf *b, char c);
void vr_buf_printf(struct vr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void vr_buf_reset(struct vr_buf *b) { b->len = 0; if (b->p) b->p[0] = 0; }
/* Free b's bytes (not b); b is left empty and can be used again. */
void vr_buf_release(struct vr_buf *b);

#endif

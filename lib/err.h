/* err.h: how lib/ reports failure.
 *
 * lib/ never prints and never exits. A function that can fail returns an int
 * (0 on success, -1 on failure) and fills the caller's struct vr_err with one
 * line that names the input and, for text, its line:
 *     "data/rec.jsonl:42: 'solution' has 3 numbers, expected 4"
 * cmd/ prefixes the program name and decides the exit status. */
#ifndef VR_ERR_H
#define VR_ERR_H

#include <stdio.h>
#include <stdlib.h>

enum vr_errkind {
    VR_ERR_NONE = 0,
    VR_ERR_INPUT,   /* bad input: a file, a line, a field (exit 1) */
    VR_ERR_SYS,     /* the system failed us: I/O, memory (exit 1) */
    VR_ERR_USAGE,   /* the caller asked for something impossible (exit 2) */
};

struct vr_err {
    enum vr_errkind kind;
    char msg[1024];  /* the whole message, "file:line: what is wrong" */
    char hint[256];  /* optional second line ("hint: ..."), empty if none */
};

/* Fill err with "file:line: fmt..." (":line" left out when line <= 0, "file: "
 * left out when file is NULL). Returns -1 so callers can `return vr_err_set(...)`.
 * err may be NULL (the message is dropped). */
int vr_err_set(struct vr_err *err, enum vr_errkind kind, const char *file, long line,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Same, appending ": strerror(errno)". */
int vr_err_sys(struct vr_err *err, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Set the optional hint line of an error already filled. Returns -1. */
int vr_err_hint(struct vr_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the existing message with "file:line: " (for errors raised without a
 * location by a lower layer, e.g. a box check called by a parser). Returns -1. */
int vr_err_locate(struct vr_err *err, const char *file, long line);

/* Programming errors: always on, print the place and abort. Never on user input. */
#define VR_ASSERT(x)                                                            \
    do {                                                                        \
        if (!(x)) {                                                             \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #x); \
            abort();                                                            \
        }                                                                       \
    } while (0)
#ifdef VR_DEBUG_ASSERT
#define VR_DASSERT(x) VR_ASSERT(x)
#else
#define VR_DASSERT(x) ((void)0)
#endif

/* Allocation that cannot fail quietly: aborts with a message on OOM. Used for
 * small bookkeeping; big buffers use plain malloc and report VR_ERR_SYS. */
void *vr_xmalloc(size_t n);
void *vr_xcalloc(size_t n, size_t size);
/* n zeroed bytes starting on a 64-byte cache line; free() it */
void *vr_xcalloc64(size_t n);
/* n bytes for a large array that is written soon (weights, gradients,
 * optimizer moments, workspace): 2 MB aligned and marked for transparent
 * huge pages, so touching it costs a fault per 2 MB instead of per 4 KB.
 * zero: filled with zeros now (written, not lazily mapped: a lazily zeroed
 * page faults twice, on the first read and the first write). free() it. */
void *vr_xmalloc_big(size_t n, int zero);
/* The same, NULL when out of memory. */
void *vr_malloc_big(size_t n, int zero);
void *vr_xrealloc(void *p, size_t n);
char *vr_xstrdup(const char *s);

#endif

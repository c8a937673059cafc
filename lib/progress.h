/* progress.h: one self-overwriting status line on stderr, only when stderr is
 * a terminal (never in the data stream, never in logs). */
#ifndef VR_PROGRESS_H
#define VR_PROGRESS_H

#include <stdint.h>

struct vr_progress {
    const char *prog;  /* "vr-prep" */
    const char *unit;  /* "records" */
    int64_t total;     /* 0 if unknown */
    int64_t done;
    double t0, last;
    int tty;
};

/* Monotonic seconds. */
double vr_now(void);
void vr_progress_init(struct vr_progress *p, const char *prog, const char *unit, int64_t total);
/* Set the count; redraws at most every 0.1 s. */
void vr_progress_update(struct vr_progress *p, int64_t done);
/* Final line (and newline) when on a TTY. */
void vr_progress_end(struct vr_progress *p);

#endif

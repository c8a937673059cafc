/* progress.c: TTY-only progress line (see progress.h). */
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double vr_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void vr_progress_init(struct vr_progress *p, const char *prog, const char *unit, int64_t total)
{
    p->prog = prog;
    p->unit = unit;
    p->total = total;
    p->done = 0;
    p->t0 = p->last = vr_now();
    p->tty = isatty(2);
}

static void draw(struct vr_progress *p, double now)
{
    double dt = now - p->t0, rate = dt > 0 ? (double)p->done / dt : 0;
    if (p->total > 0)
        fprintf(stderr, "\r%s: %lld/%lld %s (%.0f%%), %.0f/s   ", p->prog, (long long)p->done,
                (long long)p->total, p->unit, 100.0 * (double)p->done / (double)p->total, rate);
    else
        fprintf(stderr, "\r%s: %lld %s, %.0f/s   ", p->prog, (long long)p->done, p->unit, rate);
}

void vr_progress_update(struct vr_progress *p, int64_t done)
{
    p->done = done;
    if (!p->tty) return;
    double now = vr_now();
    if (now - p->last < 0.1) return;
    p->last = now;
    draw(p, now);
}

void vr_progress_end(struct vr_progress *p)
{
    if (!p->tty) return;
    draw(p, vr_now());
    fputc('\n', stderr);
}

/* encode.h: task lines -> encoded lines (vr-encode, DESIGN.md §3.2). Each
 * line's images go to a pool of worker threads that find or make their pixel
 * cache entries (pixcache.h); lines are written in input order, each with
 * "pixels" (and, with a vision model, "vision": vcache.h, computed on the
 * calling thread as lines are written). The output does not depend on the
 * number of workers. */
#ifndef VR_ENCODE_H
#define VR_ENCODE_H

#include <stdio.h>

#include "err.h"
#include "preprocess.h"
#include "progress.h"

/* What a run tells its caller on the way; msg is the line's error (skipped)
 * or the rebuilt entry's reason (rebuilt). */
enum vr_encode_note {
    VR_ENCODE_SKIPPED,  /* a bad line left out (skip_bad) */
    VR_ENCODE_REBUILT,  /* a cache entry was invalid and was made anew */
};

struct vr_encode_opts {
    const char *cache_dir;
    struct vr_preproc pp;        /* checked (vr_preproc_check) by the caller */
    int64_t max_decode_pixels;   /* refuse larger images before decoding */
    const char *vision_model;    /* a checkpoint folder: also cache its vision tower's output; NULL: no */
    int jobs;                    /* worker threads, at least 1 */
    int skip_bad;                /* a bad line is noted and left out instead of failing the run */
    const char *confine;         /* read only images inside this folder; NULL: anywhere */
    FILE *out;                   /* where lines go, each flushed as it is written */
    const char *out_name;        /* its name in errors ("<stdout>") */
    struct vr_progress *progress;/* images written so far; NULL: none */
    void (*note)(void *ctx, enum vr_encode_note what, const char *msg); /* NULL: none */
    void *note_ctx;
};

struct vr_encode_stats {
    int64_t written, skipped, images;  /* lines written, lines skipped, images of written lines */
    int64_t hits, misses;              /* pixel cache */
    int64_t vision_hits, vision_misses;/* vision cache */
    char vision_model[17];             /* the vision weights' hash, 16 hex digits ("" without) */
    int broken_pipe;                   /* the last failure was a write to a reader that went away */
};

struct vr_encode;

/* Open the pixel cache (and, with vision_model, load that checkpoint, its
 * LoRA adapter folded in, and open its vision cache) and start o->jobs
 * workers. Fails with VR_ERR_USAGE when the preprocessing's patch geometry
 * is not the vision tower's, else as the loaders do. o is copied; its
 * strings must outlive *e. */
int vr_encode_open(struct vr_encode **e, const struct vr_encode_opts *o, struct vr_err *err);
/* Encode the lines of the files (no files: standard input; "-" too) into
 * o->out. A bad line fails the run naming file:line (or, with skip_bad, is
 * noted and counted); the lines before it are written. On return, failed or
 * not, the workers are stopped, having finished the images they held (no
 * cache entry is cut in half). Call once. */
int vr_encode_run(struct vr_encode *e, char *const *files, int nfiles, struct vr_err *err);
const struct vr_encode_stats *vr_encode_stats(struct vr_encode *e);
void vr_encode_free(struct vr_encode *e);

#endif

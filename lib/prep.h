/* prep.h: the stream of task lines vr-prep writes (DESIGN.md §3.1): each
 * input read by lib/dataset in turn, its images checked on request, a subset
 * taken, the whole repeated for epochs. Nothing here exits; warnings go
 * through the dataset options' warn callback. */
#ifndef VR_PREP_H
#define VR_PREP_H

#include <stdio.h>

#include "dataset.h"
#include "progress.h"

struct vr_prep_opts {
    struct vr_dataset_opts ds;  /* format, split, seed, skip_bad, allow_outside, warn;
                                   images_dir is set per input from dirs */
    struct vr_take take;        /* the subset of all inputs' tasks (default all) */
    int epochs;                 /* write the stream this many times, >= 1; random subsets are redrawn */
    int check_images;           /* probe every image, record image_sizes, check boxes */
    char *const *dirs;          /* image folders: none, one for every input, or one per input */
    int ndirs;
    struct vr_progress *progress; /* counts the inputs read; NULL for none */
};

/* Write the task lines of inputs[0..n) ("-" for standard input) to out, one
 * JSON line each; *written counts them. All and first:N subsets of one epoch
 * stream (first:N stops reading after N); other subsets hold every task
 * until the inputs are read. A record or image that fails its check with
 * ds.skip_bad is passed to ds.warn and counted in ds.skipped. Returns 0, or
 * -1 with err filled (the lines already written stay written). */
int vr_prep_run(struct vr_prep_opts *o, char *const *inputs, int n, FILE *out, int64_t *written,
                struct vr_err *err);

#endif

/* task.h: the task line (DESIGN.md §3.1) and its checks.
 *
 * {"id":"refcoco_val/123","split":"refcoco_val","task":"rec","images":["/abs/a.jpg"],
 *  "image_sizes":[[640,427]],"problem":"...","solution":[x1,y1,x2,y2],"label":"..."}
 *
 * solution is x1,y1,x2,y2 in original-image pixels, or a string for tasks
 * that are not boxes. Every stage that reads tasks validates them here. */
#ifndef VR_TASK_H
#define VR_TASK_H

#include <jansson.h>

#include "err.h"

/* The sentence VLM-R1 puts before the referring expression. */
#define VR_REC_PREFIX "Please provide the bounding box coordinate of the region this sentence describes: "

/* The largest image side a task may state, in pixels ("image_sizes", a
 * record's width and height): larger numbers are errors, never truncated. */
#define VR_TASK_MAX_SIDE (1 << 20)

/* Parse v as a box: exactly 4 finite numbers with x1 < x2 and y1 < y2.
 * Errors are location-free ("'solution' ..."); callers add file:line. */
int vr_box_parse(const json_t *v, const char *what, double box[4], struct vr_err *err);
/* Box inside a w x h image: 0 <= x1, 0 <= y1, x2 <= w, y2 <= h. */
int vr_box_check_inside(const double box[4], const char *what, int w, int h, struct vr_err *err);

/* A new task object with the standard fields in the standard order. images
 * are stored as given (callers make them absolute); sizes may be NULL (then no
 * "image_sizes"), else n pairs of (w, h) where w <= 0 means unknown, which
 * leaves out "image_sizes" too. solution is stolen (reference taken). label
 * may be NULL. */
json_t *vr_task_new(const char *id, const char *split, int nimages, const char *const *images,
                    const int (*sizes)[2], const char *problem, json_t *solution,
                    const char *label);

/* Check a task object read from a stream (own format): id, images (list of
 * strings), problem (string), solution (box or string), optional
 * image_sizes (one [w, h] per image, positive ints) and the box inside the
 * image when sizes are known. */
int vr_task_validate(const json_t *t, const char *file, long line, struct vr_err *err);
/* The same, but a task may have no 'solution': an inference task (batch
 * grounding), which vr-encode, vr-rollout and vr-eval serve; rewards and SFT
 * refuse it where they need the gold answer. */
int vr_task_validate_unlabelled(const json_t *t, const char *file, long line, struct vr_err *err);

/* The referring expression inside a VLM-R1 REC problem: the text after
 * VR_REC_PREFIX without a final '.', or NULL when the prefix is absent.
 * Caller frees. */
char *vr_rec_label_from_problem(const char *problem);

#endif

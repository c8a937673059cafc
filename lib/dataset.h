/* dataset.h: reading grounding datasets into task lines (vr-prep).
 *
 * Formats (DESIGN.md §2.2):
 *   rec       VLM-R1 REC JSON: a list of {image, problem, solution, normal_caption}
 *             (also one record per line in .jsonl); width/height are used when present
 *   yaml      VLM-R1 rec.yaml: datasets: [{json_path, sampling_strategy}]
 *   conv      VLM-R1 conversations JSONL: {image, conversations:[{from:human,value},
 *             {from:gpt,value}]}; "<image>" is removed from the question and the
 *             answer's <answer> tags are stripped and its JSON box parsed
 *   messages  LLaMA-Factory: {messages:[{role,content}...], images:[...]} in a JSON
 *             list or JSONL
 *   tasks     vr's own task lines (DESIGN.md §3.1), passed through with every field
 * The same records give the same task lines in every format. */
#ifndef VR_DATASET_H
#define VR_DATASET_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"

enum vr_format { VR_FMT_AUTO, VR_FMT_REC, VR_FMT_YAML, VR_FMT_CONV, VR_FMT_MESSAGES, VR_FMT_TASKS };

/* "auto", "rec" (alias "vlmr1"), "yaml", "conv", "messages", "tasks". -1 if unknown. */
int vr_format_parse(const char *s, enum vr_format *out);

/* A subset rule: all, first:N, end:N, random:N, pyrandom:N, with N a count
 * (at most 2^53) or a percentage ("random:10%": ceil(10 * n / 100) records, as
 * VLM-R1). Bare "N" means first:N and bare "N%" random:N%. A bad rule is a
 * VR_ERR_USAGE error whose message quotes it. */
struct vr_take {
    enum { VR_TAKE_ALL, VR_TAKE_FIRST, VR_TAKE_END, VR_TAKE_RANDOM, VR_TAKE_PYRANDOM } how;
    double n;
    int percent;
};
int vr_take_parse(const char *s, struct vr_take *t, struct vr_err *err);
/* Apply t to items[0..n) in place (dropped items are decref'ed); returns the
 * new count. Both random rules keep the first N in shuffled order.
 *   random:   Fisher-Yates with Philox keyed by (seed, stream) — the same on
 *             every machine; another stream draws another subset.
 *   pyrandom: Python's random.seed(seed); random.shuffle(items) (pyrandom.h),
 *             so the subset is the one `data[:N]` keeps in VLM-R1's eval
 *             scripts. stream is ignored: every call with the same seed and
 *             list takes the same subset, as Python would. */
int64_t vr_take_apply(json_t **items, int64_t n, const struct vr_take *t, uint64_t seed,
                      uint64_t stream);

struct vr_tasks {
    json_t **v;
    int64_t n, cap;
};
void vr_tasks_push(struct vr_tasks *ts, json_t *t);
void vr_tasks_release(struct vr_tasks *ts);

/* Where tasks go as they are read: takes ownership of t; returns 0 for more,
 * 1 when it has enough (reading stops early), -1 on failure (err filled). */
typedef int (*vr_task_emit_fn)(void *ctx, json_t *t, struct vr_err *err);

struct vr_dataset_opts {
    enum vr_format format;
    const char *images_dir;  /* root for relative image paths; NULL: the data file's folder */
    const char *split;       /* overrides the split name (default: file name sans extension) */
    uint64_t seed;           /* for rec.yaml random sampling */
    int skip_bad;            /* skip bad records (reported through warn) instead of failing */
    int allow_outside;       /* relative image paths may leave images_dir (".."); default: an error */
    /* called for each skipped record when skip_bad is set */
    void (*warn)(void *ctx, const struct vr_err *e);
    void *warn_ctx;
    int64_t skipped;         /* out: records skipped */
};

/* Read one input file (any format), handing each task line to emit as soon as
 * it is made: a JSON list is parsed record by record, so memory holds one
 * record. Returns 0, 1 when emit stopped it early, -1 on failure. */
int vr_dataset_read(const char *path, struct vr_dataset_opts *o, vr_task_emit_fn emit, void *ctx,
                    struct vr_err *err);

/* Image sizes seen so far (each image file is probed once). */
struct vr_imgcache;
struct vr_imgcache *vr_imgcache_new(void);
void vr_imgcache_free(struct vr_imgcache *c);
/* Probe every image of task t (vr_image_probe, cached per path), record
 * "image_sizes" (or check those given), and check the solution box lies inside
 * the first image. Errors name the image or the task id. */
int vr_dataset_check_task(struct vr_imgcache *c, json_t *t, struct vr_err *err);

#endif

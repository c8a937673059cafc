/* task.h: the task line (DESIGN.md §3.1) and every line made from it
 * (encoded §3.2, rollout §3.3, scored §3.4): one parsed, validated form.
 *
 * {"id":"refcoco_val/123","split":"refcoco_val","task":"rec","images":["/abs/a.jpg"],
 *  "image_sizes":[[640,427]],"problem":"...","solution":[x1,y1,x2,y2],"label":"..."}
 *
 * solution is x1,y1,x2,y2 in original-image pixels, or a string for tasks
 * that are not boxes. Every stage that reads tasks validates them here. */
#ifndef VR_TASK_H
#define VR_TASK_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"

/* The sentence VLM-R1 puts before the referring expression. */
#define VR_REC_PREFIX "Please provide the bounding box coordinate of the region this sentence describes: "

/* The largest image side a task may state, in pixels ("image_sizes", a
 * record's width and height): larger numbers are errors, never truncated. */
#define VR_TASK_MAX_SIDE (1 << 20)


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

/* ---- the parsed line ----
 * vr_task_parse checks a line as a whole when it is read, so a stage never
 * meets a field it has to doubt: every field that is present is checked
 * (types, counts against the images, sizes against the limits, every number
 * finite and in range, token ids below the vocabulary, logp <= 0), and the
 * fields a stage needs are required (VR_NEED_*). An error is always
 * "FILE:LINE: what is wrong". Strings point into the JSON line, which must
 * outlive the task; the arrays are the task's own. */

/* The most merged image tokens a line's images may make without a model to
 * say otherwise: Qwen2.5-VL's max_position_embeddings. */
#define VR_TASK_MAX_IMAGE_TOKENS 128000
/* At most this many images, completions, and tokens per completion, so that a
 * count is never the size of an allocation an attacker chooses freely. */
#define VR_TASK_MAX_IMAGES 4096
#define VR_TASK_MAX_COMPLETIONS 65536
#define VR_TASK_MAX_TOKENS (1 << 24)

enum vr_solution_kind { VR_SOL_NONE, VR_SOL_BOX, VR_SOL_TEXT };

struct vr_task_image {
    const char *path;         /* "images"[i], NULL when the line has only pixels */
    int w, h;                 /* "image_sizes"[i]; 0 when unknown */
    int grid[3];              /* patch grid (t, h, w): the pixels' grid_thw, else from
                               * image_sizes through smart_resize (VR_NEED_GRIDS);
                               * all 0 when neither */
    const char *pixels;       /* "pixels"[i].file (vr-encode), or NULL (a grid alone is
                               * enough to render a prompt) */
    int in_w, in_h;           /* "pixels"[i].input_size, 0 when absent */
    int im_w, im_h;           /* "pixels"[i].image_size, 0 when absent */
    const char *vision, *vision_model; /* "vision"[i].file and .model, or NULL */
};

struct vr_task_completion {
    const char *text;         /* NULL when absent */
    size_t text_len;
    int n;                    /* tokens; -1 when the completion has no "tokens" */
    int32_t *tokens;          /* n ids */
    float *logp;              /* n log-probabilities <= 0, or NULL with no "logp" */
    const char *finish;       /* "eos", "answer", "length" or NULL */
    int has_reward, has_advantage;
    double reward, advantage;
    const json_t *rewards;    /* the "rewards" object of finite numbers, or NULL */
};

struct vr_task {
    const json_t *json;       /* the line */
    const char *id, *split, *problem, *label, *think;
    const char *completion;   /* an SFT target string, or NULL */
    enum vr_solution_kind sol;
    double box[4];            /* VR_SOL_BOX: x1, y1, x2, y2 in original pixels */
    const char *answer;       /* VR_SOL_TEXT */
    size_t answer_len;
    int nimages;
    struct vr_task_image *im; /* nimages */
    int grids;                /* every image has a grid (grid[0] > 0) */
    int64_t image_tokens;     /* merged image tokens of all images (grids known) */
    int prompt_tokens;        /* -1 when absent */
    int ncompl;               /* -1 when the line has no "completions" */
    struct vr_task_completion *c;
};

/* What a stage can take: the model's sizes, or the defaults without one. */
struct vr_task_limits {
    int patch, merge;         /* 14, 2 */
    long min_pixels, max_pixels; /* smart_resize's bounds for grids from image_sizes */
    int64_t max_image_tokens; /* merged image tokens of a line */
    int vocab;                /* token ids must be below it; 0: any id >= 0 */
    const char *why;          /* what sets max_image_tokens, for the error ("--max-prompt-tokens") */
};

/* What a stage needs besides what is checked whenever present. */
enum {
    VR_NEED_TASK = 1,         /* id, images and problem (§3.1) */
    VR_NEED_SOLUTION = 2,     /* a box or string solution */
    VR_NEED_GRIDS = 4,        /* every image's patch grid (pixels or image_sizes) */
    VR_NEED_PIXELS = 8,       /* every image encoded (vr-encode) */
    VR_NEED_COMPLETIONS = 16, /* completions with tokens and logp (vr-rollout) */
    VR_NEED_ADVANTAGES = 32,  /* ... and an advantage each (vr-reward) */
    VR_LOOSE_IDS = 64,        /* other tools' lines (vr-eval): an id, split or label
                               * that is not a string is left out, not refused */
};

/* The defaults: patch 14, merge 2, Qwen's min/max pixels, VR_TASK_MAX_IMAGE_TOKENS,
 * any vocabulary. */
void vr_task_limits_default(struct vr_task_limits *l);
/* Parse and check line; on success t holds the typed fields (release with
 * vr_task_release); on failure t is empty and err says FILE:LINE: what. */
int vr_task_parse(const json_t *line, unsigned need, const struct vr_task_limits *lim, const char *file,
                  long lineno, struct vr_task *t, struct vr_err *err);
void vr_task_release(struct vr_task *t);
/* The images' grids as one malloc'ed array of (t, h, w), in image order, as
 * the model's vision and rope code take them (caller frees). */
int (*vr_task_grids(const struct vr_task *t))[3];

/* The referring expression inside a VLM-R1 REC problem: the text after
 * VR_REC_PREFIX without a final '.', or NULL when the prefix is absent.
 * Caller frees. */
char *vr_rec_label_from_problem(const char *problem);

#endif

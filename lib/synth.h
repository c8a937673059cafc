/* synth.h: synthetic grounding scenes (vr-synth): shapes of named colours and
 * sizes on simple backgrounds, a referring expression that picks one of them
 * out, and its exact box.
 *
 * A scene is a pure function of (seed, split, index, base size): every random
 * draw comes from Philox (rng.h) on a stream of its own per (split, index,
 * purpose), and geometry is integer arithmetic throughout (1/256 px fixed
 * point, a table of sines), so the same arguments give the same scene and
 * pixels on any number of threads, and on any machine. (Encoded files are
 * the same bytes for the same zlib, libspng and libjpeg-turbo.)
 *
 * Coverage rule: pixel (x, y) belongs to an object iff its centre
 * (x + 0.5, y + 0.5) lies inside the shape (circles and rings: distance
 * within the radii; polygons: the crossing-number rule, in exact integer
 * arithmetic); no antialiasing. Objects never touch each other, so an
 * object's pixels in the scene are exactly the pixels it covers alone, and
 * its box is their tight bound: [x1, y1, x2, y2] with x1, y1 the first
 * covered column and row and x2, y2 one past the last (the COCO convention:
 * x2 - x1 is the width in pixels).
 *
 * Splits: train and val draw from one distribution; ood holds out one shape
 * per colour (vr_synth_held_out: those pairs never appear anywhere in train
 * or val, and are the target of every ood scene), uses relational and ordinal
 * phrasings that train never uses, other backgrounds (checker, gradient) and
 * other aspect ratios. */
#ifndef VR_SYNTH_H
#define VR_SYNTH_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "image.h"
#include "progress.h"

enum vr_synth_shape {
    VR_SHAPE_CIRCLE, VR_SHAPE_SQUARE, VR_SHAPE_TRIANGLE, VR_SHAPE_STAR,
    VR_SHAPE_RING, VR_SHAPE_CROSS, VR_SHAPE_DIAMOND, VR_SHAPE_HEXAGON,
    VR_SHAPE_COUNT
};
enum vr_synth_colour {
    VR_COLOUR_RED, VR_COLOUR_ORANGE, VR_COLOUR_YELLOW, VR_COLOUR_GREEN,
    VR_COLOUR_BLUE, VR_COLOUR_PURPLE, VR_COLOUR_BROWN, VR_COLOUR_BLACK,
    VR_COLOUR_COUNT
};
enum vr_synth_size { VR_SIZE_SMALL, VR_SIZE_MEDIUM, VR_SIZE_LARGE, VR_SIZE_COUNT };
enum vr_synth_bg {
    VR_BG_PLAIN, VR_BG_NOISY, VR_BG_STRIPED, /* train, val */
    VR_BG_CHECKER, VR_BG_GRADIENT,           /* ood only */
    VR_BG_POSITION, /* only when asked (vr_synth_knobs): red grows with x, green with y */
    VR_BG_COUNT
};
enum vr_synth_split { VR_SPLIT_TRAIN, VR_SPLIT_VAL, VR_SPLIT_OOD, VR_SPLIT_COUNT };
enum vr_synth_kind {
    VR_EXPR_ATTRIBUTE, /* "the small red circle" */
    VR_EXPR_RELATION,  /* "the blue star left of the green square" */
    VR_EXPR_ORDINAL,   /* "the second triangle from the top" */
    VR_EXPR_COUNT
};

/* A side, for relations ("left of", "above") and ordinals ("from the top"). */
enum vr_synth_side { VR_SIDE_LEFT, VR_SIDE_RIGHT, VR_SIDE_TOP, VR_SIDE_BOTTOM };

/* What an expression says about an object: each field an enum value, or -1
 * when the expression does not say it. */
struct vr_synth_desc {
    int shape, colour, size;
};

extern const char *const vr_synth_shape_names[VR_SHAPE_COUNT];
extern const char *const vr_synth_colour_names[VR_COLOUR_COUNT];
extern const char *const vr_synth_size_names[VR_SIZE_COUNT];
extern const char *const vr_synth_bg_names[VR_BG_COUNT];
extern const char *const vr_synth_split_names[VR_SPLIT_COUNT];
extern const char *const vr_synth_kind_names[VR_EXPR_COUNT];
/* The RGB of each named colour. Every background pixel has all three
 * channels >= 160 and every named colour has one <= 60, so they never meet. */
extern const uint8_t vr_synth_rgb[VR_COLOUR_COUNT][3];

/* "train" -> VR_SPLIT_TRAIN; -1 when unknown. */
int vr_synth_split_parse(const char *s);
/* 1 when the (colour, shape) pair is held out for ood. */
int vr_synth_held_out(enum vr_synth_colour c, enum vr_synth_shape s);

#define VR_SYNTH_MAX_OBJ 8
#define VR_SYNTH_MAX_VERT 12

struct vr_synth_object {
    enum vr_synth_shape shape;
    enum vr_synth_colour colour;
    enum vr_synth_size size;
    int32_t cx, cy;          /* centre, 1/256 px */
    int32_t ext;             /* nominal extent (diameter of a circle), 1/256 px */
    int rot;                 /* rotation, degrees */
    int nv;                  /* polygon vertices (0 for circle and ring) */
    int32_t vx[VR_SYNTH_MAX_VERT], vy[VR_SYNTH_MAX_VERT]; /* absolute, 1/256 px */
    int64_t r2_out, r2_in;   /* circle and ring: squared radii, (1/256 px)^2 */
    int loose[4];            /* pixels that may be covered: [x1, y1, x2, y2) */
    int box[4];              /* tight bound of the covered pixels: [x1, y1, x2, y2) */
};

struct vr_synth_scene {
    enum vr_synth_split split;
    uint64_t seed, index;
    int w, h;                 /* this scene's size (ood changes the aspect ratio) */
    enum vr_synth_bg bg;
    uint8_t tone[2][3];       /* background colours */
    int bg_period, bg_dir;    /* stripes/checker period in px; stripe or gradient direction 0..3 */
    int nobj;
    struct vr_synth_object obj[VR_SYNTH_MAX_OBJ];
    int target;               /* index into obj */
    enum vr_synth_kind kind;
    char expr[192];           /* "the small red circle" */
    char think[256];          /* a reasoning caption: "the red circle: a small red circle, top left" */
    /* the expression's meaning, for vr_synth_resolve:
     *   attribute: the one object matching desc
     *   relation:  the object matching desc that lies wholly on side `side` of
     *              the one object matching anchor_desc
     *   ordinal:   the nth (1-based) object matching desc counted from `side` */
    struct vr_synth_desc desc, anchor_desc;
    int anchor;               /* relation: index of the anchor object, else -1 */
    enum vr_synth_side side;
    int nth;
    int attempts;             /* layouts tried before this one fitted (for tests) */
};

/* What a dataset draws from (vr-synth's --kinds, --backgrounds,
 * --ood-backgrounds, --sizes, --max-objects, --scale); all zero is the default mix,
 * whose scenes are the same bytes as before the knobs existed. Masks hold
 * 1u << value per allowed value. */
struct vr_synth_knobs {
    unsigned kinds;       /* expression kinds of every split (0: all three) */
    unsigned bgs;         /* backgrounds of train and val (0: plain, noisy, striped) */
    unsigned ood_bgs;     /* backgrounds of ood (0: checker, gradient) */
    unsigned sizes;       /* sizes of targets (0: all); other objects keep any size */
    int max_objects;      /* most objects in a scene, 1..VR_SYNTH_MAX_OBJ (0: as the kind needs) */
    int scale;            /* object extents in percent of the default, 25..400 (0: 100),
                           * at most 3/4 of the shorter side */
};

/* Check knobs: known values only, and every allowed kind possible within
 * max_objects (a relation needs 3 objects, an ordinal 2). */
int vr_synth_knobs_check(const struct vr_synth_knobs *k, struct vr_err *err);
/* Parse a comma-separated list of names (e.g. "plain,position") into a mask
 * over names[0..n). Returns -1 and names the bad word in err. */
int vr_synth_mask_parse(const char *list, const char *const *names, int n, const char *what,
                        unsigned *mask, struct vr_err *err);

/* Size of split's scenes for base size w x h: train and val use w x h; ood
 * scene `index` uses one of four other aspect ratios (2:1, 1:2, 16:9, 9:16
 * times the base ratio) at about the same area, both sides multiples of 28
 * when w and h are (so Qwen's smart_resize keeps them), else even. */
void vr_synth_scene_size(enum vr_synth_split split, uint64_t seed, uint64_t index, int w, int h,
                         int *sw, int *sh);

/* Make scene index of split for seed at base size w x h (48..4096 each, ratio
 * at most 3:1), drawing from knobs (NULL: the default mix; else checked by
 * vr_synth_knobs_check). Fails (VR_ERR_INPUT) only if no layout fits in many
 * tries, which tests show does not happen at the sizes vr-synth allows. */
int vr_synth_scene_make(struct vr_synth_scene *sc, uint64_t seed, enum vr_synth_split split,
                        uint64_t index, int w, int h, const struct vr_synth_knobs *knobs,
                        struct vr_err *err);

/* Draw sc into rgb (sc->w * sc->h * 3 bytes). only < 0 draws every object on
 * the scene's background; only = i draws object i alone, and blank (when not
 * NULL) replaces the background by that one colour. */
void vr_synth_render(const struct vr_synth_scene *sc, uint8_t *rgb, int only,
                     const uint8_t blank[3]);

/* The object sc's expression (kind, desc, anchor_desc, side, nth) picks out
 * among sc's objects, judged from their boxes alone: its index, or -1 when no
 * object or more than one fits. A generated scene always resolves to its
 * target; tests use this to check that, and that dropping any part of the
 * expression would make it ambiguous. */
int vr_synth_resolve(const struct vr_synth_scene *sc);
/* 1 when pixel (x, y) belongs to o: the reference coverage test, one pixel at
 * a time (rendering and boxes use an exact row-at-a-time equivalent). */
int vr_synth_covers(const struct vr_synth_object *o, int x, int y);


/* box scaled to 0..1000 per axis, rounded half up: (1000 * v + size / 2) / size
 * in integers. */
void vr_synth_box_norm(const int box[4], int w, int h, int out[4]);

/* A whole dataset (vr-synth). */
struct vr_synth_opts {
    const char *out;             /* folder: images/<split>/<id>.<ext> and <split>.json */
    uint64_t seed;
    int nsplits;
    enum vr_synth_split splits[VR_SPLIT_COUNT]; /* in output order */
    int64_t count[VR_SPLIT_COUNT];              /* scenes per listed split */
    int w, h;                    /* base size */
    enum vr_image_format format; /* VR_IMAGE_PNG or VR_IMAGE_JPEG */
    int threads;                 /* >= 1 */
    int draw_boxes;              /* outline each target's box in its image */
    struct vr_synth_knobs knobs; /* what scenes draw from (all zero: the default mix) */
    FILE *tasks;                 /* task lines (DESIGN.md §3.1) for each scene, or NULL */
    struct vr_progress *progress; /* NULL: none */
};

/* Write every listed split: its images (each whole or absent), one sync, then
 * <split>.json (VLM-R1 REC: image, width, height, problem, normal_caption,
 * think (the scene's reasoning caption, a vr extension),
 * solution, normalized_solution) atomically, then its task lines on o->tasks
 * (the same bytes `vr-prep DIR/<split>.json` writes). Stops at the first
 * failure (err names the file). */
int vr_synth_write(const struct vr_synth_opts *o, struct vr_err *err);

#endif

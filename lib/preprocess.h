/* preprocess.h: Qwen2-VL / Qwen2.5-VL image preprocessing, exactly as
 * transformers' slow (PIL) Qwen2VLImageProcessor computes it
 * (shared/qwen25vl.md §2): smart_resize to multiples of 28 within
 * [min_pixels, max_pixels], PIL bicubic resampling, rescale by 1/255 in
 * float64 then float32, CLIP mean/std normalisation in float32, the frame
 * repeated to the temporal patch size, and 14x14 patches in 2x2 merge order.
 *
 * Shapes: an image of grid (1, gh, gw) gives pixel_values (N, D) with
 * N = gh * gw patches and D = 3 * temporal_patch_size * patch_size^2 (1176).
 * Row r, column (c, t, py, px) holds channel c of pixel (y, x) with
 *   r = ((bh * gw/2 + bw) * 2 + mh) * 2 + mw,  y = (bh*2 + mh)*14 + py,
 *   x = (bw*2 + mw)*14 + px   (merge size 2; general merge sizes likewise). */
#ifndef VR_PREPROCESS_H
#define VR_PREPROCESS_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "hash.h"
#include "image.h"
#include "resample.h"

/* Every parameter that changes pixel_values (and so the cache key). */
struct vr_preproc {
    int64_t min_pixels, max_pixels;
    int patch_size;          /* 14 */
    int temporal_patch_size; /* 2 */
    int merge_size;          /* 2 */
    int resample;            /* PIL filter number: 3 = bicubic */
    int do_resize, do_rescale, do_normalize;
    double rescale_factor;   /* 1/255 */
    double mean[3], std[3];  /* OPENAI_CLIP_MEAN / _STD */
    /* VLM-R1's trainer enlarges an image whose shorter side is under this
     * many pixels to exactly that side (PIL LANCZOS, int() of the scaled
     * long side) before the processor sees it; 0 (the default) leaves it
     * out, as transformers' processor alone does. */
    int min_side;
    /* Pillow major version whose resampling pass order to reproduce
     * (resample.h); VR_PILLOW_DEFAULT unless asked otherwise. */
    int pillow;
};

/* Qwen2.5-VL's processor values with VLM-R1's pixel bounds: min_pixels 3136,
 * max_pixels 12845056, patch 14, temporal 2, merge 2, bicubic, 1/255, CLIP. */
void vr_preproc_defaults(struct vr_preproc *p);

/* Read a preprocessor_config.json (path of the file, or of a checkpoint
 * folder holding it; a folder without one leaves p as it is) over p: min_pixels / max_pixels (or size.shortest_edge /
 * size.longest_edge), patch_size, temporal_patch_size, merge_size, resample,
 * do_resize, do_rescale, rescale_factor, do_normalize, image_mean, image_std.
 * Keys it does not name keep p's values. Fails naming the file and key for a
 * missing file, bad JSON, a value of the wrong type or out of range, or a
 * value vr does not implement (resample 0 = nearest). */
int vr_preproc_load(struct vr_preproc *p, const char *path, struct vr_err *err);

/* The same from a JSON object (vr_preproc_json's, or a
 * preprocessor_config.json's), which may also carry min_side and pillow;
 * file names the source in errors. */
int vr_preproc_parse(struct vr_preproc *p, json_t *o, const char *file, struct vr_err *err);

/* Check the ranges of p (after flags have been applied). */
int vr_preproc_check(const struct vr_preproc *p, struct vr_err *err);

/* Feed every field of p, in a fixed order and encoding, to h. */
void vr_preproc_hash(const struct vr_preproc *p, struct vr_hasher *h);

/* p as a JSON object (for the cache file's metadata and for messages). */
json_t *vr_preproc_json(const struct vr_preproc *p);

/* transformers' smart_resize for an image of height x width: both sides
 * multiples of factor, area within [min_pixels, max_pixels], aspect ratio
 * kept as well as rounding allows. Python's round() is half-to-even (rint
 * here), all arithmetic is in doubles in the reference's order, and a side
 * that the max_pixels branch would floor to 0 is raised to factor (as
 * transformers >= 4.5x does). Fails (VR_ERR_INPUT, no file named) when the
 * aspect ratio max/min exceeds 200 or a side is < 1. */
int vr_smart_resize(int height, int width, int factor, long min_pixels, long max_pixels,
                    int *out_h, int *out_w, struct vr_err *err);

/* The result for one image. */
struct vr_pixels {
    int64_t grid_t, grid_h, grid_w;
    int width, height;     /* resized size: the model's input size */
    int64_t rows, cols;    /* pixel_values shape: grid_t*grid_h*grid_w, C*T*P*P */
    float *data;           /* rows * cols, owned */
};
void vr_pixels_release(struct vr_pixels *px);

/* The size the image is resized to (after min_side and smart_resize),
 * without touching pixels: *w, *h. */
int vr_preprocess_size(const struct vr_preproc *p, int width, int height, int *out_w, int *out_h,
                       struct vr_err *err);

/* im (RGB8) -> pixel_values and grid. Errors carry no file name (callers
 * locate them). */
int vr_preprocess(const struct vr_preproc *p, const struct vr_image *im, struct vr_pixels *out,
                  struct vr_err *err);

/* The steps of vr_preprocess, exposed for streaming writers and tests. */
/* VLM-R1's enlargement (min_side) and the resize to the smart_resize size:
 * out is the RGB8 image the patches are cut from (owned). */
int vr_preprocess_resize(const struct vr_preproc *p, const struct vr_image *im,
                         struct vr_image *out, struct vr_err *err);
/* VLM-R1's minimum-side enlargement: new size for (w, h), unchanged when both
 * sides are >= min_side. */
void vr_min_side_size(int w, int h, int min_side, int *out_w, int *out_h);
/* out (rows, cols) from a resized RGB8 image of w x h: normalise through a
 * per-channel table of the 256 byte values, repeat the frame, patchify. The
 * rows of a strip of merge_size * patch_size image rows are consecutive
 * rows of the whole image's output, so a caller may go strip by strip. */
void vr_patchify(const struct vr_preproc *p, const uint8_t *rgb, int w, int h, float *out);

#endif

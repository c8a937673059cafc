/* draw.h: a grounding verdict drawn over its image and written as a PNG, for
 * a person to look at what a model did (vr-eval --draw). Rendering is cairo's;
 * the PNG goes through vr_image_write (libspng, temp file + rename).
 *
 * The picture, in pixels of the output:
 *   - the image, scaled by one factor s (below), at (x0, VR_DRAW_MARGIN) with
 *     x0 = (out_w - s*w) / 2, framed by a VR_DRAW_MARGIN-wide dark margin so
 *     that an outline on the image's edge stays visible;
 *   - the gold box in VR_DRAW_GOLD, VR_DRAW_LINE px wide, just outside the
 *     box (its inner edge on the box's edge, as vr-synth draws targets);
 *   - the predicted box in VR_DRAW_PRED, VR_DRAW_LINE px wide, just inside
 *     the box, on top; so equal boxes show as red ringed by green;
 *   - below, on a dark band, the caption lines in light grey, wrapped at
 *     spaces (or anywhere, for a word wider than the band) to the width.
 * Outlines are drawn without antialiasing on whole pixels, so every outline
 * pixel is exactly its colour (a test can find them). Caption text is
 * antialiased.
 *
 * Scale s: an image whose longer side L is over max_side (max_side > 0) is
 * shrunk to max_side (bilinear, antialiased as PIL's resize); one with L under
 * VR_DRAW_MIN_SIDE is enlarged by the integer factor ceil(VR_DRAW_MIN_SIDE/L)
 * (nearest neighbour: each pixel a block, so a 56x56 synthetic scene stays
 * sharp), but not past max_side; anything else is kept as is.
 *   out_w = max(s*w + 2*VR_DRAW_MARGIN, VR_DRAW_MIN_WIDTH)
 *   out_h = s*h + 2*VR_DRAW_MARGIN + band,
 *   band  = 0 without caption lines, else 2*VR_DRAW_PAD + rows*VR_DRAW_ROW
 * (rows after wrapping, at most VR_DRAW_MAX_ROWS; the rest is left out). */
#ifndef VR_DRAW_H
#define VR_DRAW_H

#include "err.h"
#include "image.h"

#define VR_DRAW_LINE 2        /* outline width */
#define VR_DRAW_MARGIN 2      /* dark frame around the image (= VR_DRAW_LINE) */
#define VR_DRAW_MIN_SIDE 256  /* smaller images are enlarged, see above */
#define VR_DRAW_MIN_WIDTH 256 /* narrowest picture, so captions have room */
#define VR_DRAW_FONT 14       /* caption font size, px */
#define VR_DRAW_ROW 18        /* caption line pitch, px */
#define VR_DRAW_PAD 6         /* caption band padding above and below, px */
#define VR_DRAW_MAX_ROWS 32

/* Colours, R G B: the box outlines, the margin and caption band, the text. */
#define VR_DRAW_GOLD 0, 200, 0
#define VR_DRAW_PRED 230, 0, 0
#define VR_DRAW_BAND 24, 24, 24
#define VR_DRAW_TEXT 235, 235, 235

/* A box in pixels of the original image: x1, y1 the top-left pixel edges,
 * x2, y2 the bottom-right edges, exclusive (VLM-R1's [x1, y1, x2, y2]).
 * Inverted boxes (x2 < x1, y2 < y1) are drawn as their normalised selves;
 * a box with a NaN or infinite coordinate is not drawn; what falls outside
 * the image (and its margin) is clipped away. */
struct vr_draw_box {
    double x1, y1, x2, y2;
};

struct vr_draw_spec {
    const struct vr_draw_box *gold; /* NULL: none */
    const struct vr_draw_box *pred; /* NULL: none (no answer parsed) */
    /* Caption lines (UTF-8; invalid bytes show as '?', control characters
     * as spaces), NULL-terminated; the array pointer may be NULL: no caption.
     * E.g. {"the red circle left of the square", "IoU 0.73 correct", NULL}. */
    const char *const *lines;
};

/* Draw spec over im (RGB8, as vr_image_load gives it) as described above and
 * write the PNG to path through vr_image_write: flags is 0 (temp file, fsync,
 * rename, fsync of the folder) or VR_IMAGE_WRITE_NOSYNC (image_write.h; for
 * one file per sample, with one vr_image_write_sync at the end). max_side: 0
 * for no shrinking. Returns 0, or -1 with err filled ("PATH: ..."): path not
 * writable (VR_ERR_SYS; path is then untouched), a picture over cairo's 32767
 * pixels a side or max_side < 0 (VR_ERR_USAGE), out of memory (VR_ERR_SYS).
 * Never exits. */
int vr_draw_png(const char *path, const struct vr_image *im, int max_side,
                const struct vr_draw_spec *spec, int flags, struct vr_err *err);

/* Free what cairo and fontconfig keep for the rest of the process (font
 * caches, the parsed font configuration), so that a leak checker (make check)
 * sees no leak. Call once before exit, after the last vr_draw_png, from one
 * thread; a vr_draw_png after it still works (fontconfig starts afresh). */
void vr_draw_shutdown(void);

#endif

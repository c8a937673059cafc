/* image.h: image files. Sniffing and header probing (vr-prep --check-images),
 * and decoding to RGB8 exactly as Python's PIL.Image.open(f).convert("RGB")
 * gives it (vr-encode), so that the pixels fed to Qwen preprocessing are the
 * ones transformers sees in VLM-R1.
 *
 * What convert("RGB") does, and so what vr_image_decode does:
 *   JPEG   RGB/YCbCr as libjpeg decodes it (ISLOW IDCT, fancy upsampling: the
 *          TurboJPEG defaults, which are also PIL's); grey replicated to R=G=B;
 *          CMYK/YCCK read with Adobe polarity and converted with PIL's integer
 *          formula R = K' - K'*C'/255 (see image.c). EXIF orientation is NOT
 *          applied (PIL's Image.open does not apply it either).
 *   PNG    palette looked up (tRNS ignored); alpha dropped, not composited;
 *          grey of 1/2/4 bits scaled to 0..255; 16-bit RGB/RGBA/grey+alpha
 *          take the high byte; 16-bit grey is clipped to min(v, 255) (PIL reads
 *          it as mode I;16, whose conversion to RGB clips). Gamma, sBIT and
 *          colour profiles are ignored, as PIL ignores them. */
#ifndef VR_IMAGE_H
#define VR_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum vr_image_format { VR_IMAGE_UNKNOWN, VR_IMAGE_JPEG, VR_IMAGE_PNG };


/* Read path's header: *w, *h in pixels. Fails with "path: ..." when the file is
 * missing, empty, not a JPEG/PNG, or its header is corrupt. */
int vr_image_probe(const char *path, int *w, int *h, enum vr_image_format *fmt,
                   struct vr_err *err);

/* A decoded image: h rows of w RGB triplets, no padding (row stride 3*w). */
struct vr_image {
    int w, h;
    uint8_t *px; /* owned, malloc'ed */
};

/* PIL's default decompression-bomb limit (Image.MAX_IMAGE_PIXELS * 2, above
 * which PIL refuses to open an image). */
#define VR_IMAGE_MAX_PIXELS_DEFAULT 178956970LL
/* The largest image file read (1 GiB); images are opened only when they are
 * regular files (vr_file_open_regular). */
#define VR_IMAGE_MAX_FILE_BYTES (1LL << 30)

/* Decode the len bytes at data (a whole JPEG or PNG file) into out. name is
 * used in messages only ("name: corrupt JPEG: ..."). Before any pixel buffer
 * is allocated, the size in the header is checked against max_pixels (w*h;
 * <= 0 means no limit). Fails (VR_ERR_INPUT) on an empty, unknown, truncated
 * or corrupt file, and on a size over the limit; out is then left empty. */
int vr_image_decode(const char *name, const void *data, size_t len, int64_t max_pixels,
                    struct vr_image *out, struct vr_err *err);
/* Read path whole and decode it. */
int vr_image_load(const char *path, int64_t max_pixels, struct vr_image *out,
                  struct vr_err *err);
void vr_image_release(struct vr_image *im);

#endif

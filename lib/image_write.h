/* image_write.h: encoding 8-bit RGB pixels as PNG (libspng) or JPEG
 * (TurboJPEG) and writing them to files (vr-synth, drawn boxes).
 *
 * Pixels are row-major, 3 bytes per pixel (R, G, B), w*h*3 bytes, no row
 * padding. Decoding lives in image.h. */
#ifndef VR_IMAGE_WRITE_H
#define VR_IMAGE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "image.h"

struct vr_image_enc {
    enum vr_image_format format; /* VR_IMAGE_PNG or VR_IMAGE_JPEG */
    int png_level;               /* zlib level 0..9 (PNG) */
    int png_unfiltered;          /* PNG: 1 skips the per-row filters (filter type None): much
                                    faster, and smaller for flat colour and noise */
    int jpeg_quality;            /* 1..100 (JPEG; chroma is never subsampled: 4:4:4) */
};

/* Encode rgb into a malloc'ed buffer (*out, *len; caller frees with free()).
 * Fails (VR_ERR_SYS) only when the encoder does: out of memory, or sizes the
 * format cannot hold. */
int vr_image_encode(const uint8_t *rgb, int w, int h, const struct vr_image_enc *enc, void **out,
                    size_t *len, struct vr_err *err);

enum {
    /* Write to "PATH.tmp.PID" and rename, without fsync: the file is whole or
     * absent for readers, but not yet durable. A writer of many files calls
     * vr_image_write_sync(dir) once afterwards, before it commits the file that names
     * them (one sync instead of one per image: see vr-synth). */
    VR_IMAGE_WRITE_NOSYNC = 1,
};

/* Encode and write path: through vr_file_write_atomic (temp, fsync, rename,
 * fsync of the folder), or as VR_IMAGE_WRITE_NOSYNC says. On failure path is
 * untouched and no temp file is left. */
int vr_image_write(const char *path, const uint8_t *rgb, int w, int h,
                   const struct vr_image_enc *enc, int flags, struct vr_err *err);

/* Flush to disk every file written so far on the filesystem that holds dir
 * (syncfs(2)); the durability point for VR_IMAGE_WRITE_NOSYNC writes. */
int vr_image_write_sync(const char *dir, struct vr_err *err);

#endif

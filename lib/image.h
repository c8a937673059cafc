/* image.h: image files. For now: identify a JPEG or PNG by its magic bytes and
 * read its size from the header without decoding pixels (vr-prep
 * --check-images). Decoding and Qwen preprocessing come with vr-encode. */
#ifndef VR_IMAGE_H
#define VR_IMAGE_H

#include "err.h"

enum vr_image_format { VR_IMAGE_UNKNOWN, VR_IMAGE_JPEG, VR_IMAGE_PNG };

/* Format from the first bytes of a file (n >= 8 for a sure answer). */
enum vr_image_format vr_image_sniff(const unsigned char *p, size_t n);

/* Read path's header: *w, *h in pixels. Fails with "path: ..." when the file is
 * missing, empty, not a JPEG/PNG, or its header is corrupt. */
int vr_image_probe(const char *path, int *w, int *h, enum vr_image_format *fmt,
                   struct vr_err *err);

#endif

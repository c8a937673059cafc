/* image.c: image sniffing and header probing (see image.h). JPEG headers go
 * through libjpeg-turbo's TurboJPEG API, PNG headers through libspng. */
#include "image.h"

#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

enum vr_image_format vr_image_sniff(const unsigned char *p, size_t n)
{
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return VR_IMAGE_JPEG;
    if (n >= 8 && memcmp(p, png, 8) == 0) return VR_IMAGE_PNG;
    return VR_IMAGE_UNKNOWN;
}

/* JPEG: the SOF marker can sit after large APP segments (EXIF thumbnails), so
 * read a prefix first and the whole file only when the prefix is not enough. */
static int probe_jpeg(const char *path, FILE *f, long size, int *w, int *h, struct vr_err *err)
{
    tjhandle tj = tjInitDecompress();
    if (!tj) return vr_err_set(err, VR_ERR_SYS, path, 0, "cannot start the JPEG decoder");
    long want = size < 65536 ? size : 65536;
    unsigned char *buf = NULL;
    int rc = -1;
    for (;;) {
        unsigned char *nb = realloc(buf, (size_t)want);
        if (!nb) {
            vr_err_set(err, VR_ERR_SYS, path, 0, "out of memory");
            break;
        }
        buf = nb;
        rewind(f);
        if (fread(buf, 1, (size_t)want, f) != (size_t)want) {
            vr_err_sys(err, path, "read failed");
            break;
        }
        int ss, cs;
        *w = *h = 0;
        if (tjDecompressHeader3(tj, buf, (unsigned long)want, w, h, &ss, &cs) == 0 && *w > 0 &&
            *h > 0) {
            rc = 0;
            break;
        }
        if (want == size) {
            vr_err_set(err, VR_ERR_INPUT, path, 0, "corrupt JPEG header: %s",
                       *w > 0 && *h > 0 ? tjGetErrorStr2(tj) : "no frame size (truncated?)");
            break;
        }
        want = size;
    }
    free(buf);
    tjDestroy(tj);
    return rc;
}

static int probe_png(const char *path, FILE *f, int *w, int *h, struct vr_err *err)
{
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx) return vr_err_set(err, VR_ERR_SYS, path, 0, "cannot start the PNG decoder");
    rewind(f);
    struct spng_ihdr ihdr;
    int e = spng_set_png_file(ctx, f);
    if (!e) e = spng_get_ihdr(ctx, &ihdr);
    spng_ctx_free(ctx);
    if (e) return vr_err_set(err, VR_ERR_INPUT, path, 0, "corrupt PNG header: %s", spng_strerror(e));
    *w = (int)ihdr.width;
    *h = (int)ihdr.height;
    return 0;
}

int vr_image_probe(const char *path, int *w, int *h, enum vr_image_format *fmt,
                   struct vr_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return vr_err_sys(err, path, "cannot open image");
    unsigned char magic[8];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    size_t n = fread(magic, 1, sizeof magic, f);
    int rc;
    enum vr_image_format k = vr_image_sniff(magic, n);
    if (size == 0)
        rc = vr_err_set(err, VR_ERR_INPUT, path, 0, "image file is empty");
    else if (k == VR_IMAGE_JPEG)
        rc = probe_jpeg(path, f, size, w, h, err);
    else if (k == VR_IMAGE_PNG)
        rc = probe_png(path, f, w, h, err);
    else
        rc = vr_err_set(err, VR_ERR_INPUT, path, 0, "not a JPEG or PNG image");
    fclose(f);
    if (rc == 0 && (*w <= 0 || *h <= 0))
        rc = vr_err_set(err, VR_ERR_INPUT, path, 0, "image has size %dx%d", *w, *h);
    if (fmt) *fmt = k;
    return rc;
}

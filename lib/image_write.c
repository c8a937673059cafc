/* image_write.c: PNG (libspng) and JPEG (TurboJPEG) encoding and atomic image
 * files (see image_write.h). Used by vr-synth; the reading side is image.c. */
#include "image_write.h"

#include <errno.h>
#include <fcntl.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "fs.h"

static int encode_png(const uint8_t *rgb, int w, int h, int level, int unfiltered, void **out,
                      size_t *len, struct vr_err *err)
{
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (!ctx) return vr_err_set(err, VR_ERR_SYS, NULL, 0, "cannot start the PNG encoder");
    struct spng_ihdr ihdr = {
        .width = (uint32_t)w,
        .height = (uint32_t)h,
        .bit_depth = 8,
        .color_type = SPNG_COLOR_TYPE_TRUECOLOR,
    };
    int e = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    if (!e) e = spng_set_option(ctx, SPNG_IMG_COMPRESSION_LEVEL, level);
    if (!e && unfiltered) e = spng_set_option(ctx, SPNG_FILTER_CHOICE, SPNG_FILTER_CHOICE_NONE);
    if (!e) e = spng_set_ihdr(ctx, &ihdr);
    if (!e)
        e = spng_encode_image(ctx, rgb, (size_t)w * (size_t)h * 3, SPNG_FMT_PNG,
                              SPNG_ENCODE_FINALIZE);
    if (!e) {
        *out = spng_get_png_buffer(ctx, len, &e);
        if (!*out && !e) e = SPNG_EINTERNAL;
    }
    spng_ctx_free(ctx);
    if (e) return vr_err_set(err, VR_ERR_SYS, NULL, 0, "PNG encoding failed: %s", spng_strerror(e));
    return 0;
}

static int encode_jpeg(const uint8_t *rgb, int w, int h, int quality, void **out, size_t *len,
                       struct vr_err *err)
{
    tjhandle tj = tjInitCompress();
    if (!tj) return vr_err_set(err, VR_ERR_SYS, NULL, 0, "cannot start the JPEG encoder");
    unsigned char *buf = NULL;
    unsigned long n = 0;
    int rc = tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &buf, &n, TJSAMP_444, quality, 0);
    if (rc != 0) {
        vr_err_set(err, VR_ERR_SYS, NULL, 0, "JPEG encoding failed: %s", tjGetErrorStr2(tj));
        tjFree(buf);
        tjDestroy(tj);
        return -1;
    }
    tjDestroy(tj);
    /* hand back memory that plain free() releases */
    *out = malloc(n ? n : 1);
    if (!*out) {
        tjFree(buf);
        return vr_err_set(err, VR_ERR_SYS, NULL, 0, "out of memory");
    }
    memcpy(*out, buf, n);
    *len = n;
    tjFree(buf);
    return 0;
}

int vr_image_encode(const uint8_t *rgb, int w, int h, const struct vr_image_enc *enc, void **out,
                    size_t *len, struct vr_err *err)
{
    VR_ASSERT(w > 0 && h > 0);
    *out = NULL;
    *len = 0;
    if (enc->format == VR_IMAGE_PNG) return encode_png(rgb, w, h, enc->png_level, enc->png_unfiltered, out, len, err);
    VR_ASSERT(enc->format == VR_IMAGE_JPEG);
    return encode_jpeg(rgb, w, h, enc->jpeg_quality, out, len, err);
}

/* temp + rename, no fsync (VR_IMAGE_WRITE_NOSYNC) */
static int write_nosync(const char *path, const void *buf, size_t len, struct vr_err *err)
{
    char *tmp;
    int fd = vr_tmp_create(path, &tmp, err);
    if (fd < 0) return -1;
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            vr_err_sys(err, path, "write failed");
            goto fail;
        }
        p += w;
        len -= (size_t)w;
    }
    if (close(fd) != 0) {
        fd = -1;
        vr_err_sys(err, path, "close failed");
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        vr_err_sys(err, path, "rename failed");
        goto fail;
    }
    free(tmp);
    return 0;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    return -1;
}

int vr_image_write(const char *path, const uint8_t *rgb, int w, int h,
                   const struct vr_image_enc *enc, int flags, struct vr_err *err)
{
    void *buf;
    size_t len;
    if (vr_image_encode(rgb, w, h, enc, &buf, &len, err)) return vr_err_locate(err, path, 0);
    int rc = flags & VR_IMAGE_WRITE_NOSYNC ? write_nosync(path, buf, len, err)
                                           : vr_file_write_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

int vr_image_write_sync(const char *dir, struct vr_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return vr_err_sys(err, dir, "cannot open folder");
    int rc = syncfs(fd);
    close(fd);
    if (rc != 0) return vr_err_sys(err, dir, "syncfs failed");
    return 0;
}

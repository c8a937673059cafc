/* image.c: image sniffing, header probing and decoding (see image.h). JPEG
 * goes through libjpeg-turbo's TurboJPEG API, PNG through libspng; both are
 * driven so that the result is byte-identical to PIL's convert("RGB"). Used by
 * vr-prep (probe) and vr-encode (decode). */
#include "image.h"

#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "fs.h"

/* Format from the first bytes of a file (n >= 8 for a sure answer). */
static enum vr_image_format sniff(const unsigned char *p, size_t n)
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
    FILE *f = vr_file_open_regular(path, VR_IMAGE_MAX_FILE_BYTES, err);
    if (!f) return -1;
    unsigned char magic[8];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    size_t n = fread(magic, 1, sizeof magic, f);
    int rc;
    enum vr_image_format k = sniff(magic, n);
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

/* ---- decoding ---- */

void vr_image_release(struct vr_image *im)
{
    free(im->px);
    im->px = NULL;
    im->w = im->h = 0;
}

/* The size check every decoder makes from the header, before allocating. */
static int check_size(const char *name, const char *what, long long w, long long h,
                      int64_t max_pixels, struct vr_err *err)
{
    if (w <= 0 || h <= 0)
        return vr_err_set(err, VR_ERR_INPUT, name, 0, "%s has size %lldx%lld", what, w, h);
    if (max_pixels > 0 && w * h > max_pixels) {
        return vr_err_set(err, VR_ERR_INPUT, name, 0,
                          "%s is %lldx%lld = %lld pixels, over the --max-decode-pixels limit %lld",
                          what, w, h, w * h, (long long)max_pixels);
    }
    /* 4 bytes a pixel (CMYK) must fit a size_t and TurboJPEG's int pitch */
    if (w > (1 << 30) / 4 || (unsigned long long)(w * h) > SIZE_MAX / 4)
        return vr_err_set(err, VR_ERR_INPUT, name, 0, "%s is too large (%lldx%lld)", what, w, h);
    return 0;
}

/* PIL's cmyk2rgb on PIL's CMYK, which is libjpeg's output inverted (PIL reads
 * every CMYK JPEG with Adobe polarity, rawmode "CMYK;I"). With c = 255 - C and
 * k = 255 - K as libjpeg returns them: R = clip(k - muldiv255(255 - c, k)). */
static inline int muldiv255(int a, int b)
{
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

static void cmyk_to_rgb(uint8_t *rgb, const uint8_t *cmyk, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int nk = cmyk[4 * i + 3];
        for (int c = 0; c < 3; c++) {
            int v = nk - muldiv255(255 - cmyk[4 * i + c], nk);
            rgb[3 * i + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

static int decode_jpeg(const char *name, const unsigned char *data, size_t len,
                       int64_t max_pixels, struct vr_image *out, struct vr_err *err)
{
    tjhandle tj = tjInitDecompress();
    if (!tj) return vr_err_set(err, VR_ERR_SYS, name, 0, "cannot start the JPEG decoder");
    int w = 0, h = 0, ss, cs, rc = -1;
    uint8_t *px = NULL, *cmyk = NULL;
    if (len > (size_t)0x7fffffff) {
        vr_err_set(err, VR_ERR_INPUT, name, 0, "JPEG file is too large (%zu bytes)", len);
        goto out;
    }
    if (tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &ss, &cs) != 0 || w <= 0 ||
        h <= 0) {
        vr_err_set(err, VR_ERR_INPUT, name, 0, "corrupt JPEG header: %s",
                   w > 0 && h > 0 ? tjGetErrorStr2(tj) : "no frame size (truncated?)");
        goto out;
    }
    if (check_size(name, "JPEG", w, h, max_pixels, err)) goto out;
    size_t n = (size_t)w * (size_t)h;
    int is_cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    px = malloc(n * 3);
    if (is_cmyk) cmyk = malloc(n * 4);
    if (!px || (is_cmyk && !cmyk)) {
        vr_err_set(err, VR_ERR_SYS, name, 0, "out of memory decoding a %dx%d JPEG", w, h);
        goto out;
    }
    int r = is_cmyk ? tjDecompress2(tj, data, (unsigned long)len, cmyk, w, 0, h, TJPF_CMYK, 0)
                    : tjDecompress2(tj, data, (unsigned long)len, px, w, 0, h, TJPF_RGB, 0);
    if (r != 0) {
        const char *msg = tjGetErrorStr2(tj);
        /* libjpeg carries on after a warning, and so does PIL, except at the
         * end of the data: PIL refuses a truncated file ("image file is
         * truncated") where TurboJPEG pads it with grey and warns. */
        if (tjGetErrorCode(tj) != TJERR_WARNING) {
            vr_err_set(err, VR_ERR_INPUT, name, 0, "corrupt JPEG: %s", msg);
            goto out;
        }
        if (strstr(msg, "Premature end of JPEG file")) {
            vr_err_set(err, VR_ERR_INPUT, name, 0, "truncated JPEG: %s", msg);
            goto out;
        }
    }
    if (is_cmyk) cmyk_to_rgb(px, cmyk, n);
    out->w = w;
    out->h = h;
    out->px = px;
    px = NULL;
    rc = 0;
out:
    free(px);
    free(cmyk);
    tjDestroy(tj);
    return rc;
}

static int png_error(const char *name, int e, struct vr_err *err)
{
    if (e == SPNG_EOF || e == SPNG_IO_EOF)
        return vr_err_set(err, VR_ERR_INPUT, name, 0, "truncated PNG: %s", spng_strerror(e));
    return vr_err_set(err, VR_ERR_INPUT, name, 0, "corrupt PNG: %s", spng_strerror(e));
}

static int decode_png(const char *name, const unsigned char *data, size_t len,
                      int64_t max_pixels, struct vr_image *out, struct vr_err *err)
{
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx) return vr_err_set(err, VR_ERR_SYS, name, 0, "cannot start the PNG decoder");
    int rc = -1, e;
    uint8_t *px = NULL;
    uint16_t *g16 = NULL;
    struct spng_ihdr ihdr;
    /* ancillary chunks (text, ICC profiles) are not ours to buffer without bound */
    spng_set_chunk_limits(ctx, 1u << 26, 1u << 26);
    if ((e = spng_set_png_buffer(ctx, data, len)) || (e = spng_get_ihdr(ctx, &ihdr))) {
        vr_err_set(err, VR_ERR_INPUT, name, 0, "corrupt PNG header: %s", spng_strerror(e));
        goto out;
    }
    if (check_size(name, "PNG", ihdr.width, ihdr.height, max_pixels, err)) goto out;
    size_t n = (size_t)ihdr.width * ihdr.height;
    px = malloc(n * 3);
    if (!px) {
        vr_err_set(err, VR_ERR_SYS, name, 0, "out of memory decoding a %ux%u PNG", ihdr.width,
                   ihdr.height);
        goto out;
    }
    if (ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE && ihdr.bit_depth == 16) {
        /* PIL opens this as mode I;16 and its I;16 -> RGB conversion clips
         * each sample to 255, so most of such an image comes out white. */
        g16 = malloc(n * 2);
        if (!g16) {
            vr_err_set(err, VR_ERR_SYS, name, 0, "out of memory decoding a 16-bit PNG");
            goto out;
        }
        if ((e = spng_decode_image(ctx, g16, n * 2, SPNG_FMT_PNG, 0))) {
            png_error(name, e, err);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            uint8_t v = g16[i] > 255 ? 255 : (uint8_t)g16[i];
            px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = v;
        }
    } else {
        /* RGB8: palette looked up without tRNS, alpha dropped, low bit depths
         * scaled, 16-bit samples cut to their high byte: PIL's conversions. */
        size_t need;
        if ((e = spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &need))) {
            png_error(name, e, err);
            goto out;
        }
        VR_ASSERT(need == n * 3);
        if ((e = spng_decode_image(ctx, px, n * 3, SPNG_FMT_RGB8, 0))) {
            png_error(name, e, err);
            goto out;
        }
    }
    out->w = (int)ihdr.width;
    out->h = (int)ihdr.height;
    out->px = px;
    px = NULL;
    rc = 0;
out:
    free(px);
    free(g16);
    spng_ctx_free(ctx);
    return rc;
}

int vr_image_decode(const char *name, const void *data, size_t len, int64_t max_pixels,
                    struct vr_image *out, struct vr_err *err)
{
    out->w = out->h = 0;
    out->px = NULL;
    if (len == 0) return vr_err_set(err, VR_ERR_INPUT, name, 0, "image file is empty");
    switch (sniff(data, len)) {
    case VR_IMAGE_JPEG: return decode_jpeg(name, data, len, max_pixels, out, err);
    case VR_IMAGE_PNG: return decode_png(name, data, len, max_pixels, out, err);
    default: return vr_err_set(err, VR_ERR_INPUT, name, 0, "not a JPEG or PNG image");
    }
}

int vr_image_load(const char *path, int64_t max_pixels, struct vr_image *out,
                  struct vr_err *err)
{
    char *buf;
    size_t len;
    out->w = out->h = 0;
    out->px = NULL;
    if (vr_file_read_regular(path, VR_IMAGE_MAX_FILE_BYTES, &buf, &len, err)) return -1;
    int rc = vr_image_decode(path, buf, len, max_pixels, out, err);
    free(buf);
    return rc;
}

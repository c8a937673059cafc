/* draw.c: a grounding verdict drawn over its image as a PNG (see draw.h), for
 * vr-eval --draw. Not on any numeric path: the pixels fed to a model never
 * come through here.
 *
 * The picture is laid out in plain C (scale, margin, caption rows), the
 * image's pixels are written straight into a cairo RGB24 surface (no
 * premultiplied alpha to undo: every pixel is opaque), cairo fills the box
 * outlines and sets the caption, and the surface is copied back to RGB8 for
 * vr_image_write, so the file is written the way every other image of ours is
 * (temp + fsync + rename) rather than by cairo_surface_write_to_png. */
#include "draw.h"

#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "image_write.h"
#include "resample.h"

#define CAIRO_MAX_SIDE 32767 /* cairo refuses image surfaces larger than this */

struct rgb {
    uint8_t r, g, b;
};
static const struct rgb GOLD = {VR_DRAW_GOLD}, PRED = {VR_DRAW_PRED}, BAND = {VR_DRAW_BAND},
                        TEXT = {VR_DRAW_TEXT};

static void set_colour(cairo_t *cr, struct rgb c)
{
    cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0);
}

/* Where the image lands in the picture, and how it is scaled. */
struct layout {
    int sw, sh;   /* scaled image size */
    int k;        /* nearest-neighbour enlargement (1: none) */
    int shrink;   /* resampled down to sw x sh */
    int x0, y0;   /* the scaled image's top-left in the picture */
    int ow, ih;   /* picture width; height without the caption band */
};

static void plan(int w, int h, int max_side, struct layout *l)
{
    int side = w > h ? w : h;
    l->k = 1;
    l->shrink = 0;
    l->sw = w;
    l->sh = h;
    if (max_side > 0 && side > max_side) {
        double f = (double)max_side / side;
        l->shrink = 1;
        l->sw = (int)floor(w * f + 0.5);
        l->sh = (int)floor(h * f + 0.5);
        if (l->sw < 1) l->sw = 1;
        if (l->sh < 1) l->sh = 1;
    } else if (side < VR_DRAW_MIN_SIDE) {
        l->k = (VR_DRAW_MIN_SIDE + side - 1) / side;
        if (max_side > 0 && (long)side * l->k > max_side) l->k = max_side / side;
        if (l->k < 1) l->k = 1;
        l->sw = w * l->k;
        l->sh = h * l->k;
    }
    /* in long: a 2^31-pixel-wide image with max_side 0 must fail the size
     * check, not overflow */
    long ow = (long)l->sw + 2 * VR_DRAW_MARGIN;
    if (ow < VR_DRAW_MIN_WIDTH) ow = VR_DRAW_MIN_WIDTH;
    l->ow = ow > CAIRO_MAX_SIDE ? CAIRO_MAX_SIDE + 1 : (int)ow;
    long ih = (long)l->sh + 2 * VR_DRAW_MARGIN;
    l->ih = ih > CAIRO_MAX_SIDE ? CAIRO_MAX_SIDE + 1 : (int)ih;
    l->x0 = (l->ow - l->sw) / 2;
    l->y0 = VR_DRAW_MARGIN;
}

/* ---- caption ---- */

/* s as valid UTF-8 without control characters (malloc'ed): cairo refuses
 * invalid UTF-8 and would leave the context in an error state. */
static char *clean_utf8(const char *s)
{
    size_t n = strlen(s);
    char *out = vr_xmalloc(n + 1), *o = out;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s, *end = p + n;
    while (p < end) {
        utf8proc_int32_t c;
        utf8proc_ssize_t len = utf8proc_iterate(p, end - p, &c);
        if (len <= 0) {
            *o++ = '?';
            p++;
        } else if (c < 0x20 || (c >= 0x7f && c < 0xa0)) {
            *o++ = ' ';
            p += len;
        } else {
            memcpy(o, p, (size_t)len);
            o += len;
            p += len;
        }
    }
    *o = '\0';
    return out;
}

static double text_width(cairo_t *cr, char *s, size_t n)
{
    char keep = s[n];
    s[n] = '\0';
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    s[n] = keep;
    return e.x_advance;
}

/* Split the caption lines into rows no wider than width (as cr measures
 * them): at the last space that fits, or after the last character that fits
 * when a word alone is wider, and always at least one character per row.
 * Fills rows (malloc'ed strings) and returns how many, at most max. */
static int wrap(cairo_t *cr, const char *const *lines, double width, char **rows, int max)
{
    int n = 0;
    for (int i = 0; lines && lines[i] && n < max; i++) {
        char *s = clean_utf8(lines[i]), *p = s;
        int first = 1;
        while (n < max && (first || *p)) {
            if (!first)
                while (*p == ' ') p++;
            if (!first && !*p) break;
            first = 0;
            size_t len = strlen(p), fit;
            if (text_width(cr, p, len) <= width) {
                fit = len;
            } else {
                /* longest prefix at a character boundary that fits, at least one character */
                size_t b = 0, next = 0;
                do {
                    b = next;
                    next++;
                    while (next < len && ((unsigned char)p[next] & 0xc0) == 0x80) next++;
                } while (next <= len && (b == 0 || text_width(cr, p, next) <= width));
                fit = b;
                if (p[fit] != ' ') {
                    size_t sp = fit;
                    while (sp > 0 && p[sp] != ' ') sp--;
                    if (sp > 0) fit = sp;
                }
            }
            size_t keep = fit;
            while (keep > 0 && p[keep - 1] == ' ') keep--;
            rows[n] = vr_xmalloc(keep + 1);
            memcpy(rows[n], p, keep);
            rows[n][keep] = '\0';
            n++;
            p += fit;
        }
        free(s);
    }
    return n;
}

static void set_font(cairo_t *cr)
{
    /* fontconfig substitutes its default sans-serif when DejaVu is missing,
     * and cairo its built-in stroke font when there is no font at all */
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, VR_DRAW_FONT);
}

/* ---- boxes ---- */

/* The box in picture pixels, rounded to whole pixel edges and normalised;
 * coordinates far outside are pulled in to just beyond the clip (so that no
 * int overflows and what is out of sight stays out of sight). 0 when the box
 * has a NaN or infinite coordinate. */
static int place(const struct vr_draw_box *b, int w, int h, const struct layout *l, int q[4])
{
    double v[4] = {b->x1, b->y1, b->x2, b->y2};
    for (int i = 0; i < 4; i++) {
        if (!isfinite(v[i])) return 0;
        int y = i & 1;
        double f = y ? (double)l->sh / h : (double)l->sw / w;
        int o = y ? l->y0 : l->x0, n = y ? l->sh : l->sw;
        double lo = o - 4 * VR_DRAW_LINE, hi = o + n + 4 * VR_DRAW_LINE;
        double p = o + v[i] * f;
        if (!(p >= lo)) p = lo;
        if (p > hi) p = hi;
        q[i] = (int)floor(p + 0.5);
    }
    for (int i = 0; i < 2; i++)
        if (q[i + 2] < q[i]) {
            int t = q[i];
            q[i] = q[i + 2];
            q[i + 2] = t;
        }
    return 1;
}

/* Fill the pixels inside (a0, a1)-(a2, a3) and outside (b0, b1)-(b2, b3). */
static void ring(cairo_t *cr, int a0, int a1, int a2, int a3, int b0, int b1, int b2, int b3)
{
    cairo_new_path(cr);
    cairo_rectangle(cr, a0, a1, a2 - a0, a3 - a1);
    if (b2 > b0 && b3 > b1) cairo_rectangle(cr, b0, b1, b2 - b0, b3 - b1);
    cairo_fill(cr);
}

static void draw_boxes(cairo_t *cr, const struct vr_draw_spec *spec, int w, int h,
                       const struct layout *l)
{
    const int L = VR_DRAW_LINE;
    int q[4];
    cairo_save(cr);
    cairo_rectangle(cr, l->x0 - VR_DRAW_MARGIN, l->y0 - VR_DRAW_MARGIN, l->sw + 2 * VR_DRAW_MARGIN,
                    l->sh + 2 * VR_DRAW_MARGIN);
    cairo_clip(cr);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
    cairo_set_fill_rule(cr, CAIRO_FILL_RULE_EVEN_ODD);
    if (spec->gold && place(spec->gold, w, h, l, q)) {
        set_colour(cr, GOLD);
        ring(cr, q[0] - L, q[1] - L, q[2] + L, q[3] + L, q[0], q[1], q[2], q[3]);
    }
    if (spec->pred && place(spec->pred, w, h, l, q)) {
        /* an empty prediction still shows, as a 1-pixel mark */
        if (q[2] == q[0]) q[2]++;
        if (q[3] == q[1]) q[3]++;
        set_colour(cr, PRED);
        ring(cr, q[0], q[1], q[2], q[3], q[0] + L, q[1] + L, q[2] - L, q[3] - L);
    }
    cairo_restore(cr);
}

/* ---- the picture ---- */

/* Margin and band colour everywhere, the (enlarged) image at (x0, y0). */
static void paint_image(cairo_surface_t *s, const uint8_t *src, int src_w, const struct layout *l)
{
    cairo_surface_flush(s);
    unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s), H = cairo_image_surface_get_height(s);
    uint32_t bg = 0xff000000u | (uint32_t)BAND.r << 16 | (uint32_t)BAND.g << 8 | BAND.b;
    for (int y = 0; y < H; y++) {
        uint32_t *row = (uint32_t *)(data + (size_t)y * stride);
        int iy = y - l->y0;
        for (int x = 0; x < l->ow; x++) row[x] = bg;
        if (iy < 0 || iy >= l->sh) continue;
        const uint8_t *sr = src + (size_t)(iy / l->k) * src_w * 3;
        for (int ix = 0; ix < l->sw; ix++) {
            const uint8_t *p = sr + (size_t)(ix / l->k) * 3;
            row[l->x0 + ix] = 0xff000000u | (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        }
    }
    cairo_surface_mark_dirty(s);
}

static int cairo_failed(cairo_status_t st, const char *path, struct vr_err *err)
{
    if (st == CAIRO_STATUS_NO_MEMORY) return vr_err_set(err, VR_ERR_SYS, path, 0, "out of memory");
    return vr_err_set(err, VR_ERR_SYS, path, 0, "drawing failed: %s", cairo_status_to_string(st));
}

/* The caption's lines wrapped to width (rows malloc'ed, *nrows of them),
 * measured on a scratch surface. */
static int caption_rows(const struct vr_draw_spec *spec, double width, char **rows, int *nrows,
                        const char *path, struct vr_err *err)
{
    cairo_surface_t *ms = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *mc = cairo_create(ms);
    set_font(mc);
    *nrows = wrap(mc, spec->lines, width, rows, VR_DRAW_MAX_ROWS);
    cairo_status_t st = cairo_status(mc);
    cairo_destroy(mc);
    cairo_surface_destroy(ms);
    return st != CAIRO_STATUS_SUCCESS ? cairo_failed(st, path, err) : 0;
}

/* The RGB24 surface s as a PNG at path (vr_image_write's flags). */
static int write_surface(const char *path, cairo_surface_t *s, int flags, struct vr_err *err)
{
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb) return vr_err_set(err, VR_ERR_SYS, path, 0, "out of memory");
    const unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < h; y++) {
        const uint32_t *row = (const uint32_t *)(data + (size_t)y * stride);
        uint8_t *o = rgb + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) {
            o[3 * x] = (uint8_t)(row[x] >> 16);
            o[3 * x + 1] = (uint8_t)(row[x] >> 8);
            o[3 * x + 2] = (uint8_t)row[x];
        }
    }
    struct vr_image_enc enc = {.format = VR_IMAGE_PNG, .png_level = 6};
    int rc = vr_image_write(path, rgb, w, h, &enc, flags, err);
    free(rgb);
    return rc;
}

int vr_draw_png(const char *path, const struct vr_image *im, int max_side,
                const struct vr_draw_spec *spec, int flags, struct vr_err *err)
{
    VR_ASSERT(im && im->px && im->w > 0 && im->h > 0 && spec);
    if (max_side < 0)
        return vr_err_set(err, VR_ERR_USAGE, path, 0, "largest side %d is negative", max_side);
    struct layout l;
    plan(im->w, im->h, max_side, &l);
    if (l.ow > CAIRO_MAX_SIDE || l.ih > CAIRO_MAX_SIDE)
        return vr_err_set(err, VR_ERR_USAGE, path, 0,
                          "a %dx%d image is too large to draw (over %d pixels a side)", im->w,
                          im->h, CAIRO_MAX_SIDE);

    int rc = -1, nrows = 0;
    char *rows[VR_DRAW_MAX_ROWS];
    uint8_t *small = NULL;
    cairo_surface_t *s = NULL;
    cairo_t *cr = NULL;

    /* caption rows first: the band's height depends on them */
    cairo_status_t st;
    if (caption_rows(spec, l.ow - 2 * VR_DRAW_PAD, rows, &nrows, path, err)) goto out;
    int band = nrows ? 2 * VR_DRAW_PAD + nrows * VR_DRAW_ROW : 0, oh = l.ih + band;
    if (oh > CAIRO_MAX_SIDE) {
        vr_err_set(err, VR_ERR_USAGE, path, 0,
                   "a %dx%d image is too large to draw (over %d pixels a side)", im->w, im->h,
                   CAIRO_MAX_SIDE);
        goto out;
    }

    const uint8_t *src = im->px;
    int src_w = im->w;
    if (l.shrink) {
        small = malloc((size_t)l.sw * l.sh * 3);
        if (!small) {
            vr_err_set(err, VR_ERR_SYS, path, 0, "out of memory");
            goto out;
        }
        if (vr_resample(small, l.sw, l.sh, im->px, im->w, im->h, 3, VR_FILTER_BILINEAR,
                        VR_PILLOW_DEFAULT, err)) {
            vr_err_locate(err, path, 0);
            goto out;
        }
        src = small;
        src_w = l.sw;
    }

    s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, l.ow, oh);
    if ((st = cairo_surface_status(s)) != CAIRO_STATUS_SUCCESS) {
        cairo_failed(st, path, err);
        goto out;
    }
    paint_image(s, src, src_w, &l);
    cr = cairo_create(s);
    draw_boxes(cr, spec, im->w, im->h, &l);
    set_font(cr);
    set_colour(cr, TEXT);
    for (int i = 0; i < nrows; i++) {
        /* baseline 14 px into an 18 px row: room for a 14 px font's descent */
        cairo_move_to(cr, VR_DRAW_PAD, l.ih + VR_DRAW_PAD + i * VR_DRAW_ROW + VR_DRAW_ROW - 4);
        cairo_show_text(cr, rows[i]);
    }
    cairo_surface_flush(s);
    if ((st = cairo_status(cr)) != CAIRO_STATUS_SUCCESS) {
        cairo_failed(st, path, err);
        goto out;
    }

    rc = write_surface(path, s, flags, err);
out:
    for (int i = 0; i < nrows; i++) free(rows[i]);
    if (cr) cairo_destroy(cr);
    if (s) cairo_surface_destroy(s);
    free(small);
    return rc;
}

void vr_draw_shutdown(void)
{
    /* cairo's first: it holds fontconfig patterns that FcFini would pull out
     * from under it */
    cairo_debug_reset_static_data();
    FcFini();
}

/* draw.c: the verdict pictures of vr-eval --draw, read back through our own
 * PNG decoder: picture size, outline pixels exactly their colour and on the
 * documented side of the box edge, the image untouched elsewhere, caption
 * text present (also with no font installed: cairo's built-in font),
 * clipping, NaN and inverted boxes, enlarging and shrinking, and a path that
 * cannot be written. */
#include <cairo.h>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include "draw.h"
#include "image.h"

#include "../tap.h"

static const uint8_t GREEN[3] = {VR_DRAW_GOLD}, RED[3] = {VR_DRAW_PRED}, BAND[3] = {VR_DRAW_BAND},
                     GREY[3] = {128, 128, 128};

static char dir[] = "/tmp/vr-draw-XXXXXX";

static char *at(const char *name)
{
    static char buf[8][512];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static struct vr_image flat(int w, int h, const uint8_t c[3])
{
    struct vr_image im = {w, h, vr_xmalloc((size_t)w * h * 3)};
    for (int i = 0; i < w * h; i++) memcpy(im.px + 3 * i, c, 3);
    return im;
}

static const uint8_t *px(const struct vr_image *im, int x, int y)
{
    return im->px + ((size_t)y * im->w + x) * 3;
}

/* pixel (x, y) of im is exactly c */
static int is_px(const struct vr_image *im, int x, int y, const uint8_t c[3], const char *what)
{
    const uint8_t *p = px(im, x, y);
    int same = !memcmp(p, c, 3);
    if (!ok(same, "%s: (%d,%d) is %d,%d,%d", what, x, y, c[0], c[1], c[2]))
        diag("got %d,%d,%d", p[0], p[1], p[2]);
    return same;
}

/* pixels of colour c in rows [y0, y1) */
static long count(const struct vr_image *im, const uint8_t c[3], int y0, int y1)
{
    long n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < im->w; x++) n += !memcmp(px(im, x, y), c, 3);
    return n;
}

static int load(const char *path, struct vr_image *out)
{
    struct vr_err err;
    if (vr_image_load(path, 0, out, &err)) {
        diag("%s", err.msg);
        memset(out, 0, sizeof *out);
        return -1;
    }
    return 0;
}

static int draw(const char *name, const struct vr_image *im, int max_side,
                const struct vr_draw_box *gold, const struct vr_draw_box *pred,
                const char *const *lines, struct vr_image *out)
{
    struct vr_err err;
    struct vr_draw_spec spec = {gold, pred, lines};
    if (vr_draw_png(at(name), im, max_side, &spec, 0, &err)) {
        diag("%s", err.msg);
        memset(out, 0, sizeof *out);
        return -1;
    }
    return load(at(name), out);
}

static const struct vr_draw_box GOLD_BOX = {10, 10, 50, 40}, PRED_BOX = {30, 20, 90, 70};
static const char *const LINES[] = {"the grey square", "IoU 0.21 wrong", NULL};

/* The picture of the 100x80 grey image with both boxes and two lines, as
 * draw.h lays it out: enlarged x3 (100 < 256) to 300x240 at (2, 2) in a
 * 304-wide picture, 244 rows of image and margin, then a 2-row band of
 * 6 + 2*18 + 6 = 48 rows. Gold in picture pixels: (32,32)-(152,122), its
 * outline the 2 pixels outside; pred (92,62)-(272,212), the 2 inside. */
static void check_main(const struct vr_image *o, const char *what)
{
    char w[128];
    is_int(o->w, 304, "%s: width", what);
    is_int(o->h, 292, "%s: height with the caption band", what);
    if (o->w != 304 || o->h != 292) return;
    snprintf(w, sizeof w, "%s: gold top", what);
    is_px(o, 60, 30, GREEN, w);
    is_px(o, 60, 31, GREEN, w);
    snprintf(w, sizeof w, "%s: gold left", what);
    is_px(o, 30, 50, GREEN, w);
    is_px(o, 31, 50, GREEN, w);
    snprintf(w, sizeof w, "%s: gold right", what);
    is_px(o, 152, 50, GREEN, w);
    is_px(o, 153, 50, GREEN, w);
    snprintf(w, sizeof w, "%s: gold bottom", what);
    is_px(o, 60, 122, GREEN, w);
    is_px(o, 60, 123, GREEN, w);
    snprintf(w, sizeof w, "%s: gold outline is outside the box", what);
    is_px(o, 32, 50, GREY, w);
    is_px(o, 29, 50, GREY, w);
    is_px(o, 60, 32, GREY, w);
    snprintf(w, sizeof w, "%s: pred top", what);
    is_px(o, 200, 62, RED, w);
    is_px(o, 200, 63, RED, w);
    snprintf(w, sizeof w, "%s: pred left", what);
    is_px(o, 92, 150, RED, w);
    is_px(o, 93, 150, RED, w);
    snprintf(w, sizeof w, "%s: pred right", what);
    is_px(o, 270, 150, RED, w);
    is_px(o, 271, 150, RED, w);
    snprintf(w, sizeof w, "%s: pred bottom", what);
    is_px(o, 200, 210, RED, w);
    is_px(o, 200, 211, RED, w);
    snprintf(w, sizeof w, "%s: pred outline is inside the box", what);
    is_px(o, 91, 150, GREY, w);
    is_px(o, 94, 150, GREY, w);
    is_px(o, 272, 150, GREY, w);
    is_px(o, 200, 64, GREY, w);
    snprintf(w, sizeof w, "%s: pred over gold where they cross", what);
    is_px(o, 92, 122, RED, w);
    snprintf(w, sizeof w, "%s: inside both boxes the image is untouched", what);
    is_px(o, 122, 92, GREY, w);
    snprintf(w, sizeof w, "%s: margin", what);
    is_px(o, 0, 0, BAND, w);
    is_px(o, 303, 243, BAND, w);
    snprintf(w, sizeof w, "%s: band corner", what);
    is_px(o, 303, 291, BAND, w);
    long text = 0;
    for (int y = 244; y < 292; y++)
        for (int x = 0; x < 304; x++) text += memcmp(px(o, x, y), BAND, 3) != 0;
    ok(text > 50, "%s: caption drawn (%ld text pixels)", what, text);
    ok(count(o, GREEN, 244, 292) == 0 && count(o, RED, 244, 292) == 0,
       "%s: no outline in the caption band", what);
}

/* With no font at all (an empty fontconfig configuration), in a child so
 * that fontconfig starts up with it: the caption must still be drawn, in
 * cairo's built-in font. Exit 0: drawn with the built-in font; 1: drawing
 * failed; 2: a real font was found, so this case tested nothing. */
static int nofont_child(void)
{
    char conf[512];
    snprintf(conf, sizeof conf, "%s/empty.conf", dir);
    FILE *f = fopen(conf, "w");
    if (!f) return 1;
    fputs("<?xml version=\"1.0\"?>\n<fontconfig></fontconfig>\n", f);
    fclose(f);
    setenv("FONTCONFIG_FILE", conf, 1);
    struct vr_image im = flat(100, 80, GREY);
    struct vr_err err;
    struct vr_draw_spec spec = {&GOLD_BOX, &PRED_BOX, LINES};
    if (vr_draw_png(at("nofont.png"), &im, 0, &spec, 0, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    /* the same font selection as draw.c, asked directly what it resolved to */
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *cr = cairo_create(s);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    int type = cairo_scaled_font_get_type(cairo_get_scaled_font(cr));
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    free(im.px);
    return type == CAIRO_FONT_TYPE_USER ? 0 : 2;
}

int main(void)
{
    if (!mkdtemp(dir)) skip_all("cannot make a temporary folder");

    /* first, before this process starts fontconfig */
    pid_t pid = fork();
    if (pid == 0) _exit(nofont_child());
    int status = -1;
    waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    ok(code == 0, "no fonts installed: drawn with cairo's built-in font (child exit %d)", code);
    struct vr_image o;
    if (code == 0 && load(at("nofont.png"), &o) == 0) {
        check_main(&o, "no fonts");
        vr_image_release(&o);
    }

    struct vr_image grey = flat(100, 80, GREY);
    if (draw("main.png", &grey, 0, &GOLD_BOX, &PRED_BOX, LINES, &o) == 0) {
        check_main(&o, "main");
        vr_image_release(&o);
    }

    /* the same box given inverted draws the same picture */
    struct vr_draw_box inv = {90, 70, 30, 20};
    if (draw("inverted.png", &grey, 0, &GOLD_BOX, &inv, LINES, &o) == 0) {
        check_main(&o, "inverted pred");
        vr_image_release(&o);
    }

    /* boxes wholly outside: nothing drawn, the image untouched */
    struct vr_draw_box far = {200, 200, 300, 300}, neg = {-50, -50, -10, -10};
    if (draw("outside.png", &grey, 0, &far, &neg, LINES, &o) == 0) {
        ok(count(&o, GREEN, 0, o.h) == 0 && count(&o, RED, 0, o.h) == 0,
           "boxes wholly outside: no outline pixel");
        is_int(count(&o, GREY, 0, 244), 300 * 240, "boxes wholly outside: image untouched");
        vr_image_release(&o);
    }

    /* partly outside, by an absurd amount: the visible edges only. A gold box
     * on the image's edges shows in the margin. */
    struct vr_draw_box wide = {-1e300, 0, 1e300, 40}, whole = {0, 0, 100, 80};
    if (draw("partly.png", &grey, 0, &whole, &wide, NULL, &o) == 0) {
        is_int(o.h, 244, "no caption lines: no band");
        is_px(&o, 150, 2, RED, "partly outside: top edge drawn");
        is_px(&o, 150, 121, RED, "partly outside: bottom edge drawn");
        is_px(&o, 2, 60, GREY, "partly outside: left edge is out of sight");
        is_px(&o, 301, 60, GREY, "partly outside: right edge is out of sight");
        is_px(&o, 0, 0, GREEN, "gold on the image's edges: in the margin, top left");
        is_px(&o, 303, 243, GREEN, "gold on the image's edges: in the margin, bottom right");
        is_px(&o, 2, 122, GREY, "gold on the image's edges: the image untouched");
        vr_image_release(&o);
    }

    /* NaN and infinity: skipped, not drawn, no failure */
    struct vr_draw_box nan_box = {NAN, 10, 50, 40}, inf_box = {30, INFINITY, 90, 70};
    if (draw("nan.png", &grey, 0, &nan_box, &inf_box, LINES, &o) == 0) {
        ok(count(&o, GREEN, 0, o.h) == 0 && count(&o, RED, 0, o.h) == 0,
           "NaN and infinite boxes: not drawn");
        vr_image_release(&o);
    }

    /* long lines wrap into more rows; bad UTF-8 and control characters are
     * no failure */
    char longw[400];
    for (int i = 0; i < 399; i++) longw[i] = 'm';
    longw[399] = '\0';
    const char *const many[] = {
        "the small green triangle to the left of the big blue circle above the red square, "
        "which is next to the yellow star near the bottom edge of the picture",
        longw, "bad \xff\xfe utf-8\tand\na newline", "", NULL};
    if (draw("wrap.png", &grey, 0, &GOLD_BOX, NULL, many, &o) == 0) {
        int band = o.h - 244 - 2 * VR_DRAW_PAD;
        ok(band % VR_DRAW_ROW == 0 && band / VR_DRAW_ROW >= 2 + 2 + 1 + 1,
           "long lines wrap (%d rows for 4 lines)", band / VR_DRAW_ROW);
        vr_image_release(&o);
    }

    /* a path that cannot be written: an error naming it, nothing left behind */
    struct vr_err err;
    struct vr_draw_spec spec = {&GOLD_BOX, &PRED_BOX, LINES};
    err.msg[0] = '\0';
    ok(vr_draw_png(at("nodir/x.png"), &grey, 0, &spec, 0, &err) == -1 &&
           strstr(err.msg, "nodir/x.png") != NULL,
       "unwritable path: error names it (%s)", err.msg);
    ok(vr_draw_png(at("neg.png"), &grey, -1, &spec, 0, &err) == -1 && err.kind == VR_ERR_USAGE,
       "negative max_side: usage error (%s)", err.msg);

    /* tiny: 20x20 enlarged x13 (ceil(256/20)), each pixel a 13x13 block */
    struct vr_image tiny = flat(20, 20, GREY);
    for (int y = 0; y < 20; y++)
        for (int x = 0; x < 20; x++) {
            uint8_t *p = tiny.px + (y * 20 + x) * 3;
            p[0] = (uint8_t)(x * 12);
            p[1] = (uint8_t)(y * 12);
            p[2] = 77;
        }
    if (draw("tiny.png", &tiny, 0, NULL, NULL, NULL, &o) == 0) {
        is_int(o.w, 20 * 13 + 4, "tiny: width");
        is_int(o.h, 20 * 13 + 4, "tiny: height");
        int bad = 0;
        for (int y = 0; y < 260 && o.w == 264 && o.h == 264; y++)
            for (int x = 0; x < 260; x++)
                bad += memcmp(px(&o, 2 + x, 2 + y), tiny.px + ((y / 13) * 20 + x / 13) * 3, 3) != 0;
        is_int(bad, 0, "tiny: nearest-neighbour blocks");
        vr_image_release(&o);
    }
    /* ... but not past max_side: 20 * 13 > 100, so x5 */
    if (draw("tiny100.png", &tiny, 100, NULL, NULL, NULL, &o) == 0) {
        is_int(o.w, 256, "tiny, max_side 100: the narrowest picture");
        is_int(o.h, 20 * 5 + 4, "tiny, max_side 100: enlarged x5");
        vr_image_release(&o);
    }

    /* large: 1000x500 shrunk to 200x100, centred in the 256-wide picture at
     * x0 = 28; gold (0,0)-(500,500) becomes (28,2)-(128,102) */
    struct vr_image big = flat(1000, 500, GREY);
    struct vr_draw_box half = {0, 0, 500, 500};
    if (draw("big.png", &big, 200, &half, NULL, LINES, &o) == 0) {
        is_int(o.w, 256, "shrunk: width");
        is_int(o.h, 104 + 48, "shrunk: height");
        is_px(&o, 26, 50, GREEN, "shrunk: gold left");
        is_px(&o, 128, 50, GREEN, "shrunk: gold right");
        is_px(&o, 28, 50, GREY, "shrunk: image");
        is_px(&o, 27 + 201, 50, BAND, "shrunk: margin right of the image");
        vr_image_release(&o);
    }

    /* after vr_draw_shutdown, drawing starts cairo and fontconfig afresh */
    vr_draw_shutdown();
    if (draw("again.png", &grey, 0, &GOLD_BOX, &PRED_BOX, LINES, &o) == 0) {
        ok(o.w == 304 && o.h == 292 && !memcmp(px(&o, 60, 30), GREEN, 3) &&
               count(&o, BAND, 244, 292) < 304 * 48 - 50,
           "drawn again after vr_draw_shutdown");
        vr_image_release(&o);
    }

    /* no temporary files left; clean up */
    DIR *d = opendir(dir);
    int tmp = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strstr(e->d_name, ".tmp.")) tmp++;
        if (e->d_name[0] != '.') unlink(at(e->d_name));
    }
    if (d) closedir(d);
    ok(tmp == 0, "no temporary file left (%d)", tmp);
    rmdir(dir);
    free(grey.px);
    free(tiny.px);
    free(big.px);
    vr_draw_shutdown();
    return done_testing();
}

/* synth.c: synthetic scenes: exact boxes (each target drawn alone on a blank
 * canvas has exactly its box as the tight bound of its pixels, and the full
 * scene shows the same pixels), the expression picks out the target and
 * needs every word, split properties (held-out pairs, phrasings, backgrounds,
 * aspect ratios), determinism, odd sizes, and the image encoders. */
#include <spng.h>
#include <turbojpeg.h>

#include "image_write.h"
#include "synth.h"

#include "../tap.h"

static const uint8_t BLANK[3] = {1, 2, 3}; /* no background or named colour is this */

static const char *const ood_phrases[] = {"on the left side of", "on the right side of",
                                          "higher up than", "beneath", "from the right",
                                          "from the bottom", "rightmost", "bottommost"};
static const char *const train_phrases[] = {" left of ", " right of ", " above ", " below ",
                                            "from the left", "from the top", "leftmost",
                                            "topmost"};

static int has_any(const char *s, const char *const *v, int n)
{
    for (int i = 0; i < n; i++)
        if (strstr(s, v[i])) return 1;
    return 0;
}

struct stats {
    int n, bad_make, bad_box, bad_ref, bad_scene_pixels, bad_resolve, not_needed, overlap, outside,
        held_in_train, target_not_held, bad_bg, bad_aspect, bad_phrase, max_attempts;
    int kinds[VR_EXPR_COUNT], bgs[VR_BG_COUNT];
    int pairs[VR_COLOUR_COUNT][VR_SHAPE_COUNT];
};

/* Tight bound of the pixels of rgb that differ from BLANK; 0 if none. */
static int tight_bound(const uint8_t *rgb, int w, int h, int b[4])
{
    b[0] = w, b[1] = h, b[2] = -1, b[3] = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (!memcmp(rgb + ((size_t)y * w + x) * 3, BLANK, 3)) continue;
            if (x < b[0]) b[0] = x;
            if (y < b[1]) b[1] = y;
            if (x + 1 > b[2]) b[2] = x + 1;
            if (y + 1 > b[3]) b[3] = y + 1;
        }
    return b[2] >= 0;
}

/* Dropping any part of the expression must leave it ambiguous. */
static int needed(const struct vr_synth_scene *sc)
{
    struct vr_synth_scene c = *sc;
    if (sc->kind == VR_EXPR_ATTRIBUTE) {
        int *f[3] = {&c.desc.shape, &c.desc.colour, &c.desc.size};
        for (int k = 0; k < 3; k++) {
            if (*f[k] < 0) continue;
            int keep = *f[k];
            *f[k] = -1;
            if (vr_synth_resolve(&c) >= 0) return 0;
            *f[k] = keep;
        }
        return 1;
    }
    /* relations and ordinals: the description alone fits several objects */
    c.kind = VR_EXPR_ATTRIBUTE;
    return vr_synth_resolve(&c) < 0;
}

static void check_scene(struct stats *st, const struct vr_synth_scene *sc, int bw, int bh,
                        uint8_t *alone, uint8_t *full, int pixels)
{
    st->n++;
    const struct vr_synth_object *t = &sc->obj[sc->target];
    if (sc->attempts > st->max_attempts) st->max_attempts = sc->attempts;
    st->kinds[sc->kind]++;
    st->bgs[sc->bg]++;
    st->pairs[t->colour][t->shape]++;
    if (vr_synth_resolve(sc) != sc->target) st->bad_resolve++;
    if (!needed(sc)) st->not_needed++;
    for (int i = 0; i < sc->nobj; i++) {
        const int *a = sc->obj[i].box;
        if (a[0] < 0 || a[1] < 0 || a[2] > sc->w || a[3] > sc->h || a[0] >= a[2] || a[1] >= a[3])
            st->outside++;
        for (int j = i + 1; j < sc->nobj; j++) {
            const int *b = sc->obj[j].box;
            if (!(a[2] < b[0] || b[2] < a[0] || a[3] < b[1] || b[3] < a[1])) st->overlap++;
        }
        if (sc->split != VR_SPLIT_OOD && vr_synth_held_out(sc->obj[i].colour, sc->obj[i].shape))
            st->held_in_train++;
    }
    int ood = sc->split == VR_SPLIT_OOD;
    if (ood && !vr_synth_held_out(t->colour, t->shape)) st->target_not_held++;
    if (ood != (sc->bg == VR_BG_CHECKER || sc->bg == VR_BG_GRADIENT)) st->bad_bg++;
    if (ood ? (long)sc->w * bh == (long)sc->h * bw : (sc->w != bw || sc->h != bh)) st->bad_aspect++;
    if (ood ? (sc->kind != VR_EXPR_ATTRIBUTE && !has_any(sc->expr, ood_phrases, 8)) ||
                  has_any(sc->expr, train_phrases, 8)
            : has_any(sc->expr, ood_phrases, 8))
        st->bad_phrase++;
    if (!pixels) return;
    /* the target alone on a blank canvas: its pixels' tight bound is its box */
    vr_synth_render(sc, alone, sc->target, BLANK);
    int b[4];
    if (!tight_bound(alone, sc->w, sc->h, b) || memcmp(b, t->box, sizeof b)) {
        if (st->bad_box++ < 5)
            diag("%s/%llu '%s': box [%d %d %d %d], drawn pixels [%d %d %d %d]",
                 vr_synth_split_names[sc->split], (unsigned long long)sc->index, sc->expr,
                 t->box[0], t->box[1], t->box[2], t->box[3], b[0], b[1], b[2], b[3]);
    }
    /* the drawn pixels are the reference coverage test's, pixel by pixel, in a
     * margin around the shape's vertex bounds (outside them nothing can be covered) */
    for (int y = t->loose[1] - 2; y < t->loose[3] + 2; y++)
        for (int x = t->loose[0] - 2; x < t->loose[2] + 2; x++) {
            if (x < 0 || y < 0 || x >= sc->w || y >= sc->h) continue;
            int drawn = memcmp(alone + ((size_t)y * sc->w + x) * 3, BLANK, 3) != 0;
            if (drawn != vr_synth_covers(t, x, y)) {
                st->bad_ref++;
                y = t->loose[3] + 2;
                break;
            }
        }
    /* in the whole scene, the box holds exactly those pixels in the target's colour */
    vr_synth_render(sc, full, -1, NULL);
    const uint8_t *c = vr_synth_rgb[t->colour];
    int bad = 0;
    for (int y = t->box[1] - 1; y <= t->box[3] && !bad; y++)
        for (int x = t->box[0] - 1; x <= t->box[2]; x++) {
            if (x < 0 || y < 0 || x >= sc->w || y >= sc->h) continue;
            size_t k = ((size_t)y * sc->w + x) * 3;
            int mine = memcmp(alone + k, BLANK, 3) != 0, coloured = memcmp(full + k, c, 3) == 0;
            if (mine != coloured) bad = 1;
        }
    st->bad_scene_pixels += bad;
}

static void run_split(enum vr_synth_split split, int n, int w, int h, int pixels, const char *what,
                      struct stats *st)
{
    memset(st, 0, sizeof *st);
    size_t cap = (size_t)4 * w * h * 3;
    uint8_t *alone = malloc(cap), *full = malloc(cap);
    struct vr_synth_scene sc;
    struct vr_err err;
    for (int i = 0; i < n; i++) {
        if (vr_synth_scene_make(&sc, 7, split, (uint64_t)i, w, h, NULL, &err)) {
            if (st->bad_make++ < 3) diag("%s", err.msg);
            continue;
        }
        VR_ASSERT((size_t)sc.w * sc.h * 3 <= cap);
        check_scene(st, &sc, w, h, alone, full, pixels);
    }
    free(alone);
    free(full);
    const char *s = vr_synth_split_names[split];
    is_int(st->bad_make, 0, "%s %s: all %d scenes fit (at most %d layouts tried)", s, what, n,
           st->max_attempts);
    is_int(st->bad_resolve, 0, "%s %s: every expression picks out its target", s, what);
    is_int(st->not_needed, 0, "%s %s: every part of every expression is needed", s, what);
    is_int(st->outside + st->overlap, 0, "%s %s: boxes inside the image, never touching", s, what);
    if (pixels) {
        is_int(st->bad_box, 0, "%s %s: target drawn alone: tight bound of its pixels == box", s,
               what);
        is_int(st->bad_ref, 0, "%s %s: drawn pixels == the per-pixel reference coverage test", s,
               what);
        is_int(st->bad_scene_pixels, 0, "%s %s: in the scene the box holds just those pixels", s,
               what);
    }
    if (split == VR_SPLIT_OOD) {
        is_int(st->target_not_held, 0, "%s %s: every target is a held-out pair", s, what);
    } else {
        is_int(st->held_in_train, 0, "%s %s: no held-out pair anywhere", s, what);
    }
    is_int(st->bad_bg, 0, "%s %s: backgrounds of the split", s, what);
    is_int(st->bad_aspect, 0, "%s %s: sizes of the split", s, what);
    is_int(st->bad_phrase, 0, "%s %s: phrasings of the split", s, what);
}

static void test_splits(void)
{
    struct stats st;
    run_split(VR_SPLIT_TRAIN, 1500, 336, 336, 1, "336x336", &st);
    int kinds_ok = 1, bgs_ok = 1, pairs_ok = 1;
    for (int k = 0; k < VR_EXPR_COUNT; k++) kinds_ok &= st.kinds[k] > st.n / 8;
    for (int b = 0; b < 3; b++) bgs_ok &= st.bgs[b] > st.n / 5;
    for (int c = 0; c < VR_COLOUR_COUNT; c++)
        for (int s = 0; s < VR_SHAPE_COUNT; s++)
            if (!vr_synth_held_out(c, s)) pairs_ok &= st.pairs[c][s] > 0;
    ok(kinds_ok, "train: every kind of expression is common (%d attribute, %d relation, %d ordinal)",
       st.kinds[0], st.kinds[1], st.kinds[2]);
    ok(bgs_ok, "train: plain, noisy and striped backgrounds are all common (%d %d %d)", st.bgs[0],
       st.bgs[1], st.bgs[2]);
    ok(pairs_ok, "train: every one of the 56 allowed colour-shape pairs is a target");
    run_split(VR_SPLIT_VAL, 300, 336, 336, 1, "336x336", &st);
    run_split(VR_SPLIT_OOD, 1000, 336, 336, 1, "336x336", &st);
    ok(st.bgs[VR_BG_CHECKER] > 0 && st.bgs[VR_BG_GRADIENT] > 0, "ood: checker and gradient both used");
    int held = 0;
    for (int c = 0; c < VR_COLOUR_COUNT; c++)
        for (int s = 0; s < VR_SHAPE_COUNT; s++) held += st.pairs[c][s] > 0;
    is_int(held, 8, "ood: all 8 held-out pairs are targets");
    /* odd sizes: the smallest, the longest, not multiples of 28 */
    static const int sizes[][2] = {{48, 48}, {144, 48}, {48, 144}, {250, 170}, {640, 480}};
    for (unsigned k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        char what[32];
        snprintf(what, sizeof what, "%dx%d", sizes[k][0], sizes[k][1]);
        for (int s = 0; s < VR_SPLIT_COUNT; s += 2)
            run_split(s, 300, sizes[k][0], sizes[k][1], 1, what, &st);
    }
}

static void test_sizes(void)
{
    int w, h, all28 = 1, other = 1;
    for (uint64_t i = 0; i < 200; i++) {
        vr_synth_scene_size(VR_SPLIT_OOD, 3, i, 336, 336, &w, &h);
        all28 &= w % 28 == 0 && h % 28 == 0 && w != h;
        vr_synth_scene_size(VR_SPLIT_OOD, 3, i, 250, 170, &w, &h);
        other &= w % 2 == 0 && h % 2 == 0 && w * 170 != h * 250;
    }
    ok(all28, "ood sizes from 336x336 are multiples of 28 with another aspect ratio");
    ok(other, "ood sizes from 250x170 are even with another aspect ratio");
    vr_synth_scene_size(VR_SPLIT_TRAIN, 3, 5, 336, 224, &w, &h);
    ok(w == 336 && h == 224, "train keeps the base size");
}

static void test_determinism(void)
{
    struct vr_synth_scene a, b;
    struct vr_err err;
    int same = 1, differ = 0;
    uint8_t *p = malloc(500 * 500 * 3), *q = malloc(500 * 500 * 3);
    for (uint64_t i = 0; i < 60; i++) {
        enum vr_synth_split s = (enum vr_synth_split)(i % 3);
        vr_synth_scene_make(&a, 11, s, i, 336, 336, NULL, &err);
        vr_synth_scene_make(&b, 11, s, i, 336, 336, NULL, &err);
        same &= memcmp(&a, &b, sizeof a) == 0;
        vr_synth_render(&a, p, -1, NULL);
        vr_synth_render(&b, q, -1, NULL);
        same &= memcmp(p, q, (size_t)a.w * a.h * 3) == 0;
        vr_synth_scene_make(&b, 12, s, i, 336, 336, NULL, &err);
        differ += strcmp(a.expr, b.expr) != 0 || memcmp(a.obj[a.target].box, b.obj[b.target].box, 16);
    }
    ok(same, "same (seed, split, index): same scene, same pixels");
    ok(differ > 50, "another seed: other scenes (%d of 60 differ)", differ);
    /* pinned: the first train scene of seed 1 does not change by accident */
    vr_synth_scene_make(&a, 1, VR_SPLIT_TRAIN, 0, 336, 336, NULL, &err);
    is_str(a.expr, "the small red cross", "seed 1 train/0 expression is pinned");
    ok(a.obj[a.target].box[0] == 220 && a.obj[a.target].box[1] == 134 &&
           a.obj[a.target].box[2] == 250 && a.obj[a.target].box[3] == 164,
       "seed 1 train/0 box is pinned");
    free(p);
    free(q);
}

static void test_norm(void)
{
    int box[4] = {0, 1, 335, 336}, n[4];
    vr_synth_box_norm(box, 336, 336, n);
    ok(n[0] == 0 && n[1] == 3 && n[2] == 997 && n[3] == 1000, "normalised box (%d %d %d %d)", n[0],
       n[1], n[2], n[3]);
    int half[4] = {1, 1, 3, 3};
    vr_synth_box_norm(half, 8, 2000, n); /* 125 exactly; 0.5 rounds up */
    ok(n[0] == 125 && n[1] == 1 && n[2] == 375 && n[3] == 2, "rounding half up (%d %d %d %d)", n[0],
       n[1], n[2], n[3]);
}

static void test_encode(void)
{
    struct vr_synth_scene sc;
    struct vr_err err;
    vr_synth_scene_make(&sc, 5, VR_SPLIT_OOD, 3, 336, 336, NULL, &err);
    size_t n = (size_t)sc.w * sc.h * 3;
    uint8_t *rgb = malloc(n), *back = malloc(n);
    vr_synth_render(&sc, rgb, -1, NULL);
    for (int unf = 0; unf < 2; unf++) {
        struct vr_image_enc enc = {.format = VR_IMAGE_PNG, .png_level = 1, .png_unfiltered = unf};
        void *buf;
        size_t len;
        ok(vr_image_encode(rgb, sc.w, sc.h, &enc, &buf, &len, &err) == 0, "PNG encodes");
        spng_ctx *ctx = spng_ctx_new(0);
        spng_set_png_buffer(ctx, buf, len);
        struct spng_ihdr ih;
        int e = spng_get_ihdr(ctx, &ih);
        if (!e) e = spng_decode_image(ctx, back, n, SPNG_FMT_RGB8, 0);
        ok(!e && ih.width == (uint32_t)sc.w && ih.height == (uint32_t)sc.h && !memcmp(rgb, back, n),
           "PNG (%s) decodes to the same pixels (%zu bytes)", unf ? "unfiltered" : "filtered", len);
        spng_ctx_free(ctx);
        free(buf);
    }
    struct vr_image_enc enc = {.format = VR_IMAGE_JPEG, .jpeg_quality = 95};
    void *buf;
    size_t len;
    ok(vr_image_encode(rgb, sc.w, sc.h, &enc, &buf, &len, &err) == 0, "JPEG encodes");
    tjhandle tj = tjInitDecompress();
    int jw = 0, jh = 0, ss = -1, cs;
    int e = tjDecompressHeader3(tj, buf, (unsigned long)len, &jw, &jh, &ss, &cs);
    if (!e) e = tjDecompress2(tj, buf, (unsigned long)len, back, jw, 0, jh, TJPF_RGB, 0);
    long maxd = 0;
    for (size_t i = 0; !e && i < n; i++) {
        long d = labs((long)rgb[i] - back[i]);
        if (d > maxd) maxd = d;
    }
    ok(!e && jw == sc.w && jh == sc.h && ss == TJSAMP_444 && maxd < 64,
       "JPEG decodes at size, 4:4:4, close to the pixels (max diff %ld, %zu bytes)", maxd, len);
    tjDestroy(tj);
    free(buf);
    free(rgb);
    free(back);
}

/* The reasoning caption: the expression, the target's attributes, and the
 * third of the image its box's centre lies in, recomputed here from the box. */
static int think_ok(const struct vr_synth_scene *sc)
{
    const struct vr_synth_object *t = &sc->obj[sc->target];
    static const char *const rows[3] = {"top", "middle", "bottom"}, *const cols[3] = {"left", "centre", "right"};
    double cx = (t->box[0] + t->box[2]) / 2.0 / sc->w, cy = (t->box[1] + t->box[3]) / 2.0 / sc->h;
    int c = cx < 1 / 3.0 ? 0 : cx < 2 / 3.0 ? 1 : 2, r = cy < 1 / 3.0 ? 0 : cy < 2 / 3.0 ? 1 : 2;
    char want[256], where[32];
    if (r == 1 && c == 1) snprintf(where, sizeof where, "centre");
    else if (r == 1) snprintf(where, sizeof where, "%s", cols[c]);
    else if (c == 1) snprintf(where, sizeof where, "%s", rows[r]);
    else snprintf(where, sizeof where, "%s %s", rows[r], cols[c]);
    snprintf(want, sizeof want, "%s: a %s %s %s, %s", sc->expr, vr_synth_size_names[t->size],
             vr_synth_colour_names[t->colour], vr_synth_shape_names[t->shape], where);
    if (strcmp(want, sc->think) == 0) return 1;
    diag("think '%s', want '%s'", sc->think, want);
    return 0;
}

static void test_knobs(void)
{
    struct vr_err err;
    struct vr_synth_knobs k = {.max_objects = 1, .kinds = 1u << VR_EXPR_ATTRIBUTE,
                               .bgs = 1u << VR_BG_POSITION, .ood_bgs = 1u << VR_BG_POSITION,
                               .sizes = 1u << VR_SIZE_MEDIUM | 1u << VR_SIZE_LARGE};
    ok(vr_synth_knobs_check(&k, &err) == 0, "one object, attribute, position, medium+large: valid");
    struct vr_synth_scene sc;
    int made = 0, one = 0, bg = 0, size = 0, resolve = 0, think = 0, held = 0, pos = 0;
    uint8_t *rgb = malloc(300 * 300 * 3);
    for (int i = 0; i < 300; i++) {
        enum vr_synth_split s = i % 3 ? VR_SPLIT_TRAIN : VR_SPLIT_OOD;
        if (vr_synth_scene_make(&sc, 3, s, (uint64_t)i, 112, 112, &k, &err)) continue;
        made++;
        one += sc.nobj == 1 && sc.kind == VR_EXPR_ATTRIBUTE;
        bg += sc.bg == VR_BG_POSITION;
        size += sc.obj[sc.target].size != VR_SIZE_SMALL;
        resolve += vr_synth_resolve(&sc) == sc.target;
        think += think_ok(&sc);
        held += (s == VR_SPLIT_OOD) == vr_synth_held_out(sc.obj[sc.target].colour, sc.obj[sc.target].shape);
        /* a background pixel: red and green say where it is */
        vr_synth_render(&sc, rgb, -1, NULL);
        int x = 0, y = sc.h - 1;
        const int *b = sc.obj[0].box;
        if (x >= b[0] && x < b[2] && y >= b[1] && y < b[3]) x = sc.w - 1;
        const uint8_t *p = rgb + ((size_t)y * sc.w + x) * 3;
        pos += p[0] == 160 + x * 90 / (sc.w - 1) && p[1] == 160 + y * 90 / (sc.h - 1);
    }
    free(rgb);
    is_int(made, 300, "knobs: every scene fits");
    is_int(one, 300, "knobs: one object, an attribute expression");
    is_int(bg, 300, "knobs: the position background in train and ood");
    is_int(pos, 300, "knobs: position background: red = 160 + 90 x / (w - 1), green the same of y");
    is_int(size, 300, "knobs: targets medium or large");
    is_int(resolve, 300, "knobs: the expression still picks out the target");
    is_int(held, 300, "knobs: held-out pairs in ood only");
    is_int(think, 300, "knobs: reasoning captions name the target and its third of the image");
    /* two objects: relations cannot fit; ordinals can */
    struct vr_synth_knobs two = {.max_objects = 2};
    ok(vr_synth_knobs_check(&two, &err) != 0 && strstr(err.msg, "relation"),
       "two objects and every kind: refused, naming relations (%s)", err.msg);
    two.kinds = 1u << VR_EXPR_ORDINAL | 1u << VR_EXPR_ATTRIBUTE;
    ok(vr_synth_knobs_check(&two, &err) == 0, "two objects, attribute and ordinal: valid");
    int within = 1, ords = 0;
    for (int i = 0; i < 200; i++) {
        if (vr_synth_scene_make(&sc, 4, VR_SPLIT_VAL, (uint64_t)i, 224, 224, &two, &err)) {
            within = 0;
            continue;
        }
        within &= sc.nobj <= 2 && vr_synth_resolve(&sc) == sc.target;
        ords += sc.kind == VR_EXPR_ORDINAL;
    }
    ok(within && ords > 50, "two objects: at most two, resolvable, ordinals common (%d)", ords);
    /* the default mix is what no knobs give, scene for scene */
    struct vr_synth_knobs none = {0};
    struct vr_synth_scene a, b;
    int same = 1, thinks = 1;
    for (int i = 0; i < 60; i++) {
        vr_synth_scene_make(&a, 9, (enum vr_synth_split)(i % 3), (uint64_t)i, 336, 336, NULL, &err);
        vr_synth_scene_make(&b, 9, (enum vr_synth_split)(i % 3), (uint64_t)i, 336, 336, &none, &err);
        same &= memcmp(&a, &b, sizeof a) == 0;
        thinks &= think_ok(&a);
    }
    ok(same, "all-zero knobs are the default mix");
    ok(thinks, "default mix: reasoning captions right too");
    unsigned m;
    ok(vr_synth_mask_parse("plain,position", vr_synth_bg_names, VR_BG_COUNT, "--backgrounds", &m, &err) == 0 &&
           m == (1u << VR_BG_PLAIN | 1u << VR_BG_POSITION),
       "mask parse: plain,position");
    ok(vr_synth_mask_parse("plain,,x", vr_synth_bg_names, VR_BG_COUNT, "--backgrounds", &m, &err) != 0 &&
           strstr(err.msg, "unknown name ''"),
       "mask parse: an empty name is refused (%s)", err.msg);
}

int main(void)
{
    test_knobs();
    test_sizes();
    test_norm();
    test_determinism();
    test_encode();
    test_splits();
    return done_testing();
}

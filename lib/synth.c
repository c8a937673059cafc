/* synth.c: synthetic grounding scenes: generation, rasterisation, and whole
 * datasets on threads (see synth.h). Used by vr-synth; tests use the scene
 * functions directly.
 *
 * A scene is made in three steps. (1) Choose the expression's kind and the
 * objects it needs: the target, the distractors that make every word of the
 * expression necessary (same shape in another colour, another size, ...),
 * and for relations the anchor and the look-alikes on the far side of it.
 * (2) Lay them out by rejection sampling so that no two objects' pixel
 * bounds come within GAP pixels of each other and the relation or order the
 * expression states holds with room to spare; if an object finds no place,
 * the whole layout is drawn again (same kind). (3) Rasterise each object's
 * coverage to get its tight box. Everything random comes from the scene's own
 * Philox stream, so scenes are independent of each other and of threads. */
#include "synth.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fs.h"
#include "image_write.h"
#include "jsonl.h"
#include "rng.h"
#include "task.h"

#define FP 256          /* fixed point: 1/256 px */
#define MARGIN 2        /* px between any object and the image border */
#define GAP 3           /* px between the pixel bounds of any two objects */
#define MAX_ATTEMPTS 400
#define PLACE_TRIES 64
/* zlib level 3 without PNG row filters: flat colour and grain compress well
 * that way, and it is 3x faster than libspng's defaults (level 6, adaptive
 * filters) for files about as small */
#define PNG_LEVEL 3

const char *const vr_synth_shape_names[VR_SHAPE_COUNT] = {
    "circle", "square", "triangle", "star", "ring", "cross", "diamond", "hexagon"};
const char *const vr_synth_colour_names[VR_COLOUR_COUNT] = {
    "red", "orange", "yellow", "green", "blue", "purple", "brown", "black"};
const char *const vr_synth_size_names[VR_SIZE_COUNT] = {"small", "medium", "large"};
const char *const vr_synth_bg_names[VR_BG_COUNT] = {"plain", "noisy", "striped", "checker",
                                                     "gradient", "position"};
const char *const vr_synth_split_names[VR_SPLIT_COUNT] = {"train", "val", "ood"};
const char *const vr_synth_kind_names[VR_EXPR_COUNT] = {"attribute", "relation", "ordinal"};
const uint8_t vr_synth_rgb[VR_COLOUR_COUNT][3] = {
    {220, 40, 40},  {245, 140, 20}, {240, 205, 20}, {40, 160, 60},
    {40, 90, 220},  {140, 60, 190}, {125, 80, 40},  {30, 30, 30},
};

/* Extent of each size class, in thousandths of sqrt(w * h): ranges that never
 * overlap, so "small" and "medium" are never a judgement call. */
static const int size_permille[VR_SIZE_COUNT][2] = {{75, 95}, {120, 145}, {185, 220}};

/* Phrasings. Train and val use the first tables; ood uses phrasings train
 * never sees: other words for the four relations, and ordinals counted from
 * the right and the bottom. */
static const char *const rel_train[4][2] = {
    {"left of", "to the left of"}, {"right of", "to the right of"}, {"above", "above"},
    {"below", "below"}};
static const char *const rel_ood[4] = {"on the left side of", "on the right side of",
                                       "higher up than", "beneath"};
static const char *const side_words[4] = {"left", "right", "top", "bottom"};
static const char *const most_words[4] = {"leftmost", "rightmost", "topmost", "bottommost"};
static const char *const ord_words[5] = {"", "first", "second", "third", "fourth"};

int vr_synth_split_parse(const char *s)
{
    for (int i = 0; i < VR_SPLIT_COUNT; i++)
        if (strcmp(s, vr_synth_split_names[i]) == 0) return i;
    return -1;
}

/* Colour c keeps shape (3c + 1) mod 8 for ood: a permutation, so every colour
 * and every shape is held out exactly once and each is still seen in train
 * with seven partners. */
int vr_synth_held_out(enum vr_synth_colour c, enum vr_synth_shape s)
{
    return (int)s == (3 * (int)c + 1) % VR_SHAPE_COUNT;
}

static int held_colour_of(int shape)
{
    for (int c = 0; c < VR_COLOUR_COUNT; c++)
        if (vr_synth_held_out(c, shape)) return c;
    VR_ASSERT(0);
    return 0;
}

/* Streams: one per (split, purpose, index). */
enum { PURPOSE_SCENE, PURPOSE_PIXELS, PURPOSE_SIZE };
static uint64_t stream_of(enum vr_synth_split split, int purpose, uint64_t index)
{
    return (uint64_t)(split + 1) << 56 | (uint64_t)purpose << 48 | (index & ((1ull << 48) - 1));
}

static int below(struct vr_rng *r, int n) { return (int)vr_rng_below(r, (uint64_t)n); }
static int range(struct vr_rng *r, int lo, int hi) { return lo + below(r, hi - lo + 1); }

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void vr_synth_scene_size(enum vr_synth_split split, uint64_t seed, uint64_t index, int w, int h,
                         int *sw, int *sh)
{
    *sw = w;
    *sh = h;
    if (split != VR_SPLIT_OOD) return;
    static const int num[4] = {2, 1, 16, 9}, den[4] = {1, 2, 9, 16};
    struct vr_rng r;
    vr_rng_init(&r, seed, stream_of(split, PURPOSE_SIZE, index));
    int k = below(&r, 4);
    double area = (double)w * h, ar = (double)w / h * num[k] / den[k];
    double fw = sqrt(area * ar), fh = area / fw;
    int q = (w % 28 == 0 && h % 28 == 0) ? 28 : 2;
    *sw = (int)lround(fw / q) * q;
    *sh = (int)lround(fh / q) * q;
    if (*sw < q) *sw = q;
    if (*sh < q) *sh = q;
}

/* ---- objects ---- */

/* 1 when o fits d. */
static int match(const struct vr_synth_object *o, const struct vr_synth_desc *d)
{
    return (d->shape < 0 || (int)o->shape == d->shape) &&
           (d->colour < 0 || (int)o->colour == d->colour) && (d->size < 0 || (int)o->size == d->size);
}

static int is_polygon(enum vr_synth_shape s) { return s != VR_SHAPE_CIRCLE && s != VR_SHAPE_RING; }

/* sin of whole degrees 0..90 in 1/65536: integer trigonometry, so vertices
 * are the same on every machine and compiler (no libm, no fused multiply-add). */
static const int32_t sin_q16[91] = {
    0, 1144, 2287, 3430, 4572, 5712, 6850, 7987, 9121, 10252,
    11380, 12505, 13626, 14742, 15855, 16962, 18064, 19161, 20252, 21336,
    22415, 23486, 24550, 25607, 26656, 27697, 28729, 29753, 30767, 31772,
    32768, 33754, 34729, 35693, 36647, 37590, 38521, 39441, 40348, 41243,
    42126, 42995, 43852, 44695, 45525, 46341, 47143, 47930, 48703, 49461,
    50203, 50931, 51643, 52339, 53020, 53684, 54332, 54963, 55578, 56175,
    56756, 57319, 57865, 58393, 58903, 59396, 59870, 60326, 60764, 61183,
    61584, 61966, 62328, 62672, 62997, 63303, 63589, 63856, 64104, 64332,
    64540, 64729, 64898, 65048, 65177, 65287, 65376, 65446, 65496, 65526,
    65536,
};

static int32_t isin(int d)
{
    d %= 360;
    if (d < 0) d += 360;
    if (d <= 90) return sin_q16[d];
    if (d <= 180) return sin_q16[180 - d];
    if (d <= 270) return -sin_q16[d - 180];
    return -sin_q16[360 - d];
}
static int32_t icos(int d) { return isin(d + 90); }
/* round(v / 65536), halves up */
static int64_t q16_round(int64_t v) { return floordiv(v + 32768, 65536); }

/* Vertices (or radii) around the origin from shape, ext and rot, in 1/256 px.
 * Lengths are permille of ext; the constants make the shapes look about
 * equally big. */
static void obj_shape(struct vr_synth_object *o)
{
    int64_t s = o->ext, px[VR_SYNTH_MAX_VERT], py[VR_SYNTH_MAX_VERT];
    int n = 0;
#define PM(k) (s * (k) / 1000)
    o->cx = o->cy = 0;
    o->r2_out = o->r2_in = -1;
    switch (o->shape) {
    case VR_SHAPE_CIRCLE:
    case VR_SHAPE_RING: {
        int64_t ro = PM(500), ri = PM(280);
        o->r2_out = ro * ro;
        if (o->shape == VR_SHAPE_RING) o->r2_in = ri * ri;
        o->nv = 0;
        return;
    }
    case VR_SHAPE_SQUARE: {
        int64_t a = PM(420);
        int64_t q[4][2] = {{-a, -a}, {a, -a}, {a, a}, {-a, a}};
        for (int i = 0; i < 4; i++) px[n] = q[i][0], py[n++] = q[i][1];
        break;
    }
    case VR_SHAPE_TRIANGLE: /* pointing up, shifted down by R/4 to centre its bounds */
        for (int i = 0; i < 3; i++) {
            int deg = -90 + 120 * i;
            px[n] = q16_round(PM(580) * icos(deg)), py[n++] = q16_round(PM(580) * isin(deg)) + PM(145);
        }
        break;
    case VR_SHAPE_STAR:
        for (int i = 0; i < 10; i++) {
            int deg = -90 + 36 * i;
            int64_t R = PM(i & 1 ? 240 : 580);
            px[n] = q16_round(R * icos(deg)), py[n++] = q16_round(R * isin(deg)) + PM(50);
        }
        break;
    case VR_SHAPE_CROSS: {
        int64_t a = PM(500), t = PM(170);
        int64_t q[12][2] = {{t, -a}, {t, -t}, {a, -t}, {a, t},  {t, t},   {t, a},
                            {-t, a}, {-t, t}, {-a, t}, {-a, -t}, {-t, -t}, {-t, -a}};
        for (int i = 0; i < 12; i++) px[n] = q[i][0], py[n++] = q[i][1];
        break;
    }
    case VR_SHAPE_DIAMOND: {
        int64_t q[4][2] = {{0, -PM(520)}, {PM(360), 0}, {0, PM(520)}, {-PM(360), 0}};
        for (int i = 0; i < 4; i++) px[n] = q[i][0], py[n++] = q[i][1];
        break;
    }
    case VR_SHAPE_HEXAGON:
        for (int i = 0; i < 6; i++) px[n] = q16_round(PM(500) * icos(60 * i)), py[n++] = q16_round(PM(500) * isin(60 * i));
        break;
    default: VR_ASSERT(0);
    }
#undef PM
    int64_t c = icos(o->rot), sn = isin(o->rot);
    for (int i = 0; i < n; i++) {
        o->vx[i] = (int32_t)q16_round(px[i] * c - py[i] * sn);
        o->vy[i] = (int32_t)q16_round(px[i] * sn + py[i] * c);
    }
    o->nv = n;
}

/* Pixel range [lo, hi) whose centres k*FP + FP/2 may fall in [a, b]. */
static void px_range(int64_t a, int64_t b, int *lo, int *hi)
{
    *lo = (int)floordiv(a - FP / 2 + FP - 1, FP);
    *hi = (int)floordiv(b - FP / 2, FP) + 1;
}

static void obj_extent(const struct vr_synth_object *o, int64_t e[4])
{
    if (o->nv == 0) {
        int64_t r = o->ext / 2;
        e[0] = o->cx - r, e[1] = o->cy - r, e[2] = o->cx + r, e[3] = o->cy + r;
        return;
    }
    e[0] = e[2] = o->vx[0], e[1] = e[3] = o->vy[0];
    for (int i = 1; i < o->nv; i++) {
        if (o->vx[i] < e[0]) e[0] = o->vx[i];
        if (o->vx[i] > e[2]) e[2] = o->vx[i];
        if (o->vy[i] < e[1]) e[1] = o->vy[i];
        if (o->vy[i] > e[3]) e[3] = o->vy[i];
    }
}

static void obj_move(struct vr_synth_object *o, int32_t cx, int32_t cy)
{
    int32_t dx = cx - o->cx, dy = cy - o->cy;
    for (int i = 0; i < o->nv; i++) o->vx[i] += dx, o->vy[i] += dy;
    o->cx = cx, o->cy = cy;
    int64_t e[4];
    obj_extent(o, e);
    px_range(e[0], e[2], &o->loose[0], &o->loose[2]);
    px_range(e[1], e[3], &o->loose[1], &o->loose[3]);
}

/* Is the point (px, py) (1/256 px) inside o? The reference coverage test,
 * one point at a time; obj_row computes the same sets a row at a time. Exact:
 * every product fits int64 (coordinates stay below 2^21). */
static int obj_inside(const struct vr_synth_object *o, int64_t px, int64_t py)
{
    if (o->nv == 0) {
        int64_t dx = px - o->cx, dy = py - o->cy, d2 = dx * dx + dy * dy;
        return d2 <= o->r2_out && d2 >= o->r2_in;
    }
    int in = 0;
    for (int i = 0, j = o->nv - 1; i < o->nv; j = i++) {
        int64_t ax = o->vx[j], ay = o->vy[j], bx = o->vx[i], by = o->vy[i];
        if ((ay > py) != (by > py)) {
            int64_t dy = by - ay, lhs = (px - ax) * dy, rhs = (py - ay) * (bx - ax);
            if (dy > 0 ? lhs < rhs : lhs > rhs) in ^= 1;
        }
    }
    return in;
}

int vr_synth_covers(const struct vr_synth_object *o, int x, int y)
{
    return obj_inside(o, (int64_t)x * FP + FP / 2, (int64_t)y * FP + FP / 2);
}

static int64_t ceildiv(int64_t a, int64_t b) { return -floordiv(-a, b); }

/* floor(sqrt(q)) for q >= 0, exactly */
static int64_t isqrt64(int64_t q)
{
    int64_t s = (int64_t)sqrt((double)q);
    while (s > 0 && s * s > q) s--;
    while ((s + 1) * (s + 1) <= q) s++;
    return s;
}

/* Pixels x with |x*FP + FP/2 - cx| <= s: [lo, hi). */
static void span_within(int64_t cx, int64_t s, int64_t *lo, int64_t *hi)
{
    *lo = ceildiv(cx - s - FP / 2, FP);
    *hi = floordiv(cx + s - FP / 2, FP) + 1;
}

/* Row y of o as sorted half-open pixel spans k[0]..k[1], k[2]..k[3], ...
 * (unclipped); returns the number of ends (even). Exactly the pixels
 * obj_inside accepts: for a polygon, pixel x passes edge i's crossing test
 * iff x < k_i, so the covered pixels lie between consecutive sorted k_i. */
static int obj_row(const struct vr_synth_object *o, int y, int64_t k[VR_SYNTH_MAX_VERT])
{
    int64_t py = (int64_t)y * FP + FP / 2;
    if (o->nv == 0) {
        int64_t dy = py - o->cy, q = o->r2_out - dy * dy;
        if (q < 0) return 0;
        span_within(o->cx, isqrt64(q), &k[0], &k[1]);
        int64_t qi = o->r2_in - dy * dy; /* ring: d2 < r2_in is the hole */
        if (o->r2_in < 0 || qi < 1) return k[0] < k[1] ? 2 : 0;
        int64_t hl, hh;
        span_within(o->cx, isqrt64(qi - 1), &hl, &hh);
        if (hl >= hh) return 2;
        k[3] = k[1], k[1] = hl, k[2] = hh;
        return 4;
    }
    int n = 0;
    for (int i = 0, j = o->nv - 1; i < o->nv; j = i++) {
        int64_t ax = o->vx[j], ay = o->vy[j], bx = o->vx[i], by = o->vy[i];
        if ((ay > py) == (by > py)) continue;
        /* px < ax + N/D (D may be negative) <=> px < ax + ceil(N/D) for integer px */
        int64_t N = (py - ay) * (bx - ax), D = by - ay;
        if (D < 0) N = -N, D = -D;
        int64_t t = ax + ceildiv(N, D);
        int64_t v = ceildiv(t - FP / 2, FP);
        int m = n++;
        while (m > 0 && k[m - 1] > v) k[m] = k[m - 1], m--;
        k[m] = v;
    }
    return n;
}

/* Tight box of o's covered pixels; 0 when it covers none. */
static int obj_tight_box(struct vr_synth_object *o, int w, int h)
{
    int x1 = w, y1 = h, x2 = -1, y2 = -1;
    int64_t k[VR_SYNTH_MAX_VERT];
    for (int y = o->loose[1] < 0 ? 0 : o->loose[1]; y < o->loose[3] && y < h; y++) {
        int n = obj_row(o, y, k);
        for (int i = 0; i < n; i += 2) {
            int64_t lo = k[i] < 0 ? 0 : k[i], hi = k[i + 1] > w ? w : k[i + 1];
            if (lo >= hi) continue;
            if (lo < x1) x1 = (int)lo;
            if (hi - 1 > x2) x2 = (int)hi - 1;
            if (y < y1) y1 = y;
            if (y > y2) y2 = y;
        }
    }
    if (x2 < 0) return 0;
    o->box[0] = x1, o->box[1] = y1, o->box[2] = x2 + 1, o->box[3] = y2 + 1;
    return 1;
}

/* ---- layout ---- */

struct gen {
    struct vr_rng r;
    struct vr_synth_scene *sc;
    int ood;
    int64_t unit; /* sqrt(w * h), 1/256 px */
    const struct vr_synth_knobs *k;
    int max_obj;  /* objects a scene may hold */
    int scale;    /* object extents, percent */
};

static int popcount(unsigned m) { return __builtin_popcount(m); }

/* The n-th (0-based) set bit of mask. */
static int nth_bit(unsigned mask, int n)
{
    for (int b = 0; b < 32; b++)
        if ((mask >> b & 1) && n-- == 0) return b;
    VR_ASSERT(0);
    return -1;
}

/* Room for one more object within the knobs' limit. */
static int room(const struct gen *g) { return g->sc->nobj < g->max_obj; }

/* The target's size: -1 (any) unless the knobs restrict it; the default mix
 * draws nothing here, so its scenes keep their bytes. */
static int target_size(struct gen *g)
{
    unsigned m = g->k->sizes;
    return m ? nth_bit(m, below(&g->r, popcount(m))) : -1;
}

/* Fill attributes of a new object: shape, colour, size each given or (-1)
 * drawn; `held` asks for a held-out pair (ood targets). Outside ood, held-out
 * pairs are never drawn. Returns -1 when the given attributes rule it out. */
static int obj_pick(struct gen *g, struct vr_synth_object *o, int shape, int colour, int size,
                    int held)
{
    int tries = 0;
    for (;;) {
        int s = shape >= 0 ? shape : below(&g->r, VR_SHAPE_COUNT);
        int c = colour >= 0 ? colour : below(&g->r, VR_COLOUR_COUNT);
        if (held && colour < 0) c = held_colour_of(s);
        int h = vr_synth_held_out(c, s);
        if ((held && h) || (!held && (g->ood || !h))) {
            memset(o, 0, sizeof *o);
            o->shape = s, o->colour = c;
            o->size = size >= 0 ? size : below(&g->r, VR_SIZE_COUNT);
            return 0;
        }
        if ((shape >= 0 && colour >= 0) || ++tries > 64) return -1;
    }
}

/* Draw an object's extent and rotation (after its attributes are final). */
static void obj_form(struct gen *g, struct vr_synth_object *o)
{
    const int *pm = size_permille[o->size];
    int permille = range(&g->r, pm[0], pm[1]);
    int64_t ext = g->unit * permille / 1000 * g->scale / 100;
    /* at most 3/4 of the shorter side, so that a turned polygon still fits
     * (never reached at scale 100: large is 22% of sqrt(w h), the shorter side
     * at least 58% of it) */
    int64_t cap = (int64_t)(g->sc->w < g->sc->h ? g->sc->w : g->sc->h) * FP * 3 / 4;
    o->ext = (int32_t)(ext < cap ? ext : cap);
    if (o->ext < 4 * FP) o->ext = 4 * FP;
    o->rot = is_polygon(o->shape) ? range(&g->r, -15, 15) : 0;
    obj_shape(o);
}

/* Add a new object with picked attributes that fits none of the `nx` excluded
 * descriptions. Returns its index or -1. */
static int obj_add(struct gen *g, int shape, int colour, int size, int held,
                   const struct vr_synth_desc *excl, int nx)
{
    struct vr_synth_scene *sc = g->sc;
    VR_ASSERT(sc->nobj < VR_SYNTH_MAX_OBJ);
    struct vr_synth_object *o = &sc->obj[sc->nobj];
    for (int tries = 0; tries < 64; tries++) {
        if (obj_pick(g, o, shape, colour, size, held)) return -1;
        int bad = 0;
        for (int k = 0; k < nx && !bad; k++) bad = match(o, &excl[k]);
        if (bad) continue;
        obj_form(g, o);
        return sc->nobj++;
    }
    return -1;
}

static int apart(const int a[4], const int b[4], int gap)
{
    return a[2] + gap <= b[0] || b[2] + gap <= a[0] || a[3] + gap <= b[1] || b[3] + gap <= a[1];
}

/* Place object i (its centre) at random so that its loose bounds lie in the
 * image with MARGIN, at least GAP from every placed object, and, along `axis`
 * (0 x, 1 y, -1 none), within [lo, hi) and apart from the intervals of the
 * objects in group[0..ng). placed[] marks placed objects. */
static int place(struct gen *g, int i, int *placed, int axis, int lo, int hi, const int *group,
                 int ng)
{
    struct vr_synth_scene *sc = g->sc;
    struct vr_synth_object *o = &sc->obj[i];
    int64_t e[4];
    obj_move(o, 0, 0);
    obj_extent(o, e);
    int lim[2][2] = {{MARGIN, sc->w - MARGIN}, {MARGIN, sc->h - MARGIN}};
    if (axis >= 0) {
        if (lo > lim[axis][0]) lim[axis][0] = lo;
        if (hi < lim[axis][1]) lim[axis][1] = hi;
    }
    int64_t cmin[2], cmax[2];
    for (int a = 0; a < 2; a++) {
        /* centres for which the shape's extent stays inside the limits */
        cmin[a] = (int64_t)lim[a][0] * FP - e[a];
        cmax[a] = (int64_t)lim[a][1] * FP - e[a + 2] - 1;
        if (cmin[a] > cmax[a]) return -1;
    }
    for (int t = 0; t < PLACE_TRIES; t++) {
        int32_t cx = (int32_t)(cmin[0] + (int64_t)vr_rng_below(&g->r, (uint64_t)(cmax[0] - cmin[0] + 1)));
        int32_t cy = (int32_t)(cmin[1] + (int64_t)vr_rng_below(&g->r, (uint64_t)(cmax[1] - cmin[1] + 1)));
        obj_move(o, cx, cy);
        const int *b = o->loose;
        if (b[0] < lim[0][0] || b[2] > lim[0][1] || b[1] < lim[1][0] || b[3] > lim[1][1]) continue;
        int ok = 1;
        for (int j = 0; j < sc->nobj && ok; j++)
            if (j != i && placed[j]) ok = apart(b, sc->obj[j].loose, GAP);
        for (int k = 0; k < ng && ok; k++) {
            const int *c = sc->obj[group[k]].loose;
            if (group[k] == i || !placed[group[k]]) continue;
            ok = b[axis + 2] + GAP <= c[axis] || c[axis + 2] + GAP <= b[axis];
        }
        if (ok) {
            placed[i] = 1;
            return 0;
        }
    }
    return -1;
}

static int place_free(struct gen *g, int from, int *placed)
{
    for (int i = from; i < g->sc->nobj; i++)
        if (!placed[i] && place(g, i, placed, -1, 0, 0, NULL, 0)) return -1;
    return 0;
}

static void put_desc(struct vr_buf *b, const struct vr_synth_desc *d)
{
    if (d->size >= 0) vr_buf_printf(b, "%s ", vr_synth_size_names[d->size]);
    if (d->colour >= 0) vr_buf_printf(b, "%s ", vr_synth_colour_names[d->colour]);
    vr_buf_puts(b, vr_synth_shape_names[d->shape]);
}

static void set_expr(struct vr_synth_scene *sc, struct vr_buf *b)
{
    VR_ASSERT(b->len < sizeof sc->expr);
    memcpy(sc->expr, b->p, b->len + 1);
    vr_buf_release(b);
}

/* "the small red circle": the target, plus for each attribute the expression
 * says a distractor that differs from the target only there. */
static int gen_attribute(struct gen *g)
{
    struct vr_synth_scene *sc = g->sc;
    int t = obj_add(g, -1, -1, target_size(g), g->ood, NULL, 0);
    if (t < 0) return -1;
    const struct vr_synth_object *T = &sc->obj[t];
    int form = below(&g->r, 100), useC = form >= 20 && (form < 55 || form >= 70),
        useS = form >= 55;
    struct vr_synth_desc d = {T->shape, useC ? (int)T->colour : -1, useS ? (int)T->size : -1};
    sc->desc = d;
    /* distractors while the knobs leave room (always, in the default mix):
     * fewer of them keep the expression unique, only less demanding */
    if (useC && room(g)) { /* same shape (and size if said), other colour */
        struct vr_synth_desc x = {T->shape, T->colour, -1};
        if (obj_add(g, T->shape, -1, useS ? (int)T->size : -1, 0, &x, 1) < 0) return -1;
    }
    if (useS && room(g)) { /* same shape (and colour if said), other size */
        struct vr_synth_desc x = {T->shape, -1, T->size};
        if (obj_add(g, T->shape, useC ? (int)T->colour : -1, -1, 0, &x, 1) < 0) return -1;
    }
    if (room(g)) { /* other shape, same colour and size where said (often where not, too) */
        struct vr_synth_desc x = {T->shape, -1, -1};
        int c = useC || below(&g->r, 2) ? (int)T->colour : -1;
        int s = useS || below(&g->r, 2) ? (int)T->size : -1;
        if (obj_add(g, -1, c, s, 0, &x, 1) < 0) return -1;
    }
    int n = range(&g->r, 3, 6);
    if (n > g->max_obj) n = g->max_obj;
    while (sc->nobj < n)
        if (obj_add(g, -1, -1, -1, 0, &d, 1) < 0) return -1;
    int placed[VR_SYNTH_MAX_OBJ] = {0};
    if (place_free(g, 0, placed)) return -1;
    sc->target = t;
    struct vr_buf b = {0};
    vr_buf_puts(&b, "the ");
    put_desc(&b, &d);
    set_expr(sc, &b);
    return 0;
}

/* "the blue star left of the green square": the target on one side of a
 * unique anchor, look-alikes of the target on the other side. */
static int gen_relation(struct gen *g)
{
    struct vr_synth_scene *sc = g->sc;
    int side = below(&g->r, 4), axis = side >= VR_SIDE_TOP;
    int t = obj_add(g, -1, -1, target_size(g), g->ood, NULL, 0);
    if (t < 0) return -1;
    struct vr_synth_object *T = &sc->obj[t];
    int useC = below(&g->r, 100) < 60;
    struct vr_synth_desc A = {T->shape, useC ? (int)T->colour : -1, -1};
    int a = obj_add(g, -1, -1, -1, 0, &A, 1);
    if (a < 0) return -1;
    struct vr_synth_desc B = {sc->obj[a].shape, sc->obj[a].colour, -1};
    if (match(T, &B)) return -1;
    int ndup = range(&g->r, 1, 2), first_dup = sc->nobj;
    if (ndup > g->max_obj - sc->nobj) ndup = g->max_obj - sc->nobj; /* >= 1: knobs checked */
    for (int k = 0; k < ndup; k++)
        if (obj_add(g, T->shape, useC ? (int)T->colour : -1, -1, 0, &B, 1) < 0) return -1;
    int nfill = below(&g->r, 3);
    if (nfill > g->max_obj - sc->nobj) nfill = g->max_obj - sc->nobj;
    struct vr_synth_desc ex[2] = {A, B};
    for (int k = 0; k < nfill; k++)
        if (obj_add(g, -1, -1, -1, 0, ex, 2) < 0) return -1;

    int placed[VR_SYNTH_MAX_OBJ] = {0}, dim = axis ? sc->h : sc->w;
    if (place(g, a, placed, axis, dim * 25 / 100, dim * 75 / 100, NULL, 0)) return -1;
    const int *ab = sc->obj[a].loose;
    int near_lo = MARGIN, near_hi = ab[axis] - GAP, far_lo = ab[axis + 2] + GAP, far_hi = dim - MARGIN;
    int far_side = side == VR_SIDE_RIGHT || side == VR_SIDE_BOTTOM;
    int tl = far_side ? far_lo : near_lo, th = far_side ? far_hi : near_hi;
    int dl = far_side ? near_lo : far_lo, dh = far_side ? near_hi : far_hi;
    if (place(g, t, placed, axis, tl, th, NULL, 0)) return -1;
    for (int k = 0; k < ndup; k++)
        if (place(g, first_dup + k, placed, axis, dl, dh, NULL, 0)) return -1;
    if (place_free(g, 0, placed)) return -1;

    sc->target = t;
    sc->desc = A;
    sc->anchor = a;
    sc->anchor_desc = B;
    sc->side = side;
    struct vr_buf b = {0};
    vr_buf_puts(&b, "the ");
    put_desc(&b, &A);
    vr_buf_printf(&b, " %s the ", g->ood ? rel_ood[side] : rel_train[side][below(&g->r, 2)]);
    put_desc(&b, &B);
    set_expr(sc, &b);
    return 0;
}

/* "the second triangle from the top": 2-4 look-alikes in a row that does not
 * overlap along the counting axis; the target is the nth of them. */
static int gen_ordinal(struct gen *g)
{
    struct vr_synth_scene *sc = g->sc;
    int side = g->ood ? (below(&g->r, 2) ? VR_SIDE_RIGHT : VR_SIDE_BOTTOM)
                      : (below(&g->r, 2) ? VR_SIDE_LEFT : VR_SIDE_TOP);
    int axis = side >= VR_SIDE_TOP, m = range(&g->r, 2, 4), useC = below(&g->r, 2);
    if (m > g->max_obj) m = g->max_obj; /* >= 2: knobs checked */
    struct vr_synth_object x0;
    if (obj_pick(g, &x0, -1, -1, -1, g->ood)) return -1;
    struct vr_synth_desc X = {x0.shape, useC ? (int)x0.colour : -1, -1};
    int group[4], size = target_size(g); /* the counted objects share the target's size */
    for (int k = 0; k < m; k++) {
        /* in ood the counted objects may be held-out pairs (the target is made one below) */
        group[k] = obj_add(g, X.shape, X.colour, size, g->ood && useC, NULL, 0);
        if (group[k] < 0) return -1;
    }
    int nfill = below(&g->r, 3);
    if (nfill > g->max_obj - sc->nobj) nfill = g->max_obj - sc->nobj;
    for (int k = 0; k < nfill; k++)
        if (obj_add(g, -1, -1, -1, 0, &X, 1) < 0) return -1;
    int placed[VR_SYNTH_MAX_OBJ] = {0};
    for (int k = 0; k < m; k++)
        if (place(g, group[k], placed, axis, 0, 1 << 30, group, m)) return -1;
    if (place_free(g, 0, placed)) return -1;
    /* order along the side: intervals are disjoint, so starts decide */
    for (int i = 1; i < m; i++)
        for (int j = i; j > 0; j--) {
            const int *p = sc->obj[group[j - 1]].loose, *q = sc->obj[group[j]].loose;
            int swap = side == VR_SIDE_LEFT || side == VR_SIDE_TOP ? q[axis] < p[axis]
                                                                  : q[axis] > p[axis];
            if (!swap) break;
            int tmp = group[j];
            group[j] = group[j - 1];
            group[j - 1] = tmp;
        }
    int nth = range(&g->r, 1, m);
    sc->target = group[nth - 1];
    if (g->ood) sc->obj[sc->target].colour = held_colour_of(X.shape);
    sc->desc = X;
    sc->side = side;
    sc->nth = nth;
    struct vr_buf b = {0};
    if (nth == 1 && below(&g->r, 2)) {
        vr_buf_printf(&b, "the %s ", most_words[side]);
        put_desc(&b, &X);
    } else {
        vr_buf_printf(&b, "the %s ", ord_words[nth]);
        put_desc(&b, &X);
        vr_buf_printf(&b, " from the %s", side_words[side]);
    }
    set_expr(sc, &b);
    return 0;
}

/* The reasoning caption: the expression, then what the target is and where,
 * in thirds of the image ("the star left of the ring: a large blue star, top
 * left"): a coarse answer in words before the exact box. */
static void set_think(struct vr_synth_scene *sc)
{
    static const char *const rows[3] = {"top", "middle", "bottom"},
                             *const cols[3] = {"left", "centre", "right"};
    const struct vr_synth_object *t = &sc->obj[sc->target];
    int cx = (t->box[0] + t->box[2]) * 3 / (2 * sc->w), cy = (t->box[1] + t->box[3]) * 3 / (2 * sc->h);
    if (cx > 2) cx = 2;
    if (cy > 2) cy = 2;
    char where[32];
    if (cx == 1 && cy == 1) snprintf(where, sizeof where, "centre");
    else if (cy == 1) snprintf(where, sizeof where, "%s", cols[cx]);
    else if (cx == 1) snprintf(where, sizeof where, "%s", rows[cy]);
    else snprintf(where, sizeof where, "%s %s", rows[cy], cols[cx]);
    int n = snprintf(sc->think, sizeof sc->think, "%s: a %s %s %s, %s", sc->expr,
                     vr_synth_size_names[t->size], vr_synth_colour_names[t->colour],
                     vr_synth_shape_names[t->shape], where);
    VR_ASSERT(n > 0 && (size_t)n < sizeof sc->think);
}

int vr_synth_mask_parse(const char *list, const char *const *names, int n, const char *what,
                        unsigned *mask, struct vr_err *err)
{
    *mask = 0;
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        int found = -1;
        for (int i = 0; i < n && found < 0; i++)
            if (strlen(names[i]) == len && strncmp(names[i], p, len) == 0) found = i;
        if (found < 0) {
            struct vr_buf b = {0};
            for (int i = 0; i < n; i++) vr_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
            vr_err_set(err, VR_ERR_USAGE, NULL, 0, "%s: unknown name '%.*s' (%s)", what, (int)len, p,
                       b.p);
            vr_buf_release(&b);
            return -1;
        }
        *mask |= 1u << found;
        if (!p[len]) break;
        p += len + 1;
    }
    return 0;
}

int vr_synth_knobs_check(const struct vr_synth_knobs *k, struct vr_err *err)
{
    if (k->kinds >> VR_EXPR_COUNT || k->bgs >> VR_BG_COUNT || k->ood_bgs >> VR_BG_COUNT ||
        k->sizes >> VR_SIZE_COUNT)
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "unknown kind, background or size");
    if (k->max_objects < 0 || k->max_objects > VR_SYNTH_MAX_OBJ)
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--max-objects: %d is outside 1..%d",
                          k->max_objects, VR_SYNTH_MAX_OBJ);
    if (k->scale != 0 && (k->scale < 25 || k->scale > 400))
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--scale: %d is outside 25..400", k->scale);
    static const int need[VR_EXPR_COUNT] = {1, 3, 2};
    unsigned kinds = k->kinds ? k->kinds : (1u << VR_EXPR_COUNT) - 1;
    for (int i = 0; i < VR_EXPR_COUNT; i++)
        if ((kinds >> i & 1) && k->max_objects > 0 && k->max_objects < need[i])
            return vr_err_set(err, VR_ERR_USAGE, NULL, 0,
                              "--max-objects %d is too few for %s expressions (they need %d); "
                              "choose others with --kinds",
                              k->max_objects, vr_synth_kind_names[i], need[i]);
    return 0;
}

static void tone_pick(struct vr_rng *r, uint8_t t[3])
{
    for (int c = 0; c < 3; c++) t[c] = (uint8_t)range(r, 195, 250);
}

int vr_synth_scene_make(struct vr_synth_scene *sc, uint64_t seed, enum vr_synth_split split,
                        uint64_t index, int w, int h, const struct vr_synth_knobs *knobs,
                        struct vr_err *err)
{
    static const struct vr_synth_knobs defaults = {0};
    if (!knobs) knobs = &defaults;
    memset(sc, 0, sizeof *sc);
    sc->split = split;
    sc->seed = seed;
    sc->index = index;
    vr_synth_scene_size(split, seed, index, w, h, &sc->w, &sc->h);
    struct gen g = {.sc = sc, .ood = split == VR_SPLIT_OOD,
                    .unit = isqrt64((int64_t)sc->w * sc->h * FP * FP), .k = knobs,
                    .max_obj = knobs->max_objects > 0 ? knobs->max_objects : VR_SYNTH_MAX_OBJ,
                    .scale = knobs->scale > 0 ? knobs->scale : 100};
    vr_rng_init(&g.r, seed, stream_of(split, PURPOSE_SCENE, index));
    unsigned bgs = g.ood ? knobs->ood_bgs : knobs->bgs;
    if (bgs)
        sc->bg = (enum vr_synth_bg)nth_bit(bgs, below(&g.r, popcount(bgs)));
    else
        sc->bg = (enum vr_synth_bg)(g.ood ? VR_BG_CHECKER + below(&g.r, 2) : below(&g.r, 3));
    tone_pick(&g.r, sc->tone[0]);
    do
        tone_pick(&g.r, sc->tone[1]);
    while (abs(sc->tone[0][0] - sc->tone[1][0]) + abs(sc->tone[0][1] - sc->tone[1][1]) +
               abs(sc->tone[0][2] - sc->tone[1][2]) < 40);
    sc->bg_period = sc->bg == VR_BG_CHECKER ? range(&g.r, 10, 32) : range(&g.r, 6, 24);
    sc->bg_dir = below(&g.r, 4);
    int k = below(&g.r, 100);
    if (knobs->kinds)
        sc->kind = (enum vr_synth_kind)nth_bit(knobs->kinds, k % popcount(knobs->kinds));
    else
        sc->kind = k < 50 ? VR_EXPR_ATTRIBUTE : k < 75 ? VR_EXPR_RELATION : VR_EXPR_ORDINAL;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        sc->nobj = 0;
        sc->anchor = -1;
        sc->nth = 0;
        int rc = sc->kind == VR_EXPR_ATTRIBUTE  ? gen_attribute(&g)
                 : sc->kind == VR_EXPR_RELATION ? gen_relation(&g)
                                                : gen_ordinal(&g);
        for (int i = 0; rc == 0 && i < sc->nobj; i++)
            if (!obj_tight_box(&sc->obj[i], sc->w, sc->h)) rc = -1;
        if (rc == 0) {
            sc->attempts = attempt + 1;
            VR_DASSERT(vr_synth_resolve(sc) == sc->target);
            set_think(sc);
            return 0;
        }
    }
    return vr_err_set(err, VR_ERR_INPUT, NULL, 0, "%s scene %llu: no %s layout fits %dx%d",
                      vr_synth_split_names[split], (unsigned long long)index,
                      vr_synth_kind_names[sc->kind], sc->w, sc->h);
}

/* ---- meaning ---- */

static int on_side(const int c[4], const int a[4], int side)
{
    switch (side) {
    case VR_SIDE_LEFT: return c[2] <= a[0];
    case VR_SIDE_RIGHT: return c[0] >= a[2];
    case VR_SIDE_TOP: return c[3] <= a[1];
    default: return c[1] >= a[3];
    }
}

int vr_synth_resolve(const struct vr_synth_scene *sc)
{
    int found = -1, n = 0;
    if (sc->kind == VR_EXPR_ATTRIBUTE) {
        for (int i = 0; i < sc->nobj; i++)
            if (match(&sc->obj[i], &sc->desc)) found = i, n++;
        return n == 1 ? found : -1;
    }
    if (sc->kind == VR_EXPR_RELATION) {
        int a = -1, na = 0;
        for (int i = 0; i < sc->nobj; i++)
            if (match(&sc->obj[i], &sc->anchor_desc)) a = i, na++;
        if (na != 1) return -1;
        for (int i = 0; i < sc->nobj; i++)
            if (i != a && match(&sc->obj[i], &sc->desc) &&
                on_side(sc->obj[i].box, sc->obj[a].box, sc->side))
                found = i, n++;
        return n == 1 ? found : -1;
    }
    /* ordinal: the matching objects must not overlap along the axis */
    int axis = sc->side >= VR_SIDE_TOP, idx[VR_SYNTH_MAX_OBJ];
    for (int i = 0; i < sc->nobj; i++)
        if (match(&sc->obj[i], &sc->desc)) idx[n++] = i;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            const int *p = sc->obj[idx[i]].box, *q = sc->obj[idx[j]].box;
            if (i != j && !(p[axis + 2] <= q[axis] || q[axis + 2] <= p[axis])) return -1;
        }
    if (sc->nth < 1 || sc->nth > n) return -1;
    /* the nth from the side: count the objects before it */
    for (int i = 0; i < n; i++) {
        const int *p = sc->obj[idx[i]].box;
        int before = 0;
        for (int j = 0; j < n; j++) {
            const int *q = sc->obj[idx[j]].box;
            if (j != i && (sc->side == VR_SIDE_LEFT || sc->side == VR_SIDE_TOP ? q[axis] < p[axis]
                                                                            : q[axis] > p[axis]))
                before++;
        }
        if (before == sc->nth - 1) return idx[i];
    }
    return -1;
}

/* ---- pixels ---- */

static uint8_t clamp255(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

static void render_bg(const struct vr_synth_scene *sc, uint8_t *rgb)
{
    int w = sc->w, h = sc->h, p = sc->bg_period;
    const uint8_t *t0 = sc->tone[0], *t1 = sc->tone[1];
    if (sc->bg == VR_BG_NOISY) {
        /* grain: grey noise on 2x2 cells, in steps of 2 from -16 to 16, the same
         * on all channels (per-pixel noise would triple the PNG size) */
        struct vr_rng r;
        vr_rng_init(&r, sc->seed, stream_of(sc->split, PURPOSE_PIXELS, sc->index));
        uint32_t bits = 0;
        int k = 0;
        for (int cy = 0; cy < h; cy += 2)
            for (int cx = 0; cx < w; cx += 2) {
                if ((k++ & 3) == 0) bits = vr_rng_u32(&r);
                int d = 2 * (int)(((bits & 0xff) * 17) >> 8) - 16;
                bits >>= 8;
                uint8_t v[3];
                for (int c = 0; c < 3; c++) v[c] = clamp255(t0[c] + d);
                for (int y = cy; y < cy + 2 && y < h; y++)
                    for (int x = cx; x < cx + 2 && x < w; x++) memcpy(rgb + ((size_t)y * w + x) * 3, v, 3);
            }
        return;
    }
    for (int y = 0; y < h; y++) {
        uint8_t *row = rgb + (size_t)y * w * 3;
        /* most rows repeat the one above: copy instead of recomputing */
        int dir = sc->bg_dir, same;
        switch (sc->bg) {
        case VR_BG_PLAIN: same = 1; break;
        case VR_BG_STRIPED: same = dir == 0 || (dir == 1 && y % p != 0); break;
        case VR_BG_CHECKER: same = y % p != 0; break;
        case VR_BG_GRADIENT: same = dir == 0; break;
        case VR_BG_POSITION: same = 0; break;
        default: same = 0; break;
        }
        if (y > 0 && same) {
            memcpy(row, row - (size_t)w * 3, (size_t)w * 3);
            continue;
        }
        for (int x = 0; x < w; x++) {
            const uint8_t *t = t0;
            uint8_t mix[3];
            switch (sc->bg) {
            case VR_BG_PLAIN: break;
            case VR_BG_STRIPED: {
                int k = sc->bg_dir == 0 ? x : sc->bg_dir == 1 ? y : sc->bg_dir == 2 ? x + y : x - y + h;
                if ((k / p) & 1) t = t1;
                break;
            }
            case VR_BG_CHECKER:
                if (((x / p) + (y / p)) & 1) t = t1;
                break;
            case VR_BG_POSITION:
                /* 160 at the left (top) edge to 250 at the right (bottom): the
                 * pixels say where in the image they are */
                mix[0] = (uint8_t)(160 + x * 90 / (w > 1 ? w - 1 : 1));
                mix[1] = (uint8_t)(160 + y * 90 / (h > 1 ? h - 1 : 1));
                mix[2] = t0[2];
                t = mix;
                break;
            case VR_BG_GRADIENT: {
                int num, den;
                switch (sc->bg_dir) {
                case 0: num = x, den = w - 1; break;
                case 1: num = y, den = h - 1; break;
                case 2: num = x + y, den = w + h - 2; break;
                default: num = x + (h - 1 - y), den = w + h - 2; break;
                }
                if (den < 1) den = 1;
                for (int c = 0; c < 3; c++) mix[c] = (uint8_t)(t0[c] + (t1[c] - t0[c]) * num / den);
                t = mix;
                break;
            }
            default: VR_ASSERT(0);
            }
            row[3 * x] = t[0], row[3 * x + 1] = t[1], row[3 * x + 2] = t[2];
        }
    }
}

static void render_obj(const struct vr_synth_object *o, uint8_t *rgb, int w, int h)
{
    const uint8_t *c = vr_synth_rgb[o->colour];
    int64_t k[VR_SYNTH_MAX_VERT];
    for (int y = o->loose[1] < 0 ? 0 : o->loose[1]; y < o->loose[3] && y < h; y++) {
        int n = obj_row(o, y, k);
        uint8_t *row = rgb + (size_t)y * w * 3;
        for (int i = 0; i < n; i += 2)
            for (int64_t x = k[i] < 0 ? 0 : k[i]; x < k[i + 1] && x < w; x++) memcpy(row + 3 * x, c, 3);
    }
}

void vr_synth_render(const struct vr_synth_scene *sc, uint8_t *rgb, int only, const uint8_t blank[3])
{
    if (blank) {
        for (size_t i = 0, n = (size_t)sc->w * sc->h; i < n; i++) memcpy(rgb + 3 * i, blank, 3);
    } else {
        render_bg(sc, rgb);
    }
    for (int i = 0; i < sc->nobj; i++)
        if (only < 0 || only == i) render_obj(&sc->obj[i], rgb, sc->w, sc->h);
}

/* Outline box (x1, y1, x2, y2 as in the object's box) with a 2 px frame just
 * outside it, clipped to the image: for looking at, never for training. */
static void draw_box(uint8_t *rgb, int w, int h, const int box[4], const uint8_t c[3])
{
    for (int y = box[1] - 2; y < box[3] + 2; y++) {
        if (y < 0 || y >= h) continue;
        int edge_row = y < box[1] || y >= box[3];
        for (int x = box[0] - 2; x < box[2] + 2; x++) {
            if (x < 0 || x >= w) continue;
            if (edge_row || x < box[0] || x >= box[2]) memcpy(rgb + ((size_t)y * w + x) * 3, c, 3);
        }
    }
}

void vr_synth_box_norm(const int box[4], int w, int h, int out[4])
{
    for (int i = 0; i < 4; i++) {
        int64_t s = i & 1 ? h : w;
        out[i] = (int)((1000 * (int64_t)box[i] + s / 2) / s);
    }
}

/* ---- datasets ---- */

struct rec {
    int w, h, box[4];
    char expr[96];
    char think[160];
};

struct job {
    const struct vr_synth_opts *o;
    enum vr_synth_split split;
    int64_t n, base, total; /* base: scenes of earlier splits, for progress */
    const char *dir;        /* OUT/images/SPLIT */
    const char *ext;
    struct rec *recs;
    atomic_llong next, done;
    atomic_int failed;
    pthread_mutex_t mu;
    struct vr_err err;
};

static void job_fail(struct job *j, const struct vr_err *e)
{
    pthread_mutex_lock(&j->mu);
    if (!atomic_load(&j->failed)) j->err = *e;
    atomic_store(&j->failed, 1);
    pthread_mutex_unlock(&j->mu);
}

static void image_name(char *buf, size_t n, int64_t i, const char *ext)
{
    snprintf(buf, n, "%06lld.%s", (long long)i, ext);
}

static void *job_run(void *arg, int main_thread)
{
    struct job *j = arg;
    const struct vr_synth_opts *o = j->o;
    struct vr_image_enc enc = {.format = o->format, .png_level = PNG_LEVEL, .png_unfiltered = 1, .jpeg_quality = 95};
    uint8_t *rgb = NULL;
    size_t cap = 0;
    struct vr_synth_scene sc;
    struct vr_err err;
    static const uint8_t box_rgb[3] = {255, 0, 255};
    for (;;) {
        if (atomic_load(&j->failed)) break;
        int64_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n) break;
        if (vr_synth_scene_make(&sc, o->seed, j->split, (uint64_t)i, o->w, o->h, &o->knobs, &err)) {
            job_fail(j, &err);
            break;
        }
        size_t need = (size_t)sc.w * sc.h * 3;
        if (need > cap) {
            free(rgb);
            rgb = malloc(need);
            cap = need;
            if (!rgb) {
                vr_err_set(&err, VR_ERR_SYS, NULL, 0, "out of memory");
                job_fail(j, &err);
                break;
            }
        }
        vr_synth_render(&sc, rgb, -1, NULL);
        const struct vr_synth_object *t = &sc.obj[sc.target];
        if (o->draw_boxes) draw_box(rgb, sc.w, sc.h, t->box, box_rgb);
        char name[64];
        image_name(name, sizeof name, i, j->ext);
        char *path = vr_path_join(j->dir, name);
        int rc = vr_image_write(path, rgb, sc.w, sc.h, &enc, VR_IMAGE_WRITE_NOSYNC, &err);
        free(path);
        if (rc) {
            job_fail(j, &err);
            break;
        }
        struct rec *r = &j->recs[i];
        r->w = sc.w, r->h = sc.h;
        memcpy(r->box, t->box, sizeof r->box);
        VR_ASSERT(strlen(sc.expr) < sizeof r->expr && strlen(sc.think) < sizeof r->think);
        strcpy(r->expr, sc.expr);
        strcpy(r->think, sc.think);
        int64_t done = atomic_fetch_add(&j->done, 1) + 1;
        if (main_thread && o->progress) vr_progress_update(o->progress, j->base + done);
    }
    free(rgb);
    return NULL;
}

static void *job_worker(void *arg) { return job_run(arg, 0); }

static json_t *rec_json(const struct rec *r, const char *image)
{
    struct vr_buf p = {0};
    vr_buf_printf(&p, "%s%s.", VR_REC_PREFIX, r->expr);
    int nb[4];
    vr_synth_box_norm(r->box, r->w, r->h, nb);
    json_t *v = json_pack("{s:s, s:i, s:i, s:s, s:s, s:s, s:[iiii], s:[iiii]}", "image", image,
                          "width", r->w, "height", r->h, "problem", p.p, "normal_caption", r->expr,
                          "think", r->think, "solution", r->box[0], r->box[1], r->box[2],
                          r->box[3], "normalized_solution", nb[0], nb[1], nb[2], nb[3]);
    vr_buf_release(&p);
    VR_ASSERT(v);
    return v;
}

/* The split's JSON, then (after it is committed) its task lines. */
static int write_split(const struct vr_synth_opts *o, enum vr_synth_split split,
                       const struct rec *recs, int64_t n, const char *ext, struct vr_err *err)
{
    const char *sname = vr_synth_split_names[split];
    char jname[64], image[128];
    snprintf(jname, sizeof jname, "%s.json", sname);
    char *jpath = vr_path_join(o->out, jname);
    struct vr_atomic a;
    int rc = vr_atomic_open(&a, jpath, err);
    free(jpath);
    if (rc) return -1;
    /* streamed in pieces: a big split never needs its whole file in memory */
    struct vr_buf b = {0};
    vr_buf_puts(&b, n ? "[\n" : "[");
    for (int64_t i = 0; i < n && rc == 0; i++) {
        char name[64];
        image_name(name, sizeof name, i, ext);
        snprintf(image, sizeof image, "images/%s/%s", sname, name);
        json_t *v = rec_json(&recs[i], image);
        vr_json_dump(&b, v);
        json_decref(v);
        vr_buf_puts(&b, i + 1 < n ? ",\n" : "\n");
        if (b.len >= (1u << 20)) {
            rc = vr_atomic_write(&a, b.p, b.len, err);
            vr_buf_reset(&b);
        }
    }
    if (rc == 0) {
        vr_buf_puts(&b, "]\n");
        rc = vr_atomic_write(&a, b.p, b.len, err);
    }
    vr_buf_release(&b);
    if (rc) {
        vr_atomic_abort(&a);
        return -1;
    }
    rc = vr_atomic_commit(&a, err);
    if (rc || !o->tasks) return rc;
    /* what `vr-prep OUT/SPLIT.json` makes of the file, byte for byte */
    for (int64_t i = 0; i < n && rc == 0; i++) {
        const struct rec *r = &recs[i];
        char name[64], id[64];
        image_name(name, sizeof name, i, ext);
        snprintf(image, sizeof image, "images/%s/%s", sname, name);
        snprintf(id, sizeof id, "%s/%lld", sname, (long long)i);
        char *j = vr_path_join(o->out, image), *abs_ = vr_path_abs(j);
        struct vr_buf p = {0};
        vr_buf_printf(&p, "%s%s.", VR_REC_PREFIX, r->expr);
        int sz[1][2] = {{r->w, r->h}};
        json_t *sol = json_pack("[ffff]", (double)r->box[0], (double)r->box[1], (double)r->box[2],
                                (double)r->box[3]);
        const char *ims[1] = {abs_};
        json_t *t = vr_task_new(id, sname, 1, ims, (const int(*)[2])sz, p.p, sol, r->expr);
        json_object_set_new(t, "think", json_string(r->think));
        rc = vr_jsonl_write(o->tasks, t, err);
        json_decref(t);
        vr_buf_release(&p);
        free(j);
        free(abs_);
    }
    if (rc == 0 && fflush(o->tasks) != 0) rc = vr_err_sys(err, "<stdout>", "write failed");
    return rc;
}

int vr_synth_write(const struct vr_synth_opts *o, struct vr_err *err)
{
    VR_ASSERT(o->threads >= 1 && o->nsplits >= 1);
    const char *ext = o->format == VR_IMAGE_JPEG ? "jpg" : "png";
    int64_t total = 0, base = 0;
    for (int s = 0; s < o->nsplits; s++) total += o->count[s];
    if (o->progress) o->progress->total = total;
    for (int s = 0; s < o->nsplits; s++) {
        enum vr_synth_split split = o->splits[s];
        char sub[64];
        snprintf(sub, sizeof sub, "images/%s", vr_synth_split_names[split]);
        char *dir = vr_path_join(o->out, sub);
        if (vr_mkdir_p(dir, err)) {
            free(dir);
            return -1;
        }
        struct job j = {.o = o, .split = split, .n = o->count[s], .base = base, .total = total,
                        .dir = dir, .ext = ext};
        j.recs = calloc((size_t)(j.n ? j.n : 1), sizeof *j.recs);
        if (!j.recs) {
            free(dir);
            return vr_err_set(err, VR_ERR_SYS, NULL, 0, "out of memory for %lld scenes",
                              (long long)j.n);
        }
        atomic_init(&j.next, 0);
        atomic_init(&j.done, 0);
        atomic_init(&j.failed, 0);
        pthread_mutex_init(&j.mu, NULL);
        int nt = o->threads, started = 0;
        pthread_t *th = vr_xcalloc((size_t)nt, sizeof *th);
        for (int k = 1; k < nt && (int64_t)k < j.n; k++) {
            /* a thread that cannot start only costs speed: the rest share its work */
            if (pthread_create(&th[k], NULL, job_worker, &j) != 0) break;
            started = k;
        }
        job_run(&j, 1);
        for (int k = 1; k <= started; k++) pthread_join(th[k], NULL);
        free(th);
        pthread_mutex_destroy(&j.mu);
        int rc = 0;
        if (atomic_load(&j.failed)) {
            *err = j.err;
            rc = -1;
        }
        if (rc == 0 && o->progress) vr_progress_update(o->progress, base + j.n);
        /* the images are durable before the JSON that names them exists */
        if (rc == 0) rc = vr_image_write_sync(dir, err);
        if (rc == 0) rc = write_split(o, split, j.recs, j.n, ext, err);
        free(j.recs);
        free(dir);
        if (rc) return -1;
        base += j.n;
    }
    return 0;
}

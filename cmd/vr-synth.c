/* vr-synth: write a synthetic grounding dataset (shapes, colours, relations)
 * as images plus one VLM-R1 REC JSON per split, and its task lines on
 * standard output. */
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "synth.h"

static struct vr_synth_opts o = {.out = "synth", .w = 336, .h = 336, .format = VR_IMAGE_PNG};
static const char *splits = "train,val,ood";
static int64_t count = 1000;
static vr_opt_fn format_arg, size_arg, mask_arg;

static const struct vr_opt opts[] = {
    VR_OPT_STRING("out", 'o', "DIR", &o.out, "output folder (default synth)"),
    VR_OPT_U64("seed", 0, "N", &o.seed, "seed; the same seed gives the same bytes (default 0)"),
    VR_OPT_I64("count", 'n', "N", &count, 0, 10000000, "scenes per split (default 1000)"),
    VR_OPT_STRING("splits", 0, "LIST", &splits, "splits to write, each NAME or NAME:N (default train,val,ood)"),
    VR_OPT_CALL("format", 'f', "FMT", format_arg, &o.format, "image format: png or jpg (default png)"),
    VR_OPT_CALL("size", 0, "WxH", size_arg, &o, "size of train and val images (default 336x336)"),
    VR_OPT_INT("jobs", 'j', "N", &o.threads, 1, 256, "threads (default: the number of CPUs)"),
    VR_OPT_FLAG("draw-boxes", 0, &o.draw_boxes, "outline each target's box in its image (to look at, not to train on)"),
    VR_OPT_CALL("kinds", 0, "LIST", mask_arg, &o.knobs.kinds, "expression kinds: attribute, relation, ordinal (default all)"),
    VR_OPT_CALL("backgrounds", 0, "LIST", mask_arg, &o.knobs.bgs, "train and val backgrounds: plain, noisy, striped, checker, gradient, position (default plain,noisy,striped)"),
    VR_OPT_CALL("ood-backgrounds", 0, "LIST", mask_arg, &o.knobs.ood_bgs, "ood backgrounds, from the same names (default checker,gradient)"),
    VR_OPT_CALL("sizes", 0, "LIST", mask_arg, &o.knobs.sizes, "target sizes: small, medium, large (default all)"),
    VR_OPT_INT("max-objects", 0, "N", &o.knobs.max_objects, 1, VR_SYNTH_MAX_OBJ, "at most N objects a scene, 1..8 (default: as each kind needs, up to 6)"),
    VR_OPT_INT("scale", 0, "PCT", &o.knobs.scale, 25, 400, "object sizes in percent of the usual, 25..400 (default 100)"),
    VR_OPT_END,
};

static const struct vr_cli cli = {
    "vr-synth",
    "[OPTION]...",
    "Write synthetic grounding scenes (shapes of 8 colours and 3 sizes with referring\n"
    "expressions) to DIR/images/SPLIT/ and DIR/SPLIT.json (VLM-R1 REC), and their task\n"
    "lines to standard output. Splits: train, val (same distribution), ood (held-out\n"
    "colour-shape pairs, phrasings, backgrounds and aspect ratios).",
    opts,
};

/* "train,val:100,ood" */
static void parse_splits(const char *arg, int64_t n, struct vr_synth_opts *o)
{
    char *dup = vr_xstrdup(arg), *save = NULL;
    o->nsplits = 0;
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        int64_t count = n;
        struct vr_err err;
        if (colon) {
            *colon = 0;
            if (vr_cli_get_int("splits", colon + 1, 0, 10000000, &count, &err)) vr_die(&err);
        }
        int s = vr_synth_split_parse(tok);
        if (s < 0) vr_die_usage("--splits: unknown split '%s' (train, val, ood)", tok);
        for (int i = 0; i < o->nsplits; i++)
            if ((int)o->splits[i] == s) vr_die_usage("--splits: '%s' is named twice", tok);
        o->splits[o->nsplits] = s;
        o->count[o->nsplits++] = count;
    }
    if (o->nsplits == 0) vr_die_usage("--splits: no split named");
    free(dup);
}

static int format_arg(const struct vr_opt *opt, const char *arg, struct vr_err *err)
{
    enum vr_image_format *f = opt->dst;
    if (strcmp(arg, "png") == 0) *f = VR_IMAGE_PNG;
    else if (strcmp(arg, "jpg") == 0 || strcmp(arg, "jpeg") == 0) *f = VR_IMAGE_JPEG;
    else return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--format: unknown image format '%s' (png, jpg)", arg);
    return 0;
}

static int size_arg(const struct vr_opt *opt, const char *arg, struct vr_err *err)
{
    struct vr_synth_opts *so = opt->dst;
    int w, h, n = 0;
    char x;
    if (sscanf(arg, "%d%c%d%n", &w, &x, &h, &n) != 3 || (x != 'x' && x != 'X') || arg[n])
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--size: '%s' is not WxH", arg);
    if (w < 48 || h < 48 || w > 4096 || h > 4096)
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--size: %dx%d is outside 48x48 .. 4096x4096", w, h);
    if (w > 3 * h || h > 3 * w) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--size: %dx%d is longer than 3:1", w, h);
    so->w = w;
    so->h = h;
    return 0;
}

/* --kinds, --backgrounds, --ood-backgrounds, --sizes: names into a bit mask */
static int mask_arg(const struct vr_opt *opt, const char *arg, struct vr_err *err)
{
    unsigned *m = opt->dst;
    int kinds = m == &o.knobs.kinds, sizes = m == &o.knobs.sizes;
    const char *const *names = kinds ? vr_synth_kind_names : sizes ? vr_synth_size_names : vr_synth_bg_names;
    char what[32];
    snprintf(what, sizeof what, "--%s", opt->name);
    return vr_synth_mask_parse(arg, names, kinds ? VR_EXPR_COUNT : sizes ? VR_SIZE_COUNT : VR_BG_COUNT, what, m, err);
}

int main(int argc, char **argv)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = ncpu > 0 ? (int)(ncpu < 256 ? ncpu : 256) : 1;
    int ind = vr_cli_parse(&cli, argc, argv);
    if (ind < argc) vr_die_usage("unexpected argument '%s'", argv[ind]);
    if (!o.out[0]) vr_die_usage("--out: empty folder name");
    parse_splits(splits, count, &o);
    struct vr_err err;
    if (vr_synth_knobs_check(&o.knobs, &err)) vr_die_usage("%s", err.msg);

    struct vr_progress prog;
    vr_progress_init(&prog, "vr-synth", "scenes", 0);
    o.progress = &prog;
    o.tasks = stdout;
    if (vr_synth_write(&o, &err)) vr_die(&err);
    vr_progress_end(&prog);
    return 0;
}

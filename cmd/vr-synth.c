/* vr-synth: write a synthetic grounding dataset (shapes, colours, relations)
 * as images plus one VLM-R1 REC JSON per split, and its task lines on
 * standard output. */
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "synth.h"

enum { O_SEED = 256, O_SPLITS, O_SIZE, O_DRAW, O_KINDS, O_BGS, O_OOD_BGS, O_SIZES, O_MAXOBJ, O_SCALE };

static const struct vr_opt opts[] = {
    {"out", 'o', "DIR", "output folder (default synth)"},
    {"seed", O_SEED, "N", "seed; the same seed gives the same bytes (default 0)"},
    {"count", 'n', "N", "scenes per split (default 1000)"},
    {"splits", O_SPLITS, "LIST", "splits to write, each NAME or NAME:N (default train,val,ood)"},
    {"format", 'f', "FMT", "image format: png or jpg (default png)"},
    {"size", O_SIZE, "WxH", "size of train and val images (default 336x336)"},
    {"jobs", 'j', "N", "threads (default: the number of CPUs)"},
    {"draw-boxes", O_DRAW, NULL, "outline each target's box in its image (to look at, not to train on)"},
    {"kinds", O_KINDS, "LIST", "expression kinds: attribute, relation, ordinal (default all)"},
    {"backgrounds", O_BGS, "LIST", "train and val backgrounds: plain, noisy, striped, checker, gradient, position (default plain,noisy,striped)"},
    {"ood-backgrounds", O_OOD_BGS, "LIST", "ood backgrounds, from the same names (default checker,gradient)"},
    {"sizes", O_SIZES, "LIST", "target sizes: small, medium, large (default all)"},
    {"max-objects", O_MAXOBJ, "N", "at most N objects a scene, 1..8 (default: as each kind needs, up to 6)"},
    {"scale", O_SCALE, "PCT", "object sizes in percent of the usual, 25..400 (default 100)"},
    {0},
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
        if (colon) {
            *colon = 0;
            count = vr_cli_int("splits", colon + 1, 0, 10000000);
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

static void parse_size(const char *arg, int *w, int *h)
{
    char x;
    int n = 0;
    if (sscanf(arg, "%d%c%d%n", w, &x, h, &n) != 3 || (x != 'x' && x != 'X') || arg[n])
        vr_die_usage("--size: '%s' is not WxH", arg);
    if (*w < 48 || *h < 48 || *w > 4096 || *h > 4096)
        vr_die_usage("--size: %dx%d is outside 48x48 .. 4096x4096", *w, *h);
    if (*w > 3 * *h || *h > 3 * *w) vr_die_usage("--size: %dx%d is longer than 3:1", *w, *h);
}

static void mask(const char *arg, const char *what, const char *const *names, int n, unsigned *m)
{
    struct vr_err err;
    if (vr_synth_mask_parse(arg, names, n, what, m, &err)) vr_die_usage("%s", err.msg);
}

int main(int argc, char **argv)
{
    struct vr_synth_opts o = {.out = "synth", .w = 336, .h = 336, .format = VR_IMAGE_PNG};
    const char *splits = "train,val,ood";
    int64_t n = 1000;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = ncpu > 0 ? (int)(ncpu < 256 ? ncpu : 256) : 1;
    int c, ind;
    const char *arg;
    vr_cli_init(&cli, argc, argv);
    while ((c = vr_cli_next(&ind, &arg)) != -1) {
        switch (c) {
        case 'o': o.out = arg; break;
        case O_SEED: o.seed = vr_cli_u64("seed", arg); break;
        case 'n': n = vr_cli_int("count", arg, 0, 10000000); break;
        case O_SPLITS: splits = arg; break;
        case 'f':
            if (strcmp(arg, "png") == 0) o.format = VR_IMAGE_PNG;
            else if (strcmp(arg, "jpg") == 0 || strcmp(arg, "jpeg") == 0) o.format = VR_IMAGE_JPEG;
            else vr_die_usage("--format: unknown image format '%s' (png, jpg)", arg);
            break;
        case O_SIZE: parse_size(arg, &o.w, &o.h); break;
        case 'j': o.threads = (int)vr_cli_int("jobs", arg, 1, 256); break;
        case O_DRAW: o.draw_boxes = 1; break;
        case O_KINDS: mask(arg, "--kinds", vr_synth_kind_names, VR_EXPR_COUNT, &o.knobs.kinds); break;
        case O_BGS: mask(arg, "--backgrounds", vr_synth_bg_names, VR_BG_COUNT, &o.knobs.bgs); break;
        case O_OOD_BGS:
            mask(arg, "--ood-backgrounds", vr_synth_bg_names, VR_BG_COUNT, &o.knobs.ood_bgs);
            break;
        case O_SIZES: mask(arg, "--sizes", vr_synth_size_names, VR_SIZE_COUNT, &o.knobs.sizes); break;
        case O_MAXOBJ: o.knobs.max_objects = (int)vr_cli_int("max-objects", arg, 1, VR_SYNTH_MAX_OBJ); break;
        case O_SCALE: o.knobs.scale = (int)vr_cli_int("scale", arg, 25, 400); break;
        }
    }
    if (ind < argc) vr_die_usage("unexpected argument '%s'", argv[ind]);
    if (!o.out[0]) vr_die_usage("--out: empty folder name");
    parse_splits(splits, n, &o);
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

/* vr-synth: write a synthetic grounding dataset (shapes, colours, relations)
 * as images plus one VLM-R1 REC JSON per split, and its task lines on
 * standard output. */
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "synth.h"

enum { O_SEED = 256, O_SPLITS, O_SIZE, O_DRAW };

static const struct vr_opt opts[] = {
    {"out", 'o', "DIR", "output folder (default synth)"},
    {"seed", O_SEED, "N", "seed; the same seed gives the same bytes (default 0)"},
    {"count", 'n', "N", "scenes per split (default 1000)"},
    {"splits", O_SPLITS, "LIST", "splits to write, each NAME or NAME:N (default train,val,ood)"},
    {"format", 'f', "FMT", "image format: png or jpg (default png)"},
    {"size", O_SIZE, "WxH", "size of train and val images (default 336x336)"},
    {"jobs", 'j', "N", "threads (default: the number of CPUs)"},
    {"draw-boxes", O_DRAW, NULL, "outline each target's box in its image (to look at, not to train on)"},
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
        }
    }
    if (ind < argc) vr_die_usage("unexpected argument '%s'", argv[ind]);
    if (!o.out[0]) vr_die_usage("--out: empty folder name");
    parse_splits(splits, n, &o);

    struct vr_progress prog;
    vr_progress_init(&prog, "vr-synth", "scenes", 0);
    o.progress = &prog;
    o.tasks = stdout;
    struct vr_err err;
    if (vr_synth_write(&o, &err)) vr_die(&err);
    vr_progress_end(&prog);
    return 0;
}

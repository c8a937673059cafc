/* vr-encode: add Qwen2-VL pixels to task lines (DESIGN.md §3.2). Each image
 * is decoded, preprocessed exactly as transformers' slow image processor does
 * and stored in a content-addressed safetensors cache (lib/pixcache.h); the
 * line gains "pixels". With --vision the model's vision tower also runs on
 * each image and the line gains "vision" (lib/vcache.h). The pipeline (-j
 * workers, lines in input order) is lib/encode.h; this main parses options,
 * prints what it notes and maps failures to exit codes. */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "cli.h"
#include "encode.h"

static struct vr_progress prog;
static struct vr_encode_opts o = {.cache_dir = "cache", .max_decode_pixels = VR_IMAGE_MAX_PIXELS_DEFAULT, .jobs = 2,
                                  .out_name = "<stdout>", .progress = &prog};
static const char *model;
static int64_t min_pixels = -1, max_pixels = -1; /* -1: the --model's or the default */
static int min_side = -1, pillow = -1, vision;

static const struct vr_opt opts[] = {
    VR_OPT_STRING("cache", 'c', "DIR", &o.cache_dir, "folder of the pixel cache files (default: cache)"),
    VR_OPT_STRING("model", 'm', "DIR", &model, "preprocessing parameters from DIR/preprocessor_config.json"),
    VR_OPT_I64("min-pixels", 0, "N", &min_pixels, 1, 1LL << 30, "least resized area in pixels (default 3136, VLM-R1's)"),
    VR_OPT_I64("max-pixels", 0, "N", &max_pixels, 1, 1LL << 30, "largest resized area in pixels (default 12845056, VLM-R1's)"),
    VR_OPT_INT("min-side", 0, "N", &min_side, 0, 4096, "first enlarge a short side under N px, as VLM-R1's trainer (default 0: off)"),
    VR_OPT_INT("pillow", 0, "N", &pillow, 1, 99, "resample in the pass order of Pillow N: 12 or 13 (default 13)"),
    VR_OPT_INT("jobs", 'j', "N", &o.jobs, 1, 256, "images processed in parallel (default 2)"),
    VR_OPT_I64("max-decode-pixels", 0, "N", &o.max_decode_pixels, 1, INT64_MAX, "refuse larger images before decoding (default 178956970)"),
    VR_OPT_FLAG("skip-bad", 0, &o.skip_bad, "skip bad lines and images with a warning instead of failing"),
    VR_OPT_FLAG("vision", 0, &vision, "also cache the vision tower's embeddings of the --model checkpoint"),
    VR_OPT_STRING("confine", 0, "DIR", &o.confine, "read only images inside DIR (symlinks resolved); others are bad lines"),
    VR_OPT_END,
};

static const struct vr_cli cli = {
    "vr-encode",
    "[OPTION]... [FILE]...",
    "Add preprocessed image pixels (Qwen2-VL) to task lines, caching them as safetensors files.\n"
    "With no FILE, or when FILE is -, read standard input.",
    opts,
};

static void note(void *ctx, enum vr_encode_note what, const char *msg)
{
    (void)ctx;
    vr_warn("%s (%s)", msg, what == VR_ENCODE_SKIPPED ? "skipped" : "rebuilt the cache entry");
}

/* The reader went away: end quietly, as a pipe stage killed by SIGPIPE does
 * (SIGPIPE is ignored while workers may be writing cache files, so that a
 * write fails with EPIPE instead and they can finish them). */
__attribute__((noreturn)) static void pipe_closed(void)
{
    signal(SIGPIPE, SIG_DFL);
    raise(SIGPIPE);
    _exit(141);
}

static void report(const struct vr_encode_stats *s)
{
    if (s->skipped)
        vr_warn("%lld tasks skipped, %lld written", (long long)s->skipped, (long long)s->written);
    else if (isatty(2))
        vr_warn("%lld tasks, %lld images (%lld cached, %lld built)", (long long)s->written,
                (long long)s->images, (long long)s->hits, (long long)s->misses);
    if (s->vision_model[0] && isatty(2))
        vr_warn("vision %s: %lld embeddings cached, %lld computed", s->vision_model,
                (long long)s->vision_hits, (long long)s->vision_misses);
}

int main(int argc, char **argv)
{
    struct vr_err err;
    int ind = vr_cli_parse(&cli, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    o.out = stdout;
    o.note = note;
    vr_preproc_defaults(&o.pp);
    if (model && vr_preproc_load(&o.pp, model, &err)) vr_die(&err);
    if (min_pixels > 0) o.pp.min_pixels = min_pixels;
    if (max_pixels > 0) o.pp.max_pixels = max_pixels;
    if (min_side >= 0) o.pp.min_side = min_side;
    if (pillow > 0) o.pp.pillow = pillow;
    if (vr_preproc_check(&o.pp, &err)) vr_die_usage("%s", err.msg);
    if (vision && !model) vr_die_usage("--vision needs --model DIR");
    o.vision_model = vision ? model : NULL;

    struct vr_encode *e;
    if (vr_encode_open(&e, &o, &err)) {
        if (err.kind == VR_ERR_USAGE) vr_die_usage("%s", err.msg);
        vr_die(&err);
    }
    vr_progress_init(&prog, "vr-encode", "images", 0);
    int rc = vr_encode_run(e, argv + ind, argc - ind, &err);
    if (rc && vr_encode_stats(e)->broken_pipe) pipe_closed();
    if (rc) vr_die(&err);
    vr_progress_end(&prog);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (errno == EPIPE) pipe_closed();
        vr_die_msg("<stdout>: write failed");
    }
    report(vr_encode_stats(e));
    vr_encode_free(e);
    return 0;
}

/* vr-prep: read grounding datasets (VLM-R1 REC JSON, rec.yaml, conversations
 * JSONL, LLaMA-Factory messages, task JSONL) and write task lines. The stream
 * (image checks, subsets, epochs) is lib/prep.h; this main parses options,
 * opens the output and maps errors to exit codes. */
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dataset.h"
#include "fs.h"
#include "prep.h"

static void warn_cb(void *ctx, const struct vr_err *e)
{
    (void)ctx;
    vr_warn("%s (skipped)", e->msg);
}

static struct vr_prep_opts o = {.ds = {.format = VR_FMT_AUTO, .warn = warn_cb}, .epochs = 1};
static const char *images, *output;
static vr_opt_fn format_arg, take_arg;

static const struct vr_opt opts[] = {
    VR_OPT_CALL("format", 'f', "FMT", format_arg, &o.ds.format, "input format: auto, rec (vlmr1), yaml, conv, messages, tasks (default auto)"),
    VR_OPT_STRING("images", 'i', "DIR[:DIR...]", &images, "image folders, one for all inputs or one per input"),
    VR_OPT_CALL("take", 0, "RULE", take_arg, &o.take, "subset: all, first:N, end:N, random:N, pyrandom:N; N may be P% (default all)"),
    VR_OPT_U64("seed", 0, "N", &o.ds.seed, "seed for random and pyrandom subsets and rec.yaml sampling (default 0)"),
    VR_OPT_STRING("split", 0, "NAME", &o.ds.split, "split name for every task (default: input file name)"),
    VR_OPT_FLAG("check-images", 0, &o.check_images, "open every image header; record image_sizes; check boxes"),
    VR_OPT_FLAG("skip-bad", 0, &o.ds.skip_bad, "skip bad records with a warning instead of failing"),
    VR_OPT_FLAG("allow-outside", 0, &o.ds.allow_outside, "let relative image paths leave the images folder (../)"),
    VR_OPT_INT("epochs", 0, "N", &o.epochs, 1, 1000000, "write the stream N times, re-drawing random subsets (default 1)"),
    VR_OPT_STRING("output", 'o', "FILE", &output, "write to FILE atomically instead of standard output"),
    VR_OPT_END,
};

static const struct vr_cli cli = {
    "vr-prep",
    "[OPTION]... [FILE[:FILE...]]...",
    "Convert grounding datasets to vr task lines (JSONL) on standard output.\n"
    "With no FILE, read task lines or records from standard input.",
    opts,
};

static int format_arg(const struct vr_opt *opt, const char *arg, struct vr_err *err)
{
    if (vr_format_parse(arg, opt->dst)) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--format: unknown format '%s'", arg);
    return 0;
}

static int take_arg(const struct vr_opt *opt, const char *arg, struct vr_err *err)
{
    if (vr_take_parse(arg, opt->dst, err) == 0) return 0;
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--take: %s", msg);
}

/* Split "a:b:c" into a NULL-terminated list appended to *v. */
static void split_colon(const char *s, char ***v, int *n)
{
    char *dup = vr_xstrdup(s), *save = NULL;
    for (char *tok = strtok_r(dup, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
        *v = vr_xrealloc(*v, ((size_t)*n + 2) * sizeof **v);
        (*v)[(*n)++] = vr_xstrdup(tok);
        (*v)[*n] = NULL;
    }
    free(dup);
}

int main(int argc, char **argv)
{
    struct vr_err err;
    int ind = vr_cli_parse(&cli, argc, argv);
    char **inputs = NULL, **dirs = NULL;
    int ninputs = 0, ndirs = 0;
    for (int i = ind; i < argc; i++) split_colon(argv[i], &inputs, &ninputs);
    if (ninputs == 0) split_colon("-", &inputs, &ninputs);
    if (images) split_colon(images, &dirs, &ndirs);
    if (ndirs > 1 && ndirs != ninputs)
        vr_die_usage("--images names %d folders for %d inputs; give one, or one per input", ndirs,
                     ninputs);

    struct vr_atomic out = {0};
    FILE *fp = stdout;
    if (output) {
        if (vr_atomic_open(&out, output, &err)) vr_die(&err);
        fp = fdopen(dup(out.fd), "w");
        if (!fp) vr_die_msg("%s: cannot open for writing", output);
    }
    struct vr_progress prog;
    vr_progress_init(&prog, "vr-prep", "files", ninputs);
    o.dirs = dirs;
    o.ndirs = ndirs;
    o.progress = &prog;
    int64_t written = 0;
    int rc = vr_prep_run(&o, inputs, ninputs, fp, &written, &err);
    if (rc >= 0 && (fflush(fp) != 0 || ferror(fp)))
        rc = vr_err_sys(&err, output ? output : "<stdout>", "write failed");
    if (rc < 0) {
        if (output) vr_atomic_abort(&out);
        vr_die(&err);
    }
    if (output) {
        fclose(fp);
        if (vr_atomic_commit(&out, &err)) vr_die(&err);
    }
    if (o.ds.skipped) vr_warn("%lld records skipped, %lld tasks written", (long long)o.ds.skipped, (long long)written);
    else if (isatty(2))
        vr_warn("%lld tasks written", (long long)written);
    for (int i = 0; i < ninputs; i++) free(inputs[i]);
    for (int i = 0; i < ndirs; i++) free(dirs[i]);
    free(inputs);
    free(dirs);
    return 0;
}

/* vr-inspect: list the tensors of safetensors files and checkpoint folders
 * (one model.safetensors, or shards + model.safetensors.index.json), one JSON
 * line per tensor; with --stats, value statistics of float tensors; with
 * --header, one line per file. A debugging tool beside the pipeline stages;
 * every file is validated by lib/safetensors before any byte is used. The
 * lines are lib/inspect.h's; this main reports a bad file and goes on. */
#include "cli.h"
#include "inspect.h"

static struct vr_inspect_opts io;
static const char *cmp;
static int model;

static const struct vr_opt opts[] = {
    VR_OPT_FLAG("stats", 's', &io.stats, "add min, max, mean (finite values) and nan, inf counts of float tensors"),
    VR_OPT_FLAG("header", 'H', &io.header, "one line per file instead: header and data bytes, tensors, __metadata__"),
    VR_OPT_FLAG("model", 'm', &model, "load each DIR as a Qwen2.5-VL checkpoint, check every tensor against config.json, one line each"),
    VR_OPT_STRING("compare", 'c', "REF", &cmp, "add max_abs and rel = max|a-b|/max|b| against the same-named float tensor of REF (file or folder)"),
    VR_OPT_END,
};

static const struct vr_cli cli = {
    "vr-inspect",
    "[OPTION]... FILE|DIR...",
    "List the tensors of safetensors files and checkpoint folders (model.safetensors, or\n"
    "shards named by model.safetensors.index.json), one JSON line per tensor:\n"
    "file, name, dtype, shape, offset (of its first byte in the file) and bytes.",
    opts,
};

int main(int argc, char **argv)
{
    struct vr_stset ref;
    struct vr_err err = {0};
    int status = 0;
    int ind = vr_cli_parse(&cli, argc, argv);
    if (cmp) {
        if (vr_stset_open(&ref, cmp, &err)) vr_die(&err);
        io.ref = &ref;
    }
    if (ind >= argc) vr_die_usage("no FILE or DIR given");
    for (int a = ind; a < argc; a++) {
        int rc = model ? vr_inspect_model(stdout, argv[a], &err) : vr_inspect_path(stdout, argv[a], &io, &err);
        if (rc == 0) continue;
        if (ferror(stdout)) vr_die(&err);
        vr_warn("%s", err.msg); /* report, go on with the next, exit 1 */
        if (err.hint[0] && !model) fprintf(stderr, "hint: %s\n", err.hint);
        status = 1;
    }
    if (cmp) vr_stset_close(&ref);
    if (fflush(stdout) != 0 || ferror(stdout)) vr_die_msg("<stdout>: write failed");
    return status;
}

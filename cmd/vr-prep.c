/* vr-prep: read grounding datasets (VLM-R1 REC JSON, rec.yaml, conversations
 * JSONL, LLaMA-Factory messages, task JSONL) and write task lines. */
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dataset.h"
#include "fs.h"
#include "jsonl.h"
#include "progress.h"

enum { O_TAKE = 256, O_SEED, O_SPLIT, O_CHECK, O_SKIP, O_EPOCHS, O_OUTSIDE };

static const struct vr_opt opts[] = {
    {"format", 'f', "FMT", "input format: auto, rec (vlmr1), yaml, conv, messages, tasks (default auto)"},
    {"images", 'i', "DIR[:DIR...]", "image folders, one for all inputs or one per input"},
    {"take", O_TAKE, "RULE", "subset: all, first:N, end:N, random:N, pyrandom:N; N may be P% (default all)"},
    {"seed", O_SEED, "N", "seed for random and pyrandom subsets and rec.yaml sampling (default 0)"},
    {"split", O_SPLIT, "NAME", "split name for every task (default: input file name)"},
    {"check-images", O_CHECK, NULL, "open every image header; record image_sizes; check boxes"},
    {"skip-bad", O_SKIP, NULL, "skip bad records with a warning instead of failing"},
    {"allow-outside", O_OUTSIDE, NULL, "let relative image paths leave the images folder (../)"},
    {"epochs", O_EPOCHS, "N", "write the stream N times, re-drawing random subsets (default 1)"},
    {"output", 'o', "FILE", "write to FILE atomically instead of standard output"},
    {0},
};

static const struct vr_cli cli = {
    "vr-prep",
    "[OPTION]... [FILE[:FILE...]]...",
    "Convert grounding datasets to vr task lines (JSONL) on standard output.\n"
    "With no FILE, read task lines or records from standard input.",
    opts,
};

static void warn_cb(void *ctx, const struct vr_err *e)
{
    (void)ctx;
    vr_warn("%s (skipped)", e->msg);
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

/* Where tasks go: straight to the output when the subset rule allows it
 * (all or first:N, one epoch), else into a pool for random, pyrandom and end
 * subsets, which need the whole list. */
struct sink {
    int stream;
    int64_t limit; /* streaming first:N: stop after N; -1 for no limit */
    FILE *fp;
    struct vr_imgcache *ic; /* --check-images */
    struct vr_dataset_opts *o;
    struct vr_tasks pool;
    int64_t written;
};

/* Check (with --check-images) and write one task. 0 also for a task skipped
 * with --skip-bad; -1 on failure. */
static int put_task(struct sink *k, json_t *t, struct vr_err *err)
{
    if (k->ic && vr_dataset_check_task(k->ic, t, err)) {
        if (!k->o->skip_bad) return -1;
        k->o->skipped++;
        warn_cb(NULL, err);
        return 0;
    }
    if (vr_jsonl_write(k->fp, t, err)) return -1;
    k->written++;
    return 0;
}

static int emit(void *ctx, json_t *t, struct vr_err *err)
{
    struct sink *k = ctx;
    if (!k->stream) {
        vr_tasks_push(&k->pool, t);
        return 0;
    }
    int rc = put_task(k, t, err);
    json_decref(t);
    if (rc) return -1;
    return k->limit >= 0 && k->written >= k->limit;
}

int main(int argc, char **argv)
{
    struct vr_dataset_opts o = {.format = VR_FMT_AUTO, .warn = warn_cb};
    struct vr_take take = {0};
    const char *images = NULL, *output = NULL;
    int check = 0, epochs = 1;
    struct vr_err err;
    int c, ind;
    const char *arg;
    vr_cli_init(&cli, argc, argv);
    while ((c = vr_cli_next(&ind, &arg)) != -1) {
        switch (c) {
        case 'f':
            if (vr_format_parse(arg, &o.format)) vr_die_usage("--format: unknown format '%s'", arg);
            break;
        case 'i': images = arg; break;
        case O_TAKE:
            if (vr_take_parse(arg, &take, &err)) vr_die_usage("--take: %s", err.msg);
            break;
        case O_SEED: o.seed = vr_cli_u64("seed", arg); break;
        case O_SPLIT: o.split = arg; break;
        case O_CHECK: check = 1; break;
        case O_SKIP: o.skip_bad = 1; break;
        case O_OUTSIDE: o.allow_outside = 1; break;
        case O_EPOCHS: epochs = (int)vr_cli_int("epochs", arg, 1, 1000000); break;
        case 'o': output = arg; break;
        }
    }
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
    struct sink k = {.fp = fp, .o = &o, .limit = -1, .ic = check ? vr_imgcache_new() : NULL};
    k.stream = epochs == 1 && (take.how == VR_TAKE_ALL || (take.how == VR_TAKE_FIRST && !take.percent));
    if (k.stream && take.how == VR_TAKE_FIRST) k.limit = (int64_t)take.n;
    int rc = 0;
    struct vr_progress prog;
    vr_progress_init(&prog, "vr-prep", "files", ninputs);
    for (int i = 0; i < ninputs && rc == 0 && k.limit != 0; i++) {
        o.images_dir = ndirs ? dirs[ndirs == 1 ? 0 : i] : NULL;
        rc = vr_dataset_read(inputs[i], &o, emit, &k, &err);
        vr_progress_update(&prog, i + 1);
    }
    vr_progress_end(&prog);
    for (int e = 0; e < epochs && rc >= 0 && !k.stream; e++) {
        struct vr_tasks sel = {.cap = k.pool.n + 1};
        sel.v = vr_xmalloc((size_t)sel.cap * sizeof *sel.v);
        for (int64_t i = 0; i < k.pool.n; i++) sel.v[sel.n++] = json_incref(k.pool.v[i]);
        sel.n = vr_take_apply(sel.v, sel.n, &take, o.seed, (uint64_t)e);
        for (int64_t i = 0; i < sel.n && rc >= 0; i++) {
            if (epochs > 1) json_object_set_new(sel.v[i], "epoch", json_integer(e));
            rc = put_task(&k, sel.v[i], &err);
            if (epochs > 1) json_object_del(sel.v[i], "epoch");
        }
        vr_tasks_release(&sel);
    }
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
    if (o.skipped) vr_warn("%lld records skipped, %lld tasks written", (long long)o.skipped,
                           (long long)k.written);
    else if (isatty(2))
        vr_warn("%lld tasks written", (long long)k.written);
    vr_tasks_release(&k.pool);
    vr_imgcache_free(k.ic);
    for (int i = 0; i < ninputs; i++) free(inputs[i]);
    for (int i = 0; i < ndirs; i++) free(dirs[i]);
    free(inputs);
    free(dirs);
    return 0;
}

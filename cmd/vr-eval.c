/* vr-eval: score model outputs as VLM-R1's evaluation scripts do and report
 * accuracy at IoU 0.5 per split, or compare two runs (DESIGN.md §3.6). Reads
 * vr-rollout's lines, VLM-R1's rec_results_*.json, or JSONL with a model's
 * text; the last stage of an eval pipeline and the one piped into jq. */
#include <string.h>

#include "cli.h"
#include "draw.h"
#include "eval.h"
#include "fs.h"
#include "image.h"
#include "image_write.h"
#include "jsonl.h"
#include "progress.h"

enum { O_PARSE = 256, O_IOU, O_BY, O_SPLIT, O_DIFF, O_DRAW, O_DRAW_MAX, O_SKIP };

static const struct vr_opt opts[] = {
    {"parse", O_PARSE, "MODE", "r1 (test_rec_r1.py: the box in <answer>) or baseline (test_rec_baseline.py) (default r1)"},
    {"iou", O_IOU, "T", "a prediction is correct when its IoU > T (default 0.5)"},
    {"all", 'a', NULL, "a verdict for every completion of a line, not only the first"},
    {"by", O_BY, "FIELD", "group the summaries by the lines' FIELD (default split)"},
    {"summary", 's', NULL, "print only the summary lines"},
    {"split", O_SPLIT, "NAME", "the split of inputs that name none (default: the file's name)"},
    {"diff", O_DIFF, NULL, "compare two runs, OLD and NEW, paired by split and id"},
    {"draw", O_DRAW, "DIR", "write a PNG per sample to DIR: the image, gold and predicted boxes, IoU"},
    {"draw-max", O_DRAW_MAX, "N", "with --draw, the first N samples only (default 100)"},
    {"skip-bad", O_SKIP, NULL, "skip bad lines with a warning instead of failing"},
    {0},
};

static const struct vr_cli cli = {
    "vr-eval",
    "[OPTION]... [FILE]...\n   or: vr-eval --diff [OPTION]... OLD NEW",
    "Score grounding answers as VLM-R1's evaluation scripts do: one verdict line per sample,\n"
    "then one summary line per split (accuracy at IoU > 0.5 with a Wilson interval, mean IoU,\n"
    "parse and format rates). Reads vr-rollout lines, VLM-R1 rec_results_*.json files (by the\n"
    ".json extension) or JSONL with a model's text. With no FILE, read standard input.",
    opts,
};

struct groups { /* summaries in order of first appearance */
    char **name;
    struct vr_eval_summary *sum;
    int n;
};

static struct vr_eval_summary *group_get(struct groups *g, const char *name)
{
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->name[i], name)) return &g->sum[i];
    g->name = vr_xrealloc(g->name, (size_t)(g->n + 1) * sizeof *g->name);
    g->sum = vr_xrealloc(g->sum, (size_t)(g->n + 1) * sizeof *g->sum);
    g->name[g->n] = vr_xstrdup(name);
    memset(&g->sum[g->n], 0, sizeof g->sum[g->n]);
    return &g->sum[g->n++];
}

/* What happens to each verdict of a run. */
struct sink {
    const struct vr_eval_opts *o;
    int summary_only;
    struct groups groups;
    const char *draw_dir;
    int64_t draw_max, drawn, seen;
    json_t *keep; /* --diff: verdicts by split + id, else NULL */
};

static void out_json(json_t *v)
{
    struct vr_err err;
    if (vr_jsonl_write(stdout, v, &err)) vr_die(&err);
    json_decref(v);
}

/* --draw: the sample over its image; a missing image is a warning. */
static void draw(struct sink *s, const struct vr_eval_verdict *v)
{
    if (!s->draw_dir || s->drawn >= s->draw_max) return;
    struct vr_err err;
    if (!v->image) {
        vr_warn("%s: no image to draw", v->id);
        return;
    }
    struct vr_image im = {0};
    if (vr_image_load(v->image, VR_IMAGE_MAX_PIXELS_DEFAULT, &im, &err)) {
        vr_warn("%s (not drawn)", err.msg);
        return;
    }
    char line2[160], *file = NULL;
    if (!v->has_gt) snprintf(line2, sizeof line2, "%s", vr_eval_status_name(v->status));
    else if (v->status != VR_EVAL_OK) snprintf(line2, sizeof line2, "no box (%s)", vr_eval_status_name(v->status));
    else snprintf(line2, sizeof line2, "IoU %.3f  %s", v->iou, v->correct ? "correct" : "wrong");
    const char *lines[] = {v->caption ? v->caption : v->id, line2, NULL};
    struct vr_draw_box gold = {v->gt[0], v->gt[1], v->gt[2], v->gt[3]};
    struct vr_draw_box pred = {v->pred[0], v->pred[1], v->pred[2], v->pred[3]};
    struct vr_draw_spec spec = {v->has_gt ? &gold : NULL, v->status == VR_EVAL_OK ? &pred : NULL, lines};
    /* the sample's number keeps files in input order; the id, made safe, says which */
    struct vr_buf name = {0};
    vr_buf_printf(&name, "%05lld-", (long long)s->seen);
    for (const char *p = v->id; *p && name.len < 80; p++)
        vr_buf_putc(&name, (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                               *p == '-' || *p == '_' ? *p : '_');
    if (v->completion >= 0) vr_buf_printf(&name, "-%d", v->completion);
    vr_buf_puts(&name, ".png");
    file = vr_path_join(s->draw_dir, name.p);
    if (vr_draw_png(file, &im, 1024, &spec, VR_IMAGE_WRITE_NOSYNC, &err)) vr_die(&err);
    s->drawn++;
    free(file);
    vr_buf_free(&name);
    vr_image_release(&im);
}

static void take(struct sink *s, struct vr_eval_verdict *v, int n)
{
    for (int i = 0; i < n; i++) {
        vr_eval_summary_add(group_get(&s->groups, v[i].group), &v[i]);
        if (s->keep) {
            if (v[i].has_gt && v[i].completion <= 0) {
                char *key = NULL;
                if (asprintf(&key, "%s\t%s", v[i].split, v[i].id) < 0) abort();
                json_object_set_new(s->keep, key, json_pack("{s:b,s:s}", "correct", v[i].correct, "group", v[i].group));
                free(key);
            }
        } else {
            if (!s->summary_only) out_json(vr_eval_verdict_json(&v[i]));
            draw(s, &v[i]);
        }
        s->seen++;
        vr_eval_verdict_release(&v[i]);
    }
    free(v);
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

/* Score one input (a rec_results .json document, or JSONL). Returns the lines skipped. */
static int64_t run_input(struct sink *s, const char *path, int skip_bad, struct vr_progress *prog)
{
    struct vr_err err;
    struct vr_eval_verdict *v;
    int n;
    if (strcmp(path, "-") && ends_with(path, ".json")) {
        json_error_t je;
        json_t *doc = json_load_file(path, JSON_DECODE_ANY, &je);
        if (!doc) {
            vr_err_set(&err, VR_ERR_INPUT, path, je.line, "%s", je.text);
            vr_die(&err);
        }
        if (vr_eval_rec_results(doc, path, s->o, &v, &n, &err)) vr_die(&err);
        json_decref(doc);
        take(s, v, n);
        return 0;
    }
    struct vr_jsonl rd;
    int64_t skipped = 0;
    if (vr_jsonl_open(&rd, path, &err)) vr_die(&err);
    json_t *line;
    int rc;
    while ((rc = vr_jsonl_next(&rd, &line, &err)) != 0) {
        if (rc > 0 && vr_eval_line(line, rd.path, rd.line, s->o, &v, &n, &err) == 0) {
            take(s, v, n);
            vr_progress_update(prog, s->seen);
        } else if (skip_bad && err.kind == VR_ERR_INPUT) {
            vr_warn("%s (skipped)", err.msg);
            skipped++;
        } else {
            vr_die(&err);
        }
        json_decref(line);
    }
    vr_jsonl_close(&rd);
    return skipped;
}

/* --diff: pair NEW's verdicts with OLD's by split and id, a line per group. */
static void diff(const json_t *old, const json_t *new, const char *by)
{
    struct row {
        char *group;
        int64_t n, wins, losses, both, neither, only_old, only_new, old_ok, new_ok;
    } *rows = NULL;
    int nrows = 0;
    const char *key;
    json_t *nv;
    for (int pass = 0; pass < 2; pass++) {
        const json_t *a = pass ? old : new, *b = pass ? new : old;
        json_object_foreach((json_t *)a, key, nv) {
            const char *g = json_string_value(json_object_get(nv, "group"));
            int r = 0;
            while (r < nrows && strcmp(rows[r].group, g)) r++;
            if (r == nrows) {
                rows = vr_xrealloc(rows, (size_t)(nrows + 1) * sizeof *rows);
                memset(&rows[nrows], 0, sizeof *rows);
                rows[nrows++].group = vr_xstrdup(g);
            }
            const json_t *ov = json_object_get(b, key);
            if (pass) { /* OLD's verdicts that NEW lacks */
                if (!ov) rows[r].only_old++;
                continue;
            }
            if (!ov) {
                rows[r].only_new++;
                continue;
            }
            int n_ok = json_is_true(json_object_get(nv, "correct")), o_ok = json_is_true(json_object_get(ov, "correct"));
            rows[r].n++;
            rows[r].old_ok += o_ok, rows[r].new_ok += n_ok;
            rows[r].wins += n_ok && !o_ok, rows[r].losses += o_ok && !n_ok;
            rows[r].both += n_ok && o_ok, rows[r].neither += !n_ok && !o_ok;
        }
    }
    for (int r = 0; r < nrows; r++) {
        struct row *w = &rows[r];
        json_t *o = json_object();
        json_object_set_new(o, "diff", json_true());
        json_object_set_new(o, by, json_string(w->group));
        json_object_set_new(o, "n", json_integer(w->n));
        json_object_set_new(o, "old_acc", w->n ? json_real((double)w->old_ok / (double)w->n) : json_null());
        json_object_set_new(o, "new_acc", w->n ? json_real((double)w->new_ok / (double)w->n) : json_null());
        json_object_set_new(o, "wins", json_integer(w->wins));
        json_object_set_new(o, "losses", json_integer(w->losses));
        json_object_set_new(o, "both_correct", json_integer(w->both));
        json_object_set_new(o, "both_wrong", json_integer(w->neither));
        json_object_set_new(o, "p_mcnemar", json_real(vr_eval_mcnemar(w->wins, w->losses)));
        json_object_set_new(o, "only_old", json_integer(w->only_old));
        json_object_set_new(o, "only_new", json_integer(w->only_new));
        out_json(o);
        free(w->group);
    }
    free(rows);
}

int main(int argc, char **argv)
{
    struct vr_eval_opts o = {.parse = VR_EVAL_R1, .iou_threshold = 0.5, .by = "split"};
    struct sink s = {.o = &o, .draw_max = 100};
    int skip_bad = 0, do_diff = 0, c, ind;
    const char *arg;
    vr_cli_init(&cli, argc, argv);
    vr_json_reals_exact(1); /* boxes and IoUs are doubles, to the last bit */
    while ((c = vr_cli_next(&ind, &arg)) != -1) {
        switch (c) {
        case O_PARSE:
            if (vr_eval_parse_name(arg, &o.parse)) vr_die_usage("--parse: '%s' is not r1 or baseline", arg);
            break;
        case O_IOU: o.iou_threshold = vr_cli_double("iou", arg, 0, 1); break;
        case 'a': o.all = 1; break;
        case O_BY: o.by = arg; break;
        case 's': s.summary_only = 1; break;
        case O_SPLIT: o.split = arg; break;
        case O_DIFF: do_diff = 1; break;
        case O_DRAW: s.draw_dir = arg; break;
        case O_DRAW_MAX: s.draw_max = vr_cli_int("draw-max", arg, 0, INT64_MAX); break;
        case O_SKIP: skip_bad = 1; break;
        }
    }
    if (!*o.by) vr_die_usage("--by: empty field name");
    int nin = argc - ind;
    struct vr_err err;
    if (do_diff) {
        if (nin != 2) vr_die_usage("--diff takes two runs, OLD and NEW");
        if (s.draw_dir || o.all) vr_die_usage("--diff compares first completions; --draw and --all do not apply");
        json_t *kept[2];
        for (int i = 0; i < 2; i++) {
            struct sink k = {.o = &o, .keep = json_object()};
            struct vr_progress prog;
            vr_progress_init(&prog, "vr-eval", "samples", 0);
            run_input(&k, argv[ind + i], skip_bad, &prog);
            vr_progress_end(&prog);
            kept[i] = k.keep;
            for (int g = 0; g < k.groups.n; g++) free(k.groups.name[g]);
            free(k.groups.name);
            free(k.groups.sum);
        }
        diff(kept[0], kept[1], o.by);
        json_decref(kept[0]);
        json_decref(kept[1]);
    } else {
        if (s.draw_dir && vr_mkdir_p(s.draw_dir, &err)) vr_die(&err);
        const char *dash = "-";
        const char *const *inputs = nin ? (const char *const *)argv + ind : &dash;
        if (!nin) nin = 1;
        int64_t skipped = 0;
        struct vr_progress prog;
        vr_progress_init(&prog, "vr-eval", "samples", 0);
        for (int i = 0; i < nin; i++) skipped += run_input(&s, inputs[i], skip_bad, &prog);
        vr_progress_end(&prog);
        if (s.drawn && vr_image_write_sync(s.draw_dir, &err)) vr_die(&err);
        if (s.draw_dir) vr_draw_shutdown(); /* cairo's and fontconfig's caches */
        for (int g = 0; g < s.groups.n; g++) {
            out_json(vr_eval_summary_json(&s.groups.sum[g], o.by, s.groups.name[g], o.iou_threshold));
            free(s.groups.name[g]);
        }
        free(s.groups.name);
        free(s.groups.sum);
        if (skipped) vr_warn("%lld bad lines skipped", (long long)skipped);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        vr_err_sys(&err, "<stdout>", "write failed");
        vr_die(&err);
    }
    return 0;
}

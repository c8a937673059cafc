/* libFuzzer entry point for the dataset files vr-prep reads
 * (lib/dataset.c vr_dataset_read): VLM-R1's REC JSON (a list, or one record
 * a line), its conversations JSONL, LLaMA-Factory messages and vr's own task
 * lines, each record made into a task line. The input is read as a file
 * named data.json in a fresh folder (relative image names resolve there;
 * nothing is opened but the input), in every format: auto-detected, then
 * forced to each, with and without --skip-bad; the tasks made are checked
 * again, written as JSON and sampled as rec.yaml's sampling strategies do.
 * Built and run by `make fuzz` (tests/fuzz/run.sh); a crasher goes into
 * tests/bad/jsonl/ named after its defect when vr-prep must refuse it
 * (t0210 checks how), else into tests/bad/fuzz/dataset_rec/; t0990 replays
 * both. */
#include <stdint.h>
#include <stdlib.h>

#include "dataset.h"
#include "fuzz.h"
#include "jsonl.h"
#include "task.h"

#define MAX_TASKS 256

static int emit(void *ctx, json_t *t, struct vr_err *err)
{
    struct vr_tasks *ts = ctx;
    if (vr_task_validate_unlabelled(t, NULL, 0, err)) abort(); /* vr-prep made it: it must pass */
    vr_tasks_push(ts, t);
    return ts->n >= MAX_TASKS;
}

static void warn(void *ctx, const struct vr_err *e)
{
    (void)e;
    ++*(int *)ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const files[] = {"data.json"};
    char dir[64];
    if (fuzz_dir_make(dir)) return 0;
    if (fuzz_dir_put(dir, files[0], data, size) == 0) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, files[0]);
        static const enum vr_format fmts[] = {VR_FMT_AUTO, VR_FMT_REC, VR_FMT_CONV, VR_FMT_MESSAGES,
                                              VR_FMT_TASKS};
        for (size_t f = 0; f < sizeof fmts / sizeof *fmts; f++)
            for (int skip = 0; skip < 2; skip++) {
                int warned = 0;
                struct vr_dataset_opts o = {.format = fmts[f], .skip_bad = skip, .warn = warn,
                                            .warn_ctx = &warned, .seed = size};
                struct vr_tasks ts = {0};
                struct vr_err err;
                vr_dataset_read(path, &o, emit, &ts, &err);
                if (warned != o.skipped) abort();
                struct vr_buf b = {0};
                for (int64_t i = 0; i < ts.n; i++) vr_json_dump(&b, ts.v[i]);
                vr_buf_release(&b);
                static const char *const takes[] = {"random:50%", "pyrandom:3", "end:2"};
                struct vr_take t;
                if (vr_take_parse(takes[(f + skip) % 3], &t, &err)) abort();
                ts.n = vr_take_apply(ts.v, ts.n, &t, 42, f);
                vr_tasks_release(&ts);
            }
    }
    fuzz_dir_remove(dir, files, 1);
    return 0;
}

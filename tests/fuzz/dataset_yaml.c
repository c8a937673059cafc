/* libFuzzer entry point for VLM-R1's rec.yaml (lib/dataset.c: libyaml with a
 * nesting limit, datasets: [{json_path, sampling_strategy}], the sampling
 * rules of vr_take_parse and vr_take_apply). The input is the YAML, then
 * optionally a line "#json" and the text of the data files it may name:
 * a.json and b.jsonl (both get that text), in a fresh folder removed after.
 * A YAML naming a device (/dev, /proc, /sys) is skipped: reading one is
 * vr-prep's user's choice, not the parser's defect. Built and run by
 * `make fuzz` (tests/fuzz/run.sh); a crasher, in this harness's framing,
 * goes into tests/bad/fuzz/dataset_yaml/ named after its defect (t0990
 * replays it; a plain YAML that vr-prep must refuse can also go into
 * tests/bad/jsonl/ as yaml_<defect>.yaml, for t0210). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "fuzz.h"
#include "jsonl.h"

#define MAX_TASKS 256

static int emit(void *ctx, json_t *t, struct vr_err *err)
{
    (void)err;
    struct vr_tasks *ts = ctx;
    vr_tasks_push(ts, t);
    return ts->n >= MAX_TASKS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const files[] = {"rec.yaml", "a.json", "b.jsonl"};
    static const char sep[] = "\n#json\n";
    const char *d = (const char *)data, *json = memmem(d, size, sep, sizeof sep - 1);
    size_t ylen = json ? (size_t)(json - d) : size;
    if (memmem(d, ylen, "/dev", 4) || memmem(d, ylen, "/proc", 5) || memmem(d, ylen, "/sys", 4)) return 0;
    char dir[64];
    if (fuzz_dir_make(dir)) return 0;
    int ok = fuzz_dir_put(dir, files[0], d, ylen) == 0;
    if (ok && json) {
        json += sizeof sep - 1;
        ok = fuzz_dir_put(dir, files[1], json, size - (size_t)(json - d)) == 0 &&
             fuzz_dir_put(dir, files[2], json, size - (size_t)(json - d)) == 0;
    }
    if (ok) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, files[0]);
        for (int skip = 0; skip < 2; skip++) {
            struct vr_dataset_opts o = {.skip_bad = skip, .seed = 42};
            struct vr_tasks ts = {0};
            struct vr_err err;
            vr_dataset_read(path, &o, emit, &ts, &err);
            struct vr_buf b = {0};
            for (int64_t i = 0; i < ts.n; i++) vr_json_dump(&b, ts.v[i]);
            vr_buf_release(&b);
            vr_tasks_release(&ts);
        }
    }
    fuzz_dir_remove(dir, files, 3);
    return 0;
}

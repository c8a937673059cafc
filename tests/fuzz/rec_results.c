/* libFuzzer entry point for VLM-R1's rec_results files that vr-eval scores
 * (lib/eval.c vr_eval_rec_results: {"accuracy", "results": [{"model_output",
 * "ground_truth", "input_size", "image_size", ...}]}, the JSON read as
 * vr_eval_read reads a .json path), with both parsers (r1 and baseline), and
 * then what vr-eval does with the verdicts: verdict lines, summaries by
 * split, and the paired comparison of two runs. Built and run by `make fuzz`
 * (tests/fuzz/run.sh); a crasher goes into tests/bad/fuzz/rec_results/
 * named after its defect (t0990 replays it). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "eval.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!doc) return 0;
    struct vr_eval_pairs pairs;
    vr_eval_pairs_init(&pairs);
    for (int mode = 0; mode < 2; mode++) {
        struct vr_eval_opts o = {.parse = mode ? VR_EVAL_BASELINE : VR_EVAL_R1,
                                 .iou_threshold = mode ? 0.75 : 0.5,
                                 .by = "split",
                                 .split = mode ? "val" : NULL};
        struct vr_eval_verdict *v;
        struct vr_err err;
        int n;
        if (vr_eval_rec_results(doc, "fuzz.json", &o, &v, &n, &err)) continue;
        struct vr_eval_report rep = {0};
        for (int i = 0; i < n; i++) {
            json_decref(vr_eval_verdict_json(&v[i]));
            vr_eval_report_add(&rep, &v[i]);
            vr_eval_pairs_add(&pairs, mode, &v[i]);
            vr_eval_verdict_release(&v[i]);
        }
        free(v);
        for (int i = 0; i < rep.n; i++)
            json_decref(vr_eval_summary_json(&rep.sum[i], "split", rep.group[i], o.iou_threshold));
        vr_eval_report_release(&rep);
    }
    json_decref(vr_eval_pairs_lines(&pairs, "split"));
    vr_eval_pairs_release(&pairs);
    json_decref(doc);
    return 0;
}

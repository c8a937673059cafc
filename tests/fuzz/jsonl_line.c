/* libFuzzer entry point for the JSON Lines every stage reads (lib/jsonl.c)
 * and, for each line that is a JSON object, for what the stages do with it:
 * task checks (lib/task.c), the chat prompt's grids, answer and tokens
 * (lib/chat.c, as vr-tokenize --chat, vr-rollout and vr-update build them,
 * with tests/golden/tokenizer/tiny.json), reward scoring and advantages of
 * rollout and scored lines (lib/reward_score.c, as vr-reward), and vr-eval's
 * verdicts, summaries and pairs (lib/eval.c). The input is a whole file, at
 * most 64 lines of it read. Built and run by `make fuzz` (tests/fuzz/run.sh);
 * its seeds are tests/fuzz/corpus/jsonl_line plus the folders that
 * tests/fuzz/harnesses lists. A crasher goes into tests/bad/fuzz/jsonl_line/
 * named after its defect (t0990 replays it), or into tests/bad/jsonl/ when
 * vr-prep must refuse it (t0210). */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "chat.h"
#include "eval.h"
#include "fuzz.h"
#include "jsonl.h"
#include "reward.h"
#include "task.h"

#ifndef VR_FUZZ_SRC
#define VR_FUZZ_SRC "."
#endif

/* A prompt's <|image_pad|> tokens are one per merged patch, and chat.c takes
 * grid_thw entries up to 2^20: [1, 2^20, 2^20] asks for 2^38 of them and
 * the render aborts out of memory (open: tests/fuzz/README.md, Findings;
 * tests/fuzz/pending). Until chat.c bounds it, prompts are rendered up to
 * this many. */
#define MAX_PADS (1 << 16)

static struct vr_bpe *tokenizer(void)
{
    static struct vr_bpe *tok;
    static int tried;
    if (!tried) {
        struct vr_err err;
        tried = 1;
        if (vr_bpe_load(&tok, VR_FUZZ_SRC "/tests/golden/tokenizer/tiny.json", &err)) {
            fprintf(stderr, "jsonl_line: %s (chat rendering is not fuzzed)\n", err.msg);
            tok = NULL;
        }
    }
    return tok;
}

/* valid: the line passed vr_task_validate, so a box answer lies inside its
 * image. chat.c scales a box answer to the model's input without bounding
 * it, and a box of 1e300 overflows the long it is rounded to (open:
 * tests/fuzz/README.md, Findings; tests/fuzz/pending). Until chat.c refuses
 * it, answers are made only for valid lines. */
static void chat(const json_t *line, int valid)
{
    struct vr_err err;
    struct vr_chat_task_opts o = {0};
    int(*grids)[3] = NULL, n = 0;
    if (vr_chat_task_grids(line, &o, "fuzz", 1, &grids, &n, &err)) return;
    struct vr_buf b = {0};
    if (valid) vr_chat_task_answer(line, n ? grids[0] : NULL, &o, "fuzz", 1, &b, &err);
    long pads = 0;
    for (int i = 0; i < n; i++) pads += (long)grids[i][0] * grids[i][1] * grids[i][2] / 4;
    free(grids);
    struct vr_bpe *tok = tokenizer();
    if (tok && pads <= MAX_PADS) {
        struct vr_ids ids = {0};
        for (int a = 0; a < 1 + valid; a++) {
            o.assistant = a;
            o.tmpl = a ? vr_chat_template("baseline") : NULL;
            vr_buf_reset(&b);
            ids.n = 0;
            vr_chat_task(tok, line, &o, "fuzz", 1, &b, &ids, &err);
        }
        vr_ids_release(&ids);
    }
    vr_buf_free(&b);
}

static void eval(const json_t *line, struct vr_eval_report *rep, struct vr_eval_pairs *pairs)
{
    for (int mode = 0; mode < 2; mode++) {
        struct vr_eval_opts o = {.parse = mode ? VR_EVAL_BASELINE : VR_EVAL_R1,
                                 .iou_threshold = 0.5,
                                 .all = mode,
                                 .by = mode ? "label" : "split"};
        struct vr_eval_verdict *v;
        struct vr_err err;
        int n;
        if (vr_eval_line(line, "fuzz", 1, &o, &v, &n, &err)) continue;
        for (int i = 0; i < n; i++) {
            json_decref(vr_eval_verdict_json(&v[i]));
            vr_eval_report_add(rep, &v[i]);
            vr_eval_pairs_add(pairs, mode, &v[i]);
            vr_eval_verdict_release(&v[i]);
        }
        free(v);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vr_reward rw;
    static int init;
    struct vr_err err;
    if (!init) {
        init = 1;
        if (vr_reward_add(&rw, "format,format-strict,iou,iou50,length,repetition", &err)) abort();
    }
    char path[32];
    int fd = fuzz_memfd(data, size, path);
    if (fd < 0) return 0;
    struct vr_jsonl r;
    if (vr_jsonl_open(&r, path, &err)) {
        close(fd);
        return 0;
    }
    json_t *scored[64];
    int nscored = 0;
    struct vr_eval_report rep = {0};
    struct vr_eval_pairs pairs;
    vr_eval_pairs_init(&pairs);
    struct vr_buf b = {0};
    json_t *line;
    for (int k = 0, got; k < 64 && (got = vr_jsonl_next(&r, &line, &err)) != 0; k++) {
        if (got < 0) continue;
        vr_buf_reset(&b);
        vr_json_dump(&b, line);
        int valid = vr_task_validate(line, r.path, r.line, &err) == 0;
        if (valid || vr_task_validate_unlabelled(line, r.path, r.line, &err) == 0) {
            char *label = vr_rec_label_from_problem(json_string_value(json_object_get(line, "problem")));
            free(label);
        }
        chat(line, valid);
        eval(line, &rep, &pairs);
        if (vr_reward_score(&rw, line, r.path, r.line, &err) == 0) {
            vr_reward_advantages(line, (enum vr_scale)(k % 3), 0.5);
            scored[nscored++] = json_incref(line);
            vr_buf_reset(&b);
            vr_json_dump(&b, line);
        }
        json_decref(line);
    }
    vr_reward_batch_std(scored, (size_t)nscored);
    for (int i = 0; i < nscored; i++) json_decref(scored[i]);
    for (int i = 0; i < rep.n; i++) json_decref(vr_eval_summary_json(&rep.sum[i], "split", rep.group[i], 0.5));
    vr_eval_report_release(&rep);
    json_decref(vr_eval_pairs_lines(&pairs, "split"));
    vr_eval_pairs_release(&pairs);
    vr_buf_free(&b);
    vr_jsonl_close(&r);
    close(fd);
    return 0;
}

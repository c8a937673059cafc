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

/* The line as vr-rollout, vr-update and vr-tokenize --chat read it
 * (vr_task_parse with the default limits: the images' tokens are bounded
 * before a prompt is built), then its prompt, with and without the SFT
 * answer. */
static void chat(const json_t *line)
{
    struct vr_err err;
    struct vr_task t;
    if (vr_task_parse(line, VR_NEED_GRIDS, NULL, "fuzz", 1, &t, &err)) return;
    struct vr_chat_task_opts o = {0};
    struct vr_buf b = {0};
    vr_chat_task_answer(&t, &o, "fuzz", 1, &b, &err);
    struct vr_bpe *tok = tokenizer();
    if (tok) {
        struct vr_ids ids = {0};
        for (int a = 0; a < 2; a++) {
            o.assistant = a;
            o.tmpl = a ? vr_chat_template("baseline") : NULL;
            vr_buf_reset(&b);
            ids.n = 0;
            vr_chat_task(tok, &t, &o, "fuzz", 1, &b, &ids, &err);
        }
        vr_ids_release(&ids);
    }
    vr_buf_release(&b);
    vr_task_release(&t);
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
        if (vr_task_validate(line, r.path, r.line, &err) == 0 ||
            vr_task_validate_unlabelled(line, r.path, r.line, &err) == 0) {
            char *label = vr_rec_label_from_problem(json_string_value(json_object_get(line, "problem")));
            free(label);
        }
        chat(line);
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
    vr_buf_release(&b);
    vr_jsonl_close(&r);
    close(fd);
    return 0;
}

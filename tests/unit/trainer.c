/* trainer.c: vr-update's run driven in-process (lib/trainer.h) on a tiny
 * model made here as vr-init makes one (a byte-level BPE trained on
 * tests/golden/update/corpus.txt, random f32 weights): SFT steps on task
 * lines and their metrics lines (the first checked against lib/update.c's
 * gradient pass run on its own), a checkpoint saved in the middle of a batch
 * and --resume from it ending byte-identical to an uninterrupted run, a bad
 * line refused with FILE:LINE and nothing of the run or its checkpoints
 * changed, metrics that cannot be written (the run is saved first), the
 * warnings, and a run folder that gets nothing left behind. Everything
 * happens under a temporary folder. */
#include "bpe.h"
#include "bpe_train.h"
#include "init.h"
#include "trainer.h"

#include "../tap.h"
#include "files.h"
#include "golden.h"

static char root[256];

/* The files a save writes, the same in two folders. */
static int same_state(const char *d1, const char *d2)
{
    return same_file(d1, d2, "model.safetensors") && same_file(d1, d2, "optimizer.safetensors") &&
           same_file(d1, d2, "trainer_state.json") && same_file(d1, d2, "config.json");
}

/* trainer_state.json of dir is {"step":step,"lines":lines,"iteration":it} */
static int state_is(const char *dir, int64_t step, int64_t lines, int it)
{
    char *p = pj(dir, "trainer_state.json");
    json_t *j = json_load_file(p, 0, NULL);
    free(p);
    int r = j && json_integer_value(json_object_get(j, "step")) == step &&
            json_integer_value(json_object_get(j, "lines")) == lines &&
            json_integer_value(json_object_get(j, "iteration")) == it;
    json_decref(j);
    return r;
}

static void bail(const struct vr_err *e)
{
    printf("Bail out! %s\n", e->msg);
    exit(1);
}

/* The policy: vr-init --preset tiny --train-tokenizer corpus.txt --vocab 256
 * --init-range 0.1 --dtype f32, without the files vr-update does not read. */
static void make_policy(const char *dir)
{
    struct vr_err err;
    const char *corpus = golden_path("update/corpus.txt");
    json_t *tj;
    if (vr_mkdir_p(dir, &err) || vr_bpe_train(&tj, &corpus, 1, 256, 2, &err)) bail(&err);
    char *tp = pj(dir, "tokenizer.json");
    VR_ASSERT(json_dump_file(tj, tp, JSON_INDENT(2)) == 0);
    json_decref(tj);
    struct vr_bpe *tok;
    if (vr_bpe_load(&tok, tp, &err)) bail(&err);
    free(tp);
    struct vr_model_config c;
    VR_ASSERT(vr_init_preset("tiny", &c) == 0);
    c.image_token_id = vr_bpe_token_id(tok, "<|image_pad|>");
    c.video_token_id = vr_bpe_token_id(tok, "<|video_pad|>");
    c.vision_start_id = vr_bpe_token_id(tok, "<|vision_start|>");
    c.vision_end_id = vr_bpe_token_id(tok, "<|vision_end|>");
    c.bos_id = vr_bpe_token_id(tok, "<|endoftext|>");
    c.eos_id = vr_bpe_token_id(tok, "<|im_end|>");
    c.text.vocab = (vr_bpe_size(tok) + 63) / 64 * 64;
    vr_bpe_free(tok);
    struct vr_init_opts io = {.dtype = VR_DTYPE_F32, .seed = 21, .init_range = 0.1};
    if (vr_init_write_random(&c, dir, &io, &err)) bail(&err);
}

/* SFT task lines without images: the answer is the completion. */
static const char *const texts[] = {
    "{\"id\":\"a\",\"problem\":\"Find the red square.\",\"completion\":\"<think>red</think><answer>left</answer>\"}",
    "{\"id\":\"b\",\"problem\":\"Where is the blue circle?\",\"completion\":\"<answer>right</answer>\"}",
    "{\"id\":\"c\",\"problem\":\"Which shape is green?\",\"completion\":\"<answer>the star</answer>\"}",
    "{\"id\":\"d\",\"problem\":\"What is above the hexagon?\",\"completion\":\"<answer>a circle</answer>\"}",
};
#define NLINES 4
static json_t *lines[NLINES];

/* What the trainer said: its metrics lines (parsed) and warnings. */
struct sink {
    json_t *m[32];
    int n, bad_lines;  /* bad_lines: lines that are not one JSON object and a newline */
    int fail_at;       /* the metrics of this step (1-based count) cannot be written */
    char warn[4][1100];
    int nwarn;
};

static int on_metrics(void *ctx, const char *line, struct vr_err *err)
{
    struct sink *s = ctx;
    if (s->fail_at && s->n + 1 == s->fail_at) return vr_err_set(err, VR_ERR_SYS, "<sink>", 0, "no room");
    size_t len = strlen(line);
    json_t *j = json_loads(line, 0, NULL);
    s->bad_lines += !json_is_object(j) || len < 2 || line[len - 1] != '\n' || strchr(line, '\n') != line + len - 1;
    VR_ASSERT(s->n < 32);
    s->m[s->n++] = j;
    return 0;
}

static void on_warn(void *ctx, const char *msg)
{
    struct sink *s = ctx;
    if (s->nwarn < 4) snprintf(s->warn[s->nwarn++], sizeof s->warn[0], "%s", msg);
}

static void sink_release(struct sink *s)
{
    for (int i = 0; i < s->n; i++) json_decref(s->m[i]);
    memset(s, 0, sizeof *s);
}

static double num(const json_t *m, const char *k) { return json_number_value(json_object_get(m, k)); }

/* A metrics line without its timings: what two runs must agree on. */
static json_t *untimed(const json_t *m)
{
    json_t *c = json_deep_copy(m);
    json_object_del(c, "seconds");
    json_object_del(c, "tokens_per_s");
    return c;
}

static void opts(struct vr_trainer_opts *o, const char *policy, const char *out, struct sink *s)
{
    vr_trainer_opts_init(o);
    o->model = policy;
    o->out = out;
    o->update.sft = 1;
    o->adamw.lr = 1e-3;
    o->adamw.weight_decay = 0.01;
    o->prompts_per_step = 1;
    o->warn = on_warn;
    o->metrics = on_metrics;
    o->ctx = s;
}

/* Feed lines [from, to) (line i is in.jsonl:i+1), taking the steps asked for. */
static int feed(struct vr_trainer *t, int from, int to, struct vr_err *err)
{
    for (int i = from; i < to; i++) {
        int more = vr_trainer_feed(t, lines[i], "in.jsonl", i + 1, err);
        while (more > 0) more = vr_trainer_step(t, err);
        if (more < 0) return -1;
    }
    return 0;
}

/* The end of the input, then close. */
static int finish(struct vr_trainer *t, struct vr_err *err)
{
    int more = vr_trainer_feed(t, NULL, NULL, 0, err);
    while (more > 0) more = vr_trainer_step(t, err);
    if (more < 0) {
        vr_trainer_release(t);
        return -1;
    }
    return vr_trainer_close(t, err);
}

/* One line twice, a step each: the metrics lines, the first one's loss and
 * tokens as update.c computes them for the starting weights. */
static void test_sft(const char *policy)
{
    struct vr_err err;
    struct sink s = {0};
    struct vr_trainer_opts o;
    char *out = pj(root, "sft");
    opts(&o, policy, out, &s);
    struct vr_trainer t;
    if (vr_trainer_open(&t, &o, &err)) bail(&err);
    ok(t.made && t.step == 0 && t.lines == 0, "open: a new run folder at step 0");
    int r1 = vr_trainer_feed(&t, lines[0], "in.jsonl", 1, &err);
    int r2 = vr_trainer_step(&t, &err), r3 = vr_trainer_step(&t, &err), r4 = vr_trainer_step(&t, &err);
    ok(r1 == 1 && r2 == 1 && r3 == 0 && r4 == 0, "a full batch: one step, then none (%d %d %d %d)", r1, r2, r3, r4);
    ok(feed(&t, 0, 1, &err) == 0, "the same line again");
    ok(t.step == 2 && t.taken == 2 && t.lines == 2, "two steps on two lines (step %lld)", (long long)t.step);
    ok(s.n == 2 && !s.bad_lines, "one metrics line per step, each one JSON object and a newline");
    /* the first step on its own: the batch's loss and tokens under the policy */
    struct vr_update u;
    struct vr_batch b = {0};
    struct vr_update_stats st;
    if (vr_update_init(&u, policy, NULL, &o.update, &err) || vr_batch_add(&u, &b, lines[0], "in.jsonl", 1, &err) ||
        vr_update_grads(&u, &b, &st, &err))
        bail(&err);
    const json_t *m1 = s.m[0], *m2 = s.m[1];
    char want[32], got[32];
    snprintf(want, sizeof want, "%.9g", st.loss);
    snprintf(got, sizeof got, "%.9g", num(m1, "loss"));
    is_str(got, want, "step 1's loss is the loss of the line under the starting weights");
    ok(num(m1, "step") == 1 && num(m2, "step") == 2, "the steps are numbered 1, 2");
    ok(num(m1, "tokens") == b.tokens && num(m2, "tokens") == b.tokens && b.tokens > 5,
       "tokens: the answer's %lld tokens", (long long)b.tokens);
    ok(num(m1, "lr") == 1e-3 && num(m1, "grad_norm") > 0 && num(m1, "seconds") >= 0 && num(m1, "kl") == 0,
       "lr, grad_norm, seconds, kl");
    ok(num(m2, "loss") < num(m1, "loss"), "the second step on the same line has a lower loss (%g < %g)",
       num(m2, "loss"), num(m1, "loss"));
    vr_batch_release(&b);
    vr_update_release(&u);
    ok(vr_trainer_close(&t, &err) == 0 && state_is(out, 2, 2, 0) && exists(out, "model.safetensors"),
       "close: the run folder holds step 2, 2 lines");
    ok(!exists(out, "checkpoint-2"), "no checkpoint-STEP folder without save_every");
    ok(s.nwarn == 0, "no warnings");
    sink_release(&s);
    free(out);
}

/* Two prompts per line (μ = 2): a checkpoint saved in the middle of the
 * second batch, the run dropped as if killed, --resume from it. */
static void test_resume(const char *policy)
{
    struct vr_err err;
    struct sink whole = {0}, part = {0}, rest = {0};
    struct vr_trainer_opts o;
    struct vr_trainer t;
    char *w = pj(root, "whole"), *sp = pj(root, "split"), *ck = pj(sp, "checkpoint-3");
    opts(&o, policy, w, &whole);
    o.iterations = 2;
    if (vr_trainer_open(&t, &o, &err) || feed(&t, 0, NLINES, &err) || finish(&t, &err)) bail(&err);
    ok(whole.n == 8 && state_is(w, 8, 4, 0), "uninterrupted: 4 lines, 8 steps");

    opts(&o, policy, sp, &part);
    o.iterations = 2;
    if (vr_trainer_open(&t, &o, &err) || feed(&t, 0, 1, &err)) bail(&err);
    int r = vr_trainer_feed(&t, lines[1], "in.jsonl", 2, &err);
    ok(r == 1 && vr_trainer_step(&t, &err) == 1 && t.step == 3 && t.lines == 1, "step 3: the second line's first");
    ok(vr_trainer_save(&t, VR_TRAINER_CHECKPOINT, &err) == 0 && state_is(ck, 3, 1, 1),
       "a checkpoint in the middle of a batch: step 3, 1 line, iteration 1");
    vr_trainer_release(&t);
    ok(exists(sp, "checkpoint-3") && !exists(sp, "model.safetensors"), "release saves nothing more");

    o.ctx = &rest;
    o.resume = 1;
    if (vr_trainer_open(&t, &o, &err)) bail(&err);
    ok(t.step == 3 && t.lines == 1 && !t.made, "--resume: step 3, 1 line used");
    ok(vr_trainer_feed(&t, lines[0], "in.jsonl", 1, &err) == 0, "the line the checkpoint used is skipped");
    if (feed(&t, 1, NLINES, &err) || finish(&t, &err)) bail(&err);
    ok(rest.n == 5 && state_is(sp, 8, 4, 0), "the resumed run takes steps 4 to 8");
    ok(same_state(w, sp), "its run folder is byte-identical to the uninterrupted run's");
    int same = rest.n == 5;
    for (int i = 0; same && i < 5; i++) {
        json_t *a = untimed(whole.m[3 + i]), *b = untimed(rest.m[i]);
        same = json_equal(a, b);
        json_decref(a);
        json_decref(b);
    }
    ok(same, "and so are the metrics of steps 4 to 8, timings aside");
    ok(rest.nwarn == 0, "no warnings");
    sink_release(&whole);
    sink_release(&part);
    sink_release(&rest);
    free(w);
    free(sp);
    free(ck);
}

/* A bad line among good ones: refused with FILE:LINE; the run and its
 * checkpoints are as they were, and it goes on as if the line were not there. */
static void test_bad_line(const char *policy)
{
    struct vr_err err;
    struct sink s = {0}, s2 = {0};
    struct vr_trainer_opts o;
    struct vr_trainer t;
    char *bad = pj(root, "bad"), *good = pj(root, "good"), *ck = pj(bad, "checkpoint-1");
    opts(&o, policy, bad, &s);
    o.save_every = 1;
    if (vr_trainer_open(&t, &o, &err) || feed(&t, 0, 1, &err)) bail(&err);
    size_t n1, n2, n3, n4;
    char *st1 = slurp(ck, "trainer_state.json", &n1), *w1 = slurp(ck, "optimizer.safetensors", &n2);
    json_t *line = json_loads("{\"id\":\"x\",\"images\":[\"/nonexistent.png\"],\"problem\":\"p\",\"completion\":\"a\"}",
                              0, NULL);
    int r = vr_trainer_feed(&t, line, "in.jsonl", 2, &err);
    json_decref(line);
    ok(r == -1 && err.kind == VR_ERR_INPUT && !strncmp(err.msg, "in.jsonl:2: ", 12), "a bad line: %s", err.msg);
    ok(vr_trainer_step(&t, &err) == 0 && t.step == 1 && t.lines == 1 && s.n == 1, "no step, the cursor as it was");
    char *st2 = slurp(ck, "trainer_state.json", &n3), *w2 = slurp(ck, "optimizer.safetensors", &n4);
    ok(st1 && w1 && st2 && w2 && n1 == n3 && n2 == n4 && !memcmp(st1, st2, n1) && !memcmp(w1, w2, n2) &&
           !exists(bad, "checkpoint-2") && !exists(bad, "trainer_state.json"),
       "the saved checkpoint is unchanged and nothing else was saved");
    free(st1);
    free(w1);
    free(st2);
    free(w2);
    r = vr_trainer_feed(&t, lines[2], "in.jsonl", 3, &err);
    while (r > 0) r = vr_trainer_step(&t, &err);
    ok(r == 0 && t.step == 2 && t.lines == 2, "the next line is taken");
    if (finish(&t, &err)) bail(&err);
    opts(&o, policy, good, &s2);
    if (vr_trainer_open(&t, &o, &err) || feed(&t, 0, 1, &err) || feed(&t, 2, 3, &err) || finish(&t, &err))
        bail(&err);
    ok(state_is(bad, 2, 2, 0) && same_state(bad, good), "the run ends as one without the bad line");
    sink_release(&s);
    sink_release(&s2);
    free(bad);
    free(good);
    free(ck);
}

/* Metrics that cannot be written: the step taken is saved in the run folder
 * before the writer's error comes back. */
static void test_metrics_lost(const char *policy)
{
    struct vr_err err;
    struct sink s = {.fail_at = 2};
    struct vr_trainer_opts o;
    struct vr_trainer t;
    char *out = pj(root, "lost"), want[1100];
    opts(&o, policy, out, &s);
    if (vr_trainer_open(&t, &o, &err) || feed(&t, 0, 1, &err)) bail(&err);
    int r = feed(&t, 1, 2, &err);
    ok(r == -1 && !strcmp(err.msg, "<sink>: no room"), "the metrics writer's error: %s", err.msg);
    snprintf(want, sizeof want, "%s holds step 2; --resume goes on from there", out);
    ok(s.nwarn == 1 && !strcmp(s.warn[0], want), "warned: %s", s.warn[0]);
    ok(state_is(out, 2, 2, 0), "the run folder holds step 2");
    vr_trainer_release(&t);
    sink_release(&s);
    free(out);
}

/* --resume with no checkpoint warns; a run that saves nothing leaves no
 * folder; nothing to train is a usage error. */
static void test_edges(const char *policy)
{
    struct vr_err err;
    struct sink s = {0};
    struct vr_trainer_opts o;
    struct vr_trainer t;
    char *out = pj(root, "empty"), want[1100];
    opts(&o, policy, out, &s);
    o.resume = 1;
    if (vr_trainer_open(&t, &o, &err)) bail(&err);
    snprintf(want, sizeof want, "%s has no complete checkpoint; starting from %s", out, policy);
    ok(s.nwarn == 1 && !strcmp(s.warn[0], want), "warned: %s", s.warn[0]);
    ok(finish(&t, &err) == 0 && s.n == 0 && !exists(root, "empty"), "no input: no step, no run folder left");
    regex_t all;
    VR_ASSERT(regcomp(&all, ".", REG_EXTENDED | REG_NOSUB) == 0);
    opts(&o, policy, out, &s);
    o.freeze = &all;
    o.nfreeze = 1;
    int r = vr_trainer_open(&t, &o, &err);
    ok(r == -1 && err.kind == VR_ERR_USAGE && !strcmp(err.msg, "every parameter is frozen") && !exists(root, "empty"),
       "every parameter frozen: a usage error, no run folder");
    regfree(&all);
    sink_release(&s);
    free(out);
}

int main(void)
{
    tmpdir_make(root, sizeof root, "trainer");
    char *policy = pj(root, "policy");
    make_policy(policy);
    for (int i = 0; i < NLINES; i++) VR_ASSERT((lines[i] = json_loads(texts[i], 0, NULL)));
    test_sft(policy);
    test_resume(policy);
    test_bad_line(policy);
    test_metrics_lost(policy);
    test_edges(policy);
    for (int i = 0; i < NLINES; i++) json_decref(lines[i]);
    free(policy);
    tmpdir_remove(root);
    return done_testing();
}

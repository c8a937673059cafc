/* task.c: vr_task_parse, the one parsed form of task, encoded, rollout and
 * scored lines: typed values read back exactly, grids from image sizes
 * through smart_resize, the need flags, and the limits. (The bad lines every
 * stage refuses are tests/bad/lines, run by t0215.) */
#include <string.h>

#include "task.h"

#include "../tap.h"

/* the lines: a task's strings point into its line, so they live to the end */
static json_t *lines[64];
static int nlines;

static int parse(const char *text, unsigned need, const struct vr_task_limits *lim, struct vr_task *t,
                 struct vr_err *err)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j) {
        fprintf(stderr, "bad test JSON: %s\n", je.text);
        exit(1);
    }
    lines[nlines++] = j;
    return vr_task_parse(j, need, lim, "t.jsonl", 3, t, err);
}

int main(void)
{
    struct vr_task t;
    struct vr_err err = {0};
    /* a scored line: every typed field */
    const char *scored =
        "{\"id\":\"a/1\",\"split\":\"val\",\"images\":[\"/x.jpg\"],\"image_sizes\":[[640,427]],\"problem\":\"p\","
        "\"solution\":[1.5,2,30,40.25],\"label\":\"l\",\"think\":\"th\","
        "\"pixels\":{\"file\":\"c/p.st\",\"grid_thw\":[1,30,46],\"input_size\":[644,420],\"image_size\":[640,427]},"
        "\"vision\":{\"file\":\"c/v.st\",\"model\":\"abc\"},\"prompt_tokens\":412,"
        "\"completions\":[{\"text\":\"<answer>\",\"tokens\":[5,151645],\"logp\":[-0.123456789,-2.5e-8],"
        "\"finish\":\"eos\",\"rewards\":{\"iou\":0.5},\"reward\":1.5,\"advantage\":-0.7}]}";
    struct vr_task_limits lim;
    vr_task_limits_default(&lim);
    lim.vocab = 151646;
    ok(parse(scored, VR_NEED_TASK | VR_NEED_SOLUTION | VR_NEED_GRIDS | VR_NEED_PIXELS | VR_NEED_ADVANTAGES, &lim, &t,
             &err) == 0, "a scored line parses with every need: %s", err.msg);
    is_int(t.nimages, 1, "one image");
    is_int(t.im[0].w, 640, "image_sizes width");
    is_int(t.im[0].grid[1] * 100 + t.im[0].grid[2], 3046, "grid from pixels");
    is_int(t.im[0].in_w, 644, "input_size");
    is_int(t.image_tokens, 345, "30*46/4 image tokens");
    is_int(t.prompt_tokens, 412, "prompt_tokens");
    is_int(t.sol, VR_SOL_BOX, "a box");
    ok(t.box[0] == 1.5 && t.box[3] == 40.25, "box values exact");
    is_int(t.ncompl, 1, "one completion");
    is_int(t.c[0].n, 2, "two tokens");
    is_int(t.c[0].tokens[1], 151645, "token id");
    ok(t.c[0].logp[0] == -0.123456789f && t.c[0].logp[1] == -2.5e-8f, "logp as float32, exactly");
    ok(t.c[0].has_advantage && t.c[0].advantage == -0.7 && t.c[0].reward == 1.5, "reward and advantage");
    is_str(t.c[0].finish, "eos", "finish");
    vr_task_release(&t);

    /* the vocabulary is a limit */
    lim.vocab = 151645;
    ok(parse(scored, 0, &lim, &t, &err) != 0 && strstr(err.msg, "t.jsonl:3: completion 1: token 2 is not an id below 151645"),
       "a token at the vocabulary size is refused: %s", err.msg);

    /* grids from image_sizes: transformers' smart_resize (640x480 -> 644x476 -> 46x34) */
    const char *task = "{\"id\":\"b\",\"images\":[\"/x.jpg\"],\"image_sizes\":[[640,480]],\"problem\":\"p\"}";
    vr_task_limits_default(&lim);
    ok(parse(task, VR_NEED_TASK, &lim, &t, &err) == 0 && !t.grids, "without VR_NEED_GRIDS no grid is made");
    vr_task_release(&t);
    ok(parse(task, VR_NEED_GRIDS, &lim, &t, &err) == 0 && t.grids, "VR_NEED_GRIDS: a grid from image_sizes");
    is_int(t.im[0].grid[0] * 10000 + t.im[0].grid[1] * 100 + t.im[0].grid[2], 13446, "grid [1, 34, 46]");
    vr_task_release(&t);
    ok(parse(task, VR_NEED_SOLUTION, &lim, &t, &err) != 0 && strstr(err.msg, "'solution' is missing"),
       "VR_NEED_SOLUTION: %s", err.msg);
    ok(parse(task, VR_NEED_PIXELS, &lim, &t, &err) != 0 && strstr(err.msg, "run vr-encode first"),
       "VR_NEED_PIXELS: %s", err.msg);
    ok(parse(task, VR_NEED_COMPLETIONS, &lim, &t, &err) != 0 && strstr(err.msg, "no \"completions\""),
       "VR_NEED_COMPLETIONS: %s", err.msg);

    /* the image tokens limit, with its reason, before anything is built */
    lim.max_image_tokens = 390;
    lim.why = "--max-prompt-tokens";
    ok(parse(task, VR_NEED_GRIDS, &lim, &t, &err) != 0 &&
           strstr(err.msg, "t.jsonl:3: the images make 391 prompt tokens; at most 390 fit --max-prompt-tokens"),
       "391 image tokens over a limit of 390: %s", err.msg);
    lim.max_image_tokens = 391;
    ok(parse(task, VR_NEED_GRIDS, &lim, &t, &err) == 0, "391 fit a limit of 391");
    vr_task_release(&t);

    /* a box outside the image: refused where tasks are checked (VR_NEED_TASK), scored elsewhere */
    const char *outside = "{\"id\":\"c\",\"images\":[\"/x.jpg\"],\"image_sizes\":[[40,40]],\"problem\":\"p\","
                          "\"solution\":[1,2,3,41]}";
    ok(parse(outside, VR_NEED_TASK, &lim, &t, &err) != 0 && strstr(err.msg, "outside the 40x40 image"),
       "outside: refused for a task: %s", err.msg);
    ok(parse(outside, 0, &lim, &t, &err) == 0 && t.box[3] == 41, "outside: kept for scoring");
    vr_task_release(&t);

    /* ids of other tools' lines */
    ok(parse("{\"id\":5,\"text\":\"x\"}", 0, &lim, &t, &err) != 0, "a number id is refused");
    ok(parse("{\"id\":5,\"text\":\"x\"}", VR_LOOSE_IDS, &lim, &t, &err) == 0 && !t.id, "VR_LOOSE_IDS leaves it out");
    vr_task_release(&t);
    while (nlines) json_decref(lines[--nlines]);
    return done_testing();
}

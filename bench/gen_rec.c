/* gen_rec: synthetic VLM-R1 REC JSON for bench/prep. Not a test fixture: it
 * only has to look like refcoco_train.json to a parser (same keys, same
 * pretty-printing as json.dump(..., indent=2), captions of realistic length and
 * vocabulary, boxes with two decimals), so vr-prep and the Python peer do the
 * same work they would on the real file. Deterministic for a given seed.
 *
 *   gen_rec N OUT [SEED]      write N records to OUT (temp + fsync + rename) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fs.h"
#include "rng.h"

static const char *const subj[] = {
    "man", "woman", "lady", "guy", "boy", "girl", "kid", "child", "person", "player", "baby",
    "dog", "cat", "horse", "cow", "sheep", "elephant", "giraffe", "zebra", "bear", "bird",
    "car", "truck", "bus", "bike", "motorcycle", "train", "boat", "plane", "chair", "couch",
    "bed", "table", "bench", "umbrella", "pizza", "sandwich", "cake", "donut", "banana",
    "orange", "broccoli", "bowl", "cup", "glass", "bottle", "laptop", "tv", "remote", "vase",
    "plant", "clock", "book", "suitcase", "skateboard", "surfboard", "kite", "frisbee",
};
static const char *const adj[] = {
    "red", "blue", "white", "black", "green", "yellow", "brown", "gray", "pink", "orange",
    "purple", "dark", "light", "striped", "small", "big", "tall", "short", "old", "young",
    "smiling", "sitting", "standing", "blurry", "empty", "half", "wooden", "plaid", "bald",
};
static const char *const where[] = {
    "left", "right", "middle", "center", "far left", "far right", "top", "bottom",
    "front", "back", "top left", "bottom right", "second from left", "closest", "furthest",
};
static const char *const cloth[] = {
    "shirt", "jacket", "hat", "dress", "pants", "shorts", "helmet", "coat", "sweater",
    "glasses", "cap", "skirt", "jersey", "hoodie", "tie", "scarf", "vest", "uniform",
};
static const char *const rel[] = {
    "next to", "behind", "in front of", "on top of", "under", "holding", "near", "beside",
    "on", "with", "leaning on", "looking at",
};

#define PICK(r, a) (a)[vr_rng_below((r), sizeof(a) / sizeof *(a))]

static void caption(struct vr_rng *r, char *out, size_t n)
{
    switch (vr_rng_below(r, 8)) {
    case 0:
        snprintf(out, n, "%s %s", PICK(r, where), PICK(r, subj));
        break;
    case 1:
        snprintf(out, n, "the %s with the %s %s", PICK(r, subj), PICK(r, adj), PICK(r, cloth));
        break;
    case 2:
        snprintf(out, n, "%s %s on the %s", PICK(r, adj), PICK(r, subj), PICK(r, where));
        break;
    case 3:
        snprintf(out, n, "%s in %s %s %s the %s %s", PICK(r, subj), PICK(r, adj), PICK(r, cloth),
                 PICK(r, rel), PICK(r, adj), PICK(r, subj));
        break;
    case 4:
        snprintf(out, n, "%s %s", PICK(r, adj), PICK(r, subj));
        break;
    case 5:
        snprintf(out, n, "a %s %s %s a %s %s wearing a %s %s", PICK(r, adj), PICK(r, subj),
                 PICK(r, rel), PICK(r, adj), PICK(r, subj), PICK(r, adj), PICK(r, cloth));
        break;
    case 6:
        snprintf(out, n, "%s's %s %s", PICK(r, subj), PICK(r, adj), PICK(r, subj));
        break;
    default:
        snprintf(out, n, "%s", PICK(r, subj));
    }
}

/* Python's repr of round(x, 2): "103.93", "103.9", "103.0". */
static void fmt2(char *out, size_t n, double x)
{
    snprintf(out, n, "%.2f", x);
    size_t l = strlen(out);
    while (l > 0 && out[l - 1] == '0' && out[l - 2] != '.') out[--l] = 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: gen_rec N OUT [SEED]\n");
        return 2;
    }
    long n = strtol(argv[1], NULL, 10);
    if (n < 1) {
        fprintf(stderr, "gen_rec: N must be a positive count\n");
        return 2;
    }
    struct vr_rng r;
    vr_rng_init(&r, argc == 4 ? strtoull(argv[3], NULL, 10) : 42, 0);
    struct vr_atomic a;
    struct vr_err err;
    if (vr_atomic_open(&a, argv[2], &err)) {
        fprintf(stderr, "gen_rec: %s\n", err.msg);
        return 1;
    }
    struct vr_buf b = {0};
    vr_buf_puts(&b, "[\n");
    for (long i = 0; i < n; i++) {
        char cap[256], box[4][32];
        caption(&r, cap, sizeof cap);
        /* COCO images are at most 640 px on the long side */
        int w = 640, h = 360 + (int)vr_rng_below(&r, 281);
        if (vr_rng_below(&r, 4) == 0) w = h, h = 640;
        double x1 = vr_rng_double(&r) * (w - 20), y1 = vr_rng_double(&r) * (h - 20);
        double x2 = x1 + 10 + vr_rng_double(&r) * (w - x1 - 10);
        double y2 = y1 + 10 + vr_rng_double(&r) * (h - y1 - 10);
        fmt2(box[0], sizeof box[0], x1);
        fmt2(box[1], sizeof box[1], y1);
        fmt2(box[2], sizeof box[2], x2);
        fmt2(box[3], sizeof box[3], y2);
        vr_buf_printf(&b,
                      "  {\n"
                      "    \"image\": \"train2014/COCO_train2014_%012u.jpg\",\n"
                      "    \"problem\": \"Please provide the bounding box coordinate of the region "
                      "this sentence describes: %s.\",\n"
                      "    \"solution\": [\n      %s,\n      %s,\n      %s,\n      %s\n    ],\n"
                      "    \"normal_caption\": \"%s\"\n"
                      "  }%s\n",
                      (unsigned)(9 + vr_rng_below(&r, 581921)), cap, box[0], box[1], box[2],
                      box[3], cap, i + 1 < n ? "," : "");
        if (b.len > (1u << 20)) {
            if (vr_atomic_write(&a, b.p, b.len, &err)) goto fail;
            vr_buf_reset(&b);
        }
    }
    vr_buf_puts(&b, "]\n");
    if (vr_atomic_write(&a, b.p, b.len, &err)) goto fail;
    vr_buf_release(&b);
    if (vr_atomic_commit(&a, &err)) {
        fprintf(stderr, "gen_rec: %s\n", err.msg);
        return 1;
    }
    return 0;
fail:
    fprintf(stderr, "gen_rec: %s\n", err.msg);
    vr_atomic_abort(&a);
    return 1;
}

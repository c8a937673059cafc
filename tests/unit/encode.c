/* encode.c: vr-encode's pipeline as a library (lib/encode.h), without a
 * process: the output is the same bytes for 1 and 4 workers and for a cold
 * and a warm cache; a bad line fails the run naming file:line after the lines
 * before it are written, or, with skip_bad, reaches the note callback and the
 * counters; nothing is printed. */
#include <stdlib.h>
#include <unistd.h>

#include "encode.h"
#include "golden.h"
#include "../tap.h"

struct notes {
    int skipped, rebuilt;
    char last[1024];
};

static void note(void *ctx, enum vr_encode_note what, const char *msg)
{
    struct notes *n = ctx;
    if (what == VR_ENCODE_SKIPPED) n->skipped++;
    else n->rebuilt++;
    snprintf(n->last, sizeof n->last, "%s", msg);
}

/* Encode file into a string; rc and the stats through the pointers. */
static char *encode(const char *cache, const char *file, int jobs, int skip_bad, struct notes *n,
                    struct vr_encode_stats *st, int *rc, struct vr_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    struct vr_encode_opts o = {.cache_dir = cache, .max_decode_pixels = VR_IMAGE_MAX_PIXELS_DEFAULT,
                               .jobs = jobs, .skip_bad = skip_bad, .out = out, .out_name = "<memory>",
                               .note = note, .note_ctx = n};
    vr_preproc_defaults(&o.pp);
    struct vr_encode *e;
    char *files[] = {(char *)file};
    *rc = vr_encode_open(&e, &o, err);
    if (*rc == 0) {
        *rc = vr_encode_run(e, files, 1, err);
        *st = *vr_encode_stats(e);
        vr_encode_free(e);
    }
    fclose(out);
    return buf;
}

static void task(FILE *f, const char *id, const char *img)
{
    fprintf(f, "{\"id\":\"%s\",\"images\":[\"%s\"],\"problem\":\"p\",\"solution\":\"s\"}\n", id, img);
}

int main(void)
{
    static const char *const imgs[] = {"grey_199x101.png", "rgb_211x143.png", "cmyk_120x90.jpg",
                                       "interlaced_77x55.png"};
    char dir[] = "/tmp/vr-encode-unit.XXXXXX", path[4096], good[4200], bad[4200], cache[4200], cmd[4300];
    if (!mkdtemp(dir)) skip_all("cannot make a temporary folder");
    snprintf(good, sizeof good, "%s/good.jsonl", dir);
    snprintf(bad, sizeof bad, "%s/bad.jsonl", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    FILE *g = fopen(good, "w"), *b = fopen(bad, "w");
    for (int i = 0; i < 12; i++) {
        char id[16];
        snprintf(id, sizeof id, "t%d", i);
        snprintf(path, sizeof path, "%s", golden_path("images/"));
        strncat(path, imgs[i % 4], sizeof path - strlen(path) - 1);
        task(g, id, path);
        if (i == 2) task(b, "missing", "/no/such/image.png");
        task(b, id, path);
    }
    fclose(g);
    fclose(b);

    struct notes n = {0};
    struct vr_encode_stats st;
    struct vr_err err;
    int rc;
    char *one = encode(cache, good, 1, 0, &n, &st, &rc, &err);
    ok(rc == 0 && st.written == 12 && st.images == 12 && st.misses == 4 && st.hits == 8,
       "12 lines, 4 images built, 8 found (rc %d, written %lld, built %lld)", rc, (long long)st.written,
       (long long)st.misses);
    char *four = encode(cache, good, 4, 0, &n, &st, &rc, &err);
    ok(rc == 0 && st.misses == 0 && one && four && strcmp(one, four) == 0,
       "4 workers and a warm cache: the same bytes");

    char *failed = encode(cache, bad, 3, 0, &n, &st, &rc, &err);
    ok(rc == -1, "a missing image fails the run");
    snprintf(path, sizeof path, "%s:3: /no/such/image.png: cannot open", bad);
    ok(strncmp(err.msg, path, strlen(path)) == 0, "the error names file:line and the image: %s", err.msg);
    size_t two = strchr(strchr(one, '\n') + 1, '\n') + 1 - one;
    ok(failed && strlen(failed) == two && strncmp(failed, one, two) == 0, "the two lines before it are written");

    char *skipped = encode(cache, bad, 2, 1, &n, &st, &rc, &err);
    ok(rc == 0 && st.skipped == 1 && st.written == 12 && n.skipped == 1 && n.rebuilt == 0,
       "skip_bad: noted once, counted, the rest written");
    is_str(skipped, one, "the output is the good lines'");
    ok(strncmp(n.last, path, strlen(path)) == 0, "the note is the error");

    free(one), free(four), free(failed), free(skipped);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ok(system(cmd) == 0, "cleanup");
    return done_testing();
}

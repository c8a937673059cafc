/* encode_core: what an image processor call does, for bench/encode: read,
 * decode and preprocess each image into pixel_values in memory (no cache
 * file), one thread, in a loop timed from inside, as bench/encode_peer.py
 * times transformers' processors. vr-encode's own figures (with the cache
 * writes) come from running it.
 *
 *   encode_core [--warmup N] FILE...
 *   encode_core [--warmup N] --load ENTRY...
 * prints {"images":N,"seconds":S,"images_per_s":R,"patches":P} on stdout.
 * --load times the read side instead: vr_pixels_load (validate the cache
 * entry, normalise + patchify its image) on vr-encode's cache entries, what
 * a later stage pays per image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "pixcache.h"
#include "preprocess.h"
#include "progress.h"

static int load;

static int one(const struct vr_preproc *p, const char *path, int64_t *patches)
{
    if (load) {
        struct vr_err err;
        struct vr_tensor pv;
        int64_t grid[3];
        if (vr_pixels_load(path, p, &pv, grid, &err)) {
            fprintf(stderr, "encode_core: %s\n", err.msg);
            return -1;
        }
        *patches += pv.shape[0];
        vr_tensor_release(&pv);
        return 0;
    }
    struct vr_err err;
    char *buf;
    size_t len;
    struct vr_image im;
    struct vr_pixels px;
    if (vr_file_read(path, &buf, &len, &err) ||
        vr_image_decode(path, buf, len, VR_IMAGE_MAX_PIXELS_DEFAULT, &im, &err)) {
        fprintf(stderr, "encode_core: %s\n", err.msg);
        return -1;
    }
    free(buf);
    int rc = vr_preprocess(p, &im, &px, &err);
    vr_image_release(&im);
    if (rc) {
        fprintf(stderr, "encode_core: %s: %s\n", path, err.msg);
        return -1;
    }
    *patches += px.rows;
    vr_pixels_release(&px);
    return 0;
}

int main(int argc, char **argv)
{
    int i = 1, warmup = 5;
    if (argc > 2 && strcmp(argv[1], "--warmup") == 0) warmup = atoi(argv[2]), i = 3;
    if (i < argc && strcmp(argv[i], "--load") == 0) load = 1, i++;
    if (i >= argc) {
        fprintf(stderr, "usage: encode_core [--warmup N] [--load] FILE...\n");
        return 2;
    }
    struct vr_preproc p;
    vr_preproc_defaults(&p);
    int64_t patches = 0;
    for (int k = i; k < argc && k < i + warmup; k++)
        if (one(&p, argv[k], &patches)) return 1;
    patches = 0;
    double t0 = vr_now();
    for (int k = i; k < argc; k++)
        if (one(&p, argv[k], &patches)) return 1;
    double dt = vr_now() - t0;
    int n = argc - i;
    printf("{\"images\":%d,\"seconds\":%.4f,\"images_per_s\":%.2f,\"patches\":%lld}\n", n, dt,
           n / dt, (long long)patches);
    return 0;
}

/* gen_jpeg: synthetic photographs for bench/encode. Not fixtures: they only
 * have to cost what a photo costs to decode (smooth shading, edges, sensor
 * noise; baseline JPEG, quality 90, 4:2:0, as COCO's), and be different
 * bytes each (the pixel cache is content-addressed). Deterministic.
 *
 *   gen_jpeg N DIR [W H]     write DIR/img00000.jpg ... (default 640x480) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <turbojpeg.h>

#include "fs.h"
#include "rng.h"

static void paint(unsigned char *px, int w, int h, struct vr_rng *r)
{
    double f[3][3];
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 3; k++) f[c][k] = vr_rng_double(r) * 2 - 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                px[(y * w + x) * 3 + c] = (unsigned char)(128 + 90 * sin(f[c][0] * x / 37.0 +
                                                                          f[c][1] * y / 29.0 +
                                                                          f[c][2] * 6));
    for (int e = 0; e < 12; e++) { /* objects: filled ellipses */
        double cx = vr_rng_double(r) * w, cy = vr_rng_double(r) * h;
        double rx = 5 + vr_rng_double(r) * w / 4, ry = 5 + vr_rng_double(r) * h / 4;
        unsigned char col[3] = {(unsigned char)vr_rng_below(r, 256),
                                (unsigned char)vr_rng_below(r, 256),
                                (unsigned char)vr_rng_below(r, 256)};
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double dx = (x - cx) / rx, dy = (y - cy) / ry;
                if (dx * dx + dy * dy < 1)
                    for (int c = 0; c < 3; c++) px[(y * w + x) * 3 + c] = col[c];
            }
    }
    for (int i = 0; i < w * h * 3; i++) { /* noise, about +-4 */
        int v = px[i] + (int)vr_rng_below(r, 9) - 4;
        px[i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: gen_jpeg N DIR [W H]\n");
        return 2;
    }
    int n = atoi(argv[1]), w = argc == 5 ? atoi(argv[3]) : 640, h = argc == 5 ? atoi(argv[4]) : 480;
    struct vr_err err;
    if (n < 1 || w < 1 || h < 1) return 2;
    if (vr_mkdir_p(argv[2], &err)) {
        fprintf(stderr, "gen_jpeg: %s\n", err.msg);
        return 1;
    }
    unsigned char *px = malloc((size_t)w * h * 3);
    tjhandle tj = tjInitCompress();
    for (int i = 0; i < n; i++) {
        struct vr_rng r;
        vr_rng_init(&r, 20261125, (uint64_t)i);
        paint(px, w, h, &r);
        unsigned char *jpg = NULL;
        unsigned long len = 0;
        if (tjCompress2(tj, px, w, 0, h, TJPF_RGB, &jpg, &len, TJSAMP_420, 90, 0) != 0) {
            fprintf(stderr, "gen_jpeg: %s\n", tjGetErrorStr2(tj));
            return 1;
        }
        char name[64];
        snprintf(name, sizeof name, "img%05d.jpg", i);
        char *path = vr_path_join(argv[2], name);
        if (vr_file_write_atomic(path, jpg, len, &err)) {
            fprintf(stderr, "gen_jpeg: %s\n", err.msg);
            return 1;
        }
        free(path);
        tjFree(jpg);
    }
    tjDestroy(tj);
    free(px);
    return 0;
}

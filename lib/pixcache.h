/* pixcache.h: the pixel cache of vr-encode (DESIGN.md §3.2): Qwen
 * preprocessing results, content-addressed, in safetensors files.
 *
 * An image's entry is DIR/<key>.safetensors, key = XXH3-128 (32 hex digits)
 * of (VR_PIXCACHE_FORMAT, every preprocessing parameter, the image file's
 * bytes), holding
 *     pixel_values  F32 [N, 3*T*P*P]   (N = grid_t*grid_h*grid_w)
 *     grid_thw      I64 [1, 3]
 * and __metadata__ {"format": VR_PIXCACHE_FORMAT, "key": <key>,
 * "image_size": "WxH", "preprocess": <the parameters as JSON>}. Files are written atomically
 * (temp, fsync, rename). A lookup reads and hashes the image file (the key
 * depends on its bytes), then opens the entry and validates its header,
 * shapes, metadata and grid against the parameters; a hit decodes nothing.
 * An entry that fails validation (truncated, corrupt, foreign) is rebuilt.
 *
 * One struct vr_pixcache may be used by many threads at once: lookups of the
 * same key wait for each other instead of writing the same file twice, and
 * results are remembered for the life of the struct. Other processes may
 * share DIR (renames are atomic; equal keys write equal bytes). */
#ifndef VR_PIXCACHE_H
#define VR_PIXCACHE_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "err.h"
#include "preprocess.h"

/* Bump when what an entry holds, or how it is computed, changes. */
#define VR_PIXCACHE_FORMAT "vr-pixels/1"

/* Where one image's pixels are. */
struct vr_pixref {
    char key[33];         /* hex */
    char *file;           /* DIR/<key>.safetensors, owned */
    int64_t grid[3];      /* grid_thw */
    int input_w, input_h; /* resized size (grid * patch size) */
    int image_w, image_h; /* decoded size */
    int hit;              /* 1: found in the cache (this run or an earlier one) */
    char rebuilt[256];    /* non-empty: the entry was invalid and was rebuilt; why */
};
void vr_pixref_release(struct vr_pixref *r);
/* {"file":…,"grid_thw":[t,h,w],"input_size":[w,h],"image_size":[w,h]} */
json_t *vr_pixref_json(const struct vr_pixref *r);

struct vr_pixcache_memo;

struct vr_pixcache {
    char *dir;
    struct vr_preproc pp;
    int64_t max_decode_pixels;  /* <= 0: no limit */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct vr_pixcache_memo *memo;
    int64_t hits, misses, rebuilt; /* counters, under mu */
};

/* Check pp, create dir (mkdir -p). Fails for a bad parameter (VR_ERR_USAGE)
 * or a folder that cannot be made (VR_ERR_SYS). */
int vr_pixcache_init(struct vr_pixcache *c, const char *dir, const struct vr_preproc *pp,
                     int64_t max_decode_pixels, struct vr_err *err);
void vr_pixcache_release(struct vr_pixcache *c);

/* Find or make the entry of the image at path. Errors name the image
 * ("a.jpg: corrupt JPEG: …", "a.jpg: cannot open: …"); callers add the task's
 * file:line. Thread-safe. */
int vr_pixcache_get(struct vr_pixcache *c, const char *path, struct vr_pixref *out,
                    struct vr_err *err);

/* Key of an image's bytes under c's parameters (no file access). */
void vr_pixcache_key(const struct vr_pixcache *c, const void *bytes, size_t len, char hex[33]);

/* Validate an entry file for c's parameters and, unless key is NULL, for
 * that key; fills out (but for file) on success. Fails with the reason
 * (VR_ERR_INPUT). */
int vr_pixcache_check(const struct vr_pixcache *c, const char *file, const char *key,
                      struct vr_pixref *out, struct vr_err *err);

#endif

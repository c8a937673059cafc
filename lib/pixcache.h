/* pixcache.h: the pixel cache of vr-encode (DESIGN.md §3.2): Qwen
 * preprocessing results, content-addressed, in safetensors files, and the
 * loader that later stages use to get pixel_values from them.
 *
 * An image's entry is DIR/<key>.safetensors, key = XXH3-128 (32 hex digits)
 * of (VR_PIXCACHE_FORMAT, every preprocessing parameter, the image file's
 * bytes), holding what pixel_values is rebuilt from exactly, small:
 *     image         U8  [H, W, 3]   the resized RGB image (H, W: the
 *                                   smart_resize output, grid * patch size)
 *     grid_thw      I64 [1, 3]
 * and __metadata__ {"format": VR_PIXCACHE_FORMAT, "key": <key>,
 * "image_size": "WxH" (decoded), "preprocess": <the parameters as JSON>,
 * "image_xxh3": <XXH3-128 of the image tensor's bytes, 32 hex>}. Normalising
 * and patchifying (a per-byte table, vr_patchify) happen on load: they cost
 * less than reading the float32 tensor would (8x the bytes: float32, the
 * frame twice), and the golden tests check pixel_values through this path.
 *
 * Files are written to a temp name and renamed, so no reader ever sees half
 * of one; they are not fsynced (writing, not computing, was what a cold run
 * spent its time on). A crash may then leave an entry whose blocks never
 * reached the disk (zeros, or an empty file): the checksum in the header,
 * verified by every lookup and load, catches that, and the entry is rebuilt.
 * A lookup reads and hashes the image file (the key depends on its bytes),
 * then opens the entry and validates its header, shapes, metadata, grid
 * and checksum against the parameters; a hit decodes nothing. An entry that
 * fails validation (truncated, torn, corrupt, foreign) is rebuilt.
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
#include "task.h"
#include "tensor.h"

/* Bump when what an entry holds, or how it is computed, changes. */
#define VR_PIXCACHE_FORMAT "vr-pixels/2"

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

/* Validate an entry file for c's parameters and, unless key is NULL, for
 * that key, checksum included (what vr_pixels_load checks); fills out's
 * grid and sizes on success. Fails with the reason (VR_ERR_INPUT). */
int vr_pixcache_check(const struct vr_pixcache *c, const char *file, const char *key,
                      struct vr_pixref *out, struct vr_err *err);

/* Load an entry's pixel_values for the model: validate file as a lookup
 * does (header, shapes, format, metadata, grid against image_size, the
 * image's checksum), then normalise and patchify its image with the
 * entry's own preprocessing parameters. want: NULL, or the parameters the
 * caller requires (an entry made with others fails). pixel_values gets an
 * owned F32 [N, 3*T*P*P] tensor (N = grid t*h*w; release it with
 * vr_tensor_release), grid the grid_thw. Fails naming the file
 * (VR_ERR_INPUT: not an entry or a bad one, VR_ERR_SYS: cannot open, out of
 * memory) and leaves pixel_values empty. Thread-safe. */
int vr_pixels_load(const char *file, const struct vr_preproc *want,
                   struct vr_tensor *pixel_values, int64_t grid[3], struct vr_err *err);

/* The pixel_values of every image of an encoded task (its "pixels"),
 * concatenated: *pix (sum of the grids' t*h*w, cols), malloc'ed. Fails when
 * the task has no pixels (hint: vr-encode), an entry is bad, or an entry's
 * grid or width is not what the line says, before anything is copied. */
int vr_pixels_task(const struct vr_task *t, int cols, float **pix, struct vr_err *err);

#endif

/* vcache.h: the vision-embedding cache of vr-encode --vision (DESIGN.md §3.2,
 * issue 4): the vision tower's output for an image, for a model whose vision
 * tower is frozen, so that rollout and update skip the tower.
 *
 * The model is named by its vision hash: XXH3-64 over every parameter whose
 * name starts with "visual." in the parameter table's order, each fed as its
 * name, dtype name, rank, shape and stored bytes (vr_vision_hash). An image's
 * entry is DIR/<key>.safetensors, key = XXH3-128 of (VR_VCACHE_FORMAT, the
 * pixel entry's key, the vision hash), holding
 *     embeds  F32 [N / merge^2, out_hidden]   (vr_vision_fwd's output)
 * and __metadata__ {"format", "key", "pixels": <pixel key>, "model": <16 hex
 * of the vision hash>, "grid_thw": "t,h,w", "embeds_xxh3": <XXH3-128 of the
 * embeds' bytes>}. Like pixel entries (pixcache.h) they are written to a temp
 * name and renamed, not fsynced, and the checksum, verified on every lookup
 * and load, catches a torn write; a bad entry is rebuilt. */
#ifndef VR_VCACHE_H
#define VR_VCACHE_H

#include <jansson.h>
#include <stdint.h>

#include "ops.h"
#include "err.h"
#include "model.h"
#include "pixcache.h"
#include "tensor.h"

/* Bump when what an entry holds, or how it is computed, changes. */
#define VR_VCACHE_FORMAT "vr-vision/1"

/* The vision hash of m (see above). */
uint64_t vr_vision_hash(const struct vr_model *m);

/* Where one image's embeddings are. */
struct vr_visref {
    char key[33];
    char *file;            /* DIR/<key>.safetensors, owned */
    int64_t rows, cols;    /* embeds shape */
    int hit;               /* 1: the entry was there and valid: no forward ran */
    char rebuilt[256];     /* non-empty: the entry was invalid and was rebuilt; why */
};
void vr_visref_release(struct vr_visref *r);

struct vr_vcache {
    char *dir;
    const struct vr_model *m;  /* borrowed */
    uint64_t vhash;
    char model[17];            /* vhash as 16 hex digits */
    struct vr_ws ws;
    int64_t hits, misses, rebuilt;
};

/* Hash m's vision tower and make dir (mkdir -p). m must outlive c. */
int vr_vcache_init(struct vr_vcache *c, const char *dir, const struct vr_model *m,
                   struct vr_err *err);
void vr_vcache_release(struct vr_vcache *c);

/* {"file":…,"model":"<16 hex>"} */
json_t *vr_visref_json(const struct vr_vcache *c, const struct vr_visref *r);

/* Find or make the embeddings of the image whose pixel entry is px: a hit
 * runs nothing; a miss loads the pixels (vr_pixels_load), runs the vision
 * tower and writes the entry. Not thread-safe: call it from one thread
 * (vr_vision_fwd runs on the thread pool itself). Fails naming the file:
 * pixels that do not fit the model's patch geometry (VR_ERR_INPUT), a bad
 * pixel entry, a failed write. */
int vr_vcache_get(struct vr_vcache *c, const struct vr_pixref *px, struct vr_visref *out,
                  struct vr_err *err);

/* Load an entry's embeddings: validated as a lookup does (format, shapes,
 * checksum; and the model when vhash is not 0); embeds gets an owned F32
 * [rows, out_hidden] tensor. Fails naming the file, leaving embeds empty. */
int vr_vision_load(const char *file, uint64_t vhash, struct vr_tensor *embeds,
                   struct vr_err *err);

#endif

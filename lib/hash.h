/* hash.h: content hashes (xxHash's XXH3). Cache keys are XXH3-128 of the
 * bytes that determine a result, printed as 32 lowercase hex digits. */
#ifndef VR_HASH_H
#define VR_HASH_H

#include <stddef.h>
#include <stdint.h>

struct vr_hash128 {
    uint64_t hi, lo;
};

struct vr_hasher {
    void *state; /* XXH3_state_t */
};

struct vr_hash128 vr_hash128(const void *p, size_t n);
uint64_t vr_hash64(const void *p, size_t n);

/* Streaming: init, update any number of times, final (which also frees). */
void vr_hasher_init(struct vr_hasher *h);
void vr_hasher_update(struct vr_hasher *h, const void *p, size_t n);
/* Feed a string with its length, so ("ab","c") and ("a","bc") differ. */
void vr_hasher_str(struct vr_hasher *h, const char *s);
void vr_hasher_u64(struct vr_hasher *h, uint64_t v);
void vr_hasher_f64(struct vr_hasher *h, double v);
struct vr_hash128 vr_hasher_final(struct vr_hasher *h);

/* The 64-bit form (XXH3-64), same updates: init64, update..., final64. */
void vr_hasher_init64(struct vr_hasher *h);
uint64_t vr_hasher_final64(struct vr_hasher *h);
/* 32 hex digits + NUL into out[33]: the canonical (big-endian) form, as
 * xxhsum prints it. */
void vr_hash128_hex(struct vr_hash128 h, char out[33]);

#endif

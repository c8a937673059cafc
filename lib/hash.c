/* hash.c: XXH3 wrappers (see hash.h). Used for cache keys and weight hashes. */
#include "hash.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "err.h"

struct vr_hash128 vr_hash128(const void *p, size_t n)
{
    XXH128_hash_t h = XXH3_128bits(p, n);
    return (struct vr_hash128){h.high64, h.low64};
}

uint64_t vr_hash64(const void *p, size_t n) { return XXH3_64bits(p, n); }

void vr_hasher_init(struct vr_hasher *h)
{
    h->state = XXH3_createState();
    VR_ASSERT(h->state);
    XXH3_128bits_reset(h->state);
}

void vr_hasher_update(struct vr_hasher *h, const void *p, size_t n)
{
    XXH3_128bits_update(h->state, p, n);
}

void vr_hasher_u64(struct vr_hasher *h, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    vr_hasher_update(h, b, 8);
}

void vr_hasher_str(struct vr_hasher *h, const char *s)
{
    size_t n = strlen(s);
    vr_hasher_u64(h, n);
    vr_hasher_update(h, s, n);
}

void vr_hasher_f64(struct vr_hasher *h, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    vr_hasher_u64(h, u);
}

struct vr_hash128 vr_hasher_final(struct vr_hasher *h)
{
    XXH128_hash_t r = XXH3_128bits_digest(h->state);
    XXH3_freeState(h->state);
    h->state = NULL;
    return (struct vr_hash128){r.high64, r.low64};
}

void vr_hasher_init64(struct vr_hasher *h)
{
    h->state = XXH3_createState();
    VR_ASSERT(h->state);
    XXH3_64bits_reset(h->state);
}

uint64_t vr_hasher_final64(struct vr_hasher *h)
{
    uint64_t r = XXH3_64bits_digest(h->state);
    XXH3_freeState(h->state);
    h->state = NULL;
    return r;
}

void vr_hash128_hex(struct vr_hash128 h, char out[33])
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.hi, (unsigned long long)h.lo);
}

/* rng.c: Philox4x32-10 and a stream over it (see rng.h). */
#include "rng.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void vr_philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

void vr_rng_init(struct vr_rng *r, uint64_t seed, uint64_t stream)
{
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = (uint32_t)stream;
    r->ctr[1] = (uint32_t)(stream >> 32);
    r->ctr[2] = 0;
    r->ctr[3] = 0;
    r->left = 0;
}

uint32_t vr_rng_u32(struct vr_rng *r)
{
    if (r->left == 0) {
        vr_philox(r->ctr, r->key, r->buf);
        if (++r->ctr[2] == 0) r->ctr[3]++;
        r->left = 4;
    }
    return r->buf[4 - r->left--];
}

uint64_t vr_rng_u64(struct vr_rng *r)
{
    uint64_t hi = vr_rng_u32(r);
    return hi << 32 | vr_rng_u32(r);
}

double vr_rng_double(struct vr_rng *r) { return (double)(vr_rng_u64(r) >> 11) * 0x1p-53; }

float vr_rng_float(struct vr_rng *r) { return vr_u32_to_unit_float(vr_rng_u32(r)); }

uint64_t vr_rng_below(struct vr_rng *r, uint64_t n)
{
    /* Lemire 2019 with 64-bit draws */
    uint64_t x = vr_rng_u64(r);
    __uint128_t m = (__uint128_t)x * n;
    uint64_t l = (uint64_t)m;
    if (l < n) {
        uint64_t t = -n % n;
        while (l < t) {
            x = vr_rng_u64(r);
            m = (__uint128_t)x * n;
            l = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

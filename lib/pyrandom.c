/* pyrandom.c: CPython's Mersenne Twister and the parts of random.py vr-prep
 * needs (see pyrandom.h). A transcription of Modules/_randommodule.c
 * (init_genrand, init_by_array, genrand_uint32, random_seed,
 * random_getrandbits) and Lib/random.py (_randbelow_with_getrandbits,
 * shuffle); reference code, used once per vr-prep run, never in a hot loop. */
#include "pyrandom.h"

#include <string.h>

#include "err.h"

enum { MT_N = 624, MT_M = 397 };
#define MATRIX_A 0x9908b0dfu
#define UPPER_MASK 0x80000000u
#define LOWER_MASK 0x7fffffffu

void vr_pyrandom_init_genrand(struct vr_pyrandom *r, uint32_t s)
{
    uint32_t *mt = r->mt;
    mt[0] = s;
    for (int i = 1; i < MT_N; i++) mt[i] = 1812433253u * (mt[i - 1] ^ (mt[i - 1] >> 30)) + (uint32_t)i;
    r->index = MT_N;
}

void vr_pyrandom_init_by_array(struct vr_pyrandom *r, const uint32_t *key, size_t n)
{
    VR_ASSERT(n >= 1);
    uint32_t *mt = r->mt;
    vr_pyrandom_init_genrand(r, 19650218u);
    size_t i = 1, j = 0;
    for (size_t k = MT_N > n ? MT_N : n; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        i++, j++;
        if (i >= MT_N) {
            mt[0] = mt[MT_N - 1];
            i = 1;
        }
        if (j >= n) j = 0;
    }
    for (size_t k = MT_N - 1; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= MT_N) {
            mt[0] = mt[MT_N - 1];
            i = 1;
        }
    }
    mt[0] = 0x80000000u; /* MSB set: the state is never all zero */
}

void vr_pyrandom_seed(struct vr_pyrandom *r, uint64_t seed)
{
    /* random_seed: the key is abs(seed) as little-endian 32-bit words, at least one */
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    vr_pyrandom_init_by_array(r, key, key[1] ? 2 : 1);
}

uint32_t vr_pyrandom_u32(struct vr_pyrandom *r)
{
    static const uint32_t mag01[2] = {0u, MATRIX_A};
    uint32_t *mt = r->mt, y;
    if (r->index >= MT_N) {
        int kk;
        for (kk = 0; kk < MT_N - MT_M; kk++) {
            y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
            mt[kk] = mt[kk + MT_M] ^ (y >> 1) ^ mag01[y & 1u];
        }
        for (; kk < MT_N - 1; kk++) {
            y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
            mt[kk] = mt[kk + (MT_M - MT_N)] ^ (y >> 1) ^ mag01[y & 1u];
        }
        y = (mt[MT_N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
        mt[MT_N - 1] = mt[MT_M - 1] ^ (y >> 1) ^ mag01[y & 1u];
        r->index = 0;
    }
    y = mt[r->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t vr_pyrandom_bits(struct vr_pyrandom *r, int k)
{
    VR_ASSERT(k >= 0 && k <= 64);
    if (k == 0) return 0;
    if (k <= 32) return vr_pyrandom_u32(r) >> (32 - k);
    /* random_getrandbits fills words least significant first; only the last
     * (most significant) word is cut to the bits that remain */
    uint64_t lo = vr_pyrandom_u32(r);
    uint64_t hi = vr_pyrandom_u32(r) >> (64 - k);
    return lo | hi << 32;
}

uint64_t vr_pyrandom_below(struct vr_pyrandom *r, uint64_t n)
{
    VR_ASSERT(n > 0);
    int k = 64 - __builtin_clzll(n); /* n.bit_length() */
    uint64_t x = vr_pyrandom_bits(r, k);
    while (x >= n) x = vr_pyrandom_bits(r, k);
    return x;
}

void vr_pyrandom_shuffle(struct vr_pyrandom *r, void *base, size_t n, size_t size)
{
    unsigned char *b = base;
    for (size_t i = n > 0 ? n - 1 : 0; i > 0; i--) {
        size_t j = (size_t)vr_pyrandom_below(r, (uint64_t)i + 1);
        if (j == i) continue;
        unsigned char *p = b + i * size, *q = b + j * size;
        for (size_t t = 0; t < size; t++) {
            unsigned char c = p[t];
            p[t] = q[t];
            q[t] = c;
        }
    }
}

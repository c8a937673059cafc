/* rng.h: counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 *
 * A draw is a pure function of (key, counter), so any stage on any machine, CPU
 * or GPU, can compute the same number for the same (seed, task, completion,
 * position) without sharing state. vr_philox is the primitive; struct vr_rng is
 * a convenience stream over consecutive counters. */
#ifndef VR_RNG_H
#define VR_RNG_H

#include <stdint.h>

/* One Philox4x32-10 block: out = philox(ctr, key). */
void vr_philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* A stream: key = seed; counter = (stream id lo, hi, block lo, hi). Two streams
 * with different ids never share a block. */
struct vr_rng {
    uint32_t key[2];
    uint32_t ctr[4];
    uint32_t buf[4];
    int left;
};

void vr_rng_init(struct vr_rng *r, uint64_t seed, uint64_t stream);
uint32_t vr_rng_u32(struct vr_rng *r);
uint64_t vr_rng_u64(struct vr_rng *r);
/* Uniform in [0, 1) with 53 (double) or 24 (float) random bits. */
double vr_rng_double(struct vr_rng *r);
float vr_rng_float(struct vr_rng *r);
/* Uniform integer in [0, n), unbiased (Lemire's multiply-and-reject). n > 0. */
uint64_t vr_rng_below(struct vr_rng *r, uint64_t n);

/* float in [0,1) from one 32-bit draw: the top 24 bits / 2^24. The CUDA
 * sampler uses the same mapping so both backends pick the same token. */
static inline float vr_u32_to_unit_float(uint32_t x) { return (float)(x >> 8) * 0x1p-24f; }

#endif

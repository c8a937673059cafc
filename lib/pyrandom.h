/* pyrandom.h: CPython's `random` module, bit for bit — MT19937 seeded the way
 * random.seed(int) seeds it, getrandbits, _randbelow and shuffle.
 *
 * vr's own random numbers come from rng.h (counter-based, the same on CPU and
 * GPU). This module exists only to reproduce subsets that Python code drew:
 * VLM-R1's eval scripts take `random.seed(S); random.shuffle(data);
 * data = data[:N]`, and vr-prep --take pyrandom:N --seed S takes the same
 * records (dataset.h). Checked against CPython by tests/unit/pyrandom.c on the
 * fixture of tests/golden/make_pyrandom_golden.py. */
#ifndef VR_PYRANDOM_H
#define VR_PYRANDOM_H

#include <stddef.h>
#include <stdint.h>

/* MT19937 state (Matsumoto & Nishimura 1998), as CPython's RandomObject. */
struct vr_pyrandom {
    uint32_t mt[624];
    int index; /* next word of mt to temper; 624: regenerate first */
};

/* The reference init_genrand(s). Python never seeds with it alone (it is the
 * first step of init_by_array); exposed for MT19937's known answers
 * (s = 5489 gives 3499211612, 581869302, ...: C++'s std::mt19937). */
void vr_pyrandom_init_genrand(struct vr_pyrandom *r, uint32_t s);
/* The reference init_by_array(key, n), n >= 1. */
void vr_pyrandom_init_by_array(struct vr_pyrandom *r, const uint32_t *key, size_t n);
/* random.seed(seed) for a non-negative int: init_by_array over seed's 32-bit
 * words, low word first, as few words as hold it (0 is one word 0; seeds of
 * 2^32 and more are two words). */
void vr_pyrandom_seed(struct vr_pyrandom *r, uint64_t seed);

/* genrand_uint32: the next 32-bit output, as getrandbits(32). */
uint32_t vr_pyrandom_u32(struct vr_pyrandom *r);
/* getrandbits(k), 0 <= k <= 64: k <= 32 is one output shifted right by 32 - k
 * (k = 0 draws nothing and gives 0); k > 32 is two outputs, the first the low
 * word, the second shifted right by 64 - k (random_getrandbits' layout). */
uint64_t vr_pyrandom_bits(struct vr_pyrandom *r, int k);
/* _randbelow(n) = _randbelow_with_getrandbits: getrandbits(n.bit_length())
 * until it is below n. Uniform in [0, n); n > 0 (asserted). */
uint64_t vr_pyrandom_below(struct vr_pyrandom *r, uint64_t n);
/* random.shuffle on an array of n elements of size bytes each, in place:
 * for i = n-1 down to 1, swap elements i and _randbelow(i + 1). Any n a
 * size_t holds, so lists past 2^32 draw 33+ bits as Python would. */
void vr_pyrandom_shuffle(struct vr_pyrandom *r, void *base, size_t n, size_t size);

#endif

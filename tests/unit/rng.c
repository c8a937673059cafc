/* rng.c: Philox4x32-10 against Random123's known-answer vectors, and the
 * stream helpers' ranges and uniformity. */
#include "rng.h"

#include "../tap.h"

static void kat(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                uint32_t e0, uint32_t e1, uint32_t e2, uint32_t e3)
{
    uint32_t ctr[4] = {c0, c1, c2, c3}, key[2] = {k0, k1}, out[4];
    vr_philox(ctr, key, out);
    ok(out[0] == e0 && out[1] == e1 && out[2] == e2 && out[3] == e3,
       "philox4x32-10 kat ctr %08x key %08x", c0, k0);
    if (out[0] != e0) diag("got %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);
}

int main(void)
{
    /* Random123 kat_vectors: philox4x32 10 rounds */
    kat(0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8);
    kat(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
        0x41c83b0e, 0xa20bc7c6, 0x6d5451fd);
    kat(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
        0x94fdcceb, 0x5001e420, 0x24126ea1);

    struct vr_rng a, b;
    vr_rng_init(&a, 42, 7);
    vr_rng_init(&b, 42, 7);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= vr_rng_u32(&a) == vr_rng_u32(&b);
    ok(same, "same seed and stream give the same draws");
    vr_rng_init(&b, 42, 8);
    vr_rng_init(&a, 42, 7);
    int differ = 0;
    for (int i = 0; i < 16; i++) differ += vr_rng_u32(&a) != vr_rng_u32(&b);
    ok(differ >= 15, "another stream gives other draws");

    /* uniformity of below(10): chi-square with 9 dof, p ~ 1e-6 cut-off 48 */
    long cnt[10] = {0};
    vr_rng_init(&a, 1, 0);
    int inrange = 1;
    for (int i = 0; i < 100000; i++) {
        uint64_t x = vr_rng_below(&a, 10);
        inrange &= x < 10;
        cnt[x < 10 ? x : 0]++;
    }
    double chi = 0;
    for (int i = 0; i < 10; i++) chi += (cnt[i] - 10000.0) * (cnt[i] - 10000.0) / 10000.0;
    ok(inrange, "below(10) stays in range");
    ok(chi < 48, "below(10) is uniform (chi2 %.1f)", chi);
    double lo = 1, hi = 0, sum = 0;
    for (int i = 0; i < 100000; i++) {
        double d = vr_rng_double(&a);
        float f = vr_rng_float(&a);
        if (d < lo) lo = d;
        if (d > hi) hi = d;
        if (f < lo) lo = f;
        if (f >= 1.0f) hi = 2;
        sum += d;
    }
    ok(lo >= 0 && hi < 1, "double and float draws lie in [0, 1)");
    ok(fabs(sum / 100000 - 0.5) < 0.005, "mean of uniform draws is 0.5 (%.4f)", sum / 100000);
    ok(vr_u32_to_unit_float(0xffffffffu) < 1.0f && vr_u32_to_unit_float(0) == 0.0f,
       "u32 -> float mapping is [0, 1)");
    return done_testing();
}

/* weights.h: a random weight matrix of n values in [-1, 1) stored as dtype
 * (f32, bf16 or f16), drawn by the test's own generator: the GEMV tests'
 * shared set-up (cpu_ops.c against float64, isa_bits.c against the
 * definition's bits). */
#ifndef VR_TEST_WEIGHTS_H
#define VR_TEST_WEIGHTS_H

#include <stdint.h>

#include "err.h"
#include "tensor.h"

static inline void *rand_weight(enum vr_dtype dt, size_t n, float (*frand)(float, float))
{
    void *w = vr_xmalloc(n * (dt == VR_DTYPE_F32 ? 4 : 2) + 4);
    for (size_t i = 0; i < n; i++) {
        float v = frand(-1, 1);
        if (dt == VR_DTYPE_F32) ((float *)w)[i] = v;
        else if (dt == VR_DTYPE_BF16) ((uint16_t *)w)[i] = vr_f32_to_bf16(v);
        else ((uint16_t *)w)[i] = vr_f32_to_f16(v);
    }
    return w;
}

#endif

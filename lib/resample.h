/* resample.h: Pillow's convolution resampling (Image.resize with BICUBIC and
 * friends) for 8-bit images, bit for bit.
 *
 * Qwen2-VL's slow image processor resizes with PIL.Image.resize(size,
 * BICUBIC); matching its pixel_values exactly means matching Pillow's
 * ImagingResample: separable passes (horizontal first, over only the rows the
 * vertical pass reads, then vertical; or, in Pillow 13, vertical first when
 * the height shrinks much more than the width), filter support widened by the scale
 * when shrinking (antialiasing), coefficients normalised in double and then
 * rounded to 22-bit fixed point, integer accumulation with rounding, and
 * clipping to 0..255. This is a reimplementation from that description, not
 * a copy of Pillow's code. */
#ifndef VR_RESAMPLE_H
#define VR_RESAMPLE_H

#include <stdint.h>

#include "err.h"

/* Filters with PIL's Image.Resampling numbers, so that a preprocessor config's
 * "resample": 3 means bicubic here too. NEAREST (0) is not a convolution in
 * Pillow and is not provided. */
enum vr_filter {
    VR_FILTER_LANCZOS = 1,  /* a = 3 */
    VR_FILTER_BILINEAR = 2,
    VR_FILTER_BICUBIC = 3,  /* a = -0.5 */
    VR_FILTER_BOX = 4,
    VR_FILTER_HAMMING = 5,
};

/* "bicubic", ... for messages; NULL for a number that is not a filter here. */
const char *vr_filter_name(int filter);

/* The Pillow release whose pass order vr_resample reproduces by default.
 * Pillow <= 12 always resamples horizontally first; Pillow 13 goes vertical
 * first when the height shrinks by more than twice what the width shrinks.
 * Each pass rounds to 8 bits, so the order shows in the low bits. */
#define VR_PILLOW_DEFAULT 13

/* out (oh, ow, C)  in (ih, iw, C)  with C = channels (1..4), interleaved rows
 * without padding. Resizes in to out exactly as PIL's Image.resize((ow, oh),
 * filter) of Pillow major version `pillow` does for an 8-bit image of that
 * many bands (reducing_gap=None, no box). Equal sizes copy. Fails
 * (VR_ERR_SYS) only when out of memory, and (VR_ERR_USAGE) for sizes < 1 or an
 * unknown filter. */
int vr_resample(uint8_t *out, int ow, int oh, const uint8_t *in, int iw, int ih, int channels,
                int filter, int pillow, struct vr_err *err);

/* The AVX2 passes (bit-identical to the scalar ones) are used when
 * vr_isa() (cpu/isa.h) is avx2 or avx512 (VR_ISA=c gives the scalar path). on = 0 or 1
 * forces it off or (where the CPU allows) on, -1 only asks; returns whether
 * it was in use. For tests and benchmarks; not thread-safe. */
int vr_resample_simd(int on);

#endif

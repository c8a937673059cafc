/* libFuzzer entry point for image files (lib/image.c: JPEG through
 * TurboJPEG, PNG through libspng) and, when one decodes, for Qwen
 * preprocessing of it (smart_resize, both resampling pass orders and the
 * AVX2 and scalar paths, patchify). Built and run by `make fuzz`
 * (tests/fuzz/run.sh; `make fuzz FUZZ=image_decode` for this one alone);
 * its seeds are tests/fuzz/corpus/image_decode and the folders
 * tests/fuzz/harnesses lists. A crasher goes into tests/bad/images/ named
 * after its defect, or tests/bad/fuzz/image_decode/ when it is an image vr
 * must accept; t0990 replays both. */
#include <stdint.h>
#include <stdlib.h>

#include "image.h"
#include "preprocess.h"
#include "resample.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vr_image im;
    struct vr_err err;
    /* small enough that a header claiming a big image cannot exhaust memory */
    if (vr_image_decode("fuzz", data, size, 1 << 20, &im, &err)) return 0;
    struct vr_preproc p;
    vr_preproc_defaults(&p);
    p.max_pixels = 1 << 16;
    p.pillow = size & 1 ? 12 : 13;
    p.min_side = size & 2 ? 28 : 0;
    vr_resample_simd(!(size & 4));
    struct vr_pixels px;
    if (vr_preprocess(&p, &im, &px, &err) == 0) vr_pixels_release(&px);
    vr_image_release(&im);
    return 0;
}

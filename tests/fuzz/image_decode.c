/* libFuzzer entry point for image files (lib/image.c: JPEG through
 * TurboJPEG, PNG through libspng) and, when one decodes, for Qwen
 * preprocessing of it (smart_resize, both resampling pass orders and the
 * AVX2 and scalar paths, patchify). Not built by make; build and run with
 * clang:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ilib \
 *     tests/fuzz/image_decode.c lib/image.c lib/preprocess.c lib/resample.c lib/err.c \
 *     lib/fs.c lib/hash.c lib/buf.c lib/jsonl.c \
 *     -lturbojpeg -lspng -ljansson -lxxhash -lm -o /tmp/fuzz-img
 *   /tmp/fuzz-img -max_total_time=60 -max_len=65536 tests/bad/images tests/golden/images
 * A crasher goes into tests/bad/images/ with a name for its defect. */
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

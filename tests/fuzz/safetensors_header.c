/* libFuzzer entry point for safetensors files (lib/safetensors.c: the u64
 * header length, the JSON header, dtypes, shapes and offsets against the
 * file's size) and, when one opens, for what readers do next: lookup by name,
 * zero-copy views, owned copies widened to f32 (vr-inspect --stats), and
 * vr-encode's pixel cache entry checks (lib/pixcache.c vr_pixels_load, a
 * safetensors file with metadata). The input is a memfd, so a header claiming
 * a huge tensor is refused against the input's own size, never allocated.
 * Built and run by `make fuzz` (tests/fuzz/run.sh); a crasher goes into
 * tests/bad/safetensors/ named after its defect (t0200 checks vr-inspect
 * refuses it in one line; t0990 replays it), or tests/bad/fuzz/
 * safetensors_header/ when it is a file vr must accept. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz.h"
#include "pixcache.h"
#include "safetensors.h"

static int is_float(enum vr_dtype d)
{
    return d == VR_DTYPE_F32 || d == VR_DTYPE_BF16 || d == VR_DTYPE_F16;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[32];
    int fd = fuzz_memfd(data, size, path);
    if (fd < 0) return 0;
    struct vr_safetensors st;
    struct vr_err err;
    if (vr_safetensors_open(&st, path, &err) == 0) {
        for (int i = 0; i < st.n; i++) {
            const struct vr_st_entry *e = vr_safetensors_find(&st, st.t[i].name);
            if (!e) abort(); /* every tensor of the file is found by its name */
            struct vr_tensor t;
            if (vr_safetensors_view(&st, e->name, &t, &err) == 0 && vr_tensor_nbytes(&t) != e->end - e->begin)
                abort();
            if (vr_safetensors_read(&st, e->name, &t, &err)) continue;
            size_t n = (size_t)vr_tensor_numel(&t);
            if (is_float(t.dtype) && n <= (1u << 20)) {
                float *f = malloc((n + 1) * sizeof *f);
                vr_convert_to_f32(f, t.data, t.dtype, n);
                double s = 0;
                for (size_t k = 0; k < n; k++) s += f[k];
                (void)s;
                free(f);
            }
            vr_tensor_release(&t);
        }
        vr_safetensors_find(&st, "no such tensor");
        vr_safetensors_close(&st);
    }
    struct vr_tensor px;
    int64_t grid[3];
    if (vr_pixels_load(path, NULL, &px, grid, &err) == 0) vr_tensor_release(&px);
    close(fd);
    return 0;
}

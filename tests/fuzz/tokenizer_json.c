/* libFuzzer entry point for tokenizer.json (lib/bpe_load.c's scanner and checks)
 * and, when the input loads, for encoding and decoding with it. Built and
 * run by `make fuzz` (tests/fuzz/run.sh; `make fuzz FUZZ=tokenizer_json` for
 * this one alone); its seeds are tests/fuzz/corpus/tokenizer_json and the
 * folders tests/fuzz/harnesses lists. A crasher that vr must refuse goes
 * into tests/bad/tokenizer/ named after its defect, with a line in its
 * expected.txt (t0530 checks the error), one it must accept into
 * tests/bad/fuzz/tokenizer_json/; t0990 replays both. */
#include <stdint.h>
#include <string.h>

#include "bpe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vr_bpe *t;
    struct vr_err err;
    if (vr_bpe_load_mem(&t, (const char *)data, size, "fuzz.json", &err)) return 0;
    /* the input itself as text too: any bytes */
    static const char text[] = "Hello <|im_end|> 世界 e\xCC\x81 \xFF\xFE 'S  \n\n 123";
    struct vr_ids ids = {0};
    vr_bpe_encode(t, text, sizeof text - 1, 0, &ids);
    vr_bpe_encode(t, (const char *)data, size < 4096 ? size : 4096, VR_BPE_SPECIAL_AS_TEXT, &ids);
    struct vr_buf out = {0};
    vr_bpe_decode(t, ids.v, ids.n, 0, &out);
    struct vr_bpe_stream s;
    vr_bpe_stream_init(&s, t, VR_BPE_SKIP_SPECIAL);
    for (size_t i = 0; i < ids.n; i++) vr_bpe_stream_put(&s, ids.v[i], &out);
    vr_bpe_stream_flush(&s, &out);
    vr_buf_release(&out);
    vr_ids_release(&ids);
    vr_bpe_free(t);
    return 0;
}

/* libFuzzer entry point for a checkpoint's JSON files: config.json
 * (lib/model.c vr_model_config_load: the 4.4x and 5.x layouts, sizes checked
 * before anything is sized from them) and preprocessor_config.json
 * (lib/preprocess.c vr_preproc_load); the input is read as each. A config
 * that loads is then sized: the parameter table (vr_model_params, as every
 * loader walks it), the parameter count, and config.json written again as
 * vr-init and vr-update write it (lib/init.c), which must read back as the
 * same config. A preprocessor config that loads sizes a few images. The input
 * is a memfd. Built and run by `make fuzz` (tests/fuzz/run.sh); a crasher
 * goes into tests/bad/fuzz/model_config/ named after its defect (t0990
 * replays it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "init.h"
#include "model.h"
#include "preprocess.h"

static void config(const char *path)
{
    struct vr_model_config c, again;
    struct vr_err err;
    if (vr_model_config_load(&c, path, &err)) return;
    struct vr_model m = {.cfg = c};
    vr_model_params(&m);
    int64_t numel = 0;
    for (int i = 0; i < m.nparams; i++) {
        int64_t k = 1;
        for (int d = 0; d < m.params[i].ndim; d++) k *= m.params[i].shape[d];
        if (k <= 0) abort(); /* a checked config gives no empty or negative tensor */
        if (!m.params[i].tied) numel += k;
    }
    if (numel != vr_init_param_count(&c)) abort();
    vr_model_release(&m);
    json_t *j = vr_init_config_json(&c);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (getenv("VR_FUZZ_VERBOSE")) fprintf(stderr, "%s\n", text);
    char p2[32];
    int fd = fuzz_memfd(text, strlen(text), p2);
    free(text);
    if (fd < 0) return;
    if (vr_model_config_load(&again, p2, &err)) {
        fprintf(stderr, "model_config: the config written again does not load: %s\n", err.msg);
        abort();
    }
    close(fd);
    if (memcmp(&c, &again, sizeof c)) {
        json_t *j2 = vr_init_config_json(&again);
        char *t2 = json_dumps(j2, JSON_COMPACT);
        fprintf(stderr, "model_config: the config written again reads back different:\n%s\n", t2);
        free(t2);
        json_decref(j2);
        abort();
    }
}

static void preproc(const char *path)
{
    struct vr_preproc p;
    struct vr_err err;
    vr_preproc_defaults(&p);
    if (vr_preproc_load(&p, path, &err) || vr_preproc_check(&p, &err)) return;
    json_decref(vr_preproc_json(&p));
    static const int sizes[][2] = {{1, 1}, {640, 480}, {28, 5600}, {4096, 3072}, {1 << 20, 1 << 19}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int w, h;
        vr_preprocess_size(&p, sizes[i][0], sizes[i][1], &w, &h, &err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[32];
    int fd = fuzz_memfd(data, size, path);
    if (fd < 0) return 0;
    config(path);
    preproc(path);
    close(fd);
    return 0;
}

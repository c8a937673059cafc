/* model_load.c: a checkpoint loads whatever its layout: the newer tensor
 * names (model.language_model.*, model.visual.*), sharded, bf16 or f16, tied
 * (no lm_head.weight) — and every weight is the one the file holds. */
#include <stdlib.h>
#include <unistd.h>

#include "fs.h"
#include "model.h"

#include "../tap.h"

#define GOLDEN "tests/golden/model/ckpt"

/* Rewrite the golden checkpoint into dir with new names, dtype dt, shards of
 * at most shard bytes, optionally without lm_head. */
static int rewrite(const char *dir, enum vr_dtype dt, uint64_t shard, int drop_head, struct vr_err *err)
{
    struct vr_safetensors st;
    if (vr_safetensors_open(&st, GOLDEN "/model.safetensors", err)) return -1;
    char **names = vr_xcalloc((size_t)st.n, sizeof *names);
    struct vr_tensor *t = vr_xcalloc((size_t)st.n, sizeof *t);
    int n = 0;
    for (int i = 0; i < st.n; i++) {
        const char *nm = st.t[i].name;
        if (drop_head && !strcmp(nm, "lm_head.weight")) continue;
        char buf[160];
        if (!strncmp(nm, "visual.", 7)) snprintf(buf, sizeof buf, "model.%s", nm);
        else if (!strncmp(nm, "model.", 6)) snprintf(buf, sizeof buf, "model.language_model.%s", nm + 6);
        else snprintf(buf, sizeof buf, "%s", nm);
        names[n] = vr_xstrdup(buf);
        struct vr_tensor src;
        vr_safetensors_view(&st, nm, &src, err);
        vr_tensor_alloc(&t[n], dt, src.ndim, src.shape, err);
        vr_convert_from_f32(t[n].data, dt, src.data, (size_t)vr_tensor_numel(&src));
        n++;
    }
    int rc = vr_stset_write(dir, n, (const char *const *)names, t, shard, NULL, err);
    for (int i = 0; i < n; i++) free(names[i]), vr_tensor_release(&t[i]);
    free(names);
    free(t);
    vr_safetensors_close(&st);
    char *cfg, *dst = vr_path_join(dir, "config.json");
    size_t len;
    if (rc == 0 && vr_file_read(GOLDEN "/config.json", &cfg, &len, err) == 0) {
        if (drop_head) { /* a tied model says so */
            char *p = strstr(cfg, "\"tie_word_embeddings\": false");
            while (p) {
                memcpy(p, "\"tie_word_embeddings\": true ", 28);
                p = strstr(p, "\"tie_word_embeddings\": false");
            }
        }
        rc = vr_file_write_atomic(dst, cfg, len, err);
        free(cfg);
    }
    free(dst);
    return rc;
}

/* Every weight of b equals a's, rounded to b's dtype. */
static int same_weights(const struct vr_model *a, const struct vr_model *b)
{
    if (a->nparams != b->nparams) return 0;
    for (int i = 0; i < a->nparams; i++) {
        const struct vr_tensor *x = &a->params[i].t, *y = &b->params[i].t;
        size_t n = (size_t)vr_tensor_numel(x);
        if ((size_t)vr_tensor_numel(y) != n) return 0;
        float *fx = malloc(n * 4), *fy = malloc(n * 4);
        vr_convert_to_f32(fx, x->data, x->dtype, n);
        vr_convert_to_f32(fy, y->data, y->dtype, n);
        int ok_ = 1;
        for (size_t k = 0; k < n && ok_; k++) {
            uint16_t h = y->dtype == VR_DTYPE_BF16 ? vr_f32_to_bf16(fx[k]) : vr_f32_to_f16(fx[k]);
            float want = y->dtype == VR_DTYPE_F32 ? fx[k]
                         : y->dtype == VR_DTYPE_BF16 ? vr_bf16_to_f32(h) : vr_f16_to_f32(h);
            ok_ = want == fy[k];
        }
        free(fx), free(fy);
        if (!ok_) {
            diag("weight %s differs", a->params[i].name);
            return 0;
        }
    }
    return 1;
}

int main(void)
{
    struct vr_err err;
    struct vr_model ref;
    if (vr_model_load(&ref, GOLDEN, &err)) {
        ok(0, "golden checkpoint: %s", err.msg);
        return done_testing();
    }
    char tmp[] = "/tmp/vr-model-load-XXXXXX";
    ok(mkdtemp(tmp) != NULL, "temp dir");
    struct { const char *name; enum vr_dtype dt; uint64_t shard; int drop; } cases[] = {
        {"new names, one file, f32", VR_DTYPE_F32, 0, 0},
        {"new names, sharded, bf16", VR_DTYPE_BF16, 300000, 0},
        {"new names, f16", VR_DTYPE_F16, 0, 0},
        {"tied: no lm_head.weight", VR_DTYPE_F32, 0, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char dir[128];
        snprintf(dir, sizeof dir, "%s/%zu", tmp, c);
        if (rewrite(dir, cases[c].dt, cases[c].shard, cases[c].drop, &err)) {
            ok(0, "%s: write: %s", cases[c].name, err.msg);
            continue;
        }
        struct vr_model m;
        if (vr_model_load(&m, dir, &err)) {
            ok(0, "%s: load: %s", cases[c].name, err.msg);
            continue;
        }
        ok(cases[c].shard ? m.st.nfiles > 1 : m.st.nfiles == 1,
           "%s: %d file(s)", cases[c].name, m.st.nfiles);
        if (cases[c].drop) {
            ok(m.params[m.nparams - 1].tied && m.lm_head->data == m.embed->data,
               "%s: lm_head is the embedding", cases[c].name);
        } else {
            ok(same_weights(&ref, &m), "%s: every weight as stored", cases[c].name);
        }
        vr_model_release(&m);
    }
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    ok(system(cmd) == 0, "cleanup");
    vr_model_release(&ref);
    return done_testing();
}

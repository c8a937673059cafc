/* lora.c: LoRA adapters in PEFT's format (lora.h). */
#include "lora.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops.h"
#include "fs.h"
#include "jsonl.h"
#include "rng.h"
#include "safetensors.h"

/* model.layers.3.mlp.up_proj.weight -> model.language_model.layers.3.mlp.up_proj;
 * lm_head.weight -> lm_head (the module names transformers 5 gives PEFT) */
static void module_name(const char *param, char *out, size_t n)
{
    size_t len = strlen(param);
    if (len > 7 && strcmp(param + len - 7, ".weight") == 0) len -= 7;
    if (strncmp(param, "model.", 6) == 0)
        snprintf(out, n, "model.language_model.%.*s", (int)(len - 6), param + 6);
    else snprintf(out, n, "%.*s", (int)len, param);
}

static int is_target(const char *name)
{
    if (strcmp(name, "lm_head.weight") == 0) return 1;
    if (strncmp(name, "model.layers.", 13) != 0) return 0;
    static const char *const lin[] = {"q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight",
                                      "gate_proj.weight", "up_proj.weight", "down_proj.weight"};
    size_t len = strlen(name);
    for (size_t i = 0; i < sizeof lin / sizeof *lin; i++) {
        size_t l = strlen(lin[i]);
        if (len > l && strcmp(name + len - l, lin[i]) == 0) return 1;
    }
    return 0;
}

static void set_scale(struct vr_lora *lo)
{
    lo->scale = lo->rslora ? lo->alpha / sqrt((double)lo->r) : lo->alpha / lo->r;
}

void vr_lora_init(struct vr_lora *lo, const struct vr_model *m, int r, double alpha, double dropout,
                  int rslora, uint64_t seed)
{
    memset(lo, 0, sizeof *lo);
    lo->r = r;
    lo->alpha = alpha;
    lo->dropout = dropout;
    lo->rslora = rslora;
    lo->seed = seed;
    set_scale(lo);
    lo->of = vr_xmalloc((size_t)m->nparams * sizeof *lo->of);
    lo->ad = vr_xcalloc((size_t)m->nparams + 1, sizeof *lo->ad);
    lo->tab = vr_xcalloc(2 * (size_t)m->nparams + 1, sizeof *lo->tab);
    lo->off = vr_xcalloc(2 * (size_t)m->nparams + 1, sizeof *lo->off);
    size_t off = 0;
    for (int i = 0; i < m->nparams; i++) {
        lo->of[i] = -1;
        if (!is_target(m->params[i].name)) continue;
        struct vr_lora_ad *a = &lo->ad[lo->n];
        a->param = i;
        a->out = (int)m->params[i].shape[0];
        a->in = (int)m->params[i].shape[1];
        char mod[128];
        module_name(m->params[i].name, mod, sizeof mod);
        for (int k = 0; k < 2; k++) {
            struct vr_param *p = &lo->tab[2 * lo->n + k];
            snprintf(p->name, sizeof p->name, "base_model.model.%s.lora_%c.weight", mod, k ? 'B' : 'A');
            p->ndim = 2;
            p->shape[0] = k ? a->out : r;
            p->shape[1] = k ? r : a->in;
            lo->off[2 * lo->n + k] = off;
            if (k) a->b = off;
            else a->a = off;
            off += ((size_t)p->shape[0] * (size_t)p->shape[1] + 15) & ~(size_t)15;
        }
        lo->of[i] = lo->n++;
    }
    lo->total = off;
}

void vr_lora_release(struct vr_lora *lo)
{
    free(lo->of);
    free(lo->ad);
    free(lo->tab);
    free(lo->off);
    memset(lo, 0, sizeof *lo);
}

void vr_lora_init_weights(const struct vr_lora *lo, float *w)
{
    memset(w, 0, lo->total * sizeof *w);
    for (int t = 0; t < lo->n; t++) {
        const struct vr_lora_ad *a = &lo->ad[t];
        struct vr_rng g;
        vr_rng_init(&g, lo->seed, 0x4c6f5241000000ull + (uint64_t)t);
        double bound = 1.0 / sqrt((double)a->in);
        for (size_t j = 0; j < (size_t)lo->r * a->in; j++) w[a->a + j] = (float)((2 * vr_rng_double(&g) - 1) * bound);
    }
}

int vr_lora_present(const char *dir)
{
    char *c = vr_path_join(dir, "adapter_config.json"), *s = vr_path_join(dir, "adapter_model.safetensors");
    int ok = access(c, R_OK) == 0 && access(s, R_OK) == 0;
    free(c);
    free(s);
    return ok;
}

/* base_model.model.<module>.lora_A.weight -> the model's parameter index, or -1 */
static int key_param(const struct vr_model *m, const char *key, int *kind)
{
    const char *pre = "base_model.model.";
    size_t lp = strlen(pre), len = strlen(key);
    if (strncmp(key, pre, lp) != 0 || len < lp + 15) return -1;
    const char *tail = key + len - 14; /* ".lora_A.weight" */
    if (strcmp(tail, ".lora_A.weight") == 0) *kind = 0;
    else if (strcmp(tail, ".lora_B.weight") == 0) *kind = 1;
    else return -1;
    char name[160], alt[160];
    snprintf(name, sizeof name, "%.*s.weight", (int)(tail - key - lp), key + lp);
    /* model.language_model.X -> model.X */
    if (strncmp(name, "model.language_model.", 21) == 0) snprintf(alt, sizeof alt, "model.%s", name + 21);
    else snprintf(alt, sizeof alt, "%s", name);
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i].name, alt) == 0) return i;
    return -1;
}

int vr_lora_load(struct vr_lora *lo, float **w, const struct vr_model *m, const char *dir, uint64_t seed,
                 struct vr_err *err)
{
    *w = NULL;
    char *cp = vr_path_join(dir, "adapter_config.json"), *sp = vr_path_join(dir, "adapter_model.safetensors");
    json_error_t je;
    json_t *j = json_load_file(cp, 0, &je);
    struct vr_safetensors st = {0};
    int rc = -1, opened = 0;
    memset(lo, 0, sizeof *lo);
    if (!j) {
        vr_err_set(err, VR_ERR_INPUT, cp, je.line, "%s", je.text);
        goto out;
    }
    const char *pt = json_string_value(json_object_get(j, "peft_type"));
    if (pt && strcmp(pt, "LORA") != 0) {
        vr_err_set(err, VR_ERR_INPUT, cp, 0, "peft_type %s: vr reads LORA adapters", pt);
        goto out;
    }
    if (json_is_true(json_object_get(j, "use_dora"))) {
        vr_err_set(err, VR_ERR_INPUT, cp, 0, "a DoRA adapter: vr reads plain LoRA");
        goto out;
    }
    const char *bias = json_string_value(json_object_get(j, "bias"));
    if (bias && strcmp(bias, "none") != 0) {
        vr_err_set(err, VR_ERR_INPUT, cp, 0, "bias \"%s\": vr reads adapters with bias \"none\"", bias);
        goto out;
    }
    json_t *rj = json_object_get(j, "r"), *aj = json_object_get(j, "lora_alpha");
    if (!json_is_integer(rj) || json_integer_value(rj) <= 0 || !json_is_number(aj)) {
        vr_err_set(err, VR_ERR_INPUT, cp, 0, "needs a positive integer \"r\" and a number \"lora_alpha\"");
        goto out;
    }
    double drop = json_is_number(json_object_get(j, "lora_dropout")) ? json_number_value(json_object_get(j, "lora_dropout")) : 0;
    vr_lora_init(lo, m, (int)json_integer_value(rj), json_number_value(aj), drop,
                 json_is_true(json_object_get(j, "use_rslora")), seed);
    if (vr_safetensors_open(&st, sp, err)) goto out;
    opened = 1;
    *w = vr_xcalloc(lo->total + 1, sizeof **w);
    unsigned char *seen = vr_xcalloc(2 * (size_t)lo->n + 1, 1);
    for (int i = 0; i < st.n; i++) {
        int kind, p = key_param(m, st.t[i].name, &kind);
        if (p < 0) continue; /* e.g. a saved lm_head base layer */
        int t = lo->of[p];
        if (t < 0) {
            vr_err_set(err, VR_ERR_INPUT, sp, 0, "%s adapts %s, which vr does not adapt", st.t[i].name,
                       m->params[p].name);
            free(seen);
            goto out;
        }
        const struct vr_param *want = &lo->tab[2 * t + kind];
        struct vr_tensor x;
        if (vr_safetensors_read(&st, st.t[i].name, &x, err)) {
            free(seen);
            goto out;
        }
        int ok = x.ndim == 2 && x.shape[0] == want->shape[0] && x.shape[1] == want->shape[1];
        if (!ok) vr_err_set(err, VR_ERR_INPUT, sp, 0, "%s has shape [%lld, %lld], expected [%lld, %lld]",
                            st.t[i].name, (long long)x.shape[0], (long long)(x.ndim > 1 ? x.shape[1] : 0),
                            (long long)want->shape[0], (long long)want->shape[1]);
        else vr_convert_to_f32(*w + lo->off[2 * t + kind], x.data, x.dtype, (size_t)(x.shape[0] * x.shape[1]));
        vr_tensor_release(&x);
        if (!ok) {
            free(seen);
            goto out;
        }
        seen[2 * t + kind] = 1;
    }
    for (int k = 0; k < 2 * lo->n; k++)
        if (!seen[k]) {
            vr_err_set(err, VR_ERR_INPUT, sp, 0, "%s is missing", lo->tab[k].name);
            vr_err_hint(err, "vr adapts every decoder linear and lm_head (VLM-R1's targets)");
            free(seen);
            goto out;
        }
    free(seen);
    rc = 0;
out:
    if (rc) {
        free(*w);
        *w = NULL;
        if (lo->of) vr_lora_release(lo);
    }
    if (opened) vr_safetensors_close(&st);
    if (j) json_decref(j);
    free(cp);
    free(sp);
    return rc;
}

int vr_lora_write(const struct vr_lora *lo, const float *w, const char *dir, const char *base,
                  struct vr_err *err)
{
    json_t *tm = json_array();
    for (int t = 0; t < lo->n; t++) {
        char mod[160];
        const char *k = lo->tab[2 * t].name + strlen("base_model.model.");
        snprintf(mod, sizeof mod, "%.*s", (int)(strlen(k) - strlen(".lora_A.weight")), k);
        json_array_append_new(tm, json_string(mod));
    }
    json_t *j = json_pack("{s:s,s:s,s:i,s:f,s:f,s:o,s:s,s:b,s:b,s:b,s:b,s:b,s:n,s:s}", "peft_type", "LORA",
                          "task_type", "CAUSAL_LM", "r", lo->r, "lora_alpha", lo->alpha, "lora_dropout",
                          lo->dropout, "target_modules", tm, "bias", "none", "fan_in_fan_out", 0, "use_rslora",
                          lo->rslora, "use_dora", 0, "inference_mode", 1, "init_lora_weights", 1,
                          "modules_to_save", "base_model_name_or_path", base ? base : "");
    char *cp = vr_path_join(dir, "adapter_config.json"), *sp = vr_path_join(dir, "adapter_model.safetensors");
    int rc = vr_json_write_file(cp, j, JSON_SORT_KEYS, err);
    json_decref(j);
    if (!rc) {
        const char **names = vr_xmalloc(2 * (size_t)lo->n * sizeof *names + 1);
        struct vr_tensor *t = vr_xcalloc(2 * (size_t)lo->n + 1, sizeof *t);
        for (int k = 0; k < 2 * lo->n; k++) {
            names[k] = lo->tab[k].name;
            vr_tensor_view(&t[k], VR_DTYPE_F32, 2, lo->tab[k].shape, (void *)(w + lo->off[k]));
        }
        json_t *meta = json_pack("{s:s}", "format", "pt");
        rc = vr_safetensors_write(sp, 2 * lo->n, names, t,
                                  &(struct vr_st_write_opts){.metadata = meta}, err);
        json_decref(meta);
        free(names);
        free(t);
    }
    free(cp);
    free(sp);
    return rc;
}

/* out (O, I) += scale * B (O, r) A (r, I): the product through the training
 * GEMM, 1024 rows at a time (a 3B model's lm_head is 151936 rows) */
static void merge_one(float *out, const float *A, const float *B, int O, int I, int r, double scale)
{
    struct vr_ws ws = {0}, opws = {0};
    float *at = vr_ws_floats(&ws, (size_t)I * r); /* A^T (I, r) */
    for (int k = 0; k < r; k++)
        for (int i = 0; i < I; i++) at[(size_t)i * r + k] = A[(size_t)k * I + i];
    int rows = O < 1024 ? O : 1024;
    float *y = vr_ws_floats(&ws, (size_t)rows * I), sc = (float)scale;
    for (int o0 = 0; o0 < O; o0 += rows) {
        int n = O - o0 < rows ? O - o0 : rows;
        vr_ws_reset(&opws);
        vr_linear_fwd(y, B + (size_t)o0 * r, at, NULL, n, I, r, &opws);
        float *dst = out + (size_t)o0 * I;
        for (size_t e = 0; e < (size_t)n * I; e++) dst[e] += sc * y[e];
    }
    vr_ws_release(&ws);
    vr_ws_release(&opws);
}

void vr_lora_merge_flat(const struct vr_lora *lo, const float *aw, float *w, const size_t *off)
{
    for (int t = 0; t < lo->n; t++) {
        const struct vr_lora_ad *a = &lo->ad[t];
        merge_one(w + off[a->param], aw + a->a, aw + a->b, a->out, a->in, lo->r, lo->scale);
    }
}

/* Fold dir's adapter into m's weights in place (each adapted tensor becomes
 * an owned copy in its dtype; an adapted tied lm_head is untied). */
static int merge_model(struct vr_model *m, const char *dir, struct vr_err *err)
{
    struct vr_lora lo;
    float *aw;
    if (vr_lora_load(&lo, &aw, m, dir, 0, err)) return -1;
    for (int t = 0; t < lo.n; t++) {
        const struct vr_lora_ad *a = &lo.ad[t];
        struct vr_param *p = &m->params[a->param];
        size_t n = (size_t)a->out * a->in;
        float *f = vr_xmalloc(n * sizeof *f);
        vr_convert_to_f32(f, p->t.data, p->t.dtype, n);
        merge_one(f, aw + a->a, aw + a->b, a->out, a->in, lo.r, lo.scale);
        struct vr_tensor nt;
        if (vr_tensor_alloc(&nt, p->t.dtype, 2, p->shape, err)) {
            free(f);
            free(aw);
            vr_lora_release(&lo);
            return -1;
        }
        vr_convert_from_f32(nt.data, nt.dtype, f, n);
        free(f);
        if (p->t.owned) vr_tensor_release(&p->t);
        p->t = nt;
        if (p->tied) p->tied = 0; /* lm_head adapted: no longer the embedding */
    }
    free(aw);
    vr_lora_release(&lo);
    return 0;
}

int vr_lora_load_merged(struct vr_model *m, const char *dir, struct vr_err *err)
{
    if (vr_model_load(m, dir, err)) return -1;
    if (vr_lora_present(dir) && merge_model(m, dir, err)) {
        vr_model_release(m);
        return -1;
    }
    return 0;
}

/* model.c: Qwen2.5-VL config, parameter table and checkpoint loading (see
 * model.h). Reference code; used by every stage that runs the model. */
#include "model.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/pool.h"
#include "fileset.h"
#include "fs.h"

/* v as an int; INT_MIN (refused by every range check) when it is not an
 * integer or does not fit, so 2^32 + 2 is never read as 2 */
static int to_int(const json_t *v)
{
    if (!json_is_integer(v)) return INT_MIN;
    json_int_t x = json_integer_value(v);
    return x < INT_MIN + 1 || x > INT_MAX ? INT_MIN : (int)x;
}

static int get_int(json_t *o, const char *k, int def)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? to_int(v) : def;
}

static double get_num(json_t *o, const char *k, double def)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : def;
}

void vr_model_task_limits(const struct vr_model_config *c, struct vr_task_limits *l)
{
    vr_task_limits_default(l);
    l->patch = c->vision.patch;
    l->merge = c->vision.merge;
    l->vocab = c->text.vocab;
    l->max_image_tokens = c->text.max_pos;
    l->why = "the model's context (max_position_embeddings)";
}

/* The text model's fields from tc (text_config, or the top level j in 4.4x). */
static int read_text(struct vr_text_config *t, json_t *j, json_t *tc, const char *path,
                     struct vr_err *err)
{
    t->hidden = get_int(tc, "hidden_size", 0);
    t->layers = get_int(tc, "num_hidden_layers", 0);
    t->heads = get_int(tc, "num_attention_heads", 0);
    t->kv_heads = get_int(tc, "num_key_value_heads", t->heads);
    t->intermediate = get_int(tc, "intermediate_size", 0);
    t->vocab = get_int(tc, "vocab_size", 0);
    t->max_pos = get_int(tc, "max_position_embeddings", get_int(j, "max_position_embeddings", 128000));
    t->eps = get_num(tc, "rms_norm_eps", 1e-6);
    t->head_dim = t->heads > 0 ? t->hidden / t->heads : 0;
    json_t *rp = json_object_get(tc, "rope_parameters");
    json_t *rs = json_object_get(tc, "rope_scaling");
    t->rope_theta = get_num(tc, "rope_theta", get_num(rp, "rope_theta", 1000000.0));
    json_t *sec = json_object_get(rp, "mrope_section");
    if (!sec) sec = json_object_get(rs, "mrope_section");
    if (!sec) sec = json_object_get(j, "rope_scaling") ? json_object_get(json_object_get(j, "rope_scaling"), "mrope_section") : NULL;
    if (!json_is_array(sec) || json_array_size(sec) != 3)
        return vr_err_set(err, VR_ERR_INPUT, path, 0, "no mrope_section of 3 integers");
    for (int i = 0; i < 3; i++) t->mrope[i] = to_int(json_array_get(sec, (size_t)i));
    json_t *tie = json_object_get(j, "tie_word_embeddings");
    if (!tie) tie = json_object_get(tc, "tie_word_embeddings");
    t->tie = json_is_true(tie);
    return 0;
}

/* The vision tower's fields from vc (vision_config). */
static int read_vision(struct vr_vision_config *v, json_t *vc, int text_hidden, const char *path,
                       struct vr_err *err)
{
    v->depth = get_int(vc, "depth", 32);
    v->hidden = get_int(vc, "hidden_size", 1280);
    v->heads = get_int(vc, "num_heads", 16);
    v->intermediate = get_int(vc, "intermediate_size", 3420);
    v->out_hidden = get_int(vc, "out_hidden_size", text_hidden);
    v->patch = get_int(vc, "patch_size", get_int(vc, "spatial_patch_size", 14));
    v->temporal_patch = get_int(vc, "temporal_patch_size", 2);
    v->merge = get_int(vc, "spatial_merge_size", 2);
    v->window = get_int(vc, "window_size", 112);
    v->in_chans = get_int(vc, "in_channels", get_int(vc, "in_chans", 3));
    v->rope_theta = get_num(json_object_get(vc, "rope_parameters"), "rope_theta", 10000.0);
    json_t *fa = json_object_get(vc, "fullatt_block_indexes");
    if (json_is_array(fa)) {
        if (json_array_size(fa) > VR_MAX_FULLATT)
            return vr_err_set(err, VR_ERR_INPUT, path, 0, "too many fullatt_block_indexes");
        v->nfullatt = (int)json_array_size(fa);
        for (int i = 0; i < v->nfullatt; i++)
            v->fullatt[i] = to_int(json_array_get(fa, (size_t)i));
    } else if (!fa) {
        static const int def[4] = {7, 15, 23, 31};
        v->nfullatt = 4;
        memcpy(v->fullatt, def, sizeof def);
    }
    json_t *act = json_object_get(vc, "hidden_act");
    if (json_is_string(act) && strcmp(json_string_value(act), "silu") != 0)
        return vr_err_set(err, VR_ERR_INPUT, path, 0,
                          "vision hidden_act '%s': vr supports silu (Qwen2.5-VL)", json_string_value(act));
    return 0;
}

/* What is wrong with c's sizes, as a message, or NULL: sizes that would make
 * the rest of the code index out of bounds or overflow. */
static const char *bad_sizes(const struct vr_model_config *c)
{
    const struct vr_text_config *t = &c->text;
    const struct vr_vision_config *v = &c->vision;
    const char *bad = NULL;
    if (t->hidden <= 0 || t->layers <= 0 || t->heads <= 0 || t->intermediate <= 0 || t->vocab <= 0)
        bad = "text sizes must be positive";
    else if (t->kv_heads <= 0 || t->heads % t->kv_heads || t->hidden % t->heads || t->head_dim % 2)
        bad = "num_attention_heads must divide hidden_size (even head_dim) and be a multiple of num_key_value_heads";
    else if (t->mrope[0] < 0 || t->mrope[1] < 0 || t->mrope[2] < 0 ||
             (int64_t)t->mrope[0] + t->mrope[1] + t->mrope[2] != t->head_dim / 2)
        bad = "mrope_section must sum to head_dim / 2";
    else if (v->depth <= 0 || v->hidden <= 0 || v->heads <= 0 || v->hidden % v->heads ||
             (v->hidden / v->heads) % 4 || v->intermediate <= 0 || v->out_hidden != t->hidden)
        bad = "vision sizes are inconsistent (head_dim a multiple of 4, out_hidden_size = hidden_size)";
    else if (v->patch <= 0 || v->temporal_patch <= 0 || v->merge <= 0 || v->in_chans <= 0 ||
             v->window < (int64_t)v->merge * v->patch || v->window % ((int64_t)v->merge * v->patch))
        bad = "vision patch, merge and window sizes are inconsistent";
    else if (c->image_token_id < 0 || c->image_token_id >= t->vocab)
        bad = "image_token_id is outside the vocabulary";
    /* beyond any Qwen2.5-VL, and far enough from int overflow in the products
     * (hidden x vocab, layers x blocks) that sizes and offsets are computed from */
    else if (t->hidden > 65536 || t->layers > 1024 || t->heads > 1024 || t->intermediate > (1 << 20) ||
             t->vocab > (1 << 24) || v->depth > 1024 || v->hidden > 65536 || v->heads > 1024 ||
             v->intermediate > (1 << 20) || v->patch > 1024 || v->temporal_patch > 16 || v->merge > 16 ||
             v->window > (1 << 16) || v->in_chans > 16)
        bad = "a size is beyond any Qwen2.5-VL (hidden 65536, layers 1024, vocabulary 2^24, ...)";
    else if (t->max_pos < 1)
        bad = "max_position_embeddings must be a positive integer";
    else if (!(t->eps > 0 && t->eps < 1))
        bad = "rms_norm_eps must be a number between 0 and 1";
    else if (!(t->rope_theta > 1 && isfinite(t->rope_theta)) || !(v->rope_theta > 1 && isfinite(v->rope_theta)))
        bad = "rope_theta must be a finite number above 1";
    for (int i = 0; !bad && i < v->nfullatt; i++)
        if (v->fullatt[i] < 0 || v->fullatt[i] >= v->depth) bad = "fullatt_block_indexes out of range";
    return bad;
}

int vr_model_config_load(struct vr_model_config *c, const char *path, struct vr_err *err)
{
    memset(c, 0, sizeof *c);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        if (je.line <= 0 && je.position == 0)
            return vr_err_set(err, VR_ERR_INPUT, path, 0, "cannot read: %s", je.text);
        return vr_err_set(err, VR_ERR_INPUT, path, je.line, "invalid JSON: %s", je.text);
    }
    int rc = -1;
    json_t *mt = json_object_get(j, "model_type");
    if (!json_is_string(mt) || (strcmp(json_string_value(mt), "qwen2_5_vl") != 0)) {
        vr_err_set(err, VR_ERR_INPUT, path, 0, "model_type is %s%s%s, vr runs qwen2_5_vl",
                   json_is_string(mt) ? "'" : "", json_is_string(mt) ? json_string_value(mt) : "missing",
                   json_is_string(mt) ? "'" : "");
        goto out;
    }
    /* 5.x nests the text fields; 4.4x keeps them at the top */
    json_t *tc = json_object_get(j, "text_config");
    if (!json_is_object(tc) || !json_object_get(tc, "hidden_size")) tc = j;
    json_t *vc = json_object_get(j, "vision_config");
    if (!json_is_object(vc)) {
        vr_err_set(err, VR_ERR_INPUT, path, 0, "no 'vision_config'");
        goto out;
    }
    if (read_text(&c->text, j, tc, path, err)) goto out;
    if (read_vision(&c->vision, vc, c->text.hidden, path, err)) goto out;
    json_t *act = json_object_get(tc, "hidden_act");
    if (json_is_string(act) && strcmp(json_string_value(act), "silu") != 0) {
        vr_err_set(err, VR_ERR_INPUT, path, 0, "hidden_act '%s': vr supports silu", json_string_value(act));
        goto out;
    }
    c->image_token_id = get_int(j, "image_token_id", 151655);
    c->video_token_id = get_int(j, "video_token_id", 151656);
    c->vision_start_id = get_int(j, "vision_start_token_id", 151652);
    c->vision_end_id = get_int(j, "vision_end_token_id", 151653);
    c->bos_id = get_int(tc, "bos_token_id", get_int(j, "bos_token_id", 151643));
    c->eos_id = get_int(tc, "eos_token_id", get_int(j, "eos_token_id", 151645));
    const char *bad = bad_sizes(c);
    if (bad) {
        vr_err_set(err, VR_ERR_INPUT, path, 0, "%s", bad);
        goto out;
    }
    rc = 0;
out:
    json_decref(j);
    return rc;
}

/* The first element of t (F32, BF16 or F16) that is a NaN or an infinity (all
 * exponent bits set), or -1. A pass over the weights at load: a poisoned
 * checkpoint is refused by name instead of sampling garbage. Blocks of
 * NF_BLOCK elements are checked over the pool, 64 elements at a time as a
 * minimum (a loop the compiler vectorises), then the first block that has
 * one is searched element by element: the small preset's 446 MB (f32, warm
 * page cache, 2 threads) load in 0.034 s instead of 0.08 s. */
#define NF_BLOCK 65536

struct nf {
    const void *x;
    int64_t n;
    int wide;               /* 4-byte elements (F32), else 2 */
    uint32_t mask;          /* the exponent's bits: all set is a NaN or an infinity */
    unsigned char *bad;     /* per block */
};

static inline uint32_t nf_at(const struct nf *c, int64_t i)
{
    return c->wide ? ((const uint32_t *)c->x)[i] : ((const uint16_t *)c->x)[i];
}

/* (x & m) == m for one of 64, as a minimum of (x & m) ^ m: no branch */
#define NF_ANY64(T, x, m, hit)                                   \
    do {                                                         \
        T lo_ = (T)~(T)0;                                        \
        for (int j_ = 0; j_ < 64; j_++) {                        \
            T d_ = (T)(((x)[j_] & (m)) ^ (m));                   \
            lo_ = d_ < lo_ ? d_ : lo_;                           \
        }                                                        \
        hit = lo_ == 0;                                          \
    } while (0)

static void nf_blocks(void *vctx, int b0, int b1)
{
    const struct nf *c = vctx;
    for (int b = b0; b < b1; b++) {
        int64_t i = (int64_t)b * NF_BLOCK, end = c->n - i < NF_BLOCK ? c->n : i + NF_BLOCK;
        int hit = 0;
        for (; i + 64 <= end && !hit; i += 64) {
            if (c->wide) NF_ANY64(uint32_t, (const uint32_t *)c->x + i, c->mask, hit);
            else NF_ANY64(uint16_t, (const uint16_t *)c->x + i, (uint16_t)c->mask, hit);
        }
        for (; i < end && !hit; i++) hit = (nf_at(c, i) & c->mask) == c->mask;
        c->bad[b] = (unsigned char)hit;
    }
}

static int64_t nonfinite_at(const struct vr_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    int nblk = (int)((n + NF_BLOCK - 1) / NF_BLOCK);
    struct nf c = {t->data, n, t->dtype == VR_DTYPE_F32,
                   t->dtype == VR_DTYPE_F32 ? 0x7f800000u : t->dtype == VR_DTYPE_BF16 ? 0x7f80u : 0x7c00u,
                   vr_xmalloc((size_t)nblk + 1)};
    vr_parallel_for(nblk, nf_blocks, &c);
    int64_t at = -1;
    for (int b = 0; b < nblk && at < 0; b++)
        for (int64_t i = (int64_t)b * NF_BLOCK; c.bad[b] && i < n && at < 0; i++)
            if ((nf_at(&c, i) & c.mask) == c.mask) at = i;
    free(c.bad);
    return at;
}

static struct vr_tensor *add(struct vr_model *m, int ndim, int64_t a, int64_t b, const char *fmt,
                             ...) __attribute__((format(printf, 5, 6)));
static struct vr_tensor *add(struct vr_model *m, int ndim, int64_t a, int64_t b, const char *fmt, ...)
{
    struct vr_param *p = &m->params[m->nparams++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->ndim = ndim;
    p->shape[0] = a;
    p->shape[1] = b;
    return &p->t;
}

void vr_model_params(struct vr_model *m)
{
    const struct vr_text_config *t = &m->cfg.text;
    const struct vr_vision_config *v = &m->cfg.vision;
    int n = 1 + v->depth * VP_COUNT + 5 + 1 + t->layers * LP_COUNT + 2;
    m->params = vr_xcalloc((size_t)n, sizeof *m->params);
    m->vblock = vr_xcalloc((size_t)v->depth, sizeof *m->vblock);
    m->layer = vr_xcalloc((size_t)t->layers, sizeof *m->layer);
    m->nparams = 0;
    int64_t D = v->hidden, F = v->intermediate, M = (int64_t)D * v->merge * v->merge;
    /* patch_embed is a 5-d Conv3d weight */
    m->patch_embed = add(m, 5, D, v->in_chans, "visual.patch_embed.proj.weight");
    struct vr_param *pe = &m->params[m->nparams - 1];
    pe->shape[2] = v->temporal_patch;
    pe->shape[3] = pe->shape[4] = v->patch;
    for (int i = 0; i < v->depth; i++) {
        struct vr_tensor **b = m->vblock[i];
        b[VP_NORM1] = add(m, 1, D, 0, "visual.blocks.%d.norm1.weight", i);
        b[VP_NORM2] = add(m, 1, D, 0, "visual.blocks.%d.norm2.weight", i);
        b[VP_QKV_W] = add(m, 2, 3 * D, D, "visual.blocks.%d.attn.qkv.weight", i);
        b[VP_QKV_B] = add(m, 1, 3 * D, 0, "visual.blocks.%d.attn.qkv.bias", i);
        b[VP_PROJ_W] = add(m, 2, D, D, "visual.blocks.%d.attn.proj.weight", i);
        b[VP_PROJ_B] = add(m, 1, D, 0, "visual.blocks.%d.attn.proj.bias", i);
        b[VP_GATE_W] = add(m, 2, F, D, "visual.blocks.%d.mlp.gate_proj.weight", i);
        b[VP_GATE_B] = add(m, 1, F, 0, "visual.blocks.%d.mlp.gate_proj.bias", i);
        b[VP_UP_W] = add(m, 2, F, D, "visual.blocks.%d.mlp.up_proj.weight", i);
        b[VP_UP_B] = add(m, 1, F, 0, "visual.blocks.%d.mlp.up_proj.bias", i);
        b[VP_DOWN_W] = add(m, 2, D, F, "visual.blocks.%d.mlp.down_proj.weight", i);
        b[VP_DOWN_B] = add(m, 1, D, 0, "visual.blocks.%d.mlp.down_proj.bias", i);
    }
    m->merger_ln = add(m, 1, D, 0, "visual.merger.ln_q.weight");
    m->merger_w0 = add(m, 2, M, M, "visual.merger.mlp.0.weight");
    m->merger_b0 = add(m, 1, M, 0, "visual.merger.mlp.0.bias");
    m->merger_w2 = add(m, 2, t->hidden, M, "visual.merger.mlp.2.weight");
    m->merger_b2 = add(m, 1, t->hidden, 0, "visual.merger.mlp.2.bias");
    int64_t H = t->hidden, Q = (int64_t)t->heads * t->head_dim, K = (int64_t)t->kv_heads * t->head_dim,
            I = t->intermediate;
    m->embed = add(m, 2, t->vocab, H, "model.embed_tokens.weight");
    for (int i = 0; i < t->layers; i++) {
        struct vr_tensor **l = m->layer[i];
        l[LP_IN_NORM] = add(m, 1, H, 0, "model.layers.%d.input_layernorm.weight", i);
        l[LP_POST_NORM] = add(m, 1, H, 0, "model.layers.%d.post_attention_layernorm.weight", i);
        l[LP_Q_W] = add(m, 2, Q, H, "model.layers.%d.self_attn.q_proj.weight", i);
        l[LP_Q_B] = add(m, 1, Q, 0, "model.layers.%d.self_attn.q_proj.bias", i);
        l[LP_K_W] = add(m, 2, K, H, "model.layers.%d.self_attn.k_proj.weight", i);
        l[LP_K_B] = add(m, 1, K, 0, "model.layers.%d.self_attn.k_proj.bias", i);
        l[LP_V_W] = add(m, 2, K, H, "model.layers.%d.self_attn.v_proj.weight", i);
        l[LP_V_B] = add(m, 1, K, 0, "model.layers.%d.self_attn.v_proj.bias", i);
        l[LP_O_W] = add(m, 2, H, Q, "model.layers.%d.self_attn.o_proj.weight", i);
        l[LP_GATE_W] = add(m, 2, I, H, "model.layers.%d.mlp.gate_proj.weight", i);
        l[LP_UP_W] = add(m, 2, I, H, "model.layers.%d.mlp.up_proj.weight", i);
        l[LP_DOWN_W] = add(m, 2, H, I, "model.layers.%d.mlp.down_proj.weight", i);
    }
    m->norm = add(m, 1, H, 0, "model.norm.weight");
    m->lm_head = add(m, 2, t->vocab, H, "lm_head.weight");
    m->params[m->nparams - 1].tied = t->tie;
    VR_ASSERT(m->nparams <= n);
}

/* The newer spelling of an original name. */
static void new_name(const char *name, char *out, size_t n)
{
    if (strncmp(name, "visual.", 7) == 0)
        snprintf(out, n, "model.%s", name);
    else if (strncmp(name, "model.", 6) == 0)
        snprintf(out, n, "model.language_model.%s", name + 6);
    else
        snprintf(out, n, "%s", name);
}

static const char *shape_str(int ndim, const int64_t *s, char *buf, size_t n)
{
    struct vr_tensor t;
    vr_tensor_view(&t, VR_DTYPE_F32, ndim, s, NULL);
    return vr_tensor_shape_str(&t, buf, n);
}

int vr_model_load(struct vr_model *m, const char *dir, struct vr_err *err)
{
    memset(m, 0, sizeof *m);
    /* a run folder whose last save a crash left half in place is finished
     * first (fileset.h): its files are then one save's */
    if (vr_fileset_settle(dir, err)) return -1;
    char *cp = vr_path_join(dir, "config.json");
    int rc = vr_model_config_load(&m->cfg, cp, err);
    free(cp);
    if (rc) return -1;
    if (vr_stset_open(&m->st, dir, err)) return -1;
    vr_model_params(m);
    for (int i = 0; i < m->nparams; i++) {
        struct vr_param *p = &m->params[i];
        const struct vr_safetensors *f = NULL;
        const struct vr_st_entry *e = vr_stset_find(&m->st, p->name, &f);
        char alt[128];
        if (!e) {
            new_name(p->name, alt, sizeof alt);
            e = vr_stset_find(&m->st, alt, &f);
        }
        if (!e && p->tied) {
            p->t = *m->embed;
            continue;
        }
        if (!e && strcmp(p->name, "lm_head.weight") == 0) {
            /* an untied config whose checkpoint has no lm_head: transformers
             * ties it anyway when the tensor is absent */
            p->tied = 1;
            p->t = *m->embed;
            continue;
        }
        char want[64], got[64];
        if (!e) {
            vr_err_set(err, VR_ERR_INPUT, dir, 0, "tensor '%s' is missing (expected shape %s)", p->name,
                       shape_str(p->ndim, p->shape, want, sizeof want));
            goto fail;
        }
        int same = e->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = e->shape[d] == p->shape[d];
        if (!same) {
            vr_err_set(err, VR_ERR_INPUT, f->path, 0, "tensor '%s' has shape %s, config.json implies %s",
                       e->name, shape_str(e->ndim, e->shape, got, sizeof got),
                       shape_str(p->ndim, p->shape, want, sizeof want));
            goto fail;
        }
        if (e->dtype != VR_DTYPE_F32 && e->dtype != VR_DTYPE_BF16 && e->dtype != VR_DTYPE_F16) {
            vr_err_set(err, VR_ERR_INPUT, f->path, 0, "tensor '%s' is %s; vr loads F32, BF16 or F16",
                       e->name, vr_dtype_name(e->dtype));
            goto fail;
        }
        if (vr_safetensors_view(f, e->name, &p->t, err)) goto fail;
        int64_t at = nonfinite_at(&p->t);
        if (at >= 0) {
            vr_err_set(err, VR_ERR_INPUT, f->path, 0, "tensor '%s' holds a NaN or an infinity (element %lld)",
                       e->name, (long long)at);
            goto fail;
        }
    }
    return 0;
fail:
    vr_model_release(m);
    return -1;
}


void vr_model_release(struct vr_model *m)
{
    for (int i = 0; i < m->nparams; i++)
        if (!m->params[i].tied) vr_tensor_release(&m->params[i].t);
    free(m->params);
    free(m->vblock);
    free(m->layer);
    vr_stset_close(&m->st);
    memset(m, 0, sizeof *m);
}

int vr_model_eos(const char *dir, const struct vr_model_config *c, int32_t *eos, int max)
{
    int n = 0;
    char *gp = vr_path_join(dir, "generation_config.json");
    json_t *g = json_load_file(gp, 0, NULL);
    free(gp);
    json_t *e = g ? json_object_get(g, "eos_token_id") : NULL;
    if (json_is_integer(e) && n < max) eos[n++] = (int32_t)json_integer_value(e);
    for (size_t i = 0; json_is_array(e) && i < json_array_size(e) && n < max; i++)
        if (json_is_integer(json_array_get(e, i))) eos[n++] = (int32_t)json_integer_value(json_array_get(e, i));
    if (g) json_decref(g);
    if (!n && max > 0) eos[n++] = c->eos_id;
    return n;
}

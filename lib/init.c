/* init.c: presets, config.json and random weights (see init.h). */
#include "init.h"

#include <math.h>
#include <string.h>

#include "fs.h"
#include "jsonl.h"
#include "rng.h"
#include "safetensors.h"

/* The official Qwen2-VL / Qwen2.5-VL chat template (chat_template.json). */
const char vr_init_chat_template[] =
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

static void vision_qwen(struct vr_vision_config *v, int out_hidden)
{
    *v = (struct vr_vision_config){.depth = 32, .hidden = 1280, .heads = 16, .intermediate = 3420,
                                   .out_hidden = out_hidden, .patch = 14, .temporal_patch = 2,
                                   .merge = 2, .window = 112, .in_chans = 3, .nfullatt = 4,
                                   .fullatt = {7, 15, 23, 31}, .rope_theta = 10000.0};
}

static void ids_qwen(struct vr_model_config *c)
{
    c->image_token_id = 151655;
    c->video_token_id = 151656;
    c->vision_start_id = 151652;
    c->vision_end_id = 151653;
    c->bos_id = 151643;
    c->eos_id = 151645;
}

int vr_init_preset(const char *name, struct vr_model_config *c)
{
    memset(c, 0, sizeof *c);
    ids_qwen(c);
    struct vr_text_config *t = &c->text;
    if (strcmp(name, "3b") == 0) {
        *t = (struct vr_text_config){.hidden = 2048, .layers = 36, .heads = 16, .kv_heads = 2,
                                     .head_dim = 128, .intermediate = 11008, .vocab = 151936,
                                     .eps = 1e-6, .max_pos = 128000, .rope_theta = 1000000.0, .mrope = {16, 24, 24},
                                     .tie = 1};
        vision_qwen(&c->vision, 2048);
    } else if (strcmp(name, "7b") == 0) {
        *t = (struct vr_text_config){.hidden = 3584, .layers = 28, .heads = 28, .kv_heads = 4,
                                     .head_dim = 128, .intermediate = 18944, .vocab = 152064,
                                     .eps = 1e-6, .max_pos = 128000, .rope_theta = 1000000.0, .mrope = {16, 24, 24},
                                     .tie = 0};
        vision_qwen(&c->vision, 3584);
    } else if (strcmp(name, "small") == 0) {
        /* ~150M parameters with the full Qwen vocabulary: for benchmarks */
        *t = (struct vr_text_config){.hidden = 512, .layers = 12, .heads = 8, .kv_heads = 2,
                                     .head_dim = 64, .intermediate = 1408, .vocab = 151936,
                                     .eps = 1e-6, .max_pos = 128000, .rope_theta = 1000000.0, .mrope = {8, 12, 12},
                                     .tie = 1};
        c->vision = (struct vr_vision_config){.depth = 8, .hidden = 384, .heads = 6,
                                              .intermediate = 1024, .out_hidden = 512, .patch = 14,
                                              .temporal_patch = 2, .merge = 2, .window = 112,
                                              .in_chans = 3, .nfullatt = 2, .fullatt = {3, 7},
                                              .rope_theta = 10000.0};
    } else if (strcmp(name, "demo") == 0) {
        /* ~2M parameters with a small trained vocabulary: `make demo` on a CPU */
        *t = (struct vr_text_config){.hidden = 128, .layers = 4, .heads = 4, .kv_heads = 2,
                                     .head_dim = 32, .intermediate = 384, .vocab = 151936,
                                     .eps = 1e-6, .max_pos = 128000, .rope_theta = 1000000.0, .mrope = {4, 6, 6},
                                     .tie = 1};
        c->vision = (struct vr_vision_config){.depth = 4, .hidden = 64, .heads = 2,
                                              .intermediate = 192, .out_hidden = 128, .patch = 14,
                                              .temporal_patch = 2, .merge = 2, .window = 112,
                                              .in_chans = 3, .nfullatt = 2, .fullatt = {1, 3},
                                              .rope_theta = 10000.0};
    } else if (strcmp(name, "tiny") == 0) {
        /* a few MB: tests and the CPU demo (vocab follows the tokenizer) */
        *t = (struct vr_text_config){.hidden = 64, .layers = 2, .heads = 4, .kv_heads = 2,
                                     .head_dim = 16, .intermediate = 128, .vocab = 151936,
                                     .eps = 1e-6, .max_pos = 128000, .rope_theta = 1000000.0, .mrope = {2, 3, 3},
                                     .tie = 1};
        c->vision = (struct vr_vision_config){.depth = 2, .hidden = 32, .heads = 2,
                                              .intermediate = 64, .out_hidden = 64, .patch = 14,
                                              .temporal_patch = 2, .merge = 2, .window = 112,
                                              .in_chans = 3, .nfullatt = 1, .fullatt = {1},
                                              .rope_theta = 10000.0};
    } else {
        return -1;
    }
    return 0;
}

json_t *vr_init_config_json(const struct vr_model_config *c)
{
    const struct vr_text_config *t = &c->text;
    const struct vr_vision_config *v = &c->vision;
    json_t *fa = json_array();
    for (int i = 0; i < v->nfullatt; i++) json_array_append_new(fa, json_integer(v->fullatt[i]));
    json_t *vc = json_pack("{s:i,s:i,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:o,s:s,s:f}",
                           "depth", v->depth, "hidden_size", v->hidden, "hidden_act", "silu",
                           "intermediate_size", v->intermediate, "num_heads", v->heads,
                           "in_chans", v->in_chans, "out_hidden_size", v->out_hidden,
                           "patch_size", v->patch, "spatial_merge_size", v->merge,
                           "temporal_patch_size", v->temporal_patch, "window_size", v->window,
                           "tokens_per_second", 2, "fullatt_block_indexes", fa,
                           "model_type", "qwen2_5_vl", "initializer_range", 0.02);
    /* the 4.4x layout has no field for it (transformers fixes 10000); 5.x
     * reads it here, and so does vr_model_config_load: a config that set it
     * keeps it when written again */
    if (v->rope_theta != 10000.0)
        json_object_set_new(vc, "rope_parameters",
                            json_pack("{s:s,s:f}", "rope_type", "default", "rope_theta", v->rope_theta));
    json_t *j = json_object();
    json_object_set_new(j, "architectures", json_pack("[s]", "Qwen2_5_VLForConditionalGeneration"));
    json_object_set_new(j, "model_type", json_string("qwen2_5_vl"));
    json_object_set_new(j, "attention_dropout", json_real(0.0));
    json_object_set_new(j, "bos_token_id", json_integer(c->bos_id));
    json_object_set_new(j, "eos_token_id", json_integer(c->eos_id));
    json_object_set_new(j, "vision_start_token_id", json_integer(c->vision_start_id));
    json_object_set_new(j, "vision_end_token_id", json_integer(c->vision_end_id));
    json_object_set_new(j, "vision_token_id", json_integer(c->vision_end_id + 1));
    json_object_set_new(j, "image_token_id", json_integer(c->image_token_id));
    json_object_set_new(j, "video_token_id", json_integer(c->video_token_id));
    json_object_set_new(j, "hidden_act", json_string("silu"));
    json_object_set_new(j, "hidden_size", json_integer(t->hidden));
    json_object_set_new(j, "initializer_range", json_real(0.02));
    json_object_set_new(j, "intermediate_size", json_integer(t->intermediate));
    json_object_set_new(j, "max_position_embeddings", json_integer(t->max_pos > 0 ? t->max_pos : 128000));
    json_object_set_new(j, "max_window_layers", json_integer(t->layers));
    json_object_set_new(j, "num_attention_heads", json_integer(t->heads));
    json_object_set_new(j, "num_hidden_layers", json_integer(t->layers));
    json_object_set_new(j, "num_key_value_heads", json_integer(t->kv_heads));
    json_object_set_new(j, "rms_norm_eps", json_real(t->eps));
    json_object_set_new(j, "rope_scaling", json_pack("{s:s,s:[i,i,i]}", "type", "mrope", "mrope_section",
                                                     t->mrope[0], t->mrope[1], t->mrope[2]));
    json_object_set_new(j, "rope_theta", json_real(t->rope_theta));
    json_object_set_new(j, "sliding_window", json_integer(32768));
    json_object_set_new(j, "tie_word_embeddings", json_boolean(t->tie));
    json_object_set_new(j, "torch_dtype", json_string("bfloat16"));
    json_object_set_new(j, "use_cache", json_true());
    json_object_set_new(j, "use_sliding_window", json_false());
    json_object_set_new(j, "vision_config", vc);
    json_object_set_new(j, "vocab_size", json_integer(t->vocab));
    return j;
}

int64_t vr_init_param_count(const struct vr_model_config *c)
{
    struct vr_model m = {.cfg = *c};
    vr_model_params(&m);
    int64_t n = 0;
    for (int i = 0; i < m.nparams; i++) {
        if (m.params[i].tied) continue;
        int64_t k = 1;
        for (int d = 0; d < m.params[i].ndim; d++) k *= m.params[i].shape[d];
        n += k;
    }
    free(m.params);
    free(m.vblock);
    free(m.layer);
    return n;
}

struct fill_ctx {
    const struct vr_model *m;
    const int *map;  /* writer index -> parameter index */
    const struct vr_init_opts *o;
    float *f32;
    size_t cap;
};

/* What transformers' _init_weights gives each parameter. */
static int init_kind(const char *name)
{
    size_t n = strlen(name);
    if (strstr(name, "norm") || strstr(name, "ln_q")) return 1;          /* ones */
    if (n > 5 && strcmp(name + n - 5, ".bias") == 0) return 0;           /* zeros */
    return 2;                                                            /* normal */
}

static int fill(void *vctx, int i, void *buf, size_t nbytes, struct vr_err *err)
{
    struct fill_ctx *c = vctx;
    const struct vr_param *p = &c->m->params[c->map[i]];
    size_t n = nbytes / vr_dtype_size(c->o->dtype);
    (void)err;
    if (n > c->cap) {
        free(c->f32);
        c->f32 = vr_xmalloc(n * sizeof(float));
        c->cap = n;
    }
    int kind = init_kind(p->name);
    if (kind == 2) {
        /* stream per parameter: the same seed gives the same tensor whatever
         * else the checkpoint holds */
        struct vr_rng r;
        vr_rng_init(&r, c->o->seed, (uint64_t)c->map[i] + 1);
        for (size_t k = 0; k < n; k += 2) {
            double u1 = 1.0 - vr_rng_double(&r), u2 = vr_rng_double(&r);
            double rad = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
            c->f32[k] = (float)(c->o->init_range * rad * cos(th));
            if (k + 1 < n) c->f32[k + 1] = (float)(c->o->init_range * rad * sin(th));
        }
    } else {
        for (size_t k = 0; k < n; k++) c->f32[k] = kind == 1 ? 1.0f : 0.0f;
    }
    vr_convert_from_f32(buf, c->o->dtype, c->f32, n);
    return 0;
}

int vr_init_write_random(const struct vr_model_config *c, const char *dir,
                         const struct vr_init_opts *o, struct vr_err *err)
{
    if (vr_mkdir_p(dir, err)) return -1;
    struct vr_model m = {.cfg = *c};
    vr_model_params(&m);
    int n = 0;
    const char **names = vr_xmalloc((size_t)m.nparams * sizeof *names);
    struct vr_tensor *ts = vr_xmalloc((size_t)m.nparams * sizeof *ts);
    int *map = vr_xmalloc((size_t)m.nparams * sizeof *map);
    for (int i = 0; i < m.nparams; i++) {
        if (m.params[i].tied) continue;
        names[n] = m.params[i].name;
        vr_tensor_view(&ts[n], o->dtype, m.params[i].ndim, m.params[i].shape, NULL);
        map[n++] = i;
    }
    struct fill_ctx ctx = {.m = &m, .map = map, .o = o};
    struct vr_st_write_opts wo = {.fill = fill, .ctx = &ctx};
    int rc = vr_stset_write(dir, n, names, ts, o->max_shard_bytes, &wo, err);
    free(ctx.f32);
    if (rc == 0) {
        json_t *j = vr_init_config_json(c);
        json_object_set_new(j, "torch_dtype", json_string(o->dtype == VR_DTYPE_F32   ? "float32"
                                                          : o->dtype == VR_DTYPE_F16 ? "float16"
                                                                                     : "bfloat16"));
        char *p = vr_path_join(dir, "config.json");
        rc = vr_json_write_file(p, j, JSON_SORT_KEYS, err);
        json_decref(j);
        free(p);
    }
    free(names);
    free(ts);
    free(map);
    free(m.params);
    free(m.vblock);
    free(m.layer);
    return rc;
}

/* vr-init: write a new random Qwen2.5-VL checkpoint (any size) that
 * transformers and every vr stage load: weights, config.json,
 * generation_config.json, preprocessor_config.json and, with --tokenizer, the
 * tokenizer files. */
#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fs.h"
#include "bpe_train.h"
#include "init.h"
#include "jsonl.h"

enum { O_CONFIG = 256, O_DTYPE, O_SEED, O_RANGE, O_TOKENIZER, O_TRAIN, O_VOCAB, O_SHARD, O_FORCE };

static const struct vr_opt opts[] = {
    {"preset", 'p', "NAME", "model size: tiny, demo (~2M), small (~150M), 3b, 7b"},
    {"config", O_CONFIG, "FILE", "take the sizes from a Qwen2.5-VL config.json instead"},
    {"out", 'o', "DIR", "folder to write the checkpoint into (created)"},
    {"dtype", O_DTYPE, "TYPE", "weight dtype: bf16 (default), f16, f32"},
    {"seed", O_SEED, "N", "seed of the random weights (default 0)"},
    {"init-range", O_RANGE, "STD", "std of the normal init of weights (default 0.02)"},
    {"tokenizer", O_TOKENIZER, "FILE", "copy this tokenizer.json; special token ids follow it"},
    {"train-tokenizer", O_TRAIN, "CORPUS", "train a byte-level BPE tokenizer on a text file instead"},
    {"vocab", O_VOCAB, "N", "embedding rows; with --train-tokenizer, BPE tokens to learn (default 4096)"},
    {"shard-size", O_SHARD, "BYTES", "largest shard, suffix K/M/G allowed (default 4G)"},
    {"force", O_FORCE, NULL, "write into a folder that is not empty"},
    {0},
};

static const struct vr_cli cli = {
    "vr-init",
    "[OPTION]... --out DIR",
    "Write a random Qwen2.5-VL checkpoint, loadable by vr and transformers.",
    opts,
};

static uint64_t parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    uint64_t m = 1;
    if (*end == 'K' || *end == 'k') m = 1000, end++;
    else if (*end == 'M' || *end == 'm') m = 1000000, end++;
    else if (*end == 'G' || *end == 'g') m = 1000000000, end++;
    if (*end == 'B') end++;
    if (end == s || *end || v < 0) vr_die_usage("--shard-size: '%s' is not a size", s);
    return (uint64_t)(v * (double)m);
}

/* Special ids and size of a tokenizer.json. */
static void tokenizer_ids(const char *path, struct vr_model_config *c, int *ntok)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) vr_die_msg("%s:%d: invalid JSON: %s", path, je.line, je.text);
    json_t *vocab = json_object_get(json_object_get(j, "model"), "vocab");
    if (!json_is_object(vocab)) vr_die_msg("%s: no model.vocab object", path);
    int mx = -1;
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        if (json_is_integer(v) && json_integer_value(v) > mx) mx = (int)json_integer_value(v);
    }
    struct { const char *tok; int *id; } want[] = {
        {"<|image_pad|>", &c->image_token_id}, {"<|video_pad|>", &c->video_token_id},
        {"<|vision_start|>", &c->vision_start_id}, {"<|vision_end|>", &c->vision_end_id},
        {"<|endoftext|>", &c->bos_id}, {"<|im_end|>", &c->eos_id},
    };
    int found[6] = {0};
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(j, "added_tokens"), i, a) {
        json_t *id = json_object_get(a, "id"), *content = json_object_get(a, "content");
        if (!json_is_integer(id) || !json_is_string(content)) continue;
        if (json_integer_value(id) > mx) mx = (int)json_integer_value(id);
        for (int w = 0; w < 6; w++)
            if (strcmp(json_string_value(content), want[w].tok) == 0) {
                *want[w].id = (int)json_integer_value(id);
                found[w] = 1;
            }
    }
    for (int w = 0; w < 6; w++)
        if (!found[w]) vr_die_msg("%s: the tokenizer has no '%s' token", path, want[w].tok);
    *ntok = mx + 1;
    json_decref(j);
}

static void write_json(const char *dir, const char *name, json_t *j)
{
    struct vr_err err;
    char *txt = json_dumps(j, JSON_INDENT(2));
    size_t n = strlen(txt);
    txt = vr_xrealloc(txt, n + 2);
    txt[n] = '\n';
    char *p = vr_path_join(dir, name);
    if (vr_file_write_atomic(p, txt, n + 1, &err)) vr_die(&err);
    free(p);
    free(txt);
    json_decref(j);
}

int main(int argc, char **argv)
{
    const char *preset = NULL, *config = NULL, *out = NULL, *tokenizer = NULL, *corpus = NULL;
    struct vr_init_opts o = {.dtype = VR_DTYPE_BF16, .init_range = 0.02, .max_shard_bytes = 4000000000ull};
    int vocab = 0, force = 0, c, ind;
    const char *arg;
    struct vr_err err;
    vr_cli_init(&cli, argc, argv);
    while ((c = vr_cli_next(&ind, &arg)) != -1) {
        switch (c) {
        case 'p': preset = arg; break;
        case O_CONFIG: config = arg; break;
        case 'o': out = arg; break;
        case O_DTYPE:
            if (strcmp(arg, "bf16") == 0) o.dtype = VR_DTYPE_BF16;
            else if (strcmp(arg, "f16") == 0) o.dtype = VR_DTYPE_F16;
            else if (strcmp(arg, "f32") == 0) o.dtype = VR_DTYPE_F32;
            else vr_die_usage("--dtype: '%s' is not bf16, f16 or f32", arg);
            break;
        case O_SEED: o.seed = vr_cli_u64("seed", arg); break;
        case O_RANGE: o.init_range = vr_cli_double("init-range", arg, 0, 10); break;
        case O_TOKENIZER: tokenizer = arg; break;
        case O_TRAIN: corpus = arg; break;
        case O_VOCAB: vocab = (int)vr_cli_int("vocab", arg, 1, 10000000); break;
        case O_SHARD: o.max_shard_bytes = parse_size(arg); break;
        case O_FORCE: force = 1; break;
        }
    }
    if (ind < argc) vr_die_usage("unexpected argument '%s'", argv[ind]);
    if (!out) vr_die_usage("--out DIR is required");
    if (!preset == !config) vr_die_usage("give one of --preset or --config");
    if (tokenizer && corpus) vr_die_usage("give one of --tokenizer or --train-tokenizer");
    struct vr_model_config cfg;
    if (preset && vr_init_preset(preset, &cfg))
        vr_die_usage("--preset: unknown preset '%s' (tiny, demo, small, 3b, 7b)", preset);
    if (config && vr_model_config_load(&cfg, config, &err)) vr_die(&err);
    DIR *d = opendir(out);
    if (d) {
        struct dirent *e;
        int empty = 1;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
        closedir(d);
        if (!empty && !force) vr_die_msg("%s: folder is not empty (use --force to write into it)", out);
    }
    char *trained = NULL;
    if (corpus) { /* learn the tokenizer first: the vocabulary sizes the model */
        json_t *tj;
        if (vr_mkdir_p(out, &err)) vr_die(&err);
        if (vr_bpe_train(&tj, &corpus, 1, vocab ? vocab : 4096, 2, &err)) vr_die(&err);
        trained = vr_path_join(out, "tokenizer.json");
        char *txt = json_dumps(tj, JSON_INDENT(2));
        json_decref(tj);
        if (vr_file_write_atomic(trained, txt, strlen(txt), &err)) vr_die(&err);
        free(txt);
        tokenizer = trained;
        vocab = 0;
    }
    int ntok = 0;
    if (tokenizer) {
        tokenizer_ids(tokenizer, &cfg, &ntok);
        if (preset && (!strcmp(preset, "tiny") || !strcmp(preset, "demo") || !strcmp(preset, "small")))
            cfg.text.vocab = (ntok + 63) / 64 * 64;
        if (ntok > cfg.text.vocab && !vocab)
            vr_die_msg("%s: %d tokens do not fit %d embedding rows; give --vocab", tokenizer, ntok,
                       cfg.text.vocab);
    }
    if (vocab) {
        if (vocab < ntok) vr_die_usage("--vocab %d is smaller than the tokenizer's %d tokens", vocab, ntok);
        cfg.text.vocab = vocab;
    }
    if (cfg.image_token_id >= cfg.text.vocab)
        vr_die_usage("the vocabulary (%d) must hold the image token id %d", cfg.text.vocab,
                     cfg.image_token_id);
    if (vr_init_write_random(&cfg, out, &o, &err)) vr_die(&err);
    write_json(out, "generation_config.json",
               json_pack("{s:i,s:i,s:[i,i],s:b,s:f,s:f,s:i,s:f}", "bos_token_id", cfg.bos_id,
                         "pad_token_id", cfg.bos_id, "eos_token_id", cfg.eos_id, cfg.bos_id,
                         "do_sample", 1, "repetition_penalty", 1.05, "temperature", 0.1, "top_k", 1,
                         "top_p", 0.001));
    write_json(out, "preprocessor_config.json",
               json_pack("{s:i,s:i,s:i,s:i,s:i,s:[f,f,f],s:[f,f,f],s:s,s:s,s:b,s:b,s:f,s:b,s:b,s:i}",
                         "min_pixels", 3136, "max_pixels", 12845056, "patch_size", cfg.vision.patch,
                         "temporal_patch_size", cfg.vision.temporal_patch, "merge_size", cfg.vision.merge,
                         "image_mean", 0.48145466, 0.4578275, 0.40821073, "image_std", 0.26862954,
                         0.26130258, 0.27577711, "image_processor_type", "Qwen2VLImageProcessor",
                         "processor_class", "Qwen2_5_VLProcessor", "do_resize", 1, "do_rescale", 1,
                         "rescale_factor", 1.0 / 255.0, "do_normalize", 1, "do_convert_rgb", 1,
                         "resample", 3));
    if (tokenizer && !trained) {
        char *buf;
        size_t len;
        if (vr_file_read(tokenizer, &buf, &len, &err)) vr_die(&err);
        char *p = vr_path_join(out, "tokenizer.json");
        if (vr_file_write_atomic(p, buf, len, &err)) vr_die(&err);
        free(p);
        free(buf);
    }
    if (tokenizer) {
        json_t *tc = json_pack("{s:s,s:s,s:n,s:i,s:s,s:b}", "eos_token", "<|im_end|>", "pad_token",
                               "<|endoftext|>", "bos_token", "model_max_length", 32768,
                               "tokenizer_class", "Qwen2Tokenizer", "add_prefix_space", 0);
        json_object_set_new(tc, "chat_template", json_string(vr_init_chat_template));
        write_json(out, "tokenizer_config.json", tc);
    }
    free(trained);
    fprintf(stderr, "vr-init: %s: %.1fM parameters (%s)\n", out,
            (double)vr_init_param_count(&cfg) / 1e6, vr_dtype_name(o.dtype));
    return 0;
}

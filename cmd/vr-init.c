/* vr-init: write a new random Qwen2.5-VL checkpoint (any size) that
 * transformers and every vr stage load: weights, config.json,
 * generation_config.json, preprocessor_config.json and, with --tokenizer, the
 * tokenizer files (lib/init_folder.h writes them). */
#include <string.h>

#include "cli.h"
#include "init_folder.h"

static struct vr_init_folder_opts o = {.weights = {.dtype = VR_DTYPE_BF16, .init_range = 0.02, .max_shard_bytes = 4000000000ull}};
static const char *preset, *config;
static int dtype; /* the index in --dtype's list */
static vr_opt_fn size_arg;

static const struct vr_opt opts[] = {
    VR_OPT_STRING("preset", 'p', "NAME", &preset, "model size: tiny, demo (~2M), small (~150M), 3b, 7b"),
    VR_OPT_STRING("config", 0, "FILE", &config, "take the sizes from a Qwen2.5-VL config.json instead"),
    VR_OPT_STRING("out", 'o', "DIR", &o.out, "folder to write the checkpoint into (created)"),
    VR_OPT_CHOICE("dtype", 0, "TYPE", &dtype, "bf16|f16|f32", "weight dtype: bf16 (default), f16, f32"),
    VR_OPT_U64("seed", 0, "N", &o.weights.seed, "seed of the random weights (default 0)"),
    VR_OPT_DOUBLE("init-range", 0, "STD", &o.weights.init_range, 0, 10, "std of the normal init of weights (default 0.02)"),
    VR_OPT_STRING("tokenizer", 0, "FILE", &o.tokenizer, "copy this tokenizer.json; special token ids follow it"),
    VR_OPT_STRING("train-tokenizer", 0, "CORPUS", &o.corpus, "train a byte-level BPE tokenizer on a text file instead"),
    VR_OPT_INT("vocab", 0, "N", &o.vocab, 1, 10000000, "embedding rows; with --train-tokenizer, BPE tokens to learn (default 4096)"),
    VR_OPT_CALL("shard-size", 0, "BYTES", size_arg, &o.weights.max_shard_bytes, "largest shard, suffix K/M/G allowed (default 4G)"),
    VR_OPT_FLAG("force", 0, &o.force, "write into a folder that is not empty"),
    VR_OPT_END,
};

static const struct vr_cli cli = {
    "vr-init",
    "[OPTION]... --out DIR",
    "Write a random Qwen2.5-VL checkpoint, loadable by vr and transformers.",
    opts,
};

/* --shard-size: bytes, with K, M or G (powers of 1000) and an optional B */
static int size_arg(const struct vr_opt *opt, const char *s, struct vr_err *err)
{
    char *end;
    double v = strtod(s, &end);
    uint64_t m = 1;
    if (*end == 'K' || *end == 'k') m = 1000, end++;
    else if (*end == 'M' || *end == 'm') m = 1000000, end++;
    else if (*end == 'G' || *end == 'g') m = 1000000000, end++;
    if (*end == 'B') end++;
    if (end == s || *end || v < 0) return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--shard-size: '%s' is not a size", s);
    *(uint64_t *)opt->dst = (uint64_t)(v * (double)m);
    return 0;
}

int main(int argc, char **argv)
{
    static const enum vr_dtype dtype_of[] = {VR_DTYPE_BF16, VR_DTYPE_F16, VR_DTYPE_F32};
    struct vr_model_config cfg;
    struct vr_err err;
    int ind = vr_cli_parse(&cli, argc, argv);
    if (ind < argc) vr_die_usage("unexpected argument '%s'", argv[ind]);
    if (!o.out) vr_die_usage("--out DIR is required");
    if (!preset == !config) vr_die_usage("give one of --preset or --config");
    if (o.tokenizer && o.corpus) vr_die_usage("give one of --tokenizer or --train-tokenizer");
    if (preset && vr_init_preset(preset, &cfg))
        vr_die_usage("--preset: unknown preset '%s' (tiny, demo, small, 3b, 7b)", preset);
    if (config && vr_model_config_load(&cfg, config, &err)) vr_die(&err);
    o.weights.dtype = dtype_of[dtype];
    o.fit_vocab = preset && (!strcmp(preset, "tiny") || !strcmp(preset, "demo") || !strcmp(preset, "small"));
    if (vr_init_folder_write(&o, &cfg, &err)) vr_die(&err);
    fprintf(stderr, "vr-init: %s: %.1fM parameters (%s)\n", o.out,
            (double)vr_init_param_count(&cfg) / 1e6, vr_dtype_name(o.weights.dtype));
    return 0;
}

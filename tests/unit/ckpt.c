/* ckpt.c: checkpoint folders on a tiny model — what is copied and what is
 * not, weights back through vr_model_load (bf16 checked against a hand
 * computation of round-to-nearest-even), optimizer state bit-exact, sharded
 * and tied models, the newest complete checkpoint among leftovers and
 * incomplete folders, keep-N pruning, replacing a folder, and failures
 * midway (a failing writer, a file-size limit) that must leave the previous
 * checkpoint as it was; a run folder's root replaced as one set, a save
 * committed but interrupted finished by the next loader or writer, and the
 * leftovers of dead writers removed under the run lock. Everything happens
 * under a temporary folder. */
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt.h"
#include "jsonl.h"
#include "fs.h"
#include "init.h"

#include "../tap.h"
#include "files.h"

static char root[256];

static void put(const char *dir, const char *name, const char *text)
{
    char *p = pj(dir, name);
    FILE *f = fopen(p, "wb");
    VR_ASSERT(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

/* names in dir starting with prefix */
static int count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void config(struct vr_model_config *c, int tie)
{
    memset(c, 0, sizeof *c);
    c->text = (struct vr_text_config){.hidden = 32, .layers = 2, .heads = 4, .kv_heads = 2, .head_dim = 8,
                                      .intermediate = 24, .vocab = 40, .eps = 1e-6, .rope_theta = 10000.0,
                                      .mrope = {1, 1, 2}, .tie = tie};
    c->vision = (struct vr_vision_config){.depth = 2, .hidden = 16, .heads = 2, .intermediate = 24,
                                          .out_hidden = 32, .patch = 2, .temporal_patch = 2, .merge = 2,
                                          .window = 16, .in_chans = 3, .nfullatt = 1, .fullatt = {1},
                                          .rope_theta = 10000.0};
    c->image_token_id = 37;
    c->video_token_id = 38;
    c->vision_start_id = 35;
    c->vision_end_id = 36;
    c->eos_id = 39;
}

/* A trainer's view of a model folder: table, offsets, fp32 master. */
struct run {
    struct vr_model m;
    size_t *off;
    unsigned char *train;
    struct vr_ptab tab;
    float *master;
    struct vr_optstate os;
};

static void run_init(struct run *r, const char *src)
{
    struct vr_err err = {0};
    memset(r, 0, sizeof *r);
    if (vr_model_load(&r->m, src, &err)) {
        printf("Bail out! %s\n", err.msg);
        exit(1);
    }
    int np = r->m.nparams, embed = -1;
    r->off = calloc((size_t)np, sizeof *r->off);
    r->train = calloc((size_t)np, 1);
    size_t total = 0;
    for (int i = 0; i < np; i++) {
        const struct vr_param *p = &r->m.params[i];
        if (strcmp(p->name, "model.embed_tokens.weight") == 0) embed = i;
        r->train[i] = strncmp(p->name, "visual.", 7) != 0; /* --freeze-vision */
        if (p->tied) {
            r->off[i] = r->off[embed];
            continue;
        }
        r->off[i] = total;
        total += (size_t)vr_tensor_numel(&p->t);
    }
    r->tab = (struct vr_ptab){np, r->m.params, r->off, r->train, total};
    r->master = calloc(total, sizeof(float));
    for (int i = 0; i < np; i++)
        if (!r->m.params[i].tied)
            vr_convert_to_f32(r->master + r->off[i], r->m.params[i].t.data, r->m.params[i].t.dtype,
                              (size_t)vr_tensor_numel(&r->m.params[i].t));
    VR_ASSERT(vr_optstate_init(&r->os, total, &err) == 0);
    uint64_t s = 99;
    for (int i = 0; i < np; i++) {
        if (!r->train[i] || r->m.params[i].tied) continue;
        for (size_t k = 0; k < (size_t)vr_tensor_numel(&r->m.params[i].t); k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            r->os.m[r->off[i] + k] = (float)((double)(s >> 40) / 16777216.0 - 0.5) * 1e-3f;
            r->os.v[r->off[i] + k] = (float)((double)(s >> 20 & 0xfffff) / 1048576.0) * 1e-6f;
        }
    }
}

static void run_free(struct run *r)
{
    vr_model_release(&r->m);
    free(r->off);
    free(r->train);
    free(r->master);
    vr_optstate_release(&r->os);
}

static int pidx(const struct run *r, const char *name)
{
    for (int i = 0; i < r->m.nparams; i++)
        if (strcmp(r->m.params[i].name, name) == 0) return i;
    return -1;
}

/* round to nearest even, by hand: what torch's .to(torch.bfloat16) does */
static uint16_t rne_bf16(uint32_t u)
{
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float ubits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Every stored tensor of dir equals master in dtype dt. */
static int weights_match(const char *dir, const struct run *r, enum vr_dtype dt, char *why, size_t nwhy)
{
    struct vr_model m;
    struct vr_err err = {0};
    if (vr_model_load(&m, dir, &err)) {
        snprintf(why, nwhy, "%s", err.msg);
        return 0;
    }
    int okk = m.nparams == r->m.nparams;
    for (int i = 0; okk && i < m.nparams; i++) {
        const struct vr_param *p = &m.params[i];
        okk = p->tied == r->m.params[i].tied;
        if (p->tied || !okk) continue;
        okk = p->t.dtype == dt;
        size_t n = (size_t)vr_tensor_numel(&p->t);
        const float *w = r->master + r->off[i];
        for (size_t k = 0; okk && k < n; k++) {
            if (dt == VR_DTYPE_BF16) okk = ((const uint16_t *)p->t.data)[k] == rne_bf16(fbits(w[k]));
            else if (dt == VR_DTYPE_F16) okk = ((const uint16_t *)p->t.data)[k] == vr_f32_to_f16(w[k]);
            else okk = fbits(((const float *)p->t.data)[k]) == fbits(w[k]);
            if (!okk) snprintf(why, nwhy, "%s[%zu] differs", p->name, k);
        }
    }
    vr_model_release(&m);
    return okk;
}

static void make_src(const char *src, int tie)
{
    struct vr_model_config c;
    config(&c, tie);
    struct vr_init_opts o = {.dtype = VR_DTYPE_F32, .seed = 7, .init_range = 0.02};
    struct vr_err err = {0};
    if (vr_init_write_random(&c, src, &o, &err)) {
        printf("Bail out! %s\n", err.msg);
        exit(1);
    }
    put(src, "tokenizer.json", "{\"model\": {\"type\": \"BPE\"}}\n");
    put(src, "tokenizer_config.json", "{\"model_max_length\": 32768}\n");
    put(src, "generation_config.json", "{\"eos_token_id\": [39]}\n");
    put(src, "preprocessor_config.json", "{\"patch_size\": 2}\n");
    put(src, "chat_template.json", "{\"chat_template\": \"x\"}\n");
    /* not to be copied: weights of other formats, old trainer state, dot files */
    put(src, "pytorch_model.bin", "weights");
    put(src, "optimizer.pt", "state");
    put(src, "trainer_state.json", "{\"old\": true}\n");
    put(src, "adapter_config.json", "{\"peft_type\": \"LORA\"}\n");
    put(src, ".gitattributes", "*.safetensors filter=lfs\n");
    put(src, "model.safetensors.tmp.123", "half");
    char *sub = pj(src, "sub");
    mkdir(sub, 0755);
    put(sub, "x.json", "{}");
    free(sub);
    /* a Hugging Face cache snapshot links its files to blobs */
    char *blobs = pj(root, "blobs");
    mkdir(blobs, 0755);
    put(blobs, "merges", "#version: 0.2\n");
    char *target = pj(blobs, "merges"), *link = pj(src, "merges.txt");
    VR_ASSERT(symlink(target, link) == 0);
    free(target);
    free(link);
    free(blobs);
}

static int fail_more(void *ctx, const char *dir, struct vr_err *err)
{
    (void)ctx;
    put(dir, "half-written", "x");
    return vr_err_set(err, VR_ERR_SYS, dir, 0, "injected failure");
}

static int write_adapter(void *ctx, const char *dir, struct vr_err *err)
{
    const struct run *r = ctx;
    /* one-tensor table: what a LoRA trainer would pass */
    struct vr_param p = {.name = "base_model.model.lm_head.lora_A.weight", .ndim = 2, .shape = {2, 16}};
    size_t off = 0;
    struct vr_ptab t = {1, &p, &off, NULL, 32};
    char *path = pj(dir, "adapter_model.safetensors");
    int rc = vr_ckpt_write_params(path, &t, r->master, VR_DTYPE_BF16, NULL, err);
    free(path);
    json_t *j = json_pack("{s:s,s:i}", "peft_type", "LORA", "r", 2);
    path = pj(dir, "adapter_config.json");
    if (rc == 0) rc = vr_json_write_file(path, j, 0, err);
    free(path);
    json_decref(j);
    return rc;
}

static void test_basic(const char *src, struct run *r)
{
    struct vr_err err = {0};
    char *run = pj(root, "run"), *path = NULL, why[256] = "";
    /* hand-computed bf16 roundings in model.norm.weight, all finite: a
     * checkpoint holding a NaN or an infinity is refused at load (NaN and
     * overflow rounding are tests/unit/tensor.c's) */
    static const uint32_t in[] = {0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, 0xbf818000, 0x42ff7fff,
                                  0x437f8000, 0x437f7fff, 0x00000001, 0x80000000, 0x3f7fffff};
    static const uint16_t want[] = {0x3f80, 0x3f82, 0x3f81, 0x3f80, 0xbf82, 0x42ff,
                                    0x4380, 0x437f, 0x0000, 0x8000, 0x3f80};
    int nrm = pidx(r, "model.norm.weight");
    for (size_t k = 0; k < sizeof in / sizeof *in; k++) r->master[r->off[nrm] + k] = ubits(in[k]);

    int32_t rng_state[4] = {1, -2, 3, 0x7fffffff};
    struct vr_tensor ex;
    vr_tensor_view(&ex, VR_DTYPE_I32, 1, (int64_t[]){4}, rng_state);
    const char *exn[1] = {"rng.philox"};
    json_t *state = json_pack("{s:i,s:i,s:s}", "step", 5, "lines", 40, "note", "first");
    struct vr_ckpt c = {.src = src, .tab = &r->tab, .master = r->master, .dtype = VR_DTYPE_BF16,
                        .opt = &r->os, .nextra = 1, .extra_names = exn, .extra = &ex, .state = state};
    int rc = vr_ckpt_save(run, 5, &c, 0, &path, &err);
    ok(rc == 0, "save checkpoint-5 (bf16)");
    if (rc) diag("%s", err.msg);
    char *want_path = pj(run, "checkpoint-5");
    is_str(path, want_path, "save returns the folder");
    free(want_path);

    static const char *const copied[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                                         "preprocessor_config.json", "chat_template.json", "merges.txt"};
    int all = 1;
    for (size_t i = 0; i < sizeof copied / sizeof *copied; i++) all &= same_file(src, path, copied[i]);
    ok(all, "tokenizer, generation, preprocessor and template files copied byte for byte (links followed)");
    struct stat sb;
    char *mp = pj(path, "merges.txt");
    ok(lstat(mp, &sb) == 0 && S_ISREG(sb.st_mode), "a linked file is copied as a file");
    free(mp);
    ok(!exists(path, "pytorch_model.bin") && !exists(path, "optimizer.pt") && !exists(path, ".gitattributes") &&
           !exists(path, "sub") && !exists(path, "model.safetensors.tmp.123") && !exists(path, "adapter_config.json") &&
           !exists(path, "model.safetensors.index.json"),
       "weights of other formats, dot files, temp files and folders are not copied");
    json_t *ts = NULL;
    ok(vr_ckpt_load_state(path, &ts, &err) == 1 && json_equal(ts, state), "trainer_state.json is the caller's");
    json_decref(ts);
    char *cfg = slurp(path, "config.json", NULL);
    json_t *cj = cfg ? json_loads(cfg, 0, NULL) : NULL;
    is_str(json_string_value(json_object_get(cj, "torch_dtype")), "bfloat16",
           "config.json's torch_dtype follows the weights (source float32)");
    json_decref(cj);
    free(cfg);

    ok(weights_match(path, r, VR_DTYPE_BF16, why, sizeof why),
       "vr_model_load reads back every weight as round-to-nearest-even bf16 of the master %s", why);
    struct vr_model m;
    if (vr_model_load(&m, path, &err) == 0) {
        const uint16_t *b = m.params[nrm].t.data;
        int hand = 1;
        for (size_t k = 0; k < sizeof in / sizeof *in; k++) {
            if (b[k] != want[k]) diag("0x%08x -> 0x%04x, want 0x%04x", in[k], b[k], want[k]);
            hand &= b[k] == want[k];
        }
        ok(hand, "bf16 of ties (to even, up and down), near-ties, a denormal, -0 as computed by hand");
        vr_model_release(&m);
    }

    /* optimizer state back, bit for bit */
    float *master2 = malloc(r->tab.total * sizeof(float));
    for (size_t k = 0; k < r->tab.total; k++) master2[k] = -7.0f;
    struct vr_optstate os2;
    VR_ASSERT(vr_optstate_init(&os2, r->tab.total, &err) == 0);
    int32_t rng_back[4] = {0};
    struct vr_tensor exb;
    vr_tensor_view(&exb, VR_DTYPE_I32, 1, (int64_t[]){4}, rng_back);
    rc = vr_ckpt_load_optim(path, &r->tab, master2, &os2, 1, exn, &exb, &err);
    is_int(rc, 1, "load optimizer.safetensors");
    if (rc != 1) diag("%s", err.msg);
    int mv = 1, ms = 1, fz = 1;
    for (int i = 0; i < r->m.nparams; i++) {
        if (r->m.params[i].tied) continue;
        size_t o = r->off[i], n = (size_t)vr_tensor_numel(&r->m.params[i].t);
        for (size_t k = 0; k < n; k++) {
            if (r->train[i]) {
                mv &= fbits(os2.m[o + k]) == fbits(r->os.m[o + k]) && fbits(os2.v[o + k]) == fbits(r->os.v[o + k]);
                ms &= fbits(master2[o + k]) == fbits(r->master[o + k]);
            } else {
                fz &= os2.m[o + k] == 0 && os2.v[o + k] == 0 && master2[o + k] == -7.0f;
            }
        }
    }
    ok(mv, "exp_avg and exp_avg_sq of every trainable tensor bit-exact");
    ok(ms, "fp32 master weights of every trainable tensor bit-exact (NaN payloads too)");
    ok(fz, "frozen tensors: no state read, arrays untouched");
    ok(memcmp(rng_back, rng_state, sizeof rng_state) == 0, "extra tensor (I32) round-trips");

    /* what the file holds: trainable tensors only, F32 */
    char *op = pj(path, "optimizer.safetensors");
    struct vr_safetensors st;
    if (vr_safetensors_open(&st, op, &err) == 0) {
        int ntrain = 0;
        for (int i = 0; i < r->m.nparams; i++) ntrain += r->train[i] && !r->m.params[i].tied;
        const struct vr_st_entry *e = vr_safetensors_find(&st, "exp_avg_sq.model.layers.1.mlp.down_proj.weight");
        ok(st.n == 3 * ntrain + 1 && e && e->dtype == VR_DTYPE_F32 && e->ndim == 2 && e->shape[0] == 32 &&
               e->shape[1] == 24 && !vr_safetensors_find(&st, "exp_avg.visual.merger.mlp.0.weight"),
           "optimizer.safetensors: master/exp_avg/exp_avg_sq F32 of the %d trainable tensors + extra", ntrain);
        vr_safetensors_close(&st);
    }
    free(op);

    /* a table that disagrees with the file */
    struct vr_param *pc = malloc((size_t)r->m.nparams * sizeof *pc);
    memcpy(pc, r->m.params, (size_t)r->m.nparams * sizeof *pc);
    pc[nrm].shape[0] = 31;
    struct vr_ptab bad = r->tab;
    bad.p = pc;
    rc = vr_ckpt_load_optim(path, &bad, NULL, &os2, 0, NULL, NULL, &err);
    ok(rc == -1 && strstr(err.msg, "optimizer.safetensors: tensor 'exp_avg.model.norm.weight' is F32 [32], expected F32 [31]"),
       "a shape mismatch names the file and tensor: %s", err.msg);
    unsigned char *tr2 = malloc((size_t)r->m.nparams);
    memset(tr2, 1, (size_t)r->m.nparams);
    bad = r->tab;
    bad.train = tr2;
    rc = vr_ckpt_load_optim(path, &bad, NULL, &os2, 0, NULL, NULL, &err);
    ok(rc == -1 && strstr(err.msg, "tensor 'exp_avg.visual.patch_embed.proj.weight' is missing") && err.hint[0],
       "a tensor trainable now but frozen then is refused, with a hint: %s", err.msg);
    free(tr2);
    free(pc);
    is_int(vr_ckpt_load_optim(src, &r->tab, NULL, &os2, 0, NULL, NULL, &err), 0,
           "a folder without optimizer.safetensors: 0");
    vr_optstate_release(&os2);
    free(master2);

    ok(count_prefix(run, ".tmp-") == 0, "no temporary folder left");

    /* a run publishing its weights into a folder of its own (not atomic as a whole) */
    c.state = NULL;
    c.opt = NULL;
    c.nextra = 0;
    c.more = write_adapter;
    c.more_ctx = r;
    rc = vr_ckpt_write(run, &c, &err);
    ok(rc == 0 && weights_match(run, r, VR_DTYPE_BF16, why, sizeof why) && exists(run, "adapter_config.json") &&
           !exists(run, "trainer_state.json"),
       "vr_ckpt_write into an existing folder, with the caller's files %s", why);
    struct vr_safetensors ad;
    char *adp = pj(run, "adapter_model.safetensors");
    if (vr_safetensors_open(&ad, adp, &err) == 0) {
        const struct vr_st_entry *e = vr_safetensors_find(&ad, "base_model.model.lm_head.lora_A.weight");
        ok(ad.n == 1 && e && e->dtype == VR_DTYPE_BF16 && ad.metadata &&
               !strcmp(json_string_value(json_object_get(ad.metadata, "format")), "pt"),
           "write_params: one named file, bf16, format pt");
        vr_safetensors_close(&ad);
    } else {
        ok(0, "adapter_model.safetensors: %s", err.msg);
    }
    free(adp);
    int64_t *steps;
    int n = vr_ckpt_list(run, &steps, &err);
    ok(n == 1 && steps[0] == 5, "the run folder's own files are no checkpoint");
    free(steps);

    json_decref(state);
    free(path);
    free(run);
}

static void test_dtypes(const char *src, struct run *r)
{
    struct vr_err err = {0};
    char *run = pj(root, "run-f32"), why[256] = "";
    json_t *state = json_pack("{s:i}", "step", 1);
    struct vr_ckpt c = {.src = src, .tab = &r->tab, .master = r->master, .dtype = VR_DTYPE_F32,
                        .max_shard_bytes = 40000, .state = state};
    char *path = NULL;
    int rc = vr_ckpt_save(run, 1, &c, 0, &path, &err);
    ok(rc == 0 && exists(path, "model.safetensors.index.json") && exists(path, "model-00001-of-00003.safetensors") &&
           !exists(path, "model.safetensors") && !exists(path, "optimizer.safetensors"),
       "f32 in shards of 40000 bytes: index + 3 shards, no optimizer state asked %s", rc ? err.msg : "");
    ok(weights_match(path, r, VR_DTYPE_F32, why, sizeof why), "f32 shards load back exactly %s", why);
    free(path);
    c.dtype = VR_DTYPE_F16;
    c.max_shard_bytes = 0;
    rc = vr_ckpt_save(run, 2, &c, 0, &path, &err);
    ok(rc == 0 && weights_match(path, r, VR_DTYPE_F16, why, sizeof why), "f16 loads back as vr_f32_to_f16 %s", why);
    char *cfg = slurp(path, "config.json", NULL);
    ok(cfg && strstr(cfg, "\"torch_dtype\": \"float16\""), "config.json says float16");
    free(cfg);
    free(path);
    c.dtype = VR_DTYPE_BOOL;
    rc = vr_ckpt_save(run, 3, &c, 0, NULL, &err);
    ok(rc == -1 && err.kind == VR_ERR_USAGE && strstr(err.msg, "vr writes F32, BF16 or F16") &&
           !exists(run, "checkpoint-3") && count_prefix(run, ".tmp-") == 0,
       "an unset dtype is refused and leaves nothing: %s", err.msg);
    c.dtype = VR_DTYPE_BF16;
    c.state = NULL;
    ok(vr_ckpt_save(run, 3, &c, 0, NULL, &err) == -1 && strstr(err.msg, "trainer state"),
       "a checkpoint without trainer state is refused");
    json_decref(state);
    free(run);
}

static void test_tied(void)
{
    struct vr_err err = {0};
    char *src = pj(root, "src-tied"), *run = pj(root, "run-tied"), why[256] = "";
    make_src(src, 1);
    struct run r;
    run_init(&r, src);
    struct vr_range *rg = malloc((size_t)r.m.nparams * sizeof *rg);
    int nr = vr_ptab_ranges(&r.tab, rg), want = 0, sorted = 1;
    for (int i = 0; i < r.m.nparams; i++) want += r.train[i] && !r.m.params[i].tied;
    for (int i = 1; i < nr; i++) sorted &= rg[i].id > rg[i - 1].id && rg[i].off >= rg[i - 1].off + rg[i - 1].n;
    int head = pidx(&r, "lm_head.weight");
    ok(r.m.params[head].tied && nr == want && sorted, "ptab_ranges: %d trainable tensors, lm_head (tied) left out", nr);
    free(rg);
    json_t *state = json_pack("{s:i}", "step", 1);
    struct vr_ckpt c = {.src = src, .tab = &r.tab, .master = r.master, .dtype = VR_DTYPE_BF16, .opt = &r.os,
                        .state = state};
    char *path = NULL;
    int rc = vr_ckpt_save(run, 1, &c, 0, &path, &err);
    struct vr_safetensors st;
    char *mp = path ? pj(path, "model.safetensors") : NULL, *op = path ? pj(path, "optimizer.safetensors") : NULL;
    int absent = 0;
    if (rc == 0 && vr_safetensors_open(&st, mp, &err) == 0) {
        absent = !vr_safetensors_find(&st, "lm_head.weight");
        vr_safetensors_close(&st);
        if (vr_safetensors_open(&st, op, &err) == 0) {
            absent &= !vr_safetensors_find(&st, "exp_avg.lm_head.weight") &&
                      vr_safetensors_find(&st, "exp_avg.model.embed_tokens.weight");
            vr_safetensors_close(&st);
        }
    }
    ok(absent, "tied lm_head: neither in model.safetensors nor in optimizer.safetensors");
    ok(weights_match(path, &r, VR_DTYPE_BF16, why, sizeof why), "tied model loads back %s", why);
    free(mp);
    free(op);
    free(path);
    json_decref(state);
    run_free(&r);
    free(src);
    free(run);
}

static json_t *state_of(const char *dir)
{
    json_t *j = NULL;
    struct vr_err err;
    vr_ckpt_load_state(dir, &j, &err);
    return j;
}

static void test_run_folder(const char *src, struct run *r)
{
    struct vr_err err = {0};
    char *run = pj(root, "run3"), *path = NULL;
    int64_t step = -1, *steps = NULL;
    ok(vr_ckpt_newest(run, &path, &step, &err) == 0 && !path, "newest: a run folder that does not exist has none");
    is_int(vr_ckpt_list(run, &steps, &err), 0, "list: none");

    json_t *state = json_pack("{s:i}", "step", 3);
    struct vr_ckpt c = {.src = src, .tab = &r->tab, .master = r->master, .dtype = VR_DTYPE_BF16, .opt = &r->os,
                        .state = state};
    ok(vr_ckpt_save(run, 3, &c, 0, NULL, &err) == 0, "save checkpoint-3");
    /* a killed run's leftovers, an incomplete folder, names that are not ours */
    char dead[64], live[64];
    snprintf(dead, sizeof dead, ".tmp-checkpoint-20-%d", 2147483000);
    snprintf(live, sizeof live, ".tmp-checkpoint-21-%ld", (long)getpid());
    static const char *const dirs[] = {"checkpoint-12", "checkpoint-007", "checkpoint-x", "checkpoint-"};
    char *p;
    for (size_t i = 0; i < 4; i++) {
        mkdir(p = pj(run, dirs[i]), 0755);
        if (i) put(p, "trainer_state.json", "{}");
        else put(p, "model.safetensors", "half");
        free(p);
    }
    mkdir(p = pj(run, dead), 0755);
    put(p, "trainer_state.json", "{}");
    free(p);
    mkdir(p = pj(run, live), 0755);
    free(p);
    put(run, "checkpoint-30", "a file");
    int rc = vr_ckpt_newest(run, &path, &step, &err);
    char *want = pj(run, "checkpoint-3");
    ok(rc == 1 && step == 3 && path && !strcmp(path, want),
       "newest: checkpoint-3, not the incomplete checkpoint-12, a .tmp-* folder, checkpoint-007 or a file");
    free(path);
    free(want);

    json_object_set_new(state, "step", json_integer(4));
    ok(vr_ckpt_save(run, 4, &c, 0, NULL, &err) == 0, "save checkpoint-4");
    rc = vr_ckpt_newest(run, &path, &step, &err);
    ok(rc == 1 && step == 4, "newest: checkpoint-4");
    free(path);
    ok(!exists(run, dead) && exists(run, live), "a save removes the leftovers of dead processes, not of live ones");
    ok(exists(run, "checkpoint-12") && exists(run, "checkpoint-007") && exists(run, "checkpoint-30"),
       "folders that are not complete checkpoints are left alone");

    /* keep-N */
    for (int s = 5; s <= 6; s++) {
        json_object_set_new(state, "step", json_integer(s));
        ok(vr_ckpt_save(run, s, &c, 2, NULL, &err) == 0, "save checkpoint-%d --keep 2", s);
    }
    int n = vr_ckpt_list(run, &steps, &err);
    ok(n == 2 && steps[0] == 5 && steps[1] == 6, "keep 2: checkpoint-5 and checkpoint-6 remain");
    free(steps);
    json_object_set_new(state, "step", json_integer(2));
    ok(vr_ckpt_save(run, 2, &c, 1, NULL, &err) == 0, "save checkpoint-2 --keep 1 (older than the newest)");
    n = vr_ckpt_list(run, &steps, &err);
    ok(n == 2 && steps[0] == 2 && steps[1] == 6, "keep 1 keeps the newest and the one just written");
    free(steps);
    ok(count_prefix(run, ".tmp-del-") == 0, "pruned folders are gone");

    /* replace checkpoint-6 with other weights */
    char *c6 = pj(run, "checkpoint-6");
    float *m2 = malloc(r->tab.total * sizeof(float));
    for (size_t k = 0; k < r->tab.total; k++) m2[k] = r->master[k] * 2.0f + 1.0f;
    float *keepm = r->master;
    r->master = m2;
    c.master = m2;
    json_object_set_new(state, "step", json_integer(6));
    json_object_set_new(state, "again", json_true());
    char why[256] = "";
    ok(vr_ckpt_save(run, 6, &c, 0, NULL, &err) == 0, "save checkpoint-6 again");
    ok(weights_match(c6, r, VR_DTYPE_BF16, why, sizeof why), "checkpoint-6 holds the new weights %s", why);
    json_t *j = state_of(c6);
    ok(j && json_equal(j, state), "and the new trainer state");
    json_decref(j);
    char pre[64];
    snprintf(pre, sizeof pre, ".tmp-checkpoint-6-");
    ok(count_prefix(run, pre) == 0 && count_prefix(run, ".tmp-old-") == 0, "the old folder is removed");

    /* failures midway leave checkpoint-6 as it is */
    size_t before_len;
    char *before = slurp(c6, "model.safetensors", &before_len), *before_state = slurp(c6, "trainer_state.json", NULL);
    json_object_set_new(state, "again", json_false());
    r->master = keepm;
    c.master = keepm;
    c.more = fail_more;
    rc = vr_ckpt_save(run, 6, &c, 0, NULL, &err);
    ok(rc == -1 && strstr(err.msg, "injected failure"), "a writer failing midway fails the save: %s", err.msg);
    c.more = NULL;
    size_t after_len;
    char *after = slurp(c6, "model.safetensors", &after_len), *after_state = slurp(c6, "trainer_state.json", NULL);
    ok(before && after && before_len == after_len && !memcmp(before, after, before_len) && before_state &&
           after_state && !strcmp(before_state, after_state) && !exists(c6, "half-written"),
       "the previous checkpoint-6 is untouched");
    free(after);
    free(after_state);
    ok(count_prefix(run, pre) == 0, "the temporary folder is removed");

    /* a file-size limit: EFBIG in the middle of model.safetensors */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 16384;
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    rc = vr_ckpt_save(run, 6, &c, 0, NULL, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, oldsig);
    ok(rc == -1 && strstr(err.msg, "model.safetensors") && strstr(err.msg, "write failed"),
       "a full disk midway fails the save, naming the file: %s", err.msg);
    after = slurp(c6, "model.safetensors", &after_len);
    after_state = slurp(c6, "trainer_state.json", NULL);
    ok(before && after && before_len == after_len && !memcmp(before, after, before_len) && after_state &&
           !strcmp(before_state, after_state),
       "the previous checkpoint-6 is untouched");
    ok(count_prefix(run, pre) == 0, "the temporary folder is removed");
    rc = vr_ckpt_newest(run, &path, &step, &err);
    ok(rc == 1 && step == 6, "newest is still checkpoint-6");
    free(path);
    free(after);
    free(after_state);
    free(before);
    free(before_state);

    /* a bad trainer_state.json */
    put(c6, "trainer_state.json", "{\"step\": 6,\n");
    j = NULL;
    rc = vr_ckpt_load_state(c6, &j, &err);
    ok(rc == -1 && !j && strstr(err.msg, "trainer_state.json:2:"), "invalid trainer_state.json names file:line: %s",
       err.msg);
    is_int(vr_ckpt_load_state(root, &j, &err), 0, "no trainer_state.json: 0");

    free(m2);
    free(c6);
    json_decref(state);
    free(run);
}


/* The run folder's root replaced as one set (vr_ckpt_replace, fileset.h). */
static void test_replace(const char *src, struct run *r)
{
    struct vr_err err = {0};
    char *run = pj(root, "run4"), why[256] = "";
    json_t *state = json_pack("{s:i}", "step", 1);
    struct vr_ckpt c = {.src = src, .tab = &r->tab, .master = r->master, .dtype = VR_DTYPE_BF16, .opt = &r->os,
                        .more = write_adapter, .more_ctx = r, .state = state};
    int rc = vr_ckpt_replace(run, &c, &err);
    ok(rc == 0 && weights_match(run, r, VR_DTYPE_BF16, why, sizeof why) && exists(run, "adapter_config.json") &&
           exists(run, "optimizer.safetensors") && same_file(src, run, "tokenizer.json"),
       "replace: a new folder gets the whole set %s", why);
    ok(count_prefix(run, ".tmp-") == 0 && !exists(run, ".commit.json"), "no staging folder or record left");
    put(run, "metrics.jsonl", "{\"step\":1}\n");
    char *ck = pj(run, "checkpoint-1");
    mkdir(ck, 0755);
    put(ck, "trainer_state.json", "{}");

    /* a set without adapter and optimizer state removes them, nothing else */
    json_object_set_new(state, "step", json_integer(2));
    c.opt = NULL;
    c.more = NULL;
    rc = vr_ckpt_replace(run, &c, &err);
    ok(rc == 0 && !exists(run, "adapter_config.json") && !exists(run, "adapter_model.safetensors") &&
           !exists(run, "optimizer.safetensors") && exists(run, "metrics.jsonl") &&
           exists(ck, "trainer_state.json"),
       "a set without adapter and moments removes the old ones, not the user's files or checkpoints");
    json_t *j = state_of(run);
    ok(j && json_equal(j, state), "the new trainer state");
    json_decref(j);

    /* in place (dir is the source): only config.json is rewritten */
    struct stat before, after;
    char *tp = pj(run, "tokenizer.json");
    stat(tp, &before);
    c.src = run;
    rc = vr_ckpt_replace(run, &c, &err);
    stat(tp, &after);
    ok(rc == 0 && before.st_ino == after.st_ino && exists(run, "metrics.jsonl"),
       "in place: the other files stay where they are");
    free(tp);
    c.src = src;

    /* failures before the commit leave the set as it was */
    size_t blen, alen;
    char *bm = slurp(run, "model.safetensors", &blen), *bs = slurp(run, "trainer_state.json", NULL);
    json_object_set_new(state, "step", json_integer(3));
    c.opt = &r->os;
    c.more = fail_more;
    rc = vr_ckpt_replace(run, &c, &err);
    char *am = slurp(run, "model.safetensors", &alen), *as = slurp(run, "trainer_state.json", NULL);
    ok(rc == -1 && strstr(err.msg, "injected failure") && strstr(err.hint, "is as it was before this save") &&
           am && alen == blen && !memcmp(am, bm, blen) && as && !strcmp(as, bs) &&
           !exists(run, "optimizer.safetensors") && count_prefix(run, ".tmp-") == 0,
       "a writer failing midway: the old set, untouched, and no staging folder (%s / %s)", err.msg, err.hint);
    free(am);
    free(as);
    c.more = NULL;
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 16384;
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    rc = vr_ckpt_replace(run, &c, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, oldsig);
    am = slurp(run, "model.safetensors", &alen);
    as = slurp(run, "trainer_state.json", NULL);
    ok(rc == -1 && strstr(err.msg, "write failed") && am && alen == blen && !memcmp(am, bm, blen) && as &&
           !strcmp(as, bs) && !exists(run, "optimizer.safetensors") && count_prefix(run, ".tmp-") == 0 &&
           !exists(run, ".commit.json"),
       "a full disk midway: the old set, untouched: %s", err.msg);
    free(am);
    free(as);

    /* a save committed, then killed after moving one file: a loader finishes it */
    char *sg = pj(run, ".tmp-save-999999");
    mkdir(sg, 0755);
    put(sg, "trainer_state.json", "{\"step\": 9}\n");
    put(sg, "generation_config.json", "{\"new\": true}\n");
    put(run, "adapter_config.json", "{}");
    put(run, ".commit.json", "{\"staging\": \".tmp-save-999999\", \"move\": [\"config.json\", "
                             "\"generation_config.json\", \"trainer_state.json\"], \"remove\": [\"adapter_config.json\"]}\n");
    j = state_of(run); /* config.json "was moved" already: gone from the staging folder */
    ok(j && json_integer_value(json_object_get(j, "step")) == 9 && !exists(run, ".commit.json") &&
           !exists(run, ".tmp-save-999999") && !exists(run, "adapter_config.json") && exists(run, "config.json"),
       "a committed save left half in place: the next loader finishes it (state, removals, cleanup)");
    json_decref(j);
    char *g = slurp(run, "generation_config.json", NULL);
    ok(g && strstr(g, "\"new\""), "and every staged file is in place");
    free(g);

    /* the writer's start: a record finished, every leftover but ours removed */
    mkdir(sg, 0755);
    put(sg, "trainer_state.json", "{\"step\": 10}\n");
    put(run, ".commit.json", "{\"staging\": \".tmp-save-999999\", \"move\": [\"trainer_state.json\"], \"remove\": []}\n");
    char mine[64], init1[64];
    snprintf(mine, sizeof mine, ".tmp-checkpoint-4-%ld", (long)getpid());
    snprintf(init1, sizeof init1, "model.safetensors.tmp.1.%08x", 0xabcdu);
    char *p = pj(run, mine);
    mkdir(p, 0755);
    free(p);
    p = pj(run, ".tmp-checkpoint-5-1"); /* pid 1 runs, but the lock says it is no writer here */
    mkdir(p, 0755);
    free(p);
    put(run, init1, "x");
    put(run, ".tmp-del-checkpoint-2-1", "x");
    int made;
    int fd = vr_ckpt_run_lock(run, &made, &err);
    rc = vr_ckpt_recover(run, &err);
    j = state_of(run);
    ok(fd >= 0 && rc == 1 && j && json_integer_value(json_object_get(j, "step")) == 10 && exists(run, mine) &&
           count_prefix(run, ".tmp-") == 1 && !exists(run, init1),
       "recover: the record finished, the leftovers of other pids removed, this process's kept");
    json_decref(j);
    is_int(vr_ckpt_recover(run, &err), 0, "recover again: nothing to do");

    /* a loader in the process that holds the lock: recovers without giving it up */
    mkdir(sg, 0755);
    put(sg, "trainer_state.json", "{\"step\": 11}\n");
    put(run, ".commit.json", "{\"staging\": \".tmp-save-999999\", \"move\": [\"trainer_state.json\"], \"remove\": []}\n");
    j = state_of(run);
    ok(j && json_integer_value(json_object_get(j, "step")) == 11 && !exists(run, ".commit.json"),
       "a loader in the writer's process finishes the save");
    json_decref(j);
    char *lp = pj(run, ".lock");
    pid_t child = fork();
    if (child == 0) {
        pid_t holder;
        struct vr_err e2;
        int f2 = vr_lock_take(lp, &holder, &e2);
        _exit(f2 < 0 && holder == getppid() ? 0 : 1);
    }
    int status = -1;
    waitpid(child, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "and the run lock is still held");
    free(lp);

    /* a record vr did not write is refused, by name */
    put(run, ".commit.json", "{\"staging\": \"../elsewhere\", \"move\": [], \"remove\": []}\n");
    j = NULL;
    rc = vr_ckpt_load_state(run, &j, &err);
    ok(rc == -1 && !j && strstr(err.msg, ".commit.json: not a commit record of vr"), "a bad record: %s", err.msg);
    put(run, ".commit.json", "{\"staging\": \".tmp-x\", \"move\": [\"../../etc/passwd\"], \"remove\": []}\n");
    ok(vr_ckpt_recover(run, &err) == -1 && strstr(err.msg, "not a commit record"), "a path in a record: refused");
    ok(exists(run, "trainer_state.json"), "and nothing moved");

    free(bm);
    free(bs);
    free(sg);
    free(ck);
    json_decref(state);
    free(run);
}

int main(void)
{
    tmpdir_make(root, sizeof root, "ckpt");
    char *src = pj(root, "src");
    make_src(src, 0);
    struct run r;
    run_init(&r, src);
    test_basic(src, &r);
    test_dtypes(src, &r);
    test_tied();
    test_run_folder(src, &r);
    test_replace(src, &r);
    run_free(&r);
    free(src);
    tmpdir_remove(root);
    return done_testing();
}

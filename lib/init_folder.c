/* init_folder.c: vr-init's checkpoint folder (init_folder.h). */
#include "init_folder.h"

#include <dirent.h>
#include <string.h>

#include "bpe_train.h"
#include "fs.h"
#include "jsonl.h"

/* Special ids and the number of tokens (the largest id + 1) of a tokenizer.json. */
static int tokenizer_ids(const char *path, struct vr_model_config *c, int *ntok, struct vr_err *err)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) return vr_err_set(err, VR_ERR_INPUT, path, je.line, "invalid JSON: %s", je.text);
    json_t *vocab = json_object_get(json_object_get(j, "model"), "vocab");
    int mx = -1, rc = 0;
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
    if (!json_is_object(vocab)) rc = vr_err_set(err, VR_ERR_INPUT, path, 0, "no model.vocab object");
    for (int w = 0; w < 6 && rc == 0; w++)
        if (!found[w]) rc = vr_err_set(err, VR_ERR_INPUT, path, 0, "the tokenizer has no '%s' token", want[w].tok);
    *ntok = mx + 1;
    json_decref(j);
    return rc;
}

/* dir/name as indented JSON and a newline; takes j. */
static int write_json(const char *dir, const char *name, json_t *j, struct vr_err *err)
{
    char *p = vr_path_join(dir, name);
    int rc = vr_json_write_file(p, j, 0, err);
    free(p);
    json_decref(j);
    return rc;
}

static int check_empty(const struct vr_init_folder_opts *o, struct vr_err *err)
{
    DIR *d = opendir(o->out);
    if (!d) return 0;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(d);
    if (!empty && !o->force)
        return vr_err_set(err, VR_ERR_INPUT, o->out, 0, "folder is not empty (use --force to write into it)");
    return 0;
}

/* The tokenizer learnt from o->corpus into out/tokenizer.json; *path names it. */
static int train_tokenizer(const struct vr_init_folder_opts *o, char **path, struct vr_err *err)
{
    json_t *tj;
    if (vr_mkdir_p(o->out, err)) return -1;
    if (vr_bpe_train(&tj, &o->corpus, 1, o->vocab ? o->vocab : 4096, 2, err)) return -1;
    *path = vr_path_join(o->out, "tokenizer.json");
    char *txt = json_dumps(tj, JSON_INDENT(2));
    json_decref(tj);
    int rc = vr_file_write_atomic(*path, txt, strlen(txt), err);
    free(txt);
    return rc;
}

/* The rows: the config's, fitted to the tokenizer's ntok tokens, or o->vocab. */
static int size_vocab(const struct vr_init_folder_opts *o, const char *tokenizer, int vocab, int ntok,
                      struct vr_model_config *c, struct vr_err *err)
{
    if (tokenizer && o->fit_vocab) c->text.vocab = (ntok + 63) / 64 * 64;
    if (tokenizer && ntok > c->text.vocab && !vocab)
        return vr_err_set(err, VR_ERR_INPUT, tokenizer, 0, "%d tokens do not fit %d embedding rows; give --vocab", ntok,
                          c->text.vocab);
    if (vocab) {
        if (vocab < ntok)
            return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "--vocab %d is smaller than the tokenizer's %d tokens", vocab, ntok);
        c->text.vocab = vocab;
    }
    if (c->image_token_id >= c->text.vocab)
        return vr_err_set(err, VR_ERR_USAGE, NULL, 0, "the vocabulary (%d) must hold the image token id %d",
                          c->text.vocab, c->image_token_id);
    return 0;
}

/* generation_config.json and preprocessor_config.json, as Qwen2.5-VL's. */
static int write_configs(const char *out, const struct vr_model_config *c, struct vr_err *err)
{
    if (write_json(out, "generation_config.json",
                   json_pack("{s:i,s:i,s:[i,i],s:b,s:f,s:f,s:i,s:f}", "bos_token_id", c->bos_id,
                             "pad_token_id", c->bos_id, "eos_token_id", c->eos_id, c->bos_id,
                             "do_sample", 1, "repetition_penalty", 1.05, "temperature", 0.1, "top_k", 1,
                             "top_p", 0.001), err))
        return -1;
    return write_json(out, "preprocessor_config.json",
                      json_pack("{s:i,s:i,s:i,s:i,s:i,s:[f,f,f],s:[f,f,f],s:s,s:s,s:b,s:b,s:f,s:b,s:b,s:i}",
                                "min_pixels", 3136, "max_pixels", 12845056, "patch_size", c->vision.patch,
                                "temporal_patch_size", c->vision.temporal_patch, "merge_size", c->vision.merge,
                                "image_mean", 0.48145466, 0.4578275, 0.40821073, "image_std", 0.26862954,
                                0.26130258, 0.27577711, "image_processor_type", "Qwen2VLImageProcessor",
                                "processor_class", "Qwen2_5_VLProcessor", "do_resize", 1, "do_rescale", 1,
                                "rescale_factor", 1.0 / 255.0, "do_normalize", 1, "do_convert_rgb", 1,
                                "resample", 3), err);
}

/* tokenizer.json (a copy unless it was trained there) and tokenizer_config.json. */
static int write_tokenizer(const char *out, const char *tokenizer, int copy, struct vr_err *err)
{
    if (copy) {
        char *buf;
        size_t len;
        if (vr_file_read(tokenizer, &buf, &len, err)) return -1;
        char *p = vr_path_join(out, "tokenizer.json");
        int rc = vr_file_write_atomic(p, buf, len, err);
        free(p);
        free(buf);
        if (rc) return -1;
    }
    json_t *tc = json_pack("{s:s,s:s,s:n,s:i,s:s,s:b}", "eos_token", "<|im_end|>", "pad_token",
                           "<|endoftext|>", "bos_token", "model_max_length", 32768,
                           "tokenizer_class", "Qwen2Tokenizer", "add_prefix_space", 0);
    json_object_set_new(tc, "chat_template", json_string(vr_init_chat_template));
    return write_json(out, "tokenizer_config.json", tc, err);
}

int vr_init_folder_write(const struct vr_init_folder_opts *o, struct vr_model_config *c,
                         struct vr_err *err)
{
    const char *tokenizer = o->tokenizer;
    char *trained = NULL;
    int vocab = o->vocab, ntok = 0, rc = check_empty(o, err);
    if (rc == 0 && o->corpus) { /* learn the tokenizer first: the vocabulary sizes the model */
        rc = train_tokenizer(o, &trained, err);
        tokenizer = trained;
        vocab = 0;
    }
    if (rc == 0 && tokenizer) rc = tokenizer_ids(tokenizer, c, &ntok, err);
    if (rc == 0) rc = size_vocab(o, tokenizer, vocab, ntok, c, err);
    if (rc == 0) rc = vr_init_write_random(c, o->out, &o->weights, err);
    if (rc == 0) rc = write_configs(o->out, c, err);
    if (rc == 0 && tokenizer) rc = write_tokenizer(o->out, tokenizer, !trained, err);
    free(trained);
    return rc ? -1 : 0;
}

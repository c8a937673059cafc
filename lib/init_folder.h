/* init_folder.h: a new checkpoint folder around init.h's random weights, as
 * vr-init writes it: config.json and the weights, generation_config.json,
 * preprocessor_config.json and, with a tokenizer (copied, or trained on a
 * text corpus), tokenizer.json and tokenizer_config.json; every file that
 * transformers and every vr stage read. */
#ifndef VR_INIT_FOLDER_H
#define VR_INIT_FOLDER_H

#include "init.h"

struct vr_init_folder_opts {
    const char *out;          /* the folder (made); it must be empty unless force */
    int force;
    const char *tokenizer;    /* a tokenizer.json to copy (special token ids follow it), or NULL */
    const char *corpus;       /* or a text file to train a byte-level BPE tokenizer on, or NULL */
    int vocab;                /* embedding rows, 0 for the config's; with corpus the BPE tokens
                                 to learn (0: 4096), the rows then fit the tokenizer */
    int fit_vocab;            /* with a tokenizer, round the config's rows to it (the small presets) */
    struct vr_init_opts weights;
};

/* Write the folder for the model c, whose vocabulary and special token ids
 * are first set from the tokenizer. Errors: a folder that is not empty, a
 * tokenizer that lacks a Qwen2.5-VL special token or does not fit the rows
 * (VR_ERR_INPUT); rows fewer than the tokenizer's tokens or than the image
 * token id (VR_ERR_USAGE); I/O. Files already written stay. */
int vr_init_folder_write(const struct vr_init_folder_opts *o, struct vr_model_config *c,
                         struct vr_err *err);

#endif

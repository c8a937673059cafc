/* ckpt.h: training checkpoints (DESIGN.md §4) — Hugging Face folders written
 * crash-safe, the trainer state beside the weights, and the run folder's
 * list of checkpoint-STEP folders (newest, prune). Used by vr-update.
 *
 * A checkpoint folder holds what its source model folder holds besides the
 * weights (config.json, generation_config.json, preprocessor_config.json,
 * tokenizer files, chat template, ...), the weights converted from the fp32
 * master array (model.safetensors, or shards + model.safetensors.index.json),
 * optimizer.safetensors (fp32 "master.NAME", "exp_avg.NAME",
 * "exp_avg_sq.NAME" of every trainable tensor, plus the caller's extras) and
 * trainer_state.json (the caller's JSON object), written last.
 *
 * Atomicity: vr_ckpt_save writes RUN/.tmp-checkpoint-STEP-PID, fsyncs every
 * file and the folder, renames it to RUN/checkpoint-STEP (an existing one is
 * swapped out atomically, then removed) and fsyncs RUN. A killed run leaves
 * the previous checkpoint as it was plus a .tmp-* folder, which readers
 * ignore and later saves remove. A checkpoint is complete when it is a
 * checkpoint-STEP folder (STEP in plain decimal) holding trainer_state.json.
 *
 * The run folder's root, which holds the last save as a Hugging Face folder
 * beside the checkpoint-STEP folders, is replaced as one set of files by
 * vr_ckpt_replace through a commit record (fileset.h): a kill or a full disk
 * at any moment leaves the old set or the new one, never new weights beside
 * old optimizer state. The loaders here and vr_model_load finish a save
 * that a crash left committed but not in place (vr_fileset_settle). */
#ifndef VR_CKPT_H
#define VR_CKPT_H

#include <jansson.h>
#include <stdint.h>

#include "model.h"
#include "optim.h"

/* The parameter table as the trainer lays it out in its flat arrays (a
 * struct vr_layout gives each field). Only p[i].name, .ndim, .shape and .tied
 * are read: a tied tensor (lm_head sharing embed_tokens) is neither stored
 * nor given optimizer state. */
struct vr_ptab {
    int np;
    const struct vr_param *p;   /* (np) */
    const size_t *off;          /* (np) offset of each tensor in the flat arrays, in floats */
    const unsigned char *train; /* (np) 1: trainable (has optimizer state); NULL: all are */
    size_t total;               /* floats in each flat array */
};

/* The ranges of the trainable, untied tensors, in table order, each with id =
 * its parameter index: what vr_adamw_step and friends take. out has room for
 * t->np entries. Returns how many. */
int vr_ptab_ranges(const struct vr_ptab *t, struct vr_range *out);

/* What a checkpoint folder gets. Every pointer may be NULL to leave that part
 * out, except state for vr_ckpt_save. */
struct vr_ckpt {
    const char *src;               /* model folder whose non-weight files are copied */
    const struct vr_ptab *tab;     /* the weights to store ... */
    const float *master;           /* ... from these fp32 values (tab->total) */
    enum vr_dtype dtype;           /* ... as F32, BF16 (torch's rounding) or F16 */
    uint64_t max_shard_bytes;      /* 0: one model.safetensors, else shards of at most this */
    const struct vr_optstate *opt; /* AdamW moments (tab->total each): optimizer.safetensors */
    int nextra;                    /* more tensors for optimizer.safetensors, any dtype */
    const char *const *extra_names;
    const struct vr_tensor *extra;
    /* Called last before trainer_state.json, with the folder being written:
     * for files of the caller's own (a LoRA adapter's adapter_config.json and
     * adapter_model.safetensors: see vr_ckpt_write_params). */
    int (*more)(void *ctx, const char *dir, struct vr_err *err);
    void *more_ctx;
    const json_t *state;           /* trainer_state.json: step, rng, data cursor */
};

/* Write c into dir (created when missing) file by file, each file atomic and
 * trainer_state.json last. Not atomic as a whole: vr_ckpt_save and
 * vr_ckpt_replace write through it into a temporary folder. When c->dtype
 * is given, config.json's torch_dtype (and dtype) are set to it. Errors name
 * the file. */
int vr_ckpt_write(const char *dir, const struct vr_ckpt *c, struct vr_err *err);

/* Replace the checkpoint in dir, a folder that other files live in (a run
 * folder's root), with c, as one set (fileset.h): c is written to
 * dir/.tmp-save-PID and fsynced, then committed. The state files of dir that
 * c does not have (model.safetensors or shards and their index, adapter
 * files, optimizer.safetensors, trainer_state.json) are removed with the
 * commit; other files stay. When dir is c->src, its other files are kept
 * and only config.json is rewritten. The caller holds dir's lock
 * (vr_ckpt_run_lock). On a failure before the commit, dir is as it was and
 * err's hint says so; after it, see vr_fileset_commit. */
int vr_ckpt_replace(const char *dir, const struct vr_ckpt *c, struct vr_err *err);

/* Write c as RUN/checkpoint-STEP atomically (see above), replacing one that
 * is there; then, when keep > 0, remove the complete checkpoints of RUN
 * beyond the newest keep (never the one just written), and the .tmp-*
 * leftovers of processes that are gone. *path (optional) gets the folder
 * (caller frees). On failure nothing of RUN has changed but a removed .tmp-*
 * folder. */
int vr_ckpt_save(const char *run, int64_t step, const struct vr_ckpt *c, int keep, char **path,
                 struct vr_err *err);

/* Pieces of vr_ckpt_write. copy_aux copies every regular file of src (links
 * followed) that is not weights or trainer state: it skips dot files,
 * *.safetensors, *.bin, *.pt, *.pth, *.h5, *.msgpack, *.ckpt, *.gguf, their
 * index files, trainer_state.json and adapter_config.json; dtype F32, BF16
 * or F16 sets config.json's dtype (another value leaves it). write_params
 * writes the untied tensors of t to one safetensors file at path, converted
 * to dt, streamed a tensor at a time (the adapter path). JSON files:
 * jsonl.h's vr_json_write_file. */
int vr_ckpt_copy_aux(const char *dst, const char *src, enum vr_dtype dtype, struct vr_err *err);
/* o (NULL: defaults) gives write_params' file its __metadata__ (NULL:
 * {"format": "pt"}) and nosync (for a shared-memory handoff); its fill is
 * write_params' own. */
int vr_ckpt_write_params(const char *path, const struct vr_ptab *t, const float *master,
                         enum vr_dtype dt, const struct vr_st_write_opts *o, struct vr_err *err);

/* Read dir/optimizer.safetensors back: the moments of every trainable untied
 * tensor of t into s (and, when master is not NULL, its fp32 master weights
 * into master), then the nextra tensors names[i] into extra[i], whose dtype
 * and shape the caller sets and whose data it allocates. Every one must be
 * there with that dtype and shape (the error names the file and the tensor);
 * tensors of the file that nobody asks for are ignored. Returns 1 when read,
 * 0 when dir has no optimizer.safetensors (nothing is touched), -1 on error
 * (the arrays may be partly written). Both loaders settle dir first
 * (vr_fileset_settle). */
int vr_ckpt_load_optim(const char *dir, const struct vr_ptab *t, float *master,
                       struct vr_optstate *s, int nextra, const char *const *names,
                       struct vr_tensor *extra, struct vr_err *err);
/* dir/trainer_state.json: 1 and *state (caller decrefs), 0 when absent, -1
 * when it is not a JSON object. */
int vr_ckpt_load_state(const char *dir, json_t **state, struct vr_err *err);

/* The steps of RUN's complete checkpoints, ascending (*steps malloc'ed, caller
 * frees; NULL when none). Returns how many, 0 when RUN does not exist. */
int vr_ckpt_list(const char *run, int64_t **steps, struct vr_err *err);
/* One writer per run folder: make RUN when missing (*made = 1), then take
 * the write lock RUN/.lock, held until the process ends. Returns its
 * descriptor, or -1 with err naming the pid of the writer holding it. */
int vr_ckpt_run_lock(const char *run, int *made, struct vr_err *err);
/* Remove RUN when it holds nothing but its lock (a run that failed before
 * its first save). */
void vr_ckpt_run_drop_empty(const char *run);
/* What a writer does first with RUN's lock taken: finish a save of the
 * root that a crash interrupted after its commit (vr_fileset_recover), then
 * remove every temporary that other processes left in RUN (.tmp-* folders of
 * checkpoint saves, prunes and root saves; *.tmp.PID.* files): the lock
 * proves that none of them is still writing, so no age or pid test is
 * needed. Returns 1 when it finished a save, 0 when there was none, -1 on
 * error (a damaged commit record, an I/O error). */
int vr_ckpt_recover(const char *run, struct vr_err *err);

/* The newest complete checkpoint of RUN: 1 with *path (caller frees) and
 * *step (optional), 0 when there is none. */
int vr_ckpt_newest(const char *run, char **path, int64_t *step, struct vr_err *err);

#endif

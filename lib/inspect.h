/* inspect.h: what vr-inspect prints, one JSON line each, to a FILE the
 * caller gives: the tensors of safetensors files and checkpoint folders
 * (every file validated by lib/safetensors before a byte is used), their
 * value statistics and differences from a reference, or a checkpoint as the
 * model loader sees it. Nothing here exits. */
#ifndef VR_INSPECT_H
#define VR_INSPECT_H

#include <stdio.h>

#include "safetensors.h"

struct vr_inspect_opts {
    int header;                 /* one line per file instead of per tensor */
    int stats;                  /* min, max, mean (finite values), nan and inf counts of float tensors */
    const struct vr_stset *ref; /* max_abs and rel against its same-named float tensors, or NULL */
};

/* The lines of path, a safetensors file or a checkpoint folder (one
 * model.safetensors, or the shards of model.safetensors.index.json, in name
 * order): per tensor {"file","name","dtype","shape","offset","bytes"} (offset
 * of its first byte in the file) plus the statistics asked for; with header,
 * per file {"file","header_bytes","data_bytes","tensors","metadata"}.
 * Returns 0, or -1 with err (a file that does not open or validate, with its
 * hint; or a failed write, with ferror(out) set). */
int vr_inspect_path(FILE *out, const char *path, const struct vr_inspect_opts *o, struct vr_err *err);
/* Load dir as a Qwen2.5-VL checkpoint (LoRA adapter merged), checking every
 * tensor against config.json, and write one line: {"model","ok","params",
 * "dtype","tied","text":{...},"vision":{...}}. Returns 0, or -1 with err. */
int vr_inspect_model(FILE *out, const char *dir, struct vr_err *err);

#endif

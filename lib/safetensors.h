/* safetensors.h: read (mmap, validated, zero-copy) and write (atomic) safetensors
 * files, and sharded checkpoints through model.safetensors.index.json.
 *
 * Format: u64 little-endian header length n, n bytes of JSON header, then the
 * byte buffer. Validation follows the reference implementation: the header is a
 * JSON object without duplicate keys whose entries are {dtype, shape,
 * data_offsets} (plus an optional "__metadata__" string map), every dtype is
 * known, every size equals dtype x shape, and the tensors tile the buffer
 * exactly, in order, without holes or overlap. Nothing past the header is read
 * before all of that holds. */
#ifndef VR_SAFETENSORS_H
#define VR_SAFETENSORS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

#define VR_ST_MAX_HEADER 100000000u /* same cap as the reference: 100 MB (10^8 bytes) */

struct vr_st_entry {
    char *name;
    enum vr_dtype dtype;
    int ndim;
    int64_t shape[VR_MAX_DIMS];
    uint64_t begin, end; /* offsets into the byte buffer */
};

struct vr_safetensors {
    char *path;
    const uint8_t *map;     /* whole file, read-only mapping */
    size_t size;            /* file size */
    const uint8_t *data;    /* byte buffer (map + 8 + header length) */
    uint64_t data_len;
    int n;                  /* tensors, in file order (sorted by offset) */
    struct vr_st_entry *t;
    json_t *metadata;       /* "__metadata__" object or NULL; owned */
    int *by_name;           /* indices of t sorted by name, for lookup */
};

/* Map and validate path. On failure err names the file and the defect. */
int vr_safetensors_open(struct vr_safetensors *st, const char *path, struct vr_err *err);
void vr_safetensors_close(struct vr_safetensors *st);
/* Entry by name, or NULL. O(log n). */
const struct vr_st_entry *vr_safetensors_find(const struct vr_safetensors *st, const char *name);
/* Zero-copy view of a tensor. Fails when the name is missing, or when its bytes
 * are not aligned to the dtype's size (then use vr_safetensors_read). */
int vr_safetensors_view(const struct vr_safetensors *st, const char *name, struct vr_tensor *out,
                        struct vr_err *err);
/* Owned copy of a tensor, whatever its alignment. */
int vr_safetensors_read(const struct vr_safetensors *st, const char *name, struct vr_tensor *out,
                        struct vr_err *err);

/* How a writer below writes; all zero (or o NULL) is the default: no
 * __metadata__, the bytes are tensors[i].data, fsync. */
typedef int (*vr_st_fill_fn)(void *ctx, int i, void *buf, size_t nbytes, struct vr_err *err);
struct vr_st_write_opts {
    json_t *metadata;   /* NULL or a JSON object of strings, written as __metadata__ */
    /* Streaming: when set, tensors give names' dtypes and shapes only (data
     * unused) and fill(ctx, i, buf, nbytes, err) writes tensor i's bytes (i
     * indexes the caller's list) just before they go to disk, so a checkpoint
     * bigger than memory is written one tensor at a time. */
    vr_st_fill_fn fill;
    void *ctx;
    /* Skip the fsyncs (struct vr_atomic's nosync): only for rebuildable files
     * whose readers verify a checksum. */
    int nosync;
};

/* Write n tensors to path atomically (path.tmp.PID, fsync, rename, fsync of the
 * directory). Layout is the reference's (the bytes of Python safetensors'
 * save_file, up to the order of __metadata__ keys): tensors sorted by dtype
 * (U64, I64, F64, F32, ... BOOL: largest first) then name, header padded with
 * spaces to 8 bytes, so every tensor is aligned. o: NULL or the options. */
int vr_safetensors_write(const char *path, int n, const char *const *names,
                         const struct vr_tensor *tensors, const struct vr_st_write_opts *o,
                         struct vr_err *err);

/* A checkpoint's tensors: one model.safetensors, or the shards listed by
 * model.safetensors.index.json. Opened from a folder or a file. */
struct vr_stset {
    int nfiles;
    struct vr_safetensors *files;
};
int vr_stset_open(struct vr_stset *s, const char *path, struct vr_err *err);
void vr_stset_close(struct vr_stset *s);
/* Find a tensor in any shard; *file (optional) gets its shard. */
const struct vr_st_entry *vr_stset_find(const struct vr_stset *s, const char *name,
                                        const struct vr_safetensors **file);
/* Write tensors into dir as one model.safetensors when they fit in
 * max_shard_bytes (0: no limit), else as model-0000i-of-0000N.safetensors
 * shards plus model.safetensors.index.json (written last, so a reader never
 * sees an index naming a shard that is not complete). o (NULL: defaults)
 * applies to each safetensors file; the index is always fsynced. */
int vr_stset_write(const char *dir, int n, const char *const *names,
                   const struct vr_tensor *tensors, uint64_t max_shard_bytes,
                   const struct vr_st_write_opts *o, struct vr_err *err);

#endif

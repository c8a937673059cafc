/* publish.h: the steady-state loop's weight handoff (DESIGN.md §2.1) between
 * one long-lived vr-update (the writer, --publish DIR) and vr-rollout (the
 * reader, --follow DIR).
 *
 * The folder DIR (best on /dev/shm; any local folder works) holds:
 *   lock               write-locked (fcntl) by the writer for its lifetime, so
 *                      a reader knows whether a writer is alive and which
 *   config.json, tokenizer.json, ...   the model's non-weight files, copied once
 *   model.safetensors  the weights of the newest generation, in the dtype the
 *                      writer's checkpoints use (converted from the fp32
 *                      master weights exactly as they are), "generation" in
 *                      its __metadata__; replaced atomically (temp + rename)
 *   adapter_*          LoRA runs: the adapter of the newest generation beside
 *                      fixed base weights (what vr_lora_load_merged folds in)
 *   generation         {"generation":K,"pid":PID,"prompts_per_step":P},
 *                      replaced atomically after the weights it announces
 * Generation K is the weights after K batches (a batch: P input lines, used
 * for --iterations optimizer steps); 0 is the starting weights. Files are not
 * fsynced: a crash loses nothing that a checkpoint needs, and the generation
 * file is only believed while the writer that wrote it holds the lock (a
 * stale folder from an earlier run is never read as current).
 *
 * Readers load DIR after seeing generation >= K in the generation file, so
 * they get K or newer (newer only when the writer is more than one batch
 * ahead of them, which the loop's back-pressure rules out with staleness 0).
 * The lock is a POSIX record lock: reader and writer must share the host (and
 * the pid namespace, whose pids the lock reports). */
#ifndef VR_PUBLISH_H
#define VR_PUBLISH_H

#include <stdint.h>
#include <sys/types.h>

#include "ckpt.h"
#include "err.h"
#include "safetensors.h"

/* The writer. */
struct vr_publish {
    char *dir;
    int fd;               /* DIR/lock, write-locked */
    int prompts_per_step; /* announced to readers */
    int64_t gen;          /* the last generation marked, -1 before the first */
    int aux;              /* the non-weight files are there */
};

/* Take DIR (created when missing) for this process: lock it (an error names
 * the pid of a live writer already there), and remove what an earlier run
 * left that a reader could mistake for this run's (the generation file, a
 * LoRA adapter, a shard index). src is the model folder whose non-weight
 * files vr_publish_weights copies; DIR must not be src. Cheap: call it
 * before loading the model, so that readers see a writer at once. */
int vr_publish_open(struct vr_publish *p, const char *dir, const char *src, int prompts_per_step,
                    struct vr_err *err);
/* Write the weights of table t (fp32 master values, converted to dt as
 * vr_ckpt_write does a checkpoint's) as DIR/model.safetensors with "generation" gen
 * in its metadata; the first call also copies src's non-weight files (with
 * config.json's dtype set to dt). Readers do not look at it before
 * vr_publish_mark. */
int vr_publish_weights(struct vr_publish *p, int64_t gen, const char *src, const struct vr_ptab *t,
                       const float *master, enum vr_dtype dt, struct vr_err *err);
/* Announce generation gen: what DIR holds now is it (write the generation
 * file). gen must grow. */
int vr_publish_mark(struct vr_publish *p, int64_t gen, struct vr_err *err);
/* Drop the lock (readers then see the writer gone) and free p's contents;
 * the files stay. */
void vr_publish_close(struct vr_publish *p);

/* A reader. */
struct vr_publish_reader {
    char *dir;
    pid_t writer;         /* the writer followed, 0 before one is seen */
    int prompts_per_step; /* the writer's, once seen */
    double start_timeout; /* seconds to wait for a writer to appear (default 120) */
    double t0;            /* when the reader started */
};

void vr_publish_reader_init(struct vr_publish_reader *r, const char *dir);
void vr_publish_reader_release(struct vr_publish_reader *r);
/* The newest generation announced by DIR's live writer into *gen, -1 when it
 * has announced none yet. Does not wait. Fails (naming DIR and the pid) when
 * the writer that was being followed is gone or another one took its place,
 * and when no writer has appeared within start_timeout. */
int vr_publish_poll(struct vr_publish_reader *r, int64_t *gen, struct vr_err *err);
/* Poll every 2 ms until the generation is at least at_least; *gen gets it.
 * Fails as vr_publish_poll does, so a dead writer never leaves a reader
 * waiting. */
int vr_publish_wait(struct vr_publish_reader *r, int64_t at_least, int64_t *gen, struct vr_err *err);
/* The generation recorded in a loaded checkpoint's weights (the metadata
 * vr_publish_weights writes), -1 when there is none. */
int64_t vr_publish_generation_of(const struct vr_stset *st);

#endif

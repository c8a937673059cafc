/* fileset.h: several files of a folder replaced as one set — the root of a
 * run folder (DESIGN.md §4), which vr-update rewrites after every run.
 *
 * A checkpoint-STEP folder is atomic by being swapped whole with one rename
 * (ckpt.h). A run folder's root cannot be: it must stay a Hugging Face folder
 * (config.json, model.safetensors, ... in the folder itself) beside its
 * checkpoint-STEP folders, its lock and whatever else the user keeps there.
 * Renaming its files one by one leaves, after a crash or a full disk, new
 * weights beside old optimizer state and step count, which load without a
 * word. So its files are replaced through a commit record, a database's
 * redo journal:
 *   1. the writer puts the whole new set into a staging folder inside DIR,
 *      every file fsynced (a crash or a full disk here leaves DIR as it was
 *      and the staging folder as a leftover, which the next writer removes);
 *   2. it writes DIR/.commit.json (temp, fsync, rename, fsync DIR) naming the
 *      staging folder, the files to move and the files of DIR the new set
 *      does not have (to remove): from this moment the new set is the truth;
 *   3. it renames each staged file over DIR's, removes the others, fsyncs DIR,
 *      removes the record and fsyncs DIR, then removes the staging folder.
 * A crash in step 3 leaves the record, and whoever opens DIR next with its
 * lock free does step 3 again (a staged file that is gone was moved): the
 * next writer at its start (vr_fileset_recover, under the lock), or any
 * loader (vr_fileset_settle takes the lock for that moment, as SQLite's
 * readers roll back a hot journal). So a loader reads the old set or the new
 * one, never a mix.
 *
 * Why not a generation token stamped in every file, checked on load, or a
 * manifest with checksums: both only detect the mix. After a kill the run
 * folder would stay unloadable until a new save, a full disk midway would
 * destroy the previous set, and checksums mean reading every byte (tens of
 * GB for a 3B model's optimizer state) at each load. The record costs one
 * stat per load and, while a save runs, room for the new set beside the old
 * one, as a checkpoint-STEP save needs too.
 *
 * The writer holds DIR's lock, DIR/.lock (vr_lock_take), throughout. */
#ifndef VR_FILESET_H
#define VR_FILESET_H

#include "err.h"

#define VR_FILESET_RECORD ".commit.json"
#define VR_FILESET_LOCK ".lock"

/* Steps 2 and 3: move every regular file of staging (the name of a folder
 * in dir, starting with ".tmp-"; its files complete and fsynced) into dir,
 * and remove from dir the names of drop (ndrop of them) that are not staged.
 * Returns 0 when done (staging removed). On a failure before the record is
 * durable, -1 with dir untouched and staging removed; after it, -1 with err's
 * hint saying that the save is complete and the next loader of dir finishes
 * it (the record and staging stay for that). */
int vr_fileset_commit(const char *dir, const char *staging, const char *const *drop, int ndrop,
                      struct vr_err *err);

/* Step 3 of a save that a crash interrupted: 1 when dir held a record (now
 * done and removed), 0 when it held none, -1 on error (a record vr did not
 * write, an I/O error). The caller holds dir's lock. */
int vr_fileset_recover(const char *dir, struct vr_err *err);

/* For loaders, before they read dir: when dir holds a record, take dir's
 * lock for the moment and recover; a live writer holding it is in step 3,
 * so wait for it (up to 10 s). 0 when dir's files are a complete set, -1
 * with err naming dir when they cannot be made one from here (a folder this
 * process may not write to, a writer that keeps the record). */
int vr_fileset_settle(const char *dir, struct vr_err *err);

#endif

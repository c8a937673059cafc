/* jsonl.h: JSON Lines in and out, the data stream between vr's stages.
 *
 * Reading keeps every field of a line (unknown ones included) in the jansson
 * object, so a stage can add its fields and pass the rest through. Errors name
 * "file:line". Writing is compact, one object per line, keys in insertion
 * order, UTF-8 as is; a real prints with the fewest digits that read back as
 * the same double, except that a float32 value whose double needs more than 9
 * digits prints with the fewest that read back as the same float32 ("%.9g" at
 * most: a logp is a float32, not its double's 17 digits). */
#ifndef VR_JSONL_H
#define VR_JSONL_H

#include <jansson.h>
#include <stdio.h>

#include "buf.h"
#include "err.h"

struct vr_jsonl {
    FILE *fp;
    char *path;   /* as given; "-" is shown as "<stdin>" */
    long line;    /* number of the line last returned (1-based) */
    char *buf;
    size_t cap;
    int own;      /* 1: fp was opened here */
};

/* Open path for reading ("-" or NULL: standard input). */
int vr_jsonl_open(struct vr_jsonl *r, const char *path, struct vr_err *err);
/* Read the next non-blank line as a JSON object into *out (caller decrefs).
 * Returns 1, 0 at end of input, -1 on a bad line (err = "file:line: ...";
 * reading may go on with the next line, for --skip-bad). */
int vr_jsonl_next(struct vr_jsonl *r, json_t **out, struct vr_err *err);
void vr_jsonl_close(struct vr_jsonl *r);

/* The lines of the files a stage is given, one file after the other (no
 * files: standard input). After a line is returned, in.path and in.line name
 * it. */
struct vr_jsonl_files {
    char *const *paths;
    int n, at, open;
    struct vr_jsonl in;
};
void vr_jsonl_files_init(struct vr_jsonl_files *f, char *const *paths, int n);
/* As vr_jsonl_next, over all the files: 1, 0 after the last, -1 on a bad line. */
int vr_jsonl_files_next(struct vr_jsonl_files *f, json_t **out, struct vr_err *err);
void vr_jsonl_files_close(struct vr_jsonl_files *f);

/* Append v as compact JSON to b. Non-finite reals (which JSON cannot hold)
 * are written as null. */
void vr_json_dump(struct vr_buf *b, const json_t *v);
void vr_json_dump_string(struct vr_buf *b, const char *s, size_t n);
/* Shortest round-trip text of a real (rules above) into buf (>= 32 bytes). */
void vr_json_fmt_real(char *buf, double x);
/* From now on print every real as the shortest text of its double, float32
 * values too (vr-eval: a box coordinate is a double that may happen to be a
 * float32). For the whole process. */
void vr_json_reals_exact(int on);
/* Write v and a newline to fp. Fails (VR_ERR_SYS) on a write error; EPIPE is
 * reported like any other (cmd/ turns SIGPIPE into a quiet exit). */
int vr_jsonl_write(FILE *fp, const json_t *v, struct vr_err *err);

/* A JSON file: j as text indented by 2 and a newline, written to path
 * atomically (fs.h: vr_file_write_atomic). flags adds json_dumps flags
 * (JSON_SORT_KEYS). A NULL j, or one jansson cannot print, is VR_ERR_USAGE. */
int vr_json_write_file(const char *path, const json_t *j, size_t flags, struct vr_err *err);

#endif

/* tokenize.h: vr-tokenize's work, line by line: text -> token ids as the
 * tokenizers library gives them, ids -> text, and task lines -> the rendered
 * Qwen2.5-VL chat prompt with its ids (lib/bpe and lib/chat do the work; this
 * is the line format around them). Output collects in a buffer the caller
 * writes to its FILE; nothing here exits. */
#ifndef VR_TOKENIZE_H
#define VR_TOKENIZE_H

#include <stdio.h>

#include "bpe.h"
#include "buf.h"
#include "chat.h"
#include "task.h"

enum vr_tokenize_mode {
    VR_TOKENIZE_ENCODE, /* a line of text (or a JSON string) -> [ids] */
    VR_TOKENIZE_DECODE, /* [ids] or {"ids": [...]} -> its text (or a JSON string) */
    VR_TOKENIZE_CHAT,   /* a task line -> {["id",] "text", "ids", "n_tokens"} */
};

/* Zero-initialise, then set tok (the caller's) and the options; for CHAT
 * also lim (vr_task_limits_default) and chat. */
struct vr_tokenize {
    struct vr_bpe *tok;
    enum vr_tokenize_mode mode;
    int json;          /* ENCODE reads, DECODE writes JSON strings */
    int skip_special;  /* DECODE: leave out special tokens */
    int split_special; /* ENCODE: special-token text is plain text */
    struct vr_chat_task_opts chat;
    struct vr_task_limits lim;
    struct vr_buf out;   /* output not yet written */
    struct vr_ids ids;   /* scratch */
    long lines, tokens;  /* counts, for --stats */
    double bytes;        /* text bytes read (ENCODE) or made */
};

/* One input line (s[0..n), without its newline) onto t->out. A line that is
 * not what the mode reads fails with "file:line: ..." (VR_ERR_INPUT). */
int vr_tokenize_line(struct vr_tokenize *t, const char *s, size_t n, const char *file, long line,
                     struct vr_err *err);
/* Every line of path ("-": standard input) through vr_tokenize_line, t->out
 * written to out (named out_name in errors) whenever it holds 64 KiB. JSON
 * lines (every mode but plain ENCODE) may end in CRLF; blank ones are
 * skipped. Returns 0, or -1 with err. */
int vr_tokenize_file(struct vr_tokenize *t, const char *path, FILE *out, const char *out_name,
                     struct vr_err *err);
/* Write what t->out holds to out. 0, or -1 with err. */
int vr_tokenize_flush(struct vr_tokenize *t, FILE *out, const char *out_name, struct vr_err *err);
void vr_tokenize_release(struct vr_tokenize *t);

/* min/max pixels, patch and merge size from dir/preprocessor_config.json
 * into t->lim and t->chat, when the file is there (both spellings:
 * min_pixels/max_pixels, size.shortest_edge/longest_edge); a missing file or
 * value, or one out of range, leaves the default. */
void vr_tokenize_preprocessor(struct vr_tokenize *t, const char *dir);

#endif

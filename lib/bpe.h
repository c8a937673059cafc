/* bpe.h: byte-level BPE tokenizers from a Hugging Face tokenizer.json, giving
 * the same ids as the `tokenizers` library (vr-tokenize, vr-rollout, vr-update).
 *
 * Encoding, as `tokenizers` does it:
 *   1. added tokens (added_tokens[]) are matched first, leftmost-longest, in
 *      the raw text (those with "normalized": false) and then in the
 *      normalized pieces (those with "normalized": true); each match is its id
 *   2. the text between matches is normalized (NFC through utf8proc, when the
 *      normalizer is NFC; characters after Unicode 9.0 are left alone, as
 *      tokenizers' normalization tables are 9.0)
 *   3. pre-tokenized by the Split regex(es) (PCRE2, UTF + UCP, JIT; \p{L},
 *      \p{N} and \s as tokenizers' Oniguruma has them, Unicode 16.0) with the
 *      "Isolated" behaviour, then mapped byte by byte to GPT-2's printable
 *      byte alphabet (ByteLevel)
 *   4. each piece is merged by merge rank (lowest rank first, leftmost on a
 *      tie) and looked up in the vocabulary (with ignore_merges, a piece that
 *      is itself in the vocabulary is taken whole).
 * No BOS/EOS is added (the post-processor is ByteLevel or none).
 *
 * Invalid UTF-8 input: `tokenizers` only sees valid strings, so vr defines
 * bytes as Python's bytes.decode("utf-8", errors="replace") and Rust's
 * String::from_utf8_lossy do: each maximal invalid subsequence becomes one
 * U+FFFD, then the string is encoded. decode(encode(s)) == s holds for valid
 * UTF-8; for other bytes it gives that replaced string.
 *
 * Supported tokenizer.json: model BPE (no dropout, no byte_fallback, no
 * subword prefix/suffix; unk_token optional; merges as "a b" strings or
 * [a, b] pairs; ignore_merges honoured), normalizer NFC or none, pre_tokenizer
 * Split(Regex|String, Isolated) steps then ByteLevel (or ByteLevel with
 * use_regex, GPT-2's pattern), decoder ByteLevel, post_processor ByteLevel or
 * none. Anything else is refused at load with a one-line error. */
#ifndef VR_BPE_H
#define VR_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* A growable list of token ids. */
struct vr_ids {
    int32_t *v;
    size_t n, cap;
};
void vr_ids_push(struct vr_ids *ids, int32_t id);
void vr_ids_release(struct vr_ids *ids);

/* Opaque: vocabulary, merges, compiled regexes, and a cache of pieces. One
 * struct vr_bpe must not be used by two threads at once (the cache and the
 * scratch buffers are inside); load one per thread, or lock. */
struct vr_bpe;

/* Load path (a tokenizer.json). On failure err names the file and the defect
 * ("tok.json: model type is 'Unigram'; vr supports BPE only"). *out is NULL
 * on failure. */
int vr_bpe_load(struct vr_bpe **out, const char *path, struct vr_err *err);
/* Same from memory; name is used in messages. */
int vr_bpe_load_mem(struct vr_bpe **out, const char *json, size_t len, const char *name,
                    struct vr_err *err);
void vr_bpe_free(struct vr_bpe *t);

enum {
    /* encode: text that spells a special added token is ordinary text
     * (tokenizers' encode_special_tokens, transformers' split_special_tokens);
     * non-special added tokens still match */
    VR_BPE_SPECIAL_AS_TEXT = 1,
    /* decode: leave out added tokens marked special (skip_special_tokens) */
    VR_BPE_SKIP_SPECIAL = 2,
};

/* Append the ids of text[0..len) (any bytes; see the note on invalid UTF-8)
 * to out. Cannot fail on any input. */
void vr_bpe_encode(struct vr_bpe *t, const char *text, size_t len, int flags, struct vr_ids *out);

/* Append the UTF-8 text of ids[0..n) to out, as tokenizers' decode: each
 * token's bytes through the ByteLevel decoder, invalid UTF-8 in the result
 * replaced by U+FFFD. Ids not in the vocabulary are skipped (as tokenizers
 * does; check with vr_bpe_has_id where that is an error). */
void vr_bpe_decode(const struct vr_bpe *t, const int32_t *ids, size_t n, int flags,
                   struct vr_buf *out);

/* Streaming decode for generation: put one id at a time; only complete UTF-8
 * is appended to out, an incomplete trailing sequence is held back until the
 * bytes that finish it come (or flush). The concatenated output equals
 * vr_bpe_decode of all the ids. */
struct vr_bpe_stream {
    const struct vr_bpe *t;
    int flags;
    int npend;
    unsigned char pend[4];
};
void vr_bpe_stream_init(struct vr_bpe_stream *s, const struct vr_bpe *t, int flags);
void vr_bpe_stream_put(struct vr_bpe_stream *s, int32_t id, struct vr_buf *out);
/* End of stream: held-back bytes become U+FFFD. */
void vr_bpe_stream_flush(struct vr_bpe_stream *s, struct vr_buf *out);

/* Id of a token by its text (added tokens and the vocabulary, the text as
 * tokenizer.json spells it), or -1. */
int32_t vr_bpe_token_id(const struct vr_bpe *t, const char *token);
/* The text of id as tokenizer.json spells it (byte-level alphabet for model
 * tokens), or NULL. Owned by t. */
const char *vr_bpe_token_str(const struct vr_bpe *t, int32_t id);
/* 1 when id names a token (model or added). */
int vr_bpe_has_id(const struct vr_bpe *t, int32_t id);
/* 1 when id is an added token marked special. */
int vr_bpe_is_special(const struct vr_bpe *t, int32_t id);
/* One more than the largest id (what an embedding needs at least). */
int32_t vr_bpe_size(const struct vr_bpe *t);

/* Replace every maximal invalid UTF-8 subsequence of s[0..n) by U+FFFD (EF BF
 * BD), as Python's errors="replace" and Rust's from_utf8_lossy; appends to
 * out. Returns the number of replacements. */
size_t vr_utf8_sanitize(const char *s, size_t n, struct vr_buf *out);
/* 1 when s[0..n) is valid UTF-8 (no surrogates, no overlongs, <= U+10FFFF). */
int vr_utf8_valid(const char *s, size_t n);

#endif

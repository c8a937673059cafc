/* bpe_train.h: train a small byte-level BPE tokenizer in Qwen2's format, so
 * tests and demos need no download (vr-init --train-tokenizer). The result is
 * a tokenizer.json that the `tokenizers` library and vr_bpe_load read: NFC,
 * the Qwen2 split regex, ByteLevel, 256 byte tokens, the learned merges, then
 * Qwen's 22 added tokens (<|endoftext|> ... <|file_sep|>) with their special
 * flags. */
#ifndef VR_BPE_TRAIN_H
#define VR_BPE_TRAIN_H

#include <jansson.h>

#include "err.h"

/* Learn merges from the text of files (UTF-8; invalid bytes are replaced as
 * in vr_utf8_sanitize) until the model vocabulary has vocab tokens (>= 256;
 * fewer when the corpus runs out of pairs to merge) or no pair occurs at least
 * min_freq times. Ties go to the pair of smaller ids, so the same corpus
 * gives the same tokenizer. *out: the tokenizer.json object. */
int vr_bpe_train(json_t **out, const char *const *files, int nfiles, int vocab, int min_freq,
                 struct vr_err *err);

#endif

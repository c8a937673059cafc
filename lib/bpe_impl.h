/* bpe_impl.h: the inside of struct vr_bpe, shared by the two halves of the
 * tokenizer: bpe_load.c (reading and checking tokenizer.json, building the
 * tables) and bpe.c (encoding and decoding with them). Not a public header:
 * only those two files include it. */
#ifndef VR_BPE_IMPL_H
#define VR_BPE_IMPL_H

#include <stdint.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "bpe.h"

/* ---------------------------------------------------------------- UTF-8 */

/* Length of the valid UTF-8 sequence at s[0..n), or -k where k >= 1 is the
 * length of the maximal invalid subpart to replace by one U+FFFD (the Unicode
 * "best practice" that Python and Rust follow). */
static inline int utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) need = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
    else if (c == 0xED) need = 2, hi = 0x9F;
    else if (c == 0xF0) need = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) need = 3, hi = 0x8F;
    else return -1;
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return -i;
        unsigned b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -i;
    }
    return need + 1;
}

/* Decode one code point of valid UTF-8. */
static inline uint32_t utf8_cp(const unsigned char *s, int *len)
{
    uint32_t c = s[0];
    if (c < 0x80) return *len = 1, c;
    if (c < 0xE0) return *len = 2, ((c & 0x1F) << 6) | (s[1] & 0x3F);
    if (c < 0xF0) return *len = 3, ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    *len = 4;
    return ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

static inline int utf8_put(char *o, uint32_t c)
{
    if (c < 0x80) return o[0] = (char)c, 1;
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* ---------------------------------------------------------------- tables */

/* String -> id, open addressing. Keys live in an arena (a vr_buf that may
 * move), so entries hold offsets. */
struct smap_ent {
    uint64_t h;
    uint32_t off, len;
    int32_t id;
    int32_t used;
};
struct smap {
    struct smap_ent *e;
    size_t mask, n;
};
/* Find key in m (keys in arena); returns the entry or NULL. */
static inline struct smap_ent *smap_find(const struct smap *m, const char *arena, const char *key,
                                  size_t len, uint64_t h)
{
    size_t j = h & m->mask;
    for (;;) {
        struct smap_ent *e = &m->e[j];
        if (!e->used) return NULL;
        if (e->h == h && e->len == len && memcmp(arena + e->off, key, len) == 0) return e;
        j = (j + 1) & m->mask;
    }
}

/* (left id, right id) -> (rank, merged id). */
struct merge_ent {
    uint64_t key; /* (a << 32 | b) + 1; 0 = empty */
    int32_t rank, id;
};

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Pieces already merged: raw bytes -> ids. Cleared when full. */
struct cache_ent {
    uint64_t h;
    uint32_t koff, klen, ioff, nids;
};
#define CACHE_SLOTS (1u << 17)
#define CACHE_MAX_ENTRIES (1u << 16)
#define CACHE_MAX_KEY 256

struct added {
    char *content;
    size_t len;
    int32_t id;
    int special, normalized;
};

struct split_step {
    pcre2_code *re;
    pcre2_match_data *md;
    int jit;
};

struct heap_ent {
    int32_t rank, pos, id;
};

struct vr_bpe {
    char *name;
    /* model tokens */
    struct vr_buf strs;      /* token strings as in tokenizer.json, NUL-separated */
    struct smap vocab;       /* token string -> id (model vocab and added tokens) */
    int32_t size;            /* max id + 1 */
    uint32_t *str_off;       /* id -> offset in strs, UINT32_MAX when absent */
    struct vr_buf dec;       /* id -> bytes the ByteLevel decoder gives */
    uint32_t *dec_off, *dec_len;
    unsigned char *is_special; /* id -> 1 for special added tokens */
    int32_t byte_id[256];    /* byte -> id of its byte-level character, -1 if none */
    struct merge_ent *merges;
    size_t merge_mask;
    int ignore_merges;
    int32_t unk_id;          /* -1: none */
    size_t model_strs_end;   /* strs below this offset are model.vocab's */
    int fuse_unk;
    /* added tokens, longest first within each first byte */
    struct added *added;
    int nadded;
    int has_normalized_added;
    uint8_t first_byte[256]; /* bit 1: some raw-matched token starts here; bit 2: normalized */
    int nfc;
    struct split_step *steps;
    int nsteps;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    /* scratch */
    struct cache_ent *cache;
    size_t cache_n;
    struct vr_buf cache_keys;
    struct vr_ids cache_ids;
    struct vr_buf sane, norm, bl;
    int32_t *u32;
    size_t u32_cap;
    int32_t *standin;
    size_t standin_cap;
    int32_t *sym, *prev, *next;
    size_t sym_cap;
    struct heap_ent *heap;
    size_t heap_cap;
};

/* GPT-2's bytes_to_unicode (filled by the first load, bpe_load.c): printable
 * bytes stand for themselves, the other 68 are moved to U+0100 onwards in byte
 * order. */
extern uint32_t vr_bpe_byte_to_cp[256];

#endif

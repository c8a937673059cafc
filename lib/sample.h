/* sample.h: choosing the next token, as Hugging Face generate() defines it
 * (vr-rollout). Order: repetition penalty over the distinct ids seen so far
 * (prompt included), temperature, top-k, top-p, min-p, then a draw by inverse
 * CDF over token ids in increasing order with a uniform u from the
 * counter-based RNG (so the same (seed, task, completion, position) gives the
 * same token on any machine, batch or thread count). */
#ifndef VR_SAMPLE_H
#define VR_SAMPLE_H

#include <stdint.h>

struct vr_sampling {
    int greedy;          /* argmax of the penalised logits (first on ties, as torch.argmax) */
    float temperature;   /* > 0 */
    int top_k;           /* 0: off */
    float top_p;         /* 1: off */
    float min_p;         /* 0: off */
    float rep_penalty;   /* 1: off */
};

/* Scratch for vr_sample over V tokens: reused, no allocation per call. */
struct vr_sample_ws {
    int V;
    float *l;
    int *idx;
    unsigned char *seen;
};
void vr_sample_ws_init(struct vr_sample_ws *w, int V);
void vr_sample_ws_release(struct vr_sample_ws *w);

/* The next token for logits (V) given the ids seen (for the penalty) and u in
 * [0, 1). *logp: log-probability of the token under softmax(logits / T) of
 * the raw logits (T = 1 when greedy), as TRL computes the sampling policy's
 * log-probs: no penalty or truncation. */
int32_t vr_sample(const float *logits, const struct vr_sampling *s, const int32_t *seen, int nseen,
                  float u, float *logp, struct vr_sample_ws *w);

/* u for (seed, task, completion, position): Philox4x32-10 with key = seed and
 * counter = (position, completion, task hash low, task hash high). */
float vr_sample_uniform(uint64_t seed, uint64_t task_hash, uint32_t completion, uint32_t position);

#endif

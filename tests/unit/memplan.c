/* memplan.c: the training memory plan (lib/memplan.h) of the 3B preset
 * against numbers worked out by hand from Qwen2.5-VL-3B's config, and
 * against the checkpoint writer's own parameter count. */
#include <math.h>
#include <string.h>

#include "init.h"
#include "memplan.h"

#include "../tap.h"

static double find(const struct vr_memplan *p, const char *prefix)
{
    for (int i = 0; i < p->n; i++)
        if (!strncmp(p->row[i].what, prefix, strlen(prefix))) return p->row[i].bytes;
    return -1;
}

int main(void)
{
    struct vr_model_config c;
    ok(vr_init_preset("3b", &c) == 0, "the 3b preset");
    struct vr_memplan_opts o;
    vr_memplan_opts_init(&o);
    o.ref = 1;
    struct vr_memplan p;
    vr_memplan_make(&c, &o, &p);
    /* Qwen2.5-VL-3B: 3.75 B parameters (HF's count, lm_head tied) */
    ok(fabs(p.params / 1e9 - 3.754) < 0.01, "3b: %.4f B parameters", p.params / 1e9);
    ok(p.params == vr_init_param_count(&c), "the count equals vr-init's (%lld)", (long long)vr_init_param_count(&c));
    ok(p.trainable == p.params, "full-parameter: every parameter trains");
    ok(find(&p, "weights") == 2.0 * p.params, "bf16 weights: 2 bytes each");
    ok(find(&p, "master") == 4.0 * p.params, "fp32 master: 4 bytes each");
    ok(find(&p, "AdamW") == 8.0 * p.params, "two fp32 moments: 8 bytes each");
    ok(find(&p, "reference") == 2.0 * p.params, "the reference model in bf16");
    /* checkpointed activations of 16384 tokens: 36 layers x 2048 floats a token
     * (block inputs) plus one layer's set 4*2048 + 2*256 + 16 + 3*11008 + 2 */
    double want = 16384.0 * (36 * 2048 + 4 * 2048 + 2 * 256 + 16 + 3 * 11008 + 2) * 4;
    ok(find(&p, "activations") == want, "activations %.3f GB = %.3f GB", find(&p, "activations") / 1e9, want / 1e9);
    ok(find(&p, "LM-head") == 1024.0 * 151936 * 4 + 1024.0 * 2048 * 4, "logits chunk: 1024 rows x 151936");
    /* an 80 GB card has 79.6 GiB, about 78 usable: this leaves nothing */
    ok(p.total > 77.0 * (1 << 30), "full fp32 state and a reference fill an 80 GB card (%.1f GiB)", p.total / (1 << 30));
    o.moment_bytes = 2;
    o.ref = 0;
    vr_memplan_make(&c, &o, &p);
    ok(p.total < 64.0 * (1 << 30), "bf16 moments and no reference copy: %.1f GiB", p.total / (1 << 30));
    o.lora_r = 64;
    vr_memplan_make(&c, &o, &p);
    /* r (in + out) over 36 layers of q (2048,2048), k, v (256,2048), o, gate, up (11008,2048), down, and lm_head */
    int64_t per = 64 * ((2048 + 2048) + 2 * (256 + 2048) + (2048 + 2048) + 3 * (11008 + 2048));
    ok(p.trainable == 36 * per + 64 * (151936 + 2048), "LoRA r=64: %lld trained", (long long)p.trainable);
    return done_testing();
}

/* optim.c: AdamW, gradient clipping and schedules (see optim.h) — the CPU
 * reference and the path vr-update takes on the CPU.
 *
 * How torch computes each AdamW line on float32 tensors, which this file
 * copies (checked against torch 2.15's CPU kernels by tests/unit/optim.c):
 *   - a Python float applied to a float32 tensor (mul_, lerp_ weight,
 *     addcmul_/addcdiv_ value, division, add_) is first rounded to float32;
 *     the bias corrections and step size are Python doubles (pow, /, **0.5);
 *   - lerp_ is one fused multiply-add: m + w*(g-m) when |w| < 0.5, else
 *     g + (w-1)*(g-m) (ATen's lerp_vec: fmadd(coeff, end - start, base));
 *   - addcmul_ is v + (value*g)*g with the last multiply-add fused (GCC
 *     contracts ATen's `self + value * t1 * t2`);
 *   - exp_avg_sq.sqrt() / bc2_sqrt is a true float32 division and
 *     param.addcdiv_ is w + (value*m)/denom, unfused.
 * The one op that is not copied: torch's CPU sqrt goes through MKL's vsSqrt,
 * which is within 1 ulp of the exact square root but not always equal to
 * it; here sqrtf is exact. So m and v are bit-exact with torch, and w is
 * bit-exact with torch's ops given a correctly rounded sqrt (and within 1
 * ulp per step of torch's CPU result). */
#include "optim.h"

#include "cpu/pool.h"

#include <math.h>
#include <string.h>

/* the fused operations are the specification: no other contraction */
#pragma GCC optimize("fp-contract=off")

int vr_optstate_init(struct vr_optstate *s, size_t n, struct vr_err *err)
{
    memset(s, 0, sizeof *s);
    if (n > SIZE_MAX / (2 * sizeof(float)))
        return vr_err_set(err, VR_ERR_SYS, NULL, 0, "optimizer state of %zu floats is too big", n);
    /* zeroed now, in huge pages: a calloc'ed page would fault twice in the first step */
    float *p = vr_malloc_big((n ? 2 * n : 1) * sizeof(float), 1);
    if (!p)
        return vr_err_set(err, VR_ERR_SYS, NULL, 0,
                          "out of memory for the optimizer state (%zu bytes)", 2 * n * sizeof(float));
    s->n = n;
    s->m = p;
    s->v = p + n;
    return 0;
}

void vr_optstate_release(struct vr_optstate *s)
{
    free(s->m);
    memset(s, 0, sizeof *s);
}

/* x86-64 builds without -mfma get a second copy compiled for FMA hardware, so
 * fmaf is one instruction there instead of a call into libm (same result). */
#if defined(__x86_64__) && !defined(__FMA__)
#define VR_FMA_CLONES __attribute__((target_clones("fma", "default")))
#else
#define VR_FMA_CLONES
#endif

/* Scalar (sqrtf's errno keeps GCC from vectorising): about 5 ns an element
 * on one core, mostly memory traffic (7 floats an element). */
VR_FMA_CLONES
static void adamw_range(const struct vr_adamw_consts *k, float *restrict w, const float *restrict g,
                        float *restrict m, float *restrict v, size_t n)
{
    /* lerp's two forms: m + w1*(g-m) for a small weight, else g + (w1-1)*(g-m) */
    const float a = k->small ? k->w1 : k->w1 - 1.0f;
    const float decay = k->do_decay ? k->decay : 1.0f; /* *1 is exact */
    const float b2 = k->b2, w2 = k->w2, bc2s = k->bc2s, eps = k->eps, ns = k->neg_step;
    const int small = k->small;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i], mi = m[i];
        float wi = w[i] * decay;                         /* param.mul_(1 - lr*wd) */
        mi = fmaf(a, gi - mi, small ? mi : gi);          /* exp_avg.lerp_(grad, 1-beta1) */
        float vi = v[i] * b2;                            /* exp_avg_sq.mul_(beta2) */
        vi = fmaf(w2 * gi, gi, vi);                      /*   .addcmul_(grad, grad, 1-beta2) */
        float denom = sqrtf(vi) / bc2s + eps;            /* (sqrt(v) / bc2s).add_(eps) */
        wi = wi + (ns * mi) / denom;                     /* param.addcdiv_(m, denom, -step_size) */
        m[i] = mi;
        v[i] = vi;
        w[i] = wi;
    }
}

#define ADAMW_PIECE ((size_t)1 << 16)

struct adamw_job {
    const struct vr_adamw_consts *k;
    const struct vr_range *r;
    int nr;
    float *w;
    const float *g;
    struct vr_optstate *s;
    size_t *first;
    int unused;
};

/* pieces [b, e) of all ranges, in order */
static void adamw_pieces(void *ctx, int b, int e)
{
    struct adamw_job *j = ctx;
    int i = 0;
    while (i < j->nr && j->first[i + 1] <= (size_t)b) i++;
    for (size_t p = (size_t)b; p < (size_t)e; p++) {
        while (j->first[i + 1] <= p) i++;
        size_t lo = (p - j->first[i]) * ADAMW_PIECE, n = j->r[i].n - lo;
        if (n > ADAMW_PIECE) n = ADAMW_PIECE;
        size_t a = j->r[i].off + lo;
        adamw_range(j->k, j->w + a, j->g + a, j->s->m + a, j->s->v + a, n);
    }
}

void vr_adamw_consts(const struct vr_adamw *o, double lr, int64_t step, struct vr_adamw_consts *k)
{
    VR_ASSERT(step >= 1);
    /* torch: step = state_steps[i].item(); Python doubles from here on */
    double bc1 = 1.0 - pow(o->beta1, (double)step);
    double bc2 = 1.0 - pow(o->beta2, (double)step);
    double step_size = lr / bc1;
    double bc2_sqrt = pow(bc2, 0.5); /* bias_correction2**0.5 */
    *k = (struct vr_adamw_consts){
        .decay = (float)(1.0 - lr * o->weight_decay),
        .do_decay = o->weight_decay != 0,
        .w1 = (float)(1.0 - o->beta1),
        .b2 = (float)o->beta2,
        .w2 = (float)(1.0 - o->beta2),
        .bc2s = (float)bc2_sqrt,
        .eps = (float)o->eps,
        .neg_step = (float)(-step_size),
    };
    k->small = fabsf(k->w1) < 0.5f; /* ATen's is_lerp_weight_small, on the float weight */
}

void vr_adamw_step(const struct vr_adamw *o, double lr, int64_t step, const struct vr_range *r,
                   int nr, float *w, const float *g, struct vr_optstate *s)
{
    struct vr_adamw_consts k;
    vr_adamw_consts(o, lr, step, &k);
    /* every element is its own computation: cut each range into 64K-element
     * pieces and run them on the thread pool (bit-identical to a serial loop) */
    struct adamw_job j = {&k, r, nr, w, g, s, NULL, 0};
    size_t pieces = 0;
    for (int i = 0; i < nr; i++) {
        VR_ASSERT(r[i].off + r[i].n <= s->n);
        pieces += (r[i].n + ADAMW_PIECE - 1) / ADAMW_PIECE;
    }
    if (pieces <= 1 || pieces > INT32_MAX) {
        for (int i = 0; i < nr; i++) {
            size_t a = r[i].off;
            adamw_range(&k, w + a, g + a, s->m + a, s->v + a, r[i].n);
        }
        return;
    }
    j.first = vr_xmalloc(((size_t)nr + 1) * sizeof *j.first); /* the first piece of each range */
    size_t at = 0;
    for (int i = 0; i < nr; i++) {
        j.first[i] = at;
        at += (r[i].n + ADAMW_PIECE - 1) / ADAMW_PIECE;
    }
    j.first[nr] = at;
    vr_parallel_for((int)pieces, adamw_pieces, &j);
    free(j.first);
}

double vr_clip_grad_norm(const struct vr_range *r, int nr, float *g, double max_norm)
{
    /* torch: norms = [vector_norm(g) for g] (float32 each), total =
     * vector_norm(stack(norms)). Each sum here is in double and each norm
     * rounded to float32 where torch holds one. */
    double sum = 0;
    for (int i = 0; i < nr; i++) {
        const float *p = g + r[i].off;
        double s = 0;
        for (size_t k = 0; k < r[i].n; k++) s += (double)p[k] * p[k];
        float ni = (float)sqrt(s);
        sum += (double)ni * ni;
    }
    float total = (float)sqrt(sum);
    if (max_norm > 0) {
        /* clip_coef = max_norm / (total_norm + 1e-6): a float32 tensor plus a
         * Python float, then Tensor.__rtruediv__ = reciprocal() * max_norm */
        float coef = (1.0f / (total + (float)1e-6)) * (float)max_norm;
        if (coef > 1.0f) coef = 1.0f; /* clamp(max=1.0); NaN stays NaN */
        for (int i = 0; i < nr; i++) {
            float *p = g + r[i].off;
            for (size_t k = 0; k < r[i].n; k++) p[k] *= coef;
        }
    }
    return total;
}

int vr_first_nonfinite(const struct vr_range *r, int nr, const float *g)
{
    for (int i = 0; i < nr; i++) {
        const float *p = g + r[i].off;
        /* finite x gives x*0 == ±0, inf or NaN gives NaN: the sum is 0
         * unless the range holds one, and the loop vectorises */
        float s = 0;
        for (size_t k = 0; k < r[i].n; k++) s += p[k] * 0.0f;
        if (s == 0) continue;
        for (size_t k = 0; k < r[i].n; k++)
            if (!isfinite(p[k])) return i;
    }
    return -1;
}

static const char *const sched_names[] = {"constant", "constant_with_warmup", "linear", "cosine"};

int vr_schedule_parse(const char *name, enum vr_schedule *out)
{
    for (int i = 0; i < (int)(sizeof sched_names / sizeof *sched_names); i++)
        if (strcmp(name, sched_names[i]) == 0) {
            *out = (enum vr_schedule)i;
            return 0;
        }
    return -1;
}

const char *vr_schedule_name(enum vr_schedule s)
{
    VR_ASSERT((unsigned)s < sizeof sched_names / sizeof *sched_names);
    return sched_names[s];
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

double vr_lr_at(enum vr_schedule s, double base_lr, int64_t step, int64_t warmup, int64_t total)
{
    /* transformers.optimization's lr lambdas, expression for expression */
    double lambda = 1.0;
    switch (s) {
    case VR_SCHED_CONSTANT:
        break;
    case VR_SCHED_CONSTANT_WARMUP:
        if (step < warmup) lambda = (double)step / fmax(1.0, (double)warmup);
        break;
    case VR_SCHED_LINEAR:
        if (step < warmup) lambda = (double)step / (double)max64(1, warmup);
        else {
            double x = (double)(total - step) / (double)max64(1, total - warmup);
            lambda = x > 0.0 ? x : 0.0; /* max(0.0, x) */
        }
        break;
    case VR_SCHED_COSINE:
        if (step < warmup) {
            lambda = (double)step / (double)max64(1, warmup);
        } else {
            double progress = (double)(step - warmup) / (double)max64(1, total - warmup);
            /* math.pi * num_cycles * 2.0 * progress, num_cycles 0.5; the
             * min_lr_rate step (f * (1 - 0) + 0) changes nothing */
            double f = 0.5 * (1.0 + cos(M_PI * 0.5 * 2.0 * progress));
            lambda = f > 0 ? f : 0.0; /* max(0, factor) */
        }
        break;
    default:
        VR_ASSERT(!"unknown schedule");
    }
    return base_lr * lambda; /* LambdaLR: base_lr * lmbda(last_epoch) */
}

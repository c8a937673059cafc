/* grpo.c: vr_grpo_token, the per-token GRPO loss of lib/update.c, against
 * TRL's formula written out here (loss = -min(r A, clip(r, 1 - e_lo, 1 + e_hi) A)
 * + beta (exp(ref - logp) - (ref - logp) - 1), r = exp(logp - old)), and its
 * derivative against central differences of that formula, on a grid of
 * ratios inside and outside the clip range, both signs of the advantage. */
#include <math.h>

#include "update.h"

#include "../tap.h"

static double trl(double lp, double old, double ref, double adv, double lo, double hi, double beta)
{
    double r = exp(lp - old), c = fmin(fmax(r, 1 - lo), 1 + hi);
    double x = ref - lp;
    return -fmin(r * adv, c * adv) + beta * (exp(x) - x - 1);
}

int main(void)
{
    const double lo = 0.2, hi = 0.28, old = -1.3, ref = -1.1;
    int bad_loss = 0, bad_grad = 0, bad_clip = 0, n = 0;
    for (int sa = -1; sa <= 1; sa += 2)
        for (int bi = 0; bi < 2; bi++)
            for (double dl = -0.6; dl <= 0.6; dl += 0.0137) {
                double adv = 0.8 * sa, beta = bi ? 0.04 : 0, lp = old + dl, d, kl;
                int clipped;
                double got = vr_grpo_token(lp, old, ref, adv, lo, hi, beta, &d, &kl, &clipped);
                double want = trl(lp, old, ref, adv, lo, hi, beta);
                /* the same few double operations: a few ulp of values near 1 */
                if (fabs(got - want) > 1e-14) bad_loss++;
                /* central difference, h = 1e-6: truncation h^2 |f'''| ~ 1e-12, rounding
                 * u / h ~ 1e-10; away from the clip boundaries (kinks) only */
                double r = exp(dl), h = 1e-6;
                int near_kink = fabs(r - (1 - lo)) < 1e-4 || fabs(r - (1 + hi)) < 1e-4;
                if (!near_kink) {
                    double fd = (trl(lp + h, old, ref, adv, lo, hi, beta) - trl(lp - h, old, ref, adv, lo, hi, beta)) / (2 * h);
                    if (fabs(d - fd) > 1e-8) bad_grad++;
                }
                if (clipped != ((r < 1 - lo && adv < 0) || (r > 1 + hi && adv > 0))) bad_clip++;
                if (beta == 0 && kl != 0) bad_clip++;
                n++;
            }
    ok(bad_loss == 0, "loss equals TRL's formula on %d points (%d off)", n, bad_loss);
    ok(bad_grad == 0, "dloss/dlogp equals the central difference (%d off)", bad_grad);
    ok(bad_clip == 0, "clipped exactly where the clipped branch wins (%d off)", bad_clip);
    /* the clip passes no gradient: ratio 1.5 > 1.28 with A > 0 */
    double d, kl;
    int clipped;
    vr_grpo_token(old + log(1.5), old, ref, 1.0, lo, hi, 0, &d, &kl, &clipped);
    ok(d == 0 && clipped, "above 1 + eps_high with A > 0: no gradient, clipped");
    vr_grpo_token(old + log(1.5), old, ref, -1.0, lo, hi, 0, &d, &kl, &clipped);
    ok(fabs(d - 1.5) < 1e-15 && !clipped, "above 1 + eps_high with A < 0: the unclipped gradient -r A = %g", d);
    return done_testing();
}

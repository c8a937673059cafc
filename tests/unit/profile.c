/* profile.c: VR_PROFILE's table (lib/profile.c). The test wraps the
 * CPU table, calls ops of known shapes and writes its report; it must hold each
 * op's calls and the FLOPs its shapes give, a total line that adds up, and
 * the ops' results must be the bytes of the unwrapped table's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops.h"

#include "../tap.h"

static void fill(float *x, int n, float s)
{
    for (int i = 0; i < n; i++) x[i] = s * (float)((i * 37 % 11) - 5) / 7.0f;
}

/* The calls, through t; writes their outputs to out (floats) and returns
 * how many. */
static int calls(const struct vr_backend *t, float *out)
{
    enum { N = 3, O = 5, I = 7 };
    float x[N * I], w[O * I], y[N * O], dy[N * O], dx[N * I], dw[O * I] = {0};
    struct vr_ws ws = {0};
    int n = 0;
    fill(x, N * I, 1);
    fill(w, O * I, 0.5f);
    fill(dy, N * O, 2);
    t->linear_fwd(y, x, w, NULL, N, O, I, &ws); /* 2*3*5*7 = 210 */
    t->linear_fwd(y, x, w, NULL, N, O, I, &ws); /* 210 */
    memcpy(out + n, y, sizeof y), n += N * O;
    t->linear_bwd(dx, dw, NULL, dy, x, w, N, O, I, &ws); /* 420 */
    t->linear_bwd(NULL, dw, NULL, dy, x, w, N, O, I, &ws); /* 210 */
    memcpy(out + n, dx, sizeof dx), n += N * I;
    memcpy(out + n, dw, sizeof dw), n += O * I;

    /* causal segments of 3 and 2 rows: 6 + 3 = 9 pairs; 2 heads of 4 */
    enum { R = 5, H = 2, K = 4 };
    float q[R * H * K], k[R * H * K], v[R * H * K], o[R * H * K], lse[R * H];
    float dq[R * H * K], dk[R * H * K], dv[R * H * K];
    fill(q, R * H * K, 1), fill(k, R * H * K, -1), fill(v, R * H * K, 0.25f);
    int cu[3] = {0, 3, 5};
    struct vr_attn_dims d = {.N = R, .H = H, .KVH = H, .K = K, .q_stride = H * K, .kv_stride = H * K,
                             .causal = 1, .cu = cu, .nseg = 2};
    t->attn_fwd(o, lse, q, k, v, &d, &ws);                      /* 4*9*2*4 = 288 */
    t->attn_bwd(dq, dk, dv, o, o, lse, q, k, v, &d, &ws);        /* 576 */
    memcpy(out + n, o, sizeof o), n += R * H * K;
    memcpy(out + n, dq, sizeof dq), n += R * H * K;

    /* a KV cache of 4 slots, 2 queries from position 3: 4 + 4 keys seen */
    struct vr_attn_dims c = {.N = 2, .H = H, .KVH = 1, .K = K, .q_stride = H * K, .causal = 1,
                             .cap = 4, .nkeys = 4, .q0 = 3};
    t->attn_infer(o, q, k, v, &c, &ws); /* 4*8*2*4 = 256 */
    memcpy(out + n, o, 2 * H * K * sizeof(float)), n += 2 * H * K;

    /* the LM head: 3 rows of 4 over a vocabulary of 6; one row has a gradient */
    float h[3 * 4], lw[6 * 4], lp[3], dh[3 * 4], dlw[6 * 4] = {0}, dl[3] = {0, 1.5f, 0};
    int32_t tgt[3] = {1, 5, 0};
    fill(h, 12, 1), fill(lw, 24, 0.3f);
    t->logp_fwd(lp, NULL, NULL, h, lw, tgt, 3, 4, 6, 1.0, &ws);          /* 2*3*4*6 = 144 */
    t->logp_bwd(dh, dlw, dl, NULL, h, lw, tgt, 3, 4, 6, 1.0, &ws);       /* 2*1*4*6*2 = 96 */
    memcpy(out + n, lp, sizeof lp), n += 3;
    memcpy(out + n, dh, sizeof dh), n += 12;
    memcpy(out + n, dlw, sizeof dlw), n += 24;

    struct vr_tensor wt = {.dtype = VR_DTYPE_F32, .ndim = 2, .shape = {O, I}, .data = w};
    t->gemv_infer(y, x, &wt, NULL, 2, &ws); /* 2*2*5*7 = 140 */
    memcpy(out + n, y, 2 * O * sizeof(float)), n += 2 * O;
    t->swiglu_fwd(y, x, w, 10); /* no FLOPs counted */
    memcpy(out + n, y, 10 * sizeof(float)), n += 10;
    vr_ws_release(&ws);
    return n;
}

/* The number after "key": on the line of op, or -1 */
static double field(const char *text, const char *op, const char *key)
{
    char pat[64], kp[32];
    snprintf(pat, sizeof pat, "\"op\":\"%s\"", op);
    snprintf(kp, sizeof kp, "\"%s\":", key);
    const char *line = strstr(text, pat);
    if (!line) return -1;
    const char *end = strchr(line, '\n'), *f = strstr(line, kp);
    if (!f || (end && f > end)) return -1;
    return atof(f + strlen(kp));
}

int main(void)
{
    static float plain[1024], timed[1024];
    char path[] = "/tmp/vr-profile-XXXXXX";
    int fd = mkstemp(path);
    ok(fd >= 0, "a temporary file");
    close(fd);
    int n = calls(&vr_backend_cpu, plain);
    const struct vr_backend *t = vr_profile_wrap(&vr_backend_cpu, path);
    int m = calls(t, timed);
    ok(m == n && !memcmp(plain, timed, (size_t)n * sizeof(float)) && !strcmp(t->name, "cpu") &&
           t->keeps_prob == 1,
       "the wrapped table computes the unwrapped one's bytes and keeps its name and keeps_prob");
    vr_profile_write();
    vr_profile_write(); /* once only: the second call and exit add nothing */

    static char text[8192];
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[len] = 0;
    unlink(path);

    /* FLOPs are exact small integers: 2 per multiply-add from the shapes */
    static const struct {
        const char *op;
        int calls;
        double flop;
    } want[] = {
        {"linear_fwd", 2, 420}, {"linear_bwd", 2, 630}, {"attn_fwd", 1, 288}, {"attn_bwd", 1, 576},
        {"attn_infer", 1, 256}, {"logp_fwd", 1, 144},   {"logp_bwd", 1, 96},  {"gemv_infer", 1, 140},
        {"swiglu_fwd", 1, 0},
    };
    int total_calls = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        double c = field(text, want[i].op, "calls"), g = field(text, want[i].op, "gflop");
        total_calls += want[i].calls;
        ok(c == want[i].calls && g * 1e9 > want[i].flop - 1e-6 && g * 1e9 < want[i].flop + 1e-6 &&
               field(text, want[i].op, "seconds") >= 0,
           "%s: %d calls, %g FLOP (got %g, %g)", want[i].op, want[i].calls, want[i].flop, c, g * 1e9);
    }
    ok(field(text, "rmsnorm_fwd", "calls") == -1, "an op that did not run has no line");
    double secs = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) secs += field(text, want[i].op, "seconds");
    ok(field(text, "total", "calls") == total_calls, "total: the calls add up (%d)", total_calls);
    double ts = field(text, "total", "seconds"), wall = field(text, "total", "wall");
    /* each line's seconds are printed to 1e-6, so the sum of 9 differs by < 1e-5 */
    ok(ts >= 0 && ts - secs < 1e-5 && secs - ts < 1e-5 && wall >= ts - 1e-5,
       "total: seconds add up, and the wall covers them (%g, %g)", ts, wall);
    const char *tot = strstr(text, "\"op\":\"total\"");
    ok(tot && !strstr(tot + 1, "\"op\":\"total\""), "written once");
    ok(strstr(text, "\"prog\":\"profile.t\"") != NULL, "lines name the program");
    return done_testing();
}

/* isa.c: the CPU's vector variant, detected once (cpuid through GCC's
 * builtins on x86-64; NEON is architectural on arm64), capped by $VR_ISA. */
#include "cpu/isa.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"c", "avx2", "avx512", "neon"};

const char *vr_isa_name(enum vr_isa isa) { return names[isa]; }

static enum vr_isa detect(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return VR_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return VR_ISA_AVX2;
#elif defined(__aarch64__)
    return VR_ISA_NEON;
#endif
    return VR_ISA_C;
}

/* Can a CPU whose best variant is `best` run `want`? The x86 variants nest. */
static int runs(enum vr_isa best, enum vr_isa want)
{
    if (want == VR_ISA_C) return 1;
    if (want == VR_ISA_NEON || best == VR_ISA_NEON) return want == best;
    return want <= best;
}

static enum vr_isa choose(void)
{
    enum vr_isa best = detect();
    const char *env = getenv("VR_ISA");
    if (!env || !*env) return best;
    for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
        if (!strcmp(env, names[i])) {
            if (runs(best, (enum vr_isa)i)) return (enum vr_isa)i;
            fprintf(stderr, "vr: VR_ISA=%s: this CPU cannot run it; using %s\n", env, names[best]);
            return best;
        }
    fprintf(stderr, "vr: VR_ISA=%s: expected c, avx2, avx512 or neon; using %s\n", env, names[best]);
    return best;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static enum vr_isa chosen;
static void init(void) { chosen = choose(); }

enum vr_isa vr_isa(void)
{
    pthread_once(&once, init);
    return chosen;
}

/* isa.h: which vector variant of the CPU ops runs (DESIGN.md §7). The best the
 * CPU supports, or the one $VR_ISA names (c, avx2, avx512, neon), so tests can
 * reach every path a machine can run. A variant the CPU cannot run is never
 * chosen: VR_ISA=avx512 on an AVX2-only CPU runs avx2 and says so once on
 * stderr. Decided on first use, then fixed for the process. */
#ifndef VR_CPU_ISA_H
#define VR_CPU_ISA_H

enum vr_isa {
    VR_ISA_C,      /* portable C */
    VR_ISA_AVX2,   /* x86-64-v3: AVX2 + FMA + F16C */
    VR_ISA_AVX512, /* AVX-512 F + BW */
    VR_ISA_NEON,   /* arm64 */
};

enum vr_isa vr_isa(void);

/* On the portable C variant's hot loops: GCC also builds them for
 * x86-64-v3 and picks that at load time where the CPU has it, so fmaf is
 * one instruction instead of a libm call. The same bits either way (a fused
 * multiply-add is exact before its one rounding); only the speed changes. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VR_C_CLONES __attribute__((target_clones("default", "arch=x86-64-v3")))
#else
#define VR_C_CLONES
#endif
const char *vr_isa_name(enum vr_isa isa);

#endif

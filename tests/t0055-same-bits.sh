#!/bin/bash
# A number does not depend on the machine: a GRPO step of vr-update and a
# sampled rollout on a tiny model write bytes whose digests are recorded
# below, measured on an AMD EPYC with AVX-512 (x86-64) and the same under
# VR_ISA=c and avx2, on arm64 (NEON, qemu-user, 2026-12-07), and reproduced
# on an Intel Xeon with AVX-512 (the same day, the second kind of CPU). Any CPU must
# give them: the float GEMM is one fma chain per element (lib/cpu/gemm.c),
# the generation ops follow one definition in every variant (isa_bits.t),
# nothing is compiled with contracted multiply-adds, and the libm calls left
# agree across machines (expf, logf, sinf, cosf, powf; erf through double).
#
# The weights' digest changed on 2026-12-07 when the training softmaxes
# (attention, LM head) took the generation ops' exp (vr_exp_def, 16 lanes)
# instead of libm's expf summed in order; the new one was measured on the
# Xeon (VR_ISA avx512, avx2 and c with OPENBLAS_CORETYPE=Haswell) and on
# arm64 under qemu, all the same. It changed again the same day when
# SwiGLU's forward and backward in training took vr_exp_def in vectors
# (vr_swiglu_span_cpu, vr_swiglu_grad_span_cpu); measured on an AMD EPYC with
# AVX2 and no AVX-512 (VR_ISA avx2, and c with OPENBLAS_CORETYPE=Haswell and
# VR_THREADS=1) and on arm64 under qemu, all the same. Both digests changed
# once more, on the same machine, when RMSNorm's sum of squares took the
# GEMV's dot product definition (16 lanes and lanes.h's tree, vr_dot_cpu);
# measured the same ways, arm64 under qemu with VR_ISA neon and c.
#
# A change that is meant to move numbers (a new op order, a new exp) changes
# these digests: record the new ones here, from any machine, and say why in
# the commit. A failure anywhere else means a machine-dependent number.
. "$(dirname "$0")/lib.sh"
tiny_update_setup || exit 1

digest() { md5sum | cut -d' ' -f1; }

test_expect_success 'a sampled rollout (images, G 4, 24 tokens) has the recorded digest' '
	vr-rollout -m policy -G 4 --max-tokens 24 --seed 5 scored.jsonl >rollout.jsonl &&
	got=$(digest <rollout.jsonl) &&
	{ test "$got" = feb9bf91506b78f09ad3720fa987b674 || { echo "rollout digest $got"; false; }; }
'
test_expect_success 'a GRPO step (reference, KL, weight decay) writes the recorded weights' '
	vr-update -m policy --ref ref --beta 0.04 --lr 1e-3 --weight-decay 0.1 -o out scored.jsonl >metrics &&
	got=$(digest <out/model.safetensors) &&
	{ test "$got" = 8c0fe4aaa9cfc871aa46fe7ad2b04ff8 || { echo "weights digest $got"; false; }; }
'
test_done

#!/bin/bash
# Every vector variant of the CPU ops this CPU can run (VR_ISA=c, avx2,
# avx512; cpu/isa.h) passes the op tests: the variants against float64
# (cpu_ops.t), every op of the seam against its plain-loop reference
# (ops_ref.t), the generation ops and the float GEMM bit for bit against
# their definitions (isa_bits.t, gemm.t), the model's float32 forward ops
# against the training pass's (train_ops.t), the model against transformers
# (qwen.t) and sampling (sample.t). Then the claim those make for whole
# programs: a GRPO step of vr-update and a sampled rollout write the same
# bytes under every variant and whichever kernel OpenBLAS picks
# (OPENBLAS_CORETYPE), so a number does not depend on the CPU. A variant this
# CPU lacks is skipped, saying so.
. "$(dirname "$0")/lib.sh"
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has() { for f; do case " $flags " in *" $f "*) ;; *) return 1 ;; esac; done; }
for isa in c avx2 avx512; do
	case $isa in
	avx2) has avx2 fma f16c || { test_skip "VR_ISA=avx2: this CPU has no AVX2+FMA+F16C"; continue; } ;;
	avx512) has avx512f avx512bw || { test_skip "VR_ISA=avx512: this CPU has no AVX-512 F+BW"; continue; } ;;
	esac
	for t in cpu_ops isa_bits ops_ref gemm train_ops qwen sample; do
		test_expect_success "VR_ISA=$isa: $t.t passes" "
			(cd '$SRC_DIR' && VR_ISA=$isa '$VR_BUILD/tests/$t.t') >out 2>err || { grep -a '^not ok' out; cat err; false; }
		"
	done
done

# vr_sgemm_pool shares rows and packed blocks out by the thread count: the
# definition's bits at 1, 2 and 3 threads (odd: a thread's chunk of rows
# ragged)
for th in 1 3; do
	test_expect_success "VR_THREADS=$th: gemm.t passes" "
		(cd '$SRC_DIR' && VR_THREADS=$th '$VR_BUILD/tests/gemm.t') >out 2>err || { grep -a '^not ok' out; cat err; false; }
	"
done

tiny_update_setup || exit 1
isas=c
has avx2 fma f16c && isas="$isas avx2"
has avx512f avx512bw && isas="$isas avx512"
test_expect_success "a GRPO step writes the same bytes under VR_ISA=${isas// /, } and OpenBLAS's Haswell and default kernels" '
	for isa in $isas; do
		for core in Haswell ""; do
			OPENBLAS_CORETYPE=$core VR_ISA=$isa vr-update -m policy --ref ref --beta 0.04 --lr 1e-3 --weight-decay 0.1 \
				-o "out.$isa.$core" scored.jsonl | jq -c "del(.seconds, .tokens_per_s)" >"m.$isa.$core" || return 1
			cmp out.c.Haswell/model.safetensors "out.$isa.$core/model.safetensors" &&
			cmp out.c.Haswell/optimizer.safetensors "out.$isa.$core/optimizer.safetensors" &&
			test_cmp m.c.Haswell "m.$isa.$core" || return 1
		done
	done
'
test_expect_success "a sampled rollout (images, G 4) is the same bytes under VR_ISA=${isas// /, }" '
	for isa in $isas; do
		VR_ISA=$isa vr-rollout -m policy -G 4 --max-tokens 24 --seed 5 scored.jsonl >"r.$isa" || return 1
		cmp r.c "r.$isa" || return 1
	done &&
	jq -e ".completions | length == 4" r.c >/dev/null
'
test_done

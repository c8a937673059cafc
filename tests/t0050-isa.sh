#!/bin/bash
# Every vector variant of the CPU ops this CPU can run (VR_ISA=c, avx2,
# avx512; cpu/isa.h) passes the op tests: the variants against float64
# (cpu_ops.t), every op of the seam against its plain-loop reference
# (ops_ref.t), the model's float32 forward ops against the training pass's
# (train_ops.t), the model against transformers (qwen.t) and sampling
# (sample.t). A variant this CPU lacks is skipped, saying so.
. "$(dirname "$0")/lib.sh"
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has() { for f; do case " $flags " in *" $f "*) ;; *) return 1 ;; esac; done; }
for isa in c avx2 avx512; do
	case $isa in
	avx2) has avx2 fma f16c || { test_skip "VR_ISA=avx2: this CPU has no AVX2+FMA+F16C"; continue; } ;;
	avx512) has avx512f avx512bw || { test_skip "VR_ISA=avx512: this CPU has no AVX-512 F+BW"; continue; } ;;
	esac
	for t in cpu_ops ops_ref train_ops qwen sample; do
		test_expect_success "VR_ISA=$isa: $t.t passes" "
			(cd '$SRC_DIR' && VR_ISA=$isa '$VR_BUILD/tests/$t.t') >out 2>err || { grep -a '^not ok' out; cat err; false; }
		"
	done
done
test_done

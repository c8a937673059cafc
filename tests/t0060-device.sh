#!/bin/bash
# VR_DEVICE chooses the op table (lib/backend.c): cpu, or cuda from
# libvr_cuda.so (kernels/backend.c). A name that is neither is a usage error;
# cuda where it cannot run (no GPU, no library) ends the program with the
# reason, never a silent fall back to the CPU. With a GPU (tests/gpu/check.sh
# runs this with VR_DEVICE unset there), greedy rollouts and one SFT step on
# the GPU's kernels match the CPU's.
. "$(dirname "$0")/lib.sh"
G=$SRC_DIR/tests/golden/update
vr-init --preset tiny --train-tokenizer "$G/corpus.txt" --vocab 256 --seed 21 --init-range 0.1 --dtype f32 -o policy 2>/dev/null &&
vr-synth --out synth --seed 3 -n 2 --splits train >/dev/null &&
vr-prep synth/train.json | vr-encode --cache cache >tasks.jsonl || exit 1
R="vr-rollout -m policy -G 2 --greedy --max-tokens 8 tasks.jsonl"

test_expect_success 'VR_DEVICE=cpu is the CPU table, as the default here' '
	$R >cpu.jsonl && test -s cpu.jsonl
'
test_expect_success 'an unknown VR_DEVICE is a usage error naming it' '
	{ VR_DEVICE=tpu $R >out 2>err; test $? = 2; } &&
	grep -q "^vr-rollout: VR_DEVICE=tpu: not a device (cpu or cuda)$" err && test ! -s out
'
test_expect_success 'VR_CUDA_LIB naming no file: cuda refused with the reason' '
	{ VR_DEVICE=cuda VR_CUDA_LIB=$PWD/none.so $R >out 2>err; test $? = 1; } &&
	grep -q "VR_DEVICE=cuda: VR_CUDA_LIB=.*none.so: no such file" err
'
if nvidia-smi >/dev/null 2>&1 && test -f "$VR_BIN/libvr_cuda.so"; then
	test_expect_success 'a GPU: greedy rollouts on the CUDA table give the CPU tokens' '
		VR_DEVICE=cuda $R >cuda.jsonl &&
		jq -c "[.completions[].tokens]" cpu.jsonl >t.cpu && jq -c "[.completions[].tokens]" cuda.jsonl >t.cuda &&
		test_cmp t.cpu t.cuda
	'
	test_expect_success 'a GPU: log-probabilities within 1e-4 of the CPU'"'"'s' '
		jq -r ".completions[].logp[]" cpu.jsonl >l.cpu && jq -r ".completions[].logp[]" cuda.jsonl >l.cuda &&
		# fp32 sums in another order over a 64-wide model: a few ulp of
		# logits near 6 (log 256), far below 1e-4
		paste l.cpu l.cuda | awk "{ d = \$1 - \$2; if (d < 0) d = -d; if (d > 1e-4) bad++ } END { exit bad > 0 }"
	'
	test_expect_success 'a GPU: one SFT step on the CUDA table, loss and gradient norm near the CPU'"'"'s' '
		vr-update -m policy --sft --lr 1e-3 -o run.cpu tasks.jsonl >m.cpu &&
		VR_DEVICE=cuda vr-update -m policy --sft --lr 1e-3 -o run.cuda tasks.jsonl >m.cuda &&
		# fp32 logits (64-wide dots) and log-sum-exps over 256 in another
		# order: each token loss within a few ulp of 6.3; their mean and the
		# gradient norm agree far below 1e-4 relative
		jq -s "(.[0].loss - .[1].loss | fabs) < 1e-4 * .[0].loss and
		       (.[0].grad_norm - .[1].grad_norm | fabs) < 1e-4 * .[0].grad_norm" m.cpu m.cuda | grep -q true
	'
elif ! nvidia-smi >/dev/null 2>&1; then
	test_expect_success 'no GPU: VR_DEVICE=cuda is refused with the reason, exit 1' '
		{ VR_DEVICE=cuda $R >out 2>err; test $? = 1; } &&
		grep -q "^vr-rollout: VR_DEVICE=cuda: \(no CUDA device\|no libvr_cuda.so\)" err && test ! -s out
	'
else
	test_skip "a GPU, but vr was built without nvcc (no $VR_BIN/libvr_cuda.so)"
fi
test_done

#!/bin/bash
# vr-eval --image-swap: is a model looking at its images? A model trained to
# name the colour of the one shape in its image (the question the same on
# every line, so only the image can tell) must pass; the same training with
# every line showing one image (a text-only model) must fail. Both trainings
# are deterministic on a machine (any thread count), and the margins leave
# room for another BLAS kernel's rounding: the seeing model's gap is ~0.42
# nats per answer token with its interval's lower end ~0.29 (the same to all
# printed digits under OPENBLAS_CORETYPE=Haswell VR_ISA=c), the blind one's
# within 2e-4 of zero, against the verdict's 0.01 and the test's 0.05.
. "$(dirname "$0")/lib.sh"
test_have_prereq JQ || skip_all "no jq"

test_expect_success 'set-up: 16 shapes of 8 colours, a tiny model, one question' '
	vr-synth --out syn --seed 3 --splits train:16 --size 56x56 --max-objects 1 --kinds attribute \
		--scale 400 --backgrounds plain >tasks.jsonl &&
	jq -r .problem tasks.jsonl >corpus.txt &&
	vr-init --preset tiny --train-tokenizer corpus.txt --vocab 300 --dtype f32 --seed 1 -o m0 2>/dev/null &&
	vr-encode --cache cache <tasks.jsonl |
		jq -c ".problem = \"What colour is the shape?\" | .completion = \"<answer>\" + (.think | capture(\"a (small|medium|large) (?<c>[a-z]+) \").c) + \"</answer>\"" >enc.jsonl &&
	test $(jq -r .completion enc.jsonl | sort -u | wc -l) -ge 6 &&
	for i in $(seq 1 150); do cat enc.jsonl; done >in.jsonl &&
	P=$(head -1 enc.jsonl | jq -c .pixels) &&
	jq -c --argjson p "$P" ".pixels = \$p" in.jsonl >blind.jsonl
'
test_expect_success 'an untrained model: no gap' '
	vr-eval --image-swap -m m0 --template none -s enc.jsonl >s0 &&
	jq -e ".check == \"image_swap\" and .lines == 16 and .paired == 16 and (.gap | fabs) < 1e-3 and .looks == false" s0 >/dev/null
'
test_expect_success 'a model trained to read the colour: a gap, and the verdict says it looks' '
	vr-update --sft -m m0 --template none --lr 3e-3 --prompts-per-step 8 -o look in.jsonl >/dev/null &&
	vr-eval --image-swap -m look --template none enc.jsonl >out &&
	tail -n 1 out | jq -e ".summary and .gap > 0.1 and .gap_lo > 0.05 and .looks == true" >/dev/null
'
test_expect_success 'one line per task (id, nll, nll_swapped, gap), then the summary' '
	test $(wc -l <out) = 17 &&
	head -16 out | jq -s -e "all(.[]; .id != null and .split == \"train\" and .tokens > 0 and
		((.gap - (.nll_swapped - .nll)) | fabs) < 1e-12)" >/dev/null &&
	head -16 out | jq -s -e "(map(.gap) | add / length) - $(tail -n 1 out | jq .gap) | fabs < 1e-12" >/dev/null
'
test_expect_success 'the same training on one image for every line: text only, it fails' '
	vr-update --sft -m m0 --template none --lr 3e-3 --prompts-per-step 8 -o blind blind.jsonl >/dev/null &&
	vr-eval --image-swap -m blind --template none -s enc.jsonl | jq -e "(.gap | fabs) < 1e-3 and .looks == false" >/dev/null
'
test_expect_success '--by groups; a line alone in its group has no partner' '
	vr-eval --image-swap -m look --template none -s --by id enc.jsonl >by &&
	test $(wc -l <by) = 16 && jq -s -e "all(.[]; .paired == 0 and .gap == null)" by >/dev/null
'
test_expect_success 'errors: no model, a model without the flag, lines not encoded' '
	{ vr-eval --image-swap enc.jsonl 2>err; test $? = 2; } && grep -q "needs --model" err &&
	{ vr-eval -m look enc.jsonl 2>err; test $? = 2; } && grep -q "goes with --image-swap" err &&
	{ vr-eval --template none enc.jsonl 2>err; test $? = 2; } &&
	head -1 tasks.jsonl >raw.jsonl && test_must_fail vr-eval --image-swap -m look raw.jsonl 2>err &&
	grep -q "raw.jsonl:1: no \"pixels\"" err
'
test_done

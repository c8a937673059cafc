#!/bin/bash
# make demo, shortened (a few steps of every phase, a few scenes), so the
# recipe cannot rot: every file of the pipeline is made, the table has a row
# per phase and split, and `make` again finds nothing to do. The demo's
# learning is measured by the full run (README, bench/RESULTS.md), not here.
. "$(dirname "$0")/lib.sh"
test_have_prereq JQ || skip_all "no jq"
command -v column >/dev/null || skip_all "no column(1) (bsdextrautils)"
SHORT="VR=$VR_BIN OUT=d N_LOOK=32 N_MIX=16 MIX=150 LOOK_STEPS=2 SFT_STEPS=3 PROMPTS=4
	GRPO_STEPS=3 GRPO_PROMPTS=2 G=4 TOKENS=16 EVAL_N=6"
PLOTS=1
command -v gnuplot >/dev/null || PLOTS=0

demo() { make -s -f "$SRC_DIR/examples/demo/Makefile" $SHORT "$@"; }

test_expect_success 'the shortened demo runs every phase' '
	if [ $PLOTS = 1 ]; then demo >out 2>err; else demo d/table.txt >out 2>err; fi &&
	for p in look sft grpo; do test -f d/$p.done && test -f d/$p/model.safetensors || exit 1; done &&
	test $(wc -l <d/look.metrics.jsonl) = 2 && test $(wc -l <d/sft.metrics.jsonl) = 3 &&
	test $(wc -l <d/grpo.metrics.jsonl) = 3 &&
	jq -e ".rewards.format != null and .rewards.iou != null" d/grpo.metrics.jsonl >/dev/null
'
test_expect_success 'the table: a row per phase and split, the image-swap gap on val' '
	test $(grep -c -E "^(init|sft|grpo) +(val|ood) +6 " d/table.txt) = 6 &&
	for p in init sft grpo; do jq -e ".check == \"image_swap\" and .paired == 6" d/eval/$p.swap.jsonl >/dev/null || exit 1; done
'
test_expect_success 'every SFT phase starts afresh from the one before (steps count from 1)' '
	for p in look sft; do jq -s -e ".[0].step == 1" d/$p.metrics.jsonl >/dev/null || exit 1; done &&
	jq -s -e ".[0].step == 1" d/grpo.metrics.jsonl >/dev/null
'
if [ $PLOTS = 1 ]; then
test_expect_success 'plots: PNG files' '
	for f in sft grpo acc; do test "$(head -c 4 d/$f.png | od -An -c | tr -d " ")" = "211PNG" || exit 1; done
'
fi
test_expect_success 'make again: nothing to do' '
	if [ $PLOTS = 1 ]; then demo -q d/table.txt d/plots.done; else demo -q d/table.txt; fi
'
test_expect_success 'a phase cut off after its last checkpoint resumes there: no step twice' '
	cp d/sft/model.safetensors before.safetensors && rm d/sft.done &&
	demo d/sft.done >/dev/null 2>&1 &&
	cmp before.safetensors d/sft/model.safetensors && test $(wc -l <d/sft.metrics.jsonl) = 3
'
test_done

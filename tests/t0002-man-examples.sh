#!/bin/bash
# The EXAMPLES of every man page run. Each "$ command" line inside .EX/.EE in
# the EXAMPLES section is run in a folder that holds the files the examples
# name (made here from the test data), and must exit 0.
. "$(dirname "$0")/lib.sh"
D=$SRC_DIR/tests/data/prep
IMG=$SRC_DIR/tests/data/img
mkdir coco gta && cp "$IMG"/*.jpg "$IMG"/*.png coco/ && cp "$IMG"/*.png "$IMG"/*.jpg gta/
cp "$D/refs.json" refcoco_val.json
cp "$D/refs_conv.jsonl" refcoco_train.jsonl
cp "$D/refs_rec.jsonl" refgta_val.jsonl
cp "$D/refs_messages.json" sft.json
printf 'datasets:\n  - json_path: refcoco_val.json\n    sampling_strategy: all\n' >rec.yaml
cp "$SRC_DIR/tests/golden/safetensors/dtypes.safetensors" model.safetensors
cp -R "$SRC_DIR/tests/golden/safetensors/sharded" ckpt
cp "$SRC_DIR/tests/golden/model/ckpt/config.json" config.json
cp -R "$SRC_DIR/tests/golden/model/ckpt" qwen
TOK=$SRC_DIR/../shared/tokenizers/qwen2.5/tokenizer.json
[ -f "$TOK" ] && cp "$TOK" tokenizer.json
jq -r '.[].problem' refcoco_val.json >corpus.txt
mkdir base && cp "$SRC_DIR/tests/golden/tokenizer/tiny.json" base/tokenizer.json
cp "$SRC_DIR/tests/data/reward/rollouts.jsonl" rollouts.jsonl
# vr-eval: a second run, a VLM-R1 rec_results file, scenes with images
jq -c '.completions[0].text = "<answer>{\"bbox_2d\": \(.solution | map(floor))}</answer>"' rollouts.jsonl >rollouts.better.jsonl
cp "$SRC_DIR/tests/golden/eval/rec_results_synth_val.json" rec_results_refcoco_val.json
"$VR_BIN/vr-synth" --out syn --seed 1 -n 3 --splits val |
	jq -c '. + {text: "<answer>{\"bbox_2d\": \(.solution | map(floor))}</answer>"}' >scenes.jsonl
for man in "$SRC_DIR"/man/man1/vr-*.1; do
	name=$(basename "$man" .1)
	[ -x "$VR_BIN/$name" ] || continue
	sed -n '/^\.SH EXAMPLES/,/^\.SH/p' "$man" |
		sed -n '/^\.EX/,/^\.EE/p' | grep '^\$ ' | sed 's/^\$ //; s/\\-/-/g; s/\\e/\\/g' >"ex.$name"
	n=0
	while IFS= read -r cmd; do
		n=$((n + 1))
		test_expect_success "$name example $n: $cmd" "$cmd >/dev/null"
	done <"ex.$name"
done
test_done

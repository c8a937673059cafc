#!/bin/bash
# A run in phases (SFT, then GRPO from its weights): --fresh-optimizer starts
# AdamW and the step count afresh from a folder that holds an optimizer
# state, exactly as from a copy of its weights alone; the SFT target of a
# task with "think" has the R1 shape; the metrics line carries each reward
# term's mean over the batch.
. "$(dirname "$0")/lib.sh"
test_have_prereq JQ || skip_all "no jq"
G=$SRC_DIR/tests/golden/update

test_expect_success 'set-up: scenes, a tiny model, an SFT run of 3 steps' '
	vr-synth --out synth --seed 4 -n 6 --splits train --size 112x112 >tasks.jsonl &&
	vr-init --preset tiny --train-tokenizer "$G/corpus.txt" --vocab 256 --seed 21 --init-range 0.1 --dtype f32 -o policy 2>/dev/null &&
	vr-encode --cache cache <tasks.jsonl >enc.jsonl &&
	vr-update --sft -m policy --lr 1e-3 --prompts-per-step 2 -o sft enc.jsonl >sft.metrics &&
	jq -e ".step == 3" sft/trainer_state.json >/dev/null && test -f sft/optimizer.safetensors
'
test_expect_success 'the SFT answer of a task with "think": <think>THINK</think><answer>BOX</answer>' '
	head -1 tasks.jsonl | vr-tokenize -m policy --chat --assistant | jq -r .text >chat &&
	think=$(head -1 tasks.jsonl | jq -r .think) &&
	grep -F -q "<|im_start|>assistant
<think>$think</think><answer>{\"bbox_2d\": [" chat &&
	head -1 tasks.jsonl | jq -c "del(.think)" | vr-tokenize -m policy --chat --assistant | jq -r .text | grep -q "^<answer>"
'
test_expect_success 'rollouts of the SFT model, scored' '
	vr-rollout -m sft -G 4 --max-tokens 8 --seed 3 <enc.jsonl | vr-reward --reward format,iou,iou50 >scored.jsonl &&
	test $(wc -l <scored.jsonl) = 6
'
test_expect_success '--fresh-optimizer from the SFT folder equals starting from its weights alone' '
	mkdir bare && cp sft/*.json sft/model.safetensors bare/ && rm -f bare/trainer_state.json &&
	vr-update -m sft --fresh-optimizer --beta 0 --lr 1e-4 --prompts-per-step 3 -o g1 scored.jsonl >g1.metrics &&
	vr-update -m bare --beta 0 --lr 1e-4 --prompts-per-step 3 -o g2 scored.jsonl >g2.metrics &&
	cmp g1/model.safetensors g2/model.safetensors && cmp g1/optimizer.safetensors g2/optimizer.safetensors &&
	jq -s -e "map(.step) == [1, 2]" g1.metrics >/dev/null
'
test_expect_success 'without it, AdamW and the step count go on from SFT (steps 4, 5)' '
	vr-update -m sft --beta 0 --lr 1e-4 --prompts-per-step 3 -o g3 scored.jsonl >g3.metrics &&
	jq -s -e "map(.step) == [4, 5]" g3.metrics >/dev/null &&
	! cmp -s g1/model.safetensors g3/model.safetensors
'
test_expect_success '--resume with --fresh-optimizer continues the run, not the start' '
	vr-update -m sft --fresh-optimizer --beta 0 --lr 1e-4 --prompts-per-step 3 --save-every 1 -o g4 <(head -3 scored.jsonl) >/dev/null &&
	vr-update -m sft --fresh-optimizer --resume --beta 0 --lr 1e-4 --prompts-per-step 3 --save-every 1 -o g4 scored.jsonl >g4.metrics &&
	jq -s -e "map(.step) == [2]" g4.metrics >/dev/null &&
	cmp g1/model.safetensors g4/model.safetensors
'
test_expect_success 'metrics: each reward term'"'"'s mean over the batch'"'"'s completions' '
	jq -s -c "[.[0:3][] | .completions[] | .rewards] | {format: (map(.format) | add / length), iou: (map(.iou) | add / length), iou50: (map(.iou50) | add / length)}" scored.jsonl >want &&
	head -1 g1.metrics | jq -c ".rewards" >got &&
	jq -e -n --slurpfile a want --slurpfile b got "[\$a[0], \$b[0]] as [\$x, \$y] | ([\"format\", \"iou\", \"iou50\"] | all(. as \$k | ((\$x[\$k] - \$y[\$k]) | fabs) < 1e-8)) and (\$y | keys_unsorted) == [\"format\", \"iou\", \"iou50\"]" >/dev/null &&
	jq -e ".rewards == null" sft.metrics >/dev/null
'
test_done

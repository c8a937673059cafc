#!/bin/bash
# examples/refcoco/Makefile end to end on a vr-init checkpoint, with vr-synth
# scenes laid out as VLM-R1's rec_jsons_processed (refcoco_train, the three
# val files, LISA and RefGTA tests): SFT, GRPO in the loop, eval of the three
# phases on five splits, the table; then `make` again does nothing.
. "$(dirname "$0")/lib.sh"
vr-synth --out syn --seed 5 -n 6 --splits train,val,ood >/dev/null &&
mkdir -p data && cp syn/train.json data/refcoco_train.json &&
for s in refcoco_val refcocop_val refcocog_val; do cp syn/val.json data/$s.json; done &&
cp syn/ood.json data/lisa_test.json && cp syn/ood.json data/refgta_subsample.json &&
jq -r '.[].problem' syn/train.json >corpus.txt &&
vr-init --preset tiny --train-tokenizer corpus.txt --vocab 300 --seed 1 --dtype f32 -o base 2>/dev/null || exit 1
ARGS="-f $SRC_DIR/examples/refcoco/Makefile VR=$VR_BIN MODEL=base DATA=data COCO=syn LISA=syn GTA=syn OUT=run G=2 TOKENS=8 PROMPTS=2 EVAL_N=3"

test_expect_success 'SFT, GRPO and eval of three phases on five splits' '
	make -s $ARGS >table 2>err &&
	test $(grep -c "^base\|^sft\|^grpo" table) = 15 &&
	test -s run/sft/model.safetensors && test -s run/grpo/model.safetensors &&
	test $(wc -l <run/grpo.metrics.jsonl) -ge 1 &&
	jq -s -e "length == 5 and all(.n == 3)" run/eval/grpo.summary.jsonl >/dev/null
'
test_expect_success 'the eval subsets are the pyrandom ones (seed 42)' '
	jq -r .id run/eval/refcoco_val.tasks.jsonl >got &&
	vr-prep data/refcoco_val.json --images syn --split refcoco_val --take pyrandom:3 --seed 42 | jq -r .id >want &&
	test_cmp want got
'
test_expect_success 'make again does nothing' '
	make -q $ARGS run/table.txt
'
test_done

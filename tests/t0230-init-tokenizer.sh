#!/bin/bash
# vr-init --train-tokenizer: a byte-level BPE tokenizer in Qwen2's format,
# deterministic (the same bytes as the plain trainer on a corpus of ties, see
# tests/data/bpe_train/README.md), that round-trips any text through
# vr-tokenize and sizes the model's embedding.
. "$(dirname "$0")/lib.sh"
command -v vr-tokenize >/dev/null || skip_all "vr-tokenize is not built"
for i in $(seq 1 200); do
	echo "Please provide the bounding box coordinate of the region this sentence describes: the small red circle left of the blue star $i."
	echo "<think>The circle is at the top left.</think><answer>{\"bbox_2d\": [$i, 20, 30, 40], \"label\": \"red circle\"}</answer>"
done >corpus.txt
test_expect_success 'train a tokenizer with a tiny model' '
	vr-init --preset tiny --train-tokenizer corpus.txt --vocab 500 --dtype f32 -o m 2>err &&
	jq -e ".model.type == \"BPE\" and (.added_tokens | length) == 22" m/tokenizer.json &&
	n=$(jq ".model.vocab | length" m/tokenizer.json) && test $n -gt 256 && test $n -le 500 &&
	jq -e ".added_tokens[0].content == \"<|endoftext|>\" and .added_tokens[12].content == \"<|image_pad|>\"" m/tokenizer.json
'
test_expect_success 'the same corpus gives the same tokenizer' '
	vr-init --preset tiny --train-tokenizer corpus.txt --vocab 500 --dtype f32 -o m2 2>/dev/null &&
	cmp m/tokenizer.json m2/tokenizer.json
'
test_expect_success 'config ids follow the tokenizer; the embedding holds it' '
	img=$(jq ".added_tokens[12].id" m/tokenizer.json) &&
	test "$(jq .image_token_id m/config.json)" = "$img" &&
	v=$(jq .vocab_size m/config.json) && test $((v % 64)) = 0 && test $v -gt $img &&
	vr-inspect --model m | jq -e .ok
'
test_expect_success 'merges make the corpus shorter than its bytes' '
	head -1 corpus.txt | vr-tokenize -t m/tokenizer.json | jq length >n &&
	test $(cat n) -lt 40
'
test_expect_success 'any text round-trips, unseen scripts and special tokens included' '
	printf "%s\n" "zebra 中文 🙂 $((1 << 40))" "  spaces   and	tabs" "<|im_start|>user<|im_end|>" "Ünïcödé façade" >in.txt &&
	vr-tokenize -t m/tokenizer.json in.txt | vr-tokenize -t m/tokenizer.json --decode >out.txt &&
	test_cmp in.txt out.txt
'
test_expect_success 'ties go to the smaller pair of ids: a corpus of tied counts gives the pinned tokenizer' '
	vr-init --preset tiny --train-tokenizer "$SRC_DIR/tests/data/bpe_train/ties.txt" --vocab 400 --dtype f32 -o ties 2>/dev/null &&
	cmp "$SRC_DIR/tests/data/bpe_train/ties.400.json" ties/tokenizer.json
'
test_expect_code 2 '--tokenizer and --train-tokenizer together are a usage error' '
	vr-init --preset tiny --tokenizer x.json --train-tokenizer corpus.txt -o bad
'
test_expect_success 'a missing corpus names the file' '
	test_must_fail vr-init --preset tiny --train-tokenizer nope.txt -o bad 2>err &&
	grep -q "nope.txt: cannot open" err
'
test_done

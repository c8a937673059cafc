#!/bin/bash
# vr-tokenize --chat against transformers: apply_chat_template of the official
# Qwen2.5-VL template + Qwen2_5_VLProcessor (image_grid_thw-dependent pad
# counts), for 0, 1 and 2 images of different sizes, with and without a
# system prompt, with an assistant turn, and min/max pixels. Fixtures:
# tests/golden/make_tokenizer_golden.py (tests/golden/chat/cases.txt lists the
# cases and their flags).
. "$(dirname "$0")/lib.sh"
C=$SRC_DIR/tests/golden/chat
TOK=$SRC_DIR/../shared/tokenizers/qwen2.5/tokenizer.json
[ -f "$TOK" ] || skip_all "no ../shared/tokenizers/qwen2.5/tokenizer.json beside the sources"

while IFS=$'\t' read -r name flags; do
	case $name in '#'*) continue ;; esac
	test_expect_success "chat $name ($flags): text and ids equal transformers'" "
		vr-tokenize -t '$TOK' --chat $flags <'$C/$name.in.jsonl' >out &&
		test_cmp '$C/$name.expected.jsonl' out
	"
done <"$C/cases.txt"
test_expect_success 'grids from vr-encode pixels give the same prompts as image_sizes' '
	vr-tokenize -t "$TOK" --chat <"$C/default-pixels.in.jsonl" >out &&
	test_cmp "$C/default.expected.jsonl" out
'
test_expect_success 'the ids of each prompt equal tokenizing its text' '
	cat "$C"/*.expected.jsonl >all &&
	jq -c .text all | vr-tokenize -t "$TOK" --json >ids &&
	jq -c .ids all >want && test_cmp want ids
'
test_expect_success 'the prompt starts as qwen25vl.md §5.3 says' '
	head -1 "$C/default.expected.jsonl" | jq -c ".ids[:17]" >got &&
	echo "[151644,8948,198,2610,525,264,10950,17847,13,151645,198,151644,872,198,151652,151655,151655]" >want &&
	test_cmp want got
'
test_expect_success '--model DIR takes min/max pixels from preprocessor_config.json' '
	mkdir m && cp "$TOK" m/tokenizer.json &&
	echo "{\"min_pixels\": 12544, \"max_pixels\": 200704, \"patch_size\": 14, \"merge_size\": 2}" \
		>m/preprocessor_config.json &&
	vr-tokenize -m m --chat --template none --assistant <"$C/pixels.in.jsonl" >out &&
	test_cmp "$C/pixels.expected.jsonl" out &&
	echo "{\"size\": {\"shortest_edge\": 12544, \"longest_edge\": 200704}}" >m/preprocessor_config.json &&
	vr-tokenize -m m --chat --template none --assistant <"$C/pixels.in.jsonl" >out &&
	test_cmp "$C/pixels.expected.jsonl" out
'
test_done

#!/bin/bash
# vr-tokenize without the real tokenizer: goldens of the small tokenizers made
# by tests/golden/make_tokenizer_golden.py (tiny.json: trained byte-level BPE
# with "a b" merges and normalized added tokens; mini*.json: hand-made, with
# and without ignore_merges), the CLI's modes, and its errors.
. "$(dirname "$0")/lib.sh"
G=$SRC_DIR/tests/golden/tokenizer
TINY=$G/tiny.json
PAD=$(echo "<|image_pad|>" | vr-tokenize -t "$TINY" | tr -d "[]")

test_expect_success 'tiny.json: ids equal the tokenizers library on every string of tiny.jsonl' '
	vr-tokenize -t "$TINY" --json "$G/tiny.jsonl" >out && test_cmp "$G/tiny.ids" out
'
test_expect_success 'mini.json: bytes outside the vocabulary are dropped, as tokenizers does' '
	vr-tokenize -t "$G/mini.json" --json "$G/mini.jsonl" >out && test_cmp "$G/mini.ids" out
'
test_expect_success 'mini-ignore.json: ignore_merges takes whole words from the vocabulary' '
	vr-tokenize -t "$G/mini-ignore.json" --json "$G/mini.jsonl" >out &&
	test_cmp "$G/mini-ignore.ids" out && ! cmp -s "$G/mini.ids" out
'
test_expect_success 'decode(encode(s)) == s on the tiny corpus (NFC lines aside)' '
	vr-tokenize -t "$TINY" --json "$G/tiny.jsonl" | vr-tokenize -t "$TINY" --decode --json >dec &&
	diff "$G/tiny.jsonl" dec | grep "^>" >changed;
	test $(wc -l <changed) -le 40
'
test_expect_success 'text lines and JSON strings give the same ids' '
	printf "hello world\nsecond line, 2nd\n" >t.txt &&
	vr-tokenize -t "$TINY" t.txt >a &&
	printf "\"hello world\"\n\"second line, 2nd\"\n" | vr-tokenize -t "$TINY" --json >b &&
	test_cmp a b && test $(wc -l <a) = 2
'
test_expect_success 'an empty line gives [], a final line without newline counts' '
	printf "\nlast" | vr-tokenize -t "$TINY" >out &&
	head -1 out >first && echo "[]" >want && test_cmp want first && test $(wc -l <out) = 2
'
test_expect_success '--model DIR reads DIR/tokenizer.json' '
	mkdir m && cp "$TINY" m/tokenizer.json &&
	echo "hello" | vr-tokenize -m m >a && echo "hello" | vr-tokenize -t "$TINY" >b && test_cmp a b
'
test_expect_success '--decode accepts arrays and objects with "ids"; --json prints strings' '
	echo "hi <|im_end|> there" | vr-tokenize -t "$TINY" >ids &&
	vr-tokenize -t "$TINY" --decode ids >txt && echo "hi <|im_end|> there" >want && test_cmp want txt &&
	sed "s/^/{\"ids\":/; s/\$/}/" ids | vr-tokenize -t "$TINY" --decode --json >j &&
	echo "\"hi <|im_end|> there\"" >want && test_cmp want j &&
	vr-tokenize -t "$TINY" --decode --skip-special ids >s && echo "hi  there" >want && test_cmp want s
'
test_expect_success '--split-special encodes special-token text as text' '
	echo "<|im_end|>" | vr-tokenize -t "$TINY" >a && test $(tr "," "\n" <a | wc -l) = 1 &&
	echo "<|im_end|>" | vr-tokenize -t "$TINY" --split-special >b && ! cmp -s a b &&
	test $(tr "," "\n" <b | wc -l) -gt 1
'
test_expect_success 'invalid UTF-8 is encoded as its U+FFFD replacement' '
	printf "a\377b\n" | vr-tokenize -t "$TINY" >a &&
	printf "a\357\277\275b\n" | vr-tokenize -t "$TINY" >b && test_cmp a b &&
	vr-tokenize -t "$TINY" --decode a >d && printf "a\357\277\275b\n" >want && test_cmp want d
'
test_expect_success '--chat renders tasks with pixels; ids equal tokenizing the text' '
	cat >t.jsonl <<-\EOT &&
	{"id":"x/1","images":["/a.jpg"],"pixels":{"grid_thw":[1,4,6]},"problem":"Where is the cat?","solution":[1,2,3,4]}
	{"id":"x/2","images":["/a.jpg","/b.jpg"],"pixels":[{"grid_thw":[1,2,2]},{"grid_thw":[1,4,4]}],"problem":"Two.","solution":"s"}
	EOT
	vr-tokenize -t "$TINY" --chat t.jsonl >out &&
	test $(wc -l <out) = 2 &&
	test "$(head -1 out | jq -r .id)" = x/1 &&
	test "$(head -1 out | jq "[.ids[] | select(. == $PAD)] | length")" = 6 &&
	test "$(tail -1 out | jq "[.ids[] | select(. == $PAD)] | length")" = 5 &&
	jq -c ".text" out | vr-tokenize -t "$TINY" --json >again &&
	jq -c ".ids" out >ids && test_cmp ids again &&
	jq ".n_tokens == (.ids | length)" out | sort -u >eq && echo true >want && test_cmp want eq
'
test_expect_success '--chat: image_sizes go through smart_resize (640x480 -> 391 pads)' '
	echo "{\"images\":[\"/a.jpg\"],\"image_sizes\":[[640,480]],\"problem\":\"p\",\"solution\":[1,2,3,4]}" |
	vr-tokenize -t "$TINY" --chat | jq "[.ids[] | select(. == $PAD)] | length" >n &&
	echo 391 >want && test_cmp want n
'
test_expect_success '--chat --template FILE, --system, --assistant with a completion' '
	printf "Q: {Question} A:\n" >tpl &&
	echo "{\"images\":[],\"problem\":\"why?\",\"solution\":\"x\",\"completion\":\"because\"}" |
	vr-tokenize -t "$TINY" --chat --template tpl --system S --assistant | jq -r .text >out &&
	printf "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ: why? A:<|im_end|>\n<|im_start|>assistant\nbecause<|im_end|>\n\n" >want &&
	test_cmp want out
'
test_expect_success '--stats reports the load time and speed on stderr' '
	echo hello | vr-tokenize -t "$TINY" --stats >out 2>err &&
	grep -q "^vr-tokenize: load [0-9.]* ms, 1 lines, 5 bytes, [0-9]* tokens" err
'
test_expect_code 2 'no tokenizer is a usage error' 'echo x | vr-tokenize'
test_expect_code 2 '--tokenizer and --model together are a usage error' \
	'echo x | vr-tokenize -t "$TINY" -m m'
test_expect_code 2 '--decode with --chat is a usage error' 'vr-tokenize -t "$TINY" --decode --chat'
test_expect_code 2 '--assistant without --chat is a usage error' 'vr-tokenize -t "$TINY" --assistant'
test_expect_code 2 '--skip-special without --decode is a usage error' 'vr-tokenize -t "$TINY" --skip-special'
test_expect_code 2 '--min-pixels above --max-pixels is a usage error' \
	'vr-tokenize -t "$TINY" --chat --min-pixels 100 --max-pixels 10 </dev/null'
test_expect_success 'a missing tokenizer file: exit 1, one line' '
	test_must_fail vr-tokenize -t nosuch.json </dev/null 2>err && test $(wc -l <err) = 1 &&
	grep -q "^vr-tokenize: nosuch.json: " err
'
test_expect_success 'bad input lines name file:line (exit 1)' '
	printf "[1,2]\n[1,\"x\"]\n" >bad.ids &&
	test_must_fail vr-tokenize -t "$TINY" --decode bad.ids >out 2>err &&
	grep -q "^vr-tokenize: bad.ids:2: element 2 is not a token id" err &&
	echo "[99999999]" | test_must_fail vr-tokenize -t "$TINY" --decode 2>err &&
	grep -q "<stdin>:1: element 1 is not a token id of this tokenizer" err &&
	echo "not json" | test_must_fail vr-tokenize -t "$TINY" --json 2>err &&
	grep -q "<stdin>:1: invalid JSON" err &&
	echo "[1]" | test_must_fail vr-tokenize -t "$TINY" --json 2>err &&
	grep -q "<stdin>:1: expected a JSON string" err
'
test_expect_success '--chat errors: no problem, no grid, unknown template' '
	echo "{\"images\":[\"/a.jpg\"],\"problem\":\"p\"}" | test_must_fail vr-tokenize -t "$TINY" --chat 2>err &&
	grep -q "<stdin>:1: no .pixels. or .image_sizes. to size the task.s 1 image" err &&
	grep -q "^hint: " err &&
	echo "{\"images\":[]}" | test_must_fail vr-tokenize -t "$TINY" --chat 2>err &&
	grep -q "<stdin>:1: .problem. is missing" err &&
	test_must_fail vr-tokenize -t "$TINY" --chat --template nosuch </dev/null 2>err &&
	grep -q "nosuch" err &&
	echo "{\"images\":[\"/a.jpg\"],\"pixels\":{\"grid_thw\":[1,3,3]},\"problem\":\"p\"}" |
	test_must_fail vr-tokenize -t "$TINY" --chat 2>err && grep -q "grid_thw \[1, 3, 3\]" err
'
test_expect_success '--chat with a tokenizer lacking the chat tokens fails clearly' '
	echo "{\"images\":[],\"problem\":\"p\"}" | test_must_fail vr-tokenize -t "$G/mini.json" --chat 2>err &&
	grep -q "the tokenizer has no .<|im_start|>. token" err
'
test_done

#!/bin/bash
# vr-tokenize against the tokenizers library with the real Qwen2.5 tokenizer:
# 3,105 strings (English, Chinese, other scripts, emoji, digits, whitespace
# runs, code, every special token, VLM-R1 prompts and completions,
# contractions, NFC, single characters, random code points, long texts), 520
# byte lines with invalid UTF-8, special tokens split and skipped. Fixtures:
# tests/golden/make_tokenizer_golden.py.
. "$(dirname "$0")/lib.sh"
G=$SRC_DIR/tests/golden/tokenizer
TOK=$SRC_DIR/../shared/tokenizers/qwen2.5/tokenizer.json
[ -f "$TOK" ] || skip_all "no ../shared/tokenizers/qwen2.5/tokenizer.json beside the sources"

# which lines differ, with their category, when a comparison fails
report() { # expected actual
	diff <(nl -ba "$1") <(nl -ba "$2") | grep "^<" | head -20 |
		while read -r _ n _; do echo "line $n ($(sed -n "${n}p" "$G/corpus.tags")): $(sed -n "${n}p" "$G/corpus.jsonl" | cut -c1-100)"; done
}

test_expect_success 'corpus: ids equal the tokenizers library on every string' '
	vr-tokenize -t "$TOK" --json "$G/corpus.jsonl" >ids &&
	{ cmp -s "$G/corpus.ids" ids || { report "$G/corpus.ids" ids; false; }; }
'
test_expect_success 'corpus: decode(encode(s)) == s, or its NFC where tokenizers gives that' '
	awk -F "\t" "NR == FNR { d[\$1] = \$2; next } { print (FNR in d) ? d[FNR] : \$0 }" \
		"$G/corpus.nfc" "$G/corpus.jsonl" >want &&
	vr-tokenize -t "$TOK" --decode --json ids >dec && test_cmp want dec &&
	test $(wc -l <"$G/corpus.nfc") -lt 200
'
test_expect_success 'corpus: decoding the expected ids gives the same text' '
	vr-tokenize -t "$TOK" --decode --json "$G/corpus.ids" >dec2 && test_cmp want dec2
'
test_expect_success 'invalid UTF-8: ids of the U+FFFD-replaced text, on 520 byte lines' '
	vr-tokenize -t "$TOK" "$G/raw.txt" >raw.ids && test_cmp "$G/raw.ids" raw.ids
'
test_expect_success 'invalid UTF-8: decode gives the replaced text' '
	vr-tokenize -t "$TOK" --decode raw.ids >raw.dec && test_cmp "$G/raw.decoded.txt" raw.dec
'
test_expect_success 'special tokens: --split-special equals encode_special_tokens' '
	vr-tokenize -t "$TOK" --json "$G/special.jsonl" >sp && test_cmp "$G/special.ids" sp &&
	vr-tokenize -t "$TOK" --json --split-special "$G/special.jsonl" >split &&
	test_cmp "$G/special.split.ids" split
'
test_expect_success 'special tokens: --skip-special equals skip_special_tokens' '
	vr-tokenize -t "$TOK" --decode --json --skip-special "$G/special.ids" >skip &&
	test_cmp "$G/special.skip.jsonl" skip
'
test_expect_success 'the 22 added tokens have their ids (qwen25vl.md §6.2)' '
	for t in "<|endoftext|>" "<|im_start|>" "<|im_end|>" "<|vision_start|>" "<|image_pad|>" "<|file_sep|>"; do
		printf "%s\n" "$t"
	done | vr-tokenize -t "$TOK" | tr -d "[]" | tr "\n" " " >got &&
	printf "151643 151644 151645 151652 151655 151664 " >want && test_cmp want got
'
# A gross-regression guard (a lost cache, quadratic merging), loose enough for
# ASan builds; the figures themselves are in bench/RESULTS.md.
test_expect_success 'speed: load under 2 s, corpus above 0.5 MB/s (--stats)' '
	for i in 1 2 3 4 5 6 7 8; do cat "$G/corpus.jsonl"; done >big.jsonl &&
	vr-tokenize -t "$TOK" --json --stats big.jsonl >/dev/null 2>err && cat err &&
	awk "{ for (i = 1; i < NF; i++) { if (\$(i+1) == \"ms,\") ms = \$i; if (\$(i+1) == \"MB/s\") mbs = \$i } }
		END { exit !(ms < 2000 && mbs > 0.5) }" err
'
test_done

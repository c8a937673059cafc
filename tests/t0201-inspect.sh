#!/bin/bash
# vr-inspect on the reference's files (tests/golden/safetensors, written by
# Python safetensors through tests/golden/make_safetensors.py, which also wrote
# the expected output): listing, --stats, --header, sharded folders, several
# arguments, and errors.
. "$(dirname "$0")/lib.sh"
G=$SRC_DIR/tests/golden
E=$G/safetensors
# run from tests/golden so that "file" reads as in the expected output
inspect() { (cd "$G" && vr-inspect "$@"); }

test_expect_success 'list every tensor of a file' "
	inspect safetensors/dtypes.safetensors >out &&
	test_cmp '$E/inspect.dtypes.jsonl' out
"
test_expect_success '--stats: min, max, mean, nan, inf of float tensors' "
	inspect --stats safetensors/dtypes.safetensors safetensors/floats.safetensors >out &&
	test_cmp '$E/inspect.stats.jsonl' out
"
test_expect_success '-s is --stats' "
	inspect -s safetensors/dtypes.safetensors >out &&
	grep -c '\"mean\"' out >n && echo 10 >want && test_cmp want n
"
test_expect_success 'a sharded folder lists its shards in order' "
	inspect safetensors/sharded >out &&
	test_cmp '$E/inspect.sharded.jsonl' out
"
test_expect_success 'the index file itself works the same' "
	inspect safetensors/sharded/model.safetensors.index.json >out &&
	test_cmp '$E/inspect.sharded.jsonl' out
"
test_expect_success '--header: one line per file, folders included' "
	inspect --header safetensors/dtypes.safetensors safetensors/single/ safetensors/sharded/ >out &&
	test_cmp '$E/inspect.header.jsonl' out
"
test_expect_success 'a folder with one model.safetensors' "
	inspect safetensors/single >out &&
	test \$(wc -l <out) = 2 &&
	grep -q '^{\"file\":\"safetensors/single/model.safetensors\",\"name\":\"lm_head.weight\",\"dtype\":\"BF16\",\"shape\":\[32,8\],' out
"
test_expect_success 'an unaligned tensor is listed (and summed) like any other' "
	inspect -s safetensors/unaligned.safetensors >out &&
	grep -q '\"name\":\"b.f32\",\"dtype\":\"F32\",\"shape\":\[2\],\"offset\":129,\"bytes\":8,\"min\":-2.0,\"max\":1.5,\"mean\":-0.25,\"nan\":0,\"inf\":0}' out
"
test_expect_code 1 'a bad file among good ones: the others are listed, exit 1' "
	printf 'nope' >bad.safetensors &&
	inspect safetensors/single bad.safetensors safetensors/unaligned.safetensors >out 2>err;
	rc=\$?; cat err; test \$(wc -l <out) = 4 && test \$(wc -l <err) = 1 &&
	grep -q '^vr-inspect: bad.safetensors: ' err && (exit \$rc)
"
test_expect_code 1 'a missing file' "vr-inspect no-such.safetensors"
test_expect_code 2 'no operand is a usage error' "vr-inspect"
test_expect_success 'a closed pipe ends it quietly' "
	set -- && for i in \$(seq 400); do set -- \"\$@\" '$E/floats.safetensors'; done &&
	{ vr-inspect -s \"\$@\" 2>err; echo \$? >rc; } | head -1 >/dev/null &&
	test ! -s err && grep -Eqx '0|141' rc
"
test_done

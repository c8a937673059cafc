#!/bin/bash
# vr-prep --take pyrandom:N: the records Python's random.seed(S); shuffle(data);
# data[:N] keeps (VLM-R1's eval subsets). The expected order comes from the
# committed fixture of tests/golden/make_pyrandom_golden.py (perm SEED 50 ...).
. "$(dirname "$0")/lib.sh"
test_have_prereq JQ || skip_all "no jq"
FIX=$SRC_DIR/tests/golden/pyrandom/expected.txt
IMG=$SRC_DIR/tests/data/img

# rec50.json: a VLM-R1 REC list of 50 records; record i is "thing i"
{
	echo "["
	for i in $(seq 0 49); do
		[ "$i" -gt 0 ] && echo ","
		printf '{"image": "scene_64x48.jpg", "problem": "Please provide the bounding box coordinate of the region this sentence describes: thing %d.", "solution": [%d, 1, %d, 20], "normal_caption": "thing %d"}\n' \
			"$i" "$i" $((i + 10)) "$i"
	done
	echo "]"
} >rec50.json

# perm SEED N: Python's shuffle of range(N), one index a line
perm() { grep "^perm $1 $2 " "$FIX" | cut -d" " -f4- | tr " " "\n"; }
# the ids of the first K of perm SEED 50 in rec50.json
want_ids() { perm "$1" 50 | head -"$2" | sed "s|^|rec50/|"; }

test_expect_success 'the fixture holds the 50-record shuffles' '
	test $(perm 42 50 | wc -l) = 50 && test $(perm 42 50 | sort -n | uniq | wc -l) = 50
'
test_expect_success 'pyrandom:7 --seed 42 takes the 7 records Python takes, in its order' '
	vr-prep rec50.json -i "$IMG" --take pyrandom:7 --seed 42 | jq -r .id >got &&
	want_ids 42 7 >want && test_cmp want got
'
test_expect_success 'the records are the ones named, unchanged' '
	vr-prep rec50.json -i "$IMG" --take pyrandom:7 --seed 42 | jq -r .label >got &&
	want_ids 42 7 | sed "s|rec50/|thing |" >want && test_cmp want got &&
	vr-prep rec50.json -i "$IMG" >all &&
	vr-prep rec50.json -i "$IMG" --take pyrandom:7 --seed 42 >sub &&
	for id in $(jq -r .id sub); do grep -F "\"id\":\"$id\"" all; done >picked &&
	test_cmp sub picked
'
test_expect_success 'other seeds, including one past 2^32 (two seed words)' '
	for s in 0 1 12345 4294967303 1099511627779 18446744073709551615; do
		vr-prep rec50.json -i "$IMG" --take pyrandom:9 --seed $s | jq -r .id >got &&
		want_ids $s 9 >want && test_cmp want got || return 1
	done
'
test_expect_success 'N past the list takes the whole shuffled list' '
	vr-prep rec50.json -i "$IMG" --take pyrandom:2000 --seed 42 | jq -r .id >got &&
	want_ids 42 50 >want && test_cmp want got
'
test_expect_success 'pyrandom:P% takes ceil(P*n/100) of the same order' '
	vr-prep rec50.json -i "$IMG" --take pyrandom:11% --seed 42 | jq -r .id >got &&
	want_ids 42 6 >want && test_cmp want got
'
test_expect_success 'JSONL input takes the same subset' '
	jq -c ".[]" rec50.json >rec50.jsonl &&
	vr-prep rec50.jsonl -i "$IMG" --split rec50 --take pyrandom:7 --seed 42 | jq -r .id >got &&
	want_ids 42 7 >want && test_cmp want got
'
test_expect_success '--epochs writes the same pyrandom subset every epoch' '
	vr-prep rec50.json -i "$IMG" --take pyrandom:4 --seed 42 --epochs 3 >e &&
	test "$(jq -r .epoch e | tr "\n" " ")" = "0 0 0 0 1 1 1 1 2 2 2 2 " &&
	want_ids 42 4 >w1 && cat w1 w1 w1 >want && jq -r .id e >got && test_cmp want got
'
test_expect_success 'records skipped with --skip-bad are not in the shuffled list' '
	jq ".[10].solution = [5, 5, 1, 1]" rec50.json | jq ". + [{image: \"scene_64x48.jpg\", problem: \"q\", solution: [1, 1, 9, 9], normal_caption: \"thing 50\"}]" >skip.json &&
	vr-prep skip.json -i "$IMG" --skip-bad --take pyrandom:7 --seed 42 2>err | jq -r .id >got &&
	grep -q "1 records skipped, 7 tasks written" err &&
	perm 42 50 | head -7 | awk "{ print \"skip/\" (\$1 < 10 ? \$1 : \$1 + 1) }" >want &&
	test_cmp want got
'
for bad in pyrandom:-1 pyrandom:x pyrandom: pyrandom:2.5 pyrandom:101% pyrandom:1e30; do
	test_expect_code 2 "--take $bad is a usage error" "
		vr-prep rec50.json --take $bad 2>err >out
	"
	test_expect_success "--take $bad: the message names the rule, nothing written" "
		head -1 err | grep -q \"^vr-prep: --take: '$bad': \" && test ! -s out
	"
done
test_expect_success 'a misspelt rule lists pyrandom:N among the rules' '
	vr-prep rec50.json --take pyrandm:3 2>err; test $? = 2 &&
	grep -q "expected all, first:N, end:N, random:N or pyrandom:N" err
'
test_done

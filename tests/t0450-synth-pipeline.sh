#!/bin/bash
# vr-synth | vr-prep | vr-encode end to end: every synthetic task is encoded,
# and the 336x336 training images (multiples of 28) give the unresized grid.
. "$(dirname "$0")/lib.sh"
[ -x "$VR_BIN/vr-encode" ] || skip_all "vr-encode is not built yet"
test_have_prereq JQ || skip_all "no jq"

test_expect_success 'vr-synth | vr-prep | vr-encode' '
	vr-synth --out d --seed 1 -n 4 | vr-prep --check-images | vr-encode --cache cache >enc.jsonl &&
	test $(wc -l <enc.jsonl) = 12
'
test_expect_success 'every line has its pixels in the cache' '
	jq -r ".pixels.file" enc.jsonl | while read -r f; do
		case $f in /*) ;; *) f=./$f ;; esac
		test -s "$f" || { echo "missing $f"; exit 1; }
	done
'
test_expect_success 'train images: grid 1x24x24, input 336x336' '
	jq -c "select(.split == \"train\") | [.pixels.grid_thw, .pixels.input_size]" enc.jsonl | sort -u >grids &&
	echo "[[1,24,24],[336,336]]" >want && test_cmp want grids
'
test_expect_success 'ood images keep their own aspect ratio' '
	jq -r "select(.split == \"ood\") | .pixels.grid_thw | \"\(.[1]) \(.[2])\"" enc.jsonl |
		awk "\$1 == \$2 { bad = 1 } END { exit bad }"
'
test_done

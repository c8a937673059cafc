#!/bin/bash
# vr-eval's verdicts equal VLM-R1's scoring: tests/golden/eval_golden.py
# transcribes test_rec_r1.py and test_rec_baseline.py (extract_bbox_answer,
# resize_bbox, iou) and scored a corpus of model outputs (realistic,
# degenerate and adversarial: Unicode digits and spaces, several boxes, huge
# integers, inverted and empty boxes) in each input kind vr-eval reads. The
# comparison is exact: the same double for every box and IoU.
. "$(dirname "$0")/lib.sh"
G=$SRC_DIR/tests/golden/eval
[ -f "$G/rollout.jsonl" ] || { echo "1..0 # SKIP no golden corpus"; exit 0; }

# pairs of (verdict, expected) in order; every field equal (jq compares numbers as doubles)
same() { # got want
	jq -s -c '[.[] | select(.summary | not) | {pred, iou, correct, parse}]' "$1" >got.json &&
	jq -s -c '[.[] | {pred, iou, correct, parse}]' "$2" >want.json &&
	jq -n -e --slurpfile g got.json --slurpfile w want.json '
		($g[0] | length) == ($w[0] | length) and ($w[0] | length) > 0 and
		([range($w[0] | length) as $i | select($g[0][$i] != $w[0][$i])] | length) == 0' >/dev/null || {
		jq -n -c --slurpfile g got.json --slurpfile w want.json \
			'[range($w[0] | length) as $i | select($g[0][$i] != $w[0][$i]) | {i: $i, got: $g[0][$i], want: $w[0][$i]}] | .[0:5][]'
		false
	}
}
for m in r1 baseline; do
	test_expect_success "--parse $m: every completion of the rollout lines" "
		vr-eval --all --parse $m '$G/rollout.jsonl' >out && same out '$G/rollout.$m.want.jsonl'
	"
	test_expect_success "--parse $m: plain JSONL (with and without sizes or gold boxes)" "
		vr-eval --parse $m '$G/plain.jsonl' >out && same out '$G/plain.$m.want.jsonl'
	"
	test_expect_success "--parse $m: VLM-R1's rec_results file" "
		vr-eval --parse $m '$G/rec_results_synth_val.json' >out && same out '$G/rec_results.$m.want.jsonl'
	"
done
test_expect_success 'r1 on rec_results agrees with the correct field test_rec_r1.py wrote' '
	vr-eval "$G/rec_results_synth_val.json" | jq -s -c "[.[] | select(.summary | not) | if .correct then 1 else 0 end]" >got &&
	jq -c "[.results[].correct]" "$G/rec_results_synth_val.json" >want &&
	test_cmp want got &&
	vr-eval --summary "$G/rec_results_synth_val.json" | jq ".acc * 100" >got &&
	jq ".accuracy" "$G/rec_results_synth_val.json" >want &&
	jq -n -e --slurpfile g got --slurpfile w want "(\$g[0] - \$w[0]) | fabs < 1e-9" >/dev/null
'
test_expect_success 'the corpus is at least 300 model outputs' '
	n=$(( $(jq -s "[.[].completions | length] | add" "$G/rollout.jsonl") + $(wc -l <"$G/plain.jsonl") +
		$(jq ".results | length" "$G/rec_results_synth_val.json") )) &&
	echo "# $n outputs" && test $n -ge 300
'
test_done

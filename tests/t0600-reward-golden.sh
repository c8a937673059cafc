#!/bin/bash
# vr-reward equals VLM-R1's rewards (tests/golden/reward/, made by
# reward_golden.py from VLM-R1's Python) to 1e-9, through the whole program:
# JSON in, rewards, JSON out.
. "$(dirname "$0")/lib.sh"
G=$SRC_DIR/tests/golden/reward

test_expect_success 'the golden corpus holds at least 200 completions' '
	test $(wc -l <"$G/expected.jsonl") -ge 200 &&
	test $(jq -s "map(.completions | length) | add" "$G/rollouts.jsonl") = $(wc -l <"$G/expected.jsonl")
'
test_expect_success 'format, format-strict, iou, iou50, repetition equal the golden values to 1e-9' '
	vr-reward -r format,format-strict,iou,iou50,repetition "$G/rollouts.jsonl" >scored 2>err &&
	jq -c ".id as \$id | .completions | to_entries[] | {id: \$id, index: .key} + .value.rewards" scored >got &&
	test $(wc -l <got) = $(wc -l <"$G/expected.jsonl") &&
	jq -n --slurpfile g got --slurpfile e "$G/expected.jsonl" "
		[range(\$e | length) as \$i | \$e[\$i] as \$w | \$g[\$i] as \$v |
		 (\$w | keys[]) as \$k | select(\$k != \"id\" and \$k != \"index\") |
		 select(\$v.id != \$w.id or \$v.index != \$w.index or
		        ((\$v[\$k] - \$w[\$k]) | fabs) > 1e-9) | [\$w.id, \$w.index, \$k, \$v[\$k], \$w[\$k]]]" >diff &&
	test "$(jq length diff)" = 0 || { cat diff; false; }
'
test_expect_success 'accuracy is VLM-R1 grpo_rec.py name for iou' '
	vr-reward -r accuracy "$G/rollouts.jsonl" | jq -c "[.completions[].rewards.accuracy]" >a &&
	jq -c "[.completions[].rewards.iou]" scored >b && test_cmp b a
'
test_expect_success 'every field of the rollout lines passes through' '
	jq -c "del(.group, .degenerate) | .completions |= map(del(.rewards, .reward, .advantage))" scored >back &&
	jq -c . "$G/rollouts.jsonl" >orig && test_cmp orig back
'
test_expect_success 'reward is the sum of the rewards; summary on stderr' '
	jq -e "[.completions[] | ((.rewards | add) - .reward) | fabs] | max < 1e-12" scored >/dev/null &&
	grep -q "^vr-reward: 55 groups, 440 completions; mean reward .* (format 0.5477, format-strict 0.625, iou " err
'
test_done

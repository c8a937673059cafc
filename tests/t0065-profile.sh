#!/bin/bash
# VR_PROFILE=FILE: each op of the seam timed, its matrix products' FLOPs
# counted, JSONL at exit (lib/profile.c; tests/unit/profile.c checks the
# counts). Here, through the programs: the results are the bytes of a run
# without it, ranks or runs append to one file, "-" is stderr, and a file that
# cannot be written is said without changing the run's outcome.
. "$(dirname "$0")/lib.sh"
G=$SRC_DIR/tests/golden/update
vr-init --preset tiny --train-tokenizer "$G/corpus.txt" --vocab 256 --seed 21 --init-range 0.1 --dtype f32 -o policy 2>/dev/null &&
vr-synth --out synth --seed 3 -n 2 --splits train >/dev/null &&
vr-prep synth/train.json | vr-encode --cache cache >tasks.jsonl || exit 1
R="vr-rollout -m policy -G 2 --max-tokens 8 --seed 5 tasks.jsonl"

test_expect_success 'a rollout: the same bytes, and a line per op that ran' '
	$R >plain.jsonl &&
	VR_PROFILE=prof.jsonl $R >timed.jsonl &&
	cmp plain.jsonl timed.jsonl &&
	jq -e -s "(map(.op) | index(\"gemv_infer\") != null and index(\"attn_infer\") != null) and
	          (map(select(.op == \"gemv_infer\"))[0] | .calls > 0 and .gflop > 0 and .seconds > 0) and
	          all(.[]; .prog == \"vr-rollout\")" prof.jsonl >/dev/null &&
	jq -e -s "(map(select(.op != \"total\")) | map(.calls) | add) == (map(select(.op == \"total\"))[0].calls)" prof.jsonl >/dev/null
'
test_expect_success 'an update appends to the same file: the same checkpoint, training ops counted' '
	vr-reward --reward format,iou <plain.jsonl 2>/dev/null |
		jq -c ".completions |= [to_entries[] | .value.advantage = (if .key == 0 then 0.5 else -0.5 end) | .value]" >scored.jsonl &&
	vr-update -m policy --beta 0 --lr 1e-3 -o a scored.jsonl >/dev/null &&
	VR_PROFILE=prof.jsonl vr-update -m policy --beta 0 --lr 1e-3 -o b scored.jsonl >/dev/null &&
	cmp a/model.safetensors b/model.safetensors &&
	test $(jq -s "map(select(.op == \"total\")) | length" prof.jsonl) = 2 &&
	jq -e -s "map(select(.prog == \"vr-update\") | .op) | (index(\"linear_bwd\") != null and index(\"logp_bwd\") != null)" prof.jsonl >/dev/null
'
test_expect_success 'VR_PROFILE=- is stderr' '
	VR_PROFILE=- $R >out 2>err &&
	cmp plain.jsonl out &&
	grep -q "^{\"prog\":\"vr-rollout\",\"pid\":[0-9]*,\"op\":\"total\"" err
'
test_expect_success 'a profile that cannot be written: said, and the run stands' '
	VR_PROFILE=no/such/dir/p.jsonl $R >out 2>err &&
	cmp plain.jsonl out &&
	grep -q "^vr-rollout: VR_PROFILE=no/such/dir/p.jsonl: cannot write the profile: No such file or directory$" err
'
test_done

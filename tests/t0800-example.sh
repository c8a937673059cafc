#!/bin/bash
# examples/Makefile: one GRPO step on synthetic scenes runs end to end
# (vr-synth | vr-prep | vr-init | vr-encode --vision | vr-rollout | vr-reward |
# vr-update) and is resumable: a second make does nothing.
. "$(dirname "$0")/lib.sh"
command -v make >/dev/null || skip_all "make is not installed"
# run as a user would, not as a child of the make that runs the tests
unset MAKEFLAGS MFLAGS MAKELEVEL
test_expect_success 'the example round runs' '
	make -s -f "$SRC_DIR/examples/Makefile" VR="$VR_BIN" OUT=run N=4 G=3 TOKENS=12 >summary 2>log &&
	head -1 summary | jq -e ".prompts == 4 and .completions == 12" &&
	tail -1 summary | jq -e ".step == 1 and (.loss | isnan | not)" &&
	vr-inspect --model run/step-1 >/dev/null &&
	jq -e "(.completions | length) == 3 and (.completions[0] | has(\"advantage\")) and (.vision | type) == \"object\"" run/scored.jsonl >/dev/null
'
test_expect_success 'a second make rebuilds nothing' '
	make -f "$SRC_DIR/examples/Makefile" VR="$VR_BIN" OUT=run N=4 G=3 TOKENS=12 -q run/step-1/trainer_state.json
'
test_done

#!/bin/bash
# The steady-state loop (DESIGN.md §2.1): one vr-rollout --follow and one
# vr-update --publish for the whole run. With --max-staleness 0, 20 steps of
# one prompt each end with weights and optimizer state bit-identical to 20
# one-shot pipelines (one process per stage per step), and the rollouts are
# byte-identical; so do a loop resumed halfway (--resume) and a LoRA loop;
# with --max-staleness 1 the loop runs its 20 steps. A second writer, a
# rollout with another batch size and a writer that dies are errors, never a
# hang. Each pipeline runs under timeout, so a deadlock fails instead of
# hanging CI.
. "$(dirname "$0")/lib.sh"
G=$SRC_DIR/tests/golden/update
vr-synth --out synth --seed 4 -n 20 --splits train >/dev/null &&
vr-init --preset tiny --train-tokenizer "$G/corpus.txt" --vocab 256 --seed 21 --init-range 0.1 --dtype f32 -o policy 2>/dev/null &&
vr-prep synth/train.json >tasks.jsonl || exit 1
# a random model's rewards are all zero: force advantages, as t0910 does
FORCE='.completions |= [to_entries[] | .value.advantage = (if .key == 0 then 0.7 else -0.7 end) | .value]'
ROLL="-G 2 --max-tokens 6 --seed 1"
UPD="--beta 0 --lr 1e-3 --weight-decay 0.01"
LIVE=$(mktemp -d "${TMPDIR:-/dev/shm}/vr-live.XXXXXX" 2>/dev/null || mktemp -d) || exit 1
trap 'rm -rf "$LIVE"; cd /; rm -rf "$TRASH"' EXIT

loop() { # staleness live-dir out-dir [tasks [vr-update options]]
	timeout 60 bash -c "set -o pipefail
		vr-encode --cache cache <${4:-tasks.jsonl} |
		vr-rollout --follow $2 --max-staleness $1 --prompts-per-step 1 $ROLL | tee $3.rollout |
		vr-reward --reward format,iou 2>/dev/null | jq --unbuffered -c '$FORCE' |
		vr-update -m policy --publish $2 --prompts-per-step 1 $UPD --save-every 10 --keep 1 ${5:-} -o $3 >$3.metrics"
}

test_expect_success '--max-staleness 0: 20 steps through one long-lived pipeline' '
	mkdir -p "$LIVE/s0" &&
	echo "{\"generation\":99,\"pid\":1,\"prompts_per_step\":1}" >"$LIVE/s0/generation" &&
	loop 0 "$LIVE/s0" loop0 &&
	test $(wc -l <loop0.metrics) = 20 &&
	test $(wc -l <loop0.rollout) = 20 &&
	jq -e ".step == 20 and .lines == 20" loop0/trainer_state.json >/dev/null &&
	jq -e ".generation == 20 and .prompts_per_step == 1" "$LIVE/s0/generation" >/dev/null &&
	test -d loop0/checkpoint-20 && test ! -d loop0/checkpoint-10
'
test_expect_success 'the published weights are the last checkpoint'"'"'s, generation in their metadata' '
	vr-inspect --compare loop0/model.safetensors "$LIVE/s0/model.safetensors" | jq -s -e "length > 0 and all(.rel == 0)" >/dev/null &&
	grep -a -q "\"generation\":\"20\"" "$LIVE/s0/model.safetensors"
'
test_expect_success '20 one-shot pipelines: the same rollouts, bit-identical weights and optimizer state' '
	cp -r policy cur && : >shot.rollout &&
	for k in $(seq 1 20); do
		sed -n "${k}p" tasks.jsonl | vr-encode --cache cache | vr-rollout -m cur $ROLL | tee -a shot.rollout |
			vr-reward --reward format,iou 2>/dev/null | jq -c "$FORCE" |
			timeout 60 vr-update -m cur $UPD -o cur >>shot.metrics || exit 1
	done &&
	cmp loop0.rollout shot.rollout &&
	cmp loop0/optimizer.safetensors cur/optimizer.safetensors &&
	cmp loop0/model.safetensors cur/model.safetensors &&
	jq -c "del(.seconds, .tokens_per_s)" loop0.metrics >a && jq -c "del(.seconds, .tokens_per_s)" shot.metrics >b &&
	test_cmp a b
'
test_expect_success 'a loop over 10 lines, then --resume over all 20: bit-identical to the 20-step loop' '
	head -10 tasks.jsonl >ten.jsonl &&
	loop 0 "$LIVE/r" resumed ten.jsonl &&
	test -d resumed/checkpoint-10 &&
	loop 0 "$LIVE/r" resumed tasks.jsonl --resume &&
	cmp loop0/optimizer.safetensors resumed/optimizer.safetensors &&
	cmp loop0/model.safetensors resumed/model.safetensors &&
	tail -10 resumed.rollout >a && tail -10 loop0.rollout >b && cmp a b
'
test_expect_success 'LoRA: 6 steps of the loop equal 6 one-shot steps (the adapter published each time)' '
	head -6 tasks.jsonl >six.jsonl &&
	loop 0 "$LIVE/lora" lora six.jsonl "--lora-r 4" &&
	test -f "$LIVE/lora/adapter_model.safetensors" &&
	cp -r policy lcur && : >lshot.rollout &&
	for k in $(seq 1 6); do
		sed -n "${k}p" tasks.jsonl | vr-encode --cache cache | vr-rollout -m lcur $ROLL | tee -a lshot.rollout |
			vr-reward --reward format,iou 2>/dev/null | jq -c "$FORCE" |
			timeout 60 vr-update -m lcur --lora-r 4 $UPD -o lcur >/dev/null || exit 1
	done &&
	cmp lora.rollout lshot.rollout &&
	cmp lora/adapter_model.safetensors lcur/adapter_model.safetensors &&
	cmp lora/optimizer.safetensors lcur/optimizer.safetensors
'
test_expect_success '--max-staleness 1: 20 steps, finite losses' '
	loop 1 "$LIVE/s1" loop1 &&
	test $(wc -l <loop1.metrics) = 20 &&
	test $(wc -l <loop1.rollout) = 20 &&
	jq -s -e "[.[].step] == [range(1; 21)] and all(.loss | isfinite)" loop1.metrics >/dev/null &&
	jq -e ".generation == 20" "$LIVE/s1/generation" >/dev/null
'
test_expect_code 2 'vr-rollout: --model and --follow exclude each other' 'vr-rollout -m policy --follow "$LIVE/x" </dev/null'
test_expect_code 2 'vr-rollout: --max-staleness needs --follow' 'vr-rollout -m policy --max-staleness 1 </dev/null'
test_expect_code 2 'vr-update: --publish needs --prompts-per-step' 'vr-update -m policy -o x --publish "$LIVE/x" </dev/null'
test_expect_code 2 'vr-update: DIR may not be the model folder' 'vr-update -m policy -o x --publish policy --prompts-per-step 1 </dev/null'

# A writer that stays: vr-update --publish reading from a FIFO held open.
start_writer() { # live-dir
	rm -f fifo && mkfifo fifo || return 1
	vr-update -m policy --publish "$1" --prompts-per-step 1 $UPD -o w <fifo >/dev/null 2>writer.err &
	wpid=$!
	exec 3>fifo
	for i in $(seq 1 500); do test -f "$1/generation" && return 0; sleep 0.02; done
	return 1
}
stop_writer() { # the verdict of what ran before
	local rc=$?
	kill $wpid 2>/dev/null
	exec 3>&-
	wait $wpid 2>/dev/null
	return $rc
}
test_expect_success 'a second writer on the same folder is refused' '
	start_writer "$LIVE/w1" &&
	test_must_fail vr-update -m policy --publish "$LIVE/w1" --prompts-per-step 1 $UPD -o w2 </dev/null 2>err &&
	grep -q "another process (pid $wpid) publishes here" err
	stop_writer
'
test_expect_success 'a rollout asking for other --prompts-per-step than the writer'"'"'s fails' '
	head -2 tasks.jsonl | vr-encode --cache cache >two.jsonl &&
	start_writer "$LIVE/w2" &&
	test_must_fail timeout 30 vr-rollout --follow "$LIVE/w2" --prompts-per-step 2 $ROLL two.jsonl >/dev/null 2>err &&
	grep -q "prompts-per-step 2, but the vr-update publishing .* takes 1" err
	stop_writer
'
test_expect_success 'a rollout waiting for a generation fails when the writer dies' '
	start_writer "$LIVE/w3" &&
	{ timeout 30 vr-rollout --follow "$LIVE/w3" $ROLL two.jsonl >out 2>err & } &&
	rpid=$! &&
	for i in $(seq 1 1500); do test -s out && break; sleep 0.02; done &&
	test $(wc -l <out) = 1 &&
	kill $wpid && { wait $rpid; test $? = 1; } &&
	test $(wc -l <out) = 1 &&
	grep -q "its writer (vr-update --publish, pid $wpid) is gone" err
	stop_writer
'
test_done

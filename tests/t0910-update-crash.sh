#!/bin/bash
# vr-update's checkpoints survive SIGKILL: killed at random moments during 20
# steps, the newest complete checkpoint always loads, and --resume ends with
# master weights bit-identical to an uninterrupted run, also when killed
# between its last checkpoint and the run folder's save. A batch that makes a
# gradient non-finite is refused, naming the step and the tensor, and the
# checkpoint on disk is left as it was.
. "$(dirname "$0")/lib.sh"
G=$SRC_DIR/tests/golden/update
vr-synth --out synth --seed 4 -n 10 --splits train >/dev/null &&
vr-init --preset tiny --train-tokenizer "$G/corpus.txt" --vocab 256 --seed 21 --init-range 0.1 --dtype f32 -o policy 2>/dev/null &&
vr-prep synth/train.json | vr-encode --cache cache | vr-rollout -m policy -G 2 --max-tokens 6 --seed 1 |
	vr-reward --reward format,iou |
	jq -c '.completions |= [to_entries[] | .value.advantage = (if .key == 0 then 0.7 else -0.7 end) | .value]' >scored.jsonl &&
cat scored.jsonl scored.jsonl >twenty.jsonl || exit 1
ARGS="-m policy --beta 0 --lr 1e-3 --weight-decay 0.01 --lr-schedule linear --steps 20 --prompts-per-step 1 --save-every 1 --keep 3"

test_expect_success '20 lines, one prompt per step: 20 steps' '
	test $(wc -l <twenty.jsonl) = 20 &&
	t0=$(date +%s%N) &&
	vr-update $ARGS -o whole twenty.jsonl >whole.metrics &&
	echo $(( ($(date +%s%N) - t0) / 1000000 )) >whole.ms &&
	test $(wc -l <whole.metrics) = 20 &&
	jq -e ".step == 20 and .lines == 20" whole/trainer_state.json >/dev/null &&
	test $(ls -d whole/checkpoint-* | wc -l) = 3
'
test_expect_success 'killed at random moments, --resume ends bit-identical to the uninterrupted run' '
	# kill after 10% to 90% of the uninterrupted run (at least 0.1 s to 0.9 s), so
	# that a slow machine (a sanitizer build, a loaded CI) still gets past a save
	RANDOM=7 && kills=0 && ms=$(cat whole.ms) && [ "$ms" -ge 1000 ] || ms=1000
	while :; do
		# --foreground: timeout kills vr-update alone and waits for it, so the
		# next run cannot meet the lock of one still being torn down (without
		# it timeout kills itself too, and on a loaded machine the next run
		# was refused as "another vr-update is writing this run folder")
		d=$(( ms * (RANDOM % 9 + 1) / 10 ))
		timeout --foreground -s KILL $((d / 1000)).$(printf %03d $((d % 1000))) vr-update $ARGS -o crashy --resume twenty.jsonl >>crashy.metrics 2>>err
		rc=$?
		if [ -d crashy ] && ls -d crashy/checkpoint-* >/dev/null 2>&1; then
			newest=$(ls -d crashy/checkpoint-* | sort -t- -k2 -n | tail -1) &&
			vr-inspect -m "$newest" >/dev/null || { echo "newest checkpoint $newest does not load"; exit 1; }
		fi
		[ $rc = 0 ] && break
		# anything else is a failure: say what ran (a lock still held after
		# timeout reaped its holder would show the holder here)
		[ $rc = 137 ] || { echo "rc $rc after $kills kills, ${d} ms"; tail -3 err; ps -eo pid,ppid,stat,etime,args | grep "[v]r-"; exit 1; }
		kills=$((kills + 1))
		[ $kills -lt 200 ] || exit 1
	done &&
	echo "# $kills kills" &&
	test $kills -ge 3 &&
	jq -e ".step == 20" crashy/trainer_state.json >/dev/null &&
	cmp whole/optimizer.safetensors crashy/optimizer.safetensors &&
	cmp whole/model.safetensors crashy/model.safetensors
'
test_expect_success 'killed after its last checkpoint, before the run folder: --resume writes the run folder' '
	mkdir late && cp -a whole/checkpoint-20 late/ &&
	vr-update $ARGS -o late --resume twenty.jsonl >out &&
	test ! -s out && jq -e ".step == 20 and .lines == 20" late/trainer_state.json >/dev/null &&
	cmp whole/model.safetensors late/model.safetensors &&
	cmp whole/optimizer.safetensors late/optimizer.safetensors &&
	vr-update $ARGS -o late --resume twenty.jsonl >out && test ! -s out
'
test_expect_success 'a non-finite gradient: the step is refused, the checkpoint stays' '
	vr-update -m policy --beta 0 --lr 1e-3 -o good scored.jsonl >/dev/null &&
	cp -r good before &&
	head -1 scored.jsonl | jq -c ".completions[0].advantage = 1e300" >bad.jsonl &&
	test_must_fail vr-update -m good --beta 0 --lr 1e-3 -o good bad.jsonl >out 2>err &&
	grep -q "step 2: .* is not finite; the step is skipped" err &&
	grep -q "model\.\|visual\." err &&
	test ! -s out &&
	diff -r before good
'
test_expect_success 'metrics that cannot be written (a full disk): the step taken is saved, --resume ends bit-identical' '
	test_must_fail vr-update $ARGS -o piped twenty.jsonl >/dev/full 2>err &&
	grep -q "cannot write the metrics: No space left on device" err &&
	grep -q "piped holds step 1; --resume goes on from there" err &&
	jq -e ".step == 1" piped/trainer_state.json >/dev/null &&
	vr-inspect -m piped >/dev/null &&
	vr-update $ARGS -o piped --resume twenty.jsonl >/dev/null &&
	cmp whole/model.safetensors piped/model.safetensors &&
	cmp whole/optimizer.safetensors piped/optimizer.safetensors
'
test_done

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

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
test_expect_success '20 lines, one prompt per step: 20 steps' '
	test $(wc -l <twenty.jsonl) = 20 &&
	t0=$(now_ms) &&
	vr-update $ARGS -o whole twenty.jsonl >whole.metrics &&
	echo $(( $(now_ms) - t0 )) >whole.ms &&
	test $(wc -l <whole.metrics) = 20 &&
	jq -e ".step == 20 and .lines == 20" whole/trainer_state.json >/dev/null &&
	test $(ls -d whole/checkpoint-* | wc -l) = 3 &&
	# one step alone (the faster of two runs): with the 20-step run it splits
	# the time into start-up and per step, which places the kills below
	head -1 twenty.jsonl >one.jsonl &&
	t0=$(now_ms) && vr-update $ARGS -o one one.jsonl >/dev/null &&
	t1=$(now_ms) && vr-update $ARGS -o one2 one.jsonl >/dev/null &&
	t2=$(now_ms) && a=$((t1 - t0)) && b=$((t2 - t1)) &&
	echo $(( a < b ? a : b )) >one.ms
'
test_expect_success 'killed at random moments, --resume ends bit-identical to the uninterrupted run' '
	# Each kill lands at a random moment inside the work that is left:
	# start-up plus 10% to 50% of the remaining steps, from the times measured
	# above. So a kill falls in a step or in its save, and a slow machine still
	# gets past a save; and since each kill leaves at least half the steps, the
	# third run still has 5 or more steps (2.5 steps of time) left after its
	# kill, so a fast machine cannot finish before three kills (moments fixed
	# in seconds, or fractions of the whole run, let a machine three times
	# faster than this one finish after one or two). Six such runs, then one
	# that is not killed.
	RANDOM=7 && kills=0 && w=$(cat whole.ms) && one=$(cat one.ms) &&
	step=$(( (w - one) / 19 )) && [ $step -ge 1 ] || step=1
	start=$(( one - step )) && [ $start -ge 0 ] || start=0
	for i in 1 2 3 4 5 6 7; do
		done_steps=0
		if ls -d crashy/checkpoint-* >/dev/null 2>&1; then
			done_steps=$(ls -d crashy/checkpoint-* | sed "s/.*-//" | sort -n | tail -1)
		fi
		if [ $i -lt 7 ]; then
			d=$(( start + step * (20 - done_steps) * (RANDOM % 5 + 1) / 10 ))
			[ $d -ge 1 ] || d=1 # timeout 0 would not kill at all
			# --foreground: timeout kills vr-update alone and waits for it,
			# so the next run cannot meet the lock of one still being torn
			# down (without it timeout kills itself too, and on a loaded
			# machine the next run was refused as "another vr-update is
			# writing this run folder")
			timeout --foreground -s KILL $((d / 1000)).$(printf %03d $((d % 1000))) vr-update $ARGS -o crashy --resume twenty.jsonl >>crashy.metrics 2>>err
		else
			d=none && vr-update $ARGS -o crashy --resume twenty.jsonl >>crashy.metrics 2>>err
		fi
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
	done &&
	echo "# $kills kills (start-up ${start} ms, ${step} ms a step)" &&
	test $rc = 0 && test $kills -ge 3 &&
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

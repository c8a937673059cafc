#!/bin/bash
# vr-update's saves are atomic as sets (DESIGN.md §4, lib/fileset.h): killed
# (SIGKILL) or failing (ENOSPC, a file-size limit) at any step of a save, a
# run folder's root and its checkpoint-STEP folders each hold one complete
# save, the old one or the new one, never new weights beside old optimizer
# state; a save committed but not yet in place is finished by the next
# loader or writer; the next writer removes what dead writers left; and
# --resume after 20-odd kills ends bit-identical to a run never killed.
# The steps are counted and hit by the test-only hook VR_TEST_IO (lib/fs.h):
# kill@K raises SIGKILL before the K-th I/O step of the process, fail@K
# makes it fail with ENOSPC, trace lists them.
. "$(dirname "$0")/lib.sh"
G=$SRC_DIR/tests/golden/update
vr-synth --out synth --seed 4 -n 10 --splits train >/dev/null &&
vr-init --preset tiny --train-tokenizer "$G/corpus.txt" --vocab 256 --seed 21 --init-range 0.1 --dtype f32 -o policy 2>/dev/null &&
vr-prep synth/train.json | vr-encode --cache cache | vr-rollout -m policy -G 2 --max-tokens 6 --seed 1 |
	vr-reward --reward format,iou 2>/dev/null |
	jq -c '.completions |= [to_entries[] | .value.advantage = (if .key == 0 then 0.7 else -0.7 end) | .value]' >scored.jsonl &&
head -1 scored.jsonl >first.jsonl && sed -n 2p scored.jsonl >second.jsonl && : >empty.jsonl || exit 1
U="--beta 0 --lr 1e-3 --weight-decay 0.01"
# one thread: cheaper on shared cores, and the numbers do not depend on it
VR_THREADS=1
export VR_THREADS

# same_save A B: A and B hold the same save (weights, moments, step, config)
same_save() {
	for f in model.safetensors optimizer.safetensors trainer_state.json config.json; do
		cmp -s "$1/$f" "$2/$f" || return 1
	done
}
# no_leftovers DIR: no commit record, staging folder or temporary file
no_leftovers() {
	! ls -A "$1" | grep -q '^\.commit\.json$\|^\.tmp-\|\.tmp\.'
}

# the save that the kills interrupt: a run folder (step 1) updated in place
# by one more step, as a one-shot pipeline does (-m run -o run)
test_expect_success 'setup: the old save, the new save, and the steps of writing it' '
	vr-update -m policy $U -o old first.jsonl >/dev/null &&
	cp -a old new && vr-update -m new $U -o new second.jsonl >/dev/null &&
	jq -e ".step == 1" old/trainer_state.json && jq -e ".step == 2" new/trainer_state.json &&
	cp -a old traced && VR_TEST_IO=trace vr-update -m traced $U -o traced second.jsonl 2>trace >/dev/null &&
	same_save new traced &&
	grep "^vr-test-io " trace | awk "{print \$3}" | sort | uniq -c &&
	grep -q "^vr-test-io [0-9]* rename traced/\.commit\.json$" trace
'
N=$(grep -c '^vr-test-io ' trace)
R=$(sed -n 's|^vr-test-io \([0-9]*\) rename traced/\.commit\.json$|\1|p' trace) # the commit point
echo "# a root save: $N steps, the commit record renamed into place at step $R"

# Every step from the record's creation on, and 48 drawn before it.
# (the seed is set inside the pipeline's subshell: bash reseeds RANDOM in each
# subshell, so a seed set outside it drew other steps every run)
KILLS="$({ RANDOM=15; for i in $(seq 48); do echo $((RANDOM % (R - 4) + 1)); done; } | sort -un) $(seq $((R - 3)) $((N + 1)))"
test_expect_success 'killed at any step of a root save: the root holds the old save or the new one, never a mix' '
	kills=0 hot=0 &&
	for k in $KILLS; do
		rm -rf run && cp -a old run &&
		VR_TEST_IO=kill@$k vr-update -m run $U -o run second.jsonl >/dev/null 2>err
		rc=$?
		if [ $k -le $N ]; then
			[ $rc = 137 ] || { echo "kill@$k: exit $rc"; cat err; exit 1; }
			kills=$((kills + 1))
		else
			[ $rc = 0 ] || { echo "past the last step: exit $rc"; cat err; exit 1; }
		fi
		test -e run/.commit.json && hot=$((hot + 1))
		# a loader (even k) or the next writer (odd k) finishes a committed save
		if [ $((k % 2)) = 0 ]; then
			vr-inspect -m run >/dev/null || { echo "kill@$k: vr-inspect -m run fails"; exit 1; }
		else
			vr-update -m run $U -o run empty.jsonl >/dev/null 2>err &&
			no_leftovers run || { echo "kill@$k: the next writer left"; ls -A run; cat err; exit 1; }
		fi
		test ! -e run/.commit.json || { echo "kill@$k: the record stays"; exit 1; }
		if [ $k -le $R ]; then want=old; else want=new; fi
		same_save $want run || { echo "kill@$k: not the $want save"; ls -lA run; exit 1; }
	done &&
	echo "$kills kills, $hot of them between the commit and the last rename" >root.kills &&
	test $kills -ge 50 && test $hot -ge 4
'
echo "# $(cat root.kills 2>/dev/null)"

# (the last step, removing the staging folder, is not checked: a leftover)
test_expect_success 'ENOSPC at any step of the commit and at 10 before: exit 1, naming the file; the old or the new save' '
	# the first steps, 10 drawn before the commit, and every step from it on
	for k in 1 2 3 $({ RANDOM=16; for i in $(seq 10); do echo $((RANDOM % (R - 8) + 4)); done; } | sort -un) \
	         $(seq $((R - 3)) $((N - 1))); do
		rm -rf run && cp -a old run &&
		VR_TEST_IO=fail@$k vr-update -m run $U -o run second.jsonl >/dev/null 2>err
		rc=$?
		[ $rc = 1 ] && grep -q "No space left on device" err &&
		if [ $k -le $R ]; then
			grep -q "^hint: run is as it was before this save" err && no_leftovers run &&
			same_save old run
		else
			test -e run/.commit.json && grep -q "^hint: the save is complete" err &&
			vr-inspect -m run >/dev/null && same_save new run
		fi || { echo "fail@$k: exit $rc"; cat err; ls -lA run; exit 1; }
	done
'

test_expect_success 'a file-size limit (a full disk) in the middle of the optimizer state: the root stays as it was' '
	rm -rf run && cp -a old run &&
	size=$(stat -c %s run/model.safetensors) &&
	test $(stat -c %s run/optimizer.safetensors) -gt $((2 * size)) &&
	(ulimit -f $((2 * size / 1024)); vr-update -m run $U -o run second.jsonl >/dev/null 2>err)
	rc=$? && cat err &&
	[ $rc = 1 ] &&
	grep -q "^vr-update: run/\.tmp-save-[0-9]*/optimizer\.safetensors: write failed: File too large$" err &&
	grep -q "^hint: run is as it was before this save$" err &&
	same_save old run && no_leftovers run && vr-inspect -m run >/dev/null &&
	vr-update -m run $U -o run second.jsonl >/dev/null && same_save new run
'

ARGS="-m policy $U --lr-schedule linear --steps 10 --prompts-per-step 1 --save-every 1"
test_expect_success 'killed at random steps of 10 checkpoint saves and the last root save, --resume ends bit-identical' '
	vr-update $ARGS --keep 10 -o whole scored.jsonl >/dev/null &&
	test $(ls -d whole/checkpoint-* | wc -l) = 10 &&
	VR_TEST_IO=trace vr-update $ARGS --keep 10 -o counted scored.jsonl 2>trace10 >/dev/null &&
	steps=$(grep -c "^vr-test-io " trace10) &&
	RANDOM=17 && kills=0 &&
	while :; do
		# about one checkpoint save in, on average
		k=$((RANDOM % (2 * steps / 10) + 1))
		VR_TEST_IO=kill@$k vr-update $ARGS --keep 3 -o crashy --resume scored.jsonl >/dev/null 2>err
		rc=$?
		# every folder there is one save of the uninterrupted run, whole
		for f in crashy crashy/checkpoint-*; do
			test -e $f/trainer_state.json || continue
			s=$(jq .step $f/trainer_state.json) &&
			vr-inspect -m $f >/dev/null &&
			if [ $f = crashy ]; then same_save whole $f; else same_save whole/checkpoint-$s $f; fi ||
			{ echo "kill@$k: $f (step $s) is not that save"; exit 1; }
		done
		[ $rc = 0 ] && break
		[ $rc = 137 ] || { cat err; exit 1; }
		kills=$((kills + 1))
		[ $kills -lt 200 ] || exit 1
	done &&
	echo "$kills kills" >resume.kills && test $kills -ge 8 &&
	no_leftovers crashy &&
	jq -e ".step == 10" crashy/trainer_state.json >/dev/null &&
	cmp whole/optimizer.safetensors crashy/optimizer.safetensors &&
	cmp whole/model.safetensors crashy/model.safetensors
'
echo "# $(cat resume.kills 2>/dev/null)"

test_expect_success 'killed in the root save after the last checkpoint: --resume still writes the root' '
	VR_TEST_IO=trace vr-update -m policy $U --save-every 1 -o t1 first.jsonl 2>trace1 >/dev/null &&
	k=$(sed -n "s|^vr-test-io \([0-9]*\) rename t1/\.commit\.json$|\1|p" trace1) &&
	VR_TEST_IO=kill@$k vr-update -m policy $U --save-every 1 -o k1 first.jsonl 2>/dev/null
	test $? = 137 && test -e k1/checkpoint-1/trainer_state.json && test ! -e k1/trainer_state.json &&
	vr-update -m policy $U --save-every 1 -o k1 --resume first.jsonl >out 2>err &&
	test ! -s out && same_save t1 k1
'

test_expect_success 'the next writer removes what dead writers left, whatever their pid; a reader leaves them' '
	rm -rf run && cp -a old run &&
	mkdir run/.tmp-checkpoint-3-$$ run/.tmp-save-1 && : >run/model.safetensors.tmp.$$.0badc0de &&
	: >run/.commit.json.tmp.1.12345678 &&
	vr-inspect -m run >/dev/null && test -d run/.tmp-save-1 &&
	vr-update -m run $U -o run empty.jsonl >/dev/null &&
	no_leftovers run && same_save old run
'

test_expect_success 'a damaged commit record is refused by loaders and writers, naming it' '
	rm -rf run && cp -a old run && echo "{\"staging\": \"../x\", \"move\": [], \"remove\": []}" >run/.commit.json &&
	test_must_fail vr-inspect -m run 2>err && cat err &&
	grep -q "run/\.commit\.json: not a commit record of vr" err &&
	test_must_fail vr-update -m policy $U -o run second.jsonl 2>err &&
	grep -q "run/\.commit\.json: not a commit record of vr" err && same_save old run
'
test_done

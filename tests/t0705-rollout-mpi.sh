#!/bin/bash
# vr-rollout split across processes (DESIGN.md §8): under mpirun the ranks
# share the lines and rank 0 writes them in input order, byte-identical to
# one process; --shard K/N takes every N-th line, and `paste -d '\n'` of the N
# shards, blank lines dropped, is the one-process output again. Sampling is
# keyed by (seed, task id, completion, position), never by batch or rank.
. "$(dirname "$0")/lib.sh"
G=$SRC_DIR/tests/golden/update
vr-synth --out synth --seed 5 -n 11 --splits train >/dev/null &&
vr-init --preset tiny --train-tokenizer "$G/corpus.txt" --vocab 256 --seed 21 --init-range 0.1 --dtype f32 -o policy 2>/dev/null &&
vr-prep synth/train.json | vr-encode --cache cache >tasks.jsonl || exit 1
# a small KV cache (one group at a time): the ranks go through several chunks
ROLL="-m policy -G 3 --max-tokens 10 --seed 4 --temperature 1.3 --max-prompt-tokens 600 --max-batch-tokens 1900"
vr-rollout $ROLL tasks.jsonl >one.jsonl || exit 1

test_expect_success '--shard K/N: every N-th line; the N shards pasted together are one process'"'"'s output' '
	for k in 1 2 3; do vr-rollout $ROLL --shard $k/3 tasks.jsonl >shard.$k || return 1; done &&
	test $(wc -l <shard.1) = 4 && test $(wc -l <shard.2) = 4 && test $(wc -l <shard.3) = 3 &&
	jq -r .id shard.2 >got && sed -n "2~3p" tasks.jsonl | jq -r .id >want && test_cmp want got &&
	paste -d "\n" shard.1 shard.2 shard.3 | sed "/^$/d" >merged &&
	cmp one.jsonl merged
'
test_expect_code 2 '--shard: K must be in 1..N' 'vr-rollout $ROLL --shard 4/3 tasks.jsonl'
test_expect_code 2 '--shard: K/N' 'vr-rollout $ROLL --shard 2 tasks.jsonl'

test_have_prereq MPIRUN || { test_skip "no mpirun (share/deps.sh installs openmpi-bin libopenmpi-dev)"; test_done; exit; }
if vr_mpirun 2 vr-rollout $ROLL tasks.jsonl >two.jsonl 2>two.err; then :; else
	test_expect_success 'built without MPI: an mpirun launch is refused with a hint' '
		grep -q "launched as 2 processes (mpirun, srun), but this vr-rollout was built without MPI" two.err &&
		grep -q "hint: install Open MPI" two.err
	'
	test_done
	exit
fi
test_expect_success 'mpirun -np 2: the same lines, byte for byte, in input order' '
	cmp one.jsonl two.jsonl
'
test_expect_success 'mpirun -np 3, the lines on stdin (which only rank 0 reads): the same' '
	vr_mpirun 3 vr-rollout $ROLL <tasks.jsonl >three.jsonl &&
	cmp one.jsonl three.jsonl
'
test_expect_success 'mpirun -np 2 --shard 2/3: shard 2, the same' '
	vr_mpirun 2 vr-rollout $ROLL --shard 2/3 tasks.jsonl >two.shard.2 &&
	cmp shard.2 two.shard.2
'
test_expect_success 'a bad line fails every rank, naming it' '
	{ head -3 tasks.jsonl; echo "{\"id\":\"x\",\"images\":[\"a.png\"],\"problem\":\"p\"}"; } >bad.jsonl &&
	{ vr_mpirun 2 vr-rollout $ROLL bad.jsonl >bad.out 2>bad.err; test $? != 0; } &&
	grep -q "^vr-rollout: bad.jsonl:4: " bad.err
'
test_done

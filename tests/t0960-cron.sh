#!/bin/bash
# examples/cron/ground.sh: batch grounding without gold boxes, idempotent,
# all-or-nothing after kill -9, one run at a time.
. "$(dirname "$0")/lib.sh"
GROUND=$SRC_DIR/examples/cron/ground.sh
vr-synth --out syn --seed 2 -n 16 --splits val >t.jsonl &&
jq -r '(.images[0] | sub(".*/images/"; "")) + "\t" + .label' t.jsonl >all.tsv &&
head -4 all.tsv >exprs.tsv &&
jq -r .problem t.jsonl >corpus.txt &&
vr-init --preset tiny --train-tokenizer corpus.txt --vocab 300 --seed 1 -o model 2>/dev/null || exit 1
export TOKENS=24

test_expect_success 'a box (or a parse status) per expression, in image pixels' '
	"$GROUND" model syn/images exprs.tsv boxes.jsonl 2>err &&
	test $(wc -l <boxes.jsonl) = 4 &&
	jq -e "has(\"box\") and has(\"parse\") and (.id | test(\"^val/[0-9]+[.]png#\"))" boxes.jsonl >/dev/null &&
	cut -f2 exprs.tsv >want && jq -r .expression boxes.jsonl >got && test_cmp want got
'
test_expect_success 'a second run adds nothing' '
	cp boxes.jsonl before &&
	"$GROUND" model syn/images exprs.tsv boxes.jsonl 2>err &&
	cmp before boxes.jsonl && grep -q "nothing new" err
'
test_expect_success 'new expressions only are added' '
	head -7 all.tsv >exprs.tsv &&
	"$GROUND" model syn/images exprs.tsv boxes.jsonl 2>err &&
	test $(wc -l <boxes.jsonl) = 7 && head -4 boxes.jsonl | cmp - before &&
	test $(jq -r .id boxes.jsonl | sort -u | wc -l) = 7
'
test_expect_success 'kill -9 at random moments leaves the old file or the whole new one' '
	cp all.tsv exprs.tsv && cp boxes.jsonl before &&
	for i in 1 2 3 4 5; do
		# its own process group, killed whole: killing children then the parent
		# let a pipeline forked in between live on, holding the lock
		setsid "$GROUND" model syn/images exprs.tsv boxes.jsonl 2>/dev/null &
		pid=$!
		sleep 0.$((RANDOM % 9 + 1))
		kill -9 -- -$pid 2>/dev/null; wait $pid 2>/dev/null
		while pgrep -g $pid >/dev/null; do sleep 0.05; done
		n=$(wc -l <boxes.jsonl)
		{ cmp -s before boxes.jsonl || { test $n = 16 && head -7 boxes.jsonl | cmp -s - before; }; } ||
			{ echo "run $i left $n lines"; exit 1; }
		rm -f boxes.jsonl.lock.tmp
	done &&
	"$GROUND" model syn/images exprs.tsv boxes.jsonl 2>/dev/null &&
	test $(wc -l <boxes.jsonl) = 16 && test $(jq -r .id boxes.jsonl | sort -u | wc -l) = 16 &&
	test -z "$(ls -A | grep "^\.ground\.")"
'
test_expect_success 'a second run at the same time stops at the lock' '
	exec 9>>boxes.jsonl.lock && flock 9 &&
	test_must_fail "$GROUND" model syn/images exprs.tsv boxes.jsonl 2>err &&
	grep -q "another run holds" err
'
test_done

#!/bin/bash
# vr-reward exec:CMD: a command started once answers one number per JSON
# line; a crash, a hang, garbage, too few or too many answers is a one-line
# error naming the task and the completion, exit 1, within the timeout.
. "$(dirname "$0")/lib.sh"
R=$SRC_DIR/tests/data/reward/rollouts.jsonl

# ms since the epoch
now() { date +%s%3N; }
# process $1 is dead (or a zombie left to init) within a second
gone() {
	for i in 1 2 3 4 5 6 7 8 9 10; do
		kill -0 "$1" 2>/dev/null || return 0
		grep -q "^$1 ([^)]*) Z" /proc/$1/stat 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

test_expect_success 'exec: one number per completion, in order; started once' '
	vr-reward -r "exec:echo started >>starts; jq --unbuffered .index" "$R" >out &&
	test "$(jq -c "[.completions[].rewards[\"exec:echo started >>starts; jq --unbuffered .index\"]]" out | sort -u)" = "[0,1,2,3]" &&
	test $(wc -l <starts) = 1
'
test_expect_success 'what the command reads: the line without completions, index and completion' '
	vr-reward -r "exec:tee req.jsonl | jq --unbuffered .index" "$R" >/dev/null &&
	test $(wc -l <req.jsonl) = 12 &&
	jq -e -s "map(select(has(\"completions\"))) | length == 0" req.jsonl >/dev/null &&
	test "$(jq -r -s ".[5] | [.id, .index, .completion.text[0:7], (.solution | length)] | @tsv" req.jsonl)" = "$(printf "refs/1\t1\t<think>\t4")"
'
test_expect_success 'exec weights and other rewards add up' '
	vr-reward -r "format,exec:2:jq --unbuffered .index" "$R" >w &&
	jq -e "[.completions[] | (.reward - (.rewards.format + 2 * .rewards[\"exec:jq --unbuffered .index\"])) | fabs] | max == 0" w >/dev/null
'
test_expect_success 'numbers in any float form; the command may answer after reading a whole group' '
	vr-reward -r "exec:while read a && read b && read c && read d; do printf \" 0.25e0\n0.5 \n+0.75\n1.\n\"; done" "$R" >f &&
	test "$(jq -c "[.completions[].reward]" f | sort -u)" = "[0.25,0.5,0.75,1]"
'
test_expect_success 'a command that crashes: exit 1, task and completion named' '
	t0=$(now) &&
	test_must_fail vr-reward --reward-timeout 5 -r "exec:read l; echo 0.5; read l; exit 3" "$R" >o 2>err &&
	test $(( $(now) - t0 )) -lt 4000 &&
	test ! -s o && test $(wc -l <err) = 1 &&
	grep -q "^vr-reward: .*rollouts.jsonl:1: task .refs/0. completion 1: exec:read l; echo 0.5; read l; exit 3: the command exited with status 3 after 1 of 4 answers$" err
'
test_expect_success 'a command killed by a signal' '
	test_must_fail vr-reward -r "exec:kill -SEGV \$\$" "$R" 2>err &&
	grep -q "task .refs/0. completion 0: .*killed by signal 11" err
'
test_expect_success 'a command that hangs: killed, with all it started, after --reward-timeout' '
	t0=$(now) &&
	test_must_fail vr-reward --reward-timeout 1 -r "exec:sleep 60 & echo \$! >pid; wait" "$R" >o 2>err &&
	t=$(( $(now) - t0 )) && test $t -ge 900 && test $t -lt 4000 &&
	grep -q "task .refs/0. completion 0: exec:sleep 60 & echo \$! >pid; wait: no answer within 1 s (the command was killed)$" err &&
	test -s pid && gone $(cat pid)
'
test_expect_success 'a command that prints garbage' '
	test_must_fail vr-reward -r "exec:while read l; do echo 0.5; echo hello; done" "$R" 2>err &&
	grep -q "task .refs/0. completion 1: .*answer .hello. is not a number$" err
'
test_expect_success 'nan, inf and empty lines are not numbers' '
	test_must_fail vr-reward -r "exec:while read l; do echo nan; done" "$R" 2>err &&
	grep -q "answer .nan. is not a number" err &&
	test_must_fail vr-reward -r "exec:while read l; do echo; done" "$R" 2>err &&
	grep -q "answer .. is not a number" err &&
	test_must_fail vr-reward -r "exec:while read l; do echo 1e999; done" "$R" 2>err &&
	grep -q "answer .1e999. is not a number" err
'
test_expect_success 'an answer with a NUL inside is not its prefix' '
	test_must_fail vr-reward -r "exec:while read l; do printf \"0.5\\0007\\n\"; done" "$R" 2>err &&
	grep -q "is not a number" err
'
test_expect_success 'too few answers, command waiting: timeout names the completion' '
	t0=$(now) &&
	test_must_fail vr-reward --reward-timeout 1 -r "exec:i=0; while read l; do i=\$((i + 1)); [ \$((i % 2)) = 0 ] || echo 1; done" "$R" 2>err &&
	test $(( $(now) - t0 )) -lt 4000 &&
	grep -q "task .refs/0. completion 2: .*no answer within 1 s" err
'
test_expect_success 'too few answers, command ended' '
	test_must_fail vr-reward -r "exec:i=0; while [ \$i -lt 6 ] && read l; do echo 1; i=\$((i + 1)); done" "$R" >o 2>err &&
	test $(wc -l <o) = 1 &&
	grep -q "task .refs/1. completion 2: .*the command exited with status 0 after 2 of 4 answers$" err
'
test_expect_success 'too many answers' '
	test_must_fail vr-reward -r "exec:while read l; do echo 1; echo 2; done" "$R" 2>err &&
	grep -q "more answers than the 4 completions\|beyond the answers asked for" err
'
test_expect_success 'a command that cannot be found: status 127 and a hint' '
	test_must_fail vr-reward -r "exec:no-such-reward-program" "$R" 2>err &&
	grep -q "the command exited with status 127 after 0 of 4 answers" err &&
	grep -q "^hint: status 127" err
'
test_expect_success 'a command that exits non-zero after answering everything: a warning' '
	vr-reward -r "exec:jq --unbuffered .index; exit 4" "$R" >o 2>err &&
	test $(wc -l <o) = 3 && grep -q "exited with status 4 at the end of the input" err
'
test_expect_success 'a command that keeps running after its input ends is killed' '
	t0=$(now) &&
	vr-reward --reward-timeout 1 -r "exec:jq --unbuffered .index; sleep 60" "$R" >o 2>err &&
	test $(( $(now) - t0 )) -lt 4000 && test $(wc -l <o) = 3 &&
	grep -q "did not exit within 1 s after its input ended (killed)" err
'
test_expect_success 'a closed stdout ends vr-reward and its command; the command never holds the input file' '
	for i in 1 2 3 4 5 6 7 8; do cat "$R"; done >big.jsonl &&
	vr-reward -r "exec:echo \$\$ >cmd.pid; ls -l /proc/\$\$/fd >cmd.fds; exec jq --unbuffered .index" big.jsonl | head -c 10 >/dev/null &&
	test -s cmd.pid && gone "$(cat cmd.pid)" &&
	! grep -q big.jsonl cmd.fds
'
test_expect_success 'rewards too large for advantages: an error naming the line, not "advantage": null' '
	test_must_fail vr-reward -r "exec:jq --unbuffered \"if .index == 0 then 1.7e308 else -1.7e308 end\"" "$R" >out 2>err &&
	grep -q "line refs/0: its rewards are too large for advantages" err &&
	! grep -q null out
'
test_done

#!/bin/bash
# vr-update refuses bad input with one line naming the file and line (exit 1),
# bad flags with a usage error (exit 2), and leaves no checkpoint behind.
. "$(dirname "$0")/lib.sh"
G=$SRC_DIR/tests/golden/update
vr-synth --out synth --seed 3 -n 2 --splits train >/dev/null &&
vr-init --preset tiny --train-tokenizer "$G/corpus.txt" --vocab 256 --seed 21 --init-range 0.1 --dtype f32 -o policy 2>/dev/null &&
vr-encode --cache cache "$G/scored.jsonl" >scored.jsonl || exit 1
U="vr-update -m policy --beta 0 -o out"

bad() { # name jq-edit expected-message
	test_expect_success "$1" "
		head -1 scored.jsonl | jq -c '$2' >bad.jsonl &&
		test_must_fail $U bad.jsonl 2>err &&
		test \$(wc -l <err) -le 2 &&
		grep -q 'bad.jsonl:1: $3' err &&
		test ! -e out
	"
}
bad 'a completion without an advantage' 'del(.completions[1].advantage)' 'completion 2 has no "advantage"'
bad 'tokens and logp of different lengths' '.completions[0].logp |= .[1:]' 'completion 1: "tokens" and "logp" must be lists of the same length'
bad 'a positive log-probability' '.completions[0].logp[1] = 0.25' 'completion 1: logp 2 is not a log-probability (a finite number <= 0)'
bad 'a token outside the vocabulary' '.completions[0].tokens[2] = 99999' 'completion 1: token 3 is not an id below'
bad 'a prompt that renders differently from the rollout' '.prompt_tokens += 1' 'the prompt renders to'
bad 'task lines without completions' 'del(.completions)' 'no "completions"'
bad 'no pixels' 'del(.pixels)' 'no "pixels"'
bad 'an <|image_pad|> in the question' '.problem += " <|image_pad|>"' 'the prompt has 145 <|image_pad|> tokens; its images need 144'

test_expect_success 'a prompt-length mismatch hints at --template and --system' '
	grep -q "hint: give vr-update the --template and --system that vr-rollout had" err ||
	{ head -1 scored.jsonl | jq -c ".prompt_tokens += 1" >bad.jsonl &&
	  test_must_fail $U bad.jsonl 2>err && grep -q "^hint: give vr-update the --template" err; }
'
test_expect_code 2 '--beta without --ref is a usage error' 'vr-update -m policy -o out scored.jsonl'
test_expect_code 2 'an unknown --loss' 'vr-update -m policy --beta 0 --loss ppo -o out scored.jsonl'
test_expect_code 2 'a linear schedule needs --steps' 'vr-update -m policy --beta 0 --lr-schedule linear -o out scored.jsonl'
test_expect_code 2 '--out is required' 'vr-update -m policy --beta 0 scored.jsonl'
test_expect_code 2 'freezing everything' 'vr-update -m policy --beta 0 --freeze . -o out scored.jsonl'
test_expect_code 1 'a reference model of another size' '
	vr-init --preset tiny --train-tokenizer "$G/corpus.txt" --vocab 300 --dtype f32 -o other 2>/dev/null &&
	vr-update -m policy --ref other -o out scored.jsonl
'
test_expect_success 'nothing was written by the failures' 'test ! -e out'
test_expect_success 'a --template file renders the same prompt in vr-tokenize, vr-rollout and vr-update' '
	printf "Find: {Question}\n" >tpl &&
	n=$(head -1 scored.jsonl | vr-tokenize -m policy --chat --template tpl | jq .n_tokens) &&
	head -1 scored.jsonl | jq -c "del(.completions, .prompt_tokens)" |
		vr-rollout -m policy --template tpl -G 2 --max-tokens 2 --seed 1 |
		jq -c ".completions[] |= (.advantage = 1)" >tpl.jsonl &&
	jq -e ".prompt_tokens == $n" tpl.jsonl >/dev/null &&
	vr-update -m policy --beta 0 --template tpl -o tplrun tpl.jsonl >/dev/null &&
	rm -rf tplrun
'
test_expect_success 'a bad line after good batches: the steps taken are kept, exit 1' '
	{ cat scored.jsonl; echo "{\"x\": 1}"; } >mixed.jsonl &&
	test_must_fail vr-update -m policy --beta 0 --prompts-per-step 1 -o kept mixed.jsonl >metrics 2>err &&
	grep -q "mixed.jsonl:3: " err &&
	test $(wc -l <metrics) = 2 &&
	jq -e ".step == 2 and .lines == 2" kept/trainer_state.json >/dev/null
'
test_expect_success 'a second vr-update into a run folder being written is refused, naming the first' '
	mkfifo feed &&
	{ vr-update -m policy --beta 0 -o locked feed >/dev/null 2>first.err & } &&
	for i in $(seq 1 200); do
		test -e locked/.lock && grep -q ":$(stat -c %i locked/.lock) " /proc/locks && break; sleep 0.05
	done &&
	test_must_fail vr-update -m policy --beta 0 -o locked scored.jsonl 2>err &&
	grep -q "locked: another vr-update (pid [0-9]*) is writing this run folder" err &&
	head -1 scored.jsonl >feed && wait &&
	jq -e ".step == 1" locked/trainer_state.json >/dev/null &&
	vr-update -m policy --beta 0 -o locked scored.jsonl >/dev/null
'
test_done

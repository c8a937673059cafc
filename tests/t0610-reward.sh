#!/bin/bash
# vr-reward: scored lines, advantages (group, batch, none), degenerate groups,
# weights, length and repetition, bad input.
. "$(dirname "$0")/lib.sh"
D=$SRC_DIR/tests/data/reward
R=$D/rollouts.jsonl

# jq's own mean, unbiased std and advantage for each line, against ours
check_adv='def mean: add / length;
  def std: (mean) as $m | if length < 2 then 0 else (map((. - $m) * (. - $m)) | add / (length - 1) | sqrt) end;
  [.completions[].reward] as $r | ($r | mean) as $m | ($r | std) as $s |
  (.group.mean - $m | fabs) < 1e-12 and (.group.std - $s | fabs) < 1e-12 and
  ([.completions[] | (.advantage - ((.reward - $m) / ($s + 1e-4))) | fabs] | max) < 1e-12'

test_expect_success 'default rewards are format and iou; every line gets its group' '
	vr-reward "$R" >out 2>err &&
	test $(wc -l <out) = 3 &&
	test "$(jq -c "[.completions[].rewards | keys]" out | sort -u)" = "[[\"format\",\"iou\"],[\"format\",\"iou\"],[\"format\",\"iou\"],[\"format\",\"iou\"]]" &&
	jq -e "$check_adv" out >/dev/null
'
test_expect_success 'rewards as expected on the example lines (rescaled boxes, no pixels)' '
	jq -c "[.completions[].rewards | [.format, .iou]]" out >got &&
	cat >want <<-\EOT &&
	[[1,0.9791177942606605],[1,0.7297004193016293],[0,0.9791177942606605],[0,0]]
	[[1,1],[1,0.021570319240724757],[1,1],[1,0.25]]
	[[0,1],[0,1],[0,1],[0,1]]
	EOT
	test_cmp want got
'
test_expect_success 'a group whose rewards are all equal is degenerate: advantages 0' '
	jq -c "[.id, .degenerate, .group.std, [.completions[].advantage]]" out >got &&
	grep -q "^\[\"refs/2\",true,0,\[0,0,0,0\]\]$" got &&
	test $(grep -c true got) = 1 &&
	grep -q "^vr-reward: 3 groups, 12 completions; mean reward 1.247 (format 0.5, iou 0.7466); 1 degenerate$" err
'
test_expect_success '--drop-degenerate leaves such groups out and says so' '
	vr-reward --drop-degenerate "$R" >out2 2>err &&
	test "$(jq -r .id out2 | tr "\n" " ")" = "refs/0 refs/1 " &&
	grep -q "; 1 degenerate (dropped)$" err
'
test_expect_success 'weights: format:0.5,iou:2' '
	vr-reward -r format:0.5,iou:2 "$R" >w &&
	jq -e "[.completions[] | (.reward - (0.5 * .rewards.format + 2 * .rewards.iou)) | fabs] | max < 1e-12" w >/dev/null &&
	jq -e "$check_adv" w >/dev/null
'
test_expect_success '--reward repeated adds terms' '
	vr-reward -r format -r iou50 "$R" | jq -c ".completions[0].rewards | keys" | sort -u >k &&
	echo "[\"format\",\"iou50\"]" >want && test_cmp want k
'
test_expect_success '--scale none: advantage = r - mean (Dr. GRPO)' '
	vr-reward --scale none "$R" >n &&
	jq -e "[.group.mean as \$m | .completions[] | (.advantage - (.reward - \$m)) | fabs] | max < 1e-12" n >/dev/null
'
test_expect_success '--scale batch --prompts 2: group mean, batch std' '
	vr-reward --scale batch --prompts 2 "$R" >b &&
	jq -s -c "[.[0:2][] | .completions[].reward]" b >r12 &&
	jq -e -n --slurpfile r r12 --slurpfile b b "
		(\$r[0] | add / length) as \$m | (\$r[0] | map((. - \$m) * (. - \$m)) | add / (length - 1) | sqrt) as \$s |
		(\$b[0].batch_std - \$s | fabs) < 1e-12 and (\$b[1].batch_std - \$s | fabs) < 1e-12 and \$b[2].batch_std == 0 and
		([\$b[0:2][] | .group.mean as \$gm | .completions[] | (.advantage - ((.reward - \$gm) / (\$s + 1e-4))) | fabs] | max) < 1e-12" >/dev/null
'
test_expect_success '--scale batch without --prompts: one batch of all the input' '
	vr-reward --scale batch "$R" | jq .batch_std | sort -u >s && test $(wc -l <s) = 1
'
test_expect_success 'a group of one: std 0 (torch.std gives NaN), advantage 0, degenerate' '
	head -1 "$R" | jq -c ".completions |= .[0:1]" >one.jsonl &&
	vr-reward one.jsonl | jq -c "[.group.std, .completions[0].advantage, .degenerate]" >got &&
	echo "[0,0,true]" >want && test_cmp want got
'
test_expect_success 'stdin, several files, order kept' '
	cat "$R" | vr-reward - "$R" | jq -r .id | tr "\n" " " >ids &&
	test "$(cat ids)" = "refs/0 refs/1 refs/2 refs/0 refs/1 refs/2 "
'
test_expect_success 'length counts sampled tokens less a final EOS; repetition' '
	vr-reward -r length,repetition "$R" | head -2 | tail -1 >l &&
	jq -e "[.completions[] | ((.tokens | length) - (if .finish == \"eos\" then 1 else 0 end)) as \$n |
		(.rewards.length - (1 - 0.5 * (1 - (\$n * 3.141592653589793 / 1024 | cos)) / 2)) | fabs] | max < 1e-12" l >/dev/null &&
	test "$(jq -c "[.completions[].rewards.repetition]" l)" = "[-0,-0.2857142857142857,0,-0]"
'
TOK=$SRC_DIR/../shared/tokenizers/qwen2.5/tokenizer.json
TG=$SRC_DIR/tests/golden/tokenizer
if [ -f "$TOK" ] && [ -f "$TG/corpus.ids" ]; then
test_expect_success 'length --tokenizer: len(tokenizer.encode(text)) as VLM-R1 (tokenizers ids)' '
	head -40 "$TG/corpus.jsonl" | jq -s -c "{id: \"t/0\", completions: map({text: .})}" >t.jsonl &&
	vr-reward -r length --tokenizer "$TOK" t.jsonl >tl &&
	head -40 "$TG/corpus.ids" | jq -s -c "map(length)" >n &&
	jq -e -n --slurpfile n n --slurpfile t tl "[range(40) as \$i | \$n[0][\$i] as \$k |
		(\$t[0].completions[\$i].rewards.length - (1 - 0.5 * (1 - (\$k * 3.141592653589793 / 1024 | cos)) / 2)) | fabs] | max < 1e-12" >/dev/null
'
fi
test_expect_success 'length without tokens or --tokenizer: error with a hint' '
	echo "{\"id\":\"x\",\"completions\":[{\"text\":\"a\"}]}" >nt.jsonl &&
	test_must_fail vr-reward -r length nt.jsonl 2>err &&
	grep -q "^vr-reward: nt.jsonl:1: completion 0 has no .tokens. list" err && grep -q "^hint: " err
'
test_expect_success 'model input size from grid_thw when input_size is absent' '
	head -2 "$R" | tail -1 | jq -c "del(.pixels.input_size)" >g.jsonl &&
	vr-reward g.jsonl | jq -c "[.completions[].rewards.iou]" >a &&
	head -2 "$R" | tail -1 | vr-reward | jq -c "[.completions[].rewards.iou]" >b && test_cmp a b
'
test_expect_code 2 'an unknown reward is a usage error' 'vr-reward -r format,fromat "$R"'
test_expect_success 'the message names it and lists the rewards' '
	vr-reward -r fromat "$R" 2>err >/dev/null; grep -q "unknown reward .fromat." err && grep -q "^hint: rewards: format" err
'
test_expect_code 2 'a reward named twice is a usage error' 'vr-reward -r iou,iou "$R"'
test_expect_code 2 'a bad weight is a usage error' 'vr-reward -r iou:x "$R"'
test_expect_code 2 '--scale must be group, batch or none' 'vr-reward --scale mean "$R"'
test_expect_code 2 '--prompts needs --scale batch' 'vr-reward --prompts 2 "$R"'
test_expect_code 2 '--reward-timeout must be positive' 'vr-reward --reward-timeout 0 "$R"'
test_expect_success 'a line with no completions is refused at file:line' '
	{ head -1 "$R"; jq -c "del(.completions)" "$R" | head -1; } >nc.jsonl &&
	test_must_fail vr-reward nc.jsonl >o 2>err &&
	grep -q "^vr-reward: nc.jsonl:2: no .completions. (not a rollout line)$" err &&
	test $(wc -l <o) = 1
'
test_expect_success 'empty completions, a completion without text' '
	jq -c ".completions = []" "$R" | head -1 >e.jsonl &&
	test_must_fail vr-reward e.jsonl 2>err && grep -q "e.jsonl:1: .completions. is empty" err &&
	jq -c ".completions[2] = {\"tokens\": [1]}" "$R" | head -1 >t.jsonl &&
	test_must_fail vr-reward t.jsonl 2>err && grep -q "t.jsonl:1: completion 2 has no .text. string" err
'
test_expect_success 'iou needs a box solution' '
	jq -c ".solution = \"a cat\"" "$R" | head -1 >s.jsonl &&
	test_must_fail vr-reward s.jsonl 2>err && grep -q "s.jsonl:1: .solution. is not a box" err &&
	vr-reward -r format s.jsonl >/dev/null
'
test_expect_success 'bad JSON and raw invalid UTF-8 are refused at file:line' '
	{ head -1 "$R"; echo "{\"id\": oops}"; } >bad.jsonl &&
	test_must_fail vr-reward bad.jsonl 2>err && grep -q "^vr-reward: bad.jsonl:2: invalid JSON" err &&
	printf "{\"id\":\"u\",\"completions\":[{\"text\":\"\\377\"}]}\n" >u.jsonl &&
	test_must_fail vr-reward u.jsonl 2>err && grep -q "^vr-reward: u.jsonl:1: invalid JSON" err
'
test_expect_success '--skip-bad skips bad lines and counts them' '
	cat nc.jsonl bad.jsonl >mixed.jsonl &&
	vr-reward --skip-bad mixed.jsonl >o 2>err &&
	test $(wc -l <o) = 2 && grep -q "nc.jsonl\|mixed.jsonl:2: no .completions." err &&
	grep -q "; 2 bad lines skipped$" err
'
test_expect_success 'a closed pipe ends vr-reward quietly' '
	for i in $(seq 300); do cat "$R"; done >many.jsonl &&
	vr-reward many.jsonl 2>err | head -1 >/dev/null && test ! -s err
'
test_done

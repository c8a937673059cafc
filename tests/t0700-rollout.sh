#!/bin/bash
# vr-rollout: greedy completions equal transformers' generate() token for token
# (tests/golden/make_rollout_golden.py made the expected ids from the same
# vr-init checkpoint and vr-synth scenes, in batches of 1, 3 and 8); sampling
# is a function of (seed, task, completion, position) only.
. "$(dirname "$0")/lib.sh"
TOK=$SRC_DIR/../shared/tokenizers/qwen2.5/tokenizer.json
[ -f "$TOK" ] || skip_all "../shared/tokenizers/qwen2.5/tokenizer.json is absent"
vr-synth --out synth --seed 1 -n 8 --splits train >/dev/null &&
vr-init --preset tiny --tokenizer "$TOK" --seed 11 --init-range 0.3 --dtype f32 -o policy 2>/dev/null &&
vr-prep synth/train.json | vr-encode --cache cache >enc.jsonl || exit 1

test_expect_success 'greedy equals transformers generate() on 8 prompts with images' '
	vr-rollout -m policy -G 2 --greedy --max-tokens 16 --repetition-penalty 1.05 enc.jsonl >greedy.jsonl &&
	jq -c "{id, tokens: .completions[0].tokens}" greedy.jsonl >got &&
	jq -c . "$SRC_DIR/tests/golden/rollout/greedy.jsonl" >want &&
	test_cmp want got &&
	jq -e "[.completions[0].tokens == .completions[1].tokens] | all" greedy.jsonl >/dev/null
'
test_expect_success 'greedy gives the same tokens with 1, 3 and 8 prompts in flight' '
	for b in 1 3 8; do
		vr-rollout -m policy -G 1 --greedy --max-tokens 16 --repetition-penalty 1.05 \
			--max-prompt-tokens 300 --max-batch-tokens $((316 * b)) enc.jsonl |
			jq -c "{id, tokens: .completions[0].tokens}" >got.$b &&
		test_cmp want got.$b || return 1
	done
'
test_expect_success 'rollout lines keep the task and add prompt_tokens and completions' '
	jq -e "(.problem | length) > 0 and .prompt_tokens > 100 and (.completions | length) == 2 and
	       (.completions[0] | (.tokens | length) == (.logp | length) and .finish == \"length\" and (.text | type) == \"string\")" \
		greedy.jsonl >/dev/null &&
	jq -e "[.completions[].logp[] | . <= 0] | all" greedy.jsonl >/dev/null
'
test_expect_success 'the text is the decoded tokens' '
	jq -c ".completions[0].tokens" greedy.jsonl | head -3 | vr-tokenize -m policy --decode --skip-special --json >dec &&
	jq -c ".completions[0].text" greedy.jsonl | head -3 >txt && test_cmp txt dec
'
test_expect_success 'sampling: same seed, same bytes; another seed, other completions' '
	vr-rollout -m policy -G 4 --max-tokens 8 --seed 3 --top-k 50 --temperature 0.9 enc.jsonl >a &&
	vr-rollout -m policy -G 4 --max-tokens 8 --seed 3 --top-k 50 --temperature 0.9 enc.jsonl >b &&
	vr-rollout -m policy -G 4 --max-tokens 8 --seed 4 --top-k 50 --temperature 0.9 enc.jsonl >c &&
	cmp a b && ! cmp -s a c &&
	jq -e "[.completions[].tokens] | unique | length > 1" a >/dev/null
'
test_expect_success 'the order of tasks and the thread count change nothing' '
	tac enc.jsonl >rev.jsonl &&
	VR_THREADS=1 vr-rollout -m policy -G 4 --max-tokens 8 --seed 3 --top-k 50 --temperature 0.9 rev.jsonl | tac >r &&
	cmp a r
'
test_expect_success '--max-batch-tokens changes the schedule, not the output' '
	S="-m policy -G 4 --max-tokens 8 --seed 3 --top-k 50 --temperature 0.9 --max-prompt-tokens 300" &&
	vr-rollout $S --max-batch-tokens 1232 enc.jsonl >one &&
	vr-rollout $S --max-batch-tokens 2464 enc.jsonl >two &&
	vr-rollout $S --max-batch-tokens 100000 enc.jsonl >all &&
	cmp one two && cmp one all && cmp one a
'
test_expect_code 2 'a budget smaller than one group is a usage error' '
	vr-rollout -m policy -G 4 --max-tokens 8 --max-prompt-tokens 300 --max-batch-tokens 1000 enc.jsonl
'
test_expect_success 'a prompt longer than --max-prompt-tokens is refused naming file:line' '
	test_must_fail vr-rollout -m policy -G 1 --max-tokens 2 --max-prompt-tokens 150 enc.jsonl 2>err &&
	grep -q "^vr-rollout: enc.jsonl:1: the prompt has [0-9]* tokens; --max-prompt-tokens is 150" err
'
test_expect_success 'images alone beyond --max-prompt-tokens: refused before a prompt is built' '
	test_must_fail vr-rollout -m policy -G 1 --max-tokens 2 --max-prompt-tokens 50 enc.jsonl 2>err &&
	grep -q "^vr-rollout: enc.jsonl:1: the images make 144 prompt tokens; at most 50 fit --max-prompt-tokens$" err &&
	head -1 enc.jsonl | jq -c ".pixels.grid_thw = [1, 100000, 100000]" >huge.jsonl &&
	test_must_fail vr-rollout -m policy -G 1 --max-tokens 2 huge.jsonl 2>err &&
	grep -q "^vr-rollout: huge.jsonl:1: .pixels. of image 1: grid_thw holds a value that is not a positive integer up to 74898$" err &&
	head -1 enc.jsonl | jq -c ".pixels.grid_thw = [1, 2000, 2000] | .pixels.input_size = [28000, 28000]" >big.jsonl &&
	test_must_fail vr-rollout -m policy -G 1 --max-tokens 2 --max-prompt-tokens 100000 --max-batch-tokens 100002 big.jsonl 2>err &&
	grep -q "^vr-rollout: big.jsonl:1: the images make 1000000 prompt tokens; at most 100000 fit --max-prompt-tokens$" err
'
test_expect_success 'a pixel or vision entry that is not what the line says is refused before it is copied' '
	head -1 enc.jsonl | jq -c ".pixels.grid_thw = [1, 24, 26] | .pixels.input_size = [364, 336]" >grid.jsonl &&
	test_must_fail vr-rollout -m policy -G 1 --max-tokens 2 grid.jsonl 2>err &&
	grep -q "^vr-rollout: grid.jsonl:1: cache/[0-9a-f]*.safetensors: holds a \[1, 24, 24\] grid of [0-9]*-value patches; the line says \[1, 24, 26\]" err &&
	head -1 enc.jsonl | vr-encode --cache cache --model policy --vision >vis.jsonl &&
	vr-rollout -m policy -G 1 --max-tokens 2 vis.jsonl >/dev/null &&
	jq -c ".pixels.grid_thw = [1, 24, 26] | .pixels.input_size = [364, 336]" vis.jsonl >visgrid.jsonl &&
	test_must_fail vr-rollout -m policy -G 1 --max-tokens 2 visgrid.jsonl 2>err &&
	grep -q "^vr-rollout: visgrid.jsonl:1: cache/[0-9a-f]*.safetensors: holds \[144, [0-9]*\] vision rows; image 1 needs \[156, [0-9]*\]" err
'
test_expect_success 'a task line without pixels is refused naming file:line' '
	head -1 enc.jsonl | jq -c "del(.pixels)" >nopix.jsonl &&
	test_must_fail vr-rollout -m policy -G 1 --max-tokens 2 nopix.jsonl 2>err &&
	grep -q "^vr-rollout: nopix.jsonl:1: .*vr-encode" err
'
test_expect_code 2 '--model is required' 'vr-rollout -G 2 enc.jsonl'
test_done

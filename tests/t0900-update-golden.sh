#!/bin/bash
# vr-update against PyTorch (tests/golden/make_update_golden.py): VLM-R1's GRPO
# loss on the transformers model, for a committed scored batch of 2 prompts x
# G=4 with images (beta 0.04 against a reference, epsilon 0.2/0.28,
# temperature 0.9): the loss to 1e-5, every parameter's gradient to 1e-4, the
# weights after torch.optim.AdamW; each --loss variant, mu=2 and SFT.
. "$(dirname "$0")/lib.sh"
G=$SRC_DIR/tests/golden/update
vr-synth --out synth --seed 3 -n 2 --splits train >/dev/null &&
vr-init --preset tiny --train-tokenizer "$G/corpus.txt" --vocab 256 --seed 21 --init-range 0.1 --dtype f32 -o policy 2>/dev/null &&
vr-init --preset tiny --train-tokenizer "$G/corpus.txt" --vocab 256 --seed 22 --init-range 0.1 --dtype f32 -o ref 2>/dev/null &&
vr-encode --cache cache "$G/scored.jsonl" >scored.jsonl || exit 1
COMMON="-m policy --ref ref --beta 0.04 --epsilon 0.2 --epsilon-high 0.28 --temperature 0.9 --lr 1e-3 --weight-decay 0.1 --max-grad-norm 1.0"

# rel(want, got): |got - want| / |want|
close() { # tolerance fixture-jq metrics-jq
	jq -n --argjson w "$(jq -c "$2" "$G/losses.json")" --argjson g "$(jq -s -c "$3" metrics)" --argjson t "$1" \
		'[$w, $g] | transpose | all(((.[1] - .[0]) | fabs) <= $t * (.[0] | fabs))' | grep -qx true
}
# every tensor of the fixture named PREFIX* within TOL (max|a-b| / max|b|)
tensors_close() { # dump fixture prefix tol
	vr-inspect --compare "$2" "$1" | jq -s -e --arg p "$3" --argjson t "$4" \
		'[.[] | select(.name | startswith($p))] | length > 0 and all(.rel != null and .rel <= $t)' >/dev/null &&
	vr-inspect "$2" | jq -r --arg p "$3" 'select(.name | startswith($p)) | .name' | sort >want.names &&
	vr-inspect "$1" | jq -r --arg p "$3" 'select(.name | startswith($p)) | .name' | sort >got.names &&
	test_cmp want.names got.names
}

for v in grpo bnpo dapo dr_grpo; do
	f=$v && [ $v = dapo ] && f=bnpo # one process: dapo's global token mean is bnpo's
	test_expect_success "--loss $v: loss, grad norm and every gradient equal PyTorch's" "
		vr-update $COMMON --loss $v -o out.$v --dump dump.$v scored.jsonl >metrics &&
		close 1e-5 '.$f.loss' '[.[].loss]' &&
		close 1e-5 '.$f.grad_norm' '[.[].grad_norm]' &&
		tensors_close dump.$v '$G/$f.safetensors' grad. 1e-4
	"
done
test_expect_success 'grpo: AdamW on PyTorch'"'"'s gradients gives torch.optim.AdamW'"'"'s weights to 1e-6' '
	vr-update -m policy --beta 0 --lr 1e-3 --weight-decay 0.1 --max-grad-norm 1.0 -o out.replay \
		--grads "$G/grpo.safetensors" --dump replay scored.jsonl >metrics &&
	tensors_close replay "$G/grpo.safetensors" after. 1e-6
'
test_expect_success 'grpo: the weights after the step equal PyTorch'"'"'s (AdamW amplifies near-zero gradients)' '
	tensors_close dump.grpo "$G/grpo.safetensors" after. 2e-2
'
test_expect_success 'mu=2: two steps on one batch, the rollout logp as the old policy' '
	vr-update $COMMON --iterations 2 -o out.mu2 --dump dump.mu2 scored.jsonl >metrics &&
	test $(wc -l <metrics) = 2 &&
	close 1e-5 ".mu2.loss" "[.[].loss]" &&
	close 1e-5 ".mu2.grad_norm" "[.[].grad_norm]" &&
	jq -s -e ".[0].clip_ratio == 0 and .[1].clip_ratio > 0.5" metrics >/dev/null &&
	tensors_close dump.mu2 "$G/mu2.safetensors" after. 2e-2
'
test_expect_success '--sft: cross-entropy on the answers of the same tasks' '
	vr-update -m policy --sft --lr 1e-3 --weight-decay 0.1 --max-grad-norm 1.0 -o out.sft --dump dump.sft scored.jsonl >metrics &&
	close 1e-5 ".sft.loss" "[.[].loss]" &&
	tensors_close dump.sft "$G/sft.safetensors" grad. 1e-4
'
test_expect_success 'LoRA (r 4, alpha 8, every decoder linear and lm_head) from a PEFT adapter: equal to PEFT' '
	vr-update $COMMON --adapter "$G/adapter" -o out.lora --dump dump.lora scored.jsonl >metrics &&
	close 1e-5 ".lora.loss" "[.[].loss]" &&
	close 1e-5 ".lora.grad_norm" "[.[].grad_norm]" &&
	tensors_close dump.lora "$G/lora.safetensors" grad. 1e-4 &&
	tensors_close dump.lora "$G/lora.safetensors" after. 1e-4
'
test_expect_success 'LoRA: AdamW on PEFT'"'"'s gradients gives its adapters to 1e-6' '
	vr-update -m policy --beta 0 --lr 1e-3 --weight-decay 0.1 --max-grad-norm 1.0 --adapter "$G/adapter" \
		-o out.lrep --grads "$G/lora.safetensors" --dump replay.lora scored.jsonl >/dev/null &&
	tensors_close replay.lora "$G/lora.safetensors" after. 1e-6
'
test_expect_success 'LoRA: the run folder holds the base weights and a PEFT adapter' '
	cmp policy/model.safetensors out.lora/model.safetensors &&
	jq -e ".peft_type == \"LORA\" and .r == 4 and .lora_alpha == 8 and (.target_modules | length) == 15" \
		out.lora/adapter_config.json >/dev/null &&
	vr-inspect out.lora/adapter_model.safetensors | jq -r .name | sort >got &&
	vr-inspect "$G/adapter/adapter_model.safetensors" | jq -r .name | sort >want &&
	test_cmp want got
'
test_expect_success 'LoRA: --merge folds the adapters in; every stage serves a LoRA folder merged' '
	vr-update -m out.lora --merge -o out.merged </dev/null &&
	test ! -e out.merged/adapter_config.json &&
	! cmp -s policy/model.safetensors out.merged/model.safetensors &&
	vr-rollout -m out.lora --greedy -G 1 --max-tokens 6 scored.jsonl >r.lora &&
	vr-rollout -m out.merged --greedy -G 1 --max-tokens 6 scored.jsonl >r.merged &&
	vr-rollout -m policy --greedy -G 1 --max-tokens 6 scored.jsonl >r.base &&
	cmp r.lora r.merged && ! cmp -s r.lora r.base
'
test_expect_success 'LoRA: --merge in place leaves no adapter to fold in twice' '
	cp -r out.lora inplace &&
	vr-update -m inplace --merge -o inplace </dev/null &&
	test ! -e inplace/adapter_config.json && test ! -e inplace/optimizer.safetensors &&
	vr-rollout -m inplace --greedy -G 1 --max-tokens 6 scored.jsonl >r.inplace &&
	cmp r.merged r.inplace
'
test_expect_success 'LoRA: dropout masks do not depend on the micro-batching' '
	vr-update $COMMON --lora-r 4 --lora-dropout 0.3 --seed 5 -o out.d1 --dump dump.d1 scored.jsonl >/dev/null &&
	vr-update $COMMON --lora-r 4 --lora-dropout 0.3 --seed 5 --max-batch-tokens 700 -o out.d2 --dump dump.d2 scored.jsonl >/dev/null &&
	vr-inspect --compare dump.d1 dump.d2 | jq -s -e "[.[] | select(.name | startswith(\"grad.\"))] | length == 30 and all(.rel <= 1e-5)" >/dev/null
'
test_expect_success 'LoRA on top of a full-weight run folder starts fresh adapters' '
	vr-update -m out.grpo --lora-r 2 --beta 0 --lr 1e-3 -o out.l2 scored.jsonl >/dev/null &&
	test -e out.l2/adapter_model.safetensors
'
test_expect_success '--freeze-vision and --freeze REGEX: those tensors neither get gradients nor change' '
	vr-update $COMMON --freeze-vision --freeze "embed_tokens|norm" -o out.fz --dump dump.fz scored.jsonl >/dev/null &&
	vr-inspect dump.fz | jq -r .name | grep "^grad\." >names &&
	! grep -q "visual\.\|embed_tokens\|norm" names &&
	test $(wc -l <names) = 20 &&
	vr-inspect --compare "$G/grpo.safetensors" dump.fz | jq -s -e "[.[] | select(.name | startswith(\"grad.\"))] | all(.rel <= 1e-4)" >/dev/null &&
	vr-inspect --compare policy out.fz | jq -s -e "[.[] | select(.name | test(\"visual|embed_tokens|norm\"))] | length > 0 and all(.rel == 0)" >/dev/null &&
	vr-inspect --compare policy out.fz | jq -s -e "[.[] | select(.name | test(\"q_proj.weight\"))] | all(.rel > 0)" >/dev/null
'
test_expect_success 'micro-batches of 600 tokens accumulate to the same gradients' '
	vr-update $COMMON -o out.mb --max-batch-tokens 600 --dump dump.mb scored.jsonl >metrics &&
	close 1e-5 ".grpo.loss" "[.[].loss]" &&
	tensors_close dump.mb "$G/grpo.safetensors" grad. 1e-4
'
test_expect_success 'activation checkpointing changes no bit' '
	vr-update $COMMON -o out.ck --checkpoint-activations --dump dump.ck scored.jsonl >/dev/null &&
	cmp dump.grpo dump.ck
'
test_done

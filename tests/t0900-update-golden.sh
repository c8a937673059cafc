#!/bin/bash
# vr-update against PyTorch (tests/golden/make_update_golden.py): VLM-R1's GRPO
# loss on the transformers model, for a committed scored batch of 2 prompts x
# G=4 with images (beta 0.04 against a reference, epsilon 0.2/0.28,
# temperature 0.9), each --loss variant, mu=2 and SFT.
#
# Tolerances, from the arithmetic (u = 2^-24 = 6e-8, float32's unit roundoff;
# Higham & Mary's probabilistic bound: a length-n float32 reduction is off by
# about sqrt(n) u of the magnitude of what it sums):
# - A log-prob is the end of about 40 reductions in a row (vision tower and
#   decoder, 2 layers each: GEMMs of length <= 128, attention over <= 300
#   keys, log-sum-exp over V = 320), each <= sqrt(320) u = 1.1e-6 relative.
#   RMSNorm rescales every layer, so the errors add (in quadrature, being
#   independent roundings) rather than multiply: sqrt(40) 1.1e-6 = 7e-6
#   relative to the logits, which are below 2 here (logp in [-7.7, -3.5] around
#   -ln 320): 1.4e-5 absolute per log-prob, for vr and for PyTorch each.
# - A GRPO loss is a mean of per-token terms ratio*A (+ beta k3), and a ratio
#   exp(logp - logp_old) takes logp's absolute error as a relative one. The
#   terms cancel (advantages sum to zero in a group: the loss, 0.016 at mu=2's
#   second step, is 50 times smaller than its terms), so its error is bounded
#   relative to the terms' mean magnitude, mean |A|, not to the loss:
#   |got - want| <= 3e-5 mean|A| (two sides of 1.4e-5; close_loss below).
# - Grad norms and SFT's cross-entropy are sums of terms of one sign, each
#   carrying the same error: 3e-5 relative to themselves.
# - Gradients: a weight's gradient sums about 600 tokens' outer products, each
#   carrying that error through a backward of the same depth again: 1e-4
#   relative to the tensor's largest element.
# - Weights after AdamW: 1e-6 when both sides step from the same gradients (the
#   arithmetic of one update); 2e-2 end to end, since AdamW moves every element
#   by about lr whatever its gradient, so a gradient below the noise (about 80
#   of 178,400 elements) can step either way.
# Measured on an AVX-512 machine (OpenBLAS Prescott and Haswell kernels): loss
# 2.4e-7 of mean|A|, grad norm 4e-7, gradients 5e-6: each 40 times or more
# inside its bound.
. "$(dirname "$0")/lib.sh"
G=$SRC_DIR/tests/golden/update
tiny_update_setup || exit 1
COMMON="-m policy --ref ref --beta 0.04 --epsilon 0.2 --epsilon-high 0.28 --temperature 0.9 --lr 1e-3 --weight-decay 0.1 --max-grad-norm 1.0"

# mean |advantage| of the batch: the size of a GRPO loss's per-token terms
TERMS=$(jq -s '[.[].completions[].advantage | fabs] | add / length' scored.jsonl)
# |got - want| <= tolerance * max(|want|, floor), for each step
close_to() { # tolerance floor fixture-jq metrics-jq
	jq -n --argjson w "$(jq -c "$3" "$G/losses.json")" --argjson g "$(jq -s -c "$4" metrics)" --argjson t "$1" \
		--argjson f "$2" '[$w, $g] | transpose | length > 0 and
		all(((.[1] - .[0]) | fabs) <= $t * ([(.[0] | fabs), $f] | max))' | grep -qx true ||
	{ echo "want $(jq -c "$3" "$G/losses.json") got $(jq -s -c "$4" metrics) (tolerance $1 x max(|want|, $2))"; false; }
}
close() { close_to "$1" 0 "$2" "$3"; }              # relative to the value
close_loss() { close_to "$1" "$TERMS" "$2" "$3"; }  # relative to the terms it averages
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
		close_loss 3e-5 '.$f.loss' '[.[].loss]' &&
		close 3e-5 '.$f.grad_norm' '[.[].grad_norm]' &&
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
	close_loss 3e-5 ".mu2.loss" "[.[].loss]" &&
	close 3e-5 ".mu2.grad_norm" "[.[].grad_norm]" &&
	jq -s -e ".[0].clip_ratio == 0 and .[1].clip_ratio > 0.5" metrics >/dev/null &&
	tensors_close dump.mu2 "$G/mu2.safetensors" after. 2e-2
'
test_expect_success '--sft: cross-entropy on the answers of the same tasks' '
	vr-update -m policy --sft --lr 1e-3 --weight-decay 0.1 --max-grad-norm 1.0 -o out.sft --dump dump.sft scored.jsonl >metrics &&
	close 3e-5 ".sft.loss" "[.[].loss]" &&
	tensors_close dump.sft "$G/sft.safetensors" grad. 1e-4
'
test_expect_success 'LoRA (r 4, alpha 8, every decoder linear and lm_head) from a PEFT adapter: equal to PEFT' '
	vr-update $COMMON --adapter "$G/adapter" -o out.lora --dump dump.lora scored.jsonl >metrics &&
	close_loss 3e-5 ".lora.loss" "[.[].loss]" &&
	close 3e-5 ".lora.grad_norm" "[.[].grad_norm]" &&
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
test_expect_success 'LoRA: --ref a LoRA run folder is the policy it holds, merged' '
	vr-update -m policy --ref out.lora --beta 0.04 --lr 1e-3 -o out.rl scored.jsonl >m.rl &&
	vr-update -m policy --ref out.merged --beta 0.04 --lr 1e-3 -o out.rm scored.jsonl >m.rm &&
	jq -e ".kl > 0" m.rl >/dev/null &&
	test "$(jq .kl m.rl)" = "$(jq .kl m.rm)"
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
	close_loss 3e-5 ".grpo.loss" "[.[].loss]" &&
	tensors_close dump.mb "$G/grpo.safetensors" grad. 1e-4
'
test_expect_success 'activation checkpointing changes no bit' '
	vr-update $COMMON -o out.ck --checkpoint-activations --dump dump.ck scored.jsonl >/dev/null &&
	cmp dump.grpo dump.ck
'
test_expect_success 'the LM head'"'"'s probabilities recomputed in the backward (--keep-logits 0) change no bit' '
	vr-update $COMMON -o out.nokeep --keep-logits 0 --dump dump.nokeep scored.jsonl >/dev/null &&
	cmp dump.grpo dump.nokeep &&
	vr-update $COMMON --adapter "$G/adapter" -o out.lora0 --keep-logits 0 --dump dump.lora0 scored.jsonl >/dev/null &&
	cmp dump.lora dump.lora0
'
test_done

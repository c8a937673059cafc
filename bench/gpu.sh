#!/bin/bash
# bench/gpu.sh: issue 15's GPU figures in one run (tests/gpu/check.sh calls
# it; it needs a GPU for the figures to mean anything, but VR_DEVICE=cpu
# PRESET=tiny STEP_PRESET=tiny runs it anywhere, to check the script):
#   1. HBM bandwidth: a device-to-device copy through PyTorch (bytes read +
#      written), the roofline's denominator;
#   2. decode at batch 1 on a `vr-init --preset $PRESET` bf16 checkpoint:
#      ms/token from two greedy rollouts of 8 and 40 tokens (the difference
#      removes loading and prefill), against weight bytes / bandwidth;
#   3. rollout: $P prompts x G=8 x $NEW sampled tokens, vr-rollout (whole
#      process) against transformers generate (bf16, sdpa, the call alone;
#      bench/gpu_peer.py) on the same checkpoint and prompt ids;
#   4. one GRPO step of vr-update on the $STEP_PRESET preset (f32): tokens/s,
#      MFU against the fp32 and the bf16 tensor-core peaks, peak GPU memory.
# One JSON line per figure on stdout. Needs ../shared's Qwen tokenizer (or
# TOK=FILE, e.g. a copy carried to the GPU machine).
#   bench/gpu.sh [-k]   (-k: skip `make`)
set -uo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = -k ] || make -s all >&2
PRESET=${PRESET:-3b} STEP_PRESET=${STEP_PRESET:-small} P=${P:-2} NEW=${NEW:-32}
export VR_DEVICE=${VR_DEVICE:-cuda}
TOK=${TOK:-../shared/tokenizers/qwen2.5/tokenizer.json}
VR=${VR_BIN:-$PWD/bin}
PATH=$VR:$PATH
out=bench/out/gpu
mkdir -p $out
now() { date +%s.%N; }
# the highest memory.used nvidia-smi reports while "$@" runs (MiB; null without it)
peak_mem() {
	local f=$out/mem.$$ pid
	: >$f
	if command -v nvidia-smi >/dev/null; then
		nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >$f 2>/dev/null & pid=$!
	fi
	"$@"
	local rc=$?
	[ -n "${pid:-}" ] && kill $pid 2>/dev/null && wait $pid 2>/dev/null
	peak=$(sort -n $f | tail -1); peak=${peak:-null}
	rm -f $f
	return $rc
}
echo "{\"what\":\"machine\",\"device\":\"$VR_DEVICE\",\"gpu\":\"$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)\",\"commit\":\"$(git rev-parse --short HEAD 2>/dev/null)\",\"date\":\"$(date -u +%FT%TZ)\"}"

# 1. bandwidth
bw=$(python3 -c '
import torch, time
x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(20): y.copy_(x)
torch.cuda.synchronize(); print(2 * 20 * x.numel() / (time.perf_counter() - t))' 2>/dev/null) || bw=null
echo "{\"what\":\"bandwidth\",\"bytes_per_s\":$bw}"

# 2. decode at batch 1
m=$out/$PRESET
[ -f $m/config.json ] || vr-init --preset $PRESET --dtype bf16 --tokenizer "$TOK" -o $m >/dev/null 2>&1 || { echo "vr-init failed" >&2; exit 1; }
wbytes=$(cat $m/*.safetensors | wc -c)
printf '{"id":"p%d","images":[],"problem":"Describe the picture %d in one sentence."}\n' $(seq 1 $P | awk '{print $1, $1}') >$out/text.jsonl
declare -A sec toks
for n in 8 40; do
	t0=$(now)
	head -1 $out/text.jsonl | vr-rollout -m $m -G 1 --greedy --max-tokens $n >$out/dec$n.jsonl || exit 1
	sec[$n]=$(awk -v a="$(now)" -v b="$t0" "BEGIN { print a - b }")
	toks[$n]=$(jq '.completions[0].tokens | length' $out/dec$n.jsonl)
done
jq -nc --argjson a "${sec[8]}" --argjson b "${sec[40]}" --argjson na "${toks[8]}" --argjson nb "${toks[40]}" \
	--argjson w "$wbytes" --argjson bw "$bw" '(($b - $a) / ($nb - $na) * 1000) as $ms |
	{what:"decode", preset:"'$PRESET'", weight_bytes:$w, ms_per_token:($ms*100|round/100),
	 roofline_ms:(if $bw then ($w / $bw * 1000 * 100 | round / 100) else null end),
	 of_roofline:(if $bw then (($w / $bw * 1000) / $ms * 1000 | round / 1000) else null end)}'

# 3. rollout against transformers generate
vr-tokenize -m $m --chat <$out/text.jsonl >$out/chat.jsonl
t0=$(now)
peak_mem vr-rollout -m $m -G 8 --max-tokens $NEW --seed 1 $out/text.jsonl >$out/roll.jsonl || exit 1
s=$(awk -v a="$(now)" -v b="$t0" "BEGIN { print a - b }")
n=$(jq -s '[.[].completions[].tokens | length] | add' $out/roll.jsonl)
vr=$(jq -nc --argjson s "$s" --argjson n "$n" --argjson mem "$peak" \
	'{what:"rollout", impl:"vr", prompts:'$P', G:8, tokens:$n, seconds:($s*1000|round/1000), tokens_per_s:($n/$s*10|round/10), peak_gpu_mib:$mem}')
echo "$vr"
if python3 -c 'import torch, transformers' 2>/dev/null; then
	pj=$(python3 bench/gpu_peer.py $m $out/chat.jsonl 8 $NEW 2>$out/peer.err | tail -1)
	if [ -n "$pj" ]; then
		echo "$pj"
		jq -nc --argjson a "$vr" --argjson b "$pj" '{what:"rollout ratio", vr_over_transformers:(($a.tokens_per_s / $b.tokens_per_s * 100 | round) / 100)}'
	else
		jq -nc --arg e "$(tail -1 $out/peer.err)" '{what:"rollout", impl:"transformers", failed:$e}'
	fi
else
	echo '{"what":"rollout","impl":"transformers","skipped":"transformers not importable"}'
fi

# 4. one GRPO step
sm=$out/step-$STEP_PRESET
[ -f $sm/config.json ] || vr-init --preset $STEP_PRESET --dtype f32 --tokenizer "$TOK" -o $sm >/dev/null 2>&1 || exit 1
[ -f $out/synth/train.json ] || vr-synth --out $out/synth --seed 1 -n 4 --splits train --size 448x448 >/dev/null
vr-prep $out/synth/train.json | vr-encode --cache $out/cache |
	vr-rollout -m $sm -G 8 --max-tokens 64 --seed 1 | vr-reward --reward format,iou 2>/dev/null >$out/scored.jsonl || exit 1
rm -rf $out/run
peak_mem vr-update -m $sm --beta 0 --lr 1e-6 -o $out/run $out/scored.jsonl >$out/step.json || exit 1
params=$(vr-inspect -m $sm 2>/dev/null | jq -r '.params // empty' 2>/dev/null)
[ -n "$params" ] || params=$(vr-update --dry-run 1000 -m $sm | awk '/^parameters/ { print $2 * 1e9 }')
jq -c --argjson p "$params" --argjson mem "$peak" '(6 * $p * .tokens / .seconds) as $f |
	{what:"grpo step", preset:"'$STEP_PRESET'", params:$p, tokens, seconds, tokens_per_s,
	 tflops:($f/1e10|round/100), mfu_fp32:($f/67e12*1000|round/1000), mfu_bf16:($f/989e12*1000|round/1000),
	 peak_gpu_mib:$mem}' $out/step.json

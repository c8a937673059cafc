#!/bin/bash
# bench/update.sh: one GRPO optimizer step on the small preset, vr-update against
# the same step in PyTorch (bench/update_peer.py: transformers' Qwen2.5-VL, VLM-R1's
# loss as tests/golden/make_update_golden.py), same checkpoints, scored batch and
# threads. The batch: PROMPTS vr-synth scenes x G completions of NEW tokens from
# vr-rollout, advantages forced nonzero (a random model scores 0). The step: beta
# 0.04 against --ref, temperature 1, lr 1e-6, clip 1.0, AdamW, the whole batch in
# one micro-batch. Timed span (both): reference forward, policy forward, loss,
# backward, clip, AdamW (vr's metrics "seconds"); not model load or saving.
# Each process takes 1 + STEPS steps on the same batch: the first (cold: fresh
# workspace and optimizer state) is reported apart, then the median of the rest.
# tokens/s: prompt + completion tokens through the model (padding not counted),
# per second of the step. Peak RSS: the whole process (GNU time), and the step's
# share: that minus the peak after loading (vr: a run on empty input; the peer:
# VmHWM before its first step). GFLOP: 4 forwards' matrix products (reference
# forward, policy forward, backward = 2 forwards), counted from the shapes (see
# flops below). vr runs with VR_PROFILE (lib/profile.c): the rate of its
# matrix-product ops (linear and LM head; the LM head's softmax is inside its
# op), over the whole process (all steps), and their share of its time.
# Configs: full activations; --checkpoint-activations (the peer:
# gradient_checkpointing_enable). Writes what it needs into bench/out/update/.
#   bench/update.sh [-k] [-t THREADS] [-s STEPS] [-G G] [-n NEW] [-p PROMPTS]
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0 threads=$(nproc) steps=3 G=4 new=64 prompts=2
while getopts kt:s:G:n:p: o; do
	case $o in k) keep=1 ;; t) threads=$OPTARG ;; s) steps=$OPTARG ;; G) G=$OPTARG ;; n) new=$OPTARG ;;
	p) prompts=$OPTARG ;; *) exit 2 ;; esac
done
[ $keep = 1 ] || make -s all
out=bench/out/update
batch=$out/scored-$prompts-$G-$new.jsonl
. bench/update_batch.sh
update_batch $out "$prompts" "$G" "$new" $batch
bin/vr-tokenize -m $out/policy --chat $batch >$out/chat.jsonl
for ((i = 0; i <= steps; i++)); do cat $batch; done >$out/steps.jsonl

# busy jiffies of the whole machine: what other processes used meanwhile
cpu_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
hz=$(getconf CLK_TCK)
# run NAME CMD...: stdout to $out/NAME.out; prints "wall user sys maxrss_kb other_cpu_s"
run() {
	local name=$1 j0 j1
	shift
	j0=$(cpu_jiffies)
	/usr/bin/time -f '%e %U %S %M' -o $out/$name.time "$@" >$out/$name.out 2>$out/$name.err
	j1=$(cpu_jiffies)
	read -r w u s rss <$out/$name.time
	awk -v w="$w" -v u="$u" -v s="$s" -v rss="$rss" -v dj=$((j1 - j0)) -v hz="$hz" \
		'BEGIN { o = dj / hz - u - s; printf "%s %s %s %s %.2f\n", w, u, s, rss, (o < 0 ? 0 : o) }'
}
VRU=(env VR_THREADS=$threads bin/vr-update -m $out/policy --ref $out/ref --beta 0.04 --temperature 1.0 --lr 1e-6
	--max-batch-tokens 1000000 --prompts-per-step "$prompts" -o $out/run)
# the peak RSS of loading alone: vr-update on no input loads both models and exits
load_kb=$(run vr-load "${VRU[@]}" /dev/null | cut -d' ' -f4)
cfg=$(cat $out/policy/config.json)
date=$(date -u +%FT%TZ)
echo "# $date $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, threads $threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
rows=()
have_py=0
python3 -c 'import torch, transformers' 2>/dev/null && have_py=1
for config in full checkpoint; do
	flag=() ck=0
	[ $config = checkpoint ] && flag=(--checkpoint-activations) ck=1
	rm -f $out/vr-$config.prof
	read -r w u s rss oth < <(run vr-$config env VR_PROFILE=$out/vr-$config.prof "${VRU[@]}" "${flag[@]}" $out/steps.jsonl)
	rows+=("$(jq -sc --arg c $config --argjson w "$w" --argjson rss "$rss" --argjson load "$load_kb" --argjson o "$oth" \
		--argjson th "$threads" --slurpfile prof $out/vr-$config.prof '
		($prof | map(select(.op | test("^(linear|logp)_(fwd|bwd)$|^linear_infer$")))) as $mm |
		{impl:"vr", config:$c, vision:"once", threads:$th,
		mm_gflop_per_s:(($mm | map(.gflop) | add) / ($mm | map(.seconds) | add) * 10 | round / 10),
		mm_share:(($mm | map(.seconds) | add) / ($prof | map(select(.op == "total"))[0].wall) * 100 | round / 100),
		tokens:(.[0].tokens_per_s * .[0].seconds | round), scored_tokens:.[0].tokens, loss:.[0].loss, grad_norm:.[0].grad_norm,
		first_step_s:(.[0].seconds * 1000 | round / 1000),
		seconds:([.[1:][].seconds] | sort | .[(length - 1) / 2 | floor] * 1000 | round / 1000),
		seconds_all:[.[1:][].seconds * 1000 | round / 1000], load_peak_mb:($load / 1024 | round), max_rss_mb:($rss / 1024 | round),
		step_rss_mb:(($rss - $load) / 1024 | round), process_s:$w, other_cpu_s:$o}' $out/vr-$config.out)")
	echo "${rows[-1]}" >&2
	[ $have_py = 1 ] || continue
	for vis in once repeat; do
		[ $config = checkpoint ] && [ $vis = repeat ] && continue
		read -r w u s rss oth < <(run py-$config-$vis python3 bench/update_peer.py $out/policy $out/ref $batch \
			$out/chat.jsonl "$threads" "$steps" $ck $vis)
		rows+=("$(tail -1 $out/py-$config-$vis.out | jq -c --arg c $config --argjson w "$w" --argjson rss "$rss" --argjson o "$oth" \
			'. + {config:$c, max_rss_mb:($rss / 1024 | round), process_s:$w, other_cpu_s:$o}')")
		echo "${rows[-1]}" >&2
	done
done
[ $have_py = 1 ] || echo "# torch/transformers not importable: peer skipped"
rm -rf $out/run # the checkpoints vr-update wrote (1.5 GB)
# GFLOP of the step from the shapes: per forward 2 x (tokens x the decoder blocks'
# weights + scored tokens x the LM head + patches x the vision blocks and patch
# embedding + merged rows x the merger); x4 for ref forward + forward + backward.
# Attention scores, norms and activations are not counted, nor any recomputation.
printf '%s\n' "${rows[@]}" | jq -sc --argjson c "$cfg" --arg date "$date" '
	($c.hidden_size) as $D | ($c.num_attention_heads) as $H | ($c.num_key_value_heads) as $K |
	($D / $H) as $hd | ($c.vision_config) as $v | ($v.hidden_size) as $Dv |
	($c.num_hidden_layers * ($D * $H * $hd * 2 + 2 * $D * $K * $hd + 3 * $D * $c.intermediate_size)) as $Pt |
	($v.depth * (4 * $Dv * $Dv + 3 * $Dv * $v.intermediate_size) + $v.in_chans * $v.temporal_patch_size * $v.patch_size * $v.patch_size * $Dv) as $Pv |
	((4 * $Dv) * (4 * $Dv) + 4 * $Dv * $v.out_hidden_size) as $Pm |
	(map(select(.impl == "pytorch" and .vision == "once"))[0].vision_patches // null) as $np |
	.[] | $np as $p |
	(if $p then 4 * 2 * (.tokens * $Pt + .scored_tokens * $c.vocab_size * $D + $p * $Pv + $p / 4 * $Pm) / 1e9 else null end) as $gf |
	. + {bench:"update", date:$date, preset:"small",
	     tokens_per_s:((.tokens / .seconds * 10 | round) / 10),
	     gflop:(if $gf then ($gf * 10 | round) / 10 else null end),
	     gflop_per_s:(if $gf then ($gf / .seconds * 10 | round) / 10 else null end)}
	| with_entries(select(.value != null))' >$out/results.jsonl
cat $out/results.jsonl
jq -rs '
	(map(.gemm_2048_gflop_per_s // empty) | if length > 0 then max else null end) as $pk |
	"| config | impl | vision | first step s | step s (median) | tokens/s | GFLOP/s | peak RSS MB | step RSS MB | peer / vr: first step, step | RSS vr / peer | other CPU s |",
	"|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
	(. as $all | .[] | . as $r | ($all | map(select(.impl == "vr" and .config == $r.config))[0]) as $vr |
	 "| \(.config) | \(.impl) | \(.vision) | \(.first_step_s) | \(.seconds) | \(.tokens_per_s) | \(.gflop_per_s // "-")" +
	 (if $pk and .gflop_per_s then " (\(.gflop_per_s / $pk * 100 | round)%)" else "" end) + " | \(.max_rss_mb) | \(.step_rss_mb) | " +
	 (if .impl == "vr" then "- | - |" else "\((.first_step_s / $vr.first_step_s * 100 | round) / 100)x, **\((.seconds / $vr.seconds * 100 | round) / 100)x** | \(($vr.max_rss_mb / .max_rss_mb * 100 | round) / 100) |" end) +
	 " \(.other_cpu_s) |"),
	"",
	"GFLOP/s in parentheses: share of torch.mm 2048x2048 fp32 on the same threads (\($pk // "-") GFLOP/s), a practical peak.",
	"",
	(.[] | select(.impl == "vr") | "vr \(.config): its matrix-product ops (linear and LM head, forward and backward; VR_PROFILE) ran at \(.mm_gflop_per_s) GFLOP/s" +
	 (if $pk then " (\(.mm_gflop_per_s / $pk * 100 | round)% of torch.mm)" else "" end) + ", \(.mm_share * 100 | round)% of the process'"'"'s time")' $out/results.jsonl

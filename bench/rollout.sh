#!/bin/bash
# bench/rollout.sh: G=8 sampled completions of 128 tokens for one 448x448 image
# on the small preset: vr-rollout (whole process: load, vision, prefill, decode)
# against transformers' generate(num_return_sequences=8, do_sample=True) (the
# call alone), same checkpoint, prompt ids, image and thread count. Peak RSS of
# both. Writes what it needs into bench/out/.
#   bench/rollout.sh [-k] [-t THREADS] [-r REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0 threads=$(nproc) reps=3 G=8 new=128
while getopts kt:r: o; do
	case $o in k) keep=1 ;; t) threads=$OPTARG ;; r) reps=$OPTARG ;; *) exit 2 ;; esac
done
[ $keep = 1 ] || make -s all
TOK=../shared/tokenizers/qwen2.5/tokenizer.json
out=bench/out/rollout
mkdir -p $out
m=bench/out/small-tok-f32
[ -f $m/config.json ] || bin/vr-init --preset small --dtype f32 --tokenizer $TOK -o $m >/dev/null 2>&1
[ -f $out/synth/train.json ] || bin/vr-synth --out $out/synth --seed 1 -n 1 --splits train --size 448x448 >/dev/null
bin/vr-prep $out/synth/train.json | bin/vr-encode --cache $out/cache >$out/enc.jsonl
bin/vr-tokenize -m $m --chat <$out/enc.jsonl >$out/chat.json
img=$(jq -r '.images[0]' $out/enc.jsonl)
echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, threads $threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
ts=()
for r in $(seq 0 "$reps"); do
	s=$( { /usr/bin/time -f '%e %M' env VR_THREADS=$threads bin/vr-rollout -m $m -G $G --max-tokens $new --seed $r \
		$out/enc.jsonl >$out/roll.jsonl; } 2>&1 | tail -1)
	[ "$r" = 0 ] || ts+=("$s")
done
n=$(jq '[.completions[].tokens | length] | add' $out/roll.jsonl)
med=$(printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1; m[NR]=$2} END {print a[int((NR+1)/2)], m[NR]}')
sec=${med% *} rss=${med#* }
vr=$(jq -nc --argjson s "$sec" --argjson n "$n" --argjson rss "$rss" --argjson p "$(jq .n_tokens $out/chat.json)" \
	'{impl:"vr",G:8,new_tokens:($n/8),prompt_tokens:$p,seconds:$s,completion_tokens_per_s:(($n/$s)*10|round/10),max_rss_mb:($rss/1024|round)}')
echo "$vr"
if python3 -c 'import torch, transformers' 2>/dev/null; then
	pj=$(/usr/bin/time -o $out/peer.time -f '%M' python3 bench/rollout_peer.py $m $out/chat.json "$img" "$threads" $G $new "$reps" 2>/dev/null | tail -1)
	prss=$(tail -1 $out/peer.time)
	pj=$(echo "$pj" | jq -c --argjson rss "$prss" '. + {max_rss_mb:($rss/1024|round)}')
	echo "$pj"
	jq -rn --argjson a "$vr" --argjson b "$pj" '"vr \($a.completion_tokens_per_s) vs transformers \($b.completion_tokens_per_s) completion tokens/s: \(($a.completion_tokens_per_s / $b.completion_tokens_per_s * 100 | round) / 100)x; peak RSS \($a.max_rss_mb) MB vs \($b.max_rss_mb) MB"'
else
	echo "# transformers not importable: peer skipped"
fi

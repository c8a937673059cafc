#!/bin/bash
# bench/loop.sh: the steady-state loop (DESIGN.md §2.1) against its peer, one-shot
# pipelines (every stage a new process each step, the run folder written and reloaded
# each step). STEPS GRPO steps of PROMPTS vr-synth scenes x G completions of up to NEW
# tokens on a random PRESET checkpoint (f32, seed 21); advantages forced nonzero with jq
# (a random model scores 0); beta 0, lr 1e-4, one optimizer step per batch.
# Configs, each a whole run from the task lines to the last checkpoint, wall time:
#   oneshot   for each batch: vr-encode | vr-rollout -m run | vr-reward | jq | vr-update -m run -o run
#   loop-s0   one pipeline, vr-rollout --follow --max-staleness 0 ... vr-update --publish
#             (on-policy: its final weights must be bit-identical to oneshot's; checked)
#   loop-s1   the same with --max-staleness 1 (sampling batch k+1 overlaps updating batch k)
# Interleaved, REPEATS times; the median is reported with oneshot / config. Every process
# gets VR_THREADS=THREADS (default nproc: the two long-lived stages then share the cores;
# with -t 1 each gets its own, as rollout and update on separate GPUs). The live folder
# is on /dev/shm. other_cpu_s: CPU time other processes took during the run (from
# /proc/stat minus the run's own); runs with more than a few tenths are not quiet.
#   bench/loop.sh [-k] [-m PRESET] [-s STEPS] [-p PROMPTS] [-G G] [-n NEW] [-t THREADS] [-r REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0 preset=tiny steps=20 prompts=1 G=8 new=64 threads=$(nproc) repeats=3
while getopts km:s:p:G:n:t:r: o; do
	case $o in k) keep=1 ;; m) preset=$OPTARG ;; s) steps=$OPTARG ;; p) prompts=$OPTARG ;; G) G=$OPTARG ;;
	n) new=$OPTARG ;; t) threads=$OPTARG ;; r) repeats=$OPTARG ;; *) exit 2 ;; esac
done
[ $keep = 1 ] || make -s all
export PATH=$PWD/bin:$PATH VR_THREADS=$threads
out=$PWD/bench/out/loop
mkdir -p $out
live=$(mktemp -d /dev/shm/vr-loop-bench.XXXXXX)
trap 'rm -rf "$live"' EXIT
case $preset in
tiny) tok=(--train-tokenizer tests/golden/update/corpus.txt --vocab 256) ;;
*) tok=(--tokenizer ../shared/tokenizers/qwen2.5/tokenizer.json) ;;
esac
policy=$out/policy-$preset
if [ ! -f $policy/config.json ]; then
	vr-init --preset $preset "${tok[@]}" --seed 21 --init-range 0.1 --dtype f32 -o $policy >/dev/null 2>&1
	# no stop id: every completion is NEW tokens long, so that configs whose weights
	# differ (staleness 1 samples from older ones) still do the same work
	jq '.eos_token_id = [-1]' $policy/generation_config.json >$policy/g.tmp
	mv $policy/g.tmp $policy/generation_config.json
fi
n=$((steps * prompts))
tasks=$out/tasks-$n.jsonl
if [ ! -s $tasks ]; then
	rm -rf $out/synth
	vr-synth --out $out/synth --seed 1 -n $n --splits train >/dev/null
	vr-prep $out/synth/train.json >$tasks
fi
vr-encode --cache $out/cache $tasks >/dev/null # warm the pixel cache: every config hits it
FORCE='.completions |= [to_entries[] | .value.advantage = (if .key % 2 == 0 then 0.7 else -0.7 end) | .value]'
ROLL="-G $G --max-tokens $new --seed 1"
UPD="--beta 0 --lr 1e-4"

oneshot() { # run-dir
	rm -rf $1 && cp -r $policy $1
	for ((k = 0; k < steps; k++)); do
		sed -n "$((k * prompts + 1)),$(((k + 1) * prompts))p" $tasks | vr-encode --cache $out/cache |
			vr-rollout -m $1 $ROLL | vr-reward --reward format,iou 2>/dev/null | jq -c "$FORCE" |
			vr-update -m $1 $UPD -o $1 >>$1.metrics
	done
}
loop() { # staleness run-dir
	rm -rf $2 $live/$1
	vr-encode --cache $out/cache <$tasks |
		vr-rollout --follow $live/$1 --max-staleness $1 $ROLL |
		vr-reward --reward format,iou 2>/dev/null | jq --unbuffered -c "$FORCE" |
		vr-update -m $policy --publish $live/$1 --prompts-per-step $prompts $UPD -o $2 >$2.metrics
}
cpu_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
hz=$(getconf CLK_TCK)
# run NAME CMD...: prints "wall cpu other_cpu_s"
run() {
	local name=$1 j0 j1 t
	shift
	rm -f $out/$name.metrics
	j0=$(cpu_jiffies)
	t=$( { TIMEFORMAT='%R %U %S'; time "$@" 2>$out/$name.err; } 2>&1)
	j1=$(cpu_jiffies)
	read -r w u s <<<"$t"
	test $(wc -l <$out/$name.metrics) = $steps || { echo "$name: not $steps metrics lines" >&2; exit 1; }
	awk -v w=$w -v u=$u -v s=$s -v dj=$((j1 - j0)) -v hz=$hz \
		'BEGIN { o = dj / hz - u - s; printf "%s %.2f %.2f\n", w, u + s, (o < 0 ? 0 : o) }'
}
date=$(date -u +%FT%TZ)
echo "# $date $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, VR_THREADS $threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
rows=()
for ((r = 0; r < repeats; r++)); do
	for config in oneshot loop-s0 loop-s1; do
		case $config in
		oneshot) res=$(run oneshot oneshot $out/oneshot) ;;
		loop-s0) res=$(run loop-s0 loop 0 $out/loop-s0) ;;
		loop-s1) res=$(run loop-s1 loop 1 $out/loop-s1) ;;
		esac
		read -r w c o <<<"$res"
		rows+=("$(jq -nc --arg c $config --argjson w $w --argjson cpu $c --argjson o $o --argjson r $r \
			'{config:$c, repeat:$r, wall_s:$w, cpu_s:$cpu, other_cpu_s:$o}')")
		echo "${rows[-1]}" >&2
	done
	cmp -s $out/oneshot/model.safetensors $out/loop-s0/model.safetensors &&
		cmp -s $out/oneshot/optimizer.safetensors $out/loop-s0/optimizer.safetensors ||
		{ echo "loop-s0's weights differ from oneshot's" >&2; exit 1; }
done
tokens=$(jq -s '[.[].tokens] | add' $out/oneshot.metrics)
for c in loop-s0 loop-s1; do
	test "$(jq -s '[.[].tokens] | add' $out/$c.metrics)" = $tokens || { echo "$c: not $tokens completion tokens" >&2; exit 1; }
done
printf '%s\n' "${rows[@]}" | jq -sc --arg date "$date" --arg preset $preset --argjson steps $steps \
	--argjson prompts $prompts --argjson G $G --argjson new $new --argjson th $threads --argjson tok $tokens '
	def median: sort | .[(length - 1) / 2 | floor];
	group_by(.config) | map({bench:"loop", date:$date, preset:$preset, steps:$steps, prompts_per_step:$prompts,
		G:$G, max_tokens:$new, threads:$th, completion_tokens:$tok, config:.[0].config,
		wall_s:([.[].wall_s] | median), cpu_s:([.[].cpu_s] | median), walls:[.[].wall_s],
		other_cpu_s:([.[].other_cpu_s] | max)}) |
	(map(select(.config == "oneshot"))[0].wall_s) as $peer |
	sort_by(-.wall_s)[] | . + {speedup:((($peer / .wall_s) * 100 | round) / 100)}' >$out/results.jsonl
cat $out/results.jsonl
jq -rs '"| config | wall s (median) | runs | CPU s | s / step | oneshot / config | other CPU s |",
	"|---|---:|---|---:|---:|---:|---:|",
	(.[] | "| \(.config) | \(.wall_s) | \(.walls | map(tostring) | join(", ")) | \(.cpu_s) | \((.wall_s / .steps * 100 | round) / 100) | \(.speedup)x | \(.other_cpu_s) |")' \
	$out/results.jsonl

#!/bin/bash
# bench/update_mpi.sh: data-parallel vr-update (DESIGN.md §8) on the small
# preset: the same GRPO step as 1 process on all the threads (the peer) and as
# N ranks under mpirun sharing them, each rank with threads/N. The batch and
# step are bench/update.sh's (PROMPTS vr-synth scenes x G completions of NEW
# tokens, advantages forced nonzero, beta 0.04 against --ref, lr 1e-6, clip
# 1.0, AdamW), packed into micro-batches of at most BUDGET tokens (-b; the
# default is a quarter of the batch, so 2 ranks get 2 micro-batches each; 1
# process gets the same micro-batches). Each process takes 1 + STEPS steps on
# the same batch: the first (cold) apart, then the median of the rest.
# Step seconds: vr's metrics "seconds" (reference forward, forward, loss,
# backward, gradient sum, clip, AdamW); comm: "comm_seconds", the seconds
# rank 0 spent in collectives, waiting for the other ranks included (the
# gradient sum of the trainable weights, 4 bytes each, and the metrics').
# Writes what it needs into bench/out/update/ (as bench/update.sh).
#   bench/update_mpi.sh [-k] [-t THREADS] [-r RANKS] [-s STEPS] [-G G] [-n NEW] [-p PROMPTS] [-b BUDGET]
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0 threads=$(nproc) ranks=2 steps=3 G=4 new=64 prompts=2 budget=0
while getopts kt:r:s:G:n:p:b: o; do
	case $o in k) keep=1 ;; t) threads=$OPTARG ;; r) ranks=$OPTARG ;; s) steps=$OPTARG ;; G) G=$OPTARG ;;
	n) new=$OPTARG ;; p) prompts=$OPTARG ;; b) budget=$OPTARG ;; *) exit 2 ;; esac
done
command -v mpirun >/dev/null || { echo "bench/update_mpi.sh: no mpirun (share/deps.sh installs Open MPI)" >&2; exit 1; }
[ $keep = 1 ] || make -s all
out=bench/out/update
batch=$out/mpi-scored-$prompts-$G-$new.jsonl
. bench/update_batch.sh
update_batch $out "$prompts" "$G" "$new" $batch
for ((i = 0; i <= steps; i++)); do cat $batch; done >$out/mpi-steps.jsonl
# tokens through the model: prompt + each completion
tokens=$(jq -s '[.[] | .prompt_tokens as $p | .completions[] | $p + (.tokens | length)] | add' $batch)
[ "$budget" -gt 0 ] || budget=$(( (tokens + 3) / 4 ))
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader \
	OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
ARGS=(-m $out/policy --ref $out/ref --beta 0.04 --temperature 1.0 --lr 1e-6 --max-batch-tokens $budget
	--prompts-per-step "$prompts" $out/mpi-steps.jsonl)
echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, threads $threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# batch: $prompts prompts x G=$G x $new new tokens, $tokens tokens through the model, micro-batches of <= $budget"
# summary NAME: cold step, median step, median comm of the metrics in $out/NAME.metrics
summary() {
	jq -s -c --arg n "$1" '. as $m | ($m[1:] | map(.seconds) | sort) as $s | ($m[1:] | map(.comm_seconds // 0) | sort) as $c |
		{config: $n, first_s: $m[0].seconds, step_s: $s[($s | length) / 2 | floor], comm_s: $c[($c | length) / 2 | floor],
		 loss: $m[0].loss, grad_norm: $m[0].grad_norm}' $out/$1.metrics
}
rm -rf $out/mpi-run1 $out/mpi-runN
VR_THREADS=$threads bin/vr-update "${ARGS[@]}" -o $out/mpi-run1 >$out/one.metrics
one=$(summary one)
per=$(( threads / ranks > 0 ? threads / ranks : 1 ))
mpirun --oversubscribe -np "$ranks" -x VR_THREADS=$per bin/vr-update "${ARGS[@]}" -o $out/mpi-runN >$out/ranks.metrics
many=$(summary ranks)
echo "$one"
echo "$many"
jq -n -r --argjson a "$one" --argjson b "$many" --arg r "$ranks" --arg t "$threads" --arg p "$per" '
	"| config | first step s | step s | comm s (share) | ratio to 1 process |",
	"|---|---|---|---|---|",
	"| 1 process, \($t) threads (peer) | \($a.first_s) | \($a.step_s) | 0 | 1.00 |",
	"| \($r) ranks x \($p) threads | \($b.first_s) | \($b.step_s) | \($b.comm_s) (\(100 * $b.comm_s / $b.step_s | floor)%) | \($b.step_s / $a.step_s * 100 | round / 100) |",
	"",
	"loss \($a.loss) / \($b.loss), grad norm \($a.grad_norm) / \($b.grad_norm)"'

#!/bin/bash
# bench/forward.sh: Qwen2.5-VL forward on the CPU, vr against transformers on
# the same checkpoint, same thread count, same prompt (one 448x448 image + 64
# text tokens): vision images/s, prefill tokens/s, decode ms/token (transformers:
# generate() per new token). Writes the checkpoints it needs into bench/out/.
#   bench/forward.sh [-k] [-t THREADS] [-p PRESET]
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0 threads=$(nproc) preset=small
while getopts kt:p: o; do
	case $o in k) keep=1 ;; t) threads=$OPTARG ;; p) preset=$OPTARG ;; *) exit 2 ;; esac
done
[ $keep = 1 ] || make -s bin/vr-init build/bench/forward
mkdir -p bench/out
for dt in f32 bf16; do
	d=bench/out/$preset-$dt
	[ -f "$d/config.json" ] || bin/vr-init --preset "$preset" --dtype $dt -o "$d" >/dev/null 2>&1
done
echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, threads $threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
rows=()
for dt in f32 bf16; do
	rows+=("$(VR_THREADS=$threads build/bench/forward bench/out/$preset-$dt --repeats 3)")
	echo "${rows[-1]}"
done
if python3 -c 'import torch, transformers' 2>/dev/null; then
	rows+=("$(python3 bench/forward_peer.py bench/out/$preset-f32 "$threads" 2>/dev/null | tail -1)")
	echo "${rows[-1]}"
else
	echo "# transformers not importable: peer skipped"
fi
printf '%s\n' "${rows[@]}" | jq -rs '
  (map(select(.impl == "transformers")) | first) as $p |
  "| impl | weights | vision img/s | prefill tok/s | decode ms/tok | vs transformers: vision, prefill, decode |",
  "|---|---|---:|---:|---:|---|",
  (.[] | "| \(.impl) | \(.dtype) | \(.images_per_s) | \(.prefill_tokens_per_s) | \(.decode_ms_per_token) | " +
    (if $p then "\((.images_per_s / $p.images_per_s * 100 | round) / 100)x, \((.prefill_tokens_per_s / $p.prefill_tokens_per_s * 100 | round) / 100)x, \(($p.decode_ms_per_token / .decode_ms_per_token * 100 | round) / 100)x" else "-" end) + " |")'

#!/bin/sh
# bench/st_open.sh: vr_safetensors open+validate+close on a ~1 GB Qwen2.5-VL-3B
# shaped shard (build/bench/st_open, see bench/st_open.c) against the Python
# safetensors package (safe_open(path, "np") + listing the keys; and, as a
# second row, + get_slice(k).get_shape() of every tensor, the closer twin of
# vr's find of every tensor). Warm page cache, in-process timing on both
# sides, warm-up then median of RUNS.
#
#   bench/st_open.sh [-r RUNS] [-k]      (-k: keep using an existing build)
#
# Prints one JSONL record per configuration, then a markdown table. Without
# python3 + safetensors the peer is skipped with a message.
set -eu

runs=50 warmup=5 build=1
while getopts "r:kh" opt; do
    case $opt in
    r) runs=$OPTARG ;;
    k) build=0 ;;
    h) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
[ "$build" = 1 ] && make -s build/bench/st_open >&2
file=bench/out/qwen2_5_vl_3b_vision.safetensors
build/bench/st_open --file "$file" --create-only

peer_args=
peer_jsonl=
if command -v python3 > /dev/null 2>&1 && python3 -c 'import safetensors, numpy' 2> /dev/null; then
    peer_jsonl=$(python3 - "$file" "$warmup" "$runs" << 'EOF'
import json, statistics, sys, time
import safetensors
from safetensors import safe_open

path, warmup, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def keys_only():
    with safe_open(path, "np") as f:
        return len(list(f.keys()))

def keys_and_shapes():
    with safe_open(path, "np") as f:
        n = 0
        for k in f.keys():
            s = f.get_slice(k)
            s.get_shape(), s.get_dtype()
            n += 1
        return n

for name, fn in (("safe_open+keys", keys_only), ("safe_open+keys+get_slice shapes", keys_and_shapes)):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        n = fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    print(json.dumps({"bench": "st_open", "config": "python safetensors " + safetensors.__version__ + " " + name,
                      "file": path, "tensors": n, "warmup": warmup, "runs": runs,
                      "median_ms": round(statistics.median(ts), 3), "min_ms": round(ts[0], 3),
                      "p90_ms": round(ts[(runs * 9) // 10], 3), "max_ms": round(ts[-1], 3)}))
EOF
)
    # the ratio is taken against the first row (the peer the brief names)
    med=$(echo "$peer_jsonl" | head -1 | sed 's/.*"median_ms": \([0-9.]*\).*/\1/')
    min=$(echo "$peer_jsonl" | head -1 | sed 's/.*"min_ms": \([0-9.]*\).*/\1/')
    peer_args="--peer-median-ms $med --peer-min-ms $min"
else
    echo "st_open.sh: python3 with safetensors and numpy not importable: skipping the peer" >&2
fi

out=$(build/bench/st_open --file "$file" --runs "$runs" --warmup "$warmup" \
    ${peer_args:+--peer "python safe_open+keys"} $peer_args) || rc=$?
# JSONL first (the vr record, then the peers), then vr's table with the peer rows added
echo "$out" | head -1
[ -n "$peer_jsonl" ] && echo "$peer_jsonl"
echo "$out" | sed -n '2,/^$/p' | sed '/^$/d' | grep -v '^| python safe_open+keys |'
if [ -n "$peer_jsonl" ]; then
    echo "$peer_jsonl" | while read -r l; do
        c=$(echo "$l" | sed 's/.*"config": "\([^"]*\)".*/\1/')
        m=$(echo "$l" | sed 's/.*"median_ms": \([0-9.]*\).*/\1/')
        n=$(echo "$l" | sed 's/.*"min_ms": \([0-9.]*\).*/\1/')
        p=$(echo "$l" | sed 's/.*"p90_ms": \([0-9.]*\).*/\1/')
        echo "| $c | $m | $n | $p | |"
    done
fi
echo
echo "$out" | tail -1
echo "Load average: $(cut -d' ' -f1-3 /proc/loadavg)."
exit "${rc:-0}"

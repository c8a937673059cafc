#!/usr/bin/env bash
# bench/tokenize.sh: vr-tokenize against the tokenizers library (Rust, through
# Python) with the real Qwen2.5 tokenizer.json, on one core: load time, and
# encoding speed on English prose, Chinese text and the mixed golden corpus.
# vr's figures come from `vr-tokenize --stats` (load; encode time excluding
# load and output); the peer's from time.perf_counter() around
# Tokenizer.from_file and around encode_batch with RAYON_NUM_THREADS=1 (one
# core, Python call overhead amortised over the batch). Median of R runs each,
# interleaved.
#
#   bench/tokenize.sh [-r REPEATS] [-k]     -k: use the existing build
#
# Prints one JSONL record per configuration, then a markdown table.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
repeats=5 build=1
while getopts "r:kh" opt; do
    case $opt in
    r) repeats=$OPTARG ;;
    k) build=0 ;;
    h) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
tok=../shared/tokenizers/qwen2.5/tokenizer.json
[ -f "$tok" ] || { echo "tokenize: no $tok" >&2; exit 1; }
[ "$build" = 1 ] && make -s bin/vr-tokenize >&2
mkdir -p bench/out
G=tests/golden/tokenizer
# English: the design documents, 20 times (~1.6 MB); Chinese: the corpus's
# Chinese lines, 200 times; mixed: the golden corpus, 8 times
for i in $(seq 20); do cat ../shared/DESIGN.md ../shared/STYLE.md ../shared/qwen25vl.md; done |
    sed 's/$//' >bench/out/tok-en.txt
paste "$G/corpus.tags" "$G/corpus.jsonl" | awk -F '\t' '$1 == "chinese" { print $2 }' >bench/out/tok-zh1.jsonl
for i in $(seq 200); do cat bench/out/tok-zh1.jsonl; done >bench/out/tok-zh.jsonl
for i in $(seq 8); do cat "$G/corpus.jsonl"; done >bench/out/tok-mixed.jsonl

py_peer='
import json, sys, time
from tokenizers import Tokenizer
t0 = time.perf_counter(); tok = Tokenizer.from_file(sys.argv[1]); load = time.perf_counter() - t0
path, js = sys.argv[2], sys.argv[3] == "json"
lines = [json.loads(l) if js else l.rstrip("\n") for l in open(path, encoding="utf-8")]
nbytes = sum(len(l.encode()) for l in lines)
t0 = time.perf_counter(); enc = tok.encode_batch(lines, add_special_tokens=False); dt = time.perf_counter() - t0
print(load * 1e3, nbytes / dt / 1e6, sum(len(e.ids) for e in enc))
'
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
table=()
for set in en zh mixed; do
    f=bench/out/tok-$set.txt json=text flag=
    [ -f "$f" ] || { f=bench/out/tok-$set.jsonl json=json flag=--json; }
    : >bench/out/vr.$set >bench/out/py.$set
    for r in $(seq "$repeats"); do
        bin/vr-tokenize -t "$tok" $flag --stats "$f" 2>&1 >/dev/null |
            awk '{ for (i = 1; i < NF; i++) { if ($(i+1) == "ms,") ms = $i; if ($(i+1) == "MB/s") m = $i; if ($(i+1) == "tokens,") n = $i } } END { print ms, m, n }' >>bench/out/vr.$set
        RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false python3 -c "$py_peer" "$tok" "$f" "$json" >>bench/out/py.$set
    done
    vl=$(cut -d' ' -f1 bench/out/vr.$set | median) vm=$(cut -d' ' -f2 bench/out/vr.$set | median)
    pl=$(cut -d' ' -f1 bench/out/py.$set | median) pm=$(cut -d' ' -f2 bench/out/py.$set | median)
    vn=$(head -1 bench/out/vr.$set | cut -d' ' -f3) pn=$(head -1 bench/out/py.$set | cut -d' ' -f3)
    [ "$vn" = "$pn" ] || { echo "tokenize: $set: vr made $vn tokens, tokenizers $pn" >&2; exit 1; }
    bytes=$(wc -c <"$f")
    printf '{"set":"%s","bytes":%s,"tokens":%s,"vr_load_ms":%s,"vr_mb_s":%s,"peer_load_ms":%.1f,"peer_mb_s":%.2f,"repeats":%s}\n' \
        "$set" "$bytes" "$vn" "$vl" "$vm" "$pl" "$pm" "$repeats"
    table+=("$(printf '| %s | %s | %s | %.2f | %.2f | **%.2f** | %.1f | %.1f |' "$set" "$bytes" "$vn" "$vm" "$pm" \
        "$(echo "$vm / $pm" | bc -l)" "$vl" "$pl")")
done
echo
echo "| text | bytes | tokens | vr MB/s | tokenizers MB/s (1 thread) | vr / tokenizers | vr load ms | tokenizers load ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${table[@]}"

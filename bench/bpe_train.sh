#!/usr/bin/env bash
# bench/bpe_train.sh: `vr-init --train-tokenizer` (whole runs: read, NFC,
# pre-tokenize, learn the merges, write tokenizer.json and a tiny model)
# against the tokenizers library's BpeTrainer with the same normalizer,
# pre-tokenizer, byte alphabet, vocab_size and min_frequency 2 (train() only,
# timed by time.perf_counter() and time.process_time(); its own threads,
# RAYON_NUM_THREADS unset). Wall and CPU (user + sys) seconds, median of R
# interleaved runs per vocabulary (CPU time is the steadier figure on shared
# cores); checks whether both learn the same merges and vocabulary.
#
#   bench/bpe_train.sh [-r REPEATS] [-c CORPUS] [-o OLD_VR_INIT] [-k]
#     -c: the corpus (default: ../shared/DESIGN.md, README.md, man/man1/*.1 and
#         lib/*.c of this tree, cut at 414,000 bytes)
#     -o: also time another vr-init (an older build) and cmp its tokenizer.json
#     -k: use the existing build
#
# Prints one JSONL record per vocabulary, then a markdown table.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
repeats=5 build=1 corpus= old=
while getopts "r:c:o:kh" opt; do
    case $opt in
    r) repeats=$OPTARG ;;
    c) corpus=$OPTARG ;;
    o) old=$OPTARG ;;
    k) build=0 ;;
    h) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
[ "$build" = 1 ] && make -s bin/vr-init >&2
mkdir -p bench/out
if [ -z "$corpus" ]; then
    corpus=bench/out/bpe-corpus.txt
    cat ../shared/DESIGN.md README.md man/man1/*.1 lib/*.c >bench/out/bpe-all.txt
    head -c 414000 bench/out/bpe-all.txt >"$corpus"
fi
have_peer=1
python3 -c 'import tokenizers' 2>/dev/null || have_peer=0
py_peer='
import json, sys, time
from tokenizers import Tokenizer, models, trainers, pre_tokenizers
ours = json.load(open(sys.argv[1])); base = Tokenizer.from_file(sys.argv[1])
t = Tokenizer(models.BPE()); t.normalizer = base.normalizer; t.pre_tokenizer = base.pre_tokenizer
tr = trainers.BpeTrainer(vocab_size=int(sys.argv[3]), min_frequency=2, show_progress=False,
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
t0, c0 = time.perf_counter(), time.process_time(); t.train([sys.argv[2]], tr)
dt, dc = time.perf_counter() - t0, time.process_time() - c0
m = json.loads(t.to_str())["model"]
print(dt, dc, int(m["merges"] == ours["model"]["merges"] and m["vocab"] == ours["model"]["vocab"]))
'
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# wall and CPU seconds of a command, on one line
secs() { /usr/bin/time -f '%e %U %S' -o bench/out/bt-time "$@" >/dev/null 2>&1 &&
    awk '{ print $1, $2 + $3 }' bench/out/bt-time; }
bytes=$(wc -c <"$corpus") sum=$(sha256sum <"$corpus" | cut -c1-16)
table=()
for vocab in 400 1000 4000; do
    : >bench/out/bt-vr >bench/out/bt-old >bench/out/bt-py
    same_old=null same_peer=null
    for r in $(seq "$repeats"); do
        secs bin/vr-init --preset tiny --train-tokenizer "$corpus" --vocab "$vocab" --dtype f32 --force \
            -o bench/out/bt-new >>bench/out/bt-vr
        if [ -n "$old" ] && [ "$r" = 1 ]; then # the old trainer can take minutes: once
            secs "$old" --preset tiny --train-tokenizer "$corpus" --vocab "$vocab" --dtype f32 --force \
                -o bench/out/bt-old-out >>bench/out/bt-old
            cmp -s bench/out/bt-new/tokenizer.json bench/out/bt-old-out/tokenizer.json && same_old=true || same_old=false
        fi
        if [ "$have_peer" = 1 ]; then
            python3 -c "$py_peer" bench/out/bt-new/tokenizer.json "$corpus" "$vocab" >>bench/out/bt-py
        fi
    done
    vr=$(cut -d' ' -f1 bench/out/bt-vr | median) vc=$(cut -d' ' -f2 bench/out/bt-vr | median)
    py=null pc=null od=null oc=null
    merges=$(jq '.model.merges | length' bench/out/bt-new/tokenizer.json)
    [ -s bench/out/bt-old ] && od=$(cut -d' ' -f1 bench/out/bt-old) oc=$(cut -d' ' -f2 bench/out/bt-old)
    if [ -s bench/out/bt-py ]; then
        py=$(cut -d' ' -f1 bench/out/bt-py | median | xargs printf '%.3f')
        pc=$(cut -d' ' -f2 bench/out/bt-py | median | xargs printf '%.3f')
        grep -q ' 0$' bench/out/bt-py && same_peer=false || same_peer=true
    fi
    printf '{"vocab":%s,"corpus_bytes":%s,"corpus_sha256":"%s","merges":%s,"vr_s":%s,"vr_cpu_s":%s,"old_vr_s":%s,"old_vr_cpu_s":%s,"same_as_old":%s,"peer_s":%s,"peer_cpu_s":%s,"same_as_peer":%s,"repeats":%s}\n' \
        "$vocab" "$bytes" "$sum" "$merges" "$vr" "$vc" "$od" "$oc" "$same_old" "$py" "$pc" "$same_peer" "$repeats"
    ratio=n/a
    [ "$py" != null ] && ratio=$(printf '%.2f' "$(echo "$vr / $py" | bc -l)")
    table+=("$(printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | **%s** | %s |' "$vocab" "$merges" "$vr" "$vc" \
        "$od" "$oc" "$same_old" "$py" "$pc" "$ratio" "$same_peer")")
done
echo
echo "| vocab | merges | vr-init s | vr-init CPU s | old s | old CPU s | same bytes as old | tokenizers s | tokenizers CPU s | vr / tokenizers (wall) | same merges |"
echo "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|"
printf '%s\n' "${table[@]}"

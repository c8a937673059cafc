#!/bin/bash
# examples/cron/ground.sh: batch grounding for a cron job. A folder of images
# and a file of expressions in; one JSONL line per (image, expression) out,
# with the predicted box in the original image's pixels. No gold boxes.
#
#   ground.sh MODEL IMAGES EXPRESSIONS OUT.jsonl
#
# EXPRESSIONS: lines "IMAGE<TAB>EXPRESSION", IMAGE relative to IMAGES
# ("street/042.jpg<TAB>the red car behind the bus"). Each pair's id is
# "IMAGE#EXPRESSION". Idempotent: ids already in OUT.jsonl are skipped, so the
# same crontab line can run every hour on a growing folder. Safe after kill -9:
# new boxes are computed into a temporary file and OUT.jsonl is replaced
# (old lines + new, fsynced, renamed) only when the whole batch is done.
#
# Environment: VR (folder of the vr programs, default: on PATH), CACHE (pixel
# cache, default OUT.jsonl.cache), TOKENS (default 256). Any vr-rollout flag
# can go in ROLLOUT_FLAGS.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 MODEL IMAGES EXPRESSIONS OUT.jsonl" >&2; exit 2; }
model=$1 images=$(cd "$2" && pwd) exprs=$3 out=$4
vr=${VR:+$VR/}
cache=${CACHE:-$out.cache}
touch "$out"

# one lock: two runs at once would both add the same ids; holding it, any
# temporary folder left beside OUT is a killed run's, and goes
exec 9>>"$out.lock"
flock -n 9 || { echo "ground.sh: another run holds $out.lock" >&2; exit 1; }
rm -rf "$(dirname "$out")"/.ground.??????
tmp=$(mktemp -d "$(dirname "$out")/.ground.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# task lines for the pairs not done yet
jq -r '.id' "$out" | sort -u >"$tmp/done"
jq -R -c --arg dir "$images" --rawfile done "$tmp/done" '
	($done | split("\n") | map({(.): true}) | add // {}) as $seen |
	split("\t") | select(length == 2) |
	{id: (.[0] + "#" + .[1]), split: "cron", task: "rec", images: [$dir + "/" + .[0]],
	 problem: ("Please provide the bounding box coordinate of the region this sentence describes: " + .[1] + "."),
	 label: .[1]} | select($seen[.id] | not)' "$exprs" >"$tmp/todo.jsonl"
n=$(wc -l <"$tmp/todo.jsonl")
if [ "$n" -eq 0 ]; then echo "ground.sh: nothing new" >&2; exit 0; fi
echo "ground.sh: $n new" >&2

"${vr}vr-encode" --cache "$cache" "$tmp/todo.jsonl" |
	"${vr}vr-rollout" -m "$model" -G 1 --greedy --max-tokens "${TOKENS:-256}" ${ROLLOUT_FLAGS:-} |
	"${vr}vr-eval" |
	jq -c 'select(.summary | not) | {id, image: (.id | split("#")[0]), expression: (.id | split("#")[1:] | join("#")), box: .pred, parse}' \
	>"$tmp/new.jsonl"

# all or nothing: old lines + new ones, fsynced, then one rename
cat "$out" "$tmp/new.jsonl" >"$tmp/out.jsonl"
sync "$tmp/out.jsonl"
mv "$tmp/out.jsonl" "$out"
sync "$(dirname "$out")"
echo "ground.sh: $(wc -l <"$tmp/new.jsonl") boxes added to $out" >&2

#!/bin/bash
# vr-encode --vision: the vision tower's embeddings cached beside the pixels,
# keyed by the pixel entry and the vision weights' hash; a second run hits
# (no entry rewritten), another model gets other keys. (That the cached
# embeddings are a direct vr_vision_fwd, bit for bit: build/tests/vcache.t.)
. "$(dirname "$0")/lib.sh"
test_have_prereq JQ || skip_all "no jq"
G=$SRC_DIR/tests/golden/images
M=$SRC_DIR/tests/golden/model/ckpt
task() { printf '{"id":"%s","images":[%s],"problem":"p","solution":"s"}\n' "$1" "$2"; }
for f in rgb_211x143.png grey_199x101.png rgb444_301x199.jpg rgb_211x143.png; do
	task "$f" "\"$G/$f\""
done >tasks.jsonl
# the golden checkpoint has no preprocessor_config.json: small images keep it quick
enc() { vr-encode --max-pixels 40000 "$@"; }

test_expect_success 'every line gains vision {file, model}; nothing else changes' '
	enc -c c tasks.jsonl >plain &&
	enc -c c --model "$M" --vision tasks.jsonl >out &&
	jq -c "del(.vision)" out >a && test_cmp plain a &&
	jq -e "has(\"vision\") and (.vision | keys) == [\"file\",\"model\"] and
		(.vision.model | test(\"^[0-9a-f]{16}$\"))" out >/dev/null &&
	test $(jq -r .vision.model out | sort -u | wc -l) = 1 &&
	test $(jq -r .vision.file out | sort -u | wc -l) = 3 &&
	jq -r .vision.file out | xargs -n1 test -s
'
test_expect_success 'an entry holds embeds F32 [grid_h*grid_w/4, out_hidden 64] and its checksum' '
	f=$(jq -r .vision.file out | head -1) &&
	n=$(jq ".pixels.grid_thw | .[0] * .[1] * .[2] / 4" out | head -1) &&
	hlen=$(od -An -tu8 -N8 "$f" | tr -d " ") &&
	test $(stat -c %s "$f") = $((8 + hlen + n * 64 * 4)) &&
	head -c $((8 + hlen)) "$f" | tail -c "$hlen" >header &&
	jq -e ".embeds.dtype == \"F32\" and .embeds.shape == [$n,64] and
		.__metadata__.format == \"vr-vision/1\" and
		.__metadata__.model == \"$(jq -r .vision.model out | head -1)\" and
		(.__metadata__.embeds_xxh3 | test(\"^[0-9a-f]{32}$\"))" header
'
test_expect_success 'a second run hits: same lines, no entry rewritten' '
	ls -li c >before &&
	enc -c c --model "$M" --vision --max-decode-pixels 1 tasks.jsonl >out2 2>err &&
	test_cmp out out2 && test ! -s err &&
	ls -li c >after && test_cmp before after
'
test_expect_success 'a torn vision entry is rebuilt with a warning' '
	f=$(jq -r .vision.file out | head -1) && cp "$f" saved &&
	s=$(stat -c %s "$f") &&
	dd if=/dev/zero of="$f" bs=1 seek=$((s - 16)) count=16 conv=notrunc 2>/dev/null &&
	enc -c c --model "$M" --vision tasks.jsonl >out3 2>err &&
	test_cmp out out3 && cmp "$f" saved &&
	grep -q "^vr-encode: $f: embeds checksum mismatch .*(rebuilt the cache entry)$" err
'
test_expect_success 'several images: vision is a list, in order' '
	task two "\"$G/grey_199x101.png\",\"$G/rgb_211x143.png\"" | enc -c c --model "$M" --vision >two &&
	test "$(jq -r ".vision[0].file" two)" = "$(jq -r .vision.file out | sed -n 2p)" &&
	test "$(jq -r ".vision[1].file" two)" = "$(jq -r .vision.file out | sed -n 1p)"
'
test_expect_success 'another model (vr-init --seed) gets another vision hash and other keys' '
	vr-init --preset tiny --seed 1 -o m1 >/dev/null &&
	vr-init --preset tiny --seed 2 -o m2 >/dev/null &&
	enc -c c --model m1 --vision tasks.jsonl >o1 &&
	enc -c c --model m2 --vision tasks.jsonl >o2 &&
	a=$(jq -r .vision.model o1 | head -1) && b=$(jq -r .vision.model o2 | head -1) &&
	test "$a" != "$b" && test "$a" != "$(jq -r .vision.model out | head -1)" &&
	jq -r .vision.file o1 >f1 && jq -r .vision.file o2 >f2 && ! grep -qxFf f1 f2 &&
	enc -c c --model m1 --vision tasks.jsonl >o1b && test_cmp o1 o1b
'
test_expect_code 2 '--vision without --model is a usage error' 'vr-encode --vision </dev/null'
test_expect_success '--vision with a preprocessing patch the tower does not have: usage error' '
	mkdir m3 && cp "$M"/* m3/ && echo "{\"patch_size\": 16}" >m3/preprocessor_config.json &&
	{ vr-encode -c c --model m3 --vision tasks.jsonl 2>err; test $? = 2; } &&
	grep -q "^vr-encode: --vision: the preprocessing.s patch 16" err
'
test_done

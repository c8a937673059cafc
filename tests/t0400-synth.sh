#!/bin/bash
# vr-synth: the files it writes, what vr-prep makes of them, determinism
# (same seed, any -j: same bytes), split properties seen from the JSON, errors.
# Exact boxes and the expressions' meaning are checked in tests/unit/synth.c.
. "$(dirname "$0")/lib.sh"
test_have_prereq JQ || skip_all "no jq"

test_expect_success 'writes images and one REC JSON per split' '
	vr-synth --out d --seed 1 -n 12 >tasks.jsonl &&
	for s in train val ood; do
		test -f d/$s.json && test $(ls d/images/$s | wc -l) = 12 &&
		test $(jq length d/$s.json) = 12 || return 1
	done &&
	test $(wc -l <tasks.jsonl) = 36 && test -z "$(find d -name "*.tmp.*")"
'
test_expect_success 'records carry the VLM-R1 REC fields, in order' '
	jq -c ".[0] | keys_unsorted" d/train.json >keys &&
	echo "[\"image\",\"width\",\"height\",\"problem\",\"normal_caption\",\"think\",\"solution\",\"normalized_solution\"]" >want &&
	test_cmp want keys &&
	jq -r ".[0].image" d/train.json >img && echo images/train/000000.png >want && test_cmp want img
'
test_expect_success 'problem is the REC sentence around normal_caption' '
	jq -r ".[] | select(.problem != (\"Please provide the bounding box coordinate of the region this sentence describes: \" + .normal_caption + \".\")) | .image" \
		d/train.json d/val.json d/ood.json >bad && test ! -s bad
'
test_expect_success 'boxes are integer pixels inside the image; normalized is 0-1000 rounded half up' '
	jq -r ".[] | select(
		(.solution | map(. == floor) | all | not) or
		.solution[0] < 0 or .solution[1] < 0 or .solution[0] >= .solution[2] or
		.solution[1] >= .solution[3] or .solution[2] > .width or .solution[3] > .height or
		.normalized_solution != ([ (.solution[0] * 1000 + (.width / 2 | floor)) / .width,
			(.solution[1] * 1000 + (.height / 2 | floor)) / .height,
			(.solution[2] * 1000 + (.width / 2 | floor)) / .width,
			(.solution[3] * 1000 + (.height / 2 | floor)) / .height ] | map(floor))
		) | .image" d/train.json d/val.json d/ood.json >bad && test ! -s bad
'
test_expect_success 'images are PNGs of the recorded size' '
	jq -r ".[0] | \"\(.image) \(.width) \(.height)\"" d/ood.json | {
		read -r img w h &&
		test "$(head -c 8 d/$img | od -An -tx1 | tr -d " ")" = 89504e470d0a1a0a &&
		test "$(od -An -tu1 -j16 -N8 d/$img | awk "{print \$3*256+\$4, \$7*256+\$8}")" = "$w $h"
	}
'
test_expect_success 'vr-prep reads every split, images checked' '
	vr-prep d/train.json --check-images >train.tasks &&
	test $(wc -l <train.tasks) = 12 &&
	vr-prep d/train.json d/val.json d/ood.json --check-images --format vlmr1 >all.tasks &&
	test $(wc -l <all.tasks) = 36
'
test_expect_success 'task lines on stdout are what vr-prep makes of the JSON, byte for byte' '
	test_cmp all.tasks tasks.jsonl
'
test_expect_success 'vr-synth | vr-prep: the stream passes through unchanged' '
	vr-synth --out d --seed 1 -n 12 | vr-prep --check-images >piped &&
	test_cmp all.tasks piped &&
	vr-synth --out d --seed 1 -n 12 | vr-prep --take random:5 --seed 2 | jq -r .split >splits &&
	test $(wc -l <splits) = 5
'
test_expect_success 'same seed: the same bytes, with -j 1 and -j 2' '
	vr-synth --out a --seed 5 -n 30 -j 1 >a.tasks &&
	vr-synth --out b --seed 5 -n 30 -j 2 >b.tasks &&
	diff -r a b && sed s,/a/,/b/, a.tasks >a2.tasks && test_cmp a2.tasks b.tasks
'
test_expect_success 'same seed in JPEG, -j 1 and -j 3: the same bytes' '
	vr-synth --out ja --seed 5 -n 10 -j 1 -f jpg >/dev/null &&
	vr-synth --out jb --seed 5 -n 10 -j 3 -f jpg >/dev/null && diff -r ja jb &&
	test "$(head -c 3 ja/images/val/000004.jpg | od -An -tx1 | tr -d " ")" = ffd8ff &&
	jq -r ".[0].image" ja/val.json | grep -q "^images/val/000000.jpg$" &&
	vr-prep ja/val.json ja/ood.json --check-images >/dev/null
'
test_expect_success 'another seed gives other scenes' '
	vr-synth --out c --seed 6 -n 30 >/dev/null && ! cmp -s a/train.json c/train.json
'
test_expect_success 'scene k does not depend on -n' '
	vr-synth --out small --seed 5 -n 7 >/dev/null &&
	for s in train val ood; do
		cmp small/images/$s/000006.png a/images/$s/000006.png &&
		jq -c ".[0:7]" a/$s.json >big && jq -c . small/$s.json >sm && test_cmp big sm || return 1
	done
'
test_expect_success '--splits picks splits, order and counts' '
	vr-synth --out e --splits ood:3,val -n 2 >e.tasks &&
	jq -r .id e.tasks | tr "\n" " " >ids && printf "ood/0 ood/1 ood/2 val/0 val/1 " >want &&
	test_cmp want ids && test ! -e e/train.json && test ! -e e/images/train
'
test_expect_success '--size sets train and val; ood keeps the area, not the aspect ratio' '
	vr-synth --out f --size 250x170 -n 20 >/dev/null &&
	jq -r ".[] | \"\(.width)x\(.height)\"" f/train.json f/val.json | sort -u >sizes &&
	echo 250x170 >want && test_cmp want sizes &&
	jq -r ".[] | select(.width * 170 == .height * 250 or .width * .height < 250 * 170 * 0.8 or
		.width * .height > 250 * 170 * 1.25) | .image" f/ood.json >bad && test ! -s bad
'
test_expect_success 'default ood sizes are multiples of 28 with other aspect ratios' '
	jq -r ".[] | \"\(.width)x\(.height)\"" d/ood.json | sort -u >sizes &&
	test $(grep -c . sizes) -ge 2 && ! grep -q "^336x336$" sizes &&
	jq -r ".[] | select(.width % 28 != 0 or .height % 28 != 0) | .image" d/ood.json >bad && test ! -s bad
'
HELD='red square|orange ring|yellow hexagon|green triangle|blue cross|purple circle|brown star|black diamond'
OOD_WORDS='on the left side of|on the right side of|higher up than|beneath|from the right|from the bottom|rightmost|bottommost'
test_expect_success 'ood: held-out pairs and phrasings never in train or val, common in ood' '
	vr-synth --out g --seed 3 -n 300 >/dev/null &&
	jq -r ".[].normal_caption" g/train.json g/val.json >tv &&
	jq -r ".[].normal_caption" g/ood.json >ood &&
	! grep -E "$HELD" tv && ! grep -E "$OOD_WORDS" tv &&
	test $(grep -cE "$HELD" ood) -gt 60 && test $(grep -cE "$OOD_WORDS" ood) -gt 60 &&
	! grep -E " (left of|right of|above|below) |from the (left|top)|leftmost|topmost" ood
'
test_expect_success 'expressions of every kind' '
	grep -qE "^the (small |medium |large )?(red |orange |yellow |green |blue |purple |brown |black )?(circle|square|triangle|star|ring|cross|diamond|hexagon)$" tv &&
	grep -qE " (left of|to the left of|right of|to the right of|above|below) the " tv &&
	grep -qE "^the (first|second|third|fourth) .* from the (left|top)$" tv &&
	grep -qE "^the (leftmost|topmost) " tv
'
test_expect_success '--draw-boxes changes the pixels, not the records' '
	vr-synth --out h --seed 5 -n 30 --splits train --draw-boxes >/dev/null &&
	cmp a/train.json h/train.json && ! cmp -s a/images/train/000000.png h/images/train/000000.png
'
test_expect_success 'a run over an old folder replaces its files' '
	vr-synth --out a --seed 9 -n 30 -j 1 >/dev/null && ! cmp -s a/train.json b/train.json &&
	test -z "$(find a -name "*.tmp.*")"
'
test_expect_success 'an output folder that cannot be made is an error naming it' '
	echo x >afile && test_must_fail vr-synth --out afile/sub -n 2 2>err &&
	grep -q "^vr-synth: afile" err && test $(wc -l <err) = 1
'
test_expect_code 2 '--size too small' 'vr-synth --out z --size 40x40'
test_expect_code 2 '--size too long' 'vr-synth --out z --size 400x100'
test_expect_code 2 '--size not WxH' 'vr-synth --out z --size 336'
test_expect_code 2 'unknown split' 'vr-synth --out z --splits train,test'
test_expect_code 2 'split named twice' 'vr-synth --out z --splits val,val:3'
test_expect_code 2 'unknown format' 'vr-synth --out z --format gif'
test_expect_code 2 '-j 0' 'vr-synth --out z -j 0'
test_expect_code 2 'negative count' 'vr-synth --out z -n -1'
test_expect_code 2 'stray argument' 'vr-synth --out z extra'
test_expect_success 'usage errors write nothing' 'test ! -e z'
test_expect_success 'a closed pipe ends vr-synth quietly' '
	vr-synth --out p -n 200 2>err | head -1 >/dev/null && test ! -s err
'
test_expect_success 'knobs: one shape, attribute expressions, position background, larger shapes' '
	vr-synth --out k --seed 2 -n 20 --splits train,ood --size 112x112 --max-objects 1 --kinds attribute \
		--backgrounds position --ood-backgrounds position --sizes large --scale 200 >k.tasks &&
	test $(wc -l <k.tasks) = 40 &&
	jq -r "select(.label as \$l | .think | startswith(\$l + \": a large \") | not) | .id" k.tasks >bad && test ! -s bad &&
	jq -r "select([.solution[2] - .solution[0], .solution[3] - .solution[1]] | max < 30) | .id" k.tasks >narrow && test ! -s narrow
'
test_expect_success 'knobs: bad values are usage errors naming the flag' '
	{ vr-synth --out none -n 1 --max-objects 2 2>err; test $? = 2; } && grep -q "too few for relation" err &&
	{ vr-synth --out none -n 1 --kinds attribute,foo 2>err; test $? = 2; } && grep -q "kinds: unknown name .foo." err &&
	{ vr-synth --out none -n 1 --scale 500 2>err; test $? = 2; } && grep -q "scale" err &&
	{ vr-synth --out none -n 1 --backgrounds "" 2>err; test $? = 2; } && test ! -d none
'
test_done

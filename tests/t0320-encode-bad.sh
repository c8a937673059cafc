#!/bin/bash
# vr-encode on bad input: every file of the bad-image corpus (tests/bad/images,
# one defect each) and bad task lines give exit 1 and one line on stderr that
# names the task file and line (and the image); --skip-bad goes on. Never a
# crash (this runs under ASan/UBSan in `make check`).
. "$(dirname "$0")/lib.sh"
B=$SRC_DIR/tests/bad/images
G=$SRC_DIR/tests/golden/images
task() { printf '{"id":"%s","images":["%s"],"problem":"p","solution":"s"}\n' "$1" "$2"; }

for f in "$B"/*; do
	name=$(basename "$f")
	test_expect_success "$name: exit 1, one line naming the task line and the image" "
		task bad '$f' >t.jsonl &&
		vr-encode -c c t.jsonl >out 2>err; rc=\$? &&
		test \$rc = 1 && test ! -s out && test \$(wc -l <err) = 1 &&
		grep -q '^vr-encode: t.jsonl:1: $f: ' err
	"
done
test_expect_success 'the messages say what is wrong' '
	for f in truncated.jpg truncated.png zero_byte.jpg not_an_image.png huge_100000x100000.png \
		aspect_201x1.png; do
		task bad "$B/$f" | vr-encode -c c 2>&1 >/dev/null | sed "s|$B/||"
	done >got &&
	cat >want <<-\EOF &&
	vr-encode: <stdin>:1: truncated.jpg: truncated JPEG: Premature end of JPEG file
	vr-encode: <stdin>:1: truncated.png: truncated PNG: end of stream
	vr-encode: <stdin>:1: zero_byte.jpg: image file is empty
	vr-encode: <stdin>:1: not_an_image.png: not a JPEG or PNG image
	vr-encode: <stdin>:1: huge_100000x100000.png: PNG is 100000x100000 = 10000000000 pixels, over the --max-decode-pixels limit 178956970
	vr-encode: <stdin>:1: aspect_201x1.png: absolute aspect ratio must be smaller than 200, got 201 (201x1)
	EOF
	test_cmp want got
'
test_expect_success 'the lines before a bad one are written; the error names its line' '
	(task a "$G/grey_199x101.png"; task b "$G/rgb_211x143.png"; task c "$B/truncated.jpg";
	 task d "$G/grey_199x101.png") >t.jsonl &&
	test_must_fail vr-encode -j 2 -c c t.jsonl >out 2>err &&
	test "$(jq -r .id out | tr "\n" " ")" = "a b " &&
	grep -q "^vr-encode: t.jsonl:3: $B/truncated.jpg: truncated JPEG" err
'
test_expect_success '--skip-bad skips the bad lines, counts them and exits 0' '
	(for f in "$B"/*; do task bad "$f"; done; task good "$G/grey_199x101.png") >all.jsonl &&
	vr-encode --skip-bad -c c all.jsonl >out 2>err &&
	test "$(jq -r .id out)" = good &&
	n=$(ls "$B" | wc -l) && test $(grep -c "(skipped)$" err) = $n &&
	tail -1 err | grep -q "^vr-encode: $n tasks skipped, 1 written$"
'
test_expect_success '--max-decode-pixels refuses a genuine image over the limit' '
	task big "$G/rgb420_640x480.jpg" >t.jsonl &&
	test_must_fail vr-encode -c c --max-decode-pixels 307199 t.jsonl 2>err &&
	grep -q "^vr-encode: t.jsonl:1: $G/rgb420_640x480.jpg: JPEG is 640x480 = 307200 pixels, over the --max-decode-pixels limit 307199$" err &&
	vr-encode -c c --max-decode-pixels 307200 t.jsonl >/dev/null
'
test_expect_success 'a missing image names the task line' '
	task m /no/such/image.jpg | vr-encode -c c >out 2>err; test $? = 1 &&
	echo "vr-encode: <stdin>:1: /no/such/image.jpg: cannot open: No such file or directory" >want &&
	test_cmp want err
'
for bad in 'not json' '{"id":"x","images":"a.jpg","problem":"p","solution":"s"}' \
	'{"id":"x","problem":"p","solution":"s"}' '{"id":"x","images":[3],"problem":"p","solution":"s"}' \
	'[1,2]'; do
	test_expect_success "bad task line: $bad" "
		printf '%s\n' '$bad' >t.jsonl &&
		vr-encode -c c t.jsonl >out 2>err; rc=\$? &&
		test \$rc = 1 && test ! -s out && test \$(wc -l <err) = 1 && grep -q '^vr-encode: t.jsonl:1: ' err
	"
done
test_expect_success 'an image that is a FIFO, a device or a folder: an error, never a hang' '
	mkfifo fifo.png && mkdir folder.png &&
	for img in "$PWD/fifo.png" /dev/zero "$PWD/folder.png"; do
		echo "{\"id\":\"a\",\"images\":[\"$img\"],\"problem\":\"p\",\"solution\":[1,2,3,4]}" >t.jsonl &&
		test_must_fail timeout 10 vr-encode --cache c t.jsonl 2>err && grep -q "not a regular file" err &&
		test_must_fail timeout 10 vr-prep -f tasks --check-images t.jsonl 2>err && grep -q "not a regular file" err ||
		return 1
	done
'
test_expect_success '--confine DIR: images outside it (symlinks resolved) are bad lines naming where they lead' '
	mkdir -p ok &&
	vr-synth --out s --seed 1 -n 3 --splits train --size 56x56 >s.jsonl &&
	cp s/images/train/000000.png ok/a.png && ln -s "$PWD/s/images/train/000001.png" ok/link.png &&
	for img in "$PWD/ok/a.png" "$PWD/ok/link.png" "$PWD/s/images/train/000002.png" "$PWD/ok/../s/images/train/000000.png"; do
		echo "{\"id\":\"$(basename $img)\",\"images\":[\"$img\"],\"problem\":\"p\"}"
	done >conf.jsonl &&
	vr-encode --cache c --confine ok --skip-bad conf.jsonl >out 2>err &&
	test "$(jq -r .id out)" = a.png && test $(grep -c "is outside .*/ok (it resolves to .*/s/images/train/" err) = 3 &&
	test_must_fail vr-encode --cache c --confine ok conf.jsonl >/dev/null 2>err &&
	grep -q "^vr-encode: conf.jsonl:2: image .*/ok/link.png is outside" err &&
	vr-encode --cache c conf.jsonl >all && test $(wc -l <all) = 4
'
test_done

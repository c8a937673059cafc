#!/bin/bash
# vr-encode's pixel cache: hits decode nothing, misses write one entry per
# image and parameter set, and a bad entry (truncated, corrupt, another
# image's, empty, torn: header written, data not) is found and rebuilt.
. "$(dirname "$0")/lib.sh"
test_have_prereq JQ || skip_all "no jq"
G=$SRC_DIR/tests/golden/images
for f in rgb420_640x480.jpg grey_199x101.png palette_150x97.png rgba_97x131.png; do
	printf '{"id":"%s","images":["%s"],"problem":"p","solution":"s"}\n' "$f" "$G/$f"
done >tasks.jsonl
entry() { jq -r .pixels.file out | sed -n "${1}p"; }

test_expect_success 'a cold run writes one entry per image' '
	vr-encode -c c tasks.jsonl >out && test $(ls c | wc -l) = 4 &&
	jq -r .pixels.file out | xargs -n1 test -s &&
	mkdir saved && cp c/* saved/ && cp out out.cold
'
test_expect_success 'a warm run gives the same lines and decodes nothing' '
	ls -li c >before &&
	vr-encode -c c --max-decode-pixels 1 tasks.jsonl >out 2>err &&
	test_cmp out.cold out && test ! -s err &&
	ls -li c >after && test_cmp before after
'
test_expect_success 'the key covers the image bytes: a changed file is a new entry (same pixels)' '
	cp "$G/grey_199x101.png" g.png && printf "\0" >>g.png &&
	printf "{\"id\":\"g\",\"images\":[\"%s\"],\"problem\":\"p\",\"solution\":\"s\"}\n" "$PWD/g.png" >g.jsonl &&
	vr-encode -c c g.jsonl >gout && test $(ls c | wc -l) = 5 &&
	a=$(jq -r .pixels.file gout) && b=$(entry 2) && test "$a" != "$b" &&
	hlen=$(od -An -tu8 -N8 "$a" | tr -d " ") &&
	cmp -i $((8 + hlen)) "$a" "$b" &&
	rm "$a"
'
test_expect_success 'the key covers the parameters: --max-pixels is a new entry' '
	vr-encode -c c --max-pixels 100000 tasks.jsonl >small && test $(ls c | wc -l) = 8 &&
	jq -r .pixels.file small >a && jq -r .pixels.file out >b && ! grep -qxFf a b &&
	rm $(cat a)
'
for how in truncated header zero foreign torn; do
	test_expect_success "a $how entry is rebuilt, with a warning" "
		f=\$(entry 1) &&
		case $how in
		truncated) head -c 5000 saved/\$(basename \$f) >\$f ;;
		header) printf 'garbage!' | dd of=\$f bs=1 seek=8 conv=notrunc 2>/dev/null ;;
		zero) : >\$f ;;
		foreign) cp \$(entry 2) \$f ;;
		torn) s=\$(stat -c %s \$f) && dd if=/dev/zero of=\$f bs=1 seek=\$((s - 4096)) count=4096 conv=notrunc 2>/dev/null ;;
		esac &&
		vr-encode -c c tasks.jsonl >out 2>err &&
		test_cmp out.cold out &&
		cmp \$f saved/\$(basename \$f) &&
		test \$(wc -l <err) = 1 && grep -q \"^vr-encode: \$f: .*(rebuilt the cache entry)\$\" err
	"
done
test_expect_success 'the torn entry is caught by its checksum' '
	f=$(entry 1) && s=$(stat -c %s $f) &&
	dd if=/dev/zero of=$f bs=1 seek=$((s - 100)) count=1 conv=notrunc 2>/dev/null &&
	vr-encode -c c tasks.jsonl >out 2>err &&
	grep -q "image checksum mismatch" err && test_cmp out.cold out && cmp $f saved/$(basename $f)
'
test_expect_success 'the foreign entry is caught by its key' '
	cp "$(entry 2)" "$(entry 3)" && vr-encode -c c tasks.jsonl >out 2>err &&
	grep -q "holds the entry of key" err && test_cmp out.cold out
'
test_expect_success 'one image in many lines, 4 threads: one entry, written once' '
	for i in $(seq 1 40); do
		printf "{\"id\":\"%s\",\"images\":[\"%s\"],\"problem\":\"p\",\"solution\":\"s\"}\n" $i "$G/rgb_211x143.png"
	done >same.jsonl &&
	vr-encode -j 4 -c c2 same.jsonl >s && test $(ls c2 | wc -l) = 1 &&
	test $(jq -r .pixels.file s | sort -u | wc -l) = 1
'
test_expect_success 'entries are files a cold run in another folder reproduces byte for byte' '
	vr-encode -j 1 -c c3 tasks.jsonl >out3 &&
	for f in c3/*; do cmp "$f" "c/$(basename "$f")" || exit 1; done
'
test_expect_success 'a new vr-encode removes what dead writers left in the cache an hour ago, nothing else' '
	mkdir -p swept && sleep 0 & dead=$! && wait $dead &&
	: >swept/k1.safetensors.tmp.$dead.0badf00d && touch -d "2 hours ago" swept/k1.safetensors.tmp.$dead.0badf00d &&
	: >swept/k2.safetensors.tmp.$dead && touch -d "2 hours ago" swept/k2.safetensors.tmp.$dead &&
	: >swept/k3.safetensors.tmp.$dead.12345678 &&
	: >swept/k4.safetensors.tmp.$$.12345678 && touch -d "2 hours ago" swept/k4.safetensors.tmp.$$.12345678 &&
	vr-encode --cache swept </dev/null &&
	test ! -e swept/k1.safetensors.tmp.$dead.0badf00d && test ! -e swept/k2.safetensors.tmp.$dead &&
	test -e swept/k3.safetensors.tmp.$dead.12345678 && test -e swept/k4.safetensors.tmp.$$.12345678
'
test_done

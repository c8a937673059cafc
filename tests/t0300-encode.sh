#!/bin/bash
# vr-encode: what it adds to task lines, input order, several images per
# line, parameters from a checkpoint's preprocessor_config.json and flags.
# (Pixel values against transformers: build/tests/preprocess.t.)
. "$(dirname "$0")/lib.sh"
test_have_prereq JQ || skip_all "no jq"
D=$SRC_DIR/tests/data/prep
IMG=$SRC_DIR/tests/data/img
G=$SRC_DIR/tests/golden/images
vr-prep "$D/refs.json" --images "$IMG" --split refs >tasks.jsonl

# task line with the given images (JSON list body), id $1
task() { printf '{"id":"%s","images":[%s],"problem":"p","solution":"s"}\n' "$1" "$2"; }

test_expect_success 'every line gains pixels; nothing else changes' '
	vr-encode --cache c tasks.jsonl >out &&
	test $(wc -l <out) = 6 &&
	jq -c "del(.pixels)" out >stripped && jq -c . tasks.jsonl >orig && test_cmp orig stripped &&
	jq -e "all(.pixels | has(\"file\") and has(\"grid_thw\") and has(\"input_size\") and has(\"image_size\"))" -s out >/dev/null
'
test_expect_success 'grids, input and image sizes (64x48 -> 56x56, 40x30 -> 84x56, 33x50 -> 56x84)' '
	jq -c "[.pixels.grid_thw, .pixels.input_size, .pixels.image_size]" out >got &&
	cat >want <<-\EOF &&
	[[1,4,4],[56,56],[64,48]]
	[[1,4,4],[56,56],[64,48]]
	[[1,4,6],[84,56],[40,30]]
	[[1,4,6],[84,56],[40,30]]
	[[1,6,4],[56,84],[33,50]]
	[[1,4,4],[56,56],[20,20]]
	EOF
	test_cmp want got
'
test_expect_success 'the cache file is safetensors: image U8 [H,W,3] (the resized image), grid_thw I64 [1,3]' '
	f=$(jq -r ".pixels.file" out | sed -n 5p) &&
	case $f in c/*.safetensors) ;; *) false ;; esac &&
	hlen=$(od -An -tu8 -N8 "$f" | tr -d " ") &&
	test $(stat -c %s "$f") = $((8 + hlen + 84 * 56 * 3 + 24)) &&
	head -c $((8 + hlen)) "$f" | tail -c "$hlen" >header &&
	jq -e ".image.dtype == \"U8\" and .image.shape == [84,56,3] and
		.grid_thw.dtype == \"I64\" and .grid_thw.shape == [1,3] and
		.__metadata__.format == \"vr-pixels/2\" and .__metadata__.image_size == \"33x50\" and
		(.__metadata__.image_xxh3 | test(\"^[0-9a-f]{32}$\"))" header
'
test_expect_success 'the same image gives the same file; different images differ' '
	jq -r .pixels.file out | uniq | wc -l >n && echo 4 >want && test_cmp want n
'
test_expect_success 'several images: pixels is a list, in order' '
	task two "\"$IMG/scene_40x30.png\",\"$IMG/grey_33x50.png\"" | vr-encode -c c >two &&
	jq -c "[.pixels[] | .image_size]" two >got &&
	echo "[[40,30],[33,50]]" >want && test_cmp want got
'
test_expect_success 'a line without images passes through' '
	task none "" >none.jsonl && vr-encode -c c none.jsonl >got && test_cmp none.jsonl got
'
test_expect_success 'standard input, "-" and several files, in order' '
	head -2 tasks.jsonl >a.jsonl && tail -4 tasks.jsonl >b.jsonl &&
	vr-encode -c c a.jsonl - b.jsonl <a.jsonl | jq -r .id >ids &&
	(jq -r .id a.jsonl; jq -r .id a.jsonl; jq -r .id b.jsonl) >want && test_cmp want ids
'
test_expect_success '-j 4 keeps the input order (many lines, repeated images)' '
	for i in $(seq 1 60); do
		case $((i % 5)) in
		0) f=$IMG/scene_64x48.jpg ;; 1) f=$G/rgb_211x143.png ;; 2) f=$G/grey_199x101.png ;;
		3) f=$G/cmyk_120x90.jpg ;; 4) f=$G/palette_150x97.png ;;
		esac
		task "l$i" "\"$f\""
	done >many.jsonl &&
	vr-encode -j 4 -c c4 many.jsonl >m4 && vr-encode -j 1 -c c1 many.jsonl >m1 &&
	jq -r .id m4 >ids && seq 1 60 | sed "s/^/l/" >want && test_cmp want ids &&
	sed "s|\"c[14]/|\"c/|" m1 >a && sed "s|\"c[14]/|\"c/|" m4 >b && test_cmp a b &&
	test $(ls c4 | wc -l) = 5
'
test_expect_success '--max-pixels shrinks: 211x143 at 10000 pixels -> grid 1x4x8' '
	task s "\"$G/rgb_211x143.png\"" | vr-encode -c c --max-pixels 10000 | jq -c .pixels.grid_thw >got &&
	echo "[1,4,8]" >want && test_cmp want got
'
test_expect_success '--model DIR reads preprocessor_config.json; flags override it' '
	mkdir ckpt && echo "{\"min_pixels\": 3136, \"max_pixels\": 10000, \"patch_size\": 14}" \
		>ckpt/preprocessor_config.json &&
	task s "\"$G/rgb_211x143.png\"" >s.jsonl &&
	vr-encode -c c --model ckpt s.jsonl | jq -c .pixels.grid_thw >got &&
	echo "[1,4,8]" >want && test_cmp want got &&
	vr-encode -c c --model ckpt --max-pixels 12845056 s.jsonl | jq -c .pixels.grid_thw >got &&
	echo "[1,10,16]" >want && test_cmp want got &&
	vr-encode -c c --model ckpt/preprocessor_config.json s.jsonl | jq -c .pixels.grid_thw >got &&
	echo "[1,4,8]" >want && test_cmp want got
'
test_expect_success '--model: "size" (newer transformers) counts, min/max_pixels win over it' '
	mkdir ck2 && echo "{\"size\": {\"shortest_edge\": 3136, \"longest_edge\": 10000}}" \
		>ck2/preprocessor_config.json &&
	vr-encode -c c -m ck2 s.jsonl | jq -c .pixels.grid_thw >got &&
	echo "[1,4,8]" >want && test_cmp want got &&
	echo "{\"size\": {\"shortest_edge\": 3136, \"longest_edge\": 10000}, \"max_pixels\": 12845056}" \
		>ck2/preprocessor_config.json &&
	vr-encode -c c -m ck2 s.jsonl | jq -c .pixels.grid_thw >got &&
	echo "[1,10,16]" >want && test_cmp want got
'
test_expect_success '--model: a checkpoint without the file keeps the defaults' '
	mkdir bare && vr-encode -c c -m bare s.jsonl | jq -c .pixels.grid_thw >got &&
	echo "[1,10,16]" >want && test_cmp want got
'
test_expect_success '--model: a bad config is an error naming the file and key' '
	echo "{\"resample\": 0}" >ckpt/preprocessor_config.json &&
	test_must_fail vr-encode -c c -m ckpt s.jsonl 2>err &&
	grep -q "^vr-encode: ckpt/preprocessor_config.json: resample 0 is not" err &&
	echo "{\"max_pixels\": \"big\"}" >ckpt/preprocessor_config.json &&
	test_must_fail vr-encode -c c -m ckpt s.jsonl 2>err &&
	grep -q "^vr-encode: ckpt/preprocessor_config.json: .max_pixels. is not an integer" err &&
	echo "{" >ckpt/preprocessor_config.json &&
	test_must_fail vr-encode -c c -m ckpt s.jsonl 2>err &&
	grep -q "^vr-encode: ckpt/preprocessor_config.json:" err &&
	test_must_fail vr-encode -c c -m no/such/dir s.jsonl 2>err && test $(wc -l <err) = 1
'
test_expect_success '--min-side 28 (VLM-R1): the tiny image gets a different entry, same grid' '
	task t "\"$G/tiny_10x40.png\"" >t.jsonl &&
	vr-encode -c c t.jsonl >a && vr-encode -c c --min-side 28 t.jsonl >b &&
	test "$(jq -c .pixels.grid_thw a)" = "[1,8,2]" && test "$(jq -c .pixels.grid_thw b)" = "[1,8,2]" &&
	test "$(jq -r .pixels.file a)" != "$(jq -r .pixels.file b)"
'
test_expect_success '--pillow 12 and 13 are different entries' '
	task p "\"$G/rgb420_640x480.jpg\"" >p.jsonl &&
	vr-encode -c c --pillow 12 p.jsonl >a && vr-encode -c c --pillow 13 p.jsonl >b &&
	test "$(jq -r .pixels.file a)" != "$(jq -r .pixels.file b)" &&
	! cmp -s "$(jq -r .pixels.file a)" "$(jq -r .pixels.file b)"
'
test_expect_success 'image_sizes that disagree with the image are an error' '
	echo "{\"id\":\"x\",\"images\":[\"$IMG/scene_40x30.png\"],\"image_sizes\":[[41,30]],\"problem\":\"p\",\"solution\":\"s\"}" >sz.jsonl &&
	test_must_fail vr-encode -c c sz.jsonl >out 2>err &&
	echo "vr-encode: sz.jsonl:1: $IMG/scene_40x30.png: '"'"'image_sizes'"'"' says 41x30, the image is 40x30" >want &&
	test_cmp want err && test ! -s out
'
test_expect_code 2 '--jobs 0 is a usage error' 'vr-encode -j 0 </dev/null'
test_expect_code 2 '--max-pixels under --min-pixels is a usage error' \
	'vr-encode --min-pixels 5000 --max-pixels 4000 </dev/null'
test_expect_code 2 '--pillow 0 is a usage error' 'vr-encode --pillow 0 </dev/null'
test_expect_success 'a cache folder that cannot be made is an error' '
	echo x >file && test_must_fail vr-encode -c file/sub tasks.jsonl 2>err &&
	test $(wc -l <err) = 1 && grep -q "^vr-encode: file/sub" err
'
test_expect_success 'a closed pipe ends vr-encode quietly, with no temporary files left' '
	vr-encode -c cp many.jsonl 2>err | head -1 >/dev/null &&
	test ! -s err && ! ls cp | grep -q tmp
'
test_done

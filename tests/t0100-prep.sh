#!/bin/bash
# vr-prep: every VLM-R1 format gives the same task lines; subsets; checks.
. "$(dirname "$0")/lib.sh"
D=$SRC_DIR/tests/data/prep
IMG=$SRC_DIR/tests/data/img
sed "s|@IMG@|$IMG|g" "$D/expected.jsonl" >expected

test_expect_success 'REC JSON gives the expected task lines' '
	vr-prep "$D/refs.json" --images "$IMG" --split refs >out &&
	test_cmp expected out
'
for f in refs_rec.jsonl refs_conv.jsonl refs_messages.json; do
	test_expect_success "$f gives the same task lines" "
		vr-prep \"\$D/$f\" --images \"\$IMG\" --split refs >out &&
		test_cmp expected out
	"
done
test_expect_success 'messages as JSONL too' '
	jq -c ".[]" "$D/refs_messages.json" >m.jsonl &&
	vr-prep m.jsonl -i "$IMG" --split refs >out && test_cmp expected out
'
test_expect_success 'rec.yaml (sampling all) gives the same lines' '
	vr-prep "$D/rec.yaml" --images "$IMG" --split refs >out && test_cmp expected out
'
test_expect_success 'task lines read back unchanged (tasks format, stdin)' '
	vr-prep --format tasks <expected >out && test_cmp expected out
'
test_expect_success 'explicit --format matches auto-detection' '
	vr-prep -f conv "$D/refs_conv.jsonl" -i "$IMG" --split refs >out && test_cmp expected out &&
	vr-prep -f vlmr1 "$D/refs.json" -i "$IMG" --split refs >out && test_cmp expected out
'
test_expect_success 'split and id default to the file name' '
	vr-prep "$D/refs.json" -i "$IMG" | jq -r ".id + \" \" + .split" >ids &&
	head -1 ids >first && echo "refs/0 refs" >want && test_cmp want first
'
test_expect_success 'paired inputs and image folders (a:b with dirA:dirB)' '
	mkdir -p alt && cp "$IMG"/*.png "$IMG"/*.jpg alt/ &&
	vr-prep "$D/refs.json:$D/refs_conv.jsonl" --images "$IMG:alt" >out &&
	test $(wc -l <out) = 12 &&
	test $(grep -c "\"/[^\"]*/alt/scene" out) = 4 &&
	test "$(jq -r .split out | sort -u | tr "\n" " ")" = "refs refs_conv "
'
test_expect_code 2 'one folder per input or just one' '
	vr-prep "$D/refs.json:$D/refs_conv.jsonl" --images "a:b:c"
'
test_expect_success 'rec.yaml sampling first:N and end:N%' '
	vr-prep "$D/rec_sampled.yaml" -i "$IMG" | jq -r .id >ids &&
	printf "refs/0\nrefs/1\nrefs_rec/3\nrefs_rec/4\nrefs_rec/5\n" >want && test_cmp want ids
'
test_expect_success '--take first, end, percentages' '
	vr-prep "$D/refs.json" -i "$IMG" --take first:2 | jq -r .id >a &&
	printf "refs/0\nrefs/1\n" >want && test_cmp want a &&
	vr-prep "$D/refs.json" -i "$IMG" --take end:1 | jq -r .id >a &&
	echo refs/5 >want && test_cmp want a &&
	test $(vr-prep "$D/refs.json" --take 34% | wc -l) = 3 &&
	test $(vr-prep "$D/refs.json" --take first:100 | wc -l) = 6
'
test_expect_success '--take random:N --seed S is reproducible and seed-dependent' '
	for i in $(seq 0 199); do
		echo "{\"id\":\"t/$i\",\"images\":[],\"problem\":\"p$i\",\"solution\":\"s\"}"
	done >many.jsonl &&
	vr-prep -f tasks many.jsonl --take random:20 --seed 7 >r1 &&
	vr-prep -f tasks many.jsonl --take random:20 --seed 7 >r2 &&
	vr-prep -f tasks many.jsonl --take random:20 --seed 8 >r3 &&
	test_cmp r1 r2 && ! cmp -s r1 r3 && test $(wc -l <r1) = 20 &&
	test $(jq -r .id r1 | sort -u | wc -l) = 20
'
test_expect_success '--take random is the same subset on every machine (pinned)' '
	vr-prep -f tasks many.jsonl --take random:5 --seed 7 | jq -r .id | tr "\n" " " >got &&
	printf "t/18 t/187 t/5 t/197 t/159 " >want && test_cmp want got
'
test_expect_success '--epochs re-draws random subsets and tags lines' '
	vr-prep -f tasks many.jsonl --take random:3 --epochs 2 >e &&
	test $(wc -l <e) = 6 && test "$(jq -r .epoch e | tr "\n" " ")" = "0 0 0 1 1 1 " &&
	! cmp -s <(head -3 e | jq -c "del(.epoch)") <(tail -3 e | jq -c "del(.epoch)")
'
test_expect_success '--check-images records sizes of JPEG, PNG, grey and palette images' '
	vr-prep "$D/refs.json" -i "$IMG" --check-images | jq -c .image_sizes >sizes &&
	printf "[[64,48]]\n[[64,48]]\n[[40,30]]\n[[40,30]]\n[[33,50]]\n[[20,20]]\n" >want &&
	test_cmp want sizes
'
test_expect_success 'a box outside its image is refused with --check-images' '
	jq -c ".solution = [1,1,70,40]" expected | head -1 >outside.jsonl &&
	vr-prep -f tasks outside.jsonl >/dev/null &&
	test_must_fail vr-prep -f tasks outside.jsonl --check-images 2>err &&
	grep -q "outside the 64x48 image" err && test $(wc -l <err) = 1
'
test_expect_success 'width/height in REC records are checked against the box' '
	echo "[{\"image\":\"x.jpg\",\"problem\":\"q\",\"solution\":[0,0,50,50],\"width\":40,\"height\":40}]" >wh.json &&
	test_must_fail vr-prep wh.json 2>err && grep -q "wh.json:1: .solution. .* outside the 40x40 image" err
'
test_expect_success 'a missing image names the file; --skip-bad skips and counts' '
	jq -c ".images = [\"/nonexistent/a.jpg\"]" expected | head -2 >missing.jsonl &&
	cat expected >>missing.jsonl &&
	test_must_fail vr-prep -f tasks missing.jsonl --check-images 2>err &&
	grep -q "^vr-prep: /nonexistent/a.jpg: cannot open: No such file" err &&
	vr-prep -f tasks missing.jsonl --check-images --skip-bad >out 2>err &&
	test $(wc -l <out) = 6 && grep -q "2 records skipped, 6 tasks written" err
'
test_expect_success 'corrupt and non-image files are refused' '
	jq -c ".images = [\"$IMG/not_an_image.jpg\"]" expected | head -1 >bad1.jsonl &&
	test_must_fail vr-prep -f tasks bad1.jsonl --check-images 2>err &&
	grep -q "not_an_image.jpg: not a JPEG or PNG image" err &&
	jq -c ".images = [\"$IMG/truncated.jpg\"]" expected | head -1 >bad2.jsonl &&
	test_must_fail vr-prep -f tasks bad2.jsonl --check-images 2>err &&
	grep -q "truncated.jpg: corrupt JPEG header" err
'
test_expect_success 'a bad record in a JSON list is reported at its line' '
	jq ".[3].solution = [5, 5, 1, 1]" "$D/refs.json" >bad.json &&
	test_must_fail vr-prep bad.json 2>err &&
	grep -q "^vr-prep: bad.json:35: .solution. has x1 5 >= x2 1$" err
'
test_expect_success 'a bad line in JSONL is reported at its line; --skip-bad goes on' '
	{ head -2 expected; echo "{\"id\": oops}"; tail -1 expected; } >bad.jsonl &&
	test_must_fail vr-prep -f tasks bad.jsonl 2>err && grep -q "^vr-prep: bad.jsonl:3: invalid JSON" err &&
	vr-prep -f tasks --skip-bad bad.jsonl >out 2>err && test $(wc -l <out) = 3
'
test_expect_success 'a JSON list cut off after a record'"'"'s "},": one error, once; --skip-bad keeps the records before' '
	{ head -c $(grep -b -o "}," "$D/refs.json" | sed -n 2p | cut -d: -f1) "$D/refs.json"; echo "},"; } >cut.json &&
	test_must_fail timeout 10 vr-prep cut.json -i "$IMG" 2>err && grep -q "cut.json:.*the list is not closed" err &&
	timeout 10 vr-prep --skip-bad cut.json -i "$IMG" >out 2>err && test $(wc -l <out) = 2 &&
	test $(grep -c "not closed" err) = 1
'
test_expect_success 'a relative image path that leaves the images folder is an error; --allow-outside reads it' '
	mkdir -p in/data && echo "[{\"image\": \"../../secret.png\", \"problem\": \"q\", \"solution\": [1, 2, 3, 4]}]" >in/data/esc.json &&
	test_must_fail vr-prep in/data/esc.json 2>err &&
	grep -q "^vr-prep: in/data/esc.json:1: image .../../secret.png. is outside its folder .*/in/data$" err &&
	grep -q "hint: vr-prep --allow-outside reads it" err &&
	vr-prep --allow-outside in/data/esc.json | jq -r ".images[0]" >p && grep -q "/secret.png$" p &&
	grep -v -q "/in/" p &&
	echo "[{\"image\": \"sub/../ok.png\", \"problem\": \"q\", \"solution\": [1, 2, 3, 4]}]" >in/data/fine.json &&
	vr-prep in/data/fine.json | jq -r ".images[0]" | grep -q "/in/data/ok.png$"
'
test_expect_success 'a rec.yaml nested 200,000 levels deep: refused at once, not in quadratic time' '
	awk "BEGIN { printf \"datasets:\"; for (i = 0; i < 200000; i++) printf \" [\"; for (i = 0; i < 200000; i++) printf \"]\"; print \"\" }" >deep.yaml &&
	test_must_fail timeout 5 vr-prep deep.yaml 2>err &&
	grep -q "^vr-prep: deep.yaml:1: YAML nested more than 64 levels deep$" err
'
test_expect_success 'a rec.yaml dataset with no records, sampled end:N, gives no tasks (fuzz: tests/bad/fuzz/dataset_yaml)' '
	echo "[]" >empty.json &&
	printf "datasets:\n  - json_path: empty.json\n    sampling_strategy: end:2\n" >empty.yaml &&
	vr-prep empty.yaml >out && test ! -s out
'
test_expect_success '-o writes the file atomically and leaves nothing on failure' '
	vr-prep "$D/refs.json" -i "$IMG" --split refs -o tasks.jsonl && test_cmp expected tasks.jsonl &&
	test_must_fail vr-prep bad.json -o tasks.jsonl && test_cmp expected tasks.jsonl &&
	test -z "$(ls | grep tmp)"
'
test_expect_code 2 'unknown --format is a usage error' 'vr-prep --format xml x'
test_expect_code 2 'bad --take is a usage error' 'vr-prep --take some:3 x'
test_expect_code 2 'bad --seed is a usage error' 'vr-prep --seed -1 x'
test_expect_success 'a closed pipe ends vr-prep quietly' '
	vr-prep -f tasks many.jsonl --epochs 200 2>err | head -1 >/dev/null && test ! -s err
'
test_done

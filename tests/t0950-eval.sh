#!/bin/bash
# vr-eval: verdicts and summaries, the three input kinds, batch grounding,
# --diff with McNemar's exact test, --draw pictures (box pixels checked), and
# bad input named by file:line.
. "$(dirname "$0")/lib.sh"
R=$SRC_DIR/tests/data/reward/rollouts.jsonl

test_expect_success 'a verdict per line, then a summary per split' '
	vr-eval "$R" >out &&
	test $(jq -s "[.[] | select(.summary | not)] | length" out) = 3 &&
	jq -s -e ".[-1] | .summary and .split == \"refs\" and .n == 3 and .correct == 2 and .interval == \"wilson95\"" out >/dev/null &&
	jq -s -e "[.[0:3][] | .parse] == [\"ok\", \"ok\", \"no_box\"]" out >/dev/null
'
test_expect_success 'the Wilson interval of 2 of 3 (0.2077, 0.9385, as statsmodels proportion_confint)' '
	jq -s -e ".[-1] | (.acc_lo - 0.20765960) | fabs < 1e-7" out >/dev/null &&
	jq -s -e ".[-1] | (.acc_hi - 0.93850806) | fabs < 1e-7" out >/dev/null
'
test_expect_success '--summary prints summaries only; --all scores every completion' '
	vr-eval --summary "$R" >s && test $(wc -l <s) = 1 &&
	vr-eval --all --summary "$R" | jq -e ".n == 12" >/dev/null &&
	vr-eval --all "$R" | jq -s -e "[.[] | select(.completion != null) | .completion] == [0,1,2,3,0,1,2,3,0,1,2,3]" >/dev/null
'
test_expect_success '--iou 0.99 is stricter; --by groups by another field' '
	vr-eval --summary --iou 0.99 "$R" | jq -e ".correct == 1 and .iou_threshold == 0.99" >/dev/null &&
	vr-eval --summary --by task "$R" | jq -e ".task == \"rec\" and .n == 3" >/dev/null
'
test_expect_success 'plain JSONL with a model text; no sizes means image pixels' '
	echo "{\"id\":\"a\",\"text\":\"<answer>{[10, 10, 20, 20]}</answer>\",\"solution\":[10,10,20,20]}" >p.jsonl &&
	echo "{\"id\":\"b\",\"model_output\":\"<answer>{[8,16,24,32]}</answer>\",\"solution\":[16,32,48,64],\"input_size\":[64,64],\"image_size\":[128,128]}" >>p.jsonl &&
	vr-eval p.jsonl >out &&
	jq -s -e ".[0].iou == 1 and .[0].split == \"p\" and .[1].pred == [16,32,48,64] and .[1].correct" out >/dev/null
'
test_expect_success 'batch grounding: no solution gives the box and the parse status only' '
	echo "{\"id\":\"c\",\"text\":\"<answer>{[1, 2, 3, 4]}</answer>\"}" >g.jsonl &&
	echo "{\"id\":\"d\",\"text\":\"no idea\"}" >>g.jsonl &&
	vr-eval g.jsonl >out &&
	jq -s -e ".[0] == {\"id\":\"c\",\"split\":\"g\",\"parse\":\"ok\",\"format\":false,\"pred\":[1,2,3,4]}" out >/dev/null &&
	jq -s -e ".[1].parse == \"no_answer\" and .[1].pred == null and (.[1] | has(\"iou\") | not)" out >/dev/null &&
	jq -s -e ".[2].summary and .[2].n == 0 and .[2].unlabelled == 2 and .[2].parse_rate == 0.5" out >/dev/null
'
test_expect_success 'a rec_results file (sizes as [height, width]) is scored again' '
	cat >rec_results_x_val.json <<-\EOT &&
	{"accuracy": 50.0, "results": [
	  {"image": "a.jpg", "question": "q", "ground_truth": [20, 10, 60, 30], "model_output": "<answer>{\"bbox_2d\": [10, 10, 30, 30]}</answer>",
	   "input_size": [56, 28], "image_size": [56, 56], "extracted_answer": [20, 10, 60, 30], "correct": 1},
	  {"image": "b.jpg", "question": "q", "ground_truth": [0, 0, 5, 5], "model_output": "nothing",
	   "input_size": [28, 28], "image_size": [28, 28], "extracted_answer": [0, 0, 0, 0], "correct": 0}]}
	EOT
	vr-eval rec_results_x_val.json >out &&
	jq -s -e ".[0].pred == [20,10,60,30] and .[0].correct and .[0].id == \"0\" and .[0].split == \"x_val\"" out >/dev/null &&
	jq -s -e ".[1].correct == false and .[2].acc == 0.5" out >/dev/null
'
test_expect_success '--diff: paired wins and losses, McNemar exact p' '
	for i in $(seq 1 12); do
		echo "{\"id\":\"$i\",\"split\":\"v\",\"text\":\"<answer>{[0,0,10,10]}</answer>\",\"solution\":[0,0,10,10]}"
	done >new.jsonl &&
	sed "s/\[0,0,10,10\]}</[50,50,60,60]}</" new.jsonl | head -11 >old.jsonl &&
	echo "{\"id\":\"12\",\"split\":\"v\",\"text\":\"<answer>{[0,0,10,10]}</answer>\",\"solution\":[0,0,10,10]}" >>old.jsonl &&
	echo "{\"id\":\"13\",\"split\":\"v\",\"text\":\"x\",\"solution\":[0,0,10,10]}" >>old.jsonl &&
	vr-eval --diff old.jsonl new.jsonl >d &&
	jq -e ".diff and .n == 12 and .wins == 11 and .losses == 0 and .both_correct == 1 and .only_old == 1 and .only_new == 0" d >/dev/null &&
	jq -e "(.p_mcnemar - 0.0009765625) | fabs < 1e-12" d >/dev/null &&
	vr-eval --diff new.jsonl old.jsonl | jq -e ".wins == 0 and .losses == 11" >/dev/null
'
test_expect_success 'McNemar: 10 wins and 3 losses (p = 0.0923 as scipy binomtest)' '
	for i in $(seq 1 13); do
		w=$([ $i -le 10 ] && echo "0,0,10,10" || echo "50,50,60,60")
		l=$([ $i -le 10 ] && echo "50,50,60,60" || echo "0,0,10,10")
		echo "{\"id\":\"$i\",\"text\":\"<answer>{[$w]}</answer>\",\"solution\":[0,0,10,10]}" >&3
		echo "{\"id\":\"$i\",\"text\":\"<answer>{[$l]}</answer>\",\"solution\":[0,0,10,10]}"
	done >o.jsonl 3>n.jsonl &&
	vr-eval --diff --split s o.jsonl n.jsonl | jq -e ".wins == 10 and .losses == 3 and ((.p_mcnemar - 0.092285156) | fabs < 1e-8)" >/dev/null
'
test_expect_success '--draw: a PNG per sample, gold box green and prediction red where they should be' '
	vr-synth --out syn --seed 4 -n 2 --splits val >tasks.jsonl &&
	jq -c ". + {text: \"<answer>{[\\(.solution[0] + 10 | floor), \\(.solution[1] | floor), \\(.solution[2] + 10 | floor), \\(.solution[3] | floor)]}</answer>\"}" tasks.jsonl >ans.jsonl &&
	vr-eval --draw pics ans.jsonl >/dev/null &&
	test $(ls pics | wc -l) = 2 &&
	f=$(ls pics/* | head -1) && test -s "$f" &&
	file "$f" | grep -q "PNG image"
'
test_expect_success '--draw: the outline pixels are the boxes'"'"' colours (read back with ImageMagick, where installed)' '
	# a plain 100x100 grey image, gold [20,20,60,60], prediction [30,30,80,80];
	# enlarged 3x (below 256 px) inside a 2 px margin: pixel (x, y) of the
	# image is at (2 + 3x, 2 + 3y); the gold outline lies just outside its box,
	# the prediction just inside
	printf "P6 100 100 255\n" >g.ppm && head -c 30000 /dev/zero | tr "\0" "\200" >>g.ppm &&
	convert g.ppm grey.png 2>/dev/null || skip_draw=1
	if [ -n "${skip_draw:-}" ]; then echo "# SKIP no ImageMagick convert: the pixels are checked by tests/unit/draw.c"; exit 0; fi
	echo "{\"id\":\"g\",\"images\":[\"$PWD/grey.png\"],\"text\":\"<answer>{[30,30,80,80]}</answer>\",\"solution\":[20,20,60,60]}" >one.jsonl &&
	vr-eval --draw px one.jsonl >/dev/null &&
	convert px/00000-g.png -crop 1x1+$((2 + 3 * 40))+$((2 + 3 * 20 - 1)) -depth 8 txt:- | grep -q "#00C800" &&
	convert px/00000-g.png -crop 1x1+$((2 + 3 * 50))+$((2 + 3 * 30)) -depth 8 txt:- | grep -q "#E60000" &&
	convert px/00000-g.png -crop 1x1+$((2 + 3 * 45))+$((2 + 3 * 45)) -depth 8 txt:- | grep -q "#808080"
'
test_expect_success 'the man page'"'"'s pipeline words: --summary output pipes into jq' '
	vr-eval --summary "$R" | jq -e ".acc > 0.6" >/dev/null
'

# bad input: file:line, exit 1; --skip-bad counts and goes on
bad() { # name line want
	BAD_LINE=$2 BAD_WANT=$3
	test_expect_success "bad input: $1" '
		printf "%s\n" "{\"id\":\"ok\",\"text\":\"x\",\"solution\":[0,0,1,1]}" "$BAD_LINE" >bad.jsonl &&
		test_must_fail vr-eval bad.jsonl >/dev/null 2>err &&
		grep -q "^vr-eval: bad.jsonl:2: $BAD_WANT" err
	'
}
bad 'no completions or text' '{"id":"x"}' 'nothing to score'
bad 'empty completions' '{"id":"x","completions":[]}' "'completions' is empty"
bad 'a box with 3 numbers' '{"text":"x","solution":[1,2,3]}' "'solution' has 3 numbers, expected 4"
bad 'a box of strings' '{"text":"x","solution":["a",2,3,4]}' "'solution' entry 0 is not a finite number"
bad 'not JSON' '{"text": oops' ''
bad 'a bad grid' '{"text":"x","pixels":{"grid_thw":[1,-2,4]}}' "'pixels' of image 1: grid_thw holds a value that is not a positive integer"
bad 'a grid of video frames' '{"text":"x","pixels":{"grid_thw":[65,2,4]}}' "'pixels' of image 1: grid_thw \\[65, 2, 4\\] has 65 frames"
bad 'no original size' '{"text":"x","pixels":{"grid_thw":[1,2,4]}}' 'no original image size'
test_expect_success '--skip-bad skips and counts' '
	printf "%s\n" "{\"text\":\"x\",\"solution\":[0,0,1,1]}" "{\"id\":1}" "{\"text\":\"y\",\"solution\":[0,0,1,1]}" >sb.jsonl &&
	vr-eval --skip-bad --summary sb.jsonl >out 2>err &&
	jq -e ".n == 2" out >/dev/null && grep -q "1 bad lines skipped" err
'
test_expect_success 'a rec_results file of another shape' '
	echo "{\"accuracy\": 1, \"results\": {}}" >other.json &&
	test_must_fail vr-eval other.json 2>err && grep -q "^vr-eval: other.json: not a VLM-R1 rec_results file" err &&
	echo "{\"results\": [{\"model_output\": \"x\", \"ground_truth\": [1, 2]}]}" >short.json &&
	test_must_fail vr-eval short.json 2>err && grep -q "results\[0\].ground_truth. has 2 numbers" err &&
	echo "[1, 2" >broken.json &&
	test_must_fail vr-eval broken.json 2>err && grep -q "^vr-eval: broken.json:[0-9]*: " err
'
test_expect_code 2 '--diff needs two runs' 'vr-eval --diff "$R"'
test_expect_code 2 '--parse takes r1 or baseline' 'vr-eval --parse nope "$R"'
test_done

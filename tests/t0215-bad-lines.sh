#!/bin/bash
# One validated pipe line (lib/task.h vr_task_parse): every file in
# tests/bad/lines holds a scored line with one defect (its name says which;
# tests/bad/make_bad_lines.sh writes them). Every stage that reads lines must
# refuse each with exit status 1 and an error naming the file and line, never
# a crash, a hang, or an out-of-memory abort (this test also runs under
# ASan/UBSan in `make check`).
. "$(dirname "$0")/lib.sh"
TOK=$SRC_DIR/../shared/tokenizers/qwen2.5/tokenizer.json
vr-init --preset tiny --tokenizer "$TOK" --seed 1 --dtype f32 -o policy 2>/dev/null || exit 1
stages='vr-encode --cache cache
vr-tokenize -m policy --chat
vr-rollout -m policy -G 1 --max-tokens 2
vr-reward --reward format,iou
vr-update -m policy --beta 0 -o run
vr-update -m policy --sft -o run
vr-eval'
for f in "$SRC_DIR"/tests/bad/lines/*.jsonl; do
	name=$(basename "$f" .jsonl)
	test_expect_success "$name: refused by every stage, naming file:line" "
		while read -r cmd; do
			prog=\${cmd%% *}
			# vr-eval reads other tools' lines too, where an id may be a number
			[ $name = id_number ] && [ \$prog = vr-eval ] && continue
			timeout 60 \$cmd '$f' >out 2>err; rc=\$?
			if [ \$rc != 1 ] || ! grep -q \"^\$prog: [^ ]*/$name.jsonl:1: \" err || test \$(grep -vc '^hint: ' err) != 1; then
				echo \"\$cmd: status \$rc\"; cat err; exit 1
			fi
		done <<<'$stages'
	"
done
test_done

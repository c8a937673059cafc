#!/bin/bash
# The bad-input corpus for vr-prep: every file in tests/bad/jsonl has one
# defect (its name says which). Each must give exit status 1 and exactly one
# line on stderr naming the file and line (the good records before it may
# have been written: vr-prep streams); never a crash (this test also runs
# under ASan/UBSan in `make check`).
. "$(dirname "$0")/lib.sh"
for f in "$SRC_DIR"/tests/bad/jsonl/*; do
	name=$(basename "$f")
	case $name in tasks_*) fmt="-f tasks" ;; *) fmt="" ;; esac
	test_expect_success "$name: exit 1, one line naming file:line" "
		vr-prep $fmt '$f' >out 2>err; rc=\$? &&
		test \$rc = 1 && test \$(wc -l <err) = 1 &&
		grep -Eq '^vr-prep: [^ ]*/tests/bad/jsonl/[^ ]*:[0-9]+: ' err
	"
done
test_done

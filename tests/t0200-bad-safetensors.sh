#!/bin/bash
# The bad-input corpus for the safetensors reader: every file (or checkpoint
# folder) in tests/bad/safetensors has one defect, which its name says (made by
# tests/bad/make_bad_safetensors.py). vr-inspect must exit 1 with nothing on
# stdout and exactly one line on stderr, "vr-inspect: " + the path + the
# defect; never a crash (this test also runs under ASan/UBSan in `make check`).
. "$(dirname "$0")/lib.sh"
n=0
for f in "$SRC_DIR"/tests/bad/safetensors/*; do
	name=$(basename "$f")
	n=$((n + 1))
	for opt in "" --stats --header; do
		test_expect_success "$name${opt:+ $opt}: exit 1, one line naming the file" "
			vr-inspect $opt '$f' >out 2>err; rc=\$? &&
			test \$rc = 1 && test ! -s out && test \$(wc -l <err) = 1 &&
			grep -q '^vr-inspect: ' err && grep -qF -- '$name' err
		"
	done
done
test_expect_success "the corpus has at least 22 files and 2 sharded folders ($n entries)" "
	test $n -ge 24 &&
	test \$(ls -d '$SRC_DIR'/tests/bad/safetensors/sharded-*/ | wc -l) -ge 2
"
test_done

#!/bin/bash
# The bad tokenizer.json corpus: every file in tests/bad/tokenizer has one
# defect (its name says which; expected.txt has the text its error must hold).
# Each must give exit status 1 and exactly one line on stderr naming the file;
# never a crash (this also runs under ASan/UBSan in `make check`).
. "$(dirname "$0")/lib.sh"
B=$SRC_DIR/tests/bad/tokenizer
n=0
while IFS=$'\t' read -r file want; do
	case $file in '#'*) continue ;; esac
	n=$((n + 1))
	# the body reads $file and $want when it runs (eval in a subshell)
	test_expect_success "$file: exit 1, one line: $want" '
		echo hello | vr-tokenize -t "$B/$file" >out 2>err; rc=$? && cat err &&
		test $rc = 1 && test $(wc -l <err) = 1 && test ! -s out &&
		grep -qF "vr-tokenize: $B/$file" err && grep -qF -- "$want" err
	'
done <"$B/expected.txt"
test_expect_success 'every file of the corpus is listed in expected.txt' '
	ls "$B" | grep "\.json\$" | sort >files &&
	grep -v "^#" "$B/expected.txt" | cut -f1 | sort >listed && test_cmp files listed
'
test_done

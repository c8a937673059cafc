#!/bin/bash
# The fuzz seeds without clang: each libFuzzer entry point of tests/fuzz,
# linked with a plain main (build/fuzz-replay/NAME, tests/fuzz/replay.c),
# runs once over every seed tests/fuzz/harnesses gives it, the crashers kept
# in tests/bad included, so a corpus file that crashes fails `make test`
# (and its UB or leak fails `make check`, which builds these with ASan and
# UBSan). `make fuzz` is the real fuzzing, with clang; see tests/fuzz/README.md.
. "$(dirname "$0")/lib.sh"
R=${VR_BUILD:-$SRC_DIR/build}/fuzz-replay
cd "$SRC_DIR" || exit 1
n=0
while read -r name max_len seeds; do
	case $name in '#'* | '') continue ;; esac
	n=$((n + 1))
	dirs="tests/fuzz/corpus/$name $seeds"
	[ -d "tests/bad/fuzz/$name" ] && dirs="$dirs tests/bad/fuzz/$name"
	# the body reads $name and $dirs when it runs (eval in a subshell)
	test_expect_success "$name: every seed runs through (${max_len}-byte inputs when fuzzed)" '
		test -x "$R/$name" && "$R/$name" -v $dirs >"$TRASH/$name.out" 2>"$TRASH/$name.err" ||
			{ tail -n 30 "$TRASH/$name.err"; false; }
	'
done <tests/fuzz/harnesses
test_expect_success "every tests/fuzz/*.c but replay.c is listed ($n harnesses)" '
	ls tests/fuzz/*.c | sed "s|tests/fuzz/||; s|\.c\$||" | grep -vx replay | sort >"$TRASH/files" &&
	grep -v "^#" tests/fuzz/harnesses | awk "{print \$1}" | sort >"$TRASH/listed" &&
	test_cmp "$TRASH/files" "$TRASH/listed"
'
test_expect_success 'every harness has a committed seed folder' '
	for h in $(grep -v "^#" tests/fuzz/harnesses | awk "{print \$1}"); do
		test -n "$(ls tests/fuzz/corpus/$h)" || { echo "no seeds for $h"; exit 1; }
	done
'
test_done

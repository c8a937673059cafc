#!/bin/bash
# Every program: --help, --version, usage errors, and a man page whose
# SYNOPSIS and options match --help.
. "$(dirname "$0")/lib.sh"
for p in "$VR_BIN"/vr-*; do
	name=$(basename "$p")
	man="$SRC_DIR/man/man1/$name.1"
	test_expect_success "$name --help" "
		$name --help >help && head -1 help | grep -q '^Usage: $name '
	"
	test_expect_success "$name --version" "
		$name --version >v && grep -q '^$name [0-9][0-9.]*\$' v
	"
	test_expect_code 2 "$name: unknown option is a usage error" "$name --no-such-flag"
	test_expect_success "$name has a man page" "test -f '$man'"
	test_expect_success "$name: man SYNOPSIS matches --help" "
		syn=\$(head -1 help | sed 's/^Usage: $name //') &&
		sed -n '/^\\.SH SYNOPSIS/,/^\\.SH/p' '$man' | sed 's/\\\\-/-/g' >syn.man &&
		grep -qF -- \"\$syn\" syn.man
	"
	test_expect_success "$name: every --flag of --help is in the man page and back" "
		grep -o -- '--[a-z][a-z0-9-]*' help | sort -u >flags.help &&
		sed -n '/^\\.SH OPTIONS/,/^\\.SH EXIT/p' '$man' | sed 's/\\\\-/-/g' |
			grep -o -- '--[a-z][a-z0-9-]*' | sort -u >flags.man &&
		test_cmp flags.help flags.man
	"
done
test_done

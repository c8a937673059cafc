#!/bin/sh
# tests/fuzz/run.sh DIR SECONDS NAME...: `make fuzz`. Runs each libFuzzer
# binary DIR/bin/NAME (built by the Makefile with clang, ASan and UBSan) for
# SECONDS over its seeds (tests/fuzz/harnesses), one after the other, from
# the top of the source tree. New inputs go to DIR/corpus/NAME (kept between
# runs; the committed corpus is never written), a finding to
# DIR/findings/NAME/, the log to DIR/NAME.log. The first finding stops the
# run with its report and exit status 1; without one, a table of executions
# per harness is printed and the status is 0.
set -u
dir=$1 secs=$2
shift 2
list=tests/fuzz/harnesses
rows=""
for name in "$@"; do
	spec=$(grep -E "^$name[[:space:]]" "$list") || {
		echo "run.sh: $name is not listed in $list" >&2
		exit 2
	}
	max_len=$(echo "$spec" | awk '{print $2}')
	seeds=$(echo "$spec" | awk '{for (i = 3; i <= NF; i++) printf "%s ", $i}')
	[ -d "tests/bad/fuzz/$name" ] && seeds="$seeds tests/bad/fuzz/$name"
	mkdir -p "$dir/corpus/$name" "$dir/findings/$name"
	log=$dir/$name.log
	echo "fuzz: $name for ${secs}s (log: $log)"
	# shellcheck disable=SC2086
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
	"$dir/bin/$name" -max_total_time="$secs" -print_final_stats=1 -max_len="$max_len" \
		-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=25 \
		-artifact_prefix="$dir/findings/$name/" \
		"$dir/corpus/$name" "tests/fuzz/corpus/$name" $seeds >"$log" 2>&1
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "fuzz: $name: a finding (exit status $rc); the end of $log:" >&2
		tail -n 60 "$log" >&2
		ls -l "$dir/findings/$name/" >&2
		echo "fuzz: reproduce with: $dir/bin/$name FILE; keep the file in tests/bad/<kind>/ named after its defect" >&2
		exit 1
	fi
	stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
	execs=$(stat number_of_executed_units)
	seed_n=$(find "tests/fuzz/corpus/$name" -type f | wc -l)
	seed_b=$(find "tests/fuzz/corpus/$name" -type f -exec cat {} + | wc -c)
	corp=$(sed -n 's/.*DONE .* corp: \([^ ]*\) .*/\1/p' "$log" | tail -n 1)
	rows="$rows$(printf '| %s | %s | %s | %s | %s files, %s bytes | %s | %s | %s |' "$name" "$secs" "$execs" \
		"$((execs / secs))" "$seed_n" "$seed_b" "$corp" "$(stat new_units_added)" "$(stat peak_rss_mb)")
"
done
echo
echo "| harness | seconds | execs | execs/s | committed seeds | corpus at the end (inputs/size) | new inputs | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s' "$rows"

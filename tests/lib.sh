# tests/lib.sh: a small TAP harness for shell tests, in the manner of git's
# test-lib. A test script sources it, declares cases, and ends with test_done.
#   test_expect_success 'name' 'commands'
#   test_expect_code N 'name' 'commands'   (the last status must be exactly N)
#   test_skip 'reason'   (one skipped case)
#   test_must_fail cmd...   (exit 1 expected; a crash or success fails)
#   test_cmp expected actual
#   test_have_prereq PYTHON || skip_all "no python3"   (prerequisites: PYTHON, JQ, MPIRUN)
#   vr_mpirun N cmd...   (cmd as N ranks of one MPI job on this machine)
#   test_done   (the plan line; the script's exit status is the verdict)
# Each script runs in a fresh trash directory; $VR_BIN holds the programs,
# $SRC_DIR the source tree and $TEST_DIR tests/.
set -u
TEST_DIR=$(cd "$(dirname "$0")" && pwd)
SRC_DIR=$(cd "$TEST_DIR/.." && pwd)
: "${VR_BIN:=$SRC_DIR/bin}"
PATH="$VR_BIN:$PATH"
export PATH VR_BIN TEST_DIR SRC_DIR
LC_ALL=C
export LC_ALL
# The CPU backend unless the caller names one: fixtures and byte comparisons
# are the CPU's, and a GPU machine would otherwise pick cuda by default
# (tests/gpu/check.sh runs chosen tests with VR_DEVICE=cuda).
VR_DEVICE=${VR_DEVICE:-cpu}
export VR_DEVICE
test_count=0
test_failed=0
TRASH="${TMPDIR:-/tmp}/vr-test.$(basename "$0" .sh).$$"
rm -rf "$TRASH"
mkdir -p "$TRASH"
cd "$TRASH" || exit 1
trap 'cd /; rm -rf "$TRASH"' EXIT

say_result() { # ok|not-ok name
    test_count=$((test_count + 1))
    if [ "$1" = ok ]; then
        echo "ok $test_count - $2"
    else
        echo "not ok $test_count - $2"
        test_failed=$((test_failed + 1))
    fi
}

test_expect_success() {
    if (eval "$2") >"$TRASH/.out" 2>&1; then
        say_result ok "$1"
    else
        say_result not-ok "$1"
        # on stderr, so that prove shows it without -v (a CI log says why)
        sed 's/^/# /' "$TRASH/.out" >&2
    fi
}

# test_expect_code N name commands: the commands' last status must be N
test_expect_code() {
    local want=$1 rc
    (eval "$3") >"$TRASH/.out" 2>&1
    rc=$?
    if [ "$rc" -eq "$want" ]; then
        say_result ok "$2"
    else
        say_result not-ok "$2"
        echo "# exit status $rc, wanted $want" >&2
        sed 's/^/# /' "$TRASH/.out" >&2
    fi
}

# test_must_fail cmd...: succeeds when cmd exits 1 (not 0, not a signal)
test_must_fail() {
    "$@"
    local rc=$?
    if [ "$rc" -eq 1 ]; then return 0; fi
    echo "test_must_fail: '$*' exited $rc, wanted 1" >&2
    return 1
}

test_cmp() { diff -u "$1" "$2"; }

# test_skip reason: one skipped test (TAP "# SKIP"), e.g. a variant this CPU lacks
test_skip() {
    test_count=$((test_count + 1))
    echo "ok $test_count # SKIP $*"
}

skip_all() {
    echo "1..0 # SKIP $*"
    exit 0
}

test_have_prereq() {
    case "$1" in
    PYTHON) command -v python3 >/dev/null 2>&1 ;;
    JQ) command -v jq >/dev/null 2>&1 ;;
    MPIRUN) command -v mpirun >/dev/null 2>&1 ;;
    *) return 1 ;;
    esac
}

# vr_mpirun N cmd...: N ranks of cmd on this machine with Open MPI's mpirun:
# more ranks than cores, as root (a container), shared memory without
# ptrace (which containers forbid), under a timeout (a hang fails the test)
# Under `make check` (ASAN_OPTIONS set) the ranks unwind malloc stacks fully,
# so that tests/lsan.supp can recognise Open MPI's own allocations. Each test
# keeps Open MPI's session folders in its trash directory: two mpiruns that
# start at once (prove -j2) race creating /tmp/ompi.HOST.UID, and the loser's
# orte_init fails with "File exists".
vr_mpirun() {
    local n=$1 asan=${ASAN_OPTIONS:-}
    shift
    mkdir -p "$TRASH/.ompi"
    ASAN_OPTIONS=${asan:+$asan:fast_unwind_on_malloc=0} OMPI_MCA_orte_tmpdir_base="$TRASH/.ompi" \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader \
        OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1 \
        timeout 300 mpirun --oversubscribe -np "$n" "$@"
}

# The update tests' set-up in the current folder: two vr-synth scenes, a tiny
# f32 policy (seed 21) and reference (seed 22) with a tokenizer trained on
# the golden corpus, and the golden scored lines encoded into ./cache
# (scored.jsonl).
tiny_update_setup() {
	local g=$SRC_DIR/tests/golden/update
	vr-synth --out synth --seed 3 -n 2 --splits train >/dev/null &&
	vr-init --preset tiny --train-tokenizer "$g/corpus.txt" --vocab 256 --seed 21 --init-range 0.1 --dtype f32 -o policy 2>/dev/null &&
	vr-init --preset tiny --train-tokenizer "$g/corpus.txt" --vocab 256 --seed 22 --init-range 0.1 --dtype f32 -o ref 2>/dev/null &&
	vr-encode --cache cache "$g/scored.jsonl" >scored.jsonl
}

test_done() {
    echo "1..$test_count"
    [ "$test_failed" -eq 0 ]
}

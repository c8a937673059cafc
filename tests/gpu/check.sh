#!/bin/sh
# tests/gpu/check.sh [RESULTS]: every check that needs a GPU, in one run, for
# the few minutes a GPU machine is lent (issue 15; DESIGN.md §7). Build here
# first (`make`: nvcc builds kernels/ and build/tests/cuda_ops.t without a
# GPU), carry build/ and bin/, then on the GPU machine:
#     sh tests/gpu/check.sh "$OUT/gpu-check.txt"
# Everything goes to RESULTS (default gpu-check.txt) as well as stdout; the
# exit status is 0 only when every check passed.
#   1. the machine: GPU, driver, CUDA runtime the binaries were built with
#   2. build/tests/cuda_ops.t: every CUDA op against its CPU twin
# Not here yet (they need the op seam's CUDA table, VR_DEVICE=cuda): the tiny
# golden model's logits, greedy tokens and one GRPO step against the CPU
# backend, and bench/gpu. Each is added here when it exists.
set -u
OUTFILE=${1:-gpu-check.txt}
BUILD=${VR_BUILD:-build}
: >"$OUTFILE"
say() { echo "$@" | tee -a "$OUTFILE"; }
run() { # run NAME CMD...: its output into RESULTS, its status remembered
    name=$1; shift
    say "== $name: $*"
    t0=$(date +%s)
    "$@" >>"$OUTFILE" 2>&1
    rc=$?
    say "== $name: exit $rc in $(( $(date +%s) - t0 )) s"
    [ $rc -eq 0 ] || fail=1
}
fail=0
say "# vr GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
run machine sh -c 'uname -m; nproc; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv'
if [ $fail -ne 0 ]; then
    say "no GPU here (nvidia-smi failed): this script is for a GPU machine"
    exit 1
fi
if [ ! -x "$BUILD/tests/cuda_ops.t" ]; then
    say "missing $BUILD/tests/cuda_ops.t: build with nvcc (make) and carry build/"
    exit 1
fi
run cuda_ops "$BUILD/tests/cuda_ops.t"
if grep -q '^1\.\.0 # SKIP' "$OUTFILE"; then
    say "a test skipped: it did not see the GPU"
    fail=1
fi
grep '^not ok' "$OUTFILE" | head -20
say "# $( [ $fail -eq 0 ] && echo PASS || echo FAIL )"
exit $fail

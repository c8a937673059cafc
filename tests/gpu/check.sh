#!/bin/sh
# tests/gpu/check.sh [RESULTS]: every check that needs a GPU, in one run, for
# the few minutes a GPU machine is lent (issue 15; DESIGN.md §7). Here, first:
#     sh tests/gpu/pack.sh        (gpu-pack.tgz: programs, tests, libraries)
# then on the GPU machine, with gpu-pack.tgz carried:
#     sh tests/gpu/check.sh "$OUT/gpu-check.txt"
# Without gpu-pack/ it uses bin/ and build/ (a machine that has the libraries).
# gpu-whl/ (pack.sh --peer), when there, is installed for the transformers
# peer of bench/gpu.sh; carry it in a second call if both pass 64 MiB.
# Everything goes to RESULTS (default gpu-check.txt) as well as stdout; the
# exit status is 0 only when every check passed.
#   1. the machine: GPU, driver
#   2. cuda_ops.t: every CUDA op against its CPU twin, and the seam's CUDA
#      table (kernels/backend.c) on host memory
#   3. the model on the GPU's kernels (VR_DEVICE=cuda): qwen.t (the golden
#      tiny model's logits against transformers), t0060 (greedy tokens,
#      log-probs and an SFT step against the CPU backend), t0900 (one GRPO
#      step against PyTorch's)
#   4. bench/gpu.sh: decode against the HBM roofline, rollout against
#      transformers, a GRPO step's tokens/s, MFU and peak memory
set -u
OUTFILE=${1:-gpu-check.txt}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
[ -f gpu-pack.tgz ] && [ ! -d gpu-pack ] && tar -xzf gpu-pack.tgz
if [ -d gpu-pack ]; then
    BIN=$ROOT/gpu-pack/bin UNITS=$ROOT/gpu-pack/tests
    LD_LIBRARY_PATH=$ROOT/gpu-pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH TOK=$ROOT/gpu-pack/qwen-tokenizer.json
else
    BIN=$ROOT/bin UNITS=$ROOT/${VR_BUILD:-build}/tests
fi
if [ -d gpu-whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site gpu-whl/*.whl &&
        PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} && export PYTHONPATH
fi
PATH=$BIN:$PATH VR_BIN=$BIN VR_CUDA_LIB=$BIN/libvr_cuda.so
export PATH VR_BIN VR_CUDA_LIB
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
if [ ! -x "$UNITS/cuda_ops.t" ] || [ ! -f "$BIN/libvr_cuda.so" ]; then
    say "missing $UNITS/cuda_ops.t or $BIN/libvr_cuda.so: run tests/gpu/pack.sh here and carry gpu-pack"
    exit 1
fi
run cuda_ops "$UNITS/cuda_ops.t"
if grep -q 'no GPU' "$OUTFILE"; then
    say "cuda_ops.t did not see the GPU"
    fail=1
fi
run qwen-golden-cuda env VR_DEVICE=cuda "$UNITS/qwen.t"
run device-t0060 bash tests/t0060-device.sh
run update-golden-cuda env VR_DEVICE=cuda bash tests/t0900-update-golden.sh
run bench-gpu timeout 360 bash bench/gpu.sh -k
grep '^not ok' "$OUTFILE" | head -20
say "# $( [ $fail -eq 0 ] && echo PASS || echo FAIL )"
exit $fail

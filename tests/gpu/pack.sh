#!/bin/sh
# tests/gpu/pack.sh: build what tests/gpu/check.sh runs on a GPU machine into
# gpu-pack.tgz (git-ignored; gpu-pack/ unpacked), self-contained: the programs and libvr_cuda.so
# (built here with nvcc, without MPI), the unit tests it runs, jq, the Qwen
# tokenizer for bench/gpu.sh, and every shared library they load that a bare
# machine may lack (from ldd; glibc, the CUDA driver and CUDA's own libraries
# stay the machine's), stripped and compressed to fit the device tool's 64 MiB
# carry limit (about 20 MB beside a 14 MB tree).
#     sh tests/gpu/pack.sh [--peer]
# then on the GPU machine (the device tool, carry ["gpu-pack.tgz"]):
#     sh tests/gpu/check.sh "$OUT/gpu-check.txt"
# --peer also downloads transformers and what it needs (not numpy: the GPU
# image's PyTorch has it) as wheels into gpu-whl/ (about 31 MB), for
# bench/gpu.sh's transformers peer; carry it in a second call on the same warm
# machine (gpu-pack/ stays unpacked there), as the two together pass 64 MiB.
set -eu
cd "$(dirname "$0")/../.."
if [ "${1:-}" = --peer ]; then
	rm -rf gpu-whl
	python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d gpu-whl transformers==5.25.0
	rm -f gpu-whl/numpy-*
	du -sh gpu-whl
fi
make -s MPICC= BUILD=build/gpu BIN=build/gpu/bin all
rm -rf gpu-pack
mkdir -p gpu-pack/bin gpu-pack/tests gpu-pack/lib
cp build/gpu/bin/* gpu-pack/bin/
cp build/gpu/tests/cuda_ops.t build/gpu/tests/qwen.t gpu-pack/tests/
cp "$(command -v jq)" gpu-pack/bin/
cp ../shared/tokenizers/qwen2.5/tokenizer.json gpu-pack/qwen-tokenizer.json
ldd gpu-pack/bin/* gpu-pack/tests/*.t 2>/dev/null | awk '/=> \// { print $3 }' | sort -u |
	grep -v -E '/(libc|libm|libpthread|libdl|librt|libgcc_s|libstdc\+\+|ld-linux-x86-64|libcuda|libcublas|libcublasLt|libcudart)\.so' |
	while read -r f; do cp -L "$f" gpu-pack/lib/; done
strip --strip-unneeded gpu-pack/bin/* gpu-pack/tests/*.t gpu-pack/lib/* 2>/dev/null || true
tar -czf gpu-pack.tgz gpu-pack
ls -l gpu-pack.tgz

#!/usr/bin/env bash
# Runs gptfast_cuda_tests on the CPU, the kernels under a small CUDA emulator (emu_cuda.h; no GPU,
# no nvcc): checks the kernels' algorithms where no GPU is available. It says nothing about nvcc's
# code, memory ordering on a device or speed; the GPU run stays the real test.
# usage: native/test/cuda_emulator/run.sh [gtest filter]
#   THREADS  block size of the sampling kernels (default 64; the GPU uses 512, which is slower here)
#   DRAWS    draws per statistical test (default 20000; the GPU uses 200000)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
native="$(cd "$here/../.." && pwd)"
out="${EMU_OUT:-${TMPDIR:-/tmp}/gptfast-cuda-emulator}"
python3 "$here/generate.py" "$native" "$out" "${THREADS:-64}"
g++ -std=c++17 -O2 -I"$here/include" -I"$native/src" -I"$native/include" -I"$native/test" \
  -DGPTFAST_EMU_DRAWS="${DRAWS:-20000}" "$out"/cuda/*.cpp "$native/src/cuda/device_sampler.cpp" "$out/test.cpp" \
  "$native/src/sampler.cpp" "$native/src/speculative_sampling.cpp" -lgtest_main -lgtest -lpthread \
  -o "$out/emulated_cuda_tests"
exec "$out/emulated_cuda_tests" --gtest_filter="${1:-*}"

#!/usr/bin/env bash
# In-process A/B of the one-vector matvec kernels of several libgptfast.so builds (see
# benchmarks/kernel_ab.cpp): compiles it against this checkout's native/src and build/native
# (./build.sh first), then runs it. Build each variant's library first (e.g. copy
# build/native/libgptfast.so aside after `ninja -C build/native gptfast` with a change), and pass
# the baseline twice as a control.
#   benchmarks/kernel-ab.sh int4 2048 768 32 100 20 /tmp/a/libgptfast.so /tmp/b/libgptfast.so /tmp/a2/libgptfast.so
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${TMPDIR:-/tmp}/gptfast-kernel-ab"
[ -f "$ROOT/build/native/libgptfast.so" ] || { echo "build/native/libgptfast.so is missing: run ./build.sh first" >&2; exit 1; }
g++ -O2 -std=c++17 -I"$ROOT/native/src" "$ROOT/benchmarks/kernel_ab.cpp" -o "$BIN" -ldl \
  -L"$ROOT/build/native" -lgptfast -Wl,-rpath,"$ROOT/build/native"
exec "$BIN" "$@"

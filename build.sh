#!/usr/bin/env bash
# gptfast4j build: sets up everything a fresh Debian machine lacks (once; cached in
# ~/.cache/gptfast4j), builds the native engine with CMake/Ninja and the Java side with Maven.
#   ./build.sh          set up and build
#   ./build.sh test     set up, build, run every test (native GoogleTest + JUnit + examples/)
#   ./build.sh cuda [test]  also build the CUDA variant of native/ in build/native-cuda (no GPU
#                       needed: nvcc comes from PyPI, CUDA libtorch from bytedeco's -gpu jar) and,
#                       with test, run its CUDA tests (they skip, saying why, without a GPU)
# LIBTORCH=/path/to/libtorch uses that libtorch (include/ and lib/) instead of the pinned one, for
# both variants (e.g. the directory of a pip torch). CUDA_HOME=/path uses that CUDA toolkit's nvcc.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${GPTFAST_CACHE:-$HOME/.cache/gptfast4j}"
JOBS="${GPTFAST_JOBS:-$(nproc)}"

# Pinned inputs. The torch wheel only supplies C++ headers matching the bytedeco libtorch.
TORCH_VERSION=2.10.0
TORCH_WHEEL=torch-2.10.0-3-cp311-cp311-manylinux_2_28_x86_64.whl
TORCH_WHEEL_SHA256=ac5bdcbb074384c66fa160c15b1ead77839e3fe7ed117d667249afce0acabfac
BYTEDECO_PYTORCH=2.10.0-1.5.13
BYTEDECO_OPENBLAS=0.3.31-1.5.13
# CUDA variant: the compiler from PyPI (the -cu12 wheels lack the nvcc driver; 13.0 is what the
# GPU machines' pip torch is built with), libtorch from bytedeco's GPU jar (CUDA 13.1: a minor
# version the 13.0 runtime API is compatible with).
CUDA_WHEELS=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85)
CUDA_ARCHS="${GPTFAST_CUDA_ARCHS:-80;90}"  # A100, H100/H200 (+ PTX for newer GPUs)
SPM_VERSION=0.2.0  # last sdist that bundles its third-party sources (later ones fetch from GitHub)
SPM_SHA256=a52c19171daaf2e697dc6cbe67684e0fa341b1248966f6aebb541de654d15843

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

install_packages() {
  local needed=(cmake ninja-build g++ maven unzip python3 python3-pip nlohmann-json3-dev libgtest-dev openjdk-17-jdk-headless)
  local missing=()
  for p in "${needed[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  # A Debian libtorch on the library path breaks JavaCPP's first load and CMake's lookups.
  if dpkg -s libtorch-dev >/dev/null 2>&1 || dpkg -s python3-torch >/dev/null 2>&1; then
    echo "warning: Debian's libtorch/python3-torch is installed; it may shadow the pinned libtorch" >&2
  fi
  [ ${#missing[@]} -eq 0 ] && return
  step "installing Debian packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

torch_headers() {
  if [ -n "${LIBTORCH:-}" ]; then
    [ -f "$LIBTORCH/include/ATen/ATen.h" ] || die "LIBTORCH=$LIBTORCH has no include/ATen/ATen.h"
    TORCH_INCLUDE="$LIBTORCH/include"; return
  fi
  TORCH_INCLUDE="$CACHE/torch-$TORCH_VERSION/include"
  [ -f "$TORCH_INCLUDE/ATen/ATen.h" ] && return
  step "fetching libtorch $TORCH_VERSION headers from the PyPI torch wheel (build time only)"
  mkdir -p "$CACHE/dl"
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    --python-version 3.11 "torch==$TORCH_VERSION" -d "$CACHE/dl"
  echo "$TORCH_WHEEL_SHA256  $CACHE/dl/$TORCH_WHEEL" | sha256sum -c --quiet - || die "torch wheel hash mismatch"
  rm -rf "$CACHE/torch-$TORCH_VERSION.tmp"
  python3 - "$CACHE/dl/$TORCH_WHEEL" "$CACHE/torch-$TORCH_VERSION.tmp" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("torch/include/"):
            z.extract(name, dest)
PY
  mv "$CACHE/torch-$TORCH_VERSION.tmp/torch" "$CACHE/torch-$TORCH_VERSION"
  rm -rf "$CACHE/torch-$TORCH_VERSION.tmp" "$CACHE/dl/$TORCH_WHEEL"  # 900 MB; only headers are kept
}

# The .so files of a bytedeco artifact's jar (not its JNI glue) into DIR: bytedeco_libs ARTIFACT
# VERSION CLASSIFIER DIR. The libtorch we link against is the one JavaCPP loads at run time.
bytedeco_libs() {
  local artifact="$1" version="$2" classifier="$3" dir="$4"
  local jar="${MAVEN_REPO:-$HOME/.m2/repository}/org/bytedeco/$artifact/$version/$artifact-$version-$classifier.jar"
  mvn -q dependency:get -Dtransitive=false -Dartifact="org.bytedeco:$artifact:$version:jar:$classifier"
  mkdir -p "$dir"
  unzip -o -j -q "$jar" "org/bytedeco/$artifact/$classifier/lib*.so*" -x '*/libjni*' -d "$dir"
}

torch_libs() {
  if [ -n "${LIBTORCH:-}" ]; then TORCH_LIBDIR="$LIBTORCH/lib"; return; fi
  TORCH_LIBDIR="$CACHE/bytedeco-$BYTEDECO_PYTORCH/lib"
  [ -f "$TORCH_LIBDIR/libtorch_cpu.so" ] && [ -f "$TORCH_LIBDIR/libopenblas.so.0" ] && return
  step "extracting libtorch from org.bytedeco:pytorch:$BYTEDECO_PYTORCH (Maven Central)"
  rm -rf "$TORCH_LIBDIR.tmp"
  bytedeco_libs pytorch "$BYTEDECO_PYTORCH" linux-x86_64 "$TORCH_LIBDIR.tmp"
  bytedeco_libs openblas "$BYTEDECO_OPENBLAS" linux-x86_64 "$TORCH_LIBDIR.tmp"
  rm -rf "$TORCH_LIBDIR" && mv "$TORCH_LIBDIR.tmp" "$TORCH_LIBDIR"
}

cuda_toolkit() {
  if [ -n "${CUDA_HOME:-}" ]; then
    [ -x "$CUDA_HOME/bin/nvcc" ] || die "CUDA_HOME=$CUDA_HOME has no bin/nvcc"
    CUDA_PREFIX="$CUDA_HOME"; return
  fi
  CUDA_PREFIX="$CACHE/cuda-13.0"
  [ -x "$CUDA_PREFIX/bin/nvcc" ] && return
  step "fetching the CUDA 13.0 compiler from PyPI (${CUDA_WHEELS[*]%%==*}; no GPU needed)"
  local dl="$CACHE/dl/cuda-13.0" tmp="$CUDA_PREFIX.tmp"
  mkdir -p "$dl"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 "${CUDA_WHEELS[@]}" -d "$dl"
  rm -rf "$tmp" && mkdir -p "$tmp"
  for w in "$dl"/*.whl; do unzip -q -o "$w" 'nvidia/cu13/*' -d "$tmp"; done
  rm -rf "$CUDA_PREFIX" && mv "$tmp/nvidia/cu13" "$CUDA_PREFIX" && rm -rf "$tmp" "$dl"
  chmod +x "$CUDA_PREFIX"/bin/* "$CUDA_PREFIX"/nvvm/bin/*
  # nvcc and CMake look for a toolkit's libraries in lib64/ and for the unversioned libcudart.so.
  ln -sfn lib "$CUDA_PREFIX/lib64"
  ln -sf libcudart.so.13 "$CUDA_PREFIX/lib/libcudart.so"
}

# The CUDA libtorch we link against: bytedeco's GPU jar, which JavaCPP loads when Java's loader
# chooses the GPU natives (its CUDA libraries come from a CUDA 13 install or PyPI).
torch_cuda_libs() {
  if [ -n "${LIBTORCH:-}" ]; then TORCH_CUDA_LIBDIR="$LIBTORCH/lib"; return; fi
  TORCH_CUDA_LIBDIR="$CACHE/bytedeco-$BYTEDECO_PYTORCH-gpu/lib"
  [ -f "$TORCH_CUDA_LIBDIR/libtorch_cuda.so" ] && return
  step "extracting CUDA libtorch from org.bytedeco:pytorch:$BYTEDECO_PYTORCH:linux-x86_64-gpu (Maven Central, 460 MB)"
  rm -rf "$TORCH_CUDA_LIBDIR.tmp"
  bytedeco_libs pytorch "$BYTEDECO_PYTORCH" linux-x86_64-gpu "$TORCH_CUDA_LIBDIR.tmp"
  rm -rf "$TORCH_CUDA_LIBDIR" && mv "$TORCH_CUDA_LIBDIR.tmp" "$TORCH_CUDA_LIBDIR"
}

sentencepiece() {
  SPM_PREFIX="$CACHE/sentencepiece-$SPM_VERSION"
  [ -f "$SPM_PREFIX/lib/libsentencepiece.a" ] && return
  step "building static SentencePiece $SPM_VERSION (-fPIC) from its PyPI sdist"
  mkdir -p "$CACHE/dl"
  local sdist="$CACHE/dl/sentencepiece-$SPM_VERSION.tar.gz" work="$CACHE/spm-build"
  [ -f "$sdist" ] || python3 -m pip download -q --no-deps --no-binary=:all: "sentencepiece==$SPM_VERSION" -d "$CACHE/dl"
  echo "$SPM_SHA256  $sdist" | sha256sum -c --quiet - || die "sentencepiece sdist hash mismatch"
  rm -rf "$work" && mkdir -p "$work" && tar xzf "$sdist" -C "$work"
  local src="$work/sentencepiece-$SPM_VERSION/sentencepiece"
  cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPM_ENABLE_SHARED=OFF \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DCMAKE_INSTALL_PREFIX="$SPM_PREFIX.tmp" >/dev/null
  ninja -C "$work/build" -j "$JOBS" sentencepiece-static >/dev/null
  mkdir -p "$SPM_PREFIX.tmp/lib" "$SPM_PREFIX.tmp/include"
  cp "$work/build/src/libsentencepiece.a" "$SPM_PREFIX.tmp/lib/"
  cp "$src/src/sentencepiece_processor.h" "$SPM_PREFIX.tmp/include/"
  rm -rf "$SPM_PREFIX" && mv "$SPM_PREFIX.tmp" "$SPM_PREFIX" && rm -rf "$work"
}

build_native() {
  step "building native/ (CMake + Ninja)"
  cmake -S "$ROOT/native" -B "$ROOT/build/native" -G Ninja \
    -DGPTFAST_TORCH_INCLUDE="$TORCH_INCLUDE" -DGPTFAST_TORCH_LIBDIR="$TORCH_LIBDIR" \
    -DGPTFAST_SPM_PREFIX="$SPM_PREFIX" >/dev/null
  ninja -C "$ROOT/build/native" -j "$JOBS"
}

build_native_cuda() {
  step "building the CUDA variant of native/ in build/native-cuda (nvcc, archs $CUDA_ARCHS)"
  cmake -S "$ROOT/native" -B "$ROOT/build/native-cuda" -G Ninja -DGPTFAST_WITH_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$CUDA_PREFIX/bin/nvcc" -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS" \
    -DGPTFAST_TORCH_INCLUDE="$TORCH_INCLUDE" -DGPTFAST_TORCH_LIBDIR="$TORCH_CUDA_LIBDIR" \
    -DGPTFAST_SPM_PREFIX="$SPM_PREFIX" >/dev/null
  # Ninja's log names each kernel as nvcc compiles it ("Building CUDA object ....cu.o"). The CPU
  # tests are the CPU build's; here only the library, the CUDA tests and the device bench.
  ninja -C "$ROOT/build/native-cuda" -j "$JOBS" gptfast gptfast_cuda_tests gptfast_cuda_engine_tests gptfast_device_bench
}

# The kernel tests need only the CUDA runtime: without a GPU they skip, each printing why. The
# engine tests also need libtorch's CUDA libraries (cuBLAS, cuDNN, ...), which bytedeco's jar
# does not carry: where they cannot load, this says so; benchmarks/gpu-check.sh runs them on a GPU.
run_cuda_tests() {
  step "CUDA tests (build/native-cuda)"
  "$ROOT/build/native-cuda/gptfast_cuda_tests"
  # Without a GPU the kernels' algorithms still run: the same tests under a CPU emulator of CUDA.
  step "CUDA kernel tests under the CPU emulator (native/test/cuda_emulator)"
  EMU_OUT="$ROOT/build/cuda-emulator" "$ROOT/native/test/cuda_emulator/run.sh"
  local missing
  missing="$(ldd "$ROOT/build/native-cuda/gptfast_cuda_engine_tests" | grep 'not found' | awk '{print $1}' | tr '\n' ' ')"
  if [ -n "$missing" ]; then
    echo "gptfast_cuda_engine_tests not run here: libraries the CUDA libtorch needs are not installed ($missing); benchmarks/gpu-check.sh runs them on a GPU machine"
  else
    "$ROOT/build/native-cuda/gptfast_cuda_engine_tests"
  fi
}

build_java() {
  step "building java/ and benchmarks/ (Maven), installing the artifacts to the local Maven repository"
  (cd "$ROOT" && mvn -q -B install -DskipTests)
}

# examples/ depends on the installed artifacts by coordinates, as a user's project would.
run_examples() {
  step "examples/: a consumer project built against the installed artifacts"
  (cd "$ROOT/examples" && mvn -q -B package)
  local out
  for main in example.StreamStory example.LangChainChat; do
    out="$(cd "$ROOT/examples" && java -cp "target/classes:target/lib/*" "$main")" || die "examples: $main failed"
    printf '%s\n' "$out"
    grep -q '^\[[0-9][0-9]* tokens, ' <<<"$out" || die "examples: $main printed no generation summary"
  done
}

run_tests() {
  step "native tests (GoogleTest via ctest)"
  (cd "$ROOT/build/native" && ctest --output-on-failure --no-tests=error)
  step "Java tests (JUnit via Maven Surefire)"
  (cd "$ROOT" && mvn -B test)
  run_examples
}

WITH_CUDA=0 TESTS=0
for arg in "$@"; do
  case "$arg" in
    cuda) WITH_CUDA=1 ;;
    test) TESTS=1 ;;
    *) die "unknown argument '$arg' (expected: [cuda] [test])" ;;
  esac
done

install_packages
torch_headers
torch_libs
sentencepiece
build_native
if [ "$WITH_CUDA" = 1 ]; then
  cuda_toolkit
  torch_cuda_libs
  build_native_cuda
fi
build_java
if [ "$TESTS" = 1 ]; then
  run_tests
  if [ "$WITH_CUDA" = 1 ]; then run_cuda_tests; fi
fi

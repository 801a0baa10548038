#!/usr/bin/env bash
# gptfast4j build: sets up everything a fresh Debian machine lacks (once; cached in
# ~/.cache/gptfast4j), builds the native engine with CMake/Ninja and the Java side with Maven.
#   ./build.sh          set up and build
#   ./build.sh test     set up, build, run every test (native GoogleTest + JUnit + examples/)
# LIBTORCH=/path/to/libtorch uses that libtorch (include/ and lib/) instead of the pinned one.
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

# The libtorch .so files we link against are the ones JavaCPP loads at run time: the bytedeco jars.
torch_libs() {
  if [ -n "${LIBTORCH:-}" ]; then TORCH_LIBDIR="$LIBTORCH/lib"; return; fi
  TORCH_LIBDIR="$CACHE/bytedeco-$BYTEDECO_PYTORCH/lib"
  [ -f "$TORCH_LIBDIR/libtorch_cpu.so" ] && [ -f "$TORCH_LIBDIR/libopenblas.so.0" ] && return
  step "extracting libtorch from org.bytedeco:pytorch:$BYTEDECO_PYTORCH (Maven Central)"
  local m2="${MAVEN_REPO:-$HOME/.m2/repository}/org/bytedeco"
  mvn -q dependency:get -Dtransitive=false -Dartifact="org.bytedeco:pytorch:$BYTEDECO_PYTORCH:jar:linux-x86_64"
  mvn -q dependency:get -Dtransitive=false -Dartifact="org.bytedeco:openblas:$BYTEDECO_OPENBLAS:jar:linux-x86_64"
  mkdir -p "$TORCH_LIBDIR.tmp"
  unzip -o -j -q "$m2/pytorch/$BYTEDECO_PYTORCH/pytorch-$BYTEDECO_PYTORCH-linux-x86_64.jar" \
    'org/bytedeco/pytorch/linux-x86_64/lib*.so*' -x '*/libjni*' -d "$TORCH_LIBDIR.tmp"
  unzip -o -j -q "$m2/openblas/$BYTEDECO_OPENBLAS/openblas-$BYTEDECO_OPENBLAS-linux-x86_64.jar" \
    'org/bytedeco/openblas/linux-x86_64/lib*.so*' -x '*/libjni*' -d "$TORCH_LIBDIR.tmp"
  rm -rf "$TORCH_LIBDIR" && mv "$TORCH_LIBDIR.tmp" "$TORCH_LIBDIR"
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

install_packages
torch_headers
torch_libs
sentencepiece
build_native
build_java
if [ "${1:-}" = "test" ]; then run_tests; fi

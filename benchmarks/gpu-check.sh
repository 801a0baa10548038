#!/usr/bin/env bash
# The GPU check: one prepared run on a machine with an NVIDIA GPU, CUDA (nvcc), CMake, a C++
# compiler and a Python with a CUDA torch, but no Java and no network. It builds native/ against
# that torch, runs every CUDA test, and benchmarks decode on random-weight Llama-2-7B and
# Llama-3-8B shapes (bf16, int8, int4; batch 1 and 8) next to the device-to-device copy bandwidth
# measured in the same run (sampling on the device; one row with CPU sampling), times each
# quantized row's Linear layers with the engine's gemv kernels and with libtorch's
# _weight_int8pack_mm / _weight_int4pack_mm on the same shapes, and, with GPT-Fast's source
# beside it, runs GPT-Fast's own `generate.py --compile` on the same shapes. Each step logs to $OUT/<step>.log and the results
# gather in $OUT/summary.md; a failing step is reported and the next one runs; the whole run
# stays under a time budget (GPU_CHECK_BUDGET_S, default 450 s), skipping what no longer fits
# (GPU_CHECK_TIME_SCALE multiplies each step's own limit, for rehearsals on slow machines).
#
#   benchmarks/gpu-check.sh [-o OUT] [--deps DIR]   run the check (OUT defaults to $OUT, else ./gpu-check-out)
#   benchmarks/gpu-check.sh --bundle DIR            on a machine with the repo's ../shared and network:
#                                                   gather what the GPU machine lacks into DIR (GoogleTest
#                                                   and nlohmann-json sources, the shared test models and
#                                                   references, the Llama 2 tokenizer), under 64 MiB
#
# Where the GPU is lent through the `device` tool: prepare once with
#   benchmarks/gpu-check.sh --bundle build/gpu-deps
# then run `bash benchmarks/gpu-check.sh --deps build/gpu-deps` there, carrying build/gpu-deps.
# GPT-Fast's source, if wanted, goes to build/gpu-deps/gpt-fast (copied in, never committed).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
START=$(date +%s)
BUDGET="${GPU_CHECK_BUDGET_S:-450}"
OUT_DIR="${OUT:-$ROOT/gpu-check-out}"
DEPS=""
BUNDLE=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) OUT_DIR="$2"; shift 2 ;;
    --deps) DEPS="$(cd "$2" && pwd)"; shift 2 ;;
    --bundle) BUNDLE="$2"; shift 2 ;;
    *) echo "gpu-check.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

# --- on a machine with network: the bundle -------------------------------------------------------
if [ -n "$BUNDLE" ]; then
  set -e
  SHARED="$ROOT/../shared"
  [ -d "$SHARED/models/stories260K" ] || { echo "gpu-check.sh: $SHARED/models/stories260K is missing" >&2; exit 1; }
  rm -rf "$BUNDLE" && mkdir -p "$BUNDLE/shared/models" "$BUNDLE/shared/reference" "$BUNDLE/shared/tokenizers"
  cp -r "$SHARED/models/stories260K" "$SHARED/models/llama3-tiny-random" "$BUNDLE/shared/models/"
  cp "$SHARED"/reference/*.jsonl "$BUNDLE/shared/reference/"
  cp "$SHARED/tokenizers/llama2-tokenizer.model" "$BUNDLE/shared/tokenizers/"
  # Sources, built there with that machine's compiler (Debian's libgtest-dev and nlohmann-json3-dev).
  [ -d /usr/src/googletest ] || { echo "gpu-check.sh: /usr/src/googletest missing (apt install libgtest-dev)" >&2; exit 1; }
  cp -r /usr/src/googletest "$BUNDLE/googletest"
  mkdir -p "$BUNDLE/prefix/include" "$BUNDLE/prefix/share/cmake"
  cp -r /usr/include/nlohmann "$BUNDLE/prefix/include/"
  cp -r /usr/share/cmake/nlohmann_json "$BUNDLE/prefix/share/cmake/"
  du -sh "$BUNDLE"
  exit 0
fi

# --- on the GPU machine --------------------------------------------------------------------------
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
SUMMARY="$OUT_DIR/summary.md"
BUILD="$ROOT/build/gpu"
SHARED_DIR="${GPTFAST_SHARED:-}"
[ -z "$SHARED_DIR" ] && [ -n "$DEPS" ] && [ -d "$DEPS/shared" ] && SHARED_DIR="$DEPS/shared"
[ -z "$SHARED_DIR" ] && SHARED_DIR="$ROOT/../shared"
JOBS="$(nproc)"

elapsed() { echo $(($(date +%s) - START)); }
left() { echo $((BUDGET - $(elapsed))); }
note() { printf '%s\n' "$*" | tee -a "$SUMMARY"; }
# run_step NAME SECONDS CMD...: runs CMD with a timeout (no more than the budget left), logging
# to NAME.log; records the outcome in the summary; returns CMD's status.
run_step() {
  local name="$1" limit=$(($2 * ${GPU_CHECK_TIME_SCALE:-1})); shift 2
  local avail; avail=$(left)
  if [ "$avail" -lt 10 ]; then note "- $name: skipped (time budget spent)"; return 99; fi
  [ "$limit" -gt "$avail" ] && limit="$avail"
  local t0; t0=$(date +%s)
  # A shell function runs in a child bash (timeout runs programs); functions and the variables
  # they use are exported for it.
  if [ "$(type -t "$1")" = function ]; then set -- bash -c "$*"; fi
  timeout --kill-after=10 "$limit" "$@" >"$OUT_DIR/$name.log" 2>&1
  local rc=$?
  local status="ok"; [ $rc -ne 0 ] && status="FAILED (exit $rc$([ $rc -eq 124 ] && echo ", timed out after ${limit}s"))"
  note "- $name: $status, $(($(date +%s) - t0)) s (log: $name.log)"
  [ $rc -ne 0 ] && tail -n 15 "$OUT_DIR/$name.log" | sed 's/^/    /' | tee -a "$SUMMARY" >/dev/null
  return $rc
}

: >"$SUMMARY"
note "# gptfast4j GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
note ""

{
  nvidia-smi || true
  echo; command -v nvcc && nvcc --version
  echo; cmake --version | head -1; "${CXX:-c++}" --version | head -1
  echo; python3 -c 'import torch, os; print("torch", torch.__version__, "cuda", torch.version.cuda, "at", os.path.dirname(torch.__file__)); print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)'
  echo; nproc; free -g | head -2
} >"$OUT_DIR/env.txt" 2>&1
GPU="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
CAP="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')"
TORCH_DIR="${LIBTORCH:-$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null)}"
note "- GPU: ${GPU:-none found}; compute capability: ${CAP:-unknown}; torch: $TORCH_DIR"
NVCC="$(command -v nvcc || true)"
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
note "- nvcc: ${NVCC:-none found}; shared test data: $SHARED_DIR"

# Dependencies the machine may lack, built from the bundle with this machine's compiler.
PREFIX="$BUILD/deps"
deps() {
  set -e
  if [ -n "$DEPS" ] && [ -d "$DEPS/googletest" ] && [ ! -f "$PREFIX/lib/cmake/GTest/GTestConfig.cmake" ] \
     && [ ! -f "$PREFIX/lib64/cmake/GTest/GTestConfig.cmake" ]; then
    cmake -S "$DEPS/googletest" -B "$BUILD/googletest" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$PREFIX" -DBUILD_GMOCK=OFF
    ninja -C "$BUILD/googletest" -j "$JOBS" install
  fi
  if [ -n "$DEPS" ] && [ -d "$DEPS/prefix" ]; then cp -r "$DEPS/prefix/." "$PREFIX/"; fi
}
mkdir -p "$PREFIX"
export ROOT BUILD PREFIX DEPS JOBS TORCH_DIR NVCC CAP SHARED_DIR OUT_DIR
export -f deps
run_step deps 120 deps

configure_and_build() {
  set -e
  LIBTORCH="$TORCH_DIR" cmake -S "$ROOT/native" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGPTFAST_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES="${CAP:-90}" \
    -DCMAKE_PREFIX_PATH="$PREFIX" -DGPTFAST_SPM_PREFIX=
  ninja -C "$BUILD" -j "$JOBS" gptfast gptfast_cuda_tests gptfast_cuda_engine_tests gptfast_device_bench gptfast_transformer_tests
}
export -f configure_and_build
if ! run_step build 300 configure_and_build; then
  note ""; note "The build failed; nothing else can run. See build.log."
  exit 1
fi

export GPTFAST_SHARED="$SHARED_DIR"
run_step cuda_kernel_tests 90 "$BUILD/gptfast_cuda_tests" --gtest_output="xml:$OUT_DIR/cuda_kernel_tests.xml"
run_step cuda_engine_tests 180 "$BUILD/gptfast_cuda_engine_tests" --gtest_output="xml:$OUT_DIR/cuda_engine_tests.xml"
run_step transformer_tests 60 "$BUILD/gptfast_transformer_tests"
# Each skipped test's line carries GoogleTest's reason (the line after "file:line: Skipped"),
# e.g. the tensor-parallel tests' "needs 2 CUDA devices, found 1" on a 1-GPU machine.
for t in cuda_kernel_tests cuda_engine_tests; do
  [ -f "$OUT_DIR/$t.log" ] && awk '
    /: Skipped$/ { if ((getline reason) > 0) why = reason; next }
    /^\[  SKIPPED \] [^ ]+ \([0-9]+ ms\)/ { print $0 (why != "" ? ": " why : ""); why = ""; next }
    /^\[  (PASSED|FAILED|SKIPPED) |tests? (ran|skipped)/ { print }' "$OUT_DIR/$t.log" \
    | sed "s/^/    $t: /" | tee -a "$SUMMARY" >/dev/null
done
# Each engine test and the device-sampling kernel tests by name: OK, FAILED or SKIPPED.
[ -f "$OUT_DIR/cuda_engine_tests.log" ] && grep -E '^\[ +(OK|FAILED|SKIPPED) +\] CudaEngine\.' "$OUT_DIR/cuda_engine_tests.log" | sed 's/^/    /' | tee -a "$SUMMARY" >/dev/null
[ -f "$OUT_DIR/cuda_kernel_tests.log" ] && grep -E '^\[ +(OK|FAILED|SKIPPED) +\] CudaKernels\.DeviceSampler' "$OUT_DIR/cuda_kernel_tests.log" | sed 's/^/    /' | tee -a "$SUMMARY" >/dev/null

# Decode benchmarks. Shapes: GPT-Fast's ModelArgs for "7B" and "llama-3-8b" (models/transformer_configs.json).
LLAMA2_7B=(--name Llama-2-7B --dim 4096 --layers 32 --heads 32 --kv-heads 32 --ffn 11008 --vocab 32000 --rope-base 10000)
LLAMA3_8B=(--name Llama-3-8B --dim 4096 --layers 32 --heads 32 --kv-heads 8 --ffn 14336 --vocab 128256 --rope-base 500000)
BENCH="$OUT_DIR/bench.jsonl"
: >"$BENCH"
# Quantized rows print a second line ("kind":"quantized_linears"): one decode step's Linear layers
# with the engine's gemv kernels and with libtorch's _weight_int8pack_mm / _weight_int4pack_mm.
bench() {  # bench LOGNAME ARGS...
  local name="$1"; shift
  if run_step "$name" 90 "$BUILD/gptfast_device_bench" --device cuda --new-tokens 128 --runs 3 "$@"; then
    grep '^{' "$OUT_DIR/$name.log" >>"$BENCH"
  fi
}
for model in 7b 8b; do
  if [ $model = 7b ]; then shape=("${LLAMA2_7B[@]}"); else shape=("${LLAMA3_8B[@]}"); fi
  for q in bf16 int8 int4; do
    quant=(); [ $q != bf16 ] && quant=(--quantize "$q")
    for batch in 1 8; do
      bench "bench_${model}_${q}_b${batch}" "${shape[@]}" --dtype bf16 "${quant[@]}" --batch "$batch"
    done
  done
done
GPTFAST_CUDA_GRAPHS=0 bench bench_7b_bf16_b1_eager "${LLAMA2_7B[@]}" --dtype bf16 --batch 1
# The rows above sample on the device (only ids come back); this one sends logits to the CPU Sampler.
GPTFAST_DEVICE_SAMPLING=0 bench bench_7b_bf16_b1_cpu_sampling "${LLAMA2_7B[@]}" --dtype bf16 --batch 1

python3 - "$BENCH" <<'PY' | tee -a "$SUMMARY"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
decode = [r for r in rows if "kind" not in r]
linears = [r for r in rows if r.get("kind") == "quantized_linears"]
print("\n| model | weights | batch | decode tok/s | tok/s per sequence | copy GB/s | roofline steps/s | fraction | decode path | sampling |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in decode:
    path = r["describe"].split("decode=")[-1].split(" ")[0]
    sampling = r["describe"].split("sampling=")[-1] if "sampling=" in r["describe"] else "?"
    print(f'| {r["name"]} | {r["quantize"] or r["dtype"]} | {r["batch_size"]} | {r["decode_tokens_per_second"]:.1f} | '
          f'{r["decode_tokens_per_second_per_sequence"]:.1f} | {r["bandwidth_bytes_per_second"]/1e9:.0f} | '
          f'{r["roofline_steps_per_second"]:.1f} | {r["roofline_fraction"]:.2f} | {path} | {sampling} |')
if linears:
    print("\nOne decode step's quantized Linear layers (random weights, bf16 activations), microseconds per step:\n")
    print("| model | weights | batch | own gemv us | libtorch op | libtorch us | own/libtorch | max rel. diff | notes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in linears:
        own, aten = r["own_us_per_step"], r["aten_us_per_step"]
        ratio = f"{own / aten:.2f}" if own > 0 and aten > 0 else "-"
        notes = "; ".join(x for x in [
            r["own_error"] and "own: " + r["own_error"], r["aten_error"] and "libtorch: " + r["aten_error"],
            r["own_mode"] != "graph" and r["own_mode"] and "own " + r["own_mode"],
            r["aten_mode"] != "graph" and r["aten_mode"] and "libtorch " + r["aten_mode"]] if x)
        fmt = lambda v: f"{v:.1f}" if v > 0 else "-"
        rel = f'{r["max_relative_difference"]:.2g}' if r["max_relative_difference"] >= 0 else "-"
        print(f'| {r["name"]} | {r["quantize"]} | {r["batch_size"]} | {fmt(own)} | {r["aten_op"]} | {fmt(aten)} | '
              f'{ratio} | {rel} | {notes} |')
PY

# GPT-Fast itself, when its source was copied in: same shapes, random weights of its own.
PEER="${GPTFAST_PEER:-${DEPS:+$DEPS/gpt-fast}}"
if [ -n "$PEER" ] && [ -f "$PEER/generate.py" ]; then
  gpt_fast() {
    set -e
    local dir="$BUILD/gpt-fast-7b"
    mkdir -p "$dir"
    cp "$SHARED_DIR/tokenizers/llama2-tokenizer.model" "$dir/tokenizer.model"
    # A 7B state dict in GPT-Fast's names, bf16, random (std 0.02 as ours), written once.
    [ -f "$dir/model.pth" ] || (cd "$PEER" && python3 - "$dir/model.pth" <<'PY'
import sys, torch
from model import Transformer, ModelArgs
torch.manual_seed(1)
with torch.device("cuda"):
    m = Transformer(ModelArgs.from_name("7B")).to(torch.bfloat16)
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.02)
torch.save(m.state_dict(), sys.argv[1])
PY
)
    cd "$PEER"
    python3 generate.py --compile --checkpoint_path "$dir/model.pth" --prompt "Hello, my name is" \
      --max_new_tokens 128 --num_samples 5 --temperature 0
  }
  export PEER
  export -f gpt_fast
  run_step gpt_fast_7b_bf16 240 gpt_fast && grep -E "Average tokens/sec|Bandwidth achieved|Memory used" "$OUT_DIR/gpt_fast_7b_bf16.log" | sed 's/^/    GPT-Fast 7B bf16 --compile: /' | tee -a "$SUMMARY" >/dev/null
else
  note "- GPT-Fast: not run (no source at \${DEPS}/gpt-fast or \$GPTFAST_PEER)"
fi

note ""
note "Total: $(elapsed) s of a ${BUDGET} s budget. Results: $OUT_DIR (summary.md, bench.jsonl, *.log, *.xml)."

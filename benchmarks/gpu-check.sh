#!/usr/bin/env bash
# The GPU check: one prepared run on a machine with an NVIDIA GPU, CUDA (nvcc), CMake, a C++
# compiler and a Python with a CUDA torch, but no Java and no network. It builds native/ against
# that torch, runs every CUDA test executable (the list CMake writes, build/gpu/gpu_check_tests.txt:
# every gptfast_cuda_*tests target, then the batched-decode tests), and benchmarks decode on
# random-weight Llama-2-7B and Llama-3-8B shapes (bf16, int8, int4; batch 1 and 8) next to the
# device-to-device copy bandwidth measured in the same run (sampling on the device; one row with
# CPU sampling, one eager), the 7B int8/int4 batch-1 rows again with libtorch's
# _weight_int8pack_mm / _weight_int4pack_mm in the engine (GPTFAST_CUDA_QUANT_MATMUL=aten), each
# quantized row's Linear layers timed both ways on the same shapes, and, with GPT-Fast's source
# beside it, runs GPT-Fast's own `generate.py --compile` on the same shapes. Each step logs to
# build/gpu/check-logs/<step>.log and the results gather in $OUT/summary.md (written as the run
# goes) and $OUT/bench.jsonl, with every log packed into $OUT/logs.tar.gz at the end: three files,
# as the device tool brings back only a few. A failing step is reported and the next one runs;
# the exit status is 0 only if every step that ran passed. The whole run stays under a time budget
# (GPU_CHECK_BUDGET_S, default 450 s), skipping what no longer fits, most important rows first
# (GPU_CHECK_TIME_SCALE multiplies each step's own limit, for rehearsals on slow machines).
#
#   benchmarks/gpu-check.sh [-o OUT] [--deps DIR]   run the check (OUT defaults to $OUT, else ./gpu-check-out)
#   benchmarks/gpu-check.sh --bundle DIR            on a machine with the repo's ../shared and network:
#                                                   gather what the GPU machine lacks into DIR (GoogleTest
#                                                   and nlohmann-json sources, the shared test models and
#                                                   references, the Llama 2 tokenizer), 24 MB
#
# Where the GPU is lent through the `device` tool: prepare once with
#   benchmarks/gpu-check.sh --bundle build/gpu-deps
# then run `bash benchmarks/gpu-check.sh --deps build/gpu-deps` there, carrying build/gpu-deps,
# with a timeout_s above the budget (540 for the default 450 s).
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
# Logs outside $OUT, packed into it at the end (also when the script stops early): a run killed
# from outside still leaves summary.md alone there.
LOGS="$BUILD/check-logs"
rm -rf "$LOGS" && mkdir -p "$LOGS"
pack_logs() {
  cp "$SUMMARY" "$LOGS/" 2>/dev/null
  tar czf "$OUT_DIR/logs.tar.gz" -C "$LOGS" . 2>/dev/null
}
trap pack_logs EXIT
SHARED_DIR="${GPTFAST_SHARED:-}"
[ -z "$SHARED_DIR" ] && [ -n "$DEPS" ] && [ -d "$DEPS/shared" ] && SHARED_DIR="$DEPS/shared"
[ -z "$SHARED_DIR" ] && SHARED_DIR="$ROOT/../shared"
JOBS="$(nproc)"

FAILED_STEPS=()
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
  timeout --kill-after=10 "$limit" "$@" >"$LOGS/$name.log" 2>&1
  local rc=$?
  local status="ok"; [ $rc -ne 0 ] && status="FAILED (exit $rc$([ $rc -eq 124 ] && echo ", timed out after ${limit}s"))"
  [ $rc -ne 0 ] && FAILED_STEPS+=("$name")
  note "- $name: $status, $(($(date +%s) - t0)) s (log: $name.log)"
  [ $rc -ne 0 ] && tail -n 15 "$LOGS/$name.log" | sed 's/^/    /' | tee -a "$SUMMARY" >/dev/null
  return $rc
}

: >"$SUMMARY"
note "# gptfast4j GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
note ""

{
  nvidia-smi || true
  echo; command -v nvcc && nvcc --version
  echo; cmake --version | head -1; "${CXX:-c++}" --version | head -1
  echo; python3 -c 'import torch, os; print("torch", torch.__version__, "cuda", torch.version.cuda, "at", os.path.dirname(torch.__file__)); print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)'
  echo; nproc; free -g | head -2
} >"$LOGS/env.txt" 2>&1
GPU="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
CAP="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')"
TORCH_DIR="${LIBTORCH:-$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null)}"
note "- GPU: ${GPU:-none found}; compute capability: ${CAP:-unknown}; torch: $TORCH_DIR"
NVCC="$(command -v nvcc || true)"
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
note "- nvcc: ${NVCC:-none found}; shared test data: $SHARED_DIR"
# What nothing can run without, said before the build rather than as a CMake error inside it.
preflight=""
[ -f "$TORCH_DIR/include/ATen/ATen.h" ] || preflight="no libtorch headers at '$TORCH_DIR/include' (python3 cannot import torch, and LIBTORCH is unset or wrong)"
[ -z "$NVCC" ] && preflight="${preflight:+$preflight; }no nvcc (not on PATH, not at /usr/local/cuda/bin)"
[ -f "$SHARED_DIR/models/stories260K/model.pth" ] || note "- warning: no shared test models at $SHARED_DIR: the engine tests will fail (pass --deps DIR from --bundle)"
if [ -n "$preflight" ]; then
  note ""; note "Nothing can be built: $preflight."
  exit 1
fi

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
export ROOT BUILD PREFIX DEPS JOBS TORCH_DIR NVCC CAP SHARED_DIR LOGS
export -f deps
run_step deps 120 deps

configure_and_build() {
  set -e
  LIBTORCH="$TORCH_DIR" cmake -S "$ROOT/native" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGPTFAST_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES="${CAP:-90}" \
    -DCMAKE_PREFIX_PATH="$PREFIX" -DGPTFAST_SPM_PREFIX=
  ninja -C "$BUILD" -j "$JOBS" gpu_check  # native/CMakeLists.txt: the library, the bench, every test listed below
}
export -f configure_and_build
if ! run_step build 300 configure_and_build; then
  note ""; note "The build failed; nothing else can run. See build.log."
  exit 1
fi
note "- $(grep -m1 -o 'libtorch headers: .*' "$LOGS/build.log"); CUDA architectures ${CAP:-90}"

export GPTFAST_SHARED="$SHARED_DIR"
# One line per test executable: passed/failed/skipped counts, each failure with its first message,
# the skipped tests grouped by the reason GoogleTest printed (the line after "file:line: Skipped"),
# e.g. the tensor-parallel tests' "needs 2 CUDA devices, found 1" on a 1-GPU machine.
summarize_tests() {  # summarize_tests NAME (reads $LOGS/NAME.log)
  awk -v name="$1" '
    /: Failure$/ { if ((getline m) > 0 && fail_msg == "") fail_msg = m; next }
    /: Skipped$/ { if ((getline r) > 0) why = r; next }
    /^\[       OK \] [^ ]+ \([0-9]+ ms\)/ { ok++; next }
    /^\[  FAILED  \] [^ ]+ \([0-9]+ ms\)/ {
      failed++; print "    " name ": FAILED " $4 (fail_msg != "" ? ": " fail_msg : ""); fail_msg = ""; next }
    /^\[  SKIPPED \] [^ ]+ \([0-9]+ ms\)/ {
      skipped++; r = (why != "" ? why : "no reason printed"); why = ""
      if (!(r in count)) order[++n] = r
      if (count[r]++ < 6) names[r] = names[r] (names[r] == "" ? "" : ", ") $4
      next }
    /^\[==========\] [0-9]+ tests? from .* ran/ { finished = 1 }
    END {
      printf "    %s: %d passed, %d failed, %d skipped%s\n", name, ok, failed, skipped,
             finished ? "" : " (no GoogleTest summary: it did not start or did not finish; see above)"
      for (i = 1; i <= n; i++) {
        r = order[i]
        printf "    %s: %d skipped (%s): %s%s\n", name, count[r], r, names[r], (count[r] > 6 ? ", ..." : "")
      }
    }' "$LOGS/$1.log" | tee -a "$SUMMARY" >/dev/null
}
# The test executables CMake lists (native/CMakeLists.txt, target gpu_check), in its order.
mapfile -t TEST_EXES <"$BUILD/gpu_check_tests.txt"
for exe in "${TEST_EXES[@]}"; do
  [ -n "$exe" ] || continue
  t="$(basename "$exe")"; t="${t#gptfast_}"
  run_step "$t" 180 "$exe" --gtest_output="xml:$LOGS/$t.xml" </dev/null
  [ $? -ne 99 ] && summarize_tests "$t"
done

# Decode benchmarks. Shapes: GPT-Fast's ModelArgs for "7B" and "llama-3-8b" (models/transformer_configs.json).
LLAMA2_7B=(--name Llama-2-7B --dim 4096 --layers 32 --heads 32 --kv-heads 32 --ffn 11008 --vocab 32000 --rope-base 10000)
LLAMA3_8B=(--name Llama-3-8B --dim 4096 --layers 32 --heads 32 --kv-heads 8 --ffn 14336 --vocab 128256 --rope-base 500000)
BENCH="$OUT_DIR/bench.jsonl"
: >"$BENCH"
# Quantized rows print a second line ("kind":"quantized_linears"): one decode step's Linear layers
# with the engine's gemv kernels and with libtorch's _weight_int8pack_mm / _weight_int4pack_mm.
# A bench that finds no usable device (or cannot load its libraries) stops the ones after it: they
# would each fail the same way.
BENCH_BLOCKED="" BENCH_NOT_RUN=()
bench() {  # bench LOGNAME ARGS...
  local name="$1"; shift
  if [ -n "$BENCH_BLOCKED" ]; then BENCH_NOT_RUN+=("$name"); return; fi
  run_step "$name" 90 "$BUILD/gptfast_device_bench" --device cuda --new-tokens 128 --runs 3 "$@"
  local rc=$?
  # Complete JSON lines only (a row printed before a later failure still counts).
  grep -E '^\{.*\}$' "$LOGS/$name.log" >>"$BENCH"
  if [ $rc -ne 0 ] && [ $rc -ne 99 ]; then
    local why
    why="$(grep -m1 -E 'CUDA is not usable|no CUDA|error while loading shared libraries' "$LOGS/$name.log")"
    [ -n "$why" ] && BENCH_BLOCKED="${why:0:200}"
  fi
}
# Most important first, since the budget skips from the end: 7B batch 1 in each format, the same
# int8/int4 rows with libtorch's ops in the engine, batch 8, then Llama-3-8B, eager and CPU sampling.
bench_row() {  # bench_row 7b|8b bf16|int8|int4 BATCH [SUFFIX [BENCH ARGS...]]
  local shape=("${LLAMA2_7B[@]}") quant=() name="bench_${1}_${2}_b${3}${4:-}" batch="$3"
  [ "$1" = 8b ] && shape=("${LLAMA3_8B[@]}")
  [ "$2" != bf16 ] && quant=(--quantize "$2")
  shift 3; [ $# -gt 0 ] && shift
  bench "$name" "${shape[@]}" --dtype bf16 "${quant[@]}" --batch "$batch" "$@"
}
for q in bf16 int8 int4; do bench_row 7b $q 1; done
# The rows above and below decode quantized layers with the engine's gemv kernels (the default).
# (Their Linear layers were timed both ways in the rows before: --compare-aten 0.)
for q in int8 int4; do GPTFAST_CUDA_QUANT_MATMUL=aten bench_row 7b $q 1 _aten --compare-aten 0; done
for q in bf16 int8 int4; do bench_row 7b $q 8; done
for batch in 1 8; do for q in bf16 int8 int4; do bench_row 8b $q $batch; done; done
GPTFAST_CUDA_GRAPHS=0 bench bench_7b_bf16_b1_eager "${LLAMA2_7B[@]}" --dtype bf16 --batch 1
# The rows above sample on the device (only ids come back); this one sends logits to the CPU Sampler.
GPTFAST_DEVICE_SAMPLING=0 bench bench_7b_bf16_b1_cpu_sampling "${LLAMA2_7B[@]}" --dtype bf16 --batch 1
[ ${#BENCH_NOT_RUN[@]} -gt 0 ] && note "- not run, as the bench before them failed ($BENCH_BLOCKED): ${BENCH_NOT_RUN[*]}"

python3 - "$BENCH" <<'PY' | tee -a "$SUMMARY"
import json, re, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def field(describe, key):
    """The value of key= in a describe() line: up to the next ' name=' (values may hold spaces)."""
    m = re.search(r"(?:^| )" + key + r"=(.*?)(?= [a-z_]+=| \||$)", describe)
    return m.group(1) if m else "-"
decode = [r for r in rows if "kind" not in r]
linears = [r for r in rows if r.get("kind") == "quantized_linears"]
if not decode:
    print("\nNo decode benchmark row: every bench step failed or was skipped (see the lines above and bench_*.log).")
else:
    print("\n| model | weights | batch | decode tok/s | tok/s per sequence | copy GB/s | roofline steps/s | fraction | decode path | sampling | quantized matmul |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in decode:
    d = r["describe"]
    path, sampling, matmul = field(d, "decode"), field(d, "sampling"), field(d, "quant_matmul")
    print(f'| {r["name"]} | {r["quantize"] or r["dtype"]} | {r["batch_size"]} | {r["decode_tokens_per_second"]:.1f} | '
          f'{r["decode_tokens_per_second_per_sequence"]:.1f} | {r["bandwidth_bytes_per_second"]/1e9:.0f} | '
          f'{r["roofline_steps_per_second"]:.1f} | {r["roofline_fraction"]:.2f} | {path} | {sampling} | {matmul} |')
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
  run_step gpt_fast_7b_bf16 240 gpt_fast && grep -E "Average tokens/sec|Bandwidth achieved|Memory used" "$LOGS/gpt_fast_7b_bf16.log" | sed 's/^/    GPT-Fast 7B bf16 --compile: /' | tee -a "$SUMMARY" >/dev/null
else
  note "- GPT-Fast: not run (no source at \${DEPS}/gpt-fast or \$GPTFAST_PEER)"
fi

note ""
[ ${#FAILED_STEPS[@]} -gt 0 ] && note "Failed steps: ${FAILED_STEPS[*]}."
note "Total: $(elapsed) s of a ${BUDGET} s budget. Results: $OUT_DIR (summary.md, bench.jsonl, logs.tar.gz: env.txt, every step's log and the tests' XML)."
[ ${#FAILED_STEPS[@]} -eq 0 ]  # the exit status says whether every step that ran passed

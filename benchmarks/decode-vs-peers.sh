#!/usr/bin/env bash
# Decode side by side with peers on the same weights, interleaved round by round (this class of VM
# drifts by tens of percent within minutes, so only interleaved runs compare; the summary reports
# medians over rounds):
#  - gptfast4j fp32 / bf16 / int8 / int4 g32 vs llama.cpp F32 / F16 / Q8_0 / Q4_0 on random
#    stories110M-shaped weights (the llama2.c .bin that benchmarks/quantized-vs-llamacpp.sh writes
#    and converts; it also builds llama.cpp), 1 and 2 threads, with the read bandwidth and
#    roofline fraction the gptfast4j bench measures;
#  - gptfast4j vs llama2.c's `run` on stories260K, one thread.
# Peers are built in $WORK (default /tmp/gptfast-peer), never in this repository. llama2.c's source:
# $LLAMA2C_SRC (a checkout of github.com/karpathy/llama2.c), else cloned.
#   benchmarks/decode-vs-peers.sh [work dir] [rounds]
# PAIRS="--quantize int4:32:q4_0" (gptfast4j weights:gguf pairs separated by ";") and STORIES=0
# (no stories260K rows) run a subset; NEW=960 decodes 960 tokens after the 32-token prompt
# instead of 64 (attention over a long context; the model's context is 1,024).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${1:-/tmp/gptfast-peer}"
ROUNDS="${2:-3}"
NEW="${NEW:-64}"
SHARED="$ROOT/../shared/models/stories260K"
TOKENIZER="$ROOT/../shared/tokenizers/llama2-tokenizer.model"
SETUP_ONLY=1 "$ROOT/benchmarks/quantized-vs-llamacpp.sh" "$WORK"
L="$(echo "$WORK"/llama_cpp_python-*/vendor/llama.cpp/build/bin)"
if [ ! -x "$WORK/llama2c/run" ]; then
  if [ -n "${LLAMA2C_SRC:-}" ]; then cp -r "$LLAMA2C_SRC" "$WORK/llama2c"
  else git clone -q https://github.com/karpathy/llama2.c "$WORK/llama2c"; fi
  # run.c stops at the first BOS; drop that so it decodes all 255 tokens, like gptfast4j's bench
  sed -i 's/if (next == 1) { break; }//' "$WORK/llama2c/run.c"
  gcc -Ofast -march=native -o "$WORK/llama2c/run" "$WORK/llama2c/run.c" -lm   # llama2.c's `make runfast` + native
fi
IFS=';' read -r -a PAIRS <<<"${PAIRS:---dtype fp32:f32;--dtype bf16:f16;--quantize int8:q8_0;--quantize int4:32:q4_0}"
OUT="$WORK/peers.jsonl"
: > "$OUT"
gf() { (cd "$ROOT" && ./gptfast bench --json "$@" 2>>"$WORK/gptfast.err"); }
for round in $(seq "$ROUNDS"); do
  for t in 1 2; do
    for pair in "${PAIRS[@]}"; do
      weights="${pair%:*}"; gguf="${pair##*:}"
      # shellcheck disable=SC2086  # weights is two words: the option and its value
      gf --checkpoint "$WORK/model.bin" --tokenizer "$TOKENIZER" --threads $t --prompt-tokens 32 --new-tokens "$NEW" --runs 3 --warmup 1 $weights \
        | sed "s/^{/{\"engine\":\"gptfast4j\",\"round\":$round,/" >> "$OUT"
      "$L/llama-bench" -m "$WORK/$gguf.gguf" -t $t -p 32 -n "$NEW" -r 3 -o jsonl 2>>"$WORK/llama.err" \
        | sed "s/^{/{\"engine\":\"llama.cpp\",\"round\":$round,/" >> "$OUT"
    done
  done
  # stories260K, one thread: llama2.c greedy from BOS for 256 positions; gptfast4j 1 prompt token + 255 new.
  [ "${STORIES:-1}" = 0 ] && continue
  for rep in 1 2 3; do
    rate=$("$WORK/llama2c/run" "$SHARED/stories260K.bin" -z "$SHARED/tok512.bin" -t 0 -n 256 -s 1 2>&1 >/dev/null \
      | sed -n 's/achieved tok\/s: //p')
    echo "{\"engine\":\"llama2.c\",\"round\":$round,\"threads\":1,\"decode_tokens_per_second\":$rate}" >> "$OUT"
  done
  # 40 warm-up runs (~0.5 s): the Java engine as an application that has run a while sees it
  gf --checkpoint "$SHARED/model.pth" --threads 1 --prompt-tokens 1 --new-tokens 255 --runs 15 --warmup 40 \
    | sed "s/^{/{\"engine\":\"gptfast4j\",\"round\":$round,/" >> "$OUT"
done
python3 - "$OUT" <<'PY'
import json, statistics, sys, collections
dec = collections.defaultdict(list); pre = collections.defaultdict(list)
roof = collections.defaultdict(list); bw = collections.defaultdict(list)
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d["engine"] == "llama.cpp":
        kind = next(k for k in ("Q8_0", "Q4_0", "F16", "F32") if k in d["model_type"])
        key = ("llama.cpp", kind, d["n_threads"], "110M")
        (pre if d["n_gen"] == 0 else dec)[key].append(d["avg_ts"])
    elif d["engine"] == "llama2.c":
        dec[("llama2.c", "fp32", 1, "260K")].append(d["decode_tokens_per_second"])
    else:
        key = ("gptfast4j", d.get("quantize") or d["dtype"], d["threads"], "260K" if "stories260K" in d["checkpoint"] else "110M")
        dec[key].append(d["decode_tokens_per_second"]); pre[key].append(d["prefill_tokens_per_second"])
        roof[key].append(d["roofline_fraction"]); bw[key].append(d["bandwidth_bytes_per_second"])
med = lambda v: statistics.median(v) if v else float("nan")
print("engine     weights model threads | decode tok/s (median; all rounds) | prefill tok/s | of roof | read GB/s")
for key in sorted(dec):
    print("%-10s %-7s %-5s %d | %8.1f (%s) | %8.1f | %s | %s" % (key[0], key[1], key[3], key[2], med(dec[key]),
          " ".join("%.1f" % r for r in dec[key]), med(pre[key]),
          "%.0f%%" % (100 * med(roof[key])) if roof[key] else "-", "%.1f" % (med(bw[key]) / 1e9) if bw[key] else "-"))
PY

#!/usr/bin/env bash
# End-to-end overhead at stories260K scale (decode steps of ~0.05 ms, where per-token costs show):
# the share of decode time spent outside the model's forward passes, measured inside each run
# (Session::forward_nanos against the same generation's decode wall time), so the VM's drift
# between processes does not enter it. Greedy, 256 new tokens after "Once upon a time", for
#   native      the engine step alone in C++ (build/native/gptfast_decode_bench): what sampling
#               and step planning cost, no JNI, no Java;
#   java-none   the Java engine warm (`gptfast bench`, one JVM, 40 warm-up runs, medians of 15), no listener;
#   java-text   the same with a TokenListener that receives every token's text (detokenized as it
#               streams);
#   cli-stream  `gptfast generate --num-samples N` streaming to a pipe (a TokenListener
#               detokenizes and prints every token); samples after the first 40 are warm (JIT-compiled);
#   cli-cold    that command's first sample: a fresh JVM, mostly interpreted code.
# Rounds are interleaved; the summary gives medians over rounds. The issue's goal: JNI +
# sampling + detokenization under 5 %.
#   benchmarks/end-to-end-overhead.sh [rounds=3] [threads=1]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}"
T="${2:-1}"
M="$ROOT/../shared/models/stories260K"
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
common=(--checkpoint "$M/model.pth" --prompt "Once upon a time" --threads "$T")
for round in $(seq "$ROUNDS"); do
  "$ROOT/build/native/gptfast_decode_bench" "$M/stories260K.bin" "$T" 256 21 \
    | python3 -c 'import json,sys; o=json.load(sys.stdin); print("native", o["decode_tokens_per_second"], o["overhead_fraction"])' >> "$OUT"
  for l in none text; do
    (cd "$ROOT" && ./gptfast bench "${common[@]}" --new-tokens 256 --runs 15 --warmup 40 --listener "$l" --json 2>/dev/null) \
      | python3 -c 'import json,sys; o=json.loads(sys.stdin.readline()); print("java-" + o["listener"], o["decode_tokens_per_second"], o["overhead_fraction"])' >> "$OUT"
  done
  (cd "$ROOT" && ./gptfast generate "${common[@]}" --temperature 0 --max-new-tokens 256 --min-new-tokens 256 \
      --num-samples 100 2>&1 >/dev/null) \
    | sed -n 's/.*decode \([0-9.]*\) tok\/s, \([0-9.]*\) % of it outside.*/\1 \2/p' \
    | awk '{ print (NR == 1 ? "cli-cold" : NR > 40 ? "cli-stream" : "cli-warming"), $1, $2 / 100 }' >> "$OUT"
done
python3 - "$OUT" <<'PY'
import statistics, sys, collections
rate, over = collections.defaultdict(list), collections.defaultdict(list)
for line in open(sys.argv[1]):
    path, r, o = line.split()
    rate[path].append(float(r)); over[path].append(float(o))
for path in ("native", "java-none", "java-text", "cli-stream", "cli-cold"):
    print("%-10s decode %8.1f tok/s  outside the forward passes %5.1f %%  (%d measurements: %s)" % (
        path, statistics.median(rate[path]), 100 * statistics.median(over[path]), len(over[path]),
        " ".join("%.1f" % (100 * x) for x in over[path])))
PY

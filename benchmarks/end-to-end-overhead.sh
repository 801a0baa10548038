#!/usr/bin/env bash
# End-to-end overhead at stories260K scale (decode steps of ~0.1 ms, where per-token costs show):
# greedy decode tok/s (tokens after the first / decode time, 256 new tokens) of
#   native   the engine step alone, in C++ (build/native/gptfast_decode_bench: sampling included,
#            no JNI, no Java, no detokenization), median of 9 runs per process;
#   java     `gptfast generate --json`: the Java engine through JNI, no listener;
#   stream   `gptfast generate` streaming to a pipe: a TokenListener detokenizes and prints every token;
#   jmh-none / jmh-text   the same Java engine warm (JMH DecodeBenchmark in one JVM: no listener /
#            a TokenListener receiving every token's text), 256 tokens / the mean time of a whole
#            generation, prefill of the 5-token prompt included (so slightly conservative).
# java and stream start a fresh JVM per generation: mostly interpreted code, a short run's real cost.
# Interleaved round by round (the VM drifts); the summary gives medians and the overhead against
# native. The issue's goal: JNI + sampling + detokenization under 5 %.
#   benchmarks/end-to-end-overhead.sh [rounds=5] [threads=1]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-5}"
T="${2:-1}"
M="$ROOT/../shared/models/stories260K"
OUT="$(mktemp)"
args=(--checkpoint "$M/model.pth" --prompt "Once upon a time" --max-new-tokens 256 --min-new-tokens 256
      --temperature 0 --threads "$T")
for round in $(seq "$ROUNDS"); do
  "$ROOT/build/native/gptfast_decode_bench" "$M/stories260K.bin" "$T" 256 9 | sed 's/^/native /' >> "$OUT"
  (cd "$ROOT" && ./gptfast generate "${args[@]}" --json 2>/dev/null) \
    | python3 -c 'import json,sys; s=json.load(sys.stdin)["stats"]; print("java", (s["generated_tokens"]-1)*1000/s["decode_ms"])' >> "$OUT"
  (cd "$ROOT" && ./gptfast generate "${args[@]}" 2>&1 >/dev/null) \
    | sed -n 's/.*decode \([0-9.]*\) tok\/s.*/stream \1/p' >> "$OUT"
  (cd "$ROOT" && java -cp "benchmarks/target/gptfast4j-benchmarks-0.1.0-SNAPSHOT.jar:benchmarks/target/lib/*" \
    org.openjdk.jmh.Main DecodeBenchmark -p threads="$T" -p checkpoint="$M/model.pth" -wi 3 -w 1 -i 5 -r 1 -f 1 \
    -rf json -rff "$OUT.jmh" >/dev/null 2>&1)
  python3 -c 'import json,sys
for b in json.load(open(sys.argv[1])):
    print("jmh-" + b["params"]["listener"], 256 / b["primaryMetric"]["score"] * 1000)' "$OUT.jmh" >> "$OUT"
done
python3 - "$OUT" <<'PY'
import json, statistics, sys, collections
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    path, rest = line.split(" ", 1)
    v[path].append(json.loads(rest)["decode_tokens_per_second"] if path == "native" else float(rest))
base = statistics.median(v["native"])
for path in ("native", "jmh-none", "jmh-text", "java", "stream"):
    m = statistics.median(v[path])
    print("%-8s decode %8.1f tok/s  overhead %5.1f %%  (rounds: %s)" % (path, m, 100 * (base / m - 1),
          " ".join("%.0f" % x for x in v[path])))
PY
rm -f "$OUT" "$OUT.jmh"

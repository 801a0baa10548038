#!/usr/bin/env bash
# Encode throughput of the Llama 3 tokenizer: jtokkit (tokenizer.model) and Hugging Face tokenizers
# via DJL (tokenizer.json) in Java, against Python tiktoken, on the same text in the same run.
#   benchmarks/tokenizer-throughput.sh [PYTHON_WITH_TIKTOKEN] [RUNS]
# Needs the Java build (./build.sh, or mvn -o package -DskipTests) and a Python
# with tiktoken (python3 -m venv /tmp/tk && /tmp/tk/bin/pip install tiktoken).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-python3}"
RUNS="${2:-9}"
SHARED="$ROOT/../shared/tokenizers"
TEXT="$(mktemp --suffix=.txt)"
trap 'rm -f "$TEXT"' EXIT
# The text: this project's README (English prose, tables, code), repeated to about 1 MB.
while [ "$(stat -c %s "$TEXT")" -lt 1000000 ]; do cat "$ROOT/README.md" >> "$TEXT"; done
echo "text: $(stat -c %s "$TEXT") bytes (README.md repeated); median of $RUNS runs after 3 warm-ups; $(nproc) cores"
OMP_WAIT_POLICY=passive java -cp "$ROOT/benchmarks/target/gptfast4j-benchmarks-0.1.0-SNAPSHOT.jar:$ROOT/benchmarks/target/lib/*" \
  ai.gptfast4j.bench.TokenizerThroughput "$TEXT" "$RUNS" "$SHARED/llama3-tokenizer.model" "$SHARED/llama3-tokenizer.json"
"$PY" "$ROOT/benchmarks/tokenizer_throughput.py" "$TEXT" "$RUNS" "$SHARED/llama3-tokenizer.model"

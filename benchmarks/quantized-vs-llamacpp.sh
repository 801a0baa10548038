#!/usr/bin/env bash
# The README's "Quantized decode, side by side with llama.cpp" table. Builds llama.cpp from the tree
# vendored in the llama-cpp-python sdist (PyPI) in $WORK (default /tmp/gptfast-peer), never in this
# repository; writes random stories110M-shaped weights as a llama2.c .bin (read by both engines;
# llama.cpp after its own converter) and runs both benches interleaved, at 1 and 2 threads.
# Output: $WORK/results.jsonl (gptfast4j `bench --json` rows and llama-bench jsonl rows).
#   benchmarks/quantized-vs-llamacpp.sh [work dir]
# SETUP_ONLY=1: build llama.cpp and write the weights, then stop (benchmarks/decode-vs-peers.sh uses it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${1:-/tmp/gptfast-peer}"
SDIST_VERSION=0.3.36
TOKENIZER="$ROOT/../shared/tokenizers/llama2-tokenizer.model"
mkdir -p "$WORK" && cd "$WORK"
[ -x venv/bin/python ] || { python3 -m venv venv && venv/bin/pip install -q numpy sentencepiece; }
LC="$WORK/llama_cpp_python-$SDIST_VERSION/vendor/llama.cpp"
if [ ! -x "$LC/build/bin/llama-bench" ]; then
  python3 -m pip download -q --no-deps --no-binary=:all: "llama-cpp-python==$SDIST_VERSION" -d .
  tar xzf "llama_cpp_python-$SDIST_VERSION.tar.gz"
  cmake -S "$LC" -B "$LC/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF >/dev/null
  ninja -C "$LC/build" llama-bench llama-quantize llama-convert-llama2c-to-ggml >/dev/null
fi
L="$LC/build/bin"
if [ ! -f model.bin ]; then
  venv/bin/python - "$TOKENIZER" <<'PY'
import struct, sys, numpy as np, sentencepiece as spm
dim, hidden, layers, heads, kv, vocab, seq = 768, 2048, 12, 12, 12, 32000, 1024
rng = np.random.default_rng(1234)
def w(*shape): return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
with open('model.bin', 'wb') as f:  # llama2.c legacy layout, shared classifier
    f.write(struct.pack('7i', dim, hidden, layers, heads, kv, vocab, seq))
    f.write(w(vocab, dim).tobytes()); f.write(np.ones((layers, dim), np.float32).tobytes())
    for _ in range(4): f.write(w(layers, dim, dim).tobytes())           # wq wk wv wo
    f.write(np.ones((layers, dim), np.float32).tobytes())
    f.write(w(layers, hidden, dim).tobytes()); f.write(w(layers, dim, hidden).tobytes())
    f.write(w(layers, hidden, dim).tobytes()); f.write(np.ones(dim, np.float32).tobytes())
    f.write(np.zeros(seq * (dim // heads), np.float32).tobytes())       # legacy freq_cis (unused)
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])                 # llama2.c tokenizer.bin
pieces = []
for i in range(sp.get_piece_size()):
    t = '\n<s>\n' if i == sp.bos_id() else '\n</s>\n' if i == sp.eos_id() else sp.id_to_piece(i).replace('\u2581', ' ')
    pieces.append((sp.get_score(i), t.encode('utf-8')))
with open('tokenizer.bin', 'wb') as f:
    f.write(struct.pack('I', max(len(b) for _, b in pieces)))
    for s, b in pieces: f.write(struct.pack('fI', s, len(b))); f.write(b)
PY
  "$L/llama-convert-llama2c-to-ggml" --copy-vocab-from-model tokenizer.bin --llama2c-model model.bin \
    --llama2c-output-model f32.gguf >/dev/null 2>&1
  for t in F16 Q8_0 Q4_0; do "$L/llama-quantize" --pure f32.gguf "$(echo $t | tr 'A-Z' 'a-z').gguf" $t >/dev/null 2>&1; done
fi
[ "${SETUP_ONLY:-0}" = 1 ] && exit 0
gf() { (cd "$ROOT" && ./gptfast bench --checkpoint "$WORK/model.bin" --tokenizer "$TOKENIZER" --threads 1,2 \
        --prompt-tokens 32 --new-tokens 128 --runs 5 --warmup 1 --json "$@" 2>>"$WORK/gptfast.err"); }
lc() { "$L/llama-bench" -m "$1" -t 1,2 -p 32 -n 128 -r 5 -o jsonl 2>>"$WORK/llama.err"; }
{
  gf --dtype fp32;       lc f32.gguf
  gf --dtype bf16;       lc f16.gguf
  gf --quantize int8;    lc q8_0.gguf
  gf --quantize int4:32; lc q4_0.gguf
} > results.jsonl
echo "$WORK/results.jsonl"

#!/usr/bin/env bash
# The README's perplexity table: stories260K's own fp32 samples at temperature 1 (top-k off, seeds
# 1, 2, ...) until at least 20,000 generated tokens, then `gptfast perplexity` over that text for
# fp32, bf16, int8, int4 g32/g64/g128 and GPT-Fast's own model_int8.pth. Needs ../shared.
#   benchmarks/perplexity.sh [workdir]      (default: a new temporary directory)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STORIES="$ROOT/../shared/models/stories260K"
WORK="${1:-$(mktemp -d)}"
TEXT="$WORK/stories260K-samples.txt"
cd "$ROOT"
: > "$TEXT"; total=0; seed=1
while [ "$total" -lt 20000 ]; do
  json=$(./gptfast generate --checkpoint "$STORIES/model.pth" --prompt "" --temperature 1 --top-k 0 \
         --seed $seed --max-new-tokens 600 --json 2>/dev/null)
  n=$(printf '%s' "$json" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["generated_tokens"]))')
  printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["completion"].strip())' >> "$TEXT"
  total=$((total + n)); seed=$((seed + 1))
done
echo "text: $TEXT ($total generated tokens, $((seed - 1)) samples)" >&2
for q in "" "--dtype bf16" "--quantize int8" "--quantize int4:32" "--quantize int4:64" "--quantize int4:128"; do
  ./gptfast perplexity --checkpoint "$STORIES/model.pth" --text "$TEXT" $q --json 2>/dev/null
done
./gptfast perplexity --checkpoint "$STORIES/model_int8.pth" --config "$STORIES/config.json" \
  --tokenizer "$STORIES/tokenizer.model" --text "$TEXT" --json 2>/dev/null | sed 's/"quantize":""/"quantize":"GPT-Fast model_int8.pth"/'

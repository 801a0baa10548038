"""Encode throughput of Python tiktoken with the Llama 3 tokenizer.model, on one text file.

Same measurement as ai.gptfast4j.bench.TokenizerThroughput (median of RUNS encode_ordinary
calls after 3 warm-up calls); prints MB/s, tokens/s, token count and the same id checksum.
Usage: python tokenizer_throughput.py TEXT_FILE RUNS LLAMA3_TOKENIZER_MODEL
"""
import sys
import time

import tiktoken
from tiktoken.load import load_tiktoken_bpe

# Meta's Llama 3 pre-tokenizer pattern (llama_models' tokenizer.py)
PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def main():
    path, runs, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    text = open(path, encoding="utf-8").read()
    ranks = load_tiktoken_bpe(model)
    enc = tiktoken.Encoding(name="llama3", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={})
    for _ in range(3):
        ids = enc.encode_ordinary(text)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        ids = enc.encode_ordinary(text)
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    median = seconds[runs // 2]
    mb = len(text.encode("utf-8")) / 1e6
    checksum = 0
    for i in ids:
        checksum = (checksum * 31 + i) & 0xFFFFFFFFFFFFFFFF
    if checksum >= 1 << 63:
        checksum -= 1 << 64
    print(f"python tiktoken {tiktoken.__version__:<15} {'':<22} {mb / median:7.2f} MB/s {len(ids) / median:10.0f} tokens/s  "
          f"{len(ids)} tokens  checksum {checksum}")


if __name__ == "__main__":
    main()

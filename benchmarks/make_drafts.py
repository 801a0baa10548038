#!/usr/bin/env python3
"""Writes speculative-decoding drafts for the stories260K benchmarks (standard library only).

  python3 benchmarks/make_drafts.py ../shared/models/stories260K/stories260K.bin /tmp/drafts

creates, each beside a copy of the model's tokenizer.model:
  /tmp/drafts/truncated{1..4}/model.bin  the first N layers of the model (llama2.c legacy .bin)
  /tmp/drafts/random/model.bin           same shapes, weights drawn from N(0, 0.1), seed 7
"""
import os
import random
import shutil
import struct
import sys


def main(src, out_dir):
    data = open(src, "rb").read()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack("<7i", data[:28])
    if vocab < 0:
        sys.exit("unshared classifiers are not handled here")
    head_dim = dim // heads
    kv_dim = kv_heads * head_dim
    floats = memoryview(data)[28:].cast("f")
    at = 0

    def take(n):
        nonlocal at
        chunk = floats[at:at + n]
        at += n
        return chunk

    emb = take(vocab * dim)
    per_layer = {}
    for name, size in [("rms_att", dim), ("wq", dim * dim), ("wk", kv_dim * dim), ("wv", kv_dim * dim),
                       ("wo", dim * dim), ("rms_ffn", dim), ("w1", hidden * dim), ("w2", dim * hidden),
                       ("w3", hidden * dim)]:
        per_layer[name] = [take(size) for _ in range(layers)]
    rms_final = take(dim)
    rope = take(seq_len * head_dim)  # cos and sin tables

    tokenizer = os.path.join(os.path.dirname(src), "tokenizer.model")
    for keep in range(1, layers):
        d = os.path.join(out_dir, f"truncated{keep}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.bin"), "wb") as f:
            f.write(struct.pack("<7i", dim, hidden, keep, heads, kv_heads, vocab, seq_len))
            f.write(emb.tobytes())
            for name in ["rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3"]:
                for layer in per_layer[name][:keep]:
                    f.write(layer.tobytes())
            f.write(rms_final.tobytes())
            f.write(rope.tobytes())
        shutil.copyfile(tokenizer, os.path.join(d, "tokenizer.model"))
    d = os.path.join(out_dir, "random")
    os.makedirs(d, exist_ok=True)
    rnd = random.Random(7)
    with open(os.path.join(d, "model.bin"), "wb") as f:
        f.write(data[:28])
        f.write(struct.pack(f"<{len(floats)}f", *(rnd.gauss(0.0, 0.1) for _ in range(len(floats)))))
    shutil.copyfile(tokenizer, os.path.join(d, "tokenizer.model"))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

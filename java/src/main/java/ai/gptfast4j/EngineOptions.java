package ai.gptfast4j;

import java.nio.file.Path;

/**
 * What to load and how to run it.
 *
 * @param checkpoint model.pth, *.safetensors, model.safetensors.index.json, llama2.c .bin, or a
 *                   directory holding one
 * @param tokenizer tokenizer.model; null means tokenizer.model beside the checkpoint
 * @param config explicit config file; null means resolve (see {@link ConfigResolver})
 * @param dtype "fp32" or "bf16"
 * @param device "cpu" (or "cuda[:N]" with a CUDA build)
 * @param threads intra-op threads; 0 keeps libtorch's default
 * @param maxSeqLen KV cache length; 0 means the model's block_size
 * @param draftCheckpoint a smaller model sharing the tokenizer, for speculative decoding; null = none
 * @param draftConfig explicit config for the draft; null means resolve
 * @param speculateK draft tokens proposed per verify step (1..64)
 */
public record EngineOptions(Path checkpoint, Path tokenizer, Path config, String dtype, String device,
                            int threads, int maxSeqLen, Path draftCheckpoint, Path draftConfig, int speculateK) {

    public static final int DEFAULT_SPECULATE_K = 5;

    public EngineOptions {
        if (checkpoint == null) throw new GptFastException("a checkpoint path is required");
        if (dtype == null) dtype = "fp32";
        if (device == null) device = "cpu";
        if (!dtype.equals("fp32") && !dtype.equals("bf16")) {
            throw new GptFastException("unknown dtype '" + dtype + "' (expected fp32 or bf16)");
        }
        if (threads < 0) throw new GptFastException("threads must be >= 0, got " + threads);
        if (maxSeqLen < 0) throw new GptFastException("max sequence length must be >= 0, got " + maxSeqLen);
        if (speculateK < 1 || speculateK > 64) throw new GptFastException("speculate_k must be in [1, 64], got " + speculateK);
    }

    /** Without speculative decoding. */
    public EngineOptions(Path checkpoint, Path tokenizer, Path config, String dtype, String device, int threads,
                         int maxSeqLen) {
        this(checkpoint, tokenizer, config, dtype, device, threads, maxSeqLen, null, null, DEFAULT_SPECULATE_K);
    }

    public static EngineOptions of(Path checkpoint) {
        return new EngineOptions(checkpoint, null, null, "fp32", "cpu", 0, 0);
    }

    public boolean speculative() {
        return draftCheckpoint != null;
    }

    public EngineOptions withTokenizer(Path p) { return new EngineOptions(checkpoint, p, config, dtype, device, threads, maxSeqLen, draftCheckpoint, draftConfig, speculateK); }
    public EngineOptions withConfig(Path p) { return new EngineOptions(checkpoint, tokenizer, p, dtype, device, threads, maxSeqLen, draftCheckpoint, draftConfig, speculateK); }
    public EngineOptions withDtype(String d) { return new EngineOptions(checkpoint, tokenizer, config, d, device, threads, maxSeqLen, draftCheckpoint, draftConfig, speculateK); }
    public EngineOptions withThreads(int n) { return new EngineOptions(checkpoint, tokenizer, config, dtype, device, n, maxSeqLen, draftCheckpoint, draftConfig, speculateK); }
    public EngineOptions withMaxSeqLen(int n) { return new EngineOptions(checkpoint, tokenizer, config, dtype, device, threads, n, draftCheckpoint, draftConfig, speculateK); }
    /** Speculative decoding with the given draft model and k. */
    public EngineOptions withDraft(Path draft, Path draftConfigFile, int k) { return new EngineOptions(checkpoint, tokenizer, config, dtype, device, threads, maxSeqLen, draft, draftConfigFile, k); }
}

package ai.gptfast4j;

import ai.gptfast4j.natives.GptFastNative;
import ai.gptfast4j.natives.NativeLibrary;
import java.nio.file.Path;

/**
 * What to load and how to run it. Defaults are {@link Defaults}. Validated on construction by the
 * native check the engine itself runs, with messages naming the parameter.
 *
 * @param checkpoint model.pth, *.safetensors, model.safetensors.index.json, llama2.c .bin, or a
 *                   directory holding one
 * @param tokenizer a tokenizer file or directory (see {@link Tokenizers}); null means tokenizer.model,
 *                  else tokenizer.json, beside the checkpoint
 * @param config explicit config file; null means resolve (see {@link ConfigResolver})
 * @param dtype "fp32" or "bf16": the weights' and the KV cache's (CPU arithmetic stays fp32)
 * @param device "cpu", "cuda[:N]" with a CUDA build, or "auto" (CUDA where usable, else the CPU, said on stderr)
 * @param threads intra-op threads; 0 = the native measured default (engine_api.h default_threads: every core unless they read memory slower than one); at most 4 per core (checked natively)
 * @param maxSeqLen KV cache length per sequence; 0 means the model's block_size
 * @param draftCheckpoint a smaller model sharing the tokenizer, for speculative decoding; null = none
 * @param draftConfig explicit config for the draft; null means resolve
 * @param speculateK draft tokens proposed per round (1..64): the most a sequence may ask for, and
 *                   what it gets by default
 * @param batchSize sequences decoded together (KV cache slots, 1..256)
 * @param prefillChunk most prompt tokens a sequence prefills per step; 0 = the whole prompt
 * @param quantize "" (or null) keeps the checkpoint's weights; "int8", "int4" or "int4:G" quantizes
 *                 a dense checkpoint's Linear layers as it loads (GPT-Fast's formats)
 * @param draftQuantize the same for the draft model
 * @param tp tensor-parallel ranks (1 = none): the model (and draft) split over tp native threads,
 *           each with its shard of the weights and KV cache, joined by a c10d group: Gloo on CPU,
 *           NCCL on CUDA (CUDA natives only; rank i on cuda:i); {@code threads} then counts intra-op threads per rank. In [1, 64] (checked natively);
 *           whether it divides the model's heads and FFN width is checked when the model loads.
 */
public record EngineOptions(Path checkpoint, Path tokenizer, Path config, String dtype, String device,
                            int threads, int maxSeqLen, Path draftCheckpoint, Path draftConfig, int speculateK,
                            int batchSize, int prefillChunk, String quantize, String draftQuantize, int tp) {

    public EngineOptions {
        if (checkpoint == null) throw new GptFastException("a checkpoint path is required");
        if (dtype == null) dtype = Defaults.DTYPE;
        if (device == null) device = Defaults.DEVICE;
        if (quantize == null) quantize = "";
        if (draftQuantize == null) draftQuantize = "";
        NativeLibrary.load();  // one-line error if the natives are missing or mismatched
        try {
            GptFastNative.checkOptions(dtype, device, threads, maxSeqLen, batchSize, prefillChunk, speculateK, quantize,
                    tp);
            GptFastNative.checkOptions(dtype, device, threads, maxSeqLen, batchSize, prefillChunk, speculateK,
                    draftQuantize, tp);
        } catch (RuntimeException e) {
            throw withVariant(GptFastException.fromNative(e), device);
        }
    }

    /**
     * A refused CUDA device with the CPU natives loaded: the native message says what libtorch
     * lacks, the loader knows why no GPU natives were chosen; the user needs both.
     */
    private static GptFastException withVariant(GptFastException e, String device) {
        String whyNotGpu = NativeLibrary.whyNotGpu();
        if (whyNotGpu == null || !device.strip().startsWith("cuda") || !String.valueOf(e.getMessage()).startsWith("device '")) {
            return e;
        }
        return new GptFastException(e.getMessage() + "; the CPU natives were chosen: " + whyNotGpu, e);
    }

    /** Without tensor parallelism. */
    public EngineOptions(Path checkpoint, Path tokenizer, Path config, String dtype, String device, int threads,
                         int maxSeqLen, Path draftCheckpoint, Path draftConfig, int speculateK, int batchSize,
                         int prefillChunk, String quantize, String draftQuantize) {
        this(checkpoint, tokenizer, config, dtype, device, threads, maxSeqLen, draftCheckpoint, draftConfig, speculateK,
                batchSize, prefillChunk, quantize, draftQuantize, 1);
    }

    /** Weights as the checkpoint stores them. */
    public EngineOptions(Path checkpoint, Path tokenizer, Path config, String dtype, String device, int threads,
                         int maxSeqLen, Path draftCheckpoint, Path draftConfig, int speculateK, int batchSize,
                         int prefillChunk) {
        this(checkpoint, tokenizer, config, dtype, device, threads, maxSeqLen, draftCheckpoint, draftConfig, speculateK,
                batchSize, prefillChunk, "", "");
    }

    /** Without speculative decoding, one sequence at a time. */
    public EngineOptions(Path checkpoint, Path tokenizer, Path config, String dtype, String device, int threads,
                         int maxSeqLen) {
        this(checkpoint, tokenizer, config, dtype, device, threads, maxSeqLen, null, null, Defaults.SPECULATE_K,
                Defaults.BATCH_SIZE, Defaults.PREFILL_CHUNK);
    }

    public static EngineOptions of(Path checkpoint) {
        return new EngineOptions(checkpoint, null, null, Defaults.DTYPE, Defaults.DEVICE, Defaults.THREADS,
                Defaults.MAX_SEQ_LEN);
    }

    public boolean speculative() {
        return draftCheckpoint != null;
    }

    public EngineOptions withTokenizer(Path p) { return new EngineOptions(checkpoint, p, config, dtype, device, threads, maxSeqLen, draftCheckpoint, draftConfig, speculateK, batchSize, prefillChunk, quantize, draftQuantize, tp); }
    public EngineOptions withConfig(Path p) { return new EngineOptions(checkpoint, tokenizer, p, dtype, device, threads, maxSeqLen, draftCheckpoint, draftConfig, speculateK, batchSize, prefillChunk, quantize, draftQuantize, tp); }
    public EngineOptions withDtype(String d) { return new EngineOptions(checkpoint, tokenizer, config, d, device, threads, maxSeqLen, draftCheckpoint, draftConfig, speculateK, batchSize, prefillChunk, quantize, draftQuantize, tp); }
    public EngineOptions withDevice(String d) { return new EngineOptions(checkpoint, tokenizer, config, dtype, d, threads, maxSeqLen, draftCheckpoint, draftConfig, speculateK, batchSize, prefillChunk, quantize, draftQuantize, tp); }
    public EngineOptions withThreads(int n) { return new EngineOptions(checkpoint, tokenizer, config, dtype, device, n, maxSeqLen, draftCheckpoint, draftConfig, speculateK, batchSize, prefillChunk, quantize, draftQuantize, tp); }
    public EngineOptions withMaxSeqLen(int n) { return new EngineOptions(checkpoint, tokenizer, config, dtype, device, threads, n, draftCheckpoint, draftConfig, speculateK, batchSize, prefillChunk, quantize, draftQuantize, tp); }
    /** Speculative decoding with the given draft model and k. */
    public EngineOptions withDraft(Path draft, Path draftConfigFile, int k) { return new EngineOptions(checkpoint, tokenizer, config, dtype, device, threads, maxSeqLen, draft, draftConfigFile, k, batchSize, prefillChunk, quantize, draftQuantize, tp); }
    public EngineOptions withBatchSize(int n) { return new EngineOptions(checkpoint, tokenizer, config, dtype, device, threads, maxSeqLen, draftCheckpoint, draftConfig, speculateK, n, prefillChunk, quantize, draftQuantize, tp); }
    /** Quantize the target's (q) and the draft's (draftQ) Linear layers at load: "", "int8", "int4", "int4:G". */
    public EngineOptions withQuantize(String q, String draftQ) { return new EngineOptions(checkpoint, tokenizer, config, dtype, device, threads, maxSeqLen, draftCheckpoint, draftConfig, speculateK, batchSize, prefillChunk, q, draftQ, tp); }
    public EngineOptions withPrefillChunk(int n) { return new EngineOptions(checkpoint, tokenizer, config, dtype, device, threads, maxSeqLen, draftCheckpoint, draftConfig, speculateK, batchSize, n, quantize, draftQuantize, tp); }
    /** Tensor parallelism over n in-process ranks (1 = none). */
    public EngineOptions withTp(int n) { return new EngineOptions(checkpoint, tokenizer, config, dtype, device, threads, maxSeqLen, draftCheckpoint, draftConfig, speculateK, batchSize, prefillChunk, quantize, draftQuantize, n); }
}

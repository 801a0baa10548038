package ai.gptfast4j.cli;

import ai.gptfast4j.Defaults;
import ai.gptfast4j.EmbeddedModel;
import ai.gptfast4j.EngineOptions;
import java.io.PrintWriter;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Options shared by commands that load a model. */
final class ModelOptionsMixin {
    @Option(names = "--checkpoint", description = "model.pth, *.safetensors, index.json, llama2.c .bin, or a directory "
            + "(default: the embedded stories260K model)")
    Path checkpoint;

    /** True when --checkpoint was left out and the embedded model stands in for it. */
    boolean embedded;

    /** Without --checkpoint: the embedded stories260K model (extracted from the jar once). */
    void defaultCheckpoint() {
        if (checkpoint != null) return;
        checkpoint = EmbeddedModel.checkpoint();
        embedded = true;
    }

    /** Says, just before loading, that the embedded model is used. */
    void sayIfEmbedded(PrintWriter err) {
        if (!embedded) return;
        err.println("no --checkpoint: using the embedded " + EmbeddedModel.NAME + " model (a 260K-parameter "
                + "TinyStories model; see models/stories260K/README.md)");
        err.flush();
    }

    @Option(names = "--tokenizer", description = "tokenizer.model (SentencePiece or tiktoken) or tokenizer.json "
            + "(default: tokenizer.model, else tokenizer.json, beside the checkpoint)")
    Path tokenizer;

    @Option(names = "--config", description = "model config JSON (default: config.json beside the checkpoint, "
            + "GPT-Fast's name table, or the llama2.c header)")
    Path config;

    @Option(names = "--dtype", defaultValue = Defaults.DTYPE, description = "fp32 or bf16 (default: ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--device", defaultValue = Defaults.DEVICE, description = "cpu (default) or cuda[:N] with a CUDA build")
    String device;

    @Option(names = "--max-seq-len", defaultValue = "0", description = "KV cache length (default: the model's context, at most " + Defaults.MAX_SEQ_LEN_CAP + ")")
    int maxSeqLen;

    @Option(names = "--draft-checkpoint", description = "draft model for speculative decoding (same tokenizer)")
    Path draftCheckpoint;

    @Option(names = "--draft-config", description = "model config JSON of the draft (default: resolved like --config)")
    Path draftConfig;

    @Option(names = "--speculate-k", defaultValue = "" + Defaults.SPECULATE_K,
            description = "draft tokens per verify step (default: ${DEFAULT-VALUE})")
    int speculateK;

    @Option(names = "--prefill-chunk", description = "most prompt tokens a sequence prefills per step, so long prompts "
            + "interleave with other sequences' decoding; 0 = whole prompt (default: " + Defaults.PREFILL_CHUNK + ")")
    Integer prefillChunk;

    @Option(names = "--quantize", paramLabel = "int8|int4[:G]", description = "quantize the Linear layers as the model "
            + "loads, in GPT-Fast's formats (int4 group G in 32, 64, 128, 256; default 128); a checkpoint written by "
            + "`gptfast quantize` needs no flag")
    String quantize;

    @Option(names = "--draft-quantize", paramLabel = "int8|int4[:G]", description = "the same for the draft model")
    String draftQuantize;

    EngineOptions engineOptions(int threads) {
        return new EngineOptions(checkpoint, tokenizer, config, dtype, device, threads, maxSeqLen, draftCheckpoint,
                draftConfig, speculateK, Defaults.BATCH_SIZE, prefillChunk != null ? prefillChunk : Defaults.PREFILL_CHUNK,
                quantize, draftQuantize);
    }
}

package ai.gptfast4j;

import ai.gptfast4j.natives.GptFastNative;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A loaded model and tokenizer: generate text from a prompt, token by token, with streaming.
 * The transformer, KV cache, sampling and speculative accept/reject run natively; this class
 * orchestrates the loop. One generation runs at a time per engine (calls are serialised);
 * close() frees native memory.
 *
 * <pre>{@code
 * try (Engine engine = Engine.load(EngineOptions.of(Path.of("model.pth")))) {
 *     GenerationResult r = engine.generate("Once upon a time",
 *             GenerationParams.builder().greedy().maxNewTokens(100).build(),
 *             (id, text) -> System.out.print(text));
 * }
 * }</pre>
 */
public final class Engine implements AutoCloseable {
    private final GptFastNative.TransformerEngine target;
    private final GptFastNative.TransformerEngine draft;          // null without speculation
    private final GptFastNative.SpeculativeDecoder speculative;   // null without speculation
    private final int speculateK;
    private final Tokenizer tokenizer;
    private final ModelConfig config;
    private final String configSource;

    private Engine(GptFastNative.TransformerEngine target, GptFastNative.TransformerEngine draft, int speculateK,
                   Tokenizer tokenizer, ModelConfig config, String source) {
        this.target = target;
        this.draft = draft;
        this.speculateK = speculateK;
        this.speculative = draft == null ? null : nativeCall(() -> new GptFastNative.SpeculativeDecoder(target, draft, speculateK));
        this.tokenizer = tokenizer;
        this.config = config;
        this.configSource = source;
    }

    /** A checkpoint file, its format and architecture, and the tokenizer to use with it. */
    record ResolvedModel(Path file, CheckpointFormat format, ConfigResolver.Resolved config, Path tokenizerPath) {
        static ResolvedModel of(EngineOptions options) {
            Path file = CheckpointFormat.resolveFile(options.checkpoint());
            CheckpointFormat format = CheckpointFormat.detect(file);
            ConfigResolver.Resolved resolved = ConfigResolver.resolve(file, options.config());
            Path tokenizerPath = options.tokenizer() != null ? options.tokenizer()
                    : file.toAbsolutePath().getParent().resolve("tokenizer.model");
            if (!Files.isRegularFile(tokenizerPath)) {
                throw new GptFastException("tokenizer not found: " + tokenizerPath + " (pass --tokenizer)");
            }
            return new ResolvedModel(file, format, resolved, tokenizerPath);
        }

        /** The tokenizer, checked against the model's vocabulary; the caller closes it. */
        Tokenizer openTokenizer() {
            Tokenizer tokenizer = new SentencePieceTokenizer(tokenizerPath);
            try {
                checkVocab(tokenizer, config.config());
                return tokenizer;
            } catch (RuntimeException e) {
                tokenizer.close();
                throw e;
            }
        }
    }

    public static Engine load(EngineOptions options) {
        ResolvedModel model = ResolvedModel.of(options);
        Tokenizer tokenizer = model.openTokenizer();
        GptFastNative.TransformerEngine target = null, draft = null;
        try {
            target = loadNative(model.file().toString(), model.format().nativeName, model.config().config(), options,
                    options.maxSeqLen());
            if (options.speculative()) {
                draft = loadDraft(options, model.config().config(), model.tokenizerPath(), target.max_seq_len());
            }
            return new Engine(target, draft, options.speculateK(), tokenizer, model.config().config(),
                    model.config().source());
        } catch (RuntimeException e) {
            if (draft != null) draft.close();
            if (target != null) target.close();
            tokenizer.close();
            throw GptFastException.fromNative(e);
        }
    }

    /** The draft must share the target's vocabulary (and tokenizer file, where it has its own). */
    private static GptFastNative.TransformerEngine loadDraft(EngineOptions options, ModelConfig targetConfig,
                                                             Path tokenizerPath, int contextLength) {
        Path file = CheckpointFormat.resolveFile(options.draftCheckpoint());
        ModelConfig draftConfig = ConfigResolver.resolve(file, options.draftConfig()).config();
        if (draftConfig.vocabSize() != targetConfig.vocabSize()) {
            throw new GptFastException("draft model " + file + " has vocab_size " + draftConfig.vocabSize()
                    + " but the target has " + targetConfig.vocabSize() + ": speculative decoding needs a shared tokenizer");
        }
        Path draftTokenizer = file.toAbsolutePath().getParent().resolve("tokenizer.model");
        if (Files.isRegularFile(draftTokenizer) && !sameFile(draftTokenizer, tokenizerPath)) {
            throw new GptFastException("draft model's tokenizer " + draftTokenizer + " differs from the target's "
                    + tokenizerPath + ": speculative decoding needs a shared tokenizer");
        }
        return loadNative(file.toString(), CheckpointFormat.detect(file).nativeName, draftConfig, options, contextLength);
    }

    private static boolean sameFile(Path a, Path b) {
        try {
            return Files.mismatch(a, b) == -1;
        } catch (IOException e) {
            throw new GptFastException("cannot compare tokenizers " + a + " and " + b + ": " + e.getMessage(), e);
        }
    }

    /**
     * An engine over seeded random weights of the given architecture (for benchmarks of shapes
     * whose checkpoints are not at hand), with the given tokenizer. draftLayers > 0 adds a
     * speculative draft: the same random model truncated to its first draftLayers layers.
     */
    public static Engine random(ModelConfig config, long seed, Tokenizer tokenizer, EngineOptions options,
                                int draftLayers) {
        checkVocab(tokenizer, config);
        GptFastNative.TransformerEngine target = loadNative(Long.toString(seed), "random", config, options,
                options.maxSeqLen());
        GptFastNative.TransformerEngine draft = null;
        try {
            if (draftLayers > 0) {
                ModelConfig truncated = new ModelConfig(config.dim(), draftLayers, config.nHead(), config.nLocalHeads(),
                        config.headDim(), config.intermediateSize(), config.vocabSize(), config.blockSize(),
                        config.ropeBase(), config.normEps(), config.ropeScalingFactor(), config.ropeLowFreqFactor(),
                        config.ropeHighFreqFactor(), config.ropeOriginalMaxPosition());
                draft = loadNative(Long.toString(seed), "random", truncated, options, target.max_seq_len());
            }
            return new Engine(target, draft, options.speculateK(), tokenizer, config, "random weights, seed " + seed);
        } catch (RuntimeException e) {
            if (draft != null) draft.close();
            target.close();
            throw GptFastException.fromNative(e);
        }
    }

    public static Engine random(ModelConfig config, long seed, Tokenizer tokenizer, EngineOptions options) {
        return random(config, seed, tokenizer, options, 0);
    }

    private static GptFastNative.TransformerEngine loadNative(String path, String format, ModelConfig config,
                                                              EngineOptions o, int maxSeqLen) {
        try (GptFastNative.ModelSpec spec = config.toNative()) {
            return new GptFastNative.TransformerEngine(path, format, spec, o.dtype(), o.device(), o.threads(), maxSeqLen);
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
    }

    static void checkVocab(Tokenizer tokenizer, ModelConfig config) {
        if (tokenizer.vocabSize() > config.vocabSize()) {
            throw new GptFastException("tokenizer has " + tokenizer.vocabSize() + " pieces but the model's vocab_size is "
                    + config.vocabSize() + " (wrong tokenizer for this checkpoint?)");
        }
    }

    public GenerationResult generate(String prompt, GenerationParams params, TokenListener listener) {
        return generate(prompt, params, listener, new CancellationToken());
    }

    /** Encodes the prompt with BOS first, then generates; see {@link #generate(int[], GenerationParams, TokenListener, CancellationToken)}. */
    public GenerationResult generate(String prompt, GenerationParams params, TokenListener listener,
                                     CancellationToken cancel) {
        if (prompt == null) throw new GptFastException("prompt is null");
        return generate(promptTokens(prompt), params, listener, cancel);
    }

    /** BOS followed by the SentencePiece encoding of text. */
    public int[] promptTokens(String text) {
        return promptTokens(tokenizer, text);
    }

    static int[] promptTokens(Tokenizer tokenizer, String text) {
        int[] body = tokenizer.encode(text);
        int[] ids = new int[body.length + 1];
        ids[0] = tokenizer.bosId();
        System.arraycopy(body, 0, ids, 1, body.length);
        return ids;
    }

    /**
     * Prefills the prompt ids, then decodes (speculatively when a draft model is loaded) until a
     * stop token, a stop sequence, max_new_tokens, a full context or cancellation. Each token is
     * passed to the listener (if not null) as soon as it is accepted; with a null listener and no
     * stop sequences no text is decoded until the end.
     */
    public synchronized GenerationResult generate(int[] promptIds, GenerationParams params, TokenListener listener,
                                                  CancellationToken cancel) {
        ensureOpen();
        if (speculative != null && params.usesPenalties()) {
            throw new GptFastException("repetition/presence/frequency penalties are not supported with speculative decoding");
        }
        GenerationRun run = new GenerationRun(tokenizer, promptIds, params, listener, cancel, target.max_seq_len(),
                ids -> target.suppress_tokens(ids, ids.length));
        long rounds0 = 0, proposed0 = 0, accepted0 = 0;
        try (GptFastNative.SamplingSpec sampling = samplingSpec(params)) {
            target.set_sampling(sampling);
            run.updateSuppression();
            if (speculative == null) {
                int next = target.prefill(promptIds, promptIds.length);
                while (!run.accept(next)) {
                    run.updateSuppression();
                    next = target.decode(next);
                }
            } else {
                rounds0 = speculative.rounds();
                proposed0 = speculative.proposed();
                accepted0 = speculative.accepted();
                int next = speculative.prefill(promptIds, promptIds.length);
                int[] round = new int[speculateK + 1];
                boolean done = run.accept(next);
                while (!done) {
                    run.updateSuppression();
                    int n = speculative.step(next, round, round.length);
                    for (int i = 0; i < n && !done; i++) done = run.accept(next = round[i]);
                }
            }
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
        return speculative == null ? run.result(0, 0, 0)
                : run.result(speculative.rounds() - rounds0, speculative.proposed() - proposed0,
                        speculative.accepted() - accepted0);
    }

    static GptFastNative.SamplingSpec samplingSpec(GenerationParams p) {
        return new GptFastNative.SamplingSpec().temperature(p.temperature()).top_k(p.topK()).top_p(p.topP())
                .repetition_penalty(p.repetitionPenalty()).presence_penalty(p.presencePenalty())
                .frequency_penalty(p.frequencyPenalty()).seed(p.seed());
    }

    /** fp32 logits of every prompt position, [n][vocab]; resets the KV cache. */
    public synchronized float[][] promptLogits(int[] promptIds) {
        ensureOpen();
        int vocab = config.vocabSize();
        float[] flat = new float[promptIds.length * vocab];
        nativeCall(() -> {
            target.prompt_logits(promptIds, promptIds.length, flat);
            return null;
        });
        float[][] rows = new float[promptIds.length][];
        for (int i = 0; i < rows.length; i++) rows[i] = Arrays.copyOfRange(flat, i * vocab, (i + 1) * vocab);
        return rows;
    }

    private static <T> T nativeCall(java.util.function.Supplier<T> call) {
        try {
            return call.get();
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
    }

    public Tokenizer tokenizer() { return tokenizer; }
    public ModelConfig config() { return config; }
    public String configSource() { return configSource; }
    public int contextLength() { return target.max_seq_len(); }
    public boolean isSpeculative() { return speculative != null; }
    public int speculateK() { return speculateK; }

    /** One line: architecture, cache, dtype, device, threads (and the draft, if any). */
    public String describe() {
        ensureOpen();
        return target.describe() + (draft == null ? "" : " | draft: " + draft.describe() + " k=" + speculateK);
    }

    private void ensureOpen() {
        if (target.isNull()) throw new GptFastException("engine is closed");
    }

    @Override
    public synchronized void close() {
        if (speculative != null) speculative.close();
        if (draft != null) draft.close();
        target.close();
        tokenizer.close();
    }
}

package ai.gptfast4j;

import ai.gptfast4j.natives.GptFastNative;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A loaded model and tokenizer: generate text from a prompt, token by token, with streaming.
 * The transformer, KV cache and sampling run natively; this class orchestrates the loop.
 * One generation runs at a time per engine (calls are serialised); close() frees native memory.
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
    private final GptFastNative.TransformerEngine nativeEngine;
    private final Tokenizer tokenizer;
    private final ModelConfig config;
    private final String configSource;

    private Engine(GptFastNative.TransformerEngine nativeEngine, Tokenizer tokenizer, ModelConfig config, String source) {
        this.nativeEngine = nativeEngine;
        this.tokenizer = tokenizer;
        this.config = config;
        this.configSource = source;
    }

    public static Engine load(EngineOptions options) {
        Path file = CheckpointFormat.resolveFile(options.checkpoint());
        CheckpointFormat format = CheckpointFormat.detect(file);
        ConfigResolver.Resolved resolved = ConfigResolver.resolve(file, options.config());
        Path tokenizerPath = options.tokenizer() != null ? options.tokenizer()
                : file.toAbsolutePath().getParent().resolve("tokenizer.model");
        if (!Files.isRegularFile(tokenizerPath)) {
            throw new GptFastException("tokenizer not found: " + tokenizerPath + " (pass --tokenizer)");
        }
        Tokenizer tokenizer = new SentencePieceTokenizer(tokenizerPath);
        try {
            checkVocab(tokenizer, resolved.config());
            return new Engine(loadNative(file.toString(), format.nativeName, resolved.config(), options),
                    tokenizer, resolved.config(), resolved.source());
        } catch (RuntimeException e) {
            tokenizer.close();
            throw GptFastException.fromNative(e);
        }
    }

    /**
     * An engine over seeded random weights of the given architecture (for benchmarks of shapes
     * whose checkpoints are not at hand), with the given tokenizer.
     */
    public static Engine random(ModelConfig config, long seed, Tokenizer tokenizer, EngineOptions options) {
        checkVocab(tokenizer, config);
        return new Engine(loadNative(Long.toString(seed), "random", config, options), tokenizer, config,
                "random weights, seed " + seed);
    }

    private static GptFastNative.TransformerEngine loadNative(String path, String format, ModelConfig config,
                                                              EngineOptions o) {
        try (GptFastNative.ModelSpec spec = config.toNative()) {
            return new GptFastNative.TransformerEngine(path, format, spec, o.dtype(), o.device(), o.threads(),
                    o.maxSeqLen());
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
    }

    private static void checkVocab(Tokenizer tokenizer, ModelConfig config) {
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
        int[] body = tokenizer.encode(text);
        int[] ids = new int[body.length + 1];
        ids[0] = tokenizer.bosId();
        System.arraycopy(body, 0, ids, 1, body.length);
        return ids;
    }

    /**
     * Prefills the prompt ids, then decodes until a stop token, max_new_tokens, a full context or
     * cancellation. Each token is passed to the listener (if not null) as soon as it is sampled;
     * with a null listener no text is decoded until the end.
     */
    public synchronized GenerationResult generate(int[] promptIds, GenerationParams params, TokenListener listener,
                                                  CancellationToken cancel) {
        ensureOpen();
        if (promptIds == null || promptIds.length == 0) throw new GptFastException("prompt is empty: at least BOS is needed");
        int contextLength = nativeEngine.max_seq_len();
        if (promptIds.length > contextLength) {
            throw new GptFastException("prompt has " + promptIds.length + " tokens, more than the context length "
                    + contextLength);
        }
        StreamingDetokenizer text = new StreamingDetokenizer(tokenizer, Arrays.copyOfRange(promptIds, 1, promptIds.length));
        int[] generated = new int[Math.min(params.maxNewTokens(), contextLength - promptIds.length + 1)];
        int count = 0;
        GenerationResult.StopReason reason = GenerationResult.StopReason.MAX_NEW_TOKENS;
        long start = System.nanoTime();
        long firstToken;
        try {
            nativeEngine.set_sampling(params.temperature(), params.topK(), params.seed());
            int next = nativeEngine.prefill(promptIds, promptIds.length);
            firstToken = System.nanoTime();
            while (true) {
                generated[count++] = next;
                boolean stop = params.isStopToken(next, tokenizer.eosId(), tokenizer.bosId());
                if (!stop) text.append(next);
                if (listener != null) listener.onToken(next, stop ? "" : text.newText());
                if (stop) { reason = GenerationResult.StopReason.STOP_TOKEN; break; }
                if (count == params.maxNewTokens()) { reason = GenerationResult.StopReason.MAX_NEW_TOKENS; break; }
                if (cancel.isCancelled()) { reason = GenerationResult.StopReason.CANCELLED; break; }
                if (count == generated.length) { reason = GenerationResult.StopReason.CONTEXT_FULL; break; }
                next = nativeEngine.decode(next);
            }
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
        long end = System.nanoTime();
        GenerationStats stats = new GenerationStats(promptIds.length, count, (firstToken - start) / 1e6,
                (end - firstToken) / 1e6);
        int[] tokens = Arrays.copyOf(generated, count);
        // the stop token was never added to the detokenizer, so it is not part of the text
        return new GenerationResult(promptIds.clone(), tokens, text.completion(), reason, stats);
    }

    /** fp32 logits of every prompt position, [n][vocab]; resets the KV cache. */
    public synchronized float[][] promptLogits(int[] promptIds) {
        ensureOpen();
        int vocab = config.vocabSize();
        float[] flat = new float[promptIds.length * vocab];
        try {
            nativeEngine.prompt_logits(promptIds, promptIds.length, flat);
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
        float[][] rows = new float[promptIds.length][];
        for (int i = 0; i < rows.length; i++) rows[i] = Arrays.copyOfRange(flat, i * vocab, (i + 1) * vocab);
        return rows;
    }

    public Tokenizer tokenizer() { return tokenizer; }
    public ModelConfig config() { return config; }
    public String configSource() { return configSource; }
    public int contextLength() { return nativeEngine.max_seq_len(); }

    /** One line: architecture, cache, dtype, device, threads. */
    public String describe() {
        ensureOpen();
        return nativeEngine.describe();
    }

    private void ensureOpen() {
        if (nativeEngine.isNull()) throw new GptFastException("engine is closed");
    }

    @Override
    public synchronized void close() {
        nativeEngine.close();
        tokenizer.close();
    }
}

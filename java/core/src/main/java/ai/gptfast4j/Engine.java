package ai.gptfast4j;

import ai.gptfast4j.natives.GptFastNative;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A loaded model and tokenizer: generates text from prompts, token by token, with streaming.
 * One engine decodes up to {@link EngineOptions#batchSize()} sequences together (one KV cache
 * slot each; 1 is plain single-sequence generation), and each sequence may decode speculatively
 * with the draft model (if one is loaded) or plainly. The transformer, KV cache, sampling and
 * speculative accept/reject run natively in one session; this class orchestrates sequences and
 * streams their text.
 *
 * <p>Two ways to drive it: {@link #generate} runs one sequence to its end (advancing any other
 * active sequence too); {@link #start} / {@link #step} let one thread run a continuous batch,
 * where sequences join and leave between steps. Calls are serialised on the engine; listeners
 * run on the calling thread. close() frees native memory.
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
    private final GptFastNative.Session session;
    private final Tokenizer tokenizer;
    private final ModelConfig config;
    private final String configSource;
    private final int[] defaultStops;
    private final ChatTemplate chatTemplate;
    private final String cacheNote;
    private final int speculateK;  // a sequence's default k; 0 without a draft
    private final Sequence[] slots;
    private final int stride;
    private final int[] laneSlots, laneOut, laneCounts;
    private final List<Sequence> lanes = new ArrayList<>();

    private Engine(GptFastNative.Session session, int speculateK, Tokenizer tokenizer, ModelConfig config,
                   String source, int[] modelEosIds, ChatTemplate chatTemplate, String cacheNote) {
        this.session = session;
        this.chatTemplate = chatTemplate;
        this.cacheNote = cacheNote;
        this.defaultStops = defaultStops(tokenizer, modelEosIds, config);
        this.speculateK = speculateK;
        this.tokenizer = tokenizer;
        this.config = config;
        this.configSource = source;
        int n = session.slots();
        this.slots = new Sequence[n];
        this.stride = session.max_tokens_per_step();
        this.laneSlots = new int[n];
        this.laneOut = new int[n * stride];
        this.laneCounts = new int[n];
    }

    /** A checkpoint file, its format and architecture, and the tokenizer to use with it. */
    record ResolvedModel(Path file, CheckpointFormat format, ConfigResolver.Resolved config, Path tokenizerPath) {
        static ResolvedModel of(EngineOptions options) {
            Path file = CheckpointFormat.resolveFile(options.checkpoint());
            CheckpointFormat format = CheckpointFormat.detect(file);
            ConfigResolver.Resolved resolved = ConfigResolver.resolve(file, options.config());
            Path tokenizerPath;
            if (options.tokenizer() != null) {
                tokenizerPath = Tokenizers.resolve(options.tokenizer());
            } else {
                try {
                    tokenizerPath = Tokenizers.resolve(file.toAbsolutePath().getParent());
                } catch (GptFastException e) {
                    throw new GptFastException(e.getMessage() + " (pass --tokenizer)");
                }
            }
            return new ResolvedModel(file, format, resolved, tokenizerPath);
        }

        /** The tokenizer, checked against the model's vocabulary; the caller closes it. */
        Tokenizer openTokenizer() {
            Tokenizer tokenizer = Tokenizers.open(tokenizerPath);
            try {
                checkVocab(tokenizer, config.config());
                return tokenizer;
            } catch (RuntimeException e) {
                tokenizer.close();
                throw e;
            }
        }
    }

    /** Told how much of the checkpoint has been read while a model loads (on a helper thread, ~10 times a second). */
    @FunctionalInterface
    public interface LoadListener {
        void onProgress(long bytesRead, long bytesTotal);
    }

    public static Engine load(EngineOptions options) {
        return load(options, null);
    }

    /** Loads as {@link #load(EngineOptions)}, telling the listener (if not null) how far it has got. */
    public static Engine load(EngineOptions options, LoadListener listener) {
        try (LoadWatch watch = LoadWatch.start(listener)) {
            return loadWatched(options);
        }
    }

    private static Engine loadWatched(EngineOptions options) {
        ResolvedModel model = ResolvedModel.of(options);
        CacheLength cache = CacheLength.of(options.maxSeqLen(), model.config().config().blockSize(),
                model.config().slidingWindow());
        Tokenizer tokenizer = model.openTokenizer();
        GptFastNative.Session session = null;
        try {
            Path dir = model.file().toAbsolutePath().getParent();
            ChatTemplate template = ChatTemplate.forModel(dir, tokenizer);
            int[] eosIds = ModelFiles.eosTokenIds(dir);
            session = openSession(model.file().toString(), model.format().nativeName, model.config().config(),
                    options.withMaxSeqLen(cache.length()));
            if (options.speculative()) loadDraft(session, options, model.config().config(), model.tokenizerPath());
            return new Engine(session, options.speculative() ? options.speculateK() : 0, tokenizer,
                    model.config().config(), model.config().source(), eosIds, template, cache.note());
        } catch (RuntimeException e) {
            if (session != null) session.close();
            tokenizer.close();
            throw GptFastException.fromNative(e);
        }
    }

    /** The draft must share the target's vocabulary (and tokenizer file, where it has its own). */
    private static void loadDraft(GptFastNative.Session session, EngineOptions options, ModelConfig targetConfig,
                                  Path tokenizerPath) {
        Path file = CheckpointFormat.resolveFile(options.draftCheckpoint());
        ModelConfig draftConfig = ConfigResolver.resolve(file, options.draftConfig()).config();
        Path draftTokenizer = null;
        for (String name : Tokenizers.DEFAULT_NAMES) {
            Path p = file.toAbsolutePath().getParent().resolve(name);
            if (draftTokenizer == null && Files.isRegularFile(p)) draftTokenizer = p;
        }
        if (draftTokenizer != null && !sameFile(draftTokenizer, tokenizerPath)) {
            throw new GptFastException("draft model's tokenizer " + draftTokenizer + " differs from the target's "
                    + tokenizerPath + ": speculative decoding needs a shared tokenizer");
        }
        try (GptFastNative.ModelSpec spec = draftConfig.toNative()) {
            session.load_draft(file.toString(), CheckpointFormat.detect(file).nativeName, spec, options.speculateK(),
                    options.draftQuantize());
        }
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
        return random(config, seed, tokenizer, options, draftLayers, null);
    }

    /**
     * As {@link #random(ModelConfig, long, Tokenizer, EngineOptions, int)}, telling the listener (if not null)
     * how many bytes of weights have been drawn (a 7B model takes about a minute on one CPU core).
     */
    public static Engine random(ModelConfig config, long seed, Tokenizer tokenizer, EngineOptions options,
                                int draftLayers, LoadListener listener) {
        try (LoadWatch watch = LoadWatch.start(listener)) {
            return randomWatched(config, seed, tokenizer, options, draftLayers);
        }
    }

    private static Engine randomWatched(ModelConfig config, long seed, Tokenizer tokenizer, EngineOptions options,
                                        int draftLayers) {
        checkVocab(tokenizer, config);
        CacheLength cache = CacheLength.of(options.maxSeqLen(), config.blockSize(), 0);
        ChatTemplate template = ChatTemplate.forModel(null, tokenizer);
        GptFastNative.Session session = openSession(Long.toString(seed), "random", config,
                options.withMaxSeqLen(cache.length()));
        try {
            if (draftLayers > 0) {
                ModelConfig truncated = new ModelConfig(config.dim(), draftLayers, config.nHead(), config.nLocalHeads(),
                        config.headDim(), config.intermediateSize(), config.vocabSize(), config.blockSize(),
                        config.ropeBase(), config.normEps(), config.ropeScalingFactor(), config.ropeLowFreqFactor(),
                        config.ropeHighFreqFactor(), config.ropeOriginalMaxPosition());
                try (GptFastNative.ModelSpec spec = truncated.toNative()) {
                    session.load_draft(Long.toString(seed), "random", spec, options.speculateK(),
                            options.draftQuantize());
                }
            }
            return new Engine(session, draftLayers > 0 ? options.speculateK() : 0, tokenizer, config,
                    "random weights, seed " + seed, new int[0], template, cache.note());
        } catch (RuntimeException e) {
            session.close();
            throw GptFastException.fromNative(e);
        }
    }

    public static Engine random(ModelConfig config, long seed, Tokenizer tokenizer, EngineOptions options) {
        return random(config, seed, tokenizer, options, 0);
    }

    private static GptFastNative.Session openSession(String path, String format, ModelConfig config, EngineOptions o) {
        try (GptFastNative.ModelSpec spec = config.toNative()) {
            return new GptFastNative.Session(path, format, spec, o.dtype(), o.device(), o.threads(), o.maxSeqLen(),
                    o.batchSize(), o.prefillChunk(), o.quantize(), o.tp());
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
    }

    /**
     * The KV cache length per sequence: what was asked for, else the model's block_size up to
     * {@link Defaults#MAX_SEQ_LEN_CAP} (note says so). A model with a sliding attention window
     * (Mistral) runs only within it: the default stays inside, asking for more is refused.
     */
    record CacheLength(int length, String note) {
        static CacheLength of(int requested, int blockSize, int slidingWindow) {
            if (slidingWindow > 0 && slidingWindow < blockSize) {
                if (requested > slidingWindow) {
                    throw new GptFastException("max_seq_len " + requested + " exceeds the model's sliding attention window of "
                            + slidingWindow + " tokens; contexts beyond the window are not supported (use at most "
                            + slidingWindow + ")");
                }
                if (requested == 0) {
                    int len = Math.min(slidingWindow, Defaults.MAX_SEQ_LEN_CAP);
                    return new CacheLength(len, "KV cache of " + len + " tokens: the model attends within a sliding window of "
                            + slidingWindow + " (of its " + blockSize + " positions), longer contexts are not supported");
                }
            }
            if (requested == 0 && blockSize > Defaults.MAX_SEQ_LEN_CAP) {
                return new CacheLength(Defaults.MAX_SEQ_LEN_CAP, "KV cache of " + Defaults.MAX_SEQ_LEN_CAP
                        + " tokens per sequence (the model allows " + blockSize + "; --max-seq-len N for more)");
            }
            return new CacheLength(requested, null);
        }
    }

    /** The model's eos ids, the tokenizer's stop tokens and BOS, without duplicates or ids past the vocabulary. */
    private static int[] defaultStops(Tokenizer tokenizer, int[] modelEosIds, ModelConfig config) {
        java.util.LinkedHashSet<Integer> ids = new java.util.LinkedHashSet<>();
        for (int id : modelEosIds) ids.add(id);
        for (int id : tokenizer.stopTokens()) ids.add(id);
        ids.add(tokenizer.bosId());
        return ids.stream().mapToInt(Integer::intValue).filter(id -> id >= 0 && id < config.vocabSize()).toArray();
    }

    static void checkVocab(Tokenizer tokenizer, ModelConfig config) {
        if (tokenizer.vocabSize() > config.vocabSize()) {
            throw new GptFastException("tokenizer has " + tokenizer.vocabSize() + " pieces but the model's vocab_size is "
                    + config.vocabSize() + " (wrong tokenizer for this checkpoint?)");
        }
    }

    /** One sequence: its slot while it runs, its result once finished. */
    public static final class Sequence {
        private final int slot;
        private final GenerationRun run;
        private final CancellationToken cancel;
        private GenerationResult result;

        private Sequence(int slot, GenerationRun run, CancellationToken cancel) {
            this.slot = slot;
            this.run = run;
            this.cancel = cancel;
        }

        public boolean finished() { return result != null; }

        /** The result once finished, else null. */
        public GenerationResult result() { return result; }
    }

    public GenerationResult generate(String prompt, GenerationParams params, TokenListener listener) {
        return generate(prompt, params, listener, new CancellationToken());
    }

    /** Encodes the prompt with BOS first, then generates; see {@link #generate(int[], GenerationParams, TokenListener, CancellationToken)}. */
    public GenerationResult generate(String prompt, GenerationParams params, TokenListener listener,
                                     CancellationToken cancel) {
        return generate(promptTokens(prompt), params, listener, cancel);
    }

    /**
     * Runs one sequence to its end: a stop token, a stop sequence, max_new_tokens, a full context or
     * cancellation. Each token is passed to the listener (if not null) as soon as it is accepted;
     * with a null listener and no stop sequences no text is decoded until the end.
     */
    public synchronized GenerationResult generate(int[] promptIds, GenerationParams params, TokenListener listener,
                                                  CancellationToken cancel) {
        Sequence s = start(promptIds, params, listener, cancel);
        try {
            while (!s.finished()) step();
        } catch (RuntimeException e) {
            abort(s);  // free the slot: a failed step must not leave the engine full
            throw e;
        }
        return s.result();
    }

    /** BOS followed by the tokenizer's encoding of text (special-token strings as plain text). */
    public int[] promptTokens(String text) {
        return promptTokens(text, false);
    }

    /** BOS followed by the encoding of text; allowSpecial: special-token strings become their ids. */
    public int[] promptTokens(String text, boolean allowSpecial) {
        if (text == null) throw new GptFastException("prompt is null");
        return promptTokens(tokenizer, text, allowSpecial);
    }

    /** BOS followed by the encoding of text (see {@link Tokenizer#encode(String, boolean)}). */
    public static int[] promptTokens(Tokenizer tokenizer, String text, boolean allowSpecial) {
        int[] body = tokenizer.encode(text, allowSpecial);
        int[] ids = new int[body.length + 1];
        ids[0] = tokenizer.bosId();
        System.arraycopy(body, 0, ids, 1, body.length);
        return ids;
    }

    public Sequence start(String prompt, GenerationParams params, TokenListener listener, CancellationToken cancel) {
        return start(promptTokens(prompt), params, listener, cancel);
    }

    /**
     * Puts a new sequence in a free slot; the following steps prefill its prompt (in chunks) and
     * then decode it.
     *
     * @throws GptFastException when no slot is free or the input is bad
     */
    public synchronized Sequence start(int[] promptIds, GenerationParams params, TokenListener listener,
                                       CancellationToken cancel) {
        ensureOpen();
        if (promptIds == null) throw new GptFastException("prompt is null");
        checkParams(params);
        if (promptIds.length > session.max_seq_len()) {
            throw new GptFastException("prompt has " + promptIds.length + " tokens, more than the context length "
                    + session.max_seq_len() + (session.max_seq_len() < config.blockSize()
                    ? " (the model allows " + config.blockSize() + ": raise --max-seq-len)" : ""));
        }
        int slot = params.cachePrompt() ? slotCaching(promptIds) : freeSlot();
        if (slot < 0) throw new GptFastException("all " + slots.length + " batch slots are busy");
        int k = params.speculateK() != null ? params.speculateK()
                : params.usesPenalties() ? 0 : speculateK;  // penalties need plain decoding
        int cached;
        try (GptFastNative.SamplingSpec sampling = params.toNative()) {
            session.start(slot, sampling, k, promptIds, promptIds.length, params.cachePrompt());
            cached = session.slotPosition(slot);
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
        GenerationRun run = new GenerationRun(tokenizer, promptIds, params, listener, cancel, session.max_seq_len(),
                defaultStops,
                ids -> session.suppress_tokens(slot, ids, ids.length), session::forward_nanos, cached);
        Sequence s = new Sequence(slot, run, cancel);
        slots[slot] = s;
        return s;
    }

    /**
     * Advances every active sequence by one step (a prompt chunk, a token, or a speculative round
     * of several tokens); returns those that finished with it.
     */
    public synchronized List<Sequence> step() {
        ensureOpen();
        List<Sequence> done = new ArrayList<>();
        lanes.clear();
        for (Sequence s : slots) {
            if (s == null) continue;
            if (s.cancel.isCancelled()) {  // also while a long prompt is still being prefilled
                s.run.stop(GenerationResult.StopReason.CANCELLED);
                finish(s);
                done.add(s);
                continue;
            }
            s.run.updateSuppression();
            laneSlots[lanes.size()] = s.slot;
            lanes.add(s);
        }
        if (lanes.isEmpty()) return done;
        try {
            session.step(laneSlots, lanes.size(), laneOut, stride, laneCounts);
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
        for (int i = 0; i < lanes.size(); i++) {
            Sequence s = lanes.get(i);
            boolean end = false;
            for (int j = 0; j < laneCounts[i] && !end; j++) end = s.run.accept(laneOut[i * stride + j]);
            if (end) {
                finish(s);
                done.add(s);
            }
        }
        return done;
    }

    /** Ends a sequence now (e.g. its client went away) and frees its slot. */
    public synchronized void abort(Sequence s) {
        if (s.finished()) return;
        s.run.stop(GenerationResult.StopReason.CANCELLED);
        finish(s);
    }

    private void finish(Sequence s) {
        s.result = s.run.result(session.rounds(s.slot), session.proposed(s.slot), session.accepted(s.slot));
        slots[s.slot] = null;
        session.release(s.slot);
    }

    private int freeSlot() {
        for (int i = 0; i < slots.length; i++) if (slots[i] == null) return i;
        return -1;
    }

    /** The free slot whose cache holds the longest start of the prompt (the first free one if none does). */
    private int slotCaching(int[] promptIds) {
        int best = -1, bestKept = -1;
        for (int i = 0; i < slots.length; i++) {
            if (slots[i] != null) continue;
            int kept = session.cached_prefix(i, promptIds, promptIds.length);
            if (kept > bestKept) {
                best = i;
                bestKept = kept;
            }
        }
        return best;
    }

    /** fp32 logits of every prompt position, [n][vocab] (needs a free slot). */
    public synchronized float[][] promptLogits(int[] promptIds) {
        ensureOpen();
        int vocab = config.vocabSize();
        float[] flat = new float[promptIds.length * vocab];
        try {
            session.prompt_logits(promptIds, promptIds.length, flat);
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
        float[][] rows = new float[promptIds.length][];
        for (int i = 0; i < rows.length; i++) rows[i] = Arrays.copyOfRange(flat, i * vocab, (i + 1) * vocab);
        return rows;
    }

    public Tokenizer tokenizer() { return tokenizer; }
    /**
     * Throws if the parameters do not fit this model: a stop token outside the vocabulary (-1, which
     * never matches, means "never stop early"). Ranges that do not depend on the model are checked
     * when the parameters are built.
     */
    public void checkParams(GenerationParams params) {
        if (params.stopTokens() == null) return;
        for (int t : params.stopTokens()) {
            if (t != -1 && (t < 0 || t >= config.vocabSize())) {
                throw new GptFastException("stop token " + t + " is outside the vocabulary [0, " + config.vocabSize()
                        + ") (-1 = never stop early)");
            }
        }
    }

    /** The model's chat template (see {@link ChatTemplate#forModel}). */
    public ChatTemplate chatTemplate() { return chatTemplate; }
    /** Prompt ids for a conversation through the model's chat template. */
    public int[] chatPromptTokens(List<ChatTemplate.Message> messages) { return chatTemplate.promptTokens(tokenizer, messages); }
    /** Why the KV cache is shorter than the model's context (a default cap), or null. */
    public String cacheNote() { return cacheNote; }
    /** Ids that end a generation whose params name none: model eos ids, tokenizer EOS / end of turn, BOS. */
    public int[] defaultStopTokens() { return defaultStops.clone(); }
    public ModelConfig config() { return config; }
    public String configSource() { return configSource; }
    public int contextLength() { return open().max_seq_len(); }

    /** Bytes of Linear-layer weights (and quantization scales) one decode step reads: the memory roofline's numerator. */
    public long weightBytes() { return open().weight_bytes(); }
    public boolean isSpeculative() { return speculateK > 0; }
    /** Where the model runs (rank 0 under TP), {@code auto} resolved: "cpu", "cuda" or "cuda:N". */
    public String device() { return open().device(); }
    /** Tensor-parallel ranks (1 = none). */
    public int tensorParallel() { return open().tensor_parallel(); }
    /** All-reduces the target model has run so far (0 without TP), as rank 0 counted them. */
    public synchronized long allReduces() { return open().all_reduces(); }
    /** Their total wall time in nanoseconds (waiting for the slowest rank included). */
    public synchronized long allReduceNanos() { return open().all_reduce_nanos(); }
    /**
     * Test hook: TP rank {@code rank} fails at its n-th all-reduce from now, as a crashing rank
     * would, and every rank's collective timeout becomes {@code timeoutMs}. The step that hits it
     * fails naming the rank; later steps say the engine must be recreated.
     */
    public synchronized void failRankForTest(int rank, int n, int timeoutMs) {
        try {
            session.fail_rank_for_test(rank, n, timeoutMs);
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
    }
    /**
     * Why this engine refuses every further step, or null while it works: its tensor-parallel group
     * failed (a rank threw, died or timed out) and may be mid-collective, so the engine must be
     * closed and loaded again.
     */
    public synchronized String brokenReason() {
        ensureOpen();
        String reason = session.broken();
        return reason.isEmpty() ? null : reason;
    }
    public int speculateK() { return speculateK; }
    /** Sequences this engine decodes together. */
    public int batchSize() { return slots.length; }

    public synchronized int active() {
        int n = 0;
        for (Sequence s : slots) if (s != null) n++;
        return n;
    }

    public synchronized boolean hasFreeSlot() { return freeSlot() >= 0; }

    /** One line: architecture, cache, slots, dtype, device, threads (and the draft, if any). */
    public String describe() {
        ensureOpen();
        return session.describe() + (speculateK > 0 ? " speculate_k=" + speculateK : "");
    }

    private void ensureOpen() {
        if (session.isNull()) throw new GptFastException("engine is closed");
    }

    /** The session, for accessors: a closed engine says so rather than JavaCPP's null-pointer error. */
    private GptFastNative.Session open() {
        ensureOpen();
        return session;
    }

    @Override
    public synchronized void close() {
        session.close();
        tokenizer.close();
    }
}

package ai.gptfast4j;

import ai.gptfast4j.natives.GptFastNative;
import java.util.ArrayList;
import java.util.List;

/**
 * Continuous batching: up to maxBatch sequences decode together, one token each per
 * {@link #step()}, through one model whose KV cache holds a slot per sequence. Sequences can
 * {@link #start} and finish between steps, so a server admits new requests into a running
 * batch. Each sequence has its own sampling parameters, seed, stop conditions and streaming
 * listener, exactly as {@link Engine#generate}. Not thread-safe: one thread drives it
 * (listeners run on that thread).
 */
public final class BatchedGenerator implements AutoCloseable {
    private final GptFastNative.BatchedEngine engine;
    private final Tokenizer tokenizer;
    private final ModelConfig config;
    private final Sequence[] slots;
    private final int[] laneSlots, laneTokens, laneNext;

    private BatchedGenerator(GptFastNative.BatchedEngine engine, Tokenizer tokenizer, ModelConfig config) {
        this.engine = engine;
        this.tokenizer = tokenizer;
        this.config = config;
        int maxBatch = engine.max_batch();
        this.slots = new Sequence[maxBatch];
        this.laneSlots = new int[maxBatch];
        this.laneTokens = new int[maxBatch];
        this.laneNext = new int[maxBatch];
    }

    /** Loads the model of options (speculative options are not used here) with maxBatch slots. */
    public static BatchedGenerator load(EngineOptions options, int maxBatch) {
        Engine.ResolvedModel model = Engine.ResolvedModel.of(options);
        Tokenizer tokenizer = model.openTokenizer();
        try (GptFastNative.ModelSpec spec = model.config().config().toNative()) {
            GptFastNative.BatchedEngine engine = new GptFastNative.BatchedEngine(model.file().toString(),
                    model.format().nativeName, spec, options.dtype(), options.device(), options.threads(),
                    options.maxSeqLen(), maxBatch);
            return new BatchedGenerator(engine, tokenizer, model.config().config());
        } catch (RuntimeException e) {
            tokenizer.close();
            throw GptFastException.fromNative(e);
        }
    }

    /** Seeded random weights of the given architecture (for benchmarks), with the given tokenizer. */
    public static BatchedGenerator random(ModelConfig config, long seed, Tokenizer tokenizer, EngineOptions options,
                                          int maxBatch) {
        Engine.checkVocab(tokenizer, config);
        try (GptFastNative.ModelSpec spec = config.toNative()) {
            return new BatchedGenerator(new GptFastNative.BatchedEngine(Long.toString(seed), "random", spec,
                    options.dtype(), options.device(), options.threads(), options.maxSeqLen(), maxBatch), tokenizer, config);
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
    }

    /** One sequence of the batch. */
    public static final class Sequence {
        private final int slot;
        private final GenerationRun run;
        private int last;
        private GenerationResult result;

        private Sequence(int slot, GenerationRun run) {
            this.slot = slot;
            this.run = run;
        }

        public boolean finished() { return result != null; }

        /** The result once finished, else null. */
        public GenerationResult result() { return result; }
    }

    public int maxBatch() { return slots.length; }

    public int active() {
        int n = 0;
        for (Sequence s : slots) if (s != null) n++;
        return n;
    }

    public boolean hasFreeSlot() { return active() < slots.length; }

    public Tokenizer tokenizer() { return tokenizer; }
    public ModelConfig config() { return config; }
    public int contextLength() { return engine.max_seq_len(); }

    public Sequence start(String prompt, GenerationParams params, TokenListener listener, CancellationToken cancel) {
        if (prompt == null) throw new GptFastException("prompt is null");
        return start(promptTokens(prompt), params, listener, cancel);
    }

    /** BOS followed by the SentencePiece encoding of text. */
    public int[] promptTokens(String text) {
        return Engine.promptTokens(tokenizer, text);
    }

    /**
     * Prefills a new sequence into a free slot and emits its first token. It may finish at once
     * (then it holds its result and takes no slot).
     *
     * @throws GptFastException when no slot is free or the input is bad
     */
    public Sequence start(int[] promptIds, GenerationParams params, TokenListener listener, CancellationToken cancel) {
        ensureOpen();
        int slot = freeSlot();
        if (slot < 0) throw new GptFastException("all " + slots.length + " batch slots are busy");
        GenerationRun run = new GenerationRun(tokenizer, promptIds, params, listener, cancel, engine.max_seq_len(),
                ids -> engine.suppress_tokens(slot, ids, ids.length));
        Sequence seq = new Sequence(slot, run);
        try (GptFastNative.SamplingSpec sampling = Engine.samplingSpec(params)) {
            engine.set_sampling(slot, sampling);
            run.updateSuppression();
            seq.last = engine.start(slot, promptIds, promptIds.length);
        } catch (RuntimeException e) {
            release(slot);
            throw GptFastException.fromNative(e);
        }
        slots[slot] = seq;
        if (run.accept(seq.last)) finish(seq);
        return seq;
    }

    /** Decodes one token for every active sequence; returns those that finished with it. */
    public List<Sequence> step() {
        ensureOpen();
        int n = 0;
        for (Sequence s : slots) {
            if (s == null) continue;
            s.run.updateSuppression();
            laneSlots[n] = s.slot;
            laneTokens[n] = s.last;
            n++;
        }
        List<Sequence> done = new ArrayList<>();
        if (n == 0) return done;
        try {
            engine.step(laneSlots, laneTokens, n, laneNext);
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
        for (int i = 0; i < n; i++) {
            Sequence s = slots[laneSlots[i]];
            s.last = laneNext[i];
            if (s.run.accept(s.last)) {
                finish(s);
                done.add(s);
            }
        }
        return done;
    }

    /** Ends a sequence now (e.g. its client went away) and frees its slot. */
    public void abort(Sequence s) {
        if (s.finished()) return;
        s.run.stop(GenerationResult.StopReason.CANCELLED);
        finish(s);
    }

    private void finish(Sequence s) {
        s.result = s.run.result(0, 0, 0);
        release(s.slot);
    }

    private void release(int slot) {
        slots[slot] = null;
        engine.release(slot);
    }

    private int freeSlot() {
        for (int i = 0; i < slots.length; i++) if (slots[i] == null) return i;
        return -1;
    }

    /** One line: batch size, cache, dtype, device, threads. */
    public String describe() {
        ensureOpen();
        return engine.describe();
    }

    private void ensureOpen() {
        if (engine.isNull()) throw new GptFastException("batched generator is closed");
    }

    @Override
    public void close() {
        engine.close();
        tokenizer.close();
    }
}

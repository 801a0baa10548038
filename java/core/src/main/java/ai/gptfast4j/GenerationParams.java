package ai.gptfast4j;

import ai.gptfast4j.natives.GptFastNative;
import ai.gptfast4j.natives.NativeLibrary;
import java.util.Arrays;
import java.util.List;

/**
 * How to generate. Immutable; build with {@link #builder()}; defaults are {@link Defaults}.
 * Validated on build, so a bad value fails before any work starts (the sampling ranges by the
 * native check that the engine itself applies). Logit processing runs natively in this order:
 * repetition penalty (prompt + generated), presence/frequency penalties (generated),
 * temperature, top-k, top-p; temperature 0 is greedy.
 *
 * @param stopTokens ids that end generation (kept as the last generated token); null means the
 *                   engine's default stop tokens: the model's eos_token_id(s) (generation_config.json,
 *                   config.json), the tokenizer's EOS and end-of-turn tokens, and BOS (a sampled BOS
 *                   starts a new document, which is how llama2.c-trained models such as TinyStories
 *                   end a story); see {@link Engine#defaultStopTokens()}
 * @param minNewTokens stop tokens are suppressed until this many tokens were generated
 * @param stopSequences texts that end generation; the completion is cut before the match
 * @param speculateK draft tokens per speculative round for this sequence: 0 = plain decoding,
 *                   null = the engine's k when it has a draft model and no penalty is used
 * @param cachePrompt start in the free batch slot whose KV cache holds the longest start of the
 *                    prompt (from the sequence it ran last) and prefill only the rest: a chat's
 *                    next turn runs only the new message. Off: the whole prompt is prefilled, as
 *                    benchmarks need. See {@link GenerationStats#cachedPromptTokens()}.
 */
public record GenerationParams(int maxNewTokens, int minNewTokens, float temperature, int topK, float topP,
                               float repetitionPenalty, float presencePenalty, float frequencyPenalty,
                               long seed, int[] stopTokens, List<String> stopSequences, Integer speculateK,
                               boolean cachePrompt) {

    public GenerationParams {
        if (maxNewTokens <= 0) throw new GptFastException("max_new_tokens must be positive, got " + maxNewTokens);
        if (minNewTokens < 0 || minNewTokens > maxNewTokens) {
            throw new GptFastException("min_new_tokens must be in [0, max_new_tokens], got " + minNewTokens);
        }
        NativeLibrary.load();  // one-line error if the natives are missing or mismatched
        try (GptFastNative.SamplingSpec spec = toNative(temperature, topK, topP, repetitionPenalty, presencePenalty,
                frequencyPenalty, seed)) {
            GptFastNative.checkSampling(spec);
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
        stopTokens = stopTokens == null ? null : stopTokens.clone();
        stopSequences = stopSequences == null ? List.of() : List.copyOf(stopSequences);
        for (String s : stopSequences) {
            if (s.isEmpty()) throw new GptFastException("stop sequences must not be empty");
        }
    }

    /** The native form of the sampling parameters; the caller closes it. */
    GptFastNative.SamplingSpec toNative() {
        return toNative(temperature, topK, topP, repetitionPenalty, presencePenalty, frequencyPenalty, seed);
    }

    private static GptFastNative.SamplingSpec toNative(float temperature, int topK, float topP, float repetitionPenalty,
                                                       float presencePenalty, float frequencyPenalty, long seed) {
        return new GptFastNative.SamplingSpec().temperature(temperature).top_k(topK).top_p(topP)
                .repetition_penalty(repetitionPenalty).presence_penalty(presencePenalty)
                .frequency_penalty(frequencyPenalty).seed(seed);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The same parameters with another sampling seed. */
    public GenerationParams withSeed(long newSeed) {
        return new GenerationParams(maxNewTokens, minNewTokens, temperature, topK, topP, repetitionPenalty,
                presencePenalty, frequencyPenalty, newSeed, stopTokens, stopSequences, speculateK, cachePrompt);
    }

    /** The stop token ids in force, given the engine's defaults. */
    int[] effectiveStopTokens(int[] defaultStops) {
        return stopTokens != null ? stopTokens.clone() : defaultStops.clone();
    }

    /** Whether a repetition, presence or frequency penalty is set (those need plain decoding). */
    public boolean usesPenalties() {
        return repetitionPenalty != 1f || presencePenalty != 0f || frequencyPenalty != 0f;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GenerationParams g && toString().equals(g.toString());
    }

    @Override
    public int hashCode() {
        return toString().hashCode();
    }

    @Override
    public String toString() {
        return "GenerationParams[maxNewTokens=" + maxNewTokens + ", minNewTokens=" + minNewTokens
                + ", temperature=" + temperature + ", topK=" + topK + ", topP=" + topP
                + ", repetitionPenalty=" + repetitionPenalty + ", presencePenalty=" + presencePenalty
                + ", frequencyPenalty=" + frequencyPenalty + ", seed=" + seed
                + ", stopTokens=" + (stopTokens == null ? "default" : Arrays.toString(stopTokens))
                + ", stopSequences=" + stopSequences + ", speculateK=" + speculateK + ", cachePrompt=" + cachePrompt + "]";
    }

    public static final class Builder {
        private int maxNewTokens = Defaults.MAX_NEW_TOKENS;
        private int minNewTokens = 0;
        private float temperature = Defaults.TEMPERATURE;
        private int topK = Defaults.TOP_K;
        private float topP = Defaults.TOP_P;
        private float repetitionPenalty = Defaults.REPETITION_PENALTY;
        private float presencePenalty = Defaults.PRESENCE_PENALTY;
        private float frequencyPenalty = Defaults.FREQUENCY_PENALTY;
        private long seed = Defaults.SEED;
        private int[] stopTokens;
        private List<String> stopSequences = List.of();
        private Integer speculateK;
        private boolean cachePrompt = Defaults.CACHE_PROMPT;

        public Builder maxNewTokens(int v) { maxNewTokens = v; return this; }
        public Builder minNewTokens(int v) { minNewTokens = v; return this; }
        public Builder temperature(float v) { temperature = v; return this; }
        public Builder topK(int v) { topK = v; return this; }
        public Builder topP(float v) { topP = v; return this; }
        public Builder repetitionPenalty(float v) { repetitionPenalty = v; return this; }
        public Builder presencePenalty(float v) { presencePenalty = v; return this; }
        public Builder frequencyPenalty(float v) { frequencyPenalty = v; return this; }
        public Builder seed(long v) { seed = v; return this; }
        /** Ids that end generation; not called means the engine's defaults (EOS, end of turn, BOS). */
        public Builder stopTokens(int... ids) { stopTokens = ids; return this; }
        public Builder stopSequences(List<String> texts) { stopSequences = texts; return this; }
        public Builder greedy() { temperature = 0; return this; }
        /** Draft tokens per round (0 = plain decoding); not called means the engine's choice. */
        public Builder speculateK(Integer k) { speculateK = k; return this; }
        /** Reuse the start of the prompt that a free slot's KV cache still holds (default on). */
        public Builder cachePrompt(boolean v) { cachePrompt = v; return this; }

        public GenerationParams build() {
            return new GenerationParams(maxNewTokens, minNewTokens, temperature, topK, topP, repetitionPenalty,
                    presencePenalty, frequencyPenalty, seed, stopTokens, stopSequences, speculateK, cachePrompt);
        }
    }
}

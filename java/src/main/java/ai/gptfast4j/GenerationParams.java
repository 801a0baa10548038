package ai.gptfast4j;

import java.util.Arrays;

/**
 * How to generate. Immutable; build with {@link #builder()}. Validated on build, so a bad value
 * fails before any work starts.
 *
 * @param stopTokens ids that end generation (kept as the last generated token); null means the
 *                   tokenizer's EOS and BOS (a sampled BOS starts a new document, which is how
 *                   llama2.c-trained models such as TinyStories end a story).
 */
public record GenerationParams(int maxNewTokens, float temperature, int topK, long seed, int[] stopTokens) {

    public GenerationParams {
        if (maxNewTokens <= 0) throw new GptFastException("max_new_tokens must be positive, got " + maxNewTokens);
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new GptFastException("temperature must be a finite number >= 0, got " + temperature);
        }
        if (topK < 0) throw new GptFastException("top_k must be >= 0 (0 = no top-k), got " + topK);
        stopTokens = stopTokens == null ? null : stopTokens.clone();
    }

    public static Builder builder() {
        return new Builder();
    }

    public boolean isStopToken(int id, int eosId, int bosId) {
        if (stopTokens == null) return id == eosId || id == bosId;
        for (int t : stopTokens) if (t == id) return true;
        return false;
    }

    @Override
    public String toString() {
        return "GenerationParams[maxNewTokens=" + maxNewTokens + ", temperature=" + temperature + ", topK=" + topK
                + ", seed=" + seed + ", stopTokens=" + (stopTokens == null ? "EOS,BOS" : Arrays.toString(stopTokens)) + "]";
    }

    public static final class Builder {
        private int maxNewTokens = 200;
        private float temperature = 0.8f;
        private int topK = 200;
        private long seed = 0;
        private int[] stopTokens;

        public Builder maxNewTokens(int v) { maxNewTokens = v; return this; }
        public Builder temperature(float v) { temperature = v; return this; }
        public Builder topK(int v) { topK = v; return this; }
        public Builder seed(long v) { seed = v; return this; }
        /** Ids that end generation; not called means the tokenizer's EOS and BOS. */
        public Builder stopTokens(int... ids) { stopTokens = ids; return this; }
        public Builder greedy() { temperature = 0; return this; }

        public GenerationParams build() {
            return new GenerationParams(maxNewTokens, temperature, topK, seed, stopTokens);
        }
    }
}

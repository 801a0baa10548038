package ai.gptfast4j;

/**
 * Timings of one generation. Prefill covers the prompt pass and the first sampled token (so it
 * is also the time to first token); decode covers every later token.
 */
public record GenerationStats(int promptTokens, int generatedTokens, double prefillMillis, double decodeMillis) {

    public double timeToFirstTokenMillis() {
        return prefillMillis;
    }

    public double prefillTokensPerSecond() {
        return prefillMillis > 0 ? promptTokens * 1000.0 / prefillMillis : 0;
    }

    /** Tokens after the first, per second of decode time. */
    public double decodeTokensPerSecond() {
        int decoded = generatedTokens - 1;
        return decoded > 0 && decodeMillis > 0 ? decoded * 1000.0 / decodeMillis : 0;
    }
}

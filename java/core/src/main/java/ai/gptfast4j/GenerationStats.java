package ai.gptfast4j;

/**
 * Timings of one generation. Prefill covers the prompt pass and the first sampled token (so it
 * is also the time to first token); decode covers every later token. The speculative counters
 * are 0 without a draft model.
 *
 * @param engineDecodeMillis the part of decodeMillis spent in the model's forward passes (native
 *     clock); the rest is sampling, JNI, Java bookkeeping and the listener (detokenization,
 *     printing): see {@link #overheadFraction()}. With batching, the forward passes shared with
 *     other sequences count too.
 * @param verifyRounds target verify passes (speculative rounds)
 * @param draftProposed draft tokens proposed
 * @param draftAccepted draft tokens the target accepted
 * @param cachedPromptTokens leading prompt tokens whose keys and values were already in the KV
 *     cache (see {@link GenerationParams#cachePrompt()}): prefill ran only the others
 */
public record GenerationStats(int promptTokens, int generatedTokens, double prefillMillis, double decodeMillis,
                              long verifyRounds, long draftProposed, long draftAccepted, double engineDecodeMillis,
                              int cachedPromptTokens) {

    public GenerationStats(int promptTokens, int generatedTokens, double prefillMillis, double decodeMillis) {
        this(promptTokens, generatedTokens, prefillMillis, decodeMillis, 0, 0, 0, decodeMillis, 0);
    }

    /**
     * Fraction of the decode time spent outside the model's forward passes (0 when nothing was
     * decoded): what JNI, sampling, Java and the listener cost end to end.
     */
    public double overheadFraction() {
        return decodeMillis > 0 ? Math.max(0, 1 - engineDecodeMillis / decodeMillis) : 0;
    }

    public double timeToFirstTokenMillis() {
        return prefillMillis;
    }

    /** Prompt tokens prefilled (those not taken from the cache) per second. */
    public double prefillTokensPerSecond() {
        return prefillMillis > 0 ? (promptTokens - cachedPromptTokens) * 1000.0 / prefillMillis : 0;
    }

    /** Tokens after the first, per second of decode time. */
    public double decodeTokensPerSecond() {
        int decoded = generatedTokens - 1;
        return decoded > 0 && decodeMillis > 0 ? decoded * 1000.0 / decodeMillis : 0;
    }

    /** Fraction of proposed draft tokens the target accepted (0 without speculation). */
    public double acceptanceRate() {
        return draftProposed > 0 ? (double) draftAccepted / draftProposed : 0;
    }

    /** Tokens produced per target verify pass: accepted draft tokens plus the corrected/bonus one. */
    public double tokensPerVerify() {
        return verifyRounds > 0 ? (double) (draftAccepted + verifyRounds) / verifyRounds : 0;
    }
}

package ai.gptfast4j;

/**
 * What a generation produced.
 *
 * @param promptTokens ids fed to the model, BOS first
 * @param generatedTokens sampled ids in order, the stop token last if one ended generation
 * @param completion text of the generated tokens (stop token excluded, cut before a stop sequence)
 */
public record GenerationResult(int[] promptTokens, int[] generatedTokens, String completion,
                               StopReason stopReason, GenerationStats stats) {

    public enum StopReason { STOP_TOKEN, STOP_SEQUENCE, MAX_NEW_TOKENS, CONTEXT_FULL, CANCELLED }
}

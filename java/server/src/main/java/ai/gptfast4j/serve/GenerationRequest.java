package ai.gptfast4j.serve;

import ai.gptfast4j.GenerationParams;

/**
 * One parsed, validated request: the prompt text (BOS is prepended by the engine) or, for chat,
 * the prompt ids its template made (promptIds, null otherwise), how to generate, and whether the
 * client wants the text streamed token by token.
 */
public record GenerationRequest(String prompt, int[] promptIds, GenerationParams params, boolean stream) {
    public GenerationRequest {
        if (prompt == null && promptIds == null) throw new IllegalArgumentException("prompt is null");
        if (params == null) throw new IllegalArgumentException("params is null");
    }

    public GenerationRequest(String prompt, GenerationParams params, boolean stream) {
        this(prompt, null, params, stream);
    }
}

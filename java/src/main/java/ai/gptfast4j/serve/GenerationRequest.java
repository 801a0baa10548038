package ai.gptfast4j.serve;

import ai.gptfast4j.GenerationParams;

/**
 * One parsed, validated request: the prompt text (BOS is prepended by the engine), how to
 * generate, and whether the client wants the text streamed token by token.
 */
public record GenerationRequest(String prompt, GenerationParams params, boolean stream) {
    public GenerationRequest {
        if (prompt == null) throw new IllegalArgumentException("prompt is null");
        if (params == null) throw new IllegalArgumentException("params is null");
    }
}

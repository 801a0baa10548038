package example;

import ai.gptfast4j.EmbeddedModel;
import ai.gptfast4j.Engine;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.GenerationParams;
import ai.gptfast4j.GenerationResult;

/** Streams a story from the model embedded in gptfast4j-core (stories260K), token by token. */
public final class StreamStory {
    public static void main(String[] args) {
        String prompt = args.length > 0 ? args[0] : "Once upon a time";
        try (Engine engine = Engine.load(EngineOptions.of(EmbeddedModel.checkpoint()))) {
            GenerationParams params = GenerationParams.builder().maxNewTokens(60).temperature(0.8f).seed(42).build();
            System.out.print(prompt);
            GenerationResult result = engine.generate(prompt, params, (id, text) -> System.out.print(text));
            System.out.println();
            System.out.printf("[%d tokens, %s, %.0f tok/s]%n", result.generatedTokens().length, result.stopReason(),
                    result.stats().decodeTokensPerSecond());
        }
    }
}

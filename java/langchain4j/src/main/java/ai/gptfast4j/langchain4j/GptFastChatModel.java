package ai.gptfast4j.langchain4j;

import ai.gptfast4j.GenerationResult;
import ai.gptfast4j.GptFastException;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;

/**
 * A LangChain4j {@link ChatModel} over a gptfast4j {@link ai.gptfast4j.Engine}: the conversation
 * goes through the model's chat template; temperature, top-k, top-p, max output tokens, stop
 * sequences and penalties map onto the engine's sampling; the seed is the builder's.
 * <pre>{@code
 * try (GptFastChatModel model = GptFastChatModel.builder().checkpoint(Path.of("model.pth")).build()) {
 *     String answer = model.chat("Tell me a story");
 * }
 * }</pre>
 */
public final class GptFastChatModel extends EngineBackedModel implements ChatModel {
    private GptFastChatModel(Builder b) {
        super(b);
    }

    public static Builder builder() {
        return new Builder();
    }

    @Override
    public ChatResponse doChat(ChatRequest request) {
        try {
            int[] prompt = GptFastChatModels.promptTokens(engine, template, request.messages());
            GenerationResult r = engine.generate(prompt, GptFastChatModels.params(request, seed), null,
                    new ai.gptfast4j.CancellationToken());
            return GptFastChatModels.response(modelName, r);
        } catch (GptFastException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    public static final class Builder extends EngineBackedModel.Builder<Builder> {
        public GptFastChatModel build() {
            return new GptFastChatModel(this);
        }
    }
}

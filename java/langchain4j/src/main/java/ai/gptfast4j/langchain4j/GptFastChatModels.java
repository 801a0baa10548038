package ai.gptfast4j.langchain4j;

import ai.gptfast4j.ChatTemplate;
import ai.gptfast4j.Defaults;
import ai.gptfast4j.Engine;
import ai.gptfast4j.GenerationParams;
import ai.gptfast4j.GenerationResult;
import ai.gptfast4j.GptFastException;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormat;
import dev.langchain4j.model.chat.request.ResponseFormatType;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;
import java.util.ArrayList;
import java.util.List;

/**
 * The one mapping between LangChain4j's chat requests and gptfast4j's engine, shared by
 * {@link GptFastChatModel} and {@link GptFastStreamingChatModel}: messages through the engine's chat
 * template, request parameters onto {@link GenerationParams}, results onto {@link ChatResponse}.
 */
final class GptFastChatModels {
    private GptFastChatModels() {}

    /** LangChain4j's defaults for a gptfast4j model: gptfast4j's own (Defaults), named. */
    static ChatRequestParameters defaults(String modelName, ChatRequestParameters overrides) {
        ChatRequestParameters base = ChatRequestParameters.builder()
                .modelName(modelName)
                .temperature((double) Defaults.TEMPERATURE)
                .topK(Defaults.TOP_K)
                .topP((double) Defaults.TOP_P)
                .presencePenalty((double) Defaults.PRESENCE_PENALTY)
                .frequencyPenalty((double) Defaults.FREQUENCY_PENALTY)
                .maxOutputTokens(Defaults.MAX_NEW_TOKENS)
                .build();
        return overrides == null ? base : base.overrideWith(overrides);
    }

    /** The prompt ids of the conversation, through the template the model was built with. */
    static int[] promptTokens(Engine engine, ChatTemplate template, List<ChatMessage> messages) {
        List<ChatTemplate.Message> converted = new ArrayList<>();
        for (ChatMessage m : messages) {
            if (m instanceof SystemMessage s) {
                converted.add(new ChatTemplate.Message("system", s.text()));
            } else if (m instanceof UserMessage u) {
                if (!u.hasSingleText()) {
                    throw new UnsupportedFeatureException("gptfast4j models take text only; a user message has "
                            + u.contents().size() + " parts");
                }
                converted.add(new ChatTemplate.Message("user", u.singleText()));
            } else if (m instanceof AiMessage a) {
                if (a.hasToolExecutionRequests()) throw new UnsupportedFeatureException("gptfast4j models do not call tools");
                converted.add(new ChatTemplate.Message("assistant", a.text() == null ? "" : a.text()));
            } else {
                throw new UnsupportedFeatureException("gptfast4j models take system, user and AI messages, not "
                        + m.type());
            }
        }
        return template == null ? engine.chatPromptTokens(converted) : template.promptTokens(engine.tokenizer(), converted);
    }

    /** Request parameters (already merged with the model's defaults by LangChain4j) as generation parameters. */
    static GenerationParams params(ChatRequest request, long seed) {
        ChatRequestParameters p = request.parameters();
        if (p.toolSpecifications() != null && !p.toolSpecifications().isEmpty()) {
            throw new UnsupportedFeatureException("gptfast4j models do not call tools");
        }
        ResponseFormat format = p.responseFormat();
        if (format != null && format.type() == ResponseFormatType.JSON) {
            throw new UnsupportedFeatureException("gptfast4j models have no JSON response format");
        }
        GenerationParams.Builder b = GenerationParams.builder().seed(seed);
        if (p.temperature() != null) b.temperature(p.temperature().floatValue());
        if (p.topK() != null) b.topK(p.topK());
        if (p.topP() != null) b.topP(p.topP().floatValue());
        if (p.presencePenalty() != null) b.presencePenalty(p.presencePenalty().floatValue());
        if (p.frequencyPenalty() != null) b.frequencyPenalty(p.frequencyPenalty().floatValue());
        if (p.maxOutputTokens() != null) b.maxNewTokens(p.maxOutputTokens());
        if (p.stopSequences() != null) b.stopSequences(p.stopSequences());
        try {
            return b.build();
        } catch (GptFastException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    static ChatResponse response(String modelName, GenerationResult r) {
        FinishReason reason = switch (r.stopReason()) {
            case STOP_TOKEN, STOP_SEQUENCE -> FinishReason.STOP;
            case MAX_NEW_TOKENS, CONTEXT_FULL -> FinishReason.LENGTH;
            case CANCELLED -> FinishReason.OTHER;
        };
        return ChatResponse.builder()
                .aiMessage(AiMessage.from(r.completion()))
                .modelName(modelName)
                .finishReason(reason)
                .tokenUsage(new TokenUsage(r.promptTokens().length, r.generatedTokens().length))
                .build();
    }
}

package ai.gptfast4j.langchain4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.ChatTemplate;
import ai.gptfast4j.Engine;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.GenerationParams;
import ai.gptfast4j.GenerationResult;
import ai.gptfast4j.SharedData;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.output.FinishReason;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** gptfast4j through LangChain4j's own ChatModel / StreamingChatModel API, on stories260K. */
class LangChain4jChatModelTest {
    private static final String STORY = "Once upon a time, there was a little girl";
    private static Engine engine;
    private static GptFastChatModel chat;
    private static GptFastStreamingChatModel streaming;

    @BeforeAll
    static void load() {
        engine = Engine.load(EngineOptions.of(SharedData.storiesPth()));
        chat = GptFastChatModel.builder().engine(engine).build();
        streaming = GptFastStreamingChatModel.builder().engine(engine).build();
    }

    @AfterAll
    static void close() {
        streaming.close();
        chat.close();
        engine.close();
    }

    private static ChatRequest greedy(int maxTokens) {
        return ChatRequest.builder().messages(UserMessage.from(STORY)).temperature(0.0).maxOutputTokens(maxTokens).build();
    }

    /** What the engine itself generates for the chat prompt as the template renders it. */
    private static GenerationResult engineGreedy(int maxTokens) {
        int[] prompt = engine.chatPromptTokens(List.of(new ChatTemplate.Message("user", STORY)));
        return engine.generate(prompt, GenerationParams.builder().greedy().maxNewTokens(maxTokens).build(), null,
                new ai.gptfast4j.CancellationToken());
    }

    @Test
    void chatMapsMaxTokensAndTemperatureOntoTheEngine() {
        ChatResponse r = chat.chat(greedy(24));
        GenerationResult expected = engineGreedy(24);
        assertEquals(expected.completion(), r.aiMessage().text());
        assertEquals(24, r.tokenUsage().outputTokenCount());
        assertEquals(expected.promptTokens().length, r.tokenUsage().inputTokenCount());
        assertEquals(FinishReason.LENGTH, r.finishReason());
    }

    @Test
    void stopSequencesCutTheAnswer() {
        String full = chat.chat(greedy(40)).aiMessage().text();
        // a piece from the middle of the greedy answer: the answer must end right before it
        int at = full.indexOf(' ', full.length() / 2);
        assertTrue(at > 0, full);
        String stop = full.substring(at, Math.min(full.length(), at + 4));
        ChatResponse r = chat.chat(greedy(40).toBuilder().stopSequences(List.of(stop)).build());
        assertEquals(full.substring(0, full.indexOf(stop)), r.aiMessage().text());
        assertEquals(FinishReason.STOP, r.finishReason());
    }

    @Test
    void topKAndSeedReachTheSampler() {
        ChatRequest hot = ChatRequest.builder().messages(UserMessage.from(STORY)).temperature(1.0).maxOutputTokens(40).build();
        // top-k 1 is greedy at any temperature: only if top_k is passed on
        assertEquals(chat.chat(greedy(40)).aiMessage().text(), chat.chat(hot.toBuilder().topK(1).build()).aiMessage().text());
        try (GptFastChatModel seeded1 = GptFastChatModel.builder().engine(engine).seed(1).build();
             GptFastChatModel seeded2 = GptFastChatModel.builder().engine(engine).seed(2).build()) {
            String a = seeded1.chat(hot).aiMessage().text();
            assertEquals(a, seeded1.chat(hot).aiMessage().text(), "same seed, same answer");
            assertNotEquals(a, seeded2.chat(hot).aiMessage().text(), "another seed, another sample");
        }
    }

    /** Collects one streamed answer. */
    static final class Collector implements StreamingChatResponseHandler {
        final List<String> parts = new ArrayList<>();
        final CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        final int cancelAfter;
        final boolean throwInstead;

        Collector(int cancelAfter, boolean throwInstead) {
            this.cancelAfter = cancelAfter;
            this.throwInstead = throwInstead;
        }

        @Override
        public void onPartialResponse(PartialResponse partial, PartialResponseContext context) {
            parts.add(partial.text());
            if (parts.size() == cancelAfter) {
                if (throwInstead) throw new IllegalStateException("handler gave up");
                context.streamingHandle().cancel();
                done.complete(null);  // cancelled: no completion callback may follow
            }
        }

        @Override
        public void onCompleteResponse(ChatResponse response) {
            if (!done.complete(response)) done.obtrudeException(new AssertionError("completed after cancel"));
        }

        @Override
        public void onError(Throwable error) {
            if (!done.completeExceptionally(error)) done.obtrudeException(new AssertionError("error after cancel", error));
        }
    }

    @Test
    void streamingSendsTheSameAnswerPieceByPiece() throws Exception {
        Collector c = new Collector(-1, false);
        streaming.chat(greedy(30), c);
        ChatResponse r = c.done.get(60, TimeUnit.SECONDS);
        assertEquals(chat.chat(greedy(30)).aiMessage().text(), r.aiMessage().text());
        assertEquals(r.aiMessage().text(), String.join("", c.parts));
        assertTrue(c.parts.size() > 5, "streamed in pieces: " + c.parts);
    }

    @Test
    void cancellingMidwayStopsTheStreamAndFreesTheEngine() throws Exception {
        Collector c = new Collector(3, false);
        streaming.chat(greedy(200), c);
        assertNull(c.done.get(60, TimeUnit.SECONDS));
        // the next request runs on the same worker after the cancelled one: it finishes normally,
        // and by then the cancelled one has sent all it ever will
        Collector next = new Collector(-1, false);
        streaming.chat(greedy(10), next);
        assertEquals(FinishReason.LENGTH, next.done.get(60, TimeUnit.SECONDS).finishReason());
        assertEquals(3, c.parts.size(), "no partial response after cancel: " + c.parts);
        assertTrue(c.done.isDone() && !c.done.isCompletedExceptionally(), "no completion or error after cancel");
    }

    @Test
    void aHandlerThatThrowsStopsGenerationAndGetsOnError() throws Exception {
        Collector c = new Collector(2, true);
        streaming.chat(greedy(200), c);
        Exception e = assertThrows(Exception.class, () -> c.done.get(60, TimeUnit.SECONDS));
        assertInstanceOf(IllegalStateException.class, e.getCause());
        assertEquals(2, c.parts.size());
    }

    @Test
    void toolsAndToolResultsAreRefusedByName() {
        ToolSpecification tool = ToolSpecification.builder().name("weather").description("the weather").build();
        var e = assertThrows(UnsupportedFeatureException.class,
                () -> chat.chat(greedy(5).toBuilder().toolSpecifications(tool).build()));
        assertTrue(e.getMessage().contains("tools"), e.getMessage());
        var e2 = assertThrows(UnsupportedFeatureException.class, () -> chat.chat(ChatRequest.builder()
                .messages(SystemMessage.from("be brief"), ToolExecutionResultMessage.from("1", "weather", "sunny")).build()));
        assertTrue(e2.getMessage().contains("TOOL_EXECUTION_RESULT"), e2.getMessage());
        Collector c = new Collector(-1, false);
        streaming.chat(greedy(5).toBuilder().toolSpecifications(tool).build(), c);
        assertThrows(Exception.class, () -> c.done.get(10, TimeUnit.SECONDS));
    }

    @Test
    void outOfRangeParametersAreIllegalArguments() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> chat.chat(greedy(5).toBuilder().topP(1.5).build()));
        assertTrue(e.getMessage().contains("top_p"), e.getMessage());
    }
}

package example;

import ai.gptfast4j.langchain4j.GptFastStreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import java.util.concurrent.CompletableFuture;

/** The same model behind LangChain4j's StreamingChatModel (embedded stories260K by default). */
public final class LangChainChat {
    public static void main(String[] args) throws Exception {
        try (GptFastStreamingChatModel model = GptFastStreamingChatModel.builder().seed(7).build()) {
            CompletableFuture<ChatResponse> done = new CompletableFuture<>();
            ChatRequest request = ChatRequest.builder()
                    .messages(UserMessage.from("Tell me a story about a cat."))
                    .maxOutputTokens(50).temperature(0.7).build();
            model.chat(request, new StreamingChatResponseHandler() {
                @Override public void onPartialResponse(String text) { System.out.print(text); }
                @Override public void onCompleteResponse(ChatResponse response) { done.complete(response); }
                @Override public void onError(Throwable error) { done.completeExceptionally(error); }
            });
            ChatResponse response = done.get();
            System.out.println();
            System.out.println("[" + response.tokenUsage().outputTokenCount() + " tokens, " + response.finishReason() + "]");
        }
    }
}

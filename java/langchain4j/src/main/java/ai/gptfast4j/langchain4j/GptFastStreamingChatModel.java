package ai.gptfast4j.langchain4j;

import ai.gptfast4j.CancellationToken;
import ai.gptfast4j.GenerationParams;
import ai.gptfast4j.GenerationResult;
import ai.gptfast4j.GptFastException;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.PartialResponse;
import dev.langchain4j.model.chat.response.PartialResponseContext;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.chat.response.StreamingHandle;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * A LangChain4j {@link StreamingChatModel} over a gptfast4j {@link ai.gptfast4j.Engine}. Requests
 * run one at a time on the model's own thread, so {@code chat(...)} returns at once; text arrives
 * through {@code onPartialResponse} as tokens complete it. Generation stops, and no further
 * callback comes, when the handler cancels through the {@link StreamingHandle} in the
 * {@link PartialResponseContext}, or when a handler callback throws (then onError gets it).
 */
public final class GptFastStreamingChatModel extends EngineBackedModel implements StreamingChatModel {
    private final ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "gptfast4j-langchain4j");
        t.setDaemon(true);
        return t;
    });

    private GptFastStreamingChatModel(Builder b) {
        super(b);
    }

    public static Builder builder() {
        return new Builder();
    }

    @Override
    public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
        int[] prompt;
        GenerationParams params;
        try {
            prompt = GptFastChatModels.promptTokens(engine, template, request.messages());
            params = GptFastChatModels.params(request, seed);
        } catch (RuntimeException e) {
            handler.onError(e instanceof GptFastException ? new IllegalArgumentException(e.getMessage(), e) : e);
            return;
        }
        CancellationToken cancel = new CancellationToken();
        StreamingHandle handle = new StreamingHandle() {
            @Override public void cancel() { cancel.cancel(); }
            @Override public boolean isCancelled() { return cancel.isCancelled(); }
        };
        PartialResponseContext context = new PartialResponseContext(handle);
        worker.execute(() -> run(prompt, params, handler, cancel, context));
    }

    private void run(int[] prompt, GenerationParams params, StreamingChatResponseHandler handler,
                     CancellationToken cancel, PartialResponseContext context) {
        Throwable[] handlerFailure = new Throwable[1];
        GenerationResult r;
        try {
            r = engine.generate(prompt, params, (id, text) -> {
                if (text.isEmpty() || cancel.isCancelled()) return;
                try {
                    handler.onPartialResponse(new PartialResponse(text), context);
                } catch (RuntimeException | Error e) {
                    handlerFailure[0] = e;
                    cancel.cancel();
                }
            }, cancel);
        } catch (RuntimeException e) {
            handler.onError(e instanceof GptFastException ? new IllegalStateException(e.getMessage(), e) : e);
            return;
        }
        if (handlerFailure[0] != null) {
            handler.onError(handlerFailure[0]);
        } else if (r.stopReason() != GenerationResult.StopReason.CANCELLED) {
            handler.onCompleteResponse(GptFastChatModels.response(modelName, r));
        }
    }

    /** Stops the worker thread (after the running request) and closes an engine this model loaded. */
    @Override
    public void close() {
        worker.shutdown();
        try {
            worker.awaitTermination(1, java.util.concurrent.TimeUnit.MINUTES);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        super.close();
    }

    public static final class Builder extends EngineBackedModel.Builder<Builder> {
        public GptFastStreamingChatModel build() {
            return new GptFastStreamingChatModel(this);
        }
    }
}

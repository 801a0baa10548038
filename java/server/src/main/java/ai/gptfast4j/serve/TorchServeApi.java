package ai.gptfast4j.serve;

import ai.gptfast4j.GenerationResult;
import io.javalin.Javalin;
import io.javalin.http.Context;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * TorchServe's inference and management routes, on the server's one port (TorchServe itself uses
 * 8080 and 8081): {@code GET /ping}, {@code POST /predictions/{model}} (JSON
 * {@code {"generated_text"}}, or HTTP chunked text token by token when streaming),
 * {@code GET /models}, {@code GET /models/{model}} (names and settings only: no paths, no pid).
 * Errors: {@code {"code","type","message"}}.
 */
final class TorchServeApi {
    private final GptServer server;
    private final ServeConfig config;

    TorchServeApi(GptServer server) {
        this.server = server;
        this.config = server.config();
    }

    void register(Javalin app) {
        app.get("/ping", ctx -> {
            boolean up = !server.isDraining() && server.scheduler().unavailableReason() == null;
            ctx.status(up ? 200 : 503);
            GptServer.json(ctx, Map.of("status", up ? "Healthy" : "Unhealthy"));
        });
        app.post("/predictions/{model}", this::predict);
        app.get("/models", ctx -> GptServer.json(ctx, Map.of("models",
                List.of(Map.of("modelName", config.modelName(), "modelUrl", config.modelName())))));
        app.get("/models/{model}", this::describe);
    }

    private void predict(Context ctx) throws InterruptedException {
        String model = ctx.pathParam("model");
        if (!model.equals(config.modelName())) throw ApiException.modelNotFound(model, config.modelName());
        GenerationRequest request = GptHandler.parse(config, server.readBody(ctx));
        long deadline = server.streamer().deadline();
        GenerationJob job = server.scheduler().submit(request);
        if (request.stream()) {
            server.streamer().stream(ctx, job, deadline, RAW_TEXT, GptServer.clientGone(ctx));
        } else {
            GenerationResult r = server.streamer().await(job, deadline, GptServer.clientGone(ctx));
            GptServer.json(ctx, Map.of("generated_text", r.completion()));
        }
    }

    /** TorchServe's streaming: each intermediate response is the new text itself. */
    private static final TokenStreamer.Framing RAW_TEXT = new TokenStreamer.Framing() {
        @Override public String contentType() { return "text/plain; charset=utf-8"; }
        @Override public byte[] piece(String text) { return text.getBytes(StandardCharsets.UTF_8); }
        @Override public byte[] end(GenerationResult result) { return new byte[0]; }
        @Override public byte[] error(ApiException e) {
            return ("\n[error: " + e.getMessage() + "]").getBytes(StandardCharsets.UTF_8);
        }
    };

    private void describe(Context ctx) {
        String model = ctx.pathParam("model");
        if (!model.equals(config.modelName())) throw ApiException.modelNotFound(model, config.modelName());
        RequestScheduler s = server.scheduler();
        List<Map<String, Object>> workers = new ArrayList<>();
        for (RequestScheduler.WorkerStatus w : s.workerStatus()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("id", Integer.toString(9000 + w.id()));
            m.put("startTime", server.startTime().toString());
            m.put("status", w.busy() ? "BUSY" : "READY");
            m.put("gpu", w.gpu());
            m.put("engine", w.engine());
            workers.add(m);
        }
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("modelName", config.modelName());
        d.put("modelVersion", "1.0");
        d.put("modelUrl", config.modelName());
        d.put("runtime", "java");
        d.put("minWorkers", config.minWorkers());
        d.put("maxWorkers", config.maxWorkers());
        d.put("batchSize", config.batchSize());
        d.put("maxBatchDelay", config.maxBatchDelayMs());
        d.put("responseTimeout", config.requestTimeoutSeconds());
        d.put("loadedAtStartup", true);
        d.put("workers", workers);
        d.put("jobQueueStatus", Map.of("remainingCapacity", s.queueCapacity() - s.queueDepth(),
                "pendingRequests", s.queueDepth()));
        Map<String, Object> handler = new LinkedHashMap<>();
        handler.put("max_new_tokens", config.defaultMaxNewTokens());
        handler.put("max_new_tokens_cap", config.maxNewTokensCap());
        handler.put("temperature", config.defaultTemperature());
        handler.put("top_k", config.defaultTopK());
        handler.put("stream", config.stream());
        d.put("handler", handler);
        GptServer.json(ctx, List.of(d));
    }
}

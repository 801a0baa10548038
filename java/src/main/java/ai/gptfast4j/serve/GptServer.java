package ai.gptfast4j.serve;

import ai.gptfast4j.Engine;
import ai.gptfast4j.GptFastException;
import com.fasterxml.jackson.core.JsonProcessingException;
import io.javalin.Javalin;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;
import java.io.IOException;
import java.io.InputStream;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP server: TorchServe routes ({@link TorchServeApi}), OpenAI routes ({@link OpenAiApi}),
 * Prometheus {@code GET /metrics}, on one host:port (127.0.0.1 by default), over Javalin
 * (Jetty). Generation runs on the {@link RequestScheduler}'s workers, never on HTTP threads.
 *
 * <pre>{@code
 * try (GptServer server = GptServer.start(ServeConfig.fromYaml(yaml).build(), "127.0.0.1", 0)) {
 *     System.out.println(server.port());
 * }
 * }</pre>
 */
public final class GptServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(GptServer.class);
    private static final long DRAIN_MILLIS = 10_000;

    private final ServeConfig config;
    private final ServerMetrics metrics = new ServerMetrics();
    private final RequestScheduler scheduler;
    private final TokenStreamer streamer;
    private final Instant startTime = Instant.now();
    private final Javalin app;
    private volatile boolean draining;
    private volatile boolean closed;

    private GptServer(ServeConfig config, Function<GptHandler.Context, Engine> engineLoader) {
        this.config = config;
        config.notes().forEach(n -> LOG.warn("{}", n));
        this.scheduler = new EngineScheduler(config, engineLoader, metrics);
        metrics.bind(scheduler);
        this.streamer = new TokenStreamer(metrics, config.requestTimeoutSeconds());
        this.app = Javalin.create(c -> {
            c.showJavalinBanner = false;
            c.startupWatcherEnabled = false;
        });
        app.before(ctx -> ctx.attribute("gptfast.t0", System.nanoTime()));
        app.after(this::recordRequest);
        app.exception(ApiException.class, (e, ctx) -> renderError(ctx, e));
        app.exception(HttpResponseException.class, (e, ctx) -> renderError(ctx, new ApiException(e.getStatus(),
                "invalid_request_error", "http_" + e.getStatus(), e.getStatus() == 404
                ? "no route for " + ctx.method() + " " + ctx.path() : e.getMessage())));
        app.exception(Exception.class, (e, ctx) -> renderError(ctx, toApiException(e)));
        app.get("/metrics", ctx -> ctx.contentType("text/plain; version=0.0.4; charset=utf-8").result(metrics.scrape()));
        new TorchServeApi(this).register(app);
        new OpenAiApi(this).register(app);
    }

    /** Loads the engines named by the config and listens on host:port (0 = an ephemeral port). */
    public static GptServer start(ServeConfig config, String host, int port) {
        return start(config, GptHandler::loadEngine, host, port);
    }

    /** Same, with engines from the given loader (one call per worker). */
    public static GptServer start(ServeConfig config, Function<GptHandler.Context, Engine> engineLoader,
                                  String host, int port) {
        GptServer s = new GptServer(config, engineLoader);
        try {
            s.app.start(host, port);
        } catch (RuntimeException e) {
            s.scheduler.close();
            throw new GptFastException("cannot listen on " + host + ":" + port + ": " + rootMessage(e), e);
        }
        return s;
    }

    public int port() { return app.port(); }
    public ServeConfig config() { return config; }
    public RequestScheduler scheduler() { return scheduler; }
    public ServerMetrics metrics() { return metrics; }
    TokenStreamer streamer() { return streamer; }
    Instant startTime() { return startTime; }
    boolean isDraining() { return draining; }

    /** The request body, at most max-body-bytes (413 beyond). */
    byte[] readBody(Context ctx) {
        if (draining) throw new ApiException(503, "server_error", "shutting_down", "the server is shutting down", 1);
        long max = config.maxBodyBytes();
        long declared = ctx.req().getContentLengthLong();
        if (declared > max) throw tooLarge(declared + " bytes", max);
        try (InputStream in = ctx.req().getInputStream()) {
            byte[] body = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, max + 1));
            if (body.length > max) throw tooLarge("more than " + max + " bytes", max);
            return body;
        } catch (IOException e) {
            throw ApiException.badRequest("cannot read the request body: " + e.getMessage());
        }
    }

    private static ApiException tooLarge(String size, long max) {
        return new ApiException(413, "invalid_request_error", "request_too_large",
                "request body is " + size + ", over the limit of " + max + " bytes (--max-body-bytes)");
    }

    static ApiException toApiException(Throwable e) {
        if (e instanceof ApiException a) return a;
        if (e instanceof GptFastException) return ApiException.badRequest(e.getMessage());
        LOG.error("internal error", e);
        return new ApiException(500, "server_error", "internal_error", "internal error: " + e);
    }

    private void renderError(Context ctx, ApiException e) {
        if (ctx.res().isCommitted()) return;
        ctx.status(e.status());
        if (e.retryAfterSeconds() > 0) ctx.header("Retry-After", Integer.toString(e.retryAfterSeconds()));
        Map<String, Object> body = new LinkedHashMap<>();
        if (ctx.path().startsWith("/v1/")) {
            Map<String, Object> error = new LinkedHashMap<>();
            error.put("message", e.getMessage());
            error.put("type", e.type());
            error.put("param", null);
            error.put("code", e.code());
            body.put("error", error);
        } else {
            body.put("code", e.status());
            body.put("type", torchServeType(e));
            body.put("message", e.getMessage());
        }
        json(ctx, body);
    }

    private static String torchServeType(ApiException e) {
        return switch (e.status()) {
            case 400 -> "BadRequestException";
            case 404 -> "model_not_found".equals(e.code()) ? "ModelNotFoundException" : "NotFoundException";
            case 405 -> "MethodNotAllowedException";
            case 413 -> "RequestEntityTooLargeException";
            case 503 -> "ServiceUnavailableException";
            case 504 -> "RequestTimeoutException";
            default -> "InternalServerException";
        };
    }

    private void recordRequest(Context ctx) {
        Long t0 = ctx.attribute("gptfast.t0");
        if (t0 == null) return;
        String route;
        try {
            route = ctx.endpointHandlerPath();
        } catch (RuntimeException e) {
            route = "unmatched";
        }
        if (route == null || !route.startsWith("/")) route = "unmatched";
        metrics.httpRequest(route, ctx.method().name(), ctx.statusCode(), System.nanoTime() - t0);
    }

    static void json(Context ctx, Object value) {
        try {
            ctx.contentType("application/json").result(JsonBody.MAPPER.writeValueAsBytes(value));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String rootMessage(Throwable e) {
        while (e.getCause() != null) e = e.getCause();
        return e.getMessage();
    }

    /**
     * Graceful stop: new requests get 503, queued and running ones get up to 10 s to finish, then
     * the HTTP server stops and the engines are freed.
     */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        draining = true;
        long until = System.currentTimeMillis() + DRAIN_MILLIS;
        while ((scheduler.activeGenerations() > 0 || scheduler.queueDepth() > 0) && System.currentTimeMillis() < until) {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        app.stop();
        scheduler.close();
    }
}

package ai.gptfast4j.serve;

import ai.gptfast4j.Engine;
import ai.gptfast4j.GptFastException;
import com.fasterxml.jackson.core.JsonProcessingException;
import io.javalin.Javalin;
import io.javalin.http.Context;
import io.javalin.http.HandlerType;
import io.javalin.http.HttpResponseException;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import java.util.function.LongSupplier;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.server.AbstractConnector;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.NetworkConnector;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.handler.StatisticsHandler;
import org.eclipse.jetty.util.BufferUtil;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP server: TorchServe routes ({@link TorchServeApi}), OpenAI routes ({@link OpenAiApi}),
 * Prometheus {@code GET /metrics}, on one host:port (127.0.0.1 by default), over Javalin
 * (Jetty). Generation runs on the {@link RequestScheduler}'s workers, never on HTTP threads.
 *
 * <p>Every request passes, in order: the Host check (bound to loopback, only loopback names or
 * --allowed-hosts: DNS rebinding), the Origin check (a browser origin not in --cors-origins gets
 * 403; listed ones get CORS headers and preflights), the API key (Bearer, on every route but
 * /ping and, unless --metrics-auth, /metrics), and the drain check (503 while shutting down).
 * Every error, Jetty's own included, is JSON in the route's API format.
 *
 * <pre>{@code
 * try (GptServer server = GptServer.start(ServeConfig.fromYaml(yaml).build(), "127.0.0.1", 0)) {
 *     System.out.println(server.port());
 * }
 * }</pre>
 */
public final class GptServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(GptServer.class);
    /** How long stopping Jetty may wait for answers that are being written. */
    private static final long HTTP_STOP_MILLIS = 5_000;
    /** A connection with nothing arriving for this long is closed; a body that stalls this long gets 408. */
    static final long IDLE_TIMEOUT_MILLIS = 30_000;

    /**
     * What tests replace: the clock of request deadlines, a hook run before every engine step
     * (to hold steps), and the connection idle timeout.
     */
    record Hooks(LongSupplier clock, Runnable beforeStep, long idleTimeoutMillis) {
        static final Hooks REAL = new Hooks(System::nanoTime, () -> { }, IDLE_TIMEOUT_MILLIS);
    }

    private final ServeConfig config;
    private final ServerMetrics metrics = new ServerMetrics();
    private final RequestScheduler scheduler;
    private final TokenStreamer streamer;
    private final Instant startTime = Instant.now();
    private final Javalin app;
    private final Hooks hooks;
    private final List<byte[]> keyDigests = new ArrayList<>();
    private volatile boolean loopbackOnly;
    private volatile boolean draining;
    private volatile boolean closed;

    private GptServer(ServeConfig config, Function<GptHandler.Context, Engine> engineLoader, Hooks hooks) {
        this.config = config;
        this.hooks = hooks;
        config.notes().forEach(n -> LOG.warn("{}", n));
        for (String key : config.access().apiKeys()) keyDigests.add(sha256(key));
        this.scheduler = new EngineScheduler(config, engineLoader, metrics, hooks.beforeStep());
        metrics.bind(scheduler);
        this.streamer = new TokenStreamer(metrics, config.requestTimeoutSeconds(), hooks.clock());
        this.app = Javalin.create(c -> {
            c.showJavalinBanner = false;
            c.startupWatcherEnabled = false;
            c.http.prefer405over404 = true;
            c.jetty.modifyServer(server -> {
                server.setErrorHandler(new JsonErrorHandler());
                server.setHandler(new StatisticsHandler());  // graceful stop waits for answers being written
                server.setStopTimeout(HTTP_STOP_MILLIS);
            });
            c.jetty.modifyServletContextHandler(h -> h.setErrorHandler(new JsonErrorHandler()));
        });
        app.before(ctx -> ctx.attribute("gptfast.t0", System.nanoTime()));
        app.before(this::guard);
        app.after(this::recordRequest);
        app.exception(ApiException.class, (e, ctx) -> renderError(ctx, e));
        app.exception(HttpResponseException.class, (e, ctx) -> renderError(ctx, fromJavalin(e, ctx)));
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
        return start(config, engineLoader, host, port, Hooks.REAL);
    }

    static GptServer start(ServeConfig config, Function<GptHandler.Context, Engine> engineLoader, String host, int port,
                           Hooks hooks) {
        if (port < 0 || port > 65535) throw new GptFastException("port must be in [0, 65535], got " + port);
        GptServer s = new GptServer(config, engineLoader, hooks);
        try {
            s.loopbackOnly = isLoopback(host);
            s.app.start(host, port);
        } catch (RuntimeException e) {
            s.scheduler.close();
            throw new GptFastException("cannot listen on " + host + ":" + port + ": " + rootMessage(e), e);
        }
        for (Connector c : s.app.jettyServer().server().getConnectors()) {
            if (c instanceof AbstractConnector ac) ac.setIdleTimeout(hooks.idleTimeoutMillis());
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

    // ---- the checks every request passes

    private void guard(Context ctx) {
        ServeConfig.Access access = config.access();
        if (loopbackOnly && !hostAllowed(ctx.header("Host"), access.allowedHosts())) {
            metrics.rejected("host");
            throw new ApiException(403, "invalid_request_error", "host_not_allowed", "Host header not allowed: this "
                    + "server is bound to loopback and answers loopback names only (--allowed-hosts adds names)");
        }
        String origin = ctx.header("Origin");
        if (origin != null) {
            if (!originAllowed(origin, access.corsOrigins())) {
                metrics.rejected("origin");
                throw new ApiException(403, "invalid_request_error", "origin_not_allowed",
                        "cross-origin requests from this origin are not allowed (--cors-origins lists the allowed ones)");
            }
            ctx.header("Access-Control-Allow-Origin", access.corsOrigins().contains("*") ? "*" : origin);
            ctx.header("Vary", "Origin");
            if (ctx.method() == HandlerType.OPTIONS && ctx.header("Access-Control-Request-Method") != null) {
                ctx.header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
                ctx.header("Access-Control-Allow-Headers", "Authorization, Content-Type");
                ctx.header("Access-Control-Max-Age", "600");
                ctx.status(204);
                ctx.skipRemainingHandlers();
                return;
            }
        }
        if (!keyDigests.isEmpty() && needsKey(ctx.path()) && !keyMatches(ctx.header("Authorization"))) {
            metrics.rejected("unauthorized");
            ctx.header("WWW-Authenticate", "Bearer");
            throw new ApiException(401, "invalid_request_error", "invalid_api_key",
                    "missing or invalid API key: send 'Authorization: Bearer <key>'");
        }
    }

    private boolean needsKey(String path) {
        if (path.equals("/ping")) return false;
        return !path.equals("/metrics") || config.access().metricsAuth();
    }

    /** Compares the presented key with every configured one in time independent of content and length. */
    private boolean keyMatches(String authorization) {
        if (authorization == null || !authorization.regionMatches(true, 0, "Bearer ", 0, 7)) return false;
        byte[] presented = sha256(authorization.substring(7).trim());
        boolean match = false;
        for (byte[] d : keyDigests) match |= MessageDigest.isEqual(d, presented);
        return match;
    }

    private static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static boolean isLoopback(String host) {
        try {
            return InetAddress.getByName(host).isLoopbackAddress();
        } catch (UnknownHostException e) {
            return false;
        }
    }

    /** Loopback names (localhost, 127.0.0.0/8, ::1) or a listed name; the port is ignored. */
    static boolean hostAllowed(String hostHeader, List<String> allowed) {
        if (hostHeader == null) return true;  // HTTP/1.0 without Host: nothing a browser sends
        String h = hostHeader.trim().toLowerCase(Locale.ROOT);
        if (h.startsWith("[")) {
            int end = h.indexOf(']');
            h = end < 0 ? h : h.substring(1, end);
        } else if (h.indexOf(':') >= 0) {
            h = h.substring(0, h.indexOf(':'));
        }
        if (h.equals("localhost") || h.endsWith(".localhost") || h.equals("::1") || h.matches("127(\\.\\d{1,3}){3}")) {
            return true;
        }
        for (String a : allowed) if (a.equalsIgnoreCase(h)) return true;
        return false;
    }

    static boolean originAllowed(String origin, List<String> allowed) {
        for (String a : allowed) if (a.equals("*") || a.equalsIgnoreCase(origin)) return true;
        return false;
    }

    /**
     * Whether the client of this exchange is gone: the connection was closed (or reset). Looked at
     * while a non-streaming request waits; the request body has been read by then. Bytes a client
     * pipelines behind its request cannot be handed back to Jetty, so the connection is closed
     * after this answer (clients hardly ever pipeline POSTs).
     */
    static BooleanSupplier clientGone(Context ctx) {
        Request base = Request.getBaseRequest(ctx.req());
        if (base == null || base.getHttpChannel() == null) return () -> false;
        EndPoint endPoint = base.getHttpChannel().getEndPoint();
        ByteBuffer buffer = BufferUtil.allocate(64);
        boolean[] pipelined = {false};
        return () -> {
            if (pipelined[0]) return false;
            if (!endPoint.isOpen()) return true;
            try {
                BufferUtil.clear(buffer);
                int n = endPoint.fill(buffer);
                if (n < 0) return true;
                if (n > 0) {
                    pipelined[0] = true;
                    ctx.header("Connection", "close");
                }
                return false;
            } catch (IOException e) {
                return true;
            }
        };
    }

    /** The request body, at most max-body-bytes (413 beyond; 408 when it stalls). */
    byte[] readBody(Context ctx) {
        if (draining) throw shuttingDown();
        long max = config.maxBodyBytes();
        long declared = ctx.req().getContentLengthLong();
        if (declared > max) throw tooLarge(declared + " bytes", max);
        try (InputStream in = ctx.req().getInputStream()) {
            byte[] body = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, max + 1));
            if (body.length > max) throw tooLarge("more than " + max + " bytes", max);
            return body;
        } catch (IOException e) {
            if (causedByTimeout(e)) {
                ctx.header("Connection", "close");
                throw new ApiException(408, "invalid_request_error", "request_timeout", "the request body did not "
                        + "arrive within " + hooks.idleTimeoutMillis() / 1000 + " s");
            }
            throw ApiException.badRequest("the request body could not be read (incomplete or the connection failed)");
        }
    }

    private static boolean causedByTimeout(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof TimeoutException || t instanceof java.net.SocketTimeoutException) return true;
        }
        return false;
    }

    static ApiException shuttingDown() {
        return new ApiException(503, "server_error", "shutting_down", "the server is shutting down", 1);
    }

    private static ApiException tooLarge(String size, long max) {
        return new ApiException(413, "invalid_request_error", "request_too_large",
                "request body is " + size + ", over the limit of " + max + " bytes (--max-body-bytes)");
    }

    static ApiException toApiException(Throwable e) {
        if (e instanceof ApiException a) return a;
        if (e instanceof GptFastException) return ApiException.badRequest(e.getMessage());
        LOG.error("internal error", e);
        return new ApiException(500, "server_error", "internal_error", "internal error (details are in the server log)");
    }

    /** Javalin's own answers (no route, wrong method) as ours; 405 carries Allow. */
    private static ApiException fromJavalin(HttpResponseException e, Context ctx) {
        int status = e.getStatus();
        String message;
        if (status == 404) {
            message = "no route for " + ctx.method() + " " + ctx.path();
        } else if (status == 405) {
            String allowed = e.getDetails().getOrDefault("availableMethods", "").replace(" ", "");
            if (!allowed.isEmpty()) ctx.header("Allow", allowed.replace(",", ", "));
            message = ctx.method() + " is not allowed on " + ctx.path() + (allowed.isEmpty() ? "" : "; allowed: "
                    + allowed.replace(",", ", "));
        } else {
            message = JsonErrorHandler.jettyError(status, null).getMessage();
        }
        return new ApiException(status, status >= 500 ? "server_error" : "invalid_request_error", "http_" + status, message);
    }

    private void renderError(Context ctx, ApiException e) {
        if (ctx.res().isCommitted()) return;
        ctx.status(e.status());
        if (e.retryAfterSeconds() > 0) ctx.header("Retry-After", Integer.toString(e.retryAfterSeconds()));
        ctx.contentType("application/json").result(errorBody(ctx.path(), e));
    }

    /**
     * An error in the API format of the path: OpenAI's {"error":{"message","type","param","code"}}
     * under /v1/, TorchServe's {"code","type","message"} elsewhere; with no path (Jetty refused the
     * request before it had one), both in one object.
     */
    static byte[] errorBody(String path, ApiException e) {
        Map<String, Object> body = new LinkedHashMap<>();
        boolean openAi = path == null || path.startsWith("/v1/");
        boolean torchServe = path == null || !path.startsWith("/v1/");
        if (torchServe) {
            body.put("code", e.status());
            body.put("type", torchServeType(e));
            body.put("message", e.getMessage());
        }
        if (openAi) {
            Map<String, Object> error = new LinkedHashMap<>();
            error.put("message", e.getMessage());
            error.put("type", e.type());
            error.put("param", null);
            error.put("code", e.code());
            body.put("error", error);
        }
        try {
            return JsonBody.MAPPER.writeValueAsBytes(body);
        } catch (JsonProcessingException ex) {
            throw new IllegalStateException(ex);
        }
    }

    private static String torchServeType(ApiException e) {
        return switch (e.status()) {
            case 400, 414, 431 -> "BadRequestException";
            case 401 -> "UnauthorizedException";
            case 403 -> "ForbiddenException";
            case 404 -> "model_not_found".equals(e.code()) ? "ModelNotFoundException" : "NotFoundException";
            case 405 -> "MethodNotAllowedException";
            case 408 -> "RequestTimeoutException";
            case 413 -> "RequestEntityTooLargeException";
            case 503 -> "ServiceUnavailableException";
            case 504 -> "RequestTimeoutException";
            default -> e.status() < 500 ? "BadRequestException" : "InternalServerException";
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
     * Graceful stop, as on SIGTERM: stop accepting connections; answer every queued request at once
     * (503 with Retry-After; new requests on open connections get the same); let running
     * generations finish for up to the shutdown timeout; then end the rest (a stream ends with an
     * error event or line and its normal terminator, a waiting request gets 503); wait for those
     * answers to be written; free the engines.
     */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        draining = true;
        for (Connector c : app.jettyServer().server().getConnectors()) {
            if (c instanceof NetworkConnector nc) nc.shutdown();  // closes the listening socket only
        }
        scheduler.drain();
        try {
            if (!scheduler.awaitIdle(TimeUnit.SECONDS.toNanos(config.shutdownTimeoutSeconds()))) {
                LOG.warn("{} generation(s) still running after {} s; ending them", scheduler.activeGenerations(),
                        config.shutdownTimeoutSeconds());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        scheduler.close();
        app.stop();
    }
}

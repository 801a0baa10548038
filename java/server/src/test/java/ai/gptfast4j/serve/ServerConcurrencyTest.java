package ai.gptfast4j.serve;

import static ai.gptfast4j.serve.ServeTestSupport.get;
import static ai.gptfast4j.serve.ServeTestSupport.json;
import static ai.gptfast4j.serve.ServeTestSupport.metric;
import static ai.gptfast4j.serve.ServeTestSupport.post;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.Engine;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.ModelConfig;
import ai.gptfast4j.SentencePieceTokenizer;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Queue overflow, client disconnect and request timeout, against one worker with a queue of one.
 * The engine has seeded random weights of a larger shape (24 layers, dim 512, the stories260K
 * tokenizer), so text keeps flowing. Nothing here depends on the machine's speed: a {@link StepGate}
 * decides when the engine may step, and the request deadlines run on a {@link ManualClock} that
 * only the test advances.
 */
class ServerConcurrencyTest {
    static GptServer server;
    static int port;
    static final StepGate GATE = new StepGate();
    static final ManualClock CLOCK = new ManualClock();
    /** 500 tokens sampled over the whole vocabulary (text keeps flowing from random weights). */
    static final String LONG = "{\"prompt\":\"Once upon a time\",\"max_tokens\":500,\"min_tokens\":500,"
            + "\"temperature\":1.0,\"top_k\":0,\"seed\":1";

    @BeforeAll
    static void start() {
        ModelConfig slow = new ModelConfig(512, 24, 8, 8, 64, 1376, 512, 512, 10000f, 1e-5f, 0f, 0f, 0f, 0);
        ServeConfig.Builder b = ServeConfig.builder();
        b.checkpoint = Path.of("random-weights");
        b.modelName = "slow";
        b.maxWorkers = 1;
        b.queueSize = 1;
        b.requestTimeoutSeconds = 2;
        b.threadsPerWorker = 1;
        b.stream = false;
        server = GptServer.start(b.build(), ctx -> Engine.random(slow, 7,
                new SentencePieceTokenizer(ServeTestSupport.storiesTokenizer()),
                new EngineOptions(Path.of("random-weights"), null, null, "fp32", "cpu", 1, 0)), "127.0.0.1", 0,
                new GptServer.Hooks(CLOCK, GATE, GptServer.IDLE_TIMEOUT_MILLIS));
        port = server.port();
    }

    @AfterAll
    static void stop() {
        GATE.open();
        if (server != null) server.close();
    }

    @org.junit.jupiter.api.AfterEach
    void openGate() {
        GATE.open();
    }

    @BeforeEach
    void idle() throws InterruptedException {
        waitFor(() -> server.scheduler().activeGenerations() == 0 && server.scheduler().queueDepth() == 0, "idle server");
    }

    @Test
    void fullQueueAnswers503AndADisconnectedStreamFreesItsSlot() throws Exception {
        String before = get(port, "/metrics").body();
        GATE.hold();
        GATE.allow(1);  // A's first step: its prompt and first token; then the worker waits at the gate
        try (Socket a = new Socket("127.0.0.1", port)) {
            // A: a long streaming generation occupies the only worker
            a.setSoTimeout(30_000);
            byte[] body = (LONG + ",\"stream\":true}").getBytes(StandardCharsets.UTF_8);
            OutputStream out = a.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(body);
            out.flush();
            readUntil(a.getInputStream(), "data: ");
            assertEquals(1, server.scheduler().activeGenerations());

            // B waits in the queue (capacity 1) ...
            CompletableFuture<HttpResponse<String>> b = ServeTestSupport.HTTP.sendAsync(
                    HttpRequest.newBuilder(ServeTestSupport.uri(port, "/v1/completions")).timeout(Duration.ofSeconds(60))
                            .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"Hi\",\"max_tokens\":5}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            waitFor(() -> server.scheduler().queueDepth() == 1, "B queued");

            // ... so C is refused with 503 and Retry-After
            HttpResponse<String> c = post(port, "/v1/completions", "{\"prompt\":\"Hi\",\"max_tokens\":5}");
            assertEquals(503, c.statusCode(), c.body());
            assertEquals("1", c.headers().firstValue("Retry-After").orElse(""));
            assertEquals("queue_full", json(c).get("error").get("code").asText());
            HttpResponse<String> ts = post(port, "/predictions/slow", "{\"prompt\":\"Hi\",\"max_new_tokens\":5}");
            assertEquals(503, ts.statusCode());
            assertEquals("ServiceUnavailableException", json(ts).get("type").asText());

            // A's client goes away while the worker is held: the server notices the closed connection
            // and cancels A; then B gets the worker
            GATE.awaitBlocked();
            a.close();
            waitFor(() -> metric(scrape(), "gptfast_cancellations_total{reason=\"disconnect\"}")
                    - metric(before, "gptfast_cancellations_total{reason=\"disconnect\"}") == 1, "disconnect noticed");
            GATE.open();
            HttpResponse<String> rb = b.get(60, TimeUnit.SECONDS);
            assertEquals(200, rb.statusCode(), rb.body());
        }
        String after = scrape();
        assertEquals(1, metric(after, "gptfast_generations_total{finish_reason=\"cancelled\"}")
                - metric(before, "gptfast_generations_total{finish_reason=\"cancelled\"}"));
        assertEquals(2, metric(after, "gptfast_rejected_total{reason=\"queue_full\"}")
                - metric(before, "gptfast_rejected_total{reason=\"queue_full\"}"));
        double generated = metric(after, "gptfast_generated_tokens_total") - metric(before, "gptfast_generated_tokens_total");
        assertTrue(generated < 500, "the disconnected generation should stop early; generated " + generated);
        assertEquals(1, metric(after, "gptfast_cancellations_total{reason=\"disconnect\"}")
                - metric(before, "gptfast_cancellations_total{reason=\"disconnect\"}"));
        assertEquals(200, post(port, "/predictions/slow", "{\"prompt\":\"Hi\",\"max_new_tokens\":3}").statusCode());
    }

    @Test
    void aRequestPastItsDeadlineGets504AndIsCancelled() throws Exception {
        String before = scrape();
        // held at the gate, no request can finish; the deadline passes when the clock is advanced
        GATE.hold();
        CompletableFuture<HttpResponse<String>> r = postAsync("/v1/completions", LONG + "}");
        GATE.awaitBlocked();
        CLOCK.advanceSeconds(3);
        HttpResponse<String> rr = r.get(60, TimeUnit.SECONDS);
        assertEquals(504, rr.statusCode(), rr.body());
        assertEquals("request_timeout", json(rr).get("error").get("code").asText());
        assertTrue(json(rr).get("error").get("message").asText().contains("timed out after 2 s"));
        GATE.open();
        waitFor(() -> server.scheduler().activeGenerations() == 0, "the cancelled generation stops");

        GATE.hold();
        CompletableFuture<HttpResponse<String>> t = postAsync("/predictions/slow",
                "{\"prompt\":\"x\",\"max_new_tokens\":500,\"seed\":1,\"stream\":false}");
        GATE.awaitBlocked();
        CLOCK.advanceSeconds(3);
        HttpResponse<String> tr = t.get(60, TimeUnit.SECONDS);
        assertEquals(504, tr.statusCode(), tr.body());
        assertEquals("RequestTimeoutException", json(tr).get("type").asText());
        GATE.open();
        waitFor(() -> server.scheduler().activeGenerations() == 0, "the cancelled generation stops");

        // a stream that already started ends with an error line instead
        GATE.hold();
        GATE.allow(1);
        CompletableFuture<HttpResponse<java.io.InputStream>> s = ServeTestSupport.HTTP.sendAsync(
                HttpRequest.newBuilder(ServeTestSupport.uri(port, "/predictions/slow")).timeout(Duration.ofSeconds(60))
                        .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"x\",\"max_new_tokens\":500,\"seed\":1,\"stream\":true}"))
                        .build(), HttpResponse.BodyHandlers.ofInputStream());
        HttpResponse<java.io.InputStream> sr = s.get(60, TimeUnit.SECONDS);  // headers came with the first token
        assertEquals(200, sr.statusCode());
        GATE.awaitBlocked();
        CLOCK.advanceSeconds(3);
        String body = new String(sr.body().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(body.endsWith("[error: request timed out after 2 s (the request timeout)]"), body);
        GATE.open();
        waitFor(() -> server.scheduler().activeGenerations() == 0, "cancelled generations stop");
        String after = scrape();
        assertEquals(3, metric(after, "gptfast_cancellations_total{reason=\"timeout\"}")
                - metric(before, "gptfast_cancellations_total{reason=\"timeout\"}"));
        // the clock stands still, so this one cannot time out however slow the machine is
        assertEquals(200, post(port, "/predictions/slow", "{\"prompt\":\"Hi\",\"max_new_tokens\":3}").statusCode());
    }

    /** A client that disconnects from a non-streaming request cancels its generation between steps. */
    @Test
    void aNonStreamingClientThatDisconnectsCancelsItsGeneration() throws Exception {
        String before = scrape();
        GATE.hold();
        try (Socket a = new Socket("127.0.0.1", port)) {
            byte[] body = (LONG + ",\"stream\":false}").getBytes(StandardCharsets.UTF_8);
            OutputStream out = a.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(body);
            out.flush();
            GATE.awaitBlocked();
            assertEquals(1, server.scheduler().activeGenerations());
        }
        waitFor(() -> metric(scrape(), "gptfast_cancellations_total{reason=\"disconnect\"}")
                - metric(before, "gptfast_cancellations_total{reason=\"disconnect\"}") == 1, "disconnect noticed");
        GATE.open();
        waitFor(() -> server.scheduler().activeGenerations() == 0, "the cancelled generation stops");
        String after = scrape();
        assertEquals(1, metric(after, "gptfast_generations_total{finish_reason=\"cancelled\"}")
                - metric(before, "gptfast_generations_total{finish_reason=\"cancelled\"}"));
        assertTrue(metric(after, "gptfast_generated_tokens_total") - metric(before, "gptfast_generated_tokens_total") < 500);
    }

    private static CompletableFuture<HttpResponse<String>> postAsync(String path, String body) {
        return ServeTestSupport.HTTP.sendAsync(HttpRequest.newBuilder(ServeTestSupport.uri(port, path))
                .timeout(Duration.ofSeconds(60)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private static String scrape() {
        try {
            return get(port, "/metrics").body();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static void readUntil(InputStream in, String marker) throws Exception {
        StringBuilder seen = new StringBuilder();
        int c;
        while ((c = in.read()) != -1) {
            seen.append((char) c);
            if (seen.indexOf(marker) >= 0) return;
        }
        throw new AssertionError("stream ended before '" + marker + "': " + seen);
    }

    /** Polls a condition for at most 30 s (bounded; fails with the description). */
    private static void waitFor(BooleanSupplier condition, String what) throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > until) throw new AssertionError("timed out waiting for " + what);
            Thread.sleep(10);
        }
    }
}

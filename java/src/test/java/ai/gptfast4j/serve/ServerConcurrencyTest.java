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
 * The engine has seeded random weights of a deliberately larger shape (24 layers, dim 512, the
 * stories260K tokenizer): a 500-token generation takes seconds, so a request can be kept running
 * while others arrive. Nothing here asserts a duration.
 */
class ServerConcurrencyTest {
    static GptServer server;
    static int port;
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
                new EngineOptions(Path.of("random-weights"), null, null, "fp32", "cpu", 1, 0)), "127.0.0.1", 0);
        port = server.port();
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
    }

    @BeforeEach
    void idle() throws InterruptedException {
        waitFor(() -> server.scheduler().activeGenerations() == 0 && server.scheduler().queueDepth() == 0, "idle server");
    }

    @Test
    void fullQueueAnswers503AndADisconnectedStreamFreesItsSlot() throws Exception {
        String before = get(port, "/metrics").body();
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

            // A's client goes away: its generation is cancelled and B gets the worker
            a.close();
            HttpResponse<String> rb = b.get(60, TimeUnit.SECONDS);
            assertEquals(200, rb.statusCode(), rb.body());
        }
        waitFor(() -> metric(scrape(), "gptfast_cancellations_total{reason=\"disconnect\"}") == 1, "disconnect counted");
        String after = scrape();
        assertEquals(1, metric(after, "gptfast_generations_total{finish_reason=\"cancelled\"}")
                - metric(before, "gptfast_generations_total{finish_reason=\"cancelled\"}"));
        assertEquals(2, metric(after, "gptfast_rejected_total{reason=\"queue_full\"}")
                - metric(before, "gptfast_rejected_total{reason=\"queue_full\"}"));
        double generated = metric(after, "gptfast_generated_tokens_total") - metric(before, "gptfast_generated_tokens_total");
        assertTrue(generated < 500, "the disconnected generation should stop early; generated " + generated);
        assertEquals(200, post(port, "/predictions/slow", "{\"prompt\":\"Hi\",\"max_new_tokens\":3}").statusCode());
    }

    @Test
    void aRequestPastItsDeadlineGets504AndIsCancelled() throws Exception {
        String before = scrape();
        HttpResponse<String> r = post(port, "/v1/completions", LONG + "}");
        assertEquals(504, r.statusCode(), r.body());
        assertEquals("request_timeout", json(r).get("error").get("code").asText());
        assertTrue(json(r).get("error").get("message").asText().contains("timed out after 2 s"));
        // greedy decoding of these random weights never samples a stop token
        HttpResponse<String> t = post(port, "/predictions/slow", "{\"prompt\":\"x\",\"max_new_tokens\":500,\"stream\":false}");
        assertEquals(504, t.statusCode(), t.body());
        assertEquals("RequestTimeoutException", json(t).get("type").asText());
        // a stream that already started ends with an error line instead
        HttpResponse<String> s = post(port, "/predictions/slow", "{\"prompt\":\"x\",\"max_new_tokens\":500,\"stream\":true}");
        assertEquals(200, s.statusCode());
        assertTrue(s.body().endsWith("[error: request timed out after 2 s (the request timeout)]"), s.body());
        waitFor(() -> server.scheduler().activeGenerations() == 0, "cancelled generations stop");
        String after = scrape();
        assertEquals(3, metric(after, "gptfast_cancellations_total{reason=\"timeout\"}")
                - metric(before, "gptfast_cancellations_total{reason=\"timeout\"}"));
        assertEquals(200, post(port, "/predictions/slow", "{\"prompt\":\"Hi\",\"max_new_tokens\":3}").statusCode());
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

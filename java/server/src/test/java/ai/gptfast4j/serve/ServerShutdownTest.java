package ai.gptfast4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * Shutdown under load answers everyone: 60 streaming clients (half SSE, half TorchServe chunked)
 * against one worker with 4 slots, steps held by a {@link StepGate} so that exactly 4 streams are
 * running and 56 are queued when the server is closed with a 1 s shutdown timeout. The queued ones
 * get 503 JSON with Retry-After at once; the running ones, which cannot finish while held, end
 * with an error event (SSE, then [DONE]) or an error line (chunked), each followed by the normal
 * terminator. No client gets nothing.
 */
class ServerShutdownTest {
    static final int CLIENTS = 60;
    static final int SLOTS = 4;

    @Test
    void shutdownUnderLoadAnswersEveryClient() throws Exception {
        StepGate gate = new StepGate();
        ServeConfig.Builder b = ServeConfig.builder();
        b.checkpoint = ServeTestSupport.storiesPth();
        b.threadsPerWorker = 1;
        b.batchSize = SLOTS;
        b.queueSize = 64;
        b.shutdownTimeoutSeconds = 1;
        GptServer server = GptServer.start(b.build(), GptHandler::loadEngine, "127.0.0.1", 0,
                new GptServer.Hooks(System::nanoTime, gate, GptServer.IDLE_TIMEOUT_MILLIS));
        int port = server.port();
        gate.hold();
        ExecutorService pool = Executors.newFixedThreadPool(CLIENTS);
        List<Future<RawHttp.Response>> answers = new ArrayList<>();
        try {
            // no stream may end by itself before the close: SSE ones have min_tokens; /predictions has no
            // such key, so those decode greedily (a sampled end-of-text after one token freed a slot once)
            for (int i = 0; i < CLIENTS; i++) {
                boolean sse = i % 2 == 0;
                String path = sse ? "/v1/completions" : "/predictions/stories260K";
                String body = sse ? "{\"prompt\":\"Story " + i + "\",\"max_tokens\":300,\"min_tokens\":300,\"stream\":true}"
                        : "{\"prompt\":\"Story " + i + "\",\"max_new_tokens\":300,\"temperature\":0,\"stream\":true}";
                answers.add(pool.submit(() -> RawHttp.request(port, "POST", path, Map.of(), body)));
            }
            RequestScheduler s = server.scheduler();
            waitFor(() -> s.queueDepth() + s.activeGenerations() == CLIENTS, "all requests submitted");
            // two steps: whoever was admitted first gets its first token, the rest of the 4 slots fill and get theirs
            gate.allow(2);
            gate.awaitBlocked();
            assertEquals(SLOTS, s.activeGenerations());
            assertEquals(CLIENTS - SLOTS, s.queueDepth());

            Thread closer = new Thread(server::close, "test-close");
            closer.start();  // the gate stays held: the running streams cannot finish within the timeout
            waitFor(() -> answers.stream().filter(Future::isDone).count() >= CLIENTS - SLOTS, "the queued ones answered");
            // the listening socket closes before the queue is answered: no new connections while stopping
            try (java.net.Socket late = new java.net.Socket("127.0.0.1", port)) {
                throw new AssertionError("a new connection was accepted during shutdown");
            } catch (java.net.ConnectException expected) {
                // refused
            }
            closer.join(TimeUnit.SECONDS.toMillis(60));
            assertTrue(!closer.isAlive(), "close() did not return");
        } finally {
            gate.open();
            server.close();
            pool.shutdown();
        }
        int refused = 0, endedWithError = 0;
        for (int i = 0; i < CLIENTS; i++) {
            RawHttp.Response r = answers.get(i).get(60, TimeUnit.SECONDS);  // throws if a client got nothing
            boolean sse = i % 2 == 0;
            if (r.status() == 503) {
                refused++;
                assertEquals("1", r.header("Retry-After"), r.headers().toString());
                JsonNode n = ServeTestSupport.JSON.readTree(r.body());
                String code = sse ? n.get("error").get("code").asText() : n.get("type").asText();
                assertEquals(sse ? "shutting_down" : "ServiceUnavailableException", code, r.body());
                continue;
            }
            assertEquals(200, r.status(), r.body());
            if (sse) {
                assertTrue(r.body().startsWith("data: {"), r.body());
                assertTrue(r.body().endsWith("data: [DONE]\n\n"), r.body());
                String[] events = r.body().split("\n\n");
                JsonNode error = ServeTestSupport.JSON.readTree(events[events.length - 2].substring("data: ".length()));
                assertEquals("shutting_down", error.get("error").get("code").asText(), r.body());
            } else {
                assertTrue(r.body().endsWith("\n[error: the server shut down before this generation finished]"), r.body());
            }
            endedWithError++;
        }
        assertEquals(CLIENTS - SLOTS, refused);
        assertEquals(SLOTS, endedWithError);
    }

    private static void waitFor(BooleanSupplier condition, String what) throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > until) throw new AssertionError("timed out waiting for " + what);
            Thread.sleep(10);
        }
    }
}

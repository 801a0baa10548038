package ai.gptfast4j.serve;

import static ai.gptfast4j.serve.ServeTestSupport.get;
import static ai.gptfast4j.serve.ServeTestSupport.json;
import static ai.gptfast4j.serve.ServeTestSupport.post;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.Engine;
import ai.gptfast4j.EngineOptions;
import java.net.http.HttpResponse;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * A server whose one worker runs stories260K split over two tensor-parallel ranks: it answers, and
 * once a rank fails (the test hook) the failing request and every later one get 503 naming the
 * failed group, and /ping says Unhealthy, until a restart.
 */
class TensorParallelServerTest {
    private static final String REQUEST = "{\"prompt\":\"Once upon a time\",\"max_tokens\":8,\"temperature\":0}";

    @Test
    void aFailedGroupAnswers503UntilRestarted() throws Exception {
        ServeConfig.Builder b = ServeConfig.builder();
        b.checkpoint = ServeTestSupport.storiesPth();
        b.modelName = "stories";
        b.maxWorkers = 1;
        b.threadsPerWorker = 1;
        b.stream = false;
        AtomicReference<Engine> engine = new AtomicReference<>();
        try (GptServer server = GptServer.start(b.build(), ctx -> {
            engine.set(Engine.load(new EngineOptions(ServeTestSupport.storiesPth(), null, null, "fp32", "cpu", 1, 0).withTp(2)));
            return engine.get();
        }, "127.0.0.1", 0)) {
            int port = server.port();
            assertEquals(200, post(port, "/v1/completions", REQUEST).statusCode());
            assertEquals(200, get(port, "/ping").statusCode());

            engine.get().failRankForTest(1, 1, 2000);
            HttpResponse<String> failed = post(port, "/v1/completions", REQUEST);
            assertEquals(503, failed.statusCode(), failed.body());
            assertEquals("tensor_parallel_group_failed", json(failed).get("error").get("code").asText(), failed.body());
            assertTrue(failed.body().contains("tensor-parallel rank 1 failed: test hook"), failed.body());
            assertNotNull(engine.get().brokenReason());

            HttpResponse<String> later = post(port, "/v1/completions", REQUEST);
            assertEquals(503, later.statusCode(), later.body());
            assertEquals(503, get(port, "/ping").statusCode());
        }
    }
}

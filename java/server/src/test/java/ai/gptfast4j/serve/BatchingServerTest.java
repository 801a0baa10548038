package ai.gptfast4j.serve;

import static ai.gptfast4j.serve.ServeTestSupport.get;
import static ai.gptfast4j.serve.ServeTestSupport.json;
import static ai.gptfast4j.serve.ServeTestSupport.metric;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.Engine;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.GenerationParams;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The server with continuous batching (batchSize 4, one engine): 200 greedy requests from 16
 * concurrent clients over loopback, on both APIs, streamed or not, all equal the engine's direct
 * output; the management API reports the batch.
 */
class BatchingServerTest {

    @Test
    void twoHundredConcurrentRequestsThroughOneBatchedEngineAreExact() throws Exception {
        Map<String, String> expected = new LinkedHashMap<>();
        try (Engine engine = Engine.load(EngineOptions.of(ServeTestSupport.storiesPth()).withThreads(1))) {
            for (String p : new String[] {"Once upon a time", "The cat", "Lily and Ben", "One day", "Tim was sad"}) {
                expected.put(p, engine.generate(p, GenerationParams.builder().greedy().maxNewTokens(24).build(), null)
                        .completion());
            }
        }
        ServeConfig.Builder b = ServeConfig.fromYaml(ServeTestSupport.exampleYaml());
        b.batchSize = 4;
        b.threadsPerWorker = 1;
        try (GptServer server = GptServer.start(b.build(), "127.0.0.1", 0)) {
            int port = server.port();
            String describe = get(port, "/models/stories260K").body();
            assertTrue(describe.contains("\"batchSize\":4"), describe);
            String before = get(port, "/metrics").body();
            List<String> failures = ServeTestSupport.hammer(port, expected, 200, 16);
            assertTrue(failures.isEmpty(), failures.size() + " failed, e.g. " + failures.subList(0, Math.min(5, failures.size())));
            String after = get(port, "/metrics").body();
            double generations = 0;
            for (String reason : new String[] {"max_new_tokens", "stop_token"}) {
                String s = "gptfast_generations_total{finish_reason=\"" + reason + "\"}";
                generations += metric(after, s) - metric(before, s);
            }
            assertEquals(200, generations);
            assertEquals(0, json(get(port, "/models/stories260K")).findValue("jobQueueStatus").get("pendingRequests").asInt());
        }
    }
}

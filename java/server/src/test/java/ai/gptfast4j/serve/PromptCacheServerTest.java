package ai.gptfast4j.serve;

import static ai.gptfast4j.serve.ServeTestSupport.get;
import static ai.gptfast4j.serve.ServeTestSupport.json;
import static ai.gptfast4j.serve.ServeTestSupport.metric;
import static ai.gptfast4j.serve.ServeTestSupport.post;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.Engine;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.GenerationParams;
import ai.gptfast4j.GenerationResult;
import ai.gptfast4j.PromptCacheTest;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A request that continues the previous one (its prompt, its completion, more text) reuses the
 * worker's KV cache: usage.prompt_tokens_details.cached_tokens says how many prompt tokens were
 * not run again (and /metrics counts them), "cache_prompt": false turns it off, and the answer is
 * the engine's either way.
 * One worker, so that every request meets the cache the previous one left.
 */
class PromptCacheServerTest {
    static GptServer server;
    static Engine engine;
    static int port;
    static final String PROMPT = "Once upon a time";

    @BeforeAll
    static void start() {
        ServeConfig.Builder b = ServeConfig.fromYaml(ServeTestSupport.exampleYaml());
        b.maxWorkers = 1;
        b.threadsPerWorker = 1;
        server = GptServer.start(b.build(), "127.0.0.1", 0);
        port = server.port();
        engine = Engine.load(EngineOptions.of(ServeTestSupport.storiesPth()).withThreads(1));
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
        if (engine != null) engine.close();
    }

    static JsonNode complete(String prompt, String extra) throws Exception {
        String body = "{\"prompt\":\"" + prompt + "\",\"max_tokens\":30,\"temperature\":0" + extra + "}";
        var r = post(port, "/v1/completions", body);
        assertEquals(200, r.statusCode(), r.body());
        return json(r);
    }

    static int cached(JsonNode response) {
        return response.get("usage").get("prompt_tokens_details").get("cached_tokens").asInt();
    }

    static GenerationResult direct(String prompt) {
        return engine.generate(prompt, GenerationParams.builder().greedy().maxNewTokens(30).cachePrompt(false).build(),
                null);
    }

    @Test
    void aContinuedPromptReusesTheCacheAndAnswersAsTheEngineDoes() throws Exception {
        JsonNode first = complete(PROMPT, ",\"cache_prompt\":false");
        assertEquals(0, cached(first));
        GenerationResult firstDirect = direct(PROMPT);
        assertEquals(firstDirect.completion(), first.get("choices").get(0).get("text").asText());

        String next = PROMPT + firstDirect.completion() + " Then they went home.";
        int expected = PromptCacheTest.expectedKept(firstDirect.promptTokens(), firstDirect.generatedTokens(),
                engine.promptTokens(next));
        assertTrue(expected > firstDirect.promptTokens().length, "the continuation shares generated tokens: " + expected);

        String series = "gptfast_prompt_tokens_cached_total";
        double before = metric(get(port, "/metrics").body(), series);
        JsonNode second = complete(next, "");
        assertEquals(expected, cached(second));
        assertEquals(expected, metric(get(port, "/metrics").body(), series) - before);
        assertEquals(direct(next).completion(), second.get("choices").get(0).get("text").asText());

        JsonNode uncached = complete(next, ",\"cache_prompt\":false");
        assertEquals(0, cached(uncached));
        assertEquals(second.get("choices").get(0).get("text").asText(), uncached.get("choices").get(0).get("text").asText());
    }

    /** TorchServe's route reports no usage: /metrics shows what its cache_prompt did. */
    @Test
    void predictionsTakeCachePromptToo() throws Exception {
        String series = "gptfast_prompt_tokens_cached_total";
        String body = "{\"prompt\":\"" + PROMPT + " there was a cat\",\"max_new_tokens\":10,\"temperature\":0,"
                + "\"stream\":false";
        for (boolean cache : new boolean[] {false, false, true}) {  // the second run leaves the prompt in the cache
            double before = metric(get(port, "/metrics").body(), series);
            var r = post(port, "/predictions/stories260K", body + ",\"cache_prompt\":" + cache + "}");
            assertEquals(200, r.statusCode(), r.body());
            double kept = metric(get(port, "/metrics").body(), series) - before;
            if (cache) assertTrue(kept > 0, "kept " + kept);
            else assertEquals(0, kept);
        }
    }
}

package ai.gptfast4j.serve;

import static ai.gptfast4j.serve.ServeTestSupport.get;
import static ai.gptfast4j.serve.ServeTestSupport.json;
import static ai.gptfast4j.serve.ServeTestSupport.post;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.Engine;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.GenerationParams;
import ai.gptfast4j.natives.NativeLibrary;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/**
 * `serve --device auto` (deviceType: auto): each worker runs where its engine chose, and
 * TorchServe's describe says whether that is a GPU, from the engine rather than from the config.
 */
class DeviceAutoServerTest {

    @Test
    void workersRunWhereTheEngineChoseAndDescribeSaysWhere() throws Exception {
        String expected;
        String auto;
        try (Engine engine = Engine.load(EngineOptions.of(ServeTestSupport.storiesPth()).withDevice("auto").withThreads(1))) {
            auto = engine.device();
            expected = engine.generate("Once upon a time", GenerationParams.builder().greedy().maxNewTokens(16).build(),
                    null).completion();
        }
        assertTrue(auto.equals("cpu") || auto.startsWith("cuda"), "a resolved device, not " + auto);
        // The CPU natives have no CUDA: auto is the CPU there, whatever the machine has.
        if (NativeLibrary.variant().equals("cpu")) assertEquals("cpu", auto);

        ServeConfig.Builder b = ServeConfig.fromYaml(ServeTestSupport.exampleYaml());
        b.deviceType = "auto";
        b.threadsPerWorker = 1;
        try (GptServer server = GptServer.start(b.build(), "127.0.0.1", 0)) {
            int port = server.port();
            JsonNode worker = json(get(port, "/models/stories260K")).get(0).get("workers").get(0);
            String described = worker.get("engine").asText();
            assertTrue(described.contains(" device=" + auto + " "), described);
            assertEquals(auto.startsWith("cuda"), worker.get("gpu").asBoolean(), worker.toString());
            if (auto.equals("cpu")) assertFalse(worker.get("gpu").asBoolean());
            JsonNode out = json(post(port, "/predictions/stories260K",
                    "{\"prompt\":\"Once upon a time\",\"max_new_tokens\":16,\"temperature\":0,\"stream\":false}"));
            assertEquals(expected, out.get("generated_text").asText());
        }
    }
}

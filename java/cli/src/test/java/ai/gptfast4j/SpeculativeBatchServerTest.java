package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.serve.GptServer;
import ai.gptfast4j.serve.ServeConfig;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every serving option combines: a TorchServe model-config.yaml with batchSize 4, speculative
 * decoding (a 4-layer draft, speculate_k 4) answers 8 concurrent greedy requests with exactly
 * the text that `gptfast generate --temperature 0` gives for each prompt.
 */
class SpeculativeBatchServerTest {
    static final String[] PROMPTS = {"Once upon a time", "The cat", "Lily and Ben", "One day", "Tim was sad",
            "The sun was", "A little bird", "Mom said"};

    @Test
    void batchedSpeculativeServerAnswersLikeGenerate(@TempDir Path dir) throws Exception {
        Path draft = Drafts.truncated(dir, 4);
        Path yaml = dir.resolve("model-config.yaml");
        Files.writeString(yaml, "minWorkers: 1\nmaxWorkers: 1\nbatchSize: 4\nresponseTimeout: 120\n"
                + "handler:\n  model_path: " + SharedData.storiesPth().toAbsolutePath() + "\n"
                + "  model_name: tiny\n  speculative: true\n  draft_model_path: " + draft + "\n  speculate_k: 4\n"
                + "  threads: 1\n");
        List<String> expected = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        for (String p : PROMPTS) {
            CliTest.Run r = CliTest.run("generate", "--checkpoint", SharedData.storiesPth().toString(), "--prompt", p,
                    "--temperature", "0", "--max-new-tokens", "30", "--json");
            assertEquals(0, r.exitCode(), r.err());
            expected.add(json.readTree(r.out()).get("completion").asText());
        }
        ServeConfig config = ServeConfig.fromYaml(yaml).build();
        assertTrue(config.speculative() && config.batchSize() == 4 && config.speculateK() == 4, config.toString());
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        try (GptServer server = GptServer.start(config, "127.0.0.1", 0)) {
            String describe = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port()
                    + "/models/tiny")).build(), HttpResponse.BodyHandlers.ofString()).body();
            assertTrue(describe.contains("draft") && describe.contains("slots=4"), describe);
            List<CompletableFuture<HttpResponse<String>>> answers = new ArrayList<>();
            for (String p : PROMPTS) {  // all at once: 4 decode together, 4 wait and join as slots free
                answers.add(http.sendAsync(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port()
                                + "/predictions/tiny"))
                        .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"" + p
                                + "\",\"max_new_tokens\":30,\"temperature\":0,\"stream\":false}"))
                        .header("Content-Type", "application/json").build(), HttpResponse.BodyHandlers.ofString()));
            }
            for (int i = 0; i < PROMPTS.length; i++) {
                HttpResponse<String> r = answers.get(i).get(120, TimeUnit.SECONDS);
                assertEquals(200, r.statusCode(), r.body());
                assertEquals(expected.get(i), json.readTree(r.body()).get("generated_text").asText(), PROMPTS[i]);
            }
        }
    }
}

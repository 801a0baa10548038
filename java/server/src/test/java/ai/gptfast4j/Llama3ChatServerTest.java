package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.serve.GptServer;
import ai.gptfast4j.serve.ServeConfig;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An OpenAI chat request against the tiny Llama 3 model, as a Hugging Face directory whose
 * generation_config.json lists 128001/128008/128009: the server renders the llama3 template
 * (prompt ids = Meta's ChatFormat reference) and stops on 128009. To make the model emit
 * 128009 deterministically, its (untied) output head gets row 128009 = 1.5 x the row of a token
 * the model greedily picks, so 128009 outscores it; where it first does is computed directly.
 */
class Llama3ChatServerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int EOT = 128009;

    @Test
    void chatCompletionRendersTheTemplateAndStopsOnEndOfTurn(@TempDir Path dir) throws Exception {
        JsonNode reference = SharedData.jsonl("reference/llama3-chat.jsonl").get(0);
        List<ChatTemplate.Message> messages = ChatTemplateTest.messages(reference.get("messages"));
        int[] referencePrompt = SharedData.ints(reference.get("prompt_tokens"));

        // a token the unmodified model picks greedily a few steps into its answer
        int target;
        try (Engine plain = Engine.load(EngineOptions.of(SharedData.llama3Tiny().resolve("model.pth"))
                .withTokenizer(SharedData.llama3TiktokenModel()))) {
            assertArrayEquals(referencePrompt, plain.chatPromptTokens(messages));
            target = plain.generate(referencePrompt, GenerationParams.builder().greedy().maxNewTokens(4).stopTokens().build(),
                    null, new CancellationToken()).generatedTokens()[3];
        }
        Llama3Tiny.writeHfDirectory(dir, 131072, head -> {
            for (int c = 0; c < head[EOT].length; c++) head[EOT][c] = head[target][c] * 1.5f;
        });

        int[] expected;
        try (Engine engine = Engine.load(EngineOptions.of(dir))) {
            assertEquals(Defaults.MAX_SEQ_LEN_CAP, engine.contextLength(), "131072 positions, capped cache");
            assertNotNull(engine.cacheNote());
            assertTrue(Arrays.stream(engine.defaultStopTokens()).anyMatch(id -> id == EOT));
            assertArrayEquals(referencePrompt, engine.chatPromptTokens(messages));
            int[] free = engine.generate(referencePrompt, GenerationParams.builder().greedy().maxNewTokens(8).stopTokens()
                    .build(), null, new CancellationToken()).generatedTokens();
            int at = -1;
            for (int i = 0; i < free.length && at < 0; i++) if (free[i] == EOT) at = i;
            assertTrue(at >= 0, "the modified head makes the model emit 128009: " + Arrays.toString(free));
            expected = Arrays.copyOf(free, at + 1);
            // default stop tokens stop there too
            GenerationResult r = engine.generate(referencePrompt, GenerationParams.builder().greedy().maxNewTokens(8).build(),
                    null, new CancellationToken());
            assertArrayEquals(expected, r.generatedTokens());
            assertEquals(GenerationResult.StopReason.STOP_TOKEN, r.stopReason());
        }

        ServeConfig.Builder b = ServeConfig.builder();
        b.modelName = "llama3-tiny";
        b.checkpoint = dir;
        b.threadsPerWorker = 1;
        try (GptServer server = GptServer.start(b.build(), "127.0.0.1", 0)) {
            String body = JSON.writeValueAsString(java.util.Map.of("messages", reference.get("messages"),
                    "max_tokens", 8, "temperature", 0));
            HttpResponse<String> resp = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + server.port() + "/v1/chat/completions"))
                    .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, resp.statusCode(), resp.body());
            JsonNode n = JSON.readTree(resp.body());
            assertEquals("stop", n.get("choices").get(0).get("finish_reason").asText(), resp.body());
            assertEquals(referencePrompt.length, n.get("usage").get("prompt_tokens").asInt(), "the template's prompt");
            assertEquals(expected.length, n.get("usage").get("completion_tokens").asInt());
            try (Tokenizer t = Tokenizers.open(dir.resolve("tokenizer.json"))) {
                String text = t.decode(Arrays.copyOf(expected, expected.length - 1)).stripLeading();
                assertEquals(text, n.get("choices").get(0).get("message").get("content").asText());
            }
        }
    }

    @Test
    void eosTokenIdsFromGenerationConfigAndConfig(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": [128001, 128008, 128009]}");
        Files.writeString(dir.resolve("config.json"), "{\"eos_token_id\": 7}");
        assertArrayEquals(new int[] {128001, 128008, 128009, 7}, ModelFiles.eosTokenIds(dir));
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": \"x\"}");
        GptFastException e = org.junit.jupiter.api.Assertions.assertThrows(GptFastException.class,
                () -> ModelFiles.eosTokenIds(dir));
        assertTrue(e.getMessage().contains("eos_token_id"), e.getMessage());
    }
}

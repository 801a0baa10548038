package ai.gptfast4j;

import static ai.gptfast4j.CliTest.assertOneLineError;
import static ai.gptfast4j.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** tokenize and chat on the command line, with the Llama 3 tokenizer files and the tiny Llama 3. */
class Llama3CliTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void tokenizeMessagesEqualsMetasChatFormat() throws Exception {
        for (JsonNode c : SharedData.jsonl("reference/llama3-chat.jsonl")) {
            for (Path tokenizer : List.of(SharedData.llama3TiktokenModel(), SharedData.llama3TokenizerJson())) {
                CliTest.Run r = run("tokenize", "--tokenizer", tokenizer.toString(), "--messages",
                        JSON.writeValueAsString(c.get("messages")), "--chat-template", "llama3", "--json");
                assertEquals(0, r.exitCode(), r.err());
                JsonNode out = JSON.readTree(r.out());
                assertArrayEquals(SharedData.ints(c.get("prompt_tokens")), SharedData.ints(out.get("ids")), tokenizer.toString());
                assertEquals("<|begin_of_text|>", out.get("pieces").get(0).asText());
            }
        }
    }

    @Test
    void tokenizeTextIsPlainUnlessSpecialIsAllowed() throws Exception {
        String model = SharedData.llama3TiktokenModel().toString();
        int[] plain = SharedData.ints(JSON.readTree(run("tokenize", "--tokenizer", model, "--text", "<|eot_id|>", "--json").out()).get("ids"));
        assertEquals(128000, plain[0]);
        assertTrue(Arrays.stream(plain).skip(1).allMatch(id -> id < 128000), Arrays.toString(plain));
        int[] special = SharedData.ints(JSON.readTree(run("tokenize", "--tokenizer", model, "--text", "<|eot_id|>",
                "--allow-special", "--json").out()).get("ids"));
        assertArrayEquals(new int[] {128000, 128009}, special);
        CliTest.Run human = run("tokenize", "--tokenizer", model, "--text", "Hello");
        assertEquals(0, human.exitCode(), human.err());
        assertTrue(human.out().contains("128000 -> '<|begin_of_text|>'") && human.out().contains("9906 -> 'Hello'"), human.out());
    }

    @Test
    void badTokenizerAndTemplateInputIsOneLine(@TempDir Path dir) throws Exception {
        Path broken = dir.resolve("tokenizer.json");
        Files.writeString(broken, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [");
        assertOneLineError(run("tokenize", "--tokenizer", broken.toString(), "--text", "a"), 1, "malformed tokenizer.json");
        Files.writeString(broken, "{\"added_tokens\": []}");
        assertOneLineError(run("tokenize", "--tokenizer", broken.toString(), "--text", "a"), 1, "malformed tokenizer.json");
        String model = SharedData.llama3TiktokenModel().toString();
        assertOneLineError(run("tokenize", "--tokenizer", model, "--messages", "[{\"role\":"), 2, "--messages");
        Path raising = dir.resolve("raising.jinja");
        Files.writeString(raising, "{{ raise_exception('only one message, please') if messages|length > 1 else '' }}");
        assertOneLineError(run("tokenize", "--tokenizer", model, "--messages",
                "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]", "--chat-template",
                raising.toString()), 1, "only one message, please");
        Path malformed = dir.resolve("malformed.jinja");
        Files.writeString(malformed, "{% for m in messages %}");
        assertOneLineError(run("tokenize", "--tokenizer", model, "--messages", "[{\"role\":\"user\",\"content\":\"a\"}]",
                "--chat-template", malformed.toString()), 1, "malformed");
        assertOneLineError(run("tokenize", "--tokenizer", model, "--messages", "[{\"role\":\"user\",\"content\":\"a\"}]",
                "--chat-template", "llama9"), 2, "neither built in");
        // a tokenizer whose vocabulary does not fit the model
        assertOneLineError(run("generate", "--checkpoint", SharedData.storiesPth().toString(), "--tokenizer", model,
                "--prompt", "x"), 1, "tokenizer has 128256 pieces but the model's vocab_size is 512");
        Path garbage = dir.resolve("garbage.model");
        Files.write(garbage, new byte[] {(byte) 0xFF, 0x01, 0x02});
        assertOneLineError(run("tokenize", "--tokenizer", garbage.toString(), "--text", "a"), 1, "neither");
    }

    @Test
    void chatReadsLinesAndKeepsTheConversation() {
        String checkpoint = SharedData.llama3Tiny().resolve("model.pth").toString();
        String tokenizer = SharedData.llama3TiktokenModel().toString();
        InputStream savedIn = System.in;
        CliTest.Run r;
        try {
            System.setIn(new ByteArrayInputStream("Hello!\nTell me more.\n".getBytes(StandardCharsets.UTF_8)));
            r = run("chat", "--checkpoint", checkpoint, "--tokenizer", tokenizer, "--temperature", "0",
                    "--max-new-tokens", "6", "--system", "Be brief.");
        } finally {
            System.setIn(savedIn);
        }
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.err().contains("chat template: llama3"), r.err());
        // the same conversation, directly
        List<String> expected = new ArrayList<>();
        try (Engine engine = Engine.load(EngineOptions.of(Path.of(checkpoint)).withTokenizer(Path.of(tokenizer)))) {
            List<ChatTemplate.Message> conversation = new ArrayList<>(List.of(new ChatTemplate.Message("system", "Be brief.")));
            for (String line : List.of("Hello!", "Tell me more.")) {
                conversation.add(new ChatTemplate.Message("user", line));
                String answer = engine.generate(engine.chatPromptTokens(conversation),
                        GenerationParams.builder().greedy().maxNewTokens(6).build(), null, new CancellationToken()).completion();
                conversation.add(new ChatTemplate.Message("assistant", answer));
                expected.add(answer);
            }
        }
        assertEquals(String.join("\n", expected) + "\n", r.out());
    }
}

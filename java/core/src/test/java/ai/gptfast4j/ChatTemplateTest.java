package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Chat templates against Meta's ChatFormat output (../shared/reference/llama3-chat.jsonl) and bad templates. */
class ChatTemplateTest {
    /** The chat_template of Meta's Llama 3 instruct tokenizer_config.json (the 3.0 one, without tools). */
    static final String HF_LLAMA3_TEMPLATE = "{% set loop_messages = messages %}{% for message in loop_messages %}"
            + "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
            + "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

    private static Tokenizer tiktoken, json;

    @BeforeAll
    static void open() {
        tiktoken = Tokenizers.open(SharedData.llama3TiktokenModel());
        json = Tokenizers.open(SharedData.llama3TokenizerJson());
    }

    @AfterAll
    static void close() {
        tiktoken.close();
        json.close();
    }

    static List<ChatTemplate.Message> messages(JsonNode array) {
        List<ChatTemplate.Message> out = new ArrayList<>();
        for (JsonNode m : array) out.add(new ChatTemplate.Message(m.get("role").asText(), m.get("content").asText()));
        return out;
    }

    @Test
    void llama3TemplatesReproduceMetasChatFormat() {
        List<ChatTemplate> templates = List.of(ChatTemplate.builtin("llama3"), ChatTemplate.jinja("hf", HF_LLAMA3_TEMPLATE),
                ChatTemplate.forModel(null, tiktoken), ChatTemplate.forModel(null, json));
        for (JsonNode c : SharedData.jsonl("reference/llama3-chat.jsonl")) {
            int[] expected = SharedData.ints(c.get("prompt_tokens"));
            for (ChatTemplate t : templates) {
                for (Tokenizer tok : List.of(tiktoken, json)) {
                    int[] ids = t.promptTokens(tok, messages(c.get("messages")));
                    assertArrayEquals(expected, ids, t.name() + " with " + tok.getClass().getSimpleName());
                    assertEquals(c.get("text").asText(), tok.decode(ids));
                }
            }
        }
    }

    /** Whitespace control on every tag, system extraction and defaults, as Llama 3.1/3.2 templates write them. */
    static final String WHITESPACE_CONTROLLED = """
            {{- bos_token }}
            {%- if not date_string is defined %}
                {%- set date_string = "26 Jul 2024" %}
            {%- endif %}
            {%- if messages[0]['role'] == 'system' %}
                {%- set system_message = messages[0]['content']|trim %}
                {%- set messages = messages[1:] %}
            {%- else %}
                {%- set system_message = "" %}
            {%- endif %}
            {#- the system header, always #}
            {{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
            {{- "Today Date: " + date_string + "\\n\\n" }}
            {{- system_message }}
            {{- "<|eot_id|>" }}
            {%- for message in messages %}
                {%- if not (message.role == 'tool' or 'tool_calls' in message) %}
                    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
                {%- endif %}
            {%- endfor %}
            {%- if add_generation_prompt %}
                {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
            {%- endif %}
            """;

    @Test
    void whitespaceControlIsJinjas() {
        ChatTemplate t = ChatTemplate.jinja("ws", WHITESPACE_CONTROLLED);
        String text = t.render(List.of(new ChatTemplate.Message("system", " Be nice. "),
                new ChatTemplate.Message("user", "Hi")), "<|begin_of_text|>", "<|end_of_text|>");
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nToday Date: 26 Jul 2024\n\n"
                + "Be nice.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", text);
    }

    @Test
    void tokenizerConfigTemplateIsTheModels(@TempDir Path dir) throws IOException {
        new ObjectMapper().writeValue(dir.resolve("tokenizer_config.json").toFile(),
                Map.of("chat_template", "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}",
                        "bos_token", "<|begin_of_text|>"));
        ChatTemplate t = ChatTemplate.forModel(dir, tiktoken);
        assertEquals("<|begin_of_text|>[user]hi", tiktoken.decode(t.promptTokens(tiktoken, List.of(new ChatTemplate.Message("user", "hi")))));
        assertEquals(128000, t.promptTokens(tiktoken, List.of(new ChatTemplate.Message("user", "hi")))[0]);
    }

    @Test
    void plainTemplateForBaseModels() {
        try (Tokenizer stories = new SentencePieceTokenizer(SharedData.storiesTokenizer())) {
            ChatTemplate t = ChatTemplate.forModel(null, stories);
            assertEquals("plain", t.name());
            List<ChatTemplate.Message> m = List.of(new ChatTemplate.Message("system", "Be brief."),
                    new ChatTemplate.Message("user", "Tell me a story"));
            assertArrayEquals(Engine.promptTokens(stories, "Be brief.\n\nUser: Tell me a story\nAssistant:", false),
                    t.promptTokens(stories, m));
        }
    }

    @Test
    void mistralAndLlama2UseControlTokens() {
        try (Tokenizer mistral = new SentencePieceTokenizer(SharedData.mistralTokenizer());
             Tokenizer llama2 = new SentencePieceTokenizer(SharedData.llama2Tokenizer())) {
            ChatTemplate t = ChatTemplate.forModel(null, mistral);
            assertEquals("mistral", t.name());
            int[] ids = t.promptTokens(mistral, List.of(new ChatTemplate.Message("user", "Hello")));
            int inst = mistral.specialTokens().get("[INST]"), end = mistral.specialTokens().get("[/INST]");
            // mistral-common v3: BOS [INST] encode("Hello") [/INST]
            List<Integer> expected = new ArrayList<>(List.of(mistral.bosId(), inst));
            for (int id : mistral.encode("Hello")) expected.add(id);
            expected.add(end);
            assertArrayEquals(expected.stream().mapToInt(Integer::intValue).toArray(), ids);

            int[] l2 = ChatTemplate.builtin("llama2").promptTokens(llama2, List.of(new ChatTemplate.Message("user", "Hi")));
            assertEquals(1, l2[0]);
            assertEquals("[INST] Hi [/INST]", llama2.decode(l2));
        }
    }

    @Test
    void badTemplatesFailWithOneLine() {
        GptFastException malformed = assertThrows(GptFastException.class,
                () -> ChatTemplate.jinja("broken", "{% for m in messages %}{{ m.content }"));
        assertTrue(malformed.getMessage().contains("broken") && malformed.getMessage().contains("malformed"), malformed.getMessage());
        assertFalse(malformed.getMessage().contains("\n"), malformed.getMessage());

        ChatTemplate llama2 = ChatTemplate.builtin("llama2");
        GptFastException raised = assertThrows(GptFastException.class, () -> llama2.promptTokens(tiktoken,
                List.of(new ChatTemplate.Message("user", "a"), new ChatTemplate.Message("user", "b"))));
        assertEquals("chat template 'llama2' refused the messages: "
                + "Conversation roles must alternate user/assistant/user/assistant/...", raised.getMessage());

        assertThrows(GptFastException.class, () -> ChatTemplate.named("no-such-template"));
    }

    @Test
    void malformedTokenizerConfigIsReported(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": ");
        GptFastException e = assertThrows(GptFastException.class, () -> ChatTemplate.forModel(dir, tiktoken));
        assertTrue(e.getMessage().startsWith("malformed ") && e.getMessage().contains("tokenizer_config.json"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }
}

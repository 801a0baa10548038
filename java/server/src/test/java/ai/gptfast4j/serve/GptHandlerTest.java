package ai.gptfast4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.GenerationParams;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The TorchServe lifecycle in-process: initialize from the example yaml, then handle request bodies. */
class GptHandlerTest {
    static GptHandler handler;

    @BeforeAll
    static void init() {
        handler = new GptHandler();
        handler.initialize(GptHandler.Context.fromYaml(ServeTestSupport.exampleYaml()));
    }

    @AfterAll
    static void close() {
        handler.close();
    }

    private static byte[] body(String json) {
        return json.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void handleAnswersGeneratedTextLikeTheEngine() {
        String expected = handler.engine().generate("Once upon a time",
                GenerationParams.builder().greedy().maxNewTokens(30).build(), null).completion();
        List<Map<String, Object>> out = handler.handle(List.of(
                body("{\"prompt\":\"Once upon a time\",\"max_new_tokens\":30,\"temperature\":0,\"top_k\":1}"),
                body("{\"data\":\"Once upon a time\",\"max_new_tokens\":30,\"temperature\":0,\"unknown\":[1,2]}")));
        assertEquals(List.of(Map.of("generated_text", expected), Map.of("generated_text", expected)), out);
        assertTrue(expected.startsWith(", there was a little girl named Lily."), expected);
    }

    @Test
    void preprocessAppliesConfigDefaultsAndRejectsWrongTypes() {
        GenerationRequest r = handler.preprocess(List.of(body("{\"prompt\":\"Hi\"}"))).get(0);
        assertEquals(50, r.params().maxNewTokens());     // handler.max_new_tokens in the example yaml
        assertEquals(0.8f, r.params().temperature());
        assertEquals(200, r.params().topK());
        assertEquals(false, r.stream());
        for (String[] c : new String[][] {
                {"{\"prompt\": 5}", "'prompt' must be a string"},
                {"{\"prompt\":\"x\",\"max_new_tokens\":\"5\"}", "'max_new_tokens' must be an integer"},
                {"{\"prompt\":\"x\",\"max_new_tokens\":2.5}", "'max_new_tokens' must be an integer"},
                {"{\"prompt\":\"x\",\"max_new_tokens\":-3}", "'max_new_tokens' must be >= 1"},
                {"{\"prompt\":\"x\",\"max_new_tokens\":100000}", "exceeds this server's cap of 512"},
                {"{\"prompt\":\"x\",\"temperature\":\"hot\"}", "'temperature' must be a number"},
                {"{\"prompt\":\"x\",\"temperature\":-1}", "temperature must be"},
                {"{\"prompt\":\"x\",\"top_k\":true}", "'top_k' must be an integer"},
                {"{\"max_new_tokens\":5}", "missing 'prompt'"},
                {"[1,2]", "must be a JSON object"},
                {"{\"prompt\":\"x\"", "malformed JSON"},
                {"{\"prompt\":\"x\"} trailing", "malformed JSON"},
                {"", "request body is empty"}}) {
            ApiException e = assertThrows(ApiException.class, () -> handler.preprocess(List.of(body(c[0]))), c[0]);
            assertEquals(400, e.status());
            assertTrue(e.getMessage().contains(c[1]), c[0] + " -> " + e.getMessage());
        }
    }
}

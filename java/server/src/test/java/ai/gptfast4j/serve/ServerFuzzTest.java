package ai.gptfast4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Seeded HTTP fuzzing of the generation routes: 300 bodies per route, built from valid requests
 * by replacing values with values of other types and sizes, dropping and duplicating keys,
 * truncating, flipping bytes and appending junk. Every answer must be a 2xx or a 4xx (never a 5xx
 * or a dropped connection); every non-2xx must be JSON in the route's error format; a valid request
 * must still work afterwards. Deterministic (one seed) and bounded: max_new_tokens is capped at 4.
 */
class ServerFuzzTest {
    static final int BODIES_PER_ROUTE = 300;
    static GptServer server;
    static int port;

    @BeforeAll
    static void start() {
        ServeConfig.Builder b = ServeConfig.builder();
        b.checkpoint = ServeTestSupport.storiesPth();
        b.threadsPerWorker = 1;
        b.batchSize = 4;
        b.stream = false;
        b.maxNewTokensCap = 4;
        b.defaultMaxNewTokens = 4;
        b.maxBodyBytes = 16 * 1024;
        server = GptServer.start(b.build(), "127.0.0.1", 0);
        port = server.port();
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
    }

    static final Map<String, String> VALID = Map.of(
            "/predictions/stories260K", "{\"prompt\":\"Once upon a time\",\"max_new_tokens\":4,\"temperature\":0.5,"
                    + "\"top_k\":10,\"seed\":3,\"stream\":false}",
            "/v1/completions", "{\"model\":\"stories260K\",\"prompt\":\"Once\",\"max_tokens\":4,\"temperature\":1,"
                    + "\"top_p\":0.9,\"stop\":[\".\"],\"presence_penalty\":0.1,\"frequency_penalty\":0.1,\"seed\":1,"
                    + "\"stream\":false,\"min_tokens\":1,\"repetition_penalty\":1.1,\"top_k\":5}",
            "/v1/chat/completions", "{\"messages\":[{\"role\":\"system\",\"content\":\"Be kind.\"},{\"role\":\"user\","
                    + "\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]}],\"max_completion_tokens\":4,\"stream\":false,"
                    + "\"stream_options\":{\"include_usage\":true},\"n\":1,\"logprobs\":false}");

    static final String[] VALUES = {"null", "true", "false", "0", "-1", "1", "4", "5", "2.5", "-0.0", "1e308", "-1e308",
            "99999999999999999999", "\"\"", "\"x\"", "\"4\"", "[]", "[1]", "[\"a\",\"b\",\"c\",\"d\",\"e\"]", "{}",
            "{\"a\":{}}", "\"\\u0000\\ud800\"", "\"" + "é😀".repeat(50) + "\"", "[[[[[[]]]]]]", "NaN", "\"\\\\\"",
            "[{\"type\":\"image\"}]", "[{\"role\":\"user\"}]", "[{\"role\":\"user\",\"content\":null}]"};

    @Test
    void fuzzedBodiesGet2xxOr4xxJsonAndTheServerStaysUp() throws Exception {
        Random random = new Random(20261128);
        List<String> problems = new ArrayList<>();
        int answered4xx = 0;
        for (String route : List.of("/predictions/stories260K", "/v1/completions", "/v1/chat/completions")) {
            String valid = VALID.get(route);
            for (int i = 0; i < BODIES_PER_ROUTE; i++) {
                byte[] body = mutate(valid, random);
                RawHttp.Response r;
                try {
                    r = RawHttp.send(port, "POST " + route + " HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json"
                            + "\nContent-Length: " + body.length, body);
                } catch (Exception e) {
                    problems.add(route + " #" + i + ": no answer (" + e + ") to " + show(body));
                    continue;
                }
                String what = route + " #" + i + " -> " + r.status() + " " + r.body() + " for " + show(body);
                if (r.status() >= 500 || r.status() < 200) {
                    problems.add(what);
                } else if (r.status() >= 400) {
                    answered4xx++;
                    try {
                        JsonNode n = ServeTestSupport.JSON.readTree(r.body());
                        String message = route.startsWith("/v1/") ? n.get("error").get("message").asText()
                                : n.get("message").asText();
                        if (message.isBlank() || message.contains("Exception") || message.contains("\n")) problems.add(what);
                    } catch (Exception e) {
                        problems.add(what + " (not the route's JSON error format: " + e + ")");
                    }
                }
            }
            RawHttp.Response ok = RawHttp.request(port, "POST", route, Map.of(), valid);
            assertEquals(200, ok.status(), route + " after fuzzing: " + ok.body());
        }
        assertTrue(problems.isEmpty(), problems.size() + " problems, e.g. " + problems.subList(0, Math.min(5, problems.size())));
        assertTrue(answered4xx > BODIES_PER_ROUTE, "the fuzzer should mostly produce bad requests, got " + answered4xx);
    }

    /** One random change (sometimes two) of a valid JSON body. */
    static byte[] mutate(String valid, Random random) {
        String s = valid;
        int changes = 1 + (random.nextInt(4) == 0 ? 1 : 0);
        for (int c = 0; c < changes; c++) {
            switch (random.nextInt(7)) {
                case 0, 1, 2 -> {  // a value replaced
                    List<int[]> spans = valueSpans(s);
                    if (spans.isEmpty()) break;
                    int[] v = spans.get(random.nextInt(spans.size()));
                    s = s.substring(0, v[0]) + VALUES[random.nextInt(VALUES.length)] + s.substring(v[1]);
                }
                case 3 -> s = s.substring(0, random.nextInt(s.length() + 1));  // truncated
                case 4 -> {  // a key dropped or renamed
                    int k = s.indexOf('"', 1 + random.nextInt(Math.max(1, s.length() - 1)));
                    if (k > 0) s = s.substring(0, k + 1) + "_" + s.substring(k + 1);
                }
                case 5 -> {  // a byte flipped
                    byte[] b = s.getBytes(StandardCharsets.UTF_8);
                    if (b.length > 0) b[random.nextInt(b.length)] = (byte) random.nextInt(256);
                    s = new String(b, StandardCharsets.ISO_8859_1);
                    return b;
                }
                default -> s = s + (random.nextBoolean() ? "junk" : "{}");  // trailing content
            }
        }
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** [start, end) of each value after a ':' in a JSON text (scalars, and the first level of containers). */
    static List<int[]> valueSpans(String s) {
        List<int[]> out = new ArrayList<>();
        for (int i = s.indexOf(':'); i >= 0; i = s.indexOf(':', i + 1)) {
            int start = i + 1, depth = 0, end = start;
            boolean inString = false;
            for (; end < s.length(); end++) {
                char ch = s.charAt(end);
                if (inString) {
                    if (ch == '\\') end++;
                    else if (ch == '"') inString = false;
                } else if (ch == '"') {
                    inString = true;
                } else if (ch == '{' || ch == '[') {
                    depth++;
                } else if (ch == '}' || ch == ']') {
                    if (depth == 0) break;
                    depth--;
                } else if (ch == ',' && depth == 0) {
                    break;
                }
            }
            if (end > start) out.add(new int[] {start, end});
        }
        return out;
    }

    static String show(byte[] body) {
        String s = new String(body, StandardCharsets.UTF_8);
        return s.length() > 120 ? s.substring(0, 120) + "..." : s;
    }
}

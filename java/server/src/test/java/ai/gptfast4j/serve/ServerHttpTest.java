package ai.gptfast4j.serve;

import static ai.gptfast4j.serve.ServeTestSupport.get;
import static ai.gptfast4j.serve.ServeTestSupport.json;
import static ai.gptfast4j.serve.ServeTestSupport.metric;
import static ai.gptfast4j.serve.ServeTestSupport.post;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.Engine;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.GenerationParams;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import okhttp3.sse.EventSource;
import okhttp3.sse.EventSourceListener;
import okhttp3.sse.EventSources;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The server over real HTTP on loopback with stories260K (from the example model-config.yaml, two
 * workers): greedy answers equal the engine's direct output on every route, streamed or not; SSE
 * parses with OkHttp's SSE client; bad input gets 4xx JSON errors and the server stays up;
 * /metrics counts requests; 200 requests from 16 concurrent clients all complete.
 */
class ServerHttpTest {
    static GptServer server;
    static Engine engine;
    static int port;
    static final String PROMPT = "Once upon a time";
    static final String CHAT_PROMPT = "User: Tell me a story about a cat\nAssistant:";

    @BeforeAll
    static void start() {
        ServeConfig.Builder b = ServeConfig.fromYaml(ServeTestSupport.exampleYaml());
        b.maxWorkers = 2;
        b.threadsPerWorker = 1;
        b.maxBodyBytes = 64 * 1024;
        server = GptServer.start(b.build(), "127.0.0.1", 0);
        port = server.port();
        engine = Engine.load(EngineOptions.of(ServeTestSupport.storiesPth()).withThreads(1));
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
        if (engine != null) engine.close();
    }

    static String direct(String prompt, int maxNewTokens) {
        return engine.generate(prompt, GenerationParams.builder().greedy().maxNewTokens(maxNewTokens).build(), null)
                .completion();
    }

    @Test
    void torchServeNonStreamingEqualsTheEngine() throws Exception {
        HttpResponse<String> r = post(port, "/predictions/stories260K",
                "{\"prompt\":\"" + PROMPT + "\",\"max_new_tokens\":60,\"temperature\":0}");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(direct(PROMPT, 60), json(r).get("generated_text").asText());
        assertEquals(direct(PROMPT, 60), json(post(port, "/predictions/stories260K",
                "{\"data\":\"" + PROMPT + "\",\"max_new_tokens\":60,\"top_k\":1}")).get("generated_text").asText());
    }

    @Test
    void torchServeStreamingIsChunkedTokenByToken() throws Exception {
        String body = "{\"prompt\":\"" + PROMPT + "\",\"max_new_tokens\":60,\"temperature\":0,\"stream\":true}";
        List<String> chunks = new ArrayList<>();
        String headers = rawChunkedPost("/predictions/stories260K", body, chunks);
        assertTrue(headers.startsWith("HTTP/1.1 200"), headers);
        assertTrue(headers.toLowerCase().contains("transfer-encoding: chunked"), headers);
        assertTrue(chunks.size() > 20, "expected one chunk per token, got " + chunks.size());
        assertEquals(direct(PROMPT, 60), String.join("", chunks));
    }

    @Test
    void openAiCompletionsEqualTheEngine() throws Exception {
        HttpResponse<String> r = post(port, "/v1/completions",
                "{\"model\":\"stories260K\",\"prompt\":\"" + PROMPT + "\",\"max_tokens\":40,\"temperature\":0}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode n = json(r);
        assertEquals("text_completion", n.get("object").asText());
        assertEquals(direct(PROMPT, 40), n.get("choices").get(0).get("text").asText());
        assertEquals("length", n.get("choices").get(0).get("finish_reason").asText());
        assertEquals(40, n.get("usage").get("completion_tokens").asInt());
        assertEquals(engine.promptTokens(PROMPT).length, n.get("usage").get("prompt_tokens").asInt());

        JsonNode chat = json(post(port, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\","
                + "\"content\":\"Tell me a story about a cat\"}],\"max_tokens\":30,\"temperature\":0}"));
        assertEquals("chat.completion", chat.get("object").asText());
        JsonNode message = chat.get("choices").get(0).get("message");
        assertEquals("assistant", message.get("role").asText());
        assertEquals(direct(CHAT_PROMPT, 30).stripLeading(), message.get("content").asText());
    }

    @Test
    void sseStreamsParseWithOkHttpAndEqualTheEngine() throws Exception {
        List<String> events = sse("/v1/completions",
                "{\"prompt\":\"" + PROMPT + "\",\"max_tokens\":40,\"temperature\":0,\"stream\":true,"
                        + "\"stream_options\":{\"include_usage\":true}}");
        assertEquals("[DONE]", events.get(events.size() - 1));
        StringBuilder text = new StringBuilder();
        String finish = null;
        int usage = -1;
        for (String e : events.subList(0, events.size() - 1)) {
            JsonNode n = ServeTestSupport.JSON.readTree(e);
            assertEquals("text_completion", n.get("object").asText());
            if (n.get("choices").isEmpty()) {
                usage = n.get("usage").get("completion_tokens").asInt();
                continue;
            }
            text.append(n.get("choices").get(0).get("text").asText());
            if (!n.get("choices").get(0).get("finish_reason").isNull()) finish = n.get("choices").get(0).get("finish_reason").asText();
        }
        assertTrue(events.size() > 20, "one event per token expected, got " + events.size());
        assertEquals(direct(PROMPT, 40), text.toString());
        assertEquals("length", finish);
        assertEquals(40, usage);

        List<String> chat = sse("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":"
                + "\"Tell me a story about a cat\"}],\"max_tokens\":30,\"temperature\":0,\"stream\":true}");
        assertEquals("[DONE]", chat.get(chat.size() - 1));
        StringBuilder content = new StringBuilder();
        for (String e : chat.subList(0, chat.size() - 1)) {
            JsonNode delta = ServeTestSupport.JSON.readTree(e).get("choices").get(0).get("delta");
            if (delta.has("content")) content.append(delta.get("content").asText());
        }
        assertEquals("assistant", ServeTestSupport.JSON.readTree(chat.get(0)).get("choices").get(0).get("delta")
                .get("role").asText());
        assertEquals(direct(CHAT_PROMPT, 30).stripLeading(), content.toString());
    }

    @Test
    void badInputGetsA4xxJsonErrorNamingTheProblemAndTheServerStaysUp() throws Exception {
        String big = "{\"prompt\":\"" + "a".repeat(100_000) + "\"}";
        Object[][] cases = {
                {"/predictions/stories260K", "{\"prompt\":", 400, "malformed JSON"},
                {"/predictions/stories260K", "not json", 400, "malformed JSON"},
                {"/predictions/stories260K", "", 400, "request body is empty"},
                {"/predictions/stories260K", "[\"prompt\"]", 400, "must be a JSON object"},
                {"/predictions/stories260K", "{\"prompt\":42}", 400, "'prompt' must be a string"},
                {"/predictions/stories260K", "{\"prompt\":\"x\",\"max_new_tokens\":\"20\"}", 400, "'max_new_tokens' must be an integer"},
                {"/predictions/stories260K", "{\"prompt\":\"x\",\"temperature\":[1]}", 400, "'temperature' must be a number"},
                {"/predictions/stories260K", "{\"prompt\":\"x\",\"max_new_tokens\":-1}", 400, "'max_new_tokens' must be >= 1"},
                {"/predictions/stories260K", "{\"prompt\":\"x\",\"max_new_tokens\":99999999}", 400, "cap of 512"},
                {"/predictions/stories260K", "{\"prompt\":\"x\",\"max_new_tokens\":99999999999999}", 400, "out of range"},
                {"/predictions/gpt-5", "{\"prompt\":\"x\"}", 404, "model 'gpt-5' not found"},
                {"/predictions/stories260K", big, 413, "over the limit of 65536 bytes"},
                {"/predictions/stories260K", "{\"prompt\":\"" + "Once upon a time ".repeat(200) + "\"}", 400, "context length"},
                {"/v1/completions", "{\"prompt\":", 400, "malformed JSON"},
                {"/v1/completions", "", 400, "request body is empty"},
                {"/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":-5}", 400, "'max_tokens' must be >= 1"},
                {"/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":1e9}", 400, "'max_tokens' must be an integer"},
                {"/v1/completions", "{\"prompt\":\"x\",\"model\":\"gpt-4\"}", 404, "model 'gpt-4' not found"},
                {"/v1/completions", "{\"prompt\":[1,2,3]}", 400, "'prompt' must be a string"},
                {"/v1/completions", "{\"prompt\":\"x\",\"n\":2}", 400, "'n' must be 1"},
                {"/v1/completions", "{\"prompt\":\"x\",\"stream\":\"yes\"}", 400, "'stream' must be true or false"},
                {"/v1/completions", "{\"prompt\":\"x\",\"top_p\":0}", 400, "top_p"},
                {"/v1/completions", big, 413, "over the limit"},
                {"/v1/chat/completions", "{\"messages\":[]}", 400, "'messages' must not be empty"},
                {"/v1/chat/completions", "{\"messages\":\"hi\"}", 400, "'messages' must be an array"},
                {"/v1/chat/completions", "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 400, "role"},
                {"/v1/nothing", "{}", 404, "no route"},
        };
        for (Object[] c : cases) {
            HttpResponse<String> r = post(port, (String) c[0], (String) c[1]);
            String what = c[0] + " " + abbreviate((String) c[1]) + " -> " + r.statusCode() + " " + r.body();
            assertEquals(c[2], r.statusCode(), what);
            assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"), what);
            JsonNode n = json(r);
            String message = ((String) c[0]).startsWith("/v1/") ? n.get("error").get("message").asText()
                    : n.get("message").asText();
            if (!((String) c[0]).startsWith("/v1/")) assertEquals(c[2], n.get("code").asInt(), what);
            assertTrue(message.contains((String) c[3]), what);
            // still up: a valid request right after each bad one
            HttpResponse<String> ok = post(port, "/predictions/stories260K", "{\"prompt\":\"Hi\",\"max_new_tokens\":3}");
            assertEquals(200, ok.statusCode(), "after " + what + ": " + ok.body());
        }
    }

    private static String abbreviate(String s) {
        return s.length() > 60 ? s.substring(0, 60) + "..." : s;
    }

    @Test
    void managementAndModelListings() throws Exception {
        assertEquals("Healthy", json(get(port, "/ping")).get("status").asText());
        JsonNode models = json(get(port, "/models"));
        assertEquals("stories260K", models.get("models").get(0).get("modelName").asText());
        JsonNode d = json(get(port, "/models/stories260K")).get(0);
        assertEquals(2, d.get("maxWorkers").asInt());
        assertEquals(2, d.get("workers").size());
        assertEquals(404, get(port, "/models/other").statusCode());
        JsonNode v1 = json(get(port, "/v1/models"));
        assertEquals("list", v1.get("object").asText());
        assertEquals("stories260K", v1.get("data").get(0).get("id").asText());
    }

    @Test
    void metricsCountRequestsTokensAndLatency() throws Exception {
        String before = get(port, "/metrics").body();
        String ts = "gptfast_http_requests_total{method=\"POST\",route=\"/predictions/{model}\",status=\"200\"}";
        String oa = "gptfast_http_requests_total{method=\"POST\",route=\"/v1/completions\",status=\"200\"}";
        String bad = "gptfast_http_requests_total{method=\"POST\",route=\"/v1/completions\",status=\"400\"}";
        String hist = "gptfast_http_request_duration_seconds_count{route=\"/v1/completions\",status=\"200\"}";
        String tokens = "gptfast_generated_tokens_total";
        post(port, "/predictions/stories260K", "{\"prompt\":\"Hi\",\"max_new_tokens\":7,\"temperature\":0,\"top_k\":1}");
        post(port, "/predictions/stories260K", "{\"prompt\":\"Hi\",\"max_new_tokens\":7,\"stream\":true}");
        post(port, "/v1/completions", "{\"prompt\":\"Hi\",\"max_tokens\":5,\"min_tokens\":5}");
        post(port, "/v1/completions", "{\"prompt\":\"Hi\",\"max_tokens\":\"5\"}");
        HttpResponse<String> scrape = get(port, "/metrics");
        assertEquals(200, scrape.statusCode());
        assertTrue(scrape.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"));
        String after = scrape.body();
        assertEquals(2, metric(after, ts) - metric(before, ts), after);
        assertEquals(1, metric(after, oa) - metric(before, oa));
        assertEquals(1, metric(after, bad) - metric(before, bad));
        assertEquals(1, metric(after, hist) - metric(before, hist));
        assertTrue(metric(after, tokens) - metric(before, tokens) >= 7, "the 5-token request alone adds 5");
        for (String series : new String[] {"gptfast_queue_depth", "gptfast_active_generations", "gptfast_workers",
                "gptfast_time_to_first_token_seconds_bucket{le=\"0.1\"}", "gptfast_queue_wait_seconds_count"}) {
            assertTrue(after.contains(series), "missing " + series);
        }
        assertEquals(2, metric(after, "gptfast_workers"));
    }

    @Test
    void twoHundredRequestsFromSixteenClientsAllComplete() throws Exception {
        String[] prompts = {"Once upon a time", "The cat", "Lily and Ben", "One day"};
        Map<String, String> expected = new ConcurrentHashMap<>();
        for (String p : prompts) expected.put(p, direct(p, 24));
        String before = get(port, "/metrics").body();
        List<String> failures = ServeTestSupport.hammer(port, expected, 200, 16);
        assertTrue(failures.isEmpty(), failures.size() + " failed, e.g. " + failures.subList(0, Math.min(5, failures.size())));
        String after = get(port, "/metrics").body();
        // counted by the server, independently of the client's list: 200 answers with status 200
        double answered = 0;
        for (String route : new String[] {"/predictions/{model}", "/v1/completions"}) {
            String s = "gptfast_http_requests_total{method=\"POST\",route=\"" + route + "\",status=\"200\"}";
            answered += metric(after, s) - metric(before, s);
        }
        assertEquals(200, answered);
        double generations = 0;
        for (String reason : new String[] {"max_new_tokens", "stop_token"}) {
            String s = "gptfast_generations_total{finish_reason=\"" + reason + "\"}";
            generations += metric(after, s) - metric(before, s);
        }
        assertEquals(200, generations);
        assertEquals(0, metric(after, "gptfast_queue_depth"));
    }

    /** SSE events' data fields, read with OkHttp's EventSource (a standard SSE client). */
    static List<String> sse(String path, String body) throws Exception {
        OkHttpClient client = new OkHttpClient.Builder().readTimeout(60, TimeUnit.SECONDS).build();
        Request request = new Request.Builder().url("http://127.0.0.1:" + port + path)
                .post(RequestBody.create(body, MediaType.get("application/json"))).build();
        List<String> events = new CopyOnWriteArrayList<>();
        CompletableFuture<Void> done = new CompletableFuture<>();
        EventSources.createFactory(client).newEventSource(request, new EventSourceListener() {
            @Override public void onOpen(EventSource es, Response response) {
                if (!response.header("Content-Type", "").startsWith("text/event-stream")) {
                    done.completeExceptionally(new AssertionError("not SSE: " + response.header("Content-Type")));
                }
            }
            @Override public void onEvent(EventSource es, String id, String type, String data) { events.add(data); }
            @Override public void onClosed(EventSource es) { done.complete(null); }
            @Override public void onFailure(EventSource es, Throwable t, Response response) {
                done.completeExceptionally(new AssertionError("SSE failed: " + t + " " + response, t));
            }
        });
        done.get(60, TimeUnit.SECONDS);
        client.dispatcher().executorService().shutdown();
        client.connectionPool().evictAll();
        assertFalse(events.isEmpty());
        return events;
    }

    /** POSTs over a raw socket and decodes the chunked body chunk by chunk; returns the headers. */
    static String rawChunkedPost(String path, String body, List<String> chunks) throws Exception {
        byte[] payload = body.getBytes(StandardCharsets.UTF_8);
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(60_000);
            OutputStream out = s.getOutputStream();
            out.write(("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + payload.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(payload);
            out.flush();
            InputStream in = s.getInputStream();
            StringBuilder headers = new StringBuilder();
            String line;
            while (!(line = readLine(in)).isEmpty()) headers.append(line).append('\n');
            while (true) {
                int size = Integer.parseInt(readLine(in).split(";")[0].trim(), 16);
                if (size == 0) break;
                chunks.add(new String(in.readNBytes(size), StandardCharsets.UTF_8));
                readLine(in);
            }
            return headers.toString();
        }
    }

    private static String readLine(InputStream in) throws Exception {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int c;
        while ((c = in.read()) != -1 && c != '\n') if (c != '\r') b.write(c);
        return b.toString(StandardCharsets.UTF_8);
    }
}

package ai.gptfast4j.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Access control and the one error format, over raw HTTP on loopback (stories260K, an API key, one
 * CORS origin, one extra host name): 401 without the key in each API's format, /ping and /metrics
 * open; 403 for foreign origins and non-loopback Host names; CORS headers and preflights only for
 * the listed origin; Jetty's own errors (400, 414, 431), wrong methods (405 with Allow) and a
 * stalled body (408) answered as JSON; no paths or pids in the management answers.
 */
class ServerHardeningTest {
    static final String KEY = "test-key-0123";
    static final String ORIGIN = "http://app.example";
    static GptServer server;
    static int port;

    @BeforeAll
    static void start() {
        ServeConfig.Builder b = ServeConfig.builder();
        b.checkpoint = ServeTestSupport.storiesPth();
        b.threadsPerWorker = 1;
        b.stream = false;
        b.maxSeqLen = 70;
        b.apiKeys = List.of("other-key", KEY);
        b.corsOrigins = List.of(ORIGIN);
        b.allowedHosts = List.of("gptfast.internal");
        // bodies that stall are cut after 1 s (the server's own timeout; no race: the body never comes)
        server = GptServer.start(b.build(), GptHandler::loadEngine, "127.0.0.1", 0,
                new GptServer.Hooks(System::nanoTime, () -> { }, 1000));
        port = server.port();
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
    }

    static Map<String, String> auth() {
        return Map.of("Authorization", "Bearer " + KEY);
    }

    static JsonNode json(RawHttp.Response r) throws Exception {
        assertTrue(r.header("Content-Type") != null && r.header("Content-Type").startsWith("application/json"),
                r.status() + " " + r.headers() + " " + r.body());
        return ServeTestSupport.JSON.readTree(r.body());
    }

    static final String COMPLETION = "{\"prompt\":\"Once\",\"max_tokens\":3}";
    static final String PREDICTION = "{\"prompt\":\"Once\",\"max_new_tokens\":3}";

    @Test
    void withoutTheKeyEveryRouteButPingAndMetricsIs401InItsApisFormat() throws Exception {
        RawHttp.Response oa = RawHttp.request(port, "POST", "/v1/completions", Map.of(), COMPLETION);
        assertEquals(401, oa.status(), oa.body());
        assertEquals("Bearer", oa.header("WWW-Authenticate"));
        assertEquals("invalid_api_key", json(oa).get("error").get("code").asText());
        RawHttp.Response ts = RawHttp.request(port, "POST", "/predictions/stories260K",
                Map.of("Authorization", "Bearer wrong"), PREDICTION);
        assertEquals(401, ts.status());
        assertEquals(401, json(ts).get("code").asInt());
        assertEquals("UnauthorizedException", json(ts).get("type").asText());
        for (String path : new String[] {"/models", "/models/stories260K", "/v1/models", "/v1/nothing"}) {
            assertEquals(401, RawHttp.request(port, "GET", path, Map.of("Authorization", KEY), null).status(), path);
        }
        assertEquals(401, RawHttp.request(port, "GET", "/v1/models", Map.of("Authorization", "Bearer " + KEY + "x"),
                null).status());
        assertEquals(200, RawHttp.request(port, "GET", "/ping", Map.of(), null).status());
        assertEquals(200, RawHttp.request(port, "GET", "/metrics", Map.of(), null).status());

        assertEquals(200, RawHttp.request(port, "POST", "/v1/completions", auth(), COMPLETION).status());
        assertEquals(200, RawHttp.request(port, "POST", "/predictions/stories260K",
                Map.of("Authorization", "bearer other-key"), PREDICTION).status());
        assertFalse(RawHttp.request(port, "GET", "/metrics", Map.of(), null).body().contains(KEY));
    }

    @Test
    void metricsAuthPutsMetricsBehindTheKeyAndAnyOriginStarAllowsEveryOrigin() throws Exception {
        ServeConfig.Builder b = ServeConfig.builder();
        b.checkpoint = ServeTestSupport.storiesPth();
        b.threadsPerWorker = 1;
        b.apiKeys = List.of(KEY);
        b.metricsAuth = true;
        b.corsOrigins = List.of("*");
        try (GptServer s = GptServer.start(b.build(), "127.0.0.1", 0)) {
            assertEquals(401, RawHttp.request(s.port(), "GET", "/metrics", Map.of(), null).status());
            assertEquals(200, RawHttp.request(s.port(), "GET", "/metrics", auth(), null).status());
            assertEquals(200, RawHttp.request(s.port(), "GET", "/ping", Map.of(), null).status());
            RawHttp.Response any = RawHttp.request(s.port(), "GET", "/v1/models",
                    Map.of("Authorization", "Bearer " + KEY, "Origin", "http://anything.example"), null);
            assertEquals(200, any.status());
            assertEquals("*", any.header("Access-Control-Allow-Origin"));
        }
    }

    @Test
    void foreignOriginsAndHostsGet403AndTheListedOriginGetsCors() throws Exception {
        RawHttp.Response evil = RawHttp.request(port, "POST", "/v1/completions",
                Map.of("Authorization", "Bearer " + KEY, "Origin", "http://evil.example"), COMPLETION);
        assertEquals(403, evil.status(), evil.body());
        assertEquals("origin_not_allowed", json(evil).get("error").get("code").asText());
        assertNull(evil.header("Access-Control-Allow-Origin"));
        // no key needed to be refused: a page cannot use the server even when it guesses nothing
        RawHttp.Response evilTs = RawHttp.request(port, "POST", "/predictions/stories260K",
                Map.of("Origin", "null"), PREDICTION);
        assertEquals(403, evilTs.status());
        assertEquals("ForbiddenException", json(evilTs).get("type").asText());

        RawHttp.Response ok = RawHttp.request(port, "POST", "/v1/completions",
                Map.of("Authorization", "Bearer " + KEY, "Origin", ORIGIN), COMPLETION);
        assertEquals(200, ok.status(), ok.body());
        assertEquals(ORIGIN, ok.header("Access-Control-Allow-Origin"));
        RawHttp.Response preflight = RawHttp.request(port, "OPTIONS", "/v1/completions",
                Map.of("Origin", ORIGIN, "Access-Control-Request-Method", "POST",
                        "Access-Control-Request-Headers", "authorization, content-type"), null);
        assertEquals(204, preflight.status(), preflight.body());
        assertEquals(ORIGIN, preflight.header("Access-Control-Allow-Origin"));
        assertTrue(preflight.header("Access-Control-Allow-Headers").contains("Authorization"));
        assertEquals(403, RawHttp.request(port, "OPTIONS", "/v1/completions", Map.of("Origin", "http://evil.example",
                "Access-Control-Request-Method", "POST"), null).status());

        // DNS rebinding: a foreign name that resolves to 127.0.0.1 still says so in Host
        RawHttp.Response rebound = RawHttp.request(port, "GET", "/v1/models",
                Map.of("Host", "attacker.example:" + port, "Authorization", "Bearer " + KEY), null);
        assertEquals(403, rebound.status());
        assertEquals("host_not_allowed", json(rebound).get("error").get("code").asText());
        for (String host : new String[] {"localhost:" + port, "127.0.0.1", "[::1]:" + port, "gptfast.internal:" + port}) {
            assertEquals(200, RawHttp.request(port, "GET", "/v1/models", Map.of("Host", host,
                    "Authorization", "Bearer " + KEY), null).status(), host);
        }
    }

    @Test
    void jettysOwnErrorsAndWrongMethodsAreJson() throws Exception {
        RawHttp.Response uri = RawHttp.request(port, "GET", "/v1/models?q=" + "a".repeat(20_000), auth(), null);
        assertEquals(414, uri.status());
        assertEquals(414, json(uri).get("code").asInt());
        assertEquals("http_414", json(uri).get("error").get("code").asText());
        RawHttp.Response headers = RawHttp.request(port, "GET", "/v1/models",
                Map.of("Authorization", "Bearer " + KEY, "X-Big", "b".repeat(20_000)), null);
        assertEquals(431, headers.status());
        assertTrue(json(headers).get("error").get("message").asText().contains("headers too large"));
        RawHttp.Response garbage = RawHttp.send(port, "GARBAGE", null);
        assertEquals(400, garbage.status());
        assertEquals(400, json(garbage).get("code").asInt());

        RawHttp.Response get = RawHttp.request(port, "GET", "/v1/completions", auth(), null);
        assertEquals(405, get.status(), get.body());
        assertEquals("POST", get.header("Allow"));
        assertEquals("http_405", json(get).get("error").get("code").asText());
        RawHttp.Response delete = RawHttp.request(port, "DELETE", "/predictions/stories260K", auth(), null);
        assertEquals(405, delete.status());
        assertEquals("MethodNotAllowedException", json(delete).get("type").asText());
        RawHttp.Response none = RawHttp.request(port, "GET", "/nothing", auth(), null);
        assertEquals(404, none.status());
        assertEquals("NotFoundException", json(none).get("type").asText());
    }

    @Test
    void aBodyThatDoesNotArriveGets408() throws Exception {
        RawHttp.Response r = RawHttp.send(port, "POST /v1/completions HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer "
                + KEY + "\nContent-Type: application/json\nContent-Length: 100", "{\"prompt\":".getBytes(StandardCharsets.UTF_8));
        assertEquals(408, r.status(), r.body());
        JsonNode error = json(r).get("error");
        assertEquals("request_timeout", error.get("code").asText());
        assertFalse(error.get("message").asText().contains("Exception"), error.toString());
    }

    @Test
    void managementAnswersShowNamesAndSettingsOnly() throws Exception {
        String checkpointDir = ServeTestSupport.storiesPth().getParent().toString();
        for (String path : new String[] {"/models", "/models/stories260K", "/v1/models"}) {
            RawHttp.Response r = RawHttp.request(port, "GET", path, auth(), null);
            assertEquals(200, r.status());
            assertFalse(r.body().contains(checkpointDir) || r.body().contains("model.pth"), path + ": " + r.body());
            assertFalse(r.body().contains("\"pid\"") || r.body().contains(Long.toString(ProcessHandle.current().pid())),
                    path + ": " + r.body());
        }
        // --max-seq-len reaches the engines: the KV cache is 70 positions
        JsonNode worker = json(RawHttp.request(port, "GET", "/models/stories260K", auth(), null)).get(0).get("workers").get(0);
        assertTrue(worker.get("engine").asText().contains("cache=70"), worker.toString());
    }

    /** An empty prompt is BOS alone: the model writes from the start of a document (as the README says). */
    @Test
    void anEmptyPromptGeneratesFromBos() throws Exception {
        RawHttp.Response oa = RawHttp.request(port, "POST", "/v1/completions", auth(),
                "{\"prompt\":\"\",\"max_tokens\":4,\"temperature\":0}");
        assertEquals(200, oa.status(), oa.body());
        assertEquals(1, json(oa).get("usage").get("prompt_tokens").asInt());
        assertEquals(4, json(oa).get("usage").get("completion_tokens").asInt());
        RawHttp.Response ts = RawHttp.request(port, "POST", "/predictions/stories260K", auth(),
                "{\"prompt\":\"\",\"max_new_tokens\":4,\"temperature\":0}");
        assertEquals(200, ts.status(), ts.body());
        assertFalse(json(ts).get("generated_text").asText().isEmpty());
    }
}

package ai.gptfast4j.serve;

import ai.gptfast4j.SharedData;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.Future;
import java.util.concurrent.Executors;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.Map;
import java.util.List;
import java.util.ArrayList;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/** Shared data paths and a loopback HTTP client for the server tests. */
final class ServeTestSupport {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();

    private ServeTestSupport() {}

    static Path shared() { return SharedData.root(); }

    static Path storiesPth() { return SharedData.storiesPth(); }
    static Path storiesTokenizer() { return shared().resolve("models/stories260K/tokenizer.model"); }

    /** The repository's example config (models/stories260K/model-config.yaml); tests run in java/server/. */
    static Path exampleYaml() {
        Path p = Path.of("../../models/stories260K/model-config.yaml").toAbsolutePath().normalize();
        if (!Files.isRegularFile(p)) p = Path.of("models/stories260K/model-config.yaml").toAbsolutePath();
        return p;
    }

    static URI uri(int port, String path) {
        return URI.create("http://127.0.0.1:" + port + path);
    }

    static HttpResponse<String> post(int port, String path, String body) throws IOException, InterruptedException {
        return HTTP.send(HttpRequest.newBuilder(uri(port, path)).timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> get(int port, String path) throws IOException, InterruptedException {
        return HTTP.send(HttpRequest.newBuilder(uri(port, path)).timeout(Duration.ofSeconds(60)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    static JsonNode json(HttpResponse<String> r) throws IOException {
        return JSON.readTree(r.body());
    }

    /** The value of a metric line (name with labels exactly as exposed), 0 if absent. */
    static double metric(String scrape, String series) {
        for (String line : scrape.split("\n")) {
            if (line.startsWith(series + " ")) return Double.parseDouble(line.substring(series.length() + 1).trim());
        }
        return 0;
    }

    /**
     * Sends `requests` greedy requests (24 new tokens; TorchServe JSON, TorchServe chunked and OpenAI
     * routes in turn) from `clients` concurrent clients, cycling over the prompts of `expected`;
     * returns one line per request that failed or whose text differs from `expected`.
     */
    static List<String> hammer(int port, Map<String, String> expected, int requests, int clients) throws Exception {
        String[] prompts = expected.keySet().toArray(new String[0]);
        AtomicInteger next = new AtomicInteger();
        List<String> failures = new CopyOnWriteArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        List<Future<?>> futures = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            futures.add(pool.submit(() -> {
                int i;
                while ((i = next.getAndIncrement()) < requests) {
                    String p = prompts[i % prompts.length];
                    try {
                        String text;
                        if (i % 2 == 0) {
                            HttpResponse<String> r = post(port, "/predictions/stories260K", "{\"prompt\":\"" + p
                                    + "\",\"max_new_tokens\":24,\"temperature\":0,\"stream\":" + (i % 4 == 0) + "}");
                            if (r.statusCode() != 200) { failures.add(i + ": " + r.statusCode() + " " + r.body()); continue; }
                            text = i % 4 == 0 ? r.body() : json(r).get("generated_text").asText();
                        } else {
                            HttpResponse<String> r = post(port, "/v1/completions", "{\"prompt\":\"" + p
                                    + "\",\"max_tokens\":24,\"temperature\":0}");
                            if (r.statusCode() != 200) { failures.add(i + ": " + r.statusCode() + " " + r.body()); continue; }
                            text = json(r).get("choices").get(0).get("text").asText();
                        }
                        if (!text.equals(expected.get(p))) failures.add(i + ": wrong text " + text);
                    } catch (Exception e) {
                        failures.add(i + ": " + e);
                    }
                }
            }));
        }
        for (Future<?> f : futures) f.get(120, TimeUnit.SECONDS);
        pool.shutdown();
        return failures;
    }
}

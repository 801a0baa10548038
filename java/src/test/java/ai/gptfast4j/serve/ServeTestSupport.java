package ai.gptfast4j.serve;

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

    static Path shared() {
        Path p = Path.of(System.getProperty("gptfast.shared", "../../shared")).toAbsolutePath().normalize();
        if (!Files.isDirectory(p)) throw new IllegalStateException("shared test data not found at " + p);
        return p;
    }

    static Path storiesPth() { return shared().resolve("models/stories260K/model.pth"); }
    static Path storiesTokenizer() { return shared().resolve("models/stories260K/tokenizer.model"); }

    /** The repository's example config (models/stories260K/model-config.yaml); tests run in java/. */
    static Path exampleYaml() {
        Path p = Path.of("../models/stories260K/model-config.yaml").toAbsolutePath().normalize();
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
}

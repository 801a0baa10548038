package ai.gptfast4j.cli;

import ai.gptfast4j.serve.GptServer;
import ai.gptfast4j.serve.ServeConfig;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code gptfast serve-bench}: starts the server on an ephemeral loopback port and drives it with
 * N concurrent clients (java.net.http) sending a bounded number of non-streaming
 * /v1/completions requests; prints requests/s, generated tokens/s and latency percentiles per
 * client count. Each request asks for exactly --max-new-tokens tokens (min_tokens = max_tokens).
 */
@Command(name = "serve-bench", mixinStandardHelpOptions = true,
        description = "Benchmark the HTTP server on loopback with 1, 4, 16 concurrent clients; prints a table.")
final class ServeBenchCommand implements Callable<Integer> {
    @Mixin ModelOptionsMixin model;

    @Option(names = "--workers", defaultValue = "1", description = "engines in the server (default: ${DEFAULT-VALUE})")
    int workers;

    @Option(names = "--batch-size", defaultValue = "1", description = "sequences each worker's engine decodes together (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = "--clients", split = ",", defaultValue = "1,4,16", description = "client counts (default: ${DEFAULT-VALUE})")
    List<Integer> clients;

    @Option(names = "--requests", defaultValue = "200", description = "requests per client count (default: ${DEFAULT-VALUE})")
    int requests;

    @Option(names = "--max-new-tokens", defaultValue = "64", description = "tokens per request (default: ${DEFAULT-VALUE})")
    int maxNewTokens;

    @Option(names = "--temperature", defaultValue = "0.8", description = "default: ${DEFAULT-VALUE}")
    double temperature;

    @Option(names = "--max-seconds", defaultValue = "300", description = "stop sending after this long per client count (default: ${DEFAULT-VALUE})")
    int maxSeconds;

    @Option(names = "--soak", paramLabel = "N", description = "instead of the table: N requests from the largest "
            + "client count, printing the process's resident memory (RSS) every N/10 requests")
    Integer soak;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    public Integer call() throws Exception {
        model.singleNode("serve-bench");
        model.defaultCheckpoint();
        if (requests < 1 || maxNewTokens < 1 || workers < 1 || clients.stream().anyMatch(c -> c < 1)
                || (soak != null && soak < 10)) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--requests, --max-new-tokens, --workers, --clients must be positive, --soak at least 10");
        }
        ServeConfig.Builder b = ServeConfig.builder();
        b.checkpoint = model.checkpoint;
        b.tokenizer = model.tokenizer;
        b.architectureConfig = model.config;
        b.dtype = model.dtype;
        b.maxWorkers = workers;
        b.batchSize = batchSize;
        b.queueSize = Math.max(64, Collections.max(clients));
        b.maxNewTokensCap = Math.max(1024, maxNewTokens);
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        model.sayIfEmbedded(spec.commandLine().getErr());
        try (GptServer server = GptServer.start(b.build(), "127.0.0.1", 0)) {
            URI uri = URI.create("http://127.0.0.1:" + server.port() + "/v1/completions");
            run(http, uri, Math.max(4, 2 * workers), 2, n -> { }); // warm-up
            if (soak != null) {
                soak(http, uri, Collections.max(clients));
                return 0;
            }
            System.out.printf("%-8s %8s %6s %7s %8s %8s %10s %9s %9s%n", "clients", "requests", "ok", "failed",
                    "wall s", "req/s", "tok/s", "p50 ms", "p99 ms");
            for (int c : clients) {
                Result r = run(http, uri, requests, c, n -> { });
                System.out.printf("%-8d %8d %6d %7d %8.2f %8.1f %10.0f %9.1f %9.1f%n", c, r.sent, r.ok, r.failed,
                        r.wallSeconds, r.ok / r.wallSeconds, r.tokens / r.wallSeconds, r.percentile(50), r.percentile(99));
            }
            System.out.printf("(%s, %s, max_new_tokens %d, temperature %.1f, non-streaming /v1/completions "
                    + "over loopback; %d CPU cores visible)%n", model.checkpoint,
                    workers + " worker(s) x batch " + batchSize, maxNewTokens,
                    temperature, Runtime.getRuntime().availableProcessors());
        }
        return 0;
    }

    private record Result(int sent, int ok, int failed, long tokens, double wallSeconds, List<Double> latenciesMs) {
        double percentile(int p) {
            if (latenciesMs.isEmpty()) return 0;
            List<Double> s = new ArrayList<>(latenciesMs);
            Collections.sort(s);
            return s.get(Math.min(s.size() - 1, (int) Math.ceil(p / 100.0 * s.size()) - 1));
        }
    }

    /** N requests from clientCount clients; a line with the process's RSS every N/10 answered requests. */
    private void soak(HttpClient http, URI uri, int clientCount) throws InterruptedException {
        int every = soak / 10;
        System.out.printf("%10s %10s %14s %14s%n", "requests", "RSS MiB", "heap used MiB", "heap committed");
        java.util.function.IntConsumer line = n -> System.out.printf("%10d %10.1f %14.1f %14.1f%n", n, rssMiB(),
                heapMiB(), Runtime.getRuntime().totalMemory() / (1024.0 * 1024.0));
        line.accept(0);
        Result r = run(http, uri, soak, clientCount, n -> {
            if (n % every == 0) line.accept(n);
        });
        System.out.printf("(%d requests, %d ok, %d failed, %.1f s; %d clients, %s, %s, max_new_tokens %d; RSS of the "
                + "whole process: server, engines and clients)%n", r.sent, r.ok, r.failed, r.wallSeconds, clientCount,
                model.checkpoint, workers + " worker(s) x batch " + batchSize, maxNewTokens);
    }

    /** VmRSS from /proc/self/status (Linux); NaN elsewhere. */
    static double rssMiB() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
            }
        } catch (java.io.IOException | NumberFormatException e) {
            // not Linux
        }
        return Double.NaN;
    }

    private static double heapMiB() {
        Runtime rt = Runtime.getRuntime();
        return (rt.totalMemory() - rt.freeMemory()) / (1024.0 * 1024.0);
    }

    private Result run(HttpClient http, URI uri, int total, int clientCount, java.util.function.IntConsumer answered)
            throws InterruptedException {
        AtomicInteger done = new AtomicInteger();
        AtomicInteger next = new AtomicInteger();
        AtomicInteger ok = new AtomicInteger(), failed = new AtomicInteger();
        AtomicLong tokens = new AtomicLong();
        ConcurrentLinkedQueue<Double> latencies = new ConcurrentLinkedQueue<>();
        long deadline = System.nanoTime() + maxSeconds * 1_000_000_000L;
        List<Thread> threads = new ArrayList<>();
        long t0 = System.nanoTime();
        for (int c = 0; c < clientCount; c++) {
            Thread t = new Thread(() -> {
                int i;
                while ((i = next.getAndIncrement()) < total && System.nanoTime() < deadline) {
                    String body = "{\"prompt\":\"Once upon a time, story " + i + ",\",\"max_tokens\":" + maxNewTokens
                            + ",\"min_tokens\":" + maxNewTokens + ",\"temperature\":" + temperature + ",\"seed\":" + i + "}";
                    HttpRequest req = HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(120))
                            .header("Content-Type", "application/json")
                            .POST(HttpRequest.BodyPublishers.ofString(body)).build();
                    long s = System.nanoTime();
                    try {
                        HttpResponse<String> res = http.send(req, HttpResponse.BodyHandlers.ofString());
                        if (res.statusCode() == 200) {
                            JsonNode n = JSON.readTree(res.body());
                            tokens.addAndGet(n.path("usage").path("completion_tokens").asLong());
                            ok.incrementAndGet();
                            latencies.add((System.nanoTime() - s) / 1e6);
                        } else {
                            failed.incrementAndGet();
                        }
                    } catch (Exception e) {
                        failed.incrementAndGet();
                    }
                    answered.accept(done.incrementAndGet());
                }
            });
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) t.join();
        double wall = (System.nanoTime() - t0) / 1e9;
        return new Result(ok.get() + failed.get(), ok.get(), failed.get(), tokens.get(), wall, new ArrayList<>(latencies));
    }
}

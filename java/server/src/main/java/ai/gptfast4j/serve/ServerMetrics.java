package ai.gptfast4j.serve;

import ai.gptfast4j.GenerationResult;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Prometheus metrics through Micrometer: HTTP requests (count and latency histogram by route and
 * status), generations by finish reason, prompt and generated tokens, time to first token, queue
 * wait, queue depth, active generations, rejections and cancellations.
 */
public final class ServerMetrics {
    private static final Duration[] LATENCY_BUCKETS = {
            Duration.ofMillis(1), Duration.ofMillis(5), Duration.ofMillis(10), Duration.ofMillis(25),
            Duration.ofMillis(50), Duration.ofMillis(100), Duration.ofMillis(250), Duration.ofMillis(500),
            Duration.ofSeconds(1), Duration.ofMillis(2500), Duration.ofSeconds(5), Duration.ofSeconds(10),
            Duration.ofSeconds(30), Duration.ofSeconds(60)};

    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final Counter promptTokens = Counter.builder("gptfast.prompt.tokens")
            .description("prompt tokens processed (BOS included)").register(registry);
    private final Counter cachedPromptTokens = Counter.builder("gptfast.prompt.tokens.cached")
            .description("prompt tokens whose keys and values a KV cache already held (not run again)").register(registry);
    private final Counter generatedTokens = Counter.builder("gptfast.generated.tokens")
            .description("tokens generated").register(registry);
    private final Timer timeToFirstToken = histogram("gptfast.time.to.first.token", "submit to first sampled token");
    private final Timer queueWait = histogram("gptfast.queue.wait", "time a request waited for a worker");
    private final Timer generation = histogram("gptfast.generation.duration", "time a worker spent generating");
    private final DistributionSummary tokensPerRequest = DistributionSummary.builder("gptfast.generated.tokens.per.request")
            .serviceLevelObjectives(1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048).register(registry);

    private Timer histogram(String name, String description) {
        return Timer.builder(name).description(description).serviceLevelObjectives(LATENCY_BUCKETS).register(registry);
    }

    /** Queue depth, active generations and worker count, read from the scheduler at scrape time. */
    public void bind(RequestScheduler scheduler) {
        Gauge.builder("gptfast.queue.depth", scheduler, RequestScheduler::queueDepth)
                .description("requests waiting for a worker").register(registry);
        Gauge.builder("gptfast.queue.capacity", scheduler, RequestScheduler::queueCapacity).register(registry);
        Gauge.builder("gptfast.active.generations", scheduler, RequestScheduler::activeGenerations)
                .description("requests generating now").register(registry);
        Gauge.builder("gptfast.workers", scheduler, RequestScheduler::workers).register(registry);
    }

    /** One HTTP exchange; route is the matched route pattern (bounded cardinality). */
    public void httpRequest(String route, String method, int status, long nanos) {
        Counter.builder("gptfast.http.requests").description("HTTP requests answered")
                .tags("route", route, "method", method, "status", Integer.toString(status))
                .register(registry).increment();
        Timer.builder("gptfast.http.request.duration").description("HTTP request latency (streams: until the last byte)")
                .tags("route", route, "status", Integer.toString(status)).serviceLevelObjectives(LATENCY_BUCKETS)
                .register(registry).record(nanos, TimeUnit.NANOSECONDS);
    }

    void generationFinished(GenerationJob job, GenerationResult r) {
        long now = System.nanoTime();
        Counter.builder("gptfast.generations").description("generations by finish reason")
                .tag("finish_reason", r.stopReason().name().toLowerCase()).register(registry).increment();
        promptTokens.increment(r.promptTokens().length);
        cachedPromptTokens.increment(r.stats().cachedPromptTokens());
        generatedTokens.increment(r.generatedTokens().length);
        tokensPerRequest.record(r.generatedTokens().length);
        queueWait.record(job.startedNanos() - job.submittedNanos(), TimeUnit.NANOSECONDS);
        generation.record(now - job.startedNanos(), TimeUnit.NANOSECONDS);
        if (job.firstTokenNanos() != 0) {
            timeToFirstToken.record(job.firstTokenNanos() - job.submittedNanos(), TimeUnit.NANOSECONDS);
        }
    }

    void generationFailed() {
        Counter.builder("gptfast.generations").tag("finish_reason", "error").register(registry).increment();
    }

    void rejected(String reason) {
        Counter.builder("gptfast.rejected").description("requests refused without generating")
                .tag("reason", reason).register(registry).increment();
    }

    /** A generation stopped because its client went away ("disconnect") or its deadline passed ("timeout"). */
    void cancelled(String reason) {
        Counter.builder("gptfast.cancellations").tag("reason", reason).register(registry).increment();
    }

    public String scrape() {
        return registry.scrape();
    }
}

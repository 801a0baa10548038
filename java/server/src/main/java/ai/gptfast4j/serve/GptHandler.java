package ai.gptfast4j.serve;

import ai.gptfast4j.CancellationToken;
import ai.gptfast4j.Engine;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.GenerationParams;
import ai.gptfast4j.GenerationResult;
import ai.gptfast4j.GptFastException;
import ai.gptfast4j.TokenListener;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * TorchServe's handler contract for GPT-Fast, in Java: {@link #initialize} loads one engine from
 * the model-config.yaml settings, {@link #preprocess} parses request bodies
 * ({@code {"prompt" or "data": text, "max_new_tokens", "temperature", "top_k"}}, as the GPT-Fast
 * example handler reads them), {@link #inference} generates (streaming each token's text to a
 * listener when asked), {@link #postprocess} answers {@code {"generated_text": ...}}.
 * {@link #handle} runs all three. One handler is one worker: it owns one engine with batchSize
 * slots ({@link EngineScheduler} drives it; {@link #inference} runs one request at a time).
 */
public final class GptHandler implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(GptHandler.class);

    /**
     * What TorchServe passes to initialize: the model's settings (the parsed model-config.yaml)
     * and which worker this is.
     */
    public record Context(ServeConfig config, int workerId) {
        public static Context fromYaml(Path modelConfigYaml) {
            return new Context(ServeConfig.fromYaml(modelConfigYaml).build(), 0);
        }
    }

    private final Function<Context, Engine> engineLoader;
    private ServeConfig config;
    private Engine engine;

    /** Loads the checkpoint named by the config (the TorchServe way). */
    public GptHandler() {
        this(GptHandler::loadEngine);
    }

    /** Uses the given loader instead (embedding, tests, random-weight engines). */
    public GptHandler(Function<Context, Engine> engineLoader) {
        this.engineLoader = engineLoader;
    }

    public void initialize(Context context) {
        if (engine != null) throw new IllegalStateException("handler already initialized");
        config = context.config();
        engine = engineLoader.apply(context);
        LOG.info("worker {}: {}; chat template: {}", context.workerId(), engine.describe(), engine.chatTemplate().name());
        if (engine.cacheNote() != null) LOG.info("worker {}: {}", context.workerId(), engine.cacheNote());
    }

    static Engine loadEngine(Context context) {
        ServeConfig c = context.config();
        int threads = c.threadsPerWorker() > 0 ? c.threadsPerWorker()  // per TP rank
                : Math.max(1, Runtime.getRuntime().availableProcessors() / c.maxWorkers() / c.tp());
        String device = c.deviceFor(context.workerId());
        if (!device.startsWith("cuda")) return Engine.load(options(c, device, threads));  // cpu, or auto: the engine decides
        try {
            return Engine.load(options(c, device, threads));
        } catch (GptFastException e) {
            // TorchServe's GPT-Fast handler also falls back to CPU when CUDA is not available
            LOG.warn("worker {}: deviceType gpu: cannot use {} ({}); running on CPU", context.workerId(), device,
                    e.getMessage());
            return Engine.load(options(c, "cpu", threads));
        }
    }

    private static EngineOptions options(ServeConfig c, String device, int threads) {
        EngineOptions o = new EngineOptions(c.checkpoint(), c.tokenizer(), c.architectureConfig(), c.dtype(), device,
                threads, c.maxSeqLen()).withBatchSize(c.batchSize()).withPrefillChunk(c.prefillChunk())
                .withQuantize(c.quantize(), c.draftQuantize()).withTp(c.tp());
        return c.speculative() ? o.withDraft(c.draftModel(), null, c.speculateK()) : o;
    }

    /** Parses each request body; the first bad one fails with an {@link ApiException} naming the problem. */
    public List<GenerationRequest> preprocess(List<byte[]> requests) {
        ensureInitialized();
        List<GenerationRequest> out = new ArrayList<>(requests.size());
        for (byte[] body : requests) out.add(parse(config, body));
        return out;
    }

    static GenerationRequest parse(ServeConfig config, byte[] body) {
        ObjectNode json = JsonBody.parse(body);
        String prompt = JsonBody.string(json, "prompt");
        if (prompt == null) prompt = JsonBody.string(json, "data");
        if (prompt == null) throw ApiException.badRequest("missing 'prompt' (or 'data'): the text to continue");
        GenerationParams params = sampling(config, JsonBody.integer(json, "max_new_tokens"), "max_new_tokens",
                JsonBody.number(json, "temperature"), JsonBody.integer(json, "top_k"), JsonBody.longInteger(json, "seed"),
                b -> {
                    Boolean cachePrompt = JsonBody.bool(json, "cache_prompt");
                    if (cachePrompt != null) b.cachePrompt(cachePrompt);
                });
        Boolean stream = JsonBody.bool(json, "stream");
        return new GenerationRequest(prompt, params, stream != null ? stream : config.stream());
    }

    /**
     * Sampling parameters from request values (null = the config's default), checked against the
     * server's max_new_tokens cap. A missing seed gets a random one.
     */
    static GenerationParams sampling(ServeConfig config, Integer maxNewTokens, String maxKey, Double temperature,
                                     Integer topK, Long seed, Consumer<GenerationParams.Builder> more) {
        int max = maxNewTokens != null ? maxNewTokens : config.defaultMaxNewTokens();
        if (max < 1) throw ApiException.badRequest("'" + maxKey + "' must be >= 1, got " + max);
        if (max > config.maxNewTokensCap()) {
            throw ApiException.badRequest("'" + maxKey + "' " + max + " exceeds this server's cap of "
                    + config.maxNewTokensCap());
        }
        try {
            GenerationParams.Builder b = GenerationParams.builder().maxNewTokens(max)
                    .temperature(temperature != null ? temperature.floatValue() : config.defaultTemperature())
                    .topK(topK != null ? topK : config.defaultTopK())
                    .seed(seed != null ? seed : ThreadLocalRandom.current().nextLong())
                    .cachePrompt(config.cachePrompt());
            more.accept(b);
            return b.build();
        } catch (GptFastException e) {
            throw ApiException.badRequest(e.getMessage());
        }
    }

    /** Generates each request in turn (batch 1), without streaming. */
    public List<GenerationResult> inference(List<GenerationRequest> requests) {
        List<GenerationResult> out = new ArrayList<>(requests.size());
        for (GenerationRequest r : requests) out.add(inference(r, null, new CancellationToken()));
        return out;
    }

    /** Generates one request; each token's text goes to the listener (if any) as it is sampled. */
    public GenerationResult inference(GenerationRequest request, TokenListener listener, CancellationToken cancel) {
        ensureInitialized();
        return request.promptIds() != null ? engine.generate(request.promptIds(), request.params(), listener, cancel)
                : engine.generate(request.prompt(), request.params(), listener, cancel);
    }

    public List<Map<String, Object>> postprocess(List<GenerationResult> results) {
        List<Map<String, Object>> out = new ArrayList<>(results.size());
        for (GenerationResult r : results) out.add(Map.of("generated_text", r.completion()));
        return out;
    }

    /** preprocess, inference, postprocess. */
    public List<Map<String, Object>> handle(List<byte[]> requests) {
        return postprocess(inference(preprocess(requests)));
    }

    public Engine engine() {
        ensureInitialized();
        return engine;
    }

    private void ensureInitialized() {
        if (engine == null) throw new IllegalStateException("handler not initialized");
    }

    @Override
    public void close() {
        if (engine != null) engine.close();
    }
}

package ai.gptfast4j.cli;

import ai.gptfast4j.CancellationToken;
import ai.gptfast4j.ConfigResolver;
import ai.gptfast4j.Defaults;
import ai.gptfast4j.Engine;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.GenerationParams;
import ai.gptfast4j.GenerationResult;
import ai.gptfast4j.GenerationStats;
import ai.gptfast4j.GptFastException;
import ai.gptfast4j.ModelConfig;
import ai.gptfast4j.Tokenizers;
import ai.gptfast4j.natives.GptFastNative;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.function.ToDoubleFunction;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Measures prefill tok/s, time to first token and decode tok/s, as medians over several runs,
 * for each thread count; prints a table. Generation never stops early (no stop token), so every
 * run decodes exactly --new-tokens tokens. With a draft model (--draft-checkpoint, or
 * --draft-layers for --random) it also runs speculative decoding for each k in --k-values and
 * prints acceptance rate, tokens per verify pass and the speedup over plain decoding.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmark prefill and decode speed (and speculative decoding); prints a table of medians.")
final class BenchCommand implements Callable<Integer> {
    @Mixin ModelOptionsMixin model;

    @Option(names = "--random", paramLabel = "NAME",
            description = "benchmark seeded random weights of a GPT-Fast name-table architecture instead of a checkpoint "
                    + "(needs --tokenizer; e.g. stories110M)")
    String randomName;

    @Option(names = "--draft-layers", defaultValue = "0",
            description = "with --random: a draft that is the random model truncated to this many layers")
    int draftLayers;

    @Option(names = "--k-values", split = ",", defaultValue = "1,2,4,8",
            description = "speculate_k values to compare (default: ${DEFAULT-VALUE})")
    List<Integer> kValues;

    @Option(names = "--batch-sizes", split = ",",
            description = "also measure continuous-batching decode: total tok/s with this many sequences decoding together")
    List<Integer> batchSizes;

    @Option(names = "--temperature", defaultValue = "0", description = "0 = greedy (default: ${DEFAULT-VALUE})")
    float temperature;

    @Option(names = "--prompt", description = "prompt text (default: --prompt-tokens random ids)")
    String prompt;

    @Option(names = "--prompt-tokens", defaultValue = "32", description = "default: ${DEFAULT-VALUE}")
    int promptTokens;

    @Option(names = "--new-tokens", defaultValue = "200", description = "default: ${DEFAULT-VALUE}")
    int newTokens;

    @Option(names = "--runs", defaultValue = "5", description = "measured runs (default: ${DEFAULT-VALUE})")
    int runs;

    @Option(names = "--warmup", defaultValue = "1", description = "unmeasured runs first (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--threads", split = ",", defaultValue = "1", description = "thread counts, e.g. 1,2 (default: ${DEFAULT-VALUE})")
    List<Integer> threads;

    @Option(names = "--json", description = "print one JSON object per configuration (one line each) instead of tables")
    boolean json;

    @Option(names = "--listener", defaultValue = "none",
            description = "none, or text: a TokenListener receives every token's text (detokenized as it streams), as a "
                    + "streaming client does; the overhead column shows what it costs (default: ${DEFAULT-VALUE})")
    String listener;

    private long listenedChars;  // what the text listener received (so that its work is not skipped)

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    /**
     * Medians over the timed runs. allReduces/allReduceMicros: per generated token over the
     * measured runs (prefill included; 0 without --tp). overhead: the fraction of decode time
     * outside the model's forward passes. bandwidth: each run's read bandwidth, the mean of the
     * probes taken just before and just after it ({@link Probes}); fraction: each run's decode rate
     * over its own memory roofline. runDecode/runBandwidth: the per-run values these come from.
     */
    private record Medians(double prefill, double ttft, double decode, double acceptance, double perVerify,
                           double allReduces, double allReduceMicros, double overhead, double bandwidth,
                           double fraction, double[] runDecode, double[] runBandwidth) {}

    /**
     * Read-bandwidth probes between timed runs, so that each run is set against the limit of its
     * own minutes: on a virtual machine the bandwidth drifts by a third within minutes, and one
     * probe for a whole benchmark made a run in a slow spell read as a low fraction of the limit.
     * A probe lasts a fraction of a second and the bandwidth swings both ways between seconds (25 to
     * 39 GB/s between consecutive probes while the runs between them held steady), so a run takes
     * the mean of its two: the higher one made a momentary peak the limit of two runs.
     */
    private static final class Probes {
        private final int threads;
        private double last;

        Probes(int threads) {
            this.threads = threads;
            this.last = probe(threads);
        }

        /** Call after each timed run: the bandwidth to set that run against. */
        double afterRun() {
            double next = probe(threads);
            double paired = (last + next) / 2;
            last = next;
            return paired;
        }

        private static double probe(int threads) {
            double b = GptFastNative.measureReadBandwidth(threads);
            System.err.printf("  %d thread(s): read %.1f GB/s%n", threads, b / 1e9);
            return b;
        }
    }

    @Override
    public Integer call() throws Exception {
        if (model.checkpoint != null && randomName != null) {
            throw new CommandLine.ParameterException(spec.commandLine(), "give --checkpoint or --random, not both");
        }
        if (randomName == null) {
            model.defaultCheckpoint();
            model.sayIfEmbedded(spec.commandLine().getErr());
        }
        if (randomName != null && model.tokenizer == null) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--random needs --tokenizer");
        }
        if (!listener.equals("none") && !listener.equals("text")) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--listener must be none or text, got '" + listener + "'");
        }
        if (promptTokens < 1 || newTokens < 1 || runs < 1 || warmup < 0 || draftLayers < 0) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--prompt-tokens, --new-tokens and --runs must be positive, --warmup and --draft-layers >= 0");
        }
        return model.onNodes(spec.commandLine().getErr(), this::bench);
    }

    private int bench() {
        boolean speculative = model.draftCheckpoint != null || draftLayers > 0;
        if (!json) {
            System.out.printf("%-24s %8s %7s %7s %6s %5s %4s %13s %9s %12s %9s %10s %6s %8s %8s %8s %9s%n", "model", "params",
                    "weights", "threads", "prompt", "new", "k", "prefill tok/s", "TTFT ms", "decode tok/s", "MB/token",
                    "mem roof", "of it", "accept", "tok/ver", "speedup", "overhead");
        }
        for (int t : threads) {
            Medians plain;
            int promptLength;
            ModelConfig config;
            long weightBytes;
            try (Engine engine = load(t, 0, 1)) {
                int[] ids = promptIds(engine);
                promptLength = ids.length;
                config = engine.config();
                weightBytes = engine.weightBytes();
                plain = measure(engine, ids, t, "plain");
            }
            row(config, t, promptLength, 0, plain, 1.0, weightBytes);
            if (!speculative) continue;
            for (int k : kValues) {
                try (Engine engine = load(t, k, 1)) {
                    Medians m = measure(engine, promptIds(engine), t, "k=" + k);
                    row(config, t, promptLength, k, m, m.decode / plain.decode, weightBytes);
                }
            }
        }
        if (!json) {
            System.out.printf("(medians of %d runs after %d warm-up; temperature %s; %s, %d cores visible; memory roofline"
                    + " = read bandwidth / bytes of Linear weights per token, the bandwidth probed before and after each"
                    + " run (their mean; median shown) and each run set against its own; overhead = decode time"
                    + " outside the model's forward passes (sampling, JNI, Java, listener: %s)%s)%n", runs, warmup,
                    temperature, CpuInfo.name(), Runtime.getRuntime().availableProcessors(), listener,
                    speculative ? "; draft: " + draftLabel() : "");
        }
        if (batchSizes != null) benchBatches();
        return 0;
    }

    /** The at::mm FLOP rate measured now with t threads (the FLOP roofline of the batch rows). */
    private double matmulFlops(int t) {
        try (GptFastNative.MachineLimits limits = GptFastNative.measureMachineLimits(t)) {
            System.err.printf("  %d thread(s): at::mm %.1f GFLOP/s%n", t, limits.matmul_flops_per_second() / 1e9);
            return limits.matmul_flops_per_second();
        }
    }

    private String weightsLabel() {
        return model.quantize != null && !model.quantize.isEmpty() ? model.quantize : model.dtype;
    }

    /**
     * Total decode tok/s of b sequences decoding together in one engine, per batch size, next to
     * the rooflines from limits measured in the same run: FLOPs (2 per matmul weight per token at
     * the measured at::mm rate) and memory (every weight streamed once per step at the measured
     * read bandwidth, shared by the b sequences).
     */
    private void benchBatches() {
        if (!json) {
            System.out.printf("%n%-24s %7s %7s %6s %12s %14s %16s %14s %7s %14s %7s%n", "model", "weights", "threads",
                    "batch", "new/seq", "total tok/s", "per-seq tok/s", "FLOP roof", "of it", "memory roof", "of it");
        }
        for (int t : threads) {
            double flops = matmulFlops(t);
            for (int b : batchSizes) {
                double[] rates = new double[runs], bandwidths = new double[runs], fractions = new double[runs];
                ModelConfig c;
                long weightBytes;
                int promptLength;
                try (Engine engine = load(t, 0, b)) {
                    c = engine.config();
                    weightBytes = engine.weightBytes();
                    promptLength = batchPrompt(engine, 0).length;
                    Probes probes = null;
                    for (int run = 0; run < warmup + runs; run++) {
                        if (run == warmup) probes = new Probes(t);
                        GenerationParams params = GenerationParams.builder().temperature(temperature).topK(0).seed(run)
                                .maxNewTokens(newTokens).stopTokens(-1).cachePrompt(false).build();
                        List<Engine.Sequence> seqs = new ArrayList<>();
                        for (int i = 0; i < b; i++) {
                            seqs.add(engine.start(batchPrompt(engine, i), params, null, new CancellationToken()));
                        }
                        engine.step();  // the prompts, and each sequence's first token
                        long t0 = System.nanoTime();
                        while (engine.active() > 0) engine.step();
                        double seconds = (System.nanoTime() - t0) / 1e9;
                        int decoded = 0;
                        for (Engine.Sequence s : seqs) decoded += s.result().generatedTokens().length - 1;
                        System.err.printf("  batch %d run %d/%d: %.1f tok/s%n", b, run + 1, warmup + runs, decoded / seconds);
                        if (run >= warmup) {
                            int i = run - warmup;
                            rates[i] = decoded / seconds;
                            bandwidths[i] = probes.afterRun();
                            fractions[i] = rates[i] / memoryRoof(bandwidths[i], weightBytes, b);
                        }
                    }
                }
                double med = median(rates), bandwidth = median(bandwidths);
                long matmulWeights = c.parameterCount() - (long) c.vocabSize() * c.dim();  // embeddings are a lookup
                double flopRoof = flops / (2.0 * matmulWeights);
                double memoryRoof = memoryRoof(bandwidth, weightBytes, b);
                if (json) {
                    jsonRow(c, t, b, promptLength, 0, Double.NaN, med, weightBytes, bandwidth, median(fractions), flops,
                            null, rates, bandwidths);
                } else {
                    System.out.printf("%-24s %7s %7d %6d %12d %14.1f %16.1f %14.1f %6.0f%% %14.1f %6.0f%%%n", label(),
                            weightsLabel(), t, b, newTokens, med, med / b, flopRoof, 100 * med / flopRoof, memoryRoof,
                            100 * median(fractions));
                }
            }
        }
        if (!json) {
            System.out.printf("(continuous-batching decode after prefill, medians of %d runs; rooflines from at::mm and "
                    + "read bandwidth measured in this run, the bandwidth probed around each run as above; %s)%n", runs, CpuInfo.name());
        }
    }

    /** Tokens per second the memory allows: every weight byte read once per step, for all `batch` sequences. */
    private static double memoryRoof(double bandwidth, long weightBytes, int batch) {
        return bandwidth / weightBytes * batch;
    }

    /** One configuration as one line of JSON (--json). */
    private void jsonRow(ModelConfig c, int t, int batch, int promptLength, int k, double prefill, double decode,
                         long weightBytes, double bandwidth, double fraction, double flops, Medians m,
                         double[] runDecode, double[] runBandwidth) {
        var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
        var o = mapper.createObjectNode();
        o.put("checkpoint", randomName != null ? "random:" + randomName : model.checkpoint.toString());
        o.put("parameters", c.parameterCount());
        o.put("dtype", model.dtype);
        o.put("quantize", model.quantize == null ? "" : model.quantize);
        o.put("threads", t);
        o.put("tp", model.tp != null ? model.tp : 1);
        o.put("batch_size", batch);
        o.put("speculate_k", k);
        o.put("prompt_tokens", promptLength);
        o.put("new_tokens", newTokens);
        if (!Double.isNaN(prefill)) o.put("prefill_tokens_per_second", prefill);
        o.put("decode_tokens_per_second", decode);
        o.put("weight_bytes", weightBytes);
        o.put("bandwidth_bytes_per_second", bandwidth);
        o.put("roofline_tokens_per_second", memoryRoof(bandwidth, weightBytes, batch));
        o.put("roofline_fraction", fraction);
        if (!Double.isNaN(flops)) o.put("matmul_flops_per_second", flops);
        if (m != null) {
            o.put("time_to_first_token_ms", m.ttft);
            if (k > 0) {
                o.put("acceptance_rate", m.acceptance);
                o.put("tokens_per_verify", m.perVerify);
            }
        }
        var decodes = o.putArray("run_decode_tokens_per_second");
        for (double d : runDecode) decodes.add(d);
        var bandwidths = o.putArray("run_bandwidth_bytes_per_second");
        for (double b : runBandwidth) bandwidths.add(b);
        if (m != null) {
            o.put("all_reduces_per_token", m.allReduces);
            o.put("all_reduce_us_per_token", m.allReduceMicros);
            o.put("listener", listener);
            o.put("overhead_fraction", m.overhead);
        }
        o.put("runs", runs);
        o.put("cpu", CpuInfo.name());
        o.put("cores_visible", Runtime.getRuntime().availableProcessors());
        System.out.println(o.toString());
    }

    private int[] batchPrompt(Engine engine, int i) {
        return prompt != null ? engine.promptTokens(prompt)
                : randomIds(engine.config().vocabSize(), engine.tokenizer().bosId(), 42 + i);
    }

    private ModelConfig randomConfig() {
        String key = ConfigResolver.matchName(randomName);
        if (key == null) throw new GptFastException("no GPT-Fast config named '" + randomName + "'; known: " + ConfigResolver.names());
        return ConfigResolver.fromName(key);
    }

    // EngineOptions wants a checkpoint path; for random weights it only labels the run.
    private EngineOptions randomOptions(ModelConfig config, int threadCount, int k, int batch) {
        int cache = model.maxSeqLen > 0 ? model.maxSeqLen : Math.min(config.blockSize(), promptTokens + newTokens + 1);
        return new EngineOptions(Path.of(randomName), model.tokenizer, null, model.dtype, model.device, threadCount, cache,
                null, null, k, batch, model.prefillChunk != null ? model.prefillChunk : Defaults.PREFILL_CHUNK,
                model.quantize, model.draftQuantize, model.tp != null ? model.tp : 1);
    }

    /** Builds something that owns the --tokenizer; closes the tokenizer if building fails. */
    private <T> T withTokenizer(java.util.function.Function<ai.gptfast4j.Tokenizer, T> build) {
        var tokenizer = Tokenizers.open(model.tokenizer);
        try {
            return build.apply(tokenizer);
        } catch (RuntimeException e) {
            tokenizer.close();
            throw e;
        }
    }

    /** One single-sequence row (plain, or speculative with k > 0). */
    private void row(ModelConfig config, int t, int promptLength, int k, Medians m, double speedup, long weightBytes) {
        double roof = memoryRoof(m.bandwidth, weightBytes, 1);
        if (json) {
            jsonRow(config, t, 1, promptLength, k, m.prefill, m.decode, weightBytes, m.bandwidth, m.fraction,
                    Double.NaN, m, m.runDecode, m.runBandwidth);
            return;
        }
        System.out.printf("%-24s %8s %7s %7d %6d %5d %4s %13.1f %9.2f %12.1f %9.2f %10.1f %5.0f%% %8s %8s %7.2fx %8.1f%%%n",
                label(), millions(config), weightsLabel(), t, promptLength, newTokens, k == 0 ? "-" : Integer.toString(k), m.prefill,
                m.ttft, m.decode, weightBytes / 1e6, roof, 100 * m.fraction,
                k == 0 ? "-" : String.format("%.0f%%", 100 * m.acceptance),
                k == 0 ? "-" : String.format("%.2f", m.perVerify), speedup, 100 * m.overhead);
        if (m.allReduces > 0) {
            System.out.printf("  tp %d: %.1f all-reduces per token, %.1f us of all-reduce per token%n", model.tp,
                    m.allReduces, m.allReduceMicros);
        }
    }

    private Medians measure(Engine engine, int[] ids, int threadCount, String what) {
        if (ids.length + newTokens > engine.contextLength()) {
            throw new GptFastException("prompt + new tokens exceed the context length " + engine.contextLength());
        }
        // Every run prefills the whole prompt: a cached one would measure nothing.
        GenerationParams params = GenerationParams.builder().temperature(temperature).topK(0).maxNewTokens(newTokens)
                .stopTokens(-1).cachePrompt(false).build();
        List<GenerationStats> stats = new ArrayList<>();
        double[] runBandwidth = new double[runs];
        long reduces = 0, reduceNanos = 0, tokens = 0;
        Probes probes = null;
        for (int i = 0; i < warmup + runs; i++) {
            if (i == warmup) probes = new Probes(threadCount);
            long reducesBefore = engine.allReduces(), nanosBefore = engine.allReduceNanos();
            GenerationParams seeded = params.withSeed(i);
            GenerationResult r = engine.generate(ids, temperature == 0 ? params : seeded,
                    listener.equals("text") ? (id, text) -> listenedChars += text.length() : null, new CancellationToken());
            System.err.printf("  %s run %d/%d (threads %d): decode %.1f tok/s, %.1f %% outside the forward passes%n", what,
                    i + 1, warmup + runs, threadCount, r.stats().decodeTokensPerSecond(), 100 * r.stats().overheadFraction());
            if (i >= warmup) {
                runBandwidth[i - warmup] = probes.afterRun();
                stats.add(r.stats());
                reduces += engine.allReduces() - reducesBefore;
                reduceNanos += engine.allReduceNanos() - nanosBefore;
                tokens += r.generatedTokens().length;
            }
        }
        double[] runDecode = stats.stream().mapToDouble(GenerationStats::decodeTokensPerSecond).toArray();
        double[] fractions = new double[runs];
        for (int i = 0; i < runs; i++) fractions[i] = runDecode[i] / memoryRoof(runBandwidth[i], engine.weightBytes(), 1);
        return new Medians(median(stats, GenerationStats::prefillTokensPerSecond),
                median(stats, GenerationStats::timeToFirstTokenMillis), median(runDecode),
                median(stats, GenerationStats::acceptanceRate), median(stats, GenerationStats::tokensPerVerify),
                tokens == 0 ? 0 : (double) reduces / tokens, tokens == 0 ? 0 : reduceNanos / 1e3 / tokens,
                median(stats, GenerationStats::overheadFraction), median(runBandwidth), median(fractions), runDecode,
                runBandwidth);
    }

    /** An engine with batch slots; k > 0 adds the draft (--draft-checkpoint or --draft-layers). */
    private Engine load(int threadCount, int k, int batch) {
        Engine engine;
        if (randomName == null) {
            EngineOptions base = model.engineOptions(threadCount).withBatchSize(batch);
            engine = Engine.load(k == 0 ? base.withDraft(null, null, base.speculateK())
                    : base.withDraft(model.draftCheckpoint, model.draftConfig, k));
        } else {
            ModelConfig config = randomConfig();
            // A bar (on a terminal) while the weights are drawn: a 7B takes about a minute.
            try (ProgressBar bar = new ProgressBar("drawing weights", "MiB", 1 << 20, spec.commandLine().getErr(),
                    false)) {
                engine = withTokenizer(tokenizer -> Engine.random(config, 1234, tokenizer, randomOptions(config,
                        threadCount, Math.max(k, 1), batch), k == 0 ? 0 : draftLayers,
                        (done, total) -> bar.update(done, total, null)));
            }
        }
        System.err.printf("  loaded: %s%n", engine.describe());
        return engine;
    }

    private int[] promptIds(Engine engine) {
        return prompt != null ? engine.promptTokens(prompt) : randomIds(engine.config().vocabSize(), engine.tokenizer().bosId(), 42);
    }

    /** BOS then --prompt-tokens - 1 seeded random ids (skipping the special ids 0..2). */
    private int[] randomIds(int vocab, int bos, long seed) {
        Random rnd = new Random(seed);
        int[] ids = new int[promptTokens];
        ids[0] = bos;
        for (int i = 1; i < ids.length; i++) ids[i] = 3 + rnd.nextInt(vocab - 3);
        return ids;
    }

    private String label() {
        return randomName != null ? randomName + " (random)" : model.checkpoint.getFileName().toString();
    }

    private String draftLabel() {
        return randomName != null ? "first " + draftLayers + " layers of the random model" : model.draftCheckpoint.toString();
    }

    private static String millions(ModelConfig c) {
        return String.format("%.2fM", c.parameterCount() / 1e6);
    }

    private static double median(List<GenerationStats> stats, ToDoubleFunction<GenerationStats> f) {
        return median(stats.stream().mapToDouble(f).toArray());
    }

    private static double median(double[] values) {
        double[] a = values.clone();
        Arrays.sort(a);
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }
}

package ai.gptfast4j.cli;

import ai.gptfast4j.ConfigResolver;
import ai.gptfast4j.Engine;
import ai.gptfast4j.GenerationParams;
import ai.gptfast4j.GenerationResult;
import ai.gptfast4j.GptFastException;
import ai.gptfast4j.ModelConfig;
import ai.gptfast4j.SentencePieceTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Measures prefill tok/s, time to first token and decode tok/s, as medians over several runs,
 * for each thread count; prints a table. Generation never stops early (no stop token), so every
 * run decodes exactly --new-tokens tokens.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmark prefill and decode speed; prints a table of medians.")
final class BenchCommand implements Callable<Integer> {
    @Mixin ModelOptionsMixin model;

    @Option(names = "--random", paramLabel = "NAME",
            description = "benchmark seeded random weights of a GPT-Fast name-table architecture instead of a checkpoint "
                    + "(needs --tokenizer; e.g. stories110M)")
    String randomName;

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

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if ((model.checkpoint == null) == (randomName == null)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "give exactly one of --checkpoint or --random");
        }
        if (randomName != null && model.tokenizer == null) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--random needs --tokenizer");
        }
        if (promptTokens < 1 || newTokens < 1 || runs < 1 || warmup < 0) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--prompt-tokens, --new-tokens and --runs must be positive, --warmup >= 0");
        }
        System.out.printf("%-28s %8s %5s %7s %6s %6s %13s %9s %12s%n", "model", "params", "dtype", "threads",
                "prompt", "new", "prefill tok/s", "TTFT ms", "decode tok/s");
        for (int t : threads) {
            try (Engine engine = load(t)) {
                int[] prompt = randomPrompt(engine.config().vocabSize(), engine.tokenizer().bosId());
                GenerationParams params = GenerationParams.builder().greedy().maxNewTokens(newTokens)
                        .stopTokens(-1).build();
                if (prompt.length + newTokens > engine.contextLength()) {
                    throw new GptFastException("prompt + new tokens exceed the context length " + engine.contextLength());
                }
                List<Double> prefill = new ArrayList<>(), ttft = new ArrayList<>(), decode = new ArrayList<>();
                for (int i = 0; i < warmup + runs; i++) {
                    GenerationResult r = engine.generate(prompt, params, null, new ai.gptfast4j.CancellationToken());
                    System.err.printf("  run %d/%d (threads %d): decode %.1f tok/s%n", i + 1, warmup + runs, t,
                            r.stats().decodeTokensPerSecond());
                    if (i < warmup) continue;
                    prefill.add(r.stats().prefillTokensPerSecond());
                    ttft.add(r.stats().timeToFirstTokenMillis());
                    decode.add(r.stats().decodeTokensPerSecond());
                }
                System.out.printf("%-28s %8s %5s %7d %6d %6d %13.1f %9.2f %12.1f%n", label(), millions(engine.config()),
                        model.dtype, t, prompt.length, newTokens, median(prefill), median(ttft), median(decode));
            }
        }
        System.out.printf("(medians of %d runs after %d warm-up; %d CPU cores visible)%n", runs, warmup,
                Runtime.getRuntime().availableProcessors());
        return 0;
    }

    private Engine load(int threadCount) {
        if (randomName == null) return Engine.load(model.engineOptions(threadCount));
        String key = ConfigResolver.matchName(randomName);
        if (key == null) throw new GptFastException("no GPT-Fast config named '" + randomName + "'; known: " + ConfigResolver.names());
        ModelConfig config = ConfigResolver.fromName(key);
        int cache = model.maxSeqLen > 0 ? model.maxSeqLen : Math.min(config.blockSize(), promptTokens + newTokens + 1);
        var tokenizer = new SentencePieceTokenizer(model.tokenizer);
        try {
            // EngineOptions wants a checkpoint path; for random weights it only labels the run
            var options = new ai.gptfast4j.EngineOptions(java.nio.file.Path.of(key), model.tokenizer, null, model.dtype,
                    model.device, threadCount, cache);
            return Engine.random(config, 1234, tokenizer, options);
        } catch (RuntimeException e) {
            tokenizer.close();
            throw e;
        }
    }

    private String label() {
        return randomName != null ? randomName + " (random)" : model.checkpoint.getFileName().toString();
    }

    private int[] randomPrompt(int vocab, int bos) {
        Random rnd = new Random(42);
        int[] ids = new int[promptTokens];
        ids[0] = bos;
        for (int i = 1; i < ids.length; i++) ids[i] = 3 + rnd.nextInt(vocab - 3);
        return ids;
    }

    private static String millions(ModelConfig c) {
        return String.format("%.2fM", c.parameterCount() / 1e6);
    }

    private static double median(List<Double> xs) {
        double[] a = xs.stream().mapToDouble(Double::doubleValue).toArray();
        Arrays.sort(a);
        return a.length % 2 == 1 ? a[a.length / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
    }
}

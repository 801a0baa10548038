package ai.gptfast4j.cli;

import ai.gptfast4j.Engine;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.GptFastException;
import ai.gptfast4j.Perplexity;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "perplexity", mixinStandardHelpOptions = true,
        description = "Teacher-forced perplexity of the model over a text file, in windows of the context length "
                + "(each fed as BOS + tokens); prints perplexity and tokens scored.")
final class PerplexityCommand implements Callable<Integer> {
    @Mixin ModelOptionsMixin model;

    @Option(names = "--text", required = true, description = "UTF-8 text file to score")
    Path text;

    @Option(names = "--threads", defaultValue = "0", description = "threads (default 0: every core unless a bandwidth probe shows they read memory slower than one)")
    int threads;

    @Option(names = "--json", description = "print one JSON object")
    boolean json;

    @CommandLine.Mixin QuietOption quiet;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        model.defaultCheckpoint();
        EngineOptions options;
        try {
            options = model.engineOptions(threads);
        } catch (GptFastException e) {
            throw GptFastCli.argumentError(spec, e);
        }
        String content;
        try {
            content = Files.readString(text, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new GptFastException("cannot read --text " + text + ": " + e.getMessage());
        }
        final EngineOptions loadOptions = options;
        final String loadedText = content;
        return model.onNodes(spec.commandLine().getErr(), () -> score(loadOptions, loadedText));
    }

    private int score(EngineOptions options, String content) {
        model.sayIfEmbedded(spec.commandLine().getErr());
        try (Engine engine = ProgressBar.load(options, spec.commandLine().getErr(), quiet.quiet)) {
            java.io.PrintWriter err = spec.commandLine().getErr();
            err.printf("loaded (%s)%n", engine.describe());
            long start = System.nanoTime();
            Perplexity.Result r;
            try (ProgressBar bar = new ProgressBar("scoring", "tokens", err, quiet.quiet)) {
                r = Perplexity.of(engine, content, (done, total) -> bar.update(done, total, null));
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            if (json) {
                System.out.printf("{\"perplexity\":%.6f,\"mean_nll\":%.6f,\"tokens_scored\":%d,\"windows\":%d,"
                        + "\"quantize\":\"%s\",\"dtype\":\"%s\"}%n", r.perplexity(), r.meanNll(), r.tokensScored(),
                        r.windows(), options.quantize(), options.dtype());
            } else {
                System.out.printf("perplexity %.4f (mean NLL %.5f nats) over %d tokens in %d windows of <= %d, %.1f s%n",
                        r.perplexity(), r.meanNll(), r.tokensScored(), r.windows(), engine.contextLength() - 1, seconds);
            }
        }
        return 0;
    }
}

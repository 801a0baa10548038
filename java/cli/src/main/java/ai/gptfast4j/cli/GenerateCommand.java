package ai.gptfast4j.cli;

import ai.gptfast4j.Defaults;
import ai.gptfast4j.Engine;
import ai.gptfast4j.GenerationParams;
import ai.gptfast4j.GenerationResult;
import ai.gptfast4j.GenerationStats;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text from a prompt, streaming it as it is sampled (or one JSON object with --json).")
final class GenerateCommand implements Callable<Integer> {
    @Mixin ModelOptionsMixin model;
    @Mixin QuietOption quiet;

    @Option(names = "--prompt", required = true, description = "prompt text (BOS is prepended)")
    String prompt;

    @Option(names = "--max-new-tokens", defaultValue = "" + Defaults.MAX_NEW_TOKENS, description = "default: ${DEFAULT-VALUE}")
    int maxNewTokens;

    @Option(names = "--temperature", defaultValue = "" + Defaults.TEMPERATURE, description = "0 = greedy (default: ${DEFAULT-VALUE})")
    float temperature;

    @Option(names = "--top-k", defaultValue = "" + Defaults.TOP_K, description = "0 = whole vocabulary (default: ${DEFAULT-VALUE})")
    int topK;

    @Option(names = "--top-p", defaultValue = "" + Defaults.TOP_P, description = "nucleus sampling mass, (0, 1] (default: ${DEFAULT-VALUE})")
    float topP;

    @Option(names = "--repetition-penalty", defaultValue = "" + Defaults.REPETITION_PENALTY, description = "> 1 discourages repeats (default: ${DEFAULT-VALUE})")
    float repetitionPenalty;

    @Option(names = "--presence-penalty", defaultValue = "" + Defaults.PRESENCE_PENALTY, description = "in [-2, 2] (default: ${DEFAULT-VALUE})")
    float presencePenalty;

    @Option(names = "--frequency-penalty", defaultValue = "" + Defaults.FREQUENCY_PENALTY, description = "in [-2, 2] (default: ${DEFAULT-VALUE})")
    float frequencyPenalty;

    @Option(names = "--min-new-tokens", defaultValue = "0", description = "stop tokens are suppressed before this many")
    int minNewTokens;

    @Option(names = "--stop", description = "stop sequence (repeatable); the output ends before it")
    List<String> stopSequences;

    @Option(names = "--seed", defaultValue = "" + Defaults.SEED, description = "sampling seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--threads", defaultValue = "" + Defaults.THREADS, description = "threads (default 0: every core unless a bandwidth probe shows they read memory slower than one)")
    int threads;

    @Option(names = "--stop-token", split = ",", description = "ids that end generation (default: the model's eos_token_id, the tokenizer's EOS and end-of-turn ids, BOS)")
    List<Integer> stopTokens;

    @Option(names = "--allow-special", description = "special-token strings in the prompt become their ids (default: plain text)")
    boolean allowSpecial;

    @Option(names = "--json", description = "print one JSON object (one line per sample) instead of streaming text")
    boolean json;

    @Option(names = "--num-samples", defaultValue = "1",
            description = "samples from one loaded model (sample i uses seed + i), as GPT-Fast's --num_samples; "
                    + "the later ones show the warm speed (default: ${DEFAULT-VALUE})")
    int numSamples;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        model.defaultCheckpoint();
        if (numSamples < 1) throw new CommandLine.ParameterException(spec.commandLine(), "--num-samples must be >= 1, got " + numSamples);
        GenerationParams params;
        ai.gptfast4j.EngineOptions options;
        try {
            options = model.engineOptions(threads);
            GenerationParams.Builder b = GenerationParams.builder().maxNewTokens(maxNewTokens)
                    .minNewTokens(minNewTokens).temperature(temperature).topK(topK).topP(topP)
                    .repetitionPenalty(repetitionPenalty).presencePenalty(presencePenalty)
                    .frequencyPenalty(frequencyPenalty).seed(seed);
            if (stopSequences != null) b.stopSequences(stopSequences);
            if (stopTokens != null) b.stopTokens(stopTokens.stream().mapToInt(Integer::intValue).toArray());
            params = b.build();
        } catch (ai.gptfast4j.GptFastException e) {
            throw GptFastCli.argumentError(spec, e);
        }
        if (model.draftCheckpoint != null && params.usesPenalties()) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--repetition-penalty, --presence-penalty and "
                    + "--frequency-penalty need plain decoding and cannot be combined with --draft-checkpoint");
        }
        final ai.gptfast4j.EngineOptions loadOptions = options;
        final GenerationParams generationParams = params;
        return model.onNodes(spec.commandLine().getErr(), () -> generate(loadOptions, generationParams));
    }

    private int generate(ai.gptfast4j.EngineOptions options, GenerationParams params) {
        TokenStream out = new TokenStream(System.out);
        model.sayIfEmbedded(spec.commandLine().getErr());
        // progress for big checkpoints; a missing one gets just its one-line error
        if (java.nio.file.Files.exists(options.checkpoint())) System.err.printf("loading %s ...%n", options.checkpoint());
        long loadStart = System.nanoTime();
        try (Engine engine = ProgressBar.load(options, spec.commandLine().getErr(), quiet.quiet)) {
            try {  // what only the loaded model can tell (the vocabulary) is still an argument error
                engine.checkParams(params);
            } catch (ai.gptfast4j.GptFastException e) {
                throw GptFastCli.argumentError(spec, e);
            }
            System.err.printf("loaded in %.2f s (%s; config: %s)%n", (System.nanoTime() - loadStart) / 1e9,
                    engine.describe(), engine.configSource());
            if (engine.cacheNote() != null) System.err.println(engine.cacheNote());
            int[] promptIds = engine.promptTokens(prompt, allowSpecial);
            for (int i = 0; i < numSamples; i++) {
                GenerationParams sample = params.withSeed(seed + i);
                if (json) {
                    GenerationResult r = engine.generate(promptIds, sample, null, new ai.gptfast4j.CancellationToken());
                    out.endLine(toJson(r));
                    continue;
                }
                out.print(prompt);
                GenerationResult r = engine.generate(promptIds, sample, out, new ai.gptfast4j.CancellationToken());
                out.endLine("");
                GenerationStats s = r.stats();
                System.err.printf("[%d prompt tokens, %d generated (%s); prefill %.1f ms, decode %.1f tok/s, %.1f %% of it"
                                + " outside the forward passes%s]%n",
                        s.promptTokens(), s.generatedTokens(), r.stopReason().name().toLowerCase(),
                        s.prefillMillis(), s.decodeTokensPerSecond(), 100 * s.overheadFraction(), s.verifyRounds() == 0 ? ""
                                : String.format("; speculative: %.0f%% accepted, %.2f tokens/verify",
                                        100 * s.acceptanceRate(), s.tokensPerVerify()));
            }
        }
        return 0;
    }

    private String toJson(GenerationResult r) {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode root = mapper.createObjectNode();
        root.putPOJO("prompt_tokens", r.promptTokens());
        root.putPOJO("generated_tokens", r.generatedTokens());
        root.put("text", prompt + r.completion());
        root.put("completion", r.completion());
        root.put("stop_reason", r.stopReason().name().toLowerCase());
        ObjectNode stats = root.putObject("stats");
        GenerationStats s = r.stats();
        stats.put("prompt_tokens", s.promptTokens());
        stats.put("generated_tokens", s.generatedTokens());
        stats.put("prefill_ms", s.prefillMillis());
        stats.put("time_to_first_token_ms", s.timeToFirstTokenMillis());
        stats.put("prefill_tokens_per_s", s.prefillTokensPerSecond());
        stats.put("decode_ms", s.decodeMillis());
        stats.put("decode_tokens_per_s", s.decodeTokensPerSecond());
        stats.put("decode_forward_ms", s.engineDecodeMillis());
        if (s.verifyRounds() > 0) {
            stats.put("verify_rounds", s.verifyRounds());
            stats.put("draft_proposed", s.draftProposed());
            stats.put("draft_accepted", s.draftAccepted());
            stats.put("acceptance_rate", s.acceptanceRate());
            stats.put("tokens_per_verify", s.tokensPerVerify());
        }
        try {
            return mapper.writeValueAsString(root);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}

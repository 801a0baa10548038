package ai.gptfast4j.cli;

import ai.gptfast4j.ChatTemplate;
import ai.gptfast4j.Defaults;
import ai.gptfast4j.Engine;
import ai.gptfast4j.GenerationParams;
import ai.gptfast4j.GenerationResult;
import ai.gptfast4j.GptFastException;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Interactive multi-turn chat: each line read from stdin is a user message; the answer streams to
 * stdout as it is sampled and joins the conversation. Works with piped input (one message per line);
 * ends at end of input. Each turn prefills only what the KV cache lacks (the conversation up to
 * the previous answer is kept there), unless --no-cache-prompt. A conversation that outgrows the
 * context loses its oldest turns (said on stderr).
 */
@Command(name = "chat", mixinStandardHelpOptions = true,
        description = "Chat with a model in the terminal: one line per message, answers streamed, through its chat template.")
final class ChatCommand implements Callable<Integer> {
    @Mixin ModelOptionsMixin model;
    @Mixin QuietOption quiet;

    @Option(names = "--chat-template", description = "llama3, llama2, mistral, plain, a tokenizer_config.json or a Jinja file "
            + "(default: the model's tokenizer_config.json, else chosen by its tokenizer)")
    String chatTemplate;

    @Option(names = "--system", description = "system message that starts the conversation")
    String system;

    @Option(names = "--max-new-tokens", defaultValue = "" + Defaults.MAX_NEW_TOKENS, description = "per answer (default: ${DEFAULT-VALUE})")
    int maxNewTokens;

    @Option(names = "--temperature", defaultValue = "" + Defaults.TEMPERATURE, description = "0 = greedy (default: ${DEFAULT-VALUE})")
    float temperature;

    @Option(names = "--top-k", defaultValue = "" + Defaults.TOP_K, description = "default: ${DEFAULT-VALUE}")
    int topK;

    @Option(names = "--top-p", defaultValue = "" + Defaults.TOP_P, description = "default: ${DEFAULT-VALUE}")
    float topP;

    @Option(names = "--seed", defaultValue = "" + Defaults.SEED, description = "default: ${DEFAULT-VALUE}")
    long seed;

    @Option(names = "--cache-prompt", negatable = true, defaultValue = "" + Defaults.CACHE_PROMPT, fallbackValue = "true",
            description = "reuse the KV cache of the conversation so far; --no-cache-prompt prefills every turn whole (default: ${DEFAULT-VALUE})")
    boolean cachePrompt;

    @Option(names = "--stats", description = "after each answer, a line on stderr: prompt tokens (how many came from the cache), time to first token, decode speed")
    boolean stats;

    @Option(names = "--threads", defaultValue = "" + Defaults.THREADS, description = "threads (default 0: every core unless a bandwidth probe shows they read memory slower than one)")
    int threads;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        model.defaultCheckpoint();
        GenerationParams params;
        ChatTemplate template = null;
        ai.gptfast4j.EngineOptions options;
        try {
            options = model.engineOptions(threads);
            params = GenerationParams.builder().maxNewTokens(maxNewTokens).temperature(temperature).topK(topK)
                    .topP(topP).seed(seed).cachePrompt(cachePrompt).build();
        } catch (GptFastException e) {
            throw GptFastCli.argumentError(spec, e);
        }
        if (chatTemplate != null) template = TokenizeCommand.template(spec, chatTemplate);
        java.io.PrintWriter err = spec.commandLine().getErr();
        TokenStream out = new TokenStream(System.out);
        boolean interactive = System.console() != null;
        final ai.gptfast4j.EngineOptions loadOptions = options;
        final ChatTemplate chosen = template;
        return model.onNodes(err, () -> chat(loadOptions, params, chosen, err, out, interactive));
    }

    private int chat(ai.gptfast4j.EngineOptions options, GenerationParams params, ChatTemplate template,
                     java.io.PrintWriter err, TokenStream out, boolean interactive) throws java.io.IOException {
        model.sayIfEmbedded(err);
        try (Engine engine = ProgressBar.load(options, spec.commandLine().getErr(), quiet.quiet)) {
            if (template == null) template = engine.chatTemplate();
            err.printf("%s; chat template: %s%s%n", engine.describe(), template.name(),
                    engine.cacheNote() != null ? "; " + engine.cacheNote() : "");
            List<ChatTemplate.Message> conversation = new ArrayList<>();
            if (system != null) conversation.add(new ChatTemplate.Message("system", system));
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            while (true) {
                if (interactive) {
                    err.print("> ");
                    err.flush();
                }
                String line = in.readLine();
                if (line == null) break;
                if (line.isBlank()) continue;
                conversation.add(new ChatTemplate.Message("user", line));
                int[] prompt;
                try {
                    prompt = fitted(engine, template, conversation, err);
                    GenerationResult r = engine.generate(prompt, params, out, new ai.gptfast4j.CancellationToken());
                    out.endLine("");
                    conversation.add(new ChatTemplate.Message("assistant", r.completion()));
                    if (stats) {
                        var s = r.stats();
                        err.printf("[prompt %d tokens, %d from the cache; first token after %.0f ms; %d tokens at %.1f tok/s]%n",
                                s.promptTokens(), s.cachedPromptTokens(), s.timeToFirstTokenMillis(), s.generatedTokens(),
                                s.decodeTokensPerSecond());
                        err.flush();
                    }
                } catch (GptFastException e) {  // e.g. the conversation outgrew the context: this turn is dropped
                    out.flush();  // what was streamed before the error, then the error
                    conversation.remove(conversation.size() - 1);
                    err.println("gptfast: error: " + e.getMessage());
                }
            }
        }
        return 0;
    }

    /**
     * The conversation's prompt, its oldest turns (a user message and its answer; the system
     * message stays) dropped while the prompt leaves less than max_new_tokens of the context for
     * the answer, and stderr told so. The newest message always stays: too long alone, the
     * engine's error names the limit.
     */
    private int[] fitted(Engine engine, ChatTemplate template, List<ChatTemplate.Message> conversation,
                         java.io.PrintWriter err) {
        int first = !conversation.isEmpty() && conversation.get(0).role().equals("system") ? 1 : 0;
        int[] prompt = template.promptTokens(engine.tokenizer(), conversation);
        int dropped = 0;
        while (prompt.length + maxNewTokens > engine.contextLength() && conversation.size() - first > 1) {
            conversation.remove(first);  // the oldest user message, then its answer
            if (conversation.size() - first > 1 && conversation.get(first).role().equals("assistant")) {
                conversation.remove(first);
            }
            dropped++;
            prompt = template.promptTokens(engine.tokenizer(), conversation);
        }
        if (dropped > 0) {
            err.printf("gptfast: the conversation outgrew the %d-token context: dropped its %d oldest turn(s)%n",
                    engine.contextLength(), dropped);
            err.flush();
        }
        return prompt;
    }
}

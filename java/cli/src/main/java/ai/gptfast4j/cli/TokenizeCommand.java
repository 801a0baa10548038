package ai.gptfast4j.cli;

import ai.gptfast4j.ChatTemplate;
import ai.gptfast4j.Engine;
import ai.gptfast4j.Tokenizer;
import ai.gptfast4j.Tokenizers;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = "Print the token ids and pieces of a text, or of a conversation through a chat template.")
final class TokenizeCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--tokenizer", required = true,
            description = "tokenizer.model (SentencePiece or tiktoken), tokenizer.json, or a directory holding one")
    Path tokenizer;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    static final class Input {
        @Option(names = "--text", description = "text to encode (BOS first, as a prompt)") String text;
        @Option(names = "--messages", description = "conversation as JSON: [{\"role\":\"user\",\"content\":\"...\"}, ...]")
        String messages;
    }

    @Option(names = "--chat-template", description = "with --messages: llama3, llama2, mistral, plain, a tokenizer_config.json "
            + "or a Jinja file (default: tokenizer_config.json beside the tokenizer, else chosen by the tokenizer)")
    String chatTemplate;

    @Option(names = "--allow-special", description = "with --text: special-token strings become their ids (default: plain text)")
    boolean allowSpecial;

    @Option(names = "--no-bos", description = "with --text: do not put BOS first")
    boolean noBos;

    @Option(names = "--json", description = "print {\"ids\":[...],\"pieces\":[...]}")
    boolean json;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        List<ChatTemplate.Message> conversation = null;
        if (input.messages != null) conversation = parseMessages(input.messages);
        else if (chatTemplate != null) throw bad("--chat-template needs --messages");
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (Tokenizer t = Tokenizers.open(tokenizer)) {
            int[] ids;
            if (conversation != null) {
                ChatTemplate template = chatTemplate != null ? template(spec, chatTemplate)
                        : ChatTemplate.forModel(Tokenizers.resolve(tokenizer).toAbsolutePath().getParent(), t);
                ids = template.promptTokens(t, conversation);
            } else {
                ids = noBos ? t.encode(input.text, allowSpecial) : Engine.promptTokens(t, input.text, allowSpecial);
            }
            if (json) {
                ObjectNode root = JSON.createObjectNode();
                ArrayNode idArray = root.putArray("ids"), pieces = root.putArray("pieces");
                for (int id : ids) {
                    idArray.add(id);
                    pieces.add(t.piece(id));
                }
                out.println(JSON.writeValueAsString(root));
            } else {
                for (int id : ids) out.printf("%6d -> '%s'%n", id, t.piece(id));
            }
        }
        return 0;
    }

    private List<ChatTemplate.Message> parseMessages(String text) {
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (Exception e) {
            throw bad("--messages is not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
        }
        if (root == null || !root.isArray() || root.isEmpty()) throw bad("--messages must be a non-empty JSON array");
        List<ChatTemplate.Message> out = new ArrayList<>();
        for (JsonNode m : root) {
            if (!m.isObject() || !m.path("role").isTextual() || !m.path("content").isTextual()) {
                throw bad("--messages entries must be {\"role\": string, \"content\": string}, got " + m);
            }
            out.add(new ChatTemplate.Message(m.get("role").asText(), m.get("content").asText()));
        }
        return out;
    }

    /** --chat-template: a built-in name or a file (else exit 2); a file's bad content is a runtime error (exit 1). */
    static ChatTemplate template(CommandLine.Model.CommandSpec spec, String nameOrFile) {
        if (!ChatTemplate.BUILTIN.contains(nameOrFile) && !java.nio.file.Files.isRegularFile(Path.of(nameOrFile))) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--chat-template '" + nameOrFile
                    + "' is neither built in (" + String.join(", ", ChatTemplate.BUILTIN) + ") nor a file");
        }
        return ChatTemplate.named(nameOrFile);
    }

    private CommandLine.ParameterException bad(String message) {
        return new CommandLine.ParameterException(spec.commandLine(), message);
    }
}

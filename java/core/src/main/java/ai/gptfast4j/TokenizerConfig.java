package ai.gptfast4j;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What a Hugging Face {@code tokenizer_config.json} says that we use: the BOS and EOS token
 * strings and the Jinja chat template (null where absent).
 */
public record TokenizerConfig(String bosToken, String eosToken, String chatTemplate, Path source) {
    private static final ObjectMapper JSON = new ObjectMapper();
    static final String FILE_NAME = "tokenizer_config.json";
    static final TokenizerConfig NONE = new TokenizerConfig(null, null, null, null);

    /** tokenizer_config.json in the directory of the given file (or the directory itself); NONE without one. */
    public static TokenizerConfig besides(Path fileOrDir) {
        Path dir = Files.isDirectory(fileOrDir) ? fileOrDir : fileOrDir.toAbsolutePath().getParent();
        Path file = dir == null ? null : dir.resolve(FILE_NAME);
        return file != null && Files.isRegularFile(file) ? read(file) : NONE;
    }

    public static TokenizerConfig read(Path file) {
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new GptFastException("malformed " + file + ": " + e.getMessage().lines().findFirst().orElse(""), e);
        }
        if (root == null || !root.isObject()) throw new GptFastException("malformed " + file + ": not a JSON object");
        return new TokenizerConfig(token(root.get("bos_token")), token(root.get("eos_token")),
                template(root.get("chat_template"), file), file);
    }

    // "<s>" or {"content": "<s>", ...} (AddedToken form)
    private static String token(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (n.isTextual()) return n.asText();
        JsonNode content = n.get("content");
        return content != null && content.isTextual() ? content.asText() : null;
    }

    // a string, or a list of {"name", "template"} of which "default" is the chat template
    private static String template(JsonNode n, Path file) {
        if (n == null || n.isNull()) return null;
        if (n.isTextual()) return n.asText();
        if (n.isArray()) {
            for (JsonNode t : n) if ("default".equals(t.path("name").asText())) return t.path("template").asText(null);
            return null;
        }
        throw new GptFastException("malformed " + file + ": chat_template must be a string or a list of named templates");
    }
}

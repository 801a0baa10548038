package ai.gptfast4j;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * What a model directory says besides weights, architecture and tokenizer: the stop tokens of
 * {@code generation_config.json} and {@code config.json} ({@code eos_token_id}, an int or a list;
 * Llama 3.x instruct models list 128001, 128008 and 128009).
 */
public final class ModelFiles {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ModelFiles() {}

    /** The eos_token_id values of generation_config.json and config.json in dir (empty if none). */
    public static int[] eosTokenIds(Path dir) {
        Set<Integer> ids = new LinkedHashSet<>();
        for (String name : new String[] {"generation_config.json", "config.json"}) {
            Path file = dir.resolve(name);
            if (!Files.isRegularFile(file)) continue;
            JsonNode root;
            try {
                root = JSON.readTree(file.toFile());
            } catch (IOException e) {
                throw new GptFastException("malformed " + file + ": " + e.getMessage().lines().findFirst().orElse(""), e);
            }
            JsonNode eos = root == null ? null : root.get("eos_token_id");
            if (eos == null || eos.isNull()) continue;
            if (eos.isArray()) {
                for (JsonNode id : eos) ids.add(tokenId(id, file));
            } else {
                ids.add(tokenId(eos, file));
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    private static int tokenId(JsonNode n, Path file) {
        if (!n.isIntegralNumber() || !n.canConvertToInt() || n.intValue() < 0) {
            throw new GptFastException(file + ": eos_token_id must be a token id or a list of them, got " + n);
        }
        return n.intValue();
    }
}

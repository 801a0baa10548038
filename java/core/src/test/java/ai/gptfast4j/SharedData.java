package ai.gptfast4j;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Paths into ../shared (test data beside the project; never copied into the repo). */
public final class SharedData {
    private SharedData() {}

    public static Path root() {
        Path p = Path.of(System.getProperty("gptfast.shared", "../../../shared")).toAbsolutePath().normalize();
        if (!Files.isDirectory(p)) throw new IllegalStateException("shared test data not found at " + p);
        return p;
    }

    static Path stories() { return root().resolve("models/stories260K"); }
    public static Path storiesPth() { return stories().resolve("model.pth"); }
    static Path storiesBin() { return stories().resolve("stories260K.bin"); }
    static Path storiesTokenizer() { return stories().resolve("tokenizer.model"); }
    static Path llama2Tokenizer() { return root().resolve("tokenizers/llama2-tokenizer.model"); }
    static Path llama3TiktokenModel() { return root().resolve("tokenizers/llama3-tokenizer.model"); }
    static Path llama3TokenizerJson() { return root().resolve("tokenizers/llama3-tokenizer.json"); }
    static Path mistralTokenizer() { return root().resolve("tokenizers/mistral-v3-tokenizer.model"); }
    static Path llama3Tiny() { return root().resolve("models/llama3-tiny-random"); }

    /** Each line of a reference .jsonl file, parsed. */
    static List<JsonNode> jsonl(String relative) {
        List<JsonNode> out = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        try {
            for (String line : Files.readAllLines(root().resolve(relative))) {
                if (!line.isBlank()) out.add(json.readTree(line));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (out.isEmpty()) throw new IllegalStateException(relative + " holds no cases");
        return out;
    }

    static int[] ints(JsonNode array) {
        int[] r = new int[array.size()];
        for (int i = 0; i < r.length; i++) r[i] = array.get(i).intValue();
        return r;
    }

    /** One line of reference/stories260K-greedy.jsonl. */
    record GreedyCase(String prompt, int steps, int[] promptTokens, int[] generatedTokens, String text,
                      boolean stoppedOnBos) {
        /** New tokens the reference generated at most: steps counts all positions (0 = 512). */
        int maxNewTokens() {
            return (steps == 0 ? 512 : steps) - promptTokens.length + 1;
        }
    }

    static List<GreedyCase> greedyCases() {
        List<GreedyCase> cases = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        try {
            for (String line : Files.readAllLines(root().resolve("reference/stories260K-greedy.jsonl"))) {
                if (line.isBlank()) continue;
                JsonNode n = json.readTree(line);
                cases.add(new GreedyCase(n.get("prompt").asText(), n.get("steps").asInt(),
                        json.treeToValue(n.get("prompt_tokens"), int[].class),
                        json.treeToValue(n.get("generated_tokens"), int[].class),
                        n.get("text").asText(), n.get("stopped_on_bos").asBoolean()));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return cases;
    }
}

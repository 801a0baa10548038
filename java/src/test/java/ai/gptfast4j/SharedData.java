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
final class SharedData {
    private SharedData() {}

    static Path root() {
        Path p = Path.of(System.getProperty("gptfast.shared", "../../shared")).toAbsolutePath().normalize();
        if (!Files.isDirectory(p)) throw new IllegalStateException("shared test data not found at " + p);
        return p;
    }

    static Path stories() { return root().resolve("models/stories260K"); }
    static Path storiesPth() { return stories().resolve("model.pth"); }
    static Path storiesBin() { return stories().resolve("stories260K.bin"); }
    static Path storiesTokenizer() { return stories().resolve("tokenizer.model"); }
    static Path llama2Tokenizer() { return root().resolve("tokenizers/llama2-tokenizer.model"); }

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

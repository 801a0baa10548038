package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** llama2.c's version-1 export ("ak42" header, norms first), written here from the legacy file. */
class Llama2cVersion1Test {

    @Test
    void version1CheckpointReproducesTheReference(@TempDir Path dir) throws IOException {
        Path model = Files.createDirectory(dir.resolve("v1model"));
        Path bin = model.resolve("model.bin");
        Llama2cWeights.read(SharedData.storiesBin()).write(bin, 5, true);
        Files.copy(SharedData.storiesTokenizer(), model.resolve("tokenizer.model"));
        assertEquals(CheckpointFormat.LLAMA2C, CheckpointFormat.detect(bin));
        assertTrue(ConfigResolver.resolve(bin, null).source().startsWith("llama2.c header"));
        try (Engine engine = Engine.load(EngineOptions.of(bin))) {
            for (SharedData.GreedyCase c : SharedData.greedyCases().subList(0, 3)) {
                int n = Math.min(80, c.maxNewTokens());
                int[] out = engine.generate(c.promptTokens(), GenerationParams.builder().greedy().maxNewTokens(n)
                        .stopTokens(1).build(), null, new CancellationToken()).generatedTokens();
                assertArrayEquals(Arrays.copyOf(c.generatedTokens(), n), out, c.prompt());
            }
        }
        byte[] full = Files.readAllBytes(bin);
        Files.write(bin, Arrays.copyOf(full, full.length - 64));
        GptFastException e = assertThrows(GptFastException.class, () -> Engine.load(EngineOptions.of(bin)));
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }
}

package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Long contexts are not allocated by default; sliding-window models stay within their window. */
class ContextLengthTest {

    @Test
    void cacheLengthRules() {
        Engine.CacheLength longModel = Engine.CacheLength.of(0, 131072, 0);
        assertEquals(Defaults.MAX_SEQ_LEN_CAP, longModel.length());
        assertTrue(longModel.note().contains("131072") && longModel.note().contains("--max-seq-len"), longModel.note());
        assertEquals(new Engine.CacheLength(0, null), Engine.CacheLength.of(0, 4096, 0));       // the model's own
        assertEquals(new Engine.CacheLength(20000, null), Engine.CacheLength.of(20000, 131072, 0));  // asked for
        Engine.CacheLength mistral = Engine.CacheLength.of(0, 32768, 4096);
        assertEquals(4096, mistral.length());
        assertTrue(mistral.note().contains("sliding window"), mistral.note());
        assertEquals(4096, Engine.CacheLength.of(4096, 32768, 4096).length());
        GptFastException e = assertThrows(GptFastException.class, () -> Engine.CacheLength.of(8192, 32768, 4096));
        assertTrue(e.getMessage().contains("sliding attention window of 4096"), e.getMessage());
    }

    @Test
    void huggingFaceConfigs(@TempDir Path dir) throws IOException {
        Llama3Tiny.writeHfDirectory(dir, 131072);
        try (Engine engine = Engine.load(EngineOptions.of(dir))) {
            assertEquals(Defaults.MAX_SEQ_LEN_CAP, engine.contextLength());
            int[] tooLong = new int[Defaults.MAX_SEQ_LEN_CAP + 1];
            java.util.Arrays.fill(tooLong, 9906);
            GptFastException e = assertThrows(GptFastException.class, () -> engine.generate(tooLong,
                    GenerationParams.builder().build(), null, new CancellationToken()));
            assertTrue(e.getMessage().contains("raise --max-seq-len"), e.getMessage());
        }
        try (Engine engine = Engine.load(EngineOptions.of(dir).withMaxSeqLen(10000))) {
            assertEquals(10000, engine.contextLength());
            assertNull(engine.cacheNote());
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode cfg = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
        cfg.put("sliding_window", 4096);
        json.writeValue(dir.resolve("config.json").toFile(), cfg);
        GptFastException e = assertThrows(GptFastException.class, () -> Engine.load(EngineOptions.of(dir).withMaxSeqLen(8192)));
        assertTrue(e.getMessage().contains("sliding attention window of 4096"), e.getMessage());
        try (Engine engine = Engine.load(EngineOptions.of(dir))) {
            assertEquals(4096, engine.contextLength());
        }
        ((ObjectNode) cfg.get("rope_scaling")).put("rope_type", "yarn");
        json.writeValue(dir.resolve("config.json").toFile(), cfg);
        e = assertThrows(GptFastException.class, () -> Engine.load(EngineOptions.of(dir)));
        assertTrue(e.getMessage().contains("rope_scaling type 'yarn'"), e.getMessage());
        Files.delete(dir.resolve("config.json"));
    }
}

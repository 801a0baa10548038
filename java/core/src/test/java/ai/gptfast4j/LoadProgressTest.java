package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/** Engine.load's progress: the bytes the native loaders read, against what they expected. */
class LoadProgressTest {
    private static List<long[]> load(Path checkpoint) {
        List<long[]> calls = new ArrayList<>();
        try (Engine engine = Engine.load(EngineOptions.of(checkpoint), (done, total) -> {
            synchronized (calls) {
                calls.add(new long[] {done, total});
            }
        })) {
            assertTrue(engine.contextLength() > 0);
        }
        return calls;
    }

    @Test
    void progressEndsAtTheCheckpointsSizeAndNeverGoesBack() throws Exception {
        for (Path file : List.of(SharedData.storiesPth(), SharedData.storiesBin())) {
            List<long[]> calls = load(file);
            assertTrue(!calls.isEmpty(), "the final state is always reported");
            long[] last = calls.get(calls.size() - 1);
            long size = Files.size(file);
            // model.pth: the whole zip; llama2.c: everything after the 28-byte header
            long expected = file.toString().endsWith(".pth") ? size : size - 28;
            assertEquals(expected, last[1], file.toString());
            assertEquals(last[1], last[0], "all read: " + file);
            for (int i = 1; i < calls.size(); i++) {
                assertTrue(calls.get(i)[0] >= calls.get(i - 1)[0], "never goes back");
            }
        }
    }

    /**
     * Random weights: what is drawn counts, in the model's dtype, and ends at the weights' size computed here from
     * the shapes (embeddings and head, per layer wqkv, wo, w1, w2, w3 and two norms, the final norm).
     */
    @Test
    void randomWeightsCountTheBytesDrawn() {
        ModelConfig config = new ModelConfig(64, 3, 8, 4, 8, 172, 512, 128, 10000f, 1e-5f, 0f, 0f, 0f, 0);
        long perLayer = (8 + 2 * 4) * 8L * 64 + 64L * 8 * 8 + 3L * 172 * 64 + 2 * 64;
        long elements = 2L * 512 * 64 + 3 * perLayer + 64;
        for (String dtype : List.of("fp32", "bf16")) {
            List<long[]> calls = new ArrayList<>();
            try (Tokenizer tokenizer = Tokenizers.open(SharedData.storiesTokenizer());
                 Engine engine = Engine.random(config, 3, tokenizer,
                         new EngineOptions(Path.of("random"), null, null, dtype, "cpu", 1, 0), 0, (done, total) -> {
                             synchronized (calls) {
                                 calls.add(new long[] {done, total});
                             }
                         })) {
                assertTrue(engine.contextLength() > 0);
            }
            long[] last = calls.get(calls.size() - 1);
            assertEquals(elements * (dtype.equals("fp32") ? 4 : 2), last[1], dtype);
            assertEquals(last[1], last[0], "all drawn: " + dtype);
            for (int i = 1; i < calls.size(); i++) assertTrue(calls.get(i)[0] >= calls.get(i - 1)[0], "never goes back");
        }
    }

    /** Counts are per loading thread: a load on another thread, even while this one watches, adds nothing. */
    @Test
    void anotherThreadsLoadDoesNotCount() throws Exception {
        try (ai.gptfast4j.natives.GptFastNative.LoadProgress progress = new ai.gptfast4j.natives.GptFastNative.LoadProgress()) {
            progress.watch();
            try {
                CompletableFuture.runAsync(() -> Engine.load(EngineOptions.of(SharedData.storiesPth())).close()).get();
                assertEquals(0, progress.total());
                assertEquals(0, progress.done());
                Engine.load(EngineOptions.of(SharedData.storiesBin())).close();
                assertEquals(Files.size(SharedData.storiesBin()) - 28, progress.done());
            } finally {
                progress.unwatch();
            }
            Engine.load(EngineOptions.of(SharedData.storiesBin())).close();  // no longer watched
            assertEquals(Files.size(SharedData.storiesBin()) - 28, progress.total());
        }
    }
}

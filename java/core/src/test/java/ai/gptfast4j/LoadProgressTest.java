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

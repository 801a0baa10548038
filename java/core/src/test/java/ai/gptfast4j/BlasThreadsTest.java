package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.gptfast4j.natives.GptFastNative;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * An engine's thread count reaches the OpenBLAS that libtorch's CPU GEMMs run on (its own pool,
 * which at::set_num_threads leaves alone), also in a JVM, which loads libtorch and its
 * dependencies without RTLD_GLOBAL, so a lookup in the global scope alone finds nothing there.
 */
class BlasThreadsTest {
    @Test
    void anEngineSetsOpenBlasToItsThreadCount() throws Exception {
        for (int threads : new int[] {1, 2, 1}) {
            try (Engine engine = Engine.load(EngineOptions.of(SharedData.storiesPth()).withThreads(threads))) {
                Assumptions.assumeTrue(Files.readString(Path.of("/proc/self/maps")).contains("libopenblas"),
                        "this libtorch runs on another BLAS");
                assertEquals(threads, GptFastNative.blasThreadCount(), "OpenBLAS threads after loading with " + threads);
            }
        }
    }
}

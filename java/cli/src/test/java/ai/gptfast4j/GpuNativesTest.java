package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CUDA natives (gptfast4j-core:linux-x86_64-gpu, built by ./build.sh cuda) with bytedeco's
 * CUDA libtorch, chosen by -Dorg.bytedeco.javacpp.platform.extension=-gpu: the CLI uses exactly
 * that variant, and where it cannot load (no CUDA libraries, as on a machine without a GPU) it
 * says so in one line naming the variant and exits 1 (JavaCPP itself would silently fall back to
 * the CPU libtorch), never crashing the JVM.
 */
class GpuNativesTest {
    @TempDir Path dir;

    @Test
    void theGpuVariantLoadsOrSaysWhyNot() throws Exception {
        Path natives = Path.of(System.getProperty("gptfast.gpuNatives"));
        Path torch = Path.of(System.getProperty("gptfast.gpuLibtorch"));
        assumeTrue(Files.isRegularFile(natives) && Files.isRegularFile(torch),
                "CUDA natives not built (./build.sh cuda): " + natives + ", " + torch);
        List<String> cp = CliProcess.testClassPath();
        cp.add(natives.toString());
        cp.add(torch.toString());
        List<String> gpu = List.of("-Dorg.bytedeco.javacpp.platform.extension=-gpu");

        CliProcess.Result doctor = CliProcess.run(dir, cp, gpu, "doctor");
        assertFalse(Files.exists(dir.resolve("hs_err.log")), "the JVM crashed");
        if (doctor.code() == 0) {  // a machine with CUDA 13 libraries: the GPU variant, not a fallback
            assertTrue(doctor.out().contains("natives: linux-x86_64-gpu"), doctor.out());
            assertTrue(doctor.out().contains("libtorch loaded: 2.10.0 from ") && doctor.out().contains("/linux-x86_64-gpu/"),
                    doctor.out());
            return;
        }
        assertEquals(1, doctor.code(), doctor.out() + doctor.err());
        assertTrue(doctor.out().contains("natives: NOT USABLE") && doctor.out().contains("linux-x86_64-gpu libtorch")
                && doctor.out().contains("fell back"), doctor.out());

        CliProcess.Result generate = CliProcess.run(dir, cp, gpu, "generate", "--device", "cuda", "--prompt", "Hi",
                "--max-new-tokens", "3");
        assertEquals(1, generate.code(), generate.err());
        List<String> errors = generate.err().lines().filter(l -> l.startsWith("gptfast: error:")).toList();
        assertEquals(1, errors.size(), generate.err());
        assertTrue(errors.get(0).contains("linux-x86_64-gpu"), errors.get(0));
        assertFalse(generate.err().contains("Exception in thread"), generate.err());
        assertFalse(Files.exists(dir.resolve("hs_err.log")), "the JVM crashed");
    }
}

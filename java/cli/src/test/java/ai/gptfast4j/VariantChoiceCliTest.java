package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The natives chooser end to end on a machine without an NVIDIA driver (this one, CI): the CLI
 * loads the CPU natives and says why in one stderr line, a forced GPU choice is a one-line error,
 * and `--device cuda` says why the GPU natives were not chosen. Each run in a JVM of its own
 * ({@link CliProcess}): the choice is made once per JVM.
 */
class VariantChoiceCliTest {
    private static final String NO_DRIVER = "no NVIDIA driver (libcuda.so.1 not found)";

    @TempDir Path dir;

    @BeforeAll
    static void noDriverHere() {
        boolean nvidia = Files.exists(Path.of("/proc/driver/nvidia/version"));
        if (nvidia) System.out.println("VariantChoiceCliTest skipped: this machine has an NVIDIA driver");
        assumeFalse(nvidia, "this machine has an NVIDIA driver");
    }

    private CliProcess.Result run(List<String> jvmOptions, Map<String, String> env, String... args) throws Exception {
        CliProcess.Result r = CliProcess.run(dir, CliProcess.testClassPath(), jvmOptions, env, args);
        assertFalse(Files.exists(dir.resolve("hs_err.log")), "the JVM crashed: " + r.err());
        assertFalse(r.err().contains("Exception in thread"), r.err());
        return r;
    }

    private static List<String> errors(CliProcess.Result r) {
        return r.err().lines().filter(l -> l.startsWith("gptfast: error:")).toList();
    }

    @Test
    void theCpuNativesAreChosenSayingWhyOnce() throws Exception {
        CliProcess.Result r = run(List.of(), Map.of("GPTFAST_VARIANT", ""), "generate", "--prompt", "Once", "--max-new-tokens", "2",
                "--temperature", "0");
        assertEquals(0, r.code(), r.err());
        List<String> said = r.err().lines().filter(l -> l.startsWith("gptfast4j: ") && l.contains("natives")).toList();
        assertEquals(List.of("gptfast4j: CPU natives: " + NO_DRIVER), said, r.err());
    }

    @Test
    void forcingTheGpuNativesHereIsOneLineNamingTheCause() throws Exception {
        CliProcess.Result env = run(List.of(), Map.of("GPTFAST_VARIANT", "gpu"), "generate", "--prompt", "Once",
                "--max-new-tokens", "2");
        assertEquals(1, env.code(), env.err());
        assertEquals(List.of("gptfast: error: GPTFAST_VARIANT=gpu: the GPU natives cannot be used: " + NO_DRIVER), errors(env),
                env.err());
        assertTrue(env.out().isEmpty(), env.out());
        // the property wins over the variable
        CliProcess.Result property = run(List.of("-Dgptfast.variant=gpu"), Map.of("GPTFAST_VARIANT", "cpu"), "doctor");
        assertEquals(1, property.code(), property.out() + property.err());
        assertTrue(property.out().contains("natives: NOT USABLE: -Dgptfast.variant=gpu: the GPU natives cannot be used: "
                + NO_DRIVER), property.out());
    }

    @Test
    void deviceCudaWithTheCpuNativesSaysWhyTheyWereChosen() throws Exception {
        CliProcess.Result r = run(List.of(), Map.of("GPTFAST_VARIANT", ""), "generate", "--device", "cuda", "--prompt", "Once",
                "--max-new-tokens", "2");
        assertEquals(2, r.code(), r.err());  // a bad option value, as the CLI reports those
        List<String> errors = r.err().lines().filter(l -> l.startsWith("gptfast: device 'cuda'")).toList();
        assertEquals(1, errors.size(), r.err());
        assertTrue(errors.get(0).contains("CUDA is not usable here") && errors.get(0).contains("the CPU natives were chosen: "
                + NO_DRIVER), errors.get(0));
    }

    @Test
    void doctorPrintsTheDriverAndTheChoiceOnlyOnStdout() throws Exception {
        CliProcess.Result r = run(List.of(), Map.of("GPTFAST_VARIANT", ""), "doctor");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("\nnvidia driver: none (libcuda.so.1 not found)\n"), r.out());
        assertTrue(r.out().contains("\nvariant: CPU natives: " + NO_DRIVER + "\n"), r.out());
        assertTrue(r.out().contains("\njavacpp: platform " + org.bytedeco.javacpp.Loader.getPlatform() + ", extension (none)\n"),
                r.out());
        assertFalse(r.err().contains("natives"), "said once, on stdout: " + r.err());
    }
}

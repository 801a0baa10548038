package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import org.bytedeco.javacpp.Loader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The natives chooser through the real dlopen path with a stand-in libcuda.so.1
 * (native/test/fake_cuda_driver.cpp, found first through LD_LIBRARY_PATH) that reports a CUDA
 * version and device count, and a GPU variant on the class path that says it was built with
 * CUDA 13.0 (a natives folder with only its properties: nothing gets as far as loading it). No
 * GPU is involved: this checks the choice, its line and that a GPU choice makes JavaCPP load
 * bytedeco's CUDA libtorch, not that anything runs on a GPU.
 */
class FakeDriverCliTest {
    private static final String P = Loader.getPlatform();

    @TempDir Path dir;

    private CliProcess.Result run(boolean gpuLibtorch, Map<String, String> driver, String... args) throws Exception {
        Path fake = Path.of(System.getProperty("gptfast.fakeCudaDriver"));
        assumeTrue(Files.isRegularFile(fake.resolve("libcuda.so.1")), "the stand-in driver is not built: " + fake);
        Path variant = dir.resolve("gpu-variant");
        Path properties = variant.resolve("ai/gptfast4j/natives/" + P + "-gpu/gptfast4j-native.properties");
        Files.createDirectories(properties.getParent());
        Files.writeString(properties, "torch.version=2.10.0\ncuda=true\ncuda.version=13.0\n");
        List<String> cp = CliProcess.testClassPath();
        cp.add(variant.toString());
        if (gpuLibtorch) {
            Path torch = Path.of(System.getProperty("gptfast.gpuLibtorch"));
            assumeTrue(Files.isRegularFile(torch), "bytedeco's CUDA libtorch jar is not in the local repository: " + torch);
            cp.add(torch.toString());
        }
        Map<String, String> env = new HashMap<>(driver);
        env.put("LD_LIBRARY_PATH", fake.toString());
        env.put("GPTFAST_VARIANT", "");
        CliProcess.Result r = CliProcess.run(dir, cp, List.of(), env, args);
        assertFalse(Files.exists(dir.resolve("hs_err.log")), "the JVM crashed: " + r.err());
        assertFalse(r.err().contains("Exception in thread"), r.err());
        return r;
    }

    @Test
    void aSupportingDriverChoosesTheGpuNativesAndSetsJavacppsExtension() throws Exception {
        CliProcess.Result r = run(true, Map.of(), "doctor");
        assertTrue(r.out().contains("\nnvidia driver: CUDA 13.2, 1 GPU\n"), r.out());
        assertTrue(r.out().contains("\nvariant: CUDA 13.0 natives (" + P + "-gpu): the driver supports CUDA 13.2, 1 GPU\n"),
                r.out());
        // Here bytedeco's CUDA libtorch cannot load (no CUDA libraries): refused in one line, not a CPU run.
        assertEquals(1, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("natives: NOT USABLE: the " + P + "-gpu libtorch") && r.out().contains("fell back")
                && r.out().contains("set -Dgptfast.variant=cpu"), r.out());
        // JavaCPP took the choice: it reads the -gpu folders for our natives too. (bytedeco's pytorch
        // classes list "-gpu" themselves: JavaCPP tries that jar whenever it is on the class path.)
        assertTrue(r.out().contains("\njavacpp: platform " + P + ", extension -gpu\n"), r.out());
    }

    @Test
    void aDriverTooOldRunsOnTheCpuAskingForAnUpdate() throws Exception {
        CliProcess.Result r = run(false, Map.of("GPTFAST_FAKE_CUDA_VERSION", "12040"), "generate", "--prompt", "Once",
                "--max-new-tokens", "2", "--temperature", "0");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("gptfast4j: CPU natives: the driver supports CUDA 12.4 but the only GPU natives here"
                + " need CUDA 13; update the driver (>= 580) or use GPU natives built for CUDA 12\n"), r.err());
    }

    @Test
    void noVisibleGpuOrABrokenDriverIsSaid() throws Exception {
        CliProcess.Result none = run(false, Map.of("GPTFAST_FAKE_CUDA_DEVICES", "0"), "doctor");
        assertEquals(0, none.code(), none.out() + none.err());
        assertTrue(none.out().contains("\nnvidia driver: CUDA 13.2, 0 GPUs (cuInit: CUDA_ERROR_NO_DEVICE)\n"), none.out());
        assertTrue(none.out().contains("\nvariant: CPU natives: the NVIDIA driver (CUDA 13.2) finds no usable GPU"), none.out());

        CliProcess.Result broken = run(false, Map.of("GPTFAST_FAKE_CUDA_FAIL", "version"), "doctor");
        assertEquals(0, broken.code(), broken.out() + broken.err());
        assertTrue(broken.out().contains("\nnvidia driver: unusable (cuDriverGetVersion failed: CUDA_ERROR_UNKNOWN)\n"),
                broken.out());
        assertTrue(broken.out().contains("\nvariant: CPU natives: the NVIDIA driver cannot be used (cuDriverGetVersion failed:"
                + " CUDA_ERROR_UNKNOWN)\n"), broken.out());
    }

    /**
     * Only the GPU natives on the class path, as with only the {@code -gpu} classifier jar: the
     * driver probe runs before the choice, when JavaCPP looks in the CPU natives folder, so its
     * JNI library must come from the GPU folder. A supporting driver then chooses the GPU natives;
     * one that sees no GPU chooses the absent CPU natives, said with the reason. (The GPU folder
     * here holds the JNI glue, as the -gpu jar does, and properties saying CUDA 13.0; no CUDA
     * libgptfast.so: nothing gets as far as loading it.)
     */
    @Test
    void onlyTheGpuNativesJarStillProbesTheDriver() throws Exception {
        Path fake = Path.of(System.getProperty("gptfast.fakeCudaDriver"));
        assumeTrue(Files.isRegularFile(fake.resolve("libcuda.so.1")), "the stand-in driver is not built: " + fake);
        Path gpuOnly = dir.resolve("gpu-only");
        Path folder = gpuOnly.resolve("ai/gptfast4j/natives/" + P + "-gpu");
        Files.createDirectories(folder);
        List<String> cp = new ArrayList<>();
        for (String entry : CliProcess.testClassPath()) {
            if (!takeCpuNatives(Path.of(entry), folder)) cp.add(entry);  // the CPU natives leave the class path
        }
        assertTrue(Files.isRegularFile(folder.resolve("libjniTorchProbe.so")), "no CPU natives on the test class path");
        cp.add(gpuOnly.toString());
        for (Map.Entry<String, String> devices : Map.of("1", "", "0", "0").entrySet()) {
            Map<String, String> env = new HashMap<>(Map.of("LD_LIBRARY_PATH", fake.toString(), "GPTFAST_VARIANT", ""));
            if (!devices.getValue().isEmpty()) env.put("GPTFAST_FAKE_CUDA_DEVICES", devices.getValue());
            Path run = Files.createDirectories(dir.resolve("run-" + devices.getKey()));
            CliProcess.Result r = CliProcess.run(run, cp, List.of(), env, "doctor");
            assertFalse(r.out().contains("cannot load the natives' probe"), r.out());
            if (devices.getKey().equals("1")) {
                assertTrue(r.out().contains("\nnvidia driver: CUDA 13.2, 1 GPU\n"), r.out());
                assertTrue(r.out().contains("\nvariant: CUDA 13.0 natives (" + P + "-gpu): the driver supports CUDA 13.2, 1 GPU\n"),
                        r.out());
            } else {
                assertTrue(r.out().contains("\nvariant: CPU natives: the NVIDIA driver (CUDA 13.2) finds no usable GPU"), r.out());
                assertTrue(r.out().contains("natives: NOT USABLE: gptfast4j's native library for " + P + " is not on the class"
                        + " path") && r.out().contains("(the CPU natives were chosen: the NVIDIA driver (CUDA 13.2) finds no"
                        + " usable GPU"), r.out());
            }
        }
    }

    /**
     * Whether class path entry {@code entry} (a directory or a jar) holds the CPU natives folder; if
     * so its JNI glue is copied to {@code gpuFolder} and, as ./build.sh cuda writes it, properties
     * saying CUDA 13.0 for the same libtorch.
     */
    private static boolean takeCpuNatives(Path entry, Path gpuFolder) throws Exception {
        String cpu = "ai/gptfast4j/natives/" + P + "/";
        String properties = null;
        if (Files.isDirectory(entry.resolve(cpu))) {
            try (var files = Files.list(entry.resolve(cpu))) {
                for (Path f : files.toList()) {
                    String name = f.getFileName().toString();
                    if (name.startsWith("libjni")) Files.copy(f, gpuFolder.resolve(name), StandardCopyOption.REPLACE_EXISTING);
                    if (name.equals("gptfast4j-native.properties")) properties = Files.readString(f);
                }
            }
        } else if (entry.toString().endsWith(".jar") && Files.isRegularFile(entry)) {
            try (JarFile jar = new JarFile(entry.toFile())) {
                if (jar.getEntry(cpu) == null && jar.getEntry(cpu + "gptfast4j-native.properties") == null) return false;
                for (JarEntry e : java.util.Collections.list(jar.entries())) {
                    String name = e.getName().substring(e.getName().lastIndexOf('/') + 1);
                    if (!e.getName().startsWith(cpu) || name.isEmpty()) continue;
                    try (var in = jar.getInputStream(e)) {
                        if (name.startsWith("libjni")) Files.copy(in, gpuFolder.resolve(name), StandardCopyOption.REPLACE_EXISTING);
                        if (name.equals("gptfast4j-native.properties")) properties = new String(in.readAllBytes());
                    }
                }
            }
        } else {
            return false;
        }
        if (properties != null) {
            Files.writeString(gpuFolder.resolve("gptfast4j-native.properties"),
                    properties.replace("cuda=false", "cuda=true\ncuda.version=13.0"));
        }
        return true;
    }
}

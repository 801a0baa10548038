package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Enumeration;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.bytedeco.javacpp.Loader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The libtorch directory override (GPTFAST_LIBTORCH / -Dgptfast.libtorch), through the CLI in JVMs
 * of its own ({@link CliProcess}; the natives load once per JVM). The directories are "system
 * installs" made from the bytedeco jars on this test's class path: libtorch's .so files and
 * OpenBLAS's beside them, as build.sh extracts them for linking. A directory of our own, not
 * build.sh's cache: the build tree's libgptfast.so has that cache on its RUNPATH (the packaged
 * copy these tests load has $ORIGIN alone), so libtorch found there would not show that the
 * override was used.
 */
class LibtorchDirectoryTest {
    private static final String PLATFORM = Loader.getPlatform();

    @TempDir Path dir;

    /** Class path entries whose file name starts with {@code prefix} (e.g. "pytorch-"). */
    private static List<String> jars(String prefix) {
        return CliProcess.testClassPath().stream().filter(e -> Path.of(e).getFileName().toString().startsWith(prefix)).toList();
    }

    /**
     * A directory of libtorch's and OpenBLAS's libraries from bytedeco's natives jars (made once
     * under target/, where it is kept), or a skip that says why it cannot be made.
     */
    private static Path libtorchDirectory(String name, Path pytorchJar) throws IOException {
        Path target = Path.of(System.getProperty("gptfast.libtorchDirectories")).resolve(name);
        if (Files.isRegularFile(target.resolve("libtorch_cpu.so"))) return target;
        List<String> openblas = jars("openblas-").stream().filter(j -> j.endsWith("-" + PLATFORM + ".jar")).toList();
        if (!Files.isRegularFile(pytorchJar) || openblas.size() != 1) {
            String reason = "no libtorch directory can be made: need " + pytorchJar + " and one openblas-*-" + PLATFORM
                    + ".jar on the class path (found " + openblas + ")";
            System.out.println("LibtorchDirectoryTest skipped: " + reason);
            assumeTrue(false, reason);
        }
        Path tmp = target.resolveSibling(name + ".tmp");
        if (Files.exists(tmp)) {
            try (Stream<Path> files = Files.list(tmp)) {
                for (Path f : files.toList()) Files.delete(f);
            }
        }
        Files.createDirectories(tmp);
        extractLibraries(pytorchJar, "org/bytedeco/pytorch/" + PLATFORM + "/", tmp);
        extractLibraries(Path.of(openblas.get(0)), "org/bytedeco/openblas/" + PLATFORM + "/", tmp);
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        return target;
    }

    /** The lib*.so* files of one folder of a bytedeco jar, not its JNI glue (as build.sh's bytedeco_libs). */
    private static void extractLibraries(Path jar, String folder, Path into) throws IOException {
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            for (Enumeration<? extends ZipEntry> e = zip.entries(); e.hasMoreElements();) {
                ZipEntry entry = e.nextElement();
                String name = entry.getName().substring(entry.getName().lastIndexOf('/') + 1);
                if (!entry.getName().equals(folder + name) || !name.startsWith("lib") || !name.contains(".so")
                        || name.startsWith("libjni")) {
                    continue;
                }
                try (InputStream in = zip.getInputStream(entry)) {
                    Files.copy(in, into.resolve(name));
                }
            }
        }
    }

    /** bytedeco's libtorch of the version the natives were built against, as a directory. */
    private static Path sameVersion() throws IOException {
        List<String> pytorch = jars("pytorch-").stream().filter(j -> j.endsWith("-" + PLATFORM + ".jar")).toList();
        return libtorchDirectory("libtorch-same", Path.of(pytorch.isEmpty() ? "(no pytorch-*-" + PLATFORM + ".jar)" : pytorch.get(0)));
    }

    private CliProcess.Result run(List<String> classPath, List<String> jvmOptions, Map<String, String> env, String... args)
            throws Exception {
        CliProcess.Result r = CliProcess.run(dir, classPath, jvmOptions, env, args);
        assertFalse(Files.exists(dir.resolve("hs_err.log")), "the JVM crashed: " + r.err());
        assertFalse(r.err().contains("Exception in thread"), r.err());
        return r;
    }

    @Test
    void greedyGenerationThroughTheDirectoryEqualsTheReferenceWithoutBytedecosPytorch() throws Exception {
        Path libtorch = sameVersion();
        // Without bytedeco's pytorch jars: nothing of theirs may be needed once a directory is named.
        List<String> cp = CliProcess.testClassPath().stream()
                .filter(e -> !Path.of(e).getFileName().toString().startsWith("pytorch-")).toList();
        assertEquals(2, CliProcess.testClassPath().size() - cp.size(), "expected the pytorch jar and its natives on the class path");
        SharedData.GreedyCase c = SharedData.greedyCases().get(0);
        CliProcess.Result r = run(cp, List.of(), Map.of("GPTFAST_LIBTORCH", libtorch.toString()), "generate",
                "--checkpoint", SharedData.storiesPth().toString(), "--prompt", c.prompt(), "--temperature", "0",
                "--max-new-tokens", String.valueOf(c.maxNewTokens()), "--stop-token", "1", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode json = new ObjectMapper().readTree(r.out());
        assertArrayEquals(c.generatedTokens(), new ObjectMapper().treeToValue(json.get("generated_tokens"), int[].class));
        assertEquals(c.text(), json.get("text").asText());
        // The path comes from the dynamic linker's list of loaded objects, not from the setting.
        assertTrue(r.err().contains("gptfast4j: libtorch loaded: 2.10.0 from " + libtorch.resolve("libtorch_cpu.so")
                + " (GPTFAST_LIBTORCH)"), r.err());
    }

    /** With bytedeco's jars on the class path too, the directory wins, and the property wins over the variable. */
    @Test
    void thePropertyWinsAndBytedecosLibtorchIsNeverLoaded() throws Exception {
        Path libtorch = sameVersion();
        CliProcess.Result r = run(CliProcess.testClassPath(), List.of("-Dgptfast.libtorch=" + libtorch),
                Map.of("GPTFAST_LIBTORCH", dir.resolve("not-this-one").toString()), "doctor");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("libtorch loaded: 2.10.0 from " + libtorch.resolve("libtorch_cpu.so")
                + " (-Dgptfast.libtorch)"), r.out());
        assertTrue(r.out().contains("env GPTFAST_LIBTORCH=" + dir.resolve("not-this-one")), r.out());
        // doctor prints what loading would announce: once, not once more on stderr
        assertEquals(1, (r.out() + r.err()).split("libtorch loaded: ", -1).length - 1, r.out() + r.err());
        assertTrue(r.out().contains("decode kernels: "), r.out());
        // JavaCPP extracts what it loads from jars into its cache: its own glue, no libtorch of bytedeco's.
        try (Stream<Path> files = Files.walk(dir.resolve("javacpp"))) {
            List<String> names = files.map(f -> f.getFileName().toString()).toList();
            assertTrue(names.contains("libjnijavacpp.so"), names.toString());
            assertFalse(names.stream().anyMatch(n -> n.startsWith("libtorch") || n.startsWith("libc10") || n.contains("jnitorch")),
                    names.toString());
        }
    }

    private void assertRefused(Path libtorch, String... parts) throws Exception {
        CliProcess.Result r = run(CliProcess.testClassPath(), List.of(), Map.of("GPTFAST_LIBTORCH", libtorch.toString()),
                "generate", "--checkpoint", SharedData.storiesPth().toString(), "--prompt", "Hi", "--max-new-tokens", "2");
        assertEquals(1, r.code(), r.err());
        List<String> errors = r.err().lines().filter(l -> l.startsWith("gptfast: error:")).toList();
        assertEquals(1, errors.size(), r.err());
        assertTrue(errors.get(0).contains(libtorch.toString()), errors.get(0));
        for (String part : parts) assertTrue(errors.get(0).contains(part), errors.get(0));
        assertTrue(r.out().isEmpty(), "nothing generated: " + r.out());
    }

    @Test
    void aMissingDirectoryAFileAndADirectoryWithoutLibtorchCpuAreOneLineErrors() throws Exception {
        assertRefused(dir.resolve("no-such-dir"), "GPTFAST_LIBTORCH=", "no such directory");
        Path file = Files.writeString(dir.resolve("a-file"), "not a directory");
        assertRefused(file, "not a directory");
        Path empty = Files.createDirectories(dir.resolve("empty"));
        Files.writeString(empty.resolve("libc10.so"), "");
        assertRefused(empty, "no libtorch_cpu.so");
    }

    @Test
    void aDirectoryWithAnotherLibtorchVersionIsRefusedNamingBoth() throws Exception {
        Path other;
        try (Stream<Path> jars = Files.list(Path.of(System.getProperty("gptfast.otherLibtorch")))) {
            other = libtorchDirectory("libtorch-other", jars.filter(j -> j.getFileName().toString().endsWith("-" + PLATFORM + ".jar"))
                    .findFirst().orElse(Path.of("(no other pytorch-*-" + PLATFORM + ".jar)")));
        }
        assertRefused(other, "built against libtorch 2.10.0", "is 2.7.1");
    }
}

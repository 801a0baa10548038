package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CLI in a JVM of its own, with the bytedeco libtorch it was built against swapped for a real
 * older one (org.bytedeco:pytorch 2.7.1, copied by the pom): the version check must stop it with
 * one line naming both versions and exit 1, not crash in the dynamic linker or the JVM.
 */
class LibtorchVersionCheckTest {
    @TempDir Path dir;

    record Result(int code, String out, String err) {}

    private Result runWith(boolean otherLibtorch, String... args) throws Exception {
        List<String> cp = new ArrayList<>();
        int replaced = 0;
        for (String e : System.getProperty("java.class.path").split(File.pathSeparator)) {
            if (otherLibtorch && Path.of(e).getFileName().toString().startsWith("pytorch-")) {
                replaced++;
                continue;
            }
            cp.add(e);
        }
        if (otherLibtorch) {
            assertEquals(2, replaced, "expected the pytorch jar and its natives on the test class path");
            try (Stream<Path> jars = Files.list(Path.of(System.getProperty("gptfast.otherLibtorch")))) {
                jars.forEach(j -> cp.add(j.toString()));
            }
        }
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                // its own JavaCPP cache and crash-file folder, so that a crash would leave evidence here
                "-Dorg.bytedeco.javacpp.cachedir=" + dir.resolve("javacpp"), "-XX:ErrorFile=" + dir.resolve("hs_err.log"),
                "-cp", String.join(File.pathSeparator, cp), "ai.gptfast4j.cli.GptFastCli"));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).directory(dir.toFile())
                .redirectOutput(dir.resolve("out.txt").toFile()).redirectError(dir.resolve("err.txt").toFile()).start();
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "the CLI did not exit");
        return new Result(p.exitValue(), Files.readString(dir.resolve("out.txt"), StandardCharsets.UTF_8),
                Files.readString(dir.resolve("err.txt"), StandardCharsets.UTF_8));
    }

    @Test
    void aLibtorchOfAnotherVersionIsNamedNotCrashedInto() throws Exception {
        Result r = runWith(true, "generate", "--prompt", "Once upon a time", "--max-new-tokens", "5");
        assertEquals(1, r.code(), r.err());
        List<String> errors = r.err().lines().filter(l -> l.startsWith("gptfast: error:")).toList();
        assertEquals(1, errors.size(), r.err());
        assertTrue(errors.get(0).contains("built against libtorch 2.10.0"), errors.get(0));
        assertTrue(errors.get(0).contains("is 2.7.1"), errors.get(0));
        assertFalse(r.err().contains("Exception in thread"), r.err());
        assertFalse(Files.exists(dir.resolve("hs_err.log")));
        assertTrue(r.out().isEmpty(), "nothing generated: " + r.out());

        Result doctor = runWith(true, "doctor");
        assertEquals(1, doctor.code(), doctor.err());
        assertTrue(doctor.out().contains("natives: NOT USABLE") && doctor.out().contains("is 2.7.1"), doctor.out());
    }

    /** The same JVM set-up with the right libtorch works: the failure above is the version, not the set-up. */
    @Test
    void theRightLibtorchPassesTheSameCheck() throws Exception {
        Result doctor = runWith(false, "doctor");
        assertEquals(0, doctor.code(), doctor.out() + doctor.err());
        assertTrue(doctor.out().contains("libtorch loaded: 2.10.0"), doctor.out());
        assertTrue(doctor.out().contains("decode kernels: "), doctor.out());
    }
}

package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CLI in a JVM of its own ({@link CliProcess}), with the bytedeco libtorch it was built against swapped for a real
 * older one (org.bytedeco:pytorch 2.7.1, copied by the pom): the version check must stop it with
 * one line naming both versions and exit 1, not crash in the dynamic linker or the JVM.
 */
class LibtorchVersionCheckTest {
    @TempDir Path dir;

    private CliProcess.Result runWith(boolean otherLibtorch, String... args) throws Exception {
        List<String> cp = new ArrayList<>();
        int replaced = 0;
        for (String e : CliProcess.testClassPath()) {
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
        return CliProcess.run(dir, cp, List.of(), args);
    }

    @Test
    void aLibtorchOfAnotherVersionIsNamedNotCrashedInto() throws Exception {
        CliProcess.Result r = runWith(true, "generate", "--prompt", "Once upon a time", "--max-new-tokens", "5");
        assertEquals(1, r.code(), r.err());
        List<String> errors = r.err().lines().filter(l -> l.startsWith("gptfast: error:")).toList();
        assertEquals(1, errors.size(), r.err());
        assertTrue(errors.get(0).contains("built against libtorch 2.10.0"), errors.get(0));
        assertTrue(errors.get(0).contains("is 2.7.1"), errors.get(0));
        assertFalse(r.err().contains("Exception in thread"), r.err());
        assertFalse(Files.exists(dir.resolve("hs_err.log")));
        assertTrue(r.out().isEmpty(), "nothing generated: " + r.out());

        CliProcess.Result doctor = runWith(true, "doctor");
        assertEquals(1, doctor.code(), doctor.err());
        assertTrue(doctor.out().contains("natives: NOT USABLE") && doctor.out().contains("is 2.7.1"), doctor.out());
    }

    /** The same JVM set-up with the right libtorch works: the failure above is the version, not the set-up. */
    @Test
    void theRightLibtorchPassesTheSameCheck() throws Exception {
        CliProcess.Result doctor = runWith(false, "doctor");
        assertEquals(0, doctor.code(), doctor.out() + doctor.err());
        assertTrue(doctor.out().contains("libtorch loaded: 2.10.0"), doctor.out());
        assertTrue(doctor.out().contains("decode kernels: "), doctor.out());
    }
}

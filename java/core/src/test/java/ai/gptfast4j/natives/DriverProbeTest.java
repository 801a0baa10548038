package ai.gptfast4j.natives;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.natives.VariantChooser.Driver;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The driver probe (driver_probe.h through TorchProbe's JNI library) on this machine: an answer,
 * never a crash, for a missing library, a library that is no driver, and the real libcuda.so.1.
 */
class DriverProbeTest {
    /** A machine with the NVIDIA kernel driver has this file; the CI and build machines have none. */
    private static final boolean NVIDIA = Files.exists(Path.of("/proc/driver/nvidia/version"));

    @Test
    void aMissingLibraryIsNoDriver() {
        String line = TorchProbe.cudaDriver("libgptfast-no-such-driver.so.1");
        Driver d = Driver.parse(line);
        assertEquals(Driver.Kind.NONE, d.kind(), line);
        assertTrue(d.detail().contains("libgptfast-no-such-driver.so.1"), line);
    }

    @Test
    void aLibraryThatIsNoDriverIsAnErrorNotACrash() {
        Driver d = Driver.parse(TorchProbe.cudaDriver("libc.so.6"));
        assertEquals(Driver.Kind.ERROR, d.kind(), d.toString());
        assertTrue(d.detail().contains("exports no cuDriverGetVersion"), d.detail());
    }

    @Test
    void thisMachinesDriverAndTheLoadersChoice() {
        Driver d = Driver.parse(TorchProbe.cudaDriver("libcuda.so.1"));
        if (NVIDIA) {
            System.out.println("DriverProbeTest: NVIDIA driver present: " + d.describe());
            assertNotEquals(Driver.Kind.NONE, d.kind(), d.toString());
            return;
        }
        assertEquals(Driver.Kind.NONE, d.kind(), d.toString());
        assertEquals("none (libcuda.so.1 not found)", d.describe());
        assertEquals("none (libcuda.so.1 not found)", NativeLibrary.driver());
        // No -Dgptfast.variant in the tests' JVM: the loader chose the CPU natives and says why.
        assertEquals(org.bytedeco.javacpp.Loader.getPlatform(), NativeLibrary.variant());
        assertEquals("CPU natives: no NVIDIA driver (libcuda.so.1 not found)", NativeLibrary.variantReason());
    }
}

package ai.gptfast4j.natives;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.natives.VariantChooser.Choice;
import ai.gptfast4j.natives.VariantChooser.Driver;
import ai.gptfast4j.natives.VariantChooser.GpuVariant;
import ai.gptfast4j.natives.VariantChooser.Setting;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Every branch of the variant rule, over its inputs: override, driver, GPU variants present. */
class VariantChooserTest {
    private static final String P = "linux-x86_64";
    private static final Driver NO_DRIVER = Driver.parse("none\tlibcuda.so.1: cannot open shared object file: No such file or directory");
    private static final Driver CUDA_13_2 = Driver.parse("ok\t13020\t1\t");
    private static final Driver CUDA_12_4 = Driver.parse("ok\t12040\t2\t");
    private static final GpuVariant GPU_13 = new GpuVariant(P + "-gpu", "-gpu", "13.0");
    private static final GpuVariant GPU_12 = new GpuVariant(P + "-gpu-cuda12", "-gpu-cuda12", "12.8");
    private static final Setting GPU = new Setting("GPTFAST_VARIANT", "gpu");

    private static Choice auto(Driver d, GpuVariant... present) {
        return VariantChooser.choose(P, null, null, d, List.of(present));
    }

    @Test
    void theDriverProbeLineIsRead() {
        assertEquals(new Driver(Driver.Kind.OK, 13020, 1, ""), CUDA_13_2);
        assertEquals("13.2", CUDA_13_2.cuda());
        assertEquals("CUDA 12.4, 2 GPUs", CUDA_12_4.describe());
        assertEquals("none (libcuda.so.1 not found)", NO_DRIVER.describe());
        assertEquals(new Driver(Driver.Kind.OK, 13000, 0, "cuInit: CUDA_ERROR_NO_DEVICE"),
                Driver.parse("ok\t13000\t0\tcuInit: CUDA_ERROR_NO_DEVICE"));
        assertEquals(Driver.Kind.ERROR, Driver.parse("error\tcuDriverGetVersion failed: CUDA_ERROR_STUB_LIBRARY").kind());
        Driver garbage = Driver.parse("ok\tthirteen");
        assertEquals(Driver.Kind.ERROR, garbage.kind());
        assertTrue(garbage.detail().contains("unreadable"), garbage.detail());
    }

    @Test
    void noDriverMeansCpuSayingSo() {
        Choice c = auto(NO_DRIVER, GPU_13);
        assertEquals(P, c.variant());
        assertFalse(c.gpu());
        assertEquals("CPU natives: no NVIDIA driver (libcuda.so.1 not found)", c.line());
        assertEquals("no NVIDIA driver (libcuda.so.1 not found)", c.whyNotGpu());
        // another dlerror is passed on as it is
        assertEquals("CPU natives: no NVIDIA driver (libcuda.so.1: wrong ELF class: ELFCLASS32)",
                auto(Driver.parse("none\tlibcuda.so.1: wrong ELF class: ELFCLASS32"), GPU_13).line());
    }

    @Test
    void aBrokenDriverOrNoVisibleGpuMeansCpuSayingSo() {
        Choice broken = auto(Driver.parse("error\tcuDriverGetVersion failed: CUDA_ERROR_STUB_LIBRARY"), GPU_13);
        assertEquals("CPU natives: the NVIDIA driver cannot be used (cuDriverGetVersion failed: CUDA_ERROR_STUB_LIBRARY)",
                broken.line());
        Choice none = auto(Driver.parse("ok\t13020\t0\tcuInit: CUDA_ERROR_NO_DEVICE"), GPU_13);
        assertEquals("CPU natives: the NVIDIA driver (CUDA 13.2) finds no usable GPU (cuInit: CUDA_ERROR_NO_DEVICE);"
                + " check nvidia-smi and CUDA_VISIBLE_DEVICES", none.line());
    }

    @Test
    void aDriverWithoutGpuNativesNamesTheJarToAdd() {
        Choice c = auto(CUDA_13_2);
        assertEquals("CPU natives: no GPU natives on the class path (the driver supports CUDA 13.2: add"
                + " ai.gptfast4j:gptfast4j-core:<version>:linux-x86_64-gpu)", c.line());
    }

    @Test
    void theHighestCudaTheDriverSupportsIsChosen() {
        Choice c = auto(CUDA_13_2, GPU_12, GPU_13);
        assertEquals(P + "-gpu", c.variant());
        assertEquals("-gpu", c.extension());
        assertNull(c.whyNotGpu());
        assertEquals("CUDA 13.0 natives (linux-x86_64-gpu): the driver supports CUDA 13.2, 1 GPU", c.line());
        // A CUDA 12.4 driver: the CUDA 12.8 build (minor version compatibility), not the CUDA 13 one.
        Choice older = auto(CUDA_12_4, GPU_13, GPU_12);
        assertEquals(P + "-gpu-cuda12", older.variant());
        assertEquals("CUDA 12.8 natives (linux-x86_64-gpu-cuda12): the driver supports CUDA 12.4, 2 GPUs", older.line());
        // X.0 exactly is enough for natives built with X.y
        assertEquals(P + "-gpu", auto(Driver.parse("ok\t13000\t1\t"), GPU_13, GPU_12).variant());
        assertEquals(P + "-gpu-cuda12", auto(Driver.parse("ok\t12990\t1\t"), GPU_13, GPU_12).variant());
    }

    @Test
    void aDriverTooOldForEveryGpuBuildMeansCpuAskingForAnUpdate() {
        Choice c = auto(CUDA_12_4, GPU_13);
        assertEquals(P, c.variant());
        assertEquals("CPU natives: the driver supports CUDA 12.4 but the only GPU natives here need CUDA 13; update the"
                + " driver (>= 580) or use GPU natives built for CUDA 12", c.line());
        Choice two = auto(Driver.parse("ok\t11080\t1\t"), GPU_13, GPU_12);
        assertEquals("CPU natives: the driver supports CUDA 11.8 but the only GPU natives here need CUDA 12 or 13; update"
                + " the driver (>= 525) or use GPU natives built for CUDA 11", two.line());
        // majors in numeric order; a major without a known driver branch is said as such
        Choice ancient = auto(Driver.parse("ok\t8000\t1\t"), GPU_12, new GpuVariant(P + "-gpu-cuda9", "-gpu-cuda9", "9.2"));
        assertEquals("CPU natives: the driver supports CUDA 8.0 but the only GPU natives here need CUDA 9 or 12; update the"
                + " driver (one for CUDA 9) or use GPU natives built for CUDA 8", ancient.line());
    }

    @Test
    void gpuNativesThatDoNotSayTheirCudaVersionAreNotChosen() {
        Choice c = auto(CUDA_13_2, new GpuVariant(P + "-gpu", "-gpu", null));
        assertEquals(P, c.variant());
        assertEquals("CPU natives: the GPU natives here (linux-x86_64-gpu) do not say which CUDA version they were built"
                + " for (rebuild them: ./build.sh cuda)", c.line());
    }

    @Test
    void theCpuOverrideWins() {
        Choice c = VariantChooser.choose(P, new Setting("-Dgptfast.variant", "CPU"), null, CUDA_13_2, List.of(GPU_13));
        assertEquals(P, c.variant());
        assertEquals("CPU natives: chosen by -Dgptfast.variant=CPU", c.line());
        assertEquals("chosen by -Dgptfast.variant=CPU", c.whyNotGpu());
    }

    @Test
    void theGpuOverrideChoosesLikeAutoOrFailsInOneLine() {
        Choice c = VariantChooser.choose(P, GPU, null, CUDA_13_2, List.of(GPU_13));
        assertEquals("CUDA 13.0 natives (linux-x86_64-gpu): chosen by GPTFAST_VARIANT=gpu; the driver supports CUDA 13.2,"
                + " 1 GPU", c.line());
        NativeLibraryException noDriver = assertThrows(NativeLibraryException.class,
                () -> VariantChooser.choose(P, GPU, null, NO_DRIVER, List.of(GPU_13)));
        assertEquals("GPTFAST_VARIANT=gpu: the GPU natives cannot be used: no NVIDIA driver (libcuda.so.1 not found)",
                noDriver.getMessage());
        NativeLibraryException old = assertThrows(NativeLibraryException.class,
                () -> VariantChooser.choose(P, GPU, null, CUDA_12_4, List.of(GPU_13)));
        assertTrue(old.getMessage().startsWith("GPTFAST_VARIANT=gpu: the GPU natives cannot be used: the driver supports"
                + " CUDA 12.4 but"), old.getMessage());
        NativeLibraryException none = assertThrows(NativeLibraryException.class,
                () -> VariantChooser.choose(P, GPU, null, CUDA_13_2, List.of()));
        assertTrue(none.getMessage().contains("no GPU natives on the class path"), none.getMessage());
    }

    @Test
    void autoSpelledOutIsTheDefaultAndOtherValuesAreRefused() {
        assertEquals(auto(CUDA_13_2, GPU_13),
                VariantChooser.choose(P, new Setting("GPTFAST_VARIANT", "auto"), null, CUDA_13_2, List.of(GPU_13)));
        NativeLibraryException e = assertThrows(NativeLibraryException.class,
                () -> VariantChooser.choose(P, new Setting("-Dgptfast.variant", "cuda"), null, CUDA_13_2, List.of(GPU_13)));
        assertEquals("-Dgptfast.variant=cuda: expected cpu, gpu or auto", e.getMessage());
    }

    @Test
    void javacppsExtensionPropertyIsHonouredAsAnExplicitChoice() {
        // As told, even without a driver: loading then says what is missing (GpuNativesTest).
        Choice c = VariantChooser.choose(P, null, "-gpu", NO_DRIVER, List.of(GPU_13));
        assertEquals(P + "-gpu", c.variant());
        assertTrue(c.gpu());
        assertEquals("CUDA 13.0 natives (linux-x86_64-gpu): chosen by -Dorg.bytedeco.javacpp.platform.extension=-gpu;"
                + " NVIDIA driver: none (libcuda.so.1 not found)", c.line());
        assertEquals(P + "-gpu", VariantChooser.choose(P, GPU, "-gpu", CUDA_13_2, List.of()).variant());
        NativeLibraryException e = assertThrows(NativeLibraryException.class,
                () -> VariantChooser.choose(P, new Setting("GPTFAST_VARIANT", "cpu"), "-gpu", CUDA_13_2, List.of(GPU_13)));
        assertEquals("GPTFAST_VARIANT=cpu contradicts -Dorg.bytedeco.javacpp.platform.extension=-gpu: drop one of them",
                e.getMessage());
    }
}

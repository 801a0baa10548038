package ai.gptfast4j.natives;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/**
 * The account of the loaded libtorch that doctor and the load line print, for the CUDA case this
 * machine cannot load (LibtorchDirectoryTest runs the CPU case end to end).
 */
class NativeLibraryDescribeTest {
    @Test
    void namesTheCudaRuntimeOnlyWhereOneIsLoaded() {
        String cpu = "PyTorch built with:\n  - Build settings: BLAS_INFO=open, TORCH_VERSION=2.10.0, USE_CUDA=0, \n";
        assertEquals("2.10.0 from /t/lib/libtorch_cpu.so (GPTFAST_LIBTORCH)",
                NativeLibrary.describe("2.10.0", "/t/lib/libtorch_cpu.so", "GPTFAST_LIBTORCH", cpu, ""));
        // pip's CUDA builds: "CUDA Runtime" from the CUDA hooks (a GPU present), CUDA_VERSION always.
        String cuda = "PyTorch built with:\n  - CUDA Runtime 12.8\n  - Build settings: CUDA_VERSION=12.6, TORCH_VERSION=2.10.0\n";
        assertEquals("2.10.0 from /t/lib/libtorch_cpu.so (-Dgptfast.libtorch), CUDA runtime 12.8 from /n/libcudart.so.12",
                NativeLibrary.describe("2.10.0", "/t/lib/libtorch_cpu.so", "-Dgptfast.libtorch", cuda, "/n/libcudart.so.12"));
        String noGpu = "PyTorch built with:\n  - Build settings: CUDA_VERSION=12.8, TORCH_VERSION=2.10.0\n";
        assertEquals("2.10.0 from /t/libtorch_cpu.so (GPTFAST_LIBTORCH), CUDA runtime 12.8 from /n/libcudart.so.12",
                NativeLibrary.describe("2.10.0", "/t/libtorch_cpu.so", "GPTFAST_LIBTORCH", noGpu, "/n/libcudart.so.12"));
    }
}

package ai.gptfast4j.natives;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Name;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.StdString;

/**
 * JavaCPP binding of native/include/gptfast/torch_probe.h and driver_probe.h: which libtorch the
 * dynamic linker has loaded and the version it reports, and what the NVIDIA driver supports, from
 * a JNI library that links neither libtorch, CUDA nor libgptfast.so, so that {@link NativeLibrary}
 * can choose the natives and check libtorch's version before loading libgptfast.so.
 */
@Platform(include = {"gptfast/torch_probe.h", "gptfast/driver_probe.h"})
final class TorchProbe {
    static { Loader.load(); }

    private TorchProbe() {}

    /** Path of the first loaded library whose file name starts with {@code prefix}; "" if none. */
    @Name("gptfast::loaded_library")
    static native @StdString String loadedLibrary(@StdString String prefix);

    /** at::show_config() of the libtorch_cpu.so loaded from {@code path}; throws if it cannot say. */
    @Name("gptfast::torch_config")
    static native @StdString String torchConfig(@StdString String path);

    /** The driver behind {@code library} ("libcuda.so.1"), as {@link DriverProbe#parse} reads it; never throws. */
    @Name("gptfast::cuda_driver")
    static native @StdString String cudaDriver(@StdString String library);
}

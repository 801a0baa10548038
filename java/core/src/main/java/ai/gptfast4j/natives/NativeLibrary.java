package ai.gptfast4j.natives;

import java.io.IOException;
import java.io.InputStream;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;

/**
 * Loads libtorch and libgptfast.so, once, and checks that they belong together: libgptfast.so is
 * C++ compiled against one libtorch's headers, and a libtorch of another version either fails to
 * link or, worse, links and misbehaves. The version it was built against travels beside it in the
 * natives jar ({@code gptfast4j-native.properties}, written by native/CMakeLists.txt); the version
 * loaded is what that libtorch itself reports ({@code at::show_config()}). A failure is remembered
 * and thrown again, one line, on every later use.
 */
public final class NativeLibrary {
    private static final String PLATFORM = Loader.getPlatform();
    /**
     * JavaCPP's platform extension ({@code -Dorg.bytedeco.javacpp.platform.extension=-gpu}): with
     * "-gpu", JavaCPP loads bytedeco's CUDA libtorch and our CUDA natives (classifier
     * {@code linux-x86_64-gpu}) from the resource folders named platform + extension.
     */
    private static final String EXTENSION = Loader.loadProperties().getProperty("platform.extension", "").strip();
    /** The natives variant in use: "linux-x86_64" or, with the extension, "linux-x86_64-gpu". */
    private static final String VARIANT = PLATFORM + EXTENSION;
    /** The resource folder JavaCPP's Loader reads for that variant; the natives jar fills it. */
    private static final String RESOURCE_DIR = "/ai/gptfast4j/natives/" + VARIANT + "/";
    private static final Pattern TORCH_VERSION = Pattern.compile("TORCH_VERSION=([0-9]+\\.[0-9]+\\.[0-9]+)");

    private static boolean loaded;
    /** Loader.load(GptFastNative.class) runs GptFastNative's static initializer, which calls load() again. */
    private static boolean loading;
    private static NativeLibraryException failure;
    private static String torchVersion;
    private static String torchConfig;

    private NativeLibrary() {}

    /** Loads both libraries or throws a {@link NativeLibraryException} that says what to change. */
    public static synchronized void load() {
        if (loaded || loading) return;
        if (failure != null) throw failure;
        loading = true;
        try {
            String built = builtAgainst();
            loadTorch();
            if (!EXTENSION.isEmpty() && !torchLocation().contains("/" + VARIANT + "/")) {
                // JavaCPP falls back to the plain platform when the extension's libraries fail to
                // load: a silent CPU run is what users of GPU builds complain about most, so refuse.
                throw new NativeLibraryException("the " + VARIANT + " libtorch (org.bytedeco:pytorch:" + VARIANT
                        + ") could not be loaded, and JavaCPP fell back to " + torchLocation() + ": install its CUDA 13"
                        + " libraries (cuBLAS, cuDNN, ...: a CUDA 13 toolkit, or the nvidia-* PyPI wheels on LD_LIBRARY_PATH)"
                        + " and an NVIDIA driver, or drop -Dorg.bytedeco.javacpp.platform.extension=" + EXTENSION
                        + " to run on the CPU");
            }
            torchConfig = showConfig();
            torchVersion = versionIn(torchConfig);
            String mismatch = mismatch(built, torchVersion, torchLocation());
            if (mismatch != null) throw new NativeLibraryException(mismatch);
            try {
                Loader.load(GptFastNative.class);
            } catch (UnsatisfiedLinkError e) {
                throw new NativeLibraryException("cannot load libgptfast.so (built against libtorch " + built
                        + ", loaded libtorch " + torchVersion + " from " + torchLocation() + "): " + firstLine(e.getMessage()), e);
            }
            loaded = true;
        } catch (NativeLibraryException e) {
            failure = e;
            throw e;
        } finally {
            loading = false;
        }
    }

    /** The libtorch version libgptfast.so was compiled against, from the natives jar. */
    public static String builtAgainst() {
        Properties p = new Properties();
        try (InputStream in = NativeLibrary.class.getResourceAsStream(RESOURCE_DIR + "gptfast4j-native.properties")) {
            if (in == null) {
                throw new NativeLibraryException("gptfast4j's native library for " + VARIANT + " is not on the class path: add "
                        + "ai.gptfast4j:gptfast4j-core:<version>:" + VARIANT + " (the natives classifier jar)"
                        + (EXTENSION.isEmpty() ? " or depend on ai.gptfast4j:gptfast4j-platform"
                                : ", or drop -Dorg.bytedeco.javacpp.platform.extension=" + EXTENSION + " for the CPU natives"));
            }
            p.load(in);
        } catch (IOException e) {
            throw new NativeLibraryException("cannot read gptfast4j-native.properties from the natives jar: " + e.getMessage(), e);
        }
        String v = p.getProperty("torch.version");
        if (v == null) throw new NativeLibraryException("the natives jar's gptfast4j-native.properties names no torch.version");
        return v.strip();
    }

    /**
     * Null when the versions agree, else the message for the user. Major, minor and patch must be
     * equal: libtorch's C++ ABI is not stable across releases.
     */
    static String mismatch(String builtAgainst, String loaded, String location) {
        if (builtAgainst.equals(loaded)) return null;
        return "libgptfast.so was built against libtorch " + builtAgainst + ", but the libtorch loaded from " + location
                + " is " + loaded + ": put org.bytedeco:pytorch of libtorch " + builtAgainst
                + " on the class path, or rebuild the natives against this libtorch (LIBTORCH=<dir> ./build.sh)";
    }

    /** The "x.y.z" in libtorch's build configuration text ("TORCH_VERSION=2.10.0, ..."). */
    static String versionIn(String showConfig) {
        Matcher m = TORCH_VERSION.matcher(showConfig == null ? "" : showConfig);
        if (!m.find()) {
            throw new NativeLibraryException("the loaded libtorch does not report its version (no TORCH_VERSION in at::show_config())");
        }
        return m.group(1);
    }

    private static void loadTorch() {
        try {
            Loader.load(org.bytedeco.pytorch.global.torch.class);
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            throw new NativeLibraryException("cannot load libtorch for " + VARIANT + " (org.bytedeco:pytorch with classifier "
                    + VARIANT + " must be on the class path" + (EXTENSION.isEmpty() ? "" : ", and its CUDA libraries installed")
                    + "): " + firstLine(e.getMessage()), e);
        }
    }

    private static String showConfig() {
        try (BytePointer config = org.bytedeco.pytorch.global.torch.show_config()) {
            return config.getString();
        } catch (UnsatisfiedLinkError e) {
            throw new NativeLibraryException("the loaded libtorch cannot report its version: " + firstLine(e.getMessage()), e);
        }
    }

    /** Which natives this process uses: "linux-x86_64" (CPU) or "linux-x86_64-gpu" (the CUDA build). */
    public static String variant() {
        return VARIANT;
    }

    /** Where libtorch_cpu was loaded from (JavaCPP's record), for messages and `gptfast doctor`. */
    public static String torchLocation() {
        for (Map.Entry<String, String> e : Loader.getLoadedLibraries().entrySet()) {
            if (e.getValue() != null && e.getValue().contains("libtorch_cpu.so")) return e.getValue();
        }
        return "the system library path";
    }

    /** Version of the libtorch in use (loads the libraries first). */
    public static synchronized String torchVersion() {
        load();
        return torchVersion;
    }

    /** libtorch's own build description (at::show_config()), for `gptfast doctor`. */
    public static synchronized String torchConfig() {
        load();
        return torchConfig;
    }

    private static String firstLine(String s) {
        return s == null ? "" : s.lines().findFirst().orElse("").strip();
    }
}

package ai.gptfast4j.natives;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.bytedeco.javacpp.Loader;

/**
 * Loads libtorch and libgptfast.so, once, and checks that they belong together: libgptfast.so is
 * C++ compiled against one libtorch's headers, and a libtorch of another version either fails to
 * link or, worse, links and misbehaves. The version it was built against travels beside it in the
 * natives jar ({@code gptfast4j-native.properties}, written by native/CMakeLists.txt); the version
 * loaded is what that libtorch itself reports ({@code at::show_config()}, asked through
 * {@link TorchProbe} before libgptfast.so is loaded). A failure is remembered and thrown again,
 * one line, on every later use.
 *
 * <p>libtorch comes from org.bytedeco:pytorch's jar (through JavaCPP's Loader), or from a directory
 * named by {@value #LIBTORCH_PROPERTY} / {@value #LIBTORCH_ENV} (a pip, conda or system install):
 * then its libraries are loaded by path and bytedeco's pytorch classes are never touched.
 * libgptfast.so and its JNI glue need no bytedeco class: they link libtorch_cpu.so and libc10.so
 * by soname, which the dynamic linker matches to whichever copy is already loaded.
 */
public final class NativeLibrary {
    /**
     * System property naming a libtorch directory to load instead of bytedeco's jar; it wins over
     * {@value #LIBTORCH_ENV}, as the narrower choice (one JVM rather than a shell).
     */
    public static final String LIBTORCH_PROPERTY = "gptfast.libtorch";
    /** Environment variable naming a libtorch directory; see {@link #LIBTORCH_PROPERTY}. */
    public static final String LIBTORCH_ENV = "GPTFAST_LIBTORCH";
    /**
     * What a libtorch directory contributes, in dependency order, each loaded by absolute path (the
     * later ones, and libgptfast.so, find the earlier ones by soname). The core first: its version
     * is checked before the rest loads. The rest only where present: the CUDA pair in CUDA builds,
     * libtorch.so the umbrella library some builds link to.
     */
    private static final List<String> DIRECTORY_CORE = List.of("libc10.so", "libtorch_cpu.so");
    private static final List<String> DIRECTORY_REST = List.of("libc10_cuda.so", "libtorch_cuda.so", "libtorch.so");

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
    /** The CUDA version in a CUDA libtorch's configuration ("CUDA Runtime 12.8", "CUDA_VERSION=12.8"). */
    private static final Pattern CUDA_VERSION = Pattern.compile("CUDA Runtime ([0-9.]+)|CUDA_VERSION=([0-9.]+)");

    /** A libtorch directory to load from, and which setting named it (for messages). */
    record LibtorchDirectory(Path dir, String setting) {}

    private static boolean loaded;
    /** Loader.load(GptFastNative.class) runs GptFastNative's static initializer, which calls load() again. */
    private static boolean loading;
    private static NativeLibraryException failure;
    private static String torchVersion;
    private static String torchConfig;
    private static String torchLocation;
    private static String loadedTorch;

    private NativeLibrary() {}

    /** Loads both libraries or throws a {@link NativeLibraryException} that says what to change. */
    public static synchronized void load() {
        if (loaded || loading) return;
        if (failure != null) throw failure;
        loading = true;
        try {
            String built = builtAgainst();
            LibtorchDirectory directory = libtorchDirectory();
            Path libDir = null;
            if (directory == null) {
                loadBytedecoTorch();
            } else {
                libDir = libraryDirectory(directory);
                loadFrom(directory, libDir, DIRECTORY_CORE);
            }
            torchLocation = probe(() -> TorchProbe.loadedLibrary("libtorch_cpu.so"));
            torchConfig = probe(() -> TorchProbe.torchConfig(torchLocation));
            torchVersion = versionIn(torchConfig);
            String mismatch = mismatch(built, torchVersion, directory == null ? torchLocation
                    : directory.dir() + " (" + directory.setting() + ")");
            if (mismatch != null) throw new NativeLibraryException(mismatch);
            if (directory != null) loadFrom(directory, libDir, DIRECTORY_REST);
            loadedTorch = describe(torchVersion, torchLocation, directory == null ? "org.bytedeco:pytorch" : directory.setting(),
                    torchConfig, probe(() -> TorchProbe.loadedLibrary("libcudart")));
            try {
                Loader.load(GptFastNative.class);
            } catch (UnsatisfiedLinkError e) {
                throw new NativeLibraryException("cannot load libgptfast.so (built against libtorch " + built
                        + ", loaded libtorch " + torchVersion + " from " + torchLocation + "): " + firstLine(e.getMessage()), e);
            }
            loaded = true;
            // A libtorch of the user's choosing: say once which one this process runs on.
            if (directory != null) System.err.println("gptfast4j: libtorch loaded: " + loadedTorch);
        } catch (NativeLibraryException e) {
            failure = e;
            throw e;
        } finally {
            loading = false;
        }
    }

    /**
     * The libtorch directory the user named ({@value #LIBTORCH_PROPERTY}, else {@value #LIBTORCH_ENV};
     * blank counts as unset), or null for bytedeco's jar. Not checked here: {@link #load()} does.
     */
    static LibtorchDirectory libtorchDirectory() {
        String property = System.getProperty(LIBTORCH_PROPERTY);
        if (property != null && !property.isBlank()) {
            return new LibtorchDirectory(Path.of(property.strip()), "-D" + LIBTORCH_PROPERTY);
        }
        String env = System.getenv(LIBTORCH_ENV);
        if (env != null && !env.isBlank()) return new LibtorchDirectory(Path.of(env.strip()), LIBTORCH_ENV);
        return null;
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
                + " is " + loaded + ": use a libtorch " + builtAgainst + " (org.bytedeco:pytorch on the class path, or a "
                + LIBTORCH_ENV + " directory), or rebuild the natives against this libtorch (LIBTORCH=<dir> ./build.sh)";
    }

    /** The "x.y.z" in libtorch's build configuration text ("TORCH_VERSION=2.10.0, ..."). */
    static String versionIn(String showConfig) {
        Matcher m = TORCH_VERSION.matcher(showConfig == null ? "" : showConfig);
        if (!m.find()) {
            throw new NativeLibraryException("the loaded libtorch does not report its version (no TORCH_VERSION in at::show_config())");
        }
        return m.group(1);
    }

    /** JavaCPP's Loader extracts bytedeco's libtorch of this variant from its jar and loads it. */
    private static void loadBytedecoTorch() {
        try {
            Loader.load(org.bytedeco.pytorch.global.torch.class);
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            throw new NativeLibraryException("cannot load libtorch for " + VARIANT + " (org.bytedeco:pytorch with classifier "
                    + VARIANT + " must be on the class path" + (EXTENSION.isEmpty() ? "" : ", and its CUDA libraries installed")
                    + ", or name a libtorch directory with " + LIBTORCH_ENV + "): " + firstLine(e.getMessage()), e);
        }
        String javacppChose = javacppTorchLocation();
        if (!EXTENSION.isEmpty() && !javacppChose.contains("/" + VARIANT + "/")) {
            // JavaCPP falls back to the plain platform when the extension's libraries fail to
            // load: a silent CPU run is what users of GPU builds complain about most, so refuse.
            throw new NativeLibraryException("the " + VARIANT + " libtorch (org.bytedeco:pytorch:" + VARIANT
                    + ") could not be loaded, and JavaCPP fell back to " + javacppChose + ": install its CUDA 13"
                    + " libraries (cuBLAS, cuDNN, ...: a CUDA 13 toolkit, or the nvidia-* PyPI wheels on LD_LIBRARY_PATH)"
                    + " and an NVIDIA driver, or drop -Dorg.bytedeco.javacpp.platform.extension=" + EXTENSION
                    + " to run on the CPU");
        }
    }

    /**
     * The directory holding libtorch_cpu.so: the one named, or its lib/ (a libtorch install's root,
     * as LIBTORCH for build.sh); what is missing is said before anything loads.
     */
    private static Path libraryDirectory(LibtorchDirectory directory) {
        String named = directory.setting() + "=" + directory.dir();
        Path dir = directory.dir().toAbsolutePath().normalize();
        if (!Files.exists(dir)) throw new NativeLibraryException(named + ": no such directory");
        if (!Files.isDirectory(dir)) {
            throw new NativeLibraryException(named + ": not a directory (name libtorch's lib directory, e.g. a pip torch's torch/lib)");
        }
        if (!Files.isRegularFile(dir.resolve("libtorch_cpu.so")) && Files.isRegularFile(dir.resolve("lib/libtorch_cpu.so"))) {
            dir = dir.resolve("lib");
        }
        if (!Files.isRegularFile(dir.resolve("libtorch_cpu.so"))) {
            throw new NativeLibraryException(named + ": no libtorch_cpu.so in it or in its lib/ (name libtorch's lib"
                    + " directory, e.g. a pip torch's torch/lib)");
        }
        if (!EXTENSION.isEmpty() && !Files.isRegularFile(dir.resolve("libtorch_cuda.so"))) {
            throw new NativeLibraryException(named + ": no libtorch_cuda.so in it, and the " + VARIANT
                    + " natives need a CUDA libtorch (name a CUDA build's lib directory, or drop"
                    + " -Dorg.bytedeco.javacpp.platform.extension=" + EXTENSION + " to run on the CPU)");
        }
        return dir;
    }

    /** System.load of those of {@code names} that {@code dir} holds, in order. */
    private static void loadFrom(LibtorchDirectory directory, Path dir, List<String> names) {
        for (String name : names) {
            Path library = dir.resolve(name);
            if (!Files.isRegularFile(library)) continue;
            try {
                System.load(library.toString());
            } catch (UnsatisfiedLinkError e) {
                throw new NativeLibraryException(directory.setting() + "=" + directory.dir() + ": cannot load " + library
                        + ": " + firstLine(e.getMessage()), e);
            }
        }
    }

    /** Where JavaCPP's Loader loaded libtorch_cpu.so from (its own record), to tell its fallback. */
    private static String javacppTorchLocation() {
        for (Map.Entry<String, String> e : Loader.getLoadedLibraries().entrySet()) {
            if (e.getValue() != null && e.getValue().contains("libtorch_cpu.so")) return e.getValue();
        }
        return "the system library path";
    }

    /** Runs a TorchProbe call, turning a missing or failing probe into the one-line exception. */
    private static String probe(Supplier<String> call) {
        try {
            return call.get();
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            throw new NativeLibraryException("cannot load the natives' libtorch probe (libjniTorchProbe.so, natives jar "
                    + VARIANT + "): " + firstLine(e.getMessage()), e);
        } catch (RuntimeException e) {
            throw new NativeLibraryException("the loaded libtorch cannot report its version: " + firstLine(e.getMessage()), e);
        }
    }

    /** "2.10.0 from PATH (ORIGIN)", and the CUDA runtime where one is loaded: the one account of what runs. */
    static String describe(String version, String location, String origin, String config, String cudart) {
        String text = version + " from " + location + " (" + origin + ")";
        if (cudart.isEmpty()) return text;
        Matcher m = CUDA_VERSION.matcher(config);
        String cuda = m.find() ? (m.group(1) != null ? m.group(1) : m.group(2)) : "of unknown version";
        return text + ", CUDA runtime " + cuda + " from " + cudart;
    }

    /** Which natives this process uses: "linux-x86_64" (CPU) or "linux-x86_64-gpu" (the CUDA build). */
    public static String variant() {
        return VARIANT;
    }

    /**
     * Where libtorch_cpu.so was loaded from, as the dynamic linker says (loads the libraries first),
     * for messages and `gptfast doctor`.
     */
    public static synchronized String torchLocation() {
        load();
        return torchLocation;
    }

    /**
     * Which libtorch this process runs on: version, path, where the choice came from
     * (org.bytedeco:pytorch, {@value #LIBTORCH_ENV} or {@value #LIBTORCH_PROPERTY}) and, where
     * libtorch's CUDA libraries are loaded, the CUDA runtime: what `gptfast doctor` and the load
     * message print. Loads the libraries first.
     */
    public static synchronized String loadedTorch() {
        load();
        return loadedTorch;
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

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
 *
 * <p>Which natives, CPU or a GPU variant, is chosen first ({@link VariantChooser}: the override,
 * what the NVIDIA driver supports, the GPU variants on the class path) and said in one line.
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

    /** {@value} selects the variant: cpu, gpu or auto (see {@link VariantChooser#choose}); wins over {@value #VARIANT_ENV}. */
    public static final String VARIANT_PROPERTY = VariantChooser.PROPERTY;
    /** Environment variable selecting the variant; see {@link #VARIANT_PROPERTY}. */
    public static final String VARIANT_ENV = VariantChooser.ENV;

    private static final String PLATFORM = Loader.getPlatform();
    /** Where the natives jars put each variant's libraries: one folder per variant, "linux-x86_64-gpu/". */
    private static final String NATIVES = "ai/gptfast4j/natives/";
    private static final String PROPERTIES = "gptfast4j-native.properties";
    private static final Pattern TORCH_VERSION = Pattern.compile("TORCH_VERSION=([0-9]+\\.[0-9]+\\.[0-9]+)");
    /** The CUDA version in a CUDA libtorch's configuration ("CUDA Runtime 12.8", "CUDA_VERSION=12.8"). */
    private static final Pattern CUDA_VERSION = Pattern.compile("CUDA Runtime ([0-9.]+)|CUDA_VERSION=([0-9.]+)");

    /** A libtorch directory to load from, and which setting named it (for messages). */
    record LibtorchDirectory(Path dir, String setting) {}

    /**
     * The variant chosen, once: its JavaCPP platform extension ("-gpu", "" for the CPU) is what
     * JavaCPP's Loader reads to load bytedeco's CUDA libtorch and our GPU natives from the
     * resource folders named platform + extension.
     */
    private static VariantChooser.Choice choice;
    private static VariantChooser.Driver driver;
    /** Whether the user chose the variant with JavaCPP's extension property (for the advice in messages). */
    private static boolean explicitExtension;
    /** Whether load() prints its lines on stderr; off for a caller that prints them itself (doctor). */
    private static boolean announce = true;
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
            choice();
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
            if (directory != null && announce) System.err.println("gptfast4j: libtorch loaded: " + loadedTorch);
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
        VariantChooser.Choice c = choice();
        Properties p = new Properties();
        try (InputStream in = NativeLibrary.class.getResourceAsStream("/" + NATIVES + c.variant() + "/" + PROPERTIES)) {
            if (in == null) {
                throw new NativeLibraryException("gptfast4j's native library for " + c.variant() + " is not on the class path: add "
                        + "ai.gptfast4j:gptfast4j-core:<version>:" + c.variant() + " (the natives classifier jar)"
                        + (!c.gpu() ? " or depend on ai.gptfast4j:gptfast4j-platform (the CPU natives were chosen: "
                                + c.whyNotGpu() + ")" : ", or " + cpuAdvice() + " for the CPU natives"));
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
        String variant = choice.variant();
        try {
            Loader.load(org.bytedeco.pytorch.global.torch.class);
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            throw new NativeLibraryException("cannot load libtorch for " + variant + " (org.bytedeco:pytorch with classifier "
                    + variant + " must be on the class path" + (choice.gpu() ? ", and its CUDA libraries installed" : "")
                    + ", or name a libtorch directory with " + LIBTORCH_ENV + "): " + firstLine(e.getMessage()), e);
        }
        String javacppChose = javacppTorchLocation();
        if (choice.gpu() && !javacppChose.contains("/" + variant + "/")) {
            // JavaCPP falls back to the plain platform when the extension's libraries fail to
            // load: a silent CPU run is what users of GPU builds complain about most, so refuse.
            throw new NativeLibraryException("the " + variant + " libtorch (org.bytedeco:pytorch:" + variant
                    + ") could not be loaded, and JavaCPP fell back to " + javacppChose + ": install its CUDA 13"
                    + " libraries (cuBLAS, cuDNN, ...: a CUDA 13 toolkit, or the nvidia-* PyPI wheels on LD_LIBRARY_PATH)"
                    + " and an NVIDIA driver, or " + cpuAdvice() + " to run on the CPU");
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
        if (choice.gpu() && !Files.isRegularFile(dir.resolve("libtorch_cuda.so"))) {
            throw new NativeLibraryException(named + ": no libtorch_cuda.so in it, and the " + choice.variant()
                    + " natives need a CUDA libtorch (name a CUDA build's lib directory, or " + cpuAdvice() + " to run on the CPU)");
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
            loadProbeLibrary();
            return call.get();
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            throw new NativeLibraryException("cannot load the natives' probe (libjniTorchProbe.so, natives jar "
                    + PLATFORM + "): " + firstLine(e.getMessage()), e);
        } catch (RuntimeException e) {
            throw new NativeLibraryException("the loaded libtorch cannot report its version: " + firstLine(e.getMessage()), e);
        }
    }

    private static boolean probeLibraryLookedFor;

    /**
     * Makes the probe's JNI library (libjniTorchProbe.so: torch-free, the same file in every natives
     * jar) loadable before the variant is chosen. The driver probe runs before the choice, when
     * JavaCPP looks only in the CPU natives folder (and the one its extension property names, where
     * set): with only a GPU natives jar on the class path there is none. Then the library is loaded
     * from the first GPU variant's folder that has it, and TorchProbe's own Loader.load() finds it
     * loaded. Where no folder has it, TorchProbe's load fails as it always did (probe's message).
     */
    private static synchronized void loadProbeLibrary() {
        if (probeLibraryLookedFor) return;
        probeLibraryLookedFor = true;
        ClassLoader cl = NativeLibrary.class.getClassLoader();
        org.bytedeco.javacpp.ClassProperties p = Loader.loadProperties(TorchProbe.class, Loader.loadProperties(), true);
        String library = p.getProperty("platform.library");
        String file = p.getProperty("platform.library.prefix", "") + library + p.getProperty("platform.library.suffix", "");
        String extension = System.getProperty(VariantChooser.JAVACPP_EXTENSION, "").strip();
        for (String folder : List.of(PLATFORM, PLATFORM + extension)) {
            if (cl.getResource(NATIVES + folder + "/" + file) != null) return;  // where JavaCPP looks anyway
        }
        for (VariantChooser.GpuVariant v : gpuVariants()) {
            java.net.URL url = cl.getResource(NATIVES + v.name() + "/" + file);
            if (url == null) continue;
            try {
                Loader.loadLibrary(TorchProbe.class, new java.net.URL[] {url}, library);
            } catch (UnsatisfiedLinkError e) {
                // TorchProbe's own load then fails too, and probe() says so in one line
            }
            return;
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
        return choice().variant();
    }

    /** The one line that says which natives were chosen and why, as load prints it and `gptfast doctor` shows it. */
    public static String variantReason() {
        return choice().line();
    }

    /** Null when GPU natives were chosen, else why not (for `--device cuda`'s error). */
    public static String whyNotGpu() {
        return choice().whyNotGpu();
    }

    /** What the NVIDIA driver supports: "CUDA 13.2, 1 GPU", "none (libcuda.so.1 not found)", "unusable (...)". */
    public static synchronized String driver() {
        if (driver == null) driver = VariantChooser.Driver.parse(probe(() -> TorchProbe.cudaDriver("libcuda.so.1")));
        return driver.describe();
    }

    /** How to get the CPU natives instead of the chosen GPU ones: undo the setting that chose them, else the override. */
    private static String cpuAdvice() {
        return explicitExtension ? "drop -D" + VariantChooser.JAVACPP_EXTENSION + "=" + choice.extension()
                : "set -D" + VARIANT_PROPERTY + "=cpu (or " + VARIANT_ENV + "=cpu)";
    }

    /** The stderr lines of loading go nowhere: for a caller that prints them itself (`gptfast doctor`). */
    public static synchronized void quiet() {
        announce = false;
    }

    /**
     * The variant, chosen once ({@link VariantChooser#choose}); a failure is remembered like a load
     * failure. Choosing a GPU variant sets JavaCPP's extension property (process-wide, as if the
     * user had set it: JavaCPP has no other way to load bytedeco's CUDA libtorch) before anything
     * is loaded from a variant folder.
     */
    private static synchronized VariantChooser.Choice choice() {
        if (choice != null) return choice;
        if (failure != null) throw failure;
        try {
            String explicit = System.getProperty(VariantChooser.JAVACPP_EXTENSION, "").strip();
            driver();
            VariantChooser.Choice c = VariantChooser.choose(PLATFORM, override(), explicit.isEmpty() ? null : explicit, driver,
                    gpuVariants());
            if (c.gpu() && explicit.isEmpty()) {
                System.setProperty(VariantChooser.JAVACPP_EXTENSION, c.extension());
                Loader.loadProperties(true);  // JavaCPP caches its platform properties
            }
            choice = c;
            explicitExtension = !explicit.isEmpty();
            if (announce) System.err.println("gptfast4j: " + c.line());
            return c;
        } catch (NativeLibraryException e) {
            failure = e;
            throw e;
        }
    }

    /** {@value #VARIANT_PROPERTY}, else {@value #VARIANT_ENV} (blank counts as unset), else null. */
    private static VariantChooser.Setting override() {
        String property = System.getProperty(VARIANT_PROPERTY);
        if (property != null && !property.isBlank()) return new VariantChooser.Setting("-D" + VARIANT_PROPERTY, property.strip());
        String env = System.getenv(VARIANT_ENV);
        if (env != null && !env.isBlank()) return new VariantChooser.Setting(VARIANT_ENV, env.strip());
        return null;
    }

    /** Listing the class path's jars is slow: the probe-library lookup and the choice share one listing. */
    private static List<VariantChooser.GpuVariant> gpuVariantsFound;

    private static synchronized List<VariantChooser.GpuVariant> gpuVariants() {
        if (gpuVariantsFound == null) gpuVariantsFound = gpuVariants(NativeLibrary.class.getClassLoader());
        return gpuVariantsFound;
    }

    /**
     * The GPU variants on the class path: every folder {@code ai/gptfast4j/natives/<platform>-<x>/}
     * with a gptfast4j-native.properties saying cuda=true, found by listing the class path's
     * entries (directories and jars) that hold the natives folder, and the one build.sh makes
     * ({@code <platform>-gpu}) looked up by name in case a class loader cannot list.
     */
    static List<VariantChooser.GpuVariant> gpuVariants(ClassLoader cl) {
        java.util.TreeSet<String> names = new java.util.TreeSet<>();
        names.add(PLATFORM + "-gpu");
        try {
            for (java.net.URL url : java.util.Collections.list(cl.getResources(NATIVES))) names.addAll(listFolders(url));
        } catch (IOException | RuntimeException e) {
            // a class loader that cannot list: the named candidate above still counts
        }
        List<VariantChooser.GpuVariant> variants = new java.util.ArrayList<>();
        for (String name : names) {
            if (!name.startsWith(PLATFORM + "-")) continue;
            Properties p = new Properties();
            try (InputStream in = cl.getResourceAsStream(NATIVES + name + "/" + PROPERTIES)) {
                if (in == null) continue;
                p.load(in);
            } catch (IOException e) {
                continue;
            }
            if (!Boolean.parseBoolean(p.getProperty("cuda", "false").strip())) continue;
            String cuda = p.getProperty("cuda.version");
            variants.add(new VariantChooser.GpuVariant(name, name.substring(PLATFORM.length()), cuda == null ? null : cuda.strip()));
        }
        return variants;
    }

    /** The sub-folders of the natives folder at {@code url}: a directory's, or a jar's entries. */
    private static List<String> listFolders(java.net.URL url) throws IOException {
        List<String> names = new java.util.ArrayList<>();
        if (url.getProtocol().equals("file")) {
            try (java.util.stream.Stream<Path> s = Files.list(Path.of(java.net.URI.create(url.toString())))) {
                s.filter(Files::isDirectory).forEach(d -> names.add(d.getFileName().toString()));
            }
        } else if (url.openConnection() instanceof java.net.JarURLConnection jar) {
            jar.setUseCaches(false);
            try (java.util.jar.JarFile file = jar.getJarFile()) {
                for (java.util.jar.JarEntry e : java.util.Collections.list(file.entries())) {
                    String n = e.getName();
                    if (!n.startsWith(NATIVES)) continue;
                    String rest = n.substring(NATIVES.length());
                    int slash = rest.indexOf('/');
                    if (slash > 0) names.add(rest.substring(0, slash));
                }
            }
        }
        return names;
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

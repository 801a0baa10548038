package ai.gptfast4j.natives;

import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Which natives to load, the CPU build or a GPU build (a classifier jar such as
 * {@code linux-x86_64-gpu}, built for one CUDA version), and the one line that says why: from the
 * user's override, what the NVIDIA driver supports and which GPU variants are on the class path.
 * A pure function ({@link #choose}) so that every branch is tested without a GPU; NativeLibrary
 * gathers the inputs. Silent CPU fallbacks and CUDA-version mismatches are what users of GPU
 * builds complain about most, hence a reason for every outcome and an error for every forced GPU
 * choice that cannot work.
 */
final class VariantChooser {
    /** The override of the choice: {@code -Dgptfast.variant} wins over {@code GPTFAST_VARIANT}. */
    static final String PROPERTY = "gptfast.variant";
    static final String ENV = "GPTFAST_VARIANT";
    /** JavaCPP's own setting, honoured as an explicit choice of that variant. */
    static final String JAVACPP_EXTENSION = "org.bytedeco.javacpp.platform.extension";
    /** The oldest Linux driver branch of each CUDA major, for the message that asks for an update. */
    private static final Map<Integer, String> MIN_DRIVER = Map.of(11, "450", 12, "525", 13, "580");

    private VariantChooser() {}

    /** A setting as the user wrote it ("-Dgptfast.variant", "gpu"), for messages. */
    record Setting(String name, String value) {
        @Override public String toString() { return name + "=" + value; }
    }

    /**
     * What libcuda.so.1 said ({@link TorchProbe#cudaDriver}): no driver, a driver with its CUDA
     * version (cuDriverGetVersion's 1000 * major + 10 * minor) and device count, or an error.
     */
    record Driver(Kind kind, int cudaVersion, int devices, String detail) {
        enum Kind { NONE, OK, ERROR }

        /** The probe's tab-separated line: "none\twhy", "ok\tversion\tdevices\tnote", "error\twhat". */
        static Driver parse(String line) {
            String[] f = line.split("\t", -1);
            try {
                switch (f[0]) {
                    case "none": return new Driver(Kind.NONE, 0, 0, f.length > 1 ? f[1] : "");
                    case "ok": return new Driver(Kind.OK, Integer.parseInt(f[1]), Integer.parseInt(f[2]), f.length > 3 ? f[3] : "");
                    case "error": return new Driver(Kind.ERROR, 0, 0, f.length > 1 ? f[1] : "");
                    default: break;
                }
            } catch (RuntimeException e) {
                // fall through: a line this code cannot read is an error of the probe, not a crash
            }
            return new Driver(Kind.ERROR, 0, 0, "unreadable driver probe answer '" + line + "'");
        }

        /** "13.2" for 13020. */
        String cuda() {
            return cudaVersion / 1000 + "." + cudaVersion % 1000 / 10;
        }

        /** For `gptfast doctor`: "CUDA 13.2, 1 GPU", "none (libcuda.so.1 not found)", "unusable (...)". */
        String describe() {
            return switch (kind) {
                case NONE -> "none (" + notFound(detail) + ")";
                case ERROR -> "unusable (" + detail + ")";
                case OK -> "CUDA " + cuda() + ", " + devices + " GPU" + (devices == 1 ? "" : "s")
                        + (detail.isEmpty() ? "" : " (" + detail + ")");
            };
        }

        /** dlerror's "libcuda.so.1: cannot open shared object file: No such file or directory", said briefly. */
        private static String notFound(String dlerror) {
            return dlerror.contains("No such file") ? "libcuda.so.1 not found" : dlerror;
        }
    }

    /**
     * A GPU variant on the class path: its resource folder ("linux-x86_64-gpu"), the JavaCPP
     * platform extension that selects it ("-gpu") and the CUDA version its natives were built with
     * ("13.0", from its gptfast4j-native.properties; null where an older build does not say).
     */
    record GpuVariant(String name, String extension, String cudaVersion) {
        int major() { return Integer.parseInt(cudaVersion.split("\\.")[0]); }
        int minor() {
            String[] p = cudaVersion.split("\\.");
            return p.length > 1 ? Integer.parseInt(p[1]) : 0;
        }
        boolean known() { return cudaVersion != null && cudaVersion.matches("[0-9]+(\\.[0-9]+)?"); }
    }

    /**
     * The outcome: the variant's name ("linux-x86_64" for the CPU natives), its JavaCPP extension
     * ("" for the CPU), the log line, and for the CPU natives why no GPU natives were chosen (what
     * `--device cuda` says), else null.
     */
    record Choice(String variant, String extension, String line, String whyNotGpu) {
        boolean gpu() { return !extension.isEmpty(); }
    }

    /**
     * The rule. An override first: {@code cpu}, {@code gpu} or {@code auto} (the default), or
     * JavaCPP's extension property, which loads that variant as told (JavaCPP's own choice; the
     * loader still refuses its silent fallback). Else the GPU variant of the highest CUDA version
     * that the driver supports and that sees a GPU, else the CPU natives. Under CUDA's minor
     * version compatibility (CUDA 11 and later) natives built with CUDA X.y run on any driver that
     * supports CUDA X.0 or newer, so a variant qualifies when driver version >= 1000 * X. (PTX of a
     * newer minor than the driver cannot be JIT-compiled, but the GPU natives carry SASS for the
     * GPUs they target: build.sh compiles with CUDA X.0.) A forced {@code gpu} that cannot work is
     * a one-line error naming the cause, never a CPU run.
     *
     * @param platform JavaCPP's platform, "linux-x86_64"
     * @param override {@value #PROPERTY} or {@value #ENV} where set, else null
     * @param explicitExtension {@value #JAVACPP_EXTENSION} where set (not blank), else null
     */
    static Choice choose(String platform, Setting override, String explicitExtension, Driver driver, List<GpuVariant> present) {
        String mode = override == null ? "auto" : override.value().strip().toLowerCase(Locale.ROOT);
        if (!List.of("auto", "cpu", "gpu").contains(mode)) {
            throw new NativeLibraryException(override + ": expected cpu, gpu or auto");
        }
        if (explicitExtension != null) {
            if (mode.equals("cpu")) {
                throw new NativeLibraryException(override + " contradicts -D" + JAVACPP_EXTENSION + "=" + explicitExtension
                        + ": drop one of them");
            }
            String variant = platform + explicitExtension;
            String cuda = present.stream().filter(v -> v.extension().equals(explicitExtension) && v.known())
                    .map(v -> "CUDA " + v.cudaVersion() + " natives").findFirst().orElse("natives");
            return new Choice(variant, explicitExtension, cuda + " (" + variant + "): chosen by -D" + JAVACPP_EXTENSION + "="
                    + explicitExtension + "; NVIDIA driver: " + driver.describe(), null);
        }
        if (mode.equals("cpu")) return new Choice(platform, "", "CPU natives: chosen by " + override, "chosen by " + override);

        String whyNot = null;
        GpuVariant best = null;
        if (driver.kind() == Driver.Kind.NONE) {
            whyNot = "no NVIDIA driver (" + Driver.notFound(driver.detail()) + ")";
        } else if (driver.kind() == Driver.Kind.ERROR) {
            whyNot = "the NVIDIA driver cannot be used (" + driver.detail() + ")";
        } else if (driver.devices() == 0) {
            whyNot = "the NVIDIA driver (CUDA " + driver.cuda() + ") finds no usable GPU"
                    + (driver.detail().isEmpty() ? "" : " (" + driver.detail() + ")") + "; check nvidia-smi and CUDA_VISIBLE_DEVICES";
        } else if (present.isEmpty()) {
            whyNot = "no GPU natives on the class path (the driver supports CUDA " + driver.cuda() + ": add"
                    + " ai.gptfast4j:gptfast4j-core:<version>:" + platform + "-gpu)";
        } else {
            List<GpuVariant> known = present.stream().filter(GpuVariant::known)
                    .sorted(Comparator.comparingInt(GpuVariant::major).thenComparingInt(GpuVariant::minor).reversed()).toList();
            best = known.stream().filter(v -> driver.cudaVersion() >= 1000 * v.major()).findFirst().orElse(null);
            if (best == null && known.isEmpty()) {
                whyNot = "the GPU natives here (" + names(present) + ") do not say which CUDA version they were built for"
                        + " (rebuild them: ./build.sh cuda)";
            } else if (best == null) {
                String majors = known.stream().map(GpuVariant::major).distinct().sorted().map(String::valueOf)
                        .collect(Collectors.joining(" or "));
                int lowest = known.get(known.size() - 1).major();
                String minDriver = MIN_DRIVER.get(lowest);
                whyNot = "the driver supports CUDA " + driver.cuda() + " but the only GPU natives here need CUDA " + majors
                        + "; update the driver (" + (minDriver == null ? "one for CUDA " + lowest : ">= " + minDriver)
                        + ") or use GPU natives built for CUDA " + driver.cudaVersion() / 1000;
            }
        }
        if (best != null) {
            String gpus = driver.devices() + " GPU" + (driver.devices() == 1 ? "" : "s");
            return new Choice(best.name(), best.extension(), "CUDA " + best.cudaVersion() + " natives (" + best.name() + "): "
                    + (mode.equals("gpu") ? "chosen by " + override + "; " : "") + "the driver supports CUDA " + driver.cuda()
                    + ", " + gpus, null);
        }
        if (mode.equals("gpu")) throw new NativeLibraryException(override + ": the GPU natives cannot be used: " + whyNot);
        return new Choice(platform, "", "CPU natives: " + whyNot, whyNot);
    }

    private static String names(List<GpuVariant> variants) {
        return variants.stream().map(GpuVariant::name).collect(Collectors.joining(", "));
    }
}

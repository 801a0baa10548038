package ai.gptfast4j.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

/**
 * The first processor's model name, family, model number and feature flags from /proc/cpuinfo
 * (Linux), read once per call.
 */
record CpuInfo(String model, String family, String modelNumber, Set<String> flags) {
    /** Throws IOException where /proc/cpuinfo cannot be read (not Linux). */
    static CpuInfo read() throws IOException {
        String model = null, family = null, number = null;
        Set<String> flags = new TreeSet<>();
        for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
            int colon = line.indexOf(':');
            if (colon < 0) continue;
            String key = line.substring(0, colon).strip().toLowerCase(Locale.ROOT);
            String value = line.substring(colon + 1).strip();
            if (key.equals("model name") && model == null) model = value;
            if (key.equals("cpu family") && family == null) family = value;
            if (key.equals("model") && number == null) number = value;
            if (key.equals("flags") && flags.isEmpty()) flags.addAll(List.of(value.split("\\s+")));
        }
        return new CpuInfo(model, family, number, flags);
    }

    /**
     * The model name for labelling results, with its family and model numbers (a VM often shows
     * only "AMD EPYC": family 25 model 17 is Zen 4, family 25 model 1 Zen 3), else the
     * architecture (no /proc/cpuinfo, or no name in it).
     */
    static String name() {
        try {
            CpuInfo cpu = read();
            if (cpu.model() != null) return cpu.label();
        } catch (IOException | RuntimeException e) {
            // not Linux: fall through
        }
        return System.getProperty("os.arch");
    }

    /** The model name with its family and model numbers where /proc/cpuinfo gives them. */
    String label() {
        String name = model == null ? "unknown" : model;
        return family == null || modelNumber == null ? name : name + " (family " + family + " model " + modelNumber + ")";
    }
}

package ai.gptfast4j.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

/** The first processor's model name and feature flags from /proc/cpuinfo (Linux), read once per call. */
record CpuInfo(String model, Set<String> flags) {
    /** Throws IOException where /proc/cpuinfo cannot be read (not Linux). */
    static CpuInfo read() throws IOException {
        String model = null;
        Set<String> flags = new TreeSet<>();
        for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
            int colon = line.indexOf(':');
            if (colon < 0) continue;
            String key = line.substring(0, colon).strip().toLowerCase(Locale.ROOT);
            String value = line.substring(colon + 1).strip();
            if (key.equals("model name") && model == null) model = value;
            if (key.equals("flags") && flags.isEmpty()) flags.addAll(List.of(value.split("\\s+")));
        }
        return new CpuInfo(model, flags);
    }

    /** The model name for labelling results, else the architecture (no /proc/cpuinfo, or no name in it). */
    static String name() {
        try {
            String model = read().model();
            if (model != null) return model;
        } catch (IOException | RuntimeException e) {
            // not Linux: fall through
        }
        return System.getProperty("os.arch");
    }
}

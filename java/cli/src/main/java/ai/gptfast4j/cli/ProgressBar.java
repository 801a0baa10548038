package ai.gptfast4j.cli;

import java.io.PrintWriter;
import me.tongfei.progressbar.DelegatingProgressBarConsumer;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Progress of a long command on stderr, drawn by the progressbar library (rate, ETA, redrawn in
 * place). Silent with --quiet and when stderr is not a terminal (logs get the command's summary
 * line instead); the system property gptfast.progress=always draws it anyway (tests, CI logs).
 */
final class ProgressBar implements AutoCloseable {
    private final me.tongfei.progressbar.ProgressBar bar;
    private final PrintWriter err;

    /** err: the command's error writer (picocli's, so that tests see it). */
    ProgressBar(String label, String unit, PrintWriter err, boolean quiet) {
        this(label, unit, 1, err, quiet);
    }

    /** unitSize: how many counted things make one unit shown (1 << 20 for bytes shown as MiB). */
    ProgressBar(String label, String unit, long unitSize, PrintWriter err, boolean quiet) {
        this.err = err;
        bar = enabled(quiet) ? new ProgressBarBuilder().setTaskName(label).setUnit(" " + unit, unitSize)
                .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(250).setInitialMax(1)
                .setConsumer(new DelegatingProgressBarConsumer(line -> {
                    err.print("\r" + line);
                    err.flush();
                }, 100)).build() : null;
    }

    /**
     * Loads a model with a bar of the bytes read, for checkpoints big enough to take a while
     * (a small one would only flash a line).
     */
    static ai.gptfast4j.Engine load(ai.gptfast4j.EngineOptions options, PrintWriter err, boolean quiet) {
        long bytes = 0;
        try {
            java.nio.file.Path p = options.checkpoint();
            if (java.nio.file.Files.isRegularFile(p)) bytes = java.nio.file.Files.size(p);
            else if (java.nio.file.Files.isDirectory(p)) bytes = Long.MAX_VALUE;  // HF directories: big
        } catch (java.io.IOException e) {
            bytes = 0;  // the load reports the problem
        }
        if (bytes < LOAD_BAR_MIN_BYTES || !enabled(quiet)) return ai.gptfast4j.Engine.load(options);
        try (ProgressBar bar = new ProgressBar("loading", "MiB", 1 << 20, err, quiet)) {
            return ai.gptfast4j.Engine.load(options, (done, total) -> bar.update(done, total, null));
        }
    }

    private static final long LOAD_BAR_MIN_BYTES = 64L << 20;

    static boolean enabled(boolean quiet) {
        if (quiet) return false;
        String mode = System.getProperty("gptfast.progress", "auto");
        return mode.equals("always") || (!mode.equals("never") && System.console() != null);
    }

    void update(long done, long total, String what) {
        if (bar == null) return;
        bar.maxHint(Math.max(1, total));
        bar.stepTo(done);
        if (what != null) bar.setExtraMessage(what);
    }

    void update(int done, int total, String what) {
        update((long) done, (long) total, what);
    }

    /** Draws the final state and ends the line. */
    @Override
    public void close() {
        if (bar == null) return;
        bar.close();
        err.println();
        err.flush();
    }
}

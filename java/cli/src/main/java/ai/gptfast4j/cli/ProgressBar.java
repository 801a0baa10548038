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
        this.err = err;
        bar = enabled(quiet) ? new ProgressBarBuilder().setTaskName(label).setUnit(" " + unit, 1)
                .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(250).setInitialMax(1)
                .setConsumer(new DelegatingProgressBarConsumer(line -> {
                    err.print("\r" + line);
                    err.flush();
                }, 100)).build() : null;
    }

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

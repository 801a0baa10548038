package ai.gptfast4j.cli;

import java.io.PrintWriter;

/** A one-line progress bar on stderr, redrawn in place (plain lines when stderr is not a terminal). */
final class ProgressBar {
    private static final int WIDTH = 30;
    private final String label;
    private final PrintWriter err;
    private final boolean terminal = System.console() != null;
    private int lastPercent = -1;

    /** err: the command's error writer (picocli's, so that tests see it). */
    ProgressBar(String label, PrintWriter err) {
        this.label = label;
        this.err = err;
    }

    void update(long done, long total, String what) {
        int percent = (int) (100 * done / Math.max(1, total));
        if (!terminal && percent / 10 == lastPercent / 10 && done != total) return;  // a line per 10 % in logs
        lastPercent = percent;
        int filled = (int) (WIDTH * done / Math.max(1, total));
        String line = String.format("%s [%s%s] %3d%% %d/%d %s", label, "#".repeat(filled), " ".repeat(WIDTH - filled),
                percent, done, total, what == null ? "" : what);
        if (terminal) err.print("\r" + line + "\u001b[K");
        else err.println(line);
        err.flush();
    }

    void update(int done, int total, String what) {
        update((long) done, (long) total, what);
    }

    void finish() {
        if (terminal && lastPercent >= 0) err.println();
        err.flush();
    }
}

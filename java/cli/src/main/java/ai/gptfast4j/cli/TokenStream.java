package ai.gptfast4j.cli;

import ai.gptfast4j.TokenListener;
import java.io.BufferedOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * Where generate and chat stream their text: UTF-8, flushed to the target when at least
 * {@link #FLUSH_NANOS} passed since the last flush, and at the end of each reply. System.out
 * flushes every write, one write(2) per token: at stories260K's ~20k tokens/s that alone was
 * about 7 % of the decode time (benchmarks/end-to-end-overhead.sh), and encoding each piece on
 * its own another 3 %: text is gathered and encoded per flush. So a token is shown at most one
 * decode step late (the next token's flush, or the end of the reply), never later.
 */
final class TokenStream implements TokenListener {
    static final long FLUSH_NANOS = 2_000_000;
    private final PrintStream out;
    private final StringBuilder pending = new StringBuilder();
    private long lastFlush = System.nanoTime() - FLUSH_NANOS;

    TokenStream(OutputStream target) {
        out = new PrintStream(new BufferedOutputStream(target, 1 << 16), false, StandardCharsets.UTF_8);
    }

    @Override
    public void onToken(int id, String text) {
        print(text);
    }

    /** Text that may wait for the next flush (at most FLUSH_NANOS, or the end of the reply). */
    void print(String text) {
        pending.append(text);
        if (System.nanoTime() - lastFlush >= FLUSH_NANOS) flush();
    }

    /** Ends a reply (or a JSON line): the line and everything before it are written now. */
    void endLine(String text) {
        pending.append(text).append(System.lineSeparator());
        flush();
    }

    /** Writes what is buffered now (e.g. before an error message on stderr). */
    void flush() {
        out.append(pending);
        pending.setLength(0);
        out.flush();
        lastFlush = System.nanoTime();
    }
}

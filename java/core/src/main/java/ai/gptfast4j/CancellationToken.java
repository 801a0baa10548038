package ai.gptfast4j;

/** Cancels a running generation from another thread; checked between decode steps. */
public final class CancellationToken {
    private volatile boolean cancelled;

    public void cancel() {
        cancelled = true;
    }

    public boolean isCancelled() {
        return cancelled;
    }
}

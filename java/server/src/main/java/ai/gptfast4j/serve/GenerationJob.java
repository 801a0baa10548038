package ai.gptfast4j.serve;

import ai.gptfast4j.CancellationToken;
import ai.gptfast4j.GenerationResult;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A submitted request as the scheduler and the HTTP side share it. The worker feeds it token
 * text and then the result (or a failure); the HTTP thread reads text pieces as they come
 * ({@link #nextPiece}) or just the result ({@link #await}), and cancels it when the client goes
 * away or the deadline passes. Cancelling stops the generation between decode steps, or skips it
 * if it is still queued, which frees its slot.
 */
public final class GenerationJob {
    /** Marks the end of the piece stream (compared by identity). */
    private static final String END = new String("<end of stream>");

    private final GenerationRequest request;
    private final CancellationToken cancel = new CancellationToken();
    private final CompletableFuture<GenerationResult> result = new CompletableFuture<>();
    private final LinkedBlockingQueue<String> pieces = new LinkedBlockingQueue<>();
    private final long submittedNanos = System.nanoTime();
    private volatile long startedNanos;
    private volatile long firstTokenNanos;

    GenerationJob(GenerationRequest request) {
        this.request = request;
    }

    public GenerationRequest request() { return request; }
    public CancellationToken cancellation() { return cancel; }
    public boolean isCancelled() { return cancel.isCancelled(); }
    public long submittedNanos() { return submittedNanos; }
    public long startedNanos() { return startedNanos; }
    public long firstTokenNanos() { return firstTokenNanos; }

    /** Stops the generation (between decode steps) or keeps a queued job from starting. */
    public void cancel() {
        cancel.cancel();
    }

    // ---- worker side

    void markStarted() {
        startedNanos = System.nanoTime();
    }

    /** Streams the text; the first token always yields a piece (maybe empty), so a stream can start at once. */
    void onToken(int tokenId, String text) {
        boolean first = firstTokenNanos == 0;
        if (first) firstTokenNanos = System.nanoTime();
        if (request.stream() && (first || !text.isEmpty())) pieces.add(text);
    }

    void complete(GenerationResult r) {
        result.complete(r);
        pieces.add(END);
    }

    void fail(Throwable t) {
        result.completeExceptionally(t);
        pieces.add(END);
    }

    // ---- HTTP side

    /**
     * The next piece of streamed text (the first may be empty), or null once generation has ended (then {@link #await}
     * returns at once).
     *
     * @throws TimeoutException if nothing arrives within maxWaitNanos
     */
    public String nextPiece(long maxWaitNanos) throws TimeoutException, InterruptedException {
        String p = pieces.poll(Math.max(0, maxWaitNanos), TimeUnit.NANOSECONDS);
        if (p == null) throw new TimeoutException();
        if (p == END) {
            pieces.add(END); // keep the end visible to later calls
            return null;
        }
        return p;
    }

    /**
     * The result, waiting at most maxWaitNanos; the worker's exception (an unchecked one) is rethrown as is.
     *
     * @throws TimeoutException if it is not there in time
     */
    public GenerationResult await(long maxWaitNanos) throws TimeoutException, InterruptedException {
        try {
            return result.get(Math.max(0, maxWaitNanos), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException re) throw re;
            if (c instanceof Error err) throw err;
            throw new IllegalStateException(c);
        }
    }
}

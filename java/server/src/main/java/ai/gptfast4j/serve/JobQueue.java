package ai.gptfast4j.serve;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The bounded queue every scheduler takes jobs from. A full queue, or one that is closing,
 * answers 503 with Retry-After; jobs cancelled while waiting are failed instead of started.
 */
final class JobQueue {
    private static final int RETRY_AFTER_SECONDS = 1;
    /** How often an idle worker looks whether the queue was closed. */
    private static final long POLL_MILLIS = 50;

    private final BlockingQueue<GenerationJob> queue;
    private final int capacity;
    private final ServerMetrics metrics;
    private volatile boolean closed;

    JobQueue(int capacity, ServerMetrics metrics) {
        this.capacity = capacity;
        this.queue = new ArrayBlockingQueue<>(capacity);
        this.metrics = metrics;
    }

    GenerationJob submit(GenerationRequest request) {
        GenerationJob job = new GenerationJob(request);
        boolean queued;
        synchronized (this) {  // with close(): a job is either refused or drained, never left behind
            if (closed) throw shuttingDown();
            queued = queue.offer(job);
        }
        if (!queued) {
            metrics.rejected("queue_full");
            throw new ApiException(503, "server_error", "queue_full", "server busy: the request queue is full ("
                    + capacity + " waiting); retry later", RETRY_AFTER_SECONDS);
        }
        return job;
    }

    /** The next job to start, waiting for one if `wait` (until the queue closes), else null when none is queued. */
    GenerationJob next(boolean wait) throws InterruptedException {
        while (true) {
            GenerationJob job = queue.poll();
            while (job == null && wait && !closed) job = queue.poll(POLL_MILLIS, TimeUnit.MILLISECONDS);
            if (job == null || !job.isCancelled()) return job;
            job.fail(new ApiException(499, "cancelled", "cancelled", "request cancelled before it started"));
        }
    }

    int size() { return queue.size(); }
    int capacity() { return capacity; }
    boolean isClosed() { return closed; }

    /** Refuses new jobs and fails the waiting ones with 503 (idempotent). */
    void close() {
        List<GenerationJob> waiting = new ArrayList<>();
        synchronized (this) {
            closed = true;
            queue.drainTo(waiting);
        }
        for (GenerationJob j : waiting) j.fail(shuttingDown());
    }

    private static ApiException shuttingDown() {
        return new ApiException(503, "server_error", "shutting_down", "the server is shutting down", RETRY_AFTER_SECONDS);
    }
}

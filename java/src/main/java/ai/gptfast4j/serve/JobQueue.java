package ai.gptfast4j.serve;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * The bounded queue every scheduler takes jobs from. A full queue, or one that is closing,
 * answers 503 with Retry-After; jobs cancelled while waiting are failed instead of started.
 */
final class JobQueue {
    private static final int RETRY_AFTER_SECONDS = 1;

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
        if (closed) throw shuttingDown();
        GenerationJob job = new GenerationJob(request);
        if (!queue.offer(job)) {
            metrics.rejected("queue_full");
            throw new ApiException(503, "server_error", "queue_full", "server busy: the request queue is full ("
                    + capacity + " waiting); retry later", RETRY_AFTER_SECONDS);
        }
        return job;
    }

    /** The next job to start, waiting for one if `wait`, else null when none is queued. */
    GenerationJob next(boolean wait) throws InterruptedException {
        while (true) {
            GenerationJob job = wait ? queue.take() : queue.poll();
            if (job == null || !job.isCancelled()) return job;
            job.fail(new ApiException(499, "cancelled", "cancelled", "request cancelled before it started"));
        }
    }

    int size() { return queue.size(); }
    int capacity() { return capacity; }
    boolean isClosed() { return closed; }

    /** Refuses new jobs and fails the waiting ones with 503. */
    void close() {
        closed = true;
        List<GenerationJob> waiting = new ArrayList<>();
        queue.drainTo(waiting);
        for (GenerationJob j : waiting) j.fail(shuttingDown());
    }

    private static ApiException shuttingDown() {
        return new ApiException(503, "server_error", "shutting_down", "the server is shutting down", RETRY_AFTER_SECONDS);
    }
}

package ai.gptfast4j.serve;

import ai.gptfast4j.BatchedGenerator;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.GenerationResult;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Continuous batching: one {@link BatchedGenerator} with batchSize slots, driven by one thread.
 * Between decode steps the thread admits queued jobs into free slots (their prompts are
 * prefilled and join the running batch); each step decodes one token for every active sequence;
 * finished or cancelled sequences leave at once and free their slot. A full queue answers 503.
 */
public final class BatchingScheduler implements RequestScheduler {
    private static final Logger LOG = LoggerFactory.getLogger(BatchingScheduler.class);
    private final BatchedGenerator generator;
    private final JobQueue queue;
    private final ServerMetrics metrics;
    private final Map<BatchedGenerator.Sequence, GenerationJob> running = new HashMap<>();  // loop thread only
    private final Thread loop;
    private final String description;
    private volatile int active;

    public BatchingScheduler(ServeConfig config, ServerMetrics metrics) {
        this.queue = new JobQueue(config.queueSize(), metrics);
        this.metrics = metrics;
        EngineOptions options = new EngineOptions(config.checkpoint(), config.tokenizer(), config.architectureConfig(),
                config.dtype(), config.deviceFor(0), config.threadsPerWorker(), 0);
        this.generator = BatchedGenerator.load(options, config.batchSize());
        this.description = generator.describe();
        LOG.info("continuous batching: {}", description);
        this.loop = new Thread(this::run, "gptfast-batch");
        loop.setDaemon(true);
        loop.start();
    }

    @Override
    public GenerationJob submit(GenerationRequest request) {
        return queue.submit(request);
    }

    private void run() {
        while (!queue.isClosed()) {
            try {
                admit();
            } catch (InterruptedException e) {
                break;
            }
            if (running.isEmpty()) continue;
            try {
                for (BatchedGenerator.Sequence s : generator.step()) finish(s);
            } catch (Throwable t) {  // a native failure ends every sequence in the batch, not the server
                LOG.error("batch step failed", t);
                for (Map.Entry<BatchedGenerator.Sequence, GenerationJob> e : new ArrayList<>(running.entrySet())) {
                    generator.abort(e.getKey());
                    metrics.generationFailed();
                    e.getValue().fail(t);
                }
                running.clear();
            }
            active = running.size();
        }
        for (Map.Entry<BatchedGenerator.Sequence, GenerationJob> e : running.entrySet()) {  // shutting down
            generator.abort(e.getKey());
            e.getValue().complete(e.getKey().result());
        }
        running.clear();
        active = 0;
    }

    /** Fills free slots from the queue; waits for a job only when nothing is running. */
    private void admit() throws InterruptedException {
        while (generator.hasFreeSlot()) {
            GenerationJob job = queue.next(running.isEmpty());
            if (job == null) return;
            job.markStarted();
            try {
                GenerationRequest r = job.request();
                BatchedGenerator.Sequence s = generator.start(r.prompt(), r.params(), job::onToken, job.cancellation());
                running.put(s, job);
                if (s.finished()) finish(s);
            } catch (Throwable t) {
                metrics.generationFailed();
                job.fail(t);
            }
            active = running.size();
        }
    }

    private void finish(BatchedGenerator.Sequence s) {
        GenerationJob job = running.remove(s);
        GenerationResult r = s.result();
        metrics.generationFinished(job, r);
        job.complete(r);
    }

    @Override public int queueDepth() { return queue.size(); }
    @Override public int queueCapacity() { return queue.capacity(); }
    @Override public int activeGenerations() { return active; }
    @Override public int workers() { return 1; }

    @Override
    public List<WorkerStatus> workerStatus() {
        return List.of(new WorkerStatus(0, active > 0, description + " active=" + active));
    }

    @Override
    public void close() {
        if (queue.isClosed()) return;
        queue.close();
        loop.interrupt();
        try {
            loop.join(15_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (loop.isAlive()) LOG.warn("batch loop did not stop; its engine is not freed");
        else generator.close();
    }
}

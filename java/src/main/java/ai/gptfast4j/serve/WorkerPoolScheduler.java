package ai.gptfast4j.serve;

import ai.gptfast4j.Engine;
import ai.gptfast4j.GenerationResult;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * maxWorkers batch-1 engines (one {@link GptHandler} each, on its own thread) fed by one bounded
 * queue. A full queue answers 503; a job cancelled while queued is skipped; a running job stops
 * between decode steps when cancelled. Concurrency is across engines only: each engine decodes
 * one sequence (native batched decode, and with it continuous batching, is future work).
 */
public final class WorkerPoolScheduler implements RequestScheduler {
    private static final Logger LOG = LoggerFactory.getLogger(WorkerPoolScheduler.class);
    private final JobQueue queue;
    private final List<GptHandler> handlers = new ArrayList<>();
    private final List<Thread> threads = new ArrayList<>();
    private final AtomicReferenceArray<GenerationJob> running;
    private final AtomicInteger active = new AtomicInteger();
    private final ServerMetrics metrics;

    /** Loads maxWorkers engines with the loader (see {@link GptHandler#GptHandler(Function)}) and starts the workers. */
    public WorkerPoolScheduler(ServeConfig config, Function<GptHandler.Context, Engine> engineLoader, ServerMetrics metrics) {
        this.queue = new JobQueue(config.queueSize(), metrics);
        this.metrics = metrics;
        this.running = new AtomicReferenceArray<>(config.maxWorkers());
        try {
            for (int i = 0; i < config.maxWorkers(); i++) {
                GptHandler h = new GptHandler(engineLoader);
                h.initialize(new GptHandler.Context(config, i));
                handlers.add(h);
            }
        } catch (RuntimeException e) {
            handlers.forEach(GptHandler::close);
            throw e;
        }
        for (int i = 0; i < handlers.size(); i++) {
            int id = i;
            Thread t = new Thread(() -> work(id), "gptfast-worker-" + i);
            t.setDaemon(true);
            threads.add(t);
            t.start();
        }
    }

    @Override
    public GenerationJob submit(GenerationRequest request) {
        return queue.submit(request);
    }

    private void work(int id) {
        GptHandler handler = handlers.get(id);
        while (!queue.isClosed()) {
            GenerationJob job;
            try {
                job = queue.next(true);
            } catch (InterruptedException e) {
                return;
            }
            running.set(id, job);
            active.incrementAndGet();
            job.markStarted();
            try {
                GenerationResult r = handler.inference(job.request(), job::onToken, job.cancellation());
                metrics.generationFinished(job, r);
                job.complete(r);
            } catch (Throwable t) {
                metrics.generationFailed();
                job.fail(t);
            } finally {
                active.decrementAndGet();
                running.set(id, null);
            }
        }
    }

    @Override public int queueDepth() { return queue.size(); }
    @Override public int queueCapacity() { return queue.capacity(); }
    @Override public int activeGenerations() { return active.get(); }
    @Override public int workers() { return handlers.size(); }

    @Override
    public List<WorkerStatus> workerStatus() {
        List<WorkerStatus> out = new ArrayList<>();
        for (int i = 0; i < handlers.size(); i++) {
            out.add(new WorkerStatus(i, running.get(i) != null, handlers.get(i).engine().describe()));
        }
        return out;
    }

    @Override
    public void close() {
        if (queue.isClosed()) return;
        queue.close();
        threads.forEach(Thread::interrupt); // wakes idle workers; a running generation finishes first
        for (int i = 0; i < threads.size(); i++) {
            try {
                threads.get(i).join(10_000);
                if (threads.get(i).isAlive()) {
                    GenerationJob j = running.get(i);
                    if (j != null) j.cancel();
                    threads.get(i).join(5_000);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        for (int i = 0; i < handlers.size(); i++) {
            if (threads.get(i).isAlive()) LOG.warn("worker {} did not stop; its engine is not freed", i);
            else handlers.get(i).close();
        }
    }
}

package ai.gptfast4j.serve;

import ai.gptfast4j.ChatTemplate;
import ai.gptfast4j.Engine;
import ai.gptfast4j.GenerationResult;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * maxWorkers engines, each with batchSize sequence slots and its own thread, fed by one bounded
 * queue (batch 1 is a pool of single-sequence workers; one worker is plain continuous batching).
 * Between steps a worker admits queued jobs into its free slots (their prompts are prefilled in
 * chunks and join the running batch); each step advances every active sequence; finished or
 * cancelled sequences leave at once and free their slot. A full queue answers 503; a job
 * cancelled while queued is skipped.
 *
 * <p>A worker whose engine's tensor-parallel group failed ({@link Engine#brokenReason()}) cannot
 * step again: its sequences fail with 503, it logs why and stops taking jobs, which the other
 * workers then serve. When every worker is broken, new and queued requests are answered 503 (and
 * /ping says Unhealthy) until the server is restarted.
 */
public final class EngineScheduler implements RequestScheduler {
    private static final Logger LOG = LoggerFactory.getLogger(EngineScheduler.class);
    private final JobQueue queue;
    private final ServerMetrics metrics;
    private final List<GptHandler> handlers = new ArrayList<>();
    private final List<Thread> threads = new ArrayList<>();
    private final AtomicIntegerArray active;  // sequences per worker
    private final AtomicIntegerArray broken;  // 1: the worker's tensor-parallel group failed
    private volatile String brokenReason;     // the last one, for the 503s
    private final Runnable beforeStep;
    private final Object idle = new Object();  // notified when a worker's running set changes
    private volatile boolean stopping;

    /** Loads maxWorkers engines with the loader (see {@link GptHandler#GptHandler(Function)}) and starts the workers. */
    public EngineScheduler(ServeConfig config, Function<GptHandler.Context, Engine> engineLoader, ServerMetrics metrics) {
        this(config, engineLoader, metrics, () -> { });
    }

    /** Same; each worker runs beforeStep before every engine step (tests hold steps with it). */
    EngineScheduler(ServeConfig config, Function<GptHandler.Context, Engine> engineLoader, ServerMetrics metrics,
                    Runnable beforeStep) {
        this.queue = new JobQueue(config.queueSize(), metrics);
        this.metrics = metrics;
        this.beforeStep = beforeStep;
        this.active = new AtomicIntegerArray(config.maxWorkers());
        this.broken = new AtomicIntegerArray(config.maxWorkers());
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

    /** Through the model's chat template (every worker has the same model; the first one's tokenizer encodes). */
    @Override
    public int[] chatPromptTokens(List<ChatTemplate.Message> messages) {
        return handlers.get(0).engine().chatPromptTokens(messages);
    }

    @Override
    public GenerationJob submit(GenerationRequest request) {
        if (unavailableReason() != null) throw groupFailed();
        return queue.submit(request);
    }

    @Override
    public String unavailableReason() {
        for (int i = 0; i < broken.length(); i++) {
            if (broken.get(i) == 0) return null;
        }
        return brokenReason;
    }

    private ApiException groupFailed() {
        return new ApiException(503, "server_error", "tensor_parallel_group_failed", "the model's tensor-parallel "
                + "group failed (" + brokenReason + "); the server must be restarted");
    }

    /** A broken worker while others work: leaves them the queue. The last one to break refuses it. */
    private void refuseQueued(int id) {
        LOG.error("worker {}: no worker can generate any more; answering 503 until the server is restarted", id);
        while (!stopping) {
            try {
                GenerationJob job = queue.next(true);
                if (job == null) return;
                metrics.generationFailed();
                job.fail(groupFailed());
            } catch (InterruptedException e) {
                // stop() interrupts; stopping says whether to leave
            }
        }
    }

    private void work(int id) {
        Engine engine = handlers.get(id).engine();
        Map<Engine.Sequence, GenerationJob> running = new HashMap<>();
        while (!stopping) {
            try {
                admit(engine, running);
            } catch (InterruptedException e) {
                continue;  // stop() interrupts; stopping says whether to leave
            }
            setActive(id, running.size());
            if (running.isEmpty() && queue.isClosed()) break;  // drained: nothing left to do
            if (!running.isEmpty()) {
                beforeStep.run();
                try {
                    for (Engine.Sequence s : engine.step()) finish(running, s);
                } catch (Throwable t) {  // a native failure ends the worker's sequences, not the server
                    String reason = engine.brokenReason();
                    Throwable failure = t;
                    if (reason != null) {
                        brokenReason = reason;
                        broken.set(id, 1);
                        LOG.error("worker {}: its tensor-parallel group failed, it takes no more requests: {}", id, reason);
                        failure = groupFailed();
                    } else {
                        LOG.error("worker {}: step failed", id, t);
                    }
                    for (Map.Entry<Engine.Sequence, GenerationJob> e : running.entrySet()) {
                        engine.abort(e.getKey());
                        metrics.generationFailed();
                        e.getValue().fail(failure);
                    }
                    running.clear();
                }
            }
            setActive(id, running.size());
            if (broken.get(id) == 1) {
                if (unavailableReason() != null) refuseQueued(id);
                return;
            }
        }
        for (Map.Entry<Engine.Sequence, GenerationJob> e : running.entrySet()) {  // stopped before they finished
            engine.abort(e.getKey());
            metrics.cancelled("shutdown");
            e.getValue().fail(new ApiException(503, "server_error", "shutting_down",
                    "the server shut down before this generation finished"));
        }
        setActive(id, 0);
    }

    private void setActive(int id, int n) {
        if (active.getAndSet(id, n) != n) {
            synchronized (idle) {
                idle.notifyAll();
            }
        }
    }

    /** Fills free slots from the queue; waits for a job only when nothing is running. */
    private void admit(Engine engine, Map<Engine.Sequence, GenerationJob> running) throws InterruptedException {
        while (engine.hasFreeSlot()) {
            GenerationJob job = queue.next(running.isEmpty());
            if (job == null) return;
            job.markStarted();
            try {
                GenerationRequest r = job.request();
                Engine.Sequence s = r.promptIds() != null
                        ? engine.start(r.promptIds(), r.params(), job::onToken, job.cancellation())
                        : engine.start(r.prompt(), r.params(), job::onToken, job.cancellation());
                running.put(s, job);
            } catch (Throwable t) {
                metrics.generationFailed();
                job.fail(t);
            }
        }
    }

    private void finish(Map<Engine.Sequence, GenerationJob> running, Engine.Sequence s) {
        GenerationJob job = running.remove(s);
        GenerationResult r = s.result();
        metrics.generationFinished(job, r);
        job.complete(r);
    }

    @Override public int queueDepth() { return queue.size(); }
    @Override public int queueCapacity() { return queue.capacity(); }
    @Override public int workers() { return handlers.size(); }

    @Override
    public int activeGenerations() {
        int n = 0;
        for (int i = 0; i < active.length(); i++) n += active.get(i);
        return n;
    }

    @Override
    public List<WorkerStatus> workerStatus() {
        List<WorkerStatus> out = new ArrayList<>();
        for (int i = 0; i < handlers.size(); i++) {
            Engine engine = handlers.get(i).engine();
            out.add(new WorkerStatus(i, active.get(i) > 0, engine.device().startsWith("cuda"),
                    engine.describe() + " active=" + active.get(i)));
        }
        return out;
    }

    @Override
    public void drain() {
        queue.close();
    }

    @Override
    public boolean awaitIdle(long timeoutNanos) throws InterruptedException {
        long until = System.nanoTime() + timeoutNanos;
        synchronized (idle) {
            while (activeGenerations() > 0 || queue.size() > 0) {
                long left = until - System.nanoTime();
                if (left <= 0) return false;
                idle.wait(Math.max(1, left / 1_000_000));
            }
        }
        return true;
    }

    @Override
    public void close() {
        if (stopping) return;
        queue.close();
        stopping = true;
        threads.forEach(Thread::interrupt);  // wakes idle workers; running sequences end at the next step
        for (Thread t : threads) {
            try {
                t.join(15_000);
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

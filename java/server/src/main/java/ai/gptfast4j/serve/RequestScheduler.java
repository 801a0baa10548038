package ai.gptfast4j.serve;

import java.util.List;

/**
 * Where requests wait for and get generation capacity. The HTTP side only submits jobs and reads
 * them, so the way capacity is organised can change behind this interface; today it is
 * {@link EngineScheduler}: workers engines with batch_size slots each, fed by one bounded queue.
 */
public interface RequestScheduler extends AutoCloseable {

    /**
     * Queues a request.
     *
     * @throws ApiException 503 with a Retry-After when the queue is full or the server is stopping
     */
    GenerationJob submit(GenerationRequest request);

    /**
     * Prompt ids for a conversation through the model's chat template.
     *
     * @throws ai.gptfast4j.GptFastException when the template refuses the messages
     */
    int[] chatPromptTokens(List<ai.gptfast4j.ChatTemplate.Message> messages);

    /** Jobs waiting for a worker. */
    int queueDepth();

    int queueCapacity();

    /** Jobs generating now. */
    int activeGenerations();

    int workers();

    /** One entry per worker, for the management API. */
    List<WorkerStatus> workerStatus();

    /** gpu: the worker's engine runs on a CUDA device (TorchServe's describe field). */
    record WorkerStatus(int id, boolean busy, boolean gpu, String engine) {}

    /**
     * Why no worker can generate until the server is restarted (every worker's tensor-parallel
     * group failed), or null; meanwhile requests are answered 503 and /ping says Unhealthy.
     */
    default String unavailableReason() {
        return null;
    }

    /**
     * Stops taking jobs and answers the queued ones at once (503 with Retry-After); running ones
     * go on (see {@link #awaitIdle}).
     */
    void drain();

    /** Waits until nothing runs or waits; false if the timeout passed first. */
    boolean awaitIdle(long timeoutNanos) throws InterruptedException;

    /**
     * Drains, then stops each running generation at its next step (its job fails with a 503
     * "shut down before this generation finished"), and frees the engines.
     */
    @Override
    void close();
}

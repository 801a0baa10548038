package ai.gptfast4j;

/**
 * Every default of the library in one table, shared by the Java API, the CLI and the server (and
 * documented once, in the README). Ranges are not here: each is checked in exactly one place,
 * mostly natively (engine_api.h), and the message names the parameter.
 */
public final class Defaults {
    private Defaults() {}

    // Generation (GPT-Fast's generate.py defaults).
    public static final int MAX_NEW_TOKENS = 200;
    public static final float TEMPERATURE = 0.8f;
    /** 0 means no top-k cut (the whole vocabulary). */
    public static final int TOP_K = 200;
    public static final float TOP_P = 1.0f;
    public static final float REPETITION_PENALTY = 1.0f;
    public static final float PRESENCE_PENALTY = 0.0f;
    public static final float FREQUENCY_PENALTY = 0.0f;
    public static final long SEED = 0;
    /**
     * Reuse the KV cache a free slot holds for the start of a new prompt (llama.cpp's
     * cache_prompt, on by default there too): multi-turn chats stop re-running their history.
     */
    public static final boolean CACHE_PROMPT = true;

    // Engine.
    public static final String DTYPE = "fp32";
    public static final String DEVICE = "cpu";
    /** 0 lets the native side choose from a bandwidth probe (engine_api.h default_threads). */
    public static final int THREADS = 0;
    /** 0 means the model's block_size, up to {@link #MAX_SEQ_LEN_CAP}. */
    public static final int MAX_SEQ_LEN = 0;
    /**
     * KV cache length when none is asked for and the model's context is longer (Llama 3.1's
     * 131,072 tokens would take GiBs of cache per sequence); --max-seq-len raises it.
     */
    public static final int MAX_SEQ_LEN_CAP = 8192;
    /** Draft tokens per speculative round (GPT-Fast's default). */
    public static final int SPECULATE_K = 5;
    /** Sequences one engine decodes together (KV cache slots). */
    public static final int BATCH_SIZE = 1;
    /**
     * Most prompt tokens a sequence prefills per step, so a long prompt joining a running batch is
     * interleaved with the others' decode steps; 0 means the whole prompt in one step.
     */
    public static final int PREFILL_CHUNK = 256;

    // Server.
    public static final int WORKERS = 1;
    public static final int QUEUE_SIZE = 64;
    public static final int MAX_NEW_TOKENS_CAP = 1024;
    public static final int REQUEST_TIMEOUT_SECONDS = 300;
    public static final long MAX_BODY_BYTES = 1 << 20;
    /** On SIGTERM, how long running generations may take to finish before their streams are ended. */
    public static final int SHUTDOWN_TIMEOUT_SECONDS = 10;
}

package ai.gptfast4j.serve;

import ai.gptfast4j.Defaults;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.GenerationParams;
import ai.gptfast4j.GptFastException;
import ai.gptfast4j.natives.GptFastNative;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Everything the server needs, read from a TorchServe {@code model-config.yaml} (GPT-Fast example
 * keys) and/or command-line options. Relative paths in the YAML resolve against the YAML file's
 * directory (not the working directory), so a config works from wherever the server starts.
 *
 * <p>{@code parallelType: tp} with {@code torchrun: nproc-per-node: N} runs each worker's engine as N
 * in-process tensor-parallel ranks (threads; see {@link EngineOptions#tp()}). torchrun's multi-node
 * keys {@code nnodes}, {@code node-rank}, {@code master-addr} and {@code master-port} spread them over
 * several processes as the CLI's {@code --nnodes ...} do ({@link #nodes()}); as in torchrun,
 * nproc-per-node then counts the ranks of one node, so there are nproc-per-node x nnodes in all.
 * Keys that cannot be honoured yet (compile, parallelType pp/pptp, torchrun's rendezvous keys, maxBatchDelay, autoscaling) are accepted and each produces a line in {@link #notes()}, which the server logs;
 * impossible combinations fail {@link Builder#build()} with a message naming the key.
 */
public record ServeConfig(
        String modelName, Path checkpoint, Path tokenizer, Path architectureConfig, Path source,
        String dtype, String deviceType, List<Integer> deviceIds, int threadsPerWorker,
        int minWorkers, int maxWorkers, int queueSize,
        int defaultMaxNewTokens, float defaultTemperature, int defaultTopK, boolean stream, boolean cachePrompt,
        int maxNewTokensCap, long maxBodyBytes, int requestTimeoutSeconds,
        boolean compile, boolean speculative, Path draftModel, int speculateK, String parallelType,
        int batchSize, int prefillChunk, int maxBatchDelayMs, int maxSeqLen, int shutdownTimeoutSeconds,
        Access access, String quantize, String draftQuantize, int tp, Nodes nodes, List<String> notes) {

    /** Default node 0 address and port (torchrun's), also the CLI's defaults. */
    public static final String DEFAULT_MASTER_ADDR = "127.0.0.1";
    public static final int DEFAULT_MASTER_PORT = 29500;

    /**
     * The processes the tensor-parallel ranks are spread over (torchrun's vocabulary): this one is node
     * {@code nodeRank} of {@code nnodes}; node 0 serves at {@code masterAddr:masterPort} (port 0: any).
     */
    public record Nodes(int nnodes, int nodeRank, String masterAddr, int masterPort) {
        public static Nodes single() {
            return new Nodes(1, 0, DEFAULT_MASTER_ADDR, DEFAULT_MASTER_PORT);
        }
    }

    /**
     * Who may call the server: API keys (empty = no authentication), whether /metrics needs a key
     * too, the browser origins that may call it (CORS), and extra Host names accepted when bound
     * to loopback (DNS-rebinding protection). toString never shows the keys.
     */
    public record Access(List<String> apiKeys, boolean metricsAuth, List<String> corsOrigins, List<String> allowedHosts) {
        public Access {
            apiKeys = List.copyOf(apiKeys);
            corsOrigins = List.copyOf(corsOrigins);
            allowedHosts = List.copyOf(allowedHosts);
        }

        public static Access open() {
            return new Access(List.of(), false, List.of(), List.of());
        }

        @Override
        public String toString() {
            return "Access[apiKeys=" + apiKeys.size() + " key(s), metricsAuth=" + metricsAuth + ", corsOrigins="
                    + corsOrigins + ", allowedHosts=" + allowedHosts + "]";
        }
    }

    /** Top-level TorchServe keys we read or knowingly accept. */
    private static final Set<String> TOP_KEYS = Set.of("minWorkers", "maxWorkers", "batchSize", "maxBatchDelay",
            "responseTimeout", "parallelType", "deviceType", "deviceIds", "torchrun", "handler", "jobQueueSize",
            "startupTimeout", "maxRetryTimeoutInSec", "clientTimeoutInMills", "parallelLevel", "useJobTicket",
            "continuousBatching", "maxNumSequence", "maxSequenceJobQueueSize", "sequenceMaxIdleMSec");
    private static final Set<String> HANDLER_KEYS = Set.of("model_path", "converted_ckpt_dir", "checkpoint_path",
            "tokenizer_path", "compile", "speculative", "draft_model_path", "draft_checkpoint_path", "speculate_k",
            "max_new_tokens", "max_new_tokens_cap", "temperature", "top_k", "stream", "cache_prompt", "threads", "dtype",
            "model_config", "model_name", "prefill_chunk", "quantize", "draft_quantize");

    public static Builder builder() {
        return new Builder();
    }

    /** Reads a model-config.yaml into a builder (so command-line options can still override it). */
    public static Builder fromYaml(Path yaml) {
        JsonNode root;
        try {
            root = new YAMLMapper().readTree(Files.readString(yaml));
        } catch (IOException e) {
            throw new GptFastException("cannot read " + yaml + ": " + GptFastException.readError(e));
        }
        if (root == null || !root.isObject()) throw new GptFastException(yaml + ": expected a YAML mapping at the top level");
        Path dir = yaml.toAbsolutePath().getParent();
        Builder b = builder();
        b.source = yaml.toAbsolutePath().normalize();
        Yaml y = new Yaml(yaml.getFileName().toString());
        root.fieldNames().forEachRemaining(k -> {
            if (!TOP_KEYS.contains(k)) b.notes.add(y.file + ": unknown key '" + k + "' ignored");
        });
        if (root.has("minWorkers")) b.minWorkers = y.integer(root, "minWorkers");
        if (root.has("maxWorkers")) b.maxWorkers = y.integer(root, "maxWorkers");
        if (root.has("batchSize")) b.batchSize = y.integer(root, "batchSize");
        if (root.has("maxBatchDelay")) b.maxBatchDelayMs = y.integer(root, "maxBatchDelay");
        if (root.has("responseTimeout")) b.requestTimeoutSeconds = y.integer(root, "responseTimeout");
        if (root.has("jobQueueSize")) b.queueSize = y.integer(root, "jobQueueSize");
        if (root.has("parallelType")) b.parallelType = y.string(root, "parallelType");
        if (root.has("deviceType")) b.deviceType = y.string(root, "deviceType");
        if (root.has("deviceIds")) {
            JsonNode ids = root.get("deviceIds");
            if (!ids.isArray()) throw new GptFastException(y.file + ": deviceIds must be a list of integers");
            List<Integer> list = new ArrayList<>();
            for (JsonNode n : ids) {
                if (!n.isIntegralNumber()) throw new GptFastException(y.file + ": deviceIds must be a list of integers, got " + ids);
                list.add(n.asInt());
            }
            b.deviceIds = list;
        }
        if (root.has("torchrun")) {
            JsonNode t = root.get("torchrun");
            if (!t.isObject()) throw new GptFastException(y.file + ": torchrun must be a mapping (nproc-per-node: N)");
            y.section = "torchrun.";
            t.fieldNames().forEachRemaining(k -> {
                switch (k) {
                    case "nproc-per-node" -> b.nprocPerNode = y.integer(t, k);
                    case "nnodes" -> b.nnodes = y.integer(t, k);
                    case "node-rank" -> b.nodeRank = y.integer(t, k);
                    case "master-addr" -> b.masterAddr = y.string(t, k);
                    case "master-port" -> b.masterPort = y.integer(t, k);
                    default -> b.notes.add(y.file + ": torchrun." + k + " ignored: the nodes meet at node 0's "
                            + "master-addr:master-port (no rendezvous backend, no restarts)");
                }
            });
            y.section = "";
        }
        JsonNode h = root.get("handler");
        if (h == null || !h.isObject()) throw new GptFastException(y.file + ": a 'handler:' section with model_path is required");
        h.fieldNames().forEachRemaining(k -> {
            if (!HANDLER_KEYS.contains(k)) b.notes.add(y.file + ": unknown key 'handler." + k + "' ignored");
        });
        y.section = "handler.";
        for (String key : List.of("model_path", "converted_ckpt_dir", "checkpoint_path")) {
            if (h.has(key)) { b.checkpoint = dir.resolve(y.string(h, key)).normalize(); break; }
        }
        if (b.checkpoint == null) throw new GptFastException(y.file + ": handler.model_path (or converted_ckpt_dir) is required");
        if (h.has("tokenizer_path")) b.tokenizer = dir.resolve(y.string(h, "tokenizer_path")).normalize();
        if (h.has("model_config")) b.architectureConfig = dir.resolve(y.string(h, "model_config")).normalize();
        if (h.has("model_name")) b.modelName = y.string(h, "model_name");
        if (h.has("dtype")) b.dtype = y.string(h, "dtype");
        if (h.has("threads")) b.threadsPerWorker = y.integer(h, "threads");
        if (h.has("compile")) b.compile = y.bool(h, "compile");
        if (h.has("stream")) b.stream = y.bool(h, "stream");
        if (h.has("cache_prompt")) b.cachePrompt = y.bool(h, "cache_prompt");
        if (h.has("speculative")) b.speculative = y.bool(h, "speculative");
        for (String key : List.of("draft_model_path", "draft_checkpoint_path")) {
            if (h.has(key) && !h.get(key).isNull()) { b.draftModel = dir.resolve(y.string(h, key)).normalize(); break; }
        }
        if (h.has("speculate_k")) b.speculateK = y.integer(h, "speculate_k");
        if (h.has("max_new_tokens")) b.defaultMaxNewTokens = y.integer(h, "max_new_tokens");
        if (h.has("max_new_tokens_cap")) b.maxNewTokensCap = y.integer(h, "max_new_tokens_cap");
        if (h.has("temperature")) b.defaultTemperature = (float) y.number(h, "temperature");
        if (h.has("top_k")) b.defaultTopK = y.integer(h, "top_k");
        if (h.has("prefill_chunk")) b.prefillChunk = y.integer(h, "prefill_chunk");
        if (h.has("quantize") && !h.get("quantize").isNull()) b.quantize = y.string(h, "quantize");
        if (h.has("draft_quantize") && !h.get("draft_quantize").isNull()) b.draftQuantize = y.string(h, "draft_quantize");
        return b;
    }

    /** Typed access to YAML values; wrong types fail with the key named. */
    private static final class Yaml {
        final String file;
        String section = "";

        Yaml(String file) { this.file = file; }

        GptFastException wrong(String key, String what, JsonNode v) {
            return new GptFastException(file + ": " + section + key + " must be " + what + ", got " + v);
        }

        int integer(JsonNode n, String key) {
            JsonNode v = n.get(key);
            if (!v.isIntegralNumber() || !v.canConvertToInt()) throw wrong(key, "an integer", v);
            return v.asInt();
        }

        double number(JsonNode n, String key) {
            JsonNode v = n.get(key);
            if (!v.isNumber()) throw wrong(key, "a number", v);
            return v.asDouble();
        }

        boolean bool(JsonNode n, String key) {
            JsonNode v = n.get(key);
            if (!v.isBoolean()) throw wrong(key, "true or false", v);
            return v.asBoolean();
        }

        String string(JsonNode n, String key) {
            JsonNode v = n.get(key);
            if (!v.isTextual() || v.asText().isBlank()) throw wrong(key, "a non-empty string", v);
            return v.asText();
        }
    }

    /**
     * Device of worker i: "cpu", "cuda:N" for deviceType gpu (N from deviceIds, round robin), or
     * "auto" (the engine's choice: a GPU where usable, else the CPU, said on stderr).
     */
    public String deviceFor(int worker) {
        if (!"gpu".equals(deviceType)) return deviceType;
        List<Integer> ids = deviceIds.isEmpty() ? List.of(0) : deviceIds;
        return "cuda:" + ids.get(worker % ids.size());
    }

    /** Mutable settings; {@link #build()} validates them and collects the notes. */
    public static final class Builder {
        public String modelName;
        public Path checkpoint;
        public Path tokenizer;
        public Path architectureConfig;
        public Path source;
        // Defaults come from the one table (Defaults); TorchServe's handler streams by default.
        public String dtype = Defaults.DTYPE;
        public String deviceType = "cpu";
        public List<Integer> deviceIds = List.of();
        public int threadsPerWorker = Defaults.THREADS;
        public int minWorkers = Defaults.WORKERS;
        public int maxWorkers = Defaults.WORKERS;
        public int queueSize = Defaults.QUEUE_SIZE;
        public int defaultMaxNewTokens = Defaults.MAX_NEW_TOKENS;
        public float defaultTemperature = Defaults.TEMPERATURE;
        public int defaultTopK = Defaults.TOP_K;
        public boolean stream = true;
        public boolean cachePrompt = Defaults.CACHE_PROMPT;
        public int maxNewTokensCap = Defaults.MAX_NEW_TOKENS_CAP;
        public long maxBodyBytes = Defaults.MAX_BODY_BYTES;
        public int requestTimeoutSeconds = Defaults.REQUEST_TIMEOUT_SECONDS;
        public boolean compile;
        public boolean speculative;
        public Path draftModel;
        public int speculateK = Defaults.SPECULATE_K;
        public String parallelType;
        /** torchrun.nproc-per-node: tensor-parallel ranks when parallelType is tp (null = not given). */
        public Integer nprocPerNode;
        /** Tensor-parallel ranks per engine, set directly (--tp); overrides the YAML when > 0. */
        public int tp;
        /** torchrun.nnodes, node-rank, master-addr, master-port, or --nnodes ... (null = not given). */
        public Integer nnodes;
        public Integer nodeRank;
        public String masterAddr;
        public Integer masterPort;
        public int batchSize = Defaults.BATCH_SIZE;
        public int prefillChunk = Defaults.PREFILL_CHUNK;
        public int maxBatchDelayMs = 0;
        public int maxSeqLen = Defaults.MAX_SEQ_LEN;
        public int shutdownTimeoutSeconds = Defaults.SHUTDOWN_TIMEOUT_SECONDS;
        public List<String> apiKeys = List.of();
        public boolean metricsAuth;
        public List<String> corsOrigins = List.of();
        public List<String> allowedHosts = List.of();
        public String quantize = "";
        public String draftQuantize = "";
        final List<String> notes = new ArrayList<>();

        public ServeConfig build() {
            if (checkpoint == null) throw new GptFastException("a checkpoint is required (--checkpoint, or handler.model_path in --config)");
            if (maxWorkers < 1) throw new GptFastException("maxWorkers must be >= 1, got " + maxWorkers);
            if (minWorkers < 0 || minWorkers > maxWorkers) {
                throw new GptFastException("minWorkers must be between 0 and maxWorkers (" + maxWorkers + "), got " + minWorkers);
            }
            if (queueSize < 1) throw new GptFastException("queue size must be >= 1, got " + queueSize);
            if (maxNewTokensCap < 1) throw new GptFastException("max_new_tokens cap must be >= 1, got " + maxNewTokensCap);
            if (defaultMaxNewTokens < 1 || defaultMaxNewTokens > maxNewTokensCap) {
                throw new GptFastException("handler.max_new_tokens must be between 1 and the cap " + maxNewTokensCap
                        + ", got " + defaultMaxNewTokens);
            }
            try {  // the sampling defaults are checked by the one sampling check, naming the key
                GenerationParams.builder().temperature(defaultTemperature).topK(defaultTopK).build();
            } catch (GptFastException e) {
                throw new GptFastException("handler: " + e.getMessage());
            }
            if (maxBodyBytes < 1) throw new GptFastException("max body bytes must be >= 1, got " + maxBodyBytes);
            if (requestTimeoutSeconds < 1) throw new GptFastException("request timeout must be >= 1 s, got " + requestTimeoutSeconds);
            if (shutdownTimeoutSeconds < 0) {
                throw new GptFastException("shutdown timeout must be >= 0 s, got " + shutdownTimeoutSeconds);
            }
            for (String key : apiKeys) {  // the key itself is never part of a message
                if (key == null || key.isBlank() || !key.matches("[\\x21-\\x7e]+")) {
                    throw new GptFastException("an API key must be non-empty printable ASCII without spaces");
                }
            }
            for (String origin : corsOrigins) {
                if (!origin.equals("*") && !origin.matches("https?://[^/\\s]+")) {
                    throw new GptFastException("a CORS origin must be scheme://host[:port] (or *), got '" + origin + "'");
                }
            }
            Nodes nodes = checkedNodes();
            int ranks = 1;
            if (tp > 0) {
                ranks = tp;
            } else if ("tp".equals(parallelType)) {
                if (nprocPerNode == null) {
                    throw new GptFastException("parallelType tp needs torchrun: nproc-per-node: N (the number of ranks)");
                }
                if (nprocPerNode < 1) {
                    throw new GptFastException("torchrun.nproc-per-node must be >= 1 (tp ranks per node), got " + nprocPerNode);
                }
                ranks = nprocPerNode * nodes.nnodes();  // torchrun: nproc-per-node on each of nnodes nodes
            }
            if (nodes.nnodes() > 1 && (ranks < nodes.nnodes() || ranks % nodes.nnodes() != 0)) {
                throw new GptFastException("nnodes " + nodes.nnodes() + " needs tensor-parallel ranks (parallelType: tp, "
                        + "or --tp) that it divides, got " + ranks + " rank(s)");
            }
            // the engine options, by the check the engine applies, before anything loads (the device is checked per worker)
            new EngineOptions(checkpoint, tokenizer, architectureConfig, dtype, Defaults.DEVICE, threadsPerWorker,
                    maxSeqLen, null, null, speculateK, batchSize, prefillChunk, "", "", ranks);
            // "auto" is gptfast4j's own (TorchServe knows cpu and gpu): each worker takes the engine's choice
            if (!List.of("cpu", "gpu", "auto").contains(deviceType)) {
                throw new GptFastException("deviceType must be \"cpu\", \"gpu\" or \"auto\", got \"" + deviceType + "\"");
            }
            for (String[] q : new String[][] {{"handler.quantize", quantize}, {"handler.draft_quantize", draftQuantize}}) {
                try {  // the one check of --quantize values, naming the key
                    GptFastNative.checkOptions(Defaults.DTYPE, Defaults.DEVICE, 0, 0, 1, 0, 1, q[1] == null ? "" : q[1], 1);
                } catch (RuntimeException e) {
                    throw new GptFastException(q[0] + ": " + e.getMessage());
                }
            }
            if (speculative && draftModel == null) {
                throw new GptFastException("handler.speculative is true but no handler.draft_model_path "
                        + "(or draft_checkpoint_path) is given");
            }
            List<String> all = new ArrayList<>(notes);
            if (compile) all.add("handler.compile: true accepted; there is no torch.compile step: the native "
                    + "decode step is compiled ahead of time");
            if (!speculative && draftModel != null) all.add("handler.draft_model_path " + draftModel
                    + " ignored: handler.speculative is false");
            if (parallelType != null && !"tp".equals(parallelType)) all.add("parallelType \"" + parallelType
                    + "\" accepted but not honoured: only tp (tensor parallelism) is implemented");
            if (nprocPerNode != null && !"tp".equals(parallelType) && tp == 0) all.add("torchrun.nproc-per-node "
                    + nprocPerNode + " ignored without parallelType: tp");
            if (minWorkers != maxWorkers) all.add("minWorkers " + minWorkers + " accepted; the pool is fixed at "
                    + "maxWorkers = " + maxWorkers + " engines (no autoscaling)");
            if (maxBatchDelayMs > 0) all.add("maxBatchDelay " + maxBatchDelayMs + " ms not needed: with batchSize > 1 "
                    + "requests join the running batch between decode steps (continuous batching)");
            if (!deviceIds.isEmpty() && !"gpu".equals(deviceType)) all.add("deviceIds " + deviceIds
                    + " ignored with deviceType \"" + deviceType + "\"");
            String name = modelName != null ? modelName : defaultName(checkpoint);
            if (!name.matches("[A-Za-z0-9._-]+")) throw new GptFastException("model name must match [A-Za-z0-9._-]+, got '" + name + "'");
            return new ServeConfig(name, checkpoint, tokenizer, architectureConfig, source, dtype, deviceType,
                    List.copyOf(deviceIds), threadsPerWorker, minWorkers, maxWorkers, queueSize, defaultMaxNewTokens,
                    defaultTemperature, defaultTopK, stream, cachePrompt, maxNewTokensCap, maxBodyBytes, requestTimeoutSeconds,
                    compile, speculative, draftModel, speculateK, parallelType, batchSize, prefillChunk, maxBatchDelayMs,
                    maxSeqLen, shutdownTimeoutSeconds, new Access(apiKeys, metricsAuth, corsOrigins, allowedHosts),
                    quantize, draftQuantize, ranks, nodes, List.copyOf(all));
        }

        /** The nodes as given (YAML, overridden by the command line), checked. */
        public Nodes checkedNodes() {
            int n = nnodes != null ? nnodes : 1;
            int rank = nodeRank != null ? nodeRank : 0;
            String addr = masterAddr != null ? masterAddr : DEFAULT_MASTER_ADDR;
            int port = masterPort != null ? masterPort : DEFAULT_MASTER_PORT;
            if (n < 1) throw new GptFastException("nnodes must be >= 1, got " + n);
            if (rank < 0 || rank >= n) {
                throw new GptFastException("node-rank must be in [0, nnodes " + n + "), got " + rank);
            }
            if (addr.isBlank()) throw new GptFastException("master-addr must not be empty");
            if (port < 0 || port > 65535) throw new GptFastException("master-port must be in [0, 65535], got " + port);
            return new Nodes(n, rank, addr, port);
        }

        /** The checkpoint's directory name (model.pth in models/stories260K serves as "stories260K"). */
        private static String defaultName(Path checkpoint) {
            Path abs = checkpoint.toAbsolutePath().normalize();
            Path named = Files.isDirectory(abs) || abs.getParent() == null ? abs : abs.getParent();
            String n = named.getFileName() == null ? "model" : named.getFileName().toString();
            return n.replaceAll("[^A-Za-z0-9._-]", "_");
        }
    }
}

package ai.gptfast4j.cli;


import ai.gptfast4j.Defaults;
import ai.gptfast4j.EmbeddedModel;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.TensorParallelNodes;
import ai.gptfast4j.serve.ServeConfig;
import java.io.PrintWriter;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Options shared by commands that load a model. */
final class ModelOptionsMixin {
    @Option(names = "--checkpoint", description = "model.pth, *.safetensors, index.json, llama2.c .bin, or a directory "
            + "(default: the embedded stories260K model)")
    Path checkpoint;

    /** True when --checkpoint was left out and the embedded model stands in for it. */
    boolean embedded;

    /** Without --checkpoint: the embedded stories260K model (extracted from the jar once). */
    void defaultCheckpoint() {
        if (checkpoint != null) return;
        checkpoint = EmbeddedModel.checkpoint();
        embedded = true;
    }

    /** Says, just before loading, that the embedded model is used. */
    void sayIfEmbedded(PrintWriter err) {
        if (!embedded) return;
        err.println("no --checkpoint: using the embedded " + EmbeddedModel.NAME + " model (a 260K-parameter "
                + "TinyStories model; see models/stories260K/README.md)");
        err.flush();
    }

    @Option(names = "--tokenizer", description = "tokenizer.model (SentencePiece or tiktoken) or tokenizer.json "
            + "(default: tokenizer.model, else tokenizer.json, beside the checkpoint)")
    Path tokenizer;

    @Option(names = "--config", description = "model config JSON (default: config.json beside the checkpoint, "
            + "GPT-Fast's name table, or the llama2.c header)")
    Path config;

    @Option(names = "--dtype", defaultValue = Defaults.DTYPE, description = "fp32 or bf16, for the weights and the KV cache (default: ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--device", defaultValue = Defaults.DEVICE, description = "cpu (default), cuda[:N] with a CUDA build, or auto (CUDA where usable, else the CPU, said on stderr)")
    String device;

    @Option(names = "--max-seq-len", defaultValue = "0", description = "KV cache length (default: the model's context, at most " + Defaults.MAX_SEQ_LEN_CAP + ")")
    int maxSeqLen;

    @Option(names = "--draft-checkpoint", description = "draft model for speculative decoding (same tokenizer)")
    Path draftCheckpoint;

    @Option(names = "--draft-config", description = "model config JSON of the draft (default: resolved like --config)")
    Path draftConfig;

    @Option(names = "--speculate-k", defaultValue = "" + Defaults.SPECULATE_K,
            description = "draft tokens per verify step (default: ${DEFAULT-VALUE})")
    int speculateK;

    @Option(names = "--prefill-chunk", description = "most prompt tokens a sequence prefills per step, so long prompts "
            + "interleave with other sequences' decoding; 0 = whole prompt (default: " + Defaults.PREFILL_CHUNK + ")")
    Integer prefillChunk;

    @Option(names = "--quantize", paramLabel = "int8|int4[:G]", description = "quantize the Linear layers as the model "
            + "loads, in GPT-Fast's formats (int4 group G in 32, 64, 128, 256; default 128); a checkpoint written by "
            + "`gptfast quantize` needs no flag")
    String quantize;

    @Option(names = "--draft-quantize", paramLabel = "int8|int4[:G]", description = "the same for the draft model")
    String draftQuantize;

    @Option(names = "--tp", paramLabel = "N", description = "tensor parallelism: split the model over N ranks in all, "
            + "native threads of this process (or of --nnodes processes, N/nnodes each) joined by a c10d Gloo group "
            + "(NCCL with --device cuda, rank i on cuda:i), "
            + "each holding its shard; --threads then counts threads per rank (default: 1 = none)")
    Integer tp;

    // The node options are null when not given, so that serve's model-config.yaml (torchrun: nnodes,
    // node-rank, master-addr, master-port) applies unless the command line overrides it.
    @Option(names = "--nnodes", description = "processes (nodes) the --tp ranks are spread over, "
            + "as torchrun's --nnodes; run the same command on each with its --node-rank (default: 1)")
    Integer nnodes;

    @Option(names = "--node-rank", description = "this process's node: 0 owns the command and "
            + "its output, 1..nnodes-1 follow node 0 until it is done (default: 0)")
    Integer nodeRank;

    @Option(names = "--master-addr", description = "node 0's address (default: " + ServeConfig.DEFAULT_MASTER_ADDR + ")")
    String masterAddr;

    @Option(names = "--master-port", description = "node 0's port for the other nodes; 0 on "
            + "node 0 = any free port, which it prints (default: " + ServeConfig.DEFAULT_MASTER_PORT + ")")
    Integer masterPort;

    @Option(names = "--join-timeout", defaultValue = "60", paramLabel = "SECONDS", description = "how long node 0 "
            + "waits for the other nodes, and they for node 0 (default: ${DEFAULT-VALUE})")
    int joinTimeout;

    /** The node options given on the command line into b, over what b holds (from a YAML). */
    void putNodes(ServeConfig.Builder b) {
        if (nnodes != null) b.nnodes = nnodes;
        if (nodeRank != null) b.nodeRank = nodeRank;
        if (masterAddr != null) b.masterAddr = masterAddr;
        if (masterPort != null) b.masterPort = masterPort;
    }

    /** The node options of the command line alone, checked. */
    ServeConfig.Nodes nodes() {
        ServeConfig.Builder b = ServeConfig.builder();
        putNodes(b);
        return b.checkedNodes();
    }

    /** For commands that do not run on several nodes (yet): refuses --nnodes. */
    void singleNode(String command) {
        if (nnodes != null && nnodes != 1) throw new ai.gptfast4j.GptFastException("--nnodes is not supported by " + command
                + " yet (generate, chat, perplexity, bench and serve run on several nodes)");
    }

    /** What a command does once this process is node 0 of its group (or alone). */
    interface NodeZeroWork {
        int run() throws Exception;
    }

    /**
     * Runs the command as this process's node: alone (--nnodes 1) or as node 0 it runs {@code work},
     * node 0 between listening for the others and telling them to exit; any other node follows
     * node 0's models and passes until node 0 is done, and returns 0.
     */
    int onNodes(PrintWriter err, NodeZeroWork work) throws Exception {
        if (nnodes == null && nodeRank != null && nodeRank != 0) {
            throw new ai.gptfast4j.GptFastException("--node-rank " + nodeRank + " needs --nnodes > " + nodeRank);
        }
        return onNodes(err, tp != null ? tp : 1, nodes(), work);
    }

    /** Same, for a command whose ranks and nodes come from elsewhere (serve's model-config.yaml). */
    int onNodes(PrintWriter err, int ranks, ServeConfig.Nodes nodes, NodeZeroWork work) throws Exception {
        int n = nodes.nnodes(), rank = nodes.nodeRank();
        if (n == 1) return work.run();
        java.time.Duration timeout = java.time.Duration.ofSeconds(joinTimeout);
        if (rank != 0) {
            err.printf("tensor-parallel node %d of %d: following node 0 at %s:%d%n", rank, n, nodes.masterAddr(),
                    nodes.masterPort());
            err.flush();
            TensorParallelNodes.follow(nodes.masterAddr(), nodes.masterPort(), n, rank, ranks, timeout);
            err.printf("tensor-parallel node %d: node 0 is done%n", rank);
            return 0;
        }
        int port = TensorParallelNodes.listen(nodes.masterAddr(), nodes.masterPort(), n, ranks, timeout);
        err.printf("tensor-parallel node 0 of %d: listening on port %d%n", n, port);
        err.flush();
        try {
            return work.run();
        } finally {
            TensorParallelNodes.shutdown();
        }
    }

    EngineOptions engineOptions(int threads) {
        return new EngineOptions(checkpoint, tokenizer, config, dtype, device, threads, maxSeqLen, draftCheckpoint,
                draftConfig, speculateK, Defaults.BATCH_SIZE, prefillChunk != null ? prefillChunk : Defaults.PREFILL_CHUNK,
                quantize, draftQuantize, tp != null ? tp : 1);
    }
}

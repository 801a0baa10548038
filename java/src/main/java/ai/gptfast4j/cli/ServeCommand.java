package ai.gptfast4j.cli;

import ai.gptfast4j.GptFastException;
import ai.gptfast4j.serve.GptServer;
import ai.gptfast4j.serve.ServeConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code gptfast serve}: the HTTP server (TorchServe inference + management routes, OpenAI
 * routes, Prometheus metrics). Settings come from a TorchServe model-config.yaml (--config) or
 * from --checkpoint; the options below override either. Stops gracefully on SIGINT/SIGTERM.
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve the model over HTTP: TorchServe-compatible /predictions, /ping, /models; "
                + "OpenAI-compatible /v1/completions, /v1/chat/completions, /v1/models; Prometheus /metrics. "
                + "--config takes a TorchServe model-config.yaml (a .json there is a model architecture config, as for generate).")
final class ServeCommand implements Callable<Integer> {
    @Mixin ModelOptionsMixin model;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "address to bind (default: ${DEFAULT-VALUE})")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "port; 0 = any free port (default: ${DEFAULT-VALUE})")
    int port;

    @Option(names = "--model-name", description = "name in /predictions/{name} and OpenAI's model (default: the checkpoint's directory)")
    String modelName;

    @Option(names = "--workers", description = "engines (concurrent generations); default: maxWorkers from --config, else 1")
    Integer workers;

    @Option(names = "--batch-size", description = "sequences each engine decodes together (continuous batching; "
            + "default: batchSize from --config, else 1)")
    Integer batchSize;

    @Option(names = "--threads", description = "intra-op threads per engine (default: cores / workers)")
    Integer threads;

    @Option(names = "--queue-size", description = "requests that may wait for an engine; more get 503 (default: 64)")
    Integer queueSize;

    @Option(names = "--max-body-bytes", description = "largest request body; larger gets 413 (default: 1048576)")
    Long maxBodyBytes;

    @Option(names = "--request-timeout-s", description = "per-request deadline, queueing included; default: "
            + "responseTimeout from --config, else 300")
    Integer requestTimeout;

    @Option(names = "--max-new-tokens-cap", description = "largest max_new_tokens / max_tokens a request may ask (default: 1024)")
    Integer maxNewTokensCap;

    @Option(names = "--stream", arity = "1", paramLabel = "BOOL",
            description = "stream /predictions answers by default (requests may say \"stream\"); "
                    + "default: handler.stream from --config (true if absent, as in TorchServe's example), else false")
    Boolean stream;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws InterruptedException {
        ServeConfig config;
        try {
            config = config().build();
        } catch (GptFastException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
        }
        GptServer server = GptServer.start(config, host, port);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.err.println("gptfast: shutting down");
            server.close();
            stopped.countDown();
        }, "gptfast-shutdown"));
        System.out.println("listening on http://" + host + ":" + server.port() + " (model '" + config.modelName()
                + "', " + config.maxWorkers() + " worker(s))");
        System.out.flush();
        stopped.await();
        return 0;
    }

    ServeConfig.Builder config() {
        ServeConfig.Builder b;
        if (model.config != null && isYaml(model.config)) {
            b = ServeConfig.fromYaml(model.config);
            if (model.checkpoint != null) b.checkpoint = model.checkpoint;
        } else {
            if (model.checkpoint == null) {
                throw new GptFastException("give --config model-config.yaml or --checkpoint");
            }
            b = ServeConfig.builder();
            b.checkpoint = model.checkpoint;
            b.architectureConfig = model.config;
            b.stream = false;
        }
        if (model.tokenizer != null) b.tokenizer = model.tokenizer;
        if (!"fp32".equals(model.dtype)) b.dtype = model.dtype;
        if (model.device.startsWith("cuda")) {
            b.deviceType = "gpu";
            int colon = model.device.indexOf(':');
            if (colon > 0) b.deviceIds = List.of(Integer.parseInt(model.device.substring(colon + 1)));
        }
        if (model.maxSeqLen != 0) throw new GptFastException("--max-seq-len is not supported by serve");
        if (modelName != null) b.modelName = modelName;
        if (workers != null) {
            b.maxWorkers = workers;
            b.minWorkers = Math.min(b.minWorkers, workers);
        }
        if (batchSize != null) b.batchSize = batchSize;
        if (model.prefillChunk != null) b.prefillChunk = model.prefillChunk;
        if (model.quantize != null) b.quantize = model.quantize;
        if (model.draftQuantize != null) b.draftQuantize = model.draftQuantize;
        if (model.draftCheckpoint != null) {
            b.speculative = true;
            b.draftModel = model.draftCheckpoint;
            b.speculateK = model.speculateK;
        }
        if (threads != null) b.threadsPerWorker = threads;
        if (queueSize != null) b.queueSize = queueSize;
        if (maxBodyBytes != null) b.maxBodyBytes = maxBodyBytes;
        if (requestTimeout != null) b.requestTimeoutSeconds = requestTimeout;
        if (maxNewTokensCap != null) b.maxNewTokensCap = maxNewTokensCap;
        if (stream != null) b.stream = stream;
        return b;
    }

    private static boolean isYaml(Path p) {
        String n = p.getFileName().toString().toLowerCase();
        return n.endsWith(".yaml") || n.endsWith(".yml");
    }
}

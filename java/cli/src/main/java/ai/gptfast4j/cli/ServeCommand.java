package ai.gptfast4j.cli;

import ai.gptfast4j.Defaults;
import ai.gptfast4j.EngineOptions;
import ai.gptfast4j.GptFastException;
import ai.gptfast4j.serve.GptServer;
import ai.gptfast4j.serve.ServeConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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
 * from --checkpoint; the options below override either. Every option is checked before a model
 * loads (exit code 2). On SIGINT/SIGTERM it stops gracefully (see {@link GptServer#close()}) and
 * exits with 0.
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

    @Option(names = "--shutdown-timeout-s", paramLabel = "S", description = "on SIGTERM/SIGINT: queued requests get 503 "
            + "at once, running generations get S seconds to finish, then their streams end with an error (default: "
            + Defaults.SHUTDOWN_TIMEOUT_SECONDS + ")")
    Integer shutdownTimeout;

    @Option(names = "--api-key", paramLabel = "KEY", description = "require 'Authorization: Bearer KEY' on every route "
            + "but /ping (and /metrics, see --metrics-auth); repeatable. Also from --api-key-file and $GPTFAST_API_KEY")
    List<String> apiKeys;

    @Option(names = "--api-key-file", paramLabel = "PATH", description = "file with one API key per line (# comments)")
    Path apiKeyFile;

    @Option(names = "--metrics-auth", description = "/metrics needs the API key too (default: open, for scrapers)")
    boolean metricsAuth;

    @Option(names = "--cors-origins", split = ",", paramLabel = "ORIGIN", description = "browser origins "
            + "(scheme://host[:port], or *) allowed to call the server; requests from other origins get 403 (default: none)")
    List<String> corsOrigins;

    @Option(names = "--allowed-hosts", split = ",", paramLabel = "NAME", description = "Host names accepted besides "
            + "loopback ones while bound to loopback (DNS-rebinding protection; default: none)")
    List<String> allowedHosts;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    /** Environment variable with an API key (for keys kept off the command line). */
    static final String API_KEY_ENV = "GPTFAST_API_KEY";

    @Override
    public Integer call() throws Exception {
        ServeConfig config;
        try {
            if (port < 0 || port > 65535) throw new GptFastException("--port must be in [0, 65535], got " + port);
            config = config().build();
        } catch (GptFastException e) {
            throw GptFastCli.argumentError(spec, e);
        }
        CountDownLatch stop = new CountDownLatch(1);
        for (String signal : List.of("TERM", "INT")) {
            try {
                sun.misc.Signal.handle(new sun.misc.Signal(signal), sig -> stop.countDown());
            } catch (IllegalArgumentException e) {
                // not a signal on this platform; the shutdown hook below still stops the server
            }
        }
        final ServeConfig serveConfig = config;
        return model.onNodes(spec.commandLine().getErr(), config.tp(), config.nodes(), () -> serve(serveConfig, stop));
    }

    private int serve(ServeConfig config, CountDownLatch stop) throws InterruptedException {
        model.sayIfEmbedded(spec.commandLine().getErr());
        GptServer server = GptServer.start(config, host, port);
        Runtime.getRuntime().addShutdownHook(new Thread(server::close, "gptfast-shutdown"));
        System.out.println("listening on http://" + host + ":" + server.port() + " (model '" + config.modelName()
                + "', " + config.maxWorkers() + " worker(s)" + (config.access().apiKeys().isEmpty() ? ""
                : ", API key required") + ")");
        System.out.flush();
        stop.await();
        System.err.println("gptfast: shutting down (running generations get up to " + config.shutdownTimeoutSeconds()
                + " s)");
        server.close();
        return 0;
    }

    /** --api-key values, the lines of --api-key-file, and $GPTFAST_API_KEY. */
    private List<String> keys() {
        List<String> keys = new ArrayList<>();
        if (apiKeys != null) keys.addAll(apiKeys);
        if (apiKeyFile != null) {
            try {
                for (String line : Files.readAllLines(apiKeyFile)) {
                    String k = line.strip();
                    if (!k.isEmpty() && !k.startsWith("#")) keys.add(k);
                }
            } catch (IOException e) {
                throw new GptFastException("cannot read --api-key-file " + apiKeyFile + ": " + GptFastException.readError(e));
            }
            if (keys.isEmpty()) throw new GptFastException("--api-key-file " + apiKeyFile + " holds no key");
        }
        String env = System.getenv(API_KEY_ENV);
        if (env != null && !env.isBlank()) keys.add(env.strip());
        return keys;
    }

    ServeConfig.Builder config() {
        ServeConfig.Builder b;
        if (model.config != null && isYaml(model.config)) {
            b = ServeConfig.fromYaml(model.config);
            if (model.checkpoint != null) b.checkpoint = model.checkpoint;
        } else {
            model.defaultCheckpoint();
            b = ServeConfig.builder();
            b.checkpoint = model.checkpoint;
            if (model.embedded) b.modelName = ai.gptfast4j.EmbeddedModel.NAME;
            b.architectureConfig = model.config;
            b.stream = false;
        }
        if (model.tokenizer != null) b.tokenizer = model.tokenizer;
        if (!"fp32".equals(model.dtype)) b.dtype = model.dtype;
        // the device by the engine's own check, before anything loads
        new EngineOptions(b.checkpoint, null, null, model.dtype, model.device, 0, 0);
        if (model.device.equals("auto")) b.deviceType = "auto";  // each worker's engine chooses, and says so
        if (model.device.startsWith("cuda")) {
            b.deviceType = "gpu";
            int colon = model.device.indexOf(':');
            if (colon > 0) b.deviceIds = List.of(Integer.parseInt(model.device.substring(colon + 1)));
        }
        if (model.maxSeqLen != 0) b.maxSeqLen = model.maxSeqLen;
        if (modelName != null) b.modelName = modelName;
        if (workers != null) {
            b.maxWorkers = workers;
            b.minWorkers = Math.min(b.minWorkers, workers);
        }
        if (batchSize != null) b.batchSize = batchSize;
        if (model.prefillChunk != null) b.prefillChunk = model.prefillChunk;
        if (model.quantize != null) b.quantize = model.quantize;
        if (model.tp != null) b.tp = model.tp;
        model.putNodes(b);  // --nnodes ... over the YAML's torchrun keys
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
        if (shutdownTimeout != null) b.shutdownTimeoutSeconds = shutdownTimeout;
        b.apiKeys = keys();
        b.metricsAuth = metricsAuth;
        if (corsOrigins != null) b.corsOrigins = corsOrigins;
        if (allowedHosts != null) b.allowedHosts = allowedHosts;
        return b;
    }

    private static boolean isYaml(Path p) {
        String n = p.getFileName().toString().toLowerCase();
        return n.endsWith(".yaml") || n.endsWith(".yml");
    }
}

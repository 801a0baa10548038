package ai.gptfast4j;

import ai.gptfast4j.natives.GptFastNative;
import ai.gptfast4j.natives.NativeLibrary;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;

/**
 * Finds the architecture of a checkpoint, in this order: an explicit config file; config.json or
 * params.json beside the checkpoint; GPT-Fast's name table (models/transformer_configs.json)
 * matched against the checkpoint's directory or file name; the llama2.c header.
 * Config files may be GPT-Fast ModelArgs JSON, Hugging Face config.json or Meta params.json.
 */
public final class ConfigResolver {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String NAME_TABLE = "/ai/gptfast4j/models/transformer_configs.json";

    private ConfigResolver() {}

    /**
     * A resolved config and where it came from (for messages and --verbose output);
     * slidingWindow: the attention window of a Hugging Face config's sliding_window (Mistral),
     * 0 when the model attends to its whole context.
     */
    public record Resolved(ModelConfig config, String source, int slidingWindow) {
        public Resolved(ModelConfig config, String source) {
            this(config, source, 0);
        }
    }

    public static Resolved resolve(Path checkpointFile, Path explicitConfig) {
        if (explicitConfig != null) {
            return new Resolved(fromFile(explicitConfig), explicitConfig.toString(), slidingWindow(explicitConfig));
        }
        Path dir = checkpointFile.toAbsolutePath().getParent();
        for (String name : List.of("config.json", "params.json")) {
            Path beside = dir.resolve(name);
            if (Files.isRegularFile(beside)) return new Resolved(fromFile(beside), beside.toString(), slidingWindow(beside));
        }
        for (String name : List.of(dir.getFileName() == null ? "" : dir.getFileName().toString(),
                stem(checkpointFile))) {
            String match = matchName(name);
            if (match != null) return new Resolved(fromName(match), "name table entry " + match);
        }
        if (CheckpointFormat.detect(checkpointFile) == CheckpointFormat.LLAMA2C) {
            return new Resolved(fromLlama2cHeader(checkpointFile), "llama2.c header of " + checkpointFile);
        }
        throw new GptFastException("no model config for " + checkpointFile
                + ": pass --config, put config.json beside it, or name its directory after a GPT-Fast model "
                + "(e.g. stories15M, 7B, llama-3-8b)");
    }

    public static ModelConfig fromFile(Path file) {
        JsonNode node;
        try {
            node = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new GptFastException("cannot read model config " + file + ": " + GptFastException.readError(e), e);
        }
        if (node == null || !node.isObject()) throw new GptFastException("model config " + file + " is not a JSON object");
        try {
            return fromJson(node);
        } catch (GptFastException e) {
            throw new GptFastException("model config " + file + ": " + e.getMessage(), e);
        }
    }

    /** A Hugging Face config's sliding_window (Mistral), 0 when absent or null. */
    static int slidingWindow(Path file) {
        try {
            JsonNode n = JSON.readTree(file.toFile());
            return n != null && n.has("hidden_size") ? Math.max(0, intField(n, "sliding_window", 0)) : 0;
        } catch (IOException e) {
            throw new GptFastException("cannot read model config " + file + ": " + e.getMessage(), e);
        }
    }

    /** GPT-Fast ModelArgs keys, Hugging Face config.json keys, or Meta params.json keys. */
    public static ModelConfig fromJson(JsonNode n) {
        if (n.has("hidden_size")) return fromHuggingFace(n);
        if (n.has("n_layers")) return fromMetaParams(n);
        return fromGptFastArgs(n);
    }

    /** GPT-Fast ModelArgs, with its defaults and its __post_init__ derivations. */
    static ModelConfig fromGptFastArgs(JsonNode n) {
        int dim = intField(n, "dim", 4096);
        int nHead = intField(n, "n_head", 32);
        int nLocal = intField(n, "n_local_heads", -1);
        int headDim = n.has("head_dim") ? intField(n, "head_dim", 0) : (nHead > 0 ? dim / nHead : 0);
        int ffn = n.has("intermediate_size") && !n.get("intermediate_size").isNull()
                ? intField(n, "intermediate_size", 0) : defaultIntermediateSize(dim, 1, 256);
        JsonNode scaling = n.get("rope_scaling");
        return new ModelConfig(dim, intField(n, "n_layer", 32), nHead, nLocal == -1 ? nHead : nLocal, headDim, ffn,
                intField(n, "vocab_size", 32000), intField(n, "block_size", 2048),
                floatField(n, "rope_base", 10000f), floatField(n, "norm_eps", 1e-5f),
                scalingFactor(scaling), floatField(scaling, "low_freq_factor", 1f),
                floatField(scaling, "high_freq_factor", 4f),
                intField(scaling, "original_max_position_embeddings", 8192));
    }

    static ModelConfig fromHuggingFace(JsonNode n) {
        int dim = intField(n, "hidden_size", 0);
        int nHead = intField(n, "num_attention_heads", 0);
        JsonNode scaling = n.get("rope_scaling");
        if (scaling != null && !scaling.isNull()) {
            String type = scaling.path("rope_type").asText(scaling.path("type").asText("llama3"));
            if (!type.equals("llama3")) {
                throw new GptFastException("rope_scaling type '" + type + "' is not supported (only Llama 3's 'llama3')");
            }
        }
        return new ModelConfig(dim, intField(n, "num_hidden_layers", 0), nHead,
                intField(n, "num_key_value_heads", nHead),
                intField(n, "head_dim", nHead > 0 ? dim / nHead : 0), intField(n, "intermediate_size", 0),
                intField(n, "vocab_size", 32000), intField(n, "max_position_embeddings", 2048),
                floatField(n, "rope_theta", 10000f), floatField(n, "rms_norm_eps", 1e-5f),
                scalingFactor(scaling), floatField(scaling, "low_freq_factor", 1f),
                floatField(scaling, "high_freq_factor", 4f),
                intField(scaling, "original_max_position_embeddings", 8192));
    }

    static ModelConfig fromMetaParams(JsonNode n) {
        int dim = intField(n, "dim", 0);
        int nHead = intField(n, "n_heads", 0);
        float multiplier = floatField(n, "ffn_dim_multiplier", 1f);
        int ffn = defaultIntermediateSize(dim, multiplier, intField(n, "multiple_of", 256));
        return new ModelConfig(dim, intField(n, "n_layers", 0), nHead, intField(n, "n_kv_heads", nHead),
                nHead > 0 ? dim / nHead : 0, ffn, intField(n, "vocab_size", 32000),
                intField(n, "max_seq_len", 2048), floatField(n, "rope_theta", 10000f),
                floatField(n, "norm_eps", 1e-5f), 0f, 1f, 4f, 8192);
    }

    /** Llama's SwiGLU width: 2/3 of 4*dim, times the multiplier, rounded up to multiple_of. */
    static int defaultIntermediateSize(int dim, float multiplier, int multipleOf) {
        int hidden = (int) (2 * (4L * dim) / 3);
        hidden = (int) (multiplier * hidden);
        return multipleOf * ((hidden + multipleOf - 1) / multipleOf);
    }

    /** GPT-Fast's ModelArgs.from_name: exact key, else the longest table key the name contains. */
    public static String matchName(String name) {
        JsonNode table = nameTable();
        if (name == null || name.isEmpty()) return null;
        if (table.has(name)) return name;
        String lower = name.toLowerCase(Locale.ROOT);
        List<String> hits = new ArrayList<>();
        for (Iterator<String> it = table.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (lower.contains(key.toLowerCase(Locale.ROOT))) hits.add(key);
        }
        if (hits.isEmpty()) return null;
        hits.sort(Comparator.comparingInt(String::length).reversed());
        if (hits.size() > 1 && hits.get(0).length() == hits.get(1).length()) {
            throw new GptFastException("model name '" + name + "' matches several GPT-Fast configs equally: " + hits);
        }
        return hits.get(0);
    }

    public static ModelConfig fromName(String key) {
        JsonNode entry = nameTable().get(key);
        if (entry == null) throw new GptFastException("no GPT-Fast model config named '" + key + "'");
        return fromGptFastArgs(entry);
    }

    public static List<String> names() {
        List<String> names = new ArrayList<>();
        nameTable().fieldNames().forEachRemaining(names::add);
        return names;
    }

    private static JsonNode nameTable() {
        try (InputStream in = ConfigResolver.class.getResourceAsStream(NAME_TABLE)) {
            if (in == null) throw new GptFastException("name table " + NAME_TABLE + " missing from the jar");
            return JSON.readTree(in);
        } catch (IOException e) {
            throw new GptFastException("cannot read name table: " + e.getMessage(), e);
        }
    }

    /** The architecture in a llama2.c header (read natively, by the loader's own parser). */
    public static ModelConfig fromLlama2cHeader(Path file) {
        NativeLibrary.load();  // one-line error if the natives are missing or mismatched
        try (GptFastNative.ModelSpec spec = GptFastNative.llama2cModel(file.toString())) {
            return ModelConfig.fromNative(spec);
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
    }

    private static float scalingFactor(JsonNode scaling) {
        return scaling == null || scaling.isNull() ? 0f : floatField(scaling, "factor", 0f);
    }

    private static int intField(JsonNode n, String key, int fallback) {
        if (n == null || !n.has(key) || n.get(key).isNull()) return fallback;
        JsonNode v = n.get(key);
        if (!v.canConvertToInt() || !v.isIntegralNumber()) {
            throw new GptFastException("'" + key + "' must be an integer, got " + v);
        }
        return v.intValue();
    }

    private static float floatField(JsonNode n, String key, float fallback) {
        if (n == null || !n.has(key) || n.get(key).isNull()) return fallback;
        JsonNode v = n.get(key);
        if (!v.isNumber()) throw new GptFastException("'" + key + "' must be a number, got " + v);
        return v.floatValue();
    }

    private static String stem(Path file) {
        String name = file.getFileName().toString();
        int dot = name.indexOf('.');
        return dot > 0 ? name.substring(0, dot) : name;
    }
}

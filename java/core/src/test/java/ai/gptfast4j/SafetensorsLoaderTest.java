package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Builds Hugging Face Llama safetensors checkpoints (single file and sharded) from the weights of
 * llama2.c's stories260K.bin, parsed in Java, and checks that the engine's greedy decoding from them
 * reproduces the reference token ids exactly.
 */
class SafetensorsLoaderTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int REFERENCE_CASES = 3;

    private static Path modelDir;
    private static Llama2cWeights weights;
    private static List<SharedData.GreedyCase> references;

    record Tensor(long[] shape, float[] data) {
        long bytes() { return 4L * data.length; }
    }

    @BeforeAll
    static void setUp() throws IOException {
        modelDir = SharedData.stories();
        weights = Llama2cWeights.read(SharedData.storiesBin());
        references = SharedData.greedyCases().subList(0, REFERENCE_CASES);
    }

    @Test
    void singleFileReproducesReference(@TempDir Path dir) throws IOException {
        writeModelDir(dir);
        Path file = dir.resolve("model.safetensors");
        writeSafetensors(file, hfTensors(true));
        assertReproducesReference(file);
    }

    @Test
    void shardedCheckpointReproducesReference(@TempDir Path dir) throws IOException {
        writeModelDir(dir);
        Map<String, Tensor> all = hfTensors(true);
        Map<String, Tensor> first = new LinkedHashMap<>(), second = new LinkedHashMap<>();
        String firstName = "model-00001-of-00002.safetensors", secondName = "model-00002-of-00002.safetensors";
        Map<String, String> weightMap = new LinkedHashMap<>();
        long totalSize = 0;
        for (Map.Entry<String, Tensor> e : all.entrySet()) {
            // embedding and layers 0-1 in the first shard; layers 2-4 and the final norm in the second
            boolean inFirst = e.getKey().equals("model.embed_tokens.weight")
                    || e.getKey().startsWith("model.layers.0.") || e.getKey().startsWith("model.layers.1.");
            (inFirst ? first : second).put(e.getKey(), e.getValue());
            weightMap.put(e.getKey(), inFirst ? firstName : secondName);
            totalSize += e.getValue().bytes();
        }
        writeSafetensors(dir.resolve(firstName), first);
        writeSafetensors(dir.resolve(secondName), second);
        ObjectNode index = JSON.createObjectNode();
        index.putObject("metadata").put("total_size", totalSize);
        ObjectNode map = index.putObject("weight_map");
        weightMap.forEach(map::put);
        Path indexFile = dir.resolve("model.safetensors.index.json");
        JSON.writerWithDefaultPrettyPrinter().writeValue(indexFile.toFile(), index);
        assertReproducesReference(indexFile);
    }

    @Test
    void truncatedFileIsReported(@TempDir Path dir) throws IOException {
        writeModelDir(dir);
        Path file = dir.resolve("model.safetensors");
        writeSafetensors(file, hfTensors(true));
        long size = Files.size(file);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(size / 2); // in the middle of the tensor data
        }
        GptFastException e = assertThrows(GptFastException.class, () -> Engine.load(EngineOptions.of(file)).close());
        assertTrue(e.getMessage() != null && e.getMessage().toLowerCase().contains("truncated"),
                "message should mention truncation: " + e.getMessage());
    }

    @Test
    void truncatedHeaderIsReported(@TempDir Path dir) throws IOException {
        writeModelDir(dir);
        Path file = dir.resolve("model.safetensors");
        writeSafetensors(file, hfTensors(true));
        long headerLength;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(b, 0);
            headerLength = b.getLong(0);
            ch.truncate(8 + headerLength / 2); // in the middle of the JSON header
        }
        GptFastException e = assertThrows(GptFastException.class, () -> Engine.load(EngineOptions.of(file)).close());
        assertTrue(e.getMessage() != null && e.getMessage().toLowerCase().contains("truncated"),
                "message should mention truncation: " + e.getMessage());
    }

    /**
     * data_offsets near 2^64 must not wrap around the bounds check: here begin = 2^64 - dataStart,
     * so dataStart + begin wraps to 0 and, unchecked, the norm weights would be read from the
     * file's own header bytes without any error.
     */
    @Test
    void wrappingDataOffsetsAreRejected(@TempDir Path dir) throws IOException {
        writeModelDir(dir);
        Path file = dir.resolve("model.safetensors");
        BigInteger twoTo64 = BigInteger.ONE.shiftLeft(64);
        writeSafetensors(file, hfTensors(true), "model.norm.weight", (entry, dataStart) -> {
            // before dataStart is known, any 20-digit value keeps the header length the same
            BigInteger begin = twoTo64.subtract(BigInteger.valueOf(dataStart == 0 ? 1_000_000 : dataStart));
            entry.putArray("data_offsets").add(begin).add(begin.add(BigInteger.valueOf(4L * weights.dim)));
        });
        GptFastException e = assertThrows(GptFastException.class, () -> Engine.load(EngineOptions.of(file)).close());
        assertTrue(e.getMessage() != null && e.getMessage().contains("model.norm.weight"),
                "message should name the tensor: " + e.getMessage());
    }

    /** A header claiming far more data than the file holds is reported as truncated, before any allocation. */
    @Test
    void oversizedTensorIsReportedAsTruncated(@TempDir Path dir) throws IOException {
        writeModelDir(dir);
        Path file = dir.resolve("model.safetensors");
        long huge = 1L << 40; // 4 TiB of F32
        writeSafetensors(file, hfTensors(true), "model.norm.weight", (entry, dataStart) -> {
            entry.putArray("shape").add(huge);
            entry.putArray("data_offsets").add(0L).add(4 * huge);
        });
        GptFastException e = assertThrows(GptFastException.class, () -> Engine.load(EngineOptions.of(file)).close());
        assertTrue(e.getMessage() != null && e.getMessage().toLowerCase().contains("truncated"),
                "message should mention truncation: " + e.getMessage());
    }

    /** Without the inverse permutation of wq/wk, the HF loader's permutation scrambles RoPE. */
    @Test
    void unpermutedQueryKeyDoNotReproduceReference(@TempDir Path dir) throws IOException {
        writeModelDir(dir);
        Path file = dir.resolve("model.safetensors");
        writeSafetensors(file, hfTensors(false));
        SharedData.GreedyCase c = references.get(0);
        try (Engine engine = Engine.load(EngineOptions.of(file))) {
            int[] got = engine.generate(c.promptTokens(), params(c), null, new CancellationToken()).generatedTokens();
            assertFalse(Arrays.equals(c.generatedTokens(), got),
                    "GPT-Fast-layout q/k under Hugging Face names should not reproduce the reference");
        }
    }

    /** The permutation and its inverse written here are inverses of each other. */
    @Test
    void inversePermutationRoundTrips() {
        float[] w = Arrays.copyOf(weights.wq[0], weights.wq[0].length);
        float[] hf = toHfLayout(w, weights.nHeads, weights.headDim, weights.dim);
        assertFalse(Arrays.equals(w, hf));
        // GPT-Fast's permute: w.view(n_heads, 2, head_dim/2, dim).transpose(1, 2).reshape(n_heads*head_dim, dim)
        int hd = weights.headDim, half = hd / 2, dim = weights.dim;
        float[] back = new float[hf.length];
        for (int h = 0; h < weights.nHeads; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                    System.arraycopy(hf, (h * hd + j * half + i) * dim, back, (h * hd + i * 2 + j) * dim, dim);
        assertArrayEquals(w, back);
    }

    // ---------------------------------------------------------------- helpers

    private static void assertReproducesReference(Path checkpoint) {
        try (Engine engine = Engine.load(EngineOptions.of(checkpoint))) {
            assertEquals(512, engine.config().vocabSize());
            assertEquals(512, engine.contextLength());
            for (SharedData.GreedyCase c : references) {
                GenerationResult r = engine.generate(c.promptTokens(), params(c), null, new CancellationToken());
                assertArrayEquals(c.generatedTokens(), r.generatedTokens(),
                        "greedy tokens from " + checkpoint.getFileName() + " for prompt '" + c.prompt() + "'");
            }
        }
    }

    private static GenerationParams params(SharedData.GreedyCase c) {
        return GenerationParams.builder().greedy().maxNewTokens(c.maxNewTokens()).stopTokens(1).build();
    }

    /** config.json (Hugging Face keys) and tokenizer.model beside the checkpoint. */
    private static void writeModelDir(Path dir) throws IOException {
        ObjectNode cfg = JSON.createObjectNode();
        cfg.putArray("architectures").add("LlamaForCausalLM");
        cfg.put("model_type", "llama");
        cfg.put("hidden_size", weights.dim);
        cfg.put("num_hidden_layers", weights.nLayers);
        cfg.put("num_attention_heads", weights.nHeads);
        cfg.put("num_key_value_heads", weights.nKvHeads);
        cfg.put("intermediate_size", weights.hiddenDim);
        cfg.put("vocab_size", weights.vocabSize);
        cfg.put("max_position_embeddings", weights.seqLen);
        cfg.put("rope_theta", 10000.0);
        cfg.put("rms_norm_eps", 1e-5);
        cfg.put("tie_word_embeddings", true);
        cfg.put("torch_dtype", "float32");
        JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), cfg);
        Files.copy(modelDir.resolve("tokenizer.model"), dir.resolve("tokenizer.model"));
    }

    /** Hugging Face Llama names and layouts; permute = false leaves wq/wk in GPT-Fast's layout. */
    private static Map<String, Tensor> hfTensors(boolean permute) {
        Llama2cWeights w = weights;
        long dim = w.dim, kv = w.kvDim, hidden = w.hiddenDim;
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("model.embed_tokens.weight", new Tensor(new long[] {w.vocabSize, dim}, w.tokenEmbedding));
        for (int l = 0; l < w.nLayers; l++) {
            String p = "model.layers." + l + ".";
            float[] q = permute ? toHfLayout(w.wq[l], w.nHeads, w.headDim, w.dim) : w.wq[l];
            float[] k = permute ? toHfLayout(w.wk[l], w.nKvHeads, w.headDim, w.dim) : w.wk[l];
            t.put(p + "self_attn.q_proj.weight", new Tensor(new long[] {dim, dim}, q));
            t.put(p + "self_attn.k_proj.weight", new Tensor(new long[] {kv, dim}, k));
            t.put(p + "self_attn.v_proj.weight", new Tensor(new long[] {kv, dim}, w.wv[l]));
            t.put(p + "self_attn.o_proj.weight", new Tensor(new long[] {dim, dim}, w.wo[l]));
            t.put(p + "mlp.gate_proj.weight", new Tensor(new long[] {hidden, dim}, w.w1[l]));
            t.put(p + "mlp.up_proj.weight", new Tensor(new long[] {hidden, dim}, w.w3[l]));
            t.put(p + "mlp.down_proj.weight", new Tensor(new long[] {dim, hidden}, w.w2[l]));
            t.put(p + "input_layernorm.weight", new Tensor(new long[] {dim}, w.rmsAtt[l]));
            t.put(p + "post_attention_layernorm.weight", new Tensor(new long[] {dim}, w.rmsFfn[l]));
        }
        t.put("model.norm.weight", new Tensor(new long[] {dim}, w.rmsFinal));
        return t;
    }

    /**
     * Inverse of GPT-Fast's HF->GPT-Fast permutation: GPT-Fast row h*hd + 2i + j comes from
     * HF row h*hd + j*(hd/2) + i, so HF row h*hd + j*(hd/2) + i = GPT-Fast row h*hd + 2i + j.
     */
    static float[] toHfLayout(float[] gptFast, int heads, int headDim, int cols) {
        int half = headDim / 2;
        float[] hf = new float[gptFast.length];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                    System.arraycopy(gptFast, (h * headDim + 2 * i + j) * cols,
                            hf, (h * headDim + j * half + i) * cols, cols);
        return hf;
    }

    /** u64 LE header length, JSON header (space-padded to 8 bytes), raw little-endian F32 data. */
    static void writeSafetensors(Path file, Map<String, Tensor> tensors) throws IOException {
        writeSafetensors(file, tensors, null, null);
    }

    /** Rewrites one header entry once the start of the data section is known (to corrupt it). */
    interface EntryOverride {
        void apply(ObjectNode entry, long dataStart);
    }

    static void writeSafetensors(Path file, Map<String, Tensor> tensors, String overridden, EntryOverride override)
            throws IOException {
        byte[] headerBytes = header(tensors, overridden, override, 0);
        if (override != null) {
            // the override may only change values, not the header's length, for dataStart to hold
            long dataStart = 8 + headerBytes.length;
            headerBytes = header(tensors, overridden, override, dataStart);
            assertEquals(dataStart, 8 + headerBytes.length, "the override changed the header length");
        }
        long dataBytes = 0;
        try (OutputStream out = Files.newOutputStream(file)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(headerBytes.length).array());
            out.write(headerBytes);
            for (Tensor t : tensors.values()) {
                ByteBuffer b = ByteBuffer.allocate(t.data().length * 4).order(ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().put(t.data());
                out.write(b.array());
                dataBytes += t.bytes();
            }
        }
        assertEquals(8 + headerBytes.length + dataBytes, Files.size(file));
    }

    private static byte[] header(Map<String, Tensor> tensors, String overridden, EntryOverride override,
                                 long dataStart) {
        ObjectNode header = JSON.createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            Tensor t = e.getValue();
            long n = 1;
            for (long d : t.shape()) n *= d;
            assertEquals(n, t.data().length, "shape of " + e.getKey());
            ObjectNode entry = header.putObject(e.getKey());
            entry.put("dtype", "F32");
            var shape = entry.putArray("shape");
            for (long d : t.shape()) shape.add(d);
            entry.putArray("data_offsets").add(offset).add(offset + t.bytes());
            offset += t.bytes();
            if (e.getKey().equals(overridden)) override.apply(entry, dataStart);
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(header);
        } catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
        int padded = (json.length + 7) / 8 * 8;
        byte[] headerBytes = Arrays.copyOf(json, padded);
        Arrays.fill(headerBytes, json.length, padded, (byte) ' ');
        return headerBytes;
    }

}

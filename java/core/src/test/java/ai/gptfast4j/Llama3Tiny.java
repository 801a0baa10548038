package ai.gptfast4j;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * ../shared/models/llama3-tiny-random: its greedy references, and the same model rewritten (by
 * this class, from the GPT-Fast model.pth read in Java) as a Hugging Face directory straight from
 * the Hub: config.json with rope_scaling, model.safetensors (bf16, tied embeddings: no lm_head,
 * q/k in Hugging Face's rotary layout), tokenizer.json, generation_config.json.
 */
final class Llama3Tiny {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Llama3Tiny() {}

    record GreedyCase(String prompt, int[] promptTokens, int[] generatedTokens) {}

    static java.util.List<GreedyCase> greedyCases() {
        return SharedData.jsonl("reference/llama3-tiny-greedy.jsonl").stream()
                .map(n -> new GreedyCase(n.get("prompt").asText(), SharedData.ints(n.get("prompt_tokens")),
                        SharedData.ints(n.get("generated_tokens"))))
                .toList();
    }

    /** Writes the Hugging Face form of the model into dir; maxPositions becomes max_position_embeddings. */
    static void writeHfDirectory(Path dir, int maxPositions) throws IOException {
        writeHfDirectory(dir, maxPositions, null);
    }

    /**
     * Same; lmHead, when given, makes an untied output head from the embedding matrix (rows of
     * BF16 values as floats, [vocab][dim]) instead of tying it.
     */
    static void writeHfDirectory(Path dir, int maxPositions, java.util.function.Consumer<float[][]> lmHead)
            throws IOException {
        JsonNode gf = JSON.readTree(SharedData.llama3Tiny().resolve("config.json").toFile());
        int dim = gf.get("dim").asInt(), nHead = gf.get("n_head").asInt(), nKv = gf.get("n_local_heads").asInt();
        int headDim = gf.get("head_dim").asInt(), layers = gf.get("n_layer").asInt();
        ObjectNode cfg = JSON.createObjectNode();
        cfg.putArray("architectures").add("LlamaForCausalLM");
        cfg.put("model_type", "llama");
        cfg.put("hidden_size", dim);
        cfg.put("num_hidden_layers", layers);
        cfg.put("num_attention_heads", nHead);
        cfg.put("num_key_value_heads", nKv);
        cfg.put("head_dim", headDim);
        cfg.put("intermediate_size", gf.get("intermediate_size").asInt());
        cfg.put("vocab_size", gf.get("vocab_size").asInt());
        cfg.put("max_position_embeddings", maxPositions);
        cfg.put("rope_theta", gf.get("rope_base").asDouble());
        cfg.put("rms_norm_eps", gf.get("norm_eps").asDouble());
        ObjectNode scaling = cfg.putObject("rope_scaling");
        scaling.put("rope_type", "llama3");
        scaling.setAll((ObjectNode) gf.get("rope_scaling"));
        cfg.put("tie_word_embeddings", lmHead == null);
        cfg.put("torch_dtype", "bfloat16");
        cfg.put("bos_token_id", 128000);
        cfg.put("eos_token_id", 128001);
        JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("config.json").toFile(), cfg);
        ObjectNode gen = JSON.createObjectNode();
        gen.put("bos_token_id", 128000);
        gen.putArray("eos_token_id").add(128001).add(128008).add(128009);
        JSON.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("generation_config.json").toFile(), gen);
        Files.copy(SharedData.llama3TokenizerJson(), dir.resolve("tokenizer.json"));

        Map<String, TorchPth.Tensor> w = TorchPth.read(SharedData.llama3Tiny().resolve("model.pth"));
        Map<String, TorchPth.Tensor> hf = new LinkedHashMap<>();
        hf.put("model.embed_tokens.weight", w.get("tok_embeddings.weight"));
        for (int l = 0; l < layers; l++) {
            String g = "layers." + l + ".", h = "model.layers." + l + ".";
            TorchPth.Tensor qkv = w.get(g + "attention.wqkv.weight");
            int qRows = nHead * headDim, kvRows = nKv * headDim;
            hf.put(h + "self_attn.q_proj.weight", toHfLayout(rows(qkv, 0, qRows), nHead, headDim));
            hf.put(h + "self_attn.k_proj.weight", toHfLayout(rows(qkv, qRows, kvRows), nKv, headDim));
            hf.put(h + "self_attn.v_proj.weight", rows(qkv, qRows + kvRows, kvRows));
            hf.put(h + "self_attn.o_proj.weight", w.get(g + "attention.wo.weight"));
            hf.put(h + "mlp.gate_proj.weight", w.get(g + "feed_forward.w1.weight"));
            hf.put(h + "mlp.up_proj.weight", w.get(g + "feed_forward.w3.weight"));
            hf.put(h + "mlp.down_proj.weight", w.get(g + "feed_forward.w2.weight"));
            hf.put(h + "input_layernorm.weight", w.get(g + "attention_norm.weight"));
            hf.put(h + "post_attention_layernorm.weight", w.get(g + "ffn_norm.weight"));
        }
        hf.put("model.norm.weight", w.get("norm.weight"));
        if (lmHead != null) {
            TorchPth.Tensor e = w.get("tok_embeddings.weight");
            int rows = (int) e.shape()[0], cols = (int) e.shape()[1];
            ByteBuffer in = ByteBuffer.wrap(e.data()).order(ByteOrder.LITTLE_ENDIAN);
            float[][] m = new float[rows][cols];
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) m[r][c] = Float.intBitsToFloat((in.getShort() & 0xFFFF) << 16);
            lmHead.accept(m);
            ByteBuffer out = ByteBuffer.allocate(e.data().length).order(ByteOrder.LITTLE_ENDIAN);
            for (float[] row : m)
                for (float v : row) out.putShort((short) (Float.floatToRawIntBits(v) >>> 16));  // exact for bf16 values
            hf.put("lm_head.weight", new TorchPth.Tensor("BF16", e.shape(), out.array()));
        }
        writeSafetensors(dir.resolve("model.safetensors"), hf);
    }

    private static TorchPth.Tensor rows(TorchPth.Tensor t, int from, int n) {
        int rowBytes = (int) (t.data().length / t.shape()[0]);
        return new TorchPth.Tensor(t.dtype(), new long[] {n, t.shape()[1]},
                Arrays.copyOfRange(t.data(), from * rowBytes, (from + n) * rowBytes));
    }

    /** Inverse of GPT-Fast's permutation: GPT-Fast row h*hd + 2i + j is HF row h*hd + j*hd/2 + i. */
    private static TorchPth.Tensor toHfLayout(TorchPth.Tensor t, int heads, int headDim) {
        int rowBytes = (int) (t.data().length / t.shape()[0]), half = headDim / 2;
        byte[] out = new byte[t.data().length];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                    System.arraycopy(t.data(), (h * headDim + 2 * i + j) * rowBytes, out,
                            (h * headDim + j * half + i) * rowBytes, rowBytes);
        return new TorchPth.Tensor(t.dtype(), t.shape(), out);
    }

    private static void writeSafetensors(Path file, Map<String, TorchPth.Tensor> tensors) throws IOException {
        ObjectNode header = JSON.createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        for (Map.Entry<String, TorchPth.Tensor> e : tensors.entrySet()) {
            ObjectNode entry = header.putObject(e.getKey());
            entry.put("dtype", e.getValue().dtype());
            var shape = entry.putArray("shape");
            for (long d : e.getValue().shape()) shape.add(d);
            entry.putArray("data_offsets").add(offset).add(offset + e.getValue().data().length);
            offset += e.getValue().data().length;
        }
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) / 8 * 8;
        byte[] headerBytes = Arrays.copyOf(json, padded);
        Arrays.fill(headerBytes, json.length, padded, (byte) ' ');
        try (OutputStream out = Files.newOutputStream(file)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(headerBytes.length).array());
            out.write(headerBytes);
            for (TorchPth.Tensor t : tensors.values()) out.write(t.data());
        }
    }
}

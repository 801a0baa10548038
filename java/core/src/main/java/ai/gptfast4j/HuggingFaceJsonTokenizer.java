package ai.gptfast4j;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.TokenizersLibrary;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face {@code tokenizer.json}, run by the Rust tokenizers library through DJL's binding
 * (its native library ships inside the jar, for linux-x86_64 among others). BOS and EOS come
 * from {@code tokenizer_config.json} beside the file when present, else from the usual names.
 *
 * <p>Two native instances: the full tokenizer (special tokens split out of the text first, as
 * Hugging Face always does; used for decoding and chat templates) and one built from the same JSON
 * without its special added tokens, so that raw prompts encode special-token strings as plain
 * text, like tiktoken's encode_ordinary.
 */
public final class HuggingFaceJsonTokenizer implements Tokenizer {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Names tried for BOS/EOS when no tokenizer_config.json says: Llama 3, Llama 2/Mistral, Gemma, GPT-2. */
    private static final List<String> BOS_NAMES = List.of(TiktokenTokenizer.LLAMA3_BOS, "<s>", "<bos>", "<|endoftext|>");
    private static final List<String> EOS_NAMES = List.of(TiktokenTokenizer.LLAMA3_EOS, "</s>", "<eos>", "<|endoftext|>");

    private final HuggingFaceTokenizer full, ordinary;
    private final String[] pieces;
    private final Map<String, Integer> specials;
    private final int bosId, eosId;
    private final int[] stopIds;

    private HuggingFaceJsonTokenizer(HuggingFaceTokenizer full, HuggingFaceTokenizer ordinary, String[] pieces,
                                     Map<String, Integer> specials, int bosId, int eosId, int[] stopIds) {
        this.full = full;
        this.ordinary = ordinary;
        this.pieces = pieces;
        this.specials = Collections.unmodifiableMap(specials);
        this.bosId = bosId;
        this.eosId = eosId;
        this.stopIds = stopIds;
    }

    public static HuggingFaceJsonTokenizer open(Path file) {
        byte[] bytes;
        JsonNode root;
        try {
            bytes = Files.readAllBytes(file);
            root = JSON.readTree(bytes);
        } catch (IOException e) {
            throw new GptFastException("malformed tokenizer.json " + file + ": " + firstLine(e.getMessage()), e);
        }
        if (root == null || !root.isObject() || !root.path("model").isObject()) {
            throw new GptFastException("malformed tokenizer.json " + file + ": no \"model\" object");
        }
        JsonNode vocab = root.path("model").path("vocab");
        Map<String, Integer> specials = new LinkedHashMap<>();
        int size = 0;
        Map<Integer, String> byId = new java.util.HashMap<>();
        if (vocab.isObject()) {  // BPE, WordPiece: {piece: id}
            for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                byId.put(e.getValue().asInt(), e.getKey());
            }
        } else if (vocab.isArray()) {  // Unigram: [[piece, score], ...]
            for (int i = 0; i < vocab.size(); i++) byId.put(i, vocab.get(i).path(0).asText());
        } else {
            throw new GptFastException("malformed tokenizer.json " + file + ": model has no vocab");
        }
        ArrayNode stripped = JSON.createArrayNode();
        for (JsonNode t : root.path("added_tokens")) {
            int id = t.path("id").asInt(-1);
            String content = t.path("content").asText(null);
            if (id < 0 || content == null) throw new GptFastException("malformed tokenizer.json " + file + ": bad added token " + t);
            byId.put(id, content);
            if (t.path("special").asBoolean(false)) specials.put(content, id);
            else stripped.add(t);
        }
        for (int id : byId.keySet()) size = Math.max(size, id + 1);
        String[] pieces = new String[size];
        byId.forEach((id, piece) -> pieces[id] = piece);

        TokenizerConfig config = TokenizerConfig.besides(file);
        int bos = idOf(config.bosToken(), BOS_NAMES, specials, byId);
        int eos = idOf(config.eosToken(), EOS_NAMES, specials, byId);
        java.util.LinkedHashSet<Integer> stops = new java.util.LinkedHashSet<>();
        if (eos >= 0) stops.add(eos);
        for (String name : TiktokenTokenizer.LLAMA3_STOPS) if  // Llama 3.x's, when it is one
            (specials.containsKey(name)) stops.add(specials.get(name));

        HuggingFaceTokenizer full = null;
        try {
            // DJL truncates to 512 tokens unless told not to
            Map<String, String> options = Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false");
            full = HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(bytes), options);
            ObjectNode withoutSpecials = ((ObjectNode) root).deepCopy();
            withoutSpecials.set("added_tokens", stripped);
            HuggingFaceTokenizer ordinary = HuggingFaceTokenizer.newInstance(
                    new ByteArrayInputStream(JSON.writeValueAsBytes(withoutSpecials)), options);
            return new HuggingFaceJsonTokenizer(full, ordinary, pieces, specials, bos, eos,
                    stops.stream().mapToInt(Integer::intValue).toArray());
        } catch (IOException | RuntimeException e) {
            if (full != null) full.close();
            throw new GptFastException("malformed tokenizer.json " + file + ": " + firstLine(e.getMessage()), e);
        }
    }

    private static int idOf(String configured, List<String> names, Map<String, Integer> specials,
                            Map<Integer, String> byId) {
        if (configured != null) {
            if (specials.containsKey(configured)) return specials.get(configured);
            for (Map.Entry<Integer, String> e : byId.entrySet()) if (e.getValue().equals(configured)) return e.getKey();
        }
        for (String name : names) if (specials.containsKey(name)) return specials.get(name);
        return -1;
    }

    private static String firstLine(String s) {
        if (s == null) return "unknown error";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    @Override
    public int[] encode(String text) {
        return ids(ordinary, text);
    }

    @Override
    public int[] encode(String text, boolean allowSpecial) {
        return allowSpecial ? ids(full, text) : encode(text);
    }

    /**
     * Only the ids, through DJL's JNI entry points: HuggingFaceTokenizer.encode also copies
     * tokens, offsets, masks and word ids of every token into Java, which made encoding 1 MB of
     * text several times slower than the tokenization itself.
     */
    private static int[] ids(HuggingFaceTokenizer t, String text) {
        long encoding = TokenizersLibrary.LIB.encode(t.getHandle(), text, false);
        try {
            return toInts(TokenizersLibrary.LIB.getTokenIds(encoding));
        } finally {
            TokenizersLibrary.LIB.deleteEncoding(encoding);
        }
    }

    @Override
    public Map<String, Integer> specialTokens() {
        return specials;
    }

    @Override
    public String decode(int[] ids) {
        return decode(ids, 0, ids.length);
    }

    @Override
    public String decode(int[] ids, int from, int to) {
        java.util.Objects.checkFromToIndex(from, to, ids.length);
        long[] longs = new long[to - from];
        for (int i = from; i < to; i++) {
            Tokenizer.checkId(ids[i], pieces.length);
            longs[i - from] = ids[i];
        }
        return full.decode(longs, false);
    }

    @Override
    public String piece(int id) {
        Tokenizer.checkId(id, pieces.length);
        return pieces[id] != null ? pieces[id] : "";
    }


    private static int[] toInts(long[] ids) {
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) out[i] = (int) ids[i];
        return out;
    }

    @Override public int vocabSize() { return pieces.length; }
    @Override public int bosId() { return bosId; }
    @Override public int eosId() { return eosId; }
    @Override public int[] stopTokens() { return stopIds.clone(); }

    @Override
    public synchronized void close() {
        full.close();
        ordinary.close();
    }
}

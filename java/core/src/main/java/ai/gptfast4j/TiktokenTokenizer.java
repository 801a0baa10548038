package ai.gptfast4j;

import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.GptBytePairEncodingParams;
import com.knuddels.jtokkit.api.IntArrayList;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * tiktoken byte-level BPE from a {@code tokenizer.model} of base64-rank lines, as Meta ships Llama
 * 3.x, encoded by jtokkit with Llama 3's pre-tokenizer pattern and its 256 special tokens (ids
 * from the number of ranks on). This class owns those Llama 3 facts.
 */
public final class TiktokenTokenizer implements Tokenizer {
    /** Llama 3's pre-tokenizer pattern (Meta's tokenizer.py); \s, \p{L}, \p{N} are Unicode classes. */
    public static final String LLAMA3_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String LLAMA3_BOS = "<|begin_of_text|>", LLAMA3_EOS = "<|end_of_text|>";
    /** Llama 3's special tokens, in id order after the ranks; reserved ones fill up to 256. */
    static final List<String> LLAMA3_NAMED_SPECIALS = List.of(LLAMA3_BOS, LLAMA3_EOS,
            "<|reserved_special_token_0|>", "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
            "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
            "<|python_tag|>", "<|image|>");
    static final int LLAMA3_SPECIAL_COUNT = 256;
    /** Meta's stop tokens for Llama 3.x: end of text, end of message (tool call), end of turn. */
    static final List<String> LLAMA3_STOPS = List.of(LLAMA3_EOS, "<|eom_id|>", "<|eot_id|>");

    private final Encoding encoding;
    private final Map<String, Integer> specials;
    private final String[] specialById;  // index id - ranks
    private final int ranks;
    private final int bosId, eosId;
    private final int[] stopIds;

    private TiktokenTokenizer(Encoding encoding, int ranks, Map<String, Integer> specials) {
        this.encoding = encoding;
        this.ranks = ranks;
        this.specials = Collections.unmodifiableMap(specials);
        this.specialById = new String[specials.size()];
        specials.forEach((s, id) -> specialById[id - ranks] = s);
        this.bosId = specials.get(LLAMA3_BOS);
        this.eosId = specials.get(LLAMA3_EOS);
        this.stopIds = LLAMA3_STOPS.stream().mapToInt(specials::get).toArray();
    }

    /** Whether the file looks like tiktoken ranks: its first line is "base64 rank". */
    static boolean looksLikeTiktoken(byte[] head) {
        int end = 0;
        while (end < head.length && head[end] != '\n') end++;
        String first = new String(head, 0, end, StandardCharsets.US_ASCII).trim();
        return first.matches("[A-Za-z0-9+/]+=*\\s+\\d+");
    }

    /** A Llama 3.x tiktoken file: base64 token, a space, its rank; ranks 0..n-1 in order. */
    public static TiktokenTokenizer llama3(Path file) {
        Map<byte[], Integer> ranks = new HashMap<>();
        int lineNo = 0;
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.US_ASCII)) {
            Base64.Decoder b64 = Base64.getDecoder();
            for (String line; (line = in.readLine()) != null; ) {
                lineNo++;
                if (line.isBlank()) continue;
                int space = line.indexOf(' ');
                if (space <= 0) throw new GptFastException("tiktoken file " + file + " line " + lineNo + ": expected 'base64 rank'");
                int rank;
                byte[] token;
                try {
                    token = b64.decode(line.substring(0, space));
                    rank = Integer.parseInt(line.substring(space + 1).trim());
                } catch (IllegalArgumentException e) {
                    throw new GptFastException("tiktoken file " + file + " line " + lineNo + ": " + e.getMessage());
                }
                if (rank != ranks.size()) {
                    throw new GptFastException("tiktoken file " + file + " line " + lineNo + ": rank " + rank
                            + " out of order (expected " + ranks.size() + ")");
                }
                ranks.put(token, rank);
            }
        } catch (IOException | java.io.UncheckedIOException e) {
            throw new GptFastException("cannot read tiktoken file " + file + ": " + e.getMessage(), e);
        }
        if (ranks.size() < 256) throw new GptFastException("tiktoken file " + file + " has only " + ranks.size() + " ranks");
        int n = ranks.size();
        Map<String, Integer> specials = new LinkedHashMap<>();
        for (int i = 0; i < LLAMA3_SPECIAL_COUNT; i++) {
            String name = i < LLAMA3_NAMED_SPECIALS.size() ? LLAMA3_NAMED_SPECIALS.get(i)
                    : "<|reserved_special_token_" + (i - LLAMA3_NAMED_SPECIALS.size() + 2) + "|>";
            specials.put(name, n + i);
        }
        Pattern pattern = Pattern.compile(LLAMA3_PATTERN, Pattern.UNICODE_CHARACTER_CLASS);
        GptBytePairEncodingParams params = new GptBytePairEncodingParams("llama3:" + file.toAbsolutePath(), pattern,
                ranks, specials);
        Encoding encoding = Encodings.newLazyEncodingRegistry().registerGptBytePairEncoding(params)
                .getEncoding(params.getName()).orElseThrow();
        return new TiktokenTokenizer(encoding, n, specials);
    }

    @Override
    public int[] encode(String text) {
        return encoding.encodeOrdinary(text).toArray();
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
        IntArrayList list = new IntArrayList(to - from);
        for (int i = from; i < to; i++) {
            Tokenizer.checkId(ids[i], vocabSize());
            list.add(ids[i]);
        }
        return new String(encoding.decodeBytes(list), StandardCharsets.UTF_8);
    }

    @Override
    public String piece(int id) {
        Tokenizer.checkId(id, vocabSize());
        if (id >= ranks) return specialById[id - ranks];
        return decode(new int[] {id});
    }


    @Override public int vocabSize() { return ranks + specials.size(); }
    @Override public int bosId() { return bosId; }
    @Override public int eosId() { return eosId; }
    @Override public int[] stopTokens() { return stopIds.clone(); }

    /** Names of all special tokens, in id order (for messages and tests). */
    List<String> specialNames() {
        return new ArrayList<>(specials.keySet());
    }

    @Override
    public void close() {}
}

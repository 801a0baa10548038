package ai.gptfast4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Text to token ids and back. Implementations must be safe for concurrent use.
 * {@link Tokenizers#open} picks the implementation by the file's content.
 */
public interface Tokenizer extends AutoCloseable {
    /**
     * Token ids of text, without BOS/EOS. Special-token strings in the text (such as
     * {@code <|eot_id|>}) are encoded as plain text: what a raw completion prompt needs.
     */
    int[] encode(String text);

    /**
     * Token ids of text, without an added BOS; with allowSpecial, the strings of
     * {@link #specialTokens()} in the text become their ids (what chat templates need), the text
     * between them is encoded by {@link #encode(String)}.
     */
    default int[] encode(String text, boolean allowSpecial) {
        if (!allowSpecial || specialTokens().isEmpty()) return encode(text);
        List<int[]> parts = new ArrayList<>();
        int n = 0;
        for (Segment s : splitSpecial(text, specialTokens())) {
            int[] ids = s.special() ? new int[] {specialTokens().get(s.text())} : encode(s.text());
            parts.add(ids);
            n += ids.length;
        }
        int[] out = new int[n];
        int at = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    /** Special-token strings and their ids, as chat templates write them; empty when there are none. */
    default Map<String, Integer> specialTokens() {
        return Map.of();
    }

    /** Text of the ids; incomplete UTF-8 at the end decodes to U+FFFD. */
    String decode(int[] ids);

    /**
     * Text of {@code ids[from..to)}, as {@link #decode(int[])} of that range. Implementations
     * override it to avoid the copy (the streaming detokenizer calls it once or twice a token).
     */
    default String decode(int[] ids, int from, int to) {
        return decode(Arrays.copyOfRange(ids, from, to));
    }

    /** How one token is shown by {@code gptfast tokenize}: its piece (e.g. "▁the", "Ġthe" or "<|eot_id|>"). */
    default String piece(int id) {
        return decode(new int[] {id});
    }

    int vocabSize();

    int bosId();

    int eosId();

    /**
     * Ids that end a generation by default: the EOS, plus the end-of-turn tokens a tokenizer
     * family defines (Llama 3: end_of_text, eom_id, eot_id). Model files may add more
     * (generation_config.json, see {@link ModelFiles}).
     */
    default int[] stopTokens() {
        return new int[] {eosId()};
    }

    @Override
    void close();

    /** Throws unless 0 <= id < vocabSize (for implementations whose library would fail less clearly). */
    static void checkId(int id, int vocabSize) {
        if (id < 0 || id >= vocabSize) {
            throw new GptFastException("token id " + id + " is outside the tokenizer's vocabulary (0.." + (vocabSize - 1) + ")");
        }
    }

    /** A piece of text: ordinary, or a special-token string. */
    record Segment(String text, boolean special) {}

    /** Splits text at the special-token strings (leftmost, then longest match). */
    static List<Segment> splitSpecial(String text, Map<String, Integer> specials) {
        List<Segment> out = new ArrayList<>();
        int start = 0, i = 0;
        java.util.BitSet firstChars = new java.util.BitSet();
        for (String s : specials.keySet()) if (!s.isEmpty()) firstChars.set(s.charAt(0));
        while (i < text.length()) {
            String match = null;
            if (firstChars.get(text.charAt(i))) for (String s : specials.keySet()) {
                if (!s.isEmpty() && text.startsWith(s, i) && (match == null || s.length() > match.length())) match = s;
            }
            if (match == null) {
                i++;
                continue;
            }
            if (i > start) out.add(new Segment(text.substring(start, i), false));
            out.add(new Segment(match, true));
            i += match.length();
            start = i;
        }
        if (start < text.length()) out.add(new Segment(text.substring(start), false));
        return out;
    }
}

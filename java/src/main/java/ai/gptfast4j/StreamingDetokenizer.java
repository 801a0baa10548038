package ai.gptfast4j;

import java.util.Arrays;

/**
 * Turns a growing token sequence into text pieces for streaming. SentencePiece's text for a token
 * depends on its neighbours (a leading "▁" is a space only mid-text) and byte-fallback tokens
 * form a character only together, so each step decodes context + everything generated and emits
 * the new suffix, holding it back while it ends in an incomplete UTF-8 sequence (U+FFFD).
 */
final class StreamingDetokenizer {
    private final Tokenizer tokenizer;
    private final String contextText;  // prompt without BOS: gives the first piece its spacing
    private int[] ids;
    private int size;
    private int emitted;  // chars of the completion already emitted

    StreamingDetokenizer(Tokenizer tokenizer, int[] promptWithoutBos) {
        this.tokenizer = tokenizer;
        this.contextText = tokenizer.decode(promptWithoutBos);
        this.ids = Arrays.copyOf(promptWithoutBos, promptWithoutBos.length + 64);
        this.size = promptWithoutBos.length;
    }

    /** Appends a generated token; cheap (no decoding). */
    void append(int id) {
        if (size == ids.length) ids = Arrays.copyOf(ids, ids.length * 2);
        ids[size++] = id;
    }

    /** Text that became final since the last call (maybe empty). */
    String newText() {
        String completion = completion();
        if (completion.endsWith("\uFFFD") || completion.length() <= emitted) return "";
        String piece = completion.substring(emitted);
        emitted = completion.length();
        return piece;
    }

    /** Text of all generated tokens so far. */
    String completion() {
        String all = tokenizer.decode(Arrays.copyOf(ids, size));
        return all.startsWith(contextText) ? all.substring(contextText.length()) : all;
    }
}

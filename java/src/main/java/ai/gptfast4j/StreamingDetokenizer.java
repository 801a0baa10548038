package ai.gptfast4j;

import java.util.Arrays;
import java.util.List;

/**
 * Turns a growing token sequence into text pieces for streaming. SentencePiece's text for a token
 * depends on its neighbours (a leading "▁" is a space only mid-text) and byte-fallback tokens
 * form a character only together, so each update decodes the prompt + everything generated and
 * the new suffix is released only when final: text ending in an incomplete UTF-8 sequence
 * (U+FFFD) or in a possible beginning of a stop sequence is held back.
 */
final class StreamingDetokenizer {
    private final Tokenizer tokenizer;
    private final String contextText;  // prompt without BOS: gives the first piece its spacing
    private final List<String> stopSequences;
    private int[] ids;
    private int size;
    private String completion = "";
    private int stopAt = -1;  // where a stop sequence starts in the completion, -1 if none
    private int emitted;      // chars of the completion already handed out

    StreamingDetokenizer(Tokenizer tokenizer, int[] promptWithoutBos, List<String> stopSequences) {
        this.tokenizer = tokenizer;
        this.contextText = tokenizer.decode(promptWithoutBos);
        this.stopSequences = stopSequences;
        this.ids = Arrays.copyOf(promptWithoutBos, promptWithoutBos.length + 64);
        this.size = promptWithoutBos.length;
    }

    /** Appends a generated token; cheap (no decoding). */
    void append(int id) {
        if (size == ids.length) ids = Arrays.copyOf(ids, ids.length * 2);
        ids[size++] = id;
    }

    /** Decodes everything appended; returns true if a stop sequence now occurs in the completion. */
    boolean update() {
        String all = tokenizer.decode(Arrays.copyOf(ids, size));
        completion = all.startsWith(contextText) ? all.substring(contextText.length()) : all;
        if (stopAt < 0) {
            for (String stop : stopSequences) {
                int at = completion.indexOf(stop);
                if (at >= 0 && (stopAt < 0 || at < stopAt)) stopAt = at;
            }
        }
        return stopAt >= 0;
    }

    /** Text that became final since the last take (maybe empty). */
    String takeFinalText() {
        int end = completion.length();
        if (completion.endsWith("\uFFFD")) end = completion.length() - 1;
        end = Math.min(end, completion.length() - heldForStopSequence());
        return take(end);
    }

    /** Everything not yet handed out, up to a stop sequence: for the last token. */
    String takeRest() {
        return take(stopAt >= 0 ? stopAt : completion.length());
    }

    /** The completion so far (after update()), cut before a stop sequence. */
    String completion() {
        return stopAt >= 0 ? completion.substring(0, stopAt) : completion;
    }

    private String take(int end) {
        if (end <= emitted) return "";
        String piece = completion.substring(emitted, end);
        emitted = end;
        return piece;
    }

    // Length of the longest completion suffix that could begin a stop sequence.
    private int heldForStopSequence() {
        int held = 0;
        for (String stop : stopSequences) {
            for (int len = Math.min(stop.length() - 1, completion.length()); len > held; len--) {
                if (completion.endsWith(stop.substring(0, len))) {
                    held = len;
                    break;
                }
            }
        }
        return held;
    }
}

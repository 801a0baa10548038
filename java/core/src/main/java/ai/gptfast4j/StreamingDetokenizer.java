package ai.gptfast4j;

import java.util.List;

/**
 * Turns a growing token sequence into text pieces for streaming, with O(1) amortized work per
 * token whatever the prompt and completion lengths.
 *
 * <h2>What text it produces</h2>
 * Let P be the prompt ids without BOS, G the generated ids appended so far (stop tokens are not
 * appended) and C = decode(P ++ G). The <em>completion</em> is C with its longest common prefix
 * with decode(P) removed. That prefix is decode(P) itself unless P ends in an unfinished UTF-8
 * byte sequence (byte-fallback ids) that G completed, so that some of the U+FFFD characters that
 * end decode(P) became other text in C; then it is decode(P) up to the first of them that changed
 * (a decode that changes only trailing U+FFFDs, such as SentencePiece's, keeps the rest).
 *
 * <p>The pieces handed out ({@link #takeFinalText()}, then {@link #takeRest()} for the last
 * token) concatenate to the completion, cut before the first stop sequence. A piece never
 * contains text that may still change or be cut. Held back until more text or the last token
 * comes: the completion's last U+FFFD characters, up to 3 of them (an unfinished UTF-8 sequence,
 * which a later token may complete, is at most 3 bytes; earlier U+FFFDs are final), and a suffix
 * before them that could begin a stop sequence. Stop sequences are searched, after every update,
 * in the completion without those (up to 3) trailing U+FFFDs: generation stops at the first
 * token whose text makes one appear there, and the completion is cut before the earliest match
 * in it.
 *
 * <h2>How</h2>
 * Only a short window of ids is decoded: an <em>anchor</em> (ids whose text was already
 * accounted for and that give the next ids their context: SentencePiece drops the leading space
 * of the first piece only at the start of a text, and byte-fallback ids form a character only
 * together) followed by the <em>pending</em> ids. With A = decode(anchor), decode(anchor ++
 * pending) = A + the text the pending ids add in the full decode, as long as the anchor starts and
 * ends where no UTF-8 sequence is split and A is not empty (or the window starts at the true
 * start of P ++ G). Per update: one decode of the window; all but its last (up to 3) trailing
 * U+FFFDs is final and released; when nothing is held, the pending ids become the next anchor (a second,
 * short decode) or, if they add no text (control tokens such as BOS/EOS), are dropped. So the
 * window is the last token or two in ordinary text.
 *
 * <h2>Bounds</h2>
 * The window grows only while text keeps ending in U+FFFD (runs of invalid or unfinished
 * byte-fallback ids) or, at the very start, while the ids decode to nothing. Once more than
 * {@value #MAX_PENDING} ids are pending, it is cut at a verified split point: a position s, at
 * least 3 ids before the end, where decode(window) == decode(window[..s)) + decode(window[s..))
 * (for UTF-8, no character spans s then, and the text before s can no longer change; of any 4
 * consecutive positions one qualifies). The text up to s is released (U+FFFDs included: they are
 * final) and window[..s) becomes the anchor. Only if no split point verifies for more than
 * {@value #HARD_MAX_PENDING} pending ids (a tokenizer unlike SentencePiece or byte-level BPE)
 * is the window cut without one: everything held is released as it is and the last ids become
 * the anchor; the text may then differ from the full decode around the cut. Ids at the very
 * start that decode to nothing (control ids; a "▁" that SentencePiece drops there) only decide
 * whether the next leading space is kept: once more than {@value #MAX_ANCHOR} of them are held,
 * they are replaced by their last 0 to 2 ids if a probe, encode("a"), decodes the same after
 * both (for SentencePiece, one of them always does); else, past {@value #MAX_START_ANCHOR} of
 * them, only the last {@value #MAX_START_ANCHOR} are kept. Apart from the two cuts without
 * verification the pieces equal the definition above
 * exactly. Decoding the prompt costs O(|P|) once, in the constructor.
 *
 * <p>Not thread-safe: one generation's thread owns it.
 */
public final class StreamingDetokenizer {
    /** Pending ids held back (text ending in U+FFFD) before a split point is looked for. */
    static final int MAX_PENDING = 8;
    /** Pending ids after which the window is cut even without a verified split point. */
    static final int HARD_MAX_PENDING = 64;
    /** Anchors longer than this are shortened to a suffix that starts at a verified split point. */
    static final int MAX_ANCHOR = 8;
    /** Text-less ids kept at the very start of the text. */
    static final int MAX_START_ANCHOR = 64;
    private static final char REPLACEMENT = '\uFFFD';
    /**
     * Trailing U+FFFDs that may still change: an unfinished UTF-8 sequence is at most 3 bytes
     * (SentencePiece decodes each to a U+FFFD; other decoders make one of them).
     */
    private static final int UNFINISHED = 3;

    private final Tokenizer tokenizer;
    private final String[] stops;
    private final int maxStopLength;

    // the window: win[0..a) the anchor, win[a..w) the pending ids
    private int[] win;
    private int w, a;
    private boolean atStart = true;    // the window begins at the true start of P ++ G
    private String anchorText = "";    // decode(win[0..a))
    private String text = "";          // decode(win[0..w)) as of the last step
    private int accounted;             // chars of text already released (or part of the prompt)
    private boolean dirty;             // ids were appended since the last step
    private int[] probe;               // encode("a"), for shortenTextlessStart

    private boolean inPrompt;          // releases belong to the prompt: discarded
    private int promptTail;            // U+FFFDs ending decode(P) that the completion may still start with
    private int promptTailSeen;        // how many of them the released text has started with so far

    private final StringBuilder completion = new StringBuilder();
    private int lastText;              // completion length without its trailing U+FFFDs
    private int searchedTo;            // completion length the stop search has covered
    private int stopAt = -1;           // where the earliest stop sequence starts, -1 if none
    private int emitted;               // chars of the completion handed out
    private boolean finished;          // the held tail was released (last token)

    /**
     * @param promptWithoutBos the prompt's ids after BOS: their text gives the first piece its
     *                         context, and is not part of the completion
     */
    public StreamingDetokenizer(Tokenizer tokenizer, int[] promptWithoutBos, List<String> stopSequences) {
        this.tokenizer = tokenizer;
        this.stops = stopSequences.stream().filter(s -> !s.isEmpty()).toArray(String[]::new);
        int longest = 0;
        for (String s : stops) longest = Math.max(longest, s.length());
        this.maxStopLength = longest;
        this.win = new int[Math.max(32, promptWithoutBos.length + 16)];
        System.arraycopy(promptWithoutBos, 0, win, 0, promptWithoutBos.length);
        this.w = promptWithoutBos.length;
        if (w > 0) {
            inPrompt = true;
            step();  // O(|P|) once; leaves a short anchor
            inPrompt = false;
        }
        promptTail = text.length() - accounted;  // held: only U+FFFDs are ever held
    }

    /** Appends a generated token; cheap (no decoding). */
    public void append(int id) {
        if (finished) throw new IllegalStateException("the detokenizer has finished");
        if (w == win.length) win = java.util.Arrays.copyOf(win, win.length * 2);
        win[w++] = id;
        dirty = true;
    }

    /** Decodes what was appended; returns true if a stop sequence now occurs in the completion. */
    public boolean update() {
        if (dirty && stopAt < 0 && !finished) step();
        return stopAt >= 0;
    }

    /** Text that became final since the last take (maybe empty). */
    public String takeFinalText() {
        int end = stableEnd();
        return take(end - heldForStopSequence(end));
    }

    /** Everything not yet handed out, up to a stop sequence: for the last token. */
    public String takeRest() {
        finish();
        return take(stopAt >= 0 ? stopAt : completion.length());
    }

    /** The whole completion (see the class comment), cut before a stop sequence. Ends the stream. */
    public String completion() {
        finish();
        return stopAt >= 0 ? completion.substring(0, stopAt) : completion.toString();
    }

    // ---- the window ----

    private void step() {
        dirty = false;
        String t = tokenizer.decode(win, 0, w);
        if (t.length() < accounted || !t.regionMatches(0, text, 0, accounted)) {
            // released text changed: never for SentencePiece; hold on and let the caps bound it
            if (w - a > HARD_MAX_PENDING) cutUnverified(t);
            return;
        }
        text = t;
        int trailing = trailingReplacements(t);
        int stable = t.length() - Math.min(UNFINISHED, trailing);  // see UNFINISHED
        if (stable > accounted) release(accounted, stable);
        if (trailing == 0) {
            advance();
        } else if (w - a > MAX_PENDING && !split() && w - a > HARD_MAX_PENDING) {
            cutUnverified(t);
        }
        if (!inPrompt) searchStops();
    }

    /** Nothing is held: the pending ids become the anchor, or are dropped if they add no text. */
    private void advance() {
        if (w == a) return;
        String pending = a == 0 ? text : tokenizer.decode(win, a, w);  // a == 0 only at the start
        if (!pending.isEmpty()) {
            setAnchor(a, w, pending, atStart && a == 0);
        } else if (!anchorText.isEmpty() && text.length() == anchorText.length()) {
            w = a;  // control tokens: no text, no effect on what follows
            text = anchorText;
            accounted = text.length();
        } else {
            setAnchor(0, w, text, atStart);  // e.g. a lone "▁" mid-text: " " in context, "" alone
        }
    }

    /**
     * Looks for a split point s in the held window, at least 3 ids before its end; on success
     * releases the text before s and makes win[a..s) the anchor.
     */
    private boolean split() {
        for (int s = w - 3; s >= Math.max(a + 1, w - 6); s--) {
            String head = tokenizer.decode(win, 0, s);
            if (head.length() < anchorText.length() || head.length() > text.length()) continue;
            String rest = tokenizer.decode(win, s, w);
            // rest alone may lack the leading space it has in context; a split UTF-8 sequence
            // would make head + rest longer than the text instead
            if (head.length() + rest.length() > text.length() || !text.startsWith(head) || !text.endsWith(rest)) {
                continue;
            }
            if (head.length() > accounted) release(accounted, head.length());
            int carried = accounted - head.length();  // chars of rest already accounted
            if (!anchorText.isEmpty() && head.length() == anchorText.length()) {
                // win[a..s) adds no text (control ids): drop it, the anchor still gives the context
                System.arraycopy(win, s, win, a, w - s);
                w -= s - a;
                accounted = anchorText.length() + Math.max(0, carried);
                return true;
            }
            String anchor = a == 0 ? head : tokenizer.decode(win, a, s);
            int from = a;
            boolean start = atStart && a == 0;
            if (anchor.isEmpty()) {  // keep the old anchor too: something must give the context
                anchor = head;
                from = 0;
                start = atStart;
            }
            setAnchor(from, s, anchor, start, text.substring(head.length()), Math.max(0, carried));
            return true;
        }
        return false;
    }

    /** No split point verifies: release everything as it is and restart from the last ids. */
    private void cutUnverified(String t) {
        text = t;
        if (t.length() > accounted) release(accounted, t.length());
        int from = Math.max(a, w - 4);
        String anchor = tokenizer.decode(win, from, w);
        if (anchor.isEmpty()) {
            from = a;
            anchor = tokenizer.decode(win, from, w);
        }
        setAnchor(from, w, anchor, anchor.isEmpty());
    }

    private void setAnchor(int from, int to, String anchor, boolean start) {
        setAnchor(from, to, anchor, start, "", 0);
    }

    /**
     * Makes win[from..to) the anchor (with its text), keeping the pending ids win[to..w) whose
     * text (in context) is pendingText, of which accountedPending chars are accounted; shortens
     * a long anchor to a suffix that starts at a verified split point.
     */
    private void setAnchor(int from, int to, String anchor, boolean start, String pendingText, int accountedPending) {
        System.arraycopy(win, from, win, 0, w - from);
        w -= from;
        a = to - from;
        anchorText = anchor;
        atStart = start;
        text = anchor + pendingText;
        accounted = anchor.length() + accountedPending;
        if (a > MAX_ANCHOR && !anchor.isEmpty()) shortenAnchor();
        if (a > MAX_ANCHOR && anchor.isEmpty() && start) shortenTextlessStart();
    }

    // The text starts with ids that decode to nothing (control ids, a "▁" SentencePiece drops):
    // what they still decide is the leading space of what follows. Their last k ids (k = 0..2)
    // replace them if a probe, encode("a"), decodes the same after both. Else, past
    // MAX_START_ANCHOR ids, only the last MAX_START_ANCHOR are kept (documented cut).
    private void shortenTextlessStart() {
        if (probe == null) probe = tokenizer.encode("a");
        String expected = decodeWithProbe(0, a);
        int keep = -1;
        for (int k = 0; k <= 2 && keep < 0; k++) {
            if (decodeWithProbe(a - k, a).equals(expected)) keep = k;
        }
        if (keep < 0 && a > MAX_START_ANCHOR) keep = MAX_START_ANCHOR;
        if (keep < 0) return;
        int from = a - keep;
        System.arraycopy(win, from, win, 0, w - from);
        w -= from;
        a = keep;
    }

    private String decodeWithProbe(int from, int to) {
        int[] ids = java.util.Arrays.copyOfRange(win, from, to + probe.length);
        System.arraycopy(probe, 0, ids, to - from, probe.length);
        return tokenizer.decode(ids);
    }

    // A suffix win[s..a) of the anchor is an anchor too if s is a split point: decode(anchor)
    // starts with decode(win[..s)), ends with decode(win[s..a)) and is at least as long as both
    // (the suffix alone may lose a leading space; a split UTF-8 sequence would make them longer).
    private void shortenAnchor() {
        for (int s = a - 1; s >= Math.max(1, a - MAX_ANCHOR); s--) {
            String tail = tokenizer.decode(win, s, a);
            if (tail.isEmpty()) continue;
            String head = tokenizer.decode(win, 0, s);
            if (head.length() + tail.length() <= anchorText.length() && anchorText.startsWith(head)
                    && anchorText.endsWith(tail)) {
                System.arraycopy(win, s, win, 0, w - s);
                w -= s;
                a -= s;
                text = tail + text.substring(anchorText.length());
                accounted += tail.length() - anchorText.length();
                anchorText = tail;
                atStart = false;
                return;
            }
        }
    }

    private static int trailingReplacements(String t) {
        int n = 0;
        while (n < t.length() && t.charAt(t.length() - 1 - n) == REPLACEMENT) n++;
        return n;
    }

    // ---- the completion ----

    /** text[from..to) is final: it goes to the prompt (discarded) or the completion. */
    private void release(int from, int to) {
        accounted = to;
        if (inPrompt) return;
        int i = from;
        for (; i < to && promptTail > 0; i++) {  // the U+FFFDs ending decode(P) are not ours
            if (text.charAt(i) != REPLACEMENT || ++promptTailSeen == promptTail) {
                if (text.charAt(i) == REPLACEMENT) i++;
                promptTail = 0;  // the common prefix with decode(P) ends here
                break;
            }
        }
        completion.append(text, i, to);
        for (int k = completion.length(); k > lastText; k--) {
            if (completion.charAt(k - 1) != REPLACEMENT) {
                lastText = k;
                break;
            }
        }
    }

    /**
     * Length of the completion's part that can no longer change: the completion C_t of the
     * class comment less its last min(3, trailing U+FFFDs) chars. C_t is the released completion
     * plus the U+FFFDs the window still holds (those not matched against decode(P)'s).
     */
    private int stableEnd() {
        if (finished) return completion.length();
        int held = text.length() - accounted;
        if (promptTail > 0) held = Math.max(0, held - (promptTail - promptTailSeen));
        int trailing = completion.length() - lastText + held;
        return completion.length() - Math.max(0, Math.min(UNFINISHED, trailing) - held);
    }

    /** Last token: releases the held U+FFFDs (no later token can change them now). */
    private void finish() {
        if (finished) return;
        if (dirty && stopAt < 0) step();
        finished = true;
        if (stopAt >= 0) return;
        if (text.length() > accounted) release(accounted, text.length());  // not searched for stops
        searchedTo = completion.length();
    }

    // Searches the part of the completion that can no longer change; only matches ending in the
    // newly searchable text are possible: start at most (longest stop - 1) back.
    private void searchStops() {
        int end = stableEnd();
        if (stops.length == 0 || stopAt >= 0 || finished || end <= searchedTo) return;
        for (String stop : stops) {
            int at = completion.indexOf(stop, Math.max(0, searchedTo - stop.length() + 1));
            if (at >= 0 && at + stop.length() <= end && (stopAt < 0 || at < stopAt)) stopAt = at;
        }
        searchedTo = end;
    }

    private String take(int end) {
        if (end <= emitted) return "";
        String piece = completion.substring(emitted, end);
        emitted = end;
        return piece;
    }

    // Length of the longest suffix of completion[0..end) that could begin a stop sequence.
    private int heldForStopSequence(int end) {
        int held = 0;
        for (String stop : stops) {
            for (int len = Math.min(stop.length() - 1, end); len > held; len--) {
                if (startsAt(end - len, stop, len)) {
                    held = len;
                    break;
                }
            }
        }
        return held;
    }

    private boolean startsAt(int at, String s, int len) {
        for (int k = 0; k < len; k++) {
            if (completion.charAt(at + k) != s.charAt(k)) return false;
        }
        return true;
    }
}

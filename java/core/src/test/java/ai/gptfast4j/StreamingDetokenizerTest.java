package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The streamed pieces equal the full-decode definition of {@link StreamingDetokenizer}'s class
 * comment (restated in {@link #fullCompletion}) on every reference, on 10,000 random token
 * streams rich in byte-fallback and control ids, with and without stop sequences; and the work
 * per token is bounded (ids passed to decode, counted: deterministic, unlike timing).
 */
class StreamingDetokenizerTest {
    private static final char FFFD = '\uFFFD';
    private static final int BYTE0 = 3;  // <0x00> is id 3 in both tokenizers (<0xFF> is 258)

    private static Tokenizer stories, llama2;

    @BeforeAll
    static void load() {
        stories = new SentencePieceTokenizer(SharedData.storiesTokenizer());
        llama2 = new SentencePieceTokenizer(SharedData.llama2Tokenizer());
    }

    @AfterAll
    static void close() {
        stories.close();
        llama2.close();
    }

    // ---- the definition, computed the slow way ----

    /** decode(P ++ G) without its longest common prefix with decode(P). */
    static String fullCompletion(Tokenizer t, int[] prompt, int[] generated) {
        String all = t.decode(concat(prompt, generated));
        String context = t.decode(prompt);
        int common = 0;
        while (common < Math.min(all.length(), context.length()) && all.charAt(common) == context.charAt(common)) {
            common++;
        }
        // SentencePiece changes only U+FFFDs that end decode(P)
        assertEquals(stripTrailingFffd(context), stripTrailingFffd(context.substring(0, common)), "common prefix");
        return all.substring(common);
    }

    static String stripTrailingFffd(String s) {
        int end = s.length();
        while (end > 0 && s.charAt(end - 1) == FFFD) end--;
        return s.substring(0, end);
    }

    /** What GenerationRun does with the detokenizer, token by token. */
    record Streamed(String pieces, String completion, int tokensUsed, boolean stopped) {}

    static Streamed stream(Tokenizer t, int[] prompt, int[] generated, List<String> stops) {
        StreamingDetokenizer d = new StreamingDetokenizer(t, prompt, stops);
        StringBuilder pieces = new StringBuilder();
        for (int i = 0; i < generated.length; i++) {
            d.append(generated[i]);
            boolean stop = d.update();
            boolean last = stop || i == generated.length - 1;
            pieces.append(last ? d.takeRest() : d.takeFinalText());
            if (stop) return new Streamed(pieces.toString(), d.completion(), i + 1, true);
        }
        if (generated.length == 0) pieces.append(d.takeRest());
        return new Streamed(pieces.toString(), d.completion(), generated.length, false);
    }

    static int[] concat(int[] x, int[] y) {
        int[] r = Arrays.copyOf(x, x.length + y.length);
        System.arraycopy(y, 0, r, x.length, y.length);
        return r;
    }

    // ---- references ----

    @Test
    void everyReferenceStreamsItsText() {
        List<SharedData.GreedyCase> cases = SharedData.greedyCases();
        assertFalse(cases.isEmpty());
        for (SharedData.GreedyCase c : cases) {
            int[] prompt = Arrays.copyOfRange(c.promptTokens(), 1, c.promptTokens().length);
            int[] generated = c.generatedTokens();
            if (c.stoppedOnBos()) generated = Arrays.copyOf(generated, generated.length - 1);  // the stop token
            String expected = fullCompletion(stories, prompt, generated);
            assertEquals(c.text(), c.prompt() + expected, "reference text = prompt + full-decode completion");
            Streamed s = stream(stories, prompt, generated, List.of());
            assertEquals(expected, s.pieces(), "streamed pieces of '" + c.prompt() + "'");
            assertEquals(expected, s.completion());
            // the whole reference as one batch (no listener: one update at the end)
            StreamingDetokenizer d = new StreamingDetokenizer(stories, prompt, List.of());
            for (int id : generated) d.append(id);
            d.update();
            assertEquals(expected, d.completion());
        }
    }

    @Test
    void referencesStopAtStopSequencesLikeAFullTextSearch() {
        for (SharedData.GreedyCase c : SharedData.greedyCases()) {
            int[] prompt = Arrays.copyOfRange(c.promptTokens(), 1, c.promptTokens().length);
            int[] generated = c.generatedTokens();
            for (List<String> stops : List.of(List.of("Lily"), List.of(". ", "park"), List.of("zzz", "\n"),
                    List.of("She loved", "loved to play"))) {
                checkStops(stories, prompt, generated, stops, c.prompt());
            }
        }
    }

    // ---- random streams ----

    @Test
    void tenThousandRandomStreamsMatchTheFullDecode() {
        Random random = new Random(20240611);
        int withStops = 0, stopped = 0, tokens = 0;
        for (int n = 0; n < 10_000; n++) {
            Tokenizer t = n % 2 == 0 ? stories : llama2;
            Gen g = new Gen(t, random);
            int[] prompt = g.prompt();
            int[] generated = g.stream(random.nextInt(8) == 0 ? random.nextInt(301) : random.nextInt(120));
            tokens += generated.length;
            String label = "stream " + n + " P=" + Arrays.toString(prompt) + " G=" + Arrays.toString(generated);
            if (n % 4 == 3) {
                withStops++;
                List<String> stops = g.stops(fullCompletion(t, prompt, generated));
                if (checkStops(t, prompt, generated, stops, label + " stops=" + stops)) stopped++;
            } else {
                String expected = fullCompletion(t, prompt, generated);
                Streamed s = stream(t, prompt, generated, List.of());
                assertEquals(expected, s.pieces(), label);
                assertEquals(expected, s.completion(), label);
            }
        }
        assertTrue(tokens > 500_000, "tokens streamed: " + tokens);
        assertTrue(stopped > withStops / 3, stopped + " of " + withStops + " streams with stop sequences stopped");
    }

    /**
     * Streams with stop sequences: generation must stop at the first token t whose completion
     * (without its last, up to 3, trailing U+FFFDs) contains a stop sequence, cut before the
     * earliest match there.
     * Returns whether it stopped.
     */
    static boolean checkStops(Tokenizer t, int[] prompt, int[] generated, List<String> stops, String label) {
        // first t whose stable completion contains a stop: the stable text only grows, so bisect
        int lo = 1, hi = generated.length + 1;  // hi = "never"
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (firstStop(stableCompletion(t, prompt, generated, mid), stops) >= 0) hi = mid;
            else lo = mid + 1;
        }
        Streamed s = stream(t, prompt, generated, stops);
        if (lo > generated.length) {
            String expected = fullCompletion(t, prompt, generated);
            assertFalse(s.stopped(), label);
            assertEquals(expected, s.pieces(), label);
            assertEquals(expected, s.completion(), label);
            return false;
        }
        String atStop = stableCompletion(t, prompt, generated, lo);
        String expected = atStop.substring(0, firstStop(atStop, stops));
        assertTrue(s.stopped(), label);
        assertEquals(lo, s.tokensUsed(), "stopping token: " + label);
        assertEquals(expected, s.pieces(), label);
        assertEquals(expected, s.completion(), label);
        return true;
    }

    /** The completion after count tokens without its last (up to 3) trailing U+FFFDs. */
    static String stableCompletion(Tokenizer t, int[] prompt, int[] generated, int count) {
        String c = fullCompletion(t, prompt, Arrays.copyOf(generated, count));
        int trailing = c.length() - stripTrailingFffd(c).length();
        return c.substring(0, c.length() - Math.min(3, trailing));
    }

    static int firstStop(String text, List<String> stops) {
        int first = -1;
        for (String stop : stops) {
            int at = text.indexOf(stop);
            if (at >= 0 && (first < 0 || at < first)) first = at;
        }
        return first;
    }

    /** Random ids rich in byte-fallback sequences (valid, cut short, invalid), "▁" pieces and control ids. */
    static final class Gen {
        private final Tokenizer t;
        private final Random r;
        private final int vocab;
        private final int[] spaceOnly;  // pieces that decode to "" alone: "▁" (and "▁▁"... mid-text)
        private final int[] words;      // ids of real text with a leading "▁"

        Gen(Tokenizer t, Random r) {
            this.t = t;
            this.r = r;
            this.vocab = t.vocabSize();
            this.spaceOnly = t == stories ? STORIES_SPACES : LLAMA2_SPACES;
            this.words = t.encode(" Once upon a time Lily saw über café 😀 中文 the end.");
        }

        int[] prompt() {
            int kind = r.nextInt(6);
            if (kind == 0) return new int[0];
            List<Integer> ids = new ArrayList<>();
            int n = 1 + r.nextInt(kind == 1 ? 40 : 8);
            while (ids.size() < n) segment(ids);
            if (kind == 2) {  // ends inside a UTF-8 sequence (or in an invalid byte)
                byte[] utf8 = randomChar().getBytes(StandardCharsets.UTF_8);
                for (int i = 0; i < Math.max(1, r.nextInt(utf8.length)); i++) ids.add(BYTE0 + (utf8[i] & 0xff));
            } else if (kind == 3) {
                ids.add(BYTE0 + 0x80 + r.nextInt(0x80));
            }
            return ids.stream().mapToInt(Integer::intValue).toArray();
        }

        int[] stream(int length) {
            List<Integer> ids = new ArrayList<>();
            while (ids.size() < length) segment(ids);
            return ids.subList(0, length).stream().mapToInt(Integer::intValue).toArray();
        }

        private void segment(List<Integer> ids) {
            int kind = r.nextInt(100);
            if (kind < 22) {  // any id
                ids.add(r.nextInt(vocab));
            } else if (kind < 34) {  // a word-ish id: many start with ▁
                ids.add(words[r.nextInt(words.length)]);
            } else if (kind < 54) {  // a valid multi-byte character as byte-fallback ids
                for (byte b : randomChar().getBytes(StandardCharsets.UTF_8)) ids.add(BYTE0 + (b & 0xff));
            } else if (kind < 62) {  // cut short
                byte[] utf8 = randomChar().getBytes(StandardCharsets.UTF_8);
                int keep = 1 + r.nextInt(Math.max(1, utf8.length - 1));
                for (int i = 0; i < keep; i++) ids.add(BYTE0 + (utf8[i] & 0xff));
            } else if (kind < 72) {  // random bytes: mostly invalid
                for (int i = 0, n = 1 + r.nextInt(6); i < n; i++) ids.add(BYTE0 + r.nextInt(256));
            } else if (kind < 75) {  // EF BF BD is a valid U+FFFD; overlong, surrogate, too large
                int[][] odd = {{0xEF, 0xBF, 0xBD}, {0xC0, 0x80}, {0xED, 0xA0, 0x80}, {0xF4, 0x90, 0x80, 0x80},
                        {0xE0, 0x80, 0xAF}, {0xEF, 0xBF}};
                for (int b : odd[r.nextInt(odd.length)]) ids.add(BYTE0 + b);
            } else if (kind < 83) {  // BOS, EOS, UNK: control ids appended as text
                ids.add(r.nextInt(3));
            } else if (kind < 90) {  // "▁" alone
                ids.add(spaceOnly[r.nextInt(spaceOnly.length)]);
            } else if (kind < 94) {  // a run of control ids or of continuation bytes
                int id = r.nextBoolean() ? r.nextInt(3) : BYTE0 + 0x80 + r.nextInt(0x40);
                for (int i = 0, n = 4 + r.nextInt(20); i < n; i++) ids.add(id);
            } else {  // real text, tokenized
                for (int id : t.encode(randomText())) ids.add(id);
            }
        }

        private String randomChar() {
            return switch (r.nextInt(4)) {
                case 0 -> new String(Character.toChars(0x80 + r.nextInt(0x780)));           // 2 bytes
                case 1 -> new String(Character.toChars(0x800 + r.nextInt(0xD000 - 0x800))); // 3 bytes
                case 2 -> new String(Character.toChars(0x1F300 + r.nextInt(0x300)));       // 4 bytes, emoji
                default -> new String(Character.toChars(0x10000 + r.nextInt(0x100000)));   // 4 bytes, any plane
            };
        }

        private String randomText() {
            String[] parts = {" ", "a", "Lily", " the", "é", "ü", "中", "😀", "\n", ".", "  ", "€", "ß", " x"};
            StringBuilder sb = new StringBuilder();
            for (int i = 0, n = 1 + r.nextInt(6); i < n; i++) sb.append(parts[r.nextInt(parts.length)]);
            return sb.toString();
        }

        /** Stop sequences: substrings of the text (so some match), sometimes overlapping or absent. */
        List<String> stops(String text) {
            List<String> stops = new ArrayList<>();
            for (int i = 0, n = 1 + r.nextInt(3); i < n; i++) {
                if (text.length() < 2 || r.nextInt(5) == 0) {
                    stops.add(r.nextBoolean() ? "\uFFFD" : " the");
                } else {
                    int from = r.nextInt(text.length() - 1);
                    int len = 1 + r.nextInt(Math.min(6, text.length() - from));
                    stops.add(text.substring(from, from + len));
                }
            }
            return stops;
        }
    }

    private static final int[] STORIES_SPACES = spaceOnlyIds(SharedData.storiesTokenizer());
    private static final int[] LLAMA2_SPACES = spaceOnlyIds(SharedData.llama2Tokenizer());

    private static int[] spaceOnlyIds(Path model) {
        try (Tokenizer t = new SentencePieceTokenizer(model)) {
            int[] ids = IntStream.range(3 + 256, t.vocabSize()).filter(id -> t.decode(new int[] {id}).isEmpty())
                    .toArray();
            assertTrue(ids.length > 0, "a \"▁\" piece in " + model);
            return ids;
        }
    }

    // ---- bounded work ----

    /** Counts the ids passed to decode. */
    static final class CountingTokenizer implements Tokenizer {
        final Tokenizer inner;
        long ids, calls;

        CountingTokenizer(Tokenizer inner) {
            this.inner = inner;
        }

        @Override public int[] encode(String text) { return inner.encode(text); }
        @Override public String decode(int[] ids) { return decode(ids, 0, ids.length); }

        @Override
        public String decode(int[] ids, int from, int to) {
            this.ids += to - from;
            calls++;
            return inner.decode(ids, from, to);
        }

        @Override public int vocabSize() { return inner.vocabSize(); }
        @Override public int bosId() { return inner.bosId(); }
        @Override public int eosId() { return inner.eosId(); }
        @Override public void close() {}
    }

    @Test
    void workPerTokenIsBoundedWhateverTheStreamAndPrompt() {
        int n = 2_000;
        int[] story = repeat(llama2.encode(SharedData.greedyCases().get(0).text() + " 中文 😀 café\n"), n);
        int[] bytes4 = repeat(bytesOf("😀é中"), n);                          // valid byte-fallback chars
        int[] invalid = new int[n];
        Arrays.fill(invalid, BYTE0 + 0x80);                                // continuation bytes: all U+FFFD
        int[] randomBytes = new Random(7).ints(n, BYTE0, BYTE0 + 256).toArray();
        int[] eos = new int[n];
        Arrays.fill(eos, 2);                                               // control ids, no text
        int[] spaces = new int[n];
        Arrays.fill(spaces, LLAMA2_SPACES[0]);                             // "▁": text only in context
        int[] cutShort = repeat(new int[] {BYTE0 + 0xE2, BYTE0 + 0x82, BYTE0 + 0xF0, BYTE0 + 0x9F}, n);
        int[][] streams = {story, bytes4, invalid, randomBytes, eos, spaces, cutShort};
        String[] names = {"story", "4-byte chars", "invalid bytes", "random bytes", "EOS", "▁", "cut short"};
        int[][] prompts = {new int[0], Arrays.copyOf(story, 5), story, concat(story, new int[] {BYTE0 + 0xE2})};
        for (int p = 0; p < prompts.length; p++) {
            for (int s = 0; s < streams.length; s++) {
                CountingTokenizer counting = new CountingTokenizer(llama2);
                StreamingDetokenizer d = new StreamingDetokenizer(counting, prompts[p],
                        List.of("The End", "zzz"));
                long promptIds = counting.ids;
                assertTrue(promptIds <= 6L * (prompts[p].length + 16), "prompt decode: " + promptIds);
                StringBuilder pieces = new StringBuilder();
                for (int id : streams[s]) {
                    d.append(id);
                    assertFalse(d.update());
                    pieces.append(d.takeFinalText());
                }
                pieces.append(d.takeRest());
                long perToken = (counting.ids - promptIds) / n;
                String label = names[s] + " after a prompt of " + prompts[p].length + ": " + (counting.ids - promptIds)
                        + " ids decoded in " + counting.calls + " calls for " + n + " tokens";
                // the old detokenizer decoded prompt + completion per token: about n * n / 2 ids
                assertTrue(counting.ids - promptIds <= 40L * n, label);
                assertTrue(perToken <= 40, label);
                assertEquals(fullCompletion(llama2, prompts[p], streams[s]), pieces.toString(), label);
            }
        }
    }

    @Test
    void aQuadraticDetokenizerWouldFailTheBound() {
        // the counting check can fail: a whole-sequence decode per token exceeds it
        CountingTokenizer counting = new CountingTokenizer(llama2);
        int[] ids = repeat(llama2.encode("Once upon a time"), 2_000);
        for (int i = 1; i <= ids.length; i++) counting.decode(ids, 0, i);
        assertTrue(counting.ids > 40L * ids.length);
    }

    private static int[] repeat(int[] unit, int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) r[i] = unit[i % unit.length];
        return r;
    }

    private static int[] bytesOf(String s) {
        byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[utf8.length];
        for (int i = 0; i < utf8.length; i++) ids[i] = BYTE0 + (utf8[i] & 0xff);
        return ids;
    }

    // ---- holdback ----

    @Test
    void holdsBackUnfinishedCharactersAndPossibleStopSequences() {
        // "€" = E2 82 AC as byte ids, after "▁Hello"
        int[] hello = llama2.encode("Hello");
        StreamingDetokenizer d = new StreamingDetokenizer(llama2, new int[0], List.of("lo w", "€!"));
        d.append(hello[0]);
        d.update();
        assertEquals("Hel", d.takeFinalText(), "'lo' could begin 'lo w'");
        for (int b : new int[] {0xE2, 0x82}) {
            d.append(BYTE0 + b);
            assertFalse(d.update());
            assertEquals("", d.takeFinalText(), "unfinished: held; 'lo' still could begin 'lo w'");
        }
        d.append(BYTE0 + 0xAC);
        assertFalse(d.update());
        assertEquals("lo", d.takeFinalText(), "'€' could begin '€!'");
        d.append(BYTE0 + '!');
        assertTrue(d.update());
        assertEquals("", d.takeRest());
        assertEquals("Hello", d.completion());
    }

    @Test
    void invalidBytesStreamOutExceptTheLastThree() {
        // a model stuck on an invalid byte must still stream: only 3 U+FFFDs can still change
        StreamingDetokenizer d = new StreamingDetokenizer(llama2, llama2.encode("Hi"), List.of());
        StringBuilder pieces = new StringBuilder();
        for (int i = 0; i < 10; i++) {
            d.append(BYTE0 + 0x80);
            assertFalse(d.update());
            pieces.append(d.takeFinalText());
        }
        assertEquals("\uFFFD".repeat(7), pieces.toString());
        assertEquals("\uFFFD".repeat(3), d.takeRest());
    }

    @Test
    void promptEndingInAnUnfinishedCharacter() {
        int[] prompt = concat(llama2.encode("price"), new int[] {BYTE0 + 0xE2, BYTE0 + 0x82});
        assertEquals("price\uFFFD\uFFFD", llama2.decode(prompt));
        // completed: decode(P) is no prefix of the text; the character is the completion's
        assertEquals("€ only", stream(llama2, prompt, concat(new int[] {BYTE0 + 0xAC}, llama2.encode("only")),
                List.of()).pieces());
        // not completed: decode(P) is a prefix and is removed
        assertEquals("x", stream(llama2, prompt, new int[] {BYTE0 + 'x'}, List.of()).pieces());
        assertEquals("\uFFFDx", stream(llama2, prompt, new int[] {BYTE0 + 0xC3, BYTE0 + 'x'}, List.of()).pieces());
        // E2 82 82 is "₂": both U+FFFDs became one character
        assertEquals("₂x", stream(llama2, prompt, new int[] {BYTE0 + 0x82, BYTE0 + 'x'}, List.of()).pieces());
    }
}

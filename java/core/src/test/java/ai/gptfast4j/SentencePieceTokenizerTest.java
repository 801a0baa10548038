package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class SentencePieceTokenizerTest {

    @Test
    void storiesTokenizerMatchesReferenceIds() {
        try (Tokenizer t = new SentencePieceTokenizer(SharedData.storiesTokenizer())) {
            assertEquals(512, t.vocabSize());
            assertEquals(1, t.bosId());
            assertEquals(2, t.eosId());
            // ids from ../shared/reference/stories260K-greedy.jsonl (BOS excluded)
            for (SharedData.GreedyCase c : SharedData.greedyCases()) {
                int[] expected = Arrays.copyOfRange(c.promptTokens(), 1, c.promptTokens().length);
                assertArrayEquals(expected, t.encode(c.prompt()), c.prompt());
            }
        }
    }

    @Test
    void llama2TokenizerMatchesKnownIds() {
        try (Tokenizer t = new SentencePieceTokenizer(SharedData.llama2Tokenizer())) {
            assertEquals(32000, t.vocabSize());
            assertArrayEquals(new int[] {15043, 3186}, t.encode("Hello world"));
            assertEquals("Hello world", t.decode(new int[] {15043, 3186}));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"Once upon a time", "Hello, world! 123", "tab\tand\nnewline",
            "emoji 😀🎉 done", "中文字符测试", "日本語とカタカナ", "mixed é ü ß ñ", "🧑‍🚀"})
    void roundTripsIncludingByteFallback(String text) {
        for (Path model : new Path[] {SharedData.storiesTokenizer(), SharedData.llama2Tokenizer()}) {
            try (Tokenizer t = new SentencePieceTokenizer(model)) {
                int[] ids = t.encode(text);
                assertTrue(ids.length > 0);
                assertEquals(text, t.decode(ids), model.getFileName() + ": " + Arrays.toString(ids));
            }
        }
    }

    @Test
    void unknownCharactersFallBackToUtf8ByteTokens() {
        // Byte-fallback pieces <0x00>..<0xFF> are ids 3..258 in both tokenizers: an emoji the
        // vocabulary lacks must come out as its four UTF-8 bytes, each byte + 3.
        byte[] utf8 = "😀".getBytes(StandardCharsets.UTF_8);
        int[] expected = new int[utf8.length];
        for (int i = 0; i < utf8.length; i++) expected[i] = (utf8[i] & 0xff) + 3;
        try (Tokenizer t = new SentencePieceTokenizer(SharedData.storiesTokenizer())) {
            int[] ids = t.encode("😀");
            assertArrayEquals(expected, Arrays.copyOfRange(ids, ids.length - 4, ids.length), Arrays.toString(ids));
            // an incomplete byte sequence decodes to U+FFFD replacement characters, never to garbage
            String partial = t.decode(Arrays.copyOfRange(ids, ids.length - 4, ids.length - 2)).strip();
            assertTrue(!partial.isEmpty() && partial.chars().allMatch(ch -> ch == 0xFFFD), partial);
        }
    }

    @Test
    void clearErrors(@TempDir Path dir) throws Exception {
        GptFastException missing = assertThrows(GptFastException.class,
                () -> new SentencePieceTokenizer(dir.resolve("nope.model")));
        assertTrue(missing.getMessage().contains("not found"), missing.getMessage());
        Path junk = Files.writeString(dir.resolve("junk.model"), "this is not a sentencepiece model");
        GptFastException corrupt = assertThrows(GptFastException.class, () -> new SentencePieceTokenizer(junk));
        assertTrue(corrupt.getMessage().contains("junk.model"), corrupt.getMessage());
        try (Tokenizer t = new SentencePieceTokenizer(SharedData.storiesTokenizer())) {
            GptFastException badId = assertThrows(GptFastException.class, () -> t.decode(new int[] {5, 512}));
            assertTrue(badId.getMessage().contains("512"), badId.getMessage());
        }
    }

    @Test
    void memoizedShortDecodesEqualSentencePiecesOwn() {
        // One and two ids are memoized (the streaming detokenizer's window). Every answer, from
        // the memo or not, must equal SentencePiece's own decode of the same ids: ids that differ
        // only in order or count (a pair vs its parts, (a, b) vs (b, a)) must not share a key, and
        // the memo must survive being cleared when full.
        try (SentencePieceTokenizer t = new SentencePieceTokenizer(SharedData.llama2Tokenizer())) {
            java.util.Random rnd = new java.util.Random(7);
            int[] ids = new int[3];
            for (int i = 0; i < SentencePieceTokenizer.SHORT_DECODES_LIMIT + 5000; i++) {
                // a small pool of ids so that pairs repeat (memo hits), byte-fallback and BOS/EOS included
                for (int k = 0; k < 3; k++) ids[k] = i % 3 == 0 ? rnd.nextInt(300) : rnd.nextInt(32000);
                int from = rnd.nextInt(2), to = from + 1 + rnd.nextInt(2);
                assertEquals(t.decodeNative(ids, from, to), t.decode(ids, from, to), Arrays.toString(ids) + " " + from + ".." + to);
            }
            int[] pair = {15043, 3186};
            assertEquals("Hello world", t.decode(pair));
            assertEquals("world Hello", t.decode(new int[] {3186, 15043}).strip());
            assertEquals("Hello", t.decode(pair, 0, 1));
            t.close();
            GptFastException closed = assertThrows(GptFastException.class, () -> t.decode(pair));
            assertTrue(closed.getMessage().contains("closed"), closed.getMessage());
        }
    }
}

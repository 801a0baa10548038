package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The Llama 3 tokenizer through both of its files (tiktoken ranks via jtokkit, tokenizer.json via
 * Hugging Face tokenizers), against the tiktoken references in ../shared, against each other on
 * random Unicode text, and through the streaming detokenizer.
 */
class Llama3TokenizerTest {
    private static Tokenizer tiktoken, json;

    @BeforeAll
    static void open() {
        tiktoken = Tokenizers.open(SharedData.llama3TiktokenModel());
        json = Tokenizers.open(SharedData.llama3TokenizerJson());
    }

    @AfterAll
    static void close() {
        tiktoken.close();
        json.close();
    }

    @Test
    void chosenByContent() {
        assertInstanceOf(TiktokenTokenizer.class, tiktoken);
        assertInstanceOf(HuggingFaceJsonTokenizer.class, json);
        for (Tokenizer t : List.of(tiktoken, json)) {
            assertEquals(128256, t.vocabSize());
            assertEquals(128000, t.bosId());
            assertEquals(128001, t.eosId());
            assertArrayEquals(new int[] {128001, 128008, 128009}, t.stopTokens());
            assertEquals(256, t.specialTokens().size());
            assertEquals(128009, t.specialTokens().get("<|eot_id|>"));
            assertEquals(128255, t.specialTokens().get("<|reserved_special_token_247|>".replace("247", "245")));
        }
    }

    @Test
    void everyReferenceEncodesExactlyThroughBothFiles() {
        for (JsonNode c : SharedData.jsonl("reference/llama3-tokenizer.jsonl")) {
            String text = c.get("text").asText();
            int[] expected = SharedData.ints(c.get("ids"));
            for (Tokenizer t : List.of(tiktoken, json)) {
                int[] ids = Engine.promptTokens(t, text, true);
                assertArrayEquals(expected, ids, t.getClass().getSimpleName() + ": " + text);
                assertEquals(text, t.decode(Arrays.copyOfRange(ids, 1, ids.length)), "round trip of " + text);
            }
        }
    }

    @Test
    void specialStringsArePlainTextUnlessAllowed() {
        String text = "a<|eot_id|>b <|start_header_id|>";
        for (Tokenizer t : List.of(tiktoken, json)) {
            int[] plain = t.encode(text);
            for (int id : plain) assertTrue(id < 128000, "no special id in a plain encode: " + Arrays.toString(plain));
            assertEquals(text, t.decode(plain));
            int[] special = t.encode(text, true);
            assertTrue(Arrays.stream(special).anyMatch(id -> id == 128009));
            assertEquals(text, t.decode(special));
        }
        assertArrayEquals(tiktoken.encode(text), json.encode(text));
        assertArrayEquals(tiktoken.encode(text, true), json.encode(text, true));
    }

    /** Random strings over scripts, digits, punctuation, whitespace kinds and emoji (seeded). */
    static String randomText(Random r, int maxLength) {
        int[][] ranges = {{0x20, 0x7E}, {0x20, 0x7E}, {0x09, 0x0D}, {0xA0, 0x24F}, {0x370, 0x3FF}, {0x400, 0x4FF},
                {0x5D0, 0x5EA}, {0x600, 0x64A}, {0x900, 0x97F}, {0x3040, 0x30FF}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3},
                {0x1F300, 0x1F64F}, {0x2000, 0x206F}, {0x300, 0x36F}, {0xFF01, 0xFF5E}};
        StringBuilder sb = new StringBuilder();
        int n = r.nextInt(maxLength + 1);
        while (sb.length() < n) {
            int[] range = ranges[r.nextInt(ranges.length)];
            int len = 1 + r.nextInt(6);
            for (int i = 0; i < len; i++) {
                int cp = range[0] + r.nextInt(range[1] - range[0] + 1);
                if (Character.isDefined(cp) && !Character.isSurrogate((char) cp)) sb.appendCodePoint(cp);
            }
            if (r.nextInt(3) == 0) sb.append(r.nextBoolean() ? " " : "\n");
        }
        return sb.toString();
    }

    @Test
    void randomUnicodeRoundTripsAndBothFilesAgree() {
        Random r = new Random(31337);
        for (int n = 0; n < 2000; n++) {
            String text = randomText(r, 60);
            int[] a = tiktoken.encode(text);
            assertEquals(text, tiktoken.decode(a), "tiktoken round trip of " + escape(text));
            int[] b = json.encode(text);
            assertEquals(text, json.decode(b), "tokenizer.json round trip of " + escape(text));
            assertArrayEquals(a, b, "both files encode " + escape(text) + " alike");
        }
    }

    @Test
    void anyValidCodePointsRoundTrip() {
        Random r = new Random(4242);
        for (int n = 0; n < 500; n++) {
            StringBuilder sb = new StringBuilder();
            for (int i = r.nextInt(40); i > 0; i--) {
                int cp = r.nextInt(Character.MAX_CODE_POINT + 1);
                if (cp >= 0xD800 && cp <= 0xDFFF) continue;
                sb.appendCodePoint(cp);
            }
            String text = sb.toString();
            assertEquals(text, tiktoken.decode(tiktoken.encode(text)), escape(text));
            assertEquals(text, json.decode(json.encode(text)), escape(text));
        }
    }

    @Test
    void streamingByteLevelTokensEqualsTheFullDecode() {
        Random r = new Random(777);
        for (int n = 0; n < 1000; n++) {
            Tokenizer t = n % 2 == 0 ? tiktoken : json;
            int[] prompt = t.encode(randomText(r, 20));
            int[] generated;
            if (n % 3 == 0) {  // arbitrary ids: split and invalid UTF-8 sequences galore
                generated = new int[r.nextInt(40)];
                for (int i = 0; i < generated.length; i++) {
                    generated[i] = r.nextInt(4) == 0 ? r.nextInt(256) + 100 : r.nextInt(128000);
                }
            } else {
                generated = t.encode(randomText(r, 80));
            }
            String expected = StreamingDetokenizerTest.fullCompletion(t, prompt, generated);
            StreamingDetokenizerTest.Streamed s = StreamingDetokenizerTest.stream(t, prompt, generated, List.of());
            String label = t.getClass().getSimpleName() + " P=" + Arrays.toString(prompt) + " G=" + Arrays.toString(generated);
            assertEquals(expected, s.pieces(), label);
            assertEquals(expected, s.completion(), label);
            if (n % 3 != 0) assertFalse(s.pieces().contains("\uFFFD"), "no broken characters in valid text: " + label);
        }
    }

    @Test
    void longTextsAreNotTruncated() {  // DJL truncates to 512 tokens by default
        Random r = new Random(99);
        StringBuilder sb = new StringBuilder();
        while (sb.length() < 40_000) sb.append(randomText(r, 60)).append(' ');
        String text = sb.toString();
        int[] a = tiktoken.encode(text), b = json.encode(text);
        assertTrue(a.length > 5000, "long enough: " + a.length);
        assertArrayEquals(a, b);
        assertArrayEquals(tiktoken.encode(text, true), json.encode(text, true));
        assertEquals(text, json.decode(b));
    }

    @Test
    void piecesShowTokens() {
        assertEquals("<|eot_id|>", tiktoken.piece(128009));
        assertEquals("<|eot_id|>", json.piece(128009));
        assertEquals(" world", tiktoken.piece(1917));
        assertEquals("Ġworld", json.piece(1917));
    }

    static String escape(String s) {
        StringBuilder sb = new StringBuilder();
        s.codePoints().forEach(cp -> sb.append(cp < 0x80 && cp >= 0x20 ? String.valueOf((char) cp) : String.format("\\u{%x}", cp)));
        return sb.toString();
    }
}

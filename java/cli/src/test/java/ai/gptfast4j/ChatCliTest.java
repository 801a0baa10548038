package ai.gptfast4j;

import static ai.gptfast4j.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * `chat` on stories260K (512-token context): turns after the first reuse the KV cache, and a
 * conversation that outgrows the context loses its oldest turns instead of failing, every prompt
 * then leaving max_new_tokens of room (read from --stats, not from the code that trims).
 */
class ChatCliTest {
    static final String LINE = "Tell me a long story about a little dog named Max who lived in a big house with a garden.";

    static CliTest.Run chat(int turns, String... extra) {
        InputStream saved = System.in;
        try {
            System.setIn(new ByteArrayInputStream((LINE + "\n").repeat(turns).getBytes(StandardCharsets.UTF_8)));
            List<String> args = new ArrayList<>(List.of("chat", "--checkpoint", SharedData.storiesPth().toString(),
                    "--temperature", "0", "--max-new-tokens", "150", "--stats"));
            args.addAll(List.of(extra));
            return run(args.toArray(String[]::new));
        } finally {
            System.setIn(saved);
        }
    }

    /** (prompt tokens, cached tokens) of each turn's --stats line. */
    static List<int[]> turns(String err) {
        Matcher m = Pattern.compile("\\[prompt (\\d+) tokens, (\\d+) from the cache;").matcher(err);
        List<int[]> out = new ArrayList<>();
        while (m.find()) out.add(new int[] {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2))});
        return out;
    }

    @Test
    void aLongConversationDropsItsOldestTurnsAndTheRestComesFromTheCache() {
        CliTest.Run r = chat(5);
        assertEquals(0, r.exitCode(), r.err());
        List<int[]> turns = turns(r.err());
        assertEquals(5, turns.size(), r.err());
        assertEquals(0, turns.get(0)[1]);
        assertTrue(turns.get(1)[1] > turns.get(0)[0], "the second turn keeps the first prompt and answer: " + r.err());
        for (int[] t : turns) assertTrue(t[0] + 150 <= 512, "a prompt of " + t[0] + " leaves no room: " + r.err());
        assertTrue(r.err().contains("the conversation outgrew the 512-token context: dropped its 1 oldest turn(s)"), r.err());

        CliTest.Run whole = chat(5, "--no-cache-prompt");
        for (int[] t : turns(whole.err())) assertEquals(0, t[1], whole.err());
    }
}

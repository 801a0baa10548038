package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.cli.GptFastCli;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The CLI in-process: exit codes, one-line errors, the --json shape. */
class CliTest {
    record Run(int exitCode, String out, String err) {}

    static Run run(String... args) {
        StringWriter err = new StringWriter();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream savedOut = System.out;
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        try {
            var cl = GptFastCli.commandLine();
            cl.setErr(new PrintWriter(err, true));
            int code = cl.execute(args);
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString());
        } finally {
            System.setOut(savedOut);
        }
    }

    static void assertOneLineError(Run r, int code, String part) {
        assertEquals(code, r.exitCode(), r.err());
        assertEquals(1, r.err().strip().lines().count(), "one line expected: " + r.err());
        assertTrue(r.err().contains(part), r.err());
    }

    @Test
    void jsonOutputMatchesTheReference() throws Exception {
        SharedData.GreedyCase c = SharedData.greedyCases().get(0);
        Run r = run("generate", "--checkpoint", SharedData.storiesPth().toString(), "--prompt", c.prompt(),
                "--temperature", "0", "--max-new-tokens", "30", "--json");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode json = new ObjectMapper().readTree(r.out());
        assertArrayEquals(c.promptTokens(), new ObjectMapper().treeToValue(json.get("prompt_tokens"), int[].class));
        int[] generated = new ObjectMapper().treeToValue(json.get("generated_tokens"), int[].class);
        assertArrayEquals(java.util.Arrays.copyOf(c.generatedTokens(), 30), generated);
        assertTrue(c.text().startsWith(json.get("text").asText()), json.get("text").asText());
        assertTrue(json.get("stats").get("decode_tokens_per_s").asDouble() > 0);
    }

    @Test
    void streamingPrintsTheStory() {
        Run r = run("generate", "--checkpoint", SharedData.storiesPth().toString(), "--prompt", "Once upon a time",
                "--temperature", "0", "--max-new-tokens", "40");
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().startsWith("Once upon a time, there was a little girl named Lily."), r.out());
    }

    @Test
    void badArgumentsExitWithTwo() {
        assertOneLineError(run("generate", "--prompt", "x"), 2, "--checkpoint");
        assertOneLineError(run("generate", "--checkpoint", SharedData.storiesPth().toString()), 2, "--prompt");
        assertOneLineError(run("generate", "--checkpoint", SharedData.storiesPth().toString(), "--prompt", "x",
                "--temperature", "-1"), 2, "temperature");
        assertOneLineError(run("generate", "--checkpoint", SharedData.storiesPth().toString(), "--prompt", "x",
                "--top-k", "abc"), 2, "top-k");
        assertOneLineError(run("generate", "--checkpoint", SharedData.storiesPth().toString(), "--prompt", "x",
                "--dtype", "fp64"), 2, "dtype");
        assertOneLineError(run("generate", "--checkpoint", SharedData.storiesPth().toString(), "--prompt", "x",
                "--max-new-tokens", "0"), 2, "max_new_tokens");
        assertOneLineError(run("frobnicate"), 2, "frobnicate");
    }

    @Test
    void benchMeasuresBatchesOfRandomWeightsAgainstRooflines() {
        Run r = run("bench", "--random", "stories15M", "--tokenizer", SharedData.llama2Tokenizer().toString(),
                "--prompt-tokens", "4", "--new-tokens", "3", "--runs", "1", "--warmup", "0", "--batch-sizes", "1,2");
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("stories15M (random)") && r.out().contains("FLOP roof"), r.out());
        assertEquals(2, r.out().lines().filter(l -> l.matches("stories15M \\(random\\)\\s+1\\s+[12]\\s+3\\s.*%")).count(),
                r.out());
    }

    @Test
    void noArgumentsListsEverySubcommand() {
        Run r = run();
        assertOneLineError(r, 2, "missing command");
        for (String command : GptFastCli.commandLine().getSubcommands().keySet()) {
            assertTrue(r.err().contains(command), command + " missing from: " + r.err());
        }
    }

    /** A checkpoint that does not exist: an argument error must be found before loading would fail (exit 1). */
    @Test
    void argumentErrorsAreFoundBeforeTheModelLoads() {
        String missing = "/nonexistent/model.pth";
        assertOneLineError(run("generate", "--checkpoint", missing, "--prompt", "x", "--device", "tpu"), 2, "tpu");
        assertOneLineError(run("generate", "--checkpoint", missing, "--prompt", "x", "--threads", "999"), 2, "threads");
        assertOneLineError(run("generate", "--checkpoint", missing, "--prompt", "x", "--draft-checkpoint", missing,
                "--repetition-penalty", "1.2"), 2, "--draft-checkpoint");
        assertOneLineError(run("generate", "--checkpoint", missing, "--prompt", "x", "--draft-checkpoint", missing,
                "--frequency-penalty", "0.5"), 2, "--draft-checkpoint");
    }

    @Test
    void aStopTokenOutsideTheVocabularyIsRefused() {
        assertOneLineError(run("generate", "--checkpoint", SharedData.storiesPth().toString(), "--prompt", "x",
                "--stop-token", "99999"), 2, "stop token 99999 is outside the vocabulary [0, 512)");
        assertOneLineError(run("generate", "--checkpoint", SharedData.storiesPth().toString(), "--prompt", "x",
                "--stop-token", "-2"), 2, "stop token -2");
        Run never = run("generate", "--checkpoint", SharedData.storiesPth().toString(), "--prompt", "x",
                "--stop-token", "-1", "--max-new-tokens", "3", "--json");
        assertEquals(0, never.exitCode(), never.err());
    }

    @Test
    void aConfigFileErrorIsOneLine(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path bad = java.nio.file.Files.writeString(dir.resolve("config.json"), "{\"dim\": \n");
        assertOneLineError(run("generate", "--checkpoint", SharedData.storiesPth().toString(), "--config", bad.toString(),
                "--prompt", "x"), 1, "cannot read model config");
    }

    @Test
    void runtimeErrorsExitWithOne() {
        assertOneLineError(run("generate", "--checkpoint", "/nonexistent/model.pth", "--prompt", "x"), 1, "not found");
    }
}

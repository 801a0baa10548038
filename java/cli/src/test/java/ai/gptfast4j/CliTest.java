package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.cli.GptFastCli;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.util.List;
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
    void withoutACheckpointTheEmbeddedModelGeneratesTheReferenceStory() throws Exception {
        // The jar's own copy of stories260K (extracted to the cache), checked against the reference.
        SharedData.GreedyCase c = SharedData.greedyCases().get(0);
        Run r = run("generate", "--prompt", c.prompt(), "--temperature", "0", "--max-new-tokens", "30", "--json");
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.err().contains("using the embedded stories260K model"), r.err());
        int[] generated = new ObjectMapper().treeToValue(new ObjectMapper().readTree(r.out()).get("generated_tokens"),
                int[].class);
        assertArrayEquals(java.util.Arrays.copyOf(c.generatedTokens(), 30), generated);
        assertTrue(EmbeddedModel.checkpoint().startsWith(EmbeddedModel.cacheDir()), "extracted into the cache");
    }

    @Test
    void badArgumentsExitWithTwo() {
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
        assertEquals(2, r.out().lines().filter(l -> l.matches("stories15M \\(random\\)\\s+fp32\\s+1\\s+[12]\\s+3\\s.*%")).count(),
                r.out());
    }

    @Test
    void numSamplesGeneratesEachWithItsOwnSeedAndTimesTheForwardPasses() throws Exception {
        String[] base = {"generate", "--checkpoint", SharedData.storiesPth().toString(), "--prompt", "Once upon a time",
                "--temperature", "1", "--max-new-tokens", "40", "--min-new-tokens", "40", "--json"};
        var mapper = new ObjectMapper();
        Run three = run(concat(base, "--seed", "7", "--num-samples", "3"));
        assertEquals(0, three.exitCode(), three.err());
        String[] lines = three.out().strip().split("\n");
        assertEquals(3, lines.length, three.out());
        for (int i = 0; i < 3; i++) {
            // sample i is what a single run with seed 7 + i gives
            Run single = run(concat(base, "--seed", Integer.toString(7 + i)));
            assertEquals(mapper.readTree(single.out()).get("generated_tokens"), mapper.readTree(lines[i]).get("generated_tokens"),
                    "sample " + i);
            JsonNode stats = mapper.readTree(lines[i]).get("stats");
            // the forward-pass clock runs inside the decode window only (not the prefill)
            double forward = stats.get("decode_forward_ms").asDouble(), decode = stats.get("decode_ms").asDouble();
            assertTrue(forward > 0 && forward <= decode, stats.toString());
        }
        assertNotEquals(mapper.readTree(lines[0]).get("generated_tokens"), mapper.readTree(lines[1]).get("generated_tokens"));
        assertOneLineError(run(concat(base, "--num-samples", "0")), 2, "--num-samples");
    }

    private static String[] concat(String[] a, String... b) {
        return java.util.stream.Stream.concat(java.util.Arrays.stream(a), java.util.Arrays.stream(b)).toArray(String[]::new);
    }

    private static double medianOf3(double[] v) {
        double[] a = v.clone();
        java.util.Arrays.sort(a);
        return a[1];
    }

    @Test
    void benchJsonPrintsOneObjectPerConfigurationWithItsRoofline() throws Exception {
        Run r = run("bench", "--random", "stories15M", "--tokenizer", SharedData.llama2Tokenizer().toString(),
                "--prompt-tokens", "4", "--new-tokens", "3", "--runs", "3", "--warmup", "0", "--quantize", "int4:32",
                "--batch-sizes", "2", "--json");
        assertEquals(0, r.exitCode(), r.err());
        var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
        List<com.fasterxml.jackson.databind.JsonNode> rows = new java.util.ArrayList<>();
        for (String line : r.out().strip().split("\n")) rows.add(mapper.readTree(line));
        assertEquals(2, rows.size(), r.out());  // plain decode, then batch 2
        for (var o : rows) {
            for (String key : List.of("checkpoint", "dtype", "quantize", "threads", "batch_size", "prompt_tokens",
                    "new_tokens", "decode_tokens_per_second", "weight_bytes", "bandwidth_bytes_per_second",
                    "roofline_fraction", "cpu")) {
                assertTrue(o.has(key), key + " missing in " + o);
            }
            assertEquals("int4:32", o.get("quantize").asText());
            // stories15M's Linear layers (dim 288, FFN 768, 6 layers, and the 32000 x 288 output head);
            // int4 g32: half a byte per weight plus a 4-byte (scale, zero) pair per 32.
            long linear = 6L * (3 * 288 * 288 + 288 * 288 + 3 * 768 * 288) + 32000L * 288;
            assertEquals(linear * 0.625, o.get("weight_bytes").asDouble(), linear * 0.01, o.toString());
            // every run is set against the bandwidth probed around it; the row gives the medians
            double[] decode = new double[3], bandwidth = new double[3], fraction = new double[3];
            for (int i = 0; i < 3; i++) {
                decode[i] = o.get("run_decode_tokens_per_second").get(i).asDouble();
                bandwidth[i] = o.get("run_bandwidth_bytes_per_second").get(i).asDouble();
                fraction[i] = decode[i] / (bandwidth[i] / o.get("weight_bytes").asDouble() * o.get("batch_size").asInt());
            }
            assertEquals(3, o.get("run_bandwidth_bytes_per_second").size(), o.toString());
            assertEquals(medianOf3(decode), o.get("decode_tokens_per_second").asDouble(), 0, o.toString());
            assertEquals(medianOf3(bandwidth), o.get("bandwidth_bytes_per_second").asDouble(), 0, o.toString());
            assertEquals(medianOf3(fraction), o.get("roofline_fraction").asDouble(), 1e-9, o.toString());
        }
        assertTrue(rows.get(0).has("prefill_tokens_per_second"));
        assertEquals(2, rows.get(1).get("batch_size").asInt());
    }

    @Test
    void quantizeWritesAFileThatGeneratesLikeQuantizingAtLoad(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path out = dir.resolve("q.pth");
        String config = SharedData.stories().resolve("config.json").toString();
        String[] args = {"quantize", "--checkpoint", SharedData.storiesPth().toString(), "--config", config, "--mode",
                "int4", "--groupsize", "64", "--output", out.toString()};
        Run q = run(args);
        assertEquals(0, q.exitCode(), q.err());
        assertFalse(q.err().contains("quantizing"), "no progress bar when stderr is not a terminal: " + q.err());
        System.setProperty("gptfast.progress", "always");
        try {
            Run drawn = run(args);
            assertEquals(0, drawn.exitCode(), drawn.err());
            assertTrue(drawn.err().contains("quantizing") && drawn.err().contains("26/26 layers"), drawn.err());
            Run quiet = run(java.util.stream.Stream.concat(java.util.Arrays.stream(args), java.util.stream.Stream.of("--quiet"))
                    .toArray(String[]::new));
            assertFalse(quiet.err().contains("quantizing"), quiet.err());
        } finally {
            System.clearProperty("gptfast.progress");
        }
        Run fromFile = run("generate", "--checkpoint", out.toString(), "--config", config, "--tokenizer",
                SharedData.storiesTokenizer().toString(), "--prompt", "Tom had", "--temperature", "0", "--json");
        Run atLoad = run("generate", "--checkpoint", SharedData.storiesPth().toString(), "--quantize", "int4:64",
                "--prompt", "Tom had", "--temperature", "0", "--json");
        assertEquals(0, fromFile.exitCode(), fromFile.err());
        assertEquals(0, atLoad.exitCode(), atLoad.err());
        String ids = "\"generated_tokens\":";
        assertEquals(atLoad.out().substring(atLoad.out().indexOf(ids)).split("]")[0],
                fromFile.out().substring(fromFile.out().indexOf(ids)).split("]")[0]);
        assertOneLineError(run("quantize", "--checkpoint", SharedData.storiesPth().toString(), "--mode", "int4",
                "--groupsize", "48"), 2, "int4:48");
        assertOneLineError(run("quantize", "--checkpoint", SharedData.storiesPth().toString(), "--mode", "int3"), 2,
                "--mode");
        assertOneLineError(run("generate", "--checkpoint", SharedData.storiesPth().toString(), "--prompt", "x",
                "--quantize", "int5"), 2, "int5");
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

package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Weight-only int8/int4: GPT-Fast's own int8 file against its float64 greedy references, files
 * written by {@link Quantization} against quantizing at load, speculative decoding over quantized
 * models, perplexity, and bad input.
 */
class QuantizedModelTest {
    @TempDir static Path dir;

    record Case(String prompt, int[] promptTokens, int[] generatedTokens, String text) {}

    static List<Case> int8Cases() throws IOException {
        List<Case> cases = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(SharedData.root().resolve("reference/stories260K-int8-greedy.jsonl"))) {
            if (line.isBlank()) continue;
            JsonNode n = json.readTree(line);
            cases.add(new Case(n.get("prompt").asText(), json.treeToValue(n.get("prompt_tokens"), int[].class),
                    json.treeToValue(n.get("generated_tokens"), int[].class), n.get("text").asText()));
        }
        return cases;
    }

    static EngineOptions stories(Path checkpoint) {
        return EngineOptions.of(checkpoint).withTokenizer(SharedData.storiesTokenizer())
                .withConfig(SharedData.stories().resolve("config.json"));
    }

    static int[] greedy(Engine engine, String prompt, int n) {
        GenerationParams params = GenerationParams.builder().greedy().maxNewTokens(n).stopTokens(1).build();
        return engine.generate(prompt, params, null).generatedTokens();
    }

    @Test
    void gptFastInt8FileReproducesEveryReferenceCase() throws IOException {
        List<Case> cases = int8Cases();
        assertFalse(cases.isEmpty());
        try (Engine engine = Engine.load(stories(SharedData.stories().resolve("model_int8.pth")))) {
            assertTrue(engine.describe().contains("weights=int8"), engine.describe());
            for (Case c : cases) {
                assertArrayEquals(c.promptTokens(), engine.promptTokens(c.prompt()), c.prompt());
                GenerationParams params = GenerationParams.builder().greedy().maxNewTokens(c.generatedTokens().length)
                        .stopTokens(1).build();
                GenerationResult r = engine.generate(c.prompt(), params, null);
                assertArrayEquals(c.generatedTokens(), r.generatedTokens(), "generated ids of '" + c.prompt() + "'");
                // the reference text is the generated ids decoded on their own
                assertEquals(c.text(), engine.tokenizer().decode(r.generatedTokens()), "decoded generated ids");
            }
        }
    }

    @Test
    void writtenFilesGiveTheSameTokensAsQuantizingAtLoad() {
        for (String mode : List.of("int8", "int4:32", "int4:128")) {
            List<String> progress = new ArrayList<>();
            Path file = Quantization.quantize(SharedData.storiesPth(), SharedData.stories().resolve("config.json"), mode,
                    dir.resolve(Quantization.fileName(mode)), (done, total, layer) -> progress.add(done + "/" + total));
            assertEquals("26/26", progress.get(progress.size() - 1), "5 layers x 5 Linear + output");
            if (!mode.equals("int8")) {  // an int8 file is refused in badInputIsAOneLineError
                Path again = dir.resolve("again-" + mode.replace(':', '-') + ".pth");
                GptFastException e = assertThrows(GptFastException.class, () -> Quantization.quantize(file,
                        SharedData.stories().resolve("config.json"), "int8", again, null));
                assertTrue(e.getMessage().contains("already quantized") && e.getMessage().contains(".scales_and_zeros"),
                        e.getMessage());
                assertFalse(Files.exists(again));
            }
            int[] fromFile, atLoad, dense;
            try (Engine engine = Engine.load(stories(file))) {
                fromFile = greedy(engine, "Once upon a time", 60);
                assertTrue(engine.describe().contains("weights=" + (mode.equals("int8") ? "int8" : mode)), engine.describe());
            }
            try (Engine engine = Engine.load(stories(SharedData.storiesPth()).withQuantize(mode, ""))) {
                atLoad = greedy(engine, "Once upon a time", 60);
            }
            try (Engine engine = Engine.load(stories(SharedData.storiesPth()))) {
                dense = greedy(engine, "Once upon a time", 60);
            }
            assertArrayEquals(atLoad, fromFile, mode);
            // Quantization does change the model (so the equality above is not vacuous) but not by much:
            // the first tokens agree with fp32.
            assertEquals(dense[0], atLoad[0], mode);
            if (mode.equals("int4:128")) assertFalse(Arrays.equals(dense, atLoad), "int4 g128 should perturb a 60-token story");
        }
    }

    /**
     * A Hugging Face directory keeps wq/wk/wv apart, with q/k rows in rotate-half order: the
     * quantizer joins and reorders each layer's as a model does at load, so its file generates what
     * the file quantized from the same model's GPT-Fast checkpoint generates, and what quantizing the
     * directory at load generates (a wrong row order changes the tokens of this random model).
     */
    @Test
    void huggingFaceDirectoryQuantizesAsItsGptFastCheckpoint() throws IOException {
        Path hf = Files.createDirectory(dir.resolve("hf-llama3-tiny"));
        Llama3Tiny.writeHfDirectory(hf, 4096);
        Path pth = SharedData.llama3Tiny().resolve("model.pth");
        GenerationParams params = GenerationParams.builder().greedy().maxNewTokens(24).build();
        for (String mode : List.of("int8", "int4:32")) {
            Path fromHf = Quantization.quantize(hf, null, mode, dir.resolve("hf-" + Quantization.fileName(mode)), null);
            Path fromPth = Quantization.quantize(pth, null, mode, dir.resolve("pth-" + Quantization.fileName(mode)), null);
            int[] hfFile, pthFile, atLoad;
            try (Engine e = Engine.load(EngineOptions.of(fromHf).withConfig(hf.resolve("config.json"))
                    .withTokenizer(SharedData.llama3TokenizerJson()))) {
                hfFile = e.generate("Once upon a time", params, null).generatedTokens();
            }
            try (Engine e = Engine.load(EngineOptions.of(fromPth).withConfig(SharedData.llama3Tiny().resolve("config.json"))
                    .withTokenizer(SharedData.llama3TokenizerJson()))) {
                pthFile = e.generate("Once upon a time", params, null).generatedTokens();
            }
            try (Engine e = Engine.load(EngineOptions.of(hf).withQuantize(mode, ""))) {
                atLoad = e.generate("Once upon a time", params, null).generatedTokens();
            }
            assertEquals(24, hfFile.length, mode);
            assertArrayEquals(pthFile, hfFile, mode);
            assertArrayEquals(atLoad, hfFile, mode);
        }
    }

    @Test
    void quantizedFilesAreSmallerByTheBytesPerWeight() {
        long dense, int8, int4;
        try (Engine e = Engine.load(stories(SharedData.storiesPth()))) { dense = e.weightBytes(); }
        try (Engine e = Engine.load(stories(SharedData.storiesPth()).withQuantize("int8", ""))) { int8 = e.weightBytes(); }
        try (Engine e = Engine.load(stories(SharedData.storiesPth()).withQuantize("int4:32", ""))) { int4 = e.weightBytes(); }
        // fp32: 4 bytes a weight; int8: 1 + a 4-byte scale per row; int4 g32: 0.5 + 4 bytes per 32 columns.
        assertTrue(int8 < dense / 3.5 && int8 > dense / 4.5, dense + " vs int8 " + int8);
        assertTrue(int4 < int8 * 0.7 && int4 > int8 * 0.5, int8 + " vs int4 " + int4);
    }

    @Test
    void speculativeDecodingWithQuantizedTargetAndDraftIsExact() throws IOException {
        Path draft = Drafts.truncated(dir, 3);
        int[] plain;
        EngineOptions target = stories(SharedData.storiesPth()).withQuantize("int8", "");
        try (Engine engine = Engine.load(target)) {
            plain = greedy(engine, "Lily and Ben", 80);
        }
        try (Engine engine = Engine.load(target.withDraft(draft, null, 4).withQuantize("int8", "int4:32"))) {
            GenerationResult r = engine.generate("Lily and Ben",
                    GenerationParams.builder().greedy().maxNewTokens(80).stopTokens(1).build(), null);
            assertArrayEquals(plain, r.generatedTokens());
            assertTrue(r.stats().verifyRounds() > 0);
        }
    }

    @Test
    void perplexityIsLowOnTheModelsOwnGreedyTextAndHighOnShuffledText() {
        // A greedy continuation is, token by token, the model's most likely choice: its perplexity is
        // low. The same tokens in a shuffled order are not. Scoring a token with the wrong position's
        // logits (off by one) would fail the first bound.
        StringBuilder text = new StringBuilder();
        for (SharedData.GreedyCase c : SharedData.greedyCases()) text.append(c.text()).append('\n');
        try (Engine engine = Engine.load(stories(SharedData.storiesPth()));
             Engine int8 = Engine.load(stories(SharedData.storiesPth()).withQuantize("int8", ""))) {
            Perplexity.Result r = Perplexity.of(engine, text.toString(), null);
            assertTrue(r.tokensScored() > 1000, "tokens " + r.tokensScored());
            assertTrue(r.windows() > 1, "more than one window of 511");
            assertTrue(r.perplexity() < 3.0, "greedy text perplexity " + r.perplexity());
            List<String> words = new ArrayList<>(Arrays.asList(text.toString().split(" ")));
            java.util.Collections.shuffle(words, new java.util.Random(1));
            double shuffled = Perplexity.of(engine, String.join(" ", words), null).perplexity();
            assertTrue(shuffled > 3 * r.perplexity(), "shuffled " + shuffled + " vs " + r.perplexity());
            double q = Perplexity.of(int8, text.toString(), null).perplexity();
            assertEquals(r.perplexity(), q, 0.05 * r.perplexity(), "int8 perplexity close to fp32");
            assertNotEquals(r.perplexity(), q, "int8 is a different model");
        }
    }

    @Test
    void badInputIsAOneLineError() throws IOException {
        Path good = SharedData.stories().resolve("model_int8.pth");
        byte[] bytes = Files.readAllBytes(good);
        Path cut = dir.resolve("cut_int8.pth");
        Files.write(cut, Arrays.copyOf(bytes, bytes.length / 2));
        GptFastException e = assertThrows(GptFastException.class, () -> Engine.load(stories(cut)).close());
        assertTrue(e.getMessage().contains("corrupt or truncated"), e.getMessage());
        assertEquals(1, e.getMessage().lines().count());

        e = assertThrows(GptFastException.class, () -> stories(SharedData.storiesPth()).withQuantize("int4:48", ""));
        assertTrue(e.getMessage().contains("int4:48") && e.getMessage().contains("32, 64, 128, 256"), e.getMessage());

        e = assertThrows(GptFastException.class, () -> Engine.load(stories(good).withQuantize("int4:32", "")).close());
        assertTrue(e.getMessage().contains("already quantized (int8"), e.getMessage());

        e = assertThrows(GptFastException.class, () -> Quantization.quantize(good, SharedData.stories().resolve("config.json"),
                "int8", dir.resolve("again.pth"), null));
        assertTrue(e.getMessage().contains("already quantized"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("again.pth")));
    }
}

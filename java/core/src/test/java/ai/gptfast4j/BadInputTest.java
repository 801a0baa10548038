package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every bad input is a GptFastException whose message names the problem; the JVM survives. */
class BadInputTest {
    static Engine engine;

    @BeforeAll
    static void load() {
        engine = Engine.load(EngineOptions.of(SharedData.storiesPth()));
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    private static void assertMessage(String expectedPart, org.junit.jupiter.api.function.Executable call) {
        GptFastException e = assertThrows(GptFastException.class, call);
        assertTrue(e.getMessage().contains(expectedPart), "message '" + e.getMessage() + "' lacks '" + expectedPart + "'");
        assertTrue(!e.getMessage().contains("\n"), "one-line message expected: " + e.getMessage());
    }

    /** A model directory with the shared config and tokenizer and the given checkpoint bytes. */
    private static Path modelDir(Path dir, String checkpointName, byte[] bytes) throws IOException {
        Files.copy(SharedData.stories().resolve("config.json"), dir.resolve("config.json"));
        Files.copy(SharedData.storiesTokenizer(), dir.resolve("tokenizer.model"));
        return Files.write(dir.resolve(checkpointName), bytes);
    }

    /** Every accessor of a closed engine says so in one line (not JavaCPP's null-pointer error). */
    @Test
    void aClosedEngineSaysSo() {
        Engine engine = Engine.load(EngineOptions.of(SharedData.storiesPth()).withThreads(1));
        engine.close();
        for (org.junit.jupiter.api.function.Executable e : new org.junit.jupiter.api.function.Executable[] {
                engine::device, engine::contextLength, engine::weightBytes, engine::tensorParallel, engine::allReduces,
                engine::allReduceNanos, engine::describe, engine::brokenReason}) {
            assertEquals("engine is closed", assertThrows(GptFastException.class, e).getMessage());
        }
    }

    @Test
    void missingCheckpoint(@TempDir Path dir) {
        assertMessage("not found", () -> Engine.load(EngineOptions.of(dir.resolve("model.pth"))));
    }

    @Test
    void corruptCheckpoint(@TempDir Path dir) throws IOException {
        Path junk = modelDir(dir, "model.pth", "definitely not a zip archive".getBytes());
        assertMessage("not a torch.save zip", () -> Engine.load(EngineOptions.of(junk)));
    }

    @Test
    void truncatedPth(@TempDir Path dir) throws IOException {
        byte[] full = Files.readAllBytes(SharedData.storiesPth());
        Path cut = modelDir(dir, "model.pth", Arrays.copyOf(full, full.length / 2));
        assertMessage("model.pth", () -> Engine.load(EngineOptions.of(cut)));
    }

    @Test
    void truncatedLlama2c(@TempDir Path dir) throws IOException {
        byte[] full = Files.readAllBytes(SharedData.storiesBin());
        Path cut = modelDir(dir, "stories260K.bin", Arrays.copyOf(full, full.length - 1000));
        assertMessage("truncated", () -> Engine.load(EngineOptions.of(cut)));
        Path header = modelDir(Files.createDirectory(dir.resolve("h")), "stories260K.bin", Arrays.copyOf(full, 10));
        assertMessage("too short", () -> Engine.load(EngineOptions.of(header)));
    }

    @Test
    void mismatchedConfig(@TempDir Path dir) throws IOException {
        Path config = Files.writeString(dir.resolve("wrong.json"),
                "{\"dim\": 64, \"n_layer\": 5, \"n_head\": 8, \"n_local_heads\": 4, \"intermediate_size\": 256,"
                        + " \"vocab_size\": 512, \"block_size\": 512}");
        assertMessage("feed_forward.w1.weight", () -> Engine.load(EngineOptions.of(SharedData.storiesPth()).withConfig(config)));
        assertMessage("hidden_dim 172", () -> Engine.load(EngineOptions.of(SharedData.storiesBin()).withConfig(config)));
        Path fewer = Files.writeString(dir.resolve("fewer.json"),
                "{\"dim\": 64, \"n_layer\": 4, \"n_head\": 8, \"n_local_heads\": 4, \"intermediate_size\": 172,"
                        + " \"vocab_size\": 512, \"block_size\": 512}");
        assertMessage("more layers", () -> Engine.load(EngineOptions.of(SharedData.storiesPth()).withConfig(fewer)));
        Path malformed = Files.writeString(dir.resolve("bad.json"), "{\"dim\": \"sixty-four\"}");
        assertMessage("'dim' must be an integer", () -> Engine.load(EngineOptions.of(SharedData.storiesPth()).withConfig(malformed)));
    }

    @Test
    void wrongTokenizerForModel() {
        assertMessage("32000 pieces", () -> Engine.load(EngineOptions.of(SharedData.storiesPth())
                .withTokenizer(SharedData.llama2Tokenizer())));
    }

    @Test
    void unknownDtypeAndDevice() {
        assertMessage("unknown dtype 'fp8'", () -> Engine.load(EngineOptions.of(SharedData.storiesPth()).withDtype("fp8")));
        assertMessage("device", () -> Engine.load(new EngineOptions(SharedData.storiesPth(), null, null, "fp32", "tpu", 0, 0)));
        // The CPU libtorch these tests run with has no CUDA: asking for it says so rather than crashing.
        assertMessage("CUDA is not usable here",
                () -> Engine.load(new EngineOptions(SharedData.storiesPth(), null, null, "fp32", "cuda:0", 0, 0)));
    }

    @Test
    void emptyAndOverlongPrompts() {
        GenerationParams p = GenerationParams.builder().maxNewTokens(4).build();
        assertMessage("prompt is empty", () -> engine.generate(new int[0], p, null, new CancellationToken()));
        int[] tooLong = new int[600];
        Arrays.fill(tooLong, 300);
        tooLong[0] = 1;
        assertMessage("context length 512", () -> engine.generate(tooLong, p, null, new CancellationToken()));
        String longText = "Once upon a time ".repeat(200);
        assertMessage("more than the context length", () -> engine.generate(longText, p, null));
        // the engine still works afterwards
        assertEquals(4, engine.generate("Once", GenerationParams.builder().greedy().maxNewTokens(4).stopTokens(-1).build(),
                null).generatedTokens().length);
    }

    @Test
    void tokenIdsOutsideTheVocabulary() {
        GenerationParams p = GenerationParams.builder().maxNewTokens(4).build();
        assertMessage("token id 512", () -> engine.generate(new int[] {1, 512}, p, null, new CancellationToken()));
        assertMessage("token id -3", () -> engine.generate(new int[] {1, -3}, p, null, new CancellationToken()));
    }

    @Test
    void invalidSamplingParameters() {
        assertMessage("temperature", () -> GenerationParams.builder().temperature(-0.1f).build());
        assertMessage("temperature", () -> GenerationParams.builder().temperature(Float.NaN).build());
        assertMessage("temperature", () -> GenerationParams.builder().temperature(Float.POSITIVE_INFINITY).build());
        assertMessage("top_k", () -> GenerationParams.builder().topK(-5).build());
        assertMessage("max_new_tokens", () -> GenerationParams.builder().maxNewTokens(0).build());
    }

    @Test
    void closedEngine() {
        Engine e = Engine.load(EngineOptions.of(SharedData.storiesPth()));
        e.close();
        assertMessage("closed", () -> e.generate("hi", GenerationParams.builder().build(), null));
    }
}

package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigResolverTest {

    @Test
    void gptFastNameTableWithItsDerivedSizes() {
        // Every GPT-Fast entry (14) is present and valid, plus llama-3.2-1b (Meta's shape).
        for (String name : ConfigResolver.names()) ConfigResolver.fromName(name);
        assertEquals(15, ConfigResolver.names().size());
        ModelConfig llama32 = ConfigResolver.fromName(ConfigResolver.matchName("Llama-3.2-1B-Instruct"));
        assertEquals(2048, llama32.dim());
        assertEquals(64, llama32.headDim());
        assertEquals(32.0f, llama32.ropeScalingFactor());
        ModelConfig llama7b = ConfigResolver.fromName("7B");
        assertEquals(11008, llama7b.intermediateSize());  // find_multiple(int(2 * 4 * 4096 / 3), 256)
        assertEquals(128, llama7b.headDim());
        assertEquals(32, llama7b.nLocalHeads());
        ModelConfig stories15m = ConfigResolver.fromName("stories15M");
        assertEquals(768, stories15m.intermediateSize());
        assertEquals(48, stories15m.headDim());
        ModelConfig llama31 = ConfigResolver.fromName("llama-3.1-8b");
        assertEquals(8.0f, llama31.ropeScalingFactor());
        assertEquals(8192, llama31.ropeOriginalMaxPosition());
        assertEquals(0f, ConfigResolver.fromName("llama-3-8b").ropeScalingFactor());
    }

    @Test
    void fuzzyNameMatchPrefersTheLongestKey() {
        assertEquals("Mistral-7B", ConfigResolver.matchName("Mistral-7B-Instruct-v0.1"));
        assertEquals("7B", ConfigResolver.matchName("Llama-2-7b-chat-hf"));
        assertEquals("llama-3.1-8b", ConfigResolver.matchName("Meta-Llama-3.1-8B-Instruct"));
        assertEquals("stories110M", ConfigResolver.matchName("stories110M"));
        assertNull(ConfigResolver.matchName("unrelated"));
    }

    @Test
    void huggingFaceAndMetaConfigs(@TempDir Path dir) throws IOException {
        Path hf = Files.writeString(dir.resolve("config.json"), """
                {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                 "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 131072,
                 "rope_theta": 500000.0, "rms_norm_eps": 1e-05,
                 "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                  "original_max_position_embeddings": 8192, "rope_type": "llama3"}}""");
        assertEquals(ConfigResolver.fromName("llama-3.1-8b"), ConfigResolver.fromFile(hf));
        Path meta = Files.writeString(dir.resolve("params.json"), """
                {"dim": 4096, "multiple_of": 256, "n_heads": 32, "n_layers": 32, "norm_eps": 1e-05, "vocab_size": 32000}""");
        ModelConfig m = ConfigResolver.fromFile(meta);
        assertEquals(11008, m.intermediateSize());
        assertEquals(32, m.nLocalHeads());
    }

    @Test
    void resolutionOrder(@TempDir Path dir) throws IOException {
        Path model = Files.createDirectory(dir.resolve("stories15M"));
        Path ckpt = Files.writeString(model.resolve("model.pth"), "PK");
        assertEquals("name table entry stories15M", ConfigResolver.resolve(ckpt, null).source());
        Files.writeString(model.resolve("config.json"), Files.readString(SharedData.stories().resolve("config.json")));
        assertTrue(ConfigResolver.resolve(ckpt, null).source().endsWith("config.json"));
        Path explicit = Files.writeString(dir.resolve("explicit.json"), "{\"dim\": 288, \"n_layer\": 6, \"n_head\": 6}");
        assertEquals(288, ConfigResolver.resolve(ckpt, explicit).config().dim());
        Path nowhere = Files.writeString(Files.createDirectory(dir.resolve("plain")).resolve("weights.pth"), "PK");
        assertThrows(GptFastException.class, () -> ConfigResolver.resolve(nowhere, null));
    }

    @Test
    void llama2cHeaderIsTheLastResort(@TempDir Path dir) throws IOException {
        // No config.json and a name that matches no table entry: the .bin header describes the model.
        Path model = Files.createDirectory(dir.resolve("tiny"));
        Path bin = Files.copy(SharedData.storiesBin(), model.resolve("tiny.bin"));
        Files.copy(SharedData.storiesTokenizer(), model.resolve("tokenizer.model"));
        ConfigResolver.Resolved r = ConfigResolver.resolve(bin, null);
        assertTrue(r.source().startsWith("llama2.c header"), r.source());
        assertEquals(172, r.config().intermediateSize());
        assertEquals(4, r.config().nLocalHeads());
        SharedData.GreedyCase c = SharedData.greedyCases().get(0);
        try (Engine engine = Engine.load(EngineOptions.of(bin))) {
            int[] out = engine.generate(c.prompt(), GenerationParams.builder().greedy().maxNewTokens(50).stopTokens(1).build(),
                    null).generatedTokens();
            assertArrayEquals(Arrays.copyOf(c.generatedTokens(), 50), out);
        }
    }

    @Test
    void directoryCheckpointFindsModelPth() {
        assertEquals(SharedData.storiesPth(), CheckpointFormat.resolveFile(SharedData.stories()));
        assertEquals(CheckpointFormat.PTH, CheckpointFormat.detect(SharedData.storiesPth()));
        assertEquals(CheckpointFormat.LLAMA2C, CheckpointFormat.detect(SharedData.storiesBin()));
    }
}

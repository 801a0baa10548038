package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * llama3-tiny-random (tied embeddings, Llama 3 RoPE scaling, GQA 4:1) in fp32 reproduces every
 * greedy reference of GPT-Fast's model.py: from its GPT-Fast model.pth with the tiktoken
 * tokenizer.model, and from a Hugging Face directory (bf16 safetensors, HF config with
 * rope_scaling, tokenizer.json) written by the test.
 */
class Llama3GreedyTest {

    static void assertReferences(Engine engine) {
        for (Llama3Tiny.GreedyCase c : Llama3Tiny.greedyCases()) {
            int[] prompt = engine.promptTokens(c.prompt());
            assertArrayEquals(c.promptTokens(), prompt, "prompt tokens of '" + c.prompt() + "'");
            GenerationParams params = GenerationParams.builder().greedy().maxNewTokens(c.generatedTokens().length)
                    .stopTokens().build();  // the reference never stops early
            StringBuilder streamed = new StringBuilder();
            GenerationResult r = engine.generate(prompt, params, (id, piece) -> streamed.append(piece),
                    new CancellationToken());
            assertArrayEquals(c.generatedTokens(), r.generatedTokens(), "generated tokens of '" + c.prompt() + "'");
            assertEquals(engine.tokenizer().decode(c.generatedTokens()), r.completion(), "completion text");
            assertEquals(r.completion(), streamed.toString(), "streamed pieces");
        }
    }

    @Test
    void gptFastCheckpointWithTiktokenTokenizer() {
        EngineOptions options = EngineOptions.of(SharedData.llama3Tiny().resolve("model.pth"))
                .withTokenizer(SharedData.llama3TiktokenModel());
        try (Engine engine = Engine.load(options)) {
            assertInstanceOf(TiktokenTokenizer.class, engine.tokenizer());
            assertReferences(engine);
        }
    }

    @Test
    void huggingFaceDirectoryWithTokenizerJson(@TempDir Path dir) throws IOException {
        Llama3Tiny.writeHfDirectory(dir, 4096);
        try (Engine engine = Engine.load(EngineOptions.of(dir))) {
            assertInstanceOf(HuggingFaceJsonTokenizer.class, engine.tokenizer());
            assertReferences(engine);
        }
    }
}

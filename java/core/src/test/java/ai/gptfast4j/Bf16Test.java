package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * bf16: the fused CPU path keeps bf16 weights and a bf16 KV cache but computes in fp32, so it
 * must agree with a float64 forward pass over the same weights rounded to bf16, keys and values
 * rounded to bf16 as they are cached (independent Java code, see Float64ReferenceTest), to 1e-4,
 * for prompt logits and for a greedy decode of 40 tokens.
 */
class Bf16Test {
    static Engine engine;
    static Llama2cWeights rounded;

    @BeforeAll
    static void load() throws Exception {
        engine = Engine.load(EngineOptions.of(SharedData.storiesPth()).withDtype("bf16"));
        rounded = Llama2cWeights.readRoundedToBf16(SharedData.storiesBin());
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    @Test
    void promptLogitsMatchFloat64OverBf16Weights() {
        int[] ids = engine.promptTokens("Once upon a time");
        Float64ReferenceTest.Worst w = Float64ReferenceTest.compare(engine.promptLogits(ids),
                Float64ReferenceTest.forward(rounded, ids, false, true));
        assertTrue(w.scaledError() <= 1e-4, w.toString());
        // and bf16 rounding is visible: the same logits are not within 1e-4 of the fp32 model
        Llama2cWeights exact;
        try {
            exact = Llama2cWeights.read(SharedData.storiesBin());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        Float64ReferenceTest.Worst vsFp32 = Float64ReferenceTest.compare(engine.promptLogits(ids),
                Float64ReferenceTest.forward(exact, ids, false));
        assertTrue(vsFp32.scaledError() > 1e-3, "bf16 weights should differ from fp32: " + vsFp32);
        // and so is the cache's: the reference with fp32 keys and values is further off
        Float64ReferenceTest.Worst fp32Cache = Float64ReferenceTest.compare(engine.promptLogits(ids),
                Float64ReferenceTest.forward(rounded, ids, false, false));
        System.out.println("Bf16Test: scaled error against bf16 cache " + w + ", against an fp32 cache " + fp32Cache);
        assertTrue(fp32Cache.scaledError() > 3 * w.scaledError(), "bf16 keys and values should be visible: " + fp32Cache);
    }

    /** The cache holds bf16: half the bytes of an fp32 model's (stories260K: 5 layers x K and V x 4 heads x 512 x 8). */
    @Test
    void cacheIsHalfAnFp32Ones() {
        assertTrue(engine.describe().contains(" kv_cache_mib=0.31 "), engine.describe());
        try (Engine fp32 = Engine.load(EngineOptions.of(SharedData.storiesPth()))) {
            assertTrue(fp32.describe().contains(" kv_cache_mib=0.62 "), fp32.describe());
        }
    }

    @Test
    void greedyDecodeMatchesFloat64OverBf16Weights() {
        int[] prompt = engine.promptTokens("Once upon a time");
        int steps = 40;
        int[] got = engine.generate(prompt, GenerationParams.builder().greedy().maxNewTokens(steps).stopTokens(-1).build(),
                null, new CancellationToken()).generatedTokens();
        int[] seq = Arrays.copyOf(prompt, prompt.length + steps);
        int[] expected = new int[steps];
        for (int i = 0; i < steps; i++) {  // float64 greedy: the full forward of the growing sequence
            double[][] logits = Float64ReferenceTest.forward(rounded, Arrays.copyOf(seq, prompt.length + i), false, true);
            double[] last = logits[logits.length - 1];
            int best = 0;
            for (int t = 1; t < last.length; t++) if (last[t] > last[best]) best = t;
            expected[i] = best;
            seq[prompt.length + i] = best;
        }
        assertArrayEquals(expected, got);
    }
}

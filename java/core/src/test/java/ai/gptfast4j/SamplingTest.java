package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Sampling end to end on the real model, against distributions computed here in double. */
class SamplingTest {
    static Engine engine;
    static int[] prompt;
    static float[] lastLogits;

    @BeforeAll
    static void load() {
        engine = Engine.load(EngineOptions.of(SharedData.storiesPth()));
        prompt = engine.promptTokens("Once upon a time, there was a");
        float[][] logits = engine.promptLogits(prompt);
        lastLogits = logits[logits.length - 1];
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    static long[] firstTokenCounts(GenerationParams.Builder builder, int runs) {
        long[] counts = new long[512];
        for (int seed = 0; seed < runs; seed++) {
            GenerationParams p = builder.seed(seed).maxNewTokens(1).stopTokens(-1).build();
            counts[engine.generate(prompt, p, null, new CancellationToken()).generatedTokens()[0]]++;
        }
        return counts;
    }

    @ParameterizedTest(name = "T={0} top_k={1} top_p={2}")
    @CsvSource({"1.0, 0, 1.0", "0.7, 0, 1.0", "1.0, 10, 1.0", "1.2, 0, 0.8", "1.0, 20, 0.9"})
    void firstTokenFollowsTheAnalyticDistribution(float t, int k, float topP) {
        long[] counts = firstTokenCounts(GenerationParams.builder().temperature(t).topK(k).topP(topP), 4000);
        double[] expected = Statistics.topKSoftmax(lastLogits, t, k, topP);
        double[] chi = Statistics.chiSquarePooled(counts, expected);
        assertTrue(chi[1] >= 3, "too few cells: " + chi[1]);
        assertTrue(chi[0] < Statistics.chiSquareBound((int) chi[1]), "chi2=" + chi[0] + " df=" + chi[1]);
    }

    @Test
    void theTestDetectsAWrongTemperature() {
        long[] counts = firstTokenCounts(GenerationParams.builder().temperature(1.0f).topK(0), 4000);
        double[] chi = Statistics.chiSquarePooled(counts, Statistics.topKSoftmax(lastLogits, 0.8, 0, 1.0));
        assertFalse(chi[0] < Statistics.chiSquareBound((int) chi[1]), "chi2=" + chi[0]);
    }

    @Test
    void stopSequenceCutsTheCompletionAndTheStream() {
        StringBuilder streamed = new StringBuilder();
        GenerationResult r = engine.generate("Once upon a time",
                GenerationParams.builder().greedy().maxNewTokens(100).stopSequences(List.of("Lily", "zzz")).build(),
                (id, text) -> streamed.append(text));
        assertEquals(GenerationResult.StopReason.STOP_SEQUENCE, r.stopReason());
        assertEquals(", there was a little girl named ", r.completion());
        assertEquals(r.completion(), streamed.toString(), "no text of the stop sequence may be streamed");
    }

    @Test
    void minNewTokensSuppressesTheStopToken() {
        SharedData.GreedyCase c = SharedData.greedyCases().stream().filter(SharedData.GreedyCase::stoppedOnBos)
                .findFirst().orElseThrow();
        int bosAt = c.generatedTokens().length;  // the reference emits BOS as its last token
        GenerationResult r = engine.generate(c.promptTokens(), GenerationParams.builder().greedy()
                .maxNewTokens(bosAt + 10).minNewTokens(bosAt + 5).stopTokens(1).build(), null, new CancellationToken());
        assertTrue(r.generatedTokens().length >= bosAt + 5, "stopped after " + r.generatedTokens().length);
        assertArrayEquals(Arrays.copyOf(c.generatedTokens(), bosAt - 1), Arrays.copyOf(r.generatedTokens(), bosAt - 1));
        assertNotEquals(1, r.generatedTokens()[bosAt - 1], "BOS must be suppressed before min_new_tokens");
        for (int i = 0; i < bosAt + 5 - 1; i++) assertNotEquals(1, r.generatedTokens()[i], "position " + i);
    }

    @Test
    void repetitionPenaltyChangesGreedyOutputDeterministically() {
        GenerationParams penalised = GenerationParams.builder().greedy().maxNewTokens(60).repetitionPenalty(1.5f)
                .stopTokens(-1).build();
        int[] a = engine.generate("Once upon a time", penalised, null).generatedTokens();
        int[] b = engine.generate("Once upon a time", penalised, null).generatedTokens();
        assertArrayEquals(a, b);
        int[] plain = Arrays.copyOf(SharedData.greedyCases().get(0).generatedTokens(), 60);
        assertFalse(Arrays.equals(plain, a), "a repetition penalty of 1.5 must change the greedy continuation");
        assertTrue(distinct(a) > distinct(plain), "penalised output should repeat less: " + distinct(a) + " vs " + distinct(plain));
    }

    static long distinct(int[] tokens) {
        return Arrays.stream(tokens).distinct().count();
    }

    @Test
    void seedsReproduce() {
        GenerationParams p = GenerationParams.builder().temperature(0.9f).topK(40).topP(0.95f).seed(77).maxNewTokens(50).build();
        assertArrayEquals(engine.generate("Tim was", p, null).generatedTokens(), engine.generate("Tim was", p, null).generatedTokens());
    }
}

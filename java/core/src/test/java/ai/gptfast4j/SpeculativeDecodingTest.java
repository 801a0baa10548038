package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Speculative decoding must be exact: token-identical to plain greedy decoding at temperature 0
 * for every k and draft, and distributed exactly as the target at temperature > 0.
 */
class SpeculativeDecodingTest {
    @TempDir
    static Path dir;
    static Path truncated, random;

    @BeforeAll
    static void drafts() throws IOException {
        truncated = Drafts.truncated(dir, 4);
        random = Drafts.randomlyInitialised(dir, 7);
    }

    static Engine speculative(Path draft, int k) {
        return Engine.load(EngineOptions.of(SharedData.storiesPth()).withDraft(draft, null, k));
    }

    @Test
    void greedyIsTokenIdenticalToPlainDecodingForEveryKAndDraft() {
        List<SharedData.GreedyCase> cases = SharedData.greedyCases().subList(0, 3);
        Map<Path, Double> acceptance = new HashMap<>();
        for (Path draft : List.of(Drafts.self(), truncated, random)) {
            for (int k = 1; k <= 8; k++) {
                try (Engine engine = speculative(draft, k)) {
                    long accepted = 0, proposed = 0;
                    for (SharedData.GreedyCase c : cases) {
                        int n = Math.min(120, c.maxNewTokens());
                        GenerationResult r = engine.generate(c.promptTokens(),
                                GenerationParams.builder().greedy().maxNewTokens(n).stopTokens(1).build(), null,
                                new CancellationToken());
                        int[] expected = Arrays.copyOf(c.generatedTokens(), Math.min(n, c.generatedTokens().length));
                        assertArrayEquals(expected, r.generatedTokens(), "draft " + draft.getFileName() + " k=" + k
                                + " prompt '" + c.prompt() + "'");
                        assertTrue(r.stats().verifyRounds() > 0);
                        accepted += r.stats().draftAccepted();
                        proposed += r.stats().draftProposed();
                    }
                    acceptance.merge(draft, (double) accepted / proposed, Math::min);
                }
            }
        }
        System.out.println("greedy acceptance (lowest over k): " + acceptance);
        // The draft's quality shows in the acceptance rate, never in the output.
        assertEquals(1.0, acceptance.get(Drafts.self()), 1e-9, "a model drafting for itself is always accepted");
        assertTrue(acceptance.get(random) < 0.5, "random draft acceptance " + acceptance.get(random));
        assertTrue(acceptance.get(truncated) > acceptance.get(random), acceptance.toString());
    }

    /**
     * At temperature 1 with top-k 8, the second generated token comes from a speculative round
     * (k = 2, truncated draft). Its distribution given the first token must be the target's:
     * softmax over the top-8 logits of the target at that position, computed here in double from
     * the engine's prompt logits (independently of the native sampler). Pearson chi-square pooled
     * over the first tokens seen; the same samples judged against the draft's distribution fail.
     */
    @Test
    void sampledTokensFollowTheTargetDistribution() {
        int runs = 3000;
        int topK = 8;
        float temperature = 1.0f;
        Map<Integer, long[]> secondGivenFirst = new HashMap<>();
        int[] prompt;
        try (Engine engine = speculative(truncated, 2)) {
            prompt = engine.promptTokens("Once upon a time");
            for (int seed = 0; seed < runs; seed++) {
                GenerationParams p = GenerationParams.builder().temperature(temperature).topK(topK).seed(seed)
                        .maxNewTokens(2).stopTokens(-1).build();
                int[] t = engine.generate(prompt, p, null, new CancellationToken()).generatedTokens();
                secondGivenFirst.computeIfAbsent(t[0], x -> new long[512])[t[1]]++;
            }
        }
        double[] targetChi = {0, 0}, draftChi = {0, 0};  // {statistic, degrees of freedom}
        try (Engine target = Engine.load(EngineOptions.of(SharedData.storiesPth()));
             Engine draft = Engine.load(EngineOptions.of(truncated))) {
            for (Map.Entry<Integer, long[]> e : secondGivenFirst.entrySet()) {
                if (Arrays.stream(e.getValue()).sum() < 100) continue;  // too few samples for chi-square
                int[] context = Arrays.copyOf(prompt, prompt.length + 1);
                context[prompt.length] = e.getKey();
                accumulate(targetChi, e.getValue(), lastRowDistribution(target, context, temperature, topK));
                accumulate(draftChi, e.getValue(), lastRowDistribution(draft, context, temperature, topK));
            }
        }
        System.out.printf("chi2 vs target %.1f (df %d, bound %.1f); vs draft %.1f (df %d)%n", targetChi[0],
                (int) targetChi[1], Statistics.chiSquareBound((int) targetChi[1]), draftChi[0], (int) draftChi[1]);
        assertTrue(targetChi[1] >= 7, "too few degrees of freedom: " + targetChi[1]);
        assertTrue(targetChi[0] < Statistics.chiSquareBound((int) targetChi[1]),
                "speculative samples differ from the target: chi2=" + targetChi[0] + " df=" + targetChi[1]);
        assertFalse(draftChi[0] < Statistics.chiSquareBound((int) draftChi[1]),
                "the test cannot tell the draft's distribution from the target's: chi2=" + draftChi[0]);
    }

    static double[] lastRowDistribution(Engine engine, int[] context, float temperature, int topK) {
        float[][] logits = engine.promptLogits(context);
        return Statistics.topKSoftmax(logits[logits.length - 1], temperature, topK, 1.0);
    }

    static void accumulate(double[] chi, long[] counts, double[] p) {
        double[] r = Statistics.chiSquare(counts, p);
        chi[0] += r[0];
        chi[1] += r[1] + 1;  // pooled: each group contributes its own df (cells - 1)
    }

    @Test
    void refusesIncompatibleDrafts(@TempDir Path tmp) throws IOException {
        Path other = Files.createDirectories(tmp.resolve("otherTokenizer"));
        Files.copy(random, other.resolve("draft.bin"));
        Files.copy(SharedData.llama2Tokenizer(), other.resolve("tokenizer.model"));
        GptFastException e = assertThrows(GptFastException.class, () -> speculative(other.resolve("draft.bin"), 4));
        assertTrue(e.getMessage().contains("shared tokenizer"), e.getMessage());

        Path config = Files.writeString(tmp.resolve("vocab600.json"), "{\"dim\": 64, \"n_layer\": 5, \"n_head\": 8,"
                + " \"n_local_heads\": 4, \"intermediate_size\": 172, \"vocab_size\": 600, \"block_size\": 512}");
        e = assertThrows(GptFastException.class, () -> Engine.load(EngineOptions.of(SharedData.storiesPth())
                .withDraft(truncated, config, 4)));
        assertTrue(e.getMessage().contains("vocabulary (600)"), e.getMessage());

        e = assertThrows(GptFastException.class, () -> EngineOptions.of(SharedData.storiesPth()).withDraft(truncated, null, 0));
        assertTrue(e.getMessage().contains("speculate_k"), e.getMessage());
        try (Engine engine = speculative(truncated, 3)) {
            // asked for explicitly, speculation with penalties is refused ...
            e = assertThrows(GptFastException.class, () -> engine.generate("Once",
                    GenerationParams.builder().repetitionPenalty(1.2f).speculateK(3).build(), null));
            assertTrue(e.getMessage().contains("penalties"), e.getMessage());
            e = assertThrows(GptFastException.class, () -> engine.generate("Once",
                    GenerationParams.builder().speculateK(4).build(), null));
            assertTrue(e.getMessage().contains("speculate_k must be in [0, 3]"), e.getMessage());
            // ... and by default a sequence with penalties decodes plainly
            GenerationResult plain = engine.generate("Once",
                    GenerationParams.builder().repetitionPenalty(1.2f).maxNewTokens(10).build(), null);
            assertEquals(0, plain.stats().verifyRounds());
            assertEquals(10, plain.generatedTokens().length);
        }
    }
}

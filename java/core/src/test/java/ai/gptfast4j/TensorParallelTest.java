package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.gptfast4j.natives.NativeLibrary;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Tensor parallelism (--tp): stories260K split over in-process ranks reproduces the fp32 greedy
 * references exactly (pth and llama2.c .bin, plain, batched, speculative with a sharded draft),
 * its logits agree with one rank to 1e-4 relative, sizes that do not divide are refused, and a
 * failing rank ends generation with an error naming it, after which the engine says it must be
 * recreated.
 */
class TensorParallelTest {
    @TempDir
    static Path dir;
    static Path draft;

    @BeforeAll
    static void makeDraft() throws IOException {
        draft = Drafts.truncated(dir, 4);
    }

    static EngineOptions stories(Path checkpoint, int tp) {
        return EngineOptions.of(checkpoint).withTokenizer(SharedData.storiesTokenizer()).withTp(tp);
    }

    static GenerationParams greedy(SharedData.GreedyCase c, int k) {
        return GenerationParams.builder().greedy().maxNewTokens(Math.min(100, c.maxNewTokens())).stopTokens(1)
                .speculateK(k).build();
    }

    static int[] expected(SharedData.GreedyCase c) {
        int n = Math.min(100, c.maxNewTokens());
        return Arrays.copyOf(c.generatedTokens(), Math.min(n, c.generatedTokens().length));
    }

    static Stream<Arguments> checkpoints() {
        return Stream.of(Arguments.of(SharedData.storiesPth(), 2), Arguments.of(SharedData.storiesBin(), 2),
                Arguments.of(SharedData.storiesPth(), 4));
    }

    @ParameterizedTest(name = "{0} tp {1}")
    @MethodSource("checkpoints")
    void greedyMatchesTheReference(Path checkpoint, int tp) {
        List<SharedData.GreedyCase> cases = SharedData.greedyCases();
        assertFalse(cases.isEmpty());
        // Four ranks on a 2-core CI machine take ~10x longer per token: two cases are enough there.
        if (tp == 4) cases = cases.subList(0, Math.min(2, cases.size()));
        try (Engine engine = Engine.load(stories(checkpoint, tp))) {
            assertEquals(tp, engine.tensorParallel());
            for (SharedData.GreedyCase c : cases) {
                GenerationParams params = GenerationParams.builder().greedy().maxNewTokens(c.maxNewTokens())
                        .stopTokens(1).build();
                GenerationResult r = engine.generate(c.prompt(), params, null);
                assertArrayEquals(c.generatedTokens(), r.generatedTokens(), "tp " + tp + " '" + c.prompt() + "'");
                assertEquals(c.text(), c.prompt() + r.completion());
            }
            // two all-reduces per layer per forward pass, at least one pass per generated token
            assertTrue(engine.allReduces() >= 2L * 5 * cases.size(), "all-reduces " + engine.allReduces());
        }
    }

    @Test
    void promptLogitsAgreeWithOneRank() {
        int[] prompt = SharedData.greedyCases().get(1).promptTokens();
        float[][] one, two;
        try (Engine e = Engine.load(stories(SharedData.storiesPth(), 1))) {
            one = e.promptLogits(prompt);
        }
        try (Engine e = Engine.load(stories(SharedData.storiesPth(), 2))) {
            two = e.promptLogits(prompt);
        }
        double diff = 0, scale = 0;
        for (int i = 0; i < one.length; i++) {
            for (int j = 0; j < one[i].length; j++) {
                diff = Math.max(diff, Math.abs(one[i][j] - two[i][j]));
                scale = Math.max(scale, Math.abs(one[i][j]));
            }
        }
        assertTrue(diff / scale < 1e-4, "max relative difference " + diff / scale);
    }

    /** Eight sequences joining a running batch, half speculating with a 4-layer draft that is sharded too. */
    @Test
    void batchedAndSpeculativeGreedyMatchTheReference() {
        List<SharedData.GreedyCase> cases = SharedData.greedyCases();
        EngineOptions options = stories(SharedData.storiesPth(), 2).withBatchSize(8).withPrefillChunk(7)
                .withDraft(draft, null, 4);
        try (Engine engine = Engine.load(options)) {
            List<Engine.Sequence> seqs = new ArrayList<>();
            int steps = 0, largest = 0;
            while (seqs.size() < 8 || engine.active() > 0) {
                if (seqs.size() < 8 && steps % 3 == 0) {
                    int i = seqs.size();
                    seqs.add(engine.start(cases.get(i % cases.size()).promptTokens(),
                            greedy(cases.get(i % cases.size()), i % 2 == 0 ? 4 : 0), null, new CancellationToken()));
                }
                largest = Math.max(largest, engine.active());
                engine.step();
                steps++;
                assertTrue(steps < 5000, "batch did not drain");
            }
            assertTrue(largest >= 6, "the test must exercise a large batch, got " + largest);
            for (int i = 0; i < 8; i++) {
                SharedData.GreedyCase c = cases.get(i % cases.size());
                GenerationResult r = seqs.get(i).result();
                assertArrayEquals(expected(c), r.generatedTokens(), "sequence " + i + " '" + c.prompt() + "'");
                if (i % 2 == 0) assertTrue(r.stats().verifyRounds() > 0, "sequence " + i + " speculated");
            }
        }
    }

    @Test
    void sizesThatDoNotDivideAreRefusedNamingThem() {
        GptFastException e = assertThrows(GptFastException.class, () -> Engine.load(stories(SharedData.storiesPth(), 3)));
        assertTrue(e.getMessage().contains("n_head 8 is not divisible by tp 3"), e.getMessage());
        GptFastException range = assertThrows(GptFastException.class, () -> stories(SharedData.storiesPth(), 0));
        assertTrue(range.getMessage().contains("tp"), range.getMessage());
    }

    // CUDA ranks need NCCL, which only the CUDA natives have: the CPU natives refuse the options at
    // once, in one line naming the sizes, rather than "CUDA is not usable" or a failure mid-load.
    @Test
    void cudaRanksOnTheCpuNativesAreRefusedNamingTheBuild() {
        Assumptions.assumeTrue(NativeLibrary.variant().equals("linux-x86_64"),
                "CPU natives only; these are " + NativeLibrary.variant());
        GptFastException e = assertThrows(GptFastException.class,
                () -> stories(SharedData.storiesPth(), 2).withDevice("cuda"));
        assertTrue(e.getMessage().contains("tensor parallelism on CUDA (tp 2 puts 2 rank(s) on this node, device 'cuda') "
                + "needs NCCL, which only the CUDA build of libgptfast has"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }

    @Test
    void aFailingRankEndsGenerationNamingItAndTheEngineSaysItMustBeRecreated() {
        SharedData.GreedyCase c = SharedData.greedyCases().get(0);
        try (Engine engine = Engine.load(stories(SharedData.storiesPth(), 2))) {
            engine.generate(c.promptTokens(), greedy(c, 0), null, new CancellationToken());
            engine.failRankForTest(1, 25, 2000);  // mid-generation: a few tokens in, mid-layer
            long begin = System.nanoTime();
            GptFastException e = assertThrows(GptFastException.class,
                    () -> engine.generate(c.promptTokens(), greedy(c, 0), null, new CancellationToken()));
            assertTrue(e.getMessage().contains("tensor-parallel rank 1 failed"), e.getMessage());
            assertTrue(System.nanoTime() - begin < 30_000_000_000L, "bounded by the collective timeout");
            GptFastException again = assertThrows(GptFastException.class,
                    () -> engine.generate(c.promptTokens(), greedy(c, 0), null, new CancellationToken()));
            assertTrue(again.getMessage().contains("create a new one"), again.getMessage());
        }
        try (Engine fresh = Engine.load(stories(SharedData.storiesPth(), 2))) {  // a new engine works
            assertArrayEquals(expected(c),
                    fresh.generate(c.promptTokens(), greedy(c, 0), null, new CancellationToken()).generatedTokens());
        }
    }
}

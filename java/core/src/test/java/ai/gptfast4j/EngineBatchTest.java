package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Batch, speculation and chunked prefill must not change any sequence: sequences that join and
 * leave a running batch at different steps, speculative or plain, with any prefill chunk,
 * produce exactly what they produce alone.
 */
class EngineBatchTest {
    @TempDir
    static Path dir;
    static Path draft;

    @BeforeAll
    static void makeDraft() throws IOException {
        draft = Drafts.truncated(dir, 4);
    }

    static Engine batch(int slots) {
        return Engine.load(EngineOptions.of(SharedData.storiesPth()).withBatchSize(slots));
    }

    static GenerationParams greedy(SharedData.GreedyCase c) {
        return GenerationParams.builder().greedy().maxNewTokens(Math.min(100, c.maxNewTokens())).stopTokens(1).build();
    }

    @Test
    void sequencesJoiningARunningBatchMatchTheReference() {
        List<SharedData.GreedyCase> cases = SharedData.greedyCases();
        try (Engine batch = batch(3)) {
            Deque<SharedData.GreedyCase> waiting = new ArrayDeque<>(cases);
            List<Engine.Sequence> sequences = new ArrayList<>();
            List<StringBuilder> streamed = new ArrayList<>();
            int steps = 0, largestBatch = 0;
            while (!waiting.isEmpty() || batch.active() > 0) {
                // admit one waiting case every 7 steps while a slot is free: joins mid-flight
                if (!waiting.isEmpty() && batch.hasFreeSlot() && steps % 7 == 0) {
                    SharedData.GreedyCase c = waiting.poll();
                    StringBuilder text = new StringBuilder();
                    streamed.add(text);
                    sequences.add(batch.start(c.promptTokens(), greedy(c), (id, piece) -> text.append(piece),
                            new CancellationToken()));
                }
                largestBatch = Math.max(largestBatch, batch.active());
                batch.step();
                steps++;
                assertTrue(steps < 5000, "batch did not drain");
            }
            assertEquals(3, largestBatch, "the test must exercise a full batch");
            for (int i = 0; i < cases.size(); i++) {
                SharedData.GreedyCase c = cases.get(i);
                GenerationResult r = sequences.get(i).result();
                int n = greedy(c).maxNewTokens();
                assertArrayEquals(Arrays.copyOf(c.generatedTokens(), Math.min(n, c.generatedTokens().length)),
                        r.generatedTokens(), "prompt '" + c.prompt() + "'");
                assertEquals(r.completion(), streamed.get(i).toString());
            }
        }
    }

    @Test
    void seededSamplingIsTheSameAloneAndInABatch() {
        String[] prompts = {"Once upon a time", "Tim was sad because", "The little dog", "Lily and Tom"};
        List<int[]> alone = new ArrayList<>();
        try (Engine engine = Engine.load(EngineOptions.of(SharedData.storiesPth()))) {
            for (int i = 0; i < prompts.length; i++) {
                alone.add(engine.generate(prompts[i], params(i), null).generatedTokens());
            }
        }
        try (Engine batch = batch(4)) {
            List<Engine.Sequence> seqs = new ArrayList<>();
            for (int i = 0; i < prompts.length; i++) {
                seqs.add(batch.start(prompts[i], params(i), null, new CancellationToken()));
                batch.step();  // staggered starts
            }
            while (batch.active() > 0) batch.step();
            for (int i = 0; i < prompts.length; i++) {
                assertArrayEquals(alone.get(i), seqs.get(i).result().generatedTokens(), prompts[i]);
            }
        }
    }

    static GenerationParams params(int i) {
        return GenerationParams.builder().temperature(0.9f).topK(40).topP(0.95f).seed(100 + i).maxNewTokens(40 + 10 * i)
                .build();
    }

    @Test
    void fullBatchCancellationAndBadInput() {
        try (Engine batch = batch(2)) {
            GenerationParams p = GenerationParams.builder().greedy().maxNewTokens(50).stopTokens(-1).build();
            CancellationToken cancel = new CancellationToken();
            Engine.Sequence a = batch.start("Once", p, null, cancel);
            Engine.Sequence b = batch.start("Lily", p, null, new CancellationToken());
            GptFastException full = assertThrows(GptFastException.class, () -> batch.start("Tom", p, null, new CancellationToken()));
            assertTrue(full.getMessage().contains("busy"), full.getMessage());
            batch.step();
            batch.step();
            cancel.cancel();
            batch.step();
            assertEquals(GenerationResult.StopReason.CANCELLED, a.result().stopReason());
            assertEquals(1, batch.active(), "the cancelled sequence frees its slot");
            batch.abort(b);
            assertEquals(0, batch.active());
            GptFastException bad = assertThrows(GptFastException.class,
                    () -> batch.start(new int[] {1, 9999}, p, null, new CancellationToken()));
            assertTrue(bad.getMessage().contains("9999"), bad.getMessage());
            assertEquals(0, batch.active(), "a failed start leaves no slot taken");
            Engine.Sequence again = batch.start("Once", p, null, new CancellationToken());
            while (!again.finished()) batch.step();
            assertEquals(50, again.result().generatedTokens().length, "the freed slots work again");
        }
    }

    /**
     * Eight sequences in one engine with a 4-layer draft: half speculate (k = 4), half decode
     * plainly; they join one by one every third step, with a 7-token prefill chunk so
     * prompt chunks, decode tokens and verify passes share steps. Every one reproduces the fp32
     * greedy reference.
     */
    @Test
    void mixedSpeculativeAndPlainBatchMatchesTheReference() {
        List<SharedData.GreedyCase> cases = SharedData.greedyCases();
        assertTrue(cases.size() >= 4, "needs 4 reference cases, has " + cases.size());
        EngineOptions options = EngineOptions.of(SharedData.storiesPth()).withBatchSize(8).withPrefillChunk(7)
                .withDraft(draft, null, 4);
        try (Engine engine = Engine.load(options)) {
            List<Engine.Sequence> seqs = new ArrayList<>();
            int steps = 0, largest = 0;
            while (seqs.size() < 8 || engine.active() > 0) {
                if (seqs.size() < 8 && steps % 3 == 0) {
                    int i = seqs.size();
                    SharedData.GreedyCase c = cases.get(i % cases.size());
                    GenerationParams p = GenerationParams.builder().greedy().maxNewTokens(Math.min(100, c.maxNewTokens()))
                            .stopTokens(1).speculateK(speculates(i, cases.size()) ? 4 : 0).build();
                    seqs.add(engine.start(c.promptTokens(), p, null, new CancellationToken()));
                }
                largest = Math.max(largest, engine.active());
                engine.step();
                steps++;
                assertTrue(steps < 5000, "batch did not drain");
            }
            assertTrue(largest >= 6, "the test must exercise a large mixed batch, got " + largest);
            for (int i = 0; i < 8; i++) {
                SharedData.GreedyCase c = cases.get(i % cases.size());
                GenerationResult r = seqs.get(i).result();
                int n = Math.min(100, c.maxNewTokens());
                assertArrayEquals(Arrays.copyOf(c.generatedTokens(), Math.min(n, c.generatedTokens().length)),
                        r.generatedTokens(), "sequence " + i + " '" + c.prompt() + "'");
                if (speculates(i, cases.size())) assertTrue(r.stats().verifyRounds() > 0, "sequence " + i + " speculated");
                else assertEquals(0, r.stats().verifyRounds(), "sequence " + i + " decoded plainly");
            }
        }
    }

    // Alternating; a case used a second time runs in the other mode.
    private static boolean speculates(int i, int cases) {
        return (i + i / cases) % 2 == 0;
    }

    /** Seeded sampling with speculation gives the same tokens alone and in a batch beside plain sequences. */
    @Test
    void seededSpeculativeSamplingIsTheSameAloneAndBatched() {
        String[] prompts = {"Once upon a time", "Tim was sad because", "The little dog", "Lily and Tom"};
        EngineOptions options = EngineOptions.of(SharedData.storiesPth()).withDraft(draft, null, 3);
        List<int[]> alone = new ArrayList<>();
        try (Engine engine = Engine.load(options)) {
            for (int i = 0; i < prompts.length; i++) {
                GenerationResult r = engine.generate(prompts[i], params(i), null);
                assertTrue(r.stats().verifyRounds() > 0);
                alone.add(r.generatedTokens());
            }
        }
        try (Engine batch = Engine.load(options.withBatchSize(8))) {
            List<Engine.Sequence> seqs = new ArrayList<>();
            for (int i = 0; i < prompts.length; i++) {
                seqs.add(batch.start(prompts[i], params(i), null, new CancellationToken()));
                // plain neighbours with other seeds join in between
                batch.start(prompts[i], GenerationParams.builder().temperature(1).seed(7 + i).speculateK(0)
                        .maxNewTokens(20).build(), null, new CancellationToken());
                batch.step();
                batch.step();
            }
            while (batch.active() > 0) batch.step();
            for (int i = 0; i < prompts.length; i++) {
                assertArrayEquals(alone.get(i), seqs.get(i).result().generatedTokens(), prompts[i]);
            }
        }
    }

    /** Prefill in chunks of 1, 7 and 64 tokens gives the greedy tokens of a one-pass prefill. */
    @Test
    void chunkedPrefillMatchesOnePassPrefill() {
        // a long prompt: a reference prompt followed by 80 of its greedy tokens
        SharedData.GreedyCase c = SharedData.greedyCases().get(0);
        int[] prompt = java.util.stream.IntStream.concat(Arrays.stream(c.promptTokens()),
                Arrays.stream(c.generatedTokens(), 0, Math.min(80, c.generatedTokens().length - 1))).toArray();
        assertTrue(prompt.length > 64, "needs a prompt longer than the largest chunk, has " + prompt.length);
        GenerationParams p = GenerationParams.builder().greedy().maxNewTokens(60).stopTokens(-1).build();
        int[] onePass;
        try (Engine engine = Engine.load(EngineOptions.of(SharedData.storiesPth()).withPrefillChunk(0))) {
            onePass = engine.generate(prompt, p, null, new CancellationToken()).generatedTokens();
        }
        for (int chunk : new int[] {1, 7, 64}) {
            try (Engine engine = Engine.load(EngineOptions.of(SharedData.storiesPth()).withPrefillChunk(chunk))) {
                int[] tokensSeen = {0};
                Engine.Sequence s = engine.start(prompt, p, (id, text) -> tokensSeen[0]++, new CancellationToken());
                int steps = 0;
                while (!s.finished()) {
                    engine.step();
                    steps++;
                    if (steps < (prompt.length + chunk - 1) / chunk) {
                        assertEquals(0, tokensSeen[0], "chunk " + chunk + ": a token before the prompt is all in");
                    }
                }
                assertEquals((prompt.length + chunk - 1) / chunk + 59, steps, "chunk " + chunk + ": one step per chunk");
                assertArrayEquals(onePass, s.result().generatedTokens(), "chunk " + chunk);
            }
        }
    }
}

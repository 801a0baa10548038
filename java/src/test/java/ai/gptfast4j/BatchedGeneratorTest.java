package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Continuous batching must not change any sequence: sequences that join and leave a running
 * batch at different steps produce exactly what they produce alone.
 */
class BatchedGeneratorTest {

    static GenerationParams greedy(SharedData.GreedyCase c) {
        return GenerationParams.builder().greedy().maxNewTokens(Math.min(100, c.maxNewTokens())).stopTokens(1).build();
    }

    @Test
    void sequencesJoiningARunningBatchMatchTheReference() {
        List<SharedData.GreedyCase> cases = SharedData.greedyCases();
        try (BatchedGenerator batch = BatchedGenerator.load(EngineOptions.of(SharedData.storiesPth()), 3)) {
            Deque<SharedData.GreedyCase> waiting = new ArrayDeque<>(cases);
            List<BatchedGenerator.Sequence> sequences = new ArrayList<>();
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
        try (BatchedGenerator batch = BatchedGenerator.load(EngineOptions.of(SharedData.storiesPth()), 4)) {
            List<BatchedGenerator.Sequence> seqs = new ArrayList<>();
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
        try (BatchedGenerator batch = BatchedGenerator.load(EngineOptions.of(SharedData.storiesPth()), 2)) {
            GenerationParams p = GenerationParams.builder().greedy().maxNewTokens(50).stopTokens(-1).build();
            CancellationToken cancel = new CancellationToken();
            BatchedGenerator.Sequence a = batch.start("Once", p, null, cancel);
            BatchedGenerator.Sequence b = batch.start("Lily", p, null, new CancellationToken());
            GptFastException full = assertThrows(GptFastException.class, () -> batch.start("Tom", p, null, new CancellationToken()));
            assertTrue(full.getMessage().contains("busy"), full.getMessage());
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
            BatchedGenerator.Sequence again = batch.start("Once", p, null, new CancellationToken());
            while (!again.finished()) batch.step();
            assertEquals(50, again.result().generatedTokens().length, "the freed slots work again");
        }
    }
}
